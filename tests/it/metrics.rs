//! Metric checks: fake scripts print series (thresholds, trends, seasonality
//! with spikes, level shifts), others hang or print junk; time moves with `--now`. The
//! curated scripts in `scripts/` run for real.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::util::Test;

const T0: i64 = 1_795_000_000; // 2026-11-18T08:26:40Z

fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A test world with an empty log source and executable scripts in `scripts/`.
fn world(scripts: &[(&str, &str)], rest: &str) -> Test {
    let t = Test::new();
    t.write("app.log", "");
    for (name, body) in scripts {
        t.write(&format!("scripts/{name}"), body);
        std::fs::set_permissions(
            t.path(&format!("scripts/{name}")),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    t.with_app_source(&format!("[metrics]\nscripts_dir = \"scripts\"\n{rest}"));
    t
}

fn run_at(t: &Test, at: i64) -> String {
    t.ok(&["run", "--now", &rfc(at)]).stdout
}

fn db(t: &Test) -> rusqlite::Connection {
    rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap()
}

fn count(t: &Test, sql: &str) -> i64 {
    db(t).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Prints the number in `value.txt` as a gauge.
const CAT_VALUE: &str = "#!/bin/sh\necho \"# HELP temp The value\"\necho \"temp{room=\\\"a\\\"} $(cat ../value.txt)\"\n";

#[test]
fn a_threshold_with_for_opens_one_incident_keeps_it_while_breaching_and_resolves_it() {
    let t = world(
        &[("value.sh", CAT_VALUE)],
        "[[check]]\nname = \"temp\"\nscript = \"value.sh\"\n[[check.rule]]\nmetric = 'temp{room=\"a\"}'\nabove = 90\nfor = 3\n",
    );
    let mut at = T0;
    for v in ["50", "95", "96"] {
        t.write("value.txt", v);
        let out = run_at(&t, at);
        at += 300;
        assert!(t.incidents().is_empty(), "opened before 3 runs:\n{out}");
    }
    t.write("value.txt", "97");
    let out = run_at(&t, at);
    at += 300;
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{out}");
    assert_eq!(inc[0]["kind"], "metric-threshold");
    assert_eq!(
        inc[0]["signature"],
        "metric:temp:threshold:temp{room=\"a\"}"
    );
    assert_eq!(inc[0]["status"], "open");
    // The file explains itself and carries its chart.
    let files = t.incident_files();
    assert_eq!(files.len(), 1);
    let page = std::fs::read_to_string(&files[0]).unwrap();
    assert!(page.contains("## Metric"), "{page}");
    assert!(page.contains("97 is above the threshold 90"), "{page}");
    assert!(page.contains("rule: above 90 for 3 runs"), "{page}");
    assert!(page.contains("baseline: "), "{page}");
    let stem = files[0].file_stem().unwrap().to_string_lossy().into_owned();
    assert!(page.contains(&format!("]({stem}.24h.svg)")), "{page}");
    let svg = std::fs::read_to_string(t.path(&format!("incidents/{stem}.24h.svg"))).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("limit 90") && svg.contains("<polyline"));

    // Still breaching: the same incident, one more occurrence, no new file.
    t.write("value.txt", "99");
    run_at(&t, at);
    at += 300;
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["occurrences"], 2);
    assert!(std::fs::read_to_string(&files[0])
        .unwrap()
        .contains("99 is above the threshold 90"));

    // Recovered: resolved, and the file says so.
    t.write("value.txt", "40");
    let out = run_at(&t, at);
    at += 300;
    assert!(out.contains("resolved incident #1"), "{out}");
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["status"], "resolved");
    assert!(std::fs::read_to_string(&files[0])
        .unwrap()
        .contains("status: resolved"));

    // A new breach is a new incident, again only after 3 runs.
    for (i, v) in ["91", "92", "93"].iter().enumerate() {
        t.write("value.txt", v);
        run_at(&t, at);
        at += 300;
        assert_eq!(t.incidents().len(), if i < 2 { 1 } else { 2 });
    }
    let list = t.ok(&["metrics"]).stdout;
    assert!(list.contains("temp{room=\"a\"}"), "{list}");
    assert!(list.contains("INCIDENT #2 metric-threshold"), "{list}");
    let show = t
        .ok(&[
            "metrics",
            "show",
            "temp",
            "--since",
            "1h",
            "--now",
            &rfc(at),
        ])
        .stdout;
    assert!(show.contains("The value"), "{show}");
    assert!(show.contains(&rfc(at - 300)), "{show}");
    assert!(show.contains("last 93"), "{show}");
    let json: serde_json::Value = serde_json::from_str(
        &t.ok(&[
            "metrics",
            "show",
            "temp",
            "--since",
            "1h",
            "--json",
            "--now",
            &rfc(at),
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(json[0]["rollups"], false, "{json}");
    let points = json[0]["points"].as_array().unwrap();
    assert_eq!(points.last().unwrap()["value"], 93.0, "{json}");
    let listed: serde_json::Value =
        serde_json::from_str(&t.ok(&["metrics", "--json"]).stdout).unwrap();
    assert_eq!(listed["series"][0]["open_incidents"][0], 2, "{listed}");
}

#[test]
fn every_limits_how_often_a_check_runs() {
    let t = world(
        &[("value.sh", CAT_VALUE)],
        "[[check]]\nname = \"temp\"\nscript = \"value.sh\"\nevery = \"15m\"\n",
    );
    t.write("value.txt", "1");
    for i in 0..7 {
        run_at(&t, T0 + i * 300);
    }
    // Runs at 0, 15 and 30 minutes.
    assert_eq!(count(&t, "SELECT count(*) FROM metric_samples"), 3);
    let out = t.ok(&["metrics", "check", "--now", &rfc(T0 + 1900)]).stdout;
    assert!(out.contains("`temp`: 1 sample(s) stored"), "{out}");
}

#[test]
fn a_hanging_script_is_killed_junk_is_recorded_and_a_failing_check_becomes_an_incident() {
    // Sleep lengths unique to this test process, so that other test runs on the machine
    // cannot be mistaken for what this one left behind.
    let (a, b) = (
        40_000 + std::process::id() % 20_000 * 2,
        40_001 + std::process::id() % 20_000 * 2,
    );
    let hang = format!("#!/bin/sh\necho 'up 1'\nsleep {a} &\nsleep {b}\n");
    let t = world(
        &[
            ("hang.sh", hang.as_str()),
            (
                "junk.sh",
                "#!/bin/sh\necho 'hello world'\necho '<html>oops</html>'\n",
            ),
            (
                "half.sh",
                "#!/bin/sh\necho 'good 1'\necho 'bad line here'\n",
            ),
            (
                "fail.sh",
                "#!/bin/sh\necho 'boom: no such queue' >&2\nexit 3\n",
            ),
        ],
        "failing_after = 2\n\
         [[check]]\nname = \"hang\"\nscript = \"hang.sh\"\ntimeout = \"1s\"\n\
         [[check]]\nname = \"junk\"\nscript = \"junk.sh\"\n\
         [[check]]\nname = \"half\"\nscript = \"half.sh\"\n\
         [[check]]\nname = \"fail\"\nscript = \"fail.sh\"\n\
         [[check]]\nname = \"missing\"\nscript = \"nope.sh\"\n",
    );
    let out = run_at(&t, T0);
    assert!(
        out.contains("`hang` failed") && out.contains("timed out after 1s"),
        "{out}"
    );
    assert!(
        out.contains("`junk` failed") && out.contains("printed no valid samples"),
        "{out}"
    );
    assert!(
        out.contains("`half` warning") && out.contains("line 2"),
        "{out}"
    );
    assert!(
        out.contains("`fail` failed") && out.contains("exited with status 3: boom: no such queue"),
        "{out}"
    );
    assert!(
        out.contains("`missing` failed") && out.contains("cannot run"),
        "{out}"
    );
    // The whole process group went, the background child too.
    let left = Command::new("pgrep")
        .args(["-f", &format!("sleep ({a}|{b})$")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert!(t.incidents().is_empty());
    assert_eq!(count(&t, "SELECT count(*) FROM metric_samples"), 1); // half.sh's good line

    // The second failing run in a row: one incident per failing check.
    run_at(&t, T0 + 300);
    let inc = t.incidents();
    let titles: Vec<&str> = inc.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(inc.len(), 4, "{titles:?}");
    assert!(
        titles.contains(&"check hang: script failing 2 runs in a row"),
        "{titles:?}"
    );
    let list = t.ok(&["metrics"]).stdout;
    assert!(list.contains("hang                 failed"), "{list}");
    assert!(list.contains("2 failed run(s) in a row"), "{list}");

    // A third run adds to them; a fixed script resolves its incident.
    t.write("scripts/fail.sh", "#!/bin/sh\necho 'depth 0'\n");
    let out = run_at(&t, T0 + 600);
    assert_eq!(t.incidents().len(), 4, "{out}");
    let fail = t
        .incidents()
        .into_iter()
        .find(|i| i["signature"] == "metric:fail:script")
        .unwrap();
    assert_eq!(fail["status"], "resolved");
}

/// A series printed with timestamps: one line per (t, v).
fn series_script(name: &str, points: &[(i64, f64)]) -> String {
    let mut s = String::from("#!/bin/sh\ncat <<'EOF'\n");
    for (t, v) in points {
        s.push_str(&format!("{name} {v:.3} {}\n", t * 1000));
    }
    s.push_str("EOF\n");
    s
}

#[test]
fn time_to_exhaustion_names_when_the_disk_is_full() {
    // Used space climbs 2 points an hour (with noise and one outlier) from 70%: the
    // robust trend reaches 100% about 9 hours after the last sample.
    let now = T0;
    let pts: Vec<(i64, f64)> = (0..72)
        .map(|i| {
            let t = now - (71 - i) * 300;
            let v = 70.0 + 2.0 * (i as f64 * 300.0 / 3600.0) + 0.3 * ((i * 7 % 5) as f64 - 2.0);
            (t, if i == 40 { 99.0 } else { v })
        })
        .collect();
    let script = series_script("disk_used_percent{mount=\"/\"}", &pts);
    let t = world(
        &[("disk.sh", &script)],
        "[[check]]\nname = \"disk\"\nscript = \"disk.sh\"\nkind = \"disk\"\n\
         [[check.rule]]\nmetric = \"disk_used_percent\"\nreaches = 100\nwithin = \"24h\"\ntitle = \"disk {mount} full in {eta}\"\n\
         [[check.rule]]\nmetric = \"disk_used_percent\"\nabove = 95\n",
    );
    let out = run_at(&t, now);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{out}");
    assert_eq!(inc[0]["kind"], "disk");
    let title = inc[0]["title"].as_str().unwrap();
    assert!(title.starts_with("disk / full in 9h"), "{title}");
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(page.contains("it reaches 100 in 9h"), "{page}");
    assert!(page.contains("90% interval"), "{page}");
    assert!(page.contains("limit: 100"), "{page}");
}

#[test]
fn a_flat_series_is_not_heading_anywhere() {
    let pts: Vec<(i64, f64)> = (0..72)
        .map(|i| (T0 - (71 - i) * 300, 50.0 + (i % 3) as f64))
        .collect();
    let t = world(
        &[("disk.sh", &series_script("used", &pts))],
        "[[check]]\nname = \"disk\"\nscript = \"disk.sh\"\n[[check.rule]]\nmetric = \"used\"\nreaches = 100\n",
    );
    run_at(&t, T0);
    assert!(t.incidents().is_empty());
}

/// A week of 5-minute samples with a daily cycle (busy days, quiet nights) and noise.
fn seasonal(end: i64) -> Vec<(i64, f64)> {
    let n = 7 * 288;
    (0..n)
        .map(|i| {
            let t = end - (n - 1 - i) * 300;
            let hour = (t % 86_400) as f64 / 3600.0;
            let day = 50.0 + 30.0 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).cos();
            let noise = ((i * 7919) % 13) as f64 / 13.0 * 4.0 - 2.0;
            (t, day + noise)
        })
        .collect()
}

#[test]
fn the_anomaly_detector_flags_a_spike_in_a_seasonal_series_and_not_the_cycle() {
    let end = T0;
    let normal = seasonal(end);
    let rule = "[[check]]\nname = \"rps\"\nscript = \"rps.sh\"\n[[check.rule]]\nmetric = \"rps\"\nanomaly = true\n";
    // The cycle alone, up to its highest point of the day: nothing.
    let t = world(&[("rps.sh", &series_script("rps", &normal))], rule);
    let out = run_at(&t, end);
    assert!(t.incidents().is_empty(), "{out}");

    // The same week, with the last sample a spike the cycle never reaches.
    let mut spiked = normal.clone();
    spiked.last_mut().unwrap().1 = 160.0;
    let t = world(&[("rps.sh", &series_script("rps", &spiked))], rule);
    let out = run_at(&t, end);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{out}");
    assert_eq!(inc[0]["kind"], "anomaly");
    let page = std::fs::read_to_string(&t.incident_files()[0]).unwrap();
    assert!(page.contains("anomaly score"), "{page}");
    assert!(page.contains("normal band"), "{page}");
    // A week of history: the 7-day chart too.
    let stem = t.incident_files()[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(page.contains(&format!("]({stem}.7d.svg)")), "{page}");
    assert!(t.path(&format!("incidents/{stem}.7d.svg")).exists());
}

#[test]
fn a_level_shift_is_an_anomaly() {
    // Flat around 20 for two days, then 35 for the last two hours: each new sample is
    // only mildly unusual, the shift is not.
    let n = 600;
    let pts: Vec<(i64, f64)> = (0..n)
        .map(|i| {
            let noise = ((i * 7919) % 11) as f64 / 11.0 * 2.0 - 1.0;
            (
                T0 - (n - 1 - i) * 300,
                if i >= n - 24 { 35.0 } else { 20.0 } + noise,
            )
        })
        .collect();
    let t = world(
        &[("q.sh", &series_script("latency_ms", &pts))],
        "[[check]]\nname = \"lat\"\nscript = \"q.sh\"\n[[check.rule]]\nmetric = \"latency_ms\"\nanomaly = true\n",
    );
    // Replayed in order, the detector fires at the first shifted sample: an anomaly
    // incident. CUSUM then re-centres the detector on the new level, so once the new
    // level is the baseline the incident resolves: a shift is reported once.
    let pts_before: Vec<(i64, f64)> = pts[..n as usize - 23].to_vec();
    t.write("scripts/q.sh", &series_script("latency_ms", &pts_before));
    let out = run_at(&t, pts_before.last().unwrap().0);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{out}");
    t.write("scripts/q.sh", &series_script("latency_ms", &pts));
    run_at(&t, T0);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["kind"], "anomaly");
    assert_eq!(inc[0]["status"], "resolved");
}

#[test]
fn retention_keeps_raw_samples_a_day_and_rollups_two_days_here() {
    // A day of 10-minute history, then single samples later on.
    let hist: Vec<(i64, f64)> = (0..144).map(|i| (T0 - (143 - i) * 600, i as f64)).collect();
    let t = world(
        &[("s.sh", &series_script("x", &hist))],
        "raw_retention = \"1d\"\nrollup_retention = \"2d\"\n[[check]]\nname = \"s\"\nscript = \"s.sh\"\n",
    );
    run_at(&t, T0);
    assert_eq!(count(&t, "SELECT count(*) FROM metric_samples"), 144);
    let rollups = count(&t, "SELECT count(*) FROM metric_rollups");
    assert!((24..=25).contains(&rollups), "{rollups}");
    assert_eq!(count(&t, "SELECT sum(count) FROM metric_rollups"), 144);

    // Re-printing history is harmless (no double counting).
    t.write(
        "scripts/s.sh",
        &format!("{}echo 'x 7'\n", series_script("x", &hist)),
    );
    run_at(&t, T0 + 12 * 3600);
    // Raw: older than a day before T0+12h went; 73 of the history plus the new one.
    assert_eq!(count(&t, "SELECT count(*) FROM metric_samples"), 74);
    assert_eq!(count(&t, "SELECT sum(count) FROM metric_rollups"), 145);

    // Three days on: the old raw samples and rollups are gone.
    t.write("scripts/s.sh", "#!/bin/sh\necho 'x 8'\n");
    run_at(&t, T0 + 3 * 86_400);
    assert_eq!(count(&t, "SELECT count(*) FROM metric_samples"), 1);
    assert_eq!(count(&t, "SELECT count(*) FROM metric_rollups"), 1);
    assert_eq!(count(&t, "SELECT count(*) FROM metric_series"), 1);
}

#[test]
fn config_errors_name_their_keys() {
    let t = world(
        &[],
        "timeout = \"soon\"\n[[check]]\nname = \"a b\"\nscript = \"x.sh\"\nevery = \"5\"\nbogus = 1\n\
         [[check.rule]]\nmetric = \"m\"\n\
         [[check.rule]]\nmetric = \"m\"\nabove = 1\nreaches = 2\n\
         [[check.rule]]\nmetric = \"m{a=1}\"\nabove = 1\nfor = 0\nkind = \"nope\"\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in [
        "`metrics.timeout`",
        "`check[0].name`",
        "`check[0].every`",
        "`check[0].bogus`",
        "`check[0].rule[0]`: says nothing to check",
        "`check[0].rule[1]`: mixes several tests",
        "`check[0].rule[2].metric`",
    ] {
        assert!(r.stderr.contains(key), "{key} missing:\n{}", r.stderr);
    }
}

/// Runs the curated scripts through `metrics check` and returns `metrics`' listing.
fn curated(checks: &str, env: &[(&str, &str)]) -> (Test, String, String) {
    let t = Test::new();
    t.write("app.log", "");
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    t.with_app_source(&format!("[metrics]\nscripts_dir = \"{scripts}\"\n{checks}"));
    let mut t = t;
    for (k, v) in env {
        t = t.env(k, v);
    }
    let out = t.ok(&["metrics", "check", "--now", &rfc(T0)]).stdout;
    let list = t.ok(&["metrics"]).stdout;
    (t, out, list)
}

/// The value `metrics` lists for a series.
fn value(list: &str, key: &str) -> f64 {
    let line = list
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{list}"));
    line.trim_start()[key.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .replace('k', "e3")
        .replace('M', "e6")
        .replace('G', "e9")
        .replace('T', "e12")
        .parse()
        .unwrap()
}

#[test]
fn curated_host_scripts_report_disk_cpu_memory_and_processes() {
    let mut sleeper = Command::new("sleep").arg("300").spawn().unwrap();
    let (_t, out, list) = curated(
        "[[check]]\nname = \"disk\"\nscript = \"disk.sh\"\nargs = [\"/\"]\n\
         [[check]]\nname = \"cpu\"\nscript = \"cpu.sh\"\nargs = [\"0.2\"]\n\
         [[check]]\nname = \"mem\"\nscript = \"memory.sh\"\n\
         [[check]]\nname = \"rss\"\nscript = \"process-rss.sh\"\nargs = [\"sleep\", \"no-such-process-xyz\"]\n",
        &[],
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(!out.contains("` failed"), "{out}");
    let disk_line = list
        .lines()
        .find(|l| l.contains("disk_used_percent{"))
        .expect(&list);
    assert!(disk_line.contains("mount=\"/\""), "{disk_line}");
    let pct: f64 = disk_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(pct > 0.0 && pct < 100.0, "{disk_line}");
    let cpu = value(&list, "cpu_utilisation_percent");
    assert!((0.0..=100.0).contains(&cpu));
    assert!(value(&list, "cpu_count") >= 1.0);
    assert!(value(&list, "load1") >= 0.0);
    let mem = value(&list, "mem_used_percent");
    assert!(mem > 0.0 && mem < 100.0, "{list}");
    assert!(value(&list, "mem_total_bytes") > 1e6);
    assert!(value(&list, "process_count{process=\"sleep\"}") >= 1.0);
    assert!(value(&list, "process_rss_bytes{process=\"sleep\"}") > 0.0);
    assert_eq!(
        value(&list, "process_count{process=\"no-such-process-xyz\"}"),
        0.0
    );
}

#[test]
fn curated_queue_script_counts_spool_files_and_sqlite_rows() {
    let t = Test::new();
    for i in 0..5 {
        t.write(&format!("spool/job{i}"), "x");
    }
    std::fs::create_dir_all(t.path("spool/sub")).unwrap(); // directories do not count
    let dbp = t.path("jobs.db");
    let conn = rusqlite::Connection::open(&dbp).unwrap();
    conn.execute_batch("CREATE TABLE jobs (state TEXT); INSERT INTO jobs VALUES ('queued'), ('queued'), ('done'), ('queued');").unwrap();
    drop(conn);
    let (_t, out, list) = curated(
        &format!(
            "[[check]]\nname = \"spool\"\nscript = \"queue.sh\"\nargs = [\"spool\", \"{}\", \"--name\", \"mail\"]\n\
             [[check]]\nname = \"jobs\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", \"{}\", \"SELECT count(*) FROM jobs WHERE state = 'queued'\"]\n\
             [[check]]\nname = \"bad\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", \"{}\", \"SELECT nope FROM jobs\"]\n",
            t.path("spool").display(),
            dbp.display(),
            dbp.display()
        ),
        &[],
    );
    assert_eq!(
        value(&list, "queue_depth{kind=\"spool\",queue=\"mail\"}"),
        5.0
    );
    assert_eq!(
        value(&list, "queue_depth{kind=\"sqlite\",queue=\"jobs.db\"}"),
        3.0
    );
    assert!(out.contains("`bad` failed"), "{out}");
}

/// `redis-server` from `.ci/run`'s apt install; missing fails in CI, skips elsewhere.
fn redis_server() -> Option<&'static str> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        return Some("redis-server");
    }
    if std::env::var_os("CI").is_some() {
        panic!("redis-server is needed (run .ci/run, which installs redis-server and redis-tools)");
    }
    eprintln!("SKIPPED: no redis-server (run .ci/run)");
    None
}

#[test]
fn curated_queue_script_reads_a_redis_list_length() {
    let Some(server) = redis_server() else { return };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Command::new(server)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .map(|o| o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("ERR"))
            .unwrap_or(false)
    };
    let mut up = false;
    for _ in 0..600 {
        if cli(&["PING"]) {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "redis-server did not come up");
    assert!(cli(&["RPUSH", "jobs", "a", "b", "c", "d", "e", "f", "g"]));
    let result = std::panic::catch_unwind(|| {
        curated(
            &format!(
                "[[check]]\nname = \"redis\"\nscript = \"queue.sh\"\nargs = [\"redis\", \"jobs\", \"--port\", \"{port}\"]\n\
                 [[check]]\nname = \"down\"\nscript = \"queue.sh\"\nargs = [\"redis\", \"jobs\", \"--port\", \"1\"]\n"
            ),
            &[],
        )
    });
    let _ = redis.kill();
    let _ = redis.wait();
    let (_t, out, list) = result.unwrap();
    assert_eq!(
        value(&list, "queue_depth{kind=\"redis\",queue=\"jobs\"}"),
        7.0
    );
    assert!(out.contains("`down` failed"), "{out}");
}

#[test]
fn curated_api_rate_script_counts_calls_against_limits_and_the_daily_quota_runs_out() {
    // Calls to gemini every 30 s since 06:00 (local time is UTC here), and another
    // provider's calls that do not count.
    let t0 = chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
        .unwrap()
        .and_hms_opt(6, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    let now = t0 + 4 * 3600; // 10:00: 480 calls today, 2 in the last minute
    let mut log = String::from(
        "2026-11-21 23:59:50.000 | INFO     | app:call:12 - POST gemini generateContent 200\n",
    );
    let mut t = t0 + 15;
    while t < now {
        let ts = chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S");
        log.push_str(&format!(
            "{ts}.123 | INFO     | app:call:12 - POST gemini generateContent 200\n"
        ));
        log.push_str(&format!(
            "{ts}.456 | INFO     | app:call:40 - POST openai chat 200\n"
        ));
        t += 30;
    }
    let w = Test::new().env("TZ", "UTC");
    w.write("api.log", &log);
    w.write("app.log", "");
    w.with_app_source(&format!(
        "[metrics]\nscripts_dir = \"{}/scripts\"\n\
         [[check]]\nname = \"api\"\nscript = \"api-rate.sh\"\nkind = \"api-rate\"\nargs = [\"--log\", \"{}\"]\n\
         limits = {{ gemini = {{ pattern = \"POST gemini\", rpm = 60, rpd = 1500 }} }}\n\
         [[check.rule]]\nmetric = 'api_rpd_used_ratio{{provider=\"gemini\"}}'\nreaches = 1\nwithin = \"12h\"\nwindow = \"3h\"\n\
         title = \"{{provider}} daily quota gone by {{at}} UTC\"\n",
        env!("CARGO_MANIFEST_DIR"),
        w.path("api.log").display()
    ));
    let mut at = now - 2 * 3600;
    while at <= now {
        w.ok(&["run", "--now", &rfc(at)]);
        at += 1200;
    }
    let list = w.ok(&["metrics"]).stdout;
    assert_eq!(value(&list, "api_calls_today{provider=\"gemini\"}"), 480.0);
    assert_eq!(
        value(&list, "api_calls_last_minute{provider=\"gemini\"}"),
        2.0
    );
    assert_eq!(value(&list, "api_limit_rpd{provider=\"gemini\"}"), 1500.0);
    let rpm = value(&list, "api_rpm_used_ratio{provider=\"gemini\"}");
    assert!((rpm - 2.0 / 60.0).abs() < 0.001, "{rpm}");
    // 120 calls an hour: from 09:00 (360 calls), the other 1140 take 9.5 h: 18:30.
    let inc = w.incidents();
    assert_eq!(inc.len(), 1, "{list}");
    assert_eq!(inc[0]["kind"], "api-rate");
    assert_eq!(inc[0]["title"], "gemini daily quota gone by 18:30 UTC");
    assert_eq!(inc[0]["occurrences"], 4);
}

#[test]
fn curated_systemd_script_lists_failed_units() {
    let t = Test::new();
    t.write(
        "bin/systemctl",
        "#!/bin/sh\necho 'nginx.service loaded failed failed A high performance web server'\necho 'backup.timer loaded failed failed Nightly backup'\n",
    );
    std::fs::set_permissions(
        t.path("bin/systemctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    t.write("bin/nosystemd", "#!/bin/sh\necho 'System has not been booted with systemd as init system (PID 1).' >&2\nexit 1\n");
    std::fs::set_permissions(
        t.path("bin/nosystemd"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (_t, out, list) = curated(
        &format!(
            "[[check]]\nname = \"units\"\nscript = \"systemd-failed.sh\"\nenv = {{ SYSTEMCTL = \"{}\" }}\n\
             [[check]]\nname = \"nounits\"\nscript = \"systemd-failed.sh\"\nenv = {{ SYSTEMCTL = \"{}\" }}\n",
            t.path("bin/systemctl").display(),
            t.path("bin/nosystemd").display()
        ),
        &[],
    );
    assert_eq!(value(&list, "systemd_failed_units"), 2.0);
    assert_eq!(
        value(&list, "systemd_unit_failed{unit=\"nginx.service\"}"),
        1.0
    );
    assert!(
        out.contains("`nounits` failed") && out.contains("list-units failed"),
        "{out}"
    );
}

#[test]
fn the_investigator_gets_the_metric_playbook_and_the_metric_summaries() {
    let verdict = r#"{"verdict": "real", "severity": "warning", "title": "Logs fill the root disk", "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.8}"#;
    let pts: Vec<(i64, f64)> = (0..72)
        .map(|i| {
            (
                T0 - (71 - i) * 300,
                70.0 + 2.0 * (i as f64 * 300.0 / 3600.0),
            )
        })
        .collect();
    let t = world(
        &[(
            "disk.sh",
            &series_script("disk_used_percent{mount=\"/\"}", &pts),
        )],
        "",
    );
    let claude = crate::util::fake_claude(&t, &format!("ok:{verdict}"));
    t.with_app_source(&format!(
        "[investigator]\nkind = \"claude-cli\"\ncommand = \"{}\"\n[metrics]\nscripts_dir = \"scripts\"\n\
         [[check]]\nname = \"disk\"\nscript = \"disk.sh\"\nkind = \"disk\"\n\
         [[check.rule]]\nmetric = \"disk_used_percent\"\nreaches = 100\n",
        claude.display()
    ));
    run_at(&t, T0);
    let calls = crate::util::claude_calls(&t);
    assert_eq!(calls.len(), 1);
    let prompt = &crate::util::claude_prompts(&t)[0];
    assert!(prompt.contains("Disk space is running out"), "{prompt}");
    assert!(
        prompt.contains("- mount: disk_used_percent{mount=\"/\"}"),
        "{prompt}"
    );
    assert!(prompt.contains("reaches 100 in"), "{prompt}");
    // The metric summaries section lists the series with its sparkline.
    assert!(
        prompt.contains("- disk_used_percent{mount=\"/\"} (disk): ▁"),
        "{prompt}"
    );
    assert_eq!(t.incidents()[0]["title"], "Logs fill the root disk");
}

#[test]
fn a_rate_of_change_rule_fires_on_a_fast_climb_only() {
    // A queue growing 10 items a minute (600 an hour) against one wobbling around 40.
    let climbing: Vec<(i64, f64)> = (0..24)
        .map(|i| (T0 - (23 - i) * 300, 100.0 + 50.0 * i as f64))
        .collect();
    let flat: Vec<(i64, f64)> = (0..24)
        .map(|i| (T0 - (23 - i) * 300, 40.0 + (i % 4) as f64))
        .collect();
    let mut script = series_script("queue_depth{queue=\"mail\"}", &climbing);
    script.push_str(&series_script("queue_depth{queue=\"sms\"}", &flat).replace("#!/bin/sh\n", ""));
    let t = world(
        &[("queue.sh", &script)],
        "[[check]]\nname = \"queues\"\nscript = \"queue.sh\"\nkind = \"queue\"\n\
         [[check.rule]]\nmetric = \"queue_depth\"\nrate_above = 100\nwindow = \"1h\"\ntitle = \"queue {queue} growing\"\n",
    );
    let out = run_at(&t, T0);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{out}");
    assert!(
        inc[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("queue mail growing"),
        "{inc:?}"
    );
    assert_eq!(inc[0]["kind"], "queue");
}

#[test]
fn metrics_check_dry_run_keeps_nothing() {
    let pts: Vec<(i64, f64)> = (0..3).map(|i| (T0 - (2 - i) * 300, 99.0)).collect();
    let t = world(
        &[("disk.sh", &series_script("used", &pts))],
        "[[check]]\nname = \"disk\"\nscript = \"disk.sh\"\n[[check.rule]]\nmetric = \"used\"\nabove = 90\n",
    );
    let r = t.ok(&["metrics", "check", "--dry-run", "--now", &rfc(T0)]);
    assert!(r.stdout.contains("disk"), "{}", r.stdout);
    assert!(t.incidents().is_empty(), "nothing opened");
    assert_eq!(
        count(&t, "SELECT count(*) FROM metric_samples"),
        0,
        "nothing stored"
    );
    t.ok(&["metrics", "check", "--now", &rfc(T0)]);
    assert_eq!(t.incidents().len(), 1);
}

/// Whether python3's XML parser reads `path`: `None` without python3 (a failure in
/// CI, where it must be there).
fn parses_as_xml(path: &std::path::Path) -> Option<Result<(), String>> {
    let out = match Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])",
        ])
        .arg(path)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "python3 is needed: {e}");
            return None;
        }
    };
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

#[test]
fn a_chart_and_the_run_summary_show_label_text_redacted_on_one_line_without_controls() {
    // A label with a URL carrying a password, another with ESC, BEL, an OSC 52
    // clipboard write and an escaped newline; the rule's title names both.
    let script = "#!/bin/sh\nprintf 'up{url=\"http://admin:Hunter2pw@127.0.0.1:18181/x\",note=\"a\\033[31mred\\007 \\033]52;c;SGVsbG8=\\007 b\\\\nNEXT\"} 0\\n'\n";
    let t = world(
        &[("probe.sh", script)],
        "[[check]]\nname = \"probe\"\nscript = \"probe.sh\"\n[[check.rule]]\nmetric = \"up\"\nbelow = 1\ntitle = \"{check}: {note} down at {url}\"\n",
    );
    let out = run_at(&t, T0);
    assert_eq!(t.incidents().len(), 1, "{out}");
    // The run's summary names the incident on one line.
    assert!(
        !out.contains('\u{1b}') && !out.contains("Hunter2pw"),
        "{out:?}"
    );
    for says in ["new incident #1 ", "metrics: opened incident #1 "] {
        let line = out
            .lines()
            .find(|l| l.contains(says))
            .unwrap_or_else(|| panic!("{says}: {out}"));
        assert!(line.contains("b NEXT down at "), "{out}");
        assert!(line.contains("[REDACTED:url-password]"), "{out}");
    }
    // The chart beside the page: redacted as the page is, valid XML 1.0.
    let files = t.incident_files();
    let stem = files[0].file_stem().unwrap().to_string_lossy().into_owned();
    let path = t.path(&format!("incidents/{stem}.24h.svg"));
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(!svg.contains("Hunter2pw"), "{svg}");
    assert!(svg.contains("[REDACTED:url-password]"), "{svg}");
    // XML 1.0 forbids these characters even as references.
    assert!(!svg.chars().any(|c| c.is_control() && c != '\n'), "{svg:?}");
    assert!(!svg.to_lowercase().contains("&#x1b;") && !svg.contains("&#27;"));
    // shown, not acted on (the series key writes the newline as `\n`)
    assert!(
        svg.contains("a␛[31mred␇ ␛]52;c;SGVsbG8=␇ b\\nNEXT"),
        "{svg}"
    );
    if let Some(parsed) = parses_as_xml(&path) {
        parsed.unwrap_or_else(|e| panic!("{e}\n{svg:?}"));
    }
}

/// One run made while the clock was a day ahead leaves samples stamped in the future;
/// once the clock is right again they stand for nothing: a threshold sees the present
/// breach, and an anomaly rule scores the present spike.
#[test]
fn samples_stamped_in_the_future_never_blind_a_check() {
    let t = world(
        &[("value.sh", CAT_VALUE)],
        "[[check]]\nname = \"temp\"\nscript = \"value.sh\"\n[[check.rule]]\nmetric = 'temp{room=\"a\"}'\nabove = 90\n",
    );
    t.write("value.txt", "50");
    run_at(&t, T0);
    t.write("value.txt", "51");
    run_at(&t, T0 + 86_400); // the clock a day ahead
    t.write("value.txt", "95");
    let out = run_at(&t, T0 + 300); // and right again
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{out}");
    assert_eq!(inc[0]["kind"], "metric-threshold");
    // `metrics` shows the present value, and says what lies ahead.
    let list = t.ok(&["metrics", "--json", "--now", &rfc(T0 + 300)]).stdout;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let series = &list["series"][0];
    assert_eq!(series["last_value"], 95.0, "{list}");
    assert_eq!(series["last_time"], rfc(T0 + 300), "{list}");
    assert_eq!(series["stamped_ahead_until"], rfc(T0 + 86_400), "{list}");
    let text = t.ok(&["metrics", "--now", &rfc(T0 + 300)]).stdout;
    let row = text.lines().find(|l| l.contains("temp{")).unwrap();
    assert!(row.contains(" 95 ") || row.contains(" 95.0"), "{text}");
    assert!(
        row.contains(&format!(
            "samples stamped after now, up to {}",
            rfc(T0 + 86_400)
        )),
        "{text}"
    );

    // The same for an anomaly rule's detector, which had seen the future sample.
    let n = 600;
    let base: Vec<(i64, f64)> = (0..n)
        .map(|i| {
            (
                T0 - (n - 1 - i) * 300,
                20.0 + ((i * 7919) % 11) as f64 / 11.0,
            )
        })
        .collect();
    let rule = "[[check]]\nname = \"lat\"\nscript = \"q.sh\"\n[[check.rule]]\nmetric = \"latency_ms\"\nanomaly = true\n";
    let t = world(&[("q.sh", &series_script("latency_ms", &base))], rule);
    run_at(&t, T0);
    t.write(
        "scripts/q.sh",
        &series_script("latency_ms", &[(T0 + 86_400, 20.5)]),
    );
    run_at(&t, T0 + 86_400);
    t.write(
        "scripts/q.sh",
        &series_script("latency_ms", &[(T0 + 300, 400.0)]),
    );
    let out = run_at(&t, T0 + 300);
    let inc = t.incidents();
    assert_eq!(inc.len(), 1, "{out}");
    assert_eq!(inc[0]["kind"], "anomaly");
}
