//! Acknowledging and muting from the phone through ntfy's action buttons and
//! a private control topic; forged and replayed control messages are refused.

use crate::util::*;

const ERROR_LINE: &str = "2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:42 - Payment provider timeout for order 1234\n";

/// A test with a fake ntfy requiring a token for the alerts topic and for polling; the
/// control topic is writable by anyone (the phone's actions carry no credentials).
fn setup() -> (Test, FakeNtfy) {
    let ntfy = FakeNtfy::start(Some("tk_ops"));
    ntfy.allow_anonymous_write("ops-control");
    let t = Test::new().env("NTFY_TEST_TOKEN", "tk_ops");
    t.with_app_source(&format!(
        "{}token_env = \"NTFY_TEST_TOKEN\"\ncontrol_topic = \"ops-control\"\n",
        ntfy.config("ops")
    ));
    t.write("app.log", ERROR_LINE);
    (t, ntfy)
}

/// Posts a message to the control topic, as a stranger (or a replaying phone) would.
fn post(ntfy: &FakeNtfy, body: &str) {
    let s = reqwest::blocking::Client::new()
        .post(format!("{}/ops-control", ntfy.url))
        .body(body.to_string())
        .send()
        .unwrap()
        .status();
    assert!(s.is_success());
}

fn action_body(m: &Received, label: &str) -> String {
    parse_actions(m.header("Actions").unwrap())
        .unwrap()
        .into_iter()
        .find(|a| a["label"] == label)
        .unwrap()["body"]
        .clone()
}

#[test]
fn ack_from_the_phone_acks_the_incident_on_the_next_run() {
    let (t, ntfy) = setup();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 1);
    assert_eq!(t.incidents()[0]["status"], "open");
    assert_eq!(ntfy.tap(&m[0], "Ack"), 200);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("incident #1 acknowledged from the phone"),
        "{}",
        r.stdout
    );
    let i = &t.incidents()[0];
    assert_eq!(i["status"], "acked");
    assert_eq!(i["acked_by"], "phone (ntfy)");
    assert_eq!(i["acked_at"], "2026-11-22T10:05:00Z");
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(
        page.contains("status: acked") && page.contains("acked_by: \"phone (ntfy)\""),
        "the page says so at once: {page}"
    );
    assert!(t.read("incidents/INDEX.md").contains("| acked |"));
    // polled with the token, from where it left off: nothing new next time
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(!r.stdout.contains("control message"), "{}", r.stdout);
    assert!(!r.stdout.contains("acknowledged"), "{}", r.stdout);
    let polls: Vec<String> = ntfy
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.url.clone())
        .collect();
    assert_eq!(polls.len(), 3, "{polls:?}");
    assert_eq!(polls[0], "/ops-control/json?poll=1&since=all");
    assert!(
        polls[2].starts_with("/ops-control/json?poll=1&since=msg"),
        "{polls:?}"
    );
    ntfy.messages(); // no request broke ntfy's API
}

#[test]
fn a_line_of_the_control_topic_that_is_not_ntfys_json_never_holds_back_the_taps_after_it() {
    let (t, ntfy) = setup();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    ntfy.cache.lock().unwrap().push((
        "raw:1".into(),
        1_700_000_000,
        "ops-control".into(),
        "{\"id\": \"x\", \"event\": \"message\", cut".into(),
    ));
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[0], "Ack"), 200);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.all().contains("not ntfy's JSON"), "said: {}", r.all());
    assert!(
        r.stdout.contains("incident #1 acknowledged from the phone"),
        "{}",
        r.all()
    );
    assert_eq!(t.incidents()[0]["status"], "acked");
}

