//! Validation of `[investigator]` and `[redact]`: the backends, the evidence and
//! safety settings shared by every LLM backend, budgets and the breaker.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::raw;
use super::{ClaudeCliConfig, InvestigatorConfig, Secret, Validator};
use crate::duration;
use crate::redact::{Redactor, UserRule};

/// Settings every LLM backend shares.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The team's own runbook, appended to the system prompt.
    pub runbook: Option<PathBuf>,
    /// The evidence budget, in estimated tokens (bytes / 4).
    pub evidence_tokens: usize,
    /// Records of one shape are shown once whole, the others by the lines where they
    /// differ; off, every record is shown whole (while the budget lasts).
    pub fold_evidence: bool,
    /// A git repository whose recent commits are shown as deploys.
    pub deploy_repo: Option<PathBuf>,
    pub deploy_timeout: Duration,
    /// The curated read-only scripts the investigator may run.
    pub scripts_dir: Option<PathBuf>,
    pub allow_scripts: bool,
    pub script_timeout: Duration,
    pub max_calls_per_hour: u32,
    pub max_calls_per_day: u32,
    pub max_usd_per_day: f64,
    /// After this many consecutive failures the backend rests for `breaker_cooldown`.
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    /// A signature judged noise this many times is not investigated again.
    pub noise_after: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            runbook: None,
            evidence_tokens: 12_000,
            fold_evidence: true,
            deploy_repo: None,
            deploy_timeout: Duration::from_secs(5),
            scripts_dir: None,
            allow_scripts: false,
            script_timeout: Duration::from_secs(20),
            max_calls_per_hour: 10,
            max_calls_per_day: 60,
            max_usd_per_day: 5.0,
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(30 * 60),
            noise_after: 3,
        }
    }
}

/// The `anthropic-api` backend: the Messages API over HTTPS.
#[derive(Debug, Clone)]
pub struct AnthropicApiConfig {
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    pub max_tokens: u32,
    pub max_turns: u32,
    pub timeout: Duration,
    pub retries: u32,
    pub usd_per_mtok_input: f64,
    pub usd_per_mtok_output: f64,
}

/// `[redact]`.
#[derive(Debug, Clone)]
pub struct RedactConfig {
    /// Whether incident files are redacted too (default true).
    pub incident_files: bool,
    pub redactor: Redactor,
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            incident_files: true,
            redactor: Redactor::default(),
        }
    }
}

/// Model aliases the CLI resolves itself; the API needs a full model id.
fn api_model(m: &str) -> String {
    match m {
        "sonnet" => "claude-sonnet-4-5".into(),
        "opus" => "claude-opus-4-1".into(),
        "haiku" => "claude-haiku-4-5".into(),
        other => other.into(),
    }
}

impl Validator {
    fn count(&mut self, key: &str, v: Option<i64>, range: (i64, i64), default: u32) -> u32 {
        match v {
            None => default,
            Some(n) if (range.0..=range.1).contains(&n) => n as u32,
            Some(n) => {
                self.err(
                    key,
                    format!("{n} is out of range (expected {} to {})", range.0, range.1),
                );
                default
            }
        }
    }

    fn dollars(&mut self, key: &str, v: Option<f64>, default: f64) -> f64 {
        match v {
            None => default,
            Some(x) if x.is_finite() && x >= 0.0 => x,
            Some(x) => {
                self.err(key, format!("{x} is not a non-negative amount"));
                default
            }
        }
    }

