//! Read-only queries for `status`, `doctor` and the metrics textfile: recent runs with
//! their LLM cost, open incidents, each check's last script result, the budget left.

use super::Cached;
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use serde::Serialize;

use super::{Result, Store};

/// One run, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub started_at: String,
    pub duration_ms: u64,
    pub lines_read: u64,
    pub events_kept: u64,
    pub triggers: u64,
    pub llm_calls: u64,
    /// Cost in USD of the LLM calls made during the run.
    pub cost_usd: f64,
    /// The estimated prompt tokens those calls sent.
    pub prompt_tokens: u64,
    pub errors: u64,
    pub error_text: String,
}

/// An open incident, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OpenIncident {
    pub id: i64,
    pub severity: String,
    pub title: String,
    pub source: String,
    pub occurrences: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub file_path: Option<String>,
}

impl Store {
    /// The last `limit` runs, newest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        let mut stmt = self.conn.prepare(
            // A run's LLM calls are stamped with its time; runs never overlap (the lock),
            // so its calls are those from its start to the next run's.
            "SELECT r.id, r.started_at, r.duration_ms, r.lines_read, r.events_kept, r.triggers, r.llm_calls,
                    r.errors, r.error_text,
                    (SELECT coalesce(sum(c.cost_usd), 0) FROM llm_calls c
                      WHERE c.at >= r.started_at AND c.at < r.next_start),
                    (SELECT coalesce(sum(c.prompt_tokens), 0) FROM llm_calls c
                      WHERE c.at >= r.started_at AND c.at < r.next_start)
             FROM (SELECT r.*, coalesce((SELECT n.started_at FROM runs n WHERE n.id > r.id ORDER BY n.id LIMIT 1), '9999') AS next_start
                     FROM runs r ORDER BY r.id DESC LIMIT ?1) r
             ORDER BY r.id DESC",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(RunSummary {
                id: r.get(0)?,
                started_at: r.get(1)?,
                duration_ms: r.get::<_, i64>(2)? as u64,
                lines_read: r.get::<_, i64>(3)? as u64,
                events_kept: r.get::<_, i64>(4)? as u64,
                triggers: r.get::<_, i64>(5)? as u64,
                llm_calls: r.get::<_, i64>(6)? as u64,
                errors: r.get::<_, i64>(7)? as u64,
                error_text: r.get(8)?,
                cost_usd: r.get(9)?,
                prompt_tokens: r.get::<_, i64>(10)? as u64,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Incidents still open, newest first.
    pub fn open_incidents(&self) -> Result<Vec<OpenIncident>> {
        let mut open = self.incidents_where("status = 'open'", rusqlite::params![])?;
        open.reverse();
        Ok(open
            .into_iter()
            .map(|i| OpenIncident {
                id: i.id,
                severity: i.severity,
                title: i.title,
                source: i.source,
                occurrences: i.occurrences,
                first_seen: super::ts(i.first_seen),
                last_seen: super::ts(i.last_seen),
                file_path: i.file_path,
            })
            .collect())
    }

    /// The last result of a metric check: `ok at …`, or `failed at …: why`.
    pub fn check_result(&self, check: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT status, message, last_run FROM metric_checks WHERE name = ?1",
                [check],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?
            .map(|(status, message, at)| {
                if message.is_empty() {
                    format!("{status} at {at}")
                } else {
                    format!("{status} at {at}: {message}")
                }
            }))
    }

    /// Dollars left of today's LLM budget (the 24 hours before `now`).
    pub fn budget_left(&self, max_usd_per_day: f64, now: DateTime<Utc>) -> Result<f64> {
        let used = self.llm_usage(now)?.usd_day;
        Ok((max_usd_per_day - used).max(0.0))
    }
}
