//! One watch cycle: read → signature → ignore → trigger → incident → investigate →
//! notify → commit.
//!
//! Durability: what was read is committed together with the incidents it opens (stage
//! `new`) and the checkpoints, in one transaction. Investigation, the incident file
//! and the notification follow, each step recorded as it finishes; a run that dies
//! midway leaves incidents that the next run finishes. The run's pages are written,
//! flushed to disk in one pass, then recorded with their notifications in one
//! transaction. An incident file is found again by the id in its front matter, so a
//! crash after writing it never makes a second one.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::ignore::{IgnoreRules, LazyRules, Part};
use crate::incident::rebuild::Known;
use crate::investigate::{self, Diagnosis};
use crate::signature::{signature, Miner, Signature};
use crate::source::{self, Event, Level};
use crate::store::{self, NewIncident, RunRow, Store};
use crate::trigger::escalate::{self, Escalation};
use crate::trigger::{self, Decision};
use crate::{incident, lock, notify};

/// How many sample records an error group keeps.
const MAX_SAMPLES: usize = 5;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The clock: every decision of the run uses this time.
    pub now: DateTime<Utc>,
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Where the run stands on the boot clock, when `now` was read from the clock
    /// (not given): it tells a clock that was moved from time that passed.
    pub boot: Option<crate::clock::Boot>,
}

/// The warnings and errors of one signature in this run.
#[derive(Debug, Clone)]
pub struct Group {
    pub signature: Signature,
    pub template: String,
    pub source: String,
    pub level: Level,
    pub exception_type: Option<String>,
    /// The logger of the group's records (part of its signature).
    pub logger: Option<String>,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub count: u64,
    pub samples: Vec<String>,
    /// The message of the group's first record, as written: the title shows its values
    /// where the template has `<*>`.
    pub first_message: String,
}

/// What a run did, for the summary and the runs table.
#[derive(Debug, Default)]
pub struct RunReport {
    /// The run's place on the boot clock and its clocks (see `clock.rs`), as recorded.
    pub boot: Option<crate::clock::Boot>,
    pub clock: Option<crate::clock::RunClock>,
    /// Another run held the lock: this one did nothing.
    pub busy: bool,
    pub dry_run: bool,
    pub lines: u64,
    pub events_kept: u64,
    pub ignored: u64,
    pub groups: Vec<(Group, Decision)>,
    pub opened: Vec<(i64, String, String, String)>,
    pub updated: Vec<(i64, u64)>,
    pub llm_calls: u64,
    /// The estimated prompt tokens those calls sent.
    pub prompt_tokens: u64,
    pub not_diagnosed: Vec<(i64, String)>,
    /// Open incidents that spiked this run (id, count): re-notified once.
    pub spiked: Vec<(i64, u64)>,
    /// Open incidents a more severe record joined (id, level, severity, paged).
    pub rose: Vec<(i64, String, String, bool)>,
    /// Incidents resolved after their quiet period.
    pub resolved: Vec<i64>,
    /// Reminders queued (id, nag number).
    pub nagged: Vec<(i64, u32)>,
    /// Incidents filed this run that escalation rules matched (id, the rules' names).
    pub escalated: Vec<(i64, String)>,
    /// Incidents filed this run as noise: quietly, never reminding.
    pub quiet_noise: Vec<i64>,
    /// The briefing written this run, if one was due.
    pub briefing: Option<String>,
    pub notify: notify::Flush,
    pub outbox_backlog: u64,
    pub warnings: Vec<String>,
    /// What the investigator skipped and why (budget, breaker, recurring noise).
    pub llm_notes: Vec<String>,
    /// Problems with one source or step; the run went on without it.
    pub errors: Vec<String>,
    /// What kept this run from doing all of its job (also in `errors`): notified as a
    /// watcher problem, and exit code 1.
    pub problems: Vec<String>,
    pub duration_ms: u64,
    /// What the metric checks did.
    pub metrics: crate::metrics::MetricsReport,
    /// Ack and Mute from the phone (the ntfy control topic).
    pub control: notify::control::ControlReport,
    /// What the allow-listed actions did: auto-rejections, runs, verifications.
    pub actions: crate::actions::ActionsReport,
    /// The state rebuilt from the incident pages this run (the database was lost).
    pub rebuilt: Option<incident::rebuild::Rebuilt>,
    /// Records from before the state was lost, read again after a rebuild: not counted.
    pub read_again: u64,
}

/// Errors that stop a run: the watcher itself is broken.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Stuck(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Runs one watch cycle.
pub fn run(config: &Config, opts: &RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let now = opts.now;
    let mut report = RunReport {
        dry_run: opts.dry_run,
        ..RunReport::default()
    };
    let Some(_lock) = take_lock(config, now, opts.boot.as_ref())? else {
        report.busy = true;
        return Ok(report);
    };
    let mut store = Store::open(&config.database_path())?;
    let clock = run_clock(&store, opts, &mut report)?;
    // A store that lost incidents its pages still show is rebuilt from them first:
    // before the phone's acks (they name those incidents) and before reading.
    let known = if opts.dry_run {
        if incident::rebuild::needed(&config.incidents_dir, &store).unwrap_or(false) {
            report.warnings.push(format!(
                "{} may hold incident pages the state database does not know (it was deleted or rolled back): a real run rebuilds them first; this dry run does not",
                config.incidents_dir.display()
            ));
        }
        Known::default()
    } else {
        rebuild_state(config, &mut store, now, &mut report)?
    };
    // Acks and mutes from the phone, before the ignore rules load (a mute holds now).
    if !opts.dry_run {
        report.control = notify::control::poll_and_apply(config, &store, now);
        let p = report.control.problems.clone();
        report.problem_all(p);
    }
    let ignore = load_rules(config, &store, clock.floor, opts.dry_run, &mut report)?;
    let mut miner = Miner::lazy();

    // read → signature → ignore
    let read = read_sources(
        config,
        &store,
        &mut miner,
        &ignore,
        &known,
        now,
        &mut report,
    )?;

    // trigger
    let (open_rows, escalations) = decide_triggers(config, &store, read.groups, now, &mut report)?;
    if opts.dry_run {
        // Metric checks in a dry run: scripts run, nothing is kept.
        report.metrics =
            crate::metrics::run_checks(config, &mut store, now, None, false, true, &[])?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    // commit what was read, with the incidents it opens
    let mut log_counts = read.log_counts;
    let Committed {
        run_id,
        spikes,
        log_series,
    } = commit_read(
        config,
        &mut store,
        &mut miner,
        &read.checkpoints,
        &read.forget,
        &read.renames,
        &read.ignore_hits,
        &open_rows,
        &escalations,
        &mut log_counts,
        now,
        &mut report,
    )?;
    fault_point("after-read-commit");

    // Metric checks open, update and resolve metric incidents; the new ones are
    // filed below like any other, the updated and resolved ones get their file rewritten.
    report.metrics = crate::metrics::run_checks(
        config,
        &mut store,
        now,
        Some(run_id),
        false,
        false,
        &log_series,
    )?;
    let touched = report.metrics.updated.iter().copied();
    let touched = touched.chain(report.metrics.resolved.iter().map(|r| r.0));
    report
        .updated
        .extend(touched.map(|id| (id, 0)).collect::<Vec<_>>());

    // investigate → incident file → queue the notification
    file_unfinished(config, &mut store, now, started, &mut report)?;

    // allow-listed actions: unanswered ones expire, approved ones run, earlier ones verify
    report.actions = crate::actions::run_step(config, &store, now)?;
    let touched: Vec<(i64, u64)> = report.actions.touched.iter().map(|id| (*id, 0)).collect();
    report.updated.extend(touched);

    // incident memory: spikes page once, quiet incidents resolve, unacked ones nag
    for (id, count) in spikes {
        if incident::lifecycle::notify_spike(&store, id, count, now)? {
            report.spiked.push((id, count));
        }
    }
    report.resolved = incident::lifecycle::auto_resolve(config, &store, now, clock.run_clock)?;
    // A rule with a level cap silences the incident only when the cap reaches its level.
    let silenced = |sig: &str, level_no: u32| {
        ignore.get().rules.iter().any(|r| {
            !r.expired(clock.floor)
                && r.level.as_ref().is_none_or(|l| level_no <= l.no)
                && r.signature.is_some_and(|s| s.to_string() == sig)
        })
    };
    report.nagged = incident::lifecycle::nag(config, &store, now, &silenced)?;
    refresh_pages(config, &store, &mut report);
    report.briefing = incident::briefing::run_scheduled(config, &store, now)?;

    // what kept this run from its job goes to the phone too
    let sources: Vec<String> = report
        .errors
        .iter()
        .filter(|e| e.starts_with("source "))
        .cloned()
        .collect();
    report.problems.extend(sources);
    if let Err(e) = incident::watcher::update(config, &store, &report.problems, now) {
        report
            .errors
            .push(format!("watcher problem not recorded: {e}"));
    }

    // notify → record the run
    notify_and_finish(config, &mut store, run_id, now, started, &mut report)?;
    Ok(report)
}

/// Rebuilds what the state database lost from the incident pages, and says so once
/// (the run's summary and one notification). Returns each rebuilt signature's last
/// occurrence, for the sources that lost their checkpoint too. A rebuild that fails
/// stops the run: going on would page every incident again and overwrite its page.
fn rebuild_state(
    config: &Config,
    store: &mut Store,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<Known, RunError> {
    let mut r = match incident::rebuild::rebuild(config, store, now) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Known::default()),
        Err(e) => {
            return Err(RunError::Io(format!(
                "the state database does not know incident pages in {}, and rebuilding it from them failed: {e}",
                config.incidents_dir.display()
            )))
        }
    };
    let n = store::Notification {
        title: format!("[{}] logwarden rebuilt its state from the incident pages", config.hostname),
        body: format!(
            "The state database in `{}` had lost {} incident(s): it was deleted, or its WAL was. \
             They were rebuilt from their pages in `{}` with their ids, status, acks, notes and verdicts, \
             and are not paged again. Their action requests too: one waiting for approval waits \
             again until its expiry (tap Approve after this message), one approved but not yet run \
             must be approved again, and what ran counts for the daily caps and cooldowns.\n\nNot rebuilt: notifications still queued when it was lost, \
             the sources' read positions (log files and tables are read again from their start, and \
             records the pages already counted are not counted again), LLM budgets and history, metric history, and \
             Ack/Mute taps made since it was lost (the phone's control topic is read from now on: tap again).",
            config.state_dir.display(),
            r.incidents.len(),
            config.incidents_dir.display()
        ),
        priority: 4,
        tags: "floppy_disk,warning".into(),
    };
    store.enqueue_kind(None, "state-rebuilt", "warning", &n, now)?;
    notify::control::skip_to(store, now)?;
    let known = std::mem::take(&mut r.known);
    report.rebuilt = Some(r);
    Ok(known)
}

