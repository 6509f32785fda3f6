//! The VPS suite: the .deb that CI builds, installed on a booted Debian 12 (systemd in a
//! `systemd-nspawn` container) and driven only as a user would: the installed units,
//! the timer, the CLI as root, the service as the `logwarden` user in its sandbox.
//! The fakes (ntfy, the Messages API) listen on the host's loopback, which the
//! container shares.
//!
//! One container is booted and the scenarios run in order inside it (each starts from a
//! clean state dir; the package is removed in the last one). Own harness (`harness =
//! false`): the container must outlive single tests and be powered off at the end.
//! `cargo test --test vps [-- FILTER...]` runs it; `.ci/run` does, as root. Needs root
//! and systemd-nspawn: missing them fails in CI (`CI` set) and is SKIPPED elsewhere.
//! The root file system comes from `.ci/vps-rootfs` (cached; `$LOGWARDEN_VPS_ROOTFS`
//! overrides), the package from `target/debian/logwarden_*.deb` (newest;
//! `$LOGWARDEN_VPS_DEB` overrides).

#[path = "../it/fake_anthropic.rs"]
mod fake_anthropic;
#[path = "../it/util.rs"]
mod util;

mod scenarios;
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fake_anthropic::FakeAnthropic;
use util::FakeNtfy;
use vm::Vm;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<&scenarios::Scenario> = scenarios::ALL
        .iter()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for s in &chosen {
            println!("{}: test", s.name);
        }
        return;
    }
    if chosen.is_empty() {
        println!("no VPS scenario matches {filters:?}");
        return;
    }
    let ci = std::env::var_os("CI").is_some();
    if let Err(why) = can_boot() {
        if ci {
            eprintln!("VPS suite: cannot run: {why}");
            std::process::exit(1);
        }
        println!("SKIPPED: VPS suite: {why}");
        return;
    }
    let started = Instant::now();
    let setup = match Setup::prepare() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("VPS suite: {why}");
            std::process::exit(1);
        }
    };
    println!(
        "VPS suite: {} on {}",
        setup.deb.display(),
        setup.rootfs.display()
    );
    let ntfy = FakeNtfy::start(None);
    let api = FakeAnthropic::start();
    let mut binds = vec![
        (setup.loguru.clone(), LOGURU_INSIDE.to_string()),
        (setup.deb.clone(), scenarios::DEB_INSIDE.to_string()),
    ];
    if let Some(claude) = &setup.claude {
        binds.push((claude.parent().unwrap().to_path_buf(), "/opt/claude".into()));
    }
    let booting = Instant::now();
    let vm = match Vm::boot(&setup.rootfs, &binds, Duration::from_secs(180)) {
        Ok(vm) => vm,
        Err(why) => {
            eprintln!("VPS suite: the container did not boot: {why}");
            std::process::exit(1);
        }
    };
    println!(
        "booted {} in {:.1} s",
        vm.name,
        booting.elapsed().as_secs_f64()
    );
    let ctx = scenarios::Ctx {
        vm: &vm,
        ntfy: &ntfy,
        api: &api,
        claude: setup
            .claude
            .as_ref()
            .map(|c| format!("/opt/claude/{}", c.file_name().unwrap().to_string_lossy())),
    };
    let mut failed = Vec::new();
    for s in &chosen {
        let t = Instant::now();
        println!("\n=== scenario {}", s.name);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (s.run)(&ctx)));
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("scenario {} ... ok ({secs:.1} s)", s.name),
            Err(_) => {
                println!("scenario {} ... FAILED ({secs:.1} s)", s.name);
                let j = vm.sh("journalctl -u logwarden.service --no-pager -n 30");
                println!(
                    "--- journal of logwarden.service (last lines)\n{}",
                    j.stdout
                );
                failed.push(s.name);
            }
        }
    }
    drop(vm);
    println!(
        "\nVPS suite: {} passed, {} failed, {:.0} s in all (boot included)",
        chosen.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        println!("failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}

/// Where loguru (pure Python, from the host's venv) appears inside.
const LOGURU_INSIDE: &str = "/usr/local/lib/python3.11/dist-packages/loguru";

/// Why this machine cannot boot a container, if it cannot.
fn can_boot() -> Result<(), String> {
    if !util::is_root() {
        return Err("needs root (systemd-nspawn)".into());
    }
    for tool in ["systemd-nspawn", "nsenter", "debootstrap"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!(
                "{tool} is not installed (apt-get install systemd-container debootstrap)"
            ));
        }
    }
    Ok(())
}

struct Setup {
    rootfs: PathBuf,
    deb: PathBuf,
    loguru: PathBuf,
    claude: Option<PathBuf>,
}

impl Setup {
    fn prepare() -> Result<Setup, String> {
        let deb = match std::env::var_os("LOGWARDEN_VPS_DEB") {
            Some(p) => PathBuf::from(p),
            None => newest_deb(&Path::new(MANIFEST).join("target/debian"))?,
        };
        let rootfs = match std::env::var_os("LOGWARDEN_VPS_ROOTFS") {
            Some(p) => PathBuf::from(p),
            None => {
                let script = Path::new(MANIFEST).join(".ci/vps-rootfs");
                let o = Command::new("bash")
                    .arg(&script)
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| format!("{}: {e}", script.display()))?;
                if !o.status.success() {
                    return Err(format!("{} failed", script.display()));
                }
                let out = String::from_utf8_lossy(&o.stdout);
                PathBuf::from(out.lines().last().unwrap_or_default().trim())
            }
        };
        if !rootfs.join("usr/lib/systemd/systemd").exists() {
            return Err(format!(
                "{} is no root file system with systemd",
                rootfs.display()
            ));
        }
        let py = util::python().ok_or("no Python with loguru (run .ci/run, which makes one)")?;
        let o = Command::new(&py)
            .args([
                "-c",
                "import loguru, os; print(os.path.dirname(loguru.__file__))",
            ])
            .output()
            .map_err(|e| format!("{}: {e}", py.display()))?;
        let loguru = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        Ok(Setup {
            rootfs,
            deb,
            loguru,
            claude: claude_binary()?,
        })
    }
}

/// The newest `logwarden_*.deb` in `dir`.
fn newest_deb(dir: &Path) -> Result<PathBuf, String> {
    let mut debs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "{}: {e} (build the package: cargo deb --strip)",
                dir.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("logwarden_") && n.ends_with(".deb")
        })
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    debs.sort();
    debs.pop().map(|(_, p)| p).ok_or_else(|| {
        format!(
            "no logwarden_*.deb in {} (build it: cargo deb --strip)",
            dir.display()
        )
    })
}

/// The Claude Code CLI's native executable (the npm package's `bin/claude.exe`):
/// `$LOGWARDEN_TEST_CLAUDE`, else `target/npm/node_modules/.bin/claude`. Missing: an
/// error in CI, elsewhere its scenario is skipped.
fn claude_binary() -> Result<Option<PathBuf>, String> {
    let p = std::env::var_os("LOGWARDEN_TEST_CLAUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST).join("target/npm/node_modules/.bin/claude"));
    match std::fs::canonicalize(&p) {
        Ok(real) => Ok(Some(real)),
        Err(_) if std::env::var_os("CI").is_some() => Err(format!(
            "the Claude Code CLI is needed: {} is missing (run .ci/run, which installs it)",
            p.display()
        )),
        Err(_) => Ok(None),
    }
}
