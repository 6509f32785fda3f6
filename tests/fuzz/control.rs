//! Control-topic messages: anyone can post to the topic, so any text must be refused
//! cleanly, and only what logwarden signed verifies.

use logwarden::notify::control::{sign, verify};
use proptest::prelude::*;

use crate::{config, lossy, mutated, soup, CASES};

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 16..48)
}

fn action() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["ack", "mute"][..])
}

proptest! {
    #![proptest_config(config(CASES))]

    /// What `sign` writes verifies under the same key, as itself; changed in any way
    /// (beyond surrounding blanks) or under another key, it is refused.
    #[test]
    fn signed_messages_verify_and_nothing_else_does(
        key in key(),
        other in key(),
        action in action(),
        id in any::<i64>(),
        expires in any::<i64>(),
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), crate::spicy_char()), 1..3),
    ) {
        let m = sign(&key, action, id, expires).map_err(TestCaseError::fail)?;
        let v = verify(&key, &m).map_err(TestCaseError::fail)?;
        prop_assert_eq!((v.action.as_str(), v.incident, v.expires), (action, id, expires));
        if other != key {
            prop_assert!(verify(&other, &m).is_err());
        }
        let changed = mutated_with(&m, edits);
        // The MAC is compared as bytes, so its hex digits may be in either case.
        let same = |a: &str, b: &str| match (a.rsplit_once('.'), b.rsplit_once('.')) {
            (Some((a, at)), Some((b, bt))) => a == b && at.eq_ignore_ascii_case(bt),
            _ => a == b,
        };
        if !same(changed.trim(), &m) {
            prop_assert!(verify(&key, &changed).is_err(), "{} accepted for {}", changed, m);
        }
    }

    #[test]
    fn strangers_text_is_refused_with_a_short_reason(
        key in key(),
        text in prop_oneof![
            4 => mutated(soup(&["lw1", ".", "ack", "mute", "12", "-1", "+", "0", "deadbeef", "00", "g", " "], 12)),
            1 => lossy(120),
        ],
    ) {
        match verify(&key, &text) {
            Ok(v) => prop_assert!(false, "{text:?} verified as {v:?}"),
            Err(why) => prop_assert!(why.len() <= 400, "{why}"),
        }
    }
}

fn mutated_with(s: &str, edits: Vec<(u8, usize, char)>) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for (kind, at, c) in edits {
        let at = at % (chars.len() + 1);
        match kind % 3 {
            0 if at < chars.len() => chars[at] = c,
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.insert(at, c),
        }
    }
    chars.into_iter().collect()
}
