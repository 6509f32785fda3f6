//! An incident's page as the store knows it now: the incident, its diagnosis, metric
//! section, related incidents (with their current status) and log, redacted when the
//! config asks for it. Runs and the `incidents` commands both write pages through here.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::investigate::Diagnosis;
use crate::store::{IncidentRow, PageIncident, Store};

/// Writes an incident's page from what the store knows now (a filed incident only).
pub fn rewrite_page(config: &Config, store: &Store, id: i64) -> Result<(), String> {
    let inc = match store.incident(id) {
        Ok(Some(i)) => i,
        Ok(None) => return Err("no such incident".into()),
        Err(e) => return Err(e.to_string()),
    };
    let Some(path) = inc.file_path.clone() else {
        return Ok(());
    };
    let path = Path::new(&path);
    inside(config, path)?;
    super::write(path, &page_for(config, store, &inc, path))
}

/// A page is written in the incidents folder only: a path recorded elsewhere (the
/// folder was moved) is left alone until [`locate`] brings it in.
fn inside(config: &Config, path: &Path) -> Result<(), String> {
    if path.starts_with(&config.incidents_dir) {
        Ok(())
    } else {
        Err(format!(
            "its page {} is outside incidents_dir {}: not written there",
            path.display(),
            config.incidents_dir.display()
        ))
    }
}

/// Finds where the pages of these incidents are now, before they are rewritten, and
/// records it; returns what moved, said once (the store then knows the new place).
///
/// - A page recorded outside `incidents_dir` (the folder was moved and the config
///   changed) is taken in it: the page that carries its id there, else the same file
///   name in it (a free one when that name is another incident's). Nothing is written
///   outside the folder.
/// - A page missing from its recorded place (renamed or moved in the folder, by hand
///   or by a notes app) is looked for in the folder and its subfolders by its front
///   matter (`id`, `signature`, `host`), and followed: writing it again at the old
///   name would leave two pages of one incident to diverge. Not found, it was
///   deleted: it is written again at its name.
pub fn locate(config: &Config, store: &Store, ids: &[i64]) -> Vec<String> {
    let dir = &config.incidents_dir;
    let mut moved = Vec::new();
    // The folder's pages by id, read once, when a page is first missed.
    let mut heads: Option<HashMap<i64, Vec<(PathBuf, PageIncident)>>> = None;
    // Names given here to pages whose new place could not be recorded.
    let mut chosen: HashMap<String, i64> = HashMap::new();
    for &id in ids {
        let Ok(Some(old)) = store.page_path(id).map(|p| p.map(PathBuf::from)) else {
            continue;
        };
        let in_dir = old.starts_with(dir);
        if in_dir && std::fs::symlink_metadata(&old).is_ok() {
            continue;
        }
        let Ok(Some(mut inc)) = store.incident(id) else {
            continue;
        };
        let heads = heads.get_or_insert_with(|| page_heads(dir));
        let host = config.redact.redactor.clean(&inc.host);
        let found = heads
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|(p, h)| {
                *p != old && h.signature == inc.signature && (h.host == inc.host || h.host == host)
            })
            .max_by_key(|(p, h)| super::rebuild::PageRank::of(h, p))
            .map(|(p, _)| p.clone());
        let new = match found {
            Some(p) => p,
            None if in_dir => continue,
            None => {
                // Its own name in the folder, when that is free; else a new one.
                let name = old.file_name().map(|n| n.to_string_lossy().into_owned());
                let same = name
                    .filter(|n| {
                        chosen.get(n).is_none_or(|other| *other == id)
                            && matches!(store.page_name_taken(n, id), Ok(false))
                    })
                    .map(|n| dir.join(n))
                    .filter(|p| {
                        matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                    });
                match same {
                    Some(p) => p,
                    None => {
                        inc.file_path = None;
                        let Ok(p) = super::path_for(dir, &inc, store, &chosen) else {
                            continue;
                        };
                        if let Some(n) = p.file_name() {
                            chosen.insert(n.to_string_lossy().into_owned(), id);
                        }
                        p
                    }
                }
            }
        };
        let why = if in_dir {
            "found by its id after it was renamed or moved"
        } else {
            "the recorded one is outside incidents_dir; that file is left as it is"
        };
        match store.set_page_path(id, &new.to_string_lossy()) {
            Ok(()) => moved.push(format!(
                "incident #{id}: its page is now {} ({why}; was {})",
                new.display(),
                old.display()
            )),
            Err(e) => moved.push(format!(
                "incident #{id}: its page {} could not be recorded in place of {}: {e}",
                new.display(),
                old.display()
            )),
        }
    }
    moved
}

