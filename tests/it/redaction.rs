//! No seeded secret of `tests/data/secrets/` reaches a prompt (the fake claude's
//! recorded argv and stdin), a notification (the fake ntfy's bodies and titles) or an incident
//! file (its text and its name), not even in part; the values of `negatives.txt`
//! reach the prompt untouched; the CLI gets no environment beyond its allow-list.

use crate::util::*;

const CORPUS: &str = include_str!("../data/secrets/corpus.log");
const CORPUS_PY: &str = include_str!("../data/secrets/corpus.py");
const SECRETS: &str = include_str!("../data/secrets/secrets.txt");
const NEGATIVES: &str = include_str!("../data/secrets/negatives.txt");

fn secrets() -> Vec<&'static str> {
    SECRETS.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// How a secret would look in a file name (the slug of a title).
fn slugged(secret: &str) -> String {
    secret
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .to_ascii_lowercase()
}

/// The pieces of a secret that must not show either: the whole, and for a long
/// one its first and last 12 characters (a secret cut in half leaks a part).
fn pieces(secret: &str) -> Vec<&str> {
    let mut v = vec![secret];
    if secret.len() >= 20 && secret.is_ascii() {
        v.push(&secret[..12]);
        v.push(&secret[secret.len() - 12..]);
    }
    v
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        for p in pieces(s) {
            if let Some(at) = text.find(p) {
                let from = (0..=at.saturating_sub(300))
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                let to = ((at + 300).min(text.len())..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                panic!("{what} leaks {p:?} (of {s:?}):\n…{}…", &text[from..to]);
            }
        }
    }
}

fn setup(mode: &str, extra_inv: &str, extra: &str) -> (Test, FakeNtfy) {
    setup_source(mode, extra_inv, extra, "")
}

/// A test with the fake claude and ntfy; `source` is the `kind`/`path` of the
/// watched log (default: loguru text in `app.log`, holding `corpus.log`).
fn setup_source(mode: &str, extra_inv: &str, extra: &str, source: &str) -> (Test, FakeNtfy) {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new()
        .env("DATABASE_URL", "postgresql://app:EnvDbPassw0rd@db/app")
        .env("APP_SECRET_FOR_CLI", "kept-away-from-claude");
    let claude = fake_claude(&t, mode);
    let source = if source.is_empty() {
        "path = \"app.log\"\n"
    } else {
        source
    };
    t.config(&format!(
        "[[source]]\nname = \"app\"\nfrom = \"start\"\n{source}[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\ntimeout = \"30s\"\nmax_calls_per_hour = 200\nmax_calls_per_day = 200\nbreaker_failures = 100\n{extra_inv}\n[redact]\npatterns = [{{ name = \"customer-id\", regex = \"CUST-[0-9]+\" }}]\n{extra}\n{}max_per_hour = 200\n",
        claude.display(),
        ntfy.config("ops") // above the hourly cap: one notification per incident here
    ));
    t.write("app.log", CORPUS);
    (t, ntfy)
}

/// Checks every way out after a run: the summary, the prompts, the notifications,
/// the incident files and their names. Returns all prompts' argv.
fn assert_nothing_leaves(t: &Test, ntfy: &FakeNtfy, stdout: &str) -> String {
    assert_clean("the run summary", stdout);
    let all_argv: String = claude_inputs(t)
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    assert_clean("a prompt", &all_argv);
    let msgs = ntfy.messages();
    assert_eq!(
        msgs.len(),
        t.incident_files().len(),
        "one notification per incident"
    );
    for m in &msgs {
        assert_clean("a notification body", &m.body);
        assert_clean("a notification title", m.header("Title").unwrap_or(""));
    }
    for f in t.incident_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert_clean("an incident file", &text);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for s in secrets() {
            let slug = slugged(s);
            assert!(
                slug.len() < 8 || !name.contains(&slug),
                "file name {name} leaks {s}"
            );
        }
    }
    all_argv
}

