//! Noise stays quiet and escalation rules are deterministic: a sure "noise" verdict is
//! filed at a priority that does not buzz and never nags, known noise costs nothing,
//! `[[escalate]]` rules raise severities, force investigations and nag, and the
//! built-in rules (several sources failing, an unsure verdict on something new) can be
//! turned off.

use crate::util::*;

fn rec(time: &str, level: &str, logger: &str, msg: &str) -> String {
    format!("2026-11-22 {time}.000 | {level:<8} | {logger}:f:1 - {msg}\n")
}

fn titles(ntfy: &FakeNtfy) -> Vec<String> {
    ntfy.messages_to("ops")
        .iter()
        .map(|m| decode_rfc2047(m.header("Title").unwrap_or("")))
        .collect()
}

fn priorities(ntfy: &FakeNtfy) -> Vec<String> {
    ntfy.messages_to("ops")
        .iter()
        .map(|m| m.header("Priority").unwrap_or("").to_string())
        .collect()
}

fn claude_config(t: &Test, verdict: &str, rest: &str) -> String {
    let claude = fake_claude(t, &format!("ok:{verdict}"));
    format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\ntimeout = \"30s\"\n{rest}",
        claude.display()
    )
}

const NOISE: &str = r#"{"verdict": "noise", "severity": "critical", "title": "Client went away", "summary": "A client closed its connection early; harmless.", "root_cause": "r", "suggested_fix": "f", "confidence": 0.9}"#;

