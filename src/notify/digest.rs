//! Sending the outbox: quiet hours per severity, the hourly cap with one
//! digest for the rest, and actions on incident notifications.
//!
//! - A notification whose severity is in its quiet hours stays in the outbox and
//!   goes out with the first run after they end; critical ones are never held.
//! - At most `max_per_hour` notifications go out per hour (critical first); what is
//!   over is folded into one low-priority digest ("7 more incidents: …") and marked
//!   as sent in it, not lost. At most one digest per hour: beyond it, notifications
//!   wait in the outbox for the next hour. But when nothing has gone out at critical
//!   priority in the hour, a critical over the cap goes out in a digest at that
//!   priority (a second one in the hour if need be).
//! - When ntfy keeps failing (429, 5xx, unreachable) after the retries, the rest wait
//!   for the next run instead of each timing out.
//! - A failure about one message (400, 413, …) never holds back the others; after
//!   `dead_after` refusals the message is set aside (a dead letter, shown by the run,
//!   `status` and `doctor`) and a short notice saying so goes out in its place.
//! - A notification still queued `max_age` after it was made joins one digest of
//!   such notifications ("3 notifications could not be sent in time: …"): late, but
//!   never silence.

use chrono::{DateTime, Duration, Timelike, Utc};

use crate::config::NtfyConfig;
use crate::store::{Notification, OutboxRow, Store};

use super::{control, ntfy};

/// What sending the outbox did.
#[derive(Debug, Default)]
pub struct Flush {
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Held in the outbox: their severity is in quiet hours.
    pub held_quiet: u64,
    /// Held in the outbox: this hour's cap and digest are used up.
    pub held_cap: u64,
    /// Folded into a digest (marked sent in it).
    pub folded: u64,
    /// Too old to send: folded into the age limit's digest.
    pub expired: u64,
    /// Found on ntfy after a publish whose answer was lost: marked sent, not resent.
    pub reconciled: u64,
    /// In doubt and not resent: ntfy could not be checked this run.
    pub held_doubt: u64,
    /// In doubt, not on ntfy yet, and published less than [`SETTLE`] ago: ntfy may
    /// still be storing it, so it is checked again before any resend.
    pub settling: u64,
    /// Resent after `DOUBT_LIMIT` in doubt without a successful check.
    pub doubt_resent: u64,
    /// Published this run without an answer: checked on ntfy before a resend.
    pub in_doubt: u64,
    /// Set aside this run after repeated refusals: (outbox id, incident, why).
    pub dead: Vec<(i64, Option<i64>, String)>,
    pub errors: Vec<String>,
}

impl Flush {
    /// What the summary line adds to sent/failed/not sent, when there is anything.
    pub fn extra(&self) -> String {
        let resent = format!(
            "resent after {} in doubt (ntfy could not be checked; may arrive twice)",
            crate::duration::format(DOUBT_LIMIT)
        );
        let settling = format!(
            "in doubt, not on ntfy yet (resent if still missing {} after its publish)",
            crate::duration::format(SETTLE)
        );
        let parts: [(u64, &str); 10] = [
            (self.folded, "folded into a digest (hourly cap)"),
            (self.held_quiet, "held for quiet hours"),
            (self.held_cap, "held for the next hour (hourly cap)"),
            (self.expired, "not sent in time (folded into a digest)"),
            (
                self.reconciled,
                "reconciled (found delivered on ntfy, not resent)",
            ),
            (
                self.in_doubt,
                "in doubt (no answer from ntfy; checked before any resend)",
            ),
            (self.held_doubt, "in doubt held (ntfy could not be checked)"),
            (self.settling, &settling),
            (self.doubt_resent, &resent),
            (
                self.dead.len() as u64,
                "undeliverable (set aside, notice queued)",
            ),
        ];
        parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!(", {n} {what}"))
            .collect()
    }

    /// One line per notification set aside this run, for the run's summary.
    pub fn dead_lines(&self) -> Vec<String> {
        self.dead
            .iter()
            .map(|(id, inc, why)| {
                let what = match inc {
                    Some(i) => format!("notification {id} (incident #{i})"),
                    None => format!("notification {id}"),
                };
                format!(
                    "{what} is undeliverable: ntfy refused it repeatedly ({}); set aside",
                    crate::sanitize::line(why)
                )
            })
            .collect()
    }
}

fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

