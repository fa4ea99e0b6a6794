//! CSV, through BurntSushi's `csv` crate, with the options of Kestra's `CsvToIon` and
//! `IonToCsv` tasks.
//!
//! A row read with a header is a struct of strings (column name → cell); without a
//! header, a list of strings. Kestra's CSV tasks do no type inference either.
//!
//! * naive reading: a fresh `StringRecord` per row (`records()`), 8 KiB buffer.
//! * batched reading: one `StringRecord` reused for every row (`read_record`),
//!   32 KiB buffer.
//! * writing, both modes: one `csv::Writer` per file, fields written straight from the
//!   record; 8 KiB buffer (naive) or 32 KiB (batched). Kestra's `IonToCsv` built one
//!   FastCSV writer per file before and after plugin-serdes commit 7c4a3a3 ("feat:
//!   improve performance for CSV", May 2024); that commit only put a
//!   `BufferedWriter` of `FileSerde.BUFFER_SIZE` (32 KiB, kestra 9b8a1c482) in front of
//!   the file. Before it, the bytes reached the file through the 8 KiB buffers that
//!   FastCSV 3.2 (`CsvWriterBuilder.bufferSize`) and Java's `FileWriter` encoder have by
//!   default.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::charset;
use super::{Error, ErrorKind, RecordReader, RecordWriter, Result, SerdeMode, Value};

/// Options of Kestra's `CsvToIon` / `IonToCsv` tasks, with their names and defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CsvOptions {
    /// Reading: the first row (after `skipRows`) names the columns. Writing: write a
    /// header row with the first record's field names.
    pub header: bool,
    /// The field separator, one ASCII character.
    pub field_separator: char,
    /// The quote character, one ASCII character.
    pub text_delimiter: char,
    /// Skip rows whose fields are all empty. (Blank lines are always skipped: the csv
    /// crate does not report them as rows.)
    pub skip_empty_rows: bool,
    /// Number of rows to skip at the start of the file, before the header.
    pub skip_rows: u64,
    /// Fail on a row whose field count differs from the header's (or, without a
    /// header, from the first row's).
    pub error_on_different_field_count: bool,
    /// Charset of the CSV file.
    pub charset: String,
    /// Writing: the line terminator, `"\n"` or `"\r\n"`.
    pub line_delimiter: String,
    /// Writing: quote every field, not only those that need it.
    pub always_delimit_text: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            field_separator: ',',
            text_delimiter: '"',
            skip_empty_rows: false,
            skip_rows: 0,
            error_on_different_field_count: false,
            charset: "UTF-8".to_owned(),
            line_delimiter: "\n".to_owned(),
            always_delimit_text: false,
        }
    }
}

fn ascii(c: char, name: &str, path: &Path) -> Result<u8> {
    u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| {
        Error::new(
            ErrorKind::Options,
            path,
            format!("{name} must be one ASCII character, not `{c}`"),
        )
    })
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    let kind = match e.kind() {
        csv::ErrorKind::Io(_) => ErrorKind::Io,
        csv::ErrorKind::Utf8 { .. } => ErrorKind::Encoding,
        _ => ErrorKind::InvalidCsv,
    };
    let err = Error::new(kind, path, e.to_string());
    match line {
        Some(l) => err.at_line(l),
        None => err,
    }
}

pub(crate) struct CsvReader<'a> {
    reader: csv::Reader<Box<dyn Read + 'a>>,
    /// Reused by the batched path.
    row: csv::StringRecord,
    mode: SerdeMode,
    opts: CsvOptions,
    /// `None` until the skipped rows and the header have been read.
    header: Option<Vec<String>>,
    started: bool,
    expected_fields: Option<usize>,
    path: PathBuf,
    records: u64,
}

impl<'a> CsvReader<'a> {
    pub(crate) fn new<R: Read + 'a>(
        input: R,
        path: &Path,
        opts: &CsvOptions,
        mode: SerdeMode,
    ) -> Result<Self> {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(ascii(opts.field_separator, "fieldSeparator", path)?)
            .quote(ascii(opts.text_delimiter, "textDelimiter", path)?)
            .buffer_capacity(mode.buffer_size())
            .from_reader(charset::decoding_reader(input, &opts.charset, path)?);
        Ok(CsvReader {
            reader,
            row: csv::StringRecord::new(),
            mode,
            opts: opts.clone(),
            header: None,
            started: false,
            expected_fields: None,
            path: path.to_path_buf(),
            records: 0,
        })
    }

    /// The next raw row, into `self.row`; `false` at the end.
    fn next_row(&mut self) -> Result<bool> {
        let record = self.records + 1;
        let path = &self.path;
        match self.mode {
            SerdeMode::Naive => match self.reader.records().next() {
                None => Ok(false),
                Some(row) => {
                    self.row = row.map_err(|e| csv_error(path, e).at_record(record))?;
                    Ok(true)
                }
            },
            SerdeMode::Batched => self
                .reader
                .read_record(&mut self.row)
                .map_err(|e| csv_error(path, e).at_record(record)),
        }
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        for _ in 0..self.opts.skip_rows {
            if !self.next_row()? {
                return Ok(());
            }
        }
        if self.opts.header && self.next_row()? {
            let names: Vec<String> = self.row.iter().map(str::to_owned).collect();
            self.expected_fields = Some(names.len());
            self.header = Some(names);
        }
        Ok(())
    }
}

