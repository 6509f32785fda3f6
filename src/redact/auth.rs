//! `Authorization` and `Proxy-Authorization` header values, whatever their scheme.
//!
//! A scheme list cannot be complete (`SSWS`, `Bot`, `ApiKey`, `Hawk`,
//! `DeepL-Auth-Key`, `Zoho-oauthtoken`, `AWS4-HMAC-SHA256`, ...), so the header's
//! value is read whole: `Scheme credential` keeps the scheme word and redacts the
//! rest, auth-params included (`Hawk id="…", mac="…"`); a value of one token is the
//! credential. Header forms: `Authorization: …`, `authorization=…`, a dict or JSON
//! entry (`'Authorization': '…'`, `\"Authorization\": \"…\"`), a tuple
//! (`('Authorization', '…')`).

use std::sync::LazyLock;

use regex::Regex;

use super::pairs::{apostrophe, inside_word};
use super::{entropy, PLACEHOLDER};

/// The header name, its optional closing quote, and the separator (`=>` in Ruby). A `,` separates
/// only a quoted name from its value (a tuple), not prose (`authorization, then`).
/// Where the name may start is checked by `name_starts`.
static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)authorization(?P<q>\\*["'])?[ \t]*(?P<sep>=>|[:=,])[ \t]*"#)
        .expect("header regex compiles")
});

/// Schemes whose word alone says nothing, and whose credential an earlier rule may
/// have redacted already.
const KNOWN_SCHEMES: [&str; 5] = ["bearer", "basic", "token", "digest", "negotiate"];

/// The byte range of the credential in each header of `text` to redact.
///
/// An unquoted value is read no further than the next header's name: a stranger's
/// line of `authorization:a,authorization:a,…` would otherwise have each header
/// read the rest of the line again. A value that runs into the next header is
/// taken whole, and so is that header's (they are one credential to the eye).
fn credentials(text: &str) -> Vec<(usize, usize)> {
    let headers: Vec<(usize, usize, bool)> = HEADER
        .captures_iter(text)
        .filter_map(|c| {
            let whole = c.get(0).expect("group 0");
            let sep = &c["sep"];
            (name_starts(text.as_bytes(), whole.start()) && (sep != "," || c.name("q").is_some()))
                .then_some((whole.start(), whole.end(), sep == ":"))
        })
        .collect();
    let mut out = Vec::new();
    let mut before = LineBefore::default();
    let mut whole_value = false;
    for (k, &(name, at, colon)) in headers.iter().enumerate() {
        let limit = headers.get(k + 1).map_or(text.len(), |h| h.0);
        before.advance(text.as_bytes(), name);
        let forced = std::mem::take(&mut whole_value);
        let Some(v) = value_span(text, &before, at, colon, limit) else {
            continue;
        };
        whole_value = v.cut;
        let span = if forced {
            whole(text, v.start, v.end)
        } else {
            credential(text, v.start, v.end, v.quoted || v.cut)
        };
        out.extend(span);
    }
    out
}

/// A header's value: where it starts and ends (inside its quotes when quoted).
struct Span {
    start: usize,
    end: usize,
    quoted: bool,
    /// Read up to the next header's name, where it may have gone on.
    cut: bool,
}

/// The quotes and brackets on the line before a header name, counted as the headers
/// of a text are met in order, so that a long line of headers is read once.
#[derive(Default)]
struct LineBefore {
    at: usize,
    /// `"`, `'`, `` ` ``, `(`, `)`, `[`, `]`, `{`, `}`.
    counts: [usize; 9],
}

impl LineBefore {
    const BYTES: &'static [u8; 9] = b"\"'`()[]{}";

    fn advance(&mut self, b: &[u8], to: usize) {
        for (i, &c) in b.iter().enumerate().take(to).skip(self.at) {
            if c == b'\n' {
                self.counts = [0; 9];
            } else if c == b'\'' && apostrophe(b, i) {
                // Prose (`the user's Authorization: …`) opens no quote for the
                // value to close: the value would end early and leak its tail.
                continue;
            } else if let Some(k) = Self::BYTES.iter().position(|&x| x == c) {
                self.counts[k] += 1;
            }
        }
        self.at = to;
    }

    fn count(&self, c: u8) -> usize {
        Self::BYTES
            .iter()
            .position(|&x| x == c)
            .map_or(0, |k| self.counts[k])
    }

    /// Whether a quote or bracket opened before the name is still open, so that
    /// `c` closes it.
    fn opened(&self, c: u8) -> bool {
        match c {
            b')' => self.count(b'(') > self.count(b')'),
            b']' => self.count(b'[') > self.count(b']'),
            b'}' => self.count(b'{') > self.count(b'}'),
            q => self.count(q) % 2 == 1,
        }
    }
}

