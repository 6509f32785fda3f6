//! Investigation: asking an investigator what a triggered incident is. `none` gives
//! the evidence only; `claude-cli` runs Claude Code non-interactively (`claude -p`)
//! with no tools of its own but logwarden's, served over MCP by `logwarden mcp`, a
//! timeout that kills its whole process group, and parses the JSON verdict it is asked
//! to end with; `anthropic-api` calls the Messages API directly with its own tool loop.
//! Both backends use the same read-only, redacting tool layer ([`tools`]).
//!
//! Before any call: verdict memory, the breaker and the budgets ([`budget`]) may say
//! no; the evidence ([`evidence`]) is gathered within its token budget; the prompt
//! ([`prompt`]) is rendered and redacted. Every call is counted in the store before it
//! is made, and every verdict is remembered. A failed or skipped investigation never
//! stops the incident from being written and notified.

pub mod anthropic_api;
pub mod budget;
pub mod claude_cli;
pub mod evidence;
pub mod exec;
pub mod mcp;
pub mod prompt;
pub mod tools;
pub mod verdict;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, InvestigatorConfig};
use crate::store::{IncidentRow, Store};

pub use evidence::{RunContext, RunGroup};

/// What an investigator concluded (or why it could not).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// `none`, `claude-cli`, `anthropic-api`
    pub backend: String,
    /// Whether a verdict was obtained.
    pub diagnosed: bool,
    /// real | noise | unsure
    pub verdict: String,
    /// info | warning | critical
    pub severity: String,
    pub title: String,
    pub summary: String,
    pub root_cause: String,
    pub suggested_fix: String,
    pub confidence: Option<f64>,
    /// Why there is no diagnosis (`timed out after 5m`, `exit status 1: …`).
    pub error: Option<String>,
    pub cost_usd: Option<f64>,
    pub num_turns: Option<u32>,
    /// Tool uses Claude asked for and was refused.
    #[serde(default)]
    pub permission_denials: Vec<serde_json::Value>,
    /// Whether an LLM was called (for the run's figures).
    pub llm_called: bool,
    /// Set when the LLM was not asked: `budget`, `breaker` or `recurring-noise`.
    #[serde(default)]
    pub skipped: Option<String>,
    /// The prompt's estimated size in tokens (system, first message and tool
    /// definitions, bytes / 4), when one was sent: what the evidence budget, the
    /// folding of same-shape records and the short instructions are judged by.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// The allow-listed actions the investigator proposes: untrusted, each one is
    /// checked against the allow-list before it is even shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ProposedAction>,
}

/// An action named in a verdict, as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProposedAction {
    pub id: String,
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub reason: String,
}

fn backend_name(i: &InvestigatorConfig) -> &'static str {
    match i {
        InvestigatorConfig::None => "none",
        InvestigatorConfig::ClaudeCli(_) => "claude-cli",
        InvestigatorConfig::AnthropicApi(_) => "anthropic-api",
    }
}

/// Investigates one incident with the configured backend.
pub fn investigate(
    config: &Config,
    store: &Store,
    incident: &IncidentRow,
    ctx: &RunContext,
    now: DateTime<Utc>,
) -> Diagnosis {
    let backend = backend_name(&config.investigator);
    let mut d = if backend == "none" {
        Diagnosis {
            error: Some(
                "no investigator configured (investigator.kind = \"none\"); the evidence is below"
                    .into(),
            ),
            ..Diagnosis::default()
        }
    } else {
        ask(config, store, backend, incident, ctx, now)
    };
    d.backend = backend.into();
    if !d.diagnosed {
        d.verdict = "unsure".into();
        d.severity = incident.severity.clone();
        d.title = incident.title.clone();
    }
    d
}

