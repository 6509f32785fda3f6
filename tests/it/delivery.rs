//! Exactly-once paging: a publish whose answer was never recorded (a timeout, a
//! process killed mid-request) is in doubt, and the next run looks for it on the
//! topic before sending it again.

use crate::util::*;

const ERROR_LINE: &str = "2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:42 - Payment provider timeout for order 1234\n";
/// 2026-11-22T10:00:00Z, the first run's `--now`.
const T0: i64 = 1_795_341_600;

/// A fake ntfy that takes publishes at once but answers after 3 s, and a setup whose
/// client gives up after 1 s. ntfy stamps messages with its own (real) clock.
fn slow_ntfy() -> (FakeNtfy, Test) {
    let ntfy = FakeNtfy::start(None);
    ntfy.answer_after(Some(std::time::Duration::from_secs(3)));
    let t = Test::new();
    t.with_app_source(&format!("{}timeout = \"1s\"\n{NO_NAG}", ntfy.config("ops")));
    t.write("app.log", ERROR_LINE);
    (ntfy, t)
}

fn polls(ntfy: &FakeNtfy) -> usize {
    ntfy.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "GET" && r.url.starts_with("/ops/json?"))
        .count()
}

#[test]
fn an_answer_too_late_is_reconciled_not_resent() {
    let (ntfy, t) = slow_ntfy();
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("1 in doubt"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 1, "ntfy took it despite the timeout");
    let tags = ntfy.messages()[0].header("Tags").unwrap().to_string();
    assert!(tags.starts_with("rotating_light,critical,"), "{tags}");
    assert!(tags.contains(",lw-1-"), "a delivery id is sent: {tags}");

    ntfy.answer_after(None);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("1 reconciled") && r.stdout.contains("0 waiting"),
        "{}",
        r.stdout
    );
    // every cached message: a window from our clock could miss one stamped by ntfy's
    let asked = "/ops/json?poll=1&since=all";
    assert!(
        ntfy.requests.lock().unwrap().iter().any(|r| r.url == asked),
        "{:?}",
        ntfy.requests.lock().unwrap()
    );
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(ntfy.publish_attempts(), 1, "never sent again");
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn in_doubt_but_not_on_the_topic_is_sent_again() {
    // The answer is late and ntfy did not keep the message (it refused it).
    let (ntfy, t) = slow_ntfy();
    ntfy.refuse_containing("Payment provider", 500);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("1 in doubt"), "{}", r.stdout);
    assert!(ntfy.messages().is_empty());

    ntfy.stop_refusing();
    ntfy.answer_after(None);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("1 sent") && !r.stdout.contains("reconciled"),
        "{}",
        r.stdout
    );
    assert_eq!(polls(&ntfy), 1);
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn a_message_ntfy_stores_after_its_client_gave_up_is_not_sent_twice() {
    // ntfy keeps working on a publish after the client's 1 s timeout and stores it
    // 10 s later; a run in between finds nothing on the topic yet.
    let ntfy = FakeNtfy::start(None);
    ntfy.store_after(Some(std::time::Duration::from_secs(10)));
    let t = Test::new();
    t.with_app_source(&format!("{}timeout = \"1s\"\n{NO_NAG}", ntfy.config("ops")));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("1 in doubt"), "{}", r.stdout);
    assert!(ntfy.messages().is_empty(), "not stored yet");

    ntfy.store_after(None);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:30Z"]);
    assert!(
        r.stdout.contains("1 in doubt, not on ntfy yet") && r.stdout.contains("0 sent"),
        "{}",
        r.stdout
    );
    assert_eq!(
        ntfy.publish_attempts(),
        1,
        "not sent again while ntfy may store it"
    );

    // ntfy stores it meanwhile; the next run finds it there.
    let stored = std::time::Instant::now();
    while ntfy.messages().is_empty() {
        assert!(
            stored.elapsed() < std::time::Duration::from_secs(60),
            "never stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 reconciled"), "{}", r.stdout);
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(ntfy.publish_attempts(), 1, "sent once");
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn a_message_still_missing_after_the_settle_time_is_sent_again() {
    // The answer is lost and ntfy never stores the message: waiting ends, it is resent.
    let (ntfy, t) = slow_ntfy();
    ntfy.refuse_containing("Payment provider", 500);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("1 in doubt"), "{}", r.stdout);
    ntfy.stop_refusing();
    ntfy.answer_after(None);
    let r = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert!(r.stdout.contains("not on ntfy yet"), "{}", r.stdout);
    assert!(ntfy.messages().is_empty());
    let r = t.ok(&["run", "--now", "2026-11-22T10:02:00Z"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn killed_after_the_post_is_not_sent_again() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    t.write("app.log", ERROR_LINE);
    let out = t
        .command(&["run", "--now", "2026-11-22T10:00:00Z"])
        .env("LOGWARDEN_FAULT", "after-ntfy-post")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the fault point aborts the run");
    assert_eq!(ntfy.messages().len(), 1, "published before the crash");

    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 reconciled"), "{}", r.stdout);
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(ntfy.publish_attempts(), 1, "never sent again");
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn a_publish_answered_500_is_retried_without_a_check() {
    let ntfy = FakeNtfy::start(None);
    ntfy.fail_next(&[500, 500, 500]); // the run's 3 attempts
    let t = Test::new();
    t.with_app_source(&format!("{}{NO_NAG}", ntfy.config("ops")));
    t.write("app.log", ERROR_LINE);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(
        r.stdout.contains("1 failed") && !r.stdout.contains("in doubt"),
        "{}",
        r.stdout
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(polls(&ntfy), 0, "a definite answer needs no check");
    assert_eq!(ntfy.publish_attempts(), 4);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn a_failed_check_holds_the_notification_in_doubt() {
    let (ntfy, t) = slow_ntfy();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    ntfy.answer_after(None);
    ntfy.fail_next(&[502]); // the poll
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("1 in doubt held") && r.stdout.contains("1 waiting"),
        "{}",
        r.stdout
    );
    assert!(
        r.all()
            .contains("cannot check whether notifications in doubt were delivered"),
        "{}",
        r.all()
    );
    assert_eq!(ntfy.publish_attempts(), 1, "not resent while unchecked");

    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(r.stdout.contains("1 reconciled"), "{}", r.stdout);
    assert_eq!(ntfy.publish_attempts(), 1);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn in_doubt_past_the_limit_is_resent_when_ntfy_cannot_be_checked() {
    let (ntfy, t) = slow_ntfy();
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    ntfy.answer_after(None);
    ntfy.fail_next(&[502]); // the poll, more than an hour later
    let r = t.ok(&["run", "--now", "2026-11-22T11:30:00Z"]);
    assert!(
        r.stdout.contains("1 resent after 1h in doubt") && r.stdout.contains("1 sent"),
        "{}",
        r.stdout
    );
    assert_eq!(ntfy.publish_attempts(), 2);
}

#[test]
fn reconciled_whatever_ntfys_clock_says() {
    // ntfy's clock a day behind the runs' and a year ahead of them: the message is
    // found either way, never sent twice.
    for skew in [-86_400, 365 * 86_400] {
        let (ntfy, t) = slow_ntfy();
        ntfy.set_clock(T0 + skew);
        t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
        ntfy.answer_after(None);
        let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
        assert!(
            r.stdout.contains("1 reconciled"),
            "skew {skew}: {}",
            r.stdout
        );
        t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
        assert_eq!(ntfy.publish_attempts(), 1, "skew {skew}: never sent again");
    }
}

#[test]
fn the_publish_timeout_holds_under_libfaketime() {
    // The suite also runs under `faketime -f +365d`; libfaketime fakes CLOCK_MONOTONIC
    // too unless told not to, and the HTTP client's timeout (an absolute monotonic
    // deadline handed to the kernel) then never comes: the run waits for ntfy's answer.
    // Runs the binary under libfaketime explicitly, as the harness runs it.
    let (ntfy, t) = slow_ntfy();
    ntfy.answer_after(Some(std::time::Duration::from_secs(30)));
    let Some(r) = t.run_under_faketime("+365d", &["run", "--now", "2026-11-22T10:00:00Z"]) else {
        return;
    };
    assert_eq!(r.code, Some(0), "{}", r.all());
    // Without its timeout the run would have waited the 30 s and seen "1 sent".
    assert!(
        r.stdout.contains("1 in doubt") && r.stdout.contains("0 sent"),
        "{}",
        r.stdout
    );
}

/// What a server in front of ntfy does with each request.
#[derive(Clone, Copy)]
enum Front {
    /// Answers every request 301 to the same path on ntfy (http → https, say).
    Redirect,
    /// Passes a publish on to ntfy, then answers 504 as a timed-out gateway does.
    GatewayTimeout,
    /// Answers a publish 200 with a page of its own (a captive portal); passes polls on.
    Page,
}

/// A server on loopback in front of `ntfy`. Gives its URL; it serves until the test ends.
fn front(ntfy: &FakeNtfy, how: Front) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let upstream = ntfy.url.clone();
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::new();
        for mut req in server.incoming_requests() {
            let target = format!("{upstream}{}", req.url());
            let publish = req.method() == &tiny_http::Method::Post;
            let pass = |req: &mut tiny_http::Request| {
                let mut body = Vec::new();
                std::io::Read::read_to_end(req.as_reader(), &mut body).unwrap();
                let mut up = client.request(
                    reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap(),
                    &target,
                );
                for h in req.headers() {
                    let name = h.field.as_str().as_str();
                    if !name.eq_ignore_ascii_case("host")
                        && !name.eq_ignore_ascii_case("content-length")
                    {
                        up = up.header(name, h.value.as_str());
                    }
                }
                let resp = up.body(body).send().unwrap();
                (resp.status().as_u16(), resp.text().unwrap())
            };
            let (status, body, location) = match how {
                Front::Redirect => (301, String::new(), Some(target.clone())),
                Front::GatewayTimeout if publish => {
                    pass(&mut req);
                    (504, "<html>504 Gateway Time-out</html>".into(), None)
                }
                Front::Page if publish => (200, "<html>Welcome</html>".into(), None),
                _ => {
                    let (s, b) = pass(&mut req);
                    (s, b, None)
                }
            };
            let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
            if let Some(l) = location {
                resp.add_header(tiny_http::Header::from_bytes("Location", l).unwrap());
            }
            let _ = req.respond(resp);
        }
    });
    url
}

/// A test whose ntfy server is `front(ntfy, how)`, and that server's URL.
fn through(ntfy: &FakeNtfy, how: Front) -> (Test, String) {
    let url = front(ntfy, how);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}{NO_NAG}",
        ntfy.config("ops").replace(&ntfy.url, &url)
    ));
    t.write("app.log", ERROR_LINE);
    (t, url)
}

