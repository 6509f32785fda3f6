//! Loguru's text format, default and custom (`format = …`), and the text source's
//! regexes: records assembled from near-valid lines, tracebacks and junk.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use logwarden::source::format::{parse_time_text, LineFormat};
use logwarden::source::loguru::{
    header_level, parse_header, parse_time, HeaderParser, RecordAssembler, MAX_RAW,
};
use logwarden::source::zone::Zone;
use logwarden::source::{Event, RecordParser};
use proptest::prelude::*;

use crate::{config, event_size, lossy, mutated, soup, spicy_char, text, CASES};

const LEVELS: &[&str] = &[
    "TRACE",
    "DEBUG",
    "INFO",
    "SUCCESS",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "NOTICE",
    "warn",
    "35",
    "",
    " ",
    "\t",
    "\u{a0}",
    "VERYLONGLEVELNAME",
];

/// A default-format first line, each field drawn near its valid shape.
fn header() -> impl Strategy<Value = String> {
    let digits = |n: usize| {
        prop_oneof![
            4 => prop::collection::vec(proptest::char::range('0', '9'), n),
            1 => prop::collection::vec(prop_oneof![proptest::char::range('0', '9'), spicy_char()], n),
        ]
        .prop_map(|v| v.into_iter().collect::<String>())
    };
    let date = (
        digits(4),
        digits(2),
        digits(2),
        prop::sample::select(&[' ', 'T'][..]),
    )
        .prop_map(|(y, m, d, sep)| format!("{y}-{m}-{d}{sep}"));
    let time = (
        digits(2),
        digits(2),
        digits(2),
        prop::sample::select(&["", ".", ","][..]),
        0usize..12,
    )
        .prop_flat_map(move |(h, m, s, dot, n)| (Just(format!("{h}:{m}:{s}{dot}")), digits(n)))
        .prop_map(|(t, frac)| format!("{t}{frac}"));
    let offset = prop_oneof![
        Just(String::new()),
        Just("Z".to_string()),
        (
            prop::sample::select(&["+", "-"][..]),
            digits(2),
            prop::sample::select(&[":", ""][..]),
            digits(2)
        )
            .prop_map(|(s, h, c, m)| format!("{s}{h}{c}{m}")),
        soup(&["+", "-", ":", "1", "99"], 6),
    ];
    let level = prop_oneof![
        prop::sample::select(LEVELS).prop_map(str::to_string),
        text(10)
    ];
    let location = (text(12), text(8), prop_oneof![3 => digits(3), 1 => text(3)])
        .prop_map(|(name, func, line)| format!("{name}:{func}:{line}"));
    (date, time, offset, level, 0usize..10, location, text(40)).prop_map(
        |(date, time, off, level, pad, loc, msg)| {
            format!(
                "{date}{time}{off} | {level}{} | {loc} - {msg}",
                " ".repeat(pad)
            )
        },
    )
}

const TRACEBACK: &[&str] = &[
    "Traceback (most recent call last):",
    "Exception Group Traceback (most recent call last):",
    "  | Exception Group Traceback (most recent call last):",
    "  File \"/srv/app/db.py\", line 17, in query",
    "> File \"/srv/app/db.py\", line 19, in <module>",
    "    raise ValueError(\"bad\") from e",
    "          └ KeyError('k')",
    "ValueError: bad value",
    "KeyError: 'k'",
    "app.errors.Custom",
    "psycopg.OperationalError:",
    "The above exception was the direct cause of the following exception:",
    "",
];

/// One physical line of a log: a header, a traceback line, or anything.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => mutated(header()),
        4 => prop::sample::select(TRACEBACK).prop_map(str::to_string),
        2 => text(30),
        1 => lossy(30),
    ]
}

fn assemble(lines: &[String], min_level: u32, as_bytes: bool) -> Vec<Event> {
    let mut levels = BTreeMap::new();
    levels.insert("NOTICE".to_string(), 35);
    let mut a = RecordAssembler::new("app", "app.log", &levels, min_level);
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let got = if as_bytes {
            RecordParser::push_bytes(&mut a, i as u64 + 1, l.as_bytes())
        } else {
            RecordParser::push(&mut a, i as u64 + 1, l)
        };
        out.extend(got);
    }
    out.extend(RecordParser::finish(&mut a));
    out
}

/// What every record assembler must give: no more records than lines, `raw` capped,
/// and nothing larger than a small multiple of what was read.
fn check_bounds(lines: &[String], events: &[Event]) -> Result<(), TestCaseError> {
    let input: usize = lines.iter().map(|l| l.len() + 1).sum();
    prop_assert!(events.len() <= lines.len());
    for e in events {
        prop_assert!(e.raw.len() <= MAX_RAW + 64, "raw of {} bytes", e.raw.len());
        prop_assert!(e.message.len() <= input);
        // (A record whose level is not known carries a note of fixed size: in its
        // evidence and as a field.)
        let note = e
            .fields
            .get("logwarden_note")
            .map_or(0, |n| 2 * n.len() + 64);
        prop_assert!(
            event_size(e) <= 4 * input + 64 + note,
            "{} from {input}",
            event_size(e)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(CASES))]

    /// The fast header check on bytes (used to skip records below `min_level` without
    /// decoding them) and the parser agree on which lines start a record, and reading
    /// by bytes gives the same records as reading by text.
    #[test]
    fn default_format_records(
        lines in prop::collection::vec(line(), 0..12),
        min_level in prop::sample::select(&[0u32, 30, 40][..]),
    ) {
        for l in &lines {
            prop_assert_eq!(header_level(l.as_bytes()).is_some(), parse_header(l).is_some(), "{:?}", l);
            if let Some(h) = parse_header(l) {
                if let Some((t, o)) = h.time_text {
                    let _ = parse_time(t, o, &Zone::UTC);
                }
            }
        }
        let by_text = assemble(&lines, min_level, false);
        let by_bytes = assemble(&lines, min_level, true);
        prop_assert_eq!(&by_text, &by_bytes);
        check_bounds(&lines, &by_text)?;
    }
}

