//! Configuration, in two stages: [`raw`] is a serde mirror of the TOML file, and
//! [`Config`] is the validated, compiled form the rest of the program uses. Every
//! problem is reported with its key, all of them at once.

pub mod actions;
pub mod escalate;
pub mod incidents;
mod investigator;
mod metrics;
pub mod ntfy;
pub mod raw;

pub use actions::{ActionDef, ActionsConfig};
pub use escalate::{EscalateRule, EscalationConfig};
pub use incidents::IncidentsConfig;
pub use investigator::{AnthropicApiConfig, LlmConfig, RedactConfig};
pub use metrics::{CheckConfig, MetricsConfig, RuleConfig, RuleTest};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration;
use crate::source::Level;

/// Where the config is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/logwarden/logwarden.toml";
/// The environment variable naming the config file.
pub const ENV_VAR: &str = "LOGWARDEN_CONFIG";

/// `--config` given before the command (`logwarden --config F run`), set once at start.
static FLAG_BEFORE_COMMAND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Records `--config` given before the command name: [`locate`] uses it when the
/// command has none of its own.
pub fn set_flag_before_command(path: PathBuf) {
    let _ = FLAG_BEFORE_COMMAND.set(path);
}

/// Resolves which config file to use: the flag (after the command, else before it),
/// then the environment, then the default.
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag.or(FLAG_BEFORE_COMMAND.get().map(PathBuf::as_path)) {
        return p.to_path_buf();
    }
    match std::env::var_os(ENV_VAR) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// One problem in a config file, with the key it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// All the problems found in a config file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} has {} problem{}:",
            self.path.display(),
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            if e.key.is_empty() {
                writeln!(f, "  - {}", e.message)?;
            } else {
                writeln!(f, "  - `{}`: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub incidents_dir: PathBuf,
    pub ignore_file: PathBuf,
    pub prompts_dir: PathBuf,
    pub hostname: String,
    pub renotify_after: Duration,
    /// A run stops starting investigations past this, and a run holding the lock
    /// longer than this is reported as stuck by the next one.
    pub run_deadline: Duration,
    pub sources: Vec<SourceConfig>,
    pub investigator: InvestigatorConfig,
    /// Evidence, budgets and safety settings of the LLM backends.
    pub llm: LlmConfig,
    pub redact: RedactConfig,
    pub ntfy: Option<NtfyConfig>,
    /// A node_exporter textfile written after each run, when set.
    pub metrics_textfile: Option<PathBuf>,
    /// Metric scripts and checks (`[metrics]`, `[[check]]`).
    pub metrics: MetricsConfig,
    /// Incident lifecycle, nag, spikes, briefing (`[incidents]`).
    pub incidents: IncidentsConfig,
    /// `[[escalate]]` rules, the built-in ones and the noise threshold (`[escalation]`).
    pub escalation: EscalationConfig,
    /// `[[action]]`, the allow-list of repairs, and `[actions]`.
    pub actions: ActionsConfig,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub from: StartFrom,
    pub min_level: Level,
    /// Extra level names (custom loguru levels) and their numbers.
    pub levels: BTreeMap<String, u32>,
    /// The severity of an incident by the level of its records: each entry holds from
    /// its level up to the next; below the lowest, `info`. Sorted by level number.
    pub severity: Vec<SeverityAt>,
    /// Where log times written without an offset are read: `timezone`, else the host's
    /// local time for files (loguru writes local time), UTC for SQLite (its
    /// CURRENT_TIMESTAMP is UTC).
    pub timezone: crate::source::zone::Zone,
}

/// From this level up (to the next entry), incidents have this severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityAt {
    pub level: Level,
    pub severity: String,
}

/// The default mapping: what an on-call person expects. An ERROR (a traceback) pages
/// like a CRITICAL: `critical` is the severity quiet hours never hold. A WARNING is a
/// `warning`; anything kept below that is `info`.
pub const DEFAULT_SEVERITY: &[(&str, &str)] = &[
    ("WARNING", "warning"),
    ("ERROR", "critical"),
    ("CRITICAL", "critical"),
];

impl SourceConfig {
    /// The severity of an incident whose records reach this level number.
    pub fn severity_of(&self, level_no: u32) -> &str {
        self.severity
            .iter()
            .rev()
            .find(|s| s.level.no <= level_no)
            .map(|s| s.severity.as_str())
            .unwrap_or("info")
    }
}

/// What a source reads and how.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// Log files: one path or a glob.
    File(FileSource),
    /// A log table in an app's SQLite database.
    Sqlite(SqliteSource),
    /// The systemd journal, through `journalctl`.
    Journald(JournaldSource),
}

#[derive(Debug, Clone)]
pub struct FileSource {
    /// A path, or a glob (`/var/log/app/*.log`).
    pub path: PathBuf,
    pub parser: ParserSpec,
    /// A file that vanished is forgotten after this long.
    pub forget_after: Duration,
    /// `settle`: when set, the last record of a file is held until the file has been
    /// quiet this long (0: never held); unset, only a record whose traceback has not
    /// reached its exception line yet is held (see `source::file`).
    pub settle: Option<Duration>,
    /// logwarden's own state, pages, config and rules: a log path (a symlink, a glob)
    /// that leads into them is not read, or its secrets (the control key, tokens) would
    /// go to the investigator and the phone as "log lines".
    pub own: Vec<PathBuf>,
}

/// How the lines of a file become records.
#[derive(Debug, Clone)]
pub enum ParserSpec {
    /// loguru's default text format.
    LoguruDefault,
    /// A loguru format string or a regex, compiled.
    Line {
        format: std::sync::Arc<crate::source::format::LineFormat>,
        default_level: Option<String>,
    },
    /// loguru's `serialize=True` JSON lines.
    LoguruJson,
}

