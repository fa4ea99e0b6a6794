//! The scenario error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A scenario file that could not be used. Every variant names the file; parse and
/// validation errors also name the field (a path such as `variant[1].knobs`) and, where
/// TOML gives it, the 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file or folder could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Malformed TOML, or TOML that does not fit the schema: an unknown field, a wrong
    /// type, a missing field, an unknown workload, backend, direction or kind.
    #[error("{}: {message}", Location { path, field: field.as_deref(), line: *line })]
    Parse {
        /// The file.
        path: PathBuf,
        /// The field at fault, when known.
        field: Option<String>,
        /// The 1-based line, when TOML gives a position.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Well-formed, but breaks a rule: an unknown knob or metric, a bad knob value, a
    /// duplicate name, a zero count, an override of nothing.
    #[error("{}: {message}", Location { path, field: Some(field), line: *line })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field at fault.
        field: String,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

impl ScenarioError {
    /// The file (or folder) at fault.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::Parse { path, .. } | Self::Invalid { path, .. } => path,
        }
    }

    /// The field at fault, when known.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Io { .. } => None,
            Self::Parse { field, .. } => field.as_deref(),
            Self::Invalid { field, .. } => Some(field),
        }
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::Parse { line, .. } | Self::Invalid { line, .. } => *line,
        }
    }
}

/// `path:line: field` as compilers print it, for the messages above.
struct Location<'a> {
    path: &'a Path,
    field: Option<&'a str>,
    line: Option<usize>,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = self.field {
            write!(f, ": `{field}`")?;
        }
        Ok(())
    }
}
