//! The investigator's tables: every LLM call (budgets and the breaker count them)
//! and every verdict (the memory that stops re-asking about known noise), plus the
//! read-only event search the investigator's tools use.

use super::Cached;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{parse_ts, ts, Result, Store};

/// LLM spending over the last hour and the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmUsage {
    pub calls_hour: u32,
    pub calls_day: u32,
    pub usd_day: f64,
}

/// One stored verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerdictRow {
    pub incident_id: Option<i64>,
    pub verdict: String,
    pub severity: String,
    pub level: String,
    pub level_no: u32,
    pub occurrences: u64,
    pub title: String,
    pub at: DateTime<Utc>,
}

/// An incident whose template or samples contain the searched text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchHit {
    pub incident_id: i64,
    pub signature: String,
    pub created_at: DateTime<Utc>,
    pub verdict: String,
    pub template: String,
    pub sample: String,
}

impl Store {
    /// Records an LLM call about to be made (counted by the budgets from now on,
    /// even if the process dies during it). Returns its id.
    pub fn begin_llm_call(
        &self,
        at: DateTime<Utc>,
        backend: &str,
        incident_id: Option<i64>,
        signature: &str,
        prompt_tokens: u64,
    ) -> Result<i64> {
        self.conn.execute_cached(
            "INSERT INTO llm_calls (at, backend, incident_id, signature, prompt_tokens) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ts(at), backend, incident_id, signature, prompt_tokens as i64],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_llm_call(
        &self,
        id: i64,
        ok: bool,
        cost_usd: f64,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE llm_calls SET ok = ?2, cost_usd = ?3, error = ?4 WHERE id = ?1",
            params![id, ok, cost_usd, error],
        )?;
        Ok(())
    }

    /// Calls in the hour and the 24 hours before `now`, and their cost. Calls stamped
    /// after `now` (made while the clock ran ahead) are in neither.
    pub fn llm_usage(&self, now: DateTime<Utc>) -> Result<LlmUsage> {
        let hour = ts(now - chrono::Duration::hours(1));
        let day = ts(now - chrono::Duration::hours(24));
        Ok(self.conn.query_row_cached(
            "SELECT coalesce(sum(at > ?1), 0), count(*), coalesce(sum(cost_usd), 0.0)
             FROM llm_calls WHERE at > ?2 AND at <= ?3",
            params![hour, day, ts(now)],
            |r| {
                Ok(LlmUsage {
                    calls_hour: r.get::<_, i64>(0)? as u32,
                    calls_day: r.get::<_, i64>(1)? as u32,
                    usd_day: r.get(2)?,
                })
            },
        )?)
    }

    /// Estimated prompt tokens of the calls in the 24 hours before `now`: the calls
    /// that recorded a size, their average and the largest.
    pub fn prompt_tokens_day(&self, now: DateTime<Utc>) -> Result<(u64, u64, u64)> {
        let day = ts(now - chrono::Duration::hours(24));
        Ok(self.conn.query_row_cached(
            "SELECT count(prompt_tokens), coalesce(avg(prompt_tokens), 0), coalesce(max(prompt_tokens), 0)
             FROM llm_calls WHERE at > ?1 AND at <= ?2",
            params![day, ts(now)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, f64>(1)?.round() as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            },
        )?)
    }

    /// The outcomes of a backend's last `n` finished calls, newest first.
    pub fn recent_llm_outcomes(&self, backend: &str, n: u32) -> Result<Vec<(bool, DateTime<Utc>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT ok, at FROM llm_calls WHERE backend = ?1 AND ok IS NOT NULL ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![backend, n as i64], |r| {
            Ok((r.get::<_, bool>(0)?, parse_ts(&r.get::<_, String>(1)?)))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record_verdict(
        &self,
        signature: &str,
        incident_id: i64,
        verdict: &str,
        severity: &str,
        level: &str,
        level_no: u32,
        occurrences: u64,
        backend: &str,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.conn.execute_cached(
            "INSERT INTO verdicts (signature, incident_id, verdict, severity, level, level_no, occurrences, backend, title, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![signature, incident_id, verdict, severity, level, level_no, occurrences as i64, backend, title, ts(at)],
        )?;
        Ok(())
    }

    /// A signature's verdicts, oldest first.
    pub fn verdicts(&self, signature: &str) -> Result<Vec<VerdictRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT incident_id, verdict, severity, level, level_no, occurrences, title, at
             FROM verdicts WHERE signature = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([signature], |r| {
            Ok(VerdictRow {
                incident_id: r.get(0)?,
                verdict: r.get(1)?,
                severity: r.get(2)?,
                level: r.get(3)?,
                level_no: r.get::<_, i64>(4)? as u32,
                occurrences: r.get::<_, i64>(5)? as u64,
                title: r.get(6)?,
                at: parse_ts(&r.get::<_, String>(7)?),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Read-only search over stored incidents: templates and sample records that
    /// contain `needle` (case-insensitive, no wildcards), newest first.
    pub fn search_events(&self, needle: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let mut stmt = self.conn.prepare(
            "SELECT id, signature, created_at, verdict, template, samples FROM incidents
             WHERE template LIKE ?1 ESCAPE '\\' OR samples LIKE ?1 ESCAPE '\\'
             ORDER BY id DESC LIMIT ?2",
        )?;
        let lower = needle.to_lowercase();
        let rows = stmt.query_map(params![pattern, limit as i64], |r| {
            let samples: String = r.get(5)?;
            let samples: Vec<String> = serde_json::from_str(&samples).unwrap_or_default();
            let sample = samples
                .iter()
                .find(|s| s.to_lowercase().contains(&lower))
                .or(samples.first())
                .cloned()
                .unwrap_or_default();
            Ok(SearchHit {
                incident_id: r.get(0)?,
                signature: r.get(1)?,
                created_at: parse_ts(&r.get::<_, String>(2)?),
                verdict: r.get(3)?,
                template: r.get(4)?,
                sample,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The first-seen time and total count the store has for a signature.
    pub fn signature_totals(&self, signature: &str) -> Result<Option<(DateTime<Utc>, u64)>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT first_seen, count FROM signatures WHERE signature = ?1",
                [signature],
                |r| {
                    Ok((
                        parse_ts(&r.get::<_, String>(0)?),
                        r.get::<_, i64>(1)? as u64,
                    ))
                },
            )
            .optional()?)
    }
}
