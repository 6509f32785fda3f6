//! The kill storm: runs killed at random moments (SIGKILL from here) and at the fault
//! points, while the real loguru keeps writing, rotating and gz-compressing the log and
//! ntfy answers late or not at all. Whatever the kills, each signature ends with one
//! incident, one incident file and one page, its occurrences counted exactly once, and
//! every notification delivered once.
//!
//! Seeded: a failure prints its seed; `LOGWARDEN_CHAOS_SEED=<seed>` replays the same
//! schedule of writes, kills and ntfy trouble (the moments a SIGKILL lands still vary
//! with the machine's speed).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

/// Signatures written (each a logger of its own).
const SIGNATURES: usize = 120;
/// Kills (SIGKILL or a fault point's abort) the storm lands at the least.
const KILLS: usize = 200;
/// Runs at most: a storm that lands too few kills in this many fails rather than go on.
const MAX_RUNS: usize = 1200;
/// A run that takes longer than this is hung (a loaded machine takes well under 5 s).
const HUNG: Duration = Duration::from_secs(120);

/// Where a run may be made to abort (`LOGWARDEN_FAULT`).
const FAULT_POINTS: &[&str] = &[
    "after-read-commit",
    "after-pages-written",
    "after-pages-synced",
    "after-incident-file",
    "after-ntfy-post",
];

/// splitmix64: a small, well-mixed generator, enough for a replayable schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Message templates: different shapes, so that the miner has real work.
const TEMPLATES: &[&str] = &[
    "Payment provider timeout for order {}",
    "Worker {} lost its lease",
    "Ledger mismatch of {} cents on the nightly close",
    "Could not connect to replica db-{} after 3 retries",
    "Cache stampede on shard {} while warming",
    "Webhook delivery to partner {} failed with status 502",
];

/// The loguru writer: logs the records the test hands it, a batch per line on its
/// stdin, rotating at 2 KB and gz-compressing each rotated file.
const WRITER: &str = r#"
import sys
from loguru import logger
logger.remove()
logger.add("app.log", rotation="2 KB", compression="gz")
records = [l.rstrip("\n").split("\t") for l in open("records.tsv")]
i = 0
for line in sys.stdin:
    n = int(line)
    for name, template in records[i : i + n]:
        logger.patch(lambda r, n=name: r.update(name=n)).error(template, i)
        logger.info("filler " + "x" * 60)
        i += 1
    if i == n:
        print("ready", flush=True)
print("wrote", i, flush=True)
"#;

