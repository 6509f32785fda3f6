//! How much time really passed between runs, when the host's clock is set wrong.
//!
//! A run is given one `now`, read from the wall clock (or `--now`). Someone, or a bad
//! NTP source, can move that clock by days in either direction, and two decisions must
//! not follow it blindly:
//!
//! - *Resolving* an incident after `resolve_after` of quiet: one run with the clock days
//!   ahead must not resolve every open incident (the next occurrence would page again as
//!   a regression). Quiet is measured on the run clock below, which advances by the time
//!   that really passed.
//! - *Expiry* of ignore rules and mutes: a clock set back must not revive a rule a run
//!   has already seen expire. Expiry is measured against the expiry floor below.
//!
//! Within one boot the time since boot (`/proc/uptime`, a clock no one sets) says how much
//! time passed; across a reboot, or when the time was given with `--now`, only the wall
//! clock can tell, and the run clock never goes back.

use chrono::{DateTime, Duration, Utc};

/// Where this run stands on a clock no one sets: the boot it runs in, and the seconds
/// since that boot.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    pub id: String,
    pub since: u64,
}

impl Boot {
    /// Read from the kernel; `None` where it does not say (not Linux, no `/proc`).
    pub fn read() -> Option<Boot> {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let id = id.trim();
        if id.is_empty() {
            return None;
        }
        Some(Boot {
            id: id.to_string(),
            since: crate::lock::since_boot()?,
        })
    }
}

/// What the previous run left: its wall time, its run clock, its expiry floor, its boot.
#[derive(Debug, Clone)]
pub struct Previous {
    pub started_at: DateTime<Utc>,
    pub run_clock: DateTime<Utc>,
    pub floor: DateTime<Utc>,
    pub boot: Option<Boot>,
}

/// This run's clocks.
#[derive(Debug, Clone, PartialEq)]
pub struct RunClock {
    /// Advances by the time that really passed since the previous run (as far as can be
    /// told), never goes back: quiet periods are measured on it.
    pub run_clock: DateTime<Utc>,
    /// `now`, or later when the clock went back since a run on this boot: expiry is
    /// measured against it.
    pub floor: DateTime<Utc>,
    /// How far the wall clock moved away from the time that passed since the previous
    /// run on this boot (positive: ahead), when that is more than a few minutes.
    pub jump: Option<Duration>,
}

/// Clock moves smaller than this pass as NTP's ordinary corrections, and as the
/// rounding of the time since boot to whole seconds.
const TOLERANCE: Duration = Duration::minutes(5);

impl RunClock {
    /// This run's clocks, from the previous run's, `now` and where this run stands
    /// on the boot clock (`None` when `now` was given rather than read).
    pub fn next(prev: Option<&Previous>, now: DateTime<Utc>, boot: Option<&Boot>) -> RunClock {
        let Some(prev) = prev else {
            return RunClock {
                run_clock: now,
                floor: now,
                jump: None,
            };
        };
        let same_boot = match (&prev.boot, boot) {
            (Some(p), Some(b)) if p.id == b.id && b.since >= p.since => Some(b.since - p.since),
            _ => None,
        };
        match same_boot {
            Some(secs) => {
                let passed = Duration::seconds(secs.min(i64::MAX as u64) as i64);
                let by_wall = now - prev.started_at;
                let moved = by_wall - passed;
                let jump = (moved.abs() > TOLERANCE).then_some(moved);
                RunClock {
                    run_clock: prev.run_clock + passed,
                    floor: now.max(prev.floor + passed),
                    jump,
                }
            }
            // Another boot, or a time given on the command line: the wall clock is all
            // there is. The run clock still never goes back.
            None => RunClock {
                run_clock: prev.run_clock.max(now),
                floor: now,
                jump: None,
            },
        }
    }

