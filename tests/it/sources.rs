//! Every source kind: loguru JSON, custom loguru formats, plain text with a regex,
//! SQLite log tables (read-only, also in WAL mode in a folder logwarden may not write
//! to, and while the app holds a lock) and journald through `journalctl`.

use std::io::BufRead;
use std::process::{Command, Stdio};

use crate::util::*;

#[test]
fn loguru_json_with_traceback_extra_and_a_corrupt_line() {
    let Some(t) = api_json() else {
        return;
    };
    t.loguru(
        r#"
logger.add("api.json", serialize=True)
log = logger.bind(request_id="req-7")
log.info("request started")
try:
    int("x")
except ValueError:
    log.exception("Could not parse quantity for cart {}", 881)
"#,
    );
    t.append("api.json", b"{\"text\": \"truncated garbage\n");
    t.loguru(r#"logger.add("api.json", serialize=True); logger.warning("Cart 12 abandoned after payment step")"#);
    let r = t.ok(&["run"]);
    assert!(
        r.stdout
            .contains("api.json: 1 line is not valid loguru JSON"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("first at line 3"),
        "the bad line's number is given: {}",
        r.stdout
    );
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}", r.stdout);
    let parse = inc
        .iter()
        .find(|i| {
            i["title"]
                .as_str()
                .unwrap()
                .contains("Could not parse quantity")
        })
        .unwrap();
    assert_eq!(parse["exception_type"], "ValueError");
    let page = std::fs::read_to_string(t.path(parse["file_path"].as_str().unwrap())).unwrap();
    assert!(
        page.contains("invalid literal for int()"),
        "traceback from `text`: {page}"
    );
    assert!(page.contains("req-7"), "extra kept: {page}");
}

#[test]
fn custom_loguru_format_with_markup_padding_and_extra() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    let fmt = "<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <8}</level> | {extra[request_id]} | <level>{message}</level>";
    t.config(&format!(
        "[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\nformat = \"{fmt}\"\n"
    ));
    t.loguru(&format!(
        r#"
logger.add("app.log", format="{fmt}", colorize=False)
log = logger.bind(request_id="r-1")
log.info("fine")
try:
    open("/nonexistent/config.yml")
except OSError:
    log.exception("Config file missing")
log.error("Upstream | returned 503")
"#
    ));
    let r = t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}", r.stdout);
    assert!(
        inc.iter()
            .any(|i| i["exception_type"] == "FileNotFoundError"),
        "{inc:?}"
    );
    assert!(
        inc.iter()
            .any(|i| i["title"].as_str().unwrap().contains("Upstream | returned")),
        "messages may contain the separator: {inc:?}"
    );
}

#[test]
fn a_value_written_before_the_level_cannot_make_an_error_read_as_info() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    // The client address comes from a header anyone sends (X-Forwarded-For).
    let fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {extra[client]} | {level: <8} | {name}:{function}:{line} - {message}";
    t.config(&format!(
        "[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\nformat = \"{fmt}\"\n"
    ));
    t.loguru(&format!(
        r#"
logger.add("app.log", format="{fmt}", backtrace=False, diagnose=False)
def checkout(client):
    with logger.contextualize(client=client):
        logger.info("cart viewed | by a visitor")
        try:
            1/0
        except ZeroDivisionError:
            logger.exception("checkout crashed")
checkout("203.0.113.9")
checkout("evil | INFO     | x:y:1 - hi")
checkout("evil" + " | DEBUG    | x:y:1 - hi" * 200)
checkout("evil | INFO | x:y:1 - hi | INFO | x:y:1 - hi | WARNING | a:b:2 - ok")
"#
    ));
    let r = t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
    // The last client makes its INFO record read as a WARNING: where a line can be
    // read more than one way the most severe wins, a false alarm rather than a lost
    // error.
    assert!(r.stdout.contains("5 warnings/errors kept"), "{}", r.stdout);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}", r.stdout);
    let (crash, other): (Vec<_>, Vec<_>) = inc
        .iter()
        .partition(|i| i["exception_type"] == "ZeroDivisionError");
    assert_eq!(other[0]["level"], "WARNING", "{inc:?}");
    assert_eq!(crash[0]["occurrences"], 4, "{inc:?}");
    assert_eq!(crash[0]["level"], "ERROR");
    assert!(
        crash[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("checkout crashed"),
        "{inc:?}"
    );
}

/// Formats loguru writes that once read every record as INFO: a bare `{time}` (ISO
/// 8601 with microseconds), a level by number; and an app's own level that the config
/// does not name, which is read as a WARNING with a note rather than dropped.
/// A line break in a value written before the level splits the header over lines: the
/// record is read from its lines joined, and a stranger's line break cannot hide it.
#[test]
fn a_header_split_over_lines_by_a_value_before_the_level_is_read_joined() {
    if !have_loguru() {
        return;
    }
    for (fmt, records) in [
        (
            "{time:YYYY-MM-DD HH:mm:ss.SSS} [{extra[client]}] {level: <8} | {message}",
            r#"[("INFO", "10.0.0.1", "GET /"), ("ERROR", "evil\n", "payment db down"),
               ("ERROR", "x] INFO     | hi\n", "payment db down"), ("INFO", "10.0.0.1", "GET /x")]"#,
        ),
        (
            "{time:YYYY-MM-DD HH:mm:ss.SSS} | {message} | {level}",
            r#"[("INFO", "c", "GET /"), ("ERROR", "c", "payment db down:\nuser said hi"),
               ("INFO", "c", "GET /x")]"#,
        ),
    ] {
        let t = Test::new();
        t.config(&format!(
            "[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\nformat = \"{fmt}\"\n"
        ));
        t.loguru(&format!(
            r#"
logger.add("app.log", format="{fmt}", colorize=False)
for level, client, message in {records}:
    logger.bind(client=client).log(level, message)
"#
        ));
        let r = t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
        let case = format!("{fmt}\n{}\n{}", t.read("app.log"), r.stdout);
        let errors = fmt.matches("client").count() + 1;
        assert!(
            r.stdout.contains(&format!("{errors} warnings/errors kept")),
            "{case}"
        );
        let titles = t.titles();
        assert!(
            titles.iter().all(|t| t.starts_with("payment db down")),
            "{case}\n{titles:?}"
        );
        assert_eq!(total_occurrences(&t), errors as u64, "{case}");
    }
}

#[test]
fn bare_time_level_numbers_and_unnamed_custom_levels_are_read() {
    if !have_loguru() {
        return;
    }
    for fmt in [
        Some("{time} | {level} | {message}"),
        Some("{time:YYYY-MM-DD HH:mm:ss} | {level.no} | {message}"),
        None,
    ] {
        let t = Test::new();
        t.with_app_source(
            &fmt.map(|f| format!("format = \"{f}\"\n"))
                .unwrap_or_default(),
        );
        let add = match fmt {
            Some(f) => format!(r#"logger.add("app.log", format="{f}", colorize=False)"#),
            None => r#"logger.add("app.log")"#.to_string(),
        };
        t.loguru(&format!(
            r#"{add}
logger.level("PAGE", no=55)
logger.info("fine")
logger.error("database is down")
logger.log("PAGE", "payment provider unreachable")
"#
        ));
        let r = t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
        let case = format!("{fmt:?}\n{}\n{}", t.read("app.log"), r.stdout);
        assert!(r.stdout.contains("2 warnings/errors kept"), "{case}");
        let inc = t.incidents();
        let db = inc
            .iter()
            .find(|i| i["title"] == "database is down")
            .expect(&case);
        assert_eq!(db["severity"], "critical", "{case}");
        let page = inc
            .iter()
            .find(|i| i["title"] == "payment provider unreachable")
            .expect(&case);
        if fmt.is_some_and(|f| f.contains("level.no")) {
            assert_eq!(page["level"], "55", "{case}");
            assert_eq!(page["severity"], "critical", "{case}");
        } else {
            assert_eq!(page["level"], "PAGE", "{case}");
            assert_eq!(page["severity"], "warning", "{case}");
            let sample = page["samples"][0].as_str().unwrap();
            assert!(
                sample.contains("level `PAGE` is not one logwarden knows: read as WARNING"),
                "{sample}"
            );
        }
    }
}

#[test]
fn unsupported_format_token_is_a_config_error() {
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"app\"\npath = \"app.log\"\nformat = \"{time} {colour} {message}\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("`source[0].format`") && r.stderr.contains("{colour}"),
        "{}",
        r.stderr
    );
}

#[test]
fn text_source_with_a_regex_for_an_nginx_error_log() {
    let t = Test::new();
    t.config(
        r#"[[source]]
name = "nginx"
kind = "text"
path = "error.log"
from = "start"
regex = '^(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#\d+: (?P<message>.*)$'
"#,
    );
    t.write(
        "error.log",
        "2026/11/22 10:00:00 [notice] 1#1: start worker processes\n\
         2026/11/22 10:00:01 [error] 31#31: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1\n\
         2026/11/22 10:00:02 [error] 31#31: *9 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.2\n\
         2026/11/22 10:00:03 [warn] 31#31: *11 an upstream response is buffered to a temporary file\n",
    );
    let r = t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}", r.stdout);
    let refused = inc
        .iter()
        .find(|i| i["title"].as_str().unwrap().contains("connect() failed"))
        .unwrap();
    assert_eq!(refused["occurrences"], 2);
    assert_eq!(refused["first_seen"], "2026-11-22T10:00:01Z");
}

#[test]
fn text_source_without_levels_uses_default_level() {
    let t = Test::new();
    t.config("[[source]]\nname = \"worker\"\nkind = \"text\"\npath = \"worker.out\"\nfrom = \"start\"\nregex = '^(?P<time>\\d\\d:\\d\\d:\\d\\d) (?P<message>.*)$'\ndefault_level = \"ERROR\"\n");
    t.write(
        "worker.out",
        "10:00:00 batch 7 crashed\nTraceback (most recent call last):\n  File \"w.py\", line 1, in <module>\nMemoryError\n10:00:05 batch 8 crashed\n",
    );
    t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{inc:?}");
    assert!(
        inc.iter().any(|i| i["exception_type"] == "MemoryError"),
        "{inc:?}"
    );
}