#[test]
fn a_sure_noise_verdict_is_quiet_never_nags_and_known_noise_costs_nothing() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let inv = claude_config(&t, NOISE, "noise_after = 1\n");
    t.with_app_source(&format!(
        "{inv}{}[incidents]\nnag = {{ critical = \"10m\", info = \"10m\" }}\nresolve_after = \"1h\"\n",
        ntfy.config("ops")
    ));
    let line = rec(
        "10:00:00",
        "ERROR",
        "app.web",
        "Client disconnected before the response was sent",
    );
    t.write("app.log", &line);
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert!(
        r.stdout.contains("judged noise: notified quietly"),
        "{}",
        r.stdout
    );
    assert_eq!(claude_calls(&t).len(), 1);
    let p = priorities(&ntfy);
    assert_eq!(p.len(), 1, "{:?}", titles(&ntfy));
    assert!(p[0] == "1" || p[0] == "2", "no buzz for noise: {p:?}");
    assert!(
        titles(&ntfy)[0].contains("Likely noise: Client went away"),
        "{:?}",
        titles(&ntfy)
    );

    // A second occurrence while it is open, and an hour without an ack: no call, no
    // reminder (an ERROR is critical, and critical and info both nag here).
    t.append(
        "app.log",
        rec(
            "10:30:00",
            "ERROR",
            "app.web",
            "Client disconnected before the response was sent",
        )
        .as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:31:00Z"]);
    t.ok(&["run", "--now", "2026-11-22T10:59:00Z"]);
    assert_eq!(claude_calls(&t).len(), 1);
    assert_eq!(ntfy.messages_to("ops").len(), 1, "{:?}", titles(&ntfy));

    // Resolved, then back: verdict memory knows it, no LLM call and no buzz.
    t.ok(&["run", "--now", "2026-11-22T12:00:00Z"]);
    t.append(
        "app.log",
        rec(
            "12:30:00",
            "ERROR",
            "app.web",
            "Client disconnected before the response was sent",
        )
        .as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T12:31:00Z"]);
    assert_eq!(claude_calls(&t).len(), 1, "known noise is not sent again");
    let p = priorities(&ntfy);
    assert_eq!(p.len(), 2, "{:?}", titles(&ntfy));
    assert!(p[1] == "1" || p[1] == "2", "{p:?} {:?}", titles(&ntfy));

    // The briefing proposes the silence.
    let b = t
        .ok(&["briefing", "--days", "7", "--now", "2026-11-22T13:00:00Z"])
        .stdout;
    assert!(b.contains("logwarden ignore add '"), "{b}");
    assert!(b.contains("judged noise"), "{b}");
}

#[test]
fn a_noise_verdict_on_an_incident_a_severity_rule_matched_still_nags() {
    // Log text is written by strangers and steers the model: a "noise" answer on an
    // incident the team's rule made critical neither quiets its page nor its reminders.
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let inv = claude_config(&t, NOISE, "");
    t.with_app_source(&format!(
        "{inv}{}[incidents]\nnag = {{ critical = \"10m\" }}\nresolve_after = \"1d\"\n\
         [[escalate]]\npattern = \"(?i)database\"\nseverity = \"critical\"\n",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &rec(
            "10:00:00",
            "WARNING",
            "app.db",
            "Database replica lag is high",
        ),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(claude_calls(&t).len(), 1, "{}", r.all());
    assert_eq!(priorities(&ntfy), ["5"], "{:?}", titles(&ntfy));
    assert!(!titles(&ntfy)[0].contains("noise"), "{:?}", titles(&ntfy));
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(titles(&ntfy).len(), 1, "not due yet: {:?}", titles(&ntfy));
    t.ok(&["run", "--now", "2026-11-22T10:12:00Z"]);
    let t2 = titles(&ntfy);
    assert_eq!(t2.len(), 2, "{t2:?}");
    assert!(t2[1].contains("nag #1"), "{t2:?}");
    assert_eq!(priorities(&ntfy)[1], "5");
}

#[test]
fn an_unsure_or_unconfident_noise_verdict_still_pages() {
    let verdict = r#"{"verdict": "noise", "severity": "critical", "title": "Maybe harmless", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.4}"#;
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let inv = claude_config(&t, verdict, "");
    t.with_app_source(&format!("{inv}{}{NO_NAG}", ntfy.config("ops")));
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "app.web", "Worker lost"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(priorities(&ntfy), ["5"], "{:?}", titles(&ntfy));
    assert!(!titles(&ntfy)[0].contains("noise"), "{:?}", titles(&ntfy));
}

#[test]
fn a_pattern_rule_makes_a_warning_critical_and_pages_through_quiet_hours() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}timezone = \"+00:00\"\n[ntfy.quiet_hours]\nwarning = \"22:00-07:00\"\n\
         [[escalate]]\nname = \"database\"\npattern = \"(?i)database|sqlite\"\nseverity = \"critical\"\n\
         [[escalate]]\nlogger = \"app.billing\"\nnag = true\n",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &format!(
            "{}{}{}",
            rec(
                "23:00:00",
                "WARNING",
                "app.store",
                "Database disk image is malformed"
            ),
            rec("23:00:01", "WARNING", "app.cache", "Cache miss ratio high"),
            rec(
                "23:00:02",
                "WARNING",
                "app.billing.invoice",
                "Invoice total rounded"
            ),
        ),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T23:01:00Z"]);
    assert!(r.stdout.contains("escalated by: database"), "{}", r.stdout);
    assert_eq!(
        titles(&ntfy),
        ["[test-host] Database disk image is malformed"],
        "only the escalated warning goes out in quiet hours: {}",
        r.all()
    );
    assert_eq!(priorities(&ntfy), ["5"]);
    let page = t
        .incident_files()
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|p| p.contains("Database disk image"))
        .unwrap();
    assert!(page.contains("severity: critical"), "{page}");

    // After quiet hours the other two go out as warnings; only the billing one (its
    // rule says nag) and the critical one remind while unacked. The billing one's
    // reminder clock starts when its page reached the phone, at the end of quiet hours.
    t.ok(&["run", "--now", "2026-11-23T07:01:00Z"]);
    let nag_titles = |ntfy: &FakeNtfy| -> Vec<String> {
        titles(ntfy)
            .into_iter()
            .filter(|t| t.contains("nag #"))
            .collect()
    };
    let nags = nag_titles(&ntfy);
    assert_eq!(nags.len(), 1, "{:?}", titles(&ntfy));
    assert!(nags[0].contains("Database disk image"), "{nags:?}");
    assert!(titles(&ntfy)
        .iter()
        .any(|t| t.ends_with("] Invoice total rounded")));
    t.ok(&["run", "--now", "2026-11-23T07:12:00Z"]);
    let nags = nag_titles(&ntfy);
    assert!(nags.iter().any(|n| n.contains("Invoice total rounded")));
    assert!(nags.iter().any(|n| n.contains("Database disk image")));
    assert!(!nags.iter().any(|n| n.contains("Cache miss")));

    // The state database is lost: rebuilt from the pages, the rules' decisions hold
    // (the billing warning still reminds, the cache one still does not).
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(t.path(&format!("state/logwarden.db{ext}")));
    }
    let r = t.ok(&["run", "--now", "2026-11-23T07:05:00Z"]);
    assert!(r.stdout.contains("state rebuilt:"), "{}", r.stdout);
    let before = titles(&ntfy).len();
    t.ok(&["run", "--now", "2026-11-23T08:00:00Z"]);
    let nags: Vec<String> = titles(&ntfy)[before..]
        .iter()
        .filter(|t| t.contains("nag #"))
        .cloned()
        .collect();
    assert!(
        nags.iter().any(|n| n.contains("Invoice total rounded")),
        "{:?}",
        titles(&ntfy)
    );
    assert!(!nags.iter().any(|n| n.contains("Cache miss")), "{nags:?}");
}

