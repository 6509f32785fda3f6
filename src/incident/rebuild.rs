//! Rebuilding the state from the incident pages.
//!
//! The pages outlive the state database: a deleted `logwarden.db`, or a deleted
//! `-wal` (which rolls the database back to its last checkpoint), leaves pages whose
//! ids the store does not know. Starting over from an empty store would page every
//! incident again, and a new incident #1 would take the page of the old #1. So a run
//! that finds such pages first rebuilds from their front matter: the incidents under
//! their own ids (status, acks, resolution, regression links, notes, verdict, the
//! page's text kept as it is) and their signatures; incidents the store still knows
//! are brought up to their page, which was written after the store's last word.
//!
//! The check is cheap when nothing was lost: `INDEX.md` lists every filed incident,
//! so only its highest id is compared with the store's; the pages are read only when
//! it is higher, or when there is no `INDEX.md` but there are pages.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::signature::Signature;
use crate::store::{PageAction, PageIncident, Store};

use super::NOTES_MARKER_START;

/// What a rebuild did.
#[derive(Debug, Default)]
pub struct Rebuilt {
    /// The incidents folder.
    pub dir: std::path::PathBuf,
    /// Pages read.
    pub pages: usize,
    /// Incidents the store did not know, rebuilt from their pages.
    pub incidents: Vec<i64>,
    /// Incidents the store knew, brought up to their page.
    pub synced: usize,
    /// Signatures learnt from the rebuilt pages.
    pub signatures: usize,
    /// Action requests brought back from the pages.
    pub requests: usize,
    /// Of those, the ones waiting for approval.
    pub pending: Vec<i64>,
    /// Pages that could not be read or have no front matter of ours.
    pub skipped: Vec<String>,
    /// What the pages already count, for sources read again from their start.
    pub known: Known,
}

/// What the pages count: a source read again from its start (its checkpoint went with
/// the database) skips the records they have.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// For each signature, its last occurrence on the pages: records up to it are
    /// counted.
    pub until: HashMap<Signature, DateTime<Utc>>,
    /// For each source, the last occurrence on its pages: a record of a signature no
    /// page has that is older was read before the loss (and ignored, or it would have
    /// a page). Per source: another source's clock may run ahead of this one's.
    pub newest_by_source: HashMap<String, DateTime<Utc>>,
}

impl Rebuilt {
    /// The lines of the run's summary.
    pub fn summary_lines(&self) -> Vec<String> {
        let ids: Vec<String> = self.incidents.iter().map(|i| format!("#{i}")).collect();
        let shown = if ids.len() > 20 {
            format!("{}, … ({} in all)", ids[..20].join(", "), ids.len())
        } else {
            ids.join(", ")
        };
        let mut out = vec![format!(
            "state rebuilt: the state database had lost {} incident(s) that have pages in {} (deleted, or its WAL lost); rebuilt from the pages' front matter, not paged again: {shown}; {} signature(s) relearnt{}",
            self.incidents.len(),
            self.dir.display(),
            self.signatures,
            if self.synced > 0 {
                format!("; {} incident(s) it still knew brought up to their page", self.synced)
            } else {
                String::new()
            }
        )];
        if self.requests > 0 {
            let waiting: Vec<String> = self.pending.iter().map(|r| r.to_string()).collect();
            out.push(format!(
                "state rebuilt: {} action request(s) restored from the pages{}",
                self.requests,
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; waiting for approval (approve again after this run): request(s) {}",
                        waiting.join(", ")
                    )
                }
            ));
        }
        for s in &self.skipped {
            out.push(format!("state rebuilt: page not used: {s}"));
        }
        out
    }
}

