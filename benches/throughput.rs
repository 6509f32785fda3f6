//! Reading throughput: one `logwarden run` over a large loguru text log (1% WARNING and
//! above, the rest INFO/DEBUG) with 200 ignore rules, next to GNU grep doing logcheck's
//! job on the same file and rules; plus the time of a run with nothing new.
//!
//!     cargo bench --bench throughput            # 1 GiB file under target/bench-data
//!     LW_BENCH_MB=200 cargo bench --bench throughput
//!     LW_BENCH_MIN_RATIO_SHORT=0.9 cargo bench --bench throughput   # a gate (see main)
//!
//! Peak RSS comes from wait4(2) on each child process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::Measured;

/// The binary measured: this build's, or LW_BENCH_BIN (to measure another build the
/// same way, e.g. the one before a change).
fn bin() -> String {
    std::env::var("LW_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_logwarden").into())
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const INFO: &[&str] = &[
    "GET /api/v1/orders/{} 200 in {}ms",
    "POST /api/v1/cart/{}/items 201 in {}ms",
    "Cache hit for product {} ({} bytes)",
    "Worker {} picked job {} from queue default",
    "User {} logged in from 10.0.{}.{}",
    "Rendered template checkout.html in {}ms",
    "Scheduled task cleanup_sessions removed {} rows in {}ms",
    "Connected to redis at 127.0.0.1:6379 db {}",
];

const PROBLEMS: &[&str] = &[
    "Timeout after {}ms calling payments API for order {}",
    "Retrying webhook delivery {} (attempt {} of 5)",
    "Slow query on orders took {} ms (limit 500 ms)",
    "Rate limit reached for tenant {} ({} requests/min)",
    "Disk usage at {}% on /var/lib/app",
    "Failed to send e-mail to user {}: SMTP {} response",
    "Stripe returned 402 for invoice {} (card_declined)",
    "Could not acquire lock sessions:{} after {} tries",
    "Unknown currency code in cart {}: XX{}",
    "Connection reset by peer while reading from upstream {}:{}",
];

fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut parts = template.split("{}");
    out.push_str(parts.next().unwrap());
    for p in parts {
        out.push_str(&rng.below(100_000).to_string());
        out.push_str(p);
    }
    out
}

/// Writes `megabytes` of log to `path`: a clock from midnight of a fixed day that steps
/// by up to `step_ms` a line, each line made by `line(rng, time)`.
fn write_log(
    path: &Path,
    megabytes: u64,
    seed: u64,
    step_ms: u64,
    mut line: impl FnMut(&mut Rng, &str) -> String,
) {
    let target = megabytes * 1024 * 1024;
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut rng = Rng(seed);
    let mut written = 0u64;
    let mut ms = 0u64;
    while written < target {
        ms += rng.below(step_ms);
        let (secs, milli) = (ms / 1000, ms % 1000);
        let time = format!(
            "2026-11-22 {:02}:{:02}:{:02}.{milli:03}",
            (secs / 3600) % 24,
            (secs / 60) % 60,
            secs % 60
        );
        let line = line(&mut rng, &time);
        written += line.len() as u64;
        w.write_all(line.as_bytes()).unwrap();
    }
    w.flush().unwrap();
}

fn generate(path: &Path, megabytes: u64) {
    write_log(path, megabytes, 0x9E3779B97F4A7C15, 50, |rng, time| {
        let roll = rng.below(1000);
        if roll < 10 {
            let level = ["WARNING", "ERROR", "ERROR", "CRITICAL"][rng.below(4) as usize];
            let msg = fill(PROBLEMS[rng.below(PROBLEMS.len() as u64) as usize], rng);
            let mut l = format!(
                "{time} | {level:<8} | shop.payments:charge:{} - {msg}\n",
                10 + rng.below(300)
            );
            if level != "WARNING" && rng.below(3) == 0 {
                l.push_str("Traceback (most recent call last):\n  File \"/srv/shop/payments.py\", line 88, in charge\n    resp = client.post(url, json=body, timeout=5)\nTimeoutError: timed out\n");
            }
            l
        } else {
            let level = if roll < 400 { "DEBUG" } else { "INFO" };
            let msg = fill(INFO[rng.below(INFO.len() as u64) as usize], rng);
            format!(
                "{time} | {level:<8} | shop.web:handle:{} - {msg}\n",
                10 + rng.below(300)
            )
        }
    });
}

