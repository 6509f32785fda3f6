//! The queue between the watcher and the action unit (`runner = "queue"`).
//!
//! The watcher (unprivileged, read-only system) never runs an action: it writes each
//! approved request as `<state_dir>/actions/queue/<request>.json`. `logwarden act`,
//! run as root by `logwarden-act.service` when that folder is not empty, trusts none of
//! it: it takes only the request id, the action id and the parameters, checks them
//! again against the root-owned config (kill switch, allow-list, mode, regexes) and
//! against its own ledger in a folder only root writes (daily cap, cooldown), builds
//! the argv itself, runs it as the action's `run_as` or else as the state dir's owner,
//! and writes `<state_dir>/actions/results/<request>.json`. The next watch run records
//! the outcome. Nothing the action unit may do flows back to the watcher but that file.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ActionsReport, Outcome};
use crate::config::actions::Mode;
use crate::config::Config;
use crate::fsio::NewFile;
use crate::store::{self, ActionRequest, Store};

/// What the watcher hands over.
#[derive(Debug, Serialize, Deserialize)]
struct Queued {
    request: i64,
    incident: i64,
    action: String,
    params: BTreeMap<String, String>,
    approved_by: String,
    /// When the watcher queued it: past [`NO_RESULT_AFTER`] the watcher has given up
    /// on it, so the action unit must not run it (absent in files of older builds).
    #[serde(default)]
    queued_at: Option<DateTime<Utc>>,
}

/// The largest queue or result file read: they are small, and whoever writes them
/// must not make the other side read megabytes.
const MAX_FILE: u64 = 256 * 1024;

fn dir(config: &Config) -> PathBuf {
    config.state_dir.join("actions")
}

pub fn queue_dir(config: &Config) -> PathBuf {
    dir(config).join("queue")
}

fn results_dir(config: &Config) -> PathBuf {
    dir(config).join("results")
}

/// Writes an approved request for the action unit.
pub fn enqueue(config: &Config, r: &ActionRequest, now: DateTime<Utc>) -> Result<(), String> {
    let q = queue_dir(config);
    crate::fsio::create_dir(&q)?;
    let item = Queued {
        request: r.id,
        incident: r.incident_id,
        action: r.action_id.clone(),
        params: super::params_of(&r.params),
        approved_by: r.decided_by.clone().unwrap_or_default(),
        queued_at: Some(now),
    };
    let text = serde_json::to_string(&item).map_err(|e| e.to_string())?;
    crate::fsio::replace(
        &q.join(format!("{}.json", r.id)),
        text.as_bytes(),
        NewFile::DirOwner(0o640),
    )
}

/// The request ids of the `<n>.json` files of a folder, ascending. A folder that is
/// a symlink is refused: the action unit must not be pointed elsewhere.
fn numbered(dir: &Path) -> Result<Vec<(i64, PathBuf)>, String> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(format!(
                "{} is not a folder (a symlink?): refused",
                dir.display()
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    }
    let mut v = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_suffix(".json")
            .and_then(|n| n.parse::<i64>().ok().filter(|x| x.to_string() == n))
        else {
            continue;
        };
        v.push((n, e.path()));
    }
    v.sort();
    Ok(v)
}

fn read_small(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = crate::fsio::open_no_follow(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text)
}

