//! Ignore rules: what the team has said is not worth a page. Rules live in a TOML file
//! (like amtool silences: pattern, scope, expiry, comment) that the `logwarden ignore`
//! commands edit without disturbing the user's own comments and formatting.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use regex::{Regex, RegexSet};
use toml_edit::{value, DocumentMut, Item, Table};

use crate::signature::Signature;
use crate::source::{Event, Level};

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub pattern: String,
    pub source: Option<String>,
    /// Matches only events at this level number or below.
    pub level: Option<Level>,
    pub signature: Option<Signature>,
    pub expires: Option<DateTime<Utc>>,
    pub comment: String,
    pub created: Option<String>,
    pub author: Option<String>,
    /// The file the rule lives in (the ignore file, or the mutes file in the state dir).
    pub file: PathBuf,
}

impl Rule {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// When the rule was written (`created`), if the file says so in RFC 3339.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|c| c.with_timezone(&Utc))
    }

    /// This rule's hits and last hit among the store's hits per rule id. Hits last seen
    /// before the rule was written were another rule's (a hand-edited file may hand an
    /// id out again), not this one's.
    pub fn hits_in(
        &self,
        hits: &std::collections::HashMap<String, (u64, DateTime<Utc>)>,
    ) -> Option<(u64, DateTime<Utc>)> {
        let (n, last) = hits.get(&self.id)?;
        (self.created_at().is_none_or(|c| *last >= c)).then_some((*n, *last))
    }
}

/// The rules of one file, ready to match.
#[derive(Debug, Default)]
pub struct IgnoreRules {
    pub rules: Vec<Rule>,
    /// The active rules' patterns, compiled on first use.
    set: std::sync::OnceLock<Patterns>,
    /// Rules in `set`, by index (only those not expired at load time).
    active: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("ignore rules file {}:\n{}", path.display(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct IgnoreFileError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

impl IgnoreRules {
    /// Rules scoped to a source no `[[source]]` is named (`sources`): written by hand,
    /// or left from a source renamed since, they match nothing, which must be said.
    pub fn unknown_sources(&self, sources: &[&str]) -> Vec<String> {
        self.rules
            .iter()
            .filter_map(|r| {
                let s = r.source.as_deref()?;
                (!sources.contains(&s)).then(|| {
                    format!(
                        "{}: rule {} is scoped to source `{}`, which is not a configured source: it matches nothing (configured: {})",
                        r.file.display(),
                        crate::sanitize::line(&r.id),
                        crate::sanitize::line(s),
                        sources.join(", ")
                    )
                })
            })
            .collect()
    }

    /// Loads a rules file; a missing file means no rules.
    pub fn load(path: &Path, now: DateTime<Utc>) -> Result<IgnoreRules, IgnoreFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(IgnoreFileError {
                    path: path.to_path_buf(),
                    problems: vec![format!("cannot read: {e}")],
                })
            }
        };
        IgnoreRules::parse_file(&text, path, now)
    }

    /// Parses the text of the rules file at `path` (its rules remember where they live).
    pub fn parse_file(
        text: &str,
        path: &Path,
        now: DateTime<Utc>,
    ) -> Result<IgnoreRules, IgnoreFileError> {
        let mut rules = IgnoreRules::parse(text, now).map_err(|problems| IgnoreFileError {
            path: path.to_path_buf(),
            problems,
        })?;
        for r in &mut rules.rules {
            r.file = path.to_path_buf();
        }
        Ok(rules)
    }

    /// The rules of several files as one set, in file order (the first file's first).
    pub fn merge(parts: Vec<IgnoreRules>, now: DateTime<Utc>) -> IgnoreRules {
        let rules = parts.into_iter().flat_map(|p| p.rules).collect();
        IgnoreRules::from_rules(rules, now)
    }

    /// Loads every rules file (the ignore file, then the mutes file), reporting the
    /// problems of all of them at once.
    pub fn load_all(files: &[&Path], now: DateTime<Utc>) -> Result<IgnoreRules, IgnoreFileError> {
        let mut parts = Vec::new();
        let mut errors: Vec<IgnoreFileError> = Vec::new();
        for f in files {
            match IgnoreRules::load(f, now) {
                Ok(r) => parts.push(r),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(IgnoreRules::merge(parts, now)),
            1 => Err(errors.remove(0)),
            _ => Err(IgnoreFileError {
                path: errors[0].path.clone(),
                problems: errors
                    .iter()
                    .flat_map(|e| {
                        e.problems
                            .iter()
                            .map(move |p| format!("{}: {p}", e.path.display()))
                    })
                    .collect(),
            }),
        }
    }

    /// Parses rules text, reporting every bad rule at once, each problem with the line
    /// of the value it is about (the pattern's own line for the pattern).
    pub fn parse(text: &str, now: DateTime<Utc>) -> Result<IgnoreRules, Vec<String>> {
        let doc = toml_edit::ImDocument::parse(text).map_err(|e| vec![toml_problem(&e)])?;
        // Where each line ends, once: counting the newlines before every span from the
        // start of the text made a file of many rules quadratic to read.
        let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
        let at = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| ends.partition_point(|&nl| nl < s.start) + 1)
        };
        let mut problems = Vec::new();
        let mut tables: Vec<(usize, Vec<Field>)> = Vec::new();
        for (key, item) in doc.as_table().iter() {
            let line = at(doc.as_table().key(key).and_then(|k| k.span())).unwrap_or(1);
            if key == LAST_ID {
                if item_id(item).is_none() {
                    problems.push(format!(
                        "line {line}: `{LAST_ID}` must be a rule id (a number or a string)"
                    ));
                }
                continue;
            }
            if key != "rule" {
                problems.push(format!(
                    "line {line}: unknown key `{key}` (rules are `[[rule]]` tables)"
                ));
                continue;
            }
            match item {
                Item::ArrayOfTables(a) => {
                    for t in a.iter() {
                        let fields = t
                            .iter()
                            .map(|(k, v)| Field {
                                key: k.to_string(),
                                line: at(t.key(k).and_then(|k| k.span())).unwrap_or(line),
                                value: v.as_value().cloned(),
                            })
                            .collect();
                        tables.push((at(t.span()).unwrap_or(line), fields));
                    }
                }
                Item::Value(toml_edit::Value::Array(a)) => {
                    for v in a.iter() {
                        let vline = at(v.span()).unwrap_or(line);
                        let Some(t) = v.as_inline_table() else {
                            problems.push(format!("line {vline}: a rule must be a table"));
                            continue;
                        };
                        let fields = t
                            .iter()
                            .map(|(k, v)| Field {
                                key: k.to_string(),
                                line: at(t.key(k).and_then(|k| k.span())).unwrap_or(vline),
                                value: Some(v.clone()),
                            })
                            .collect();
                        tables.push((vline, fields));
                    }
                }
                _ => problems.push(format!(
                    "line {line}: `rule` must be an array of tables (`[[rule]]`)"
                )),
            }
        }
        let mut rules = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for (line, fields) in tables {
            let id = fields.iter().find(|f| f.key == "id");
            let key = id.and_then(|f| match &f.value {
                Some(toml_edit::Value::Integer(i)) => Some(i.value().to_string()),
                Some(toml_edit::Value::String(s)) => Some(s.value().clone()),
                _ => None,
            });
            if let (Some(key), Some(f)) = (key, id) {
                match seen.get(&key) {
                    Some(first) => problems.push(format!(
                        "line {}: rule id {key} is also used by the rule on line {first}",
                        f.line
                    )),
                    None => {
                        seen.insert(key, f.line);
                    }
                }
            }
            if let Some(rule) = rule_from_fields(line, &fields, &mut problems) {
                rules.push(rule);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(IgnoreRules::from_rules(rules, now))
    }

    fn from_rules(rules: Vec<Rule>, now: DateTime<Utc>) -> IgnoreRules {
        let active: Vec<usize> = (0..rules.len())
            .filter(|&i| !rules[i].expired(now))
            .collect();
        IgnoreRules {
            rules,
            set: std::sync::OnceLock::new(),
            active,
        }
    }

    /// The first rule (in file order) that matches the event, if any: by its message,
    /// else by its exception line (a rule scoped to another source, level or
    /// signature that matches the message does not keep the line from being tried).
    pub fn matching(&self, event: &Event, sig: Signature) -> Option<&Rule> {
        match self.matching_lazy(event, || Ok::<_, std::convert::Infallible>(sig)) {
            Ok(rule) => rule,
            Err(never) => match never {},
        }
    }

    /// [`Self::matching`], with the event's signature worked out (by `sig`, called at
    /// most once) only when a rule scoped to a signature is reached: the run then does
    /// not group what a rule ignores, which is most of a noisy log.
    pub fn matching_lazy<E>(
        &self,
        event: &Event,
        sig: impl FnOnce() -> Result<Signature, E>,
    ) -> Result<Option<&Rule>, E> {
        if self.active.is_empty() {
            return Ok(None);
        }
        let patterns = self.set.get_or_init(|| {
            Patterns::new(self.active.iter().map(|&i| self.rules[i].pattern.as_str()))
        });
        let (mut sig, mut known) = (Some(sig), None);
        let texts = [
            Some(event.message.as_str()),
            event.exception_line.as_deref(),
        ];
        for text in texts.into_iter().flatten() {
            for i in patterns.matches(text) {
                let r = &self.rules[self.active[i]];
                if !(r.source.as_ref().is_none_or(|s| *s == event.source)
                    && r.level.as_ref().is_none_or(|l| event.level.no <= l.no))
                {
                    continue;
                }
                let Some(wanted) = r.signature else {
                    return Ok(Some(r));
                };
                let actual = match (known, sig.take()) {
                    (Some(s), _) => s,
                    (None, Some(f)) => *known.insert(f()?),
                    (None, None) => unreachable!("the signature is kept once worked out"),
                };
                if actual == wanted {
                    return Ok(Some(r));
                }
            }
        }
        Ok(None)
    }
}

/// Rule patterns compiled for matching: one set, or each alone when together they are
/// over the regex size limit (each passed it alone when it was added). Falling back,
/// rather than matching nothing, keeps every rule and mute working.
#[derive(Debug)]
enum Patterns {
    Set(RegexSet),
    Each(Vec<Option<Regex>>),
}

impl Patterns {
    fn new<'a>(patterns: impl Iterator<Item = &'a str> + Clone) -> Patterns {
        match RegexSet::new(patterns.clone()) {
            Ok(set) => Patterns::Set(set),
            Err(_) => Patterns::Each(patterns.map(|p| Regex::new(p).ok()).collect()),
        }
    }

