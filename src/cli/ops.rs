//! The operations subcommands (install, uninstall, doctor, status, completions, man),
//! flattened into the main command line by [`super::Cli`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, Subcommand, ValueEnum};

use super::{Cli, ConfigArg};
use crate::{doctor, install, status};

/// Where `install` and `uninstall` work, and as whom.
#[derive(Args, Debug)]
pub struct TreeArgs {
    /// Work in this folder instead of / (no user created, no timer enabled)
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print every action; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Where the binary goes
    #[arg(long, value_name = "DIR", default_value = "/usr/local/bin")]
    bin_dir: PathBuf,
    /// The service user
    #[arg(long, default_value = install::DEFAULT_USER)]
    user: String,
}

impl TreeArgs {
    fn options(self, interval: Duration, purge: bool) -> install::Options {
        install::Options {
            root: self.root,
            interval,
            dry_run: self.dry_run,
            bin_dir: self.bin_dir,
            user: self.user,
            purge,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum OpsCommand {
    /// Install on this machine: user, dirs, binary, scripts, prompts, config, systemd units, timer
    #[command(
        after_help = "Examples:\n  sudo logwarden install\n  sudo logwarden install --interval 10m --dry-run\n  logwarden install --root ./pkgroot   # lay out a tree, for packaging"
    )]
    Install {
        /// How often the timer runs logwarden (minutes dividing an hour, or hours dividing a day)
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        interval: Duration,
        #[command(flatten)]
        tree: TreeArgs,
    },
    /// Remove the binary, scripts, prompts and units; keep config, incidents and state unless --purge
    #[command(
        after_help = "Examples:\n  sudo logwarden uninstall\n  sudo logwarden uninstall --purge --dry-run"
    )]
    Uninstall {
        /// Also remove /etc/logwarden, /var/lib/logwarden (incidents, database) and the user
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        tree: TreeArgs,
    },
    /// Check the install: config, log access, state dir, scripts, claude, ntfy, timer, last run
    #[command(
        after_help = "Examples:\n  sudo logwarden doctor\n  sudo logwarden doctor --send   # also publish a test notification"
    )]
    Doctor {
        #[command(flatten)]
        config: ConfigArg,
        /// Publish a real test notification to the ntfy topic
        #[arg(long)]
        send: bool,
        /// Print the checks as JSON (schema in the README)
        #[arg(long)]
        json: bool,
        /// The user the service runs as, whose access is checked (default: `User=` of the
        /// installed logwarden.service, else logwarden)
        #[arg(long)]
        user: Option<String>,
        /// The timer's interval (default: read from the installed timer, else 5m)
        #[arg(long, value_parser = parse_duration)]
        interval: Option<Duration>,
        /// The analysis scripts folder (default: `[metrics] scripts_dir` of the config)
        #[arg(long, value_name = "DIR")]
        scripts_dir: Option<PathBuf>,
    },
    /// Show the last runs, open incidents, outbox backlog and budget
    #[command(after_help = "Examples:\n  logwarden status\n  logwarden status --json --last 50")]
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// How many runs to show
        #[arg(long, default_value_t = 10)]
        last: usize,
    },
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  logwarden completions bash > /etc/bash_completion.d/logwarden\n  logwarden completions zsh > \"${fpath[1]}/_logwarden\"\n  logwarden completions fish > ~/.config/fish/completions/logwarden.fish"
    )]
    Completions { shell: Shell },
    /// Print the man page (or write one page per command into a folder)
    #[command(
        after_help = "Examples:\n  logwarden man | man -l -\n  logwarden man --dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write logwarden.1 and a page per subcommand into this folder
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s)
}

pub fn dispatch(cmd: OpsCommand, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    match cmd {
        OpsCommand::Install { interval, tree } => {
            let opts = tree.options(interval, false);
            let out = install::install(&opts).map_err(anyhow::Error::msg)?;
            for l in &out.lines {
                crate::outln!("{l}");
            }
            if out.changes == 0 {
                crate::outln!("nothing to change: logwarden is already installed as asked");
            } else if opts.dry_run {
                crate::outln!("dry run: {} change(s) would be made", out.changes);
            } else {
                crate::outln!(
                    "{} change(s) made. Next: edit {} (the [[source]] path, [ntfy]), then `sudo logwarden doctor`",
                    out.changes,
                    opts.at(install::CONFIG_PATH).display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OpsCommand::Uninstall { purge, tree } => {
            let opts = tree.options(install::DEFAULT_INTERVAL, purge);
            let out = install::uninstall(&opts).map_err(anyhow::Error::msg)?;
            for l in &out.lines {
                crate::outln!("{l}");
            }
            if out.changes == 0 {
                crate::outln!("nothing to remove");
            }
            Ok(ExitCode::SUCCESS)
        }
        OpsCommand::Doctor {
            config,
            send,
            json,
            user,
            interval,
            scripts_dir,
        } => {
            let opts = doctor::Options {
                config_path: crate::config::locate(config.config.as_deref()),
                user: user.unwrap_or_else(doctor::installed_user),
                interval,
                scripts_dir,
                send,
                now,
            };
            if json {
                let (ok, checks) = doctor::run_collect(&opts)?;
                let checks: Vec<_> = checks.iter().map(doctor::Check::to_json).collect();
                super::print_json(&serde_json::json!({"ok": ok, "checks": checks}))?;
                return Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let mut stdout = crate::sanitize::Terminal::new(std::io::stdout().lock());
            Ok(if doctor::run(&opts, &mut stdout)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        OpsCommand::Status { config, json, last } => {
            let path = crate::config::locate(config.config.as_deref());
            let config = crate::config::Config::load(&path)?;
            match status::collect(&config, last, now)? {
                None if json => crate::outln!("null"),
                None => crate::outln!(
                    "no runs yet: {} does not exist (the first `logwarden run` creates it)",
                    config.database_path().display()
                ),
                Some(s) if json => println!(
                    "{}",
                    crate::sanitize::json(&serde_json::to_string_pretty(&s)?)
                ),
                Some(s) => crate::out!("{}", status::render(&s)),
            }
            Ok(ExitCode::SUCCESS)
        }
        OpsCommand::Completions { shell } => {
            let mut cmd = Cli::command();
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut cmd, "logwarden", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        OpsCommand::Man { dir } => {
            let cmd = Cli::command();
            match dir {
                Some(d) => {
                    std::fs::create_dir_all(&d)?;
                    clap_mangen::generate_to(cmd, &d)?;
                    crate::outln!("man pages written to {}", d.display());
                }
                None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
