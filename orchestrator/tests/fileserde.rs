//! Reading, writing and converting records in every format and both serde modes.

use std::path::{Path, PathBuf};

use orchestrator::fileserde::{
    self, AvroOptions, ConvertOptions, CsvOptions, Decimal, Format, JsonOptions, SerdeMode,
    Timestamp, Value,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fileserde")
        .join(name)
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn row(fields: &[(&str, Value)]) -> Value {
    Value::Struct(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn rich_rows() -> Vec<Value> {
    let ts = Timestamp::with_ymd(2024, 2, 29)
        .with_hms(23, 59, 1)
        .with_milliseconds(250)
        .with_offset(60)
        .build()
        .unwrap();
    vec![
        row(&[
            ("id", Value::Int(1)),
            ("name", s("Doe, \"Jane\"\nsecond line")),
            ("price", Value::Decimal(Decimal::new(1250, -2))),
            ("at", Value::Timestamp(ts)),
            ("kind", Value::Symbol("gold".into())),
            ("raw", Value::Blob(vec![0, 1, 255])),
            ("text", Value::Clob(b"clob".to_vec())),
            ("ratio", Value::Float(0.5)),
            ("ok", Value::Bool(true)),
            ("missing", Value::Null),
            (
                "tags",
                Value::List(vec![
                    s("a"),
                    Value::SExp(vec![Value::Symbol("+".into()), Value::Int(2)]),
                ]),
            ),
            (
                "nested",
                Value::Annotated(vec!["meta".into()], Box::new(row(&[("k", s("v"))]))),
            ),
        ]),
        row(&[("id", Value::Int(-2)), ("name", s("ünïcödé ✓"))]),
    ]
}

fn write_both(dir: &Path, format: Format, rows: &[Value], opts: &ConvertOptions) -> [Vec<u8>; 2] {
    SerdeMode::ALL.map(|mode| {
        let path = dir.join(format!("out-{mode}.{format}"));
        fileserde::write_all(&path, format, rows, opts, mode).unwrap();
        std::fs::read(&path).unwrap()
    })
}

fn read_both(path: &Path, format: Format, opts: &ConvertOptions) -> [Vec<Value>; 2] {
    SerdeMode::ALL.map(|mode| fileserde::read_all(path, format, opts, mode).unwrap())
}

#[test]
fn ion_round_trip_keeps_every_ion_type_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rich_rows();
    let opts = ConvertOptions::default();
    let [naive, batched] = write_both(dir.path(), Format::Ion, &rows, &opts);
    assert_eq!(naive, batched, "both modes write the same bytes");
    let text = String::from_utf8(batched).unwrap();
    assert_eq!(text.lines().count(), 2, "one value per line: {text}");
    assert!(text.contains("missing: null"), "nulls are written: {text}");
    for read in read_both(&dir.path().join("out-batched.ion"), Format::Ion, &opts) {
        assert_eq!(read, rows);
    }
}

#[test]
fn json_lines_and_json_array_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        row(&[("a", Value::Int(1)), ("b", s("x\"y")), ("c", Value::Null)]),
        row(&[
            ("a", Value::Float(2.5)),
            ("b", Value::List(vec![Value::Bool(false)])),
        ]),
    ];
    for new_line in [true, false] {
        let opts = ConvertOptions {
            json: JsonOptions {
                new_line,
                ..Default::default()
            },
            ..Default::default()
        };
        let [naive, batched] = write_both(dir.path(), Format::Json, &rows, &opts);
        assert_eq!(naive, batched);
        let expected = if new_line {
            "{\"a\":1,\"b\":\"x\\\"y\",\"c\":null}\n{\"a\":2.5,\"b\":[false]}\n"
        } else {
            "[{\"a\":1,\"b\":\"x\\\"y\",\"c\":null},{\"a\":2.5,\"b\":[false]}]"
        };
        assert_eq!(String::from_utf8(batched).unwrap(), expected);
        for read in read_both(&dir.path().join("out-batched.json"), Format::Json, &opts) {
            assert_eq!(read, rows);
        }
    }
}