#[test]
fn kill_storm_gives_one_incident_one_file_one_page_per_signature() {
    let Some(py) = python() else {
        eprintln!("SKIPPED: no Python with loguru");
        return;
    };
    let seed = std::env::var("LOGWARDEN_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill storm: LOGWARDEN_CHAOS_SEED={seed}");
    let ctx = format!("(replay with LOGWARDEN_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);

    let ntfy = FakeNtfy::start(None);
    let mut t = Test::new();
    if std::env::var_os("LOGWARDEN_CHAOS_KEEP").is_some() {
        eprintln!("kill storm: kept in {}", t.dir.path().display());
        t.dir.disable_cleanup(true);
    }
    t.with_app_source(&format!(
        "{}timeout = \"1s\"\nmax_per_hour = 1000\n",
        ntfy.config("ops")
    ));

    // The schedule: each signature gets 1 to 6 records, all shuffled together.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut records = Vec::new();
    for k in 0..SIGNATURES {
        let name = format!("svc{k:03}.jobs");
        let n = 1 + rng.below(6);
        expected.insert(name.clone(), n);
        for _ in 0..n {
            records.push(format!("{name}\t{}", TEMPLATES[k % TEMPLATES.len()]));
        }
    }
    for i in (1..records.len()).rev() {
        records.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let total: u64 = expected.values().sum();
    t.write("records.tsv", &(records.join("\n") + "\n"));
    t.write("writer.py", WRITER);
    let mut writer = std::process::Command::new(&py)
        .arg(t.path("writer.py"))
        .current_dir(t.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_writer = writer.stdin.take();
    let mut from_writer = std::io::BufReader::new(writer.stdout.take().unwrap());
    // The log exists and one run has followed it before the storm: a first run reads
    // the file at the path, not the history loguru rotated away before it (the storm
    // is about kills, not about where a source starts).
    let first = 3;
    writeln!(to_writer.as_mut().unwrap(), "{first}").unwrap();
    let mut said = String::new();
    std::io::BufRead::read_line(&mut from_writer, &mut said).unwrap();
    assert_eq!(said.trim(), "ready", "{ctx}");
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap();
    t.ok(&["run", "--now", "2026-11-22T09:59:59Z"]);
    let mut handed = first;

    let (mut runs, mut sigkills, mut aborts, mut finished) = (0usize, 0usize, 0usize, 0usize);
    let mut concurrent = 0usize;
    let mut typical = Duration::from_millis(50);
    while sigkills + aborts < KILLS || handed < records.len() {
        assert!(
            runs < MAX_RUNS,
            "{runs} runs landed only {} kills {ctx}",
            sigkills + aborts
        );
        // Hand loguru the next few records: it writes them while the run reads.
        if handed < records.len() {
            let n = (1 + rng.below(3) as usize).min(records.len() - handed);
            let w = to_writer.as_mut().unwrap();
            writeln!(w, "{n}").unwrap();
            w.flush().unwrap();
            handed += n;
        }
        // ntfy's trouble for this run: late answers (past the 1 s timeout), refusals.
        ntfy.answer_after(rng.chance(8).then(|| Duration::from_millis(1500)));
        if rng.chance(8) {
            let status = [500, 502, 503, 429][rng.below(4) as usize];
            ntfy.fail_next(&[status]);
        }
        let now = (start + chrono::Duration::seconds(2 * runs as i64)).to_rfc3339();
        let mut cmd = t.command(&["run", "--now", &now]);
        let out = std::fs::File::create(t.path("run-output.txt")).unwrap();
        cmd.stdout(out.try_clone().unwrap()).stderr(out);
        let how = rng.below(100);
        if (45..60).contains(&how) {
            cmd.env(
                "LOGWARDEN_FAULT",
                FAULT_POINTS[rng.below(FAULT_POINTS.len() as u64) as usize],
            );
        }
        // Anywhere within a typical run's time (a SIGKILL after the end lands nowhere).
        let kill_after = (how < 45)
            .then(|| Duration::from_micros(rng.below(typical.as_micros() as u64 * 5 / 4 + 1)));
        let began = std::time::Instant::now();
        let mut child = cmd.spawn().unwrap();
        // Now and then a second run at once (the timer and someone by hand): the lock
        // keeps them apart.
        let second = rng.chance(8).then(|| {
            let mut c = t.command(&["run", "--now", &now]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            c.spawn().unwrap()
        });
        if let Some(d) = kill_after {
            std::thread::sleep(d);
            let _ = child.kill();
        }
        let status = wait_bounded(&mut child, &format!("run {runs} at {now} {ctx}"));
        match status.signal() {
            Some(9) => sigkills += 1,
            Some(6) => aborts += 1,
            Some(s) => panic!("run {runs} died of signal {s} {ctx}"),
            None if status.success() => {
                finished += 1;
                // a moving average of the runs that finish
                typical = (typical * 7 + began.elapsed()) / 8;
            }
            None => panic!(
                "run {runs} at {now} failed: {status}:\n{} {ctx}",
                t.read("run-output.txt")
            ),
        }
        runs += 1;
        if let Some(mut c) = second {
            let status = wait_bounded(&mut c, &format!("the second run beside run {runs} {ctx}"));
            if status.success() {
                concurrent += 1;
            } else {
                panic!("a second run beside run {runs} failed: {status} {ctx}");
            }
        }
    }
    drop(to_writer.take());
    said.clear();
    std::io::Read::read_to_string(&mut from_writer, &mut said).unwrap();
    assert!(
        writer.wait().unwrap().success(),
        "loguru writer failed {ctx}"
    );
    assert_eq!(said.trim(), format!("wrote {total}"), "{ctx}");
    let gz = std::fs::read_dir(t.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log.gz"))
        .count();
    assert!(
        gz >= 2,
        "loguru rotated and compressed too little ({gz}) {ctx}"
    );

    // The trouble stops; a few calm runs at the timer's pace finish what the storm left
    // (a publish in doubt is resent only once ntfy has had time to store it).
    ntfy.answer_after(None);
    ntfy.statuses.lock().unwrap().clear();
    let mut calm = 0;
    loop {
        let at = 2 * runs as i64 + 300 * (calm as i64 + 1);
        let now = (start + chrono::Duration::seconds(at)).to_rfc3339();
        let r = t.ok(&["run", "--now", &now]);
        calm += 1;
        if r.stdout.contains(" 0 waiting") && !r.stdout.contains("in doubt") {
            break;
        }
        assert!(
            calm < 5,
            "still not settled after {calm} calm runs:\n{}\n{ctx}",
            r.all()
        );
    }

    // One incident per signature, its occurrences exact.
    let db = rusqlite::Connection::open(t.path("state/logwarden.db")).unwrap();
    let rows: Vec<(i64, String, i64, String, Option<String>)> = rows5(
        &db,
        "SELECT id, signature, occurrences, samples, file_path FROM incidents",
    );
    let name_re = regex::Regex::new(r"(svc\d{3}\.jobs):").unwrap();
    let mut counted: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (id, _, occurrences, samples, _) in &rows {
        let name = name_re
            .captures(samples)
            .unwrap_or_else(|| panic!("incident #{id} has no sample naming its logger {ctx}"))[1]
            .to_string();
        counted.entry(name).or_default().push(*occurrences as u64);
    }
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(name, n)| counted.get(*name) != Some(&vec![**n]))
        .map(|(name, n)| format!("{name}: written {n}, counted {:?}", counted.get(name)))
        .collect();
    assert!(
        wrong.is_empty() && rows.len() == SIGNATURES,
        "{} incidents for {SIGNATURES} signatures; wrong: {wrong:#?} {ctx}",
        rows.len()
    );

    // One file per incident, each naming its own.
    let files = t.incident_files();
    let mut ids_in_files: Vec<i64> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("id: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{} has no id {ctx}", f.display()))
        })
        .collect();
    ids_in_files.sort();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    ids.sort();
    assert_eq!(ids_in_files, ids, "incident files {files:?} {ctx}");

    // Every notification delivered exactly once; one incident page per incident.
    type OutboxRow = (i64, Option<i64>, String, Option<String>, Option<String>);
    let outbox: Vec<OutboxRow> = rows5(
        &db,
        "SELECT id, incident_id, kind, sent_at, last_error FROM outbox",
    );
    let tag_re = regex::Regex::new(r"(?:^|,)lw-(\d+)-[0-9a-f]{32}(?:,|$)").unwrap();
    let mut delivered: HashMap<i64, usize> = HashMap::new();
    for m in ntfy.messages() {
        let tags = m.header("Tags").unwrap_or("");
        let row: i64 = tag_re
            .captures(tags)
            .unwrap_or_else(|| panic!("a publish without a delivery id: {tags} {ctx}"))[1]
            .parse()
            .unwrap();
        *delivered.entry(row).or_default() += 1;
    }
    let duplicates: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    let lost: Vec<_> = outbox
        .iter()
        .filter(|o| o.3.is_none() || !delivered.contains_key(&o.0))
        .collect();
    assert!(
        duplicates.is_empty() && lost.is_empty() && delivered.len() == outbox.len(),
        "published twice (row, times): {duplicates:?}; not delivered: {lost:?} {ctx}"
    );
    let mut pages: HashMap<i64, usize> = HashMap::new();
    for o in outbox.iter().filter(|o| o.2 == "incident") {
        *pages.entry(o.1.unwrap()).or_default() += 1;
    }
    assert!(
        ids.iter().all(|id| pages.get(id) == Some(&1)) && pages.len() == ids.len(),
        "incident pages per incident: {pages:?} {ctx}"
    );
    let reconciled = outbox
        .iter()
        .filter(|o| {
            o.4.as_deref()
                .is_some_and(|e| e.starts_with("delivered: found"))
        })
        .count();
    eprintln!(
        "kill storm (seed {seed}): {runs} runs, {} kills ({sigkills} SIGKILL, {aborts} at fault \
         points), {finished} finished, {concurrent} second runs beside one, {calm} calm runs after; {total} records of {SIGNATURES} \
         signatures, {gz} gz files; {} notifications, {} publish requests, {reconciled} \
         reconciled from the topic; duplicates 0, losses 0",
        sigkills + aborts,
        outbox.len(),
        ntfy.publish_attempts(),
    );
}

/// Waits for a run, polling: a timed wait could be stretched by a faked clock. A run
/// still going after [`HUNG`] is killed and the test fails.
fn wait_bounded(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let mut waited = Duration::ZERO;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if waited > HUNG {
            let _ = child.kill();
            panic!("{what}: hung");
        }
        std::thread::sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
    }
}

