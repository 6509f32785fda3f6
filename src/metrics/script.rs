//! Running a check's script: no stdin, a minimal environment, its own process group
//! (killed whole on timeout, and any children it left behind killed when it exits),
//! stdout capped. A script that cannot start, fails, hangs or prints junk is described,
//! never fatal.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::exposition::{self, Parsed};

/// The environment every script gets (besides the check's own `env`).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: &'a Path,
    pub timeout: Duration,
    pub max_output: u64,
    /// Unix seconds, given to the script as `LOGWARDEN_NOW`.
    pub now: i64,
    pub check: &'a str,
}

/// How a script run ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub parsed: Parsed,
    /// Why the run counts as failed; `None` when it worked.
    pub failure: Option<String>,
    /// Problems that did not make it fail (junk lines next to good samples, capped output).
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

/// Runs a script and parses what it printed.
pub fn run(inv: &Invocation) -> Outcome {
    let started = Instant::now();
    let mut out = Outcome::default();
    match spawn_and_wait(inv) {
        Err(e) => out.failure = Some(e),
        Ok((code, stdout, stderr, capped)) => {
            out.parsed = exposition::parse(&stdout);
            if capped {
                out.warnings.push(format!(
                    "output capped at {} bytes; the rest was dropped",
                    inv.max_output
                ));
            }
            let stderr_tail = last_line(&stderr);
            if code != Some(0) {
                out.failure = Some(match code {
                    Some(c) => format!("exited with status {c}{stderr_tail}"),
                    None => format!("killed by a signal{stderr_tail}"),
                });
            } else if out.parsed.samples.is_empty() {
                out.failure = Some(if out.parsed.errors.is_empty() {
                    format!("printed no samples{stderr_tail}")
                } else {
                    format!(
                        "printed no valid samples ({} bad line(s); first: {})",
                        out.parsed.errors.len(),
                        out.parsed.errors[0]
                    )
                });
            } else if !out.parsed.errors.is_empty() {
                out.warnings.push(format!(
                    "{} line(s) not understood; first: {}",
                    out.parsed.errors.len(),
                    out.parsed.errors[0]
                ));
            }
        }
    }
    out.duration_ms = started.elapsed().as_millis() as u64;
    out
}

fn last_line(stderr: &str) -> String {
    match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!(": {}", l.trim().chars().take(200).collect::<String>()),
        None => String::new(),
    }
}

/// Exit code (None: killed by a signal), stdout, stderr, and whether stdout was capped.
fn spawn_and_wait(inv: &Invocation) -> Result<(Option<i32>, String, String, bool), String> {
    let mut cmd = Command::new(inv.program);
    cmd.args(inv.args)
        .current_dir(inv.cwd)
        .env_clear()
        .env("PATH", PATH)
        .env("LC_ALL", "C")
        .env("LOGWARDEN_NOW", inv.now.to_string())
        .env("LOGWARDEN_CHECK", inv.check);
    if let Ok(tz) = std::env::var("TZ") {
        cmd.env("TZ", tz);
    }
    // Where mktemp (and sort, python's tempfile) write: the installed unit points it at a
    // folder of the run's own, the host's /tmp being read-only to the watcher.
    if let Some(tmp) = std::env::var_os("TMPDIR") {
        cmd.env("TMPDIR", tmp);
    }
    cmd.envs(inv.env);
    let limits = crate::process::Limits {
        timeout: inv.timeout,
        max_stdout: inv.max_output as usize,
        max_stderr: 16 * 1024,
    };
    let mut f = crate::process::run(cmd, None, &limits)
        .map_err(|e| format!("cannot run {}: {e}", inv.program.display()))?;
    let Some(status) = f.status else {
        return Err(format!(
            "timed out after {} and was killed with its process group",
            crate::duration::format(inv.timeout)
        ));
    };
    if f.stdout_capped {
        // Keep whole lines only.
        let end = f
            .stdout
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        f.stdout.truncate(end);
    }
    Ok((
        status.code(),
        f.stdout_text(),
        f.stderr_text(),
        f.stdout_capped,
    ))
}
