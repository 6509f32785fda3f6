//! `logwarden doctor`: checks an install end to end and says how to fix what is wrong.
//!
//! Each check prints ✓ or ✗ (and, for ✗, the fix); a check that does not apply on this
//! machine prints `-` and does not fail. The exit code is non-zero when any check fails.
//! Access to logs, the config, the rules files, the control key and the state and
//! incidents folders is judged for the service user (its uid, its groups and the unit's
//! supplementary groups): run as root, by a child process that becomes that user and asks
//! the kernel; otherwise from the permission bits of every folder on the way. So a check
//! run as root does not pass just because root can read anything.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Config, InvestigatorConfig};
use crate::install::{self, system};
use crate::store::Store;

/// What doctor is asked to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    /// The user the service runs as.
    pub user: String,
    /// The timer's interval (else read from the installed timer, else 5m).
    pub interval: Option<Duration>,
    /// The analysis scripts folder; the config's `[metrics] scripts_dir` when not given.
    pub scripts_dir: Option<PathBuf>,
    /// Publish a real test notification.
    pub send: bool,
    pub now: DateTime<Utc>,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Ok,
    Fail {
        fix: String,
    },
    /// Does not apply here; not a failure.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub mark: Mark,
    pub text: String,
}

fn ok(text: impl Into<String>) -> Check {
    Check {
        mark: Mark::Ok,
        text: text.into(),
    }
}

fn fail(text: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        mark: Mark::Fail { fix: fix.into() },
        text: text.into(),
    }
}

fn skip(text: impl Into<String>) -> Check {
    Check {
        mark: Mark::Skip,
        text: text.into(),
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mark {
            Mark::Ok => write!(f, "✓ {}", self.text),
            Mark::Skip => write!(f, "- {}", self.text),
            Mark::Fail { fix } => write!(f, "✗ {}\n    fix: {fix}", self.text),
        }
    }
}

/// Runs every check and returns them, with whether all passed (for `doctor --json`).
pub fn run_collect(opts: &Options) -> std::io::Result<(bool, Vec<Check>)> {
    let mut checks = Vec::new();
    let ok = run_with(opts, &mut std::io::sink(), &mut checks)?;
    Ok((ok, checks))
}

impl Check {
    /// `{"status": "ok"|"fail"|"skip", "text", "fix"}` for `doctor --json`.
    pub fn to_json(&self) -> serde_json::Value {
        let (status, fix) = match &self.mark {
            Mark::Ok => ("ok", None),
            Mark::Skip => ("skip", None),
            Mark::Fail { fix } => ("fail", Some(fix.clone())),
        };
        serde_json::json!({"status": status, "text": self.text, "fix": fix})
    }
}

/// Runs every check, printing each as it completes; returns whether all passed.
pub fn run(opts: &Options, out: &mut dyn std::io::Write) -> std::io::Result<bool> {
    run_with(opts, out, &mut Vec::new())
}