/// `logwarden metrics check`: runs every metric check now (due or not), and
/// files, updates and resolves metric incidents as a run would. Recorded as a run.
pub fn check_metrics(config: &Config, opts: &RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let now = opts.now;
    let mut report = RunReport {
        dry_run: opts.dry_run,
        ..RunReport::default()
    };
    let Some(_lock) = take_lock(config, now, opts.boot.as_ref())? else {
        report.busy = true;
        return Ok(report);
    };
    let mut store = Store::open(&config.database_path())?;
    run_clock(&store, opts, &mut report)?;
    if !opts.dry_run {
        // Metric incidents take new ids: a store that lost some is rebuilt first.
        rebuild_state(config, &mut store, now, &mut report)?;
    }
    let run_id = if opts.dry_run {
        None
    } else {
        let batch = store.batch()?;
        let id = batch.insert_run(&RunRow {
            started_at: store::ts(now),
            boot: report.boot.clone(),
            clock: report.clock.clone(),
            ..RunRow::default()
        })?;
        batch.commit()?;
        Some(id)
    };
    report.metrics =
        crate::metrics::run_checks(config, &mut store, now, run_id, true, opts.dry_run, &[])?;
    let Some(run_id) = run_id else {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    };
    let touched = report.metrics.updated.iter().copied();
    let touched = touched.chain(report.metrics.resolved.iter().map(|r| r.0));
    report
        .updated
        .extend(touched.map(|id| (id, 0)).collect::<Vec<_>>());
    file_unfinished(config, &mut store, now, started, &mut report)?;
    refresh_pages(config, &store, &mut report);
    notify_and_finish(config, &mut store, run_id, now, started, &mut report)?;
    Ok(report)
}

/// Sends what the outbox holds, then records the run's duration, LLM calls and errors.
fn notify_and_finish(
    config: &Config,
    store: &mut Store,
    run_id: i64,
    now: DateTime<Utc>,
    started: Instant,
    report: &mut RunReport,
) -> Result<(), RunError> {
    report.notify = notify::flush(store, config.ntfy.as_ref(), &config.hostname, now)?;
    report.outbox_backlog = store.outbox_backlog()?;
    report
        .errors
        .extend(report.notify.errors.iter().map(|e| format!("ntfy: {e}")));
    report.duration_ms = started.elapsed().as_millis() as u64;
    let batch = store.batch()?;
    batch.finish_run(
        run_id,
        &RunRow {
            duration_ms: report.duration_ms,
            llm_calls: report.llm_calls,
            errors: report.errors.len() as u64,
            error_text: report.errors.join("\n"),
            ..RunRow::default()
        },
    )?;
    batch.commit()?;
    Ok(())
}

/// The escalation rules' decision for each group that opens an incident.
type Escalations = HashMap<Signature, Escalation>;

