//! The crate's one error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading results or writing a report.
///
/// Every variant that touches a file names it, so a user who passed the wrong
/// path or a file from a newer flowbench sees which file and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder being read or written.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A results file is not valid JSON or does not match the schema.
    #[error("{}: not a valid flowbench results file: {source}", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A results file carries a schema version this build cannot read.
    #[error(
        "{}: results schema version {found} is not supported (this build reads version {supported})",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// A line of a history file is not a valid history record.
    #[error("{}:{line}: not a valid history record: {message}", path.display())]
    History {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        message: String,
    },

    /// Drawing or encoding a chart failed inside plotters or the PNG encoder.
    #[error("chart `{chart}`: {message}")]
    Chart { chart: String, message: String },

    /// A report template failed to render (a bug in a template, not in the data).
    #[error("template `{template}`: {source}")]
    Template {
        template: String,
        #[source]
        source: minijinja::Error,
    },
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The file this error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::Malformed { path, .. }
            | Error::UnsupportedVersion { path, .. }
            | Error::History { path, .. } => Some(path),
            Error::Chart { .. } | Error::Template { .. } => None,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
