//! The command line: clap definitions and dispatch to the library.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config};
use crate::ignore::{self, IgnoreRules, NewRule};
use crate::pipeline::{self, RunOptions};
use crate::source::loguru::RecordAssembler;
use crate::store::{self, Store};

#[derive(Parser, Debug)]
#[command(
    name = "logwarden",
    version,
    about = "Reads your app's logs, groups errors, asks Claude, writes incidents, pages you through ntfy",
    after_help = "Example:\n  logwarden run --config /etc/logwarden/logwarden.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The time logwarden takes as "now" (RFC 3339), for every command: tests and replays
    #[arg(long, value_name = "RFC3339", value_parser = parse_now, global = true)]
    pub now: Option<DateTime<Utc>>,
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// Config file (else $LOGWARDEN_CONFIG, else /etc/logwarden/logwarden.toml)
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one watch cycle: read new log lines, open incidents, notify
    #[command(
        after_help = "Examples:\n  logwarden run\n  logwarden run --dry-run\n  logwarden run --now 2026-11-22T10:00:00Z"
    )]
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Report what would be done without recording, investigating or notifying
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the config (every problem at once) and print the effective config
    #[command(after_help = "Example:\n  logwarden check --config /etc/logwarden/logwarden.toml")]
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Manage ignore rules (pattern, scope, expiry, comment)
    #[command(
        subcommand,
        after_help = "Examples:\n  logwarden ignore list\n  logwarden ignore add 'Connection reset by peer' --expires 7d --comment 'flaky upstream'"
    )]
    Ignore(IgnoreCommand),
    /// Print `<signature>\t<template>` for each record (a loguru log) or message read on stdin
    #[command(
        after_help = "Examples:\n  logwarden signatures < /var/log/app/app.log\n  logwarden signatures --config /etc/logwarden/logwarden.toml < /var/log/app/app.log\n\nWith --config (or $LOGWARDEN_CONFIG) the ids are the watcher's own (its templates, read-only), ready for `ignore add --signature`."
    )]
    Signatures {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Incidents: list (the default), show, ack, resolve, note
    #[command(
        after_help = "Examples:\n  logwarden incidents --status open\n  logwarden incidents ack 12\n  logwarden incidents note 12 'restarted the worker'"
    )]
    Incidents {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        list: crate::incident::cli::ListArgs,
        #[command(subcommand)]
        command: Option<crate::incident::cli::IncidentsCommand>,
    },
    /// Print the briefing of the last days: totals, recurring noise with proposals, real incidents
    #[command(after_help = "Example:\n  logwarden briefing --days 7")]
    Briefing {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Notifications: send a test message through ntfy
    #[command(subcommand, after_help = "Example:\n  logwarden notify test")]
    Notify(NotifyCommand),
    // issue 8: install, uninstall, doctor, status, completions, man (src/opscli.rs)
    #[command(flatten)]
    Ops(crate::opscli::OpsCommand),
    /// Metrics (issue 5): list series with their last value and status; show one; run the checks
    #[command(
        after_help = "Examples:\n  logwarden metrics\n  logwarden metrics show 'disk_used_percent{mount=\"/\"}' --since 7d\n  logwarden metrics check --dry-run"
    )]
    Metrics {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: Option<MetricsCommand>,
    },
    /// Serve the investigator's tools over MCP on stdin/stdout (started by Claude Code)
    #[command(hide = true)]
    Mcp {
        #[command(flatten)]
        config: ConfigArg,
        /// The incident under investigation
        #[arg(long)]
        incident: Option<i64>,
        /// The nonce of the prompt's data markers (a fresh one when left out)
        #[arg(long, default_value = "")]
        nonce: String,
        /// The evidence file written for this investigation
        #[arg(long, value_name = "PATH")]
        evidence: Option<PathBuf>,
    },
}

/// `logwarden metrics …` (issue 5).
#[derive(Subcommand, Debug)]
pub enum MetricsCommand {
    /// A table of one metric's samples (a series key, or a name matching several) and a sparkline
    Show {
        name: String,
        /// How far back: 1h, 24h, 7d (older than the raw retention comes from hourly rollups)
        #[arg(long, default_value = "24h")]
        since: String,
    },
    /// Run every check now (due or not); --dry-run keeps nothing and opens nothing
    Check {
        #[arg(long)]
        dry_run: bool,
    },
}