/// Decides, for each group of this run, whether it opens an incident, adds to an open
/// one, or is known; the escalation rules judge those that open one. Returns the open
/// incidents met, by id, and the escalations.
fn decide_triggers(
    config: &Config,
    store: &Store,
    groups: Vec<Group>,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<(HashMap<i64, store::IncidentRow>, Escalations), RunError> {
    let mut open_rows = HashMap::new();
    let mut escalations = HashMap::new();
    for g in groups {
        let sig = g.signature.to_string();
        let seen = store.signature(&sig)?;
        let open = store.open_incident(&sig)?;
        let resolved = match open {
            None => store.last_resolved(&sig)?,
            Some(_) => None,
        };
        let d = trigger::decide(
            seen.as_ref(),
            open.as_ref(),
            resolved.as_ref(),
            now,
            config.renotify_after,
        );
        // A record more severe than any of its open incident's is judged as if new.
        let rises = open
            .as_ref()
            .is_some_and(|o| g.level.no > incident::lifecycle::incident_level_no(config, o));
        if let Some(o) = open {
            open_rows.insert(o.id, o);
        }
        if matches!(d, Decision::Open { .. }) || rises {
            let mut texts = vec![g.first_message.as_str(), g.template.as_str()];
            texts.extend(g.samples.iter().map(String::as_str));
            let subject = escalate::Subject {
                texts,
                source: &g.source,
                logger: g.logger.as_deref(),
                exception: g.exception_type.as_deref(),
                level_no: g.level.no,
                check: None,
            };
            if let Some(e) = escalate::evaluate(&config.escalation, &subject) {
                escalations.insert(g.signature, e);
            }
        }
        report.groups.push((g, d));
    }
    Ok((open_rows, escalations))
}

/// What committing a run's reading produced.
struct Committed {
    run_id: i64,
    /// Open incidents that spiked (id, count this run).
    spikes: Vec<(i64, u64)>,
    /// The log-rate series written.
    log_series: Vec<i64>,
}

/// One transaction: the run's row, checkpoints, templates, ignore hits, signatures, the
/// incidents opened (stage `new`) and the occurrences added to open ones.
#[allow(clippy::too_many_arguments)]
fn commit_read(
    config: &Config,
    store: &mut Store,
    miner: &mut Miner,
    checkpoints: &[source::Checkpoint],
    forget: &[(String, String)],
    renames: &[(String, String)],
    ignore_hits: &HashMap<String, (u64, Option<DateTime<Utc>>)>,
    open_rows: &HashMap<i64, store::IncidentRow>,
    escalations: &Escalations,
    log_counts: &mut crate::metrics::logs::LogCounts,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<Committed, RunError> {
    let mut spikes = Vec::new();
    let several_open = store
        .open_incident(&several_signature().to_string())?
        .map(|i| i.id);
    let noise = judged_noise(store, &report.groups, open_rows, escalations)?;
    let mut owed = pages_to_retry(store);
    let batch = store.batch()?;
    let run_id = batch.insert_run(&RunRow {
        started_at: store::ts(now),
        boot: report.boot.clone(),
        clock: report.clock.clone(),
        lines_read: report.lines,
        events_kept: report.events_kept,
        triggers: report
            .groups
            .iter()
            .filter(|(_, d)| matches!(d, Decision::Open { .. }))
            .count() as u64,
        ..RunRow::default()
    })?;
    // A renamed source's old checkpoints first: those its read did not hand back (a
    // file not followed this run) stay its own.
    for (old, new) in renames {
        batch.rename_source(old, new)?;
    }
    let identities: Vec<(&str, String)> = config
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.identity()))
        .collect();
    batch.record_source_identities(&identities, run_id)?;
    for cp in checkpoints {
        batch.save_checkpoint(cp, now)?;
    }
    for (source, key) in forget {
        batch.forget_checkpoint(source, key)?;
    }
    batch.save_templates(&miner.take_dirty())?;
    batch.record_ignore_hits(ignore_hits, now)?;
    // The run's error groups by source, with their incident: several sources failing
    // at once make one incident of their own.
    let mut failing: Vec<(String, i64, String)> = Vec::new();
    for (g, d) in &report.groups {
        let sig = g.signature.to_string();
        batch.record_signature(
            &sig,
            &g.template,
            &g.source,
            &g.level.name,
            g.exception_type.as_deref(),
            g.first,
            now,
            g.count,
        )?;
        match d {
            Decision::Open { regression_of, .. } => {
                let esc = escalations.get(&g.signature);
                let new = new_incident(config, g, esc);
                let id = batch.insert_incident(&new, now, run_id)?;
                if let Some(of) = regression_of {
                    batch.set_regression_of(id, *of)?;
                }
                if let Some(e) = esc {
                    batch.set_escalation(id, e)?;
                }
                if g.level.no >= ERROR_LEVEL && !noise.contains(&g.signature) {
                    failing.push((g.source.clone(), id, new.title));
                }
            }
            Decision::Update { incident } => {
                if g.level.no >= ERROR_LEVEL && !noise.contains(&g.signature) {
                    let title = open_rows.get(incident).map(|o| o.title.clone());
                    failing.push((g.source.clone(), *incident, title.unwrap_or_default()));
                }
                batch.add_occurrences(*incident, g.count, g.last, now)?;
                if let Some(o) = open_rows.get(incident) {
                    batch.set_samples(*incident, &merge_samples(&o.samples, &g.samples))?;
                    let esc = escalations.get(&g.signature);
                    let paged = record_rise(config, &batch, o, g, esc, now, &mut report.rose)?;
                    // A rise's page says enough for this run: one push, not two.
                    if !paged
                        && incident::lifecycle::is_spike(
                            config,
                            o.occurrences,
                            o.runs_seen,
                            g.count,
                        )
                    {
                        spikes.push((*incident, g.count));
                    }
                }
            }
            Decision::Known => {}
        }
    }
    let several = several_sources(config, several_open, &failing, now, run_id, &batch)?;
    // The log rates go with what was read: a run that dies before this commit reads it
    // again, one that commits it never counts it twice.
    for (g, d) in &report.groups {
        if matches!(d, Decision::Open { .. } | Decision::Update { .. }) {
            *log_counts
                .signatures
                .entry((g.source.clone(), g.signature.to_string()))
                .or_default() += g.count;
        }
    }
    let (log_series, dropped) = crate::metrics::logs::record(
        &batch,
        log_counts,
        now,
        batch.run_started_before(run_id)?,
        config.metrics.max_series,
    )?;
    // The pages of the incidents this read adds to are owed a rewrite, recorded with
    // the read: a run that dies before rewriting them leaves them to the next run.
    let before = owed.len();
    for (_, d) in &report.groups {
        if let Decision::Update { incident } = d {
            if !owed.contains(incident) {
                owed.push(*incident);
            }
        }
    }
    if owed.len() > before {
        let v: Vec<String> = owed.iter().map(|i| i.to_string()).collect();
        batch.kv_set(PAGES_TO_RETRY, &v.join(","))?;
    }
    batch.commit()?;
    if dropped > 0 {
        report.warnings.push(format!(
            "{dropped} new log-rate series not recorded: there are metrics.max_series = {} already",
            config.metrics.max_series
        ));
    }
    if let Some((id, text)) = several {
        store.add_note(id, "logwarden", &text, now)?;
    }
    for (g, d) in &report.groups {
        if let Decision::Update { incident } = d {
            report.updated.push((*incident, g.count));
        }
    }
    Ok(Committed {
        run_id,
        spikes,
        log_series,
    })
}

/// Records a group more severe than its open incident `o` on it (see
/// [`incident::lifecycle::level_rise`]) and queues its notification, which takes the
/// place of the incident's still waiting. Returns whether it queued one.
fn record_rise(
    config: &Config,
    batch: &store::Batch<'_>,
    o: &store::IncidentRow,
    g: &Group,
    esc: Option<&Escalation>,
    now: DateTime<Utc>,
    rose: &mut Vec<(i64, String, String, bool)>,
) -> Result<bool, RunError> {
    let Some(r) = incident::lifecycle::level_rise(config, o, &g.level, g.last, esc) else {
        return Ok(false);
    };
    let before = Level {
        name: o.level.clone(),
        no: incident::lifecycle::incident_level_no(config, o),
    };
    batch.raise_level(
        o.id,
        (&before, &o.severity),
        &r.level,
        &r.severity,
        r.escalation.as_ref(),
        r.reopen,
        now,
    )?;
    if let Some(n) = &r.page {
        let id = batch.enqueue_kind(Some(o.id), "rise", &r.severity, n, now)?;
        // What was still waiting to go (held by quiet hours, or ntfy down) says less
        // than this, and would arrive after it.
        batch.supersede_unsent(o.id, id, now)?;
    }
    rose.push((o.id, r.level.name, r.severity, r.page.is_some()));
    Ok(r.page.is_some())
}

/// Level names a source's rates are counted for in one run.
const MAX_LEVEL_NAMES: usize = 32;

/// Records at this level or above are errors (loguru's ERROR is 40).
const ERROR_LEVEL: u32 = 40;

/// The run's groups already judged noise, which do not count as a source failing: an
/// open incident whose verdict is noise, or a new one whose signature was last judged
/// noise. One malformed request that passes through three services, each logging an
/// error already known as noise, is not an outage. Escalated groups always count.
fn judged_noise(
    store: &Store,
    groups: &[(Group, Decision)],
    open_rows: &HashMap<i64, store::IncidentRow>,
    escalations: &Escalations,
) -> Result<std::collections::HashSet<Signature>, RunError> {
    let mut noise = std::collections::HashSet::new();
    for (g, d) in groups {
        if g.level.no < ERROR_LEVEL || escalations.get(&g.signature).is_some() {
            continue;
        }
        let judged = match d {
            Decision::Update { incident } => open_rows
                .get(incident)
                .is_some_and(|o| o.verdict == "noise" && o.escalation.is_none()),
            Decision::Open { .. } => store
                .verdicts(&g.signature.to_string())?
                .last()
                .is_some_and(|v| v.verdict == "noise"),
            Decision::Known => false,
        };
        if judged {
            noise.insert(g.signature);
        }
    }
    Ok(noise)
}

/// The incident kind of the "several services failing" incidents.
const SEVERAL_KIND: &str = "several-sources";

/// The signature of the "several services failing" incidents: one open at a time, new
/// failures while it is open add to it.
fn several_signature() -> Signature {
    Signature(xxhash_rust::xxh3::xxh3_64(
        b"logwarden:builtin:several-services-failing",
    ))
}