/// A test whose one source, `api`, reads loguru JSON from `api.json`. None without
/// loguru.
#[test]
fn a_dry_run_reads_a_file_as_its_source_does() {
    let Some(t) = api_json() else {
        return;
    };
    t.loguru(
        r#"
logger.add("api.json", serialize=True)
logger.info("request started")
logger.warning("Cart {} abandoned after payment step", 12)
try:
    int("x")
except ValueError:
    logger.exception("Could not parse quantity for cart {}", 881)
"#,
    );
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = '^Cart [0-9]+ abandoned'\ncomment = \"carts\"\n",
    );
    let j: serde_json::Value =
        serde_json::from_str(&t.ok(&["replay", "api.json", "--json"]).stdout).unwrap();
    assert_eq!(j["records"], 3, "{j}");
    assert_eq!(j["below_min_level"], 1, "{j}");
    assert_eq!(j["ignored"], 1, "{j}");
    let groups = j["would_page"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{j}");
    assert_eq!(
        groups[0]["message"],
        "Could not parse quantity for cart 881"
    );
    assert_eq!(groups[0]["level"], "ERROR");
    let r = t.ok(&["ignore", "test", "--file", "api.json"]);
    assert!(
        r.stdout
            .contains("3 records: 1 below min_level, 1 ignored, 1 left in 1 group(s)"),
        "{}",
        r.stdout
    );
    // A line of the file tested on its own is read as JSON too.
    let line = std::fs::read_to_string(t.path("api.json")).unwrap();
    let cart = line.lines().find(|l| l.contains("Cart 12")).unwrap();
    let r = t.ok(&["ignore", "test", cart]);
    assert!(
        r.stdout.starts_with("rule 1 (carts)\tCart 12 abandoned"),
        "{}",
        r.stdout
    );
    // The run agrees: one incident, the traceback's.
    t.ok(&["run"]);
    assert_eq!(t.incidents().len(), 1);
}

fn api_json() -> Option<Test> {
    if !have_loguru() {
        return None;
    }
    let t = Test::new();
    t.config("[[source]]\nname = \"api\"\nkind = \"loguru-json\"\npath = \"api.json\"\nfrom = \"start\"\n");
    Some(t)
}

fn python_or_skip() -> Option<std::path::PathBuf> {
    let p = python();
    if p.is_none() {
        eprintln!("SKIPPED: no Python");
    }
    p
}

fn py(t: &Test, code: &str) {
    let Some(py) = python_or_skip() else { return };
    let out = Command::new(py)
        .arg("-c")
        .arg(code)
        .current_dir(t.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const LOGS_SCHEMA: &str = "CREATE TABLE logs (id INTEGER PRIMARY KEY, created_at TEXT, level INTEGER, level_name TEXT, logger_name TEXT, message TEXT, function_name TEXT, module TEXT, filename TEXT, line_number INTEGER, exception TEXT, stack_trace TEXT, extra TEXT)";

/// A test whose one source is the sqlite `log` preset on `app.db`: the preset's table
/// made, then `rows` (Python with the open connection `db`) run and committed. None
/// without Python.
fn log_preset_db(rows: &str) -> Option<Test> {
    python_or_skip()?;
    let t = Test::new();
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\npreset = \"log\"\nfrom = \"start\"\n");
    py(
        &t,
        &format!("import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute('CREATE TABLE log (Created REAL, Name TEXT, LogLevel INTEGER, LogLevelName TEXT, Message TEXT, Module TEXT, FuncName TEXT, LineNo INTEGER, Exception TEXT)')\n{rows}\ndb.commit()"),
    );
    Some(t)
}

fn insert_logs(t: &Test, rows: &[(&str, &str, &str)]) {
    let values: Vec<String> = rows
        .iter()
        .map(|(level, msg, tb)| format!("('2026-11-22 10:00:00', 40, '{level}', 'app.jobs', '{msg}', 'run', 'jobs', 'jobs.py', 12, NULL, {}, '{{\"job\": 7}}')", if tb.is_empty() { "NULL".to_string() } else { format!("'{tb}'") }))
        .collect();
    let schema = LOGS_SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS");
    py(
        t,
        &format!(
            "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute(\"\"\"{schema}\"\"\")\ndb.execute(\"\"\"INSERT INTO logs (created_at, level, level_name, logger_name, message, function_name, module, filename, line_number, exception, stack_trace, extra) VALUES {}\"\"\")\ndb.commit()",
            values.join(", ")
        ),
    );
}

#[test]
fn sqlite_logs_preset_reads_new_rows_incrementally() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\npreset = \"logs\"\nfrom = \"start\"\n");
    let tb = "Traceback (most recent call last):\n  File \"jobs.py\", line 12, in run\nTimeoutError: fetch took 30s";
    insert_logs(
        &t,
        &[
            ("INFO", "job 1 started", ""),
            ("ERROR", "Job 7 crashed", tb),
            ("ERROR", "Job 8 crashed", tb),
        ],
    );
    let before = std::fs::read(t.path("app.db")).unwrap();
    let r = t.ok(&["run"]);
    assert_eq!(
        std::fs::read(t.path("app.db")).unwrap(),
        before,
        "the app's database is not written"
    );
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{}", r.stdout);
    assert_eq!(inc[0]["occurrences"], 2);
    assert_eq!(inc[0]["exception_type"], "TimeoutError");
    insert_logs(&t, &[("ERROR", "Job 9 crashed", tb)]);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 lines read"), "{}", r.stdout);
    assert_eq!(total_occurrences(&t), 3);
}

#[test]
fn sqlite_log_preset_with_numeric_levels_and_unix_times() {
    let Some(t) = log_preset_db(
        "db.executemany('INSERT INTO log VALUES (?,?,?,?,?,?,?,?,?)', [(1763805600.25, 'app', 20, 'INFO', 'hello', 'm', 'f', 1, None), (1763805601.5, 'app', 50, 'CRITICAL', 'Ledger out of balance by 3 cents', 'm', 'f', 2, 'ValueError: negative')])",
    ) else {
        return;
    };
    t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["severity"], "critical");
    assert_eq!(inc[0]["first_seen"], "2025-11-22T10:00:01Z");
}

#[test]
fn sqlite_custom_query_with_cursor() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\nfrom = \"start\"\nquery = \"SELECT seq, msg, sev FROM events WHERE seq > :cursor AND kind = 'log' ORDER BY seq\"\ncolumns = { cursor = \"seq\", message = \"msg\", level = \"sev\" }\n",
    );
    py(&t, "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute('CREATE TABLE events (seq INTEGER, kind TEXT, msg TEXT, sev TEXT)')\ndb.executemany('INSERT INTO events VALUES (?,?,?,?)', [(1,'log','Webhook 4 rejected','ERROR'),(2,'audit','x','ERROR'),(3,'log','Webhook 5 rejected','ERROR')])\ndb.commit()");
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 2);
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
}

/// The app renames columns the source names: every run is an error that says which,
/// and no row is read with the old column's name as its text or level (SQLite reads a
/// double-quoted name it cannot find as a string); once the config follows, the rows
/// written meanwhile are read.
#[test]
fn sqlite_columns_renamed_by_the_app_are_an_error_not_rows_of_their_names() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    let source = |msg: &str, lvl: &str| {
        format!("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\nfrom = \"start\"\ntable = \"app_log\"\ncolumns = {{ cursor = \"id\", message = \"{msg}\", level = \"{lvl}\" }}\n")
    };
    t.config(&source("msg", "lvl"));
    py(&t, "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute('CREATE TABLE app_log (id INTEGER PRIMARY KEY, msg TEXT, lvl TEXT)')\ndb.execute(\"INSERT INTO app_log (msg, lvl) VALUES ('Webhook 4 rejected', 'ERROR')\")\ndb.commit()");
    t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
    assert_eq!(total_occurrences(&t), 1);
    py(&t, "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute('ALTER TABLE app_log RENAME COLUMN msg TO message')\ndb.execute('ALTER TABLE app_log RENAME COLUMN lvl TO level')\ndb.executemany('INSERT INTO app_log (message, level) VALUES (?, ?)', [('Disk quota near', 'WARNING'), ('served /', 'INFO'), ('Payment API down', 'ERROR')])\ndb.commit()");
    let r = t.run(&["run", "--now", "2030-01-01T00:05:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.all().contains("no such column: \"msg\"") && r.all().contains("`columns`"),
        "{}",
        r.all()
    );
    assert_eq!(total_occurrences(&t), 1, "{}", r.all());
    t.config(&source("message", "level"));
    t.ok(&["run", "--now", "2030-01-01T00:10:00Z"]);
    let mut titles = t.titles();
    titles.sort();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(titles[1].starts_with("Payment API down"), "{titles:?}");
    assert_eq!(total_occurrences(&t), 3);
}

