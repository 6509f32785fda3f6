//! Validation of `[[action]]` (the allow-list of what logwarden may run to repair
//! something) and the `[actions]` table (the kill switch, the runner, how long an
//! approval may wait). The investigator can only name an action listed here, with
//! parameters that match their regex; everything else is refused before anything runs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::Validator;

/// The serde mirror of one `[[action]]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawAction {
    pub id: Option<String>,
    pub description: Option<String>,
    pub argv: Option<Vec<String>>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub when: Option<RawWhen>,
    pub mode: Option<String>,
    pub safe: Option<bool>,
    pub timeout: Option<String>,
    pub max_per_day: Option<i64>,
    pub cooldown: Option<String>,
    pub verify: Option<RawVerify>,
    pub run_as: Option<String>,
    pub dry_run: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawAction {
    pub const KEYS: &'static [&'static str] = &[
        "id",
        "description",
        "argv",
        "params",
        "when",
        "mode",
        "safe",
        "timeout",
        "max_per_day",
        "cooldown",
        "verify",
        "run_as",
        "dry_run",
    ];
}

#[derive(Debug, Default, Deserialize)]
pub struct RawWhen {
    #[serde(default)]
    pub signatures: Vec<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawVerify {
    pub check: Option<String>,
    pub quiet_runs: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

/// The serde mirror of `[actions]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawActions {
    pub enabled: Option<bool>,
    pub runner: Option<String>,
    pub approval_timeout: Option<String>,
    pub act_state_dir: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawActions {
    pub const KEYS: &'static [&'static str] =
        &["enabled", "runner", "approval_timeout", "act_state_dir"];
}

/// When an action may be proposed or run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Shown on the page and in the notification; never run.
    Suggest,
    /// Runs after an Approve (phone or CLI).
    Approve,
    /// Runs without asking: only for actions marked `safe = true`.
    Auto,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Suggest => "suggest",
            Mode::Approve => "approve",
            Mode::Auto => "auto",
        }
    }
}

/// How an action's effect is checked once it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// The metric check of this name must be ok at its next run.
    Check(String),
    /// The incident's signature must stay quiet for this many runs.
    QuietRuns(u32),
}

/// The incidents an action is for: any list given must contain the incident's
/// signature, source or check.
#[derive(Debug, Clone, Default)]
pub struct When {
    pub signatures: Vec<String>,
    pub sources: Vec<String>,
    pub checks: Vec<String>,
}

/// One `[[action]]`, validated.
#[derive(Debug, Clone)]
pub struct ActionDef {
    pub id: String,
    pub description: String,
    /// The program and its arguments; `{name}` in an argument is a parameter.
    pub argv: Vec<String>,
    /// Each parameter's regex, anchored at both ends.
    pub params: BTreeMap<String, regex::Regex>,
    pub when: When,
    pub mode: Mode,
    pub safe: bool,
    pub timeout: Duration,
    pub max_per_day: u32,
    pub cooldown: Duration,
    pub verify: Option<Verify>,
    /// The user it runs as; None: logwarden's own.
    pub run_as: Option<String>,
    /// A new action only says what it would run (the Log shows the argv) until the
    /// team, having checked it with `logwarden actions test`, sets `dry_run = false`.
    pub dry_run: bool,
}

/// Where approved actions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// In the run itself, through the same checks (tests, hosts without systemd).
    Direct,
    /// Written to a queue in the state dir; `logwarden act` (the root action unit)
    /// checks each request again and runs it; the next run records the outcome.
    Queue,
}

/// `[actions]` and `[[action]]`, validated.
#[derive(Debug, Clone)]
pub struct ActionsConfig {
    /// The kill switch: false, and nothing runs (proposals are still shown).
    pub enabled: bool,
    pub runner: Runner,
    /// An approval not given within this after its proposal is rejected.
    pub approval_timeout: Duration,
    pub actions: Vec<ActionDef>,
    /// Where `logwarden act` keeps its own ledger of runs (caps and cooldowns that the
    /// watcher cannot change): a folder only root writes.
    pub act_state_dir: std::path::PathBuf,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            enabled: true,
            runner: Runner::Direct,
            approval_timeout: Duration::from_secs(30 * 60),
            actions: Vec::new(),
            act_state_dir: std::path::PathBuf::from("/var/lib/logwarden-act"),
        }
    }
}