/// The built-in rule: errors from `several_sources` sources or more in one run open
/// one critical incident that lists theirs (in its log). Returns it, with that list,
/// when it is new.
fn several_sources(
    config: &Config,
    open: Option<i64>,
    failing: &[(String, i64, String)],
    now: DateTime<Utc>,
    run_id: i64,
    batch: &store::Batch<'_>,
) -> Result<Option<(i64, String)>, RunError> {
    let e = &config.escalation;
    if !e.defaults {
        return Ok(None);
    }
    let mut sources: Vec<&str> = failing.iter().map(|f| f.0.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    if sources.len() < e.several_sources {
        return Ok(None);
    }
    if let Some(id) = open {
        batch.add_occurrences(id, 1, now, now)?;
        return Ok(None);
    }
    let list: Vec<String> = failing
        .iter()
        .map(|(src, id, title)| format!("#{id} ({src}): {title}"))
        .collect();
    let title = format!("Several services failing: {}", sources.join(", "));
    let new = NewIncident {
        signature: several_signature().to_string(),
        kind: SEVERAL_KIND.into(),
        severity: "critical".into(),
        title: incident::clean_title(config, &title),
        source: "logwarden".into(),
        host: config.hostname.clone(),
        level: "ERROR".into(),
        level_no: None,
        template: format!(
            "errors from {} sources in one run: {}",
            sources.len(),
            sources.join(", ")
        ),
        exception_type: None,
        first_seen: now,
        last_seen: now,
        occurrences: 1,
        samples: vec![list.join("\n")],
    };
    let id = batch.insert_incident(&new, now, run_id)?;
    batch.set_escalation(
        id,
        &Escalation {
            rules: vec![escalate::SEVERAL_SOURCES.into()],
            severity: Some("critical".into()),
            investigate: false,
            nag: true,
        },
    )?;
    let note = format!(
        "{} sources failed in the same run; their incidents:\n{}",
        sources.len(),
        list.iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(Some((id, note)))
}

/// How long a run may hold the lock before the next one calls it stuck: the deadline
/// plus a margin for the child it was waiting on when the deadline passed.
fn deadline_of(config: &Config) -> chrono::Duration {
    let child = match &config.investigator {
        crate::config::InvestigatorConfig::None => std::time::Duration::ZERO,
        crate::config::InvestigatorConfig::ClaudeCli(c) => c.timeout,
        crate::config::InvestigatorConfig::AnthropicApi(a) => a.timeout,
    };
    let margin = std::time::Duration::from_secs(60);
    chrono::Duration::from_std(config.run_deadline + child + margin)
        .unwrap_or(chrono::Duration::MAX)
}

/// Creates the state and incidents folders and takes the run lock (waiting briefly);
/// `None` when another run holds it. A run still holding it past the deadline is
/// stuck: monitoring has stopped, which must not pass as "another run is in progress".
/// `boot`: where this run stands on the boot clock, when `now` was read (not given).
fn take_lock(
    config: &Config,
    now: DateTime<Utc>,
    boot: Option<&crate::clock::Boot>,
) -> Result<Option<lock::RunLock>, RunError> {
    prepare_dirs(config)?;
    let acquired = lock::acquire(&config.state_dir, std::time::Duration::from_secs(3), now)
        .map_err(|e| {
            RunError::Io(format!(
                "cannot take the run lock in {}: {e}",
                config.state_dir.display()
            ))
        })?;
    match acquired {
        lock::Acquired::Got(l) => Ok(Some(l)),
        lock::Acquired::Busy(Some(h)) if h.age(now, boot.map(|b| b.since)) > deadline_of(config) => {
            Err(RunError::Stuck(format!(
                "a logwarden run (pid {}) has held the run lock since {}, longer than run_deadline ({}): it is stuck and nothing is being watched; see `journalctl -u logwarden.service`, or end it with `kill {}`",
                h.pid,
                store::ts(h.started),
                crate::duration::format(config.run_deadline),
                h.pid
            )))
        }
        lock::Acquired::Busy(_) => Ok(None),
    }
}

fn prepare_dirs(config: &Config) -> Result<(), RunError> {
    for dir in [&config.state_dir, &config.incidents_dir] {
        crate::fsio::create_dir(dir).map_err(RunError::Io)?;
    }
    Ok(())
}

/// What reading produced: the groups, the new checkpoints, the checkpoints to forget
/// (source, key) and the hits per ignore rule.
struct ReadResult {
    groups: Vec<Group>,
    checkpoints: Vec<source::Checkpoint>,
    forget: Vec<(String, String)>,
    ignore_hits: HashMap<String, (u64, Option<DateTime<Utc>>)>,
    log_counts: crate::metrics::logs::LogCounts,
    /// Sources renamed in the config since the last run: (old name, new name).
    renames: Vec<(String, String)>,
}

/// The name `src` had in the last run's config, when it was renamed since: a source the
/// last run read, no longer configured, that reads what `src` reads (its identity),
/// while `src` has no read position of its own and is the only source that reads it.
/// Without this a renamed source starts over (from the end by default), and what was
/// written between the two runs is never read.
fn renamed_from<'a>(
    config: &Config,
    src: &crate::config::SourceConfig,
    identities: &'a [(String, String, i64)],
) -> Option<&'a str> {
    let last = identities.iter().map(|(_, _, run)| *run).max()?;
    let identity = src.identity();
    let configured = |name: &str| config.sources.iter().any(|s| s.name == name);
    if config
        .sources
        .iter()
        .filter(|s| s.identity() == identity)
        .count()
        != 1
    {
        return None;
    }
    let mut old = identities
        .iter()
        .filter(|(name, id, run)| *run == last && *id == identity && !configured(name));
    match (old.next(), old.next()) {
        (Some((name, _, _)), None) => Some(name),
        _ => None,
    }
}

/// One more hit of `rule` in the run (with when it was made, for the rule's first hit).
fn count_hit(hits: &mut HashMap<String, (u64, Option<DateTime<Utc>>)>, rule: &crate::ignore::Rule) {
    hits.entry(rule.id.clone())
        .or_insert_with(|| (0, rule.created_at()))
        .0 += 1;
}

/// Reads every source, grouping what is kept by signature. A source that fails is
/// reported and skipped; its checkpoint does not move.
/// `known`: after a rebuild, what the pages count: a source whose checkpoint went with
/// the database (or was rolled back with it) reads again records they already count.
fn read_sources(
    config: &Config,
    store: &Store,
    miner: &mut Miner,
    ignore: &LazyRules,
    known: &Known,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<ReadResult, RunError> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Signature, usize> = HashMap::new();
    let mut hits: HashMap<String, (u64, Option<DateTime<Utc>>)> = HashMap::new();
    let mut checkpoints = Vec::new();
    let mut forget = Vec::new();
    let mut log_counts = crate::metrics::logs::LogCounts::default();
    let identities = store.source_identities()?;
    let mut renames = Vec::new();
    for src in &config.sources {
        let mut prev = store.checkpoints(&src.name)?;
        if let Some(old) = prev
            .is_empty()
            .then(|| renamed_from(config, src, &identities))
            .flatten()
        {
            prev = store.checkpoints(old)?;
            for cp in prev.values_mut() {
                cp.source = src.name.clone();
            }
            report.warnings.push(format!(
                "source `{}` was `{old}` in the last run's config (it reads the same): it carries \
                 on from where `{old}` stopped",
                src.name
            ));
            renames.push((old.to_string(), src.name.clone()));
        }
        // Records kept per level name (a handful: a list beats a map here; the names
        // come from the log, so a log inventing them cannot make it long).
        let mut levels: Vec<(String, u64)> = Vec::new();
        let mut kept = 0u64;
        let mut ignored = 0u64;
        let mut templates = store::StoredTemplates(store);
        let mut unread: Option<String> = None;
        let mut again = 0u64;
        let reread = prev.is_empty() && !known.until.is_empty();
        let first_reading = known.until.is_empty() && !reread;
        let newest_page = known.newest_by_source.get(&src.name).copied();
        // A file or table whose checkpoint went with the database is read from its start
        // (what was written between the last run and the loss would be lost otherwise),
        // what the pages already have is skipped below. The journal keeps `from`: its
        // start is the whole journal.
        let restarted;
        let src = match (&src.kind, src.from) {
            (crate::config::SourceKind::Journald(_), _) | (_, crate::config::StartFrom::Start) => {
                src
            }
            _ if reread => {
                restarted = crate::config::SourceConfig {
                    from: crate::config::StartFrom::Start,
                    ..src.clone()
                };
                &restarted
            }
            _ => src,
        };
        let mut sink = |event: Event| {
            if unread.is_some() {
                return;
            }
            // Outside a rebuild no record was counted before, and a rule that ignores a
            // record is tried before the record is grouped (grouping is most of a
            // record's cost, and what is ignored then never shapes the groups of what is
            // kept); a rule scoped to a signature has it worked out when reached.
            let mut mined = None;
            if first_reading {
                let rule = ignore.get().matching_lazy(&event, || {
                    let m = miner.add_from(&event.message, &mut templates)?;
                    let sig = signature(
                        m.group,
                        event.exception_type.as_deref(),
                        event.logger.as_deref(),
                    );
                    mined = Some(m);
                    Ok(sig)
                });
                match rule {
                    Err(e) => {
                        unread = Some(e);
                        return;
                    }
                    Ok(Some(rule)) => {
                        count_hit(&mut hits, rule);
                        ignored += 1;
                        return;
                    }
                    Ok(None) => {}
                }
            }
            let mined = match mined {
                Some(m) => m,
                None => match miner.add_from(&event.message, &mut templates) {
                    Ok(m) => m,
                    Err(e) => {
                        unread = Some(e);
                        return;
                    }
                },
            };
            let sig = signature(
                mined.group,
                event.exception_type.as_deref(),
                event.logger.as_deref(),
            );
            // A log's clock may run ahead of ours (or a line may be stamped 2100): no
            // record is dated after the run that saw it.
            let time = event.time.map_or(now, |t| t.min(now));
            if !first_reading {
                // After a rebuild a source may read again what its pages already count:
                // from its start (no checkpoint) or from a checkpoint rolled back with the
                // database.
                let until = match known.until.get(&sig) {
                    Some(t) => Some(*t),
                    None if reread => newest_page,
                    None => None,
                };
                if until.is_some_and(|until| time <= until) {
                    again += 1;
                    return;
                }
                if let Some(rule) = ignore.get().matching(&event, sig) {
                    count_hit(&mut hits, rule);
                    ignored += 1;
                    return;
                }
            }
            kept += 1;
            let level = Level::series_name(&event.level.name, event.level.no, &src.levels);
            if let Some(l) = levels.iter_mut().find(|l| l.0 == level) {
                l.1 += 1;
            } else if levels.len() < MAX_LEVEL_NAMES {
                levels.push((level, 1));
            }
            let i = *index.entry(sig).or_insert_with(|| {
                groups.push(Group {
                    signature: sig,
                    template: display_template(&mined.template),
                    source: event.source.clone(),
                    level: event.level.clone(),
                    exception_type: event.exception_type.clone(),
                    logger: event.logger.clone(),
                    first: time,
                    last: time,
                    count: 0,
                    samples: Vec::new(),
                    first_message: first_line(&event.message).chars().take(1000).collect(),
                });
                groups.len() - 1
            });
            let g = &mut groups[i];
            g.count += 1;
            if mined.changed {
                g.template = display_template(&mined.template);
            }
            g.first = g.first.min(time);
            g.last = g.last.max(time);
            if event.level.no > g.level.no {
                g.level = event.level.clone();
            }
            if g.samples.len() < MAX_SAMPLES {
                g.samples.push(format!("[{}]\n{}", event.origin, event.raw));
            }
        };
        // Files rotated away since the last record the pages have were not all read.
        let lost_since = reread
            .then(|| newest_page.or_else(|| known.newest_by_source.values().max().copied()))
            .flatten();
        let read = source::read(src, &prev, false, now, lost_since, &mut sink);
        if let Some(e) = unread {
            // The groups of what was read are unknown: the run stops before any
            // checkpoint moves, and the next run reads it all again.
            return Err(RunError::Io(format!(
                "source `{}`: cannot read the stored templates: {e}",
                src.name
            )));
        }
        match read {
            Ok(r) => {
                if r.lines > 0 {
                    log_counts.active.insert(src.name.clone());
                }
                for (level, n) in levels {
                    *log_counts
                        .levels
                        .entry((src.name.clone(), level))
                        .or_default() += n;
                }
                report.lines += r.lines;
                report.warnings.extend(r.warnings);
                report.errors.extend(
                    r.errors
                        .into_iter()
                        .map(|e| format!("source `{}`: {e}", src.name)),
                );
                checkpoints.extend(r.checkpoints);
                forget.extend(r.forget.into_iter().map(|k| (src.name.clone(), k)));
            }
            Err(e) => report.errors.push(format!("source `{}`: {e}", src.name)),
        }
        report.events_kept += kept;
        report.ignored += ignored;
        report.read_again += again;
    }
    Ok(ReadResult {
        groups,
        checkpoints,
        forget,
        ignore_hits: hits,
        log_counts,
        renames,
    })
}