#[test]
fn sqlite_in_wal_mode_read_by_a_user_who_cannot_write_its_folder() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let t = Test::new();
    std::fs::create_dir(t.path("app")).unwrap();
    // The app: a WAL database it keeps open (so -wal and -shm exist), owned by it.
    let (mut app, ready) = app_running(
        &t,
        &python,
        &format!(
            "import sqlite3, sys\ndb = sqlite3.connect('app/app.db')\ndb.execute('PRAGMA journal_mode=WAL')\ndb.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\ndb.execute(\"INSERT INTO logs (created_at, level_name, logger_name, message) VALUES ('2026-11-22 10:00:00', 'ERROR', 'app', 'Payment webhook signature mismatch')\")\ndb.commit()\nprint('ready', flush=True)\nsys.stdin.read()\n"
        ),
    );
    assert_eq!(ready.trim(), "ready");
    assert!(t.path("app/app.db-wal").exists() && t.path("app/app.db-shm").exists());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path("app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["app/app.db", "app/app.db-wal", "app/app.db-shm"] {
        std::fs::set_permissions(t.path(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    open_up(t.dir.path());
    t.give_to_nobody("state");
    t.give_to_nobody("incidents");
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app/app.db\"\npreset = \"logs\"\nfrom = \"start\"\n");
    let hash = |p: &str| std::fs::read(t.path(p)).unwrap();
    let (db, wal) = (hash("app/app.db"), hash("app/app.db-wal"));
    let out = t.command_as_nobody(&["run"]).output().unwrap();
    let r = Run::from(out);
    // compared while the app still has the database open (closing it checkpoints the WAL)
    let (db_after, wal_after) = (hash("app/app.db"), hash("app/app.db-wal"));
    drop(app.stdin.take());
    app.wait().unwrap();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());
    assert!(db_after == db, "database unchanged");
    assert!(wal_after == wal, "WAL unchanged");
}

#[test]
fn sqlite_locked_by_the_app_is_retried_next_run() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let t = Test::new();
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\npreset = \"logs\"\nfrom = \"start\"\nbusy_timeout = \"500ms\"\n");
    insert_logs(&t, &[("ERROR", "Job 1 crashed", "")]);
    // The app holds an exclusive lock (rollback journal mode: readers are blocked).
    let (mut app, _) = app_running(&t, &python, "import sqlite3, sys\ndb = sqlite3.connect('app.db', isolation_level=None)\ndb.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\ndb.execute('COMMIT')\n");
    let r = t.run(&["run"]);
    drop(app.stdin.take());
    app.wait().unwrap();
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("holds a lock"), "{}", r.all());
    assert!(t.incidents().is_empty());
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 1, "nothing lost");
}

/// The app's code that writes one log row at `at` (a `logs` preset row).
fn log_row(at: &str, msg: &str) -> String {
    format!("db.execute(\"INSERT INTO logs (created_at, level_name, logger_name, message) VALUES ('{at}', 'ERROR', 'app', '{msg}')\")\n")
}

/// The app as a Python process running `code`, once it has printed its first line
/// (returned): it holds what it opened until its stdin is closed.
fn app_running(t: &Test, python: &std::path::Path, code: &str) -> (std::process::Child, String) {
    let mut app = Command::new(python)
        .arg("-c")
        .arg(code)
        .current_dir(t.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(app.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (app, line)
}

/// `from = "end"` and the app holds its database locked through the first run: the
/// rows written from the first run's time on (also while it was locked) are read when
/// it is free; those from before it are not.
#[test]
fn sqlite_from_end_locked_on_the_first_run_reads_what_came_after_it() {
    let Some(python) = python_or_skip() else {
        return;
    };
    // With a time column (the preset), and without one (a query that returns none).
    for timed in [true, false] {
        let t = Test::new();
        let columns = if timed {
            "preset = \"logs\"\ntimezone = \"UTC\"\n"
        } else {
            "query = \"SELECT id, message, level_name FROM logs WHERE id > :cursor ORDER BY id\"\ncolumns = { cursor = \"id\", message = \"message\", level = \"level_name\" }\n"
        };
        t.config(&format!("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\n{columns}from = \"end\"\nbusy_timeout = \"300ms\"\n"));
        py(
            &t,
            &format!(
                "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\n{}db.commit()",
                log_row("2026-11-22 09:00:00", "Old export failed")
            ),
        );
        let (mut app, _) = app_running(&t, &python, &format!(
                "import sqlite3, sys\ndb = sqlite3.connect('app.db', isolation_level=None)\ndb.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\n{}db.execute('COMMIT')\n",
                log_row("2026-11-22 10:02:00", "Payment webhook lost")
            ));
        let r = t.run(&["run", "--now", "2026-11-22T10:00:00Z"]);
        drop(app.stdin.take());
        app.wait().unwrap();
        assert_eq!(r.code, Some(0), "{}", r.all());
        assert!(
            r.stdout.contains("holds a lock") && r.stdout.contains("2026-11-22T10:00:00Z on"),
            "{}",
            r.all()
        );
        py(
            &t,
            &format!(
                "import sqlite3\ndb = sqlite3.connect('app.db')\n{}db.commit()",
                log_row("2026-11-22 10:05:00", "Invoice render crashed")
            ),
        );
        let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
        let titles = || -> Vec<String> {
            t.incidents()
                .iter()
                .map(|i| i["title"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        if timed {
            let titles = titles();
            assert_eq!(titles.len(), 2, "{titles:?}");
            assert!(
                titles.iter().any(|x| x.contains("Payment webhook lost")),
                "{titles:?}"
            );
            assert!(
                titles.iter().any(|x| x.contains("Invoice render crashed")),
                "{titles:?}"
            );
        } else {
            // No time to tell the rows written meanwhile: read from the end, said.
            assert!(r.stdout.contains("no time column"), "{}", r.all());
            assert!(titles().is_empty(), "{:?}", titles());
            py(
                &t,
                &format!(
                    "import sqlite3\ndb = sqlite3.connect('app.db')\n{}db.commit()",
                    log_row("2026-11-22 10:07:00", "Refund queue stalled")
                ),
            );
            t.ok(&["run", "--now", "2026-11-22T10:08:00Z"]);
            let titles = titles();
            assert!(
                titles.len() == 1 && titles[0].contains("Refund queue stalled"),
                "{titles:?}"
            );
        }
    }
}

/// `from = "end"` with the database, or its table, not there yet on the first run:
/// nothing in it is history, so every row it gets is read.
#[test]
fn sqlite_from_end_not_there_yet_on_the_first_run_reads_its_first_rows() {
    if python_or_skip().is_none() {
        return;
    }
    for table_missing in [false, true] {
        let t = Test::new();
        t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\npreset = \"logs\"\nfrom = \"end\"\n");
        if table_missing {
            py(&t, "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute('CREATE TABLE other (x)')\ndb.commit()");
        }
        let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
        assert!(r.stdout.contains("from its first row"), "{}", r.all());
        // still not there: said again, no error
        t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
        py(
            &t,
            &format!(
                "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute(\"\"\"{}\"\"\")\n{}db.commit()",
                LOGS_SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"),
                log_row("2026-11-22 10:02:00", "Startup migration failed")
            ),
        );
        t.ok(&["run", "--now", "2026-11-22T10:03:00Z"]);
        assert_eq!(t.incidents().len(), 1, "table missing: {table_missing}");
        t.ok(&["run", "--now", "2026-11-22T10:04:00Z"]);
        assert_eq!(total_occurrences(&t), 1, "read once");
    }
}

/// The app's code that writes one `logs` preset row at `at` with `level`.
fn level_row(at: &str, level: &str, msg: &str) -> String {
    format!("db.execute(\"INSERT INTO logs (created_at, level_name, logger_name, message) VALUES ('{at}', '{level}', 'app', '{msg}')\")\n")
}

/// Runs the app's `code` on `app.db` (the open connection `db`), then commits.
fn on_app_db(t: &Test, code: &str) {
    py(
        t,
        &format!("import sqlite3\ndb = sqlite3.connect('app.db')\n{code}db.commit()"),
    );
}

/// Each incident's title (its message) and occurrences, sorted.
fn occurrences(t: &Test) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = t
        .incidents()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap_or_default().to_string(),
                i["occurrences"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn once(titles: &[&str]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = titles.iter().map(|s| (s.to_string(), 1)).collect();
    v.sort();
    v
}

/// A `logs` preset test with an ERROR row and then five INFO rows, read by a first run.
fn logs_read_up_to_info_rows() -> Option<Test> {
    python_or_skip()?;
    let t = Test::new();
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\npreset = \"logs\"\nfrom = \"start\"\ntimezone = \"UTC\"\n");
    let mut rows = format!("db.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\n");
    rows.push_str(&level_row(
        "2026-11-22 10:00:00",
        "ERROR",
        "Disk quota exceeded on volume 3",
    ));
    for i in 1..=5 {
        rows.push_str(&level_row(
            &format!("2026-11-22 10:00:0{i}"),
            "INFO",
            &format!("request {i} served"),
        ));
    }
    on_app_db(&t, &rows);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    Some(t)
}

/// The app purges its chatty rows, the newest among them: SQLite gives the next rows
/// the ids of the purged ones, at or below the cursor. They are read, once.
#[test]
fn sqlite_rows_after_a_purge_of_the_newest_rows_are_read() {
    let Some(t) = logs_read_up_to_info_rows() else {
        return;
    };
    on_app_db(
        &t,
        &format!(
            "db.execute(\"DELETE FROM logs WHERE level_name = 'INFO'\")\n{}{}",
            level_row(
                "2026-11-22 10:06:00",
                "ERROR",
                "Payment gateway refused charge 991"
            ),
            level_row(
                "2026-11-22 10:06:01",
                "CRITICAL",
                "Ledger out of balance by 3 cents"
            ),
        ),
    );
    read_again_once(&t, "");
}

/// The run after the table was renumbered says it reads it again from its start, and
/// each error is counted once (the run after it reads nothing more).
fn read_again_once(t: &Test, case: &str) {
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    let again = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert_eq!(
        occurrences(t),
        once(&[
            "Disk quota exceeded on volume 3",
            "Payment gateway refused charge 991",
            "Ledger out of balance by 3 cents"
        ]),
        "{case}"
    );
    assert!(
        r.stdout.contains("read again from its start"),
        "{case}: {}",
        r.all()
    );
    assert!(
        again.stdout.contains(" 0 lines read"),
        "{case}: {}",
        again.all()
    );
}

/// The table emptied, or dropped and made again: its ids start again at 1, below the
/// cursor (fewer rows than were read), or past it (more).
#[test]
fn sqlite_table_emptied_or_recreated_is_read_again_from_its_start() {
    for (how, more) in [
        ("db.execute('DELETE FROM logs')\n", 0),
        (
            &*format!("db.execute('DROP TABLE logs')\ndb.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\n"),
            8,
        ),
    ] {
        let Some(t) = logs_read_up_to_info_rows() else {
            return;
        };
        let mut rows = how.to_string();
        rows.push_str(&level_row(
            "2026-11-22 10:06:00",
            "ERROR",
            "Payment gateway refused charge 991",
        ));
        rows.push_str(&level_row(
            "2026-11-22 10:06:01",
            "CRITICAL",
            "Ledger out of balance by 3 cents",
        ));
        for i in 0..more {
            rows.push_str(&level_row(
                "2026-11-22 10:06:02",
                "INFO",
                &format!("tick {i}"),
            ));
        }
        on_app_db(&t, &rows);
        read_again_once(&t, how);
    }
}

/// The `log` preset's table has no INTEGER PRIMARY KEY: a VACUUM after a purge
/// renumbers its rows from 1. The rows written after it are read; those from before the
/// last row read are not read again.
#[test]
fn sqlite_log_table_renumbered_by_vacuum_is_read_on() {
    let Some(t) = log_preset_db(
        "db.executemany('INSERT INTO log VALUES (?,?,?,?,?,?,?,?,?)', [(1795341600 + i, 'app', 20, 'INFO', 'request %d served' % i, 'm', 'f', 1, None) for i in range(20)])\ndb.execute(\"INSERT INTO log VALUES (1795341700, 'app', 40, 'ERROR', 'Disk quota exceeded on volume 3', 'm', 'f', 1, NULL)\")\ndb.execute(\"INSERT INTO log VALUES (1795341701, 'app', 20, 'INFO', 'quota checked', 'm', 'f', 1, NULL)\")",
    ) else {
        return;
    };
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    py(
        &t,
        "import sqlite3\ndb = sqlite3.connect('app.db')\ndb.execute('DELETE FROM log WHERE Created < 1795341650')\ndb.commit()\ndb.execute('VACUUM')\ndb.executemany('INSERT INTO log VALUES (?,?,?,?,?,?,?,?,?)', [(1795341800, 'app.pay', 40, 'ERROR', 'Payment gateway refused charge 991', 'm', 'f', 1, None), (1795341801, 'app.pay', 50, 'CRITICAL', 'Ledger out of balance by 3 cents', 'm', 'f', 1, None)])\ndb.commit()\nassert db.execute('SELECT max(rowid) FROM log').fetchone()[0] == 4",
    );
    read_again_once(&t, "");
}

/// Run after run, each row is read once, also one written after the last row read with
/// a cursor below it (here a custom query's sequence).
#[test]
fn sqlite_reads_each_row_once_also_one_written_out_of_cursor_order() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\nfrom = \"start\"\nquery = \"SELECT seq, msg, sev FROM events WHERE seq > :cursor ORDER BY seq\"\ncolumns = { cursor = \"seq\", message = \"msg\", level = \"sev\" }\n",
    );
    let add = |rows: &[(f64, &str)]| {
        let values: Vec<String> = rows
            .iter()
            .map(|(seq, msg)| format!("({seq}, '{msg}', 'ERROR')"))
            .collect();
        on_app_db(
            &t,
            &format!(
                "db.execute('CREATE TABLE IF NOT EXISTS events (seq REAL, msg TEXT, sev TEXT)')\ndb.execute(\"INSERT INTO events VALUES {}\")\n",
                values.join(", ")
            ),
        );
    };
    add(&[
        (1.0, "Payment webhook rejected"),
        (3.0, "Disk quota exceeded"),
    ]);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains(" 2 lines read"), "{}", r.all());
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains(" 0 lines read"), "{}", r.all());
    add(&[
        (2.0, "Invoice render crashed"),
        (4.0, "Refund queue stalled"),
    ]);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains(" 2 lines read"), "{}", r.all());
    add(&[(5.0, "Ledger out of balance")]);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains(" 1 lines read"), "{}", r.all());
    t.ok(&["run"]);
    assert_eq!(
        occurrences(&t),
        once(&[
            "Payment webhook rejected",
            "Disk quota exceeded",
            "Invoice render crashed",
            "Refund queue stalled",
            "Ledger out of balance"
        ])
    );
    assert!(!r.stdout.contains("read again"), "{}", r.all());
}