#[test]
fn a_redirect_is_a_failure_that_names_where_it_points_not_a_page_sent() {
    let ntfy = FakeNtfy::start(None);
    let (t, url) = through(&ntfy, Front::Redirect);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(!r.stdout.contains("1 sent"), "{}", r.stdout);
    assert!(r.all().contains("HTTP 301"), "{}", r.all());
    assert!(
        r.all().contains(&format!("a redirect to {}/ops", ntfy.url)),
        "{}",
        r.all()
    );
    let r = t.run(&["notify", "test"]);
    assert_ne!(r.code, Some(0), "{}", r.all());
    assert!(ntfy.messages().is_empty());
    // Once the server is set right, the waiting page goes out.
    let fixed = t.read("logwarden.toml").replace(&url, &ntfy.url);
    t.write("logwarden.toml", &fixed);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn a_gateway_timeout_after_ntfy_took_the_page_sends_it_once() {
    let ntfy = FakeNtfy::start(None);
    let (t, _) = through(&ntfy, Front::GatewayTimeout);
    for m in 0..3 {
        t.ok(&["run", "--now", &format!("2026-11-22T10:0{m}:00Z")]);
    }
    assert_eq!(ntfy.messages().len(), 1, "{:?}", ntfy.messages());
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(!r.stdout.contains("in doubt"), "{}", r.stdout);
}

#[test]
fn a_page_that_is_not_ntfys_answer_is_no_proof_of_delivery() {
    let ntfy = FakeNtfy::start(None);
    let (t, url) = through(&ntfy, Front::Page);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(!r.stdout.contains("1 sent"), "{}", r.stdout);
    assert!(r.all().contains("not ntfy's answer"), "{}", r.all());
    assert!(ntfy.messages().is_empty());
    // Still held, not dropped: it goes out once ntfy answers as ntfy.
    let fixed = t.read("logwarden.toml").replace(&url, &ntfy.url);
    t.write("logwarden.toml", &fixed);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(ntfy.messages().len(), 1);
}
