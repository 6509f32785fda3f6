//! Validation of `[[escalate]]` rules and the `[escalation]` table: deterministic
//! rules that raise an incident's severity, force its investigation or make it nag,
//! whatever the log level or the investigator says; the built-in rules; and how sure
//! the investigator must be before a "noise" verdict keeps an incident quiet.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Validator;

/// The serde mirror of one `[[escalate]]` rule.
#[derive(Debug, Default, Deserialize)]
pub struct RawEscalate {
    pub name: Option<String>,
    pub pattern: Option<String>,
    pub source: Option<String>,
    pub logger: Option<String>,
    pub exception: Option<String>,
    pub level: Option<String>,
    pub check: Option<String>,
    pub severity: Option<String>,
    pub investigate: Option<bool>,
    pub nag: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawEscalate {
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "pattern",
        "source",
        "logger",
        "exception",
        "level",
        "check",
        "severity",
        "investigate",
        "nag",
    ];
}

/// The serde mirror of `[escalation]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawEscalation {
    pub defaults: Option<bool>,
    pub several_sources: Option<i64>,
    pub noise_confidence: Option<f64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawEscalation {
    pub const KEYS: &'static [&'static str] = &["defaults", "several_sources", "noise_confidence"];
}

/// One `[[escalate]]` rule, validated. Every condition given must hold; a rule has at
/// least one.
#[derive(Debug, Clone)]
pub struct EscalateRule {
    pub name: String,
    /// Searched in the incident's first message, template and samples.
    pub pattern: Option<regex::Regex>,
    pub source: Option<String>,
    /// The logger or one of its parents (`app.db` matches `app.db.pool`).
    pub logger: Option<String>,
    pub exception: Option<String>,
    /// The level's number: the rule holds from this level up.
    pub level: Option<u32>,
    /// A metric check's name (its incidents come from `[[check]]`).
    pub check: Option<String>,
    /// The least severity the incident gets (it is never lowered).
    pub severity: Option<String>,
    /// Investigate even when a budget is spent or the signature is known noise.
    pub investigate: bool,
    /// Remind until acknowledged, whatever the severity.
    pub nag: bool,
}

/// `[[escalate]]` and `[escalation]`, validated.
#[derive(Debug, Clone)]
pub struct EscalationConfig {
    pub rules: Vec<EscalateRule>,
    /// The built-in rules (several sources failing, an unsure verdict on a new
    /// signature) are on.
    pub defaults: bool,
    /// How many sources with errors in one run make a "several services failing" incident.
    pub several_sources: usize,
    /// A "noise" verdict at least this sure keeps its incident quiet.
    pub noise_confidence: f64,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            rules: Vec::new(),
            defaults: true,
            several_sources: 3,
            noise_confidence: 0.7,
        }
    }
}

impl std::fmt::Display for EscalationConfig {
    /// The effective `[escalation]` table and the rules' names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "\n[escalation]")?;
        writeln!(f, "defaults = {}", self.defaults)?;
        writeln!(f, "several_sources = {}", self.several_sources)?;
        writeln!(f, "noise_confidence = {}", self.noise_confidence)?;
        for r in &self.rules {
            writeln!(f, "# [[escalate]] {:?}", r.name)?;
        }
        Ok(())
    }
}

const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

impl Validator {
    pub(super) fn escalation(
        &mut self,
        rules: Vec<RawEscalate>,
        table: Option<RawEscalation>,
    ) -> EscalationConfig {
        let mut c = EscalationConfig::default();
        if let Some(t) = table {
            self.unknown("escalation", &t.extra, RawEscalation::KEYS);
            c.defaults = t.defaults.unwrap_or(true);
            match t.several_sources {
                Some(n) if (2..=1000).contains(&n) => c.several_sources = n as usize,
                Some(n) => self.err(
                    "escalation.several_sources",
                    format!("{n} is out of range (expected 2 to 1000; `defaults = false` turns the built-in rules off)"),
                ),
                None => {}
            }
            match t.noise_confidence {
                Some(x) if (0.0..=1.0).contains(&x) => c.noise_confidence = x,
                Some(x) => self.err(
                    "escalation.noise_confidence",
                    format!("{x} is not a confidence from 0 to 1"),
                ),
                None => {}
            }
        }
        for (n, r) in rules.into_iter().enumerate() {
            let key = format!("escalate[{n}]");
            if let Some(rule) = self.escalate_rule(&key, r) {
                c.rules.push(rule);
            }
        }
        c
    }

    fn escalate_rule(&mut self, key: &str, r: RawEscalate) -> Option<EscalateRule> {
        self.unknown(key, &r.extra, RawEscalate::KEYS);
        let mut ok = true;
        let pattern = match &r.pattern {
            None => None,
            Some(p) => match regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                Ok(re) => Some(re),
                Err(e) => {
                    self.err(format!("{key}.pattern"), format!("not a valid regex: {e}"));
                    ok = false;
                    None
                }
            },
        };
        let level = match &r.level {
            None => None,
            Some(l) => match crate::source::Level::parse_config(l, &BTreeMap::new()) {
                Some(l) => Some(l.no),
                None => {
                    self.err(
                        format!("{key}.level"),
                        format!("`{l}` is not a level name (TRACE … CRITICAL) or number"),
                    );
                    ok = false;
                    None
                }
            },
        };
        let severity = match &r.severity {
            None => None,
            Some(s) if SEVERITIES.contains(&s.as_str()) => Some(s.clone()),
            Some(s) => {
                self.err(
                    format!("{key}.severity"),
                    format!("`{s}` is not a severity (expected critical, warning or info)"),
                );
                ok = false;
                None
            }
        };
        let nonempty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        let rule = EscalateRule {
            name: r
                .name
                .clone()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| key.to_string()),
            pattern,
            source: nonempty(&r.source),
            logger: nonempty(&r.logger),
            exception: nonempty(&r.exception),
            level,
            check: nonempty(&r.check),
            severity,
            investigate: r.investigate.unwrap_or(false),
            nag: r.nag.unwrap_or(false),
        };
        let conditions = [
            rule.pattern.is_some(),
            rule.source.is_some(),
            rule.logger.is_some(),
            rule.exception.is_some(),
            rule.level.is_some(),
            rule.check.is_some(),
        ];
        if !conditions.contains(&true) {
            self.err(
                key,
                "matches nothing in particular: give at least one of pattern, source, logger, exception, level or check",
            );
            ok = false;
        }
        if rule.severity.is_none() && !rule.investigate && !rule.nag {
            self.err(
                key,
                "does nothing: give a severity, `investigate = true` or `nag = true`",
            );
            ok = false;
        }
        ok.then_some(rule)
    }
}
