//! SQL of allow-listed actions: requests (one proposal of one action with its
//! parameters for one incident) and what became of each.

use super::Cached;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::{parse_ts, ts, Result, Store};

/// A proposal to be recorded.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub incident_id: i64,
    pub action_id: String,
    /// JSON object of the parameters (string values).
    pub params: String,
    pub reason: String,
    /// `investigator` or `rule`.
    pub proposed_by: String,
    /// `suggested`, `pending` or `approved` (auto).
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
}

/// One request and what became of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionRequest {
    pub id: i64,
    pub incident_id: i64,
    pub action_id: String,
    pub params: serde_json::Value,
    pub reason: String,
    pub proposed_by: String,
    /// suggested | pending | approved | running | queued | rejected | expired | refused |
    /// failed | verifying | done | verified | verify-failed
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub argv: Option<serde_json::Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i64>,
    pub output: Option<String>,
    pub duration_ms: Option<i64>,
    pub quiet_runs: u32,
    pub verified_at: Option<DateTime<Utc>>,
    pub verify_result: Option<String>,
}

/// A request as its incident's page records it (front matter `actions:`, JSON), so that
/// a rebuilt store knows what waits for approval and what ran (caps, cooldowns, the
/// breaker, verifying). The reason and output stay on the page's Log only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PageAction {
    pub id: i64,
    pub action: String,
    pub params: serde_json::Value,
    pub status: String,
    pub proposed_by: String,
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The incident's occurrences when it ran (what `quiet_runs` compares with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrences_at_start: Option<u64>,
    #[serde(default)]
    pub quiet_runs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, incident_id, action_id, params, reason, proposed_by, status, created_at, expires_at, decided_by, decided_at, argv, started_at, exit_code, output, duration_ms, quiet_runs, verified_at, verify_result";

fn row(r: &Row<'_>) -> rusqlite::Result<ActionRequest> {
    let opt_ts = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<String>>(i)?.map(|s| parse_ts(&s)))
    };
    let json = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s));
    Ok(ActionRequest {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        action_id: r.get(2)?,
        params: json(r.get(3)?),
        reason: r.get(4)?,
        proposed_by: r.get(5)?,
        status: r.get(6)?,
        created_at: parse_ts(&r.get::<_, String>(7)?),
        expires_at: opt_ts(8)?,
        decided_by: r.get(9)?,
        decided_at: opt_ts(10)?,
        argv: r.get::<_, Option<String>>(11)?.map(json),
        started_at: opt_ts(12)?,
        exit_code: r.get(13)?,
        output: r.get(14)?,
        duration_ms: r.get(15)?,
        quiet_runs: r.get(16)?,
        verified_at: opt_ts(17)?,
        verify_result: r.get(18)?,
    })
}

