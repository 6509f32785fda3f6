//! Writing the files logwarden owns (ignore rules, mutes, incident pages, INDEX.md,
//! briefings) so that whoever writes them, root from a shell or the service user from
//! the timer, the other can still read and rewrite them; and reading them back
//! without following a symlink planted in their place (the incidents folder is often a
//! git checkout others write to).
//!
//! A rewrite goes through a temporary file in the same folder that gets the original's
//! owner, group and mode before it is renamed over it (a symlink in its place is
//! refused, never followed). A new file gets the owner and mode its caller documents:
//! those of a file beside it (the ignore file takes the config file's), or the owner and
//! group of its folder with a fixed mode (pages in an incidents folder that belongs to
//! the service user stay the service user's when root writes one).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

/// Who a file that does not exist yet will belong to.
#[derive(Debug, Clone, Copy)]
pub enum NewFile<'a> {
    /// The owner, group and mode of this file (when it exists; else as `DirOwner(0o640)`).
    Like(&'a Path),
    /// The owner and group of the folder it is made in, with this mode.
    DirOwner(u32),
}

/// Owner, group and mode to give a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

fn perms_of(m: &std::fs::Metadata) -> Perms {
    Perms {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.permissions().mode() & 0o7777,
    }
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The permissions `path` keeps (it exists) or gets (it is new).
pub fn perms_for(path: &Path, new: NewFile) -> Result<Perms, String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(format!(
                "{} is a symbolic link; logwarden replaces only regular files (point the config at the real file)",
                path.display()
            ))
        }
        Ok(m) if !m.is_file() => {
            return Err(format!("{} is not a regular file", path.display()))
        }
        Ok(m) => return Ok(perms_of(&m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    }
    let from_dir = |mode: u32| -> Result<Perms, String> {
        let dir = dir_of(path);
        let m = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Perms {
            uid: m.uid(),
            gid: m.gid(),
            mode,
        })
    };
    match new {
        NewFile::Like(model) => match std::fs::metadata(model) {
            Ok(m) => Ok(Perms {
                mode: perms_of(&m).mode & 0o666,
                ..perms_of(&m)
            }),
            Err(_) => from_dir(0o640),
        },
        NewFile::DirOwner(mode) => from_dir(mode),
    }
}

/// Serialises the read-change-replace of a file among the processes that edit it (two
/// `ignore add` at once, a run saving a phone mute while an admin removes one): each
/// would otherwise write its change over the other's. The lock is an advisory `flock`
/// on the file's folder, held until the returned handle is dropped: no lock file is
/// left in `/etc` or in a notes vault, none can belong to the wrong user, and one held
/// by a process that dies is released by the kernel. Waits up to `wait` for its holder.
pub fn edit_lock(path: &Path, wait: std::time::Duration) -> Result<std::fs::File, String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let cannot = |e: &dyn std::fmt::Display| {
        format!(
            "cannot lock the folder {} to change {} safely: {e}",
            dir.display(),
            path.display()
        )
    };
    let f = std::fs::File::open(dir).map_err(|e| cannot(&e))?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "{} is being changed by another logwarden process (its folder {} stayed locked for {}); nothing was changed: try again",
                    path.display(),
                    dir.display(),
                    crate::duration::format(wait)
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(cannot(&e)),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, keeping the
/// existing file's owner, group and mode (or giving a new one `new`'s).
pub fn replace(path: &Path, bytes: &[u8], new: NewFile) -> Result<(), String> {
    replace_with(path, bytes, new, true)
}

/// [`replace`] without the flush to disk: the caller writes many files and makes them
/// durable together with [`sync_dir`] before it records them anywhere. Until then a
/// crash of the process loses nothing (the kernel has the data); a power loss may lose
/// the new text, which is why nothing may depend on it before the sync.
pub fn replace_unsynced(path: &Path, bytes: &[u8], new: NewFile) -> Result<(), String> {
    replace_with(path, bytes, new, false)
}

