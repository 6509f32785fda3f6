//! Investigation: asking an investigator what a triggered incident is. `none` gives
//! the evidence only; `claude-cli` runs Claude Code non-interactively (`claude -p`)
//! with read-only tools, a timeout that kills its whole process group, and parses the
//! JSON verdict it is asked to end with. A failed investigation never stops the
//! incident from being written and notified.

pub mod claude_cli;
pub mod prompt;
pub mod verdict;

use serde::{Deserialize, Serialize};

use crate::config::{Config, InvestigatorConfig};
use crate::store::IncidentRow;

/// What an investigator concluded (or why it could not).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// `none`, `claude-cli`, …
    pub backend: String,
    /// Whether a verdict was obtained.
    pub diagnosed: bool,
    /// real | noise | unsure
    pub verdict: String,
    /// info | warning | critical
    pub severity: String,
    pub title: String,
    pub summary: String,
    pub root_cause: String,
    pub suggested_fix: String,
    pub confidence: Option<f64>,
    /// Why there is no diagnosis (`timed out after 5m`, `exit status 1: …`).
    pub error: Option<String>,
    pub cost_usd: Option<f64>,
    pub num_turns: Option<u32>,
    /// Tool uses Claude asked for and was refused.
    #[serde(default)]
    pub permission_denials: Vec<serde_json::Value>,
    /// Whether an LLM was called (for the run's figures).
    pub llm_called: bool,
}

/// Investigates one incident with the configured backend.
pub fn investigate(config: &Config, incident: &IncidentRow) -> Diagnosis {
    match &config.investigator {
        InvestigatorConfig::None => Diagnosis {
            backend: "none".into(),
            diagnosed: false,
            verdict: "unsure".into(),
            severity: incident.severity.clone(),
            title: incident.title.clone(),
            error: Some(
                "no investigator configured (investigator.kind = \"none\"); the evidence is below"
                    .into(),
            ),
            ..Diagnosis::default()
        },
        InvestigatorConfig::ClaudeCli(cli) => {
            let prompt = prompt::for_incident(config, incident);
            let mut d = match prompt {
                Ok(p) => claude_cli::run(cli, &p, &config.state_dir),
                Err(e) => Diagnosis {
                    error: Some(format!("prompt could not be built: {e}")),
                    ..Diagnosis::default()
                },
            };
            d.backend = "claude-cli".into();
            if !d.diagnosed {
                d.verdict = "unsure".into();
                d.severity = incident.severity.clone();
                d.title = incident.title.clone();
            }
            d
        }
    }
}