#[test]
fn no_seeded_secret_leaves_the_host() {
    // `fail`: no verdict, so titles, file names and notifications come from the logs.
    let (t, ntfy) = setup("fail", "", "");
    let r = t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    let all_argv = assert_nothing_leaves(&t, &ntfy, &r.stdout);
    assert!(claude_calls(&t).len() >= 15, "{}", r.stdout);
    // What the CLI shows of the incidents, as text and as JSON.
    let listed = t.ok(&["incidents", "--json"]).stdout;
    assert!(listed.contains("[REDACTED:stripe-key]"), "{listed}");
    assert_clean("incidents --json", &listed);
    assert_clean("incidents", &t.ok(&["incidents"]).stdout);
    for n in 1..=t.incident_files().len() {
        let n = n.to_string();
        assert_clean("incidents show", &t.ok(&["incidents", "show", &n]).stdout);
        assert_clean(
            "incidents show --json",
            &t.ok(&["incidents", "show", &n, "--json"]).stdout,
        );
    }
    assert_clean(
        "incidents ack --json",
        &t.ok(&["incidents", "ack", "1", "2", "--json"]).stdout,
    );
    // The evidence is there, with typed placeholders where the secrets were.
    for p in [
        "[REDACTED:stripe-key]",
        "[REDACTED:anthropic-key]",
        "[REDACTED:openai-key]",
        "[REDACTED:aws-key]",
        "[REDACTED:aws-secret]",
        "[REDACTED:github-token]",
        "[REDACTED:gitlab-token]",
        "[REDACTED:slack-token]",
        "[REDACTED:google-api-key]",
        "[REDACTED:jwt]",
        "[REDACTED:bearer-token]",
        "[REDACTED:url-password]",
        "[REDACTED:password]",
        "[REDACTED:secret]",
        "[REDACTED:private-key]",
        "[REDACTED:customer-id]",
    ] {
        assert!(all_argv.contains(p), "no {p} in the prompts");
    }
    assert!(all_argv.contains("botocore.exceptions.ClientError"));

    // The CLI's environment: the allow-list only.
    let env = std::fs::read_to_string(t.path("claude-calls/env-0")).unwrap();
    assert!(!env.contains("EnvDbPassw0rd"), "{env}");
    assert!(!env.contains("kept-away-from-claude"), "{env}");
    assert!(env.contains("PATH="), "{env}");
}

#[test]
fn what_claude_answers_is_redacted_too_and_files_can_stay_raw() {
    let verdict = r#"{"verdict": "real", "severity": "critical", "title": "Stripe key sk_live_4eC39HqLyjWDarjtT1zdp7dc revoked", "summary": "The key sk_live_4eC39HqLyjWDarjtT1zdp7dc was revoked.", "root_cause": "revoked", "suggested_fix": "rotate", "confidence": 0.9}"#;
    let (t, ntfy) = setup(
        &format!("ok:{verdict}"),
        "pass_env = [\"APP_SECRET_FOR_CLI\"]\n",
        "incident_files = false\n",
    );
    t.write("app.log", CORPUS.lines().next().unwrap());
    t.append("app.log", b"\n");
    t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    let argv = claude_inputs(&t).concat().join("\n");
    assert_clean("a prompt", &argv);
    let m = ntfy.messages();
    assert_eq!(m.len(), 1);
    assert_clean(
        "a notification",
        &format!("{}{}", m[0].body, m[0].header("Title").unwrap()),
    );
    assert!(
        m[0].body.contains("[REDACTED:stripe-key] was revoked"),
        "{}",
        m[0].body
    );
    // incident_files = false: the evidence in the file stays as logged, Claude's
    // words are still redacted (they were stored redacted).
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(
        page.contains("Stripe charge failed with key sk_live_"),
        "{page}"
    );
    assert!(
        page.contains("The key [REDACTED:stripe-key] was revoked"),
        "{page}"
    );
    // pass_env lets a named variable through.
    let env = std::fs::read_to_string(t.path("claude-calls/env-0")).unwrap();
    assert!(
        env.contains("APP_SECRET_FOR_CLI=kept-away-from-claude"),
        "{env}"
    );
    assert!(!env.contains("EnvDbPassw0rd"), "{env}");
}

