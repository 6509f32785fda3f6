//! Whether a token looks randomly generated (a key, a signature, a session id)
//! rather than a word, a path or a number. Only asked about values that sit next
//! to a secret-like name: a git sha or a UUID in ordinary text is evidence.

/// Shannon entropy of the token's characters, in bits per character.
pub fn shannon(s: &str) -> f64 {
    let mut counts = [0u32; 128];
    let mut other = std::collections::HashMap::new();
    let mut n = 0u32;
    for c in s.chars() {
        n += 1;
        if (c as u32) < 128 {
            counts[c as usize] += 1;
        } else {
            *other.entry(c).or_insert(0u32) += 1;
        }
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .chain(other.values())
        .filter(|&&k| k > 0)
        .map(|&k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum()
}

/// Hex strings carry at most 4 bits a character, so they get their own bar; a
/// 16-digit hex (logwarden's own signatures, short ids) is not long enough to count.
const MIN_HEX: usize = 20;

/// The entropy a random hex string of `n` digits shows all but about once in
/// 100,000 draws (2.33 bits at 20 digits, 2.89 at 32): a fixed bar of 3 bits
/// let one random 32-digit key in ten thousand through, and one 20-digit key in
/// thirty. Repeats (`deadbeefdeadbeef…`, `aaaa…1`) stay well below it.
fn hex_bar(n: usize) -> f64 {
    (2.3 + 0.035 * n.saturating_sub(MIN_HEX) as f64).min(3.0)
}
/// Base64/base62-ish tokens: random ones of 16+ characters sit near 4 bits a
/// character; English words and identifiers rarely pass 3.5 *and* mix classes.
const MIN_OTHER: usize = 16;
const OTHER_BITS: f64 = 3.5;

/// True when `token` (no spaces) looks like generated key material.
pub fn looks_random(token: &str) -> bool {
    let core: String = token
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | '=' | '~' | '%'))
        .collect();
    if core.len() < MIN_OTHER.min(MIN_HEX) {
        return false;
    }
    let digits = core.chars().filter(char::is_ascii_digit).count();
    let upper = core.chars().filter(char::is_ascii_uppercase).count();
    let lower = core.chars().filter(char::is_ascii_lowercase).count();
    let letters = upper + lower;
    let hex = core.chars().all(|c| c.is_ascii_hexdigit());
    if hex && (upper == 0 || lower == 0) {
        return core.len() >= MIN_HEX
            && digits > 0
            && letters > 0
            && shannon(&core) >= hex_bar(core.len());
    }
    if core.len() < MIN_OTHER || shannon(&core) < OTHER_BITS {
        return false;
    }
    // Mixed classes: letters with digits, or a case mix beyond CamelCase words
    // (a random base62 string is about a third upper case).
    (digits >= 2 && letters >= 2) || (lower > 0 && upper >= 2 && upper * 6 >= letters)
}

/// True when any token of `value` (split at characters that do not occur in
/// keys: spaces, quotes, `:`, `@`, `,`, `;`, ...) looks random. Paths are judged
/// by their segments (`uploads/2026/11/report.png` is not a key), a base64 run
/// with `/` as a whole when it shows base64's `+`/`=` or is long and dotless.
pub fn any_random(value: &str) -> bool {
    value
        .split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_~.%-".contains(c)))
        .any(|tok| {
            tok.split('/').any(looks_random)
                || (tok.contains('/')
                    && (tok.contains('+')
                        || tok.ends_with('=')
                        || (tok.len() >= 32 && !tok.contains('.')))
                    && looks_random(&tok.replace('/', "")))
        })
}
