//! The system around an install: users and groups, ownership, and systemd.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use nix::unistd::{Group, User};

use super::Owner;

/// The numeric ids an install sets as owners, when it can.
#[derive(Debug, Clone)]
pub struct Ids {
    /// (uid, gid) of the service user, when it exists on this system.
    pub service: Option<(u32, u32)>,
    /// Whether this process may chown (it runs as root).
    pub root: bool,
}

impl Ids {
    pub fn resolve(user: &str) -> Ids {
        let service = User::from_name(user)
            .ok()
            .flatten()
            .map(|u| (u.uid.as_raw(), u.gid.as_raw()));
        Ids {
            service,
            root: nix::unistd::geteuid().is_root(),
        }
    }

    /// The (uid, gid) for an owner, or None when owners cannot be set here.
    pub fn owner(&self, owner: Owner) -> Option<(u32, u32)> {
        if !self.root {
            return None;
        }
        let (uid, gid) = self.service?;
        Some(match owner {
            Owner::Root => (0, 0),
            Owner::RootServiceGroup => (0, gid),
            Owner::Service => (uid, gid),
        })
    }

    /// Why owners are not being set, if they are not.
    pub fn why_no_chown(&self, user: &str) -> Option<String> {
        if !self.root {
            Some("not running as root".into())
        } else if self.service.is_none() {
            Some(format!("user {user} does not exist on this system"))
        } else {
            None
        }
    }
}

/// Whether a path has the wanted owner (always true when owners are not managed).
pub fn owner_matches(m: &std::fs::Metadata, want: Option<(u32, u32)>) -> bool {
    want.is_none_or(|(uid, gid)| m.uid() == uid && m.gid() == gid)
}

/// Creates the system user with its own group, home in the state dir, no login shell,
/// and adds it to the log-reading groups that exist here.
pub fn create_user(user: &str, home: &str) -> Result<(), String> {
    let shell = ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false"]
        .into_iter()
        .find(|s| std::path::Path::new(s).exists())
        .unwrap_or("/bin/false");
    let mut args = vec![
        "--system",
        "--user-group",
        "--home-dir",
        home,
        "--no-create-home",
        "--shell",
        shell,
        "--comment",
        "logwarden log watcher",
    ];
    let groups: Vec<&str> = super::LOG_GROUPS
        .iter()
        .copied()
        .filter(|g| Group::from_name(g).ok().flatten().is_some())
        .collect();
    let joined = groups.join(",");
    if !groups.is_empty() {
        args.extend(["--groups", joined.as_str()]);
    }
    args.push(user);
    run("useradd", &args)
}

pub fn delete_user(user: &str) -> Result<(), String> {
    run("userdel", &[user])
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether systemd manages this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Systemd {
    /// Running, with its state (running, degraded, starting…).
    Running(String),
    /// systemctl exists but systemd is not PID 1 (a container, a chroot).
    NotRunning,
    /// No systemctl at all.
    Missing,
}

impl Systemd {
    pub fn describe(&self) -> String {
        match self {
            Systemd::Running(s) => format!("systemd is {s}"),
            Systemd::NotRunning => "systemd is not running on this machine".into(),
            Systemd::Missing => "systemctl is not installed".into(),
        }
    }
}

/// Asks `systemctl is-system-running` (found on PATH).
pub fn systemd() -> Systemd {
    match Command::new("systemctl").arg("is-system-running").output() {
        Err(_) => Systemd::Missing,
        Ok(o) => {
            let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if state.is_empty() || state == "offline" || state == "unknown" {
                Systemd::NotRunning
            } else {
                Systemd::Running(state)
            }
        }
    }
}

/// Runs systemctl; Ok with its stdout when it exits 0, Err with what it said otherwise.
/// (`is-enabled`/`is-active` exit non-zero for "disabled"/"inactive": their stdout
/// is in the error too, after "systemctl …: ".)
pub fn systemctl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "systemctl {}: {}{}",
            args.join(" "),
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What `systemctl <args>` prints on stdout whatever its exit status (`is-enabled`
/// says "disabled" and exits 1); Err only when systemctl cannot be run.
pub fn systemctl_says(args: &[&str]) -> Result<String, String> {
    Command::new("systemctl")
        .args(args)
        .output()
        .map(|o| {
            let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if out.is_empty() {
                String::from_utf8_lossy(&o.stderr).trim().to_string()
            } else {
                out
            }
        })
        .map_err(|e| format!("cannot run systemctl: {e}"))
}
