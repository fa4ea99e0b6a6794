//! JSON Lines (and one JSON array with `newLine: false`), through `serde_json`.
//!
//! * naive reading: `read_line` into a fresh `String`, then `serde_json::from_str`
//!   per line (Kestra's `readLine` + `readValue(line)`).
//! * batched reading: one `serde_json::StreamDeserializer` over a 32 KiB buffered
//!   input (Kestra's `MappingIterator`).
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
        (true, SerdeMode::Naive) => Box::new(NaiveJsonReader {
            input,
            path,
            line: 0,
            records: 0,
        }),
        (true, SerdeMode::Batched) => Box::new(BatchedJsonReader {
            stream: serde_json::Deserializer::from_reader(input).into_iter(),
            path,
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

struct NaiveJsonReader<R> {
    input: R,
    path: PathBuf,
    line: u64,
    records: u64,
}

impl<R: BufRead> RecordReader for NaiveJsonReader<R> {
    fn next_record(&mut self) -> Result<Option<Value>> {
        loop {
            let record = self.records + 1;
            let mut line = String::new();
            let n = self.input.read_line(&mut line).map_err(|e| {
                Error::io(&self.path, e)
                    .at_record(record)
                    .at_line(self.line + 1)
            })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(&line).map_err(|e| {
                json_error(&self.path, e)
                    .at_record(record)
                    .at_line(self.line)
            })?;
            self.records = record;
            return Ok(Some(value));
        }
    }
}

struct BatchedJsonReader<'de, R: serde_json::de::Read<'de>> {
    stream: serde_json::StreamDeserializer<'de, R, Value>,
    path: PathBuf,
    records: u64,
}

impl<'de, R: serde_json::de::Read<'de>> RecordReader for BatchedJsonReader<'de, R> {
    fn next_record(&mut self) -> Result<Option<Value>> {
        match self.stream.next() {
            None => Ok(None),
            Some(Ok(v)) => {
                self.records += 1;
                Ok(Some(v))
            }
            Some(Err(e)) => {
                let line = e.line() as u64;
                Err(json_error(&self.path, e)
                    .at_record(self.records + 1)
                    .at_line(line))
            }
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
