//! The life of an incident after it is filed: a record more severe than its own pages
//! at the new severity, a spike re-notifies once, quiet incidents resolve themselves,
//! unacknowledged ones nag at their severity's interval.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::notify;
use crate::source::Level;
use crate::store::{IncidentRow, Notification, Result, Store};
use crate::trigger::escalate::{max_severity, rank, Escalation};

/// Whether this run's count is a spike over the incident's usual count per run.
pub fn is_spike(config: &Config, before: u64, runs_seen: u32, this_run: u64) -> bool {
    let c = &config.incidents;
    let usual = before as f64 / runs_seen.max(1) as f64;
    this_run >= c.spike_min && this_run as f64 >= c.spike_factor * usual.max(1.0)
}

/// Queues the one spike notification of an incident. Returns whether it did.
pub fn notify_spike(store: &Store, id: i64, this_run: u64, now: DateTime<Utc>) -> Result<bool> {
    let Some(i) = store.incident(id)? else {
        return Ok(false);
    };
    if i.spike_notified || i.status == "resolved" || i.stage != "filed" {
        return Ok(false);
    }
    let n = Notification {
        title: format!("[{}] Spike: {}", i.host, i.title),
        body: format!(
            "Incident #{} spiked: **{this_run}** occurrences in this run ({} in all since {}).",
            i.id,
            i.occurrences,
            crate::store::ts(i.first_seen)
        ),
        priority: notify::priority(&i.severity).max(4),
        tags: format!("chart_with_upwards_trend,{}", i.severity),
    };
    store.enqueue_kind(Some(i.id), "spike", &i.severity, &n, now)?;
    store.mark_spike_notified(i.id)?;
    Ok(true)
}

/// What a record more severe than any of an open incident's changes on it.
#[derive(Debug)]
pub struct Rise {
    pub level: Level,
    pub severity: String,
    pub escalation: Option<Escalation>,
    /// An incident already notified pages again, at its severity, when the record is of
    /// a higher band: a phone mute is capped at the level it was tapped on, and what
    /// passes it must be heard. One not yet notified is notified once, at the new
    /// severity.
    pub page: Option<Notification>,
    /// The severity rose: an acknowledgement given at the lower one no longer holds.
    pub reopen: bool,
}

/// The rise a group at `level` brings to its open incident `o`, with what the
/// escalation rules decided for it; `None` when the level is not above the incident's.
/// Levels are few, so an incident pages this way a handful of times at most.
pub fn level_rise(
    config: &Config,
    o: &IncidentRow,
    level: &Level,
    at: DateTime<Utc>,
    esc: Option<&Escalation>,
) -> Option<Rise> {
    if level.no <= incident_level_no(config, o) {
        return None;
    }
    let by_level = config
        .sources
        .iter()
        .find(|s| s.name == o.source)
        .map_or("info", |s| s.severity_of(level.no));
    let mut escalation = o.escalation.clone();
    if let Some(e) = esc {
        escalation
            .get_or_insert_with(Escalation::default)
            .merge(e.clone());
    }
    let floor = escalation
        .as_ref()
        .and_then(|e| e.severity.as_deref())
        .unwrap_or("info");
    let severity = max_severity(max_severity(&o.severity, by_level), floor).to_string();
    let reopen = rank(&severity) > rank(&o.severity);
    // Pages when the record is of a higher band (WARNING, ERROR, CRITICAL and above):
    // `Level 51` after a CRITICAL is no news, and a band rises at most three times.
    let pages = band(level.no) > band(incident_level_no(config, o));
    let page = (o.stage == "filed" && pages).then(|| {
        let acked = match &o.acked_by {
            Some(by) if reopen && o.status == "acked" => format!(
                " It was acknowledged by {} as {}: acknowledge it again to stop reminders.",
                crate::sanitize::md_inline(by),
                o.severity
            ),
            _ => String::new(),
        };
        Notification {
            title: format!("[{}] Now {}: {}", o.host, shown_level(&level.name), o.title),
            body: format!(
                "Incident #{} was {} ({}); a **{}** record of it came at {}: it is {severity} now \
                 ({} occurrences since {}).{acked}",
                o.id,
                o.severity,
                crate::sanitize::md_inline(&shown_level(&o.level)),
                crate::sanitize::md_inline(&shown_level(&level.name)),
                crate::store::ts(at),
                o.occurrences,
                crate::store::ts(o.first_seen)
            ),
            priority: notify::priority(&severity),
            tags: format!("arrow_double_up,{severity}"),
        }
    });
    Some(Rise {
        level: level.clone(),
        severity,
        escalation,
        page,
        reopen,
    })
}

