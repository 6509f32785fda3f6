//! Values next to a secret-like name: `name=value`, `name: value`, `"name": "value"`
//! (also with `\"` escapes, `'...'` reprs, `=>`, URL-encoded `%3D`), HTTP headers,
//! query strings and `--name value` flags.
//!
//! Two tiers. A name that *is* a secret (`password`, `api_key`, `client_secret`,
//! `Cookie`, `sessionid`, ...) has its value redacted whatever it looks like. A
//! name that only hints at one (`key`, `auth`, `sig`, `session`, `dsn`,
//! `private_key_id`, `X-Amz-Signature`, ...) has it redacted when one of its tokens
//! looks generated (see [`super::entropy`]): a cache key or an auth scheme stays.

use std::sync::LazyLock;

use regex::Regex;

use super::{entropy, placeholder, PLACEHOLDER};

/// How strongly a name says "secret".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The value is redacted whatever it is.
    Always,
    /// The value is redacted when it looks random.
    IfRandom,
}

/// What a name holds: its tier and the placeholder kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub tier: Tier,
    pub kind: &'static str,
    /// How far an unquoted value runs.
    pub mode: Mode,
}

/// How far an unquoted value runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// To the next space (`token=abc def`: `abc`).
    Word,
    /// Over spaces, to the next `name=` or the end of the sentence (a passphrase).
    Words,
    /// To the end of the line or the closing quote (a `Cookie:` header).
    Line,
}

/// Names ending like this (case, `_`, `-`, `.` ignored) are secrets.
const ALWAYS_SUFFIX: &[(&str, &str)] = &[
    ("password", "password"),
    ("passwd", "password"),
    ("passphrase", "password"),
    ("pwd", "password"),
    ("pswd", "password"),
    ("pswrd", "password"),
    ("passwrd", "password"),
    ("passcode", "pin"),
    ("pincode", "pin"),
    ("mfacode", "otp"),
    ("otpcode", "otp"),
    ("totpcode", "otp"),
    ("secret", "secret"),
    ("secretkey", "secret"),
    ("secretaccesskey", "secret"),
    ("clientsecret", "secret"),
    ("token", "token"),
    ("apikey", "api-key"),
    ("apitoken", "token"),
    ("accesskey", "api-key"),
    ("privatekey", "private-key"),
    ("signingkey", "secret"),
    ("encryptionkey", "secret"),
    ("masterkey", "secret"),
    ("authkey", "api-key"),
    ("credential", "credentials"),
    ("credentials", "credentials"),
    ("creds", "credentials"),
    ("cookie", "cookie"),
    ("cookies", "cookie"),
    ("sessionid", "session"),
    ("sessionkey", "session"),
    ("sessiontoken", "session"),
    ("sessioncookie", "session"),
    // The same word in the languages an application's own names are written in,
    // folded to ASCII (see [`fold`]): `pässwort`, `contraseña`, `hasło`, `пароль`.
    ("passwort", "password"),
    ("kennwort", "password"),
    ("motdepasse", "password"),
    ("contrasena", "password"),
    ("senha", "password"),
    ("parola", "password"),
    ("wachtwoord", "password"),
    ("haslo", "password"),
    ("parol", "password"),
];

/// The last word alone (split at `_`, `-`, `.` and case changes).
const ALWAYS_WORD: &[(&str, &str)] = &[
    ("pass", "password"),
    ("pw", "password"),
    ("pin", "pin"),
    ("otp", "otp"),
    ("totp", "otp"),
    ("sid", "session"),
];

/// Names in scripts with no ASCII form (Chinese, Japanese, Korean), by their ending:
/// `数据库密码`, `パスワード`, `비밀번호`, `访问令牌`.
const OTHER_SCRIPTS: &[(&str, &str)] = &[
    ("密码", "password"),
    ("密碼", "password"),
    ("口令", "password"),
    ("パスワード", "password"),
    ("暗証番号", "password"),
    ("비밀번호", "password"),
    ("암호", "password"),
    ("密钥", "secret"),
    ("密鑰", "secret"),
    ("私钥", "private-key"),
    ("秘密鍵", "private-key"),
    ("令牌", "token"),
    ("トークン", "token"),
    ("토큰", "token"),
];

/// Names containing any of these (same normalisation) hint at a secret.
const HINT: &[(&str, &str)] = &[
    ("signature", "signature"),
    ("sig", "signature"),
    ("session", "session"),
    ("cookie", "cookie"),
    ("secret", "secret"),
    ("token", "token"),
    ("pass", "password"),
    ("pwd", "password"),
    ("cred", "credentials"),
    ("private", "private-key"),
    ("auth", "auth"),
    ("dsn", "dsn"),
    ("jwt", "token"),
    ("bearer", "token"),
    ("hmac", "signature"),
    ("salt", "secret"),
    ("key", "key"),
];

/// Whether `kind` is a placeholder kind these rules write.
pub fn is_kind(kind: &str) -> bool {
    ALWAYS_SUFFIX
        .iter()
        .chain(ALWAYS_WORD)
        .chain(HINT)
        .any(|(_, k)| *k == kind)
}

