//! Property and fuzz tests of every parser that reads text from outside: log lines
//! (loguru text, custom formats and regexes, loguru JSON), the line reader, script
//! output (Prometheus exposition), the ignore file, control-topic messages, the
//! Claude CLI's output and verdict, and the signature masker and miner, plus redaction.
//!
//! Each property runs at least 10^5 cases through the library's own parsers (no
//! binary is spawned), with cheap generators: arbitrary bytes and characters, and
//! near-valid input (well-formed records with some characters replaced, inserted or
//! cut) so that the interesting code is reached. The properties: no panic, output no
//! larger than a small multiple of the input, and round trips where they exist.
//!
//! `PROPTEST_CASES=N cargo test --test fuzz` runs N cases per property instead (raise
//! it for a longer hunt); the cases are the same on every run unless `PROPTEST_RNG_SEED=N`
//! picks other ones. Failures are saved beside the property's file as
//! `<file>.proptest-regressions` (ignored by git: a failure found becomes a named
//! regression test at the bottom of the source file it is about).

mod control;
mod exposition;
mod ignore;
mod investigate;
mod json;
mod linereader;
mod loguru;
mod redact;
mod signature;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// The cases each property runs by default.
pub const CASES: u32 = 100_000;

/// The proptest config of a property: `cases` unless `PROPTEST_CASES` says otherwise.
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let default = Config::default();
    // CI runs the same cases every time (a failure is reproducible, never flaky);
    // `PROPTEST_RNG_SEED=N` draws others.
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED") {
        Ok(_) => default.rng_seed,
        Err(_) => RngSeed::Fixed(0x6c77_6675_7a7a),
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..default
    }
}

/// Characters that parsers treat specially, or that trip byte/char confusions:
/// separators, quotes, escapes, line ends, and digits and spaces outside ASCII
/// (Devanagari digits are three bytes, a mathematical digit four).
const SPICY: &[char] = &[
    ' ',
    ' ',
    '\t',
    '\n',
    '\r',
    '|',
    ':',
    '-',
    '.',
    ',',
    '+',
    '=',
    '{',
    '}',
    '[',
    ']',
    '(',
    ')',
    '"',
    '\'',
    '\\',
    '#',
    '<',
    '>',
    '*',
    '%',
    '/',
    '@',
    '_',
    '0',
    '1',
    '9',
    'T',
    'Z',
    'e',
    'x',
    '\u{0}',
    '\u{7f}',
    '\u{a0}',
    '\u{3000}',
    '\u{feff}',
    '\u{fffd}',
    'é',
    'ß',
    '\u{966}',
    '\u{969}',
    '\u{663}',
    '\u{1d7d9}',
    '\u{ff11}',
    '😀',
];

/// One character: mostly special ones, sometimes anything.
pub fn spicy_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(SPICY),
        2 => proptest::char::range('a', 'z'),
        1 => any::<char>(),
    ]
}

/// Text of up to `max` characters.
pub fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(spicy_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// Up to `max` arbitrary bytes, decoded lossily (what a reader gives a parser).
pub fn lossy(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..max)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Concatenations of pieces: near-valid input for grammars made of tokens.
pub fn soup(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(pieces).prop_map(str::to_string),
            1 => text(4),
        ],
        0..max,
    )
    .prop_map(|v| v.concat())
}

/// One edit of a text: (kind, where, a character).
type Edit = (u8, usize, char);

fn apply(s: String, edits: Vec<Edit>) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for (kind, at, c) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at % (chars.len() + 1)
        };
        match kind % 5 {
            0 | 1 if at < chars.len() => chars[at] = c,
            2 => chars.insert(at, c),
            3 if at < chars.len() => {
                chars.remove(at);
            }
            4 => chars.truncate(at),
            _ => chars.insert(at, c),
        }
    }
    chars.into_iter().collect()
}

/// `base`, or `base` with up to three characters replaced, inserted, removed, or the
/// text cut: input that is almost valid.
pub fn mutated<S: Strategy<Value = String>>(base: S) -> impl Strategy<Value = String> {
    (
        base,
        prop_oneof![
            1 => Just(Vec::new()),
            2 => prop::collection::vec((any::<u8>(), any::<usize>(), spicy_char()), 1..4),
        ],
    )
        .prop_map(|(s, e)| apply(s, e))
}

/// The bytes an event holds, for bounds on what a parser makes of its input.
pub fn event_size(e: &logwarden::source::Event) -> usize {
    let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    e.message.len()
        + e.raw.len()
        + opt(&e.traceback)
        + opt(&e.exception_type)
        + opt(&e.exception_line)
        + opt(&e.logger)
        + opt(&e.location)
        + e.level.name.len()
        + e.fields
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

#[test]
fn edits_replace_insert_remove_and_cut() {
    assert_eq!(apply("abc".into(), vec![(0, 1, 'x')]), "axc");
    assert_eq!(apply("abc".into(), vec![(2, 3, 'x')]), "abcx");
    assert_eq!(apply("abc".into(), vec![(3, 0, 'x')]), "bc");
    assert_eq!(apply("abc".into(), vec![(4, 1, 'x')]), "a");
    assert_eq!(apply(String::new(), vec![(0, 7, 'x')]), "x");
}