/// The short-line workload: lines of ~100 bytes as a busy web app writes them, 1.5 %
/// WARNING and above spread over 400 message shapes (so that grouping and the ignore
/// rules do real work), some with tracebacks; the 200 rules of [`short_rules`] match
/// every other shape.
fn generate_short(path: &Path, megabytes: u64) {
    write_log(path, megabytes, 0xD1B54A32D192ED03, 20, |rng, time| {
        let roll = rng.below(1000);
        if roll < 15 {
            let level = ["WARNING", "WARNING", "ERROR", "ERROR", "CRITICAL"][rng.below(5) as usize];
            let shape = rng.below(400) as usize;
            let mut l = format!(
                "{time} | {level:<8} | app.{}:run:{} - {}\n",
                SHORT_AREAS[shape % SHORT_AREAS.len()],
                10 + rng.below(300),
                short_problem(shape, rng)
            );
            if level != "WARNING" && rng.below(4) == 0 {
                l.push_str("Traceback (most recent call last):\n  File \"/srv/app/worker.py\", line 41, in run\n    handle(job)\nRuntimeError: job failed\n");
            }
            l
        } else {
            let level = if roll < 500 { "DEBUG" } else { "INFO" };
            let msg = fill(INFO[rng.below(INFO.len() as u64) as usize], rng);
            format!(
                "{time} | {level:<8} | app.web:handle:{} - {msg}\n",
                10 + rng.below(300)
            )
        }
    });
}

const SHORT_AREAS: &[&str] = &[
    "db", "cache", "mail", "queue", "auth", "billing", "search", "files",
];
const SHORT_VERBS: &[&str] = &[
    "Timeout",
    "Refused",
    "Retry",
    "Overflow",
    "Stale",
    "Denied",
    "Missing",
    "Corrupt",
    "Slow",
    "Dropped",
    "Rejected",
    "Expired",
    "Throttled",
    "Unreachable",
    "Duplicate",
    "Invalid",
    "Orphaned",
    "Blocked",
    "Truncated",
    "Degraded",
];
const SHORT_NOUNS: &[&str] = &[
    "session",
    "invoice",
    "upload",
    "webhook",
    "token",
    "index",
    "replica",
    "lease",
    "shard",
    "export",
    "thumbnail",
    "cursor",
    "ledger",
    "mailbox",
    "snapshot",
    "bucket",
    "tenant",
    "schedule",
    "profile",
    "report",
];

/// Shape `i` of 400: two constant words of its own, then variable values.
fn short_problem(i: usize, rng: &mut Rng) -> String {
    let (verb, noun) = (SHORT_VERBS[i % 20], SHORT_NOUNS[i / 20]);
    format!(
        "{verb} {noun} {} in step {}ms",
        rng.below(100_000),
        rng.below(5000)
    )
}

/// One rule per even shape, anchored on its constant words.
fn short_rules() -> Vec<String> {
    (0..400)
        .step_by(2)
        .map(|i| {
            format!(
                "^{} {} [0-9]+ in step",
                SHORT_VERBS[i % 20],
                SHORT_NOUNS[i / 20]
            )
        })
        .collect()
}

/// 200 rules as ERE (grep) and regex (logwarden) alike: 5 that match real noise, the
/// rest plausible silences that match nothing in this log.
fn rules() -> Vec<String> {
    let mut r = vec![
        "Connection reset by peer while reading from upstream".to_string(),
        "^Retrying webhook delivery [0-9]+ \\(attempt [0-9]+ of 5\\)".to_string(),
        "Slow query on orders took [0-9]+ ms".to_string(),
        "Unknown currency code in cart [0-9]+".to_string(),
        "Rate limit reached for tenant [0-9]+".to_string(),
    ];
    let words = [
        "cron", "backup", "health", "metrics", "celery", "gunicorn", "nginx", "oauth", "s3", "smtp",
    ];
    let mut i = 0;
    while r.len() < 200 {
        let a = words[i % words.len()];
        let b = words[(i / words.len()) % words.len()];
        r.push(format!(
            "{a} (check|probe) {b} failed with code [0-9]+ after [0-9]+ retries #{i}"
        ));
        i += 1;
    }
    r
}