fn run_with(
    opts: &Options,
    out: &mut dyn std::io::Write,
    collected: &mut Vec<Check>,
) -> std::io::Result<bool> {
    let mut all_ok = true;
    let mut emit = |c: Check, out: &mut dyn std::io::Write| -> std::io::Result<()> {
        if matches!(c.mark, Mark::Fail { .. }) {
            all_ok = false;
        }
        writeln!(out, "{c}")?;
        collected.push(c);
        Ok(())
    };
    let config = match Config::load(&opts.config_path) {
        Ok(c) => c,
        Err(e) => {
            emit(
                fail(
                    format!(
                        "config: {}",
                        e.to_string().trim_end().replace('\n', "\n    ")
                    ),
                    format!(
                        "edit {} (`logwarden check` lists every problem)",
                        opts.config_path.display()
                    ),
                ),
                out,
            )?;
            return Ok(false);
        }
    };
    let prompt_problems =
        crate::investigate::prompt::validate(&config.prompts_dir, config.llm.runbook.as_deref());
    if prompt_problems.is_empty() {
        emit(
            ok(format!("config {} is valid", config.path.display())),
            out,
        )?;
    } else {
        emit(
            fail(
                format!("prompt templates: {}", prompt_problems.join("; ")),
                format!("fix the templates in {}", config.prompts_dir.display()),
            ),
            out,
        )?;
    }
    let who = Who::resolve(&opts.user);
    for s in &config.sources {
        for check in source_checks(s, &who) {
            emit(check, out)?;
        }
    }
    emit(state_check(&config.state_dir, "state dir", &who), out)?;
    emit(
        state_check(&config.incidents_dir, "incidents dir", &who),
        out,
    )?;
    for c in service_access_checks(&config, &who) {
        emit(c, out)?;
    }
    let db = config.database_path();
    if db.exists() {
        emit(
            match who.can(&db, 6) {
                Ok(()) => ok(format!("state database {} is writable by {}", db.display(), who.label())),
                Err(e) => fail(
                    format!("state database {} is not writable by {}: {e}", db.display(), who.label()),
                    format!(
                        "chown {u}:{u} {d} {d}-wal {d}-shm (a run as root made it root's; run by hand as `sudo -u {u} logwarden run`)",
                        u = who.user,
                        d = db.display()
                    ),
                ),
            },
            out,
        )?;
    }
    let (sqlite, current) = crate::store::sqlite_version();
    emit(
        if current {
            ok(format!("SQLite {sqlite}"))
        } else {
            fail(
                format!("SQLite {sqlite} lacks security fixes (3.50.2 or later is needed)"),
                "build logwarden with the rusqlite of its Cargo.lock (bundled SQLite)",
            )
        },
        out,
    )?;
    let store = match config.database_path().exists() {
        true => Store::open(&config.database_path()).ok(),
        false => None,
    };
    let scripts_dir = opts
        .scripts_dir
        .clone()
        .unwrap_or_else(|| config.metrics.scripts_dir.clone());
    for c in script_checks(&scripts_dir, store.as_ref(), &config) {
        emit(c, out)?;
    }
    emit(investigator_check(&config), out)?;
    emit(budget_check(&config, store.as_ref(), opts.now), out)?;
    for c in ntfy_checks(&config, opts.send) {
        emit(c, out)?;
    }
    emit(undeliverable_check(store.as_ref(), opts.now), out)?;
    emit(timer_check(), out)?;
    let interval = opts
        .interval
        .or_else(installed_interval)
        .unwrap_or(install::DEFAULT_INTERVAL);
    emit(last_run_check(store.as_ref(), interval, opts.now), out)?;
    if let Some(store) = &store {
        emit(watcher_problem_check(store), out)?;
    }
    Ok(all_ok)
}

/// The service user: `User=` of the installed service unit, else the default.
pub fn installed_user() -> String {
    [
        install::UNIT_DIR,
        install::PACKAGE_UNIT_DIR,
        "/lib/systemd/system",
    ]
    .iter()
    .find_map(|d| std::fs::read_to_string(Path::new(d).join("logwarden.service")).ok())
    .and_then(|unit| {
        unit.lines()
            .find_map(|l| l.trim().strip_prefix("User=").map(|u| u.trim().to_string()))
    })
    .filter(|u| !u.is_empty())
    .unwrap_or_else(|| install::DEFAULT_USER.to_string())
}

/// What the service user must be able to read and write besides the logs: the config,
/// the ignore file, the mutes file, the control key and the incidents folder. Judged
/// for that user's uid and groups (folders on the way included), so that root running
/// doctor does not pass just because root can read anything.
fn service_access_checks(config: &Config, who: &Who) -> Vec<Check> {
    if who.ids.is_none() {
        return vec![skip(format!(
            "service user `{}` does not exist here: what it can read and write is not checked (give --user)",
            who.user
        ))];
    }
    // The user's own (primary) group: the one the package gives the config to.
    let group = nix::unistd::User::from_name(&who.user)
        .ok()
        .flatten()
        .map(|u| name_of_gid(u.gid.as_raw()))
        .unwrap_or_else(|| who.user.clone());
    let mut v = Vec::new();
    let mut file = |what: &str, path: &Path, want: u32, fix: String, optional: bool| {
        if optional && !path.exists() {
            v.push(skip(format!(
                "{what} {} does not exist yet",
                path.display()
            )));
            return;
        }
        let verb = if want & 2 != 0 {
            "readable and writable"
        } else {
            "readable"
        };
        v.push(match who.can(path, want) {
            Ok(()) => ok(format!(
                "{what} {} is {verb} by {}",
                path.display(),
                who.label()
            )),
            Err(e) => fail(
                format!(
                    "{what} {} is not {verb} by {}: {e}",
                    path.display(),
                    who.label()
                ),
                fix,
            ),
        });
    };
    let share = |p: &Path| {
        format!(
            "chgrp {group} {p} && chmod 0640 {p} (root keeps writing it; the service reads it)",
            p = p.display()
        )
    };
    let own = |p: &Path| format!("chown {}:{group} {}", who.user, p.display());
    file("config", &config.path, 4, share(&config.path), false);
    file(
        "ignore file",
        &config.ignore_file,
        4,
        share(&config.ignore_file),
        true,
    );
    let mutes = config.mutes_file();
    file("mutes file", &mutes, 6, own(&mutes), true);
    if let Some(n) = &config.ntfy {
        if n.more.control_topic.is_some() {
            file(
                "control key",
                &n.more.key_file,
                4,
                own(&n.more.key_file),
                true,
            );
        }
    }
    v
}

