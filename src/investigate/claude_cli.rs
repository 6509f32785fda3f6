//! The `claude-cli` backend: `claude -p <prompt> --output-format json` with read-only
//! tools, stdin from /dev/null, in a scratch directory, killed (with its whole process
//! group) when it runs past its timeout.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::prompt::Prompt;
use super::{verdict, Diagnosis};
use crate::config::{ClaudeCliConfig, Config};

/// Most of the CLI's output kept.
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

/// The tools Claude may use: reading only.
pub const READ_ONLY_TOOLS: &str = "Read,Grep,Glob";

/// Environment variables the CLI gets from logwarden's environment (besides
/// `pass_env`); everything else (database URLs, app secrets) is withheld.
const PASS_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];
/// Prefixes of variables passed through: the CLI's own settings.
const PASS_ENV_PREFIXES: &[&str] = &["ANTHROPIC_", "CLAUDE_", "DISABLE_"];

/// What the installed CLI supports, read from `claude --help` once per run.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub max_budget_usd: bool,
    pub no_session_persistence: bool,
    pub strict_mcp_config: bool,
}

impl Features {
    pub fn from_help(help: &str) -> Features {
        Features {
            max_budget_usd: help.contains("--max-budget-usd"),
            no_session_persistence: help.contains("--no-session-persistence"),
            strict_mcp_config: help.contains("--strict-mcp-config"),
        }
    }
}

fn features(cfg: &ClaudeCliConfig) -> Features {
    static CACHE: OnceLock<Mutex<HashMap<String, Features>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(f) = cache.lock().expect("not poisoned").get(&cfg.command) {
        return f.clone();
    }
    let mut cmd = Command::new(&cfg.command);
    cmd.arg("--help");
    environment(&mut cmd, cfg);
    let f = super::exec::run(cmd, Duration::from_secs(20), 256 * 1024)
        .map(|o| Features::from_help(&format!("{}{}", o.stdout, o.stderr)))
        .unwrap_or_default();
    cache
        .lock()
        .expect("not poisoned")
        .insert(cfg.command.clone(), f.clone());
    f
}

/// Sets the CLI's environment: the allow-list, `pass_env`, then `env`.
fn environment(cmd: &mut Command, cfg: &ClaudeCliConfig) {
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        let name = k.to_string_lossy();
        let pass = PASS_ENV.contains(&name.as_ref())
            || PASS_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
            || cfg.pass_env.iter().any(|p| *p == name);
        if pass {
            cmd.env(&k, &v);
        }
    }
    for (k, v) in &cfg.env {
        cmd.env(k, v);
    }
}

/// The curated scripts present in `dir`: executable regular files, sorted.
pub fn scripts(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.metadata()
                        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                        .unwrap_or(false)
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    !n.starts_with('.')
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The folders Claude may read without asking: the log folders and the deploy repo.
fn readable_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = config
        .sources
        .iter()
        .filter_map(|s| s.path().and_then(Path::parent).map(Path::to_path_buf))
        .collect();
    dirs.extend(config.llm.deploy_repo.iter().cloned());
    dirs.sort();
    dirs.dedup();
    dirs.retain(|d| d.is_dir());
    dirs
}

/// The arguments for one investigation. The prompt comes right after `-p`, before the
/// options that take lists.
pub fn args(
    cfg: &ClaudeCliConfig,
    config: &Config,
    features: &Features,
    prompt: &Prompt,
) -> Vec<String> {
    let mut tools = READ_ONLY_TOOLS.to_string();
    let mut allowed: Vec<String> = Vec::new();
    if let (true, Some(dir)) = (config.llm.allow_scripts, &config.llm.scripts_dir) {
        let names = scripts(dir);
        if !names.is_empty() {
            tools.push_str(",Bash");
            for n in names {
                let path = dir.join(n).display().to_string();
                allowed.push(format!("Bash({path})"));
                allowed.push(format!("Bash({path} *)"));
            }
        }
    }
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
        tools,
    ];
    if !allowed.is_empty() {
        a.push("--allowedTools".into());
        a.push(allowed.join(","));
    }
    let dirs = readable_dirs(config);
    if !dirs.is_empty() {
        a.push("--add-dir".into());
        a.extend(dirs.iter().map(|d| d.display().to_string()));
    }
    if features.strict_mcp_config {
        a.push("--strict-mcp-config".into());
    }
    if features.no_session_persistence {
        a.push("--no-session-persistence".into());
    }
    if let (true, Some(b)) = (features.max_budget_usd, cfg.max_budget_usd) {
        a.push("--max-budget-usd".into());
        a.push(format!("{b}"));
    }
    a.push("--append-system-prompt".into());
    a.push(prompt.system.clone());
    a.extend(cfg.extra_args.iter().cloned());
    a
}

