//! The loguru text format: `YYYY-MM-DD HH:mm:ss.SSS | LEVEL    | name:function:line - message`
//! (with or without a UTC offset after the time), with continuation lines and
//! tracebacks (loguru's `diagnose=True` frames and chained exceptions included)
//! joined to the record they belong to.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::format::{Header, LineFormat};
use super::{Event, Level};

/// The most of a record kept as its raw text.
pub const MAX_RAW: usize = 16 * 1024;

/// A record's text cut to [`MAX_RAW`] bytes, off the middle of a token: the
/// record is redacted only when it leaves the host, and half a secret no longer
/// has the shape that finds it.
pub fn cut_raw(text: &str) -> &str {
    &text[..crate::redact::cut_point(text, MAX_RAW)]
}
/// The most continuation lines kept for one record (the rest are counted).
pub const MAX_RECORD_LINES: usize = 400;

/// The time at the start of a default-format header: where the time ends, the UTC
/// offset's range if any, and where the rest (` | LEVEL …`) starts.
fn time_prefix(b: &[u8]) -> Option<(usize, Option<std::ops::Range<usize>>, usize)> {
    if b.len() < 23 || !b[0].is_ascii_digit() {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return None;
    }
    let mut i = 19;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let time_end = i;
    let mut offset = None;
    if i < b.len() && b[i] == b'Z' {
        i += 1;
        offset = Some(i - 1..i);
    } else if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        let start = i;
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b':') {
            i += 1;
        }
        offset = Some(start..i);
    }
    Some((time_end, offset, i))
}

/// For the default format, on raw bytes: if `b` starts a record, its level (the fast
/// path that lets records below `min_level` be skipped without decoding them). Agrees
/// with [`parse_header`] on which lines are headers.
pub fn header_level(b: &[u8]) -> Option<&[u8]> {
    let (_, _, i) = time_prefix(b)?;
    let rest = b[i..].strip_prefix(b" | ")?;
    let bar = memchr::memchr(b'|', rest)?;
    let mut level = &rest[..bar];
    while let [head @ .., b' '] = level {
        level = head;
    }
    if level.is_empty() {
        return None;
    }
    let rest = rest[bar + 1..].strip_prefix(b" ")?;
    let dash = memchr::memchr_iter(b'-', rest)
        .find(|&i| i > 0 && rest[i - 1] == b' ' && rest.get(i + 1) == Some(&b' '))?
        - 1;
    let loc = &rest[..dash];
    let colon = memchr::memrchr(b':', loc)?;
    let lineno = &loc[colon + 1..];
    if lineno.is_empty() || !lineno.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(level)
}

/// Parses a record's first line in the default loguru format; `None` if the line is a
/// continuation line.
pub fn parse_header(line: &str) -> Option<Header<'_>> {
    let (time_end, offset, i) = time_prefix(line.as_bytes())?;
    let offset = offset.map(|r| {
        if &line[r.clone()] == "Z" {
            "+00:00"
        } else {
            &line[r]
        }
    });
    let rest = line[i..].strip_prefix(" | ")?;
    let bar = rest.find('|')?;
    let level = rest[..bar].trim_end();
    if level.is_empty() {
        return None;
    }
    let rest = rest[bar + 1..].strip_prefix(' ')?;
    let dash = rest.find(" - ")?;
    let loc = &rest[..dash];
    let message = &rest[dash + 3..];
    let (head, lineno) = loc.rsplit_once(':')?;
    if lineno.is_empty() || !lineno.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (logger, function) = head.split_once(':').unwrap_or((head, ""));
    Some(Header {
        time: None,
        time_text: Some((&line[..time_end], offset)),
        level: Some(level),
        logger: Some(logger),
        function: Some(function),
        line: Some(lineno),
        message,
        fields: Vec::new(),
    })
}

/// Parses a loguru default-format line's time (with its optional UTC offset).
pub fn parse_time(text: &str, offset: Option<&str>) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut n = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + (c - b'0') as u32;
        }
        Some(n)
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let mut nanos = 0u32;
    if b.len() > 20 {
        let frac = &b[20..];
        let digits = frac.len().min(9);
        nanos = num(20..20 + digits)? * 10u32.pow(9 - digits as u32);
    }
    let naive = date.and_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)?;
    match offset {
        None => Some(naive.and_utc()),
        Some(off) => {
            let off = off.replace(':', "");
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let hh: i64 = off.get(1..3)?.parse().ok()?;
            let mm: i64 = off.get(3..5).unwrap_or("00").parse().ok()?;
            let secs = sign * (hh * 3600 + mm * 60);
            Some(naive.and_utc() - chrono::Duration::seconds(secs))
        }
    }
}

