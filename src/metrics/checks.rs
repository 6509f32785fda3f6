//! Rules over a stored series: is it concerning now, and why.
//!
//! Every rule is evaluated at the latest sample and, for `for = N`, at the N latest
//! samples (one per run of the check): it *fires* (opens an incident) when all N
//! breach, and the incident stays open while the latest sample still *breaches*; it
//! resolves on the first sample that does not. So a breach makes one incident, not one
//! per run, and a value hovering at the threshold cannot page on every run.
//!
//! - **threshold**: `above`/`below`; the band shown is the trailing 24 h median ± the
//!   99% Normal quantile × 1.4826 × MAD.
//! - **rate**: the Theil–Sen slope over `window`, per hour, with its distribution-free
//!   90% interval (Kendall's τ, Normal approximation from statrs).
//! - **exhaustion**: the same trend projected to `reaches`; fires when it gets there
//!   within `within`. The ETA interval comes from the slope interval.
//! - **anomaly**: the NAB-tested [`AnomalyDetector`](super::anomaly::AnomalyDetector),
//!   fed the samples in order (runs keep its state: [`super::detectors`]; [`evaluate`]
//!   replays them all, the reference); fires when the latest score reaches `score`,
//!   stays open while the value is outside the detector's band.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::anomaly::pages::{NoPages, PageSource};
use super::anomaly::{robust_trend, time_to_reach, AnomalyConfig, AnomalyDetector, AnomalyScore};
use crate::config::{RuleConfig, RuleTest};

/// What a rule found on one series: stored with the incident, shown in its file, its
/// chart and the investigator's prompt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub check: String,
    pub series: String,
    /// The rule as a sentence: `above 90 for 3 runs`.
    pub rule: String,
    /// Opens an incident.
    pub firing: bool,
    /// Keeps an open incident open.
    pub breaching: bool,
    pub value: f64,
    pub at: i64,
    pub baseline: Option<f64>,
    pub band: Option<(f64, f64)>,
    /// A horizontal line worth drawing (threshold, limit).
    pub threshold: Option<f64>,
    /// Seconds until the trend reaches the limit (exhaustion rules).
    pub eta_secs: Option<i64>,
    /// What fired and why, with the numbers.
    pub explanation: String,
}

/// Formats a value compactly: `1.5k`, `0.25`, `12`.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 1e15 {
        // (past the named units: 1e200 in decimal is 200 digits of a title)
        format!("{v:.2e}")
    } else if a >= 1e12 {
        format!("{:.1}T", v / 1e12)
    } else if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.3}")
    } else {
        // Three decimals would show a 0.4 ms latency as a flat 0.
        format!("{v:.2e}")
    }
}

/// `9h 5m`, `3d 2h`, `40m`, `now`.
pub fn human_secs(s: i64) -> String {
    if s <= 0 {
        return "now".into();
    }
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        if m > 0 {
            format!("{h}h {m}m")
        } else {
            format!("{h}h")
        }
    } else {
        format!("{}m", m.max(1))
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median and a 99% band (median ± z₀.₉₉₅ × 1.4826 × MAD) of values.
pub fn robust_band(values: &[f64]) -> Option<(f64, (f64, f64))> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 3 {
        return None;
    }
    let med = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    let sd = 1.4826 * median(&mut dev);
    let z = Normal::standard().inverse_cdf(0.995);
    Some((med, (med - z * sd, med + z * sd)))
}

/// A distribution-free interval for the Theil–Sen slope (per second): the pairwise
/// slopes ranked around the median by Kendall's τ variance, `conf` two-sided. Uses at
/// most the last 300 points.
pub fn slope_interval(points: &[(i64, f64)], conf: f64) -> Option<(f64, f64)> {
    let pts = &points[points.len().saturating_sub(300)..];
    let n = pts.len();
    if n < 4 {
        return None;
    }
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dt = (pts[j].0 - pts[i].0) as f64;
            if dt > 0.0 {
                slopes.push((pts[j].1 - pts[i].1) / dt);
            }
        }
    }
    if slopes.len() < 3 {
        return None;
    }
    slopes.sort_by(|a, b| a.total_cmp(b));
    let big_n = slopes.len() as f64;
    let nf = n as f64;
    let z = Normal::standard().inverse_cdf(0.5 + conf / 2.0);
    let c = z * (nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0).sqrt();
    let lo = (((big_n - c) / 2.0).floor().max(0.0) as usize).min(slopes.len() - 1);
    let hi = (((big_n + c) / 2.0).ceil() as usize).min(slopes.len() - 1);
    Some((slopes[lo], slopes[hi]))
}

