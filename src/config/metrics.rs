//! Validation of `[metrics]` and `[[check]]`: the scripts that print samples, how often
//! they run, and the rules (thresholds with `for`, rate of change, time to exhaustion,
//! anomaly score) over the series they print.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{raw, Validator};

/// `[metrics]`, with its checks.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub scripts_dir: PathBuf,
    pub timeout: Duration,
    /// Bytes of a script's stdout kept.
    pub max_output: u64,
    /// A check whose script fails this many runs in a row becomes an incident.
    pub failing_after: u32,
    pub raw_retention: Duration,
    pub rollup_retention: Duration,
    /// Series kept per check; a script printing more is cut (and told).
    pub max_series: usize,
    pub checks: Vec<CheckConfig>,
}

/// One `[[check]]`.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub name: String,
    pub script: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// `None`: every run.
    pub every: Option<Duration>,
    pub timeout: Duration,
    /// The incident kind of its threshold, rate and exhaustion rules.
    pub kind: String,
    pub rules: Vec<RuleConfig>,
    /// No script: the rules look at the log rates each run records
    /// ([`LOG_SERIES_CHECK`](crate::metrics::logs::LOG_SERIES_CHECK)).
    pub logs: bool,
}

/// What a rule tests.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleTest {
    /// Outside `above`/`below` for `for` runs in a row.
    Threshold {
        above: Option<f64>,
        below: Option<f64>,
    },
    /// A Theil–Sen slope over `window`, per hour, beyond the limits.
    Rate {
        above: Option<f64>,
        below: Option<f64>,
        window: Duration,
    },
    /// The Theil–Sen trend over `window` reaches `limit` within `within`.
    Exhaustion {
        limit: f64,
        within: Duration,
        window: Duration,
    },
    /// The anomaly detector's score at or above `score`.
    Anomaly { score: f64 },
}

/// One `[[check.rule]]`.
#[derive(Debug, Clone)]
pub struct RuleConfig {
    /// The metric name.
    pub metric: String,
    /// Labels a series must carry (from `name{label="v"}`).
    pub labels: BTreeMap<String, String>,
    pub test: RuleTest,
    pub for_runs: u32,
    pub severity: String,
    pub kind: String,
    /// The incident title, with `{check}`, `{series}`, `{value}`, `{limit}`, `{eta}`, `{at}`
    /// and `{<label>}` placeholders.
    pub title: Option<String>,
}

impl RuleConfig {
    /// A short stable name of the rule's test, used in incident signatures.
    pub fn test_name(&self) -> &'static str {
        match self.test {
            RuleTest::Threshold { .. } => "threshold",
            RuleTest::Rate { .. } => "rate",
            RuleTest::Exhaustion { .. } => "exhaustion",
            RuleTest::Anomaly { .. } => "anomaly",
        }
    }

    /// Does a series (name and labels) fall under this rule?
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        name == self.metric && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Incident kinds a metric rule may use (each has its prompt template).
pub const KINDS: &[&str] = &["metric-threshold", "anomaly", "disk", "queue", "api-rate"];

fn default_scripts_dir() -> PathBuf {
    let installed = PathBuf::from("/usr/share/logwarden/scripts");
    if installed.is_dir() {
        installed
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts")
    }
}

