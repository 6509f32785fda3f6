//! Schema migrations: a list applied in order, in one transaction, recorded in
//! `PRAGMA user_version`. Never edit a migration that has shipped; add one.

use rusqlite::Connection;

use super::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    // 1: the watch cycle.
    "CREATE TABLE checkpoints (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (source, key)
    );
    CREATE TABLE templates (
        group_id TEXT PRIMARY KEY,
        template TEXT NOT NULL,
        count INTEGER NOT NULL
    );
    CREATE TABLE signatures (
        signature TEXT PRIMARY KEY,
        template TEXT NOT NULL,
        source TEXT NOT NULL,
        level TEXT NOT NULL,
        exception_type TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        count INTEGER NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        lines_read INTEGER NOT NULL,
        events_kept INTEGER NOT NULL,
        triggers INTEGER NOT NULL,
        llm_calls INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        error_text TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        signature TEXT NOT NULL,
        kind TEXT NOT NULL,
        stage TEXT NOT NULL CHECK (stage IN ('new', 'investigated', 'filed')),
        status TEXT NOT NULL CHECK (status IN ('open', 'acked', 'resolved')),
        severity TEXT NOT NULL,
        verdict TEXT NOT NULL,
        title TEXT NOT NULL,
        source TEXT NOT NULL,
        host TEXT NOT NULL,
        level TEXT NOT NULL,
        template TEXT NOT NULL,
        exception_type TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        occurrences INTEGER NOT NULL,
        samples TEXT NOT NULL,
        diagnosis TEXT,
        file_path TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id)
    );
    CREATE INDEX incidents_by_signature ON incidents (signature, status);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER REFERENCES incidents (id),
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        priority INTEGER NOT NULL,
        tags TEXT NOT NULL,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        sent_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);
    CREATE TABLE ignore_hits (
        rule_id TEXT PRIMARY KEY,
        hits INTEGER NOT NULL,
        last_hit TEXT NOT NULL
    );",
    // 2: LLM calls (budgets, breaker) and verdict memory.
    "CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        backend TEXT NOT NULL,
        incident_id INTEGER,
        signature TEXT NOT NULL,
        ok INTEGER,
        cost_usd REAL NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX llm_calls_by_time ON llm_calls (at);
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        signature TEXT NOT NULL,
        incident_id INTEGER,
        verdict TEXT NOT NULL,
        severity TEXT NOT NULL,
        level TEXT NOT NULL,
        level_no INTEGER NOT NULL,
        occurrences INTEGER NOT NULL,
        backend TEXT NOT NULL,
        title TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX verdicts_by_signature ON verdicts (signature);",
    // 3: incident memory: lifecycle, nag, spikes, notes, notification kinds, control
    // messages and small named values.
    "ALTER TABLE incidents ADD COLUMN acked_by TEXT;
    ALTER TABLE incidents ADD COLUMN acked_at TEXT;
    ALTER TABLE incidents ADD COLUMN resolved_at TEXT;
    ALTER TABLE incidents ADD COLUMN resolved_by TEXT;
    ALTER TABLE incidents ADD COLUMN regression_of INTEGER REFERENCES incidents (id);
    ALTER TABLE incidents ADD COLUMN nag_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN last_notified_at TEXT;
    ALTER TABLE incidents ADD COLUMN spike_notified INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE incidents ADD COLUMN runs_seen INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE outbox ADD COLUMN severity TEXT NOT NULL DEFAULT 'info';
    ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'incident';
    CREATE TABLE incident_notes (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        at TEXT NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE TABLE control_seen (
        token TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 4: metric series, raw samples, hourly rollups, script runs, and the
    // evidence of metric incidents.
    "CREATE TABLE metric_series (
        id INTEGER PRIMARY KEY,
        check_name TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        labels TEXT NOT NULL,
        help TEXT NOT NULL DEFAULT '',
        last_ts INTEGER NOT NULL,
        last_value REAL NOT NULL,
        UNIQUE (check_name, key)
    );
    CREATE TABLE metric_samples (
        series INTEGER NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
        ts INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series, ts)
    ) WITHOUT ROWID;
    CREATE INDEX metric_samples_by_ts ON metric_samples (ts);
    CREATE TABLE metric_rollups (
        series INTEGER NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
        hour INTEGER NOT NULL,
        count INTEGER NOT NULL,
        sum REAL NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        PRIMARY KEY (series, hour)
    ) WITHOUT ROWID;
    CREATE TABLE metric_checks (
        name TEXT PRIMARY KEY,
        last_run TEXT NOT NULL,
        last_ok TEXT,
        failures INTEGER NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        samples INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL
    );
    CREATE TABLE metric_alerts (
        incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
        check_name TEXT NOT NULL,
        series_key TEXT NOT NULL,
        evidence TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );",
    // 5: related incidents are looked up by their regression link.
    "CREATE INDEX incidents_by_regression ON incidents (regression_of);",
    // 6: notifications ntfy refuses for a reason of their own are counted and set
    // aside (dead letters) instead of blocking the queue; rows folded into a digest
    // (hourly cap, age limit) name it, so the digest can be rewritten as more join.
    "ALTER TABLE outbox ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN dead_at TEXT;
    ALTER TABLE outbox ADD COLUMN folded_into INTEGER REFERENCES outbox (id);",
    // 7: the miner fetches templates by leaf, so that a run's cost does not grow with
    // the history; rows from before are given their leaf when the store opens.
    "ALTER TABLE templates ADD COLUMN leaf INTEGER;
    CREATE INDEX templates_by_leaf ON templates (leaf);",
    // 8: when logwarden last saw an occurrence of an incident, by its own clock. The
    // quiet period that resolves an incident counts from it, not from the log's
    // times: a log whose clock lags would otherwise resolve (and re-page) at once.
    "ALTER TABLE incidents ADD COLUMN seen_at TEXT;
    UPDATE incidents SET seen_at = last_seen;",
    // 9: a publish whose answer was never recorded is in doubt (`attempt_started_at`
    // set): the next flush looks for its delivery id on the topic before resending.
    "ALTER TABLE outbox ADD COLUMN delivery_id TEXT;
    ALTER TABLE outbox ADD COLUMN attempt_started_at TEXT;",
    // 10: the incidents a run looks at (open, acked, not yet filed) are found by index,
    // not by reading a year of resolved ones.
    "CREATE INDEX incidents_by_status ON incidents (status, stage);
    CREATE INDEX incidents_by_stage ON incidents (stage);",
    // 11: what the escalation rules decided for an incident (JSON: the rules that
    // matched, the least severity, forced investigation, nag), kept for the filing
    // that may happen in a later run and for the reminders.
    "ALTER TABLE incidents ADD COLUMN escalation TEXT;",
    // 12: the estimated size of each prompt sent, for the run summary and `status`.
    "ALTER TABLE llm_calls ADD COLUMN prompt_tokens INTEGER;",
    // 13: an index on `stage` alone led SQLite's planner (which has no statistics)
    // to walk every filed incident in id order for queries on open ones; the few
    // unfiled ones get a partial index instead. The month files of the incidents
    // index list a month's incidents by their first occurrence.
    "DROP INDEX incidents_by_stage;
    CREATE INDEX incidents_unfiled ON incidents (stage) WHERE stage IN ('new', 'investigated');
    CREATE INDEX incidents_filed_by_first_seen ON incidents (first_seen) WHERE stage = 'filed';",
    // 14: allow-listed repair actions: each proposal for an incident, its approval or
    // rejection (who, when), its execution (argv, exit code, output, duration) and its
    // verification.
    "CREATE TABLE action_requests (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        action_id TEXT NOT NULL,
        params TEXT NOT NULL,
        reason TEXT NOT NULL,
        proposed_by TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        decided_by TEXT,
        decided_at TEXT,
        argv TEXT,
        started_at TEXT,
        exit_code INTEGER,
        output TEXT,
        duration_ms INTEGER,
        occurrences_at_start INTEGER,
        quiet_runs INTEGER NOT NULL DEFAULT 0,
        verified_at TEXT,
        verify_result TEXT
    );
    CREATE INDEX action_requests_by_status ON action_requests (status);
    CREATE INDEX action_requests_by_incident ON action_requests (incident_id);
    CREATE INDEX action_requests_by_action ON action_requests (action_id, started_at);",
    // 15: a metric rule's detector state per series, so that a run feeds it only the
    // samples it has not seen instead of replaying the history. `hash` names the code
    // and settings that made it: a state from another build or rule is rebuilt once
    // from the stored samples. `meta` (JSON) is what the rule's last finding needs
    // without loading the state (the last scores, the range of values seen). The state
    // (megabytes) has a table of its own: moving the scores on rewrites a small row.
    "CREATE TABLE metric_detectors (
        series INTEGER NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        hash TEXT NOT NULL,
        last_ts INTEGER NOT NULL,
        meta TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (series, rule)
    );
    CREATE TABLE metric_detector_states (
        series INTEGER NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        state BLOB NOT NULL,
        UNIQUE (series, rule)
    );",
    // 16: the miner's leaves no longer depend on the token count, and masking takes in
    // values of several words (quoted strings, durations): every stored template is
    // masked again and given its new leaf when the store opens, keeping its group id.
    "UPDATE templates SET leaf = NULL;",
    // 17: the parts of a detector state that a sample seldom touches (a calibrator's
    // sorted chunks and arrival-order pages, the seasonal buckets), a row per page, so
    // that a run reads and writes only the pages its samples touch. States stored
    // whole before are rebuilt once (their code hash no longer matches); emptying
    // them here frees their megabytes at once.
    "CREATE TABLE metric_detector_pages (
        series INTEGER NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        page INTEGER NOT NULL,
        data BLOB NOT NULL,
        UNIQUE (series, rule, page)
    );
    DELETE FROM metric_detector_states;",
    // 18: the latest start of any run, by index: an incident's quiet period counts from
    // it, so a run whose clock was set back (a VPS booted with a stale clock) never
    // makes an incident it saw look a year quiet once the clock is right again.
    "CREATE INDEX runs_by_started_at ON runs (started_at);",
    // 19: each run's boot and time since boot, its run clock (quiet periods are measured
    // on it: it advances by the time that really passed) and its expiry floor (a clock
    // set back revives no expired rule); see `clock.rs`.
    "ALTER TABLE runs ADD COLUMN boot_id TEXT;
    ALTER TABLE runs ADD COLUMN since_boot INTEGER;
    ALTER TABLE runs ADD COLUMN run_clock TEXT;
    ALTER TABLE runs ADD COLUMN expiry_floor TEXT;",
    // 20: every stored template is given its leaf again. A build of 2026-12-02 keyed
    // leaves on one word (reverted before release: it cost a third of the reading speed
    // on a log of many error kinds); a store it opened is put back to two-word leaves.
    "UPDATE templates SET leaf = NULL;",
    // 21: each page's file name, by index: a new page's name is checked against the
    // names recorded for other incidents, and a year of incidents must not make that a
    // scan. Computed from `file_path` (the part after its last `/`), so no writer can
    // forget it.
    "ALTER TABLE incidents ADD COLUMN page_name TEXT GENERATED ALWAYS AS
        (substr(file_path, length(rtrim(file_path, replace(file_path, '/', ''))) + 1)) VIRTUAL;
    CREATE INDEX incidents_by_page_name ON incidents (page_name);",
    // 22: the level number of an incident's most severe record, as read (a loguru JSON
    // record carries its own: a custom level's name alone does not say it). NULL for
    // incidents from before, whose number is looked up by name.
    "ALTER TABLE incidents ADD COLUMN level_no INTEGER;",
    // 23: an incident's level before each rise, and when it rose: a Mute button on a
    // notification sent before the rise mutes the level that notification was about.
    "CREATE TABLE incident_levels (
        incident_id INTEGER NOT NULL,
        changed_at TEXT NOT NULL,
        level_before TEXT NOT NULL,
        level_no_before INTEGER NOT NULL
    );
    CREATE INDEX incident_levels_by_incident ON incident_levels (incident_id, changed_at);",
    // 24: the severity before each rise too: an Ack button on a notification sent at a
    // lower severity must not acknowledge the higher one. NULL for rises recorded before.
    "ALTER TABLE incident_levels ADD COLUMN severity_before TEXT;",
    // 25: what each configured source reads (`SourceConfig::identity`) and the last run
    // that had it in its config: a source renamed between two runs is found by its
    // identity and carries on from its old name's checkpoints.
    "CREATE TABLE source_identities (
        source TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        seen_run INTEGER NOT NULL
    );",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], refusing one from a newer logwarden.
pub fn apply(conn: &mut Connection, path: &str) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
