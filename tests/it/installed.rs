//! The installed watcher: a service user that is not root, root editing from a shell,
//! the hardened unit's read-only /etc, the host's time zone. Runs as root drop to
//! `nobody` with `setpriv` to act as the service user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::util::{is_root, open_up, FakeNtfy, Run, Test};

const BOOM: &str = "2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:42 - Payment provider timeout for order 1234\n";

fn first_seen(t: &Test) -> Vec<String> {
    let mut v: Vec<String> = t
        .incidents()
        .iter()
        .map(|i| i["first_seen"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

// ---- time zones -------------------------------------------------------------

#[test]
fn loguru_times_without_offset_are_the_hosts_local_time() {
    for (tz, want) in [
        ("Europe/Berlin", "2026-11-22T09:00:00Z"),
        ("Asia/Tokyo", "2026-11-22T01:00:00Z"),
        (":Asia/Tokyo", "2026-11-22T01:00:00Z"),
        (
            "/usr/share/zoneinfo/America/New_York",
            "2026-11-22T15:00:00Z",
        ),
        ("UTC", "2026-11-22T10:00:00Z"),
    ] {
        let t = Test::new().env("TZ", tz);
        t.with_app_source("");
        t.write("app.log", BOOM);
        // after every reading of the line: no record is dated after the run that saw it
        t.ok(&["run", "--now", "2026-11-22T16:00:00Z"]);
        assert_eq!(first_seen(&t), [want], "TZ={tz}");
    }
}

#[test]
fn a_sources_timezone_overrides_the_host_and_an_offset_wins() {
    let t = Test::new().env("TZ", "Asia/Tokyo");
    t.config(
        "[[source]]\nname = \"berlin\"\npath = \"berlin.log\"\nfrom = \"start\"\ntimezone = \"Europe/Berlin\"\n\
         [[source]]\nname = \"utc\"\npath = \"utc.log\"\nfrom = \"start\"\ntimezone = \"UTC\"\n\
         [[source]]\nname = \"offset\"\npath = \"offset.log\"\nfrom = \"start\"\ntimezone = \"Europe/Berlin\"\n",
    );
    t.write(
        "berlin.log",
        "2026-07-01 10:00:00.000 | ERROR    | a:f:1 - summer in Berlin\n",
    );
    t.write(
        "utc.log",
        "2026-11-22 10:00:00.000 | ERROR    | b:f:1 - written in UTC\n",
    );
    t.write(
        "offset.log",
        "2026-11-22 10:00:00.000+05:30 | ERROR    | c:f:1 - with its offset\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let by_source = |s: &str| {
        t.incidents()
            .into_iter()
            .find(|i| i["source"] == s)
            .unwrap_or_else(|| panic!("no incident of {s}"))["first_seen"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(by_source("berlin"), "2026-07-01T08:00:00Z");
    assert_eq!(by_source("utc"), "2026-11-22T10:00:00Z");
    assert_eq!(by_source("offset"), "2026-11-22T04:30:00Z");
}

#[test]
fn a_custom_format_and_a_text_source_read_local_time_too() {
    let t = Test::new().env("TZ", "Europe/Berlin");
    t.config(
        "[[source]]\nname = \"api\"\npath = \"api.log\"\nfrom = \"start\"\n\
         format = \"{time:YYYY-MM-DD HH:mm:ss} | {level} | {message}\"\n\
         [[source]]\nname = \"nginx\"\nkind = \"text\"\npath = \"error.log\"\nfrom = \"start\"\n\
         regex = '^(?P<time>\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d) \\[(?P<level>\\w+)\\] (?P<message>.*)$'\n",
    );
    t.write("api.log", "2026-11-22 10:00:00 | ERROR | api down\n");
    t.write(
        "error.log",
        "2026/11/22 11:00:00 [error] upstream timed out\n",
    );
    t.ok(&["run", "--now", "2026-11-22T12:00:00Z"]);
    assert_eq!(
        first_seen(&t),
        ["2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z"]
    );
}

#[test]
fn berlin_local_times_around_the_autumn_dst_change() {
    // 2026-10-25 03:00 CEST becomes 02:00 CET: 01:30 is still summer time (UTC+2),
    // 02:30 happens twice (the first, summer time, is taken), 03:30 is winter time.
    let t = Test::new().env("TZ", "Europe/Berlin");
    t.with_app_source("");
    t.write(
        "app.log",
        "2026-10-25 01:30:00.000 | ERROR    | a:f:1 - before the change\n\
         2026-10-25 02:30:00.000 | ERROR    | b:f:1 - in the repeated hour\n\
         2026-10-25 03:30:00.000 | ERROR    | c:f:1 - after the change\n",
    );
    t.ok(&["run", "--now", "2026-10-25T04:00:00Z"]);
    assert_eq!(
        first_seen(&t),
        [
            "2026-10-24T23:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T02:30:00Z"
        ]
    );
}

#[test]
fn auto_resolve_counts_from_when_the_record_was_seen_in_any_zone() {
    // In Tokyo the error happened at 01:00Z (its page says so); the quiet period that
    // resolves it counts from when logwarden saw it (10:05Z), so a log read in the
    // wrong zone, or whose clock lags, cannot resolve it at once and page it again.
    let t = Test::new().env("TZ", "Asia/Tokyo");
    t.with_app_source("[incidents]\nresolve_after = \"24h\"\n");
    t.write("app.log", BOOM);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(first_seen(&t), ["2026-11-22T01:00:00Z"]);
    t.ok(&["run", "--now", "2026-11-23T02:00:00Z"]);
    assert_eq!(t.incidents()[0]["status"], "open");
    t.ok(&["run", "--now", "2026-11-23T10:06:00Z"]);
    assert_eq!(t.incidents()[0]["status"], "resolved");
}

#[test]
fn a_bad_timezone_is_a_config_error_with_its_key() {
    let t = Test::new();
    t.with_app_source("timezone = \"Mars/Olympus\"\n");
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("source[0].timezone"), "{}", r.all());
    assert!(r.stderr.contains("Mars/Olympus"), "{}", r.all());
}

// ---- who owns what ----------------------------------------------------------

const NOBODY: u32 = 65534;

fn owner(t: &Test, rel: &str) -> (u32, u32, u32) {
    let m = std::fs::metadata(t.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
}

fn chown(t: &Test, rel: &str, uid: u32, gid: u32) {
    std::os::unix::fs::chown(t.path(rel), Some(uid), Some(gid)).unwrap();
}

fn chmod(t: &Test, rel: &str, mode: u32) {
    std::fs::set_permissions(t.path(rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

/// As the .deb leaves it: the config 0640 root:<service group>, the state and
/// incidents folders the service user's; `nobody` (group nogroup) plays that user.
fn installed(rest: &str) -> Test {
    let t = Test::new();
    t.with_app_source(rest);
    t.write("app.log", "");
    chmod(&t, "app.log", 0o644);
    chown(&t, "logwarden.toml", 0, NOBODY);
    chmod(&t, "logwarden.toml", 0o640);
    open_up(t.dir.path());
    t.give_to_nobody("state");
    t.give_to_nobody("incidents");
    t
}

fn as_nobody(t: &Test, args: &[&str]) -> Run {
    Run::from(t.command_as_nobody(args).output().unwrap())
}

#[test]
fn root_editing_from_a_shell_never_locks_the_service_user_out() {
    if !is_root() {
        eprintln!("needs root to act as two users");
        return;
    }
    let t = installed("");
    // a new ignore file takes the config file's owner, group and mode
    t.ok(&["ignore", "add", "healthcheck", "--comment", "load balancer"]);
    assert_eq!(owner(&t, "ignore.toml"), (0, NOBODY, 0o640));
    t.append(
        "app.log",
        format!("{BOOM}2026-11-22 10:00:01.000 | ERROR    | lb:probe:1 - healthcheck failed\n")
            .as_bytes(),
    );
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    let page = t.incident_files()[0].clone();
    let page_rel = format!("incidents/{}", page.file_name().unwrap().to_string_lossy());
    let page_perms = owner(&t, &page_rel);
    assert_eq!((page_perms.0, page_perms.1), (NOBODY, NOBODY));

    // root adds a note and a rule: the page, INDEX.md and the rules keep their owners
    let index_perms = owner(&t, "incidents/INDEX.md");
    t.ok(&["incidents", "note", "1", "restarted the payment worker"]);
    assert_eq!(owner(&t, &page_rel), page_perms);
    assert_eq!(owner(&t, "incidents/INDEX.md"), index_perms);
    chmod(&t, "ignore.toml", 0o660); // whatever the admin chose is kept
    t.ok(&["ignore", "add", "deprecated", "--comment", "library noise"]);
    assert_eq!(owner(&t, "ignore.toml"), (0, NOBODY, 0o660));

    // a hand note below the marker, by root (appending keeps the owner)
    t.append(&page_rel, b"root was here\n");
    // the service's next rewrites keep both notes
    t.append("app.log", BOOM.as_bytes());
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let text = t.read(&page_rel);
    assert!(text.contains("restarted the payment worker"), "{text}");
    assert!(text.contains("root was here"), "{text}");
    assert!(text.contains("occurrences: 2"), "{text}");

    // a run by hand as root: what it creates in the service's folders is the service's
    t.append(
        "app.log",
        b"2026-11-22 10:11:00.000 | ERROR    | app.db:connect:7 - Database pool exhausted\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:12:00Z"]);
    for f in t.incident_files() {
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY), "{}", f.display());
    }
    t.append("app.log", BOOM.as_bytes());
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:15:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
}

#[test]
fn a_root_made_state_is_handed_to_the_folders_owner() {
    if !is_root() {
        eprintln!("needs root to act as two users");
        return;
    }
    let t = installed("");
    t.append("app.log", BOOM.as_bytes());
    // the first run ever is root's (by hand, before the timer)
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    for f in ["state/logwarden.db", "state/run.lock"] {
        let (uid, gid, _) = owner(&t, f);
        assert_eq!((uid, gid), (NOBODY, NOBODY), "{f}");
    }
    t.append("app.log", BOOM.as_bytes());
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(t.incidents()[0]["occurrences"], 2);
}

#[test]
fn an_unreadable_page_is_kept_and_retried_not_rewritten_without_its_notes() {
    if !is_root() {
        eprintln!("needs root to act as two users");
        return;
    }
    let t = installed("");
    t.append("app.log", BOOM.as_bytes());
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let page = t.incident_files()[0].clone();
    let rel = format!("incidents/{}", page.file_name().unwrap().to_string_lossy());
    // as an older logwarden left it: root's, 0600, with the team's notes
    chown(&t, &rel, 0, 0);
    chmod(&t, &rel, 0o600);
    t.append(&rel, b"postgres was restarted at 10:04\n");
    let before = t.read(&rel);
    t.append("app.log", BOOM.as_bytes());
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("left as it was"), "{}", r.stdout);
    assert_eq!(t.read(&rel), before, "the page is not rewritten");
    // fixed by the admin: the next run (nothing new to read) rewrites it with the notes
    chown(&t, &rel, NOBODY, NOBODY);
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:15:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let after = t.read(&rel);
    assert!(after.contains("occurrences: 2"), "{after}");
    assert!(after.contains("postgres was restarted at 10:04"), "{after}");
}

// ---- a watcher that cannot do its job says so -------------------------------

fn titles(ntfy: &FakeNtfy) -> Vec<String> {
    ntfy.messages_to("ops")
        .iter()
        .map(|m| m.header("Title").unwrap_or("").to_string())
        .collect()
}

/// A page that cannot be written (the incidents folder handed back to root) is one
/// lasting problem: notified once, not as a new problem at every run because the
/// message named a random temporary file. Once the folder is the service user's again
/// the page is written and the incident pages.
#[test]
fn a_lasting_page_write_failure_is_notified_once() {
    if !is_root() {
        eprintln!("needs root to take the incidents folder from the service user");
        return;
    }
    let ntfy = FakeNtfy::start(None);
    let t = installed(&ntfy.config("ops"));
    chown(&t, "incidents", 0, 0);
    chmod(&t, "incidents", 0o755);
    t.write("app.log", BOOM);
    for minute in ["00", "05", "10", "15"] {
        let r = as_nobody(
            &t,
            &["run", "--now", &format!("2026-11-22T10:{minute}:00Z")],
        );
        assert_eq!(r.code, Some(1), "{}", r.all());
        assert!(r.all().contains("Permission denied"), "{}", r.all());
        assert!(!r.all().contains(".logwarden-"), "{}", r.all());
    }
    assert_eq!(
        titles(&ntfy),
        ["[test-host] logwarden watcher problem"],
        "one notification for one lasting problem"
    );
    t.give_to_nobody("incidents");
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:20:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    assert_eq!(t.incident_files().len(), 1);
    let sent = titles(&ntfy);
    assert!(
        sent.iter().any(|s| s.contains("Payment provider timeout")),
        "{sent:?}"
    );
}

#[test]
fn an_unreadable_source_is_notified_once_then_daily_and_when_it_clears() {
    if !is_root() {
        eprintln!("needs root to make a log the service user cannot read");
        return;
    }
    let ntfy = FakeNtfy::start(None);
    let t = installed(&ntfy.config("ops"));
    chmod(&t, "app.log", 0o600); // root's, as a log rotated with the wrong mode
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 1, "{:?}", titles(&ntfy));
    assert_eq!(
        m[0].header("Title"),
        Some("[test-host] logwarden watcher problem")
    );
    assert!(m[0].body.contains("source `app`"), "{}", m[0].body);
    assert!(m[0].body.contains("Permission denied"), "{}", m[0].body);
    assert!(m[0].body.contains("logwarden doctor"), "{}", m[0].body);

    // the same problem again: not notified again…
    let r = as_nobody(&t, &["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(ntfy.messages_to("ops").len(), 1);
    // …but shown by status and doctor
    let s = t.ok(&["status"]);
    assert!(
        s.stdout
            .contains("WATCHER PROBLEM since 2026-11-22T10:00:00Z"),
        "{}",
        s.stdout
    );
    assert!(s.stdout.contains("source `app`"), "{}", s.stdout);
    let d = t.run(&[
        "doctor",
        "--user",
        "nobody",
        "--now",
        "2026-11-22T10:06:00Z",
    ]);
    assert!(
        d.stdout
            .contains("✗ watcher problem since 2026-11-22T10:00:00Z"),
        "{}",
        d.stdout
    );

    // a day later: a reminder
    let r = as_nobody(&t, &["run", "--now", "2026-11-23T10:01:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 2, "{:?}", titles(&ntfy));
    assert!(m[1].body.contains("still there"), "{}", m[1].body);

    // fixed: one "watching again"
    chmod(&t, "app.log", 0o644);
    let r = as_nobody(&t, &["run", "--now", "2026-11-23T10:06:00Z"]);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 3, "{:?}", titles(&ntfy));
    assert_eq!(
        m[2].header("Title"),
        Some("[test-host] logwarden is watching again")
    );
    let s = t.ok(&["status"]);
    assert!(!s.stdout.contains("WATCHER PROBLEM"), "{}", s.stdout);

    // broken again: notified again at once
    chmod(&t, "app.log", 0o600);
    let r = as_nobody(&t, &["run", "--now", "2026-11-23T10:11:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    let m = ntfy.messages_to("ops");
    assert_eq!(m.len(), 4, "{:?}", titles(&ntfy));
    assert_eq!(
        m[3].header("Title"),
        Some("[test-host] logwarden watcher problem")
    );
}

#[test]
fn a_broken_ignore_file_keeps_its_last_good_rules_and_is_notified() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    let good = "[[rule]]\nid = 1\npattern = \"healthcheck\"\ncomment = \"load balancer\"\n";
    t.write("ignore.toml", good);
    let probe = "2026-11-22 10:00:01.000 | ERROR    | lb:probe:1 - healthcheck failed\n";
    t.write("app.log", probe);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);

    // a hand edit breaks it: the run goes on with the last good rules
    t.write(
        "ignore.toml",
        &format!("{good}\n[[rule]]\nid = 2\npattern = \"(unclosed\"\ncomment = \"oops\"\n"),
    );
    t.append("app.log", format!("{probe}{BOOM}").as_bytes());
    let r = t.run(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    assert!(r.stdout.contains("line 8"), "{}", r.stdout);
    assert!(
        r.stdout.contains("the last good version applies (1 rules)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("1 new incidents"),
        "the rest is watched: {}",
        r.stdout
    );
    let m = ntfy.messages_to("ops");
    let problem = m
        .iter()
        .find(|m| m.header("Title") == Some("[test-host] logwarden watcher problem"))
        .unwrap_or_else(|| panic!("{:?}", titles(&ntfy)));
    assert!(problem.body.contains("ignore.toml"), "{}", problem.body);
    // the command line still refuses to build on a broken file
    let r = t.run(&["ignore", "add", "x", "--comment", "y"]);
    assert_ne!(r.code, Some(0), "{}", r.all());
}

#[test]
fn a_mute_that_cannot_be_written_is_notified_and_applied_next_run() {
    let ntfy = FakeNtfy::start(None);
    ntfy.allow_anonymous_write("ops-control");
    let t = Test::new();
    t.with_app_source(&format!(
        "{}control_topic = \"ops-control\"\n",
        ntfy.config("ops")
    ));
    t.write("app.log", BOOM);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let m = ntfy.messages_to("ops");
    assert_eq!(ntfy.tap(&m[0], "Mute 24h"), 200);
    // the mutes file cannot be replaced (here: a symlink, which logwarden never
    // writes through; under the unit: a read-only or full state dir)
    t.write("elsewhere.toml", "");
    std::os::unix::fs::symlink("../elsewhere.toml", t.path("state/mutes.toml")).unwrap();
    t.append("app.log", BOOM.as_bytes());
    let r = t.run(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout
            .contains("mute for incident #1: cannot add the rule"),
        "{}",
        r.stdout
    );
    let m = ntfy.messages_to("ops");
    let last = m.last().unwrap();
    assert_eq!(
        last.header("Title"),
        Some("[test-host] logwarden watcher problem")
    );
    assert!(last.body.contains("mute for incident #1"), "{}", last.body);
    assert_eq!(t.incidents()[0]["occurrences"], 2, "not muted yet");

    // fixed: the same message is applied on the next run, not refused as a replay
    std::fs::remove_file(t.path("state/mutes.toml")).unwrap();
    t.append("app.log", BOOM.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout
            .contains("incident #1 muted for 24h from the phone (ignore rule m1)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("replayed"), "{}", r.stdout);
    assert!(r.stdout.contains("1 ignored"), "{}", r.stdout);
    assert!(t
        .read("state/mutes.toml")
        .contains("expires = \"2026-11-23T10:10:00Z\""));
    let m = ntfy.messages_to("ops");
    assert_eq!(
        m.last().unwrap().header("Title"),
        Some("[test-host] logwarden is watching again")
    );
}

#[test]
fn rules_from_both_files_are_listed_and_removed_by_id() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "state/mutes.toml",
        "[[rule]]\nid = \"m1\"\npattern = \"^\"\nsignature = \"0123456789abcdef\"\ncomment = \"muted from the phone\"\n",
    );
    t.ok(&["ignore", "add", "healthcheck", "--comment", "load balancer"]);
    let list = t.ok(&["ignore", "list"]).stdout;
    assert!(list.contains("[ignore file:"), "{list}");
    assert!(list.contains("[phone mute:"), "{list}");
    // ids are unique across both files
    t.write(
        "state/mutes.toml",
        "[[rule]]\nid = 2\npattern = \"^\"\ncomment = \"hand-made\"\n",
    );
    let r = t.ok(&["ignore", "add", "deprecated", "--comment", "noise"]);
    assert!(r.stdout.contains("added rule 3"), "{}", r.stdout);
    let r = t.ok(&["ignore", "rm", "2"]);
    assert!(r.stdout.contains("mutes.toml"), "{}", r.stdout);
    assert!(!t.read("state/mutes.toml").contains("hand-made"));
    let r = t.ok(&["ignore", "rm", "1"]);
    assert!(r.stdout.contains("ignore.toml"), "{}", r.stdout);
    assert!(t.run(&["ignore", "rm", "1"]).code != Some(0));
}

#[test]
fn doctor_as_root_says_what_the_service_user_cannot_read() {
    if !is_root() {
        eprintln!("needs root to judge another user's access");
        return;
    }
    let t = installed("");
    t.write("ignore.toml", "");
    chmod(&t, "ignore.toml", 0o600); // as `ignore add` left it before: root's only
    t.write("state/mutes.toml", "");
    let doctor = || {
        t.run(&[
            "doctor",
            "--user",
            "nobody",
            "--now",
            "2026-11-22T10:00:00Z",
        ])
    };
    let r = doctor();
    assert_eq!(r.code, Some(1), "{}", r.all());
    let out = &r.stdout;
    assert!(out.contains("✓ config"), "{out}");
    assert!(out.contains("readable by user nobody"), "{out}");
    assert!(
        out.contains("✗ ignore file") && out.contains("not readable by user nobody"),
        "{out}"
    );
    assert!(
        out.contains("chgrp nogroup") && out.contains("chmod 0640"),
        "{out}"
    );
    assert!(
        out.contains("✗ mutes file")
            && out.contains(&format!(
                "chown nobody:nogroup {}",
                t.path("state/mutes.toml").display()
            )),
        "{out}"
    );
    assert!(out.contains("✓ incidents dir"), "{out}");
    // the fixes it gives work
    chown(&t, "ignore.toml", 0, NOBODY);
    chmod(&t, "ignore.toml", 0o640);
    chown(&t, "state/mutes.toml", NOBODY, NOBODY);
    let out = doctor().stdout;
    assert!(out.contains("✓ ignore file"), "{out}");
    assert!(out.contains("✓ mutes file"), "{out}");

    // judged by the kernel as that user, not from the mode bits alone: an immutable
    // mutes file has the right owner and mode but cannot be replaced
    let chattr = |flag: &str| {
        let st = std::process::Command::new("chattr")
            .arg(flag)
            .arg(t.path("state/mutes.toml"))
            .status()
            .expect("chattr (e2fsprogs) runs");
        assert!(st.success(), "chattr {flag} failed");
    };
    chattr("+i");
    let out = doctor().stdout;
    chattr("-i");
    assert!(
        out.contains("✗ mutes file") && out.contains("Operation not permitted"),
        "{out}"
    );

    // a service user that does not exist here is said so, not checked as root
    let out = t
        .run(&[
            "doctor",
            "--user",
            "no-such-user-here",
            "--now",
            "2026-11-22T10:00:00Z",
        ])
        .stdout;
    assert!(
        out.contains("service user `no-such-user-here` does not exist here"),
        "{out}"
    );
}

#[test]
fn a_run_that_fails_outright_is_a_rate_limited_watcher_problem() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write("app.log", "");
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    // the incidents folder can no longer be made: every run fails (exit 2)
    t.write("blocker", "a file, not a folder");
    let cfg = t.read("logwarden.toml").replace(
        "incidents_dir = \"incidents\"\n",
        "incidents_dir = \"blocker/incidents\"\n",
    );
    t.write("logwarden.toml", &cfg);
    for (now, sent) in [
        ("2026-11-22T10:05:00Z", 1),
        ("2026-11-22T10:10:00Z", 1),
        ("2026-11-22T10:15:00Z", 1),
        ("2026-11-23T10:06:00Z", 2),
    ] {
        let r = t.run(&["run", "--now", now]);
        assert_eq!(r.code, Some(2), "{}", r.all());
        let m = ntfy.messages_to("ops");
        assert_eq!(m.len(), sent, "at {now}: {:?}", titles(&ntfy));
        assert_eq!(
            m[0].header("Title"),
            Some("[test-host] logwarden watcher problem")
        );
        assert!(m[0].body.contains("the run failed"), "{}", m[0].body);
        assert!(m[0].body.contains("blocker"), "{}", m[0].body);
    }
}
