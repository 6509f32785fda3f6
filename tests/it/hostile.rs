//! Hostile input: huge lines, invalid UTF-8, NUL bytes, CRLF, a million errors in one
//! run, and files the service user may not read.

use crate::util::*;

fn line(level: &str, msg: &str) -> String {
    format!("2026-11-22 10:00:00.000 | {level:<8} | app.worker:handle:10 - {msg}\n")
}

#[test]
fn a_ten_megabyte_line_is_capped_and_counted() {
    let t = Test::new();
    t.with_app_source("");
    let mut text = line(
        "ERROR",
        &format!("Payload rejected: {}", "A".repeat(10 * 1024 * 1024)),
    );
    text += &line("ERROR", "After the big one");
    t.write("app.log", &text);
    let r = t.ok(&["run"]);
    assert!(r.stdout.contains("kept its first 65536"), "{}", r.stdout);
    assert_eq!(t.incidents().len(), 2, "{}", r.stdout);
    for f in t.incident_files() {
        assert!(
            std::fs::metadata(&f).unwrap().len() < 200_000,
            "{f:?} is capped"
        );
    }
}

/// A loguru JSON record longer than the line cap is cut before its own level; a level a
/// stranger put in its `extra` (a request body) must not read it as DEBUG and drop it.
#[test]
fn a_json_error_cut_at_the_cap_is_not_read_at_a_level_a_stranger_wrote() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"app\"\nkind = \"loguru-json\"\npath = \"app.json\"\nfrom = \"start\"\n",
    );
    t.loguru(
        r#"logger.add("app.json", serialize=True)
body = {"level": {"name": "DEBUG", "no": 5}, "pad": "x" * (9 * 1024 * 1024)}
logger.bind(body=body).error("payment failed for order 42")
logger.info("ok")"#,
    );
    let r = t.ok(&["run", "--now", "2030-01-01T00:00:00Z"]);
    assert!(r.stdout.contains("1 warnings/errors kept"), "{}", r.stdout);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{}", r.stdout);
    assert_eq!(inc[0]["level"], "ERROR");
    assert!(inc[0]["title"]
        .as_str()
        .unwrap()
        .starts_with("payment failed for order"));
}

