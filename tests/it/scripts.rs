//! The curated scripts as the model reaches them: every script in `scripts/` called
//! with hostile arguments through the `anthropic-api` tool loop of the real binary.
//! Refused calls run nothing (the scripts are copies that log each start), never reach
//! `systemctl`, `sqlite3` or `redis-cli`, and are recorded on the incident; a
//! configured check named by the model runs with the config's arguments only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Value};

use crate::fake_anthropic::{verdict_text, FakeAnthropic, Reply};
use crate::util::*;

const KEY: &str = "sk-ant-api03-testkey-0123456789abcdef";
const NOW: &str = "2026-11-22T10:05:00Z";

fn chmod_x(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Copies the shipped scripts into `to`, each logging `$PWD|$0|args` to `ran` as its
/// first command after the header (so the header, and with it the schema, is intact).
fn instrumented_copies(to: &Path, ran: &Path) -> Vec<String> {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    std::fs::create_dir_all(to).unwrap();
    let mut names = Vec::new();
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let mut out = String::new();
        let mut in_header = true;
        for line in text.lines() {
            if in_header && !line.starts_with('#') {
                out.push_str(&format!(
                    "printf '%s|%s|%s\\n' \"$PWD\" \"${{0##*/}}\" \"$*\" >> '{}'\n",
                    ran.display()
                ));
                in_header = false;
            }
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(to.join(&name), out).unwrap();
        chmod_x(&to.join(&name));
        names.push(name);
    }
    names.sort();
    names
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The tool results of a conversation, in order: (is_error, text).
fn tool_results(last: &Value) -> Vec<(bool, String)> {
    last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user" && m["content"].is_array())
        .map(|m| {
            let r = &m["content"][0];
            (
                r["is_error"] == true,
                r["content"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn hostile_arguments_to_every_curated_script_run_nothing() {
    let api = FakeAnthropic::start();
    let ntfy = FakeNtfy::start(None);
    let t = Test::new().env("LW_TEST_KEY", KEY);
    let tools = t.path("tools");
    let ran = t.path("ran.log");
    let names = instrumented_copies(&tools, &ran);
    // The metric checks run the plain copies from their own folder.
    let plain = t.path("scripts");
    std::fs::create_dir_all(&plain).unwrap();
    for n in &names {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(n);
        std::fs::copy(&src, plain.join(n)).unwrap();
        chmod_x(&plain.join(n));
    }
    let sysctl_log = t.path("systemctl.log");
    t.write(
        "bin/systemctl",
        &format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$PWD\" \"$*\" >> '{}'\n",
            sysctl_log.display()
        ),
    );
    chmod_x(&t.path("bin/systemctl"));
    let db = t.path("jobs.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE jobs(state TEXT); INSERT INTO jobs VALUES ('queued'), ('queued'), ('done');",
        )
        .unwrap();
    }
    let m = |n: &str| t.path(n).display().to_string();
    let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
    // Even a query from the config cannot escape sqlite3's safe mode.
    let checks = format!(
        "[metrics]\nscripts_dir = {plain}\n\
         [[check]]\nname = \"jobs\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", {db}, \"SELECT count(*) FROM jobs WHERE state = 'queued'\"]\n\
         [[check]]\nname = \"evil-shell\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", {db}, {shell}]\n\
         [[check]]\nname = \"evil-write\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", {db}, {write}]\n\
         [[check]]\nname = \"units\"\nscript = \"systemd-failed.sh\"\nenv = {{ SYSTEMCTL = {sysctl} }}\n\
         [[check]]\nname = \"rate\"\nscript = \"api-rate.sh\"\nlimits = {{ gemini = {{ pattern = \"gemini\", rpm = 60 }} }}\nargs = [\"--log\", {log}]\n",
        plain = toml_str(&plain.display().to_string()),
        db = toml_str(&m("jobs.db")),
        shell = toml_str(&format!(".shell touch {}", m("pwned-config-shell"))),
        write = toml_str(&format!("SELECT writefile('{}', 'x')", m("pwned-config-write"))),
        sysctl = toml_str(&m("bin/systemctl")),
        log = toml_str(&m("app.log")),
    );
    t.with_app_source(&format!(
        "[investigator]\nkind = \"anthropic-api\"\nbase_url = \"{}\"\napi_key_env = \"LW_TEST_KEY\"\ntimeout = \"60s\"\nmodel = \"claude-test-1\"\nretries = 0\nmax_turns = 100\nallow_scripts = true\nscripts_dir = {}\nscript_timeout = \"20s\"\n{}\n{checks}",
        api.url,
        toml_str(&tools.display().to_string()),
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app.jobs:run:10 - Queue stalled\n",
    );

    let touch = |n: &str| format!("$(touch {})", m(n));
    // Per script: argument lists that must be refused before anything runs.
    let hostile: Vec<(&str, Vec<String>)> = vec![
        (
            "api-rate.sh",
            vec![
                "--log".into(),
                "/etc/passwd".into(),
                "--limit".into(),
                "x:pattern=root".into(),
            ],
        ),
        (
            "api-rate.sh",
            vec!["rate".into(), "--log".into(), "/etc/passwd".into()],
        ),
        ("api-rate.sh", vec!["jobs".into()]),
        ("api-rate.sh", vec![]),
        ("cpu.sh", vec!["-1".into()]),
        ("cpu.sh", vec![format!("1; touch {}", m("pwned-cpu"))]),
        ("cpu.sh", vec![touch("pwned-cpu")]),
        ("cpu.sh", vec!["1".into(), "2".into()]),
        ("cpu.sh", vec!["600".into()]),
        ("disk.sh", vec!["--output=source".into()]),
        ("disk.sh", vec!["-x".into(), "ext4".into()]),
        ("disk.sh", vec![format!("/; touch {}", m("pwned-disk"))]),
        ("disk.sh", vec!["/tmp\n--help".into()]),
        ("disk.sh", vec!["tmp".into()]),
        ("memory.sh", vec!["--help".into()]),
        ("memory.sh", vec!["x".into()]),
        ("process-rss.sh", vec!["-f".into(), "sshd".into()]),
        ("process-rss.sh", vec![]),
        ("process-rss.sh", vec![touch("pwned-rss")]),
        ("process-rss.sh", vec!["a b".into()]),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                m("jobs.db"),
                format!(".shell touch {}", m("pwned-shell")),
            ],
        ),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                m("jobs.db"),
                format!("SELECT writefile('{}', 'x')", m("pwned-write")),
            ],
        ),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                m("jobs.db"),
                "SELECT readfile('/etc/passwd')".into(),
            ],
        ),
        (
            "queue.sh",
            vec![
                "redis".into(),
                "queue".into(),
                "--host".into(),
                "evil.example".into(),
            ],
        ),
        ("queue.sh", vec!["spool".into(), "/etc".into()]),
        (
            "queue.sh",
            vec!["jobs".into(), "--host".into(), "evil.example".into()],
        ),
        ("queue.sh", vec!["units".into()]),
        ("queue.sh", vec!["--".into(), "jobs".into()]),
        (
            "systemd-failed.sh",
            vec!["-H".into(), "root@evil.example".into()],
        ),
        (
            "systemd-failed.sh",
            vec!["--user".into(), "-H".into(), "x".into()],
        ),
        ("systemd-failed.sh", vec!["--host=evil.example".into()]),
        (
            "systemd-failed.sh",
            vec!["units".into(), "-H".into(), "x".into()],
        ),
        ("systemd-failed.sh", vec!["--user=1".into()]),
        ("systemd-failed.sh", vec!["list-units".into()]),
        ("systemd-failed.sh", vec!["jobs".into()]),
    ];
    // A script added to scripts/ must get its hostile cases here.
    let covered: std::collections::BTreeSet<&str> = hostile.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        covered.into_iter().collect::<Vec<_>>(),
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        "every curated script is attacked"
    );
    // Malformed calls: refused too.
    let malformed = vec![
        json!({"name": "memory.sh", "args": "--help"}),
        json!({"name": "memory.sh", "args": [1, "--help"]}),
        json!({"name": "../scripts/memory.sh"}),
        json!({"name": "/bin/sh", "args": ["-c", "id"]}),
    ];
    // Positive controls: these run, so the logs above would show a refused call that ran.
    let allowed: Vec<(&str, Vec<String>)> = vec![
        ("memory.sh", vec![]),
        ("queue.sh", vec!["jobs".into()]),
        ("queue.sh", vec!["evil-shell".into()]),
        ("queue.sh", vec!["evil-write".into()]),
        ("systemd-failed.sh", vec!["units".into()]),
    ];
    for (name, args) in &hostile {
        api.push(Reply::ToolUse {
            name: "run_script".into(),
            input: json!({"name": name, "args": args}),
        });
    }
    for input in &malformed {
        api.push(Reply::ToolUse {
            name: "run_script".into(),
            input: input.clone(),
        });
    }
    for (name, args) in &allowed {
        api.push(Reply::ToolUse {
            name: "run_script".into(),
            input: json!({"name": name, "args": args}),
        });
    }
    api.push(Reply::Text(verdict_text("real", "Queue stalled")));
    t.ok(&["run", "--now", NOW]);

    let msgs = api.messages();
    let offered = msgs[0].body["tools"][1].clone();
    assert_eq!(
        offered["input_schema"]["properties"]["name"]["enum"],
        json!(names),
        "every shipped script declares its arguments"
    );
    let desc = offered["description"].as_str().unwrap();
    assert!(
        desc.contains("- queue.sh CHECK (CHECK: jobs, evil-shell, evil-write)"),
        "{desc}"
    );
    assert!(
        desc.contains("- systemd-failed.sh [--user] | CHECK (CHECK: units)"),
        "{desc}"
    );

    let results = tool_results(&msgs.last().unwrap().body);
    let n_refused = hostile.len() + malformed.len();
    assert_eq!(results.len(), n_refused + allowed.len());
    for (i, (err, text)) in results[..n_refused].iter().enumerate() {
        let call = hostile
            .get(i)
            .map(|(n, a)| format!("{n} {a:?}"))
            .unwrap_or_else(|| malformed[i - hostile.len()].to_string());
        assert!(*err, "{call} was not refused: {text}");
        assert!(
            text.starts_with("refused, nothing was run") || text.starts_with("no script named"),
            "{call}: {text}"
        );
    }
    for (i, (err, text)) in results[n_refused..].iter().enumerate() {
        assert!(!*err, "{:?}: {text}", allowed[i]);
    }
    let out = |i: usize| &results[n_refused + i].1;
    assert!(out(0).contains("mem_total_bytes"), "{}", out(0));
    assert!(
        out(1).contains("queue_depth{queue=\"jobs.db\",kind=\"sqlite\"} 2"),
        "{}",
        out(1)
    );
    assert!(
        out(2).contains("exited with 1") && out(2).contains("safe mode"),
        "{}",
        out(2)
    );
    assert!(
        out(3).contains("exited with 1") && out(3).contains("safe mode"),
        "{}",
        out(3)
    );
    assert!(out(4).contains("systemd_failed_units 0"), "{}", out(4));

    // Only the allowed calls started a script, with the config's arguments.
    let tools_dir = tools.display().to_string();
    let started: Vec<String> = lines(&ran)
        .into_iter()
        .filter(|l| l.starts_with(&format!("{tools_dir}|")))
        .collect();
    assert_eq!(
        started,
        vec![
            format!("{tools_dir}|memory.sh|"),
            format!(
                "{tools_dir}|queue.sh|sqlite {} SELECT count(*) FROM jobs WHERE state = 'queued'",
                m("jobs.db")
            ),
            format!(
                "{tools_dir}|queue.sh|sqlite {} .shell touch {}",
                m("jobs.db"),
                m("pwned-config-shell")
            ),
            format!(
                "{tools_dir}|queue.sh|sqlite {} SELECT writefile('{}', 'x')",
                m("jobs.db"),
                m("pwned-config-write")
            ),
            format!("{tools_dir}|systemd-failed.sh|"),
        ]
    );
    let sysctl: Vec<String> = lines(&sysctl_log)
        .into_iter()
        .filter(|l| l.starts_with(&format!("{tools_dir}|")))
        .collect();
    assert_eq!(
        sysctl,
        vec![format!(
            "{tools_dir}|list-units --state=failed --no-legend --plain --no-pager"
        )],
        "-H never reaches systemctl"
    );
    for marker in [
        "pwned-cpu",
        "pwned-disk",
        "pwned-rss",
        "pwned-shell",
        "pwned-write",
        "pwned-config-shell",
        "pwned-config-write",
    ] {
        assert!(!t.path(marker).exists(), "{marker} was created");
    }

    // Every refusal is recorded on the incident.
    let inc = &t.incidents()[0];
    let denials = inc["diagnosis"]["permission_denials"].as_array().unwrap();
    assert_eq!(denials.len(), n_refused, "{denials:?}");
    assert_eq!(denials[0]["tool_input"]["args"][1], "/etc/passwd");
}