/// Whether a header name can start at `at`: after a byte that is no letter or digit
/// (`_` and `-` prefix it in `HTTP_AUTHORIZATION`, `proxy_authorization`), or after
/// an escaped line break or tab (`\r\nAuthorization:` in a logged byte string).
fn name_starts(b: &[u8], at: usize) -> bool {
    match at.checked_sub(1).map(|i| b[i]) {
        None => true,
        Some(c) if !c.is_ascii_alphanumeric() => true,
        Some(b'n' | b'r' | b't') => at >= 2 && b[at - 2] == b'\\',
        Some(_) => false,
    }
}

/// The header value at `at`; an unquoted one ends at `limit` at the latest (the next
/// header's name).
fn value_span(
    text: &str,
    before: &LineBefore,
    at: usize,
    colon: bool,
    limit: usize,
) -> Option<Span> {
    let rest = &text[at..];
    let b = rest.as_bytes();
    // A placeholder is no list (`authorization:[REDACTED:authorization]` read again).
    if b.first() == Some(&b'[') && !rest.starts_with(PLACEHOLDER) {
        // A list of values (`map[Authorization:[SSWS x]]` in Go, `{Authorization=[x]}`
        // in Java, `["x"]` in JSON): the value is inside the brackets.
        if rest[1..].trim_start_matches('\\').starts_with(['"', '\'']) {
            return value_span(text, before, at + 1, colon, limit);
        }
        // To the closing bracket, or (none) the next opening one or the line end,
        // so that a line of unclosed lists is read once.
        let end = b[1..]
            .iter()
            .position(|&c| matches!(c, b']' | b'[' | b'\n' | b'\r'))
            .unwrap_or(b.len() - 1);
        return (end > 0).then_some(Span {
            start: at + 1,
            end: at + 1 + end,
            quoted: false,
            cut: false,
        });
    }
    // Python's bytes (and unicode, raw) literals: `b'Token x'`.
    if b.len() > 1 && matches!(b[0], b'b' | b'u' | b'r') && matches!(b[1], b'\'' | b'"') {
        return value_span(text, before, at + 1, colon, limit);
    }
    let slashes = b.iter().take_while(|&&c| c == b'\\').count();
    if let Some(q) = b.get(slashes).copied().filter(|&c| c == b'"' || c == b'\'') {
        let open = slashes + 1;
        let body = &rest[open..];
        let bb = body.as_bytes();
        // One pass to the closing quote or the line end, whichever comes first.
        let mut i = 0;
        let mut close = None;
        while i < bb.len() && bb[i] != b'\n' && bb[i] != b'\r' {
            if slashes > 0 {
                if bb[i] == q && bb[..i].ends_with(&b[..slashes]) {
                    close = Some(i - slashes);
                    break;
                }
                i += 1;
                continue;
            }
            match bb[i] {
                b'\\' if !matches!(bb.get(i + 1), Some(b'\n' | b'\r')) => i += 2,
                c if c == q => {
                    close = Some(i);
                    break;
                }
                _ => i += 1,
            }
        }
        let line_end = i.min(bb.len());
        let end = match close {
            Some(c) if slashes == 0 => super::pairs::continued(body, c, q),
            Some(c) => c,
            None => line_end,
        };
        return Some(Span {
            start: at + open,
            end: at + open + end,
            quoted: true,
            cut: false,
        });
    }
    let rest = &text[at..limit.max(at)];
    #[cfg(test)]
    OFFERED.with(|o| o.set(o.get() + rest.len()));
    let (end, reached) = unquoted_end(before, rest, colon);
    let cut = reached && limit < text.len();
    (end > 0 || cut).then_some(Span {
        start: at,
        end: at + end,
        quoted: false,
        cut,
    })
}

