//! Bad input: a typed error naming the file and the record or line, no panic, and no
//! output file left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use orchestrator::fileserde::{
    self, AvroOptions, ConvertOptions, CsvOptions, ErrorKind, Format, SerdeMode, Value,
};

struct Case {
    dir: tempfile::TempDir,
    input: PathBuf,
}

fn case(name: &str, bytes: &[u8]) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    std::fs::write(&input, bytes).unwrap();
    Case { dir, input }
}

/// Converts in both modes; checks the error and that the folder holds only the input.
fn assert_fails(
    c: &Case,
    from: Format,
    to: Format,
    opts: &ConvertOptions,
    kind: ErrorKind,
    record: Option<u64>,
    line: Option<u64>,
) {
    for mode in SerdeMode::ALL {
        let out = c.dir.path().join("out.data");
        let err = fileserde::convert(&c.input, from, &out, to, opts, mode).unwrap_err();
        assert_eq!(err.kind(), kind, "{mode}: {err}");
        // Errors reading name the input; errors fitting a record to the output
        // format (schema, options) name the output.
        let expected_path = match kind {
            ErrorKind::Schema | ErrorKind::Options => out.clone(),
            _ => c.input.clone(),
        };
        assert_eq!(err.path(), expected_path, "{mode}: {err}");
        assert_eq!(err.record(), record, "{mode}: {err}");
        if line.is_some() {
            assert_eq!(err.line(), line, "{mode}: {err}");
        }
        let msg = err.to_string();
        assert!(msg.contains(&*expected_path.to_string_lossy()), "{msg}");
        let left: Vec<_> = std::fs::read_dir(c.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![c.input.file_name().unwrap().to_owned()],
            "{mode}: nothing left behind"
        );
    }
}

