//! Metrics: curated scripts print samples, logwarden stores them and tells normal from
//! concerning.
//!
//! A `[[check]]` names a script (run by [`script`] with a timeout, no stdin, a minimal
//! environment, in its own process group, output capped) whose output is the Prometheus
//! text format ([`exposition`]). Samples go to the state database (raw for
//! `raw_retention`, hourly rollups for `rollup_retention`, at most
//! [`MAX_RAW_PER_SERIES`](crate::store::MAX_RAW_PER_SERIES) raw samples a series). The
//! check's rules ([`checks`]) then open, update and resolve metric incidents: one per
//! rule and series, signature `metric:<check>:<rule>:<series>`, going through the same
//! incident machinery as log errors (stage `new` → investigated → filed). A script that
//! keeps failing becomes an incident itself (`metric:<check>:script`). Incident files
//! get a sparkline and SVG charts ([`chart`]).

pub mod anomaly;
pub mod chart;
pub mod checks;
pub mod detectors;
pub mod exposition;
pub mod logs;
pub mod script;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{CheckConfig, Config, RuleTest};
use crate::store::{self, Batch, IncidentRow, NewIncident, SeriesRow, Store, StoreError};
use checks::{num, Finding};

/// What the metric checks did in one run.
#[derive(Debug, Default)]
pub struct MetricsReport {
    /// `check: N samples in M ms` or what went wrong, per check that ran.
    pub ran: Vec<String>,
    /// Checks not due this run.
    pub not_due: usize,
    pub problems: Vec<String>,
    /// Incidents opened (id, title).
    pub opened: Vec<(i64, String)>,
    /// Open incidents that got another breaching run.
    pub updated: Vec<i64>,
    /// Incidents resolved (id, title).
    pub resolved: Vec<(i64, String)>,
    /// Findings that breach but have not fired yet (`for` not reached), or would fire
    /// in a dry run.
    pub pending: Vec<String>,
}

impl MetricsReport {
    /// Lines for the run summary.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.ran {
            out.push(format!("metrics: {r}"));
        }
        for p in &self.problems {
            out.push(format!("metrics problem: {p}"));
        }
        for p in &self.pending {
            out.push(format!("metrics: {p}"));
        }
        // Titles hold metric labels, read from the host: one line each.
        for (id, t) in &self.opened {
            let t = crate::sanitize::line(t);
            out.push(format!("metrics: opened incident #{id} {t}"));
        }
        for id in &self.updated {
            out.push(format!("metrics: incident #{id} still breaching"));
        }
        for (id, t) in &self.resolved {
            let t = crate::sanitize::line(t);
            out.push(format!("metrics: resolved incident #{id} {t}"));
        }
        out
    }
}

/// Is a check due? Every run without `every`; otherwise when `every` (less 5%, at most a
/// minute, for timer jitter) has passed since its last run.
fn due(check: &CheckConfig, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    match (check.every, last) {
        (None, _) | (_, None) => true,
        (Some(every), Some(last)) => {
            let slack = (every / 20).min(Duration::from_secs(60));
            let elapsed = (now - last).num_seconds();
            // A last run after `now` was under a clock that ran ahead: due now.
            elapsed < 0 || elapsed >= (every - slack).as_secs() as i64
        }
    }
}

