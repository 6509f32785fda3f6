//! The test builder (`Test::new()`), the loguru runner and the fake ntfy server.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

pub const BIN: &str = env!("CARGO_BIN_EXE_logwarden");

/// One test's world: a temporary directory with a config, logs and state.
pub struct Test {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            env: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn append(&self, rel: &str, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Writes `logwarden.toml`: the common part (state, incidents, ignore file in the
    /// test dir, hostname) followed by `rest`.
    pub fn config(&self, rest: &str) -> &Self {
        self.write(
            "logwarden.toml",
            &format!(
                "state_dir = \"state\"\nincidents_dir = \"incidents\"\nignore_file = \"ignore.toml\"\nhostname = \"test-host\"\n{rest}"
            ),
        )
    }

    /// A config with one loguru source `app` reading `app.log` from the start.
    pub fn with_app_source(&self, rest: &str) -> &Self {
        self.config(&format!(
            "[[source]]\nname = \"app\"\npath = \"app.log\"\nfrom = \"start\"\n{rest}"
        ))
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("LOGWARDEN_CONFIG", self.path("logwarden.toml"))
            .env_remove("LOGWARDEN_FAULT")
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("logwarden runs");
        Run::from(out)
    }

    /// Runs `logwarden` and asserts it exited 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, Some(0), "logwarden {args:?} failed:\n{}", r.all());
        r
    }

    /// The incident files written so far, sorted.
    /// (not `INDEX.md`)
    pub fn incident_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path("incidents"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "md") && !p.ends_with("INDEX.md")
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `incidents --json`, parsed.
    pub fn incidents(&self) -> Vec<serde_json::Value> {
        let r = self.ok(&["incidents", "--json"]);
        serde_json::from_str(&r.stdout).expect("incidents --json prints JSON")
    }

    /// Writes a log with the real loguru: `body` is Python run after
    /// `from loguru import logger; logger.remove()` in the test dir.
    pub fn loguru(&self, body: &str) {
        let Some(py) = python() else { return };
        let script = format!(
            "import sys, os, time\nfrom loguru import logger\nlogger.remove()\nos.chdir({:?})\n{body}\n",
            self.dir.path().display().to_string()
        );
        let gen = self.path("gen.py");
        std::fs::write(&gen, &script).unwrap();
        let out = Command::new(py).arg(&gen).output().expect("python runs");
        assert!(
            out.status.success(),
            "python failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The Python with loguru: `$LOGWARDEN_TEST_PYTHON`, else `target/venv/bin/python`.
/// Missing loguru fails the test in CI (`CI` set) and skips it elsewhere.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("LOGWARDEN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import loguru"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(candidate);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "loguru is needed: {} cannot import it (run .ci/run, which installs it)",
            candidate.display()
        );
    }
    None
}

/// Tests needing loguru call this first and return when it gives false.
pub fn have_loguru() -> bool {
    let ok = python().is_some();
    if !ok {
        eprintln!("SKIPPED: no Python with loguru (set LOGWARDEN_TEST_PYTHON or run .ci/run)");
    }
    ok
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// A request the fake ntfy server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fake ntfy server on loopback. It checks each publish against ntfy's documented
/// API (POST to /<topic>, priority 1–5, body at most 4096 bytes, Markdown: yes, a
/// Bearer token when one is expected) and answers with the queued statuses (then 200).
pub struct FakeNtfy {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub statuses: Arc<Mutex<Vec<u16>>>,
    pub violations: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNtfy {
    pub fn start(expected_token: Option<&str>) -> FakeNtfy {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses: Arc<Mutex<Vec<u16>>> = Arc::new(Mutex::new(Vec::new()));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let (s, r, st, v) = (
            server.clone(),
            received.clone(),
            statuses.clone(),
            violations.clone(),
        );
        let token = expected_token.map(str::to_string);
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let rec = Received {
                    method: req.method().to_string(),
                    url: req.url().to_string(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                // issue 8: `doctor` probes ntfy's health endpoint and, with a token, the account.
                if rec.method == "GET" && (rec.url == "/v1/health" || rec.url == "/v1/account") {
                    let auth_ok = match (&token, rec.header("Authorization")) {
                        (Some(t), Some(a)) => a == format!("Bearer {t}"),
                        (Some(_), None) => false,
                        (None, _) => true,
                    };
                    let (status, answer) = match (rec.url.as_str(), auth_ok) {
                        ("/v1/health", _) => (200, r#"{"healthy":true}"#),
                        (_, true) => (200, r#"{"username":"tester","role":"user"}"#),
                        (_, false) => (401, r#"{"code":40101,"http":401,"error":"unauthorized"}"#),
                    };
                    r.lock().unwrap().push(rec);
                    let _ = req
                        .respond(tiny_http::Response::from_string(answer).with_status_code(status));
                    continue;
                }
                let mut problems = check_publish(&rec, token.as_deref());
                if body.len() > 4096 {
                    problems.push(format!("body of {} bytes exceeds ntfy's 4096", body.len()));
                }
                let status = {
                    let mut q = st.lock().unwrap();
                    if q.is_empty() {
                        200
                    } else {
                        q.remove(0)
                    }
                };
                if status == 200 && problems.is_empty() {
                    r.lock().unwrap().push(rec);
                }
                v.lock().unwrap().extend(problems);
                let answer = if status == 200 {
                    r#"{"id":"abc","event":"message"}"#.to_string()
                } else {
                    format!(r#"{{"code":{status}0,"http":{status},"error":"fake failure"}}"#)
                };
                let _ =
                    req.respond(tiny_http::Response::from_string(answer).with_status_code(status));
            }
        });
        FakeNtfy {
            url: format!("http://127.0.0.1:{port}"),
            received,
            statuses,
            violations,
            server,
            thread: Some(thread),
        }
    }

    /// The next publishes are answered with these statuses.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.statuses.lock().unwrap().extend_from_slice(statuses);
    }

    pub fn messages(&self) -> Vec<Received> {
        let v = self.violations.lock().unwrap();
        assert!(v.is_empty(), "requests broke ntfy's API: {v:?}");
        self.received.lock().unwrap().clone()
    }

    pub fn config(&self, topic: &str) -> String {
        format!("[ntfy]\nserver = \"{}\"\ntopic = \"{topic}\"\n", self.url)
    }
}

impl Drop for FakeNtfy {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn check_publish(r: &Received, token: Option<&str>) -> Vec<String> {
    let mut p = Vec::new();
    if r.method != "POST" && r.method != "PUT" {
        p.push(format!(
            "method {} (ntfy publishes with POST or PUT)",
            r.method
        ));
    }
    let topic = r.url.trim_start_matches('/');
    if topic.is_empty()
        || topic.contains('/')
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        p.push(format!("path {} is not /<topic>", r.url));
    }
    if let Some(prio) = r.header("Priority") {
        let ok = matches!(
            prio,
            "1" | "2" | "3" | "4" | "5" | "min" | "low" | "default" | "high" | "max" | "urgent"
        );
        if !ok {
            p.push(format!("Priority {prio} is not 1-5 or a priority name"));
        }
    }
    if let Some(m) = r.header("Markdown") {
        if !matches!(m, "yes" | "true" | "1") {
            p.push(format!("Markdown header {m}"));
        }
    }
    match (token, r.header("Authorization")) {
        (Some(t), Some(a)) if a == format!("Bearer {t}") => {}
        (Some(_), other) => p.push(format!(
            "Authorization {other:?}, expected the Bearer token"
        )),
        (None, Some(a)) => p.push(format!("unexpected Authorization {a}")),
        (None, None) => {}
    }
    if r.body.trim().is_empty() {
        p.push("empty message body".into());
    }
    p
}

/// Writes an executable fake `claude` that records its argv and prompt and behaves
/// as `mode` says: `ok:<verdict json>`, `hang`, `junk`, `fail`.
pub fn fake_claude(t: &Test, mode: &str) -> PathBuf {
    let record = t.path("claude-calls");
    std::fs::create_dir_all(&record).unwrap();
    let behaviour = match mode.split_once(':') {
        Some(("ok", verdict)) => {
            let result = serde_json::json!({
                "type": "result", "subtype": "success", "is_error": false,
                "result": format!("I checked the traceback.\n```json\n{verdict}\n```"),
                "total_cost_usd": 0.0123, "num_turns": 3, "permission_denials": [],
            });
            format!("cat <<'JSON'\n{result}\nJSON\n")
        }
        _ if mode == "hang" => "sleep 60 &\nwait\n".to_string(),
        _ if mode == "junk" => "echo 'this is not JSON at all'\n".to_string(),
        _ if mode == "fail" => {
            let result = serde_json::json!({
                "type": "result", "subtype": "success", "is_error": true,
                "result": "API Error: 401 invalid x-api-key", "total_cost_usd": 0, "num_turns": 1,
            });
            format!("echo '{result}'\nexit 1\n")
        }
        _ => panic!("unknown fake claude mode {mode}"),
    };
    let script = format!(
        "#!/bin/sh\n{help}n=$(ls {rec} | wc -l)\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > {rec}/argv-$n\npwd > {rec}/cwd-$n\nenv > {rec}/env-$n\n{behaviour}",
        rec = record.display(),
        help = FAKE_CLAUDE_HELP,
    );
    let path = t.path("fake-claude");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `claude --help` of the fake: the options of Claude Code 2.1.x that logwarden looks for.
const FAKE_CLAUDE_HELP: &str = "if [ \"$1\" = --help ]; then echo '  --max-budget-usd <amount>'; echo '  --no-session-persistence'; echo '  --strict-mcp-config'; exit 0; fi\n";

/// The argv of each recorded fake-claude call.
pub fn claude_calls(t: &Test) -> Vec<Vec<String>> {
    let dir = t.path("claude-calls");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("argv-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n: &String| n[5..].parse::<u32>().unwrap_or(0));
    names
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.join(n))
                .unwrap()
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Total occurrences over all incidents.
pub fn total_occurrences(t: &Test) -> u64 {
    t.incidents()
        .iter()
        .map(|i| i["occurrences"].as_u64().unwrap())
        .sum()
}

/// Whether this process runs as root (then tests drop privileges with `setpriv` to
/// check what an unprivileged service user may do).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Makes every folder from `dir` up to `/` traversable by others (tempdirs are 0700).
pub fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut d = Some(dir);
    while let Some(p) = d {
        if p == Path::new("/") {
            break;
        }
        if let Ok(m) = std::fs::metadata(p) {
            let mode = m.permissions().mode();
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o755));
        }
        d = p.parent();
    }
}

impl Test {
    /// `logwarden` as the unprivileged `nobody` user when running as root.
    pub fn command_as_nobody(&self, args: &[&str]) -> Command {
        if !is_root() {
            return self.command(args);
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(BIN)
            .args(args)
            .env("LOGWARDEN_CONFIG", self.path("logwarden.toml"))
            .env_remove("LOGWARDEN_FAULT")
            .current_dir(self.dir.path());
        c
    }

    /// Hands a path to `nobody` (when root), so a run as `nobody` can write there.
    pub fn give_to_nobody(&self, rel: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        if is_root() {
            let c = std::ffi::CString::new(p.to_string_lossy().as_bytes()).unwrap();
            // SAFETY: a valid C string path.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        }
    }
}