#[test]
fn investigate_true_forces_an_investigation_when_the_budget_is_spent() {
    let verdict = r#"{"verdict": "real", "severity": "critical", "title": "Looked at it", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.9}"#;
    let t = Test::new();
    let inv = claude_config(&t, verdict, "max_calls_per_hour = 1\n");
    t.with_app_source(&format!(
        "{inv}{NO_NAG}[[escalate]]\nexception = \"OperationalError\"\ninvestigate = true\n"
    ));
    t.write(
        "app.log",
        &format!(
            "{}{}{}",
            rec("10:00:00", "ERROR", "app.a", "First failure uses the budget"),
            rec("10:00:01", "ERROR", "app.b", "Query failed\nTraceback (most recent call last):\n  File \"/srv/db.py\", line 3, in q\n    cur.execute(sql)\nsqlite3.OperationalError: database is locked"),
            rec("10:00:02", "ERROR", "app.c", "Third failure is over budget"),
        ),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(claude_calls(&t).len(), 2, "{}", r.all());
    assert!(
        r.all().contains("not investigated: budget"),
        "the unmatched one is still skipped: {}",
        r.all()
    );
}

#[test]
fn a_forced_investigation_of_unknown_cost_still_has_a_ceiling() {
    // The CLI reports no cost: each call is charged its `max_budget_usd` (0.5), so
    // the day's $1 stops forced investigations after two.
    let verdict = r#"{"verdict": "real", "severity": "warning", "title": "Looked at it", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.9}"#;
    let t = Test::new();
    let claude = fake_claude(&t, &format!("nocost:{verdict}"));
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\ntimeout = \"30s\"\n\
         max_usd_per_day = 1.0\n{NO_NAG}[[escalate]]\npattern = \"(?i)database\"\ninvestigate = true\n",
        claude.display()
    ));
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let log: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            rec(
                &format!("10:00:0{i}"),
                "WARNING",
                &format!("app.{w}"),
                &format!("Search query {w} not in database"),
            )
        })
        .collect();
    t.write("app.log", &log);
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(claude_calls(&t).len(), 2, "{}", r.all());
    assert!(r.all().contains("not investigated: budget"), "{}", r.all());
    let r = t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    assert_eq!(claude_calls(&t).len(), 2, "still spent: {}", r.all());
}

fn three_sources(t: &Test, rest: &str) {
    let mut cfg = String::new();
    for s in ["api", "db", "worker"] {
        cfg.push_str(&format!(
            "[[source]]\nname = \"{s}\"\npath = \"{s}.log\"\nfrom = \"start\"\n"
        ));
    }
    t.config(&format!("{cfg}{rest}"));
}

fn several(t: &Test) -> Vec<String> {
    t.incident_files()
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|p| p.contains("Several services failing"))
        .collect()
}