#[test]
fn invalid_utf8_nul_bytes_and_crlf() {
    let t = Test::new();
    t.with_app_source("");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(
        b"2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Bad bytes \xff\xfe in name \xc3\x28\r\n",
    );
    bytes.extend_from_slice(b"2026-11-22 10:00:01.000 | ERROR    | app:f:2 - NUL \x00 inside\r\n");
    bytes.extend_from_slice(
        b"2026-11-22 10:00:02.000 | WARNING  | app:f:3 - Windows line ending\r\n",
    );
    t.write("app.log", "");
    t.append("app.log", &bytes);
    let r = t.ok(&["run"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 3, "{}", r.stdout);
    assert!(
        inc.iter()
            .any(|i| i["title"].as_str().unwrap().contains('\u{fffd}')),
        "lossy, not a crash: {inc:?}"
    );
    assert!(
        inc.iter()
            .all(|i| !i["title"].as_str().unwrap().ends_with('\r')),
        "CR stripped: {inc:?}"
    );
}

#[test]
fn a_million_errors_in_one_run_keep_memory_bounded_and_groups_right() {
    let t = Test::new();
    t.with_app_source("");
    {
        use std::io::Write;
        let f = std::fs::File::create(t.path("app.log")).unwrap();
        let mut w = std::io::BufWriter::new(f);
        for i in 0..1_000_000u32 {
            let msg = match i % 3 {
                0 => format!(
                    "Timeout after {}ms calling payments for order {}",
                    i % 997,
                    i
                ),
                1 => format!("Cache miss storm on shard {} ({} keys)", i % 16, i % 5000),
                _ => format!("User {} hit the rate limit on /api/v1/search", i),
            };
            w.write_all(line("ERROR", &msg).as_bytes()).unwrap();
        }
    }
    // The peak RSS is measured by a small Python parent: a child forked from this big,
    // busy test process would count the copy of its pages made by fork before exec.
    let py = python().expect("python");
    let out = std::process::Command::new(py)
        .env("LOGWARDEN_CONFIG", t.path("logwarden.toml"))
        .env("TZ", "UTC")
        .env_remove("LOGWARDEN_FAULT")
        .current_dir(t.dir.path())
        .args([
            "-c",
            "import resource, subprocess, sys\nr = subprocess.run(sys.argv[1:], capture_output=True, text=True)\nprint(r.returncode)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nprint(r.stdout)",
            BIN,
            "run",
            "--now",
            "2026-11-22T10:05:00Z",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let code: i32 = lines.next().unwrap().trim().parse().unwrap();
    let maxrss_kb: i64 = lines.next().unwrap().trim().parse().unwrap();
    let stdout: String = lines.collect::<Vec<_>>().join("\n");
    assert_eq!(code, 0, "{stdout}");
    let rss_mb = maxrss_kb / 1024;
    assert!(rss_mb < 128, "peak RSS {rss_mb} MB for a million errors");
    let inc = t.incidents();
    assert_eq!(inc.len(), 3, "{stdout}");
    for i in &inc {
        assert_eq!(
            i["occurrences"].as_u64().unwrap(),
            333_333 + u64::from(i["title"].as_str().unwrap().starts_with("Timeout")),
            "{i}"
        );
    }
}

#[test]
fn an_unreadable_file_is_an_error_for_its_source_only() {
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"secret\"\npath = \"secret.log\"\nfrom = \"start\"\n\n[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\n",
    );
    t.write("secret.log", &line("ERROR", "You cannot see me"));
    t.write("app.log", &line("ERROR", "Visible failure"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path("secret.log"), std::fs::Permissions::from_mode(0o600)).unwrap();
    open_up(t.dir.path());
    std::fs::set_permissions(t.path("app.log"), std::fs::Permissions::from_mode(0o644)).unwrap();
    t.give_to_nobody("state");
    t.give_to_nobody("incidents");
    let r = Run::from(t.command_as_nobody(&["run"]).output().unwrap());
    assert_eq!(r.code, Some(1), "{}", r.all());
    assert!(
        r.stdout.contains("source `secret`") && r.stdout.contains("Permission denied"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("1 new incidents"), "{}", r.all());
}

#[test]
fn a_bad_deploy_opening_hundreds_of_incidents_keeps_each_page_to_itself() {
    // A deploy that breaks everything opens many incidents in one run: each page links
    // only to its own kin (same signature, regressions), not to every run-mate, which
    // made pages and the run grow with the square of their number.
    let t = Test::new();
    t.with_app_source("");
    // One message from 56 modules: 56 signatures (the logger is part of a signature).
    let log: String = (0..56)
        .map(|i| {
            format!("2026-11-22 10:00:00.000 | ERROR    | app.stage{i}:run:7 - Stage failed after deploy\n")
        })
        .collect();
    t.write("app.log", &log);
    let r = t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    assert!(r.stdout.contains("56 new incidents"), "{}", r.stdout);
    let files = t.incident_files();
    assert_eq!(files.len(), 56);
    for f in files {
        let page = std::fs::read_to_string(&f).unwrap();
        assert!(!page.contains("## Related"), "{}: {page}", f.display());
    }
    let index = t.read("incidents/INDEX.md");
    assert_eq!(
        index.matches("incident-stage-failed").count(),
        56,
        "{index}"
    );
}

#[test]
fn a_reader_that_leaves_early_is_no_error() {
    // `logwarden … | head -1`: quiet, exit 0, whether print! or write! hit the closed pipe.
    let t = Test::new();
    t.with_app_source("");
    let mut log: String = (0..20_000)
        .map(|i| line("ERROR", &format!("Request {i} failed")))
        .collect();
    // and 300 incidents, so that their listing outgrows a pipe's buffer
    for i in 0..300 {
        log.push_str(&format!(
            "2026-11-22 10:00:00.000 | ERROR    | app.part{i}:run:7 - Part failed\n"
        ));
    }
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    for cmd in [
        "ignore test --file app.log",
        "incidents list --json --now 2026-11-22T10:05:00Z",
    ] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{BIN} {cmd} | head -c 10 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\""
            ))
            .env("LOGWARDEN_CONFIG", t.path("logwarden.toml"))
            .current_dir(t.dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.contains("status=0"), "{cmd}: {stdout} {stderr}");
        assert!(stderr.is_empty(), "{cmd}: {stderr}");
    }
}