impl Validator {
    pub(super) fn metrics(
        &mut self,
        m: Option<raw::RawMetrics>,
        checks: Vec<raw::RawCheck>,
    ) -> MetricsConfig {
        let m = m.unwrap_or_default();
        self.unknown("metrics", &m.extra, raw::RawMetrics::KEYS);
        let scripts_dir = match m.scripts_dir.as_deref() {
            Some(p) => self.path(p),
            None => default_scripts_dir(),
        };
        let timeout = self.duration(
            "metrics.timeout",
            m.timeout.as_deref(),
            Duration::from_secs(30),
        );
        let max_output = self.positive("metrics.max_output", m.max_output, 256 * 1024) as u64;
        let failing_after = self.positive("metrics.failing_after", m.failing_after, 3) as u32;
        let raw_retention = self.duration(
            "metrics.raw_retention",
            m.raw_retention.as_deref(),
            Duration::from_secs(7 * 86_400),
        );
        let rollup_retention = self.duration(
            "metrics.rollup_retention",
            m.rollup_retention.as_deref(),
            Duration::from_secs(90 * 86_400),
        );
        let max_series = self.positive("metrics.max_series", m.max_series, 200) as usize;
        let mut names = BTreeSet::new();
        let mut out = Vec::new();
        for (i, c) in checks.into_iter().enumerate() {
            let prefix = format!("check[{i}]");
            let c = self.check(&prefix, c, &scripts_dir, timeout);
            if !names.insert(c.name.clone()) {
                self.err(
                    format!("{prefix}.name"),
                    format!("`{}` is used by two checks; names must be unique", c.name),
                );
            }
            out.push(c);
        }
        MetricsConfig {
            scripts_dir,
            timeout,
            max_output,
            failing_after,
            raw_retention,
            rollup_retention,
            max_series,
            checks: out,
        }
    }

    fn positive(&mut self, key: &str, v: Option<i64>, default: i64) -> i64 {
        match v {
            None => default,
            Some(n) if n > 0 => n,
            Some(n) => {
                self.err(key, format!("{n} must be a positive number"));
                default
            }
        }
    }