    /// The indexes of the patterns that match, in order.
    fn matches(&self, text: &str) -> Vec<usize> {
        match self {
            Patterns::Set(set) => {
                let hits = set.matches(text);
                if !hits.matched_any() {
                    return Vec::new();
                }
                hits.iter().collect()
            }
            Patterns::Each(each) => each
                .iter()
                .enumerate()
                .filter(|(_, re)| re.as_ref().is_some_and(|re| re.is_match(text)))
                .map(|(i, _)| i)
                .collect(),
        }
    }
}

/// Changes with every change of the code or its dependencies (see `build.rs`): a rules
/// text this build has checked may be remembered under it, never under another build's.
pub mod build {
    include!(concat!(env!("OUT_DIR"), "/build_id.rs"));
}

/// One file's part of a [`LazyRules`]: parsed already, or a text this build has
/// checked before and parses only when a rule is needed.
#[derive(Debug)]
pub enum Part {
    Parsed(IgnoreRules),
    Checked { path: PathBuf, text: String },
}

/// The rules of several files, parsed when first needed: a run that reads nothing new
/// matches no record, and need not parse the rules it already knows are good.
#[derive(Debug)]
pub struct LazyRules {
    parts: std::sync::Mutex<Vec<Part>>,
    rules: std::sync::OnceLock<IgnoreRules>,
    now: DateTime<Utc>,
}

impl LazyRules {
    pub fn new(parts: Vec<Part>, now: DateTime<Utc>) -> LazyRules {
        LazyRules {
            parts: std::sync::Mutex::new(parts),
            rules: std::sync::OnceLock::new(),
            now,
        }
    }

    /// The rules, in file order (the first file's first).
    pub fn get(&self) -> &IgnoreRules {
        self.rules.get_or_init(|| {
            let parts = std::mem::take(&mut *self.parts.lock().unwrap_or_else(|e| e.into_inner()));
            let parsed = parts
                .into_iter()
                .map(|p| match p {
                    Part::Parsed(r) => r,
                    Part::Checked { path, text } => {
                        IgnoreRules::parse_file(&text, &path, self.now).unwrap_or_else(|e| {
                            // Unreachable while the build id is honest: this build
                            // accepted the same text before. No rule is safer than a guess.
                            tracing::error!("{e}");
                            IgnoreRules::default()
                        })
                    }
                })
                .collect();
            IgnoreRules::merge(parsed, self.now)
        })
    }
}

/// One `key = value` of a rule table, with the line it is on.
struct Field {
    key: String,
    line: usize,
    /// None for a sub-table, which no rule key may be.
    value: Option<toml_edit::Value>,
}

const RULE_KEYS: &[&str] = &[
    "id",
    "pattern",
    "comment",
    "source",
    "level",
    "signature",
    "expires",
    "created",
    "author",
    "incident",
];

/// A syntax error of a rules or config file: line, column, the line itself and a caret
/// under the offending spot (the toml crate renders them).
pub fn toml_problem(e: &toml_edit::TomlError) -> String {
    let text = e.to_string();
    // "TOML parse error at line 2, column 10\n  |\n2 | …\n  |   ^\nwhat": led by the
    // line, as every other problem of the file is.
    text.strip_prefix("TOML parse error at ")
        .unwrap_or(&text)
        .trim_end()
        .to_string()
}

