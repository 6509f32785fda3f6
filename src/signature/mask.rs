//! Masking of the variable parts of a log message.
//!
//! A message is split on whitespace and every token is examined on its own, except quoted
//! strings, which are one value however many words they hold. Parts that are values rather
//! than wording (numbers, ids, addresses, paths, quoted strings, times, ...) are replaced with
//! the wildcard [`WILDCARD`] (`<*>`). Punctuation glued to a value is kept, so `(id=42),`
//! becomes `(id=<*>),` and `[10.0.0.1]` becomes `[<*>]`.
//!
//! The rules only look at the shape of a token, never at which program wrote it:
//!
//! * a token that *starts* with a digit (or `-`/`+`/`<`/`>`/`~` and a digit) is a value:
//!   plain, float and negative numbers, `0x7f3a`, durations (`150ms`, `2.5s`, `0:47:12`,
//!   `<1`), sizes (`12KB`), dates and times (`2024-01-02`, `12:00:01,123`), IPv4 addresses with
//!   or without a port, version numbers;
//! * long hexadecimal ids and UUIDs, padded base64 (`YWJjZA==`), IPv6 addresses, URLs (`scheme://...`), e-mail addresses,
//!   absolute or multi-level file paths (`/a/b`, `./x`, `~/x`, `C:\x\y`, `\\host\share`,
//!   `a/b/c`), host names ending in a common top-level domain (with or without a port), and
//!   the literals `true`/`false`/`null`/`nil`;
//! * a string in matching quotes (`'...'`, `"..."`, `` `...` ``), spaces included, as
//!   Python's `!r` prints it (`'Ada Lovelace'` gives `'<*>'`): see `QuoteScan` for what
//!   opens and closes one (the apostrophe of `don't` does not). A command in quotes keeps
//!   its capitalised verb (`"GET /a HTTP/1.1"` gives `"GET <*>"`);
//! * `key=value` keeps `key=` and masks the value by the same rules (empty values stay
//!   empty; base64 with its `=` padding is one value: `sid=YWJjZA==` gives `sid=<*>`);
//!   `key:value` does the same when `key` is a plain word; comma-separated lists are
//!   masked item by item;
//! * a JSON (or Python dict) key, `{"code":` or `'code':` after `{` or `,`, is structure: it
//!   is kept and only its value is masked (`{"code": "card declined"}` gives
//!   `{"code": "<*>"}`), where a quoted string is otherwise a value;
//! * any remaining token that still contains a digit is split at structural punctuation
//!   (`()[]<>{}@#|!;:./\`) and its digit-bearing parts are masked, so names survive:
//!   `Foo_2x::bar` gives `<*>::bar`, `run(Thread.java:748)` gives `run(Thread.java:<*>)`,
//!   `blk_-42` and `node-17` give `<*>`. Short names with one trailing digit (`eth0`, `ipv6`,
//!   `ssh2`) are wording (device, interface and protocol names), not values.
//!
//! Across tokens: a unit of size, rate or time after a value joins it (`5.2 KB`, `1190
//! bytes`, `<1 sec` and `3 days,` give `<*>`, so Python's `1 day, 3:02:11` is one value), a
//! bracketed value right after a value is the same value in another unit and joins it
//! (`1190 bytes (1.16 KB)` gives `<*>`),
//! month/weekday names and time zones next to a masked number join the date
//! (`Tue Aug 09 10:08:23 PDT 2005` gives `<*>`), and runs of tokens that are nothing but
//! wildcards (with the same leading punctuation) collapse to one, so a list of a variable
//! number of values (`@0x1 @0x2 @0x3`) gives one template.
//!
//! Words without digits that are not one of the shapes above are left alone: user names,
//! host names without a domain and similar values are left to the template miner.

use std::borrow::Cow;

/// The wildcard that replaces a variable part.
pub const WILDCARD: &str = "<*>";

/// Tokenise `message` on whitespace and mask its variable parts.
///
/// Tokens that need no change are borrowed from `message`, so this allocates only for
/// the tokens it rewrites.
pub fn mask_tokens(message: &str) -> Vec<Cow<'_, str>> {
    let mut out = Vec::with_capacity(16);
    mask_into(message, &mut out);
    out
}