/// A level number's band: below WARNING, WARNING, ERROR, CRITICAL and above.
fn band(no: u32) -> u8 {
    match no {
        50.. => 3,
        40.. => 2,
        30.. => 1,
        _ => 0,
    }
}

/// A level name as shown in a notification or a summary: the app names its levels, and
/// a name is one short line.
pub fn shown_level(name: &str) -> String {
    crate::redact::shorten(&crate::sanitize::line(name), 40)
}

/// The level number of an incident's most severe record: as read when it was recorded
/// (a loguru JSON record carries a custom level's number), else by its name.
pub fn incident_level_no(config: &Config, i: &IncidentRow) -> u32 {
    i.level_no
        .unwrap_or_else(|| crate::investigate::budget::level_no(config, &i.source, &i.level))
}

/// Resolves error incidents quiet for `resolve_after`, measured on the run clock
/// (`clock.rs`: a clock moved ahead resolves nothing early). Returns their ids.
pub fn auto_resolve(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    run_clock: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let quiet =
        chrono::Duration::from_std(config.incidents.resolve_after).unwrap_or(chrono::Duration::MAX);
    let mut done = Vec::new();
    let Some(before) = run_clock.checked_sub_signed(quiet) else {
        return Ok(done);
    };
    for i in store.quiet_incidents(before)? {
        if store.resolve_incident(i.id, "auto", now)? {
            store.add_note(
                i.id,
                "logwarden",
                &format!(
                    "resolved: no occurrence for {}",
                    crate::duration::format(config.incidents.resolve_after)
                ),
                now,
            )?;
            done.push(i.id);
        }
    }
    Ok(done)
}

/// How often an escalation rule's `nag` reminds when `[incidents] nag` gives no interval.
const FORCED_NAG_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Re-notifies unacknowledged incidents whose severity nags and whose last
/// notification is older than the interval. Returns (id, nag number).
/// An incident whose signature is silenced (`silenced`: a mute from the phone, an ignore
/// rule for its signature) is not nagged about: its occurrences are dropped, and a
/// reminder would say the opposite of what the team asked for.
pub fn nag(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    silenced: &dyn Fn(&str, u32) -> bool,
) -> Result<Vec<(i64, u32)>> {
    let mut done = Vec::new();
    let queued = store.incidents_with_queued_notifications()?;
    for i in store.unacked_incidents()? {
        if queued.contains(&i.id) {
            continue;
        }
        let forced = i.escalation.as_ref().is_some_and(|e| e.nag);
        // Judged noise never reminds, unless a rule matched it: a rule's severity is the
        // team's word, and a verdict (model output) never makes such an incident quiet.
        if i.verdict == "noise" && i.escalation.is_none() {
            continue;
        }
        let every = match config.incidents.nag.get(&i.severity) {
            Some(every) => every,
            // A rule's nag uses the critical interval when its severity has none.
            None if forced => config
                .incidents
                .nag
                .get("critical")
                .unwrap_or(&FORCED_NAG_EVERY),
            None => continue,
        };
        let every = chrono::Duration::from_std(*every).unwrap_or(chrono::Duration::MAX);
        let last = i.last_notified_at.unwrap_or(i.created_at);
        // A last notice stamped after `now` was sent while the clock ran ahead: how
        // long ago is unknown, so the reminder is due rather than held until then.
        if last <= now && now - last < every {
            continue;
        }
        // Asked only of a reminder that is due: answering may parse the ignore rules.
        if silenced(&i.signature, incident_level_no(config, &i)) {
            continue;
        }
        let number = i.nag_count + 1;
        let unacked = crate::duration::format((now - i.created_at).to_std().unwrap_or_default());
        let n = Notification {
            title: format!("[{}] nag #{number}: {}", i.host, i.title),
            body: format!(
                "Incident #{} is still open, unacked for {unacked} ({} occurrences, last at {}). Ack it to stop these reminders.",
                i.id,
                i.occurrences,
                crate::store::ts(i.last_seen)
            ),
            priority: notify::priority(&i.severity),
            tags: format!("bell,{}", i.severity),
        };
        store.enqueue_kind(Some(i.id), "nag", &i.severity, &n, now)?;
        store.count_nag(i.id)?;
        done.push((i.id, number));
    }
    Ok(done)
}