/// The interval recorded in the installed timer unit, if there is one.
fn installed_interval() -> Option<Duration> {
    [
        install::UNIT_DIR,
        install::PACKAGE_UNIT_DIR,
        "/lib/systemd/system",
    ]
    .iter()
    .find_map(|d| std::fs::read_to_string(Path::new(d).join(install::TIMER_NAME)).ok())
    .and_then(|t| install::timer_interval(&t))
}

/// Whose access is checked: the service user's ids when it exists here, else this process.
struct Who {
    user: String,
    ids: Option<(u32, Vec<u32>)>,
    /// The user's primary group.
    gid: Option<u32>,
}

impl Who {
    fn resolve(user: &str) -> Who {
        use nix::unistd::{Group, User};
        let found = User::from_name(user).ok().flatten();
        let gid = found.as_ref().map(|u| u.gid.as_raw());
        let ids = found.map(|u| {
            let mut gids = vec![u.gid.as_raw()];
            if let Ok(name) = std::ffi::CString::new(user) {
                if let Ok(list) = nix::unistd::getgrouplist(&name, u.gid) {
                    gids.extend(list.iter().map(|g| g.as_raw()));
                }
            }
            // The unit adds these as SupplementaryGroups.
            for g in install::LOG_GROUPS {
                if let Ok(Some(g)) = Group::from_name(g) {
                    gids.push(g.gid.as_raw());
                }
            }
            gids.sort();
            gids.dedup();
            (u.uid.as_raw(), gids)
        });
        Who {
            user: user.to_string(),
            ids,
            gid,
        }
    }

    fn label(&self) -> String {
        match &self.ids {
            Some(_) => format!("user {}", self.user),
            None => format!(
                "{} (user {} does not exist here; the service will run as {})",
                current_user(),
                self.user,
                self.user
            ),
        }
    }

    /// Whether `path` can be opened for `want` (bits 4 read, 2 write, 1 exec/search).
    /// As root, asked of the kernel as that user (ACLs, immutable files and read-only
    /// mounts count); the permission bits on the way explain a refusal.
    fn can(&self, path: &Path, want: u32) -> Result<(), String> {
        if let (Some((uid, gids)), Some(gid)) = (&self.ids, self.gid) {
            if nix::unistd::geteuid().is_root() {
                return match access_as(*uid, gid, gids, path, want) {
                    Ok(()) => Ok(()),
                    Err(errno) => Err(self.by_bits(path, want).err().unwrap_or_else(|| {
                        format!(
                            "{}: {}",
                            path.display(),
                            std::io::Error::from_raw_os_error(errno)
                        )
                    })),
                };
            }
        }
        self.by_bits(path, want)
    }

    /// Judged from the permission bits of the path and every folder on the way.
    fn by_bits(&self, path: &Path, want: u32) -> Result<(), String> {
        let Some((uid, gids)) = &self.ids else {
            let mut flags = nix::unistd::AccessFlags::empty();
            if want & 4 != 0 {
                flags |= nix::unistd::AccessFlags::R_OK;
            }
            if want & 2 != 0 {
                flags |= nix::unistd::AccessFlags::W_OK;
            }
            if want & 1 != 0 {
                flags |= nix::unistd::AccessFlags::X_OK;
            }
            return nix::unistd::access(path, flags)
                .map_err(|e| format!("{}: {e}", path.display()));
        };
        let bits = |m: &std::fs::Metadata| {
            let mode = m.permissions().mode();
            if m.uid() == *uid {
                (mode >> 6) & 7
            } else if gids.contains(&m.gid()) {
                (mode >> 3) & 7
            } else {
                mode & 7
            }
        };
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(path)
        };
        let mut dir = PathBuf::new();
        let parents: Vec<_> = path.components().collect();
        for c in &parents[..parents.len().saturating_sub(1)] {
            dir.push(c);
            let m = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if bits(&m) & 1 == 0 {
                return Err(format!(
                    "cannot enter {} (mode {:04o}, {}:{})",
                    dir.display(),
                    m.permissions().mode() & 0o7777,
                    name_of_uid(m.uid()),
                    name_of_gid(m.gid())
                ));
            }
        }
        let m = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if bits(&m) & want != want {
            return Err(format!(
                "{} is mode {:04o}, {}:{}",
                path.display(),
                m.permissions().mode() & 0o7777,
                name_of_uid(m.uid()),
                name_of_gid(m.gid())
            ));
        }
        Ok(())
    }
}

