//! FileSerde micro-benchmarks: naive vs batched for each format and direction.
//!
//! Groups are `fileserde/<format>/<direction>` with one bench per `serde.mode`;
//! `read` decodes an in-memory file, `write` encodes prebuilt records into a `Vec`,
//! `convert` does both (CSV/JSON/Avro → ION, as Kestra's `…ToIon` tasks; ION → JSON).
//! `fileserde/json/write` also has `serde_json_vec_ceiling`: `serde_json::to_writer`
//! straight into a `Vec`, the fastest JSON Lines writing can be.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::fileserde::{
    self, AvroOptions, ConvertOptions, Format, SerdeMode, Timestamp, Value,
};

const ROWS: usize = 5_000;

const SCHEMA: &str = r#"{"type":"record","name":"Order","fields":[
  {"name":"id","type":"long"},
  {"name":"customer","type":"string"},
  {"name":"email","type":["null","string"]},
  {"name":"amount","type":"double"},
  {"name":"active","type":"boolean"},
  {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"tags","type":{"type":"array","items":"string"}}]}"#;

/// Rows shaped like a typical Kestra extract: a struct of scalars and a short list.
fn rows(csv_like: bool) -> Vec<Value> {
    (0..ROWS)
        .map(|i| {
            let created = Timestamp::with_ymd(2024, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
                .with_hms((i % 24) as u32, (i % 60) as u32, 7)
                .with_milliseconds((i % 1000) as u32)
                .with_offset(0)
                .build()
                .expect("valid timestamp");
            let fields: Vec<(String, Value)> = vec![
                ("id".into(), Value::Int(i as i64)),
                (
                    "customer".into(),
                    Value::String(format!("Customer {i}, Ltd")),
                ),
                (
                    "email".into(),
                    Value::String(format!("user{i}@example.com")),
                ),
                ("amount".into(), Value::Float(i as f64 * 1.25)),
                ("active".into(), Value::Bool(i % 3 == 0)),
                ("created".into(), Value::Timestamp(created)),
                (
                    "tags".into(),
                    Value::List(vec![
                        Value::String("a".into()),
                        Value::String(format!("t{}", i % 7)),
                    ]),
                ),
            ];
            if csv_like {
                // CSV has only text and no nesting.
                let text = fields
                    .into_iter()
                    .filter(|(k, _)| k != "tags")
                    .map(|(k, v)| (k, Value::String(v.to_text().unwrap_or_default())))
                    .collect();
                return Value::Struct(text);
            }
            Value::Struct(fields)
        })
        .collect()
}

fn opts() -> ConvertOptions {
    ConvertOptions {
        avro: AvroOptions {
            schema: Some(SCHEMA.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn encode(format: Format, rows: &[Value], opts: &ConvertOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = fileserde::writer(
        format,
        &mut out,
        Path::new("bench"),
        opts,
        SerdeMode::Batched,
    )
    .expect("writer");
    for r in rows {
        w.write_record(r).expect("write");
    }
    w.finish().expect("finish");
    out
}

fn read(format: Format, input: &[u8], opts: &ConvertOptions, mode: SerdeMode) -> usize {
    let mut r = fileserde::reader(format, input, Path::new("bench"), opts, mode).expect("reader");
    let mut n = 0;
    while let Some(v) = r.next_record().expect("read") {
        black_box(&v);
        n += 1;
    }
    n
}

fn write(
    format: Format,
    rows: &[Value],
    out: &mut Vec<u8>,
    opts: &ConvertOptions,
    mode: SerdeMode,
) {
    let mut w = fileserde::writer(format, out, Path::new("bench"), opts, mode).expect("writer");
    for r in rows {
        w.write_record(r).expect("write");
    }
    w.finish().expect("finish");
}

fn bench_format(c: &mut Criterion, format: Format) {
    let opts = opts();
    let rows = rows(format == Format::Csv);
    let input = encode(format, &rows, &opts);
    let (convert_to, convert_input) = match format {
        Format::Ion => (Format::Json, input.clone()),
        _ => (Format::Ion, input.clone()),
    };

    let mut group = c.benchmark_group(format!("fileserde/{format}/read"));
    group.throughput(Throughput::Bytes(input.len() as u64));
    for mode in SerdeMode::ALL {
        group.bench_function(mode.to_string(), |b| {
            b.iter(|| assert_eq!(read(format, &input, &opts, mode), ROWS))
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("fileserde/{format}/write"));
    group.throughput(Throughput::Bytes(input.len() as u64));
    for mode in SerdeMode::ALL {
        group.bench_function(mode.to_string(), |b| {
            b.iter_batched_ref(
                || Vec::with_capacity(input.len() * 2),
                |out| write(format, &rows, out, &opts, mode),
                BatchSize::SmallInput,
            )
        });
    }
    if format == Format::Json {
        group.bench_function("serde_json_vec_ceiling", |b| {
            b.iter_batched_ref(
                || Vec::with_capacity(input.len() * 2),
                |out: &mut Vec<u8>| {
                    for r in &rows {
                        serde_json::to_writer(&mut *out, r).expect("json");
                        out.push(b'\n');
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("fileserde/{format}/convert"));
    group.throughput(Throughput::Bytes(convert_input.len() as u64));
    for mode in SerdeMode::ALL {
        group.bench_function(format!("{mode}_to_{convert_to}"), |b| {
            b.iter_batched_ref(
                || Vec::with_capacity(convert_input.len() * 2),
                |out| {
                    let mut r = fileserde::reader(
                        format,
                        &convert_input[..],
                        Path::new("bench"),
                        &opts,
                        mode,
                    )
                    .expect("reader");
                    let mut w = fileserde::writer(convert_to, out, Path::new("bench"), &opts, mode)
                        .expect("writer");
                    while let Some(v) = r.next_record().expect("read") {
                        w.write_record(&v).expect("write");
                    }
                    w.finish().expect("finish");
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn fileserde_benches(c: &mut Criterion) {
    for format in Format::ALL {
        bench_format(c, format);
    }
}

criterion_group! {
    name = benches;
    // A 2-core machine shared with other builds: few samples, short runs.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = fileserde_benches
}
criterion_main!(benches);
