//! The serde mirror of the TOML file: loose types, every unknown key kept for the
//! validator to report.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub state_dir: Option<String>,
    pub incidents_dir: Option<String>,
    pub ignore_file: Option<String>,
    pub prompts_dir: Option<String>,
    pub hostname: Option<String>,
    pub renotify_after: Option<String>,
    pub run_deadline: Option<String>,
    #[serde(default)]
    pub source: Vec<RawSource>,
    pub investigator: Option<RawInvestigator>,
    pub ntfy: Option<RawNtfy>,
    pub redact: Option<RawRedact>,
    // Self-monitoring
    pub metrics_textfile: Option<String>,
    // Metric scripts and their checks.
    pub metrics: Option<RawMetrics>,
    #[serde(default)]
    pub check: Vec<RawCheck>,
    // Incident lifecycle, nag, spikes, briefing.
    pub incidents: Option<super::incidents::RawIncidents>,
    // Escalation rules and the built-in ones.
    #[serde(default)]
    pub escalate: Vec<super::escalate::RawEscalate>,
    pub escalation: Option<super::escalate::RawEscalation>,
    // The allow-list of repair actions and its switches.
    #[serde(default)]
    pub action: Vec<super::actions::RawAction>,
    pub actions: Option<super::actions::RawActions>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawConfig {
    pub const KEYS: &'static [&'static str] = &[
        "state_dir",
        "incidents_dir",
        "ignore_file",
        "prompts_dir",
        "hostname",
        "renotify_after",
        "run_deadline",
        "source",
        "investigator",
        "ntfy",
        "redact",
        "metrics_textfile",
        "metrics",
        "check",
        "incidents",
        "escalate",
        "escalation",
        "action",
        "actions",
    ];
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSource {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub path: Option<String>,
    pub from: Option<String>,
    pub min_level: Option<String>,
    #[serde(default)]
    pub levels: BTreeMap<String, i64>,
    /// Level → incident severity (`{ ERROR = "critical", WARNING = "warning" }`).
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
    /// loguru, text, sqlite: the IANA zone of times written without an offset.
    pub timezone: Option<String>,
    /// File sources: forget a vanished file after this long.
    pub forget_after: Option<String>,
    /// files: how long a file must be quiet before its last record counts as complete.
    pub settle: Option<String>,
    /// loguru: the app's own `format` string.
    pub format: Option<String>,
    /// text: a regex with named groups.
    pub regex: Option<String>,
    /// text: strftime format of the `time` group.
    pub time_format: Option<String>,
    /// text: the level of records whose line has none.
    pub default_level: Option<String>,
    /// sqlite
    pub preset: Option<String>,
    pub table: Option<String>,
    pub columns: Option<RawColumns>,
    pub query: Option<String>,
    pub busy_timeout: Option<String>,
    /// journald
    pub command: Option<String>,
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub identifiers: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawSource {
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "kind",
        "path",
        "from",
        "min_level",
        "levels",
        "severity",
        "forget_after",
        "timezone",
        "settle",
        "format",
        "regex",
        "time_format",
        "default_level",
        "preset",
        "table",
        "columns",
        "query",
        "busy_timeout",
        "command",
        "units",
        "identifiers",
    ];
}

/// The columns of a SQLite log table.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawColumns {
    pub cursor: Option<String>,
    pub time: Option<String>,
    pub level: Option<String>,
    pub message: Option<String>,
    pub logger: Option<String>,
    pub exception: Option<String>,
    pub traceback: Option<String>,
    pub extra: Option<String>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, toml::Value>,
}

impl RawColumns {
    pub const KEYS: &'static [&'static str] = &[
        "cursor",
        "time",
        "level",
        "message",
        "logger",
        "exception",
        "traceback",
        "extra",
    ];
}