/// Splits a record's continuation lines into message lines and traceback, and finds the
/// final exception.
pub fn split_traceback(lines: &[String]) -> (Vec<&str>, Option<String>, Option<String>) {
    let start = lines.iter().position(|l| is_traceback_start(l));
    let Some(start) = start else {
        return (lines.iter().map(String::as_str).collect(), None, None);
    };
    let mut message: Vec<&str> = lines[..start].iter().map(String::as_str).collect();
    while message.last().is_some_and(|l| l.trim().is_empty()) {
        message.pop();
    }
    let tb = &lines[start..];
    let exception_line = tb
        .iter()
        .rev()
        .find(|l| is_exception_line(l))
        .map(|l| l.trim_end().to_string());
    let mut text = tb.join("\n");
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    (message, Some(text), exception_line)
}

fn is_traceback_start(line: &str) -> bool {
    let l = line.trim_end();
    l == "Traceback (most recent call last):"
        || l == "Exception Group Traceback (most recent call last):"
        || l.ends_with("| Exception Group Traceback (most recent call last):")
}

/// `ValueError: bad value`, `KeyError: 'k'`, `module.CustomError`, at column 0.
fn is_exception_line(line: &str) -> bool {
    let head = line
        .split_once(':')
        .map(|(h, _)| h)
        .unwrap_or(line.trim_end());
    let mut chars = head.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    head.chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        && (line.len() == head.len()
            || line[head.len()..].starts_with(": ")
            || line[head.len()..].trim_end() == ":")
}

/// The type part of an exception line (`ValueError` of `ValueError: bad value`).
pub fn exception_type(line: &str) -> String {
    line.split_once(':')
        .map(|(h, _)| h)
        .unwrap_or(line)
        .trim()
        .to_string()
}

/// Assembles records from lines: a header line starts a record, the lines after it
/// belong to it until the next header.
pub struct RecordAssembler {
    source: String,
    origin: String,
    levels: BTreeMap<String, u32>,
    min_level: u32,
    header: HeaderParser,
    pending: Option<Pending>,
    /// The record in progress is below `min_level`: its lines are skipped.
    skipping: bool,
}

/// How a record's first line is recognised.
#[derive(Clone)]
pub enum HeaderParser {
    LoguruDefault,
    /// A compiled format; records whose line has no level get `default_level`.
    Line {
        format: std::sync::Arc<LineFormat>,
        default_level: Option<String>,
    },
}

impl HeaderParser {
    fn parse<'a>(&self, line: &'a str) -> Option<Header<'a>> {
        match self {
            HeaderParser::LoguruDefault => parse_header(line),
            HeaderParser::Line { format, .. } => format.parse(line),
        }
    }
}

struct Pending {
    line_no: u64,
    time: Option<DateTime<Utc>>,
    level: Level,
    logger: String,
    location: String,
    message: String,
    fields: BTreeMap<String, String>,
    first: String,
    rest: Vec<String>,
    dropped_lines: u64,
    raw_len: usize,
    keep: bool,
}

impl RecordAssembler {
    /// `origin` names the file for evidence (`app.log`); records below `min_level` are
    /// skipped without keeping their text.
    pub fn new(source: &str, origin: &str, levels: &BTreeMap<String, u32>, min_level: u32) -> Self {
        Self::with_header(
            source,
            origin,
            levels,
            min_level,
            HeaderParser::LoguruDefault,
        )
    }

    pub fn with_header(
        source: &str,
        origin: &str,
        levels: &BTreeMap<String, u32>,
        min_level: u32,
        header: HeaderParser,
    ) -> Self {
        RecordAssembler {
            source: source.to_string(),
            origin: origin.to_string(),
            levels: levels.clone(),
            min_level,
            header,
            pending: None,
            skipping: false,
        }
    }

