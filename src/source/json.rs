//! loguru's JSON lines (`serialize=True`): one object per line with `text` (the
//! formatted record, traceback included) and `record` (time, level, message, name,
//! function, line, exception, extra). Records of any size (up to [`MAX_JSON_LINE`])
//! and nesting depth are read: `extra` values are taken as raw JSON text, which serde_json
//! skips without recursing. A line that does not parse (cut at the cap, or not JSON) is
//! classified by a cheap scan of its text (loguru's `"level": {… "no": N}`, the
//! formatted `text`, else ERROR/CRITICAL/Traceback) and, when it may be an error, kept at
//! ERROR with a note; the others are reported with their line numbers.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::loguru::{exception_type, split_traceback};
use super::{Event, Level, RecordParser};

/// The longest JSON line read whole (a huge `extra` is valid loguru output); longer
/// lines are cut and go through the fallback scan.
pub const MAX_JSON_LINE: usize = 8 * 1024 * 1024;
/// How loguru starts each serialized record.
const RECORD_START: &[u8] = b"{\"text\":";
/// The most of one `extra` value kept as a field.
const MAX_FIELD: usize = 4096;

/// loguru's ERROR.
const ERROR_NO: u32 = 40;

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
    extra: BTreeMap<String, Box<RawValue>>,
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
    /// Line numbers of the bad lines (the first few).
    bad_at: Vec<u64>,
    /// Bad lines kept as errors by the fallback scan.
    rescued: u64,
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
            bad_at: Vec::new(),
            rescued: 0,
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
            Err(e) => return self.fallback(line_no, line, &e.to_string(), e.is_eof()),
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
        let fields: BTreeMap<String, String> = r
            .extra
            .iter()
            .map(|(k, v)| {
                let text =
                    serde_json::from_str::<String>(v.get()).unwrap_or_else(|_| v.get().to_string());
                (k.clone(), cap(&text, MAX_FIELD))
            })
            .collect();
        if !fields.is_empty() {
            let extra: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            raw.push_str("\nextra: ");
            raw.push_str(&cap(&extra.join(", "), super::loguru::MAX_RAW));
        }
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

    fn starts_record(&self, bytes: &[u8]) -> bool {
        bytes.starts_with(RECORD_START)
    }

    fn embedded_record(&self, line: &[u8]) -> Option<usize> {
        // Inside a JSON string a quote is escaped, so `{"text":` past the start is a
        // second record, appended to a line whose writer died mid-record — unless it is
        // an object in `extra`, which leaves the line valid JSON.
        let at = memchr::memmem::find(line.get(1..)?, RECORD_START)? + 1;
        serde_json::from_slice::<serde::de::IgnoredAny>(line)
            .is_err()
            .then_some(at)
    }

    fn max_line(&self) -> usize {
        MAX_JSON_LINE
    }

    fn take_problems(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let rescued = std::mem::take(&mut self.rescued);
        if rescued > 0 {
            out.push(format!(
                "{}: {rescued} line{} not valid loguru JSON kept by a scan of their text (level found, or ERROR when they mention an error)",
                self.origin,
                if rescued == 1 { "" } else { "s" }
            ));
        }
        let Some((line, err)) = self.first_bad.take() else {
            return out;
        };
        let n = std::mem::take(&mut self.bad_lines);
        let at: Vec<String> = std::mem::take(&mut self.bad_at)
            .iter()
            .map(u64::to_string)
            .collect();
        let more = if n > at.len() as u64 {
            format!(" and {} more", n - at.len() as u64)
        } else {
            String::new()
        };
        out.push(format!(
            "{}: {n} line{} not valid loguru JSON and not an error by its text, skipped (at line{} {}{more}; first at line {line}: {err})",
            self.origin,
            if n == 1 { " is" } else { "s are" },
            if at.len() == 1 { "" } else { "s" },
            at.join(", "),
        ));
        out
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    // Never inside a token: half a key no longer matches its redaction rule.
    let cut = crate::redact::cut_point(s, max);
    format!("{}…", &s[..cut])
}

