//! NAB (Numenta Anomaly Benchmark v1.1) runner and scorer for logwarden's
//! online anomaly detector.
//!
//! Usage: `nab --data <NAB root> --out <DIR> [--loco]`
//!
//! Runs `logwarden::metrics::anomaly::AnomalyDetector` (default config) over
//! every series under `<root>/data`, writes `DIR/<category>/<name>.csv`
//! (`timestamp,value,anomaly_score,label`) and scores the corpus with NAB's
//! rules: scaled-sigmoid weighting relative to the window end, only the
//! earliest detection in a window counts, false positives weighted by their
//! distance from the preceding window, a probationary period of
//! min(floor(0.15 n), 750) rows, one threshold per profile optimised over the
//! whole corpus, and the final score normalised between the null detector and
//! the perfect detector.
//!
//! Picking the threshold on the corpus it scores flatters a detector. With
//! `--loco` the binary also reports a leave-one-category-out score: for each
//! of NAB's seven categories, the threshold and one detector setting from a
//! small grid ([`LOCO_GRID`], applied on top of the default configuration)
//! are chosen on the other six categories and used to score the held-out
//! one. The held-out raw scores are summed and normalised with the corpus's
//! null and perfect detectors, exactly like the standard score.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDateTime;
use logwarden::metrics::anomaly::{AnomalyConfig, AnomalyDetector, AnomalyScore};

const PROBATION_PERCENT: f64 = 0.15;

/// Cost matrix of one NAB profile.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CostMatrix {
    tp: f64,
    fp: f64,
    fn_: f64,
}

/// One series of the corpus with its windows as inclusive row-index ranges.
struct Series {
    /// `category/name.csv`
    rel: String,
    ts_text: Vec<String>,
    ts: Vec<i64>,
    values: Vec<f64>,
    windows: Vec<(usize, usize)>,
}