#[derive(Debug, Clone)]
pub struct SqliteSource {
    pub path: PathBuf,
    /// The query, with a `:cursor` parameter, returning the columns named as below.
    pub query: String,
    pub columns: SqliteColumns,
    pub busy_timeout: Duration,
    /// logwarden's own files and folders, as for a file source: a database path that
    /// leads into them (a symlink the app could plant) is not read.
    pub own: Vec<PathBuf>,
}

/// Result column names of a SQLite source's query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqliteColumns {
    pub cursor: String,
    pub time: Option<String>,
    pub level: Option<String>,
    pub message: String,
    pub logger: Option<String>,
    pub exception: Option<String>,
    pub traceback: Option<String>,
    pub extra: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JournaldSource {
    pub command: String,
    pub units: Vec<String>,
    pub identifiers: Vec<String>,
}

impl SourceConfig {
    /// The kind's name as written in the config.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            SourceKind::File(f) => match f.parser {
                ParserSpec::LoguruDefault => "loguru",
                ParserSpec::Line {
                    ref default_level, ..
                } if default_level.is_some() => "text",
                ParserSpec::Line { .. } => "loguru",
                ParserSpec::LoguruJson => "loguru-json",
            },
            SourceKind::Sqlite(_) => "sqlite",
            SourceKind::Journald(_) => "journald",
        }
    }

    /// The file or database read, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            SourceKind::File(f) => Some(&f.path),
            SourceKind::Sqlite(s) => Some(&s.path),
            SourceKind::Journald(_) => None,
        }
    }

    /// What the source reads, apart from its name: two sources with the same identity
    /// read the same records, so one's read positions are the other's. A source renamed
    /// in the config carries on from where its old name stopped (see `pipeline`).
    pub fn identity(&self) -> String {
        match &self.kind {
            SourceKind::File(f) => format!("file\n{}", f.path.display()),
            SourceKind::Sqlite(s) => format!("sqlite\n{}\n{}", s.path.display(), s.query),
            SourceKind::Journald(j) => {
                let mut units = j.units.clone();
                units.sort();
                let mut ids = j.identifiers.clone();
                ids.sort();
                format!("journald\n{}\n{}", units.join("\n"), ids.join("\n"))
            }
        }
    }
}

/// Where reading starts on the first run over an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Start,
    End,
}

#[derive(Debug, Clone)]
pub enum InvestigatorConfig {
    None,
    ClaudeCli(ClaudeCliConfig),
    AnthropicApi(AnthropicApiConfig),
}

#[derive(Debug, Clone)]
pub struct ClaudeCliConfig {
    pub command: String,
    pub model: String,
    pub timeout: Duration,
    pub max_turns: u32,
    pub extra_args: Vec<String>,
    /// `--max-budget-usd` per investigation (when the installed CLI knows it).
    pub max_budget_usd: Option<f64>,
    /// Environment variables passed through to the CLI beyond the built-in list.
    pub pass_env: Vec<String>,
    /// Environment variables set for the CLI.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct NtfyConfig {
    pub server: String,
    pub topic: String,
    pub token: Option<Secret>,
    pub timeout: Duration,
    /// Actions, click URL, Basic auth, retries, quiet hours, hourly cap
    /// (validated in `config/ntfy.rs`).
    pub more: ntfy::NtfyMore,
}

/// Where a secret comes from. The value itself is read only when needed and never printed.
#[derive(Debug, Clone)]
pub enum Secret {
    File(PathBuf),
    Env(String),
}

impl Secret {
    pub fn read(&self) -> Result<String, String> {
        match self {
            Secret::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("cannot read token file {}: {e}", p.display())),
            Secret::Env(name) => std::env::var(name)
                .map(|s| s.trim().to_string())
                .map_err(|_| format!("environment variable {name} is not set")),
        }
    }
}

/// Rounds of [`type_errors`]: each blanks at least one entry and reads the text again.
const MAX_TYPE_ERRORS: usize = 200;

/// Every value of the wrong type (or table of the wrong shape) in `text`, not only
/// the first that serde stops at: each offending `key = value` is blanked out, spaces
/// for its characters so the lines keep their numbers, and the text read again. (A
/// syntax error comes alone: the toml crate reads the whole document before typing
/// it.) Each message is the toml crate's: line, column, the line itself and a caret.
fn type_errors(original: &str, first: toml::de::Error) -> Vec<ConfigError> {
    let mut text = original.to_string();
    let mut errors = Vec::new();
    let mut blanked: Vec<std::ops::Range<usize>> = Vec::new();
    let mut e = first;
    // Each round blanks at least one entry and reads the text again: the bound keeps a
    // file of thousands of bad values from taking minutes, and is said when reached.
    for round in 0.. {
        if round == MAX_TYPE_ERRORS {
            errors.push(ConfigError {
                key: String::new(),
                message: format!(
                    "stopped after {MAX_TYPE_ERRORS} values of the wrong type; fix these and run `logwarden check` again for the rest"
                ),
            });
            break;
        }
        let span = e.span();
        // A table left without a key that was blanked (`missing field`) is a
        // consequence of an error already reported, not a problem of its own.
        let consequence = span
            .as_ref()
            .is_some_and(|s| blanked.iter().any(|b| encloses(s, b)));
        if !consequence {
            errors.push(ConfigError {
                key: String::new(),
                message: match &span {
                    Some(s) => located(original, s.clone(), e.message()),
                    None => e.to_string().trim_end().to_string(),
                },
            });
        }
        let Some(range) = span.and_then(|s| entry_around(&text, s)) else {
            break;
        };
        if text[range.clone()].trim().is_empty() {
            break;
        }
        // A space per byte keeps every later offset where it was in the file.
        let spaces: String = text[range.clone()]
            .chars()
            .map(|c| {
                if c == '\n' {
                    "\n".to_string()
                } else {
                    " ".repeat(c.len_utf8())
                }
            })
            .collect();
        let start = range.start;
        text.replace_range(range, &spaces);
        blanked.push(start..start + spaces.len());
        match toml::from_str::<raw::RawConfig>(&text) {
            Ok(_) => break,
            Err(next) => e = next,
        }
    }
    errors
}