/// Makes every file written in `dir` (and the renames that put them there) durable in
/// one pass: `syncfs` on its file system, then an fsync of the folder. One call for a
/// run's pages instead of an fsync per page.
pub fn sync_dir(dir: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let d = std::fs::File::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(format!(
            "cannot flush {} to disk: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    d.sync_all()
        .map_err(|e| format!("cannot flush {} to disk: {e}", dir.display()))
}

/// Makes the given files in `dir` and the folder itself durable, one fsync each: what
/// [`sync_dir`] does in one pass, for when the file system refuses `syncfs`.
pub fn sync_files(dir: &Path, files: &[&Path]) -> Result<(), String> {
    for f in files {
        std::fs::File::open(f)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("cannot flush {} to disk: {e}", f.display()))?;
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot flush {} to disk: {e}", dir.display()))
}

/// The prefix and suffix of the temporary files [`replace`] writes beside a file.
const TEMP_PREFIX: &str = ".logwarden-";
const TEMP_SUFFIX: &str = ".tmp";

/// Removes the temporary files a killed writer left in `dir` (a process killed between
/// writing one and renaming it never removes it), those last modified before `before`.
/// `before` should be well in the past by the folder's own clock, so that a file
/// another command is writing right now is never taken. Returns how many went.
pub fn remove_stale_temps(dir: &Path, before: std::time::SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        // DirEntry::metadata does not follow a symlink: only our own regular files go.
        let stale = e
            .metadata()
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|m| m.modified().ok())
            .is_some_and(|t| t < before);
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `bytes` in a temporary file beside `path` (its folder made if missing), with the
/// owner and mode `path` is to have: ready to be renamed over it.
fn temp_beside(path: &Path, bytes: &[u8], new: NewFile) -> Result<tempfile::NamedTempFile, String> {
    let dir = dir_of(path);
    if !dir.exists() {
        create_dir(dir)?;
    }
    let perms = perms_for(path, new)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write in {}: {}", dir.display(), without_path(&e)))?;
    tmp.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {}", path.display(), without_path(&e)))?;
    set_perms(tmp.as_file(), perms).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(tmp)
}

/// An error of the tempfile crate without the ` at path "…"` it appends: that path is a
/// random temporary name, and a message that changes every run reads as a new problem
/// each time (the watcher-problem notification would go out every run).
fn without_path(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" at path \"") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn replace_with(path: &Path, bytes: &[u8], new: NewFile, sync: bool) -> Result<(), String> {
    let tmp = temp_beside(path, bytes, new)?;
    if sync {
        tmp.as_file()
            .sync_all()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| format!("cannot replace {}: {}", path.display(), e.error))?;
    Ok(())
}

/// Replaces several files, each whole or not at all as [`replace`] does, with one
/// flush to disk for all of them instead of two per file: each new text goes to a
/// temporary file beside its target; the file system is flushed once (`syncfs`, or an
/// fsync per temporary file where a sandbox refuses it); then each is renamed over its
/// target and each folder flushed once. A crash at any point leaves every file either
/// as it was or as it is meant to be. Returns, per file, why it was not replaced.
pub fn replace_all(files: Vec<(PathBuf, Vec<u8>)>, new: NewFile) -> Vec<(PathBuf, String)> {
    // Each temporary file stays open until its rename: a few at a time, so a run that
    // rewrites hundreds of pages stays far below the service's open-file limit (1024
    // by default under systemd).
    let mut failed = Vec::new();
    let mut files = files.into_iter().peekable();
    while files.peek().is_some() {
        failed.extend(replace_batch(
            files.by_ref().take(REPLACE_BATCH).collect(),
            new,
        ));
    }
    failed
}

/// How many files [`replace_all`] holds open at once.
const REPLACE_BATCH: usize = 16;

fn replace_batch(files: Vec<(PathBuf, Vec<u8>)>, new: NewFile) -> Vec<(PathBuf, String)> {
    let mut failed = Vec::new();
    let mut written = Vec::new();
    for (path, bytes) in files {
        let dir = dir_of(&path).to_path_buf();
        match temp_beside(&path, &bytes, new) {
            Ok(tmp) => written.push((path, dir, tmp)),
            Err(e) => failed.push((path, e)),
        }
    }
    let Some((_, first_dir, first)) = written.first() else {
        return failed;
    };
    // One folder is one file system: one syncfs flushes every temporary file.
    let synced = written.iter().all(|(_, d, _)| d == first_dir)
        // SAFETY: the descriptor is open for the duration of the call.
        && unsafe { libc::syncfs(first.as_file().as_raw_fd()) } == 0;
    let mut dirs: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for (path, dir, tmp) in written {
        let flushed = if synced {
            Ok(())
        } else {
            tmp.as_file()
                .sync_all()
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        match flushed.and_then(|()| {
            tmp.persist(&path)
                .map(drop)
                .map_err(|e| format!("cannot replace {}: {}", path.display(), e.error))
        }) {
            Ok(()) => match dirs.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, paths)) => paths.push(path),
                None => dirs.push((dir, vec![path])),
            },
            Err(e) => failed.push((path, e)),
        }
    }
    for (dir, paths) in dirs {
        if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
            let e = format!("cannot flush {} to disk: {e}", dir.display());
            failed.extend(paths.into_iter().map(|p| (p, e.clone())));
        }
    }
    failed
}

