//! Incidents that say the truth: severities an on-call person expects, titles with the
//! record's own values, front matter a YAML parser reads, quiet hours in a named zone,
//! metric pages whose charts, bands and titles match the data, current statuses in
//! "Related", readable file names, silences proposed without an investigator, and
//! signature ids that are the watcher's.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::util::*;

const T0: i64 = 1_795_000_000; // 2026-11-18T08:26:40Z

fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn script(t: &Test, name: &str, body: &str) {
    let p = format!("scripts/{name}");
    t.write(&p, body);
    std::fs::set_permissions(t.path(&p), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The YAML front matter of a page, parsed by PyYAML and returned as JSON.
fn front_matter(page: &std::path::Path) -> serde_json::Value {
    let py = python().expect("python with PyYAML (see .ci/run)");
    let out = Command::new(py)
        .arg("-c")
        .arg(
            "import sys, json, yaml\ntext = open(sys.argv[1], encoding='utf-8').read()\nassert text.startswith('---\\n'), text[:80]\nfm = text[4:].split('\\n---\\n', 1)[0]\nprint(json.dumps(yaml.safe_load(fm), default=str))\n",
        )
        .arg(page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyYAML could not read the front matter of {}: {}\n{}",
        page.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(page).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_error_pages_by_default_a_warning_waits_for_quiet_hours_and_a_source_can_say_otherwise() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    // The README's quiet hours, and a second source that maps ERROR to warning.
    t.config(&format!(
        "[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\n\
         [[source]]\nname = \"batch\"\npath = \"batch.log\"\nfrom = \"start\"\nseverity = {{ ERROR = \"warning\", WARNING = \"info\" }}\n\
         {}timezone = \"+01:00\"\n[ntfy.quiet_hours]\nwarning = \"22:00-07:00\"\ninfo = \"20:00-09:00\"\n[incidents]\nnag = {{ critical = \"off\" }}\n",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        "2026-11-22 22:00:00.000 | ERROR    | app.jobs:run:42 - Job 7 crashed\nTraceback (most recent call last):\n  File \"/srv/app/jobs.py\", line 42, in run\n    1 / 0\nZeroDivisionError: division by zero\n\
         2026-11-22 22:00:01.000 | WARNING  | app.http:serve:9 - Slow request GET /cart took 3.2s\n",
    );
    t.write(
        "batch.log",
        "2026-11-22 22:00:02.000 | ERROR    | batch.export:run:3 - Export of report 12 failed\n",
    );
    // 23:30 local time: inside both quiet hours
    let r = t.ok(&["run", "--now", "2026-11-22T22:30:00Z"]);
    assert!(
        r.stdout.contains("1 sent") && r.stdout.contains("2 held for quiet hours"),
        "{}",
        r.stdout
    );
    let m = ntfy.messages();
    assert_eq!(m.len(), 1);
    assert!(m[0].header("Title").unwrap().contains("Job 7 crashed"));
    assert_eq!(m[0].header("Priority"), Some("5"), "an ERROR pages");
    let by_title = |needle: &str| {
        t.incidents()
            .into_iter()
            .find(|i| i["title"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no incident {needle}"))
    };
    assert_eq!(by_title("Job 7 crashed")["severity"], "critical");
    assert_eq!(by_title("Slow request")["severity"], "warning");
    assert_eq!(by_title("Export of report")["severity"], "warning");
    // `check` shows the mapping of each source
    let check = t.ok(&["check"]).stdout;
    assert!(
        check.contains(
            "severity = { WARNING = \"warning\", ERROR = \"critical\", CRITICAL = \"critical\" }"
        ),
        "{check}"
    );
    assert!(
        check.contains(
            "severity = { WARNING = \"info\", ERROR = \"warning\", CRITICAL = \"critical\" }"
        ),
        "{check}"
    );
    // A bad mapping is a config error with its key.
    t.config("[[source]]\nname = \"app\"\npath = \"app.log\"\nseverity = { ERROR = \"urgent\", LOUD = \"critical\" }\n");
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    assert!(
        r.stderr.contains("`source[0].severity.ERROR`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("`source[0].severity.LOUD`"),
        "{}",
        r.stderr
    );
}

#[test]
fn quiet_hours_follow_a_named_zone_across_daylight_saving_time() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&format!(
        "{}timezone = \"Europe/Berlin\"\n[ntfy.quiet_hours]\nwarning = \"22:00-07:00\"\n",
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        "2026-07-01 20:00:00.000 | WARNING  | app:f:1 - Cache miss storm on shard 3\n",
    );
    // 20:30 UTC is 22:30 in Berlin in summer (+02:00): held; a fixed +01:00 would say 21:30
    let r = t.ok(&["run", "--now", "2026-07-01T20:30:00Z"]);
    assert!(r.stdout.contains("1 held for quiet hours"), "{}", r.stdout);
    assert!(ntfy.messages().is_empty());
    // 04:59 UTC is 06:59 in Berlin: still held; 05:00 UTC is 07:00: sent
    let r = t.ok(&["run", "--now", "2026-07-02T04:59:00Z"]);
    assert!(r.stdout.contains("1 held for quiet hours"), "{}", r.stdout);
    t.ok(&["run", "--now", "2026-07-02T05:00:00Z"]);
    assert_eq!(ntfy.messages().len(), 1);
    // In winter (+01:00) 20:30 UTC is 21:30 in Berlin: not quiet.
    t.append(
        "app.log",
        b"2026-12-01 20:00:00.000 | WARNING  | app:f:1 - Disk latency high on sdb\n",
    );
    let r = t.ok(&["run", "--now", "2026-12-01T20:30:00Z"]);
    assert!(r.stdout.contains("1 sent"), "{}", r.stdout);
    assert_eq!(ntfy.messages().len(), 2);
    assert!(t
        .ok(&["check"])
        .stdout
        .contains("timezone = \"Europe/Berlin\""));
}

#[test]
fn titles_show_the_first_records_values_redacted_and_tags_are_not_doubled() {
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    t.with_app_source(&ntfy.config("ops"));
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app.io:save:3 - Disk write failed: [Errno 28] No space left on device: '/data/export-17.csv'\n\
         2026-11-22 10:00:01.000 | ERROR    | app.io:save:3 - Disk write failed: [Errno 5] No space left on device: '/data/export-18.csv'\n\
         2026-11-22 10:00:02.000 | WARNING  | app.auth:login:8 - Login retry for https://bob:hunter2secret@db.internal/app attempt 3\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let m = ntfy.messages();
    assert_eq!(m.len(), 2);
    let disk = m
        .iter()
        .find(|m| m.header("Title").unwrap().contains("Disk write"))
        .unwrap();
    assert_eq!(
        disk.header("Title").unwrap(),
        "[test-host] Disk write failed: [Errno 28] No space left on device: '/data/export-17.csv'"
    );
    assert_eq!(shown_tags(disk), "rotating_light,critical");
    let login = m
        .iter()
        .find(|m| m.header("Title").unwrap().contains("Login retry"))
        .unwrap();
    let title = login.header("Title").unwrap();
    assert!(!title.contains("hunter2secret"), "{title}");
    assert!(
        title.contains("REDACTED") && title.contains("attempt 3"),
        "{title}"
    );
    assert_eq!(shown_tags(login), "warning");
    // the page keeps the template
    let page = t
        .incident_files()
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|p| p.contains("Disk write"))
        .unwrap();
    assert!(
        page.contains(
            "# Disk write failed: [Errno 28] No space left on device: '/data/export-17.csv'"
        ),
        "{page}"
    );
    assert!(page.contains("[Errno <*>]"), "{page}");
}

#[test]
fn file_names_transliterate_letters_outside_ascii() {
    let t = Test::new();
    t.with_app_source("");
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app:f:1 - Zahlung für Kunde fehlgeschlagen\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let files = t.incident_files();
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        name,
        "2026-11-22-incident-zahlung-fur-kunde-fehlgeschlagen.md"
    );
}

#[test]
fn front_matter_parses_with_a_yaml_parser_for_metric_and_hostile_incidents() {
    // PyYAML comes with loguru in the test venv (.ci/run); missing, this fails in CI
    if python().is_none() {
        return;
    }
    let t = Test::new();
    t.write(
        "app.log",
        "2026-11-18 08:00:00.000 | ERROR    | app:f:1 - Bad \"quoted\" value: C:\\temp\\x # not a comment\u{7f} {a: [b]} \u{85}end \u{1b}]52;c;eA==\u{7} \u{202e}txt.exe\n",
    );
    script(
        &t,
        "queue.sh",
        "#!/bin/sh\necho \"queue_depth{queue=\\\"mail\\\",kind=\\\"spool\\\"} 500\"\n",
    );
    t.with_app_source(
        "[metrics]\nscripts_dir = \"scripts\"\n[[check]]\nname = \"queue\"\nscript = \"queue.sh\"\nkind = \"queue\"\n[[check.rule]]\nmetric = 'queue_depth{kind=\"spool\"}'\nabove = 100\n",
    );
    t.ok(&["run", "--now", &rfc(T0)]);
    let incidents = t.incidents();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    let files = t.incident_files();
    assert_eq!(files.len(), 2);
    for f in &files {
        let fm = front_matter(f);
        let id = fm["id"].as_i64().unwrap();
        let inc = incidents.iter().find(|i| i["id"] == id).unwrap();
        assert_eq!(fm["signature"], inc["signature"], "{}", f.display());
        // A YAML reader decodes escapes: what it hands on must be free of what a
        // person must not receive raw (a notes app shows these fields as properties).
        for (k, v) in fm.as_object().unwrap() {
            if let Some(v) = v.as_str() {
                let bad: Vec<char> = v
                    .chars()
                    .filter(|c| {
                        c.is_control() && *c != '\n' || ('\u{2028}'..='\u{202e}').contains(c)
                    })
                    .collect();
                assert!(bad.is_empty(), "{k}: {v:?} holds {bad:?}");
            }
        }
        // the page's text is made safe for a terminal (DEL, NEL visible): compare the rest
        let title = fm["title"].as_str().unwrap();
        if inc["kind"] == "new-error" {
            assert!(
                title.starts_with("Bad \"quoted\" value: C:\\temp\\x # not a comment")
                    && title.contains("{a: [b]}"),
                "{title}"
            );
        } else {
            assert_eq!(title, inc["title"].as_str().unwrap());
        }
        assert_eq!(fm["status"], "open");
        assert_eq!(fm["occurrences"], 1);
    }
    let metric = incidents
        .iter()
        .find(|i| i["kind"] == "queue")
        .expect("a metric incident");
    assert_eq!(
        metric["signature"],
        "metric:queue:threshold:queue_depth{kind=\"spool\",queue=\"mail\"}"
    );
    // after an ack (lifecycle fields) the front matter still parses
    let id = metric["id"].as_i64().unwrap().to_string();
    t.ok(&["incidents", "ack", &id, "--now", &rfc(T0 + 60)]);
    for f in &files {
        let fm = front_matter(f);
        if fm["id"].as_i64().unwrap().to_string() == id {
            assert_eq!(fm["status"], "acked");
            assert!(fm["acked_by"].is_string());
        }
    }
}

#[test]
fn metrics_show_takes_a_label_subset_and_lists_candidates_when_ambiguous() {
    let t = Test::new();
    t.write("app.log", "");
    script(
        &t,
        "disk.sh",
        "#!/bin/sh\necho 'disk_used_percent{device=\"sda1\",mount=\"/\"} 41'\necho 'disk_used_percent{device=\"sdb1\",mount=\"/var\"} 77'\n",
    );
    t.with_app_source(
        "[metrics]\nscripts_dir = \"scripts\"\n[[check]]\nname = \"disk\"\nscript = \"disk.sh\"\n",
    );
    t.ok(&["metrics", "check", "--now", &rfc(T0)]);
    // the README's own example
    let r = t.ok(&[
        "metrics",
        "show",
        "disk_used_percent{mount=\"/\"}",
        "--now",
        &rfc(T0),
    ]);
    assert!(
        r.stdout
            .contains("disk_used_percent{device=\"sda1\",mount=\"/\"} (check `disk`)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("last 41"), "{}", r.stdout);
    assert!(!r.stdout.contains("sdb1"), "{}", r.stdout);
    // the full name still works
    let r = t.ok(&[
        "metrics",
        "show",
        "disk_used_percent{device=\"sdb1\",mount=\"/var\"}",
        "--now",
        &rfc(T0),
    ]);
    assert!(r.stdout.contains("last 77"), "{}", r.stdout);
    // several match: the candidates are listed
    let r = t.run(&["metrics", "show", "disk_used_percent", "--now", &rfc(T0)]);
    assert_ne!(r.code, Some(0), "{}", r.all());
    assert!(r.stderr.contains("matches 2 series"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("disk_used_percent{device=\"sda1\",mount=\"/\"}")
            && r.stderr
                .contains("disk_used_percent{device=\"sdb1\",mount=\"/var\"}"),
        "{}",
        r.stderr
    );
    let r = t.run(&["metrics", "show", "disk_used_percent{mount=\"/home\"}"]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("no metric"), "{}", r.stderr);
}

/// A queue script printing `queue_depth` samples with their own timestamps: two hours
/// of a spiky queue (0 and 150 in turn) ending at `end` with `last`.
fn spiky_queue(end: i64, last: u32) -> String {
    let mut s = String::from("#!/bin/sh\n");
    for i in 0..24 {
        let at = end - (23 - i) * 300;
        let v = if i == 23 {
            last
        } else if i % 2 == 0 {
            0
        } else {
            150
        };
        s.push_str(&format!(
            "echo 'queue_depth{{queue=\"mail\"}} {v} {}'\n",
            at * 1000
        ));
    }
    s
}

#[test]
fn metric_pages_fit_the_axis_to_the_data_clamp_the_band_and_follow_the_latest_value() {
    let t = Test::new();
    t.write("app.log", "");
    script(&t, "queue.sh", &spiky_queue(T0, 160));
    t.with_app_source(
        "[metrics]\nscripts_dir = \"scripts\"\n[[check]]\nname = \"queue\"\nscript = \"queue.sh\"\nkind = \"queue\"\n[[check.rule]]\nmetric = \"queue_depth\"\nabove = 140\ntitle = \"queue {queue} at {value}\"\n",
    );
    // a dry run reads and keeps nothing, and says so
    let r = t.ok(&["metrics", "check", "--dry-run", "--now", &rfc(T0)]);
    assert!(
        r.stdout.contains("read") && r.stdout.contains("not stored"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("stored in"), "{}", r.stdout);
    assert!(t.incidents().is_empty());

    t.ok(&["run", "--now", &rfc(T0)]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["title"], "queue mail at 160");
    let files = t.incident_files();
    let page = std::fs::read_to_string(&files[0]).unwrap();
    let band = page
        .lines()
        .find(|l| l.contains("normal band: "))
        .unwrap_or_else(|| panic!("{page}"));
    let lo = band.split("normal band: ").nth(1).unwrap();
    assert!(
        !lo.starts_with('-'),
        "a queue's band cannot be negative: {band}"
    );
    let stem = files[0].file_stem().unwrap().to_string_lossy().into_owned();
    let svg = t.read(&format!("incidents/{stem}.24h.svg"));
    assert!(!svg.contains("normal band -"), "{svg}");
    // two hours of data span the plot (x from 64 to 624), not its right twelfth
    let xs: Vec<f64> = svg
        .split("<polyline")
        .nth(1)
        .unwrap()
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .split(' ')
        .map(|p| p.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(xs[0] < 100.0, "first sample at x={}: {svg}", xs[0]);
    assert!(*xs.last().unwrap() > 600.0, "{xs:?}");

    // still breaching, at another value: the title follows it
    script(&t, "queue.sh", &spiky_queue(T0 + 300, 190));
    t.ok(&["run", "--now", &rfc(T0 + 300)]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["occurrences"], 2);
    assert_eq!(inc[0]["title"], "queue mail at 190");
    let page = std::fs::read_to_string(&files[0]).unwrap();
    assert!(page.contains("# queue mail at 190"), "{page}");
    assert!(page.contains("title: \"queue mail at 190\""), "{page}");
}

#[test]
fn related_pages_show_the_current_status_after_an_ack_from_the_shell() {
    let t = Test::new();
    t.with_app_source("");
    let line = |at: &str| {
        format!(
            "2026-11-22 {at}.000 | ERROR    | app.pay:charge:3 - Payment gateway refused card\n"
        )
    };
    t.write("app.log", &line("10:00:00"));
    t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    t.ok(&["incidents", "resolve", "1", "--now", "2026-11-22T10:02:00Z"]);
    t.append("app.log", line("11:00:00").as_bytes());
    t.ok(&["run", "--now", "2026-11-22T11:01:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{inc:?}");
    let first = t
        .incident_files()
        .into_iter()
        .find(|f| std::fs::read_to_string(f).unwrap().contains("\nid: 1\n"))
        .unwrap();
    let page = std::fs::read_to_string(&first).unwrap();
    assert!(page.contains("regressed as: [#2"), "{page}");
    assert!(page.contains("(open)"), "{page}");
    t.ok(&["incidents", "ack", "2", "--now", "2026-11-22T11:02:00Z"]);
    let page = std::fs::read_to_string(&first).unwrap();
    let related = page
        .lines()
        .find(|l| l.contains("regressed as: [#2"))
        .unwrap();
    assert!(related.ends_with("(acked)"), "{related}");
}

#[test]
fn the_briefing_proposes_silences_from_counts_and_recurrence_without_an_investigator() {
    let t = Test::new();
    t.with_app_source("");
    let mut log = String::new();
    for i in 0..30 {
        let (h, m) = (8 + i / 6, (i % 6) * 10);
        log.push_str(&format!(
            "2026-11-20 {h:02}:{m:02}:00.000 | WARNING  | app.http:serve:9 - Slow request GET /api/items/{} took {}.{}s\n",
            100 + i,
            2 + i % 3,
            i % 10
        ));
    }
    // one error that happened once is not proposed
    log.push_str(
        "2026-11-20 09:00:00.000 | ERROR    | app.db:q:1 - Deadlock detected in orders table\n",
    );
    t.write("app.log", &log);
    t.ok(&["run", "--now", "2026-11-20T14:00:00Z"]);
    let inc = t.incidents();
    assert_eq!(inc.len(), 2, "{inc:?}");
    let b = t.ok(&["briefing", "--now", "2026-11-23T09:00:00Z"]).stdout;
    let section = b
        .split("## Recurring noise")
        .nth(1)
        .unwrap()
        .split("## Real incidents")
        .next()
        .unwrap();
    assert!(section.contains("No investigator is configured"), "{b}");
    assert!(section.contains("Slow request"), "{section}");
    assert!(section.contains("30 occurrences over"), "{section}");
    assert!(section.contains("logwarden ignore add"), "{section}");
    assert!(!section.contains("Deadlock"), "{section}");
    assert!(!section.contains("Nothing recurred enough"), "{section}");
}

#[test]
fn signatures_of_loguru_records_are_the_watchers_and_paste_into_ignore_add() {
    let t = Test::new();
    t.with_app_source("");
    let log = "2026-11-22 10:00:00.000 | ERROR    | app.jobs:run:42 - Job 7 crashed after 3 retries\nTraceback (most recent call last):\n  File \"/srv/app/jobs.py\", line 42, in run\n    1 / 0\nZeroDivisionError: division by zero\n\
               2026-11-22 10:00:01.000 | WARNING  | app.http:serve:9 - Slow request GET /cart took 3.2s\n";
    t.write("app.log", log);
    t.ok(&["run", "--now", "2026-11-22T10:05:00Z"]);
    let mut watcher: Vec<String> = t
        .incidents()
        .iter()
        .map(|i| i["signature"].as_str().unwrap().to_string())
        .collect();
    watcher.sort();
    for args in [
        vec!["signatures"],
        vec!["signatures", "--config", "logwarden.toml"],
    ] {
        let text = t.piped(&args, log);
        let mut sigs: Vec<String> = text
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect();
        assert_eq!(sigs.len(), 2, "one line per record: {text}");
        sigs.sort();
        assert_eq!(sigs, watcher, "{args:?}: {text}");
        assert!(text.contains("Job <*> crashed after <*> retries"), "{text}");
    }
    // pasted into `ignore add --signature`, the rule silences the watcher's incident
    t.ok(&[
        "ignore",
        "add",
        ".",
        "--signature",
        &watcher[0],
        "--comment",
        "test",
    ]);
    let test = t.ok(&["ignore", "test", "--file", "app.log"]).stdout;
    assert!(test.contains("rule "), "{test}");
}

#[test]
fn check_prints_rules_and_incidents_as_toml_that_loads_again() {
    let t = Test::new();
    t.write("app.log", "");
    script(&t, "disk.sh", "#!/bin/sh\n");
    t.with_app_source(
        "[incidents]\nbriefing = \"mon 09:00\"\nspike_min = 30\n[metrics]\nscripts_dir = \"scripts\"\n[[check]]\nname = \"disk\"\nscript = \"disk.sh\"\n[[check.rule]]\nmetric = 'disk_used_percent{mount=\"/\"}'\nreaches = 100\nwithin = \"24h\"\ntitle = \"disk {mount} full in {eta}\"\n[[check.rule]]\nmetric = \"disk_used_percent\"\nabove = 90\nfor = 3\nseverity = \"critical\"\n[[check.rule]]\nmetric = \"load1\"\nanomaly = true\n",
    );
    let out: String = t
        .ok(&["check"])
        .stdout
        .lines()
        .filter(|l| *l != "config OK")
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(out.contains("\n[incidents]\n"), "{out}");
    assert!(out.contains("briefing = \"mon 09:00\""), "{out}");
    assert!(out.contains("spike_min = 30"), "{out}");
    assert!(
        !out.contains("Threshold {") && !out.contains("Some("),
        "{out}"
    );
    assert!(
        out.contains(
            "metric = \"disk_used_percent{mount=\\\"/\\\"}\"\nreaches = 100.0\nwithin = \"1d\""
        ),
        "{out}"
    );
    assert!(
        out.contains("above = 90.0\nfor = 3\nseverity = \"critical\""),
        "{out}"
    );
    // what `check` prints is a config that loads again, to the same effective config
    t.write("again.toml", &out);
    let again = t.ok(&["check", "--config", "again.toml"]).stdout;
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&again), body(&out));
}
