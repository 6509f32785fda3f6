//! Time: clock jumps of the host (forwards and back) and log times that lag or run
//! ahead of it never silence a page nor make one every run.

use crate::util::*;

fn rec(date: &str, time: &str, level: &str, msg: &str) -> String {
    format!("{date} {time}.000 | {level:<8} | app.pay:charge:42 - {msg}\n")
}

fn titles(ntfy: &FakeNtfy) -> Vec<String> {
    ntfy.messages_to("ops")
        .iter()
        .map(|m| decode_rfc2047(m.header("Title").unwrap_or("")))
        .collect()
}

/// A run with the clock 30 days ahead fills the hourly cap and makes a digest, stamped
/// 30 days ahead. Back at the right time, neither counts in this hour: pages, critical
/// or not, still go out.
#[test]
fn a_run_with_the_clock_30_days_ahead_does_not_hold_later_pages() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}max_per_hour = 2\n{NO_NAG}", ntfy.config("ops")));
    let day = "2026-11-22";
    t.write(
        "app.log",
        &[
            rec(day, "10:00:00", "ERROR", "Invoice 7 PDF render failed"),
            rec(day, "10:00:01", "ERROR", "Thumbnail cache refused key 9"),
            rec(day, "10:00:02", "ERROR", "Mail relay said no to message 4"),
        ]
        .concat(),
    );
    let r = t.ok(&["run", "--now", "2026-12-22T10:00:00Z"]);
    assert!(r.stdout.contains("folded into a digest"), "{}", r.stdout);
    assert_eq!(ntfy.messages_to("ops").len(), 3, "2 pages and a digest");

    // the clock is right again
    t.append(
        "app.log",
        [
            rec(
                day,
                "10:05:00",
                "CRITICAL",
                "Database disk full on volume 3",
            ),
            rec(
                day,
                "10:05:01",
                "ERROR",
                "Payment gateway timed out after 30s",
            ),
        ]
        .concat()
        .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert!(
        !r.stdout.contains("held for the next hour"),
        "rows stamped in the future count in no cap: {}",
        r.stdout
    );
    let sent = titles(&ntfy);
    assert_eq!(sent.len(), 5, "{sent:?}\n{}", r.stdout);
    assert!(
        sent.iter().any(|t| t.contains("Database disk full")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|t| t.contains("Payment gateway")),
        "{sent:?}"
    );

    // and the next hour's cap counts what this hour sent, as before
    t.append(
        "app.log",
        [
            rec(day, "10:10:00", "ERROR", "Search index lost shard 2"),
            rec(day, "10:10:01", "ERROR", "Cron job skipped run 5"),
        ]
        .concat()
        .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    assert!(r.stdout.contains("folded into a digest"), "{}", r.stdout);
}

/// The clock goes back an hour: what was sent "later" does not fill this hour's cap,
/// and a critical incident notified "later" is still reminded of.
#[test]
fn the_clock_going_back_an_hour_keeps_pages_and_reminders_going() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}max_per_hour = 2\n", ntfy.config("ops")));
    let day = "2026-11-22";
    t.write(
        "app.log",
        &[
            rec(
                day,
                "10:59:00",
                "CRITICAL",
                "Database disk full on volume 3",
            ),
            rec(day, "10:59:01", "WARNING", "Invoice 7 PDF render failed"),
            rec(day, "10:59:02", "WARNING", "Thumbnail cache refused key 9"),
        ]
        .concat(),
    );
    t.ok(&["run", "--now", "2026-11-22T11:00:00Z"]);
    assert_eq!(ntfy.messages_to("ops").len(), 3, "2 pages and a digest");

    t.append(
        "app.log",
        rec(
            day,
            "10:00:30",
            "WARNING",
            "Payment gateway timed out after 30s",
        )
        .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert!(r.stdout.contains("reminder #1"), "{}", r.stdout);
    assert!(!r.stdout.contains("held for the next hour"), "{}", r.stdout);
    let sent = titles(&ntfy);
    assert!(
        sent.iter().any(|t| t.contains("Payment gateway")),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|t| t.contains("nag #1") && t.contains("Database disk full")),
        "{sent:?}"
    );
}