impl Store {
    pub fn insert_request(&self, n: &NewRequest, now: DateTime<Utc>) -> Result<i64> {
        self.conn.execute_cached(
            "INSERT INTO action_requests (incident_id, action_id, params, reason, proposed_by, status, created_at, expires_at, decided_by, decided_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, CASE WHEN ?9 IS NULL THEN NULL ELSE ?7 END)",
            params![
                n.incident_id,
                n.action_id,
                n.params,
                n.reason,
                n.proposed_by,
                n.status,
                ts(now),
                n.expires_at.map(ts),
                n.decided_by
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn request(&self, id: i64) -> Result<Option<ActionRequest>> {
        Ok(self
            .conn
            .query_row_cached(
                &format!("SELECT {COLUMNS} FROM action_requests WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    fn requests_where(&self, clause: &str, p: impl rusqlite::Params) -> Result<Vec<ActionRequest>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM action_requests {clause}"))?;
        let v = stmt
            .query_map(p, row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    /// An incident's requests as its page records them, oldest first.
    pub fn page_actions(&self, incident: i64) -> Result<Vec<PageAction>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, action_id, params, status, proposed_by, created_at, expires_at, decided_by, decided_at,
                 started_at, exit_code, occurrences_at_start, quiet_runs, verified_at
             FROM action_requests WHERE incident_id = ?1 ORDER BY id",
        )?;
        let v = stmt
            .query_map([incident], |r| {
                let opt_ts = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                    Ok(r.get::<_, Option<String>>(i)?.map(|s| parse_ts(&s)))
                };
                let params: String = r.get(2)?;
                Ok(PageAction {
                    id: r.get(0)?,
                    action: r.get(1)?,
                    params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
                    status: r.get(3)?,
                    proposed_by: r.get(4)?,
                    created: parse_ts(&r.get::<_, String>(5)?),
                    expires: opt_ts(6)?,
                    decided_by: r.get(7)?,
                    decided_at: opt_ts(8)?,
                    started: opt_ts(9)?,
                    exit_code: r.get(10)?,
                    occurrences_at_start: r.get::<_, Option<i64>>(11)?.map(|n| n as u64),
                    quiet_runs: r.get(12)?,
                    verified_at: opt_ts(13)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    /// Requests in one status, oldest first.
    pub fn requests_in(&self, status: &str) -> Result<Vec<ActionRequest>> {
        self.requests_where("WHERE status = ?1 ORDER BY id", [status])
    }

    /// Every request, newest first, at most `limit`.
    pub fn request_history(&self, limit: u32) -> Result<Vec<ActionRequest>> {
        self.requests_where("ORDER BY id DESC LIMIT ?1", [limit])
    }

    /// Requests that ran between two times, oldest first.
    pub fn requests_run_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ActionRequest>> {
        self.requests_where(
            "WHERE started_at IS NOT NULL AND started_at >= ?1 AND started_at < ?2 ORDER BY started_at",
            [ts(from), ts(to)],
        )
    }

    /// The incident's request still waiting for, or under, action.
    pub fn request_in_flight(&self, incident: i64) -> Result<Option<ActionRequest>> {
        Ok(self
            .requests_where(
                "WHERE incident_id = ?1 AND status IN ('pending', 'approved', 'running', 'queued', 'verifying') ORDER BY id LIMIT 1",
                [incident],
            )?
            .pop())
    }

    /// Moves a request from one status to another; false when it was not in `from`.
    pub fn decide_request(
        &self,
        id: i64,
        from: &str,
        to: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self.conn.execute_cached(
            "UPDATE action_requests SET status = ?3, decided_by = ?4, decided_at = ?5 WHERE id = ?1 AND status = ?2",
            params![id, from, to, by, ts(now)],
        )?;
        Ok(n == 1)
    }

    /// Sets a request's status (and what was found), whatever it was.
    pub fn set_request_status(&self, id: i64, status: &str, result: Option<&str>) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE action_requests SET status = ?2, verify_result = COALESCE(?3, verify_result) WHERE id = ?1",
            params![id, status, result],
        )?;
        Ok(())
    }

    /// Marks a request as running, before its program starts: a run that dies before
    /// recording the outcome leaves it `running`, and the next run never starts it again.
    pub fn mark_running(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE action_requests SET status = 'running', started_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    /// Marks a request as handed to the action unit (its queue file is written).
    pub fn mark_queued(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE action_requests SET status = 'queued', started_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    /// Records an execution.
    #[allow(clippy::too_many_arguments)]
    pub fn record_execution(
        &self,
        id: i64,
        status: &str,
        argv: &str,
        started: DateTime<Utc>,
        exit_code: Option<i64>,
        output: &str,
        duration_ms: u64,
        occurrences: u64,
    ) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE action_requests SET status = ?2, argv = ?3, started_at = ?4, exit_code = ?5, output = ?6, duration_ms = ?7, occurrences_at_start = ?8 WHERE id = ?1",
            params![id, status, argv, ts(started), exit_code, output, duration_ms as i64, occurrences as i64],
        )?;
        Ok(())
    }

    /// The incident's occurrences when the request ran.
    pub fn occurrences_at_start(&self, id: i64) -> Result<Option<u64>> {
        let n: Option<i64> = self.conn.query_row_cached(
            "SELECT occurrences_at_start FROM action_requests WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        Ok(n.map(|n| n as u64))
    }

    /// A metric check's last status (`ok`, `warning`, `failed`) and when it ran.
    pub fn check_last_run(&self, check: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT status, last_run FROM metric_checks WHERE name = ?1",
                [check],
                |r| Ok((r.get::<_, String>(0)?, parse_ts(&r.get::<_, String>(1)?))),
            )
            .optional()?)
    }

    /// How many incidents of a source are not resolved.
    pub fn unresolved_from(&self, source: &str) -> Result<u64> {
        let n: i64 = self.conn.query_row_cached(
            "SELECT COUNT(*) FROM incidents WHERE source = ?1 AND status != 'resolved'",
            [source],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    pub fn set_quiet_runs(&self, id: i64, n: u32) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE action_requests SET quiet_runs = ?2 WHERE id = ?1",
            params![id, n],
        )?;
        Ok(())
    }

    /// Records the outcome of a verification.
    pub fn finish_verify(
        &self,
        id: i64,
        status: &str,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE action_requests SET status = ?2, verify_result = ?3, verified_at = ?4 WHERE id = ?1",
            params![id, status, result, ts(now)],
        )?;
        Ok(())
    }

    /// How many times an action ran since `since`.
    pub fn executions_since(&self, action: &str, since: DateTime<Utc>) -> Result<u64> {
        let n: i64 = self.conn.query_row_cached(
            "SELECT COUNT(*) FROM action_requests WHERE action_id = ?1 AND started_at IS NOT NULL AND started_at > ?2",
            params![action, ts(since)],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// When an action last ran.
    pub fn last_execution(&self, action: &str) -> Result<Option<DateTime<Utc>>> {
        let t: Option<String> = self.conn.query_row_cached(
            "SELECT MAX(started_at) FROM action_requests WHERE action_id = ?1",
            [action],
            |r| r.get(0),
        )?;
        Ok(t.map(|s| parse_ts(&s)))
    }

    /// The outcomes of an action's latest finished runs, newest first.
    pub fn recent_outcomes(&self, action: &str, limit: u32) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT status FROM action_requests WHERE action_id = ?1 AND status IN ('failed', 'verified', 'verify-failed', 'done')
             ORDER BY COALESCE(verified_at, started_at) DESC, id DESC LIMIT ?2",
        )?;
        let v = stmt
            .query_map(params![action, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(v)
    }
}
