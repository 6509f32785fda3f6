//! The weekly briefing: what happened, what was noise, and concrete proposals to
//! silence recurring noise (a ready-to-paste `logwarden ignore add …`), the real
//! incidents, critical ones nobody acknowledged, ignore rules that no longer match
//! anything, and what the LLM cost.

use chrono::{DateTime, Datelike, Duration, Utc};

use crate::config::incidents::Weekly;
use crate::config::Config;
use crate::ignore::{suggest_command, IgnoreRules};
use crate::sanitize::{code_span, fence, md_inline};
use crate::store::{ts, Notification, Result, Store};

/// A briefing: the page, and a short text for the phone.
pub struct Briefing {
    pub markdown: String,
    pub summary: String,
}

/// Builds the briefing of the `days` before `now`.
pub fn build(config: &Config, store: &Store, now: DateTime<Utc>, days: u32) -> Result<Briefing> {
    let since = now - Duration::days(days as i64);
    let t = store.period_totals(since)?;
    let mut s = format!(
        "# Briefing for {}: {} to {}\n\n",
        config.hostname,
        since.format("%Y-%m-%d %H:%M"),
        now.format("%Y-%m-%d %H:%M UTC")
    );
    s.push_str("## Totals\n\n| triggers | real | noise | unsure | auto-resolved | escalated | LLM calls | LLM cost |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    s.push_str(&format!(
        "| {} | {} | {} | {} | {} | {} | {} | ${:.2} |\n\n",
        t.triggers,
        t.real,
        t.noise,
        t.unsure,
        t.auto_resolved,
        t.escalated,
        t.llm_calls,
        t.llm_cost_usd
    ));

    s.push_str("## Recurring noise, and how to silence it\n\n");
    let frequent = store.frequent_signatures(since, 20)?;
    let mut proposals = 0;
    if matches!(config.investigator, crate::config::InvestigatorConfig::None) {
        s.push_str("No investigator is configured, so nothing was judged real or noise: what follows comes from counts and recurrence alone.\n\n");
    }
    for f in &frequent {
        let Some(why) = recurring(f, days) else {
            continue;
        };
        let latest = store.incident(f.latest)?;
        // The template as a page shows it: its wildcards can leave pieces of a secret
        // that only its redaction against a record finds.
        let sample = latest
            .as_ref()
            .and_then(|i| i.samples.first())
            .map_or("", String::as_str);
        let shown = config.redact.redactor.clean_template(&f.template, sample);
        let head = format!(
            "- {} (source {}): {} incident(s), {} occurrence(s), {why}.",
            code_span(if config.redact.incident_files {
                &shown
            } else {
                &f.template
            }),
            code_span(&f.source),
            f.incidents,
            f.occurrences,
        );
        if let Some(i) = latest
            .as_ref()
            .filter(|i| i.resolved_at.is_none() && i.severity == "critical" && i.verdict != "noise")
        {
            // Silencing what is paging right now would hide an outage, not noise: the
            // proposal waits until that incident is resolved.
            s.push_str(&format!(
                "{head} Not proposed while its incident #{} is open and critical.\n\n",
                i.id
            ));
            continue;
        }
        proposals += 1;
        let level = latest
            .as_ref()
            .map(|i| crate::ignore::level_cap_for(config, i));
        let comment = format!(
            "recurring noise: {why} (briefing {})",
            now.format("%Y-%m-%d")
        );
        // A template with a secret in it would be pasted redacted (`[REDACTED:…]` is a
        // character class in a regex, which matches nothing of it): the incident's own
        // command builds the pattern from the stored template instead.
        let redacted = shown != f.template;
        let command = if redacted {
            crate::ignore::suggest_for_incident(f.latest, &f.signature, &comment)
        } else {
            suggest_command(
                &f.template,
                &f.signature,
                &f.source,
                level.as_deref(),
                &comment,
            )
        };
        match command {
            Some(command) => {
                let f = fence(&command);
                s.push_str(&format!(
                    "{head} Silence it:\n\n  {f}sh\n  {command}\n  {f}\n\n"
                ));
            }
            None => s.push_str(&format!("{head}\n\n")),
        }
    }
    let mut metric_noise = std::collections::BTreeMap::<String, (u64, String)>::new();
    for i in store.incidents_since(since)? {
        if i.signature.starts_with("metric:") {
            let e = metric_noise
                .entry(i.signature.clone())
                .or_insert((0, i.title.clone()));
            e.0 += 1;
        }
    }
    for (sig, (n, title)) in metric_noise.iter().filter(|(_, (n, _))| *n >= 3) {
        proposals += 1;
        let check = sig
            .trim_start_matches("metric:")
            .split(':')
            .next()
            .unwrap_or(sig);
        let (check, title) = (code_span(check), md_inline(title));
        s.push_str(&format!(
            "- metric check {check} fired {n} times (last: {title}). If that is normal for this host, raise its threshold or require it longer: in `[[check]]` {check}, set a higher `above`/lower `below`, or `for = 3`.\n"
        ));
    }
    if proposals == 0 {
        s.push_str("Nothing recurred enough to propose a silence.\n");
    }
    s.push('\n');

    s.push_str("## Real incidents\n\n");
    let recent = store.incidents_since(since)?;
    let real: Vec<_> = recent.iter().filter(|i| i.verdict == "real").collect();
    if real.is_empty() {
        s.push_str("None judged real.\n");
    }
    for i in &real {
        s.push_str(&format!(
            "- #{} [{}] {} ({}, {} occurrence(s), {})\n",
            i.id,
            i.severity,
            md_inline(&i.title),
            i.status,
            i.occurrences,
            i.first_seen.format("%Y-%m-%d %H:%M")
        ));
    }
    s.push('\n');

    s.push_str("## Critical incidents nobody acknowledged\n\n");
    let unacked: Vec<_> = store
        .unacked_incidents()?
        .into_iter()
        .filter(|i| i.severity == "critical")
        .collect();
    if unacked.is_empty() {
        s.push_str("None.\n");
    }
    for i in &unacked {
        s.push_str(&format!(
            "- #{} {} (open since {}, {} reminder(s)): `logwarden incidents ack {}`\n",
            i.id,
            md_inline(&i.title),
            i.created_at.format("%Y-%m-%d %H:%M"),
            i.nag_count,
            i.id
        ));
    }
    s.push('\n');

    // Only when some ran: a host without allow-listed actions gets no empty section.
    let taken = store.requests_run_between(since, now)?;
    if !taken.is_empty() {
        s.push_str("## Actions taken\n\n");
        for r in &taken {
            s.push_str(&format!(
                "- {} incident #{}: {} approved by {}: {}, exit code {}{}\n",
                r.started_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                r.incident_id,
                crate::actions::describe(r),
                md_inline(r.decided_by.as_deref().unwrap_or("?")),
                r.status,
                r.exit_code.map_or("none".to_string(), |c| c.to_string()),
                r.verify_result
                    .as_deref()
                    .map(|v| format!(" ({})", md_inline(v)))
                    .unwrap_or_default()
            ));
        }
        s.push('\n');
    }

    s.push_str("## Ignore rules with no hits in 30 days\n\n");
    let hits = store.ignore_hits()?;
    let stale_since = now - Duration::days(30);
    let mut stale = 0;
    let files = config.rule_files();
    if let Ok(rules) = IgnoreRules::load_all(&[&files[0], &files[1]], now) {
        for r in &rules.rules {
            let last = r.hits_in(&hits).map(|(_, t)| t);
            let created = r.created_at();
            let old_enough = created.is_none_or(|c| c < stale_since);
            if last.is_none_or(|l| l < stale_since) && old_enough && !r.expired(now) {
                stale += 1;
                s.push_str(&format!(
                    "- rule {} {} ({}), last hit {}: remove it with `logwarden ignore rm {}` if the problem is gone\n",
                    md_inline(&r.id),
                    code_span(&format!("/{}/", r.pattern)),
                    md_inline(&r.comment),
                    last.map(ts).unwrap_or_else(|| "never".into()),
                    r.id
                ));
            }
        }
    }
    if stale == 0 {
        s.push_str("None.\n");
    }
    s.push('\n');

    s.push_str(&format!(
        "## LLM\n\n{} call(s), ${:.2} in {days} days.\n",
        t.llm_calls, t.llm_cost_usd
    ));

    let summary = format!(
        "{} triggers ({} real, {} noise), {} auto-resolved, {} escalated; {} silence proposal(s); {} unacked critical; LLM {} call(s) ${:.2}.",
        t.triggers, t.real, t.noise, t.auto_resolved, t.escalated, proposals, unacked.len(), t.llm_calls, t.llm_cost_usd
    );
    Ok(Briefing {
        markdown: s,
        summary,
    })
}

