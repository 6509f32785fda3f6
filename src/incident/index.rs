//! `INDEX.md` in the incidents folder: the incidents still open or acked and the
//! latest ones, newest first, with date, severity, status, title, occurrences and a
//! link to each page; and one file per month (`index/YYYY-MM.md`) listing all of that
//! month's. A run rewrites only what its changes touch, so its cost does not grow
//! with a year of history.

use std::path::Path;

use crate::store::{IncidentRow, Store};

/// How many of the latest incidents `INDEX.md` lists besides the open and acked ones.
pub const RECENT: usize = 200;
/// The folder (in the incidents folder) of the month files.
pub const MONTHS_DIR: &str = "index";

/// The comment that carries the highest incident id listed.
pub const HIGHEST_ID: &str = "<!-- highest id: ";

/// The highest id an index lists, read from its head when it says it there.
pub fn highest_id(head: &str) -> Option<i64> {
    let rest = &head[head.find(HIGHEST_ID)? + HIGHEST_ID.len()..];
    rest[..rest.find(" -->")?].parse().ok()
}

/// Renders the index: `incidents` (filed or not; only filed ones are listed), then
/// links to the month files of `months`.
pub fn render(dir: &Path, incidents: &[IncidentRow], months: &[String]) -> String {
    let mut s = String::from("# Incidents\n\nNewest first: those open or acked, and the latest ones. Written by logwarden; edits here are overwritten.\n");
    // The highest id, near the top: a run checks it against the store (a store that
    // lost incidents is rebuilt from the pages) reading only the head of the file.
    let top = incidents
        .iter()
        .filter(|i| i.stage == "filed")
        .map(|i| i.id)
        .max()
        .unwrap_or(0);
    s.push_str(&format!("{HIGHEST_ID}{top} -->\n\n"));
    table(&mut s, incidents, dir, dir);
    if !months.is_empty() {
        s.push_str("\n## Every incident, by month\n\n");
        for m in months {
            s.push_str(&format!("- [{m}]({MONTHS_DIR}/{m}.md)\n"));
        }
    }
    s
}

/// Renders the file of one month's incidents.
pub fn render_month(dir: &Path, month: &str, incidents: &[IncidentRow]) -> String {
    let mut s = format!(
        "# Incidents of {month}\n\nNewest first. Written by logwarden; edits here are overwritten. [All months](../INDEX.md)\n\n"
    );
    table(&mut s, incidents, dir, &dir.join(MONTHS_DIR));
    s
}

/// The table of filed incidents, newest first, linking pages from the folder `from`
/// in the incidents folder `dir`.
fn table(s: &mut String, incidents: &[IncidentRow], dir: &Path, from: &Path) {
    s.push_str("| date | severity | status | title | occurrences |\n|---|---|---|---|---:|\n");
    let mut sorted: Vec<&IncidentRow> = incidents.iter().filter(|i| i.stage == "filed").collect();
    sorted.sort_by(|a, b| b.first_seen.cmp(&a.first_seen).then(b.id.cmp(&a.id)));
    for i in sorted {
        s.push_str(&row(i, dir, from));
    }
}

/// One incident's line of a table, newline included.
fn row(i: &IncidentRow, dir: &Path, from: &Path) -> String {
    // one table cell of text: no pipe, line break, HTML, image or link of its own
    let title = crate::sanitize::md_link_text(&i.title);
    let link = match i
        .file_path
        .as_deref()
        .and_then(|p| super::page_link(dir, from, Path::new(p)))
    {
        Some(target) => format!("[#{} {title}]({target})", i.id),
        None => format!("#{} {title}", i.id),
    };
    let regression = if i.regression_of.is_some() {
        " (regression)"
    } else {
        ""
    };
    format!(
        "| {} | {} | {} | {link}{regression} | {} |\n",
        i.first_seen.format("%Y-%m-%d %H:%M"),
        i.severity,
        i.status,
        i.occurrences
    )
}

/// Where an incident's line is in an index file as written: the first byte of the
/// line and the one after its end. `Err` when it is listed more than once (the file
/// is not what we wrote).
fn line_of(old: &str, id: i64) -> Option<Result<(usize, usize), ()>> {
    [format!(" | [#{id} "), format!(" | #{id} ")]
        .iter()
        .find_map(|key| {
            let k = key.as_bytes();
            let first = memchr::memmem::find(old.as_bytes(), k)?;
            if memchr::memmem::find(&old.as_bytes()[first + 1..], k).is_some() {
                return Some(Err(()));
            }
            let start = old[..first].rfind('\n').map_or(0, |n| n + 1);
            let end = old[first..].find('\n').map_or(old.len(), |n| first + n + 1);
            Some(Ok((start, end)))
        })
}