fn describe(rule: &RuleConfig) -> String {
    let runs = if rule.for_runs > 1 {
        format!(" for {} runs", rule.for_runs)
    } else {
        String::new()
    };
    let d = crate::duration::format;
    match &rule.test {
        RuleTest::Threshold { above, below } => {
            let mut parts = Vec::new();
            if let Some(a) = above {
                parts.push(format!("above {}", num(*a)));
            }
            if let Some(b) = below {
                parts.push(format!("below {}", num(*b)));
            }
            format!("{}{runs}", parts.join(" or "))
        }
        RuleTest::Rate {
            above,
            below,
            window,
        } => {
            let mut parts = Vec::new();
            if let Some(a) = above {
                parts.push(format!("rising faster than {}/h", num(*a)));
            }
            if let Some(b) = below {
                parts.push(format!("changing slower than {}/h", num(*b)));
            }
            format!("{} over {}{runs}", parts.join(" or "), d(*window))
        }
        RuleTest::Exhaustion {
            limit,
            within,
            window,
        } => format!(
            "trend over {} reaches {} within {}{runs}",
            d(*window),
            num(*limit),
            d(*within)
        ),
        RuleTest::Anomaly { score } => format!("anomaly score at least {score}{runs}"),
    }
}

/// One evaluation point: does the series breach at sample `i` (using samples up to it)?
struct Point {
    breach: bool,
    explanation: String,
    baseline: Option<f64>,
    band: Option<(f64, f64)>,
    eta: Option<i64>,
}

/// Evaluates a rule on a series' samples (oldest first). `None` when there is not
/// enough data to say anything.
pub fn evaluate(
    check: &str,
    series: &str,
    rule: &RuleConfig,
    samples: &[(i64, f64)],
) -> Option<Finding> {
    let mut f = evaluate_unclamped(check, series, rule, samples)?;
    let (lo, hi) = domain(&rule.metric, samples);
    f.band = f.band.map(|(a, b)| (a.clamp(lo, hi), b.clamp(lo, hi)));
    Some(f)
}