/// Asks the kernel whether user `uid` (primary group `gid`, groups `gids`) may access
/// `path` for `want`, in a child process that becomes that user. Err is the errno.
fn access_as(uid: u32, gid: u32, gids: &[u32], path: &Path, want: u32) -> Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
    let groups: Vec<libc::gid_t> = gids.to_vec();
    let mut mode = 0;
    if want & 4 != 0 {
        mode |= libc::R_OK;
    }
    if want & 2 != 0 {
        mode |= libc::W_OK;
    }
    if want & 1 != 0 {
        mode |= libc::X_OK;
    }
    // SAFETY: the child only makes system calls (no allocation, no locks) on data
    // prepared before the fork, then exits with _exit.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO));
        }
        if pid == 0 {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                libc::_exit(255);
            }
            let code = if libc::access(c_path.as_ptr(), mode) == 0 {
                0
            } else {
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EACCES)
                    .clamp(1, 254)
            };
            libc::_exit(code);
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) != pid || !libc::WIFEXITED(status) {
            return Err(libc::EIO);
        }
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            255 => Err(libc::EPERM),
            e => Err(e),
        }
    }
}

fn current_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn name_of_uid(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn name_of_gid(gid: u32) -> String {
    nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string())
}

/// What a source needs: its files (each glob match, or the folder while none exists),
/// its database, or `journalctl`.
fn source_checks(s: &crate::config::SourceConfig, who: &Who) -> Vec<Check> {
    use crate::config::SourceKind;
    match &s.kind {
        SourceKind::File(f) => {
            let pattern = f.path.to_string_lossy();
            if !pattern.contains(['*', '?', '[']) {
                return vec![source_check(&s.name, &f.path, who)];
            }
            let files: Vec<std::path::PathBuf> = glob::glob(&pattern)
                .map(|g| g.flatten().collect())
                .unwrap_or_default();
            if files.is_empty() {
                let dir = f.path.parent().unwrap_or(Path::new("/"));
                return vec![source_check(&s.name, dir, who)];
            }
            files
                .iter()
                .map(|p| source_check(&s.name, p, who))
                .collect()
        }
        SourceKind::Sqlite(q) => vec![source_check(&s.name, &q.path, who)],
        SourceKind::Journald(j) => {
            let found = std::process::Command::new(&j.command)
                .arg("--version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            if found {
                vec![ok(format!(
                    "source `{}`: `{}` runs (the service user needs the systemd-journal group)",
                    s.name, j.command
                ))]
            } else {
                vec![fail(
                    format!("source `{}`: `{}` cannot be run", s.name, j.command),
                    "install systemd's journalctl or set `command` to its path".to_string(),
                )]
            }
        }
    }
}

fn source_check(name: &str, path: &Path, who: &Who) -> Check {
    match who.can(path, 4) {
        Ok(()) => ok(format!(
            "source `{name}`: {} is readable by {}",
            path.display(),
            who.label()
        )),
        Err(e) => fail(
            format!(
                "source `{name}`: {} is not readable by {}: {e}",
                path.display(),
                who.label()
            ),
            format!(
                "make the log readable by group adm (e.g. `chgrp adm {p} && chmod g+r {p}`, and g+x on its folders), or fix `path` in the config",
                p = path.display()
            ),
        ),
    }
}

