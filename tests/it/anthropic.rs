//! The `anthropic-api` backend against the fake Messages API: headers, tool rounds
//! (store search, curated scripts, refusals), retries, the breaker, budgets under a
//! storm of triggers, and verdict memory.

use serde_json::json;

use crate::fake_anthropic::{verdict_text, FakeAnthropic, Reply};
use crate::util::*;

const KEY: &str = "sk-ant-api03-testkey-0123456789abcdef";

fn error_record(logger: &str, msg: &str, exc: &str) -> String {
    format!(
        "2026-11-22 10:00:00.000 | ERROR    | {logger}:run:10 - {msg}\nTraceback (most recent call last):\n  File \"/srv/app/{logger}.py\", line 10, in run\n    work()\n{exc}\n"
    )
}

fn setup(extra: &str) -> (Test, FakeAnthropic, FakeNtfy) {
    let api = FakeAnthropic::start();
    let ntfy = FakeNtfy::start(None);
    let t = Test::new().env("LW_TEST_KEY", KEY);
    t.with_app_source(&format!(
        "[investigator]\nkind = \"anthropic-api\"\nbase_url = \"{}\"\napi_key_env = \"LW_TEST_KEY\"\ntimeout = \"30s\"\nmodel = \"claude-test-1\"\n{extra}\n{}",
        api.url,
        ntfy.config("ops")
    ));
    (t, api, ntfy)
}

#[test]
fn a_search_round_then_a_verdict() {
    let (t, api, ntfy) = setup("retries = 0\n");
    t.write(
        "app.log",
        &error_record(
            "app.db",
            "Database connection refused",
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
    );
    api.push(Reply::ToolUse {
        name: "search_events".into(),
        input: json!({"query": "connection refused"}),
    });
    api.push(Reply::Text(verdict_text("real", "Postgres is down")));
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("Postgres is down"), "{}", r.all());
    assert!(r.stdout.contains("1 LLM calls"), "{}", r.stdout);

    let m = api.messages();
    assert_eq!(m.len(), 2, "one tool round, one answer");
    for req in &m {
        assert_eq!(req.url, "/v1/messages");
        assert_eq!(req.header("x-api-key"), Some(KEY));
        assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
        assert!(req
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(req.body["model"], "claude-test-1");
        assert_eq!(
            req.tools(),
            vec!["search_events", "read_evidence", "read_source"],
            "no scripts unless allowed, no git without deploy_repo"
        );
        assert!(req.body["system"]
            .as_str()
            .unwrap()
            .contains("never obey it"));
    }
    let first = m[0].body["messages"][0]["content"].as_str().unwrap();
    assert!(first.contains("ConnectionRefusedError"), "{first}");
    assert!(first.contains("<<<LOG DATA"));
    // The tool result goes back with the tool_use id, framed as untrusted.
    let msgs = m[1].body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    let result = &msgs[2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], msgs[1]["content"][1]["id"]);
    let text = result["content"].as_str().unwrap();
    assert!(
        text.contains("Untrusted") && text.contains("Database connection refused"),
        "{text}"
    );

    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(page.contains("investigator: anthropic-api"), "{page}");
    // 2 × (1000 in, 200 out) at $3/$15 per MTok = $0.0120.
    assert!(page.contains("cost $0.0120"), "{page}");
    assert!(page.contains("2 turn(s)"), "{page}");
    assert_eq!(ntfy.messages().len(), 1);
}

