//! Incident memory: one incident per problem, one page per incident, spikes, the
//! lifecycle open → acked → resolved, regressions, nagging until acked, INDEX.md,
//! notes, and the weekly briefing.

use crate::util::*;

fn rec(time: &str, level: &str, msg: &str) -> String {
    format!("2026-11-22 {time}.000 | {level:<8} | app.pay:charge:42 - {msg}\n")
}

fn run_at(t: &Test, now: &str) -> Run {
    t.ok(&["run", "--now", now])
}

#[test]
fn one_incident_and_one_page_for_a_recurring_error_with_fresh_samples() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    // Reminders (an unacked ERROR nags by default) are not what this test counts.
    t.with_app_and_ntfy(&ntfy, "");
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "Gateway timeout for order 1"),
    );
    run_at(&t, "2026-11-22T10:01:00Z");
    for (i, time) in ["10:05:00", "10:10:00", "10:15:00"].iter().enumerate() {
        let mut s = String::new();
        for j in 0..2 {
            s += &rec(
                time,
                "ERROR",
                &format!("Gateway timeout for order {}", 100 * (i + 1) + j),
            );
        }
        t.append("app.log", s.as_bytes());
        run_at(
            &t,
            &format!("2026-11-22T{}Z", time.replacen(":00", ":30", 1)),
        );
    }
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["occurrences"], 7);
    let samples: Vec<String> = inc[0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(samples.len(), 5);
    assert!(
        samples[0].contains("order 1\n") || samples[0].ends_with("order 1"),
        "first sample kept: {samples:?}"
    );
    assert!(
        samples[4].contains("order 301"),
        "latest sample kept: {samples:?}"
    );
    assert_eq!(ntfy.messages().len(), 1, "one page");
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(
        page.contains("occurrences: 7"),
        "front matter kept current: {page}"
    );
}

#[test]
fn a_spike_of_an_open_incident_renotifies_once() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "Queue consumer lag on shard 1"),
    );
    run_at(&t, "2026-11-22T10:01:00Z");
    t.append(
        "app.log",
        rec("10:02:00", "ERROR", "Queue consumer lag on shard 2").as_bytes(),
    );
    run_at(&t, "2026-11-22T10:03:00Z");
    let burst = |n: usize| {
        (0..n)
            .map(|i| {
                rec(
                    "10:04:00",
                    "ERROR",
                    &format!("Queue consumer lag on shard {i}"),
                )
            })
            .collect::<String>()
    };
    t.append("app.log", burst(60).as_bytes());
    let r = run_at(&t, "2026-11-22T10:05:00Z");
    assert!(r.stdout.contains("spiked (60 this run)"), "{}", r.stdout);
    t.append("app.log", burst(80).as_bytes());
    let r = run_at(&t, "2026-11-22T10:06:00Z");
    assert!(!r.stdout.contains("spiked"), "only once: {}", r.stdout);
    let m = ntfy.messages();
    assert_eq!(m.len(), 2, "the page and one spike: {m:?}");
    assert!(m[1].header("Title").unwrap().contains("Spike"));
}

#[test]
fn a_more_severe_record_raises_the_incident_and_pages_at_its_severity() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write(
        "app.log",
        &rec("10:00:00", "WARNING", "Replica lag is 12 seconds"),
    );
    run_at(&t, "2026-11-22T10:01:00Z");
    t.ok(&["incidents", "ack", "1"]);
    assert_eq!(ntfy.messages()[0].header("Priority"), Some("4"));
    // The same signature as ERROR: one incident still, now critical, and it pages.
    t.append(
        "app.log",
        rec("10:02:00", "ERROR", "Replica lag is 900 seconds").as_bytes(),
    );
    let r = run_at(&t, "2026-11-22T10:03:00Z");
    assert!(
        r.stdout
            .contains("incident #1 now critical (level ERROR), notified again"),
        "{}",
        r.stdout
    );
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["severity"], "critical");
    assert_eq!(inc[0]["level"], "ERROR");
    // The ack was given to a warning: it is taken back, and the page says so.
    assert_eq!(inc[0]["status"], "open");
    let m = ntfy.messages();
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m[1].header("Priority"), Some("5"));
    assert!(m[1].header("Title").unwrap().contains("Now ERROR: "));
    assert!(m[1].body.contains("acknowledge it again"), "{}", m[1].body);
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(page.contains("severity: critical"), "{page}");
    // More of the same level is counted, not paged again.
    t.append(
        "app.log",
        rec("10:04:00", "ERROR", "Replica lag is 950 seconds").as_bytes(),
    );
    let r = run_at(&t, "2026-11-22T10:05:00Z");
    assert!(!r.stdout.contains("now critical"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 2);
    assert_eq!(t.incidents()[0]["occurrences"], 3);
    // A band up pages (CRITICAL after ERROR); levels above it within the band do not.
    t.ok(&["incidents", "ack", "1"]);
    for (time, level) in [
        ("10:06:00", "CRITICAL"),
        ("10:08:00", "Level 51"),
        ("10:10:00", "Level 99"),
    ] {
        t.append(
            "app.log",
            rec(time, level, "Replica lag is 990 seconds").as_bytes(),
        );
        run_at(
            &t,
            &format!("2026-11-22T{}Z", time.replacen(":00", ":30", 1)),
        );
    }
    let m = ntfy.messages();
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m[2].header("Title").unwrap().contains("Now CRITICAL: "));
    let inc = &t.incidents()[0];
    assert_eq!(inc["level"], "Level 99");
    assert_eq!(
        inc["status"], "acked",
        "the severity did not rise: the ack holds"
    );
}