#[test]
fn errors_from_three_sources_in_one_run_make_one_several_services_incident() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    three_sources(&t, &format!("{}{NO_NAG}", ntfy.config("ops")));
    t.write(
        "api.log",
        &rec("10:00:00", "ERROR", "api", "Upstream timed out"),
    );
    t.write(
        "db.log",
        &rec("10:00:00", "ERROR", "db", "Too many connections"),
    );
    // a warning is not an error: two sources fail, no combined incident yet
    t.write(
        "worker.log",
        &rec("10:00:00", "WARNING", "worker", "Slow job"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert!(several(&t).is_empty());

    t.append(
        "worker.log",
        rec("10:05:00", "ERROR", "worker", "Job crashed").as_bytes(),
    );
    t.append(
        "api.log",
        rec("10:05:00", "ERROR", "api", "Upstream timed out").as_bytes(),
    );
    t.append(
        "db.log",
        rec("10:05:00", "ERROR", "db", "Too many connections").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    let pages = several(&t);
    assert_eq!(pages.len(), 1, "{}", r.all());
    let page = &pages[0];
    assert!(page.contains("severity: critical"), "{page}");
    assert!(
        page.contains("Several services failing: api, db, worker"),
        "{page}"
    );
    for linked in [
        "(api): Upstream timed out",
        "(db): Too many connections",
        "(worker): Job crashed",
    ] {
        assert!(page.contains(linked), "links the others: {page}");
    }
    let t_ = titles(&ntfy);
    let i = t_
        .iter()
        .position(|x| x.contains("Several services failing"))
        .unwrap();
    assert_eq!(priorities(&ntfy)[i], "5");

    // Still failing next run: the same incident, not a second one.
    for s in ["api", "db", "worker"] {
        t.append(
            &format!("{s}.log"),
            rec("10:10:00", "ERROR", s, "Another thing broke").as_bytes(),
        );
    }
    t.ok(&["run", "--now", "2026-11-22T10:11:00Z"]);
    assert_eq!(several(&t).len(), 1);
    let count = |ntfy: &FakeNtfy| {
        titles(ntfy)
            .iter()
            .filter(|x| x.contains("Several services failing"))
            .count()
    };
    assert_eq!(count(&ntfy), 1);

    // Quiet for a day it resolves like the others: the next storm pages again.
    t.ok(&["run", "--now", "2026-11-23T11:00:00Z"]);
    for s in ["api", "db", "worker"] {
        t.append(
            &format!("{s}.log"),
            rec("11:30:00", "ERROR", s, &format!("{s} down again"))
                .replace("11-22", "11-23")
                .as_bytes(),
        );
    }
    t.ok(&["run", "--now", "2026-11-23T11:31:00Z"]);
    assert_eq!(several(&t).len(), 2);
    assert_eq!(count(&ntfy), 2, "{:?}", titles(&ntfy));
}

#[test]
fn errors_already_judged_noise_do_not_count_as_services_failing() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let inv = claude_config(&t, NOISE, "");
    three_sources(
        &t,
        &format!(
            "{inv}{}[incidents]\nnag = {{ critical = \"10m\", info = \"10m\" }}\n",
            ntfy.config("ops")
        ),
    );
    let junk = "Client sent malformed JSON body from 10.0.0.1";
    // Each source's error is judged noise in a run of its own.
    for (i, s) in ["api", "db", "worker"].iter().enumerate() {
        t.write(
            &format!("{s}.log"),
            &rec(&format!("10:0{i}:00"), "ERROR", s, junk),
        );
        t.ok(&["run", "--now", &format!("2026-11-22T10:0{i}:30Z")]);
    }
    assert_eq!(claude_calls(&t).len(), 3);
    // The same junk through all three at once is not an outage, and nothing nags.
    for s in ["api", "db", "worker"] {
        t.append(
            &format!("{s}.log"),
            rec("10:05:00", "ERROR", s, junk).as_bytes(),
        );
    }
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    assert!(
        several(&t).is_empty() && !r.stdout.contains("several services failing"),
        "{}",
        r.all()
    );
    t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    assert!(
        priorities(&ntfy).iter().all(|p| p == "2"),
        "{:?} {:?}",
        titles(&ntfy),
        priorities(&ntfy)
    );
    // Errors not judged yet in the three still make one.
    for s in ["api", "db", "worker"] {
        t.append(
            &format!("{s}.log"),
            rec("10:40:00", "ERROR", s, "Database unreachable").as_bytes(),
        );
    }
    let r = t.ok(&["run", "--now", "2026-11-22T10:41:00Z"]);
    assert_eq!(
        r.stdout
            .matches("escalated by: several services failing")
            .count(),
        1,
        "{}",
        r.all()
    );
}

const UNSURE: &str = r#"{"verdict": "unsure", "severity": "info", "title": "Cannot tell", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.3}"#;

#[test]
fn a_new_signature_the_investigator_is_unsure_about_is_a_warning() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let inv = claude_config(&t, UNSURE, "");
    t.with_app_source(&format!("{inv}{}{NO_NAG}", ntfy.config("ops")));
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "app.x", "Odd state in reconciler"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(priorities(&ntfy), ["4"], "{:?}", titles(&ntfy));
}

