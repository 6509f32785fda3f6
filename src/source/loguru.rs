//! The loguru text format: `YYYY-MM-DD HH:mm:ss.SSS | LEVEL    | name:function:line - message`
//! (with or without a UTC offset after the time), with continuation lines and
//! tracebacks (loguru's `diagnose=True` frames and chained exceptions included)
//! joined to the record they belong to.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::format::{Header, LineFormat};
use super::zone::Zone;
use super::{Event, Level};

/// The most of a record kept as its raw text.
pub const MAX_RAW: usize = 16 * 1024;

/// A record's text cut to [`MAX_RAW`] bytes, off the middle of a token: the
/// record is redacted only when it leaves the host, and half a secret no longer
/// has the shape that finds it.
pub fn cut_raw(text: &str) -> &str {
    &text[..crate::redact::cut_point(text, MAX_RAW)]
}
/// The most continuation lines kept from the start of one record…
pub const MAX_RECORD_LINES: usize = 400;
/// …and from its end (the lines between are counted, not kept). Parsing sees them all.
pub const MAX_TAIL_LINES: usize = 100;

/// The time at the start of a default-format header: where the time ends, the UTC
/// offset's range if any, and where the rest (` | LEVEL …`) starts.
fn time_prefix(b: &[u8]) -> Option<(usize, Option<std::ops::Range<usize>>, usize)> {
    if b.len() < 23 || !b[0].is_ascii_digit() {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return None;
    }
    let mut i = 19;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let time_end = i;
    let mut offset = None;
    if i < b.len() && b[i] == b'Z' {
        i += 1;
        offset = Some(i - 1..i);
    } else if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        let start = i;
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b':') {
            i += 1;
        }
        offset = Some(start..i);
    }
    Some((time_end, offset, i))
}

/// For the default format, on raw bytes: if `b` starts a record, its level (the fast
/// path that lets records below `min_level` be skipped without decoding them). Agrees
/// with [`parse_header`] on which lines are headers.
pub fn header_level(b: &[u8]) -> Option<&[u8]> {
    let (_, _, i) = time_prefix(b)?;
    let rest = b[i..].strip_prefix(b" | ")?;
    let bar = memchr::memchr(b'|', rest)?;
    let mut level = &rest[..bar];
    while let [head @ .., b' '] = level {
        level = head;
    }
    // Blank as `parse_header` sees it (any Unicode white space, `\t` included): a
    // line the parser takes for a continuation must not be skipped as a header here.
    let blank = if level.is_ascii() {
        level.iter().all(|c| matches!(c, b'\t'..=b'\r' | b' '))
    } else {
        std::str::from_utf8(level).map_or(level.is_empty(), |l| l.trim_end().is_empty())
    };
    if blank {
        return None;
    }
    has_location(rest[bar + 1..].strip_prefix(b" ")?).then_some(level)
}

/// Where a default-format header starts inside `b` after its first byte, if one does:
/// a record appended to a line whose writer died before its newline (the app was killed
/// mid-write and its restart appended the next record) is on the same physical line.
/// Only a whole header counts (time, level field, `name:function:line - `): a message
/// that merely mentions a time is not cut.
pub fn embedded_header(b: &[u8]) -> Option<usize> {
    // A header's time is followed by ` | `: look back from each bar for a time that
    // ends just before it (19 bytes, a fraction and a UTC offset at most).
    for bar in memchr::memchr_iter(b'|', b) {
        if bar < 20 || b[bar - 1] != b' ' || b.get(bar + 1) != Some(&b' ') {
            continue;
        }
        let time_end = bar - 1;
        for start in time_end.saturating_sub(19 + 10 + 7).max(1)..=time_end - 19 {
            if b[start].is_ascii_digit()
                && time_prefix(&b[start..]).is_some_and(|(_, _, i)| start + i == time_end)
                && header_level(&b[start..]).is_some()
            {
                return Some(start);
            }
        }
    }
    None
}

/// The longest `name:function:line` looked for: a line of many header-like pieces without
/// ` - ` is not scanned to its end once per piece.
const MAX_LOCATION: usize = 1024;

/// Whether what follows the level field starts with loguru's `name:function:line - `
/// (within [`MAX_LOCATION`] bytes).
fn has_location(rest: &[u8]) -> bool {
    // The first ` - ` ends the location; then the line number runs back from it to a
    // `:`.
    let rest = &rest[..rest.len().min(MAX_LOCATION + 3)];
    let mut from = 0;
    while let Some(d) = memchr::memchr(b'-', &rest[from..]) {
        let i = from + d;
        from = i + 1;
        if i == 0 || rest[i - 1] != b' ' || rest.get(i + 1) != Some(&b' ') {
            continue;
        }
        let loc = &rest[..i - 1];
        return match loc.iter().rposition(|c| !c.is_ascii_digit()) {
            Some(c) => loc[c] == b':' && c + 1 < loc.len(),
            None => false,
        };
    }
    false
}

/// Whether `b` starts with `YYYY-MM-DD HH:MM:SS.mmm` (digits and separators at their
/// places), tested eight bytes at a time.
#[cfg(test)]
fn default_time_shape(b: &[u8]) -> bool {
    b.first_chunk::<24>().is_some_and(|t| time_misfit(t) == 0)
}

/// Zero when `b` starts with `YYYY-MM-DD HH:MM:SS.mmm`. Without branches: on a
/// busy log's mix of levels a test that returns early is mispredicted on most lines.
fn time_misfit(b: &[u8; 24]) -> u64 {
    // Per 8-byte word: which bytes are digits, and the separators' bytes and values.
    const T: &[u8; 24] = b"0000-00-00 00:00:00.000\0";
    const fn masks(k: usize) -> (u64, u64, u64) {
        let (mut digit, mut lit, mut val) = (0u64, 0u64, 0u64);
        let mut j = 0;
        while j < 8 {
            let c = T[k * 8 + j];
            if c == b'0' {
                digit |= 0xFF << (8 * j);
            } else if c != 0 {
                lit |= 0xFF << (8 * j);
                val |= (c as u64) << (8 * j);
            }
            j += 1;
        }
        (digit, lit, val)
    }
    const M: [(u64, u64, u64); 3] = [masks(0), masks(1), masks(2)];
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let mut misfit = 0;
    for (k, &(digit, lit, val)) in M.iter().enumerate() {
        let x = word(b, k * 8);
        let d = x & digit;
        // A digit is 0x30..=0x39: high nibble 3, and still 3 once 6 is added (a carry
        // out of a byte comes only from one whose high nibble is not 3: a misfit
        // already).
        misfit |= (x & lit) ^ val;
        misfit |= (d & HIGH) ^ (THREES & digit);
        misfit |= (d.wrapping_add(SIXES & digit) & HIGH) ^ (THREES & digit);
    }
    misfit
}

