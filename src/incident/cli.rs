//! `logwarden incidents …` and `logwarden briefing`: the incident memory from the shell.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store::{ts, IncidentRow, Store};

#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// Only incidents with this status (open, acked, resolved)
    #[arg(long)]
    pub status: Option<String>,
    /// Only incidents of this severity (info, warning, critical)
    #[arg(long)]
    pub severity: Option<String>,
    /// Only incidents opened within this long (7d, 24h)
    #[arg(long)]
    pub since: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum IncidentsCommand {
    /// List incidents, newest first
    #[command(
        after_help = "Example:\n  logwarden incidents list --status open --severity critical --since 7d"
    )]
    List(ListArgs),
    /// Show one incident with its log
    #[command(after_help = "Example:\n  logwarden incidents show 12")]
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an incident: reminders stop
    #[command(after_help = "Example:\n  logwarden incidents ack 12")]
    Ack {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Resolve an incident (if it comes back, a regression incident opens)
    #[command(after_help = "Example:\n  logwarden incidents resolve 12")]
    Resolve {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Add a note to an incident's log (shown on its page)
    #[command(
        after_help = "Example:\n  logwarden incidents note 12 'restarted postgres, watching'"
    )]
    Note {
        id: i64,
        text: String,
        #[arg(long)]
        json: bool,
    },
}

fn line(i: &IncidentRow) -> String {
    format!(
        "#{:<4} {} {:<8} {:<8} {:>6}× {}{}",
        i.id,
        i.first_seen.format("%Y-%m-%d %H:%M"),
        i.status,
        i.severity,
        i.occurrences,
        i.title,
        if i.regression_of.is_some() {
            " (regression)"
        } else {
            ""
        }
    )
}

fn refresh(config: &Config, store: &Store, id: i64) {
    // The pages linking to this one show its status: they are rewritten with it.
    for (id, e) in super::page::rewrite_with_linked(config, store, id) {
        // The change is in the state database; the service's next run writes the page.
        let later = match crate::pipeline::retry_page_later(store, id) {
            Ok(()) => "the next run rewrites it".to_string(),
            Err(e) => format!("and it cannot be queued for the next run: {e}"),
        };
        crate::errln!("logwarden: incident #{id}: page not rewritten: {e}; {later}");
    }
    if let Ok(list) = store.incidents() {
        let _ = crate::incident::index::write(&config.incidents_dir, &list);
    }
}

/// Runs an `incidents` command (none means `list`).
pub fn run(
    config: &Config,
    cmd: Option<IncidentsCommand>,
    list: ListArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.database_path())?;
    let cmd = cmd.unwrap_or(IncidentsCommand::List(list));
    let get = |id: i64| -> anyhow::Result<IncidentRow> {
        store
            .incident(id)?
            .ok_or_else(|| anyhow::anyhow!("no incident #{id}"))
    };
    match cmd {
        IncidentsCommand::List(a) => {
            let since: Option<DateTime<Utc>> = match &a.since {
                Some(s) => Some(
                    now - chrono::Duration::from_std(
                        crate::duration::parse(s).map_err(anyhow::Error::msg)?,
                    )?,
                ),
                None => None,
            };
            let mut v: Vec<IncidentRow> = store
                .incidents()?
                .into_iter()
                .filter(|i| a.status.as_ref().is_none_or(|s| &i.status == s))
                .filter(|i| a.severity.as_ref().is_none_or(|s| &i.severity == s))
                .filter(|i| since.is_none_or(|t| i.created_at >= t))
                .collect();
            v.reverse();
            if a.json {
                println!(
                    "{}",
                    crate::sanitize::json(&serde_json::to_string_pretty(&v)?)
                );
            } else if v.is_empty() {
                crate::outln!("no incidents");
            } else {
                for i in &v {
                    crate::outln!("{}", line(i));
                }
            }
        }
        IncidentsCommand::Show { id, json } => {
            let i = get(id)?;
            let notes = store.notes(id)?;
            if json {
                let mut v = serde_json::to_value(&i)?;
                v["notes"] = serde_json::to_value(&notes)?;
                println!(
                    "{}",
                    crate::sanitize::json(&serde_json::to_string_pretty(&v)?)
                );
            } else {
                crate::outln!("{}", line(&i));
                crate::outln!(
                    "signature {}  source {}  host {}  level {}",
                    i.signature,
                    i.source,
                    i.host,
                    i.level
                );
                crate::outln!(
                    "first {}  last {}  verdict {}",
                    ts(i.first_seen),
                    ts(i.last_seen),
                    i.verdict
                );
                if let (Some(by), Some(at)) = (&i.acked_by, i.acked_at) {
                    crate::outln!("acked by {by} at {}", ts(at));
                }
                if let Some(at) = i.resolved_at {
                    crate::outln!(
                        "resolved at {} by {}",
                        ts(at),
                        i.resolved_by.as_deref().unwrap_or("?")
                    );
                }
                if let Some(of) = i.regression_of {
                    crate::outln!("regression of #{of}");
                }
                if let Some(p) = &i.file_path {
                    crate::outln!("page: {p}");
                }
                for n in &notes {
                    crate::outln!("  {} {}: {}", ts(n.at), n.author, n.text);
                }
            }
        }
        IncidentsCommand::Ack { id, json } => {
            let i = get(id)?;
            let by = crate::cli::who();
            if !store.ack_incident(id, &by, now)? {
                anyhow::bail!("incident #{id} is {}, not open", i.status);
            }
            store.add_note(id, &by, "acknowledged", now)?;
            refresh(config, &store, id);
            report(&store, id, json, "acknowledged")?;
        }
        IncidentsCommand::Resolve { id, json } => {
            let i = get(id)?;
            let by = crate::cli::who();
            if !store.resolve_incident(id, &by, now)? {
                anyhow::bail!("incident #{id} is already {}", i.status);
            }
            store.add_note(id, &by, "resolved", now)?;
            refresh(config, &store, id);
            report(&store, id, json, "resolved")?;
        }
        IncidentsCommand::Note { id, text, json } => {
            get(id)?;
            if text.trim().is_empty() {
                anyhow::bail!("the note is empty");
            }
            store.add_note(id, &crate::cli::who(), text.trim(), now)?;
            refresh(config, &store, id);
            report(&store, id, json, "noted")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(store: &Store, id: i64, json: bool, what: &str) -> anyhow::Result<()> {
    let i = store.incident(id)?.expect("exists");
    if json {
        println!(
            "{}",
            crate::sanitize::json(&serde_json::to_string_pretty(&i)?)
        );
    } else {
        crate::outln!("incident #{id} {what}: {}", line(&i));
    }
    Ok(())
}

/// `logwarden briefing [--days N]`: prints the briefing of the last days.
pub fn briefing(config: &Config, days: u32, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.database_path())?;
    let b = crate::incident::briefing::build(config, &store, now, days)?;
    crate::out!("{}", b.markdown);
    Ok(ExitCode::SUCCESS)
}