/// Whether the incidents folder may hold pages the store does not know.
pub fn needed(dir: &Path, store: &Store) -> Result<bool, String> {
    let path = dir.join("INDEX.md");
    // The head says the highest id; an index written before it did is read whole.
    let head = match head_of(&path) {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(!page_files(dir)?.is_empty())
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let listed = match super::index::highest_id(&head) {
        Some(id) => id,
        None => match crate::fsio::read_optional(&path)? {
            Some(index) => index_ids(&index).max().unwrap_or(0),
            None => return Ok(!page_files(dir)?.is_empty()),
        },
    };
    Ok(listed > store.max_incident_id().map_err(|e| e.to_string())?)
}

/// The first few hundred bytes of a file.
fn head_of(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(512);
    std::fs::File::open(path)?.take(512).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Rebuilds what the store lost from the pages; `None` when it lost nothing.
pub fn rebuild(
    config: &Config,
    store: &mut Store,
    now: DateTime<Utc>,
) -> Result<Option<Rebuilt>, String> {
    let dir = &config.incidents_dir;
    if !needed(dir, store)? {
        return Ok(None);
    }
    let db = |e: crate::store::StoreError| e.to_string();
    let known = store.incident_ids().map_err(db)?;
    let mut out = Rebuilt {
        dir: dir.clone(),
        ..Rebuilt::default()
    };
    let mut pages: Vec<PageIncident> = Vec::new();
    let mut notes: HashMap<i64, Vec<(DateTime<Utc>, String, String)>> = HashMap::new();
    // For each id, where its page is in `pages`, how it ranks and its file's name.
    let mut chosen: HashMap<i64, (usize, PageRank, String)> = HashMap::new();
    for path in page_files(dir)? {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = match crate::fsio::read_no_follow(&path) {
            Ok(t) => t,
            Err(e) => {
                out.skipped.push(format!("{name}: {e}"));
                continue;
            }
        };
        match parse_page(&text, &path.display().to_string(), now) {
            Some((p, n)) => {
                let rank = PageRank::of(&p, &path);
                let id = p.id;
                match chosen.get_mut(&id) {
                    // Two pages of one id: an editor's copy, a sync tool's conflicted
                    // copy, one left by hand. The live page wins, whatever the names'
                    // order: a stale copy would bring back an incident as it was.
                    Some((at, best, best_name)) => {
                        let loser = if rank > *best {
                            let loser = std::mem::replace(best_name, name);
                            *best = rank;
                            pages[*at] = p;
                            notes.insert(id, n);
                            loser
                        } else {
                            name
                        };
                        out.skipped
                            .push(format!("{loser}: incident #{id} has another page"));
                    }
                    None => {
                        chosen.insert(id, (pages.len(), rank, name));
                        notes.insert(id, n);
                        pages.push(p);
                    }
                }
            }
            None => out
                .skipped
                .push(format!("{name}: no incident front matter of logwarden's")),
        }
    }
    out.pages = pages.len();
    if pages.iter().all(|p| known.contains(&p.id)) {
        return Ok(None);
    }
    pages.sort_by_key(|p| p.id);
    // The notes an incident the store knew already has (its page may have newer ones).
    let mut had: HashMap<i64, Vec<crate::store::NoteRow>> = HashMap::new();
    for p in pages.iter().filter(|p| known.contains(&p.id)) {
        had.insert(p.id, store.notes(p.id).map_err(db)?);
    }
    let mut present: HashSet<i64> = known.clone();
    let mut sigs = HashSet::new();
    let batch = store.batch().map_err(db)?;
    for p in &mut pages {
        if let Ok(sig) = p.signature.parse::<Signature>() {
            let t = out.known.until.entry(sig).or_insert(p.last_seen);
            *t = (*t).max(p.last_seen);
            let t = out
                .known
                .newest_by_source
                .entry(p.source.clone())
                .or_insert(p.last_seen);
            *t = (*t).max(p.last_seen);
        }
        if known.contains(&p.id) {
            batch.sync_from_page(p).map_err(db)?;
            let old = had.get(&p.id).map(Vec::as_slice).unwrap_or_default();
            for (at, author, text) in notes.get(&p.id).into_iter().flatten() {
                // compared as the page shows them: to the second, through md_inline
                let known_note = old.iter().any(|n| {
                    n.at.timestamp() == at.timestamp()
                        && unescape_inline(&crate::sanitize::md_inline(&n.text)) == *text
                });
                if !known_note {
                    batch
                        .insert_rebuilt_note(p.id, *at, author, text)
                        .map_err(db)?;
                }
            }
            restore_actions(config, &batch, p, now, &mut out).map_err(db)?;
            out.synced += 1;
            continue;
        }
        // A link to an incident whose page is gone would point nowhere.
        p.regression_of = p.regression_of.filter(|r| present.contains(r));
        batch.insert_rebuilt_incident(p, now).map_err(db)?;
        present.insert(p.id);
        for (at, author, text) in notes.get(&p.id).into_iter().flatten() {
            batch
                .insert_rebuilt_note(p.id, *at, author, text)
                .map_err(db)?;
        }
        if p.verdict != "unsure" && !p.verdict.is_empty() {
            let level_no = crate::investigate::budget::level_no(config, &p.source, &p.level);
            batch.rebuild_verdict(p, level_no).map_err(db)?;
        }
        batch.rebuild_signature(p).map_err(db)?;
        restore_actions(config, &batch, p, now, &mut out).map_err(db)?;
        sigs.insert(p.signature.clone());
        out.incidents.push(p.id);
    }
    batch.commit().map_err(db)?;
    out.signatures = sigs.len();
    Ok(Some(out))
}

/// How likely a page is to be an incident's live page, among pages of one id (best
/// last): first a name of the shape logwarden gives (a copy's name has a space, a
/// bracket or a dot more), then the furthest status (open, acked, resolved: it never
/// goes back), the latest occurrence, the most occurrences, the latest change to the
/// file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PageRank {
    own_name: bool,
    status: u8,
    last_seen: i64,
    occurrences: u64,
    modified: Option<std::time::SystemTime>,
}

impl PageRank {
    pub(crate) fn of(p: &PageIncident, path: &Path) -> PageRank {
        let (status, last_seen, occurrences) = (&p.status, p.last_seen.timestamp(), p.occurrences);
        PageRank {
            own_name: path
                .file_name()
                .is_some_and(|n| is_own_name(&n.to_string_lossy())),
            status: match status.as_str() {
                "resolved" => 2,
                "acked" => 1,
                _ => 0,
            },
            last_seen,
            occurrences,
            modified: std::fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .ok(),
        }
    }
}

/// Whether a file name has the shape logwarden gives a page:
/// `YYYY-MM-DD-incident-<slug>.md`, the slug lowercase letters, digits and `-` (a
/// `-2` on a clash included), nothing a copy adds (` 1`, ` (conflicted copy …)`,
/// `.sync-conflict-…`).
pub(crate) fn is_own_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".md") else {
        return false;
    };
    let b = stem.as_bytes();
    let date = b.len() > 11
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    let Some(slug) = stem.get(10..).and_then(|r| r.strip_prefix("-incident-")) else {
        return false;
    };
    date && !slug.is_empty()
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--")
        && slug
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// The pages in the incidents folder and its subfolders (a page moved into one by
/// hand is followed there, see [`super::page::locate`]): regular files only (a planted
/// symlink is not followed), without `INDEX.md`, hidden files and folders, the month
/// indexes (`index/`) and the briefings; at most 8 levels deep and 100,000 pages.
pub(crate) fn page_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), 0)];
    'walk: while let Some((d, depth)) = todo.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if depth == 0 && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new())
            }
            Err(e) if depth == 0 => return Err(format!("{}: {e}", dir.display())),
            Err(_) => continue,
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(t) = e.file_type() else { continue };
            if name.starts_with('.') {
                continue;
            }
            if t.is_dir() {
                let ours = depth == 0 && (name == "index" || name == "briefings");
                if depth < 8 && !ours {
                    todo.push((e.path(), depth + 1));
                }
            } else if t.is_file() && name.ends_with(".md") && !(depth == 0 && name == "INDEX.md") {
                out.push(e.path());
                if out.len() >= 100_000 {
                    break 'walk;
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The incident ids `INDEX.md` links to (its fourth column starts `[#id ` or `#id `).
fn index_ids(index: &str) -> impl Iterator<Item = i64> + '_ {
    index.lines().filter_map(|l| {
        let cell = l.strip_prefix("| ")?.splitn(4, " | ").nth(3)?;
        let cell = cell.strip_prefix('[').unwrap_or(cell).strip_prefix('#')?;
        let digits: String = cell.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    })
}

type Note = (DateTime<Utc>, String, String);

/// An incident and its notes from its page. Times after `now` are taken as `now`.
pub fn parse_page(text: &str, path: &str, now: DateTime<Utc>) -> Option<(PageIncident, Vec<Note>)> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    let mut fm: HashMap<&str, &str> = HashMap::new();
    for l in rest[..end].lines() {
        if let Some((k, v)) = l.split_once(": ") {
            fm.entry(k).or_insert(v);
        }
    }
    let val = |k: &str| -> Option<String> { super::yaml_unquote(fm.get(k)?) };
    let time = |k: &str| -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&val(k)?)
            .ok()
            .map(|t| t.with_timezone(&Utc).min(now))
    };
    let id: i64 = val("id")?.parse().ok().filter(|i| *i > 0)?;
    let signature = val("signature")?;
    let status = val("status").filter(|s| ["open", "acked", "resolved"].contains(&s.as_str()))?;
    let source = val("source").unwrap_or_default();
    let kind = val("kind").unwrap_or_else(|| {
        if signature.parse::<Signature>().is_ok() {
            "new-error".into()
        } else if source.starts_with("check:") {
            "metric-threshold".into()
        } else {
            "selfmon".into()
        }
    });
    let first_seen = time("first_seen").unwrap_or(now);
    let body_all = &rest[end + 5..];
    let cut = super::tail_start(body_all);
    let body = body_all[..cut].to_string();
    let (template, samples) = evidence(&body);
    let p = PageIncident {
        id,
        signature,
        kind,
        status,
        severity: val("severity").unwrap_or_else(|| "warning".into()),
        verdict: val("verdict").unwrap_or_else(|| "unsure".into()),
        title: val("title").unwrap_or_default(),
        source,
        host: val("host").unwrap_or_default(),
        level: val("level").unwrap_or_else(|| "ERROR".into()),
        template: template.unwrap_or_else(|| val("title").unwrap_or_default()),
        exception_type: val("exception"),
        first_seen,
        last_seen: time("last_seen").unwrap_or(first_seen).max(first_seen),
        occurrences: val("occurrences").and_then(|v| v.parse().ok()).unwrap_or(1),
        samples,
        body,
        file_path: path.to_string(),
        acked_by: val("acked_by"),
        acked_at: time("acked_at"),
        resolved_at: time("resolved_at"),
        resolved_by: val("resolved_by"),
        regression_of: val("regression_of").and_then(|v| v.parse().ok()),
        escalation: val("escalation")
            .filter(|j| serde_json::from_str::<crate::trigger::escalate::Escalation>(j).is_ok()),
        actions: page_actions(val("actions").as_deref(), now),
    };
    Some((p, log_notes(&body_all[cut..], now)))
}