fn measure(cmd: Command) -> Measured {
    common::measure(cmd, Stdio::null())
}

struct Workload {
    name: &'static str,
    generate: fn(&Path, u64),
    rules: Vec<String>,
}

/// The figures of one workload: logwarden, the grep pipeline, and an idle run.
struct Figures {
    name: &'static str,
    size: f64,
    lw: Measured,
    grep: Measured,
    idle_median: Duration,
}

fn main() {
    let mb: u64 = std::env::var("LW_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    // Each measured several times (a fresh state each time for logwarden); the fastest counts.
    let reps: usize = std::env::var("LW_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // The least CPU ratio against grep each workload must reach: LW_BENCH_MIN_RATIO for
    // both, LW_BENCH_MIN_RATIO_LONG / _SHORT for one (CI gates each on its own margin).
    let ratio_var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    let all = ratio_var("LW_BENCH_MIN_RATIO");
    let gates = [
        ratio_var("LW_BENCH_MIN_RATIO_LONG").or(all),
        ratio_var("LW_BENCH_MIN_RATIO_SHORT").or(all),
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let workloads = [
        Workload {
            name: "long lines, 10 shapes",
            generate,
            rules: rules(),
        },
        Workload {
            name: "short lines, 400 shapes",
            generate: generate_short,
            rules: short_rules(),
        },
    ];
    let mut figures = Vec::new();
    for (k, w) in workloads.iter().enumerate() {
        let log = dir.join(format!("app{k}-{mb}m.log"));
        if !log.exists() {
            eprintln!("generating {} ({mb} MiB)…", log.display());
            (w.generate)(&log, mb);
        }
        figures.push(run_workload(w, &dir, &log, reps));
    }

    let mbs = |size: f64, d: Duration| size / 1048576.0 / d.as_secs_f64();
    println!("| workload | what | wall time | throughput | CPU time | peak RSS |");
    println!("|---|---|---:|---:|---:|---:|");
    for f in &figures {
        println!(
            "| {} | logwarden run, {:.0} MiB, 200 ignore rules | {:.2} s | {:.0} MiB/s | {:.2} s | {:.1} MiB |",
            f.name,
            f.size / 1048576.0,
            f.lw.wall.as_secs_f64(),
            mbs(f.size, f.lw.wall),
            f.lw.cpu.as_secs_f64(),
            f.lw.max_rss_kb as f64 / 1024.0
        );
        println!(
            "| {} | grep -E -v -f rules \\| grep -E level | {:.2} s | {:.0} MiB/s | {:.2} s (both greps) | {:.1} MiB |",
            f.name,
            f.grep.wall.as_secs_f64(),
            mbs(f.size, f.grep.wall),
            f.grep.cpu.as_secs_f64(),
            f.grep.max_rss_kb as f64 / 1024.0
        );
        println!(
            "| {} | logwarden run with nothing new (median of 21) | {:.1} ms | | | |",
            f.name,
            f.idle_median.as_secs_f64() * 1000.0
        );
    }
    println!();
    let mut low = Vec::new();
    for (f, gate) in figures.iter().zip(gates) {
        // CPU time: on a busy machine the wall clock measures the neighbours too.
        let ratio = f.grep.cpu.as_secs_f64() / f.lw.cpu.as_secs_f64();
        let judged = match gate {
            Some(m) if ratio < m => format!(" — BELOW the gate of {m}x"),
            Some(m) => format!(" — gate {m}x: ok"),
            None => " — not gated".to_string(),
        };
        println!(
            "{}: logwarden / grep: {:.1}x by CPU time, {:.1}x by wall time{judged}",
            f.name,
            ratio,
            f.grep.wall.as_secs_f64() / f.lw.wall.as_secs_f64()
        );
        if gate.is_some_and(|m| ratio < m) {
            low.push(format!("{} ({ratio:.2}x < {}x)", f.name, gate.unwrap()));
        }
    }
    if !low.is_empty() {
        eprintln!(
            "logwarden is below its gate against the grep pipeline on: {}",
            low.join(", ")
        );
        std::process::exit(1);
    }
}

fn run_workload(w: &Workload, dir: &Path, log: &Path, reps: usize) -> Figures {
    let size = std::fs::metadata(log).unwrap().len() as f64;
    // grep searches whole lines: a rule anchored at the message start is anchored on
    // loguru's ` - ` separator instead.
    let grep_rules: Vec<String> = w
        .rules
        .iter()
        .map(|r| match r.strip_prefix('^') {
            Some(rest) => format!(" - {rest}"),
            None => r.clone(),
        })
        .collect();
    std::fs::write(dir.join("rules.txt"), grep_rules.join("\n") + "\n").unwrap();
    let mut toml = String::new();
    for (i, r) in w.rules.iter().enumerate() {
        toml.push_str(&format!(
            "[[rule]]\nid = {}\npattern = '{}'\ncomment = \"bench\"\n\n",
            i + 1,
            r
        ));
    }
    std::fs::write(dir.join("ignore.toml"), toml).unwrap();
    // Each run starts from a state of its own, removed only after the runs, on tmpfs
    // when there is one (LW_BENCH_STATE_DIR chooses another place). On ext4 without a
    // journal (this project's CI machine) creating a file skips, one by one, the inodes
    // freed in the last minute near it: the system time of filing 400 pages went from
    // 0.03 s to 0.2 s depending on what other builds, the tests or the bench itself had
    // just deleted, a measure of the neighbours rather than of logwarden.
    let base = std::env::var_os("LW_BENCH_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() {
                shm.join(format!("logwarden-bench-{}", std::process::id()))
            } else {
                dir.to_path_buf()
            }
        });
    std::fs::create_dir_all(&base).unwrap();
    let states = |base: &Path| {
        for e in std::fs::read_dir(base).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("state") && e.path().is_dir() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    };
    states(&base);
    let config_for = |k: usize| {
        let config = dir.join(format!("logwarden-{k}.toml"));
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{state}\"\nincidents_dir = \"{state}/incidents\"\nignore_file = \"ignore.toml\"\nhostname = \"bench\"\n\n[[source]]\nname = \"shop\"\npath = \"{}\"\nfrom = \"start\"\n",
                log.display(),
                state = base.join(format!("state-{k}")).display()
            ),
        )
        .unwrap();
        config
    };

    // Warm the page cache so both tools read from memory.
    let _ = std::io::copy(&mut std::fs::File::open(log).unwrap(), &mut std::io::sink());

    // The two tools take turns, so that a busy spell on the machine (a neighbour on a
    // shared host) weighs on both rather than on whichever ran through it.
    let mut lw: Option<Measured> = None;
    let mut g: Option<Measured> = None;
    for k in 0..reps {
        let mut c = Command::new(bin());
        c.args(["run", "--now", "2026-11-23T00:00:00Z", "--config"])
            .arg(config_for(k));
        let m = measure(c);
        assert!(m.ok, "logwarden run failed");
        if lw.as_ref().is_none_or(|f| m.cpu < f.cpu) {
            lw = Some(m);
        }
        let mut grep = Command::new("bash");
        grep.arg("-c").arg(format!(
            "LC_ALL=C grep -E -v -f '{}' '{}' | LC_ALL=C grep -E ' \\| (WARNING|ERROR|CRITICAL) ' > /dev/null",
            dir.join("rules.txt").display(),
            log.display()
        ));
        let m = measure(grep);
        if g.as_ref().is_none_or(|f| m.cpu < f.cpu) {
            g = Some(m);
        }
    }
    let mut idle = Vec::new();
    for _ in 0..21 {
        let mut c = Command::new(bin());
        c.args(["run", "--now", "2026-11-23T00:00:00Z", "--config"])
            .arg(config_for(0));
        let m = measure(c);
        assert!(m.ok);
        idle.push(m.wall);
    }
    idle.sort();
    states(&base);
    if base.starts_with("/dev/shm") {
        let _ = std::fs::remove_dir(&base);
    }
    Figures {
        name: w.name,
        size,
        lw: lw.unwrap(),
        grep: g.unwrap(),
        idle_median: idle[10],
    }
}
