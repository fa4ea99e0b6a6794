//! ION: text Ion written one top-level value per line (as Kestra's `FileSerde`
//! writes it); text or binary Ion read.
//!
//! * naive reading: `read_line` into a fresh `String`, then a fresh Ion reader per
//!   line, as Kestra's `FileSerde.read` did with `BufferedReader.readLine` and
//!   `readValue(line)`. It therefore needs one value per line. Binary Ion has no lines,
//!   so binary input is read by the streaming reader in both modes.
//! * batched reading: one streaming Ion reader over the whole input, as Kestra's
//!   `MappingIterator` (`readerFor(Object.class).readValues(reader)`).
//! * naive writing: a fresh text writer per record into a fresh buffer, copied to the
//!   output with a newline, as Kestra's `writeValueAsString(row)` + `write("\n")`.
//! * batched writing: one text writer in `Lines` layout over a 32 KiB buffered output,
//!   as Kestra's reused `SequenceWriter`. ion-rs encodes into its own buffer until it is
//!   flushed, so each record is moved on to the output after it is written: memory
//!   stays bounded by one record, whatever the file's size.
//!
//! The text layout is ion-rs's (`{id: 1, name: "a", }`), not Jackson's
//! (`{id:1,name:"a"}`): the same Ion data, which any Ion reader, Kestra's included,
//! reads the same.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ion_rs::v1_0::Text;
use ion_rs::{
    AnyEncoding, Decimal, Decoder, IonResult, IonStream, IonType, LazyValue, Reader,
    SequenceWriter as _, StructWriter as _, TextFormat, ValueRef, ValueWriter, WriteAsIon,
    WriteConfig, Writer,
};

use super::{Error, ErrorKind, RecordReader, RecordWriter, Result, SerdeMode, Value};

/// The Ion version marker that opens every binary Ion 1.0 stream.
const BINARY_IVM: [u8; 4] = [0xE0, 0x01, 0x00, 0xEA];

type StreamReader<'a> = Reader<AnyEncoding, IonStream<Box<dyn BufRead + 'a>>>;

pub(crate) struct IonReader<'a> {
    inner: Inner<'a>,
    path: PathBuf,
    /// Records returned so far.
    records: u64,
}

enum Inner<'a> {
    Lines {
        input: Box<dyn BufRead + 'a>,
        line: u64,
        /// Values of the current line not yet returned (a line may hold several).
        pending: VecDeque<Value>,
    },
    Stream(Box<StreamReader<'a>>),
}

impl<'a> IonReader<'a> {
    pub(crate) fn new<R: Read + 'a>(input: R, path: &Path, mode: SerdeMode) -> Result<Self> {
        let mut input: Box<dyn BufRead + 'a> =
            Box::new(BufReader::with_capacity(mode.buffer_size(), input));
        let head = input.fill_buf().map_err(|e| Error::io(path, e))?;
        let binary = head.starts_with(&BINARY_IVM);
        let inner = if mode == SerdeMode::Naive && !binary {
            Inner::Lines {
                input,
                line: 0,
                pending: VecDeque::new(),
            }
        } else {
            let reader = Reader::new(AnyEncoding, IonStream::new(input))
                .map_err(|e| Error::new(ErrorKind::InvalidIon, path, e.to_string()))?;
            Inner::Stream(Box::new(reader))
        };
        Ok(IonReader {
            inner,
            path: path.to_path_buf(),
            records: 0,
        })
    }
}

impl RecordReader for IonReader<'_> {
    fn next_record(&mut self) -> Result<Option<Value>> {
        let record = self.records + 1;
        let path = &self.path;
        let invalid = |e: ion_rs::IonError| {
            Error::new(ErrorKind::InvalidIon, path, e.to_string()).at_record(record)
        };
        let next = match &mut self.inner {
            Inner::Stream(reader) => match StreamReader::next(reader).map_err(invalid)? {
                Some(lazy) => Some(from_lazy(&lazy).map_err(invalid)?),
                None => None,
            },
            Inner::Lines {
                input,
                line,
                pending,
            } => loop {
                if let Some(v) = pending.pop_front() {
                    break Some(v);
                }
                let mut text = String::new();
                let n = input
                    .read_line(&mut text)
                    .map_err(|e| Error::io(path, e).at_record(record).at_line(*line + 1))?;
                if n == 0 {
                    break None;
                }
                *line += 1;
                let at_line = |e: ion_rs::IonError| invalid(e).at_line(*line);
                let mut reader = Reader::new(AnyEncoding, text.as_bytes()).map_err(at_line)?;
                while let Some(lazy) = reader.next().map_err(at_line)? {
                    pending.push_back(from_lazy(&lazy).map_err(at_line)?);
                }
            },
        };
        if next.is_some() {
            self.records += 1;
        }
        Ok(next)
    }
}