#[cfg(test)]
thread_local! {
    /// The bytes handed to [`unquoted_end`], which reads nothing outside them.
    static OFFERED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Where an unquoted header value ends: a token (`Bearer x`, `SSWS x`), or a list
/// of auth-params (`k=v, k="v w"`), on its line. `colon`: the name ended with `:`. A quote or bracket opened before
/// the header name closes it. Also whether the value was read to the end of `rest`,
/// where it might have gone on.
fn unquoted_end(before: &LineBefore, rest: &str, colon: bool) -> (usize, bool) {
    let opened = |c: u8| before.opened(c);
    let b = rest.as_bytes();
    let mut i = 0;
    let mut end = 0;
    let mut words = 0;
    let mut reached: bool;
    loop {
        let start = i;
        let mut in_quote: Option<u8> = None;
        let mut depth = 0usize;
        let mut stop_all = false;
        while i < b.len() {
            let c = b[i];
            if c == b'\n' || c == b'\r' {
                stop_all = true;
                break;
            }
            if let Some(q) = in_quote {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    in_quote = None;
                }
                i += 1;
                continue;
            }
            match c {
                b' ' | b'\t' => break,
                b'"' | b'\'' | b'`' => {
                    if i > start && b[i - 1] == b'=' {
                        in_quote = Some(c);
                    } else if opened(c) && !(c == b'\'' && inside_word(b, i)) {
                        // An apostrophe inside the value (`ab'cd`) is part of it:
                        // taken for the closing quote, it would leak the rest.
                        stop_all = true;
                        break;
                    }
                }
                b'\\' if matches!(b.get(i + 1), Some(b'n' | b'r' | b't')) => {
                    stop_all = true;
                    break;
                }
                b'\\'
                    if b.get(i + 1)
                        .is_some_and(|&q| (q == b'"' || q == b'\'') && opened(q)) =>
                {
                    stop_all = true;
                    break;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    if depth > 0 {
                        depth -= 1;
                    } else if opened(c) {
                        stop_all = true;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if i > start {
            end = i;
            words += 1;
        }
        if stop_all || i >= b.len() || i == start {
            reached = !stop_all && i >= b.len();
            break;
        }
        // The next word on the line continues the value after the scheme, or when
        // it is an auth-param (`k=v`, the lists of Digest, Hawk, AWS4, OAuth).
        let word = &rest[start..i];
        let mut j = i;
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        let next = &rest[j..];
        let next_end = next.find(char::is_whitespace);
        reached = next_end.is_none();
        let next_word = &next[..next_end.unwrap_or(next.len())];
        if next_word.is_empty() {
            break;
        }
        let param = next_word
            .find('=')
            .is_some_and(|e| e > 0 && next_word[..e].bytes().all(param_name_byte));
        // An auth-param list separates its params with `,`; a logfmt line
        // (`authorization=ok status=500`) does not, and its next pair is its own.
        // After a scheme, a first param follows in a header (`: Digest k=v`) or
        // opens a list (`=Digest k="v", …`).
        let scheme = words == 1 && scheme_like(word);
        let go_on = if param {
            word.ends_with(',') || (scheme && (colon || next_word.ends_with(',')))
        } else {
            scheme
        };
        if !go_on {
            break;
        }
        // A credential may be quoted after its scheme (`Bearer "x"`).
        if !next_word.bytes().next().is_some_and(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'[' | b'_' | b'-' | b'+' | b'/' | b'.')
                || (scheme && matches!(c, b'"' | b'\''))
        }) {
            break;
        }
        i = j;
    }
    (
        rest[..end].trim_end_matches([',', ';', '.', ':']).len(),
        reached,
    )
}

fn param_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// A word that can be an auth scheme, so that the word after it is the credential: a
/// scheme's shape (`Bearer`, `SSWS`, `GenieKey`, `DPoP`, `Zoho-oauthtoken`,
/// `AWS4-HMAC-SHA256`), not random itself. A word that does not have one is taken for
/// the credential (`kq3Lm9Zx9 fine`, `Hunter2 ok`): keeping an odd scheme's name in
/// view is worth less than a short password in a page.
///
/// - letters, digits and `-_.`, starting with a letter;
/// - digits only in a word of several parts (`AWS4-HMAC-SHA256`, `SCRAM-SHA-256`),
///   at the end of a part: one part of letters and digits mixed is a token's;
/// - a part changes from lower to upper case at most once (`GenieKey`, not `kqLmZxPw`).
fn scheme_like(word: &str) -> bool {
    let shaped = word.len() <= 40
        && word.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
        && word
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !shaped || entropy::looks_random(word) {
        return false;
    }
    let parts: Vec<&str> = word.split(['-', '_', '.']).collect();
    parts.iter().all(|part| {
        let b = part.as_bytes();
        let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let digits_ok =
            b[letters..].iter().all(u8::is_ascii_digit) && (letters == b.len() || parts.len() > 1);
        let humps = b
            .windows(2)
            .filter(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
            .count();
        digits_ok && humps <= 1
    })
}

/// Cased as a word of prose is: `denied`, `Denied`, `DENIED` (not `kqLmZxPw`).
fn word_cased(word: &str) -> bool {
    let mut b = word.bytes();
    b.next();
    let rest: Vec<u8> = b.collect();
    rest.iter().all(u8::is_ascii_lowercase) || word.bytes().all(|c| c.is_ascii_uppercase())
}

/// Only placeholders and punctuation: an earlier rule redacted it already.
fn only_placeholders(s: &str) -> bool {
    let mut rest = s;
    while let Some(at) = rest.find(PLACEHOLDER) {
        if !rest[..at].chars().all(|c| !c.is_alphanumeric()) {
            return false;
        }
        let Some(close) = rest[at..].find(']') else {
            return false;
        };
        rest = &rest[at + close + 1..];
    }
    rest.chars().all(|c| !c.is_alphanumeric())
}

/// The header value `text[start..end]` whole, when it holds more than placeholders:
/// a value read on from the one before it has no scheme word of its own.
fn whole(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let v = &text[start..end];
    let lead = v.len() - v.trim_start().len();
    let v = v.trim();
    (!v.is_empty() && !only_placeholders(v)).then_some((start + lead, start + lead + v.len()))
}

/// The credential inside the header value `text[start..end]`, or None when the value
/// holds none (a scheme alone, a placeholder, prose such as `authorization: denied`).
fn credential(text: &str, start: usize, end: usize, quoted: bool) -> Option<(usize, usize)> {
    let v = &text[start..end];
    let lead = v.len() - v.trim_start().len();
    let v = v.trim();
    if v.is_empty() || only_placeholders(v) {
        return None;
    }
    let first_end = v.find(char::is_whitespace).unwrap_or(v.len());
    let first = &v[..first_end];
    let rest = v[first_end..].trim_start();
    let (cred_at, cred) = if !rest.is_empty() && scheme_like(first) {
        (start + lead + (v.len() - rest.len()), rest)
    } else {
        (start + lead, v)
    };
    // A quoted credential keeps its quotes (`Bearer "x"`).
    let (cred_at, cred) = match cred.as_bytes() {
        [q @ (b'"' | b'\''), .., l] if l == q && cred.len() > 2 => {
            (cred_at + 1, &cred[1..cred.len() - 1])
        }
        _ => (cred_at, cred),
    };
    if only_placeholders(cred) || KNOWN_SCHEMES.iter().any(|s| cred.eq_ignore_ascii_case(s)) {
        return None;
    }
    let letters = |s: &str| s.bytes().all(|c| c.is_ascii_alphabetic());
    let lower = |s: &str| s.bytes().all(|c| c.is_ascii_lowercase());
    if cred.len() == v.len() {
        // One token and no scheme: a word says what happened to the header
        // (`authorization: denied`), anything else is the credential.
        if letters(cred) && word_cased(cred) && !entropy::looks_random(cred) && !quoted {
            return None;
        }
    } else if !KNOWN_SCHEMES.iter().any(|s| first.eq_ignore_ascii_case(s))
        && !quoted
        && lower(first)
        && lower(cred)
        && cred.len() <= 12
    {
        // Lower-case words after the name read as prose (`authorization: denied
        // for bob`); a scheme and its credential rarely are both.
        return None;
    }
    Some((cred_at, cred_at + cred.len()))
}

/// Redacts the credential of every Authorization header; None when nothing changed.
pub fn redact(text: &str) -> Option<String> {
    if !text
        .as_bytes()
        .windows(13)
        .any(|w| w.eq_ignore_ascii_case(b"authorization"))
    {
        return None;
    }
    super::splice(text, &credentials(text), "authorization")
}

#[cfg(test)]
mod tests {
    use super::{redact, OFFERED};

    fn red(text: &str) -> String {
        redact(text).unwrap_or_else(|| text.to_string())
    }

    /// The word after a scheme is the credential; a first word that is no scheme's
    /// shape is the credential itself, and hidden.
    #[test]
    fn a_token_is_not_taken_for_a_scheme() {
        for (text, want) in [
            (
                "authorization: kq3Lm9Zx9 fine",
                "authorization: [REDACTED:authorization] fine",
            ),
            (
                "Authorization: Hunter2 ok",
                "Authorization: [REDACTED:authorization] ok",
            ),
            (
                "authorization=kqLmZxPw then",
                "authorization=[REDACTED:authorization] then",
            ),
            (
                "Authorization: abc123 rejected",
                "Authorization: [REDACTED:authorization] rejected",
            ),
            // Schemes keep their name in view.
            (
                "Authorization: SSWS 00QCjAl4MlV-WPXM",
                "Authorization: SSWS [REDACTED:authorization]",
            ),
            (
                "Authorization: GenieKey 7ab1c2d3",
                "Authorization: GenieKey [REDACTED:authorization]",
            ),
            (
                "Authorization: DPoP eyJhbGciOi",
                "Authorization: DPoP [REDACTED:authorization]",
            ),
            (
                "Authorization: Zoho-oauthtoken 1000.4f2a",
                "Authorization: Zoho-oauthtoken [REDACTED:authorization]",
            ),
            (
                "Authorization: SCRAM-SHA-256 c2l6ZQ",
                "Authorization: SCRAM-SHA-256 [REDACTED:authorization]",
            ),
        ] {
            assert_eq!(red(text), want, "{text}");
        }
    }

    #[test]
    fn prose_apostrophes_are_no_quotes_around_a_header() {
        for (text, want) in [
            (
                "the user's Authorization: Bearer abc123def456 isn't valid",
                "the user's Authorization: Bearer [REDACTED:authorization] isn't valid",
            ),
            (
                "don't send authorization: Basic dXNlcjpwYXNz",
                "don't send authorization: Basic [REDACTED:authorization]",
            ),
            (
                "the user's Authorization: Custom ab'cd1234 isn't valid",
                "the user's Authorization: Custom [REDACTED:authorization] isn't valid",
            ),
            (
                "don't send authorization: Basic dXNlc'jpwYXNz now",
                "don't send authorization: Basic [REDACTED:authorization] now",
            ),
            // A quote opened before the name still closes the value, also after
            // an apostrophe, and an apostrophe inside the value does not close it.
            (
                "it's log('Authorization: Custom abc123') next",
                "it's log('Authorization: Custom [REDACTED:authorization]') next",
            ),
            (
                "log('Authorization: Custom abc123') next",
                "log('Authorization: Custom [REDACTED:authorization]') next",
            ),
            (
                "log('the user's Authorization: Custom ab3'9cd isn't valid')",
                "log('the user's Authorization: Custom [REDACTED:authorization] isn't valid')",
            ),
            (
                "log('the user's Authorization: Custom ab'cd1234 isn't valid')",
                "log('the user's Authorization: Custom [REDACTED:authorization] isn't valid')",
            ),
        ] {
            assert_eq!(red(text), want, "{text}");
        }
    }

    /// A line of headers each inside the value of the one before: each value is
    /// read up to the next header's name, so the line is read once, and each
    /// header's value is hidden whole.
    #[test]
    fn a_line_of_headers_in_one_value_is_read_once() {
        for unit in [
            "authorization:a,",
            "authorization=a, ",
            "authorization:a\"",
            "authorization:a(",
            "authorization: Custom a,",
        ] {
            let text = format!("{} x", unit.repeat((64 << 10) / unit.len()));
            OFFERED.with(|o| o.set(0));
            let got = red(&text);
            let offered = OFFERED.with(|o| o.get());
            assert!(offered <= text.len(), "{unit:?}: {offered} bytes read");
            let n = (64 << 10) / unit.len();
            let hidden = got.matches("[REDACTED:authorization]").count();
            assert_eq!(hidden, n, "{unit:?}");
        }
        assert_eq!(
            red("Authorization: Custom abc,authorization:def"),
            "Authorization: Custom [REDACTED:authorization],authorization:[REDACTED:authorization]"
        );
        assert_eq!(
            red("Authorization: Custom abc,authorization:Xy9kq3 retrying"),
            "Authorization: Custom [REDACTED:authorization],authorization:[REDACTED:authorization] retrying"
        );
        let once = red("Custom a,authorization:b,Authorization: Custom c,authorization:[d]");
        assert_eq!(red(&once), once);
        assert_eq!(
            red("authorization: denied for bob, authorization: Custom k3y sent"),
            "authorization: denied for bob, authorization: Custom [REDACTED:authorization] sent"
        );
        // The line of the report, at 1 MiB: each header read the rest of the line
        // (about a minute); one pass reads it once. (What it costs against ordinary
        // text is measured by `cargo bench --bench hostile`.)
        let unit = "authorization:a,";
        let text = unit.repeat((1 << 20) / unit.len());
        OFFERED.with(|o| o.set(0));
        let got = red(&text);
        let offered = OFFERED.with(|o| o.get());
        assert!(offered <= text.len(), "{offered} bytes read");
        let hidden = got.matches("[REDACTED:authorization]").count();
        assert_eq!(hidden, (1 << 20) / unit.len());
    }
}
