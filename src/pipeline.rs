//! One watch cycle: read → signature → ignore → trigger → incident → investigate →
//! notify → commit.
//!
//! Durability: what was read is committed together with the incidents it opens (stage
//! `new`) and the checkpoints, in one transaction. Investigation, the incident file
//! and the notification follow, each step recorded as it finishes; a run that dies
//! midway leaves incidents that the next run finishes. An incident file is found again
//! by the id in its front matter, so a crash after writing it never makes a second one.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::ignore::IgnoreRules;
use crate::investigate::{self, Diagnosis};
use crate::signature::{signature, Miner, Signature};
use crate::source::{self, Event, Level};
use crate::store::{self, NewIncident, RunRow, Store};
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
}

/// The warnings and errors of one signature in this run.
#[derive(Debug, Clone)]
pub struct Group {
    pub signature: Signature,
    pub template: String,
    pub source: String,
    pub level: Level,
    pub exception_type: Option<String>,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub count: u64,
    pub samples: Vec<String>,
}

/// What a run did, for the summary and the runs table.
#[derive(Debug, Default)]
pub struct RunReport {
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
    pub not_diagnosed: Vec<(i64, String)>,
    pub notify: notify::Flush,
    pub outbox_backlog: u64,
    pub warnings: Vec<String>,
    /// What the investigator skipped and why (budget, breaker, recurring noise).
    pub llm_notes: Vec<String>,
    /// Problems with one source or step; the run went on without it.
    pub errors: Vec<String>,
    pub duration_ms: u64,
    /// Issue 5: what the metric checks did.
    pub metrics: crate::metrics::MetricsReport,
    /// Issue 7: Ack and Mute from the phone (the ntfy control topic).
    pub control: notify::control::ControlReport,
}

/// Errors that stop a run: the watcher itself is broken.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Ignore(#[from] crate::ignore::IgnoreFileError),
}

