//! Allow-listed repair actions: the investigator proposes, logwarden decides.
//!
//! An action is a fixed argv the team wrote into the config (`[[action]]`), with
//! optional parameters that must each match their regex in full. A verdict may name
//! action ids with parameters and a reason; anything not allow-listed, not meant for
//! this incident (`when`), or with a parameter outside its regex is dropped and the
//! incident's Log says so. Without a verdict, actions without parameters whose `when`
//! matches are attached by rule.
//!
//! What is kept becomes a request: `suggest` actions are only shown; `approve` ones
//! wait for a signed Approve from the phone (or `logwarden actions approve`) until
//! `approval_timeout`, then are rejected; `auto` ones (only `safe = true`) are approved
//! at once. Every check is made again just before running: the action is still
//! allow-listed, the kill switch is on, the action is not suspended, its parameters
//! still match, its daily cap and cooldown allow it, and the incident has no other
//! action in flight. It runs through [`crate::process`] with argv only (never a
//! shell), a clean environment and its deadline. Its `verify` (a check that must be
//! ok, or the signature quiet for N runs) decides whether the incident resolves; an
//! action that fails twice in a row is suspended and the phone is told.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub mod queue;

use crate::config::actions::{placeholders, ActionDef, Mode, Runner, Verify};
use crate::config::Config;
use crate::investigate::Diagnosis;
use crate::store::{self, ActionRequest, IncidentRow, NewRequest, Store};

/// The kv key prefix of a suspended action (the circuit breaker).
const SUSPENDED: &str = "actions.suspended.";
/// Who an approval of an `auto` action is recorded as.
pub const AUTO: &str = "auto (safe action)";
/// The author of the Log entries about actions.
const AUTHOR: &str = "logwarden";

/// What the actions step of a run did.
#[derive(Debug, Default)]
pub struct ActionsReport {
    pub lines: Vec<String>,
    /// Incidents whose page changed.
    pub touched: Vec<i64>,
    /// Incidents resolved by a verified action.
    pub resolved: Vec<i64>,
}

impl ActionsReport {
    /// What happened to a request, told twice: `note` on its incident's Log (the page
    /// changes) and `line` in the run's summary.
    fn log(
        &mut self,
        store: &Store,
        incident: i64,
        note: &str,
        line: String,
        now: DateTime<Utc>,
    ) -> store::Result<()> {
        store.add_note(incident, AUTHOR, note, now)?;
        self.lines.push(line);
        self.touched.push(incident);
        Ok(())
    }
}

/// Whether an action is meant for an incident: each list given must hold it.
pub fn applies(def: &ActionDef, inc: &IncidentRow) -> bool {
    let w = &def.when;
    let check = inc.source.strip_prefix("check:");
    let sig_ok = w.signatures.is_empty() || w.signatures.contains(&inc.signature);
    let src_ok = w.sources.is_empty() || w.sources.contains(&inc.source);
    let check_ok = w.checks.is_empty() || check.is_some_and(|c| w.checks.iter().any(|x| x == c));
    sig_ok && src_ok && check_ok
}

/// The longest parameter value an action takes, in characters.
pub const MAX_PARAM_CHARS: usize = 1000;

