//! Whether an incident may be sent to the LLM now: budgets (calls per hour and per
//! day, dollars per day, all counted in the store), the breaker (after N consecutive
//! failures the backend rests for a cool-down) and verdict memory (a signature judged
//! noise K times is not sent again unless it spikes or its level rises).

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::source::Level;
use crate::store::{ts, IncidentRow, Store};

/// Why an incident is not sent to the LLM.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// A budget is spent: the text says which.
    Budget(String),
    /// The breaker is open until the given time.
    Breaker { failures: u32, until: DateTime<Utc> },
    /// Judged noise this many times before.
    RecurringNoise(u64),
}

impl Skip {
    /// A short tag for the diagnosis (`budget`, `breaker`, `recurring-noise`).
    pub fn tag(&self) -> &'static str {
        match self {
            Skip::Budget(_) => "budget",
            Skip::Breaker { .. } => "breaker",
            Skip::RecurringNoise(_) => "recurring-noise",
        }
    }

    /// The sentence shown in the incident, the notification and the run summary.
    pub fn describe(&self, backend: &str) -> String {
        match self {
            Skip::Budget(why) => format!("not investigated: budget ({why})"),
            Skip::Breaker { failures, until } => format!(
                "not investigated: {backend} skipped after {failures} consecutive failures, cool-down until {}",
                ts(*until)
            ),
            Skip::RecurringNoise(n) => format!(
                "not investigated: recurring noise (judged noise {n} times before; sent again only if it spikes or its level rises)"
            ),
        }
    }
}

/// The level number of an incident's level name, with its source's custom levels.
pub fn level_no(config: &Config, source: &str, level: &str) -> u32 {
    let empty = Default::default();
    let custom = config
        .sources
        .iter()
        .find(|s| s.name == source)
        .map(|s| &s.levels)
        .unwrap_or(&empty);
    Level::named(level, custom).no
}

/// What [`check`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// The incident may go to the LLM; this much of the day's dollar limit is left.
    Go { usd_left: f64 },
    /// It may not, for this reason.
    Skip(Skip),
}

/// Checks verdict memory, the breaker and the budgets, in that order. An escalation
/// rule with `investigate = true` passes verdict memory and the call budgets, but not
/// the breaker (a failing backend would only fail again) nor the dollars per day: log
/// text, written by strangers, decides how many incidents a pattern matches, and the
/// bill must still have a ceiling.
/// Whether an incident says more than the noise verdicts of its signature did: it
/// spiked (at least 10 occurrences, over three times the most any of them saw) or its
/// level rose above theirs. Noise that does either is judged again and pages again.
pub fn surges(config: &Config, inc: &IncidentRow, noise: &[crate::store::VerdictRow]) -> bool {
    let max_occ = noise.iter().map(|v| v.occurrences).max().unwrap_or(0);
    let max_level = noise.iter().map(|v| v.level_no).max().unwrap_or(0);
    let spikes = inc.occurrences >= 10 && inc.occurrences > max_occ.saturating_mul(3);
    let rises = level_no(config, &inc.source, &inc.level) > max_level;
    spikes || rises
}

