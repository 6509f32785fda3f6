//! Following log files across runs. Each file is known by its identity (device +
//! inode, [`FileId`]) with a hash of its first line, so renames, truncation, copies and
//! replacement are told apart:
//! - rename + create (loguru's `app.<date>.log`, logrotate's `app.log.1`,
//!   `app.log-20261122`): the rest of the old file, then files rotated after it, then
//!   the new file;
//! - rename then compression (loguru `compression="gz"` removes the plain file at once):
//!   the rest is read from the `.gz` whose first line is the old file's;
//! - copytruncate and truncation: the copy's tail (when a copy is found), then the file
//!   from its start;
//! - delete and recreate, or another file at the same path: the new file from its start.
//!
//! Only whole lines are consumed; a half-written last line waits for the next run, and
//! so does a last record that may still be being written (see [`Follower::consume`]).
//! A `.gz` still being written is never read. The path may be a glob: new files are
//! picked up, vanished ones forgotten after a grace period.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::json::JsonParser;
use super::linereader::{for_each_line_capped, next_line, Line, LineRef, LineSink};
use super::loguru::{HeaderParser, RecordAssembler};
use super::{prescan, Checkpoint, Event, RecordParser};
use crate::config::{FileSource, ParserSpec, SourceConfig, StartFrom};

/// How many bytes at the start of a file identify its content (the first line at
/// least, then up to this much of what was read).
const HEAD_BYTES: usize = 4096;
/// How many bytes just before a checkpoint's offset are remembered (see
/// [`FileState::tail`]).
const TAIL_BYTES: u64 = 4096;
/// The checkpoint key that marks a source as started (so later files are new files).
const INIT_KEY: &str = "init";
/// Without `settle`, how long a file must be quiet before a last record whose traceback
/// lacks its exception line counts as complete anyway.
const DEFAULT_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Which file, independent of its name: what survives a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    fn key(&self) -> String {
        format!("file:{}:{}", self.dev, self.ino)
    }
}

/// The checkpoint of one followed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    pub id: FileId,
    /// Where the file was last seen.
    pub path: String,
    /// Where `path` led then, when that is elsewhere (a symlink): a path moved to
    /// another file (a deploy switching releases) leaves the one it led to in place,
    /// and its rest is read from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<String>,
    /// Bytes consumed: at a line boundary, or inside a physical line that holds several
    /// records (a record held back, see [`Follower::consume`], is read again from its own
    /// start; a long line may be read in pieces).
    pub offset: u64,
    /// Lines consumed.
    pub line_no: u64,
    /// Length and hash of the first bytes (the first line, widened up to 4 KiB of
    /// whole lines read), once there is one.
    pub head: Option<(u64, u64)>,
    /// Length and hash of the bytes just before `offset` (up to [`TAIL_BYTES`] of what
    /// was read). A file truncated and written again by its app (`open(path, "w")`)
    /// keeps its inode, may start with the same bytes and may have grown past `offset`
    /// by the next run: only the bytes behind the cursor tell that what was read is no
    /// longer there. Checked once per run, whatever was written since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<(u64, u64)>,
    /// When the file was found gone (it is forgotten after the grace period).
    #[serde(default)]
    pub missing_since: Option<DateTime<Utc>>,
    /// The file's length when its last record was held back (see [`Follower::consume`]):
    /// the same length next run means nothing was added, and the record is complete.
    #[serde(default)]
    pub held_len: Option<u64>,
    /// Where runs saw the file end without a newline (a line still being written, or
    /// torn by a writer that died mid-line), ahead of `offset`. When that line is read
    /// whole and a record starts exactly at one of these points, the line is cut there:
    /// a restarted writer appends its next record to the torn line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub torn: Vec<u64>,
}

/// Where `path` really is, when that is another path (it goes through a symlink).
fn real_of(path: &Path) -> Option<String> {
    std::fs::canonicalize(path)
        .ok()
        .filter(|r| r != path)
        .map(|r| r.display().to_string())
}

impl FileState {
    fn new(id: FileId, path: &Path) -> FileState {
        FileState {
            id,
            path: path.display().to_string(),
            real: real_of(path),
            offset: 0,
            line_no: 0,
            head: None,
            tail: None,
            missing_since: None,
            held_len: None,
            torn: Vec::new(),
        }
    }
}

/// What reading a source produced, besides the events.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub lines: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
    /// Problems with single files; the rest of the source was read.
    pub errors: Vec<String>,
    pub checkpoints: Vec<Checkpoint>,
    /// Checkpoint keys to delete (files forgotten).
    pub forget: Vec<String>,
}

/// Errors that stop one source for this run (the others go on).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{0}")]
    Other(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |err| SourceError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Reads what is new in a file source since its checkpoints, calling `sink` for each
/// record at or above the source's `min_level` (or every record when `all_levels`).
pub fn read(
    cfg: &SourceConfig,
    fs: &FileSource,
    prev: &HashMap<String, Checkpoint>,
    all_levels: bool,
    now: DateTime<Utc>,
    lost_since: Option<DateTime<Utc>>,
    sink: &mut dyn FnMut(Event),
) -> Result<ReadReport, SourceError> {
    let mut report = ReadReport::default();
    let mut states: Vec<FileState> = Vec::new();
    for (key, cp) in prev {
        if key.starts_with("file:") {
            match serde_json::from_str(&cp.state) {
                Ok(s) => states.push(s),
                Err(e) => report.warnings.push(format!(
                    "{}: checkpoint {key} unreadable ({e}); dropped",
                    cfg.name
                )),
            }
        }
    }
    let initialized = prev.contains_key(INIT_KEY) || !states.is_empty();
    let mut f = Follower {
        cfg,
        fs,
        min_level: if all_levels { 0 } else { cfg.min_level.no },
        report: &mut report,
        sink,
        prev_states: states.clone(),
        now,
        own: super::resolve_own(&fs.own),
    };
    let current = f.current_files()?;
    let current_ids: HashSet<FileId> = current.iter().map(|(_, m)| FileId::of(m)).collect();
    let mut out: Vec<FileState> = Vec::new();
    let mut consumed_copies: HashSet<FileId> = HashSet::new();

    // Files that were followed and are gone from the path: read what is left of them.
    let mut by_id: HashMap<FileId, FileState> = HashMap::new();
    for st in states {
        if current_ids.contains(&st.id) {
            by_id.insert(st.id, st);
            continue;
        }
        if let Some(since) = st.missing_since {
            let gone_for = now
                .signed_duration_since(since)
                .to_std()
                .unwrap_or_default();
            if gone_for >= fs.forget_after {
                f.report.forget.push(st.id.key());
            } else {
                out.push(st);
            }
            continue;
        }
        match f.departed(st.clone(), &current_ids) {
            Ok((mut st, true)) => {
                st.missing_since = Some(now);
                out.push(st);
            }
            // Its rest could not be read yet (a .gz still being written): next run.
            Ok((st, false)) => out.push(st),
            Err(e) => {
                f.report.errors.push(e.to_string());
                out.push(st);
            }
        }
    }

    // The checkpoints went with the state: files rotated away after the last record
    // the pages have are read whole, oldest first, before the files at the path (what
    // the pages already count is skipped by the caller).
    if let (Some(since), false) = (lost_since, initialized) {
        let rotated = f.rotated_since_loss(&current, &current_ids, since);
        f.read_rotated(rotated);
    }

    // Files at the path now: known ones continue, new ones start.
    for (path, meta) in &current {
        let id = FileId::of(meta);
        let result = match by_id.remove(&id) {
            // A checkpoint of a file that vanished earlier whose inode now names a file
            // with other first bytes (inode reuse): the new file is read from its start.
            // The same first bytes: the file itself is back (a symlink moved back to
            // it), read on from where it was.
            Some(st)
                if st.missing_since.is_some()
                    && !st.head.is_some_and(|(len, hash)| {
                        head_of(path, len).ok().flatten() == Some((len, hash))
                    }) =>
            {
                f.read_from(path, meta, FileState::new(id, path), false)
            }
            Some(st) => f.same_file(path, meta, st, &current_ids),
            None => {
                if consumed_copies.contains(&id) {
                    continue;
                }
                match f.copy_of_known(path) {
                    Some(known) => {
                        consumed_copies.insert(id);
                        let start = FileState {
                            id,
                            path: path.display().to_string(),
                            real: real_of(path),
                            missing_since: None,
                            ..known
                        };
                        f.read_from(path, meta, start, false)
                    }
                    None if !initialized && cfg.from == StartFrom::End => skip_to_end(path, meta),
                    None => f.read_from(path, meta, FileState::new(id, path), false),
                }
            }
        };
        match result {
            Ok(st) => out.push(st),
            Err(e) => {
                // One unreadable file: say so, keep its old checkpoint, read the others.
                f.report.errors.push(e.to_string());
                if let Some(old) = f.prev_states.iter().find(|s| s.id == id) {
                    out.push(old.clone());
                }
            }
        }
    }
    if current.is_empty() && !is_glob(&fs.path) && !initialized {
        f.report.warnings.push(format!(
            "{}: does not exist yet; it will be read from its start when it appears",
            fs.path.display()
        ));
    }
    let source = cfg.name.clone();
    report.checkpoints = out
        .into_iter()
        .map(|st| Checkpoint {
            source: source.clone(),
            key: st.id.key(),
            state: serde_json::to_string(&st).expect("state serialises"),
        })
        .collect();
    report.checkpoints.push(Checkpoint {
        source,
        key: INIT_KEY.into(),
        state: "{\"initialized\":true}".into(),
    });
    Ok(report)
}

fn is_glob(p: &Path) -> bool {
    p.to_string_lossy().contains(['*', '?', '['])
}

struct Follower<'a> {
    cfg: &'a SourceConfig,
    fs: &'a FileSource,
    min_level: u32,
    report: &'a mut ReadReport,
    sink: &'a mut dyn FnMut(Event),
    /// The checkpoints as they were at the start of the run.
    prev_states: Vec<FileState>,
    now: DateTime<Utc>,
    /// `fs.own`, resolved.
    own: Vec<PathBuf>,
}