/// Converts a lazily read Ion value, annotations included, into a [`Value`].
fn from_lazy<D: Decoder>(lazy: &LazyValue<'_, D>) -> IonResult<Value> {
    let value = match lazy.read()? {
        ValueRef::Null(_) => Value::Null,
        ValueRef::Bool(b) => Value::Bool(b),
        ValueRef::Int(i) => match i.expect_i64() {
            Ok(small) => Value::Int(small),
            Err(_) => Value::Decimal(Decimal::from(i)),
        },
        ValueRef::Float(f) => Value::Float(f),
        ValueRef::Decimal(d) => Value::Decimal(d),
        ValueRef::Timestamp(t) => Value::Timestamp(t),
        ValueRef::String(s) => Value::String(s.text().to_owned()),
        ValueRef::Symbol(s) => Value::Symbol(s.text().unwrap_or("$0").to_owned()),
        ValueRef::Blob(b) => Value::Blob(b.data().to_vec()),
        ValueRef::Clob(b) => Value::Clob(b.data().to_vec()),
        ValueRef::List(list) => Value::List(
            list.iter()
                .map(|v| from_lazy(&v?))
                .collect::<IonResult<_>>()?,
        ),
        ValueRef::SExp(sexp) => Value::SExp(
            sexp.iter()
                .map(|v| from_lazy(&v?))
                .collect::<IonResult<_>>()?,
        ),
        ValueRef::Struct(s) => {
            let mut fields = Vec::new();
            for field in s.iter() {
                let field = field?;
                let name = field.name()?.text().unwrap_or("$0").to_owned();
                fields.push((name, from_lazy(&field.value())?));
            }
            Value::Struct(fields)
        }
    };
    if !lazy.has_annotations() {
        return Ok(value);
    }
    let annotations = lazy
        .annotations()
        .map(|a| a.map(|s| s.text().unwrap_or("$0").to_owned()))
        .collect::<IonResult<Vec<_>>>()?;
    Ok(Value::Annotated(annotations, Box::new(value)))
}

impl WriteAsIon for Value {
    fn write_as_ion<V: ValueWriter>(&self, writer: V) -> IonResult<()> {
        match self {
            Value::Null => writer.write_null(IonType::Null),
            Value::Bool(b) => writer.write_bool(*b),
            Value::Int(i) => writer.write_i64(*i),
            Value::Float(f) => writer.write_f64(*f),
            Value::Decimal(d) => writer.write_decimal(d),
            Value::Timestamp(t) => writer.write_timestamp(t),
            Value::String(s) => writer.write_string(s),
            Value::Symbol(s) => writer.write_symbol(s.as_str()),
            Value::Blob(b) => writer.write_blob(b),
            Value::Clob(b) => writer.write_clob(b),
            Value::List(items) => {
                let mut list = writer.list_writer()?;
                for item in items {
                    list.write(item)?;
                }
                list.close()
            }
            Value::SExp(items) => {
                let mut sexp = writer.sexp_writer()?;
                for item in items {
                    sexp.write(item)?;
                }
                sexp.close()
            }
            Value::Struct(fields) => {
                let mut st = writer.struct_writer()?;
                for (name, value) in fields {
                    st.write(name.as_str(), value)?;
                }
                st.close()
            }
            Value::Annotated(annotations, inner) => {
                let annotations: Vec<&str> = annotations.iter().map(String::as_str).collect();
                inner.write_as_ion(writer.with_annotations(annotations)?)
            }
        }
    }
}

pub(crate) fn writer<'a, W: Write + 'a>(
    output: W,
    path: &Path,
    mode: SerdeMode,
) -> Box<dyn RecordWriter + 'a> {
    let output = BufWriter::with_capacity(mode.buffer_size(), output);
    match mode {
        SerdeMode::Naive => Box::new(NaiveIonWriter {
            output,
            path: path.to_path_buf(),
            records: 0,
        }),
        SerdeMode::Batched => Box::new(BatchedIonWriter {
            writer: None,
            output: Some(output),
            path: path.to_path_buf(),
            records: 0,
        }),
    }
}

fn write_error(path: &Path, record: u64, e: ion_rs::IonError) -> Error {
    Error::new(ErrorKind::Io, path, e.to_string()).at_record(record)
}

/// A fresh writer and buffer per record.
struct NaiveIonWriter<W: Write> {
    output: BufWriter<W>,
    path: PathBuf,
    records: u64,
}

impl<W: Write> RecordWriter for NaiveIonWriter<W> {
    fn write_record(&mut self, value: &Value) -> Result<()> {
        self.records += 1;
        let record = self.records;
        let fail = |e| write_error(&self.path, record, e);
        let mut writer =
            Writer::new(WriteConfig::<Text>::new(TextFormat::Lines), Vec::new()).map_err(fail)?;
        writer.write(value).map_err(fail)?;
        let text = writer.close().map_err(fail)?;
        // The `Lines` layout ends a top-level value with its newline already.
        let newline: &[u8] = if text.ends_with(b"\n") { b"" } else { b"\n" };
        self.output
            .write_all(&text)
            .and_then(|()| self.output.write_all(newline))
            .map_err(|e| Error::io(&self.path, e).at_record(record))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.output.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// One writer for the whole output. It is created on the first record so that an
/// empty input gives an empty file, as the naive writer does.
struct BatchedIonWriter<W: Write> {
    writer: Option<Writer<Text, Unflushed<BufWriter<W>>>>,
    output: Option<BufWriter<W>>,
    path: PathBuf,
    records: u64,
}

/// The buffered output seen by ion-rs: `Writer::flush` moves the encoded bytes into the
/// buffer and then flushes its output, which here must not reach the file per record.
struct Unflushed<W>(W);

impl<W: Write> Write for Unflushed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> RecordWriter for BatchedIonWriter<W> {
    fn write_record(&mut self, value: &Value) -> Result<()> {
        self.records += 1;
        let record = self.records;
        let path = &self.path;
        let fail = |e| write_error(path, record, e);
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let output = self.output.take().expect("output is kept until first use");
                let config = WriteConfig::<Text>::new(TextFormat::Lines);
                self.writer
                    .insert(Writer::new(config, Unflushed(output)).map_err(fail)?)
            }
        };
        writer.write(value).map_err(fail)?;
        writer.flush().map_err(fail)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let mut output = match self.writer {
            Some(w) => {
                w.close()
                    .map_err(|e| write_error(&self.path, self.records, e))?
                    .0
            }
            None => self.output.expect("output is kept until first use"),
        };
        output.flush().map_err(|e| Error::io(&self.path, e))
    }
}