/// A table without a time column emptied and filled again past the last row read, whose
/// row under that id says what the old one said (an app's heartbeat): the rows read just
/// before it tell the two apart, and the new rows are read, none lost.
#[test]
fn sqlite_table_refilled_with_the_same_last_message_is_read_again() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\nfrom = \"start\"\nquery = \"SELECT id, msg, sev FROM events WHERE id > :cursor ORDER BY id\"\ncolumns = { cursor = \"id\", message = \"msg\", level = \"sev\" }\n",
    );
    let fill = |first: &str, ticks: &str| {
        format!(
            "db.execute(\"INSERT INTO events (msg, sev) VALUES ('{first}', 'ERROR')\")\ndb.executemany(\"INSERT INTO events (msg, sev) VALUES (?, 'INFO')\", [('{ticks} %d' % i,) for i in range(8)])\ndb.execute(\"INSERT INTO events (msg, sev) VALUES ('heartbeat', 'INFO')\")\n"
        )
    };
    on_app_db(
        &t,
        &format!(
            "db.execute('CREATE TABLE events (id INTEGER PRIMARY KEY, msg TEXT, sev TEXT)')\n{}",
            fill("Disk quota exceeded on volume 3", "request served")
        ),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains(" 10 lines read"), "{}", r.all());
    on_app_db(
        &t,
        &format!(
            "db.execute('DELETE FROM events')\n{}",
            fill("Payment gateway refused charge 991", "job queued")
        ),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    let again = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert_eq!(
        occurrences(&t),
        once(&[
            "Disk quota exceeded on volume 3",
            "Payment gateway refused charge 991"
        ])
    );
    assert!(r.stdout.contains("all of it"), "{}", r.all());
    assert!(again.stdout.contains(" 0 lines read"), "{}", again.all());
}

/// A checkpoint kept by an earlier version (its cursor only) is read on from: the rows
/// after it once; and a table emptied under it is read again, all of it, said.
#[test]
fn sqlite_checkpoint_with_only_a_cursor_is_read_on() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\npreset = \"logs\"\nfrom = \"start\"\ntimezone = \"UTC\"\n");
    let mut rows = format!("db.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\n");
    for i in 1..=3 {
        rows.push_str(&level_row(
            &format!("2026-11-22 10:00:0{i}"),
            "ERROR",
            &format!("Job {i} crashed"),
        ));
    }
    on_app_db(&t, &rows);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let old_checkpoint = |cursor: i64| {
        let db = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
        let n = db
            .execute(
                "UPDATE checkpoints SET state = ?1 WHERE source = 'db'",
                [format!("{{\"cursor\": {cursor}}}")],
            )
            .unwrap();
        assert_eq!(n, 1);
    };
    old_checkpoint(3);
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert!(r.stdout.contains(" 0 lines read"), "{}", r.all());
    on_app_db(
        &t,
        &level_row("2026-11-22 10:07:00", "ERROR", "Job 4 crashed"),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:08:00Z"]);
    assert!(r.stdout.contains(" 1 lines read"), "{}", r.all());
    assert_eq!(total_occurrences(&t), 4);
    old_checkpoint(4);
    on_app_db(
        &t,
        &format!(
            "db.execute('DELETE FROM logs')\n{}",
            level_row("2026-11-22 10:09:00", "ERROR", "Job 5 crashed")
        ),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    assert_eq!(total_occurrences(&t), 5);
    assert!(r.stdout.contains("all of it"), "{}", r.all());
}

/// The app was killed in a transaction: a hot `-journal` is next to its database. Its
/// rows were never committed and are not read; the database is read once the app has
/// rolled the journal back, also the rows it commits then under the same ids.
#[test]
fn sqlite_with_a_hot_journal_waits_for_the_app_to_recover_it() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app.db\"\npreset = \"logs\"\nfrom = \"start\"\n");
    py(
        &t,
        &format!(
            "import sqlite3, os\ndb = sqlite3.connect('app.db', isolation_level=None)\ndb.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\n{}db.execute('CREATE TABLE other (x TEXT)')\ndb.executemany('INSERT INTO other VALUES (?)', [('y' * 900,) for _ in range(400)])\ndb.execute('PRAGMA cache_size=1')\ndb.execute('BEGIN')\nfor i in range(3):\n    db.execute(\"INSERT INTO logs (created_at, level_name, logger_name, message) VALUES ('2026-11-22 10:00:01', 'ERROR', 'app', ?)\", ('Uncommitted row %d' % i,))\ndb.execute('SELECT count(*), sum(length(x)) FROM other').fetchone()\nos._exit(0)\n",
            log_row("2026-11-22 10:00:00", "Committed error one")
        ),
    );
    assert!(t.path("app.db-journal").exists(), "a hot journal");
    let r = t.run(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(t.incidents().is_empty(), "{:?}", t.incidents());
    assert!(r.stdout.contains("interrupted"), "{}", r.all());
    // The app restarts: its first connection rolls the journal back.
    let mut rows = String::new();
    for i in 0..5 {
        rows.push_str(&log_row(
            "2026-11-22 10:06:00",
            &format!("Payment gateway refused charge {i}"),
        ));
    }
    on_app_db(&t, &rows);
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    let titles = t.titles();
    assert!(
        !titles.iter().any(|x| x.contains("Uncommitted")),
        "{titles:?}"
    );
    assert_eq!(total_occurrences(&t), 6, "{titles:?}");
}

