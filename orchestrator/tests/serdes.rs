//! Kestra's serdes conversion tasks in flows: files go through internal storage by URI.

mod common;

use common::{start, states, task};
use orchestrator::model::StateType;
use serde_json::json;

const CSV: &str = "id,name,city\n1,Ada,\"London, UK\"\n2,Grace,New York\n3,Edsger,Nuenen\n";

const FLOW: &str = r#"
id: conversions
namespace: tests
inputs:
  - id: file
    type: FILE
tasks:
  - id: csv
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{ inputs.file }}"
  - id: json
    type: io.kestra.plugin.serdes.json.IonToJson
    from: "{{ outputs.csv.uri }}"
  - id: back
    type: io.kestra.plugin.serdes.json.JsonToIon
    from: "{{ outputs.json.uri }}"
  - id: avro
    type: io.kestra.plugin.serdes.avro.IonToAvro
    from: "{{ outputs.back.uri }}"
    schema: |
      {"type": "record", "name": "Person", "fields": [
        {"name": "id", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "city", "type": "string"}]}
  - id: fromavro
    type: io.kestra.plugin.serdes.avro.AvroToIon
    from: "{{ outputs.avro.uri }}"
  - id: final
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{ outputs.fromavro.uri }}"
"#;

#[tokio::test]
async fn csv_round_trips_through_ion_json_and_avro_in_both_serde_modes() {
    let mut finals = Vec::new();
    for mode in ["serde.mode=batched", "serde.mode=naive"] {
        let h = start(&[mode]).await;
        let input = "kestra:///inputs/people.csv";
        let path = h.o.storage().path(input).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, CSV).unwrap();
        let (exec, logs) = h.run(FLOW, json!({"file": input})).await;
        assert_eq!(
            exec.state.current,
            StateType::Success,
            "{mode}: {:?} {logs:?}",
            states(&exec)
        );
        let uri = task(&exec, "final").outputs.as_ref().unwrap()["uri"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            uri.starts_with("kestra:///tests/conversions/executions/"),
            "{uri}"
        );
        let jsonl =
            h.o.storage()
                .read_to_string(
                    task(&exec, "json").outputs.as_ref().unwrap()["uri"]
                        .as_str()
                        .unwrap(),
                )
                .unwrap();
        assert_eq!(jsonl.lines().count(), 3);
        assert!(jsonl.contains("\"city\":\"London, UK\""), "{jsonl}");
        finals.push(h.o.storage().read_to_string(&uri).unwrap());
        assert!(
            logs.iter()
                .any(|l| l.message.starts_with("converted 3 records"))
        );
        h.stop().await;
    }
    assert_eq!(finals[0], CSV, "the CSV came back unchanged");
    assert_eq!(
        finals[0], finals[1],
        "naive and batched write the same file"
    );
}

#[tokio::test]
async fn a_bad_input_file_fails_the_task_with_the_file_and_line_in_its_logs() {
    let h = start(&[]).await;
    let input = "kestra:///inputs/ragged.csv";
    let path = h.o.storage().path(input).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "a,b\n1,2\n3\n").unwrap();
    let (exec, logs) = h
        .run(
            "id: ragged\nnamespace: tests\ninputs:\n  - id: file\n    type: FILE\ntasks:\n  - id: csv\n    type: io.kestra.plugin.serdes.csv.CsvToIon\n    from: \"{{ inputs.file }}\"\n    errorOnDifferentFieldCount: true\n",
            json!({"file": input}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Failed);
    let msg = &logs.last().unwrap().message;
    assert!(msg.contains("ragged.csv"), "{msg}");
    assert!(msg.contains('3'), "names the line: {msg}");
    h.stop().await;
}

#[tokio::test]
async fn ion_to_avro_without_a_schema_is_refused_when_the_flow_loads() {
    let err = orchestrator::flow::parse_flow(
        "id: f\nnamespace: n\ntasks:\n  - id: avro\n    type: io.kestra.plugin.serdes.avro.IonToAvro\n    from: x\n",
        "noschema.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("task `avro`") && err.contains("schema"),
        "{err}"
    );
}
