//! Signatures that generalise: a value that spans several words (a quoted name, a
//! duration) is one value, so each new value does not open a new incident; and groups
//! stored by the previous masking keep their messages after an upgrade.

use crate::util::*;

fn rec(time: &str, msg: &str) -> String {
    format!("2026-11-22 {time}.000 | ERROR    | app.payouts:run:42 - {msg}\n")
}

#[test]
fn quoted_names_and_timedeltas_of_any_shape_open_one_incident() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("");
    // Real loguru, real `{name!r}` and `str(timedelta)`, records stamped at a fixed time.
    t.loguru(
        r#"
from datetime import datetime, timedelta, timezone
logger.add("app.log")
base = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
# loguru formats its own datetime subclass: shift it rather than replace it
log = logger.patch(lambda r: r.update(time=r["time"] + (base - r["time"])))
names = ["Ada Lovelace", "Grace Brewster Murray Hopper", "Ken", "Miles O'Brien",
         "Edsger W. Dijkstra", "John von Neumann", "Frances E. Allen", "Barbara Liskov",
         "Dennis MacAlistair Ritchie", "Tony Hoare", "Alan Turing", "Radia Perlman"]
waits = [timedelta(minutes=47, seconds=12), timedelta(days=1, hours=3, minutes=2, seconds=11),
         timedelta(days=2, seconds=3), timedelta(seconds=0.5), timedelta(days=30, hours=23)]
for i, name in enumerate(names):
    log.error(f"Payout to {name!r} stuck for {waits[i % len(waits)]} in queue")
"#,
    );
    let raw = t.read("app.log");
    for shape in [
        "'Grace Brewster Murray Hopper'",
        "\"Miles O'Brien\"",
        "0:47:12",
        "1 day, 3:02:11",
        "2 days, 0:00:03",
        "0:00:00.500000",
    ] {
        assert!(raw.contains(shape), "{shape} not in {raw}");
    }
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0]["occurrences"].as_u64(), Some(12), "{inc:#?}");
}

#[test]
fn a_routine_value_does_not_let_another_error_join_an_acknowledged_group() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        &(rec(
            "10:00:00",
            "Payment provider error for order 55: code=card_declined",
        ) + &rec(
            "10:00:01",
            "Payment provider error for order 56: code=expired_card",
        )),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(t.incidents().len(), 1);
    t.ok(&["incidents", "ack", "1", "--now", "2026-11-22T10:02:00Z"]);
    // The provider's own failure is another error, not one more declined card.
    t.append(
        "app.log",
        rec(
            "10:05:00",
            "Payment provider error for order 57: AuthenticationFailed",
        )
        .as_bytes(),
    );
    t.append(
        "app.log",
        rec(
            "10:05:01",
            "Payment provider error for order 58: code=do_not_honor",
        )
        .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}\n{inc:#?}", r.all());
    assert!(
        r.stdout.contains("new incident #2") && r.stdout.contains("AuthenticationFailed"),
        "{}",
        r.stdout
    );
    let first = inc.iter().find(|i| i["id"].as_i64() == Some(1)).unwrap();
    assert_eq!(first["occurrences"].as_u64(), Some(3), "{inc:#?}");
}