/// `logwarden notify …` (issue 7).
#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Publish a test notification to the ntfy topic; fails when ntfy is not configured or refuses
    #[command(
        after_help = "Example:\n  logwarden notify test --config /etc/logwarden/logwarden.toml"
    )]
    Test {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum IgnoreCommand {
    /// Add a rule: PATTERN is a regex searched in the message
    #[command(
        after_help = "Example:\n  logwarden ignore add 'Connection reset by peer' --source app --level WARNING --expires 7d --comment 'flaky upstream, ticket #12'"
    )]
    Add {
        #[command(flatten)]
        config: ConfigArg,
        pattern: String,
        /// Only events of this source
        #[arg(long)]
        source: Option<String>,
        /// Only events at this level or below
        #[arg(long)]
        level: Option<String>,
        /// Only events with this signature
        #[arg(long)]
        signature: Option<String>,
        /// When the rule stops matching: a duration (7d, 12h) or a date (2026-12-01)
        #[arg(long)]
        expires: Option<String>,
        /// Why this is noise (required: the next person will want to know)
        #[arg(long)]
        comment: String,
    },
    /// List rules with their hit counts
    #[command(after_help = "Example:\n  logwarden ignore list")]
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove a rule by id
    #[command(after_help = "Example:\n  logwarden ignore rm 3")]
    Rm {
        #[command(flatten)]
        config: ConfigArg,
        id: String,
    },
    /// Show which rule matches a log line (or each line of a file)
    #[command(
        after_help = "Examples:\n  logwarden ignore test '2026-11-22 10:00:00.000 | WARNING | app:f:1 - Connection reset by peer'\n  logwarden ignore test --file /var/log/app/app.log"
    )]
    Test {
        #[command(flatten)]
        config: ConfigArg,
        /// A log line or message
        line: Option<String>,
        /// Test each record of this file instead
        #[arg(long, conflicts_with = "line")]
        file: Option<PathBuf>,
    },
}

pub fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time (like 2026-11-22T10:00:00Z): {e}"))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    init_tracing();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            crate::errln!("logwarden: {e}");
            ExitCode::from(2)
        }
    }
}

/// `logwarden incidents | head -1`: the reader left, which is no error of ours. SIGPIPE
/// stays ignored (a child that closes its stdin early must not kill a run), so the
/// write fails instead: `println!` panics with the broken pipe, caught here; a
/// `write!` returns it, caught in [`main`].
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::sanitize::Terminal::new(std::io::stderr()))
        .with_ansi(false)
        .try_init();
}

fn load(arg: &ConfigArg) -> anyhow::Result<Config> {
    let path = config::locate(arg.config.as_deref());
    Ok(Config::load(&path)?)
}

