//! Redaction: secrets are replaced by typed placeholders (`[REDACTED:aws-key]`)
//! before any text leaves the host.
//!
//! Everything logwarden sends away goes through a [`Redactor`]: the investigator's
//! prompt (and the results of its tools), the ntfy message, and by default the
//! incident file. Built-in rules cover the common credential formats (Anthropic,
//! OpenAI, AWS, GitHub, GitLab, Slack, Stripe and Google keys, JWTs, bearer tokens,
//! passwords in URLs, `password=`/`secret=`/`token=`/`api_key=` pairs in text and
//! JSON, PEM private key blocks); the config adds its own regexes under `[redact]`.
//!
//! The rules lean towards redacting too much: a placeholder in the evidence costs a
//! little context, a leaked key costs a rotation.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// The prefix of every placeholder.
pub const PLACEHOLDER: &str = "[REDACTED:";

/// A built-in rule: a regex and the kind of secret it finds. When the regex has a
/// group named `v`, only that group is replaced; else the whole match is.
struct Rule {
    kind: &'static str,
    re: Regex,
}

fn rule(kind: &'static str, re: &str) -> Rule {
    Rule {
        kind,
        re: Regex::new(re).expect("built-in redaction regex compiles"),
    }
}

static BUILTIN: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(
            "jwt",
            r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}",
        ),
        rule("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{8,}"),
        rule(
            "openai-key",
            r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}",
        ),
        rule(
            "stripe-key",
            r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",
        ),
        rule("aws-key", r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b"),
        rule(
            "aws-secret",
            r#"(?i)aws_?secret(?:_access)?(?:_key)?["']?\s*[:=]\s*["']?(?P<v>[A-Za-z0-9/+=]{40})"#,
        ),
        rule(
            "github-token",
            r"\b(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
        ),
        rule("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        rule("slack-token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
        rule("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}"),
        rule(
            "bearer-token",
            r"(?i)\b(?:bearer|token)\s+(?P<v>[A-Za-z0-9._~+/=-]{12,})",
        ),
        rule(
            "basic-auth",
            r"(?i)\bbasic\s+(?P<v>[A-Za-z0-9+/]{12,}={0,2})",
        ),
        rule(
            "url-password",
            // The user is a name, or a placeholder left by an earlier rule (a key used
            // as the user name); a user part running into a placeholder would take the
            // placeholder's own `:` for the separator and redact it again on every pass.
            r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?:\[REDACTED:[a-z0-9-]+\]|[^\s:/@\[\]]+):(?P<v>[^\s@/]+)@",
        ),
    ]
});

/// `name=value`, `name: value`, `"name": "value"` (also with Python-escaped quotes)
/// where the name says it holds a secret.
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<name>\b[\w-]*?(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|private[_-]?key|credentials?)(?:[_-](?:key|access[_-]key))?)\\?["']?\s*(?:=|:)\s*(?P<v>\\?"(?:[^"\\]|\\[^"])*\\?"|'[^']*'|[^\s,;&'"}\])]+)"#,
    )
    .expect("pair regex compiles")
});

const PEM_BEGIN: &str = "-----BEGIN ";
const PEM_END: &str = "-----END ";

/// A rule from the config: `{ name = "customer-id", regex = "CUST-[0-9]+" }`.
#[derive(Debug, Clone)]
pub struct UserRule {
    pub name: String,
    pub re: Regex,
}

/// Replaces secrets in text. Cheap to clone; build one per run.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    user: Vec<UserRule>,
}

impl Redactor {
    pub fn new(user: Vec<UserRule>) -> Redactor {
        Redactor { user }
    }

    /// The text with every secret found replaced by `[REDACTED:<kind>]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = redact_pem(text);
        for r in BUILTIN.iter() {
            if let Cow::Owned(s) = replace(&r.re, &out, r.kind) {
                out = Cow::Owned(s);
            }
        }
        if let Cow::Owned(s) = replace_pairs(&out) {
            out = Cow::Owned(s);
        }
        for r in &self.user {
            if let Cow::Owned(s) = replace(&r.re, &out, &r.name) {
                out = Cow::Owned(s);
            }
        }
        out
    }

    /// [`Redactor::redact`] into a new `String`.
    pub fn clean(&self, text: &str) -> String {
        self.redact(text).into_owned()
    }
}

fn placeholder(kind: &str) -> String {
    format!("{PLACEHOLDER}{kind}]")
}

