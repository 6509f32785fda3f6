//! Runs whose cost does not grow with the history. A simulated year — 50,000
//! templates and signatures, 10,000 incidents with their pages, 1,000,000 metric
//! samples over 50 series, 100 ignore rules with hit counts — then four kinds of run:
//! (a) nothing new, (b) one new error, (c) ten errors of known signatures (these three
//! with a `logs = true` check: anomaly and rate rules on the log rates), (d) nothing new
//! in the log but a metric check whose script prints a new sample for each of the 50
//! series, each with an anomaly rule and a rate rule (its detectors keep their state in
//! the store). The same at a tenth of that history, over the same time (a quieter
//! deployment: a tenth of the incidents over the year, series sampled a tenth as
//! often); the ratio of the two says whether a run's cost is flat. (What a younger
//! history costs is another matter: an anomaly detector fed for less than a week does
//! less work per sample than one past its first week, after which its cost stays put.)
//!
//!     cargo bench --bench history
//!     LW_HISTORY_MAX_RATIO=1.5 cargo bench --bench history   # exit 1 above it (CI)
//!
//! Times are the median of several runs; the ratios compare CPU time (user + system of
//! the run and its script), which neighbours on a busy machine disturb less than the
//! wall clock. One line per case is made for grepping: `ratio idle full/tenth: 1.12`
//! (cases `idle`, `one-new`, `ten-known`, `metrics`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rusqlite::{params, Connection};

// Each bench reports the figures it needs; this one no peak RSS.
#[allow(dead_code)]
mod common;
use common::Measured;

/// The binary measured: this build's, or LW_BENCH_BIN (another build measured the same
/// way, e.g. the one before a change).
fn bin() -> String {
    std::env::var("LW_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_logwarden").into())
}

struct History {
    templates: usize,
    incidents: usize,
    samples: usize,
    rules: usize,
}

const FULL: History = History {
    templates: 50_000,
    incidents: 10_000,
    samples: 1_000_000,
    rules: 100,
};

const SERIES: usize = 50;

fn measure(cmd: Command) -> Measured {
    let m = common::measure(cmd, Stdio::inherit());
    assert!(m.ok, "logwarden run failed");
    m
}

fn median(mut v: Vec<Measured>) -> Measured {
    v.sort_by_key(|m| m.cpu);
    let cpu = v[v.len() / 2].cpu;
    v.sort_by_key(|m| m.wall);
    Measured {
        wall: v[v.len() / 2].wall,
        cpu,
        ..v[0]
    }
}

fn line(minute: u32, level: &str, msg: &str) -> String {
    format!(
        "2026-11-22 {:02}:{:02}:00.000 | {level:<8} | app.jobs:run:12 - {msg}\n",
        minute / 60,
        minute % 60
    )
}

/// Error shape `i`: its own constant words, so that each is a signature of its own.
fn shape(i: usize, value: usize) -> String {
    const A: &[&str] = &[
        "invoice", "upload", "webhook", "session", "report", "ledger", "export", "mailbox",
        "replica", "bucket",
    ];
    let word = |mut n: usize| {
        let mut s = String::new();
        loop {
            s.push_str(A[n % A.len()]);
            n /= A.len();
            if n == 0 {
                break s;
            }
            s.push('_');
        }
    };
    format!(
        "Job {} failed on {} with code {value}",
        word(i),
        word(i / 7 + 3)
    )
}

fn run(dir: &Path, now: &str) -> Measured {
    run_with(dir, "logwarden.toml", now)
}

fn run_with(dir: &Path, config: &str, now: &str) -> Measured {
    let mut c = Command::new(bin());
    c.args(["run", "--now", now, "--config"])
        .arg(dir.join(config));
    measure(c)
}

/// The rules on the log rates, in every config.
const LOG_CHECK: &str = "[[check]]\nname = \"errors\"\nlogs = true\n\
    [[check.rule]]\nmetric = 'log_records{level=\"ERROR\"}'\nanomaly = true\n\
    [[check.rule]]\nmetric = 'log_records{level=\"ERROR\"}'\nrate_above = 100\n";

/// The level the queues' script prints at `ts`: from its minute of the clock, scrambled
/// (a quadratic modulo 97), so that one minute to the next, or across a gap between two
/// runs, it is the same kind of noise, never a step the history did not have. The
/// script computes the same in the shell's 64-bit arithmetic.
fn level(ts: i64) -> f64 {
    let m = ts / 60;
    ((m * m * 7919 + m * 31) % 97) as f64
}