/// Runs the CLI once and turns what it printed into a diagnosis.
pub fn run(cfg: &ClaudeCliConfig, config: &Config, prompt: &Prompt) -> Diagnosis {
    let fail = |e: String| Diagnosis {
        error: Some(e),
        ..Diagnosis::default()
    };
    let scratch = match tempfile::Builder::new()
        .prefix("claude-")
        .tempdir_in(&config.state_dir)
    {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot make a scratch directory: {e}")),
    };
    let features = features(cfg);
    let mut cmd = Command::new(&cfg.command);
    cmd.args(args(cfg, config, &features, prompt));
    environment(&mut cmd, cfg);
    let mut child = match cmd
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
    diagnosis_from_output(&stdout, &stderr, status)
}

/// Turns what the CLI printed (`--output-format json`) and how it exited into a
/// diagnosis. Everything in it is untrusted: any bytes give a diagnosis or an error.
pub fn diagnosis_from_output(
    stdout: &[u8],
    stderr: &[u8],
    status: std::process::ExitStatus,
) -> Diagnosis {
    let mut diag = Diagnosis {
        llm_called: true,
        ..Diagnosis::default()
    };
    let text = String::from_utf8_lossy(stdout);
    let result: Option<Value> = serde_json::from_str(text.trim()).ok().or_else(|| {
        text.lines()
            .rev()
            .find_map(|l| serde_json::from_str(l.trim()).ok())
    });
    let Some(Value::Object(result)) = result else {
        let stderr = String::from_utf8_lossy(stderr);
        diag.error = Some(format!(
            "{} and printed no JSON result{}",
            describe(status),
            tail(&stderr).map(|t| format!(": {t}")).unwrap_or_default()
        ));
        return diag;
    };
    // A negative cost would give budget back; a count past u32 must not wrap.
    diag.cost_usd = result
        .get("total_cost_usd")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite() && *c >= 0.0);
    diag.num_turns = result
        .get("num_turns")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn exited(code: i32) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn reads_the_result_line_after_other_output() {
        let out = br#"starting
{"type":"result","subtype":"success","is_error":false,"result":"Done. {\"verdict\": \"noise\", \"severity\": \"low\", \"title\": \"t\"}","total_cost_usd":0.25,"num_turns":3}
"#;
        let d = diagnosis_from_output(out, b"", exited(0));
        assert_eq!(d.error, None);
        assert_eq!((d.verdict.as_str(), d.severity.as_str()), ("noise", "info"));
        assert_eq!((d.cost_usd, d.num_turns), (Some(0.25), Some(3)));
        assert!(d.llm_called);
    }

    #[test]
    fn a_negative_cost_or_an_oversized_turn_count_is_dropped() {
        let out = br#"{"subtype":"success","result":"{\"verdict\": \"real\"}","total_cost_usd":-5.0,"num_turns":4294967297}"#;
        let d = diagnosis_from_output(out, b"", exited(0));
        assert_eq!(d.verdict, "real");
        assert_eq!(d.cost_usd, None, "a negative cost would give budget back");
        assert_eq!(d.num_turns, None, "2^32 + 1 must not wrap to 1");
    }

    #[test]
    fn no_json_names_the_exit_and_the_end_of_stderr() {
        let d = diagnosis_from_output(b"not json\n", b"boom\n", exited(3));
        let e = d.error.unwrap();
        assert!(
            e.starts_with("exited with status 3 and printed no JSON result: boom"),
            "{e}"
        );
    }
}
