//! The `claude-cli` backend: `claude -p --output-format json` with the prompt on stdin,
//! none of Claude Code's own tools, and logwarden's tool layer served to it over MCP
//! (`logwarden mcp`, see [`super::mcp`]); in a scratch directory that is also its
//! `HOME`, killed (with its whole process group) when it runs past its timeout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

use super::prompt::Prompt;
use super::{verdict, Diagnosis};
use crate::config::{ClaudeCliConfig, Config};
use crate::store::IncidentRow;

/// Most of the CLI's output kept.
const MAX_OUTPUT: u64 = 8 * 1024 * 1024;

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
    /// `--append-system-prompt-file`: the system prompt (with the nonce and the runbook)
    /// stays off the command line too.
    pub append_system_prompt_file: bool,
}

impl Features {
    pub fn from_help(help: &str) -> Features {
        Features {
            max_budget_usd: help.contains("--max-budget-usd"),
            no_session_persistence: help.contains("--no-session-persistence"),
            append_system_prompt_file: help.contains("--append-system-prompt-file")
                || help.contains("--append-system-prompt[-file]"),
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

/// The MCP server name; Claude Code calls its tools `mcp__logwarden__<tool>`.
pub const MCP_SERVER: &str = "logwarden";

/// The `--mcp-config` file: one stdio server, this very binary as `logwarden mcp`.
pub fn mcp_config(
    exe: &Path,
    config: &Config,
    incident: i64,
    nonce: &str,
    evidence: &Path,
) -> Value {
    let config_path = std::fs::canonicalize(&config.path).unwrap_or_else(|_| config.path.clone());
    json!({"mcpServers": {MCP_SERVER: {
        "type": "stdio",
        "command": exe.display().to_string(),
        "args": [
            "mcp",
            "--config", config_path.display().to_string(),
            "--incident", incident.to_string(),
            "--nonce", nonce,
            "--evidence", evidence.display().to_string(),
        ],
    }}})
}

/// The arguments for one investigation. The prompt is not among them: it goes on stdin
/// (`claude -p` reads it there when no prompt argument is given), so no log text is in
/// argv and a NUL byte in a record cannot make the process fail to start. `--tools ""`
/// removes every built-in tool (Bash, Read, Write, WebFetch…: `--allowedTools` alone
/// only auto-approves); the only tools left are logwarden's own, over MCP.
pub fn args(
    cfg: &ClaudeCliConfig,
    features: &Features,
    allowance: f64,
    system: &str,
    system_file: &Path,
    mcp_config: &Path,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-p".into(),
        "--output-format".into(),
        "json".into(),
        "--model".into(),
        cfg.model.clone(),
        "--max-turns".into(),
        cfg.max_turns.to_string(),
        "--tools".into(),
        String::new(),
        "--mcp-config".into(),
        mcp_config.display().to_string(),
        "--strict-mcp-config".into(),
        "--allowedTools".into(),
        format!("mcp__{MCP_SERVER}__*"),
    ];
    if features.no_session_persistence {
        a.push("--no-session-persistence".into());
    }
    if features.max_budget_usd {
        a.push("--max-budget-usd".into());
        a.push(format!("{allowance}"));
    }
    if features.append_system_prompt_file {
        a.push("--append-system-prompt-file".into());
        a.push(system_file.display().to_string());
    } else {
        a.push("--append-system-prompt".into());
        a.push(system.replace('\0', "\u{FFFD}"));
    }
    a.extend(cfg.extra_args.iter().cloned());
    a
}

/// The Claude Code config folder the CLI would use with logwarden's environment.
fn real_config_dir(cfg: &ClaudeCliConfig) -> Option<PathBuf> {
    let var = |k: &str| {
        cfg.env
            .get(k)
            .cloned()
            .or_else(|| std::env::var(k).ok())
            .filter(|v| !v.is_empty())
    };
    var("CLAUDE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".claude")))
}

/// The scratch home of one investigation: `HOME` and `CLAUDE_CONFIG_DIR` point into it,
/// so the CLI's MCP logs (`~/.cache/claude-cli-nodejs`) and session transcripts
/// (`CLAUDE_CONFIG_DIR/projects`), which hold the prompt and tool results, go away with
/// the scratch directory. The login (`.credentials.json`) is copied in, and copied back
/// when the CLI refreshed it.
struct ScratchHome {
    config_dir: PathBuf,
    credentials: Option<(PathBuf, Vec<u8>)>,
}

impl ScratchHome {
    fn new(cfg: &ClaudeCliConfig, home: &Path) -> std::io::Result<ScratchHome> {
        let config_dir = home.join(".claude");
        std::fs::create_dir_all(&config_dir)?;
        let mut credentials = None;
        if let Some(real) = real_config_dir(cfg) {
            let creds = real.join(".credentials.json");
            if let Ok(bytes) = std::fs::read(&creds) {
                write_private(&config_dir.join(".credentials.json"), &bytes)?;
                credentials = Some((creds, bytes));
            }
            if let Ok(bytes) = std::fs::read(real.join(".claude.json")) {
                write_private(&config_dir.join(".claude.json"), &bytes)?;
            }
        }
        Ok(ScratchHome {
            config_dir,
            credentials,
        })
    }

    /// Copies a refreshed login back where it came from.
    fn keep_login(&self) {
        let Some((real, before)) = &self.credentials else {
            return;
        };
        match std::fs::read(self.config_dir.join(".credentials.json")) {
            Ok(now) if !now.is_empty() && &now != before => {
                let tmp = real.with_extension("json.logwarden-tmp");
                if write_private(&tmp, &now).is_ok() {
                    let _ = std::fs::rename(&tmp, real);
                }
            }
            _ => {}
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Runs the CLI once and turns what it printed into a diagnosis.
/// What one investigation may spend when `left` dollars remain of the day's limit: its
/// `max_budget_usd`, or less when less is left and the CLI can be held to it. A CLI
/// without `--max-budget-usd` cannot, so it is not started unless a whole
/// investigation's budget fits.
pub fn allowance(cfg: &ClaudeCliConfig, left: f64) -> Result<f64, String> {
    let per_call = cfg.max_budget_usd.unwrap_or(0.5);
    if per_call <= left {
        return Ok(per_call);
    }
    if !features(cfg).max_budget_usd {
        return Err(format!(
            "${:.2} left of the day's limit, less than one investigation's ${per_call:.2}, and this claude CLI has no --max-budget-usd to hold it to less",
            left.max(0.0)
        ));
    }
    // Cents: the CLI is told a figure it can print back, and a call never gets more
    // than what is left.
    let cents = (left * 100.0 + 1e-9).floor() / 100.0;
    if cents < 0.01 {
        return Err(format!(
            "less than a cent left of the day's limit (${:.4})",
            left.max(0.0)
        ));
    }
    Ok(cents)
}

/// Runs one investigation, allowed to spend `allowance` dollars (see [`allowance`]).
pub fn run(
    cfg: &ClaudeCliConfig,
    config: &Config,
    prompt: &Prompt,
    incident: &IncidentRow,
    evidence: &str,
    allowance: f64,
) -> Diagnosis {
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
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot find logwarden's own executable: {e}")),
    };
    let home = scratch.path().join("home");
    let evidence_file = scratch.path().join("evidence.md");
    let mcp_file = scratch.path().join("mcp.json");
    let system_file = scratch.path().join("system.md");
    let mcp = mcp_config(&exe, config, incident.id, &prompt.nonce, &evidence_file);
    let home_dir = match ScratchHome::new(cfg, &home).and_then(|h| {
        write_private(&evidence_file, evidence.as_bytes())?;
        write_private(&mcp_file, mcp.to_string().as_bytes())?;
        write_private(
            &system_file,
            prompt.system.replace('\0', "\u{FFFD}").as_bytes(),
        )?;
        Ok(h)
    }) {
        Ok(h) => h,
        Err(e) => return fail(format!("cannot prepare the scratch directory: {e}")),
    };
    let features = features(cfg);
    let mut cmd = Command::new(&cfg.command);
    cmd.args(args(
        cfg,
        &features,
        allowance,
        &prompt.system,
        &system_file,
        &mcp_file,
    ));
    environment(&mut cmd, cfg);
    for k in [
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("HOME", &home)
        .env("CLAUDE_CONFIG_DIR", &home_dir.config_dir);
    cmd.current_dir(scratch.path());
    // The prompt goes on stdin (never argv: `ps` shows argv, and a NUL would stop the
    // CLI from starting). The one process runner bounds the CLI and whatever it starts.
    let user = prompt.user.replace('\0', "\u{FFFD}");
    let limits = crate::process::Limits {
        timeout: cfg.timeout,
        max_stdout: MAX_OUTPUT as usize,
        max_stderr: 64 * 1024,
    };
    let finished = match crate::process::run(cmd, Some(user.into_bytes()), &limits) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    home_dir.keep_login();
    // What a call that does not say what it cost is charged: the most the CLI may spend
    // on one. A CLI (or a stand-in) that reports no cost must not make calls free, or a
    // forced investigation would have no ceiling at all.
    let ceiling = allowance;
    let Some(status) = finished.status else {
        return Diagnosis {
            llm_called: true,
            cost_usd: Some(ceiling),
            error: Some(format!(
                "timed out after {} and was killed",
                crate::duration::format(cfg.timeout)
            )),
            ..Diagnosis::default()
        };
    };
    let (stdout, stderr) = (finished.stdout, finished.stderr);
    let mut d = diagnosis_from_output(&stdout, &stderr, status, &config.redact.redactor);
    // A call that ended without saying what it cost (it crashed, or printed no result)
    // may have spent up to the ceiling all the same.
    if d.cost_usd.is_none() || (d.diagnosed && d.cost_usd.is_some_and(|c| c <= 0.0)) {
        d.cost_usd = Some(ceiling);
    }
    d
}

/// Turns what the CLI printed (`--output-format json`) and how it exited into a
/// diagnosis. Everything in it is untrusted: any bytes give a diagnosis or an error.
pub fn diagnosis_from_output(
    stdout: &[u8],
    stderr: &[u8],
    status: std::process::ExitStatus,
    redactor: &crate::redact::Redactor,
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
            tail(&redactor.clean(&stderr))
                .map(|t| format!(": {t}"))
                .unwrap_or_default()
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
            tail(&redactor.clean(answer))
                .map(|t| format!(": {t}"))
                .unwrap_or_default()
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
                tail(&redactor.clean(answer))
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default()
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

/// The last 300 characters of a text, on one line (callers redact first: the
/// cut may fall inside a secret).
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

    fn cli(env: &[(&str, &Path)]) -> ClaudeCliConfig {
        ClaudeCliConfig {
            command: "claude".into(),
            model: "sonnet".into(),
            timeout: Duration::from_secs(60),
            max_turns: 4,
            extra_args: Vec::new(),
            max_budget_usd: None,
            pass_env: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.display().to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_login_is_copied_into_the_scratch_home_and_a_refresh_copied_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("claude");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join(".credentials.json"), "{\"token\": \"old\"}").unwrap();
        let cfg = cli(&[("CLAUDE_CONFIG_DIR", &real)]);
        let home = ScratchHome::new(&cfg, &dir.path().join("scratch/home")).unwrap();
        let copy = home.config_dir.join(".credentials.json");
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            "{\"token\": \"old\"}"
        );
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Unchanged: nothing written back.
        home.keep_login();
        assert!(!real.join(".credentials.json.logwarden-tmp").exists());
        // Refreshed by the CLI: copied back.
        std::fs::write(&copy, "{\"token\": \"new\"}").unwrap();
        home.keep_login();
        assert_eq!(
            std::fs::read_to_string(real.join(".credentials.json")).unwrap(),
            "{\"token\": \"new\"}"
        );
        // No login at all: an empty scratch config folder.
        let none = ScratchHome::new(
            &cli(&[("CLAUDE_CONFIG_DIR", &dir.path().join("nothing"))]),
            &dir.path().join("scratch2/home"),
        )
        .unwrap();
        assert!(none.config_dir.is_dir() && none.credentials.is_none());
    }

    #[test]
    fn no_log_text_or_built_in_tool_in_the_arguments() {
        let f = Features {
            max_budget_usd: true,
            no_session_persistence: true,
            append_system_prompt_file: true,
        };
        let a = args(
            &cli(&[]),
            &f,
            0.25,
            "SYSTEM",
            Path::new("/s/system.md"),
            Path::new("/s/mcp.json"),
        );
        let pos = |x: &str| a.iter().position(|y| y == x).unwrap();
        assert_eq!(a[pos("--tools") + 1], "");
        assert_eq!(a[pos("--mcp-config") + 1], "/s/mcp.json");
        assert_eq!(a[pos("--allowedTools") + 1], "mcp__logwarden__*");
        assert_eq!(a[pos("--append-system-prompt-file") + 1], "/s/system.md");
        assert_eq!(a[pos("--max-budget-usd") + 1], "0.25");
        assert!(a[pos("-p") + 1].starts_with("--"));
        assert!(!a.iter().any(|x| x == "SYSTEM" || x == "--add-dir"));
    }

    fn exited(code: i32) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn reads_the_result_line_after_other_output() {
        let out = br#"starting
{"type":"result","subtype":"success","is_error":false,"result":"Done. {\"verdict\": \"noise\", \"severity\": \"low\", \"title\": \"t\"}","total_cost_usd":0.25,"num_turns":3}
"#;
        let d = diagnosis_from_output(out, b"", exited(0), &Default::default());
        assert_eq!(d.error, None);
        assert_eq!((d.verdict.as_str(), d.severity.as_str()), ("noise", "info"));
        assert_eq!((d.cost_usd, d.num_turns), (Some(0.25), Some(3)));
        assert!(d.llm_called);
    }

    #[test]
    fn a_negative_cost_or_an_oversized_turn_count_is_dropped() {
        let out = br#"{"subtype":"success","result":"{\"verdict\": \"real\"}","total_cost_usd":-5.0,"num_turns":4294967297}"#;
        let d = diagnosis_from_output(out, b"", exited(0), &Default::default());
        assert_eq!(d.verdict, "real");
        assert_eq!(d.cost_usd, None, "a negative cost would give budget back");
        assert_eq!(d.num_turns, None, "2^32 + 1 must not wrap to 1");
    }

    #[test]
    fn no_json_names_the_exit_and_the_end_of_stderr() {
        let d = diagnosis_from_output(b"not json\n", b"boom\n", exited(3), &Default::default());
        let e = d.error.unwrap();
        assert!(
            e.starts_with("exited with status 3 and printed no JSON result: boom"),
            "{e}"
        );
    }
}
