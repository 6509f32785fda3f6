//! Log tables in an app's SQLite database, read incrementally by a cursor column
//! (`rowid` by default). The database is opened read-only and never written to, also
//! in WAL mode when logwarden may not write to its folder. While the app holds a lock
//! logwarden waits up to `busy_timeout`, then leaves the rows for the next run.
//!
//! `from = "end"` skips the rows already there on the first run. A database or table
//! that does not exist yet has none: every row it gets is read. One locked through the
//! whole first run is read from the first run's time on, by the time column (without
//! one, from the end as the next run finds it, said in a warning).
//!
//! Rowids are not stable: an emptied or recreated table starts again at 1, a purge of the
//! newest rows hands their ids out again, a VACUUM renumbers a table without an INTEGER
//! PRIMARY KEY. Each run finds the last row read again first (see `Last`); when it is
//! gone or another row has its cursor, the table is read again from its start, from that
//! row's time on (all of it without a time, said).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use chrono::{DateTime, Utc};

use super::file::{ReadReport, SourceError};
use super::format::{parse_time_text, time_from_number};
use super::loguru::{exception_type, split_traceback};
use super::{Checkpoint, Event, Level};
use crate::config::{SourceConfig, SqliteColumns, SqliteSource, StartFrom};

/// The names of the presets for common Python logging-to-SQLite handlers.
pub const PRESETS: &[&str] = &["logs", "log"];

/// A preset's table and columns.
pub fn preset(name: &str) -> Option<(&'static str, SqliteColumns)> {
    let s = |v: &str| Some(v.to_string());
    match name {
        // logs(id, created_at, level, level_name, logger_name, message, function_name,
        //      module, filename, line_number, exception, stack_trace, extra)
        "logs" => Some((
            "logs",
            SqliteColumns {
                cursor: "id".into(),
                time: s("created_at"),
                level: s("level_name"),
                message: "message".into(),
                logger: s("logger_name"),
                exception: s("exception"),
                traceback: s("stack_trace"),
                extra: s("extra"),
            },
        )),
        // log(Created, Name, LogLevel, LogLevelName, Message, Module, FuncName, LineNo, Exception)
        "log" => Some((
            "log",
            SqliteColumns {
                cursor: "rowid".into(),
                time: s("Created"),
                level: s("LogLevel"),
                message: "Message".into(),
                logger: s("Name"),
                exception: s("Exception"),
                traceback: None,
                extra: None,
            },
        )),
        _ => None,
    }
}

/// The query reading a table's new rows; result columns carry the canonical names
/// (`cursor`, `time`, `level`, `message`, …).
pub fn query_for(table: &str, c: &SqliteColumns) -> String {
    let mut cols = vec![
        format!("{} AS cursor", quote(&c.cursor)),
        format!("{} AS message", quote(&c.message)),
    ];
    for (name, col) in [
        ("time", &c.time),
        ("level", &c.level),
        ("logger", &c.logger),
        ("exception", &c.exception),
        ("traceback", &c.traceback),
        ("extra", &c.extra),
    ] {
        if let Some(col) = col {
            cols.push(format!("{} AS {name}", quote(col)));
        }
    }
    format!(
        "SELECT {} FROM {} WHERE {} > :cursor ORDER BY {}",
        cols.join(", "),
        quote(table),
        quote(&c.cursor),
        quote(&c.cursor)
    )
}

/// The result column names of a generated query (see [`query_for`]).
pub fn canonical(c: &SqliteColumns) -> SqliteColumns {
    let k = |o: &Option<String>, n: &str| o.as_ref().map(|_| n.to_string());
    SqliteColumns {
        cursor: "cursor".into(),
        time: k(&c.time, "time"),
        level: k(&c.level, "level"),
        message: "message".into(),
        logger: k(&c.logger, "logger"),
        exception: k(&c.exception, "exception"),
        traceback: k(&c.traceback, "traceback"),
        extra: k(&c.extra, "extra"),
    }
}

