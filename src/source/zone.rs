//! The time zone of log times written without an offset. loguru's default format
//! (`YYYY-MM-DD HH:mm:ss.SSS`) is the host's local time with no offset, so such times
//! are read in the host's zone (`TZ`, else /etc/localtime), or in the source's
//! `timezone` (an IANA name; `"UTC"` for logs written in UTC).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};

/// Where times without an offset are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The host's local time, as the process sees it (`TZ`, else /etc/localtime).
    #[default]
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    pub const UTC: Zone = Zone::Named(chrono_tz::UTC);

    /// An IANA zone name (`Europe/Berlin`, `UTC`).
    pub fn parse(name: &str) -> Result<Zone, String> {
        name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("`{name}` is not an IANA time zone name (like \"Europe/Berlin\" or \"UTC\")")
        })
    }

    /// The host's zone, resolved once (at config load): `TZ` naming an IANA zone (or a
    /// zoneinfo file), else the zone /etc/localtime links to, else whatever the C
    /// library makes of them (a POSIX `TZ` rule, a copied /etc/localtime).
    pub fn host() -> Zone {
        let by_name = |name: &str| -> Option<Zone> {
            let name = name.trim().trim_start_matches(':');
            let name = match name.find("zoneinfo/") {
                Some(i) => &name[i + "zoneinfo/".len()..],
                None => name,
            };
            name.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
        };
        match std::env::var("TZ") {
            Ok(tz) if !tz.trim().is_empty() => by_name(&tz).unwrap_or(Zone::Local),
            _ => std::fs::read_link("/etc/localtime")
                .ok()
                .and_then(|p| by_name(&p.to_string_lossy()))
                .unwrap_or(Zone::Local),
        }
    }

    /// The UTC time of a wall-clock time in this zone. In the hour a DST change
    /// repeats, the first pass (the earlier instant) is taken; a time in the hour
    /// skipped in spring was written with the offset before the change.
    pub fn to_utc(&self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Zone::Local => resolve(&chrono::Local, naive),
            Zone::Named(tz) => resolve(tz, naive),
        }
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Local => write!(f, "local"),
            Zone::Named(tz) => write!(f, "{}", tz.name()),
        }
    }
}

fn resolve<T: TimeZone>(tz: &T, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.with_timezone(&Utc).min(b.with_timezone(&Utc))),
        LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn berlin_around_its_dst_changes() {
        let z = Zone::parse("Europe/Berlin").unwrap();
        let utc = |s| z.to_utc(at(s)).unwrap().to_rfc3339();
        assert_eq!(utc("2026-11-22 10:00:00"), "2026-11-22T09:00:00+00:00");
        assert_eq!(utc("2026-07-01 10:00:00"), "2026-07-01T08:00:00+00:00");
        // 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; the first is taken
        assert_eq!(utc("2026-10-25 02:30:00"), "2026-10-25T00:30:00+00:00");
        // 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist
        assert_eq!(utc("2026-03-29 02:30:00"), "2026-03-29T01:30:00+00:00");
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(
            Zone::UTC
                .to_utc(at("2026-11-22 10:00:00"))
                .unwrap()
                .to_rfc3339(),
            "2026-11-22T10:00:00+00:00"
        );
    }
}
