//! The one way logwarden runs a child program (claude, curated scripts, git): in a
//! process group of its own, with a deadline, stdin fed or closed, and a cap on what is
//! kept of its output.
//!
//! A run must stay bounded whatever the child does. So the deadline kills the whole
//! group; when the child exits, whatever it left running in its group is killed too;
//! and the output is read by threads that are never waited for past the end: a
//! grandchild that escaped the group (`setsid`) and still holds the pipe cannot keep
//! the run waiting for an end of file that never comes. Such an escapee dies with the
//! service's cgroup when the unit's run ends.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a child may do and how much of it is kept.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock deadline from the spawn; the group is killed at it.
    pub timeout: Duration,
    /// Bytes of stdout kept (the rest is read and dropped, so the child never blocks).
    pub max_stdout: usize,
    /// Bytes of stderr kept.
    pub max_stderr: usize,
}

/// How a child ended and what it printed.
#[derive(Debug)]
pub struct Finished {
    /// `None` when the deadline killed it.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether stdout went past `max_stdout`.
    pub stdout_capped: bool,
    pub elapsed: Duration,
}

impl Finished {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// How long the output readers may still take once the child and its group are gone:
/// long enough for the pipe's last bytes, short enough that a held pipe costs nothing.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// A reader's progress, shared with the runner so that it can take what was read so far
/// without waiting for the reader to finish.
#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    capped: bool,
    done: bool,
}

fn reader(mut pipe: impl Read + Send + 'static, max: usize) -> Arc<Mutex<Captured>> {
    let shared = Arc::new(Mutex::new(Captured::default()));
    let mine = shared.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut c = mine.lock().unwrap_or_else(|p| p.into_inner());
                    let room = max.saturating_sub(c.kept.len());
                    c.kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        c.capped = true;
                    }
                }
            }
        }
        mine.lock().unwrap_or_else(|p| p.into_inner()).done = true;
    });
    shared
}

fn take(c: &Arc<Mutex<Captured>>) -> (Vec<u8>, bool) {
    let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
    (std::mem::take(&mut c.kept), c.capped)
}

fn is_done(c: &Arc<Mutex<Captured>>) -> bool {
    c.lock().unwrap_or_else(|p| p.into_inner()).done
}

/// Runs `cmd` under `limits`, writing `stdin` to it (then closing it) or giving it
/// /dev/null. Errors only when the program cannot be started.
pub fn run(mut cmd: Command, stdin: Option<Vec<u8>>, limits: &Limits) -> Result<Finished, String> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", cmd.get_program().to_string_lossy()))?;
    let pid = child.id() as libc::pid_t;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A writer thread: a child that never reads its stdin must not block the runner.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let out = reader(child.stdout.take().expect("piped"), limits.max_stdout);
    let err = reader(child.stderr.take().expect("piped"), limits.max_stderr);
    let timed_out = loop {
        // Asked without reaping, so that the group still exists to be killed.
        // SAFETY: an all-zero siginfo is valid for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child with a valid siginfo pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: reading the pid field that waitid filled.
        let exited = r != 0 || unsafe { info.si_pid() } == pid;
        if exited {
            break false;
        }
        if start.elapsed() >= limits.timeout {
            break true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // SAFETY: the group is led by our still unreaped child: this signals only it and
    // what it started (and stayed in its group).
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the child: {e}"))?;
    let grace = Instant::now() + DRAIN_GRACE;
    while !(is_done(&out) && is_done(&err)) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (stdout, stdout_capped) = take(&out);
    let (stderr, _) = take(&err);
    Ok(Finished {
        status: (!timed_out).then_some(status),
        stdout,
        stderr,
        stdout_capped,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    fn limits(timeout_ms: u64) -> Limits {
        Limits {
            timeout: Duration::from_millis(timeout_ms),
            max_stdout: 1024,
            max_stderr: 1024,
        }
    }

    #[test]
    fn output_status_and_stdin() {
        let f = run(
            sh("cat; echo err >&2; exit 3"),
            Some(b"hello".to_vec()),
            &limits(60_000),
        )
        .unwrap();
        assert_eq!(f.stdout, b"hello");
        assert_eq!(f.stderr_text(), "err\n");
        assert_eq!(f.status.unwrap().code(), Some(3));
    }

    #[test]
    fn output_is_capped_and_the_child_never_blocks() {
        let f = run(sh("head -c 1000000 /dev/zero"), None, &limits(60_000)).unwrap();
        assert_eq!(f.stdout.len(), 1024);
        assert!(f.stdout_capped);
        assert!(f.status.unwrap().success());
    }

    #[test]
    fn the_deadline_kills_the_group() {
        let f = run(sh("sleep 600 & sleep 600; echo never"), None, &limits(300)).unwrap();
        assert!(f.timed_out());
        // Generous: the point is that nobody waited for the 600 s sleeps.
        assert!(f.elapsed < Duration::from_secs(120), "{:?}", f.elapsed);
    }

    #[test]
    fn a_child_that_leaves_a_daemon_holding_stdout_does_not_hold_the_run() {
        // The daemon escapes the group with setsid and keeps the pipe open for 120 s.
        let f = run(
            sh("echo verdict; setsid sleep 120 & exit 0"),
            None,
            &limits(60_000),
        )
        .unwrap();
        assert!(f.status.unwrap().success());
        assert_eq!(f.stdout_text(), "verdict\n");
        assert!(f.elapsed < Duration::from_secs(60), "{:?}", f.elapsed);
    }

    #[test]
    fn a_child_that_ignores_its_stdin_is_fine() {
        let big = vec![b'x'; 4 * 1024 * 1024];
        let f = run(sh("exit 0"), Some(big), &limits(60_000)).unwrap();
        assert!(f.status.unwrap().success());
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let e = run(Command::new("/nonexistent/prog"), None, &limits(1000)).unwrap_err();
        assert!(e.contains("cannot run `/nonexistent/prog`"), "{e}");
    }
}
