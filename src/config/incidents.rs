//! Validation of `[incidents]`: how long a quiet incident stays open, who gets nagged
//! how often until they acknowledge, what counts as a spike, and when the weekly
//! briefing is written.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Weekday;
use serde::Deserialize;

use super::Validator;

/// The serde mirror of `[incidents]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawIncidents {
    pub resolve_after: Option<String>,
    #[serde(default)]
    pub nag: BTreeMap<String, String>,
    pub spike_factor: Option<f64>,
    pub spike_min: Option<i64>,
    pub briefing: Option<String>,
    pub briefing_days: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

impl RawIncidents {
    pub const KEYS: &'static [&'static str] = &[
        "resolve_after",
        "nag",
        "spike_factor",
        "spike_min",
        "briefing",
        "briefing_days",
    ];
}

/// When the briefing is due each week (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekly {
    pub day: Weekday,
    pub hour: u32,
    pub minute: u32,
}

/// `[incidents]`, validated.
#[derive(Debug, Clone)]
pub struct IncidentsConfig {
    /// An incident with no occurrence for this long is resolved.
    pub resolve_after: Duration,
    /// Re-notify unacknowledged incidents of these severities this often.
    pub nag: BTreeMap<String, Duration>,
    /// An open incident spikes when a run sees this many times its usual count…
    pub spike_factor: f64,
    /// …and at least this many occurrences.
    pub spike_min: u64,
    pub briefing: Option<Weekly>,
    pub briefing_days: u32,
}

impl std::fmt::Display for IncidentsConfig {
    /// The effective `[incidents]` table.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = crate::duration::format;
        writeln!(f, "\n[incidents]")?;
        writeln!(f, "resolve_after = {:?}", d(self.resolve_after))?;
        let nag: Vec<String> = self
            .nag
            .iter()
            .map(|(k, v)| format!("{k} = {:?}", d(*v)))
            .collect();
        writeln!(f, "nag = {{ {} }}", nag.join(", "))?;
        writeln!(f, "spike_factor = {:?}", self.spike_factor)?;
        writeln!(f, "spike_min = {}", self.spike_min)?;
        match self.briefing {
            Some(w) => writeln!(
                f,
                "briefing = \"{} {:02}:{:02}\"",
                w.day.to_string().to_ascii_lowercase(),
                w.hour,
                w.minute
            )?,
            None => writeln!(f, "# briefing: none (no weekly briefing)")?,
        }
        writeln!(f, "briefing_days = {}", self.briefing_days)
    }
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            resolve_after: Duration::from_secs(24 * 3600),
            nag: [("critical".to_string(), Duration::from_secs(600))]
                .into_iter()
                .collect(),
            spike_factor: 10.0,
            spike_min: 20,
            briefing: None,
            briefing_days: 7,
        }
    }
}

/// Parses `mon 09:00` (UTC).
pub fn parse_weekly(text: &str) -> Result<Weekly, String> {
    let bad = || format!("`{text}` is not a weekly time like \"mon 09:00\" (UTC)");
    let (day, time) = text.trim().split_once(' ').ok_or_else(bad)?;
    let day: Weekday = day.parse().map_err(|_| bad())?;
    let (h, m) = time.trim().split_once(':').ok_or_else(bad)?;
    let hour: u32 = h.parse().map_err(|_| bad())?;
    let minute: u32 = m.parse().map_err(|_| bad())?;
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok(Weekly { day, hour, minute })
}

impl Validator {
    pub(super) fn incidents(&mut self, raw: Option<RawIncidents>) -> IncidentsConfig {
        let mut c = IncidentsConfig::default();
        let Some(raw) = raw else { return c };
        self.unknown("incidents", &raw.extra, RawIncidents::KEYS);
        c.resolve_after = self.duration(
            "incidents.resolve_after",
            raw.resolve_after.as_deref(),
            c.resolve_after,
        );
        if !raw.nag.is_empty() {
            c.nag.clear();
            for (sev, every) in &raw.nag {
                let key = format!("incidents.nag.{sev}");
                if !["critical", "warning", "info"].contains(&sev.as_str()) {
                    self.err(key, "not a severity (expected critical, warning or info)");
                    continue;
                }
                if every == "off" {
                    continue;
                }
                let d = self.duration(&key, Some(every), Duration::from_secs(600));
                if d < Duration::from_secs(60) {
                    self.err(key, "at least 1m between nags");
                }
                c.nag.insert(sev.clone(), d);
            }
        }
        match raw.spike_factor {
            Some(f) if f >= 1.0 && f.is_finite() => c.spike_factor = f,
            Some(f) => self.err(
                "incidents.spike_factor",
                format!("{f} is not a factor of 1 or more"),
            ),
            None => {}
        }
        match raw.spike_min {
            Some(n) if n >= 1 => c.spike_min = n as u64,
            Some(n) => self.err(
                "incidents.spike_min",
                format!("{n} is not a positive count"),
            ),
            None => {}
        }
        if let Some(b) = &raw.briefing {
            match parse_weekly(b) {
                Ok(w) => c.briefing = Some(w),
                Err(e) => self.err("incidents.briefing", e),
            }
        }
        match raw.briefing_days {
            Some(d) if (1..=90).contains(&d) => c.briefing_days = d as u32,
            Some(d) => self.err(
                "incidents.briefing_days",
                format!("{d} is out of range (1 to 90)"),
            ),
            None => {}
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_times() {
        assert_eq!(
            parse_weekly("mon 09:00").unwrap(),
            Weekly {
                day: Weekday::Mon,
                hour: 9,
                minute: 0
            }
        );
        assert!(parse_weekly("monday 25:00").is_err());
        assert!(parse_weekly("soon").is_err());
    }
}
