//! Self-monitoring: after each `logwarden run`, the node_exporter textfile (when
//! `metrics_textfile` is set), written atomically; and a run that fails is itself
//! reported through ntfy with a direct publish (best effort, not through the outbox,
//! which lives in the state that may be what is broken).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::pipeline::{RunError, RunReport};
use crate::store::{OutboxRow, Store};

/// What the textfile says about one run.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub success: bool,
    pub duration_seconds: f64,
    pub lines_read: u64,
    pub open_incidents: Option<u64>,
    pub outbox_backlog: Option<u64>,
    pub llm_calls: u64,
    pub llm_cost_usd: f64,
    pub notify_failures: u64,
    pub run_time: i64,
    pub last_success_time: Option<i64>,
}

/// Called after every run: writes the textfile and, for a failed run, pages.
/// Returns the lines to print on stderr (problems of the self-monitoring itself).
pub fn after_run(
    config: &Config,
    now: DateTime<Utc>,
    result: &Result<RunReport, RunError>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Ok(r) = result {
        if r.busy || r.dry_run {
            return problems;
        }
    }
    if let Some(path) = &config.metrics_textfile {
        let m = metrics(config, now, result, path);
        if let Err(e) = write_textfile(path, &render(&m)) {
            problems.push(format!("metrics_textfile {}: {e}", path.display()));
        }
    }
    if let Err(e) = result {
        // Through the outbox when the state database works: rate-limited like every
        // watcher problem (a run failing every 5 minutes pages once, then daily).
        match queue_failure(config, now, &e.to_string()) {
            Ok(()) => problems.push("the failure was queued as a watcher problem".into()),
            Err(_) => match report_failure(config, now, &e.to_string()) {
                Ok(Direct::Sent) => problems.push("the failure was reported through ntfy".into()),
                Ok(Direct::Already(at)) => problems.push(format!(
                    "a failure was reported through ntfy at {}: the next report waits a day",
                    crate::store::ts(at)
                )),
                Ok(Direct::NoNtfy) => {}
                Err(n) => problems.push(format!("could not report the failure through ntfy: {n}")),
            },
        }
    }
    problems
}