    /// `[investigator]`: the backend and the shared LLM settings.
    pub(super) fn investigator(
        &mut self,
        i: raw::RawInvestigator,
    ) -> (InvestigatorConfig, LlmConfig) {
        // Keys of other tools' configs that would widen what the model may use: logwarden
        // decides the tools itself (its own MCP tools, see the README's safety model).
        let mut extra = i.extra.clone();
        for k in [
            "allowed_tools",
            "allowedTools",
            "tools",
            "add_dir",
            "add_dirs",
            "mcp_servers",
            "mcp_config",
        ] {
            if extra.remove(k).is_some() {
                self.err(
                    format!("investigator.{k}"),
                    "not a setting: the investigator's tools are logwarden's own read-only tools (served to claude over MCP); it reads logs only through them, never folders. Remove this key",
                );
            }
        }
        self.unknown("investigator", &extra, raw::RawInvestigator::KEYS);
        let d = LlmConfig::default();
        let timeout = self.duration(
            "investigator.timeout",
            i.timeout.as_deref(),
            Duration::from_secs(300),
        );
        let max_turns = self.count("investigator.max_turns", i.max_turns, (1, 100), 8);
        let runbook = i.runbook.as_deref().map(|p| self.path(p));
        if let Some(p) = &runbook {
            if let Err(e) = std::fs::read_to_string(p) {
                self.err(
                    "investigator.runbook",
                    format!("cannot read {}: {e}", p.display()),
                );
            }
        }
        let scripts_dir = i.scripts_dir.as_deref().map(|p| self.path(p));
        let allow_scripts = i.allow_scripts.unwrap_or(false);
        if allow_scripts && scripts_dir.is_none() {
            self.err(
                "investigator.allow_scripts",
                "needs scripts_dir: the folder of curated read-only scripts",
            );
        }
        if let Some(dir) = &scripts_dir {
            if !dir.is_absolute() || dir.to_string_lossy().contains(['*', '(', ')', ' ']) {
                self.err(
                    "investigator.scripts_dir",
                    "must be a plain absolute path (no spaces, `*` or parentheses)",
                );
            }
        }
        let llm = LlmConfig {
            runbook,
            evidence_tokens: self.count(
                "investigator.evidence_tokens",
                i.evidence_tokens,
                (1_000, 200_000),
                d.evidence_tokens as u32,
            ) as usize,
            deploy_repo: i.deploy_repo.as_deref().map(|p| self.path(p)),
            deploy_timeout: self.duration(
                "investigator.deploy_timeout",
                i.deploy_timeout.as_deref(),
                d.deploy_timeout,
            ),
            scripts_dir,
            allow_scripts,
            fold_evidence: i.fold_evidence.unwrap_or(true),
            script_timeout: self.duration(
                "investigator.script_timeout",
                i.script_timeout.as_deref(),
                d.script_timeout,
            ),
            max_calls_per_hour: self.count(
                "investigator.max_calls_per_hour",
                i.max_calls_per_hour,
                (0, 10_000),
                d.max_calls_per_hour,
            ),
            max_calls_per_day: self.count(
                "investigator.max_calls_per_day",
                i.max_calls_per_day,
                (0, 100_000),
                d.max_calls_per_day,
            ),
            max_usd_per_day: self.dollars(
                "investigator.max_usd_per_day",
                i.max_usd_per_day,
                d.max_usd_per_day,
            ),
            breaker_failures: self.count(
                "investigator.breaker_failures",
                i.breaker_failures,
                (1, 100),
                d.breaker_failures,
            ),
            breaker_cooldown: self.duration(
                "investigator.breaker_cooldown",
                i.breaker_cooldown.as_deref(),
                d.breaker_cooldown,
            ),
            noise_after: self.count(
                "investigator.noise_after",
                i.noise_after,
                (1, 1000),
                d.noise_after,
            ),
        };
        let model = i.model.unwrap_or_else(|| "sonnet".into());
        let max_budget_usd = i
            .max_budget_usd
            .map(|x| self.dollars("investigator.max_budget_usd", Some(x), 0.5));
        let mut pass_env = Vec::new();
        for name in i.pass_env.unwrap_or_default() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.err(
                    "investigator.pass_env",
                    format!("`{name}` is not an environment variable name"),
                );
            } else {
                pass_env.push(name);
            }
        }
        if i.api_key.is_some() {
            self.err(
                "investigator.api_key",
                "an API key must not be written in the config; use api_key_env or api_key_file",
            );
        }
        for e in extra_args_problems(&i.extra_args) {
            self.err("investigator.extra_args", e);
        }
        for name in i.env.iter().flat_map(|e| e.keys()) {
            if let Err(e) = check_env_name(name) {
                self.err(format!("investigator.env.{name}"), e);
            }
        }
        let kind = i.kind.as_deref();
        if kind != Some("anthropic-api") {
            for (k, set) in [
                ("base_url", i.base_url.is_some()),
                ("api_key_env", i.api_key_env.is_some()),
                ("api_key_file", i.api_key_file.is_some()),
                ("max_tokens", i.max_tokens.is_some()),
                ("retries", i.retries.is_some()),
            ] {
                if set {
                    self.err(
                        format!("investigator.{k}"),
                        "only used by kind = \"anthropic-api\"",
                    );
                }
            }
        }
        let backend = match kind {
            None | Some("none") => InvestigatorConfig::None,
            Some("claude-cli") => InvestigatorConfig::ClaudeCli(ClaudeCliConfig {
                command: self.command(i.command.unwrap_or_else(|| "claude".into())),
                model,
                timeout,
                max_turns,
                extra_args: i.extra_args,
                max_budget_usd: Some(max_budget_usd.unwrap_or(0.5)),
                pass_env,
                env: i.env.unwrap_or_default(),
            }),
            Some("anthropic-api") => {
                let base_url = match i.base_url {
                    Some(s) => self
                        .http_url(
                            "investigator.base_url",
                            &s,
                            "give the key with api_key_file or api_key_env",
                        )
                        .unwrap_or_default(),
                    None => "https://api.anthropic.com".into(),
                };
                let api_key = match (i.api_key_file, i.api_key_env) {
                    (Some(_), Some(_)) => {
                        self.err(
                            "investigator.api_key_file",
                            "give api_key_file or api_key_env, not both",
                        );
                        Secret::Env("ANTHROPIC_API_KEY".into())
                    }
                    (Some(f), None) => Secret::File(self.path(&f)),
                    (None, Some(e)) => Secret::Env(e),
                    (None, None) => Secret::Env("ANTHROPIC_API_KEY".into()),
                };
                InvestigatorConfig::AnthropicApi(AnthropicApiConfig {
                    base_url,
                    api_key,
                    model: api_model(&model),
                    max_tokens: self.count(
                        "investigator.max_tokens",
                        i.max_tokens,
                        (256, 64_000),
                        4096,
                    ),
                    max_turns,
                    timeout,
                    retries: self.count("investigator.retries", i.retries, (0, 10), 3),
                    usd_per_mtok_input: self.dollars(
                        "investigator.usd_per_mtok_input",
                        i.usd_per_mtok_input,
                        3.0,
                    ),
                    usd_per_mtok_output: self.dollars(
                        "investigator.usd_per_mtok_output",
                        i.usd_per_mtok_output,
                        15.0,
                    ),
                })
            }
            Some(other) => {
                self.err(
                    "investigator.kind",
                    format!(
                        "unknown investigator `{other}` (expected \"none\", \"claude-cli\" or \"anthropic-api\")"
                    ),
                );
                InvestigatorConfig::None
            }
        };
        (backend, llm)
    }

    /// `[redact]`.
    pub(super) fn redact(&mut self, r: Option<raw::RawRedact>) -> RedactConfig {
        let Some(r) = r else {
            return RedactConfig::default();
        };
        self.unknown("redact", &r.extra, raw::RawRedact::KEYS);
        let mut rules = Vec::new();
        for (n, p) in r.patterns.into_iter().enumerate() {
            let key = format!("redact.patterns[{n}]");
            self.unknown(&key, &p.extra, &["name", "regex"]);
            let name = match p.name {
                Some(n)
                    if !n.is_empty()
                        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                {
                    n
                }
                _ => {
                    self.err(
                        format!("{key}.name"),
                        "missing or invalid: a short name of letters, digits and `-` (shown as [REDACTED:name])",
                    );
                    continue;
                }
            };
            match p.regex.as_deref().map(regex::Regex::new) {
                Some(Ok(re)) => rules.push(UserRule { name, re }),
                Some(Err(e)) => self.err(format!("{key}.regex"), format!("invalid regex: {e}")),
                None => self.err(format!("{key}.regex"), "missing"),
            }
        }
        RedactConfig {
            incident_files: r.incident_files.unwrap_or(true),
            redactor: Redactor::new(rules),
        }
    }
}