#[test]
fn a_loguru_diagnose_traceback_with_a_dsn_is_redacted() {
    if !have_loguru() {
        return;
    }
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let claude = fake_claude(&t, "fail");
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\n{}",
        claude.display(),
        ntfy.config("ops")
    ));
    t.loguru(
        r#"
logger.add("app.log", diagnose=True, backtrace=True)
def connect(dsn):
    raise ConnectionError("refused")
try:
    connect("postgresql://app_user:Tr0ub4dor-and-3@db.internal:5432/app")
except ConnectionError:
    logger.exception("Database unreachable")
logger.bind(payload={"password": "Sup3rS3cr3tPayl0ad!"}).error("Signup failed {}", {"token": "tok_9fJ3kL2mN8pQ"})
"#,
    );
    let raw = t.read("app.log");
    assert!(
        raw.contains("Tr0ub4dor-and-3"),
        "the seed is in the log: {raw}"
    );
    t.ok(&["run"]);
    let argv = claude_inputs(&t).concat().join("\n");
    assert!(argv.contains("Database unreachable"));
    assert_clean("a prompt", &argv);
    for m in ntfy.messages() {
        assert_clean("a notification", &m.body);
    }
    for f in t.incident_files() {
        assert_clean("an incident file", &std::fs::read_to_string(f).unwrap());
    }
}

/// `corpus.py` written by the real loguru into both sinks (`app.log` and
/// `app.json`), the one `source` names run through logwarden: nothing leaks,
/// every case reached a prompt, every negative reached it untouched.
fn loguru_corpus(source: &str) {
    if !have_loguru() {
        return;
    }
    let (t, ntfy) = setup_source("fail", "", "", source);
    t.write("corpus.py", CORPUS_PY);
    t.loguru(
        "import runpy\nfor sink in ('text', 'json'):\n    logger.remove()\n    runpy.run_path('corpus.py', init_globals={'SINK': sink, 'logger': logger})",
    );
    let read = |f: &str| std::fs::read_to_string(t.path(f)).unwrap_or_default();
    let raw = format!("{}{}{CORPUS}", read("app.log"), read("app.json"));
    for s in secrets() {
        let escaped = serde_json::to_string(s).unwrap();
        assert!(
            raw.contains(s) || raw.contains(escaped.trim_matches('"')),
            "the seed {s:?} is in no log: secrets.txt and corpus.py disagree"
        );
    }
    let r = t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    let argv = assert_nothing_leaves(&t, &ntfy, &r.stdout);
    let cases: Vec<&str> = CORPUS_PY
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(\""))
        .filter_map(|l| l.split('"').next())
        .chain([
            "extra_bind",
            "dump_password",
            "dump_secret_key",
            "dump_attribute",
        ])
        .collect();
    assert!(cases.len() > 50, "{cases:?}");
    for c in cases {
        assert!(
            argv.contains(&format!("corpus.{c}")),
            "case {c} reached no prompt\n{}",
            r.stdout
        );
    }
    for keep in NEGATIVES.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            argv.contains(keep),
            "{keep:?} was redacted from the prompts"
        );
    }
    // The evidence keeps its shape around the placeholders.
    for p in [
        "[REDACTED:webhook]",
        "[REDACTED:twilio-token]",
        "[REDACTED:sendgrid-key]",
        "[REDACTED:npm-token]",
        "[REDACTED:url-password]",
        "[REDACTED:cookie]",
        "[REDACTED:card-number]",
        "[REDACTED:signature]",
        "[REDACTED:private-key]",
        "[REDACTED:password]",
    ] {
        assert!(argv.contains(p), "no {p} in the prompts");
    }
}

#[test]
fn the_loguru_text_corpus_leaks_nothing() {
    loguru_corpus("path = \"app.log\"\n");
}

#[test]
fn the_loguru_json_corpus_leaks_nothing() {
    loguru_corpus("kind = \"loguru-json\"\npath = \"app.json\"\n");
}