/// Opens the app's database read-only. A WAL database whose `-shm` or `-wal` file is
/// gone (the app closed it) is opened as immutable: even a read-only connection would create
/// `-wal` and `-shm` next to it, owned by logwarden, and an app that may not write them
/// can no longer write its own database. Without a `-wal` file the content is
/// complete; with one but no `-shm` (the app died), the rows still in the WAL are read
/// once the app has reopened it, since the cursor has not passed them. A database that
/// cannot be opened otherwise is opened as immutable, unless a hot `-journal` is next to
/// it: then it waits, like a lock, for the app to roll the journal back.
fn open(
    path: &Path,
    busy: std::time::Duration,
) -> Result<(Connection, Option<String>), (String, bool)> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if !path.exists() {
        return Err((format!("{}: no such database", path.display()), false));
    }
    // Without its `-wal` the content is whole, whether or not a `-shm` was left (an app
    // that died between deleting the two): opened otherwise, it would get a `-wal` made.
    let beside = |ext: &str| Path::new(&format!("{}-{ext}", path.display())).exists();
    if is_wal_database(path) && !(beside("shm") && beside("wal")) {
        return open_immutable(path, flags)
            .map(|c| (c, None))
            .map_err(|e| (e, false));
    }
    let first = Connection::open_with_flags(path, flags).and_then(|c| {
        c.busy_timeout(busy)?;
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(c)
    });
    match first {
        Ok(c) => Ok((c, None)),
        Err(e) => {
            let wal = format!("{}-wal", path.display());
            if Path::new(&wal).exists() || is_busy(&e) {
                return Err((describe(path, &e), is_busy(&e)));
            }
            if hot_journal(path) {
                return Err((
                    format!(
                        "{}: the app's last transaction was interrupted ({e}); read next run \
                         once the app has recovered the database",
                        path.display()
                    ),
                    true,
                ));
            }
            let c = open_immutable(path, flags).map_err(|e| (e, false))?;
            Ok((
                c,
                Some(format!(
                    "{}: opened as immutable ({e}); no -wal file, so the content is complete",
                    path.display()
                )),
            ))
        }
    }
}

fn open_immutable(path: &Path, flags: OpenFlags) -> Result<Connection, String> {
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let c = Connection::open_with_flags(&uri, flags).map_err(|e| describe(path, &e))?;
    c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| describe(path, &e))?;
    Ok(c)
}

/// Whether a rollback journal is left next to the database: the app's last transaction
/// was interrupted. Only the app may roll it back (the open is read-only), and read as
/// immutable the database holds the rows of that transaction, which never existed.
fn hot_journal(path: &Path) -> bool {
    std::fs::metadata(format!("{}-journal", path.display())).is_ok_and(|m| m.len() > 0)
}

/// Whether the file's header says WAL mode (format versions 2 at offsets 18 and 19).
fn is_wal_database(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head.starts_with(b"SQLite format 3\0")
        && head[18] == 2
        && head[19] == 2
}

fn uri_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn describe(path: &Path, e: &rusqlite::Error) -> String {
    if is_busy(e) {
        format!(
            "{}: the app holds a lock ({e}); the rows will be read next run",
            path.display()
        )
    } else if e.to_string().starts_with("no such column") {
        // (SQLite's text goes on with a hint about string quotes and the whole query)
        let text = e.to_string();
        let what = text.split(" - ").next().unwrap_or(&text);
        format!(
            "{}: {what} (did the app rename or drop it? the source's `columns` or `query` must name the table's columns as they are now); its rows are read once it is fixed",
            path.display()
        )
    } else {
        format!("{}: {e}", path.display())
    }
}

