//! Running a helper program (git, a curated script) for the investigator: through the
//! one process runner ([`crate::process`]), stdin from /dev/null.

use std::process::{Command, ExitStatus};
use std::time::Duration;

/// What a helper printed (stdout then stderr, each capped) and how it ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion or until `timeout`, keeping at most `max` bytes of each stream.
pub fn run(cmd: Command, timeout: Duration, max: u64) -> Result<Output, String> {
    let limits = crate::process::Limits {
        timeout,
        max_stdout: max as usize,
        max_stderr: max as usize,
    };
    let f = crate::process::run(cmd, None, &limits)?;
    match f.status {
        Some(status) => Ok(Output {
            status,
            stdout: f.stdout_text(),
            stderr: f.stderr_text(),
        }),
        None => Err(format!(
            "timed out after {} and was killed",
            crate::duration::format(timeout)
        )),
    }
}