/// A record far longer than the notification's excerpt, with secrets around
/// where the excerpt is cut: none may leave in part (redaction comes first).
#[test]
fn a_secret_straddling_the_notification_cut_does_not_leak_its_first_part() {
    let (t, ntfy) = setup("fail", "", "");
    let keys = [
        "AKIAQ7R3Y0B8VTNW2XQ9",
        "postgres://svc:Xr7Kq2Lm9Np4Vt8W@db/app",
        "4539148803436467",
        "AIzaSyC4fK2mP9qL4vR7tX1wZ3cB6nJ0hG5sE2b",
    ];
    let mut log = String::new();
    for (n, key) in keys.iter().enumerate() {
        let mut line = format!(
            "2026-11-22 10:00:0{n}.000 | ERROR    | export.job{n}:run:7 - export batch {n} rejected:"
        );
        // The same secret over and over from byte 1,200 to 1,800: wherever the
        // excerpt (about 1,500 bytes) is cut, it is cut inside one of them.
        while line.len() < 1200 {
            line.push_str(" field value");
        }
        while line.len() < 1800 {
            line.push(' ');
            line.push_str(key);
        }
        log.push_str(&line);
        log.push('\n');
    }
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    // The secret part of each: the password of the URL, the others whole.
    let secret = |key: &'static str| -> &'static str {
        let s = key.rsplit_once(':').map_or(key, |(_, p)| p);
        s.split('@').next().unwrap()
    };
    let msgs = ntfy.messages();
    assert_eq!(msgs.len(), keys.len());
    for m in &msgs {
        assert!(
            m.body.contains("…(cut: "),
            "the excerpt was cut: {}",
            m.body
        );
        assert!(m.body.contains("[REDACTED:"), "{}", m.body);
        for key in keys {
            let s = secret(key);
            assert!(
                !m.body.contains(&s[..6]),
                "the body leaks the start of {s}:\n{}",
                m.body
            );
        }
    }
    for f in t.incident_files() {
        let page = std::fs::read_to_string(f).unwrap();
        for key in keys {
            assert!(!page.contains(&secret(key)[..6]), "{page}");
        }
    }
}

#[test]
fn a_key_cut_short_keeps_the_page_whole() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Bad key -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n2026-11-22 10:00:01.000 | ERROR    | app:f:1 - Something else\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let f = t
        .incident_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains("bad-key"))
        .unwrap();
    let page = std::fs::read_to_string(&f).unwrap();
    assert!(!page.contains("MIIEowIBAAKCAQEAx"), "{page}");
    // Every code block is closed on a line of its own, so the sections after the
    // evidence are sections, not code.
    let mut open = false;
    for l in page.lines() {
        if l.starts_with("```") {
            open = !open;
        } else if l.starts_with("## ") {
            assert!(!open, "{l:?} inside a code block:\n{page}");
        }
        assert!(!l.ends_with("]```"), "a fence glued to the text:\n{page}");
    }
    assert!(!open, "{page}");
    assert!(page.contains("## Diagnosis"), "{page}");
}

#[test]
fn private_keys_in_one_kind_of_message_open_one_incident() {
    // Key bodies without a digit: a token of letters alone reads as wording to the
    // masker, so each key would be a template of its own.
    let mut seed = 7u64;
    let mut key_line = || -> String {
        (0..64)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/"
                    [(seed >> 33) as usize % 54] as char
            })
            .collect()
    };
    let mut log = String::new();
    for i in 0..4 {
        let (a, b) = (key_line(), key_line());
        log.push_str(&format!(
            "2026-11-22 10:00:0{i}.000 | ERROR    | app:f:1 - Cannot load key -----BEGIN OPENSSH PRIVATE KEY-----\n{a}\n{b}\n"
        ));
    }
    let t = Test::new();
    t.with_app_source("");
    t.write("app.log", &log);
    let out = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]).all();
    assert!(out.contains("1 groups, 1 new incidents"), "{out}");
    let files = t.incident_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let page = std::fs::read_to_string(&files[0]).unwrap();
    assert!(page.contains("[REDACTED:private-key]"), "{page}");
}

#[test]
fn messages_that_differ_by_a_credential_open_one_incident() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - upstream refused Authorization: Basic dXNlcjpwYXNzd29yZA==\n\
         2026-11-22 10:00:01.000 | ERROR    | app:f:1 - upstream refused Authorization: Basic YWRtaW46aHVudGVyMg==\n\
         2026-11-22 10:00:02.000 | ERROR    | app:f:1 - upstream refused Authorization: Basic cm9vdDp0b29yCg==\n",
    );
    let out = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]).all();
    assert!(out.contains("1 groups, 1 new incidents"), "{out}");
}