/// The eight bytes of `b` from `at`, as one little-endian word.
fn word(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The levels below a threshold as loguru writes them in its default format (`{level:
/// <8}`), so that the header of a record to skip is recognised at fixed positions,
/// without searching: most lines of a busy log are such headers.
#[derive(Clone, Default)]
struct BelowLevels(Vec<u64>);

/// ` | `, the field separator, as the low three bytes of a little-endian word.
const BAR: u64 = 0x20_7C_20;

impl BelowLevels {
    fn new(levels: &BTreeMap<String, u32>, min_level: u32) -> Self {
        let mut names: Vec<&str> = levels.keys().map(String::as_str).collect();
        for n in super::known_level_names() {
            names.push(n);
        }
        let mut below = Vec::new();
        for name in names {
            let upper = name.to_ascii_uppercase();
            if upper.is_empty() || upper.len() > 8 || !upper.bytes().all(|c| c.is_ascii_graphic()) {
                continue;
            }
            if Level::number_of(&upper, levels) >= min_level {
                continue;
            }
            let mut field = [b' '; 8];
            field[..upper.len()].copy_from_slice(upper.as_bytes());
            let field = u64::from_le_bytes(field);
            if !below.contains(&field) {
                below.push(field);
            }
        }
        BelowLevels(below)
    }

    /// Whether `head` (a line's first 37 bytes) is `<time> | <LEVEL>  | ` with a level
    /// field in the list: tested without branches.
    fn fixed_header_below(&self, head: &[u8; 37]) -> bool {
        let level = word(head, 26);
        let mut listed = false;
        for &l in &self.0 {
            listed |= l == level;
        }
        let bars = (word(head, 20) >> 24 & 0xFF_FFFF == BAR) & (word(head, 29) >> 40 == BAR);
        let time: &[u8; 24] = head.first_chunk().expect("24 of 37 bytes");
        listed & bars & (time_misfit(time) == 0)
    }

    /// While a skipped record is in progress, true only for a line that is not the
    /// header of a record to keep: a line not starting like a header (a continuation of
    /// the skipped record), or one whose level field at the fixed place is in the list.
    /// Such a line is dropped whether or not it carries a location, so unlike
    /// [`Self::is_header_below`] this does not look for one.
    /// A line starting with a NUL (a hole left by a writer after copytruncate) may hide
    /// the header of a record to keep after the hole: it is left to the slow path, which
    /// splits it. So is a line with a `|` past its header (anywhere, in a continuation
    /// line): a writer killed mid-line whose restart appended its next record to the
    /// torn line leaves that record's header, bars and all, inside a line whose start
    /// says "skip" (a record written after a hole of NULs inside a line too), and a
    /// torn point saved in the checkpoint covers only the lines a run saw end. Any bar,
    /// not a whole header, sends the line on: messages rarely hold one, and a search for
    /// a header costs a sixth of the reading speed. Runs of lines find their bars along
    /// with their ends, in the same pass over the bytes (see
    /// [`super::linereader::line_ends_and_bars`]).
    fn skipped_while_skipping(&self, b: &[u8]) -> bool {
        self.skipped_given_bar(b, memchr::memrchr(b'|', b).map_or(0, |i| i + 1))
    }

    /// [`Self::skipped_while_skipping`] of line `b` whose last `|` ends at `bar_end` (0:
    /// none).
    fn skipped_given_bar(&self, b: &[u8], bar_end: usize) -> bool {
        match b.first() {
            None => true,
            Some(c) if !c.is_ascii_digit() => *c != 0 && bar_end == 0,
            Some(_) => b
                .first_chunk::<37>()
                .is_some_and(|head| self.fixed_header_below(head) & (bar_end <= 37)),
        }
    }

    /// True only for a line that [`header_level`] takes for a header whose level is in
    /// the list; false says nothing (the slow path decides).
    fn is_header_below(&self, b: &[u8]) -> bool {
        // `2026-11-22 09:50:45.492 | INFO     | `: 37 bytes at fixed places
        b.first_chunk::<37>()
            .is_some_and(|head| self.fixed_header_below(head))
            && has_location(&b[37..])
    }
}

impl super::SkipLines for BelowLevels {
    fn skipped(&self, line: &[u8]) -> bool {
        self.skipped_while_skipping(line)
    }
    fn skipped_given_bar(&self, line: &[u8], bar_end: usize) -> bool {
        BelowLevels::skipped_given_bar(self, line, bar_end)
    }
}

/// Parses a record's first line in the default loguru format; `None` if the line is a
/// continuation line.
pub fn parse_header(line: &str) -> Option<Header<'_>> {
    let (time_end, offset, i) = time_prefix(line.as_bytes())?;
    let offset = offset.map(|r| {
        if &line[r.clone()] == "Z" {
            "+00:00"
        } else {
            &line[r]
        }
    });
    let rest = line[i..].strip_prefix(" | ")?;
    let bar = rest.find('|')?;
    let level = rest[..bar].trim_end();
    if level.is_empty() {
        return None;
    }
    let rest = rest[bar + 1..].strip_prefix(' ')?;
    // The first ` - ` (by its dash: a substring search is set up anew on every call).
    let b = rest.as_bytes();
    // Within the bytes `has_location` looks at, so that both take the same lines.
    let dash = memchr::memchr_iter(b'-', &b[..b.len().min(MAX_LOCATION + 3)])
        .find(|&i| i > 0 && b[i - 1] == b' ' && b.get(i + 1) == Some(&b' '))?
        - 1;
    let loc = &rest[..dash];
    let message = &rest[dash + 3..];
    let (head, lineno) = loc.rsplit_once(':')?;
    if lineno.is_empty() || !lineno.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (logger, function) = head.split_once(':').unwrap_or((head, ""));
    Some(Header {
        time: None,
        time_text: Some((&line[..time_end], offset)),
        level: Some(level),
        logger: Some(logger),
        function: Some(function),
        line: Some(lineno),
        message,
        fields: Vec::new(),
    })
}

/// Parses a loguru default-format line's time (with its optional UTC offset; without
/// one, loguru wrote the local time of its host: read in `zone`).
pub fn parse_time(text: &str, offset: Option<&str>, zone: &Zone) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut n = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + (c - b'0') as u32;
        }
        Some(n)
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let mut nanos = 0u32;
    if b.len() > 20 {
        let frac = &b[20..];
        let digits = frac.len().min(9);
        nanos = num(20..20 + digits)? * 10u32.pow(9 - digits as u32);
    }
    let naive = date.and_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)?;
    match offset {
        None => zone.to_utc(naive),
        Some(off) => {
            let off = off.replace(':', "");
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let hh: i64 = off.get(1..3)?.parse().ok()?;
            let mm: i64 = off.get(3..5).unwrap_or("00").parse().ok()?;
            let secs = sign * (hh * 3600 + mm * 60);
            Some(naive.and_utc() - chrono::Duration::seconds(secs))
        }
    }
}

/// Splits a record's continuation lines into message lines and traceback, and finds the
/// final exception.
pub fn split_traceback(lines: &[String]) -> (Vec<&str>, Option<String>, Option<String>) {
    let start = lines.iter().position(|l| is_traceback_start(l));
    let Some(start) = start else {
        return (lines.iter().map(String::as_str).collect(), None, None);
    };
    let mut message: Vec<&str> = lines[..start].iter().map(String::as_str).collect();
    while message.last().is_some_and(|l| l.trim().is_empty()) {
        message.pop();
    }
    let tb = &lines[start..];
    let mut scan = ExceptionScan::default();
    for l in tb {
        scan.push(l);
    }
    let mut text = tb.join("\n");
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    (
        message,
        Some(text),
        scan.exception_line().map(str::to_string),
    )
}

/// Finds a traceback's final exception line as the lines go by, so it does not depend on
/// how much of the traceback is kept. In each traceback block (from a
/// `Traceback (most recent call last):` line) the exception line is the first line at
/// the block's indentation that reads `ExcType: message`, `pkg.mod.ExcType: message` or
/// a bare `ExcType` (frames and source lines are indented; loguru's `> File` marker is
/// not a name); lines after it are its multi-line message. With chained exceptions
/// ("During handling of the above exception…") the last block's wins. A top-level
/// exception group (`  + Exception Group Traceback…`) gives its own `  | ExcGroup: …`
/// line, not a sub-exception's.
#[derive(Debug, Default, Clone)]
pub struct ExceptionScan {
    /// The prefix exception lines of the current block carry (`""`, or `"  | "`).
    prefix: Option<&'static str>,
    /// The current block's exception line, once seen.
    block: Option<String>,
    /// The latest block's exception line found so far (an earlier block's while the
    /// current one has none yet).
    last: Option<String>,
}

impl ExceptionScan {
    /// Feeds one continuation line.
    pub fn push(&mut self, line: &str) {
        let l = line.trim_end();
        if let Some(prefix) = traceback_block_prefix(l) {
            self.prefix = Some(prefix);
            self.block = None;
            return;
        }
        let Some(prefix) = self.prefix else { return };
        if self.block.is_some() {
            return; // the exception's own message lines
        }
        if let Some(rest) = l.strip_prefix(prefix) {
            if is_exception_line(rest) {
                self.block = Some(rest.to_string());
                self.last = self.block.clone();
            }
        }
    }

    /// Whether a traceback was seen.
    pub fn in_traceback(&self) -> bool {
        self.prefix.is_some()
    }

    /// Whether the latest traceback block has not reached its exception line yet (the
    /// record may still be being written).
    pub fn unfinished(&self) -> bool {
        self.prefix.is_some() && self.block.is_none()
    }

    /// The final exception line (`ValueError: bad value`).
    pub fn exception_line(&self) -> Option<&str> {
        self.last.as_deref()
    }
}

