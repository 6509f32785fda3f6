//! Incident files: one markdown page per incident, `YYYY-MM-DD-incident-<slug>.md`,
//! with YAML front matter and the evidence, diagnosis and suggested fix. Files are
//! written atomically; a user's notes below the marker line survive every rewrite.

pub mod briefing;
pub mod index;
pub mod lifecycle;
pub mod page;
pub mod rebuild;
pub mod watcher;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::investigate::Diagnosis;
use crate::sanitize::{code_span, fence, md_inline, md_text};
use crate::store::{ts, IncidentRow, Store};

/// Everything below this line in an incident file belongs to the user.
pub const NOTES_MARKER: &str =
    "<!-- logwarden: write your notes below this line; they are kept on every update -->";

/// How the marker line is known in a page: its start. Whatever follows on the line
/// (text typed after the comment, the comment's wording changed) does not hide it.
pub const NOTES_MARKER_START: &str = "<!-- logwarden: write your notes below this line";

/// At most this many bytes of evidence go into a file.
const MAX_EVIDENCE: usize = 24 * 1024;

/// Lowercase words joined by `-`, at most 60 characters, cut at a word boundary.
/// Letters outside ASCII are transliterated (`für` → `fur`, `Ошибка` → `oshibka`), so a
/// title in another language still names its file readably.
pub fn slug(title: &str) -> String {
    let title = deunicode::deunicode(title);
    let mut out = String::new();
    for word in title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        let extra = if out.is_empty() {
            word.len()
        } else {
            word.len() + 1
        };
        if out.len() + extra > 60 {
            if out.is_empty() {
                out.push_str(&word[..60]);
            }
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word);
    }
    if out.is_empty() {
        "incident".into()
    } else {
        out
    }
}

/// Chooses the file for an incident: its recorded path, else a new name from the date
/// of first occurrence and the title, with `-2`, `-3` on a clash. A file that already
/// carries this incident's id (left by a run that crashed before recording it) is reused.
/// A name the store records for another incident ([`Store::page_name_taken`]), or one
/// in `chosen` (names given this run to pages not recorded yet), is taken even when no
/// file has it: its page was deleted or moved, and that incident writes there again on
/// its next update, so two incidents would share one file.
pub fn path_for(
    dir: &Path,
    incident: &IncidentRow,
    store: &Store,
    chosen: &HashMap<String, i64>,
) -> crate::store::Result<PathBuf> {
    if let Some(p) = &incident.file_path {
        return Ok(PathBuf::from(p));
    }
    let date = incident.first_seen.format("%Y-%m-%d");
    let slug = slug(&incident.title);
    for n in 1.. {
        let name = if n == 1 {
            format!("{date}-incident-{slug}.md")
        } else {
            format!("{date}-incident-{slug}-{n}.md")
        };
        if chosen.get(&name).is_some_and(|id| *id != incident.id)
            || store.page_name_taken(&name, incident.id)?
        {
            continue;
        }
        let path = dir.join(name);
        // A symlink planted at the name is taken, neither read nor written through.
        match crate::fsio::read_no_follow(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            Err(_) => continue,
            Ok(text) if front_matter_id(&text) == Some(incident.id) => return Ok(path),
            Ok(_) => continue,
        }
    }
    unreachable!()
}

fn front_matter_id(text: &str) -> Option<i64> {
    let fm = text.strip_prefix("---\n")?;
    let end = fm.find("\n---")?;
    fm[..end]
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .and_then(|v| v.trim().parse().ok())
}

/// A YAML double-quoted scalar of one line: `"`, `\`, line breaks and tabs escaped.
/// A YAML reader (a notes app's properties, a script) decodes escapes, so the
/// characters that must not reach a person as themselves (ESC, bidi overrides, …)
/// are written as the same visible stand-ins the page shows, not as escapes; the
/// few others YAML does not allow raw in a stream (U+FFFE, U+FFFF) are escaped.
pub fn yaml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in crate::sanitize::text(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'.. => {
                out.push(c)
            }
            c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Reads back a scalar [`yaml_str`] wrote (any YAML double-quoted scalar of one line),
