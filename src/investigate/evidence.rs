//! The evidence an investigator gets, within a budget of estimated tokens (bytes / 4).
//!
//! Sections, in order of priority: the triggering records (whole, with their
//! tracebacks), the other warning/error groups of the same run (counts per template),
//! this signature's history and past verdicts, metric summaries with sparklines (empty
//! until metrics are collected: see [`metric_summaries`]), and recent deploys (`git log`
//! of `deploy_repo`, read-only, with a timeout). What does not fit is summarised by
//! template; a record is never cut inside its traceback. All of it is untrusted text:
//! the prompt frames it between markers carrying a random nonce ([`super::prompt::frame`]),
//! which no log line can contain, so nothing here needs defusing.

use std::fmt::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::store::{ts, IncidentRow, Store};

/// Estimated tokens of a text.
pub fn tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// One warning/error group of the current run, for the "same window" section.
#[derive(Debug, Clone)]
pub struct RunGroup {
    pub signature: String,
    pub template: String,
    /// A record of the group, as written: what its template's literal parts are
    /// checked against when the template is redacted.
    pub sample: String,
    pub level: String,
    pub count: u64,
}

/// What the run knows beyond the incident itself.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    pub groups: Vec<RunGroup>,
}

/// A metric's recent values, summarised for the prompt.
#[derive(Debug, Clone)]
pub struct MetricSummary {
    pub name: String,
    pub unit: String,
    pub values: Vec<f64>,
}

/// Hook for the metric checks: the metric series worth showing next to an incident
/// (each series seen in the last day, recent values). Empty when no metrics are collected;
/// the evidence then says so.
pub fn metric_summaries(store: &Store, now: DateTime<Utc>) -> Vec<MetricSummary> {
    crate::metrics::summaries(store, now)
        .into_iter()
        .map(|(name, unit, values)| MetricSummary { name, unit, values })
        .collect()
}

/// A record too big for the budget, summarised without cutting its traceback: its
/// first line and its last (the exception), with how much was left out.
fn summarise_record(record: &str) -> String {
    let lines: Vec<&str> = record.lines().collect();
    if lines.len() <= 3 {
        let first: String = record.chars().take(600).collect();
        return format!("{first} […record shortened: {} bytes]", record.len());
    }
    let head: Vec<&str> = lines.iter().take(2).copied().collect();
    let last = lines.last().copied().unwrap_or("");
    format!(
        "{}\n[… {} lines of traceback not shown …]\n{}",
        head.join("\n"),
        lines.len() - 3,
        last
    )
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn short(s: &str, max: usize) -> String {
    let line = first_line(s);
    if line.chars().count() <= max {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(max).collect::<String>())
    }
}

/// Records of one shape: the one shown whole and the others, folded.
#[derive(Debug, PartialEq)]
struct Shape {
    shown: usize,
    folded: Vec<usize>,
}

/// Groups records whose lines mask to the same templates, in order of first
/// appearance; each group shows its longest record.
fn fold_by_shape(records: &[String]) -> Vec<Shape> {
    let shape_of = |r: &str| -> Vec<String> {
        r.lines()
            .map(|l| crate::signature::mask_tokens(l).join(" "))
            .collect()
    };
    let mut keys: Vec<Vec<String>> = Vec::new();
    let mut out: Vec<Shape> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let key = shape_of(r);
        match keys.iter().position(|k| *k == key) {
            Some(g) => {
                let s = &mut out[g];
                if r.len() > records[s.shown].len() {
                    s.folded.push(s.shown);
                    s.shown = i;
                } else {
                    s.folded.push(i);
                }
            }
            None => {
                keys.push(key);
                out.push(Shape {
                    shown: i,
                    folded: Vec::new(),
                });
            }
        }
    }
    for s in &mut out {
        s.folded.sort_unstable();
    }
    out
}

