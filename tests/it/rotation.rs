//! The rotation matrix: every way a log file is rotated between two runs, with no line
//! lost or read twice. Logs are written by the real loguru; the renames, copies and
//! truncations are the ones logrotate and loguru perform.

use crate::util::*;

/// Appends `n` error records numbered from `from` to app.log with loguru.
fn errors(t: &Test, from: u32, n: u32) {
    t.loguru(&format!(
        r#"logger.add("app.log")
for i in range({from}, {to}):
    logger.error("Charge failed for invoice {{}}", i)"#,
        to = from + n
    ));
}

/// The log files with their inodes and sizes, for failure messages.
fn listing(t: &Test) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<String> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("app"))
        .map(|e| {
            let m = e.metadata().unwrap();
            format!(
                "{}#{}({}b)",
                e.file_name().to_string_lossy(),
                m.ino(),
                m.len()
            )
        })
        .collect();
    v.sort();
    v.join(" ")
}

fn mv(t: &Test, a: &str, b: &str) {
    std::fs::rename(t.path(a), t.path(b)).unwrap();
}

fn setup() -> Option<Test> {
    if !have_loguru() {
        return None;
    }
    let t = Test::new();
    t.with_app_source("");
    Some(t)
}

#[test]
fn logrotate_numbered_rename_and_create() {
    let Some(t) = setup() else { return };
    errors(&t, 0, 3);
    t.ok(&["run"]);
    errors(&t, 3, 2); // written after the run, before the rotation
    mv(&t, "app.log", "app.log.1");
    errors(&t, 5, 4);
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 9);
}

#[test]
fn dated_rename() {
    let Some(t) = setup() else { return };
    errors(&t, 0, 2);
    t.ok(&["run"]);
    errors(&t, 2, 2);
    mv(&t, "app.log", "app.log-20261122");
    errors(&t, 4, 1);
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 5);
}

#[test]
fn two_numbered_rotations_between_runs() {
    let Some(t) = setup() else { return };
    errors(&t, 0, 2);
    t.ok(&["run"]);
    errors(&t, 2, 3);
    mv(&t, "app.log", "app.log.1");
    errors(&t, 5, 3);
    mv(&t, "app.log.1", "app.log.2");
    mv(&t, "app.log", "app.log.1");
    errors(&t, 8, 2);
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 10);
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 10);
}

#[test]
fn loguru_rotation_with_immediate_gz_compression() {
    let Some(t) = setup() else { return };
    let write = |from: u32, to: u32| {
        t.loguru(&format!(
            r#"logger.add("app.log", rotation="600 B", compression="gz")
for i in range({from}, {to}):
    logger.error("Charge failed for invoice {{}}", i)
    logger.info("x" * 100)"#
        ))
    };
    write(0, 2);
    t.ok(&["run"]);
    write(2, 12);
    let names: Vec<String> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".log.gz")),
        "loguru compressed nothing: {names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("app.") && n.ends_with(".log") && n != "app.log"),
        "the plain rotated file is gone: {names:?}"
    );
    let r = t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 12, "{}", r.stdout);
    let run2 = r.stdout.clone();
    let db = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    let states: Vec<String> = db
        .prepare("SELECT state FROM checkpoints")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    drop(db);
    let before = listing(&t);
    write(12, 14);
    let after = listing(&t);
    let r = t.ok(&["run"]);
    assert_eq!(
        total_occurrences(&t),
        14,
        "{}\nbefore: {before}\nafter: {after}\nrun2: {run2}\nstates: {states:?}",
        r.stdout
    );
}

#[test]
fn copytruncate() {
    let Some(t) = setup() else { return };
    errors(&t, 0, 3);
    t.ok(&["run"]);
    errors(&t, 3, 2); // only in the copy after the truncation
    std::fs::copy(t.path("app.log"), t.path("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(t.path("app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    errors(&t, 5, 1);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("copy"), "{}", r.stdout);
    assert_eq!(total_occurrences(&t), 6, "{}", r.stdout);
}

#[test]
fn delete_and_recreate() {
    let Some(t) = setup() else { return };
    errors(&t, 0, 3);
    t.ok(&["run"]);
    std::fs::remove_file(t.path("app.log")).unwrap();
    errors(&t, 3, 2);
    let r = t.ok(&["run"]);
    // The new file may reuse the deleted one's inode: then its first line tells it apart.
    assert!(
        r.stdout.contains("is gone")
            || r.stdout.contains("truncated")
            || r.stdout.contains("replaced"),
        "the change is reported: {}",
        r.stdout
    );
    assert_eq!(total_occurrences(&t), 5);
}

#[test]
fn a_different_file_at_the_same_path() {
    let Some(t) = setup() else { return };
    errors(&t, 0, 3);
    t.ok(&["run"]);
    t.loguru(r#"logger.add("other.log"); [logger.error("Charge failed for invoice {}", i) for i in range(100, 104)]"#);
    mv(&t, "other.log", "app.log");
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 7);
}

#[test]
fn content_replaced_in_place() {
    let Some(t) = setup() else { return };
    errors(&t, 0, 3);
    t.ok(&["run"]);
    // same inode, new content longer than the old offset: told by the first line
    let mut text = String::new();
    for i in 0..6 {
        text.push_str(&format!("2030-01-01 00:00:0{i}.000 | ERROR    | __main__:<module>:1 - Charge failed for invoice {i}\n"));
    }
    std::fs::write(t.path("app.log"), text).unwrap();
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("replaced"), "{}", r.stdout);
    assert_eq!(total_occurrences(&t), 9);
}

#[test]
fn glob_picks_up_new_files_and_forgets_vanished_ones() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.config("[[source]]\nname = \"workers\"\npath = \"logs/worker-*.log\"\nfrom = \"start\"\nforget_after = \"1h\"\n");
    std::fs::create_dir(t.path("logs")).unwrap();
    t.loguru(r#"logger.add("logs/worker-1.log"); logger.error("Job 1 failed")"#);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    t.loguru(r#"logger.add("logs/worker-2.log"); logger.error("Job 2 failed"); logger.error("Job 3 failed")"#);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(total_occurrences(&t), 3);
    std::fs::remove_file(t.path("logs/worker-1.log")).unwrap();
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    let db = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    let count = |db: &rusqlite::Connection| -> i64 {
        db.query_row(
            "SELECT count(*) FROM checkpoints WHERE key LIKE 'file:%'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        count(&db),
        2,
        "a vanished file is kept for the grace period"
    );
    t.ok(&["run", "--now", "2026-11-22T11:30:00Z"]);
    assert_eq!(count(&db), 1, "and forgotten after it");
    assert_eq!(total_occurrences(&t), 3);
}