/// The pages of the incidents folder and its subfolders by front matter id (see
/// [`super::rebuild::page_files`] for which files), read as a rebuild reads them.
fn page_heads(dir: &Path) -> HashMap<i64, Vec<(PathBuf, PageIncident)>> {
    let mut out: HashMap<i64, Vec<(PathBuf, PageIncident)>> = HashMap::new();
    for path in super::rebuild::page_files(dir).unwrap_or_default() {
        let Ok(text) = crate::fsio::read_no_follow(&path) else {
            continue;
        };
        // No clock here: the times are only compared with each other.
        let never = DateTime::<Utc>::MAX_UTC;
        if let Some((page, _)) = super::rebuild::parse_page(&text, &path.to_string_lossy(), never) {
            out.entry(page.id).or_default().push((path, page));
        }
    }
    out
}

/// Writes the pages of these incidents from what the store knows now, flushed to disk
/// together; returns the ids whose page could not be written, with why.
pub fn rewrite_pages(config: &Config, store: &Store, ids: &[i64]) -> Vec<(i64, String)> {
    let mut failed = Vec::new();
    let mut files = Vec::new();
    let mut by_path = Vec::new();
    for &id in ids {
        match page_now(config, store, id) {
            Ok(Some((path, text))) => {
                by_path.push((path.clone(), id));
                files.push((path, text.into_bytes()));
            }
            Ok(None) => {}
            Err(e) => failed.push((id, e)),
        }
    }
    for (path, e) in crate::fsio::replace_all(files, crate::fsio::NewFile::DirOwner(0o640)) {
        if let Some((_, id)) = by_path.iter().find(|(p, _)| *p == path) {
            failed.push((*id, e));
        }
    }
    failed
}

/// A filed incident's page path and the text its file should hold now.
fn page_now(
    config: &Config,
    store: &Store,
    id: i64,
) -> Result<Option<(std::path::PathBuf, String)>, String> {
    let inc = match store.incident(id) {
        Ok(Some(i)) => i,
        Ok(None) => return Err("no such incident".into()),
        Err(e) => return Err(e.to_string()),
    };
    let Some(path) = inc.file_path.clone() else {
        return Ok(None);
    };
    let path = std::path::PathBuf::from(path);
    inside(config, &path)?;
    let text = super::page_text(&path, &page_for(config, store, &inc, &path))?;
    Ok(Some((path, text)))
}

/// The incidents whose pages show `inc` in their "Related" section (same signature,
/// regression of it, regressed as it): when `inc` changes status, their pages must
/// change too, or they show a status that is no longer true.
pub fn linked_to(store: &Store, inc: &IncidentRow) -> BTreeSet<i64> {
    store
        .related(inc)
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.signature == inc.signature
                || Some(r.id) == inc.regression_of
                || r.regression_of == Some(inc.id)
        })
        .map(|r| r.id)
        .collect()
}

/// Rewrites an incident's page and the pages that link to it; returns the pages that
/// moved ([`locate`]) and the ids whose page could not be written, with why.
pub fn rewrite_with_linked(
    config: &Config,
    store: &Store,
    id: i64,
) -> (Vec<String>, Vec<(i64, String)>) {
    let mut ids = BTreeSet::from([id]);
    if let Ok(Some(inc)) = store.incident(id) {
        ids.extend(linked_to(store, &inc));
    }
    let ids: Vec<i64> = ids.into_iter().collect();
    let moved = locate(config, store, &ids);
    let failed = ids
        .into_iter()
        .filter_map(|i| rewrite_page(config, store, i).err().map(|e| (i, e)))
        .collect();
    (moved, failed)
}