/// Whether notifications of this severity are held now.
pub fn in_quiet_hours(cfg: &NtfyConfig, severity: &str, now: DateTime<Utc>) -> bool {
    if severity == "critical" {
        return false;
    }
    let (h, m) = match cfg.more.timezone {
        Some(z) => z.hour_minute(now),
        None => {
            let t = now.with_timezone(&chrono::Local);
            (t.hour(), t.minute())
        }
    };
    cfg.more
        .quiet_hours
        .iter()
        .any(|q| q.severity == severity && q.contains(h * 60 + m))
}

/// How long a notification may stay in doubt while ntfy cannot be checked before it
/// is sent again anyway: ntfy's message cache (12 h by default) may be shorter on a
/// given server, and a page that arrives twice beats one that never does.
const DOUBT_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long after a publish that got no answer its absence from the topic is taken
/// for a message ntfy never stored. ntfy may still be storing one whose client gave up
/// (a slow cache, a busy server); a run soon after would otherwise send it twice. Below
/// the timer's 5 minutes, so runs at the usual pace never wait.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(120);

/// Settles the notifications whose last publish was never answered, before any is
/// sent: those ntfy has (their delivery id is among the topic's tags) are marked sent;
/// the others are cleared for sending once [`SETTLE`] has passed since their publish.
/// When the topic cannot be read they are held, unless in doubt longer than
/// [`DOUBT_LIMIT`]. Returns the ids held this run.
fn reconcile(
    store: &Store,
    cfg: &NtfyConfig,
    now: DateTime<Utc>,
    f: &mut Flush,
) -> crate::store::Result<std::collections::HashSet<i64>> {
    let mut held = std::collections::HashSet::new();
    let doubt = store.in_doubt()?;
    if doubt.is_empty() {
        return Ok(held);
    }
    let found = ntfy::client(cfg).and_then(|c| ntfy::delivered_ids(cfg, &c));
    match found {
        Ok(ids) => {
            let settle = Duration::from_std(SETTLE).unwrap_or(Duration::minutes(2));
            for (id, delivery, started) in doubt {
                let since = now - started;
                if !delivery.is_empty() && ids.contains(&delivery) {
                    store.mark_reconciled(id, now)?;
                    f.reconciled += 1;
                } else if since >= Duration::zero() && since < settle {
                    // A clock set back makes `since` negative: then waiting could
                    // last as long as the clock was wrong, so it is resent at once.
                    held.insert(id);
                    f.settling += 1;
                } else {
                    store.end_attempt(id)?;
                }
            }
        }
        Err(e) => {
            let limit = Duration::from_std(DOUBT_LIMIT).unwrap_or(Duration::hours(1));
            for (id, _, started) in doubt {
                if now - started > limit {
                    store.end_attempt(id)?;
                    f.doubt_resent += 1;
                } else {
                    held.insert(id);
                }
            }
            f.held_doubt = held.len() as u64;
            f.errors.push(format!(
                "cannot check whether notifications in doubt were delivered: {e}"
            ));
        }
    }
    Ok(held)
}

