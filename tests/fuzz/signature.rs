//! The signature masker and template miner on arbitrary messages.

use logwarden::signature::{mask_tokens, print_signatures, Miner, WILDCARD};
use proptest::prelude::*;

use crate::{config, lossy, mutated, soup, CASES};

const WORDS: &[&str] = &[
    "user",
    "bob",
    "failed",
    "to",
    "connect",
    "db",
    "timeout",
    "after",
    " ",
    " ",
    " ",
    "1532",
    "ms",
    "id=42",
    "(id=7),",
    "10.0.0.1:5432",
    "/var/lib/x",
    "0x7f3a",
    "2026-11-22",
    "12:00:01,123",
    "KB",
    "Tue",
    "PDT",
    "<*>",
    "'quoted",
    "value'",
    "\"a b\"",
    "key:value",
    "a,b,3",
    "eth0",
    "Foo_2x::bar",
    "run(Thread.java:748)",
    "blk_-42",
    "550e8400-e29b-41d4-a716-446655440000",
    "https://x.example.com/a?b=1",
    "a@b.io",
    "true",
    "null",
    "\u{3000}",
    "\t",
    "\u{a0}",
    "+1",
];

fn message() -> impl Strategy<Value = String> {
    prop_oneof![6 => mutated(soup(WORDS, 12)), 1 => lossy(40)]
}

/// Whether masked words fit a template: a constant matches itself; a token with
/// wildcards matches one word or more (groups merge across token counts, a variable span
/// becoming one `<*>`) whose text, words joined by a space, it matches with each wildcard
/// standing for any text. So a key's wildcard (`code=<*>`, `{"code":<*>`) takes any value
/// of that key, and a wildcard with the punctuation its values shared (`<*>,`) takes
/// values with that punctuation.
fn fits(template: &[&str], words: &[&str]) -> bool {
    match template.split_first() {
        None => words.is_empty(),
        Some((&t, rest)) if t.contains(WILDCARD) => {
            (1..=words.len()).any(|n| glob(t, &words[..n].join(" ")) && fits(rest, &words[n..]))
        }
        Some((&t, rest)) => words.first() == Some(&t) && fits(rest, &words[1..]),
    }
}

/// Does `text` match `pattern`, each `<*>` in it standing for any text?
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split(WILDCARD).collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn masking(m in message()) {
        let tokens = mask_tokens(&m);
        prop_assert!(tokens.len() <= m.split_whitespace().count());
        let size: usize = tokens.iter().map(|t| t.len() + 1).sum();
        prop_assert!(size <= 3 * m.len() + 4, "{size} from {}", m.len());
        for t in &tokens {
            prop_assert!(!t.is_empty());
            prop_assert!(!t.chars().any(char::is_whitespace), "{t:?}");
        }
    }

    /// Each message fits the template of the group it joined; a message seen again
    /// joins the same group; and a miner rebuilt from its export mines on exactly as
    /// the original does.
    #[test]
    fn mining(
        first in prop::collection::vec(message(), 0..6),
        then in prop::collection::vec(message(), 0..6),
    ) {
        let mut miner = Miner::new();
        for m in &first {
            let got = miner.add(m);
            let masked = mask_tokens(m);
            let template: Vec<&str> = got.template.split(' ').filter(|t| !t.is_empty()).collect();
            let masked: Vec<&str> = masked.iter().map(|w| w.as_ref()).collect();
            prop_assert!(fits(&template, &masked), "{:?} for {:?}", got.template, m);
            prop_assert_eq!(miner.add(m).group, got.group);
        }
        let mut copy = Miner::import(miner.export());
        prop_assert_eq!(copy.len(), miner.len());
        for m in &then {
            prop_assert_eq!(copy.add(m), miner.add(m), "{:?}", m);
        }
    }

    #[test]
    fn signatures_command(input in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        print_signatures(&input[..], &mut out, Miner::new(), &Default::default()).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines = input.split(|b| *b == b'\n').count() - usize::from(input.last() == Some(&b'\n') || input.is_empty());
        prop_assert_eq!(out.lines().count(), lines);
        for l in out.lines() {
            prop_assert!(l.len() >= 17 && l.as_bytes()[16] == b'\t', "{l:?}");
        }
    }
}