/// Runs the due checks (all of them with `force`), records samples, evaluates the rules
/// and opens/updates/resolves metric incidents. With `dry_run` nothing is kept.
/// `log_series`: the log-rate series this run wrote ([`logs::record`]), which the
/// `logs = true` checks look at (with `force`, at every log-rate series).
pub fn run_checks(
    config: &Config,
    store: &mut Store,
    now: DateTime<Utc>,
    run_id: Option<i64>,
    force: bool,
    dry_run: bool,
    log_series: &[i64],
) -> Result<MetricsReport, StoreError> {
    let m = &config.metrics;
    let mut report = MetricsReport::default();
    if m.checks.is_empty() && log_series.is_empty() {
        return Ok(report);
    }
    let last: BTreeMap<String, DateTime<Utc>> = store
        .metric_check_runs()?
        .into_iter()
        .map(|r| (r.name, r.last_run))
        .collect();
    let due_checks: Vec<&CheckConfig> = m
        .checks
        .iter()
        .filter(|c| !c.logs && (force || due(c, last.get(&c.name).copied(), now)))
        .collect();
    report.not_due = m.checks.iter().filter(|c| !c.logs).count() - due_checks.len();

    // Run the scripts concurrently, outside any transaction.
    let outcomes: Vec<script::Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = due_checks
            .iter()
            .map(|c| {
                let inv = script::Invocation {
                    program: &c.script,
                    args: &c.args,
                    env: &c.env,
                    cwd: &m.scripts_dir,
                    timeout: c.timeout,
                    max_output: m.max_output,
                    now: now.timestamp(),
                    check: &c.name,
                };
                s.spawn(move || script::run(&inv))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });

    let batch = store.batch()?;
    for (check, out) in due_checks.iter().zip(outcomes) {
        record(
            config,
            &batch,
            check,
            out,
            now,
            run_id,
            dry_run,
            &mut report,
        )?;
    }
    let log_checks: Vec<&CheckConfig> = m.checks.iter().filter(|c| c.logs).collect();
    if !log_checks.is_empty() && (force || !log_series.is_empty()) {
        let series: Vec<SeriesRow> = batch
            .series_of_check(logs::LOG_SERIES_CHECK)?
            .into_iter()
            .filter(|s| force || log_series.contains(&s.id))
            .collect();
        for check in log_checks {
            evaluate_rules(
                config,
                &batch,
                check,
                &series,
                now,
                run_id,
                dry_run,
                &mut report,
            )?;
        }
    }
    let raw_before = now.timestamp() - m.raw_retention.as_secs() as i64;
    let rollup_before = now.timestamp() - m.rollup_retention.as_secs() as i64;
    batch.prune_metrics(raw_before, rollup_before, now)?;
    if !dry_run {
        batch.commit()?;
    }
    Ok(report)
}

/// Records one script run and evaluates the check's rules.
#[allow(clippy::too_many_arguments)]
fn record(
    config: &Config,
    batch: &Batch,
    check: &CheckConfig,
    out: script::Outcome,
    now: DateTime<Utc>,
    run_id: Option<i64>,
    dry_run: bool,
    report: &mut MetricsReport,
) -> Result<(), StoreError> {
    let m = &config.metrics;
    let t_now = now.timestamp();
    let mut warnings = out.warnings.clone();
    let mut stored = 0u64;
    if out.failure.is_none() {
        let mut series_ids: BTreeMap<String, i64> = BTreeMap::new();
        let (mut dropped_series, mut dropped_time) = (0, 0);
        for s in &out.parsed.samples {
            let at = s.timestamp_ms.map_or(t_now, |ms| ms.div_euclid(1000));
            if at > t_now + 300 || at < t_now - m.raw_retention.as_secs() as i64 {
                dropped_time += 1;
                continue;
            }
            let key = s.key();
            let id = match series_ids.get(&key) {
                Some(id) => *id,
                None if series_ids.len() >= m.max_series => {
                    dropped_series += 1;
                    continue;
                }
                None => {
                    let labels = serde_json::to_string(&s.labels).expect("labels serialise");
                    let help = out.parsed.help.get(&s.name).map_or("", String::as_str);
                    let id = batch.upsert_series(&check.name, &key, &s.name, &labels, help)?;
                    series_ids.insert(key, id);
                    id
                }
            };
            if !s.value.is_finite() {
                continue;
            }
            if batch.insert_sample(id, at, s.value)? {
                stored += 1;
            }
        }
        if dropped_series > 0 {
            warnings.push(format!(
                "{dropped_series} sample(s) of series beyond metrics.max_series = {} dropped",
                m.max_series
            ));
        }
        if dropped_time > 0 {
            warnings.push(format!(
                "{dropped_time} sample(s) with a timestamp in the future or older than the retention dropped"
            ));
        }
    }
    let (status, message) = match (&out.failure, warnings.is_empty()) {
        (Some(f), _) => ("failed", f.clone()),
        (None, true) => ("ok", String::new()),
        (None, false) => ("warning", warnings.join("; ")),
    };
    let failures = batch.record_check_run(
        &check.name,
        now,
        out.failure.is_some(),
        status,
        &message,
        stored,
        out.duration_ms,
    )?;
    report.ran.push(match status {
        // A dry run keeps nothing: it says what it read.
        "ok" if dry_run => format!(
            "`{}`: {} sample(s) read in {} ms (dry run: not stored)",
            check.name, stored, out.duration_ms
        ),
        "ok" => format!(
            "`{}`: {} sample(s) stored in {} ms",
            check.name, stored, out.duration_ms
        ),
        _ => format!(
            "`{}` {status} after {} ms ({} failed run(s) in a row): {message}",
            check.name, out.duration_ms, failures
        ),
    });
    if status != "ok" {
        report
            .problems
            .push(format!("check `{}`: {message}", check.name));
    }

    // The script itself failing, run after run.
    let script_sig = format!("metric:{}:script", check.name);
    let open = batch.open_metric_incident(&script_sig)?;
    let f = Finding {
        check: check.name.clone(),
        series: String::new(),
        rule: format!(
            "the script fails {} run(s) in a row",
            config.metrics.failing_after
        ),
        firing: failures >= config.metrics.failing_after,
        breaching: failures > 0,
        value: failures as f64,
        at: t_now,
        baseline: None,
        band: None,
        threshold: None,
        eta_secs: None,
        explanation: format!(
            "{} ({} failed run(s) in a row): {}",
            check.script.display(),
            failures,
            if message.is_empty() { "ok" } else { &message }
        ),
    };
    let title = format!(
        "check {}: script failing {failures} runs in a row",
        check.name
    );
    apply(
        config,
        batch,
        &script_sig,
        open,
        &f,
        "metric-threshold",
        "warning",
        &title,
        now,
        run_id,
        dry_run,
        report,
    )?;
    if out.failure.is_some() {
        return Ok(());
    }

    let series = batch.series_of_check(&check.name)?;
    evaluate_rules(config, batch, check, &series, now, run_id, dry_run, report)
}

