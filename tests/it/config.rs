//! Config validation: every error at once, with its key.

use crate::util::*;

#[test]
fn check_reports_every_problem_with_its_key() {
    let t = Test::new();
    t.write(
        "logwarden.toml",
        r#"
state_dir = "state"
renotify_after = "a while"
colour = "blue"

[[source]]
name = "app"
from = "the middle"
min_level = "LOUD"

[investigator]
kind = "gpt"
timeout = "5"

[ntfy]
topic = "has spaces"
token = "tk_do_not_print_me"
"#,
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in [
        "`renotify_after`",
        "`colour`",
        "`source[0].path`",
        "`source[0].from`",
        "`source[0].min_level`",
        "`investigator.kind`",
        "`investigator.timeout`",
        "`ntfy.topic`",
        "`ntfy.token`",
    ] {
        assert!(r.stderr.contains(key), "no error for {key}:\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("tk_do_not_print_me"));
}

#[test]
fn check_reports_every_value_of_the_wrong_type_with_its_line() {
    let t = Test::new();
    t.write(
        "logwarden.toml",
        "state_dir = \"state\"\nrenotify_after = 5\n\n[[source]]\nname = \"app\"\npath = 7\n\n\
         [investigator]\nkind = [\"x\"]\n\n[[check]]\nname = \"disk\"\nscript = \"disk.sh\"\n\
         [[check.rule]]\nmetric = \"x\"\nabove = \"lots\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("has 4 problems"), "{}", r.stderr);
    for (line, text) in [
        (2, "renotify_after = 5"),
        (6, "path = 7"),
        (9, "kind = [\"x\"]"),
        (16, "above = \"lots\""),
    ] {
        assert!(
            r.stderr.contains(&format!("at line {line}, column"))
                && r.stderr.contains(&format!("{line} | {text}")),
            "no error for line {line}:\n{}",
            r.stderr
        );
    }
    // The source left without its (wrongly typed) path is not a fifth problem.
    assert!(!r.stderr.contains("missing field"), "{}", r.stderr);

    // A dotted key is blanked whole: what follows it is still read.
    t.write(
        "logwarden.toml",
        "state_dir = \"state\"\ninvestigator.kind = 1\nhostname = 5\n[[source]]\nname = \"app\"\npath = \"app.log\"\ntimezone = 7\n",
    );
    let r = t.run(&["check"]);
    assert!(r.stderr.contains("has 3 problems"), "{}", r.stderr);
    for line in [2, 3, 7] {
        assert!(
            r.stderr.contains(&format!("at line {line}, column")),
            "{}",
            r.stderr
        );
    }

    // Inside an inline table or array each wrong element is its own problem, and the
    // right ones around it are still read. Each is shown on the line as written.
    t.write(
        "logwarden.toml",
        "state_dir = \"state\"\n[[source]]\nname = \"app\"\npath = \"app.log\"\n\
         severity = { ERROR = [\"é\"], WARNING = \"warning\", CRITICAL = 7 }\n\
         levels = { NOTICE = \"x\" }\n\
         [[check]]\nname = \"disk\"\nscript = \"disk.sh\"\nargs = [\"-v\", 3, \"/\", [4],]\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("has 5 problems"), "{}", r.stderr);
    for (line, column) in [(5, 22), (5, 61), (6, 21), (10, 15), (10, 23)] {
        assert!(
            r.stderr
                .contains(&format!("at line {line}, column {column}")),
            "no error at {line}:{column}:\n{}",
            r.stderr
        );
    }
    assert!(
        r.stderr
            .contains("10 | args = [\"-v\", 3, \"/\", [4],]\n   |                       ^^^\n"),
        "{}",
        r.stderr
    );

    // A syntax error is reported on its own: the document cannot be read to type it.
    t.write(
        "logwarden.toml",
        "state_dir = 5\nx = = 3\nrenotify_after = 5\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("has 1 problem:"), "{}", r.stderr);
    assert!(r.stderr.contains("at line 2, column 5"), "{}", r.stderr);
}

#[test]
fn check_prints_the_effective_config() {
    let t = Test::new();
    t.with_app_source("");
    let r = t.ok(&["check"]);
    assert!(r.stdout.contains("[[source]]"), "{}", r.stdout);
    assert!(r.stdout.contains("renotify_after = \"7d\""), "{}", r.stdout);
    assert!(
        r.stdout.contains(&t.path("app.log").display().to_string()),
        "relative paths resolved against the config's folder"
    );
}

#[test]
fn config_flag_beats_environment() {
    let t = Test::new();
    t.with_app_source("");
    t.write("other.toml", "bogus = 1\n");
    let r = t.run(&["check", "--config", "other.toml"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("other.toml"), "{}", r.stderr);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let t = Test::new();
    t.with_app_source("");
    t.write("app.log", "");
    t.ok(&["run"]);
    let conn = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let r = t.run(&["run"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("newer logwarden"), "{}", r.stderr);
}

/// A relative `--config` from another folder: every path key is resolved against the
/// config file's folder once, so children run elsewhere (claude in its scratch dir)
/// still get the right files.
#[test]
fn relative_config_paths_are_absolute_after_load() {
    let t = Test::new();
    fake_claude(
        &t,
        r#"ok:{"verdict": "real", "severity": "warning", "title": "Charges fail", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.5}"#,
    );
    t.write(
        "x/logwarden.toml",
        "state_dir = \"state\"\nincidents_dir = \"incidents\"\nignore_file = \"ignore.toml\"\nprompts_dir = \"prompts\"\nhostname = \"h\"\nmetrics_textfile = \"out/logwarden.prom\"\n\
         [[source]]\nname = \"app\"\npath = \"logs/app.log\"\nfrom = \"start\"\n\
         [investigator]\nkind = \"claude-cli\"\ncommand = \"../fake-claude\"\nallow_scripts = true\nscripts_dir = \"scripts\"\ndeploy_repo = \"repo\"\n",
    );
    t.write("x/scripts/disk.sh", "#!/bin/sh\ndf -h\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.path("x/scripts/disk.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    t.write(
        "x/logs/app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Charge failed for invoice 7\n",
    );
    std::fs::create_dir_all(t.path("elsewhere")).unwrap();
    let x = t.path("x").display().to_string();
    let r = t
        .command(&["check", "--config", "../x/logwarden.toml"])
        .current_dir(t.path("elsewhere"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(
        r.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    for rel in [
        "state",
        "incidents",
        "ignore.toml",
        "prompts",
        "out/logwarden.prom",
        "logs/app.log",
        "scripts",
        "repo",
    ] {
        assert!(
            out.contains(&format!("\"{x}/{rel}\"")),
            "{rel} is not resolved to {x}/{rel}:\n{out}"
        );
    }
    assert!(!out.contains("../x"), "{out}");
    let r = t
        .command(&[
            "run",
            "--config",
            "../x/logwarden.toml",
            "--now",
            "2026-11-22T10:05:00Z",
        ])
        .current_dir(t.path("elsewhere"))
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    let calls = claude_calls(&t);
    assert_eq!(calls.len(), 1, "the relative command was found and run");
    // claude runs in its scratch dir: the tool server it is given names the config
    // (and so the scripts folder) by absolute path.
    let mcp = serde_json::to_string(&claude_mcp_configs(&t)).unwrap();
    assert!(
        mcp.contains(&format!("{x}/logwarden.toml")),
        "the MCP server must be given the config's absolute path: {mcp}"
    );
    assert!(t.path("x/state/logwarden.db").exists());
    assert!(t.path("x/incidents").is_dir());
}

#[test]
fn a_url_with_a_password_in_it_is_refused_and_never_printed() {
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"app\"\npath = \"app.log\"\n\n[ntfy]\nserver = \"https://alice:hunter2pw@ntfy.example/\"\ntopic = \"ops\"\n\n\
         [investigator]\nkind = \"anthropic-api\"\nbase_url = \"https://sk-ant-tok3n@api.example\"\napi_key_env = \"K\"\n",
    );
    for args in [&["check"][..], &["run"][..], &["status"][..]] {
        let r = t.run(args);
        assert_ne!(r.code, Some(0), "{args:?} accepted it:\n{}", r.all());
        assert!(r.stderr.contains("`ntfy.server`"), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("`investigator.base_url`"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("token_file"), "{}", r.stderr);
        assert!(r.stderr.contains("password_file"), "{}", r.stderr);
        assert!(r.stderr.contains("api_key_file"), "{}", r.stderr);
        for secret in ["hunter2pw", "sk-ant-tok3n", "alice:"] {
            assert!(
                !r.all().contains(secret),
                "{args:?} printed {secret}:\n{}",
                r.all()
            );
        }
    }
}