/// The values a series can take, as far as its name and history tell: a series never
/// seen below zero (a count, a size, a queue depth) is not negative, and a `_percent`
/// never seen above 100 stays at or below 100. A normal band drawn outside that (a
/// queue "normally -76 to 153") says something the metric cannot do.
pub fn domain(name: &str, samples: &[(i64, f64)]) -> (f64, f64) {
    let lo = if samples.iter().any(|(_, v)| *v < 0.0) {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    let hi = if name.ends_with("_percent") && samples.iter().all(|(_, v)| *v <= 100.0) {
        100.0
    } else {
        f64::INFINITY
    };
    (lo, hi)
}

/// [`domain`] from the least and greatest finite value seen.
pub fn domain_of(name: &str, min: f64, max: f64) -> (f64, f64) {
    let lo = if min < 0.0 { f64::NEG_INFINITY } else { 0.0 };
    let hi = if name.ends_with("_percent") && max <= 100.0 {
        100.0
    } else {
        f64::INFINITY
    };
    (lo, hi)
}

fn evaluate_unclamped(
    check: &str,
    series: &str,
    rule: &RuleConfig,
    samples: &[(i64, f64)],
) -> Option<Finding> {
    let samples: Vec<(i64, f64)> = samples
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let &(at, value) = samples.last()?;
    let n = rule.for_runs as usize;
    let mut points: Vec<Point> = Vec::new();
    let mut threshold = None;
    match &rule.test {
        RuleTest::Threshold { above, below } => {
            threshold = above.or(*below);
            let day: Vec<f64> = samples
                .iter()
                .filter(|(t, _)| *t > at - 86_400)
                .map(|(_, v)| *v)
                .collect();
            let band = robust_band(&day);
            for &(_, v) in &samples[samples.len().saturating_sub(n)..] {
                let over = above.filter(|a| v > *a);
                let under = below.filter(|b| v < *b);
                let explanation = match (over, under) {
                    (Some(a), _) => format!("{} is above the threshold {}", num(v), num(a)),
                    (_, Some(b)) => format!("{} is below the threshold {}", num(v), num(b)),
                    _ => format!("{} is within the threshold", num(v)),
                };
                points.push(Point {
                    breach: over.is_some() || under.is_some(),
                    explanation,
                    baseline: band.map(|b| b.0),
                    band: band.map(|b| b.1),
                    eta: None,
                });
            }
        }
        RuleTest::Rate {
            above,
            below,
            window,
        } => {
            for end in samples.len().saturating_sub(n)..samples.len() {
                let t_end = samples[end].0;
                let win: Vec<(i64, f64)> = samples[..=end]
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t > t_end - window.as_secs() as i64)
                    .collect();
                let Some(trend) = (win.len() >= 3).then(|| robust_trend(&win)).flatten() else {
                    points.push(Point {
                        breach: false,
                        explanation: "not enough samples in the window for a trend".into(),
                        baseline: None,
                        band: None,
                        eta: None,
                    });
                    continue;
                };
                let per_h = trend.slope_per_sec * 3600.0;
                let ci = slope_interval(&win, 0.9)
                    .map(|(l, h)| {
                        format!(
                            " (90% interval {} to {}/h)",
                            num(l * 3600.0),
                            num(h * 3600.0)
                        )
                    })
                    .unwrap_or_default();
                let fast = above.filter(|a| per_h > *a);
                let slow = below.filter(|b| per_h < *b);
                let explanation = match (fast, slow) {
                    (Some(a), _) => {
                        format!("changing by {}/h{ci}, faster than {}/h", num(per_h), num(a))
                    }
                    (_, Some(b)) => format!("changing by {}/h{ci}, below {}/h", num(per_h), num(b)),
                    _ => format!("changing by {}/h{ci}, within limits", num(per_h)),
                };
                points.push(Point {
                    breach: fast.is_some() || slow.is_some(),
                    explanation,
                    baseline: Some(trend.intercept_at_last),
                    band: None,
                    eta: None,
                });
            }
        }
        RuleTest::Exhaustion {
            limit,
            within,
            window,
        } => {
            threshold = Some(*limit);
            for end in samples.len().saturating_sub(n)..samples.len() {
                let (t_end, v_end) = samples[end];
                let win: Vec<(i64, f64)> = samples[..=end]
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t > t_end - window.as_secs() as i64)
                    .collect();
                let rising = *limit >= win.first().map_or(v_end, |p| p.1);
                let reached = if rising {
                    v_end >= *limit
                } else {
                    v_end <= *limit
                };
                let trend = (win.len() >= 4).then(|| robust_trend(&win)).flatten();
                let eta = if reached {
                    Some(0)
                } else {
                    trend.as_ref().and_then(|t| time_to_reach(t, *limit, t_end))
                };
                let breach = eta.is_some_and(|e| e <= within.as_secs() as i64);
                let explanation = match (eta, &trend) {
                    (Some(0), _) => format!("{} has reached the limit {}", num(v_end), num(*limit)),
                    (Some(e), Some(t)) => {
                        let when = DateTime::<Utc>::from_timestamp(t_end + e, 0)
                            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                            .unwrap_or_default();
                        let range = slope_interval(&win, 0.9)
                            .and_then(|(lo, hi)| {
                                let gap = *limit - t.intercept_at_last;
                                let eta_of =
                                    |s: f64| (s != 0.0 && gap / s > 0.0).then(|| (gap / s) as i64);
                                // The faster slope gives the earlier time.
                                let (fast, slow) = if gap > 0.0 { (hi, lo) } else { (lo, hi) };
                                let early = eta_of(fast)?;
                                Some(match eta_of(slow) {
                                    Some(late) => format!(
                                        " (90% interval {} to {})",
                                        human_secs(early),
                                        human_secs(late)
                                    ),
                                    None => {
                                        format!(" (90% interval {} to never)", human_secs(early))
                                    }
                                })
                            })
                            .unwrap_or_default();
                        format!(
                            "at {} and moving {}/h (Theil–Sen over {} samples), it reaches {} in {}{range}, at {when}",
                            num(v_end),
                            num(t.slope_per_sec * 3600.0),
                            win.len(),
                            num(*limit),
                            human_secs(e)
                        )
                    }
                    (_, Some(t)) => format!(
                        "at {} and moving {}/h: not heading for {}",
                        num(v_end),
                        num(t.slope_per_sec * 3600.0),
                        num(*limit)
                    ),
                    _ => "not enough samples in the window for a trend".into(),
                };
                points.push(Point {
                    breach,
                    explanation,
                    baseline: trend.map(|t| t.intercept_at_last),
                    band: None,
                    eta,
                });
            }
        }
        RuleTest::Anomaly { .. } => {
            // The reference: every sample replayed into a new detector. Runs keep the
            // detector's state instead (`detectors`), with the same result.
            let mut st = AnomalyState::new(n);
            st.feed(&samples);
            return anomaly_finding(check, series, rule, &st.meta);
        }
    }
    let last = points.last()?;
    let firing = points.len() >= n && points.iter().all(|p| p.breach);
    Some(Finding {
        check: check.into(),
        series: series.into(),
        rule: describe(rule),
        firing,
        breaching: last.breach,
        value,
        at,
        baseline: last.baseline,
        band: last.band,
        threshold,
        eta_secs: last.eta,
        explanation: last.explanation.clone(),
    })
}