/// The watcher's side: records what the action unit wrote back.
pub fn collect(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    rep: &mut ActionsReport,
) -> store::Result<()> {
    let files = match numbered(&results_dir(config)) {
        Ok(f) => f,
        Err(e) => {
            rep.lines.push(format!("action results: {e}"));
            return Ok(());
        }
    };
    for (id, path) in files {
        let parsed: Result<Outcome, String> = read_small(&path)
            .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("not a result: {e}")));
        // A result that comes after the watcher gave up on it is recorded all the same:
        // the action ran.
        let r = store
            .request(id)?
            .filter(|r| r.status == "queued" || given_up(r));
        if let Some(r) = r.as_ref().filter(|r| given_up(r)) {
            rep.lines.push(format!(
                "incident #{}: action {}: the action unit's result came after the watcher had given up on it",
                r.incident_id,
                super::describe(r)
            ));
        }
        match (r, parsed) {
            (Some(r), Ok(o)) => {
                let inc = store.incident(r.incident_id)?;
                let def = config.actions.get(&r.action_id);
                match (&o.refused, def, inc) {
                    (Some(why), _, _) => refused(store, &r, why, now, rep)?,
                    (None, Some(def), Some(inc)) => {
                        super::record(config, store, &r, def, &inc, &o, now, rep)?
                    }
                    (None, _, _) => refused(
                        store,
                        &r,
                        "ran, but the action or its incident is gone from the watcher",
                        now,
                        rep,
                    )?,
                }
            }
            (Some(r), Err(e)) => refused(
                store,
                &r,
                &format!("the action unit's result is unreadable: {e}"),
                now,
                rep,
            )?,
            (None, _) => rep.lines.push(format!(
                "action result {} names no queued request: removed",
                path.display()
            )),
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// How long a queued request may wait for the action unit's result: its unit's
/// `TimeoutStartSec`. Past it the request is failed, so that its incident is not held
/// "in flight" forever by a result that will never come (the unit is not installed,
/// or could not write it).
const NO_RESULT_AFTER: chrono::Duration = chrono::Duration::hours(2);

/// How a request given up on for want of a result starts its reason.
const NO_RESULT: &str = "no result from the action unit within 2h";

/// Whether the watcher gave up on a queued request that may still have run.
fn given_up(r: &ActionRequest) -> bool {
    r.status == "failed"
        && r.exit_code.is_none()
        && r.verify_result
            .as_deref()
            .is_some_and(|w| w.starts_with(NO_RESULT))
}

/// Takes back what the action unit has not taken yet: a request queued for too long
/// (the unit is not installed, or stopped) and one whose incident was resolved since.
/// The watcher writes the queue folder, so a file it removes is a request that never
/// runs; one already gone was taken by the unit, whose result is recorded when it comes.
pub fn give_up_on_lost(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    rep: &mut ActionsReport,
) -> store::Result<()> {
    for r in store.requests_in("queued")? {
        let lost = r.started_at.is_some_and(|t| t + NO_RESULT_AFTER <= now);
        let resolved = store
            .incident(r.incident_id)?
            .is_none_or(|i| i.status == "resolved");
        if !lost && !resolved {
            continue;
        }
        let file = queue_dir(config).join(format!("{}.json", r.id));
        let withdrawn = match std::fs::remove_file(&file) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                rep.lines.push(format!(
                    "incident #{}: action {}: cannot take it back from the queue: cannot remove {}: {e}",
                    r.incident_id,
                    super::describe(&r),
                    file.display()
                ));
                continue;
            }
        };
        let (status, why) = match (withdrawn, lost) {
            (true, false) => (
                "refused",
                "taken back from the queue before the action unit ran it: its incident is resolved".to_string(),
            ),
            // The unit has it (running, or about to write its result): wait for that.
            (false, false) => continue,
            (true, true) => (
                "failed",
                format!("{NO_RESULT} (is logwarden-act.path installed and enabled? see `journalctl -u logwarden-act.service`); taken back from the queue, so it never runs"),
            ),
            (false, true) => (
                "failed",
                format!("{NO_RESULT}, though the unit took it (see `journalctl -u logwarden-act.service`); a result that comes later is still recorded"),
            ),
        };
        store.set_request_status(r.id, status, Some(&why))?;
        store.add_note(
            r.incident_id,
            "logwarden",
            &format!("Action {} (request {}): {why}.", super::describe(&r), r.id),
            now,
        )?;
        rep.lines.push(format!(
            "incident #{}: action {}: {why}",
            r.incident_id,
            super::describe(&r)
        ));
        rep.touched.push(r.incident_id);
        if lost {
            if let Some(def) = config.actions.get(&r.action_id) {
                super::breaker(config, store, def, now, rep)?;
            }
        }
    }
    Ok(())
}

fn refused(
    store: &Store,
    r: &ActionRequest,
    why: &str,
    now: DateTime<Utc>,
    rep: &mut ActionsReport,
) -> store::Result<()> {
    store.set_request_status(r.id, "refused", Some(why))?;
    store.add_note(
        r.incident_id,
        "logwarden",
        &format!(
            "Action {} (request {}) not run by the action unit: {why}.",
            super::describe(r),
            r.id
        ),
        now,
    )?;
    rep.lines.push(format!(
        "incident #{}: action {} refused by the action unit: {why}",
        r.incident_id,
        super::describe(r)
    ));
    rep.touched.push(r.incident_id);
    Ok(())
}

/// The action unit's own record of runs: `{action id: [unix seconds]}`.
type Ledger = BTreeMap<String, Vec<i64>>;

