//! The systemd journal, read with `journalctl --output=json --after-cursor=…` (never
//! following), filtered by unit or identifier; `PRIORITY` becomes the level, `MESSAGE`
//! may be a string or a byte array; the cursor of the last entry read is the
//! checkpoint. Lines of one traceback, logged one entry each by the same process, are
//! joined into one record.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::file::{ReadReport, SourceError};
use super::loguru::{exception_type, split_traceback};
use super::{Checkpoint, Event, Level};
use crate::config::{JournaldSource, SourceConfig, StartFrom};

/// The level for a syslog priority (0 emerg … 7 debug).
pub fn level_of_priority(p: u8) -> Level {
    let (name, no) = match p {
        0 => ("EMERG", 50),
        1 => ("ALERT", 50),
        2 => ("CRIT", 50),
        3 => ("ERR", 40),
        4 => ("WARNING", 30),
        5 => ("NOTICE", 25),
        6 => ("INFO", 20),
        _ => ("DEBUG", 10),
    };
    Level {
        name: name.into(),
        no,
    }
}

fn message_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(bytes)) => {
            let b: Vec<u8> = bytes
                .iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as u8)
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn str_field<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

/// A record being joined from consecutive entries of one process.
struct Pending {
    key: (String, String),
    event: Event,
    lines: Vec<String>,
}

const TRACEBACK: &str = "Traceback (most recent call last):";

fn continues(p: &Pending, key: &(String, String), msg: &str) -> bool {
    if p.key != *key {
        return false;
    }
    let in_traceback = p.lines.iter().any(|l| l.trim_end() == TRACEBACK);
    msg.starts_with(' ')
        || msg.starts_with('\t')
        || msg.trim_end() == TRACEBACK
        || (in_traceback
            && !msg.is_empty()
            && !p
                .lines
                .last()
                .is_some_and(|l| !l.starts_with(' ') && l.contains(": ")))
        || msg.starts_with("During handling of the above exception")
        || msg.starts_with("The above exception was the direct cause")
}

fn flush(p: Pending, sink: &mut dyn FnMut(Event)) {
    let mut e = p.event;
    if p.lines.len() > 1 {
        let (msg, traceback, exc_line) = split_traceback(&p.lines[1..]);
        let mut message = p.lines[0].clone();
        for l in msg {
            message.push('\n');
            message.push_str(l);
        }
        e.message = message;
        e.traceback = traceback;
        e.exception_type = exc_line.as_deref().map(exception_type);
        e.exception_line = exc_line;
        if e.traceback.is_some() && e.level.no < 40 {
            e.level = Level {
                name: "ERR".into(),
                no: 40,
            };
        }
    }
    e.raw = super::loguru::cut_raw(&p.lines.join("\n")).to_string();
    sink(e);
}