/// If `l` starts a traceback block whose exception line the scan should take, the prefix
/// that exception line carries.
fn traceback_block_prefix(l: &str) -> Option<&'static str> {
    match l {
        "Traceback (most recent call last):"
        | "Exception Group Traceback (most recent call last):" => Some(""),
        "  + Exception Group Traceback (most recent call last):" => Some("  | "),
        _ => None,
    }
}

fn is_traceback_start(line: &str) -> bool {
    let l = line.trim_end();
    traceback_block_prefix(l).is_some()
        || l.ends_with("| Exception Group Traceback (most recent call last):")
}

/// `ValueError: bad value`, `KeyError: 'k'`, `module.CustomError`, at column 0.
fn is_exception_line(line: &str) -> bool {
    let head = line
        .split_once(':')
        .map(|(h, _)| h)
        .unwrap_or(line.trim_end());
    let mut chars = head.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    head.chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        && (line.len() == head.len()
            || line[head.len()..].starts_with(": ")
            || line[head.len()..].trim_end() == ":")
}

/// The type part of an exception line (`ValueError` of `ValueError: bad value`).
pub fn exception_type(line: &str) -> String {
    line.split_once(':')
        .map(|(h, _)| h)
        .unwrap_or(line)
        .trim()
        .to_string()
}

/// The level a record of a text log is read at: an app's custom level logwarden is not
/// told about (`logger.level("PAGE", no=55)`, written by name only) is read as a
/// WARNING, with a note, rather than dropped as INFO: it may be the app's most severe.
/// Returns the number and whether the name was known.
pub fn text_level_no(name: &str, levels: &BTreeMap<String, u32>) -> (u32, bool) {
    match Level::known_number(name, levels) {
        Some(n) => (n, true),
        None => (UNKNOWN_TEXT_LEVEL, false),
    }
}

/// The field of a record that says what logwarden made of it (as loguru JSON's notes).
const NOTE_FIELD: &str = "logwarden_note";

/// The number a text log's unknown level name is read at (WARNING).
pub const UNKNOWN_TEXT_LEVEL: u32 = 30;

/// Whether a line starts a record of loguru's default format.
pub fn is_record_start(line: &str) -> bool {
    parse_header(line).is_some()
}

/// Assembles records from lines: a header line starts a record, the lines after it
/// belong to it until the next header.
pub struct RecordAssembler {
    source: String,
    origin: String,
    levels: BTreeMap<String, u32>,
    min_level: u32,
    header: HeaderParser,
    pending: Option<Pending>,
    /// The record in progress is below `min_level`: its lines are skipped.
    skipping: bool,
    /// The first lines of a record below `min_level`, while a header may go on over
    /// them (see [`RecordAssembler::join`]).
    probe: Option<Probe>,
    /// Where times without an offset are read.
    zone: Zone,
    below: BelowLevels,
    /// Level fields seen (as written, trailing blanks included) with their number: a
    /// log uses a handful, so looking them up by name once each is enough.
    level_numbers: Vec<(Box<[u8]>, u32, bool)>,
    /// The record a header inside one of its lines cut (see [`Self::push_embedded`]):
    /// it takes the continuation lines too, until the next record's own line.
    cut: Option<Pending>,
    /// Records completed besides the one a call returned (see [`Self::take_ready`]).
    ready: std::collections::VecDeque<Event>,
    /// The level from which a header inside a kept record's line starts a record of its
    /// own: the source's `min_level`, also when a dry run keeps every level.
    cut_floor: u32,
}

/// How a record's first line is recognised.
#[derive(Clone)]
pub enum HeaderParser {
    LoguruDefault,
    /// A compiled format; records whose line has no level get `default_level`.
    Line {
        format: std::sync::Arc<LineFormat>,
        default_level: Option<String>,
    },
}

impl HeaderParser {
    /// A line a custom format can read more than one way is read with its most severe
    /// level, by the source's level numbers (`levels`).
    fn parse<'a>(
        &self,
        line: &'a str,
        zone: &Zone,
        levels: &BTreeMap<String, u32>,
    ) -> Option<Header<'a>> {
        match self {
            HeaderParser::LoguruDefault => parse_header(line),
            HeaderParser::Line { format, .. } => {
                format.parse_ranked(line, zone, &|l| text_level_no(l, levels).0)
            }
        }
    }
}

/// A record below `min_level` whose header may go on over its next lines.
struct Probe {
    line_no: u64,
    lines: Vec<String>,
}

/// How many lines after a record's first a header may go on over, and how long the
/// lines read as one header may be: a header is short, and reading a long message again
/// for each of its lines would cost a stranger's line many times over.
const JOIN_LINES: usize = 8;
const JOIN_BYTES: usize = 16 << 10;

struct Pending {
    line_no: u64,
    time: Option<DateTime<Utc>>,
    level: Level,
    logger: String,
    location: String,
    message: String,
    fields: BTreeMap<String, String>,
    first: String,
    /// The first continuation lines (up to [`MAX_RECORD_LINES`]).
    rest: Vec<String>,
    /// The last continuation lines after those (up to [`MAX_TAIL_LINES`]), so the end of a
    /// long traceback, its exception, is kept.
    tail: std::collections::VecDeque<String>,
    /// Lines between `rest` and `tail` that were not kept.
    dropped_lines: u64,
    /// Index (among continuation lines) of the first traceback line, if any.
    tb_start: Option<u64>,
    /// Continuation lines seen.
    seen: u64,
    scan: ExceptionScan,
    keep: bool,
}

impl Pending {
    /// A record at `level` with nothing read into it yet.
    fn empty(line_no: u64, level: Level, keep: bool) -> Pending {
        Pending {
            line_no,
            time: None,
            logger: String::new(),
            location: String::new(),
            message: String::new(),
            fields: BTreeMap::new(),
            level,
            first: String::new(),
            rest: Vec::new(),
            tail: Default::default(),
            dropped_lines: 0,
            tb_start: None,
            seen: 0,
            scan: ExceptionScan::default(),
            keep,
        }
    }

    fn push_line(&mut self, line: &str) {
        if self.tb_start.is_none() && is_traceback_start(line) {
            self.tb_start = Some(self.seen);
        }
        self.seen += 1;
        self.scan.push(line);
        if self.rest.len() < MAX_RECORD_LINES {
            self.rest.push(line.to_string());
            return;
        }
        if self.tail.len() == MAX_TAIL_LINES {
            self.tail.pop_front();
            self.dropped_lines += 1;
        }
        self.tail.push_back(line.to_string());
    }
}

impl RecordAssembler {
    /// `origin` names the file for evidence (`app.log`); records below `min_level` are
    /// skipped without keeping their text.
    pub fn new(source: &str, origin: &str, levels: &BTreeMap<String, u32>, min_level: u32) -> Self {
        Self::with_header(
            source,
            origin,
            levels,
            min_level,
            HeaderParser::LoguruDefault,
        )
    }

    pub fn with_header(
        source: &str,
        origin: &str,
        levels: &BTreeMap<String, u32>,
        min_level: u32,
        header: HeaderParser,
    ) -> Self {
        RecordAssembler {
            source: source.to_string(),
            origin: origin.to_string(),
            levels: levels.clone(),
            min_level,
            header,
            pending: None,
            skipping: false,
            probe: None,
            zone: Zone::Local,
            below: BelowLevels::new(levels, min_level),
            level_numbers: Vec::new(),
            cut: None,
            ready: Default::default(),
            cut_floor: min_level,
        }
    }

    /// Reads times without an offset in `zone` (default: the host's local time).
    pub fn with_zone(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self
    }

    /// Cuts kept records at headers inside their lines from `level` up (default: the
    /// `min_level` given; see `embedded_record`).
    pub fn with_cut_floor(mut self, level: u32) -> Self {
        self.cut_floor = level;
        self
    }

    /// Feeds one line (without its ending). Returns the record it completed, if any.
    pub fn push(&mut self, line_no: u64, line: &str) -> Option<Event> {
        if let Some(h) = self.header.parse(line, &self.zone, &self.levels) {
            let done = self.finish();
            self.start(line_no, line, h);
            return done;
        }
        if self.join(line) {
            return None;
        }
        if let Some(c) = &mut self.cut {
            c.push_line(line);
        }
        match &mut self.pending {
            Some(p) if p.keep => {
                p.push_line(line);
                None
            }
            Some(_) => None,
            None if self.skipping => None,
            None => {
                // A continuation line with no record before it (the record started before
                // the checkpoint, or the file does not start with a header): keep it as a
                // record of its own so a traceback is never silently lost.
                let level = if is_traceback_start(line) {
                    Level::named("ERROR", &self.levels)
                } else {
                    Level {
                        name: "UNKNOWN".into(),
                        no: 0,
                    }
                };
                let keep = level.no >= self.min_level;
                let mut p = Pending::empty(line_no, level, keep);
                if keep {
                    p.push_line(line);
                }
                self.pending = Some(p);
                None
            }
        }
    }