/// Custom loguru formats and text-source regexes, as a team would configure them.
static FORMATS: LazyLock<Vec<Arc<LineFormat>>> = LazyLock::new(|| {
    let loguru = [
        "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | <cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - <level>{message}</level>",
        "{time:YYYY-MM-DD HH:mm:ss.SSS Z} | {level: <8} | {extra[request_id]} | {name}:{function}:{line} - {message}",
        "{time:X} {level.no} {message}",
        "[{time:DD/MMM/YYYY:HH:mm:ss ZZ}] {process} {thread.name} {level} {message}",
        "{time:YY-M-D h:m:s A SSSSSSSSSSSS} {level.icon} {module} {extra} {message} {exception}",
    ];
    let regexes = [
        (
            r"^(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#\d+: (?P<message>.*)$",
            None,
        ),
        (
            r"^(?P<time>\S+ \S+) (?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*)$",
            None,
        ),
        (
            r"^(?P<time>\S+) (?P<message>.*)$",
            Some("%Y-%m-%dT%H:%M:%S%z"),
        ),
        (
            r"^(?P<time>\[[^\]]*\]) (?P<function>\w+):(?P<line>\d+) (?P<message>.*)$",
            Some("[%d/%b/%Y:%H:%M:%S %z]"),
        ),
    ];
    loguru
        .iter()
        .map(|f| LineFormat::from_loguru(f).unwrap())
        .chain(
            regexes
                .iter()
                .map(|(r, t)| LineFormat::from_regex(r, *t).unwrap()),
        )
        .map(Arc::new)
        .collect()
});

const PIECES: &[&str] = &[
    "2026-11-22",
    "2026/11/22",
    "22/Nov/2026",
    "26-1-2",
    "10:00:00",
    "1:2:3",
    ".123",
    ",5",
    "123456789012",
    " +02:00",
    "+0200",
    " -0130",
    "T",
    "Z",
    " | ",
    " - ",
    ":",
    "[",
    "]",
    " ",
    "PM",
    "am",
    "ERROR",
    "WARNING",
    "40",
    "[error]",
    "1234#0:",
    "app.db",
    "query:7",
    "1763805600.25",
    "req-42",
    "\u{966}\u{968}",
    "\u{1d7d9}",
    "9999999999999999999",
];

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn custom_formats_and_regexes(
        which in 0usize..9,
        lines in prop::collection::vec(prop_oneof![4 => mutated(soup(PIECES, 14)), 1 => line()], 0..8),
    ) {
        let format = FORMATS[which].clone();
        for l in &lines {
            if let Some(h) = format.parse(l, &Zone::UTC) {
                for part in [h.level, h.logger, h.function, h.line].into_iter().flatten() {
                    prop_assert!(part.len() <= l.len());
                }
                prop_assert!(h.message.len() <= l.len());
            }
        }
        let mut a = RecordAssembler::with_header(
            "app",
            "app.log",
            &BTreeMap::new(),
            0,
            HeaderParser::Line { format, default_level: Some("ERROR".into()) },
        );
        let mut events = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            events.extend(RecordParser::push_bytes(&mut a, i as u64, l.as_bytes()));
        }
        events.extend(RecordParser::finish(&mut a));
        check_bounds(&lines, &events)?;
    }

    /// The format compiler reads config, not strangers' text, but a typo must give an
    /// error, never a panic; what it compiles must parse any line.
    #[test]
    fn format_strings_compile_or_say_why(
        format in mutated(soup(&[
            "{time}", "{time:", "YYYY-MM-DD", " HH:mm:ss", ".SSS", "[at]", "[", "}", "{", "{{", "}}",
            "{level: <8}", "{level.no}", "{name}", "{function}", "{line}", "{message}",
            "{extra[k]}", "{extra[]}", "{extra[", "<green>", "</>", "\\<", " | ", " - ", "!UTC", "ZZ",
            "X", "A", "MMMM", "Do", "{colour}",
        ], 10)),
        sample in soup(PIECES, 10),
    ) {
        if let Ok(f) = LineFormat::from_loguru(&format) {
            let _ = f.parse(&sample, &Zone::UTC);
        }
    }

    #[test]
    fn time_texts(t in mutated(soup(PIECES, 6)), fmt in prop_oneof![
        Just(None),
        prop::sample::select(&["%Y-%m-%d %H:%M:%S", "%d/%b/%Y:%H:%M:%S %z", "%s", "%Y%", "%.f%:z%#z", "%"][..]).prop_map(Some),
    ]) {
        let _ = parse_time_text(&t, fmt, &Zone::UTC);
    }
}
