//! Avro object container files, through `apache-avro`, with the options of Kestra's
//! `AvroToIon` / `IonToAvro` tasks.
//!
//! Kestra's FileSerde fix did not change Avro encoding or decoding: its Avro tasks
//! used Avro's own `DataFileStream`/`DataFileWriter` before and after, and gained on
//! the ION side. So here the two modes differ only in the I/O buffer size (8 KiB or
//! 32 KiB); the record conversion is shared.

mod convert;

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::{Codec, DeflateSettings, Schema, ZstandardSettings};
use serde::Deserialize;

use super::{Error, ErrorKind, RecordReader, RecordWriter, Result, SerdeMode, Value};

/// Options of Kestra's `IonToAvro` task (reading Avro needs none: the file carries
/// its schema).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AvroOptions {
    /// The Avro schema, as JSON text. Required for writing.
    pub schema: Option<String>,
    /// Fail on a field present in a record but not declared in the schema (otherwise
    /// it is dropped).
    pub strict_schema: bool,
    /// Turn strings listed in `nullValues` into null for every nullable field, even
    /// where a union lists a string type before `null`. When false, the union's
    /// branches are tried in their declared order, so `["string","null"]` keeps the
    /// string.
    pub infer_all_fields: bool,
    /// Strings read as `true` for boolean fields.
    pub true_values: Vec<String>,
    /// Strings read as `false` for boolean fields.
    pub false_values: Vec<String>,
    /// Strings read as null for nullable fields.
    pub null_values: Vec<String>,
    /// Compression of the written file: `null`, `deflate`, `snappy` or `zstandard`
    /// (not a Kestra option; Kestra writes uncompressed files).
    pub codec: String,
}

impl Default for AvroOptions {
    fn default() -> Self {
        let strings = |s: &[&str]| s.iter().map(|v| v.to_string()).collect();
        AvroOptions {
            schema: None,
            strict_schema: false,
            infer_all_fields: false,
            true_values: strings(&["t", "true", "enabled", "1", "on", "yes"]),
            false_values: strings(&["f", "false", "disabled", "0", "off", "no", ""]),
            null_values: strings(&[
                "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "1.#IND", "1.#QNAN",
                "NA", "n/a", "nan", "null",
            ]),
            codec: "null".to_owned(),
        }
    }
}

type Names = HashMap<Name, Schema>;

fn names_of(schema: &Schema, path: &Path) -> Result<Names> {
    let resolved = ResolvedSchema::try_from(schema)
        .map_err(|e| Error::new(ErrorKind::Schema, path, e.to_string()))?;
    Ok(resolved
        .get_names()
        .iter()
        .map(|(k, v)| (k.clone(), (*v).clone()))
        .collect())
}

pub(crate) struct AvroReader<'a> {
    reader: apache_avro::Reader<'a, BufReader<Box<dyn Read + 'a>>>,
    schema: Schema,
    names: Names,
    path: PathBuf,
    records: u64,
}

impl<'a> AvroReader<'a> {
    pub(crate) fn new<R: Read + 'a>(input: R, path: &Path, mode: SerdeMode) -> Result<Self> {
        let input: Box<dyn Read + 'a> = Box::new(input);
        let reader = apache_avro::Reader::new(BufReader::with_capacity(mode.buffer_size(), input))
            .map_err(|e| Error::new(ErrorKind::InvalidAvro, path, e.to_string()))?;
        let schema = reader.writer_schema().clone();
        let names = names_of(&schema, path)?;
        Ok(AvroReader {
            reader,
            schema,
            names,
            path: path.to_path_buf(),
            records: 0,
        })
    }
}

impl RecordReader for AvroReader<'_> {
    fn next_record(&mut self) -> Result<Option<Value>> {
        let record = self.records + 1;
        match self.reader.next() {
            None => Ok(None),
            Some(Err(e)) => {
                Err(Error::new(ErrorKind::InvalidAvro, &self.path, e.to_string()).at_record(record))
            }
            Some(Ok(avro)) => {
                let value = convert::from_avro(avro, &self.schema, &self.names).map_err(|m| {
                    Error::new(ErrorKind::InvalidAvro, &self.path, m).at_record(record)
                })?;
                self.records = record;
                Ok(Some(value))
            }
        }
    }
}

/// Parsed schemas, one per distinct schema text, kept for the life of the process:
/// `apache_avro::Writer` borrows its schema, and a flow uses a handful of schemas.
fn interned_schema(text: &str, path: &Path) -> Result<&'static Schema> {
    static SCHEMAS: OnceLock<Mutex<HashMap<String, &'static Schema>>> = OnceLock::new();
    let mut schemas = SCHEMAS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(schema) = schemas.get(text) {
        return Ok(schema);
    }
    let schema = Schema::parse_str(text)
        .map_err(|e| Error::new(ErrorKind::Schema, path, format!("invalid Avro schema: {e}")))?;
    let schema: &'static Schema = Box::leak(Box::new(schema));
    schemas.insert(text.to_owned(), schema);
    Ok(schema)
}

fn codec(name: &str, path: &Path) -> Result<Codec> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "null" | "none" => Codec::Null,
        "deflate" => Codec::Deflate(DeflateSettings::default()),
        "snappy" => Codec::Snappy,
        "zstandard" | "zstd" => Codec::Zstandard(ZstandardSettings::default()),
        other => {
            return Err(Error::new(
                ErrorKind::Options,
                path,
                format!(
                    "unknown Avro codec `{other}` (expected null, deflate, snappy or zstandard)"
                ),
            ));
        }
    })
}

pub(crate) struct AvroWriter<'a> {
    writer: apache_avro::Writer<'static, BufWriter<Box<dyn Write + 'a>>>,
    schema: &'static Schema,
    names: Names,
    opts: AvroOptions,
    path: PathBuf,
    records: u64,
}

impl<'a> AvroWriter<'a> {
    pub(crate) fn new<W: Write + 'a>(
        output: W,
        path: &Path,
        opts: &AvroOptions,
        mode: SerdeMode,
    ) -> Result<Self> {
        let text = opts
            .schema
            .as_deref()
            .ok_or_else(|| Error::new(ErrorKind::Options, path, "writing Avro needs a `schema`"))?;
        let schema = interned_schema(text, path)?;
        let output: Box<dyn Write + 'a> = Box::new(output);
        let writer = apache_avro::Writer::builder()
            .schema(schema)
            .writer(BufWriter::with_capacity(mode.buffer_size(), output))
            .codec(codec(&opts.codec, path)?)
            .build();
        Ok(AvroWriter {
            writer,
            schema,
            names: names_of(schema, path)?,
            opts: opts.clone(),
            path: path.to_path_buf(),
            records: 0,
        })
    }
}

impl RecordWriter for AvroWriter<'_> {
    fn write_record(&mut self, value: &Value) -> Result<()> {
        self.records += 1;
        let record = self.records;
        let avro = convert::to_avro(value, self.schema, &self.names, &self.opts)
            .map_err(|m| Error::new(ErrorKind::Schema, &self.path, m).at_record(record))?;
        self.writer
            .append(avro)
            .map(|_| ())
            .map_err(|e| Error::new(ErrorKind::Schema, &self.path, e.to_string()).at_record(record))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let path = self.path;
        // Writes the header even for zero records, so the file is a valid container.
        let mut output = self
            .writer
            .into_inner()
            .map_err(|e| Error::new(ErrorKind::Io, &path, e.to_string()))?;
        output.flush().map_err(|e| Error::io(&path, e))
    }
}