/// Every row of a query of five columns.
fn rows5<A, B, C, D, E>(db: &rusqlite::Connection, sql: &str) -> Vec<(A, B, C, D, E)>
where
    A: rusqlite::types::FromSql,
    B: rusqlite::types::FromSql,
    C: rusqlite::types::FromSql,
    D: rusqlite::types::FromSql,
    E: rusqlite::types::FromSql,
{
    db.prepare(sql)
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Under systemd a service may hold 1,024 files open. A run that resolves many incidents
/// rewrites all their pages; it must not hold a file open per page while it does.
#[test]
fn a_run_rewriting_many_pages_stays_within_a_small_open_file_limit() {
    if !have_loguru() {
        return;
    }
    let t = Test::new();
    t.with_app_source("[incidents]\nresolve_after = \"1h\"\n");
    // 40 loggers with one error each: 40 signatures, 40 incidents.
    t.loguru(
        "from datetime import datetime, timezone\n\
         logger.add(\"app.log\")\n\
         for i in range(40):\n    \
             name = 'app.worker_' + chr(97 + i % 26) + chr(97 + i // 26)\n    \
             at = datetime(2026, 11, 22, 10, 0, i, tzinfo=timezone.utc)\n    \
             # loguru's own time type, moved to `at` (a plain datetime would not format)\n    \
             logger.patch(lambda r, n=name, a=at: r.update(name=n, time=r['time'] + (a - r['time']))).error('Worker pool drained')\n",
    );
    let opened = t.ok(&["run", "--now", "2026-11-22T10:01:00Z"]);
    opened.says("40 new incidents");
    // Quiet for the resolve period: the next run resolves all 40 and rewrites their pages,
    // with 32 files allowed (a run needs about 8 of its own).
    let mut c = t.command(&["run", "--now", "2026-11-22T12:30:00Z"]);
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            let lim = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = Run::from(c.output().expect("logwarden runs"));
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(!run.all().contains("Too many open files"), "{}", run.all());
    let pages = t.incident_files();
    assert_eq!(pages.len(), 40);
    for p in pages {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\nstatus: resolved\n"),
            "{}:\n{text}",
            p.display()
        );
    }
}
