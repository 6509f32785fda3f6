//! The `claude-cli` backend: `claude -p <prompt> --output-format json` with read-only
//! tools, stdin from /dev/null, in a scratch directory, killed (with its whole process
//! group) when it runs past its timeout.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::prompt::Prompt;
use super::{verdict, Diagnosis};
use crate::config::ClaudeCliConfig;

/// Most of the CLI's output kept.
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

/// The tools Claude may use: reading only.
pub const READ_ONLY_TOOLS: &str = "Read,Grep,Glob";

/// The arguments for one investigation.
pub fn args(cfg: &ClaudeCliConfig, prompt: &Prompt) -> Vec<String> {
    let mut a = vec![
        "-p".to_string(),
        prompt.user.clone(),
        "--output-format".into(),
        "json".into(),
        "--model".into(),
        cfg.model.clone(),
        "--max-turns".into(),
        cfg.max_turns.to_string(),
        "--tools".into(),
        READ_ONLY_TOOLS.into(),
        "--append-system-prompt".into(),
        prompt.system.clone(),
    ];
    a.extend(cfg.extra_args.iter().cloned());
    a
}

/// Runs the CLI once and turns what it printed into a diagnosis.
pub fn run(cfg: &ClaudeCliConfig, prompt: &Prompt, state_dir: &Path) -> Diagnosis {
    let fail = |e: String| Diagnosis {
        error: Some(e),
        ..Diagnosis::default()
    };
    let scratch = match tempfile::Builder::new()
        .prefix("claude-")
        .tempdir_in(state_dir)
    {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot make a scratch directory: {e}")),
    };
    let mut child = match Command::new(&cfg.command)
        .args(args(cfg, prompt))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(scratch.path())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run `{}`: {e}", cfg.command)),
    };
    let mut diag = Diagnosis {
        llm_called: true,
        ..Diagnosis::default()
    };
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.take(MAX_OUTPUT).read_to_end(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.take(64 * 1024).read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= cfg.timeout => {
                // SAFETY: killpg only sends a signal to the group we created.
                unsafe {
                    libc::killpg(child.id() as i32, libc::SIGKILL);
                }
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                diag.error = Some(format!("waiting for `{}`: {e}", cfg.command));
                return diag;
            }
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let Some(status) = status else {
        diag.error = Some(format!(
            "timed out after {} and was killed",
            crate::duration::format(cfg.timeout)
        ));
        return diag;
    };
    let text = String::from_utf8_lossy(&stdout);
    let result: Option<Value> = serde_json::from_str(text.trim()).ok().or_else(|| {
        text.lines()
            .rev()
            .find_map(|l| serde_json::from_str(l.trim()).ok())
    });
    let Some(Value::Object(result)) = result else {
        let stderr = String::from_utf8_lossy(&stderr);
        diag.error = Some(format!(
            "{} and printed no JSON result{}",
            describe(status),
            tail(&stderr).map(|t| format!(": {t}")).unwrap_or_default()
        ));
        return diag;
    };
    diag.cost_usd = result.get("total_cost_usd").and_then(Value::as_f64);
    diag.num_turns = result
        .get("num_turns")
        .and_then(Value::as_u64)
        .map(|n| n as u32);
    if let Some(Value::Array(d)) = result.get("permission_denials") {
        diag.permission_denials = d.clone();
    }
    let subtype = result.get("subtype").and_then(Value::as_str).unwrap_or("");
    let is_error = result
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let answer = result.get("result").and_then(Value::as_str).unwrap_or("");
    if is_error || (subtype != "success" && !subtype.is_empty()) {
        diag.error = Some(format!(
            "Claude reported an error ({}{}){}",
            if subtype.is_empty() {
                "no subtype"
            } else {
                subtype
            },
            if status.success() {
                String::new()
            } else {
                format!(", {}", describe(status))
            },
            tail(answer).map(|t| format!(": {t}")).unwrap_or_default()
        ));
        return diag;
    }
    match verdict::parse(answer) {
        Some(v) => Diagnosis {
            cost_usd: diag.cost_usd,
            num_turns: diag.num_turns,
            permission_denials: diag.permission_denials,
            llm_called: true,
            ..v
        },
        None => {
            diag.error = Some(format!(
                "Claude answered without the JSON verdict{}",
                tail(answer).map(|t| format!(": {t}")).unwrap_or_default()
            ));
            diag
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "was killed by a signal".into(),
    }
}

/// The last 300 characters of a text, on one line.
fn tail(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let chars: Vec<char> = t.chars().collect();
    let start = chars.len().saturating_sub(300);
    Some(chars[start..].iter().collect::<String>().replace('\n', " "))
}
