//! loguru's JSON lines (`serialize=True`): one object per line with `text` (the
//! formatted record, traceback included) and `record` (time, level, message, name,
//! function, line, exception, extra). A line that is not valid JSON is reported, once
//! per run and file, and skipped without stopping the source.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::loguru::{exception_type, split_traceback};
use super::{Event, Level, RecordParser};

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    text: String,
    record: Record,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    message: String,
    level: RecordLevel,
    time: Option<RecordTime>,
    name: Option<String>,
    function: Option<String>,
    line: Option<u64>,
    exception: Option<RecordException>,
    #[serde(default)]
    extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RecordLevel {
    name: String,
    no: Option<u32>,
}

#[derive(Deserialize)]
struct RecordTime {
    timestamp: f64,
}

#[derive(Deserialize)]
struct RecordException {
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
}

/// Parses loguru JSON lines into records.
pub struct JsonParser {
    source: String,
    origin: String,
    levels: BTreeMap<String, u32>,
    min_level: u32,
    bad_lines: u64,
    first_bad: Option<(u64, String)>,
}

impl JsonParser {
    pub fn new(source: &str, origin: &str, levels: &BTreeMap<String, u32>, min_level: u32) -> Self {
        JsonParser {
            source: source.into(),
            origin: origin.into(),
            levels: levels.clone(),
            min_level,
            bad_lines: 0,
            first_bad: None,
        }
    }
}

impl RecordParser for JsonParser {
    fn push(&mut self, line_no: u64, line: &str) -> Option<Event> {
        if line.trim().is_empty() {
            return None;
        }
        let parsed: Line = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => {
                self.bad_lines += 1;
                if self.first_bad.is_none() {
                    self.first_bad = Some((line_no, e.to_string()));
                }
                return None;
            }
        };
        let r = parsed.record;
        let level = match r.level.no {
            Some(no) => Level {
                name: r.level.name,
                no,
            },
            None => Level::named(&r.level.name, &self.levels),
        };
        if level.no < self.min_level {
            return None;
        }
        let text_lines: Vec<String> = parsed.text.lines().map(str::to_string).collect();
        let (_, traceback, exception_line) = split_traceback(&text_lines);
        let (exception_type_, exception_line) = match (&r.exception, exception_line) {
            (Some(e), line) => {
                let ty = e
                    .kind
                    .clone()
                    .or_else(|| line.as_deref().map(exception_type));
                let line = line.or_else(|| {
                    ty.as_ref().map(|t| match &e.value {
                        Some(v) => format!("{t}: {v}"),
                        None => t.clone(),
                    })
                });
                (ty, line)
            }
            (None, Some(line)) => (Some(exception_type(&line)), Some(line)),
            (None, None) => (None, None),
        };
        let mut raw = super::loguru::cut_raw(parsed.text.trim_end()).to_string();
        if raw.is_empty() {
            raw = r.message.clone();
        }
        if !r.extra.is_empty() {
            raw.push_str(&format!(
                "\nextra: {}",
                serde_json::to_string(&r.extra).unwrap_or_default()
            ));
        }
        let fields = r
            .extra
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        Some(Event {
            source: self.source.clone(),
            origin: format!("{}:{line_no}", self.origin),
            time: r
                .time
                .and_then(|t| super::format::time_from_number(t.timestamp)),
            level,
            logger: r.name,
            location: r.function.map(|f| match r.line {
                Some(l) => format!("{f}:{l}"),
                None => f,
            }),
            message: r.message,
            traceback,
            exception_type: exception_type_,
            exception_line,
            raw,
            fields,
        })
    }

    fn finish(&mut self) -> Option<Event> {
        None
    }

    fn take_problems(&mut self) -> Vec<String> {
        let Some((line, err)) = self.first_bad.take() else {
            return Vec::new();
        };
        let n = std::mem::take(&mut self.bad_lines);
        vec![format!(
            "{}: {n} line{} not valid loguru JSON, skipped (first at line {line}: {err})",
            self.origin,
            if n == 1 { " is" } else { "s are" }
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_serialized_record_with_traceback() {
        let line = r#"{"text": "2026-11-22 10:00:00.000 | ERROR    | app:f:3 - boom\nTraceback (most recent call last):\n  File \"x.py\", line 3, in f\nValueError: bad\n", "record": {"message": "boom", "level": {"name": "ERROR", "no": 40, "icon": "x"}, "time": {"repr": "2026-11-22", "timestamp": 1763805600.5}, "name": "app", "function": "f", "line": 3, "exception": {"type": "ValueError", "value": "bad", "traceback": true}, "extra": {"request_id": "r-1"}}}"#;
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        let e = p.push(1, line).unwrap();
        assert_eq!(e.message, "boom");
        assert_eq!(e.exception_type.as_deref(), Some("ValueError"));
        assert!(e.traceback.unwrap().contains("File \"x.py\""));
        assert_eq!(e.fields["request_id"], "r-1");
        assert_eq!(e.time.unwrap().timestamp(), 1763805600);
    }

    #[test]
    fn reports_bad_lines_once() {
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        assert!(p.push(1, "{not json").is_none());
        assert!(p.push(2, "also bad").is_none());
        let problems = p.take_problems();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("2 lines are not valid") && problems[0].contains("line 1"),
            "{problems:?}"
        );
        assert!(p.take_problems().is_empty());
    }
}