/// `old` (an index file as written) with the lines of `rows` rendered again, when each
/// filed one is listed there exactly once, or, when not listed yet, `after` says which
/// incident's line it goes before (`Some(None)`: at the end); `None` when the file
/// must be rendered whole. A listed row keeps its place: the order is by first
/// occurrence and id, which never change. This is what keeps a run that files or
/// updates a few incidents from loading and rendering a month of them.
fn patched(
    old: &str,
    rows: &[&IncidentRow],
    (dir, from): (&Path, &Path),
    after: &dyn Fn(&IncidentRow) -> Option<Option<i64>>,
) -> Option<String> {
    type Order = std::cmp::Reverse<(chrono::DateTime<chrono::Utc>, i64)>;
    let mut lines: Vec<(usize, usize, Order, String)> = Vec::new();
    for i in rows {
        let (start, end) = match line_of(old, i.id) {
            Some(Err(())) => return None,
            Some(Ok(_)) if i.stage != "filed" => return None,
            Some(Ok(at)) => at,
            None if i.stage != "filed" => continue, // listed neither way
            None => {
                // The line it goes before may be another one new in this change:
                // then the place is that one's, and so on down to a line listed.
                // (`after` goes strictly down the table's order, so this ends.)
                let mut next = after(i)?;
                while let Some(new) = next.and_then(|n| {
                    rows.iter()
                        .find(|r| r.id == n && r.stage == "filed" && line_of(old, n).is_none())
                }) {
                    next = after(new)?;
                }
                match next {
                    Some(next) => match line_of(old, next)? {
                        Ok((start, _)) => (start, start),
                        Err(()) => return None,
                    },
                    None => (old.len(), old.len()),
                }
            }
        };
        let order = std::cmp::Reverse((i.first_seen, i.id));
        lines.push((
            start,
            end,
            order,
            crate::sanitize::text(&row(i, dir, from)).into_owned(),
        ));
    }
    // A new line before a changed one at the same place goes first; new lines at one
    // place go newest first, as the table is ordered.
    lines.sort_by_key(|l| (l.0, l.1, l.2));
    let mut out = String::with_capacity(old.len() + 64);
    let mut at = 0;
    for (start, end, _, line) in lines {
        if start < at {
            return None; // two ids on one line: not a file of ours
        }
        out.push_str(&old[at..start]);
        out.push_str(&line);
        at = end;
    }
    out.push_str(&old[at..]);
    Some(out)
}

/// How many incidents an index file lists: its table's rows.
fn listed(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| date |"))
        .count()
}

/// The kv key of the months that have a month file.
const MONTHS_KEY: &str = "index.months";