fn state_check(dir: &Path, what: &str, who: &Who) -> Check {
    match who.can(dir, 7) {
        Ok(()) => ok(format!(
            "{what} {} is writable by {}",
            dir.display(),
            who.label()
        )),
        Err(e) => fail(
            format!(
                "{what} {} is not writable by {}: {e}",
                dir.display(),
                who.label()
            ),
            format!(
                "`sudo logwarden install` creates it, or: mkdir -p {d} && chown {u}:{u} {d}",
                d = dir.display(),
                u = who.user
            ),
        ),
    }
}

/// Today's LLM budget: dollars and calls left.
fn budget_check(config: &Config, store: Option<&Store>, now: chrono::DateTime<Utc>) -> Check {
    if matches!(config.investigator, crate::config::InvestigatorConfig::None) {
        return ok("LLM budget: no LLM investigator configured");
    }
    let l = &config.llm;
    let usage = store
        .and_then(|s| s.llm_usage(now).ok())
        .unwrap_or_default();
    let left = (l.max_usd_per_day - usage.usd_day).max(0.0);
    let text = format!(
        "LLM budget: ${left:.2} of ${:.2} left today; calls left {} this hour, {} today",
        l.max_usd_per_day,
        l.max_calls_per_hour.saturating_sub(usage.calls_hour),
        l.max_calls_per_day.saturating_sub(usage.calls_day)
    );
    if left <= 0.0 || usage.calls_day >= l.max_calls_per_day {
        fail(
            text,
            "new incidents are filed as \"not investigated: budget\" until it renews; raise max_usd_per_day or max_calls_per_day if that is too tight",
        )
    } else {
        ok(text)
    }
}

fn script_checks(dir: &Path, store: Option<&Store>, config: &Config) -> Vec<Check> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return vec![fail(
                format!("analysis scripts: cannot read {}: {e}", dir.display()),
                "`sudo logwarden install` installs them (or give --scripts-dir)",
            )]
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return vec![ok(format!("analysis scripts: none in {}", dir.display()))];
    }
    files
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let checks: Vec<&str> = config
                .metrics
                .checks
                .iter()
                .filter(|c| {
                    Path::new(&c.script)
                        .file_name()
                        .is_some_and(|f| f.to_string_lossy() == name)
                })
                .map(|c| c.name.as_str())
                .collect();
            let last = if checks.is_empty() {
                "not used by any [[check]]".to_string()
            } else {
                checks
                    .iter()
                    .map(|c| {
                        let r = store.and_then(|s| s.check_result(c).ok().flatten());
                        format!("check `{c}`: {}", r.unwrap_or_else(|| "not run yet".into()))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let mode = std::fs::metadata(p)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o111 != 0 {
                ok(format!("script {name} is executable; last result: {last}"))
            } else {
                fail(
                    format!(
                        "script {name} is not executable (mode {:04o})",
                        mode & 0o7777
                    ),
                    format!("chmod 755 {}", p.display()),
                )
            }
        })
        .collect()
}

fn investigator_check(config: &Config) -> Check {
    let InvestigatorConfig::ClaudeCli(c) = &config.investigator else {
        return ok("investigator: none (incidents are filed without a diagnosis)");
    };
    let child = Command::new(&c.command)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let fix = format!(
        "install Claude Code where the service finds `{}` (npm install -g @anthropic-ai/claude-code) and log it in as the service user: sudo -u logwarden env HOME={} CLAUDE_CONFIG_DIR={}/claude {} /login",
        c.command,
        install::STATE_DIR,
        install::STATE_DIR,
        c.command
    );
    let mut child = match child {
        Ok(ch) => ch,
        Err(e) => {
            return fail(
                format!("claude: cannot run `{} --version`: {e}", c.command),
                fix,
            )
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return fail(
                    format!("claude: `{} --version` hung for 20s", c.command),
                    fix,
                );
            }
        }
    }
    match child.wait_with_output() {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout);
            ok(format!(
                "claude: `{} --version` says {}",
                c.command,
                v.lines().next().unwrap_or("").trim()
            ))
        }
        Ok(o) => fail(
            format!(
                "claude: `{} --version` failed ({}): {}",
                c.command,
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            fix,
        ),
        Err(e) => fail(format!("claude: {e}"), fix),
    }
}