/// The rules of a check, over every series they select.
#[allow(clippy::too_many_arguments)]
fn evaluate_rules(
    config: &Config,
    batch: &Batch,
    check: &CheckConfig,
    series: &[SeriesRow],
    now: DateTime<Utc>,
    run_id: Option<i64>,
    dry_run: bool,
    report: &mut MetricsReport,
) -> Result<(), StoreError> {
    let m = &config.metrics;
    let t_now = now.timestamp();
    let oldest = t_now - m.raw_retention.as_secs() as i64;
    let mut seen_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in &check.rules {
        let nth = seen_rule.entry(rule.test_name()).or_default();
        *nth += 1;
        let rule_id = if *nth == 1 {
            rule.test_name().to_string()
        } else {
            format!("{}-{}", rule.test_name(), nth)
        };
        for s in series {
            let labels: BTreeMap<String, String> =
                serde_json::from_str(&s.labels).unwrap_or_default();
            if !rule.selects(&s.name, &labels) || s.last_ts.min(t_now) < t_now - 2 * 86_400 {
                continue;
            }
            let found = if let RuleTest::Anomaly { .. } = rule.test {
                let key = format!("{}:{rule_id}", check.name);
                detectors::anomaly(batch, &check.name, &key, rule, s, oldest, now)?
            } else {
                let since = detectors::window_start(batch, s, rule, t_now)?.max(oldest);
                let samples = batch.samples_between(s.id, since, t_now)?;
                checks::evaluate(&check.name, &s.key, rule, &samples)
            };
            let Some(f) = found else {
                continue;
            };
            let sig = format!("metric:{}:{}:{}", check.name, rule_id, s.key);
            let open = batch.open_metric_incident(&sig)?;
            let title = checks::title(rule, &f, &labels);
            if f.breaching && !f.firing && open.is_none() {
                report.pending.push(format!(
                    "`{}` {}: {} (not yet: {})",
                    check.name, s.key, f.explanation, f.rule
                ));
            }
            apply(
                config,
                batch,
                &sig,
                open,
                &f,
                &rule.kind,
                &rule.severity,
                &title,
                now,
                run_id,
                dry_run,
                report,
            )?;
        }
    }
    Ok(())
}

