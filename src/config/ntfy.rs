//! The `[ntfy]` keys beyond server, topic and token: Basic auth, the control
//! topic of the Ack/Mute actions, the click URL template, retries, quiet hours per
//! severity and the hourly cap.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::FixedOffset;

use super::{duration, raw, Secret, Validator};

/// The placeholders a click URL template may use.
pub const CLICK_PLACEHOLDERS: &[&str] = &["{file}", "{id}", "{host}"];

#[derive(Debug, Clone)]
pub struct NtfyMore {
    /// Basic auth: a user name and where the password comes from.
    pub basic: Option<(String, Secret)>,
    /// The private topic the Ack and Mute actions publish to; none: no such actions.
    pub control_topic: Option<String>,
    /// The URL opened by a tap and by the Open action, with `{file}`, `{id}`, `{host}`.
    pub click: Option<String>,
    /// The first wait between attempts on 429 and 5xx (doubled each time).
    pub retry_delay: Duration,
    /// Attempts per notification within one run.
    pub attempts: u32,
    /// Notifications per hour before the rest are folded into one digest.
    pub max_per_hour: u32,
    /// Quiet hours per severity (`info`, `warning`), as minutes after local midnight.
    pub quiet_hours: Vec<QuietHours>,
    /// The zone quiet hours are read in; none: the host's local time.
    pub timezone: Option<QuietZone>,
    /// The HMAC key of control messages (in the state dir, mode 0600).
    pub key_file: PathBuf,
    /// A notification not sent this long after it was queued goes out in a digest of
    /// such notifications instead (an age limit that ends in a message, not silence).
    pub max_age: Duration,
    /// Refusals of one notification (ntfy answering 400, 413, … about the message
    /// itself) before it is set aside as undeliverable and a short notice sent instead.
    pub dead_after: u32,
}

/// `warning = "22:00-07:00"`: from `start` to `end` (minutes after midnight), across
/// midnight when `end <= start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    pub severity: String,
    pub start: u32,
    pub end: u32,
}

impl QuietHours {
    /// Whether a time of day (minutes after midnight) falls in these quiet hours.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    pub fn text(&self) -> String {
        format!(
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// `HH:MM-HH:MM` → (start, end) in minutes after midnight.
pub fn parse_range(text: &str) -> Result<(u32, u32), String> {
    let parse = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && !t.trim().is_empty()).then_some(h * 60 + m)
    };
    let bad = || format!("`{text}` is not a range of times like \"22:00-07:00\"");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (start, end) = (parse(a).ok_or_else(bad)?, parse(b).ok_or_else(bad)?);
    if start == end {
        return Err(format!("`{text}` is empty (start and end are the same)"));
    }
    Ok((start, end))
}

/// Where the clock of quiet hours is read: a fixed offset, or a named zone whose
/// offset follows daylight saving time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietZone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl QuietZone {
    /// `Europe/Berlin` (an IANA name), or `+02:00`, `-05:30`, `UTC`, `Z`.
    pub fn parse(text: &str) -> Result<QuietZone, String> {
        let t = text.trim();
        if t.starts_with(['+', '-']) || t.eq_ignore_ascii_case("utc") || t == "Z" {
            return parse_offset(t).map(QuietZone::Fixed);
        }
        t.parse::<chrono_tz::Tz>().map(QuietZone::Named).map_err(|_| {
            format!(
                "`{text}` is neither an IANA time zone name (like \"Europe/Berlin\") nor an offset (like \"+02:00\" or \"UTC\")"
            )
        })
    }

    /// The wall-clock hour and minute of an instant in this zone.
    pub fn hour_minute(&self, t: chrono::DateTime<chrono::Utc>) -> (u32, u32) {
        use chrono::Timelike;
        match self {
            QuietZone::Fixed(o) => {
                let l = t.with_timezone(o);
                (l.hour(), l.minute())
            }
            QuietZone::Named(z) => {
                let l = t.with_timezone(z);
                (l.hour(), l.minute())
            }
        }
    }
}

impl std::fmt::Display for QuietZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuietZone::Fixed(o) => write!(f, "{o}"),
            QuietZone::Named(z) => write!(f, "{}", z.name()),
        }
    }
}