/// `message` placed at `span` of the file as written, the way the toml crate shows its
/// errors (line, column, the line and a caret), not on the partly blanked text.
fn located(text: &str, span: std::ops::Range<usize>, message: &str) -> String {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let width = text[start..span.end.clamp(start, line_end)]
        .chars()
        .count()
        .max(1);
    let gutter = " ".repeat(line.to_string().len());
    format!(
        "TOML parse error at line {line}, column {column}\n{gutter} |\n{line} | {}\n{gutter} | {}{}\n{}",
        &text[line_start..line_end],
        " ".repeat(column - 1),
        "^".repeat(width),
        message.trim_end()
    )
}

fn encloses(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The byte range of the `key = value` (or whole table) of `text` that holds `span`:
/// what can be removed with the rest still valid TOML. `None` when the text does not
/// parse (a syntax error) or no entry holds the span.
fn entry_around(text: &str, span: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    fn within(
        text: &str,
        t: &toml_edit::Table,
        span: &std::ops::Range<usize>,
    ) -> Option<std::ops::Range<usize>> {
        let holds = |r: &std::ops::Range<usize>| encloses(r, span);
        for (k, item) in t.iter() {
            let key = t.key(k).and_then(|k| k.span());
            match item {
                toml_edit::Item::Value(v) => {
                    if let (Some(ks), Some(vs)) = (key, v.span()) {
                        // The key's span is its last part: a dotted key
                        // (`investigator.kind = 1`) is blanked from the line's start,
                        // or its first parts would be left as a syntax error.
                        let line = text[..ks.start].rfind('\n').map_or(0, |i| i + 1);
                        let before = &text[line..ks.start];
                        let start = if before.trim_end().ends_with('.')
                            && !before.contains(['{', ',', '=', '['])
                        {
                            line
                        } else {
                            ks.start
                        };
                        let whole = start.min(vs.start)..vs.end;
                        if holds(&whole) {
                            return Some(inner_entry(text, v, span).unwrap_or(whole));
                        }
                    }
                }
                toml_edit::Item::Table(sub) => {
                    if let Some(r) = within(text, sub, span) {
                        return Some(r);
                    }
                    if let Some(ts) = sub.span().filter(|s| holds(s)) {
                        return Some(ts);
                    }
                }
                toml_edit::Item::ArrayOfTables(a) => {
                    for sub in a.iter() {
                        if let Some(r) = within(text, sub, span) {
                            return Some(r);
                        }
                        if let Some(ts) = sub.span().filter(|s| holds(s)) {
                            return Some(ts);
                        }
                    }
                }
                toml_edit::Item::None => {}
            }
        }
        None
    }
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    within(text, doc.as_table(), &span)
}

/// Inside an inline table or array, the element that holds `span` with one comma
/// next to it, so that blanking it leaves the other elements to be checked: with
/// `{ ERROR = "x", WARNING = "y" }` both are reported, not only the first. `None` when
/// the span is the whole value, or no comma can be found beside the element (its only
/// element, or a comment in the way): the whole entry is blanked then.
fn inner_entry(
    text: &str,
    v: &toml_edit::Value,
    span: &std::ops::Range<usize>,
) -> Option<std::ops::Range<usize>> {
    let holds = |r: &std::ops::Range<usize>| encloses(r, span);
    let element = match v {
        toml_edit::Value::InlineTable(t) => t.iter().find_map(|(k, _)| {
            let (key, val) = t.get_key_value(k)?;
            let val = val.as_value()?;
            let r = key.span()?.start..val.span()?.end;
            holds(&r).then_some((r, val))
        }),
        toml_edit::Value::Array(a) => a
            .iter()
            .find_map(|val| val.span().filter(|r| holds(r)).map(|r| (r, val))),
        _ => None,
    };
    let (r, val) = element?;
    if let Some(inner) = inner_entry(text, val, span) {
        return Some(inner);
    }
    let after = text[r.end..].len() - text[r.end..].trim_start().len();
    if text[r.end + after..].starts_with(',') {
        return Some(r.start..r.end + after + 1);
    }
    let before = text[..r.start].trim_end();
    before.ends_with(',').then(|| before.len() - 1..r.end)
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![ConfigError {
                key: String::new(),
                message: format!("cannot read the config file: {e}"),
            }],
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; relative paths are relative to the file's folder.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            path: path.to_path_buf(),
            errors,
        };
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| fail(type_errors(text, e)))?;
        // Every path is made absolute here, once: the process later runs children in
        // other folders (the investigator's scratch dir), where a path relative to the
        // cwd of `logwarden --config ../x.toml` would name something else.
        let path = &absolute(path);
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("/"),
        };
        let mut v = Validator {
            errors: Vec::new(),
            base,
        };
        let config = v.compile(raw, path);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            let doc = toml_edit::ImDocument::parse(text).ok();
            for e in &mut v.errors {
                if let Some(line) = doc
                    .as_ref()
                    .and_then(|d| key_line(text, d.as_table(), &e.key))
                {
                    e.message = format!("{} (line {line})", e.message);
                }
            }
            Err(fail(v.errors))
        }
    }

    /// The path of the state database.
    pub fn database_path(&self) -> PathBuf {
        self.state_dir.join("logwarden.db")
    }

    /// Rules the service writes itself (Mute from the phone): in the state folder, the
    /// one place the installed unit lets it write. Same format as the ignore file.
    pub fn mutes_file(&self) -> PathBuf {
        self.state_dir.join("mutes.toml")
    }

    /// Every rules file, the ignore file first.
    pub fn rule_files(&self) -> [PathBuf; 2] {
        [self.ignore_file.clone(), self.mutes_file()]
    }

    /// Where a rule added from the shell goes: the ignore file, which a new one makes
    /// with the config file's owner, group and mode (0640 root:logwarden after the
    /// package's install), numbered ids unique across both files.
    pub fn ignore_target<'a>(&'a self, others: &'a [&'a Path]) -> crate::ignore::Target<'a> {
        crate::ignore::Target {
            path: &self.ignore_file,
            others,
            new_file: crate::fsio::NewFile::Like(&self.path),
            id_prefix: "",
        }
    }
}

