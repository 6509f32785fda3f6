//! Following a log file across runs: a checkpoint per file identity (device + inode,
//! plus a hash of the first line so a file replaced in place is noticed), whole lines
//! only, truncation detected, and the rest of a file renamed by rotation read before
//! the new file.

use std::fs::{File, Metadata};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::linereader::{next_line, Line};
use super::loguru::RecordAssembler;
use super::{Checkpoint, Event};
use crate::config::{SourceConfig, StartFrom};

/// How many bytes of the first line identify a file's content.
const HEAD_BYTES: usize = 1024;

/// Which file, independent of its name: what survives a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The checkpoint of one followed path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    /// The file last read, `None` while the path does not exist yet.
    pub id: Option<FileId>,
    /// Bytes consumed (always at a line boundary).
    pub offset: u64,
    /// Lines consumed.
    pub line_no: u64,
    /// Length and hash of the first line (up to 1 KiB), once there is one.
    pub head: Option<(u64, u64)>,
}

/// What reading a source produced, besides the events.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub lines: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
    pub checkpoint: Option<Checkpoint>,
}

/// Errors that stop one source for this run (the others go on).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |err| SourceError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Reads what is new in a loguru text file since `prev`, calling `sink` for each record
/// at or above the source's `min_level` (or every record when `all_levels`).
pub fn read(
    cfg: &SourceConfig,
    prev: Option<&Checkpoint>,
    all_levels: bool,
    sink: &mut dyn FnMut(Event),
) -> Result<ReadReport, SourceError> {
    let key = cfg.path.display().to_string();
    let mut report = ReadReport::default();
    let prev_state: Option<FileState> = match prev {
        Some(cp) => match serde_json::from_str(&cp.state) {
            Ok(s) => Some(s),
            Err(e) => {
                report.warnings.push(format!(
                    "{key}: checkpoint unreadable ({e}); starting again as on a first run"
                ));
                None
            }
        },
        None => None,
    };
    let min_level = if all_levels { 0 } else { cfg.min_level.no };
    let mut reader = Reader {
        cfg,
        min_level,
        report: &mut report,
        sink,
    };
    let state = reader.follow(prev_state)?;
    report.checkpoint = Some(Checkpoint {
        source: cfg.name.clone(),
        key,
        state: serde_json::to_string(&state).expect("state serialises"),
    });
    Ok(report)
}

struct Reader<'a> {
    cfg: &'a SourceConfig,
    min_level: u32,
    report: &'a mut ReadReport,
    sink: &'a mut dyn FnMut(Event),
}

impl Reader<'_> {
    fn follow(&mut self, prev: Option<FileState>) -> Result<FileState, SourceError> {
        let path = self.cfg.path.clone();
        let current = match std::fs::metadata(&path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&path)(e)),
        };
        let Some(prev) = prev else {
            // First run over this path.
            let Some(meta) = current else {
                self.report.warnings.push(format!(
                    "{}: does not exist yet; it will be read from its start when it appears",
                    path.display()
                ));
                return Ok(FileState::default());
            };
            return match self.cfg.from {
                StartFrom::Start => self.read_from(&path, &meta, FileState::default(), false),
                StartFrom::End => skip_to_end(&path, &meta),
            };
        };
        let Some(prev_id) = prev.id else {
            // The path did not exist last time: a file that appeared since is new.
            return match current {
                Some(meta) => self.read_from(&path, &meta, FileState::default(), false),
                None => Ok(prev),
            };
        };
        if let Some(meta) = &current {
            if FileId::of(meta) == prev_id {
                return self.same_file(&path, meta, prev);
            }
        }
        // The path now names another file (or nothing): the old one was rotated away.
        match find_by_id(&path, prev_id) {
            Some(old) => {
                let meta = std::fs::metadata(&old).map_err(io(&old))?;
                let rest = self.read_from(&old, &meta, prev.clone(), true)?;
                // Files rotated after it (several rotations between two runs), oldest first.
                for (between, meta) in rotated_since(&path, &old, &meta, current.as_ref()) {
                    self.read_from(&between, &meta, FileState::default(), true)?;
                }
                if current.is_none() {
                    return Ok(rest);
                }
            }
            None => self.report.warnings.push(format!(
                "{}: the file read last time is gone and no rotated copy of it was found next to it; lines written to it after the last run cannot be read",
                path.display()
            )),
        }
        match current {
            Some(meta) => self.read_from(&path, &meta, FileState::default(), false),
            None => Ok(FileState::default()),
        }
    }

    fn same_file(
        &mut self,
        path: &Path,
        meta: &Metadata,
        prev: FileState,
    ) -> Result<FileState, SourceError> {
        if meta.len() < prev.offset {
            self.report.warnings.push(format!(
                "{}: file is smaller than at the last run ({} < {} bytes): truncated, reading it again from the start",
                path.display(),
                meta.len(),
                prev.offset
            ));
            return self.read_from(path, meta, FileState::default(), false);
        }
        if let Some((len, hash)) = prev.head {
            if head_of(path, len).map_err(io(path))? != Some((len, hash)) {
                self.report.warnings.push(format!(
                    "{}: the first line changed since the last run: the file was replaced, reading it from the start",
                    path.display()
                ));
                return self.read_from(path, meta, FileState::default(), false);
            }
        }
        if meta.len() == prev.offset && prev.head.is_some() {
            return Ok(prev); // nothing new: no need to open the file
        }
        self.read_from(path, meta, prev, false)
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
        state.id = Some(FileId::of(meta));
        file.seek(SeekFrom::Start(state.offset)).map_err(io(path))?;
        let origin = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut assembler =
            RecordAssembler::new(&self.cfg.name, &origin, &self.cfg.levels, self.min_level);
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut line = Line::default();
        while next_line(&mut reader, &mut line).map_err(io(path))? {
            if !line.complete && !finished {
                break; // a half-written line waits for the next run
            }
            if state.offset == 0 && state.head.is_none() {
                let n = line.bytes.len().min(HEAD_BYTES);
                state.head = Some((n as u64, hash(&line.bytes[..n])));
            }
            state.offset += line.len;
            state.line_no += 1;
            self.report.lines += 1;
            self.report.bytes += line.len;
            let text = String::from_utf8_lossy(&line.bytes);
            if let Some(event) = assembler.push(state.line_no, &text) {
                (self.sink)(event);
            }
            if line.dropped > 0 {
                self.report.warnings.push(format!(
                    "{}:{}: line of {} bytes; kept the first {}",
                    path.display(),
                    state.line_no,
                    line.len,
                    line.bytes.len()
                ));
            }
        }
        if let Some(event) = assembler.finish() {
            (self.sink)(event);
        }
        Ok(state)
    }
}

