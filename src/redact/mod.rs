//! Redaction: secrets are replaced by typed placeholders (`[REDACTED:aws-key]`)
//! before any text leaves the host.
//!
//! Everything logwarden sends away goes through a [`Redactor`]: the investigator's
//! prompt (and the results of its tools), the ntfy message, and by default the
//! incident file. The passes, in order:
//!
//! 1. loguru `diagnose=True` dumps ([`dump`]): a value drawn under a variable whose
//!    name says secret (done first: it reads the source line's columns as logged);
//! 2. PEM and PGP private key blocks, whole, `\n`-escaped or cut short;
//! 3. shapes: provider keys (Anthropic, OpenAI, AWS, GitHub, GitLab, Slack, Stripe,
//!    Google, SendGrid, npm, Twilio, ...), JWTs, bearer/basic credentials, passwords
//!    in URLs (also URL-encoded), webhook URLs, card numbers (Luhn-checked),
//!    crypt(3) password hashes (`$6$salt$hash`, bcrypt, yescrypt, Argon2);
//!    then the credentials of `AUTH` commands ([`commands`]) and of Authorization
//!    headers;
//! 4. values next to secret-like names ([`pairs`]): always for names that are
//!    secrets, when the value looks generated ([`entropy`]) for names that hint;
//! 5. the config's own regexes under `[redact]`.
//!
//! The rules lean towards redacting too much: a placeholder in the evidence costs a
//! little context, a leaked key costs a rotation. Text is redacted whole, *then*
//! cut: a secret cut in half no longer has the shape that finds it. Where text must
//! be cut before it can be redacted (a record too long to keep), [`cut_point`]
//! keeps the cut off the middle of a token.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use regex::{Captures, Regex, RegexSet};

mod auth;
mod commands;
mod dump;
pub mod entropy;
mod pairs;

/// The template miner's wildcard (see `crate::signature::mask`).
const WILDCARD: &str = "<*>";

/// The prefix of every placeholder.
pub const PLACEHOLDER: &str = "[REDACTED:";

/// A built-in rule: a regex and the kind of secret it finds. When the regex has a
/// group named `v`, only that group is replaced; else the whole match is. `check`
/// can refuse a match (a card number failing Luhn).
struct Rule {
    kind: &'static str,
    pattern: String,
    /// Compiled at its first use: most texts hold no secret, and the set of all rules
    /// tells which few to run, so a run pays for compiling only those (all of them took
    /// about 4 ms, a sixth of a run that updates ten incidents).
    re: OnceLock<Regex>,
    check: Option<Check>,
}

impl Rule {
    fn re(&self) -> &Regex {
        self.re
            .get_or_init(|| Regex::new(&self.pattern).expect("built-in redaction regex compiles"))
    }
}

fn rule(kind: &'static str, re: &str) -> Rule {
    Rule {
        kind,
        pattern: ascii_boundaries(re),
        re: OnceLock::new(),
        check: None,
    }
}

/// The pattern with each `\b` made an ASCII word boundary (`(?-u:\b)`). A Unicode
/// boundary stops the fast (lazy DFA) search at the first non-ASCII byte, and the
/// texts redacted carry some (the notification's `·`): every rule then fell back to
/// the slow NFA simulation over the whole text. Each `\b` of these rules stands next
/// to an ASCII character of the pattern, where an ASCII boundary holds wherever a
/// Unicode one does (and also before or after a non-ASCII letter): it finds every
/// secret it found before, and leans towards redacting more.
fn ascii_boundaries(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 16);
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push_str("(?-u:\\b)"),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn checked(kind: &'static str, re: &str, check: Check) -> Rule {
    Rule {
        check: Some(check),
        ..rule(kind, re)
    }
}

static BUILTIN: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // Also wrapped after a dot onto the next line (a long line folded by its
        // logger); the signature alone on a line only when long enough to be one.
        rule(
            "jwt",
            r"\beyJ[A-Za-z0-9_-]{4,}\.(?:\r?\n[ \t]*)?eyJ[A-Za-z0-9_-]{4,}\.(?:[A-Za-z0-9_-]{4,}|\r?\n[ \t]*[A-Za-z0-9_-]{16,})",
        ),
        // Three dot-separated base64url parts, the first the bot's numeric id:
        // decoded, it must be digits (a dotted name of that shape is not). Before
        // the one-prefix keys: its last part may well start `sk-` or `ghp_`, and a
        // rule that took that part would leave the first two parts behind.
        checked(
            "discord-token",
            r"\b[MNO][A-Za-z0-9_-]{20,30}\.[A-Za-z0-9_-]{5,7}\.[A-Za-z0-9_-]{25,}",
            discord_token,
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
        // A secret access key without its name, beside its key id on one line (a
        // credentials CSV, `aws configure` echoed, `id secret` in a message): found
        // before the id turns into its placeholder, told by the id next to it.
        checked(
            "aws-secret",
            r"(?:^|[^A-Za-z0-9/+=])(?P<v>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)",
            aws_secret_beside_id,
        ),
        rule("aws-key", r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b"),
        rule(
            "aws-secret",
            r#"(?i)aws_?secret(?:_access)?(?:_key)?\\?["']?\s*[:=]\s*\\?["']?(?P<v>[A-Za-z0-9/+=]{40})"#,
        ),
        rule(
            "github-token",
            r"\b(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
        ),
        rule("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        rule("slack-token", r"\bxox[abprse]-[A-Za-z0-9-]{10,}"),
        // 35 characters after the prefix; fewer still count (a key cut short).
        rule("google-api-key", r"\bAIza[0-9A-Za-z_-]{20,}"),
        rule(
            "sendgrid-key",
            r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
        ),
        rule("npm-token", r"\bnpm_[A-Za-z0-9]{30,}"),
        // Prefixed keys, as their providers document them: the prefix and a run of
        // token characters (Mailgun's `key-` and Databricks' `dapi` hold a fixed
        // length of lower-case letters and digits).
        rule(
            "api-key",
            r"\b(?:whsec|GOCSPX|shp(?:at|ss|ca|pa)|dop_v1|doo_v1|dor_v1|hf|glsa|glc|lin_api|pscale_tkn|pscale_pw|sq0csp|sq0atp|xapp|pypi|HRKU|xkeysib|xsmtpsib|sbp|sb_secret|sntry[su]|pul|figd|dckr_pat|gsk|pplx|xai|tskey|CFPAT|NRAK|NRII|PMAK|FLWSECK|FLWSECK_TEST|rubygems|shippo_live|shippo_test|duffel_live|duffel_test)[_-][A-Za-z0-9_-]{20,}|\bkey-[0-9a-z]{32}\b|\b[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}\b|\bdapi[0-9a-f]{32}(?:-[0-9]+)?\b|\b[0-9a-f]{32}-us[0-9]{1,2}\b|\bAGE-SECRET-KEY-1[0-9A-Z]{50,}|\bA(?:TATT|TCTT)3[A-Za-z0-9_=-]{20,}|\bATBB[A-Za-z0-9]{28,}|\bdp\.(?:pt|st|sa|ct|scim|audit)\.(?:[A-Za-z0-9_-]{1,40}\.)?[A-Za-z0-9]{20,}|\bhv[sbr]\.[A-Za-z0-9_-]{20,}|\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{30,}|\bsk\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{10,}|\bops_eyJ[A-Za-z0-9+/=_-]{20,}|\bya29\.[A-Za-z0-9_-]{20,}|\b1//0[A-Za-z0-9_-]{20,}",
        ),
        // The bot's numeric id, `:`, 35 characters from `AA`; also inside the Bot
        // API's URL path (`/bot<token>/sendMessage`), where only the token goes.
        rule(
            "telegram-token",
            r"(?:\bbot|\b)(?P<v>[0-9]{5,16}:AA[A-Za-z0-9_-]{30,})",
        ),
        // Twilio: an API key SID is a key; the 32-hex auth token is told by what
        // stands before it (the account SID `AC…`, `twilio`, `auth`).
        rule("twilio-key", r"\bSK[0-9a-fA-F]{32}\b"),
        // The token is found first and its context checked after: one pattern
        // spanning both (`(?i:twilio|auth|…)[^\n]{0,80}?\b[0-9a-fA-F]{32}`) made the
        // search build states for every offset in the gap, the slowest rule by far.
        checked("twilio-token", r"\b[0-9a-fA-F]{32}\b", twilio_context),
        rule(
            "bearer-token",
            r"(?i)\b(?:bearer|token)[ \t]+(?P<v>[A-Za-z0-9._~+/=-]{12,})",
        ),
        rule(
            "basic-auth",
            r"(?i)\bbasic[ \t]+(?P<v>[A-Za-z0-9+/]{12,}={0,2})",
        ),
        // The password runs to the *last* `@` of the URL: passwords hold `/` and
        // `@` unencoded often enough; the user may be empty (`redis://:pw@host`)
        // or already a placeholder, whose `:` does not end it.
        rule(
            "url-password",
            r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?:\[REDACTED:[^\]\s]*\]|[^\s:/@'"<>])*:(?P<v>[^\s'"<>`]+)@"#,
        ),
        rule(
            "url-password",
            r#"(?i)%3A%2F%2F[A-Za-z0-9._~!$()*+,;-]*%3A(?P<v>[^\s'"<>&]+)%40"#,
        ),
        // A URL's user alone, without password, when it is a key (a Sentry DSN:
        // `https://<key>@o1.ingest.sentry.io/2`); `git@`, `postgres@` stay.
        checked(
            "url-credential",
            r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?P<v>[^\s:/@'"<>\[\]]+)@"#,
            |_, v, _| entropy::looks_random(v),
        ),
        // Command lines: `mysql -p<password>` (the value attached; `-p db` names a
        // database) and `curl -u user:password`, also as a Python argv list
        // (`['curl', '-u', 'user:pw']`). The flags mean other things to other
        // programs (`ssh -p2222`, `docker -u 1000:1000`): the program must be named
        // before them on the line.
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])-p(?P<v>(?:[^\s'",\]\-\\]|\\[^\s'"])[^\s'",\]]*)"#,
            |text, _, at| program_before(text, at, &["mysql", "mariadb", "sshpass"]),
        ),
        // Shell-quoted (`-p'S3cr3t!'`, `-p"pw"`, escaped inside a quoted command
        // `-p\'pw\'`): to the closing quote, or the line's end when it never closes.
        // Not the quote that closes an argv item (`'-p', 'db'`, `"-p"]`).
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])-p'(?P<v>[^\s'(),:\[\]{}][^'\n]*)"#,
            |text, _, at| program_before(text, at, &["mysql", "mariadb", "sshpass"]),
        ),
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])-p"(?P<v>(?:[^\s"\\(),:\[\]{}]|\\[^\n])(?:[^"\\\n]|\\[^\n])*)"#,
            |text, _, at| program_before(text, at, &["mysql", "mariadb", "sshpass"]),
        ),
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])-p\\+['"](?P<v>(?:[^\s\\(),:\[\]{}]|\\[^\s'"\\])(?:[^\\\n]|\\[^'"\\\n])*)"#,
            |text, _, at| program_before(text, at, &["mysql", "mariadb", "sshpass"]),
        ),
        // `sshpass -p <password>` takes it as the next word too (its usual form),
        // quoted or not, and as the next item of an argv list.
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])-p(?:[ \t]+['"]?|['"],[ \t]*['"])(?P<v>[^\s'",\]\-][^\s'",\]]*)"#,
            sshpass_option,
        ),
        // `redis-cli -a <password>` (or `--pass`), and registry and cloud logins
        // (`docker login -p`, `podman`, `az login -u … -p …`, `cf login -p`): the
        // next word, or the next item of an argv list.
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])(?:-a|--pass)(?:[ \t]+['"]?|['"],[ \t]*['"])(?P<v>[^\s'",\]\-][^\s'",\]]*)"#,
            |text, _, at| program_before(text, at, &["redis-cli"]),
        ),
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])(?:-p|--password)(?:[ \t]+['"]?|['"],[ \t]*['"])(?P<v>[^\s'",\]\-][^\s'",\]]*)"#,
            |text, _, at| program_before(text, at, &["login"]),
        ),
        checked(
            "password",
            r#"(?:(?m:^)|[\s'"\[,])(?:-u|-U|--user|--proxy-user)(?:=|[ \t]+|['"],[ \t]*|)['"]?[^\s:'"]*:(?P<v>[^\s'"\]]+)"#,
            |text, _, at| program_before(text, at, &["curl"]),
        ),
        // Webhook URLs are their own secret: everything after the known prefix. Host
        // labels are ASCII word characters or any non-ASCII one: a superset of `\w`
        // that compiles in a tenth of the time (Unicode `\w` is hundreds of ranges).
        rule(
            "webhook",
            r#"(?i)\bhttps?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/|(?:(?-i:[0-9A-Za-z_\x{80}-\x{10FFFF}-])+\.)?discord(?:app)?\.com/api(?:/v[0-9]+)?/webhooks/|(?-i:[0-9A-Za-z_\x{80}-\x{10FFFF}.-])*webhook\.office\.com/|hooks\.zapier\.com/hooks/catch/|chat\.googleapis\.com/v1/spaces/|maker\.ifttt\.com/trigger/)(?P<v>[^\s"'<>\\)\]`]+)"#,
        ),
        // …and generic `/webhook/<secret>` paths when a segment looks like one
        // (`/webhooks/stripe` is an endpoint, not a secret).
        checked(
            "webhook",
            r#"(?i)/(?:webhooks?|hooks?|webhookb2)/(?P<v>[^\s"'<>\\?#)\]`]+)"#,
            |_, v, _| v.split('/').any(secretish_segment),
        ),
        // Any other key of the usual make: a short prefix, `_` or `-`, and a long
        // run of random base62 (both cases and digits, no words): most providers
        // issue keys so. Hex (hashes, ids) and UUIDs are never one of these, nor
        // are the ids that providers prefix the same way (`req_`, `msg_`, ...).
        checked(
            "token",
            r"\b[A-Za-z][A-Za-z0-9]{1,11}[_-][A-Za-z0-9_-]{30,}",
            prefixed_token,
        ),
        // crypt(3) hashes, as htpasswd and /etc/shadow hold them (and as a dump of
        // either logs them): a hash is as good as the password to an offline guesser.
        // The scheme and its parameters stay (they say what the line is); the salt
        // and the hash go. MD5-crypt, Apache's apr1, SHA-crypt (with `rounds=`),
        // bcrypt, yescrypt and scrypt, Argon2, Django's PBKDF2.
        rule(
            "password-hash",
            r"\$(?:1|apr1|md5|5|6)\$(?:rounds=[0-9]+\$)?(?P<v>[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{8,})",
        ),
        rule(
            "password-hash",
            r"\$2[abxy]?\$[0-9]{2}\$(?P<v>[./A-Za-z0-9]{20,})",
        ),
        rule(
            "password-hash",
            r"\$(?:y|gy|7)\$(?P<v>[./A-Za-z0-9]+(?:\$[./A-Za-z0-9]*)?\$[./A-Za-z0-9]{8,})",
        ),
        rule(
            "password-hash",
            r"\$argon2(?:id|i|d)\$(?:v=[0-9]+\$)?m=[0-9]+,t=[0-9]+,p=[0-9]+\$(?P<v>[A-Za-z0-9+/]+\$[A-Za-z0-9+/]{8,})",
        ),
        rule(
            "password-hash",
            r"\bpbkdf2_sha(?:1|256|512)\$[0-9]+\$(?P<v>[A-Za-z0-9./+]+\$[A-Za-z0-9./+=]{8,})",
        ),
        checked(
            "card-number",
            r"\b[2-6][0-9]{12,18}\b|\b[2-6][0-9]{3}(?:[ -][0-9]{4,6}){2}(?:[ -][0-9]{1,6}){0,2}\b",
            card_number,
        ),
    ]
});