/// A key (`code=`, JSON's `"code":`) stays in the template whatever shape its values take:
/// a value of two quoted strings, of URLs, or the same pairs as JSON, never widen the group
/// so far that another error in that place joins its acknowledged incident.
#[test]
fn values_of_any_shape_after_a_key_do_not_let_another_error_join_an_acknowledged_group() {
    for (first, widen) in [
        (
            ["code=card_declined", "code=expired_card"],
            vec![
                "code='card declined' 'call issuer'",
                "code=https://pay.example.com/e/1 https://pay.example.com/e/2",
                r#"{"code":"x"}"#,
            ],
        ),
        (
            [r#"{"code":"card_declined"}"#, r#"{"code":"expired_card"}"#],
            vec![
                r#"{"code":"card declined", "detail":"call the issuer"}"#,
                r#"{"code": "processing_error"}"#,
                r#"{"code": 42}"#,
            ],
        ),
    ] {
        let t = Test::new();
        t.with_app_source("");
        let mut log = String::new();
        for (i, v) in first.iter().enumerate() {
            log += &rec(
                &format!("10:00:0{i}"),
                &format!("Payment provider error for order 5{i}: {v}"),
            );
        }
        t.write("app.log", &log);
        t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
        assert_eq!(t.incidents().len(), 1);
        t.ok(&["incidents", "ack", "1", "--now", "2026-11-22T10:02:00Z"]);
        let mut more = String::new();
        for (i, v) in widen.iter().enumerate() {
            more += &rec(
                &format!("10:03:0{i}"),
                &format!("Payment provider error for order 6{i}: {v}"),
            );
        }
        more += &rec(
            "10:05:00",
            "Payment provider error for order 70: AuthenticationFailed",
        );
        t.append("app.log", more.as_bytes());
        let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
        let inc = t.incidents();
        let auth: Vec<_> = inc
            .iter()
            .filter(|i| i.to_string().contains("AuthenticationFailed"))
            .collect();
        assert!(
            !auth.is_empty() && auth.iter().all(|i| i["id"].as_i64() != Some(1)),
            "{first:?}: {}\n{inc:#?}",
            r.all()
        );
        assert!(r.stdout.contains("AuthenticationFailed"), "{}", r.stdout);
    }
}

/// Values that the masking once left as words each opened an incident: padded base64
/// (`sid=YWJjZA==`), a `key: value` pair with a space, a stranger's name without quotes.
#[test]
fn one_kind_of_error_with_values_of_many_shapes_opens_one_incident() {
    let names = [
        "Ada Lovelace",
        "Grace Brewster Murray Hopper",
        "Ken",
        "Edsger Dijkstra",
        "John von Neumann",
        "Frances Allen",
        "Barbara Liskov",
        "Dennis MacAlistair Ritchie",
        "Tony Hoare",
        "Alan Turing",
        "Radia Perlman",
        "Leslie Lamport",
    ];
    let sids = [
        "YWJjZA==",
        "dGVzdA=",
        "Zm9vYmFy",
        "c2Vzc2lvbi1rZXk=",
        "QQ==",
    ];
    let t = Test::new();
    t.with_app_source("");
    let mut log = String::new();
    for (i, s) in sids.iter().enumerate() {
        log += &rec(
            &format!("10:00:0{i}"),
            &format!("Session rejected sid={s} for tenant"),
        );
    }
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0]["occurrences"].as_u64(), Some(5), "{inc:#?}");
    // `key: value` pairs whose values are words
    let mut log = String::new();
    for (i, (c, o)) in [
        ("alice", "abcdef"),
        ("bob", "ghijkl"),
        ("1234", "ab12cd"),
        ("carol", "mnopqr"),
    ]
    .iter()
    .enumerate()
    {
        log += &rec(
            &format!("10:01:0{i}"),
            &format!("Refund refused for customer: {c}, order: {o}"),
        );
    }
    t.append("app.log", log.as_bytes());
    t.ok(&["run", "--now", "2026-11-22T10:01:30Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{inc:#?}");
    assert!(
        inc.iter().any(|i| i["occurrences"].as_u64() == Some(4)),
        "{inc:#?}"
    );
    // A stranger's name without quotes: once the position has shown it takes anything,
    // each new name joins (the first few, which could be wording, are their own).
    let mut log = String::new();
    for (i, n) in names.iter().enumerate() {
        log += &rec(
            &format!("10:02:{i:02}"),
            &format!("Payout to {n} stuck in queue"),
        );
    }
    t.append("app.log", log.as_bytes());
    t.ok(&["run", "--now", "2026-11-22T10:03:00Z"]);
    let more = t.incidents().len() - 2;
    let mut log = String::new();
    for (i, n) in ["Margaret Hamilton", "Donald Ervin Knuth", "Ivan Sutherland"]
        .iter()
        .enumerate()
    {
        log += &rec(
            &format!("10:04:0{i}"),
            &format!("Payout to {n} stuck in queue"),
        );
    }
    t.append("app.log", log.as_bytes());
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let inc = t.incidents();
    assert!(more <= 8, "{inc:#?}");
    assert_eq!(
        inc.len(),
        2 + more,
        "no new incident for new names: {inc:#?}"
    );
}

