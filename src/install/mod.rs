//! `logwarden install` and `logwarden uninstall`: lay out a VPS install in one command.
//!
//! The install is a list of [`Step`]s computed up front (user, directories, binary,
//! scripts, prompts, config, units, timer). Each step first looks at what is there and
//! only acts when something differs, so a second install changes nothing and says so.
//! `--dry-run` prints the steps that would act; `--root DIR` lays the tree out under
//! DIR (for packaging and tests): the user is not created there and the timer is not
//! enabled, and owners are set only when running as root with the user present.

pub mod system;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use system::{Ids, Systemd};

/// Files of `scripts/` and `prompts/` embedded at build time (see build.rs).
pub mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// The unit files as shipped in `systemd/` (ExecStart at /usr/bin, for the .deb).
pub const SERVICE_UNIT: &str = include_str!("../../systemd/logwarden.service");
pub const TIMER_UNIT: &str = include_str!("../../systemd/logwarden.timer");
/// The action unit (`runner = "queue"`): a path unit on the queue and the root
/// service that runs `logwarden act`.
pub const ACT_PATH_UNIT: &str = include_str!("../../systemd/logwarden-act.path");
pub const ACT_SERVICE_UNIT: &str = include_str!("../../systemd/logwarden-act.service");
pub const ACT_PATH_NAME: &str = "logwarden-act.path";
/// Where the watcher queues approved actions for the action unit.
pub const ACT_QUEUE_DIR: &str = "/var/lib/logwarden/actions/queue";
/// The commented default config (`etc/logwarden.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../etc/logwarden.toml");

pub const STATE_DIR: &str = "/var/lib/logwarden";
pub const INCIDENTS_DIR: &str = "/var/lib/logwarden/incidents";
pub const ETC_DIR: &str = "/etc/logwarden";
pub const CONFIG_PATH: &str = "/etc/logwarden/logwarden.toml";
pub const SHARE_DIR: &str = "/usr/share/logwarden";
pub const SCRIPTS_DIR: &str = "/usr/share/logwarden/scripts";
pub const PROMPTS_DIR: &str = "/usr/share/logwarden/prompts";
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// Where the .deb puts the units.
pub const PACKAGE_UNIT_DIR: &str = "/usr/lib/systemd/system";
pub const TIMER_NAME: &str = "logwarden.timer";
pub const DEFAULT_USER: &str = "logwarden";
/// The groups that give the service read access to logs (see the service unit).
pub const LOG_GROUPS: &[&str] = &["adm", "systemd-journal"];
/// The schedule when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// What `install` and `uninstall` are asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub root: Option<PathBuf>,
    pub interval: Duration,
    pub dry_run: bool,
    pub bin_dir: PathBuf,
    pub user: String,
    /// Uninstall only: also remove config, state and the user.
    pub purge: bool,
}

/// Who owns an installed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// root:root
    Root,
    /// root:<service group>, for the config the service reads but must not change.
    RootServiceGroup,
    /// <service user>:<service group>, for what the service writes.
    Service,
}

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A file on disk (the running binary), compared and copied without loading it.
    Path(PathBuf),
}

/// One thing the install makes sure of.
#[derive(Debug, Clone)]
pub enum Step {
    User,
    Dir {
        path: PathBuf,
        mode: u32,
        owner: Owner,
    },
    File {
        path: PathBuf,
        content: Content,
        mode: u32,
        owner: Owner,
        /// Never replace an existing file (the config is the admin's).
        keep_existing: bool,
    },
    EnableTimer,
}

/// The OnCalendar= expression for an interval: whole minutes dividing an hour, or
/// whole hours dividing a day, so that runs are evenly spaced.
pub fn on_calendar(interval: Duration) -> Result<String, String> {
    let secs = interval.as_secs();
    let bad = || {
        format!(
            "interval {} is not supported: use minutes that divide an hour (1m, 2m, 5m, 10m, 15m, 30m…) or hours that divide a day (1h, 2h, 6h, 12h, 24h)",
            crate::duration::format(interval)
        )
    };
    if secs < 60 || !secs.is_multiple_of(60) {
        return Err(bad());
    }
    let minutes = secs / 60;
    if minutes < 60 {
        return if 60u64.is_multiple_of(minutes) {
            Ok(format!("*:0/{minutes}"))
        } else {
            Err(bad())
        };
    }
    if !minutes.is_multiple_of(60) {
        return Err(bad());
    }
    match minutes / 60 {
        24 => Ok("*-*-* 00:00:00".into()),
        h if 24u64.is_multiple_of(h) => Ok(format!("0/{h}:00")),
        _ => Err(bad()),
    }
}

