//! The Prometheus text exposition parser (what the curated scripts print).

use std::collections::BTreeMap;

use logwarden::metrics::exposition::{parse, parse_sample, series_key, Sample};
use proptest::prelude::*;

use crate::{config, lossy, mutated, soup, text, CASES};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        1 => text(8),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![8 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}", 1 => text(5)]
}

/// A value as a script might print it.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        prop::sample::select(
            &["NaN", "+Inf", "-Inf", "Inf", "inf", "1e309", "-0", ".5", "0x10", "1_000", ""][..]
        )
        .prop_map(str::to_string),
    ]
}

/// Renders a label value the way the format escapes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn sample_line() -> impl Strategy<Value = String> {
    (
        name(),
        prop::collection::vec((label_name(), text(10)), 0..4),
        any::<bool>(),
        number(),
        prop_oneof![
            Just(String::new()),
            any::<i64>().prop_map(|t| format!(" {t}")),
            text(6)
        ],
    )
        .prop_map(|(name, labels, braces, value, ts)| {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let labels = if braces || !labels.is_empty() {
                format!("{{{}}}", labels.join(","))
            } else {
                String::new()
            };
            format!("{name}{labels} {value}{ts}")
        })
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => mutated(sample_line()),
        2 => (prop::sample::select(&["# HELP ", "# TYPE ", "#", "# HELP", ""][..]), name(), text(12))
            .prop_map(|(h, n, t)| format!("{h}{n} {t}")),
        1 => mutated(soup(&["x", "{", "}", "=", "\"", "\\", ",", " ", "1", "NaN", "#"], 12)),
        1 => lossy(40),
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn script_output(
        lines in prop::collection::vec(line(), 0..10),
        ending in prop::sample::select(&["\n", "\r\n"][..]),
    ) {
        let input = lines.join(ending);
        let p = parse(&input);
        let n = input.lines().count();
        prop_assert!(p.samples.len() + p.errors.len() <= n);
        let out: usize = p.samples.iter().map(|s| s.key().len() + 32).sum::<usize>()
            + p.errors.iter().map(String::len).sum::<usize>()
            + p.help.iter().chain(p.types.iter()).map(|(k, v)| k.len() + v.len()).sum::<usize>();
        prop_assert!(out <= 3 * input.len() + 64 * n, "{out} from {}", input.len());
        for e in &p.errors {
            prop_assert!(e.starts_with("line "), "{e}");
        }
    }

    /// A sample written as the format says (labels escaped, any order) reads back as
    /// itself, and so does its series key.
    #[test]
    fn samples_round_trip(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        labels in prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", text(12), 0..4),
        value in any::<f64>(),
        ts in prop::option::of(any::<i64>()),
    ) {
        let shown = if value.is_nan() {
            "NaN".to_string()
        } else if value.is_infinite() {
            if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
        } else {
            value.to_string()
        };
        let ts_text = ts.map(|t| format!(" {t}")).unwrap_or_default();
        let line = format!("{} {shown}{ts_text}", series_key(&name, &labels));
        let s = parse_sample(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        let want = Sample { name: name.clone(), labels: labels.clone(), value, timestamp_ms: ts };
        prop_assert_eq!(&s.name, &want.name);
        prop_assert_eq!(&s.labels, &want.labels);
        prop_assert_eq!(s.timestamp_ms, want.timestamp_ms);
        prop_assert!(s.value.to_bits() == value.to_bits() || (s.value.is_nan() && value.is_nan()));
        let labels: BTreeMap<_, _> = labels;
        prop_assert_eq!(s.key(), series_key(&name, &labels));
    }
}
