//! Accuracy metrics of log parsing, as used by the LogPAI benchmark (Zhu et al., "Tools and
//! Benchmarks for Automated Log Parsing", ICSE-SEIP 2019; Khan et al., ICSE 2022).
//!
//! Used by `benches/loghub.rs`; kept in the library so that they are unit tested.

use std::collections::HashMap;
use std::hash::Hash;

/// Grouping accuracy: the fraction of lines whose predicted group contains exactly the same
/// lines as their ground-truth group.
pub fn grouping_accuracy<P: Hash + Eq, T: Hash + Eq>(pred: &[P], truth: &[T]) -> f64 {
    assert_eq!(pred.len(), truth.len());
    if pred.is_empty() {
        return 1.0;
    }
    let truth_size = counts(truth.iter());
    let mut by_pred: HashMap<&P, Vec<usize>> = HashMap::new();
    for (i, p) in pred.iter().enumerate() {
        by_pred.entry(p).or_default().push(i);
    }
    let mut correct = 0usize;
    for lines in by_pred.values() {
        let t = &truth[lines[0]];
        if lines.iter().all(|&i| truth[i] == *t) && truth_size[t] == lines.len() {
            correct += lines.len();
        }
    }
    correct as f64 / pred.len() as f64
}

/// Pairwise precision, recall and F1 of the grouping: a pair of lines is predicted when both
/// lines are in the same predicted group, and real when both are in the same ground-truth
/// group. 0/0 counts as 1.
pub fn grouping_f1<P: Hash + Eq, T: Hash + Eq>(pred: &[P], truth: &[T]) -> (f64, f64, f64) {
    assert_eq!(pred.len(), truth.len());
    let pairs = |n: usize| (n * n.saturating_sub(1) / 2) as f64;
    let real: f64 = counts(truth.iter()).values().map(|&n| pairs(n)).sum();
    let parsed: f64 = counts(pred.iter()).values().map(|&n| pairs(n)).sum();
    let both: f64 = counts(pred.iter().zip(truth.iter()))
        .values()
        .map(|&n| pairs(n))
        .sum();
    let ratio = |a: f64, b: f64| if b == 0.0 { 1.0 } else { a / b };
    let precision = ratio(both, parsed);
    let recall = ratio(both, real);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}

/// Parsing accuracy: the fraction of lines whose predicted template equals the ground-truth
/// template after [`normalize_template`].
pub fn parsing_accuracy<A: AsRef<str>, B: AsRef<str>>(pred: &[A], truth: &[B]) -> f64 {
    assert_eq!(pred.len(), truth.len());
    if pred.is_empty() {
        return 1.0;
    }
    let mut cache: HashMap<&str, String> = HashMap::new();
    let mut ok = 0usize;
    for (p, t) in pred.iter().zip(truth) {
        let np = cache
            .entry(p.as_ref())
            .or_insert_with(|| normalize_template(p.as_ref()))
            .clone();
        let nt = cache
            .entry(t.as_ref())
            .or_insert_with(|| normalize_template(t.as_ref()));
        if np == *nt {
            ok += 1;
        }
    }
    ok as f64 / pred.len() as f64
}

/// Normalise a template for comparison: every `<...>` mask (`<*>`, `<NUM>`, `<IP>`...) becomes
/// `<*>`, runs of whitespace become one space, consecutive wildcards (with or without space
/// between them) become one.
pub fn normalize_template(s: &str) -> String {
    let mut masked = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        masked.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('>') {
            Some(j)
                if j > 0
                    && after[..j].bytes().all(|c| {
                        c == b'*' || c == b'_' || c.is_ascii_uppercase() || c.is_ascii_digit()
                    }) =>
            {
                masked.push_str("<*>");
                rest = &after[j + 1..];
            }
            _ => {
                masked.push('<');
                rest = after;
            }
        }
    }
    masked.push_str(rest);
    let mut out = masked.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let next = out.replace("<*> <*>", "<*>").replace("<*><*>", "<*>");
        if next == out {
            return out;
        }
        out = next;
    }
}

fn counts<K: Hash + Eq>(it: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut m = HashMap::new();
    for k in it {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    // Six lines, truth groups A = {0,1,2}, B = {3,4}, C = {5}.
    // Prediction: x = {0,1,2} (exactly A: 3 lines correct), y = {3} and z = {4} (B split: both
    // wrong), w = {5} (exactly C: 1 line correct). GA = (3 + 1) / 6 = 0.6667.
    // Pairs: real = C(3,2) + C(2,2) = 3 + 1 = 4; predicted = C(3,2) = 3; correct pairs = 3.
    // Precision = 3/3 = 1, recall = 3/4, F1 = 2 * 1 * 0.75 / 1.75 = 0.857142...
    const TRUTH: [&str; 6] = ["A", "A", "A", "B", "B", "C"];
    const PRED: [u32; 6] = [1, 1, 1, 2, 3, 4];

    #[test]
    fn ga_by_hand() {
        let ga = grouping_accuracy(&PRED, &TRUTH);
        assert!((ga - 4.0 / 6.0).abs() < 1e-12, "{ga}");
        // Merging B and C into one predicted group: only A is right, GA = 3/6.
        let merged = [1, 1, 1, 2, 2, 2];
        assert!((grouping_accuracy(&merged, &TRUTH) - 0.5).abs() < 1e-12);
        assert_eq!(grouping_accuracy(&TRUTH, &TRUTH), 1.0);
    }

    #[test]
    fn f1_by_hand() {
        let (p, r, f) = grouping_f1(&PRED, &TRUTH);
        assert!((p - 1.0).abs() < 1e-12);
        assert!((r - 0.75).abs() < 1e-12);
        assert!((f - 6.0 / 7.0).abs() < 1e-12, "{f}");
        // Merged B+C: predicted pairs 3 + 3 = 6, correct 3 + 1 = 4; P = 4/6, R = 4/4.
        let (p, r, _) = grouping_f1(&[1, 1, 1, 2, 2, 2], &TRUTH);
        assert!((p - 4.0 / 6.0).abs() < 1e-12);
        assert!((r - 1.0).abs() < 1e-12);
    }

    #[test]
    fn pa_and_normalisation() {
        assert_eq!(normalize_template("a  <NUM> <*>  b"), "a <*> b");
        assert_eq!(normalize_template("x=<*><*> y"), "x=<*> y");
        assert_eq!(normalize_template("a < b > c"), "a < b > c");
        let pred = ["open <*>", "open <*> <*>", "close x", "close y"];
        let truth = ["open <*>", "open <*>", "close <*>", "close y"];
        assert!((parsing_accuracy(&pred, &truth) - 0.75).abs() < 1e-12);
    }
}
