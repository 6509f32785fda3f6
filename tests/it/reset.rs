//! A lost state database (deleted, or its WAL deleted) is rebuilt from the incident
//! pages: no incident is paged again, ids, notes and status are kept, the run says
//! so and one notification does.

use crate::util::*;

fn rec(time: &str, level: &str, msg: &str) -> String {
    format!("2026-11-22 {time}.000 | {level:<8} | app.pay:charge:42 - {msg}\n")
}

fn titles(ntfy: &FakeNtfy) -> Vec<String> {
    ntfy.messages_to("ops")
        .iter()
        .map(|m| decode_rfc2047(m.header("Title").unwrap_or("")))
        .collect()
}

fn by_id(t: &Test, id: i64) -> serde_json::Value {
    t.incidents()
        .into_iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no incident #{id}"))
}

/// An ERROR and a CRITICAL in the app log, read by a run: incidents #1 and #2.
fn two_errors_run(t: &Test) {
    t.write(
        "app.log",
        &[
            rec("10:00:00", "ERROR", "Invoice 7 PDF render failed"),
            rec("10:00:10", "CRITICAL", "Database disk full on volume 3"),
        ]
        .concat(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
}

/// Two incidents paged, one noted and one acked (and, with `resolve`, the first
/// resolved); returns the pages' text by file name.
fn two_incidents(t: &Test, resolve: bool) -> Vec<(std::path::PathBuf, String)> {
    two_errors_run(t);
    t.ok(&[
        "incidents",
        "note",
        "1",
        "called the <PDF> vendor | ticket #4",
        "--now",
        "2026-11-22T10:02:00Z",
    ]);
    t.ok(&["incidents", "ack", "2", "--now", "2026-11-22T10:03:00Z"]);
    if resolve {
        t.ok(&["incidents", "resolve", "1", "--now", "2026-11-22T10:04:00Z"]);
    }
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    t.incident_files()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

fn remove(t: &Test, suffixes: &[&str]) {
    for s in suffixes {
        let p = t.path(&format!("state/logwarden.db{s}"));
        if p.exists() {
            std::fs::remove_file(&p).unwrap();
        }
    }
}

#[test]
fn a_deleted_database_is_rebuilt_from_the_pages_without_paging_again() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops"))); // from = "start": the log is read again
    let pages = two_incidents(&t, false);
    assert_eq!(pages.len(), 2);
    assert_eq!(titles(&ntfy).len(), 2);

    remove(&t, &["", "-wal", "-shm"]);
    t.append(
        "app.log",
        rec("10:10:00", "ERROR", "Invoice 9 PDF render failed").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    assert!(
        r.stdout.contains("state rebuilt:") && r.stdout.contains("#1, #2"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("2 record(s) from before the loss, read again"),
        "the re-read lines the pages counted: {}",
        r.stdout
    );
    assert!(!r.stdout.contains("new incident #"), "{}", r.stdout);
    let sent = titles(&ntfy);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[2].contains("rebuilt its state"), "{sent:?}");

    // the same ids, status and notes; the new line counted once on #1, the old not again
    assert_eq!(
        t.incident_files(),
        pages.iter().map(|p| p.0.clone()).collect::<Vec<_>>()
    );
    let one = by_id(&t, 1);
    assert_eq!(
        (one["status"].as_str(), one["occurrences"].as_u64()),
        (Some("open"), Some(2))
    );
    let two = by_id(&t, 2);
    assert_eq!(two["status"], "acked");
    assert_eq!(two["severity"], "critical");
    let show = t.ok(&["incidents", "show", "1"]).stdout;
    assert!(
        show.contains("called the <PDF> vendor | ticket #4"),
        "{show}"
    );
    let path1 = &pages
        .iter()
        .find(|p| p.1.starts_with("---\nid: 1\n"))
        .expect("the page of #1")
        .0;
    let page1 = std::fs::read_to_string(path1).unwrap();
    assert!(page1.contains("occurrences: 2"), "{page1}");
    assert_eq!(
        page1
            .matches("called the &lt;PDF&gt; vendor \\| ticket #4")
            .count(),
        1,
        "the note is shown once, not escaped twice: {page1}"
    );
    assert!(
        page1.contains("Invoice 7 PDF render failed"),
        "the evidence is kept: {page1}"
    );

    // said once: the next runs are ordinary
    let r = t.ok(&["run", "--now", "2026-11-22T10:20:00Z"]);
    assert!(!r.stdout.contains("state rebuilt"), "{}", r.stdout);
    t.append(
        "app.log",
        rec("10:25:00", "ERROR", "Mail relay said no to message 4").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:26:00Z"]);
    assert!(r.stdout.contains("new incident #3"), "{}", r.stdout);
    assert_eq!(titles(&ntfy).len(), 4);
    assert_eq!(t.incident_files().len(), 3);
}

#[test]
fn a_deleted_wal_is_rebuilt_from_the_pages_without_paging_again() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    let pages = two_incidents(&t, true);
    assert_eq!(titles(&ntfy).len(), 2);
    assert!(t.path("state/logwarden.db-wal").exists());

    remove(&t, &["-wal"]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    let sent = titles(&ntfy);
    assert_eq!(sent.len(), 3, "{sent:?}\n{}", r.stdout);
    assert!(sent[2].contains("rebuilt its state"), "{sent:?}");
    assert_eq!(t.incident_files().len(), pages.len());
    assert_eq!(by_id(&t, 1)["status"], "resolved");
    assert_eq!(by_id(&t, 2)["status"], "acked");

    // #1 was resolved: its signature coming back is a regression of it, paged once
    t.append(
        "app.log",
        rec("10:30:00", "ERROR", "Invoice 11 PDF render failed").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:31:00Z"]);
    assert!(r.stdout.contains("new incident #3"), "{}", r.stdout);
    assert_eq!(by_id(&t, 3)["regression_of"], 1);
    assert_eq!(titles(&ntfy).len(), 4);
}

/// The phone's Ack and Mute messages stay on the control topic (ntfy caches them);
/// the record of those already applied went with the database. After the rebuild the
/// topic is read from then on: yesterday's mute is not applied again (it would
/// silence its incident for another 24 hours).
#[test]
fn after_a_rebuild_the_phones_old_mute_is_not_applied_again() {
    let ntfy = FakeNtfy::start(Some("tk_ops"));
    ntfy.allow_anonymous_write("ops-control");
    let t = Test::new().env("NTFY_TEST_TOKEN", "tk_ops");
    t.with_app_source(&format!(
        "{}token_env = \"NTFY_TEST_TOKEN\"\ncontrol_topic = \"ops-control\"\n{NO_NAG}",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "Invoice 7 PDF render failed"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:30Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[0], "Mute 24h"), 200);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("muted for 24h"), "{}", r.stdout);
    let mutes = t.read("state/mutes.toml");

    remove(&t, &["", "-wal", "-shm"]);
    t.append(
        "app.log",
        "2026-11-23 10:59:00.000 | ERROR    | app.pay:charge:42 - Invoice 8 PDF render failed\n"
            .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-23T11:00:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    assert!(!r.stdout.contains("muted"), "{}", r.stdout);
    assert!(r.stdout.contains("+1 on open incident #1"), "{}", r.stdout);
    assert_eq!(t.read("state/mutes.toml"), mutes);
}

#[test]
fn after_a_rebuild_an_old_mute_behind_more_than_one_polls_worth_is_not_applied_either() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}control_topic = \"ops-control\"\n{NO_NAG}",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "Invoice 7 PDF render failed"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:30Z"]);
    // The public topic holds over a mebibyte of junk, then the person's Mute.
    ntfy.flood("ops-control", 300, |_| "x".repeat(4000));
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[0], "Mute 24h"), 200);
    let mut muted = false;
    for minute in ["10:05", "10:10", "10:15"] {
        let r = t.ok(&["run", "--now", &format!("2026-11-22T{minute}:00Z")]);
        muted |= r.stdout.contains("muted for 24h");
    }
    assert!(muted, "the tap is applied once read");
    // The team lifts the mute by hand, then the database is lost.
    let mutes = t.read("state/mutes.toml");
    let id = mutes
        .lines()
        .find_map(|l| {
            l.strip_prefix("id = \"")
                .map(|r| r.trim_end_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("{mutes}"));
    t.ok(&["ignore", "rm", &id]);
    remove(&t, &["", "-wal", "-shm"]);
    for minute in ["11:00", "11:05", "11:10", "11:15"] {
        let r = t.ok(&["run", "--now", &format!("2026-11-23T{minute}:00Z")]);
        assert!(!r.stdout.contains("muted"), "{minute}: {}", r.stdout);
    }
    let after = t.read("state/mutes.toml");
    assert!(!after.contains("[[rule]]"), "{mutes}\n---\n{after}");
}

/// A source read from the end (the default) over a log with an error from before
/// logwarden watched (never paged); one error paged (#1) at 10:01; then two more
/// records written after that run (another of #1's, and a new one).
fn paged_once_then_two_more_records() -> (Test, FakeNtfy) {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.config(&format!(
        "[[source]]\nname = \"app\"\npath = \"app.log\"\n{}{NO_NAG}",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &rec("08:00:00", "ERROR", "Legacy cron exploded on node 3"),
    );
    t.ok(&["run", "--now", "2026-11-22T09:00:00Z"]);
    t.append(
        "app.log",
        rec("10:00:00", "ERROR", "Invoice 7 PDF render failed").as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(titles(&ntfy).len(), 1);
    t.append(
        "app.log",
        [
            rec("10:03:00", "ERROR", "Invoice 8 PDF render failed"),
            rec("10:04:00", "ERROR", "Mail relay said no to message 4"),
        ]
        .concat()
        .as_bytes(),
    );
    (t, ntfy)
}

/// A source that starts at the end of its log (`from = "end"`, the default) lost its
/// read position with the database: it is read again from the start, so what was
/// written between the last run and the loss is not lost, and nothing from before it
/// (the pages' records, or errors older than logwarden's watch) is paged.
#[test]
fn a_source_read_from_the_end_loses_nothing_written_before_the_rebuild() {
    let (t, ntfy) = paged_once_then_two_more_records();
    // then the database is lost
    remove(&t, &["", "-wal", "-shm"]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    assert!(r.stdout.contains("+1 on open incident #1"), "{}", r.stdout);
    assert!(r.stdout.contains("new incident #2"), "{}", r.stdout);
    assert!(!r.stdout.contains("Legacy cron"), "{}", r.stdout);
    assert_eq!(by_id(&t, 1)["occurrences"], 2);
    let sent = titles(&ntfy);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.iter().any(|s| s.contains("Mail relay")), "{sent:?}");
    assert!(
        sent.iter().any(|s| s.contains("rebuilt its state")),
        "{sent:?}"
    );
}

#[test]
fn a_file_rotated_away_between_the_last_run_and_the_loss_is_read_too() {
    let (t, ntfy) = paged_once_then_two_more_records();
    // Rotated away (renamed, a new file started), then the database is lost: no
    // checkpoint leads to `app.log.1` any more.
    std::fs::rename(t.path("app.log"), t.path("app.log.1")).unwrap();
    t.write(
        "app.log",
        &rec("10:06:00", "ERROR", "Invoice 9 PDF render failed"),
    );
    remove(&t, &["", "-wal", "-shm"]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:07:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    assert!(r.stdout.contains("new incident #2"), "{}", r.stdout);
    assert!(!r.stdout.contains("Legacy cron"), "{}", r.stdout);
    assert_eq!(by_id(&t, 1)["occurrences"], 3, "{}", r.stdout);
    assert!(
        titles(&ntfy).iter().any(|s| s.contains("Mail relay")),
        "{:?}",
        titles(&ntfy)
    );
    // and the next run reads neither file again
    t.ok(&["run", "--now", "2026-11-22T10:12:00Z"]);
    assert_eq!(by_id(&t, 1)["occurrences"], 3);
    assert_eq!(t.incidents().len(), 2);
}

/// A database put back from an older copy (or rolled back to its last checkpoint)
/// still knows some incidents, in an older state: those are brought up to their page,
/// the ones it never knew are rebuilt.
#[test]
fn an_older_copy_of_the_database_is_brought_up_to_the_pages() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    two_errors_run(&t);
    let copy = |from: &str, to: &str| {
        for s in ["", "-wal"] {
            let f = t.path(&format!("{from}/logwarden.db{s}"));
            if f.exists() {
                std::fs::create_dir_all(t.path(to)).unwrap();
                std::fs::copy(&f, t.path(&format!("{to}/logwarden.db{s}"))).unwrap();
            }
        }
    };
    copy("state", "backup");

    t.ok(&["incidents", "ack", "2", "--now", "2026-11-22T10:02:00Z"]);
    t.append(
        "app.log",
        [
            rec("10:03:00", "ERROR", "Invoice 8 PDF render failed"),
            rec("10:03:10", "ERROR", "Mail relay said no to message 4"),
        ]
        .concat()
        .as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:04:00Z"]);
    assert_eq!(titles(&ntfy).len(), 3);

    remove(&t, &["", "-wal", "-shm"]);
    copy("backup", "state");
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout.contains("state rebuilt:")
            && r.stdout.contains("#3;")
            && r.stdout
                .contains("2 incident(s) it still knew brought up to their page"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("new incident #"), "{}", r.stdout);
    assert_eq!(
        titles(&ntfy).len(),
        4,
        "only the notice: {:?}",
        titles(&ntfy)
    );
    assert_eq!(by_id(&t, 2)["status"], "acked");
    let show = t.ok(&["incidents", "show", "2"]).stdout;
    assert_eq!(show.matches(": acknowledged").count(), 1, "{show}");
    assert_eq!(by_id(&t, 1)["occurrences"], 2);
    assert_eq!(by_id(&t, 3)["status"], "open");
    assert_eq!(t.incident_files().len(), 3);
}

// ---- one file per incident, one incident per file --------------------------

fn page_of(t: &Test, id: i64) -> std::path::PathBuf {
    std::path::PathBuf::from(
        by_id(t, id)["file_path"]
            .as_str()
            .unwrap_or_else(|| panic!("#{id} has a page")),
    )
}

/// A page the user deleted leaves its name free on disk, but its incident still
/// writes there: a new incident of the same title that day (here the same message
/// from another logger) takes another name, so the two never share one file, and a
/// lost state is rebuilt with both.
#[test]
fn a_deleted_pages_name_is_not_given_to_another_incident() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    let line = |time: &str, logger: &str| {
        format!("2026-11-22 {time}.000 | ERROR    | {logger} - Connection refused\n")
    };
    t.write("app.log", &line("10:00:00", "app.db:connect:42"));
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let first = page_of(&t, 1);
    std::fs::remove_file(&first).unwrap(); // the user tidies the vault

    t.append(
        "app.log",
        line("10:05:00", "app.cache:connect:7").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert!(r.stdout.contains("new incident #2"), "{}", r.stdout);
    let second = page_of(&t, 2);
    assert_ne!(second, first, "#2 takes a name of its own");
    t.append(&rel(&t, &second), b"notes on #2: cache outage OPS-77\n");

    // #1 occurs again: its page comes back at its own name, #2's is untouched
    t.append("app.log", line("10:10:00", "app.db:connect:42").as_bytes());
    t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    let one = std::fs::read_to_string(&first).unwrap();
    let two = std::fs::read_to_string(&second).unwrap();
    assert!(
        one.starts_with("---\nid: 1\n") && !one.contains("OPS-77"),
        "{one}"
    );
    assert!(
        two.starts_with("---\nid: 2\n") && two.contains("OPS-77"),
        "{two}"
    );

    remove(&t, &["", "-wal", "-shm"]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:20:00Z"]);
    assert!(r.stdout.contains("#1, #2"), "both rebuilt: {}", r.stdout);
    assert!(!r.stdout.contains("new incident #"), "{}", r.stdout);
}

/// A path inside the test dir, as `Test` methods take it.
fn rel(t: &Test, p: &std::path::Path) -> String {
    p.strip_prefix(t.path(""))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A copy of a page (an editor's "Make a copy", a sync tool's conflicted copy) is
/// left behind as it was when copied. After a lost state the live page wins, whatever
/// the names' order: the resolved incident stays resolved and does not remind.
#[test]
fn a_stale_copy_of_a_page_does_not_win_the_rebuild() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}[incidents]\nnag = {{ critical = \"10m\" }}\n",
        ntfy.config("ops")
    ));
    t.write("app.log", &rec("10:00:00", "ERROR", "Database refused db1"));
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let live = page_of(&t, 1);
    let stem = live.to_string_lossy().trim_end_matches(".md").to_string();
    // sorts before the live page ("… 1.md" < "….md"), and after it
    let copies = [format!("{stem} 1.md"), format!("{stem}.sync-conflict-1.md")];
    for c in &copies {
        std::fs::copy(&live, c).unwrap();
    }
    t.ok(&["incidents", "ack", "1", "--now", "2026-11-22T10:02:00Z"]);
    t.ok(&["incidents", "resolve", "1", "--now", "2026-11-22T10:03:00Z"]);

    remove(&t, &["", "-wal", "-shm"]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:20:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    for c in &copies {
        let name = std::path::Path::new(c)
            .file_name()
            .unwrap()
            .to_string_lossy();
        assert!(
            r.stdout.contains(&format!(
                "page not used: {name}: incident #1 has another page"
            )),
            "{}",
            r.stdout
        );
    }
    assert_eq!(by_id(&t, 1)["status"], "resolved");
    assert_eq!(page_of(&t, 1), live);
    t.ok(&["run", "--now", "2026-11-22T10:40:00Z"]);
    let sent = titles(&ntfy);
    assert!(!sent.iter().any(|s| s.contains("nag")), "{sent:?}");
}

// ---- the user's notes -------------------------------------------------------

const MARKER: &str =
    "<!-- logwarden: write your notes below this line; they are kept on every update -->";

/// The notes marker is found by its start: text typed after it on its line is kept as
/// a note. A page whose marker line is gone is not rewritten (where its notes start is
/// not known): the run says so, notifications go on, and once the line is back the
/// page is brought up to date with the notes.
#[test]
fn notes_survive_a_touched_marker_line_and_a_page_without_one_is_left_alone() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    t.write(
        "app.log",
        &[
            rec("10:00:00", "ERROR", "Database refused db1"),
            rec("10:00:01", "ERROR", "Cache storm on shard"),
        ]
        .concat(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let (a, b) = (page_of(&t, 1), page_of(&t, 2));
    let text = std::fs::read_to_string(&a).unwrap();
    let typed = format!("{MARKER} Root cause: failover, see OPS-42\n");
    std::fs::write(&a, text.replace(&format!("{MARKER}\n"), &typed)).unwrap();
    let text = std::fs::read_to_string(&b).unwrap();
    let without = format!(
        "{}\n## My notes\nRoot cause: cache node 7, see OPS-43\n",
        text.replace(&format!("{MARKER}\n"), "")
    );
    std::fs::write(&b, &without).unwrap();

    t.append(
        "app.log",
        [
            rec("10:05:00", "ERROR", "Database refused db1"),
            rec("10:05:01", "ERROR", "Cache storm on shard"),
            rec("10:05:02", "CRITICAL", "Mail relay said no to message 4"),
        ]
        .concat()
        .as_bytes(),
    );
    let r = t.run(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("new incident #3"), "{}", r.stdout);
    assert!(
        r.stdout.contains("incident #2:") && r.stdout.contains("notes marker line"),
        "{}",
        r.stdout
    );
    assert!(
        titles(&ntfy).iter().any(|s| s.contains("Mail relay")),
        "notifications go on: {:?}",
        titles(&ntfy)
    );
    let one = std::fs::read_to_string(&a).unwrap();
    assert!(one.contains("occurrences: 2"), "{one}");
    assert!(
        one.contains(&format!("{MARKER}\nRoot cause: failover, see OPS-42\n")),
        "{one}"
    );
    assert_eq!(
        std::fs::read_to_string(&b).unwrap(),
        without,
        "left as it was"
    );

    // the marker put back above the notes: the page is rewritten, the notes kept
    std::fs::write(
        &b,
        without.replace("\n## My notes\n", &format!("\n{MARKER}\n## My notes\n")),
    )
    .unwrap();
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(!r.stdout.contains("notes marker"), "{}", r.stdout);
    let two = std::fs::read_to_string(&b).unwrap();
    assert!(two.contains("occurrences: 2"), "{two}");
    assert_eq!(two.matches("see OPS-43").count(), 1, "{two}");
    let one = std::fs::read_to_string(&a).unwrap();
    assert_eq!(one.matches("see OPS-42").count(), 1, "{one}");
}

// ---- a page moved by the user ----------------------------------------------

/// Every file under `incidents/` (subfolders too) whose front matter says `id: N`.
fn pages_with_id(t: &Test, id: i64) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(&t.path(""), &mut all);
    all.retain(|p| {
        p.extension().is_some_and(|x| x == "md")
            && std::fs::read_to_string(p).is_ok_and(|s| s.starts_with(&format!("---\nid: {id}\n")))
    });
    all.sort();
    all
}

/// A page renamed or moved into a subfolder of the incidents folder (a notes vault
/// tidied by hand) is followed by its front matter, not written again at its old
/// name: one page per incident, with the notes and the updates together.
#[test]
fn a_page_renamed_in_the_incidents_folder_is_followed() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    t.write("app.log", &rec("10:00:00", "ERROR", "Database refused db1"));
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let old = page_of(&t, 1);
    t.append(&rel(&t, &old), b"my investigation notes (OPS-42)\n");
    std::fs::create_dir_all(t.path("incidents/outages")).unwrap();
    let new = t.path("incidents/outages/db-outage.md");
    std::fs::rename(&old, &new).unwrap();

    t.append(
        "app.log",
        rec("10:05:00", "ERROR", "Database refused db1").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert!(
        r.stdout.contains("incident #1: its page is now") && r.stdout.contains("db-outage.md"),
        "{}",
        r.stdout
    );
    t.ok(&[
        "incidents",
        "note",
        "1",
        "failover done",
        "--now",
        "2026-11-22T10:07:00Z",
    ]);
    assert_eq!(
        pages_with_id(&t, 1),
        std::slice::from_ref(&new),
        "one page of #1"
    );
    assert!(!old.exists());
    assert_eq!(page_of(&t, 1), new);
    let page = std::fs::read_to_string(&new).unwrap();
    assert!(page.contains("occurrences: 2"), "{page}");
    assert!(page.contains("failover done"), "{page}");
    assert_eq!(page.matches("OPS-42").count(), 1, "{page}");

    // said once
    t.append(
        "app.log",
        rec("10:10:00", "ERROR", "Database refused db1").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    assert!(!r.stdout.contains("its page is now"), "{}", r.stdout);
    assert!(std::fs::read_to_string(&new)
        .unwrap()
        .contains("occurrences: 3"));

    // a lost state is rebuilt from it where it is now
    remove(&t, &["", "-wal", "-shm"]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:20:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    assert_eq!(page_of(&t, 1), new);
    assert_eq!(by_id(&t, 1)["occurrences"], 3);
}

/// A page moved into a subfolder is linked where it is: from `INDEX.md`, from its
/// month's file and from the page of a related incident (and back from it).
#[test]
fn links_to_a_page_moved_into_a_subfolder_lead_to_it() {
    let t = Test::new();
    t.with_app_source(NO_NAG);
    t.write("app.log", &rec("10:00:00", "ERROR", "Database refused db1"));
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let old = page_of(&t, 1);
    std::fs::create_dir_all(t.path("incidents/outages 2026")).unwrap();
    let new = t.path("incidents/outages 2026/db-outage.md");
    std::fs::rename(&old, &new).unwrap();
    t.ok(&["incidents", "resolve", "1", "--now", "2026-11-22T10:02:00Z"]);
    // the same error again: a regression of #1, whose page links to #1's
    t.append(
        "app.log",
        rec("10:05:00", "ERROR", "Database refused db1").as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert_eq!(by_id(&t, 2)["regression_of"], 1);
    assert_eq!(page_of(&t, 1), new);
    let second = page_of(&t, 2);
    let second_name = second.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(second.parent(), Some(t.path("incidents").as_path()));

    let index = t.read("incidents/INDEX.md");
    assert!(index.contains("(outages%202026/db-outage.md)"), "{index}");
    assert!(index.contains(&format!("({second_name})")), "{index}");
    let month = t.read("incidents/index/2026-11.md");
    assert!(
        month.contains("(../outages%202026/db-outage.md)"),
        "{month}"
    );
    assert!(month.contains(&format!("(../{second_name})")), "{month}");
    let page = std::fs::read_to_string(&second).unwrap();
    assert!(
        page.contains("regression of: [#1 ") && page.contains("(outages%202026/db-outage.md)"),
        "{page}"
    );
    let moved = std::fs::read_to_string(&new).unwrap();
    assert!(
        moved.contains("regressed as: [#2 ") && moved.contains(&format!("(../{second_name})")),
        "{moved}"
    );
}

/// The incidents folder moved (into a notes vault) and `incidents_dir` changed: the
/// pages recorded in the old folder are written in the new one, where the user's copy
/// with its notes is, and never again in the old place. Said once.
#[test]
fn pages_follow_a_moved_incidents_folder() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    t.write("app.log", &rec("10:00:00", "ERROR", "Database refused db1"));
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let name = page_of(&t, 1).file_name().unwrap().to_owned();

    std::fs::create_dir_all(t.path("vault")).unwrap();
    std::fs::rename(t.path("incidents"), t.path("vault/incidents")).unwrap();
    let config = t.read("logwarden.toml").replace(
        "incidents_dir = \"incidents\"",
        "incidents_dir = \"vault/incidents\"",
    );
    t.write("logwarden.toml", &config);
    let page = t.path("vault/incidents").join(&name);
    t.append(&rel(&t, &page), b"vault notes OPS-9\n");

    t.append(
        "app.log",
        rec("10:05:00", "ERROR", "Database refused db1").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert!(
        r.stdout.contains("incident #1: its page is now")
            && r.stdout.contains("outside incidents_dir"),
        "{}",
        r.stdout
    );
    t.ok(&["incidents", "ack", "1", "--now", "2026-11-22T10:07:00Z"]);
    assert!(
        !t.path("incidents").exists(),
        "nothing written in the old place"
    );
    assert_eq!(pages_with_id(&t, 1), std::slice::from_ref(&page));
    assert_eq!(page_of(&t, 1), page);
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(
        text.contains("occurrences: 2") && text.contains("status: acked"),
        "{text}"
    );
    assert_eq!(text.matches("OPS-9").count(), 1, "{text}");

    t.append(
        "app.log",
        rec("10:10:00", "ERROR", "Database refused db1").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    assert!(
        !r.stdout.contains("its page is now"),
        "said once: {}",
        r.stdout
    );
}

/// After a lost state, a source read again skips what the pages count; a new error of
/// another source whose clock runs behind (stamped before the newest page of the first)
/// is read, not taken for a record from before the loss.
#[test]
fn after_a_lost_state_a_new_error_of_a_source_whose_clock_lags_is_read() {
    let t = Test::new();
    t.config(&format!(
        "[[source]]\nname = \"web\"\npath = \"web.log\"\nfrom = \"start\"\n[[source]]\nname = \"worker\"\npath = \"worker.log\"\nfrom = \"start\"\n{NO_NAG}"
    ));
    t.write(
        "web.log",
        "2026-11-22 10:00:00.000 | ERROR    | web.api:get:12 - Disk full on /var/lib/web\n",
    );
    t.write(
        "worker.log",
        "2026-11-22 09:25:00.000 | INFO     | worker.main:run:1 - worker started\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    remove(&t, &["", "-wal", "-shm"]);
    t.append(
        "worker.log",
        b"2026-11-22 09:40:00.000 | CRITICAL | worker.pay:charge:88 - Payment provider unreachable: all charges failing\n",
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    let titles: Vec<String> = t
        .incidents()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles.iter().any(|x| x.contains("Payment provider")),
        "{titles:?}"
    );
    assert_eq!(
        by_id(&t, 1)["occurrences"],
        1,
        "the page's error not counted again"
    );
}