/// Splits an identifier into lower-case words: `X-Amz-Signature` → x, amz,
/// signature; `sessionToken` → session, token.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A name with its non-ASCII letters written in ASCII (`pässwort` → `passwort`,
/// `contraseña` → `contrasena`, `пароль` → `parol`), so that the lists, all ASCII,
/// read it; a letter with no ASCII form stays and splits the name as before. The
/// case of each letter is kept (the words of `PÄSSWORT` are still one).
fn fold(name: &str) -> String {
    const LATIN: &[(&str, &str)] = &[
        ("àáâãäåāăą", "a"),
        ("çćĉċč", "c"),
        ("ďđ", "d"),
        ("èéêëēĕėęě", "e"),
        ("ĝğġģ", "g"),
        ("ìíîïĩīĭįı", "i"),
        ("ķ", "k"),
        ("ĺļľŀł", "l"),
        ("ñńņňŉ", "n"),
        ("òóôõöøōŏő", "o"),
        ("ŕŗř", "r"),
        ("śŝşšș", "s"),
        ("ţťŧț", "t"),
        ("ùúûüũūŭůűų", "u"),
        ("ýÿŷ", "y"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("æ", "ae"),
        ("œ", "oe"),
        // Cyrillic, transliterated; the soft and hard signs have no sound of their own.
        ("а", "a"),
        ("б", "b"),
        ("в", "v"),
        ("г", "g"),
        ("д", "d"),
        ("еёэ", "e"),
        ("ж", "zh"),
        ("з", "z"),
        ("иій", "i"),
        ("к", "k"),
        ("л", "l"),
        ("м", "m"),
        ("н", "n"),
        ("о", "o"),
        ("п", "p"),
        ("р", "r"),
        ("с", "s"),
        ("т", "t"),
        ("у", "u"),
        ("ф", "f"),
        ("х", "h"),
        ("ц", "ts"),
        ("ч", "ch"),
        ("шщ", "sh"),
        ("ы", "y"),
        ("ьъ", ""),
        ("ю", "yu"),
        ("я", "ya"),
    ];
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let lower = c.to_lowercase().next().unwrap_or(c);
        match LATIN.iter().find(|(from, _)| from.contains(lower)) {
            Some((_, to)) if c.is_uppercase() => out.push_str(&to.to_ascii_uppercase()),
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

/// Every entry of the three lists: a name the lists classify holds one of them in
/// its joined lower-case letters and digits (an ending, a last word or a part).
static ANY_ENTRY: LazyLock<Regex> = LazyLock::new(|| {
    let entries: Vec<&str> = ALWAYS_SUFFIX
        .iter()
        .chain(ALWAYS_WORD)
        .chain(HINT)
        .map(|(s, _)| *s)
        .collect();
    Regex::new(&entries.join("|")).expect("entries are plain words")
});

/// How secret a name is, or None for an ordinary name.
pub fn classify(name: &str) -> Option<Class> {
    if !name.is_ascii() {
        if let Some((_, kind)) = OTHER_SCRIPTS.iter().find(|(w, _)| name.ends_with(w)) {
            return Some(Class {
                tier: Tier::Always,
                kind,
                mode: if *kind == "token" {
                    Mode::Word
                } else {
                    Mode::Words
                },
            });
        }
        return classify_ascii(&fold(name));
    }
    classify_ascii(name)
}

fn classify_ascii(name: &str) -> Option<Class> {
    // Most names in a text are ordinary: ruled out without splitting them into words
    // (the joined form is what every list is matched against).
    let mut joined = [0u8; 64];
    let mut n = 0;
    let mut fits = true; // a longer name takes the full path
    for b in name.bytes().filter(u8::is_ascii_alphanumeric) {
        if n == joined.len() {
            fits = false;
            break;
        }
        joined[n] = b.to_ascii_lowercase();
        n += 1;
    }
    if fits && !ANY_ENTRY.is_match(std::str::from_utf8(&joined[..n]).expect("ASCII")) {
        return None;
    }
    let w = words(name);
    let joined: String = w.concat();
    let last = w.last().map(String::as_str).unwrap_or("");
    // An environment variable named for its service's auth (`REDIS_AUTH`,
    // `NPM_AUTH`) holds the password itself; in other names `auth` is a scheme or a flag.
    if last == "auth"
        && w.len() > 1
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Some(Class {
            tier: Tier::Always,
            kind: "password",
            mode: Mode::Word,
        });
    }
    let always = ALWAYS_SUFFIX
        .iter()
        .find(|(s, _)| joined.ends_with(s))
        .or_else(|| ALWAYS_WORD.iter().find(|(s, _)| last == *s));
    if let Some((_, kind)) = always {
        return Some(Class {
            tier: Tier::Always,
            kind,
            mode: match *kind {
                "password" | "credentials" | "secret" => Mode::Words,
                "cookie" => Mode::Line,
                _ => Mode::Word,
            },
        });
    }
    HINT.iter()
        .find(|(s, _)| joined.contains(s))
        .map(|(_, kind)| Class {
            tier: Tier::IfRandom,
            kind,
            mode: Mode::Word,
        })
}

/// A name, an optional closing quote (plain, `\"`-escaped or doubled), and the
/// separator: `=`, `:`, `=>`, their URL-encoded forms, their fullwidth forms (`＝`,
/// `：`, as CJK text writes them), or a tab (tab-separated fields, a tab-aligned config
/// dump). A name's letters may be non-ASCII (`pässwort`): any non-ASCII character but
/// those separators and the ideographic space counts as one, so that the name is read
/// whole, not from after its `ä` (a superset of Unicode letters that keeps the search
/// fast).
static NAME_SEP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?P<name>[A-Za-z_\x{80}-\x{2FFF}\x{3001}-\x{FF19}\x{FF1B}\x{FF1C}\x{FF1E}-\x{10FFFF}][A-Za-z0-9_.\x{80}-\x{2FFF}\x{3001}-\x{FF19}\x{FF1B}\x{FF1C}\x{FF1E}-\x{10FFFF}-]*)(?:\\*["']|%22|\\+u0022|&quot;)?(?:[ \t\x{3000}]*(?:=>|=|:|＝|：|%3[DdAa])[ \t\x{3000}]*|[ \t]*\t[ \t]*)"#)
        .expect("pair regex compiles")
});

/// The name group of a [`NAME_SEP`] match: a name's characters cannot start what
/// follows it (a quote, a backslash, a blank or the separator), so the name is the
/// whole run of them the match starts with.
fn leading_name(m: &str) -> &str {
    let b = m.as_bytes();
    let n = (0..b.len())
        .find(|&i| {
            !(b[i].is_ascii_alphanumeric()
                || matches!(b[i], b'_' | b'.' | b'-')
                || (b[i] >= 0x80 && !is_wide_separator(&b[i..])))
        })
        .unwrap_or(m.len());
    &m[..n]
}

/// Whether `b` starts with the fullwidth `＝` or `：` (CJK text writes `密码：…`), or
/// the ideographic space that may stand around them: separators, not name letters.
fn is_wide_separator(b: &[u8]) -> bool {
    matches!(b, [0xEF, 0xBC, 0x9A | 0x9D, ..] | [0xE3, 0x80, 0x80, ..])
}

/// `--password hunter2` on a command line (a flag and a separate value).
static FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[\s'"])--?(?P<name>[A-Za-z][A-Za-z0-9_-]*)[ \t]+(?P<v>[^\s\-'"][^\s'"]*)"#)
        .expect("flag regex compiles")
});