/// `+02:00`, `-05:30`, `UTC` or `Z` → a fixed offset.
pub fn parse_offset(text: &str) -> Result<FixedOffset, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || format!("`{text}` is not an offset like \"+02:00\", \"-05:30\" or \"UTC\"");
    let sign = match t.chars().next() {
        Some('+') => 1,
        Some('-') => -1,
        _ => return Err(bad()),
    };
    let (h, m) = t[1..].split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

fn topic_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Validator {
    pub(super) fn ntfy_more(
        &mut self,
        n: &mut raw::RawNtfy,
        topic: &str,
        has_token: bool,
        state_dir: &Path,
    ) -> NtfyMore {
        if n.password.is_some() {
            self.err(
                "ntfy.password",
                "a password must not be written in the config; use password_file or password_env",
            );
        }
        let password = match (n.password_file.take(), n.password_env.take()) {
            (Some(_), Some(_)) => {
                self.err(
                    "ntfy.password_file",
                    "give password_file or password_env, not both",
                );
                None
            }
            (Some(f), None) => Some(Secret::File(self.path(&f))),
            (None, Some(e)) => Some(Secret::Env(e)),
            (None, None) => None,
        };
        let basic = match (n.username.take(), password) {
            (Some(u), Some(p)) if !u.is_empty() && !u.contains(':') => Some((u, p)),
            (Some(u), Some(_)) => {
                self.err(
                    "ntfy.username",
                    format!("`{u}` is not a user name (not empty, no `:`)"),
                );
                None
            }
            (Some(_), None) => {
                self.err(
                    "ntfy.username",
                    "a user name needs password_file or password_env",
                );
                None
            }
            (None, Some(_)) => {
                self.err("ntfy.password_file", "a password needs `username`");
                None
            }
            (None, None) => None,
        };
        if basic.is_some() && has_token {
            self.err(
                "ntfy.username",
                "give a token (token_file/token_env) or a user and password, not both",
            );
        }
        let control_topic = match n.control_topic.take() {
            Some(t) if !topic_ok(&t) => {
                self.err(
                    "ntfy.control_topic",
                    format!("`{t}` is not a valid topic (1 to 64 letters, digits, `-` or `_`)"),
                );
                None
            }
            Some(t) if t == topic => {
                self.err(
                    "ntfy.control_topic",
                    "must differ from `topic` (the phone's actions would show up as notifications)",
                );
                None
            }
            other => other,
        };
        let click = match n.click.take() {
            None => None,
            Some(c) => {
                let mut rest = c.clone();
                for p in CLICK_PLACEHOLDERS {
                    rest = rest.replace(p, "");
                }
                if !(c.starts_with("https://") || c.starts_with("http://")) {
                    self.err(
                        "ntfy.click",
                        format!(
                            "`{}` is not an http(s) URL template",
                            crate::redact::url_userinfo(&c)
                        ),
                    );
                    None
                } else if crate::redact::has_userinfo(&c) {
                    self.err(
                        "ntfy.click",
                        format!(
                            "`{}` has a user name or password in it, which every \
                             notification would carry to ntfy and the phone",
                            crate::redact::url_userinfo(&c)
                        ),
                    );
                    None
                } else if rest.contains('{') || rest.contains('}') {
                    self.err(
                        "ntfy.click",
                        format!(
                            "`{c}` has an unknown placeholder (known: {})",
                            CLICK_PLACEHOLDERS.join(", ")
                        ),
                    );
                    None
                } else {
                    Some(c)
                }
            }
        };
        let retry_delay = self.duration(
            "ntfy.retry_delay",
            n.retry_delay.as_deref(),
            Duration::from_secs(1),
        );
        if retry_delay > Duration::from_secs(60) {
            self.err(
                "ntfy.retry_delay",
                "at most 60s (a run must not hang on ntfy)",
            );
        }
        let max_per_hour = match n.max_per_hour {
            None => 10,
            Some(v) if (1..=1000).contains(&v) => v as u32,
            Some(v) => {
                self.err(
                    "ntfy.max_per_hour",
                    format!("{v} is out of range (1 to 1000)"),
                );
                10
            }
        };
        let timezone = match n.timezone.take() {
            None => None,
            Some(t) => match QuietZone::parse(&t) {
                Ok(o) => Some(o),
                Err(e) => {
                    self.err("ntfy.timezone", e);
                    None
                }
            },
        };
        let mut quiet_hours = Vec::new();
        for (sev, v) in n.quiet_hours.take().unwrap_or_default() {
            let key = format!("ntfy.quiet_hours.{sev}");
            match sev.as_str() {
                "info" | "warning" => {}
                "critical" => {
                    self.err(key, "critical notifications are never held");
                    continue;
                }
                _ => {
                    self.err(
                        key,
                        "unknown severity (quiet hours exist for info and warning)",
                    );
                    continue;
                }
            }
            let Some(text) = v.as_str() else {
                self.err(key, "expected a string like \"22:00-07:00\"");
                continue;
            };
            match parse_range(text) {
                Ok((start, end)) => quiet_hours.push(QuietHours {
                    severity: sev.clone(),
                    start,
                    end,
                }),
                Err(e) => self.err(key, e),
            }
        }
        let max_age = self.duration(
            "ntfy.max_age",
            n.max_age.as_deref(),
            Duration::from_secs(24 * 3600),
        );
        if max_age < Duration::from_secs(60) {
            self.err("ntfy.max_age", "at least 1m");
        }
        let dead_after = match n.dead_after {
            None => 3,
            Some(v) if (1..=100).contains(&v) => v as u32,
            Some(v) => {
                self.err("ntfy.dead_after", format!("{v} is out of range (1 to 100)"));
                3
            }
        };
        NtfyMore {
            basic,
            control_topic,
            click,
            retry_delay,
            attempts: 3,
            max_per_hour,
            quiet_hours,
            timezone,
            key_file: state_dir.join("control.key"),
            max_age,
            dead_after,
        }
    }
}