#[test]
fn a_rise_takes_the_place_of_a_page_still_waiting_and_of_a_spike() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_and_ntfy(
        &ntfy,
        "timezone = \"+00:00\"\n[ntfy.quiet_hours]\nwarning = \"22:00-07:00\"\n",
    );
    t.write(
        "app.log",
        &rec("10:00:00", "WARNING", "Replica lag is 12 seconds"),
    );
    // 02:05: the warning is held for quiet hours
    let r = run_at(&t, "2026-11-23T02:05:00Z");
    assert!(r.stdout.contains("1 held for quiet hours"), "{}", r.stdout);
    assert!(ntfy.messages().is_empty());
    // a burst of it with one ERROR: one page, critical, in place of the held warning
    // and of the spike
    let mut burst = String::new();
    for i in 0..60 {
        burst += &rec(
            "10:01:00",
            "WARNING",
            &format!("Replica lag is {i} seconds"),
        );
    }
    burst += &rec("10:01:00", "ERROR", "Replica lag is 900 seconds");
    t.append("app.log", burst.as_bytes());
    let r = run_at(&t, "2026-11-23T02:10:00Z");
    assert!(!r.stdout.contains("spiked"), "{}", r.stdout);
    let m = ntfy.messages();
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].header("Title").unwrap().contains("Now ERROR: "));
    assert_eq!(m[0].header("Priority"), Some("5"));
    // the morning sends nothing more: the held warning was superseded
    let r = run_at(&t, "2026-11-23T07:10:00Z");
    assert!(r.stdout.contains("0 waiting"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 1, "{:?}", ntfy.messages());
}

/// A loguru JSON record carries its level's number: a custom level the config does not
/// name is as severe as the record says, run after run, and pages once.
#[test]
fn a_custom_level_read_with_its_number_pages_once_and_rises_by_it() {
    if !have_loguru() {
        return;
    }
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.config(&format!(
        "[[source]]\nname = \"app\"\nkind = \"loguru-json\"\npath = \"app.json\"\nfrom = \"start\"\n{}",
        ntfy.config("ops")
    ));
    let log = |level: &str| {
        t.loguru(&format!(
            r#"logger.add("app.json", serialize=True)
logger.level("AUDIT", no=35)
logger.level("PAGER", no=45)
logger.log("{level}", "quota exceeded for tenant 7")"#
        ))
    };
    for (k, now) in ["10:00", "10:05", "10:10"].iter().enumerate() {
        log("AUDIT");
        let r = run_at(&t, &format!("2026-11-22T{now}:00Z"));
        assert!(!r.stdout.contains(" now "), "run {k}: {}", r.stdout);
    }
    assert_eq!(ntfy.messages().len(), 1, "{:?}", ntfy.messages());
    assert_eq!(t.incidents()[0]["occurrences"], 3);
    // silenced from the shell: capped at its number, so AUDIT is silenced, PAGER not
    t.ok(&[
        "ignore",
        "add",
        "--from-incident",
        "1",
        "--comment",
        "known quota noise",
    ]);
    assert!(
        t.read("ignore.toml").contains("level = \"35\""),
        "{}",
        t.read("ignore.toml")
    );
    log("AUDIT");
    let r = run_at(&t, "2026-11-22T10:12:00Z");
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    // a custom level above it, by number: one page more, at the incident's severity
    log("PAGER");
    let r = run_at(&t, "2026-11-22T10:15:00Z");
    assert!(
        r.stdout.contains("incident #1 now critical (level PAGER)"),
        "{}",
        r.stdout
    );
    log("PAGER");
    run_at(&t, "2026-11-22T10:20:00Z");
    let m = ntfy.messages();
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m[1].header("Title").unwrap().contains("Now PAGER: "),
        "{m:?}"
    );
}