#[derive(Debug, Default, Deserialize)]
pub struct RawInvestigator {
    pub kind: Option<String>,
    pub command: Option<String>,
    pub model: Option<String>,
    pub timeout: Option<String>,
    pub max_turns: Option<i64>,
    #[serde(default)]
    pub extra_args: Vec<String>,
    // Evidence, safety, budgets, the anthropic-api backend.
    pub runbook: Option<String>,
    pub evidence_tokens: Option<i64>,
    pub fold_evidence: Option<bool>,
    pub deploy_repo: Option<String>,
    pub deploy_timeout: Option<String>,
    pub scripts_dir: Option<String>,
    pub allow_scripts: Option<bool>,
    pub script_timeout: Option<String>,
    pub pass_env: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub max_budget_usd: Option<f64>,
    pub max_calls_per_hour: Option<i64>,
    pub max_calls_per_day: Option<i64>,
    pub max_usd_per_day: Option<f64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown: Option<String>,
    pub noise_after: Option<i64>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<String>,
    pub max_tokens: Option<i64>,
    pub retries: Option<i64>,
    pub usd_per_mtok_input: Option<f64>,
    pub usd_per_mtok_output: Option<f64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawInvestigator {
    pub const KEYS: &'static [&'static str] = &[
        "kind",
        "command",
        "model",
        "timeout",
        "max_turns",
        "extra_args",
        "runbook",
        "evidence_tokens",
        "fold_evidence",
        "deploy_repo",
        "deploy_timeout",
        "scripts_dir",
        "allow_scripts",
        "script_timeout",
        "pass_env",
        "env",
        "max_budget_usd",
        "max_calls_per_hour",
        "max_calls_per_day",
        "max_usd_per_day",
        "breaker_failures",
        "breaker_cooldown",
        "noise_after",
        "base_url",
        "api_key_env",
        "api_key_file",
        "max_tokens",
        "retries",
        "usd_per_mtok_input",
        "usd_per_mtok_output",
    ];
}

/// `[redact]`: what else counts as a secret, and whether incident files are redacted.
#[derive(Debug, Default, Deserialize)]
pub struct RawRedact {
    pub incident_files: Option<bool>,
    #[serde(default)]
    pub patterns: Vec<RawRedactPattern>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawRedact {
    pub const KEYS: &'static [&'static str] = &["incident_files", "patterns"];
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRedactPattern {
    pub name: Option<String>,
    pub regex: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawNtfy {
    pub server: Option<String>,
    pub topic: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub token_env: Option<String>,
    pub timeout: Option<String>,
    // Auth by user and password, actions, click URL, retries, quiet hours, cap
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub control_topic: Option<String>,
    pub click: Option<String>,
    pub retry_delay: Option<String>,
    pub max_per_hour: Option<i64>,
    pub timezone: Option<String>,
    pub quiet_hours: Option<BTreeMap<String, toml::Value>>,
    pub max_age: Option<String>,
    pub dead_after: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawNtfy {
    pub const KEYS: &'static [&'static str] = &[
        "server",
        "topic",
        "token_file",
        "token_env",
        "timeout",
        "username",
        "password_file",
        "password_env",
        "control_topic",
        "click",
        "retry_delay",
        "max_per_hour",
        "timezone",
        "quiet_hours",
        "max_age",
        "dead_after",
    ];
}

// `[metrics]` and `[[check]]` (validated in `config/metrics.rs`).

/// `[metrics]`: where the scripts are and how they run; storage retention.
#[derive(Debug, Default, Deserialize)]
pub struct RawMetrics {
    pub scripts_dir: Option<String>,
    pub timeout: Option<String>,
    pub max_output: Option<i64>,
    pub failing_after: Option<i64>,
    pub raw_retention: Option<String>,
    pub rollup_retention: Option<String>,
    pub max_series: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawMetrics {
    pub const KEYS: &'static [&'static str] = &[
        "scripts_dir",
        "timeout",
        "max_output",
        "failing_after",
        "raw_retention",
        "rollup_retention",
        "max_series",
    ];
}

/// `[[check]]`: a script, how often it runs, and the rules over what it prints.
#[derive(Debug, Default, Deserialize)]
pub struct RawCheck {
    pub name: Option<String>,
    pub script: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub every: Option<String>,
    pub timeout: Option<String>,
    pub kind: Option<String>,
    pub logs: Option<bool>,
    #[serde(default)]
    pub limits: BTreeMap<String, BTreeMap<String, toml::Value>>,
    #[serde(default)]
    pub rule: Vec<RawRule>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawCheck {
    pub const KEYS: &'static [&'static str] = &[
        "name", "script", "args", "env", "every", "timeout", "kind", "limits", "rule", "logs",
    ];
}

/// `[[check.rule]]`: one rule over the series a metric selector matches.
#[derive(Debug, Default, Deserialize)]
pub struct RawRule {
    pub metric: Option<String>,
    pub above: Option<f64>,
    pub below: Option<f64>,
    #[serde(rename = "for")]
    pub for_runs: Option<i64>,
    pub rate_above: Option<f64>,
    pub rate_below: Option<f64>,
    pub reaches: Option<f64>,
    pub within: Option<String>,
    pub window: Option<String>,
    pub anomaly: Option<bool>,
    pub score: Option<f64>,
    pub severity: Option<String>,
    pub kind: Option<String>,
    pub title: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawRule {
    pub const KEYS: &'static [&'static str] = &[
        "metric",
        "above",
        "below",
        "for",
        "rate_above",
        "rate_below",
        "reaches",
        "within",
        "window",
        "anomaly",
        "score",
        "severity",
        "kind",
        "title",
    ];
}
