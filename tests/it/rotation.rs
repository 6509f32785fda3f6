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

/// The log path is a symlink a deploy moves from one release's file to another's (and
/// back): what was written to the old file before the move is read from where it is,
/// and a file the link comes back to is read on from where it was, not again.
#[test]
fn a_log_path_symlink_moved_between_files_loses_and_repeats_nothing() {
    let Some(t) = setup() else { return };
    let link = |to: &str| {
        let _ = std::fs::remove_file(t.path("app.log"));
        std::os::unix::fs::symlink(t.path(to), t.path("app.log")).unwrap();
    };
    std::fs::create_dir_all(t.path("v1")).unwrap();
    std::fs::create_dir_all(t.path("v2")).unwrap();
    t.write("v1/app.log", "");
    t.write("v2/app.log", "");
    link("v1/app.log");
    errors(&t, 0, 3);
    t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
    errors(&t, 3, 2); // into v1, after the run, before the deploy
    link("v2/app.log");
    errors(&t, 5, 4);
    let r = t.ok(&["run", "--now", "2030-01-01T00:05:00Z"]);
    assert!(!r.stdout.contains("is gone"), "{}", r.stdout);
    assert_eq!(total_occurrences(&t), 9, "{}", r.stdout);
    // rolled back: v1 again, nothing new in it
    link("v1/app.log");
    let r = t.ok(&["run", "--now", "2030-01-01T00:10:00Z"]);
    assert_eq!(total_occurrences(&t), 9, "{}", r.stdout);
    assert!(r.stdout.contains(" 0 lines read"), "{}", r.stdout);
    errors(&t, 9, 1);
    let r = t.ok(&["run", "--now", "2030-01-01T00:15:00Z"]);
    assert_eq!(total_occurrences(&t), 10, "{}", r.stdout);
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

/// A run while loguru compresses a rotated file (rename, write the .gz, remove the plain
/// file, create the new one): the half-written .gz is not read (no "unexpected end of
/// file"), the rest of the rotated file is read from the plain file still there, and
/// the finished .gz is not counted again.
#[test]
fn a_run_during_gz_compression_counts_each_record_once() {
    let Some(t) = setup() else { return };
    let Some(py) = python() else { return };
    use std::io::{BufRead, Write};
    // loguru's own gz compression, held half-way through its copy until told to go on.
    let script = r#"
import sys, shutil
from loguru import logger
logger.remove()
def held_copy(fsrc, fdst, length=0):
    data = fsrc.read()
    fdst.write(data[: len(data) // 2])
    print("compressing", flush=True)
    sys.stdin.readline()
    fdst.write(data[len(data) // 2 :])
shutil.copyfileobj = held_copy
logger.add("app.log", rotation="60 KB", compression="gz")
for i in range(0, 100):
    logger.error("Charge failed for invoice {}", i)
print("ready", flush=True)
sys.stdin.readline()
i = 100
while True:
    logger.error("Charge failed for invoice {}", i)
    i += 1
    if i == 1000:
        break
print("done", i, flush=True)
"#;
    std::fs::write(t.path("slow_gz.py"), script).unwrap();
    let mut child = std::process::Command::new(py)
        .arg(t.path("slow_gz.py"))
        .current_dir(t.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut expect = |want: &str, line: &mut String| {
        line.clear();
        out.read_line(line).unwrap();
        assert!(line.starts_with(want), "python said {line:?}, not {want}");
    };
    expect("ready", &mut line);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(total_occurrences(&t), 100);
    writeln!(stdin).unwrap();
    expect("compressing", &mut line);
    let during = listing(&t);
    let r = t.run(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(
        r.code,
        Some(0),
        "during compression ({during}):\n{}",
        r.all()
    );
    let counted = total_occurrences(&t);
    writeln!(stdin).unwrap();
    // Each later rotation compresses too: let them all through.
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 || line.starts_with("done") {
            break;
        }
        writeln!(stdin).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let r = t.ok(&["run", "--now", "2026-11-22T10:02:00Z"]);
    assert_eq!(
        total_occurrences(&t),
        1000,
        "after: {}; {counted} counted during compression ({during})\n{}",
        listing(&t),
        r.all()
    );
    t.ok(&["run", "--now", "2026-11-22T10:03:00Z"]);
    assert_eq!(total_occurrences(&t), 1000);
}

/// copytruncate while the writer does not append (systemd `StandardOutput=file:`, a shell
/// `>`): it writes on at its old offset, so the truncated file starts with a hole of NULs
/// and the next record follows it on the same line. That record is read, once.
#[test]
fn copytruncate_with_a_writer_that_keeps_its_offset() {
    use std::io::{Seek, SeekFrom, Write};
    let Some(t) = setup() else { return };
    errors(&t, 0, 3);
    t.ok(&["run"]);
    let at = std::fs::metadata(t.path("app.log")).unwrap().len();
    std::fs::copy(t.path("app.log"), t.path("app.log.1")).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(t.path("app.log"))
        .unwrap();
    f.set_len(0).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(
        b"2026-12-02 08:02:00.000 | CRITICAL | app.db:connect:1 - Database down after rotation\n",
    )
    .unwrap();
    let r = t.ok(&["run"]);
    let titles = t.titles();
    assert!(
        titles
            .iter()
            .any(|t| t.contains("Database down after rotation")),
        "{}\n{titles:?}\n{}",
        r.stdout,
        listing(&t)
    );
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 4, "{}", listing(&t));
}

#[test]
fn a_file_rewritten_in_place_with_the_same_start_is_read_again_from_its_start() {
    // The app truncates its log and writes it anew (`open(path, "w")`): the same inode,
    // the same first 4 KiB, and by the next run longer than where the last run
    // stopped. The error now sits before that point.
    let Some(t) = setup() else { return };
    t.loguru(
        r#"logger.add("app.log")
for i in range(150):
    logger.info("Processed batch {} of the nightly import", i)"#,
    );
    t.ok(&["run"]);
    let read = std::fs::metadata(t.path("app.log")).unwrap().len();
    t.loguru(
        r#"with open("app.log") as f:
    text = f.read()
head = text[: text.index("\n", 4096) + 1]
with open("app.log", "w") as f:
    f.write(head)
logger.add("app.log")
logger.error("Payment provider rejected the settlement file")
for i in range(200):
    logger.info("Reconciled account {} after the rewrite", i)"#,
    );
    let now = std::fs::metadata(t.path("app.log")).unwrap().len();
    assert!(now > read, "the rewritten file is longer: {}", listing(&t));
    let r = t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{}\n{}", r.all(), listing(&t));
    assert!(
        inc[0]["title"]
            .as_str()
            .unwrap()
            .contains("Payment provider rejected the settlement file"),
        "{inc:?}"
    );
    assert!(r.all().contains("rewritten in place"), "{}", r.all());
    // Read once: the next run has nothing new.
    t.ok(&["run"]);
    assert_eq!(t.incidents().len(), 1);
    assert_eq!(total_occurrences(&t), 1);
}

/// Writes a log longer than the line cap and has a run read it; returns the Python that
/// copytruncates it under a writer that keeps its offset (`f`, added to the logger) and
/// then runs `then`.
fn hole_longer_than_the_cap(t: &Test, then: &str) -> String {
    t.loguru(
        r#"logger.add("app.log")
for i in range(2500):
    logger.info("Processed batch {} of the nightly import with 128 rows", i)"#,
    );
    t.ok(&["run"]);
    let at = std::fs::metadata(t.path("app.log")).unwrap().len();
    assert!(at > 200_000, "a hole of a few hundred KB: {at}");
    format!(
        r#"import shutil
shutil.copy("app.log", "app.log.1")
f = open("app.log", "r+")  # not appending: it keeps writing at its offset
f.seek(0, 2)
os.truncate("app.log", 0)
logger.add(f)
{then}"#
    )
}

/// copytruncate of a log longer than the line cap under a writer that keeps its offset:
/// the hole of NULs before its next record is longer than the cap, and the record after
/// it is read all the same, as is the one after that.
#[test]
fn a_hole_longer_than_the_line_cap_hides_no_record() {
    let Some(t) = setup() else { return };
    t.loguru(&hole_longer_than_the_cap(
        &t,
        r#"logger.error("Ledger write failed after rotation")
logger.critical("Database down after rotation")
f.close()"#,
    ));
    let r = t.ok(&["run"]);
    let titles = t.titles();
    for want in ["Ledger write failed", "Database down"] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "{want}: {}\n{titles:?}\n{}",
            r.all(),
            listing(&t)
        );
    }
    t.ok(&["run"]);
    assert_eq!(total_occurrences(&t), 2, "{}", listing(&t));
}

/// The same hole, with the record after it still being written when a run comes: its
/// traceback has not reached its exception line. The record (starting in a later piece
/// of the over-long line) is held, not filed without its exception, and is filed once,
/// whole, when the rest arrives.
#[test]
fn a_held_record_after_a_hole_longer_than_the_line_cap_is_filed_once_whole() {
    let Some(t) = setup() else { return };
    t.loguru(&hole_longer_than_the_cap(
        &t,
        r#"try:
    {}["ledger"]
except KeyError:
    logger.exception("Ledger lookup failed after rotation")
f.close()
data = open("app.log", "rb").read()
cut = data.rstrip(b"\n").rfind(b"\n") + 1
open("app.log.rest", "wb").write(data[cut:])
os.truncate("app.log", cut)  # its exception line not written yet"#,
    ));
    // Times given: the record's file is modified after them, so it is not quiet yet
    // whatever the machine's clock says (the suite also runs under libfaketime).
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(t.titles().is_empty(), "held: {}\n{}", r.all(), listing(&t));
    let rest = std::fs::read(t.path("app.log.rest")).unwrap();
    assert!(String::from_utf8_lossy(&rest).contains("KeyError"));
    t.append("app.log", &rest);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{}\n{}", r.all(), listing(&t));
    assert!(inc[0]["title"]
        .as_str()
        .unwrap()
        .contains("Ledger lookup failed"));
    assert_eq!(inc[0]["exception_type"], "KeyError", "{}", inc[0]);
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(total_occurrences(&t), 1, "{}", listing(&t));
}