impl Follower<'_> {
    /// The regular files the configured path or glob names now, oldest first.
    fn current_files(&mut self) -> Result<Vec<(PathBuf, Metadata)>, SourceError> {
        let path = &self.fs.path;
        let mut files = Vec::new();
        if is_glob(path) {
            let pattern = path.to_string_lossy();
            let paths = glob::glob(&pattern)
                .map_err(|e| SourceError::Other(format!("{pattern}: not a valid glob: {e}")))?;
            for p in paths {
                match p {
                    Ok(p) => match std::fs::metadata(&p) {
                        Ok(m) if m.is_file() => files.push((p, m)),
                        Ok(_) => {}
                        Err(e) => self.report.errors.push(format!("{}: {e}", p.display())),
                    },
                    Err(e) => self.report.errors.push(format!("{pattern}: {e}")),
                }
            }
        } else {
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() => files.push((path.clone(), m)),
                Ok(_) => {
                    return Err(SourceError::Other(format!(
                        "{}: not a regular file",
                        path.display()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(path)(e)),
            }
        }
        let mut mine = Vec::new();
        files.retain(|(p, _)| match super::leads_to_own(p, &self.own) {
            Some(real) => {
                mine.push(format!(
                    "{}: leads to {}, which is logwarden's own (its state, pages, config or rules): not read",
                    p.display(),
                    real.display()
                ));
                false
            }
            None => true,
        });
        self.report.errors.extend(mine);
        files.sort_by_key(|(p, m)| (m.mtime(), m.mtime_nsec(), p.clone()));
        Ok(files)
    }

    /// A followed file that is no longer at the path: find it (renamed, or compressed)
    /// and read the rest, then any rotations made after it.
    /// Also says whether the rest was read (false: retry next run).
    fn departed(
        &mut self,
        st: FileState,
        current: &HashSet<FileId>,
    ) -> Result<(FileState, bool), SourceError> {
        let last = Path::new(&st.path).to_path_buf();
        if let Some(real) = st.real.as_deref().map(PathBuf::from) {
            // The path led elsewhere: the file it led to may still be there, where it
            // was (the symlink moved to another file), or rotated beside it.
            let there = std::fs::metadata(&real)
                .ok()
                .filter(|m| m.is_file() && FileId::of(m) == st.id)
                .map(|m| (real.clone(), m))
                .or_else(|| {
                    let p = find_by_id(&parent(&real), st.id)?;
                    Some((p.clone(), std::fs::metadata(&p).ok()?))
                });
            if let Some((at, meta)) = there {
                let head = st.head;
                if head.is_none() || head_of(&at, head.unwrap().0).ok().flatten() == head {
                    let done = self.read_from(&at, &meta, st, true)?;
                    if at != real {
                        self.rotated_after(&real, &meta, current);
                    }
                    return Ok((done, true));
                }
            }
        }
        let dir = parent(&last);
        if let Some(renamed) = find_by_id(&dir, st.id) {
            let meta = std::fs::metadata(&renamed).map_err(io(&renamed))?;
            if st.head.is_none() || head_of(&renamed, st.head.unwrap().0).ok().flatten() == st.head
            {
                let done = self.read_from(&renamed, &meta, st, true)?;
                self.rotated_after(&last, &meta, current);
                return Ok((done, true));
            }
        }
        if let (Some(head), true) = (st.head, st.offset > 0) {
            if let Some(gz) = find_compressed(&last, head, current) {
                if !gz_complete(&gz) {
                    self.report.warnings.push(format!(
                        "{}: incomplete (still being compressed?); the rest of {} is read from it next run",
                        gz.display(),
                        st.path
                    ));
                    return Ok((st, false));
                }
                let meta = std::fs::metadata(&gz).map_err(io(&gz))?;
                self.read_compressed(&gz, &st)?;
                self.rotated_after(&last, &meta, current);
                return Ok((st, true));
            }
        }
        self.report.warnings.push(format!(
            "{}: the file read last time is gone and no rotated or compressed copy of it was found; lines written to it after the last run cannot be read",
            st.path
        ));
        Ok((st, true))
    }

    /// Reads whole the rotated copies of `path` written after `after` (several
    /// rotations between two runs), oldest first.
    /// Problems are the file's (reported), not the source's: what was read before
    /// them keeps its checkpoint.
    fn rotated_after(&mut self, path: &Path, after: &Metadata, current: &HashSet<FileId>) {
        self.read_rotated(rotated_since(path, after, current));
    }

    /// Rotated copies of the source's files modified after `since` (a few minutes'
    /// margin for the clocks of writer and filesystem), oldest first.
    fn rotated_since_loss(
        &self,
        current: &[(PathBuf, Metadata)],
        current_ids: &HashSet<FileId>,
        since: DateTime<Utc>,
    ) -> Vec<(PathBuf, Metadata)> {
        let since = since - chrono::Duration::minutes(5);
        let paths: Vec<PathBuf> = if is_glob(&self.fs.path) {
            current.iter().map(|(p, _)| p.clone()).collect()
        } else {
            vec![self.fs.path.clone()]
        };
        let mut seen = HashSet::new();
        let mut found: Vec<(PathBuf, Metadata)> = paths
            .iter()
            .flat_map(|p| siblings(p))
            .filter(|(_, m)| {
                let id = FileId::of(m);
                !current_ids.contains(&id)
                    && seen.insert(id)
                    && m.modified().is_ok_and(|t| DateTime::<Utc>::from(t) > since)
            })
            .collect();
        found.sort_by_key(|(_, m)| (m.mtime(), m.mtime_nsec()));
        found
    }

    /// Reads rotated copies whole, in the order given.
    fn read_rotated(&mut self, rotated: Vec<(PathBuf, Metadata)>) {
        for (between, meta) in rotated {
            if self.is_known_content(&between) {
                continue; // a (compressed) copy of a file already followed
            }
            let result = if is_compressed(&between) {
                // Being written: the plain file it is made from is still there (loguru
                // removes it only once the .gz is complete) and is read instead.
                if !gz_complete(&between) {
                    continue;
                }
                let st = FileState::new(FileId::of(&meta), &between);
                self.read_compressed(&between, &st)
            } else {
                self.read_from(
                    &between,
                    &meta,
                    FileState::new(FileId::of(&meta), &between),
                    true,
                )
                .map(|_| ())
            };
            if let Err(e) = result {
                self.report.errors.push(e.to_string());
            }
        }
    }

    /// Whether a file starts with the first line of a file followed before (and so
    /// was read through that file's checkpoint).
    fn is_known_content(&self, path: &Path) -> bool {
        self.prev_states.iter().any(|st| {
            st.offset > 0
                && st.head.is_some_and(|(len, hash)| {
                    head_of(path, len).ok().flatten() == Some((len, hash))
                })
        })
    }

    fn same_file(
        &mut self,
        path: &Path,
        meta: &Metadata,
        prev: FileState,
        current: &HashSet<FileId>,
    ) -> Result<FileState, SourceError> {
        let mut prev = prev;
        prev.path = path.display().to_string();
        prev.real = real_of(path);
        prev.missing_since = None;
        let truncated = meta.len() < prev.offset;
        let replaced = !truncated
            && match prev.head {
                Some((len, hash)) => head_of(path, len).map_err(io(path))? != Some((len, hash)),
                None => false,
            };
        let rewritten = !truncated && !replaced && !tail_matches(path, &prev).map_err(io(path))?;
        if truncated || replaced || rewritten {
            // copytruncate: the lines written since the last run are in the copy.
            let copy = prev.head.and_then(|h| find_copy(path, h, &prev, current));
            match &copy {
                Some(c) => {
                    self.report.warnings.push(format!(
                        "{}: truncated since the last run; read the rest from its copy {} and the file again from its start",
                        path.display(),
                        c.display()
                    ));
                    let cm = std::fs::metadata(c).map_err(io(c))?;
                    if is_compressed(c) {
                        if !gz_complete(c) {
                            self.report.warnings.push(format!(
                                "{}: incomplete (still being compressed?); read next run",
                                c.display()
                            ));
                            return Ok(prev);
                        }
                        self.read_compressed(c, &prev)?;
                    } else {
                        self.read_from(c, &cm, prev.clone(), true)?;
                    }
                    // and whatever was rotated after it (the file's inode may be reused)
                    self.rotated_after(path, &cm, current);
                }
                None if truncated => self.report.warnings.push(format!(
                    "{}: file is smaller than at the last run ({} < {} bytes): truncated, reading it again from the start",
                    path.display(),
                    meta.len(),
                    prev.offset
                )),
                None if rewritten => self.report.warnings.push(format!(
                    "{}: the {} bytes before where the last run stopped (offset {}) changed since: the file was rewritten in place, reading it again from the start",
                    path.display(),
                    prev.tail.map_or(0, |t| t.0),
                    prev.offset
                )),
                None => self.report.warnings.push(format!(
                    "{}: the first line changed since the last run: the file was replaced, reading it from the start",
                    path.display()
                )),
            }
            return self.read_from(path, meta, FileState::new(prev.id, path), false);
        }
        if meta.len() == prev.offset && prev.head.is_some() {
            // Nothing new: no need to read the file. A checkpoint from before tails
            // were kept gets one.
            if prev.tail.is_none() {
                remember_tail(path, &mut prev);
            }
            return Ok(prev);
        }
        self.read_from(path, meta, prev, false)
    }

    /// A new file whose first line is a followed file's: a copy of it (copytruncate
    /// with a name the glob matches). Start where that file was.
    fn copy_of_known(&self, path: &Path) -> Option<FileState> {
        for st in &self.prev_states {
            if let Some((len, hash)) = st.head {
                if st.offset > 0
                    && head_of(path, len).ok().flatten() == Some((len, hash))
                    && tail_matches(path, st).unwrap_or(false)
                {
                    return Some(st.clone());
                }
            }
        }
        None
    }

    fn parser(&self, origin: &str) -> Box<dyn RecordParser> {
        parser_for(self.cfg, &self.fs.parser, origin, self.min_level)
    }

    /// Reads `path` from the state's offset. A `finished` file (rotated away) will not
    /// grow again, so its last line counts even without a newline.
    fn read_from(
        &mut self,
        path: &Path,
        meta: &Metadata,
        mut state: FileState,
        finished: bool,
    ) -> Result<FileState, SourceError> {
        let mut file = File::open(path).map_err(io(path))?;
        state.id = FileId::of(meta);
        file.seek(SeekFrom::Start(state.offset)).map_err(io(path))?;
        let settle = self.fs.settle.unwrap_or(DEFAULT_SETTLE);
        // Quiet: nothing added since a record was held, or not modified for `settle`
        // (a modification time after `now` is not quiet).
        let quiet = state.held_len == Some(meta.len())
            || meta.modified().ok().is_some_and(|m| {
                let m: DateTime<Utc> = m.into();
                self.now
                    .signed_duration_since(m)
                    .to_std()
                    .is_ok_and(|d| d >= settle)
            });
        let origin = origin_of(path);
        let mut parser = self.parser(&origin);
        // A large backlog of a parser that skips: helpers find its stops ahead, when
        // there is a core for them.
        let sizes = PRESCAN
            .with(|p| p.get())
            .or_else(|| (prescan::helpers() > 0).then_some((prescan::MIN_BACKLOG, prescan::BLOCK)));
        let plan = match (parser.skip_test(), sizes) {
            (Some(test), Some((min, block))) => {
                prescan::plan(&file, state.offset, meta.len(), block, min)
                    .map_err(io(path))?
                    .map(|bounds| (bounds, test))
            }
            _ => None,
        };
        let max_line = parser.max_line();
        // No helper is started without a plan: the scope then costs nothing.
        std::thread::scope(|scope| -> Result<(), SourceError> {
            let (reader, current): (Box<dyn BufRead>, _) = match plan {
                Some((bounds, test)) => {
                    let r = prescan::Reader::start(scope, &file, bounds, test, max_line)
                        .map_err(io(path))?;
                    let current = r.current();
                    (Box::new(r), Some(current))
                }
                None => (Box::new(BufReader::with_capacity(256 * 1024, &file)), None),
            };
            self.consume(
                path,
                reader,
                &mut *parser,
                &mut state,
                (finished, quiet),
                current,
            );
            Ok(())
        })?;
        // The head only identifies the file better; failing to widen it is harmless.
        let _ = grow_head(path, &mut state);
        remember_tail(path, &mut state);
        Ok(state)
    }

    /// Reads the rest (after `st.offset`) of a compressed copy of a followed file.
    fn read_compressed(&mut self, gz: &Path, st: &FileState) -> Result<(), SourceError> {
        let file = File::open(gz).map_err(io(gz))?;
        let mut dec = BufReader::with_capacity(256 * 1024, flate2::read::MultiGzDecoder::new(file));
        std::io::copy(&mut (&mut dec).take(st.offset), &mut std::io::sink()).map_err(io(gz))?;
        let mut state = st.clone();
        let mut parser = self.parser(&origin_of(gz));
        self.consume(gz, dec, &mut *parser, &mut state, (true, true), None);
        Ok(())
    }

    /// Reads lines into records from `state`'s position, advancing it. A file still
    /// being written (not `finished`) may end in the middle of a record (a traceback
    /// written in several writes): its last record is held back — not emitted, the
    /// checkpoint left at its first line — when it visibly lacks its end (its traceback
    /// has no exception line yet) or, with `settle` set, always, unless the file is
    /// `quiet`. A held record is emitted whole once a record follows it, or the file is
    /// quiet, or rotated away. A read error holds the last record too, so that nothing
    /// read is emitted twice or lost: the error is reported and the rest waits.
    fn consume(
        &mut self,
        path: &Path,
        mut reader: impl BufRead,
        parser: &mut dyn RecordParser,
        state: &mut FileState,
        (finished, quiet): (bool, bool),
        prescan: Option<Rc<RefCell<prescan::Current>>>,
    ) {
        let mut scratch = Line::default();
        let max_line = parser.max_line();
        let mut lines = Lines {
            path,
            parser: &mut *parser,
            prescan,
            state,
            report: &mut *self.report,
            sink: &mut *self.sink,
            max_line,
            finished,
            long_lines: 0,
            record_start: None,
            mid_line: false,
        };
        let result = for_each_line_capped(&mut reader, &mut scratch, max_line, &mut lines);
        let (long_lines, record_start) = (lines.long_lines, lines.record_start);
        let failed = match result {
            Ok(()) => false,
            Err(e) => {
                self.report.errors.push(format!(
                    "{}: {e} (after line {}; the rest is read next run)",
                    path.display(),
                    state.line_no
                ));
                true
            }
        };
        let hold = !finished
            && parser.pending().is_some_and(|(_, unfinished)| {
                failed
                    || (!quiet
                        && match self.fs.settle {
                            None => unfinished,
                            Some(d) => !d.is_zero(),
                        })
            });
        state.held_len = None;
        match record_start {
            Some((offset, line_no)) if hold => {
                let end = state.offset;
                self.report.lines -= state.line_no - line_no;
                self.report.bytes -= end - offset;
                state.offset = offset;
                state.line_no = line_no;
                state.held_len = Some(end);
            }
            _ => {
                for event in parser
                    .finish()
                    .into_iter()
                    .chain(std::iter::from_fn(|| parser.take_ready()))
                {
                    (self.sink)(event);
                }
            }
        }
        // Points at or behind the offset are read past for good.
        let offset = state.offset;
        state.torn.retain(|&t| t > offset);
        if long_lines > 1 {
            self.report.warnings.push(format!(
                "{}: {long_lines} lines over the line cap were cut",
                path.display()
            ));
        }
        self.report.warnings.extend(parser.take_problems());
    }
}

/// One file's lines on their way to its parser, counted into its checkpoint.
struct Lines<'a> {
    path: &'a Path,
    parser: &'a mut dyn RecordParser,
    state: &'a mut FileState,
    report: &'a mut ReadReport,
    sink: &'a mut dyn FnMut(Event),
    max_line: usize,
    /// The file will not grow: its last line counts even without a newline.
    finished: bool,
    /// Lines over the cap, cut.
    long_lines: u64,
    /// Where the record in progress starts (offset, lines before it).
    record_start: Option<(u64, u64)>,
    /// The last line seen was a piece of a physical line that goes on (see
    /// [`Line::more`]): the next piece is no new line.
    mid_line: bool,
    /// The block of a backlog read ahead, with its stops (see [`prescan`]).
    prescan: Option<Rc<RefCell<prescan::Current>>>,
}

