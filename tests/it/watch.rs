//! The watch cycle on loguru text logs: records, tracebacks, incremental reading,
//! rotation, truncation, half-written lines, dry runs and the run lock.

use crate::util::*;

/// The incident list, as (title, occurrences).
fn occurrences(t: &Test) -> Vec<(String, u64)> {
    t.incidents()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap().to_string(),
                i["occurrences"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn default_format_with_diagnose_traceback_and_custom_level() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("levels = { NOTICE = 35 }\n");
    t.loguru(
        r#"
logger.add("app.log", diagnose=True, backtrace=True)
logger.level("NOTICE", no=35)
logger.info("started")
logger.log("NOTICE", "Cache warmup skipped for tenant 17")
def div(a, b):
    return a / b
for i in range(3):
    try:
        div(i, 0)
    except ZeroDivisionError:
        logger.exception("Job {} crashed", 100 + i)
try:
    try:
        {}["k"]
    except KeyError as e:
        raise ValueError("bad config value") from e
except ValueError:
    logger.exception("Config reload failed")
"#,
    );
    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("3 warnings/errors") || r.stdout.contains("5 warnings/errors"),
        "{}",
        r.stdout
    );
    let incidents = occurrences(&t);
    assert_eq!(incidents.len(), 3, "{incidents:?}\n{}", r.stdout);
    assert!(
        incidents.iter().any(|(title, n)| title.contains("Job")
            && title.contains("ZeroDivisionError")
            && *n == 3),
        "{incidents:?}"
    );
    assert!(
        incidents
            .iter()
            .any(|(title, n)| title.contains("Config reload failed")
                && title.contains("ValueError")
                && *n == 1),
        "{incidents:?}"
    );
    assert!(
        incidents
            .iter()
            .any(|(title, _)| title.contains("Cache warmup skipped")),
        "custom level NOTICE=35 is above WARNING: {incidents:?}"
    );

    let files = t.incident_files();
    assert_eq!(files.len(), 3);
    let job = files
        .iter()
        .find(|p| p.to_string_lossy().contains("job"))
        .expect("a job incident file");
    let name = job.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&chrono::Utc::now().format("%Y-%m-%d-incident-").to_string()),
        "{name}"
    );
    let page = std::fs::read_to_string(job).unwrap();
    assert!(page.starts_with("---\nid: "), "{page}");
    for key in [
        "status: open",
        "severity: ",
        "verdict: ",
        "signature: ",
        "source: \"app\"",
        "host: \"test-host\"",
        "first_seen: ",
        "last_seen: ",
        "occurrences: 3",
    ] {
        assert!(page.contains(key), "front matter lacks {key}:\n{page}");
    }
    // the diagnose frames (`> File`, `└`) stay with their record
    assert!(page.contains("> File"), "{page}");
    assert!(page.contains("└"), "{page}");
    assert!(
        page.contains("ZeroDivisionError: division by zero"),
        "{page}"
    );
    for section in [
        "## Summary",
        "## Evidence",
        "## Diagnosis",
        "## Suggested fix",
    ] {
        assert!(page.contains(section), "{section} missing");
    }

    // A second run finds nothing new.
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("0 lines read"), "{}", r.stdout);
    assert_eq!(t.incident_files().len(), 3);
}

#[test]
fn reads_incrementally_and_waits_for_half_written_lines() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(r#"logger.add("app.log"); logger.error("Upstream 502 from payments for order 1")"#);
    t.ok(&["run"]);
    assert_eq!(occurrences(&t)[0].1, 1);

    // A record whose last line is still being written is left for the next run.
    t.loguru(r#"logger.add("app.log"); logger.error("Upstream 502 from payments for order 2")"#);
    t.append("app.log", b"2026-11-22 10:00:00.000 | ERROR    | __main__:<module>:9 - Upstream 502 from payments for ord");
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 lines read"), "{}", r.stdout);
    assert_eq!(
        occurrences(&t)[0].1,
        2,
        "the half-written line is not read yet"
    );
    t.append("app.log", b"er 3\n");
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 lines read"), "{}", r.stdout);
    assert_eq!(occurrences(&t), vec![(occurrences(&t)[0].0.clone(), 3)]);
}

#[test]
fn from_end_does_not_page_about_old_lines() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.config("[[source]]\nname = \"app\"\npath = \"app.log\"\n");
    t.loguru(r#"logger.add("app.log"); logger.error("Old failure from last year")"#);
    let r = t.ok(&["run"]);
    assert!(t.incident_files().is_empty(), "{}", r.stdout);
    t.loguru(r#"logger.add("app.log"); logger.error("Fresh failure")"#);
    t.ok(&["run"]);
    let inc = occurrences(&t);
    assert_eq!(inc.len(), 1);
    assert!(inc[0].0.contains("Fresh failure"));
}

#[test]
fn loguru_rotation_reads_the_rest_of_the_old_file_first() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    // 1 KB rotation: loguru renames app.log to app.<date>.log and opens a new one.
    let write = |from: u32, to: u32| {
        t.loguru(&format!(
            r#"
logger.add("app.log", rotation="1 KB")
for i in range({from}, {to}):
    logger.error("Disk write failed on volume {{}}", i)
    logger.info("padding line to make the file grow " + "x" * 80)
"#
        ))
    };
    write(0, 3);
    t.ok(&["run"]);
    write(3, 20); // rotates several times between two runs
    let rotated: Vec<_> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with("app.") && e.file_name() != "app.log"
        })
        .collect();
    assert!(!rotated.is_empty(), "loguru did not rotate");
    t.ok(&["run"]);
    write(20, 22);
    t.ok(&["run"]);
    let inc = occurrences(&t);
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        inc[0].1, 22,
        "every error exactly once across rotations: {inc:?}"
    );
}

