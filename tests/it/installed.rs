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
        ("UTC", "2026-11-22T10:00:00Z"),
    ] {
        let t = Test::new().env("TZ", tz);
        t.with_app_source("");
        t.write("app.log", BOOM);
        t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
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
    t.write("berlin.log", "2026-07-01 10:00:00.000 | ERROR    | a:f:1 - summer in Berlin\n");
    t.write("utc.log", "2026-11-22 10:00:00.000 | ERROR    | b:f:1 - written in UTC\n");
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
    t.write("error.log", "2026/11/22 11:00:00 [error] upstream timed out\n");
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
fn auto_resolve_counts_from_the_local_time_read_as_utc() {
    // In Tokyo the error happened at 01:00Z; with resolve_after = 24h it resolves at
    // 01:00Z the next day, not at 10:00Z (as it would if the time were taken as UTC).
    let t = Test::new().env("TZ", "Asia/Tokyo");
    t.with_app_source("[incidents]\nresolve_after = \"24h\"\n");
    t.write("app.log", BOOM);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    t.ok(&["run", "--now", "2026-11-23T02:00:00Z"]);
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