/// One scorable row: the detector's score, the row's NAB sweep score (what it
/// would add if detected) and the global id of its window, if any.
#[derive(Debug, Clone, Copy)]
struct SweepPoint {
    score: f64,
    sweep: f64,
    window: Option<usize>,
    file: usize,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// NAB's scaled sigmoid: +0.9866 at the left edge of a window (-1), 0 at its
/// right edge, negative after it, and -1 from three window-widths on.
fn scaled_sigmoid(rel_pos: f64) -> f64 {
    if rel_pos >= 3.0 {
        -1.0
    } else {
        2.0 * sigmoid(-5.0 * rel_pos) - 1.0
    }
}

fn probation_length(n: usize) -> usize {
    let p = (PROBATION_PERCENT * n as f64).floor();
    p.min(PROBATION_PERCENT * 5000.0) as usize
}

/// Per-row sweep scores of one file, as NAB's `Sweeper.calcSweepScore`:
/// rows in the probationary period are dropped. `first_window_id` makes
/// window ids unique over the corpus.
fn sweep_points(
    scores: &[f64],
    windows: &[(usize, usize)],
    cm: CostMatrix,
    file: usize,
    first_window_id: usize,
) -> Vec<SweepPoint> {
    let n = scores.len();
    let prob = probation_length(n);
    let max_tp = scaled_sigmoid(-1.0);
    let mut out = Vec::with_capacity(n);
    let mut next = 0usize;
    let mut cur: Option<(usize, usize, usize)> = None; // (id, right, width)
    let mut prev: Option<(usize, usize)> = None; // (right, width)
    for (i, &score) in scores.iter().enumerate() {
        if next < windows.len() && windows[next].0 == i {
            let (l, r) = windows[next];
            cur = Some((first_window_id + next, r, r - l + 1));
            next += 1;
        }
        let (sweep, window) = match cur {
            Some((id, right, width)) => {
                let pos = -((right as f64) - (i as f64) + 1.0) / width as f64;
                (scaled_sigmoid(pos) * cm.tp / max_tp, Some(id))
            }
            None => {
                let pos = match prev {
                    None => 3.0,
                    Some((right, width)) => (i as f64 - right as f64).abs() / (width as f64 - 1.0),
                };
                (scaled_sigmoid(pos) * cm.fp, None)
            }
        };
        if i >= prob {
            out.push(SweepPoint {
                score,
                sweep,
                window,
                file,
            });
        }
        if let Some((_, right, width)) = cur {
            if i == right {
                prev = Some((right, width));
                cur = None;
            }
        }
    }
    out
}

/// Result of the corpus-wide threshold sweep.
#[derive(Debug, Clone)]
struct Optimum {
    threshold: f64,
    raw: f64,
}

/// NAB's `calcScoreByThreshold` over the whole corpus: walk the rows from the
/// highest anomaly score down; each distinct score is a candidate threshold
/// (detection = score >= threshold). Returns the best (highest threshold on
/// ties, as NAB's stable sort does).
fn optimise(points: &mut [SweepPoint], fn_weight: f64, n_windows: usize) -> Optimum {
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut best_in_window: Vec<Option<f64>> = vec![None; n_windows];
    // Windows that have at least one scorable row start as false negatives.
    let mut total = 0.0;
    for p in points.iter() {
        if let Some(w) = p.window {
            if best_in_window[w].is_none() {
                best_in_window[w] = Some(-fn_weight);
                total -= fn_weight;
            }
        }
    }
    let mut cur_threshold = 1.1;
    let mut best = Optimum {
        threshold: cur_threshold,
        raw: total,
    };
    for p in points.iter() {
        if p.score != cur_threshold {
            if total > best.raw {
                best = Optimum {
                    threshold: cur_threshold,
                    raw: total,
                };
            }
            cur_threshold = p.score;
        }
        match p.window {
            None => total += p.sweep,
            Some(w) => {
                let b = best_in_window[w].expect("window initialised");
                if p.sweep > b {
                    total += p.sweep - b;
                    best_in_window[w] = Some(p.sweep);
                }
            }
        }
    }
    if total > best.raw {
        best = Optimum {
            threshold: cur_threshold,
            raw: total,
        };
    }
    best
}

/// Raw NAB score of each file at a fixed threshold.
fn per_file_scores(
    points: &[SweepPoint],
    threshold: f64,
    fn_weight: f64,
    n_files: usize,
    n_windows: usize,
) -> Vec<f64> {
    let mut per_file = vec![0.0; n_files];
    let mut win: Vec<Option<(usize, f64)>> = vec![None; n_windows];
    for p in points {
        match p.window {
            None => {
                if p.score >= threshold {
                    per_file[p.file] += p.sweep;
                }
            }
            Some(w) => {
                let e = win[w].get_or_insert((p.file, -fn_weight));
                if p.score >= threshold && p.sweep > e.1 {
                    e.1 = p.sweep;
                }
            }
        }
    }
    for (f, s) in win.into_iter().flatten() {
        per_file[f] += s;
    }
    per_file
}

/// Score a whole corpus (one score vector per series) for one profile.
fn score_corpus(
    series: &[Series],
    scores: &[Vec<f64>],
    cm: CostMatrix,
) -> (Optimum, Vec<SweepPoint>, usize) {
    let mut points = Vec::new();
    let mut wid = 0;
    for (f, (s, sc)) in series.iter().zip(scores).enumerate() {
        points.extend(sweep_points(sc, &s.windows, cm, f, wid));
        wid += s.windows.len();
    }
    let mut sorted = points.clone();
    let opt = optimise(&mut sorted, cm.fn_, wid);
    (opt, points, wid)
}

/// NAB category of a series (`realTweets/Twitter_volume_AAPL.csv` ->
/// `realTweets`).
fn category(rel: &str) -> &str {
    rel.split_once('/').map_or(rel, |(c, _)| c)
}

/// Detector settings the leave-one-category-out evaluation chooses among,
/// besides the alarm threshold: the default first (it wins ties), then a
/// few neighbours of it, as `NAB_CONFIG`-style overrides.
const LOCO_GRID: &[&str] = &[
    "",
    "min_relative_scale=0.01",
    "min_relative_scale=0.02",
    "min_relative_scale=0.06",
    "cusum_h=10",
    "cusum_h=14",
    "repeat_factor=0.2",
    "repeat_factor=0.45",
    "season_gain=0.5",
    "season_gain=0.8",
    "age_penalty=0",
    "age_penalty=1",
    "age_penalty=3",
];

/// What leave-one-category-out chose for one held-out category.
#[derive(Debug, Clone)]
struct LocoFold {
    category: String,
    setting: usize,
    threshold: f64,
    /// Raw score of the held-out category at the chosen setting.
    held_raw: f64,
}

/// Leave-one-category-out: for each category, pick the setting (index into
/// `runs`) and threshold that maximise the raw score of the other
/// categories, then score the held-out category with them. `runs[g][f]` is
/// the score vector of series `f` under setting `g`. Returns the folds; the
/// held-out raw scores sum to a corpus raw score.
fn leave_one_category_out(
    series: &[Series],
    runs: &[Vec<Vec<f64>>],
    cm: CostMatrix,
) -> Vec<LocoFold> {
    let mut cats: Vec<&str> = series.iter().map(|s| category(&s.rel)).collect();
    cats.sort_unstable();
    cats.dedup();
    let per_setting: Vec<(Vec<SweepPoint>, usize)> = runs
        .iter()
        .map(|scores| {
            let (_, points, nw) = score_corpus(series, scores, cm);
            (points, nw)
        })
        .collect();
    let mut folds = Vec::new();
    for cat in cats {
        let held = |f: usize| category(&series[f].rel) == cat;
        let mut best: Option<(usize, Optimum)> = None;
        for (g, (points, nw)) in per_setting.iter().enumerate() {
            let mut train: Vec<SweepPoint> =
                points.iter().copied().filter(|p| !held(p.file)).collect();
            let opt = optimise(&mut train, cm.fn_, *nw);
            if best.as_ref().is_none_or(|(_, b)| opt.raw > b.raw) {
                best = Some((g, opt));
            }
        }
        let Some((g, opt)) = best else { continue };
        let (points, nw) = &per_setting[g];
        let pf = per_file_scores(points, opt.threshold, cm.fn_, series.len(), *nw);
        let held_raw = pf
            .iter()
            .enumerate()
            .filter(|&(f, _)| held(f))
            .map(|(_, r)| r)
            .sum();
        folds.push(LocoFold {
            category: cat.to_string(),
            setting: g,
            threshold: opt.threshold,
            held_raw,
        });
    }
    folds
}

fn parse_ts(s: &str) -> Result<i64, String> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc().timestamp())
        .map_err(|e| format!("bad timestamp {s:?}: {e}"))
}