/// Like [`mask_tokens`] but appends to a caller-provided buffer (which is cleared first).
pub fn mask_into<'a>(message: &'a str, out: &mut Vec<Cow<'a, str>>) {
    out.clear();
    let mut quotes = QuoteScan::default();
    // Byte offset before which tokens were consumed by a quoted span.
    let mut skip_to = 0;
    // The same tokens either way: on ASCII text only VT (0x0B) is white space to
    // Unicode and not to the ASCII split, which does not decode characters.
    let (mut ascii, mut unicode);
    let tokens: &mut dyn Iterator<Item = &'a str> =
        if message.is_ascii() && !message.as_bytes().contains(&0x0B) {
            ascii = message.split_ascii_whitespace();
            &mut ascii
        } else {
            unicode = message.split_whitespace();
            &mut unicode
        };
    // The last byte of the previous token (a JSON key may follow a `,` or `{`).
    let mut prev_last = 0u8;
    // The previous token as written, and where it ended.
    let (mut prev_tok, mut prev_end) = ("", 0);
    for tok in tokens {
        let start = tok.as_ptr() as usize - message.as_ptr() as usize;
        if start < skip_to {
            // Inside a span masked as one value: no name precedes the next token.
            prev_tok = "";
            continue;
        }
        let (before, before_end) = (prev_tok, prev_end);
        (prev_tok, prev_end) = (tok, start + tok.len());
        if message.as_bytes()[before_end..start].contains(&b'\t')
            && crate::redact::is_secret_name(before.trim_matches(['"', '\'']))
        {
            // `password<TAB>value`: the template joins its tokens with spaces, and the
            // redaction of a template cannot tell that value from the next word of
            // `password reset failed`; so the value never enters the template.
            prev_last = *tok.as_bytes().last().unwrap_or(&0);
            let core = tok.trim_end_matches([',', ';', '.', ')', ']', '}']);
            push_collapsing(out, Cow::Owned(format!("{WILDCARD}{}", &tok[core.len()..])));
            continue;
        }
        let after_sep = matches!(prev_last, b',' | b'{');
        prev_last = *tok.as_bytes().last().unwrap_or(&0);
        if let Some(k) = json_key_len(tok, after_sep) {
            if let Some((tokens, end)) = quotes.compact_json(message, start, k) {
                skip_to = end;
                prev_last = message.as_bytes()[end - 1];
                out.extend(tokens.into_iter().map(Cow::Owned));
                continue;
            }
            // `{"code":"card_declined"}`: the key is structure, only its value is masked.
            let (key, rest) = tok.split_at(k);
            let mut masked = String::from(key);
            if rest.bytes().any(is_quote) {
                if let Some((keyword, value, end)) = quotes.span(message, start + k, rest) {
                    skip_to = end;
                    prev_last = message.as_bytes()[end - 1];
                    if let Some(kw) = keyword {
                        masked.push_str(&kw);
                        out.push(Cow::Owned(masked));
                        out.push(Cow::Owned(value));
                    } else {
                        masked.push_str(&value);
                        out.push(Cow::Owned(masked));
                    }
                    continue;
                }
            }
            if rest.is_empty() {
                out.push(Cow::Borrowed(tok));
            } else {
                masked.push_str(&mask_token(rest));
                out.push(Cow::Owned(masked));
            }
            continue;
        }
        if tok.bytes().any(is_quote) {
            if let Some((keyword, masked, end)) = quotes.span(message, start, tok) {
                skip_to = end;
                prev_last = message.as_bytes()[end - 1];
                if let Some(k) = keyword {
                    out.push(Cow::Owned(k));
                }
                push_collapsing(out, Cow::Owned(masked));
                fold_alternate(out);
                continue;
            }
        }
        if let Some(len) =
            credential_len(tok).filter(|_| out.last().is_some_and(|p| is_auth_scheme(p)))
        {
            // `Bearer <token>`, `Basic <base64>`: a credential, whatever its letters.
            push_collapsing(out, Cow::Owned(format!("{WILDCARD}{}", &tok[len..])));
            continue;
        }
        let masked = mask_token(tok);
        if let Some(prev) = out.last_mut() {
            // A unit after a value is part of the value: `5.2 KB,` -> `<*>,`.
            let unit = tok.trim_end_matches(|c: char| c.is_ascii_punctuation() && c != '/');
            if is_unit(unit) && wildcard_shape(prev).is_some() && prev.ends_with(WILDCARD) {
                let tail = &tok[unit.len()..];
                if !tail.is_empty() {
                    *prev = Cow::Owned(format!("{prev}{tail}"));
                }
                fold_alternate(out);
                continue;
            }
        }
        push_collapsing(out, masked);
        fold_alternate(out);
    }
    absorb_date_words(out);
}

/// The length of the JSON (or Python dict) key that starts `tok`: `{"code":`, `,"id":`,
/// `{'code':`, or `"detail":` after a token that ends with `,` or `{` (`after_sep`). The
/// key is a name (letters, digits, `_`, `-`, `.`, starting with a letter or `_`), in
/// matching quotes, followed by `:`. A quoted value before a colon elsewhere (`open
/// 'a.txt': denied`) is not a key.
fn json_key_len(tok: &str, after_sep: bool) -> Option<usize> {
    let b = tok.as_bytes();
    let lead = b.iter().take_while(|c| b"{[,".contains(c)).count();
    if !(after_sep || b[..lead].iter().any(|c| b"{,".contains(c))) {
        return None;
    }
    let q = *b.get(lead)?;
    if q != b'"' && q != b'\'' {
        return None;
    }
    let name = &b[lead + 1..];
    let n = name
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || b"_-.".contains(c))
        .count();
    let first_ok = name
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_');
    (first_ok && name.get(n) == Some(&q) && name.get(n + 1) == Some(&b':'))
        .then_some(lead + 1 + n + 2)
}

fn is_auth_scheme(word: &str) -> bool {
    word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic")
}

/// A token that reads as a credential after an auth scheme: eight or more characters of
/// the token and base64 alphabets, holding a digit, a symbol or a capital after the
/// first letter, as random text does (`Basic authentication failed` keeps its word).
/// Gives the credential's length, without the punctuation that closes the sentence.
fn credential_len(tok: &str) -> Option<usize> {
    let core = tok.trim_end_matches([',', ';', ')', ']', '}', '.']);
    let random = core.len() >= 8
        && core
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=._~-".contains(&b))
        && core.bytes().skip(1).any(|b| !b.is_ascii_lowercase());
    random.then_some(core.len())
}

fn is_quote(b: u8) -> bool {
    matches!(b, b'\'' | b'"' | b'`')
}

/// Punctuation that may follow a closing quote in the same token: `'a b'),` closes.
fn closes_after_quote(b: u8) -> bool {
    b")]}>,;:.!?".contains(&b)
}

/// Finds quoted strings that span whitespace (`'Ada Lovelace'`, what Python's `!r` gives),
/// so that they become one masked token. A quote opens at the start of a token or after
/// `(`, `[`, `{`, `=`, `:` or `,` (so the apostrophe of `don't` opens nothing), and closes
/// at the same quote character, not escaped by a backslash, followed by the end of the
/// token or only closing punctuation. A quote never spans a line break (a repr escapes
/// them). Remembers where no closing quote exists, so a message full of unmatched quotes
/// is scanned once, not once per quote.
#[derive(Default)]
struct QuoteScan {
    /// Per quote kind (`'`, `"`, `` ` ``): a search from any offset before this one finds
    /// no closing quote.
    none_before: [usize; 3],
    /// Per quote kind: no unescaped quote lies in this range (the end of a JSON string).
    unescaped_none: [(usize, usize); 3],
    /// No compact JSON starts before this offset (a scan that failed got this far).
    json_failed_before: usize,
}