/// A secret-like name and, after a space only, a token (`client_secret wJalr…`): prose
/// says what it holds without `=` or `:`. Only a token that looks generated is taken,
/// so `password reset failed` and `token expired` keep their words.
static SPACED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[^A-Za-z0-9_.-])(?P<name>[A-Za-z][A-Za-z0-9_.-]*)[ \t]+(?P<v>[A-Za-z0-9+/_.=~%-]{16,})"#)
        .expect("spaced name regex compiles")
});

/// A password's name and, after a space only, a value (`wrong password Hunter2!`): a
/// person chose it, so it has no generated look; it is taken when it looks like what
/// password rules ask for (a digit, a symbol, a capital inside), so that `password
/// reset failed`, `Failed password for root` and `password expired` keep their words.
/// Only the full words: `pass` and `pw` are verbs and abbreviations in prose.
static SPACED_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:^|[^\p{L}\p{N}_.-])(?P<name>[\p{L}\p{N}_.-]*(?:password|passwd|passphrase|pwd|passwort|kennwort|motdepasse|mot de passe|contrase(?:n|ñ)a|senha|parola|wachtwoord|has(?:l|ł)o|пароль)s?)[ \t]+(?P<v>'[^'\n]{1,256}'|"[^"\n]{1,256}"|`[^`\n]{1,256}`|\S{4,})"#,
    )
    .expect("spaced password regex compiles")
});

/// The part of a word after a password's name that is a password, when it looks like
/// one rather than prose (see [`SPACED_PASSWORD`]): inside quotes, whatever it holds.
fn chosen_password(v: &str) -> Option<(usize, usize)> {
    let b = v.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'\'' | b'"' | b'`') && b[b.len() - 1] == b[0] {
        let inner = &v[1..v.len() - 1];
        return (!harmless(inner) && !inner.contains(PLACEHOLDER)).then_some((1, v.len() - 1));
    }
    if v.contains(PLACEHOLDER) {
        return None;
    }
    let core = v.trim_end_matches(['.', ',', ';', ':', ')', ']', '!', '?', '\'', '"']);
    let start = core.len() - core.trim_start_matches(['(', '[']).len();
    let core = &core[start..];
    if harmless(core) || core.chars().count() < 6 {
        return None;
    }
    (core.chars().any(char::is_numeric)
        || core.chars().any(|c| !c.is_alphanumeric())
        || core.chars().skip(1).any(char::is_uppercase))
    .then_some((start, v.len()))
}

/// `user:password` under a name that hints at credentials (`auth=bob:Hunter2`): a
/// person's password has no generated look, the pair says what it is.
fn user_and_password(v: &str) -> bool {
    let v = v.trim();
    match v.split_once(':') {
        Some((user, pass)) => {
            !user.is_empty()
                && !pass.is_empty()
                && !pass.starts_with("//")
                && !v.contains(char::is_whitespace)
                && pass.len() >= 4
        }
        None => false,
    }
}

/// Values that are no secret whatever their name says.
fn harmless(inner: &str) -> bool {
    let t = inner.trim();
    t.is_empty()
        || t.starts_with(PLACEHOLDER)
        || t.chars().all(|c| c == '*' || c == 'x' || c == 'X' || c == '•')
        || matches!(
            t.to_ascii_lowercase().as_str(),
            "none"
                | "null"
                | "nil"
                | "true"
                | "false"
                | "undefined"
                | "<redacted>"
                | "redacted"
                | "[redacted]"
                | "[filtered]"
                | "<hidden>"
                | "<missing>"
                | "<not set>"
                | "unset"
                | "(none)"
        )
        // an object repr: `<Session object at 0x7f...>`, `<class 'str'>`
        || (t.starts_with('<') && t.ends_with('>') && !t[1..].contains('<'))
}

/// A value found after a separator: where its content (inside any quotes) starts
/// and ends in the text.
struct Value {
    inner: (usize, usize),
}