fn replace<'a>(re: &Regex, text: &'a str, kind: &str) -> Cow<'a, str> {
    re.replace_all(text, |c: &Captures| match c.name("v") {
        Some(v) => {
            let whole = c.get(0).expect("group 0");
            let start = v.start() - whole.start();
            let end = v.end() - whole.start();
            let s = whole.as_str();
            format!("{}{}{}", &s[..start], placeholder(kind), &s[end..])
        }
        None => placeholder(kind),
    })
}

fn replace_pairs(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(c) = PAIR.captures_at(text, at) {
        let whole = c.get(0).expect("group 0");
        let v = c.name("v").expect("value group");
        // What looks like the value may be the next pair itself (`password:` above a
        // YAML `  api_key: "…"`, or `password= "api_key": "…"`): taking it as the value
        // would hide that pair's name and leave its secret in clear. Search again from
        // the inner pair (later than this match's start, so the loop always advances).
        let quotes = v.len() - v.as_str().trim_start_matches(['\\', '"', '\'']).len();
        if let Some(inner) = PAIR.find_at(text, v.start() + quotes) {
            if inner.start() == v.start() + quotes {
                at = inner.start();
                continue;
            }
        }
        if let Some(replaced) = pair_replacement(&c) {
            out.push_str(&text[copied..whole.start()]);
            out.push_str(&replaced);
            copied = whole.end();
        }
        at = whole.end();
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The text of a `name=value` match with the value replaced; `None` when the value is
/// harmless (empty, a placeholder, `none`…).
fn pair_replacement(c: &Captures) -> Option<String> {
    let whole = c.get(0).expect("group 0");
    let v = c.name("v").expect("value group");
    let name = c["name"].to_ascii_lowercase();
    let inner = v
        .as_str()
        .trim_start_matches('\\')
        .trim_matches(|ch| ch == '"' || ch == '\'' || ch == '\\');
    let harmless = inner.is_empty()
        || inner.starts_with(PLACEHOLDER)
        || matches!(
            inner.to_ascii_lowercase().as_str(),
            "none" | "null" | "true" | "false" | "***" | "<redacted>" | "redacted"
        );
    if harmless {
        return None;
    }
    let kind = if name.contains("pass") {
        "password"
    } else if name.contains("secret") {
        "secret"
    } else if name.contains("private") {
        "private-key"
    } else if name.contains("token") {
        "token"
    } else if name.contains("cred") {
        "credentials"
    } else {
        "api-key"
    };
    // Keep the quotes around the value so JSON stays JSON.
    let raw = v.as_str();
    let (open, close) = if raw.starts_with("\\\"") {
        ("\\\"", "\\\"")
    } else if raw.starts_with('"') {
        ("\"", "\"")
    } else if raw.starts_with('\'') {
        ("'", "'")
    } else {
        ("", "")
    };
    let s = whole.as_str();
    let start = v.start() - whole.start();
    Some(format!("{}{open}{}{close}", &s[..start], placeholder(kind)))
}

/// PEM private key blocks, multi-line, also with `\n` escapes (a repr in a log line).
/// A block cut short (no END line) is redacted to the end of its base64 run.
fn redact_pem(text: &str) -> Cow<'_, str> {
    if !text.contains(PEM_BEGIN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(b) = rest.find(PEM_BEGIN) {
        let after_begin = &rest[b + PEM_BEGIN.len()..];
        let label_end = after_begin.find("-----");
        let is_private = label_end
            .map(|e| {
                let label = &after_begin[..e];
                label.ends_with("PRIVATE KEY") && label.len() < 40
            })
            .unwrap_or(false);
        if !is_private {
            out.push_str(&rest[..b + PEM_BEGIN.len()]);
            rest = after_begin;
            continue;
        }
        out.push_str(&rest[..b]);
        out.push_str(&placeholder("private-key"));
        let body = &after_begin[label_end.expect("checked") + 5..];
        let end = match body.find(PEM_END) {
            Some(e) if body[..e].chars().all(pem_body_char) => {
                let tail = &body[e + PEM_END.len()..];
                let close = tail
                    .find("-----")
                    .map(|c| c + 5)
                    .filter(|c| *c < 60)
                    .unwrap_or(0);
                e + PEM_END.len() + close
            }
            _ => body
                .char_indices()
                .find(|(_, ch)| !pem_body_char(*ch))
                .map(|(i, _)| i)
                .unwrap_or(body.len()),
        };
        rest = &body[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn pem_body_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '+' | '/' | '=' | '\\' | ':' | '-' | ',')
        || c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        Redactor::default().clean(text)
    }

    #[test]
    fn provider_keys_get_typed_placeholders() {
        let cases = [
            (
                "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-yz012345 used",
                "[REDACTED:anthropic-key]",
            ),
            (
                "OPENAI sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
                "[REDACTED:openai-key]",
            ),
            (
                "legacy sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
                "[REDACTED:openai-key]",
            ),
            ("id AKIAIOSFODNN7EXAMPLE here", "[REDACTED:aws-key]"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "[REDACTED:aws-secret]",
            ),
            (
                "gh ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                "[REDACTED:github-token]",
            ),
            (
                "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "[REDACTED:github-token]",
            ),
            ("gl glpat-xxxxxxxxxxxxxxxxxxxx01", "[REDACTED:gitlab-token]"),
            (
                "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
                "[REDACTED:slack-token]",
            ),
            (
                "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "[REDACTED:stripe-key]",
            ),
            (
                "google AIzaSyA-1234567890abcdefghijklmnopqrstu",
                "[REDACTED:google-api-key]",
            ),
        ];
        for (text, want) in cases {
            let got = r(text);
            assert!(got.contains(want), "{text} → {got}");
        }
    }

    #[test]
    fn tokens_urls_and_pairs() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(r(&format!("tok {jwt} end")), "tok [REDACTED:jwt] end");
        assert_eq!(
            r("Authorization: Bearer abcdef0123456789xyz"),
            "Authorization: Bearer [REDACTED:bearer-token]"
        );
        assert_eq!(
            r("connect postgres://app:hunter2@db:5432/app failed"),
            "connect postgres://app:[REDACTED:url-password]@db:5432/app failed"
        );
        assert_eq!(
            r("login password=hunter2 user=bob"),
            "login password=[REDACTED:password] user=bob"
        );
        assert_eq!(
            r(r#"{"user": "bob", "password": "hunter2", "api_key": "k-123456"}"#),
            r#"{"user": "bob", "password": "[REDACTED:password]", "api_key": "[REDACTED:api-key]"}"#
        );
        assert_eq!(
            r(r#"payload={\"client_secret\": \"s3cr3t-value\"}"#),
            r#"payload={\"client_secret\": \"[REDACTED:secret]\"}"#
        );
        assert_eq!(
            r("max_tokens=4096 token=None"),
            "max_tokens=4096 token=None"
        );
    }

    #[test]
    fn a_pair_read_as_the_value_of_the_pair_before_keeps_its_secret_hidden() {
        let yaml = "credentials:\n  api_key: \"sk_abcdefgh12345678\"\n  password: hunter2hunter2\n";
        let out = r(yaml);
        assert!(!out.contains("sk_abcdefgh12345678"), "{out}");
        assert!(!out.contains("hunter2hunter2"), "{out}");
        assert!(out.contains("api_key: \"[REDACTED:api-key]\""), "{out}");
        // the user part of a URL and placeholders
        let out = r("https://password=u:p@h");
        assert_eq!(r(&out), out, "idempotent");
        let out = r("https://AKIAABCDEFGHIJKLMNOP:secretpw@host/x");
        assert_eq!(
            out,
            "https://[REDACTED:aws-key]:[REDACTED:url-password]@host/x"
        );
        let out = r("password= \"api_key\": \"00aaaaa0aa0a\" ");
        assert!(!out.contains("00aaaaa0aa0a"), "{out}");
        assert_eq!(r(&out), out, "idempotent");
        // a value that only contains a pair further in is still the value, whole
        let out = r("token=\"hunter2 password=x\"");
        assert_eq!(out, "token=\"[REDACTED:token]\"");
    }

    #[test]
    fn private_key_blocks_whole_or_cut() {
        let block = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----\ny";
        assert_eq!(r(block), "x\n[REDACTED:private-key]\ny");
        let escaped = r"key='-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQ\n-----END PRIVATE KEY-----\n' loaded";
        assert_eq!(r(escaped), r"key='[REDACTED:private-key]\n' loaded");
        let cut = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAAB3NzaC1yc2E";
        assert_eq!(r(cut), "[REDACTED:private-key]");
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(r(cert), cert);
    }

    #[test]
    fn user_rules_and_clean_text_untouched() {
        let red = Redactor::new(vec![UserRule {
            name: "customer-id".into(),
            re: Regex::new(r"CUST-[0-9]+").unwrap(),
        }]);
        assert_eq!(
            red.clean("order for CUST-1234 failed"),
            "order for [REDACTED:customer-id] failed"
        );
        let plain = "ZeroDivisionError: division by zero in job 42";
        assert!(matches!(red.redact(plain), Cow::Borrowed(_)));
    }
}