fn avro_opts(schema: &str) -> ConvertOptions {
    ConvertOptions {
        avro: AvroOptions {
            schema: Some(schema.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

const UNION_SCHEMA: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"u","type":["null","long"]}]}"#;

fn avro_file(rows: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.avro");
    let values: Vec<Value> = (0..rows)
        .map(|i| {
            Value::Struct(vec![(
                "u".into(),
                if i == rows - 1 {
                    Value::Null
                } else {
                    Value::Int(i as i64 * 1000)
                },
            )])
        })
        .collect();
    fileserde::write_all(
        &p,
        Format::Avro,
        &values,
        &avro_opts(UNION_SCHEMA),
        SerdeMode::Batched,
    )
    .unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn truncated_avro() {
    let bytes = avro_file(200);
    let c = case("truncated.avro", &bytes[..bytes.len() - 40]);
    assert_fails(
        &c,
        Format::Avro,
        Format::Ion,
        &Default::default(),
        ErrorKind::InvalidAvro,
        Some(1),
        None,
    );
}

#[test]
fn avro_bad_union_index() {
    // One block holding one record whose union index is 0 (null): the datum is the
    // byte just before the 16-byte sync marker. Make it index 5.
    let mut bytes = avro_file(1);
    let at = bytes.len() - 17;
    assert_eq!(bytes[at], 0, "the null branch's zig-zag index");
    bytes[at] = 10;
    let c = case("union.avro", &bytes);
    assert_fails(
        &c,
        Format::Avro,
        Format::Json,
        &Default::default(),
        ErrorKind::InvalidAvro,
        Some(1),
        None,
    );
}

#[test]
fn not_avro_at_all() {
    let c = case("text.avro", b"id,name\n1,a\n");
    assert_fails(
        &c,
        Format::Avro,
        Format::Ion,
        &Default::default(),
        ErrorKind::InvalidAvro,
        None,
        None,
    );
}

#[test]
fn invalid_ion_names_record_and_line() {
    let c = case("bad.ion", b"{a:1}\n{b:2}\n{c:[1, 2}\n{d:4}\n");
    for mode in SerdeMode::ALL {
        let out = c.dir.path().join("out.json");
        let err = fileserde::convert(
            &c.input,
            Format::Ion,
            &out,
            Format::Json,
            &Default::default(),
            mode,
        )
        .unwrap_err();
        assert_eq!(
            (err.kind(), err.record()),
            (ErrorKind::InvalidIon, Some(3)),
            "{mode}: {err}"
        );
        if mode == SerdeMode::Naive {
            assert_eq!(err.line(), Some(3));
        }
        assert!(!out.exists());
    }
}

#[test]
fn ragged_csv_with_error_on_different_field_count() {
    let c = case("ragged.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n");
    let opts = ConvertOptions {
        csv: CsvOptions {
            error_on_different_field_count: true,
            ..Default::default()
        },
        ..Default::default()
    };
    assert_fails(
        &c,
        Format::Csv,
        Format::Ion,
        &opts,
        ErrorKind::FieldCount,
        Some(2),
        Some(3),
    );
    // Without the option the short row is accepted, as Kestra does.
    let out = c.dir.path().join("ok.ion");
    let stats = fileserde::convert(
        &c.input,
        Format::Csv,
        &out,
        Format::Ion,
        &Default::default(),
        SerdeMode::Batched,
    )
    .unwrap();
    assert_eq!(stats.records, 3);
}

#[test]
fn invalid_utf8_in_csv_and_json() {
    let c = case("bad.csv", b"a,b\nok,fine\nbad,\xff\xfe\n");
    assert_fails(
        &c,
        Format::Csv,
        Format::Ion,
        &Default::default(),
        ErrorKind::Encoding,
        Some(2),
        Some(3),
    );
    let c = case("bad.json", b"{\"a\":\"ok\"}\n{\"a\":\"\xff\"}\n");
    assert_fails(
        &c,
        Format::Json,
        Format::Ion,
        &Default::default(),
        ErrorKind::Encoding,
        Some(2),
        Some(2),
    );
}

#[test]
fn invalid_json_line() {
    let c = case("bad.json", b"{\"a\":1}\n\n{\"a\":2}\n{\"a\":\n");
    assert_fails(
        &c,
        Format::Json,
        Format::Csv,
        &Default::default(),
        ErrorKind::InvalidJson,
        Some(3),
        None,
    );
}

#[test]
fn record_that_does_not_fit_the_schema() {
    let c = case("rows.ion", b"{u:1}\n{u:\"text\"}\n");
    assert_fails(
        &c,
        Format::Ion,
        Format::Avro,
        &avro_opts(UNION_SCHEMA),
        ErrorKind::Schema,
        Some(2),
        None,
    );
    assert_fails(
        &c,
        Format::Ion,
        Format::Avro,
        &avro_opts("{not json"),
        ErrorKind::Schema,
        None,
        None,
    );
    assert_fails(
        &c,
        Format::Ion,
        Format::Avro,
        &Default::default(),
        ErrorKind::Options,
        None,
        None,
    );
}

#[test]
fn failed_conversion_keeps_an_existing_output() {
    let c = case("bad.json", b"{\"a\":1}\nnope\n");
    let out = c.dir.path().join("out.ion");
    std::fs::write(&out, "previous").unwrap();
    fileserde::convert(
        &c.input,
        Format::Json,
        &out,
        Format::Ion,
        &Default::default(),
        SerdeMode::Batched,
    )
    .unwrap_err();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
}

fn orchestrator(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn cli_convert_succeeds_then_fails_on_bad_input() {
    let c = case("in.csv", b"id,name\n1,a\n2,b\n");
    let ok = orchestrator(
        &[
            "convert",
            "--from",
            "csv",
            "--to",
            "ion",
            "in.csv",
            "out.ion",
            "--set",
            "serde.mode=naive",
        ],
        c.dir.path(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ion = std::fs::read_to_string(c.dir.path().join("out.ion")).unwrap();
    assert_eq!(ion.lines().count(), 2, "{ion}");

    std::fs::write(
        c.dir.path().join("s.avsc"),
        r#"{"type":"record","name":"R","fields":[{"name":"name","type":"long"}]}"#,
    )
    .unwrap();
    let bad = orchestrator(
        &[
            "convert", "--from", "ion", "--to", "avro", "--schema", "s.avsc", "out.ion", "out.avro",
        ],
        c.dir.path(),
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one-line error chain: {stderr}"
    );
    assert!(
        stderr.contains("out.avro") && stderr.contains("record 1"),
        "{stderr}"
    );
    assert!(!c.dir.path().join("out.avro").exists());

    let unknown = orchestrator(
        &[
            "convert",
            "--from",
            "csv",
            "--to",
            "ion",
            "in.csv",
            "x.ion",
            "--set",
            "serde.mode=fast",
        ],
        c.dir.path(),
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("serde.mode"));
}
