//! Ignore rules from the shell: add, list, rm, test; the user's comments survive.

use crate::util::*;

const HAND_WRITTEN: &str = "# Our team's silences. Ask Ana before removing any.\n\n[[rule]]\nid = 1\npattern = \"Connection reset by peer\"   # the CDN does this nightly\ncomment = \"CDN resets\"\n";

#[test]
fn add_list_rm_keep_the_users_comments() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", HAND_WRITTEN);
    let r = t.ok(&[
        "ignore",
        "add",
        "^Slow query took \\d+ ms",
        "--source",
        "app",
        "--level",
        "WARNING",
        "--expires",
        "7d",
        "--comment",
        "known slow report",
    ]);
    assert!(r.stdout.contains("added rule 2"), "{}", r.stdout);
    let text = t.read("ignore.toml");
    assert!(
        text.starts_with("# Our team's silences. Ask Ana before removing any."),
        "{text}"
    );
    assert!(text.contains("# the CDN does this nightly"), "{text}");
    assert!(text.contains("known slow report"));

    let list = t.ok(&["ignore", "list"]).stdout;
    assert!(
        list.contains("Connection reset by peer") && list.contains("Slow query"),
        "{list}"
    );
    assert!(list.contains("expires "), "{list}");

    t.ok(&["ignore", "rm", "2"]);
    let text = t.read("ignore.toml");
    assert!(!text.contains("Slow query"));
    assert!(text.contains("# the CDN does this nightly"), "{text}");
    assert!(t.run(&["ignore", "rm", "42"]).code != Some(0));
}

#[test]
fn test_says_which_rule_matches() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", HAND_WRITTEN);
    let r = t.ok(&[
        "ignore",
        "test",
        "2026-11-22 10:00:00.000 | WARNING  | app:f:1 - Connection reset by peer",
    ]);
    assert!(r.stdout.starts_with("rule 1 (CDN resets)"), "{}", r.stdout);
    let r = t.ok(&["ignore", "test", "Database is locked"]);
    assert!(r.stdout.starts_with("none"), "{}", r.stdout);

    t.write(
        "sample.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Connection reset by peer\n2026-11-22 10:00:01.000 | ERROR    | app:f:2 - Disk full\nTraceback (most recent call last):\nOSError: [Errno 28] No space left on device\n",
    );
    let r = t.ok(&["ignore", "test", "--file", "sample.log"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(lines[0].starts_with("rule 1"));
    assert!(lines[1].starts_with("none\tDisk full"));
}

#[test]
fn ignored_errors_do_not_open_incidents_and_hits_are_counted() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", HAND_WRITTEN);
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Connection reset by peer\n2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Connection reset by peer\n2026-11-22 10:00:01.000 | ERROR    | app:f:2 - Disk full on /var\n",
    );
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("2 ignored"), "{}", r.stdout);
    assert_eq!(t.incident_files().len(), 1);
    let list = t.ok(&["ignore", "list"]).stdout;
    assert!(list.contains("2 hits"), "{list}");
}

#[test]
fn expired_rules_stop_matching() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Disk full\"\nexpires = \"2020-01-01\"\ncomment = \"old\"\n",
    );
    t.write(
        "app.log",
        "2026-11-22 10:00:01.000 | ERROR    | app:f:2 - Disk full on /var\n",
    );
    t.ok(&["run"]);
    assert_eq!(t.incident_files().len(), 1);
    assert!(t.ok(&["ignore", "list"]).stdout.contains("EXPIRED"));
}

#[test]
fn a_bad_hand_edited_regex_is_reported_with_its_line() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "ignore.toml",
        "# mine\n\n[[rule]]\nid = 1\npattern = \"(unclosed\"\ncomment = \"oops\"\n",
    );
    t.write("app.log", "");
    // The run goes on without the broken file's rules, and says so (exit 1).
    let r = t.run(&["run"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("line 5"), "{}", r.stdout);
    let r = t.run(&["ignore", "list"]);
    assert!(r.stderr.contains("line 5"), "{}", r.stderr);
    let r = t.run(&["ignore", "add", "x", "--comment", "y"]);
    assert_ne!(r.code, Some(0), "adding to a broken file is refused");
}