/// Brings `INDEX.md` and the month files up to date after the incidents `changed`
/// were opened or changed: `INDEX.md`, the files of the months those incidents belong
/// to, and any month file missing (the first run after an upgrade writes them all,
/// once). When the changed incidents are all listed already and stay so, only their
/// lines are rendered again; else the file is rendered whole. Files whose text is
/// unchanged are left alone.
pub fn update(dir: &Path, store: &Store, changed: &[i64]) -> Result<(), String> {
    let db = |e: crate::store::StoreError| format!("state database: {e}");
    let known: Option<Vec<String>> = store.kv_get(MONTHS_KEY).map_err(db)?.map(|v| {
        v.split(',')
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect()
    });
    let mut months = match known {
        Some(m) => m,
        None => store.incident_months().map_err(db)?,
    };
    let touched = store.months_of(changed).map_err(db)?;
    let new_month = touched.iter().any(|m| !months.contains(m));
    for m in &touched {
        if !months.contains(m) {
            months.push(m.clone());
        }
    }
    months.sort_unstable_by(|a, b| b.cmp(a));
    let mut ids = changed.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows = store.incidents_light(&ids).map_err(db)?;
    let index = dir.join("INDEX.md");
    // The rows INDEX.md lists stay the same while every changed incident is listed and
    // still open or acked (a resolved one may leave it, a new one enters it).
    let stay = !ids.is_empty()
        && !new_month
        && rows.len() == ids.len()
        && rows
            .iter()
            .all(|i| i.stage == "filed" && matches!(i.status.as_str(), "open" | "acked"));
    let refs: Vec<&IncidentRow> = rows.iter().collect();
    // A patched file must list as many incidents as the store says it should: a file
    // that went stale (edited, or written before the store was rebuilt or changed
    // behind logwarden's back) is rendered whole, and so heals.
    let patch = |path: &Path,
                 rows: &[&IncidentRow],
                 from: &Path,
                 after: &dyn Fn(&IncidentRow) -> Option<Option<i64>>,
                 count: &dyn Fn() -> Option<usize>| {
        let old = crate::fsio::read_no_follow(path).ok()?;
        let text = patched(&old, rows, (dir, from), after)?;
        (Some(listed(&text)) == count()).then_some(text)
    };
    // INDEX.md also lists the latest incidents: a new one changes which, so it is
    // rendered whole then.
    let head_count = || store.count_index_head(RECENT).ok();
    match stay
        .then(|| patch(&index, &refs, dir, &|_| None, &head_count))
        .flatten()
    {
        Some(text) => write_if_changed(&index, &text)?,
        None => {
            let head = store.incidents_for_index_head(RECENT).map_err(db)?;
            write_if_changed(&index, &render(dir, &head, &months))?;
        }
    }
    let folder = dir.join(MONTHS_DIR);
    for m in &months {
        let path = folder.join(format!("{m}.md"));
        if touched.contains(m) || !path.exists() {
            crate::fsio::own_subdir(dir, MONTHS_DIR)?;
            let of_month: Vec<&IncidentRow> = rows
                .iter()
                .filter(|i| i.first_seen.format("%Y-%m").to_string() == *m)
                .collect();
            let after = |i: &IncidentRow| store.filed_after_in_index(i.first_seen, i.id, m).ok();
            let count = || store.count_in_month(m).ok();
            let text = match (touched.contains(m) && rows.len() == ids.len())
                .then(|| patch(&path, &of_month, &folder, &after, &count))
                .flatten()
            {
                Some(text) => text,
                None => render_month(dir, m, &store.incidents_in_month(m).map_err(db)?),
            };
            write_if_changed(&path, &text)?;
        }
    }
    store.kv_set(MONTHS_KEY, &months.join(",")).map_err(db)
}