impl QuoteScan {
    /// If `tok` (at byte `start` of `message`) opens a quoted string, the masked token for the
    /// whole span (prefix, the quotes around a wildcard, the trailing punctuation) and the
    /// byte offset where the span ends. An empty string (`''`) is left to the token rules.
    ///
    /// A string of several words that starts with a capitalised keyword (`"GET /a
    /// HTTP/1.1"`, `"SELECT * FROM t"`) is a command, whose verb says what happened: the
    /// keyword stays, as a token of its own before the masked rest (`"GET <*>"`).
    fn span(
        &mut self,
        message: &str,
        start: usize,
        tok: &str,
    ) -> Option<(Option<String>, String, usize)> {
        let b = tok.as_bytes();
        let k = b.iter().position(|&c| is_quote(c))?;
        if k > 0 && !b"([{=:,".contains(&b[k - 1]) {
            return None;
        }
        let q = b[k];
        let kind = match q {
            b'\'' => 0,
            b'"' => 1,
            _ => 2,
        };
        let m = message.as_bytes();
        let open = start + k;
        // `''` is an empty string and ``` a fence: neither opens a quoted value.
        if m.get(open + 1) == Some(&q) {
            return None;
        }
        // The closing quote inside the token itself, else further on the same line.
        let mut close = (open + 1..start + b.len()).find(|&j| closes_at(m, j, q));
        if close.is_none() && start + b.len() >= self.none_before[kind] {
            // Up to the end of the line, not further: each byte is looked at once per
            // quote kind, as a span found is skipped and a failed search is remembered.
            let mut j = start + b.len();
            while j < m.len() && m[j] != b'\n' {
                if closes_at(m, j, q) {
                    close = Some(j);
                    break;
                }
                j += 1;
            }
            if close.is_none() {
                self.none_before[kind] = j;
            }
        }
        let close = close?;
        let end = m[close + 1..]
            .iter()
            .position(|c| c.is_ascii_whitespace())
            .map_or(m.len(), |p| close + 1 + p);
        let mut head = String::with_capacity(k + 8);
        head.push_str(&mask_token(&tok[..k]));
        head.push(q as char);
        let inner = &message[open + 1..close];
        let keyword = command_keyword(inner).map(|w| {
            head.push_str(w);
            std::mem::take(&mut head)
        });
        let mut out = head;
        out.push_str(WILDCARD);
        out.push(q as char);
        out.push_str(&message[close + 1..end]);
        Some((keyword, out, end))
    }
}

impl QuoteScan {
    /// The byte offset of the first quote `q` at or after `from` that no backslash escapes,
    /// on the same line: where a JSON string (or a Python repr) ends, whatever it holds.
    fn string_end(&mut self, m: &[u8], from: usize, q: u8) -> Option<usize> {
        let kind = usize::from(q == b'"') + 2 * usize::from(q == b'`');
        let (a, b) = self.unescaped_none[kind];
        if (a..b).contains(&from) {
            return None;
        }
        let mut j = from;
        while j < m.len() && m[j] != b'\n' {
            if m[j] == q
                && m[..j]
                    .iter()
                    .rev()
                    .take_while(|&&c| c == b'\\')
                    .count()
                    .is_multiple_of(2)
            {
                return Some(j);
            }
            j += 1;
        }
        self.unescaped_none[kind] = (from, j);
        None
    }

    /// Compact JSON (no space between its pairs) that starts with the key of `key` bytes
    /// at byte `start` of `message`: `{"user":"Ada Lovelace","action":"refund"}`. Every key
    /// stays and every value is masked (`{"user":"<*>","action":"<*>"}`), so a message
    /// with other keys is another template; a string ends at its first unescaped quote, so
    /// the spaces, colons and commas inside it are its own. Arrays keep one of a run of
    /// elements that mask alike (`[1,2,3]` gives `[<*>]`), as runs of wildcards do. Gives
    /// the masked tokens (a command's verb stays a token of its own, as in
    /// [`QuoteScan::span`]) and the byte offset where the JSON ends, or None when the text
    /// holds fewer than two keys or does not end where a token does: the other rules
    /// then apply.
    fn compact_json(
        &mut self,
        message: &str,
        start: usize,
        key: usize,
    ) -> Option<(Vec<String>, usize)> {
        if start < self.json_failed_before {
            return None;
        }
        let got = self.scan_json(message, start, key);
        if let Err(at) = got {
            self.json_failed_before = at;
        }
        got.ok()
    }

    fn scan_json(
        &mut self,
        message: &str,
        start: usize,
        key: usize,
    ) -> Result<(Vec<String>, usize), usize> {
        /// An open bracket; for an array, where its last kept element lies in the output
        /// and where its current one starts.
        struct Open {
            bracket: u8,
            last: Option<(usize, usize)>,
            current: usize,
        }
        /// An array element ends: a copy of the one before it is dropped, with its comma.
        fn element_ends(out: &mut String, open: &mut Open) {
            match open.last {
                Some((a, b)) if out[a..b] == out[open.current..] => out.truncate(open.current - 1),
                _ => open.last = Some((open.current, out.len())),
            }
        }
        let m = message.as_bytes();
        let no_space = |s: &str| !s.chars().any(char::is_whitespace);
        let mut tokens = Vec::new();
        let mut out = String::from(&message[start..start + key]);
        let mut stack: Vec<Open> = Vec::new();
        for (i, &c) in m[start..start + key].iter().enumerate() {
            if c == b'{' || c == b'[' {
                stack.push(Open {
                    bracket: c,
                    last: None,
                    current: i + 1,
                });
            }
        }
        let mut pos = start + key;
        let mut pairs = 1;
        'value: loop {
            match m.get(pos) {
                Some(&q @ (b'"' | b'\'')) => {
                    let close = self.string_end(m, pos + 1, q).ok_or(pos)?;
                    out.push(q as char);
                    if !stack.iter().any(|o| o.bracket == b'[') {
                        if let Some(w) = command_keyword(&message[pos + 1..close]) {
                            out.push_str(w);
                            tokens.push(std::mem::take(&mut out));
                        }
                    }
                    out.push_str(WILDCARD);
                    out.push(q as char);
                    pos = close + 1;
                }
                Some(&b @ (b'{' | b'[')) => {
                    out.push(b as char);
                    pos += 1;
                    let empty = if b == b'{' { b'}' } else { b']' };
                    if m.get(pos) == Some(&empty) {
                        out.push(empty as char);
                        pos += 1;
                    } else {
                        if b == b'{' {
                            let k = json_key_len(&message[pos..], true).ok_or(pos)?;
                            out.push_str(&message[pos..pos + k]);
                            pos += k;
                            pairs += 1;
                        }
                        stack.push(Open {
                            bracket: b,
                            last: None,
                            current: out.len(),
                        });
                        continue 'value;
                    }
                }
                _ => {
                    let len = m[pos..]
                        .iter()
                        .position(|c| b",}]".contains(c) || c.is_ascii_whitespace())
                        .unwrap_or(m.len() - pos);
                    let scalar = &message[pos..pos + len];
                    if len == 0 || !no_space(scalar) {
                        return Err(pos);
                    }
                    out.push_str(&mask_token(scalar));
                    pos += len;
                }
            }
            // After a value: the next element or pair, or brackets that close.
            loop {
                let top = stack.last_mut();
                match (m.get(pos), top) {
                    (Some(b','), Some(open)) if open.bracket == b'[' => {
                        element_ends(&mut out, open);
                        out.push(',');
                        open.current = out.len();
                        pos += 1;
                        continue 'value;
                    }
                    (Some(b','), top) if top.as_ref().is_none_or(|o| o.bracket == b'{') => {
                        let Some(k) = json_key_len(&message[pos + 1..], true) else {
                            break 'value;
                        };
                        out.push_str(&message[pos..pos + 1 + k]);
                        pos += 1 + k;
                        pairs += 1;
                        continue 'value;
                    }
                    (Some(&c @ (b'}' | b']')), Some(open))
                        if open.bracket == if c == b'}' { b'{' } else { b'[' } =>
                    {
                        if c == b']' {
                            element_ends(&mut out, open);
                        }
                        stack.pop();
                        out.push(c as char);
                        pos += 1;
                    }
                    _ => break 'value,
                }
            }
        }
        // The rest of the token may only close the sentence.
        let end = m[pos..]
            .iter()
            .position(|c| c.is_ascii_whitespace())
            .map_or(m.len(), |p| pos + p);
        if pairs < 2 || !m[pos..end].iter().all(|&c| closes_after_quote(c)) {
            return Err(end);
        }
        out.push_str(&message[pos..end]);
        tokens.push(out);
        Ok((tokens, end))
    }
}

