//! A parser for the Prometheus text exposition format, as the curated scripts print it:
//! `name{label="value",…} value [timestamp_ms]`, with `# HELP` and `# TYPE` lines.
//! Other `#` lines and blank lines are skipped; every other line that does not parse is
//! reported with its number, and parsing goes on.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// Label names and values, sorted by name.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line gave one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The series key: `name{a="x",b="y"}` with labels sorted, or just `name`.
    pub fn key(&self) -> String {
        series_key(&self.name, &self.labels)
    }
}

/// `name{a="x",b="y"}`, labels sorted and values escaped, or `name` without labels.
pub fn series_key(name: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// What a script printed, parsed.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub samples: Vec<Sample>,
    /// `# HELP` text by metric name.
    pub help: BTreeMap<String, String>,
    /// `# TYPE` by metric name.
    pub types: BTreeMap<String, String>,
    /// `line N: what is wrong`, for each line that did not parse.
    pub errors: Vec<String>,
}

/// Parses a whole output.
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            let mut parts = rest.splitn(3, char::is_whitespace);
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), text) if valid_name(name) => {
                    out.help
                        .insert(name.to_string(), text.unwrap_or("").trim().to_string());
                }
                (Some("TYPE"), Some(name), Some(t)) if valid_name(name) => {
                    out.types.insert(name.to_string(), t.trim().to_string());
                }
                _ => {} // a comment
            }
            continue;
        }
        match parse_sample(line) {
            Ok(s) => out.samples.push(s),
            Err(e) => {
                let shown: String = line.chars().take(80).collect();
                out.errors.push(format!("line {}: {e}: `{shown}`", n + 1));
            }
        }
    }
    out
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses one sample line.
pub fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("`{name}` is not a metric name"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(r)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = parse_value(value)?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("`{t}` is not a timestamp in milliseconds"))?,
        ),
    };
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses `a="x",b="y"}` and returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("a label without `=`")?;
        let name = s[..eq].trim();
        if !valid_label_name(name) {
            return Err(format!("`{name}` is not a label name"));
        }
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("a label value must be quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label `{name}` is given twice"));
        }
        s = s[end + 1..].trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => v
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("`{v}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_help_and_type() {
        let p = parse(
            "# HELP disk_used_percent Used space\n# TYPE disk_used_percent gauge\n\
             disk_used_percent{mount=\"/\",fs=\"ext4\"} 41.5\nload1 0.25 1700000000000\n# just a comment\n\n",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.samples.len(), 2);
        assert_eq!(
            p.samples[0].key(),
            "disk_used_percent{fs=\"ext4\",mount=\"/\"}"
        );
        assert_eq!(p.samples[0].value, 41.5);
        assert_eq!(p.samples[1].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(p.help["disk_used_percent"], "Used space");
        assert_eq!(p.types["disk_used_percent"], "gauge");
    }

    #[test]
    fn escapes_in_label_values_round_trip() {
        let s = parse_sample(r#"x{path="a \"b\" \\ c\nd"} 1"#).unwrap();
        assert_eq!(s.labels["path"], "a \"b\" \\ c\nd");
        assert_eq!(parse_sample(&format!("{} 1", s.key())).unwrap(), s);
    }

    #[test]
    fn junk_is_reported_by_line() {
        let p =
            parse("ok 1\nthis is not a metric\nx{a=1} 2\ny{a=\"1\" 3\nz abc\nw 1 2 3\n9bad 1\n");
        assert_eq!(p.samples.len(), 1);
        assert_eq!(p.errors.len(), 6, "{:?}", p.errors);
        assert!(p.errors[0].starts_with("line 2:"), "{}", p.errors[0]);
    }

    #[test]
    fn special_values() {
        assert!(parse_sample("x NaN").unwrap().value.is_nan());
        assert_eq!(parse_sample("x +Inf").unwrap().value, f64::INFINITY);
        assert_eq!(parse_sample("x 1e3").unwrap().value, 1000.0);
    }
}
