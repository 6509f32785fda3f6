//! Notifications: the persistent outbox and the ntfy publisher. A notification is
//! queued in the same transaction that files its incident, and leaves the outbox only
//! when ntfy has accepted it: while ntfy or the network is down it waits for the next
//! run, so none is ever lost.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};

use crate::config::NtfyConfig;
use crate::store::{IncidentRow, Notification, OutboxRow, Store};

/// ntfy's limit for a message body; longer ones become attachments, which we avoid.
pub const MAX_BODY: usize = 4096;

/// ntfy priority for a severity: critical 5 (max), warning 4 (high), info 3 (default).
pub fn priority(severity: &str) -> u8 {
    match severity {
        "critical" => 5,
        "warning" => 4,
        _ => 3,
    }
}

/// Emoji tags for a severity (ntfy turns known tag names into emoji).
pub fn tags(severity: &str) -> &'static str {
    match severity {
        "critical" => "rotating_light",
        "warning" => "warning",
        _ => "information_source",
    }
}

/// Cuts text to at most `max` bytes at a character boundary, marking the cut.
pub fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker = "\n…(cut)";
    let mut end = max - marker.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

/// The notification for a newly filed incident.
pub fn for_incident(i: &IncidentRow, summary: &str, file_name: &str) -> Notification {
    let mut body = String::new();
    if !summary.trim().is_empty() {
        body.push_str(summary.trim());
        body.push_str("\n\n");
    }
    body.push_str(&format!(
        "**{}** on {} · {} occurrence{} · `{}`\n",
        i.level,
        i.host,
        i.occurrences,
        if i.occurrences == 1 { "" } else { "s" },
        i.source
    ));
    if let Some(e) = i.samples.first() {
        let first: String = e.lines().take(12).collect::<Vec<_>>().join("\n");
        body.push_str(&format!("\n```\n{}\n```\n", cap(&first, 1500)));
    }
    body.push_str(&format!("\nIncident #{} · {file_name}", i.id));
    Notification {
        title: format!("[{}] {}", i.host, i.title),
        body: cap(&body, MAX_BODY),
        priority: priority(&i.severity),
        tags: format!("{},{}", tags(&i.severity), i.severity),
    }
}

/// A header value ntfy will decode: ASCII as is, anything else as an RFC 2047 word.
fn header_value(text: &str) -> String {
    let one_line = text.replace(['\r', '\n'], " ");
    if one_line.is_ascii() {
        one_line
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(one_line.as_bytes())
        )
    }
}

/// Publishes one notification. Errors say what failed (status and ntfy's answer).
pub fn publish(cfg: &NtfyConfig, n: &OutboxRow) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("logwarden/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let url = format!("{}/{}", cfg.server, cfg.topic);
    let mut req = client
        .post(&url)
        .header("Title", header_value(&n.title))
        .header("Priority", n.priority.to_string())
        .header("Tags", header_value(&n.tags))
        .header("Markdown", "yes")
        .body(cap(&n.body, MAX_BODY));
    if let Some(secret) = &cfg.token {
        let token = secret.read()?;
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().unwrap_or_default();
    Err(format!(
        "POST {url}: HTTP {status}: {}",
        text.trim().chars().take(200).collect::<String>()
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// What sending the outbox did.
#[derive(Debug, Default)]
pub struct Flush {
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    pub errors: Vec<String>,
}

/// Sends every due notification; failures stay queued for the next run.
pub fn flush(
    store: &Store,
    cfg: Option<&NtfyConfig>,
    now: DateTime<Utc>,
) -> crate::store::Result<Flush> {
    let mut f = Flush::default();
    for n in store.due_notifications(now)? {
        let Some(cfg) = cfg else {
            // Without ntfy the notification is recorded but has nowhere to go.
            store.mark_skipped(n.id, "ntfy is not configured", now)?;
            f.skipped += 1;
            continue;
        };
        match publish(cfg, &n) {
            Ok(()) => {
                store.mark_sent(n.id, now)?;
                f.sent += 1;
            }
            Err(e) => {
                store.mark_failed(n.id, &e, now)?;
                f.failed += 1;
                f.errors.push(e);
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_at_char_boundary() {
        let s = "é".repeat(5000);
        let c = cap(&s, MAX_BODY);
        assert!(c.len() <= MAX_BODY);
        assert!(c.ends_with("(cut)"));
    }

    #[test]
    fn encodes_non_ascii_headers() {
        assert_eq!(header_value("plain"), "plain");
        assert_eq!(header_value("é"), "=?UTF-8?B?w6k=?=");
    }
}