impl LineSink for &mut Lines<'_> {
    fn skip(&mut self, ahead: &[u8]) -> usize {
        // Where a skip from here would stop, found ahead; noted first, since the
        // block's first line number is taken at the first look at it.
        let found = self.prescan.as_ref().and_then(|c| {
            c.borrow_mut()
                .skip_from(self.state.offset, self.state.line_no)
        });
        // The first line identifies the file: it is always seen. The rest of a line read
        // in pieces is not skipped as lines.
        if self.state.offset == 0 && self.state.head.is_none() || self.mid_line {
            return 0;
        }
        // A skip stops short of a torn point: the line holding it may be cut there.
        let offset = self.state.offset;
        let room = self
            .state
            .torn
            .iter()
            .filter(|&&t| t > offset)
            .map(|&t| t - offset)
            .min();
        let (bytes, lines) = match found {
            Some(_) if !self.parser.skips_now() => (0, 0),
            Some((bytes, lines)) if room.is_none_or(|r| bytes <= r) => {
                debug_assert!(bytes as usize <= ahead.len());
                (bytes as usize, lines)
            }
            _ => {
                let upto = room.map_or(ahead.len(), |r| ahead.len().min(r as usize));
                self.parser.skip_lines(&ahead[..upto], self.max_line)
            }
        };
        self.state.offset += bytes as u64;
        self.state.line_no += lines;
        self.report.lines += lines;
        self.report.bytes += bytes as u64;
        bytes
    }

    fn line(&mut self, line: LineRef<'_>) -> bool {
        let state = &mut *self.state;
        let end = state.offset + line.len;
        // A half-written last line waits for the next run; where it ends now is
        // remembered, in case its writer died there and the next record is appended
        // to it. When a run already saw the file end at this very place, nothing was
        // written for a whole run: its writer died mid-line, and the line is read as
        // it is (waiting longer would lose it until the file rotates).
        if !line.complete && !line.more && !self.finished && !state.torn.contains(&end) {
            if state.torn.len() >= MAX_TORN {
                state.torn.remove(0);
            }
            state.torn.push(end);
            return false;
        }
        let before = (state.offset, state.line_no);
        if state.offset == 0 && state.head.is_none() {
            let n = line.bytes.len().min(HEAD_BYTES);
            state.head = Some((n as u64, hash(&line.bytes[..n])));
        }
        state.offset += line.len;
        let piece = std::mem::replace(&mut self.mid_line, line.more);
        if !piece {
            state.line_no += 1;
            self.report.lines += 1;
        }
        let lines_before = state.line_no - 1;
        self.report.bytes += line.len;
        // A piece ending in a hole of NULs dropped no text.
        if line.dropped > 0 && !(line.more && line.bytes.last() == Some(&0)) {
            self.long_lines += 1;
            if self.long_lines == 1 {
                self.report.warnings.push(format!(
                    "{}:{}: line of {} bytes; kept its first {}",
                    self.path.display(),
                    state.line_no,
                    line.len,
                    line.bytes.len()
                ));
            }
        }
        // One physical line may hold several records: a torn record with the next one
        // appended, or a hole of NULs and the record written after it. Each goes to the
        // parser as a line of its own.
        let bytes = line.bytes;
        let mut from = 0;
        // This part starts at a header found inside the line (no torn point, no hole).
        let mut embedded = false;
        loop {
            let split = next_split(&*self.parser, bytes, from, &state.torn, before.0);
            let next = split.map(|s| s.0);
            let mut part = &bytes[from..next.unwrap_or(bytes.len())];
            // NULs at the start of a line, or just before a record, are a hole (no
            // text); NULs inside a line's text are kept.
            let lead = part.iter().take_while(|&&c| c == 0).count();
            part = &part[lead..];
            if next.is_some() || line.more {
                while let [rest @ .., 0] = part {
                    part = rest;
                }
            }
            if lead == 0 || !part.is_empty() {
                let done = if embedded {
                    self.parser.push_embedded(state.line_no, part)
                } else {
                    self.parser.push_bytes(state.line_no, part)
                };
                // (only a call that completed a record may have completed two)
                if let Some(event) = done {
                    (self.sink)(event);
                    while let Some(event) = self.parser.take_ready() {
                        (self.sink)(event);
                    }
                }
                // (The first part of a later piece of a long line may go on the record
                // of the piece before it, which then starts further back. A record cut
                // by a header inside its line goes on, from where it started.)
                let goes_on = embedded
                    && self
                        .record_start
                        .is_some_and(|(offset, _)| offset >= before.0);
                if self
                    .parser
                    .pending()
                    .is_some_and(|(start, _)| start == state.line_no)
                    && (!piece || from > 0 || self.parser.starts_record(part))
                    && !goes_on
                {
                    // A held record is read again from its own start, not from the
                    // start of the physical line (whose earlier records are out).
                    self.record_start = Some((before.0 + from as u64, lines_before));
                }
            }
            match split {
                Some((k, e)) => (from, embedded) = (k, e),
                None => break,
            }
        }
        true
    }

    fn cut_ahead(&self) -> Option<u64> {
        let offset = self.state.offset;
        self.state
            .torn
            .iter()
            .filter(|&&t| t > offset)
            .map(|&t| t - offset)
            .min()
    }

    fn cuts_at(&mut self, rest: &[u8]) -> bool {
        // A hole after the point (what follows it is cut after the hole), or a record
        // starting there; when too little is buffered to tell, cut: a message split in
        // two loses less than a record.
        rest.first() == Some(&0)
            || (rest.len() < 256 && memchr::memchr(b'\n', rest).is_none())
            || self.parser.starts_record(rest)
    }
}