fn ask(
    config: &Config,
    store: &Store,
    backend: &str,
    inc: &IncidentRow,
    ctx: &RunContext,
    now: DateTime<Utc>,
) -> Diagnosis {
    let fail = |e: String| Diagnosis {
        error: Some(e),
        ..Diagnosis::default()
    };
    let left = match budget::check(config, store, backend, inc, now) {
        Ok(budget::Gate::Skip(skip)) => {
            return Diagnosis {
                error: Some(skip.describe(backend)),
                skipped: Some(skip.tag().into()),
                ..Diagnosis::default()
            }
        }
        Ok(budget::Gate::Go { usd_left }) => usd_left,
        Err(e) => return fail(format!("budget check failed: {e}")),
    };
    let evidence = evidence::for_incident(config, store, inc, ctx, now);
    let reason = match store.verdicts(&inc.signature) {
        Ok(v) if !v.is_empty() => "back after a quiet period",
        _ => "never seen before",
    };
    let prompt = match prompt::TriggerKind::from_incident_kind(&inc.kind) {
        prompt::TriggerKind::Spike => prompt::spike(config, inc, "unknown", "unknown", &evidence),
        // Metric incidents bring the facts of the finding they were opened on.
        k @ (prompt::TriggerKind::MetricThreshold
        | prompt::TriggerKind::Anomaly
        | prompt::TriggerKind::Disk
        | prompt::TriggerKind::Queue
        | prompt::TriggerKind::ApiRate) => crate::metrics::prompt(config, store, inc, k, &evidence),
        // The metric triggers bring their own facts when they land; until then every
        // other incident is a log error group.
        _ => prompt::new_error(config, inc, reason, &evidence),
    };
    let mut prompt = match prompt {
        Ok(p) => p,
        Err(e) => return fail(format!("prompt could not be built: {e}")),
    };
    prompt.add_system_section(&crate::actions::prompt_section(config, inc));
    // The tool definitions go with every request too, and cost as much as a section.
    let tools = tools::Tools {
        config,
        store,
        incident: Some(inc.clone()),
        evidence: String::new(),
        nonce: prompt.nonce.clone(),
        now: now.timestamp(),
    }
    .api_definitions();
    let prompt_tokens = (evidence::tokens(&prompt.system)
        + evidence::tokens(&prompt.user)
        + evidence::tokens(&serde_json::Value::from(tools).to_string()))
        as u64;
    // The day's dollar limit is a ceiling, not a line to cross by one more call: a call
    // runs only when its worst case fits in what is left, or is held to what is left.
    let allowance = match &config.investigator {
        InvestigatorConfig::ClaudeCli(cli) => claude_cli::allowance(cli, left),
        InvestigatorConfig::AnthropicApi(api) => anthropic_api::allowance(api, prompt_tokens, left),
        InvestigatorConfig::None => unreachable!("handled by the caller"),
    };
    let allowance = match allowance {
        Ok(a) => a,
        Err(why) => {
            let skip = budget::Skip::Budget(why);
            return Diagnosis {
                error: Some(skip.describe(backend)),
                skipped: Some(skip.tag().into()),
                ..Diagnosis::default()
            };
        }
    };
    let call = match store.begin_llm_call(now, backend, Some(inc.id), &inc.signature, prompt_tokens)
    {
        Ok(id) => id,
        Err(e) => return fail(format!("cannot record the LLM call: {e}")),
    };
    let mut d = match &config.investigator {
        InvestigatorConfig::ClaudeCli(cli) => {
            claude_cli::run(cli, config, &prompt, inc, &evidence, allowance)
        }
        InvestigatorConfig::AnthropicApi(api) => anthropic_api::run(
            api,
            config,
            store,
            &prompt,
            inc,
            &evidence,
            now.timestamp(),
            allowance,
        ),
        InvestigatorConfig::None => unreachable!("handled by the caller"),
    };
    d.prompt_tokens = Some(prompt_tokens);
    let _ = store.finish_llm_call(
        call,
        d.diagnosed,
        d.cost_usd.unwrap_or(0.0),
        d.error.as_deref(),
    );
    // What comes back may quote what the investigator read with its tools.
    let red = &config.redact.redactor;
    for f in [
        &mut d.title,
        &mut d.summary,
        &mut d.root_cause,
        &mut d.suggested_fix,
    ] {
        *f = red.clean(f);
    }
    if let Some(e) = &d.error {
        d.error = Some(red.clean(e));
    }
    for a in &mut d.actions {
        a.reason = red.clean(&a.reason);
    }
    // The refused tool calls are shown on the page cut to 200 characters: their
    // inputs are redacted here, before any cut.
    for p in &mut d.permission_denials {
        redact_json(red, p);
    }
    // A "noise" verdict keeps its incident quiet and its signature uninvestigated
    // later: one not sure enough (or with no confidence) counts as unsure instead.
    if d.diagnosed
        && d.verdict == "noise"
        && d.confidence
            .is_none_or(|c| c < config.escalation.noise_confidence)
    {
        d.verdict = "unsure".into();
    }
    if d.diagnosed {
        let _ = store.record_verdict(
            &inc.signature,
            inc.id,
            &d.verdict,
            &d.severity,
            &inc.level,
            budget::level_no(config, &inc.source, &inc.level),
            inc.occurrences,
            backend,
            if d.title.is_empty() {
                &inc.title
            } else {
                &d.title
            },
            now,
        );
    }
    d
}

/// One line per kind of skip, for the run summary (`3 incident(s) not investigated: …`),
/// with the latest reason of each kind.
pub fn summarize_skips(diagnoses: &[Diagnosis]) -> Vec<String> {
    let mut lines: Vec<(&str, String, u32)> = Vec::new();
    for d in diagnoses {
        let Some(tag) = d.skipped.as_deref() else {
            continue;
        };
        let why = d.error.clone().unwrap_or_default();
        match lines.iter_mut().find(|(t, _, _)| *t == tag) {
            Some(l) => {
                l.1 = why;
                l.2 += 1;
            }
            None => lines.push((tag, why, 1)),
        }
    }
    lines
        .into_iter()
        .map(|(_, why, n)| format!("investigator: {n} incident(s) {why}"))
        .collect()
}

/// Redacts every string inside a JSON value (keys stay).
fn redact_json(red: &crate::redact::Redactor, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(c) = red.redact(s) {
                *s = c;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_json(red, x)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| redact_json(red, x)),
        _ => {}
    }
}