#[test]
fn quiet_incidents_resolve_and_a_comeback_is_a_linked_regression() {
    let t = Test::new();
    t.with_app_source("[incidents]\nresolve_after = \"2h\"\n");
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "Invoice 7 PDF render failed"),
    );
    run_at(&t, "2026-11-22T10:01:00Z");
    let r = run_at(&t, "2026-11-22T11:00:00Z");
    assert!(!r.stdout.contains("resolved"), "{}", r.stdout);
    let r = run_at(&t, "2026-11-22T12:30:00Z");
    assert!(r.stdout.contains("incident #1 resolved"), "{}", r.stdout);
    let by_id = |t: &Test, id: i64| t.incidents().into_iter().find(|i| i["id"] == id).unwrap();
    assert_eq!(by_id(&t, 1)["status"], "resolved");
    assert_eq!(by_id(&t, 1)["resolved_by"], "auto");

    t.append(
        "app.log",
        rec("13:00:00", "ERROR", "Invoice 9 PDF render failed").as_bytes(),
    );
    let r = run_at(&t, "2026-11-22T13:01:00Z");
    assert!(r.stdout.contains("new incident #2"), "{}", r.stdout);
    assert_eq!(by_id(&t, 2)["regression_of"], 1);
    let files = t.incident_files();
    assert_eq!(files.len(), 2);
    let page_of = |id: i64| {
        let p = files
            .iter()
            .find(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .starts_with(&format!("---\nid: {id}\n"))
            })
            .unwrap();
        (p.clone(), std::fs::read_to_string(p).unwrap())
    };
    let ((old_path, old), (new_path, new)) = (page_of(1), page_of(2));
    let name = |p: &std::path::PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        new.contains("regression_of: 1")
            && new.contains("regression of: [#1 ")
            && new.contains(&name(&old_path)),
        "{new}"
    );
    assert!(
        old.contains("regressed as: [#2 ") && old.contains(&name(&new_path)),
        "linked both ways: {old}"
    );
    assert!(
        old.contains("status: resolved") && old.contains("resolved: no occurrence for 2h"),
        "{old}"
    );
}

#[test]
fn ack_resolve_note_and_list_from_the_shell() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        &(rec("10:00:00", "CRITICAL", "Ledger mismatch of 3 cents")
            + &rec("10:00:01", "WARNING", "Thumbnail 4 failed")),
    );
    run_at(&t, "2026-11-22T10:01:00Z");
    let page = t
        .incident_files()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("ledger"))
        .unwrap();
    let mut text = std::fs::read_to_string(&page).unwrap();
    text.push_str("\nMy own notes: called the bank.\n");
    std::fs::write(&page, text).unwrap();

    let r = t.ok(&["incidents", "ack", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["status"], "acked", "an array, one per id given");
    assert!(v[0]["acked_by"].is_string());
    let again = t.ok(&["incidents", "ack", "1"]);
    assert!(
        again.stdout.contains("incident #1 already acknowledged"),
        "acking twice is no error: {}",
        again.stdout
    );
    t.ok(&[
        "incidents",
        "note",
        "1",
        "called the bank, they will fix it",
    ]);
    let show = t.ok(&["incidents", "show", "1", "--json"]).stdout;
    assert!(show.contains("called the bank, they will fix it"), "{show}");
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(
        text.contains("status: acked") && text.contains("acked_by:") && text.contains("acked_at:"),
        "{text}"
    );
    assert!(
        text.contains("called the bank, they will fix it"),
        "the log is on the page"
    );
    assert!(
        text.contains("My own notes: called the bank."),
        "the user's notes survive"
    );

    t.ok(&["incidents", "resolve", "2"]);
    let open = t
        .ok(&["incidents", "list", "--status", "acked", "--json"])
        .stdout;
    let open: Vec<serde_json::Value> = serde_json::from_str(&open).unwrap();
    assert_eq!(open.len(), 1);
    let crit = t.ok(&["incidents", "--severity", "critical"]).stdout;
    assert!(
        crit.contains("Ledger mismatch") && !crit.contains("Thumbnail"),
        "{crit}"
    );
    assert!(t.run(&["incidents", "show", "99"]).code != Some(0));

    let index = t.read("incidents/INDEX.md");
    let ledger = index.find("Ledger mismatch").unwrap();
    let thumb = index.find("Thumbnail").unwrap();
    assert!(
        index.contains("| acked |") && index.contains("| resolved |"),
        "{index}"
    );
    assert!(thumb < ledger, "newest first: {index}");
    assert!(
        index.contains(&page.file_name().unwrap().to_string_lossy().to_string()),
        "linked: {index}"
    );
}

