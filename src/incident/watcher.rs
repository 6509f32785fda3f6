//! "Watcher problem" notifications: a run that cannot do all of its job (a source it
//! cannot read, a broken ignore file, a page it cannot write, a phone mute it cannot
//! apply) says so on the phone, not only in its exit code, since nobody reads the
//! journal of a timer.
//!
//! Rate limit: one notification when a set of problems appears, again when it changes,
//! a reminder once a day while it lasts, and one "cleared" notification when a run has
//! none. The current problem is kept in the state database (shown by `status` and
//! `doctor`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::store::{ts, Notification, Store, StoreError};

const KEY: &str = "watcher.problem";
/// How often a problem that lasts is repeated.
pub const REMINDER: Duration = Duration::hours(24);

/// The problem the last run recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    pub problems: Vec<String>,
    /// What tells one problem from another (numbers masked, order ignored).
    pub fingerprint: String,
    pub since: DateTime<Utc>,
    pub notified_at: DateTime<Utc>,
}

/// A failed run whose state database could not take its problem (a full disk) publishes
/// it straight to ntfy and leaves this mark in the state dir. It is empty, so a full
/// disk still takes it, and its mtime says when: the next failures wait a reminder
/// interval, and the first run that records its problems in the store again clears it
/// (and says "watching again").
const DIRECT_MARK: &str = "run-failed.reported";

/// When a failed run last reported itself straight to ntfy, if that is not cleared.
pub fn reported_directly(config: &Config) -> Option<DateTime<Utc>> {
    let m = std::fs::symlink_metadata(config.state_dir.join(DIRECT_MARK)).ok()?;
    Some(m.modified().ok()?.into())
}

/// Records that a failed run reported itself straight to ntfy at `now`.
pub fn mark_reported_directly(config: &Config, now: DateTime<Utc>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(config.state_dir.join(DIRECT_MARK))?;
    f.set_modified(now.into())
}

fn clear_direct_mark(config: &Config) {
    let _ = std::fs::remove_file(config.state_dir.join(DIRECT_MARK));
}

/// The problem recorded by the last run, if any.
pub fn current(store: &Store) -> Result<Option<Problem>, StoreError> {
    Ok(store
        .kv_get(KEY)?
        .filter(|v| !v.is_empty())
        .and_then(|v| serde_json::from_str(&v).ok()))
}

fn fingerprint(problems: &[String]) -> String {
    let mut v: Vec<String> = problems
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect()
        })
        .collect();
    v.sort();
    v.dedup();
    v.join("\n")
}

/// What `update` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    None,
    New,
    Changed,
    Reminder,
    Cleared,
}

/// Records this run's problems and queues the notification they call for.
pub fn update(
    config: &Config,
    store: &Store,
    problems: &[String],
    now: DateTime<Utc>,
) -> Result<Sent, StoreError> {
    let direct = reported_directly(config);
    let old = current(store)?.or_else(|| {
        direct.map(|at| Problem {
            problems: vec!["a run failed and could not record it".into()],
            fingerprint: String::new(),
            since: at,
            notified_at: at,
        })
    });
    if problems.is_empty() {
        let Some(old) = old else {
            return Ok(Sent::None);
        };
        store.kv_set(KEY, "")?;
        let n = Notification {
            title: format!("[{}] logwarden is watching again", config.hostname),
            body: format!(
                "The watcher problem reported since {} is gone: the last run did all of its job.",
                ts(old.since)
            ),
            priority: 2,
            tags: "white_check_mark,logwarden".into(),
        };
        store.enqueue_kind(None, "watcher", "info", &n, now)?;
        clear_direct_mark(config);
        return Ok(Sent::Cleared);
    }
    let fp = fingerprint(problems);
    let (sent, since) = match &old {
        None => (Sent::New, now),
        Some(o) if o.fingerprint != fp => (Sent::Changed, o.since),
        // Notified "after now": the clock has gone back since, how long ago is unknown.
        Some(o) if now - o.notified_at >= REMINDER || o.notified_at > now => {
            (Sent::Reminder, o.since)
        }
        Some(o) => {
            // Same problem, reminded recently: only the texts are refreshed.
            let p = Problem {
                problems: problems.to_vec(),
                ..o.clone()
            };
            store.kv_set(KEY, &serde_json::to_string(&p).expect("serialises"))?;
            clear_direct_mark(config);
            return Ok(Sent::None);
        }
    };
    let p = Problem {
        problems: problems.to_vec(),
        fingerprint: fp,
        since,
        notified_at: now,
    };
    let what = match sent {
        Sent::Changed => "changed",
        Sent::Reminder => "still there",
        _ => "new",
    };
    let mut body = format!(
        "logwarden on {} cannot do all of its job (since {}, {what}):\n\n",
        config.hostname,
        ts(since)
    );
    for line in problems.iter().take(12) {
        body.push_str(&format!("- {}\n", line.replace('\n', " ")));
    }
    if problems.len() > 12 {
        body.push_str(&format!("- … and {} more\n", problems.len() - 12));
    }
    body.push_str(
        "\nOn the host: `sudo logwarden doctor` says what the service user cannot read or write; `logwarden status` shows the last runs.",
    );
    let n = Notification {
        title: format!("[{}] logwarden watcher problem", config.hostname),
        body: crate::notify::cap(
            &config.redact.redactor.clean(&body),
            crate::notify::MAX_BODY,
        ),
        priority: 4,
        tags: "warning,logwarden".into(),
    };
    store.enqueue_kind(None, "watcher", "warning", &n, now)?;
    store.kv_set(KEY, &serde_json::to_string(&p).expect("serialises"))?;
    clear_direct_mark(config);
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_numbers_and_order() {
        let a = fingerprint(&["b 12".into(), "a".into()]);
        let b = fingerprint(&["a".into(), "b 13".into()]);
        assert_eq!(a, b);
        assert_ne!(a, fingerprint(&["a".into()]));
    }

    /// A problem notified while the clock ran 30 days ahead is reminded of once the
    /// clock is right, not 30 days later.
    #[test]
    fn a_problem_notified_under_a_clock_ahead_is_reminded_of() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(
            "[[source]]\nname = \"app\"\npath = \"app.log\"\n",
            &dir.path().join("logwarden.toml"),
        )
        .unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let problem = vec!["source `app`: permission denied".to_string()];
        let ahead = now + Duration::days(30);
        assert!(matches!(
            update(&config, &store, &problem, ahead).unwrap(),
            Sent::New
        ));
        assert!(matches!(
            update(&config, &store, &problem, now).unwrap(),
            Sent::Reminder
        ));
        // and then daily again, by the right clock
        let later = now + Duration::hours(1);
        assert!(matches!(
            update(&config, &store, &problem, later).unwrap(),
            Sent::None
        ));
    }
}