fn new_incident(config: &Config, g: &Group, esc: Option<&Escalation>) -> NewIncident {
    let by_level = config
        .sources
        .iter()
        .find(|s| s.name == g.source)
        .map_or("info", |s| s.severity_of(g.level.no));
    // The rules apply after the source's map, and only ever raise.
    let severity = match esc.and_then(|e| e.severity.as_deref()) {
        Some(floor) => escalate::max_severity(by_level, floor),
        None => by_level,
    };
    // The title reads like the first record (its values, redacted below), not like the
    // template: `<*>` on a phone says nothing. The template stays on the page.
    let head = if g.first_message.trim().is_empty() {
        first_line(&g.template)
    } else {
        g.first_message.trim()
    };
    let title = match &g.exception_type {
        Some(e) if !head.contains(e.as_str()) => format!("{head}: {e}"),
        _ => head.to_string(),
    };
    NewIncident {
        signature: g.signature.to_string(),
        kind: "new-error".into(),
        severity: severity.into(),
        title: incident::clean_title(config, &title),
        source: g.source.clone(),
        host: config.hostname.clone(),
        level: g.level.name.clone(),
        level_no: Some(g.level.no),
        template: g.template.clone(),
        exception_type: g.exception_type.clone(),
        first_seen: g.first,
        last_seen: g.last,
        occurrences: g.count,
        samples: g.samples.clone(),
    }
}