impl ActionsConfig {
    pub fn get(&self, id: &str) -> Option<&ActionDef> {
        self.actions.iter().find(|a| a.id == id)
    }
}

impl std::fmt::Display for ActionsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "\n[actions]")?;
        writeln!(f, "enabled = {}", self.enabled)?;
        writeln!(
            f,
            "runner = \"{}\"",
            match self.runner {
                Runner::Direct => "direct",
                Runner::Queue => "queue",
            }
        )?;
        writeln!(
            f,
            "act_state_dir = {:?}",
            self.act_state_dir.display().to_string()
        )?;
        writeln!(
            f,
            "approval_timeout = \"{}\"",
            crate::duration::format(self.approval_timeout)
        )?;
        for a in &self.actions {
            writeln!(
                f,
                "# [[action]] {:?} ({}): {:?}",
                a.id,
                a.mode.name(),
                a.argv
            )?;
        }
        Ok(())
    }
}

/// Programs that would run their arguments as code: an action is argv only, and a
/// parameter must never become a command line. Names are compared without a version
/// suffix (`python3.11`, `tclsh8.6`).
#[rustfmt::skip]
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "env", "sudo",
    "su", "doas", "xargs", "eval", "exec", "python", "perl", "ruby", "irb", "node", "deno", "bun",
    "php", "lua", "luajit", "awk", "gawk", "mawk", "nawk", "find", "tclsh", "wish", "expect",
    "Rscript", "R", "julia", "guile", "pwsh", "osascript", "groovy", "jshell", "sed", "ed", "ex",
    "vi", "vim", "nvim", "emacs", "dc", "m4", "make", "gdb", "ssh", "script", "watch", "parallel",
    "run-parts", "pkexec", "sg", "newgrp", "at", "batch", "crontab", "tmux", "screen", "docker",
    "podman", "kubectl", "ctr", "nerdctl", "machinectl", "systemd-nspawn", "lxc-attach",
    "lxc-execute",
];

/// Programs that run another program named in their arguments: with one of them first, a
/// parameter could name the program that really runs (`timeout 5 {prog} …`). The runner
/// already gives every action a deadline, a process group of its own and `run_as`.
#[rustfmt::skip]
const WRAPPERS: &[&str] = &[
    "timeout", "nice", "ionice", "chrt", "taskset", "stdbuf", "flock", "chroot", "systemd-run",
    "run0", "runuser", "setpriv", "setuidgid", "chpst", "nsenter", "unshare", "time", "strace",
    "ltrace", "cgexec", "firejail", "bwrap", "prlimit", "numactl", "setarch", "linux32", "linux64",
    "nohup", "setsid", "dbus-run-session", "xvfb-run", "valgrind", "eatmydata", "fakeroot",
    "faketime", "torsocks", "proxychains", "proxychains4", "catchsegv", "chronic", "ifne",
    "unbuffer", "caffeinate", "systemd-inhibit", "systemd-cat", "daemonize", "start-stop-daemon",
];

/// Whether an id or parameter name is plain: it goes into signed control messages.
pub(crate) fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The `{name}` placeholders of an argument.
pub fn placeholders(arg: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        v.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    v
}