fn load_profiles(path: &Path) -> Result<BTreeMap<String, CostMatrix>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("profiles.json is not an object")?;
    let mut out = BTreeMap::new();
    for (name, p) in obj {
        let cm = &p["CostMatrix"];
        let get = |k: &str| {
            cm[k]
                .as_f64()
                .ok_or_else(|| format!("profile {name}: missing {k}"))
        };
        out.insert(
            name.clone(),
            CostMatrix {
                tp: get("tpWeight")?,
                fp: get("fpWeight")?,
                fn_: get("fnWeight")?,
            },
        );
    }
    Ok(out)
}

fn load_corpus(root: &Path) -> Result<Vec<Series>, String> {
    let wpath = root.join("labels/combined_windows.json");
    let text = fs::read_to_string(&wpath).map_err(|e| format!("{}: {e}", wpath.display()))?;
    let labels: BTreeMap<String, Vec<Vec<String>>> =
        serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (rel, wins) in labels {
        let path = root.join("data").join(&rel);
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut s = Series {
            rel: rel.clone(),
            ts_text: Vec::new(),
            ts: Vec::new(),
            values: Vec::new(),
            windows: Vec::new(),
        };
        for line in text.lines().skip(1) {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let (t, v) = line
                .split_once(',')
                .ok_or_else(|| format!("{rel}: bad line {line:?}"))?;
            s.ts.push(parse_ts(t)?);
            s.ts_text.push(t.to_string());
            s.values.push(
                v.trim()
                    .parse::<f64>()
                    .map_err(|e| format!("{rel}: bad value {v:?}: {e}"))?,
            );
        }
        for w in wins {
            if w.len() != 2 {
                return Err(format!("{rel}: bad window {w:?}"));
            }
            let (a, b) = (parse_ts(&w[0])?, parse_ts(&w[1])?);
            let find = |t: i64| {
                s.ts.iter()
                    .position(|&x| x == t)
                    .ok_or_else(|| format!("{rel}: window edge {t} is not a row timestamp"))
            };
            s.windows.push((find(a)?, find(b)?));
        }
        s.windows.sort_unstable();
        out.push(s);
    }
    Ok(out)
}

fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn in_window(windows: &[(usize, usize)], i: usize) -> bool {
    windows.iter().any(|&(l, r)| l <= i && i <= r)
}

fn write_results(out: &Path, s: &Series, scores: &[f64]) -> Result<(), String> {
    let path = out.join(&s.rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut buf = String::with_capacity(s.values.len() * 48);
    buf.push_str("timestamp,value,anomaly_score,label\n");
    for (i, score) in scores.iter().enumerate() {
        let label = u8::from(in_window(&s.windows, i));
        let _ = writeln!(buf, "{},{},{},{}", s.ts_text[i], s.values[i], score, label);
    }
    let mut f = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(buf.as_bytes()).map_err(|e| e.to_string())
}

/// Run a fresh detector over one series; `on_sample` sees each verdict and
/// the seconds spent on it.
fn detect_series(
    s: &Series,
    cfg: &AnomalyConfig,
    mut on_sample: impl FnMut(i64, f64, &AnomalyScore, f64),
) -> Vec<f64> {
    let mut det = AnomalyDetector::new(cfg.clone());
    let mut scores = Vec::with_capacity(s.values.len());
    for (&t, &v) in s.ts.iter().zip(&s.values) {
        let t0 = Instant::now();
        let a = det.observe(t, v);
        on_sample(t, v, &a, t0.elapsed().as_secs_f64());
        scores.push(a.score);
    }
    scores
}

fn config_with_overrides(
    base: &AnomalyConfig,
    spec: Option<&str>,
) -> Result<AnomalyConfig, String> {
    let mut c = base.clone();
    for kv in spec.unwrap_or("").split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or(format!("bad override {kv:?}"))?;
        let f = || v.parse::<f64>().map_err(|e| format!("{k}: {e}"));
        let u = || v.parse::<usize>().map_err(|e| format!("{k}: {e}"));
        match k {
            "window" => c.window = u()?,
            "min_samples" => c.min_samples = u()?,
            "season_days" => c.season_days = u()?,
            "min_season_days" => c.min_season_days = u()?,
            "season_weeks" => c.season_weeks = u()?,
            "min_season_weeks" => c.min_season_weeks = u()?,
            "season_gain" => c.season_gain = f()?,
            "cusum_k" => c.cusum_k = f()?,
            "cusum_h" => c.cusum_h = f()?,
            "age_penalty" => c.age_penalty = f()?,
            "age_cap" => c.age_cap = u()?,
            "cusum_clip" => c.cusum_clip = f()?,
            "min_relative_scale" => c.min_relative_scale = f()?,
            "calib_window" => c.calib_window = u()?,
            "refractory" => c.refractory = u()?,
            "repeat_factor" => c.repeat_factor = f()?,
            "knn_k" => c.knn_k = u()?,
            "ewma_alpha" => c.ewma_alpha = f()?,
            "half_score_surprisal" => c.half_score_surprisal = f()?,
            "repeat_margin" => c.repeat_margin = f()?,
            "shift_seasonal" => c.shift_seasonal = v == "1" || v == "true",
            "far_or_rare" => c.far_or_rare = f()?,
            _ => return Err(format!("unknown config key {k:?}")),
        }
    }
    Ok(c)
}

struct Args {
    data: PathBuf,
    out: PathBuf,
    loco: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut data = None;
    let mut out = None;
    let mut loco = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => data = it.next().map(PathBuf::from),
            "--out" => out = it.next().map(PathBuf::from),
            "--loco" => loco = true,
            "-h" | "--help" => {
                return Err("usage: nab --data <NAB root> --out <DIR> [--loco]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        data: data.ok_or("missing --data")?,
        out: out.ok_or("missing --out")?,
        loco,
    })
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let series = load_corpus(&args.data)?;
    let profiles = load_profiles(&args.data.join("config/profiles.json"))?;
    let n_rows: usize = series.iter().map(|s| s.values.len()).sum();
    let n_windows: usize = series.iter().map(|s| s.windows.len()).sum();
    println!(
        "NAB corpus: {} series, {} rows, {} windows",
        series.len(),
        n_rows,
        n_windows
    );

    // Ablations only: NAB_CONFIG="key=value,..." overrides the default
    // configuration. Reported figures use the default.
    let cfg = config_with_overrides(
        &AnomalyConfig::default(),
        std::env::var("NAB_CONFIG").ok().as_deref(),
    )?;
    if cfg != AnomalyConfig::default() {
        println!("config overrides in effect: {cfg:?}");
    }