/// The built-in rules as one set: a single pass over a text tells which of them match
/// it at all. Most texts hold no secret, and one pass costs less than a search per
/// rule (each rule's own search gave up soon on most, but there are two dozen).
static BUILTIN_SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(BUILTIN.iter().map(|r| r.pattern.as_str()))
        .expect("built-in redaction regexes compile")
});

/// What marks a 32-hex token as a Twilio auth token when it stands before it.
static TWILIO_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&ascii_boundaries(r"(?i:twilio|auth)|\bAC[0-9a-f]{32}\b"))
        .expect("built-in redaction regex compiles")
});

/// Whether `twilio`, `auth` or an account SID (`AC…`) ends at most 80 characters
/// before the token at `at`, on its line.
/// An AWS access key id (or its placeholder) within 64 bytes of the 40 characters at
/// `at`, on their line; the 40 mix upper and lower case, as base64 does (a SHA-1 in hex
/// does not).
fn aws_secret_beside_id(text: &str, v: &str, at: usize) -> bool {
    static ID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b|\[REDACTED:aws-key\]")
            .expect("aws id regex compiles")
    });
    if !(v.bytes().any(|b| b.is_ascii_lowercase()) && v.bytes().any(|b| b.is_ascii_uppercase())) {
        return false;
    }
    let mut from = at.saturating_sub(64);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let mut to = (at + v.len() + 64).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    let (before, after) = (&text[from..at], &text[at + v.len()..to]);
    let before = before.rsplit('\n').next().unwrap_or("");
    let after = after.split('\n').next().unwrap_or("");
    ID.is_match(before) || ID.is_match(after)
}

fn twilio_context(text: &str, _: &str, at: usize) -> bool {
    let line = &text[text[..at].rfind('\n').map_or(0, |i| i + 1)..at];
    // Where the last 80 characters start (the context must end there or later), and
    // 34 characters before it (the longest context starts no earlier).
    let nth_back = |n: usize| line.char_indices().rev().nth(n).map_or(0, |(i, _)| i);
    let (from, gap_from) = (nth_back(79 + 34), nth_back(79));
    let window = &line[from..];
    TWILIO_CONTEXT
        .find_iter(window)
        .any(|m| from + m.end() >= gap_from)
}