/// Reads the rows after the checkpoint's cursor.
pub fn read(
    cfg: &SourceConfig,
    src: &SqliteSource,
    prev: Option<&Checkpoint>,
    all_levels: bool,
    now: DateTime<Utc>,
    sink: &mut dyn FnMut(Event),
) -> Result<ReadReport, SourceError> {
    let err = |m: String| SourceError::Other(m);
    let mut report = ReadReport::default();
    if let Some(real) = super::leads_to_own(&src.path, &super::resolve_own(&src.own)) {
        return Err(err(format!(
            "{}: leads to {}, which is logwarden's own (its state, pages, config or rules): not read",
            src.path.display(),
            real.display()
        )));
    }
    let key = "cursor".to_string();
    let first_run = prev.is_none();
    let checkpoint = |state: Value| Checkpoint {
        source: cfg.name.clone(),
        key: key.clone(),
        state: state.to_string(),
    };
    let from_end = first_run && cfg.from == StartFrom::End;
    let state: Option<Value> = prev.and_then(|c| serde_json::from_str::<Value>(&c.state).ok());
    let never_read = state
        .as_ref()
        .is_none_or(|v| v.get("cursor").is_none_or(Value::is_null));
    // Not created yet (logwarden installed before the app first ran): said, not an
    // error, until a row has been read from it.
    if never_read && !src.path.exists() {
        report.warnings.push(format!(
            "{}: does not exist yet; it will be read from its first row when it appears",
            src.path.display()
        ));
        let mut keep = state.unwrap_or_else(|| serde_json::json!({ "cursor": null }));
        if keep.get("cursor").is_none() {
            keep = serde_json::json!({ "cursor": null });
        }
        report.checkpoints.push(checkpoint(keep));
        return Ok(report);
    }
    let (conn, note) = match open(&src.path, src.busy_timeout) {
        Ok(c) => c,
        Err((e, true)) if from_end => return Ok(locked_first_run(report, &cfg.name, &e, now)),
        Err((e, _)) => return Err(err(e)),
    };
    // A double-quoted name SQLite cannot find is otherwise read as a string: a column
    // the app renamed would give its old name as every row's message or level.
    for dqs in [
        DbConfig::SQLITE_DBCONFIG_DQS_DML,
        DbConfig::SQLITE_DBCONFIG_DQS_DDL,
    ] {
        conn.set_db_config(dqs, false)
            .map_err(|e| err(describe(&src.path, &e)))?;
    }
    report.warnings.extend(note);
    let cursor: Value = state
        .as_ref()
        .and_then(|v| v.get("cursor").cloned())
        .unwrap_or(Value::Null);
    // The first run found the database locked: the rows it would have skipped are
    // those older than its time.
    let since: Option<DateTime<Utc>> = state
        .as_ref()
        .filter(|_| cursor.is_null())
        .and_then(|v| v.get("since")?.as_str()?.parse().ok());
    let to_sql = |v: &Value| -> rusqlite::types::Value {
        match v {
            Value::Number(n) if n.is_i64() => rusqlite::types::Value::Integer(n.as_i64().unwrap()),
            Value::Number(n) => rusqlite::types::Value::Real(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => rusqlite::types::Value::Text(s.clone()),
            _ => rusqlite::types::Value::Integer(i64::MIN),
        }
    };
    let cols = &src.columns;
    if from_end || (since.is_some() && cols.time.is_none()) {
        let sql = format!("SELECT max({}) FROM ({})", quote(&cols.cursor), src.query);
        let max = match conn.query_row(&sql, rusqlite::named_params! {":cursor": i64::MIN}, |r| {
            Ok(json_of(r.get_ref(0)?))
        }) {
            Ok(max) => max,
            // Not created yet: every row it gets is new.
            Err(e) if from_end && no_such_table(&e) => {
                report.warnings.push(format!(
                    "{}: {e}; the table will be read from its first row when it appears",
                    src.path.display()
                ));
                Value::Null
            }
            Err(e) if from_end && is_busy(&e) => {
                let e = describe(&src.path, &e);
                return Ok(locked_first_run(report, &cfg.name, &e, now));
            }
            Err(e) => return Err(err(describe(&src.path, &e))),
        };
        if let Some(since) = since {
            report.warnings.push(format!(
                "{}: locked through the first run ({}), and its rows have no time column to tell \
                 which came after it: read from its end as it is now",
                src.path.display(),
                crate::store::ts(since)
            ));
        }
        report
            .checkpoints
            .push(checkpoint(serde_json::json!({ "cursor": max })));
        return Ok(report);
    }
    let min_level = if all_levels { 0 } else { cfg.min_level.no };
    let origin = src
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tz = &cfg.timezone;
    let old = state.as_ref().filter(|_| !cursor.is_null());
    let marked = old.is_some_and(|v| v.get("mark").is_some());
    // The last row read, found again before the rows after it are trusted (see
    // [`Last`]). A checkpoint from before the mark has only its cursor: an integer
    // one is found again from the cursor below it; another is read on unchecked.
    let mut check = old.filter(|_| marked || cursor.is_i64()).map(|v| Last {
        cursor: cursor.clone(),
        mark: v
            .get("mark")
            .and_then(Value::as_str)
            .and_then(|m| u64::from_str_radix(m, 16).ok()),
        time: v
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok()),
        before: v
            .get("before")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| {
                        let mark = r.get(1)?.as_str()?;
                        Some((r.get(0)?.clone(), u64::from_str_radix(mark, 16).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    });
    let mut start = match (old, cursor.as_i64()) {
        (Some(v), _) if marked => v.get("prev").cloned().unwrap_or(Value::Null),
        (_, Some(n)) if n > i64::MIN => Value::from(n - 1),
        _ => cursor.clone(),
    };
    let mut since = since;
    // The checkpoint when no row is read.
    let mut keep = match (since, old) {
        (Some(since), _) => serde_json::json!({ "cursor": null, "since": crate::store::ts(since) }),
        (None, Some(v)) => v.clone(),
        (None, None) => serde_json::json!({ "cursor": null }),
    };
    let mut tail = Tail::from(start.clone());
    let result: Result<(), rusqlite::Error> = (|| {
        let mut stmt = conn.prepare(&src.query)?;
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let idx = |n: &Option<String>| {
            n.as_ref()
                .and_then(|n| names.iter().position(|c| c.eq_ignore_ascii_case(n)))
        };
        let i_cursor = names
            .iter()
            .position(|c| c.eq_ignore_ascii_case(&cols.cursor));
        let i_message = names
            .iter()
            .position(|c| c.eq_ignore_ascii_case(&cols.message));
        let (Some(i_cursor), Some(i_message)) = (i_cursor, i_message) else {
            return Err(rusqlite::Error::InvalidColumnName(format!(
                "the query must return the cursor column `{}` and the message column `{}` (it returns: {})",
                cols.cursor,
                cols.message,
                names.join(", ")
            )));
        };
        let (i_time, i_level, i_logger, i_exc, i_tb, i_extra) = (
            idx(&cols.time),
            idx(&cols.level),
            idx(&cols.logger),
            idx(&cols.exception),
            idx(&cols.traceback),
            idx(&cols.extra),
        );
        // The row's event, None below the level or before `since`.
        let event = |row: &rusqlite::Row,
                     cursor: &Value,
                     time: &Value,
                     since: Option<DateTime<Utc>>|
         -> Result<Option<Event>, rusqlite::Error> {
            let text = |i: Option<usize>| -> Option<String> {
                let v = row.get_ref(i?).ok()?;
                match v {
                    ValueRef::Null => None,
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                    ValueRef::Integer(n) => Some(n.to_string()),
                    ValueRef::Real(f) => Some(f.to_string()),
                }
            };
            let (level, level_note) = match i_level {
                Some(i) => match level_of(row.get_ref(i)?, &cfg.levels) {
                    Ok(level) => (level, None),
                    // Unclassifiable: kept as an error rather than guessed away.
                    Err(what) => (
                        Level {
                            name: "ERROR".into(),
                            no: 40,
                        },
                        Some(format!("level unreadable: {what}; kept as ERROR")),
                    ),
                },
                None => (Level::named("INFO", &cfg.levels), None),
            };
            if level.no < min_level {
                return Ok(None);
            }
            let time = time_of(time, tz);
            if let (Some(since), Some(t)) = (since, time) {
                if t < since {
                    return Ok(None);
                }
            }
            let message = text(Some(i_message)).unwrap_or_default();
            let exc = text(i_exc).filter(|s| !s.trim().is_empty());
            let tb = text(i_tb).filter(|s| !s.trim().is_empty());
            let mut e = Event::new(
                &cfg.name,
                format!("{origin}#{}", cursor),
                level,
                message.clone(),
            );
            e.time = time;
            e.logger = text(i_logger);
            let long: Vec<String> = [&exc, &tb]
                .into_iter()
                .flatten()
                .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
                .collect();
            let (_, traceback, exc_line) = split_traceback(&long);
            e.traceback = traceback;
            e.exception_line = exc_line.or_else(|| {
                exc.as_ref()
                    .map(|x| x.lines().last().unwrap_or("").trim().to_string())
            });
            e.exception_type = e.exception_line.as_deref().map(exception_type);
            let mut raw = message;
            if let Some(note) = level_note {
                raw = format!("[{note}]\n{raw}");
                e.fields.insert("logwarden_note".into(), note);
            }
            if !long.is_empty() {
                raw.push('\n');
                raw.push_str(&long.join("\n"));
            }
            if let Some(x) = text(i_extra) {
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&x) {
                    let fields = map
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                k,
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            )
                        })
                        .collect::<BTreeMap<_, _>>();
                    e.fields.extend(fields);
                }
                raw.push_str(&format!("\nextra: {x}"));
            }
            e.raw = super::loguru::cut_raw(&raw).to_string();
            Ok(Some(e))
        };
        loop {
            let mut rows = stmt.query(rusqlite::named_params! {":cursor": to_sql(&start)})?;
            // Rows between the checkpoint's start and the last read: those it kept
            // (`before`), and new ones (written out of order, read once the last read is
            // found where it was).
            let mut held: Vec<(RowMark, Option<Option<Event>>)> = Vec::new();
            while let Some(row) = rows.next()? {
                let time = match i_time {
                    Some(i) => json_of(row.get_ref(i)?),
                    None => Value::Null,
                };
                let mark = RowMark {
                    cursor: json_of(row.get_ref(i_cursor)?),
                    fp: fingerprint(
                        row.get_ref(i_message)?,
                        i_time.map(|i| row.get_ref(i)).transpose()?,
                    ),
                    time,
                };
                if let Some(last) = &check {
                    let found = match order(&mark.cursor, &last.cursor) {
                        std::cmp::Ordering::Less => {
                            match last
                                .before
                                .iter()
                                .find(|(c, _)| order(c, &mark.cursor).is_eq())
                            {
                                Some((_, fp)) if *fp == mark.fp => held.push((mark, None)),
                                // A row read before under the same cursor is another row
                                // now: the table was refilled or renumbered under it.
                                Some(_) => break,
                                None => {
                                    let e = event(row, &mark.cursor, &mark.time, since)?;
                                    held.push((mark, Some(e)));
                                }
                            }
                            continue;
                        }
                        std::cmp::Ordering::Equal if last.mark.is_none_or(|m| m == mark.fp) => true,
                        // Another row under the last read's cursor: renumbered.
                        std::cmp::Ordering::Equal => break,
                        // The last read was deleted; the rows after it are new.
                        std::cmp::Ordering::Greater => false,
                    };
                    check = None;
                    for (m, e) in held.drain(..) {
                        tail.advance(m);
                        if let Some(e) = e {
                            report.lines += 1;
                            sink_opt(sink, e);
                        }
                    }
                    if found {
                        tail.advance(mark);
                        continue;
                    }
                }
                report.lines += 1;
                let e = event(row, &mark.cursor, &mark.time, since)?;
                tail.advance(mark);
                sink_opt(sink, e);
            }
            // Still looking for the last row read: neither it nor any row after it is
            // there, or another row has its cursor. The table was emptied, recreated,
            // purged of its newest rows or renumbered (VACUUM of a table without an
            // INTEGER PRIMARY KEY): the rows after the last read may have any cursor,
            // so it is read again from its start, from the last read's time on.
            let Some(last) = check.take() else {
                return Ok(());
            };
            since = last.time.filter(|_| cols.time.is_some());
            report.warnings.push(match since {
                Some(t) => format!(
                    "{}: the last row read (cursor {}) is gone or another row has its cursor \
                     (the table was emptied, recreated, purged or renumbered): read again from \
                     its start, from that row's time ({}) on",
                    src.path.display(),
                    last.cursor,
                    crate::store::ts(t)
                ),
                None => format!(
                    "{}: the last row read (cursor {}) is gone or another row has its cursor \
                     (the table was emptied, recreated, purged or renumbered): read again from \
                     its start, all of it: without the time of the last row read, the rows \
                     already read cannot be told apart",
                    src.path.display(),
                    last.cursor
                ),
            });
            start = Value::Null;
            tail = Tail::from(Value::Null);
            keep = match since {
                Some(t) => serde_json::json!({ "cursor": null, "since": crate::store::ts(t) }),
                None => serde_json::json!({ "cursor": null }),
            };
        }
    })();
    if let Err(e) = result {
        // Rows handed over before the failure are committed with the cursor reached.
        if report.lines == 0 && never_read && no_such_table(&e) {
            report.warnings.push(format!(
                "{}: {e}; the table will be read from its first row when it appears",
                src.path.display()
            ));
        } else if report.lines == 0 {
            return Err(err(describe(&src.path, &e)));
        } else {
            report.warnings.push(format!(
                "{} (stopped after {} rows; the rest next run)",
                describe(&src.path, &e),
                report.lines
            ));
        }
    }
    let state = match tail.rows.split_last() {
        Some((last, before)) => serde_json::json!({
            "cursor": last.cursor,
            "prev": tail.start,
            "mark": format!("{:016x}", last.fp),
            "time": time_of(&last.time, tz).map(crate::store::ts),
            "before": before
                .iter()
                .map(|r| serde_json::json!([r.cursor, format!("{:016x}", r.fp)]))
                .collect::<Vec<_>>(),
        }),
        None => keep,
    };
    report.checkpoints.push(checkpoint(state));
    Ok(report)
}

