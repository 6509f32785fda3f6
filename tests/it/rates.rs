//! Log rates as metric series, end to end: the real loguru writes an `api` service's
//! log in pieces, one per run two hours apart (`--now` advancing); each run records
//! the records per minute of each level as `log_records{level,source}`. Four quiet
//! days of about 10 ERRORs an hour, then two days in which the rate creeps up to three
//! times that: a `[[check]]` with `logs = true` opens one metric incident, with its
//! chart, during the creep and none before. Idle runs add no rows; a source that read
//! lines writes 0 for its known levels that saw none.

use crate::util::*;

/// 2026-11-16T00:00:00Z, a Monday.
const T0: i64 = 1_794_787_200;
const RUN: i64 = 2 * 3600;
const QUIET_RUNS: usize = 48;
const CREEP_RUNS: usize = 24;

fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn count(t: &Test, sql: &str) -> i64 {
    rusqlite::Connection::open(t.path("state/logwarden.db"))
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// ERRORs in the two hours before run `i`: about 20 (18 to 22), then from the creep's
/// start a steady climb to 60.
fn errors_before(i: usize) -> usize {
    let wobble = [0, 2, -1, 1, -2, 0, 1, -1][i % 8];
    let base = (20 + wobble) as usize;
    if i < QUIET_RUNS {
        base
    } else {
        base + 40 * (i - QUIET_RUNS + 1) / CREEP_RUNS
    }
}

/// Writes, with loguru, the records of every run into `chunks/<i>.log` (stamped within
/// the two hours before it): INFO traffic, a few WARNINGs (none in runs 10 and 11),
/// the ERRORs (each with its traceback). Run `i` appends its chunk to `api.log`.
fn write_chunks(t: &Test, runs: usize) {
    let plan: Vec<String> = (0..runs)
        .map(|i| {
            let warnings = if i == 10 || i == 11 { 0 } else { 3 };
            format!(
                "({}, {}, {warnings})",
                T0 + i as i64 * RUN,
                errors_before(i)
            )
        })
        .collect();
    t.loguru(&format!(
        "from datetime import datetime, timezone, timedelta\n\
         os.makedirs('chunks', exist_ok=True)\n\
         def fail(n):\n    raise TimeoutError(f'upstream {{n}}')\n\
         for i, (at, errors, warnings) in enumerate([{plan}]):\n\
         \x20   sink = logger.add(f'chunks/{{i}}.log')\n\
         \x20   base = datetime.fromtimestamp(at - 7000, timezone.utc)\n\
         \x20   k = [0]\n\
         \x20   def stamp(r):\n\
         \x20       r.update(time=r['time'] + (base + timedelta(seconds=k[0]) - r['time']))\n\
         \x20       k[0] += 1\n\
         \x20   log = logger.patch(stamp)\n\
         \x20   for j in range(40):\n\
         \x20       log.info('Served request {{}} in 12 ms', j)\n\
         \x20   for j in range(warnings):\n\
         \x20       log.warning('Cache miss for key {{}}', j)\n\
         \x20   for j in range(errors):\n\
         \x20       try:\n\
         \x20           fail(j)\n\
         \x20       except Exception:\n\
         \x20           log.exception('Payment provider timed out for order {{}}', j)\n\
         \x20   logger.remove(sink)\n",
        plan = plan.join(", ")
    ));
}

#[test]
fn a_creeping_error_rate_opens_one_metric_incident_with_a_chart() {
    if python().is_none() {
        return;
    }
    let t = Test::new();
    t.write("api.log", "");
    t.config(
        "[[source]]\nname = \"api\"\npath = \"api.log\"\nfrom = \"start\"\n\
         [incidents]\nnag = { critical = \"off\" }\n\
         [[check]]\nname = \"api-errors\"\nlogs = true\n\
         [[check.rule]]\nmetric = 'log_records{source=\"api\",level=\"ERROR\"}'\nanomaly = true\n\
         title = \"ERRORs in {source} are unusual at {value}/min\"\n\
         [[check.rule]]\nmetric = 'log_records{source=\"api\",level=\"ERROR\"}'\nrate_above = 0.004\nwindow = \"24h\"\nfor = 3\n\
         title = \"ERRORs in {source} are creeping up\"\n",
    );
    t.ok(&["check"]);
    let runs = QUIET_RUNS + CREEP_RUNS;
    write_chunks(&t, runs);
    let metric_incidents = |t: &Test| -> Vec<serde_json::Value> {
        t.incidents()
            .into_iter()
            .filter(|i| i["source"] == "check:api-errors")
            .collect()
    };
    let key = "log_records{level=\"ERROR\",source=\"api\"}";
    let mut opened_at = Vec::new();
    let mut summaries = String::new();
    for i in 0..runs {
        let at = T0 + i as i64 * RUN;
        t.append("api.log", t.read(&format!("chunks/{i}.log")).as_bytes());
        let out = t.ok(&["run", "--now", &rfc(at)]).stdout;
        summaries.push_str(&format!("--- run {i}\n{out}"));
        let n = metric_incidents(&t).len();
        if n > opened_at.len() {
            opened_at.push(i);
        }
        if i == 0 {
            // The first run has no interval yet: no rate.
            assert_eq!(count(&t, "SELECT count(*) FROM metric_samples"), 0);
        }
        if i == 12 {
            // No WARNING in runs 10 and 11, while the source logged: zeros.
            let w = t.ok(&[
                "metrics",
                "show",
                "log_records{level=\"WARNING\",source=\"api\"}",
                "--since",
                "7d",
                "--now",
                &rfc(at),
                "--json",
            ]);
            let v: serde_json::Value = serde_json::from_str(&w.stdout).unwrap();
            let values: Vec<f64> = v[0]["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_f64().unwrap())
                .collect();
            assert_eq!(values.len(), 12, "{values:?}");
            assert_eq!(&values[9..11], &[0.0, 0.0], "{values:?}");
            assert!((values[11] - 3.0 / 120.0).abs() < 1e-9, "{values:?}");
        }
        if i == QUIET_RUNS - 1 {
            assert!(
                opened_at.is_empty(),
                "a metric incident in the quiet days (run {opened_at:?})\n{summaries}"
            );
            // An idle run (nothing new in the log) adds no sample and feeds no detector.
            let samples = count(&t, "SELECT count(*) FROM metric_samples");
            let fed = count(&t, "SELECT max(last_ts) FROM metric_detectors");
            t.ok(&["run", "--now", &rfc(at + 600)]);
            assert_eq!(count(&t, "SELECT count(*) FROM metric_samples"), samples);
            assert_eq!(count(&t, "SELECT max(last_ts) FROM metric_detectors"), fed);
        }
    }
    let found = metric_incidents(&t);
    assert!(
        !found.is_empty() && opened_at.iter().all(|&i| i >= QUIET_RUNS),
        "the creep opened no metric incident, or one too early: {opened_at:?}\n{summaries}"
    );
    // One incident per rule: a breach is one incident, not one per run.
    let mut kinds: Vec<&str> = found.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["anomaly", "metric-threshold"], "{found:#?}");
    for inc in &found {
        assert_eq!(
            inc["template"].as_str().unwrap().split(' ').next(),
            Some(key)
        );
    }
    // The page has the metric section and its charts.
    let files = t.incident_files();
    let page = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|p| p.contains("## Metric"))
        .unwrap_or_else(|| panic!("no metric incident page among {files:?}: {found:#?}"));
    assert!(page.contains(key), "{page}");
    assert!(page.contains("Last 24 h: `"), "{page}");
    let svg: Vec<_> = std::fs::read_dir(t.path("incidents"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .collect();
    assert!(!svg.is_empty(), "no chart written");
    // The series' samples are per minute: the creep's end is about 3× its start.
    let end = rfc(T0 + runs as i64 * RUN);
    let shown = t.ok(&[
        "metrics", "show", key, "--since", "7d", "--now", &end, "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    let pts = v[0]["points"].as_array().unwrap();
    assert_eq!(pts.len(), runs - 1);
    let last = pts.last().unwrap()["value"].as_f64().unwrap();
    assert!((last - 60.0 / 120.0).abs() < 0.05, "{last}");
    // Each signature with an open incident has its own rate: the ERRORs' one ends with
    // the same value, the WARNINGs' one at 3 per two hours.
    let listed: serde_json::Value =
        serde_json::from_str(&t.ok(&["metrics", "--json"]).stdout).unwrap();
    let mut by_signature: Vec<f64> = listed["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["key"]
                .as_str()
                .unwrap()
                .starts_with("log_signature_records{signature=")
        })
        .map(|s| s["last_value"].as_f64().unwrap())
        .collect();
    by_signature.sort_by(f64::total_cmp);
    assert_eq!(by_signature, [3.0 / 120.0, last], "{listed:#}");
}

#[test]
fn a_logs_check_runs_no_script_and_its_effective_config_loads_again() {
    let t = Test::new();
    t.config(
        "[[source]]\nname = \"api\"\npath = \"api.log\"\n\
         [[check]]\nname = \"e\"\nlogs = true\nscript = \"x.sh\"\nevery = \"5m\"\n\
         [[check.rule]]\nmetric = \"log_records\"\nabove = 1\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in ["`check[0].script`", "`check[0].every`"] {
        assert!(r.stderr.contains(key), "{key} missing:\n{}", r.stderr);
    }
    t.config(
        "[[source]]\nname = \"api\"\npath = \"api.log\"\n\
         [[check]]\nname = \"e\"\nlogs = true\n\
         [[check.rule]]\nmetric = 'log_records{level=\"ERROR\"}'\nanomaly = true\n",
    );
    let effective = t.ok(&["check"]).stdout;
    assert!(effective.contains("logs = true"), "{effective}");
    assert!(!effective.contains("script ="), "{effective}");
    t.write("logwarden.toml", &effective);
    t.ok(&["check"]);
}

#[test]
fn the_shipped_log_rates_example_loads() {
    let shipped = include_str!("../../etc/logwarden.toml");
    let lines: Vec<&str> = shipped.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "# name = \"api-errors\"")
        .expect("the log rates example in etc/logwarden.toml");
    assert_eq!(lines[at - 1], "# [[check]]");
    let mut example = String::from("[[check]]\n");
    for l in &lines[at..] {
        let Some(l) = l.strip_prefix("# ") else {
            break;
        };
        example.push_str(l);
        example.push('\n');
    }
    assert!(example.contains("logs = true"), "{example}");
    let t = Test::new();
    t.config(&format!(
        "[[source]]\nname = \"api\"\npath = \"api.log\"\n{example}"
    ));
    let effective = t.ok(&["check"]).stdout;
    assert_eq!(
        effective.matches("[[check.rule]]").count(),
        2,
        "{effective}"
    );
}

#[test]
fn level_spellings_share_one_series_and_a_full_store_says_so() {
    let t = Test::new();
    if python().is_none() {
        eprintln!("SKIPPED: no Python with loguru");
        return;
    }
    t.config(
        "[[source]]\nname = \"api\"\npath = \"api.log\"\nfrom = \"start\"\n\
         [metrics]\nmax_series = 1\n",
    );
    // Levels the app spells its own way (loguru takes any name, and writes a level
    // given by number as `Level 45`): one series per level.
    t.loguru(
        "logger.add('api.log')\n\
         logger.error('Upstream timed out')\n",
    );
    t.ok(&["run", "--now", "2026-11-22T10:00:00Z"]);
    t.loguru(
        "logger.add('api.log')\n\
         for name, no in [('error', 40), ('eRRoR', 40), ('ERR', 40), ('fatal', 50), ('warn', 30), ('Crit', 50)]:\n\
         \x20   logger.level(name, no=no)\n\
         for name in ['error', 'eRRoR', 'ERR', 'ERROR', 'fatal', 'warn', 'Crit', 'WARNING', 45]:\n\
         \x20   logger.log(name, 'Upstream timed out')\n",
    );
    let r = t.ok(&["run", "--now", "2026-11-22T10:10:00Z"]);
    let db = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT s.labels, x.value FROM metric_series s JOIN metric_samples x ON x.series = s.id \
             WHERE s.name = 'log_records' ORDER BY s.labels",
        )
        .unwrap();
    let rows: Vec<(String, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let per_level: Vec<(String, f64)> = rows
        .iter()
        .map(|(l, v)| {
            let l: serde_json::Value = serde_json::from_str(l).unwrap();
            (l["level"].as_str().unwrap().to_string(), v * 10.0)
        })
        .collect();
    assert_eq!(
        per_level,
        vec![
            ("CRITICAL".to_string(), 2.0),
            ("ERROR".to_string(), 5.0),
            ("WARNING".to_string(), 2.0)
        ],
        "records per minute over the 10 minutes, by level: {}",
        r.all()
    );

    // The level series are made whatever `max_series` says; the open incident's
    // signature series is not, and the run says so.
    assert!(
        r.all()
            .contains("1 new log-rate series not recorded: there are metrics.max_series = 1"),
        "{}",
        r.all()
    );
}
