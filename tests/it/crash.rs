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
