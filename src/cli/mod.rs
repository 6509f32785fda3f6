//! The command line: clap definitions, dispatch to the library, and what each command
//! prints. It sits on top of the library and nothing in the library uses it, so the
//! stages stay callable (and testable) without a terminal; one file per command group.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

mod actions;
mod ignore;
mod incidents;
mod metrics;
mod ops;
mod run;
mod signatures;

pub use metrics::MetricsCommand;

use crate::config::{self, Config};

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
    /// Config file, for every command (also accepted after the command)
    #[arg(long = "config", short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace (LOGWARDEN_LOG wins)
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr (LOGWARDEN_LOG wins)
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
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
        /// Print the run's report as JSON (schema in the README)
        #[arg(long)]
        json: bool,
    },
    /// Validate the config (every problem at once) and print the effective config
    #[command(after_help = "Example:\n  logwarden check --config /etc/logwarden/logwarden.toml")]
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Print `{"config", "ok", "problems"}` as JSON instead (schema in the README)
        #[arg(long)]
        json: bool,
    },
    /// Manage ignore rules (pattern, scope, expiry, comment)
    #[command(
        subcommand,
        after_help = "Examples:\n  logwarden ignore list\n  logwarden ignore add 'Connection reset by peer' --expires 7d --comment 'flaky upstream'"
    )]
    Ignore(ignore::IgnoreCommand),
    /// Replay log files against the ignore rules: hits per rule, and what would page
    #[command(
        after_help = "Examples:\n  logwarden replay /var/log/app/app.log /var/log/app/app.2026-11-29.log\n  logwarden replay app.log --source app --json"
    )]
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        /// Log files (loguru text), read in this order
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Read them as this source (its levels and min_level; default: the first source)
        #[arg(long)]
        source: Option<String>,
        /// Print JSON (the schema of `ignore test --file --json`)
        #[arg(long)]
        json: bool,
    },
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
        list: incidents::ListArgs,
        #[command(subcommand)]
        command: Option<incidents::IncidentsCommand>,
    },
    /// Print the briefing of the last days: totals, recurring noise with proposals, real incidents
    #[command(after_help = "Example:\n  logwarden briefing --days 7")]
    Briefing {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Print `{"summary", "markdown"}` as JSON (schema in the README)
        #[arg(long)]
        json: bool,
    },
    /// Notifications: send a test message through ntfy
    #[command(subcommand, after_help = "Example:\n  logwarden notify test")]
    Notify(NotifyCommand),
    // install, uninstall, doctor, status, completions, man (src/cli/ops.rs)
    #[command(flatten)]
    Ops(ops::OpsCommand),
    /// Metrics: list series with their last value and status; show one; run the checks
    #[command(
        after_help = "Examples:\n  logwarden metrics\n  logwarden metrics show 'disk_used_percent{mount=\"/\"}' --since 7d\n  logwarden metrics check --dry-run"
    )]
    Metrics {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the list as JSON (schema in the README)
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<MetricsCommand>,
    },
    /// Allow-listed actions: list, approve, reject, history, test (dry run), resume
    #[command(
        after_help = "Examples:\n  logwarden actions list\n  logwarden actions approve 3\n  logwarden actions test restart-unit --param unit=app.service"
    )]
    Actions {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: actions::ActionsCommand,
    },
    /// Run the approved actions the watcher queued (`runner = "queue"`; the root action unit runs this)
    #[command(after_help = "Example:\n  logwarden act --config /etc/logwarden/logwarden.toml")]
    Act {
        #[command(flatten)]
        config: ConfigArg,
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

/// `logwarden notify …`.
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

pub fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time (like 2026-11-22T10:00:00Z): {e}"))
}

/// Exit code: the watcher could not do all of its job (a source unreadable, a broken
/// ignore file, a page not written, a notification refused).
pub const EXIT_PROBLEM: u8 = 1;
/// Exit code: logwarden itself cannot work (bad config, unusable state database, a bug).
pub const EXIT_BROKEN: u8 = 2;
/// Exit code: the command line was wrong (an unknown flag or value, an id that does not
/// exist, a refused pattern): nothing was done. sysexits.h's EX_USAGE.
pub const EXIT_USAGE: u8 = 64;

/// A mistake of the person at the keyboard, not a fault of logwarden: exit [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] as an error to return.
pub fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    UsageError(message.to_string()).into()
}

