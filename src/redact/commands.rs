//! Credentials given as arguments of a protocol command: Redis `AUTH <password>` and
//! `AUTH <user> <password>` (a client's error names the command it sent, `MONITOR`
//! and the slow log print it), also as an argv list (`('AUTH', 'pw')`,
//! `[b'AUTH', b'default', b'pw']`), and SMTP's `AUTH PLAIN <base64>`.
//!
//! Only the upper-case command word counts, and only where it starts a command
//! (the line's start, a blank, a quote or punctuation before it): prose says `auth`
//! or `Auth`, `OAuth`, `X-AUTH-...`. An argument that is a word of prose
//! (`AUTH failed for user bob`) or a placeholder of the form `<password>` is no
//! credential, and the command is left as it is.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::{placeholder, PLACEHOLDER};

/// The bare command and one or two arguments, each a run up to a blank or what
/// closes a quoted or bracketed command (`"AUTH pw"`, `(AUTH pw)`).
static BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?:^|[\s'"`(\[{:;,=>|])AUTH[ \t]+(?P<a>[^\s'"`)\]},;]+)(?:[ \t]+(?P<b>[^\s'"`)\]},;]+))?"#,
    )
    .expect("AUTH command regex compiles")
});

/// The command as a list of quoted items (Python's argv repr, `MONITOR`'s
/// `"AUTH" "pw"`): the last of one or two items is the password.
static QUOTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"b?['"]AUTH['"](?:,[ \t]*|[ \t]+)b?['"](?P<a>[^'"\n]*)['"](?:(?:,[ \t]*|[ \t]+)b?['"](?P<b>[^'"\n]*)['"])?"#,
    )
    .expect("AUTH command regex compiles")
});

/// Words that follow `AUTH` in prose or a status, never a password.
const PROSE: &[&str] = &[
    "failed",
    "fails",
    "failure",
    "fail",
    "error",
    "errors",
    "err",
    "ok",
    "okay",
    "success",
    "succeeded",
    "successful",
    "required",
    "requires",
    "require",
    "rejected",
    "denied",
    "invalid",
    "wrong",
    "expired",
    "timeout",
    "timed",
    "missing",
    "disabled",
    "enabled",
    "not",
    "no",
    "is",
    "was",
    "are",
    "were",
    "be",
    "has",
    "had",
    "will",
    "would",
    "can",
    "could",
    "should",
    "must",
    "to",
    "for",
    "with",
    "without",
    "from",
    "by",
    "on",
    "in",
    "at",
    "of",
    "and",
    "or",
    "the",
    "a",
    "an",
    "after",
    "before",
    "because",
    "while",
    "when",
    "since",
    "using",
    "via",
    "command",
    "called",
    "response",
    "reply",
    "request",
    "header",
    "token",
    "service",
    "server",
    "module",
    "mechanism",
    "method",
    "step",
    "attempt",
    "attempts",
    "retry",
    "done",
    "pending",
    "started",
    "needed",
];

/// SASL mechanisms (SMTP's `AUTH PLAIN <base64>`): named, the word is kept and the
/// credentials after it go.
const MECHANISMS: &[&str] = &[
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "XOAUTH2",
    "OAUTHBEARER",
    "XOAUTH",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "NTLM",
    "GSSAPI",
    "EXTERNAL",
    "ANONYMOUS",
];

fn prose(word: &str) -> bool {
    let w = word.trim_end_matches(['.', '!', '?', ':']);
    w.is_empty() || PROSE.iter().any(|p| p.eq_ignore_ascii_case(w))
}

/// Not a credential whatever stands before it: a placeholder, `<password>`, `***`.
fn no_secret(word: &str) -> bool {
    word.starts_with(PLACEHOLDER)
        || word.starts_with('<')
        || word.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '.'))
}

/// A user name rather than a password: letters (lower case) and `_`, `-`, `.`.
fn user_like(word: &str) -> bool {
    word.bytes()
        .all(|c| c.is_ascii_lowercase() || matches!(c, b'_' | b'-' | b'.'))
}

/// Redacts the credentials of `AUTH` commands. Returns None when nothing changed.
pub fn redact(text: &str) -> Option<String> {
    if !text.contains("AUTH") {
        return None;
    }
    let mut changed = false;
    let quoted = QUOTED.replace_all(text, |c: &Captures| {
        let whole = c.get(0).expect("group 0");
        let v = c.name("b").or(c.name("a")).expect("an argument");
        if v.as_str().is_empty() || no_secret(v.as_str()) {
            return whole.as_str().to_string();
        }
        changed = true;
        let s = whole.as_str();
        let (start, end) = (v.start() - whole.start(), v.end() - whole.start());
        format!("{}{}{}", &s[..start], placeholder("password"), &s[end..])
    });
    let bare = BARE.replace_all(&quoted, |c: &Captures| {
        let whole = c.get(0).expect("group 0");
        let a = c.name("a").expect("an argument");
        let b = c.name("b").filter(|b| !prose(b.as_str()));
        if prose(a.as_str()) || no_secret(a.as_str()) {
            return whole.as_str().to_string();
        }
        // Which arguments are the credential: after a mechanism, the rest; of two,
        // the second, and the first too unless it reads as a user name (of
        // `AUTH Pw99 then…` only the password can tell, and it is taken whole).
        let (start, end) = match b {
            Some(b) if no_secret(b.as_str()) => return whole.as_str().to_string(),
            Some(b) if MECHANISMS.contains(&a.as_str()) || user_like(a.as_str()) => {
                (b.start(), b.end())
            }
            Some(b) => (a.start(), b.end()),
            None if MECHANISMS.contains(&a.as_str()) => return whole.as_str().to_string(),
            None => (a.start(), a.end()),
        };
        changed = true;
        let s = whole.as_str();
        let (start, end) = (start - whole.start(), end - whole.start());
        format!("{}{}{}", &s[..start], placeholder("password"), &s[end..])
    });
    changed.then(|| bare.into_owned())
}
