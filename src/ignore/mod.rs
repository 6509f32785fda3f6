//! Ignore rules: what the team has said is not worth a page. Rules live in a TOML file
//! (like amtool silences: pattern, scope, expiry, comment) that the `logwarden ignore`
//! commands edit without disturbing the user's own comments and formatting.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use regex::{Regex, RegexSet};
use serde::Deserialize;
use toml_edit::{value, DocumentMut, Item, Table};

use crate::config::line_of;
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
}

impl Rule {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// The rules of one file, ready to match.
#[derive(Debug, Default)]
pub struct IgnoreRules {
    pub rules: Vec<Rule>,
    /// The active rules' patterns as one set, compiled on first use.
    set: std::sync::OnceLock<Option<RegexSet>>,
    /// Rules in `set`, by index (only those not expired at load time).
    active: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("ignore rules file {}:\n{}", path.display(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct IgnoreFileError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: toml::Value,
    pattern: toml::Spanned<String>,
    #[serde(default)]
    comment: String,
    source: Option<String>,
    level: Option<String>,
    signature: Option<toml::Spanned<String>>,
    expires: Option<toml::Spanned<String>>,
    created: Option<String>,
    author: Option<String>,
}

impl IgnoreRules {
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
        IgnoreRules::parse(&text, now).map_err(|problems| IgnoreFileError {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// Parses rules text, reporting every bad rule with its line.
    pub fn parse(text: &str, now: DateTime<Utc>) -> Result<IgnoreRules, Vec<String>> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            vec![format!("line {line}: {}", e.message())]
        })?;
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for r in raw.rule {
            let line = line_of(text, r.pattern.span().start);
            let id = match &r.id {
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::String(s) => s.clone(),
                other => {
                    problems.push(format!(
                        "line {line}: `id` must be a number or a string, not {other}"
                    ));
                    continue;
                }
            };
            // Checked by parsing only: the rules are compiled (into one set) when the
            // first event needs them, so a run with nothing new stays quick.
            match regex_syntax::Parser::new().parse(r.pattern.get_ref()) {
                Ok(_) => {}
                Err(e) => {
                    problems.push(format!(
                        "line {line}: rule {id}: pattern is not a valid regex: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ));
                    continue;
                }
            };
            let signature = match &r.signature {
                None => None,
                Some(s) => match s.get_ref().parse() {
                    Ok(sig) => Some(sig),
                    Err(e) => {
                        problems.push(format!(
                            "line {}: rule {id}: {e}",
                            line_of(text, s.span().start)
                        ));
                        continue;
                    }
                },
            };
            let expires = match &r.expires {
                None => None,
                Some(s) => match parse_expiry(s.get_ref(), now) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problems.push(format!(
                            "line {}: rule {id}: expires: {e}",
                            line_of(text, s.span().start)
                        ));
                        continue;
                    }
                },
            };
            let level = match r.level.as_deref() {
                None => None,
                Some(l) => match Level::parse_config(l, &Default::default()) {
                    Some(level) => Some(level),
                    None => {
                        problems.push(format!("line {line}: rule {id}: unknown level `{l}`"));
                        continue;
                    }
                },
            };
            rules.push(Rule {
                id,
                pattern: r.pattern.into_inner(),
                source: r.source,
                level,
                signature,
                expires,
                comment: r.comment,
                created: r.created,
                author: r.author,
            });
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

    /// The first rule (in file order) that matches the event, if any.
    pub fn matching(&self, event: &Event, sig: Signature) -> Option<&Rule> {
        if self.active.is_empty() {
            return None;
        }
        let set = self
            .set
            .get_or_init(|| {
                RegexSet::new(self.active.iter().map(|&i| self.rules[i].pattern.as_str())).ok()
            })
            .as_ref()?;
        let mut hits = set.matches(&event.message);
        if !hits.matched_any() {
            if let Some(line) = &event.exception_line {
                hits = set.matches(line);
            }
        }
        hits.iter().map(|i| &self.rules[self.active[i]]).find(|r| {
            r.source.as_ref().is_none_or(|s| *s == event.source)
                && r.level.as_ref().is_none_or(|l| event.level.no <= l.no)
                && r.signature.is_none_or(|s| s == sig)
        })
    }
}

/// `7d` from now, a date (`2026-12-01`, midnight UTC), or an RFC 3339 time.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    match crate::duration::parse(text) {
        Ok(d) => Ok(now + chrono::Duration::from_std(d).map_err(|e| e.to_string())?),
        Err(_) => Err(format!(
            "`{text}` is neither a duration (7d, 12h) nor a date (2026-12-01) nor an RFC 3339 time"
        )),
    }
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
pub fn suggest_command(
    template: &str,
    signature: &str,
    source: &str,
    comment: &str,
) -> Option<String> {
    let scope = if template_has_words(template) {
        shell_quote(&pattern_for_template(template))
    } else {
        signature.parse::<Signature>().ok()?;
        format!("'^' --signature {}", shell_quote(signature))
    };
    Some(format!(
        "logwarden ignore add {scope} --source {} --comment {}",
        shell_quote(source),
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
}

const HEADER: &str =
    "# logwarden ignore rules. Manage them with `logwarden ignore add|list|rm|test`;
# hand edits (comments included) are kept. `pattern` is a regex searched in the
# message; `source`, `level` (this level or below), `signature` narrow it; a rule
# stops matching once `expires` is past.
";

/// Adds a rule to the file (created if missing), keeping everything else in it as it
/// was. Returns the new rule's id.
pub fn add_rule(path: &Path, rule: &NewRule, now: DateTime<Utc>) -> Result<String, String> {
    if let Err(e) = Regex::new(&rule.pattern) {
        return Err(format!("the pattern is not a valid regex: {e}"));
    }
    if let Some(sig) = &rule.signature {
        sig.parse::<Signature>().map_err(|e| e.to_string())?;
    }
    if let Some(l) = &rule.level {
        Level::parse_config(l, &Default::default())
            .ok_or_else(|| format!("unknown level `{l}`"))?;
    }
    let text = read_or_empty(path)?;
    // Refuse to touch a file that does not load: the user must fix it first.
    IgnoreRules::parse(&text, now).map_err(|p| {
        format!(
            "{} has problems; fix them first:\n  - {}",
            path.display(),
            p.join("\n  - ")
        )
    })?;
    let mut doc: DocumentMut = if text.trim().is_empty() {
        HEADER.parse().expect("header parses")
    } else {
        text.parse()
            .map_err(|e| format!("{}: {e}", path.display()))?
    };
    let next_id = next_id(&doc);
    let mut t = Table::new();
    t.insert("id", value(next_id));
    t.insert("pattern", value(rule.pattern.clone()));
    t.insert("comment", value(rule.comment.clone()));
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
    match doc.get_mut("rule") {
        Some(Item::ArrayOfTables(a)) => a.push(t),
        Some(_) => {
            return Err(format!(
                "{}: `rule` is not an array of tables",
                path.display()
            ))
        }
        None => {
            let mut a = toml_edit::ArrayOfTables::new();
            a.push(t);
            doc.insert("rule", Item::ArrayOfTables(a));
        }
    }
    write_atomically(path, &doc.to_string())?;
    Ok(next_id.to_string())
}

/// Removes the rule with this id; everything else in the file stays as it was.
pub fn remove_rule(path: &Path, id: &str) -> Result<(), String> {
    let text = read_or_empty(path)?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(Item::ArrayOfTables(rules)) = doc.get_mut("rule") else {
        return Err(format!("no rule with id {id}"));
    };
    let index = (0..rules.len())
        .find(|&i| {
            rules
                .get(i)
                .and_then(|t| t.get("id"))
                .map(|v| item_id(v).as_deref() == Some(id))
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("no rule with id {id}"))?;
    rules.remove(index);
    write_atomically(path, &doc.to_string())
}

fn item_id(item: &Item) -> Option<String> {
    item.as_integer()
        .map(|i| i.to_string())
        .or_else(|| item.as_str().map(str::to_string))
}

fn next_id(doc: &DocumentMut) -> i64 {
    let max = match doc.get("rule") {
        Some(Item::ArrayOfTables(a)) => a
            .iter()
            .filter_map(|t| t.get("id").and_then(item_id))
            .filter_map(|s| s.parse::<i64>().ok())
            .max()
            .unwrap_or(0),
        _ => 0,
    };
    max + 1
}

fn read_or_empty(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes a file through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    // In its own folder, never through a symlink at `path`.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::safefs::write_under(dir, path, text)
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
    fn a_value_only_template_never_gets_a_match_all_pattern() {
        let sig = crate::signature::signature(crate::signature::GroupId(7), None, None).to_string();
        for t in ["<*>", "<*> <*>", "<*>: <*>", " <*> - <*> "] {
            let c = suggest_command(t, &sig, "app", "why").unwrap();
            assert!(c.contains(&format!("--signature '{sig}'")), "{t}: {c}");
            assert!(!c.contains(".*?"), "{t}: {c}");
        }
        assert_eq!(suggest_command("<*>", "metric:cpu:x", "app", "why"), None);
        let c = suggest_command("Timeout after <*>", &sig, "app", "why").unwrap();
        assert!(
            c.starts_with("logwarden ignore add '^Timeout after .*?$'"),
            "{c}"
        );
        assert!(!c.contains("--signature"), "{c}");
    }

    #[test]
    fn patterns_escape_what_cannot_be_printed() {
        let p = pattern_for_template("bad \x1b]52;c;x\x07 <*>");
        assert!(!p.chars().any(crate::sanitize::is_unsafe), "{p}");
        let re = Regex::new(&p).unwrap();
        assert!(re.is_match("bad \x1b]52;c;x\x07 tail"));
    }

    #[test]
    fn bad_regex_reported_with_line() {
        let err = IgnoreRules::parse("\n[[rule]]\nid = 1\npattern = \"(unclosed\"\n", Utc::now())
            .unwrap_err();
        assert!(err[0].starts_with("line 4:"), "{err:?}");
    }
}
