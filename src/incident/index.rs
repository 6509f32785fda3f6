//! `INDEX.md` in the incidents folder: every incident, newest first, with its date,
//! severity, status, title, occurrences and a link to its page. Regenerated each run.

use std::path::Path;

use crate::store::IncidentRow;

/// The comment that carries the highest incident id listed.
pub const HIGHEST_ID: &str = "<!-- highest id: ";

/// The highest id an index lists, read from its head when it says it there.
pub fn highest_id(head: &str) -> Option<i64> {
    let rest = &head[head.find(HIGHEST_ID)? + HIGHEST_ID.len()..];
    rest[..rest.find(" -->")?].parse().ok()
}

/// Renders the index.
pub fn render(incidents: &[IncidentRow]) -> String {
    let mut s = String::from("# Incidents\n\nNewest first. Written by logwarden on every run; edits here are overwritten.\n");
    // The highest id, near the top: a run checks it against the store (a store that
    // lost incidents is rebuilt from the pages) reading only the head of the file.
    let top = incidents
        .iter()
        .filter(|i| i.stage == "filed")
        .map(|i| i.id)
        .max()
        .unwrap_or(0);
    s.push_str(&format!("{HIGHEST_ID}{top} -->\n\n"));
    s.push_str("| date | severity | status | title | occurrences |\n|---|---|---|---|---:|\n");
    let mut sorted: Vec<&IncidentRow> = incidents.iter().filter(|i| i.stage == "filed").collect();
    sorted.sort_by(|a, b| b.first_seen.cmp(&a.first_seen).then(b.id.cmp(&a.id)));
    for i in sorted {
        // one table cell of text: no pipe, line break, HTML, image or link of its own
        let title = crate::sanitize::md_inline(&i.title);
        let link = match i
            .file_path
            .as_deref()
            .and_then(|p| Path::new(p).file_name())
        {
            Some(f) => format!(
                "[#{} {title}]({})",
                i.id,
                crate::notify::ntfy::url_segment(&f.to_string_lossy())
            ),
            None => format!("#{} {title}", i.id),
        };
        let regression = if i.regression_of.is_some() {
            " (regression)"
        } else {
            ""
        };
        s.push_str(&format!(
            "| {} | {} | {} | {link}{regression} | {} |\n",
            i.first_seen.format("%Y-%m-%d %H:%M"),
            i.severity,
            i.status,
            i.occurrences
        ));
    }
    s
}

/// Writes `INDEX.md` in the incidents folder (a new one 0640, owned like the folder).
/// Left alone when nothing changed (a quiet run writes nothing).
pub fn write(dir: &Path, incidents: &[IncidentRow]) -> Result<(), String> {
    let path = dir.join("INDEX.md");
    let text = render(incidents);
    let text = crate::sanitize::text(&text).into_owned();
    if crate::safefs::read_no_follow(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    crate::fsio::replace(
        &path,
        text.as_bytes(),
        crate::fsio::NewFile::DirOwner(0o640),
    )
}