    fn check(
        &mut self,
        prefix: &str,
        c: raw::RawCheck,
        scripts_dir: &std::path::Path,
        timeout: Duration,
    ) -> CheckConfig {
        self.unknown(prefix, &c.extra, raw::RawCheck::KEYS);
        let name = match c.name {
            Some(n)
                if !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                n
            }
            Some(n) => {
                self.err(
                    format!("{prefix}.name"),
                    format!("`{n}` is not a valid name (letters, digits, `-`, `_`, `.`)"),
                );
                n
            }
            None => {
                self.err(
                    format!("{prefix}.name"),
                    "missing: every check needs a name",
                );
                String::new()
            }
        };
        let logs = c.logs == Some(true);
        if logs {
            for (key, given) in [
                ("script", c.script.is_some()),
                ("args", !c.args.is_empty()),
                ("env", !c.env.is_empty()),
                ("every", c.every.is_some()),
                ("timeout", c.timeout.is_some()),
                ("limits", !c.limits.is_empty()),
            ] {
                if given {
                    self.err(
                        format!("{prefix}.{key}"),
                        "a check with `logs = true` runs no script: its series are the log rates each run records",
                    );
                }
            }
        }
        let script = match c.script.as_deref() {
            _ if logs => PathBuf::new(),
            Some(s) if !s.is_empty() => {
                let p = std::path::Path::new(s);
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    scripts_dir.join(p)
                }
            }
            _ => {
                self.err(
                    format!("{prefix}.script"),
                    "missing: the script that prints the samples (a name in metrics.scripts_dir, or a path)",
                );
                PathBuf::new()
            }
        };
        let every = c
            .every
            .as_deref()
            .map(|e| self.duration(&format!("{prefix}.every"), Some(e), Duration::from_secs(0)));
        let timeout = self.duration(&format!("{prefix}.timeout"), c.timeout.as_deref(), timeout);
        let kind = self.kind(&format!("{prefix}.kind"), c.kind, "metric-threshold");
        let mut args = c.args;
        for (api, limits) in &c.limits {
            for (k, v) in limits {
                let v = match v {
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::String(s) => s.clone(),
                    other => {
                        self.err(
                            format!("{prefix}.limits.{api}.{k}"),
                            format!("{other} is not a number or a string"),
                        );
                        continue;
                    }
                };
                args.push("--limit".into());
                args.push(format!("{api}:{k}={v}"));
            }
        }
        let mut rules = Vec::new();
        for (j, r) in c.rule.into_iter().enumerate() {
            let rp = format!("{prefix}.rule[{j}]");
            if let Some(r) = self.rule(&rp, r, &kind) {
                rules.push(r);
            }
        }
        CheckConfig {
            name,
            script,
            args,
            env: c.env,
            every,
            timeout,
            kind,
            rules,
            logs,
        }
    }

    fn kind(&mut self, key: &str, k: Option<String>, default: &str) -> String {
        match k {
            None => default.to_string(),
            Some(k) if KINDS.contains(&k.as_str()) => k,
            Some(k) => {
                self.err(
                    key,
                    format!(
                        "`{k}` is not a metric incident kind (expected one of: {})",
                        KINDS.join(", ")
                    ),
                );
                default.to_string()
            }
        }
    }

    fn rule(&mut self, prefix: &str, r: raw::RawRule, check_kind: &str) -> Option<RuleConfig> {
        self.unknown(prefix, &r.extra, raw::RawRule::KEYS);
        let Some(selector) = r.metric else {
            self.err(
                format!("{prefix}.metric"),
                "missing: the metric this rule checks (a name, optionally with labels: disk_used_percent{mount=\"/\"})",
            );
            return None;
        };
        let (metric, labels) =
            match super::super::metrics::exposition::parse_sample(&format!("{selector} 0")) {
                Ok(s) => (s.name, s.labels),
                Err(e) => {
                    self.err(
                        format!("{prefix}.metric"),
                        format!("`{selector}` is not a metric selector: {e}"),
                    );
                    return None;
                }
            };
        let window = |v: &mut Validator, default: u64| {
            v.duration(
                &format!("{prefix}.window"),
                r.window.as_deref(),
                Duration::from_secs(default),
            )
        };
        let mut tests = Vec::new();
        if r.above.is_some() || r.below.is_some() {
            tests.push(RuleTest::Threshold {
                above: r.above,
                below: r.below,
            });
        }
        if r.rate_above.is_some() || r.rate_below.is_some() {
            tests.push(RuleTest::Rate {
                above: r.rate_above,
                below: r.rate_below,
                window: window(self, 3600),
            });
        }
        if let Some(limit) = r.reaches {
            tests.push(RuleTest::Exhaustion {
                limit,
                within: self.duration(
                    &format!("{prefix}.within"),
                    r.within.as_deref(),
                    Duration::from_secs(86_400),
                ),
                window: window(self, 6 * 3600),
            });
        } else if r.within.is_some() {
            self.err(
                format!("{prefix}.within"),
                "only means something with `reaches`",
            );
        }
        if r.anomaly == Some(true) {
            let score = r.score.unwrap_or(0.5);
            if !(0.0..1.0).contains(&score) {
                self.err(
                    format!("{prefix}.score"),
                    format!("{score} is not in [0, 1)"),
                );
            }
            tests.push(RuleTest::Anomaly { score });
        } else if r.score.is_some() {
            self.err(
                format!("{prefix}.score"),
                "only means something with `anomaly = true`",
            );
        }
        if tests.len() != 1 {
            self.err(
                prefix,
                if tests.is_empty() {
                    "says nothing to check: give `above`/`below`, `rate_above`/`rate_below`, `reaches` or `anomaly = true`".to_string()
                } else {
                    "mixes several tests; give each its own [[check.rule]]".to_string()
                },
            );
            return None;
        }
        let test = tests.pop().expect("one test");
        let for_runs = match r.for_runs {
            None => 1,
            Some(n) if (1..=1000).contains(&n) => n as u32,
            Some(n) => {
                self.err(
                    format!("{prefix}.for"),
                    format!("{n} is not a number of runs from 1 to 1000"),
                );
                1
            }
        };
        let severity = match r.severity.as_deref() {
            None => "warning".to_string(),
            Some(s @ ("info" | "warning" | "critical")) => s.to_string(),
            Some(s) => {
                self.err(
                    format!("{prefix}.severity"),
                    format!("`{s}` is not one of info, warning, critical"),
                );
                "warning".to_string()
            }
        };
        let default_kind = if matches!(test, RuleTest::Anomaly { .. }) {
            "anomaly"
        } else {
            check_kind
        };
        let kind = self.kind(&format!("{prefix}.kind"), r.kind, default_kind);
        Some(RuleConfig {
            metric,
            labels,
            test,
            for_runs,
            severity,
            kind,
            title: r.title,
        })
    }
}

