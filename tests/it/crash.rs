//! A crash between writing the incident file and recording it: the next run finishes
//! the job with exactly one incident file and one notification.

use crate::util::*;

#[test]
fn crash_after_the_incident_file_gives_one_incident_and_one_page() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Worker 3 lost its lease\n2026-11-22 10:00:02.000 | CRITICAL | app:g:2 - Ledger mismatch of 12 cents\n",
    );
    let out = t
        .command(&["run"])
        .env("LOGWARDEN_FAULT", "after-incident-file")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the fault point aborts the run");
    assert_eq!(
        t.incident_files().len(),
        1,
        "one file was written before the crash"
    );
    assert!(ntfy.messages().is_empty());

    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("0 lines read"),
        "the lines were committed before the crash: {}",
        r.stdout
    );
    let files = t.incident_files();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(ntfy.messages().len(), 2);
    t.ok(&["run"]);
    assert_eq!(t.incident_files().len(), 2);
    assert_eq!(ntfy.messages().len(), 2);
    let incidents = t.incidents();
    assert_eq!(incidents.len(), 2);
    assert!(incidents.iter().all(|i| i["stage"] == "filed"));
}

#[test]
fn a_crash_at_any_step_of_filing_a_batch_gives_one_file_and_one_page_each() {
    // The run's pages are written, flushed together, then filed in one transaction: a
    // crash between any two of these steps is finished by the next run.
    for point in [
        "after-read-commit",
        "after-incident-file",
        "after-pages-written",
        "after-pages-synced",
    ] {
        let ntfy = FakeNtfy::start(None);
        let t = Test::new();
        t.with_app_source(&ntfy.config("ops"));
        t.write(
            "app.log",
            "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Worker 3 lost its lease\n\
             2026-11-22 10:00:01.000 | ERROR    | app:g:2 - Ledger mismatch of 12 cents\n\
             2026-11-22 10:00:02.000 | CRITICAL | app:h:3 - Disk quota exceeded on volume data\n",
        );
        let out = t
            .command(&["run", "--now", "2026-11-22T10:01:00Z"])
            .env("LOGWARDEN_FAULT", point)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{point}: the fault point aborts the run"
        );
        assert!(ntfy.messages().is_empty(), "{point}");
        t.append(
            "app.log",
            b"2026-11-22 10:01:30.000 | ERROR    | app:f:1 - Worker 4 lost its lease\n",
        );
        let r = t.ok(&["run", "--now", "2026-11-22T10:02:00Z"]);
        t.ok(&["run", "--now", "2026-11-22T10:03:00Z"]);
        assert_eq!(t.incident_files().len(), 3, "{point}: {}", r.stdout);
        assert_eq!(ntfy.messages().len(), 3, "{point}: {}", r.stdout);
        let incidents = t.incidents();
        assert_eq!(incidents.len(), 3, "{point}");
        assert!(incidents.iter().all(|i| i["stage"] == "filed"), "{point}");
        assert_eq!(total_occurrences(&t), 4, "{point}: each line counted once");
    }
}

#[test]
fn a_page_a_run_died_before_rewriting_is_brought_up_to_date_by_the_next() {
    let t = Test::new();
    t.with_app_source(NO_NAG);
    let line = |s: u32| {
        format!("2026-11-22 10:00:{s:02}.000 | ERROR    | app:f:1 - Worker 3 lost its lease\n")
    };
    t.write("app.log", &(0..3).map(line).collect::<String>());
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    t.append("app.log", (3..7).map(line).collect::<String>().as_bytes());
    let out = t
        .command(&["run", "--now", "2026-11-22T10:02:00Z"])
        .env("LOGWARDEN_FAULT", "after-read-commit")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(total_occurrences(&t), 7, "the read is committed");
    // The next run reads nothing new, and still owes the page its four occurrences.
    t.ok(&["run", "--now", "2026-11-22T10:07:00Z"]);
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(page.contains("occurrences: 7"), "{page}");
    assert!(page.contains("10:00:06"), "last seen: {page}");
}

#[test]
fn temporary_files_a_killed_run_left_are_removed_once_stale() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Worker 3 lost its lease\n",
    );
    let out = t
        .command(&["run", "--now", "2026-11-22T10:01:00Z"])
        .env("LOGWARDEN_FAULT", "after-read-commit")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Left by a writer killed between writing a page and renaming it: one long ago,
    // one that may belong to a command writing right now.
    t.write("incidents/.logwarden-Ab12Cd.tmp", "half a page");
    t.write("incidents/.logwarden-Ef34Gh.tmp", "being written");
    let old = std::fs::File::options()
        .write(true)
        .open(t.path("incidents/.logwarden-Ab12Cd.tmp"))
        .unwrap();
    // Two hours before by the file system's clock (the suite may run under libfaketime,
    // which moves this process's clock, not the kernel's timestamps).
    let written = old.metadata().unwrap().modified().unwrap();
    old.set_modified(written - std::time::Duration::from_secs(7200))
        .unwrap();
    t.ok(&["run", "--now", "2026-11-22T10:02:00Z"]);
    assert_eq!(t.incident_files().len(), 1);
    assert!(!t.path("incidents/.logwarden-Ab12Cd.tmp").exists());
    assert!(t.path("incidents/.logwarden-Ef34Gh.tmp").exists());

    // The folder is swept once a day, not on every filing (it holds a year of pages).
    let stale = |name: &str| {
        t.write(name, "half a page");
        let f = std::fs::File::options()
            .write(true)
            .open(t.path(name))
            .unwrap();
        let written = f.metadata().unwrap().modified().unwrap();
        f.set_modified(written - std::time::Duration::from_secs(7200))
            .unwrap();
    };
    stale("incidents/.logwarden-Ij56Kl.tmp");
    let append = |line: &str| {
        let mut log = t.read("app.log");
        log.push_str(line);
        t.write("app.log", &log);
    };
    append("2026-11-22 11:00:00.000 | ERROR    | app:f:2 - Disk quota exceeded for tenant 9\n");
    t.ok(&["run", "--now", "2026-11-22T11:01:00Z"]);
    assert_eq!(t.incident_files().len(), 2);
    assert!(t.path("incidents/.logwarden-Ij56Kl.tmp").exists());
    append("2026-11-23 11:00:00.000 | ERROR    | app:f:3 - Payment provider answered 503\n");
    t.ok(&["run", "--now", "2026-11-23T11:01:00Z"]);
    assert_eq!(t.incident_files().len(), 3);
    assert!(!t.path("incidents/.logwarden-Ij56Kl.tmp").exists());
}