fn sink_opt(sink: &mut dyn FnMut(Event), e: Option<Event>) {
    if let Some(e) = e {
        sink(e);
    }
}

/// The last row a run read, as its checkpoint keeps it: its cursor, a fingerprint of
/// its message and time text (`mark`) and its time, and the same of the few rows read
/// before it (`before`). The next run starts its query at the cursor of the row before
/// those (`prev`), so that its first rows back are these: found with their marks, the
/// rows after the last are new; missing, the rows were deleted; under their cursor with
/// another mark, the table was refilled or renumbered under the cursor. One row alone
/// is a weak witness where rows have no time (a refilled table's row under the last
/// read's id says `worker ready` as the old one did); a run of them is a strong one.
struct Last {
    cursor: Value,
    mark: Option<u64>,
    time: Option<DateTime<Utc>>,
    before: Vec<(Value, u64)>,
}

/// How many rows read before the last one a checkpoint keeps (see [`Last`]).
const KNOWN_BEFORE: usize = 8;

/// A row as a checkpoint may keep it (see [`Last`]); `time` as the column holds it.
struct RowMark {
    cursor: Value,
    fp: u64,
    time: Value,
}

/// The last rows read (the last one and up to [`KNOWN_BEFORE`] before it) and the
/// cursor before them: the checkpoint's `prev`.
struct Tail {
    start: Value,
    rows: Vec<RowMark>,
}