/// Checks one rule table, pushing every problem it has; the rule when it has none.
fn rule_from_fields(
    table_line: usize,
    fields: &[Field],
    problems: &mut Vec<String>,
) -> Option<Rule> {
    let start = problems.len();
    let get = |k: &str| fields.iter().find(|f| f.key == k);
    // A phone mute's incident: the mute ends when a person resolves it.
    if let Some(f) = get("incident") {
        if !matches!(&f.value, Some(toml_edit::Value::Integer(i)) if *i.value() > 0) {
            problems.push(format!(
                "line {}: `incident` must be an incident number",
                f.line
            ));
        }
    }
    let string = |k: &str, problems: &mut Vec<String>| -> Option<(String, usize)> {
        let f = get(k)?;
        match f.value.as_ref().and_then(|v| v.as_str()) {
            Some(s) => Some((s.to_string(), f.line)),
            None => {
                problems.push(format!("line {}: `{k}` must be a string", f.line));
                None
            }
        }
    };
    for f in fields {
        if !RULE_KEYS.contains(&f.key.as_str()) {
            problems.push(format!(
                "line {}: unknown key `{}` in a rule (known: {})",
                f.line,
                f.key,
                RULE_KEYS.join(", ")
            ));
        }
    }
    let id = match get("id") {
        None => {
            problems.push(format!("line {table_line}: a rule without an `id`"));
            String::from("?")
        }
        Some(f) => match &f.value {
            Some(toml_edit::Value::Integer(i)) => i.value().to_string(),
            Some(toml_edit::Value::String(s)) if !s.value().trim().is_empty() => s.value().clone(),
            _ => {
                problems.push(format!(
                    "line {}: `id` must be a number or a non-empty string",
                    f.line
                ));
                String::from("?")
            }
        },
    };
    let pattern = string("pattern", problems);
    let source = string("source", problems).map(|s| s.0);
    let comment = string("comment", problems).map(|s| s.0).unwrap_or_default();
    let created = string("created", problems).map(|s| s.0);
    let author = string("author", problems).map(|s| s.0);
    let level = match string("level", problems) {
        None => None,
        Some((l, line)) => match Level::parse_config(&l, &Default::default()) {
            Some(level) => Some(level),
            None => {
                problems.push(format!("line {line}: rule {id}: unknown level `{l}`"));
                None
            }
        },
    };
    let signature = match string("signature", problems) {
        None => None,
        Some((s, line)) => match s.parse::<Signature>() {
            Ok(sig) => Some(sig),
            Err(e) => {
                problems.push(format!("line {line}: rule {id}: {e}"));
                None
            }
        },
    };
    let expires = match string("expires", problems) {
        None => None,
        Some((s, line)) => match parse_fixed_expiry(&s) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(format!("line {line}: rule {id}: expires: {e}"));
                None
            }
        },
    };
    let pattern = match pattern {
        None => {
            if get("pattern").is_none() {
                problems.push(format!("line {table_line}: rule {id} has no `pattern`"));
            }
            None
        }
        Some((p, line)) => {
            // Checked by parsing only: the rules are compiled (into one set) when the
            // first event needs them, so a run with nothing new stays quick.
            match regex_syntax::Parser::new().parse(&p) {
                Err(e) => problems.push(format!(
                    "line {line}: rule {id}: pattern is not a valid regex: {}",
                    e.to_string().lines().last().unwrap_or("")
                )),
                Ok(hir) => {
                    if let Some(why) = too_broad(&p, &hir) {
                        if signature.is_none() && !level.as_ref().is_some_and(caps_below_critical) {
                            problems.push(format!(
                                "line {line}: rule {id}: the pattern {why}, so the rule would silence \
                                 nearly everything, CRITICAL included: narrow the pattern, or scope it with \
                                 a `signature` or a `level` below CRITICAL"
                            ));
                        }
                    }
                }
            }
            Some(p)
        }
    };
    if problems.len() > start {
        return None;
    }
    Some(Rule {
        id,
        pattern: pattern?,
        source,
        level,
        signature,
        expires,
        comment,
        created,
        author,
        file: PathBuf::new(),
    })
}

/// Whether a level cap leaves CRITICAL records heard.
fn caps_below_critical(level: &Level) -> bool {
    level.no < 50
}

/// Log messages of many kinds that a rule's pattern is tried on: words, languages and
/// scripts, lengths, punctuation, digits, exception lines (a rule is also searched in
/// a record's exception line), and near-empty ones. A pattern found in nearly all of
/// them is found in nearly every message any log writes, whatever its shape: `\S`,
/// `\w`, a single space, `[^\s]`, `\D`, `[[:print:]]|\s` all are, though none matches
/// the empty string.
const PROBES: &[&str] = &[
    "Connection reset by peer",
    "Timeout after 30s waiting for upstream api.internal:443",
    "GET /health 200 1.2ms",
    "POST /api/v1/orders 500 (internal server error)",
    "Database connection pool exhausted (max=20, in use=20)",
    "User 4812 logged in from 10.0.3.17",
    "Failed to send email to ops@example.com: SMTP 421 try again later",
    "Retrying job send_invoice (attempt 3 of 5)",
    "ValueError: invalid literal for int() with base 10: 'abc'",
    "KeyError: 'user_id'",
    "ConnectionRefusedError: [Errno 111] Connection refused",
    "Traceback (most recent call last):",
    "disk usage on /var at 91%",
    "Cache miss for key session:9f2c1a",
    "Worker started",
    "Shutting down gracefully",
    "Scheduled backup completed in 4m12s, 2.3 GiB written",
    "Invalid JSON payload: Expecting value: line 1 column 1 (char 0)",
    "PermissionError: [Errno 13] Permission denied: '/etc/app/secret.key'",
    "Rate limit exceeded for client mobile-ios",
    "Unhandled exception in request handler",
    "ssl.SSLCertVerificationError: certificate verify failed: certificate has expired",
    "Could not resolve host: payments.example.net",
    "Order #88231 marked as shipped",
    "Slow query (2314 ms): SELECT * FROM users WHERE email = ?",
    "migrating schema to version 42",
    "no route matched",
    "Payment declined: insufficient funds",
    "java.lang.OutOfMemoryError: Java heap space",
    "Task queue depth is 1500, above threshold of 1000",
    "Received SIGTERM, shutting down",
    "Config reloaded from /etc/app/config.yaml",
    "deprecated call to get_user(), use fetch_user() instead",
    "HTTP 503 from upstream, circuit breaker open",
    "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the connection unexpectedly",
    "TypeError: 'NoneType' object is not subscriptable",
    "RuntimeError: dictionary changed size during iteration",
    "ZeroDivisionError: division by zero",
    "Lock wait timeout; try restarting transaction",
    "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379",
    "Kafka consumer lag on topic orders: 12000 messages",
    "Template not found: emails/welcome.html",
    "Out of sync with primary",
    "CSRF token missing or incorrect",
    "File not found",
    "upload of avatar.png by user bob (2.1 MB) done",
    "Job nightly_report finished with status FAILED",
    "Stripe webhook signature mismatch",
    "GC pause 850ms",
    "Session expired for user alice",
    "Verbindung zum Server fehlgeschlagen",
    "Échec de la connexion à la base de données",
    "No se pudo abrir el archivo de configuración",
    "Falha ao processar o pedido",
    "Impossibile connettersi al database",
    "Не удалось подключиться к базе данных",
    "Помилка під час обробки запиту",
    "Σφάλμα σύνδεσης με τη βάση δεδομένων",
    "فشل الاتصال بقاعدة البيانات",
    "שגיאה בחיבור למסד הנתונים",
    "데이터베이스 연결 실패",
    "डेटाबेस कनेक्शन विफल रहा",
    "数据库连接失败",
    "接続がタイムアウトしました",
    "การเชื่อมต่อล้มเหลว",
    "OK",
    "42",
    "---",
    "…",
    "🔥🔥🔥",
    "{\"event\":\"login_failed\",\"user\":\"bob\",\"attempts\":5}",
    "/usr/lib/python3.11/site-packages/app/views.py:118",
    "AssertionError",
    "2026-11-22T10:00:00Z",
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "\tindented with a tab",
    "Ошибка при обработке платежа пользователя",
    "Сервис недоступен, повторите попытку позже",
    "Не вдалося зберегти файл",
    "Η αίτηση απέτυχε λόγω χρονικού ορίου",
    "انتهت مهلة الطلب",
    "لم يتم العثور على الملف",
    "הבקשה נכשלה עקב חריגת זמן",
    "अनुरोध का समय समाप्त हो गया",
    "요청 시간이 초과되었습니다",
    "파일을 찾을 수 없습니다",
    "درخواست با خطا مواجه شد",
    "Грешка при свързване към сървъра",
    "მონაცემთა ბაზასთან კავშირი ვერ მოხერხდა",
    "Հարցումը ձախողվեց",
    "disk full",
    "no such host",
    "Out of sync with primary",
    "Job stuck in a loop",
    "ok: 3 of 3 shards up",
    "line one\nline two",
    "",
];

/// A pattern found in at least this share of [`PROBES`] (in percent) is too broad. Narrow
/// patterns are found in a few (`Connection reset`: 1; `(?i)error`: 13 of 97); a
/// single letter or a digit in 6 of 10 at most; match-alls in 9 of 10 and more.
const BROAD_PERCENT: usize = 80;

