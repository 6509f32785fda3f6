//! Issue 7: SQL of the hourly cap's digest.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{ts, Result, Store};

impl Store {
    /// Marks notifications as sent in a digest: they leave the queue, and the row
    /// says which digest carried them (`last_error` is the outbox's note column).
    pub fn fold_into_digest(&self, ids: &[i64], digest: i64, now: DateTime<Utc>) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE outbox SET sent_at = ?2, last_error = ?3 WHERE id = ?1")?;
        let note = format!("folded into digest #{digest} (hourly cap)");
        for id in ids {
            stmt.execute(params![id, ts(now), note])?;
        }
        Ok(())
    }

    /// Whether a digest was made since `since`.
    pub fn digest_since(&self, since: DateTime<Utc>) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE kind = 'digest' AND created_at >= ?1",
            [ts(since)],
            |r| r.get::<_, i64>(0),
        )? > 0)
    }
}