/// A fake `journalctl`: prints the entries of `journal.jsonl` after `--after-cursor`
/// (or from `--since=@<seconds>`; it fails while `journalctl-fail` exists)
/// (or only the last with `--lines=1`) and records its arguments.
fn fake_journalctl(t: &Test) -> std::path::PathBuf {
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> {dir}/journalctl-args
if [ -e {dir}/journalctl-fail ]; then echo "Failed to open journal: Permission denied" >&2; exit 1; fi
after=""; last=""; since=""
for a in "$@"; do
  case "$a" in
    --after-cursor=*) after="${{a#--after-cursor=}}" ;;
    --lines=1) last=1 ;;
    --since=@*) since="${{a#--since=@}}" ;;
  esac
done
if [ -n "$last" ]; then tail -n 1 {dir}/journal.jsonl; exit 0; fi
if [ -n "$since" ]; then
  while IFS= read -r line; do
    ts=$(printf '%s' "$line" | sed -n 's/.*"__REALTIME_TIMESTAMP":"\([0-9]*\)".*/\1/p')
    if [ "$ts" -ge "$((since * 1000000))" ]; then printf '%s\n' "$line"; fi
  done < {dir}/journal.jsonl
  exit 0
fi
if [ -z "$after" ]; then cat {dir}/journal.jsonl; exit 0; fi
found=""
while IFS= read -r line; do
  if [ -n "$found" ]; then printf '%s\n' "$line"; fi
  case "$line" in *"\"__CURSOR\":\"$after\""*) found=1 ;; esac
done < {dir}/journal.jsonl
if [ -z "$found" ]; then echo "Failed to seek to cursor: Invalid argument" >&2; exit 1; fi
"#,
        dir = t.dir.path().display()
    );
    let p = t.path("journalctl");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn entry(n: u32, priority: u8, message: serde_json::Value) -> String {
    serde_json::json!({
        "__CURSOR": format!("s=abc;i={n}"),
        "__REALTIME_TIMESTAMP": format!("{}", 1_763_805_600_000_000u64 + n as u64 * 1_000_000),
        "PRIORITY": priority.to_string(),
        "SYSLOG_IDENTIFIER": "shop-worker",
        "_SYSTEMD_UNIT": "shop-worker.service",
        "_PID": "4242",
        "MESSAGE": message,
    })
    .to_string()
        + "\n"
}

/// An entry more severe than the one before it is never lost by being read as its
/// continuation: an indented error after an INFO line is a record of its own, and a
/// traceback joined to an INFO line makes the record an error.
#[test]
fn journald_an_error_after_an_info_line_keeps_its_level() {
    let t = Test::new();
    let jc = fake_journalctl(&t);
    t.config(&format!(
        "[[source]]\nname = \"journal\"\nkind = \"journald\"\ncommand = \"{}\"\nfrom = \"start\"\n",
        jc.display()
    ));
    let mut j = String::new();
    j += &entry(1, 6, serde_json::json!("GET /cart 200"));
    j += &entry(
        2,
        3,
        serde_json::json!("  Payment provider unreachable: all charges failing"),
    );
    j += &entry(3, 6, serde_json::json!("GET /cart 200"));
    j += &entry(4, 6, serde_json::json!("Worker started"));
    j += &entry(
        5,
        3,
        serde_json::json!("Traceback (most recent call last):"),
    );
    j += &entry(
        6,
        3,
        serde_json::json!("  File \"/srv/shop/worker.py\", line 9, in <module>"),
    );
    j += &entry(7, 3, serde_json::json!("KeyError: 'sku'"));
    t.write("journal.jsonl", &j);
    let r = t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}\n{inc:?}", r.stdout);
    assert!(
        inc.iter().any(|i| i["title"]
            .as_str()
            .unwrap()
            .contains("Payment provider unreachable")
            && i["level"] == "ERR"),
        "{inc:?}"
    );
    assert!(
        inc.iter()
            .any(|i| i["exception_type"] == "KeyError" && i["level"] == "ERR"),
        "{inc:?}"
    );
}

/// `from = "end"` and the journal cannot be read on the first run: the next run reads
/// the entries from the first run's time on, not from the end it finds then.
#[test]
fn journald_from_end_unreadable_on_the_first_run_reads_what_came_after_it() {
    let t = Test::new();
    let jc = fake_journalctl(&t);
    t.config(&format!(
        "[[source]]\nname = \"journal\"\nkind = \"journald\"\ncommand = \"{}\"\nfrom = \"end\"\n",
        jc.display()
    ));
    // entry n is stamped 2025-11-22 10:00:00 + n seconds
    t.write(
        "journal.jsonl",
        &(entry(1, 3, serde_json::json!("Old cron job failed"))
            + &entry(5, 3, serde_json::json!("Old backup failed"))),
    );
    t.write("journalctl-fail", "");
    let r = t.ok(&["run", "--now", "2025-11-22T10:00:10Z"]);
    assert!(
        r.stdout.contains("Permission denied") && r.stdout.contains("2025-11-22T10:00:10Z on"),
        "{}",
        r.all()
    );
    std::fs::remove_file(t.path("journalctl-fail")).unwrap();
    t.append(
        "journal.jsonl",
        (entry(20, 3, serde_json::json!("Payment provider unreachable"))
            + &entry(25, 3, serde_json::json!("Refund worker stopped")))
            .as_bytes(),
    );
    t.ok(&["run", "--now", "2025-11-22T10:00:30Z"]);
    assert!(t.read("journalctl-args").contains("--since=@1763805610"));
    let mut titles: Vec<String> = t
        .incidents()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        ["Payment provider unreachable", "Refund worker stopped"],
        "{titles:?}"
    );
    // and on from its cursor
    t.append(
        "journal.jsonl",
        entry(40, 3, serde_json::json!("Mail relay refused")).as_bytes(),
    );
    t.ok(&["run", "--now", "2025-11-22T10:00:50Z"]);
    assert_eq!(t.incidents().len(), 3);
    assert!(t
        .read("journalctl-args")
        .contains("--after-cursor=s=abc;i=25"));
}

#[test]
fn journald_reads_after_its_cursor() {
    let t = Test::new();
    let jc = fake_journalctl(&t);
    t.config(&format!(
        "[[source]]\nname = \"journal\"\nkind = \"journald\"\ncommand = \"{}\"\nunits = [\"shop-worker.service\"]\nfrom = \"start\"\n",
        jc.display()
    ));
    let mut j = String::new();
    j += &entry(1, 6, serde_json::json!("Started worker"));
    j += &entry(
        2,
        3,
        serde_json::json!("Traceback (most recent call last):"),
    );
    j += &entry(
        3,
        3,
        serde_json::json!("  File \"/srv/shop/worker.py\", line 9, in <module>"),
    );
    j += &entry(
        4,
        3,
        serde_json::json!("RuntimeError: redis connection lost"),
    );
    // a message that is not valid UTF-8 comes as a byte array
    j += &entry(
        5,
        4,
        serde_json::json!([68, 105, 115, 107, 32, 113, 117, 111, 116, 97, 32, 255, 32, 56, 48, 37]),
    );
    t.write("journal.jsonl", &j);
    let r = t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}\n{inc:?}", r.stdout);
    assert!(
        inc.iter().any(|i| i["exception_type"] == "RuntimeError"),
        "the traceback lines are one record: {inc:?}"
    );
    assert!(
        inc.iter()
            .any(|i| i["title"].as_str().unwrap().starts_with("Disk quota")),
        "{inc:?}"
    );
    let args = t.read("journalctl-args");
    assert!(
        args.contains("--output=json") && args.contains("--unit=shop-worker.service"),
        "{args}"
    );

    t.append(
        "journal.jsonl",
        entry(
            6,
            2,
            serde_json::json!("Out of memory: killed process 4242"),
        )
        .as_bytes(),
    );
    t.ok(&["run"]);
    let args = t.read("journalctl-args");
    assert!(
        args.lines()
            .last()
            .unwrap()
            .contains("--after-cursor=s=abc;i=5"),
        "{args}"
    );
    assert_eq!(t.incidents().len(), 3);
    assert_eq!(
        t.incidents()
            .iter()
            .find(|i| i["title"].as_str().unwrap().contains("Out of memory"))
            .unwrap()["severity"],
        "critical"
    );
}

#[test]
fn sqlite_in_wal_mode_after_the_app_closed_it() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    std::fs::create_dir(t.path("app")).unwrap();
    py(
        &t,
        &format!(
            "import sqlite3\ndb = sqlite3.connect('app/app.db')\ndb.execute('PRAGMA journal_mode=WAL')\ndb.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\ndb.execute(\"INSERT INTO logs (created_at, level_name, logger_name, message) VALUES ('2026-11-22 10:00:00', 'ERROR', 'app', 'Nightly export failed')\")\ndb.commit()\ndb.close()"
        ),
    );
    assert!(
        !t.path("app/app.db-wal").exists(),
        "closing checkpointed the WAL away"
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path("app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    open_up(t.dir.path());
    t.give_to_nobody("state");
    t.give_to_nobody("incidents");
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app/app.db\"\npreset = \"logs\"\nfrom = \"start\"\n");
    let before = std::fs::read(t.path("app/app.db")).unwrap();
    let r = Run::from(t.command_as_nobody(&["run"]).output().unwrap());
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());
    assert!(std::fs::read(t.path("app/app.db")).unwrap() == before);
    assert!(
        !t.path("app/app.db-wal").exists() && !t.path("app/app.db-shm").exists(),
        "nothing created next to it"
    );
}

