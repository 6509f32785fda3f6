//! Times on the command line (`--since`, `--until`), as journalctl takes them: a
//! duration back from now (`7d`, `-2h`, `90m ago`) or ahead (`+1h`), a date
//! (`2026-11-30`: its midnight), a date and time (`2026-11-30 08:00`, `…:15`), a time of
//! today (`08:00`), `now`, `today`, `yesterday`, `tomorrow` (midnights), `@UNIX`, or
//! RFC 3339. Times without an offset are the host's local time, as in journalctl.
//! "Now" is the command's `now` (the global `--now`), never the clock read here.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::source::zone::Zone;

/// What `--since`/`--until` accept, for messages and help.
pub const FORMS: &str = "a duration back (7d, 2h30m, -2h, `90m ago`) or ahead (+1h), \
     2026-11-30, `2026-11-30 08:00[:00]`, 08:00, now, today, yesterday, tomorrow, @UNIX, \
     or RFC 3339";

/// Parses a time relative to `now`, read in the host's zone.
pub fn parse(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    parse_in(text, now, Zone::host())
}

/// [`parse`] with times without an offset read in `zone`.
pub fn parse_in(text: &str, now: DateTime<Utc>, zone: Zone) -> Result<DateTime<Utc>, String> {
    let s = text.trim();
    let bad = || format!("`{text}` is not a time: give {FORMS}");
    let local = |naive: NaiveDateTime| zone.to_utc(naive).ok_or_else(bad);
    let today = || -> Result<NaiveDate, String> {
        // The local date of `now`: midnight of it, back in UTC, is "today".
        let offset = zone
            .to_utc(now.naive_utc())
            .map(|t| now.naive_utc() - t.naive_utc())
            .unwrap_or_default();
        Ok((now.naive_utc() + offset).date())
    };
    let midnight = |d: NaiveDate| local(d.and_time(NaiveTime::MIN));
    match s {
        "now" => return Ok(now),
        "today" => return midnight(today()?),
        "yesterday" => return midnight(today()? - Duration::days(1)),
        "tomorrow" => return midnight(today()? + Duration::days(1)),
        _ => {}
    }
    if let Some(secs) = s.strip_prefix('@') {
        let n: i64 = secs.parse().map_err(|_| bad())?;
        return DateTime::from_timestamp(n, 0).ok_or_else(bad);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return local(t);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return midnight(d);
    }
    for f in ["%H:%M:%S", "%H:%M"] {
        if let Ok(t) = NaiveTime::parse_from_str(s, f) {
            return local(today()?.and_time(t));
        }
    }
    let (ahead, span) = match s.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (
            false,
            s.strip_prefix('-')
                .unwrap_or(s)
                .trim_end_matches("ago")
                .trim_end(),
        ),
    };
    let d = crate::duration::parse(span).map_err(|_| bad())?;
    let d = Duration::from_std(d).map_err(|_| bad())?;
    let t = if ahead {
        now.checked_add_signed(d)
    } else {
        now.checked_sub_signed(d)
    };
    t.ok_or_else(|| format!("`{text}` is too far from now"))
}

/// A `--since`/`--until` pair: either end may be open.
pub type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A time range from `--since`/`--until`, refused when it is empty the wrong way round.
pub fn range(
    since: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Range, String> {
    let since = since.map(|s| parse(s, now)).transpose()?;
    let until = until.map(|s| parse(s, now)).transpose()?;
    if let (Some(a), Some(b)) = (since, until) {
        if a > b {
            return Err(format!(
                "--since ({}) is after --until ({})",
                crate::store::ts(a),
                crate::store::ts(b)
            ));
        }
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn journalctl_forms() {
        let now = at("2026-11-30T10:30:00Z");
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let p = |s: &str| parse_in(s, now, Zone::UTC).unwrap().to_rfc3339();
        assert_eq!(p("7d"), "2026-11-23T10:30:00+00:00");
        assert_eq!(p("-2h"), "2026-11-30T08:30:00+00:00");
        assert_eq!(p("90m ago"), "2026-11-30T09:00:00+00:00");
        assert_eq!(p("+1h"), "2026-11-30T11:30:00+00:00");
        assert_eq!(p("today"), "2026-11-30T00:00:00+00:00");
        assert_eq!(p("yesterday"), "2026-11-29T00:00:00+00:00");
        assert_eq!(p("tomorrow"), "2026-12-01T00:00:00+00:00");
        assert_eq!(p("2026-11-30"), "2026-11-30T00:00:00+00:00");
        assert_eq!(p("2026-11-30 08:00"), "2026-11-30T08:00:00+00:00");
        assert_eq!(p("2026-11-30 08:00:15"), "2026-11-30T08:00:15+00:00");
        assert_eq!(p("08:00"), "2026-11-30T08:00:00+00:00");
        assert_eq!(p("@0"), "1970-01-01T00:00:00+00:00");
        assert_eq!(p("now"), "2026-11-30T10:30:00+00:00");
        // Local dates: just after midnight in Berlin is still the 30th in UTC's 29th.
        let late = at("2026-11-29T23:30:00Z");
        assert_eq!(
            parse_in("today", late, berlin).unwrap().to_rfc3339(),
            "2026-11-29T23:00:00+00:00"
        );
        for bad in ["", "soon", "7", "2026-13-01", "25:00", "@x"] {
            assert!(parse_in(bad, now, Zone::UTC).is_err(), "{bad}");
        }
        assert!(range(Some("2026-11-30"), Some("2026-11-29"), now).is_err());
    }
}
