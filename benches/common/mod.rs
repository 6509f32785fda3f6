//! What the benches share: running a command and reading what it cost from wait4(2).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    /// User and system time of the command and the children it waited for.
    pub cpu: Duration,
    pub max_rss_kb: i64,
    pub ok: bool,
}

/// Runs `cmd` (stdout discarded, stderr as given) and measures it.
pub fn measure(mut cmd: Command, stderr: Stdio) -> Measured {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 reaps our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers, our child's pid.
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Measured {
        wall: start.elapsed(),
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}