/// An incident's page with its diagnosis, metric section, related incidents and log.
pub fn page_for(config: &Config, store: &Store, inc: &IncidentRow, path: &Path) -> String {
    store.reading(|| render_page(config, store, inc, path))
}

fn render_page(config: &Config, store: &Store, inc: &IncidentRow, path: &Path) -> String {
    let d: Option<Diagnosis> = inc
        .diagnosis
        .clone()
        .and_then(|v| serde_json::from_value(v).ok());
    // The charts beside the page are redacted when the page is.
    let red = config
        .redact
        .incident_files
        .then_some(&config.redact.redactor);
    let metric = crate::metrics::incident_section(store, inc, path, red);
    let related: Vec<super::Related> = store
        .related(inc)
        .unwrap_or_default()
        .iter()
        .rev()
        .take(12)
        .map(|r| super::Related {
            id: r.id,
            title: r.title.clone(),
            status: r.status.clone(),
            file: r.file_path.as_deref().and_then(|p| {
                super::page_link(
                    &config.incidents_dir,
                    path.parent().unwrap_or(&config.incidents_dir),
                    Path::new(p),
                )
            }),
            relation: super::relation(inc, r),
        })
        .collect();
    let notes = store.notes(inc.id).unwrap_or_default();
    let extras = super::Extras {
        metric: metric.as_deref(),
        related: &related,
        notes: &notes,
    };
    // An incident rebuilt from its page keeps the page's text: its diagnosis is gone.
    let kept = inc
        .diagnosis
        .as_ref()
        .and_then(|d| d.get("page_body"))
        .and_then(|b| b.as_str());
    // The template's wildcards can hide a secret's shape from the redaction of the
    // whole page: it is redacted as a template first.
    let cleaned;
    let inc = if config.redact.incident_files {
        let mut c = inc.clone();
        let sample = c.samples.first().map_or("", String::as_str);
        c.template = config.redact.redactor.clean_template(&c.template, sample);
        cleaned = c;
        &cleaned
    } else {
        inc
    };
    let page = match kept {
        Some(body) => super::render_kept(inc, body, &extras),
        None => super::render_full(inc, d.as_ref(), &extras),
    };
    let actions = store.page_actions(inc.id).unwrap_or_default();
    if !config.redact.incident_files {
        if actions.is_empty() {
            return page;
        }
        return super::replace_front_matter(
            &page,
            &super::with_actions(&super::front_matter(inc), &actions),
        );
    }
    let red = &config.redact.redactor;
    let page = red.clean(&page);
    // The front matter is made again from values redacted one by one: a placeholder
    // put across a quoted YAML value's closing quote would leave it unparseable.
    let mut clean = inc.clone();
    for field in [
        &mut clean.title,
        &mut clean.signature,
        &mut clean.source,
        &mut clean.host,
        &mut clean.level,
    ] {
        *field = red.clean(field);
    }
    if let Some(e) = &mut clean.exception_type {
        *e = red.clean(e);
    }
    if let Some(by) = &mut clean.acked_by {
        *by = red.clean(by);
    }
    if let Some(by) = &mut clean.resolved_by {
        *by = red.clean(by);
    }
    // A parameter redacted changes the digest its Approve is bound to: after a
    // rebuild, that request can no longer be approved (refused, never run).
    let mut actions = actions;
    for a in &mut actions {
        if let Some(m) = a.params.as_object_mut() {
            for v in m.values_mut() {
                if let Some(text) = v.as_str() {
                    *v = serde_json::Value::String(red.clean(text));
                }
            }
        }
        if let Some(by) = &mut a.decided_by {
            *by = red.clean(by);
        }
    }
    super::replace_front_matter(
        &page,
        &super::with_actions(&super::front_matter(&clean), &actions),
    )
}