/// or a plain one as it stands. `None` for a quoted one that is not well formed.
pub fn yaml_unquote(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let Some(inner) = raw.strip_prefix('"') else {
        return Some(raw.to_string());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars, n: usize| -> Option<char> {
            let h: String = chars.by_ref().take(n).collect();
            (h.len() == n).then_some(())?;
            char::from_u32(u32::from_str_radix(&h, 16).ok()?)
        };
        out.push(match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'n' => '\n',
            't' | '\t' => '\t',
            'r' => '\r',
            '0' => '\0',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'e' => '\u{1b}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            ' ' => ' ',
            'N' => '\u{85}',
            '_' => '\u{a0}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            'U' => hex(&mut chars, 8)?,
            _ => return None,
        });
    }
    Some(out)
}

/// An incident's title as filed: redacted (it names the page's file and heads the
/// notification) and at most 120 characters. A record without words (a NULL or blank
/// message) still gets a title that says so: an empty one leaves the page without a
/// heading and the phone without a line to read.
pub fn clean_title(config: &crate::config::Config, title: &str) -> String {
    let title: String = config
        .redact
        .redactor
        .clean(title.trim())
        .chars()
        .take(120)
        .collect();
    if title.trim().is_empty() {
        "(empty message)".to_string()
    } else {
        title
    }
}

/// A value of our own vocabulary (`open`, `critical`, `real`) as a plain YAML scalar,
/// anything else quoted (a plain `no`, `null` or `1e3` would read as another type).
fn yaml_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
        && !matches!(
            s,
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        s.to_string()
    } else {
        yaml_str(s)
    }
}

/// The page's YAML front matter, `---` lines included.
pub fn front_matter(i: &IncidentRow) -> String {
    let mut s = String::new();
    s.push_str("---\n");
    s.push_str(&format!("id: {}\n", i.id));
    s.push_str(&format!("title: {}\n", yaml_str(&i.title)));
    s.push_str(&format!("status: {}\n", yaml_word(&i.status)));
    s.push_str(&format!("severity: {}\n", yaml_word(&i.severity)));
    s.push_str(&format!("verdict: {}\n", yaml_word(&i.verdict)));
    s.push_str(&format!("signature: {}\n", yaml_str(&i.signature)));
    s.push_str(&format!("kind: {}\n", yaml_str(&i.kind)));
    s.push_str(&format!("source: {}\n", yaml_str(&i.source)));
    s.push_str(&format!("host: {}\n", yaml_str(&i.host)));
    s.push_str(&format!("level: {}\n", yaml_str(&i.level)));
    if let Some(e) = &i.exception_type {
        s.push_str(&format!("exception: {}\n", yaml_str(e)));
    }
    s.push_str(&format!("first_seen: {}\n", ts(i.first_seen)));
    s.push_str(&format!("last_seen: {}\n", ts(i.last_seen)));
    s.push_str(&format!("occurrences: {}\n", i.occurrences));
    if let Some(by) = &i.acked_by {
        s.push_str(&format!("acked_by: {}\n", yaml_str(by)));
    }
    if let Some(at) = i.acked_at {
        s.push_str(&format!("acked_at: {}\n", ts(at)));
    }
    if let Some(at) = i.resolved_at {
        s.push_str(&format!("resolved_at: {}\n", ts(at)));
    }
    if let Some(by) = &i.resolved_by {
        s.push_str(&format!("resolved_by: {}\n", yaml_str(by)));
    }
    if let Some(of) = i.regression_of {
        s.push_str(&format!("regression_of: {of}\n"));
    }
    // What the escalation rules decided (JSON), so a rebuilt store still nags for it.
    if let Some(e) = &i.escalation {
        let json = serde_json::to_string(e).expect("escalation serialises");
        s.push_str(&format!(
            "escalation: {}\n",
            yaml_str(&crate::sanitize::json(&json))
        ));
    }
    s.push_str("---\n");
    s
}

/// Front matter with the incident's action requests added (`actions:`, JSON on one
/// line), so that a rebuilt store knows what waits for approval and what ran.
pub fn with_actions(fm: &str, actions: &[crate::store::PageAction]) -> String {
    if actions.is_empty() {
        return fm.to_string();
    }
    let Some(head) = fm.strip_suffix("---\n") else {
        return fm.to_string();
    };
    let json = serde_json::to_string(actions).expect("requests serialise");
    // Escaped inside the JSON first: the value survives a rebuild unchanged.
    format!(
        "{head}actions: {}\n---\n",
        yaml_str(&crate::sanitize::json(&json))
    )
}