/// A folder the watcher may write to is no licence to: a read-only connection would
/// still create `-wal` and `-shm` there, owned by the watcher, and an app running as
/// another user could then no longer write its own database.
#[test]
fn sqlite_in_wal_mode_in_a_writable_folder_gets_nothing_created_next_to_it() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    std::fs::create_dir(t.path("app")).unwrap();
    let write = |message: &str, first: bool| {
        py(
            &t,
            &format!(
                "import sqlite3\ndb = sqlite3.connect('app/app.db')\ndb.execute('PRAGMA journal_mode=WAL')\n{}db.execute(\"INSERT INTO logs (created_at, level_name, logger_name, message) VALUES ('2026-11-22 10:00:00', 'ERROR', 'app', '{message}')\")\ndb.commit()\ndb.close()",
                if first {
                    format!("db.execute(\"\"\"{LOGS_SCHEMA}\"\"\")\n")
                } else {
                    String::new()
                }
            ),
        )
    };
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(t.path("app"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    write("Nightly export failed", true);
    t.config("[[source]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"app/app.db\"\npreset = \"logs\"\nfrom = \"start\"\n");
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());
    assert_eq!(names(), ["app.db"], "nothing created next to the database");
    write("Invoice mailer crashed", false);
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());
    // An app that died between deleting its `-wal` and its `-shm` leaves the `-shm`
    // alone: the content is whole, and still nothing is created next to it.
    write("Report builder timed out", false);
    std::fs::write(t.path("app/app.db-shm"), b"").unwrap();
    let r = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());
    assert_eq!(names(), ["app.db", "app.db-shm"], "no -wal made");
}

/// Levels that cannot be classified (NULL, BLOB, unknown name, negative number) keep
/// their row as an ERROR with a note; names are case-insensitive; a negative number is
/// not read as a huge (critical) one.
#[test]
fn sqlite_rows_with_unreadable_levels_are_kept_as_errors() {
    let Some(t) = log_preset_db(
        "rows = [(None, 'Payment gateway refused the card'), (b'\\x01\\x02', 'Disk full'), (-1, 'Webhook signature mismatch for shop number seven today'), ('bogus', 'Cache stampede'), ('warn', 'Slow query on orders table took long'), ('Fatal', 'Ledger out of balance by many cents and more here now'), ('info', 'hello'), (20, 'started')]\ndb.executemany('INSERT INTO log VALUES (1763805600, \"app\", ?, NULL, ?, \"m\", \"f\", 1, NULL)', rows)",
    ) else {
        return;
    };
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let inc = t.incidents();
    let by_title = |needle: &str| -> &serde_json::Value {
        inc.iter()
            .find(|i| i["template"].as_str().unwrap_or("").contains(needle))
            .unwrap_or_else(|| panic!("no incident for `{needle}`: {}\n{inc:?}", r.stdout))
    };
    for (msg, what) in [
        ("Payment gateway refused the card", "NULL"),
        ("Disk full", "BLOB"),
        (
            "Webhook signature mismatch for shop number seven today",
            "-1",
        ),
        ("Cache stampede", "unknown name `bogus`"),
    ] {
        let i = by_title(msg);
        assert_eq!(i["level"], "ERROR", "{msg}: {i}");
        assert_eq!(
            i["severity"], "critical",
            "{msg}: the severity of an ERROR: {i}"
        );
        assert!(
            i["samples"]
                .to_string()
                .contains(&format!("level unreadable: {what}")),
            "{msg}: the evidence says what was found: {i}"
        );
    }
    assert_eq!(
        by_title("Slow query on orders table took long")["level"],
        "warn"
    );
    assert_eq!(
        by_title("Ledger out of balance by many cents and more here now")["severity"],
        "critical"
    );
    assert_eq!(inc.len(), 6, "INFO rows stay below min_level: {inc:?}");
}

/// A row whose message is NULL or blank is still an incident, with a title that says so
/// on the page, in its file name and on the phone.
#[test]
fn sqlite_rows_without_a_message_get_a_title() {
    let Some(t) = log_preset_db(
        "db.executemany('INSERT INTO log VALUES (1763805600, \"app\", 40, \"ERROR\", ?, \"m\", \"f\", 1, NULL)', [(None,), ('   ',)])",
    ) else {
        return;
    };
    let ntfy = FakeNtfy::start(None);
    let cfg = t.read("logwarden.toml");
    t.write("logwarden.toml", &format!("{cfg}{}", ntfy.config("ops")));
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "blank and NULL mask alike: {inc:?}");
    assert_eq!(inc[0]["title"], "(empty message)", "{inc:?}");
    let files = t.incident_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].ends_with("2025-11-22-incident-empty-message.md"),
        "{files:?}"
    );
    let page = std::fs::read_to_string(&files[0]).unwrap();
    assert!(page.contains("\n# (empty message)\n"), "{page}");
    let sent = ntfy.messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let title = sent[0].header("Title").unwrap_or_default();
    assert!(title.contains("(empty message)"), "{title}");
}

/// Tracebacks of 50 frames with `diagnose=True` (far over the lines kept of a record):
/// the exception type is still found, so two exceptions with the same message are two
/// incidents.
#[test]
fn long_tracebacks_keep_their_exception_type() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(
        r#"logger.add("app.log", backtrace=True, diagnose=True)
def dive(n, kind):
    depth_marker = {"n": n, "kind": kind.__name__}
    if n == 0:
        raise kind("could not settle the batch")
    return plunge(n - 1, kind)
def plunge(n, kind):
    return dive(n, kind)
for kind in (ValueError, TypeError, ValueError):
    try:
        dive(50, kind)
    except Exception:
        logger.exception("Batch settlement failed")"#,
    );
    let lines = t.read("app.log").lines().count();
    assert!(
        lines > 1200,
        "each traceback is over 400 lines: {lines} in all"
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(
        occurrences_by_exception(&t),
        vec![("TypeError".to_string(), 1), ("ValueError".to_string(), 2)]
    );
}

/// Each incident's exception type (or `none`) and occurrences, sorted.
fn occurrences_by_exception(t: &Test) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = t
        .incidents()
        .iter()
        .map(|i| {
            (
                i["exception_type"].as_str().unwrap_or("none").to_string(),
                i["occurrences"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// loguru JSON records over 64 KiB and nested over 128 levels are valid output and
/// are read; a line that is not JSON but names an error is kept as ERROR with a note;
/// one that says nothing of an error is reported with its line number.
#[test]
fn loguru_json_huge_deep_and_broken_lines_lose_no_error() {
    let Some(t) = api_json() else {
        return;
    };
    t.loguru(
        r#"
logger.add("api.json", serialize=True)
logger.bind(payload="p" * 300_000).error("Export failed for tenant {}", 4)
tree = leaf = {}
for i in range(300):
    leaf["child"] = {}
    leaf = leaf["child"]
logger.bind(tree=tree).critical("Config tree rejected by the validator")
"#,
    );
    let size = std::fs::metadata(t.path("api.json")).unwrap().len();
    assert!(size > 300_000, "{size}");
    t.append(
        "api.json",
        b"Traceback (most recent call last): worker 3 died mid-write ERROR\nnothing to see here\n",
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let inc = t.incidents();
    let find = |needle: &str| {
        inc.iter()
            .find(|i| i["template"].as_str().unwrap_or("").contains(needle))
            .unwrap_or_else(|| panic!("no incident for `{needle}`:\n{}\n{inc:?}", r.stdout))
    };
    assert_eq!(find("Export failed")["level"], "ERROR");
    assert_eq!(find("Config tree rejected")["severity"], "critical");
    let broken = find("worker");
    assert_eq!(broken["level"], "ERROR");
    assert!(
        broken["samples"]
            .to_string()
            .contains("not valid loguru JSON"),
        "{broken}"
    );
    assert_eq!(inc.len(), 3, "{}", r.stdout);
    assert!(
        r.stdout.contains("1 line is not valid loguru JSON") && r.stdout.contains("at line 4"),
        "the unclassifiable line is reported with its number: {}",
        r.stdout
    );
}

/// Writes with the real loguru an error, an exception with a traceback and an INFO
/// record to `full.log`; returns its text and where the exception record's
/// `ZeroDivisionError` line starts.
fn record_being_written(t: &Test) -> (String, usize, usize) {
    t.loguru(
        r#"logger.add("full.log", backtrace=True, diagnose=True)
logger.error("Charge failed for invoice 1")
def ratio(a, b):
    return a / b
try:
    ratio(1, 0)
except ZeroDivisionError:
    logger.exception("Report totals could not be computed")
logger.info("after")"#,
    );
    let text = t.read("full.log");
    let header = text.find("Report totals").unwrap();
    let header = text[..header].rfind('\n').unwrap() + 1;
    let exc = text.find("\nZeroDivisionError").unwrap() + 1;
    (text, header, exc)
}

fn exception_types(t: &Test) -> Vec<String> {
    let mut v: Vec<String> = t
        .incidents()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["exception_type"].as_str().unwrap_or("none"),
                i["occurrences"]
            )
        })
        .collect();
    v.sort();
    v
}

/// A run that sees a record's traceback without its exception line yet holds the
/// record back (checkpoint before it) and files it whole once it is complete.
#[test]
fn a_record_still_being_written_is_held_until_complete() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    let (text, _, exc) = record_being_written(&t);
    t.write("app.log", &text[..exc]);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(
        exception_types(&t),
        vec!["none:1"],
        "only the complete record"
    );
    t.append("app.log", &text.as_bytes()[exc..]);
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(
        exception_types(&t),
        vec!["ZeroDivisionError:1", "none:1"],
        "the held record is filed once, with its exception"
    );
    // A writer that died mid-record: the unchanged file makes it count as complete.
    t.append("app.log", &text.as_bytes()[..exc]);
    t.ok(&["run", "--now", "2026-11-22T10:02:00Z"]);
    assert_eq!(
        total_occurrences(&t),
        3,
        "the complete error counts, the cut one is held"
    );
    t.ok(&["run", "--now", "2026-11-22T10:03:00Z"]);
    assert_eq!(total_occurrences(&t), 4, "the same bytes again: emitted");
}

/// With `settle`, every last record is held until a record follows it or the file is
/// quiet (unchanged since the last run, or not modified for `settle` before `now`).
#[test]
fn settle_holds_the_last_record_until_the_file_is_quiet() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("settle = \"2s\"\n");
    let (text, header, _) = record_being_written(&t);
    // Only the exception record's first line is written so far.
    let first = header + text[header..].find('\n').unwrap() + 1;
    t.write("app.log", &text[..first]);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(exception_types(&t), vec!["none:1"]);
    t.append("app.log", &text.as_bytes()[first..]);
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(exception_types(&t), vec!["ZeroDivisionError:1", "none:1"]);
    // Quiet by modification time: a `now` long after the file was written.
    t.append("app.log", &text.as_bytes()[..header]);
    t.ok(&["run", "--now", "2099-01-01T00:00:00Z"]);
    assert_eq!(total_occurrences(&t), 3);
    let r = t.ok(&["check"]);
    assert!(r.stdout.contains("settle = \"2s\""), "{}", r.stdout);
}