/// `p` made absolute against the current directory (normalised, links not resolved).
fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        normalize(p)
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        normalize(&cwd.join(p))
    }
}

/// Removes `.` and `name/..` from a path without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// The line of a config key named like the validator names them (`ntfy.topic`,
/// `source[0].min_level`): the key's own line, else the line of the nearest table
/// that holds it (a missing key is reported at its table).
fn key_line(text: &str, root: &toml_edit::Table, key: &str) -> Option<usize> {
    let mut best = None;
    let mut table: Option<&dyn toml_edit::TableLike> = Some(root);
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(t) = table else { break };
        let Some((k, item)) = t.get_key_value(name) else {
            break;
        };
        if let Some(span) = k.span() {
            best = Some(span.start);
        }
        table = match (item, index) {
            (toml_edit::Item::ArrayOfTables(a), Some(i)) => a.get(i).map(|t| {
                if let Some(span) = t.span() {
                    best = Some(span.start);
                }
                t as &dyn toml_edit::TableLike
            }),
            (toml_edit::Item::Value(toml_edit::Value::Array(a)), Some(i)) => {
                a.get(i).and_then(|v| {
                    if let Some(span) = v.span() {
                        best = Some(span.start);
                    }
                    v.as_inline_table().map(|t| t as &dyn toml_edit::TableLike)
                })
            }
            (item, None) => item.as_table_like(),
            _ => None,
        };
    }
    best.map(|offset| line_of(text, offset))
}

/// The 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Validator {
    errors: Vec<ConfigError>,
    base: PathBuf,
}

impl Validator {
    fn err(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    /// An http(s) base URL, without its trailing `/`. One with a user name or password
    /// in it (`https://user:pw@host`) is refused: the URL is shown by `check`, `status`
    /// and every error about the server, and stored with what was sent; `how` says
    /// where the credentials go instead. Neither error repeats the credentials.
    fn http_url(&mut self, key: &str, url: &str, how: &str) -> Option<String> {
        let shown = crate::redact::url_userinfo(url);
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.err(key, format!("`{shown}` is not an http(s) URL"));
            return None;
        }
        if crate::redact::has_userinfo(url) {
            self.err(
                key,
                format!(
                    "`{shown}` has a user name or password in it, which would be shown \
                     wherever the URL is (check, status, errors): write the URL without \
                     them, and {how}"
                ),
            );
            return None;
        }
        Some(url.trim_end_matches('/').to_string())
    }

    fn unknown(&mut self, prefix: &str, extra: &BTreeMap<String, toml::Value>, known: &[&str]) {
        for k in extra.keys() {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            self.err(
                key,
                format!("unknown key (expected one of: {})", known.join(", ")),
            );
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            normalize(p)
        } else {
            normalize(&self.base.join(p))
        }
    }