/// The verb of a quoted command (`"GET /a HTTP/1.1"`, `"SELECT * FROM t"`): a capitalised
/// keyword of three letters or more followed by more text; it says what happened.
fn command_keyword(inner: &str) -> Option<&str> {
    match inner.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((w, rest))
            if w.len() >= 3
                && w.bytes().all(|c| c.is_ascii_uppercase())
                && !rest.trim().is_empty() =>
        {
            Some(w)
        }
        _ => None,
    }
}

/// Does the quote `q` at byte `j` close a string: not escaped, and followed only by closing
/// punctuation up to the next whitespace?
fn closes_at(m: &[u8], j: usize, q: u8) -> bool {
    if m[j] != q {
        return false;
    }
    let backslashes = m[..j].iter().rev().take_while(|&&c| c == b'\\').count();
    if backslashes % 2 == 1 {
        return false;
    }
    m[j + 1..]
        .iter()
        .take_while(|c| !c.is_ascii_whitespace())
        .all(|&c| closes_after_quote(c))
}

/// A value followed by the same value in another unit, in brackets, is one value:
/// `1190 bytes (1.16 KB)` gives `<*>`, so messages with and without the second rendering
/// keep the same token count; so is a value followed by an empty pair.
fn fold_alternate(out: &mut Vec<Cow<'_, str>>) {
    let n = out.len();
    if n < 2 {
        return;
    }
    let last = &out[n - 1];
    if !matches!(last.as_bytes().first(), Some(b'(' | b'[')) {
        return;
    }
    // An empty pair is the other rendering when there is none (a host name that did
    // not resolve: `1.2.3.4 ()` beside `1.2.3.4 (host.example)`).
    let inner = [('(', ')'), ('[', ']')].iter().find_map(|&(open, close)| {
        let r = last.strip_prefix(open)?;
        r.strip_prefix(WILDCARD).unwrap_or(r).strip_prefix(close)
    });
    let Some(tail) = inner else { return };
    if !tail.bytes().all(|c| c.is_ascii_punctuation()) {
        return;
    }
    let prev = &out[n - 2];
    if !(prev.ends_with(WILDCARD) && wildcard_shape(prev).is_some()) {
        return;
    }
    let joined = format!("{prev}{tail}");
    out.pop();
    out[n - 2] = Cow::Owned(joined);
}

/// Push a token, collapsing it into the previous one when both are a wildcard with the same
/// leading punctuation (the later one is kept: it carries any closing punctuation).
fn push_collapsing<'a>(out: &mut Vec<Cow<'a, str>>, tok: Cow<'a, str>) {
    if let Some(prev) = out.last_mut() {
        // The new token first: most are words, and then the previous one is not looked at.
        if let Some((b, a)) = wildcard_shape(&tok).and_then(|b| Some((b, wildcard_shape(prev)?))) {
            if a == b {
                *prev = tok;
                return;
            }
        }
    }
    out.push(tok);
}

/// Month and weekday names and time zones next to a masked number belong to a date
/// (`Tue Aug 09 10:08:23 PDT 2005`): mask them and collapse the run into one wildcard.
fn absorb_date_words(out: &mut Vec<Cow<'_, str>>) {
    if !out.iter().any(|t| is_date_word(t)) {
        return;
    }
    let n = out.len();
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if is_date_word(&out[i])
                && ((i > 0 && out[i - 1] == WILDCARD) || (i + 1 < n && out[i + 1] == WILDCARD))
            {
                let tail = out[i].trim_start_matches(|c: char| c.is_ascii_alphabetic());
                out[i] = Cow::Owned(format!("{WILDCARD}{tail}"));
                changed = true;
            }
        }
    }
    let tokens = std::mem::take(out);
    for t in tokens {
        push_collapsing(out, t);
    }
}

fn is_date_word(t: &str) -> bool {
    let core = t.trim_end_matches([',', '.']);
    if !(3..=9).contains(&core.len()) || !core.as_bytes()[0].is_ascii_uppercase() {
        return false;
    }
    matches!(
        core,
        "Jan"
            | "Feb"
            | "Mar"
            | "Apr"
            | "May"
            | "Jun"
            | "Jul"
            | "Aug"
            | "Sep"
            | "Sept"
            | "Oct"
            | "Nov"
            | "Dec"
            | "January"
            | "February"
            | "March"
            | "April"
            | "June"
            | "July"
            | "August"
            | "September"
            | "October"
            | "November"
            | "December"
            | "Mon"
            | "Tue"
            | "Wed"
            | "Thu"
            | "Fri"
            | "Sat"
            | "Sun"
            | "Monday"
            | "Tuesday"
            | "Wednesday"
            | "Thursday"
            | "Friday"
            | "Saturday"
            | "Sunday"
            | "UTC"
            | "GMT"
            | "PDT"
            | "PST"
            | "EDT"
            | "EST"
            | "CDT"
            | "CST"
            | "MDT"
            | "MST"
            | "CET"
            | "CEST"
            | "BST"
            | "IST"
            | "JST"
    )
}

/// Literal values of programming languages: booleans and null.
fn is_literal(s: &str) -> bool {
    ["true", "false", "null", "nil"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(s))
}