impl Tail {
    fn from(start: Value) -> Tail {
        Tail {
            start,
            rows: Vec::new(),
        }
    }

    fn advance(&mut self, row: RowMark) {
        self.rows.push(row);
        if self.rows.len() > KNOWN_BEFORE + 1 {
            self.start = self.rows.remove(0).cursor;
        }
    }
}

/// A short fingerprint of a row's message and time, to know it again.
fn fingerprint(message: ValueRef, time: Option<ValueRef>) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for v in [Some(message), time].into_iter().flatten() {
        match v {
            ValueRef::Null => {}
            ValueRef::Integer(n) => h.update(&n.to_le_bytes()),
            ValueRef::Real(f) => h.update(&f.to_le_bytes()),
            ValueRef::Text(t) | ValueRef::Blob(t) => h.update(t),
        }
        h.update(&[0x1f]);
    }
    h.digest()
}

/// A time column's value (as [`json_of`] gives it) as a time.
fn time_of(v: &Value, tz: &crate::source::zone::Zone) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => time_from_number(n.as_f64()?),
        Value::String(s) => parse_time_text(s, None, tz),
        _ => None,
    }
}

/// Cursor values in SQLite's order: NULL, then numbers, then text.
fn order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Number(_) => 1,
        _ => 2,
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A first run from the end that found the database locked: it says so, and leaves the
/// next run to read the rows from its time on.
fn locked_first_run(
    mut report: ReadReport,
    source: &str,
    e: &str,
    now: DateTime<Utc>,
) -> ReadReport {
    report.warnings.push(format!(
        "{e} (first run, from = \"end\": the rows from {} on are read when it is free)",
        crate::store::ts(now)
    ));
    report.checkpoints.push(Checkpoint {
        source: source.to_string(),
        key: "cursor".into(),
        state: serde_json::json!({ "cursor": null, "since": crate::store::ts(now) }).to_string(),
    });
    report
}