/// The timer unit for an interval.
pub fn render_timer(interval: Duration) -> Result<String, String> {
    let cal = on_calendar(interval)?;
    let text = crate::duration::format(interval);
    Ok(TIMER_UNIT
        .replace(
            "# logwarden-interval: 5m",
            &format!("# logwarden-interval: {text}"),
        )
        .replace(
            "Run logwarden every 5m",
            &format!("Run logwarden every {text}"),
        )
        .replace("OnCalendar=*:0/5", &format!("OnCalendar={cal}")))
}

/// The interval recorded in a timer unit written by [`render_timer`].
pub fn timer_interval(unit_text: &str) -> Option<Duration> {
    unit_text.lines().find_map(|l| {
        l.strip_prefix("# logwarden-interval:")
            .and_then(|v| crate::duration::parse(v.trim()).ok())
    })
}

/// The action unit's service for a binary path.
pub fn render_act_service(bin: &Path) -> String {
    ACT_SERVICE_UNIT.replace(
        "ExecStart=/usr/bin/logwarden ",
        &format!("ExecStart={} ", bin.display()),
    )
}

/// The service unit for a binary path and a user.
pub fn render_service(bin: &Path, user: &str) -> String {
    SERVICE_UNIT
        .replace(
            "ExecStart=/usr/bin/logwarden ",
            &format!("ExecStart={} ", bin.display()),
        )
        .replace(
            "User=logwarden\nGroup=logwarden",
            &format!("User={user}\nGroup={user}"),
        )
}

impl Options {
    /// A system path under `--root` when given.
    pub fn at(&self, path: &str) -> PathBuf {
        match &self.root {
            Some(r) => r.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        }
    }

    fn bin_path(&self) -> PathBuf {
        self.bin_dir.join("logwarden")
    }
}

/// The steps of an install, in order.
pub fn plan(opts: &Options) -> Result<Vec<Step>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let timer = render_timer(opts.interval)?;
    let mut steps = vec![
        Step::User,
        Step::Dir {
            path: opts.at(STATE_DIR),
            mode: 0o750,
            owner: Owner::Service,
        },
        Step::Dir {
            path: opts.at(INCIDENTS_DIR),
            mode: 0o750,
            owner: Owner::Service,
        },
        Step::Dir {
            path: opts.at("/var/lib/logwarden/actions"),
            mode: 0o750,
            owner: Owner::Service,
        },
        Step::Dir {
            path: opts.at(ACT_QUEUE_DIR),
            mode: 0o750,
            owner: Owner::Service,
        },
        Step::Dir {
            path: opts.at(ETC_DIR),
            mode: 0o750,
            owner: Owner::RootServiceGroup,
        },
        Step::Dir {
            path: opts.at(&opts.bin_dir.display().to_string()),
            mode: 0o755,
            owner: Owner::Root,
        },
        Step::File {
            path: opts.at(&opts.bin_path().display().to_string()),
            content: Content::Path(exe),
            mode: 0o755,
            owner: Owner::Root,
            keep_existing: false,
        },
    ];
    for (dir, files, mode) in [
        (SCRIPTS_DIR, assets::SCRIPTS, 0o755),
        (PROMPTS_DIR, assets::PROMPTS, 0o644),
    ] {
        let mut dirs = vec![PathBuf::from(SHARE_DIR), PathBuf::from(dir)];
        for (rel, _) in files {
            let mut p = Path::new(dir).join(rel);
            while p.pop() && p != Path::new(dir) {
                if !dirs.contains(&p) {
                    dirs.push(p.clone());
                }
            }
        }
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            let path = opts.at(&d.display().to_string());
            if !steps
                .iter()
                .any(|s| matches!(s, Step::Dir { path: p, .. } if *p == path))
            {
                steps.push(Step::Dir {
                    path,
                    mode: 0o755,
                    owner: Owner::Root,
                });
            }
        }
        for (rel, bytes) in files {
            steps.push(Step::File {
                path: opts.at(&format!("{dir}/{rel}")),
                content: Content::Bytes(bytes.to_vec()),
                mode,
                owner: Owner::Root,
                keep_existing: false,
            });
        }
    }
    steps.push(Step::File {
        path: opts.at(CONFIG_PATH),
        content: Content::Bytes(DEFAULT_CONFIG.as_bytes().to_vec()),
        mode: 0o640,
        owner: Owner::RootServiceGroup,
        keep_existing: true,
    });
    steps.push(Step::Dir {
        path: opts.at(UNIT_DIR),
        mode: 0o755,
        owner: Owner::Root,
    });
    steps.push(Step::File {
        path: opts.at(&format!("{UNIT_DIR}/logwarden.service")),
        content: Content::Bytes(render_service(&opts.bin_path(), &opts.user).into_bytes()),
        mode: 0o644,
        owner: Owner::Root,
        keep_existing: false,
    });
    steps.push(Step::File {
        path: opts.at(&format!("{UNIT_DIR}/{TIMER_NAME}")),
        content: Content::Bytes(timer.into_bytes()),
        mode: 0o644,
        owner: Owner::Root,
        keep_existing: false,
    });
    for (name, text) in [
        (
            "logwarden-act.service",
            render_act_service(&opts.bin_path()),
        ),
        (ACT_PATH_NAME, ACT_PATH_UNIT.to_string()),
    ] {
        steps.push(Step::File {
            path: opts.at(&format!("{UNIT_DIR}/{name}")),
            content: Content::Bytes(text.into_bytes()),
            mode: 0o644,
            owner: Owner::Root,
            keep_existing: false,
        });
    }
    steps.push(Step::EnableTimer);
    Ok(steps)
}