/// Checks parameters against the action's: the same names, each value matching its
/// regex in full, none that could pass for an option, carry control characters or be
/// longer than [`MAX_PARAM_CHARS`].
pub fn check_params(def: &ActionDef, params: &BTreeMap<String, String>) -> Result<(), String> {
    for name in params.keys() {
        if !def.params.contains_key(name) {
            return Err(format!(
                "parameter `{}` is not one of the action's",
                crate::sanitize::md_inline(name)
            ));
        }
    }
    for (name, re) in &def.params {
        let Some(v) = params.get(name) else {
            return Err(format!("parameter `{name}` is missing"));
        };
        if v.starts_with('-') {
            return Err(format!(
                "parameter `{name}` starts with `-` (it could pass for an option)"
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(format!("parameter `{name}` holds control characters"));
        }
        if v.chars().count() > MAX_PARAM_CHARS {
            return Err(format!(
                "parameter `{name}` is longer than {MAX_PARAM_CHARS} characters"
            ));
        }
        if !re.is_match(v) {
            return Err(format!(
                "parameter `{name}` = `{}` does not match its regex `{}`",
                crate::sanitize::md_inline(&v.chars().take(100).collect::<String>()),
                re.as_str()
                    .trim_start_matches(r"\A(?:")
                    .trim_end_matches(r")\z")
            ));
        }
    }
    Ok(())
}

/// The argv with the parameters in place (checked by [`check_params`] first).
pub fn argv(def: &ActionDef, params: &BTreeMap<String, String>) -> Vec<String> {
    def.argv
        .iter()
        .map(|a| {
            let mut out = a.clone();
            for p in placeholders(a) {
                if let Some(v) = params.get(&p) {
                    out = out.replace(&format!("{{{p}}}"), v);
                }
            }
            out
        })
        .collect()
}

/// The digest of a request's parameters that an Approve is bound to.
pub fn params_digest(params: &serde_json::Value) -> String {
    let text = serde_json::to_string(params).unwrap_or_default();
    let d = Sha256::digest(text.as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Parameters as stored (JSON object of strings) back into a map.
pub fn params_of(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn show_params(p: &BTreeMap<String, String>) -> String {
    if p.is_empty() {
        return String::new();
    }
    let list: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("{k}={}", v.chars().take(200).collect::<String>()))
        .collect();
    format!(" ({})", crate::sanitize::md_inline(&list.join(", ")))
}

/// One line naming a request: `recreate-healthcheck (path=/run/app/healthy)`.
pub fn describe(r: &ActionRequest) -> String {
    format!("`{}`{}", r.action_id, show_params(&params_of(&r.params)))
}

/// Whether an action is suspended by the circuit breaker, and why.
pub fn suspended(store: &Store, id: &str) -> store::Result<Option<String>> {
    store
        .kv_get(&format!("{SUSPENDED}{id}"))
        .map(|v| v.filter(|s| !s.is_empty()))
}

/// Lifts a suspension (`logwarden actions resume`).
pub fn resume(store: &Store, id: &str) -> store::Result<bool> {
    let was = suspended(store, id)?.is_some();
    store.kv_set(&format!("{SUSPENDED}{id}"), "")?;
    Ok(was)
}

/// The system prompt's section listing the actions allowed for this incident; empty
/// when none is, since the system prompt allows only what such a list names and every
/// proposal is checked against the allow-list anyway.
pub fn prompt_section(config: &Config, inc: &IncidentRow) -> String {
    let allowed: Vec<&ActionDef> = config
        .actions
        .actions
        .iter()
        .filter(|a| applies(a, inc))
        .collect();
    if allowed.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n\n## Allowed actions\n\nYou may propose, in `actions`, only these (by id), and only when it would help, each as `{\"id\": \"…\", \"params\": {\"name\": \"value\"}, \"reason\": \"why\"}`. Parameters must match their pattern in full. logwarden checks every proposal and a person approves it; anything else is dropped.\n\n",
    );
    for a in allowed {
        let params: Vec<String> = a
            .params
            .iter()
            .map(|(k, re)| {
                format!(
                    "`{k}` matching `{}`",
                    re.as_str()
                        .trim_start_matches(r"\A(?:")
                        .trim_end_matches(r")\z")
                )
            })
            .collect();
        s.push_str(&format!(
            "- `{}`: {}{}\n",
            a.id,
            if a.description.is_empty() {
                "(no description)"
            } else {
                &a.description
            },
            if params.is_empty() {
                String::new()
            } else {
                format!("; parameters: {}", params.join(", "))
            }
        ));
    }
    s
}

/// Turns a new incident's proposals (the verdict's, else the rules') into requests,
/// and writes each decision to its Log. Returns lines for its notification.
pub fn propose(
    config: &Config,
    store: &Store,
    inc: &IncidentRow,
    d: Option<&Diagnosis>,
    now: DateTime<Utc>,
) -> store::Result<Vec<String>> {
    let cfg = &config.actions;
    let mut lines = Vec::new();
    let note = |text: &str| store.add_note(inc.id, AUTHOR, text, now);
    let mut candidates: Vec<(String, BTreeMap<String, String>, String, &str)> = Vec::new();
    match d.filter(|d| d.diagnosed) {
        Some(d) => {
            for p in &d.actions {
                candidates.push((
                    p.id.clone(),
                    p.params.clone(),
                    p.reason.clone(),
                    "investigator",
                ));
            }
        }
        None => {
            for a in cfg
                .actions
                .iter()
                .filter(|a| a.params.is_empty() && applies(a, inc))
            {
                candidates.push((
                    a.id.clone(),
                    BTreeMap::new(),
                    "attached by rule (`when` matches)".into(),
                    "rule",
                ));
            }
        }
    }
    for (id, params, reason, by) in candidates {
        let shown_id = crate::sanitize::md_inline(&id.chars().take(100).collect::<String>());
        let dropped = |why: String| {
            format!(
                "Proposed action `{shown_id}`{} dropped: {why}.",
                show_params(&params)
            )
        };
        let Some(def) = cfg.get(&id) else {
            note(&dropped("it is not an allow-listed action".into()))?;
            continue;
        };
        if !applies(def, inc) {
            note(&dropped(
                "it is not allowed for this incident (`when`)".into(),
            ))?;
            continue;
        }
        if let Err(why) = check_params(def, &params) {
            note(&dropped(why))?;
            continue;
        }
        if let Some(why) = suspended(store, &def.id)? {
            note(&dropped(format!("the action is suspended ({why})")))?;
            continue;
        }
        let (status, expires, decided_by) = if !cfg.enabled || def.mode == Mode::Suggest {
            ("suggested", None, None)
        } else if store.request_in_flight(inc.id)?.is_some() {
            note(&dropped(
                "another action for this incident is in flight (one at a time)".into(),
            ))?;
            continue;
        } else if def.mode == Mode::Auto {
            ("approved", None, Some(AUTO.to_string()))
        } else {
            let t = chrono::Duration::from_std(cfg.approval_timeout)
                .unwrap_or(chrono::Duration::minutes(30));
            ("pending", Some(now + t), None)
        };
        let params_json = serde_json::to_string(&params).unwrap_or_else(|_| "{}".into());
        let req = store.insert_request(
            &NewRequest {
                incident_id: inc.id,
                action_id: def.id.clone(),
                params: params_json,
                reason: reason.clone(),
                proposed_by: by.into(),
                status: status.into(),
                expires_at: expires,
                decided_by,
            },
            now,
        )?;
        let what = format!("`{}`{}", def.id, show_params(&params));
        let reason = crate::sanitize::md_inline(&reason);
        let (text, line) = match status {
            "suggested" if !cfg.enabled => (
                format!("Action {what} proposed by the {by} (request {req}): {reason}. Not run: actions are disabled (`actions.enabled = false`)."),
                format!("Suggested action: {what} (actions are disabled)"),
            ),
            "suggested" => (
                format!("Action {what} suggested by the {by} (request {req}): {reason}. Its mode is `suggest`: it is not run by logwarden."),
                format!("Suggested action: {what}: {reason}"),
            ),
            "approved" => (
                format!("Action {what} proposed by the {by} (request {req}): {reason}. A safe `auto` action: approved without asking."),
                format!("Action {what} runs automatically (safe): {reason}"),
            ),
            _ => {
                let until = expires.map(store::ts).unwrap_or_default();
                (
                    format!("Action {what} proposed by the {by} (request {req}): {reason}. Waiting for approval until {until} (Approve on the phone, or `logwarden actions approve {req}`); rejected if unanswered."),
                    format!("Proposed action: {what}: {reason}. Approve before {until}, or it is rejected."),
                )
            }
        };
        note(&text)?;
        lines.push(line);
    }
    Ok(lines)
}

/// The outcome of an Approve or Reject.
#[derive(Debug)]
pub enum Decided {
    /// Applied: what to report.
    Done(String),
    /// Valid, but changes nothing (already decided).
    Noop(String),
    /// Refused (unknown request, expired, another incident's).
    Refused(String),
}

/// Approves or rejects a pending request: from the phone (a verified control message)
/// or the CLI. `incident`: the incident the message was signed for.
pub fn decide(
    config: &Config,
    store: &Store,
    request: i64,
    incident: Option<i64>,
    approve: bool,
    by: &str,
    now: DateTime<Utc>,
) -> store::Result<Decided> {
    let verb = if approve { "approve" } else { "reject" };
    let Some(r) = store.request(request)? else {
        return Ok(Decided::Refused(format!(
            "{verb} of request {request}: no such request"
        )));
    };
    if incident.is_some_and(|i| i != r.incident_id) {
        return Ok(Decided::Refused(format!(
            "{verb} of request {request}: it is not for incident #{}",
            incident.unwrap_or_default()
        )));
    }
    if r.status != "pending" {
        return Ok(Decided::Noop(format!(
            "{verb} of request {request} ({}) for incident #{}: it is {}, not waiting for a decision",
            describe(&r),
            r.incident_id,
            r.status
        )));
    }
    if r.expires_at.is_some_and(|t| t <= now) {
        expire_one(config, store, &r, now, Some((verb, by)))?;
        return Ok(Decided::Refused(format!(
            "{verb} of request {request} for incident #{}: too late, it expired at {} and was rejected",
            r.incident_id,
            r.expires_at.map(store::ts).unwrap_or_default()
        )));
    }
    let to = if approve { "approved" } else { "rejected" };
    if !store.decide_request(r.id, "pending", to, by, now)? {
        return Ok(Decided::Noop(format!(
            "{verb} of request {request}: decided meanwhile"
        )));
    }
    let text = if approve {
        format!(
            "Action {} (request {}) approved by {by}; it runs on the next run.",
            describe(&r),
            r.id
        )
    } else {
        format!(
            "Action {} (request {}) rejected by {by}.",
            describe(&r),
            r.id
        )
    };
    store.add_note(r.incident_id, AUTHOR, &text, now)?;
    Ok(Decided::Done(format!(
        "incident #{}: action {} (request {}) {to} by {by}",
        r.incident_id,
        describe(&r),
        r.id
    )))
}

/// Rejects a request nobody answered in time, notes it on its incident and tells the
/// phone (quietly). `late`: the answer (`approve`/`reject`, and who) that came after the
/// request expired, so that someone who tapped Approve learns it will not run.
fn expire_one(
    config: &Config,
    store: &Store,
    r: &ActionRequest,
    now: DateTime<Utc>,
    late: Option<(&str, &str)>,
) -> store::Result<bool> {
    let limit = crate::duration::format(config.actions.approval_timeout);
    let by = match late {
        Some((verb, who)) => format!("logwarden ({verb} by {who} came after the {limit} limit)"),
        None => format!("logwarden (no answer within {limit})"),
    };
    if !store.decide_request(r.id, "pending", "expired", &by, now)? {
        return Ok(false);
    }
    let expired_at = r.expires_at.map(store::ts).unwrap_or_default();
    let note = match late {
        Some((verb, who)) => format!(
            "Action {} (request {}) auto-rejected: the {verb} by {who} came after the {limit} limit (it expired at {expired_at}).",
            describe(r),
            r.id,
        ),
        None => format!(
            "Action {} (request {}) auto-rejected: no approval within {limit} (it expired at {expired_at}).",
            describe(r),
            r.id,
        ),
    };
    store.add_note(r.incident_id, AUTHOR, &note, now)?;
    let body = match late {
        Some(("approve", _)) => format!(
            "Incident #{}: the approval of {} came after the {limit} limit; it was not run. Approve it again when it is proposed again.",
            r.incident_id,
            describe(r),
        ),
        _ => format!(
            "Incident #{}: the proposed action {} was not approved within {limit} and will not run.",
            r.incident_id,
            describe(r),
        ),
    };
    let n = store::Notification {
        title: format!("[{}] Action {} auto-rejected", config.hostname, r.action_id),
        body,
        priority: 2,
        tags: "hourglass".into(),
    };
    store.enqueue_kind(Some(r.incident_id), "action", "info", &n, now)?;
    Ok(true)
}

/// The actions step of a run: auto-rejects unanswered requests, runs approved ones,
/// verifies those that ran in an earlier run.
pub fn run_step(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
) -> store::Result<ActionsReport> {
    let mut rep = ActionsReport::default();
    // A run that died while an action ran: its outcome is unknown, and running it
    // again could do twice what was approved once.
    for r in store.requests_in("running")? {
        let why = "interrupted: the run that started it ended before recording the outcome; not run again";
        store.set_request_status(r.id, "failed", Some(why))?;
        rep.log(
            store,
            r.incident_id,
            &format!("Action {} (request {}) {why}.", describe(&r), r.id),
            format!("incident #{}: action {} {why}", r.incident_id, describe(&r)),
            now,
        )?;
        if let Some(def) = config.actions.get(&r.action_id) {
            breaker(config, store, def, now, &mut rep)?;
        }
    }
    for r in store.requests_in("pending")? {
        if r.expires_at.is_some_and(|t| t <= now) && expire_one(config, store, &r, now, None)? {
            rep.lines.push(format!(
                "incident #{}: action {} auto-rejected (no approval within {})",
                r.incident_id,
                describe(&r),
                crate::duration::format(config.actions.approval_timeout)
            ));
            rep.touched.push(r.incident_id);
        }
    }
    verify_all(config, store, now, &mut rep)?;
    // After verifying: what the action unit ran since the last run is judged from the
    // next one, as a direct run is.
    queue::collect(config, store, now, &mut rep)?;
    queue::give_up_on_lost(config, store, now, &mut rep)?;
    for r in store.requests_in("approved")? {
        execute(config, store, &r, now, &mut rep)?;
    }
    Ok(rep)
}

/// Whether an approved request may run now: Err(refusal, final) or Ok(Err(wait)).
fn gate(
    config: &Config,
    store: &Store,
    r: &ActionRequest,
    inc: Option<&IncidentRow>,
    now: DateTime<Utc>,
) -> store::Result<Result<Result<(), String>, String>> {
    let cfg = &config.actions;
    if !cfg.enabled {
        return Ok(Err(
            "actions are disabled (`actions.enabled = false`)".into()
        ));
    }
    let Some(def) = cfg.get(&r.action_id) else {
        return Ok(Err("it is no longer an allow-listed action".into()));
    };
    if def.mode == Mode::Suggest {
        return Ok(Err("its mode is now `suggest`".into()));
    }
    let Some(inc) = inc else {
        return Ok(Err("its incident is unknown".into()));
    };
    // Resolved meanwhile (by hand, or quiet long enough): the repair is not needed.
    if inc.status == "resolved" {
        return Ok(Err("its incident is resolved".into()));
    }
    if !applies(def, inc) {
        return Ok(Err("it is not allowed for this incident (`when`)".into()));
    }
    if let Err(why) = check_params(def, &params_of(&r.params)) {
        return Ok(Err(why));
    }
    if let Some(why) = suspended(store, &def.id)? {
        return Ok(Err(format!("the action is suspended ({why})")));
    }
    if let Some(other) = store.request_in_flight(inc.id)? {
        if other.id != r.id && other.status == "verifying" {
            return Ok(Ok(Err(format!(
                "request {} for this incident is still being verified",
                other.id
            ))));
        }
    }
    let day = now - chrono::Duration::days(1);
    let ran = store.executions_since(&def.id, day)?;
    if ran >= u64::from(def.max_per_day) {
        return Ok(Ok(Err(format!(
            "its daily cap is reached ({ran} of max_per_day = {} in 24h)",
            def.max_per_day
        ))));
    }
    if let Some(last) = store.last_execution(&def.id)? {
        let cool = chrono::Duration::from_std(def.cooldown).unwrap_or_default();
        if last + cool > now {
            return Ok(Ok(Err(format!(
                "its cooldown runs until {}",
                store::ts(last + cool)
            ))));
        }
    }
    Ok(Ok(Ok(())))
}

fn execute(
    config: &Config,
    store: &Store,
    r: &ActionRequest,
    now: DateTime<Utc>,
    rep: &mut ActionsReport,
) -> store::Result<()> {
    let inc = store.incident(r.incident_id)?;
    match gate(config, store, r, inc.as_ref(), now)? {
        Err(why) => {
            store.set_request_status(r.id, "refused", Some(&why))?;
            rep.log(
                store,
                r.incident_id,
                &format!("Action {} (request {}) not run: {why}.", describe(r), r.id),
                format!(
                    "incident #{}: action {} refused: {why}",
                    r.incident_id,
                    describe(r)
                ),
                now,
            )?;
            return Ok(());
        }
        Ok(Err(wait)) => {
            rep.lines.push(format!(
                "incident #{}: action {} waits: {wait}",
                r.incident_id,
                describe(r)
            ));
            return Ok(());
        }
        Ok(Ok(())) => {}
    }
    let def = config.actions.get(&r.action_id).expect("checked by gate");
    let inc = inc.expect("checked by gate");
    let params = params_of(&r.params);
    let argv = argv(def, &params);
    if def.dry_run {
        let why = format!(
            "dry run: would run {} (the action has `dry_run = true`, the default for a new action: check it with `logwarden actions test {}`, then set `dry_run = false`)",
            serde_json::to_string(&argv).unwrap_or_default(),
            def.id
        );
        store.set_request_status(r.id, "dry-run", Some(&why))?;
        rep.log(
            store,
            inc.id,
            &format!(
                "Action {} (request {}): {why}; nothing ran.",
                describe(r),
                r.id
            ),
            format!("incident #{}: action {}: {why}", inc.id, describe(r)),
            now,
        )?;
        return Ok(());
    }
    if config.actions.runner == Runner::Queue {
        // The root action unit runs it; the watcher's rights do not grow.
        if let Err(e) = queue::enqueue(config, r, now) {
            rep.lines.push(format!(
                "incident #{}: action {} not queued (tried again next run): {e}",
                inc.id,
                describe(r)
            ));
            return Ok(());
        }
        store.mark_queued(r.id, now)?;
        rep.log(
            store,
            inc.id,
            &format!(
                "Action {} (request {}, approved by {}) queued for the action unit.",
                describe(r),
                r.id,
                r.decided_by.as_deref().unwrap_or("?")
            ),
            format!(
                "incident #{}: action {} queued for the action unit",
                inc.id,
                describe(r)
            ),
            now,
        )?;
        return Ok(());
    }
    store.mark_running(r.id, now)?;
    let outcome = Outcome::of(config, def, &argv, run_argv(def, &argv, inc.id, None), now);
    crate::pipeline::fault_point("after-action-ran");
    record(config, store, r, def, &inc, &outcome, now, rep)
}

/// How an action's program ended, as recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub argv: Vec<String>,
    pub started: DateTime<Utc>,
    pub exit: Option<i64>,
    /// stdout then stderr, redacted, cut.
    pub output: String,
    pub ms: u64,
    /// `exit code 0`, `killed at its timeout (60s)`, `could not start: …`
    pub said: String,
    /// Set when the action unit refused it (nothing ran).
    #[serde(default)]
    pub refused: Option<String>,
}

impl Outcome {
    pub fn of(
        config: &Config,
        def: &ActionDef,
        argv: &[String],
        run: Result<crate::process::Finished, String>,
        started: DateTime<Utc>,
    ) -> Outcome {
        let red = &config.redact.redactor;
        let (exit, output, ms, said) = match run {
            Ok(f) => {
                let mut out = f.stdout_text();
                out.push_str(&f.stderr_text());
                let out = red.clean(crate::sanitize::text(&out).trim());
                let exit = f.status.and_then(|s| s.code()).map(i64::from);
                let said = if f.timed_out() {
                    format!(
                        "killed at its timeout ({})",
                        crate::duration::format(def.timeout)
                    )
                } else {
                    match exit {
                        Some(c) => format!("exit code {c}"),
                        None => "killed by a signal".into(),
                    }
                };
                (exit, out, f.elapsed.as_millis() as u64, said)
            }
            Err(e) => (None, String::new(), 0, format!("could not start: {e}")),
        };
        Outcome {
            argv: argv.to_vec(),
            started,
            exit,
            output: output.chars().take(4000).collect(),
            ms,
            said,
            refused: None,
        }
    }
}

/// Records how a request ran: the store, the incident's Log, the run's report, and
/// the circuit breaker when it failed.
#[allow(clippy::too_many_arguments)]
fn record(
    config: &Config,
    store: &Store,
    r: &ActionRequest,
    def: &ActionDef,
    inc: &IncidentRow,
    o: &Outcome,
    now: DateTime<Utc>,
    rep: &mut ActionsReport,
) -> store::Result<()> {
    let status = match (o.exit == Some(0), &def.verify) {
        (false, _) => "failed",
        (true, Some(_)) => "verifying",
        (true, None) => "done",
    };
    let argv_json = serde_json::to_string(&o.argv).unwrap_or_default();
    store.record_execution(
        r.id,
        status,
        &argv_json,
        o.started,
        o.exit,
        &o.output,
        o.ms,
        inc.occurrences,
    )?;
    let shown_out = if o.output.is_empty() {
        "no output".to_string()
    } else {
        format!(
            "output: `{}`",
            crate::sanitize::md_inline(&crate::sanitize::line(
                &o.output.chars().take(500).collect::<String>()
            ))
        )
    };
    let after = match (status, &def.verify) {
        ("verifying", Some(Verify::QuietRuns(n))) => {
            format!(" Verifying: the signature must stay quiet for {n} run(s).")
        }
        ("verifying", Some(Verify::Check(c))) => {
            format!(" Verifying: check `{c}` must be ok at its next run.")
        }
        _ => String::new(),
    };
    let said = &o.said;
    let ms = o.ms;
    rep.log(
        store,
        inc.id,
        &format!(
            "Ran action {} (request {}, approved by {}): `{}`{} → {said} in {ms} ms; {shown_out}.{after}",
            describe(r),
            r.id,
            r.decided_by.as_deref().unwrap_or("?"),
            crate::sanitize::md_inline(&o.argv.join(" ")),
            def.run_as
                .as_deref()
                .map(|u| format!(" as {u}"))
                .unwrap_or_default(),
        ),
        format!("incident #{}: ran action {}: {said}", inc.id, describe(r)),
        now,
    )?;
    if status == "failed" {
        breaker(config, store, def, now, rep)?;
    }
    Ok(())
}

/// Runs an argv (no shell) with the action's deadline, a clean environment, from `/`.
/// `fallback`: the uid and gid to run as when the action names no `run_as` (the action
/// unit, as root, drops to the state dir's owner).
fn run_argv(
    def: &ActionDef,
    argv: &[String],
    incident: i64,
    fallback: Option<(u32, u32)>,
) -> Result<crate::process::Finished, String> {
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8")
        .env("LOGWARDEN_ACTION", &def.id)
        .env("LOGWARDEN_INCIDENT", incident.to_string())
        .current_dir("/");
    let target = match &def.run_as {
        Some(user) => Some((user.clone(), lookup_user(user)?)),
        None => fallback.map(|ids| (format!("uid {}", ids.0), ids)),
    };
    if let Some((user, (uid, gid))) = target {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if uid != me {
            if me != 0 {
                return Err(format!(
                    "run_as = \"{user}\" needs logwarden to run as root (it runs as uid {me})"
                ));
            }
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
    }
    crate::process::run(
        cmd,
        None,
        &crate::process::Limits {
            timeout: def.timeout,
            max_stdout: 64 * 1024,
            max_stderr: 64 * 1024,
        },
    )
}

fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let c = std::ffi::CString::new(name).map_err(|_| format!("`{name}` is not a user name"))?;
    // SAFETY: getpwnam reads a NUL-terminated name; the result is copied at once (runs
    // are single-threaded here, nothing else calls getpw* meanwhile).
    unsafe {
        let p = libc::getpwnam(c.as_ptr());
        if p.is_null() {
            return Err(format!("run_as: no user `{name}` on this host"));
        }
        Ok(((*p).pw_uid, (*p).pw_gid))
    }
}

fn verify_all(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    rep: &mut ActionsReport,
) -> store::Result<()> {
    for r in store.requests_in("verifying")? {
        let Some(started) = r.started_at else {
            continue;
        };
        if started >= now {
            continue; // ran in this run: judged from the next one
        }
        let Some(inc) = store.incident(r.incident_id)? else {
            continue;
        };
        let verify = config
            .actions
            .get(&r.action_id)
            .and_then(|d| d.verify.clone());
        let outcome: Option<Result<String, String>> = match verify {
            None => Some(Ok("no verify configured any more".into())),
            Some(Verify::QuietRuns(n)) => {
                let base = store.occurrences_at_start(r.id)?.unwrap_or(inc.occurrences);
                if inc.occurrences > base {
                    Some(Err(format!(
                        "the signature occurred again ({} time(s) since the action ran)",
                        inc.occurrences - base
                    )))
                } else {
                    let q = r.quiet_runs + 1;
                    store.set_quiet_runs(r.id, q)?;
                    (q >= n).then(|| Ok(format!("the signature stayed quiet for {q} run(s)")))
                }
            }
            Some(Verify::Check(c)) => match store.check_last_run(&c)? {
                Some((status, at)) if at > started => {
                    let alerting = store.unresolved_from(&format!("check:{c}"))?;
                    if status == "ok" && alerting == 0 {
                        Some(Ok(format!("check `{c}` is ok (ran at {})", store::ts(at))))
                    } else if status != "ok" {
                        Some(Err(format!(
                            "check `{c}` is {status} (ran at {})",
                            store::ts(at)
                        )))
                    } else {
                        Some(Err(format!(
                            "check `{c}` still alerts (ran at {})",
                            store::ts(at)
                        )))
                    }
                }
                _ => None, // the check has not run since: wait for it
            },
        };
        let Some(outcome) = outcome else { continue };
        rep.touched.push(inc.id);
        match outcome {
            Ok(why) => {
                store.finish_verify(r.id, "verified", &why, now)?;
                store.add_note(
                    inc.id,
                    AUTHOR,
                    &format!(
                        "Verify of action {} (request {}) passed: {why}. The incident is resolved.",
                        describe(&r),
                        r.id
                    ),
                    now,
                )?;
                if store.resolve_incident(
                    inc.id,
                    &format!("logwarden (action {} verified)", r.action_id),
                    now,
                )? {
                    rep.resolved.push(inc.id);
                    rep.lines.extend(
                        crate::ignore::end_mutes(config, inc.id).map(|r| r.unwrap_or_else(|e| e)),
                    );
                }
                rep.lines.push(format!(
                    "incident #{} resolved: action {} verified ({why})",
                    inc.id,
                    describe(&r)
                ));
            }
            Err(why) => {
                store.finish_verify(r.id, "verify-failed", &why, now)?;
                store.add_note(
                    inc.id,
                    AUTHOR,
                    &format!(
                        "Verify of action {} (request {}) failed: {why}.",
                        describe(&r),
                        r.id
                    ),
                    now,
                )?;
                rep.lines.push(format!(
                    "incident #{}: verify of action {} failed: {why}",
                    inc.id,
                    describe(&r)
                ));
                if let Some(def) = config.actions.get(&r.action_id) {
                    breaker(config, store, def, now, rep)?;
                }
            }
        }
    }
    Ok(())
}

/// Suspends an action whose last two runs failed (to run or to verify), and says so.
fn breaker(
    config: &Config,
    store: &Store,
    def: &ActionDef,
    now: DateTime<Utc>,
    rep: &mut ActionsReport,
) -> store::Result<()> {
    let last = store.recent_outcomes(&def.id, 2)?;
    let bad = |s: &String| s == "failed" || s == "verify-failed";
    if last.len() < 2 || !last.iter().all(bad) || suspended(store, &def.id)?.is_some() {
        return Ok(());
    }
    let why = format!(
        "failed twice in a row, suspended at {} (`logwarden actions resume {}` lifts it)",
        store::ts(now),
        def.id
    );
    store.kv_set(&format!("{SUSPENDED}{}", def.id), &why)?;
    rep.lines
        .push(format!("action `{}` suspended: {why}", def.id));
    let n = store::Notification {
        title: format!("[{}] Action {} suspended", config.hostname, def.id),
        body: format!(
            "The action `{}` failed twice in a row (to run or to verify): it is suspended and will not run until `logwarden actions resume {}`.",
            def.id, def.id
        ),
        priority: 4,
        tags: "warning,no_entry".into(),
    };
    store.enqueue_kind(None, "action-suspended", "warning", &n, now)?;
    Ok(())
}

/// `logwarden actions test`: checks an action with parameters as a run would and shows
/// the argv it would run, without running it.
pub fn dry_run(
    config: &Config,
    id: &str,
    params: &BTreeMap<String, String>,
    inc: Option<&IncidentRow>,
) -> Result<Vec<String>, String> {
    let def = config
        .actions
        .get(id)
        .ok_or_else(|| format!("`{id}` is not an allow-listed action"))?;
    if let Some(inc) = inc {
        if !applies(def, inc) {
            return Err(format!(
                "`{id}` is not allowed for incident #{} (`when`)",
                inc.id
            ));
        }
    }
    check_params(def, params)?;
    Ok(argv(def, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(actions: &str) -> Config {
        let text = format!(
            "state_dir = \"/tmp/x\"\n[[source]]\nname = \"app\"\npath = \"/tmp/app.log\"\n{actions}"
        );
        Config::parse(&text, std::path::Path::new("/tmp/logwarden.toml")).unwrap()
    }

    #[test]
    fn params_match_in_full_and_never_look_like_options() {
        let c = config(
            "[[action]]\nid = \"restart\"\nargv = [\"systemctl\", \"restart\", \"{unit}\"]\nparams = { unit = \"app|worker\" }\nwhen = { sources = [\"app\"] }\n",
        );
        let def = c.actions.get("restart").unwrap();
        let p = |v: &str| BTreeMap::from([("unit".to_string(), v.to_string())]);
        assert!(check_params(def, &p("app")).is_ok());
        assert_eq!(argv(def, &p("worker")), ["systemctl", "restart", "worker"]);
        for bad in ["app; rm -rf /", "xapp", "app\n", "--help", ""] {
            assert!(check_params(def, &p(bad)).is_err(), "{bad:?}");
        }
        assert!(check_params(def, &BTreeMap::new()).is_err());
        let mut extra = p("app");
        extra.insert("x".into(), "y".into());
        assert!(check_params(def, &extra).is_err());
    }

    #[test]
    fn when_scopes_an_action_to_its_incidents() {
        let c = config(
            "[[action]]\nid = \"a\"\nargv = [\"true\"]\nwhen = { sources = [\"app\"], signatures = [\"00000000000000aa\"] }\n",
        );
        let def = c.actions.get("a").unwrap();
        let mut inc = IncidentRow {
            source: "app".into(),
            signature: "00000000000000aa".into(),
            ..IncidentRow::default()
        };
        assert!(applies(def, &inc));
        inc.signature = "00000000000000bb".into();
        assert!(!applies(def, &inc));
        inc.signature = "00000000000000aa".into();
        inc.source = "other".into();
        assert!(!applies(def, &inc));
    }
}
