//! No seeded secret of `tests/data/secrets/` reaches a prompt (the fake claude's
//! recorded argv and stdin), a notification (the fake ntfy's bodies and titles) or an incident
//! file (its text and its name); the CLI gets no environment beyond its allow-list.

use crate::util::*;

const CORPUS: &str = include_str!("../data/secrets/corpus.log");
const SECRETS: &str = include_str!("../data/secrets/secrets.txt");

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

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{what} leaks {s}:\n{text}");
    }
}

fn setup(mode: &str, extra_inv: &str, extra: &str) -> (Test, FakeNtfy) {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new()
        .env("DATABASE_URL", "postgresql://app:EnvDbPassw0rd@db/app")
        .env("APP_SECRET_FOR_CLI", "kept-away-from-claude");
    let claude = fake_claude(&t, mode);
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\ntimeout = \"30s\"\nmax_calls_per_hour = 100\nbreaker_failures = 100\n{extra_inv}\n[redact]\npatterns = [{{ name = \"customer-id\", regex = \"CUST-[0-9]+\" }}]\n{extra}\n{}max_per_hour = 100\n",
        claude.display(),
        ntfy.config("ops") // issue 7: above the hourly cap, one per incident here
    ));
    t.write("app.log", CORPUS);
    (t, ntfy)
}

#[test]
fn no_seeded_secret_leaves_the_host() {
    // `fail`: no verdict, so titles, file names and notifications come from the logs.
    let (t, ntfy) = setup("fail", "", "");
    let r = t.ok(&["run"]);
    assert_clean("the run summary", &r.stdout);
    let calls = claude_inputs(&t);
    assert!(calls.len() >= 15, "{} calls\n{}", calls.len(), r.stdout);
    let all_argv: String = calls
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    assert_clean("a prompt", &all_argv);
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

    let msgs = ntfy.messages();
    assert_eq!(msgs.len(), t.incident_files().len());
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
    t.ok(&["run"]);
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