/// Units of size, rate and time, which follow a number (`1190 bytes`, `3 days,`, `<1 sec`).
fn is_unit(s: &str) -> bool {
    matches!(
        s,
        "B" | "KB"
            | "MB"
            | "GB"
            | "TB"
            | "PB"
            | "kB"
            | "KiB"
            | "MiB"
            | "GiB"
            | "TiB"
            | "K"
            | "M"
            | "G"
            | "byte"
            | "bytes"
            | "B/s"
            | "KB/s"
            | "kB/s"
            | "MB/s"
            | "GB/s"
            | "bps"
            | "kbps"
            | "Kbps"
            | "Mbps"
            | "Gbps"
            | "ms"
            | "us"
            | "ns"
            | "µs"
            | "msec"
            | "msecs"
            | "s"
            | "sec"
            | "secs"
            | "second"
            | "seconds"
            | "min"
            | "mins"
            | "minute"
            | "minutes"
            | "h"
            | "hr"
            | "hrs"
            | "hour"
            | "hours"
            | "day"
            | "days"
            | "week"
            | "weeks"
    )
}

/// Byte offset of the first wildcard in `s` (a cheap substring search for the 3-byte needle).
pub fn find_wildcard(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'<') {
        let at = i + p;
        if b[at..].starts_with(b"<*>") {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// If `tok` is a single wildcard with only punctuation around it, return the part before the
/// wildcard (the "shape" used to collapse runs of wildcards).
fn wildcard_shape(tok: &str) -> Option<&str> {
    let i = find_wildcard(tok)?;
    let (pre, rest) = tok.split_at(i);
    let post = &rest[WILDCARD.len()..];
    let punct = |s: &str| s.bytes().all(|b| b.is_ascii_punctuation());
    if punct(pre) && punct(post) && find_wildcard(post).is_none() {
        Some(pre)
    } else {
        None
    }
}

/// Is `tok` a single wildcard with only punctuation around it (`<*>`, `<*>,`, `(<*>)`)?
pub fn is_wildcard_shape(tok: &str) -> bool {
    wildcard_shape(tok).is_some()
}

/// Mask one whitespace-free token.
pub fn mask_token(tok: &str) -> Cow<'_, str> {
    if !needs_work(tok) {
        return Cow::Borrowed(tok);
    }
    let mut out = String::with_capacity(tok.len());
    mask_piece(tok, &mut out, 0);
    if out == tok {
        Cow::Borrowed(tok)
    } else {
        Cow::Owned(out)
    }
}

/// Quick filter: plain words (no digits and none of the characters that can start a value
/// shape) never change.
fn needs_work(tok: &str) -> bool {
    if (3..=6).contains(&tok.len()) && tok.as_bytes()[0].is_ascii_alphabetic() {
        let core = tok.trim_end_matches(|c: char| c.is_ascii_punctuation());
        if is_literal(core) {
            return true;
        }
    }
    tok.bytes().any(|b| {
        b.is_ascii_digit()
            || matches!(
                b,
                b'/' | b'\\' | b'@' | b'.' | b':' | b'"' | b'\'' | b'`' | b'=' | b','
            )
    })
}

const OPEN: &[u8] = b"([{\"'`@#$";
const CLOSE: &[u8] = b")]}\"'`,;.!?:";

fn mask_piece(t: &str, out: &mut String, depth: u8) {
    let b = t.as_bytes();
    let mut s = 0;
    while s < b.len() && OPEN.contains(&b[s]) {
        s += 1;
    }
    let mut e = b.len();
    while e > s && CLOSE.contains(&b[e - 1]) {
        e -= 1;
    }
    // A trailing `...` or `.` belongs to the sentence, but a path like `./` keeps its dot:
    // the loop above already handled that since `/` is not in CLOSE.
    let (prefix, core, suffix) = (&t[..s], &t[s..e], &t[e..]);
    if core.is_empty() {
        out.push_str(t);
        return;
    }
    if find_wildcard(core).is_some() {
        out.push_str(t);
        return;
    }
    out.push_str(prefix);
    // Quoted token: the quote that opens it also closes it.
    let quoted = matches!(prefix.as_bytes().last(), Some(q) if b"\"'`".contains(q))
        && suffix.as_bytes().first() == prefix.as_bytes().last();
    if quoted || is_value(core) {
        out.push_str(WILDCARD);
    } else if depth < 4 {
        mask_compound(core, out, depth);
    } else if core.bytes().any(|c| c.is_ascii_digit()) {
        out.push_str(WILDCARD);
    } else {
        out.push_str(core);
    }
    out.push_str(suffix);
}

/// A core that is not a value as a whole: split `key=value`, `key:value` and lists.
fn mask_compound(core: &str, out: &mut String, depth: u8) {
    let b = core.as_bytes();
    if let Some(i) = core.find('=') {
        if i > 0 {
            out.push_str(&core[..=i]);
            let v = &core[i + 1..];
            if is_padded_base64(v, 1) {
                // The `=` of base64 padding is not another key: `sid=YWJjZA==` is `sid=<*>`.
                out.push_str(WILDCARD);
            } else if !v.is_empty() {
                mask_piece(v, out, depth + 1);
            }
            return;
        }
    }
    if let Some(i) = core.find(':') {
        let key = &core[..i];
        let rest = &core[i + 1..];
        if i > 0
            && !rest.is_empty()
            && !rest.starts_with(':')
            && key
                .bytes()
                .all(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'-')
        {
            out.push_str(&core[..=i]);
            mask_piece(rest, out, depth + 1);
            return;
        }
    }
    if b.contains(&b',') {
        for (k, part) in core.split(',').enumerate() {
            if k > 0 {
                out.push(',');
            }
            if !part.is_empty() {
                mask_piece(part, out, depth + 1);
            }
        }
        return;
    }
    if b.iter().any(|c| c.is_ascii_digit()) {
        mask_segments(core, out);
    } else {
        out.push_str(core);
    }
}

/// A short name with one trailing digit (`eth0`, `en1`, `ipv6`, `ssh2`): device, interface and
/// protocol names, which are low-cardinality wording rather than values.
pub fn is_short_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && b[b.len() - 1].is_ascii_digit()
        && b[..b.len() - 1].iter().all(|c| c.is_ascii_alphabetic())
}

