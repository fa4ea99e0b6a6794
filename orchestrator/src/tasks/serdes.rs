use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::fileserde::{self, ConvertOptions, Format};
use crate::flow::{FlowError, TaskProps};

const CSV_TO_ION: &str = "io.kestra.plugin.serdes.csv.CsvToIon";
const ION_TO_CSV: &str = "io.kestra.plugin.serdes.csv.IonToCsv";
const JSON_TO_ION: &str = "io.kestra.plugin.serdes.json.JsonToIon";
const ION_TO_JSON: &str = "io.kestra.plugin.serdes.json.IonToJson";
const AVRO_TO_ION: &str = "io.kestra.plugin.serdes.avro.AvroToIon";
const ION_TO_AVRO: &str = "io.kestra.plugin.serdes.avro.IonToAvro";

/// The Kestra serdes task types and the formats each converts between.
const CONVERSIONS: &[(&str, Format, Format)] = &[
    (CSV_TO_ION, Format::Csv, Format::Ion),
    (ION_TO_CSV, Format::Ion, Format::Csv),
    (JSON_TO_ION, Format::Json, Format::Ion),
    (ION_TO_JSON, Format::Ion, Format::Json),
    (AVRO_TO_ION, Format::Avro, Format::Ion),
    (ION_TO_AVRO, Format::Ion, Format::Avro),
];

/// The `io.kestra.plugin.serdes.{csv,json,avro}.*` conversions: read the internal-storage
/// file `from`, write the converted file next to the task run, output its `uri`. The
/// `serde.mode` knob picks the naive or batched FileSerde path.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub from: String,
    pub input: Format,
    pub output: Format,
    pub options: ConvertOptions,
}

impl TaskType for Conversion {
    const TYPES: &'static [&'static str] = &[
        CSV_TO_ION,
        ION_TO_CSV,
        JSON_TO_ION,
        ION_TO_JSON,
        AVRO_TO_ION,
        ION_TO_AVRO,
    ];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let &(_, input, output) = CONVERSIONS
            .iter()
            .find(|(t, _, _)| *t == props.type_name())
            .expect("every type in TYPES is in CONVERSIONS");
        let from = props.required_string("from")?;
        let rest = Value::Object(props.remaining()?);
        let options = options(input, output, rest).map_err(|m| props.error(m))?;
        Ok(Conversion {
            from,
            input,
            output,
            options,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

/// A serdes task's own properties (Kestra's names and defaults) for the formats it joins.
fn options(input: Format, output: Format, v: Value) -> Result<ConvertOptions, String> {
    let mut options = ConvertOptions::default();
    for f in [input, output] {
        match f {
            Format::Csv => {
                options.csv = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?
            }
            Format::Json => {
                options.json = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?
            }
            Format::Avro => {
                options.avro = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?
            }
            Format::Ion => {}
        }
    }
    if output == Format::Avro && options.avro.schema.is_none() {
        return Err("missing required property `schema`".into());
    }
    Ok(options)
}

fn extension(f: Format) -> &'static str {
    match f {
        Format::Ion => "ion",
        Format::Json => "jsonl",
        Format::Csv => "csv",
        Format::Avro => "avro",
    }
}

impl Runnable for Conversion {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let from = ctx.render(&self.from)?;
        let input = ctx
            .storage
            .path(&from)
            .map_err(|e| TaskError::Failed(format!("`from`: {e}")))?;
        let tr = ctx.task_run;
        let (uri, output) =
            ctx.output_file(&format!("{}.{}", tr.task_id, extension(self.output)))?;
        let stats = fileserde::convert(
            &input,
            self.input,
            &output,
            self.output,
            &self.options,
            ctx.serde_mode,
        )
        .map_err(|e| TaskError::Failed(e.to_string()))?;
        ctx.logger.log(
            crate::model::Level::Info,
            format!("converted {} records from {from} to {uri}", stats.records),
        );
        let mut out = Map::new();
        out.insert("uri".into(), Value::String(uri));
        Ok(out)
    }
}
