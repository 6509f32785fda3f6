//! `logwarden run` and `logwarden check`: one watch cycle, and the config validated.

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::{print_json, ConfigArg, EXIT_BROKEN, EXIT_PROBLEM};
use crate::config::Config;
use crate::ignore::IgnoreRules;
use crate::pipeline::{self, RunOptions};

pub(super) fn run(
    config: &Config,
    dry_run: bool,
    json: bool,
    now: DateTime<Utc>,
    boot: Option<crate::clock::Boot>,
) -> anyhow::Result<ExitCode> {
    let result = pipeline::run(config, &RunOptions { now, dry_run, boot });
    // The metrics textfile, and a failed run reported through ntfy.
    for line in crate::selfmon::after_run(config, now, &result) {
        crate::errln!("logwarden: {line}");
    }
    let report = result?;
    if json {
        print_json(&run_json(&report, now))?;
    } else {
        crate::out!("{}", report.summary(now));
    }
    Ok(if !report.problems.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(super) fn check(
    arg: &ConfigArg,
    json: bool,
    quiet: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let path = crate::config::locate(arg.config.as_deref());
    tracing::info!("config: {}", path.display());
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) if json => {
            let problems: Vec<String> = e
                .errors
                .iter()
                .map(|p| match p.key.as_str() {
                    "" => p.message.clone(),
                    k => format!("`{k}`: {}", p.message),
                })
                .collect();
            print_json(&serde_json::json!({
                "config": path.display().to_string(),
                "ok": false,
                "problems": problems,
            }))?;
            return Ok(ExitCode::from(EXIT_BROKEN));
        }
        Err(e) => return Err(e.into()),
    };
    let mut problems: Vec<String> =
        crate::investigate::prompt::validate(&config.prompts_dir, config.llm.runbook.as_deref())
            .into_iter()
            .map(|p| format!("prompt template: {p}"))
            .collect();
    let prompts_broken = !problems.is_empty();
    let files = config.rule_files();
    let rules = IgnoreRules::load_all(&[&files[0], &files[1]], now);
    if let Err(e) = &rules {
        problems.extend(
            e.problems
                .iter()
                .map(|p| format!("{}: {p}", e.path.display())),
        );
    }
    let sources: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    let idle = rules
        .as_ref()
        .map(|r| r.unknown_sources(&sources))
        .unwrap_or_default();
    problems.extend(idle.iter().cloned());
    let code = if prompts_broken {
        ExitCode::from(EXIT_BROKEN)
    } else if rules.is_err() || !idle.is_empty() {
        // The watcher runs on with the file's last good version: a problem, not
        // a broken logwarden.
        ExitCode::from(EXIT_PROBLEM)
    } else {
        ExitCode::SUCCESS
    };
    if json {
        print_json(&serde_json::json!({
            "config": config.path.display().to_string(),
            "ok": problems.is_empty(),
            "problems": problems,
        }))?;
        return Ok(code);
    }
    if let Err(e) = &rules {
        crate::errln!("{e}");
    }
    for w in &idle {
        crate::errln!("warning: {w}");
    }
    if prompts_broken || rules.is_err() {
        for p in problems
            .iter()
            .filter(|p| p.starts_with("prompt template: "))
        {
            crate::errln!("{p}");
        }
        return Ok(code);
    }
    crate::out!("{config}");
    if !quiet {
        if idle.is_empty() {
            crate::errln!("config OK");
        } else {
            crate::errln!("config OK, but some ignore rules match nothing (above)");
        }
    }
    Ok(code)
}

/// `run --json`: what the run did (schema in the README).
fn run_json(r: &pipeline::RunReport, now: DateTime<Utc>) -> serde_json::Value {
    use crate::trigger::Decision;
    let groups: Vec<serde_json::Value> = r
        .groups
        .iter()
        .map(|(g, d)| {
            let (decision, incident) = match d {
                Decision::Open { .. } => ("open", None),
                Decision::Update { incident } => ("update", Some(*incident)),
                Decision::Known => ("known", None),
            };
            serde_json::json!({
                "signature": g.signature.to_string(),
                "source": g.source,
                "level": g.level.name,
                "count": g.count,
                "template": g.template.lines().next().unwrap_or(""),
                "decision": decision,
                "incident": incident,
            })
        })
        .collect();
    let opened: Vec<serde_json::Value> = r
        .opened
        .iter()
        .map(|(id, severity, title, page)| {
            serde_json::json!({"id": id, "severity": severity, "title": title, "page": page})
        })
        .collect();
    serde_json::json!({
        "now": crate::store::ts(now),
        "busy": r.busy,
        "dry_run": r.dry_run,
        "lines": r.lines,
        "kept": r.events_kept,
        "ignored": r.ignored,
        "groups": groups,
        "opened": opened,
        "updated": r.updated.iter().map(|(id, n)| serde_json::json!({"id": id, "count": n})).collect::<Vec<_>>(),
        "resolved": r.resolved,
        "actions": r.actions.lines,
        "llm_calls": r.llm_calls,
        "prompt_tokens": r.prompt_tokens,
        "notifications": {
            "sent": r.notify.sent,
            "failed": r.notify.failed,
            "not_sent": r.notify.skipped,
            "waiting": r.outbox_backlog,
        },
        "warnings": r.warnings,
        "errors": r.errors,
        "problems": r.problems,
        "duration_ms": r.duration_ms,
    })
}
