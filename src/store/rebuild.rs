//! SQL of rebuilding the state from the incident pages, after the state database was
//! lost or rolled back (deleted, or its WAL deleted): incidents keep their ids.

use super::Cached;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{ts, Batch, Result, Store};

/// An incident as its page describes it.
#[derive(Debug, Clone, Default)]
pub struct PageIncident {
    pub id: i64,
    pub signature: String,
    pub kind: String,
    pub status: String,
    pub severity: String,
    pub verdict: String,
    pub title: String,
    pub source: String,
    pub host: String,
    pub level: String,
    pub template: String,
    pub exception_type: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurrences: u64,
    pub samples: Vec<String>,
    /// What the page shows above its links and log (summary, evidence, diagnosis,
    /// fix), kept as it is: the diagnosis behind it is not in the page's data.
    pub body: String,
    pub file_path: String,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub regression_of: Option<i64>,
    /// What the escalation rules decided, as the store keeps it (JSON).
    pub escalation: Option<String>,
    /// Its action requests, as the page recorded them.
    pub actions: Vec<super::PageAction>,
}

impl Store {
    /// The highest incident id the store knows (0 for none).
    pub fn max_incident_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row_cached("SELECT coalesce(max(id), 0) FROM incidents", [], |r| {
                r.get(0)
            })?)
    }

    /// The ids of every incident the store knows.
    pub fn incident_ids(&self) -> Result<std::collections::HashSet<i64>> {
        let mut stmt = self.conn.prepare("SELECT id FROM incidents")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

impl Batch<'_> {
    /// Records an incident from its page, under the page's id, as filed. It counts as
    /// notified now: its page went out before the state was lost, and a reminder
    /// waits its interval from the rebuild rather than firing at once.
    pub fn insert_rebuilt_incident(&self, p: &PageIncident, now: DateTime<Utc>) -> Result<()> {
        let diagnosis = serde_json::json!({ "rebuilt_from_page": true, "page_body": p.body });
        self.tx.execute_cached(
            "INSERT INTO incidents (id, signature, kind, stage, status, severity, verdict, title, source, host,
                 level, template, exception_type, first_seen, last_seen, occurrences, samples, diagnosis,
                 file_path, created_at, updated_at, acked_by, acked_at, resolved_at, resolved_by,
                 regression_of, last_notified_at, seen_at, escalation)
             VALUES (?1, ?2, ?3, 'filed', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?13, ?19, ?20, ?21, ?22, ?23, ?24, ?19, ?14, ?25)",
            params![
                p.id,
                p.signature,
                p.kind,
                p.status,
                p.severity,
                p.verdict,
                p.title,
                p.source,
                p.host,
                p.level,
                p.template,
                p.exception_type,
                ts(p.first_seen),
                ts(p.last_seen),
                p.occurrences as i64,
                serde_json::to_string(&p.samples).expect("strings serialise"),
                diagnosis.to_string(),
                p.file_path,
                ts(now),
                p.acked_by,
                p.acked_at.map(ts),
                p.resolved_at.map(ts),
                p.resolved_by,
                p.regression_of,
                p.escalation,
            ],
        )?;
        Ok(())
    }

    /// Brings an incident the store knows (from before a WAL was lost) up to its page,
    /// which was written after the store's last word on it.
    pub fn sync_from_page(&self, p: &PageIncident) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE incidents SET status = ?2, acked_by = ?3, acked_at = ?4, resolved_at = ?5,
                 resolved_by = ?6, occurrences = max(occurrences, ?7), last_seen = max(last_seen, ?8),
                 seen_at = max(coalesce(seen_at, last_seen), ?8)
             WHERE id = ?1",
            params![
                p.id,
                p.status,
                p.acked_by,
                p.acked_at.map(ts),
                p.resolved_at.map(ts),
                p.resolved_by,
                p.occurrences as i64,
                ts(p.last_seen),
            ],
        )?;
        Ok(())
    }

    /// A request as its incident's page recorded it, under its own id (the ids an
    /// Approve is bound to). One the store still has is left as the store has it;
    /// false then.
    pub fn insert_rebuilt_request(
        &self,
        incident: i64,
        a: &super::PageAction,
        reason: &str,
    ) -> Result<bool> {
        let n = self.tx.execute_cached(
            "INSERT OR IGNORE INTO action_requests (id, incident_id, action_id, params, reason, proposed_by, status,
                 created_at, expires_at, decided_by, decided_at, started_at, exit_code, occurrences_at_start,
                 quiet_runs, verified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                a.id,
                incident,
                a.action,
                a.params.to_string(),
                reason,
                a.proposed_by,
                a.status,
                ts(a.created),
                a.expires.map(ts),
                a.decided_by,
                a.decided_at.map(ts),
                a.started.map(ts),
                a.exit_code,
                a.occurrences_at_start.map(|n| n as i64),
                a.quiet_runs,
                a.verified_at.map(ts),
            ],
        )?;
        Ok(n == 1)
    }

    /// A note of a rebuilt incident, with its own time.
    pub fn insert_rebuilt_note(
        &self,
        id: i64,
        at: DateTime<Utc>,
        author: &str,
        text: &str,
    ) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO incident_notes (incident_id, at, author, text) VALUES (?1, ?2, ?3, ?4)",
            params![id, ts(at), author, text],
        )?;
        Ok(())
    }

    /// A signature known from a page: the store learns it was seen up to the page's
    /// last occurrence (a signature on several pages adds their counts).
    pub fn rebuild_signature(&self, p: &PageIncident) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO signatures (signature, template, source, level, exception_type, first_seen, last_seen, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (signature) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
                 last_seen = max(last_seen, excluded.last_seen), count = count + excluded.count",
            params![
                p.signature,
                p.template,
                p.source,
                p.level,
                p.exception_type,
                ts(p.first_seen),
                ts(p.last_seen),
                p.occurrences as i64
            ],
        )?;
        Ok(())
    }

    /// The verdict a page records, so verdict memory (recurring noise) survives.
    pub fn rebuild_verdict(&self, p: &PageIncident, level_no: u32) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO verdicts (signature, incident_id, verdict, severity, level, level_no, occurrences, backend, title, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'rebuilt', ?8, ?9)",
            params![
                p.signature,
                p.id,
                p.verdict,
                p.severity,
                p.level,
                level_no as i64,
                p.occurrences as i64,
                p.title,
                ts(p.first_seen)
            ],
        )?;
        Ok(())
    }
}