    /// Starts the record whose first line (or lines, joined) `line` is.
    fn start(&mut self, line_no: u64, line: &str, h: Header<'_>) {
        let written = h.level.map(|l| self.level_number(l.as_bytes()));
        let known = written.is_none_or(|w| w.1);
        let written = written.map(|w| w.0);
        let level_name = match (&self.header, h.level) {
            (_, Some(l)) => l,
            (
                HeaderParser::Line {
                    default_level: Some(d),
                    ..
                },
                None,
            ) => d.as_str(),
            _ => "INFO",
        };
        let no = written.unwrap_or_else(|| Level::number_of(level_name, &self.levels));
        if no < self.min_level {
            // Below min_level: only remember that continuation lines are skipped (and,
            // where a header may go on over lines, the lines it may go on over).
            self.skipping = true;
            if self.joins() {
                self.probe = Some(Probe {
                    line_no,
                    lines: vec![line.to_string()],
                });
            }
            return;
        }
        let level = Level {
            name: level_name.trim().to_string(),
            no,
        };
        let keep = true;
        let location = match (h.function, h.line) {
            // (joined by hand: `format!` costs more than the rest of the header)
            (Some(f), Some(l)) => [f, ":", l].concat(),
            (Some(f), None) => f.to_string(),
            _ => String::new(),
        };
        self.pending = Some(Pending {
            time: h
                .time
                .or_else(|| h.time_text.and_then(|t| parse_time(t.0, t.1, &self.zone))),
            logger: h.logger.unwrap_or("").to_string(),
            location,
            message: h.message.to_string(),
            fields: {
                let mut f: BTreeMap<String, String> = h
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect();
                if !known {
                    f.insert(
                        NOTE_FIELD.into(),
                        format!(
                            "level `{}` is not one logwarden knows: read as WARNING; give its number under the source's `levels`",
                            crate::redact::shorten(&crate::sanitize::line(&level.name), 40)
                        ),
                    );
                }
                f
            },
            first: line.to_string(),
            // (after the fields above, which read the level's name)
            ..Pending::empty(line_no, level, keep)
        });
    }

    /// Whether a header of this source's format may go on over lines: a part anyone
    /// may write comes before its level (see `format::Ambiguous`), and a line break in
    /// it puts the level on a line that reads as the previous record's text.
    fn joins(&self) -> bool {
        matches!(&self.header, HeaderParser::Line { format, .. } if format.may_read_differently())
    }

    /// A line that is no header, read as the end of a header over lines: with the
    /// first lines of the record in progress (the one below `min_level` included), it
    /// may read as a header of a higher level. Then the record starts again from those
    /// lines joined, at that level. Returns whether `line` went into a header.
    fn join(&mut self, line: &str) -> bool {
        let HeaderParser::Line { format, .. } = &self.header else {
            return false;
        };
        if !format.may_read_differently() {
            return false;
        }
        let worth = format.may_hold_level(line);
        // The texts a header may be read from, latest start first: below `min_level`,
        // from any of the record's lines (the ones before it stay the skipped record's);
        // a kept record is read again from its first line only.
        let (candidates, floor): (Vec<(u64, String)>, u32) = if let Some(p) = &mut self.probe {
            if p.lines.len() > JOIN_LINES {
                self.probe = None;
                return false;
            }
            p.lines.push(line.to_string());
            if !worth {
                return false;
            }
            let last = p.lines.len() - 1;
            let texts = (0..last)
                .rev()
                .filter(|&k| k == 0 || format.may_start_header(&p.lines[k]))
                .filter(|&k| p.lines[k..].iter().map(|l| l.len() + 1).sum::<usize>() <= JOIN_BYTES)
                .map(|k| (p.line_no + k as u64, p.lines[k..].join("\n")))
                .collect();
            (texts, self.min_level)
        } else {
            match &self.pending {
                Some(p)
                    if p.keep
                        && p.seen < JOIN_LINES as u64
                        && worth
                        && p.first.len()
                            + p.rest.iter().map(|l| l.len() + 1).sum::<usize>()
                            + line.len()
                            < JOIN_BYTES =>
                {
                    let mut joined = p.first.clone();
                    for l in p.rest.iter().map(String::as_str).chain([line]) {
                        joined.push('\n');
                        joined.push_str(l);
                    }
                    (vec![(p.line_no, joined)], p.level.no + 1)
                }
                _ => return false,
            }
        };
        for (start, joined) in candidates {
            let Some(h) = self.header.parse(&joined, &self.zone, &self.levels) else {
                continue;
            };
            let Some(l) = h.level else { continue };
            if self.level_number(l.as_bytes()).0 < floor {
                continue;
            }
            self.pending = None;
            self.probe = None;
            self.skipping = false;
            self.start(start, &joined, h);
            return true;
        }
        false
    }

    /// The number of a level field, remembered for the next lines that carry it.
    fn level_number(&mut self, field: &[u8]) -> (u32, bool) {
        if let Some((_, n, known)) = self.level_numbers.iter().find(|(f, ..)| **f == *field) {
            return (*n, *known);
        }
        let (n, known) = text_level_no(&String::from_utf8_lossy(field), &self.levels);
        if self.level_numbers.len() < 32 {
            self.level_numbers.push((field.into(), n, known));
        }
        (n, known)
    }

    /// Completes the record in progress, if any (call at the end of the input), and
    /// the record a header inside its text cut, if that goes on too: that one comes
    /// first, and the other waits in [`Self::take_ready`].
    pub fn finish(&mut self) -> Option<Event> {
        self.skipping = false;
        self.probe = None;
        let cut = self.cut.take().and_then(|mut p| self.complete(&mut p));
        let last = self.pending.take().and_then(|mut p| self.complete(&mut p));
        match (cut, last) {
            (Some(c), Some(l)) => {
                self.ready.push_back(l);
                Some(c)
            }
            (c, l) => c.or(l),
        }
    }

