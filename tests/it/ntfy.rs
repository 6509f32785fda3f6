//! Notifications through ntfy: the request ntfy documents, and the outbox that keeps
//! what could not be sent.

use crate::util::*;

const ERROR_LINE: &str = "2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:42 - Payment provider timeout for order 1234\n";
const OTHER_LINE: &str =
    "2026-11-22 10:00:01.000 | ERROR    | app.stock:sync:7 - Inventory sync failed for warehouse 3\n";
const WARNING_LINE: &str =
    "2026-11-22 09:59:59.000 | WARNING  | app.shop:checkout:5 - Slow checkout for cart 88\n";
const CRITICAL_LINE: &str =
    "2026-11-22 10:00:02.000 | CRITICAL | app.db:pool:9 - Database connection pool exhausted\n";

#[test]
fn publishes_with_title_priority_tags_markdown_and_token() {
    let ntfy = FakeNtfy::start(Some("tk_test_123"));
    let t = Test::new().env("NTFY_TEST_TOKEN", "tk_test_123");
    t.with_app_source(&format!(
        "{}token_env = \"NTFY_TEST_TOKEN\"\n",
        ntfy.config("ops-alerts")
    ));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    let m = ntfy.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].url, "/ops-alerts");
    assert!(
        m[0].header("Title")
            .unwrap()
            .contains("Payment provider timeout for order"),
        "{:?}",
        m[0]
    );
    // an ERROR pages: critical, priority 5 (max), its emoji tag and severity once each
    assert_eq!(m[0].header("Priority"), Some("5"));
    assert_eq!(shown_tags(&m[0]), "rotating_light,critical");
    assert_eq!(m[0].header("Markdown"), Some("yes"));
    assert!(m[0].body.contains("Incident #1"), "{}", m[0].body);
    // a second run sends nothing more
    t.ok(&["run"]);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn a_token_from_a_file() {
    let ntfy = FakeNtfy::start(Some("tk_from_file"));
    let t = Test::new();
    t.write("ntfy-token", "tk_from_file\n");
    t.with_app_source(&format!(
        "{}token_file = \"ntfy-token\"\n",
        ntfy.config("ops")
    ));
    t.write("app.log", ERROR_LINE);
    t.ok(&["run"]);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn ntfy_failing_for_three_runs_loses_nothing_and_sends_each_once() {
    let ntfy = FakeNtfy::start(None);
    // 3 attempts per run (1 + 2 retries), three runs: every answer 500 or 429
    ntfy.fail_next(&[500, 429, 500, 429, 500, 429, 500, 429, 500]);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write("app.log", &format!("{ERROR_LINE}{OTHER_LINE}"));
    for run in 1..=3 {
        let r = t.ok(&["run"]);
        assert!(
            r.stdout.contains("2 failed") && r.stdout.contains("2 waiting"),
            "run {run}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("after 3 attempts"), "{}", r.stdout);
        // the first notification is tried 3 times; the second waits (ntfy is failing)
        assert_eq!(ntfy.publish_attempts(), 3 * run, "run {run}");
    }
    assert!(ntfy.messages().is_empty());
    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("2 sent") && r.stdout.contains("0 waiting"),
        "{}",
        r.stdout
    );
    t.ok(&["run"]);
    let m = ntfy.messages();
    assert_eq!(m.len(), 2, "each sent exactly once");
    assert!(m[0]
        .header("Title")
        .unwrap()
        .contains("Payment provider timeout"));
    assert!(m[1]
        .header("Title")
        .unwrap()
        .contains("Inventory sync failed"));
}

#[test]
fn a_429_or_5xx_is_retried_within_the_run() {
    let ntfy = FakeNtfy::start(None);
    ntfy.fail_next(&[503, 429]);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 sent, 0 failed"), "{}", r.stdout);
    assert_eq!(ntfy.publish_attempts(), 3);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn a_refusal_is_not_retried() {
    let ntfy = FakeNtfy::start(None);
    ntfy.fail_next(&[400]);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("1 failed") && r.stdout.contains("HTTP 400"),
        "{}",
        r.stdout
    );
    assert_eq!(ntfy.publish_attempts(), 1);
    t.ok(&["run"]);
    assert_eq!(ntfy.messages().len(), 1, "sent by the next run");
}

#[test]
fn a_dead_server_loses_nothing() {
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Test::new();
    t.with_app_source(&format!(
        "[ntfy]\nserver = \"http://127.0.0.1:{port}\"\ntopic = \"ops\"\ntimeout = \"2s\"\n"
    ));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("1 failed") && r.stdout.contains("1 waiting"),
        "{}",
        r.stdout
    );
    let ntfy = FakeNtfy::start(None);
    t.with_app_source(&ntfy.config("ops"));
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn long_messages_fit_ntfys_limit() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    let mut log = String::from("2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Exploded\nTraceback (most recent call last):\n");
    for i in 0..400 {
        log.push_str(&format!(
            "  File \"/srv/app/module_{i}.py\", line {i}, in handler_with_a_long_name_é_{i}\n"
        ));
    }
    log.push_str("RuntimeError: boom\n");
    t.write("app.log", &log);
    t.ok(&["run"]);
    let m = ntfy.messages();
    assert_eq!(m.len(), 1);
    assert!(m[0].body.len() <= 4096);
}

