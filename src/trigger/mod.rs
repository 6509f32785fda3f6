//! Triggers: deciding which error groups deserve an investigation and a page.
//!
//! A group triggers when its signature is new: never seen, or not seen for
//! `renotify_after`, or back after its last incident was resolved (a regression). A
//! group with an open incident only adds occurrences to it.

pub mod escalate;

use chrono::{DateTime, Utc};

use crate::store::{IncidentRow, SignatureRow};

/// What to do with one error group of this run.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Open an incident: the reason says why; a regression names the resolved incident.
    Open {
        reason: String,
        regression_of: Option<i64>,
    },
    /// Add the occurrences to an open incident (no new page).
    Update { incident: i64 },
    /// Seen recently and already judged: nothing to do.
    Known,
}

pub fn decide(
    seen: Option<&SignatureRow>,
    open: Option<&IncidentRow>,
    resolved: Option<&IncidentRow>,
    now: DateTime<Utc>,
    renotify_after: std::time::Duration,
) -> Decision {
    if let Some(i) = open {
        return Decision::Update { incident: i.id };
    }
    if let Some(r) = resolved {
        return Decision::Open {
            reason: format!("regression: back after incident #{} was resolved", r.id),
            regression_of: Some(r.id),
        };
    }
    match seen {
        None => Decision::Open {
            reason: "new signature: never seen before".into(),
            regression_of: None,
        },
        Some(s) => {
            let quiet = now.signed_duration_since(s.last_seen);
            let limit = chrono::Duration::from_std(renotify_after).unwrap_or(chrono::Duration::MAX);
            if quiet >= limit {
                Decision::Open {
                    reason: format!(
                        "signature back after {} without being seen",
                        crate::duration::format(quiet.to_std().unwrap_or_default())
                    ),
                    regression_of: None,
                }
            } else {
                Decision::Known
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::Signature;
    use std::time::Duration;

    fn seen(days_ago: i64, now: DateTime<Utc>) -> SignatureRow {
        SignatureRow {
            signature: Signature(1),
            template: "t".into(),
            first_seen: now - chrono::Duration::days(30),
            last_seen: now - chrono::Duration::days(days_ago),
            count: 3,
        }
    }

    #[test]
    fn new_recent_and_returning() {
        let now = Utc::now();
        let week = Duration::from_secs(7 * 86400);
        assert!(matches!(
            decide(None, None, None, now, week),
            Decision::Open { .. }
        ));
        assert_eq!(
            decide(Some(&seen(1, now)), None, None, now, week),
            Decision::Known
        );
        assert!(matches!(
            decide(Some(&seen(8, now)), None, None, now, week),
            Decision::Open { .. }
        ));
    }
}