/// A rule as the `[[check.rule]]` table that gives it (what `check` prints can be pasted
/// back into the config).
fn write_rule(f: &mut fmt::Formatter<'_>, r: &RuleConfig) -> fmt::Result {
    let d = crate::duration::format;
    // `{:?}` of a float is a TOML float (`90.0`, `1e20`)
    let n = |v: f64| format!("{v:?}");
    writeln!(f, "[[check.rule]]")?;
    writeln!(
        f,
        "metric = {:?}",
        super::super::metrics::exposition::series_key(&r.metric, &r.labels)
    )?;
    match &r.test {
        RuleTest::Threshold { above, below } => {
            if let Some(a) = above {
                writeln!(f, "above = {}", n(*a))?;
            }
            if let Some(b) = below {
                writeln!(f, "below = {}", n(*b))?;
            }
        }
        RuleTest::Rate {
            above,
            below,
            window,
        } => {
            if let Some(a) = above {
                writeln!(f, "rate_above = {}", n(*a))?;
            }
            if let Some(b) = below {
                writeln!(f, "rate_below = {}", n(*b))?;
            }
            writeln!(f, "window = {:?}", d(*window))?;
        }
        RuleTest::Exhaustion {
            limit,
            within,
            window,
        } => {
            writeln!(f, "reaches = {}", n(*limit))?;
            writeln!(f, "within = {:?}", d(*within))?;
            writeln!(f, "window = {:?}", d(*window))?;
        }
        RuleTest::Anomaly { score } => {
            writeln!(f, "anomaly = true")?;
            writeln!(f, "score = {}", n(*score))?;
        }
    }
    writeln!(f, "for = {}", r.for_runs)?;
    writeln!(f, "severity = {:?}", r.severity)?;
    writeln!(f, "kind = {:?}", r.kind)?;
    if let Some(t) = &r.title {
        writeln!(f, "title = {t:?}")?;
    }
    Ok(())
}

impl fmt::Display for MetricsConfig {
    /// The effective `[metrics]` and `[[check]]` tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = crate::duration::format;
        writeln!(f, "\n[metrics]")?;
        writeln!(
            f,
            "scripts_dir = {:?}",
            self.scripts_dir.display().to_string()
        )?;
        writeln!(f, "timeout = {:?}", d(self.timeout))?;
        writeln!(f, "max_output = {}", self.max_output)?;
        writeln!(f, "failing_after = {}", self.failing_after)?;
        writeln!(f, "raw_retention = {:?}", d(self.raw_retention))?;
        writeln!(f, "rollup_retention = {:?}", d(self.rollup_retention))?;
        writeln!(f, "max_series = {}", self.max_series)?;
        for c in &self.checks {
            writeln!(f, "\n[[check]]\nname = {:?}", c.name)?;
            if c.logs {
                writeln!(f, "logs = true\nkind = {:?}", c.kind)?;
                for r in &c.rules {
                    write_rule(f, r)?;
                }
                continue;
            }
            writeln!(f, "script = {:?}", c.script.display().to_string())?;
            writeln!(f, "args = {:?}", c.args)?;
            match c.every {
                Some(e) => writeln!(f, "every = {:?}", d(e))?,
                None => writeln!(f, "# every run")?,
            }
            writeln!(f, "timeout = {:?}\nkind = {:?}", d(c.timeout), c.kind)?;
            for r in &c.rules {
                write_rule(f, r)?;
            }
        }
        Ok(())
    }
}