/// Opens, updates or resolves the incident of one finding.
#[allow(clippy::too_many_arguments)]
fn apply(
    config: &Config,
    batch: &Batch,
    sig: &str,
    open: Option<i64>,
    f: &Finding,
    kind: &str,
    severity: &str,
    title: &str,
    now: DateTime<Utc>,
    run_id: Option<i64>,
    dry_run: bool,
    report: &mut MetricsReport,
) -> Result<(), StoreError> {
    // Most findings of a run change nothing (no incident, not firing): the title is
    // cleaned (its redaction rules compiled) and the evidence written only when used.
    let evidence = || serde_json::to_string(f).expect("findings serialise");
    let title = || crate::incident::clean_title(config, title);
    match open {
        None if f.firing => {
            let (title, sample) = (title(), explain(f));
            if dry_run || run_id.is_none() {
                report
                    .opened
                    .push((0, format!("{title} (dry run: not opened)")));
                return Ok(());
            }
            let id = batch.insert_incident(
                &NewIncident {
                    signature: sig.to_string(),
                    kind: kind.to_string(),
                    severity: severity.to_string(),
                    title: title.clone(),
                    source: format!("check:{}", f.check),
                    host: config.hostname.clone(),
                    level: if severity == "critical" {
                        "CRITICAL"
                    } else {
                        "WARNING"
                    }
                    .into(),
                    level_no: None,
                    template: format!("{} {}", f.series, f.rule).trim().to_string(),
                    exception_type: None,
                    first_seen: now,
                    last_seen: now,
                    occurrences: 1,
                    samples: vec![sample],
                },
                now,
                run_id.expect("checked above"),
            )?;
            batch.save_metric_alert(id, &f.check, &f.series, &evidence(), now)?;
            report.opened.push((id, title));
        }
        Some(id) if f.firing || f.breaching => {
            batch.update_metric_incident(id, &[explain(f)], &title(), now)?;
            batch.save_metric_alert(id, &f.check, &f.series, &evidence(), now)?;
            report.updated.push(id);
        }
        Some(id) => {
            batch.resolve_metric_incident(id, now)?;
            report
                .resolved
                .push((id, format!("{}: recovered ({})", sig, sample_line(f))));
        }
        None => {}
    }
    Ok(())
}

fn sample_line(f: &Finding) -> String {
    f.explanation.lines().next().unwrap_or("").to_string()
}

/// The explanation of a finding as the incident's evidence text.
pub fn explain(f: &Finding) -> String {
    let mut s = format!(
        "check {}{}\nrule: {}\nat {}: {}\n",
        crate::sanitize::code_span(&f.check),
        if f.series.is_empty() {
            String::new()
        } else {
            // label values come from what a script read on the host
            format!(", series {}", crate::sanitize::code_span(&f.series))
        },
        f.rule,
        DateTime::<Utc>::from_timestamp(f.at, 0)
            .map(store::ts)
            .unwrap_or_default(),
        f.explanation
    );
    s.push_str(&format!("current value: {}\n", num(f.value)));
    if let Some(b) = f.baseline {
        s.push_str(&format!("baseline: {}\n", num(b)));
    }
    if let Some((lo, hi)) = f.band {
        s.push_str(&format!("normal band: {} to {}\n", num(lo), num(hi)));
    }
    if let Some(t) = f.threshold {
        s.push_str(&format!("limit: {}\n", num(t)));
    }
    s
}