/// Mask the digit-bearing parts of an identifier-like token, splitting it at structural
/// punctuation so that names survive: `Foo_2x::bar` becomes `<*>::bar`,
/// `run(Thread.java:748)` becomes `run(Thread.java:<*>)`, `read......0` becomes `read......<*>`.
fn mask_segments(core: &str, out: &mut String) {
    let start = out.len();
    let is_delim = |c: char| "()[]<>{}@#|!;:./\\".contains(c);
    let mut rest = core;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !is_delim(c)).unwrap_or(rest.len());
        out.push_str(&rest[..n]);
        rest = &rest[n..];
        let m = rest.find(is_delim).unwrap_or(rest.len());
        let seg = &rest[..m];
        if !seg.is_empty() {
            if seg.bytes().any(|c| c.is_ascii_digit()) && !is_short_name(seg) {
                // Values split by the dots and colons of their own syntax (addresses, times)
                // are one: `<*>.` followed by another value stays `<*>`.
                let tail = &out[start..];
                if tail.len() > WILDCARD.len() && (tail.ends_with("<*>.") || tail.ends_with("<*>:"))
                {
                    out.pop();
                } else {
                    out.push_str(WILDCARD);
                }
            } else {
                out.push_str(seg);
            }
        }
        rest = &rest[m..];
    }
}

/// Is this (punctuation-stripped) token a value as a whole?
pub fn is_value(core: &str) -> bool {
    let b = core.as_bytes();
    if b.is_empty() {
        return false;
    }
    // Starts like a number: numbers, hex, durations, sizes, dates, times, IPv4, versions,
    // also after a sign or a comparison (`-3`, `<1`, `>=10`, `~5`).
    let sign = b
        .iter()
        .take(2)
        .take_while(|c| matches!(c, b'-' | b'+' | b'<' | b'>' | b'=' | b'~'))
        .count();
    if b.get(sign).is_some_and(|c| c.is_ascii_digit()) {
        return true;
    }
    // (a byte search: `str::contains` builds a substring searcher on every call)
    if core.as_bytes().windows(3).any(|w| w == b"://") {
        return true; // URL
    }
    if is_literal(core) || is_padded_base64(core, 2) {
        return true;
    }
    if is_hex_id(b) || is_ipv6(b) || is_email(core) || is_path(core) || is_hostname(core) {
        return true;
    }
    // host:port
    matches!(core.rsplit_once(':'), Some((host, port))
        if !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) && is_hostname(host))
}

/// Base64 with its padding: two or more characters of the base64 alphabets (standard or
/// URL-safe) followed by at least `min_pad` and at most two `=`. A lone word and one `=` is
/// `key=` with an empty value (`logname=`) when it stands alone, so only a value after a
/// key takes one `=` as padding (`token=dGVzdA=`).
fn is_padded_base64(s: &str, min_pad: usize) -> bool {
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    (min_pad..=2).contains(&pad)
        && body.len() >= 2
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+/_-".contains(&c))
}

/// Long hexadecimal ids and UUIDs: hex digits (and dashes), at least 8 hex digits, at least
/// one decimal digit.
fn is_hex_id(b: &[u8]) -> bool {
    let mut hex = 0;
    let mut digit = false;
    for &c in b {
        if c.is_ascii_hexdigit() {
            hex += 1;
            digit |= c.is_ascii_digit();
        } else if c != b'-' {
            return false;
        }
    }
    hex >= 8 && digit
}

fn is_ipv6(b: &[u8]) -> bool {
    let colons = b.iter().filter(|&&c| c == b':').count();
    colons >= 2
        && b.len() >= 3
        && b.iter()
            .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.' || c == b'%')
        && b.iter().any(|c| c.is_ascii_hexdigit())
}

fn is_email(s: &str) -> bool {
    match s.find('@') {
        Some(i) if i > 0 => {
            let dom = &s[i + 1..];
            dom.contains('.')
                && dom
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
                && s[..i]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c))
        }
        _ => false,
    }
}

fn is_path(s: &str) -> bool {
    let b = s.as_bytes();
    let has_word = |x: &[u8]| x.iter().any(|c| c.is_ascii_alphanumeric());
    if (b[0] == b'/' || b.starts_with(b"./") || b.starts_with(b"../") || b.starts_with(b"~/"))
        && b.len() > 1
        && has_word(b)
    {
        return true;
    }
    if b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
        return true; // C:\x
    }
    if b.starts_with(b"\\\\") && has_word(b) {
        return true; // UNC path
    }
    let slashes = b.iter().filter(|&&c| c == b'/').count();
    let backslashes = b.iter().filter(|&&c| c == b'\\').count();
    (slashes >= 2 || backslashes >= 2) && has_word(b)
}

/// Common top-level domains (and pseudo-domains) that end a host name.
const TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "edu",
    "gov",
    "mil",
    "int",
    "info",
    "biz",
    "io",
    "co",
    "us",
    "uk",
    "de",
    "fr",
    "nl",
    "ru",
    "cn",
    "jp",
    "br",
    "in",
    "au",
    "ca",
    "eu",
    "it",
    "es",
    "se",
    "ch",
    "pl",
    "kr",
    "tw",
    "hk",
    "me",
    "tv",
    "cc",
    "local",
    "lan",
    "internal",
    "localdomain",
    "arpa",
    "cloud",
    "dev",
    "app",
];

