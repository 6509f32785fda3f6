//! SQL of the outbox beyond queueing and sending: the hourly cap's digest, the age
//! limit's digest, and dead letters (notifications ntfy keeps refusing for a reason
//! of their own, set aside so they never block the others).

use super::Cached;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::{parse_ts, ts, Notification, OutboxRow, Result, Store};

/// A notification set aside after ntfy refused it `refusals` times.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub kind: String,
    pub title: String,
    pub refusals: u32,
    pub error: String,
    pub dead_at: String,
}

pub(super) const ROW: &str =
    "id, incident_id, title, body, priority, tags, attempts, created_at, severity, kind";

pub(super) fn outbox_row(r: &rusqlite::Row) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        title: r.get(2)?,
        body: r.get(3)?,
        priority: r.get::<_, i64>(4)? as u8,
        tags: r.get(5)?,
        attempts: r.get::<_, i64>(6)? as u32,
        created_at: parse_ts(&r.get::<_, String>(7)?),
        severity: r.get(8)?,
        kind: r.get(9)?,
    })
}

impl Store {
    /// Marks notifications as sent in a digest: they leave the queue, and the row
    /// says which digest carried them (`last_error` is the outbox's note column).
    pub fn fold_into_digest(&self, ids: &[i64], digest: i64, now: DateTime<Utc>) -> Result<()> {
        let note = format!("folded into digest #{digest} (hourly cap)");
        self.fold(ids, digest, &note, now)
    }

    /// Marks notifications too old to send as carried by the age limit's digest.
    pub fn fold_expired(&self, ids: &[i64], digest: i64, now: DateTime<Utc>) -> Result<()> {
        let note = format!("not sent in time: folded into digest #{digest} (age limit)");
        self.fold(ids, digest, &note, now)
    }

    fn fold(&self, ids: &[i64], digest: i64, note: &str, now: DateTime<Utc>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE outbox SET sent_at = ?2, last_error = ?3, folded_into = ?4 WHERE id = ?1",
        )?;
        for id in ids {
            stmt.execute(params![id, ts(now), note, digest])?;
        }
        Ok(())
    }

    /// Marks a notification as in doubt before its publish: if no answer is
    /// recorded (timeout, lost connection, the process killed), the next flush looks
    /// for `delivery_id` on the topic before sending it again. Committed at once.
    pub fn begin_attempt(&self, id: i64, delivery_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE outbox SET delivery_id = ?2, attempt_started_at = ?3 WHERE id = ?1",
            params![id, delivery_id, ts(now)],
        )?;
        Ok(())
    }

    /// Clears the in-doubt mark: ntfy answered that it did not take the message, or a
    /// check of the topic did not find it (it is sent again).
    pub fn end_attempt(&self, id: i64) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE outbox SET attempt_started_at = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Queued notifications whose last publish was never answered: (outbox id,
    /// delivery id, when the attempt began).
    pub fn in_doubt(&self) -> Result<Vec<(i64, String, DateTime<Utc>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, coalesce(delivery_id, ''), attempt_started_at FROM outbox
             WHERE sent_at IS NULL AND dead_at IS NULL AND attempt_started_at IS NOT NULL
             ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, parse_ts(&r.get::<_, String>(2)?)))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Marks an in-doubt notification as sent: ntfy has it, found by its delivery id.
    pub fn mark_reconciled(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE outbox SET sent_at = ?2, attempt_started_at = NULL,
             last_error = 'delivered: found on ntfy after an unanswered publish'
             WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    /// Whether a digest was made from `since` to `now` (one made while the clock ran
    /// ahead of `now` is not in this hour).
    pub fn digest_since(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        Ok(self.conn.query_row_cached(
            "SELECT count(*) FROM outbox WHERE kind = 'digest' AND created_at >= ?1 AND created_at <= ?2",
            params![ts(since), ts(now)],
            |r| r.get::<_, i64>(0),
        )? > 0)
    }

    /// Notifications still queued that were made before `before`, except digests of
    /// the age limit itself (they carry the others).
    pub fn expired_notifications(&self, before: DateTime<Utc>) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ROW} FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL
             AND created_at < ?1 AND kind != 'expired' ORDER BY id"
        ))?;
        let rows = stmt.query_map([ts(before)], outbox_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The queued (unsent) notification of a kind, if any: the age limit's digest
    /// that more expired notifications join.
    pub fn queued_of_kind(&self, kind: &str) -> Result<Option<i64>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row_cached(
                "SELECT id FROM outbox WHERE kind = ?1 AND sent_at IS NULL AND dead_at IS NULL
                 ORDER BY id LIMIT 1",
                [kind],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The notifications a digest carries.
    pub fn folded_into(&self, digest: i64) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ROW} FROM outbox WHERE folded_into = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([digest], outbox_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Replaces a queued notification's content (a digest that more rows joined).
    pub fn rewrite_notification(&self, id: i64, severity: &str, n: &Notification) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE outbox SET title = ?2, body = ?3, priority = ?4, tags = ?5, severity = ?6
             WHERE id = ?1",
            params![id, n.title, n.body, n.priority as i64, n.tags, severity],
        )?;
        Ok(())
    }

    /// Records that ntfy refused a notification for a reason of its own (400, 413, …):
    /// it is tried again next run, and after `dead_after` refusals it is set aside.
    /// Returns whether it was set aside now.
    pub fn mark_refused(
        &self,
        id: i64,
        error: &str,
        dead_after: u32,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.conn.execute_cached(
            "UPDATE outbox SET attempts = attempts + 1, refusals = refusals + 1, last_error = ?2,
             next_attempt_at = ?3,
             dead_at = CASE WHEN refusals + 1 >= ?4 THEN ?3 ELSE NULL END
             WHERE id = ?1",
            params![id, error, ts(now), dead_after as i64],
        )?;
        Ok(self.conn.query_row_cached(
            "SELECT dead_at IS NOT NULL FROM outbox WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Notifications set aside since `since`, newest first, at most `limit`, and how
    /// many there are in all since then.
    pub fn dead_letters(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>)> {
        let total: i64 = self.conn.query_row_cached(
            "SELECT count(*) FROM outbox WHERE dead_at >= ?1",
            [ts(since)],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT id, incident_id, kind, title, refusals, coalesce(last_error, ''), dead_at
             FROM outbox WHERE dead_at >= ?1 ORDER BY dead_at DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ts(since), limit as i64], |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                incident_id: r.get(1)?,
                kind: r.get(2)?,
                title: r.get(3)?,
                refusals: r.get::<_, i64>(4)? as u32,
                error: r.get(5)?,
                dead_at: r.get(6)?,
            })
        })?;
        Ok((total as u64, rows.collect::<std::result::Result<_, _>>()?))
    }
}