    /// A record completed besides the one the last call returned (see [`Self::finish`]).
    pub fn take_ready(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    /// Feeds the rest of a physical line from where a header was found inside it
    /// ([`super::RecordParser::embedded_record`]). The record in progress is not over:
    /// whether the header is a record appended to a torn one or text a stranger wrote
    /// inside a message cannot be told, so the lines after it go to both records. A
    /// stranger's header can then add a record but never take a real one's traceback.
    pub fn push_embedded(&mut self, line_no: u64, line: &str) -> Option<Event> {
        let Some(h) = self.header.parse(line, &self.zone, &self.levels) else {
            return self.push(line_no, line);
        };
        let mut done = None;
        match self.pending.take() {
            Some(p) if p.keep && self.cut.is_none() => self.cut = Some(p),
            // A second header on the same record: the one between goes out as it is;
            // the first record keeps going on.
            Some(mut p) => done = self.complete(&mut p),
            None => {}
        }
        self.skipping = false;
        self.probe = None;
        self.start(line_no, line, h);
        if !self.pending.as_ref().is_some_and(|p| p.keep) {
            // (not kept: a header inside a line is cut only when it is no less severe)
            if let Some(e) = self.cut.take().and_then(|mut p| self.complete(&mut p)) {
                match done {
                    Some(_) => self.ready.push_back(e),
                    None => done = Some(e),
                }
            }
        }
        done
    }

    /// The event of a finished record, if it is kept.
    /// (By reference: a record's state is large, and moving it into a call for every
    /// record cost a tenth of the reading speed on short lines.)
    fn complete(&self, p: &mut Pending) -> Option<Event> {
        if !p.keep {
            return None;
        }
        // The kept lines with their index among all continuation lines, and a marker
        // where lines were left out.
        let head = p.rest.len() as u64;
        let marker = match p.dropped_lines {
            0 => String::new(),
            n => format!("[… {n} more lines not kept]"),
        };
        let mut kept: Vec<(u64, &str)> = p
            .rest
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l.as_str()))
            .collect();
        if p.dropped_lines > 0 {
            kept.push((head, marker.as_str()));
        }
        let tail_from = head + p.dropped_lines;
        kept.extend(
            p.tail
                .iter()
                .enumerate()
                .map(|(i, l)| (tail_from + i as u64, l.as_str())),
        );
        let split = match p.tb_start {
            // A traceback starting among the left-out lines: the marker opens it.
            Some(s) => {
                let s = if (head..tail_from).contains(&s) {
                    head
                } else {
                    s
                };
                kept.partition_point(|(i, _)| *i < s)
            }
            None => kept.len(),
        };
        let mut message = std::mem::take(&mut p.message);
        let mut msg_lines = &kept[..split];
        while msg_lines.last().is_some_and(|(_, l)| l.trim().is_empty()) && p.tb_start.is_some() {
            msg_lines = &msg_lines[..msg_lines.len() - 1];
        }
        for (_, l) in msg_lines {
            if !message.is_empty() {
                message.push('\n');
            }
            message.push_str(l);
        }
        let traceback = p.tb_start.map(|_| {
            let mut text = kept[split..]
                .iter()
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n");
            let trimmed = text.trim_end().len();
            text.truncate(trimmed);
            text
        });
        let exception_line = p.scan.exception_line().map(str::to_string);
        let raw = if let Some(note) = p.fields.get(NOTE_FIELD) {
            let mut lines: Vec<&str> = vec![p.first.as_str()];
            lines.extend(kept.iter().map(|(_, l)| *l));
            format!("[{note}]\n{}", cap_raw(&lines))
        } else if kept.is_empty() && p.first.len() < MAX_RAW {
            // A record of one line (most are): its line is its raw text.
            std::mem::take(&mut p.first)
        } else {
            let mut lines: Vec<&str> = Vec::with_capacity(kept.len() + 1);
            if !p.first.is_empty() {
                lines.push(&p.first);
            }
            lines.extend(kept.iter().map(|(_, l)| *l));
            cap_raw(&lines)
        };
        Some(Event {
            source: self.source.clone(),
            origin: {
                use std::fmt::Write;
                let mut o = String::with_capacity(self.origin.len() + 12);
                o.push_str(&self.origin);
                let _ = write!(o, ":{}", p.line_no);
                o
            },
            time: p.time,
            level: std::mem::replace(
                &mut p.level,
                Level {
                    name: String::new(),
                    no: 0,
                },
            ),
            logger: (!p.logger.is_empty()).then(|| std::mem::take(&mut p.logger)),
            location: (!p.location.is_empty()).then(|| std::mem::take(&mut p.location)),
            message,
            exception_type: exception_line.as_deref().map(exception_type),
            exception_line,
            traceback,
            raw,
            fields: std::mem::take(&mut p.fields),
        })
    }
}

/// The lines joined, at most [`MAX_RAW`] bytes of them: when too long, the start and the
/// end (where a traceback's exception is) with a marker between.
pub fn cap_raw(lines: &[&str]) -> String {
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    if total <= MAX_RAW {
        return lines.join("\n");
    }
    let half = MAX_RAW / 2;
    let mut front = 0;
    let mut used = 0;
    while front < lines.len() && used + lines[front].len() < half {
        used += lines[front].len() + 1;
        front += 1;
    }
    let mut back = lines.len();
    let mut used = 0;
    while back > front && used + lines[back - 1].len() < half {
        used += lines[back - 1].len() + 1;
        back -= 1;
    }
    let mut out = lines[..front].join("\n");
    if front == 0 {
        // One huge first line: its start, cut off the middle of a token (half a
        // secret no longer has the shape that finds it).
        let cut = crate::redact::cut_point(lines[0], half);
        out.push_str(&lines[0][..cut]);
    }
    out.push_str(&format!(
        "\n[… record cut: {} lines left out]\n",
        back - front
    ));
    out.push_str(&lines[back..].join("\n"));
    out
}

/// How many bytes of a custom format's line [`super::RecordParser::starts_record`] reads.
const HEADER_PREFIX: usize = 256;

