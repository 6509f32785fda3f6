//! The ignore rules file: read (near-valid TOML with good and bad rules), and written
//! by `ignore add` then read back.

use chrono::{DateTime, TimeZone, Utc};
use logwarden::ignore::{add_rule_to_text, parse_expiry, IgnoreRules, NewRule};
use logwarden::signature::Signature;
use logwarden::source::{Event, Level};
use proptest::prelude::*;

use crate::{config, lossy, mutated, soup, text, CASES};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

const REGEX_PIECES: &[&str] = &[
    "a",
    "reset by peer",
    "\\d+",
    "\\w",
    "(",
    ")",
    "[",
    "]",
    "[a-z]",
    "*",
    "+",
    "?",
    "{2}",
    "{2,}",
    "{99999}",
    ".",
    "\\",
    "|",
    "^",
    "$",
    "(?i)",
    "(?P<n>",
    "\\b",
    "é",
    "\\p{L}",
    "\\u{1F600}",
];

const EXPIRIES: &[&str] = &[
    "7d",
    "12h",
    "1h30m",
    "2026-12-01",
    "2026-02-30",
    "2000-01-01",
    "2026-11-22T10:00:00Z",
    "99999999999999999999999999999999999999d",
    "100000000w",
    "0s",
    "d",
    "",
    "7",
    "+262143-12-31",
];

const LEVELS: &[&str] = &["WARNING", "error", "35", "NOTICE", "nope", "", "4294967296"];

/// A TOML string with the value escaped.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One `[[rule]]` table, every key near its valid shape or wrong.
fn rule() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        text(4).prop_map(|s| quoted(&s)),
        prop::sample::select(&["1.5", "true", "[1]", "{a = 1}", "9223372036854775807"][..])
            .prop_map(str::to_string),
    ];
    let opt = |s: BoxedStrategy<String>| prop_oneof![Just(None), s.prop_map(Some)];
    (
        id,
        prop_oneof![4 => soup(REGEX_PIECES, 6), 1 => text(8)],
        opt(text(20).boxed()),
        opt(prop::sample::select(&["app", "worker", ""][..])
            .prop_map(str::to_string)
            .boxed()),
        opt(prop::sample::select(LEVELS)
            .prop_map(str::to_string)
            .boxed()),
        opt(prop_oneof![
            any::<u64>().prop_map(|s| Signature(s).to_string()),
            text(16),
        ]
        .boxed()),
        opt(prop::sample::select(EXPIRIES)
            .prop_map(str::to_string)
            .boxed()),
        opt(text(6).boxed()),
    )
        .prop_map(
            |(id, pattern, comment, source, level, signature, expires, unknown)| {
                let mut t = format!("[[rule]]\nid = {id}\npattern = {}\n", quoted(&pattern));
                for (k, v) in [
                    ("comment", comment),
                    ("source", source),
                    ("level", level),
                    ("signature", signature),
                    ("expires", expires),
                    ("created", Some("2026-11-01T00:00:00Z".into())),
                ] {
                    if let Some(v) = v {
                        t.push_str(&format!("{k} = {}\n", quoted(&v)));
                    }
                }
                if let Some(u) = unknown {
                    t.push_str(&format!("colour = {}\n", quoted(&u)));
                }
                t
            },
        )
}

/// A rule `ignore add` would accept the file with.
fn valid_rule() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            (-5i64..1000).prop_map(|i| i.to_string()),
            "[a-z0-9]{1,6}".prop_map(|s| quoted(&s)),
        ],
        // Never empty: a pattern found in every message needs a level cap or a signature.
        text(12).prop_map(|t| format!("x{}", regex::escape(&t))),
        text(20),
        prop::option::of(prop::sample::select(&["WARNING", "error", "35"][..])),
        // Absolute: a duration in the file would move with every load.
        prop::option::of(prop::sample::select(
            &["2020-01-01", "2026-12-01", "2026-11-22T10:00:00+01:00"][..],
        )),
    )
        .prop_map(|(id, pattern, comment, level, expires)| {
            let mut t = format!(
                "[[rule]]\nid = {id}\npattern = {}\ncomment = {}\n",
                quoted(&pattern),
                quoted(&comment)
            );
            if let Some(l) = level {
                t.push_str(&format!("level = {}\n", quoted(l)));
            }
            if let Some(e) = expires {
                t.push_str(&format!("expires = {}\n", quoted(e)));
            }
            t
        })
}

