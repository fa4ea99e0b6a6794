//! FileSerde: read, write and convert record files between ION, JSON Lines, CSV and
//! Avro, the formats of Kestra's `io.kestra.plugin.serdes` tasks.
//!
//! Kestra keeps task data in internal storage as ION text, one value per line. Its
//! first performance fix (Kestra 0.19/0.20, `io.kestra.core.serializers.FileSerde`)
//! replaced a serializer created per row and `readLine`-then-parse reading with one
//! streaming serializer/deserializer reused across rows and 32 KiB buffers. This
//! module keeps both code paths behind the [`SerdeMode`] knob (`serde.mode`), so the
//! harness can measure one against the other; both produce the same output.
//!
//! # Primary types
//!
//! * [`Value`]: the dynamic record, following Ion's data model.
//! * [`Format`], [`SerdeMode`], [`ConvertOptions`] (with [`CsvOptions`],
//!   [`JsonOptions`], [`AvroOptions`], which deserialize from a Kestra task's YAML
//!   properties).
//! * [`convert`] and one function per Kestra task ([`csv_to_ion`], [`ion_to_csv`],
//!   [`json_to_ion`], [`ion_to_json`], [`avro_to_ion`], [`ion_to_avro`]), returning
//!   [`ConvertStats`].
//! * [`RecordReader`] / [`RecordWriter`] from [`reader`] / [`writer`], to stream
//!   records without a file on one side.
//! * [`Error`] with its [`ErrorKind`], the file, and the record or line number.
//!
//! # Layout
//!
//! * `value`: the [`Value`] type and its JSON mapping.
//! * `ion`, `jsonl`, `csv`, `avro`: one reader and one writer per format, each with
//!   a naive and a batched path.
//! * `charset`: decoding and encoding of non-UTF-8 text.
//! * `cli`: the `orchestrator convert` subcommand.
//! * `error`: [`Error`] and [`ErrorKind`].
//!
//! # Example
//!
//! ```
//! use orchestrator::fileserde::{self, ConvertOptions, Format, SerdeMode, Value};
//!
//! let dir = tempfile::tempdir()?;
//! let csv = dir.path().join("in.csv");
//! std::fs::write(&csv, "id,name\n1,\"Doe, Jane\"\n")?;
//! let ion = dir.path().join("out.ion");
//! let stats = fileserde::convert(&csv, Format::Csv, &ion, Format::Ion,
//!                                &ConvertOptions::default(), SerdeMode::Batched)?;
//! assert_eq!(stats.records, 1);
//! assert_eq!(std::fs::read_to_string(&ion)?, "{id: \"1\", name: \"Doe, Jane\", }\n");
//! let rows = fileserde::read_all(&ion, Format::Ion, &ConvertOptions::default(), SerdeMode::Naive)?;
//! assert_eq!(rows[0].get("name"), Some(&Value::String("Doe, Jane".into())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod avro;
mod charset;
pub mod cli;
mod csv;
mod error;
mod ion;
mod jsonl;
mod value;

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

pub use self::avro::AvroOptions;
pub use self::csv::CsvOptions;
pub use self::error::{Error, ErrorKind, Result};
pub use self::jsonl::JsonOptions;
pub use self::value::{Decimal, Timestamp, Value};

/// Buffer size of the naive path, as Kestra's `BufferedReader`/`BufferedWriter` default.
pub const NAIVE_BUFFER_SIZE: usize = 8 * 1024;
/// Buffer size of the batched path, as Kestra's `FileSerde.BUFFER_SIZE`.
pub const BATCHED_BUFFER_SIZE: usize = 32 * 1024;

/// The `serde.mode` knob: which of the two faithful code paths reads and writes records.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SerdeMode {
    /// Kestra before the fix: each record serialized into a fresh buffer by a fresh
    /// serializer; input read with `read_line`, then each line parsed; 8 KiB buffers.
    /// This follows `FileSerde.write`/`FileSerde.reader` before kestra-io/kestra 9b8a1c482
    /// (the streaming `readAll`/`writeAll`, 32 KiB), which plugin-serdes' conversion tasks
    /// adopted in its 7c4a3a342.
    Naive,
    /// Kestra after the fix: one streaming serializer/deserializer reused across
    /// records, 32 KiB buffers.
    #[default]
    Batched,
}

