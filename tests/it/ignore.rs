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
    assert!(r.stdout.contains("rule   1       1 hits"), "{}", r.stdout);
    assert!(r.stdout.contains("would page:\n"), "{}", r.stdout);
    assert!(r.stdout.contains("Disk full"), "{}", r.stdout);
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

/// What a rule ignores is not grouped: the noise around an error never shapes its group,
/// so the same errors get the same signature (and the rules and incidents keyed on it)
/// whether or not ignored noise came before them.
#[test]
fn ignored_noise_never_shapes_the_signature_of_what_is_kept() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = 'for user bob\\b'\ncomment = \"bob's card is a test card\"\n",
    );
    let kept = "2026-11-22 10:00:01.000 | ERROR    | app.pay:charge:7 - Payment failed for user carl at step charge\n\
                2026-11-22 10:00:02.000 | ERROR    | app.pay:charge:7 - Payment failed for user dave at step charge\n";
    t.write(
        "app.log",
        &format!("2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:7 - Payment failed for user bob at step charge\n{kept}"),
    );
    let r = t.ok(&["run", "--now", NOW]);
    assert!(
        r.stdout.contains("2 warnings/errors kept, 1 ignored"),
        "{}",
        r.stdout
    );
    let incidents = t.incidents();
    assert_eq!(incidents.len(), 1);
    let out = t.piped(&["signatures"], kept);
    let alone: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(alone.len(), 2, "{out}");
    assert_eq!(alone[0], alone[1], "{out}");
    assert_eq!(incidents[0]["signature"].as_str(), Some(alone[0]), "{out}");
    assert!(t.ok(&["ignore", "list"]).stdout.contains("1 hit"));
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

const NOW: &str = "2026-11-22T10:00:00Z";

fn log_line(time: &str, level: &str, msg: &str) -> String {
    format!("2026-11-22 {time}.000 | {level:<8} | app:f:1 - {msg}\n")
}

#[test]
fn a_pattern_found_in_every_message_is_refused_unless_forced_under_a_level_cap() {
    let t = Test::new();
    t.with_app_source("");
    for p in [
        "", ".*", "a|", "^", "x?", ".", "(?s).", "[\\s\\S]", "\\S|\\s", "[^\\n]", "(?i)(?:)",
    ] {
        let r = t.run(&["ignore", "add", p, "--comment", "noise", "--now", NOW]);
        assert_eq!(r.code, Some(64), "{p:?} accepted:\n{}", r.all());
        assert!(r.stderr.contains("CRITICAL"), "{p:?}: {}", r.stderr);
        // The same with only a source: a whole log is not a scope.
        let r = t.run(&["ignore", "add", p, "--source", "app", "--comment", "n"]);
        assert_eq!(
            r.code,
            Some(64),
            "{p:?} accepted with --source:\n{}",
            r.all()
        );
    }
    assert!(!t.path("ignore.toml").exists(), "nothing was written");
    let r = t.run(&["ignore", "add", ".*", "--force", "--comment", "n"]);
    assert_eq!(
        r.code,
        Some(64),
        "--force without a level cap:\n{}",
        r.all()
    );
    let r = t.run(&[
        "ignore",
        "add",
        ".*",
        "--force",
        "--level",
        "CRITICAL",
        "--comment",
        "n",
    ]);
    assert_eq!(
        r.code,
        Some(64),
        "a cap that still silences CRITICAL:\n{}",
        r.all()
    );
    // Ordinary patterns are not touched by the check.
    t.ok(&[
        "ignore",
        "add",
        "Connection reset",
        "--comment",
        "cdn",
        "--now",
        NOW,
    ]);
    t.ok(&[
        "ignore",
        "add",
        ".*",
        "--force",
        "--level",
        "WARNING",
        "--comment",
        "all warnings",
        "--now",
        NOW,
    ]);
    t.write(
        "app.log",
        &(log_line("10:00:00", "WARNING", "Cache miss for key 12")
            + &log_line("10:00:01", "CRITICAL", "Database is gone")),
    );
    let r = t.ok(&["run", "--now", NOW]);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    assert_eq!(
        t.incident_files().len(),
        1,
        "the critical record still pages"
    );

    // A hand-written match-all rule is a bad rule, reported with its line.
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\ncomment = \"oops\"\npattern = \"a|\"\n\n[[rule]]\nid = 2\npattern = \".\"\nlevel = \"ERROR\"\ncomment = \"capped: fine\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stderr.contains("line 4: rule 1"), "{}", r.stderr);
    assert!(!r.stderr.contains("rule 2"), "{}", r.stderr);
}

