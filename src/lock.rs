//! The run lock: one `logwarden run` at a time per state directory.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Held for the duration of a run; the OS releases it when the process ends, also on a crash.
pub struct RunLock {
    _file: File,
}

/// Tries to take the lock for up to `wait`. `Ok(None)` means another run holds it.
pub fn acquire(state_dir: &Path, wait: Duration) -> std::io::Result<Option<RunLock>> {
    let path = state_dir.join("run.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let _ = crate::fsio::adopt(&path);
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(RunLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}