/// Occurrences of one signature, over at least this long, before it counts as recurring
/// without any verdict.
const RECURRING_OCCURRENCES: u64 = 10;
const RECURRING_SPAN_MINUTES: i64 = 60;

/// Why a signature is worth a silence proposal, if it is: judged noise; or, with no
/// verdict needed (no investigator, or one that was unsure), it keeps coming back:
/// several incidents, or many occurrences spread over time. A signature judged real is
/// never proposed.
fn recurring(f: &crate::store::FrequentRow, days: u32) -> Option<String> {
    if f.real_verdicts > 0 && f.noise_verdicts == 0 {
        return None;
    }
    if f.noise_verdicts > 0 {
        return Some(format!("judged noise {} time(s)", f.noise_verdicts));
    }
    if f.incidents >= 3 {
        return Some(format!("{} incidents in {days} days", f.incidents));
    }
    let span = f.last_seen - f.first_seen;
    if f.occurrences >= RECURRING_OCCURRENCES && span >= Duration::minutes(RECURRING_SPAN_MINUTES) {
        return Some(format!(
            "{} occurrences over {}, never judged real",
            f.occurrences,
            crate::duration::format(span.to_std().unwrap_or_default())
        ));
    }
    None
}

/// The latest scheduled time at or before `now`.
pub fn last_due(w: Weekly, now: DateTime<Utc>) -> DateTime<Utc> {
    let days_back = (now.weekday().num_days_from_monday() + 7 - w.day.num_days_from_monday()) % 7;
    let day = now.date_naive() - Duration::days(days_back as i64);
    let at = day
        .and_hms_opt(w.hour, w.minute, 0)
        .expect("valid time")
        .and_utc();
    if at > now {
        at - Duration::days(7)
    } else {
        at
    }
}