/// A page with its front matter replaced.
pub fn replace_front_matter(page: &str, fm: &str) -> String {
    match page
        .strip_prefix("---\n")
        .and_then(|rest| rest.find("\n---\n").map(|e| &rest[e + 5..]))
    {
        Some(body) => format!("{fm}{body}"),
        None => page.to_string(),
    }
}

/// Renders the page of an incident.
pub fn render(i: &IncidentRow, d: Option<&Diagnosis>) -> String {
    render_with_metric(i, d, None)
}

/// Another incident a page links to, and how it is related.
#[derive(Debug, Clone)]
pub struct Related {
    pub id: i64,
    pub title: String,
    pub status: String,
    /// The relative link to its page from the page that shows it ([`page_link`]).
    pub file: Option<String>,
    /// `same signature`, `regression of`, `regressed as`, `same run`.
    pub relation: &'static str,
}

/// What a page shows beyond the incident itself.
#[derive(Debug, Default)]
pub struct Extras<'a> {
    pub metric: Option<&'a str>,
    pub related: &'a [Related],
    pub notes: &'a [crate::store::NoteRow],
}

/// How `b` relates to `a` (for the links of `a`'s page).
pub fn relation(a: &IncidentRow, b: &IncidentRow) -> &'static str {
    if a.regression_of == Some(b.id) {
        "regression of"
    } else if b.regression_of == Some(a.id) {
        "regressed as"
    } else if a.signature == b.signature {
        "same signature"
    } else {
        "same run"
    }
}

/// Renders a page with its related incidents and notes.
pub fn render_full(i: &IncidentRow, d: Option<&Diagnosis>, extras: &Extras) -> String {
    let page = render_with_metric(i, d, extras.metric);
    let mut tail = String::new();
    if !extras.related.is_empty() {
        tail.push_str("## Related\n\n");
        for r in extras.related {
            let title = crate::sanitize::md_link_text(&r.title);
            let link = match &r.file {
                Some(link) => format!("[#{} {title}]({link})", r.id),
                None => format!("#{} {title}", r.id),
            };
            tail.push_str(&format!("- {}: {link} ({})\n", r.relation, r.status));
        }
        tail.push('\n');
    }
    if !extras.notes.is_empty() {
        tail.push_str("## Log\n\n");
        for n in extras.notes {
            tail.push_str(&format!(
                "- {} {}: {}\n",
                ts(n.at),
                md_inline(&n.author),
                md_inline(&n.text)
            ));
        }
        tail.push('\n');
    }
    match page.rfind(NOTES_MARKER) {
        Some(at) if !tail.is_empty() => format!("{}{tail}{}", &page[..at], &page[at..]),
        _ => page,
    }
}

/// The lines of a page outside its fenced code blocks, with their byte offsets. Log
/// text and the investigator's code sit in such blocks: a line there that looks like
/// one of our headings is theirs, not ours.
pub(crate) fn lines_outside_fences(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut open: Option<(char, usize)> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end_matches('\n');
        let t = l.trim_start();
        let run = |ch: char| t.chars().take_while(|&c| c == ch).count();
        match open {
            Some((ch, n)) => {
                if run(ch) >= n && t.trim_start_matches(ch).trim().is_empty() {
                    open = None;
                }
            }
            // As in CommonMark (and `sanitize::md_text`, which writes the investigator's
            // text): a backtick run followed by another backtick on its line is a code
            // span, not a fence. Reading it as a fence would hide the rest of the page.
            None => match ['`', '~']
                .into_iter()
                .find(|&ch| run(ch) >= 3 && !(ch == '`' && t[run(ch)..].contains('`')))
            {
                Some(ch) => open = Some((ch, run(ch))),
                None => out.push((at, l)),
            },
        }
        at += line.len();
    }
    out
}

/// Where the part of a page that follows its body starts: the "Related" or "Log"
/// section, or the notes marker (the end when there is none).
pub(crate) fn tail_start(page: &str) -> usize {
    lines_outside_fences(page)
        .into_iter()
        .find(|(_, l)| *l == "## Related" || *l == "## Log" || l.starts_with(NOTES_MARKER_START))
        .map_or(page.len(), |(at, _)| at)
}