impl SerdeMode {
    /// The I/O buffer size this mode uses.
    pub fn buffer_size(self) -> usize {
        match self {
            SerdeMode::Naive => NAIVE_BUFFER_SIZE,
            SerdeMode::Batched => BATCHED_BUFFER_SIZE,
        }
    }

    /// The knob values, for the harness.
    pub const ALL: [SerdeMode; 2] = [SerdeMode::Naive, SerdeMode::Batched];
}

impl FromStr for SerdeMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "naive" => Ok(SerdeMode::Naive),
            "batched" => Ok(SerdeMode::Batched),
            _ => Err(format!(
                "unknown serde.mode `{s}` (expected naive or batched)"
            )),
        }
    }
}

impl fmt::Display for SerdeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SerdeMode::Naive => "naive",
            SerdeMode::Batched => "batched",
        })
    }
}

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Ion: written as text, one top-level value per line; read as text or binary.
    Ion,
    /// JSON Lines (or one JSON array with `newLine: false`).
    Json,
    Csv,
    /// Avro object container file.
    Avro,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Ion, Format::Json, Format::Csv, Format::Avro];
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ion" => Ok(Format::Ion),
            "json" | "jsonl" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "avro" => Ok(Format::Avro),
            _ => Err(format!(
                "unknown format `{s}` (expected ion, json, csv or avro)"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ion => "ion",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Avro => "avro",
        })
    }
}

/// The options of all formats; only those of the two formats involved are used.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ConvertOptions {
    pub csv: CsvOptions,
    pub json: JsonOptions,
    pub avro: AvroOptions,
}

/// What a conversion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvertStats {
    /// Records read (and written).
    pub records: u64,
    /// Size of the input file.
    pub bytes_in: u64,
    /// Size of the output file.
    pub bytes_out: u64,
}

/// Pulls records one at a time from an input.
pub trait RecordReader {
    /// The next record, or `None` at the end of the input.
    fn next_record(&mut self) -> Result<Option<Value>>;
}

/// Pushes records one at a time to an output.
pub trait RecordWriter {
    fn write_record(&mut self, value: &Value) -> Result<()>;
    /// Writes what is buffered and the format's trailer. Without it the output is
    /// incomplete.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A reader of `format` over `input`. `path` names the input in errors.
pub fn reader<'a, R: Read + 'a>(
    format: Format,
    input: R,
    path: &Path,
    opts: &ConvertOptions,
    mode: SerdeMode,
) -> Result<Box<dyn RecordReader + 'a>> {
    Ok(match format {
        Format::Ion => Box::new(ion::IonReader::new(input, path, mode)?),
        Format::Json => jsonl::reader(input, path, &opts.json, mode)?,
        Format::Csv => Box::new(csv::CsvReader::new(input, path, &opts.csv, mode)?),
        Format::Avro => Box::new(avro::AvroReader::new(input, path, mode)?),
    })
}

/// A writer of `format` into `output`. `path` names the output in errors.
pub fn writer<'a, W: Write + 'a>(
    format: Format,
    output: W,
    path: &Path,
    opts: &ConvertOptions,
    mode: SerdeMode,
) -> Result<Box<dyn RecordWriter + 'a>> {
    Ok(match format {
        Format::Ion => ion::writer(output, path, mode),
        Format::Json => jsonl::writer(output, path, &opts.json, mode)?,
        Format::Csv => Box::new(csv::CsvWriter::new(output, path, &opts.csv, mode)?),
        Format::Avro => Box::new(avro::AvroWriter::new(output, path, &opts.avro, mode)?),
    })
}