    /// Feeds one line (without its ending). Returns the record it completed, if any.
    pub fn push(&mut self, line_no: u64, line: &str) -> Option<Event> {
        if let Some(h) = self.header.parse(line) {
            let done = self.finish();
            let level_name = match (&self.header, h.level) {
                (_, Some(l)) => l,
                (
                    HeaderParser::Line {
                        default_level: Some(d),
                        ..
                    },
                    None,
                ) => d.as_str(),
                _ => "INFO",
            };
            let no = Level::number_of(level_name, &self.levels);
            if no < self.min_level {
                // Below min_level: only remember that continuation lines are skipped.
                self.skipping = true;
                return done;
            }
            let level = Level {
                name: level_name.trim().to_string(),
                no,
            };
            let keep = true;
            let location = match (h.function, h.line) {
                (Some(f), Some(l)) => format!("{f}:{l}"),
                (Some(f), None) => f.to_string(),
                _ => String::new(),
            };
            self.pending = Some(Pending {
                line_no,
                time: h
                    .time
                    .or_else(|| h.time_text.and_then(|t| parse_time(t.0, t.1))),
                logger: h.logger.unwrap_or("").to_string(),
                location,
                message: h.message.to_string(),
                fields: h
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
                level,
                first: line.to_string(),
                rest: Vec::new(),
                dropped_lines: 0,
                raw_len: line.len(),
                keep,
            });
            return done;
        }
        match &mut self.pending {
            Some(p) if p.keep => {
                if p.rest.len() < MAX_RECORD_LINES {
                    p.raw_len += line.len() + 1;
                    p.rest.push(line.to_string());
                } else {
                    p.dropped_lines += 1;
                }
                None
            }
            Some(_) => None,
            None if self.skipping => None,
            None => {
                // A continuation line with no record before it (the record started before
                // the checkpoint, or the file does not start with a header): keep it as a
                // record of its own so a traceback is never silently lost.
                let level = if is_traceback_start(line) {
                    Level::named("ERROR", &self.levels)
                } else {
                    Level {
                        name: "UNKNOWN".into(),
                        no: 0,
                    }
                };
                let keep = level.no >= self.min_level;
                self.pending = Some(Pending {
                    line_no,
                    time: None,
                    logger: String::new(),
                    location: String::new(),
                    message: String::new(),
                    fields: BTreeMap::new(),
                    level,
                    first: String::new(),
                    rest: if keep { vec![line.to_string()] } else { vec![] },
                    dropped_lines: 0,
                    raw_len: line.len(),
                    keep,
                });
                None
            }
        }
    }

    /// Completes the record in progress, if any (call at the end of the input).
    pub fn finish(&mut self) -> Option<Event> {
        self.skipping = false;
        let p = self.pending.take()?;
        if !p.keep {
            return None;
        }
        let (msg_lines, traceback, exception_line) = split_traceback(&p.rest);
        let mut message = p.message;
        for l in msg_lines {
            if !message.is_empty() {
                message.push('\n');
            }
            message.push_str(l);
        }
        let mut raw = String::with_capacity(p.raw_len.min(MAX_RAW) + 1);
        raw.push_str(&p.first);
        for l in &p.rest {
            if raw.len() >= MAX_RAW {
                break;
            }
            if !raw.is_empty() {
                raw.push('\n');
            }
            raw.push_str(l);
        }
        if raw.len() > MAX_RAW {
            let cut = cut_raw(&raw).len();
            raw.truncate(cut);
            raw.push_str("\n[… record cut]");
        }
        if p.dropped_lines > 0 {
            raw.push_str(&format!("\n[… {} more lines not kept]", p.dropped_lines));
        }
        Some(Event {
            source: self.source.clone(),
            origin: format!("{}:{}", self.origin, p.line_no),
            time: p.time,
            level: p.level,
            logger: (!p.logger.is_empty()).then_some(p.logger),
            location: (!p.location.is_empty()).then_some(p.location),
            message,
            exception_type: exception_line.as_deref().map(exception_type),
            exception_line,
            traceback,
            raw,
            fields: p.fields,
        })
    }
}

