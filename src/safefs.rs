//! Writing files in folders others may write to (the incidents folder is often a git
//! checkout; the state dir may be shared with a deploy user) without following a
//! symlink planted there: a page, `INDEX.md`, a briefing or `control.key` must land
//! where logwarden means, never on a file a symlink points at.
//!
//! - Folders below the configured root are opened one by one with `O_NOFOLLOW`: a
//!   symlink in their place is refused, not followed. The root itself is the admin's
//!   choice and may be a symlink.
//! - The file is written to a new temporary name (`O_CREAT|O_EXCL|O_NOFOLLOW`) in that
//!   folder and renamed over the target: a symlink at the target is replaced, its
//!   target untouched.
//! - Reads of files logwarden wrote (to keep the notes of a page, to compare
//!   `INDEX.md`) refuse symlinks too.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

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
/// any folder between `root` and it (folders missing there are made). A `path`
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

#[cfg(test)]
mod tests {
    use super::*;

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