/// A run with the clock a year behind (a VPS booted with a stale clock) sees an open
/// incident again and opens another. Once the clock is right, neither looks a year
/// quiet: both stay open and keep nagging, and resolve only after a real quiet day.
#[test]
fn a_run_with_the_clock_a_year_behind_resolves_nothing_once_it_is_right() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}[incidents]\nnag = {{ critical = \"10m\" }}\n",
        ntfy.config("ops")
    ));
    let day = "2026-11-22";
    t.write("app.log", &rec(day, "10:00:00", "ERROR", "Boom happened"));
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    t.append(
        "app.log",
        [
            rec(day, "10:02:00", "ERROR", "Boom happened"),
            rec(day, "10:02:01", "ERROR", "Other thing broke"),
        ]
        .concat()
        .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2025-11-22T09:00:00Z"]);
    assert!(r.stdout.contains("new incident #2"), "{}", r.stdout);
    let r = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert!(!r.stdout.contains("resolved"), "{}", r.stdout);
    assert!(r.stdout.contains("reminder"), "{}", r.stdout);
    for i in t.incidents() {
        assert_eq!(i["status"], "open", "{i}");
    }
    // A real quiet day later both resolve.
    let r = t.ok(&["run", "--now", "2026-11-23T10:20:00Z"]);
    for i in t.incidents() {
        assert_eq!(i["status"], "resolved", "{}\n{i}", r.stdout);
    }
}

/// An app whose clock is two hours behind, with `resolve_after` one hour: its
/// incident stays open while logwarden keeps seeing it (one page, not one per run),
/// and resolves an hour after logwarden last saw it.
#[test]
fn a_log_whose_times_lag_more_than_resolve_after_pages_once() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}[incidents]\nresolve_after = \"1h\"\nnag = {{ critical = \"off\" }}\n",
        ntfy.config("ops")
    ));
    let day = "2026-11-22";
    t.write(
        "app.log",
        &rec(day, "08:00:00", "ERROR", "Invoice 7 PDF render failed"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    for (log, now) in [
        ("08:10:00", "2026-11-22T10:10:00Z"),
        ("08:20:00", "2026-11-22T10:20:00Z"),
        ("08:30:00", "2026-11-22T10:30:00Z"),
    ] {
        t.append(
            "app.log",
            rec(day, log, "ERROR", "Invoice 9 PDF render failed").as_bytes(),
        );
        let r = t.ok(&["run", "--now", now]);
        assert!(!r.stdout.contains("resolved"), "{now}: {}", r.stdout);
    }
    assert_eq!(titles(&ntfy).len(), 1, "{:?}", titles(&ntfy));
    let incidents = t.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["occurrences"], 4);
    assert_eq!(incidents[0]["status"], "open");
    assert_eq!(
        incidents[0]["last_seen"], "2026-11-22T08:30:00Z",
        "the log's time"
    );

    let r = t.ok(&["run", "--now", "2026-11-22T11:31:00Z"]);
    assert!(r.stdout.contains("incident #1 resolved"), "{}", r.stdout);
}

/// A line stamped 2100 (or a log clock far ahead) dates its incident by when
/// logwarden saw it: its page is named for that day and it is not pinned to the top
/// of the index.
#[test]
fn a_line_stamped_2100_gives_an_incident_dated_when_it_was_seen() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        &[
            rec(
                "2100-01-01",
                "00:00:00",
                "ERROR",
                "Clock chip says year 2100",
            ),
            rec(
                "2026-11-22",
                "09:00:00",
                "ERROR",
                "Invoice 7 PDF render failed",
            ),
        ]
        .concat(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let incidents = t.incidents();
    let future = incidents
        .iter()
        .find(|i| i["title"].as_str().unwrap().contains("Clock chip"))
        .expect("the 2100 line opened an incident");
    assert_eq!(future["first_seen"], "2026-11-22T10:00:00Z");
    assert_eq!(future["last_seen"], "2026-11-22T10:00:00Z");
    let names: Vec<String> = t
        .incident_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("2026-11-22-")),
        "{names:?}"
    );
    // INDEX.md lists newest first: the 2100 line is not newer than what came after it
    t.append(
        "app.log",
        rec(
            "2026-11-22",
            "10:30:00",
            "ERROR",
            "Mail relay said no to message 4",
        )
        .as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:31:00Z"]);
    let index = t.read("incidents/INDEX.md");
    let rows: Vec<&str> = index.lines().filter(|l| l.starts_with("| 2")).collect();
    assert!(rows[0].contains("Mail relay"), "{index}");
    assert!(!index.contains("2100-01-01"), "{index}");
}