#[test]
fn a_group_stored_by_the_previous_masking_keeps_its_messages_after_an_upgrade() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        &rec(
            "10:00:00",
            "Payout to 'Ada Lovelace' stuck for 1 day, 3:02:11 in queue",
        ),
    );
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let before = t.incidents();
    assert_eq!(before.len(), 1);
    // The store as the previous release left it: the template as its masking made it
    // (the name and the days were words), the leaf of its tree, the schema before.
    let db = t.path("state/logwarden.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let n = c
            .execute(
                "UPDATE templates SET template = ?1, leaf = 4242",
                ["Payout to 'Ada Lovelace' stuck for <*> day, <*> in queue"],
            )
            .unwrap();
        assert_eq!(n, 1);
        // The schema just before migration 16, which masks stored templates again
        // (without what the migrations after it add).
        c.execute_batch(
            "DROP TABLE metric_detector_pages; DROP INDEX runs_by_started_at;
             ALTER TABLE runs DROP COLUMN boot_id; ALTER TABLE runs DROP COLUMN since_boot;
             ALTER TABLE runs DROP COLUMN run_clock; ALTER TABLE runs DROP COLUMN expiry_floor;
             DROP INDEX incidents_by_page_name; ALTER TABLE incidents DROP COLUMN page_name;
             ALTER TABLE incidents DROP COLUMN level_no; DROP TABLE incident_levels;
             DROP TABLE source_identities;",
        )
        .unwrap();
        c.pragma_update(None, "user_version", 15).unwrap();
    }
    t.append(
        "app.log",
        (rec(
            "10:05:00",
            "Payout to 'Ada Lovelace' stuck for 2 days, 0:00:03 in queue",
        ) + &rec(
            "10:05:01",
            "Payout to 'Alan Turing' stuck for 0:47:12 in queue",
        ))
            .as_bytes(),
    );
    t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    let after = t.incidents();
    assert_eq!(after.len(), 1, "no new incident: {after:#?}");
    assert_eq!(after[0]["signature"], before[0]["signature"]);
    assert_eq!(after[0]["occurrences"].as_u64(), Some(3), "{after:#?}");
    let c = rusqlite::Connection::open(&db).unwrap();
    let template: String = c
        .query_row("SELECT template FROM templates", [], |r| r.get(0))
        .unwrap();
    assert_eq!(template, "Payout to '<*>' stuck for <*> in queue");
}

/// Compact JSON keeps all its keys, whatever its strings hold (spaces, escaped quotes,
/// commas and colons): a message whose JSON has another key is another error, not one
/// more of an acknowledged group, while the same keys with other values, spaces and all,
/// are the same error.
#[test]
fn compact_json_with_other_keys_does_not_join_an_acknowledged_group() {
    let t = Test::new();
    t.with_app_source("");
    let mut log = String::new();
    for (i, v) in [
        r#"{"user":"Ada Lovelace","action":"refund","code":"E42"}"#,
        r#"{"user":"Grace Hopper","action":"refund, then retry","code":"E43"}"#,
    ]
    .iter()
    .enumerate()
    {
        log += &rec(
            &format!("10:00:0{i}"),
            &format!("Payment failed for order 5{i}: {v}"),
        );
    }
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{inc:#?}");
    t.ok(&["incidents", "ack", "1", "--now", "2026-11-22T10:02:00Z"]);
    let mut more = String::new();
    for (i, v) in [
        r#"{"user":"Alan Turing","login":"denied","code":"E44"}"#,
        r#"{"user":"Edsger W. Dijkstra","action":"say \"void\": now","code":"E 45"}"#,
    ]
    .iter()
    .enumerate()
    {
        more += &rec(
            &format!("10:05:0{i}"),
            &format!("Payment failed for order 6{i}: {v}"),
        );
    }
    t.append("app.log", more.as_bytes());
    let r = t.ok(&["run", "--now", "2026-11-22T10:06:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{}\n{inc:#?}", r.all());
    let login: Vec<_> = inc
        .iter()
        .filter(|i| i.to_string().contains("login"))
        .collect();
    assert!(
        login.len() == 1 && login[0]["id"].as_i64() == Some(2),
        "{}\n{inc:#?}",
        r.all()
    );
    assert!(r.stdout.contains("new incident #2"), "{}", r.stdout);
    let first = inc.iter().find(|i| i["id"].as_i64() == Some(1)).unwrap();
    assert_eq!(first["occurrences"].as_u64(), Some(3), "{inc:#?}");
}