/// Renders the page of an incident rebuilt from its page after the state was lost:
/// the front matter, related incidents and log are current, the rest of the page
/// (summary, evidence, diagnosis, fix: what the store no longer holds) is `body`,
/// kept as the page had it.
pub fn render_kept(i: &IncidentRow, body: &str, extras: &Extras) -> String {
    let fresh = render_full(i, None, extras);
    let Some(fm_end) = fresh.find("\n---\n").map(|e| e + 5) else {
        return fresh;
    };
    let after = &fresh[fm_end..];
    format!("{}{body}{}", &fresh[..fm_end], &after[tail_start(after)..])
}

/// Renders the page of an incident, with a metric section (the explanation,
/// sparkline and chart links of a metric incident, as markdown) after the summary.
pub fn render_with_metric(i: &IncidentRow, d: Option<&Diagnosis>, metric: Option<&str>) -> String {
    let mut s = String::new();
    s.push_str(&front_matter(i));
    s.push('\n');
    // The title, the LLM's words and log text are rendered as text: no HTML, no
    // image (a remote one leaks to its server when the page is viewed), no link to
    // follow, no heading of their own.
    s.push_str(&format!("# {}\n\n", md_inline(&i.title)));

    s.push_str("## Summary\n\n");
    match d {
        Some(d) if d.diagnosed => {
            s.push_str(&format!("{}\n\n", md_text(non_empty(&d.summary))));
            if let Some(c) = d.confidence {
                s.push_str(&format!(
                    "Verdict: **{}**, confidence {:.0}%.\n\n",
                    d.verdict,
                    c * 100.0
                ));
            }
        }
        _ => s.push_str(&format!(
            "{} occurrence{} of {} on {} (source {}), first at {}, last at {}.\n\n",
            i.occurrences,
            if i.occurrences == 1 { "" } else { "s" },
            code_span(&i.template),
            md_inline(&i.host),
            code_span(&i.source),
            ts(i.first_seen),
            ts(i.last_seen)
        )),
    }

    if let Some(m) = metric {
        s.push_str("## Metric\n\n");
        s.push_str(m.trim_end());
        s.push_str("\n\n");
    }

    s.push_str("## Evidence\n\n");
    s.push_str(&format!("Signature `{}`, template:\n\n", i.signature));
    let f = fence(&i.template);
    s.push_str(&format!("{f}text\n{}\n{f}\n\n", i.template));
    let mut used = 0;
    for (n, sample) in i.samples.iter().enumerate() {
        if used + sample.len() > MAX_EVIDENCE {
            s.push_str(&format!(
                "({} more sample(s) not shown)\n\n",
                i.samples.len() - n
            ));
            break;
        }
        used += sample.len();
        let f = fence(sample);
        s.push_str(&format!("{f}text\n{}\n{f}\n\n", sample.trim_end()));
    }

    s.push_str("## Diagnosis\n\n");
    match d {
        Some(d) if d.diagnosed => {
            s.push_str(&format!("{}\n\n", md_text(non_empty(&d.root_cause))));
        }
        Some(d) => s.push_str(&format!(
            "Not diagnosed: {}.\n\n",
            md_inline(d.error.as_deref().unwrap_or("no investigator configured"))
        )),
        None => s.push_str("Not diagnosed yet.\n\n"),
    }
    if let Some(d) = d {
        let mut facts = vec![format!("investigator: {}", md_inline(&d.backend))];
        if let Some(c) = d.cost_usd {
            facts.push(format!("cost ${c:.4}"));
        }
        if let Some(t) = d.num_turns {
            facts.push(format!("{t} turn(s)"));
        }
        s.push_str(&format!("_{}_\n\n", facts.join(", ")));
        if !d.permission_denials.is_empty() {
            s.push_str("Tool uses refused to the investigator:\n\n");
            for p in &d.permission_denials {
                let name = p["tool_name"].as_str().unwrap_or("?");
                let input: String = p["tool_input"].to_string().chars().take(200).collect();
                s.push_str(&format!("- {} {}\n", code_span(name), code_span(&input)));
            }
            s.push('\n');
        }
    }

    s.push_str("## Suggested fix\n\n");
    match d {
        Some(d) if d.diagnosed => {
            s.push_str(&format!("{}\n\n", md_text(non_empty(&d.suggested_fix))))
        }
        _ => match crate::ignore::suggest_for_incident(i.id, &i.signature, "why this is noise") {
            Some(command) => {
                let f = fence(&command);
                s.push_str(&format!(
                    "Look at the evidence above. If this is noise, silence it:\n\n{f}sh\n{command}\n{f}\n\n"
                ));
            }
            None => s.push_str("Look at the evidence above.\n\n"),
        },
    }
    s.push_str(NOTES_MARKER);
    s.push('\n');
    s
}

