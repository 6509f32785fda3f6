//! Self-monitoring: the node_exporter textfile after each run, and a failed run
//! reported through ntfy.

use crate::util::*;

const ERROR_LINE: &str = "2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:42 - Payment provider timeout for order 1234\n";

/// The value of a metric line `name value`.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn textfile_has_the_run_figures_and_keeps_the_last_success_when_a_run_fails() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let prom = "metrics/logwarden.prom";
    std::fs::create_dir_all(t.path("metrics")).unwrap();
    let config = |state: &str| {
        format!(
            "state_dir = \"{state}\"\nincidents_dir = \"incidents\"\nignore_file = \"ignore.toml\"\nhostname = \"test-host\"\nmetrics_textfile = \"{prom}\"\n[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\n{}",
            ntfy.config("ops")
        )
    };
    t.write("logwarden.toml", &config("state"));
    t.write("app.log", ERROR_LINE);
    ntfy.fail_next(&[503, 503, 503]); // three attempts
    let now = "2026-11-22T10:05:00Z";
    t.ok(&["run", "--now", now]);
    let text = t.read(prom);
    let at = chrono::DateTime::parse_from_rfc3339(now)
        .unwrap()
        .timestamp() as f64;
    assert_eq!(
        metric(&text, "logwarden_last_run_success"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(metric(&text, "logwarden_lines_read"), Some(1.0), "{text}");
    assert_eq!(
        metric(&text, "logwarden_open_incidents"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "logwarden_notify_failures"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "logwarden_outbox_backlog"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(metric(&text, "logwarden_llm_calls"), Some(0.0), "{text}");
    assert_eq!(metric(&text, "logwarden_llm_cost_usd"), Some(0.0), "{text}");
    assert_eq!(
        metric(&text, "logwarden_last_success_timestamp_seconds"),
        Some(at),
        "{text}"
    );
    assert!(
        metric(&text, "logwarden_run_duration_seconds").is_some(),
        "{text}"
    );
    assert!(text.contains("# TYPE logwarden_lines_read gauge"), "{text}");
    // no temporary file left behind
    let names: Vec<_> = std::fs::read_dir(t.path("metrics"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["logwarden.prom".to_string()]);
    // a dry run does not touch it
    t.ok(&["run", "--dry-run", "--now", "2026-11-22T10:07:00Z"]);
    assert_eq!(t.read(prom), text);

    // Now the state dir cannot be created: the run fails, and says so on ntfy.
    t.write("blocker", "a file where a folder should be\n");
    t.write("logwarden.toml", &config("blocker/state"));
    let r = t.run(&["run", "--now", "2026-11-22T10:10:00Z"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains("the failure was reported through ntfy"),
        "{}",
        r.all()
    );
    let failed = t.read(prom);
    assert_eq!(
        metric(&failed, "logwarden_last_run_success"),
        Some(0.0),
        "{failed}"
    );
    assert_eq!(
        metric(&failed, "logwarden_last_success_timestamp_seconds"),
        Some(at),
        "the last success is kept: {failed}"
    );
    let m = ntfy.messages();
    let alert = m
        .iter()
        .find(|m| {
            m.header("Title")
                .is_some_and(|t| t.contains("logwarden run failed"))
        })
        .unwrap_or_else(|| panic!("no failure notification in {m:?}"));
    assert!(alert.header("Title").unwrap().contains("test-host"));
    assert!(alert.body.contains("blocker"), "{}", alert.body);
}

#[test]
fn a_failed_run_without_ntfy_still_fails_plainly() {
    let t = Test::new();
    t.write("blocker", "x");
    t.write(
        "logwarden.toml",
        "state_dir = \"blocker/state\"\nignore_file = \"ignore.toml\"\n[[source]]\nname = \"app\"\npath = \"app.log\"\n",
    );
    let r = t.run(&["run"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("cannot create"), "{}", r.all());
    assert!(!r.stderr.contains("ntfy"), "{}", r.all());
}

#[test]
fn metrics_textfile_must_be_a_prom_file() {
    let t = Test::new();
    t.with_app_source("");
    let text = t.read("logwarden.toml").replace(
        "hostname = \"test-host\"\n",
        "hostname = \"test-host\"\nmetrics_textfile = \"/tmp/logwarden.txt\"\n",
    );
    t.write("logwarden.toml", &text);
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(r.stderr.contains("`metrics_textfile`"), "{}", r.all());
}