/// What an anomaly rule keeps beside its detector, enough for its finding: the last
/// scores (as many as `for` looks at), the newest sample, and the range of values seen
/// (the band's domain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyMeta {
    pub keep: usize,
    pub scores: Vec<AnomalyScore>,
    /// Finite samples observed.
    pub seen: usize,
    pub last: (i64, f64),
    pub min: f64,
    pub max: f64,
}

/// An anomaly rule's detector and what its finding needs, fed sample by sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyState {
    pub det: AnomalyDetector,
    pub meta: AnomalyMeta,
}

impl AnomalyState {
    /// A new detector for a rule that looks at its last `keep` scores.
    pub fn new(keep: usize) -> Self {
        AnomalyState {
            det: AnomalyDetector::new(AnomalyConfig::default()),
            meta: AnomalyMeta {
                keep: keep.max(1),
                scores: Vec::new(),
                seen: 0,
                last: (0, 0.0),
                min: 0.0,
                max: 0.0,
            },
        }
    }

    /// Feeds samples (oldest first); non-finite values are skipped, as a replay does.
    pub fn feed(&mut self, samples: &[(i64, f64)]) {
        self.feed_with(samples, &mut NoPages)
    }

    /// [`Self::feed`] for a state decoded from the store, its pages from `src`.
    pub fn feed_with(&mut self, samples: &[(i64, f64)], src: &mut dyn PageSource) {
        let m = &mut self.meta;
        for &(t, v) in samples.iter().filter(|(_, v)| v.is_finite()) {
            let score = self.det.observe_with(t, v, src);
            if m.seen == 0 {
                (m.min, m.max) = (v, v);
            }
            m.min = m.min.min(v);
            m.max = m.max.max(v);
            m.seen += 1;
            m.last = (t, v);
            m.scores.push(score);
        }
        let extra = m.scores.len().saturating_sub(m.keep);
        m.scores.drain(..extra);
    }
}

/// The finding of an anomaly rule from its detector's last scores: it fires when the
/// last `for` scores reach `score`, and stays breaching while the value is outside the
/// detector's band. `None` before the first sample.
pub fn anomaly_finding(
    check: &str,
    series: &str,
    rule: &RuleConfig,
    meta: &AnomalyMeta,
) -> Option<Finding> {
    let RuleTest::Anomaly { score } = rule.test else {
        return None;
    };
    let last = meta.scores.last()?;
    let (at, value) = meta.last;
    let n = rule.for_runs as usize;
    let outside = value < last.band.0 || value > last.band.1;
    let points = &meta.scores[meta.scores.len().saturating_sub(n)..];
    let firing = points.len() >= n && points.iter().all(|s| s.score >= score);
    let (lo, hi) = domain_of(&rule.metric, meta.min, meta.max);
    Some(Finding {
        check: check.into(),
        series: series.into(),
        rule: describe(rule),
        firing,
        breaching: firing || (outside && meta.seen > AnomalyConfig::default().min_samples),
        value,
        at,
        baseline: Some(last.baseline),
        band: Some((last.band.0.clamp(lo, hi), last.band.1.clamp(lo, hi))),
        threshold: None,
        eta_secs: None,
        explanation: format!("anomaly score {:.2}: {}", last.score, last.reason),
    })
}