/// The JSON string starting at `s` (just after its opening quote), decoded, up to its
/// closing quote or the end of `s` (a cut line).
fn json_string_at(s: &str) -> String {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    let mut end = i.min(b.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut lit = &s[..end];
    // A cut escape at the end would make the literal invalid: drop it.
    loop {
        match serde_json::from_str::<String>(&format!("\"{lit}\"")) {
            Ok(v) => return v,
            Err(_) if !lit.is_empty() => {
                let mut cut = lit.len() - 1;
                while !lit.is_char_boundary(cut) {
                    cut -= 1;
                }
                lit = &lit[..cut];
            }
            Err(_) => return String::new(),
        }
    }
}

impl JsonParser {
    /// A line serde_json refused: classify it by its text rather than lose an error.
    /// `cut`: the line ends before its record does (cut at the line cap, or torn).
    fn fallback(&mut self, line_no: u64, line: &str, err: &str, cut: bool) -> Option<Event> {
        let looks_loguru = line.trim_start().starts_with("{\"text\":");
        // loguru writes the level as {"icon": "…", "name": "ERROR", "no": 40}.
        // The record's own keys come after `extra`, so the last match is theirs, unless
        // the line was cut before them: then it is text a stranger may have written in
        // `extra` (a request body), and it may only make the record look worse.
        let structural = line.rfind("\"level\": {").and_then(|at| {
            let rest = &line[at..line.len().min(at + 512)];
            let name = rest
                .find("\"name\": \"")
                .map(|i| json_string_at(&rest[i + 9..]));
            let no = rest.find("\"no\": ").and_then(|i| {
                let digits: String = rest[i + 6..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse::<u32>().ok()
            });
            match (name, no) {
                (Some(name), Some(no)) => Some(Level { name, no }),
                (Some(name), None) => {
                    Level::known_number(&name, &self.levels).map(|no| Level { name, no })
                }
                _ => None,
            }
        });
        let text = if looks_loguru {
            line.trim_start()[8..]
                .trim_start()
                .strip_prefix('"')
                .map(json_string_at)
                .unwrap_or_default()
        } else {
            String::new()
        };
        let first_line = text.lines().next().unwrap_or("");
        // The formatted text's first line has the level in loguru's default format; it
        // comes first on the line, so a cut never takes it. The more severe reading wins.
        let headed = super::loguru::parse_header(first_line)
            .and_then(|h| h.level)
            .map(|l| Level::named(l, &self.levels));
        let mentions_error = ["ERROR", "CRITICAL", "Traceback"]
            .iter()
            .any(|w| line.contains(w));
        let level = match (structural, headed) {
            (Some(a), Some(b)) => Some(if b.no > a.no { b } else { a }),
            (Some(a), None) if cut && a.no < ERROR_NO && mentions_error => {
                // The level found may be a stranger's, and the record's own is past the cut.
                None
            }
            (a, b) => a.or(b),
        };
        let (level, note) = match level {
            Some(l) => (
                l,
                format!("not valid loguru JSON ({err}); read by a scan of its text"),
            ),
            None if mentions_error => (
                Level {
                    name: "ERROR".into(),
                    no: 40,
                },
                format!("not valid loguru JSON ({err}) and it mentions an error; kept as ERROR"),
            ),
            None => {
                self.bad_lines += 1;
                if self.bad_at.len() < 10 {
                    self.bad_at.push(line_no);
                }
                if self.first_bad.is_none() {
                    self.first_bad = Some((line_no, err.to_string()));
                }
                return None;
            }
        };
        self.rescued += 1;
        if level.no < self.min_level {
            return None;
        }
        let message = line
            .rfind("\"message\": \"")
            .map(|i| json_string_at(&line[i + 12..]))
            .or_else(|| super::loguru::parse_header(first_line).map(|h| h.message.to_string()))
            .unwrap_or_else(|| cap(line.trim(), 500));
        let text_lines: Vec<String> = text.lines().map(str::to_string).collect();
        let (_, traceback, exception_line) = split_traceback(&text_lines);
        let shown = if text.is_empty() { line } else { text.as_str() };
        let mut e = Event::new(
            &self.source,
            format!("{}:{line_no}", self.origin),
            level,
            message,
        );
        e.raw = format!(
            "[{note}]\n{}",
            cap(shown.trim_end(), super::loguru::MAX_RAW)
        );
        e.fields.insert("logwarden_note".into(), note);
        e.exception_type = exception_line.as_deref().map(exception_type);
        e.exception_line = exception_line;
        e.traceback = traceback;
        Some(e)
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

    /// A line cut before the record's own level (past a long `extra`) may hold a level
    /// a stranger wrote in `extra`: it never lowers what the record is read as.
    #[test]
    fn a_cut_line_is_never_read_below_its_text_or_an_error_it_mentions() {
        let stranger = r#""extra": {"body": {"level": {"name": "DEBUG", "no": 5}, "pad": "xxxx"#;
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        let headed = format!(
            r#"{{"text": "2026-11-22 10:00:00.000 | ERROR    | app:f:3 - payment failed\n", "record": {{"elapsed": {{"repr": "0:00:01", "seconds": 1.0}}, "exception": null, {stranger}"#
        );
        let e = p.push(1, &headed).expect("kept");
        assert_eq!(e.level.name, "ERROR");
        // a custom text format (no header to read): an error it mentions keeps it
        let plain = format!(
            r#"{{"text": "payment failed: ERROR\n", "record": {{"exception": null, {stranger}"#
        );
        assert_eq!(p.push(2, &plain).expect("kept").level.no, 40);
        // a stranger may make a record look worse, never better
        let worse = headed.replace(r#"DEBUG", "no": 5"#, r#"CRITICAL", "no": 50"#);
        assert_eq!(p.push(3, &worse).expect("kept").level.no, 50);
        // a line whose record is whole (bad for another reason) is read by its own, last,
        // level; cut, an error it mentions keeps it
        let info = r#"{"text": "x", "record": {"extra": {"b": {"level": {"name": "ERROR", "no": 40}}}, "level": {"name": "INFO", "no": 20}, "message": "x"}}"#;
        assert!(p.push(4, &format!("{info} trailing")).is_none());
        assert_eq!(
            p.push(5, &info[..info.len() - 2]).expect("kept").level.no,
            40
        );
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
    #[test]
    fn huge_and_deep_records_parse() {
        let mut deep = String::new();
        for _ in 0..300 {
            deep.push_str("{\"k\": ");
        }
        deep.push('1');
        for _ in 0..300 {
            deep.push('}');
        }
        let big = "y".repeat(200_000);
        let line = format!(
            r#"{{"text": "2026-11-22 10:00:00.000 | ERROR    | app:f:3 - boom\n", "record": {{"exception": null, "extra": {{"tree": {deep}, "big": "{big}"}}, "level": {{"icon": "x", "name": "ERROR", "no": 40}}, "message": "boom", "name": "app"}}}}"#
        );
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        let e = p.push(1, &line).expect("parsed");
        assert_eq!(e.message, "boom");
        assert_eq!(e.level.no, 40);
        assert!(e.fields["big"].len() <= MAX_FIELD + 4);
        assert!(e.raw.len() <= crate::source::loguru::MAX_RAW + 200);
        assert!(p.take_problems().is_empty());
    }

    #[test]
    fn an_extra_cut_at_its_cap_never_keeps_half_a_token() {
        let token = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
        let blob = format!("{} {token} tail", "word ".repeat((MAX_FIELD - 20) / 5));
        assert!(blob.find(token).unwrap() < MAX_FIELD);
        assert!(blob.find(token).unwrap() + token.len() > MAX_FIELD);
        let line = format!(
            r#"{{"text": "2026-11-22 10:00:00.000 | ERROR    | app:f:3 - boom\n", "record": {{"exception": null, "extra": {{"blob": "{blob}"}}, "level": {{"icon": "x", "name": "ERROR", "no": 40}}, "message": "boom", "name": "app"}}}}"#
        );
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        let e = p.push(1, &line).expect("parsed");
        assert!(e.fields["blob"].len() <= MAX_FIELD + 4);
        assert!(!e.fields["blob"].contains("ghp_"), "{}", e.fields["blob"]);
        assert!(!e.raw.contains("ghp_AbCd"), "{}", e.raw);
    }

    #[test]
    fn a_cut_record_is_classified_by_its_text() {
        let line = r#"{"text": "2026-11-22 10:00:00.000 | CRITICAL | app:f:3 - Ledger broken\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\n", "record": {"exception": null, "extra": {"big": "yyyyyyy"#;
        let mut p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        let e = p.push(7, line).expect("kept");
        assert_eq!(e.level.no, 50);
        assert_eq!(e.message, "Ledger broken");
        assert_eq!(e.exception_type.as_deref(), Some("ValueError"));
        assert!(e.raw.contains("not valid loguru JSON"), "{}", e.raw);
        let e = p
            .push(8, "Traceback (most recent call last): half a line")
            .expect("kept");
        assert_eq!(e.level.no, 40);
        assert!(p.push(9, "plain noise").is_none());
        let problems = p.take_problems().join("\n");
        assert!(problems.contains("line 9"), "{problems}");
    }

    /// A record appended to a torn one starts at its `{"text":`; an object of that
    /// shape in `extra` (the line is valid JSON) is not a record.
    #[test]
    fn a_record_inside_a_torn_line_is_found() {
        let p = JsonParser::new("app", "app.json", &BTreeMap::new(), 30);
        let rec =
            r#"{"text": "x\n", "record": {"message": "x", "level": {"name": "ERROR", "no": 40}}}"#;
        let torn = r#"{"text": "2026 | ERROR | a:b:1 - half"#;
        assert_eq!(
            p.embedded_record(format!("{torn}{rec}").as_bytes()),
            Some(torn.len())
        );
        let nested = r#"{"text": "x\n", "record": {"message": "x", "level": {"name": "ERROR", "no": 40}, "extra": {"k": {"text": 1}}}}"#;
        assert_eq!(p.embedded_record(nested.as_bytes()), None);
        assert!(p.starts_record(rec.as_bytes()));
    }
}