/// Notifications ntfy kept refusing (set aside, a notice sent instead) in the last
/// week: an alert that did not arrive as written is worth a look.
fn undeliverable_check(store: Option<&Store>, now: DateTime<Utc>) -> Check {
    let Some(store) = store else {
        return skip("notifications: no state database yet");
    };
    match store.dead_letters(now - chrono::Duration::days(7), 3) {
        Ok((0, _)) => ok("notifications: none undeliverable in the last 7 days"),
        Ok((n, latest)) => {
            let list: Vec<String> = latest
                .iter()
                .map(|d| {
                    let inc = d
                        .incident_id
                        .map(|i| format!(" incident #{i}"))
                        .unwrap_or_default();
                    let why: String = d.error.chars().take(160).collect();
                    format!(
                        "{} {}{inc}: {}",
                        d.dead_at,
                        d.kind,
                        crate::sanitize::line(&why)
                    )
                })
                .collect();
            fail(
                format!(
                    "notifications: {n} undeliverable in the last 7 days (ntfy refused them repeatedly; a notice went out instead): {}",
                    list.join("; ")
                ),
                "read the incidents named with `logwarden incidents show ID`; `logwarden status` lists them; a refusal that is not about the message's content (HTTP 400/413) is a bug worth reporting",
            )
        }
        Err(e) => fail(
            format!("notifications: state database: {e}"),
            "check the state database",
        ),
    }
}

fn ntfy_checks(config: &Config, send: bool) -> Vec<Check> {
    let Some(n) = &config.ntfy else {
        return vec![fail(
            "ntfy: not configured: incidents are filed but nobody is paged",
            format!(
                "add an [ntfy] section with a topic to {}",
                config.path.display()
            ),
        )];
    };
    // A user and password instead of a token
    let secret = n.token.as_ref().or(n.more.basic.as_ref().map(|b| &b.1));
    let token = match secret {
        None => None,
        Some(s) => match s.read() {
            Ok(t) => Some(t),
            Err(e) => {
                return vec![fail(
                    format!(
                        "ntfy: {}: {e}",
                        if n.token.is_some() { "token" } else { "password" }
                    ),
                    "make the token file readable by the logwarden group (chgrp logwarden, chmod 640), or set the variable",
                )]
            }
        },
    };
    let client = match reqwest::blocking::Client::builder()
        .timeout(n.timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("logwarden/", env!("CARGO_PKG_VERSION")))
        // As when publishing: a redirect is reported, not followed.
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => return vec![fail(format!("ntfy: HTTP client: {e}"), "report this bug")],
    };
    let mut checks = Vec::new();
    let health = format!("{}/v1/health", n.server);
    match client.get(&health).send() {
        Ok(r) if r.status().is_success() => {
            let body = r.text().unwrap_or_default();
            if body.contains("\"healthy\":true") {
                checks.push(ok(format!("ntfy: {} is reachable and healthy", n.server)));
            } else {
                checks.push(fail(
                    format!("ntfy: {health} answered but not healthy: {}", body.trim()),
                    "check the ntfy server",
                ));
                return checks;
            }
        }
        Ok(r) => {
            checks.push(fail(
                format!("ntfy: GET {health}: HTTP {}", r.status()),
                "check `server` in [ntfy] (the base URL, like https://ntfy.sh)",
            ));
            return checks;
        }
        Err(e) => {
            checks.push(fail(
                format!(
                    "ntfy: GET {health}: {}",
                    crate::notify::ntfy::error_chain(&e)
                ),
                "check `server` in [ntfy], DNS and the firewall (outgoing HTTPS)",
            ));
            return checks;
        }
    }
    if token.is_some() {
        let account = format!("{}/v1/account", n.server);
        let (what, fix) = if n.token.is_some() {
            (
                "the token is",
                "create a new access token (ntfy token add) and update the token file",
            )
        } else {
            (
                "the user and password are",
                "check `username` and the password (ntfy user change-pass)",
            )
        };
        let req = crate::notify::ntfy::authorize(n, client.get(&account));
        match req.and_then(|r| r.send().map_err(|e| e.to_string())) {
            Ok(r) if r.status().is_success() => checks.push(ok(format!("ntfy: {what} accepted"))),
            Ok(r) => checks.push(fail(
                format!("ntfy: {what} rejected (GET {account}: HTTP {})", r.status()),
                fix,
            )),
            Err(e) => checks.push(fail(
                format!("ntfy: GET {account}: {}", crate::redact::url_userinfo(&e)),
                "check the network",
            )),
        }
    }
    if send {
        let row = crate::store::OutboxRow {
            id: 0,
            incident_id: None,
            title: format!("[{}] logwarden doctor test", config.hostname),
            body: format!(
                "Test notification from `logwarden doctor --send` on {}.",
                config.hostname
            ),
            priority: 2,
            tags: "white_check_mark".into(),
            attempts: 0,
            created_at: Utc::now(),
            severity: "info".into(),
            kind: "test".into(),
        };
        match crate::notify::publish(n, &row) {
            Ok(()) => checks.push(ok(format!(
                "ntfy: test notification published to {}",
                n.topic
            ))),
            Err(e) => checks.push(fail(
                format!("ntfy: publish failed: {e}"),
                "check the topic and that the token may write to it",
            )),
        }
    } else {
        checks.push(skip(
            "ntfy: no test notification sent (use --send to publish one)",
        ));
    }
    checks
}