#[test]
fn escalation_defaults_false_turns_the_built_in_rules_off() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    three_sources(
        &t,
        &format!(
            "{}{NO_NAG}[escalation]\ndefaults = false\n",
            ntfy.config("ops")
        ),
    );
    for s in ["api", "db", "worker"] {
        t.write(&format!("{s}.log"), &rec("10:00:00", "ERROR", s, "Broken"));
    }
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert!(several(&t).is_empty());
    assert_eq!(ntfy.messages_to("ops").len(), 3);

    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let inv = claude_config(&t, UNSURE, "");
    t.with_app_source(&format!(
        "{inv}{}{NO_NAG}[escalation]\ndefaults = false\n",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &rec("10:00:00", "ERROR", "app.x", "Odd state in reconciler"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(
        priorities(&ntfy),
        ["3"],
        "the investigator's info stands: {:?}",
        titles(&ntfy)
    );
}

#[test]
fn bad_escalation_rules_are_reported_with_their_key() {
    let t = Test::new();
    t.with_app_source(
        "[[escalate]]\npattern = \"(unclosed\"\nseverity = \"critical\"\n\
         [[escalate]]\nseverity = \"urgent\"\nlevel = \"LOUD\"\n\
         [[escalate]]\nsource = \"app\"\n\
         [[escalate]]\nseverity = \"critical\"\ncolour = \"red\"\n\
         [escalation]\nseveral_sources = 1\nnoise_confidence = 2.0\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in [
        "`escalate[0].pattern`",
        "`escalate[1].severity`",
        "`escalate[1].level`",
        "`escalate[2]`: does nothing",
        "`escalate[3].colour`",
        "`escalate[3]`: matches nothing",
        "`escalation.several_sources`",
        "`escalation.noise_confidence`",
    ] {
        assert!(r.stderr.contains(key), "{key}: {}", r.all());
    }
}

#[test]
fn a_check_rule_escalates_that_checks_incidents_only() {
    let t = Test::new();
    t.write("app.log", "");
    let script = "#!/bin/sh\necho \"# HELP temp The value\"\necho \"temp $(cat ../value.txt)\"\n";
    t.write("scripts/value.sh", script);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.path("scripts/value.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    t.write("value.txt", "95");
    let check = |name: &str| {
        format!("[[check]]\nname = \"{name}\"\nscript = \"value.sh\"\n[[check.rule]]\nmetric = \"temp\"\nabove = 90\nseverity = \"warning\"\n")
    };
    t.with_app_source(&format!(
        "[metrics]\nscripts_dir = \"scripts\"\n{}{}[[escalate]]\ncheck = \"boiler\"\nseverity = \"critical\"\n",
        check("boiler"),
        check("room")
    ));
    let out = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]).all();
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{out}");
    let sev = |check: &str| {
        inc.iter()
            .find(|i| i["source"] == format!("check:{check}"))
            .map(|i| i["severity"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(sev("boiler").as_deref(), Some("critical"), "{inc:?}");
    assert_eq!(sev("room").as_deref(), Some("warning"), "{inc:?}");
}

/// The investigator's answer (which may echo what strangers logged) does not retitle
/// the built-in "several services failing" incident: its title stays the count
/// logwarden made, on the page and on the phone, while the other incidents take the
/// investigator's titles as usual.
#[test]
fn the_investigator_does_not_retitle_several_services_failing() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let calm = r#"{"verdict": "real", "severity": "info", "title": "All fine, nothing to see", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.9}"#;
    three_sources(
        &t,
        &format!(
            "{}{NO_NAG}{}",
            ntfy.config("ops"),
            claude_config(&t, calm, "")
        ),
    );
    for (s, msg) in [
        ("api", "Upstream timed out"),
        ("db", "Too many connections"),
        ("worker", "Job crashed"),
    ] {
        t.write(&format!("{s}.log"), &rec("10:00:00", "ERROR", s, msg));
    }
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let pages = several(&t);
    assert_eq!(pages.len(), 1, "{}", r.all());
    assert!(
        pages[0].contains("\n# Several services failing: api, db, worker\n"),
        "{}",
        pages[0]
    );
    assert!(pages[0].contains("severity: critical"), "{}", pages[0]);
    let sent = titles(&ntfy);
    assert!(
        sent.iter()
            .any(|x| x.contains("Several services failing: api, db, worker")),
        "{sent:?}"
    );
    assert!(
        sent.iter().filter(|x| x.contains("All fine")).count() == 3,
        "the three services' own incidents take the investigator's title: {sent:?}"
    );
}