/// A first run with `from = "end"`: start after the last whole line.
fn skip_to_end(path: &Path, meta: &Metadata) -> Result<FileState, SourceError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut state = FileState {
        id: Some(FileId::of(meta)),
        ..FileState::default()
    };
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
    Ok(state)
}

/// The length and hash of the first `len` bytes of a file, or `None` if it is shorter.
fn head_of(path: &Path, len: u64) -> std::io::Result<Option<(u64, u64)>> {
    let mut buf = vec![0u8; len as usize];
    let mut f = File::open(path)?;
    match f.read_exact(&mut buf) {
        Ok(()) => Ok(Some((len, hash(&buf)))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

fn hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Whether `name` looks like a rotated copy of `base`: loguru's `app.<date>.log`,
/// logrotate's `app.log.1` and `app.log-20261122`. Compressed copies are not matched.
fn is_rotation_of(name: &str, base: &str) -> bool {
    if name == base
        || name.ends_with(".gz")
        || name.ends_with(".xz")
        || name.ends_with(".bz2")
        || name.ends_with(".zst")
    {
        return false;
    }
    let stem = base.rsplit_once('.').map(|(s, _)| s).unwrap_or(base);
    name.starts_with(&format!("{base}."))
        || name.starts_with(&format!("{base}-"))
        || name.starts_with(&format!("{stem}."))
}

/// Rotated copies of `path` written after `old` was (so not read yet), oldest first.
fn rotated_since(
    path: &Path,
    old: &Path,
    old_meta: &Metadata,
    current: Option<&Metadata>,
) -> Vec<(PathBuf, Metadata)> {
    let Some(base) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let old_id = FileId::of(old_meta);
    let current_id = current.map(FileId::of);
    let old_mtime = (old_meta.mtime(), old_meta.mtime_nsec());
    let mut found: Vec<(PathBuf, Metadata)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_rotation_of(&e.file_name().to_string_lossy(), &base))
        .filter(|e| e.path() != old)
        .filter_map(|e| e.metadata().ok().map(|m| (e.path(), m)))
        .filter(|(_, m)| {
            m.is_file()
                && FileId::of(m) != old_id
                && Some(FileId::of(m)) != current_id
                && (m.mtime(), m.mtime_nsec()) > old_mtime
        })
        .collect();
    found.sort_by_key(|(_, m)| (m.mtime(), m.mtime_nsec()));
    found
}

/// Looks next to `path` for the file with identity `id` (renamed by rotation).
fn find_by_id(path: &Path, id: FileId) -> Option<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() && FileId::of(&meta) == id {
                return Some(entry.path());
            }
        }
    }
    None
}