fn timer_check() -> Check {
    match system::systemd() {
        system::Systemd::Running(_) => {
            match system::systemctl_says(&["is-enabled", install::TIMER_NAME]) {
                Ok(s) if s == "enabled" => ok(format!("timer: {} is enabled", install::TIMER_NAME)),
                Ok(s) if s.is_empty() || s.contains("No such file") || s == "not-found" => fail(
                    format!("timer: {} is not installed", install::TIMER_NAME),
                    "sudo logwarden install".to_string(),
                ),
                Ok(s) => fail(
                    format!("timer: {} is {}", install::TIMER_NAME, s),
                    format!("sudo systemctl enable --now {}", install::TIMER_NAME),
                ),
                Err(e) => fail(
                    format!("timer: {e}"),
                    format!(
                        "`sudo logwarden install` installs and enables it (or: sudo systemctl enable --now {})",
                        install::TIMER_NAME
                    ),
                ),
            }
        }
        other => skip(format!(
            "timer: {}; something else must start `logwarden run` (cron), and the last-run check below tells whether it does",
            other.describe()
        )),
    }
}

/// The watcher problem the last run reported, if any.
fn watcher_problem_check(store: &Store) -> Check {
    match crate::incident::watcher::current(store) {
        Ok(None) => ok("watcher: the last run reported no problem"),
        Ok(Some(p)) => fail(
            format!(
                "watcher problem since {} (notified {}): {}",
                crate::store::ts(p.since),
                crate::store::ts(p.notified_at),
                p.problems.join("; ")
            ),
            "fix what it names (the checks above say what the service user cannot read or write); the next run clears it",
        ),
        Err(e) => fail(format!("watcher: {e}"), "check the state database"),
    }
}

fn last_run_check(store: Option<&Store>, interval: Duration, now: DateTime<Utc>) -> Check {
    let fix_timer =
        "see `systemctl list-timers logwarden.timer` and `journalctl -u logwarden.service`";
    let Some(store) = store else {
        return fail(
            "last run: none recorded (no state database yet)",
            format!("start one: sudo systemctl start logwarden.service (or `sudo -u logwarden logwarden run`); {fix_timer}"),
        );
    };
    let runs = match store.recent_runs(1) {
        Ok(r) => r,
        Err(e) => return fail(format!("last run: {e}"), "check the state database"),
    };
    let Some(last) = runs.first() else {
        return fail(
            "last run: none recorded",
            format!("start one: sudo systemctl start logwarden.service; {fix_timer}"),
        );
    };
    let started = DateTime::parse_from_rfc3339(&last.started_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let age = (now - started).to_std().unwrap_or_default();
    let age_text = match age.as_secs() {
        0 => "0s".to_string(),
        n => crate::duration::format(Duration::from_secs(n)),
    };
    let limit = interval * 3;
    if age > limit {
        return fail(
            format!(
                "last run: {} ({age_text} ago), more than 3× the interval of {}: runs stopped",
                last.started_at,
                crate::duration::format(interval)
            ),
            format!("the timer stopped firing or runs fail before recording; {fix_timer}"),
        );
    }
    if last.errors > 0 {
        return fail(
            format!(
                "last run: {} ({age_text} ago) had {} error{}: {}",
                last.started_at,
                last.errors,
                if last.errors == 1 { "" } else { "s" },
                last.error_text.lines().next().unwrap_or("")
            ),
            "see `logwarden status` and `journalctl -u logwarden.service`",
        );
    }
    ok(format!(
        "last successful run: {} ({age_text} ago, every {})",
        last.started_at,
        crate::duration::format(interval)
    ))
}