/// Reads the journal entries after the checkpoint's cursor.
pub fn read(
    cfg: &SourceConfig,
    src: &JournaldSource,
    prev: Option<&Checkpoint>,
    all_levels: bool,
    now: DateTime<Utc>,
    sink: &mut dyn FnMut(Event),
) -> Result<ReadReport, SourceError> {
    let mut report = ReadReport::default();
    let state: Option<Value> = prev.and_then(|c| serde_json::from_str::<Value>(&c.state).ok());
    let prev_cursor: Option<String> = state
        .as_ref()
        .and_then(|v| v.get("cursor").and_then(Value::as_str).map(str::to_string));
    // A first run from the end that could not read the journal: what came from its
    // time on is new.
    let since: Option<DateTime<Utc>> = state
        .as_ref()
        .filter(|_| prev_cursor.is_none())
        .and_then(|v| v.get("since")?.as_str()?.parse().ok());
    let mut cmd = Command::new(&src.command);
    cmd.args(["--output=json", "--no-pager", "--quiet"]);
    for u in &src.units {
        cmd.arg(format!("--unit={u}"));
    }
    for t in &src.identifiers {
        cmd.arg(format!("--identifier={t}"));
    }
    let min_level = if all_levels { 0 } else { cfg.min_level.no };
    // A priority filter would hide the entries joined into tracebacks; levels are
    // filtered here instead, except on a first run from the end (only the cursor).
    let tail_only = prev.is_none() && cfg.from == StartFrom::End;
    match (&prev_cursor, tail_only) {
        (Some(c), _) => {
            cmd.arg(format!("--after-cursor={c}"));
        }
        (None, true) => {
            cmd.arg("--lines=1");
        }
        (None, false) => {
            if let Some(t) = since {
                cmd.arg(format!("--since=@{}", t.timestamp()));
            }
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SourceError::Other(format!("cannot run `{}`: {e}", src.command)))?;
    let stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.take(16 * 1024).read_to_string(&mut s);
        s
    });
    let mut cursor = prev_cursor.clone();
    let mut pending: Option<Pending> = None;
    let mut bad = 0u64;
    let reader = BufReader::new(child.stdout.take().expect("piped"));
    for line in reader.split(b'\n') {
        let line =
            line.map_err(|e| SourceError::Other(format!("reading `{}`: {e}", src.command)))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        report.lines += 1;
        if let Some(c) = str_field(&entry, "__CURSOR") {
            cursor = Some(c.to_string());
        }
        if tail_only {
            continue;
        }
        let priority = entry
            .get("PRIORITY")
            .and_then(|p| {
                p.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| p.as_u64().map(|n| n as u8))
            })
            .unwrap_or(6);
        let msg = message_of(entry.get("MESSAGE"));
        let ident = str_field(&entry, "SYSLOG_IDENTIFIER")
            .or_else(|| str_field(&entry, "_SYSTEMD_UNIT"))
            .unwrap_or("")
            .to_string();
        let key = (
            ident.clone(),
            str_field(&entry, "_PID").unwrap_or("").to_string(),
        );
        let level = level_of_priority(priority);
        if let Some(p) = &mut pending {
            // A record is as severe as its most severe line. An indented entry more
            // severe than the record it would continue is a record of its own (a
            // traceback is joined whatever the level of the line before it).
            let traceback =
                msg.trim_end() == TRACEBACK || p.lines.iter().any(|l| l.trim_end() == TRACEBACK);
            if continues(p, &key, &msg) && (level.no <= p.event.level.no || traceback) {
                if level.no > p.event.level.no {
                    p.event.level = level.clone();
                }
                p.lines.push(msg);
                continue;
            }
        }
        if let Some(p) = pending.take() {
            if p.event.level.no >= min_level
                || p.lines.len() > 1 && p.lines.iter().any(|l| l.starts_with("Traceback"))
            {
                flush(p, sink);
            }
        }
        let mut e = Event::new(
            &cfg.name,
            format!(
                "journal:{}",
                cursor
                    .as_deref()
                    .unwrap_or("?")
                    .chars()
                    .take(40)
                    .collect::<String>()
            ),
            level,
            msg.clone(),
        );
        e.logger = (!ident.is_empty()).then_some(ident);
        e.time = str_field(&entry, "__REALTIME_TIMESTAMP")
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_micros);
        if let Some(u) = str_field(&entry, "_SYSTEMD_UNIT") {
            e.fields.insert("unit".into(), u.into());
        }
        pending = Some(Pending {
            key,
            event: e,
            lines: vec![msg],
        });
    }
    if let Some(p) = pending.take() {
        if p.event.level.no >= min_level || p.lines.iter().any(|l| l.starts_with("Traceback")) {
            flush(p, sink);
        }
    }
    let status = child
        .wait()
        .map_err(|e| SourceError::Other(format!("`{}`: {e}", src.command)))?;
    let stderr = err_thread.join().unwrap_or_default();
    if !status.success() && report.lines == 0 {
        let failed = format!(
            "`{}` failed ({status}): {}",
            src.command,
            stderr.trim().lines().last().unwrap_or("")
        );
        if !tail_only {
            return Err(SourceError::Other(failed));
        }
        // A first run from the end that cannot read: the next run reads from this
        // run's time on, rather than from the end it finds then (what came between
        // would be skipped).
        report.warnings.push(format!(
            "{failed} (first run, from = \"end\": the entries from {} on are read next run)",
            crate::store::ts(now)
        ));
        report.checkpoints.push(Checkpoint {
            source: cfg.name.clone(),
            key: "cursor".into(),
            state: serde_json::json!({ "cursor": null, "since": crate::store::ts(now) })
                .to_string(),
        });
        return Ok(report);
    }
    if !status.success() {
        report.warnings.push(format!(
            "`{}` ended with {status} after {} entries: {}",
            src.command,
            report.lines,
            stderr.trim()
        ));
    }
    if bad > 0 {
        report.warnings.push(format!(
            "journal: {bad} lines of `{}` output were not JSON, skipped",
            src.command
        ));
    }
    let state = match (&cursor, since) {
        // Nothing read yet: the next run still starts at the first run's time.
        (None, Some(t)) => serde_json::json!({ "cursor": null, "since": crate::store::ts(t) }),
        _ => serde_json::json!({ "cursor": cursor }),
    };
    report.checkpoints.push(Checkpoint {
        source: cfg.name.clone(),
        key: "cursor".into(),
        state: state.to_string(),
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_as_strings_or_bytes() {
        assert_eq!(message_of(Some(&serde_json::json!("hi"))), "hi");
        assert_eq!(
            message_of(Some(&serde_json::json!([104, 105, 255]))),
            "hi\u{fffd}"
        );
        assert_eq!(level_of_priority(3).no, 40);
        assert_eq!(level_of_priority(4).no, 30);
    }
}