/// The templates `signatures` starts from: the watcher's (read-only; nothing is saved)
/// when a config is named, so the ids printed are the ones its incidents and rules
/// carry; else none (a fresh state).
fn signatures_state(
    arg: &ConfigArg,
) -> anyhow::Result<(
    crate::signature::Miner,
    std::collections::BTreeMap<String, u32>,
)> {
    let named = arg.config.is_some() || std::env::var_os("LOGWARDEN_CONFIG").is_some();
    if !named {
        return Ok((crate::signature::Miner::new(), Default::default()));
    }
    let config = load(arg)?;
    let levels = config
        .sources
        .first()
        .map(|s| s.levels.clone())
        .unwrap_or_default();
    let db = config.database_path();
    if !db.exists() {
        return Ok((crate::signature::Miner::new(), levels));
    }
    let store = crate::store::Store::open_read_only(&db)?;
    Ok((crate::signature::Miner::import(store.templates()?), levels))
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // The one reading of the clock: everything below takes `now` as a parameter.
    let given_now = cli.now;
    let now = given_now.unwrap_or_else(Utc::now);
    match cli.command {
        Command::Run { config, dry_run } => {
            let config = load(&config)?;
            let result = pipeline::run(&config, &RunOptions { now, dry_run });
            // issue 8: metrics textfile, and a failed run reported through ntfy
            for line in crate::selfmon::after_run(&config, now, &result) {
                crate::errln!("logwarden: {line}");
            }
            let report = result?;
            crate::out!("{}", report.summary(now));
            Ok(if !report.problems.is_empty() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Check { config } => {
            let config = load(&config)?;
            let problems = crate::investigate::prompt::validate(
                &config.prompts_dir,
                config.llm.runbook.as_deref(),
            );
            let files = config.rule_files();
            if let Err(e) = IgnoreRules::load_all(&[&files[0], &files[1]], now) {
                crate::errln!("{e}");
                return Ok(ExitCode::from(2));
            }
            if !problems.is_empty() {
                for p in problems {
                    crate::errln!("prompt template: {p}");
                }
                return Ok(ExitCode::from(2));
            }
            crate::out!("{config}");
            crate::errln!("config OK");
            Ok(ExitCode::SUCCESS)
        }
        Command::Ignore(cmd) => ignore_command(cmd, now),
        Command::Notify(NotifyCommand::Test { config }) => {
            // issue 7
            match crate::notify::send_test(&load(&config)?) {
                Ok(what) => {
                    crate::outln!("{what}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    crate::errln!("logwarden: notify test: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Ops(cmd) => crate::opscli::dispatch(cmd, now),
        Command::Signatures { config } => {
            let (miner, levels) = signatures_state(&config)?;
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            crate::signature::print_signatures(
                stdin,
                crate::sanitize::Terminal::new(std::io::BufWriter::new(stdout)),
                miner,
                &levels,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Metrics { config, command } => {
            crate::metrics::cli::run(&load(&config)?, command, given_now)
        }
        Command::Incidents {
            config,
            list,
            command,
        } => crate::incident::cli::run(&load(&config)?, command, list, now),
        Command::Briefing { config, days } => {
            crate::incident::cli::briefing(&load(&config)?, days, now)
        }
        Command::Mcp {
            config,
            incident,
            nonce,
            evidence,
        } => {
            let config = load(&config)?;
            let session = crate::investigate::mcp::Session {
                incident,
                nonce,
                evidence,
                now: now.timestamp(),
            };
            let stdin = std::io::stdin().lock();
            crate::investigate::mcp::serve(&config, &session, stdin, std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Who is at the keyboard (the sudo user when run with sudo), for authorship of rules and notes.
pub fn who() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

fn ignore_command(cmd: IgnoreCommand, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    match cmd {
        IgnoreCommand::Add {
            config,
            pattern,
            source,
            level,
            signature,
            expires,
            comment,
        } => {
            let config = load(&config)?;
            if comment.trim().is_empty() {
                anyhow::bail!("--comment must say why this is noise");
            }
            if let Some(s) = &source {
                if !config.sources.iter().any(|c| &c.name == s) {
                    anyhow::bail!("no source named `{s}` in {}", config.path.display());
                }
            }
            let expires = expires
                .map(|e| ignore::parse_expiry(&e, now))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let rule = NewRule {
                pattern,
                source,
                level,
                signature,
                expires,
                comment,
                author: who(),
            };
            let mutes = config.mutes_file();
            let others = [mutes.as_path()];
            let id = ignore::add_rule(config.ignore_target(&others), &rule, now)
                .map_err(anyhow::Error::msg)?;
            crate::outln!("added rule {id} to {}", config.ignore_file.display());
            Ok(ExitCode::SUCCESS)
        }
        IgnoreCommand::List { config } => {
            let config = load(&config)?;
            // Each file on its own: a broken or unreadable one is reported, the other listed.
            let mut parts = Vec::new();
            let mut broken = false;
            for f in config.rule_files() {
                match IgnoreRules::load(&f, now) {
                    Ok(r) => parts.push(r),
                    Err(e) => {
                        crate::errln!("{e}");
                        broken = true;
                    }
                }
            }
            let rules = IgnoreRules::merge(parts, now);
            let hits = match config
                .database_path()
                .exists()
                .then(|| Store::open(&config.database_path()))
            {
                Some(Ok(s)) => s.ignore_hits()?,
                _ => Default::default(),
            };
            if rules.rules.is_empty() {
                crate::outln!(
                    "no ignore rules in {} or {}",
                    config.ignore_file.display(),
                    config.mutes_file().display()
                );
            }
            for r in &rules.rules {
                let (n, last) = hits
                    .get(&r.id)
                    .map(|(n, t)| (*n, store::ts(*t)))
                    .unwrap_or((0, "never".into()));
                let mut scope = Vec::new();
                if let Some(s) = &r.source {
                    scope.push(format!("source={s}"));
                }
                if let Some(l) = &r.level {
                    scope.push(format!("level<={}", l.name));
                }
                if let Some(s) = &r.signature {
                    scope.push(format!("signature={s}"));
                }
                let state = match r.expires {
                    Some(e) if r.expired(now) => format!("EXPIRED {}", store::ts(e)),
                    Some(e) => format!("expires {}", store::ts(e)),
                    None => "no expiry".into(),
                };
                let origin = if r.file == config.ignore_file {
                    "ignore file"
                } else {
                    "phone mute"
                };
                crate::outln!(
                    "{:>3}  /{}/  {}  {} hits, last {}  {}  [{origin}: {}]  # {}",
                    r.id,
                    r.pattern,
                    if scope.is_empty() {
                        "any".into()
                    } else {
                        scope.join(" ")
                    },
                    n,
                    last,
                    state,
                    r.file.display(),
                    r.comment
                );
            }
            Ok(if broken {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        IgnoreCommand::Rm { config, id } => {
            let config = load(&config)?;
            let mut holders = Vec::new();
            for f in config.rule_files() {
                if ignore::has_rule(&f, &id).map_err(anyhow::Error::msg)? {
                    holders.push(f);
                }
            }
            let file = match holders.as_slice() {
                [] => anyhow::bail!(
                    "no rule with id {id} in {} or {}",
                    config.ignore_file.display(),
                    config.mutes_file().display()
                ),
                [one] => one,
                [a, b, ..] => anyhow::bail!(
                    "rule id {id} is in both {} and {}; remove it from one by hand",
                    a.display(),
                    b.display()
                ),
            };
            ignore::remove_rule(file, &id).map_err(anyhow::Error::msg)?;
            crate::outln!("removed rule {id} from {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        IgnoreCommand::Test { config, line, file } => {
            let config = load(&config)?;
            let files = config.rule_files();
            let rules = IgnoreRules::load_all(&[&files[0], &files[1]], now)?;
            let source = config.sources.first();
            let name = source.map(|s| s.name.as_str()).unwrap_or("test");
            let levels = source.map(|s| s.levels.clone()).unwrap_or_default();
            let mut out = crate::sanitize::Terminal::new(std::io::stdout().lock());
            let mut test = |event: crate::source::Event| -> std::io::Result<()> {
                let mined = crate::signature::Miner::new().add(&event.message);
                let sig = crate::signature::signature(
                    mined.group,
                    event.exception_type.as_deref(),
                    event.logger.as_deref(),
                );
                let first = event.message.lines().next().unwrap_or("").to_string();
                match rules.matching(&event, sig) {
                    Some(r) => writeln!(out, "rule {} ({})\t{}", r.id, r.comment, first),
                    None => writeln!(out, "none\t{first}"),
                }
            };
            match (line, file) {
                (Some(l), _) => {
                    let mut a = RecordAssembler::new(name, "line", &levels, 0);
                    let mut events: Vec<_> = l
                        .lines()
                        .enumerate()
                        .filter_map(|(i, x)| a.push(i as u64 + 1, x))
                        .collect();
                    events.extend(a.finish());
                    for mut e in events {
                        if e.level.name == "UNKNOWN" {
                            e.message = e.raw.clone(); // not a loguru line: test the text as the message
                        }
                        test(e)?;
                    }
                }
                (None, Some(f)) => test_file(&f, name, &levels, &mut test)?,
                (None, None) => anyhow::bail!("give a LINE or --file F"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn test_file(
    path: &Path,
    name: &str,
    levels: &std::collections::BTreeMap<String, u32>,
    test: &mut dyn FnMut(crate::source::Event) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let origin = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut a = RecordAssembler::new(name, &origin, levels, 0);
    for (i, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        if let Some(mut e) = a.push(i as u64 + 1, text.trim_end_matches('\r')) {
            if e.level.name == "UNKNOWN" {
                e.message = e.raw.clone();
            }
            test(e)?;
        }
    }
    if let Some(e) = a.finish() {
        test(e)?;
    }
    Ok(())
}