/// Random characters from a seed: the shapes must be found by their form, not by the
/// values of a fixture. The same draw each run, so CI is never red by chance (the
/// fuzz suite's `secrets_survive_neither_in_the_record_nor_in_its_template` covers
/// the breadth); `LW_TEST_SEED=N` replays another draw, `LW_TEST_SEED=random` takes
/// a fresh one. The seed is in every failure message.
struct Draw(u64);

impl Draw {
    fn new() -> Draw {
        match std::env::var("LW_TEST_SEED").ok().as_deref() {
            Some("random") => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                Draw(nanos | 1)
            }
            Some(s) => Draw(
                s.parse::<u64>()
                    .expect("LW_TEST_SEED is a number or `random`"),
            ),
            None => Draw(0x5eed_1f07_2026_1204),
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n)
            .map(|_| a[(self.next() >> 33) as usize % a.len()] as char)
            .collect()
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const HEX: &str = "0123456789abcdef";
const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Authorization headers of any scheme, values holding `&`, `%26` and backticks,
/// provider tokens of many shapes, command-line passwords, a PuTTY key, a Sentry
/// DSN and secrets wrapped over lines, all drawn at random: none reaches a
/// prompt (nor its "Other errors this run" templates), a notification or a page.
#[test]
fn secrets_of_many_more_shapes_do_not_leave_the_host() {
    let mut d = Draw::new();
    let seed = d.0;
    let mut secrets: Vec<String> = Vec::new();
    let mut keep = |s: String| -> String {
        secrets.push(s.clone());
        s
    };
    let bot_id = format!("{}", 1_000_000_000 + d.next() % 8_000_000_000);
    let discord_id = format!(
        "{}",
        100_000_000_000_000_000 + d.next() % 800_000_000_000_000_000
    );
    let discord_b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(discord_id)
    };
    let django: String = d.pick("abcdefghijklmnopqrstuvwxyz0123456789!@#$%^*(-_=+)", 24);
    let lines: Vec<String> = vec![
        format!("Okta call failed Authorization: SSWS {}", keep(d.pick(ALNUM, 42))),
        format!("DeepL 403 authorization: DeepL-Auth-Key {}:fx", keep(d.pick(ALNUM, 36))),
        format!("Zoho refused {{'Proxy-Authorization': 'Zoho-oauthtoken 1000.{}'}}", keep(d.pick(HEX, 64))),
        format!("Hawk rejected Authorization: Hawk id=\"{}\", ts=\"1353832234\", mac=\"{}=\"", keep(d.pick(ALNUM, 16)), keep(d.pick(B64, 43))),
        format!("bot login failed AUTHORIZATION: Bot {}", keep(d.pick(ALNUM, 40))),
        format!("Login failed password={}&{}", keep(d.pick(ALNUM, 9)), keep(d.pick(ALNUM, 14))),
        format!("GET /login?user=bob&password={}%26{}&next=/ 500", keep(d.pick(ALNUM, 9)), keep(d.pick(ALNUM, 14))),
        format!("Login failed password={}`{}", keep(d.pick(ALNUM, 9)), keep(d.pick(ALNUM, 14))),
        format!("Boot failed SECRET_KEY={}&m)w=F)(*_{}&{}", keep(d.pick(ALNUM, 9)), keep(django), keep(d.pick(ALNUM, 14))),
        format!("Telegram send failed https://api.telegram.org/bot{bot_id}:AA{}/sendMessage", keep(d.pick(URLSAFE, 33))),
        format!("Discord gateway refused {discord_b64}.{}.{}", keep(d.pick(URLSAFE, 6)), keep(d.pick(URLSAFE, 38))),
        format!("Mailgun error key-{}", keep(d.pick(LOWER_ALNUM, 32))),
        format!("token refresh failed, client_secret {} rejected", keep(d.pick(ALNUM, 34))),
        format!("Heroku failed HRKU-AA{}", keep(d.pick(URLSAFE, 58))),
        format!("Brevo failed xkeysib-{}-{}", keep(d.pick(HEX, 64)), keep(d.pick(ALNUM, 16))),
        format!("Databricks failed dapi{}", keep(d.pick(HEX, 32))),
        format!("Supabase failed sbp_{}", keep(d.pick(HEX, 40))),
        format!("Doppler failed dp.pt.{}", keep(d.pick(ALNUM, 43))),
        format!("Pulumi failed pul-{}", keep(d.pick(HEX, 40))),
        format!("Atlassian failed ATATT3{}={}", keep(d.pick(URLSAFE, 180)), d.pick("0123456789ABCDEF", 8)),
        format!("Backup failed: Command '['mysql', '-uroot', '-p{}', '-h', 'db']' returned non-zero exit status 1.", keep(d.pick(ALNUM, 20))),
        format!("Sync failed: Command '['curl', '-sS', '-u', 'deploy:{}', 'https://x']' returned 22", keep(d.pick(ALNUM, 16))),
        format!("Error tracking off: bad DSN https://{}@o4504.ingest.sentry.io/4504", keep(d.pick(HEX, 32))),
        format!("Deploy key rejected:\nPuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAI{}\nqk0d\nPrivate-Lines: 1\n{}\nPrivate-MAC: {}", d.pick(B64, 20), keep(d.pick(B64, 48)), keep(d.pick(HEX, 40))),
        format!("Request config:\n{{'db': {{'host': 'db', 'password': '{}'}},\n 'headers': {{'Authorization': 'Bearer '\n                              '{}'}}}}", keep(d.pick(ALNUM, 24)), keep(d.pick(ALNUM, 64))),
        format!("JWT verify failed for eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\neyJzdWIiOi{}.\n{}", keep(d.pick(ALNUM, 40)), keep(d.pick(URLSAFE, 43))),
        format!("Redis command failed: AUTH {}", keep(d.pick(ALNUM, 14))),
        format!("Redis command failed: AUTH default {}", keep(d.pick(ALNUM, 14))),
        format!("Error while executing ('AUTH', '{}')", keep(d.pick(ALNUM, 14))),
        format!("htpasswd line: admin:$apr1$abcd1234${}", keep(d.pick(ALNUM, 22))),
        format!("shadow: root:$6$saltsalt${}:19000:0:99999:7:::", keep(d.pick(ALNUM, 40))),
        format!("Login check failed for $2b$12${}", keep(d.pick(ALNUM, 53))),
        format!("Auth failed: pässwort={}", keep(d.pick(ALNUM, 10))),
        format!("Auth failed: пароль={}", keep(d.pick(ALNUM, 10))),
        format!("Auth failed: password\t{}", keep(d.pick("abcdefghijklmnopqrstuvwxyz", 9))),
    ];
    let mut log = String::new();
    for (n, line) in lines.iter().enumerate() {
        log.push_str(&format!(
            "2026-11-22 10:{:02}:{:02}.000 | ERROR    | app.case{n}:run:{n} - {line}\n",
            n / 60,
            n % 60
        ));
    }
    let (t, ntfy) = setup("fail", "", "");
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    let check = |what: &str, text: &str| {
        for s in &secrets {
            let mut parts = vec![s.as_str()];
            if s.len() >= 20 {
                parts.extend([&s[..12], &s[s.len() - 12..]]);
            }
            for p in parts {
                assert!(
                    !text.contains(p),
                    "{what} leaks {p:?} of {s:?} (seed {seed}):\n{text}"
                );
            }
        }
    };
    let prompts = claude_inputs(&t);
    assert!(
        prompts.len() >= lines.len() - 1,
        "{} prompts",
        prompts.len()
    );
    let all = prompts.concat().join("\n");
    assert!(all.contains("## Other errors this run"), "{all}");
    check("a prompt", &all);
    let msgs = ntfy.messages();
    assert!(!msgs.is_empty());
    for m in &msgs {
        check(
            "a notification",
            &format!("{}\n{}", m.body, m.header("Title").unwrap_or("")),
        );
    }
    let files = t.incident_files();
    assert!(files.len() >= lines.len() - 1, "{files:?}");
    for f in files {
        check("an incident file", &std::fs::read_to_string(&f).unwrap());
        check("an incident file's name", &f.to_string_lossy());
    }
    // The evidence around the secrets is still there.
    for kept in [
        "Authorization: SSWS [REDACTED:authorization]",
        "DeepL-Auth-Key [REDACTED:authorization]",
        "[REDACTED:telegram-token]/sendMessage",
        "[REDACTED:discord-token]",
        "Private-Lines: 1",
        "'-h', 'db'",
        "o4504.ingest.sentry.io",
        "next=/ 500",
        "AUTH default [REDACTED:password]",
        "root:$6$[REDACTED:password-hash]:19000",
    ] {
        assert!(
            all.contains(kept),
            "no {kept:?} in the prompts (seed {seed})"
        );
    }
}