/// Converts `input` (in format `from`) into `output` (in format `to`).
///
/// The output is written to a temporary file in `output`'s folder and renamed over
/// `output` only when every record was written, so a failed conversion leaves no
/// partial file behind.
pub fn convert(
    input: &Path,
    from: Format,
    output: &Path,
    to: Format,
    opts: &ConvertOptions,
    mode: SerdeMode,
) -> Result<ConvertStats> {
    let file = File::open(input).map_err(|e| Error::io(input, e))?;
    let bytes_in = file.metadata().map_err(|e| Error::io(input, e))?.len();
    let mut source = reader(from, file, input, opts, mode)?;
    let mut records = 0;
    let bytes_out = write_atomically(output, |out| {
        let mut sink = writer(to, out, output, opts, mode)?;
        while let Some(value) = source.next_record()? {
            records += 1;
            sink.write_record(&value)?;
        }
        sink.finish()
    })?;
    Ok(ConvertStats {
        records,
        bytes_in,
        bytes_out,
    })
}

/// Reads every record of a file.
pub fn read_all(
    path: &Path,
    format: Format,
    opts: &ConvertOptions,
    mode: SerdeMode,
) -> Result<Vec<Value>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut source = reader(format, file, path, opts, mode)?;
    let mut out = Vec::new();
    while let Some(v) = source.next_record()? {
        out.push(v);
    }
    Ok(out)
}

/// Writes records to a file, atomically as [`convert`] does. Returns the file size.
pub fn write_all(
    path: &Path,
    format: Format,
    values: &[Value],
    opts: &ConvertOptions,
    mode: SerdeMode,
) -> Result<u64> {
    write_atomically(path, |out| {
        let mut sink = writer(format, out, path, opts, mode)?;
        for v in values {
            sink.write_record(v)?;
        }
        sink.finish()
    })
}

fn write_atomically(output: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<u64> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".fileserde-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(output, e))?;
    // On error `tmp` is dropped here, which deletes the partial file.
    write(tmp.as_file_mut())?;
    let len = tmp
        .as_file()
        .metadata()
        .map_err(|e| Error::io(output, e))?
        .len();
    tmp.persist(output)
        .map_err(|e| Error::io(output, e.error))?;
    Ok(len)
}

/// Kestra's `CsvToIon`.
pub fn csv_to_ion(
    input: &Path,
    output: &Path,
    csv: &CsvOptions,
    mode: SerdeMode,
) -> Result<ConvertStats> {
    let opts = ConvertOptions {
        csv: csv.clone(),
        ..Default::default()
    };
    convert(input, Format::Csv, output, Format::Ion, &opts, mode)
}

/// Kestra's `IonToCsv`.
pub fn ion_to_csv(
    input: &Path,
    output: &Path,
    csv: &CsvOptions,
    mode: SerdeMode,
) -> Result<ConvertStats> {
    let opts = ConvertOptions {
        csv: csv.clone(),
        ..Default::default()
    };
    convert(input, Format::Ion, output, Format::Csv, &opts, mode)
}

/// Kestra's `JsonToIon`.
pub fn json_to_ion(
    input: &Path,
    output: &Path,
    json: &JsonOptions,
    mode: SerdeMode,
) -> Result<ConvertStats> {
    let opts = ConvertOptions {
        json: json.clone(),
        ..Default::default()
    };
    convert(input, Format::Json, output, Format::Ion, &opts, mode)
}

/// Kestra's `IonToJson`.
pub fn ion_to_json(
    input: &Path,
    output: &Path,
    json: &JsonOptions,
    mode: SerdeMode,
) -> Result<ConvertStats> {
    let opts = ConvertOptions {
        json: json.clone(),
        ..Default::default()
    };
    convert(input, Format::Ion, output, Format::Json, &opts, mode)
}

/// Kestra's `AvroToIon`.
pub fn avro_to_ion(input: &Path, output: &Path, mode: SerdeMode) -> Result<ConvertStats> {
    convert(
        input,
        Format::Avro,
        output,
        Format::Ion,
        &ConvertOptions::default(),
        mode,
    )
}

/// Kestra's `IonToAvro`; `avro.schema` is required.
pub fn ion_to_avro(
    input: &Path,
    output: &Path,
    avro: &AvroOptions,
    mode: SerdeMode,
) -> Result<ConvertStats> {
    let opts = ConvertOptions {
        avro: avro.clone(),
        ..Default::default()
    };
    convert(input, Format::Ion, output, Format::Avro, &opts, mode)
}