/// `n` loguru ERROR lines with distinct wording (letters g–z, so no word looks like
/// a hex id or a number), each its own signature.
fn storm(range: std::ops::Range<usize>) -> String {
    let word = |mut i: usize| {
        let mut w = String::new();
        for _ in 0..3 {
            w.push((b'g' + (i % 20) as u8) as char);
            i /= 20;
        }
        w
    };
    range
        .map(|i| {
            format!(
                "2026-11-22 10:00:00.000 | ERROR    | app.jobs:run:1 - {} subsystem {} refused work\n",
                word(i),
                word(i * 7 + 3)
            )
        })
        .collect()
}

#[test]
fn a_storm_of_1000_errors_makes_at_most_the_cap_and_one_digest() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    // max_per_hour: 10 by default; reminders of the unacked errors (critical by default)
    // would go through the same cap, but they are not what this test counts
    t.with_app_and_ntfy(&ntfy, "");
    t.write("app.log", &storm(0..1000));
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(t.incidents().len(), 1000, "{}", r.stdout);
    let m = ntfy.messages();
    assert_eq!(m.len(), 11, "10 notifications and one digest");
    assert!(
        r.stdout.contains("11 sent")
            && r.stdout.contains("990 folded into a digest")
            && r.stdout.contains("0 waiting"),
        "{}",
        r.stdout
    );
    let digest = &m[10];
    let title = digest.header("Title").unwrap();
    assert!(title.starts_with("990 more incidents: "), "{title}");
    assert_eq!(digest.header("Priority"), Some("2"), "low priority");
    assert!(digest.body.len() <= 4096);
    // the digest lists the titles of what it folded (the 11th incident first), then a count
    let eleventh = t.incidents().into_iter().find(|i| i["id"] == 11).unwrap()["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(digest.body.contains(&eleventh), "{}", digest.body);
    assert!(
        digest.body.contains(" more (`logwarden incidents`)"),
        "{}",
        digest.body
    );
    for n in &m[..10] {
        assert!(n.header("Title").unwrap().contains("refused work"));
        assert_eq!(n.header("Priority"), Some("5"), "an ERROR is critical");
    }

    // Later in the same hour: the cap and the digest are used; new ones wait.
    t.append("app.log", storm(1000..1005).as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    assert!(
        r.stdout.contains("5 held for the next hour") && r.stdout.contains("5 waiting"),
        "{}",
        r.stdout
    );
    assert_eq!(ntfy.messages().len(), 11);

    // The next hour: they go out, once each.
    let r = t.ok(&["run", "--now", "2026-11-22T11:01:00Z"]);
    assert!(
        r.stdout.contains("5 sent") && r.stdout.contains("0 waiting"),
        "{}",
        r.stdout
    );
    t.ok(&["run", "--now", "2026-11-22T11:02:00Z"]);
    assert_eq!(ntfy.messages().len(), 16);
}

#[test]
fn quiet_hours_hold_a_warning_until_they_end_but_never_a_critical() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_and_ntfy(&ntfy, "timezone = \"+01:00\"\n[ntfy.quiet_hours]\nwarning = \"22:00-07:00\"\ninfo = \"20:00-09:00\"\n");
    // a WARNING is a warning; an ERROR and a CRITICAL are critical (they page)
    t.write(
        "app.log",
        &format!("{WARNING_LINE}{ERROR_LINE}{CRITICAL_LINE}"),
    );
    // 23:30 local time
    let r = t.ok(&["run", "--now", "2026-11-22T22:30:00Z"]);
    assert!(
        r.stdout.contains("2 sent") && r.stdout.contains("1 held for quiet hours"),
        "{}",
        r.stdout
    );
    let m = ntfy.messages();
    assert_eq!(m.len(), 2);
    for (m, what) in m
        .iter()
        .zip(["Payment provider timeout", "Database connection pool"])
    {
        assert!(m.header("Title").unwrap().contains(what), "{m:?}");
        assert_eq!(m.header("Priority"), Some("5"));
    }
    // 06:59 local: still quiet
    let r = t.ok(&["run", "--now", "2026-11-23T05:59:00Z"]);
    assert!(r.stdout.contains("1 held for quiet hours"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 2);
    // 07:00 local: released, once
    let r = t.ok(&["run", "--now", "2026-11-23T06:00:00Z"]);
    assert!(
        r.stdout.contains("1 sent") && r.stdout.contains("0 waiting"),
        "{}",
        r.stdout
    );
    t.ok(&["run", "--now", "2026-11-23T06:05:00Z"]);
    let m = ntfy.messages();
    assert_eq!(m.len(), 3);
    assert!(m[2].header("Title").unwrap().contains("Slow checkout"));
    assert_eq!(m[2].header("Priority"), Some("4"));
}

#[test]
fn click_url_actions_and_basic_auth() {
    let ntfy = FakeNtfy::start_basic("alerts", "s3cret pass");
    let t = Test::new().env("NTFY_TEST_PASSWORD", "s3cret pass");
    t.with_app_source(&format!(
        "{}username = \"alerts\"\npassword_env = \"NTFY_TEST_PASSWORD\"\ncontrol_topic = \"ops-control\"\nclick = \"https://git.example.com/ops/incidents/src/branch/main/{{file}}?id={{id}}&host={{host}}\"\n",
        ntfy.config("ops")
    ));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    let m = ntfy.messages(); // checks Basic auth, the Actions syntax, the Click URL
    assert_eq!(m.len(), 1);
    let file = t.incident_files()[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let click =
        format!("https://git.example.com/ops/incidents/src/branch/main/{file}?id=1&host=test-host");
    assert_eq!(m[0].header("Click"), Some(click.as_str()));
    let actions = parse_actions(m[0].header("Actions").unwrap()).unwrap();
    let labels: Vec<&str> = actions.iter().map(|a| a["label"].as_str()).collect();
    assert_eq!(labels, ["Ack", "Mute 24h", "Open"]);
    for a in &actions[..2] {
        assert_eq!(a["action"], "http");
        assert_eq!(a["url"], format!("{}/ops-control", ntfy.url));
        assert_eq!(a["method"], "POST");
    }
    assert!(
        actions[0]["body"].starts_with("lw1.ack.1."),
        "{:?}",
        actions[0]
    );
    assert!(
        actions[1]["body"].starts_with("lw1.mute.1."),
        "{:?}",
        actions[1]
    );
    assert_eq!(actions[2]["action"], "view");
    assert_eq!(actions[2]["url"], click);
    // the password is never printed
    let check = t.ok(&["check"]);
    assert!(
        check
            .stdout
            .contains("password_env = \"NTFY_TEST_PASSWORD\""),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("s3cret") && !r.stdout.contains("s3cret"));
}

#[test]
fn without_a_control_topic_only_open() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}click = \"https://incidents.example.com/{{host}}/{{file}}\"\n",
        ntfy.config("ops")
    ));
    t.write("app.log", ERROR_LINE);
    t.ok(&["run"]);
    let m = ntfy.messages();
    let actions = parse_actions(m[0].header("Actions").unwrap()).unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["action"], "view");
    assert_eq!(actions[0]["label"], "Open");
    assert!(actions[0]["url"]
        .starts_with("https://incidents.example.com/test-host/2026-11-22-incident-"));
    assert!(
        !t.path("state/control.key").exists(),
        "no key without actions to sign"
    );

    // and with neither, no actions at all
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write("app.log", ERROR_LINE);
    t.ok(&["run"]);
    let m = ntfy.messages();
    assert_eq!(m[0].header("Actions"), None);
    assert_eq!(m[0].header("Click"), None);
}