/// Sends every due notification; failures stay queued for the next run. `host`
/// names this machine in the notices logwarden writes itself.
pub fn flush(
    store: &Store,
    cfg: Option<&NtfyConfig>,
    host: &str,
    now: DateTime<Utc>,
) -> crate::store::Result<Flush> {
    let mut f = Flush::default();
    let mut held = std::collections::HashSet::new();
    if let Some(cfg) = cfg {
        held = reconcile(store, cfg, now, &mut f)?;
        expire(store, cfg, host, now, &held, &mut f)?;
    }
    let mut due = store.due_notifications(now)?;
    due.retain(|n| !held.contains(&n.id));
    let Some(cfg) = cfg else {
        // Without ntfy the notification is recorded but has nowhere to go.
        let ids: Vec<i64> = due.iter().map(|n| n.id).collect();
        store.mark_all_skipped(&ids, "ntfy is not configured", now)?;
        f.skipped += ids.len() as u64;
        return Ok(f);
    };
    let mut send: Vec<OutboxRow> = Vec::new();
    let mut normal: Vec<OutboxRow> = Vec::new();
    for n in due {
        if in_quiet_hours(cfg, &n.severity, now) {
            f.held_quiet += 1;
        } else if n.kind == "digest" {
            send.push(n); // a digest that failed before: its notifications are in it
        } else {
            normal.push(n);
        }
    }
    normal.sort_by_key(|n| (std::cmp::Reverse(rank(&n.severity)), n.id));
    let hour_ago = now - Duration::hours(1);
    let room =
        (cfg.more.max_per_hour as u64).saturating_sub(store.sent_since(hour_ago, now)?) as usize;
    if normal.len() > room {
        let over = normal.split_off(room);
        // Lesser notifications used up the hour and nothing has buzzed at critical
        // priority in it: a critical among those over goes out in a digest that does
        // (a stranger's flood of warnings must not keep a critical quiet for an hour).
        let loud = over.iter().any(|n| n.severity == "critical")
            && !normal.iter().any(|n| n.severity == "critical")
            && !store.critical_page_since(hour_ago, now)?;
        if store.digest_since(hour_ago, now)? && !loud {
            f.held_cap += over.len() as u64;
        } else {
            let note = digest_note(&over, cfg.more.max_per_hour, loud);
            let severity = over
                .iter()
                .map(|n| n.severity.as_str())
                .max_by_key(|s| rank(s))
                .unwrap_or("info")
                .to_string();
            let id = store.enqueue_kind(None, "digest", &severity, &note, now)?;
            let ids: Vec<i64> = over.iter().map(|n| n.id).collect();
            store.fold_into_digest(&ids, id, now)?;
            f.folded += ids.len() as u64;
            send.extend(
                store
                    .due_notifications(now)?
                    .into_iter()
                    .filter(|n| n.id == id),
            );
        }
    }
    normal.extend(send);
    let client = match ntfy::client(cfg) {
        Ok(c) => c,
        Err(e) => {
            f.failed += normal.len() as u64;
            f.errors.push(e);
            return Ok(f);
        }
    };
    // The key is made only when there are Ack/Mute actions to sign.
    let mut key: Option<Vec<u8>> = None;
    let mut server_down = false;
    let mut not_tried = 0;
    let mut queue: std::collections::VecDeque<OutboxRow> = normal.into();
    while let Some(n) = queue.pop_front() {
        if server_down {
            not_tried += 1; // ntfy was failing: kept for the next run
            continue;
        }
        let m = match message(store, cfg, &n, &mut key, now) {
            Ok(m) => m,
            Err(e) => {
                // Without its buttons rather than not at all.
                f.errors
                    .push(format!("notification {}: sent without actions: {e}", n.id));
                plain(&n)
            }
        };
        let mut m = m;
        let delivery = ntfy::delivery_id(n.id);
        m.tags = if m.tags.is_empty() {
            delivery.clone()
        } else {
            format!("{},{delivery}", m.tags)
        };
        store.begin_attempt(n.id, &delivery, now)?;
        let sent = ntfy::send(cfg, &client, &m);
        if sent.is_ok() {
            crate::pipeline::fault_point("after-ntfy-post");
        }
        if let Err(e) = &sent {
            if e.in_doubt {
                f.in_doubt += 1;
            } else {
                store.end_attempt(n.id)?;
            }
        }
        match sent {
            Ok(()) => {
                store.mark_sent(n.id, now)?;
                f.sent += 1;
            }
            Err(e) if e.server_trouble => {
                store.mark_failed(n.id, &e.message, now)?;
                f.failed += 1;
                f.errors.push(e.message);
                server_down = true;
            }
            Err(e) => {
                // About this message only: the others go on.
                f.errors
                    .push(format!("notification {}: {}", n.id, e.message));
                if !store.mark_refused(n.id, &e.message, cfg.more.dead_after, now)? {
                    f.failed += 1;
                } else {
                    f.dead.push((n.id, n.incident_id, e.message.clone()));
                    if n.kind != "undeliverable" {
                        // The notice goes out in this run, in the place of the message.
                        let (severity, note) = undeliverable_note(&n, &e.message, host);
                        let id = store.enqueue_kind(
                            n.incident_id,
                            "undeliverable",
                            &severity,
                            &note,
                            now,
                        )?;
                        queue.extend(
                            store
                                .due_notifications(now)?
                                .into_iter()
                                .filter(|r| r.id == id),
                        );
                    }
                }
            }
        }
    }
    if not_tried > 0 {
        f.failed += not_tried;
        f.errors.push(format!(
            "{not_tried} more notification{} not tried (ntfy is failing); kept for the next run",
            if not_tried == 1 { "" } else { "s" }
        ));
    }
    Ok(f)
}

/// The ntfy message of an outbox row without click URL or actions.
pub(super) fn plain(n: &OutboxRow) -> ntfy::Message {
    ntfy::Message {
        title: n.title.clone(),
        body: n.body.clone(),
        priority: n.priority,
        tags: n.tags.clone(),
        click: None,
        actions: None,
    }
}