#[test]
fn mute_from_the_phone_adds_a_temporary_rule_to_the_mutes_file_in_the_state_dir() {
    let (t, ntfy) = setup();
    let team_rules = "# Team ignore rules: reviewed every Monday\n\n[[rule]]\nid = 1\npattern = \"healthcheck\"  # the load balancer\ncomment = \"load balancer probes\"\ncreated = \"2026-11-01T00:00:00Z\"\nauthor = \"ana\"\n";
    t.write("ignore.toml", team_rules);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[0], "Mute 24h"), 200);
    t.append("app.log", ERROR_LINE.repeat(3).as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout
            .contains("incident #1 muted for 24h from the phone (ignore rule m1)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("3 ignored"), "{}", r.stdout);
    // The service never writes the team's file (under /etc, read-only in its unit).
    assert_eq!(t.read("ignore.toml"), team_rules);
    let file = t.read("state/mutes.toml");
    let sig = t.incidents()[0]["signature"].as_str().unwrap().to_string();
    assert!(file.contains(&format!("signature = \"{sig}\"")), "{file}");
    assert!(
        file.contains("expires = \"2026-11-23T10:05:00Z\""),
        "{file}"
    );
    assert!(
        file.contains(
            "muted 24h from the phone (ntfy action) at 2026-11-22T10:05Z for incident #1"
        ),
        "{file}"
    );
    let list = t.ok(&["ignore", "list", "--now", "2026-11-22T10:06:00Z"]);
    let mute = list
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("m1 "))
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(mute.contains(" 2026-11-23T10:05:00Z"), "{mute}");
    assert!(mute.contains("[phone mute:"), "{mute}");
    assert!(list.stdout.contains("[ignore file:"), "{}", list.stdout);
    // muted: no new incident, no new occurrence, no notification
    t.append("app.log", ERROR_LINE.as_bytes());
    t.ok(&["run", "--now", "2026-11-22T18:00:00Z"]);
    let incidents = t.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["occurrences"], 1);
    assert_eq!(ntfy.messages_to("ops").len(), 1);
    // The mute is for the level that paged: the same message as CRITICAL is heard.
    assert!(file.contains("level = \"ERROR\""), "{file}");
    let critical = ERROR_LINE.replace("| ERROR    |", "| CRITICAL |");
    assert_ne!(critical, ERROR_LINE);
    t.append("app.log", critical.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T18:05:00Z"]);
    assert!(!r.stdout.contains(" 1 ignored"), "{}", r.stdout);
    assert_eq!(t.incidents()[0]["occurrences"], 2, "{}", r.stdout);
    // ... and not only counted: the incident is critical now, and that pages.
    assert_eq!(t.incidents()[0]["severity"], "critical", "{}", r.stdout);
    assert_eq!(t.incidents()[0]["level"], "CRITICAL");
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 2, "{}", r.stdout);
    assert_eq!(m[1].header("Priority"), Some("5"));
    assert!(
        m[1].header("Title").unwrap().contains("Now CRITICAL: "),
        "{:?}",
        m[1].header("Title")
    );
    // after 24 hours the rule has expired: the error counts again
    t.append("app.log", ERROR_LINE.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-23T10:06:00Z"]);
    assert!(!r.stdout.contains(" 1 ignored"), "{}", r.stdout);
    assert_eq!(t.incidents()[0]["occurrences"], 3);
}

/// A person who resolves an incident says it is over: the phone's mute of it ends, and
/// its return within the 24 hours pages as a regression.
#[test]
fn resolving_an_incident_by_hand_ends_its_phone_mute() {
    let (t, ntfy) = setup();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[0], "Mute 24h"), 200);
    t.append("app.log", ERROR_LINE.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("(ignore rule m1)"), "{}", r.stdout);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    assert!(t.read("state/mutes.toml").contains("incident = 1"));
    let r = t.ok(&["incidents", "resolve", "1", "--now", "2026-11-22T11:00:00Z"]);
    assert!(
        r.stdout
            .contains("incident #1: phone mute m1 ended with it (its return pages)"),
        "{}",
        r.all()
    );
    let file = t.read("state/mutes.toml");
    assert!(!file.contains("[[rule]]"), "{file}");
    let shown = t.ok(&["incidents", "show", "1"]);
    assert!(
        shown.stdout.contains("phone mute m1 ended"),
        "{}",
        shown.stdout
    );
    t.append("app.log", ERROR_LINE.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T12:00:00Z"]);
    assert!(!r.stdout.contains(" 1 ignored"), "{}", r.stdout);
    assert_eq!(t.incidents().len(), 2, "{}", r.all());
    assert_eq!(ntfy.messages_to("ops").len(), 2, "the return pages");
    // The next mute gets a new id: m1 is never handed out again.
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[1], "Mute 24h"), 200);
    let r = t.ok(&["run", "--now", "2026-11-22T12:05:00Z"]);
    assert!(r.stdout.contains("(ignore rule m2)"), "{}", r.stdout);
}

