//! Command-line conventions shared by every command: times like journalctl's, `--json`,
//! exit codes, `--config` on either side of the command, verbosity and colour.

use crate::util::*;

fn rec(date: &str, level: &str, msg: &str) -> String {
    format!("{date}.000 | {level:<8} | app:f:1 - {msg}\n")
}

/// Three incidents opened on three days: #1 on the 28th, #2 on the 29th at 08:30, #3
/// (critical) on the 30th at 09:00.
fn three_days() -> Test {
    let t = Test::new();
    t.with_app_source("[incidents]\nresolve_after = \"30d\"\n");
    t.write(
        "app.log",
        &rec("2026-11-28 10:00:00", "ERROR", "Disk full on /var"),
    );
    t.ok(&["run", "--now", "2026-11-28T10:01:00Z"]);
    t.append(
        "app.log",
        rec("2026-11-29 08:30:00", "ERROR", "Thumbnail worker died").as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-29T08:31:00Z"]);
    t.append(
        "app.log",
        rec(
            "2026-11-30 09:00:00",
            "CRITICAL",
            "Ledger mismatch of 3 cents",
        )
        .as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-30T09:01:00Z"]);
    t
}

fn ids(t: &Test, args: &[&str]) -> Vec<i64> {
    let mut a = vec![
        "incidents",
        "list",
        "--json",
        "--now",
        "2026-11-30T10:00:00Z",
    ];
    a.extend_from_slice(args);
    let out = t.ok(&a).stdout;
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    v.iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

#[test]
fn incidents_take_journalctl_times_and_narrow_by_source_signature_and_count() {
    let t = three_days();
    assert_eq!(ids(&t, &[]), vec![3, 2, 1]);
    assert_eq!(ids(&t, &["--since", "yesterday"]), vec![3, 2]);
    assert_eq!(ids(&t, &["--since", "today"]), vec![3]);
    assert_eq!(
        ids(&t, &["--since", "yesterday", "--until", "today"]),
        vec![2]
    );
    assert_eq!(ids(&t, &["--since", "2026-11-29 09:00"]), vec![3]);
    assert_eq!(ids(&t, &["--since", "2026-11-29"]), vec![3, 2]);
    assert_eq!(ids(&t, &["--since", "26h"]), vec![3, 2]);
    assert_eq!(ids(&t, &["--since", "-2h"]), vec![3]);
    assert_eq!(ids(&t, &["--until", "2026-11-29T00:00:00Z"]), vec![1]);
    assert_eq!(ids(&t, &["--limit", "2"]), vec![3, 2]);
    assert_eq!(ids(&t, &["--source", "app"]), vec![3, 2, 1]);
    assert!(ids(&t, &["--source", "other"]).is_empty());
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&t.ok(&["incidents", "--json"]).stdout).unwrap();
    let sig = all[1]["signature"].as_str().unwrap();
    assert_eq!(ids(&t, &["--signature", sig]), vec![2]);

    // Wrong values are the user's mistakes: exit 64, with what is accepted.
    for bad in [
        &["--status", "opne"][..],
        &["--severity", "loud"],
        &["--since", "soon"],
        &["--since", "today", "--until", "yesterday"],
        &["--limit", "many"],
    ] {
        let mut a = vec!["incidents", "list", "--now", "2026-11-30T10:00:00Z"];
        a.extend_from_slice(bad);
        let r = t.run(&a);
        assert_eq!(r.code, Some(64), "{bad:?}:\n{}", r.all());
    }
    let r = t.run(&["incidents", "--status", "opne"]);
    assert!(r.stderr.contains("open, acked, resolved"), "{}", r.stderr);

    // The table has a header row.
    let table = t.ok(&["incidents"]).stdout;
    let first = table.lines().next().unwrap();
    assert!(
        first.starts_with("ID") && first.contains("SEVERITY") && first.ends_with("TITLE"),
        "{table}"
    );
}

#[test]
fn ack_and_resolve_take_several_ids_and_saying_it_twice_is_no_error() {
    let t = three_days();
    let r = t.ok(&[
        "incidents",
        "ack",
        "1",
        "2",
        "--now",
        "2026-11-30T10:00:00Z",
    ]);
    assert!(
        r.stdout.contains("incident #1 acknowledged"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("incident #2 acknowledged"),
        "{}",
        r.stdout
    );
    let r = t.ok(&["incidents", "ack", "1", "--now", "2026-11-30T10:05:00Z"]);
    assert!(r.stdout.contains("#1 already acknowledged"), "{}", r.stdout);
    let r = t.ok(&["incidents", "resolve", "2", "3", "--json"]);
    let v: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert!(v.iter().all(|i| i["status"] == "resolved"), "{v:?}");
    t.ok(&["incidents", "resolve", "3"]);
    // An unknown id: the known ones are done, the exit says the user erred.
    let r = t.run(&["incidents", "resolve", "1", "99"]);
    assert_eq!(r.code, Some(64), "{}", r.all());
    assert!(r.stderr.contains("no incident #99"), "{}", r.stderr);
    assert_eq!(ids(&t, &["--status", "resolved"]), vec![3, 2, 1]);
}

#[test]
fn show_prints_the_evidence() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Payment failed for order 12\nTraceback (most recent call last):\n  File \"/srv/app/pay.py\", line 3, in charge\nValueError: card declined token=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let r = t.ok(&["incidents", "show", "1"]);
    assert!(
        r.stdout.contains("template: Payment failed for order"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("exception: ValueError"), "{}", r.stdout);
    assert!(
        r.stdout.contains("File \"/srv/app/pay.py\", line 3"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout
            .contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        "redacted as the page is: {}",
        r.stdout
    );
}

#[test]
fn config_is_taken_before_the_command_as_after_it() {
    let t = Test::new();
    t.with_app_source("");
    t.write("other.toml", "bogus = 1\n");
    for args in [
        &["--config", "other.toml", "check"][..],
        &["-c", "other.toml", "check"],
        &["check", "--config", "other.toml"],
    ] {
        let r = t.run(args);
        assert_eq!(r.code, Some(2), "{args:?}:\n{}", r.all());
        assert!(r.stderr.contains("other.toml"), "{args:?}: {}", r.stderr);
    }
    // After the command wins over before it.
    let r = t.run(&["-c", "other.toml", "check", "-c", "logwarden.toml"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
}

#[test]
fn usage_mistakes_exit_64_help_exits_0_and_toml_errors_point_at_the_spot() {
    let t = Test::new();
    t.with_app_source("");
    for args in [
        &["frobnicate"][..],
        &["run", "--no-such-flag"],
        &["run", "--now", "tomorrow-ish"],
        &["ignore", "rm", "42"],
        &["ignore", "add", "x", "--source", "nope", "--comment", "c"],
        &["ignore", "test"],
    ] {
        let r = t.run(args);
        assert_eq!(r.code, Some(64), "{args:?}:\n{}", r.all());
    }
    for args in [&["--help"][..], &["ignore", "--help"], &["--version"]] {
        assert_eq!(t.run(args).code, Some(0), "{args:?}");
    }
    t.write(
        "bad.toml",
        "state_dir = \"state\"\n[[source]]\nname = \"app\npath = \"x\"\n",
    );
    let r = t.run(&["check", "-c", "bad.toml"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("line 3, column"), "{}", r.stderr);
    assert!(r.stderr.contains("3 | name = \"app"), "{}", r.stderr);
    assert!(r.stderr.contains('^'), "{}", r.stderr);
    t.write(
        "bad.toml",
        "state_dir = \"state\"\n\n[[source]]\nname = \"app\"\npath = \"x\"\nmin_level = \"LOUD\"\n",
    );
    let r = t.run(&["check", "-c", "bad.toml"]);
    assert!(
        r.stderr.contains("`source[0].min_level`") && r.stderr.contains("(line 6)"),
        "{}",
        r.stderr
    );
}

#[test]
fn verbosity_flags_and_the_log_variable() {
    let t = Test::new();
    t.with_app_source("");
    let plain = t.ok(&["check"]);
    assert!(!plain.stderr.contains("INFO"), "{}", plain.stderr);
    assert!(plain.stderr.contains("config OK"), "{}", plain.stderr);
    let quiet = t.ok(&["check", "-q"]);
    assert_eq!(quiet.stderr, "", "only errors with -q");
    assert!(quiet.stdout.contains("[[source]]"), "the data still comes");
    let v = t.ok(&["-v", "check"]);
    assert!(
        v.stderr.contains("INFO") && v.stderr.contains("config:"),
        "{}",
        v.stderr
    );
    let vv = t.ok(&["check", "-vv", "--now", "2026-11-30T10:00:00Z"]);
    assert!(
        vv.stderr.contains("now: 2026-11-30T10:00:00Z"),
        "{}",
        vv.stderr
    );
    let env = Test {
        dir: t.dir,
        env: vec![("LOGWARDEN_LOG".into(), "debug".into())],
    };
    let r = env.ok(&["-q", "check"]);
    assert!(
        r.stderr.contains("DEBUG"),
        "LOGWARDEN_LOG wins: {}",
        r.stderr
    );
    let r = env.run(&["-q", "-v", "check"]);
    assert_eq!(r.code, Some(64), "{}", r.all());
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let t = three_days();
    let pty = |no_color: bool| -> String {
        // `script` gives the command a terminal (util-linux, on every Debian).
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &format!("{BIN} incidents"), "/dev/null"])
            .env("LOGWARDEN_CONFIG", t.path("logwarden.toml"))
            .env("TERM", "xterm")
            .env("TZ", "UTC")
            .current_dir(t.dir.path());
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        let out = c.output().expect("script runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = pty(false);
    assert!(coloured.contains("\x1b[1;31mcritical"), "{coloured:?}");
    let plain = pty(true);
    assert!(
        plain.contains("critical") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    let piped = t.ok(&["incidents"]).stdout;
    assert!(
        piped.contains("critical") && !piped.contains('\x1b'),
        "{piped:?}"
    );
}

#[test]
fn every_data_command_prints_json() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        &rec("2026-11-22 10:00:00", "ERROR", "Disk full on /var"),
    );
    let json = |args: &[&str]| -> serde_json::Value {
        let r = t.run(args);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", r.all()))
    };
    let run = json(&["run", "--json", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(run["kept"], 1, "{run}");
    assert_eq!(run["opened"][0]["id"], 1, "{run}");
    assert_eq!(run["groups"][0]["decision"], "open", "{run}");
    let check = json(&["check", "--json"]);
    assert_eq!(check["ok"], true, "{check}");
    let briefing = json(&["briefing", "--json", "--now", "2026-11-23T10:00:00Z"]);
    assert!(
        briefing["markdown"]
            .as_str()
            .unwrap()
            .starts_with("# Briefing"),
        "{briefing}"
    );
    let metrics = json(&["metrics", "--json"]);
    assert!(metrics["series"].is_array(), "{metrics}");
    let doctor = json(&["doctor", "--json", "--user", &whoami()]);
    assert!(
        doctor["checks"].as_array().is_some_and(|c| !c.is_empty()),
        "{doctor}"
    );
    assert!(doctor["checks"][0]["status"].is_string(), "{doctor}");
    let list = json(&["ignore", "list", "--json"]);
    assert!(list.as_array().is_some_and(|l| l.is_empty()), "{list}");
    let test = json(&["ignore", "test", "--json", "Disk full on /var"]);
    assert_eq!(test[0]["rule"], serde_json::Value::Null, "{test}");
    t.write("ignore.toml", "[[rule]]\nid = 1\npattern = \"(\"\n");
    let check = json(&["check", "--json"]);
    assert_eq!(check["ok"], false, "{check}");
    assert!(
        check["problems"][0].as_str().unwrap().contains("line 3"),
        "{check}"
    );
}

fn whoami() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