#[test]
fn a_relative_expiry_is_written_as_a_time_and_a_past_one_refused() {
    let t = Test::new();
    t.with_app_source("");
    t.ok(&[
        "ignore",
        "add",
        "Slow query",
        "--expires",
        "7d",
        "--comment",
        "c",
        "--now",
        NOW,
    ]);
    let text = t.read("ignore.toml");
    assert!(
        text.contains("expires = \"2026-11-29T10:00:00Z\""),
        "{text}"
    );
    // Later loads do not move it: a week on, the rule has expired.
    let r = t.ok(&["ignore", "list", "--now", "2026-12-01T00:00:00Z"]);
    assert!(
        r.stdout.contains("EXPIRED 2026-11-29T10:00:00Z"),
        "{}",
        r.stdout
    );
    for past in ["2026-11-01", "2026-11-22T09:59:59Z"] {
        let r = t.run(&[
            "ignore",
            "add",
            "x",
            "--expires",
            past,
            "--comment",
            "c",
            "--now",
            NOW,
        ]);
        assert_eq!(r.code, Some(64), "{past}: {}", r.all());
        assert!(r.stderr.contains("already past"), "{}", r.stderr);
    }
    // A duration written by hand would be counted again at every load: refused.
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Slow query\"\ncomment = \"c\"\nexpires = \"7d\"\n",
    );
    let r = t.run(&["ignore", "list", "--now", NOW]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stderr
            .contains("line 5: rule 1: expires: `7d` is a duration"),
        "{}",
        r.stderr
    );
}