/// Where a quoted string closed at `close` in `body` really ends: a string that
/// ends its line and is followed by an indented string of the same quote on the
/// next is one string (Python's implicit concatenation, as `pprint` wraps a long
/// value: `'Bearer '` and the token on the line under it). Returns the closing
/// quote of the last string of the run.
pub(super) fn continued(body: &str, mut close: usize, q: u8) -> usize {
    let b = body.as_bytes();
    loop {
        let mut i = close + 1;
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if b.get(i) == Some(&b'\r') {
            i += 1;
        }
        if b.get(i) != Some(&b'\n') {
            return close;
        }
        i += 1;
        let indent = i;
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i == indent || b.get(i) != Some(&q) {
            return close;
        }
        // The next string, to its closing quote on its line.
        let mut j = i + 1;
        let mut next = None;
        while j < b.len() && b[j] != b'\n' {
            match b[j] {
                b'\\' => j += 2,
                c if c == q => {
                    next = Some(j);
                    break;
                }
                _ => j += 1,
            }
        }
        match next {
            Some(j) => close = j,
            None => return close,
        }
    }
}

/// What the line before a name says about where its unquoted value ends.
#[derive(Debug, Default, Clone, Copy)]
struct Before {
    /// `"`, `'` and `` ` `` left open before the name: that quote closes the value,
    /// any other is part of it.
    quote: [bool; 3],
    /// `(`, `[`, `{`, `<` left open before the name: the closer of a bracket the
    /// value did not open itself ends it (`(password=x)`).
    bracket: [bool; 4],
    /// The name is a query-string parameter (right after `?` or `&`): there an `&`
    /// starting the next `name=` separates, anywhere else `&` is part of the value.
    query: bool,
    /// The name and its value are separated by a tab alone (tab-separated fields):
    /// a tab ends the value, only a space joins its words.
    tabbed: bool,
}

const QUOTES: [u8; 3] = [b'"', b'\'', b'`'];
const OPENERS: [u8; 4] = [b'(', b'[', b'{', b'<'];
const CLOSERS: [u8; 4] = [b')', b']', b'}', b'>'];

impl Before {
    /// Reads `line`, the text from the start of its line to the name.
    #[cfg(test)]
    fn of(line: &str) -> Before {
        let mut scan = LineScan::default();
        scan.feed(line.as_bytes(), 0, line.len());
        scan.before(line)
    }

    fn closes(&self, c: u8) -> bool {
        QUOTES
            .iter()
            .position(|&q| q == c)
            .is_some_and(|k| self.quote[k])
    }
}

/// The quotes and brackets left open on a line so far, fed in order: the names of
/// a line are read left to right, and each is told about the line before it without
/// reading the line again from its start (a long JSON record holds many names).
#[derive(Debug, Default, Clone, Copy)]
struct LineScan {
    quote: [bool; 3],
    depth: [usize; 4],
}

impl LineScan {
    /// Feeds `text[from..to]`; the bytes around it tell an apostrophe from a quote.
    fn feed(&mut self, text: &[u8], from: usize, to: usize) {
        for (i, &c) in text.iter().enumerate().take(to).skip(from) {
            if c == b'\'' && apostrophe(text, i) {
                continue;
            }
            if let Some(k) = QUOTES.iter().position(|&q| q == c) {
                self.quote[k] = !self.quote[k];
            } else if let Some(k) = OPENERS.iter().position(|&o| o == c) {
                self.depth[k] += 1;
            } else if let Some(k) = CLOSERS.iter().position(|&o| o == c) {
                self.depth[k] = self.depth[k].saturating_sub(1);
            }
        }
    }

    /// What stands before a name, `line` being its line up to the name.
    fn before(&self, line: &str) -> Before {
        Before {
            quote: self.quote,
            bracket: self.depth.map(|d| d > 0),
            query: line.ends_with(['?', '&']) || line.ends_with("&amp;"),
            tabbed: false,
        }
    }
}

/// Whether the `'` at `i` is prose's (`It's`, `don't`): between two letters, and
/// not after a string prefix (`b'x'`, `u'x'`, `r'x'`, `f'x'`).
pub(super) fn apostrophe(text: &[u8], i: usize) -> bool {
    let letter = |j: usize| text.get(j).is_some_and(u8::is_ascii_alphabetic);
    if i == 0 || !letter(i - 1) || !letter(i + 1) {
        return false;
    }
    let prefix = matches!(text[i - 1].to_ascii_lowercase(), b'b' | b'u' | b'r' | b'f')
        && (i < 2 || !text[i - 2].is_ascii_alphanumeric());
    !prefix
}

/// Whether the quote at `i` stands inside a word (`ab'cd`, `x9'2y`): a quote that
/// closes one opened before a value is followed by what ends the value, not by
/// more of it.
pub(super) fn inside_word(text: &[u8], i: usize) -> bool {
    let alnum = |j: usize| text.get(j).is_some_and(u8::is_ascii_alphanumeric);
    i > 0 && alnum(i - 1) && alnum(i + 1)
}

/// Whether the text after an `&` starts the next query parameter (`name=`, also
/// after an HTML-escaped `&amp;`).
fn starts_param(after: &str) -> bool {
    let after = after.strip_prefix("amp;").unwrap_or(after);
    let n = after
        .bytes()
        .take_while(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'[' | b']'))
        .count();
    n > 0 && after.as_bytes().get(n) == Some(&b'=')
}

