//! Reading logs: each source kind turns what is new since the last run into
//! [`Event`]s and says how far it got (a [`Checkpoint`]) without committing it; the
//! pipeline commits checkpoints together with what it did with the events.

pub mod file;
pub mod format;
pub mod journald;
pub mod json;
pub mod linereader;
pub mod loguru;
pub mod prescan;
pub mod sqlite;
pub mod zone;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// See [`RecordParser::skip_test`].
pub type SkipTest = std::sync::Arc<dyn SkipLines>;

/// Which lines a skipping parser passes over, free of the parser's state.
pub trait SkipLines: Send + Sync {
    /// True for a line (without its newline) a skipping parser passes over.
    fn skipped(&self, line: &[u8]) -> bool;

    /// [`Self::skipped`], told where the line's last `|` ends (its index in the line plus
    /// one; 0: the line has none), which the runs below find along with the line ends.
    /// The same answer as `skipped`.
    fn skipped_given_bar(&self, line: &[u8], _bar_end: usize) -> bool {
        self.skipped(line)
    }

    /// The lines of `block` (whole lines) where a skip stops: a line [`Self::skipped`]
    /// refuses, or one of `max_line` bytes or more. Each as its offset in the block
    /// and the lines before it, into `stops`; returns the lines in the block.
    fn stops(&self, block: &[u8], max_line: usize, stops: &mut Vec<(u32, u32)>) -> u32 {
        // A default method is compiled for each implementation: `skipped` is a direct
        // call here, not one through the trait object per line.
        let (mut start, mut line) = (0usize, 0u32);
        linereader::line_ends_and_bars(block, |end, bar| {
            let bar = bar.saturating_sub(start);
            if end - start >= max_line || !self.skipped_given_bar(&block[start..end], bar) {
                stops.push((start as u32, line));
            }
            start = end + 1;
            line += 1;
            true
        });
        line
    }

    /// The bytes and lines of the whole lines at the start of `ahead` a skip passes
    /// over (up to the first stop).
    fn skip_run(&self, ahead: &[u8], max_line: usize) -> (usize, u64) {
        let (mut start, mut lines) = (0usize, 0u64);
        linereader::line_ends_and_bars(ahead, |end, bar| {
            let bar = bar.saturating_sub(start);
            if end - start >= max_line || !self.skipped_given_bar(&ahead[start..end], bar) {
                return false;
            }
            start = end + 1;
            lines += 1;
            true
        });
        (start, lines)
    }
}

impl<F: Fn(&[u8]) -> bool + Send + Sync> SkipLines for F {
    fn skipped(&self, line: &[u8]) -> bool {
        self(line)
    }
}

/// A log level: its name as written, and its number on loguru's scale
/// (TRACE 5, DEBUG 10, INFO 20, SUCCESS 25, WARNING 30, ERROR 40, CRITICAL 50).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub name: String,
    pub no: u32,
}

/// Level names logwarden knows without being told, with their numbers.
/// The level names every source knows, besides a source's own.
pub fn known_level_names() -> impl Iterator<Item = &'static str> {
    KNOWN_LEVELS.iter().map(|(n, _)| *n)
}

const KNOWN_LEVELS: &[(&str, u32)] = &[
    ("TRACE", 5),
    ("DEBUG", 10),
    ("INFO", 20),
    ("NOTICE", 25),
    ("SUCCESS", 25),
    ("WARNING", 30),
    ("WARN", 30),
    ("ERROR", 40),
    ("ERR", 40),
    ("FAIL", 40),
    ("SEVERE", 40),
    ("CRITICAL", 50),
    ("CRIT", 50),
    ("FATAL", 50),
    ("ALERT", 50),
    ("EMERG", 50),
    ("EMERGENCY", 50),
];

impl Level {
    /// The level for a name as found in a log. Custom names come from `custom`
    /// (a source's `levels` table); unknown names count as INFO (20).
    pub fn named(name: &str, custom: &BTreeMap<String, u32>) -> Level {
        Level {
            name: name.trim().to_string(),
            no: Level::number_of(name, custom),
        }
    }

    /// The number of a level name, without allocating.
    pub fn number_of(name: &str, custom: &BTreeMap<String, u32>) -> u32 {
        Level::known_number(name, custom).unwrap_or(20)
    }

