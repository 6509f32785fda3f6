//! Finding and normalising the JSON verdict at the end of an investigator's answer.

use serde_json::Value;

use super::{Diagnosis, ProposedAction};

/// Finds the last JSON object with a `verdict` key in `text` (bare or in a code
/// fence) and fills a diagnosis from it. `None` if there is none.
pub fn parse(text: &str) -> Option<Diagnosis> {
    let mut found: Option<serde_json::Map<String, Value>> = None;
    for (i, _) in text.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        if let Some(Ok(Value::Object(map))) = stream.next() {
            if map.contains_key("verdict") {
                found = Some(map);
            }
        }
    }
    let map = found?;
    let s = |k: &str| match map.get(k) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let verdict = match s("verdict").to_ascii_lowercase().as_str() {
        "real" | "incident" | "true" => "real",
        "noise" | "false_positive" | "benign" => "noise",
        _ => "unsure",
    };
    let severity = match s("severity").to_ascii_lowercase().as_str() {
        "critical" | "high" | "error" | "fatal" | "page" => "critical",
        "info" | "low" | "informational" | "none" => "info",
        _ => "warning",
    };
    let confidence = match map.get("confidence") {
        Some(Value::Number(n)) => n.as_f64().map(|c| if c > 1.0 { c / 100.0 } else { c }),
        Some(Value::String(t)) => {
            t.trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .map(|c| if c > 1.0 { c / 100.0 } else { c })
        }
        _ => None,
    }
    // `"NaN"` parses as a float and survives `clamp`: untrusted text must give a number
    // in 0..=1 or none.
    .filter(|c| c.is_finite())
    .map(|c| c.clamp(0.0, 1.0));
    let actions = match map.get("actions") {
        Some(Value::Array(list)) => list.iter().take(MAX_PROPOSALS).map(proposal).collect(),
        _ => Vec::new(),
    };
    Some(Diagnosis {
        diagnosed: true,
        actions,
        verdict: verdict.into(),
        severity: severity.into(),
        // A title is one line wherever it goes (a list row, a header, a heading).
        title: crate::sanitize::unbroken(&s("title")),
        summary: s("summary"),
        root_cause: s("root_cause"),
        suggested_fix: s("suggested_fix"),
        confidence,
        ..Diagnosis::default()
    })
}

/// At most this many proposed actions are read from a verdict; one runs at a time.
const MAX_PROPOSALS: usize = 5;

/// Text from the verdict, cut: it is shown and stored, never trusted.
fn cut(s: &str, max: usize) -> String {
    crate::sanitize::line(s).chars().take(max).collect()
}

/// One entry of `actions`. Anything that is not an object with a string id gives an
/// empty id, which the allow-list refuses (and says so).
fn proposal(v: &Value) -> ProposedAction {
    let Value::Object(m) = v else {
        return ProposedAction {
            id: String::new(),
            reason: cut(&v.to_string(), 200),
            ..ProposedAction::default()
        };
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let params = match m.get("params") {
        Some(Value::Object(p)) => p
            .iter()
            .take(20)
            // One character over the limit is kept, so that the allow-list refuses
            // a value that was too long rather than run it cut short.
            .map(|(k, v)| {
                let v = text(v)
                    .chars()
                    .take(crate::actions::MAX_PARAM_CHARS + 1)
                    .collect();
                (cut(k, 64), v)
            })
            .collect(),
        _ => Default::default(),
    };
    ProposedAction {
        id: m.get("id").map(|v| cut(&text(v), 100)).unwrap_or_default(),
        params,
        reason: m
            .get("reason")
            .map(|v| cut(&text(v), 500))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_last_verdict_in_prose_and_fences() {
        let text = r#"I looked at the logs. Example: {"a": 1}.
```json
{"verdict": "REAL", "severity": "high", "title": "DB down", "summary": "s",
 "root_cause": "r", "suggested_fix": "f", "confidence": 85}
```"#;
        let d = parse(text).unwrap();
        assert_eq!(d.verdict, "real");
        assert_eq!(d.severity, "critical");
        assert_eq!(d.title, "DB down");
        assert_eq!(d.confidence, Some(0.85));
    }

    #[test]
    fn confidence_is_a_fraction_or_nothing() {
        for (given, want) in [
            (r#""NaN""#, None),
            (r#""nan%""#, None),
            (r#""inf""#, None),
            (r#""-infinity""#, None),
            (r#""85%""#, Some(0.85)),
            ("-3", Some(0.0)),
            ("250", Some(1.0)),
        ] {
            let d = parse(&format!(r#"{{"verdict": "real", "confidence": {given}}}"#)).unwrap();
            assert_eq!(d.confidence, want, "{given}");
        }
    }

    #[test]
    fn reads_proposed_actions_as_untrusted_text() {
        let d = parse(
            r#"{"verdict": "real", "actions": [
                {"id": "restart-app", "params": {"unit": "app.service", "n": 3}, "reason": "stuck"},
                "rm -rf /", {"params": {}}]}"#,
        )
        .unwrap();
        assert_eq!(d.actions.len(), 3);
        assert_eq!(d.actions[0].id, "restart-app");
        assert_eq!(d.actions[0].params["unit"], "app.service");
        assert_eq!(d.actions[0].params["n"], "3");
        assert_eq!(d.actions[1].id, "", "a bare string is no proposal");
        assert_eq!(d.actions[2].id, "");
        let many = format!(
            r#"{{"verdict": "real", "actions": [{}]}}"#,
            vec![r#"{"id": "a"}"#; 50].join(",")
        );
        assert_eq!(parse(&many).unwrap().actions.len(), MAX_PROPOSALS);
    }

    #[test]
    fn junk_gives_none() {
        assert!(parse("no json here { broken").is_none());
        assert!(parse(r#"{"other": 1}"#).is_none());
    }
}