/// The incident title of a finding: the rule's `title` template, or a default.
pub fn title(rule: &RuleConfig, f: &Finding, labels: &BTreeMap<String, String>) -> String {
    let eta = f.eta_secs.map(human_secs).unwrap_or_default();
    let when = f
        .eta_secs
        .and_then(|e| DateTime::<Utc>::from_timestamp(f.at + e, 0))
        .map(|d| d.format("%H:%M").to_string())
        .unwrap_or_default();
    let limit = f.threshold.map(num).unwrap_or_default();
    let template = match (&rule.title, &rule.test) {
        (Some(t), _) => t.clone(),
        (None, RuleTest::Exhaustion { .. }) => {
            "{check}: {series} reaches {limit} in {eta} (by {at} UTC)".into()
        }
        (None, RuleTest::Anomaly { .. }) => "{check}: {series} is anomalous at {value}".into(),
        (None, RuleTest::Rate { .. }) => "{check}: {series} changes too fast".into(),
        (None, RuleTest::Threshold { .. }) => "{check}: {series} at {value}, {rule}".into(),
    };
    let mut out = template
        .replace("{check}", &f.check)
        .replace("{series}", &f.series)
        .replace("{value}", &num(f.value))
        .replace("{limit}", &limit)
        .replace("{eta}", &eta)
        .replace("{at}", &when)
        .replace("{rule}", &f.rule);
    for (k, v) in labels {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(test: RuleTest, for_runs: u32) -> RuleConfig {
        RuleConfig {
            metric: "m".into(),
            labels: BTreeMap::new(),
            test,
            for_runs,
            severity: "warning".into(),
            kind: "metric-threshold".into(),
            title: None,
        }
    }

    #[test]
    fn threshold_fires_after_for_runs_and_stays_while_breaching() {
        let r = rule(
            RuleTest::Threshold {
                above: Some(90.0),
                below: None,
            },
            3,
        );
        let s = |vals: &[f64]| -> Vec<(i64, f64)> {
            vals.iter()
                .enumerate()
                .map(|(i, v)| (i as i64 * 300, *v))
                .collect()
        };
        let f = evaluate("c", "m", &r, &s(&[50.0, 95.0, 95.0])).unwrap();
        assert!(!f.firing && f.breaching);
        let f = evaluate("c", "m", &r, &s(&[95.0, 95.0, 95.0])).unwrap();
        assert!(f.firing && f.explanation.contains("above the threshold 90"));
        let f = evaluate("c", "m", &r, &s(&[95.0, 95.0, 95.0, 80.0])).unwrap();
        assert!(!f.firing && !f.breaching);
    }

    #[test]
    fn exhaustion_projects_a_robust_trend() {
        let r = rule(
            RuleTest::Exhaustion {
                limit: 100.0,
                within: Duration::from_secs(86_400),
                window: Duration::from_secs(6 * 3600),
            },
            1,
        );
        // +1 per 10 minutes from 40, with one wild outlier: 100 is 6 h after 64.
        let mut s: Vec<(i64, f64)> = (0..25).map(|i| (i * 600, 40.0 + i as f64)).collect();
        s[10].1 = 99.0;
        let f = evaluate("disk", "used", &r, &s).unwrap();
        assert!(f.firing, "{f:?}");
        assert_eq!(f.eta_secs, Some(36 * 600));
        assert!(
            f.explanation.contains("reaches 100 in 6h"),
            "{}",
            f.explanation
        );
        assert!(f.explanation.contains("90% interval"), "{}", f.explanation);
    }

    #[test]
    fn rate_fires_on_a_fast_climb_only() {
        let r = rule(
            RuleTest::Rate {
                above: Some(10.0),
                below: None,
                window: Duration::from_secs(3600),
            },
            2,
        );
        // Flat for two hours, then +1 every 5 minutes (12/h) for the last hour.
        let s: Vec<(i64, f64)> = (0..37)
            .map(|i| (i * 300, if i < 24 { 5.0 } else { 5.0 + (i - 24) as f64 }))
            .collect();
        let f = evaluate("q", "depth", &r, &s).unwrap();
        assert!(f.firing, "{f:?}");
        assert!(
            f.explanation.contains("changing by 12/h"),
            "{}",
            f.explanation
        );
        let f = evaluate("q", "depth", &r, &s[..24]).unwrap();
        assert!(!f.firing && !f.breaching, "{f:?}");
    }

    #[test]
    fn slope_interval_brackets_the_slope() {
        let s: Vec<(i64, f64)> = (0..50)
            .map(|i| (i * 60, 2.0 * i as f64 + 3.0 * (i as f64 * 1.3).sin()))
            .collect();
        let (lo, hi) = slope_interval(&s, 0.9).unwrap();
        assert!(lo < 2.0 / 60.0 && hi > 2.0 / 60.0, "{lo} {hi}");
        assert!(hi - lo < 0.5 / 60.0, "{lo} {hi}");
    }

    #[test]
    fn formats() {
        assert_eq!(num(1500.0), "1500");
        assert_eq!(num(25_000.0), "25.0k");
        assert_eq!(num(0.25), "0.250");
        assert_eq!(num(0.000412), "4.12e-4");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1e200), "1.00e200");
        assert_eq!(num(-3.5e16), "-3.50e16");
        assert_eq!(human_secs(9 * 3600 + 120), "9h 2m");
        assert_eq!(human_secs(0), "now");
    }
}