/// Where each folded record of a shape differs from the one shown: one line per
/// record (at most [`MAX_RECORDS`]), listing its differing lines, a short one whole
/// (whitespace collapsed), a long one by its differing words only. Every value
/// that sets a record apart is kept; what they share is said once.
fn differences(records: &[String], shape: &Shape) -> String {
    const MAX_RECORDS: usize = 20;
    const SHORT_LINE: usize = 80;
    const MAX_RECORD_CHARS: usize = 400;
    let shown: Vec<&str> = records[shape.shown].lines().collect();
    let mut s = format!(
        "[{} more record(s) of the same shape ({} in all)",
        shape.folded.len(),
        shape.folded.len() + 1
    );
    let mut rows: Vec<String> = Vec::new();
    for &i in &shape.folded {
        let mut parts: Vec<String> = Vec::new();
        for (a, b) in shown.iter().zip(records[i].lines()) {
            if *a == b {
                continue;
            }
            // loguru's `diagnose` draws its variable annotations with box-drawing
            // characters: the value is what differs, not the drawing.
            let words_of = |l: &'_ str| -> Vec<String> {
                l.split_whitespace()
                    .skip_while(|w| w.chars().all(|c| ('\u{2500}'..='\u{257f}').contains(&c)))
                    .map(str::to_string)
                    .collect()
            };
            let words = words_of(b);
            let part = if b.trim().len() <= SHORT_LINE {
                words.join(" ")
            } else {
                let theirs = words_of(a);
                if theirs.len() == words.len() {
                    // Each run of differing words with the word before it, which
                    // usually names the value (`order 1004`, `status 504`).
                    let mut runs: Vec<String> = Vec::new();
                    let mut k = 0;
                    while k < words.len() {
                        if words[k] == theirs[k] {
                            k += 1;
                            continue;
                        }
                        let start = k.saturating_sub(1);
                        while k < words.len() && words[k] != theirs[k] {
                            k += 1;
                        }
                        runs.push(words[start..k].join(" "));
                    }
                    runs.join(" … ")
                } else {
                    words.join(" ")
                }
            };
            if !part.is_empty() && !parts.contains(&part) {
                parts.push(part);
            }
        }
        if !parts.is_empty() {
            rows.push(short(&parts.join(" · "), MAX_RECORD_CHARS));
        }
    }
    if rows.is_empty() {
        s.push_str(", identical to the one shown]\n");
        return s;
    }
    s.push_str("; each one's lines that differ from the one shown:]\n");
    for r in rows.iter().take(MAX_RECORDS) {
        let _ = writeln!(s, "- {r}");
    }
    if rows.len() > MAX_RECORDS {
        let _ = writeln!(s, "- … {} more record(s)", rows.len() - MAX_RECORDS);
    }
    s
}

/// Past verdicts, newest first, in at most `max` lines. A run of verdicts alike (same
/// verdict, severity and level) is one line with how many there were, since when and
/// their range of occurrences, under the newest one's title: ten lines saying "noise"
/// tell the investigator no more than one line saying it ten times.
fn verdict_lines(
    verdicts: &[crate::store::VerdictRow],
    max: usize,
    clean: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut runs: Vec<Vec<&crate::store::VerdictRow>> = Vec::new();
    for v in verdicts.iter().rev() {
        match runs.last_mut() {
            Some(run)
                if run[0].verdict == v.verdict
                    && run[0].severity == v.severity
                    && run[0].level == v.level =>
            {
                run.push(v)
            }
            _ => runs.push(vec![v]),
        }
    }
    let mut lines: Vec<String> = runs
        .iter()
        .take(max)
        .map(|run| {
            let (newest, oldest) = (run[0], run[run.len() - 1]);
            let lo = run.iter().map(|v| v.occurrences).min().unwrap_or(0);
            let hi = run.iter().map(|v| v.occurrences).max().unwrap_or(0);
            let (when, occurrences) = if run.len() == 1 {
                (ts(newest.at), lo.to_string())
            } else {
                (
                    format!(
                        "{} and {} time(s) before since {}",
                        ts(newest.at),
                        run.len() - 1,
                        ts(oldest.at)
                    ),
                    if lo == hi {
                        format!("{lo} each")
                    } else {
                        format!("{lo} to {hi}")
                    },
                )
            };
            format!(
                "- {when}: judged **{}** ({}), {occurrences} occurrence(s) at level {}: {}\n",
                newest.verdict,
                newest.severity,
                newest.level,
                short(&clean(&newest.title), 160)
            )
        })
        .collect();
    if runs.len() > max {
        let older: usize = runs[max..].iter().map(Vec::len).sum();
        lines.push(format!("- … {older} older verdict(s) not shown\n"));
    }
    lines
}

/// A template of the run's other groups: the (count, level) of each group with it,
/// and their total.
type TemplateCounts = (String, Vec<(u64, String)>, u64);

