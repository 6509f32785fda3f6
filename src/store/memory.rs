//! SQL of incident memory: acknowledging, resolving, notes, nagging, spikes,
//! notification kinds, control messages seen, and small named values.

use super::Cached;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{parse_ts, ts, Batch, IncidentRow, Notification, Result, Store};

/// A note on an incident.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoteRow {
    pub at: DateTime<Utc>,
    pub author: String,
    pub text: String,
}

impl Store {
    /// The level an incident had at `at`, when it rose since (name, number); `None`
    /// when it has not risen since.
    pub fn level_at(&self, id: i64, at: DateTime<Utc>) -> Result<Option<(String, u32)>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT level_before, level_no_before FROM incident_levels
                 WHERE incident_id = ?1 AND changed_at > ?2 ORDER BY changed_at LIMIT 1",
                params![id, ts(at)],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u32)),
            )
            .optional()?)
    }

    /// The severity an incident had at `at`, when its level rose since (the first rise
    /// after `at` recorded it); `None` when it has not risen since.
    pub fn severity_at(&self, id: i64, at: DateTime<Utc>) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT severity_before FROM incident_levels
                 WHERE incident_id = ?1 AND changed_at > ?2 AND severity_before IS NOT NULL
                 ORDER BY changed_at LIMIT 1",
                params![id, ts(at)],
                |r| r.get::<_, String>(0),
            )
            .optional()?)
    }

    /// Acknowledges an open incident. False when it is unknown or not open.
    pub fn ack_incident(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = self.conn.execute_cached(
            "UPDATE incidents SET status = 'acked', acked_by = ?2, acked_at = ?3, updated_at = ?3
             WHERE id = ?1 AND status = 'open'",
            params![id, by, ts(now)],
        )?;
        Ok(n == 1)
    }

    /// Resolves an incident that is not resolved yet. False when unknown or resolved.
    pub fn resolve_incident(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = self.conn.execute_cached(
            "UPDATE incidents SET status = 'resolved', resolved_by = ?2, resolved_at = ?3, updated_at = ?3
             WHERE id = ?1 AND status != 'resolved'",
            params![id, by, ts(now)],
        )?;
        Ok(n == 1)
    }

    pub fn add_note(&self, id: i64, author: &str, text: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute_cached(
            "INSERT INTO incident_notes (incident_id, at, author, text) VALUES (?1, ?2, ?3, ?4)",
            params![id, ts(now), author, text],
        )?;
        Ok(())
    }

    pub fn notes(&self, id: i64) -> Result<Vec<NoteRow>> {
        // Asked once for every page written: kept prepared (parsing it again cost as
        // much as running it).
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, author, text FROM incident_notes WHERE incident_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(NoteRow {
                at: parse_ts(&r.get::<_, String>(0)?),
                author: r.get(1)?,
                text: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Open or acked incidents whose last occurrence is older than `before`.
    pub fn quiet_incidents(&self, before: DateTime<Utc>) -> Result<Vec<IncidentRow>> {
        self.incidents_where(
            "status IN ('open', 'acked') AND stage = 'filed' AND kind IN ('new-error', 'several-sources')
             AND coalesce(seen_at, last_seen) < ?1",
            params![ts(before)],
        )
    }

    /// Filed incidents still open (not acked), for nagging; light rows (samples and
    /// diagnosis left empty): every run asks, and neither reminder nor briefing shows them.
    pub fn unacked_incidents(&self) -> Result<Vec<IncidentRow>> {
        self.incidents_select(
            "'[]', NULL",
            "status = 'open' AND stage = 'filed'",
            params![],
        )
    }

    /// The most recent resolved incident of a signature.
    pub fn last_resolved(&self, sig: &str) -> Result<Option<IncidentRow>> {
        let mut v = self.incidents_where("signature = ?1 AND status = 'resolved'", params![sig])?;
        Ok(v.pop())
    }

    /// Incidents with the same signature, or linked as regression, or from the same run.
    /// The incidents a page links to: the same signature's other incidents and the
    /// regression links both ways. Incidents that merely opened in the same run are
    /// not related (a bad deploy opens hundreds at once: listing them on every page
    /// was noise, and cost time quadratic in their number). Each term is indexed.
    pub fn related(&self, i: &IncidentRow) -> Result<Vec<IncidentRow>> {
        self.incidents_where(
            "id != ?1 AND (signature = ?2 OR regression_of = ?1 OR id = ?3)",
            params![i.id, i.signature, i.regression_of.unwrap_or(-1)],
        )
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row_cached("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn kv_set(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute_cached(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Whether a control message token was recorded before (a replay).
    pub fn control_seen(&self, token: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT 1 FROM control_seen WHERE token = ?1",
                [token],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records a control message token; false if it was seen before (a replay).
    pub fn first_time_control(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = self.conn.execute_cached(
            "INSERT OR IGNORE INTO control_seen (token, at) VALUES (?1, ?2)",
            params![token, ts(now)],
        )?;
        Ok(n == 1)
    }

    /// Queues a notification of a kind (`nag`, `spike`, `digest`, `briefing`, `test`)
    /// and records when the incident was last notified.
    pub fn enqueue_kind(
        &self,
        incident: Option<i64>,
        kind: &str,
        severity: &str,
        n: &Notification,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        enqueue_row(&self.conn, incident, kind, severity, n, now)
    }

    /// Counts a nag on an incident.
    pub fn count_nag(&self, id: i64) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE incidents SET nag_count = nag_count + 1 WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    pub fn mark_spike_notified(&self, id: i64) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE incidents SET spike_notified = 1 WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Notifications sent from `since` to `now` (for the per-hour cap). Rows stamped
    /// after `now` were sent while the clock ran ahead: they are not in this hour, and
    /// counting them would hold every page until the clock caught up with them.
    pub fn sent_since(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64> {
        Ok(self.conn.query_row_cached(
            "SELECT count(*) FROM outbox WHERE sent_at >= ?1 AND sent_at <= ?2
             AND (last_error IS NULL OR last_error = '')",
            params![ts(since), ts(now)],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Whether a notification at critical priority (5) really went out from `since` to
    /// `now`: one that buzzed, not one folded into a digest.
    pub fn critical_page_since(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT 1 FROM outbox WHERE sent_at >= ?1 AND sent_at <= ?2 AND priority >= 5
                 AND folded_into IS NULL AND (last_error IS NULL OR last_error = '') LIMIT 1",
                params![ts(since), ts(now)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

/// Queues a notification and records when its incident was last notified.
pub(super) fn enqueue_row(
    conn: &rusqlite::Connection,
    incident: Option<i64>,
    kind: &str,
    severity: &str,
    n: &Notification,
    now: DateTime<Utc>,
) -> Result<i64> {
    conn.execute_cached(
        "INSERT INTO outbox (incident_id, title, body, priority, tags, created_at, next_attempt_at, attempts, severity, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, ?7, ?8)",
        params![incident, n.title, n.body, n.priority as i64, n.tags, ts(now), severity, kind],
    )?;
    let id = conn.last_insert_rowid();
    if let Some(i) = incident {
        conn.execute_cached(
            "UPDATE incidents SET last_notified_at = ?2 WHERE id = ?1",
            params![i, ts(now)],
        )?;
    }
    Ok(id)
}

impl Batch<'_> {
    /// [`Store::kv_set`], in this transaction.
    pub fn kv_set(&self, key: &str, value: &str) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// [`Store::enqueue_kind`], in this transaction.
    pub fn enqueue_kind(
        &self,
        incident: Option<i64>,
        kind: &str,
        severity: &str,
        n: &Notification,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        enqueue_row(&self.tx, incident, kind, severity, n, now)
    }

    /// Marks what is still waiting to go for an incident as superseded by notification
    /// `by` (sent, with the reason as its error: it counts as no page).
    pub fn supersede_unsent(&self, incident: i64, by: i64, now: DateTime<Utc>) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE outbox SET sent_at = ?3, last_error = ?4
             WHERE incident_id = ?1 AND id != ?2 AND sent_at IS NULL AND dead_at IS NULL
               AND kind IN ('incident', 'nag', 'spike', 'rise')",
            params![
                incident,
                by,
                ts(now),
                format!("not sent: superseded by notification #{by}, sent at a higher level")
            ],
        )?;
        Ok(())
    }

    /// Records a record more severe than any of an open incident's: its level, the
    /// severity and escalation that follow, and (`reopen`) an acknowledgement given at
    /// the lower severity taken back.
    #[allow(clippy::too_many_arguments)]
    pub fn raise_level(
        &self,
        id: i64,
        (before, severity_before): (&crate::source::Level, &str),
        level: &crate::source::Level,
        severity: &str,
        escalation: Option<&crate::trigger::escalate::Escalation>,
        reopen: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO incident_levels
                 (incident_id, changed_at, level_before, level_no_before, severity_before)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, ts(now), before.name, before.no, severity_before],
        )?;
        self.tx.execute_cached(
            "UPDATE incidents SET level = ?2, level_no = ?6, severity = ?3, escalation = ?4,
                 status = CASE WHEN ?5 AND status = 'acked' THEN 'open' ELSE status END,
                 acked_by = CASE WHEN ?5 AND status = 'acked' THEN NULL ELSE acked_by END,
                 acked_at = CASE WHEN ?5 AND status = 'acked' THEN NULL ELSE acked_at END
             WHERE id = ?1",
            params![
                id,
                level.name,
                severity,
                escalation.map(|e| serde_json::to_string(e).expect("escalation serialises")),
                reopen,
                level.no
            ],
        )?;
        Ok(())
    }

    pub fn set_regression_of(&self, id: i64, of: i64) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE incidents SET regression_of = ?2 WHERE id = ?1",
            params![id, of],
        )?;
        Ok(())
    }

    /// Replaces an incident's samples (the first ones and the latest, capped by the caller).
    pub fn set_samples(&self, id: i64, samples: &[String]) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE incidents SET samples = ?2, runs_seen = runs_seen + 1 WHERE id = ?1",
            params![
                id,
                serde_json::to_string(samples).expect("strings serialise")
            ],
        )?;
        Ok(())
    }
}

/// Figures of a period, for the briefing.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PeriodTotals {
    pub triggers: u64,
    pub real: u64,
    pub noise: u64,
    pub unsure: u64,
    pub auto_resolved: u64,
    pub escalated: u64,
    pub llm_calls: u64,
    pub llm_cost_usd: f64,
}

/// A signature seen often in a period, with what it was judged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FrequentRow {
    pub signature: String,
    pub template: String,
    pub source: String,
    pub incidents: u64,
    pub occurrences: u64,
    pub noise_verdicts: u64,
    /// Times an investigator judged it real.
    pub real_verdicts: u64,
    /// The first and last occurrence over its incidents of the period.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Its latest incident of the period.
    pub latest: i64,
}

impl Store {
    /// Incidents created since `since` (newest first).
    pub fn incidents_since(&self, since: DateTime<Utc>) -> Result<Vec<IncidentRow>> {
        let mut v = self.incidents_where("created_at >= ?1", params![ts(since)])?;
        v.reverse();
        Ok(v)
    }

    pub fn period_totals(&self, since: DateTime<Utc>) -> Result<PeriodTotals> {
        let since = ts(since);
        let q = |sql: &str| -> Result<u64> {
            Ok(self
                .conn
                .query_row_cached(sql, [&since], |r| r.get::<_, i64>(0))? as u64)
        };
        let (calls, cost): (i64, f64) = self.conn.query_row_cached(
            "SELECT count(*), coalesce(sum(cost_usd), 0) FROM llm_calls WHERE at >= ?1",
            [&since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(PeriodTotals {
            triggers: q("SELECT count(*) FROM incidents WHERE created_at >= ?1")?,
            real: q("SELECT count(*) FROM incidents WHERE created_at >= ?1 AND verdict = 'real'")?,
            noise: q("SELECT count(*) FROM incidents WHERE created_at >= ?1 AND verdict = 'noise'")?,
            unsure: q("SELECT count(*) FROM incidents WHERE created_at >= ?1 AND verdict = 'unsure'")?,
            auto_resolved: q("SELECT count(*) FROM incidents WHERE resolved_at >= ?1 AND resolved_by = 'auto'")?,
            escalated: q(
                "SELECT count(*) FROM incidents WHERE created_at >= ?1 AND (nag_count > 0 OR spike_notified = 1)",
            )?,
            llm_calls: calls as u64,
            llm_cost_usd: cost,
        })
    }

    /// Signatures with several incidents (or many occurrences) in the period, most first.
    pub fn frequent_signatures(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<FrequentRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT i.signature, max(i.template), max(i.source), count(*), sum(i.occurrences),
                    (SELECT count(*) FROM verdicts v WHERE v.signature = i.signature AND v.verdict = 'noise'),
                    (SELECT count(*) FROM verdicts v WHERE v.signature = i.signature AND v.verdict = 'real'),
                    min(i.first_seen), max(i.last_seen), max(i.id)
             FROM incidents i WHERE i.last_seen >= ?1 AND i.kind = 'new-error'
             GROUP BY i.signature ORDER BY count(*) DESC, sum(i.occurrences) DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ts(since), limit], |r| {
            Ok(FrequentRow {
                signature: r.get(0)?,
                template: r.get(1)?,
                source: r.get(2)?,
                incidents: r.get::<_, i64>(3)? as u64,
                occurrences: r.get::<_, i64>(4)? as u64,
                noise_verdicts: r.get::<_, i64>(5)? as u64,
                real_verdicts: r.get::<_, i64>(6)? as u64,
                first_seen: parse_ts(&r.get::<_, String>(7)?),
                last_seen: parse_ts(&r.get::<_, String>(8)?),
                latest: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