#[test]
fn ion_to_json_maps_rich_types() {
    let dir = tempfile::tempdir().unwrap();
    let ion = dir.path().join("in.ion");
    fileserde::write_all(
        &ion,
        Format::Ion,
        &rich_rows()[..1],
        &Default::default(),
        SerdeMode::Batched,
    )
    .unwrap();
    for mode in SerdeMode::ALL {
        let out = dir.path().join(format!("{mode}.json"));
        let stats = fileserde::ion_to_json(&ion, &out, &JsonOptions::default(), mode).unwrap();
        assert_eq!(stats.records, 1);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(json["price"], serde_json::json!(12.5));
        assert_eq!(json["at"], "2024-02-29T23:59:01.250+01:00");
        assert_eq!(json["kind"], "gold");
        assert_eq!(json["raw"], "AAH/");
        assert_eq!(json["nested"], serde_json::json!({"k": "v"}));
        assert_eq!(json["tags"], serde_json::json!(["a", ["+", 2]]));
    }
}

#[test]
fn csv_with_quotes_embedded_newlines_and_empty_fields() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(
        &csv,
        "id,name,comment\n1,\"Doe, Jane\",\"said \"\"hi\"\"\nthen left\"\n2,,\n3,Bob,\n",
    )
    .unwrap();
    let opts = ConvertOptions::default();
    for read in read_both(&csv, Format::Csv, &opts) {
        assert_eq!(
            read,
            vec![
                row(&[
                    ("id", s("1")),
                    ("name", s("Doe, Jane")),
                    ("comment", s("said \"hi\"\nthen left"))
                ]),
                row(&[("id", s("2")), ("name", s("")), ("comment", s(""))]),
                row(&[("id", s("3")), ("name", s("Bob")), ("comment", s(""))]),
            ]
        );
    }
    // And back: CSV → ION → CSV gives the same file, in both modes.
    for mode in SerdeMode::ALL {
        let ion = dir.path().join(format!("{mode}.ion"));
        let back = dir.path().join(format!("{mode}.csv"));
        fileserde::csv_to_ion(&csv, &ion, &CsvOptions::default(), mode).unwrap();
        fileserde::ion_to_csv(&ion, &back, &CsvOptions::default(), mode).unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&csv).unwrap());
    }
}

#[test]
fn csv_latin1_separator_skip_rows_and_no_header() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("latin1.csv");
    // "Müller;Café" in ISO-8859-1, after a junk line to skip, and a row of empty fields.
    std::fs::write(
        &csv,
        b"exported by tool\nname;place\nM\xfcller;Caf\xe9\n;\n'a;b';c\n",
    )
    .unwrap();
    let csv_opts: CsvOptions = serde_yaml_ng::from_str(
        "fieldSeparator: ';'\ntextDelimiter: \"'\"\nskipRows: 1\nskipEmptyRows: true\ncharset: ISO-8859-1\n",
    )
    .unwrap();
    assert!(csv_opts.header, "header defaults to true");
    let opts = ConvertOptions {
        csv: csv_opts.clone(),
        ..Default::default()
    };
    for read in read_both(&csv, Format::Csv, &opts) {
        assert_eq!(
            read,
            vec![
                row(&[("name", s("Müller")), ("place", s("Café"))]),
                row(&[("name", s("a;b")), ("place", s("c"))]),
            ]
        );
    }
    // Without a header, rows are lists; writing Latin-1 gives the original bytes back.
    let no_header = ConvertOptions {
        csv: CsvOptions {
            header: false,
            skip_rows: 2,
            ..csv_opts
        },
        ..Default::default()
    };
    let [naive, batched] = read_both(&csv, Format::Csv, &no_header);
    assert_eq!(naive, batched);
    assert_eq!(naive[0], Value::List(vec![s("Müller"), s("Café")]));
    let out = dir.path().join("out.csv");
    fileserde::write_all(
        &out,
        Format::Csv,
        &naive[..1],
        &no_header,
        SerdeMode::Batched,
    )
    .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"M\xfcller;Caf\xe9\n");
}