fn file() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(prop_oneof![8 => rule(), 1 => text(20).prop_map(|c| format!("# {c}\n"))], 0..5)
            .prop_map(|v| v.join("\n")),
        1 => lossy(80),
    ]
}

fn event(message: String) -> Event {
    Event::new(
        "app",
        "app.log:1".into(),
        Level {
            name: "ERROR".into(),
            no: 40,
        },
        message,
    )
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn rules_files(text in mutated(file()), message in text(20)) {
        match IgnoreRules::parse(&text, now()) {
            Ok(rules) => {
                prop_assert!(rules.rules.len() <= text.matches("[[rule]]").count());
                for r in &rules.rules {
                    prop_assert!(regex_syntax::Parser::new().parse(&r.pattern).is_ok());
                }
                let _ = rules.matching(&event(message), Signature(1));
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                let size: usize = problems.iter().map(String::len).sum();
                prop_assert!(size <= 2 * text.len() + 300 * problems.len(), "{problems:?}");
                for p in &problems {
                    prop_assert!(p.starts_with("line "), "{p}");
                }
            }
        }
    }

    #[test]
    fn expiries(t in mutated(soup(EXPIRIES, 3))) {
        if let Ok(when) = parse_expiry(&t, now()) {
            // a duration, a date or a time: always somewhere on the calendar
            prop_assert!(when.timestamp() > i64::MIN);
        }
    }

    /// A rule added by `ignore add` (or a mute from the phone) reads back as given, and
    /// the rules already in the file are untouched.
    #[test]
    fn added_rules_read_back(
        existing in prop::collection::vec(prop_oneof![4 => valid_rule(), 1 => rule()], 0..3),
        pattern in prop_oneof![soup(REGEX_PIECES, 5), text(12).prop_map(|t| regex::escape(&t))],
        comment in text(40),
        author in text(12),
        source in prop::option::of(text(8)),
        level in prop::option::of(prop::sample::select(&["warning", "ERROR", "35", "notice"][..])),
        signature in prop::option::of(any::<u64>().prop_map(Signature)),
        expires in prop::option::of(0i64..253_402_300_799),
    ) {
        let existing = existing.join("\n");
        let Ok(before) = IgnoreRules::parse(&existing, now()) else {
            return Ok(()); // not a file `add` accepts
        };
        let rule = NewRule {
            pattern,
            source,
            level: level.map(str::to_string),
            signature: signature.map(|s| s.to_string()),
            expires: expires.map(|t| Utc.timestamp_opt(t, 0).unwrap()),
            comment,
            author,
            incident: None,
            force: false,
        };
        let (text, id) = match add_rule_to_text(&existing, "ignore.toml", &rule, now()) {
            Ok(x) => x,
            Err(e) => {
                // only a pattern the regex engine refuses or one found in every message
                // (with no signature to scope it), or ids that ran out
                prop_assert!(
                    e.contains("not a valid regex")
                        || e.contains("no rule id")
                        || (e.contains("CRITICAL") && rule.signature.is_none()),
                    "{e}"
                );
                return Ok(());
            }
        };
        let after = IgnoreRules::parse(&text, now())
            .map_err(|p| TestCaseError::fail(format!("{p:?} in\n{text}")))?;
        prop_assert_eq!(after.rules.len(), before.rules.len() + 1);
        for (a, b) in before.rules.iter().zip(&after.rules) {
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        let r = after.rules.last().unwrap();
        prop_assert_eq!(&r.id, &id);
        prop_assert_eq!(&r.pattern, &rule.pattern);
        // A comment is written as one visible line (it may quote log text).
        prop_assert_eq!(&r.comment, &logwarden::sanitize::line(&rule.comment));
        prop_assert_eq!(r.author.as_ref(), Some(&rule.author));
        prop_assert_eq!(&r.source, &rule.source);
        prop_assert_eq!(r.level.as_ref().map(|l| l.no), rule.level.as_ref().map(|l| {
            Level::parse_config(l, &Default::default()).unwrap().no
        }));
        prop_assert_eq!(r.signature, signature);
        prop_assert_eq!(r.expires, rule.expires);
    }
}
