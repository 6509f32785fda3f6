//! Config validation: every error at once, with its key.

use crate::util::*;

#[test]
fn check_reports_every_problem_with_its_key() {
    let t = Test::new();
    t.write(
        "logwarden.toml",
        r#"
state_dir = "state"
renotify_after = "a while"
colour = "blue"

[[source]]
name = "app"
from = "the middle"
min_level = "LOUD"

[investigator]
kind = "gpt"
timeout = "5"

[ntfy]
topic = "has spaces"
token = "tk_do_not_print_me"
"#,
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in [
        "`renotify_after`",
        "`colour`",
        "`source[0].path`",
        "`source[0].from`",
        "`source[0].min_level`",
        "`investigator.kind`",
        "`investigator.timeout`",
        "`ntfy.topic`",
        "`ntfy.token`",
    ] {
        assert!(r.stderr.contains(key), "no error for {key}:\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("tk_do_not_print_me"));
}

#[test]
fn check_prints_the_effective_config() {
    let t = Test::new();
    t.with_app_source("");
    let r = t.ok(&["check"]);
    assert!(r.stdout.contains("[[source]]"), "{}", r.stdout);
    assert!(r.stdout.contains("renotify_after = \"7d\""), "{}", r.stdout);
    assert!(
        r.stdout.contains(&t.path("app.log").display().to_string()),
        "relative paths resolved against the config's folder"
    );
}

#[test]
fn config_flag_beats_environment() {
    let t = Test::new();
    t.with_app_source("");
    t.write("other.toml", "bogus = 1\n");
    let r = t.run(&["check", "--config", "other.toml"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("other.toml"), "{}", r.stderr);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let t = Test::new();
    t.with_app_source("");
    t.write("app.log", "");
    t.ok(&["run"]);
    let conn = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let r = t.run(&["run"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("newer logwarden"), "{}", r.stderr);
}