/// Gives an open file its owner, group and mode. Changing the owner needs root; a user
/// that is not root keeps the file as its own (and a group it is in), which is what it
/// can do.
fn set_perms(f: &std::fs::File, p: Perms) -> std::io::Result<()> {
    let m = f.metadata()?;
    if m.uid() != p.uid || m.gid() != p.gid {
        let uid = if is_root() { Some(p.uid) } else { None };
        match std::os::unix::fs::fchown(f, uid, Some(p.gid)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    f.set_permissions(std::fs::Permissions::from_mode(p.mode))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// When root made `path` (a file or folder) inside a folder that belongs to someone
/// else, hands it to that folder's owner and group, so the service user that owns the
/// state folder can use what a run by hand as root left there.
pub fn adopt(path: &Path) -> Result<(), String> {
    if !is_root() {
        return Ok(());
    }
    let dir = dir_of(path);
    let (Ok(d), Ok(m)) = (std::fs::metadata(dir), std::fs::symlink_metadata(path)) else {
        return Ok(());
    };
    if m.file_type().is_symlink() || (m.uid() == d.uid() && m.gid() == d.gid()) {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(d.uid()), Some(d.gid()))
        .map_err(|e| format!("cannot hand {} to its folder's owner: {e}", path.display()))
}

/// Creates a folder and its missing parents, each new one adopted by its parent's
/// owner (see [`adopt`]).
pub fn create_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => adopt(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn describe(e: Errno, path: &Path) -> String {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => format!(
            "{} is a symlink or not a folder; refusing to write through it",
            path.display()
        ),
        e => format!("{}: {}", path.display(), e.desc()),
    }
}

/// Writes `text` to `path` atomically, refusing to follow a symlink at `path` or at
/// any folder between `root` and it (for root writing into a folder a less trusted
/// user owns, such as the action unit writing its results in the state folder) (folders missing there are made). A `path`
/// outside `root` is written with its own folder as the root.
pub fn write_under(root: &Path, path: &Path, text: &str) -> Result<(), String> {
    let (root, rel) = match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => (root, rel),
        _ => {
            let parent = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .ok_or_else(|| format!("{}: not a file name", path.display()))?;
            (parent, Path::new(name))
        }
    };
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let mut dir = own(nix::fcntl::open(
        root,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| describe(e, root))?);
    let mut at = root.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    let (file, folders) = match parts.split_last() {
        Some((Component::Normal(f), folders)) => (*f, folders),
        _ => return Err(format!("{}: not a file name", path.display())),
    };
    for c in folders {
        let Component::Normal(name) = c else {
            return Err(format!(
                "{}: unexpected `{}`",
                path.display(),
                c.as_os_str().to_string_lossy()
            ));
        };
        at.push(name);
        match mkdirat(
            Some(dir.as_raw_fd()),
            *name,
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(format!("cannot create {}: {}", at.display(), e.desc())),
        }
        dir = own(openat(
            Some(dir.as_raw_fd()),
            *name,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| describe(e, &at))?);
    }
    let target = at.join(file);
    let mut tmp_name = None;
    let mut fd = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            ".{}.{}-{nanos}-{attempt}.tmp",
            file.to_string_lossy(),
            std::process::id()
        );
        match openat(
            Some(dir.as_raw_fd()),
            name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(f) => {
                fd = Some(own(f));
                tmp_name = Some(name);
                break;
            }
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(format!("cannot write in {}: {}", at.display(), e.desc())),
        }
    }
    let (Some(fd), Some(tmp_name)) = (fd, tmp_name) else {
        return Err(format!(
            "cannot write in {}: no free temporary name",
            at.display()
        ));
    };
    let mut f = std::fs::File::from(fd);
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", target.display()))
        .and_then(|()| {
            renameat(
                Some(dir.as_raw_fd()),
                tmp_name.as_str(),
                Some(dir.as_raw_fd()),
                file,
            )
            .map_err(|e| format!("cannot replace {}: {}", target.display(), e.desc()))
        });
    if written.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            tmp_name.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    written
}

