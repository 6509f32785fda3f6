//! The run lock: one `logwarden run` at a time per state directory.
//!
//! An advisory `flock` on `run.lock`: the kernel releases it when its owner dies, so a
//! run killed with SIGKILL never leaves a lock behind, and the next run simply takes
//! it (children never inherit it: Rust opens files close-on-exec). The holder writes
//! its pid and start time into the file, so that a run which finds the lock held can
//! tell a run in progress from one that is stuck.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Held for the duration of a run; the OS releases it when the process ends, also on a crash.
pub struct RunLock {
    _file: File,
}

/// Who holds the lock, as it wrote itself into the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub pid: u32,
    pub started: DateTime<Utc>,
    /// Seconds since boot when it took the lock (a clock no one sets).
    pub since_boot: Option<u64>,
}

impl Holder {
    /// How long it has held the lock at `now`. A holder still holding the lock is
    /// alive, so on this boot: when both stand on the boot clock (`boot_now`, given when
    /// `now` was read rather than given), the time since boot tells, whatever the wall
    /// clock did meanwhile. A clock stepped back does not hide a stuck run, and one
    /// stepped forward does not make a healthy run look stuck. Otherwise the wall clock
    /// tells (never less than nothing).
    pub fn age(&self, now: DateTime<Utc>, boot_now: Option<u64>) -> chrono::Duration {
        match (self.since_boot, boot_now) {
            (Some(then), Some(b)) => chrono::Duration::seconds(b.saturating_sub(then) as i64),
            _ => (now - self.started).max(chrono::Duration::zero()),
        }
    }
}

/// Seconds since boot (`/proc/uptime`), when the system says.
pub fn since_boot() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(secs as u64)
}

/// The outcome of trying to take the lock.
pub enum Acquired {
    Got(RunLock),
    /// Another run holds it (who, when it said so).
    Busy(Option<Holder>),
}

/// Tries to take the lock for up to `wait`; the holder is recorded as this process,
/// started at `now`.
pub fn acquire(state_dir: &Path, wait: Duration, now: DateTime<Utc>) -> std::io::Result<Acquired> {
    let path = state_dir.join("run.lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)?;
    let _ = crate::fsio::adopt(&path);
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => {
                // Best effort: the lock itself is what excludes; the text only informs.
                let _ = file.set_len(0).and_then(|()| {
                    file.rewind()?;
                    match since_boot() {
                        Some(b) => writeln!(file, "{} {} {b}", std::process::id(), now.timestamp()),
                        None => writeln!(file, "{} {}", std::process::id(), now.timestamp()),
                    }
                });
                return Ok(Acquired::Got(RunLock { _file: file }));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Ok(Acquired::Busy(holder(&mut file)));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(256).read_to_string(&mut text).ok()?;
    let mut parts = text.split_whitespace();
    let pid = parts.next()?.parse().ok()?;
    let started = DateTime::from_timestamp(parts.next()?.parse().ok()?, 0)?;
    let since_boot = parts.next().and_then(|b| b.parse().ok());
    Some(Holder {
        pid,
        started,
        since_boot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_known_to_the_next_run_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let Acquired::Got(first) = acquire(dir.path(), Duration::ZERO, t0).unwrap() else {
            panic!("the lock was free");
        };
        match acquire(dir.path(), Duration::ZERO, t0).unwrap() {
            Acquired::Busy(Some(h)) => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.started, t0);
            }
            _ => panic!("the lock should be busy with a known holder"),
        }
        drop(first);
        assert!(matches!(
            acquire(dir.path(), Duration::ZERO, t0).unwrap(),
            Acquired::Got(_)
        ));
    }

    #[test]
    fn a_holder_ages_by_the_time_since_boot_whatever_the_wall_clock_did() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let h = Holder {
            pid: 1,
            started: t0,
            since_boot: Some(1000),
        };
        let m = |n: i64| t0 + chrono::Duration::minutes(n);
        assert_eq!(h.age(m(5), Some(1300)), chrono::Duration::minutes(5));
        // the clock stepped forward an hour; 10 seconds have passed
        assert_eq!(h.age(m(60), Some(1010)), chrono::Duration::seconds(10));
        // a time given, not read: the wall clock tells
        assert_eq!(h.age(m(5), None), chrono::Duration::minutes(5));
        // the clock went back an hour; 20 minutes have passed since it took the lock
        assert_eq!(
            h.age(m(-40), Some(1000 + 20 * 60)),
            chrono::Duration::minutes(20)
        );
        let unknown = Holder {
            since_boot: None,
            ..h
        };
        assert_eq!(unknown.age(m(-40), Some(5000)), chrono::Duration::zero());
    }
}
