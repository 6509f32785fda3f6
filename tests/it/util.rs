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

    /// The app source and `ntfy`'s `[ntfy]` section on topic `ops`, `ntfy_keys` added to
    /// it, reminders off: they would add notifications a test does not count.
    pub fn with_app_and_ntfy(&self, ntfy: &FakeNtfy, ntfy_keys: &str) -> &Self {
        self.with_app_source(&format!(
            "{}{ntfy_keys}[incidents]\nnag = {{ critical = \"off\" }}\n",
            ntfy.config("ops")
        ))
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(BIN, args)
    }

    /// The standard output of `logwarden <args>` given `input` on stdin, run with no
    /// `LOGWARDEN_CONFIG` (a command that reads records from stdin); it must succeed.
    pub fn piped(&self, args: &[&str], input: &str) -> String {
        let mut child = self
            .command(args)
            .env_remove("LOGWARDEN_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    /// [`Test::command`] with another build of logwarden (an older release to compare with).
    pub fn command_of(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.args(args)
            .env("LOGWARDEN_CONFIG", self.path("logwarden.toml"))
            .env_remove("LOGWARDEN_FAULT")
            // Under libfaketime (the suite's clock-ahead run) only the date moves: a faked
            // CLOCK_MONOTONIC turns every absolute deadline handed to the kernel (Rust's
            // timed waits, such as the HTTP client's timeout) into a wait of a year.
            .env("DONT_FAKE_MONOTONIC", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            // Logs without an offset are read in the host's zone: tests fix it (a test
            // may set another with `env`).
            .env("TZ", "UTC")
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_bin(BIN, args)
    }

    /// Runs another build of logwarden in this test's world.
    pub fn run_bin(&self, bin: &str, args: &[&str]) -> Run {
        let out = self.command_of(bin, args).output().expect("logwarden runs");
        Run::from(out)
    }

    /// Runs `logwarden` with the system clock set to `at` (`2026-11-22 10:00:00`, UTC)
    /// by libfaketime, no `--now`: the time since boot goes on as it really does.
    /// `None` where faketime is not installed (never in CI).
    pub fn run_with_clock_at(&self, at: &str, args: &[&str]) -> Option<Run> {
        self.run_under_faketime(&format!("@{at}"), args)
    }

    /// Runs `logwarden` under libfaketime with its `-f` time spec (`@2026-…` or
    /// `+365d`); `None` when faketime is not installed, which CI does not allow.
    pub fn run_under_faketime(&self, spec: &str, args: &[&str]) -> Option<Run> {
        let Some(faketime) = which("faketime") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "faketime is missing in CI"
            );
            eprintln!("faketime not installed: skipped");
            return None;
        };
        let c = self.command(args);
        let mut wrapped = Command::new(faketime);
        wrapped
            .arg("-f")
            .arg(spec)
            .arg(c.get_program())
            .args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped.current_dir(c.get_current_dir().unwrap());
        Some(Run::from(wrapped.output().expect("faketime runs")))
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

    /// The titles of the incidents, in `incidents --json` order.
    pub fn titles(&self) -> Vec<String> {
        self.incidents()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .collect()
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

    /// Fails the test, showing the whole stdout, unless it contains `text`.
    #[track_caller]
    pub fn says(&self, text: &str) {
        assert!(
            self.stdout.contains(text),
            "no `{text}` in\n{}",
            self.stdout
        );
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
    /// Reads a request the fake servers got: method, URL, headers and body.
    pub fn read(req: &mut tiny_http::Request) -> Received {
        let mut body = Vec::new();
        let _ = req.as_reader().read_to_end(&mut body);
        Received {
            method: req.method().to_string(),
            url: req.url().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }
}

/// A header's value, by case-insensitive name.
pub fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A fake ntfy server on loopback. It checks each publish against ntfy's documented
/// API (POST to /<topic>, priority 1–5, body at most 4096 bytes, Markdown: yes, the
/// `Actions` header's simple format, a `Click` URL, the expected Bearer token or Basic
/// auth, no control character in a header value, which a real server answers with
/// 400) and answers with the queued statuses (then 200), or with the status of a
/// refusal the test set up for the message's text. It keeps what was
/// published per topic and serves it to pollers (`GET /<topic>/json?poll=1&since=…`)
/// as ntfy's JSON message objects; topics in `anonymous_write` may be published to
/// without credentials (ntfy's `write-only` access for everyone).
pub struct FakeNtfy {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub statuses: Arc<Mutex<Vec<u16>>>,
    pub violations: Arc<Mutex<Vec<String>>>,
    /// Every request (publishes, polls, failed or not), in order.
    pub requests: Arc<Mutex<Vec<Received>>>,
    /// Messages kept for pollers.
    pub cache: Arc<Mutex<Vec<Cached>>>,
    pub anonymous_write: Arc<Mutex<Vec<String>>>,
    /// Publishes whose title or body hold one of these texts are refused with the
    /// status (as ntfy refuses a message for a reason of its own: 400, 413, …).
    pub refusals: Arc<Mutex<Vec<(String, u16)>>>,
    /// The tags of each cached message (by message id), from its Tags header: ntfy
    /// returns them to pollers.
    pub tags: Arc<Mutex<std::collections::HashMap<String, Vec<String>>>>,
    /// When set, publishes are accepted (cached) at once but answered this late.
    pub answer_delay: Arc<Mutex<Option<std::time::Duration>>>,
    /// When set, the unix time ntfy stamps messages with (its clock).
    pub clock: Arc<Mutex<Option<i64>>>,
    /// When set, publishes are stored (cached) and answered only this late: a server
    /// that still stores a message after its client gave up.
    pub store_delay: Arc<Mutex<Option<std::time::Duration>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNtfy {
    pub fn start(expected_token: Option<&str>) -> FakeNtfy {
        Self::start_auth(expected_token.map(|t| format!("Bearer {t}")))
    }

    /// A server that expects Basic auth with this user and password (RFC 7617).
    pub fn start_basic(user: &str, password: &str) -> FakeNtfy {
        use base64::Engine;
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::start_auth(Some(format!("Basic {pair}")))
    }

    fn start_auth(expected_auth: Option<String>) -> FakeNtfy {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses: Arc<Mutex<Vec<u16>>> = Arc::new(Mutex::new(Vec::new()));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let cache = Arc::new(Mutex::new(Vec::new()));
        let anonymous_write: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let refusals: Arc<Mutex<Vec<(String, u16)>>> = Arc::new(Mutex::new(Vec::new()));
        let tags: Arc<Mutex<std::collections::HashMap<String, Vec<String>>>> =
            Arc::new(Mutex::new(std::collections::HashMap::new()));
        let answer_delay: Arc<Mutex<Option<std::time::Duration>>> = Arc::new(Mutex::new(None));
        let clock: Arc<Mutex<Option<i64>>> = Arc::new(Mutex::new(None));
        let store_delay: Arc<Mutex<Option<std::time::Duration>>> = Arc::new(Mutex::new(None));
        let (tg, delay, clk) = (tags.clone(), answer_delay.clone(), clock.clone());
        let late = store_delay.clone();
        let (s, r, st, v, all, c, anon, refuse) = (
            server.clone(),
            received.clone(),
            statuses.clone(),
            violations.clone(),
            requests.clone(),
            cache.clone(),
            anonymous_write.clone(),
            refusals.clone(),
        );
        let token = expected_auth;
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let rec = Received::read(&mut req);
                all.lock().unwrap().push(rec.clone());
                // A header value with a control character is a bad request to any HTTP
                // server (RFC 9110 field-value; Go's net/http, which ntfy runs on,
                // answers 400 before ntfy sees it).
                if let Some((k, val)) = rec
                    .headers
                    .iter()
                    .find(|(_, val)| val.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f))
                {
                    v.lock()
                        .unwrap()
                        .push(format!("control character in header {k}: {val:?}"));
                    let _ = req.respond(
                        tiny_http::Response::from_string("400 Bad Request: invalid header value")
                            .with_status_code(400),
                    );
                    continue;
                }
                let auth_ok = match (&token, rec.header("Authorization")) {
                    (Some(t), Some(a)) => a == t,
                    (Some(_), None) => false,
                    (None, _) => true,
                };
                // `doctor` probes ntfy's health endpoint and, with a token, the account.
                if rec.method == "GET" && (rec.url == "/v1/health" || rec.url == "/v1/account") {
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
                let next_status = || {
                    let mut q = st.lock().unwrap();
                    if q.is_empty() {
                        200
                    } else {
                        q.remove(0)
                    }
                };
                // Polling a topic's cached messages
                if rec.method == "GET" {
                    let polled = poll(&rec, &c.lock().unwrap(), &tg.lock().unwrap());
                    let (status, answer) = match polled {
                        Err(problem) => {
                            v.lock().unwrap().push(problem);
                            (400, String::new())
                        }
                        Ok(_) if !auth_ok => {
                            v.lock().unwrap().push(format!(
                                "poll with Authorization {:?}, expected {token:?}",
                                rec.header("Authorization")
                            ));
                            (
                                401,
                                r#"{"code":40101,"http":401,"error":"unauthorized"}"#.into(),
                            )
                        }
                        Ok(lines) => match next_status() {
                            200 => (200, lines),
                            other => (
                                other,
                                format!(r#"{{"http":{other},"error":"fake failure"}}"#),
                            ),
                        },
                    };
                    let _ = req
                        .respond(tiny_http::Response::from_string(answer).with_status_code(status));
                    continue;
                }
                let topic = rec.url.trim_start_matches('/').to_string();
                let anonymous = anon.lock().unwrap().contains(&topic);
                let mut problems = check_publish(&rec, token.as_deref(), anonymous);
                if rec.body.len() > 4096 {
                    problems.push(format!(
                        "body of {} bytes exceeds ntfy's 4096",
                        rec.body.len()
                    ));
                }
                let refused = refuse.lock().unwrap().iter().find_map(|(text, status)| {
                    let title = rec.header("Title").map(decode_rfc2047).unwrap_or_default();
                    (title.contains(text.as_str()) || rec.body.contains(text.as_str()))
                        .then_some(*status)
                });
                let status = refused.unwrap_or_else(next_status);
                let (c, tg, clk, r) = (c.clone(), tg.clone(), clk.clone(), r.clone());
                let accepted = status == 200 && problems.is_empty();
                v.lock().unwrap().extend(problems);
                let store = move || {
                    if accepted {
                        let mut cache = c.lock().unwrap();
                        let id = format!("msg{:09}", cache.len() + 1);
                        // ntfy stamps a message with its own clock, which need not agree
                        // with the runs' `--now` (nor, under libfaketime, with the date).
                        let time = match *clk.lock().unwrap() {
                            Some(t) => t + cache.len() as i64,
                            None => std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_secs() as i64),
                        };
                        // ntfy reads the tags from Tags, X-Tags, Tag or ta: comma-separated.
                        let t: Vec<String> = ["X-Tags", "Tags", "Tag", "ta"]
                            .iter()
                            .find_map(|h| rec.header(h))
                            .map(|v| {
                                decode_rfc2047(v)
                                    .split(',')
                                    .map(|t| t.trim().to_string())
                                    .filter(|t| !t.is_empty())
                                    .collect()
                            })
                            .unwrap_or_default();
                        tg.lock().unwrap().insert(id.clone(), t);
                        cache.push((id, time, topic, rec.body.clone()));
                        r.lock().unwrap().push(rec);
                    }
                };
                let store_late = *late.lock().unwrap();
                let answer = if status == 200 {
                    r#"{"id":"abc","event":"message"}"#.to_string()
                } else {
                    format!(r#"{{"code":{status}0,"http":{status},"error":"fake failure"}}"#)
                };
                let response = tiny_http::Response::from_string(answer).with_status_code(status);
                if let Some(d) = store_late {
                    std::thread::spawn(move || {
                        std::thread::sleep(d);
                        store();
                        let _ = req.respond(response);
                    });
                    continue;
                }
                store();
                match *delay.lock().unwrap() {
                    // Answered from its own thread: polls meanwhile are served at once.
                    Some(d) => {
                        std::thread::spawn(move || {
                            std::thread::sleep(d);
                            let _ = req.respond(response);
                        });
                    }
                    None => {
                        let _ = req.respond(response);
                    }
                }
            }
        });
        FakeNtfy {
            url: format!("http://127.0.0.1:{port}"),
            received,
            statuses,
            violations,
            requests,
            cache,
            anonymous_write,
            refusals,
            tags,
            answer_delay,
            clock,
            store_delay,
            server,
            thread: Some(thread),
        }
    }

    /// Refuses (with `status`) every publish whose title or body holds `text`.
    pub fn refuse_containing(&self, text: &str, status: u16) {
        self.refusals.lock().unwrap().push((text.into(), status));
    }

    /// Publishes are accepted at once but answered only after `d` (`None`: at once).
    pub fn answer_after(&self, d: Option<std::time::Duration>) {
        *self.answer_delay.lock().unwrap() = d;
    }

    /// Publishes from now on are stored and answered `d` late (`None`: at once).
    pub fn store_after(&self, d: Option<std::time::Duration>) {
        *self.store_delay.lock().unwrap() = d;
    }

    /// ntfy's clock: messages published from now on are stamped `unix` (+ their
    /// position in the cache), as a server whose clock agrees with the run's `--now`.
    pub fn set_clock(&self, unix: i64) {
        *self.clock.lock().unwrap() = Some(unix);
    }

    /// Accepts them again.
    pub fn stop_refusing(&self) {
        self.refusals.lock().unwrap().clear();
    }

    /// The next publishes (and polls) are answered with these statuses.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.statuses.lock().unwrap().extend_from_slice(statuses);
    }

    /// Anyone may publish to this topic (ntfy: `ntfy access everyone TOPIC write-only`).
    pub fn allow_anonymous_write(&self, topic: &str) {
        self.anonymous_write.lock().unwrap().push(topic.into());
    }

    /// Puts `n` messages on `topic` as a stranger flooding it would (ids `flood…`,
    /// the `i`th message's text from `text`), for pollers to find.
    pub fn flood(&self, topic: &str, n: usize, text: impl Fn(usize) -> String) {
        let mut cache = self.cache.lock().unwrap();
        for i in 0..n {
            cache.push((
                format!("flood{i:07}"),
                1_700_100_000 + i as i64,
                topic.into(),
                text(i),
            ));
        }
    }

    /// The publishes accepted so far (asserting that none broke ntfy's API).
    pub fn messages(&self) -> Vec<Received> {
        let v = self.violations.lock().unwrap();
        assert!(v.is_empty(), "requests broke ntfy's API: {v:?}");
        self.received.lock().unwrap().clone()
    }

    /// Accepted publishes to one topic.
    pub fn messages_to(&self, topic: &str) -> Vec<Received> {
        let path = format!("/{topic}");
        self.messages()
            .into_iter()
            .filter(|m| m.method != "GET" && m.url == path)
            .collect()
    }

    /// Publish requests received (accepted or not).
    pub fn publish_attempts(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST" || r.method == "PUT")
            .count()
    }

    /// An `[ntfy]` section for this server. Retries wait 10 ms, not 1 s.
    pub fn config(&self, topic: &str) -> String {
        format!(
            "[ntfy]\nserver = \"{}\"\ntopic = \"{topic}\"\nretry_delay = \"10ms\"\n",
            self.url
        )
    }

    /// Does what the ntfy app does when the action button `label` of a received
    /// notification is tapped: for an `http` action, sends its method, headers and
    /// body to its URL. Returns the HTTP status.
    pub fn tap(&self, m: &Received, label: &str) -> u16 {
        let header = m
            .header("Actions")
            .unwrap_or_else(|| panic!("no Actions header in {m:?}"));
        let actions = parse_actions(header).expect("a valid Actions header");
        let a = actions
            .iter()
            .find(|a| a.get("label").map(String::as_str) == Some(label))
            .unwrap_or_else(|| panic!("no action labelled {label} in {header}"));
        assert_eq!(a["action"], "http", "{label} is not an http action");
        let method = a.get("method").map(String::as_str).unwrap_or("POST");
        let client = reqwest::blocking::Client::new();
        let mut req = client.request(method.parse().unwrap(), &a["url"]);
        for (k, v) in a {
            if let Some(h) = k.strip_prefix("headers.") {
                req = req.header(h, v);
            }
        }
        let body = a.get("body").cloned().unwrap_or_default();
        req.body(body)
            .send()
            .expect("the tap's request")
            .status()
            .as_u16()
    }
}

/// A header value as ntfy reads it: an RFC 2047 `=?UTF-8?B?…?=` word decoded, else as is.
pub fn decode_rfc2047(v: &str) -> String {
    // As ntfy does (Go's `mime.WordDecoder.DecodeHeader`): every well-formed encoded
    // word anywhere in the value, `B` or `Q`, is decoded; the rest stays as it is.
    use base64::Engine;
    let mut out = String::new();
    let mut rest = v;
    while let Some(at) = rest.find("=?") {
        out.push_str(&rest[..at]);
        let word = &rest[at + 2..];
        let decoded = (|| {
            let (_charset, word) = word.split_once('?')?;
            let (enc, word) = word.split_once('?')?;
            let end = word.find("?=")?;
            let text = &word[..end];
            let bytes = match enc {
                "B" | "b" => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()?,
                "Q" | "q" => {
                    let mut b = Vec::new();
                    let mut it = text.bytes();
                    while let Some(c) = it.next() {
                        match c {
                            b'_' => b.push(b' '),
                            b'=' => {
                                let h = [it.next()?, it.next()?];
                                b.push(u8::from_str_radix(std::str::from_utf8(&h).ok()?, 16).ok()?);
                            }
                            c => b.push(c),
                        }
                    }
                    b
                }
                _ => return None,
            };
            let used = 2 + (word.as_ptr() as usize - rest[at + 2..].as_ptr() as usize) + end + 2;
            Some((String::from_utf8_lossy(&bytes).into_owned(), used))
        })();
        match decoded {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &rest[at + used..];
            }
            None => {
                out.push_str("=?");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `GET /<topic>/json?poll=1&since=<id|all>`: the cached messages of the topic after
/// `since`, one JSON message object per line, as ntfy's subscribe API answers.
fn poll(
    r: &Received,
    cache: &[Cached],
    tags: &std::collections::HashMap<String, Vec<String>>,
) -> Result<String, String> {
    let (path, query) = r.url.split_once('?').unwrap_or((&r.url, ""));
    let Some(topic) = path.strip_prefix('/').and_then(|p| p.strip_suffix("/json")) else {
        return Err(format!("GET {} is not /<topic>/json", r.url));
    };
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    if !matches!(get("poll"), Some("1" | "true" | "yes")) {
        return Err(format!("GET {} without poll=1 would stream forever", r.url));
    }
    let since = get("since").unwrap_or("all");
    let mine: Vec<_> = cache.iter().filter(|m| m.2 == topic).collect();
    let start = match since {
        "all" => 0,
        id => match mine.iter().position(|m| m.0 == id) {
            Some(i) => i + 1,
            None if id.chars().all(|c| c.is_ascii_digit()) => {
                let t: i64 = id.parse().unwrap();
                mine.iter().position(|m| m.1 >= t).unwrap_or(mine.len())
            }
            None => return Err(format!("since={id} is no message id, time or `all`")),
        },
    };
    Ok(mine[start..]
        .iter()
        .map(|(id, time, topic, message)| {
            // A line as a broken proxy in front of ntfy might send it, verbatim.
            if id.starts_with("raw:") {
                return format!("{message}\n");
            }
            let mut m = serde_json::json!({"id": id, "time": time, "event": "message", "topic": topic, "message": message});
            // ntfy leaves `tags` out when there are none
            if let Some(t) = tags.get(id).filter(|t| !t.is_empty()) {
                m["tags"] = serde_json::json!(t);
            }
            format!("{m}\n")
        })
        .collect())
}

/// A published message kept for pollers: (id, time, topic, message). An id starting
/// with `raw:` serves its message as the line itself, not as ntfy's JSON.
pub type Cached = (String, i64, String, String);

/// One action of an `Actions` header: field name → value.
pub type Action = std::collections::BTreeMap<String, String>;

/// ntfy's simple `Actions` format: actions separated by `;`, fields by `,`, values
/// in double or single quotes when they hold those; `action=`, `label=` (and `url=`
/// for view and http) may be left out. Each action as a map, or what is wrong.
pub fn parse_actions(header: &str) -> Result<Vec<Action>, String> {
    fn split(s: &str, sep: char) -> Vec<String> {
        let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None);
        for c in s.chars() {
            match quote {
                Some(q) if c == q => {
                    quote = None;
                    cur.push(c);
                }
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    cur.push(c);
                }
                None if c == sep => out.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        out.push(cur);
        out
    }
    fn unquote(v: &str) -> String {
        let v = v.trim();
        for q in ['"', '\''] {
            if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
                return v[1..v.len() - 1].to_string();
            }
        }
        v.to_string()
    }
    let known = |k: &str| {
        matches!(
            k,
            "action" | "label" | "url" | "clear" | "method" | "body" | "intent"
        ) || k.starts_with("headers.")
            || k.starts_with("extras.")
    };
    let mut actions = Vec::new();
    for a in split(header, ';') {
        let mut map = Action::new();
        let mut positional = 0;
        for field in split(&a, ',') {
            let field = field.trim();
            match field.split_once('=') {
                Some((k, v)) if known(k.trim()) => {
                    map.insert(k.trim().to_string(), unquote(v));
                }
                _ => {
                    let name = ["action", "label", "url"]
                        .get(positional)
                        .ok_or_else(|| format!("unexpected field `{field}` in `{a}`"))?;
                    positional += 1;
                    map.insert(name.to_string(), unquote(field));
                }
            }
        }
        let action = map.get("action").cloned().unwrap_or_default();
        if !matches!(action.as_str(), "view" | "http" | "broadcast") {
            return Err(format!("action `{action}` is not view, http or broadcast"));
        }
        if map.get("label").is_none_or(|l| l.is_empty()) {
            return Err(format!("action without a label: `{a}`"));
        }
        if action != "broadcast"
            && !map
                .get("url")
                .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(format!("{action} action without an http(s) url: `{a}`"));
        }
        if let Some(m) = map.get("method") {
            if action != "http" || !matches!(m.as_str(), "GET" | "POST" | "PUT") {
                return Err(format!("method `{m}` (http actions: GET, POST or PUT)"));
            }
        }
        if let Some(c) = map.get("clear") {
            if !matches!(c.as_str(), "true" | "false") {
                return Err(format!("clear={c} is not true or false"));
            }
        }
        actions.push(map);
    }
    if actions.len() > 3 {
        return Err(format!(
            "{} actions (ntfy allows up to three)",
            actions.len()
        ));
    }
    Ok(actions)
}

impl Drop for FakeNtfy {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn check_publish(r: &Received, auth: Option<&str>, anonymous: bool) -> Vec<String> {
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
    match (auth, r.header("Authorization")) {
        (_, None) if anonymous => {}
        (Some(t), Some(a)) if a == t => {}
        (Some(t), other) => p.push(format!("Authorization {other:?}, expected {t}")),
        (None, Some(a)) => p.push(format!("unexpected Authorization {a}")),
        (None, None) => {}
    }
    // Actions and click URL as documented
    if let Some(a) = r.header("Actions") {
        if let Err(e) = parse_actions(a) {
            p.push(format!("Actions header `{a}`: {e}"));
        }
    }
    if let Some(c) = r.header("Click") {
        if !(c.starts_with("http://") || c.starts_with("https://"))
            || c.contains(char::is_whitespace)
        {
            p.push(format!("Click `{c}` is not a URL"));
        }
    }
    if r.body.trim().is_empty() {
        p.push("empty message body".into());
    }
    p
}

/// Writes an executable fake `claude` that records its argv and prompt and behaves
/// as `mode` says: `ok:<verdict json>`, `nocost:<verdict json>`, `hang`, `junk`, `fail`.
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
        // A CLI (or a stand-in) that does not say what the call cost.
        Some(("nocost", verdict)) => {
            let result = serde_json::json!({
                "type": "result", "subtype": "success", "is_error": false,
                "result": format!("```json\n{verdict}\n```"), "num_turns": 2,
            });
            format!("cat <<'JSON'\n{result}\nJSON\n")
        }
        // Long enough that a run which failed to kill it would be caught by any margin.
        _ if mode == "hang" => "sleep 600 &\nwait\n".to_string(),
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
        "#!/bin/sh\n{help}n=$(ls {rec} | wc -l)\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > {rec}/argv-$n\nprev=\nfor a in \"$@\"; do [ \"$prev\" = --mcp-config ] && cp \"$a\" {rec}/mcp-$n; prev=$a; done\npwd > {rec}/cwd-$n\nenv > {rec}/env-$n\ncat > {rec}/stdin-$n\n{behaviour}",
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
                // Every argument ends with a NUL; an empty argument (`--tools ""`) is kept.
                .split_terminator('\0')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// What each recorded fake-claude call was given: its argv, then what it read on stdin
/// (the prompt).
pub fn claude_inputs(t: &Test) -> Vec<Vec<String>> {
    claude_calls(t)
        .into_iter()
        .zip(claude_files(t, "stdin-"))
        .map(|(mut argv, stdin)| {
            argv.push(stdin);
            argv
        })
        .collect()
}

/// The prompt (stdin) of each recorded fake-claude call.
pub fn claude_prompts(t: &Test) -> Vec<String> {
    claude_files(t, "stdin-")
}

/// The `--mcp-config` file each recorded fake-claude call was given.
pub fn claude_mcp_configs(t: &Test) -> Vec<serde_json::Value> {
    claude_files(t, "mcp-")
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
}

fn claude_files(t: &Test, prefix: &str) -> Vec<String> {
    let dir = t.path("claude-calls");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| n[prefix.len()..].parse::<u32>().unwrap_or(0));
    names
        .iter()
        .map(|n| String::from_utf8_lossy(&std::fs::read(dir.join(n)).unwrap()).into_owned())
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
            // Under libfaketime (the suite's clock-ahead run) only the date moves: a faked
            // CLOCK_MONOTONIC turns every absolute deadline handed to the kernel (Rust's
            // timed waits, such as the HTTP client's timeout) into a wait of a year.
            .env("DONT_FAKE_MONOTONIC", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("TZ", "UTC")
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
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

/// A notification's tags without the delivery id logwarden adds (`lw-<row>-<hex>`),
/// which must be there exactly once.
pub fn shown_tags(m: &Received) -> String {
    let tags = m.header("Tags").unwrap_or_default();
    let (ids, shown): (Vec<&str>, Vec<&str>) = tags.split(',').partition(|t| t.starts_with("lw-"));
    assert_eq!(ids.len(), 1, "one delivery id among the tags: {tags}");
    shown.join(",")
}

/// Config lines that turn reminders off, for tests about something else (with the
/// default severities every ERROR is critical, and critical incidents nag).
pub const NO_NAG: &str = "[incidents]\nnag = { critical = \"off\" }\n";

/// Runs git in `repo` as a fixed author at a fixed time (commits stay the same whatever
/// the day or the machine's git identity).
pub fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "Ann")
        .env("GIT_AUTHOR_EMAIL", "ann@example.com")
        .env("GIT_COMMITTER_NAME", "Ann")
        .env("GIT_COMMITTER_EMAIL", "ann@example.com")
        .env("GIT_AUTHOR_DATE", "2026-11-22T09:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-22T09:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate for `cn`, valid 30 days from `made_at` (a local time
/// faketime takes), as `key.pem` and `cert.pem` in the test's folder. Made without an
/// outer libfaketime: the suite also runs with the clock a year ahead.
pub fn self_signed_cert(t: &Test, made_at: &str, cn: &str) {
    let made = Command::new("faketime")
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .args([
            made_at, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        ])
        .arg("-keyout")
        .arg(t.path("key.pem"))
        .arg("-out")
        .arg(t.path("cert.pem"))
        .args(["-days", "30", "-subj", &format!("/CN={cn}")])
        .output()
        .expect("faketime and openssl");
    assert!(made.status.success(), "{made:?}");
}

/// The first `tool` on `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|f| f.is_file())
    })
}