/// A folder of logwarden's own inside `root` (`briefings`, `index`), made if missing
/// (adopted by the root's owner). A symlink or a file in its place is refused, never
/// written through: what lands there must land in the incidents folder.
pub fn own_subdir(root: &Path, name: &str) -> Result<std::path::PathBuf, String> {
    let dir = root.join(name);
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.file_type().is_dir() => Ok(dir),
        Ok(_) => Err(format!(
            "{} is a symlink or not a folder; refusing to write through it",
            dir.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dir(&dir)?;
            Ok(dir)
        }
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

/// Opens a file for reading unless it is a symlink (then an error, ELOOP).
pub fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Reads a file unless it is a symlink.
pub fn read_no_follow(path: &Path) -> std::io::Result<String> {
    let mut s = String::new();
    open_no_follow(path)?.read_to_string(&mut s)?;
    Ok(s)
}

/// Reads a file that may not exist yet (`None`); any other error is an error, never
/// taken for an empty file.
pub fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_errors_do_not_name_the_random_file() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let e = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&gone)
            .unwrap_err();
        assert!(e.to_string().contains(" at path "), "{e}");
        let shown = without_path(&e);
        assert!(!shown.contains(TEMP_PREFIX) && !shown.is_empty(), "{shown}");
    }

    #[test]
    fn a_rewrite_keeps_the_mode_and_a_new_file_gets_the_models() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o604)).unwrap();
        replace(&p, b"new", NewFile::DirOwner(0o600)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o604);

        let model = dir.path().join("model");
        std::fs::write(&model, "").unwrap();
        std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o640)).unwrap();
        let q = dir.path().join("new.toml");
        replace(&q, b"x", NewFile::Like(&model)).unwrap();
        let mode = std::fs::metadata(&q).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn unsynced_writes_are_whole_files_and_a_folder_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("page.md");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o604)).unwrap();
        replace_unsynced(&p, b"new", NewFile::DirOwner(0o640)).unwrap();
        let q = dir.path().join("other.md");
        replace_unsynced(&q, b"other", NewFile::DirOwner(0o640)).unwrap();
        sync_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&q).unwrap(), "other");
        let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o7777;
        assert_eq!((mode(&p), mode(&q)), (0o604, 0o640));
        let missing = dir.path().join("gone");
        assert!(sync_dir(&missing).unwrap_err().contains("cannot open"));
        sync_files(dir.path(), &[&p, &q]).unwrap();
        assert!(sync_files(dir.path(), &[&missing]).is_err());
    }

    #[test]
    fn removes_only_stale_temporary_files() {
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".logwarden-abc123.tmp");
        let fresh = dir.path().join(".logwarden-def456.tmp");
        let page = dir.path().join("page.md");
        for f in [&old, &fresh, &page] {
            std::fs::write(f, "x").unwrap();
        }
        // Every time from the process's clock (the file system stamps the kernel's,
        // which a test run with a faked date does not share).
        let now = SystemTime::now();
        let an_hour_ago = now - Duration::from_secs(3600);
        for (f, t) in [(&old, an_hour_ago), (&page, an_hour_ago), (&fresh, now)] {
            let file = std::fs::File::options().write(true).open(f).unwrap();
            file.set_modified(t).unwrap();
        }
        let target = dir.path().join("target.tmp");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join(".logwarden-link.tmp");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let before = now - Duration::from_secs(600);
        assert_eq!(remove_stale_temps(dir.path(), before), 1);
        assert!(!old.exists() && fresh.exists() && page.exists());
        assert!(link.symlink_metadata().is_ok() && target.exists());
    }

    #[test]
    fn refuses_to_replace_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = replace(&link, b"x", NewFile::DirOwner(0o640)).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let root = d.path().join("incidents");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&victim, root.join("INDEX.md")).unwrap();
        assert!(read_no_follow(&root.join("INDEX.md")).is_err());
        write_under(&root, &root.join("INDEX.md"), "index").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(read_no_follow(&root.join("INDEX.md")).unwrap(), "index");
    }

    #[test]
    fn a_symlinked_folder_below_the_root_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let root = d.path().join("incidents");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("briefings")).unwrap();
        let e = write_under(&root, &root.join("briefings/b.md"), "x").unwrap_err();
        assert!(e.contains("symlink"), "{e}");
        let e = own_subdir(&root, "briefings").unwrap_err();
        assert!(e.contains("symlink"), "{e}");
        let index = own_subdir(&root, "index").unwrap();
        assert!(index.is_dir());
        assert_eq!(own_subdir(&root, "index").unwrap(), index);
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        // a real folder is made and written
        write_under(&root, &root.join("charts/c.svg"), "svg").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("charts/c.svg")).unwrap(),
            "svg"
        );
        // no temporary file is left behind
        assert_eq!(std::fs::read_dir(root.join("charts")).unwrap().count(), 1);
    }
}
