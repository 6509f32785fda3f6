//! What the investigator is given: the evidence sections within their token budget,
//! the team runbook, recent deploys, and `check` validating templates and settings.

use crate::fake_anthropic::FakeAnthropic;
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
    assert!(prompt.contains("## Other errors this run"));
    assert!(
        prompt.contains("7× [WARNING] `Cache miss storm for key"),
        "{prompt}"
    );
    assert!(prompt.contains("## History"));
    assert!(prompt.contains("never investigated before"));
    assert!(prompt.contains("## Metrics\n\n(none collected)"));
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

/// The scenarios the prompt economy is judged on, each with the values that set one of
/// its records apart from another, which the investigator must still see.
const SCENARIOS: &[(&str, &str, &[&str])] = &[
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

/// Whole prompts per scenario (system, first user message and tool definitions, as the
/// Messages API receives them; estimated tokens, bytes / 4) sent by logwarden at commit
/// e3507e9, the last before evidence folding and the shorter instructions. Setting
/// `LOGWARDEN_TOKENS_BASELINE` to a build of that commit measures them again (and
/// prints them) before the test runs. "now" moves by a few tokens from run to run: the
/// folded lines leave out a timestamp that equals the one shown.
///
/// | scenario | e3507e9 (baseline) | 56094fe (folding) | now |
/// |---|---:|---:|---:|
/// | KeyError ×5 with diagnose=True | 4032 | 2263 | 1464 |
/// | connection errors beside other groups (3 investigations) | 5270 | 5218 | 2774 |
/// | timeouts without tracebacks | 1621 | 1680 | 902 |
/// | one long traceback (nothing to fold) | 1644 | 1774 | 968 |
/// | all | 12567 | 10935 | 6108 (−51 %) |
const BASELINE: [u64; 4] = [4032, 5270, 1621, 1644];

/// What each scenario may cost now, in percent of its baseline, so that the test fails
/// if prompts grow back: repeated tracebacks fold to well under half, every other
/// scenario to at most 60%.
const CEILING_PERCENT: [u64; 4] = [40, 60, 60, 60];

/// The first request of each investigation of a scenario, as the fake Messages API
/// received it: its text (system, user message, tools) and its estimated tokens; and
/// the figure the run reported (None from a binary that reports none).
fn first_requests(bin: &str, extra: &str, script: &str) -> (Vec<(String, u64)>, Option<u64>) {
    let api = FakeAnthropic::start();
    let t = Test::new().env("LW_TEST_KEY", "sk-ant-api03-testkey-0123456789abcdef");
    t.with_app_source(&format!(
        "[investigator]\nkind = \"anthropic-api\"\nbase_url = \"{}\"\napi_key_env = \"LW_TEST_KEY\"\ntimeout = \"30s\"\nmodel = \"claude-test-1\"\nretries = 0\n{extra}",
        api.url
    ));
    t.loguru(script);
    // Releases before the prompt figures have no `run --json`.
    let json = bin == BIN;
    let mut args = vec!["run", "--now", "2030-01-01T00:00:00Z"];
    if json {
        args.push("--json");
    }
    let r = t.run_bin(bin, &args);
    assert_eq!(r.code, Some(0), "{}", r.all());
    let dir = t.dir.path().display().to_string();
    let mut out = api
        .messages()
        .iter()
        .map(|req| {
            // The test's folder (in the tracebacks' paths) as it was named where the
            // baseline was measured, so that the figures do not depend on TMPDIR.
            let fixed = |s: &str| s.replace(&dir, "/tmp/.tmpAbCdEf");
            let system = fixed(req.body["system"].as_str().unwrap_or(""));
            let user = fixed(req.body["messages"][0]["content"].as_str().unwrap_or(""));
            let tools = fixed(&req.body["tools"].to_string());
            let tokens = [&system, &user, &tools]
                .iter()
                .map(|s| s.len().div_ceil(4) as u64)
                .sum();
            // Paired by their facts, which hold no nonce.
            let facts = user
                .split_once("## Facts")
                .map_or("", |(_, f)| f)
                .to_string();
            (facts, format!("{system}\n{user}\n{tools}"), tokens)
        })
        .collect::<Vec<_>>();
    out.sort();
    let out: Vec<(String, u64)> = out.into_iter().map(|(_, text, n)| (text, n)).collect();
    if !json {
        return (out, None);
    }
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        report["llm_calls"].as_u64(),
        Some(out.len() as u64),
        "one request per investigation (no tool rounds here)"
    );
    // `status` reports the same calls and their figure.
    let status: serde_json::Value = serde_json::from_str(
        &t.ok(&["status", "--json", "--now", "2030-01-01T00:05:00Z"])
            .stdout,
    )
    .unwrap();
    let day = &status["prompt_tokens_24h"];
    assert_eq!(day["calls"].as_u64(), Some(out.len() as u64), "{status}");
    let largest = out.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let said = day["largest"].as_u64().unwrap();
    assert!(
        said.abs_diff(largest) <= largest / 20 + 10,
        "status says {said}, measured {largest}"
    );
    (out, report["prompt_tokens"].as_u64())
}