/// Prints data as JSON on stdout: the one way every `--json` prints (pretty, text made
/// safe for a terminal by [`crate::sanitize::json`]).
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let raw = serde_json::to_string_pretty(value)?;
    writeln!(std::io::stdout().lock(), "{}", crate::sanitize::json(&raw))?;
    Ok(())
}

/// Whether output to a stream may carry colour: the stream is a terminal, `NO_COLOR` is
/// unset or empty (no-color.org) and `TERM` is not `dumb`. Never through a pipe.
pub fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Whether stdout may carry colour.
pub fn stdout_colour() -> bool {
    use std::io::IsTerminal;
    colour(std::io::stdout().is_terminal())
}

/// `text` (already made safe for a terminal) in an SGR style (`1;31` bold red), or as
/// it is when `on` is false.
pub fn paint(on: bool, sgr: &str, text: &str) -> String {
    if on {
        format!("\x1b[{sgr}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The exit code of an error that ended a command.
fn exit_code_of(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.downcast_ref::<UsageError>().is_some()) {
        EXIT_USAGE
    } else {
        EXIT_BROKEN
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are no mistakes; a bad command line is the user's
            // (clap's own code for it, 2, is logwarden's "I am broken").
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.verbose, cli.quiet);
    if let Some(p) = &cli.config {
        config::set_flag_before_command(p.clone());
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::IsTerminal;
            let on = colour(std::io::stderr().is_terminal());
            eprintln!(
                "{} {}",
                paint(on, "1;31", "logwarden:"),
                crate::sanitize::text(&e.to_string())
            );
            ExitCode::from(exit_code_of(&e))
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

/// Diagnostics on stderr: `LOGWARDEN_LOG` (a tracing filter such as `debug` or
/// `logwarden::source=trace`) when set, else warnings, more with `-v`, only errors with `-q`.
fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::sanitize::Terminal::new(std::io::stderr()))
        .with_ansi(false)
        .try_init();
}

pub fn load(arg: &ConfigArg) -> anyhow::Result<Config> {
    let path = config::locate(arg.config.as_deref());
    tracing::info!("config: {}", path.display());
    Ok(Config::load(&path)?)
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // The one reading of the clock: everything below takes `now` as a parameter.
    let given_now = cli.now;
    let quiet = cli.quiet;
    let now = given_now.unwrap_or_else(Utc::now);
    tracing::debug!("now: {}", crate::store::ts(now));
    match cli.command {
        Command::Run {
            config,
            dry_run,
            json,
        } => {
            // The time since boot goes with a time read from the clock only: a time given
            // with `--now` is taken as it is.
            let boot = given_now.is_none().then(crate::clock::Boot::read).flatten();
            run::run(&load(&config)?, dry_run, json, now, boot)
        }
        Command::Check { config, json } => run::check(&config, json, quiet, now),
        Command::Ignore(cmd) => {
            let boot = given_now.is_none().then(crate::clock::Boot::read).flatten();
            ignore::run(cmd, now, boot)
        }
        Command::Replay {
            config,
            files,
            source,
            json,
        } => ignore::replay_command(&load(&config)?, &files, source.as_deref(), json, now),
        Command::Notify(NotifyCommand::Test { config }) => notify_test(&config),
        Command::Ops(cmd) => ops::dispatch(cmd, now),
        Command::Signatures { config } => signatures::print(&config),
        Command::Metrics {
            config,
            json,
            command,
        } => metrics::run(&load(&config)?, command, given_now, json),
        Command::Incidents {
            config,
            list,
            command,
        } => incidents::run(&load(&config)?, command, list, now),
        Command::Actions { config, command } => actions::run(&load(&config)?, command, now),
        Command::Act { config } => {
            for line in
                crate::actions::queue::act(&load(&config)?, now).map_err(anyhow::Error::msg)?
            {
                crate::outln!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Briefing { config, days, json } => {
            incidents::briefing(&load(&config)?, days, now, json)
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

/// `notify test`: one test message through ntfy; a refusal is reported, exit 1.
fn notify_test(config: &ConfigArg) -> anyhow::Result<ExitCode> {
    match crate::notify::send_test(&load(config)?) {
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

/// Who is at the keyboard (the sudo user when run with sudo), for authorship of rules and notes.
pub fn who() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}