/// The ntfy message of an outbox row: incident notifications get the click URL and
/// the Ack / Mute 24h / Open actions.
fn message(
    store: &Store,
    cfg: &NtfyConfig,
    n: &OutboxRow,
    key: &mut Option<Vec<u8>>,
    now: DateTime<Utc>,
) -> Result<ntfy::Message, String> {
    let mut m = plain(n);
    let Some(id) = n.incident_id else {
        return Ok(m);
    };
    if !matches!(n.kind.as_str(), "incident" | "nag" | "spike" | "rise") {
        return Ok(m);
    }
    let inc = store
        .incident(id)
        .map_err(|e| format!("state database: {e}"))?;
    if let (Some(t), Some(inc)) = (&cfg.more.click, &inc) {
        let file = inc
            .file_path
            .as_deref()
            .and_then(|p| std::path::Path::new(p).file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        m.click = Some(control::click_url(t, id, &file, &inc.host));
    }
    if cfg.more.control_topic.is_some() && key.is_none() {
        *key = Some(control::key(&cfg.more.key_file)?);
    }
    // A proposed action waiting for approval gets Approve and Reject buttons.
    let approval = store
        .request_in_flight(id)
        .map_err(|e| format!("state database: {e}"))?
        .filter(|r| r.status == "pending")
        .and_then(|r| {
            Some(control::Binding {
                request: r.id,
                params_digest: crate::actions::params_digest(&r.params),
                action_id: r.action_id,
                expires: r.expires_at?.timestamp(),
            })
        });
    m.actions = control::actions(
        cfg,
        key.as_deref(),
        id,
        m.click.as_deref(),
        approval.as_ref(),
        now,
    )?;
    Ok(m)
}

/// Appends list lines to a digest's body while they fit within ntfy's limit, then how
/// many did not.
fn push_list(body: &mut String, lines: impl ExactSizeIterator<Item = String>) {
    let total = lines.len();
    let mut listed = 0;
    for line in lines {
        if body.len() + line.len() > super::MAX_BODY - 100 {
            break;
        }
        body.push_str(&line);
        listed += 1;
    }
    if listed < total {
        body.push_str(&format!(
            "- … and {} more (`logwarden incidents`)\n",
            total - listed
        ));
    }
}

/// "7 more incidents: …" with their titles, within ntfy's limit.
/// At critical priority when `loud`, else low.
fn digest_note(over: &[OutboxRow], cap: u32, loud: bool) -> Notification {
    let mut body = format!(
        "More than {cap} notifications this hour; these {} are folded into this digest:\n\n",
        over.len()
    );
    push_list(
        &mut body,
        over.iter().map(|n| {
            format!(
                "- [{}] {}\n",
                n.severity,
                crate::sanitize::md_inline(&n.title)
            )
        }),
    );
    let what = if over.iter().all(|n| n.incident_id.is_some()) {
        "incidents"
    } else {
        "notifications"
    };
    Notification {
        title: format!("{} more {what}: {}", over.len(), over[0].title),
        body,
        priority: if loud { super::priority("critical") } else { 2 },
        tags: "card_file_box,digest".into(),
    }
}

/// The short notice that goes out in place of a notification ntfy keeps refusing:
/// logwarden's own words, the incident id and ntfy's answer (sanitised and cut), at
/// the severity of the notification it replaces.
fn undeliverable_note(n: &OutboxRow, error: &str, host: &str) -> (String, Notification) {
    let what = match n.incident_id {
        Some(i) => format!("incident #{i}"),
        None => format!("a {} notification", crate::sanitize::line(&n.kind)),
    };
    let why: String = crate::sanitize::line(error).chars().take(300).collect();
    let mut body = format!(
        "ntfy refused the notification for {what} every time it was sent; it is set aside.\n\nLast answer: {}\n",
        crate::sanitize::code_span(&why)
    );
    if let Some(i) = n.incident_id {
        body.push_str(&format!("\nSee `logwarden incidents show {i}`.\n"));
    }
    body.push_str("\n`logwarden status` lists undeliverable notifications.");
    let severity = n.severity.clone();
    (
        severity.clone(),
        Notification {
            title: format!(
                "[{}] A notification for {what} could not be delivered",
                crate::sanitize::line(host)
            ),
            body,
            priority: super::priority(&severity),
            tags: format!("{},undeliverable", super::tags(&severity)),
        },
    )
}

/// Folds notifications queued longer than `max_age` into one digest of late
/// notifications, joining the digest still waiting from an earlier run if there is
/// one (so a long ntfy outage ends in one message, not one per run).
fn expire(
    store: &Store,
    cfg: &NtfyConfig,
    host: &str,
    now: DateTime<Utc>,
    held: &std::collections::HashSet<i64>,
    f: &mut Flush,
) -> crate::store::Result<()> {
    let max_age = Duration::from_std(cfg.more.max_age).unwrap_or(Duration::days(1));
    let mut old = store.expired_notifications(now - max_age)?;
    // One that may have been delivered waits for its check, not a digest.
    old.retain(|n| !held.contains(&n.id));
    if old.is_empty() {
        return Ok(());
    }
    let placeholder = Notification {
        title: String::new(),
        body: String::new(),
        priority: 3,
        tags: String::new(),
    };
    let digest = match store.queued_of_kind("expired")? {
        Some(id) => id,
        None => store.enqueue_kind(None, "expired", "info", &placeholder, now)?,
    };
    let ids: Vec<i64> = old.iter().map(|n| n.id).collect();
    store.fold_expired(&ids, digest, now)?;
    f.expired += ids.len() as u64;
    let all = store.folded_into(digest)?;
    let (severity, note) = expired_note(&all, cfg.more.max_age, host);
    store.rewrite_notification(digest, &severity, &note)?;
    Ok(())
}

/// "3 notifications could not be sent in time: …", listing them (within ntfy's limit),
/// at the highest severity among them so a late critical still buzzes.
fn expired_note(
    late: &[OutboxRow],
    max_age: std::time::Duration,
    host: &str,
) -> (String, Notification) {
    let severity = late
        .iter()
        .map(|n| n.severity.as_str())
        .max_by_key(|s| rank(s))
        .unwrap_or("info")
        .to_string();
    let s = if late.len() == 1 { "" } else { "s" };
    let mut body = format!(
        "{} notification{s} could not be sent within {} (ntfy was failing); here they are:\n\n",
        late.len(),
        crate::duration::format(max_age)
    );
    push_list(
        &mut body,
        late.iter().map(|n| {
            let inc = n
                .incident_id
                .map(|i| format!(" (incident #{i})"))
                .unwrap_or_default();
            format!(
                "- {} [{}] {}{inc}\n",
                n.created_at.format("%Y-%m-%d %H:%M"),
                n.severity,
                crate::sanitize::md_inline(&n.title)
            )
        }),
    );
    (
        severity.clone(),
        Notification {
            title: format!(
                "[{}] {} notification{s} could not be sent in time: {}",
                crate::sanitize::line(host),
                late.len(),
                crate::sanitize::line(&late[0].title)
            ),
            body,
            priority: super::priority(&severity),
            tags: format!("{},hourglass,late", super::tags(&severity)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_names_only_what_happened_in_order() {
        assert_eq!(Flush::default().extra(), "");
        let f = Flush {
            held_quiet: 2,
            reconciled: 1,
            doubt_resent: 3,
            dead: vec![(7, Some(1), "refused".into())],
            ..Flush::default()
        };
        assert_eq!(
            f.extra(),
            format!(
                ", 2 held for quiet hours, 1 reconciled (found delivered on ntfy, not resent), \
                 3 resent after {} in doubt (ntfy could not be checked; may arrive twice), \
                 1 undeliverable (set aside, notice queued)",
                crate::duration::format(DOUBT_LIMIT)
            )
        );
    }

    #[test]
    fn a_list_stops_where_ntfy_s_limit_would_be_passed_and_says_how_many_more() {
        let mut body = String::from("head\n");
        push_list(
            &mut body,
            ["- a\n".to_string(), "- b\n".to_string()].into_iter(),
        );
        assert_eq!(body, "head\n- a\n- b\n");
        let line = format!("- {}\n", "x".repeat(1000));
        let mut body = String::new();
        push_list(&mut body, vec![line.clone(); 1000].into_iter());
        let shown = (crate::notify::MAX_BODY - 100) / line.len();
        assert_eq!(body.matches("- x").count(), shown);
        assert!(body.ends_with(&format!(
            "- … and {} more (`logwarden incidents`)\n",
            1000 - shown
        )));
        assert!(body.len() <= crate::notify::MAX_BODY);
    }
}
