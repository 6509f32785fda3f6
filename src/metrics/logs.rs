//! Log rates as metric series: each run records how fast each source logs at each
//! level, and how fast each signature with an open incident recurs, as samples of
//! ordinary series, so that the checks' rules (threshold, `rate_above`, anomaly, time
//! to exhaustion) apply to them and their incidents get charts.
//!
//! - `log_records{level="ERROR",source="api"}`: records of a source at a level (those
//!   kept: at or above its `min_level`, not matched by an ignore rule);
//! - `log_signature_records{signature="…",source="api"}`: records of one signature
//!   while its incident is open.
//!
//! A sample's value is **records per minute** since the series' previous sample, at the
//! run's `now`. A source that read nothing this run writes nothing: its next sample
//! covers the quiet time (3 records after an hour of silence are 0.05/min), so an idle
//! run adds no rows and does no detector work. A source that read lines writes a 0 for
//! each of its known series that saw no record (bounded to series that exist: levels
//! seen before, signatures whose incident is still open). The very first run writes
//! nothing (there is no interval yet). The series belong to the pseudo-check
//! [`LOG_SERIES_CHECK`] and share the script series' retention and rollups;
//! a `[[check]]` with `logs = true` puts rules on them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::exposition::series_key;
use crate::store::{Batch, StoreError};

/// The check name the log-rate series are stored under: not a valid `[[check]]` name,
/// so no script's series can mix with them.
pub const LOG_SERIES_CHECK: &str = "@logs";

pub const LEVEL_SERIES: &str = "log_records";
pub const SIGNATURE_SERIES: &str = "log_signature_records";

/// What one run read, counted for the rates.
#[derive(Debug, Default)]
pub struct LogCounts {
    /// Sources that read at least one line.
    pub active: BTreeSet<String>,
    /// (source, level) → records kept.
    pub levels: BTreeMap<(String, String), u64>,
    /// (source, signature) → records, for signatures with an open incident.
    pub signatures: BTreeMap<(String, String), u64>,
}

/// Writes this run's rate samples. `since`: when the previous run started (`None` on
/// the first run: nothing is written). `max_series` bounds the number of signature
/// series; the level series (a few per source) are always made. Returns the ids of the
/// series written, and how many new series were not made because of that bound.
pub fn record(
    batch: &Batch,
    counts: &LogCounts,
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    max_series: usize,
) -> Result<(Vec<i64>, usize), StoreError> {
    let Some(since) = since else {
        return Ok((Vec::new(), 0));
    };
    if counts.active.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let known = batch.series_of_check(LOG_SERIES_CHECK)?;
    let mut want: BTreeMap<String, (String, BTreeMap<String, String>, u64)> = BTreeMap::new();
    let mut add = |name: &str, labels: BTreeMap<String, String>, n: u64| {
        let key = series_key(name, &labels);
        want.entry(key)
            .or_insert_with(|| (name.to_string(), labels, 0))
            .2 += n;
    };
    for ((source, level), n) in &counts.levels {
        add(
            LEVEL_SERIES,
            labels(&[("level", level), ("source", source)]),
            *n,
        );
    }
    for ((source, sig), n) in &counts.signatures {
        add(
            SIGNATURE_SERIES,
            labels(&[("signature", sig), ("source", source)]),
            *n,
        );
    }
    // Zeros: the known series of the sources that read something.
    for s in &known {
        let l: BTreeMap<String, String> = serde_json::from_str(&s.labels).unwrap_or_default();
        if !l
            .get("source")
            .is_some_and(|src| counts.active.contains(src))
        {
            continue;
        }
        if s.name == SIGNATURE_SERIES {
            let open = match l.get("signature") {
                Some(sig) => batch.open_metric_incident(sig)?.is_some(),
                None => false,
            };
            if !open {
                continue;
            }
        } else if s.name != LEVEL_SERIES {
            continue;
        }
        add(&s.name, l, 0);
    }
    let last: BTreeMap<&str, i64> = known.iter().map(|s| (s.key.as_str(), s.last_ts)).collect();
    let t = now.timestamp();
    let mut written = Vec::new();
    let mut count = known.len();
    let mut dropped = 0;
    for (key, (name, l, n)) in want {
        let from = match last.get(key.as_str()) {
            Some(&ts) => ts,
            // The level series are bounded by the sources and their level names, and
            // are what rules watch: the bound is on the per-signature ones, which
            // strangers' messages can multiply.
            None if count >= max_series && name != LEVEL_SERIES => {
                dropped += 1;
                continue;
            }
            None => {
                count += 1;
                since.timestamp()
            }
        };
        // A clock that went back, or two runs in one second: a minute at least.
        let minutes = ((t - from) as f64 / 60.0).max(1.0);
        let labels_json = serde_json::to_string(&l).expect("labels serialise");
        let help = if name == LEVEL_SERIES {
            "log records per minute at this level since the previous sample"
        } else {
            "log records of this signature per minute since the previous sample"
        };
        let id = batch.upsert_series(LOG_SERIES_CHECK, &key, &name, &labels_json, help)?;
        if batch.insert_sample(id, t, n as f64 / minutes)? {
            written.push(id);
        }
    }
    Ok((written, dropped))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