    /// What a run says about a clock that moved, if it did.
    pub fn warning(&self, now: DateTime<Utc>) -> Option<String> {
        let jump = self.jump?;
        let by = crate::duration::format(jump.abs().to_std().unwrap_or_default());
        Some(if jump > Duration::zero() {
            format!(
                "the clock moved {by} further ahead than the time that passed since the last run (by the time since boot): open incidents count as quiet only for the time that really passed"
            )
        } else {
            format!(
                "the clock went back {by} since the last run (by the time since boot; it reads {}): ignore rules and mutes expire as of {}, so a clock set back revives none",
                crate::store::ts(now),
                crate::store::ts(self.floor)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn boot(id: &str, since: u64) -> Option<Boot> {
        Some(Boot {
            id: id.into(),
            since,
        })
    }

    fn prev(at: &str, boot: Option<Boot>) -> Previous {
        Previous {
            started_at: t(at),
            run_clock: t(at),
            floor: t(at),
            boot,
        }
    }

    #[test]
    fn a_jump_ahead_on_the_same_boot_advances_the_run_clock_by_what_passed() {
        let p = prev("2026-11-22T10:00:00Z", boot("a", 1000));
        let c = RunClock::next(
            Some(&p),
            t("2026-11-25T10:00:00Z"),
            boot("a", 1300).as_ref(),
        );
        assert_eq!(c.run_clock, t("2026-11-22T10:05:00Z"));
        assert_eq!(c.floor, t("2026-11-25T10:00:00Z"));
        assert!(c.jump.unwrap() > Duration::days(2));
        assert!(c
            .warning(t("2026-11-25T10:00:00Z"))
            .unwrap()
            .contains("ahead"));
        // It stays ahead: the next run still counts only what passed.
        let p2 = Previous {
            started_at: t("2026-11-25T10:00:00Z"),
            run_clock: c.run_clock,
            floor: c.floor,
            boot: boot("a", 1300),
        };
        let c2 = RunClock::next(
            Some(&p2),
            t("2026-11-25T10:05:00Z"),
            boot("a", 1600).as_ref(),
        );
        assert_eq!(c2.run_clock, t("2026-11-22T10:10:00Z"));
        assert_eq!(c2.jump, None);
    }

    #[test]
    fn a_clock_set_back_on_the_same_boot_keeps_the_floor() {
        let p = prev("2026-11-22T12:00:00Z", boot("a", 1000));
        let c = RunClock::next(
            Some(&p),
            t("2026-11-22T09:00:00Z"),
            boot("a", 1300).as_ref(),
        );
        assert_eq!(c.floor, t("2026-11-22T12:05:00Z"));
        assert_eq!(c.run_clock, t("2026-11-22T12:05:00Z"));
        assert!(c
            .warning(t("2026-11-22T09:00:00Z"))
            .unwrap()
            .contains("went back"));
    }

    #[test]
    fn small_moves_and_honest_runs_pass_unremarked() {
        let p = prev("2026-11-22T10:00:00Z", boot("a", 1000));
        let c = RunClock::next(
            Some(&p),
            t("2026-11-22T10:07:00Z"),
            boot("a", 1300).as_ref(),
        );
        assert_eq!(c.jump, None);
        assert_eq!(c.floor, t("2026-11-22T10:07:00Z"));
        assert_eq!(c.run_clock, t("2026-11-22T10:05:00Z"));
    }

    #[test]
    fn across_a_reboot_or_with_a_given_time_the_wall_clock_counts_but_never_back() {
        let p = prev("2026-11-22T10:00:00Z", boot("a", 1000));
        let c = RunClock::next(Some(&p), t("2026-11-24T10:00:00Z"), boot("b", 30).as_ref());
        assert_eq!(c.run_clock, t("2026-11-24T10:00:00Z"));
        let c = RunClock::next(Some(&p), t("2026-11-21T10:00:00Z"), None);
        assert_eq!(c.run_clock, t("2026-11-22T10:00:00Z"));
        assert_eq!(c.floor, t("2026-11-21T10:00:00Z"));
        assert_eq!(c.jump, None);
        let first = RunClock::next(None, t("2026-11-21T10:00:00Z"), boot("a", 5).as_ref());
        assert_eq!(first.run_clock, t("2026-11-21T10:00:00Z"));
    }
}
