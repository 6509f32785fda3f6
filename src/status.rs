//! `logwarden status`: the last runs, open incidents, outbox backlog and budget, as a
//! compact table or as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::config::Config;
use crate::store::{DeadLetter, OpenIncident, RunSummary, Store};

/// What `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub database: String,
    pub runs: Vec<RunSummary>,
    pub open_incidents: Vec<OpenIncident>,
    pub outbox_backlog: u64,
    /// Notifications set aside in the last 7 days after ntfy refused them repeatedly.
    pub undeliverable: u64,
    /// The latest of them.
    pub dead_letters: Vec<DeadLetter>,
    /// USD left in the LLM budget; null while budgets are not tracked.
    pub budget_left_usd: Option<f64>,
    /// The size of the prompts sent in the last 24 hours.
    pub prompt_tokens_24h: PromptTokens,
    /// What the last run could not do (notified as a watcher problem); null when none.
    pub watcher_problem: Option<crate::incident::watcher::Problem>,
}

/// Estimated prompt tokens (bytes / 4) of the LLM calls of the last 24 hours.
#[derive(Debug, Serialize)]
pub struct PromptTokens {
    pub calls: u64,
    pub average: u64,
    pub largest: u64,
}

/// Reads the status from the state database (None when no run has created it yet).
pub fn collect(
    config: &Config,
    last: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<Status>> {
    let path = config.database_path();
    if !path.exists() {
        return Ok(None);
    }
    let store = Store::open(&path)?;
    let (undeliverable, dead_letters) = store.dead_letters(now - chrono::Duration::days(7), 5)?;
    let (calls, average, largest) = store.prompt_tokens_day(now)?;
    Ok(Some(Status {
        database: path.display().to_string(),
        runs: store.recent_runs(last)?,
        open_incidents: store.open_incidents()?,
        outbox_backlog: store.outbox_backlog()?,
        undeliverable,
        dead_letters,
        budget_left_usd: match config.investigator {
            crate::config::InvestigatorConfig::None => None,
            _ => Some(store.budget_left(config.llm.max_usd_per_day, now)?),
        },
        prompt_tokens_24h: PromptTokens {
            calls,
            average,
            largest,
        },
        watcher_problem: crate::incident::watcher::current(&store)?,
    }))
}

/// The status as a compact table.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    if let Some(p) = &s.watcher_problem {
        let _ = writeln!(
            out,
            "WATCHER PROBLEM since {} (notified {}):",
            crate::store::ts(p.since),
            crate::store::ts(p.notified_at)
        );
        for line in &p.problems {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "Last runs ({}):", s.database);
    if s.runs.is_empty() {
        let _ = writeln!(out, "  no runs yet");
    } else {
        let _ = writeln!(
            out,
            "  {:<20} {:>8} {:>7} {:>8} {:>4} {:>7} {:>7} {:>6}",
            "started (UTC)", "duration", "lines", "triggers", "LLM", "tokens", "cost $", "errors"
        );
        for r in &s.runs {
            let _ = writeln!(
                out,
                "  {:<20} {:>8} {:>7} {:>8} {:>4} {:>7} {:>7.2} {:>6}",
                r.started_at,
                format_ms(r.duration_ms),
                r.lines_read,
                r.triggers,
                r.llm_calls,
                r.prompt_tokens,
                r.cost_usd,
                r.errors
            );
            if let Some(first) = r.error_text.lines().next().filter(|l| !l.is_empty()) {
                let _ = writeln!(out, "      error: {first}");
            }
        }
    }
    let _ = writeln!(out, "Open incidents: {}", s.open_incidents.len());
    for i in &s.open_incidents {
        let _ = writeln!(
            out,
            "  #{:<4} {:<8} {:>5}×  last {}  {}",
            i.id, i.severity, i.occurrences, i.last_seen, i.title
        );
    }
    let _ = writeln!(
        out,
        "Outbox backlog: {} notification{} waiting",
        s.outbox_backlog,
        if s.outbox_backlog == 1 { "" } else { "s" }
    );
    if s.undeliverable > 0 {
        let _ = writeln!(
            out,
            "Undeliverable notifications (last 7 days): {} (ntfy refused them repeatedly; a notice about each was queued, and is listed here too when ntfy refused it as well)",
            s.undeliverable
        );
        for d in &s.dead_letters {
            let inc = d
                .incident_id
                .map(|i| format!(" incident #{i}"))
                .unwrap_or_default();
            let why: String = d.error.chars().take(160).collect();
            let _ = writeln!(out, "  {} {}{inc}: {}", d.dead_at, d.kind, why);
        }
    }
    let t = &s.prompt_tokens_24h;
    if t.calls > 0 {
        let _ = writeln!(
            out,
            "Prompt size (last 24 h): ~{} tokens per investigation on average over {} call{}, largest ~{}",
            t.average,
            t.calls,
            if t.calls == 1 { "" } else { "s" },
            t.largest
        );
    }
    let _ = match s.budget_left_usd {
        Some(b) => writeln!(out, "Budget left: ${b:.2}"),
        None => writeln!(out, "Budget left: no LLM investigator configured"),
    };
    out
}

fn format_ms(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}