/// A run with the clock 30 days ahead writes "that week's" briefing. Back at the right
/// time, Monday's briefing is still written: the last one, stamped in the future,
/// does not skip the weeks before it.
#[test]
fn the_weekly_briefing_is_not_skipped_after_a_run_with_the_clock_ahead() {
    let t = Test::new();
    t.with_app_source("[incidents]\nbriefing = \"mon 09:00\"\n");
    t.write("app.log", "");
    t.ok(&["run", "--now", "2026-11-20T10:00:00Z"]); // a Friday: starts the schedule
    let r = t.ok(&["run", "--now", "2026-12-22T10:00:00Z"]);
    assert!(r.stdout.contains("weekly briefing written"), "{}", r.stdout);
    let r = t.ok(&["run", "--now", "2026-11-23T09:30:00Z"]); // Monday
    assert!(r.stdout.contains("weekly briefing written"), "{}", r.stdout);
    assert!(t
        .path("incidents/briefings/2026-11-23-briefing.md")
        .exists());
}

/// The system clock (not `--now`) jumps three days ahead for a run, then is set right.
/// The time since boot says only seconds passed: nothing resolves, and the error that
/// comes back after is the same incident, not a regression paged again.
#[test]
fn a_run_with_the_system_clock_days_ahead_resolves_nothing() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}[incidents]\nresolve_after = \"1h\"\nnag = {{ critical = \"off\", warning = \"off\" }}\n",
        ntfy.config("ops")
    ));
    let day = "2026-11-22";
    t.write(
        "app.log",
        &rec(day, "10:00:00", "ERROR", "Invoice 7 PDF render failed"),
    );
    let Some(r) = t.run_with_clock_at("2026-11-22 10:01:00", &["run"]) else {
        return;
    };
    assert!(r.stdout.contains("new incident #1"), "{}", r.all());
    let r = t
        .run_with_clock_at("2026-11-25 10:01:00", &["run"])
        .unwrap();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(!r.stdout.contains("resolved"), "{}", r.all());
    assert!(
        // (Not "3d": the seconds since boot that pass between the runs count.)
        r.all().contains("the clock moved 2d23h") || r.all().contains("the clock moved 3d"),
        "the jump is reported: {}",
        r.all()
    );
    assert_eq!(t.incidents()[0]["status"], "open");

    // The clock is right again, and the error comes back.
    t.append(
        "app.log",
        rec(day, "10:02:00", "ERROR", "Invoice 9 PDF render failed").as_bytes(),
    );
    let r = t
        .run_with_clock_at("2026-11-22 10:03:00", &["run"])
        .unwrap();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(!r.stdout.contains("new incident #"), "{}", r.all());
    let all = t.incidents();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["status"], "open");
    assert_eq!(titles(&ntfy).len(), 1, "one page: {:?}", titles(&ntfy));
}

/// An ignore rule expires at 11:00; a run at 12:00 (the system clock) is past it. The
/// clock is then set back to 10:30: the rule does not silence again.
#[test]
fn an_expired_rule_stays_expired_when_the_system_clock_goes_back() {
    let t = Test::new();
    t.with_app_source(NO_NAG);
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"PDF render failed\"\nexpires = \"2026-11-22T11:00:00Z\"\ncomment = \"deploy in progress\"\n",
    );
    t.write("app.log", "");
    let Some(r) = t.run_with_clock_at("2026-11-22 12:00:00", &["run"]) else {
        return;
    };
    assert_eq!(r.code, Some(0), "{}", r.all());
    t.append(
        "app.log",
        rec(
            "2026-11-22",
            "10:29:00",
            "ERROR",
            "Invoice 7 PDF render failed",
        )
        .as_bytes(),
    );
    let r = t
        .run_with_clock_at("2026-11-22 10:30:00", &["run"])
        .unwrap();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("new incident #1"), "{}", r.all());
    assert!(r.all().contains("the clock went back"), "{}", r.all());
    // `ignore list` says so too, not "in force" by the clock it reads.
    let r = t
        .run_with_clock_at("2026-11-22 10:31:00", &["ignore", "list"])
        .unwrap();
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("EXPIRED"), "{}", r.all());
}