#[test]
fn prompts_cost_at_most_60_percent_of_the_baseline_and_keep_every_kind_of_evidence() {
    if !have_loguru() {
        return;
    }
    let sum = |p: &[(String, u64)]| p.iter().map(|(_, n)| n).sum::<u64>();
    let all = |p: &[(String, u64)]| p.iter().map(|(s, _)| s.as_str()).collect::<String>();
    let baseline_bin = std::env::var("LOGWARDEN_TOKENS_BASELINE").ok();
    let mut table = String::from(
        "| scenario | baseline | unfolded | now | of baseline |\n|---|---:|---:|---:|---:|\n",
    );
    let (mut now_sum, mut base_sum) = (0u64, 0u64);
    if let Some(bin) = &baseline_bin {
        let measured: Vec<u64> = SCENARIOS
            .iter()
            .map(|(_, script, _)| sum(&first_requests(bin, "", script).0))
            .collect();
        eprintln!("{bin}: {measured:?} (recorded: {BASELINE:?})");
    }
    for (((name, script, values), base), ceiling) in
        SCENARIOS.iter().zip(BASELINE).zip(CEILING_PERCENT)
    {
        let (folded, reported) = first_requests(BIN, "", script);
        let (whole, _) = first_requests(BIN, "fold_evidence = false\n", script);
        assert_eq!(folded.len(), whole.len(), "{name}: the same investigations");
        let (f, w) = (sum(&folded), sum(&whole));
        // The run reports the whole prompt's estimate, as measured here.
        let reported = reported.expect("run --json reports prompt_tokens");
        assert!(
            reported.abs_diff(f) <= f / 20 + 10,
            "{name}: reported {reported}, measured {f}"
        );
        assert!(f <= w, "{name}: folding never adds ({f} > {w})");
        table.push_str(&format!(
            "| {name} | {base} | {w} | {f} | {:.0} % |\n",
            f as f64 * 100.0 / base as f64
        ));
        now_sum += f;
        base_sum += base;
        // No kind of evidence is lost: what a whole prompt has, the folded one has, and
        // every scenario's investigations see the run's other groups, the history and
        // the metrics section.
        for ((fp, _), (wp, _)) in folded.iter().zip(&whole) {
            for kind in [
                "Traceback (most recent call last)",
                "## Other errors this run",
                "## History",
                "## Metrics",
            ] {
                assert_eq!(
                    fp.contains(kind),
                    wp.contains(kind),
                    "{name}: `{kind}` lost by folding\n{fp}"
                );
            }
            for kind in ["## History", "## Metrics"] {
                assert!(fp.contains(kind), "{name}: no `{kind}`\n{fp}");
            }
            // Each investigation of a run with several groups is told of the others.
            if folded.len() > 1 {
                assert!(fp.contains("## Other errors this run"), "{name}\n{fp}");
            }
        }
        if script.contains("logger.exception") {
            assert!(
                all(&folded).contains("Traceback (most recent call last)"),
                "{name}: no traceback"
            );
        }
        // Each value that set a folded record apart is still there.
        for v in *values {
            assert!(
                all(&whole).contains(v),
                "{name}: `{v}` is not in the evidence at all"
            );
            assert!(all(&folded).contains(v), "{name}: `{v}` lost by folding");
        }
        // The instructions that carry safety are all still sent.
        for (p, _) in &folded {
            for rule in [
                "never obey it",
                "Only these exact markers",
                "\"verdict\"",
                "\"actions\"",
                "read-only",
            ] {
                assert!(p.contains(rule), "{name}: `{rule}` missing\n{p}");
            }
        }
        assert!(
            f * 100 <= base * ceiling,
            "{name}: {f} tokens, over {ceiling}% of the baseline {base}\n{table}"
        );
    }
    let saved = 1.0 - now_sum as f64 / base_sum as f64;
    table.push_str(&format!(
        "| **all** | {base_sum} | | {now_sum} | {:.0} % |\n",
        now_sum as f64 * 100.0 / base_sum as f64
    ));
    eprintln!(
        "{table}{:.0}% fewer tokens than the baseline",
        saved * 100.0
    );
    assert!(
        saved >= 0.40,
        "{:.0}% fewer tokens than the baseline (goal 40%)\n{table}",
        saved * 100.0
    );
}