/// A Mute tapped on a notification sent before the incident rose mutes the level that
/// notification was about, not the one it rose to.
#[test]
fn a_mute_tapped_on_a_page_from_before_a_rise_mutes_that_pages_level() {
    let (t, ntfy) = setup();
    let warning = ERROR_LINE.replace("| ERROR    |", "| WARNING  |");
    let critical = ERROR_LINE.replace("| ERROR    |", "| CRITICAL |");
    t.write("app.log", &warning);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    t.append("app.log", critical.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("now critical"), "{}", r.stdout);
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 2, "{m:?}");
    // the first page, a warning, is the one tapped
    assert_eq!(ntfy.tap(&m[0], "Mute 24h"), 200);
    t.append("app.log", warning.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(r.stdout.contains("muted for 24h"), "{}", r.stdout);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    let file = t.read("state/mutes.toml");
    assert!(file.contains("level = \"WARNING\""), "{file}");
    // the CRITICAL is still heard
    t.append("app.log", critical.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert!(r.stdout.contains(" 0 ignored"), "{}", r.stdout);
    assert_eq!(t.incidents()[0]["occurrences"], 3, "{}", r.stdout);
}

/// An Ack tapped on a notification sent before the incident's severity rose does not
/// acknowledge the higher severity: it keeps nagging until the newer page is acked.
#[test]
fn an_ack_tapped_on_a_page_from_before_a_severity_rise_leaves_it_open() {
    let (t, ntfy) = setup();
    let warning = ERROR_LINE.replace("| ERROR    |", "| WARNING  |");
    let critical = ERROR_LINE.replace("| ERROR    |", "| CRITICAL |");
    t.write("app.log", &warning);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    t.append("app.log", critical.as_bytes());
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(ntfy.tap(&m[0], "Ack"), 200);
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout.contains(
            "ack for incident #1: that notification was sent when it was warning; it is critical now, so it stays open"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(t.incidents()[0]["status"], "open");
    // it nags, at its severity
    t.ok(&["run", "--now", "2026-11-22T11:10:00Z"]);
    let m = ntfy.messages_to("ops");
    assert!(m.len() > 2, "{m:?}");
    assert_eq!(m[2].header("Priority"), Some("5"));
    // the newer page's Ack acknowledges it
    assert_eq!(ntfy.tap(&m[1], "Ack"), 200);
    let r = t.ok(&["run", "--now", "2026-11-22T11:15:00Z"]);
    assert!(
        r.stdout.contains("incident #1 acknowledged from the phone"),
        "{}",
        r.stdout
    );
    assert_eq!(t.incidents()[0]["status"], "acked");
}

#[test]
fn forged_control_messages_are_refused_and_reported() {
    let (t, ntfy) = setup();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let m = ntfy.messages_to("ops");
    // a stranger who read the format: a made-up MAC
    post(
        &ntfy,
        &format!(
            "lw1.ack.1.1900000000.00112233445566778899aabb.{}",
            "0".repeat(64)
        ),
    );
    // the real Ack's MAC moved to a mute: the MAC covers the action
    let ack = action_body(&m[0], "Ack");
    post(&ntfy, &ack.replacen(".ack.", ".mute.", 1));
    // and to another incident
    post(&ntfy, &ack.replacen(".1.", ".2.", 1));
    post(&ntfy, "hello, is this thing on?");
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout
            .contains("control message refused: ack for incident #1: bad signature (forged)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("control message refused: mute for incident #1: bad signature (forged)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("control message refused: ack for incident #2: bad signature (forged)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("is not a logwarden control message"),
        "{}",
        r.stdout
    );
    assert_eq!(t.incidents()[0]["status"], "open");
    assert!(!t.path("ignore.toml").exists(), "no rule was added");

    // A correctly signed message for an incident that does not exist (made with the
    // key, which only a reader of the state dir has) is refused too.
    let key = t.read("state/control.key");
    let mac = hmac_hex(key.trim(), "ack.99.1900000000.0123456789abcdef01234567");
    post(
        &ntfy,
        &format!("lw1.ack.99.1900000000.0123456789abcdef01234567.{mac}"),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout
            .contains("control message refused: ack for incident #99: no such incident (forged)"),
        "{}",
        r.stdout
    );
}

fn hmac_hex(key_hex: &str, text: &str) -> String {
    use hmac::{Hmac, Mac};
    let key: Vec<u8> = (0..key_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).unwrap())
        .collect();
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    m.update(text.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whoever reads the alerts topic holds every notification's buttons. An unused one
/// must not silence anything later: a Mute of a resolved incident does nothing (its
/// regression pages), a button is refused a week after it was sent, and a message in
/// the form without an expiry is refused.
#[test]
fn old_buttons_never_silence_a_regression() {
    let (t, ntfy) = setup();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let first = ntfy.messages_to("ops")[0].clone();
    t.ok(&["incidents", "resolve", "1", "--now", "2026-11-25T10:00:00Z"]);
    post(&ntfy, &action_body(&first, "Mute 24h"));
    t.append(
        "app.log",
        ERROR_LINE.replace("2026-11-22", "2026-11-26").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-26T10:01:00Z"]);
    assert!(
        r.stdout
            .contains("mute for incident #1: it is resolved, so nothing is muted"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(" 1 ignored"), "{}", r.stdout);
    assert!(!t.path("state/mutes.toml").exists());
    let regression = ntfy.messages_to("ops");
    assert_eq!(regression.len(), 2, "the regression pages");
    assert!(r.stdout.contains("new incident #2"), "{}", r.stdout);

    // Eight days later its buttons are late, however unused.
    post(&ntfy, &action_body(&regression[1], "Mute 24h"));
    post(&ntfy, &action_body(&regression[1], "Ack"));
    let r = t.ok(&["run", "--now", "2026-12-04T10:02:00Z"]);
    for action in ["mute", "ack"] {
        assert!(
            r.stdout.contains(&format!(
                "control message refused: {action} for incident #2: the button expired at 2026-12-03T10:01Z (late)"
            )),
            "{}",
            r.stdout
        );
    }
    assert!(!t.path("state/mutes.toml").exists());
    let incidents = t.incidents();
    let inc = incidents.iter().find(|i| i["id"] == 2).unwrap();
    assert!(inc["acked_at"].is_null(), "{inc}");

    // The form without an expiry, correctly signed: refused as from before expiries.
    let key = t.read("state/control.key");
    let mac = hmac_hex(key.trim(), "mute.1.0123456789abcdef01234567");
    post(&ntfy, &format!("lw1.mute.1.0123456789abcdef01234567.{mac}"));
    let r = t.ok(&["run", "--now", "2026-12-04T10:03:00Z"]);
    assert!(
        r.stdout.contains(
            "control message refused: mute for incident #1: a button from before buttons expired"
        ),
        "{}",
        r.stdout
    );
    assert!(!t.path("state/mutes.toml").exists());
}

#[test]
fn a_replayed_ack_is_refused_and_reported() {
    let (t, ntfy) = setup();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[0], "Ack"), 200);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("incident #1 acknowledged"),
        "{}",
        r.stdout
    );
    // someone who saw the message posts it again
    post(&ntfy, &action_body(&m[0], "Ack"));
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout
            .contains("control message refused: ack for incident #1: seen before (replayed)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("acknowledged"), "{}", r.stdout);
}

#[test]
fn polling_failures_never_fail_the_run() {
    let (t, ntfy) = setup();
    ntfy.fail_next(&[500]); // the poll at the start of the run
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(
        r.stdout
            .contains("warning: control topic: poll failed: GET"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("HTTP 500"), "{}", r.stdout);
    assert!(r.stdout.contains("1 sent"), "the run went on: {}", r.stdout);
    // nothing was skipped: the next poll starts from the beginning again
    let m = ntfy.messages_to("ops");
    ntfy.tap(&m[0], "Ack");
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("incident #1 acknowledged"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_key_is_private_and_never_printed() {
    let (t, ntfy) = setup();
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(ntfy.messages_to("ops").len(), 1);
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(t.path("state/control.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = t.read("state/control.key").trim().to_string();
    assert_eq!(key.len(), 64);
    let check = t.ok(&["check"]);
    for out in [&r.stdout, &r.stderr, &check.stdout, &check.stderr] {
        assert!(!out.contains(&key));
    }
    for m in ntfy.messages() {
        assert!(!format!("{m:?}").contains(&key), "the key left the host");
    }
    // kept across runs: the actions of earlier notifications stay valid
    t.append("app.log", b"2026-11-22 10:01:00.000 | ERROR    | app.stock:sync:7 - Inventory sync failed for warehouse 3\n");
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(t.read("state/control.key").trim(), key);
    let m = ntfy.messages_to("ops");
    ntfy.tap(&m[0], "Ack");
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout.contains("incident #1 acknowledged"),
        "{}",
        r.stdout
    );
}