pub fn check(
    config: &Config,
    store: &Store,
    backend: &str,
    inc: &IncidentRow,
    now: DateTime<Utc>,
) -> crate::store::Result<Gate> {
    let l = &config.llm;
    let forced = inc.escalation.as_ref().is_some_and(|e| e.investigate);

    // Verdict memory.
    let noise: Vec<_> = store
        .verdicts(&inc.signature)?
        .into_iter()
        .filter(|v| v.verdict == "noise")
        .collect();
    if !forced && noise.len() as u32 >= l.noise_after && !surges(config, inc, &noise) {
        return Ok(Gate::Skip(Skip::RecurringNoise(noise.len() as u64)));
    }

    // The breaker.
    // Outcomes stamped after `now` were recorded while the clock ran ahead: how long
    // ago they were is unknown, and resting until then could last for weeks.
    let recent: Vec<_> = store
        .recent_llm_outcomes(backend, l.breaker_failures)?
        .into_iter()
        .filter(|(_, at)| *at <= now)
        .collect();
    if recent.len() as u32 >= l.breaker_failures && recent.iter().all(|(ok, _)| !ok) {
        let last = recent[0].1;
        let until = last
            + chrono::Duration::from_std(l.breaker_cooldown).unwrap_or(chrono::Duration::zero());
        if now < until {
            return Ok(Gate::Skip(Skip::Breaker {
                failures: l.breaker_failures,
                until,
            }));
        }
    }

    // The budgets.
    let u = store.llm_usage(now)?;
    if !forced && u.calls_hour >= l.max_calls_per_hour {
        return Ok(Gate::Skip(Skip::Budget(format!(
            "{} LLM calls in the last hour, limit {}",
            u.calls_hour, l.max_calls_per_hour
        ))));
    }
    if !forced && u.calls_day >= l.max_calls_per_day {
        return Ok(Gate::Skip(Skip::Budget(format!(
            "{} LLM calls in the last 24 hours, limit {}",
            u.calls_day, l.max_calls_per_day
        ))));
    }
    if u.usd_day >= l.max_usd_per_day {
        return Ok(Gate::Skip(Skip::Budget(format!(
            "${:.2} spent in the last 24 hours, limit ${:.2}",
            u.usd_day, l.max_usd_per_day
        ))));
    }
    Ok(Gate::Go {
        usd_left: l.max_usd_per_day - u.usd_day,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claude-cli investigator with `settings`, a fresh store, and a fixed now.
    fn setup(settings: &str) -> (Config, tempfile::TempDir, Store, DateTime<Utc>) {
        let config = Config::parse(
            &format!("[[source]]\nname = \"app\"\npath = \"app.log\"\n[investigator]\nkind = \"claude-cli\"\n{settings}"),
            std::path::Path::new("/etc/logwarden/logwarden.toml"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        (config, dir, store, now)
    }

    /// Failures recorded while the clock ran 30 days ahead do not rest the backend
    /// until then; failures of now still do.
    #[test]
    fn failures_stamped_ahead_do_not_rest_the_backend_for_weeks() {
        let (config, _dir, store, now) =
            setup("breaker_failures = 2\nbreaker_cooldown = \"30m\"\n");
        let fail = |at| {
            let id = store
                .begin_llm_call(at, "claude-cli", None, "s", 0)
                .unwrap();
            store.finish_llm_call(id, false, 0.0, Some("boom")).unwrap();
        };
        let inc = IncidentRow {
            signature: "s".into(),
            ..Default::default()
        };
        fail(now + chrono::Duration::days(30));
        fail(now + chrono::Duration::days(30));
        assert_eq!(
            check(&config, &store, "claude-cli", &inc, now).unwrap(),
            Gate::Go { usd_left: 5.0 }
        );
        fail(now);
        fail(now);
        assert_eq!(
            check(&config, &store, "claude-cli", &inc, now).unwrap(),
            Gate::Skip(Skip::Breaker {
                failures: 2,
                until: now + chrono::Duration::minutes(30)
            })
        );
    }

    #[test]
    fn a_forced_investigation_passes_the_call_budgets_not_the_dollars() {
        let (config, _dir, store, now) = setup("max_calls_per_hour = 1\nmax_usd_per_day = 1.0\n");
        let call = |usd| {
            let id = store
                .begin_llm_call(now, "claude-cli", None, "s", 0)
                .unwrap();
            store.finish_llm_call(id, true, usd, None).unwrap();
        };
        let plain = IncidentRow {
            signature: "s".into(),
            ..Default::default()
        };
        let forced = IncidentRow {
            escalation: Some(crate::trigger::escalate::Escalation {
                investigate: true,
                ..Default::default()
            }),
            ..plain.clone()
        };
        call(0.5);
        assert!(matches!(
            check(&config, &store, "claude-cli", &plain, now).unwrap(),
            Gate::Skip(Skip::Budget(_))
        ));
        assert_eq!(
            check(&config, &store, "claude-cli", &forced, now).unwrap(),
            Gate::Go { usd_left: 0.5 }
        );
        call(0.6);
        assert!(matches!(
            check(&config, &store, "claude-cli", &forced, now).unwrap(),
            Gate::Skip(Skip::Budget(_))
        ));
    }
}