/// A backlog of tens of megabytes (read on several threads: over 16 MiB) loses no
/// record and counts every line, from the start and again from a checkpoint.
#[test]
fn a_backlog_of_many_megabytes_loses_no_record() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    let batch = |from: u32, to: u32, kind: &str| {
        t.loguru(&format!(
            r#"logger.add("app.log", backtrace=False, diagnose=False)
pad = "x" * 2000
for i in range({from}, {to}):
    logger.info("GET /orders/{{}} 200 {{}}", i, pad)
    if i % 500 == 7:
        try:
            raise ValueError(f"ledger {{i}} does not balance")
        except Exception:
            logger.exception("Batch settlement {{}} failed", i)
    if i % 600 == 11:
        try:
            raise {kind}("no route")
        except Exception:
            logger.exception("Payout {{}} could not be sent", i)
    if i % 700 == 3:
        logger.debug("Slow query took {{}} ms\n  plan: seq scan", i)"#
        ))
    };
    let lines_read = |r: &str| -> u64 {
        let (before, _) = r.split_once(" lines read").expect("a summary");
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let occurrences = || occurrences_by_exception(&t);
    batch(0, 9000, "TypeError");
    let text = t.read("app.log");
    assert!(text.len() > 17 << 20, "{} bytes", text.len());
    let first = text.lines().count() as u64;
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(lines_read(&r.stdout), first, "{}", r.stdout);
    assert_eq!(
        occurrences(),
        vec![
            ("TypeError".to_string(), 15),
            ("ValueError".to_string(), 18)
        ]
    );
    batch(9000, 18000, "KeyError");
    let all = t.read("app.log").lines().count() as u64;
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(lines_read(&r.stdout), all - first, "{}", r.stdout);
    assert_eq!(
        occurrences(),
        vec![
            ("KeyError".to_string(), 15),
            ("TypeError".to_string(), 15),
            ("ValueError".to_string(), 36)
        ]
    );
}

/// An app (or whoever took it over) that makes its log a symlink into logwarden's own
/// state cannot have logwarden read its secrets out as "log lines": the file is not
/// read, and the run says why.
#[test]
fn a_log_path_leading_into_logwardens_own_state_is_not_read() {
    let t = Test::new();
    t.with_app_source("");
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    t.write(
        "state/stolen.txt",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - control key k3y-M4terial-9Qz\n",
    );
    std::os::unix::fs::symlink(t.path("state/stolen.txt"), t.path("app.log")).unwrap();
    let r = t.run(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.all().contains("which is logwarden's own"), "{}", r.all());
    assert!(!r.all().contains("k3y-M4terial"), "{}", r.all());
    assert!(t.incidents().is_empty());
}

/// The same for a SQLite source: an app that swaps its database for a symlink into
/// logwarden's state gets nothing read from there.
#[test]
fn a_sqlite_path_leading_into_logwardens_own_state_is_not_read() {
    let Some(t) = log_preset_db(
        "db.execute('INSERT INTO log VALUES (?,?,?,?,?,?,?,?,?)', (1763805601.5, 'app', 40, 'ERROR', 'control key k3y-M4terial-9Qz', 'm', 'f', 2, None))",
    ) else {
        return;
    };
    std::fs::create_dir_all(t.path("state")).unwrap();
    std::fs::rename(t.path("app.db"), t.path("state/stolen.db")).unwrap();
    std::os::unix::fs::symlink(t.path("state/stolen.db"), t.path("app.db")).unwrap();
    let r = t.run(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.all().contains("which is logwarden's own"), "{}", r.all());
    assert!(!r.all().contains("k3y-M4terial"), "{}", r.all());
    assert!(t.incidents().is_empty());
    // The same database where the app keeps it is read.
    std::fs::remove_file(t.path("app.db")).unwrap();
    std::fs::rename(t.path("state/stolen.db"), t.path("app.db")).unwrap();
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(t.incidents().len(), 1);
}

/// A writer killed mid-line whose last record is an ERROR, and that never writes again:
/// the first run waits for the rest of the line, the next (the file ended at the same
/// place for a whole run) reads it as it is. Counted once; a record a restart appends
/// to the same line later is read too.
#[test]
fn an_error_torn_by_a_writer_that_never_writes_again_is_read_next_run() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(
        r#"logger.add("app.log")
logger.info("handling request 42")
logger.error("Payment batch 7 failed: ledger locked")
os.truncate("app.log", os.path.getsize("app.log") - 1)  # killed before its newline
"#,
    );
    let r = t.ok(&["run"]);
    assert!(t.titles().is_empty(), "waits one run: {}", r.stdout);
    let r = t.ok(&["run"]);
    let titles = t.titles();
    assert!(
        titles.len() == 1 && titles[0].contains("Payment batch"),
        "{}\n{titles:?}",
        r.stdout
    );
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 1);
    t.loguru(
        r#"logger.add("app.log")
logger.critical("Database down after the restart")"#,
    );
    t.ok(&["run"]);
    let titles = t.titles();
    assert!(
        titles.len() == 2 && titles.iter().any(|t| t.contains("Database down")),
        "{titles:?}"
    );
    assert_eq!(total_occurrences(&t), 2);
}

/// A writer killed mid-line (its last line has no newline) whose restart appends its
/// first record to the torn line: that record is read, in the default format whether a
/// run saw the torn line or not, and in a custom format when a run saw it end there. A
/// message that quotes a time (with a bar after it) is not cut in two.
#[test]
fn a_record_appended_to_a_torn_last_line_is_read() {
    if !have_loguru() {
        return;
    }
    let custom = "{time:YYYY-MM-DD HH:mm:ss.SSS} {level} {name} {message}";
    for (fmt, run_between) in [(None, true), (None, false), (Some(custom), true)] {
        let t = Test::new();
        t.with_app_source(
            &fmt.map(|f| format!("format = \"{f}\"\n"))
                .unwrap_or_default(),
        );
        let add = match fmt {
            Some(f) => format!(r#"logger.add("app.log", format="{f}", colorize=False)"#),
            None => r#"logger.add("app.log")"#.to_string(),
        };
        t.loguru(&format!(
            r#"{add}
logger.error("Retry scheduled at 2026-12-02 08:06:00.000 | queue full")
logger.info("handling request 42")
os.truncate("app.log", os.path.getsize("app.log") - 1)  # killed before its newline
"#
        ));
        if run_between {
            t.ok(&["run"]);
        }
        t.loguru(&format!(
            "{add}\nlogger.critical(\"Database down after the restart\")"
        ));
        let r = t.ok(&["run"]);
        let titles = t.titles();
        let case = format!("format {fmt:?}, run between: {run_between}\n{}", r.stdout);
        assert_eq!(titles.len(), 2, "{case}\n{titles:?}");
        assert!(
            titles
                .iter()
                .any(|t| t.contains("Database down after the restart")),
            "{case}\n{titles:?}"
        );
        assert!(
            titles.iter().any(|t| t.contains("queue full")),
            "{case}\n{titles:?}"
        );
        t.ok(&["run"]);
        assert_eq!(total_occurrences(&t), 2, "{case}");
    }
}

/// A message holding a whole loguru header (a user name a stranger chose) is not cut
/// there: its traceback and exception stay on the ERROR, not on a made-up INFO record.
#[test]
fn a_header_inside_a_message_does_not_cut_the_record() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(
        r#"logger.add("app.log")
def charge(user):
    raise RuntimeError("card declined for %s" % user)
for user in ["ada", "bob 2026-11-22 10:00:00.000 | INFO     | x:y:1 - hello"]:
    try:
        charge(user)
    except RuntimeError:
        logger.exception("payment failed for user %s" % user)
"#,
    );
    let r = t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
    assert!(r.stdout.contains("2 warnings/errors kept"), "{}", r.stdout);
    let inc = t.incidents();
    assert!(
        inc.iter().all(|i| i["exception_type"] == "RuntimeError"),
        "{inc:?}"
    );
    assert_eq!(total_occurrences(&t), 2, "{}", r.stdout);
    let stranger = inc
        .iter()
        .flat_map(|i| i["samples"].as_array().unwrap())
        .map(|s| s.as_str().unwrap())
        .find(|s| s.contains("bob"))
        .unwrap();
    assert!(
        stranger.contains("Traceback") && stranger.contains("RuntimeError: card declined"),
        "{stranger}"
    );
}