/// Runs `lines` (their `{a}` and `{b}` filled with the two halves of a random
/// secret) through logwarden and checks that no half leaves the host; returns the
/// prompts and the seed.
fn halves_case(lines: &[&str]) -> (String, u64) {
    let mut d = Draw::new();
    let seed = d.0;
    let mut halves = Vec::new();
    let mut log = String::new();
    for (n, line) in lines.iter().enumerate() {
        let (a, b) = (d.pick(ALNUM, 10), d.pick(ALNUM, 14));
        log.push_str(&format!(
            "2026-11-22 10:00:0{n}.000 | ERROR    | app.case{n}:run:{n} - {}\n",
            line.replace("{a}", &a).replace("{b}", &b)
        ));
        halves.extend([a, b]);
    }
    let (t, ntfy) = setup("fail", "", "");
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-22T10:30:00Z"]);
    let all = claude_inputs(&t).concat().join("\n");
    let mut outside = vec![all.clone()];
    for m in ntfy.messages() {
        outside.push(format!("{}\n{}", m.body, m.header("Title").unwrap_or("")));
    }
    for f in t.incident_files() {
        outside.push(std::fs::read_to_string(&f).unwrap());
        outside.push(f.to_string_lossy().to_string());
    }
    for text in &outside {
        for h in &halves {
            assert!(
                !text.contains(h.as_str()),
                "leaks {h:?} (seed {seed}):\n{text}"
            );
        }
    }
    (all, seed)
}