/// The line a rule's check looks at, lower-cased once for all the matches on it:
/// a hostile line of a million `-p` must not be lower-cased once per match. Valid
/// for one pass of one rule over one text (`apply` clears it before each).
struct CheckedLine {
    start: usize,
    end: usize,
    lower: String,
    /// Where each program named so far is first named on the line.
    first: Vec<(&'static str, Option<usize>)>,
    /// Where each `sshpass` on the line ends, and where each word that is no option
    /// (`-x`) starts, in order.
    sshpass: Option<(Vec<usize>, Vec<usize>)>,
}

thread_local! {
    static CHECKED_LINE: std::cell::RefCell<Option<CheckedLine>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` on the line of `text` around `at` (`at` relative to its start).
fn with_line<T>(text: &str, at: usize, f: impl FnOnce(&mut CheckedLine, usize) -> T) -> T {
    CHECKED_LINE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if !cell.as_ref().is_some_and(|l| l.start <= at && at <= l.end) {
            // Matches come in order: the search back stops at the last line's end.
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            *cell = Some(CheckedLine {
                start,
                end,
                lower: text[start..end].to_ascii_lowercase(),
                first: Vec::new(),
                sshpass: None,
            });
        }
        let line = cell.as_mut().expect("set above");
        let rel = at - line.start;
        f(line, rel)
    })
}

/// Whether one of `programs` is named on the line before `at` (case ignored).
fn program_before(text: &str, at: usize, programs: &[&'static str]) -> bool {
    with_line(text, at, |line, at| {
        programs.iter().any(|&p| {
            let first = match line.first.iter().find(|(q, _)| *q == p) {
                Some(&(_, f)) => f,
                None => {
                    let f = line.lower.find(p);
                    line.first.push((p, f));
                    f
                }
            };
            first.is_some_and(|f| f + p.len() <= at)
        })
    })
}

/// Whether the `-p` at `at` is sshpass's own: only options between `sshpass` and it (in
/// `sshpass -p pw ssh -p 2222 host` the second is ssh's port).
fn sshpass_option(text: &str, _: &str, at: usize) -> bool {
    const NAME: &str = "sshpass";
    let separator = |c: u8| c.is_ascii_whitespace() || b"'\",[]".contains(&c);
    with_line(text, at, |line, at| {
        let lower = line.lower.as_bytes();
        let (ends, words) = line.sshpass.get_or_insert_with(|| {
            let ends = line
                .lower
                .match_indices(NAME)
                .map(|(i, _)| i + NAME.len())
                .collect();
            let words = (0..lower.len())
                .filter(|&i| {
                    !separator(lower[i]) && lower[i] != b'-' && (i == 0 || separator(lower[i - 1]))
                })
                .collect();
            (ends, words)
        });
        // The last `sshpass` that ends before `at`.
        let k = ends.partition_point(|&e| e <= at);
        if k == 0 {
            return false;
        }
        let e = ends[k - 1];
        // What is left of the word `sshpass` ends is a word of its own.
        let rest = lower[e..at]
            .iter()
            .position(|&c| separator(c))
            .map_or(at, |i| e + i);
        if rest > e && lower[e] != b'-' {
            return false;
        }
        let w = words.partition_point(|&w| w <= rest);
        words.get(w).is_none_or(|&w| w >= at)
    })
}

/// Prefixes of ids, which are evidence (a request id for the provider's support),
/// not keys.
const ID_PREFIXES: &[&str] = &[
    "req", "request", "msg", "message", "resp", "response", "chatcmpl", "cmpl", "run", "thread",
    "asst", "file", "batch", "toolu", "srvtoolu", "evt", "event", "cus", "pi", "ch", "in", "sub",
    "prod", "price", "trace", "span", "id", "uuid", "txn", "order", "job", "task", "build",
    "commit", "sha", "sha1", "sha256", "sha384", "sha512", "md5", "test", "tmp", "temp", "file",
    "img", "image", "vol", "snap", "ami", "vpc", "subnet", "sg", "eni", "i", "acct", "org", "user",
    "usr", "proj", "project", "ws", "conn", "call", "log",
];

/// A key of the usual make: prefix, separator, and a run of random base62.
fn prefixed_token(_: &str, m: &str, _: usize) -> bool {
    let sep = m.find(['_', '-']).expect("the pattern has a separator");
    let prefix = m[..sep].to_ascii_lowercase();
    if ID_PREFIXES.contains(&prefix.as_str()) {
        return false;
    }
    let tail = &m[sep + 1..];
    let alnum: String = tail.chars().filter(char::is_ascii_alphanumeric).collect();
    let upper = alnum.chars().filter(char::is_ascii_uppercase).count();
    let lower = alnum.chars().filter(char::is_ascii_lowercase).count();
    let digits = alnum.chars().filter(char::is_ascii_digit).count();
    if alnum.len() < 30 || upper < 2 || lower < 2 || digits == 0 {
        return false;
    }
    // Words: CamelCase or snake_case identifiers hold long runs of lower-case
    // letters, random text rarely does (a run of 4 has odds of 1 in 30 a place).
    let mut wordy = 0;
    let mut run = 0;
    for c in alnum.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_lowercase() {
            run += 1;
        } else {
            if run >= 4 {
                wordy += run;
            }
            run = 0;
        }
    }
    wordy * 4 < alnum.len() && entropy::looks_random(tail)
}

/// A Discord bot token's first part is the bot's id in base64: digits once decoded.
fn discord_token(_: &str, m: &str, _: usize) -> bool {
    let first = m.split('.').next().unwrap_or("");
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut digits = 0;
    for chunk in first.as_bytes().chunks_exact(4) {
        let mut n = 0u32;
        for &c in chunk {
            let Some(v) = val(c) else { return false };
            n = n << 6 | v;
        }
        for byte in [(n >> 16) as u8, (n >> 8) as u8, n as u8] {
            if !byte.is_ascii_digit() {
                return false;
            }
            digits += 1;
        }
    }
    digits >= 15
}

/// A URL path segment that reads like a token: random, or letters and digits mixed.
fn secretish_segment(seg: &str) -> bool {
    let digits = seg.chars().filter(char::is_ascii_digit).count();
    let letters = seg.chars().filter(char::is_ascii_alphabetic).count();
    entropy::looks_random(seg)
        || (seg.len() >= 8 && digits >= 2 && letters >= 2 && !seg.contains('.'))
        || (seg.len() >= 16 && digits == seg.len())
}

/// A payment card number: 13 to 19 digits, one kind of separator in groups of 4
/// to 6 (the last shorter), passing Luhn, not the tail of a decimal number.
fn card_number(text: &str, m: &str, at: usize) -> bool {
    // `0.4111111111111111` is a float's fraction; `1,4111…` a list of numbers.
    if text[..at].ends_with('.') || text[..at].ends_with(',') {
        return false;
    }
    let digits: Vec<u32> = m.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let seps: Vec<char> = m.chars().filter(|c| !c.is_ascii_digit()).collect();
    if let Some(&first) = seps.first() {
        if seps.iter().any(|&c| c != first) {
            return false;
        }
        let groups: Vec<&str> = m.split(first).collect();
        let (last, body) = groups.split_last().expect("split gives one");
        if body.iter().any(|g| !(4..=6).contains(&g.len())) || last.is_empty() || last.len() > 6 {
            return false;
        }
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

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
        let mut out: Cow<'a, str> = match dump::redact(text) {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(text),
        };
        if let Cow::Owned(s) = redact_pem(&out) {
            out = Cow::Owned(s);
        }
        if let Some(s) = redact_ppk(&out) {
            out = Cow::Owned(s);
        }
        if let Some(s) = redact_folded_jwt(&out) {
            out = Cow::Owned(s);
        }
        // The set is asked about the text as it stands before the first rule: while no
        // rule has changed it, a rule the set found no match for has none, and is
        // passed over; after a change each remaining rule searches the new text.
        let hits = BUILTIN_SET.matches(&out);
        let mut changed = false;
        for (i, r) in BUILTIN.iter().enumerate() {
            if !changed && !hits.matched(i) {
                continue;
            }
            if let Cow::Owned(s) = replace(r.re(), r.check, &out, r.kind, &self.user) {
                out = Cow::Owned(s);
                changed = true;
            }
        }
        if let Some(s) = commands::redact(&out) {
            out = Cow::Owned(s);
        }
        // Whatever an Authorization header carries is a credential, however short
        // (`Bearer hunter22`) and whatever its scheme: after the rules above, which
        // name the credentials they know better.
        if let Some(s) = auth::redact(&out) {
            out = Cow::Owned(s);
        }
        if let Some(s) = pairs::redact(&out) {
            out = Cow::Owned(s);
        }
        for r in &self.user {
            if let Cow::Owned(s) = replace(&r.re, None, &out, &r.name, &self.user) {
                out = Cow::Owned(s);
            }
        }
        out
    }

    /// A signature's template, redacted: its wildcards hide the parts of a secret
    /// that held digits, so the rest no longer has the shape that finds it.
    ///
    /// `sample` is a message of the template's group ("" when none is at hand).
    /// Every literal part of a template is in each of its messages, so a part the
    /// sample holds and its redacted form does not was a piece of a secret there
    /// (the letters-only middle of a Discord token, a JWT's payload folded onto
    /// its own line): it becomes a wildcard, whatever shape the secret had.
    ///
    /// Without a sample, the shapes alone: a literal part between two wildcards
    /// of one token (`<*>.fbqRRm.<*>`, the middle of a dotted token) is part of the
    /// same value and becomes one, and so does a random-looking segment glued to a
    /// wildcard.
    pub fn clean_template(&self, template: &str, sample: &str) -> String {
        let shaped = self.clean_template_shape(template);
        if sample.is_empty() {
            return shaped;
        }
        let Cow::Owned(redacted) = self.redact(sample) else {
            return shaped;
        };
        let mut out = String::with_capacity(shaped.len());
        for (n, tok) in shaped.split(' ').enumerate() {
            if n > 0 {
                out.push(' ');
            }
            let mut last_wild = false;
            for (k, piece) in tok.split(WILDCARD).enumerate() {
                if k > 0 && !last_wild {
                    out.push_str(WILDCARD);
                    last_wild = true;
                }
                if piece.is_empty() {
                    continue;
                }
                if sample.contains(piece) && !redacted.contains(piece) {
                    if !last_wild {
                        out.push_str(WILDCARD);
                        last_wild = true;
                    }
                } else {
                    out.push_str(piece);
                    last_wild = false;
                }
            }
        }
        out
    }

    fn clean_template_shape(&self, template: &str) -> String {
        // Random-looking segments glued to a wildcard first: the merge below then
        // sees `<*>.middle.<*>` also where the first part had no digits to mask.
        let clean = glued_random(&self.redact(template));
        // Only the dotted-token shape (`.middle.`, a run of base64 the masker left):
        // ordinary text between two wildcards (`/orders/`, `:` of `host:port`) says
        // what the line is about.
        let dotted = |s: &str| {
            let run = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || "_-+/=~%".contains(c)))
                .unwrap_or(s.len());
            (run > 0 && s[run..].starts_with('.')).then_some(run + 1)
        };
        let mut out = String::with_capacity(clean.len());
        let mut rest: &str = &clean;
        while let Some(a) = rest.find(WILDCARD) {
            out.push_str(&rest[..a + WILDCARD.len()]);
            rest = &rest[a + WILDCARD.len()..];
            while let Some(run) = rest.strip_prefix('.').and_then(dotted) {
                if !rest[1 + run..].starts_with(WILDCARD) {
                    break;
                }
                rest = &rest[1 + run + WILDCARD.len()..];
            }
        }
        out.push_str(rest);
        out
    }

    /// [`Redactor::redact`] into a new `String`.
    pub fn clean(&self, text: &str) -> String {
        self.redact(text).into_owned()
    }

    /// The text redacted, then cut to at most `max` characters (a cut never
    /// lands inside a placeholder). For titles and short excerpts.
    pub fn clean_chars(&self, text: &str, max: usize) -> String {
        let clean = self.redact(text);
        if clean.chars().count() <= max {
            return clean.into_owned();
        }
        let mut end = clean
            .char_indices()
            .nth(max)
            .map(|(i, _)| i)
            .unwrap_or(clean.len());
        if let Some(open) = clean[..end].rfind('[') {
            if clean[open..].starts_with(PLACEHOLDER) && !clean[open..end].contains(']') {
                end = open;
            }
        }
        clean[..end].to_string()
    }
}

/// A template's tokens with every generated-looking piece glued to a wildcard made a
/// wildcard too (`<*>.Y-uRn-jdvqZBWNFAnxgCVessPRSguf`: the masker took the part of a
/// token with a digit and left the rest of it, the tail of a key without one).
fn glued_random(template: &str) -> String {
    if !template.contains(WILDCARD) {
        return template.to_string();
    }
    let piece = |p: &str| -> String {
        // Segments between the separators a key's parts are joined with.
        let mut out = String::with_capacity(p.len());
        let mut from = 0;
        for (i, c) in p.char_indices().filter(|&(_, c)| ".:/@".contains(c)) {
            let seg = &p[from..i];
            out.push_str(if entropy::any_random(seg) {
                WILDCARD
            } else {
                seg
            });
            out.push(c);
            from = i + c.len_utf8();
        }
        let seg = &p[from..];
        out.push_str(if entropy::any_random(seg) {
            WILDCARD
        } else {
            seg
        });
        out
    };
    template
        .split(' ')
        .map(|tok| {
            if !tok.contains(WILDCARD) || tok == WILDCARD {
                return tok.to_string();
            }
            tok.split(WILDCARD)
                .map(piece)
                .collect::<Vec<_>>()
                .join(WILDCARD)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Is `name` a name whose value is a secret (`password`, `api_key`, `пароль`)?
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty() && pairs::classify(name).is_some()
}

/// `text` in at most `max` bytes (and an ellipsis), cut at [`cut_point`]: off the
/// middle of a token, since half a secret would no longer be found.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!("{}…", &text[..cut_point(text, max)])
}

/// Where to cut `text` to keep at most `max` bytes without splitting a token:
/// a secret cut in half loses the shape that would find it, so the partial
/// token is left out (back to the last space or punctuation). A text that is
/// one giant token is cut at `max` all the same.
pub fn cut_point(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let token = |c: char| c.is_alphanumeric() || "+/=_-.~%".contains(c);
    let after = text[end..].chars().next();
    if !after.is_some_and(token) {
        return end;
    }
    match text[..end].rfind(|c: char| !token(c)) {
        Some(i) if i > 0 => i + text[i..].chars().next().map_or(1, char::len_utf8),
        _ => end,
    }
}

fn placeholder(kind: &str) -> String {
    format!("{PLACEHOLDER}{kind}]")
}

/// The text with each of `spans` (byte ranges in order) replaced by the placeholder of
/// `kind`; a span that starts inside the one before it is part of it. None when there
/// is none.
fn splice(text: &str, spans: &[(usize, usize)], kind: &str) -> Option<String> {
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for &(start, end) in spans {
        if start < copied {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(&placeholder(kind));
        copied = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// A type for [`Rule::check`].
type Check = fn(&str, &str, usize) -> bool;

/// Whether `kind` names a kind of placeholder logwarden writes: a built-in one or
/// one of the config's rules.
fn known_kind(kind: &str, user: &[UserRule]) -> bool {
    kind == "private-key"
        || kind == "authorization"
        || BUILTIN.iter().any(|r| r.kind == kind)
        || pairs::is_kind(kind)
        || user.iter().any(|r| r.name == kind)
}

/// The placeholders already in `text` (from an earlier pass or rule), as byte
/// ranges in order. Only known kinds count: `[REDACTED:AKIA…]` written by the
/// application is no placeholder and does not shield the key inside it.
fn placeholders(text: &str, user: &[UserRule]) -> Vec<(usize, usize)> {
    text.match_indices(PLACEHOLDER)
        .filter_map(|(at, _)| {
            let kind_at = at + PLACEHOLDER.len();
            let close = text[kind_at..].find(']')?;
            known_kind(&text[kind_at..kind_at + close], user).then_some((at, kind_at + close + 1))
        })
        .collect()
}

fn replace<'a>(
    re: &Regex,
    check: Option<Check>,
    text: &'a str,
    kind: &str,
    user: &[UserRule],
) -> Cow<'a, str> {
    // Most texts hold no secret: a match-only search (no captures) settles that
    // before the placeholders are looked for.
    if !re.is_match(text) {
        return Cow::Borrowed(text);
    }
    // A rule must not cut into a placeholder (`[REDACTED:aws-key]:pw@` read as a
    // URL's `user:password`): its text would be redacted again on every pass.
    let placed = placeholders(text, user);
    let inside_placeholder = |at: usize| {
        let i = placed.partition_point(|&(start, _)| start <= at);
        i > 0 && placed[i - 1].1 > at
    };
    let mut changed = false;
    CHECKED_LINE.with(|cell| cell.borrow_mut().take());
    let out = re.replace_all(text, |c: &Captures| {
        let whole = c.get(0).expect("group 0");
        let target = c.name("v").unwrap_or(whole);
        if target.as_str().starts_with(PLACEHOLDER) || inside_placeholder(target.start()) {
            return whole.as_str().to_string();
        }
        if let Some(check) = check {
            if !check(text, target.as_str(), target.start()) {
                return whole.as_str().to_string();
            }
        }
        changed = true;
        let s = whole.as_str();
        let start = target.start() - whole.start();
        let end = target.end() - whole.start();
        format!("{}{}{}", &s[..start], placeholder(kind), &s[end..])
    });
    if changed {
        Cow::Owned(out.into_owned())
    } else {
        Cow::Borrowed(text)
    }
}

/// The text with its private key blocks (PEM, PGP, PuTTY's private lines) replaced by
/// their placeholder and nothing else changed. The template miner reads messages
/// through it: a key's body is random base64, often without the digit that would mark a
/// token as a value, so each key would otherwise open a group of its own, and a piece
/// of it could stay in a template (which reaches the investigator and the pages).
pub fn private_keys(text: &str) -> Cow<'_, str> {
    match redact_pem(text) {
        Cow::Borrowed(t) => redact_ppk(t).map_or(Cow::Borrowed(t), Cow::Owned),
        Cow::Owned(t) => Cow::Owned(redact_ppk(&t).unwrap_or(t)),
    }
}

/// The text with the user name and password of every URL in it (`https://user:pw@host`)
/// replaced by `***`, and nothing else changed: for what logwarden prints about its own
/// connections (an HTTP client's error names the URL it was asked for).
pub fn url_userinfo(text: &str) -> Cow<'_, str> {
    static USERINFO: LazyLock<Regex> = LazyLock::new(|| {
        // The authority ends at the first `/`, `?` or `#`; its userinfo at its last
        // `@` (a password may hold `@`).
        Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*(?:@[^/?#\s@]*)*@")
            .expect("the URL userinfo regex compiles")
    });
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    USERINFO.replace_all(text, "${1}***@")
}

/// Whether a URL has a user name or password in it (`https://user:pw@host/`).
pub fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// PEM and PGP private key blocks, multi-line, also with `\n` escapes (a repr in a
/// log line): through the matching END line whatever is between; a block cut
/// short (no END line) is redacted to the end of its base64 run.
fn redact_pem(text: &str) -> Cow<'_, str> {
    if !text.contains(PEM_BEGIN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(b) = rest.find(PEM_BEGIN) {
        let after_begin = &rest[b + PEM_BEGIN.len()..];
        let label_end = after_begin.find("-----");
        let label = label_end.map(|e| &after_begin[..e]).unwrap_or("");
        // A label is upper-case words (RFC 7468): one holding a `name: value` pair
        // would change length when the pair is redacted, and be read differently
        // on the next pass.
        let is_private = label_end.is_some()
            && label.contains("PRIVATE KEY")
            && label.len() < 40
            && label
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ');
        if !is_private {
            out.push_str(&rest[..b + PEM_BEGIN.len()]);
            rest = after_begin;
            continue;
        }
        out.push_str(&rest[..b]);
        out.push_str(&placeholder("private-key"));
        let body = &after_begin[label_end.expect("checked") + 5..];
        let matching_end = format!("{PEM_END}{label}-----");
        let end = match body.find(&matching_end) {
            Some(e) => e + matching_end.len(),
            None => match body.find(PEM_END) {
                Some(e) if body[..e].chars().all(pem_body_char) => {
                    let tail = &body[e + PEM_END.len()..];
                    let close = tail
                        .find("-----")
                        .map(|c| c + 5)
                        .filter(|c| *c < 60)
                        .unwrap_or(0);
                    e + PEM_END.len() + close
                }
                _ => {
                    let run = body
                        .char_indices()
                        .find(|(_, ch)| !pem_body_char(*ch))
                        .map(|(i, _)| i)
                        .unwrap_or(body.len());
                    // The line break (or space) after the run is the text's, not the
                    // key's: a page's closing fence may follow it.
                    body[..run].trim_end().len()
                }
            },
        };
        rest = &body[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// JWTs folded across lines at any point (a logger or a terminal that wraps long lines
/// at a fixed width, also `\n`-escaped in a repr): read on over each line break that a
/// token reaches, the pieces joined are checked for a JWT's shape, and the pieces are
/// replaced by one placeholder. Before the token has its two dots, a line break is
/// crossed whenever the next line starts with a token's character; in the signature,
/// only onto a line that is that token alone while the signature is shorter than any
/// (43 characters), or when the lines before were folded at one width (a last piece
/// that fills the width takes the next line's first word with it). A JWT on one line,
/// or folded after a dot, is the `jwt` rule's.
fn redact_folded_jwt(text: &str) -> Option<String> {
    static SHAPE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.")
            .expect("built-in redaction regex compiles")
    });
    // A JWT is a few KiB at most: a bound on the walk keeps a stranger's line of
    // `eyJ` pieces linear.
    const MAX_LINES: usize = 64;
    if !text.contains("eyJ") || !(text.contains('\n') || text.contains("\\n")) {
        return None;
    }
    let b = text.as_bytes();
    let token = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
    let line_break = |at: usize| {
        ["\r\n", "\n", "\\r\\n", "\\n"]
            .iter()
            .find(|sep| text[at..].starts_with(**sep))
            .map(|sep| {
                let j = at + sep.len();
                j + b[j..]
                    .iter()
                    .take_while(|&&c| matches!(c, b' ' | b'\t'))
                    .count()
            })
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("eyJ") {
        let start = from + found;
        from = start + 3;
        // At a token's start: after a line break escaped in a repr, too.
        if start > 0 && token(b[start - 1]) && !text[..start].ends_with("\\n") {
            continue;
        }
        let mut flat = String::new();
        let (mut i, mut folds, mut width) = (start, 0, 0);
        let mut end;
        loop {
            let run = b[i..].iter().take_while(|&&c| token(c)).count();
            flat.push_str(&text[i..i + run]);
            end = i + run;
            if folds == MAX_LINES {
                break;
            }
            let Some(next) = line_break(end) else { break };
            let next_run = b[next..].iter().take_while(|&&c| token(c)).count();
            // The next line is the token alone (up to a repr's closing quote).
            let alone = next + next_run == b.len()
                || line_break(next + next_run).is_some()
                || matches!(b[next + next_run], b'\'' | b'"');
            // Two folded lines of one width: folded at a fixed width, and so is this one.
            let fixed = folds >= 2 && run == width;
            // A signature shorter than the shortest one (HS256's 43 characters) goes on.
            let signature = flat.splitn(3, '.').nth(2).map(str::len);
            let short = signature.is_some_and(|n| n < 43) && alone;
            // Folded right after the payload's dot: the next line's token is the
            // signature, whatever follows it on its line.
            let after_dot = signature == Some(0);
            if next_run == 0 || (signature.is_some() && !short && !fixed && !after_dot) {
                break;
            }
            if folds > 0 {
                width = run;
            }
            i = next;
            folds += 1;
        }
        if folds > 0 && SHAPE.is_match(&flat) {
            spans.push((start, end));
            from = end;
        }
    }
    splice(text, &spans, "jwt")
}

/// PuTTY key files (`.ppk`): the base64 lines after `Private-Lines: N` are the
/// private key, the `Private-MAC:` (or `Private-Hash:`) value checks it; on lines
/// of their own or `\n`-escaped (a repr). The public lines stay.
fn redact_ppk(text: &str) -> Option<String> {
    static HEAD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"Private-Lines:[ \t]*[0-9]+|Private-(?:MAC|Hash):[ \t]*")
            .expect("built-in redaction regex compiles")
    });
    if !text.contains("Private-") {
        return None;
    }
    let base64 = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for m in HEAD.find_iter(text) {
        let lines = m.as_str().starts_with("Private-Lines");
        let b = text.as_bytes();
        let (mut i, mut end) = (m.end(), m.end());
        loop {
            // A line break before each line of the key (none before the MAC).
            let mut j = i;
            for sep in ["\r\n", "\n", "\\r\\n", "\\n"] {
                if text[j..].starts_with(sep) {
                    j += sep.len();
                    break;
                }
            }
            if lines && j == i {
                break;
            }
            let run = b[j..].iter().take_while(|&&c| base64(c)).count();
            // The whole line is base64, or it is not a line of the key (the
            // `Private-MAC:` header after the last one).
            let after = b.get(j + run).copied();
            if run == 0
                || !after.is_none_or(|c| {
                    matches!(c, b'\r' | b'\n' | b'\\' | b'"' | b'\'' | b' ' | b'\t')
                })
            {
                break;
            }
            end = j + run;
            i = end;
            if !lines {
                break;
            }
        }
        if end > m.end() {
            // The break after `Private-Lines: N` stays: it is the text's.
            let start = if lines {
                let mut s = m.end();
                for sep in ["\r\n", "\n", "\\r\\n", "\\n"] {
                    if text[s..].starts_with(sep) {
                        s += sep.len();
                        break;
                    }
                }
                s
            } else {
                m.end()
            };
            spans.push((start, end));
        }
    }
    splice(text, &spans, "private-key")
}

fn pem_body_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '+' | '/' | '=' | '\\' | ':' | '-' | ',' | '.')
        || c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        Redactor::default().clean(text)
    }

    #[test]
    fn the_rule_set_passes_over_only_rules_that_would_find_nothing() {
        // What redact did before the set: every built-in rule searched in turn.
        let every_rule = |text: &str| -> String {
            let mut out = text.to_string();
            for r in BUILTIN.iter() {
                if let Cow::Owned(s) = replace(r.re(), r.check, &out, r.kind, &[]) {
                    out = s;
                }
            }
            out
        };
        let texts = [
            "nothing secret · here: 2026-11-22T00:21:56Z occurrences: 5",
            "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-yz012345 used",
            "id AKIAIOSFODNN7EXAMPLE and aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "gh ghp_16C7e42F292c6912E7710c838347Ae178B4a at https://u:p4ss@db.example.com/x",
            "twilio AC0123456789abcdef0123456789abcdef auth 0123456789abcdef0123456789abcdef",
            "card 4111 1111 1111 1111 and 0.4111111111111111, jwt eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
            "Authorization: Bearer abcdefghijklmnop and Basic dXNlcjpwYXNzd29yZA==",
            "post https://hooks.slack.com/services/T000/B000/XXXXXXXX and /webhooks/stripe /hooks/a1b2c3d4e5f6",
            "redis://:[REDACTED:aws-key]:pw@host and %3A%2F%2Fuser%3Asecret%40host",
            "SK0123456789abcdef0123456789abcdef key-0123456789abcdef0123456789abcdef",
        ];
        for t in texts {
            let hits = BUILTIN_SET.matches(t);
            for (i, rule) in BUILTIN.iter().enumerate() {
                assert_eq!(hits.matched(i), rule.re().is_match(t), "rule {i} on {t:?}");
            }
            let rules = every_rule(t);
            let rules = commands::redact(&rules).unwrap_or(rules);
            let rules = auth::redact(&rules).unwrap_or(rules);
            assert_eq!(r(t), pairs::redact(&rules).unwrap_or(rules), "{t:?}");
        }
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
    fn userinfo_is_hidden_in_urls() {
        assert_eq!(
            url_userinfo(
                "error sending request for url (https://bob:s3cr@t@ntfy.example/ops): refused"
            ),
            "error sending request for url (https://***@ntfy.example/ops): refused"
        );
        assert_eq!(
            url_userinfo("http://tok@h:8080/x and ftp://a:b@c"),
            "http://***@h:8080/x and ftp://***@c"
        );
        for same in [
            "https://ntfy.sh/ops?x=a@b",
            "mail bob@example.com",
            "https://h/p#a@b",
        ] {
            assert_eq!(url_userinfo(same), same);
        }
        assert!(has_userinfo("https://user:pw@ntfy.example/"));
        assert!(has_userinfo("http://token@ntfy.example"));
        assert!(!has_userinfo("https://ntfy.example/topic?user=a@b"));
        assert!(!has_userinfo("https://ntfy.sh"));
    }

    #[test]
    fn tokens_urls_and_pairs() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(r(&format!("tok {jwt} end")), "tok [REDACTED:jwt] end");
        assert_eq!(
            r("Authorization: Bearer abcdef0123456789xyz"),
            "Authorization: Bearer [REDACTED:bearer-token]"
        );
        for (text, want) in [
            (
                "upstream rejected Authorization: Bearer hunter22 for call",
                "upstream rejected Authorization: Bearer [REDACTED:authorization] for call",
            ),
            (
                r#"headers={"Authorization": "Basic Zm9vOmJhcg=="}"#,
                r#"headers={"Authorization": "Basic [REDACTED:authorization]"}"#,
            ),
            (
                "{'authorization': 'pw1'}",
                "{'authorization': '[REDACTED:authorization]'}",
            ),
            (
                "Authorization: Bearer abcdef0123456789xyz",
                "Authorization: Bearer [REDACTED:bearer-token]",
            ),
            (
                "no authorization header sent",
                "no authorization header sent",
            ),
            (
                "authorization: denied for bob",
                "authorization: denied for bob",
            ),
            (
                "authorization=s3cr3t",
                "authorization=[REDACTED:authorization]",
            ),
        ] {
            assert_eq!(r(text), want, "{text}");
        }
        // The scheme and its token share a line: a line that ends in the word
        // does not lend it the next line's first long word.
        assert_eq!(
            r("auth scheme: Bearer\nreq-0123456789abcdef done\nBasic\nQWxhZGRpbjpvcGVuc2VzYW1l"),
            "auth scheme: Bearer\nreq-0123456789abcdef done\nBasic\nQWxhZGRpbjpvcGVuc2VzYW1l"
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
    fn byte_offsets_stay_on_char_boundaries() {
        // After every character the rules look at, multi-byte characters of each
        // width (a `%` before `€` once sliced the middle of the `€`).
        let marks = [
            "%", "%2", "\\", "\\\"", "'", "\"", "=", ": ", "{", "[", ",", " ", "\n",
        ];
        for mark in marks {
            for wide in ["é", "€", "𝟙", "€€€"] {
                for name in ["password=", "token: ", "api_key=\"", "session=", "Cookie: "] {
                    let text = format!("{name}ab{mark}{wide}cd{mark}{wide} user=x");
                    let once = r(&text);
                    assert_eq!(r(&once), once, "{text}");
                }
            }
        }
        assert_eq!(r("password=ab%€x"), "password=[REDACTED:password]");
    }

    #[test]
    fn a_pair_swallowed_by_the_value_before_still_has_its_value_redacted() {
        for (text, secret) in [
            ("password= \"api_key\": \"00aaaaa0aa0a\" ", "00aaaaa0aa0a"),
            (
                "credentials: api_key: \"sk_abcdefgh12345678\"",
                "sk_abcdefgh12345678",
            ),
            ("secret=pin: 8841-7723", "8841-7723"),
            ("{'token': 'password': 'Tr0ub4dor3'}", "Tr0ub4dor3"),
        ] {
            let out = r(text);
            assert!(!out.contains(secret), "{text} → {out}");
            assert_eq!(r(&out), out, "idempotent: {text}");
        }
    }

    #[test]
    fn placeholders_are_not_cut_by_later_rules_but_do_not_shield_keys() {
        let out = r("https://[REDACTED:aws-key]:pw@host");
        assert_eq!(
            out,
            "https://[REDACTED:aws-key]:[REDACTED:url-password]@host"
        );
        assert_eq!(r(&out), out);
        // Only kinds logwarden writes are placeholders.
        let out = r("see [REDACTED:AKIAABCDEFGHIJKLMNOP] here");
        assert!(!out.contains("AKIAABCDEFGHIJKLMNOP"), "{out}");
        let red = Redactor::new(vec![UserRule {
            name: "customer-id".into(),
            re: Regex::new(r"CUST-[0-9]+").unwrap(),
        }]);
        let out = red.clean("ftp://CUST-42:pw@host");
        assert_eq!(
            out,
            "ftp://[REDACTED:customer-id]:[REDACTED:url-password]@host"
        );
        assert_eq!(red.clean(&out), out);
    }

    #[test]
    fn a_pem_label_is_upper_case_words() {
        // The label's length no longer changes when a pair inside it is redacted.
        let text = " -----BEGIN Bearer RSA PRIVATE KEYu:p@haB3dE5gH7jK9mN1pQ2sT -----BEGIN ";
        let once = r(text);
        assert_eq!(r(&once), once);
        assert!(!once.contains("haB3dE5gH7jK9mN1pQ2sT"), "{once}");
    }

    #[test]
    fn private_key_blocks_whole_or_cut() {
        let block = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----\ny";
        assert_eq!(r(block), "x\n[REDACTED:private-key]\ny");
        let escaped = r"key='-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQ\n-----END PRIVATE KEY-----\n' loaded";
        assert_eq!(r(escaped), r"key='[REDACTED:private-key]\n' loaded");
        let cut = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAAB3NzaC1yc2E";
        assert_eq!(r(cut), "[REDACTED:private-key]");
        assert_eq!(
            r(&format!("{cut}\n```\nnext")),
            "[REDACTED:private-key]\n```\nnext"
        );
        assert_eq!(
            r("key -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n"),
            "key [REDACTED:private-key]\n"
        );
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
    /// Every case: the secret is gone, and (when given) the placeholder kind shows.
    fn gone(cases: &[(&str, &str, &str)]) {
        for (text, secret, kind) in cases {
            let got = r(text);
            assert!(!got.contains(secret), "{text}\n  → {got}\n  leaks {secret}");
            assert!(
                got.contains(&format!("[REDACTED:{kind}]")),
                "{text}\n  → {got}\n  no {kind}"
            );
        }
    }

    fn kept(cases: &[&str]) {
        for text in cases {
            assert_eq!(r(text), *text, "redacted what is not a secret");
        }
    }

    #[test]
    fn redis_auth_commands_lose_their_password() {
        gone(&[
            (
                "Redis command failed: AUTH RedisAuthPw99",
                "RedisAuthPw99",
                "password",
            ),
            (
                "Redis command failed: AUTH default RedisAuthPw98",
                "RedisAuthPw98",
                "password",
            ),
            (
                "Error while executing ('AUTH', 'RedisAuthPw97')",
                "RedisAuthPw97",
                "password",
            ),
            (
                "Command [b'AUTH', b'app', b'RedisAuthPw96'] failed",
                "RedisAuthPw96",
                "password",
            ),
            (
                r#"1339518083.107412 [0 127.0.0.1:60866] "AUTH" "RedisAuthPw95""#,
                "RedisAuthPw95",
                "password",
            ),
            ("slowlog: AUTH Pw94xyz then GET k", "Pw94xyz", "password"),
            ("AUTH 3xQ9zLm2 rejected: WRONGPASS", "3xQ9zLm2", "password"),
            (
                "smtp> AUTH PLAIN AGJvYgBodW50ZXIy",
                "AGJvYgBodW50ZXIy",
                "password",
            ),
        ]);
        // The user and the command stay: they say what failed.
        assert_eq!(
            r("Redis command failed: AUTH default RedisAuthPw98"),
            "Redis command failed: AUTH default [REDACTED:password]"
        );
        assert_eq!(
            r("Error while executing ('AUTH', 'default', 'pw')"),
            "Error while executing ('AUTH', 'default', '[REDACTED:password]')"
        );
        kept(&[
            "AUTH failed for user bob",
            "AUTH FAILED: invalid username-password pair",
            "AUTH <password> called without any password configured for the default user",
            "auth service down, retrying",
            "Auth failed for user bob",
            "OAuth callback failed",
            "OAUTH token expired",
            "X-AUTH-Token missing",
            "HTTP_AUTH header missing",
            "smtp> AUTH PLAIN",
            "AUTH: ok",
            "NOAUTH Authentication required.",
        ]);
    }

    #[test]
    fn crypt_password_hashes_lose_their_salt_and_hash() {
        gone(&[
            ("htpasswd line: admin:$apr1$abcd1234$HashedPwValueXYZ012345", "HashedPwValueXYZ012345", "password-hash"),
            ("shadow: root:$6$saltsalt$ShadowHashABCDEFGHIJKLMNOP0123456789:19000:0:99999:7:::", "ShadowHashABCDEFGHIJKLMNOP", "password-hash"),
            ("user bob:$5$rounds=5000$s4ltS4lt$Sha256Hash0123456789abcdefghij", "Sha256Hash0123456789", "password-hash"),
            ("md5 $1$Xy7.Ab/c$PDE3n8kDd8cvx9Q3.0KqM1", "PDE3n8kDd8cvx9Q3", "password-hash"),
            ("hash $2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "R9h/cIPz0gi.URNNX3kh2O", "password-hash"),
            ("root:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7:19000::::::", "X3DX6M94c7o.9agCG9G317", "password-hash"),
            ("stored $argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", "RdescudvJCsgt3ub", "password-hash"),
            ("django pbkdf2_sha256$600000$bG9uZ3NhbHQ$Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==", "Zm9vYmFyYmF6cXV4", "password-hash"),
        ]);
        // The scheme and its parameters stay, and the shadow line's other fields.
        assert_eq!(
            r("root:$6$saltsalt$ShadowHashABCDEFGHIJKLMNOP0123456789:19000:0:99999:7:::"),
            "root:$6$[REDACTED:password-hash]:19000:0:99999:7:::"
        );
        assert_eq!(
            r("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"),
            "$argon2id$v=19$m=65536,t=3,p=4$[REDACTED:password-hash]"
        );
        kept(&[
            "root:x:0:0:root:/root:/bin/bash",
            "bob:!:19000:0:99999:7:::",
            "paid $5 and $6 for $1 items",
            "echo $1$2 $HOME",
            "cost $6$ per unit",
        ]);
    }

    #[test]
    fn a_tab_after_a_secret_name_separates_its_value() {
        gone(&[
            ("Auth failed password\tTabPw78", "TabPw78", "password"),
            (
                "user\tbob\tpassword\tTabPw79\tstatus\tfailed",
                "TabPw79",
                "password",
            ),
            ("api_key\t \tTabKey80", "TabKey80", "api-key"),
        ]);
        assert_eq!(
            r("user\tbob\tpassword\tTabPw79\tstatus\tfailed"),
            "user\tbob\tpassword\t[REDACTED:password]\tstatus\tfailed"
        );
        kept(&[
            "name\tvalue\tcount\t3",
            "key\tusers:42:profile",
            "password reset requested",
        ]);
    }

    #[test]
    fn secret_names_in_other_languages_and_scripts() {
        gone(&[
            ("Auth failed: pässwort=GeheimPw77", "GeheimPw77", "password"),
            ("Auth failed: PÄSSWORT=GeheimPw76", "GeheimPw76", "password"),
            ("login passwort=Geheim75 user=x", "Geheim75", "password"),
            ("kennwort: Geheim74", "Geheim74", "password"),
            ("mot_de_passe=Secret73", "Secret73", "password"),
            ("motdepasse=Secret72", "Secret72", "password"),
            ("{\"contraseña\": \"Secreta71\"}", "Secreta71", "password"),
            ("contrasena=Secreta70", "Secreta70", "password"),
            ("senha=Segredo69", "Segredo69", "password"),
            ("parola='Segreto68'", "Segreto68", "password"),
            ("wachtwoord=Geheim67", "Geheim67", "password"),
            ("hasło=Tajne66", "Tajne66", "password"),
            ("haslo=Tajne65", "Tajne65", "password"),
            ("пароль=Секрет64", "Секрет64", "password"),
            ("Пароль: Sekret63", "Sekret63", "password"),
            ("db_пароль=Sekret62", "Sekret62", "password"),
            ("→password=Arrow61", "Arrow61", "password"),
        ]);
        // The name is read whole: a letter before it is part of it.
        assert_eq!(
            r("pässwort=GeheimPw77 user=x"),
            "pässwort=[REDACTED:password] user=x"
        );
        kept(&[
            "Grüße=hallo",
            "größe=42 straße=Hauptstraße",
            "имя=Иван",
            "usuario=maría",
            "mot=bonjour",
            "clé·AKIA· parole=ok",
        ]);
    }

    #[test]
    fn webhook_urls() {
        gone(&[
            ("post to https://hooks.slack.com/services/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 failed", "kQ8vN2xLp4Rz7Wm3Ty6Hs9Bd", "webhook"),
            (r#"{"url": "https://discord.com/api/webhooks/112233445566778899/aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE1fG3hI5jK7lM9nO1pQ3rS5tU7"}"#, "aB3dE5fG7hI9jK1lM3nO5pQ7", "webhook"),
            ("https://discordapp.com/api/webhooks/998877665544/Zz9Yy8Xx7Ww6Vv5Uu4 timeout", "Zz9Yy8Xx7Ww6Vv5Uu4", "webhook"),
            ("POST /webhook/f3Kq9XzL2mWp7RtY returned 500", "f3Kq9XzL2mWp7RtY", "webhook"),
            ("callback https://api.example.com/hooks/incoming/8d7f6e5a4b3c2d1e0f9a8b7c6d5e4f3a", "8d7f6e5a4b3c2d1e0f9a8b7c6d5e4f3a", "webhook"),
            ("teams https://acme.webhook.office.com/webhookb2/0a1b2c3d-aaaa@bbbb/IncomingWebhook/77ee/ffff", "IncomingWebhook/77ee", "webhook"),
        ]);
        kept(&[
            "POST /api/webhooks/stripe returned 500",
            "see /hooks/pre-commit",
        ]);
    }

    #[test]
    fn twilio_sendgrid_npm() {
        gone(&[
            ("twilio auth_token=9f8e7d6c5b4a39281716a5b4c3d2e1f0", "9f8e7d6c5b4a39281716a5b4c3d2e1f0", "twilio-token"),
            ("TWILIO_AUTH_TOKEN: '9f8e7d6c5b4a39281716a5b4c3d2e1f0'", "9f8e7d6c5b4a39281716a5b4c3d2e1f0", "twilio-token"),
            ("Client('AC0123456789abcdef0123456789abcdef', '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d')", "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", "twilio-token"),
            ("Twilio rejected credentials 0f1e2d3c4b5a69788796a5b4c3d2e1f0 for sub-account", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "twilio-token"),
            ("using SK0123456789abcdef0123456789abcdef", "SK0123456789abcdef0123456789abcdef", "twilio-key"),
            ("sendgrid 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 failed", "SG.aB3dE5fG7hI9jK1lM3nO5p", "sendgrid-key"),
            ("registry auth npm_Ab3De5Fg7Hi9Jk1Lm3No5Pq7Rs9Tu1Vw3Xy5Z rejected", "npm_Ab3De5Fg7Hi9Jk1Lm3No5Pq7Rs9Tu1Vw3Xy5Z", "npm-token"),
        ]);
        // The account SID is an id: it stays.
        assert!(r("account AC0123456789abcdef0123456789abcdef suspended")
            .contains("AC0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn twilio_tokens_need_their_context_within_80_characters_on_their_line() {
        let token = "9f8e7d6c5b4a39281716a5b4c3d2e1f0";
        // A gap of 79 non-word characters and a space: 80 characters, the most allowed.
        let near = format!("twilio{} {token}", "·".repeat(79));
        assert!(!r(&near).contains(token), "{near}");
        let far = format!("twilio{} {token}", "·".repeat(80));
        assert!(r(&far).contains(token), "{far}");
        // No word boundary between a letter and the token: not a token of its own.
        assert!(r(&format!("twilio x{token}")).contains(token));
        assert!(r(&format!("twilio\n{token}")).contains(token));
        assert!(r(&format!("plain {token} here")).contains(token));
        // Every token after the context is hidden, not only the first one.
        let other = "0123456789abcdef0123456789abcdef";
        let two = r(&format!("auth {token} {other}"));
        assert!(!two.contains(token) && !two.contains(other), "{two}");
        assert_eq!(two.matches("[REDACTED:twilio-token]").count(), 2, "{two}");
    }

    #[test]
    fn non_ascii_text_keeps_the_fast_search() {
        // A Unicode `\b` makes the lazy DFA give up at the first non-ASCII byte (a
        // notification's `·`), and every rule then crawled through the text with the
        // NFA: the built-in rules use ASCII boundaries only.
        for rule in BUILTIN.iter() {
            let pattern = rule.pattern.replace("(?-u:\\b)", "");
            assert!(!pattern.contains("\\b"), "{}: {pattern}", rule.kind);
        }
        assert!(!TWILIO_CONTEXT
            .as_str()
            .replace("(?-u:\\b)", "")
            .contains("\\b"));
        // ...and still find secrets next to non-ASCII text.
        gone(&[
            (
                "clé·AKIAABCDEFGHIJKLMNOP·fin",
                "AKIAABCDEFGHIJKLMNOP",
                "aws-key",
            ),
            (
                "→ hf_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3 ←",
                "hf_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3",
                "api-key",
            ),
            (
                "Twilio · 9f8e7d6c5b4a39281716a5b4c3d2e1f0 ·",
                "9f8e7d6c5b4a39281716a5b4c3d2e1f0",
                "twilio-token",
            ),
        ]);
    }

    #[test]
    fn dsn_passwords_with_slashes_at_signs_and_no_user() {
        assert_eq!(
            r("connect postgres://user:pa/ss@w@rd@db.internal:5432/app failed"),
            "connect postgres://user:[REDACTED:url-password]@db.internal:5432/app failed"
        );
        assert_eq!(
            r("redis://:Rf9pW2kq@cache:6379/0 down"),
            "redis://:[REDACTED:url-password]@cache:6379/0 down"
        );
        gone(&[
            (
                r#"{"dsn": "mysql://root:x/y@z@10.0.0.4/db"}"#,
                "x/y@z",
                "url-password",
            ),
            (
                r#"cfg={\"url\": \"amqp://guest:g!@st#pw@rabbit:5672/\"}"#,
                "g!@st#pw",
                "url-password",
            ),
            (
                "dsn=postgresql%3A%2F%2Fapp%3Ap%40ss%2Fw0rd%40db%2Fapp",
                "p%40ss%2Fw0rd",
                "url-password",
            ),
        ]);
    }

    #[test]
    fn cookies_and_sessions() {
        gone(&[
            ("Cookie: sessionid=q8w7e6r5t4y3; remember_me=zx81spectrum48k; theme=dark", "zx81spectrum48k", "cookie"),
            ("Set-Cookie: session=.eJwlzjEOwzAIAMC_MHewDaHNaxDYkHZJLCWVqv69kbrfcB-Q; HttpOnly; Path=/", ".eJwlzjEOwzAIAMC_MHewDaHNaxDYkHZJLCWVqv69kbrfcB", "cookie"),
            ("django sessionid=8h2k4m6n8p0r2t4v6x8z0b2d4f6h8j0l expired", "8h2k4m6n8p0r2t4v6x8z0b2d4f6h8j0l", "session"),
            (r#"{'Cookie': 'csrftoken=abc; sessionid=Qw3Er5Ty7Ui9Op1'}"#, "Qw3Er5Ty7Ui9Op1", "cookie"),
            ("flask session=eyJ1c2VyX2lkIjo0Mn0.ZxYz1A.Kq8vN2xLp4Rz7Wm3Ty6Hs9Bd4Fg dropped", "ZxYz1A.Kq8vN2xLp4Rz7Wm3Ty6Hs9Bd4Fg", "session"),
        ]);
        kept(&[
            "session: <sqlalchemy.orm.session.Session object at 0x7f00aa>",
            "session=closed",
        ]);
    }

    #[test]
    fn pgp_and_gcp_service_account_keys() {
        let pgp = "key: -----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\nComment: https://gnupg.org\n\nlQOYBF9xK2cBCADq7v\n=Xq4B\n-----END PGP PRIVATE KEY BLOCK-----\nnext";
        assert_eq!(r(pgp), "key: [REDACTED:private-key]\nnext");
        let escaped = r"armored='-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: a.b\n\nlQOYBF9xK2cB\n-----END PGP PRIVATE KEY BLOCK-----'";
        assert_eq!(r(escaped), "armored='[REDACTED:private-key]'");
        gone(&[(
            r#"{"type": "service_account", "project_id": "acme-prod", "private_key_id": "4f2a9c1e7b3d8a6f5e0c2b9d7a1f3e8c6b4d2a0f", "client_id": "104857300012345678901"}"#,
            "4f2a9c1e7b3d8a6f5e0c2b9d7a1f3e8c6b4d2a0f",
            "private-key",
        )]);
        assert!(
            r(r#"{"project_id": "acme-prod", "client_id": "104857300012345678901"}"#)
                .contains("104857300012345678901")
        );
    }

    #[test]
    fn card_numbers_checked_with_luhn() {
        gone(&[
            (
                "charge 4111111111111111 declined",
                "4111111111111111",
                "card-number",
            ),
            (
                "card 4242 4242 4242 4242 exp 12/29",
                "4242 4242 4242 4242",
                "card-number",
            ),
            (
                "cards 4539148803436467 5200828282828210",
                "4539148803436467",
                "card-number",
            ),
            (
                "cards 4539148803436467 5200828282828210",
                "5200828282828210",
                "card-number",
            ),
            (
                "amex 3782-822463-10005 refused",
                "3782-822463-10005",
                "card-number",
            ),
            (
                r#"{"pan": "5555555555554444"}"#,
                "5555555555554444",
                "card-number",
            ),
        ]);
        kept(&[
            "order 4111111111111112 shipped",
            "order 4242-4242-4242-4241 refunded",
            "ts 1796033091234 elapsed 0.4111111111111111",
            "took 2026 11 22 10 04 51",
        ]);
    }

    #[test]
    fn presigned_url_signatures() {
        gone(&[
            ("GET https://b.s3.amazonaws.com/o.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261122T100000Z&X-Amz-Signature=9f3c2a1b8e7d6c5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f 403", "9f3c2a1b8e7d6c5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f", "signature"),
            ("https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sr=b&sig=Xk2%2Bq9LmN3pR8sT4wZ7vB1cD5fG6hJ0k%3D expired", "Xk2%2Bq9LmN3pR8sT4wZ7vB1cD5fG6hJ0k", "signature"),
            ("https://d1.cloudfront.net/v.mp4?Expires=1796033091&Signature=Kq8vN2xLp4Rz7Wm3Ty6Hs9Bd4Fg~Xc1Vb5Nm7Qw-&Key-Pair-Id=K2JCJMDEHXQW5F", "Kq8vN2xLp4Rz7Wm3Ty6Hs9Bd4Fg", "signature"),
            ("gcs ?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f9f3c2a1b8e7d6c5f4a3b2c1d0e9f8a7b6c", "5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f9f", "signature"),
        ]);
        // logwarden's own 16-hex signatures stay readable.
        kept(&[
            "signature: \"b3ef29b2fb4511f4\"",
            "- Signature: b3ef29b2fb4511f4",
            "invalid signature: expected v1",
        ]);
    }

    #[test]
    fn multi_word_and_quoted_passwords() {
        assert_eq!(
            r("password: correct horse battery staple"),
            "password: [REDACTED:password]"
        );
        assert_eq!(
            r("login failed password=correct horse battery staple user=bob"),
            "login failed password=[REDACTED:password] user=bob"
        );
        gone(&[
            (r#"{\"password\": \"two words\"}"#, "two words", "password"),
            ("kwargs {'passwd': 'it''s'}", "it''s", "password"),
            ("DB_PASS=pa,ss;wd", "pa,ss;wd", "password"),
            (
                "form body user=bob&password=p%40ss%2Fw0rd&next=/",
                "p%40ss%2Fw0rd",
                "password",
            ),
            (
                "query password%3Dhunter2%26user%3Dbob",
                "hunter2",
                "password",
            ),
            (
                "run psql --password Tr0ub4dor3 -h db",
                "Tr0ub4dor3",
                "password",
            ),
            (
                r#"headers {"X-Api-Key": "k9Lm3Np7Rt1Vx5Zb"}"#,
                "k9Lm3Np7Rt1Vx5Zb",
                "api-key",
            ),
            ("pw = b'hunter2'", "hunter2", "password"),
            (
                "\"credentials\": {\"user\": \"svc\", \"pin\": \"8841\"}",
                "8841",
                "credentials",
            ),
            // JSON whose quotes are escaped another way: percent-encoded in a form
            // body, `\u0022` (.NET's default encoder), HTML entities.
            (
                "payload=%7B%22username%22%3A%22bob%22%2C%22password%22%3A%22Hunter2Secret%22%7D",
                "Hunter2Secret",
                "password",
            ),
            (
                r#"body {\u0022user\u0022: \u0022bob\u0022, \u0022password\u0022: \u0022Hunter3Secret\u0022}"#,
                "Hunter3Secret",
                "password",
            ),
            (
                "data-config=\"{&quot;user&quot;: &quot;bob&quot;, &quot;password&quot;: &quot;Hunter5Secret&quot;}\"",
                "Hunter5Secret",
                "password",
            ),
            // Generated passwords start with a bracket often enough, never closed.
            ("DB_PASSWORD={Gk7$pQ2!zR9w host=db1", "Gk7$pQ2!zR9w", "password"),
            ("login password=[x9#Lm2vQ! failed", "x9#Lm2vQ!", "password"),
            ("login password=(x9#Lm2vQ! failed", "x9#Lm2vQ!", "password"),
        ]);
        kept(&[
            "max_tokens=4096 token=None password=***",
            "user=bob attempts=3",
        ]);
    }

    #[test]
    fn entropy_next_to_secret_like_names_only() {
        use entropy::{looks_random, shannon};
        assert!(shannon("aaaa") < 0.1);
        assert!(shannon("q8Vn3kR7tY2wZ5xC9bM1") > 4.0);
        assert!(looks_random("q8Vn3kR7tY2wZ5xC9bM1nL4p"));
        assert!(looks_random("4f2a9c1e7b3d8a6f5e0c2b9d7a1f3e8c6b4d2a0f"));
        for word in [
            "ConnectionRefusedError",
            "correcthorsebatterystaple",
            "b3ef29b2fb4511f4",
            "2026-11-22T10:00:01",
            "aaaaaaaaaaaaaaaaaaaaaaaa1",
        ] {
            assert!(!looks_random(word), "{word}");
        }
        // An unknown shape next to a hinting name goes…
        gone(&[
            (
                "upload_key=Zq8Xw2Lm4Np6Rt8Vy0Bc3Df5",
                "Zq8Xw2Lm4Np6Rt8Vy0Bc3Df5",
                "key",
            ),
            (
                r#"{"auth": "Hm4Kq9Xz2Lw7Pv3Rt8Ny"}"#,
                "Hm4Kq9Xz2Lw7Pv3Rt8Ny",
                "auth",
            ),
            (
                "x-hmac: 7c1e9a3f5b2d8e4c6a0f1b3d5e7a9c2f4b6d8e0a",
                "7c1e9a3f5b2d8e4c6a0f1b3d5e7a9c2f4b6d8e0a",
                "signature",
            ),
        ]);
        // …ordinary values next to it, and random ones in ordinary context, stay.
        kept(&[
            "cache_key=user:42:profile auth=ok",
            "deploy 9fceb02d0ae598e95dc970b74767f19372d61af8 by ann",
            "request 550e8400-e29b-41d4-a716-446655440000 failed",
            "upload_key=uploads/2026/11/report-final.png",
        ]);
    }

    #[test]
    fn loguru_diagnose_dumps_under_secret_names() {
        let dump = "  File \"/srv/app/auth.py\", line 8, in login\n    return check(user, db_password) + cfg.api_key + n\n                 │     │              │   │         └ 3\n                 │     │              │   └ 'zzKq8Xw2Lm4Np6Rt8Vy0Bc3D'\n                 │     │              └ <app.Cfg object at 0x7faf7efebb10>\n                 │     └ 'hunter2 is long'\n                 └ 'bob'\n";
        let got = r(dump);
        assert!(!got.contains("hunter2 is long"), "{got}");
        assert!(!got.contains("zzKq8Xw2Lm4Np6Rt8Vy0Bc3D"), "{got}");
        assert!(got.contains("│     └ [REDACTED:password]\n"), "{got}");
        assert!(got.contains("└ 'bob'"), "{got}");
        assert!(
            got.contains("└ <app.Cfg object at 0x7faf7efebb10>"),
            "{got}"
        );
        assert!(got.contains("└ 3\n"), "{got}");
        // Under a hinting name only when random.
        let hint = "    sign(session, body)\n         │        └ 'plain text body'\n         └ 'Kq8vN2xLp4Rz7Wm3Ty6Hs9Bd'\n";
        let got = r(hint);
        assert!(!got.contains("Kq8vN2xLp4Rz7Wm3Ty6Hs9Bd"), "{got}");
        assert!(got.contains("'plain text body'"), "{got}");
    }

    #[test]
    fn redaction_is_idempotent_and_cuts_skip_tokens() {
        let text = "password=hunter2, key AIzaSyD8fK2mP9qL4vR7tX1wZ3cB6nJ0hG5sE2a ok";
        let once = r(text);
        assert_eq!(r(&once), once);
        // A cut inside the key leaves the whole key out.
        let at = text.find("AIza").unwrap() + 10;
        assert_eq!(&text[..cut_point(text, at)], "password=hunter2, key ");
        assert_eq!(cut_point(text, 5), 5, "one giant token is cut where asked");
        assert_eq!(cut_point("ab cd", 10), 5);
        // Redacted before the cut: the placeholder is never half there either.
        let red = Redactor::default();
        assert_eq!(
            red.clean_chars(text, 40),
            "password=[REDACTED:password], key "
        );
        assert_eq!(
            red.clean_chars(text, 33),
            "password=[REDACTED:password], key"
        );
    }

    #[test]
    fn authorization_headers_of_any_scheme_lose_their_credential() {
        for (text, secret) in [
            ("Okta failed Authorization: SSWS Oku3xbzrNX2KTsFf7zYSd8d9zmLgB5E3onsqSznual", "Oku3xbzrNX2KTsFf7zYSd8d9zmLgB5E3onsqSznual"),
            ("deepl: authorization: DeepL-Auth-Key W6Kx8H9R-7Oi5-cQ5o-J8Ze-BPnYPgtnhwli:fx (429)", "W6Kx8H9R-7Oi5-cQ5o-J8Ze-BPnYPgtnhwli"),
            ("AUTHORIZATION: Zoho-oauthtoken 1000.b677cbac7eb046dbceae003c7769d809.c6ed07217b81092bca7d9277a7bf06ce", "b677cbac7eb046dbceae"),
            ("discord authorization=Bot abcdEFGHijklMNOP", "abcdEFGHijklMNOP"),
            ("Proxy-Authorization: ApiKey pk9shortpw", "pk9shortpw"),
            ("{'Authorization': 'Splunk 8a1f3c2e-77aa-4b0c-9d1e-2f3a4b5c6d7e'}", "8a1f3c2e-77aa-4b0c-9d1e-2f3a4b5c6d7e"),
            (r#"{\"authorization\": \"GenieKey z9y8x7w6v5\"}"#, "z9y8x7w6v5"),
            ("headers [('Authorization', 'Custom kq3Lm9Zx')]", "kq3Lm9Zx"),
            (r#"Authorization: Hawk id="dh37fgj492je", ts="1353832234", nonce="j4h3g2", mac="6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE=""#, "6R4rV5iE+NPoym"),
            (r#"Authorization: Hawk id="dh37fgj492je", ts="1353832234", nonce="j4h3g2", mac="6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE=""#, "dh37fgj492je"),
            ("authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7", "5d672d79c15b1316"),
            ("Authorization: Digest username=\"Mufasa\", realm=\"x\", response=\"6629fae49393a05397450978507c4ef1\"", "6629fae49393a053"),
            ("Authorization: 7EhHK8ks0sct48pMPZzGd4kDqDdfu1GR", "7EhHK8ks0sct48pM"),
        ] {
            let got = r(text);
            assert!(!got.contains(secret), "{text}\n  → {got}");
            assert!(got.contains("[REDACTED:"), "{text}\n  → {got}");
        }
        // The scheme word stays as evidence; what follows the value stays too.
        assert_eq!(
            r("call failed Authorization: SSWS 00eM7D1NKk9spxsRfkuKhwVg (401) retrying"),
            "call failed Authorization: SSWS [REDACTED:authorization] (401) retrying"
        );
        assert_eq!(
            r("(Authorization: Bot Zr.BQ-U32O) next"),
            "(Authorization: Bot [REDACTED:authorization]) next"
        );
        assert_eq!(
            r("{'Authorization': 'Bot Zr.BQ-U32O', 'Accept': 'json'}"),
            "{'Authorization': 'Bot [REDACTED:authorization]', 'Accept': 'json'}"
        );
        kept(&[
            "authorization: denied for bob",
            "authorization failed: token expired",
            "Authorization: Bearer [REDACTED:bearer-token]",
            "missing Authorization header",
            "{'Authorization': 'Bearer '}",
            "WWW-Authenticate: Bearer realm=\"api\"",
            "checked authorization, then retried",
        ]);
        let once = r("Authorization: SSWS Oku3xbzrNX2KTsFf7zYSd8d9zm, Authorization: Hawk id=\"a b\", mac=\"c\"");
        assert_eq!(r(&once), once);
    }

    #[test]
    fn authorization_names_after_an_escape_or_a_prefix_are_headers() {
        gone(&[
            (
                r"send: b'GET / HTTP/1.1\r\nHost: x\r\nAuthorization: SSWS 00eM7D1NKk9spxsRfkuKhwVgAbCdEfGh12\r\n\r\n'",
                "00eM7D1NKk9spxsRfkuKhwVg",
                "authorization",
            ),
            (
                r"headers:\tauthorization: Custom kq3Lm9Zxshort",
                "kq3Lm9Zxshort",
                "authorization",
            ),
            (
                "HTTP_AUTHORIZATION=ApiKey pk9shortpw",
                "pk9shortpw",
                "authorization",
            ),
            (
                "request.META HTTP_AUTHORIZATION: 'Bot kq3Lm9Zxshort'",
                "kq3Lm9Zxshort",
                "authorization",
            ),
            (
                "x_authorization: Custom kq3Lm9Zxshort",
                "kq3Lm9Zxshort",
                "authorization",
            ),
            (
                "proxy_authorization=Basic Zm9vOmJhcg",
                "Zm9vOmJhcg",
                "authorization",
            ),
        ]);
        kept(&["preauthorization: pending", "reauthorization=required"]);
    }

    #[test]
    fn bracketed_authorization_values_lose_their_credential() {
        gone(&[
            (
                "map[Authorization:[SSWS 00eM7D1NKk9spxsRfkuKhwVg]]",
                "00eM7D1NKk9spxsRfkuKhwVg",
                "authorization",
            ),
            (
                "{Authorization=[Bearer hunter22]}",
                "hunter22",
                "authorization",
            ),
            (
                r#"Authorization: ["SSWS 00eM7D1NKk9spxsRfkuKhwVg"]"#,
                "00eM7D1NKk9spxsRfkuKhwVg",
                "authorization",
            ),
            (
                "headers={Authorization=[Custom kq3Lm9Zx tail]}",
                "kq3Lm9Zx",
                "authorization",
            ),
        ]);
        assert_eq!(
            r("map[Accept:[json] Authorization:[SSWS 00eM7D1NKk9spxsRfkuKhwVg] Host:[x]]"),
            "map[Accept:[json] Authorization:[SSWS [REDACTED:authorization]] Host:[x]]"
        );
    }

    /// Lines a stranger can write to make the redaction quadratic: each must still
    /// be redacted right (that they are read in one pass is measured, not tested).
    #[test]
    fn hostile_long_lines_are_still_redacted() {
        const MIB: usize = 1 << 20;
        let fill = |unit: &str| unit.repeat(MIB / unit.len());
        let quotes = format!(
            "{}authorization: a{}",
            "x ".repeat(MIB / 4),
            "\"".repeat(MIB / 2)
        );
        assert!(!r(&quotes).contains("authorization: a"));
        for unit in ["'authorization': 'x', ", "\"authorization\": \"x\", "] {
            let got = r(&fill(unit));
            assert!(!got.contains("'x'") && !got.contains("\"x\""), "{unit}");
        }
        let got = r(&format!("auth\n{}", fill("Authorization: Custom tok3n ")));
        assert!(!got.contains("tok3n"));
        assert_eq!(r(&fill(" -pa")), fill(" -pa"));
        assert!(!r(&format!("mysql{}", fill(" -pa"))).contains(" -pa "));
        let sshpass = format!("sshpass -p pw ssh{}", fill(" -p 2222"));
        assert!(r(&sshpass).ends_with(" -p 2222"));
        let got = r(&fill("\"token\": \"a\", "));
        assert_eq!(r(&got), got);
        let got = r(&fill("\"password\": \"hunter22\", "));
        assert!(!got.contains("hunter22"));
    }

    #[test]
    fn sshpass_takes_only_its_own_p() {
        gone(&[
            (
                "sshpass -p hunter22 ssh -p 2222 host",
                "hunter22",
                "password",
            ),
            ("SSHPASS -e -p 'hunter22' ssh host", "hunter22", "password"),
        ]);
        assert!(r("sshpass -p pw ssh -p 2222 host").contains("-p 2222"));
        assert!(r("sshpass.exe -p 2222 host").contains("-p 2222"));
    }

    #[test]
    fn shell_quoted_mysql_passwords_are_redacted() {
        gone(&[
            ("mysqldump -uroot -p'S3cr3t!xyz' db", "S3cr3t", "password"),
            ("mysql -p\"S3cr3t!xyz\"", "S3cr3t", "password"),
            (
                r"bash -c 'mysql -uroot -p\'S3cr3t!xyz\' db'",
                "S3cr3t",
                "password",
            ),
            (r#"sh -c "mysql -p\"S3cr3t xyz\" db""#, "S3cr3t", "password"),
            ("mariadb -p'pass word' db", "pass word", "password"),
            ("sshpass -p 'hunter22' ssh host", "hunter22", "password"),
            ("mysql -pS3cr3tXyz db", "S3cr3tXyz", "password"),
        ]);
        assert_eq!(
            r("mysqldump -uroot -p'S3cr3t!xyz' db"),
            "mysqldump -uroot -p'[REDACTED:password]' db"
        );
        kept(&[
            "ssh -p'2222' host",
            "grep -p'x' file",
            "argv ['mysql', '-p', 'db']",
            r#"argv ["mysql", "-p"]"#,
        ]);
    }

    #[test]
    fn an_authorization_pair_of_logfmt_keeps_the_pairs_after_it() {
        kept(&["req failed authorization=ok status=500 error=db_timeout"]);
        assert_eq!(
            r("method=GET authorization=Bearer%20abc status=401 user=bob duration=3ms"),
            "method=GET authorization=[REDACTED:authorization] status=401 user=bob duration=3ms"
        );
        assert_eq!(
            r("authorization=Bot kq3Lm9Zxshort status=401 user=bob"),
            "authorization=Bot [REDACTED:authorization] status=401 user=bob"
        );
        gone(&[
            (r#"authorization=Digest username="Mufasa", realm="x", response="6629fae49393a05397450978507c4ef1""#, "6629fae49393a053", "authorization"),
            ("authorization: OAuth oauth_consumer_key=xvz1evFS4wEEPTGEFPHBog, oauth_signature=tnnArxj06cWHq44gCs1OSKk status=401", "tnnArxj06cWHq44g", "authorization"),
        ]);
    }

    #[test]
    fn authorization_in_ruby_hashes_byte_strings_and_quoted_credentials() {
        gone(&[
            (
                r#"{"Authorization"=>"Bot kq3Lm9Zx"}"#,
                "kq3Lm9Zx",
                "authorization",
            ),
            (
                "{'authorization' => 'Custom kq3Lm9Zx'}",
                "kq3Lm9Zx",
                "authorization",
            ),
            (
                "{b'Authorization': b'Token hunter22'}",
                "hunter22",
                "authorization",
            ),
            (
                "[(b'authorization', b'Bearer hunter22')]",
                "hunter22",
                "authorization",
            ),
            (
                r#"Authorization: Bearer "hunter22""#,
                "hunter22",
                "authorization",
            ),
            (
                "Authorization: Custom 'kq3Lm9Zx' sent",
                "kq3Lm9Zx",
                "authorization",
            ),
        ]);
        assert_eq!(
            r(r#"Authorization: Bearer "hunter22" sent"#),
            r#"Authorization: Bearer "[REDACTED:authorization]" sent"#
        );
    }

    #[test]
    fn a_prose_apostrophe_before_a_pair_is_no_quote() {
        gone(&[
            ("It's broken: password=abc'def123", "def123", "password"),
            ("don't retry: token=Zx9'kq3Lm9Zxshort", "kq3Lm9Zx", "token"),
        ]);
        assert_eq!(
            r("{b'password': b'hunter22', 'user': 'bob'}"),
            "{b'password': b'[REDACTED:password]', 'user': 'bob'}"
        );
    }

    #[test]
    fn prefixed_provider_tokens() {
        gone(&[
            ("send failed https://api.telegram.org/bot8960394821:AA1UU1FCEkzH0LWSKt1dHbf6gIrozWalZO5/sendMessage", "AA1UU1FCEkzH0LWSKt1dHbf6gIrozWalZO5", "telegram-token"),
            ("TELEGRAM token 8960394821:AA1UU1FCEkzH0LWSKt1dHbf6gIrozWalZO5 invalid", "8960394821:AA1UU1FCEkzH0LWSKt1dHbf6gIrozWalZO5", "telegram-token"),
            ("discord login NzYzODY3NTM2NzE0ODc2NzA3.bVtSjR.yx2pGDUEG0379Ro_9PBpkcQ1EOoFAsux0DTCde failed", "yx2pGDUEG0379Ro_9PBpkcQ1EOoFAsux0DTCde", "discord-token"),
            ("mailgun key-o42ozg0kzg6y7cucikkh0tfwtm6ffae9 rejected", "o42ozg0kzg6y7cucikkh0tfwtm6ffae9", "api-key"),
            ("mailgun 3ab1d0c2e4f5a6b7c8d9e0f1a2b3c4d5-6f7a8b9c-0d1e2f3a denied", "3ab1d0c2e4f5a6b7c8d9e0f1a2b3c4d5", "api-key"),
            ("heroku HRKU-AA3jJYaFMN8uhLv2BcySOdmRnSp57n_IanluR0jBoJHvdl1wkFmkoFwX6NRY", "3jJYaFMN8uhLv2Bc", "api-key"),
            ("brevo 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 x", "d308fbc290308b58", "api-key"),
            ("databricks dapia19563c99c8a8bc0512a7087105f9b67 expired", "a19563c99c8a8bc0512a7087105f9b67", "api-key"),
            ("supabase sbp_0d8335bb77f9f68b22fd2f713e851e7ee9b1aae5 401", "0d8335bb77f9f68b22fd", "api-key"),
            ("doppler dp.st.prd.F1JLThk8xcq0zjCsCZrnyiGhaaLXaoq8gFGZvQ9RJKY bad", "F1JLThk8xcq0zjCsCZrn", "api-key"),
            ("doppler dp.pt.F1JLThk8xcq0zjCsCZrnyiGhaaLXaoq8gFGZvQ9RJKY bad", "F1JLThk8xcq0zjCsCZrn", "api-key"),
            ("pulumi pul-98e61ee3242f723b35fa38661d5371b0cd4b2143 denied", "98e61ee3242f723b35fa", "api-key"),
            ("jira ATATT3w4RHWWQFYnaHHy8I6jGn1_w1EFmGeC5x59k4J6_5TgEAo4CLh0tQNg4ygBKPVHSiDJ525xnlmb06LVTTt-zeBHQxobqmSh55zQp95uCtSbuNCxlJKOC_Bx9k4owoZbP=B3970DD0 401", "w4RHWWQFYnaHHy8I6jGn1", "api-key"),
            ("vault hvs.CAESIJz3pQ8kW2mR7vL4nX9tY6bH1cF5dG0aE3uI7oP2qW4 denied", "CAESIJz3pQ8kW2mR7vL4", "api-key"),
            ("sentry init https://c91893bfa914824925f3c0981f577737@o4504.ingest.sentry.io/4504 failed", "c91893bfa914824925f3c0981f577737", "url-credential"),
            ("oauth exchange failed for client_secret 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", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1w", "api-key"),
            ("token refresh: 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 invalid_client", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1w", "api-key"),
        ]);
        kept(&[
            "clone ssh://git@github.com/acme/app.git failed",
            "connect postgres://postgres@localhost/app refused",
            // A dotted name of a token's shape, whose first part is no id.
            "load Microsoft.Extensions.LoggingAbstractions.ILoggerFactoryProviderImpl",
            "MicrosoftExtensionsLoggingAbs.Abstra.ILoggerFactoryProviderImplementation",
            "key-value store down: key-cache-primary-eu-west-1 unreachable",
            "line 12345:AssertionError raised",
            "deploy 9fceb02d0ae598e95dc970b74767f19372d61af8 by ann",
            "request 550e8400-e29b-41d4-a716-446655440000 failed",
        ]);
    }

    #[test]
    fn passwords_on_command_lines() {
        gone(&[
            ("Backup failed: Command '['mysql', '-uroot', '-pAr2LcDy1IrMPzQrEh1YT', '-h', 'db']' returned non-zero exit status 1.", "Ar2LcDy1IrMPzQrEh1YT", "password"),
            ("exec: mysqldump -u app -pAr2Lc\"Dy1 --all-databases", "Ar2Lc", "password"),
            ("CalledProcessError: Command 'mysql --password=Ar2LcDy1IrMPzQrEh1YT -e select' returned 1", "Ar2LcDy1IrMPzQrEh1YT", "password"),
            ("run: curl -u deploy:tvGRpUy1lMoLdO https://x/api", "tvGRpUy1lMoLdO", "password"),
            ("run: curl --user deploy:tvGRpUy1lMoLdO https://x/api", "tvGRpUy1lMoLdO", "password"),
            ("run: curl --user=deploy:tvGRpUy1lMoLdO https://x/api", "tvGRpUy1lMoLdO", "password"),
            ("Command '['curl', '-sS', '-u', 'deploy:tvGRpUy1lMoLdO', 'https://x']' failed", "tvGRpUy1lMoLdO", "password"),
            ("curl -x proxy:3128 --proxy-user bob:tvGRpUy1lMoLdO https://x", "tvGRpUy1lMoLdO", "password"),
            ("exec: sshpass -p hunter2Xq ssh deploy@db uptime", "hunter2Xq", "password"),
            ("exec: sshpass -p 'hunter2Xq' ssh deploy@db", "hunter2Xq", "password"),
            ("Command '['sshpass', '-p', 'hunter2Xq', 'rsync', '-a', 'x']' returned 1", "hunter2Xq", "password"),
            ("SSHPASS -phunter2Xq scp a b:", "hunter2Xq", "password"),
            ("sshpass -v -p hunter2Xq ssh -p 2222 deploy@db", "hunter2Xq", "password"),
            ("Command '['redis-cli', '-h', 'cache', '-a', 'R3disS3cretPw', 'ping']' returned non-zero exit status 1.", "R3disS3cretPw", "password"),
            ("exec: redis-cli -h cache -a R4disS3cretPw ping", "R4disS3cretPw", "password"),
            ("exec: redis-cli -h cache --pass R4disS3cretPw ping", "R4disS3cretPw", "password"),
            ("Command '['docker', 'login', '-u', 'ci', '-p', 'D0ckerS3cretPw', 'registry.example.com']' returned 1", "D0ckerS3cretPw", "password"),
            ("az login -u ops@example.com -p Az0reS3cretPw failed", "Az0reS3cretPw", "password"),
            ("podman login --username ci --password P0dS3cretPw quay.io", "P0dS3cretPw", "password"),
        ]);
        kept(&[
            "ssh -p2222 deploy@host failed",
            "docker run -u 1000:1000 -p8080:80 app",
            "mysql -p -h db failed: access denied",
            "sshpass -e ssh -p 2222 deploy@db failed",
            "sshpass -f /etc/pw ssh -p 2222 deploy@db failed",
            "redis-cli -h cache -n 2 ping failed",
            "ls -a /var/lib/app",
        ]);
    }

    #[test]
    fn a_generated_piece_glued_to_a_wildcard_is_one_too() {
        let r = Redactor::default();
        assert_eq!(
            r.clean_template(
                "Discord gateway refused <*>.Y-uRn-jdvqZBWNFAnxgCVessPRSguf-aUHKoRn",
                ""
            ),
            "Discord gateway refused <*>.<*>"
        );
        for kept in [
            "GET /orders/<*>/items failed",
            "Timeout calling payments.internal:<*> after <*>",
            "File <*>/config.yaml not found",
            "user <*>@example.com locked out",
        ] {
            assert_eq!(r.clean_template(kept, ""), kept);
        }
    }

    #[test]
    fn the_miner_never_sees_a_putty_private_line() {
        let ppk = "Deploy key rejected:\nPuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\ner7Y4cRMXGkWAreD6Ti15lg/oxmtItSmfYAJKNeeCoVvEUSM\nPrivate-MAC: a937c4c5fff9d63def329e7f43df8133594dccc9";
        let got = private_keys(ppk);
        assert!(!got.contains("oxmtItSmfYAJKNeeCoVvEUSM"), "{got}");
        assert!(!got.contains("a937c4c5fff9"), "{got}");
        assert!(got.starts_with("Deploy key rejected:"), "{got}");
    }

    #[test]
    fn putty_private_keys() {
        let ppk = "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIFuMN7h\nqk0d\nPrivate-Lines: 1\naTVXeI7tcLyVdmOriQuzeTMX7/VDawf5AzkIXJEiyAo3RXWr\nPrivate-MAC: a937c4c5fff9d63def329e7f43df8133594dccc9\nnext line";
        let got = r(ppk);
        assert!(!got.contains("aTVXeI7tcLyVdmOriQ"), "{got}");
        assert!(!got.contains("a937c4c5fff9d63def"), "{got}");
        assert!(
            got.contains("Public-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIFuMN7h\n"),
            "{got}"
        );
        assert!(got.contains("Private-Lines: 1\n[REDACTED:private-key]\nPrivate-MAC: [REDACTED:private-key]\nnext line"), "{got}");
        let escaped = r"key='PuTTY-User-Key-File-2: ssh-rsa\nPrivate-Lines: 2\naTVXeI7tcLyVdmOriQuzeTMX7\n/VDawf5AzkIXJEiyAo3RXWr\nPrivate-MAC: a937c4c5fff9d63def'";
        let got = r(escaped);
        assert!(
            !got.contains("aTVXeI7tc") && !got.contains("VDawf5Azk"),
            "{got}"
        );
        assert!(!got.contains("a937c4c5fff9d63def"), "{got}");
        assert_eq!(r(&got), got);
    }

    #[test]
    fn secrets_wrapped_over_lines() {
        let pp = "config:\n{'db': {'host': 'db'},\n 'headers': {'Authorization': 'Bearer '\n                              '1kQu4uuJoT6T8yyFjIaB9IsPbWPt2MUAKCWrzJHUXSq98UU8BNlvr2ndvuIr'}}\n";
        let got = r(pp);
        assert!(!got.contains("1kQu4uuJoT6T8yyF"), "{got}");
        assert!(
            got.contains("'Authorization': 'Bearer [REDACTED:authorization]'}}"),
            "{got}"
        );
        let pw = "{'password': 'first half '\n             'second half', 'user': 'bob'}";
        let got = r(pw);
        assert!(!got.contains("second half"), "{got}");
        assert!(got.contains("'user': 'bob'"), "{got}");
        // A string after a comma is the next item, not the rest of the value.
        assert_eq!(
            r("{'token': 'abc123',\n 'user': 'bob'}"),
            "{'token': '[REDACTED:token]',\n 'user': 'bob'}"
        );
        let jwt = "JWT verify failed for eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\neyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.\nURKvWpDf3GGKUG5DPLqb_9F5s5MBiPCFJEWj5YTx3fa\nnext";
        let got = r(jwt);
        assert!(
            !got.contains("eyJzdWIiOiIx") && !got.contains("URKvWpDf3GGK"),
            "{got}"
        );
        assert!(got.ends_with("[REDACTED:jwt]\nnext"), "{got}");
    }

    #[test]
    fn a_template_loses_the_letters_between_wildcards_of_one_value() {
        let red = Redactor::default();
        assert_eq!(
            red.clean_template(
                "Discord refused <*>.fbqRRm.<*> and <*>.a.<*>.b.<*> at run(Thread.java:<*>)",
                ""
            ),
            "Discord refused <*> and <*> at run(Thread.java:<*>)"
        );
        assert_eq!(
            red.clean_template("Discord refused <*>.rP_AXu.<*> and <*>.LXCyb9.<*>", ""),
            "Discord refused <*> and <*>"
        );
        assert_eq!(
            red.clean_template("user <*> logged in", ""),
            "user <*> logged in"
        );
        assert_eq!(red.clean_template("<*> <*>", ""), "<*> <*>");
    }

    #[test]
    fn a_template_keeps_the_text_between_wildcards_of_different_values() {
        let red = Redactor::default();
        for t in [
            "GET /api/users/<*>/orders/<*> failed",
            "connect to <*>:<*> refused",
            "retry <*>-<*> of job",
            "<*>.<*> split",
        ] {
            assert_eq!(red.clean_template(t, ""), t);
        }
    }

    /// Checked against a record of its group, a template loses every literal part
    /// the record's redaction removed, whatever shape was left of the secret; the
    /// parts that are evidence stay.
    #[test]
    fn a_template_loses_what_the_redaction_of_its_record_removed() {
        let red = Redactor::default();
        let discord = "NzcwODczNzAzMjUzMjcwNzk3.ROnChc.yx2pGDUEG0379Ro_9PBpkcQ1EOoFAsux0DTCde";
        // The masker kept the first two parts (no digits in either; the id's base64
        // is too regular to look random): no shape is left to find.
        let cases = [
            (
                "Discord gateway refused NzcwODczNzAzMjUzMjcwNzk3.ROnChc.<*> at <*>",
                format!("Discord gateway refused {discord} at 10:02"),
                &["ROnChc", "NzcwODcz"][..],
                "Discord gateway refused <*> at <*>",
            ),
            // A JWT folded after its header: the payload's letters-only line and the
            // signature's line are literal parts of the template.
            (
                "JWT verify failed for <*>. eyJzdWIiOidNTsutxAqpUPZzpvtYSDegFXDZifxbcEIczSokIN. ORHzzoT-CDDCvUIE-rXGzwsEVhqXCKOVwAaPsgN-ieJ",
                "JWT verify failed for eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\neyJzdWIiOidNTsutxAqpUPZzpvtYSDegFXDZifxbcEIczSokIN.\nORHzzoT-CDDCvUIE-rXGzwsEVhqXCKOVwAaPsgN-ieJ".to_string(),
                &["dNTsutxAqp", "ORHzzoT"][..],
                "JWT verify failed for <*> <*> <*>",
            ),
        ];
        for (template, sample, secret, want) in cases {
            // Alone, the template keeps them.
            let alone = red.clean_template(template, "");
            assert!(secret.iter().any(|s| alone.contains(s)), "{alone}");
            // The message alone, and a record with its header and origin as samples
            // are kept (a lone `.` may then stay: it is in the header's time).
            let record =
                format!("[app.log:12]\n2026-11-22 10:00:00.000 | ERROR | m:f:1 - {sample}");
            for sample in [&sample, &record] {
                let got = red.clean_template(template, sample);
                assert_eq!(got.replace("<*>.", "<*>"), want);
                assert!(!secret.iter().any(|s| got.contains(s)), "{got}");
            }
        }
        // A record with nothing to redact, or a secret elsewhere, changes no part
        // that is evidence.
        let t = "Timeout talking to <*> after <*> (pool db-main.internal)";
        assert_eq!(
            red.clean_template(
                t,
                "Timeout talking to 10.0.0.7 after 30s (pool db-main.internal)"
            ),
            t
        );
        assert_eq!(
            red.clean_template(
                t,
                "Timeout talking to https://u:Hunter2pw@x after 30s (pool db-main.internal)"
            ),
            t
        );
    }

    /// A Discord token whose last part happens to start like another provider's key
    /// is found whole, not as that key with the id and timestamp left beside it.
    #[test]
    fn a_discord_token_ending_like_another_key_is_hidden_whole() {
        for last in [
            "sk-pGDUEG0379Ro_9PBpkcQ1EOoFAsux0DTCde",
            "ghp_GDUEG0379Ro_9PBpkcQ1EOoFAsux0DTCde",
        ] {
            let text =
                format!("Discord gateway refused NzYzODY3NTM2NzE0ODc2NzA3.bVtSjR.{last} now");
            assert_eq!(
                r(&text),
                "Discord gateway refused [REDACTED:discord-token] now",
                "{text}"
            );
        }
    }

    /// A random 32-digit key whose digits happen to repeat (under 3 bits a digit,
    /// about one key in ten thousand) is still a key; repeats and near-constant
    /// hex are not.
    #[test]
    fn hex_keys_with_low_entropy_by_chance_are_still_keys() {
        use entropy::looks_random;
        for key in [
            "9d498199891b0c9d1d11612c01c9c9e9",
            "289522e203889832440e2e32939e93ce",
        ] {
            assert!(looks_random(key), "{key}");
            gone(&[(
                &format!("bad DSN https://{key}@o4504.ingest.sentry.io/4504"),
                key,
                "url-credential",
            )]);
        }
        for word in [
            "deadbeefdeadbeefdead1",
            "20261122103000000000a",
            "0000000000000000000000000000000a",
        ] {
            assert!(!looks_random(word), "{word}");
        }
    }

    /// A JWT folded after each dot keeps its signature when words follow it on the
    /// signature's line.
    #[test]
    fn a_jwt_folded_at_its_dots_keeps_no_signature_before_more_words() {
        let sig = "Xq0_aA_A-_0A0aa0aaaa0a__-a-_a_--A0-aA-_0AaA";
        for fold in ["\n", "\n    ", "\r\n", "\\n"] {
            let text = format!(
                "JWT verify failed for eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{fold}eyJzdWIiOiaAA0A0aaaaAa.{fold}{sig} retrying"
            );
            assert_eq!(
                r(&text),
                "JWT verify failed for [REDACTED:jwt] retrying",
                "{text:?}"
            );
        }
    }

    /// A JWT folded at any point (a fixed width, indented, CRLF, in a repr) is hidden
    /// whole; the next record and prose that only starts like one are left alone.
    #[test]
    fn a_jwt_folded_at_a_fixed_width_is_hidden_whole() {
        let jwt = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiMTIzNDU2Nzg5MCIsICJuYW1lIjogIkpvaG4gRG9lIiwgImlhdCI6IDE1MTYyMzkwMjJ9.-QFOnWleu-nufSkt83esG4Q-iYjw51YdB6zawp4RS5k";
        let fold = |width: usize, sep: &str| -> String {
            let b = jwt.as_bytes();
            b.chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(sep)
        };
        for width in [7, 16, 33, 40, 64, 76, 100] {
            for sep in ["\n", "\r\n", "\n    ", "\\n"] {
                for (head, tail) in [
                    ("token refresh failed: ", "\nnext line here"),
                    ("token refresh failed:\n    ", ""),
                    ("repr 'tok=", "' end"),
                ] {
                    let text = format!("{head}{}{tail}", fold(width, sep));
                    let got = r(&text);
                    assert!(got.contains("[REDACTED:jwt]"), "{width} {sep:?}: {got}");
                    for piece in jwt.split('.') {
                        for part in piece.as_bytes().chunks(width.min(12)) {
                            let part = std::str::from_utf8(part).unwrap();
                            if part.len() >= 6 {
                                assert!(!got.contains(part), "{width} {sep:?}: {part} in {got}");
                            }
                        }
                    }
                    assert!(got.starts_with(head.trim_end_matches(['\n', ' '])), "{got}");
                    // A last piece that fills the width reads as folded on: the next
                    // line's first word goes with it (hiding more, never less).
                    if !jwt.len().is_multiple_of(width) {
                        assert!(got.ends_with(tail), "{width} {sep:?}: {got}");
                    }
                }
            }
        }
        // Only a token reaching the end of its line is read on; a token that does not
        // join into a JWT is no secret.
        for text in [
            "a eyJfoo\nbar baz",
            "and eyJhbGciOi.eyJzdWIiOi\nxyz done ok",
            "eyJhbGciOi is the start\n.eyJzdWIiOi.abcdef",
        ] {
            assert_eq!(r(text), text);
        }
        // A short tail of the signature alone on the next line goes with it; the line
        // after it, once the signature is whole, does not.
        let text = format!(
            "Bearer {}\n{}\nnext",
            &jwt[..jwt.len() - 4],
            &jwt[jwt.len() - 4..]
        );
        assert_eq!(r(&text), "Bearer [REDACTED:jwt]\nnext");
        // The next record after a JWT that ends its line is not read into it.
        let text = format!("auth with {jwt}\n2026-11-22 10:00:00 | ERROR | next");
        assert_eq!(
            r(&text),
            "auth with [REDACTED:jwt]\n2026-11-22 10:00:00 | ERROR | next"
        );
        // A stranger's lines of `eyJ` pieces: each is redacted on its own (what they
        // cost as they grow is measured by `cargo bench --bench hostile`).
        let text = "eyJhbGciOi.eyJzdWIiOi\n".repeat(2_000);
        let got = r(&text);
        assert!(got.contains("[REDACTED:jwt]") && !got.contains("eyJ"));
    }
}
#[cfg(test)]
mod more_shapes {
    /// Secrets under names, separators and layouts the first rules did not know, each
    /// beside text that must stay.
    #[test]
    fn abbreviations_codes_wide_separators_yaml_blocks_and_a_bare_aws_secret() {
        let r = super::Redactor::default();
        let cases: &[(&str, &str)] = &[
            (
                "login failed pswd=Hunter2pass",
                "login failed pswd=[REDACTED:password]",
            ),
            ("pswrd: Hunter2pass", "pswrd: [REDACTED:password]"),
            (
                "passcode=482913 accepted",
                "passcode=[REDACTED:pin] accepted",
            ),
            ("pin: 4829 rejected", "pin: [REDACTED:pin] rejected"),
            ("mfa_code=482913 expired", "mfa_code=[REDACTED:otp] expired"),
            ("otp=482913 expired", "otp=[REDACTED:otp] expired"),
            (
                "export REDIS_AUTH=Hunter2pass",
                "export REDIS_AUTH=[REDACTED:password]",
            ),
            ("auth=basic mode=strict", "auth=basic mode=strict"),
            ("auth=bob:Hunter2pass ok", "auth=[REDACTED:auth] ok"),
            (
                "auth=https://sso.example.com/login",
                "auth=https://sso.example.com/login",
            ),
            ("credential_source=env:AWS", "credential_source=env:AWS"),
            (
                "mapping=3 ping=ok shipping=2",
                "mapping=3 ping=ok shipping=2",
            ),
            (
                "db connect password＝Hunter2pass",
                "db connect password＝[REDACTED:password]",
            ),
            ("数据库密码：Hunter2pass", "数据库密码：[REDACTED:password]"),
            (
                "パスワード ＝ Hunter2pass",
                "パスワード ＝ [REDACTED:password]",
            ),
            ("비밀번호: Hunter2pass", "비밀번호: [REDACTED:password]"),
            (
                "访问令牌=8f14e45fceea167a5a36dedd4bea2543 用户：bob",
                "访问令牌=[REDACTED:token] 用户：bob",
            ),
            (
                "config:\n  password:\n    Hunter2pass\n  user: bob\n",
                "config:\n  password:\n    [REDACTED:password]\n  user: bob\n",
            ),
            (
                "db:\n  password: |-\n    Hunter2pass\n\n    second line\n  user: bob",
                "db:\n  password: |-\n    [REDACTED:password]\n  user: bob",
            ),
            // A mapping under the name is not the value: its own names are read.
            (
                "db:\n  password:\n    file: /run/secrets/db\n",
                "db:\n  password:\n    file: /run/secrets/db\n",
            ),
            ("password:\nnext: 1", "password:\nnext: 1"),
            (
                "AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "[REDACTED:aws-key],[REDACTED:aws-secret]",
            ),
            (
                "secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY for AKIAIOSFODNN7EXAMPLE",
                "secret [REDACTED:aws-secret] for [REDACTED:aws-key]",
            ),
            // Forty characters of hex beside a key id are a commit, not a secret.
            (
                "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 by AKIAIOSFODNN7EXAMPLE",
                "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 by [REDACTED:aws-key]",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&r.clean(text), want, "{text:?}");
        }
    }
}
