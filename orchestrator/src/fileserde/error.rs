//! The one error type of the module: a kind, the file it concerns, and where in that file.

use std::fmt;
use std::path::{Path, PathBuf};

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of the file and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing the file failed (missing file, full disk, …).
    Io,
    /// The input is not valid Ion text or binary.
    InvalidIon,
    /// The input is not valid JSON.
    InvalidJson,
    /// The input is not valid CSV (for example a quote never closed).
    InvalidCsv,
    /// A CSV row has a different number of fields than the header (with
    /// `errorOnDifferentFieldCount: true`).
    FieldCount,
    /// The input is not a valid Avro object container file (bad magic, truncated
    /// block, bad union index, …).
    InvalidAvro,
    /// Text is not valid in the declared charset (for UTF-8: invalid byte sequences).
    Encoding,
    /// A record does not fit the Avro schema, or the schema itself is invalid.
    Schema,
    /// The options are invalid (an unknown charset, a multi-byte separator, no schema).
    Options,
    /// A value has no representation in the target format (for example a struct
    /// as a CSV row that is not a struct or a list).
    Unrepresentable,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Io => "I/O error",
            ErrorKind::InvalidIon => "invalid Ion",
            ErrorKind::InvalidJson => "invalid JSON",
            ErrorKind::InvalidCsv => "invalid CSV",
            ErrorKind::FieldCount => "different field count",
            ErrorKind::InvalidAvro => "invalid Avro",
            ErrorKind::Encoding => "invalid text encoding",
            ErrorKind::Schema => "schema mismatch",
            ErrorKind::Options => "invalid options",
            ErrorKind::Unrepresentable => "unrepresentable value",
        })
    }
}

/// A conversion error: its [`ErrorKind`], the file, and the record and/or line number
/// (both 1-based) where it was found.
///
/// It displays as one line, e.g.
/// `different field count in data.csv at record 3 (line 4): expected 3 fields, found 2`.
/// The underlying library's message is part of that line, so that a CLI printing the
/// chain once shows it once.
#[derive(Debug, thiserror::Error)]
#[error("{kind} in {}{}: {message}", path.display(), Location(*record, *line))]
pub struct Error {
    kind: ErrorKind,
    path: PathBuf,
    record: Option<u64>,
    line: Option<u64>,
    message: String,
}

struct Location(Option<u64>, Option<u64>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(r), Some(l)) => write!(f, " at record {r} (line {l})"),
            (Some(r), None) => write!(f, " at record {r}"),
            (None, Some(l)) => write!(f, " at line {l}"),
            (None, None) => Ok(()),
        }
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, path: &Path, message: impl Into<String>) -> Self {
        Error {
            kind,
            path: path.to_path_buf(),
            record: None,
            line: None,
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &Path, err: std::io::Error) -> Self {
        // Invalid UTF-8 surfaces from `read_line` as `InvalidData`: report it as such.
        let kind = if err.kind() == std::io::ErrorKind::InvalidData {
            ErrorKind::Encoding
        } else {
            ErrorKind::Io
        };
        Error::new(kind, path, err.to_string())
    }

    pub(crate) fn at_record(mut self, record: u64) -> Self {
        self.record = Some(record);
        self
    }

    pub(crate) fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file being read or written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based number of the record being read or written, when known.
    pub fn record(&self) -> Option<u64> {
        self.record
    }

    /// The 1-based line number in the input, when the format has lines and it is known.
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// The underlying message, without kind, path or position.
    pub fn message(&self) -> &str {
        &self.message
    }
}
