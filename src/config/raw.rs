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
    #[serde(default)]
    pub source: Vec<RawSource>,
    pub investigator: Option<RawInvestigator>,
    pub ntfy: Option<RawNtfy>,
    // issue 8: self-monitoring
    pub metrics_textfile: Option<String>,
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
        "source",
        "investigator",
        "ntfy",
        "metrics_textfile",
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
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawSource {
    pub const KEYS: &'static [&'static str] =
        &["name", "kind", "path", "from", "min_level", "levels"];
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
    ];
}

#[derive(Debug, Default, Deserialize)]
pub struct RawNtfy {
    pub server: Option<String>,
    pub topic: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub token_env: Option<String>,
    pub timeout: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawNtfy {
    pub const KEYS: &'static [&'static str] =
        &["server", "topic", "token_file", "token_env", "timeout"];
}
