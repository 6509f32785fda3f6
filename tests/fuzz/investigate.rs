//! The investigator's answer: the Claude CLI's JSON output and the verdict inside it
//! are untrusted text (the model read strangers' logs).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use logwarden::investigate::{claude_cli, verdict};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::{config, lossy, mutated, soup, text, CASES};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(10).prop_map(Value::String),
        prop::sample::select(
            &[
                "real", "NOISE", "benign", "unsure", "critical", "high", "info", "85%", "NaN",
                "inf", "-1e400", "0.7", " page ",
            ][..]
        )
        .prop_map(|s| Value::String(s.into())),
        prop::collection::vec(text(4).prop_map(Value::String), 0..3).prop_map(Value::Array),
    ]
}

/// A verdict object with each key present or not, of the right type or not.
fn verdict_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "verdict",
                    "severity",
                    "title",
                    "summary",
                    "root_cause",
                    "suggested_fix",
                    "confidence",
                    "other",
                ][..],
            ),
            scalar(),
        ),
        0..8,
    )
    .prop_map(|kv| {
        let mut m = Map::new();
        m.insert("verdict".into(), Value::String("real".into()));
        for (k, v) in kv {
            m.insert(k.into(), v);
        }
        Value::Object(m)
    })
}

const PROSE: &[&str] = &[
    "I looked at the logs. ",
    "```json\n",
    "\n```\n",
    "{",
    "}",
    "{\"a\": 1}",
    "[",
    "\"",
    "\\",
    "{\"verdict\": ",
    "\"real\"}",
    "\n",
    "Example: ",
    "{\"verdict\"",
    ":",
    ",",
];

fn answer() -> impl Strategy<Value = String> {
    (
        soup(PROSE, 6),
        mutated(verdict_object().prop_map(|v| v.to_string())),
        soup(PROSE, 6),
    )
        .prop_map(|(a, v, b)| format!("{a}{v}{b}"))
}

fn check_diagnosis(
    d: &logwarden::investigate::Diagnosis,
    input: usize,
) -> Result<(), TestCaseError> {
    prop_assert!(
        ["real", "noise", "unsure", ""].contains(&d.verdict.as_str()),
        "{}",
        d.verdict
    );
    prop_assert!(
        ["critical", "warning", "info", ""].contains(&d.severity.as_str()),
        "{}",
        d.severity
    );
    if let Some(c) = d.confidence {
        prop_assert!((0.0..=1.0).contains(&c), "confidence {c}");
    }
    let size = d.title.len()
        + d.summary.len()
        + d.root_cause.len()
        + d.suggested_fix.len()
        + d.error.as_ref().map_or(0, String::len);
    // numbers are written back shortest-form, at most a few bytes longer each
    prop_assert!(size <= 4 * input + 400, "{size} from {input}");
    Ok(())
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn verdicts(text in prop_oneof![4 => answer(), 1 => mutated(soup(PROSE, 12)), 1 => lossy(60)]) {
        if let Some(d) = verdict::parse(&text) {
            prop_assert!(d.diagnosed);
            check_diagnosis(&d, text.len())?;
        }
    }

    /// The last verdict object in prose is the one read, its texts trimmed.
    #[test]
    fn the_verdict_in_prose_is_found(
        before in text(30),
        after in text(30),
        title in text(20),
        verdict in prop::sample::select(&["real", "noise", "unsure", "REAL", "benign"][..]),
    ) {
        let no_braces = |s: &str| s.replace(['{', '}'], "");
        let obj = json!({"verdict": verdict, "title": title, "severity": "high"});
        let text = format!("{}{obj}{}", no_braces(&before), no_braces(&after));
        let d = verdict::parse(&text).expect("a verdict");
        // One line, whatever the model wrote.
        prop_assert_eq!(d.title, logwarden::sanitize::unbroken(&title));
        prop_assert_eq!(d.severity, "critical");
    }

    #[test]
    fn cli_output(
        before in prop::collection::vec(prop_oneof![text(20), lossy(20)], 0..3),
        result in prop::option::of(prop::collection::vec(
            (
                prop::sample::select(&[
                    "type", "subtype", "is_error", "result", "total_cost_usd", "num_turns",
                    "permission_denials", "session_id",
                ][..]),
                prop_oneof![
                    scalar(),
                    answer().prop_map(Value::String),
                    prop::sample::select(&["success", "error_max_turns", "error_during_execution"][..])
                        .prop_map(|s| Value::String(s.into())),
                ],
            ),
            0..7,
        )),
        after in prop::collection::vec(text(20), 0..2),
        stderr in lossy(60),
        code in prop_oneof![Just(0), 0i32..256],
        signal in prop::option::of(1i32..32),
    ) {
        let mut out = before.join("\n");
        if let Some(kv) = result {
            let m: Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            out.push('\n');
            out.push_str(&Value::Object(m).to_string());
        }
        for a in after {
            out.push('\n');
            out.push_str(&a);
        }
        let status = match signal {
            Some(s) => ExitStatus::from_raw(s),
            None => ExitStatus::from_raw(code << 8),
        };
        let d = claude_cli::diagnosis_from_output(
            out.as_bytes(),
            stderr.as_bytes(),
            status,
            &Default::default(),
        );
        prop_assert!(d.llm_called);
        prop_assert!(d.error.is_some() != d.diagnosed, "{d:?}");
        if let Some(c) = d.cost_usd {
            prop_assert!(c.is_finite() && c >= 0.0);
        }
        check_diagnosis(&d, out.len() + stderr.len())?;
    }
}