    /// A command: a bare name is looked up in `PATH` when run; one with a `/` is a
    /// path, relative to the config file's folder like every other path.
    fn command(&self, c: String) -> String {
        if c.contains('/') {
            self.path(&c).display().to_string()
        } else {
            c
        }
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(s) => match duration::parse(s) {
                Ok(d) => d,
                Err(e) => {
                    self.err(
                        key,
                        format!("{e}; expected a duration like \"90s\", \"15m\", \"7d\""),
                    );
                    default
                }
            },
        }
    }

    fn compile(&mut self, raw: raw::RawConfig, path: &Path) -> Config {
        self.unknown("", &raw.extra, raw::RawConfig::KEYS);
        let state_dir = self.path(raw.state_dir.as_deref().unwrap_or("/var/lib/logwarden"));
        let incidents_dir = match raw.incidents_dir.as_deref() {
            Some(p) => self.path(p),
            None => state_dir.join("incidents"),
        };
        let ignore_file = self.path(
            raw.ignore_file
                .as_deref()
                .unwrap_or("/etc/logwarden/ignore.toml"),
        );
        let prompts_dir = match raw.prompts_dir.as_deref() {
            Some(p) => self.path(p),
            None => default_prompts_dir(),
        };
        let hostname = match raw.hostname {
            Some(h) if h.trim().is_empty() => {
                self.err(
                    "hostname",
                    "must not be empty (leave it out to use the system's)",
                );
                String::new()
            }
            Some(h) => h,
            None => system_hostname(),
        };
        let renotify_after = self.duration(
            "renotify_after",
            raw.renotify_after.as_deref(),
            Duration::from_secs(7 * 86_400),
        );
        // Well under the timer's default 5-minute interval.
        let run_deadline = self.duration(
            "run_deadline",
            raw.run_deadline.as_deref(),
            Duration::from_secs(4 * 60),
        );

        let mut sources = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        if raw.source.is_empty() {
            self.err(
                "source",
                "no [[source]] is configured: add at least one log to watch",
            );
        }
        for (i, s) in raw.source.into_iter().enumerate() {
            let prefix = format!("source[{i}]");
            if let Some(src) = self.source(&prefix, s) {
                if !names.insert(src.name.clone()) {
                    self.err(
                        format!("{prefix}.name"),
                        format!(
                            "`{}` is used by two sources; names must be unique",
                            src.name
                        ),
                    );
                }
                sources.push(src);
            }
        }

        let (investigator, llm) = self.investigator(raw.investigator.unwrap_or_default());
        let redact = self.redact(raw.redact);
        let ntfy = raw.ntfy.and_then(|n| self.ntfy(n, &state_dir));
        // Self-monitoring
        let metrics_textfile = match raw.metrics_textfile.as_deref() {
            None => None,
            Some(p) if p.ends_with(".prom") => Some(self.path(p)),
            Some(p) => {
                self.err(
                    "metrics_textfile",
                    format!("`{p}` must end in .prom (node_exporter's textfile collector reads only those)"),
                );
                None
            }
        };
        let metrics = self.metrics(raw.metrics, raw.check);
        let incidents = self.incidents(raw.incidents);
        let escalation = self.escalation(raw.escalate, raw.escalation);
        let check_names: Vec<String> = metrics.checks.iter().map(|c| c.name.clone()).collect();
        let actions = self.actions(raw.action, raw.actions, &check_names);
        let own = vec![
            state_dir.clone(),
            incidents_dir.clone(),
            path.to_path_buf(),
            ignore_file.clone(),
        ];
        for s in &mut sources {
            match &mut s.kind {
                SourceKind::File(fs) => fs.own = own.clone(),
                SourceKind::Sqlite(q) => q.own = own.clone(),
                _ => {}
            }
        }
        Config {
            path: path.to_path_buf(),
            state_dir,
            incidents_dir,
            ignore_file,
            prompts_dir,
            hostname,
            renotify_after,
            run_deadline,
            sources,
            investigator,
            llm,
            redact,
            ntfy,
            metrics_textfile,
            metrics,
            incidents,
            escalation,
            actions,
        }
    }

    fn source(&mut self, prefix: &str, s: raw::RawSource) -> Option<SourceConfig> {
        self.unknown(prefix, &s.extra, raw::RawSource::KEYS);
        let name = match &s.name {
            Some(n)
                if !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                n.clone()
            }
            Some(n) => {
                self.err(
                    format!("{prefix}.name"),
                    format!("`{n}` is not a valid name (letters, digits, `-`, `_`, `.`)"),
                );
                n.clone()
            }
            None => {
                self.err(
                    format!("{prefix}.name"),
                    "missing: every source needs a name",
                );
                String::new()
            }
        };
        let from = match s.from.as_deref() {
            None | Some("end") => StartFrom::End,
            Some("start") => StartFrom::Start,
            Some(other) => {
                self.err(
                    format!("{prefix}.from"),
                    format!("`{other}` is not valid (expected \"start\" or \"end\")"),
                );
                StartFrom::End
            }
        };
        let mut levels = BTreeMap::new();
        for (k, v) in &s.levels {
            if !(0..=1000).contains(v) {
                self.err(
                    format!("{prefix}.levels.{k}"),
                    format!("{v} is out of range (expected a level number from 0 to 1000)"),
                );
            } else {
                levels.insert(k.to_ascii_uppercase(), *v as u32);
            }
        }
        let min_level = match s.min_level.as_deref() {
            None => Level::named("WARNING", &levels),
            Some(l) => match Level::parse_config(l, &levels) {
                Some(level) => level,
                None => {
                    self.err(
                        format!("{prefix}.min_level"),
                        format!("unknown level `{l}` (expected a level name such as WARNING or ERROR, a custom level from `levels`, or a number)"),
                    );
                    Level::named("WARNING", &levels)
                }
            },
        };
        let severity = self.severity_map(prefix, &s.severity, &levels);
        let kind_name = s.kind.clone().unwrap_or_else(|| "loguru".into());
        let timezone = match s.timezone.as_deref() {
            None if kind_name == "sqlite" => crate::source::zone::Zone::UTC,
            None => crate::source::zone::Zone::host(),
            Some(name) => match crate::source::zone::Zone::parse(name) {
                Ok(z) => z,
                Err(e) => {
                    self.err(format!("{prefix}.timezone"), e);
                    crate::source::zone::Zone::Local
                }
            },
        };
        // Keys that belong to other kinds are mistakes worth naming.
        let allowed: &[&str] = match kind_name.as_str() {
            "loguru" => &["format", "forget_after", "settle", "path", "timezone"],
            "loguru-json" => &["forget_after", "path"],
            "text" => &[
                "timezone",
                "regex",
                "time_format",
                "default_level",
                "forget_after",
                "settle",
                "path",
            ],
            "sqlite" => &[
                "timezone",
                "preset",
                "table",
                "columns",
                "query",
                "busy_timeout",
                "path",
            ],
            "journald" => &["command", "units", "identifiers"],
            _ => &[],
        };
        let present: Vec<(&str, bool)> = vec![
            ("path", s.path.is_some()),
            ("timezone", s.timezone.is_some()),
            ("forget_after", s.forget_after.is_some()),
            ("settle", s.settle.is_some()),
            ("format", s.format.is_some()),
            ("regex", s.regex.is_some()),
            ("time_format", s.time_format.is_some()),
            ("default_level", s.default_level.is_some()),
            ("preset", s.preset.is_some()),
            ("table", s.table.is_some()),
            ("columns", s.columns.is_some()),
            ("query", s.query.is_some()),
            ("busy_timeout", s.busy_timeout.is_some()),
            ("command", s.command.is_some()),
            ("units", !s.units.is_empty()),
            ("identifiers", !s.identifiers.is_empty()),
        ];
        if !allowed.is_empty() {
            for (key, is_set) in present {
                if is_set && !allowed.contains(&key) {
                    self.err(
                        format!("{prefix}.{key}"),
                        format!(
                            "not a setting of kind \"{kind_name}\" (its settings: {})",
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
        let kind = match kind_name.as_str() {
            "loguru" | "loguru-json" | "text" => {
                SourceKind::File(self.file_source(prefix, &kind_name, &s))
            }
            "sqlite" => SourceKind::Sqlite(self.sqlite_source(prefix, &s)),
            "journald" => SourceKind::Journald(JournaldSource {
                command: self.command(s.command.clone().unwrap_or_else(|| "journalctl".into())),
                units: s.units.clone(),
                identifiers: s.identifiers.clone(),
            }),
            other => {
                self.err(
                    format!("{prefix}.kind"),
                    format!("unknown kind `{other}` (expected: loguru, loguru-json, text, sqlite, journald)"),
                );
                return None;
            }
        };
        Some(SourceConfig {
            name,
            kind,
            from,
            min_level,
            levels,
            severity,
            timezone,
        })
    }

    /// `severity = { ERROR = "warning" }`: the source's entries over the defaults (an
    /// entry for a level of the defaults replaces it, others are added).
    fn severity_map(
        &mut self,
        prefix: &str,
        given: &BTreeMap<String, String>,
        levels: &BTreeMap<String, u32>,
    ) -> Vec<SeverityAt> {
        let mut out: Vec<SeverityAt> = DEFAULT_SEVERITY
            .iter()
            .map(|(l, s)| SeverityAt {
                level: Level::named(l, levels),
                severity: (*s).to_string(),
            })
            .collect();
        for (k, v) in given {
            let key = format!("{prefix}.severity.{k}");
            let Some(level) = Level::parse_config(k, levels) else {
                self.err(
                    key,
                    format!("unknown level `{k}` (expected a level name such as WARNING or ERROR, a custom level from `levels`, or a number)"),
                );
                continue;
            };
            let sev = v.trim().to_ascii_lowercase();
            if !["info", "warning", "critical"].contains(&sev.as_str()) {
                self.err(
                    key,
                    format!("`{v}` is not a severity (expected info, warning or critical)"),
                );
                continue;
            }
            out.retain(|s| s.level.no != level.no);
            out.push(SeverityAt {
                level,
                severity: sev,
            });
        }
        out.sort_by_key(|s| s.level.no);
        out
    }

    fn required_path(&mut self, prefix: &str, s: &raw::RawSource, what: &str) -> PathBuf {
        match &s.path {
            Some(p) if !p.is_empty() => self.path(p),
            _ => {
                self.err(format!("{prefix}.path"), format!("missing: {what}"));
                PathBuf::new()
            }
        }
    }

    fn file_source(&mut self, prefix: &str, kind: &str, s: &raw::RawSource) -> FileSource {
        let path = self.required_path(prefix, s, "the log file (or glob) to watch");
        let forget_after = self.duration(
            &format!("{prefix}.forget_after"),
            s.forget_after.as_deref(),
            Duration::from_secs(86_400),
        );
        let settle = s
            .settle
            .as_deref()
            .map(|v| self.duration(&format!("{prefix}.settle"), Some(v), Duration::ZERO));
        let parser = match kind {
            "loguru-json" => ParserSpec::LoguruJson,
            "loguru" => match &s.format {
                None => ParserSpec::LoguruDefault,
                Some(f) => match crate::source::format::LineFormat::from_loguru(f) {
                    Ok(format) => ParserSpec::Line {
                        format: std::sync::Arc::new(format),
                        default_level: None,
                    },
                    Err(e) => {
                        self.err(format!("{prefix}.format"), e);
                        ParserSpec::LoguruDefault
                    }
                },
            },
            _ => {
                let default_level = match &s.default_level {
                    Some(l)
                        if Level::parse_config(l, &Default::default()).is_none()
                            && !s.levels.contains_key(&l.to_ascii_uppercase()) =>
                    {
                        self.err(
                            format!("{prefix}.default_level"),
                            format!("unknown level `{l}`"),
                        );
                        "ERROR".to_string()
                    }
                    Some(l) => l.clone(),
                    None => "INFO".to_string(),
                };
                match &s.regex {
                    None => {
                        self.err(
                            format!("{prefix}.regex"),
                            "missing: a text source needs a regex with named groups (at least `message`)",
                        );
                        ParserSpec::LoguruDefault
                    }
                    Some(r) => match crate::source::format::LineFormat::from_regex(
                        r,
                        s.time_format.as_deref(),
                    ) {
                        Ok(format) => ParserSpec::Line {
                            format: std::sync::Arc::new(format),
                            default_level: Some(default_level),
                        },
                        Err(e) => {
                            self.err(format!("{prefix}.regex"), e);
                            ParserSpec::LoguruDefault
                        }
                    },
                }
            }
        };
        FileSource {
            path,
            parser,
            forget_after,
            settle,
            own: Vec::new(),
        }
    }

    fn sqlite_source(&mut self, prefix: &str, s: &raw::RawSource) -> SqliteSource {
        let path = self.required_path(prefix, s, "the app's SQLite database");
        let busy_timeout = self.duration(
            &format!("{prefix}.busy_timeout"),
            s.busy_timeout.as_deref(),
            Duration::from_secs(5),
        );
        let mut columns = match s.preset.as_deref() {
            None => SqliteColumns {
                cursor: "rowid".into(),
                message: "message".into(),
                ..SqliteColumns::default()
            },
            Some(p) => match crate::source::sqlite::preset(p) {
                Some((_, cols)) => cols,
                None => {
                    self.err(
                        format!("{prefix}.preset"),
                        format!(
                            "unknown preset `{p}` (expected: {})",
                            crate::source::sqlite::PRESETS.join(", ")
                        ),
                    );
                    SqliteColumns::default()
                }
            },
        };
        if let Some(c) = &s.columns {
            self.unknown(
                &format!("{prefix}.columns"),
                &c.unknown,
                raw::RawColumns::KEYS,
            );
            let set = |slot: &mut Option<String>, v: &Option<String>| {
                if let Some(v) = v {
                    *slot = if v.is_empty() { None } else { Some(v.clone()) };
                }
            };
            if let Some(v) = &c.cursor {
                columns.cursor = v.clone();
            }
            if let Some(v) = &c.message {
                columns.message = v.clone();
            }
            set(&mut columns.time, &c.time);
            set(&mut columns.level, &c.level);
            set(&mut columns.logger, &c.logger);
            set(&mut columns.exception, &c.exception);
            set(&mut columns.traceback, &c.traceback);
            set(&mut columns.extra, &c.extra);
        }
        let ident_ok =
            |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut bad = Vec::new();
        for v in [&columns.cursor, &columns.message]
            .into_iter()
            .chain(columns.time.iter())
            .chain(columns.level.iter())
            .chain(columns.logger.iter())
            .chain(columns.exception.iter())
            .chain(columns.traceback.iter())
            .chain(columns.extra.iter())
        {
            if !ident_ok(v) {
                bad.push(v.clone());
            }
        }
        if !bad.is_empty() {
            self.err(
                format!("{prefix}.columns"),
                format!("not plain column names: {}", bad.join(", ")),
            );
        }
        let table = s.table.clone().or_else(|| {
            s.preset
                .as_deref()
                .and_then(crate::source::sqlite::preset)
                .map(|(t, _)| t.to_string())
        });
        let query = match (&s.query, table) {
            (Some(q), _) => {
                if !q.contains(":cursor") {
                    self.err(format!("{prefix}.query"), "the query must use the `:cursor` parameter (WHERE <cursor> > :cursor ORDER BY <cursor>)");
                }
                q.clone()
            }
            (None, Some(t)) if ident_ok(&t) => {
                let q = crate::source::sqlite::query_for(&t, &columns);
                columns = crate::source::sqlite::canonical(&columns);
                q
            }
            (None, Some(t)) => {
                self.err(
                    format!("{prefix}.table"),
                    format!("`{t}` is not a plain table name"),
                );
                String::new()
            }
            (None, None) => {
                self.err(
                    format!("{prefix}.table"),
                    "missing: give `table` (with `columns` or a `preset`) or a `query`",
                );
                String::new()
            }
        };
        SqliteSource {
            path,
            query,
            columns,
            busy_timeout,
            own: Vec::new(),
        }
    }

    fn ntfy(&mut self, mut n: raw::RawNtfy, state_dir: &Path) -> Option<NtfyConfig> {
        self.unknown("ntfy", &n.extra, raw::RawNtfy::KEYS);
        let has_token = n.token_file.is_some() || n.token_env.is_some();
        let topic = n.topic.clone().unwrap_or_default();
        let more = self.ntfy_more(&mut n, &topic, has_token, state_dir);
        let server = match n.server {
            Some(s) => self
                .http_url(
                    "ntfy.server",
                    &s,
                    "give them with token_file or token_env, or with username and \
                     password_file or password_env",
                )
                .unwrap_or_default(),
            None => "https://ntfy.sh".into(),
        };
        let topic = match n.topic {
            Some(t)
                if !t.is_empty()
                    && t.len() <= 64
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                t
            }
            Some(t) => {
                self.err(
                    "ntfy.topic",
                    format!("`{t}` is not a valid topic (1 to 64 letters, digits, `-` or `_`)"),
                );
                String::new()
            }
            None => {
                self.err("ntfy.topic", "missing: the topic to publish to");
                String::new()
            }
        };
        if n.token.is_some() {
            self.err(
                "ntfy.token",
                "a token must not be written in the config; use token_file or token_env",
            );
        }
        let token = match (n.token_file, n.token_env) {
            (Some(_), Some(_)) => {
                self.err("ntfy.token_file", "give token_file or token_env, not both");
                None
            }
            (Some(f), None) => Some(Secret::File(self.path(&f))),
            (None, Some(e)) => Some(Secret::Env(e)),
            (None, None) => None,
        };
        let timeout = self.duration(
            "ntfy.timeout",
            n.timeout.as_deref(),
            Duration::from_secs(10),
        );
        Some(NtfyConfig {
            server,
            topic,
            token,
            timeout,
            more,
        })
    }
}

/// The prompts shipped with logwarden: next to the binary's install, else the source tree.
fn default_prompts_dir() -> PathBuf {
    let installed = PathBuf::from("/usr/share/logwarden/prompts");
    if installed.is_dir() {
        installed
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts")
    }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl fmt::Display for Config {
    /// The effective config, as TOML-like text (secrets shown by where they come from).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# effective configuration from {}", self.path.display())?;
        writeln!(f, "state_dir = {:?}", self.state_dir.display().to_string())?;
        writeln!(
            f,
            "incidents_dir = {:?}",
            self.incidents_dir.display().to_string()
        )?;
        writeln!(
            f,
            "ignore_file = {:?}",
            self.ignore_file.display().to_string()
        )?;
        writeln!(
            f,
            "prompts_dir = {:?}",
            self.prompts_dir.display().to_string()
        )?;
        writeln!(f, "hostname = {:?}", self.hostname)?;
        writeln!(
            f,
            "renotify_after = {:?}",
            duration::format(self.renotify_after)
        )?;
        writeln!(
            f,
            "run_deadline = {:?}",
            duration::format(self.run_deadline)
        )?;
        if let Some(p) = &self.metrics_textfile {
            writeln!(f, "metrics_textfile = {:?}", p.display().to_string())?;
        }
        for s in &self.sources {
            writeln!(f, "\n[[source]]")?;
            writeln!(f, "name = {:?}", s.name)?;
            writeln!(f, "kind = {:?}", s.kind_name())?;
            match &s.kind {
                SourceKind::File(fs) => {
                    writeln!(f, "path = {:?}", fs.path.display().to_string())?;
                    writeln!(f, "forget_after = {:?}", duration::format(fs.forget_after))?;
                    if let Some(settle) = fs.settle {
                        writeln!(f, "settle = {:?}", duration::format(settle))?;
                    }
                    if let ParserSpec::Line {
                        default_level: Some(l),
                        ..
                    } = &fs.parser
                    {
                        writeln!(f, "default_level = {l:?}")?;
                    }
                }
                SourceKind::Sqlite(q) => {
                    writeln!(f, "path = {:?}", q.path.display().to_string())?;
                    writeln!(f, "query = {:?}", q.query)?;
                    writeln!(f, "busy_timeout = {:?}", duration::format(q.busy_timeout))?;
                }
                SourceKind::Journald(j) => {
                    writeln!(f, "command = {:?}", j.command)?;
                    writeln!(f, "units = {:?}", j.units)?;
                    writeln!(f, "identifiers = {:?}", j.identifiers)?;
                }
            }
            let from = match s.from {
                StartFrom::Start => "start",
                StartFrom::End => "end",
            };
            writeln!(f, "from = {from:?}")?;
            writeln!(f, "min_level = {:?}", s.min_level.name)?;
            match s.timezone {
                crate::source::zone::Zone::Local => writeln!(
                    f,
                    "# timezone: the host's local time (TZ, else /etc/localtime)"
                )?,
                z => writeln!(f, "timezone = \"{z}\"")?,
            }
            if !s.levels.is_empty() {
                let items: Vec<String> =
                    s.levels.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                writeln!(f, "levels = {{ {} }}", items.join(", "))?;
            }
            let items: Vec<String> = s
                .severity
                .iter()
                .map(|e| format!("{} = {:?}", e.level.name, e.severity))
                .collect();
            writeln!(
                f,
                "severity = {{ {} }}  # from each level up; below the lowest: info",
                items.join(", ")
            )?;
        }
        writeln!(f, "\n[investigator]")?;
        match &self.investigator {
            InvestigatorConfig::None => writeln!(f, "kind = \"none\"")?,
            InvestigatorConfig::ClaudeCli(c) => {
                writeln!(f, "kind = \"claude-cli\"")?;
                writeln!(f, "command = {:?}", c.command)?;
                writeln!(f, "model = {:?}", c.model)?;
                writeln!(f, "timeout = {:?}", duration::format(c.timeout))?;
                writeln!(f, "max_turns = {}", c.max_turns)?;
                if !c.extra_args.is_empty() {
                    writeln!(f, "extra_args = {:?}", c.extra_args)?;
                }
            }
            InvestigatorConfig::AnthropicApi(_) => {}
        }
        investigator::fmt_llm(f, &self.investigator, &self.llm)?;
        investigator::fmt_redact(f, &self.redact)?;
        write!(f, "{}", self.incidents)?;
        write!(f, "{}", self.escalation)?;
        write!(f, "{}", self.actions)?;
        match &self.ntfy {
            None => writeln!(
                f,
                "\n# [ntfy] not configured: notifications are only recorded"
            )?,
            Some(n) => {
                writeln!(f, "\n[ntfy]")?;
                writeln!(f, "server = {:?}", n.server)?;
                writeln!(f, "topic = {:?}", n.topic)?;
                match &n.token {
                    Some(Secret::File(p)) => {
                        writeln!(f, "token_file = {:?}", p.display().to_string())?
                    }
                    Some(Secret::Env(e)) => writeln!(f, "token_env = {e:?}")?,
                    None => {}
                }
                writeln!(f, "timeout = {:?}", duration::format(n.timeout))?;
                write!(f, "{}", n.more)?;
            }
        }
        write!(f, "{}", self.metrics)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, Path::new("/etc/logwarden/logwarden.toml"))
    }

    #[test]
    fn minimal_config_fills_defaults() {
        let c = parse("[[source]]\nname = \"app\"\npath = \"logs/app.log\"\n").unwrap();
        assert_eq!(
            c.sources[0].path(),
            Some(Path::new("/etc/logwarden/logs/app.log"))
        );
        assert_eq!(c.sources[0].from, StartFrom::End);
        assert_eq!(c.sources[0].min_level.no, 30);
        assert_eq!(c.renotify_after, Duration::from_secs(7 * 86400));
        assert!(matches!(c.investigator, InvestigatorConfig::None));
    }

    #[test]
    fn reports_every_error_with_its_key() {
        let err = parse(
            r#"
statedir = "x"
renotify_after = "soon"
[[source]]
name = "app"
from = "middle"
min_level = "LOUD"
[investigator]
kind = "gpt"
[ntfy]
topic = "bad topic!"
token = "tk_secret"
"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "statedir",
            "renotify_after",
            "source[0].path",
            "source[0].from",
            "source[0].min_level",
            "investigator.kind",
            "ntfy.topic",
            "ntfy.token",
        ] {
            assert!(keys.contains(&k), "missing {k} in {keys:?}");
        }
        assert!(!err.to_string().contains("tk_secret"));
    }

    #[test]
    fn custom_levels_are_usable_as_min_level() {
        let c = parse("[[source]]\nname = \"a\"\npath = \"/a\"\nlevels = { NOTICE = 35 }\nmin_level = \"NOTICE\"\n").unwrap();
        assert_eq!(c.sources[0].min_level.no, 35);
    }
}
