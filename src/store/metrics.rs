//! The SQL of metrics: series, raw samples with hourly rollups, script runs,
//! retention, and the small part of the incident lifecycle metric checks need (update
//! an open metric incident, resolve it when the metric recovers).
//!
//! Reads used while checking go through the [`Batch`], so that a dry run sees its own
//! samples and then rolls everything back.

use super::Cached;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::metrics::anomaly::pages::PageChanges;

use super::{parse_ts, ts, Batch, Result, Store};

/// Raw samples kept per series at most, whatever the retention: bounds the database
/// when runs (or backfilling scripts) are very frequent.
pub const MAX_RAW_PER_SERIES: i64 = 20_000;

/// A stored series.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeriesRow {
    pub id: i64,
    pub check: String,
    pub key: String,
    pub name: String,
    /// Labels as a JSON object.
    pub labels: String,
    pub help: String,
    pub last_ts: i64,
    pub last_value: f64,
}

/// The last run of a check's script.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckRunRow {
    pub name: String,
    pub last_run: DateTime<Utc>,
    pub last_ok: Option<DateTime<Utc>>,
    /// Failed runs in a row (0 after a good one).
    pub failures: u32,
    /// `ok`, `warning` (worked, with bad lines) or `failed`.
    pub status: String,
    pub message: String,
    pub samples: u64,
    pub duration_ms: u64,
}