/// Writes `text` (made safe for a terminal) to `path` unless it already holds it;
/// a new file is 0640, owned like its folder.
fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    let text = crate::sanitize::text(text).into_owned();
    if crate::fsio::read_no_follow(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    crate::fsio::replace(path, text.as_bytes(), crate::fsio::NewFile::DirOwner(0o640))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn filed(store: &mut Store, at: chrono::DateTime<chrono::Utc>, title: &str) -> i64 {
        let b = store.batch().unwrap();
        let run = b
            .insert_run(&crate::store::RunRow {
                started_at: crate::store::ts(at),
                ..Default::default()
            })
            .unwrap();
        let id = b
            .insert_incident(
                &crate::store::NewIncident {
                    signature: format!("sig-{title}-{at}"),
                    kind: "error".into(),
                    severity: "warning".into(),
                    title: title.into(),
                    source: "app".into(),
                    host: "h".into(),
                    level: "ERROR".into(),
                    level_no: Some(40),
                    template: title.into(),
                    exception_type: None,
                    first_seen: at,
                    last_seen: at,
                    occurrences: 1,
                    samples: vec![],
                },
                at,
                run,
            )
            .unwrap();
        let note = crate::store::Notification {
            title: title.into(),
            body: String::new(),
            priority: 3,
            tags: String::new(),
        };
        let page = format!("/x/{}-incident-{id}.md", at.format("%Y-%m-%d"));
        b.file_incident(id, &page, &note, at).unwrap();
        b.commit().unwrap();
        id
    }

    /// A store and an incidents folder in a temporary directory (kept alive by the caller).
    fn folder() -> (tempfile::TempDir, Store, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let incidents = dir.path().join("incidents");
        std::fs::create_dir(&incidents).unwrap();
        (dir, store, incidents)
    }

    /// The 3rd of a month, 08:00 UTC.
    fn at(year: i32, month: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .with_ymd_and_hms(year, month, 3, 8, 0, 0)
            .unwrap()
    }

    #[test]
    fn index_lists_open_and_recent_and_months_list_all() {
        let (dir, mut store, incidents) = folder();
        let _keep = &dir;
        let (oct, nov) = (at(2026, 10), at(2026, 11));
        // An October incident still open, then more resolved ones than the index lists.
        let old_open = filed(&mut store, oct, "old but open");
        let old_resolved = filed(&mut store, oct, "old and resolved");
        store.resolve_incident(old_resolved, "t", oct).unwrap();
        let mut last = 0;
        for n in 0..RECENT + 5 {
            last = filed(&mut store, nov + chrono::Duration::minutes(n as i64), "nov");
            store.resolve_incident(last, "t", nov).unwrap();
        }
        update(&incidents, &store, &[]).unwrap();
        let index = std::fs::read_to_string(incidents.join("INDEX.md")).unwrap();
        assert!(
            index.contains(&format!("[#{old_open} old but open]")),
            "{index}"
        );
        assert!(!index.contains("old and resolved"), "{index}");
        assert!(index.contains(&format!("#{last} ")));
        assert_eq!(highest_id(&index), Some(last));
        assert!(index.contains("- [2026-11](index/2026-11.md)\n- [2026-10](index/2026-10.md)"));
        let october = std::fs::read_to_string(incidents.join("index/2026-10.md")).unwrap();
        assert!(
            october.contains(&format!(
                "[#{old_resolved} old and resolved](../2026-10-03-incident-{old_resolved}.md)"
            )),
            "{october}"
        );
        assert!(october.contains("old but open"));
        let november = std::fs::read_to_string(incidents.join("index/2026-11.md")).unwrap();
        assert_eq!(
            november.lines().filter(|l| l.contains(" nov](")).count(),
            RECENT + 5
        );

        // A change to an October incident rewrites October's file, not November's.
        let nov_before = std::fs::metadata(incidents.join("index/2026-11.md"))
            .unwrap()
            .modified()
            .unwrap();
        store.resolve_incident(old_open, "t", nov).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        update(&incidents, &store, &[old_open]).unwrap();
        let october = std::fs::read_to_string(incidents.join("index/2026-10.md")).unwrap();
        assert!(
            october
                .lines()
                .any(|l| l.contains("old but open") && l.contains("| resolved |")),
            "{october}"
        );
        let index = std::fs::read_to_string(incidents.join("INDEX.md")).unwrap();
        assert!(
            !index.contains("old but open"),
            "resolved and old: only in its month\n{index}"
        );
        let nov_after = std::fs::metadata(incidents.join("index/2026-11.md"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(nov_before, nov_after);
    }

    #[test]
    fn changes_to_listed_incidents_rewrite_their_lines_as_a_whole_render_would() {
        let (dir, mut store, incidents) = folder();
        let _keep = &dir;
        let (oct, nov) = (at(2026, 10), at(2026, 11));
        let mut ids = Vec::new();
        for n in 0..24 {
            let month = if n % 3 == 0 { oct } else { nov };
            let title = match n {
                5 => "a | pipe and \u{1b}[31m an escape".to_string(),
                7 => "[#3 looks like another row](x)".to_string(),
                _ => format!("failure {n}"),
            };
            ids.push(filed(
                &mut store,
                month + chrono::Duration::minutes(n),
                &title,
            ));
        }
        for id in ids.iter().step_by(4) {
            store.resolve_incident(*id, "t", nov).unwrap();
        }
        update(&incidents, &store, &[]).unwrap();
        let files = |dir: &Path| -> Vec<String> {
            ["INDEX.md", "index/2026-10.md", "index/2026-11.md"]
                .iter()
                .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
                .collect()
        };
        // What rendering everything from scratch gives.
        let whole = |store: &Store| {
            let fresh = tempfile::tempdir().unwrap();
            update(fresh.path(), store, &[]).unwrap();
            files(fresh.path())
        };
        let more = |store: &mut Store, some: &[i64]| {
            let b = store.batch().unwrap();
            for id in some {
                b.add_occurrences(*id, 7, nov, nov).unwrap();
            }
            b.commit().unwrap();
        };
        // Occurrences of open incidents in both months, one of them with the odd titles.
        let some = [ids[1], ids[3], ids[5], ids[7]];
        more(&mut store, &some);
        // A line nothing changed, edited by hand: a file rendered whole would lose it,
        // only the changed lines were rendered again.
        let nov_file = incidents.join("index/2026-11.md");
        let text = std::fs::read_to_string(&nov_file).unwrap();
        let edited = text.replace("failure 2]", "failure 2 (edited)]");
        assert_ne!(edited, text);
        std::fs::write(&nov_file, &edited).unwrap();
        update(&incidents, &store, &some).unwrap();
        let now = std::fs::read_to_string(&nov_file).unwrap();
        assert!(now.contains("failure 2 (edited)]"), "{now}");
        assert_eq!(
            now.replace("failure 2 (edited)]", "failure 2]"),
            whole(&store)[2]
        );
        assert_eq!(files(&incidents)[..2], whole(&store)[..2]);
        assert!(files(&incidents)[0].contains("| 8 |"));
        std::fs::remove_file(&nov_file).unwrap(); // written whole again, as a missing file
        update(&incidents, &store, &[]).unwrap();
        assert_eq!(files(&incidents), whole(&store));

        // Acked, resolved, listed twice in the changes, and a new incident: each gives
        // what a whole render gives.
        store.ack_incident(ids[2], "me", nov).unwrap();
        more(&mut store, &[ids[2]]);
        update(&incidents, &store, &[ids[2], ids[2]]).unwrap();
        assert_eq!(files(&incidents), whole(&store));
        store.resolve_incident(ids[9], "t", nov).unwrap();
        update(&incidents, &store, &[ids[9], ids[10]]).unwrap();
        assert_eq!(files(&incidents), whole(&store));
        let new = filed(&mut store, nov + chrono::Duration::hours(5), "brand new");
        update(&incidents, &store, &[new, ids[1]]).unwrap();
        assert_eq!(files(&incidents), whole(&store));
        assert!(files(&incidents)[0].contains("brand new"));

        // New incidents filed late: between two of the month's, before all of them
        // (the end of the table), at the same second as another, two at once.
        for (minutes, title) in [(90, "in between"), (-600, "oldest"), (1, "same second")] {
            let new = filed(
                &mut store,
                nov + chrono::Duration::seconds(minutes * 60),
                title,
            );
            update(&incidents, &store, &[new]).unwrap();
            assert_eq!(files(&incidents), whole(&store), "{title}");
        }
        // A month file gone stale (a line too many, as after the store changed behind
        // logwarden's back) is rendered whole at the next change.
        let text = std::fs::read_to_string(&nov_file).unwrap();
        let stale = text.replacen(
            "| 2026-11-03",
            "| 2026-11-02 07:00 | warning | open | [#999 gone](x.md) | 1 |\n| 2026-11-03",
            1,
        );
        assert_ne!(stale, text);
        std::fs::write(&nov_file, &stale).unwrap();
        more(&mut store, &[ids[1]]);
        update(&incidents, &store, &[ids[1]]).unwrap();
        assert_eq!(files(&incidents), whole(&store));
        let a = filed(
            &mut store,
            nov + chrono::Duration::minutes(7),
            "first of two",
        );
        let b = filed(
            &mut store,
            nov + chrono::Duration::minutes(7),
            "second of two",
        );
        update(&incidents, &store, &[a, b]).unwrap();
        assert_eq!(files(&incidents), whole(&store));
        let month = std::fs::read_to_string(&nov_file).unwrap();
        assert!(month.find("second of two") < month.find("first of two"));
        assert!(month.trim_end().ends_with("| 1 |"), "{month}");

        // Several filed in one run, each one's place next to another new one (same
        // second, consecutive minutes, and one at the end): their lines are patched
        // in, the month is not rendered whole (a hand edit elsewhere survives).
        let text = std::fs::read_to_string(&nov_file).unwrap();
        std::fs::write(&nov_file, text.replace("failure 4]", "failure 4 (edited)]")).unwrap();
        let late = nov + chrono::Duration::hours(9);
        let batch = [
            filed(&mut store, late, "batch a"),
            filed(&mut store, late, "batch b"),
            filed(&mut store, late + chrono::Duration::minutes(1), "batch c"),
            filed(&mut store, late - chrono::Duration::minutes(1), "batch d"),
            filed(
                &mut store,
                nov - chrono::Duration::hours(30),
                "batch oldest",
            ),
            filed(
                &mut store,
                nov - chrono::Duration::hours(31),
                "batch older still",
            ),
        ];
        update(&incidents, &store, &batch).unwrap();
        let now = std::fs::read_to_string(&nov_file).unwrap();
        assert!(
            now.contains("failure 4 (edited)]"),
            "rendered whole:\n{now}"
        );
        assert_eq!(
            now.replace("failure 4 (edited)]", "failure 4]"),
            whole(&store)[2]
        );
    }
}