#[test]
fn notify_test_sends_or_says_why_not() {
    let ntfy = FakeNtfy::start(Some("tk_test"));
    let t = Test::new().env("NTFY_TEST_TOKEN", "tk_test");
    t.with_app_source(&format!(
        "{}token_env = \"NTFY_TEST_TOKEN\"\n",
        ntfy.config("ops")
    ));
    let r = t.ok(&["notify", "test"]);
    assert!(
        r.stdout.contains("test notification published to"),
        "{}",
        r.all()
    );
    let m = ntfy.messages();
    assert_eq!(m.len(), 1);
    assert!(m[0]
        .header("Title")
        .unwrap()
        .contains("logwarden test notification"));

    // ntfy refuses (a bad token): exit 1, with ntfy's answer
    ntfy.fail_next(&[403]);
    let r = t.run(&["notify", "test"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stderr.contains("ntfy refused") && r.stderr.contains("403"),
        "{}",
        r.all()
    );

    for args in [&["notify", "--help"][..], &["notify", "test", "--help"]] {
        let r = t.ok(args);
        assert!(r.stdout.contains("Example"), "{args:?}: {}", r.stdout);
    }

    // not configured
    let t = Test::new();
    t.with_app_source("");
    let r = t.run(&["notify", "test"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stderr.contains("ntfy is not configured"), "{}", r.all());
}

#[test]
fn ntfy_config_errors_are_reported_with_their_keys() {
    let t = Test::new();
    t.with_app_source(
        "[ntfy]\ntopic = \"ops\"\ntoken_env = \"T\"\nusername = \"u\"\npassword = \"hunter2\"\npassword_env = \"P\"\ncontrol_topic = \"ops\"\nclick = \"https://x.example/{path}\"\nretry_delay = \"soon\"\nmax_per_hour = 0\ntimezone = \"Mars/Olympus\"\n[ntfy.quiet_hours]\ncritical = \"22:00-07:00\"\nwarning = \"22-7\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in [
        "ntfy.password",
        "ntfy.username",
        "ntfy.control_topic",
        "ntfy.click",
        "ntfy.retry_delay",
        "ntfy.max_per_hour",
        "ntfy.timezone",
        "ntfy.quiet_hours.critical",
        "ntfy.quiet_hours.warning",
    ] {
        assert!(
            r.stderr.contains(&format!("`{key}`")),
            "{key} missing:\n{}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("hunter2"));
}

#[test]
fn doctor_checks_a_user_and_password() {
    let ntfy = FakeNtfy::start_basic("alerts", "right");
    let t = Test::new().env("NTFY_TEST_PASSWORD", "right");
    t.with_app_source(&format!(
        "{}username = \"alerts\"\npassword_env = \"NTFY_TEST_PASSWORD\"\n",
        ntfy.config("ops")
    ));
    let r = t.run(&["doctor", "--send"]);
    assert!(
        r.stdout
            .contains("✓ ntfy: the user and password are accepted"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("✓ ntfy: test notification published"),
        "{}",
        r.all()
    );
    assert_eq!(ntfy.messages_to("ops").len(), 1, "the test notification");

    let t = Test::new().env("NTFY_TEST_PASSWORD", "wrong");
    t.with_app_source(&format!(
        "{}username = \"alerts\"\npassword_env = \"NTFY_TEST_PASSWORD\"\n",
        ntfy.config("ops")
    ));
    let r = t.run(&["doctor"]);
    assert!(
        r.stdout
            .contains("✗ ntfy: the user and password are rejected"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("wrong"), "the password is never printed");
}

/// Warnings (a stranger's text can open them at will) use up the hour's cap and its
/// digest; a critical after them still buzzes: in a digest at critical priority, once
/// in the hour. A second one that hour waits, as the cap says.
#[test]
fn warnings_that_use_up_the_hour_do_not_keep_a_critical_quiet() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}max_per_hour = 2\n{NO_NAG}", ntfy.config("ops")));
    let line = |time: &str, level: &str, msg: &str| {
        format!("2026-11-22 {time}.000 | {level:<8} | app.upload:check:40 - {msg}\n")
    };
    t.write(
        "app.log",
        &[
            line(
                "10:00:00",
                "WARNING",
                "Upload quota nearly used for tenant 4",
            ),
            line("10:00:01", "WARNING", "Thumbnail cache cold on node 2"),
            line("10:00:02", "WARNING", "Slow query on reports took 9s"),
        ]
        .concat(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:30Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 3, "2 warnings and a digest");
    assert_eq!(
        m[2].header("Priority"),
        Some("2"),
        "a digest of warnings is quiet"
    );

    t.append(
        "app.log",
        line(
            "10:04:00",
            "CRITICAL",
            "Payment provider unreachable: all charges failing",
        )
        .as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 4, "{m:?}");
    let digest = &m[3];
    assert_eq!(digest.header("Priority"), Some("5"), "it buzzes");
    assert!(
        digest
            .header("Title")
            .unwrap()
            .contains("Payment provider unreachable"),
        "{digest:?}"
    );

    // It buzzed this hour: the next critical over the cap waits for the next hour.
    t.append(
        "app.log",
        line(
            "10:09:00",
            "CRITICAL",
            "Refund worker stopped: queue at 9000",
        )
        .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(ntfy.messages_to("ops").len(), 4);
    assert!(
        r.stdout.contains("1 held for the next hour"),
        "{}",
        r.stdout
    );
    t.ok(&["run", "--now", "2026-11-22T11:06:00Z"]);
    let m = ntfy.messages_to("ops");
    assert!(
        m[4..]
            .iter()
            .any(|n| n.header("Title").unwrap().contains("Refund worker stopped")),
        "{m:?}"
    );
}
