//! Rules keep what they need between runs, so that a run's cost does not grow with the
//! history.
//!
//! - **anomaly**: the detector's state is stored per rule and series
//!   (`metric_detector_states`, with the last scores in `metric_detectors`). A run feeds it only the
//!   samples newer than its state; a run with no new sample does no detector work at
//!   all (the finding comes from the stored scores). Most of a full state's bytes are
//!   in pages (`metric_detector_pages`) that a sample seldom touches: a run loads the
//!   state's small part and the pages its samples touch, and writes back only those
//!   it changed, so its cost does not grow as the windows fill. A state that is
//!   missing, unreadable, short of a page, or made by other code or another `for` is
//!   rebuilt once by replaying the stored raw samples (at most
//!   [`MAX_RAW_PER_SERIES`](crate::store::MAX_RAW_PER_SERIES)). A sample stored later
//!   with a time before the state's newest (a script printing the past) is not fed.
//! - **threshold**, **rate**, **exhaustion**: their state is the recent window of
//!   samples itself; only that window is read (the last `for` samples, plus the
//!   rule's `window`, or the last 24 h for a threshold's band, whose domain — never
//!   below 0 for a series not seen negative — is judged on that window too).

use chrono::{DateTime, Utc};

use super::anomaly::pages::PageSource;
use super::anomaly::{state, state::CODE_HASH, AnomalyConfig};
use super::checks::{self, AnomalyMeta, AnomalyState, Finding};
use crate::config::{RuleConfig, RuleTest};
use crate::store::{Batch, SeriesRow, StoreError};

/// A stored state's pages, read from the run's batch. A store error is kept to be
/// returned once the detector is done (the detector itself only sees a missing page).
struct StoredPages<'a, 'b> {
    batch: &'a Batch<'b>,
    series: i64,
    rule: &'a str,
    error: Option<StoreError>,
}