/// The most torn points a checkpoint keeps (a file rarely has more than one ahead of
/// its offset: its last line).
const MAX_TORN: usize = 8;

/// Where the physical `line` (starting at file offset `at`) is cut next after `from`:
/// at a torn point (see [`FileState::torn`]) or the end of a run of NULs where a record
/// starts, or where the parser finds a record's header inside the line (then `true`).
fn next_split(
    parser: &dyn RecordParser,
    line: &[u8],
    from: usize,
    torn: &[u64],
    at: u64,
) -> Option<(usize, bool)> {
    let after_nuls = |k: usize| {
        let b = &line[k..];
        &b[b.iter().take_while(|&&c| c == 0).count()..]
    };
    let mut best = parser
        .embedded_record(&line[from..])
        .map(|p| from + p)
        .filter(|&k| k > from && k < line.len());
    // A torn point a run saw is no header a stranger wrote, even where one is found too.
    let mut seen = false;
    for &t in torn {
        if let Some(k) = t.checked_sub(at).and_then(|k| usize::try_from(k).ok()) {
            if k > from
                && k < line.len()
                && best.is_none_or(|b| k <= b)
                && parser.starts_record(after_nuls(k))
            {
                best = Some(k);
                seen = true;
            }
        }
    }
    let mut i = from;
    while let Some(z) = memchr::memchr(0, &line[i..]) {
        let run_end = i + z + line[i + z..].iter().take_while(|&&c| c == 0).count();
        if run_end >= line.len() || best.is_some_and(|b| run_end >= b) {
            break;
        }
        if parser.starts_record(&line[run_end..]) {
            best = Some(run_end);
            seen = true;
            break;
        }
        i = run_end;
    }
    best.map(|k| (k, !seen))
}