/// The effective `[investigator]` settings beyond the backend's own, for `check`.
pub(super) fn fmt_llm(
    f: &mut fmt::Formatter<'_>,
    inv: &InvestigatorConfig,
    l: &LlmConfig,
) -> fmt::Result {
    if let InvestigatorConfig::AnthropicApi(a) = inv {
        writeln!(f, "kind = \"anthropic-api\"")?;
        writeln!(f, "base_url = {:?}", a.base_url)?;
        match &a.api_key {
            Secret::File(p) => writeln!(f, "api_key_file = {:?}", p.display().to_string())?,
            Secret::Env(e) => writeln!(f, "api_key_env = {e:?}")?,
        }
        writeln!(f, "model = {:?}", a.model)?;
        writeln!(f, "max_tokens = {}", a.max_tokens)?;
        writeln!(f, "max_turns = {}", a.max_turns)?;
        writeln!(f, "timeout = {:?}", duration::format(a.timeout))?;
        writeln!(f, "retries = {}", a.retries)?;
        writeln!(f, "usd_per_mtok_input = {}", a.usd_per_mtok_input)?;
        writeln!(f, "usd_per_mtok_output = {}", a.usd_per_mtok_output)?;
    }
    if let InvestigatorConfig::ClaudeCli(c) = inv {
        if let Some(b) = c.max_budget_usd {
            writeln!(f, "max_budget_usd = {b}")?;
        }
        if !c.pass_env.is_empty() {
            writeln!(f, "pass_env = {:?}", c.pass_env)?;
        }
        if !c.env.is_empty() {
            let keys: Vec<&String> = c.env.keys().collect();
            writeln!(f, "# env sets {keys:?}")?;
        }
    }
    if matches!(inv, InvestigatorConfig::None) {
        return Ok(());
    }
    if let Some(r) = &l.runbook {
        writeln!(f, "runbook = {:?}", r.display().to_string())?;
    }
    writeln!(f, "evidence_tokens = {}", l.evidence_tokens)?;
    writeln!(f, "fold_evidence = {}", l.fold_evidence)?;
    if let Some(r) = &l.deploy_repo {
        writeln!(f, "deploy_repo = {:?}", r.display().to_string())?;
    }
    if let Some(s) = &l.scripts_dir {
        writeln!(f, "scripts_dir = {:?}", s.display().to_string())?;
        writeln!(f, "allow_scripts = {}", l.allow_scripts)?;
    }
    writeln!(f, "max_calls_per_hour = {}", l.max_calls_per_hour)?;
    writeln!(f, "max_calls_per_day = {}", l.max_calls_per_day)?;
    writeln!(f, "max_usd_per_day = {}", l.max_usd_per_day)?;
    writeln!(f, "breaker_failures = {}", l.breaker_failures)?;
    writeln!(
        f,
        "breaker_cooldown = {:?}",
        duration::format(l.breaker_cooldown)
    )?;
    writeln!(f, "noise_after = {}", l.noise_after)
}