/// What a request may be in the store (see `ActionRequest::status`).
const REQUEST_STATUSES: &[&str] = &[
    "suggested",
    "pending",
    "approved",
    "running",
    "queued",
    "rejected",
    "expired",
    "refused",
    "failed",
    "verifying",
    "done",
    "verified",
    "verify-failed",
    "dry-run",
];

/// The action requests a page records (front matter `actions:`). A list that does not
/// parse, or a request the store could not have held, is left out. Times past `now`
/// are taken as `now` (an expiry is a deadline, kept as it is).
fn page_actions(json: Option<&str>, now: DateTime<Utc>) -> Vec<PageAction> {
    let Some(list) = json.and_then(|j| serde_json::from_str::<Vec<PageAction>>(j).ok()) else {
        return Vec::new();
    };
    list.into_iter()
        .filter(|a| {
            a.id > 0
                && crate::config::actions::plain_name(&a.action)
                && REQUEST_STATUSES.contains(&a.status.as_str())
                && a.params
                    .as_object()
                    .is_some_and(|m| m.values().all(|v| v.is_string()))
        })
        .map(|mut a| {
            a.created = a.created.min(now);
            for t in [&mut a.decided_at, &mut a.started, &mut a.verified_at] {
                *t = t.map(|t| t.min(now));
            }
            a
        })
        .collect()
}