/// Regression: naive CSV writing built a new `csv::Writer` per row, which Kestra's
/// `IonToCsv` never did (one FastCSV writer per file before and after plugin-serdes
/// 7c4a3a3). Both modes now share the writer and differ only in buffer size, so they must
/// write the same bytes, across many buffer fills and with every writing option.
#[test]
fn naive_and_batched_csv_writing_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // Rich values (quotes, newlines, decimals, timestamps, nested lists) and plain rows,
    // over 100 KiB of output: several fills of both the 8 KiB and the 32 KiB buffer.
    let mut rows = rich_rows();
    rows.truncate(1);
    for i in 0..3_000 {
        rows.push(row(&[
            ("id", Value::Int(i)),
            (
                "name",
                s(&format!(
                    "Müller \"{i}\", café;\n{}",
                    "x".repeat(i as usize % 37)
                )),
            ),
        ]));
    }
    let variants = [
        CsvOptions::default(),
        CsvOptions {
            header: false,
            field_separator: ';',
            text_delimiter: '\'',
            line_delimiter: "\r\n".into(),
            always_delimit_text: true,
            charset: "ISO-8859-1".into(),
            ..CsvOptions::default()
        },
    ];
    for csv in variants {
        let opts = ConvertOptions {
            csv: csv.clone(),
            ..Default::default()
        };
        let [naive, batched] = write_both(dir.path(), Format::Csv, &rows, &opts);
        assert!(naive.len() > 100 * 1024, "{} bytes", naive.len());
        assert!(
            naive == batched,
            "naive and batched CSV differ with {csv:?}"
        );
        // The same bytes are also the right ones: they read back as the rows written.
        let back = dir.path().join("out-naive.csv");
        let read = fileserde::read_all(&back, Format::Csv, &opts, SerdeMode::Batched).unwrap();
        assert_eq!(read.len(), rows.len());
        let last = read.last().unwrap();
        let (id, name) = if csv.header {
            (last.get("id").cloned(), last.get("name").cloned())
        } else {
            match last {
                Value::List(fields) => (fields.first().cloned(), fields.get(1).cloned()),
                other => panic!("a row without header reads as a list, not {other:?}"),
            }
        };
        assert_eq!(id, Some(s("2999")));
        let expected = format!("Müller \"2999\", café;\n{}", "x".repeat(2999 % 37));
        assert_eq!(name, Some(s(&expected)));
    }
}

fn avro_schema() -> String {
    r#"{"type":"record","name":"Row","fields":[
        {"name":"id","type":"long"},
        {"name":"name","type":["null","string"]},
        {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["gold","silver"]}},
        {"name":"ok","type":"boolean"},
        {"name":"ratio","type":"double"},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"day","type":{"type":"int","logicalType":"date"},"default":0}
    ]}"#
    .to_owned()
}