    // Detection: one detector per series, samples fed in time order.
    let want_debug = std::env::var_os("NAB_DEBUG").is_some();
    let mut all_scores = Vec::with_capacity(series.len());
    let mut detect_time = 0.0f64;
    let mut sample_us: Vec<f32> = Vec::with_capacity(n_rows);
    for s in &series {
        let mut debug = String::new();
        let scores = detect_series(s, &cfg, |t, v, a, dt| {
            detect_time += dt;
            sample_us.push((dt * 1e6) as f32);
            if want_debug {
                let _ = writeln!(
                    debug,
                    "{}\t{}\t{:.4}\t{:.3}\t{:.3}\t{:.3}\t{}",
                    t, v, a.score, a.baseline, a.band.0, a.band.1, a.reason
                );
            }
        });
        if want_debug {
            let p = args.out.join(format!("{}.debug.tsv", s.rel));
            fs::write(&p, debug).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        write_results(&args.out, s, &scores)?;
        all_scores.push(scores);
    }
    let us_per_sample = detect_time * 1e6 / n_rows as f64;
    sample_us.sort_by(f32::total_cmp);
    let pct = |q: f64| sample_us[((sample_us.len() - 1) as f64 * q) as usize];
    let (p50, p99, p999, worst) = (pct(0.5), pct(0.99), pct(0.999), pct(1.0));
    let over_1ms = sample_us.iter().filter(|&&x| x > 1000.0).count();
    let rss = peak_rss_kib();

    // Reference detectors for normalisation.
    let null_scores: Vec<Vec<f64>> = series.iter().map(|s| vec![0.5; s.values.len()]).collect();
    let perfect_scores: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mut v = vec![0.0; s.values.len()];
            for &(l, _) in &s.windows {
                v[l] = 1.0;
            }
            v
        })
        .collect();

    let mut summary = String::new();
    for (name, &cm) in &profiles {
        let (null, _, _) = score_corpus(&series, &null_scores, cm);
        let (perfect, _, _) = score_corpus(&series, &perfect_scores, cm);
        let (opt, points, nw) = score_corpus(&series, &all_scores, cm);
        let norm = 100.0 * (opt.raw - null.raw) / (perfect.raw - null.raw);
        let _ = writeln!(
            summary,
            "profile {name:<20} score {norm:6.2}  threshold {:.6}  raw {:.3}  (null raw {:.3}, perfect raw {:.3})",
            opt.threshold, opt.raw, null.raw, perfect.raw
        );
        if name == "standard" {
            let pf = per_file_scores(&points, opt.threshold, cm.fn_, series.len(), nw);
            let mut rows: Vec<(f64, &str, usize)> = series
                .iter()
                .zip(&pf)
                .map(|(s, &sc)| {
                    (
                        sc - s.windows.len() as f64 * cm.tp,
                        s.rel.as_str(),
                        s.windows.len(),
                    )
                })
                .collect();
            rows.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut lost = String::new();
            for (loss, rel, w) in rows.iter() {
                let _ = writeln!(lost, "  {loss:8.3}  {rel} ({w} windows)");
            }
            fs::write(args.out.join("standard_per_file.txt"), &lost).map_err(|e| e.to_string())?;
            let _ = writeln!(summary, "points lost vs perfect (standard), worst first:");
            for line in lost.lines().take(10) {
                let _ = writeln!(summary, "{line}");
            }
        }
    }
    // The held-out score with only the threshold chosen per fold: costs no detection, and
    // gives a setting tried through `NAB_CONFIG` its held-out figure too.
    for (name, &cm) in &profiles {
        let (null, _, _) = score_corpus(&series, &null_scores, cm);
        let (perfect, _, _) = score_corpus(&series, &perfect_scores, cm);
        let folds = leave_one_category_out(&series, std::slice::from_ref(&all_scores), cm);
        let raw: f64 = folds.iter().map(|f| f.held_raw).sum();
        let norm = 100.0 * (raw - null.raw) / (perfect.raw - null.raw);
        let _ = writeln!(
            summary,
            "held out, threshold only: profile {name:<20} score {norm:6.2}  raw {raw:.3}"
        );
        if name == "standard" {
            for f in &folds {
                let _ = writeln!(
                    summary,
                    "  held out {:<22} threshold {:.6}  held-out raw {:8.3}",
                    f.category, f.threshold, f.held_raw
                );
            }
        }
    }
    print!("{summary}");
    if args.loco {
        // NAB_LOCO_EXTRA="spec;spec" adds neighbours of a setting tried through
        // `NAB_CONFIG` to the grid, so the folds can also turn it down.
        let extra = std::env::var("NAB_LOCO_EXTRA").unwrap_or_default();
        let grid: Vec<&str> = LOCO_GRID
            .iter()
            .copied()
            .chain(extra.split(';').filter(|s| !s.is_empty()))
            .collect();
        let mut runs = vec![all_scores.clone()];
        for spec in &grid[1..] {
            let c = config_with_overrides(&cfg, Some(spec))?;
            runs.push(
                series
                    .iter()
                    .map(|s| detect_series(s, &c, |_, _, _, _| {}))
                    .collect(),
            );
        }
        for (name, &cm) in &profiles {
            let (null, _, _) = score_corpus(&series, &null_scores, cm);
            let (perfect, _, _) = score_corpus(&series, &perfect_scores, cm);
            let folds = leave_one_category_out(&series, &runs, cm);
            let raw: f64 = folds.iter().map(|f| f.held_raw).sum();
            let norm = 100.0 * (raw - null.raw) / (perfect.raw - null.raw);
            println!("leave-one-category-out {name:<20} score {norm:6.2}  raw {raw:.3}");
            for f in &folds {
                let spec = grid[f.setting];
                println!(
                    "  held out {:<22} setting {:<20} threshold {:.6}  held-out raw {:8.3}",
                    f.category,
                    if spec.is_empty() { "default" } else { spec },
                    f.threshold,
                    f.held_raw
                );
            }
        }
    }
    println!(
        "detector speed: {us_per_sample:.2} us/sample mean; p50 {p50:.1}, p99 {p99:.1}, p99.9 {p999:.1}, max {worst:.0} us; {over_1ms} of {n_rows} samples over 1 ms"
    );
    match rss {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable"),
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("nab: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: CostMatrix = CostMatrix {
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn scaled_sigmoid_reference_points() {
        assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
        assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
        assert!(close(scaled_sigmoid(0.0), 0.0));
        assert!((scaled_sigmoid(1.0) + 0.98661).abs() < 1e-5);
        assert!(close(scaled_sigmoid(3.0), -1.0));
        assert!(close(scaled_sigmoid(10.0), -1.0));
    }

    #[test]
    fn probation_is_15_percent_capped_at_750() {
        assert_eq!(probation_length(100), 15);
        assert_eq!(probation_length(1001), 150);
        assert_eq!(probation_length(5000), 750);
        assert_eq!(probation_length(22000), 750);
    }

    /// 100 rows, probation 15, one window at rows 40..=49.
    fn example() -> Vec<(usize, usize)> {
        vec![(40, 49)]
    }

    fn raw(scores: &[f64], windows: &[(usize, usize)], cm: CostMatrix) -> Optimum {
        let mut pts = sweep_points(scores, windows, cm, 0, 0);
        optimise(&mut pts, cm.fn_, windows.len())
    }

    #[test]
    fn detection_at_window_start_scores_one() {
        let mut s = vec![0.0; 100];
        s[40] = 1.0;
        let o = raw(&s, &example(), STD);
        assert!(close(o.raw, 1.0));
        assert!(close(o.threshold, 1.0));
    }

    #[test]
    fn only_earliest_detection_in_window_counts() {
        let mut s = vec![0.0; 100];
        s[45] = 0.9;
        s[46] = 0.9;
        s[48] = 0.9;
        let o = raw(&s, &example(), STD);
        // position of row 45: -(49 - 45 + 1) / 10 = -0.5
        let expect = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0);
        assert!(close(o.raw, expect), "{} vs {expect}", o.raw);
    }

    #[test]
    fn false_positive_weights() {
        // Before any window: full fp weight.
        let mut s = vec![0.0; 100];
        s[20] = 1.0;
        let pts = sweep_points(&s, &example(), STD, 0, 0);
        let p20 = pts.iter().find(|p| p.score == 1.0).unwrap();
        assert!(close(p20.sweep, -0.11));
        // Just after the window: distance 1 / (10 - 1).
        let pts = sweep_points(&vec![0.0; 100], &example(), STD, 0, 0);
        let p50 = pts[50 - 15];
        assert!(close(p50.sweep, scaled_sigmoid(1.0 / 9.0) * 0.11));
        assert!(p50.sweep < 0.0 && p50.sweep > -0.11 * 0.6);
        // Far after the window (>= 3 widths): full weight.
        let p90 = pts[90 - 15];
        assert!(close(p90.sweep, -0.11));
    }

    #[test]
    fn probationary_rows_are_ignored() {
        let mut s = vec![0.0; 100];
        s[3] = 1.0; // inside probation: ignored, so a firing there costs nothing
        let o = raw(&s, &example(), STD);
        assert!(close(o.raw, -1.0));
        assert!(close(o.threshold, 1.1));
    }

    #[test]
    fn missed_window_and_fp_tradeoff() {
        // One detection at window start plus 3 far false positives with higher score.
        let mut s = vec![0.0; 100];
        s[40] = 0.5;
        s[20] = 0.8;
        s[25] = 0.8;
        s[30] = 0.8;
        let o = raw(&s, &example(), STD);
        // threshold 0.5: 1 - 0.33 = 0.67 beats threshold 1.1: -1
        assert!(close(o.threshold, 0.5));
        assert!(close(o.raw, 1.0 - 0.33));
        let heavy = CostMatrix {
            tp: 1.0,
            fp: 1.0,
            fn_: 1.0,
        };
        let o = raw(&s, &example(), heavy);
        assert!(close(o.threshold, 1.1));
        assert!(close(o.raw, -1.0));
    }

    #[test]
    fn per_file_scores_sum_to_corpus_score() {
        let mut a = vec![0.1; 100];
        a[42] = 0.7;
        a[60] = 0.9;
        let b = vec![0.2; 100];
        let wa = example();
        let wb = vec![(70usize, 79usize)];
        let mut pts = sweep_points(&a, &wa, STD, 0, 0);
        pts.extend(sweep_points(&b, &wb, STD, 1, 1));
        let mut sorted = pts.clone();
        let o = optimise(&mut sorted, 1.0, 2);
        let pf = per_file_scores(&pts, o.threshold, 1.0, 2, 2);
        assert!(close(pf.iter().sum::<f64>(), o.raw));
    }

    fn series(rel: &str, n: usize, windows: Vec<(usize, usize)>) -> Series {
        Series {
            rel: rel.to_string(),
            ts_text: vec![String::new(); n],
            ts: (0..n as i64).collect(),
            values: vec![0.0; n],
            windows,
        }
    }

    #[test]
    fn leave_one_category_out_never_sees_the_held_out_labels() {
        // Setting 0 finds the anomaly of category a, setting 1 that of b.
        let corpus = vec![
            series("a/x.csv", 100, vec![(40, 49)]),
            series("b/y.csv", 100, vec![(40, 49)]),
        ];
        let hit = || {
            let mut v = vec![0.0; 100];
            v[40] = 1.0;
            v
        };
        let runs = vec![vec![hit(), vec![0.0; 100]], vec![vec![0.0; 100], hit()]];
        let folds = leave_one_category_out(&corpus, &runs, STD);
        assert_eq!(folds.len(), 2);
        // Held-out a gets the setting that is best on b, and misses; and
        // the other way round.
        assert_eq!(folds[0].category, "a");
        assert_eq!(folds[0].setting, 1);
        assert!(close(folds[0].held_raw, -1.0), "{folds:?}");
        assert_eq!(folds[1].category, "b");
        assert_eq!(folds[1].setting, 0);
        assert!(close(folds[1].held_raw, -1.0), "{folds:?}");
        // A setting that is good on both is chosen in every fold and keeps
        // its full score.
        let runs = vec![vec![vec![0.0; 100]; 2], vec![hit(), hit()]];
        let folds = leave_one_category_out(&corpus, &runs, STD);
        assert!(folds
            .iter()
            .all(|f| f.setting == 1 && close(f.held_raw, 1.0)));
    }

    #[test]
    fn timestamps_parse_with_and_without_fraction() {
        assert_eq!(
            parse_ts("2014-04-10 07:15:00.000000").unwrap(),
            parse_ts("2014-04-10 07:15:00").unwrap()
        );
    }
}