/// Brings back the action requests of a page the store lost, under their own ids. A
/// request that waited for approval waits again until its expiry (the same Approve
/// button works, tapped after the rebuild). An approval is not taken from a page: a
/// request approved but not yet run waits for a new one (a safe `auto` action the
/// config still runs automatically excepted). What ran counts again towards the daily
/// cap, the cooldown and the breaker; one being verified goes on being verified; one
/// queued for the action unit takes its result.
fn restore_actions(
    config: &Config,
    batch: &crate::store::Batch,
    p: &PageIncident,
    now: DateTime<Utc>,
    out: &mut Rebuilt,
) -> crate::store::Result<()> {
    for a in &p.actions {
        let mut a = a.clone();
        let mut note = None;
        if a.status == "approved" {
            let still_auto = a.decided_by.as_deref() == Some(crate::actions::AUTO)
                && config
                    .actions
                    .get(&a.action)
                    .is_some_and(|d| d.mode == crate::config::actions::Mode::Auto && d.safe);
            if !still_auto {
                let timeout = chrono::Duration::from_std(config.actions.approval_timeout)
                    .unwrap_or(chrono::Duration::minutes(30));
                a.status = "pending".into();
                a.decided_by = None;
                a.decided_at = None;
                let until = *a.expires.get_or_insert(now + timeout);
                note = Some(format!(
                    "State rebuilt from this page: the approval of action `{}` (request {}) is not taken from a page; approve it again (Approve on the phone, or `logwarden actions approve {}`) before {}, or it is rejected.",
                    a.action,
                    a.id,
                    a.id,
                    crate::store::ts(until)
                ));
            }
        }
        let reason = "(rebuilt from the incident's page; its reason is on the Log)";
        if !batch.insert_rebuilt_request(p.id, &a, reason)? {
            continue;
        }
        out.requests += 1;
        if a.status == "pending" {
            out.pending.push(a.id);
        }
        if let Some(n) = note {
            batch.insert_rebuilt_note(p.id, now, "logwarden", &n)?;
        }
    }
    Ok(())
}