impl RecordReader for CsvReader<'_> {
    fn next_record(&mut self) -> Result<Option<Value>> {
        if !self.started {
            self.start()?;
        }
        loop {
            if !self.next_row()? {
                return Ok(None);
            }
            if self.opts.skip_empty_rows && self.row.iter().all(str::is_empty) {
                continue;
            }
            let record = self.records + 1;
            let line = self.row.position().map_or(0, |p| p.line());
            let expected = *self.expected_fields.get_or_insert(self.row.len());
            if self.opts.error_on_different_field_count && self.row.len() != expected {
                return Err(Error::new(
                    ErrorKind::FieldCount,
                    &self.path,
                    format!("expected {expected} fields, found {}", self.row.len()),
                )
                .at_record(record)
                .at_line(line));
            }
            self.records = record;
            let value = match &self.header {
                // Fields past the header's width have no name and are dropped; missing
                // trailing fields are absent from the struct.
                Some(names) => Value::Struct(
                    names
                        .iter()
                        .zip(self.row.iter())
                        .map(|(k, v)| (k.clone(), Value::String(v.to_owned())))
                        .collect(),
                ),
                None => Value::List(
                    self.row
                        .iter()
                        .map(|v| Value::String(v.to_owned()))
                        .collect(),
                ),
            };
            return Ok(Some(value));
        }
    }
}

pub(crate) struct CsvWriter<'a> {
    /// The file's one writer, in both modes; only its buffer size differs.
    writer: csv::Writer<Box<dyn Write + 'a>>,
    header: bool,
    /// Column names, from the first struct record.
    columns: Option<Vec<String>>,
    path: PathBuf,
    records: u64,
}

impl<'a> CsvWriter<'a> {
    pub(crate) fn new<W: Write + 'a>(
        output: W,
        path: &Path,
        opts: &CsvOptions,
        mode: SerdeMode,
    ) -> Result<Self> {
        let terminator = match opts.line_delimiter.as_str() {
            "\n" => csv::Terminator::Any(b'\n'),
            "\r\n" => csv::Terminator::CRLF,
            other => {
                return Err(Error::new(
                    ErrorKind::Options,
                    path,
                    format!("lineDelimiter must be \"\\n\" or \"\\r\\n\", not {other:?}"),
                ));
            }
        };
        let output: Box<dyn Write + 'a> = charset::encoding_writer(output, &opts.charset, path)?;
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(ascii(opts.field_separator, "fieldSeparator", path)?)
            .quote(ascii(opts.text_delimiter, "textDelimiter", path)?)
            .terminator(terminator)
            .quote_style(if opts.always_delimit_text {
                csv::QuoteStyle::Always
            } else {
                csv::QuoteStyle::Necessary
            })
            // The only difference between the modes, as in Kestra (see the module docs).
            .buffer_capacity(mode.buffer_size())
            .from_writer(output);
        Ok(CsvWriter {
            writer,
            header: opts.header,
            columns: None,
            path: path.to_path_buf(),
            records: 0,
        })
    }

    /// The cells of a record, aligned on the columns for a struct.
    fn cells<'v>(&mut self, value: &'v Value, record: u64) -> Result<Vec<Option<&'v Value>>> {
        Ok(match value.unannotated() {
            Value::Struct(fields) => {
                let columns = self
                    .columns
                    .get_or_insert_with(|| fields.iter().map(|(k, _)| k.clone()).collect());
                if let Some((extra, _)) = fields.iter().find(|(k, _)| !columns.contains(k)) {
                    return Err(Error::new(
                        ErrorKind::Unrepresentable,
                        &self.path,
                        format!(
                            "field `{extra}` is not a CSV column (columns come from the first record)"
                        ),
                    )
                    .at_record(record));
                }
                columns.iter().map(|c| value.get(c)).collect()
            }
            Value::List(items) | Value::SExp(items) => items.iter().map(Some).collect(),
            scalar => vec![Some(scalar)],
        })
    }
}

fn cell_text(cell: Option<&Value>) -> std::borrow::Cow<'_, str> {
    match cell.map(Value::unannotated) {
        Some(Value::String(s) | Value::Symbol(s)) => s.as_str().into(),
        Some(v) => v.to_text().unwrap_or_default().into(),
        None => "".into(),
    }
}

impl RecordWriter for CsvWriter<'_> {
    fn write_record(&mut self, value: &Value) -> Result<()> {
        self.records += 1;
        let record = self.records;
        let first_struct =
            self.columns.is_none() && matches!(value.unannotated(), Value::Struct(_));
        let cells = self.cells(value, record)?;
        let header = match (&self.columns, self.header && first_struct) {
            (Some(columns), true) => Some(columns.clone()),
            _ => None,
        };
        let path = &self.path;
        let fail = |e: csv::Error| csv_error(path, e).at_record(record);
        if let Some(columns) = header {
            self.writer.write_record(&columns).map_err(fail)?;
        }
        for cell in &cells {
            self.writer
                .write_field(cell_text(*cell).as_bytes())
                .map_err(fail)?;
        }
        self.writer.write_record(None::<&[u8]>).map_err(fail)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let path = &self.path;
        self.writer.flush().map_err(|e| Error::io(path, e))
    }
}
