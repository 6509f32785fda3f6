//! Line formats other than loguru's default: a loguru `format` string (colour markup,
//! padding and all) compiled into a parser, or a plain regex with named groups for logs
//! that are not loguru (an nginx error log, a worker's stdout file).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use regex::Regex;

use super::zone::Zone;

/// The parts of a record's first line.
#[derive(Debug, PartialEq)]
pub struct Header<'a> {
    pub time: Option<DateTime<Utc>>,
    /// The time as written and its UTC offset, parsed only for records that are kept.
    pub time_text: Option<(&'a str, Option<&'a str>)>,
    pub level: Option<&'a str>,
    pub logger: Option<&'a str>,
    pub function: Option<&'a str>,
    pub line: Option<&'a str>,
    pub message: &'a str,
    /// Other named parts (`extra[request_id]` becomes `request_id`).
    pub fields: Vec<(String, &'a str)>,
}

/// How the time of a record is found in the captures.
#[derive(Debug, Clone)]
enum TimeSpec {
    /// Built from `t_*` sub-captures (loguru time tokens).
    Parts,
    /// A `time` capture parsed with a strftime format, or by trying common shapes.
    Text(Option<String>),
    None,
}

/// A compiled line format.
#[derive(Debug, Clone)]
pub struct LineFormat {
    regex: Regex,
    time: TimeSpec,
    /// Capture names kept as fields, with the field name to use.
    fields: Vec<(String, String)>,
    /// Set when a line can be read more than one way (see [`Ambiguous`]).
    ambiguous: Option<std::sync::Arc<Ambiguous>>,
}

/// A format with a part anyone may write (an `{extra[...]}`, a file name, the message)
/// before its `{level}`. Text there can look like the rest of a header: with
/// `{time} | {extra[client]} | {level} | …`, a client named `x | INFO | a:b:1 - hi`
/// makes an ERROR line read as INFO at the first place it fits, and a record dropped
/// below `min_level` is an error lost. Such a line is read at every place its level
/// can stand, and the most severe reading wins: a stranger can make a record look
/// worse (a false alarm), never hide one.
///
/// Every reading is found in one pass each way: a lazy DFA over the format before the
/// level marks each place the level can start, a reverse one over the format after it
/// each place the level can end. Linear in the line, whatever it holds.
#[derive(Debug)]
struct Ambiguous {
    /// The format before the level (its leading padding included), anchored both ends.
    before: Regex,
    /// The format after the level token, anchored both ends.
    after: Regex,
    before_dfa: regex_automata::hybrid::dfa::DFA,
    /// Built reversed: run from the line's end.
    after_dfa: regex_automata::hybrid::dfa::DFA,
    /// The level is `{level.no}` (digits), else a name (no blanks).
    number: bool,
    /// The literal text just before the level, and how often the format's literal
    /// texts hold it. Every reading of a line puts one of its occurrences before the
    /// level; a line that holds it no more often than the format has one reading only,
    /// and is read the plain way (most lines: half the cost).
    mark: Option<(String, usize)>,
    /// The format up to its first part anyone may write: where a header split over
    /// lines can start.
    head: Option<Regex>,
    scratch: std::sync::Mutex<Option<Scratch>>,
}

/// How often `needle` occurs in `hay`, overlaps included, counting up to `limit + 1`.
fn overlapping(hay: &str, needle: &str, limit: usize) -> usize {
    let finder = memchr::memmem::Finder::new(needle);
    let mut n = 0;
    let mut from = 0;
    while let Some(i) = finder.find(&hay.as_bytes()[from..]) {
        n += 1;
        if n > limit {
            break;
        }
        from += i + 1;
    }
    n
}

/// What reading an ambiguous line needs, kept from one line to the next.
#[derive(Debug)]
struct Scratch {
    before: regex_automata::hybrid::dfa::Cache,
    after: regex_automata::hybrid::dfa::Cache,
    /// `ends[i]`: the format before the level matches `line[..i]`.
    ends: Vec<bool>,
    /// `starts[i]`: the format after the level matches `line[i..]`.
    starts: Vec<bool>,
}

/// The longest level name an ambiguous line is read with (loguru's are a word).
const MAX_LEVEL_LEN: usize = 64;