/// The check of case (d): a new sample for each of the 50 series (the run's minute,
/// the pattern of their history), an anomaly rule and a rate rule on each.
fn metrics_check(dir: &Path) -> String {
    let mut script = String::from(
        "#!/bin/sh\nm=$(( LOGWARDEN_NOW / 60 ))\nv=$(( (m * m * 7919 + m * 31) % 97 ))\n",
    );
    for k in 0..SERIES {
        script.push_str(&format!("echo \"queue_depth{{queue=\\\"q{k}\\\"}} $v\"\n"));
    }
    let path = dir.join("queues.sh");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    "[[check]]\nname = \"host\"\nscript = \"queues.sh\"\n\
     [[check.rule]]\nmetric = \"queue_depth\"\nanomaly = true\n\
     [[check.rule]]\nmetric = \"queue_depth\"\nrate_above = 1000\n"
        .to_string()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Builds the history of `scale` × [`FULL`] in `dir`: the incidents through the binary
/// itself (pages and all), the rest straight into its store.
fn build(dir: &Path, scale: f64) -> History {
    let h = History {
        templates: (FULL.templates as f64 * scale) as usize,
        incidents: (FULL.incidents as f64 * scale) as usize,
        samples: (FULL.samples as f64 * scale) as usize,
        rules: FULL.rules,
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut rules = String::new();
    for i in 0..h.rules {
        rules.push_str(&format!(
            "[[rule]]\nid = \"r{i}\"\npattern = '^Probe {i} of cron (job|task) [0-9]+ timed out'\ncomment = \"bench\"\n\n"
        ));
    }
    std::fs::write(dir.join("ignore.toml"), rules).unwrap();
    let config = format!(
        "state_dir = \"state\"\nincidents_dir = \"incidents\"\nignore_file = \"ignore.toml\"\nhostname = \"bench\"\n\n[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\n\n[metrics]\nscripts_dir = \"{}\"\n\n[incidents]\nnag = {{ critical = \"off\" }}\n\n{LOG_CHECK}",
        dir.display()
    );
    std::fs::write(dir.join("logwarden.toml"), &config).unwrap();
    let mut log = String::new();
    for i in 0..h.incidents {
        log.push_str(&line(0, "ERROR", &shape(i, i)));
    }
    std::fs::write(dir.join("app.log"), log).unwrap();
    run(dir, "2026-11-22T00:30:00Z");

    let db = Connection::open(dir.join("state/logwarden.db")).unwrap();
    db.execute_batch("BEGIN").unwrap();
    // Most of a year's incidents are long resolved, and they came over the year: the
    // run above opened them all at once, they are spread back over 365 days.
    db.execute(
        "UPDATE incidents SET status = 'resolved', resolved_at = '2026-11-22T00:31:00Z',
             first_seen = strftime('%Y-%m-%dT%H:%M:%SZ', '2026-11-22T00:00:00',
                 '-' || ((?1 - id) * 365 / ?1) || ' days'),
             last_seen = strftime('%Y-%m-%dT%H:%M:%SZ', '2026-11-22T00:00:00',
                 '-' || ((?1 - id) * 365 / ?1) || ' days', '+5 minutes')",
        [h.incidents as i64],
    )
    .unwrap();
    {
        let mut t = db
            .prepare(
                "INSERT INTO templates (group_id, template, count, leaf) VALUES (?1, ?2, ?3, ?4)",
            )
            .unwrap();
        let mut s = db
            .prepare(
                "INSERT INTO signatures (signature, template, source, level, first_seen, last_seen, count)
                 VALUES (?1, ?2, 'app', 'ERROR', '2026-01-01T00:00:00Z', '2026-11-01T00:00:00Z', ?3)",
            )
            .unwrap();
        for i in h.incidents..h.templates {
            let template = format!(
                "Synthetic event {} of kind <*>",
                shape(i, 0).replace(' ', "_")
            );
            let leaf = logwarden::signature::leaf_of(&template) as i64;
            t.execute(params![
                format!("{:016x}", 0x5eed_0000_0000_0000u64 + i as u64),
                template,
                3,
                leaf
            ])
            .unwrap();
            s.execute(params![
                format!("{:016x}", 0xface_0000_0000_0000u64 + i as u64),
                template,
                3
            ])
            .unwrap();
        }
        let mut series = db
            .prepare(
                "INSERT INTO metric_series (id, check_name, key, name, labels, last_ts, last_value)
                 VALUES (?1, 'host', ?2, 'queue_depth', ?3, ?4, 1.0)",
            )
            .unwrap();
        let mut sample = db
            .prepare("INSERT INTO metric_samples (series, ts, value) VALUES (?1, ?2, ?3)")
            .unwrap();
        // A smaller history is a quieter one over the same time, as the incidents are
        // spread over the same year: its series are sampled less often, back as far.
        let per = h.samples / SERIES;
        let step = (FULL.samples / h.samples.max(1)) as i64 * 60;
        let end = 1_795_305_600i64; // 2026-11-22T00:00:00Z
        for k in 0..SERIES {
            let key = format!("queue_depth{{queue=\"q{k}\"}}");
            series
                .execute(params![
                    k as i64 + 1,
                    key,
                    format!("{{\"queue\":\"q{k}\"}}"),
                    end
                ])
                .unwrap();
            // What the check's script goes on printing (see `level`).
            for j in 0..per {
                let ts = end - (per - j) as i64 * step;
                sample
                    .execute(params![k as i64 + 1, ts, level(ts)])
                    .unwrap();
            }
        }
        // The hourly rollups a store keeps beside its raw samples.
        db.execute_batch(
            "INSERT INTO metric_rollups (series, hour, count, sum, min, max)
             SELECT series, ts / 3600 * 3600, count(*), sum(value), min(value), max(value)
             FROM metric_samples GROUP BY series, ts / 3600",
        )
        .unwrap();
        let mut hits = db
            .prepare("INSERT INTO ignore_hits (rule_id, hits, last_hit) VALUES (?1, ?2, '2026-11-20T00:00:00Z')")
            .unwrap();
        for i in 0..h.rules {
            hits.execute(params![format!("r{i}"), 10 + i as i64])
                .unwrap();
        }
    }
    db.execute_batch("COMMIT").unwrap();
    // Case (d)'s config: the same, with the check of the 50 series.
    std::fs::write(
        dir.join("metrics.toml"),
        format!("{config}\n{}", metrics_check(dir)),
    )
    .unwrap();
    // One run to settle (index, pages) before anything is timed; one with the check,
    // whose detectors are built from the stored samples once.
    run(dir, "2026-11-22T00:35:00Z");
    run_with(dir, "metrics.toml", "2026-11-22T00:36:00Z");
    h
}

struct Figures {
    idle: Measured,
    one_new: Measured,
    ten_known: Measured,
    metrics: Measured,
}

/// Times the four kinds of run in each history, `reps` of each. The histories take
/// turns run by run (in alternating order), so that whatever else the machine is doing
/// weighs on both alike and their ratio stays meaningful on a busy machine.
fn time_runs(dirs: &[PathBuf], reps: usize) -> Vec<Figures> {
    // Each run a minute after the last; the records appended carry that minute. All
    // histories see the same minutes.
    let mut minute = 40u32;
    let mut next = || {
        minute += 1;
        (
            minute,
            format!("2026-11-22T{:02}:{:02}:30Z", minute / 60, minute % 60),
        )
    };
    // One kind of run: `reps` rounds, each running `one` in every history in turn.
    let mut kind = |one: &dyn Fn(&Path, u32, &str, usize) -> Measured| -> Vec<Measured> {
        let mut times: Vec<Vec<Measured>> = vec![Vec::new(); dirs.len()];
        for k in 0..reps {
            let (m, now) = next();
            let mut order: Vec<usize> = (0..dirs.len()).collect();
            if k % 2 == 1 {
                order.reverse();
            }
            for i in order {
                times[i].push(one(&dirs[i], m, &now, k));
            }
        }
        times.into_iter().map(median).collect()
    };
    let idle = kind(&|dir, _, now, _| run(dir, now));
    let one_new = kind(&|dir, m, now, k| {
        const NEW: &[&str] = &[
            "Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India",
            "Juliett", "Kilo", "Lima",
        ];
        let msg = format!("{} pipeline broke in a brand new way", NEW[k % NEW.len()]);
        append(&dir.join("app.log"), &line(m, "ERROR", &msg));
        run(dir, now)
    });
    let ten_known = kind(&|dir, m, now, k| {
        let text: String = (0..10)
            .map(|i| line(m, "ERROR", &shape(i * 37 + k, 999)))
            .collect();
        append(&dir.join("app.log"), &text);
        run(dir, now)
    });
    let metrics = kind(&|dir, _, now, _| run_with(dir, "metrics.toml", now));
    // What case (d) claims to time: every series took the last run's sample, and its
    // anomaly detector was brought up to it (a history dated after the runs would
    // leave both idle).
    let last = 1_795_305_600 + minute as i64 * 60 + 30; // the last run's `now`
    for dir in dirs {
        let db = Connection::open(dir.join("state/logwarden.db")).unwrap();
        let fed: i64 = db
            .query_row(
                "SELECT count(*) FROM metric_series s JOIN metric_detectors d ON d.series = s.id
                 WHERE s.check_name = 'host' AND s.last_ts = ?1 AND d.last_ts = ?1",
                [last],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            fed, SERIES as i64,
            "case (d): not every series was fed the run's sample"
        );
    }
    // Both histories must have done the same work for their ratio to mean anything: a
    // metric incident open in one (its page rewritten with charts every run) and not in
    // the other would be timed as the history's cost.
    let metric_incidents: Vec<i64> = dirs
        .iter()
        .map(|dir| {
            Connection::open(dir.join("state/logwarden.db"))
                .unwrap()
                .query_row(
                    "SELECT count(*) FROM incidents WHERE kind NOT IN ('error', 'new-error')",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        })
        .collect();
    assert!(
        metric_incidents.windows(2).all(|w| w[0] == w[1]),
        "the histories opened different metric incidents ({metric_incidents:?}): their runs did different work"
    );
    (0..dirs.len())
        .map(|i| Figures {
            idle: idle[i],
            one_new: one_new[i],
            ten_known: ten_known[i],
            metrics: metrics[i],
        })
        .collect()
}

fn main() {
    let reps: usize = std::env::var("LW_HISTORY_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let limit = |var: &str| -> Option<f64> { std::env::var(var).ok().and_then(|v| v.parse().ok()) };
    let max_ratio = limit("LW_HISTORY_MAX_RATIO");
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let mut built = Vec::new();
    for (name, scale) in [("a tenth", 0.1), ("full", 1.0)] {
        let dir = base.join(format!("history-{name}").replace(' ', "-"));
        eprintln!("building {name} history in {} …", dir.display());
        built.push((name, build(&dir, scale), dir));
    }
    let dirs: Vec<PathBuf> = built.iter().map(|b| b.2.clone()).collect();
    let rows: Vec<_> = built
        .into_iter()
        .zip(time_runs(&dirs, reps))
        .map(|((name, h, _), f)| (name, h, f))
        .collect();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| history | templates | incidents | samples | rules | nothing new | one new error | ten known errors | 50 new samples |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, h, f) in &rows {
        println!(
            "| {name} | {} | {} | {} | {} | {:.1} ms ({:.1} ms CPU) | {:.1} ms ({:.1} ms CPU) | {:.1} ms ({:.1} ms CPU) | {:.1} ms ({:.1} ms CPU) |",
            h.templates,
            h.incidents,
            h.samples,
            h.rules,
            ms(f.idle.wall),
            ms(f.idle.cpu),
            ms(f.one_new.wall),
            ms(f.one_new.cpu),
            ms(f.ten_known.wall),
            ms(f.ten_known.cpu),
            ms(f.metrics.wall),
            ms(f.metrics.cpu)
        );
    }
    let (tenth, full) = (&rows[0].2, &rows[1].2);
    let ratio = |a: Measured, b: Measured| a.cpu.as_secs_f64() / b.cpu.as_secs_f64().max(1e-4);
    let ratios = [
        ("idle", ratio(full.idle, tenth.idle)),
        ("one-new", ratio(full.one_new, tenth.one_new)),
        ("ten-known", ratio(full.ten_known, tenth.ten_known)),
        ("metrics", ratio(full.metrics, tenth.metrics)),
    ];
    println!();
    let mut over = Vec::new();
    for (what, r) in ratios {
        println!("ratio {what} full/tenth: {r:.2}");
        if let Some(m) = max_ratio.filter(|m| r > *m) {
            over.push(format!("{what} {r:.2}x (limit {m}x)"));
        }
    }
    if !over.is_empty() {
        eprintln!("a run's cost grows with the history: {}", over.join(", "));
        std::process::exit(1);
    }
}