    /// The number of a custom or known level name (case-insensitive), if it is one.
    /// loguru names a level logged by number alone `Level 45`: that is level 45.
    pub fn known_number(name: &str, custom: &BTreeMap<String, u32>) -> Option<u32> {
        let name = name.trim();
        custom
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, n)| *n)
            .or_else(|| {
                KNOWN_LEVELS
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, n)| *n)
            })
            .or_else(|| {
                // a level given by number (`{level.no}`, a numeric column)
                (name.len() <= 9 && !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| name.parse().ok())
                    .flatten()
            })
            .or_else(|| {
                let n = name.strip_prefix("Level ")?;
                // Digits only: `u32::from_str` would take a sign too.
                (n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
                    .then(|| n.parse().ok())
                    .flatten()
            })
    }

    /// The name a level's rate series is labelled with: a custom name as configured
    /// (upper case), a known one in loguru's spelling (`warn` → `WARNING`, `err`,
    /// `fail`, `severe` → `ERROR`, `crit`, `fatal`, `alert`, `emerg` → `CRITICAL`),
    /// anything else by its number (`CRITICAL` from 50, `ERROR` from 40, `WARNING` from 30,
    /// `INFO` from 20, `DEBUG` from 10, else `TRACE`). A log writes its level names as it
    /// likes; its series must not multiply with them, and a rule on `level="ERROR"` must
    /// see every error.
    pub fn series_name(name: &str, no: u32, custom: &BTreeMap<String, u32>) -> String {
        let name = name.trim();
        if let Some(k) = custom.keys().find(|k| k.eq_ignore_ascii_case(name)) {
            return k.clone();
        }
        let known = KNOWN_LEVELS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        match known {
            Some(("WARN", _)) => "WARNING".into(),
            Some(("ERR" | "FAIL" | "SEVERE", _)) => "ERROR".into(),
            Some(("CRIT" | "FATAL" | "ALERT" | "EMERG" | "EMERGENCY", _)) => "CRITICAL".into(),
            Some((n, _)) => (*n).into(),
            None => Level::of_number(no).name,
        }
    }

    /// A level known by its number only (Python's logging: 10 DEBUG … 50 CRITICAL), with
    /// the usual name of its range.
    pub fn of_number(no: u32) -> Level {
        let name = match no {
            50.. => "CRITICAL",
            40.. => "ERROR",
            30.. => "WARNING",
            20.. => "INFO",
            10.. => "DEBUG",
            _ => "TRACE",
        };
        Level {
            name: name.into(),
            no,
        }
    }

    /// A level given in config: a known or custom name, or a number.
    pub fn parse_config(text: &str, custom: &BTreeMap<String, u32>) -> Option<Level> {
        if let Ok(no) = text.trim().parse::<u32>() {
            return Some(Level {
                name: text.trim().to_string(),
                no,
            });
        }
        let upper = text.trim().to_ascii_uppercase();
        let known = custom.contains_key(&upper) || KNOWN_LEVELS.iter().any(|(n, _)| *n == upper);
        known.then(|| Level::named(&upper, custom))
    }
}

/// One log record, with its multi-line message and traceback joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The configured source name.
    pub source: String,
    /// The file (or other origin) and line number where the record starts.
    pub origin: String,
    pub time: Option<DateTime<Utc>>,
    pub level: Level,
    /// The logger (loguru's `name`), when known.
    pub logger: Option<String>,
    /// `function:line` inside the app, when known.
    pub location: Option<String>,
    /// The message, continuation lines included, traceback excluded.
    pub message: String,
    /// The traceback text, when the record carries one.
    pub traceback: Option<String>,
    /// The type of the final exception (`ValueError`), when there is a traceback.
    pub exception_type: Option<String>,
    /// The final exception line (`ValueError: bad value`).
    pub exception_line: Option<String>,
    /// The record as written, capped.
    pub raw: String,
    /// Other named parts of the record (loguru `extra`, regex groups, journald fields).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl Event {
    /// A record with only a level and a message; the rest empty.
    pub fn new(source: &str, origin: String, level: Level, message: String) -> Event {
        Event {
            source: source.to_string(),
            origin,
            time: None,
            level,
            logger: None,
            location: None,
            raw: message.clone(),
            message,
            traceback: None,
            exception_type: None,
            exception_line: None,
            fields: BTreeMap::new(),
        }
    }
}

