//! `logwarden incidents …` and `logwarden briefing`: the incident memory from the shell.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store::{ts, IncidentRow, Store};

#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// Only incidents with this status
    #[arg(long, value_parser = ["open", "acked", "resolved"])]
    pub status: Option<String>,
    /// Only incidents of this severity
    #[arg(long, value_parser = ["info", "warning", "critical"])]
    pub severity: Option<String>,
    /// Only incidents opened at or after this time: 7d, yesterday, 2026-11-30 08:00, … (as journalctl)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only incidents opened before this time (same forms as --since)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only incidents of this source
    #[arg(long)]
    pub source: Option<String>,
    /// Only incidents of this signature
    #[arg(long)]
    pub signature: Option<String>,
    /// At most this many (the newest)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print JSON (schema in the README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum IncidentsCommand {
    /// List incidents, newest first
    #[command(
        after_help = "Examples:\n  logwarden incidents list --status open --severity critical --since 7d\n  logwarden incidents list --since yesterday --until today --source app --limit 20"
    )]
    List(ListArgs),
    /// Show one incident: its facts, the evidence (template, samples, diagnosis) and its log
    #[command(after_help = "Example:\n  logwarden incidents show 12")]
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge incidents: reminders stop (an acked one again is no error)
    #[command(after_help = "Example:\n  logwarden incidents ack 12 13")]
    Ack {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Resolve incidents (if one comes back, a regression incident opens)
    #[command(after_help = "Example:\n  logwarden incidents resolve 12 13")]
    Resolve {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<i64>,
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

/// The header row of `incidents list`, aligned with [`line`].
fn header() -> String {
    format!(
        "{:<5} {:<16} {:<8} {:<8} {:>7} TITLE",
        "ID", "OPENED", "STATUS", "SEVERITY", "COUNT"
    )
}

fn line(i: &IncidentRow) -> String {
    coloured_line(i, false)
}

/// A row of `incidents list`, safe for a terminal; the severity coloured when `colour`.
fn coloured_line(i: &IncidentRow, colour: bool) -> String {
    let sgr = match i.severity.as_str() {
        "critical" => "1;31",
        "warning" => "33",
        _ => "36",
    };
    let severity = super::paint(
        colour,
        sgr,
        &crate::sanitize::text(&format!("{:<8}", i.severity)),
    );
    format!(
        "#{:<4} {} {:<8} {} {:>6}× {}{}",
        i.id,
        i.first_seen.format("%Y-%m-%d %H:%M"),
        crate::sanitize::line(&i.status),
        severity,
        i.occurrences,
        // A row per incident: a line break in a title would forge another row.
        crate::sanitize::line(&i.title),
        if i.regression_of.is_some() {
            " (regression)"
        } else {
            ""
        }
    )
}

pub(super) fn refresh(config: &Config, store: &Store, id: i64) {
    // The pages linking to this one show its status: they are rewritten with it.
    let (moved, failed) = crate::incident::page::rewrite_with_linked(config, store, id);
    for m in moved {
        crate::errln!("logwarden: {m}");
    }
    for (id, e) in failed {
        // The change is in the state database; the service's next run writes the page.
        let later = match crate::pipeline::retry_page_later(store, id) {
            Ok(()) => "the next run rewrites it".to_string(),
            Err(e) => format!("and it cannot be queued for the next run: {e}"),
        };
        crate::errln!("logwarden: incident #{id}: page not rewritten: {e}; {later}");
    }
    let _ = crate::incident::index::update(&config.incidents_dir, store, &[id]);
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
            .ok_or_else(|| super::usage(format!("no incident #{id}")))
    };
    match cmd {
        IncidentsCommand::List(a) => {
            let (since, until) =
                crate::timespec::range(a.since.as_deref(), a.until.as_deref(), now)
                    .map_err(super::usage)?;
            let mut v: Vec<IncidentRow> = store
                .incidents()?
                .into_iter()
                .filter(|i| a.status.as_ref().is_none_or(|s| &i.status == s))
                .filter(|i| a.severity.as_ref().is_none_or(|s| &i.severity == s))
                .filter(|i| a.source.as_ref().is_none_or(|s| &i.source == s))
                .filter(|i| a.signature.as_ref().is_none_or(|s| &i.signature == s))
                .filter(|i| since.is_none_or(|t| i.created_at >= t))
                .filter(|i| until.is_none_or(|t| i.created_at < t))
                .collect();
            v.reverse();
            if let Some(n) = a.limit {
                v.truncate(n);
            }
            if a.json {
                let v: Vec<IncidentRow> = v.into_iter().map(|i| shown(config, i)).collect();
                super::print_json(&v)?;
            } else if v.is_empty() {
                crate::outln!("no incidents");
            } else {
                crate::outln!("{}", header());
                let colour = super::stdout_colour();
                for i in &v {
                    println!("{}", coloured_line(i, colour));
                }
            }
        }
        IncidentsCommand::Show { id, json } => {
            let i = shown(config, get(id)?);
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
                print_evidence(&i);
                for n in &notes {
                    crate::outln!("  {} {}: {}", ts(n.at), n.author, n.text);
                }
            }
        }
        IncidentsCommand::Ack { ids, json } => {
            return change_many(config, &store, &ids, json, now, Change::Ack)
        }
        IncidentsCommand::Resolve { ids, json } => {
            return change_many(config, &store, &ids, json, now, Change::Resolve)
        }
        IncidentsCommand::Note { id, text, json } => {
            get(id)?;
            if text.trim().is_empty() {
                return Err(super::usage("the note is empty"));
            }
            store.add_note(id, &super::who(), text.trim(), now)?;
            refresh(config, &store, id);
            report(config, &store, id, json, "noted")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An incident as the CLI shows it: what came from the log (title, template, samples,
/// the diagnosis's texts) redacted as the text output and the pages are; the store keeps
/// it as read.
fn shown(config: &Config, mut i: IncidentRow) -> IncidentRow {
    if !config.redact.incident_files {
        return i;
    }
    let r = &config.redact.redactor;
    fn walk(v: &mut serde_json::Value, r: &crate::redact::Redactor) {
        match v {
            serde_json::Value::String(s) => *s = r.clean(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| walk(v, r)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|v| walk(v, r)),
            _ => {}
        }
    }
    i.title = r.clean(&i.title);
    i.template = r.clean_template(&i.template, i.samples.first().map_or("", String::as_str));
    for s in &mut i.samples {
        *s = r.clean(s);
    }
    if let Some(d) = &mut i.diagnosis {
        walk(d, r);
    }
    i
}

/// The evidence of an incident, as its page has it: the template, the exception, the
/// diagnosis and the sample records (`i` as [`shown`] gives it).
fn print_evidence(i: &IncidentRow) {
    crate::outln!();
    crate::outln!("template: {}", i.template);
    if let Some(e) = &i.exception_type {
        crate::outln!("exception: {e}");
    }
    if let Some(d) = &i.diagnosis {
        for key in ["summary", "root_cause", "suggested_fix", "error", "skipped"] {
            if let Some(v) = d
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
            {
                // Its later lines indented: none can pass for a field of its own.
                crate::outln!("{}: {}", key.replace('_', " "), v.replace('\n', "\n  "));
            }
        }
    }
    crate::outln!(
        "samples ({} of {} occurrence(s)):",
        i.samples.len(),
        i.occurrences
    );
    for (n, sample) in i.samples.iter().enumerate() {
        crate::outln!("--- sample {}", n + 1);
        for l in sample.lines() {
            crate::outln!("  {l}");
        }
    }
    crate::outln!();
}

#[derive(Clone, Copy, PartialEq)]
enum Change {
    Ack,
    Resolve,
}

/// Acks or resolves each id. Idempotent: an incident already acked (or resolved) is
/// reported as such and is no error; an unknown id is the user's mistake (exit 64),
/// after the others were done.
fn change_many(
    config: &Config,
    store: &Store,
    ids: &[i64],
    json: bool,
    now: DateTime<Utc>,
    change: Change,
) -> anyhow::Result<ExitCode> {
    let by = super::who();
    let mut unknown = Vec::new();
    let mut done = Vec::new();
    let mut mutes_kept = false;
    for &id in ids {
        let Some(i) = store.incident(id)? else {
            unknown.push(id);
            continue;
        };
        let (changed, what) = match change {
            Change::Ack if i.status == "open" => {
                (store.ack_incident(id, &by, now)?, "acknowledged")
            }
            Change::Ack => (false, "already acknowledged"),
            Change::Resolve if i.status != "resolved" => {
                (store.resolve_incident(id, &by, now)?, "resolved")
            }
            Change::Resolve => (false, "already resolved"),
        };
        let what = match (change, i.status.as_str()) {
            (Change::Ack, "resolved") if !changed => "resolved: nothing to acknowledge",
            _ => what,
        };
        if changed {
            let note = if change == Change::Ack {
                "acknowledged"
            } else {
                "resolved"
            };
            store.add_note(id, &by, note, now)?;
            if change == Change::Resolve {
                match crate::ignore::end_mutes(config, id) {
                    None => {}
                    Some(Ok(said)) => {
                        store.add_note(id, &by, &said, now)?;
                        crate::outln!("{said}");
                    }
                    Some(Err(e)) => {
                        store.add_note(id, &by, &e, now)?;
                        crate::errln!("{e}");
                        mutes_kept = true;
                    }
                }
            }
            refresh(config, store, id);
        }
        let row = store.incident(id)?.expect("exists");
        if !json {
            crate::outln!("incident #{id} {what}: {}", line(&row));
        }
        done.push(shown(config, row));
    }
    if json {
        super::print_json(&done)?;
    }
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|i| format!("#{i}")).collect();
        return Err(super::usage(format!("no incident {}", list.join(", "))));
    }
    if mutes_kept {
        return Ok(ExitCode::from(super::EXIT_PROBLEM));
    }
    Ok(ExitCode::SUCCESS)
}

fn report(config: &Config, store: &Store, id: i64, json: bool, what: &str) -> anyhow::Result<()> {
    let i = shown(config, store.incident(id)?.expect("exists"));
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
pub fn briefing(
    config: &Config,
    days: u32,
    now: DateTime<Utc>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.database_path())?;
    let mut b = crate::incident::briefing::build(config, &store, now, days)?;
    // Shown as the file the timer writes would be: redacted when pages are.
    if config.redact.incident_files {
        b.markdown = config.redact.redactor.clean(&b.markdown);
    }
    if json {
        super::print_json(&serde_json::json!({
            "host": config.hostname,
            "days": days,
            "until": ts(now),
            "summary": b.summary,
            "markdown": b.markdown,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::out!("{}", b.markdown);
    Ok(ExitCode::SUCCESS)
}