/// Reads the value at `at` in `text`; `before` is what stands before the name.
fn read_value(text: &str, at: usize, mode: Mode, before: &Before) -> Option<Value> {
    let rest = &text[at..];
    let b = rest.as_bytes();
    if b.is_empty() || b[0] == b'\n' || b[0] == b'\r' {
        return None;
    }
    // Python's b'...' / u'...' / r'...' prefixes.
    let mut skip = 0;
    if b.len() > 1 && matches!(b[0], b'b' | b'u' | b'r') && matches!(b[1], b'\'' | b'"') {
        skip = 1;
    }
    // An escaped quote: `\"`, `\\\"`.
    let slashes = b[skip..].iter().take_while(|&&c| c == b'\\').count();
    let q = b.get(skip + slashes).copied();
    if let Some(q @ (b'"' | b'\'' | b'`')) = q {
        let open_len = skip + slashes + 1;
        let body = &rest[open_len..];
        let close_rel = if slashes > 0 {
            // On the value's line only: a line of unclosed values is read once each.
            let close = format!("{}{}", "\\".repeat(slashes), q as char);
            let bb = body.as_bytes();
            (0..bb.len())
                .take_while(|&i| bb[i] != b'\n')
                .find(|&i| bb[i..].starts_with(close.as_bytes()))
                .map(|i| (i, close.len()))
        } else {
            let mut i = 0;
            let bb = body.as_bytes();
            let mut found = None;
            while i < bb.len() {
                match bb[i] {
                    b'\\' => i += 2,
                    b'\n' => break,
                    c if c == q => {
                        found = Some((i, 1));
                        break;
                    }
                    _ => i += 1,
                }
            }
            found
        };
        // The line's end is looked for only when the value does not close on it.
        let on_line = |i: usize| !body.as_bytes()[..i].contains(&b'\n');
        let inner_end = match close_rel {
            Some((i, _)) if on_line(i) && slashes == 0 => continued(body, i, q),
            Some((i, _)) if on_line(i) => i,
            _ => body.find('\n').unwrap_or(body.len()),
        };
        return Some(Value {
            inner: (at + open_len, at + open_len + inner_end),
        });
    }
    // A bracketed value, whole: a dict, a list, an object repr (`<Session …>`).
    if let Some(k) = OPENERS.iter().position(|&o| o == b[0]) {
        if k != 0 {
            let (open, close) = (OPENERS[k], CLOSERS[k]);
            let mut depth = 0;
            for (i, &c) in b.iter().enumerate() {
                if c == b'\n' {
                    break;
                }
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        return Some(Value {
                            inner: (at, at + i + 1),
                        });
                    }
                }
            }
            // Never closed on its line: not a repr but text, a value read like any
            // other (generated passwords start with a bracket: `password={Gk7$pQ2!`).
        }
    }
    let end = unquoted_end(rest, mode, before);
    if end == 0 {
        return None;
    }
    Some(Value {
        inner: (at, at + end),
    })
}

/// Where an unquoted value ends. A secret may hold any character but a blank (a
/// Django key holds `&`, `)`, `(`, `%26`, `` ` ``...), so only what the text around
/// it explains ends it: a blank, the end of the line, a quote or bracket opened
/// before the name, a `name=` after `&` in a query string, punctuation before a
/// blank. Too long a value costs a little context; too short a one leaks its tail.
fn unquoted_end(rest: &str, mode: Mode, before: &Before) -> usize {
    let b = rest.as_bytes();
    if mode == Mode::Line {
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\n' | b'\r' | b'"' => break,
                b'\'' if !inside_word(b, i) => break,
                b'&' if !before.query || starts_param(&rest[i + 1..]) => break,
                b'\\' if matches!(b.get(i + 1), Some(b'"' | b'\'' | b'n')) => break,
                _ => i += 1,
            }
        }
        return rest[..i].trim_end().len();
    }
    let mut i = 0;
    let mut end = 0;
    loop {
        // one word
        let start = i;
        // Brackets the value opened itself: their closers are part of it.
        let mut depth = [0usize; 4];
        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            let stop = match c {
                b' ' | b'\t' | b'\n' | b'\r' => true,
                // An apostrophe inside the value (`ab'cd`) is part of it, not the
                // close of a quote opened before the name: that would leak its tail.
                b'\'' if inside_word(b, i) => false,
                b'"' | b'\'' | b'`' => before.closes(c),
                b'&' => before.query && starts_param(&rest[i + 1..]),
                b'(' | b'[' | b'{' | b'<' => {
                    let k = OPENERS.iter().position(|&o| o == c).expect("an opener");
                    depth[k] += 1;
                    false
                }
                b')' | b']' | b'}' | b'>' => {
                    let k = CLOSERS.iter().position(|&o| o == c).expect("a closer");
                    if depth[k] > 0 {
                        depth[k] -= 1;
                        false
                    } else {
                        before.bracket[k] || next.is_none_or(|n| n.is_ascii_whitespace())
                    }
                }
                // Punctuation before a blank, or before what closes the value.
                b',' | b';' | b'|' => next.is_none_or(|n| {
                    n.is_ascii_whitespace()
                        || b",;|".contains(&n)
                        || before.closes(n)
                        || CLOSERS
                            .iter()
                            .position(|&o| o == n)
                            .is_some_and(|k| before.bracket[k] && depth[k] == 0)
                }),
                b'\\' => match next {
                    Some(b'n' | b'r' | b't') => true,
                    Some(q @ (b'"' | b'\'')) => before.closes(q),
                    _ => false,
                },
                _ => false,
            };
            if stop {
                break;
            }
            i += 1;
        }
        if i == start {
            return end;
        }
        end = i;
        let joins = b.get(i) == Some(&b' ') || (b.get(i) == Some(&b'\t') && !before.tabbed);
        if mode == Mode::Word || !joins {
            return end;
        }
        // The next word joins the value unless it starts something else: another
        // `name=`/`name:`, a bracket, a dash or bar separator; a word ending a
        // sentence ends the value.
        let word = &rest[start..end];
        if word.ends_with(['.', '!', '?']) {
            return end;
        }
        let mut j = i;
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        let next_word_end = rest[j..]
            .find(|c: char| c.is_whitespace())
            .map(|e| j + e)
            .unwrap_or(rest.len());
        let next_word = &rest[j..next_word_end];
        if next_word.is_empty()
            || next_word.contains(['=', ':'])
            || next_word.starts_with(['(', '[', '{', '<', '-', '|', '"', '\'', '`'])
        {
            return end;
        }
        i = j;
    }
}