/// An hourly rollup.
#[derive(Debug, Clone, Copy)]
pub struct RollupRow {
    pub hour: i64,
    pub count: i64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// What a metric incident was opened on (check, series, and the evidence as JSON).
#[derive(Debug, Clone)]
pub struct MetricAlertRow {
    pub incident_id: i64,
    pub check: String,
    pub series_key: String,
    pub evidence: String,
}

fn series(conn: &Connection, cond: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<SeriesRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT id, check_name, key, name, labels, help, last_ts, last_value FROM metric_series
         WHERE {cond} ORDER BY check_name, key"
    ))?;
    let rows = stmt.query_map(args, |r| {
        Ok(SeriesRow {
            id: r.get(0)?,
            check: r.get(1)?,
            key: r.get(2)?,
            name: r.get(3)?,
            labels: r.get(4)?,
            help: r.get(5)?,
            last_ts: r.get(6)?,
            last_value: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn samples(conn: &Connection, series: i64, since: i64, until: i64) -> Result<Vec<(i64, f64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ts, value FROM metric_samples WHERE series = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
    )?;
    let rows = stmt.query_map(params![series, since, until], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn check_runs(
    conn: &Connection,
    cond: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<CheckRunRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name, last_run, last_ok, failures, status, message, samples, duration_ms
         FROM metric_checks WHERE {cond} ORDER BY name"
    ))?;
    let rows = stmt.query_map(args, |r| {
        Ok(CheckRunRow {
            name: r.get(0)?,
            last_run: parse_ts(&r.get::<_, String>(1)?),
            last_ok: r.get::<_, Option<String>>(2)?.map(|s| parse_ts(&s)),
            failures: r.get::<_, i64>(3)? as u32,
            status: r.get(4)?,
            message: r.get(5)?,
            samples: r.get::<_, i64>(6)? as u64,
            duration_ms: r.get::<_, i64>(7)? as u64,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

impl Store {
    pub fn metric_series(&self) -> Result<Vec<SeriesRow>> {
        series(&self.conn, "1 = 1", params![])
    }

    /// A series' newest sample stamped at or before `until`: its time and value.
    pub fn newest_sample(&self, series: i64, until: i64) -> Result<Option<(i64, f64)>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT ts, value FROM metric_samples WHERE series = ?1 AND ts <= ?2
                 ORDER BY ts DESC LIMIT 1",
                params![series, until],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Raw samples of a series from `since` (unix seconds), oldest first.
    pub fn metric_samples(&self, series_id: i64, since: i64) -> Result<Vec<(i64, f64)>> {
        samples(&self.conn, series_id, since, i64::MAX)
    }

    /// The time of a series' oldest raw sample kept (a look into the primary key,
    /// whatever the history's length).
    pub fn metric_first_sample(&self, series_id: i64) -> Result<Option<i64>> {
        Ok(self.conn.query_row_cached(
            "SELECT min(ts) FROM metric_samples WHERE series = ?1",
            [series_id],
            |r| r.get(0),
        )?)
    }

    /// Whether a series has more than `n` raw samples from `since`: it reads at most
    /// `n + 1` of them.
    pub fn metric_samples_exceed(&self, series_id: i64, since: i64, n: usize) -> Result<bool> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT 1 FROM metric_samples WHERE series = ?1 AND ts >= ?2 ORDER BY ts LIMIT 1 OFFSET ?3",
                params![series_id, since, n as i64],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Hourly rollups of a series from `since` (unix seconds), oldest first.
    pub fn metric_rollups(&self, series_id: i64, since: i64) -> Result<Vec<RollupRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT hour, count, sum, min, max FROM metric_rollups WHERE series = ?1 AND hour >= ?2
             ORDER BY hour",
        )?;
        let rows = stmt.query_map(params![series_id, since], |r| {
            let count: i64 = r.get(1)?;
            let sum: f64 = r.get(2)?;
            Ok(RollupRow {
                hour: r.get(0)?,
                count,
                mean: sum / count.max(1) as f64,
                min: r.get(3)?,
                max: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn metric_check_runs(&self) -> Result<Vec<CheckRunRow>> {
        check_runs(&self.conn, "1 = 1", params![])
    }

    pub fn metric_alert(&self, incident_id: i64) -> Result<Option<MetricAlertRow>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT incident_id, check_name, series_key, evidence FROM metric_alerts WHERE incident_id = ?1",
                [incident_id],
                |r| {
                    Ok(MetricAlertRow {
                        incident_id: r.get(0)?,
                        check: r.get(1)?,
                        series_key: r.get(2)?,
                        evidence: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }
}

/// A rule's stored detector state on one series, without the state itself.
#[derive(Debug, Clone)]
pub struct DetectorRow {
    pub hash: String,
    /// The newest sample the state has seen.
    pub last_ts: i64,
    pub meta: String,
}

impl Batch<'_> {
    /// The stored detector of a rule on a series (its state is read apart, only when
    /// there are samples to feed it).
    pub fn detector(&self, series: i64, rule: &str) -> Result<Option<DetectorRow>> {
        Ok(self
            .tx
            .query_row_cached(
                "SELECT hash, last_ts, meta FROM metric_detectors WHERE series = ?1 AND rule = ?2",
                params![series, rule],
                |r| {
                    Ok(DetectorRow {
                        hash: r.get(0)?,
                        last_ts: r.get(1)?,
                        meta: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn detector_state(&self, series: i64, rule: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tx
            .query_row_cached(
                "SELECT state FROM metric_detector_states WHERE series = ?1 AND rule = ?2",
                params![series, rule],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A stored detector state handed to `read` where SQLite holds it, without a copy
    /// of its megabytes.
    pub fn with_detector_state<T>(
        &self,
        series: i64,
        rule: &str,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>> {
        Ok(self
            .tx
            .query_row_cached(
                "SELECT state FROM metric_detector_states WHERE series = ?1 AND rule = ?2",
                params![series, rule],
                |r| Ok(r.get_ref(0)?.as_blob().map(read).ok()),
            )
            .optional()?
            .flatten())
    }

    /// Page `page` of a stored detector state (see `metrics::anomaly::pages`).
    pub fn detector_page(&self, series: i64, rule: &str, page: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tx
            .query_row_cached(
                "SELECT data FROM metric_detector_pages WHERE series = ?1 AND rule = ?2 AND page = ?3",
                params![series, rule, page as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The ids of a stored detector state's pages.
    pub fn detector_page_ids(&self, series: i64, rule: &str) -> Result<Vec<u64>> {
        let mut st = self.tx.prepare_cached(
            "SELECT page FROM metric_detector_pages WHERE series = ?1 AND rule = ?2 ORDER BY page",
        )?;
        let ids = st
            .query_map(params![series, rule], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids.into_iter().map(|id| id as u64).collect())
    }

    /// Stores a rule's detector on a series: `scores` (the newest sample's time and the
    /// scores' JSON), `state` (its blob, the pages it changed, and whether it was made
    /// anew, in which case its pages replace all stored ones).
    pub fn save_detector(
        &self,
        series: i64,
        rule: &str,
        hash: &str,
        (last_ts, meta): (i64, &str),
        (state, pages, whole): (&[u8], &PageChanges, bool),
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO metric_detectors (series, rule, hash, last_ts, meta, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (series, rule) DO UPDATE SET hash = excluded.hash, last_ts = excluded.last_ts,
                 meta = excluded.meta, updated_at = excluded.updated_at",
            params![series, rule, hash, last_ts, meta, ts(now)],
        )?;
        self.tx.execute_cached(
            "INSERT INTO metric_detector_states (series, rule, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (series, rule) DO UPDATE SET state = excluded.state",
            params![series, rule, state],
        )?;
        if whole {
            self.tx.execute_cached(
                "DELETE FROM metric_detector_pages WHERE series = ?1 AND rule = ?2",
                params![series, rule],
            )?;
        }
        for id in &pages.remove {
            self.tx.execute_cached(
                "DELETE FROM metric_detector_pages WHERE series = ?1 AND rule = ?2 AND page = ?3",
                params![series, rule, *id as i64],
            )?;
        }
        for (id, data) in &pages.put {
            self.tx.execute_cached(
                "INSERT INTO metric_detector_pages (series, rule, page, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (series, rule, page) DO UPDATE SET data = excluded.data",
                params![series, rule, *id as i64, data],
            )?;
        }
        Ok(())
    }

    /// When the run before `run_id` started.
    pub fn run_started_before(&self, run_id: i64) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .tx
            .query_row_cached(
                "SELECT started_at FROM runs WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                [run_id],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(|s| parse_ts(&s)))
    }

    /// The time of a series' `n`th newest sample stamped at or before `until`.
    pub fn nth_newest_sample(&self, series: i64, n: u32, until: i64) -> Result<Option<i64>> {
        Ok(self
            .tx
            .query_row_cached(
                "SELECT ts FROM metric_samples WHERE series = ?1 AND ts <= ?3
                 ORDER BY ts DESC LIMIT 1 OFFSET ?2",
                params![series, n.max(1) as i64 - 1, until],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records how a check's script ran; `failures` counts failed runs in a row.
    #[allow(clippy::too_many_arguments)]
    pub fn record_check_run(
        &self,
        name: &str,
        now: DateTime<Utc>,
        failed: bool,
        status: &str,
        message: &str,
        samples: u64,
        duration_ms: u64,
    ) -> Result<u32> {
        self.tx.execute_cached(
            "INSERT INTO metric_checks (name, last_run, last_ok, failures, status, message, samples, duration_ms)
             VALUES (?1, ?2, CASE WHEN ?3 THEN NULL ELSE ?2 END, CASE WHEN ?3 THEN 1 ELSE 0 END, ?4, ?5, ?6, ?7)
             ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run,
                 last_ok = CASE WHEN ?3 THEN last_ok ELSE excluded.last_run END,
                 failures = CASE WHEN ?3 THEN failures + 1 ELSE 0 END,
                 status = excluded.status, message = excluded.message, samples = excluded.samples,
                 duration_ms = excluded.duration_ms",
            params![name, ts(now), failed, status, message, samples as i64, duration_ms as i64],
        )?;
        Ok(self.tx.query_row_cached(
            "SELECT failures FROM metric_checks WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )? as u32)
    }

    /// The series' id, created if new; its help text is updated when given.
    pub fn upsert_series(
        &self,
        check: &str,
        key: &str,
        name: &str,
        labels_json: &str,
        help: &str,
    ) -> Result<i64> {
        self.tx.execute_cached(
            "INSERT INTO metric_series (check_name, key, name, labels, help, last_ts, last_value)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, 0)
             ON CONFLICT (check_name, key) DO UPDATE SET
                 help = CASE WHEN excluded.help != '' THEN excluded.help ELSE help END",
            params![check, key, name, labels_json, help],
        )?;
        Ok(self.tx.query_row_cached(
            "SELECT id FROM metric_series WHERE check_name = ?1 AND key = ?2",
            params![check, key],
            |r| r.get(0),
        )?)
    }

    /// Stores a sample and folds it into its hourly rollup. A sample already stored (same
    /// series and second) is ignored, so a script that re-prints history is harmless.
    pub fn insert_sample(&self, series: i64, at: i64, value: f64) -> Result<bool> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO metric_samples (series, ts, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![series, at, value])?;
        if n == 0 {
            return Ok(false);
        }
        self.tx
            .prepare_cached(
                "INSERT INTO metric_rollups (series, hour, count, sum, min, max) VALUES (?1, ?2, 1, ?3, ?3, ?3)
                 ON CONFLICT (series, hour) DO UPDATE SET count = count + 1, sum = sum + excluded.sum,
                     min = min(min, excluded.min), max = max(max, excluded.max)",
            )?
            .execute(params![series, at.div_euclid(3600) * 3600, value])?;
        self.tx
            .prepare_cached(
                "UPDATE metric_series SET last_ts = ?2, last_value = ?3 WHERE id = ?1 AND last_ts <= ?2",
            )?
            .execute(params![series, at, value])?;
        Ok(true)
    }

    pub fn series_of_check(&self, check: &str) -> Result<Vec<SeriesRow>> {
        series(&self.tx, "check_name = ?1", params![check])
    }

    /// A series' samples stamped from `since` to `until` (a run's `now`: samples stamped
    /// later were made while the clock ran ahead, or printed so by a script, and must not
    /// stand for the present).
    pub fn samples_between(
        &self,
        series_id: i64,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, f64)>> {
        samples(&self.tx, series_id, since, until)
    }

    /// Retention, once an hour of `now`: raw samples older than `raw_before` and beyond
    /// [`MAX_RAW_PER_SERIES`] per series, detectors whose newest sample is older than
    /// `raw_before` (a rule since removed, or a series silent that long: such a state
    /// could not be brought up to date, only rebuilt), rollups older than
    /// `rollup_before`, series (with their data) not seen since `rollup_before`, script
    /// records of checks not run since then. Returns the raw samples deleted.
    pub fn prune_metrics(
        &self,
        raw_before: i64,
        rollup_before: i64,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        // Counting every series' samples reads them all, and the rollups have no index
        // by hour: once an hour is enough for bounds on the database's size, and keeps
        // the other runs' cost flat. So is the retention of raw samples: deleting the
        // minute that just aged out of every series rewrote a page per series on every
        // run, even one with nothing new (readers bound their windows by time anyway).
        let hour = now.timestamp().div_euclid(3600).to_string();
        let capped: Option<String> = self
            .tx
            .query_row_cached(
                "SELECT value FROM kv WHERE key = 'metrics.capped_hour'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if capped.as_deref() == Some(hour.as_str()) {
            return Ok(0);
        }
        let mut n = self
            .tx
            .execute_cached("DELETE FROM metric_samples WHERE ts < ?1", [raw_before])?;
        for table in ["metric_detector_pages", "metric_detector_states"] {
            self.tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE (series, rule) IN
                         (SELECT series, rule FROM metric_detectors WHERE last_ts < ?1)"
                ),
                [raw_before],
            )?;
        }
        self.tx.execute(
            "DELETE FROM metric_detectors WHERE last_ts < ?1",
            [raw_before],
        )?;
        self.tx.execute_cached(
            "INSERT INTO kv (key, value) VALUES ('metrics.capped_hour', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [&hour],
        )?;
        let crowded: Vec<i64> = {
            let mut stmt = self.tx.prepare(
                "SELECT series FROM metric_samples GROUP BY series HAVING count(*) > ?1",
            )?;
            let rows = stmt.query_map([MAX_RAW_PER_SERIES], |r| r.get(0))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        for s in crowded {
            n += self.tx.execute_cached(
                "DELETE FROM metric_samples WHERE series = ?1 AND ts <= (
                     SELECT ts FROM metric_samples WHERE series = ?1 ORDER BY ts DESC LIMIT 1 OFFSET ?2)",
                params![s, MAX_RAW_PER_SERIES],
            )?;
        }
        n += self.prune_series_and_rollups(rollup_before, now)?;
        Ok(n as u64)
    }

    fn prune_series_and_rollups(&self, rollup_before: i64, now: DateTime<Utc>) -> Result<usize> {
        self.tx.execute_cached(
            "DELETE FROM metric_rollups WHERE hour < ?1",
            [rollup_before],
        )?;
        self.tx.execute_cached(
            "DELETE FROM metric_series WHERE last_ts < ?1",
            [rollup_before],
        )?;
        let cutoff = DateTime::<Utc>::from_timestamp(rollup_before, 0).unwrap_or(now);
        self.tx.execute_cached(
            "DELETE FROM metric_checks WHERE last_run < ?1",
            [ts(cutoff)],
        )?;
        Ok(0)
    }

    /// The open (or acked) incident of a signature: its id.
    pub fn open_metric_incident(&self, signature: &str) -> Result<Option<i64>> {
        Ok(self
            .tx
            .query_row_cached(
                "SELECT id FROM incidents WHERE signature = ?1 AND status != 'resolved' ORDER BY id DESC LIMIT 1",
                [signature],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A breach goes on: one more occurrence, the latest explanation as its sample.
    /// One more breaching run of an open metric incident. Its title follows the latest
    /// value (`disk / full in 3h`, then `in 1h`) unless an investigator gave it one.
    pub fn update_metric_incident(
        &self,
        id: i64,
        samples: &[String],
        title: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE incidents SET occurrences = occurrences + 1, last_seen = ?2, updated_at = ?2, samples = ?3,
                title = CASE
                    WHEN diagnosis IS NOT NULL AND json_valid(diagnosis)
                         AND json_extract(diagnosis, '$.diagnosed') = 1
                         AND coalesce(json_extract(diagnosis, '$.title'), '') != '' THEN title
                    ELSE ?4 END
             WHERE id = ?1",
            params![
                id,
                ts(now),
                serde_json::to_string(samples).expect("strings serialise"),
                title
            ],
        )?;
        Ok(())
    }

    /// The metric recovered: the incident is resolved (kept minimal; the general
    /// ack/resolve lifecycle lives with the incidents).
    pub fn resolve_metric_incident(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE incidents SET status = 'resolved', updated_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    pub fn save_metric_alert(
        &self,
        incident_id: i64,
        check: &str,
        series_key: &str,
        evidence: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO metric_alerts (incident_id, check_name, series_key, evidence, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (incident_id) DO UPDATE SET evidence = excluded.evidence, updated_at = excluded.updated_at",
            params![incident_id, check, series_key, evidence, ts(now)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Raw samples past the retention go once an hour, not on every run: a run with
    /// nothing new writes nothing for them.
    #[test]
    fn raw_samples_age_out_once_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let at = |t: i64| DateTime::<Utc>::from_timestamp(t, 0).unwrap();
        let t0 = 1_795_392_000; // on the hour
        let batch = store.batch().unwrap();
        let id = batch.upsert_series("host", "x", "x", "{}", "").unwrap();
        for k in 0..10 {
            batch
                .insert_sample(id, t0 - 600 + 60 * k, k as f64)
                .unwrap();
        }
        let kept = |b: &Batch| b.samples_between(id, i64::MIN, i64::MAX).unwrap().len();
        // The first run of the hour applies the retention…
        assert_eq!(batch.prune_metrics(t0 - 300, 0, at(t0)).unwrap(), 5);
        assert_eq!(kept(&batch), 5);
        // …the later ones of the same hour leave the samples that aged out since…
        assert_eq!(batch.prune_metrics(t0 - 120, 0, at(t0 + 180)).unwrap(), 0);
        assert_eq!(kept(&batch), 5);
        // …until the next hour.
        assert_eq!(batch.prune_metrics(t0 - 120, 0, at(t0 + 3600)).unwrap(), 3);
        assert_eq!(kept(&batch), 2);
        batch.commit().unwrap();
    }

    #[test]
    fn the_oldest_sample_and_a_count_past_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let batch = store.batch().unwrap();
        let a = batch.upsert_series("host", "a", "a", "{}", "").unwrap();
        let b = batch.upsert_series("host", "b", "b", "{}", "").unwrap();
        let c = batch.upsert_series("host", "c", "c", "{}", "").unwrap();
        for k in 0..10 {
            batch.insert_sample(a, 1000 + 60 * k, k as f64).unwrap();
        }
        batch.insert_sample(b, 5, 1.0).unwrap();
        batch.commit().unwrap();
        assert_eq!(store.metric_first_sample(a).unwrap(), Some(1000));
        assert_eq!(store.metric_first_sample(b).unwrap(), Some(5));
        assert_eq!(store.metric_first_sample(c).unwrap(), None);
        // 10 samples of `a` from 1000, 5 from 1300.
        assert!(store.metric_samples_exceed(a, 1000, 9).unwrap());
        assert!(!store.metric_samples_exceed(a, 1000, 10).unwrap());
        assert!(store.metric_samples_exceed(a, 1300, 4).unwrap());
        assert!(!store.metric_samples_exceed(a, 1300, 5).unwrap());
        assert!(!store.metric_samples_exceed(b, 1000, 0).unwrap());
        assert!(store.metric_samples_exceed(b, 0, 0).unwrap());
    }

    /// A detector whose newest sample went with the retention (its rule removed, or its
    /// series silent) goes with its state and pages; a current one stays whole.
    #[test]
    fn detectors_past_the_retention_go_with_their_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let at = |t: i64| DateTime::<Utc>::from_timestamp(t, 0).unwrap();
        let t0 = 1_795_392_000;
        let batch = store.batch().unwrap();
        let id = batch.upsert_series("host", "x", "x", "{}", "").unwrap();
        let pages = PageChanges {
            put: vec![(1, vec![1; 8]), (2, vec![2; 8])],
            remove: Vec::new(),
        };
        for (rule, last) in [("gone", t0 - 7200), ("live", t0 - 60)] {
            batch
                .save_detector(
                    id,
                    rule,
                    "h",
                    (last, "{}"),
                    (b"state", &pages, true),
                    at(t0),
                )
                .unwrap();
        }
        batch.prune_metrics(t0 - 3600, 0, at(t0)).unwrap();
        assert!(batch.detector(id, "gone").unwrap().is_none());
        assert!(batch.detector_state(id, "gone").unwrap().is_none());
        assert!(batch.detector_page_ids(id, "gone").unwrap().is_empty());
        assert!(batch.detector(id, "live").unwrap().is_some());
        assert_eq!(batch.detector_state(id, "live").unwrap().unwrap(), b"state");
        assert_eq!(batch.detector_page_ids(id, "live").unwrap(), vec![1, 2]);
        batch.commit().unwrap();
    }
}