/// A message holding a header as severe as its own (a user name a stranger chose) cannot
/// be told from a record appended to a torn line, so it is cut there; but the real
/// record keeps its traceback and exception, so that ignoring the made-up record (known
/// noise) leaves the real one whole, in a run and in the dry runs alike.
#[test]
fn a_header_inside_a_message_never_takes_the_traceback_of_the_record_it_cuts() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(
        r#"logger.add("app.log")
user = "bob 2026-11-22 10:00:00.000 | ERROR    | app.net:conn:7 - client disconnected"
try:
    raise RuntimeError("database is locked")
except RuntimeError:
    logger.exception("login failed for user {}", user)
"#,
    );
    t.ok(&[
        "ignore",
        "add",
        "client disconnected",
        "--comment",
        "known noise",
        "--now",
        "2030-01-01T00:00:00Z",
    ]);
    let r = t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
    assert!(
        r.stdout.contains("1 warnings/errors kept, 1 ignored"),
        "{}",
        r.stdout
    );
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(inc[0]["exception_type"], "RuntimeError", "{inc:?}");
    let sample = inc[0]["samples"][0].as_str().unwrap();
    assert!(
        sample.contains("login failed")
            && sample.contains("Traceback")
            && sample.contains("RuntimeError: database is locked"),
        "{sample}"
    );
    // The dry runs group it as the run did: with its exception.
    let signature = inc[0]["signature"].as_str().unwrap();
    for args in [
        vec!["replay", "app.log"],
        vec!["ignore", "test", "--file", "app.log"],
    ] {
        let r = t.ok(&args);
        assert!(
            r.stdout.contains("login failed") && r.stdout.contains(signature),
            "{args:?}: {signature} {}",
            r.stdout
        );
    }
}

/// A record cut that way whose traceback is still being written when a run reads it is
/// read again next run from its own start, and both records come out once.
#[test]
fn a_record_cut_by_a_header_inside_it_waits_whole_for_its_traceback() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(
        r#"logger.add("full.log")
user = "bob 2026-11-22 10:00:00.000 | ERROR    | app.net:conn:7 - client disconnected"
def charge():
    raise RuntimeError("card declined")
try:
    charge()
except RuntimeError:
    logger.exception("payment failed for user {}", user)
"#,
    );
    let full = t.read("full.log");
    // up to the first frame: the traceback is not over yet
    let cut = full.find("\n> File").expect("a frame") + 1;
    t.write("app.log", &full[..cut]);
    // (a `now` before the file's time: it is not quiet, so the record may go on)
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("0 warnings/errors kept"), "{}", r.stdout);
    t.append("app.log", &full.as_bytes()[cut..]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert!(r.stdout.contains("2 warnings/errors kept"), "{}", r.stdout);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{inc:?}");
    assert!(
        inc.iter().all(|i| i["exception_type"] == "RuntimeError"),
        "{inc:?}"
    );
    assert!(
        inc.iter().any(|i| i["samples"][0]
            .as_str()
            .unwrap()
            .contains("payment failed for user bob")),
        "{inc:?}"
    );
    assert_eq!(total_occurrences(&t), 2);
}

/// The dry runs read a torn line as a run does: a record appended to it is its own.
#[test]
fn replay_and_ignore_test_cut_a_record_appended_to_a_torn_line() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        "2026-12-02 07:00:01.000 | INFO     | app:f:1 - handling req2026-12-02 07:00:02.000 | ERROR    | app.db:q:9 - Database down\n",
    );
    for args in [
        vec!["replay", "app.log"],
        vec!["ignore", "test", "--file", "app.log"],
    ] {
        let r = t.ok(&args);
        assert!(
            r.stdout.contains("ERROR") && r.stdout.contains("Database down"),
            "{args:?}: {}",
            r.stdout
        );
    }
    let r = t.ok(&["replay", "app.log"]);
    assert!(
        r.stdout
            .contains("2 records: 1 below min_level, 0 ignored, 1 left in 1 group(s)"),
        "{}",
        r.stdout
    );
}

/// A writer killed mid-line whose restart appends an ERROR to the torn line before any
/// run sees it end there: the ERROR is read, though the line starts as one a skip
/// passes over (a skipped INFO record's header, or the last line of a skipped INFO
/// record's traceback).
#[test]
fn an_error_appended_to_a_torn_skipped_line_no_run_saw_is_read() {
    if !have_loguru() {
        return;
    }
    for (what, torn) in [
        ("an INFO line", r#"logger.info("handling request 43")"#),
        (
            "a traceback line",
            "try:\n    1 / 0\nexcept ZeroDivisionError:\n    logger.opt(exception=True).info(\"retrying\")",
        ),
    ] {
        let t = Test::new();
        t.with_app_source("");
        t.loguru(
            r#"logger.add("app.log")
logger.info("started")"#,
        );
        t.ok(&["run", "--now", "2026-12-02T10:00:00Z"]);
        assert!(t.titles().is_empty(), "{what}");
        t.loguru(&format!(
            r#"logger.add("app.log")
logger.info("handling request 42")
{torn}
os.truncate("app.log", os.path.getsize("app.log") - 1)  # killed before its newline
"#
        ));
        t.loguru(
            r#"logger.add("app.log")
logger.error("Database down after the restart")"#,
        );
        // The ERROR's header is on the torn line, after its start.
        let text = t.read("app.log");
        let glued = text.lines().find(|l| l.contains("Database down")).unwrap();
        assert!(glued.find(" | ERROR ") > Some(23), "{what}: {text}");
        let r = t.ok(&["run", "--now", "2026-12-02T10:05:00Z"]);
        let titles = t.titles();
        assert!(
            titles.len() == 1 && titles[0].contains("Database down after the restart"),
            "{what}\n{}\n{titles:?}",
            r.stdout
        );
        t.ok(&["run", "--now", "2026-12-02T10:10:00Z"]);
        assert_eq!(total_occurrences(&t), 1, "{what}");
    }
}

/// A torn ERROR (its writer killed before its newline) whose restart appended a WARNING,
/// with no run in between: both are read, and the ERROR keeps its own message.
#[test]
fn a_warning_appended_to_a_torn_error_no_run_saw_is_its_own_record() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(
        r#"logger.add("app.log")
logger.error("Payment worker lost its database connection")
os.truncate("app.log", os.path.getsize("app.log") - 1)  # killed before its newline
logger.remove()
logger.add("app.log")
logger.warning("Payment worker restarted after a crash")"#,
    );
    let r = t.ok(&["run", "--now", "2026-12-02T10:05:00Z"]);
    assert!(r.stdout.contains("2 warnings/errors kept"), "{}", r.stdout);
    let mut titles = t.titles();
    titles.sort();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles[0].starts_with("Payment worker lost its database connection")
            && !titles[0].contains("restarted"),
        "{titles:?}"
    );
    assert!(
        titles[1].starts_with("Payment worker restarted after a crash"),
        "{titles:?}"
    );
    let inc = t.incidents();
    let warning = inc.iter().find(|i| i["level"] == "WARNING").unwrap();
    assert!(warning["title"].as_str().unwrap().contains("restarted"));
    // the dry runs read it so too
    let r = t.ok(&["replay", "app.log"]);
    assert!(
        r.stdout.starts_with("2 records: 0 below min_level"),
        "{}",
        r.stdout
    );
}

/// A writer killed in the middle of a line longer than the line cap, whose restart
/// appends its next record to that line: the record is read, though it starts past the
/// bytes of the line that are kept.
#[test]
fn a_record_appended_to_a_torn_line_longer_than_the_cap_is_read() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(
        r#"logger.add("app.log")
logger.info("handling request with payload " + "x" * 70000)
os.truncate("app.log", os.path.getsize("app.log") - 1)  # killed before its newline
"#,
    );
    let r = t.ok(&["run"]);
    assert!(t.titles().is_empty(), "{}", r.stdout);
    t.loguru(
        r#"logger.add("app.log")
logger.critical("Database down after the restart")"#,
    );
    let r = t.ok(&["run"]);
    let titles = t.titles();
    assert!(
        titles.len() == 1 && titles[0].contains("Database down"),
        "{}\n{titles:?}",
        r.all()
    );
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 1);
}

/// A source renamed in the config between two runs carries on from where its old name
/// stopped: what was written in between is read once, nothing twice. A source that
/// was not in the last run's config, or reads something else, starts over as new.
#[test]
fn a_source_renamed_in_the_config_carries_on_from_its_old_name() {
    if python_or_skip().is_none() {
        return;
    }
    let t = Test::new();
    let error = |msg: &str| {
        t.loguru(&format!(
            "logger.add('app.log', level='WARNING')\nlogger.error({msg:?})"
        ))
    };
    let source = |name: &str, path: &str| {
        t.config(&format!(
            "[[source]]\nname = \"{name}\"\npath = \"{path}\"\n"
        ));
    };
    source("app", "app.log");
    error("Payment gateway timed out");
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    error("Invoice mailer crashed");
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());

    source("web", "app.log");
    error("Cache warmup failed");
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());
    assert!(
        r.all().contains("carries on from where `app` stopped"),
        "{}",
        r.all()
    );
    assert_eq!(
        t.titles()
            .iter()
            .filter(|x| x.contains("Cache warmup"))
            .count(),
        1,
        "{:?}",
        t.titles()
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert!(!r.all().contains("carries on"), "said once: {}", r.all());
    assert_eq!(
        t.incidents().len(),
        2,
        "nothing read twice: {:?}",
        t.titles()
    );

    // Out of the config for a run: what was written meanwhile is not the new name's
    // backlog (it starts from the end, as any new source).
    t.write("other.log", "");
    source("other", "other.log");
    t.ok(&["run", "--now", "2026-11-22T10:20:00Z"]);
    error("Report builder stalled");
    source("api", "app.log");
    let r = t.ok(&["run", "--now", "2026-11-22T10:25:00Z"]);
    assert!(!r.all().contains("carries on"), "{}", r.all());
    assert_eq!(t.incidents().len(), 2, "{:?}", t.titles());
    // Another file under the old name's new name: not a rename.
    error("Search index rebuild failed");
    source("web", "other.log");
    let r = t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    assert!(!r.all().contains("carries on"), "{}", r.all());
}
