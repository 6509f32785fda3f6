//! `logwarden metrics`: the series with their last value and status, the checks' script
//! runs, one series in detail (`show`), and the checks run now (`check`).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::config::Config;
use crate::metrics::chart;
use crate::metrics::checks::num;
use crate::pipeline::{self, RunOptions};
use crate::store::{ts, Store};

/// `logwarden metrics …`.
#[derive(Subcommand, Debug)]
pub enum MetricsCommand {
    /// A table of one metric's samples (a series key, or a name matching several) and a sparkline
    Show {
        name: String,
        /// From when: 24h, 7d, yesterday, 2026-11-30 08:00, … as journalctl (older than the
        /// raw retention comes from hourly rollups)
        #[arg(
            long,
            default_value = "24h",
            value_name = "TIME",
            allow_hyphen_values = true
        )]
        since: String,
        /// Print `[{"key", "check", "help", "from", "to", "rollups", "points"}]` as JSON
        #[arg(long)]
        json: bool,
    },
    /// Run every check now (due or not); --dry-run keeps nothing and opens nothing
    Check {
        #[arg(long)]
        dry_run: bool,
    },
}

fn time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(ts)
        .unwrap_or_default()
}

pub fn run(
    config: &Config,
    cmd: Option<MetricsCommand>,
    now: Option<DateTime<Utc>>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        None => list(config, now.unwrap_or_else(Utc::now), json),
        Some(MetricsCommand::Show { name, since, json }) => show(config, &name, &since, now, json),
        Some(MetricsCommand::Check { dry_run }) => {
            // The time since boot goes with a time read from the clock only.
            let boot = now.is_none().then(crate::clock::Boot::read).flatten();
            let now = now.unwrap_or_else(Utc::now);
            let report = pipeline::check_metrics(config, &RunOptions { now, dry_run, boot })?;
            if report.busy {
                crate::outln!("another logwarden run is in progress; nothing done");
                return Ok(ExitCode::SUCCESS);
            }
            crate::out!("{}", report.summary(now));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A sample: its time (unix seconds) and value.
type Sample = (i64, f64);

/// A series' last value as of `now`, and how far its samples stamped after `now` go
/// (stored while the clock ran ahead, or so printed by a script: not the present).
fn last_known(
    store: &Store,
    s: &crate::store::SeriesRow,
    now: DateTime<Utc>,
) -> anyhow::Result<(Option<Sample>, Option<i64>)> {
    let now = now.timestamp();
    if s.last_ts <= now {
        return Ok((Some((s.last_ts, s.last_value)), None));
    }
    Ok((store.newest_sample(s.id, now)?, Some(s.last_ts)))
}

fn list(config: &Config, now: DateTime<Utc>, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.database_path())?;
    let runs = store.metric_check_runs()?;
    if json {
        return list_json(config, &store, &runs, now);
    }
    if config.metrics.checks.is_empty() {
        crate::outln!("no [[check]] is configured");
    }
    crate::outln!("checks:");
    for c in &config.metrics.checks {
        match runs.iter().find(|r| r.name == c.name) {
            None if c.logs => crate::outln!("  {:<20} log rates (no script)", c.name),
            None => crate::outln!("  {:<20} never run", c.name),
            Some(r) => crate::outln!(
                "  {:<20} {:<8} last run {}, {} sample(s), {} ms{}{}",
                c.name,
                r.status,
                ts(r.last_run),
                r.samples,
                r.duration_ms,
                if r.failures > 0 {
                    format!(", {} failed run(s) in a row", r.failures)
                } else {
                    String::new()
                },
                if r.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.message)
                }
            ),
        }
    }
    let open: Vec<_> = store
        .incidents()?
        .into_iter()
        .filter(|i| i.status != "resolved" && i.signature.starts_with("metric:"))
        .collect();
    crate::outln!("series:");
    for s in store.metric_series()? {
        let firing: Vec<String> = open
            .iter()
            .filter(|i| {
                i.signature.starts_with(&format!("metric:{}:", s.check))
                    && i.signature.ends_with(&format!(":{}", s.key))
            })
            .map(|i| format!("#{} {}", i.id, i.kind))
            .collect();
        let status = if firing.is_empty() {
            "ok".to_string()
        } else {
            format!("INCIDENT {}", firing.join(", "))
        };
        let (last, ahead) = last_known(&store, &s, now)?;
        let (value, at) = match last {
            Some((at, v)) => (num(v), format!("at {}", time(at))),
            None => ("-".to_string(), "no sample up to now".to_string()),
        };
        let ahead = ahead
            .map(|t| format!("  (samples stamped after now, up to {}: ignored)", time(t)))
            .unwrap_or_default();
        crate::outln!(
            "  {:<50} {:>12}  {at}  [{}]  {status}{ahead}",
            s.key,
            value,
            s.check,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The series a `show` argument names: the one whose full name it is, else those of
/// that metric name carrying at least its labels (`disk_used_percent{mount="/"}`
/// selects `disk_used_percent{device="sda1",mount="/"}`), as a rule's `metric` does.
fn select<'a>(all: &'a [crate::store::SeriesRow], name: &str) -> Vec<&'a crate::store::SeriesRow> {
    if let Some(s) = all.iter().find(|s| s.key == name) {
        return vec![s];
    }
    let Ok(want) = crate::metrics::exposition::parse_sample(&format!("{name} 0")) else {
        return Vec::new();
    };
    all.iter()
        .filter(|s| {
            let labels: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&s.labels).unwrap_or_default();
            s.name == want.name && want.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect()
}

/// `metrics --json`: `{"checks": [...], "series": [...]}` (schema in the README).
fn list_json(
    config: &Config,
    store: &Store,
    runs: &[crate::store::CheckRunRow],
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let checks: Vec<serde_json::Value> = config
        .metrics
        .checks
        .iter()
        .map(|c| match runs.iter().find(|r| r.name == c.name) {
            None if c.logs => serde_json::json!({"name": c.name, "status": "log rates"}),
            None => serde_json::json!({"name": c.name, "status": "never run"}),
            Some(r) => serde_json::json!({
                "name": c.name,
                "status": r.status,
                "last_run": ts(r.last_run),
                "samples": r.samples,
                "duration_ms": r.duration_ms,
                "failures": r.failures,
                "message": r.message,
            }),
        })
        .collect();
    let open: Vec<_> = store
        .incidents()?
        .into_iter()
        .filter(|i| i.status != "resolved" && i.signature.starts_with("metric:"))
        .collect();
    let series = store
        .metric_series()?
        .into_iter()
        .map(|s| {
            let incidents: Vec<i64> = open
                .iter()
                .filter(|i| {
                    i.signature.starts_with(&format!("metric:{}:", s.check))
                        && i.signature.ends_with(&format!(":{}", s.key))
                })
                .map(|i| i.id)
                .collect();
            let (last, ahead) = last_known(store, &s, now)?;
            Ok(serde_json::json!({
                "key": s.key,
                "name": s.name,
                "check": s.check,
                "last_value": last.map(|(_, v)| v),
                "last_time": last.map(|(at, _)| time(at)),
                "stamped_ahead_until": ahead.map(time),
                "open_incidents": incidents,
            }))
        })
        .collect::<anyhow::Result<Vec<serde_json::Value>>>()?;
    super::print_json(&serde_json::json!({"checks": checks, "series": series}))?;
    Ok(ExitCode::SUCCESS)
}

fn show(
    config: &Config,
    name: &str,
    since: &str,
    now: Option<DateTime<Utc>>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.database_path())?;
    let mut shown = Vec::new();
    let all = store.metric_series()?;
    let series = select(&all, name);
    if series.is_empty() {
        return Err(super::usage(format!(
            "no metric `{name}` (see `logwarden metrics` for the list)"
        )));
    }
    if series.len() > 1 {
        let list: Vec<String> = series
            .iter()
            .map(|s| format!("  {} (check `{}`)", s.key, s.check))
            .collect();
        return Err(super::usage(format!(
            "`{name}` matches {} series; name one of them (a label more, or its full name):\n{}",
            series.len(),
            list.join("\n")
        )));
    }
    for s in series {
        let to = now.map_or(s.last_ts, |n| n.timestamp());
        // Relative times count back from the newest sample unless --now is given.
        let anchor = DateTime::<Utc>::from_timestamp(to, 0).unwrap_or_default();
        let from = crate::timespec::parse(since, anchor)
            .map_err(super::usage)?
            .timestamp();
        let span = std::time::Duration::from_secs(to.saturating_sub(from).max(0) as u64);
        if json {
            let rollups = span > config.metrics.raw_retention;
            let points: Vec<serde_json::Value> = if rollups {
                store
                    .metric_rollups(s.id, from)?
                    .iter()
                    .map(|x| {
                        serde_json::json!({"hour": time(x.hour), "mean": x.mean, "min": x.min,
                            "max": x.max, "count": x.count})
                    })
                    .collect()
            } else {
                store
                    .metric_samples(s.id, from)?
                    .iter()
                    .filter(|p| p.0 <= to)
                    .map(|(t, v)| serde_json::json!({"time": time(*t), "value": v}))
                    .collect()
            };
            shown.push(serde_json::json!({
                "key": s.key,
                "check": s.check,
                "help": s.help,
                "from": time(from),
                "to": time(to),
                "rollups": rollups,
                "points": points,
            }));
            continue;
        }
        crate::outln!(
            "{} (check `{}`){}",
            s.key,
            s.check,
            if s.help.is_empty() {
                String::new()
            } else {
                format!(": {}", s.help)
            }
        );
        let rollups = span > config.metrics.raw_retention;
        let (rows, values): (Vec<String>, Vec<f64>) = if rollups {
            let r = store.metric_rollups(s.id, from)?;
            crate::outln!(
                "  {:<20} {:>12} {:>12} {:>12} {:>6}",
                "hour",
                "mean",
                "min",
                "max",
                "n"
            );
            (
                r.iter()
                    .map(|x| {
                        format!(
                            "  {:<20} {:>12} {:>12} {:>12} {:>6}",
                            time(x.hour),
                            num(x.mean),
                            num(x.min),
                            num(x.max),
                            x.count
                        )
                    })
                    .collect(),
                r.iter().map(|x| x.mean).collect(),
            )
        } else {
            let r = store.metric_samples(s.id, from)?;
            crate::outln!("  {:<20} {:>12}", "time", "value");
            (
                r.iter()
                    .filter(|p| p.0 <= to)
                    .map(|(t, v)| format!("  {:<20} {:>12}", time(*t), num(*v)))
                    .collect(),
                r.iter().filter(|p| p.0 <= to).map(|p| p.1).collect(),
            )
        };
        const SHOWN: usize = 40;
        if rows.len() > SHOWN {
            crate::outln!("  … {} earlier row(s) not shown", rows.len() - SHOWN);
        }
        for r in rows.iter().skip(rows.len().saturating_sub(SHOWN)) {
            crate::outln!("{r}");
        }
        if values.is_empty() {
            crate::outln!("  no samples since {}", time(from));
        } else {
            crate::outln!(
                "  {}  min {} max {} last {} ({} point(s){})",
                chart::sparkline(&values, 60),
                num(values.iter().copied().fold(f64::INFINITY, f64::min)),
                num(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                num(*values.last().expect("not empty")),
                values.len(),
                if rollups { ", hourly means" } else { "" }
            );
        }
        crate::outln!();
    }
    if json {
        super::print_json(&shown)?;
    }
    Ok(ExitCode::SUCCESS)
}