impl fmt::Display for NtfyMore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((u, p)) = &self.basic {
            writeln!(f, "username = {u:?}")?;
            match p {
                Secret::File(p) => writeln!(f, "password_file = {:?}", p.display().to_string())?,
                Secret::Env(e) => writeln!(f, "password_env = {e:?}")?,
            }
        }
        if let Some(t) = &self.control_topic {
            writeln!(f, "control_topic = {t:?}")?;
        }
        if let Some(c) = &self.click {
            writeln!(f, "click = {c:?}")?;
        }
        writeln!(f, "retry_delay = {:?}", duration::format(self.retry_delay))?;
        writeln!(f, "max_per_hour = {}", self.max_per_hour)?;
        writeln!(f, "max_age = {:?}", duration::format(self.max_age))?;
        writeln!(f, "dead_after = {}", self.dead_after)?;
        if let Some(o) = &self.timezone {
            writeln!(f, "timezone = \"{o}\"")?;
        }
        if !self.quiet_hours.is_empty() {
            writeln!(f, "\n[ntfy.quiet_hours]")?;
            for q in &self.quiet_hours {
                writeln!(f, "{} = {:?}", q.severity, q.text())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_across_midnight() {
        let (start, end) = parse_range("22:00-07:00").unwrap();
        let q = QuietHours {
            severity: "warning".into(),
            start,
            end,
        };
        assert!(q.contains(23 * 60) && q.contains(0) && q.contains(6 * 60 + 59));
        assert!(!q.contains(7 * 60) && !q.contains(12 * 60) && !q.contains(21 * 60 + 59));
        let (start, end) = parse_range("09:30-17:00").unwrap();
        let q = QuietHours { start, end, ..q };
        assert!(q.contains(9 * 60 + 30) && !q.contains(17 * 60) && !q.contains(0));
        assert!(parse_range("25:00-07:00").is_err());
        assert!(parse_range("22:00").is_err());
        assert!(parse_range("07:00-07:00").is_err());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00").unwrap().local_minus_utc(), 7200);
        assert_eq!(parse_offset("-05:30").unwrap().local_minus_utc(), -19800);
        assert_eq!(parse_offset("UTC").unwrap().local_minus_utc(), 0);
        assert!(parse_offset("Europe/Paris").is_err());
    }
}