/// `[redact]` for `check`.
pub(super) fn fmt_redact(f: &mut fmt::Formatter<'_>, r: &RedactConfig) -> fmt::Result {
    writeln!(f, "\n[redact]")?;
    writeln!(f, "incident_files = {}", r.incident_files)
}

/// The options of `claude` that `[investigator] extra_args` may add, and whether each
/// takes a value. Anything else could give the investigator tools, permissions,
/// prompts, plugins, agents or another session (`--permission-prompt-tool`,
/// `--plugin-dir`, `--agents`, `--system-prompt`, `--setting-sources`, `--resume`...):
/// logwarden sets those itself.
pub const EXTRA_ARGS: &[(&str, Option<&[&str]>)] = &[
    ("--verbose", None),
    ("--fallback-model", Some(&[])),
    ("--betas", Some(&[])),
    ("--effort", Some(&["low", "medium", "high", "xhigh", "max"])),
    ("--exclude-dynamic-system-prompt-sections", None),
    ("--disable-slash-commands", None),
];

/// A value of an allowed option: a model name, a beta header name, a level.
fn plain_value(v: &str) -> bool {
    v.len() <= 128
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:,[]-".contains(c))
}

/// What is wrong with `extra_args` against [`EXTRA_ARGS`] (nothing: empty): each
/// element must be an allowed option, or the one value right after an option that
/// takes one (`--effort high` or `--effort=high`).
pub fn extra_args_problems(args: &[String]) -> Vec<String> {
    let allowed = || {
        EXTRA_ARGS
            .iter()
            .map(|(n, v)| match v {
                None => n.to_string(),
                Some(_) => format!("{n} VALUE"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut problems = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (a.as_str(), None),
        };
        let Some((name, values)) = EXTRA_ARGS.iter().find(|(n, _)| *n == flag) else {
            problems.push(format!(
                "`{a}` is not an option logwarden passes to claude (allowed: {}); tools, permissions, prompts, settings, plugins and sessions are set by logwarden itself",
                allowed()
            ));
            continue;
        };
        let Some(choices) = values else {
            if inline.is_some() {
                problems.push(format!("`{name}` takes no value"));
            }
            continue;
        };
        let v = match inline {
            Some(v) => v,
            None => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.as_str()
                }
                None => {
                    problems.push(format!("`{name}` needs a value"));
                    continue;
                }
            },
        };
        let ok = if choices.is_empty() {
            plain_value(v)
        } else {
            choices.contains(&v)
        };
        if !ok {
            problems.push(format!("`{v}` is not a valid value for `{name}`"));
        }
    }
    problems
}