/// Writes and queues the briefing when one is due and not yet written. Returns the path.
pub fn run_scheduled(config: &Config, store: &Store, now: DateTime<Utc>) -> Result<Option<String>> {
    let Some(w) = config.incidents.briefing else {
        return Ok(None);
    };
    let due = last_due(w, now);
    let last = store
        .kv_get("last_briefing")?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    let Some(last) = last else {
        // The first run with a schedule starts it: the first briefing comes at the next slot.
        store.kv_set("last_briefing", &ts(now))?;
        return Ok(None);
    };
    // A last briefing stamped after `now` (the clock ran ahead) does not skip weeks.
    if last >= due && last <= now {
        return Ok(None);
    }
    let b = build(config, store, now, config.incidents.briefing_days)?;
    let dir = match crate::fsio::own_subdir(&config.incidents_dir, "briefings") {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("briefing: {e}");
            return Ok(None);
        }
    };
    let path = dir.join(format!("{}-briefing.md", now.format("%Y-%m-%d")));
    let text = if config.redact.incident_files {
        config.redact.redactor.clean(&b.markdown)
    } else {
        b.markdown.clone()
    };
    if let Err(e) = crate::fsio::replace(
        &path,
        text.as_bytes(),
        crate::fsio::NewFile::DirOwner(0o640),
    ) {
        tracing::warn!("briefing: {e}");
        return Ok(None);
    }
    let n = Notification {
        title: format!("[{}] Weekly briefing", config.hostname),
        body: config.redact.redactor.clean(&format!(
            "{}\n\nbriefings/{}",
            b.summary,
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        )),
        priority: 2,
        tags: "newspaper".into(),
    };
    store.enqueue_kind(None, "briefing", "info", &n, now)?;
    store.kv_set("last_briefing", &ts(now))?;
    Ok(Some(path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;

    #[test]
    fn last_due_is_the_latest_past_slot() {
        let w = Weekly {
            day: Weekday::Mon,
            hour: 9,
            minute: 0,
        };
        // Sunday 2026-11-22 → Monday 2026-11-16 09:00
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(last_due(w, now)), "2026-11-16T09:00:00Z");
        let mon_early = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(last_due(w, mon_early)), "2026-11-16T09:00:00Z");
        let mon_late = DateTime::parse_from_rfc3339("2026-11-23T09:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(last_due(w, mon_late)), "2026-11-23T09:00:00Z");
    }
}