#[test]
fn avro_in_all_four_codecs_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let ts = Timestamp::with_ymd(2024, 1, 2)
        .with_hms(3, 4, 5)
        .with_milliseconds(6)
        .with_offset(0)
        .build()
        .unwrap();
    let rows: Vec<Value> = (0..50)
        .map(|i| {
            row(&[
                ("id", Value::Int(i)),
                (
                    "name",
                    if i % 3 == 0 {
                        Value::Null
                    } else {
                        s(&format!("n{i}"))
                    },
                ),
                ("price", Value::Decimal(Decimal::new(i * 101, -2))),
                ("at", Value::Timestamp(ts.clone())),
                (
                    "kind",
                    Value::Symbol(if i % 2 == 0 { "gold" } else { "silver" }.into()),
                ),
                ("ok", Value::Bool(i % 2 == 0)),
                ("ratio", Value::Float(i as f64 / 4.0)),
                ("tags", Value::List(vec![s("x"), s(&i.to_string())])),
            ])
        })
        .collect();
    let epoch = Value::Timestamp(Timestamp::with_ymd(1970, 1, 1).build().unwrap());
    for codec in ["null", "deflate", "snappy", "zstandard"] {
        let opts = ConvertOptions {
            avro: AvroOptions {
                schema: Some(avro_schema()),
                codec: codec.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        for mode in SerdeMode::ALL {
            let path = dir.path().join(format!("{codec}-{mode}.avro"));
            fileserde::write_all(&path, Format::Avro, &rows, &opts, mode).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let codec_entry = [&[codec.len() as u8 * 2][..], codec.as_bytes()].concat();
            assert!(
                bytes.windows(codec_entry.len()).any(|w| w == codec_entry),
                "codec {codec} named in the header"
            );
            for read in read_both(&path, Format::Avro, &opts) {
                assert_eq!(read.len(), rows.len());
                for (got, want) in read.iter().zip(&rows) {
                    for key in ["id", "name", "price", "at", "kind", "ok", "ratio", "tags"] {
                        assert_eq!(got.get(key), want.get(key), "{codec} {mode} {key}");
                    }
                    assert_eq!(got.get("day"), Some(&epoch), "default of a missing field");
                }
            }
        }
    }
}

#[test]
fn avro_written_by_java_is_read() {
    for mode in SerdeMode::ALL {
        let rows = fileserde::read_all(
            &data("bigdec.avro"),
            Format::Avro,
            &Default::default(),
            mode,
        )
        .unwrap();
        assert_eq!(rows, vec![row(&[("field_name", s("2.24"))])]);
    }
}

#[test]
fn csv_strings_become_typed_avro() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "id,name,ok,ratio,extra\n7,,yes,1.5,x\n").unwrap();
    let ion = dir.path().join("in.ion");
    fileserde::csv_to_ion(&csv, &ion, &CsvOptions::default(), SerdeMode::Batched).unwrap();
    let schema = r#"{"type":"record","name":"R","fields":[
        {"name":"id","type":"int"},{"name":"name","type":["null","string"]},
        {"name":"ok","type":"boolean"},{"name":"ratio","type":"float"}]}"#;
    let avro_opts: AvroOptions = serde_yaml_ng::from_str(&format!(
        "schema: '{}'\ninferAllFields: true",
        schema.replace('\n', " ")
    ))
    .unwrap();
    let avro = dir.path().join("out.avro");
    let stats = fileserde::ion_to_avro(&ion, &avro, &avro_opts, SerdeMode::Naive).unwrap();
    assert_eq!(stats.records, 1);
    assert!(stats.bytes_out > 0 && stats.bytes_in > 0);
    let back =
        fileserde::read_all(&avro, Format::Avro, &Default::default(), SerdeMode::Batched).unwrap();
    assert_eq!(
        back,
        vec![row(&[
            ("id", Value::Int(7)),
            ("name", Value::Null),
            ("ok", Value::Bool(true)),
            ("ratio", Value::Float(1.5)),
        ])]
    );
    // strictSchema refuses the undeclared `extra` column.
    let strict = AvroOptions {
        strict_schema: true,
        ..avro_opts
    };
    let err = fileserde::ion_to_avro(&ion, &avro, &strict, SerdeMode::Batched).unwrap_err();
    assert!(err.to_string().contains("`extra`"), "{err}");
}