/// The other groups of the run, one line per template (groups with the same template,
/// at another level or from another logger, are one line with a count per level), by
/// their total count: (template, (count, level) per group, total).
fn merge_by_template(
    groups: &[&RunGroup],
    template_of: impl Fn(&RunGroup) -> String,
) -> Vec<TemplateCounts> {
    let mut merged: Vec<TemplateCounts> = Vec::new();
    for g in groups {
        let template = template_of(g);
        match merged.iter_mut().find(|(t, _, _)| *t == template) {
            Some((_, counts, total)) => {
                match counts.iter_mut().find(|(_, l)| *l == g.level) {
                    Some((n, _)) => *n += g.count,
                    None => counts.push((g.count, g.level.clone())),
                }
                *total += g.count;
            }
            None => merged.push((template, vec![(g.count, g.level.clone())], g.count)),
        }
    }
    merged.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    merged
}

/// A number as a person would read it: at most three decimals, none trailing.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = format!("{:.3}", v);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One metric series: its shape (a short sparkline), its range and its last values.
/// The shape and the range say what the whole series would; the exact values that
/// matter most are the latest.
fn metric_line(m: &MetricSummary) -> String {
    const TAIL: usize = 5;
    let finite: Vec<f64> = m.values.iter().copied().filter(|v| v.is_finite()).collect();
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail: Vec<String> = m.values[m.values.len().saturating_sub(TAIL)..]
        .iter()
        .map(|v| num(*v))
        .collect();
    let range = if finite.is_empty() {
        String::new()
    } else {
        format!("range {}–{}, ", num(min), num(max))
    };
    format!(
        "- {}: {} {} values, {range}last {}{}\n",
        m.name,
        crate::metrics::chart::sparkline(&m.values, 24),
        m.values.len(),
        tail.join(" "),
        m.unit
    )
}

/// Builds the evidence for an incident, redacted and within `config.llm.evidence_tokens`.
pub fn for_incident(
    config: &Config,
    store: &Store,
    inc: &IncidentRow,
    ctx: &RunContext,
    now: DateTime<Utc>,
) -> String {
    let budget = config.llm.evidence_tokens * 4;
    let mut out = String::new();
    // Every piece is redacted before it can be cut or summarised (a secret cut in
    // half no longer has the shape that finds it); the whole is redacted again last.
    let red = &config.redact.redactor;

    // 1. The triggering records: one of each shape whole (the longest: it says the
    // most), as many as fit in 60% of the budget; records of a shape already shown
    // are folded into the lines where they differ. Five tracebacks of one KeyError
    // cost one traceback and five values, not five tracebacks.
    let cap = budget * 60 / 100;
    let samples: Vec<String> = inc
        .samples
        .iter()
        .map(|s| red.clean(s.trim_end()))
        .collect();
    let shapes = if config.llm.fold_evidence {
        fold_by_shape(&samples)
    } else {
        (0..samples.len())
            .map(|shown| Shape {
                shown,
                folded: Vec::new(),
            })
            .collect()
    };
    let _ = writeln!(
        out,
        "## Triggering records ({} shown of {} occurrences)\n",
        samples.len(),
        inc.occurrences
    );
    let mut used = 0;
    let mut left_out = 0;
    for (n, shape) in shapes.iter().enumerate() {
        let s = samples[shape.shown].as_str();
        if used + s.len() <= cap {
            used += s.len();
            out.push_str(s);
            out.push_str("\n\n");
        } else if n == 0 {
            let sum = summarise_record(s);
            used += sum.len();
            out.push_str(&sum);
            out.push_str("\n\n");
        } else {
            left_out += 1 + shape.folded.len();
            continue;
        }
        if !shape.folded.is_empty() {
            let diff = differences(&samples, shape);
            used += diff.len();
            out.push_str(&diff);
            out.push('\n');
        }
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "[{left_out} more record(s) of the same template `{}` not shown]\n",
            short(
                &red.clean_template(
                    &inc.template,
                    inc.samples.first().map_or("", String::as_str)
                ),
                200
            )
        );
    }

    // 2. The other groups of the same run, by count.
    let mut others: Vec<&RunGroup> = ctx
        .groups
        .iter()
        .filter(|g| g.signature != inc.signature)
        .collect();
    if !others.is_empty() {
        others.sort_by(|a, b| b.count.cmp(&a.count).then(a.template.cmp(&b.template)));
        let cap = budget * 15 / 100;
        let mut section = String::from("## Other errors this run\n\n");
        let merged = merge_by_template(&others, |g| {
            short(&red.clean_template(&g.template, &g.sample), 200)
        });
        let mut shown = 0;
        for (template, counts, _) in &merged {
            let counts: Vec<String> = counts.iter().map(|(n, l)| format!("{n}× [{l}]")).collect();
            let line = format!("- {} `{template}`\n", counts.join(", "));
            if section.len() + line.len() > cap {
                break;
            }
            section.push_str(&line);
            shown += 1;
        }
        if shown < merged.len() {
            let rest = &merged[shown..];
            let events: u64 = rest.iter().map(|(_, _, n)| n).sum();
            let _ = writeln!(
                section,
                "- … and {} more template(s) with {events} event(s)",
                rest.len()
            );
        }
        out.push_str(&section);
        out.push('\n');
    }

    // 3. History and past verdicts of this signature.
    let mut history = String::new();
    let verdicts = store.verdicts(&inc.signature);
    let never = matches!(&verdicts, Ok(v) if v.is_empty());
    // What the prompt's first line already says (this incident's own first time and
    // count) is not said again.
    let totals = store
        .signature_totals(&inc.signature)
        .ok()
        .flatten()
        .filter(|&(first, total)| first != inc.first_seen || total != inc.occurrences);
    if let Some((first, total)) = totals {
        let _ = writeln!(
            history,
            "- first seen {}, {total} occurrence(s) in all{}",
            ts(first),
            if never {
                ", never investigated before"
            } else {
                ""
            }
        );
    } else if never {
        history.push_str("- never investigated before\n");
    }
    if let Ok(verdicts) = verdicts {
        for line in verdict_lines(&verdicts, 10, |t| red.clean(t)) {
            history.push_str(&line);
        }
    }
    if !history.is_empty() {
        let cap = budget * 10 / 100;
        let history = if history.len() > cap {
            let mut cut = cap;
            while !history.is_char_boundary(cut) {
                cut -= 1;
            }
            let end = history[..cut].rfind('\n').unwrap_or(0);
            format!("{}\n- … older history not shown\n", &history[..end])
        } else {
            history
        };
        let _ = writeln!(out, "## History\n\n{history}");
    }

    // 4. Metrics: the series the checks collect, with sparklines.
    out.push_str("## Metrics\n\n");
    let metrics = metric_summaries(store, now);
    if metrics.is_empty() {
        out.push_str("(none collected)\n\n");
    }
    for m in metrics {
        out.push_str(&metric_line(&m));
    }

    // 5. Recent deploys.
    if let Some(repo) = &config.llm.deploy_repo {
        let cap = budget * 10 / 100;
        let section = match recent_deploys(repo, config.llm.deploy_timeout) {
            Ok(log) if log.trim().is_empty() => "(no commits)\n".to_string(),
            Ok(log) => {
                let mut s = String::new();
                for line in log.lines() {
                    if s.len() + line.len() + 1 > cap {
                        s.push_str("…\n");
                        break;
                    }
                    s.push_str(line);
                    s.push('\n');
                }
                s
            }
            Err(e) => format!("(git log failed: {e})\n"),
        };
        let _ = writeln!(
            out,
            "## Recent deploys (git log of {})\n\n{section}",
            repo.display()
        );
    }

    config.redact.redactor.clean(&out)
}