/// An apostrophe of prose before an Authorization header opens no quote: the
/// credential is hidden whole, also with an apostrophe of its own, and the words
/// after it stay.
#[test]
fn an_apostrophe_before_an_authorization_header_leaks_no_tail() {
    let (all, seed) = halves_case(&[
        "the user's Authorization: Custom {a}'{b} isn't valid",
        "don't send authorization: Custom {a}'{b} now",
    ]);
    for kept in [
        "the user's Authorization: Custom [REDACTED:authorization] isn't valid",
        "don't send authorization: Custom [REDACTED:authorization] now",
    ] {
        assert!(all.contains(kept), "no {kept:?} (seed {seed}):\n{all}");
    }
}

/// An apostrophe inside an unquoted value is part of it, not the close of a quote
/// opened before the name.
#[test]
fn an_apostrophe_inside_a_pair_value_leaks_no_tail() {
    let (all, seed) = halves_case(&["login failed: log('bad password={a}'{b} now')"]);
    let kept = "log('bad password=[REDACTED:password]')";
    assert!(all.contains(kept), "no {kept:?} (seed {seed}):\n{all}");
}

/// A header inside another header's value ends that value; both values are
/// hidden whole (each is read once, up to the next header's name).
#[test]
fn a_header_inside_a_header_value_leaks_neither() {
    let (all, seed) = halves_case(&[
        "upstream refused Authorization: Custom {a},authorization:{b} retrying",
        "upstream refused authorization:{a},authorization:x{b},authorization:retry",
    ]);
    let kept =
        "Authorization: Custom [REDACTED:authorization],authorization:[REDACTED:authorization]";
    assert!(all.contains(kept), "no {kept:?} (seed {seed}):\n{all}");
}
