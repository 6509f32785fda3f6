//! Accuracy and speed of the template miner on the Loghub-2k samples.
//!
//! `cargo bench --bench loghub`. Environment:
//! * `LOGHUB_DIR`: data directory (default `../shared/data/loghub2k` from the crate root);
//! * `LOGHUB_PASSES`: passes over all datasets for the throughput figure (default 50);
//! * `LOGHUB_DEBUG`: `all` or a dataset name: print wrongly grouped examples to stderr;
//! * `LOGHUB_EXTRA`: a directory of more Loghub-2k datasets in the same layout (say the six
//!   that `LOGHUB_DIR` leaves out): they are scored in a table of their own, never used to
//!   choose anything.
//!
//! Besides the table of the configuration logwarden uses, the bench prints a leave-one-out
//! figure: for each dataset, the similarity threshold is chosen on the nine others (best
//! average GA among [`THRESHOLDS`]) and the dataset is scored with it; the figure is the
//! average of those held-out scores.
//!
//! Data: Loghub (https://github.com/logpai/loghub), Zhu et al., "Loghub: A Large Collection of
//! System Log Datasets for AI-driven Log Analytics", ISSRE 2023; corrected ground truth of
//! Khan et al., ICSE 2022.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use logwarden::signature::drain::SIMILARITY;
use logwarden::signature::eval::{
    grouping_accuracy, grouping_f1, normalize_template, parsing_accuracy,
};
use logwarden::signature::{GroupId, Miner};

const DATASETS: [&str; 10] = [
    "Apache",
    "BGL",
    "HDFS",
    "HPC",
    "Hadoop",
    "Mac",
    "OpenSSH",
    "OpenStack",
    "Spark",
    "Windows",
];

/// The similarity thresholds the leave-one-out figure chooses from.
const THRESHOLDS: [f64; 5] = [0.3, 0.4, 0.5, 0.6, 0.7];

struct Dataset {
    name: String,
    messages: Vec<String>,
    truth: Vec<String>,
}

fn load(dir: &std::path::Path, name: &str) -> Dataset {
    let path = dir
        .join(name)
        .join(format!("{name}_2k.log_structured_corrected.csv"));
    let mut rdr = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = rdr.headers().expect("csv header").clone();
    let col = |n: &str| {
        headers
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("{name}: no column {n}"))
    };
    let (content, template) = (col("Content"), col("EventTemplate"));
    let mut messages = Vec::new();
    let mut truth = Vec::new();
    for rec in rdr.records() {
        let rec = rec.expect("csv record");
        messages.push(rec[content].to_string());
        truth.push(rec[template].to_string());
    }
    Dataset {
        name: name.to_string(),
        messages,
        truth,
    }
}

/// CPU time of this thread: the throughput on a machine shared with other work (wall
/// time counts the waits for a core too).
fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime only writes into the struct we pass.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0 {
            ru.ru_maxrss
        } else {
            -1
        }
    }
}

struct Row {
    ga: f64,
    f1: f64,
    pa: f64,
    groups: usize,
    truth_groups: usize,
}

/// Grouping accuracy with another similarity threshold.
fn ga_with(d: &Dataset, similarity: f64) -> f64 {
    let mut miner = Miner::with_similarity(similarity);
    let groups: Vec<GroupId> = d.messages.iter().map(|m| miner.add(m).group).collect();
    grouping_accuracy(&groups, &d.truth)
}

/// For each dataset, the threshold that is best on the others (ties go to logwarden's own,
/// then to the lower), and the dataset's GA with it; and the average GA by threshold.
fn leave_one_out(data: &[Dataset]) -> (Vec<(f64, f64)>, Vec<f64>) {
    let scores: Vec<Vec<f64>> = data
        .iter()
        .map(|d| THRESHOLDS.iter().map(|&t| ga_with(d, t)).collect())
        .collect();
    let by_threshold = (0..THRESHOLDS.len())
        .map(|k| scores.iter().map(|s| s[k]).sum::<f64>() / data.len() as f64)
        .collect();
    let picks = (0..data.len())
        .map(|held| {
            let mut best = (f64::MIN, 0);
            for k in 0..THRESHOLDS.len() {
                let others: f64 = (0..data.len())
                    .filter(|&i| i != held)
                    .map(|i| scores[i][k])
                    .sum();
                let tie = (others - best.0).abs() < 1e-9;
                if (others > best.0 && !tie) || (tie && THRESHOLDS[k] == SIMILARITY) {
                    best = (others, k);
                }
            }
            (THRESHOLDS[best.1], scores[held][best.1])
        })
        .collect();
    (picks, by_threshold)
}

