//! JSON Lines (and one JSON array with `newLine: false`), through `serde_json`.
//!
//! * naive reading: `read_line` into a fresh `String`, then `serde_json::from_str`
//!   per line (Kestra's `readLine` + `readValue(line)`).
//! * batched reading: each line read into one line buffer reused across records, from
//!   a 32 KiB buffered input, and parsed in place with `serde_json::from_slice`. This
//!   is what Kestra's `MappingIterator` saved: no fresh `String` per line and no
//!   second pass over it. (A `serde_json::StreamDeserializer` over an `io::Read` pulls
//!   the input one byte at a time through the reader, which is slower than both.)
//! * naive writing: `serde_json::to_vec` per record into a fresh buffer, then copied
//!   (Kestra's `writeValueAsString(row)`).
//! * batched writing: `serde_json::to_writer` straight into one 32 KiB buffered
//!   output. A `serde_json::Serializer` is a writer and a zero-sized formatter, so
//!   building one per record costs nothing; what Kestra's reused `SequenceWriter`
//!   saved, the fresh buffer and the copy, is what this path avoids.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::charset;
use super::{Error, ErrorKind, RecordReader, RecordWriter, Result, SerdeMode, Value};

/// Options of Kestra's `JsonToIon` / `IonToJson` tasks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JsonOptions {
    /// `true`: one JSON value per line (JSON Lines); `false`: one JSON array.
    pub new_line: bool,
    /// Charset of the JSON file.
    pub charset: String,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            new_line: true,
            charset: "UTF-8".to_owned(),
        }
    }
}

fn json_error(path: &Path, e: serde_json::Error) -> Error {
    // serde_json reports invalid UTF-8 in a string as an invalid code point.
    let kind = if e.is_io() {
        ErrorKind::Io
    } else if e.to_string().contains("invalid unicode code point") {
        ErrorKind::Encoding
    } else {
        ErrorKind::InvalidJson
    };
    Error::new(kind, path, e.to_string())
}

pub(crate) fn reader<'a, R: Read + 'a>(
    input: R,
    path: &Path,
    opts: &JsonOptions,
    mode: SerdeMode,
) -> Result<Box<dyn RecordReader + 'a>> {
    let input = BufReader::with_capacity(
        mode.buffer_size(),
        charset::decoding_reader(input, &opts.charset, path)?,
    );
    let path = path.to_path_buf();
    Ok(match (opts.new_line, mode) {
        (false, _) => {
            // A JSON array is one value: it is parsed whole, then handed out.
            let values: Vec<Value> =
                serde_json::from_reader(input).map_err(|e| json_error(&path, e))?;
            Box::new(ArrayReader {
                values: values.into_iter(),
            })
        }
        (true, mode) => Box::new(LinesReader {
            input,
            mode,
            buffer: Vec::with_capacity(256),
            path,
            line: 0,
            records: 0,
        }),
    })
}

struct ArrayReader {
    values: std::vec::IntoIter<Value>,
}

impl RecordReader for ArrayReader {
    fn next_record(&mut self) -> Result<Option<Value>> {
        Ok(self.values.next())
    }
}

/// JSON Lines, one record per line, in either mode.
struct LinesReader<R> {
    input: R,
    mode: SerdeMode,
    /// The batched path's line buffer; its capacity is kept from one record to the next.
    buffer: Vec<u8>,
    path: PathBuf,
    line: u64,
    records: u64,
}

impl<R: BufRead> LinesReader<R> {
    /// Reads the next line and parses it unless it is blank: `None` at the end,
    /// `Some(None)` for a blank line.
    fn next_line(&mut self) -> std::io::Result<Option<Option<serde_json::Result<Value>>>> {
        let parsed = match self.mode {
            SerdeMode::Naive => {
                let mut line = String::new();
                if self.input.read_line(&mut line)? == 0 {
                    return Ok(None);
                }
                (!line.trim().is_empty()).then(|| serde_json::from_str(&line))
            }
            SerdeMode::Batched => {
                self.buffer.clear();
                if self.input.read_until(b'\n', &mut self.buffer)? == 0 {
                    return Ok(None);
                }
                let blank = self.buffer.iter().all(u8::is_ascii_whitespace);
                (!blank).then(|| serde_json::from_slice(&self.buffer))
            }
        };
        Ok(Some(parsed))
    }
}

impl<R: BufRead> RecordReader for LinesReader<R> {
    fn next_record(&mut self) -> Result<Option<Value>> {
        loop {
            let record = self.records + 1;
            let line = self.line + 1;
            let parsed = self
                .next_line()
                .map_err(|e| Error::io(&self.path, e).at_record(record).at_line(line))?;
            let Some(parsed) = parsed else {
                return Ok(None);
            };
            self.line = line;
            let Some(parsed) = parsed else {
                continue;
            };
            let value =
                parsed.map_err(|e| json_error(&self.path, e).at_record(record).at_line(line))?;
            self.records = record;
            return Ok(Some(value));
        }
    }
}

pub(crate) fn writer<'a, W: Write + 'a>(
    output: W,
    path: &Path,
    opts: &JsonOptions,
    mode: SerdeMode,
) -> Result<Box<dyn RecordWriter + 'a>> {
    let output = BufWriter::with_capacity(
        mode.buffer_size(),
        charset::encoding_writer(output, &opts.charset, path)?,
    );
    Ok(Box::new(JsonWriter {
        output,
        path: path.to_path_buf(),
        mode,
        new_line: opts.new_line,
        records: 0,
    }))
}

struct JsonWriter<W: Write> {
    output: BufWriter<W>,
    path: PathBuf,
    mode: SerdeMode,
    new_line: bool,
    records: u64,
}

impl<W: Write> RecordWriter for JsonWriter<W> {
    fn write_record(&mut self, value: &Value) -> Result<()> {
        self.records += 1;
        let record = self.records;
        let path = &self.path;
        let out = &mut self.output;
        let io = |e| Error::io(path, e).at_record(record);
        if !self.new_line {
            out.write_all(if record == 1 { b"[" } else { b"," })
                .map_err(io)?;
        }
        match self.mode {
            SerdeMode::Naive => {
                let bytes =
                    serde_json::to_vec(value).map_err(|e| json_error(path, e).at_record(record))?;
                out.write_all(&bytes).map_err(io)?;
            }
            SerdeMode::Batched => {
                serde_json::to_writer(&mut *out, value)
                    .map_err(|e| json_error(path, e).at_record(record))?;
            }
        }
        if self.new_line {
            out.write_all(b"\n").map_err(io)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        if !self.new_line {
            let close: &[u8] = if self.records == 0 { b"[]" } else { b"]" };
            self.output
                .write_all(close)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.output.flush().map_err(|e| Error::io(&self.path, e))
    }
}