/// Why a pattern matches (nearly) every message, if it does: it matches the empty
/// string (so it is found in any text: `''`, `.*`, `a|`, `^`, `x?`), or it is found in
/// at least [`BROAD_PERCENT`]% of a varied set of log messages ([`PROBES`]).
fn too_broad(pattern: &str, hir: &regex_syntax::hir::Hir) -> Option<String> {
    if hir.properties().minimum_len() == Some(0) {
        return Some("matches the empty string".into());
    }
    // Most patterns start with one of a few known literals (`Connection reset`; `e0\d`:
    // "e0"): a probe holding none of them cannot match, so when too few hold one, no
    // compiling is needed to say the pattern is narrow. Rules are checked at every
    // load, and a run with nothing new must stay quick.
    // Few and short literals are enough to count the probes that may match; many long
    // ones cost more to make than they save.
    let seq = regex_syntax::hir::literal::Extractor::new()
        .limit_class(4)
        .limit_literal_len(16)
        .limit_total(16)
        .extract(hir);
    if let Some(lits) = seq.literals() {
        if lits
            .iter()
            .all(|l| !l.as_bytes().is_empty() && !l.as_bytes().contains(&0))
        {
            // The probes as one text, NUL between them (so no literal spans two): one
            // quick search per literal, not one per literal and probe.
            static JOINED: std::sync::LazyLock<(String, Vec<usize>)> =
                std::sync::LazyLock::new(|| {
                    let mut text = String::new();
                    let mut starts = Vec::new();
                    for p in PROBES {
                        starts.push(text.len());
                        text.push_str(p);
                        text.push('\0');
                    }
                    (text, starts)
                });
            let (text, starts) = &*JOINED;
            let mut found = vec![false; PROBES.len()];
            for l in lits {
                for at in memchr::memmem::find_iter(text.as_bytes(), l.as_bytes()) {
                    found[starts.partition_point(|&s| s <= at) - 1] = true;
                }
            }
            // (a narrow pattern: too few probes hold a literal it needs)
            broad_among(&found)?;
        }
    }
    let re = Regex::new(pattern).ok()?;
    let hits: Vec<bool> = PROBES.iter().map(|p| re.is_match(p)).collect();
    broad_among(&hits)
}

/// The writing system a probe is in, by its first letter: an app logs in one, and a
/// pattern found in nearly all of that one's messages (`[a-zA-Z0-9]`, `e`) silences
/// nearly all of that app's, however rare it is in the others.
fn script_of(text: &str) -> Option<&'static str> {
    let c = text.chars().find(|c| c.is_alphabetic())? as u32;
    Some(match c {
        0..=0x024f => "Latin",
        0x0370..=0x03ff => "Greek",
        0x0400..=0x052f => "Cyrillic",
        0x0590..=0x05ff => "Hebrew",
        0x0600..=0x06ff => "Arabic",
        0x0900..=0x097f => "Devanagari",
        0xac00..=0xd7af | 0x1100..=0x11ff => "Hangul",
        0x3040..=0x30ff | 0x4e00..=0x9fff => "CJK",
        _ => "other",
    })
}

/// The fewest probes of one writing system judged on their own.
const MIN_SCRIPT_PROBES: usize = 4;

/// Whether a pattern found in the probes marked in `hits` counts as matching everything:
/// in [`BROAD_PERCENT`]% of them all, or of those of one writing system.
fn broad_among(hits: &[bool]) -> Option<String> {
    // The probes of each writing system, found once: rules are checked at every load.
    static SCRIPTS: std::sync::LazyLock<Vec<(&'static str, Vec<usize>)>> =
        std::sync::LazyLock::new(|| {
            let mut by: std::collections::BTreeMap<&'static str, Vec<usize>> =
                std::collections::BTreeMap::new();
            for (i, p) in PROBES.iter().enumerate() {
                if let Some(s) = script_of(p).filter(|s| *s != "other") {
                    by.entry(s).or_default().push(i);
                }
            }
            by.into_iter()
                .filter(|(_, of)| of.len() >= MIN_SCRIPT_PROBES)
                .collect()
        });
    let share = |n: usize, of: usize| n * 100 >= of * BROAD_PERCENT;
    let total = hits.iter().filter(|&&h| h).count();
    if share(total, PROBES.len()) {
        return Some(format!(
            "is found in {total} of the {} varied sample log messages it was tried on \
             ({BROAD_PERCENT}% or more counts as matching everything)",
            PROBES.len()
        ));
    }
    SCRIPTS.iter().find_map(|(script, of)| {
        let n = of.iter().filter(|&&i| hits[i]).count();
        share(n, of.len()).then(|| {
            format!(
                "is found in {n} of the {} sample log messages in {script} script it was tried on \
                 ({BROAD_PERCENT}% or more counts as matching every message of an app that logs in it)",
                of.len()
            )
        })
    })
}

/// An expiry given on the command line: `7d` from now, a date (`2026-12-01`, midnight
/// UTC), or an RFC 3339 time. A time already past is refused: the rule would never match.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = match parse_fixed_expiry(text) {
        Ok(t) => t,
        Err(_) => match crate::duration::parse(text) {
            Ok(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| format!("`{text}` is too far in the future"))?,
            Err(_) => {
                return Err(format!(
                    "`{text}` is neither a duration (7d, 12h) nor a date (2026-12-01) nor an RFC 3339 time"
                ))
            }
        },
    };
    if t <= now {
        return Err(format!(
            "`{text}` is already past ({}): the rule would never match",
            crate::store::ts(t)
        ));
    }
    Ok(t)
}

/// An expiry written in a rules file: a date (midnight UTC) or an RFC 3339 time. A
/// duration is refused: counted from each load, it would move with every run and never
/// come (`ignore add --expires 7d` writes the time it stands for).
pub fn parse_fixed_expiry(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    if crate::duration::parse(text).is_ok() {
        return Err(format!(
            "`{text}` is a duration, which would be counted again from every run and never \
             come: write the date or time it ends (2026-12-01, 2026-12-01T08:00:00Z); \
             `logwarden ignore add --expires {text}` writes it for you"
        ));
    }
    Err(format!(
        "`{text}` is neither a date (2026-12-01) nor an RFC 3339 time (2026-12-01T08:00:00Z)"
    ))
}