fn print_table(
    data: &[Dataset],
    rows: &[Row],
    times: Option<(&[Duration], Duration)>,
    passes: usize,
    label: &str,
) {
    println!("| {label} | GA | F1 | PA | groups (pred/truth) | lines/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut sums = (0.0, 0.0, 0.0);
    let mut total_lines = 0usize;
    let mut total_time = Duration::ZERO;
    for (i, (d, r)) in data.iter().zip(rows).enumerate() {
        sums.0 += r.ga;
        sums.1 += r.f1;
        sums.2 += r.pa;
        let speed = match times {
            Some((times, _)) => {
                let lines = d.messages.len() * passes;
                total_lines += lines;
                total_time += times[i];
                format!("{:.0}", lines as f64 / times[i].as_secs_f64())
            }
            None => "-".to_string(),
        };
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {}/{} | {speed} |",
            d.name, r.ga, r.f1, r.pa, r.groups, r.truth_groups,
        );
    }
    let n = rows.len() as f64;
    let speed = if times.is_some() {
        format!("**{:.0}**", total_lines as f64 / total_time.as_secs_f64())
    } else {
        "-".to_string()
    };
    // CI reads the first line that starts with `| **average**`: the main table's.
    let avg = if label == "dataset" {
        "average".to_string()
    } else {
        format!("{label} average")
    };
    println!(
        "| **{avg}** | **{:.3}** | **{:.3}** | **{:.3}** | | {speed} |",
        sums.0 / n,
        sums.1 / n,
        sums.2 / n,
    );
    if let Some((_, cpu)) = times {
        println!();
        println!(
            "{passes} passes, {total_lines} lines mined in {:.3} s, {:.3} s of CPU time ({:.0} lines/s of CPU time); peak RSS {} KiB",
            total_time.as_secs_f64(),
            cpu.as_secs_f64(),
            total_lines as f64 / cpu.as_secs_f64(),
            peak_rss_kib()
        );
    }
}

fn evaluate(d: &Dataset, debug: bool) -> Row {
    let mut miner = Miner::new();
    let groups: Vec<GroupId> = d.messages.iter().map(|m| miner.add(m).group).collect();
    let finals: HashMap<GroupId, String> = miner
        .export()
        .into_iter()
        .map(|r| (r.group, r.template))
        .collect();
    let templates: Vec<&str> = groups.iter().map(|g| finals[g].as_str()).collect();
    let ga = grouping_accuracy(&groups, &d.truth);
    let (_, _, f1) = grouping_f1(&groups, &d.truth);
    let pa = parsing_accuracy(&templates, &d.truth);
    let truth_groups = d
        .truth
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    if debug {
        print_errors(d, &groups, &finals);
    }
    Row {
        ga,
        f1,
        pa,
        groups: finals.len(),
        truth_groups,
    }
}