fn non_empty(s: &str) -> &str {
    if s.trim().is_empty() {
        "(none given)"
    } else {
        s.trim()
    }
}

/// Writes (or rewrites) an incident file atomically, keeping the user's notes, its
/// owner and its mode (a new page is 0640, owned like the incidents folder). A page
/// that exists but cannot be read is left as it is: rewriting it would drop the notes.
pub fn write(path: &Path, page: &str) -> Result<(), String> {
    write_with(path, page, true)
}

/// [`write`] without the flush to disk: for a batch of pages made durable together
/// with [`crate::fsio::sync_dir`] before the store records them.
pub fn write_unsynced(path: &Path, page: &str) -> Result<(), String> {
    write_with(path, page, false)
}

fn write_with(path: &Path, page: &str, sync: bool) -> Result<(), String> {
    let text = page_text(path, page)?;
    let new = crate::fsio::NewFile::DirOwner(0o640);
    if sync {
        crate::fsio::replace(path, text.as_bytes(), new)
    } else {
        crate::fsio::replace_unsynced(path, text.as_bytes(), new)
    }
}

/// What a page's file holds once `page` is written over it: the page made safe, then
/// the notes its readers added below the notes marker.
pub fn page_text(path: &Path, page: &str) -> Result<String, String> {
    let old = crate::fsio::read_optional(path)
        .map_err(|e| format!("{e}; the page is left as it was (its notes would be lost)"))?;
    let notes = match old {
        None => String::new(),
        Some(old) if old.trim().is_empty() => String::new(),
        // Without the marker, where the page ends and the notes begin is not known:
        // a rewrite would drop whatever the user wrote.
        Some(old) => notes_of(&old).ok_or_else(|| {
            format!(
                "{}: its notes marker line (`{NOTES_MARKER_START} …`) is gone; the page is left as it was (its notes would be lost): put that line back at the start of a line above your notes and the next run rewrites the page",
                path.display()
            )
        })?,
    };
    // Control characters from log text (an escape sequence waiting for someone to
    // `cat` the page) are made visible; the user's notes are theirs.
    let mut text = crate::sanitize::text(page).into_owned();
    text.push_str(&notes);
    Ok(text)
}

/// The user's notes on a page: what follows its marker line, and text typed after the
/// marker on that line. `None` when the page has no marker line.
///
/// The marker is the first line outside code blocks that starts with the marker's
/// start. Log text may hold the marker too, but never at the start of a line outside a
/// code block (a title is a heading, a sample is fenced, text is escaped): taking that
/// one would copy the page into its own notes on every rewrite.
fn notes_of(old: &str) -> Option<String> {
    let (at, line) = lines_outside_fences(old)
        .into_iter()
        .find(|(_, l)| l.starts_with(NOTES_MARKER_START))?;
    let below = old[at + line.len()..].trim_start_matches('\n');
    let rest = &line[NOTES_MARKER_START.len()..];
    let typed = rest.find("-->").map_or("", |end| rest[end + 3..].trim());
    Some(if typed.is_empty() {
        below.to_string()
    } else {
        format!("{typed}\n{below}")
    })
}