#[test]
fn truncated_file_is_read_again_from_the_start() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(r#"logger.add("app.log"); [logger.error("Queue consumer died: worker {}", i) for i in range(5)]"#);
    t.ok(&["run"]);
    std::fs::write(t.path("app.log"), b"").unwrap();
    t.loguru(r#"logger.add("app.log"); logger.error("Queue consumer died: worker 9")"#);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("truncated"), "{}", r.stdout);
    assert_eq!(occurrences(&t)[0].1, 6);
}

#[test]
fn dry_run_changes_nothing() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(r#"logger.add("app.log"); logger.error("Failed to send email to user 7")"#);
    let r = t.ok(&["run", "--dry-run"]);
    assert!(r.stdout.contains("would open an incident"), "{}", r.stdout);
    assert!(t.incident_files().is_empty());
    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("new incident #1"),
        "the dry run did not advance the checkpoint: {}",
        r.stdout
    );
}

#[test]
fn second_run_exits_cleanly_while_one_is_going() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    let claude = fake_claude(&t, "hang");
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\ntimeout = \"30s\"\n",
        claude.display()
    ));
    t.loguru(r#"logger.add("app.log"); logger.error("Something broke")"#);
    let mut first = t.command(&["run"]).spawn().unwrap();
    // wait until the first run is inside the investigation (the fake claude was called);
    // the margins are wide so that a busy machine cannot make the runs miss each other
    for _ in 0..2400 {
        if !claude_calls(&t).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = t.run(&["run"]);
    assert_eq!(second.code, Some(0), "{}", second.all());
    assert!(
        second
            .stdout
            .contains("another logwarden run is in progress"),
        "{}",
        second.all()
    );
    assert!(first.wait().unwrap().success());
}

#[test]
fn nothing_new_run_is_quick_and_recorded() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    t.loguru(r#"logger.add("app.log"); logger.warning("Retrying request 1 of 3")"#);
    t.ok(&["run"]);
    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("0 lines read, 0 warnings/errors kept"),
        "{}",
        r.stdout
    );
}

#[test]
fn unreadable_source_is_reported_and_others_go_on() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\n\n[[source]]\nname = \"dir\"\npath = \"a-directory\"\nfrom = \"start\"\n",
    );
    std::fs::create_dir(t.path("a-directory")).unwrap();
    t.loguru(r#"logger.add("app.log"); logger.error("Still read")"#);
    let r = t.run(&["run"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("source `dir`"), "{}", r.all());
    assert_eq!(t.incident_files().len(), 1);
}

/// A run at `at` that holds the run lock, its investigation hung (`run_deadline` 1m,
/// investigator timeout 30s), once its investigation has started: the test, the fake
/// ntfy and the running process.
fn a_run_holding_the_lock(at: &str) -> (Test, FakeNtfy, std::process::Child) {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let claude = fake_claude(&t, "hang");
    t.config(&format!(
        "run_deadline = \"1m\"\n[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\n[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\ntimeout = \"30s\"\n{}",
        claude.display(),
        ntfy.config("ops")
    ));
    t.loguru(r#"logger.add("app.log"); logger.error("Something broke")"#);
    let first = t.command(&["run", "--now", at]).spawn().unwrap();
    for _ in 0..2400 {
        if !claude_calls(&t).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (t, ntfy, first)
}

/// A run that reads the wall clock after it was stepped forward (here: a holder run at a
/// time given far in the past) judges the lock's holder by the time since boot: a few
/// seconds, so another run is in progress, not a stuck one.
#[test]
fn a_clock_stepped_forward_does_not_make_a_run_in_progress_look_stuck() {
    if !have_loguru() {
        return;
    }
    let (t, _ntfy, mut first) = a_run_holding_the_lock("2020-01-01T10:00:00Z");
    // the wall clock, read: years after the holder's time
    let busy = t.run(&["run"]);
    assert_eq!(busy.code, Some(0), "{}", busy.all());
    assert!(
        busy.stdout.contains("another logwarden run is in progress"),
        "{}",
        busy.all()
    );
    assert!(!busy.all().contains("stuck"), "{}", busy.all());
    assert!(first.wait().unwrap().success());
}

#[test]
fn a_run_stuck_past_its_deadline_is_reported_loudly_by_the_next() {
    if !have_loguru() {
        return;
    }
    let (t, ntfy, mut first) = a_run_holding_the_lock("2026-11-22T10:00:00Z");
    // Within the deadline (1m, plus the 30s investigation and a minute's margin): busy.
    let busy = t.run(&["run", "--now", "2026-11-22T10:02:00Z"]);
    assert_eq!(busy.code, Some(0), "{}", busy.all());
    assert!(busy.stdout.contains("another logwarden run is in progress"));
    // Past it: the lock's holder is stuck, and that is an error and a page.
    let stuck = t.run(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(stuck.code, Some(2), "{}", stuck.all());
    assert!(
        stuck
            .stderr
            .contains("has held the run lock since 2026-11-22T10:00:00Z")
            && stuck.stderr.contains("it is stuck"),
        "{}",
        stuck.all()
    );
    let pages = ntfy.messages_to("ops");
    assert!(
        pages.iter().any(|m| m.body.contains("it is stuck")),
        "{pages:?}"
    );
    assert!(first.wait().unwrap().success());
}