fn origin_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

thread_local! {
    /// Tests set the smallest backlog read with helpers and their block size (small,
    /// to cross many blocks on a small file), whatever the cores.
    static PRESCAN: std::cell::Cell<Option<(u64, usize)>> = const { std::cell::Cell::new(None) };
}

/// Widens a file's identifying head to the first 4 KiB of what was read (whole lines
/// only), so files whose first lines happen to be equal are still told apart.
fn grow_head(path: &Path, state: &mut FileState) -> std::io::Result<()> {
    let want = state.offset.min(HEAD_BYTES as u64);
    if state.head.is_some_and(|(len, _)| len >= want) {
        return Ok(());
    }
    if let Some(h) = head_of(path, want)? {
        state.head = Some(h);
    }
    Ok(())
}

/// A first run with `from = "end"`: start after the last whole line.
fn skip_to_end(path: &Path, meta: &Metadata) -> Result<FileState, SourceError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut state = FileState::new(FileId::of(meta), path);
    let mut reader = BufReader::with_capacity(256 * 1024, &mut file);
    let mut line = Line::default();
    while next_line(&mut reader, &mut line).map_err(io(path))? {
        if !line.complete {
            break;
        }
        if state.head.is_none() {
            let n = line.bytes.len().min(HEAD_BYTES);
            state.head = Some((n as u64, hash(&line.bytes[..n])));
        }
        state.offset += line.len;
        state.line_no += 1;
    }
    grow_head(path, &mut state).map_err(io(path))?;
    remember_tail(path, &mut state);
    Ok(state)
}

/// Records the length and hash of the bytes just before the state's offset (none for a
/// compressed file, whose bytes cannot be reached without reading all before them, or
/// when they cannot be read: the next run then checks the head only).
fn remember_tail(path: &Path, state: &mut FileState) {
    let len = state.offset.min(TAIL_BYTES);
    state.tail = match len {
        0 => None,
        _ => tail_of(path, state.offset, len).ok().flatten(),
    };
}

/// Whether the file still has, just before the state's offset, the bytes read there
/// (true when the state has no tail to compare, or the file is compressed).
fn tail_matches(path: &Path, state: &FileState) -> std::io::Result<bool> {
    let Some((len, hash)) = state.tail else {
        return Ok(true);
    };
    if is_compressed(path) {
        return Ok(true);
    }
    Ok(tail_of(path, state.offset, len)? == Some((len, hash)))
}