/// Turns the lines of a file into records.
pub trait RecordParser {
    /// Feeds one line (without its ending); returns the record it completed, if any.
    fn push(&mut self, line_no: u64, line: &str) -> Option<Event>;
    /// Feeds one line as bytes; parsers with a fast path skip decoding what they drop.
    fn push_bytes(&mut self, line_no: u64, line: &[u8]) -> Option<Event> {
        self.push(line_no, &String::from_utf8_lossy(line))
    }
    /// Whole lines at the start of `ahead` (each shorter than `max_line`) that this
    /// parser would drop unread, as it is now: the bytes they span, ending included,
    /// and how many they are. Only a parser skipping a record below its threshold
    /// claims any; the caller passes over them without pushing them.
    fn skip_lines(&mut self, _ahead: &[u8], _max_line: usize) -> (usize, u64) {
        (0, 0)
    }
    /// Whether [`Self::skip_lines`] would claim lines now (it is skipping a record).
    fn skips_now(&self) -> bool {
        false
    }
    /// The test [`Self::skip_lines`] applies to each line while it skips (besides the
    /// line cap), free of the parser's state: so that another thread can find, ahead of
    /// the parser, the lines where a skip would stop. `None`: this parser skips nothing.
    fn skip_test(&self) -> Option<SkipTest> {
        None
    }
    /// Whether `bytes` start with a record's first line: where a physical line is cut
    /// in two when a run saw it end there without its newline (a writer killed
    /// mid-line, whose restart appended the next record to it), or where a run of NUL
    /// bytes (a hole left by copytruncate) ends.
    fn starts_record(&self, _bytes: &[u8]) -> bool {
        false
    }
    /// Where, after its first byte, a record's first line starts inside `line`, when the
    /// format tells it apart from message text without any other hint (see
    /// [`Self::starts_record`]).
    fn embedded_record(&self, _line: &[u8]) -> Option<usize> {
        None
    }
    /// Feeds the rest of a physical line from where [`Self::embedded_record`] found a
    /// record's first line inside it. A parser that keeps the record in progress going
    /// (see `RecordAssembler::push_embedded`) may complete two records at once: after a
    /// push or [`Self::finish`] that returned a record, call [`Self::take_ready`] until
    /// it returns none (a call that returned none left nothing waiting).
    fn push_embedded(&mut self, line_no: u64, line: &[u8]) -> Option<Event> {
        self.push_bytes(line_no, line)
    }
    /// A record completed besides the one the last call returned.
    fn take_ready(&mut self) -> Option<Event> {
        None
    }
    /// Completes the record in progress at the end of the input.
    fn finish(&mut self) -> Option<Event>;
    /// The record in progress, if one is kept: the line number it started at, and
    /// whether it visibly lacks its end (a traceback without its exception line yet).
    fn pending(&self) -> Option<(u64, bool)> {
        None
    }
    /// The most of one line this parser needs (the rest is dropped before it sees it).
    fn max_line(&self) -> usize {
        linereader::MAX_LINE
    }
    /// Problems met (bad lines), to report once per run.
    fn take_problems(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Reads what is new in a source since its checkpoints (all of the source's, by key).
///
/// `lost_since`: the state that held the checkpoints was lost, and the last record it
/// is known to have counted is of that time; a file source then also reads the files
/// rotated away since (no checkpoint leads to them any more).
pub fn read(
    cfg: &crate::config::SourceConfig,
    prev: &std::collections::HashMap<String, Checkpoint>,
    all_levels: bool,
    now: DateTime<Utc>,
    lost_since: Option<DateTime<Utc>>,
    sink: &mut dyn FnMut(Event),
) -> Result<file::ReadReport, file::SourceError> {
    use crate::config::SourceKind;
    match &cfg.kind {
        SourceKind::File(fs) => file::read(cfg, fs, prev, all_levels, now, lost_since, sink),
        SourceKind::Sqlite(s) => sqlite::read(cfg, s, prev.get("cursor"), all_levels, now, sink),
        SourceKind::Journald(j) => {
            journald::read(cfg, j, prev.get("cursor"), all_levels, now, sink)
        }
    }
}

/// logwarden's own files and folders (see `FileSource::own`) as they really are,
/// resolved once per read rather than once per file looked at.
pub(crate) fn resolve_own(own: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    own.iter()
        .map(|o| std::fs::canonicalize(o).unwrap_or_else(|_| o.clone()))
        .collect()
}

/// Where `path` really is, when that is within one of `own` (from [`resolve_own`]).
pub(crate) fn leads_to_own(
    path: &std::path::Path,
    own: &[std::path::PathBuf],
) -> Option<std::path::PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    own.iter().any(|o| real.starts_with(o)).then_some(real)
}

/// How far a source has read; opaque to everyone but the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub source: String,
    /// What is being followed within the source (the configured path for files).
    pub key: String,
    /// The source's own position data, as JSON.
    pub state: String,
}
