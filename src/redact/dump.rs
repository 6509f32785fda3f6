//! loguru's `diagnose=True` variable dumps. Under a source line of a traceback,
//! loguru draws one connector per variable, at the variable's column:
//!
//! ```text
//!     return connect(host, db_password)
//!                    │     └ 'hunter2 is long'
//!                    └ 'db.internal'
//! ```
//!
//! The value carries no name of its own: the name is the identifier of the source
//! line at the column of the `└`. A value under a secret-like name is redacted
//! (under a name that only hints at one, when it looks random).

use super::pairs::{classify, Tier};
use super::{entropy, placeholder, PLACEHOLDER};

const ELBOW: char = '└';
const BAR: char = '│';

/// Whether a line is a dump line: only spaces and bars before one elbow.
fn elbow_column(line: &str) -> Option<(usize, usize)> {
    let mut col = 0;
    for (i, c) in line.char_indices() {
        match c {
            ' ' | BAR => col += 1,
            ELBOW => return Some((col, i + c.len_utf8())),
            _ => return None,
        }
    }
    None
}

/// The identifier of `code` starting at character column `col` (`cfg.api_key`
/// points at `api_key`).
fn name_at(code: &str, col: usize) -> Option<&str> {
    let (start, _) = code.char_indices().nth(col)?;
    let rest = &code[start..];
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Values that say nothing: `None`, booleans, object reprs (a number stays
/// suspect: PINs and numeric passwords exist).
fn harmless(v: &str) -> bool {
    let v = v.trim();
    v.is_empty()
        || v.starts_with(PLACEHOLDER)
        || matches!(v, "None" | "True" | "False" | "''" | "\"\"" | "b''")
        || (v.starts_with('<') && v.ends_with('>'))
}

/// Redacts dump values under secret-like names; None when nothing changed.
pub fn redact(text: &str) -> Option<String> {
    if !text.contains(ELBOW) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut code: &str = "";
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let Some((col, after)) = elbow_column(body) else {
            code = body;
            out.push_str(line);
            continue;
        };
        let value = body[after..].trim_start();
        let secret = name_at(code, col)
            .and_then(classify)
            .filter(|c| match c.tier {
                Tier::Always => !harmless(value),
                Tier::IfRandom => !value.contains(PLACEHOLDER) && entropy::any_random(value),
            });
        match secret {
            Some(c) => {
                changed = true;
                out.push_str(&body[..after]);
                out.push(' ');
                out.push_str(&placeholder(c.kind));
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    changed.then_some(out)
}