/// Host names: at least two dot-separated labels of letters, digits and dashes, ending in a
/// common top-level domain, and not a reversed-domain identifier (`com.example.Foo`).
fn is_hostname(s: &str) -> bool {
    if !s.contains('.') {
        return false;
    }
    let mut labels = 0;
    for l in s.split('.') {
        if l.is_empty() || !l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return false;
        }
        labels += 1;
    }
    let first = s.split('.').next().unwrap_or("");
    let last = s.rsplit('.').next().unwrap_or("");
    let is_tld = |x: &str| TLDS.iter().any(|t| t.eq_ignore_ascii_case(x));
    labels >= 2 && is_tld(last) && !(labels >= 3 && is_tld(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split that skips decoding finds the tokens the Unicode split finds, around
    /// every ASCII byte (the only one the two disagree on, VT, takes the Unicode one).
    #[test]
    fn ascii_and_unicode_splits_give_the_same_tokens() {
        for b in 0u8..128 {
            let m = format!("a{c}b {c} c{c}{c}d", c = b as char);
            if b != 0x0B {
                assert_eq!(
                    m.split_ascii_whitespace().collect::<Vec<_>>(),
                    m.split_whitespace().collect::<Vec<_>>(),
                    "byte {b}"
                );
            }
        }
        let vt = "a\u{b}b";
        let mut masked = Vec::new();
        mask_into(vt, &mut masked);
        assert_eq!(masked, vec!["a", "b"]);
    }

    fn m(s: &str) -> String {
        mask_tokens(s).join(" ")
    }

    #[test]
    fn numbers_and_ids() {
        assert_eq!(m("took 150ms for 42 items"), "took <*> for <*> items");
        assert_eq!(m("ptr 0x7f3a at -12.5"), "ptr <*> at <*>");
        assert_eq!(
            m("req 550e8400-e29b-41d4-a716-446655440000 id 113d3a99c3da401fbd62cc2caa5b96d2"),
            "req <*> id <*>"
        );
        assert_eq!(m("block blk_-6952295868487656571 done"), "block <*> done");
        assert_eq!(m("on 2024-01-02 12:00:01,123"), "on <*>");
    }

    #[test]
    fn credentials_after_an_auth_scheme() {
        assert_eq!(
            m("refused Authorization: Basic dXNlcjpwYXNzd29yZA== now"),
            "refused Authorization: Basic <*> now"
        );
        assert_eq!(
            m("header Bearer abcdefGhijklmnop, retry"),
            "header Bearer <*>, retry"
        );
        assert_eq!(m("basic auth failed for bob"), "basic auth failed for bob");
        assert_eq!(
            m("Basic authentication failed"),
            "Basic authentication failed"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            m("from 10.0.0.1:8080 and [173.234.31.186]"),
            "from <*> and [<*>]"
        );
        assert_eq!(m("addr fe80::1 up"), "addr <*> up");
        assert_eq!(m("mail bob@example.com now"), "mail <*> now");
        assert_eq!(m("get https://x.org/a?b=1 ok"), "get <*> ok");
        assert_eq!(m("for ns.example.com failed"), "for <*> failed");
        assert_eq!(
            m("class org.apache.hadoop.Foo"),
            "class org.apache.hadoop.Foo"
        );
    }

    #[test]
    fn paths_and_quotes() {
        assert_eq!(m("open /etc/app/conf.ini failed"), "open <*> failed");
        assert_eq!(m(r"load C:\Windows\x.dll"), "load <*>");
        assert_eq!(m("user 'bob' not found"), "user '<*>' not found");
        assert_eq!(m("key \"abc\", next"), "key \"<*>\", next");
    }

    #[test]
    fn glued_punctuation() {
        assert_eq!(m("id=42, (123) key:value"), "id=<*>, (<*>) key:value");
        assert_eq!(m("(HWID=1973) port:22"), "(HWID=<*>) port:<*>");
        assert_eq!(m("logname= uid=0 tty=ssh"), "logname= uid=<*> tty=ssh");
        assert_eq!(m("list a1,b,c3"), "list <*>,b,<*>");
    }

    #[test]
    fn wildcard_runs_collapse() {
        assert_eq!(m("stack @0x1 @0x2 @0x3) done"), "stack @<*>) done");
        assert_eq!(m("values 1 2 3 end"), "values <*> end");
        assert_eq!(m("a 1 b 2"), "a <*> b <*>");
        assert_eq!(m("size 5.2 KB, free 93 B)"), "size <*>, free <*>)");
        assert_eq!(m("at Tue Aug 09 10:08:23 PDT 2005 ok"), "at <*> ok");
        assert_eq!(
            m("on Sun, 3 Mar went to May street"),
            "on <*> went to May street"
        );
    }

    #[test]
    fn identifiers_keep_their_names() {
        assert_eq!(m("at Foo_2x::bar now"), "at <*>::bar now");
        assert_eq!(m("at run(Thread.java:748)"), "at run(Thread.java:<*>)");
        assert_eq!(m("prefetch depth....0"), "prefetch depth....<*>");
        assert_eq!(m("on eth0 via ipv6 ssh2"), "on eth0 via ipv6 ssh2");
        assert_eq!(m("flag=true x null"), "flag=<*> x <*>");
    }

    #[test]
    fn quoted_strings_with_spaces_are_one_value() {
        // What Python's `{name!r}` prints, in both quote styles.
        assert_eq!(m("user 'Ada Lovelace' not found"), "user '<*>' not found");
        assert_eq!(m("user 'Ada' not found"), "user '<*>' not found");
        assert_eq!(
            m("user \"Ada O'Neil-King Jr\" not found"),
            "user \"<*>\" not found"
        );
        assert_eq!(m("name='Ada Lovelace', age=3"), "name='<*>', age=<*>");
        assert_eq!(m("got ['a b', 'c d e']."), "got ['<*>', '<*>'].");
        assert_eq!(m("KeyError: ('x y', 2)"), "KeyError: ('<*>', <*>)");
        assert_eq!(m("run `ls -la /tmp` failed"), "run `<*>` failed");
        // A command keeps its verb.
        assert_eq!(
            m("10.0.0.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200"),
            "<*> \"GET <*>\" status: <*>"
        );
        assert_eq!(
            m("query 'DELETE FROM t WHERE a = 1' failed"),
            "query 'DELETE <*>' failed"
        );
        // A backslash-escaped quote does not close the string; an escaped backslash does.
        assert_eq!(m(r"msg 'it\'s a b' end"), "msg '<*>' end");
        assert_eq!(m(r"msg 'a b\\' end"), "msg '<*>' end");
        // Empty strings and fences stay as they are.
        assert_eq!(m("value '' and \"\""), "value '' and \"\"");
        assert_eq!(
            m("Render failed ``` done `x`"),
            "Render failed ``` done `<*>`"
        );
    }

    #[test]
    fn apostrophes_in_prose_are_not_quotes() {
        assert_eq!(
            m("don't stop 'me now' the user's list isn't set"),
            "don't stop '<*>' the user's list isn't set"
        );
        assert_eq!(
            m("the users' list won't load"),
            "the users' list won't load"
        );
        // A quote that never closes masks nothing, however many there are.
        assert_eq!(m("it's 'open ended"), "it's 'open ended");
        let many = "'a ".repeat(5000);
        assert_eq!(m(&many), many.trim_end());
        // A quoted string never spans a line break.
        assert_eq!(m("a 'b\nc' d"), "a 'b c' d");
    }

    #[test]
    fn durations_of_any_shape_are_one_value() {
        // Python's str(timedelta)
        for d in [
            "0:47:12",
            "1 day, 3:02:11",
            "2 days, 0:00:03",
            "-1 day, 23:59:59.500000",
            "3 days, 4:05:06",
        ] {
            assert_eq!(
                m(&format!("job took {d} in total")),
                "job took <*> in total"
            );
        }
        for d in [
            "<1 sec",
            "00:01",
            "12ms",
            "1.5s",
            "1.2 KB",
            "30 seconds",
            "2 h",
        ] {
            assert_eq!(
                m(&format!("lifetime {d}, done")),
                "lifetime <*>, done",
                "{d}"
            );
        }
        assert_eq!(m("rate 12.5 MB/s now"), "rate <*> now");
    }

    #[test]
    fn a_value_with_its_other_rendering_is_one_value() {
        assert_eq!(m("1190 bytes (1.16 KB) sent"), "<*> sent");
        assert_eq!(m("0 bytes sent"), "<*> sent");
        assert_eq!(
            m("h.example.com:5070 close, 1190 bytes (1.16 KB) sent, 0 bytes received"),
            "<*> close, <*> sent, <*> received"
        );
        assert_eq!(m("size 5 [5.0 KB], ok"), "size <*>, ok");
        // An address with its host name, or with none.
        assert_eq!(
            m("connection from 10.1.2.3 () at Mon Jun 20 03:40:59 2005"),
            m("connection from 10.4.5.6 (host-10-4-5-6.example.net) at Fri Jun 17 07:07:00 2005")
        );
        assert_eq!(m("peer 10.1.2.3 [], closed"), "peer <*>, closed");
        assert_eq!(m("called f () twice"), "called f () twice");
        // not after a key or a word
        assert_eq!(
            m("uid=0 (0) pid 7 (worker)"),
            "uid=<*> (<*>) pid <*> (worker)"
        );
    }

    #[test]
    fn words_are_kept() {
        assert_eq!(
            m("Connection refused by peer"),
            "Connection refused by peer"
        );
        assert_eq!(m("wcp.dll loaded."), "wcp.dll loaded.");
        let v = mask_tokens("plain words");
        assert!(v.iter().all(|t| matches!(t, Cow::Borrowed(_))));
    }

    #[test]
    fn padded_base64_is_a_value() {
        assert_eq!(m("sid=YWJjZA== rejected"), "sid=<*> rejected");
        assert_eq!(m("token=dGVzdA=, retry"), "token=<*>, retry");
        assert_eq!(m("(key=c2Vzc2lvbi1rZXk=)"), "(key=<*>)");
        assert_eq!(m("got YWJjZA== back"), "got <*> back");
        // an empty value stays a key
        assert_eq!(m("logname= uid=0"), "logname= uid=<*>");
        assert_eq!(m("set a= b"), "set a= b");
    }

    #[test]
    fn json_keys_are_kept_and_their_values_masked() {
        assert_eq!(
            m(r#"error {"code":"card_declined"}"#),
            r#"error {"code":"<*>"}"#
        );
        assert_eq!(
            m(r#"error {"code": "card declined", "id": 42}"#),
            r#"error {"code": "<*>", "id": <*>}"#
        );
        assert_eq!(
            m("error {'code': 'card_declined', 'retry': False}"),
            "error {'code': '<*>', 'retry': <*>}"
        );
        assert_eq!(
            m(r#"{"method":"GET /a HTTP/1.1"}"#),
            r#"{"method":"GET <*>"}"#
        );
        // A quoted value before a colon, outside an object, is still a value.
        assert_eq!(
            m("open 'a b.txt': permission denied"),
            "open '<*>': permission denied"
        );
        assert_eq!(m("KeyError: 'code'"), "KeyError: '<*>'");
    }
    #[test]
    fn compact_json_keeps_every_key_whatever_its_strings_hold() {
        assert_eq!(
            m(r#"payment failed {"user":"Ada Lovelace","action":"refund","code":"E42"}"#),
            r#"payment failed {"user":"<*>","action":"<*>","code":"<*>"}"#
        );
        // Another key is another mask; other values with spaces are the same one.
        assert_ne!(
            m(r#"payment failed {"user":"Ada Lovelace","login":"refund","code":"E42"}"#),
            m(r#"payment failed {"user":"Ada Lovelace","action":"refund","code":"E42"}"#)
        );
        assert_eq!(
            m(r#"payment failed {"user":"Grace B. Hopper","action":"void it, now","code":"x"}"#),
            r#"payment failed {"user":"<*>","action":"<*>","code":"<*>"}"#
        );
        // Escaped quotes, colons and commas inside a string are the string's.
        assert_eq!(
            m(r#"bad {"msg":"say \"hi\", then: \"go\"","code":"a\\"}."#),
            r#"bad {"msg":"<*>","code":"<*>"}."#
        );
        assert_eq!(
            m(r#"bad {"msg":"a\",\"fake\":\"b","code":1}"#),
            r#"bad {"msg":"<*>","code":<*>}"#
        );
        // Numbers, literals, nested objects; an array keeps one of elements alike.
        assert_eq!(
            m(r#"{"id":42,"ok":true,"who":{"name":"A B","roles":["x y","z"]},"n":[1,2,3],"e":{}}"#),
            r#"{"id":<*>,"ok":<*>,"who":{"name":"<*>","roles":["<*>"]},"n":[<*>],"e":{}}"#
        );
        assert_eq!(
            m(r#"got [{"a":"x y","b":1},{"a":"z","b":2}]"#),
            r#"got [{"a":"<*>","b":<*>}]"#
        );
        // A command keeps its verb, as in any quoted string.
        assert_eq!(
            m(r#"{"method":"GET /a HTTP/1.1","status":500}"#),
            r#"{"method":"GET <*>","status":<*>}"#
        );
        // Pairs with spaces between them, and JSON that does not end a token, are masked
        // pair by pair as before.
        assert_eq!(
            m(r#"{"a":"x y","b":1, "c":"u v"}"#),
            r#"{"a":"<*>","b":<*>, "c":"<*>"}"#
        );
        assert_eq!(m(r#"{"a":"x y", "b":1}"#), r#"{"a":"<*>", "b":<*>}"#);
        assert_eq!(m(r#"{"a":"x","b":"open"#), r#"{"a":"x","b":"open"#);
        // A line of unclosed strings is scanned once, not once per string.
        let many = r#"{"a":1,"b":"x "#.repeat(20_000);
        assert_eq!(mask_tokens(&many).len(), 20_000);
    }

    #[test]
    fn a_value_after_a_secret_name_and_a_tab_is_masked() {
        let m = |s: &str| mask_tokens(s).join(" ");
        assert_eq!(
            m("login failed: password\thunter now"),
            "login failed: password <*> now"
        );
        assert_eq!(
            m("auth API_KEY\tabcdef, retrying"),
            "auth API_KEY <*>, retrying"
        );
        // A name quoted inside a span masked as one value names no later token.
        assert_eq!(m("got \"password\tx\" today"), "got \"<*>\" today");
        // A space is not a tab: wording stays wording.
        assert_eq!(m("password reset failed"), "password reset failed");
        assert_eq!(m("user\tbob failed"), "user bob failed");
    }
}
