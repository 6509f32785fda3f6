//! The state database: every SQL statement logwarden runs lives in this module.
//!
//! SQLite in the state directory, WAL mode with a busy timeout, schema migrations
//! applied in one transaction under `PRAGMA user_version`. Reads go through
//! [`Store`]; writes that must land together go through a [`Batch`] (one transaction).

// allow-listed repair actions: proposals, decisions, executions, verifications
mod actions;
mod llm;
mod memory;
mod metrics;
mod migrations;
// The queries of `status`, `doctor` and the metrics textfile.
mod ops;
// the digests (hourly cap, age limit) and dead letters
mod outbox;
// rebuilding incidents and signatures from the pages after the database was lost
mod rebuild;
pub use actions::{ActionRequest, NewRequest, PageAction};
pub use ops::{OpenIncident, RunSummary};
pub use outbox::DeadLetter;
pub use rebuild::PageIncident;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::signature::{GroupId, Signature, TemplateRecord};
use crate::source::Checkpoint;

pub use llm::{LlmUsage, SearchHit, VerdictRow};
pub use memory::{FrequentRow, NoteRow, PeriodTotals};
pub use metrics::{
    CheckRunRow, DetectorRow, MetricAlertRow, RollupRow, SeriesRow, MAX_RAW_PER_SERIES,
};
pub use migrations::SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {err}")]
    Sqlite { path: String, err: rusqlite::Error },
    #[error("state database {path} was written by a newer logwarden (schema version {found}, this one knows up to {known}); upgrade logwarden or point state_dir elsewhere")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("state database: {0}")]
    Query(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Times are stored as RFC 3339 text in UTC, to the second.
/// The oldest SQLite the state database may run on, as SQLite numbers versions
/// (3.50.2): older ones lack the fixes for CVE-2025-29087/29088 (3.49.1) and
/// CVE-2025-6965 (3.50.2). The bundled copy comes with rusqlite.
pub const MIN_SQLITE_VERSION: i32 = 3_050_002;

/// The SQLite linked in, as `3.54.1`, and whether it is at least [`MIN_SQLITE_VERSION`].
pub fn sqlite_version() -> (&'static str, bool) {
    (
        rusqlite::version(),
        rusqlite::version_number() >= MIN_SQLITE_VERSION,
    )
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The ids `INDEX.md` lists: the filed incidents open or acked, and the `?1` latest.
const INDEX_HEAD: &str = "SELECT id FROM incidents WHERE status IN ('open', 'acked') AND stage = 'filed'
     UNION SELECT id FROM (SELECT id FROM incidents WHERE stage = 'filed' ORDER BY id DESC LIMIT ?1)";

/// See [`Store::filed_after_in_index`].
const FILED_AFTER_IN_INDEX: &str = "SELECT id FROM incidents
     WHERE stage = 'filed' AND first_seen >= ?3
       AND (first_seen < ?1 OR (first_seen = ?1 AND id < ?2))
     ORDER BY first_seen DESC, id DESC LIMIT 1";

fn parse_ts(s: &str) -> DateTime<Utc> {
    try_parse_ts(s).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// A stored time, `None` when the text is not one.
fn try_parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An SQL expression for "now" on the run clock (`clock.rs`): the latest run's
/// `run_clock`, or, in a store whose runs predate it, the later of the parameter `now`
/// (such as `?4`) and the latest run's start.
fn seen_now(now: &str) -> String {
    format!(
        "coalesce((SELECT run_clock FROM runs WHERE run_clock IS NOT NULL ORDER BY id DESC LIMIT 1),
             max({now}, coalesce((SELECT max(started_at) FROM runs), '')))"
    )
}

/// A handle on the state database.
pub struct Store {
    conn: Connection,
}

/// Statements run through SQLite's prepared-statement cache: a run repeats the same
/// few dozen statements for every incident it files, and parsing them again each time
/// was a tenth of a busy run's CPU.
trait Cached {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// What the store knows of a signature.
#[derive(Debug, Clone)]
pub struct SignatureRow {
    pub signature: Signature,
    pub template: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub count: u64,
}

/// A `templates` row selected as `group_id, template, count`.
fn template_record(r: &rusqlite::Row) -> rusqlite::Result<TemplateRecord> {
    let g: String = r.get(0)?;
    Ok(TemplateRecord {
        group: GroupId(u64::from_str_radix(&g, 16).unwrap_or(0)),
        template: r.get(1)?,
        count: r.get::<_, i64>(2)? as u64,
    })
}

/// An incident as stored.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IncidentRow {
    pub id: i64,
    pub signature: String,
    pub kind: String,
    pub stage: String,
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
    /// Sample records (raw text), JSON array.
    pub samples: Vec<String>,
    /// The investigator's diagnosis as JSON (`null` until investigated).
    pub diagnosis: Option<serde_json::Value>,
    pub file_path: Option<String>,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    /// The resolved incident this one is a regression of.
    pub regression_of: Option<i64>,
    pub nag_count: u32,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub spike_notified: bool,
    /// Runs in which the incident had occurrences.
    pub runs_seen: u32,
    /// What the escalation rules decided, when one matched.
    pub escalation: Option<crate::trigger::escalate::Escalation>,
    /// The number of `level` as read, when it was recorded.
    #[serde(skip)]
    pub level_no: Option<u32>,
}

/// A new incident to record.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub signature: String,
    pub kind: String,
    pub severity: String,
    pub title: String,
    pub source: String,
    pub host: String,
    pub level: String,
    /// The number of `level` as read (`None` for incidents that have no records).
    pub level_no: Option<u32>,
    pub template: String,
    pub exception_type: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurrences: u64,
    pub samples: Vec<String>,
}

/// A notification waiting to be sent (or sent).
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub severity: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub priority: u8,
    pub tags: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// One run's figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunRow {
    pub started_at: String,
    pub duration_ms: u64,
    pub lines_read: u64,
    pub events_kept: u64,
    pub triggers: u64,
    pub llm_calls: u64,
    pub errors: u64,
    pub error_text: String,
    /// The run's place on the boot clock (`None` when its time was given), and its
    /// clocks (see `clock.rs`).
    #[serde(skip)]
    pub boot: Option<crate::clock::Boot>,
    #[serde(skip)]
    pub clock: Option<crate::clock::RunClock>,
}