impl Ambiguous {
    fn new(before: &str, after: &str, number: bool) -> Result<Ambiguous, String> {
        use regex_automata::{hybrid::dfa::DFA, nfa::thompson, util::syntax, MatchKind};
        let build = |pattern: &str, reverse: bool| {
            DFA::builder()
                // every place a match can end, not only the first one found
                .configure(DFA::config().match_kind(MatchKind::All))
                .syntax(syntax::Config::new())
                .thompson(
                    thompson::Config::new()
                        .reverse(reverse)
                        .which_captures(thompson::WhichCaptures::None),
                )
                .build(pattern)
                .map_err(|e| format!("cannot compile the format: {e}"))
        };
        let anchored = |p: &str| {
            Regex::new(&format!("^(?:{p})$")).map_err(|e| format!("cannot compile the format: {e}"))
        };
        Ok(Ambiguous {
            before: anchored(before)?,
            after: anchored(after)?,
            before_dfa: build(before, false)?,
            after_dfa: build(after, true)?,
            number,
            mark: None,
            head: None,
            scratch: std::sync::Mutex::new(None),
        })
    }

    /// Whether the line may be read more than one way (see `mark`).
    fn may_differ(&self, line: &str) -> bool {
        match &self.mark {
            Some((text, times)) => overlapping(line, text, *times) > *times,
            None => true,
        }
    }