impl Validator {
    pub(super) fn actions(
        &mut self,
        list: Vec<RawAction>,
        table: Option<RawActions>,
        checks: &[String],
    ) -> ActionsConfig {
        let mut c = ActionsConfig::default();
        if let Some(t) = table {
            self.unknown("actions", &t.extra, RawActions::KEYS);
            c.enabled = t.enabled.unwrap_or(true);
            match t.runner.as_deref() {
                None | Some("direct") => {}
                Some("queue") => c.runner = Runner::Queue,
                Some(other) => self.err(
                    "actions.runner",
                    format!("`{other}` is not a runner (expected \"direct\" or \"queue\")"),
                ),
            }
            if let Some(d) = &t.act_state_dir {
                c.act_state_dir = self.path(d);
            }
            c.approval_timeout = self.duration(
                "actions.approval_timeout",
                t.approval_timeout.as_deref(),
                c.approval_timeout,
            );
            if c.approval_timeout.is_zero() {
                self.err("actions.approval_timeout", "must be longer than 0");
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (n, raw) in list.into_iter().enumerate() {
            let key = format!("action[{n}]");
            if let Some(a) = self.action(&key, raw, checks) {
                if !ids.insert(a.id.clone()) {
                    self.err(
                        format!("{key}.id"),
                        format!("`{}` is used by two actions; ids must be unique", a.id),
                    );
                }
                c.actions.push(a);
            }
        }
        c
    }

    fn action(&mut self, key: &str, r: RawAction, checks: &[String]) -> Option<ActionDef> {
        self.unknown(key, &r.extra, RawAction::KEYS);
        let errors_before = self.errors.len();
        let id = match r.id {
            Some(id) if plain_name(&id) => id,
            Some(id) => {
                self.err(
                    format!("{key}.id"),
                    format!("`{id}` is not a valid id (lowercase letters, digits, `-`, `_`; at most 64)"),
                );
                id
            }
            None => {
                self.err(format!("{key}.id"), "missing: every action needs an id");
                String::new()
            }
        };
        let argv = r.argv.unwrap_or_default();
        let mut used = std::collections::BTreeSet::new();
        match argv.first() {
            None => self.err(
                format!("{key}.argv"),
                "missing or empty: the program and its arguments, e.g. [\"systemctl\", \"restart\", \"app.service\"]",
            ),
            Some(prog) => {
                let name = prog.rsplit('/').next().unwrap_or(prog);
                let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
                let listed = |list: &[&str]| list.contains(&name) || list.contains(&base);
                if prog.is_empty() || prog.contains('{') {
                    self.err(
                        format!("{key}.argv"),
                        "the program (first element) must be a fixed name or path, not a parameter",
                    );
                } else if listed(INTERPRETERS) {
                    self.err(
                        format!("{key}.argv"),
                        format!("`{prog}` runs its arguments as code: an action is a fixed program with arguments, never a shell or an interpreter"),
                    );
                } else if listed(WRAPPERS) {
                    self.err(
                        format!("{key}.argv"),
                        format!("`{prog}` runs the program named in its arguments: give that program itself (every action already has a deadline, a process group of its own and `run_as`)"),
                    );
                } else if prog.contains('/') && !prog.starts_with('/') {
                    self.err(
                        format!("{key}.argv"),
                        format!("`{prog}`: give the program by its absolute path or as a bare name looked up in the standard PATH"),
                    );
                }
            }
        }
        for arg in &argv {
            if arg.contains('\0') {
                self.err(format!("{key}.argv"), "an argument contains a NUL byte");
            }
            used.extend(placeholders(arg));
        }
        let mut params = BTreeMap::new();
        for (name, re) in &r.params {
            if !plain_name(name) {
                self.err(
                    format!("{key}.params.{name}"),
                    "not a valid parameter name (lowercase letters, digits, `-`, `_`)",
                );
                continue;
            }
            match regex::RegexBuilder::new(&format!(r"\A(?:{re})\z"))
                .size_limit(1 << 20)
                .build()
            {
                Ok(rx) => {
                    params.insert(name.clone(), rx);
                }
                Err(e) => self.err(
                    format!("{key}.params.{name}"),
                    format!("not a valid regex: {e}"),
                ),
            }
            if !used.contains(name) {
                self.err(
                    format!("{key}.params.{name}"),
                    format!("is declared but no argument of `argv` uses `{{{name}}}`"),
                );
            }
        }
        for u in &used {
            if !r.params.contains_key(u) {
                self.err(
                    format!("{key}.argv"),
                    format!(
                        "`{{{u}}}` is not a declared parameter: add `params.{u} = \"<regex>\"`"
                    ),
                );
            }
        }
        let when = match r.when {
            None => {
                self.err(
                    format!("{key}.when"),
                    "missing: say which incidents it is for (signatures, sources or checks)",
                );
                When::default()
            }
            Some(w) => {
                self.unknown(
                    &format!("{key}.when"),
                    &w.extra,
                    &["signatures", "sources", "checks"],
                );
                for c in &w.checks {
                    if !checks.contains(c) {
                        self.err(
                            format!("{key}.when.checks"),
                            format!("`{c}` is not a configured [[check]]"),
                        );
                    }
                }
                if w.signatures.is_empty() && w.sources.is_empty() && w.checks.is_empty() {
                    self.err(
                        format!("{key}.when"),
                        "is empty: give signatures, sources or checks it is for",
                    );
                }
                When {
                    signatures: w.signatures,
                    sources: w.sources,
                    checks: w.checks,
                }
            }
        };
        let safe = r.safe.unwrap_or(false);
        let mode = match r.mode.as_deref() {
            None | Some("suggest") => Mode::Suggest,
            Some("approve") => Mode::Approve,
            Some("auto") if safe => Mode::Auto,
            Some("auto") => {
                self.err(
                    format!("{key}.mode"),
                    "\"auto\" runs without asking: only an action marked `safe = true` may",
                );
                Mode::Suggest
            }
            Some(other) => {
                self.err(
                    format!("{key}.mode"),
                    format!("`{other}` is not a mode (expected suggest, approve or auto)"),
                );
                Mode::Suggest
            }
        };
        let timeout = self.duration(
            &format!("{key}.timeout"),
            r.timeout.as_deref(),
            Duration::from_secs(60),
        );
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            self.err(format!("{key}.timeout"), "must be from 1s to 1h");
        }
        let max_per_day = match r.max_per_day {
            None => 3,
            Some(n) if (1..=100).contains(&n) => n as u32,
            Some(n) => {
                self.err(
                    format!("{key}.max_per_day"),
                    format!("{n} is out of range (expected 1 to 100)"),
                );
                3
            }
        };
        let cooldown = self.duration(
            &format!("{key}.cooldown"),
            r.cooldown.as_deref(),
            Duration::from_secs(30 * 60),
        );
        let verify = match r.verify {
            None => None,
            Some(v) => {
                self.unknown(&format!("{key}.verify"), &v.extra, &["check", "quiet_runs"]);
                match (v.check, v.quiet_runs) {
                    (Some(c), None) if checks.contains(&c) => Some(Verify::Check(c)),
                    (Some(c), None) => {
                        self.err(
                            format!("{key}.verify.check"),
                            format!("`{c}` is not a configured [[check]]"),
                        );
                        None
                    }
                    (None, Some(n)) if (1..=100).contains(&n) => Some(Verify::QuietRuns(n as u32)),
                    (None, Some(n)) => {
                        self.err(
                            format!("{key}.verify.quiet_runs"),
                            format!("{n} is out of range (expected 1 to 100)"),
                        );
                        None
                    }
                    _ => {
                        self.err(
                            format!("{key}.verify"),
                            "give exactly one of `check = \"NAME\"` or `quiet_runs = N`",
                        );
                        None
                    }
                }
            }
        };
        let run_as = match r.run_as {
            None => None,
            Some(u)
                if !u.is_empty()
                    && u.len() <= 32
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                Some(u)
            }
            Some(u) => {
                self.err(format!("{key}.run_as"), format!("`{u}` is not a user name"));
                None
            }
        };
        (self.errors.len() == errors_before).then_some(ActionDef {
            id,
            description: r.description.unwrap_or_default(),
            argv,
            params,
            when,
            mode,
            safe,
            timeout,
            max_per_day,
            cooldown,
            verify,
            run_as,
            dry_run: r.dry_run.unwrap_or(true),
        })
    }
}