/// The relative link from a file in the folder `from` to the page recorded at `page`,
/// both in the incidents folder `dir` or its subfolders (a page the user or a notes app
/// moved into one is linked where it is): `../` for each folder `from` is below `dir`,
/// then the page's path below `dir`, each part percent-encoded where markdown would end
/// the link. A page outside `dir` (recorded before the folder moved) is linked by its
/// file name, where the next run takes it.
pub fn page_link(dir: &Path, from: &Path, page: &Path) -> Option<String> {
    let below = match page.strip_prefix(dir) {
        Ok(below) => below,
        Err(_) => Path::new(page.file_name()?),
    };
    let depth = from.strip_prefix(dir).map_or(0, |f| f.components().count());
    let mut parts: Vec<String> = vec!["..".into(); depth];
    for c in below.components() {
        match c {
            std::path::Component::Normal(part) => {
                parts.push(crate::notify::ntfy::url_segment(&part.to_string_lossy()))
            }
            _ => return None,
        }
    }
    (parts.len() > depth).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the investigator writes (through `md_text`) and what the page reader takes
    /// for a fence agree: a line that opens no block in the one opens none in the other,
    /// so the headings and the notes marker after it are still found.
    #[test]
    fn a_code_span_of_three_backticks_is_no_fence_on_the_page() {
        for fix in [
            "set ```pool`size``` to 20",
            "```pool`size```",
            "```a`` b",
            "~~~ not closed",
            "```rust\nfn main() {}\n```",
            "```\nunclosed",
        ] {
            let page = format!(
                "# Title\n\n## Suggested fix\n\n{}\n\n## Related\n\n{NOTES_MARKER}\n",
                crate::sanitize::md_text(fix)
            );
            let lines: Vec<&str> = lines_outside_fences(&page)
                .into_iter()
                .map(|(_, l)| l)
                .collect();
            assert!(lines.contains(&"## Related"), "{fix:?}:\n{page}");
            assert!(lines.contains(&NOTES_MARKER), "{fix:?}:\n{page}");
        }
    }

    #[test]
    fn yaml_scalars_read_back_as_written() {
        for v in [
            "plain",
            "quotes \" and \\ backslashes",
            "tab\tnew\nline",
            "non-character \u{fffe} and emoji \u{1f525}",
            "",
        ] {
            assert_eq!(yaml_unquote(&yaml_str(v)).as_deref(), Some(v), "{v:?}");
        }
        // What a person must not receive raw is read back as its stand-in.
        assert_eq!(
            yaml_unquote(&yaml_str("esc \u{1b}[31m, C1 \u{85}\u{9b}, RLO \u{202e}")).as_deref(),
            Some("esc ␛[31m, C1 ⟨U+0085⟩⟨U+009B⟩, RLO ⟨U+202E⟩")
        );
        assert_eq!(yaml_unquote("open").as_deref(), Some("open"));
        assert_eq!(yaml_unquote("\"cut"), None);
        assert_eq!(yaml_unquote("\"bad \\q\""), None);
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slug("Failed to process job <*>: ZeroDivisionError"),
            "failed-to-process-job-zerodivisionerror"
        );
        assert_eq!(slug("!!!"), "incident");
        assert_eq!(
            slug("Zahlung für Kunde fehlgeschlagen"),
            "zahlung-fur-kunde-fehlgeschlagen"
        );
        assert_eq!(slug("Ошибка"), "oshibka");
        let long = slug(&"word ".repeat(40));
        assert!(long.len() <= 60 && !long.ends_with('-'));
    }

    #[test]
    fn notes_are_found_by_the_start_of_the_marker_line() {
        let page = |marker: &str| format!("---\nid: 1\n---\n# t\n\n{marker}\nmine\n");
        assert_eq!(notes_of(&page(NOTES_MARKER)).as_deref(), Some("mine\n"));
        assert_eq!(
            notes_of(&page(&format!("{NOTES_MARKER} typed here"))).as_deref(),
            Some("typed here\nmine\n")
        );
        assert_eq!(
            notes_of(&page(&format!("{NOTES_MARKER_START} (edited) -->\r"))).as_deref(),
            Some("mine\n")
        );
        assert_eq!(notes_of(&page("## My notes")), None);
        let fenced = format!("```\n{NOTES_MARKER}\n```\n");
        assert_eq!(notes_of(&page(&format!("{fenced}## My notes"))), None);
    }

    #[test]
    fn reads_front_matter_id() {
        assert_eq!(front_matter_id("---\nid: 12\ntitle: x\n---\n"), Some(12));
        assert_eq!(front_matter_id("no front matter"), None);
    }
}
