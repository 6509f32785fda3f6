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

/// A small tmpfs mounted over a folder of the test, unmounted when dropped (also when
/// the test fails, so that its tempdir can go).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {out:?}");
        SmallDisk(dir.to_path_buf())
    }

    /// Writes until the disk is full; returns the file that holds it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.0.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_state_disk_is_reported_once_a_day_and_its_end_is_said() {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: this test mounts a small disk"
        );
        eprintln!("needs root to mount a small disk");
        return;
    }
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    let disk = SmallDisk::mount(&t.path("state"), "2m");
    t.write("app.log", ERROR_LINE);
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    assert_eq!(ntfy.messages().len(), 1, "the page");

    let filler = disk.fill();
    let failed = |m: &[Received]| {
        m.iter()
            .filter(|m| m.header("Title").unwrap().contains("logwarden run failed"))
            .count()
    };
    let second = ERROR_LINE
        .replace("10:00:00", "10:03:00")
        .replace("timeout", "refused");
    t.append("app.log", second.as_bytes());
    let r = t.run(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert_ne!(r.code, Some(0), "{}", r.all());
    assert!(
        r.stderr.contains("the failure was reported through ntfy"),
        "{}",
        r.all()
    );
    assert_eq!(failed(&ntfy.messages()), 1, "{:?}", ntfy.messages());
    // Every later failure of the day is told on the terminal, not on the phone.
    for now in ["10:10:00", "10:15:00", "16:00:00"] {
        let r = t.run(&["run", "--now", &format!("2026-11-22T{now}Z")]);
        assert_ne!(r.code, Some(0), "{}", r.all());
        assert!(
            r.stderr.contains("the next report waits a day"),
            "{}",
            r.all()
        );
    }
    assert_eq!(failed(&ntfy.messages()), 1, "{:?}", ntfy.messages());
    let r = t.run(&["run", "--now", "2026-11-23T10:06:00Z"]);
    assert_ne!(r.code, Some(0), "{}", r.all());
    assert_eq!(failed(&ntfy.messages()), 2, "a day later, again");
    let leftovers: Vec<String> = std::fs::read_dir(t.path("state"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Space again: the first run that works says so, and the error read meanwhile pages.
    std::fs::remove_file(filler).unwrap();
    let before = ntfy.messages().len();
    t.ok(&["run", "--now", "2026-11-23T10:11:00Z"]);
    let titles: Vec<String> = ntfy.messages()[before..]
        .iter()
        .map(|m| m.header("Title").unwrap().to_string())
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t.contains("logwarden is watching again")),
        "{titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.contains("Payment provider refused")),
        "nothing read while the disk was full is lost: {titles:?}"
    );
    t.ok(&["run", "--now", "2026-11-23T10:16:00Z"]);
    assert!(
        !ntfy.messages()[before..]
            .iter()
            .skip(titles.len())
            .any(|m| m.header("Title").unwrap().contains("watching again")),
        "said once"
    );
}