#[test]
fn critical_incidents_nag_until_acked() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write(
        "app.log",
        &rec("10:00:00", "CRITICAL", "Database disk full"),
    );
    run_at(&t, "2026-11-22T10:00:30Z");
    let r = run_at(&t, "2026-11-22T10:05:00Z");
    assert!(!r.stdout.contains("reminder"), "{}", r.stdout);
    let r = run_at(&t, "2026-11-22T10:11:00Z");
    assert!(r.stdout.contains("reminder #1"), "{}", r.stdout);
    run_at(&t, "2026-11-22T10:15:00Z");
    let r = run_at(&t, "2026-11-22T10:21:30Z");
    assert!(r.stdout.contains("reminder #2"), "{}", r.stdout);
    let m = ntfy.messages();
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(
        m[2].header("Title").unwrap().contains("nag #2"),
        "{:?}",
        m[2]
    );
    assert!(m[2].body.contains("unacked for 21m"), "{}", m[2].body);
    t.ok(&["incidents", "ack", "1"]);
    let r = run_at(&t, "2026-11-22T10:40:00Z");
    assert!(
        !r.stdout.contains("reminder"),
        "acked: no more nags: {}",
        r.stdout
    );
    assert_eq!(ntfy.messages().len(), 3);

    // warnings do not nag unless configured (an ERROR is critical by default, and does)
    t.append(
        "app.log",
        rec("10:41:00", "WARNING", "Thumbnail cache miss storm").as_bytes(),
    );
    run_at(&t, "2026-11-22T10:41:30Z");
    let r = run_at(&t, "2026-11-22T11:30:00Z");
    assert!(!r.stdout.contains("reminder"), "{}", r.stdout);
}

#[test]
fn after_an_ntfy_outage_the_first_nag_waits_an_interval_after_the_page_arrived() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write(
        "app.log",
        &rec("10:00:00", "CRITICAL", "Database disk full"),
    );
    ntfy.refuse_containing("Database", 503);
    for now in ["10:00:30", "10:05:00", "10:11:00", "10:16:00"] {
        run_at(&t, &format!("2026-11-22T{now}Z"));
    }
    assert!(ntfy.messages().is_empty());
    ntfy.stop_refusing();
    // The run that finds ntfy back sends the page, and only the page: the reminder
    // interval (10 min for critical) counts from when the phone had it.
    let mut arrived: Vec<(u32, String)> = Vec::new();
    for minute in (21..=51).step_by(5) {
        run_at(&t, &format!("2026-11-22T10:{minute}:00Z"));
        for m in &ntfy.messages()[arrived.len()..] {
            arrived.push((minute, m.header("Title").unwrap().to_string()));
        }
    }
    let (page_at, page) = &arrived[0];
    assert!(!page.contains("nag"), "{arrived:?}");
    let (nag_at, nag) = arrived
        .iter()
        .find(|(_, title)| title.contains("nag #"))
        .unwrap_or_else(|| panic!("no nag after the page: {arrived:?}"));
    assert!(nag.contains("nag #1"), "{arrived:?}");
    assert!(nag_at - page_at >= 10, "{arrived:?}");
}

/// The same WARNING comes back every few hours (16–18 Nov), each time resolved two
/// hours later: four incidents, a regression each after the first. `record` gives the
/// record from its logger on, for the hour it is written at.
fn recur_four_times(t: &Test, record: impl Fn(u32) -> String) {
    t.write("app.log", "");
    for (day, hour) in [(16, 10), (16, 14), (17, 9), (18, 11)] {
        let line = format!(
            "2026-11-{day} {hour:02}:00:00.000 | WARNING  | {}\n",
            record(hour)
        );
        t.append("app.log", line.as_bytes());
        t.ok(&["run", "--now", &format!("2026-11-{day}T{hour:02}:01:00Z")]);
        t.ok(&[
            "run",
            "--now",
            &format!("2026-11-{day}T{:02}:30:00Z", hour + 2),
        ]);
    }
}