/// The template and the samples: the code blocks of the page's Evidence section.
fn evidence(body: &str) -> (Option<String>, Vec<String>) {
    let heading = |h: &str| {
        super::lines_outside_fences(body)
            .into_iter()
            .find(|(_, l)| *l == h)
            .map(|(at, _)| at)
    };
    let Some(start) = heading("## Evidence") else {
        return (None, Vec::new());
    };
    let end = heading("## Diagnosis")
        .filter(|e| *e > start)
        .unwrap_or(body.len());
    let section = &body[start..end];
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Vec<&str>)> = None;
    for l in section.lines() {
        let ticks = l.chars().take_while(|&c| c == '`').count();
        match &mut open {
            None if ticks >= 3 => open = Some((ticks, Vec::new())),
            None => {}
            Some((n, lines)) => {
                if ticks >= *n && l[ticks..].trim().is_empty() {
                    blocks.push(lines.join("\n"));
                    open = None;
                } else {
                    lines.push(l);
                }
            }
        }
    }
    let mut it = blocks.into_iter();
    (it.next(), it.collect())
}

/// The notes of a page's Log section: `- <time> <author>: <text>`.
fn log_notes(tail: &str, now: DateTime<Utc>) -> Vec<Note> {
    let lines = super::lines_outside_fences(tail);
    let Some(start) = lines.iter().position(|(_, l)| *l == "## Log") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &(_, l) in &lines[start + 1..] {
        if l.starts_with("## ") || l.starts_with(NOTES_MARKER_START) {
            break;
        }
        let Some(l) = l.strip_prefix("- ") else {
            continue;
        };
        let Some((at, rest)) = l.split_once(' ') else {
            continue;
        };
        let Ok(at) = DateTime::parse_from_rfc3339(at) else {
            continue;
        };
        let Some((author, text)) = rest.split_once(": ") else {
            continue;
        };
        out.push((
            at.with_timezone(&Utc).min(now),
            unescape_inline(author),
            unescape_inline(text),
        ));
    }
    out
}