#[test]
fn rm_keeps_the_header_and_a_new_file_starts_with_it() {
    let t = Test::new();
    t.with_app_source("");
    t.ok(&["ignore", "add", "first one", "--comment", "a", "--now", NOW]);
    t.ok(&[
        "ignore",
        "add",
        "second one",
        "--comment",
        "b",
        "--now",
        NOW,
    ]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# logwarden ignore rules."), "{text}");
    t.ok(&["ignore", "rm", "1"]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# logwarden ignore rules."), "{text}");
    assert!(
        !text.contains("first one") && text.contains("second one"),
        "{text}"
    );
    // Removing the first rule leaves one blank line under the header, not two.
    assert!(!text.contains("\n\n\n"), "{text}");
    t.ok(&["ignore", "rm", "2"]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# logwarden ignore rules."), "{text}");
    // Added again, the rule goes below the header, not above it.
    t.ok(&["ignore", "add", "third one", "--comment", "c", "--now", NOW]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# logwarden ignore rules."), "{text}");
    assert!(
        text.find("# logwarden").unwrap() < text.find("[[rule]]").unwrap(),
        "{text}"
    );

    // A hand-written file: the team's header survives losing the first rule, and a
    // rule's own comment goes with it.
    t.write(
        "ignore.toml",
        &format!("{HAND_WRITTEN}\n# the payment provider's retries\n[[rule]]\nid = 2\npattern = \"retrying\"\ncomment = \"r\"\n"),
    );
    t.ok(&["ignore", "rm", "1"]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# Our team's silences. Ask Ana"), "{text}");
    assert!(text.contains("# the payment provider's retries"), "{text}");
    t.ok(&["ignore", "rm", "2"]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# Our team's silences. Ask Ana"), "{text}");
    assert!(!text.contains("payment provider"), "{text}");
}

#[test]
fn a_silence_from_a_redacted_incident_matches_its_records_and_leaks_nothing() {
    let t = Test::new();
    t.with_app_source("");
    let msg = |pw: &str| format!("Login rejected password={pw} for user=bob");
    t.write("app.log", &log_line("10:00:00", "ERROR", &msg("hunter2")));
    t.ok(&["run", "--now", NOW]);
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(
        page.contains("logwarden ignore add --from-incident 1 --comment"),
        "the page suggests the command that builds the pattern: {page}"
    );
    let r = t.ok(&[
        "ignore",
        "add",
        "--from-incident",
        "1",
        "--comment",
        "bots",
        "--now",
        NOW,
    ]);
    let text = t.read("ignore.toml");
    assert!(
        !text.contains("hunter2"),
        "a secret in the rules file: {text}"
    );
    assert!(
        !text.contains("REDACTED"),
        "a placeholder is no pattern: {text}"
    );
    let sig = t.incidents()[0]["signature"].as_str().unwrap().to_string();
    assert!(text.contains(&format!("signature = \"{sig}\"")), "{text}");
    assert!(text.contains("source = \"app\""), "{text}");
    assert!(r.stdout.contains("added rule 1"), "{}", r.stdout);
    // The same record with another secret is silenced; another message is not.
    t.append(
        "app.log",
        (log_line("10:05:00", "ERROR", &msg("s3cr3t-Other"))
            + &log_line("10:05:01", "ERROR", "Disk full on /var"))
            .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    assert!(r.stdout.contains("1 new incidents"), "{}", r.stdout);
    let r = t.run(&["ignore", "add", "--from-incident", "99", "--comment", "x"]);
    assert_eq!(r.code, Some(64), "{}", r.all());
}

#[test]
fn every_bad_rule_of_a_hand_edited_file_is_reported_at_once() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "ignore.toml",
        "# ours\n\n[[rule]]\nid = 1\ncomment = \"regex\"\npattern = \"(unclosed\"\n\n[[rule]]\nid = 2\npattern = \"ok\"\nlevel = \"LOUD\"\n\n[[rule]]\nid = 3\npatern = \"typo\"\n\n[[rule]]\nid = 4\npattern = 5\n\n[[rule]]\nid = 2\npattern = \"dup\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    for want in [
        "line 6: rule 1: pattern is not a valid regex",
        "line 11: rule 2: unknown level `LOUD`",
        "line 15: unknown key `patern`",
        "rule 3 has no `pattern`",
        "line 19: `pattern` must be a string",
        "rule id 2 is also used by the rule on line",
    ] {
        assert!(r.stderr.contains(want), "missing {want:?}:\n{}", r.stderr);
    }
    // A syntax error shows the line, the column and a caret under the spot.
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"unterminated\n",
    );
    let r = t.run(&["ignore", "list"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stderr.contains("line 3, column"), "{}", r.stderr);
    assert!(
        r.stderr.contains("3 | pattern = \"unterminated"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains('^'), "{}", r.stderr);
}

#[test]
fn replay_counts_hits_per_rule_and_the_groups_that_would_page() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Connection reset\"\ncomment = \"cdn\"\n\n[[rule]]\nid = 2\npattern = \"never seen\"\ncomment = \"stale\"\n",
    );
    let mut log = String::new();
    for i in 0..5 {
        log += &log_line(
            &format!("10:00:0{i}"),
            "INFO",
            &format!("Request {i} served"),
        );
    }
    log += &log_line("10:01:00", "WARNING", "Connection reset by peer");
    log += &log_line("10:01:01", "ERROR", "Connection reset by peer");
    log += &log_line("10:01:02", "ERROR", "Disk full on /var");
    log += &log_line("10:01:03", "ERROR", "Disk full on /srv");
    t.write("a.log", &log);
    t.write("b.log", &log_line("10:02:00", "CRITICAL", "Out of memory"));
    let r = t.ok(&["ignore", "test", "--file", "a.log", "--file", "b.log"]);
    assert!(
        !r.stdout.contains("served"),
        "INFO records are not listed:\n{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("10 records: 5 below min_level, 2 ignored, 3 left in 2 group(s)"),
        "{}",
        r.stdout
    );
    let j: serde_json::Value =
        serde_json::from_str(&t.ok(&["replay", "a.log", "b.log", "--json"]).stdout).unwrap();
    assert_eq!(j["records"], 10);
    assert_eq!(j["below_min_level"], 5);
    assert_eq!(j["ignored"], 2);
    assert_eq!(j["rules"][0]["hits"], 2);
    assert_eq!(j["rules"][1]["hits"], 0);
    let groups = j["would_page"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{j}");
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(groups[0]["message"], "Disk full on /var");
    assert_eq!(groups[1]["level"], "CRITICAL");
    assert_eq!(groups[1]["first"], "b.log:1");
    // A bad rule: no replay, and a non-zero exit.
    t.write("ignore.toml", "[[rule]]\nid = 1\npattern = \"(\"\n");
    let r = t.run(&["replay", "a.log"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    let r = t.run(&["ignore", "test", "--file", "a.log", "--json"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
}

#[test]
fn ignore_list_prints_json() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", HAND_WRITTEN);
    t.ok(&[
        "ignore",
        "add",
        "Slow",
        "--level",
        "warning",
        "--expires",
        "2026-12-01",
        "--comment",
        "slow",
        "--now",
        NOW,
    ]);
    let j: serde_json::Value =
        serde_json::from_str(&t.ok(&["ignore", "list", "--json", "--now", NOW]).stdout).unwrap();
    let rules = j.as_array().unwrap();
    assert_eq!(rules.len(), 2, "{j}");
    assert_eq!(rules[0]["id"], "1");
    assert_eq!(rules[0]["hits"], 0);
    assert_eq!(rules[0]["origin"], "ignore file");
    assert_eq!(rules[1]["level"], "WARNING");
    assert_eq!(rules[1]["expires"], "2026-12-01T00:00:00Z");
    assert_eq!(rules[1]["expired"], false);
}

/// The ignore file's remembered check (`ignore.checked:<path>` in the kv table).
fn checked_stamp(t: &Test) -> Option<String> {
    let db = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    let key = format!("ignore.checked:{}", t.path("ignore.toml").display());
    db.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
        .ok()
}

const GOOD_RULE: &str =
    "[[rule]]\nid = 1\npattern = \"Connection reset\"\ncomment = \"flaky peer\"\n";

#[test]
fn idle_runs_still_report_a_rule_file_broken_after_it_was_checked() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", GOOD_RULE);
    t.write("app.log", "");
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    // The second run finds the text it checked: nothing new, nothing to say.
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert!(checked_stamp(&t).is_some_and(|s| s.ends_with(GOOD_RULE)));
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"(unclosed\"\ncomment = \"oops\"\n",
    );
    for minute in ["02", "03"] {
        let r = t.run(&["run", "--now", &format!("2026-11-22T10:{minute}:00Z")]);
        assert_eq!(r.code, Some(1), "{}", r.all());
        assert!(r.stdout.contains("line 3"), "{}", r.stdout);
        assert!(
            r.stdout.contains("the last good version applies (1 rules)"),
            "{}",
            r.stdout
        );
    }
    // Fixed again: the good text is quiet once more, and its rule applies.
    t.write("ignore.toml", GOOD_RULE);
    t.ok(&["run", "--now", "2026-11-22T10:04:00Z"]);
    t.append(
        "app.log",
        b"2026-11-22 10:04:30.000 | ERROR    | app:f:1 - Connection reset by peer\n",
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    assert!(t.incident_files().is_empty());
}

#[test]
fn a_rule_edited_between_idle_runs_takes_effect() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", GOOD_RULE);
    t.write("app.log", "");
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Disk full\"\ncomment = \"known\"\n",
    );
    t.append(
        "app.log",
        b"2026-11-22 10:01:30.000 | ERROR    | app:f:1 - Disk full on /var\n\
          2026-11-22 10:01:31.000 | ERROR    | app:f:2 - Connection reset by peer\n",
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:02:00Z"]);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    let files = t.incident_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let page = std::fs::read_to_string(&files[0]).unwrap();
    assert!(page.contains("Connection reset"), "{page}");
}

#[test]
fn a_check_remembered_by_another_build_does_not_pass_a_broken_file() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", GOOD_RULE);
    t.write("app.log", "");
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let broken = "[[rule]]\nid = 1\npattern = \"(unclosed\"\ncomment = \"oops\"\n";
    t.write("ignore.toml", broken);
    // As if another build (older, or laxer) had accepted exactly this text.
    let stamp = checked_stamp(&t).unwrap();
    let (build, _) = stamp.split_once('\n').unwrap();
    let db = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    let key = format!("ignore.checked:{}", t.path("ignore.toml").display());
    for other in ["0.0.1-0000000000000000", &format!("{build}x"), ""] {
        db.execute(
            "UPDATE kv SET value = ?2 WHERE key = ?1",
            [key.as_str(), &format!("{other}\n{broken}")],
        )
        .unwrap();
        let r = t.run(&["run", "--now", "2026-11-22T10:01:00Z"]);
        assert_eq!(r.code, Some(1), "{}", r.all());
        assert!(r.stdout.contains("line 3"), "{}", r.stdout);
    }
    // This build's own id with a text it did not check (a different file) does not pass either.
    db.execute(
        "UPDATE kv SET value = ?2 WHERE key = ?1",
        [key.as_str(), &format!("{build}\n{GOOD_RULE}")],
    )
    .unwrap();
    let r = t.run(&["run", "--now", "2026-11-22T10:02:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("line 3"), "{}", r.stdout);
}

#[test]
fn a_removed_rules_id_and_hits_are_not_handed_to_the_next_rule() {
    let t = Test::new();
    t.with_app_source("");
    t.ok(&[
        "ignore",
        "add",
        "Connection reset",
        "--comment",
        "the proxy\nrestarts nightly",
        "--now",
        "2026-11-22T09:00:00Z",
    ]);
    t.write(
        "app.log",
        &(log_line("10:00:00", "ERROR", "Connection reset by peer").repeat(2)),
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let list = t.ok(&["ignore", "list"]).stdout;
    assert!(list.contains("2 hits"), "{list}");
    // One rule, one line, the comment's lines joined.
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(list.contains("# the proxy restarts nightly"), "{list}");

    t.ok(&["ignore", "rm", "1"]);
    let r = t.ok(&[
        "ignore",
        "add",
        "Disk full",
        "--comment",
        "d",
        "--now",
        "2026-11-22T11:00:00Z",
    ]);
    assert!(r.stdout.contains("added rule 2"), "{}", r.stdout);
    let list = t.ok(&["ignore", "list"]).stdout;
    assert!(list.contains("0 hits, last never"), "{list}");
    assert!(t.ok(&["check"]).all().contains("OK"));

    // A hand edit that writes the old id again: the old rule's hits are not the new
    // rule's, in the listing and in the counting.
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Timeout\"\ncomment = \"t\"\ncreated = \"2026-11-22T12:00:00Z\"\n",
    );
    let list = t.ok(&["ignore", "list"]).stdout;
    assert!(list.contains("0 hits, last never"), "{list}");
    t.append(
        "app.log",
        log_line("12:30:00", "ERROR", "Timeout talking to db").as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T12:35:00Z"]);
    let list = t.ok(&["ignore", "list"]).stdout;
    assert!(list.contains(" 1 hits"), "{list}");
}

#[test]
fn last_id_keeps_the_header_its_comment_and_the_largest_numbered_id() {
    let t = Test::new();
    t.with_app_source("");
    let add = |p: &str| {
        t.ok(&["ignore", "add", p, "--comment", p, "--now", NOW])
            .stdout
    };
    add("alpha");
    t.ok(&["ignore", "rm", "1"]);
    add("beta");
    t.ok(&["ignore", "rm", "2"]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# logwarden ignore rules."), "{text}");
    assert!(
        text.contains("# The largest id a removed rule had"),
        "{text}"
    );
    assert!(text.contains("last_id = 2"), "{text}");
    // A hand-written id of another kind is not the file's to count.
    t.append(
        "ignore.toml",
        b"\n[[rule]]\nid = \"web9\"\npattern = \"gamma\"\ncomment = \"g\"\n",
    );
    t.ok(&["ignore", "rm", "web9"]);
    assert!(t.read("ignore.toml").contains("last_id = 2"));
    assert!(add("delta").contains("added rule 3"));

    // A team's header right above the first rule (no blank line) stays on top.
    t.write(
        "ignore.toml",
        "# Team rules\n[[rule]]\nid = 1\npattern = \"a\"\ncomment = \"a\"\n\n[[rule]]\nid = 2\npattern = \"b\"\ncomment = \"b\"\n",
    );
    t.ok(&["ignore", "rm", "2"]);
    let text = t.read("ignore.toml");
    assert!(text.starts_with("# Team rules\n"), "{text}");
    assert!(text.find("last_id").unwrap() < text.find("[[rule]]").unwrap());
    t.ok(&["check"]);
}

#[test]
fn a_silence_from_an_incident_follows_its_group_as_the_template_widened() {
    let t = Test::new();
    t.with_app_source("");
    let msg = |order: u32, code: &str| format!("Card refused for order {order}: code={code}");
    t.write(
        "app.log",
        &log_line("10:00:00", "ERROR", &msg(55, "card_declined")),
    );
    t.ok(&["run", "--now", NOW]);
    // The group widens to `code=<*>` after the incident opened with the first message.
    t.append(
        "app.log",
        log_line("10:02:00", "ERROR", &msg(56, "expired_card")).as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:03:00Z"]);
    t.ok(&[
        "ignore",
        "add",
        "--from-incident",
        "1",
        "--comment",
        "customers' cards",
        "--now",
        "2026-11-22T10:04:00Z",
    ]);
    t.append(
        "app.log",
        log_line("10:05:00", "ERROR", &msg(57, "do_not_honor")).as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout.contains("1 ignored") && r.stdout.contains("0 new incidents"),
        "{}\n{}",
        r.stdout,
        t.read("ignore.toml")
    );
}

#[test]
fn a_pattern_in_nearly_every_message_is_refused_though_it_needs_a_character() {
    let t = Test::new();
    t.with_app_source("");
    // None of these matches the empty string; each is found in nearly any message.
    for p in [
        "\\S",
        "\\w",
        "[^\\s]",
        " ",
        "\\D",
        "[[:print:]]|\\s",
        "\\W",
        ".+",
        // rare in other scripts, in nearly every message of an app logging in English
        "[a-zA-Z0-9]",
        "(?i)[a-z]",
    ] {
        let r = t.run(&["ignore", "add", p, "--comment", "noise", "--now", NOW]);
        assert_eq!(r.code, Some(64), "{p:?} accepted:\n{}", r.all());
        assert!(
            r.stderr.contains("sample log messages"),
            "{p:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("CRITICAL"), "{p:?}: {}", r.stderr);
    }
    assert!(!t.path("ignore.toml").exists(), "nothing was written");
    // Forced under a level cap below CRITICAL, it is taken.
    t.ok(&[
        "ignore",
        "add",
        "\\S",
        "--force",
        "--level",
        "WARNING",
        "--comment",
        "warnings",
        "--now",
        NOW,
    ]);
    // Narrow patterns are not touched.
    for p in [
        "ConnectionResetError",
        "timeout after \\d+s",
        "^GET /health",
    ] {
        t.ok(&["ignore", "add", p, "--comment", "known", "--now", NOW]);
    }
    // The same check applies to a rule written by hand.
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\ncomment = \"oops\"\npattern = \"\\\\S\"\n\n[[rule]]\nid = 2\npattern = \"ConnectionResetError\"\ncomment = \"fine\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stderr.contains("line 4: rule 1"), "{}", r.stderr);
    assert!(!r.stderr.contains("rule 2"), "{}", r.stderr);
}

/// Rules each accepted by `ignore add` that together are over the regex size limit
/// (long `\w{N}` runs) still all match, the first one too.
#[test]
fn rules_too_big_to_compile_together_still_each_match() {
    let t = Test::new();
    t.with_app_source("");
    let add = |args: &[&str]| {
        let mut a = vec!["ignore", "add"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--now", "2026-11-22T09:00:00Z"]);
        t.ok(&a);
    };
    add(&["Cache miss for key", "--comment", "known noise"]);
    for i in 0..3 {
        add(&[
            r"^Upload token rejected: \w{100}$",
            "--level",
            "WARNING",
            "--comment",
            &format!("bad upload tokens {i}"),
        ]);
    }
    let cache =
        "2026-11-22 10:00:00.000 | WARNING  | app.cache:get:12 - Cache miss for key user:42";
    let r = t.ok(&["ignore", "test", cache]);
    assert!(r.stdout.starts_with("rule 1 (known noise)"), "{}", r.stdout);
    let token = format!(
        "2026-11-22 10:00:01.000 | WARNING  | app.up:put:9 - Upload token rejected: {}",
        "a".repeat(100)
    );
    t.write("app.log", &format!("{cache}\n{token}\n"));
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("2 ignored"), "{}", r.stdout);
    assert!(t.incidents().is_empty());
}

/// A rule for the exception line applies also when the message matched another rule
/// that does not apply to the record (scoped to warnings, here).
#[test]
fn the_exception_line_is_tried_when_the_rules_matching_the_message_do_not_apply() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "ignore.toml",
        "[[rule]]\nid = \"w1\"\npattern = \"upstream\"\nlevel = \"WARNING\"\ncomment = \"upstream warnings\"\n\n[[rule]]\nid = \"e1\"\npattern = \"^ConnectionResetError: \"\ncomment = \"client hang-ups\"\n",
    );
    let record = |time: &str, msg: &str| {
        format!("2026-11-22 {time}.000 | ERROR    | app.proxy:relay:12 - {msg}\nTraceback (most recent call last):\n  File \"/srv/app/proxy.py\", line 12, in relay\n    sock.send(buf)\nConnectionResetError: [Errno 104] Connection reset by peer\n")
    };
    t.write(
        "app.log",
        &(record("10:00:00", "relay to upstream aborted")
            + &record("10:00:01", "relay to client aborted")),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("2 ignored"), "{}", r.stdout);
    assert!(t.incidents().is_empty(), "{:?}", t.incidents());
}

/// Rules in a file, by id.
fn rule_ids(text: &str) -> Vec<i64> {
    let doc: toml::Value = toml::from_str(text).unwrap();
    doc["rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_integer().unwrap())
        .collect()
}

#[test]
fn changes_made_at_the_same_time_are_all_kept() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", HAND_WRITTEN);
    // Two admins, or a script with `xargs -P`: each command reads, changes and
    // replaces the file; without a lock most of them wrote over the others.
    let spawn_all = |args: Vec<Vec<String>>| {
        let children: Vec<_> = args
            .iter()
            .map(|a| {
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                t.command(&a)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| Run::from(c.wait_with_output().unwrap()))
            .collect::<Vec<_>>()
    };
    let add = |i: usize| {
        vec![
            "ignore".to_string(),
            "add".into(),
            format!("noisy thing number {i}$"),
            "--comment".into(),
            format!("rule {i}"),
        ]
    };
    let runs = spawn_all((0..12).map(add).collect());
    let mut said: Vec<String> = Vec::new();
    for r in &runs {
        assert_eq!(r.code, Some(0), "{}", r.all());
        said.push(r.stdout.split(':').next().unwrap().to_string());
    }
    said.sort();
    said.dedup();
    assert_eq!(said.len(), 12, "each was told its own id: {said:?}");
    let text = t.read("ignore.toml");
    let mut ids = rule_ids(&text);
    ids.sort();
    assert_eq!(ids, (1..=13).collect::<Vec<_>>(), "{text}");
    for i in 0..12 {
        assert!(text.contains(&format!("number {i}$")), "{text}");
    }
    assert!(text.contains("# the CDN does this nightly"), "{text}");

    // removals and additions at once: every one lands, and no id is handed out twice
    let mut mixed: Vec<Vec<String>> = (2..=7)
        .map(|id| vec!["ignore".into(), "rm".into(), id.to_string()])
        .collect();
    mixed.extend((12..18).map(add));
    for r in spawn_all(mixed) {
        assert_eq!(r.code, Some(0), "{}", r.all());
    }
    let text = t.read("ignore.toml");
    let mut ids = rule_ids(&text);
    ids.sort();
    assert_eq!(ids.len(), 13, "{text}");
    assert!(ids.iter().all(|id| !(2..=7).contains(id)), "{ids:?}");
    assert!(ids.iter().all(|id| *id <= 19), "{ids:?}");
}

#[test]
fn a_change_waits_for_one_in_progress_and_says_so_when_it_never_ends() {
    let t = Test::new();
    t.with_app_source("");
    t.write("ignore.toml", HAND_WRITTEN);
    // Another process editing the file holds its folder's lock.
    let folder = std::fs::File::open(t.path(".")).unwrap();
    folder.lock().unwrap();
    let child = t
        .command(&["ignore", "add", "^slow report$", "--comment", "waits"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    folder.unlock().unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, Some(0), "it waited for the lock: {}", r.all());
    assert!(t.read("ignore.toml").contains("^slow report$"));

    // held for good (a stuck editor): a clear error, and the file as it was
    folder.lock().unwrap();
    let before = t.read("ignore.toml");
    let r = t.run(&["ignore", "rm", "1"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr
            .contains("is being changed by another logwarden process")
            && r.stderr.contains("nothing was changed: try again"),
        "{}",
        r.stderr
    );
    assert_eq!(t.read("ignore.toml"), before);
}

/// A hand-written rule scoped to a source no `[[source]]` is named (a typo, or a source
/// renamed since) matches nothing: `check` says so (exit 1) and every run warns.
#[test]
fn a_rule_scoped_to_an_unknown_source_is_said_to_match_nothing() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Card declined\"\nsource = \"ap\"\ncomment = \"known\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stderr.contains(
            "rule 1 is scoped to source `ap`, which is not a configured source: it matches nothing"
        ),
        "{}",
        r.stderr
    );
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Card declined for order 7\n",
    );
    for at in ["2026-11-22T10:05:00Z", "2026-11-22T10:10:00Z"] {
        let r = t.ok(&["run", "--now", at]);
        assert!(
            r.stdout
                .contains("source `ap`, which is not a configured source"),
            "{at}: {}",
            r.stdout
        );
    }
    assert_eq!(t.incidents().len(), 1);
    // fixed: quiet again
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Card declined\"\nsource = \"app\"\ncomment = \"known\"\n",
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert!(
        !r.stdout.contains("not a configured source"),
        "{}",
        r.stdout
    );
    assert_eq!(t.run(&["check"]).code, Some(0));
}