impl Store {
    /// The clocks of the latest run that recorded them (see `clock.rs`).
    pub fn previous_run_clock(&self) -> Result<Option<crate::clock::Previous>> {
        let row = self
            .conn
            .query_row(
                "SELECT started_at, run_clock, expiry_floor, boot_id, since_boot FROM runs
                 WHERE run_clock IS NOT NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((started, run_clock, floor, boot_id, since)) = row else {
            return Ok(None);
        };
        let (Some(started_at), Some(run_clock)) =
            (try_parse_ts(&started), try_parse_ts(&run_clock))
        else {
            return Ok(None);
        };
        Ok(Some(crate::clock::Previous {
            started_at,
            run_clock,
            floor: floor
                .as_deref()
                .and_then(try_parse_ts)
                .unwrap_or(started_at),
            boot: match (boot_id, since) {
                (Some(id), Some(s)) if s >= 0 => Some(crate::clock::Boot {
                    id,
                    since: s as u64,
                }),
                _ => None,
            },
        }))
    }

    /// Opens (creating if needed) the database, and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let wrap = |err| StoreError::Sqlite {
            path: path.display().to_string(),
            err,
        };
        let new = !path.exists();
        let mut conn = Connection::open(path).map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(wrap)?;
        // Keep the WAL between runs: checkpointing it at every exit costs an fsync per
        // run; SQLite checkpoints by itself as the WAL grows.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(wrap)?;
        // One plan per statement whatever values are bound. Otherwise SQLite lets a
        // bound value steer the plan (`col = ?1` compared with 0 and 1, LIMIT, LIKE,
        // partial indexes, STAT4): such a statement is marked to be planned again on a
        // new binding, and since the statement cache clears the bindings of every
        // statement handed back to it, it was parsed and planned anew on every use.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(wrap)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrations::apply(&mut conn, &path.display().to_string())?;
        give_templates_their_leaf(&mut conn).map_err(wrap)?;
        if new {
            // Made by root in the service user's state folder: the service's own.
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = crate::fsio::adopt(Path::new(&p));
            }
        }
        Ok(Store { conn })
    }

    /// Opens an existing database for reading only (no schema change, no write): for
    /// `logwarden mcp`, which reads while a run holds the database.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let wrap = |err| StoreError::Sqlite {
            path: path.display().to_string(),
            err,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(wrap)?;
        Ok(Store { conn })
    }

    /// Runs `f`, whose reads then share one read transaction: one snapshot and one
    /// lock of the WAL index for them all, rather than one per statement (filing an
    /// incident page asks four or five questions, and each took and released the
    /// lock with system calls). Inside a transaction already open, `f` just runs.
    /// For reads only: a write made in `f` would wait for the end of it.
    pub fn reading<T>(&self, f: impl FnOnce() -> T) -> T {
        if !self.conn.is_autocommit() || self.conn.execute_cached("BEGIN", []).is_err() {
            return f();
        }
        let out = f();
        if self.conn.execute_cached("COMMIT", []).is_err() {
            let _ = self.conn.execute_cached("ROLLBACK", []);
        }
        out
    }

    /// Starts a batch of writes that land together or not at all.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        Ok(Batch {
            tx: self.conn.transaction()?,
        })
    }

    /// The sources runs had in their config: (name, identity, the last run that had it).
    pub fn source_identities(&self) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT source, identity, seen_run FROM source_identities")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn checkpoints(&self, source: &str) -> Result<HashMap<String, Checkpoint>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, state FROM checkpoints WHERE source = ?1")?;
        let rows = stmt.query_map([source], |r| {
            Ok(Checkpoint {
                source: source.to_string(),
                key: r.get(0)?,
                state: r.get(1)?,
            })
        })?;
        let mut out = HashMap::new();
        for cp in rows {
            let cp = cp?;
            out.insert(cp.key.clone(), cp);
        }
        Ok(out)
    }

    /// The templates of one miner leaf, in creation order.
    pub fn templates_in_leaf(&self, leaf: u64) -> Result<Vec<TemplateRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT group_id, template, count FROM templates WHERE leaf = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([leaf as i64], template_record)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn template_exists(&self, group: GroupId) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM templates WHERE group_id = ?1")?;
        Ok(stmt.exists([format!("{:016x}", group.0)])?)
    }

    /// Every template, in creation order (for `signatures`, which mines from the
    /// watcher's state; a run fetches only the leaves it needs).
    pub fn templates(&self) -> Result<Vec<TemplateRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT group_id, template, count FROM templates ORDER BY rowid")?;
        let rows = stmt.query_map([], template_record)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn signature(&self, sig: &str) -> Result<Option<SignatureRow>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT signature, template, first_seen, last_seen, count FROM signatures WHERE signature = ?1",
                [sig],
                |r| {
                    let s: String = r.get(0)?;
                    Ok(SignatureRow {
                        signature: s.parse().unwrap_or(Signature(0)),
                        template: r.get(1)?,
                        first_seen: parse_ts(&r.get::<_, String>(2)?),
                        last_seen: parse_ts(&r.get::<_, String>(3)?),
                        count: r.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .optional()?)
    }

    /// The open (or acked) incident of a signature, if any.
    pub fn open_incident(&self, sig: &str) -> Result<Option<IncidentRow>> {
        let mut rows =
            self.incidents_where("signature = ?1 AND status != 'resolved'", params![sig])?;
        Ok(rows.pop())
    }

    /// Incidents whose filing is not finished (stage `new` or `investigated`).
    pub fn unfinished_incidents(&self) -> Result<Vec<IncidentRow>> {
        self.incidents_where("stage IN ('new', 'investigated')", params![])
    }

    pub fn incident(&self, id: i64) -> Result<Option<IncidentRow>> {
        Ok(self.incidents_where("id = ?1", params![id])?.pop())
    }

    pub fn incidents(&self) -> Result<Vec<IncidentRow>> {
        self.incidents_where("1 = 1", params![])
    }

    /// What `INDEX.md` lists: every filed incident still open or acked, and the
    /// `recent` latest filed; light rows (samples and diagnosis left empty), at a
    /// fraction of the cost of whole ones.
    pub fn incidents_for_index_head(&self, recent: usize) -> Result<Vec<IncidentRow>> {
        self.incidents_select(
            "'[]', NULL",
            &format!("id IN ({INDEX_HEAD})"),
            params![recent as i64],
        )
    }

    /// How many incidents `INDEX.md` lists ([`Store::incidents_for_index_head`]), counted
    /// by index without loading them.
    pub fn count_index_head(&self, recent: usize) -> Result<usize> {
        let n: i64 = self.conn.query_row_cached(
            &format!("SELECT count(*) FROM ({INDEX_HEAD})"),
            params![recent as i64],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// How many filed incidents were first seen in a month (`YYYY-MM`), counted by index.
    pub fn count_in_month(&self, month: &str) -> Result<usize> {
        let n: i64 = self.conn.query_row_cached(
            "SELECT count(*) FROM incidents WHERE stage = 'filed' AND first_seen >= ?1 AND first_seen < ?2",
            params![month, format!("{month}\u{7f}")],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// The filed incidents first seen in a month (`YYYY-MM`, UTC), light rows.
    pub fn incidents_in_month(&self, month: &str) -> Result<Vec<IncidentRow>> {
        self.incidents_select(
            "'[]', NULL",
            "stage = 'filed' AND first_seen >= ?1 AND first_seen < ?2",
            params![month, format!("{month}\u{7f}")],
        )
    }

    /// Whether the store records a page named `name` (a file name, in any folder) for
    /// an incident other than `id`. A new page's name is chosen outside these: a page
    /// the user deleted or moved leaves its name free on disk, but its incident still
    /// writes there on its next update.
    pub fn page_name_taken(&self, name: &str, id: i64) -> Result<bool> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT 1 FROM incidents WHERE page_name = ?1 AND id != ?2 LIMIT 1",
                params![name, id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Where the store records an incident's page (none for an incident not filed, or
    /// one that does not exist).
    pub fn page_path(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row_cached(
                "SELECT file_path FROM incidents WHERE id = ?1",
                params![id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Records where an incident's page is now (found moved, or taken into the
    /// incidents folder).
    pub fn set_page_path(&self, id: i64, path: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE incidents SET file_path = ?2 WHERE id = ?1",
            params![id, path],
        )?;
        Ok(())
    }

    /// The months (`YYYY-MM`) in which filed incidents were first seen, newest first.
    pub fn incident_months(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT substr(first_seen, 1, 7) FROM incidents WHERE stage = 'filed' ORDER BY 1 DESC",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// These incidents (the ones that exist), light rows as for the index.
    pub fn incidents_light(&self, ids: &[i64]) -> Result<Vec<IncidentRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.incidents_select("'[]', NULL", "id = ?1", params![id])?);
        }
        Ok(out)
    }

    /// The filed incident listed right after `(first_seen, id)` in its month's index
    /// (newest first), if any: where a new line goes.
    pub fn filed_after_in_index(
        &self,
        first_seen: DateTime<Utc>,
        id: i64,
        month: &str,
    ) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row_cached(
                FILED_AFTER_IN_INDEX,
                params![ts(first_seen), id, month],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The months (`YYYY-MM`) of these incidents' first occurrence.
    pub fn months_of(&self, ids: &[i64]) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for id in ids {
            let m: Option<String> = self
                .conn
                .query_row_cached(
                    "SELECT substr(first_seen, 1, 7) FROM incidents WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(m) = m.filter(|m| !out.contains(m)) {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn incidents_where(
        &self,
        cond: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<IncidentRow>> {
        self.incidents_select("samples, diagnosis", cond, args)
    }

    /// [`Store::incidents_where`] with the samples and diagnosis columns given by
    /// `heavy` (`samples, diagnosis`, or stand-ins).
    fn incidents_select(
        &self,
        heavy: &str,
        cond: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<IncidentRow>> {
        let sql = format!(
            "SELECT id, signature, kind, stage, status, severity, verdict, title, source, host, level,
                    template, exception_type, first_seen, last_seen, occurrences, {heavy},
                    file_path, created_at, run_id, acked_by, acked_at, resolved_at, resolved_by,
                    regression_of, nag_count, last_notified_at, spike_notified, runs_seen, escalation,
                    level_no
             FROM incidents WHERE {cond} ORDER BY id"
        );
        // Cached: a run asks for incidents many times (pages, links, the index).
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            let samples: String = r.get(16)?;
            let diagnosis: Option<String> = r.get(17)?;
            Ok(IncidentRow {
                id: r.get(0)?,
                signature: r.get(1)?,
                kind: r.get(2)?,
                stage: r.get(3)?,
                status: r.get(4)?,
                severity: r.get(5)?,
                verdict: r.get(6)?,
                title: r.get(7)?,
                source: r.get(8)?,
                host: r.get(9)?,
                level: r.get(10)?,
                template: r.get(11)?,
                exception_type: r.get(12)?,
                first_seen: parse_ts(&r.get::<_, String>(13)?),
                last_seen: parse_ts(&r.get::<_, String>(14)?),
                occurrences: r.get::<_, i64>(15)? as u64,
                samples: serde_json::from_str(&samples).unwrap_or_default(),
                diagnosis: diagnosis.and_then(|d| serde_json::from_str(&d).ok()),
                file_path: r.get(18)?,
                created_at: parse_ts(&r.get::<_, String>(19)?),
                run_id: r.get(20)?,
                acked_by: r.get(21)?,
                acked_at: r.get::<_, Option<String>>(22)?.map(|t| parse_ts(&t)),
                resolved_at: r.get::<_, Option<String>>(23)?.map(|t| parse_ts(&t)),
                resolved_by: r.get(24)?,
                regression_of: r.get(25)?,
                nag_count: r.get::<_, i64>(26)? as u32,
                last_notified_at: r.get::<_, Option<String>>(27)?.map(|t| parse_ts(&t)),
                spike_notified: r.get::<_, i64>(28)? != 0,
                runs_seen: r.get::<_, i64>(29)? as u32,
                escalation: r
                    .get::<_, Option<String>>(30)?
                    .and_then(|e| serde_json::from_str(&e).ok()),
                level_no: r.get::<_, Option<i64>>(31)?.map(|n| n as u32),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Notifications not yet sent whose next attempt is due. A row made after `now`
    /// was made while the clock ran ahead: it is due too, not held until that time.
    pub fn due_notifications(&self, now: DateTime<Utc>) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare(
            &format!(
                "SELECT {} FROM outbox
                 WHERE sent_at IS NULL AND dead_at IS NULL AND (next_attempt_at <= ?1 OR created_at > ?1)
                 ORDER BY id",
                outbox::ROW
            ),
        )?;
        let rows = stmt.query_map([ts(now)], outbox::outbox_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn outbox_backlog(&self) -> Result<u64> {
        Ok(self.conn.query_row_cached(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Marks a notification delivered. Its incident's reminder clock starts now: a page
    /// held back by an ntfy outage is followed by its first nag one interval after it
    /// reached the phone, not in the same run.
    pub fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_cached(
            "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL,
             attempt_started_at = NULL WHERE id = ?1",
            params![id, ts(now)],
        )?;
        tx.execute_cached(
            "UPDATE incidents SET last_notified_at = ?2
             WHERE id = (SELECT incident_id FROM outbox WHERE id = ?1)
               AND (last_notified_at IS NULL OR last_notified_at < ?2)",
            params![id, ts(now)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Incidents with a notification still waiting in the queue (not sent, not given
    /// up): no reminder is added behind one the phone has not had yet.
    pub fn incidents_with_queued_notifications(&self) -> Result<std::collections::HashSet<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT incident_id FROM outbox
             WHERE incident_id IS NOT NULL AND sent_at IS NULL AND dead_at IS NULL",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Takes notifications out of the queue without sending them (no ntfy configured),
    /// in one transaction (a commit each cost more than the update).
    pub fn mark_all_skipped(&self, ids: &[i64], why: &str, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for &id in ids {
            tx.execute_cached(
                "UPDATE outbox SET sent_at = ?2, last_error = ?3 WHERE id = ?1",
                params![id, ts(now), why],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn mark_failed(&self, id: i64, error: &str, next_attempt: DateTime<Utc>) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, error, ts(next_attempt)],
        )?;
        Ok(())
    }

    /// Records what the escalation rules decided for an incident not yet filed, with
    /// the severity they give it.
    pub fn escalate_incident(
        &self,
        id: i64,
        e: &crate::trigger::escalate::Escalation,
        severity: &str,
    ) -> Result<()> {
        self.conn.execute_cached(
            "UPDATE incidents SET escalation = ?2, severity = ?3 WHERE id = ?1",
            params![
                id,
                serde_json::to_string(e).expect("escalation serialises"),
                severity
            ],
        )?;
        Ok(())
    }

    /// How many incidents of a signature were opened before incident `id`.
    pub fn incidents_before(&self, sig: &str, id: i64) -> Result<u64> {
        Ok(self.conn.query_row_cached(
            "SELECT count(*) FROM incidents WHERE signature = ?1 AND id < ?2",
            params![sig, id],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Stores the investigator's diagnosis and moves the incident to stage `investigated`.
    pub fn set_diagnosis(
        &self,
        id: i64,
        d: &serde_json::Value,
        severity: &str,
        verdict: &str,
        title: &str,
    ) -> Result<()> {
        set_diagnosis(&self.conn, id, d, severity, verdict, title)
    }

    /// Hit counts and last hit per ignore rule id.
    pub fn ignore_hits(&self) -> Result<HashMap<String, (u64, DateTime<Utc>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT rule_id, hits, last_hit FROM ignore_hits")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get::<_, i64>(1)? as u64,
                    parse_ts(&r.get::<_, String>(2)?),
                ),
            ))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

/// Writes that land together: checkpoints with the incidents and notifications they led to.
pub struct Batch<'a> {
    tx: Transaction<'a>,
}

impl Batch<'_> {
    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }

    pub fn save_checkpoint(&self, cp: &Checkpoint, now: DateTime<Utc>) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO checkpoints (source, key, state, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (source, key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![cp.source, cp.key, cp.state, ts(now)],
        )?;
        Ok(())
    }

    /// A source renamed in the config: its checkpoints go to the new name (which has
    /// none), and the old name is forgotten.
    pub fn rename_source(&self, old: &str, new: &str) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE OR REPLACE checkpoints SET source = ?2 WHERE source = ?1",
            params![old, new],
        )?;
        self.tx.execute_cached(
            "DELETE FROM source_identities WHERE source = ?1",
            params![old],
        )?;
        Ok(())
    }

    /// Records the sources this run had in its config, with what each reads.
    pub fn record_source_identities(&self, sources: &[(&str, String)], run: i64) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO source_identities (source, identity, seen_run) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET identity = excluded.identity, seen_run = excluded.seen_run",
        )?;
        for (name, identity) in sources {
            stmt.execute(params![name, identity, run])?;
        }
        Ok(())
    }

    pub fn forget_checkpoint(&self, source: &str, key: &str) -> Result<()> {
        self.tx.execute_cached(
            "DELETE FROM checkpoints WHERE source = ?1 AND key = ?2",
            params![source, key],
        )?;
        Ok(())
    }

    pub fn save_templates(&self, records: &[TemplateRecord]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO templates (group_id, template, count, leaf) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (group_id) DO UPDATE SET template = excluded.template, count = excluded.count",
        )?;
        for r in records {
            stmt.execute(params![
                format!("{:016x}", r.group.0),
                r.template,
                r.count as i64,
                crate::signature::leaf_of(&r.template) as i64
            ])?;
        }
        Ok(())
    }

    /// Records a signature seen in this run: `first` is the log's time of its first
    /// record (bounded by the run's clock), `seen` the run's time. `last_seen` is when
    /// logwarden last saw it, so a log whose clock lags does not make it look old.
    #[allow(clippy::too_many_arguments)]
    pub fn record_signature(
        &self,
        sig: &str,
        template: &str,
        source: &str,
        level: &str,
        exception_type: Option<&str>,
        first: DateTime<Utc>,
        seen: DateTime<Utc>,
        count: u64,
    ) -> Result<()> {
        self.tx.execute_cached(
            "INSERT INTO signatures (signature, template, source, level, exception_type, first_seen, last_seen, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (signature) DO UPDATE SET template = excluded.template, level = excluded.level,
                 last_seen = excluded.last_seen, count = count + excluded.count",
            params![sig, template, source, level, exception_type, ts(first), ts(seen), count as i64],
        )?;
        Ok(())
    }

    pub fn insert_incident(&self, i: &NewIncident, now: DateTime<Utc>, run_id: i64) -> Result<i64> {
        self.tx.execute_cached(
            &format!(
                "INSERT INTO incidents (signature, kind, stage, status, severity, verdict, title, source, host, level,
                 template, exception_type, first_seen, last_seen, occurrences, samples, created_at, updated_at, run_id, seen_at,
                 level_no)
             VALUES (?1, ?2, 'new', 'open', ?3, 'unsure', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15,
                 {}, ?16)",
                seen_now("?14")
            ),
            params![
                i.signature,
                i.kind,
                i.severity,
                i.title,
                i.source,
                i.host,
                i.level,
                i.template,
                i.exception_type,
                ts(i.first_seen),
                ts(i.last_seen),
                i.occurrences as i64,
                serde_json::to_string(&i.samples).expect("strings serialise"),
                ts(now),
                run_id,
                i.level_no,
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Records what the escalation rules decided for an incident.
    pub fn set_escalation(&self, id: i64, e: &crate::trigger::escalate::Escalation) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE incidents SET escalation = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(e).expect("escalation serialises")],
        )?;
        Ok(())
    }

    /// Adds occurrences to an open incident. Its `seen_at` (where the quiet period
    /// that resolves it starts) is on the run clock (`clock.rs`), which never moves back
    /// and advances by the time that really passed: a run whose clock was behind leaves
    /// no stamp a year old, and one whose clock is ahead no stamp in the future.
    pub fn add_occurrences(
        &self,
        id: i64,
        count: u64,
        last_seen: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx.execute_cached(
            &format!(
                "UPDATE incidents SET occurrences = occurrences + ?2, last_seen = max(last_seen, ?3), updated_at = ?4,
                     seen_at = max(coalesce(seen_at, ''), {})
                 WHERE id = ?1",
                seen_now("?4")
            ),
            params![id, count as i64, ts(last_seen), ts(now)],
        )?;
        Ok(())
    }

    /// [`Store::set_diagnosis`], in this transaction.
    pub fn set_diagnosis(
        &self,
        id: i64,
        d: &serde_json::Value,
        severity: &str,
        verdict: &str,
        title: &str,
    ) -> Result<()> {
        set_diagnosis(&self.tx, id, d, severity, verdict, title)
    }

    /// Marks an incident filed (its file written) and queues its notification.
    pub fn file_incident(
        &self,
        id: i64,
        path: &str,
        note: &Notification,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE incidents SET stage = 'filed', file_path = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, path, ts(now)],
        )?;
        self.enqueue(Some(id), note, now)
    }

    pub fn enqueue(
        &self,
        incident: Option<i64>,
        n: &Notification,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let severity = match n.priority {
            5 => "critical",
            4 => "warning",
            _ => "info",
        };
        memory::enqueue_row(&self.tx, incident, "incident", severity, n, now).map(|_| ())
    }

    /// Adds the run's hits per rule id (with the rule's `created`): a count whose last
    /// hit predates the rule is another rule's that had the id, and starts over.
    pub fn record_ignore_hits(
        &self,
        hits: &HashMap<String, (u64, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO ignore_hits (rule_id, hits, last_hit) VALUES (?1, ?2, ?3)
             ON CONFLICT (rule_id) DO UPDATE SET
                 hits = CASE WHEN last_hit < ?4 THEN excluded.hits ELSE hits + excluded.hits END,
                 last_hit = excluded.last_hit",
        )?;
        for (rule, (n, created)) in hits {
            let created = created.map(ts).unwrap_or_default();
            stmt.execute(params![rule, *n as i64, ts(now), created])?;
        }
        Ok(())
    }

    /// Records a run and returns its id.
    pub fn insert_run(&self, r: &RunRow) -> Result<i64> {
        self.tx.execute_cached(
            "INSERT INTO runs (started_at, duration_ms, lines_read, events_kept, triggers, llm_calls, errors, error_text,
                 boot_id, since_boot, run_clock, expiry_floor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                r.started_at,
                r.duration_ms as i64,
                r.lines_read as i64,
                r.events_kept as i64,
                r.triggers as i64,
                r.llm_calls as i64,
                r.errors as i64,
                r.error_text,
                r.boot.as_ref().map(|b| b.id.as_str()),
                r.boot.as_ref().map(|b| b.since.min(i64::MAX as u64) as i64),
                r.clock.as_ref().map(|c| ts(c.run_clock)),
                r.clock.as_ref().map(|c| ts(c.floor)),
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn finish_run(&self, id: i64, r: &RunRow) -> Result<()> {
        self.tx.execute_cached(
            "UPDATE runs SET duration_ms = ?2, llm_calls = ?3, errors = ?4, error_text = ?5 WHERE id = ?1",
            params![id, r.duration_ms as i64, r.llm_calls as i64, r.errors as i64, r.error_text],
        )?;
        Ok(())
    }
}

/// A notification's content, as queued in the outbox.
#[derive(Debug, Clone)]
pub struct Notification {
    pub title: String,
    pub body: String,
    pub priority: u8,
    pub tags: String,
}

/// The store as the miner's template source (see [`crate::signature::Miner::lazy`]).
pub struct StoredTemplates<'a>(pub &'a Store);

impl crate::signature::Templates for StoredTemplates<'_> {
    fn leaf(&mut self, key: u64) -> std::result::Result<Vec<TemplateRecord>, String> {
        self.0.templates_in_leaf(key).map_err(|e| e.to_string())
    }
    fn id_taken(&mut self, id: GroupId) -> std::result::Result<bool, String> {
        self.0.template_exists(id).map_err(|e| e.to_string())
    }
}

/// Gives the templates stored before the current leaves were kept their leaf (a no-op
/// afterwards: the index answers at once). Their text is masked again first, as the
/// current masking would have made it, so that a message whose values the old masking
/// left as words (`'Ada Lovelace'`, `1 day, 3:02:11`) still meets its group.
fn give_templates_their_leaf(conn: &mut Connection) -> rusqlite::Result<()> {
    let todo: Vec<(i64, String)> = conn
        .prepare("SELECT rowid, template FROM templates WHERE leaf IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if todo.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare("UPDATE templates SET template = ?2, leaf = ?3 WHERE rowid = ?1")?;
        for (rowid, template) in todo {
            let template = crate::signature::remask_template(&template);
            let leaf = crate::signature::leaf_of(&template) as i64;
            stmt.execute(params![rowid, template, leaf])?;
        }
    }
    tx.commit()
}

fn set_diagnosis(
    conn: &Connection,
    id: i64,
    d: &serde_json::Value,
    severity: &str,
    verdict: &str,
    title: &str,
) -> Result<()> {
    conn.execute_cached(
        "UPDATE incidents SET diagnosis = ?2, severity = ?3, verdict = ?4, title = ?5, stage = 'investigated'
         WHERE id = ?1",
        params![id, d.to_string(), severity, verdict, title],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_sqlite_has_the_2025_security_fixes() {
        let (text, current) = sqlite_version();
        let parts: Vec<u32> = text.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts >= vec![3, 50, 2], "SQLite {text}");
        assert!(current, "SQLite {text}");
        // and the database actually runs on it
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let v: String = store
            .conn
            .query_row_cached("SELECT sqlite_version()", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, text);
    }

    /// The queries every run makes on open, acked and unfiled incidents are served by
    /// an index, never by walking a year of filed ones (SQLite plans without statistics).
    #[test]
    fn a_runs_incident_queries_do_not_walk_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        for (cond, index) in [
            ("status IN ('open', 'acked') AND stage = 'filed' AND kind IN ('new-error', 'several-sources') AND coalesce(seen_at, last_seen) < ?1", "incidents_by_status"),
            ("status = 'open' AND stage = 'filed'", "incidents_by_status"),
            ("stage IN ('new', 'investigated')", "incidents_unfiled"),
            ("stage = 'filed' AND first_seen >= ?1 AND first_seen < ?2", "incidents_filed_by_first_seen"),
            ("signature = ?1 AND status != 'resolved'", "incidents_by_signature"),
            ("page_name = ?1 AND id != ?2", "incidents_by_page_name"),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN SELECT id, samples FROM incidents WHERE {cond} ORDER BY id");
            let mut stmt = store.conn.prepare(&sql).unwrap();
            let args = vec![None::<String>; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert!(
                plan.iter().any(|p| p.starts_with("SEARCH incidents USING")
                    && p.contains(&format!(" INDEX {index} ")))
                    && !plan.iter().any(|p| p.starts_with("SCAN incidents")),
                "{cond}: {plan:?}"
            );
        }
        // Where a new line goes in a month's index: a walk back from one place.
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FILED_AFTER_IN_INDEX}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["2026-11-03T08:00:00Z", 5, "2026-11"], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(
            plan.iter()
                .any(|p| p.contains("INDEX incidents_filed_by_first_seen"))
                && !plan
                    .iter()
                    .any(|p| p.starts_with("SCAN incidents ") || p.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }

    /// A page's name is the last part of its recorded path, whatever folder it is in; an
    /// incident's own name is never "taken" from it.
    #[test]
    fn a_page_name_is_taken_by_the_incident_that_records_it_in_any_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let now = Utc::now();
        let b = store.batch().unwrap();
        let run = b.insert_run(&RunRow::default()).unwrap();
        for (n, path) in [
            (1, Some("/srv/incidents/2026-11-02-incident-disk-full.md")),
            (2, Some("/srv/incidents/archive/2026/x-ünï.md")),
            (3, Some("bare.md")),
            (4, None),
        ] {
            let id = b
                .insert_incident(
                    &NewIncident {
                        signature: format!("s{n}"),
                        kind: "new-error".into(),
                        severity: "info".into(),
                        title: "t".into(),
                        source: "app".into(),
                        host: "h".into(),
                        level: "ERROR".into(),
                        level_no: Some(40),
                        template: "t".into(),
                        exception_type: None,
                        first_seen: now,
                        last_seen: now,
                        occurrences: 1,
                        samples: vec![],
                    },
                    now,
                    run,
                )
                .unwrap();
            assert_eq!(id, n);
            if let Some(p) = path {
                b.tx.execute(
                    "UPDATE incidents SET file_path = ?2 WHERE id = ?1",
                    params![id, p],
                )
                .unwrap();
            }
        }
        b.commit().unwrap();
        let taken = |name: &str, id| store.page_name_taken(name, id).unwrap();
        assert!(taken("2026-11-02-incident-disk-full.md", 9));
        assert!(!taken("2026-11-02-incident-disk-full.md", 1));
        assert!(taken("x-ünï.md", 1));
        assert!(taken("bare.md", 1));
        assert!(!taken("incidents", 9));
        assert!(!taken("2026-11-02-incident-disk-full", 9));
        assert!(!taken("", 9));
    }

    #[test]
    fn migrates_and_round_trips_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path).unwrap();
        let now = Utc::now();
        let b = store.batch().unwrap();
        b.save_checkpoint(
            &Checkpoint {
                source: "app".into(),
                key: "/x".into(),
                state: "{}".into(),
            },
            now,
        )
        .unwrap();
        b.commit().unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.checkpoints("app").unwrap()["/x"].state, "{}");
    }

    /// A statement taken from the cache again and again with new values (an open
    /// incident by signature for each rule, a page by id) is parsed and planned once.
    #[test]
    fn cached_lookups_are_not_re_prepared_for_each_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let sql = "SELECT id FROM incidents WHERE signature = ?1 AND status != 'resolved' ORDER BY id DESC LIMIT 1";
        for k in ["a", "b", "c", "d", "a"] {
            let mut st = store.conn.prepare_cached(sql).unwrap();
            let _ = st
                .query_row([k], |r| r.get::<_, i64>(0))
                .optional()
                .unwrap();
        }
        let st = store.conn.prepare_cached(sql).unwrap();
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Store::open(&path).err().unwrap();
        assert!(err.to_string().contains("newer logwarden"), "{err}");
    }

    /// A run with the clock 30 days ahead leaves rows stamped then: they count in no
    /// window of now (hourly cap, digest, LLM budgets), and what it left queued is due.
    #[test]
    fn rows_stamped_after_now_count_in_no_window_and_are_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ahead = now + chrono::Duration::days(30);
        let hour_ago = now - chrono::Duration::hours(1);
        let n = Notification {
            title: "t".into(),
            body: "b".into(),
            priority: 5,
            tags: String::new(),
        };
        let queued = store
            .enqueue_kind(None, "incident", "critical", &n, ahead)
            .unwrap();
        let due: Vec<i64> = store
            .due_notifications(now)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(due, vec![queued], "queued under the clock ahead: due now");
        store.mark_sent(queued, ahead).unwrap();
        store
            .enqueue_kind(None, "digest", "info", &n, ahead)
            .unwrap();
        assert_eq!(store.sent_since(hour_ago, now).unwrap(), 0);
        assert!(!store.digest_since(hour_ago, now).unwrap());
        store
            .begin_llm_call(ahead, "claude-cli", None, "s", 0)
            .unwrap();
        let u = store.llm_usage(now).unwrap();
        assert_eq!((u.calls_hour, u.calls_day), (0, 0));
        // and rows of this hour still count
        let sent = store
            .enqueue_kind(None, "incident", "critical", &n, now)
            .unwrap();
        store.mark_sent(sent, now).unwrap();
        assert_eq!(store.sent_since(hour_ago, now).unwrap(), 1);
        store
            .begin_llm_call(now, "claude-cli", None, "s", 0)
            .unwrap();
        assert_eq!(store.llm_usage(now).unwrap().calls_hour, 1);
    }
}