/// Records a failed run as a watcher problem and sends what the outbox holds.
fn queue_failure(config: &Config, now: DateTime<Utc>, error: &str) -> Result<(), String> {
    let db = config.database_path();
    if !db.exists() {
        return Err("no state database".into());
    }
    // Sent under the run lock (a run going on meanwhile sends it with its own).
    let lock = crate::lock::acquire(&config.state_dir, std::time::Duration::from_secs(1), now)
        .map_err(|e| e.to_string())?;
    let store = Store::open(&db).map_err(|e| e.to_string())?;
    let problem = format!("the run failed, nothing is watched: {error}");
    let sent = crate::incident::watcher::update(config, &store, &[problem], now)
        .map_err(|e| e.to_string())?;
    // A run holding the lock is normally the one to send; but when the failure is
    // that this run is stuck, nobody else will: send what is due now.
    let due = !matches!(sent, crate::incident::watcher::Sent::None);
    if matches!(lock, crate::lock::Acquired::Got(_)) || due {
        crate::notify::flush(&store, config.ntfy.as_ref(), &config.hostname, now)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn metrics(
    config: &Config,
    now: DateTime<Utc>,
    result: &Result<RunReport, RunError>,
    path: &Path,
) -> Metrics {
    let run_time = now.timestamp();
    match result {
        Ok(r) => {
            let store = Store::open(&config.database_path()).ok();
            Metrics {
                success: true,
                duration_seconds: r.duration_ms as f64 / 1000.0,
                lines_read: r.lines,
                open_incidents: store
                    .as_ref()
                    .and_then(|s| s.open_incidents().ok())
                    .map(|v| v.len() as u64),
                outbox_backlog: Some(r.outbox_backlog),
                llm_calls: r.llm_calls,
                llm_cost_usd: store
                    .as_ref()
                    .and_then(|s| s.recent_runs(1).ok())
                    .and_then(|runs| runs.first().map(|r| r.cost_usd))
                    .unwrap_or(0.0),
                notify_failures: r.notify.failed,
                run_time,
                last_success_time: Some(run_time),
            }
        }
        Err(_) => Metrics {
            success: false,
            run_time,
            last_success_time: previous_success(path),
            ..Metrics::default()
        },
    }
}

/// The last success time recorded in an earlier textfile.
fn previous_success(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        l.strip_prefix("logwarden_last_success_timestamp_seconds ")
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The textfile in Prometheus' text exposition format.
pub fn render(m: &Metrics) -> String {
    let mut s = String::new();
    let mut gauge = |name: &str, help: &str, value: String| {
        let _ = writeln!(
            s,
            "# HELP logwarden_{name} {help}\n# TYPE logwarden_{name} gauge\nlogwarden_{name} {value}"
        );
    };
    gauge(
        "last_run_success",
        "1 if the last run completed, 0 if it failed.",
        u8::from(m.success).to_string(),
    );
    gauge(
        "last_run_timestamp_seconds",
        "When the last run started (Unix time).",
        m.run_time.to_string(),
    );
    if let Some(t) = m.last_success_time {
        gauge(
            "last_success_timestamp_seconds",
            "When the last successful run started (Unix time).",
            t.to_string(),
        );
    }
    gauge(
        "run_duration_seconds",
        "Duration of the last run.",
        format!("{:.3}", m.duration_seconds),
    );
    gauge(
        "lines_read",
        "Log lines read by the last run.",
        m.lines_read.to_string(),
    );
    if let Some(n) = m.open_incidents {
        gauge("open_incidents", "Incidents currently open.", n.to_string());
    }
    if let Some(n) = m.outbox_backlog {
        gauge(
            "outbox_backlog",
            "Notifications waiting to be sent.",
            n.to_string(),
        );
    }
    gauge(
        "llm_calls",
        "Investigator calls made by the last run.",
        m.llm_calls.to_string(),
    );
    gauge(
        "llm_cost_usd",
        "Investigator cost of the last run in USD.",
        format!("{:.4}", m.llm_cost_usd),
    );
    gauge(
        "notify_failures",
        "Notifications that failed to send in the last run.",
        m.notify_failures.to_string(),
    );
    s
}

/// Writes through a temporary file in the same folder and a rename, so the collector
/// never reads half a file.
fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".logwarden-")
        .suffix(".prom.tmp")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What became of a failure reported outside the state database.
enum Direct {
    Sent,
    /// Reported at that time, less than a reminder interval ago.
    Already(DateTime<Utc>),
    NoNtfy,
}

/// Publishes "the run failed" straight to ntfy, once a day while it lasts: a run that
/// cannot write its state (a full disk) fails every few minutes, and each would page.
fn report_failure(config: &Config, now: DateTime<Utc>, error: &str) -> Result<Direct, String> {
    use crate::incident::watcher;
    let Some(n) = &config.ntfy else {
        return Ok(Direct::NoNtfy);
    };
    // A mark "after now" was made while the clock ran ahead: how long ago is unknown.
    if let Some(at) = watcher::reported_directly(config) {
        if at <= now && now - at < watcher::REMINDER {
            return Ok(Direct::Already(at));
        }
    }
    let row = OutboxRow {
        id: 0,
        incident_id: None,
        title: format!("[{}] logwarden run failed", config.hostname),
        body: format!(
            "The watcher itself is broken: no log is being watched until this is fixed.\n\n```\n{}\n```\n\nOn the host: `logwarden doctor` and `journalctl -u logwarden.service`.",
            crate::notify::cap(&config.redact.redactor.clean(error), 3000)
        ),
        priority: 4,
        tags: "warning,logwarden".into(),
        attempts: 0,
        created_at: now,
        severity: "warning".into(),
        kind: "selfmon".into(),
    };
    crate::notify::publish(n, &row)?;
    // Without the mark (no inode left either) every failed run pages: better than none.
    let _ = watcher::mark_reported_directly(config, now);
    Ok(Direct::Sent)
}