/// A regex matching the messages of a template: the text escaped, `<*>` as `.*?`.
/// Characters that are not safe to print (controls, bidi, zero-width) are written as
/// `\x{..}` escapes, so the pattern can be shown and pasted as it is.
pub fn pattern_for_template(template: &str) -> String {
    let parts: Vec<String> = template
        .split("<*>")
        .map(|p| {
            regex::escape(p)
                .chars()
                .map(|c| {
                    if crate::sanitize::is_unsafe(c) || c == '\n' || c == '\t' {
                        format!("\\x{{{:x}}}", c as u32)
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("^{}$", parts.join(".*?"))
}

/// The `level` cap of a rule that silences one incident's group: the incident's own
/// level, so that the same message at a higher level (a WARNING that becomes CRITICAL)
/// is still heard. A source's custom level goes in as its number, which every rules
/// file can read.
pub fn level_cap_for(
    config: &crate::config::Config,
    incident: &crate::store::IncidentRow,
) -> String {
    let no = crate::incident::lifecycle::incident_level_no(config, incident);
    let level = &incident.level;
    match Level::parse_config(level, &Default::default()) {
        Some(l) if l.no == no => l.name,
        _ => no.to_string(),
    }
}

/// A pattern for the messages of a template whose secrets were redacted: each
/// placeholder (`[REDACTED:api-key]`, which as a regex would be a character class) and
/// a cut at the end (`…`) stand for any text, like `<*>`. A template with no words of
/// its own gives `^`, for a rule scoped by its signature.
pub fn pattern_for_redacted_template(template: &str) -> String {
    static PLACEHOLDER: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = PLACEHOLDER.get_or_init(|| {
        Regex::new(r"\[REDACTED:[^\]\s]*\]").expect("the placeholder regex compiles")
    });
    let mut t = re.replace_all(template, "<*>").into_owned();
    if let Some(cut) = t.strip_suffix('…') {
        t = format!("{cut}<*>");
    }
    if !template_has_words(&t) {
        return "^".into();
    }
    pattern_for_template(&t)
}

/// Whether a template has words of its own, not only values: a pattern made from one
/// without (`<*>`, `<*>: <*>`) would match nearly every message.
pub fn template_has_words(template: &str) -> bool {
    template
        .split("<*>")
        .any(|p| p.chars().any(char::is_alphanumeric))
}

/// A word quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The `logwarden ignore add` command that would silence a group: a pattern from its
/// template when the template has words of its own; for a template that is all values,
/// a rule scoped to its signature instead (never a pattern that matches everything).
/// None when neither fits (no words and no log signature).
/// `level` caps the rule (see [`level_cap_for`]), so that the same message at a higher
/// level is still heard.
pub fn suggest_command(
    template: &str,
    signature: &str,
    source: &str,
    level: Option<&str>,
    comment: &str,
) -> Option<String> {
    let scope = if template_has_words(template) {
        shell_quote(&pattern_for_template(template))
    } else {
        signature.parse::<Signature>().ok()?;
        format!("'^' --signature {}", shell_quote(signature))
    };
    let level = level
        .map(|l| format!(" --level {}", shell_quote(l)))
        .unwrap_or_default();
    Some(format!(
        "logwarden ignore add {scope} --source {}{level} --comment {}",
        shell_quote(source),
        shell_quote(comment)
    ))
}

/// The `logwarden ignore add --from-incident` command that silences an incident's group.
/// The pattern is made by that command from the stored template with its secrets
/// redacted, never pasted from a page whose redaction would break it. None for an
/// incident with no log signature (a metric's).
pub fn suggest_for_incident(id: i64, signature: &str, comment: &str) -> Option<String> {
    signature.parse::<Signature>().ok()?;
    Some(format!(
        "logwarden ignore add --from-incident {id} --comment {}",
        shell_quote(comment)
    ))
}

/// A rule to add from the command line.
#[derive(Debug, Clone, Default)]
pub struct NewRule {
    pub pattern: String,
    pub source: Option<String>,
    pub level: Option<String>,
    pub signature: Option<String>,
    pub expires: Option<DateTime<Utc>>,
    pub comment: String,
    pub author: String,
    /// The incident a phone mute was tapped on (see [`remove_mutes_of`]).
    pub incident: Option<i64>,
    /// Accept a pattern that matches every message (it must then carry a level cap
    /// below CRITICAL).
    pub force: bool,
}

const HEADER: &str =
    "# logwarden ignore rules. Manage them with `logwarden ignore add|list|rm|test`;
# hand edits (comments included) are kept. `pattern` is a regex searched in the
# message; `source`, `level` (this level or below), `signature` narrow it; a rule
# stops matching once `expires` is past.
";

/// How long a change to a rules file waits for another one in progress.
const EDIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The ids of the phone's mutes: `m1`, `m2`, … (rules from the shell are numbers).
pub const MUTE_ID_PREFIX: &str = "m";

/// Where a new rule goes and what its id looks like.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub path: &'a Path,
    /// Other rules files whose ids the new id must not repeat.
    pub others: &'a [&'a Path],
    /// The owner and mode of the file when it is created.
    pub new_file: crate::fsio::NewFile<'a>,
    /// Ids are this prefix and a number (`m3` for mutes), unique across the files.
    pub id_prefix: &'a str,
}

/// Adds a rule to the file (created if missing), keeping everything else in it as it
/// was. Returns the new rule's id.
pub fn add_rule(target: Target, rule: &NewRule, now: DateTime<Utc>) -> Result<String, String> {
    let path = target.path;
    let _lock = crate::fsio::edit_lock(path, EDIT_WAIT)?;
    let text = read_or_empty(path)?;
    let mut others = Vec::new();
    for other in target.others {
        // A file this user cannot read cannot hold ids of this prefix's kind (mutes are
        // `m…`, rules from the shell numbers), so an unreadable one is skipped.
        if let Ok(Some(text)) = crate::fsio::read_optional(other) {
            if let Ok(d) = text.parse::<DocumentMut>() {
                others.extend(ids_in(&d));
            }
        }
    }
    let (text, id) = add_rule_with(
        &text,
        &path.display().to_string(),
        rule,
        now,
        target.id_prefix,
        &others,
    )?;
    crate::fsio::replace(path, text.as_bytes(), target.new_file)?;
    Ok(id)
}

/// [`add_rule`] on the text of a file named `file` (for messages), numeric ids: the new
/// text and the new rule's id.
pub fn add_rule_to_text(
    text: &str,
    file: &str,
    rule: &NewRule,
    now: DateTime<Utc>,
) -> Result<(String, String), String> {
    add_rule_with(text, file, rule, now, "", &[])
}

fn add_rule_with(
    text: &str,
    file: &str,
    rule: &NewRule,
    now: DateTime<Utc>,
    id_prefix: &str,
    other_ids: &[String],
) -> Result<(String, String), String> {
    if let Err(e) = Regex::new(&rule.pattern) {
        return Err(format!("the pattern is not a valid regex: {e}"));
    }
    if let Some(sig) = &rule.signature {
        sig.parse::<Signature>().map_err(|e| e.to_string())?;
    }
    let level = match &rule.level {
        Some(l) => Some(
            Level::parse_config(l, &Default::default())
                .ok_or_else(|| format!("unknown level `{l}`"))?,
        ),
        None => None,
    };
    // Like amtool, which refuses a silence whose matchers all match the empty string:
    // a pattern found in every message silences everything, CRITICAL included.
    let hir = regex_syntax::Parser::new()
        .parse(&rule.pattern)
        .map_err(|e| format!("the pattern is not a valid regex: {e}"))?;
    if let (Some(why), None) = (too_broad(&rule.pattern, &hir), &rule.signature) {
        let capped = level.as_ref().is_some_and(caps_below_critical);
        if !rule.force {
            return Err(format!(
                "the pattern {why}: the rule would silence nearly every record, CRITICAL included. \
                 Narrow the pattern, scope it with --signature, or give --force with a \
                 --level below CRITICAL"
            ));
        }
        if !capped {
            return Err(format!(
                "the pattern {why}: --force needs a --level below CRITICAL (WARNING, ERROR), \
                 so that critical records are still heard"
            ));
        }
    }
    // Refuse to touch a file that does not load: the user must fix it first.
    IgnoreRules::parse(text, now).map_err(|p| {
        format!(
            "{file} has problems; fix them first:\n  - {}",
            p.join("\n  - ")
        )
    })?;
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{file}: {e}"))?;
    // A file with no rule yet keeps its comments (in a new file, our header) above the
    // first rule: toml_edit holds them as the document's trailing text, below any table.
    let first = !matches!(doc.get("rule"), Some(Item::ArrayOfTables(a)) if !a.is_empty());
    let mut lead = String::new();
    if first {
        lead = doc.trailing().as_str().unwrap_or("").to_string();
        if text.trim().is_empty() {
            lead = HEADER.to_string();
        }
        if !lead.is_empty() && !lead.ends_with("\n\n") {
            lead.push('\n');
        }
        doc.set_trailing("");
    }
    let mut ids = ids_in(&doc);
    ids.extend(other_ids.iter().cloned());
    // A hand-edited id at i64::MAX leaves none after it: an error, not an overflow.
    let n = ids
        .iter()
        .filter_map(|id| id.strip_prefix(id_prefix))
        .filter_map(|s| s.parse::<i64>().ok())
        .max()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| format!("{file}: no rule id is left after the largest"))?;
    let mut t = Table::new();
    let next_id = if id_prefix.is_empty() {
        t.insert("id", value(n));
        n.to_string()
    } else {
        let id = format!("{id_prefix}{n}");
        t.insert("id", value(id.clone()));
        id
    };
    t.insert("pattern", value(rule.pattern.clone()));
    // The comment may quote log text (a phone mute quotes the incident's title): one
    // line, with no control or bidi character to hide what the file says from its reader.
    t.insert("comment", value(crate::sanitize::line(&rule.comment)));
    if let Some(s) = &rule.source {
        t.insert("source", value(s.clone()));
    }
    if let Some(l) = &rule.level {
        t.insert("level", value(l.to_ascii_uppercase()));
    }
    if let Some(s) = &rule.signature {
        t.insert("signature", value(s.clone()));
    }
    if let Some(e) = rule.expires {
        t.insert("expires", value(crate::store::ts(e)));
    }
    t.insert("created", value(crate::store::ts(now)));
    t.insert("author", value(rule.author.clone()));
    if let Some(i) = rule.incident {
        t.insert("incident", value(i));
    }
    if !lead.is_empty() {
        t.decor_mut().set_prefix(lead);
    }
    match doc.get_mut("rule") {
        Some(Item::ArrayOfTables(a)) => a.push(t),
        Some(_) => return Err(format!("{file}: `rule` is not an array of tables")),
        None => {
            let mut a = toml_edit::ArrayOfTables::new();
            a.push(t);
            doc.insert("rule", Item::ArrayOfTables(a));
        }
    }
    Ok((doc.to_string(), next_id))
}

/// Removes the rules of a file that expired before `before`, except the one with the
/// highest id of the prefix (ids are never handed out twice, so hit counts stay apart).
/// Keeps the file of phone mutes from growing forever. Returns how many were removed.
pub fn prune_expired(
    path: &Path,
    id_prefix: &str,
    before: DateTime<Utc>,
    _now: DateTime<Utc>,
) -> Result<usize, String> {
    let _lock = crate::fsio::edit_lock(path, EDIT_WAIT)?;
    let Some(text) = crate::fsio::read_optional(path)? else {
        return Ok(0);
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let number = |t: &Table| {
        t.get("id").and_then(item_id).and_then(|id| {
            id.strip_prefix(id_prefix)
                .and_then(|n| n.parse::<i64>().ok())
        })
    };
    let Some(Item::ArrayOfTables(rules)) = doc.get_mut("rule") else {
        return Ok(0);
    };
    let highest = rules.iter().filter_map(number).max();
    let old: Vec<usize> = (0..rules.len())
        .filter(|&i| {
            let t = rules.get(i).expect("in range");
            let expired = t
                .get("expires")
                .and_then(Item::as_str)
                .and_then(|e| parse_fixed_expiry(e).ok())
                .is_some_and(|e| e < before);
            expired && number(t) != highest
        })
        .collect();
    for &i in old.iter().rev() {
        remove_keeping_comments(&mut doc, i);
    }
    if !old.is_empty() {
        crate::fsio::replace(
            path,
            doc.to_string().as_bytes(),
            crate::fsio::NewFile::DirOwner(0o640),
        )?;
    }
    Ok(old.len())
}

/// Whether the file at `path` holds a rule with this id (an unreadable file is an error).
pub fn has_rule(path: &Path, id: &str) -> Result<bool, String> {
    let Some(text) = crate::fsio::read_optional(path)? else {
        return Ok(false);
    };
    let doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(rule_ids(&doc).iter().any(|i| i == id))
}

/// Removes the rule with this id; everything else in the file stays as it was. Ids of
/// this file's kind are `id_prefix` and a number (see [`Target`]).
pub fn remove_rule(path: &Path, id: &str, id_prefix: &str) -> Result<(), String> {
    let removed = remove_where(path, id_prefix, |t| {
        t.get("id").and_then(item_id).as_deref() == Some(id)
    })?;
    if removed.is_empty() {
        return Err(format!("no rule with id {id}"));
    }
    Ok(())
}

/// Removes the phone mutes tapped on `incident` (their `incident` key), returning their
/// ids. A person who resolves an incident says it is over: a mute of it must not
/// silence its return, as a Mute button of a resolved incident mutes nothing.
pub fn remove_mutes_of(path: &Path, incident: i64) -> Result<Vec<String>, String> {
    if crate::fsio::read_optional(path)?.is_none() {
        return Ok(Vec::new());
    }
    remove_where(path, MUTE_ID_PREFIX, |t| {
        t.get("incident").and_then(Item::as_integer) == Some(incident)
    })
}

/// Ends the phone mutes of an incident just resolved, saying so (see
/// [`remove_mutes_of`]).
pub fn end_mutes(config: &crate::config::Config, incident: i64) -> Option<Result<String, String>> {
    let path = config.mutes_file();
    match remove_mutes_of(&path, incident) {
        Ok(ids) if ids.is_empty() => None,
        Ok(ids) => Some(Ok(format!(
            "incident #{incident}: phone mute {} ended with it (its return pages)",
            ids.join(", ")
        ))),
        Err(e) => Some(Err(format!(
            "incident #{incident}: its phone mutes could not be ended ({e}); \
             `logwarden ignore list` shows them, `logwarden ignore rm ID` removes one"
        ))),
    }
}

/// Removes the rules `pick` chooses, under the file's edit lock, keeping everything
/// else as it was (comments, and the largest id handed out: see [`remember_last_id`]);
/// their ids. A file with none of them is not rewritten.
fn remove_where(
    path: &Path,
    id_prefix: &str,
    pick: impl Fn(&Table) -> bool,
) -> Result<Vec<String>, String> {
    let _lock = crate::fsio::edit_lock(path, EDIT_WAIT)?;
    let text = read_or_empty(path)?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(Item::ArrayOfTables(rules)) = doc.get("rule") else {
        return Ok(Vec::new());
    };
    let picked: Vec<(usize, String)> = rules
        .iter()
        .enumerate()
        .filter(|(_, t)| pick(t))
        .map(|(i, t)| (i, t.get("id").and_then(item_id).unwrap_or_default()))
        .collect();
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    for (index, id) in picked.iter().rev() {
        remove_keeping_comments(&mut doc, *index);
        remember_last_id(&mut doc, id, id_prefix);
    }
    // An existing file: its owner and mode are kept.
    crate::fsio::replace(
        path,
        doc.to_string().as_bytes(),
        crate::fsio::NewFile::DirOwner(0o640),
    )?;
    Ok(picked.into_iter().map(|(_, id)| id).collect())
}

/// Removes the `index`th rule table. The comments above a rule are its own only from
/// the last blank line on; what is above that (the file's header, a section title)
/// moves to the table that follows, or to the end of the file. Above the first rule,
/// comments with no blank line are the file's header and are all kept.
fn remove_keeping_comments(doc: &mut DocumentMut, index: usize) {
    let Some(Item::ArrayOfTables(rules)) = doc.get_mut("rule") else {
        return;
    };
    let prefix = rules.get(index).map(table_prefix).unwrap_or_default();
    rules.remove(index);
    let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    let kept = match lines.iter().rposition(|l| l.trim().is_empty()) {
        Some(blank) => lines[..=blank].concat(),
        None if index == 0 => prefix.clone(),
        None => String::new(),
    };
    if kept.trim().is_empty() {
        return;
    }
    match rules.get_mut(index) {
        Some(next) => {
            let own = table_prefix(next);
            // The kept text ends with its blank line: the next rule's own blank lines
            // above it would pile up, one more each time a first rule is removed.
            let own = if kept.ends_with("\n\n") {
                let blank = own
                    .split_inclusive('\n')
                    .take_while(|l| l.trim().is_empty() && l.ends_with('\n'))
                    .map(str::len)
                    .sum::<usize>();
                own[blank..].to_string()
            } else {
                own
            };
            next.decor_mut().set_prefix(format!("{kept}{own}"));
        }
        None => {
            let trailing = doc.trailing().as_str().unwrap_or("").to_string();
            doc.set_trailing(format!(
                "{}{trailing}",
                kept.trim_end_matches('\n').to_string() + "\n"
            ));
        }
    }
}

/// The top-level key that keeps the largest id of a removed rule, so that the next
/// rule gets a new id: its hits, and whatever a person wrote down about "rule 7", stay
/// the old rule's.
const LAST_ID: &str = "last_id";

/// After `removed` left the file: records it as [`LAST_ID`] when it is an id of the
/// kind this file hands out (`id_prefix` and a number) and the largest of that kind
/// the file still knew. Only the value changes when the key is there already.
fn remember_last_id(doc: &mut DocumentMut, removed: &str, id_prefix: &str) {
    let number = |id: &str| -> Option<i64> { id.strip_prefix(id_prefix)?.parse().ok() };
    let Some(n) = number(removed) else {
        return;
    };
    if ids_in(doc)
        .iter()
        .filter_map(|id| number(id))
        .any(|m| m >= n)
    {
        return;
    }
    let v = if id_prefix.is_empty() {
        value(n)
    } else {
        value(removed)
    };
    if let Some(item) = doc.get_mut(LAST_ID) {
        *item = v;
        return;
    }
    // The key is written above every table: the file's header moves above it, to stay
    // the header. That is the first rule's comments up to their last blank line, or
    // all of them when no blank line parts them from the rule (as `rm` reads it).
    let mut header = String::new();
    let no_rule = rule_ids(doc).is_empty();
    if no_rule {
        // With no table left, the comments are the document's trailing text.
        header = doc.trailing().as_str().unwrap_or("").trim_end().to_string();
        if !header.is_empty() {
            header.push_str("\n\n");
        }
        doc.set_trailing("");
    } else if let Some(Item::ArrayOfTables(rules)) = doc.get_mut("rule") {
        if let Some(first) = rules.get_mut(0) {
            let prefix = table_prefix(first);
            let cut = match prefix.rfind("\n\n") {
                Some(blank) => blank + 2,
                None => prefix.len(),
            };
            if !prefix[..cut].trim().is_empty() {
                header = prefix[..cut].trim_end().to_string() + "\n\n";
                first
                    .decor_mut()
                    .set_prefix(format!("\n{}", &prefix[cut..]));
            }
        }
    }
    doc.insert(LAST_ID, v);
    if let Some(mut key) = doc.as_table_mut().key_mut(LAST_ID) {
        key.leaf_decor_mut().set_prefix(format!(
            "{header}# The largest id a removed rule had: new rules get larger ones.\n"
        ));
    }
}

/// The comments and blank lines above a table (its header included), as written.
fn table_prefix(t: &Table) -> String {
    t.decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string()
}

fn item_id(item: &Item) -> Option<String> {
    item.as_integer()
        .map(|i| i.to_string())
        .or_else(|| item.as_str().map(str::to_string))
}

/// The ids handed out: the rules' and [`LAST_ID`].
fn ids_in(doc: &DocumentMut) -> Vec<String> {
    let mut ids = rule_ids(doc);
    ids.extend(doc.get(LAST_ID).and_then(item_id));
    ids
}

fn rule_ids(doc: &DocumentMut) -> Vec<String> {
    match doc.get("rule") {
        Some(Item::ArrayOfTables(a)) => a
            .iter()
            .filter_map(|t| t.get("id").and_then(item_id))
            .collect(),
        _ => Vec::new(),
    }
}

fn read_or_empty(path: &Path) -> Result<String, String> {
    Ok(crate::fsio::read_optional(path)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(msg: &str, level: u32) -> Event {
        Event {
            source: "app".into(),
            origin: "app.log:1".into(),
            time: None,
            level: Level {
                name: "X".into(),
                no: level,
            },
            logger: None,
            location: None,
            message: msg.into(),
            traceback: None,
            exception_type: None,
            exception_line: None,
            raw: msg.into(),
            fields: Default::default(),
        }
    }

    #[test]
    fn scope_and_expiry() {
        let now = Utc::now();
        let text = r#"
[[rule]]
id = 1
pattern = "reset by peer"
level = "WARNING"
comment = "flaky upstream"

[[rule]]
id = 2
pattern = "timeout"
expires = "2000-01-01"
comment = "old"
"#;
        let rules = IgnoreRules::parse(text, now).unwrap();
        assert_eq!(
            rules
                .matching(&event("connection reset by peer", 30), Signature(1))
                .unwrap()
                .id,
            "1"
        );
        assert!(rules
            .matching(&event("connection reset by peer", 40), Signature(1))
            .is_none());
        assert!(rules
            .matching(&event("timeout", 30), Signature(1))
            .is_none());
    }

    #[test]
    fn an_expiry_past_the_calendar_is_an_error_not_a_panic() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = parse_expiry("100000000w", now).unwrap_err();
        assert!(e.contains("too far"), "{e}");
        let text = "[[rule]]\nid = 1\npattern = \"x\"\nexpires = \"99999999999999999999999999999999999999d\"\n";
        let err = IgnoreRules::parse(text, now).unwrap_err();
        assert!(err[0].starts_with("line 4: rule 1: expires:"), "{err:?}");
        assert_eq!(
            parse_expiry("7d", now).unwrap().to_rfc3339(),
            "2026-11-29T10:00:00+00:00"
        );
    }

    #[test]
    fn a_comment_quoting_log_text_is_one_visible_line() {
        let rule = NewRule {
            pattern: "^payment".into(),
            comment: "muted for #3: admin\u{202e}txt.exe\nrule = 'x'".into(),
            ..NewRule::default()
        };
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (text, _) = add_rule_to_text("", "ignore.toml", &rule, now).unwrap();
        assert!(!text.contains('\u{202e}'), "{text}");
        assert!(
            text.contains("comment = \"muted for #3: admin⟨U+202E⟩txt.exe rule = 'x'\""),
            "{text}"
        );
    }

    #[test]
    fn adding_after_the_largest_possible_id_is_an_error() {
        let now = Utc::now();
        let rule = NewRule {
            pattern: "x".into(),
            comment: "c".into(),
            ..NewRule::default()
        };
        let full = format!("[[rule]]\nid = {}\npattern = \"a\"\n", i64::MAX);
        let e = add_rule_to_text(&full, "ignore.toml", &rule, now).unwrap_err();
        assert!(e.starts_with("ignore.toml: no rule id is left"), "{e}");
        let (text, id) =
            add_rule_to_text("[[rule]]\nid = 41\npattern = \"a\"\n", "f", &rule, now).unwrap();
        assert_eq!(id, "42");
        let rules = IgnoreRules::parse(&text, now).unwrap();
        assert_eq!(rules.rules.len(), 2);
        assert_eq!(rules.rules[1].pattern, "x");
    }

    #[test]
    fn a_resolved_incident_takes_its_own_mutes_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mutes.toml");
        let mute = |id: &str, incident: i64| {
            format!("[[rule]]\nid = \"{id}\"\npattern = \"^\"\nlevel = \"ERROR\"\nincident = {incident}\n\n")
        };
        let text = format!("{}{}{}", mute("m1", 4), mute("m2", 7), mute("m3", 4));
        std::fs::write(&p, &text).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(IgnoreRules::parse(&text, now).unwrap().rules.len(), 3);
        assert_eq!(remove_mutes_of(&p, 4).unwrap(), ["m1", "m3"]);
        let left = std::fs::read_to_string(&p).unwrap();
        let rules = IgnoreRules::parse(&left, now).unwrap();
        assert_eq!(rules.rules.len(), 1, "{left}");
        assert_eq!(rules.rules[0].id, "m2");
        // m3 was the largest id: it is not handed out again.
        assert!(left.contains("last_id = \"m3\""), "{left}");
        assert!(remove_mutes_of(&p, 4).unwrap().is_empty());
        assert!(remove_mutes_of(&dir.path().join("none.toml"), 4)
            .unwrap()
            .is_empty());
        let bad = mute("m1", 0).replace("incident = 0", "incident = \"4\"");
        let e = IgnoreRules::parse(&bad, now).unwrap_err();
        assert!(
            e.iter()
                .any(|p| p.contains("`incident` must be an incident number")),
            "{:?}",
            e
        );
    }

    #[test]
    fn prunes_long_expired_mutes_but_never_the_last_id() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mutes.toml");
        let rule = |id: &str, exp: &str| {
            format!("[[rule]]\nid = \"{id}\"\npattern = \"^\"\nexpires = \"{exp}\"\n\n")
        };
        std::fs::write(
            &p,
            format!(
                "# mutes\n{}{}{}",
                rule("m1", "2026-10-01T00:00:00Z"),
                rule("m2", "2026-11-30T00:00:00Z"),
                rule("m3", "2026-10-02T00:00:00Z")
            ),
        )
        .unwrap();
        let now: DateTime<Utc> = "2026-11-22T00:00:00Z".parse().unwrap();
        let before = now - chrono::Duration::days(7);
        assert_eq!(prune_expired(&p, "m", before, now).unwrap(), 1);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("# mutes"), "{text}");
        assert!(!text.contains("\"m1\""), "{text}");
        assert!(text.contains("\"m2\"") && text.contains("\"m3\""), "{text}");
        assert_eq!(prune_expired(&p, "m", before, now).unwrap(), 0);
    }

    #[test]
    fn a_value_only_template_never_gets_a_match_all_pattern() {
        let sig = crate::signature::signature(crate::signature::GroupId(7), None, None).to_string();
        for t in ["<*>", "<*> <*>", "<*>: <*>", " <*> - <*> "] {
            let c = suggest_command(t, &sig, "app", None, "why").unwrap();
            assert!(c.contains(&format!("--signature '{sig}'")), "{t}: {c}");
            assert!(!c.contains(".*?"), "{t}: {c}");
        }
        assert_eq!(
            suggest_command("<*>", "metric:cpu:x", "app", None, "why"),
            None
        );
        let c = suggest_command("Timeout after <*>", &sig, "app", Some("ERROR"), "why").unwrap();
        assert!(
            c.starts_with("logwarden ignore add '^Timeout after .*?$'"),
            "{c}"
        );
        assert!(!c.contains("--signature"), "{c}");
        assert!(c.contains(" --level 'ERROR' --comment"), "{c}");
    }

    #[test]
    fn patterns_escape_what_cannot_be_printed() {
        let p = pattern_for_template("bad \x1b]52;c;x\x07 <*>");
        assert!(!p.chars().any(crate::sanitize::is_unsafe), "{p}");
        let re = Regex::new(&p).unwrap();
        assert!(re.is_match("bad \x1b]52;c;x\x07 tail"));
    }

    #[test]
    fn redacted_parts_and_a_cut_become_wildcards() {
        let p = pattern_for_redacted_template("key [REDACTED:api-key] refused for <*> at [x]");
        assert_eq!(p, r"^key .*? refused for .*? at \[x\]$");
        let re = Regex::new(&p).unwrap();
        assert!(re.is_match("key sk-123 refused for bob at [x]"));
        let cut = pattern_for_redacted_template("long message cut here…");
        assert!(Regex::new(&cut)
            .unwrap()
            .is_match("long message cut here and more"));
        assert_eq!(pattern_for_redacted_template("[REDACTED:jwt] <*>"), "^");
    }

    #[test]
    fn broad_patterns_are_told_from_narrow_ones() {
        let broad = |p: &str| too_broad(p, &regex_syntax::Parser::new().parse(p).unwrap());
        for p in [
            "",
            ".*",
            "a|",
            "^",
            "$",
            "x?",
            ".",
            "(?s).",
            r"[\s\S]",
            r"\S|\s",
            "..",
            r"[^\n]",
            r"\b|x",
            // None of these matches the empty string, yet each is in nearly every message.
            r"\S",
            r"\w",
            r"[^\s]",
            " ",
            r"\s",
            r"[[:print:]]|\s",
            r"\D",
            r"\W",
            r"[^x]",
            r"\b",
            r"\S+",
            r".+",
            r"\w+ \w+",
            r"[\w\W]",
            r"(?i)[^q]",
            r"\p{Any}",
            // Rare in other scripts, yet in nearly every message of an app that logs
            // in Latin (or Cyrillic) script.
            "[a-zA-Z0-9]",
            "(?i)[a-z]",
            "[a-z]{2}",
            "e",
            "[а-яА-Я]",
        ] {
            assert!(broad(p).is_some(), "{p:?} passed");
        }
        for p in [
            r"\d+",
            "(?i)failed",
            "ошибка|Ошибка",
            "[A-Z]{2}",
            "Connection reset",
            "ConnectionResetError",
            r"timeout after \d+s",
            "^GET /health",
            "^Timeout after .*?$",
            "(?i)error",
            "(?i)timeout|refused",
            r"Errno \d+",
            "[[:upper:]]{5}",
        ] {
            assert!(broad(p).is_none(), "{p:?} refused: {:?}", broad(p));
        }
        let why = broad(r"\S").unwrap();
        assert!(
            why.contains(&format!("of the {} varied", PROBES.len())),
            "{why}"
        );
    }

    #[test]
    fn the_probes_are_varied() {
        // Near-empty messages, messages in other scripts and without spaces, and
        // multi-line ones: a pattern must match more than ASCII words to pass as broad.
        assert!(PROBES.contains(&""));
        assert!(PROBES.iter().any(|p| p.contains('\n')));
        assert!(PROBES.iter().filter(|p| !p.is_ascii()).count() >= 15);
        assert!(PROBES.iter().filter(|p| !p.contains(' ')).count() >= 8);
        assert!(PROBES.len() >= 80);
    }

    #[test]
    fn bad_regex_reported_with_line() {
        let err = IgnoreRules::parse("\n[[rule]]\nid = 1\npattern = \"(unclosed\"\n", Utc::now())
            .unwrap_err();
        assert!(err[0].starts_with("line 4:"), "{err:?}");
    }

    #[test]
    fn the_signature_is_worked_out_only_for_a_rule_scoped_to_one() {
        let sig = Signature(0x00ab_cdef_0123_4567);
        let text = format!(
            "[[rule]]\nid = 1\npattern = \"a\"\nsignature = \"{sig}\"\n\n[[rule]]\nid = 2\npattern = \"b\"\n"
        );
        let rules = IgnoreRules::parse(&text, Utc::now()).unwrap();
        let calls = std::cell::Cell::new(0);
        let lazy = |msg: &str, s: Signature| {
            rules
                .matching_lazy(&event(msg, 30), || {
                    calls.set(calls.get() + 1);
                    Ok::<_, ()>(s)
                })
                .unwrap()
                .map(|r| r.id.clone())
        };
        assert_eq!(lazy("b", sig).as_deref(), Some("2"));
        assert_eq!(lazy("x", sig), None);
        assert_eq!(calls.get(), 0, "no scoped rule was reached");
        assert_eq!(lazy("a", sig).as_deref(), Some("1"));
        assert_eq!(lazy("ab", Signature(1)).as_deref(), Some("2"));
        assert_eq!(lazy("a", Signature(1)), None);
        assert_eq!(calls.get(), 3, "once per message that reached rule 1");
        // An error working it out is the caller's.
        let err = rules.matching_lazy(&event("a", 30), || Err::<Signature, _>("store"));
        assert_eq!(err.unwrap_err(), "store");
    }
}