/// Values of the ion-tests files, written one per line as text by us and as binary
/// by ion-rs, read back in both modes.
#[test]
fn ion_conformance_files_text_and_binary() {
    let dir = tempfile::tempdir().unwrap();
    let read =
        |p: &Path, mode| fileserde::read_all(p, Format::Ion, &Default::default(), mode).unwrap();

    let decimals = read(&data("ion-tests/decimals.ion"), SerdeMode::Batched);
    assert_eq!(decimals.len(), 10);
    assert_eq!(
        decimals[2],
        Value::List(
            (-3..=3)
                .map(|e| Value::Decimal(Decimal::new(123, e)))
                .collect()
        )
    );

    let timestamps = read(&data("ion-tests/timestamps.ion"), SerdeMode::Batched);
    let text = std::fs::read_to_string(data("ion-tests/timestamps.ion")).unwrap();
    let expected = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("//"))
        .count();
    assert_eq!(timestamps.len(), expected);
    assert!(timestamps.iter().all(|t| matches!(t, Value::Timestamp(_))));
    // The same file is one value per line, so the naive path reads it too.
    assert_eq!(
        read(&data("ion-tests/timestamps.ion"), SerdeMode::Naive),
        timestamps
    );

    // ion-rs rejects the fifth list, `[$99::123, $98::123]`: symbol IDs past the
    // symbol table. The four lists before it are read, then the error names record 5.
    let path = data("ion-tests/annotations.ion");
    let mut reader = fileserde::reader(
        Format::Ion,
        std::fs::File::open(&path).unwrap(),
        &path,
        &Default::default(),
        SerdeMode::Batched,
    )
    .unwrap();
    let annotations: Vec<Value> = (0..4)
        .map(|_| reader.next_record().unwrap().unwrap())
        .collect();
    let err = reader.next_record().unwrap_err();
    assert_eq!(
        (err.record(), err.kind()),
        (Some(5), fileserde::ErrorKind::InvalidIon)
    );
    let Value::List(first) = &annotations[0] else {
        panic!("a list")
    };
    assert_eq!(
        first[0],
        Value::Annotated(vec!["a".into(), "b".into()], Box::new(Value::Int(123)))
    );

    let local = read(&data("ion-tests/textSymbolTable.ion"), SerdeMode::Naive);
    assert_eq!(
        local,
        vec![Value::Annotated(
            vec!["local".into()],
            Box::new(Value::Int(10))
        )]
    );

    for (name, values) in [
        ("decimals", &decimals),
        ("timestamps", &timestamps),
        ("annotations", &annotations),
    ] {
        // Binary Ion, written by ion-rs's binary writer from the values read.
        let mut writer = ion_rs::Writer::new(ion_rs::v1_0::Binary, Vec::new()).unwrap();
        for v in values.iter() {
            writer.write(v).unwrap();
        }
        let binary = dir.path().join(format!("{name}.10n"));
        std::fs::write(&binary, writer.close().unwrap()).unwrap();
        for mode in SerdeMode::ALL {
            assert_eq!(&read(&binary, mode), values, "{name} binary {mode}");
        }
        // Rewritten as ION lines by each mode: identical bytes, same values.
        let [naive, batched] = write_both(dir.path(), Format::Ion, values, &Default::default());
        assert_eq!(naive, batched, "{name}");
        assert_eq!(
            &read(&dir.path().join("out-naive.ion"), SerdeMode::Naive),
            values
        );
    }
}

#[test]
fn kestra_task_properties_deserialize_with_defaults() {
    let csv: CsvOptions = serde_yaml_ng::from_str(
        "id: convert\ntype: io.kestra.plugin.serdes.csv.CsvToIon\nfrom: x\n",
    )
    .unwrap();
    assert_eq!(csv, CsvOptions::default());
    assert_eq!(
        (csv.field_separator, csv.text_delimiter, csv.skip_rows),
        (',', '"', 0)
    );
    assert!(!csv.error_on_different_field_count && !csv.skip_empty_rows);
    assert_eq!(csv.charset, "UTF-8");
    let json: JsonOptions = serde_yaml_ng::from_str("newLine: false").unwrap();
    assert!(!json.new_line);
    assert!(JsonOptions::default().new_line);
    let avro: AvroOptions = serde_yaml_ng::from_str("strictSchema: true").unwrap();
    assert!(avro.strict_schema && !avro.infer_all_fields && avro.schema.is_none());
    assert_eq!("naive".parse::<SerdeMode>().unwrap(), SerdeMode::Naive);
    assert_eq!("batched".parse::<SerdeMode>().unwrap(), SerdeMode::Batched);
    assert_eq!(SerdeMode::default(), SerdeMode::Batched);
    assert!("fast".parse::<SerdeMode>().is_err());
}

#[test]
fn convert_every_format_pair_keeps_string_rows() {
    // Rows of strings survive every pair of formats.
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        row(&[("a", s("1")), ("b", s("x,y"))]),
        row(&[("a", s("")), ("b", s("é"))]),
    ];
    let opts = ConvertOptions {
        avro: AvroOptions {
            schema: Some(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"}]}"#.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    for from in Format::ALL {
        let input = dir.path().join(format!("in.{from}"));
        fileserde::write_all(&input, from, &rows, &opts, SerdeMode::Batched).unwrap();
        for to in Format::ALL {
            for mode in SerdeMode::ALL {
                let output = dir.path().join(format!("{from}-{to}-{mode}.out"));
                let stats = fileserde::convert(&input, from, &output, to, &opts, mode).unwrap();
                assert_eq!(stats.records, 2);
                let back = fileserde::read_all(&output, to, &opts, mode).unwrap();
                assert_eq!(back, rows, "{from} → {to} ({mode})");
            }
        }
    }
}