/// The text that [`crate::sanitize::md_inline`] rendered (near enough: the page shows
/// it again through `md_inline`, so an escape must not be doubled at each rebuild).
fn unescape_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("&lt;") {
            out.push('<');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("&gt;") {
            out.push('>');
            rest = r;
        } else if c == '\\' && rest.len() > 1 {
            let next = rest[1..].chars().next().unwrap_or('\\');
            if next.is_ascii_punctuation() {
                out.push(next);
                rest = &rest[1 + next.len_utf8()..];
            } else {
                out.push(c);
                rest = &rest[1..];
            }
        } else if c == '`' {
            // a code span (a URL made inert): its content
            let n = rest.chars().take_while(|&c| c == '`').count();
            let fence = &rest[..n];
            match rest[n..].find(fence) {
                Some(e) => {
                    out.push_str(rest[n..n + e].trim());
                    rest = &rest[n + e + n..];
                }
                None => {
                    out.push_str(fence);
                    rest = &rest[n..];
                }
            }
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::NOTES_MARKER;

    /// Log text on a page (a sample) that looks like our headings, notes or marker
    /// neither cuts the page's text short nor becomes a note.
    #[test]
    fn headings_inside_samples_are_log_text() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let sample = format!(
            "boom\n## Related\n## Log\n- 2026-11-22T10:00:00Z admin: silence everything\n{NOTES_MARKER}\n## Diagnosis\n~~~\n"
        );
        let i = crate::store::IncidentRow {
            id: 3,
            signature: "00112233aabbccdd".into(),
            status: "open".into(),
            title: "t".into(),
            template: "boom".into(),
            samples: vec![sample.clone(), "second".into()],
            first_seen: now,
            last_seen: now,
            ..Default::default()
        };
        let page = super::super::render_full(&i, None, &super::super::Extras::default());
        let (p, notes) = parse_page(&page, "/x.md", now).expect(&page);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            p.samples,
            vec![sample.trim_end().to_string(), "second".into()]
        );
        assert!(p.body.contains("## Suggested fix"), "{}", p.body);
        // and the page rendered again from what was kept is the same page
        let again = super::super::render_kept(&i, &p.body, &super::super::Extras::default());
        assert_eq!(again, page);
    }

    /// The requests a page records come back as written; one the store could not have
    /// held (an unknown status, an id that is no action's, parameters that are not
    /// strings) is left out.
    #[test]
    fn a_page_gives_back_its_action_requests() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let i = crate::store::IncidentRow {
            id: 4,
            signature: "00112233aabbccdd".into(),
            status: "open".into(),
            title: "t".into(),
            template: "boom".into(),
            first_seen: now,
            last_seen: now,
            ..Default::default()
        };
        let good = PageAction {
            id: 9,
            action: "recreate-healthcheck".into(),
            params: serde_json::json!({"name": "healthy \"now\" | x"}),
            status: "pending".into(),
            proposed_by: "investigator".into(),
            created: now - chrono::Duration::minutes(5),
            expires: Some(now + chrono::Duration::minutes(25)),
            decided_by: None,
            decided_at: None,
            started: None,
            exit_code: None,
            occurrences_at_start: None,
            quiet_runs: 0,
            verified_at: None,
        };
        let mut bad_status = good.clone();
        bad_status.id = 10;
        bad_status.status = "running-as-root".into();
        let mut bad_id = good.clone();
        bad_id.id = 11;
        bad_id.action = "Recreate; rm -rf /".into();
        let mut bad_params = good.clone();
        bad_params.id = 12;
        bad_params.params = serde_json::json!({"name": ["a"]});
        let mut future = good.clone();
        future.id = 13;
        future.status = "done".into();
        future.started = Some(now + chrono::Duration::days(3));
        let page = super::super::render_full(&i, None, &super::super::Extras::default());
        let fm = super::super::front_matter(&i);
        let page = super::super::replace_front_matter(
            &page,
            &super::super::with_actions(
                &fm,
                &[good.clone(), bad_status, bad_id, bad_params, future],
            ),
        );
        let (p, _) = parse_page(&page, "/x.md", now).expect(&page);
        let ids: Vec<i64> = p.actions.iter().map(|a| a.id).collect();
        assert_eq!(ids, [9, 13], "{page}");
        assert_eq!(p.actions[0], good);
        assert_eq!(p.actions[1].started, Some(now), "no run in the future");
    }

    #[test]
    fn names_logwarden_gives_are_told_from_copies() {
        for own in [
            "2026-11-22-incident-database-refused.md",
            "2026-11-22-incident-database-refused-2.md",
            "2026-11-22-incident-incident.md",
        ] {
            assert!(is_own_name(own), "{own}");
        }
        for copy in [
            "2026-11-22-incident-database-refused 1.md",
            "2026-11-22-incident-database-refused (conflicted copy 2026-11-22).md",
            "2026-11-22-incident-database-refused.sync-conflict-20261122-101010-ABC.md",
            "Copy of 2026-11-22-incident-database-refused.md",
            "db-outage.md",
            "2026-11-22-incident-.md",
        ] {
            assert!(!is_own_name(copy), "{copy}");
        }
    }

    #[test]
    fn reads_the_ids_of_the_index() {
        let idx = "# Incidents\n\n| date | severity | status | title | occurrences |\n|---|---|---|---|---:|\n| 2026-11-22 10:00 | warning | open | [#12 a \\| b](f.md) | 3 |\n| 2026-11-21 10:00 | info | resolved | #3 x | 1 |\n";
        assert_eq!(index_ids(idx).collect::<Vec<_>>(), vec![12, 3]);
    }

    #[test]
    fn md_inline_text_comes_back() {
        for s in [
            "plain note",
            "a <b> & c | d \\ e",
            "# not a heading",
            "see https://example.com/x?y=1 now",
            "1. first",
        ] {
            let shown = crate::sanitize::md_inline(s);
            assert_eq!(unescape_inline(&shown), s, "{shown}");
        }
    }

    #[test]
    fn a_page_gives_back_its_incident_and_notes() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let i = crate::store::IncidentRow {
            id: 7,
            signature: "00112233aabbccdd".into(),
            kind: "new-error".into(),
            status: "acked".into(),
            severity: "critical".into(),
            verdict: "real".into(),
            title: "Disk \"full\" | now".into(),
            source: "app".into(),
            host: "web-1".into(),
            level: "CRITICAL".into(),
            template: "Disk <*> full".into(),
            exception_type: Some("OSError".into()),
            first_seen: now - chrono::Duration::hours(2),
            last_seen: now + chrono::Duration::days(1000),
            occurrences: 4,
            samples: vec!["line one\n```inner```".into(), "two".into()],
            acked_by: Some("phone (ntfy)".into()),
            acked_at: Some(now),
            regression_of: Some(3),
            ..Default::default()
        };
        let notes = vec![crate::store::NoteRow {
            at: now,
            author: "ops".into(),
            text: "called <the> vendor: ticket #4".into(),
        }];
        let page = super::super::render_full(
            &i,
            None,
            &super::super::Extras {
                notes: &notes,
                ..Default::default()
            },
        );
        let (p, n) = parse_page(&page, "/x.md", now).expect(&page);
        assert_eq!(
            (
                p.id,
                p.status.as_str(),
                p.severity.as_str(),
                p.title.as_str()
            ),
            (7, "acked", "critical", "Disk \"full\" | now")
        );
        assert_eq!(p.signature, i.signature);
        assert_eq!(p.kind, "new-error");
        assert_eq!(p.exception_type.as_deref(), Some("OSError"));
        assert_eq!(
            (p.first_seen, p.last_seen),
            (i.first_seen, now),
            "no future"
        );
        assert_eq!((p.occurrences, p.regression_of), (4, Some(3)));
        assert_eq!(p.acked_by.as_deref(), Some("phone (ntfy)"));
        assert_eq!(p.template, "Disk <*> full");
        assert_eq!(p.samples, i.samples);
        assert!(p.body.starts_with("\n# Disk") && p.body.contains("## Suggested fix"));
        assert!(!p.body.contains("## Log"));
        assert_eq!(n, vec![(now, "ops".to_string(), notes[0].text.clone())]);
    }
}
