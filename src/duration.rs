//! Human durations in config and on the command line: `90s`, `15m`, `2h`, `7d`, `1w`,
//! or combinations such as `1h30m`.

use std::time::Duration;

/// Parses `7d`, `15m`, `1h30m`, `500ms`. A bare number is rejected: units are required.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration like 30s, 15m, 2h or 7d"
            ));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms = match unit {
            "ms" => 1,
            "s" | "sec" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "" => return Err(format!("`{text}` needs a unit (s, m, h, d, w)")),
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}` (use ms, s, m, h, d, w)"
                ))
            }
        };
        // Saturating: a 40-digit count must give an error or a huge duration, never an
        // arithmetic overflow (a panic in debug builds, a wrapped small value in release).
        total_ms = total_ms.saturating_add(n.saturating_mul(ms));
    }
    Ok(Duration::from_millis(total_ms.min(u64::MAX as u128) as u64))
}

/// Formats a duration compactly (`1h30m`, `45s`, `7d`).
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse("15").is_err());
        assert!(parse("abc").is_err());
        assert!(parse("3x").is_err());
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let max = Duration::from_millis(u64::MAX);
        assert_eq!(
            parse("99999999999999999999999999999999999999w").unwrap(),
            max
        );
        assert_eq!(
            parse("300000000000000000000000000000000000000ms1w").unwrap(),
            max
        );
    }

    #[test]
    fn formats_round_trip() {
        for s in ["15m", "1h30m", "7d", "45s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