fn no_such_table(e: &rusqlite::Error) -> bool {
    e.to_string().starts_with("no such table")
}

fn quote(col: &str) -> String {
    format!("\"{}\"", col.replace('"', "\"\""))
}

fn json_of(v: ValueRef) -> Value {
    match v {
        ValueRef::Integer(n) => Value::from(n),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::from(String::from_utf8_lossy(t).into_owned())
        }
        ValueRef::Null => Value::Null,
    }
}

/// A row's level: a name (case-insensitive: DEBUG, INFO, WARNING/WARN, ERROR,
/// CRITICAL/FATAL, … and the source's custom `levels`) or a number on loguru's and
/// Python's scale (given as a number or as text). What cannot be classified (NULL, a
/// BLOB, an empty or unknown name, a negative or not-a-number value) is `Err` with a
/// description of what was found.
fn level_of(v: ValueRef, custom: &BTreeMap<String, u32>) -> Result<Level, String> {
    let number = |n: f64, shown: &dyn std::fmt::Display| -> Result<Level, String> {
        if n.is_nan() || n < 0.0 {
            return Err(format!("{shown}"));
        }
        // Above u32 is still "more severe than CRITICAL".
        Ok(Level::of_number(n.min(u32::MAX as f64) as u32))
    };
    match v {
        ValueRef::Null => Err("NULL".into()),
        ValueRef::Blob(b) => Err(format!("BLOB of {} bytes", b.len())),
        ValueRef::Integer(n) => number(n as f64, &n),
        ValueRef::Real(f) => number(f, &f),
        ValueRef::Text(t) => {
            let t = String::from_utf8_lossy(t);
            let name = t.trim();
            if name.is_empty() {
                return Err("empty text".into());
            }
            if let Ok(n) = name.parse::<i64>() {
                return number(n as f64, &format!("`{name}`"));
            }
            if let Ok(f) = name.parse::<f64>() {
                if f.is_finite() {
                    return number(f, &format!("`{name}`"));
                }
            }
            match Level::known_number(name, custom) {
                Some(no) => Ok(Level {
                    name: name.to_string(),
                    no,
                }),
                None => Err(format!(
                    "unknown name `{}`",
                    name.chars().take(40).collect::<String>()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_by_name_number_and_unreadable() {
        let custom: BTreeMap<String, u32> = [("NOTICE".to_string(), 35)].into();
        let ok = |v: ValueRef| level_of(v, &custom).map(|l| l.no);
        assert_eq!(ok(ValueRef::Text(b"warn")), Ok(30));
        assert_eq!(ok(ValueRef::Text(b" Fatal ")), Ok(50));
        assert_eq!(ok(ValueRef::Text(b"notice")), Ok(35));
        assert_eq!(ok(ValueRef::Text(b"40")), Ok(40));
        assert_eq!(ok(ValueRef::Integer(45)), Ok(45));
        assert_eq!(ok(ValueRef::Integer(i64::MAX)), Ok(u32::MAX));
        assert_eq!(ok(ValueRef::Real(39.9)), Ok(39));
        for bad in [
            ValueRef::Null,
            ValueRef::Blob(b"ERROR"),
            ValueRef::Integer(-1),
            ValueRef::Text(b"-10"),
            ValueRef::Text(b"bogus"),
            ValueRef::Text(b""),
            ValueRef::Real(f64::NAN),
        ] {
            assert!(level_of(bad, &custom).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cursors_in_sqlites_order_and_rows_known_again() {
        use std::cmp::Ordering::*;
        let j = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(order(&j("2"), &j("10")), Less);
        assert_eq!(order(&j("2.5"), &j("2")), Greater);
        assert_eq!(order(&j("3"), &j("3.0")), Equal);
        assert_eq!(order(&j("\"b\""), &j("\"ab\"")), Greater);
        assert_eq!(order(&j("99"), &j("\"1\"")), Less);
        assert_eq!(order(&j("null"), &j("-5")), Less);
        let fp = |m: &[u8], t: &[u8]| fingerprint(ValueRef::Text(m), Some(ValueRef::Text(t)));
        assert_eq!(fp(b"Disk full", b"10:00"), fp(b"Disk full", b"10:00"));
        assert_ne!(fp(b"Disk full", b"10:00"), fp(b"Disk full", b"10:01"));
        assert_ne!(fp(b"ab", b"c"), fp(b"a", b"bc"));
        let row = |c: i64| RowMark {
            cursor: Value::from(c),
            fp: 0,
            time: Value::Null,
        };
        let mut tail = Tail::from(Value::from(4));
        tail.advance(row(5));
        assert_eq!(tail.start, Value::from(4), "the first row back: the start");
        for c in 6..=(6 + KNOWN_BEFORE as i64) {
            tail.advance(row(c));
        }
        let cursors: Vec<i64> = tail.rows.iter().filter_map(|r| r.cursor.as_i64()).collect();
        assert_eq!(
            cursors,
            (6..=14).collect::<Vec<_>>(),
            "the last and eight before"
        );
        assert_eq!(tail.start, Value::from(5));
    }

    #[test]
    fn generated_query_uses_the_cursor() {
        let (t, c) = preset("logs").unwrap();
        let q = query_for(t, &c);
        assert!(q.contains("WHERE \"id\" > :cursor ORDER BY \"id\""), "{q}");
        assert!(q.contains("\"stack_trace\" AS traceback"));
        assert_eq!(canonical(&c).traceback.as_deref(), Some("traceback"));
    }
}