/// The length and hash of the `len` bytes of a (plain) file that end at `end`, or
/// `None` if it is shorter or compressed.
fn tail_of(path: &Path, end: u64, len: u64) -> std::io::Result<Option<(u64, u64)>> {
    if is_compressed(path) || len > end {
        return Ok(None);
    }
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(end - len))?;
    let mut buf = vec![0u8; len as usize];
    match f.read_exact(&mut buf) {
        Ok(()) => Ok(Some((len, hash(&buf)))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// The length and hash of the first `len` bytes of a file, or `None` if it is shorter.
fn head_of(path: &Path, len: u64) -> std::io::Result<Option<(u64, u64)>> {
    let mut buf = vec![0u8; len as usize];
    let f = File::open(path)?;
    let mut r: Box<dyn Read> = if is_compressed(path) {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    match r.read_exact(&mut buf) {
        Ok(()) => Ok(Some((len, hash(&buf)))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e)
            if e.kind() == std::io::ErrorKind::InvalidInput
                || e.kind() == std::io::ErrorKind::InvalidData =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Whether a .gz decompresses to its end: one still being written (loguru compresses
/// after renaming, then removes the plain file) or cut short is not.
fn gz_complete(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
    std::io::copy(&mut dec, &mut std::io::sink()).is_ok()
}

fn hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn is_compressed(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}

/// Whether `name` looks like a rotated copy of `base`: loguru's `app.<date>.log`,
/// logrotate's `app.log.1` and `app.log-20261122`, compressed or not.
fn is_rotation_of(name: &str, base: &str) -> bool {
    if name == base {
        return false;
    }
    let stem = base.rsplit_once('.').map(|(s, _)| s).unwrap_or(base);
    name.starts_with(&format!("{base}."))
        || name.starts_with(&format!("{base}-"))
        || name.starts_with(&format!("{stem}."))
}

fn siblings(path: &Path) -> Vec<(PathBuf, Metadata)> {
    let Some(base) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    std::fs::read_dir(parent(path))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_rotation_of(&e.file_name().to_string_lossy(), &base))
        .filter_map(|e| {
            e.metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| (e.path(), m))
        })
        .collect()
}

/// Rotated copies of `path` written after `after` was (so not read yet), oldest first;
/// files the source follows anyway (`current`) are left out.
fn rotated_since(
    path: &Path,
    after: &Metadata,
    current: &HashSet<FileId>,
) -> Vec<(PathBuf, Metadata)> {
    let after_id = FileId::of(after);
    let after_mtime = (after.mtime(), after.mtime_nsec());
    let mut found: Vec<(PathBuf, Metadata)> = siblings(path)
        .into_iter()
        .filter(|(_, m)| {
            let id = FileId::of(m);
            id != after_id && !current.contains(&id) && (m.mtime(), m.mtime_nsec()) > after_mtime
        })
        .collect();
    found.sort_by_key(|(_, m)| (m.mtime(), m.mtime_nsec()));
    found
}

/// The compressed rotated copy of a followed file, told by its first line.
fn find_compressed(last: &Path, head: (u64, u64), current: &HashSet<FileId>) -> Option<PathBuf> {
    siblings(last)
        .into_iter()
        .filter(|(p, m)| is_compressed(p) && !current.contains(&FileId::of(m)))
        .find(|(p, _)| head_of(p, head.0).ok().flatten() == Some(head))
        .map(|(p, _)| p)
}

/// The copy left by copytruncate: a sibling with the same first line, at least as long
/// as what was read, and with what was read last where it was.
fn find_copy(
    path: &Path,
    head: (u64, u64),
    st: &FileState,
    current: &HashSet<FileId>,
) -> Option<PathBuf> {
    siblings(path)
        .into_iter()
        .filter(|(_, m)| !current.contains(&FileId::of(m)))
        .filter(|(p, m)| is_compressed(p) || m.len() >= st.offset)
        .find(|(p, _)| {
            head_of(p, head.0).ok().flatten() == Some(head) && tail_matches(p, st).unwrap_or(false)
        })
        .map(|(p, _)| p)
}

/// Looks in `dir` for the file with identity `id` (renamed by rotation).
fn find_by_id(dir: &Path, id: FileId) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() && FileId::of(&meta) == id {
                return Some(entry.path());
            }
        }
    }
    None
}

/// The parser a file source reads its records with (`min_level`: records below it are
/// dropped unread). What a dry run reads a file with, too.
pub fn parser_for(
    cfg: &SourceConfig,
    spec: &ParserSpec,
    origin: &str,
    min_level: u32,
) -> Box<dyn RecordParser> {
    match spec {
        ParserSpec::LoguruDefault => Box::new(
            RecordAssembler::new(&cfg.name, origin, &cfg.levels, min_level)
                .with_zone(cfg.timezone)
                .with_cut_floor(cfg.min_level.no),
        ),
        ParserSpec::Line {
            format,
            default_level,
        } => Box::new(
            RecordAssembler::with_header(
                &cfg.name,
                origin,
                &cfg.levels,
                min_level,
                HeaderParser::Line {
                    format: format.clone(),
                    default_level: default_level.clone(),
                },
            )
            .with_zone(cfg.timezone),
        ),
        ParserSpec::LoguruJson => {
            Box::new(JsonParser::new(&cfg.name, origin, &cfg.levels, min_level))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, SourceKind};
    use std::io::Write;

    /// Everything a read gives: records, checkpoints, counts, problems.
    fn read_all(
        cfg: &SourceConfig,
        prev: &HashMap<String, Checkpoint>,
        prescan: (u64, usize),
    ) -> (Vec<Event>, ReadReport) {
        let SourceKind::File(fs) = &cfg.kind else {
            panic!("a file source")
        };
        PRESCAN.with(|p| p.set(Some(prescan)));
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .into();
        let mut events = Vec::new();
        let report = read(cfg, fs, prev, false, now, None, &mut |e| events.push(e)).unwrap();
        PRESCAN.with(|p| p.set(None));
        (events, report)
    }

    /// A backlog read with helpers finding the stops ahead, in blocks of every size,
    /// gives the records, checkpoints and counts of reading it alone: from the start
    /// and from a checkpoint, with tracebacks under skipped and kept records, custom
    /// levels, long lines, blank lines, torn lines with a record appended and a
    /// half-written last line.
    #[test]
    fn a_backlog_read_ahead_on_other_threads_reads_as_one_thread_does() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let toml = format!(
            "[[source]]\nname = \"app\"\npath = \"{}\"\nfrom = \"start\"\nlevels = {{ NOISY = 15, LOUD = 35 }}\n",
            log.display()
        );
        let config = Config::parse(&toml, &dir.path().join("logwarden.toml")).unwrap();
        let cfg = &config.sources[0];
        let pool: Vec<String> = vec![
            "2026-11-22 09:50:45.492 | INFO     | app.web:handle:7 - GET / 200".into(),
            "2026-11-22 09:50:45.492 | DEBUG    | app:f:1 - x - y".into(),
            "2026-11-22 09:50:45.492 | NOISY    | app:f:1 - custom and low".into(),
            "2026-11-22 09:50:45.492 | LOUD     | app:f:1 - custom and high".into(),
            "2026-11-22 09:50:45.492 | WARNING  | app:f:1 - high".into(),
            "2026-11-22 09:50:45.492 | ERROR    | app:f:1 - boom".into(),
            "2026-11-22 09:50:45.492 | ERRORS   | app:f:1 - unknown level".into(),
            "2026-11-22 09:50:45.492 | INFO     | no location - here".into(),
            "Traceback (most recent call last):".into(),
            "  File \"app.py\", line 3, in f".into(),
            "ValueError: bad".into(),
            "3 retries left".into(),
            String::new(),
            "2026-11-22 09:50:45.492 | INFO     | app:f:1 - carriage return\r".into(),
            format!(
                "2026-11-22 09:50:45.492 | INFO     | app:f:1 - {}",
                "x".repeat(70_000)
            ),
            format!(
                "2026-11-22 09:50:45.492 | ERROR    | app:f:1 - {}",
                "y".repeat(70_000)
            ),
            // Torn lines (a skipped header, a traceback line) with a record appended,
            // and a message with bars.
            "2026-11-22 09:50:45.492 | INFO     | app:f:1 - half a mess2026-11-22 09:50:46.000 | ERROR    | app:g:2 - glued".into(),
            "  File \"app.py\", line 3, in f2026-11-22 09:50:46.000 | ERROR    | app:g:2 - glued".into(),
            "2026-11-22 09:50:45.492 | INFO     | app:f:1 - half2026-11-22 09:50:46.000 | DEBUG    | app:g:2 - low".into(),
            "2026-11-22 09:50:45.492 | INFO     | app:f:1 - a | b | c".into(),
        ];
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let mut text = String::new();
        while text.len() < 600_000 {
            // Mostly records below the threshold, as in a busy log; few huge lines.
            let k = match next(40) {
                0 => 14 + next(2),
                1..=24 => next(3),
                25..=27 => 16 + next(4),
                _ => next(14),
            };
            text.push_str(&pool[k]);
            text.push('\n');
        }
        text.push_str("2026-11-22 09:50:45.492 | ERROR    | app:f:1 - half wr");
        let half = text.len() / 2;
        let half = half + text[half..].find('\n').unwrap() + 1;
        // Read alone and with helpers from `prev`: the same in every respect.
        let both = |prev: &HashMap<String, Checkpoint>, block: usize, what: &str| {
            let alone = read_all(cfg, prev, (u64::MAX, block));
            let ahead = read_all(cfg, prev, (0, block));
            assert!(!alone.0.is_empty());
            assert_eq!(ahead.0, alone.0, "block {block}, {what}");
            let (a, b) = (&ahead.1, &alone.1);
            assert_eq!((a.lines, a.bytes), (b.lines, b.bytes));
            assert_eq!(a.checkpoints, b.checkpoints);
            assert_eq!((&a.warnings, &a.errors), (&b.warnings, &b.errors));
            alone.1
        };
        for block in [1usize, 97, 4096, 65_536, 1 << 20] {
            std::fs::write(&log, &text[..half]).unwrap();
            let first = both(&HashMap::new(), block, "from the start");
            // The rest, from the checkpoint.
            let prev: HashMap<String, Checkpoint> = first
                .checkpoints
                .iter()
                .map(|c| (c.key.clone(), c.clone()))
                .collect();
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .unwrap()
                .write_all(&text.as_bytes()[half..])
                .unwrap();
            both(&prev, block, "from a checkpoint");
        }
    }

    /// One read of the source with `prev`'s checkpoints: its records' messages and the
    /// checkpoints to pass on.
    fn step(
        cfg: &SourceConfig,
        prev: &HashMap<String, Checkpoint>,
    ) -> (Vec<String>, HashMap<String, Checkpoint>) {
        let (events, report) = read_all(cfg, prev, (u64::MAX, 4096));
        let cps = report
            .checkpoints
            .iter()
            .map(|c| (c.key.clone(), c.clone()))
            .collect();
        (events.into_iter().map(|e| e.message).collect(), cps)
    }

    fn source(dir: &Path, extra: &str) -> Config {
        let toml = format!(
            "[[source]]\nname = \"app\"\npath = \"{}\"\nfrom = \"start\"\ntimezone = \"UTC\"\n{extra}",
            dir.join("app.log").display()
        );
        Config::parse(&toml, &dir.join("logwarden.toml")).unwrap()
    }

    fn append(path: &Path, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    /// A record appended to a torn line that no run saw end there is read, though the
    /// line starts like one a skip passes over (a skipped record's header, or a line of
    /// its traceback): read alone, and with the stops found ahead by helpers.
    #[test]
    fn a_record_glued_to_a_torn_skipped_line_no_run_saw_is_read() {
        let (info, err) = info_and_error_headers("");
        for torn in [
            format!("{info}half a mess"),
            "  File \"app.py\", line 3, in f".to_string(),
        ] {
            for prescan in [(u64::MAX, 4096), (0, 97)] {
                let dir = tempfile::tempdir().unwrap();
                let config = source(dir.path(), "");
                let cfg = &config.sources[0];
                let log = dir.path().join("app.log");
                append(&log, format!("{info}first\n").as_bytes());
                let (got, cps) = step(cfg, &HashMap::new());
                assert!(got.is_empty());
                append(
                    &log,
                    format!(
                        "{info}handling\nTraceback (most recent call last):\n{torn}{err}db down\n"
                    )
                    .as_bytes(),
                );
                let (events, _) = read_all(cfg, &cps, prescan);
                let got: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
                assert_eq!(got, ["db down"], "{torn:?} {prescan:?}");
                assert!(events[0].origin.ends_with(":4"), "{}", events[0].origin);
            }
        }
    }

    /// In a custom format (where a header is little more than a time, so no line is cut
    /// on its text alone), a record appended to a line a run saw end without its newline
    /// is cut from it there; a message quoting a time elsewhere is not.
    #[test]
    fn a_record_appended_where_a_run_saw_a_torn_line_is_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let config = source(
            dir.path(),
            "format = \"{time:YYYY-MM-DD HH:mm:ss.SSS} {level} {message}\"\n",
        );
        let cfg = &config.sources[0];
        let log = dir.path().join("app.log");
        append(&log, b"2026-12-02 07:00:00.000 ERROR seen at 2026-12-02 07:00:00.000 ERROR x\n2026-12-02 07:00:01.000 INFO handling req");
        let (got, cps) = step(cfg, &HashMap::new());
        assert_eq!(got, ["seen at 2026-12-02 07:00:00.000 ERROR x"]);
        append(&log, b"2026-12-02 08:06:00.000 CRITICAL Database down\n");
        let (got, cps) = step(cfg, &cps);
        assert_eq!(got, ["Database down"]);
        // Read past: the point is dropped, nothing is read again.
        assert!(!cps.values().any(|c| c.state.contains("torn")), "{cps:?}");
        assert!(step(cfg, &cps).0.is_empty());
    }

    /// A record cut from a torn line and held (its traceback has no exception line yet)
    /// is read again from its own start: the torn record before it is not reported
    /// twice, and the held one is reported whole, once.
    #[test]
    fn a_held_record_cut_from_a_torn_line_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = source(dir.path(), "");
        let cfg = &config.sources[0];
        let log = dir.path().join("app.log");
        append(
            &log,
            b"2026-12-02 07:00:00.000 | ERROR    | app:f:1 - torn err",
        );
        let (got, cps) = step(cfg, &HashMap::new());
        assert!(got.is_empty());
        append(&log, b"2026-12-02 08:00:00.000 | ERROR    | app:g:2 - second\nTraceback (most recent call last):\n  File \"x.py\", line 1, in g\n");
        let (got, cps) = step(cfg, &cps);
        assert_eq!(got, ["torn err"]);
        append(
            &log,
            b"ValueError: bad\n2026-12-02 08:00:01.000 | INFO     | app:h:3 - ok\n",
        );
        let (events, report) = read_all(cfg, &cps, (u64::MAX, 4096));
        let got: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(got, ["second"]);
        assert_eq!(events[0].exception_type.as_deref(), Some("ValueError"));
        let cps: HashMap<_, _> = report
            .checkpoints
            .iter()
            .map(|c| (c.key.clone(), c.clone()))
            .collect();
        assert!(step(cfg, &cps).0.is_empty());
    }

    /// An INFO and an ERROR header in loguru's default format (`extra` empty) or in the
    /// custom format the NUL-hole tests use.
    fn info_and_error_headers(extra: &str) -> (&'static str, &'static str) {
        if extra.is_empty() {
            (
                "2026-12-02 07:00:00.000 | INFO     | app:f:1 - ",
                "2026-12-02 07:00:00.000 | ERROR    | app:f:1 - ",
            )
        } else {
            (
                "2026-12-02 07:00:00.000 | INFO | ",
                "2026-12-02 07:00:00.000 | ERROR | ",
            )
        }
    }

    /// A hole of NULs (copytruncate under a writer that keeps its offset) before a
    /// record, at a line's start or after a torn line, hides nothing, in the default and
    /// a custom format; NULs inside a message stay in it.
    #[test]
    fn a_hole_of_nuls_before_a_record_hides_nothing() {
        for extra in [
            "",
            "format = \"{time:YYYY-MM-DD HH:mm:ss.SSS} | {level} | {message}\"\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let config = source(dir.path(), extra);
            let cfg = &config.sources[0];
            let log = dir.path().join("app.log");
            let (info, err) = info_and_error_headers(extra);
            let mut bytes = vec![0u8; 2048];
            bytes.extend(format!("{err}after the hole\n{info}torn").as_bytes());
            bytes.extend([0u8; 100]);
            bytes.extend(format!("{err}after torn and hole\n{err}NUL \0 inside\n").as_bytes());
            append(&log, &bytes);
            let (got, _) = step(cfg, &HashMap::new());
            assert_eq!(
                got,
                ["after the hole", "after torn and hole", "NUL \0 inside"],
                "{extra}"
            );
        }
    }

    /// Past the line cap: a hole of NULs longer than the cap before a record, and a torn
    /// line longer than the cap with a record appended to it, hide nothing, in the
    /// default and a custom format; line numbers count physical lines.
    #[test]
    fn records_past_the_line_cap_after_a_hole_or_a_torn_line_are_read() {
        for extra in [
            "",
            "format = \"{time:YYYY-MM-DD HH:mm:ss.SSS} | {level} | {message}\"\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let config = source(dir.path(), extra);
            let cfg = &config.sources[0];
            let log = dir.path().join("app.log");
            let (info, err) = info_and_error_headers(extra);
            let mut bytes = vec![0u8; 300_000];
            bytes.extend(format!("{err}after the hole\n{err}next\n{info}").as_bytes());
            bytes.extend(vec![b'x'; 70_000]);
            append(&log, &bytes);
            let (events, report) = read_all(cfg, &HashMap::new(), (u64::MAX, 4096));
            let got: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
            assert_eq!(got, ["after the hole", "next"], "{extra}");
            assert!(events[1].origin.ends_with(":2"), "{}", events[1].origin);
            assert!(report.warnings.is_empty(), "{:?}", report.warnings);
            let cps = report
                .checkpoints
                .iter()
                .map(|c| (c.key.clone(), c.clone()))
                .collect();
            append(&log, format!("{err}Database down\n{err}later\n").as_bytes());
            let (events, _) = read_all(cfg, &cps, (u64::MAX, 4096));
            let got: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
            assert_eq!(got, ["Database down", "later"], "{extra}");
            assert!(events[1].origin.ends_with(":4"), "{}", events[1].origin);
        }
    }

    #[test]
    fn a_rewrite_in_place_behind_the_checkpoint_is_read_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = source(dir.path(), "");
        let cfg = &config.sources[0];
        let log = dir.path().join("app.log");
        let line = |i: usize, level: &str, msg: &str| {
            format!(
                "2026-12-02 07:00:{:02}.000 | {level:<8} | app:f:1 - {msg} {i}\n",
                i % 60
            )
        };
        let head: String = (0..80).map(|i| line(i, "INFO", "warming cache")).collect();
        assert!(head.len() > HEAD_BYTES);
        let first = head.clone()
            + &(0..40)
                .map(|i| line(i, "INFO", "steady"))
                .collect::<String>();
        std::fs::write(&log, &first).unwrap();
        let (got, cps) = step(cfg, &HashMap::new());
        assert!(got.is_empty(), "{got:?}");
        // Truncated and written again (same inode), with the same start, longer now,
        // the error before where the last run stopped.
        let second = head
            + &line(0, "ERROR", "ledger mismatch")
            + &(0..80)
                .map(|i| line(i, "INFO", "reconciled"))
                .collect::<String>();
        assert!(second.len() > first.len());
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, second.as_bytes());
        let (got, report) = read_all(cfg, &cps, (u64::MAX, 4096));
        let got: Vec<String> = got.into_iter().map(|e| e.message).collect();
        assert_eq!(got, ["ledger mismatch 0"]);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("rewritten in place")),
            "{:?}",
            report.warnings
        );
        // An append only is no rewrite; nothing is read twice.
        let cps = report
            .checkpoints
            .iter()
            .map(|c| (c.key.clone(), c.clone()))
            .collect();
        append(&log, line(1, "ERROR", "after").as_bytes());
        let (got, _) = step(cfg, &cps);
        assert_eq!(got, ["after 1"]);
    }

    #[test]
    fn a_checkpoint_from_before_tails_were_kept_still_loads() {
        let old =
            r#"{"id":{"dev":1,"ino":2},"path":"/x/app.log","offset":10,"line_no":1,"head":[10,7]}"#;
        let st: FileState = serde_json::from_str(old).unwrap();
        assert_eq!((st.offset, st.tail), (10, None));
        let dir = tempfile::tempdir().unwrap();
        let config = source(dir.path(), "");
        let cfg = &config.sources[0];
        let log = dir.path().join("app.log");
        std::fs::write(&log, "2026-12-02 07:00:00.000 | INFO     | app:f:1 - up\n").unwrap();
        let (_, cps) = step(cfg, &HashMap::new());
        // Stored without its tail, as an older build wrote it: the next run goes on.
        let cps: HashMap<String, Checkpoint> = cps
            .into_iter()
            .map(|(k, mut c)| {
                if let Ok(mut st) = serde_json::from_str::<FileState>(&c.state) {
                    assert!(st.tail.is_some());
                    st.tail = None;
                    c.state = serde_json::to_string(&st).unwrap();
                    assert!(!c.state.contains("tail"));
                }
                (k, c)
            })
            .collect();
        append(
            &log,
            b"2026-12-02 07:00:01.000 | ERROR    | app:f:1 - later\n",
        );
        let (got, _) = step(cfg, &cps);
        assert_eq!(got, ["later"]);
    }

    #[test]
    fn rotation_names() {
        assert!(is_rotation_of(
            "app.2026-11-22_09-50-45_123456.log",
            "app.log"
        ));
        assert!(is_rotation_of("app.log.1", "app.log"));
        assert!(is_rotation_of("app.log-20261122", "app.log"));
        assert!(is_rotation_of("app.log.1.gz", "app.log"));
        assert!(!is_rotation_of("app.log", "app.log"));
        assert!(!is_rotation_of("other.log", "app.log"));
    }
}