impl PageSource for StoredPages<'_, '_> {
    fn load(&mut self, id: u64) -> Option<Vec<u8>> {
        match self.batch.detector_page(self.series, self.rule, id) {
            Ok(page) => page,
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }
}

/// What a stored state must have been made by: this build's detector, its settings,
/// and the number of scores the rule looks at.
fn state_hash(rule: &RuleConfig) -> String {
    let settings = format!("{:?}|for={}", AnomalyConfig::default(), rule.for_runs);
    format!(
        "{:016x}",
        super::anomaly::state::fnv(CODE_HASH, settings.as_bytes())
    )
}

/// The first sample time a threshold, rate or exhaustion rule needs: its last `for`
/// samples and, before the oldest of them, its window (a threshold's band: 24 h).
pub fn window_start(
    batch: &Batch,
    s: &SeriesRow,
    rule: &RuleConfig,
    now: i64,
) -> Result<i64, StoreError> {
    let nth = batch
        .nth_newest_sample(s.id, rule.for_runs, now)?
        .unwrap_or(i64::MIN);
    Ok(match &rule.test {
        RuleTest::Threshold { .. } => nth.min(s.last_ts.min(now) - 86_400 + 1),
        RuleTest::Rate { window, .. } | RuleTest::Exhaustion { window, .. } => {
            nth.saturating_sub(window.as_secs() as i64 - 1)
        }
        RuleTest::Anomaly { .. } => i64::MIN,
    })
}

/// An anomaly rule's finding on a series, its stored detector brought up to date with
/// the samples it has not seen. `oldest`: the oldest raw sample time kept (the
/// retention), where a rebuild starts.
pub fn anomaly(
    batch: &Batch,
    check: &str,
    rule_key: &str,
    rule: &RuleConfig,
    s: &SeriesRow,
    oldest: i64,
    now: DateTime<Utc>,
) -> Result<Option<Finding>, StoreError> {
    let hash = state_hash(rule);
    let t_now = now.timestamp();
    // A state that has seen samples stamped after `now` (a run while the clock ran
    // ahead) would take no sample of the present: it is built again from those up to now.
    let stored = batch
        .detector(s.id, rule_key)?
        .filter(|d| d.hash == hash && d.last_ts <= t_now);
    if let Some(d) = &stored {
        if d.last_ts >= s.last_ts.min(t_now) {
            // Nothing new: the stored scores say all there is to say.
            if let Ok(meta) = serde_json::from_str::<AnomalyMeta>(&d.meta) {
                return Ok(checks::anomaly_finding(check, &s.key, rule, &meta));
            }
        }
    }
    // A state whose samples went with the retention cannot be brought up to date.
    let resumed = match &stored {
        Some(d) => batch
            .with_detector_state(s.id, rule_key, state::decode::<AnomalyState>)?
            .flatten()
            .filter(|st| st.meta.seen > 0 && st.meta.last.0 <= d.last_ts)
            .filter(|st| st.meta.last.0 >= oldest),
        None => None,
    };
    let mut src = StoredPages {
        batch,
        series: s.id,
        rule: rule_key,
        error: None,
    };
    let resumed = match resumed {
        Some(mut st) => {
            let samples = batch.samples_between(s.id, st.meta.last.0.saturating_add(1), t_now)?;
            st.feed_with(&samples, &mut src);
            if let Some(e) = src.error {
                return Err(e);
            }
            (!st.det.broken()).then_some(st)
        }
        None => None,
    };
    let (mut st, rebuilt) = match resumed {
        Some(st) => (st, false),
        None => {
            let mut st = AnomalyState::new(rule.for_runs as usize);
            st.feed(&batch.samples_between(s.id, oldest, t_now)?);
            (st, true)
        }
    };
    if st.meta.seen == 0 {
        return Ok(None);
    }
    let meta = serde_json::to_string(&st.meta).expect("scores serialise");
    let blob = state::encode(&st);
    let pages = st.det.take_page_changes();
    batch.save_detector(
        s.id,
        rule_key,
        &hash,
        (st.meta.last.0, &meta),
        (&blob, &pages, rebuilt),
        now,
    )?;
    Ok(checks::anomaly_finding(check, &s.key, rule, &st.meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::anomaly::pages::PageChanges;
    use crate::store::Store;
    use std::collections::BTreeMap;

    fn rule(for_runs: u32) -> RuleConfig {
        RuleConfig {
            metric: "queue_depth".into(),
            labels: BTreeMap::new(),
            test: RuleTest::Anomaly { score: 0.5 },
            for_runs,
            severity: "warning".into(),
            kind: "anomaly".into(),
            title: None,
        }
    }

    /// A day-shaped noisy series with a level shift and a spike late in it.
    fn series(n: usize) -> Vec<(i64, f64)> {
        let mut x = 0x2545_f491_u64;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let t = 1_795_000_000 + 300 * i as i64;
                let day = ((t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin();
                let mut v = 40.0 + 15.0 * day + (x % 700) as f64 / 100.0;
                if i > n * 3 / 4 {
                    v += 12.0;
                }
                // An escalating spike: two scores in a row past 0.5.
                if i == n - 4 {
                    v = 140.0;
                }
                if i == n - 3 {
                    v = 300.0;
                }
                (t, v)
            })
            .collect()
    }

    /// Stores detector `k` of series `id` again with `state` and page changes
    /// `pages`, its scores kept: a state damaged behind logwarden's back.
    fn tamper(batch: &Batch, id: i64, state: &[u8], pages: &PageChanges, now: DateTime<Utc>) {
        let d = batch.detector(id, "k").unwrap().unwrap();
        batch
            .save_detector(
                id,
                "k",
                &d.hash,
                (d.last_ts, &d.meta),
                (state, pages, false),
                now,
            )
            .unwrap();
    }

    fn series_row(batch: &Batch, id: i64) -> SeriesRow {
        batch
            .series_of_check("host")
            .unwrap()
            .into_iter()
            .find(|s| s.id == id)
            .unwrap()
    }

    /// Runs that each store a few samples and update the stored detector reach exactly
    /// the finding of one replay of every sample, run after run.
    #[test]
    fn incremental_updates_equal_a_full_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let all = series(1200);
        let r = rule(2);
        let now = DateTime::<Utc>::from_timestamp(1_796_000_000, 0).unwrap();
        let mut fed = 0;
        let mut chunk = 1;
        let mut findings = 0;
        let mut runs = 0;
        while fed < all.len() {
            let batch = store.batch().unwrap();
            let id = batch
                .upsert_series("host", "queue_depth", "queue_depth", "{}", "")
                .unwrap();
            let to = (fed + chunk).min(all.len());
            for &(t, v) in &all[fed..to] {
                batch.insert_sample(id, t, v).unwrap();
            }
            fed = to;
            chunk = match fed {
                0..=900 => chunk % 7 + 41,
                // one sample a run at the end, where the spike is
                _ if fed + 30 > all.len() => 1,
                _ => chunk % 7 + 1,
            };
            let s = series_row(&batch, id);
            let got = anomaly(&batch, "host", "host:anomaly", &r, &s, 0, now).unwrap();
            findings += usize::from(got.as_ref().is_some_and(|f| f.firing));
            // A replay per run would make this test slow: one every few runs.
            if runs % 9 == 0 || fed == all.len() || fed + 10 > all.len() {
                let want = checks::evaluate("host", "queue_depth", &r, &all[..fed]);
                assert_eq!(got, want, "after {fed} samples");
            }
            runs += 1;
            batch.commit().unwrap();
        }
        assert!(findings > 0, "the spike fires");
    }

    /// With no new sample, the stored state is not even read: a damaged one goes
    /// unnoticed until there is something to feed it, then it is rebuilt. A state
    /// short of a page is rebuilt the same way.
    #[test]
    fn no_new_sample_means_no_detector_work_and_a_bad_state_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let all = series(400);
        let r = rule(1);
        let now = DateTime::<Utc>::from_timestamp(1_796_000_000, 0).unwrap();
        let batch = store.batch().unwrap();
        let id = batch
            .upsert_series("host", "queue_depth", "queue_depth", "{}", "")
            .unwrap();
        for &(t, v) in &all[..398] {
            batch.insert_sample(id, t, v).unwrap();
        }
        let s = series_row(&batch, id);
        let first = anomaly(&batch, "host", "k", &r, &s, 0, now).unwrap();
        tamper(&batch, id, b"garbage", &PageChanges::default(), now);
        let again = anomaly(&batch, "host", "k", &r, &s, 0, now).unwrap();
        assert_eq!(first, again);
        assert_eq!(
            batch.detector_state(id, "k").unwrap().unwrap(),
            b"garbage",
            "nothing new: the state was not touched"
        );
        batch.insert_sample(id, all[398].0, all[398].1).unwrap();
        let s = series_row(&batch, id);
        let got = anomaly(&batch, "host", "k", &r, &s, 0, now).unwrap();
        assert_eq!(
            got,
            checks::evaluate("host", "queue_depth", &r, &all[..399])
        );
        assert_ne!(batch.detector_state(id, "k").unwrap().unwrap(), b"garbage");
        // Its pages gone (a hand-edited or half-restored database): rebuilt from the
        // samples, never scored with empty windows.
        let pages = batch.detector_page_ids(id, "k").unwrap();
        assert!(pages.len() > 10, "{} pages", pages.len());
        let gone = PageChanges {
            put: Vec::new(),
            remove: pages.clone(),
        };
        let state = batch.detector_state(id, "k").unwrap().unwrap();
        tamper(&batch, id, &state, &gone, now);
        assert!(batch.detector_page_ids(id, "k").unwrap().is_empty());
        batch.insert_sample(id, all[399].0, all[399].1).unwrap();
        let s = series_row(&batch, id);
        let got = anomaly(&batch, "host", "k", &r, &s, 0, now).unwrap();
        assert_eq!(got, checks::evaluate("host", "queue_depth", &r, &all));
        assert!(batch.detector_page_ids(id, "k").unwrap().len() >= pages.len());
        // One more sample: the finding is still the replay's, and the state moved on.
        let more = series(402);
        batch.insert_sample(id, more[400].0, 37.5).unwrap();
        let s = series_row(&batch, id);
        let got = anomaly(&batch, "host", "k", &r, &s, 0, now).unwrap();
        let mut all = all.clone();
        all.push((more[400].0, 37.5));
        assert_eq!(got, checks::evaluate("host", "queue_depth", &r, &all));
        assert_eq!(
            batch.detector(id, "k").unwrap().unwrap().last_ts,
            more[400].0
        );
        // Another `for` is another state: rebuilt, not reused.
        assert_ne!(state_hash(&rule(1)), state_hash(&rule(3)));
    }
}
