//! Notifications through ntfy: the request ntfy documents, and the outbox that keeps
//! what could not be sent.

use crate::util::*;

const ERROR_LINE: &str = "2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:42 - Payment provider timeout for order 1234\n";

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
    assert_eq!(m[0].header("Priority"), Some("4"));
    assert!(m[0].header("Tags").unwrap().contains("warning"));
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
fn failed_sends_stay_in_the_outbox_and_go_out_once_later() {
    let ntfy = FakeNtfy::start(None);
    ntfy.fail_next(&[500, 429]);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 failed"), "{}", r.stdout);
    assert!(r.stdout.contains("HTTP 500"), "{}", r.stdout);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 failed"), "{}", r.stdout);
    assert!(ntfy.messages().is_empty());
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    t.ok(&["run"]);
    assert_eq!(ntfy.messages().len(), 1, "sent exactly once");
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