/// The metric section of an incident file: the explanation, a sparkline and links to
/// SVG charts written beside the file (`<file>.24h.svg`, `<file>.7d.svg` once there is
/// more than a day of history). `None` for incidents that are not metric incidents.
/// `red`: the page's redactor, for the charts' text (`None` when pages are not redacted).
pub fn incident_section(
    store: &Store,
    inc: &IncidentRow,
    path: &Path,
    red: Option<&crate::redact::Redactor>,
) -> Option<String> {
    let alert = store.metric_alert(inc.id).ok()??;
    let f: Finding = serde_json::from_str(&alert.evidence).ok()?;
    let mut md = explain(&f)
        .lines()
        .map(|l| format!("- {l}\n"))
        .collect::<String>();
    md.push('\n');
    if f.series.is_empty() {
        return Some(md);
    }
    // A `logs = true` check's series are the log rates, stored under their own name.
    let all = store.metric_series().ok()?;
    let series = [alert.check.as_str(), logs::LOG_SERIES_CHECK]
        .iter()
        .find_map(|c| {
            all.iter()
                .find(|s| s.check == *c && s.key == alert.series_key)
        })?
        .clone();
    let to = f.at.max(series.last_ts);
    let day = store.metric_samples(series.id, to - 86_400).ok()?;
    let values: Vec<f64> = day.iter().map(|p| p.1).collect();
    md.push_str(&format!(
        "Last 24 h: `{}` (min {}, max {}, now {})\n\n",
        chart::sparkline(&values, 48),
        num(values.iter().copied().fold(f64::INFINITY, f64::min)),
        num(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        num(f.value)
    ));
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let dir = path.parent()?;
    let mut charts = vec![("24h", 86_400i64, day.clone())];
    // The page of an open incident is written again on every run: what it reads must
    // not grow with the series' history (a year of samples), only with what it draws.
    if store
        .metric_first_sample(series.id)
        .ok()?
        .is_some_and(|t| t < to - 86_400)
    {
        let since = to - 7 * 86_400;
        // Hourly means once a week of raw samples is more than the chart can show.
        let week: Vec<(i64, f64)> = match store.metric_rollups(series.id, since) {
            Ok(r)
                if r.len() > 48 && store.metric_samples_exceed(series.id, since, 2000).ok()? =>
            {
                r.iter().map(|x| (x.hour + 1800, x.mean)).collect()
            }
            _ => store.metric_samples(series.id, since).ok()?,
        };
        charts.push(("7d", 7 * 86_400, week));
    }
    for (label, span, pts) in charts {
        let name = format!("{stem}.{label}.svg");
        let doc = chart::svg(&chart::Plot {
            title: &format!("{} — last {label}", f.series),
            points: &pts,
            from: to - span,
            to,
            band: f.band,
            threshold: f.threshold,
            redactor: red,
        });
        if crate::fsio::replace(
            &dir.join(&name),
            doc.as_bytes(),
            crate::fsio::NewFile::DirOwner(0o640),
        )
        .is_ok()
        {
            // the alt text cannot close the image and open another
            let alt = crate::sanitize::md_inline(&f.series.replace(['[', ']'], ""));
            md.push_str(&format!(
                "![{alt} over the last {label}]({})\n\n",
                crate::notify::ntfy::url_segment(&name)
            ));
        }
    }
    Some(md)
}

/// The metric series worth showing an investigator: each series seen in the last day,
/// with up to 48 recent values. Used by [`crate::investigate::evidence::metric_summaries`].
pub fn summaries(store: &Store, now: DateTime<Utc>) -> Vec<(String, String, Vec<f64>)> {
    let Ok(series) = store.metric_series() else {
        return Vec::new();
    };
    let t = now.timestamp();
    series
        .into_iter()
        .filter(|s| s.last_ts > t - 86_400)
        .take(24)
        .filter_map(|s| {
            let pts = store.metric_samples(s.id, t - 86_400).ok()?;
            let values: Vec<f64> = pts.iter().rev().take(48).rev().map(|p| p.1).collect();
            Some((format!("{} ({})", s.key, s.check), String::new(), values))
        })
        .collect()
}

/// The investigator's prompt for a metric incident: its kind's template, with the facts
/// of the finding it was opened on (called from `investigate`).
pub fn prompt(
    config: &Config,
    store: &Store,
    inc: &IncidentRow,
    kind: crate::investigate::prompt::TriggerKind,
    evidence: &str,
) -> Result<crate::investigate::prompt::Prompt, String> {
    use crate::investigate::prompt::{self as p, TriggerKind};
    let f: Option<Finding> = store
        .metric_alert(inc.id)
        .ok()
        .flatten()
        .and_then(|a| serde_json::from_str(&a.evidence).ok());
    let Some(f) = f else {
        return p::metric_threshold(
            config,
            &inc.template,
            "unknown",
            "unknown",
            &store::ts(inc.first_seen),
            evidence,
        );
    };
    let metric = if f.series.is_empty() {
        format!("the script of check `{}`", f.check)
    } else {
        f.series.clone()
    };
    let since = store::ts(inc.first_seen);
    let value = num(f.value);
    let rule = format!("{} ({})", f.rule, f.explanation);
    match kind {
        TriggerKind::Anomaly => {
            let expected = match (f.baseline, f.band) {
                (Some(b), Some((lo, hi))) => {
                    format!("about {} (normal band {} to {})", num(b), num(lo), num(hi))
                }
                _ => "unknown".into(),
            };
            p::anomaly(config, &metric, &value, &expected, &since, evidence)
        }
        TriggerKind::Disk => p::disk(config, &metric, &value, "see the evidence", &rule, evidence),
        TriggerKind::Queue => p::queue(config, &metric, &value, &rule, "unknown", evidence),
        TriggerKind::ApiRate => p::api_rate(
            config,
            &metric,
            "not counted by this check",
            &rule,
            evidence,
        ),
        _ => p::metric_threshold(config, &metric, &value, &rule, &since, evidence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_last_run_under_a_clock_that_ran_ahead_is_due() {
        let check = CheckConfig {
            name: "disk".into(),
            script: "disk.sh".into(),
            args: Vec::new(),
            env: Default::default(),
            every: Some(Duration::from_secs(15 * 60)),
            timeout: Duration::from_secs(5),
            kind: "metric-threshold".into(),
            rules: Vec::new(),
            logs: false,
        };
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let m = |n: i64| now + chrono::Duration::minutes(n);
        assert!(!due(&check, Some(m(-5)), now), "ran 5 minutes ago");
        assert!(due(&check, Some(m(-15)), now));
        assert!(
            due(&check, Some(m(30 * 24 * 60)), now),
            "ran \"in 30 days\""
        );
    }
}