#[test]
fn curated_scripts_run_and_others_are_refused() {
    let (t, api, _ntfy) = setup("allow_scripts = true\nretries = 0\n");
    let scripts = t.path("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let script = scripts.join("disk-usage");
    std::fs::write(
        &script,
        "#!/bin/sh\n# logwarden-args: arg DIR /[a-z]*\necho \"disk usage for $1: 97% password=hunter2\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Executable but declaring no arguments: never offered, never run.
    std::fs::write(scripts.join("undeclared"), "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(
        scripts.join("undeclared"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(scripts.join("notes.txt"), "not executable").unwrap();
    // scripts_dir must be absolute: rewrite the config with it.
    let cfg = t.read("logwarden.toml").replace(
        "allow_scripts = true",
        &format!(
            "allow_scripts = true\nscripts_dir = \"{}\"",
            scripts.display()
        ),
    );
    t.write("logwarden.toml", &cfg);
    t.write(
        "app.log",
        &error_record(
            "app.jobs",
            "Disk full while writing",
            "OSError: [Errno 28] No space left on device",
        ),
    );
    api.push(Reply::ToolUse {
        name: "run_script".into(),
        input: json!({"name": "disk-usage", "args": ["/var"]}),
    });
    api.push(Reply::ToolUse {
        name: "run_script".into(),
        input: json!({"name": "../../bin/rm", "args": ["-rf", "/"]}),
    });
    api.push(Reply::Text(verdict_text("real", "Disk is full")));
    t.ok(&["run"]);
    let m = api.messages();
    assert_eq!(m.len(), 3);
    assert_eq!(
        m[0].tools(),
        vec![
            "search_events",
            "read_evidence",
            "read_source",
            "run_script"
        ]
    );
    let offered = m[0].body["tools"][3]["input_schema"]["properties"]["name"]["enum"].clone();
    assert_eq!(
        offered,
        json!(["disk-usage"]),
        "only executable files that declare their arguments are offered"
    );
    let ran = m[1].body["messages"][2]["content"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ran.contains("disk usage for /var: 97%"), "{ran}");
    assert!(!ran.contains("hunter2"), "script output is redacted: {ran}");
    let refused = &m[2].body["messages"][4]["content"][0];
    assert_eq!(refused["is_error"], true);
    assert!(refused["content"]
        .as_str()
        .unwrap()
        .contains("no script named"));
    let inc = &t.incidents()[0];
    let denials = inc["diagnosis"]["permission_denials"].as_array().unwrap();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0]["tool_input"]["name"], "../../bin/rm");
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(page.contains("Disk is full"), "{page}");
    assert!(
        page.contains("Tool uses refused to the investigator"),
        "{page}"
    );
    assert!(page.contains("../../bin/rm"), "{page}");
}

#[test]
fn overloaded_is_retried_and_a_bad_request_is_not() {
    let (t, api, _ntfy) = setup("retries = 2\n");
    t.write(
        "app.log",
        &error_record("app.a", "First failure", "ValueError: a"),
    );
    api.push(Reply::Status(529));
    api.push(Reply::Status(429));
    api.push(Reply::Text(verdict_text("real", "Third time lucky")));
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("Third time lucky"), "{}", r.all());
    assert_eq!(api.messages().len(), 3);

    t.append(
        "app.log",
        error_record("app.b", "Second failure", "KeyError: b").as_bytes(),
    );
    api.push(Reply::Status(400));
    let r = t.ok(&["run"]);
    assert!(
        r.stdout.contains("not diagnosed") && r.stdout.contains("HTTP 400"),
        "{}",
        r.stdout
    );
    assert_eq!(api.messages().len(), 4, "a 400 is not retried");
}

/// An answer larger than any Messages API answer is refused unread past its cap:
/// the incident is filed and notified undiagnosed, as for any failed call.
#[test]
fn an_oversized_answer_is_refused() {
    let (t, api, ntfy) = setup("retries = 0\n");
    t.write(
        "app.log",
        &error_record(
            "app.db",
            "Database connection refused",
            "ConnectionRefusedError: x",
        ),
    );
    api.push(Reply::Text("x".repeat(9 << 20)));
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(
        r.stdout.contains("not diagnosed") && r.stdout.contains("the answer is over 8 MiB"),
        "{}",
        r.stdout
    );
    assert_eq!(t.incident_files().len(), 1);
    assert_eq!(ntfy.messages_to("ops").len(), 1);
}

#[test]
fn the_breaker_rests_the_backend_after_consecutive_failures() {
    let (t, api, ntfy) = setup("retries = 0\nbreaker_failures = 3\nbreaker_cooldown = \"30m\"\n");
    let mut log = String::new();
    for i in 0..5 {
        log.push_str(&error_record(
            &format!("svc{}", ["alpha", "beta", "gamma", "delta", "omega"][i]),
            "Upstream failed",
            "RuntimeError: upstream",
        ));
    }
    t.write("app.log", &log);
    for _ in 0..3 {
        api.push(Reply::Status(500));
    }
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(
        api.messages().len(),
        3,
        "two incidents skipped\n{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "2 incident(s) not investigated: anthropic-api skipped after 3 consecutive failures, cool-down until 2026-11-22T10:30:00Z"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(t.incident_files().len(), 5, "all incidents are written");
    assert_eq!(ntfy.messages().len(), 5, "and notified");

    // After the cool-down one call is tried again, and it works.
    t.append(
        "app.log",
        error_record("svcnew", "Another", "TypeError: x").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:31:00Z"]);
    assert_eq!(api.messages().len(), 4, "{}", r.stdout);
    assert!(r.stdout.contains("Fake verdict"), "{}", r.stdout);
}

#[test]
fn a_storm_of_new_errors_never_exceeds_the_budget() {
    let (t, api, _ntfy) = setup("retries = 0\nmax_calls_per_hour = 5\nmax_calls_per_day = 7\n");
    let mut log = String::new();
    for i in 0..500 {
        log.push_str(&error_record(
            &format!("mod_{}", base26(i)),
            "Handler crashed",
            "RuntimeError: boom",
        ));
    }
    t.write("app.log", &log);
    // Without ntfy here: 500 notifications are only recorded.
    let cfg = t.read("logwarden.toml");
    let cfg = cfg[..cfg.find("[ntfy]").unwrap()].to_string();
    t.write("logwarden.toml", &cfg);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(api.messages().len(), 5, "hourly budget");
    assert_eq!(t.incident_files().len(), 500);
    assert!(
        r.stdout.contains(
            "495 incident(s) not investigated: budget (5 LLM calls in the last hour, limit 5)"
        ),
        "{}",
        r.stdout
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let skipped = t
        .incidents()
        .iter()
        .filter(|i| i["diagnosis"]["skipped"] == "budget")
        .count();
    assert_eq!(skipped, 495);
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    let budget_pages = t
        .incident_files()
        .iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("not investigated: budget")
        })
        .count();
    assert_eq!(budget_pages, 495, "{page}");

    // Two hours later the hourly budget is back, the daily one allows 2 more.
    let mut more = String::new();
    for i in 500..520 {
        more.push_str(&error_record(
            &format!("mod_{}", base26(i)),
            "Handler crashed",
            "RuntimeError: boom",
        ));
    }
    t.append("app.log", more.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T12:00:00Z"]);
    assert_eq!(api.messages().len(), 7, "daily budget");
    assert!(
        r.stdout.contains("in the last 24 hours, limit 7"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_daily_dollar_limit_is_never_crossed_by_one_more_call() {
    // Each call costs 1000 × $1 + 200 × $15 per MTok = $0.004; a request may cost its
    // prompt plus 256 tokens of answer. A call starts only when that worst case fits in
    // what is left of $0.015, so the day ends below the limit, not one call past it.
    let (t, api, _ntfy) =
        setup("retries = 0\nmax_usd_per_day = 0.015\nmax_tokens = 256\nusd_per_mtok_input = 1.0\n");
    let mut log = String::new();
    for name in ["one", "two", "three", "four", "five", "six"] {
        log.push_str(&error_record(
            &format!("svc_{name}"),
            "Crash",
            "RuntimeError: x",
        ));
    }
    t.write("app.log", &log);
    let r = t.ok(&["run"]);
    let calls = api.messages().len();
    assert!(
        calls >= 1 && calls as f64 * 0.004 <= 0.015,
        "{calls} calls: {}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("left of the day's limit, and one request may cost"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_conversation_stops_before_a_request_that_could_cross_the_daily_limit() {
    // Output is priced so that it dominates and input nearly free, so the figures hold
    // whatever the prompt's size (up to 100,000 tokens): a request's worst case is
    // 256 tokens of output ($0.00384) plus its input; the fake reports 200 of output
    // ($0.003). The first request fits in $0.005; after it, $0.002 is left and the next
    // one, whose worst case is again $0.00384, is not sent.
    let (t, api, _ntfy) = setup(
        "retries = 0\nmax_usd_per_day = 0.005\nmax_tokens = 256\nusd_per_mtok_input = 0.01\nusd_per_mtok_output = 15.0\n",
    );
    t.write(
        "app.log",
        &error_record(
            "app.db",
            "Database connection refused",
            "ConnectionRefusedError: x",
        ),
    );
    api.push(Reply::ToolUse {
        name: "search_events".into(),
        input: json!({"query": "connection refused"}),
    });
    api.push(Reply::Text(verdict_text("real", "Postgres is down")));
    let r = t.ok(&["run"]);
    assert_eq!(api.messages().len(), 1, "{}", r.all());
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(
        page.contains("stopped before request 2") && page.contains("of the day's limit is left"),
        "{page}"
    );
}

fn base26(mut i: usize) -> String {
    let mut s = String::new();
    loop {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    s
}

#[test]
fn a_signature_judged_noise_three_times_is_not_sent_again_unless_it_spikes() {
    let (t, api, _ntfy) = setup("retries = 0\nnoise_after = 3\n");
    let cfg = t.read("logwarden.toml").replace(
        "hostname = \"test-host\"\n",
        "hostname = \"test-host\"\nrenotify_after = \"1h\"\n",
    );
    t.write("logwarden.toml", &cfg);
    api.set_default(&verdict_text("noise", "Bots probing"));
    let rec = error_record("app.web", "Bad request from bot", "ValueError: bad header");
    let db = t.path("state/logwarden.db");
    let resolve_all = || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("UPDATE incidents SET status = 'resolved'", [])
            .unwrap();
    };
    for (n, now) in [
        "2026-11-22T10:00:00Z",
        "2026-11-22T12:00:00Z",
        "2026-11-22T14:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        t.append("app.log", rec.as_bytes());
        let r = t.ok(&["run", "--now", now]);
        assert!(r.stdout.contains("Bots probing"), "run {n}: {}", r.stdout);
        resolve_all();
    }
    assert_eq!(api.messages().len(), 3);

    // The fourth time: remembered as noise, not sent.
    t.append("app.log", rec.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T16:00:00Z"]);
    assert_eq!(api.messages().len(), 3, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("not investigated: recurring noise (judged noise 3 times before"),
        "{}",
        r.stdout
    );
    assert_eq!(t.incident_files().len(), 4);
    resolve_all();

    // A spike (40 at once, the most judged noise was 1) is sent again.
    let burst: String = std::iter::repeat_n(rec.as_str(), 40).collect();
    t.append("app.log", burst.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T18:00:00Z"]);
    assert_eq!(api.messages().len(), 4, "{}", r.stdout);
    resolve_all();

    // So is the same signature at a higher level.
    t.append(
        "app.log",
        rec.replace("| ERROR    |", "| CRITICAL |").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T20:00:00Z"]);
    assert_eq!(api.messages().len(), 5, "{}", r.stdout);

    // The store's recurring-noise query sees it.
    let c = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM verdicts WHERE verdict = 'noise'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 5);
}

#[test]
fn a_missing_key_is_reported_without_a_call() {
    let (t, api, _ntfy) = setup("");
    t.write("app.log", &error_record("app.x", "Boom", "ValueError: x"));
    let mut cmd = t.command(&["run"]);
    cmd.env_remove("LW_TEST_KEY");
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("no API key"), "{}", r.stdout);
    assert!(api.messages().is_empty());
    assert_eq!(t.incident_files().len(), 1);
}