/// Runs one watch cycle.
pub fn run(config: &Config, opts: &RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let now = opts.now;
    let mut report = RunReport {
        dry_run: opts.dry_run,
        ..RunReport::default()
    };
    prepare_dirs(config)?;
    let Some(_lock) =
        lock::acquire(&config.state_dir, std::time::Duration::from_secs(3)).map_err(|e| {
            RunError::Io(format!(
                "cannot take the run lock in {}: {e}",
                config.state_dir.display()
            ))
        })?
    else {
        report.busy = true;
        return Ok(report);
    };
    let mut store = Store::open(&config.database_path())?;
    // Issue 7: acks and mutes from the phone, before the ignore rules load (a mute holds now).
    if !opts.dry_run {
        report.control = notify::control::poll_and_apply(config, &store, now);
    }
    let ignore = IgnoreRules::load(&config.ignore_file, now)?;
    let mut miner = Miner::import(store.templates()?);

    // read → signature → ignore
    let ReadResult {
        groups,
        checkpoints,
        forget,
        ignore_hits,
    } = read_sources(config, &store, &mut miner, &ignore, now, &mut report)?;

    // trigger
    for g in groups {
        let seen = store.signature(&g.signature.to_string())?;
        let open = store.open_incident(&g.signature.to_string())?;
        let d = trigger::decide(seen.as_ref(), open.as_ref(), now, config.renotify_after);
        report.groups.push((g, d));
    }
    if opts.dry_run {
        // Issue 5: metric checks in a dry run: scripts run, nothing is kept.
        report.metrics = crate::metrics::run_checks(config, &mut store, now, None, false, true)?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    // commit what was read, with the incidents it opens
    let run_id = {
        let batch = store.batch()?;
        let run_id = batch.insert_run(&RunRow {
            started_at: store::ts(now),
            lines_read: report.lines,
            events_kept: report.events_kept,
            triggers: report
                .groups
                .iter()
                .filter(|(_, d)| matches!(d, Decision::Open { .. }))
                .count() as u64,
            ..RunRow::default()
        })?;
        for cp in &checkpoints {
            batch.save_checkpoint(cp, now)?;
        }
        for (source, key) in &forget {
            batch.forget_checkpoint(source, key)?;
        }
        batch.save_templates(&miner.take_dirty())?;
        batch.record_ignore_hits(&ignore_hits, now)?;
        for (g, d) in &report.groups {
            let sig = g.signature.to_string();
            batch.record_signature(
                &sig,
                &g.template,
                &g.source,
                &g.level.name,
                g.exception_type.as_deref(),
                g.first,
                g.last,
                g.count,
            )?;
            match d {
                Decision::Open { .. } => {
                    batch.insert_incident(&new_incident(config, g), now, run_id)?;
                }
                Decision::Update { incident } => {
                    batch.add_occurrences(*incident, g.count, g.last, now)?;
                    report.updated.push((*incident, g.count));
                }
                Decision::Known => {}
            }
        }
        batch.commit()?;
        run_id
    };

    // Issue 5: metric checks open, update and resolve metric incidents; the new ones are
    // filed below like any other, the updated and resolved ones get their file rewritten.
    report.metrics =
        crate::metrics::run_checks(config, &mut store, now, Some(run_id), false, false)?;
    let touched = report.metrics.updated.iter().copied();
    let touched = touched.chain(report.metrics.resolved.iter().map(|r| r.0));
    report
        .updated
        .extend(touched.map(|id| (id, 0)).collect::<Vec<_>>());

    // investigate → incident file → queue the notification
    file_unfinished(config, &mut store, now, &mut report)?;
    refresh_updated(config, &store, &mut report);

    // notify
    report.notify = notify::flush(&store, config.ntfy.as_ref(), now)?;
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
    Ok(report)
}

/// Issue 5: `logwarden metrics check`: runs every metric check now (due or not), and
/// files, updates and resolves metric incidents as a run would. Recorded as a run.
pub fn check_metrics(config: &Config, opts: &RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let now = opts.now;
    let mut report = RunReport {
        dry_run: opts.dry_run,
        ..RunReport::default()
    };
    prepare_dirs(config)?;
    let Some(_lock) = lock::acquire(&config.state_dir, std::time::Duration::from_secs(3))
        .map_err(|e| RunError::Io(format!("cannot take the run lock: {e}")))?
    else {
        report.busy = true;
        return Ok(report);
    };
    let mut store = Store::open(&config.database_path())?;
    let run_id = if opts.dry_run {
        None
    } else {
        let batch = store.batch()?;
        let id = batch.insert_run(&RunRow {
            started_at: store::ts(now),
            ..RunRow::default()
        })?;
        batch.commit()?;
        Some(id)
    };
    report.metrics =
        crate::metrics::run_checks(config, &mut store, now, run_id, true, opts.dry_run)?;
    let Some(run_id) = run_id else {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    };
    let touched = report.metrics.updated.iter().copied();
    let touched = touched.chain(report.metrics.resolved.iter().map(|r| r.0));
    report
        .updated
        .extend(touched.map(|id| (id, 0)).collect::<Vec<_>>());
    file_unfinished(config, &mut store, now, &mut report)?;
    refresh_updated(config, &store, &mut report);
    report.notify = notify::flush(&store, config.ntfy.as_ref(), now)?;
    report.outbox_backlog = store.outbox_backlog()?;
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
    Ok(report)
}

fn prepare_dirs(config: &Config) -> Result<(), RunError> {
    for dir in [&config.state_dir, &config.incidents_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| RunError::Io(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// What reading produced: the groups, the new checkpoints, the checkpoints to forget
/// (source, key) and the hits per ignore rule.
struct ReadResult {
    groups: Vec<Group>,
    checkpoints: Vec<source::Checkpoint>,
    forget: Vec<(String, String)>,
    ignore_hits: HashMap<String, u64>,
}

/// Reads every source, grouping what is kept by signature. A source that fails is
/// reported and skipped; its checkpoint does not move.
fn read_sources(
    config: &Config,
    store: &Store,
    miner: &mut Miner,
    ignore: &IgnoreRules,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<ReadResult, RunError> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Signature, usize> = HashMap::new();
    let mut hits: HashMap<String, u64> = HashMap::new();
    let mut checkpoints = Vec::new();
    let mut forget = Vec::new();
    for src in &config.sources {
        let prev = store.checkpoints(&src.name)?;
        let mut kept = 0u64;
        let mut ignored = 0u64;
        let mut sink = |event: Event| {
            let mined = miner.add(&event.message);
            let sig = signature(
                mined.group,
                event.exception_type.as_deref(),
                event.logger.as_deref(),
            );
            if let Some(rule) = ignore.matching(&event, sig) {
                *hits.entry(rule.id.clone()).or_default() += 1;
                ignored += 1;
                return;
            }
            kept += 1;
            let time = event.time.unwrap_or(now);
            let i = *index.entry(sig).or_insert_with(|| {
                groups.push(Group {
                    signature: sig,
                    template: display_template(&mined.template),
                    source: event.source.clone(),
                    level: event.level.clone(),
                    exception_type: event.exception_type.clone(),
                    first: time,
                    last: time,
                    count: 0,
                    samples: Vec::new(),
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
        match source::read(src, &prev, false, now, &mut sink) {
            Ok(r) => {
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
    }
    Ok(ReadResult {
        groups,
        checkpoints,
        forget,
        ignore_hits: hits,
    })
}

fn new_incident(config: &Config, g: &Group) -> NewIncident {
    let severity = match g.level.no {
        n if n >= 50 => "critical",
        n if n >= 40 => "warning",
        _ => "info",
    };
    let title = match &g.exception_type {
        Some(e) if !g.template.contains(e.as_str()) => format!("{}: {e}", first_line(&g.template)),
        _ => first_line(&g.template).to_string(),
    };
    NewIncident {
        signature: g.signature.to_string(),
        kind: "new-error".into(),
        severity: severity.into(),
        // Redacted: the title names the incident file and heads the notification.
        title: config
            .redact
            .redactor
            .clean(&title)
            .chars()
            .take(120)
            .collect(),
        source: g.source.clone(),
        host: config.hostname.clone(),
        level: g.level.name.clone(),
        template: g.template.clone(),
        exception_type: g.exception_type.clone(),
        first_seen: g.first,
        last_seen: g.last,
        occurrences: g.count,
        samples: g.samples.clone(),
    }
}

/// Templates are shown and stored up to 2,000 characters.
fn display_template(t: &str) -> String {
    const MAX: usize = 2000;
    if t.len() <= MAX {
        return t.to_string();
    }
    let mut end = MAX;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &t[..end])
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
    report: &mut RunReport,
) -> Result<(), RunError> {
    let ctx = run_context(report);
    let mut diagnoses = Vec::new();
    for mut inc in store.unfinished_incidents()? {
        if inc.stage == "new" {
            let d = investigate::investigate(config, store, &inc, &ctx, now);
            diagnoses.push(d.clone());
            if d.llm_called {
                report.llm_calls += 1;
            }
            let title = if d.diagnosed && !d.title.is_empty() {
                d.title.clone()
            } else {
                inc.title.clone()
            };
            let severity = if d.diagnosed {
                d.severity.clone()
            } else {
                inc.severity.clone()
            };
            let verdict = if d.diagnosed {
                d.verdict.clone()
            } else {
                "unsure".to_string()
            };
            store.set_diagnosis(
                inc.id,
                &serde_json::to_value(&d).expect("diagnosis serialises"),
                &severity,
                &verdict,
                &title,
            )?;
            inc.diagnosis = Some(serde_json::to_value(&d).expect("diagnosis serialises"));
            inc.title = title;
            inc.severity = severity;
            inc.verdict = verdict;
            inc.stage = "investigated".into();
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
        let path = incident::path_for(&config.incidents_dir, &inc);
        let metric = crate::metrics::incident_section(store, &inc, &path); // issue 5
        incident::write(
            &path,
            &render_page(config, &inc, d.as_ref(), metric.as_deref()),
        )
        .map_err(|e| RunError::Io(format!("incident #{}: {e}", inc.id)))?;
        fault_point("after-incident-file");
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let summary = match &d {
            Some(d) if d.diagnosed => d.summary.clone(),
            Some(d) => format!(
                "Not diagnosed: {}",
                d.error.as_deref().unwrap_or("unknown reason")
            ),
            None => String::new(),
        };
        let note = redact_note(config, notify::for_incident(&inc, &summary, &file_name));
        let batch = store.batch()?;
        batch.file_incident(inc.id, &path.display().to_string(), &note, now)?;
        batch.commit()?;
        report.opened.push((
            inc.id,
            inc.severity.clone(),
            inc.title.clone(),
            path.display().to_string(),
        ));
    }
    report.llm_notes = investigate::summarize_skips(&diagnoses);
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
                level: g.level.name.clone(),
                count: g.count,
            })
            .collect(),
    }
}

/// An incident page, redacted unless `[redact] incident_files = false`.
fn render_page(
    config: &Config,
    inc: &store::IncidentRow,
    d: Option<&Diagnosis>,
    metric: Option<&str>,
) -> String {
    let page = incident::render_with_metric(inc, d, metric);
    if config.redact.incident_files {
        config.redact.redactor.clean(&page)
    } else {
        page
    }
}

/// A notification with its title and body redacted: it leaves the host.
fn redact_note(config: &Config, mut n: store::Notification) -> store::Notification {
    let r = &config.redact.redactor;
    n.title = r.clean(&n.title);
    n.body = notify::cap(&r.clean(&n.body), notify::MAX_BODY);
    n
}

/// Rewrites the files of open incidents that got new occurrences (front matter counts).
fn refresh_updated(config: &Config, store: &Store, report: &mut RunReport) {
    for (id, _) in report.updated.clone() {
        let Ok(Some(inc)) = store.incident(id) else {
            continue;
        };
        let Some(path) = inc.file_path.clone() else {
            continue;
        };
        let d: Option<Diagnosis> = inc
            .diagnosis
            .clone()
            .and_then(|v| serde_json::from_value(v).ok());
        let path = std::path::Path::new(&path);
        let metric = crate::metrics::incident_section(store, &inc, path); // issue 5
        if let Err(e) = incident::write(
            path,
            &render_page(config, &inc, d.as_ref(), metric.as_deref()),
        ) {
            report.errors.push(format!("incident #{id}: {e}"));
        }
    }
}

/// Test hook: `LOGWARDEN_FAULT=<point>` aborts the process at that point, as a crash
/// or a `kill -9` would.
fn fault_point(name: &str) {
    if std::env::var("LOGWARDEN_FAULT").is_ok_and(|v| v == name) {
        eprintln!("logwarden: LOGWARDEN_FAULT={name}: aborting here");
        std::process::abort();
    }
}

impl RunReport {
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
        for e in &self.errors {
            let _ = writeln!(s, "  error: {e}");
        }
        for (g, d) in &self.groups {
            let what = match d {
                Decision::Open { reason } => {
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
            let _ = writeln!(s, "  new incident #{id} [{sev}] {title}\n    → {path}");
        }
        for (id, why) in &self.not_diagnosed {
            let _ = writeln!(s, "  incident #{id} not diagnosed: {why}");
        }
        for note in &self.llm_notes {
            let _ = writeln!(s, "  {note}");
        }
        for line in self.metrics.summary_lines() {
            let _ = writeln!(s, "  {line}"); // issue 5
        }
        for line in self.control.summary_lines() {
            let _ = writeln!(s, "  {line}"); // issue 7
        }
        if !self.dry_run {
            let n = &self.notify;
            let _ = writeln!(
                s,
                "  notifications: {} sent, {} failed (kept for the next run), {} not sent (no ntfy configured){}; {} waiting",
                n.sent, n.failed, n.skipped, n.extra(), self.outbox_backlog
            );
        }
        let _ = writeln!(
            s,
            "done in {} ms: {} lines read, {} warnings/errors kept, {} ignored, {} groups, {} new incidents, {} LLM calls, {} errors",
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
            self.errors.len()
        );
        s
    }
}
