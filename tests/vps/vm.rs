//! A booted Debian 12 container: the cached root file system booted with
//! `systemd-nspawn -b` under a throwaway writable layer, commands run inside with
//! `nsenter`, powered off on drop (also when a scenario panics).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment commands inside get (nothing leaks in from the test's own).
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Vm {
    pub name: String,
    /// Holds `nspawn.log`; deleted with the Vm.
    dir: tempfile::TempDir,
    nspawn: Child,
    leader: u32,
}

/// What a command inside printed.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn all(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Vm {
    /// Boots `rootfs` with a throwaway writable layer (`--volatile=overlay`: the cached
    /// tree is the read-only lower layer, every write goes to a tmpfs that vanishes at
    /// poweroff, so nothing is copied and the cache stays pristine) and the read-only
    /// `binds` (host path → path inside), and waits until systemd says the system is
    /// running (or degraded). The error says why it did not boot.
    pub fn boot(
        rootfs: &Path,
        binds: &[(PathBuf, String)],
        timeout: Duration,
    ) -> Result<Vm, String> {
        let dir = tempfile::Builder::new()
            .prefix("lw-vps-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let name = format!("lw-vps-{}", std::process::id());
        let log = std::fs::File::create(dir.path().join("nspawn.log")).unwrap();
        let mut cmd = Command::new("systemd-nspawn");
        // The container shares the host's network, so the fakes on 127.0.0.1 are
        // reachable inside.
        cmd.arg("-b")
            .arg("-D")
            .arg(rootfs)
            .arg("--volatile=overlay")
            .arg(format!("--machine={name}"))
            .arg("--console=read-only");
        if !Path::new("/run/systemd/system").exists() {
            // A host without systemd (CI runners and containers often are): no
            // systemd-machined or system bus to register with or to make a scope.
            cmd.args(["--register=no", "--keep-unit"]);
        }
        for (host, inside) in binds {
            cmd.arg(format!("--bind-ro={}:{inside}", host.display()));
        }
        // If the suite itself is killed (a CI timeout), nspawn gets SIGTERM, on which it
        // shuts the container down: no booted container outlives the run.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let nspawn = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("systemd-nspawn: {e}"))?;
        let mut vm = Vm {
            name,
            dir,
            nspawn,
            leader: 0,
        };
        let deadline = Instant::now() + timeout;
        // The container's init is nspawn's child running systemd.
        while vm.leader == 0 {
            if let Some(pid) = vm.find_leader() {
                vm.leader = pid;
                break;
            }
            vm.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "no container init after {timeout:?}\n{}",
                    vm.nspawn_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        loop {
            vm.check_alive()?;
            let state = vm.sh("systemctl is-system-running");
            let last = format!("{}{}", state.stdout.trim(), state.stderr.trim());
            if matches!(state.stdout.trim(), "running" | "degraded") {
                return Ok(vm);
            }
            if Instant::now() > deadline {
                let why = vm.sh(
                    "systemctl --failed --no-pager; systemctl list-jobs --no-pager; journalctl -b --no-pager -n 60",
                );
                return Err(format!(
                    "systemd did not finish booting in {timeout:?} (is-system-running: {last})\n{}\n--- inside\n{}",
                    vm.nspawn_log(),
                    why.all()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn find_leader(&self) -> Option<u32> {
        let pid = self.nspawn.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().find_map(|c| {
            let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).ok()?;
            (comm.trim() == "systemd").then(|| c.parse().ok())?
        })
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.nspawn.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!(
                "systemd-nspawn exited ({st}) while booting\n{}",
                self.nspawn_log()
            )),
            Err(e) => Err(format!("waiting for systemd-nspawn: {e}")),
        }
    }

    /// The last lines systemd-nspawn and the container's console printed.
    pub fn nspawn_log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("nspawn.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- systemd-nspawn output (last lines)\n{tail}\n")
    }

    /// Runs a shell script inside as root, with a clean environment.
    pub fn sh(&self, script: &str) -> Out {
        self.sh_input(script, b"")
    }

    /// Runs a shell script inside as root with `input` on its stdin. It is killed
    /// after five minutes, so a hang fails the scenario instead of the whole CI job.
    pub fn sh_input(&self, script: &str, input: &[u8]) -> Out {
        let mut child = Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a", "--"])
            .args(["/usr/bin/env", "-i", PATH, "LANG=C.UTF-8", "HOME=/root"])
            .args(["timeout", "--kill-after=10", "300", "/bin/sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsenter runs");
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input);
        drop(stdin);
        let o = child.wait_with_output().expect("nsenter output");
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs a script inside and asserts it succeeded; its stdout.
    pub fn ok(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(o.ok(), "inside the VPS: {script}\n{}", o.all());
        o.stdout
    }

    /// Writes a file inside (as root, as `cat >` would: an existing file keeps its
    /// owner and mode).
    pub fn write(&self, path: &str, text: &str) {
        let o = self.sh_input(&format!("cat > '{path}'"), text.as_bytes());
        assert!(o.ok(), "writing {path} inside the VPS\n{}", o.all());
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if self.leader != 0 {
            // SIGRTMIN+4 asks systemd for a clean poweroff.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.leader as i32, libc::SIGRTMIN() + 4) };
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("{}: no clean poweroff within 60 s, killing it", self.name);
        if self.leader != 0 {
            // Killing the init of a PID namespace kills everything in it.
            // SAFETY: as above.
            unsafe { libc::kill(self.leader as i32, libc::SIGKILL) };
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}