fn ledger_path(config: &Config) -> PathBuf {
    config.actions.act_state_dir.join("ledger.json")
}

/// `logwarden act`: runs what the queue holds, each after checking it again. Returns
/// one line per request.
pub fn act(config: &Config, now: DateTime<Utc>) -> Result<Vec<String>, String> {
    let q = queue_dir(config);
    let items = numbered(&q)?;
    let mut lines = Vec::new();
    if items.is_empty() {
        return Ok(lines);
    }
    // Whom an action without `run_as` runs as: the state dir's owner (the watcher's
    // user), never root by default.
    let owner = std::fs::metadata(&config.state_dir)
        .map(|m| (m.uid(), m.gid()))
        .map_err(|e| format!("cannot read {}: {e}", config.state_dir.display()))?;
    crate::fsio::create_dir(&config.actions.act_state_dir)?;
    let mut ledger: Ledger = crate::fsio::read_optional(&ledger_path(config))?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let results = results_dir(config);
    for (id, path) in items {
        let text = read_small(&path);
        // Taken off the queue before anything runs: a crash never runs it twice.
        std::fs::remove_file(&path)
            .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        let outcome = match text.and_then(|t| {
            serde_json::from_str::<Queued>(&t).map_err(|e| format!("not a request: {e}"))
        }) {
            Ok(item) if item.request == id => run_one(config, &item, &mut ledger, owner, now),
            Ok(_) => refusal("the file's name and request differ", now),
            Err(e) => refusal(&e, now),
        };
        lines.push(match &outcome.refused {
            Some(why) => format!("request {id}: refused: {why}"),
            None => format!("request {id}: ran {:?}: {}", outcome.argv, outcome.said),
        });
        // The ledger first: a cap must hold even if the result cannot be written.
        crate::fsio::replace(
            &ledger_path(config),
            serde_json::to_string(&ledger)
                .unwrap_or_default()
                .as_bytes(),
            NewFile::DirOwner(0o600),
        )?;
        crate::fsio::create_dir(&results)?;
        let text = serde_json::to_string(&outcome).map_err(|e| e.to_string())?;
        let file = results.join(format!("{id}.json"));
        crate::fsio::write_under(&config.state_dir, &file, &text)?;
        crate::fsio::adopt(&file)?;
    }
    Ok(lines)
}

fn refusal(why: &str, now: DateTime<Utc>) -> Outcome {
    Outcome {
        argv: Vec::new(),
        started: now,
        exit: None,
        output: String::new(),
        ms: 0,
        said: String::new(),
        refused: Some(why.chars().take(300).collect()),
    }
}

fn run_one(
    config: &Config,
    item: &Queued,
    ledger: &mut Ledger,
    owner: (u32, u32),
    now: DateTime<Utc>,
) -> Outcome {
    let cfg = &config.actions;
    if !cfg.enabled {
        return refusal("actions are disabled (`actions.enabled = false`)", now);
    }
    if let Some(t) = item.queued_at.filter(|t| *t + NO_RESULT_AFTER <= now) {
        return refusal(
            &format!(
                "it was queued at {}, too long ago: the watcher has given up on it",
                t.format("%Y-%m-%dT%H:%MZ")
            ),
            now,
        );
    }
    let Some(def) = cfg.get(&item.action) else {
        return refusal("it is not an allow-listed action", now);
    };
    if def.mode == Mode::Suggest || def.dry_run {
        return refusal("the action's mode is `suggest` or it is a dry run", now);
    }
    if let Err(why) = super::check_params(def, &item.params) {
        return refusal(&why, now);
    }
    let runs = ledger.entry(def.id.clone()).or_default();
    let day = (now - chrono::Duration::days(1)).timestamp();
    runs.retain(|t| *t > day);
    if runs.len() as u64 >= u64::from(def.max_per_day) {
        return refusal(
            &format!(
                "its daily cap is reached (max_per_day = {})",
                def.max_per_day
            ),
            now,
        );
    }
    let cool = def.cooldown.as_secs() as i64;
    if runs.iter().any(|t| *t + cool > now.timestamp()) {
        return refusal("its cooldown has not passed", now);
    }
    runs.push(now.timestamp());
    let argv = super::argv(def, &item.params);
    let run = super::run_argv(def, &argv, item.incident, Some(owner));
    Outcome::of(config, def, &argv, run, now)
}
