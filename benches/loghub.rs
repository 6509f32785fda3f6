//! Accuracy and speed of the template miner on the Loghub-2k samples.
//!
//! `cargo bench --bench loghub`. Environment:
//! * `LOGHUB_DIR`: data directory (default `../shared/data/loghub2k` from the crate root);
//! * `LOGHUB_PASSES`: passes over all datasets for the throughput figure (default 50);
//! * `LOGHUB_DEBUG`: `all` or a dataset name: print wrongly grouped examples to stderr.
//!
//! Data: Loghub (https://github.com/logpai/loghub), Zhu et al., "Loghub: A Large Collection of
//! System Log Datasets for AI-driven Log Analytics", ISSRE 2023; corrected ground truth of
//! Khan et al., ICSE 2022.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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

struct Dataset {
    name: &'static str,
    messages: Vec<String>,
    truth: Vec<String>,
}

fn load(dir: &std::path::Path, name: &'static str) -> Dataset {
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
        name,
        messages,
        truth,
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

    let rows: Vec<Row> = data
        .iter()
        .map(|d| evaluate(d, debug == "all" || debug.eq_ignore_ascii_case(d.name)))
        .collect();

    // Throughput: only the mining is timed, a fresh miner per dataset and pass.
    let mut times = vec![Duration::ZERO; data.len()];
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
    let rss = peak_rss_kib();

    println!("| dataset | GA | F1 | PA | groups (pred/truth) | lines/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut sums = (0.0, 0.0, 0.0);
    let mut total_lines = 0usize;
    let mut total_time = Duration::ZERO;
    for ((d, r), t) in data.iter().zip(&rows).zip(&times) {
        let lines = d.messages.len() * passes;
        total_lines += lines;
        total_time += *t;
        sums.0 += r.ga;
        sums.1 += r.f1;
        sums.2 += r.pa;
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {}/{} | {:.0} |",
            d.name,
            r.ga,
            r.f1,
            r.pa,
            r.groups,
            r.truth_groups,
            lines as f64 / t.as_secs_f64()
        );
    }
    let n = rows.len() as f64;
    println!(
        "| **average** | **{:.3}** | **{:.3}** | **{:.3}** | | **{:.0}** |",
        sums.0 / n,
        sums.1 / n,
        sums.2 / n,
        total_lines as f64 / total_time.as_secs_f64()
    );
    println!();
    println!(
        "{passes} passes, {total_lines} lines mined in {:.3} s; peak RSS {} KiB",
        total_time.as_secs_f64(),
        rss
    );
}
