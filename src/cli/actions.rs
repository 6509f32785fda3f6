//! `logwarden actions …`: the allow-list, the requests waiting for a decision,
//! approving and rejecting them from the shell, their history, and a dry run.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::actions::{self, Decided};
use crate::config::Config;
use crate::store::{ts, ActionRequest, Store};

#[derive(Subcommand, Debug)]
pub enum ActionsCommand {
    /// The allow-listed actions (mode, suspension) and the requests waiting for a decision
    #[command(after_help = "Example:\n  logwarden actions list")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve a proposed action (the next run executes it)
    #[command(after_help = "Example:\n  logwarden actions approve 3")]
    Approve {
        /// The request id (`actions list`)
        request: i64,
        #[arg(long)]
        json: bool,
    },
    /// Reject a proposed action
    #[command(after_help = "Example:\n  logwarden actions reject 3")]
    Reject {
        request: i64,
        #[arg(long)]
        json: bool,
    },
    /// Every request: proposal, decision (who), execution (argv, exit code, output) and verification
    #[command(after_help = "Example:\n  logwarden actions history --limit 20")]
    History {
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Dry run: check an action with parameters and print the argv it would run (nothing runs)
    #[command(
        after_help = "Example:\n  logwarden actions test restart-unit --param unit=app.service --incident 12"
    )]
    Test {
        id: String,
        /// A parameter, as NAME=VALUE (repeat for each)
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Check it against this incident's `when` too
        #[arg(long, value_name = "ID")]
        incident: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Lift the suspension of an action the circuit breaker stopped
    #[command(after_help = "Example:\n  logwarden actions resume restart-unit")]
    Resume {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn request_line(r: &ActionRequest) -> String {
    let mut s = format!(
        "{:>4}  #{:<4} {:<13} {}",
        r.id,
        r.incident_id,
        r.status,
        actions::describe(r)
    );
    if let Some(by) = &r.decided_by {
        s.push_str(&format!("  decided by {by}"));
    }
    if r.status == "pending" {
        if let Some(t) = r.expires_at {
            s.push_str(&format!("  until {}", ts(t)));
        }
    }
    if let Some(c) = r.exit_code {
        s.push_str(&format!("  exit {c}"));
    }
    if let Some(v) = &r.verify_result {
        s.push_str(&format!("  ({v})"));
    }
    crate::sanitize::line(&s)
}

pub fn run(config: &Config, cmd: ActionsCommand, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let open = || -> anyhow::Result<Store> {
        crate::fsio::create_dir(&config.state_dir).map_err(anyhow::Error::msg)?;
        Ok(Store::open(&config.database_path())?)
    };
    match cmd {
        ActionsCommand::List { json } => {
            let store = open()?;
            let mut defs = Vec::new();
            for a in &config.actions.actions {
                defs.push(serde_json::json!({
                    "id": a.id,
                    "description": a.description,
                    "argv": a.argv,
                    "mode": a.mode.name(),
                    "safe": a.safe,
                    "suspended": actions::suspended(&store, &a.id)?,
                }));
            }
            let pending = store.requests_in("pending")?;
            let approved = store.requests_in("approved")?;
            if json {
                super::print_json(&serde_json::json!({
                    "enabled": config.actions.enabled,
                    "actions": defs,
                    "pending": pending,
                    "approved": approved,
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            if !config.actions.enabled {
                crate::outln!("actions are disabled (actions.enabled = false): nothing runs");
            }
            if defs.is_empty() {
                crate::outln!("no [[action]] is configured");
            }
            for (a, d) in config.actions.actions.iter().zip(&defs) {
                let sus = d["suspended"]
                    .as_str()
                    .map(|s| format!("  SUSPENDED: {s}"))
                    .unwrap_or_default();
                crate::outln!(
                    "{:<24} {:<8} {}{sus}",
                    a.id,
                    a.mode.name(),
                    crate::sanitize::line(&a.argv.join(" "))
                );
            }
            for (what, list) in [
                ("waiting for approval", &pending),
                ("approved, to run", &approved),
            ] {
                if !list.is_empty() {
                    crate::outln!("\n{what}:");
                    for r in list {
                        crate::outln!("{}", request_line(r));
                    }
                }
            }
        }
        ActionsCommand::Approve { request, json } | ActionsCommand::Reject { request, json } => {
            let approve = matches!(cmd, ActionsCommand::Approve { .. });
            let store = open()?;
            let by = format!("{} (CLI)", super::who());
            let outcome = actions::decide(config, &store, request, None, approve, &by, now)?;
            let (ok, text) = match outcome {
                Decided::Done(t) => (true, t),
                Decided::Noop(t) => (true, t),
                Decided::Refused(t) => (false, t),
            };
            if let Some(r) = store.request(request)? {
                super::incidents::refresh(config, &store, r.incident_id);
            }
            if json {
                super::print_json(&serde_json::json!({
                    "ok": ok,
                    "message": text,
                    "request": store.request(request)?,
                }))?;
            } else if ok {
                crate::outln!("{text}");
            }
            if !ok {
                return Err(super::usage(text));
            }
        }
        ActionsCommand::History { limit, json } => {
            let store = open()?;
            let list = store.request_history(limit)?;
            if json {
                super::print_json(&list)?;
            } else if list.is_empty() {
                crate::outln!("no action was proposed yet");
            } else {
                for r in &list {
                    crate::outln!("{}  {}", ts(r.created_at), request_line(r));
                    if let Some(argv) = &r.argv {
                        crate::outln!(
                            "      ran {} at {} in {} ms",
                            crate::sanitize::line(&argv.to_string()),
                            r.started_at.map(ts).unwrap_or_default(),
                            r.duration_ms.unwrap_or_default()
                        );
                    }
                }
            }
        }
        ActionsCommand::Test {
            id,
            params,
            incident,
            json,
        } => {
            let mut map = BTreeMap::new();
            for p in &params {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| super::usage(format!("`{p}` is not NAME=VALUE")))?;
                map.insert(k.to_string(), v.to_string());
            }
            let inc = match incident {
                None => None,
                Some(i) => Some(
                    open()?
                        .incident(i)?
                        .ok_or_else(|| super::usage(format!("no incident #{i}")))?,
                ),
            };
            let result = actions::dry_run(config, &id, &map, inc.as_ref());
            if json {
                super::print_json(&match &result {
                    Ok(argv) => serde_json::json!({"ok": true, "argv": argv, "ran": false}),
                    Err(e) => serde_json::json!({"ok": false, "error": e, "ran": false}),
                })?;
            }
            match result {
                Ok(argv) if !json => {
                    crate::outln!(
                        "dry run: would run {} (nothing was run)",
                        serde_json::to_string(&argv)?
                    );
                }
                Ok(_) => {}
                Err(e) => return Err(super::usage(format!("refused: {e}"))),
            }
        }
        ActionsCommand::Resume { id, json } => {
            if config.actions.get(&id).is_none() {
                return Err(super::usage(format!(
                    "`{id}` is not an allow-listed action"
                )));
            }
            let store = open()?;
            let was = actions::resume(&store, &id)?;
            if json {
                super::print_json(&serde_json::json!({"id": id, "was_suspended": was}))?;
            } else if was {
                crate::outln!("action `{id}` resumed");
            } else {
                crate::outln!("action `{id}` was not suspended");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