/// What an install or uninstall did, line by line.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Lines to print, in order.
    pub lines: Vec<String>,
    /// How many steps changed (or, in a dry run, would change) something.
    pub changes: usize,
}

impl Outcome {
    fn act(&mut self, dry_run: bool, done: &str, would: &str) {
        self.changes += 1;
        self.lines.push(if dry_run {
            format!("would {would}")
        } else {
            done.to_string()
        });
    }

    fn note(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// Runs an install.
pub fn install(opts: &Options) -> Result<Outcome, String> {
    let real = opts.root.is_none();
    if real && !opts.dry_run && !nix::unistd::geteuid().is_root() {
        return Err(
            "install writes to /etc, /usr and /var: run it as root (sudo), or use --root DIR to lay out a tree, or --dry-run to see the steps".into(),
        );
    }
    let steps = plan(opts)?;
    let mut out = Outcome::default();
    let mut ids = Ids::resolve(&opts.user);
    let mut units_changed = false;
    for step in &steps {
        match step {
            Step::User => {
                if ids.service.is_some() {
                    continue;
                }
                let desc = format!(
                    "system user {} (home {STATE_DIR}, no login shell)",
                    opts.user
                );
                if !real {
                    out.note(format!(
                        "skipped (--root): create {desc}; the package's postinst or `logwarden install` on the machine does it"
                    ));
                    continue;
                }
                if !opts.dry_run {
                    system::create_user(&opts.user, STATE_DIR)?;
                    ids = Ids::resolve(&opts.user);
                }
                out.act(
                    opts.dry_run,
                    &format!("created {desc}"),
                    &format!("create {desc}"),
                );
            }
            Step::Dir { path, mode, owner } => {
                let want = ids.owner(*owner);
                match std::fs::metadata(path) {
                    Ok(m) if m.is_dir() => {
                        let mode_ok = m.permissions().mode() & 0o7777 == *mode;
                        let owner_ok = system::owner_matches(&m, want);
                        if mode_ok && owner_ok {
                            continue;
                        }
                        if !opts.dry_run {
                            set_mode_owner(path, *mode, want)?;
                        }
                        out.act(
                            opts.dry_run,
                            &format!(
                                "fixed {} ({})",
                                path.display(),
                                describe(*mode, *owner, &opts.user)
                            ),
                            &format!(
                                "fix {} ({})",
                                path.display(),
                                describe(*mode, *owner, &opts.user)
                            ),
                        );
                    }
                    Ok(_) => {
                        return Err(format!("{} exists and is not a directory", path.display()))
                    }
                    Err(_) => {
                        if !opts.dry_run {
                            std::fs::create_dir_all(path)
                                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                            set_mode_owner(path, *mode, want)?;
                        }
                        out.act(
                            opts.dry_run,
                            &format!(
                                "created {}/ ({})",
                                path.display(),
                                describe(*mode, *owner, &opts.user)
                            ),
                            &format!(
                                "create {}/ ({})",
                                path.display(),
                                describe(*mode, *owner, &opts.user)
                            ),
                        );
                    }
                }
            }
            Step::File {
                path,
                content,
                mode,
                owner,
                keep_existing,
            } => {
                let want = ids.owner(*owner);
                let existing = std::fs::metadata(path).ok();
                if let Some(m) = &existing {
                    if *keep_existing {
                        if !same_content(content, path) {
                            out.note(format!(
                                "kept {} as it is (yours; the default is not written over it)",
                                path.display()
                            ));
                        }
                        continue;
                    }
                    let mode_ok = m.permissions().mode() & 0o7777 == *mode;
                    if mode_ok && system::owner_matches(m, want) && same_content(content, path) {
                        continue;
                    }
                }
                let (verb, done) = if existing.is_some() {
                    ("update", "updated")
                } else {
                    ("install", "installed")
                };
                if !opts.dry_run {
                    write_atomically(path, content, *mode, want)?;
                }
                if path.starts_with(opts.at(UNIT_DIR)) {
                    units_changed = true;
                }
                out.act(
                    opts.dry_run,
                    &format!(
                        "{done} {} ({})",
                        path.display(),
                        describe(*mode, *owner, &opts.user)
                    ),
                    &format!(
                        "{verb} {} ({})",
                        path.display(),
                        describe(*mode, *owner, &opts.user)
                    ),
                );
            }
            Step::EnableTimer => {
                if !real {
                    out.note(format!(
                        "skipped (--root): systemctl daemon-reload && systemctl enable --now {TIMER_NAME}"
                    ));
                    continue;
                }
                match system::systemd() {
                    Systemd::Running(_) => {}
                    other => {
                        out.note(format!(
                            "skipped: {} ({}); run `logwarden run` every {} some other way (cron)",
                            "enabling the timer",
                            other.describe(),
                            crate::duration::format(opts.interval)
                        ));
                        continue;
                    }
                }
                let enabled = system::systemctl(&["is-enabled", TIMER_NAME])
                    .is_ok_and(|s| s.trim() == "enabled");
                let active = system::systemctl(&["is-active", TIMER_NAME])
                    .is_ok_and(|s| s.trim() == "active");
                if enabled && active && !units_changed {
                    continue;
                }
                if !opts.dry_run {
                    system::systemctl(&["daemon-reload"])?;
                    system::systemctl(&["enable", "--now", TIMER_NAME])?;
                    // Idle until the watcher queues an action (runner = "queue").
                    system::systemctl(&["enable", "--now", ACT_PATH_NAME])?;
                    if units_changed && active {
                        system::systemctl(&["restart", TIMER_NAME])?;
                    }
                }
                out.act(
                    opts.dry_run,
                    &format!("ran systemctl daemon-reload && systemctl enable --now {TIMER_NAME}"),
                    &format!("run systemctl daemon-reload && systemctl enable --now {TIMER_NAME}"),
                );
            }
        }
    }
    let user_pending = real && opts.dry_run && ids.service.is_none();
    if let Some(why) = ids.why_no_chown(&opts.user).filter(|_| !user_pending) {
        out.note(format!("owners not set: {why}; modes are set"));
    }
    Ok(out)
}

/// Runs an uninstall: removes the binary, scripts, prompts and units; keeps the config,
/// the state (incidents, database) and the user unless `purge`.
pub fn uninstall(opts: &Options) -> Result<Outcome, String> {
    let real = opts.root.is_none();
    if real && !opts.dry_run && !nix::unistd::geteuid().is_root() {
        return Err("uninstall changes /etc, /usr and /var: run it as root (sudo), or use --root DIR or --dry-run".into());
    }
    let mut out = Outcome::default();
    if real {
        match system::systemd() {
            Systemd::Running(_) => {
                let known = system::systemctl(&["is-enabled", TIMER_NAME])
                    .is_ok_and(|s| !s.trim().is_empty() && s.trim() != "not-found");
                if known {
                    if !opts.dry_run {
                        system::systemctl(&["disable", "--now", TIMER_NAME])?;
                        let _ = system::systemctl(&["disable", "--now", ACT_PATH_NAME]);
                    }
                    out.act(
                        opts.dry_run,
                        &format!("ran systemctl disable --now {TIMER_NAME}"),
                        &format!("run systemctl disable --now {TIMER_NAME}"),
                    );
                }
            }
            other => out.note(format!(
                "skipped: disabling the timer ({})",
                other.describe()
            )),
        }
    } else {
        out.note(format!(
            "skipped (--root): systemctl disable --now {TIMER_NAME}"
        ));
    }
    let mut remove = vec![
        opts.at(&format!("{UNIT_DIR}/{TIMER_NAME}")),
        opts.at(&format!("{UNIT_DIR}/logwarden.service")),
        opts.at(&format!("{UNIT_DIR}/{ACT_PATH_NAME}")),
        opts.at(&format!("{UNIT_DIR}/logwarden-act.service")),
        opts.at(&opts.bin_path().display().to_string()),
        opts.at(SHARE_DIR),
    ];
    if opts.purge {
        remove.push(opts.at(ETC_DIR));
        remove.push(opts.at(STATE_DIR));
    }
    for p in &remove {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            continue;
        };
        if !opts.dry_run {
            let r = if m.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            r.map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
        }
        out.act(
            opts.dry_run,
            &format!("removed {}", p.display()),
            &format!("remove {}", p.display()),
        );
    }
    if real && opts.purge && Ids::resolve(&opts.user).service.is_some() {
        if !opts.dry_run {
            system::delete_user(&opts.user)?;
        }
        out.act(
            opts.dry_run,
            &format!("deleted user {}", opts.user),
            &format!("delete user {}", opts.user),
        );
    }
    if real && !opts.dry_run && out.changes > 0 {
        if let Systemd::Running(_) = system::systemd() {
            system::systemctl(&["daemon-reload"])?;
        }
    }
    if !opts.purge {
        for p in [ETC_DIR, STATE_DIR] {
            if opts.at(p).exists() {
                out.note(format!(
                    "kept {} (use --purge to remove it)",
                    opts.at(p).display()
                ));
            }
        }
    }
    Ok(out)
}

fn describe(mode: u32, owner: Owner, user: &str) -> String {
    let who = match owner {
        Owner::Root => "root:root".to_string(),
        Owner::RootServiceGroup => format!("root:{user}"),
        Owner::Service => format!("{user}:{user}"),
    };
    format!("{mode:04o} {who}")
}

fn set_mode_owner(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Whether a file already holds this content.
fn same_content(content: &Content, path: &Path) -> bool {
    match content {
        Content::Bytes(b) => std::fs::read(path).is_ok_and(|have| have == *b),
        Content::Path(src) => files_equal(src, path).unwrap_or(false),
    }
}

fn files_equal(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    if a.canonicalize().ok() == b.canonicalize().ok() {
        return Ok(true);
    }
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut fa = std::io::BufReader::new(std::fs::File::open(a)?);
    let mut fb = std::io::BufReader::new(std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Writes a file through a temporary file in the same folder and a rename, so a
/// running binary or a unit being read is never seen half-written.
fn write_atomically(
    path: &Path,
    content: &Content,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".logwarden-install-")
        .tempfile_in(dir)
        .map_err(err)?;
    match content {
        Content::Bytes(b) => tmp.write_all(b).map_err(err)?,
        Content::Path(src) => {
            let mut f = std::fs::File::open(src)
                .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
            std::io::copy(&mut f, tmp.as_file_mut()).map_err(err)?;
        }
    }
    tmp.as_file().sync_all().map_err(err)?;
    set_mode_owner(tmp.path(), mode, owner)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_for_intervals() {
        let m = |n: u64| Duration::from_secs(n * 60);
        assert_eq!(on_calendar(m(5)).unwrap(), "*:0/5");
        assert_eq!(on_calendar(m(1)).unwrap(), "*:0/1");
        assert_eq!(on_calendar(m(120)).unwrap(), "0/2:00");
        assert_eq!(on_calendar(m(1440)).unwrap(), "*-*-* 00:00:00");
        assert!(on_calendar(m(7)).is_err());
        assert!(on_calendar(m(90)).is_err());
        assert!(on_calendar(Duration::from_secs(30)).is_err());
    }

    #[test]
    fn timer_records_its_interval() {
        let t = render_timer(Duration::from_secs(900)).unwrap();
        assert!(t.contains("OnCalendar=*:0/15\n"), "{t}");
        assert_eq!(timer_interval(&t), Some(Duration::from_secs(900)));
        assert_eq!(timer_interval(TIMER_UNIT), Some(DEFAULT_INTERVAL));
    }

    #[test]
    fn service_points_at_the_binary_and_user() {
        let s = render_service(Path::new("/usr/local/bin/logwarden"), "watcher");
        assert!(s.contains("ExecStart=/usr/local/bin/logwarden run "), "{s}");
        assert!(s.contains("User=watcher\nGroup=watcher\n"), "{s}");
    }

    #[test]
    fn default_config_is_valid() {
        let c = crate::config::Config::parse(DEFAULT_CONFIG, Path::new(CONFIG_PATH)).unwrap();
        assert_eq!(c.sources.len(), 1);
    }
}