/// Templates are shown and stored up to 2,000 bytes; the template is redacted later,
/// so it is cut off the middle of a token.
fn display_template(t: &str) -> String {
    crate::redact::shorten(t, 2000)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Finishes every incident not yet filed (this run's and any a crashed run left):
/// investigate, write the file, queue the notification.
fn file_unfinished(
    config: &Config,
    store: &mut Store,
    now: DateTime<Utc>,
    started: Instant,
    report: &mut RunReport,
) -> Result<(), RunError> {
    let ctx = run_context(report);
    let mut diagnoses = Vec::new();
    let mut pending = Vec::new();
    // Names given this run to pages the store records only when they are filed.
    let mut chosen: HashMap<String, i64> = HashMap::new();
    for mut inc in store.unfinished_incidents()? {
        let mut llm_called = false;
        let mut deferred: Option<Diagnosed> = None;
        let mut proposals: Vec<String> = Vec::new();
        if inc.stage == "new" && inc.escalation.is_none() {
            escalate_metric(config, store, &mut inc)?;
        }
        if inc.stage == "new" {
            // Past the run's deadline the rest are filed and notified uninvestigated:
            // a run must end well before the timer fires the next one.
            let d = if started.elapsed() >= config.run_deadline {
                Diagnosis {
                    error: Some(format!(
                        "not investigated: the run passed its deadline ({})",
                        crate::duration::format(config.run_deadline)
                    )),
                    skipped: Some("deadline".into()),
                    ..Diagnosis::default()
                }
            } else {
                investigate::investigate(config, store, &inc, &ctx, now)
            };
            diagnoses.push(d.clone());
            if d.llm_called {
                report.llm_calls += 1;
                report.prompt_tokens += d.prompt_tokens.unwrap_or(0);
                llm_called = true;
            }
            // The built-in "several services failing" title is a fact logwarden
            // counted; the investigator's answer (which may echo log text) goes in its
            // diagnosis, not over the title that pages as critical.
            let title = if d.diagnosed && !d.title.is_empty() && inc.kind != SEVERAL_KIND {
                d.title.clone()
            } else {
                inc.title.clone()
            };
            let mut severity = if d.diagnosed {
                d.severity.clone()
            } else {
                inc.severity.clone()
            };
            let mut verdict = if d.diagnosed {
                d.verdict.clone()
            } else {
                "unsure".to_string()
            };
            // Deterministic rules outrank the investigator: its answer may raise the
            // severity they give, never lower it.
            if let Some(floor) = inc.escalation.as_ref().and_then(|e| e.severity.as_deref()) {
                severity = escalate::max_severity(&severity, floor).to_string();
            }
            if inc.escalation.is_none() && is_noise(&d) {
                severity = "info".into();
                verdict = "noise".into();
            }
            if d.diagnosed
                && verdict == "unsure"
                && config.escalation.defaults
                && inc.regression_of.is_none()
                && store.incidents_before(&inc.signature, inc.id)? == 0
            {
                // Something never seen that the investigator could not place is worth
                // a look the same day.
                severity = escalate::max_severity(&severity, "warning").to_string();
                let e = inc.escalation.get_or_insert_with(Escalation::default);
                e.rules.push(escalate::NEW_AND_UNSURE.into());
                e.severity = Some(severity.clone());
                store.escalate_incident(inc.id, e, &severity)?;
            }
            let value = serde_json::to_value(&d).expect("diagnosis serialises");
            if llm_called {
                // What an LLM call found is kept at once: it is not asked twice.
                store.set_diagnosis(inc.id, &value, &severity, &verdict, &title)?;
            } else {
                // Found without a call, it can be found again: recorded with the page,
                // in the transaction that files it (a commit each cost more than the
                // update itself).
                deferred = Some(Diagnosed {
                    value: value.clone(),
                    severity: severity.clone(),
                    verdict: verdict.clone(),
                    title: title.clone(),
                });
            }
            inc.diagnosis = Some(value);
            inc.title = title;
            inc.severity = severity;
            inc.verdict = verdict;
            inc.stage = "investigated".into();
            proposals = crate::actions::propose(config, store, &inc, Some(&d), now)?;
        }
        let d: Option<Diagnosis> = inc
            .diagnosis
            .clone()
            .and_then(|v| serde_json::from_value(v).ok());
        if let Some(d) = &d {
            if !d.diagnosed {
                report
                    .not_diagnosed
                    .push((inc.id, d.error.clone().unwrap_or_default()));
            }
        }
        let path = incident::path_for(&config.incidents_dir, &inc, store, &chosen)?;
        if let Some(name) = path.file_name() {
            chosen.insert(name.to_string_lossy().into_owned(), inc.id);
        }
        if let Err(e) =
            incident::write_unsynced(&path, &incident::page::page_for(config, store, &inc, &path))
        {
            if let Some(x) = &deferred {
                store.set_diagnosis(inc.id, &x.value, &x.severity, &x.verdict, &x.title)?;
            }
            // Left unfiled: the next run writes the page and queues its notification.
            report.problem(format!(
                "incident #{}: page not written, the incident is filed and notified once it is: {e}",
                inc.id
            ));
            continue;
        }
        fault_point("after-incident-file");
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut summary = match &d {
            Some(d) if d.diagnosed => d.summary.clone(),
            Some(d) => format!(
                "Not diagnosed: {}",
                d.error.as_deref().unwrap_or("unknown reason")
            ),
            None => String::new(),
        };
        for p in &proposals {
            summary.push_str(&format!("\n\n{p}"));
        }
        let mut note = notify::for_incident(&inc, &summary, &file_name, &config.redact.redactor);
        if let Some(e) = &inc.escalation {
            report.escalated.push((inc.id, e.rules.join(", ")));
        }
        if inc.verdict == "noise" && inc.escalation.is_none() {
            report.quiet_noise.push(inc.id);
            // Judged noise: filed and shown, at a priority that does not buzz.
            note.priority = 2;
            note.title = format!("[{}] Likely noise: {}", inc.host, inc.title);
            note.tags = "zzz,info".into();
        }
        if let Some(of) = inc.regression_of {
            // Noise already judged comes back: recorded and shown, but it does not buzz,
            // unless the investigator, asked again, did not find it noise, or it spiked or
            // rose past what was judged noise (as verdict memory lets those through).
            let judged_again = d
                .as_ref()
                .is_some_and(|d| d.diagnosed && inc.verdict != "noise");
            let surges = |noise: Vec<store::VerdictRow>| {
                !noise.is_empty() && crate::investigate::budget::surges(config, &inc, &noise)
            };
            if !judged_again
                && inc.escalation.is_none()
                && store
                    .incident(of)?
                    .is_some_and(|old| old.verdict == "noise")
                && !surges(noise_verdicts(store, &inc, inc.id)?)
            {
                note.priority = 1;
                note.title = format!("[{}] Recurring noise: {}", inc.host, inc.title);
            }
        }
        let note = redact_note(config, note);
        pending.push(Written {
            diagnosis: deferred,
            id: inc.id,
            severity: inc.severity.clone(),
            title: inc.title.clone(),
            path,
            note,
        });
        // An investigation takes far longer than a flush: its page goes out now
        // rather than wait for the rest of the run's.
        if llm_called {
            file_written(config, store, &mut pending, now, report)?;
        }
    }
    file_written(config, store, &mut pending, now, report)?;
    report.llm_notes = investigate::summarize_skips(&diagnoses);
    Ok(())
}

/// Whether a diagnosis keeps its incident quiet: a "noise" verdict (the investigator
/// turns one less sure than `noise_confidence` into "unsure"), or a signature that
/// verdict memory already knows as noise (no LLM asked).
/// The noise verdicts of an incident's signature given before `this` one.
fn noise_verdicts(
    store: &Store,
    inc: &store::IncidentRow,
    this: i64,
) -> Result<Vec<store::VerdictRow>, RunError> {
    Ok(store
        .verdicts(&inc.signature)?
        .into_iter()
        .filter(|v| v.verdict == "noise" && v.incident_id != Some(this))
        .collect())
}

fn is_noise(d: &Diagnosis) -> bool {
    d.skipped.as_deref() == Some("recurring-noise") || (d.diagnosed && d.verdict == "noise")
}

/// The escalation rules for a metric incident, opened by its check: `check`, `level`
/// and `pattern` (on its title and samples) apply.
fn escalate_metric(
    config: &Config,
    store: &Store,
    inc: &mut store::IncidentRow,
) -> Result<(), RunError> {
    let Some(check) = inc.source.strip_prefix("check:") else {
        return Ok(());
    };
    let mut texts = vec![inc.title.as_str(), inc.template.as_str()];
    texts.extend(inc.samples.iter().map(String::as_str));
    let subject = escalate::Subject {
        texts,
        source: &inc.source,
        logger: None,
        exception: None,
        level_no: crate::source::Level::named(&inc.level, &Default::default()).no,
        check: Some(check),
    };
    let Some(e) = escalate::evaluate(&config.escalation, &subject) else {
        return Ok(());
    };
    let severity = match e.severity.as_deref() {
        Some(floor) => escalate::max_severity(&inc.severity, floor).to_string(),
        None => inc.severity.clone(),
    };
    store.escalate_incident(inc.id, &e, &severity)?;
    inc.severity = severity;
    inc.escalation = Some(e);
    Ok(())
}

/// A diagnosis to record: its JSON and what it set on the incident.
struct Diagnosed {
    value: serde_json::Value,
    severity: String,
    verdict: String,
    title: String,
}

/// A page written but not yet flushed to disk nor recorded.
struct Written {
    /// A diagnosis made without an LLM call, recorded when the page is.
    diagnosis: Option<Diagnosed>,
    id: i64,
    severity: String,
    title: String,
    path: std::path::PathBuf,
    note: store::Notification,
}

/// Files the written pages: one flush to disk for all of them, then one transaction
/// that marks them filed and queues their notifications. A crash before the commit
/// leaves the incidents unfiled: the next run writes each page again over its own file
/// (found by the id in its front matter) and queues the notification then, so no page
/// is lost, doubled or notified twice. Nothing is recorded before the pages are on disk.
fn file_written(
    config: &Config,
    store: &mut Store,
    pending: &mut Vec<Written>,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<(), RunError> {
    if pending.is_empty() {
        return Ok(());
    }
    fault_point("after-pages-written");
    // A sandbox may refuse syncfs (seccomp): then each page is flushed on its own,
    // slower but never leaving the pages unfiled, and their notifications unsent.
    let synced = crate::fsio::sync_dir(&config.incidents_dir).or_else(|e| {
        let paths: Vec<&std::path::Path> = pending.iter().map(|w| w.path.as_path()).collect();
        crate::fsio::sync_files(&config.incidents_dir, &paths)
            .map_err(|e2| format!("{e}; flushing page by page: {e2}"))
    });
    if let Err(e) = synced {
        report.problem(format!(
            "{} incident pages not filed, they are written and notified on the next run: {e}",
            pending.len()
        ));
        pending.clear();
        return Ok(());
    }
    fault_point("after-pages-synced");
    // What killed writers left behind, judged by the folder's own clock (the page just
    // written) with a wide margin: a page being written by hand right now is spared.
    // Once a day: listing a folder of a year's pages on every filing would make a
    // run's cost grow with the history, and a stale temporary file harms nothing.
    let sweep_due = store
        .kv_get(TEMPS_SWEPT)
        .ok()
        .flatten()
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .is_none_or(|at| {
            let at = at.with_timezone(&Utc);
            now < at || now - at >= chrono::Duration::days(1)
        });
    if let Some(written) = pending
        .last()
        .filter(|_| sweep_due)
        .and_then(|w| std::fs::metadata(&w.path).ok())
        .and_then(|m| m.modified().ok())
    {
        let _ = store.kv_set(TEMPS_SWEPT, &store::ts(now));
        let margin = std::time::Duration::from_secs(600);
        if let Some(before) = written.checked_sub(margin) {
            crate::fsio::remove_stale_temps(&config.incidents_dir, before);
        }
    }
    let batch = store.batch()?;
    for w in pending.iter() {
        if let Some(x) = &w.diagnosis {
            batch.set_diagnosis(w.id, &x.value, &x.severity, &x.verdict, &x.title)?;
        }
        batch.file_incident(w.id, &w.path.display().to_string(), &w.note, now)?;
    }
    batch.commit()?;
    for w in pending.drain(..) {
        report
            .opened
            .push((w.id, w.severity, w.title, w.path.display().to_string()));
    }
    Ok(())
}

/// The investigator's view of this run: every warning/error group with its count.
fn run_context(report: &RunReport) -> investigate::RunContext {
    investigate::RunContext {
        groups: report
            .groups
            .iter()
            .map(|(g, _)| investigate::RunGroup {
                signature: g.signature.to_string(),
                template: g.template.clone(),
                sample: g.samples.first().cloned().unwrap_or_default(),
                level: g.level.name.clone(),
                count: g.count,
            })
            .collect(),
    }
}

/// A notification with its title redacted: it leaves the host. The title may have
/// been remade from the incident's own after [`notify::for_incident`]; the body is as
/// that made it, redacted whole and capped (a second pass found nothing more: it cost
/// a fifth of the run's redaction).
fn redact_note(config: &Config, mut n: store::Notification) -> store::Notification {
    n.title = config.redact.redactor.clean(&n.title);
    n
}

/// Rewrites the pages of the incidents this run touched (new occurrences, opened,
/// resolved, acked from the phone) and of those related to them, then `INDEX.md`.
fn refresh_pages(config: &Config, store: &Store, report: &mut RunReport) {
    let mut ids: Vec<i64> = report.updated.iter().map(|(id, _)| *id).collect();
    ids.extend(report.resolved.iter().copied());
    ids.extend(report.metrics.resolved.iter().map(|r| r.0));
    ids.extend(report.control.acked.iter().copied()); // acked from the phone
    ids.extend(report.control.decided.iter().copied()); // approved or rejected
    ids.extend(report.actions.resolved.iter().copied());
    // Pages opened in this run were just written; only what they link to changes.
    let opened: std::collections::BTreeSet<i64> = report.opened.iter().map(|o| o.0).collect();
    // The rows the index shows changed only for these; the pages linked to them
    // change, their index rows do not.
    let changed: Vec<i64> = ids.iter().chain(&opened).copied().collect();
    let mut all = std::collections::BTreeSet::new();
    store.reading(|| {
        for (id, fresh) in ids
            .into_iter()
            .map(|id| (id, false))
            .chain(opened.iter().map(|id| (*id, true)))
        {
            if !fresh {
                all.insert(id);
            }
            if let Ok(Some(inc)) = store.incident(id) {
                all.extend(
                    incident::page::linked_to(store, &inc)
                        .into_iter()
                        .filter(|r| !opened.contains(r)),
                );
            }
        }
    });
    // Pages a run could not rewrite before (or died before rewriting) are tried again.
    let retry = pages_to_retry(store);
    all.extend(retry.iter().copied());
    let changed: Vec<i64> = changed.into_iter().chain(retry.iter().copied()).collect();
    // A quiet run changes no page: it leaves INDEX.md alone (loading every incident
    // for it would grow the cost of an idle run with the history).
    if all.is_empty() && opened.is_empty() && config.incidents_dir.join("INDEX.md").exists() {
        return;
    }
    let ids: Vec<i64> = all.iter().copied().collect();
    report
        .warnings
        .extend(incident::page::locate(config, store, &ids));
    let mut failed = Vec::new();
    for (id, e) in incident::page::rewrite_pages(config, store, &ids) {
        report.problem(format!("incident #{id}: {e}"));
        failed.push(id);
    }
    failed.sort_unstable();
    failed.dedup();
    if failed != retry {
        if let Err(e) = set_pages_to_retry(store, &failed) {
            report.errors.push(format!("state database: {e}"));
        }
    }
    if let Err(e) = incident::index::update(&config.incidents_dir, store, &changed) {
        report.problem(format!("INDEX.md: {e}"));
    }
}

const PAGES_TO_RETRY: &str = "pages.retry";
/// When the incidents folder was last swept of temporary files killed writers left.
const TEMPS_SWEPT: &str = "incidents.temps_swept_at";

/// Incident pages a run (or a command) could not rewrite: the next run tries again.
fn pages_to_retry(store: &Store) -> Vec<i64> {
    store
        .kv_get(PAGES_TO_RETRY)
        .ok()
        .flatten()
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}

fn set_pages_to_retry(store: &Store, ids: &[i64]) -> Result<(), store::StoreError> {
    let v: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    store.kv_set(PAGES_TO_RETRY, &v.join(","))
}

/// Adds an incident whose page could not be rewritten to those the next run retries.
pub fn retry_page_later(store: &Store, id: i64) -> Result<(), store::StoreError> {
    let mut v = pages_to_retry(store);
    if !v.contains(&id) {
        v.push(id);
        set_pages_to_retry(store, &v)?;
    }
    Ok(())
}

const GOOD_RULES: &str = "ignore.last_good:";
/// A rules file's text as this build last accepted it, led by the build's id.
const CHECKED_RULES: &str = "ignore.checked:";
/// What a rules file's last check found worth saying (rules that match nothing), kept
/// with its stamp so that every run says it, not only the one that checked.
const RULE_WARNINGS: &str = "ignore.warnings:";

/// The ignore file and the mutes file. A file that cannot be read or has a bad rule
/// does not stop the run: its last good version (kept in the state database) applies
/// instead, and the run reports a watcher problem until it is fixed. Nothing watched
/// at all would be worse than a rule too many or too few.
///
/// A text this very build accepted before (the same bytes, the same build id) is not
/// checked again: its rules are parsed when a record first needs them, which a run
/// with nothing new never does. Any other text is checked now, so a broken file is
/// reported by every run.
/// This run's clocks, from the previous run's (kept in the report for the runs table);
/// a clock that moved is reported.
fn run_clock(
    store: &Store,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<crate::clock::RunClock, RunError> {
    let prev = store.previous_run_clock()?;
    let clock = crate::clock::RunClock::next(prev.as_ref(), opts.now, opts.boot.as_ref());
    if let Some(w) = clock.warning(opts.now) {
        report.warnings.push(w);
    }
    report.boot = opts.boot.clone();
    report.clock = Some(clock.clone());
    Ok(clock)
}

/// The ignore rules and mutes, as of `expiry_now` for their expiry (never before a
/// time a run on this boot has seen: see `clock.rs`).
fn load_rules(
    config: &Config,
    store: &Store,
    expiry_now: DateTime<Utc>,
    dry_run: bool,
    report: &mut RunReport,
) -> Result<LazyRules, RunError> {
    let mut parts = Vec::new();
    let sources: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    for path in config.rule_files() {
        let key = format!("{GOOD_RULES}{}", path.display());
        let checked_key = format!("{CHECKED_RULES}{}", path.display());
        let warned_key = format!("{RULE_WARNINGS}{}", path.display());
        let text = match crate::fsio::read_optional(&path) {
            Ok(t) => t.unwrap_or_default(),
            Err(e) => {
                rules_fallback(store, &key, &path, vec![e], expiry_now, report, &mut parts)?;
                continue;
            }
        };
        // (the sources too: a rule scoped to one that is gone is said to match nothing)
        let stamp = format!(
            "{}\n{}\n{text}",
            crate::ignore::build::BUILD_ID,
            sources.join(",")
        );
        let checked = store.kv_get(&checked_key)?.is_some_and(|c| c == stamp);
        let part = if checked {
            if let Some(w) = store.kv_get(&warned_key)? {
                report.warnings.extend(w.lines().map(str::to_string));
            }
            Part::Checked {
                path: path.clone(),
                text: text.clone(),
            }
        } else {
            match IgnoreRules::parse_file(&text, &path, expiry_now) {
                Ok(r) => {
                    let warned = r.unknown_sources(&sources);
                    if !dry_run {
                        store.kv_set(&warned_key, &warned.join("\n"))?;
                    }
                    report.warnings.extend(warned);
                    Part::Parsed(r)
                }
                Err(e) => {
                    rules_fallback(
                        store, &key, &path, e.problems, expiry_now, report, &mut parts,
                    )?;
                    continue;
                }
            }
        };
        if !dry_run {
            if store.kv_get(&key)?.as_deref() != Some(text.as_str()) {
                store.kv_set(&key, &text)?;
            }
            // After the last good text: the stamp vouches for that text only.
            if !checked {
                store.kv_set(&checked_key, &stamp)?;
            }
        }
        parts.push(part);
    }
    Ok(LazyRules::new(parts, expiry_now))
}

/// A rules file that cannot be read or has a bad rule: its problems reported, its
/// last good version applied.
fn rules_fallback(
    store: &Store,
    key: &str,
    path: &std::path::Path,
    problems: Vec<String>,
    now: DateTime<Utc>,
    report: &mut RunReport,
    parts: &mut Vec<Part>,
) -> Result<(), RunError> {
    let cached = store
        .kv_get(key)?
        .and_then(|t| IgnoreRules::parse_file(&t, path, now).ok());
    let fallback = match &cached {
        Some(r) => format!("the last good version applies ({} rules)", r.rules.len()),
        None => "no earlier good version is known: none of its rules apply".into(),
    };
    report.problem(format!(
        "ignore rules file {}: {}; {fallback}",
        path.display(),
        problems.join("; ")
    ));
    parts.extend(cached.map(Part::Parsed));
    Ok(())
}

/// The samples an open incident keeps: its first three and the latest two.
fn merge_samples(old: &[String], new: &[String]) -> Vec<String> {
    let mut out: Vec<String> = old.iter().take(3).cloned().collect();
    let rest: Vec<&String> = old.iter().skip(3).chain(new.iter()).collect();
    out.extend(
        rest.iter()
            .rev()
            .take(MAX_SAMPLES - out.len().min(MAX_SAMPLES))
            .rev()
            .map(|s| (*s).clone()),
    );
    out
}

/// Test hook: `LOGWARDEN_FAULT=<point>` aborts the process at that point, as a crash
/// or a `kill -9` would.
pub(crate) fn fault_point(name: &str) {
    if std::env::var("LOGWARDEN_FAULT").is_ok_and(|v| v == name) {
        crate::errln!("logwarden: LOGWARDEN_FAULT={name}: aborting here");
        std::process::abort();
    }
}

impl RunReport {
    /// Records what keeps this run from its job: an error and a watcher problem.
    pub fn problem(&mut self, text: String) {
        self.errors.push(text.clone());
        self.problems.push(text);
    }

    fn problem_all(&mut self, texts: Vec<String>) {
        for t in texts {
            self.problem(t);
        }
    }

    /// The short summary a run prints.
    pub fn summary(&self, now: DateTime<Utc>) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        if self.busy {
            return "another logwarden run is in progress; this one did nothing\n".into();
        }
        let _ = writeln!(
            s,
            "logwarden run at {}{}",
            store::ts(now),
            if self.dry_run {
                " (dry run: nothing recorded, no investigation, no notification)"
            } else {
                ""
            }
        );
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        if let Some(r) = &self.rebuilt {
            for line in r.summary_lines() {
                let _ = writeln!(s, "  {line}");
            }
        }
        if self.read_again > 0 {
            let _ = writeln!(
                s,
                "  state rebuilt: {} record(s) from before the loss, read again (their source's checkpoint was lost or rolled back): not counted again",
                self.read_again
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "  error: {e}");
        }
        for (g, d) in &self.groups {
            let what = match d {
                Decision::Open { reason, .. } => {
                    if self.dry_run {
                        format!("would open an incident ({reason})")
                    } else {
                        continue;
                    }
                }
                Decision::Update { incident } => {
                    format!("+{} on open incident #{incident}", g.count)
                }
                Decision::Known => format!("{}× known, seen recently", g.count),
            };
            let _ = writeln!(
                s,
                "  [{}] {} `{}`: {what}",
                g.level.name,
                g.signature,
                first_line(&g.template)
            );
        }
        for (id, sev, title, path) in &self.opened {
            // a title is log text: a line break in it would read as another summary line
            let title = crate::sanitize::line(title);
            let _ = writeln!(s, "  new incident #{id} [{sev}] {title}\n    → {path}");
        }
        for (id, rules) in &self.escalated {
            let _ = writeln!(s, "  incident #{id} escalated by: {rules}");
        }
        for id in &self.quiet_noise {
            let _ = writeln!(
                s,
                "  incident #{id} judged noise: notified quietly, no reminders"
            );
        }
        for (id, level, severity, paged) in &self.rose {
            let _ = writeln!(
                s,
                "  incident #{id} now {severity} (level {}){}",
                incident::lifecycle::shown_level(level),
                if *paged { ", notified again" } else { "" }
            );
        }
        for (id, n) in &self.spiked {
            let _ = writeln!(s, "  incident #{id} spiked ({n} this run): notified once");
        }
        for id in &self.resolved {
            let _ = writeln!(s, "  incident #{id} resolved: quiet for its resolve period");
        }
        for (id, n) in &self.nagged {
            let _ = writeln!(s, "  incident #{id} unacknowledged: reminder #{n} queued");
        }
        if let Some(b) = &self.briefing {
            let _ = writeln!(s, "  weekly briefing written: {b}");
        }
        for (id, why) in &self.not_diagnosed {
            let _ = writeln!(s, "  incident #{id} not diagnosed: {why}");
        }
        for note in &self.llm_notes {
            let _ = writeln!(s, "  {note}");
        }
        for line in self.metrics.summary_lines() {
            let _ = writeln!(s, "  {line}");
        }
        for line in self.control.summary_lines() {
            let _ = writeln!(s, "  {line}");
        }
        for line in &self.actions.lines {
            let _ = writeln!(s, "  {line}");
        }
        for line in self.notify.dead_lines() {
            let _ = writeln!(s, "  {line}");
        }
        if !self.dry_run {
            let n = &self.notify;
            let _ = writeln!(
                s,
                "  notifications: {} sent, {} failed (kept for the next run){}{}; {} waiting",
                n.sent,
                n.failed,
                if n.skipped > 0 {
                    format!(", {} not sent (no ntfy configured)", n.skipped)
                } else {
                    String::new()
                },
                n.extra(),
                self.outbox_backlog
            );
        }
        let _ = writeln!(
            s,
            "done in {} ms: {} lines read, {} warnings/errors kept, {} ignored, {} groups, {} new incidents, {} LLM calls{}, {} errors",
            self.duration_ms,
            self.lines,
            self.events_kept,
            self.ignored,
            self.groups.len(),
            if self.dry_run {
                self.groups.iter().filter(|(_, d)| matches!(d, Decision::Open { .. })).count()
            } else {
                self.opened.len()
            },
            self.llm_calls,
            match self.prompt_tokens.checked_div(self.llm_calls) {
                Some(each) => format!(" (~{} prompt tokens, {each} per call)", self.prompt_tokens),
                None => String::new(),
            },
            self.errors.len()
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sources: &[(&str, &str)]) -> Config {
        let text: String = sources
            .iter()
            .map(|(name, path)| format!("[[source]]\nname = \"{name}\"\npath = \"{path}\"\n"))
            .collect();
        Config::parse(&text, std::path::Path::new("/etc/logwarden/logwarden.toml")).unwrap()
    }

    fn seen(name: &str, path: &str, run: i64) -> (String, String, i64) {
        let c = config(&[(name, path)]);
        (name.to_string(), c.sources[0].identity(), run)
    }

    #[test]
    fn a_rename_is_a_source_of_the_last_run_that_reads_the_same() {
        let c = config(&[("web", "app.log"), ("db", "db.log")]);
        let web = &c.sources[0];
        let last = [seen("app", "app.log", 7), seen("db", "db.log", 7)];
        assert_eq!(renamed_from(&c, web, &last), Some("app"));
        // Not in the last run's config (removed for a while): a new source.
        let stale = [seen("app", "app.log", 6), seen("db", "db.log", 7)];
        assert_eq!(renamed_from(&c, web, &stale), None);
        // Another file, or no history at all.
        assert_eq!(
            renamed_from(
                &c,
                web,
                &[seen("app", "old.log", 7), seen("db", "db.log", 7)]
            ),
            None
        );
        assert_eq!(renamed_from(&c, web, &[]), None);
        // A source still configured is not renamed, even when another reads the same.
        let both = config(&[("web", "app.log"), ("app", "app.log")]);
        assert_eq!(renamed_from(&both, &both.sources[0], &last), None);
        // Two old names, or two new ones, for one file: which is which is unknown.
        let two_old = [seen("app", "app.log", 7), seen("app2", "app.log", 7)];
        assert_eq!(renamed_from(&c, web, &two_old), None);
        let two_new = config(&[("web", "app.log"), ("www", "app.log")]);
        assert_eq!(renamed_from(&two_new, &two_new.sources[0], &last), None);
    }
}