impl super::RecordParser for RecordAssembler {
    fn push(&mut self, line_no: u64, line: &str) -> Option<Event> {
        RecordAssembler::push(self, line_no, line)
    }
    fn push_bytes(&mut self, line_no: u64, line: &[u8]) -> Option<Event> {
        if let HeaderParser::LoguruDefault = self.header {
            match header_level(line) {
                Some(level) => {
                    let level = std::str::from_utf8(level).unwrap_or("");
                    if Level::number_of(level, &self.levels) < self.min_level {
                        let done = self.finish();
                        self.skipping = true;
                        return done;
                    }
                }
                None if self.skipping => return None,
                None => {}
            }
        }
        RecordAssembler::push(self, line_no, &String::from_utf8_lossy(line))
    }
    fn finish(&mut self) -> Option<Event> {
        RecordAssembler::finish(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_header() {
        let h = parse_header(
            "2026-11-22 09:50:45.492 | WARNING  | app.db:query:7 - Slow query took 1532 ms",
        )
        .unwrap();
        assert_eq!(h.level, Some("WARNING"));
        assert_eq!(h.logger, Some("app.db"));
        assert_eq!(h.function, Some("query"));
        assert_eq!(h.line, Some("7"));
        assert_eq!(h.message, "Slow query took 1532 ms");
        let (t, o) = h.time_text.unwrap();
        assert_eq!(
            parse_time(t, o).unwrap().to_rfc3339(),
            "2026-11-22T09:50:45.492+00:00"
        );
    }

    #[test]
    fn parses_offset_and_custom_levels() {
        let h = parse_header(
            "2026-11-22 10:50:45.492+01:00 | VERYLONGLEVELNAME | __main__:<module>:8 - hi - there",
        )
        .unwrap();
        assert_eq!(h.level, Some("VERYLONGLEVELNAME"));
        assert_eq!(h.function, Some("<module>"));
        assert_eq!(h.message, "hi - there");
        let (t, o) = h.time_text.unwrap();
        assert_eq!(
            parse_time(t, o).unwrap().to_rfc3339(),
            "2026-11-22T09:50:45.492+00:00"
        );
    }

    #[test]
    fn fast_header_check_agrees_with_the_parser() {
        for line in [
            "2026-11-22 09:50:45.492 | WARNING  | app.db:query:7 - Slow query",
            "2026-11-22 10:50:45.492+01:00 | X | m:<module>:8 - hi - there",
            "2026-11-22 is the date of the release",
            "2026-11-22 09:50:45.492 | WARNING  | no location here",
            "2026-11-22 09:50:45.492 | WARNING  | app:f:x - not a line number",
            "Traceback (most recent call last):",
        ] {
            assert_eq!(
                header_level(line.as_bytes()).is_some(),
                parse_header(line).is_some(),
                "{line}"
            );
        }
    }

    #[test]
    fn rejects_continuation_lines() {
        assert!(parse_header("Traceback (most recent call last):").is_none());
        assert!(parse_header("2026-11-22 is the date of the release").is_none());
        assert!(parse_header("").is_none());
    }

    #[test]
    fn joins_chained_traceback_and_finds_final_exception() {
        let text = "2026-11-22 09:50:45.498 | ERROR    | __main__:<module>:21 - chained thing
second line
Traceback (most recent call last):

  File \"/tmp/lg/gen.py\", line 17, in <module>
    {}[\"k\"]

KeyError: 'k'


The above exception was the direct cause of the following exception:


Traceback (most recent call last):

> File \"/tmp/lg/gen.py\", line 19, in <module>
    raise ValueError(\"bad value\") from e
          └ KeyError('k')

ValueError: bad value
2026-11-22 09:50:45.499 | INFO     | __main__:<module>:22 - next";
        let mut a = RecordAssembler::new("app", "app.log", &BTreeMap::new(), 30);
        let mut events = vec![];
        for (i, l) in text.lines().enumerate() {
            events.extend(a.push(i as u64 + 1, l));
        }
        events.extend(a.finish());
        assert_eq!(events.len(), 1, "the INFO record is below min_level");
        let e = &events[0];
        assert_eq!(e.message, "chained thing\nsecond line");
        assert_eq!(e.exception_type.as_deref(), Some("ValueError"));
        assert_eq!(e.exception_line.as_deref(), Some("ValueError: bad value"));
        assert!(e.traceback.as_ref().unwrap().contains("KeyError: 'k'"));
        assert_eq!(e.origin, "app.log:1");
    }
}