/// Print the ground-truth groups that were split and the predicted groups that merge several
/// ground-truth groups, with a few example messages.
fn print_errors(d: &Dataset, groups: &[GroupId], finals: &HashMap<GroupId, String>) {
    let mut by_truth: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_pred: HashMap<GroupId, Vec<usize>> = HashMap::new();
    for (i, (t, g)) in d.truth.iter().zip(groups).enumerate() {
        by_truth.entry(t).or_default().push(i);
        by_pred.entry(*g).or_default().push(i);
    }
    let mut shown = std::collections::HashSet::new();
    for (i, g) in groups.iter().enumerate() {
        let (p, t) = (
            normalize_template(&finals[g]),
            normalize_template(&d.truth[i]),
        );
        if p != t && shown.insert(t.clone()) && shown.len() <= 12 {
            eprintln!("[{}] TEMPLATE\n    pred:  {p}\n    truth: {t}", d.name);
        }
    }
    let mut merged: Vec<_> = by_pred
        .iter()
        .filter(|(_, ls)| ls.iter().any(|&i| d.truth[i] != d.truth[ls[0]]))
        .collect();
    merged.sort_by_key(|(_, ls)| std::cmp::Reverse(ls.len()));
    for (g, ls) in merged {
        eprintln!("[{}] MERGED {} lines: {}", d.name, ls.len(), finals[g]);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for &i in ls {
            *seen.entry(&d.truth[i]).or_default() += 1;
        }
        for (t, n) in seen {
            let ex = ls.iter().find(|&&i| d.truth[i] == t).unwrap();
            eprintln!("    {n:4} truth: {t}\n         e.g.: {}", d.messages[*ex]);
        }
    }
    let mut split: Vec<_> = by_truth
        .iter()
        .filter(|(_, ls)| ls.iter().any(|&i| groups[i] != groups[ls[0]]))
        .collect();
    split.sort_by_key(|(_, ls)| std::cmp::Reverse(ls.len()));
    for (t, ls) in split {
        eprintln!("[{}] SPLIT {} lines: truth {}", d.name, ls.len(), t);
        let mut seen: HashMap<GroupId, usize> = HashMap::new();
        for &i in ls {
            *seen.entry(groups[i]).or_default() += 1;
        }
        for (g, n) in seen.iter().take(6) {
            let ex = ls.iter().find(|&&i| groups[i] == *g).unwrap();
            eprintln!(
                "    {n:4} pred: {}\n         e.g.: {}",
                finals[g], d.messages[*ex]
            );
        }
    }
}

fn main() {
    let dir = std::env::var_os("LOGHUB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/loghub2k")
        });
    let passes: usize = std::env::var("LOGHUB_PASSES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let debug = std::env::var("LOGHUB_DEBUG").unwrap_or_default();
    let data: Vec<Dataset> = DATASETS.iter().map(|n| load(&dir, n)).collect();
    let wants_debug = |d: &Dataset| debug == "all" || debug.eq_ignore_ascii_case(&d.name);

    let rows: Vec<Row> = data.iter().map(|d| evaluate(d, wants_debug(d))).collect();

    // Throughput: only the mining is timed, a fresh miner per dataset and pass.
    let mut times = vec![Duration::ZERO; data.len()];
    let cpu_start = thread_cpu();
    for _ in 0..passes {
        for (d, t) in data.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            let mut miner = Miner::new();
            let mut sink = 0u64;
            for m in &d.messages {
                sink = sink.wrapping_add(miner.add(m).group.0);
            }
            std::hint::black_box(sink);
            *t += start.elapsed();
        }
    }
    let cpu = thread_cpu() - cpu_start;
    print_table(&data, &rows, Some((&times, cpu)), passes, "dataset");

    println!();
    println!("Leave-one-out: the similarity threshold chosen on the nine other datasets (from {THRESHOLDS:?}), then the dataset scored with it.");
    println!();
    println!("| held-out dataset | threshold chosen | GA |");
    println!("|---|---:|---:|");
    let (loo, by_threshold) = leave_one_out(&data);
    for (d, (t, ga)) in data.iter().zip(&loo) {
        println!("| {} | {t:.1} | {ga:.3} |", d.name);
    }
    println!(
        "| **leave-one-out average** | | **{:.3}** |",
        loo.iter().map(|x| x.1).sum::<f64>() / loo.len() as f64
    );
    println!();
    let listed: Vec<String> = THRESHOLDS
        .iter()
        .zip(&by_threshold)
        .map(|(t, ga)| format!("{t:.1}: {ga:.3}"))
        .collect();
    println!("Average GA of the ten by threshold: {}", listed.join(", "));

    if let Some(extra) = std::env::var_os("LOGHUB_EXTRA").map(PathBuf::from) {
        let mut names: Vec<String> = std::fs::read_dir(&extra)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", extra.display()))
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !DATASETS.contains(&n.as_str()))
            .collect();
        names.sort();
        let more: Vec<Dataset> = names.iter().map(|n| load(&extra, n)).collect();
        let rows: Vec<Row> = more.iter().map(|d| evaluate(d, wants_debug(d))).collect();
        println!();
        print_table(&more, &rows, None, passes, "unseen");
    }
}