/// Redacts the values of secret-like names. Returns None when nothing changed.
///
/// Every pair is read, also one that sits inside the value of the pair before:
/// when a value is read too far (`password= "api_key": "…"` takes `"api_key"`, a
/// `credentials: api_key: …` line takes `api_key:`), the pair it swallowed still
/// has its own value redacted. Overlapping values become one placeholder, so a
/// value holding a pair (`token="a password=b"`) stays one value.
pub fn redact(text: &str) -> Option<String> {
    // (start, end, kind) of each value to replace, in order of start.
    let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
    let mut pos = 0;
    // The line of the last name read, how far it was scanned, and what was open.
    let (mut scan_line, mut scanned, mut scan) = (0, 0, LineScan::default());
    // A match-only search, and the name read off its start (a search for the
    // captures cost more than the classification of every name found).
    while let Some(whole) = NAME_SEP.find_at(text, pos) {
        let name = leading_name(whole.as_str());
        pos = whole.end().max(whole.start() + 1);
        let Some(class) = classify(name) else {
            continue;
        };
        if let Some(nl) = text[scanned..whole.start()].rfind('\n') {
            scan_line = scanned + nl + 1;
            (scanned, scan) = (scan_line, LineScan::default());
        }
        scan.feed(text.as_bytes(), scanned, whole.start());
        scanned = whole.start();
        let mut before = scan.before(&text[scan_line..whole.start()]);
        // Every other separator holds one of these.
        before.tabbed = !whole.as_str()[name.len()..].contains(['=', ':', '%', '＝', '：']);
        if class.tier == Tier::Always {
            if let Some((start, end)) =
                next_lines_value(text, scan_line, whole.start(), whole.end())
            {
                if !harmless(&text[start..end]) {
                    spans.push((start, end, class.kind));
                }
                continue;
            }
        }
        let Some(v) = read_value(text, whole.end(), class.mode, &before) else {
            continue;
        };
        let inner = &text[v.inner.0..v.inner.1];
        let redact = match class.tier {
            Tier::Always => !harmless(inner),
            Tier::IfRandom => {
                !inner.contains(PLACEHOLDER)
                    && (entropy::any_random(inner)
                        || (matches!(class.kind, "auth" | "credentials")
                            && user_and_password(inner)))
            }
        };
        if redact && v.inner.1 > v.inner.0 {
            spans.push((v.inner.0, v.inner.1, class.kind));
        }
    }
    let with_flags = |s: &str| match redact_flags(s) {
        Some(f) => Some(redact_spaced(&f).unwrap_or(f)),
        None => redact_spaced(s),
    };
    if spans.is_empty() {
        return with_flags(text);
    }
    spans.sort_by_key(|&(start, _, _)| start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < spans.len() {
        let (start, mut end, kind) = spans[i];
        i += 1;
        while i < spans.len() && spans[i].0 < end {
            end = end.max(spans[i].1);
            i += 1;
        }
        out.push_str(&text[copied..start]);
        out.push_str(&placeholder(kind));
        copied = end;
    }
    out.push_str(&text[copied..]);
    Some(with_flags(&out).unwrap_or(out))
}

/// A YAML value under its name: `password:` ending its line (or `password: |`, a
/// block) and the value on the more indented lines below. The span of those lines'
/// text, or None when the name's line goes on, nothing more indented follows, or what
/// follows is a mapping or a list (its own names are read as pairs of their own).
fn next_lines_value(
    text: &str,
    line_start: usize,
    name_at: usize,
    sep_end: usize,
) -> Option<(usize, usize)> {
    // What may end the name's line is a few bytes at most: looked at without reading
    // the line on (a long line of many names stays linear).
    let tail = &text.as_bytes()[sep_end..text.len().min(sep_end + 8)];
    let eol = match tail.iter().position(|&b| b == b'\n') {
        Some(i) => sep_end + i,
        None if sep_end + tail.len() == text.len() => text.len(),
        None => return None,
    };
    if !text[name_at..sep_end].contains([':', '：']) {
        return None;
    }
    let rest = text[sep_end..eol].trim_end_matches('\r').trim();
    let block = match rest.as_bytes() {
        [] => false,
        [b'|' | b'>', tail @ ..] if tail.iter().all(|b| matches!(b, b'-' | b'+' | b'0'..=b'9')) => {
            true
        }
        _ => return None,
    };
    let indent_of = |line: &str| line.len() - line.trim_start_matches([' ', '\t']).len();
    let key_indent = indent_of(&text[line_start..name_at]);
    let (mut start, mut end) = (None, 0);
    let mut at = eol + 1;
    for _ in 0..64 {
        if at > text.len() {
            break;
        }
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let line = text[at..line_end].trim_end_matches('\r');
        if line.trim().is_empty() {
            if !block {
                break;
            }
        } else if indent_of(line) > key_indent {
            let content = at + indent_of(line);
            if start.is_none() {
                let first = line.trim();
                if !block
                    && (first.starts_with("- ") || first.ends_with(':') || first.contains(": "))
                {
                    return None;
                }
                start = Some(content);
            }
            end = at + line.len();
        } else {
            break;
        }
        at = line_end + 1;
    }
    start.map(|s| (s, end))
}

/// See [`SPACED`] and [`SPACED_PASSWORD`].
fn redact_spaced(text: &str) -> Option<String> {
    match redact_spaced_generated(text) {
        Some(t) => Some(redact_spaced_password(&t).unwrap_or(t)),
        None => redact_spaced_password(text),
    }
}

fn redact_spaced_password(text: &str) -> Option<String> {
    let mut changed = false;
    let out = SPACED_PASSWORD.replace_all(text, |c: &regex::Captures| {
        let whole = c.get(0).expect("group 0");
        let v = c.name("v").expect("value group");
        let password = classify(c["name"].trim()).is_some_and(|k| k.kind == "password")
            || c["name"].eq_ignore_ascii_case("mot de passe");
        if let Some((from, to)) = chosen_password(v.as_str()).filter(|_| password) {
            changed = true;
            let s = whole.as_str();
            let at = v.start() - whole.start();
            format!(
                "{}{}{}",
                &s[..at + from],
                placeholder("password"),
                &s[at + to..]
            )
        } else {
            whole.as_str().to_string()
        }
    });
    changed.then(|| out.into_owned())
}

fn redact_spaced_generated(text: &str) -> Option<String> {
    let mut changed = false;
    let out = SPACED.replace_all(text, |c: &regex::Captures| {
        let whole = c.get(0).expect("group 0");
        let v = c.name("v").expect("value group");
        match classify(&c["name"]) {
            Some(k) if entropy::any_random(v.as_str()) => {
                changed = true;
                let s = whole.as_str();
                format!("{}{}", &s[..v.start() - whole.start()], placeholder(k.kind))
            }
            _ => whole.as_str().to_string(),
        }
    });
    changed.then(|| out.into_owned())
}

/// `--password hunter2`, `-p`-style flags are too short to tell: only named ones.
fn redact_flags(text: &str) -> Option<String> {
    if !text.contains('-') {
        return None;
    }
    let mut changed = false;
    let out = FLAG.replace_all(text, |c: &regex::Captures| {
        let whole = c.get(0).expect("group 0");
        let v = c.name("v").expect("value group");
        let class = classify(&c["name"]).filter(|k| k.tier == Tier::Always);
        match class {
            Some(k) if !harmless(v.as_str()) => {
                changed = true;
                let s = whole.as_str();
                format!("{}{}", &s[..v.start() - whole.start()], placeholder(k.kind))
            }
            _ => whole.as_str().to_string(),
        }
    });
    changed.then(|| out.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_read_off_the_match_is_the_name_group() {
        let texts = [
            "password=hunter2 api_key: abc \"token\": \"x\" a.b-c=>1 X-Amz-Signature%3Dabc",
            "first_seen: 2026-11-22T00:21:56Z T00:21 -x: 1 _u_ = 2 name'=3 k\\\"=4 q%3a5",
            "no pairs here at all · none",
        ];
        for t in texts {
            let mut pos = 0;
            let mut seen = 0;
            while let Some(c) = NAME_SEP.captures_at(t, pos) {
                let whole = c.get(0).unwrap();
                let m = NAME_SEP.find_at(t, pos).unwrap();
                assert_eq!((m.start(), m.end()), (whole.start(), whole.end()));
                assert_eq!(leading_name(m.as_str()), &c["name"], "{t:?}");
                pos = whole.end().max(whole.start() + 1);
                seen += 1;
            }
            assert_eq!(NAME_SEP.find_at(t, pos), None);
            assert!(seen > 0 || t.starts_with("no pairs"), "{t:?}");
        }
    }

    #[test]
    fn the_quick_look_rules_out_only_names_the_lists_do_not_classify() {
        // The full path alone, as before the quick look.
        let full = |name: &str| {
            let w = words(name);
            let joined: String = w.concat();
            let last = w.last().map(String::as_str).unwrap_or("");
            ALWAYS_SUFFIX.iter().any(|(s, _)| joined.ends_with(s))
                || ALWAYS_WORD.iter().any(|(s, _)| last == *s)
                || HINT.iter().any(|(s, _)| joined.contains(s))
        };
        let mut names: Vec<String> = [
            "",
            "-",
            "é",
            "user_name",
            "PW",
            "x-Sid",
            "MY_API_KEY",
            "étoken",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (entry, _) in ALWAYS_SUFFIX.iter().chain(ALWAYS_WORD).chain(HINT) {
            let upper = entry.to_ascii_uppercase();
            names.extend([
                entry.to_string(),
                format!("x_{upper}"),
                format!("{entry}_id"),
                format!("{}-{}", &entry[..1], &entry[1..]),
                format!("{}{entry}", "a".repeat(70)),
            ]);
        }
        for name in &names {
            assert_eq!(classify(name).is_some(), full(name), "{name}");
        }
    }

    fn red(text: &str) -> String {
        super::super::Redactor::default().clean(text)
    }

    #[test]
    fn unquoted_values_run_over_ampersands_and_backticks_to_their_real_end() {
        for (text, secret) in [
            ("Login failed password=Tr0ub&3xyzQ9", "3xyzQ9"),
            ("GET /login?user=bob&password=Tr0ub%263kkP&next=/", "3kkP"),
            ("Login failed password=ab`cdTr0ubLL", "cdTr0ubLL"),
            (
                "Boot SECRET_KEY=iquxdfv3cupaug$=1^(eb)$hy-v(5t)x@xuk6)56o9+2@62x_l ok",
                "56o9+2@62x_l",
            ),
            (
                "Boot SECRET_KEY=L-)AS&m)w=F)(*_m$$@Cr^VPt*sc05UP",
                "Cr^VPt*sc05UP",
            ),
            (
                "env DJANGO_SECRET_KEY=k&ab=cd(x)yz!Q9 started",
                "cd(x)yz!Q9",
            ),
            ("query password%3Dhunter2%26user%3Dbob", "hunter2"),
            ("set api_key=abc\"def ghi", "def"),
            ("set token=ab'cd", "cd"),
        ] {
            let got = red(text);
            assert!(!got.contains(secret), "{text}\n  → {got}");
        }
        // What closes a value: a quote, backtick or bracket opened before the name,
        // the next parameter of a query string, a blank.
        for (text, want) in [
            (
                "GET /login?user=bob&password=Tr0ub%263kkP&next=/ 500",
                "GET /login?user=bob&password=[REDACTED:password]&next=/ 500",
            ),
            (
                "form password=p&amp;w&amp;next=/",
                "form password=[REDACTED:password]",
            ),
            (
                "run `password=abc` then `ls`",
                "run `password=[REDACTED:password]` then `ls`",
            ),
            (
                "raise ValueError(\"bad password=hunter2\") here",
                "raise ValueError(\"bad password=[REDACTED:password]\") here",
            ),
            (
                "(token=abc) and [secret=x(y)z]",
                "(token=[REDACTED:token]) and [secret=[REDACTED:secret]]",
            ),
            ("password=`a b`", "password=`[REDACTED:password]`"),
            ("token=<hidden>", "token=<hidden>"),
        ] {
            assert_eq!(red(text), want, "{text}");
        }
    }

    #[test]
    fn a_generated_value_after_a_secret_name_and_a_space_is_a_secret() {
        let got = red(
            "token refresh failed, client_secret wJalrXUtnFEMIK7MDENGbPxRfiCYzq9Xa2Lk rejected",
        );
        assert!(!got.contains("wJalrXUtnFEMIK7"), "{got}");
        assert!(got.ends_with(" rejected"), "{got}");
        let got = red("api key sk9Tq2LmZx81PqRwYt3VbN7c was revoked");
        assert!(!got.contains("sk9Tq2LmZx81"), "{got}");
        for prose in [
            "password reset requested for the administrators group",
            "token expired while refreshing the organisation settings",
            "secret rotation scheduled: internationalisation",
        ] {
            assert_eq!(red(prose), prose);
        }
    }

    #[test]
    fn a_chosen_password_after_its_name_and_a_space_is_a_secret() {
        for (text, want) in [
            (
                "login failed: wrong password hunter2 for admin",
                "login failed: wrong password [REDACTED:password] for admin",
            ),
            (
                "db_password S3cret! rejected",
                "db_password [REDACTED:password] rejected",
            ),
            (
                "Passwort Sommer2026 ist abgelaufen",
                "Passwort [REDACTED:password] ist abgelaufen",
            ),
            (
                "user typed password 'open sesame'",
                "user typed password '[REDACTED:password]'",
            ),
            (
                "new passphrase correct-horse",
                "new passphrase [REDACTED:password]",
            ),
            (
                "пароль qwerty123 неверный",
                "пароль [REDACTED:password] неверный",
            ),
            ("password 123456.", "password [REDACTED:password]"),
        ] {
            assert_eq!(red(text), want, "{text}");
        }
        for prose in [
            "Failed password for invalid user root from 10.0.0.7 port 22 ssh2",
            "password reset requested for the administrators group",
            "Password Reset email sent",
            "password expired 3 days ago",
            "password attempts: 5",
            "passwords differ",
            "let the request pass th3m through",
            "password <hidden> kept",
        ] {
            assert_eq!(red(prose), prose);
        }
    }

    #[test]
    fn an_apostrophe_inside_an_unquoted_value_is_part_of_it() {
        for (text, want) in [
            (
                "log('bad password=ab'cd1234 now')",
                "log('bad password=[REDACTED:password]')",
            ),
            (
                "log('bad token=ab'cd1234 now')",
                "log('bad token=[REDACTED:token] now')",
            ),
            (
                "log('bad password=ab3'9cd now')",
                "log('bad password=[REDACTED:password]')",
            ),
            (
                "token=abc'def now the rest of the message",
                "token=[REDACTED:token] now the rest of the message",
            ),
            (
                "'Cookie: theme=it's; sid_x=abc' sent",
                "'Cookie: [REDACTED:cookie]' sent",
            ),
            // A value that opens with a quote is quoted, also on a prose line.
            ("password='abc def'", "password='[REDACTED:password]'"),
            (
                "it's password='abc def' now",
                "it's password='[REDACTED:password]' now",
            ),
            ("password=abc'def", "password=[REDACTED:password]"),
        ] {
            assert_eq!(red(text), want, "{text}");
        }
    }

    #[test]
    fn what_was_open_before_a_name_is_read_once_per_line() {
        let b = Before::of(r#"log("x", '{"#);
        assert_eq!(b.quote, [false, true, false]);
        assert_eq!(b.bracket, [true, false, true, false]);
        assert!(!b.query);
        assert!(Before::of("GET /a?x=1&").query);
        // Many names on one long line: each reads the line once.
        let line = "token=abc&".repeat(2000);
        let got = red(&format!("GET /?{line}"));
        assert_eq!(got.matches("[REDACTED:token]").count(), 2000);
    }
}
