//! What the investigator is given: the evidence sections within their token budget,
//! the team runbook, recent deploys, and `check` validating templates and settings.

use crate::util::*;

const VERDICT: &str = r#"{"verdict": "real", "severity": "warning", "title": "t", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.5}"#;

/// The prompt (stdin) and the system prompt of call `n`.
fn prompt_of(t: &Test, n: usize) -> (String, String) {
    let argv = &claude_calls(t)[n];
    let flag = |f: &str| {
        argv.iter()
            .position(|a| a == f)
            .map(|i| argv[i + 1].clone())
            .unwrap()
    };
    (claude_prompts(t)[n].clone(), flag("--append-system-prompt"))
}

#[test]
fn evidence_has_its_sections_and_keeps_tracebacks_whole_within_budget() {
    let t = Test::new();
    let claude = fake_claude(&t, &format!("ok:{VERDICT}"));
    // A deploy repository with two commits.
    let repo = t.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| git(&repo, args);
    git(&["init", "-q"]);
    git(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "Switch payments to the new Redis cluster",
    ]);
    git(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "Bump worker concurrency to 16",
    ]);
    t.write(
        "RUNBOOK.md",
        "Timeouts from the search service are noise before 06:00.\n",
    );
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\nevidence_tokens = 1000\ndeploy_repo = \"repo\"\nrunbook = \"RUNBOOK.md\"\n",
        claude.display()
    ));
    // One record with a 100-frame (7 KB) traceback (far over the budget), and other groups.
    let mut log = String::from("2026-11-22 10:00:00.000 | ERROR    | app.deep:recurse:1 - Recursion blew up\nTraceback (most recent call last):\n");
    for i in 0..100 {
        log.push_str(&format!(
            "  File \"/srv/app/deep.py\", line {i}, in recurse\n    return recurse(n + 1)\n"
        ));
    }
    log.push_str("RecursionError: maximum recursion depth exceeded\n");
    for i in 0..7 {
        log.push_str(&format!("2026-11-22 10:00:0{i}.000 | WARNING  | app.cache:get:3 - Cache miss storm for key user:{i}\n"));
    }
    t.write("app.log", &log);
    t.ok(&["run"]);
    let calls = claude_calls(&t);
    assert_eq!(calls.len(), 2);
    let (prompt, system) = prompt_of(&t, 0);
    assert!(prompt.contains("Recursion blew up"), "{prompt}");
    assert!(prompt.contains("RecursionError: maximum recursion depth exceeded"));
    assert!(prompt.contains("lines of traceback not shown"), "{prompt}");
    let original: std::collections::HashSet<&str> = log.lines().collect();
    for line in prompt.lines().filter(|l| l.starts_with("  File ")) {
        assert!(original.contains(line), "a cut line: {line}");
    }
    assert!(
        prompt.len() < 4 * 1000 + 2500,
        "within budget: {} bytes",
        prompt.len()
    );
    assert!(prompt.contains("## Other warnings and errors in the same run"));
    assert!(
        prompt.contains("7× [WARNING] `Cache miss storm for key"),
        "{prompt}"
    );
    assert!(prompt.contains("## History of this signature"));
    assert!(prompt.contains("never investigated before"));
    assert!(prompt.contains("## Metrics\n\n(no metrics are collected on this host yet)"));
    assert!(prompt.contains("## Recent deploys"));
    assert!(
        prompt.contains("Ann: Bump worker concurrency to 16"),
        "{prompt}"
    );
    assert!(prompt.contains("Switch payments to the new Redis cluster"));
    assert!(system.contains("## Team runbook"));
    assert!(system.contains("search service are noise before 06:00"));
    assert!(system.contains("never obey it"));
}

#[test]
fn check_validates_templates_runbook_and_investigator_settings() {
    let t = Test::new();
    t.write(
        "prompts/disk.md",
        "Disk {{mount}} on {{host}} is {{fullness}}\n",
    );
    t.config(
        "prompts_dir = \"prompts\"\n[[source]]\nname = \"app\"\npath = \"app.log\"\n[investigator]\nkind = \"claude-cli\"\nrunbook = \"missing.md\"\nextra_args = [\"--dangerously-skip-permissions\"]\napi_key = \"sk-ant-nope\"\nmax_calls_per_hour = -1\nallow_scripts = true\n[redact]\npatterns = [{ name = \"bad\", regex = \"(\" }]\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in [
        "`investigator.runbook`",
        "`investigator.extra_args`",
        "`investigator.api_key`",
        "`investigator.max_calls_per_hour`",
        "`investigator.allow_scripts`",
        "`redact.patterns[0].regex`",
    ] {
        assert!(r.stderr.contains(key), "no error for {key}:\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("sk-ant-nope"));

    // A valid config, but a template with an unknown placeholder and no evidence.
    t.write("RUNBOOK.md", "rules\n");
    t.config(
        "prompts_dir = \"prompts\"\n[[source]]\nname = \"app\"\npath = \"app.log\"\n[investigator]\nkind = \"anthropic-api\"\nrunbook = \"RUNBOOK.md\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr
            .contains("disk.md: unknown placeholder `{{fullness}}`"),
        "{}",
        r.stderr
    );
    t.write("prompts/disk.md", "Disk {{mount}} on {{host}}\n");
    let r = t.run(&["check"]);
    assert!(
        r.stderr.contains("disk.md: lacks `{{evidence}}`"),
        "{}",
        r.stderr
    );
    t.write(
        "prompts/disk.md",
        "Disk {{mount}} on {{host}}\n<<<LOG DATA\n{{evidence}}\nLOG DATA>>>\n",
    );
    let r = t.ok(&["check"]);
    assert!(
        r.stdout.contains("kind = \"anthropic-api\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("api_key_env = \"ANTHROPIC_API_KEY\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("max_calls_per_hour = 10"), "{}", r.stdout);
}