impl super::RecordParser for RecordAssembler {
    fn push(&mut self, line_no: u64, line: &str) -> Option<Event> {
        RecordAssembler::push(self, line_no, line)
    }
    fn push_bytes(&mut self, line_no: u64, line: &[u8]) -> Option<Event> {
        if let HeaderParser::LoguruDefault = self.header {
            if self.below.is_header_below(line) {
                let done = self.finish();
                self.skipping = true;
                return done;
            }
            match header_level(line) {
                Some(level) if self.level_number(level).0 < self.min_level => {
                    let done = self.finish();
                    self.skipping = true;
                    return done;
                }
                Some(_) => {}
                None if self.skipping => return None,
                None => {}
            }
        }
        // Valid UTF-8 (nearly every line) is checked faster than it is replaced.
        match std::str::from_utf8(line) {
            Ok(text) => RecordAssembler::push(self, line_no, text),
            Err(_) => RecordAssembler::push(self, line_no, &String::from_utf8_lossy(line)),
        }
    }
    fn skip_lines(&mut self, ahead: &[u8], max_line: usize) -> (usize, u64) {
        if !self.skips_now() {
            return (0, 0);
        }
        super::SkipLines::skip_run(&self.below, ahead, max_line)
    }
    fn skips_now(&self) -> bool {
        self.skipping
            && self.pending.is_none()
            && matches!(self.header, HeaderParser::LoguruDefault)
    }
    fn skip_test(&self) -> Option<super::SkipTest> {
        matches!(self.header, HeaderParser::LoguruDefault)
            .then(|| std::sync::Arc::new(self.below.clone()) as _)
    }
    fn starts_record(&self, bytes: &[u8]) -> bool {
        match &self.header {
            HeaderParser::LoguruDefault => header_level(bytes).is_some(),
            // A header is at the start: its first bytes tell (a NUL-filled line asks
            // this once per run of NULs, with the whole rest of the line behind it). The
            // bytes may run on past the line's end.
            HeaderParser::Line { format, .. } => {
                let head = &bytes[..bytes.len().min(HEADER_PREFIX)];
                let head = &head[..memchr::memchr(b'\n', head).unwrap_or(head.len())];
                format.matches_at_start(&String::from_utf8_lossy(head))
            }
        }
    }
    fn embedded_record(&self, line: &[u8]) -> Option<usize> {
        // Custom formats may start a record with little more than a time, which
        // ordinary messages contain too: they are cut only where a run saw a line end
        // without its newline (see `starts_record`).
        if !matches!(self.header, HeaderParser::LoguruDefault) {
            return None;
        }
        // A message may hold a whole header too: text a stranger chose (a user name,
        // a URL) logged inside an ERROR. A line a run saw torn is cut at that point
        // (`file.rs`); without that hint a header inside a line cannot be told from a
        // record appended to a torn one, so it is cut too, and the record it cuts goes
        // on over the lines after it (`push_embedded`): it keeps its traceback. A
        // header of a level the source drops does not cut a record it keeps (nothing
        // would be gained); one at least as severe as the record it cuts always does.
        let number = |l: &[u8]| text_level_no(&String::from_utf8_lossy(l), &self.levels).0;
        let outer = match header_level(line) {
            Some(l) => number(l),
            // a continuation line: the record it goes on, if one is kept
            None => match &self.pending {
                Some(p) if p.keep => p.level.no,
                _ => 0,
            },
        };
        let floor = outer.min(self.cut_floor);
        let mut from = 0;
        while let Some(k) = embedded_header(&line[from..]).map(|k| from + k) {
            if header_level(&line[k..]).is_some_and(|l| number(l) >= floor) {
                return Some(k);
            }
            from = k;
        }
        None
    }
    fn push_embedded(&mut self, line_no: u64, line: &[u8]) -> Option<Event> {
        RecordAssembler::push_embedded(self, line_no, &String::from_utf8_lossy(line))
    }
    fn take_ready(&mut self) -> Option<Event> {
        RecordAssembler::take_ready(self)
    }
    fn pending(&self) -> Option<(u64, bool)> {
        if let Some(c) = &self.cut {
            // (the record it cut is a later one, never less kept)
            let later = self.pending.as_ref().is_some_and(|p| p.scan.unfinished());
            return Some((c.line_no, later || c.scan.unfinished()));
        }
        match (&self.pending, &self.probe) {
            (Some(p), _) if p.keep => Some((p.line_no, p.scan.unfinished())),
            // lines that may yet read as a header with the next: read again next run
            (None, Some(p)) => Some((p.line_no, false)),
            _ => None,
        }
    }
    fn finish(&mut self) -> Option<Event> {
        RecordAssembler::finish(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_header() {
        let h = parse_header(
            "2026-11-22 09:50:45.492 | WARNING  | app.db:query:7 - Slow query took 1532 ms",
        )
        .unwrap();
        assert_eq!(h.level, Some("WARNING"));
        assert_eq!(h.logger, Some("app.db"));
        assert_eq!(h.function, Some("query"));
        assert_eq!(h.line, Some("7"));
        assert_eq!(h.message, "Slow query took 1532 ms");
        let (t, o) = h.time_text.unwrap();
        assert_eq!(
            parse_time(t, o, &Zone::UTC).unwrap().to_rfc3339(),
            "2026-11-22T09:50:45.492+00:00"
        );
    }

    #[test]
    fn parses_offset_and_custom_levels() {
        let h = parse_header(
            "2026-11-22 10:50:45.492+01:00 | VERYLONGLEVELNAME | __main__:<module>:8 - hi - there",
        )
        .unwrap();
        assert_eq!(h.level, Some("VERYLONGLEVELNAME"));
        assert_eq!(h.function, Some("<module>"));
        assert_eq!(h.message, "hi - there");
        let (t, o) = h.time_text.unwrap();
        assert_eq!(
            parse_time(t, o, &Zone::UTC).unwrap().to_rfc3339(),
            "2026-11-22T09:50:45.492+00:00"
        );
    }

    #[test]
    fn fast_header_check_agrees_with_the_parser() {
        for line in [
            "2026-11-22 09:50:45.492 | WARNING  | app.db:query:7 - Slow query",
            "2026-11-22 10:50:45.492+01:00 | X | m:<module>:8 - hi - there",
            "2026-11-22 is the date of the release",
            "2026-11-22 09:50:45.492 | WARNING  | no location here",
            "2026-11-22 09:50:45.492 | WARNING  | app:f:x - not a line number",
            "Traceback (most recent call last):",
            "2026-11-22 09:50:45.492 | \t | app:f:1 - a blank level",
            "2026-11-22 09:50:45.492 | \u{3000}\u{a0} | app:f:1 - a blank level",
            "2026-11-22 09:50:45.492 | \u{fffd} | app:f:1 - an odd level",
        ] {
            assert_eq!(
                header_level(line.as_bytes()).is_some(),
                parse_header(line).is_some(),
                "{line}"
            );
        }
    }

    #[test]
    fn word_at_a_time_time_check_agrees_with_a_byte_at_a_time_one() {
        let simple = |b: &[u8]| {
            b.len() >= 24
                && b"0000-00-00 00:00:00.000".iter().zip(b).all(|(t, c)| {
                    if *t == b'0' {
                        c.is_ascii_digit()
                    } else {
                        t == c
                    }
                })
        };
        let base = b"2026-11-22 09:50:45.492 | INFO".to_vec();
        assert!(default_time_shape(&base));
        for i in 0..24 {
            for c in 0..=255u8 {
                let mut m = base.clone();
                m[i] = c;
                assert_eq!(default_time_shape(&m), simple(&m), "byte {c} at {i}");
            }
        }
        assert!(!default_time_shape(&base[..23]));
    }

    /// A header is told by the bytes near its start: a line of many header-like pieces
    /// and no ` - ` is not read to its end once per piece (which took seconds), and a
    /// header followed by a long message is still one.
    #[test]
    fn headers_are_told_by_their_first_bytes() {
        let piece = "2026-12-02 08:06:00.000 | E | ";
        let line = piece.repeat(2100);
        assert_eq!(embedded_header(line.as_bytes()), None);
        assert!(header_level(line.as_bytes()).is_none());
        assert!(parse_header(&line).is_none());
        let long = format!(
            "2026-12-02 08:06:00.000 | ERROR    | app:f:1 - {}",
            "x - y ".repeat(20_000)
        );
        assert!(header_level(long.as_bytes()).is_some());
        assert!(parse_header(&long).is_some());
        let far = format!(
            "2026-12-02 08:06:00.000 | ERROR    | {}app:f:1 - x",
            "a".repeat(MAX_LOCATION)
        );
        assert!(header_level(far.as_bytes()).is_none());
        assert!(parse_header(&far).is_none());
        let format = std::sync::Arc::new(
            super::super::format::LineFormat::from_loguru(
                "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level} | {message}",
            )
            .unwrap(),
        );
        let custom = RecordAssembler::with_header(
            "app",
            "app.log",
            &BTreeMap::new(),
            0,
            HeaderParser::Line {
                format,
                default_level: None,
            },
        );
        use super::super::RecordParser;
        let rest = format!("2026-12-02 08:06:00.000 | INFO | x{}", "\0y".repeat(30_000));
        assert!(custom.starts_record(rest.as_bytes()));
        assert!(!custom.starts_record(&rest.as_bytes()[1..]));
    }

    #[test]
    fn location_search_agrees_with_a_plain_scan() {
        // The byte-at-a-time scan it replaced: the last `:` before the first ` - `.
        let plain = |rest: &[u8]| {
            let mut colon = None;
            for i in 0..rest.len() {
                match rest[i] {
                    b':' => colon = Some(i),
                    b'-' if i > 0 && rest[i - 1] == b' ' && rest.get(i + 1) == Some(&b' ') => {
                        return matches!(colon, Some(c) if c < i - 1
                            && i - 1 > c + 1
                            && rest[c + 1..i - 1].iter().all(u8::is_ascii_digit));
                    }
                    _ => {}
                }
            }
            false
        };
        // Every string of up to 7 bytes over the bytes that matter.
        let alphabet = b"a:- 1";
        let mut checked = 0;
        for len in 0..=7u32 {
            for mut k in 0..5usize.pow(len) {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        let c = alphabet[k % 5];
                        k /= 5;
                        c
                    })
                    .collect();
                assert_eq!(
                    has_location(&s),
                    plain(&s),
                    "{}",
                    String::from_utf8_lossy(&s)
                );
                // The same behind a location long enough for the word-at-a-time search.
                let long = [&b"app.web.handlers:handle_request:"[..], &s].concat();
                assert_eq!(has_location(&long), plain(&long));
                checked += 1;
            }
        }
        assert!(checked > 90_000);
        assert!(has_location(b"app.web:handle:12 - GET / 200"));
        assert!(has_location(b"my-app:run-it:7 - x"));
        assert!(!has_location(b"app:f:x - y"));
    }