/// Environment variables `[investigator] env` may set for claude: endpoints, proxies,
/// models, telemetry switches. Nothing that loads code or changes how commands are
/// found or run (LD_PRELOAD, NODE_OPTIONS, PATH, CLAUDE_CODE_SHELL_PREFIX...).
pub const ENV_NAMES: &[&str] = &[
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "NODE_EXTRA_CA_CERTS",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "DISABLE_TELEMETRY",
    "DISABLE_ERROR_REPORTING",
    "DISABLE_AUTOUPDATER",
    "DISABLE_COST_WARNINGS",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "AWS_REGION",
    "CLOUD_ML_REGION",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "API_TIMEOUT_MS",
    "MAX_THINKING_TOKENS",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "TZ",
    "LANG",
    "LC_ALL",
];

/// Checks a name of `[investigator] env` against [`ENV_NAMES`].
pub fn check_env_name(name: &str) -> Result<(), String> {
    if ENV_NAMES.contains(&name) {
        return Ok(());
    }
    if matches!(name, "ANTHROPIC_API_KEY" | "ANTHROPIC_AUTH_TOKEN") {
        return Err(format!(
            "a key must not be written in the config; list `{name}` in pass_env to pass it from logwarden's environment"
        ));
    }
    Err(format!(
        "`{name}` may not be set for claude (allowed: {})",
        ENV_NAMES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(args: &[&str]) -> Vec<String> {
        extra_args_problems(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn extra_args_are_an_allowlist() {
        assert!(problems(&[]).is_empty());
        assert!(problems(&[
            "--verbose",
            "--fallback-model",
            "claude-haiku-4-5",
            "--betas=context-1m-2025-08-07",
            "--effort",
            "high"
        ])
        .is_empty());
        for bad in [
            "--permission-prompt-tool",
            "--plugin-dir",
            "--agents",
            "--system-prompt",
            "--setting-sources",
            "--resume",
            "--dangerously-skip-permissions",
            "--mcp-config",
            "-c",
            "stray",
        ] {
            let p = problems(&[bad]);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].contains(bad), "{p:?}");
        }
        assert_eq!(problems(&["--effort", "ultra"]).len(), 1);
        assert_eq!(
            problems(&["--fallback-model", "--agents"]).len(),
            1,
            "a value is no flag"
        );
        assert_eq!(problems(&["--fallback-model"]).len(), 1);
        assert_eq!(problems(&["--verbose=1"]).len(), 1);
        // A second value after a single-value option is a stray argument.
        assert_eq!(problems(&["--betas", "a", "b"]).len(), 1);
        assert_eq!(problems(&["--agents", "{}", "--resume", "x"]).len(), 4);
    }

    #[test]
    fn env_names_are_an_allowlist() {
        for ok in [
            "ANTHROPIC_BASE_URL",
            "HTTPS_PROXY",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        ] {
            assert!(check_env_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "LD_PRELOAD",
            "NODE_OPTIONS",
            "PATH",
            "CLAUDE_CODE_SHELL_PREFIX",
            "BASH_ENV",
            "HOME",
        ] {
            let e = check_env_name(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert!(check_env_name("ANTHROPIC_API_KEY")
            .unwrap_err()
            .contains("pass_env"));
    }
}