#[test]
fn briefing_proposes_silencing_recurring_noise() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "[incidents]\nresolve_after = \"1h\"\nbriefing = \"mon 09:00\"\n{}",
        ntfy.config("ops")
    ));
    t.write("ignore.toml", "[[rule]]\nid = 1\npattern = \"never matches anything\"\ncomment = \"old silence\"\ncreated = \"2026-01-01T00:00:00Z\"\n");
    // the same noise comes back every few hours: resolved, then regressions
    recur_four_times(&t, |hour| {
        format!("app.health:ping:3 - Health check to cdn-{hour}.example.net took 2100 ms")
    });
    let b = t
        .ok(&["briefing", "--days", "30", "--now", "2026-11-18T14:00:00Z"])
        .stdout;
    assert!(b.contains("## Totals"), "{b}");
    assert!(
        b.contains("logwarden ignore add '^Health check to"),
        "a ready-to-paste proposal: {b}"
    );
    assert!(
        b.contains("rule 1 `/never matches anything/`"),
        "stale rules listed: {b}"
    );

    // Monday 23 Nov 09:00 is the schedule: the first run after it writes and sends it.
    t.ok(&["run", "--now", "2026-11-23T08:59:00Z"]);
    assert!(!t.path("incidents/briefings").exists());
    let r = t.ok(&["run", "--now", "2026-11-23T09:03:00Z"]);
    assert!(r.stdout.contains("weekly briefing written"), "{}", r.stdout);
    assert!(t
        .path("incidents/briefings/2026-11-23-briefing.md")
        .exists());
    let r = t.ok(&["run", "--now", "2026-11-23T09:08:00Z"]);
    assert!(!r.stdout.contains("briefing"), "once a week: {}", r.stdout);
    let briefings: Vec<_> = ntfy
        .messages()
        .into_iter()
        .filter(|m| m.header("Title").unwrap().contains("briefing"))
        .collect();
    assert_eq!(briefings.len(), 1);
    assert_eq!(briefings[0].header("Priority"), Some("2"));
}

#[test]
fn the_briefing_never_proposes_silencing_an_open_critical_incident_and_caps_its_proposals() {
    let t = Test::new();
    t.with_app_source("[incidents]\nresolve_after = \"1h\"\nnag = { critical = \"off\" }\n");
    // An ERROR (critical by default) back three times, each resolved, then a fourth that
    // is still open when the briefing is asked for.
    for day in 16..=19 {
        t.append(
            "app.log",
            format!(
                "2026-11-{day} 10:00:00.000 | ERROR    | app.pay:charge:42 - Ledger write failed for batch {day}\n"
            )
            .as_bytes(),
        );
        run_at(&t, &format!("2026-11-{day}T10:01:00Z"));
        if day < 19 {
            run_at(&t, &format!("2026-11-{day}T12:30:00Z"));
        }
    }
    let briefing = || {
        t.ok(&["briefing", "--days", "30", "--now", "2026-11-19T10:30:00Z"])
            .stdout
    };
    let b = briefing();
    assert!(
        b.contains("Not proposed while its incident #4 is open and critical"),
        "{b}"
    );
    assert!(!b.contains("ignore add"), "{b}");

    // Once it is resolved, the proposal is capped at the incident's level: pasted, it
    // silences the ERROR and still lets the same message through at CRITICAL.
    run_at(&t, "2026-11-19T12:30:00Z");
    let b = briefing();
    let command = b
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("logwarden ignore add '^Ledger write failed"))
        .unwrap_or_else(|| panic!("{b}"));
    assert!(command.contains(" --level 'ERROR' "), "{command}");
    let bin = env!("CARGO_BIN_EXE_logwarden");
    let pasted = format!("'{bin}'{}", command.trim_start_matches("logwarden"));
    let out = t.command_of("sh", &["-c", &pasted]).output().unwrap();
    assert!(out.status.success(), "{pasted}: {out:?}");
    t.append(
        "app.log",
        ("2026-11-20 10:00:00.000 | ERROR    | app.pay:charge:42 - Ledger write failed for batch 20\n\
          2026-11-20 10:00:01.000 | CRITICAL | app.pay:charge:42 - Ledger write failed for batch 21\n")
            .as_bytes(),
    );
    let before = t.incidents().len();
    run_at(&t, "2026-11-20T10:01:00Z");
    let inc = t.incidents();
    assert_eq!(inc.len(), before + 1, "{inc:?}");
    assert!(
        inc.iter().any(|i| i["level"] == "CRITICAL"),
        "the CRITICAL one is heard: {inc:?}"
    );
}