    /// The lines, then each with one byte replaced by each of `bytes`, at each of
    /// `places` that the line has.
    fn with_byte_changes(
        base: &[&str],
        places: impl Iterator<Item = usize> + Clone,
        bytes: &[u8],
    ) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = base.iter().map(|l| l.as_bytes().to_vec()).collect();
        for l in base {
            for i in places.clone().filter(|&i| i < l.len()) {
                for &c in bytes {
                    let mut m = l.as_bytes().to_vec();
                    m[i] = c;
                    out.push(m);
                }
            }
        }
        out
    }

    #[test]
    fn fixed_place_skip_claims_only_what_the_parser_skips() {
        let mut custom = BTreeMap::new();
        custom.insert("AUDIT".to_string(), 35);
        custom.insert("NOISY".to_string(), 15);
        let below = BelowLevels::new(&custom, 30);
        let base = [
            "2026-11-22 09:50:45.492 | INFO     | app.web:handle:7 - GET / 200",
            "2026-11-22 09:50:45.492 | DEBUG    | app:f:1 - x - y",
            "2026-11-22 09:50:45.492 | NOISY    | app:f:1 - custom and low",
            "2026-11-22 09:50:45.492 | AUDIT    | app:f:1 - custom and high",
            "2026-11-22 09:50:45.492 | WARNING  | app:f:1 - high",
            "2026-11-22 09:50:45.492 | CRITICAL | app:f:1 - high",
            "2026-11-22 09:50:45.492 | INFO     | no location - here",
            "2026-11-22 09:50:45.492 | INFO     | app:f:x - bad line number",
            "2026-11-22 09:50:45.4925 | INFO     | app:f:1 - four digits",
            "2026-11-22T09:50:45.492 | INFO     | app:f:1 - a T",
            "2026-11-22 09:50:45.492 | info     | app:f:1 - lower case",
            "2026-11-22 09:50:45.492 | INFOX    | app:f:1 - unknown level",
        ];
        // Every single-byte change of each line at each of its first 45 places.
        let lines = with_byte_changes(
            &base,
            0..45,
            &[b' ', b'|', b'-', b':', b'0', b'9', b'A', b'\t', 0xff],
        );
        let mut claimed = 0;
        for l in &lines {
            if below.is_header_below(l) {
                claimed += 1;
                let level = header_level(l)
                    .unwrap_or_else(|| panic!("not a header: {}", String::from_utf8_lossy(l)));
                let n = Level::number_of(std::str::from_utf8(level).unwrap(), &custom);
                assert!(n < 30, "{}", String::from_utf8_lossy(l));
            }
        }
        assert!(claimed > 100, "the fast path claimed only {claimed} lines");
        for (line, want) in [
            (base[0], true),
            (base[2], true),
            (base[3], false),
            (base[4], false),
        ] {
            assert_eq!(below.is_header_below(line.as_bytes()), want, "{line}");
        }
    }

    /// Skipping runs of lines (the fast path) gives the records of pushing each line,
    /// cut where a record starts inside it (the slow path).
    #[test]
    fn skipping_runs_of_lines_gives_the_records_of_pushing_them_one_by_one() {
        use crate::source::linereader::{for_each_line_capped, Line, LineRef, LineSink};
        use crate::source::RecordParser;
        let mut custom = BTreeMap::new();
        custom.insert("NOISY".to_string(), 15);
        let base = [
            "2026-11-22 09:50:45.492 | INFO     | app.web:handle:7 - GET / 200",
            "2026-11-22 09:50:45.492 | DEBUG    | app:f:1 - x - y",
            "2026-11-22 09:50:45.492 | NOISY    | app:f:1 - custom and low",
            "2026-11-22 09:50:45.492 | WARNING  | app:f:1 - high",
            "2026-11-22 09:50:45.492 | ERROR    | app:f:1 - boom",
            "2026-11-22 09:50:45.492 | INFO     | no location - here",
            "2026-11-22T09:50:45.492 | ERROR    | app:f:1 - a T",
            "2026-11-22 09:50:45.492 | ERRORS   | app:f:1 - unknown level",
            "Traceback (most recent call last):",
            "  File \"app.py\", line 3, in f",
            "ValueError: bad",
            "",
            "2026-11-22 09:50:45.492 | INFO     | app:f:1 - carriage return\r",
            // Torn lines with the next record appended (cut in two as `file` cuts them),
            // and bars in a message.
            "2026-11-22 09:50:45.492 | INFO     | app:f:1 - half a mess2026-11-22 09:50:46.000 | ERROR    | app:g:2 - glued",
            "  File \"app.py\", line 3, in f2026-11-22 09:50:46.000 | ERROR    | app:g:2 - glued",
            "2026-11-22 09:50:45.492 | DEBUG    | app:f:1 - half2026-11-22 09:50:46.000 | INFO     | app:g:2 - low",
            "2026-11-22 09:50:45.492 | INFO     | app:f:1 - a | b | c",
        ];
        let pool = with_byte_changes(
            &base,
            (0..40).step_by(3),
            &[b' ', b'|', b'1', b'W', b'\t', 0xff],
        );
        struct Skipping<'a> {
            parser: &'a mut RecordAssembler,
            line_no: u64,
            skipped: u64,
            events: Vec<Event>,
        }
        impl LineSink for &mut Skipping<'_> {
            fn skip(&mut self, ahead: &[u8]) -> usize {
                let (bytes, lines) = self.parser.skip_lines(ahead, 200);
                self.line_no += lines;
                self.skipped += lines;
                bytes
            }
            fn line(&mut self, line: LineRef<'_>) -> bool {
                self.line_no += 1;
                push_pieces(self.parser, self.line_no, line.bytes, &mut self.events);
                true
            }
        }
        // A physical line goes to the parser in pieces, cut where a record starts
        // inside it.
        fn push_pieces(p: &mut RecordAssembler, line_no: u64, mut l: &[u8], out: &mut Vec<Event>) {
            let mut embedded = false;
            loop {
                let cut = RecordParser::embedded_record(p, l);
                let part = &l[..cut.unwrap_or(l.len())];
                if embedded {
                    out.extend(RecordParser::push_embedded(p, line_no, part));
                } else {
                    out.extend(p.push_bytes(line_no, part));
                }
                out.extend(std::iter::from_fn(|| p.take_ready()));
                match cut {
                    Some(k) => (l, embedded) = (&l[k..], true),
                    None => break,
                }
            }
        }
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let mut skipped = 0;
        for _ in 0..400 {
            let lines: Vec<&[u8]> = (0..60)
                .map(|_| {
                    // Mostly records below the threshold, as in a busy log.
                    let k = if next(3) > 0 {
                        next(3)
                    } else {
                        next(pool.len())
                    };
                    &pool[k][..]
                })
                .collect();
            let mut one_by_one = RecordAssembler::new("app", "app.log", &custom, 30);
            let mut want = vec![];
            for (i, l) in lines.iter().enumerate() {
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                push_pieces(&mut one_by_one, i as u64 + 1, l, &mut want);
            }
            want.extend(RecordParser::finish(&mut one_by_one));
            want.extend(std::iter::from_fn(|| one_by_one.take_ready()));

            let text: Vec<u8> = lines.iter().flat_map(|l| [*l, b"\n"].concat()).collect();
            let mut parser = RecordAssembler::new("app", "app.log", &custom, 30);
            let mut sink = Skipping {
                parser: &mut parser,
                line_no: 0,
                skipped: 0,
                events: vec![],
            };
            let mut reader = std::io::BufReader::with_capacity(64 + next(300), &text[..]);
            for_each_line_capped(&mut reader, &mut Line::default(), 200, &mut sink).unwrap();
            sink.events.extend(RecordParser::finish(sink.parser));
            sink.events
                .extend(std::iter::from_fn(|| sink.parser.take_ready()));
            assert_eq!(sink.line_no, lines.len() as u64);
            assert_eq!(sink.events, want);
            skipped += sink.skipped;
        }
        assert!(skipped > 5_000, "only {skipped} lines were skipped in runs");
    }

    #[test]
    fn a_line_with_a_blank_level_stays_in_the_record_when_read_as_bytes() {
        use crate::source::RecordParser;
        let lines = [
            "2026-11-22 09:50:45.492 | ERROR    | app:f:1 - boom",
            "2026-11-22 09:50:45.493 | \t | app:f:2 - not a header",
            "Traceback (most recent call last):",
            "ValueError: bad",
        ];
        let mut by_text = RecordAssembler::new("app", "app.log", &BTreeMap::new(), 30);
        let mut by_bytes = RecordAssembler::new("app", "app.log", &BTreeMap::new(), 30);
        let (mut a, mut b) = (vec![], vec![]);
        for (i, l) in lines.iter().enumerate() {
            a.extend(RecordParser::push(&mut by_text, i as u64, l));
            b.extend(RecordParser::push_bytes(
                &mut by_bytes,
                i as u64,
                l.as_bytes(),
            ));
        }
        a.extend(RecordParser::finish(&mut by_text));
        b.extend(RecordParser::finish(&mut by_bytes));
        assert_eq!(a, b);
        assert_eq!(b[0].exception_type.as_deref(), Some("ValueError"));
    }

    #[test]
    fn rejects_continuation_lines() {
        assert!(parse_header("Traceback (most recent call last):").is_none());
        assert!(parse_header("2026-11-22 is the date of the release").is_none());
        assert!(parse_header("").is_none());
    }

    #[test]
    fn joins_chained_traceback_and_finds_final_exception() {
        let text = "2026-11-22 09:50:45.498 | ERROR    | __main__:<module>:21 - chained thing
second line
Traceback (most recent call last):

  File \"/tmp/lg/gen.py\", line 17, in <module>
    {}[\"k\"]

KeyError: 'k'


The above exception was the direct cause of the following exception:


Traceback (most recent call last):

> File \"/tmp/lg/gen.py\", line 19, in <module>
    raise ValueError(\"bad value\") from e
          └ KeyError('k')

ValueError: bad value
2026-11-22 09:50:45.499 | INFO     | __main__:<module>:22 - next";
        let mut a = RecordAssembler::new("app", "app.log", &BTreeMap::new(), 30);
        let mut events = vec![];
        for (i, l) in text.lines().enumerate() {
            events.extend(a.push(i as u64 + 1, l));
        }
        events.extend(a.finish());
        assert_eq!(events.len(), 1, "the INFO record is below min_level");
        let e = &events[0];
        assert_eq!(e.message, "chained thing\nsecond line");
        assert_eq!(e.exception_type.as_deref(), Some("ValueError"));
        assert_eq!(e.exception_line.as_deref(), Some("ValueError: bad value"));
        assert!(e.traceback.as_ref().unwrap().contains("KeyError: 'k'"));
        assert_eq!(e.origin, "app.log:1");
    }
    fn assemble(text: &str) -> Vec<Event> {
        let mut a = RecordAssembler::new("app", "app.log", &BTreeMap::new(), 30);
        let mut events = vec![];
        for (i, l) in text.lines().enumerate() {
            events.extend(a.push(i as u64 + 1, l));
        }
        events.extend(a.finish());
        events
    }

    #[test]
    fn the_exception_of_a_traceback_longer_than_what_is_kept_is_found() {
        let mut text =
            String::from("2026-11-22 09:50:45.498 | ERROR    | app:f:1 - deep\nTraceback (most recent call last):\n");
        for i in 0..(MAX_RECORD_LINES + MAX_TAIL_LINES) {
            text.push_str(&format!(
                "  File \"x.py\", line {i}, in f\n    f(n - 1)\n          └ {i}\n"
            ));
        }
        text.push_str(
            "app.errors.QuotaExceeded: limit reached\n  while charging\nNote: not an exception\n",
        );
        let e = &assemble(&text)[0];
        assert_eq!(
            e.exception_type.as_deref(),
            Some("app.errors.QuotaExceeded")
        );
        assert_eq!(
            e.exception_line.as_deref(),
            Some("app.errors.QuotaExceeded: limit reached")
        );
        let tb = e.traceback.as_deref().unwrap();
        assert!(
            tb.contains("more lines not kept") && tb.ends_with("Note: not an exception"),
            "{tb}"
        );
        assert!(e.raw.len() <= MAX_RAW + 100, "{}", e.raw.len());
        assert!(
            e.raw.contains("QuotaExceeded: limit reached"),
            "the raw text keeps the end"
        );
        assert_eq!(e.message, "deep");
    }

    #[test]
    fn chained_bare_and_group_exceptions() {
        let chained = "2026-11-22 09:50:45.498 | ERROR    | app:f:1 - x
Traceback (most recent call last):
  File \"x.py\", line 1, in f
KeyError: 'k'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
> File \"x.py\", line 3, in f
    raise Stop
KeyboardInterrupt
";
        let e = &assemble(chained)[0];
        assert_eq!(e.exception_line.as_deref(), Some("KeyboardInterrupt"));
        let group = "2026-11-22 09:50:45.498 | ERROR    | app:f:1 - x
  + Exception Group Traceback (most recent call last):
  |   File \"x.py\", line 1, in <module>
  | ExceptionGroup: many (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    | ValueError: a
    +---------------- 2 ----------------
    | TypeError: b
    +------------------------------------
";
        let mut scan = ExceptionScan::default();
        for l in group.lines().skip(1) {
            scan.push(l);
        }
        assert_eq!(
            scan.exception_line(),
            Some("ExceptionGroup: many (2 sub-exceptions)")
        );
        let mut scan = ExceptionScan::default();
        for l in [
            "Traceback (most recent call last):",
            "  File \"x.py\", line 1",
        ] {
            scan.push(l);
        }
        assert!(scan.unfinished());
    }

    #[test]
    fn a_header_inside_a_line_starts_a_record_if_no_less_severe_or_kept() {
        use super::super::RecordParser;
        let head = |level: &str, msg: &str| {
            format!("2026-12-02 08:06:00.000 | {level:<8} | app.pay:charge:7 - {msg}")
        };
        let mut p = RecordAssembler::new("app", "app.log", &BTreeMap::new(), 30);
        let at = |p: &RecordAssembler, line: &str| p.embedded_record(line.as_bytes());
        // a stranger's user name holding an INFO header inside an ERROR: one record
        let error = head(
            "ERROR",
            &format!("payment failed for {}", head("INFO", "hi")),
        );
        assert_eq!(at(&p, &error), None);
        // a torn ERROR with the restart's WARNING appended: two (the source keeps both)
        let warned = head("ERROR", &format!("db down{}", head("WARNING", "retrying")));
        assert_eq!(
            at(&p, &warned),
            Some(warned.len() - head("WARNING", "retrying").len())
        );
        // a torn INFO with the restart's ERROR appended: two
        let torn = head("INFO", "handling req");
        let glued = format!("{torn}{}", head("ERROR", "Database down"));
        assert_eq!(at(&p, &glued), Some(torn.len()));
        let same = format!("{torn}{}", head("INFO", "started"));
        assert_eq!(at(&p, &same), Some(torn.len()));
        // a less severe header first, a more severe one after it: cut at the second
        let both = format!("{error} | {}", head("CRITICAL", "disk full"));
        assert_eq!(at(&p, &both), Some(error.len() + 3));
        // a continuation line is cut by what its record is: a kept ERROR's traceback
        // line holding an INFO header stays on it; with no record kept it is cut
        let exc = format!("RuntimeError: card declined for {}", head("INFO", "hi"));
        assert_eq!(at(&p, &exc), Some(32));
        assert!(p.push(1, &head("ERROR", "payment failed")).is_none());
        assert_eq!(at(&p, &exc), None);
        assert_eq!(
            at(&p, &format!("x{}", head("ERROR", "again"))),
            Some(1),
            "as severe: cut"
        );
    }

    /// A whole header inside a line is found where it starts (after a torn record, at
    /// any fraction and offset); a quoted time, or a time and bar without a level and
    /// location, is not a header.
    /// The skip path passes over no line that may hold one.
    #[test]
    fn a_header_inside_a_line_is_found_and_a_quoted_time_is_not() {
        let h = "2026-12-02 08:06:00.000 | CRITICAL | app.db:connect:1 - Database down";
        for torn in [
            "2026-12-02 07:00:01.000 | INFO     | app:f:1 - handling req",
            "x",
            "req 42",
            "a | b",
        ] {
            let line = format!("{torn}{h}");
            assert_eq!(embedded_header(line.as_bytes()), Some(torn.len()), "{line}");
        }
        let off = "2026-12-02 08:06:00+01:00 | ERROR | m:f:1 - y";
        assert_eq!(embedded_header(format!("ab{off}").as_bytes()), Some(2));
        for line in [
            h,
            "2026-12-02 07:00:01.000 | INFO     | app:f:1 - retry at 2026-12-02 08:06:00.000 | queue full",
            "2026-12-02 07:00:01.000 | INFO     | app:f:1 - at 2026-12-02 08:06:00.000 later",
            "plain 2026-12-02 08:06:00.000 | ERROR | no location here",
        ] {
            assert_eq!(embedded_header(line.as_bytes()), None, "{line}");
        }
        let below = BelowLevels::new(&BTreeMap::new(), 30);
        // The skip path leaves lines starting with a NUL to the parser, and lines with a
        // bar past the header: a record may be appended to a torn line there.
        for line in [
            format!("2026-12-02 07:00:01.000 | INFO     | app:f:1 - half a mess{h}"),
            format!("  File \"app.py\", line 3, in f{h}"),
            format!("x{h}"),
            "2026-12-02 07:00:01.000 | INFO     | app:f:1 - a | b".to_string(),
        ] {
            assert!(!below.skipped_while_skipping(line.as_bytes()), "{line}");
        }
        assert!(below.skipped_while_skipping(b"  File \"app.py\", line 3, in f"));
        assert!(!below.skipped_while_skipping(b"\0\0\0"));
        assert!(
            below.skipped_while_skipping(b"2026-12-02 07:00:01.000 | INFO     | app:f:1 - handled")
        );
    }
}
