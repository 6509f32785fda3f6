//! loguru's JSON lines (`serialize=True`): records with every field drawn near its
//! shape (or of the wrong type), random nesting in `extra`, and byte-level damage.

use std::collections::BTreeMap;

use logwarden::source::json::JsonParser;
use logwarden::source::RecordParser;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::{config, event_size, lossy, mutated, text, CASES};

/// Any JSON value, up to a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(text(6), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field: usually of the right shape, sometimes any value, sometimes missing.
fn field(right: BoxedStrategy<Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![6 => right.prop_map(Some), 1 => value().prop_map(Some), 1 => Just(None)]
}

fn record() -> impl Strategy<Value = Value> {
    let level = (
        prop::sample::select(&["ERROR", "WARNING", "INFO", "CUSTOM", ""][..]),
        prop_oneof![Just(None), (0u32..60).prop_map(Some)],
    )
        .prop_map(|(name, no)| match no {
            Some(no) => json!({"name": name, "no": no, "icon": "x"}),
            None => json!({"name": name}),
        })
        .boxed();
    let time = prop_oneof![
        (0.0f64..4e9).prop_map(|t| json!({"repr": "r", "timestamp": t})),
        any::<f64>().prop_map(|t| json!({"timestamp": t})),
    ]
    .boxed();
    let exception = (text(10), text(10))
        .prop_map(|(t, v)| json!({"type": t, "value": v, "traceback": true}))
        .boxed();
    let extra = prop::collection::btree_map(text(8), value(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed();
    let traceback = prop::collection::vec(
        prop_oneof![
            Just("Traceback (most recent call last):".to_string()),
            Just("ValueError: bad".to_string()),
            text(20),
        ],
        0..6,
    )
    .prop_map(|v| Value::String(v.join("\n")))
    .boxed();
    let s = || text(30).prop_map(Value::String).boxed();
    (
        field(traceback),
        field(s()),
        field(level),
        field(time),
        field(s()),
        field(s()),
        field(any::<u64>().prop_map(Value::from).boxed()),
        field(exception),
        field(extra),
    )
        .prop_map(
            |(text, message, level, time, name, function, line, exception, extra)| {
                let mut r = Map::new();
                for (k, v) in [
                    ("message", message),
                    ("level", level),
                    ("time", time),
                    ("name", name),
                    ("function", function),
                    ("line", line),
                    ("exception", exception),
                    ("extra", extra),
                ] {
                    if let Some(v) = v {
                        r.insert(k.into(), v);
                    }
                }
                let mut top = Map::new();
                if let Some(t) = text {
                    top.insert("text".into(), t);
                }
                top.insert("record".into(), Value::Object(r));
                Value::Object(top)
            },
        )
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => mutated(record().prop_map(|v| v.to_string())),
        1 => lossy(60),
        1 => (1usize..3000, prop::sample::select(&["[", "{\"a\":", "[{\"b\":"][..]))
            .prop_map(|(n, open)| format!("{{\"record\": {{\"extra\": {{\"x\": {}}}}}}}", open.repeat(n))),
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn json_lines(lines in prop::collection::vec(line(), 1..4), min_level in prop::sample::select(&[0u32, 30][..])) {
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), min_level);
        let input: usize = lines.iter().map(|l| l.len() + 1).sum();
        let mut events = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            events.extend(p.push(i as u64 + 1, l));
        }
        events.extend(p.finish());
        prop_assert!(events.len() <= lines.len());
        for e in &events {
            prop_assert!(e.level.no >= min_level);
            prop_assert!(event_size(e) <= 8 * input + 64, "{} from {input}", event_size(e));
        }
        let problems = p.take_problems();
        // at most one line for the lines rescued by a scan and one for those skipped
        prop_assert!(problems.len() <= 2);
        prop_assert!(problems.iter().all(|p| p.len() < 400), "{:?}", problems);
    }

    /// A well-formed record is read as written.
    #[test]
    fn well_formed_records_keep_their_fields(
        message in text(30),
        name in text(10),
        no in 30u32..60,
        extra in prop::collection::btree_map(text(6), text(6), 0..4),
    ) {
        let line = json!({
            "text": format!("x | ERROR | {message}\n"),
            "record": {"message": message, "level": {"name": "ERROR", "no": no}, "name": name, "extra": extra},
        })
        .to_string();
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        let e = p.push(7, &line).expect("a record");
        prop_assert_eq!(&e.message, &message);
        prop_assert_eq!(e.level.no, no);
        prop_assert_eq!(e.logger.as_deref(), Some(name.as_str()));
        prop_assert_eq!(e.fields, extra);
        prop_assert!(p.take_problems().is_empty());
    }
}