    /// The most severe way to read the line, by `rank` of its level: the level's
    /// start and end. `None` when the DFAs give up (the caller reads it the plain way).
    fn most_severe(&self, line: &str, rank: &dyn Fn(&str) -> u32) -> Option<(usize, usize)> {
        let mut guard = self.scratch.try_lock().ok();
        let mut own = None;
        let slot = match guard.as_deref_mut() {
            Some(slot) => slot,
            // another thread reads a line with this format: this one gets its own
            None => &mut own,
        };
        let sc = slot.get_or_insert_with(|| Scratch {
            before: self.before_dfa.create_cache(),
            after: self.after_dfa.create_cache(),
            ends: Vec::new(),
            starts: Vec::new(),
        });
        let bytes = line.as_bytes();
        let n = bytes.len();
        sc.ends.clear();
        sc.ends.resize(n + 1, false);
        sc.starts.clear();
        sc.starts.resize(n + 1, false);
        let start =
            regex_automata::util::start::Config::new().anchored(regex_automata::Anchored::Yes);
        // Matches show one byte late: the state after byte `i` says whether a match
        // ended just before it.
        let dfa = &self.before_dfa;
        let mut s = dfa.start_state(&mut sc.before, &start).ok()?;
        let mut alive = true;
        for (i, &b) in bytes.iter().enumerate() {
            s = dfa.next_state(&mut sc.before, s, b).ok()?;
            if s.is_match() {
                sc.ends[i] = true;
            }
            if s.is_dead() || s.is_quit() {
                alive = false;
                break;
            }
        }
        if alive && dfa.next_eoi_state(&mut sc.before, s).ok()?.is_match() {
            sc.ends[n] = true;
        }
        let dfa = &self.after_dfa;
        let mut s = dfa.start_state(&mut sc.after, &start).ok()?;
        let mut alive = true;
        for i in (0..n).rev() {
            s = dfa.next_state(&mut sc.after, s, bytes[i]).ok()?;
            if s.is_match() {
                sc.starts[i + 1] = true;
            }
            if s.is_dead() || s.is_quit() {
                alive = false;
                break;
            }
        }
        if alive && dfa.next_eoi_state(&mut sc.after, s).ok()?.is_match() {
            sc.starts[0] = true;
        }
        let token = |c: char| {
            if self.number {
                c.is_ascii_digit()
            } else {
                !c.is_whitespace()
            }
        };
        let mut best: Option<(u32, usize, usize)> = None;
        for p in (0..n).filter(|&p| sc.ends[p] && line.is_char_boundary(p)) {
            // The level is as long as it can be (`\S+` is greedy) with the rest of the
            // format after it.
            let mut end = None;
            for (off, c) in line[p..].char_indices() {
                if off >= MAX_LEVEL_LEN || !token(c) {
                    break;
                }
                let q = p + off + c.len_utf8();
                if sc.starts[q] {
                    end = Some(q);
                }
            }
            let Some(q) = end else { continue };
            let r = rank(&line[p..q]);
            // On a tie the first reading stays: the one the plain regex gives.
            if best.is_none_or(|(b, _, _)| r > b) {
                best = Some((r, p, q));
            }
        }
        best.map(|(_, p, q)| (p, q))
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

impl LineFormat {
    /// Compiles a loguru format string such as
    /// `"<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <8}</level> | {extra[request_id]} | {message}"`.
    pub fn from_loguru(format: &str) -> Result<LineFormat, String> {
        let text = strip_markup(format);
        let mut re = String::from("^");
        let mut fields = Vec::new();
        let mut time = TimeSpec::None;
        let mut seen_message = false;
        let mut rest = text.as_str();
        let mut extra_n = 0;
        // Where the level's group starts and ends in `re`, and whether a part anyone
        // may write comes before it.
        let mut level_at: Option<(usize, usize, bool)> = None;
        let mut free_before = false;
        // Where the first part anyone may write starts in `re` (before the level).
        let mut head_end: Option<usize> = None;
        // The format's literal texts, and the one just before the level.
        let mut literals: Vec<String> = vec![String::new()];
        let mut before_level = String::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                re.push_str(&regex::escape("{"));
                literals.last_mut().expect("one").push('{');
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix("}}") {
                re.push_str(&regex::escape("}"));
                literals.last_mut().expect("one").push('}');
                rest = after;
                continue;
            }
            if rest.starts_with('{') {
                if level_at.is_none() {
                    before_level = literals.last().expect("one").clone();
                }
                literals.push(String::new());
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` in `{format}`"))?;
                let token = &rest[1..end];
                rest = &rest[end + 1..];
                let (name, spec) = match token.split_once(':') {
                    Some((n, s)) => (n.trim(), Some(s)),
                    None => (token.trim(), None),
                };
                let padded = spec.is_some_and(|s| {
                    s.trim_start()
                        .starts_with(|c: char| "<>^ ".contains(c) || c.is_ascii_digit())
                });
                let pad = if padded { r"\s*" } else { "" };
                match name {
                    "time" => {
                        // A bare `{time}` is loguru's ISO 8601 (`%Y-%m-%dT%H:%M:%S.%f%z`).
                        let fmt = spec
                            .filter(|s| !s.trim().is_empty())
                            .unwrap_or("YYYY-MM-DD[T]HH:mm:ss.SSSSSSZZ");
                        re.push_str(&time_regex(fmt)?);
                        time = TimeSpec::Parts;
                    }
                    "level" | "level.name" | "level.no" => {
                        if level_at.is_some() {
                            return Err(format!(
                                "the level appears twice (`{{{name}}}` after another `{{level…}}`): keep one"
                            ));
                        }
                        let number = name == "level.no";
                        re.push_str(pad);
                        let start = re.len();
                        re.push_str(if number { r"(?P<level>\d+)" } else { r"(?P<level>\S+)" });
                        level_at.get_or_insert((start, re.len(), number));
                        re.push_str(pad);
                    }
                    "level.icon" => re.push_str(r"\S*"),
                    "name" | "module" => re.push_str(&format!(r"{pad}(?P<logger>[^\s:]*?){pad}")),
                    "function" => re.push_str(&format!(r"{pad}(?P<function>\S*?){pad}")),
                    "line" => re.push_str(&format!(r"{pad}(?P<line>\d+){pad}")),
                    "message" => {
                        if seen_message {
                            return Err("`{message}` appears twice".into());
                        }
                        seen_message = true;
                        free_before |= level_at.is_none();
                        if level_at.is_none() {
                            head_end.get_or_insert(re.len());
                        }
                        re.push_str(r"(?P<message>.*?)");
                    }
                    "process" | "process.id" | "thread" | "thread.id" => re.push_str(&format!(r"{pad}\d+{pad}")),
                    "process.name" | "thread.name" | "file" | "file.name" | "file.path" | "elapsed" => {
                        free_before |= level_at.is_none();
                        if level_at.is_none() {
                            head_end.get_or_insert(re.len());
                        }
                        re.push_str(&format!(r"{pad}.*?{pad}"))
                    }
                    "extra" | "exception" => {
                        free_before |= level_at.is_none();
                        if level_at.is_none() {
                            head_end.get_or_insert(re.len());
                        }
                        re.push_str(r".*?")
                    }
                    n if n.starts_with("extra[") && n.ends_with(']') => {
                        free_before |= level_at.is_none();
                        if level_at.is_none() {
                            head_end.get_or_insert(re.len());
                        }
                        let key = n[6..n.len() - 1].trim_matches(|c| c == '"' || c == '\'');
                        let group = format!("x{extra_n}");
                        extra_n += 1;
                        re.push_str(&format!(r"{pad}(?P<{group}>.*?){pad}"));
                        fields.push((group, key.to_string()));
                    }
                    other => {
                        return Err(format!(
                            "unsupported loguru token `{{{other}}}` (supported: time, level, name, module, function, line, message, process, thread, file, elapsed, extra, extra[key], exception)"
                        ))
                    }
                }
                continue;
            }
            let next = rest.find('{').unwrap_or(rest.len());
            let next = if rest[..next].contains("}}") {
                rest.find("}}").unwrap()
            } else {
                next
            };
            let literal = &rest[..next.max(1)];
            re.push_str(&regex::escape(literal));
            literals.last_mut().expect("one").push_str(literal);
            rest = &rest[literal.len()..];
        }
        if !seen_message {
            return Err("the format has no `{message}`".into());
        }
        re.push('$');
        // `.` takes line breaks too: a header may go on over lines (a value holding a
        // line break), and is then read from its lines joined. A single line has none.
        let regex = Regex::new(&format!("(?s){re}"))
            .map_err(|e| format!("cannot compile the format: {e}"))?;
        let ambiguous = match level_at {
            Some((start, end, number)) if free_before => {
                let mut a = Ambiguous::new(
                    &format!("(?s){}", &re[1..start]),
                    &format!("(?s){}", &re[end..re.len() - 1]),
                    number,
                )?;
                a.head = head_end
                    .map(|end| Regex::new(&format!("^(?:{})", &re[1..end])))
                    .transpose()
                    .map_err(|e| format!("cannot compile the format: {e}"))?;
                if !before_level.is_empty() {
                    let times = literals
                        .iter()
                        .map(|l| overlapping(l, &before_level, usize::MAX))
                        .sum();
                    a.mark = Some((before_level, times));
                }
                Some(std::sync::Arc::new(a))
            }
            _ => None,
        };
        Ok(LineFormat {
            regex,
            time,
            fields,
            ambiguous,
        })
    }

    /// A regex with named groups: `time`, `level`, `message` (required), `logger`,
    /// others kept as fields. `time_format` is a strftime format for `time`; without
    /// it common shapes are tried (RFC 3339, `2026-11-22 10:00:00`, nginx's
    /// `2026/11/22 10:00:00`, `22/Nov/2026:10:00:00 +0000`, unix seconds).
    pub fn from_regex(pattern: &str, time_format: Option<&str>) -> Result<LineFormat, String> {
        let regex = Regex::new(pattern).map_err(|e| format!("not a valid regex: {e}"))?;
        let names: Vec<&str> = regex.capture_names().flatten().collect();
        if !names.contains(&"message") {
            return Err("the regex needs a named group `message`, as in `(?P<message>.*)`".into());
        }
        let known = ["time", "level", "message", "logger", "function", "line"];
        let fields = names
            .iter()
            .filter(|n| !known.contains(n))
            .map(|n| (n.to_string(), n.to_string()))
            .collect();
        let time = if names.contains(&"time") {
            TimeSpec::Text(time_format.map(str::to_string))
        } else {
            TimeSpec::None
        };
        Ok(LineFormat {
            regex,
            time,
            fields,
            ambiguous: None,
        })
    }

    /// Whether a line of this format can be read more than one way (see [`Ambiguous`]):
    /// then a header may also go on over lines.
    pub fn may_read_differently(&self) -> bool {
        self.ambiguous.is_some()
    }

    /// Whether `line`, joined to a header's first lines, may change where its level is
    /// read: it holds the text that comes just before the level (any line may, when
    /// there is none).
    pub fn may_hold_level(&self, line: &str) -> bool {
        match self.ambiguous.as_ref().and_then(|a| a.mark.as_ref()) {
            Some((text, _)) => line.contains(text.as_str()),
            None => true,
        }
    }

    /// Whether `line` starts as a header of this format does, up to its first part
    /// anyone may write: a header split over lines may start there.
    pub fn may_start_header(&self, line: &str) -> bool {
        self.ambiguous
            .as_ref()
            .and_then(|a| a.head.as_ref())
            .is_some_and(|h| h.is_match(line))
    }

    /// Whether a record's first line starts at the very start of `line` (an unanchored
    /// regex may match further on: that is no header here).
    pub fn matches_at_start(&self, line: &str) -> bool {
        self.regex.find(line).is_some_and(|m| m.start() == 0)
    }

    /// Parses a record's first line; `None` for a continuation line. A time written
    /// without an offset is read in `zone`.
    pub fn parse<'a>(&self, line: &'a str, zone: &Zone) -> Option<Header<'a>> {
        self.parse_ranked(line, zone, &|_| 0)
    }

    /// [`LineFormat::parse`]; a line that can be read more than one way is read the
    /// way that gives its level the highest `rank` (see [`Ambiguous`]).
    pub fn parse_ranked<'a>(
        &self,
        line: &'a str,
        zone: &Zone,
        rank: &dyn Fn(&str) -> u32,
    ) -> Option<Header<'a>> {
        let caps = self.regex.captures(line)?;
        if let Some(a) = self.ambiguous.as_ref().filter(|a| a.may_differ(line)) {
            if let Some((p, q)) = a.most_severe(line, rank) {
                if let (Some(b), Some(c)) =
                    (a.before.captures(&line[..p]), a.after.captures(&line[q..]))
                {
                    let time = match self.time {
                        TimeSpec::Parts => {
                            time_from_parts(&b, zone).or_else(|| time_from_parts(&c, zone))
                        }
                        _ => None,
                    };
                    let get = |n: &str| b.name(n).or_else(|| c.name(n)).map(|m| m.as_str());
                    return Some(self.header(time, Some(&line[p..q]), get));
                }
            }
        }
        let get = |n: &str| caps.name(n).map(|m| m.as_str());
        let time = match &self.time {
            TimeSpec::None => None,
            TimeSpec::Parts => time_from_parts(&caps, zone),
            TimeSpec::Text(fmt) => {
                get("time").and_then(|t| parse_time_text(t, fmt.as_deref(), zone))
            }
        };
        Some(self.header(time, get("level"), get))
    }

    fn header<'a>(
        &self,
        time: Option<DateTime<Utc>>,
        level: Option<&'a str>,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Header<'a> {
        Header {
            time,
            time_text: None,
            level: level.map(str::trim),
            logger: get("logger"),
            function: get("function"),
            line: get("line"),
            message: get("message").unwrap_or(""),
            fields: self
                .fields
                .iter()
                .filter_map(|(g, k)| get(g).map(|v| (k.clone(), v)))
                .collect(),
        }
    }
}

/// Removes loguru colour markup: `<green>`, `</green>`, `<level>`, `<lvl>`, `</>`,
/// `<fg #ff0000>`, `<bold>`… (`\<` keeps a literal `<`).
fn strip_markup(format: &str) -> String {
    let tag = Regex::new(r"\\<|</?[a-zA-Z][a-zA-Z0-9 ,#()-]*>|</>").expect("static regex");
    tag.replace_all(format, |c: &regex::Captures| {
        if &c[0] == "\\<" {
            "<".to_string()
        } else {
            String::new()
        }
    })
    .into_owned()
}

/// The regex for a loguru time format (`YYYY-MM-DD HH:mm:ss.SSS`), with `t_*` groups.
fn time_regex(fmt: &str) -> Result<String, String> {
    let fmt = fmt.trim_end_matches("!UTC");
    let mut re = String::new();
    let mut rest = fmt;
    let tokens: &[(&str, &str)] = &[
        ("YYYY", r"(?P<t_Y>[0-9]{4})"),
        ("YY", r"(?P<t_y>[0-9]{2})"),
        ("MMMM", r"(?P<t_b>[A-Za-z]+)"),
        ("MMM", r"(?P<t_b>[A-Za-z]{3})"),
        ("MM", r"(?P<t_m>[0-9]{2})"),
        ("M", r"(?P<t_m>[0-9]{1,2})"),
        ("DD", r"(?P<t_d>[0-9]{2})"),
        ("D", r"(?P<t_d>[0-9]{1,2})"),
        ("dddd", r"[A-Za-z]+"),
        ("ddd", r"[A-Za-z]{3}"),
        ("HH", r"(?P<t_H>[0-9]{2})"),
        ("H", r"(?P<t_H>[0-9]{1,2})"),
        ("hh", r"(?P<t_I>[0-9]{2})"),
        ("h", r"(?P<t_I>[0-9]{1,2})"),
        ("mm", r"(?P<t_M>[0-9]{2})"),
        ("m", r"(?P<t_M>[0-9]{1,2})"),
        ("ss", r"(?P<t_S>[0-9]{2})"),
        ("s", r"(?P<t_S>[0-9]{1,2})"),
        ("A", r"(?P<t_p>AM|PM|am|pm)"),
        ("ZZ", r"(?P<t_z>[+-][0-9]{4})"),
        ("Z", r"(?P<t_z>[+-][0-9]{2}:[0-9]{2})"),
        ("zz", r"[A-Za-z]*"),
        ("X", r"(?P<t_X>[0-9]+(?:\.[0-9]+)?)"),
    ];
    'outer: while !rest.is_empty() {
        if rest.starts_with('[') {
            let end = rest.find(']').ok_or("unclosed `[` in the time format")?;
            re.push_str(&regex::escape(&rest[1..end]));
            rest = &rest[end + 1..];
            continue;
        }
        if rest.starts_with('S') {
            let n = rest.chars().take_while(|&c| c == 'S').count();
            re.push_str(&format!(r"(?P<t_f>[0-9]{{{n}}})"));
            rest = &rest[n..];
            continue;
        }
        for (tok, r) in tokens {
            if let Some(after) = rest.strip_prefix(tok) {
                re.push_str(r);
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        if c.is_ascii_alphabetic() {
            let word: String = rest.chars().take_while(|x| *x == c).collect();
            return Err(format!("unsupported loguru time token `{word}` in `{fmt}`"));
        }
        re.push_str(&regex::escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    Ok(re)
}

fn time_from_parts(c: &regex::Captures, zone: &Zone) -> Option<DateTime<Utc>> {
    let num = |n: &str| c.name(n).and_then(|m| m.as_str().parse::<u32>().ok());
    if let Some(x) = c.name("t_X") {
        let secs: f64 = x.as_str().parse().ok()?;
        return DateTime::from_timestamp(
            (secs * 1000.0) as i64 / 1000,
            ((secs.fract()) * 1e9) as u32,
        );
    }
    let year = num("t_Y")
        .map(|y| y as i32)
        .or_else(|| num("t_y").map(|y| 2000 + y as i32))?;
    let month = num("t_m").or_else(|| {
        let b = c.name("t_b")?.as_str().to_ascii_lowercase();
        MONTHS
            .iter()
            .position(|m| b.starts_with(m))
            .map(|i| i as u32 + 1)
    })?;
    let day = num("t_d")?;
    let mut hour = num("t_H").or_else(|| num("t_I")).unwrap_or(0);
    if let Some(p) = c.name("t_p") {
        let pm = p.as_str().eq_ignore_ascii_case("pm");
        hour = (hour % 12) + if pm { 12 } else { 0 };
    }
    let minute = num("t_M").unwrap_or(0);
    let second = num("t_S").unwrap_or(0);
    let nanos = c
        .name("t_f")
        .map(|f| {
            let s = f.as_str();
            let v: u64 = s.parse().unwrap_or(0);
            (v * 10u64.pow(9 - s.len().min(9) as u32)) as u32
        })
        .unwrap_or(0);
    let naive =
        NaiveDate::from_ymd_opt(year, month, day)?.and_hms_nano_opt(hour, minute, second, nanos)?;
    let offset_secs = match c.name("t_z") {
        Some(z) => {
            let z = z.as_str().replace(':', "");
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hh = z.get(1..3)?.parse::<i32>().ok()?;
            let mm = z.get(3..5)?.parse::<i32>().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
        None => return zone.to_utc(naive),
    };
    Some(naive.and_utc() - chrono::Duration::seconds(offset_secs as i64))
}

/// Parses a time in one of the common shapes, or with the given strftime format; one
/// without an offset is read in `zone`.
pub fn parse_time_text(text: &str, format: Option<&str>, zone: &Zone) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Some(f) = format {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt.with_timezone(&Utc));
        }
        return NaiveDateTime::parse_from_str(t, f)
            .ok()
            .and_then(|n| zone.to_utc(n));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.with_timezone(&Utc));
    }
    for f in [
        "%d/%b/%Y:%H:%M:%S %z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return zone.to_utc(n);
        }
    }
    if let Ok(secs) = t.parse::<f64>() {
        return time_from_number(secs);
    }
    None
}

/// A unix time in seconds, milliseconds or microseconds (told apart by magnitude).
pub fn time_from_number(v: f64) -> Option<DateTime<Utc>> {
    let secs = if v > 1e14 {
        v / 1e6
    } else if v > 1e11 {
        v / 1e3
    } else {
        v
    };
    Utc.timestamp_opt(secs.floor() as i64, (secs.fract() * 1e9) as u32)
        .single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loguru_default_format_compiles_and_parses() {
        let f = LineFormat::from_loguru(
            "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | <cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - <level>{message}</level>",
        )
        .unwrap();
        let h = f
            .parse(
                "2026-11-22 09:50:45.492 | WARNING  | app.db:query:7 - Slow query - 1532 ms",
                &Zone::UTC,
            )
            .unwrap();
        assert_eq!(h.level, Some("WARNING"));
        assert_eq!(h.logger, Some("app.db"));
        assert_eq!(h.message, "Slow query - 1532 ms");
        assert_eq!(
            h.time.unwrap().to_rfc3339(),
            "2026-11-22T09:50:45.492+00:00"
        );
    }

    #[test]
    fn custom_format_with_extra() {
        let f = LineFormat::from_loguru(
            "{time:YYYY-MM-DD HH:mm:ss} | {level} | {extra[request_id]} | {message}",
        )
        .unwrap();
        let h = f
            .parse(
                "2026-11-22 10:00:00 | ERROR | req-42 | boom | bang",
                &Zone::UTC,
            )
            .unwrap();
        assert_eq!(h.level, Some("ERROR"));
        assert_eq!(h.fields, vec![("request_id".to_string(), "req-42")]);
        assert_eq!(h.message, "boom | bang");
        assert!(f
            .parse("Traceback (most recent call last):", &Zone::UTC)
            .is_none());
    }

    /// Level numbers as loguru's: a name not known is below every known one.
    fn rank(l: &str) -> u32 {
        match l {
            "CRITICAL" => 50,
            "ERROR" => 40,
            "WARNING" => 30,
            "INFO" => 20,
            "DEBUG" => 10,
            _ => 0,
        }
    }

    #[test]
    fn a_line_read_more_than_one_way_is_read_with_its_most_severe_level() {
        let f = LineFormat::from_loguru(
            "{time:YYYY-MM-DD HH:mm:ss} | {extra[client]} | {level: <8} | {name}:{function}:{line} - {message}",
        )
        .unwrap();
        assert!(f.ambiguous.is_some());
        let line = "2026-11-22 10:00:00 | evil | INFO     | x:y:1 - hi | ERROR    | app.db:query:42 - boom | it";
        // the plain regex reads it at the first place that fits
        assert_eq!(f.parse(line, &Zone::UTC).unwrap().level, Some("INFO"));
        let h = f.parse_ranked(line, &Zone::UTC, &rank).unwrap();
        assert_eq!(h.level, Some("ERROR"));
        assert_eq!(h.logger, Some("app.db"));
        assert_eq!(h.function, Some("query"));
        assert_eq!(h.line, Some("42"));
        assert_eq!(h.message, "boom | it");
        assert_eq!(
            h.fields,
            vec![("client".to_string(), "evil | INFO     | x:y:1 - hi")]
        );
        assert!(h.time.is_some());
        // thousands of places to read it, each valid: still the ERROR, read once each way
        let many = format!(
            "2026-11-22 10:00:00 | evil{} | ERROR    | app.db:query:42 - boom{}",
            " | DEBUG | x:y:1 - hi".repeat(5000),
            " | INFO | x:y:1 - hi".repeat(5000)
        );
        let h = f.parse_ranked(&many, &Zone::UTC, &rank).unwrap();
        assert_eq!(h.level, Some("ERROR"));
        assert!(h.message.starts_with("boom | INFO"), "{}", &h.message[..40]);
        // one way only: as the plain regex reads it
        let plain = "2026-11-22 10:00:00 | 203.0.113.9 | WARNING  | app:f:1 - slow | 3 s";
        assert_eq!(
            f.parse_ranked(plain, &Zone::UTC, &rank),
            f.parse(plain, &Zone::UTC)
        );
        // a message holding the separator is read every way too
        assert_eq!(f.ambiguous.as_ref().unwrap().mark, Some((" | ".into(), 3)));
        let sep = "2026-11-22 10:00:00 | evil | INFO | x:y:1 - a | ERROR | app:f:1 - b | c";
        assert_eq!(
            f.parse_ranked(sep, &Zone::UTC, &rank).unwrap().level,
            Some("ERROR")
        );
        // a literal that overlaps itself: every occurrence counts
        let f = LineFormat::from_loguru("{time:YYYY-MM-DD HH:mm:ss} {extra[c]}||{level} {message}")
            .unwrap();
        let h = f
            .parse_ranked("2026-11-22 10:00:00 a|||INFO x||ERROR m", &Zone::UTC, &rank)
            .unwrap();
        assert_eq!((h.level, h.message), (Some("ERROR"), "m"));
        // a format with nothing free before its level has nothing to choose
        let f = LineFormat::from_loguru("{time} | {level} | {extra[x]} | {message}").unwrap();
        assert!(f.ambiguous.is_none());
    }

    #[test]
    fn the_level_after_the_message_or_by_number_is_read_the_same_way() {
        let f = LineFormat::from_loguru("{time:YYYY-MM-DD HH:mm:ss} {message} [{level}]").unwrap();
        let h = f
            .parse_ranked(
                "2026-11-22 10:00:00 disk full [INFO] maybe [CRITICAL]",
                &Zone::UTC,
                &rank,
            )
            .unwrap();
        assert_eq!(h.level, Some("CRITICAL"));
        assert_eq!(h.message, "disk full [INFO] maybe");
        let f = LineFormat::from_loguru("{time:YYYY-MM-DD HH:mm:ss} {file} {level.no} {message}")
            .unwrap();
        let by_number = |l: &str| l.parse().unwrap_or(0);
        let h = f
            .parse_ranked("2026-11-22 10:00:00 a 20 b 40 c", &Zone::UTC, &by_number)
            .unwrap();
        assert_eq!(h.level, Some("40"));
        assert_eq!(h.message, "c");
    }

    #[test]
    fn a_bare_time_is_loguru_iso_8601_and_one_level_token_is_allowed() {
        let f = LineFormat::from_loguru("{time} | {level} | {message}").unwrap();
        let h = f
            .parse("2026-12-03T07:54:53.087106+0100 | ERROR | down", &Zone::UTC)
            .unwrap();
        assert_eq!(h.level, Some("ERROR"));
        assert_eq!(
            h.time.unwrap().to_rfc3339(),
            "2026-12-03T06:54:53.087106+00:00"
        );
        let e = LineFormat::from_loguru("{time} {level.no} {level} {message}").unwrap_err();
        assert!(e.contains("the level appears twice"), "{e}");
    }

    #[test]
    fn unsupported_tokens_are_named() {
        let e = LineFormat::from_loguru("{time} {colour} {message}").unwrap_err();
        assert!(e.contains("`{colour}`"), "{e}");
        let e = LineFormat::from_loguru("{time:Do MMM} {message}").unwrap_err();
        assert!(e.contains("`Do`") || e.contains("`D"), "{e}");
    }

    #[test]
    fn offsets_and_ampm() {
        let f = LineFormat::from_loguru("{time:YYYY-MM-DD hh:mm:ss A Z} {message}").unwrap();
        let h = f
            .parse("2026-11-22 01:00:00 PM +02:00 hi", &Zone::UTC)
            .unwrap();
        assert_eq!(h.time.unwrap().to_rfc3339(), "2026-11-22T11:00:00+00:00");
    }

    #[test]
    fn non_ascii_digits_in_a_time_are_not_a_header() {
        // `\d` is Unicode-aware: Devanagari digits (three bytes each) used to reach the
        // offset's byte slicing and panic, stopping the whole run on one stranger's line.
        let f = LineFormat::from_loguru("{time:YYYY-MM-DD HH:mm:ss.SSS Z} | {message}").unwrap();
        assert!(f
            .parse(
                "2026-11-22 01:00:00.000 +\u{966}\u{968}:\u{966}\u{966} | hi",
                &Zone::UTC
            )
            .is_none());
        assert!(f
            .parse(
                "\u{968}\u{966}\u{968}\u{96c}-11-22 01:00:00.000 +02:00 | hi",
                &Zone::UTC
            )
            .is_none());
        let h = f
            .parse("2026-11-22 01:00:00.000 +02:00 | hi", &Zone::UTC)
            .unwrap();
        assert_eq!(h.time.unwrap().to_rfc3339(), "2026-11-21T23:00:00+00:00");
        let f = LineFormat::from_loguru("{time:X} {message}").unwrap();
        assert!(f.parse("\u{968}\u{966}.\u{968} hi", &Zone::UTC).is_none());
    }

    #[test]
    fn regex_formats_keep_other_groups_as_fields() {
        let f = LineFormat::from_regex(
            r"^(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#\d+: (?P<message>.*)$",
            None,
        )
        .unwrap();
        let h = f
            .parse(
                "2026/11/22 10:00:00 [error] 1234#0: *5 connect() failed",
                &Zone::UTC,
            )
            .unwrap();
        assert_eq!(h.level, Some("error"));
        assert_eq!(h.fields, vec![("pid".to_string(), "1234")]);
        assert_eq!(h.time.unwrap().to_rfc3339(), "2026-11-22T10:00:00+00:00");
        assert!(LineFormat::from_regex("(?P<msg>.*)", None).is_err());
    }
}
