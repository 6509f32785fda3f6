//! Escalation: deterministic rules, checked when an incident opens, that raise its
//! severity, force its investigation and make it nag. They apply after the source's
//! severity map, and neither the log level nor the investigator's verdict can undo
//! them: a "noise" verdict never quiets an escalated incident.

use serde::{Deserialize, Serialize};

use crate::config::EscalationConfig;

/// The name of the built-in rule for several sources failing in one run.
pub const SEVERAL_SOURCES: &str = "several services failing";
/// The name of the built-in rule for an unsure verdict on a signature never seen.
pub const NEW_AND_UNSURE: &str = "new signature, investigator unsure";

/// What the rules decided for one incident (stored with it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// The names of the rules that matched, in config order.
    pub rules: Vec<String>,
    /// The least severity the incident has.
    pub severity: Option<String>,
    pub investigate: bool,
    pub nag: bool,
}

/// What a rule looks at.
#[derive(Debug, Default)]
pub struct Subject<'a> {
    /// Texts the pattern is searched in (message, template, samples).
    pub texts: Vec<&'a str>,
    pub source: &'a str,
    pub logger: Option<&'a str>,
    pub exception: Option<&'a str>,
    pub level_no: u32,
    /// The metric check's name, for a metric incident.
    pub check: Option<&'a str>,
}

/// The severities by rank.
pub fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

/// The higher of two severities.
pub fn max_severity<'a>(a: &'a str, b: &'a str) -> &'a str {
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The user's rules that match `s`, merged: the highest severity, and investigate or
/// nag if any of them says so. `None` when none matches.
pub fn evaluate(config: &EscalationConfig, s: &Subject) -> Option<Escalation> {
    let mut out: Option<Escalation> = None;
    for r in &config.rules {
        let holds = r
            .pattern
            .as_ref()
            .is_none_or(|p| s.texts.iter().any(|t| p.is_match(t)))
            && r.source.as_ref().is_none_or(|x| x == s.source)
            && r.logger.as_ref().is_none_or(|x| {
                s.logger.is_some_and(|l| {
                    l == x || (l.starts_with(x.as_str()) && l[x.len()..].starts_with('.'))
                })
            })
            && r.exception.as_ref().is_none_or(|x| {
                s.exception.is_some_and(|e| {
                    // `OperationalError` matches `sqlite3.OperationalError` too.
                    e == x || e.rsplit('.').next() == Some(x.as_str())
                })
            })
            && r.level.is_none_or(|l| s.level_no >= l)
            && r.check.as_ref().is_none_or(|x| s.check == Some(x.as_str()));
        if !holds {
            continue;
        }
        out.get_or_insert_with(Escalation::default)
            .merge(Escalation {
                rules: vec![r.name.clone()],
                severity: r.severity.clone(),
                investigate: r.investigate,
                nag: r.nag,
            });
    }
    out
}

impl Escalation {
    /// Adds what another decision says: its rules (once each), the higher severity,
    /// investigate or nag if either says so.
    pub fn merge(&mut self, other: Escalation) {
        for r in other.rules {
            if !self.rules.contains(&r) {
                self.rules.push(r);
            }
        }
        self.severity = match (self.severity.take(), other.severity) {
            (Some(a), Some(b)) => Some(max_severity(&a, &b).to_string()),
            (a, b) => a.or(b),
        };
        self.investigate |= other.investigate;
        self.nag |= other.nag;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EscalateRule;

    fn rule(name: &str) -> EscalateRule {
        EscalateRule {
            name: name.into(),
            pattern: None,
            source: None,
            logger: None,
            exception: None,
            level: None,
            check: None,
            severity: None,
            investigate: false,
            nag: false,
        }
    }

    #[test]
    fn every_condition_must_hold_and_matches_merge() {
        let mut c = EscalationConfig::default();
        c.rules.push(EscalateRule {
            pattern: Some(regex::Regex::new("(?i)database").unwrap()),
            level: Some(30),
            severity: Some("critical".into()),
            ..rule("db")
        });
        c.rules.push(EscalateRule {
            logger: Some("app.pay".into()),
            exception: Some("OperationalError".into()),
            investigate: true,
            severity: Some("warning".into()),
            ..rule("pay")
        });
        let s = Subject {
            texts: vec!["Database locked"],
            source: "app",
            logger: Some("app.pay.charge"),
            exception: Some("sqlite3.OperationalError"),
            level_no: 30,
            check: None,
        };
        let e = evaluate(&c, &s).unwrap();
        assert_eq!(e.rules, ["db", "pay"]);
        assert_eq!(e.severity.as_deref(), Some("critical"));
        assert!(e.investigate && !e.nag);

        // below the level, another logger (a prefix that is not a parent), no match
        let s = Subject {
            level_no: 20,
            logger: Some("app.payments"),
            ..s
        };
        assert_eq!(evaluate(&c, &s), None);
    }

    #[test]
    fn a_check_rule_matches_only_that_check() {
        let mut c = EscalationConfig::default();
        c.rules.push(EscalateRule {
            check: Some("disk".into()),
            nag: true,
            ..rule("disk")
        });
        let log = Subject {
            source: "disk",
            ..Subject::default()
        };
        assert_eq!(evaluate(&c, &log), None);
        let metric = Subject {
            check: Some("disk"),
            ..Subject::default()
        };
        assert!(evaluate(&c, &metric).unwrap().nag);
    }
}
