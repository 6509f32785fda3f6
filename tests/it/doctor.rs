//! `doctor` and `status` against a real state database filled by real runs.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

const ERROR_A: &str = "2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:42 - Payment provider timeout for order 1234\n";
const ERROR_B: &str =
    "2026-11-22 10:01:00.000 | CRITICAL | app.db:connect:7 - Database pool exhausted after 30s\n";

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

fn chmod(p: &std::path::Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A `claude` that answers `--version`.
fn claude_with_version(t: &Test) -> String {
    let p = t.path("bin/claude");
    t.write(
        "bin/claude",
        "#!/bin/sh\n[ \"$1\" = --version ] && echo '2.0.14 (Claude Code)' && exit 0\nexit 3\n",
    );
    chmod(&p, 0o755);
    p.display().to_string()
}

/// A `systemctl` that says systemd runs and the timer is `state`.
fn fake_systemctl(t: &Test, state: &str) -> String {
    let p = t.path("sysbin/systemctl");
    t.write(
        "sysbin/systemctl",
        &format!(
            "#!/bin/sh\ncase \"$1\" in\n  is-system-running) echo running ;;\n  is-enabled) echo {state}; [ {state} = enabled ] ;;\n  *) exit 1 ;;\nesac\n"
        ),
    );
    chmod(&p, 0o755);
    format!(
        "{}:{}",
        t.path("sysbin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn doctor_world(ntfy: &FakeNtfy) -> Test {
    let t = Test::new().env("NTFY_DOC_TOKEN", "tk_doc");
    let claude = claude_with_version(&t);
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{claude}\"\n{}token_env = \"NTFY_DOC_TOKEN\"\n",
        ntfy.config("ops")
    ));
    t.write("app.log", ERROR_A);
    t.write("scripts/disk.sh", "#!/bin/sh\ndf -h\n");
    chmod(&t.path("scripts/disk.sh"), 0o755);
    t
}

fn doctor_args<'a>(t: &'a Test, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "doctor".into(),
        "--user".into(),
        current_user(),
        "--scripts-dir".into(),
        t.path("scripts").display().to_string(),
        "--interval".into(),
        "5m".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Asserts the doctor's output has each of these lines (or parts of lines).
fn assert_mentions(out: &str, wants: &[&str]) {
    for want in wants {
        assert!(out.contains(want), "missing {want}:\n{out}");
    }
}

fn run_doctor(t: &Test, extra: &[&str]) -> Run {
    let args = doctor_args(t, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    t.run(&refs)
}

#[test]
fn doctor_passes_on_a_healthy_install_and_sends_only_with_send() {
    let ntfy = FakeNtfy::start(Some("tk_doc"));
    let t = doctor_world(&ntfy);
    t.ok(&["run"]);
    let r = run_doctor(&t, &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_mentions(
        &r.stdout,
        &[
            "✓ config",
            "✓ source `app`",
            "is readable by user",
            "✓ state dir",
            "✓ state database",
            "✓ script disk.sh is executable; last result: not used by any [[check]]",
            "✓ claude: ",
            "2.0.14 (Claude Code)",
            "✓ LLM budget: $",
            "left today; calls left",
            "✓ ntfy: http://127.0.0.1",
            "✓ ntfy: the token is accepted",
            "- ntfy: no test notification sent",
            "✓ last successful run",
        ],
    );
    assert!(!r.stdout.contains('✗'), "{}", r.stdout);
    // the run published its incident; doctor without --send only probed (GET)
    let before = ntfy.messages();
    let posts = before.iter().filter(|m| m.method == "POST").count();
    assert_eq!(posts, 1, "{before:?}");
    assert!(before
        .iter()
        .any(|m| m.method == "GET" && m.url == "/v1/health"));
    let r = run_doctor(&t, &["--send"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stdout.contains("✓ ntfy: test notification published"),
        "{}",
        r.stdout
    );
    let posts: Vec<_> = ntfy
        .messages()
        .into_iter()
        .filter(|m| m.method == "POST")
        .collect();
    assert!(
        posts.iter().any(|m| m
            .header("Title")
            .is_some_and(|t| t.contains("logwarden doctor test"))),
        "{posts:?}"
    );
}

#[test]
fn doctor_fails_each_broken_part_with_a_fix() {
    let ntfy = FakeNtfy::start(Some("tk_doc"));
    let t = doctor_world(&ntfy);
    t.ok(&["run"]);
    // a wrong token, a script that is not executable, a timer that is disabled
    let t = t.env("NTFY_DOC_TOKEN", "tk_wrong");
    chmod(&t.path("scripts/disk.sh"), 0o644);
    let path = fake_systemctl(&t, "disabled");
    let t = t.env("PATH", &path);
    let r = run_doctor(&t, &[]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_mentions(
        &r.stdout,
        &[
            "✗ ntfy: the token is rejected",
            "✗ script disk.sh is not executable (mode 0644)",
            "fix: chmod 755",
            "✗ timer: logwarden.timer is disabled",
            "fix: sudo systemctl enable --now logwarden.timer",
        ],
    );
    // once enabled, the timer check passes
    let enabled = fake_systemctl(&t, "enabled");
    let t = t.env("PATH", &enabled);
    let r = run_doctor(&t, &[]);
    assert!(
        r.stdout.contains("✓ timer: logwarden.timer is enabled"),
        "{}",
        r.stdout
    );
}

#[test]
fn doctor_without_systemd_says_so_and_a_stale_last_run_fails() {
    let ntfy = FakeNtfy::start(Some("tk_doc"));
    let t = doctor_world(&ntfy);
    // no systemctl on PATH at all
    t.write("emptybin/.keep", "");
    let path = format!("{}:/bin:/usr/bin", t.path("emptybin").display());
    let t = t.env("PATH", &path);
    // the only run was an hour ago: more than 3× a 5m interval
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    t.ok(&["run", "--now", &hour_ago]);
    let r = run_doctor(&t, &[]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("- timer: "), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("more than 3× the interval of 5m: runs stopped"),
        "{}",
        r.stdout
    );
    // a 30m timer makes the same run recent enough
    let args = doctor_args(&t, &[]);
    let mut refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let i = refs.iter().position(|a| *a == "5m").unwrap();
    refs[i] = "30m";
    let r = t.run(&refs);
    assert_eq!(r.code, Some(0), "{}", r.all());
    // a fresh run passes too
    t.ok(&["run"]);
    let r = run_doctor(&t, &[]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("✓ last successful run"), "{}", r.stdout);
}

#[test]
fn doctor_judges_log_access_as_the_service_user() {
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        panic!("this test needs the `nobody` user, present on Debian-like systems");
    };
    assert_ne!(
        nobody.uid,
        nix::unistd::getuid(),
        "run the tests as another user than nobody"
    );
    let ntfy = FakeNtfy::start(Some("tk_doc"));
    let t = doctor_world(&ntfy);
    t.ok(&["run"]);
    chmod(t.dir.path(), 0o755);
    chmod(&t.path("app.log"), 0o600);
    let r = t.run(&[
        "doctor",
        "--user",
        "nobody",
        "--scripts-dir",
        t.path("scripts").to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout.contains("✗ source `app`") && r.stdout.contains("not readable by user nobody"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("is mode 0600"), "{}", r.stdout);
    assert!(r.stdout.contains("chgrp adm"), "{}", r.stdout);
    chmod(&t.path("app.log"), 0o644);
    let r = t.run(&[
        "doctor",
        "--user",
        "nobody",
        "--scripts-dir",
        t.path("scripts").to_str().unwrap(),
    ]);
    assert!(
        r.stdout.contains("✓ source `app`") && r.stdout.contains("readable by user nobody"),
        "{}",
        r.stdout
    );
    // the state dir and database are this user's, not nobody's
    assert!(r.stdout.contains("✗ state dir"), "{}", r.stdout);
    assert!(
        r.stdout.contains("✗ state database") && r.stdout.contains("sudo -u nobody logwarden run"),
        "{}",
        r.stdout
    );
}

#[test]
fn doctor_reports_a_broken_config_with_its_keys() {
    let t = Test::new();
    t.config("[[source]]\nname = \"app\"\nfrom = \"middle\"\n");
    let r = t.run(&["doctor"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("✗ config"), "{}", r.stdout);
    assert!(r.stdout.contains("source[0].path"), "{}", r.stdout);
    assert!(r.stdout.contains("source[0].from"), "{}", r.stdout);
    assert!(r.stdout.contains("fix: edit"), "{}", r.stdout);
}

#[test]
fn status_shows_runs_incidents_and_backlog_from_real_runs() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    let none = t.ok(&["status"]);
    assert!(none.stdout.contains("no runs yet"), "{}", none.stdout);
    assert_eq!(t.ok(&["status", "--json"]).stdout.trim(), "null");

    t.write("app.log", ERROR_A);
    ntfy.fail_next(&[500, 500, 500]); // three attempts per run
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    t.append("app.log", ERROR_B.as_bytes());
    t.append("app.log", ERROR_A.as_bytes());
    ntfy.fail_next(&[500, 500, 500]); // the second is not tried once ntfy fails
    t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);

    let s: serde_json::Value = serde_json::from_str(&t.ok(&["status", "--json"]).stdout).unwrap();
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{s:#}");
    // newest first
    assert_eq!(runs[0]["lines_read"], 2, "{s:#}");
    assert_eq!(runs[0]["triggers"], 1, "{s:#}");
    assert_eq!(runs[1]["lines_read"], 1, "{s:#}");
    assert_eq!(runs[1]["triggers"], 1, "{s:#}");
    assert_eq!(runs[0]["llm_calls"], 0);
    assert_eq!(runs[0]["cost_usd"], 0.0);
    assert_eq!(runs[0]["errors"], 2, "two failed sends: {s:#}");
    assert!(runs[0]["error_text"].as_str().unwrap().contains("ntfy"));
    let open = s["open_incidents"].as_array().unwrap();
    assert_eq!(open.len(), 2, "{s:#}");
    assert_eq!(open[1]["occurrences"], 2, "{s:#}");
    assert_eq!(s["outbox_backlog"], 2, "{s:#}");
    assert!(s["budget_left_usd"].is_null());

    let text = t.ok(&["status"]).stdout;
    assert!(text.contains("Open incidents: 2"), "{text}");
    assert!(
        text.contains("Outbox backlog: 2 notifications waiting"),
        "{text}"
    );
    assert!(text.contains("Database pool exhausted"), "{text}");
    assert!(text.contains("error: ntfy"), "{text}");
    assert_eq!(
        t.ok(&["status", "--json", "--last", "1"])
            .stdout
            .matches("\"started_at\"")
            .count(),
        1
    );
}

#[test]
fn doctor_shows_each_checks_last_script_result() {
    let t = Test::new();
    t.with_app_source(
        "[metrics]\nscripts_dir = \"scripts\"\n\
         [[check]]\nname = \"queue\"\nscript = \"queue.sh\"\n[[check.rule]]\nmetric = \"depth\"\nabove = 100\n\
         [[check]]\nname = \"broken\"\nscript = \"broken.sh\"\n",
    );
    t.write("app.log", "");
    t.write("scripts/queue.sh", "#!/bin/sh\necho 'depth 3'\n");
    t.write(
        "scripts/broken.sh",
        "#!/bin/sh\necho 'no such spool' >&2\nexit 2\n",
    );
    t.write("scripts/spare.sh", "#!/bin/sh\n");
    for s in ["queue.sh", "broken.sh", "spare.sh"] {
        chmod(&t.path(&format!("scripts/{s}")), 0o755);
    }
    t.ok(&["run"]);
    let r = t.run(&["doctor", "--user", &current_user(), "--interval", "5m"]);
    assert_mentions(
        &r.stdout,
        &[
            "script queue.sh is executable; last result: check `queue`: ok at ",
            "script broken.sh is executable; last result: check `broken`: failed at ",
            "no such spool",
            "script spare.sh is executable; last result: not used by any [[check]]",
            "✓ LLM budget: no LLM investigator configured",
        ],
    );
}