#[test]
fn groups_stored_before_leaves_were_kept_still_take_their_messages() {
    // A store from before templates carried their miner leaf: the rows get one when the
    // store opens, and the next run's messages join the groups they always joined.
    let t = Test::new();
    t.with_app_source("");
    let mut log = String::new();
    for i in 0..5 {
        log += &rec(
            "10:00:00",
            "ERROR",
            &format!("Gateway timeout for order {i}"),
        );
        log += &rec(
            "10:00:00",
            "WARNING",
            &format!("Slow query on shard {i} took {}ms", 900 + i),
        );
    }
    t.write("app.log", &log);
    run_at(&t, "2026-11-22T10:01:00Z");
    assert_eq!(t.incidents().len(), 2);
    let db = t.path("state/logwarden.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let n = c.execute("UPDATE templates SET leaf = NULL", []).unwrap();
        assert!(n >= 2, "{n} templates");
    }
    t.append(
        "app.log",
        (rec("10:05:00", "ERROR", "Gateway timeout for order 77")
            + &rec("10:05:00", "WARNING", "Slow query on shard 9 took 1200ms"))
            .as_bytes(),
    );
    run_at(&t, "2026-11-22T10:06:00Z");
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "no new group: {inc:?}");
    let mut counts: Vec<u64> = inc
        .iter()
        .map(|i| i["occurrences"].as_u64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [6, 6]);
    let c = rusqlite::Connection::open(&db).unwrap();
    let unset: i64 = c
        .query_row(
            "SELECT count(*) FROM templates WHERE leaf IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unset, 0);
}

/// The briefing of 18 Nov after `record` (from its logger on) came back four times,
/// each resolved an hour later.
fn briefing_after_recurring(record: &str) -> (Test, String) {
    let t = Test::new();
    t.with_app_source("[incidents]\nresolve_after = \"1h\"\n");
    recur_four_times(&t, |_| record.to_string());
    let b = t
        .ok(&["briefing", "--days", "30", "--now", "2026-11-18T14:00:00Z"])
        .stdout;
    (t, b)
}

/// A secret the masker cut into pieces no rule knows (a Discord token: its last
/// part holds digits and became `<*>`, the id and the letters-only middle stayed)
/// shows in the briefing neither in the template nor in a pattern to paste.
#[test]
fn the_briefing_shows_no_piece_of_a_secret_the_template_cut() {
    let (_t, b) = briefing_after_recurring(
        "app.chat:gateway:3 - Gateway refused NzcwODczNzAzMjUzMjcwNzk3.ROnChc.yx2pGDUEG0379Ro_9PBpkcQ1EOoFAsux0DTCde",
    );
    assert!(b.contains("Gateway refused"), "{b}");
    for piece in ["ROnChc", "NzcwODcz", "yx2pGDUEG"] {
        assert!(!b.contains(piece), "{piece}: {b}");
    }
    assert!(b.contains("ignore add --from-incident"), "{b}");
}

#[test]
fn a_silence_proposed_for_noise_with_a_secret_uses_the_incidents_own_command() {
    // Pasted from the redacted briefing, a pattern made from this template would hold
    // `[REDACTED:…]` and match nothing; the proposal names the incident instead.
    let (t, b) = briefing_after_recurring(
        "app.billing:sync:3 - Login failed with password=hunterhunter on sync",
    );
    assert!(!b.contains("hunterhunter"), "{b}");
    let latest = t
        .incidents()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .max()
        .unwrap();
    let command = format!("logwarden ignore add --from-incident {latest} --comment");
    assert!(b.contains(&command), "{b}");
    assert!(!b.contains("ignore add '"), "no pattern to paste: {b}");
    // and the command does what it says: the next occurrence is silenced
    let line = b.lines().find(|l| l.contains(&command)).unwrap().trim();
    let comment = line.split("--comment ").nth(1).unwrap().trim_matches('\'');
    t.ok(&[
        "ignore",
        "add",
        "--from-incident",
        &latest.to_string(),
        "--comment",
        comment,
    ]);
    t.append(
        "app.log",
        b"2026-11-18 15:00:00.000 | WARNING  | app.billing:sync:3 - Login failed with password=hunterhunter on sync\n",
    );
    let r = t.ok(&["run", "--now", "2026-11-18T15:01:00Z"]);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
}