/// The last commits of a repository: read-only (`git log`, no optional locks).
pub fn recent_deploys(repo: &Path, timeout: Duration) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(repo)
        .args([
            "log",
            "-n",
            "10",
            "--date=iso-strict",
            "--pretty=format:%h %ad %an: %s",
        ])
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = super::exec::run(cmd, timeout, 64 * 1024)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(out.stderr.trim().chars().take(200).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_one_shape_fold_into_their_differences() {
        let tb = |key: &str, n: u32| {
            format!(
                "[app.log]\n2026-11-22 10:00:0{n}.000 | ERROR    | app:f:1 - Lookup failed\nTraceback (most recent call last):\n  File \"/srv/app.py\", line 9, in f\n    return d[k]\nKeyError: '{key}'"
            )
        };
        let records = vec![
            tb("alpha", 1),
            tb("beta", 2),
            "[app.log]\nsomething else entirely".to_string(),
            tb("gamma_longer", 3),
        ];
        let shapes = fold_by_shape(&records);
        assert_eq!(
            shapes,
            vec![
                Shape {
                    shown: 3,
                    folded: vec![0, 1]
                },
                Shape {
                    shown: 2,
                    folded: vec![]
                }
            ]
        );
        let d = differences(&records, &shapes[0]);
        assert!(
            d.contains("2 more record(s) of the same shape (3 in all)"),
            "{d}"
        );
        assert!(
            d.contains("KeyError: 'alpha'") && d.contains("KeyError: 'beta'"),
            "{d}"
        );
        assert!(d.contains("10:00:01") && d.contains("10:00:02"), "{d}");
        assert!(!d.contains("Traceback"), "{d}");
    }

    #[test]
    fn verdicts_alike_are_one_line_and_a_change_starts_another() {
        let at = |m: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 22, 10, m, 0).unwrap();
        let v = |m: u32, verdict: &str, occurrences: u64, title: &str| crate::store::VerdictRow {
            incident_id: None,
            verdict: verdict.into(),
            severity: "info".into(),
            level: "ERROR".into(),
            level_no: 40,
            occurrences,
            title: title.into(),
            at: at(m),
        };
        // Oldest first, as the store gives them.
        let mut verdicts = vec![v(0, "real", 3, "Database down")];
        for m in 1..=9 {
            verdicts.push(v(m, "noise", m as u64, &format!("Bot scan {m}")));
        }
        let lines = verdict_lines(&verdicts, 10, str::to_string);
        assert_eq!(
            lines,
            vec![
                "- 2026-11-22T10:09:00Z and 8 time(s) before since 2026-11-22T10:01:00Z: judged **noise** (info), 1 to 9 occurrence(s) at level ERROR: Bot scan 9\n",
                "- 2026-11-22T10:00:00Z: judged **real** (info), 3 occurrence(s) at level ERROR: Database down\n",
            ]
        );
        // Fewer lines allowed than runs: the older ones are counted.
        let lines = verdict_lines(&verdicts, 1, str::to_string);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "- … 1 older verdict(s) not shown\n");
        // Verdicts that alternate stay one line each.
        let alternating: Vec<_> = (0..4)
            .map(|m| v(m, if m % 2 == 0 { "real" } else { "noise" }, 2, "t"))
            .collect();
        let lines = verdict_lines(&alternating, 10, str::to_string);
        assert_eq!(lines.len(), 4);
        assert!(
            lines.iter().all(|l| l.contains(", 2 occurrence(s)")),
            "{lines:?}"
        );
    }

    #[test]
    fn groups_with_one_template_are_one_line_with_each_level_counted() {
        let g = |sig: &str, template: &str, level: &str, count: u64| RunGroup {
            signature: sig.into(),
            template: template.into(),
            sample: String::new(),
            level: level.into(),
            count,
        };
        let groups = [
            g("a", "Timeout talking to <*>", "ERROR", 6),
            g("b", "Disk almost full", "WARNING", 8),
            g("c", "Timeout talking to <*>", "WARNING", 2),
            g("d", "Timeout talking to <*>", "ERROR", 1),
        ];
        let refs: Vec<&RunGroup> = groups.iter().collect();
        let merged = merge_by_template(&refs, |g| g.template.clone());
        assert_eq!(
            merged,
            vec![
                (
                    "Timeout talking to <*>".to_string(),
                    vec![(7, "ERROR".to_string()), (2, "WARNING".to_string())],
                    9
                ),
                (
                    "Disk almost full".to_string(),
                    vec![(8, "WARNING".to_string())],
                    8
                ),
            ]
        );
    }

    #[test]
    fn a_metric_is_its_shape_range_and_last_values() {
        let m = MetricSummary {
            name: "disk_used_percent{mount=\"/\"} (disk)".into(),
            unit: String::new(),
            values: (0..48).map(|i| 50.0 + i as f64 / 4.0).collect(),
        };
        let line = metric_line(&m);
        assert!(
            line.starts_with("- disk_used_percent{mount=\"/\"} (disk): ▁"),
            "{line}"
        );
        assert!(
            line.ends_with(" 48 values, range 50–61.75, last 60.75 61 61.25 61.5 61.75\n"),
            "{line}"
        );
        // 24 marks of shape for 48 values, not one per value.
        let marks = line.chars().filter(|c| ('▁'..='█').contains(c)).count();
        assert_eq!(marks, 24, "{line}");
        let empty = MetricSummary {
            name: "q".into(),
            unit: String::new(),
            values: vec![f64::NAN],
        };
        assert!(
            metric_line(&empty).contains("1 values, last NaN"),
            "{}",
            metric_line(&empty)
        );
    }

    #[test]
    fn summarising_keeps_the_exception_line() {
        let rec = "2026 | ERROR | x - boom\nTraceback (most recent call last):\n  File \"a.py\", line 1\n    f()\n  File \"b.py\", line 2\n    g()\nValueError: bad";
        let s = summarise_record(rec);
        assert!(s.starts_with("2026 | ERROR | x - boom\nTraceback"));
        assert!(s.ends_with("ValueError: bad"));
        assert!(s.contains("4 lines of traceback not shown"));
    }
}
