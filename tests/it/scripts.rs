//! The curated scripts as the model reaches them: every script in `scripts/` called
//! with hostile arguments through the `anthropic-api` tool loop of the real binary.
//! Refused calls run nothing (the scripts are copies that log each start), never reach
//! `systemctl`, `sqlite3` or `redis-cli`, and are recorded on the incident; a
//! configured check named by the model runs with the config's arguments only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Value};

use crate::fake_anthropic::{verdict_text, FakeAnthropic, Reply};
use crate::util::*;

const KEY: &str = "sk-ant-api03-testkey-0123456789abcdef";
const NOW: &str = "2026-11-22T10:05:00Z";

fn chmod_x(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Copies the shipped scripts into `to`, each logging `$PWD|$0|args` to `ran` as its
/// first command after the header (so the header, and with it the schema, is intact).
fn instrumented_copies(to: &Path, ran: &Path) -> Vec<String> {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    std::fs::create_dir_all(to).unwrap();
    let mut names = Vec::new();
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let mut out = String::new();
        let mut in_header = true;
        for line in text.lines() {
            if in_header && !line.starts_with('#') {
                out.push_str(&format!(
                    "printf '%s|%s|%s\\n' \"$PWD\" \"${{0##*/}}\" \"$*\" >> '{}'\n",
                    ran.display()
                ));
                in_header = false;
            }
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(to.join(&name), out).unwrap();
        chmod_x(&to.join(&name));
        names.push(name);
    }
    names.sort();
    names
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The tool results of a conversation, in order: (is_error, text).
fn tool_results(last: &Value) -> Vec<(bool, String)> {
    last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user" && m["content"].is_array())
        .map(|m| {
            let r = &m["content"][0];
            (
                r["is_error"] == true,
                r["content"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn hostile_arguments_to_every_curated_script_run_nothing() {
    let api = FakeAnthropic::start();
    let ntfy = FakeNtfy::start(None);
    let t = Test::new().env("LW_TEST_KEY", KEY);
    let tools = t.path("tools");
    let ran = t.path("ran.log");
    let names = instrumented_copies(&tools, &ran);
    // The metric checks run the plain copies from their own folder.
    let plain = t.path("scripts");
    std::fs::create_dir_all(&plain).unwrap();
    for n in &names {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(n);
        std::fs::copy(&src, plain.join(n)).unwrap();
        chmod_x(&plain.join(n));
    }
    let sysctl_log = t.path("systemctl.log");
    t.write(
        "bin/systemctl",
        &format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$PWD\" \"$*\" >> '{}'\n",
            sysctl_log.display()
        ),
    );
    chmod_x(&t.path("bin/systemctl"));
    let db = t.path("jobs.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE jobs(state TEXT); INSERT INTO jobs VALUES ('queued'), ('queued'), ('done');",
        )
        .unwrap();
    }
    let m = |n: &str| t.path(n).display().to_string();
    let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
    // Even a query from the config cannot escape sqlite3's safe mode.
    let checks = format!(
        "[metrics]\nscripts_dir = {plain}\n\
         [[check]]\nname = \"jobs\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", {db}, \"SELECT count(*) FROM jobs WHERE state = 'queued'\"]\n\
         [[check]]\nname = \"evil-shell\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", {db}, {shell}]\n\
         [[check]]\nname = \"evil-write\"\nscript = \"queue.sh\"\nargs = [\"sqlite\", {db}, {write}]\n\
         [[check]]\nname = \"units\"\nscript = \"systemd-failed.sh\"\nenv = {{ SYSTEMCTL = {sysctl} }}\n\
         [[check]]\nname = \"rate\"\nscript = \"api-rate.sh\"\nlimits = {{ gemini = {{ pattern = \"gemini\", rpm = 60 }} }}\nargs = [\"--log\", {log}]\n",
        plain = toml_str(&plain.display().to_string()),
        db = toml_str(&m("jobs.db")),
        shell = toml_str(&format!(".shell touch {}", m("pwned-config-shell"))),
        write = toml_str(&format!("SELECT writefile('{}', 'x')", m("pwned-config-write"))),
        sysctl = toml_str(&m("bin/systemctl")),
        log = toml_str(&m("app.log")),
    );
    t.with_app_source(&format!(
        "[investigator]\nkind = \"anthropic-api\"\nbase_url = \"{}\"\napi_key_env = \"LW_TEST_KEY\"\ntimeout = \"60s\"\nmodel = \"claude-test-1\"\nretries = 0\nmax_turns = 100\nallow_scripts = true\nscripts_dir = {}\nscript_timeout = \"20s\"\n{}\n{checks}",
        api.url,
        toml_str(&tools.display().to_string()),
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app.jobs:run:10 - Queue stalled\n",
    );

    let touch = |n: &str| format!("$(touch {})", m(n));
    // Per script: argument lists that must be refused before anything runs.
    let hostile: Vec<(&str, Vec<String>)> = vec![
        (
            "api-rate.sh",
            vec![
                "--log".into(),
                "/etc/passwd".into(),
                "--limit".into(),
                "x:pattern=root".into(),
            ],
        ),
        (
            "api-rate.sh",
            vec!["rate".into(), "--log".into(), "/etc/passwd".into()],
        ),
        ("api-rate.sh", vec!["jobs".into()]),
        ("api-rate.sh", vec![]),
        ("cpu.sh", vec!["-1".into()]),
        ("cpu.sh", vec![format!("1; touch {}", m("pwned-cpu"))]),
        ("cpu.sh", vec![touch("pwned-cpu")]),
        ("cpu.sh", vec!["1".into(), "2".into()]),
        ("cpu.sh", vec!["600".into()]),
        ("cert-expiry.sh", vec!["169.254.169.254:443".into()]),
        (
            "cert-expiry.sh",
            vec!["--file".into(), "/etc/shadow".into()],
        ),
        (
            "cert-expiry.sh",
            vec!["-connect".into(), "evil.example:443".into()],
        ),
        ("disk.sh", vec!["--output=source".into()]),
        ("disk.sh", vec!["-x".into(), "ext4".into()]),
        ("disk.sh", vec![format!("/; touch {}", m("pwned-disk"))]),
        ("disk.sh", vec!["/tmp\n--help".into()]),
        ("disk.sh", vec!["tmp".into()]),
        ("file-exists.sh", vec!["/root/.ssh/id_rsa".into()]),
        ("file-exists.sh", vec!["--".into(), "/etc/shadow".into()]),
        (
            "http-probe.sh",
            vec!["http://169.254.169.254/latest/meta-data/".into()],
        ),
        ("http-probe.sh", vec!["file:///etc/passwd".into()]),
        ("http-probe.sh", vec!["-K".into(), "/etc/passwd".into()]),
        ("memory.sh", vec!["--help".into()]),
        ("memory.sh", vec!["x".into()]),
        ("process-rss.sh", vec!["-f".into(), "sshd".into()]),
        ("process-rss.sh", vec![]),
        ("process-rss.sh", vec![touch("pwned-rss")]),
        ("process-rss.sh", vec!["a b".into()]),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                m("jobs.db"),
                format!(".shell touch {}", m("pwned-shell")),
            ],
        ),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                m("jobs.db"),
                format!("SELECT writefile('{}', 'x')", m("pwned-write")),
            ],
        ),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                m("jobs.db"),
                "SELECT readfile('/etc/passwd')".into(),
            ],
        ),
        (
            "queue.sh",
            vec![
                "redis".into(),
                "queue".into(),
                "--host".into(),
                "evil.example".into(),
            ],
        ),
        ("queue.sh", vec!["spool".into(), "/etc".into()]),
        (
            "queue.sh",
            vec!["jobs".into(), "--host".into(), "evil.example".into()],
        ),
        ("queue.sh", vec!["units".into()]),
        ("queue.sh", vec!["--".into(), "jobs".into()]),
        (
            "systemd-failed.sh",
            vec!["-H".into(), "root@evil.example".into()],
        ),
        (
            "systemd-failed.sh",
            vec!["--user".into(), "-H".into(), "x".into()],
        ),
        ("systemd-failed.sh", vec!["--host=evil.example".into()]),
        (
            "systemd-failed.sh",
            vec!["units".into(), "-H".into(), "x".into()],
        ),
        ("systemd-failed.sh", vec!["--user=1".into()]),
        ("systemd-failed.sh", vec!["list-units".into()]),
        ("systemd-failed.sh", vec!["jobs".into()]),
        (
            "unit-restarts.sh",
            vec!["-H".into(), "root@evil.example".into()],
        ),
        (
            "unit-restarts.sh",
            vec!["crashy".into(), "--host=evil.example".into()],
        ),
        ("unit-restarts.sh", vec!["crashy;id".into()]),
        ("unit-restarts.sh", vec![touch("pwned-units")]),
        ("unit-restarts.sh", vec!["../../etc/passwd".into()]),
        ("unit-restarts.sh", vec!["x".repeat(129)]),
        ("unit-restarts.sh", vec![]),
        ("oom-kills.sh", vec!["system.slice/app.service".into()]),
        ("oom-kills.sh", vec!["--journal".into(), "3600".into()]),
        ("oom-kills.sh", vec!["../../../etc".into()]),
        ("oom-kills.sh", vec!["units".into()]),
    ];
    // A script added to scripts/ must get its hostile cases here.
    let covered: std::collections::BTreeSet<&str> = hostile.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        covered.into_iter().collect::<Vec<_>>(),
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        "every curated script is attacked"
    );
    // Malformed calls: refused too.
    let malformed = vec![
        json!({"name": "memory.sh", "args": "--help"}),
        json!({"name": "memory.sh", "args": [1, "--help"]}),
        json!({"name": "../scripts/memory.sh"}),
        json!({"name": "/bin/sh", "args": ["-c", "id"]}),
    ];
    // Positive controls: these run, so the logs above would show a refused call that ran.
    let allowed: Vec<(&str, Vec<String>)> = vec![
        ("memory.sh", vec![]),
        ("queue.sh", vec!["jobs".into()]),
        ("queue.sh", vec!["evil-shell".into()]),
        ("queue.sh", vec!["evil-write".into()]),
        ("systemd-failed.sh", vec!["units".into()]),
    ];
    for (name, args) in &hostile {
        api.push(Reply::ToolUse {
            name: "run_script".into(),
            input: json!({"name": name, "args": args}),
        });
    }
    for input in &malformed {
        api.push(Reply::ToolUse {
            name: "run_script".into(),
            input: input.clone(),
        });
    }
    for (name, args) in &allowed {
        api.push(Reply::ToolUse {
            name: "run_script".into(),
            input: json!({"name": name, "args": args}),
        });
    }
    api.push(Reply::Text(verdict_text("real", "Queue stalled")));
    t.ok(&["run", "--now", NOW]);

    let msgs = api.messages();
    let offered = msgs[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "run_script")
        .cloned()
        .expect("run_script is offered");
    assert_eq!(
        offered["input_schema"]["properties"]["name"]["enum"],
        json!(names),
        "every shipped script declares its arguments"
    );
    let desc = offered["description"].as_str().unwrap();
    assert!(
        desc.contains("- queue.sh CHECK (CHECK: jobs, evil-shell, evil-write)"),
        "{desc}"
    );
    assert!(
        desc.contains("- systemd-failed.sh [--user] | CHECK (CHECK: units)"),
        "{desc}"
    );

    let results = tool_results(&msgs.last().unwrap().body);
    let n_refused = hostile.len() + malformed.len();
    assert_eq!(results.len(), n_refused + allowed.len());
    for (i, (err, text)) in results[..n_refused].iter().enumerate() {
        let call = hostile
            .get(i)
            .map(|(n, a)| format!("{n} {a:?}"))
            .unwrap_or_else(|| malformed[i - hostile.len()].to_string());
        assert!(*err, "{call} was not refused: {text}");
        assert!(
            text.starts_with("refused, nothing was run") || text.starts_with("no script named"),
            "{call}: {text}"
        );
    }
    for (i, (err, text)) in results[n_refused..].iter().enumerate() {
        assert!(!*err, "{:?}: {text}", allowed[i]);
    }
    let out = |i: usize| &results[n_refused + i].1;
    assert!(out(0).contains("mem_total_bytes"), "{}", out(0));
    assert!(
        out(1).contains("queue_depth{queue=\"jobs.db\",kind=\"sqlite\"} 2"),
        "{}",
        out(1)
    );
    assert!(
        out(2).contains("exited with 1") && out(2).contains("safe mode"),
        "{}",
        out(2)
    );
    assert!(
        out(3).contains("exited with 1") && out(3).contains("safe mode"),
        "{}",
        out(3)
    );
    assert!(out(4).contains("systemd_failed_units 0"), "{}", out(4));

    // Only the allowed calls started a script, with the config's arguments.
    let tools_dir = tools.display().to_string();
    let started: Vec<String> = lines(&ran)
        .into_iter()
        .filter(|l| l.starts_with(&format!("{tools_dir}|")))
        .collect();
    assert_eq!(
        started,
        vec![
            format!("{tools_dir}|memory.sh|"),
            format!(
                "{tools_dir}|queue.sh|sqlite {} SELECT count(*) FROM jobs WHERE state = 'queued'",
                m("jobs.db")
            ),
            format!(
                "{tools_dir}|queue.sh|sqlite {} .shell touch {}",
                m("jobs.db"),
                m("pwned-config-shell")
            ),
            format!(
                "{tools_dir}|queue.sh|sqlite {} SELECT writefile('{}', 'x')",
                m("jobs.db"),
                m("pwned-config-write")
            ),
            format!("{tools_dir}|systemd-failed.sh|"),
        ]
    );
    let sysctl: Vec<String> = lines(&sysctl_log)
        .into_iter()
        .filter(|l| l.starts_with(&format!("{tools_dir}|")))
        .collect();
    assert_eq!(
        sysctl,
        vec![format!(
            "{tools_dir}|list-units --state=failed --no-legend --plain --no-pager"
        )],
        "-H never reaches systemctl"
    );
    for marker in [
        "pwned-cpu",
        "pwned-disk",
        "pwned-rss",
        "pwned-units",
        "pwned-shell",
        "pwned-write",
        "pwned-config-shell",
        "pwned-config-write",
    ] {
        assert!(!t.path(marker).exists(), "{marker} was created");
    }

    // Every refusal is recorded on the incident.
    let inc = &t.incidents()[0];
    let denials = inc["diagnosis"]["permission_denials"].as_array().unwrap();
    assert_eq!(denials.len(), n_refused, "{denials:?}");
    assert_eq!(denials[0]["tool_input"]["args"][1], "/etc/passwd");
}

/// Loopback servers for the probes: plain HTTP (`/ok`, `/away` redirecting to the
/// second server, `/missing`), a second HTTP server that logs every request it gets,
/// and HTTPS with the given certificate. Prints the three ports on one line.
const PROBE_SERVERS: &str = r#"
import http.server, ssl, sys, threading
hits = sys.argv[3]
class Main(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ok":
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        elif self.path == "/away":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:%d/ok" % other.server_port)
            self.end_headers()
        else:
            self.send_response(404); self.end_headers()
    def log_message(self, *a):
        pass
class Other(Main):
    def do_GET(self):
        with open(hits, "a") as f:
            f.write(self.path + "\n")
        self.send_response(200); self.end_headers()
main = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Main)
other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Other)
tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Main)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
for s in (main, other, tls):
    threading.Thread(target=s.serve_forever, daemon=True).start()
print(main.server_port, other.server_port, tls.server_port, flush=True)
sys.stdin.read()
"#;

/// The value a series has in `logwarden metrics`.
fn listed(list: &str, key: &str) -> f64 {
    let line = list
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{list}"));
    line[key.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .replace('k', "e3")
        .replace('M', "e6")
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn probe_scripts_measure_real_loopback_servers_and_files() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    const NOW: &str = "2026-11-18T08:26:40Z";
    const NOW_S: i64 = 1_794_990_400;
    let t = Test::new();
    // A self-signed certificate made on 2026-11-01 for 30 days.
    // (Not under an outer libfaketime: the suite also runs with the clock a year ahead.)
    self_signed_cert(&t, "2026-11-01 00:00:00", "localhost");
    let end = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in"])
        .arg(t.path("cert.pem"))
        .output()
        .unwrap();
    let end = String::from_utf8_lossy(&end.stdout);
    assert!(
        end.contains("Dec  1 00:00:0") && end.contains("2026"),
        "{end}"
    );
    let days = (1_796_083_200 - NOW_S) as f64 / 86_400.0; // to 2026-12-01T00:00:00Z

    t.write("servers.py", PROBE_SERVERS);
    let hits = t.path("other-hits.log");
    let mut servers = Command::new(python().expect("python"))
        .arg(t.path("servers.py"))
        .arg(t.path("cert.pem"))
        .arg(t.path("key.pem"))
        .arg(&hits)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(servers.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports: Vec<u16> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 3, "{line:?}");
    let (web, tls) = (ports[0], ports[2]);

    t.write("heartbeat", "alive\n");
    let touched = Command::new("touch")
        .args(["-d", "2026-11-18T08:16:40Z"])
        .arg(t.path("heartbeat"))
        .status()
        .unwrap();
    assert!(touched.success());
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    let p = |n: &str| t.path(n).display().to_string();
    t.write("app.log", "");
    t.with_app_source(&format!(
        "[metrics]\nscripts_dir = \"{scripts}\"\n\
         [[check]]\nname = \"ok\"\nscript = \"http-probe.sh\"\nargs = [\"http://127.0.0.1:{web}/ok\", \"--name\", \"ok\"]\n\
         [[check]]\nname = \"away\"\nscript = \"http-probe.sh\"\nargs = [\"http://127.0.0.1:{web}/away\", \"--name\", \"away\"]\n\
         [[check]]\nname = \"missing\"\nscript = \"http-probe.sh\"\nargs = [\"http://127.0.0.1:{web}/missing\", \"--status\", \"404\", \"--name\", \"missing\"]\n\
         [[check]]\nname = \"down\"\nscript = \"http-probe.sh\"\nargs = [\"http://127.0.0.1:1/\", \"--timeout\", \"5\", \"--name\", \"down\"]\n\
         [[check]]\nname = \"tls\"\nscript = \"cert-expiry.sh\"\nargs = [\"127.0.0.1:{tls}\", \"--servername\", \"localhost\"]\n\
         [[check]]\nname = \"pem\"\nscript = \"cert-expiry.sh\"\nargs = [\"--file\", \"{cert}\"]\n\
         [[check]]\nname = \"beat\"\nscript = \"file-exists.sh\"\nargs = [\"{beat}\", \"{gone}\"]\n",
        cert = p("cert.pem"),
        beat = p("heartbeat"),
        gone = p("no-such-heartbeat"),
    ));
    let out = t.ok(&["metrics", "check", "--now", NOW]).stdout;
    let list = t.ok(&["metrics"]).stdout;
    drop(servers.stdin.take());
    let _ = servers.kill();
    let _ = servers.wait();
    assert!(!out.contains("` failed"), "{out}");

    assert_eq!(listed(&list, "http_probe_status{probe=\"ok\"}"), 200.0);
    assert_eq!(listed(&list, "http_probe_ok{probe=\"ok\"}"), 1.0);
    assert_eq!(listed(&list, "http_probe_curl_exit{probe=\"ok\"}"), 0.0);
    let latency = listed(&list, "http_probe_latency_seconds{probe=\"ok\"}");
    assert!(latency > 0.0 && latency < 5.0, "{latency}");
    // The redirect is the answer; the other server is never asked.
    assert_eq!(listed(&list, "http_probe_status{probe=\"away\"}"), 302.0);
    assert_eq!(listed(&list, "http_probe_ok{probe=\"away\"}"), 0.0);
    assert!(!hits.exists(), "the redirect was followed");
    assert_eq!(listed(&list, "http_probe_ok{probe=\"missing\"}"), 1.0);
    assert_eq!(listed(&list, "http_probe_status{probe=\"down\"}"), 0.0);
    assert_eq!(listed(&list, "http_probe_ok{probe=\"down\"}"), 0.0);
    // curl: "Failed to connect"
    assert_eq!(listed(&list, "http_probe_curl_exit{probe=\"down\"}"), 7.0);

    for target in [format!("127.0.0.1:{tls}"), p("cert.pem")] {
        let got = listed(&list, &format!("cert_expiry_days{{target=\"{target}\"}}"));
        assert!(
            (got - days).abs() < 0.01,
            "{target}: {got} days, want {days}\n{list}"
        );
        assert_eq!(
            listed(&list, &format!("cert_not_yet_valid{{target=\"{target}\"}}")),
            0.0
        );
    }
    let beat = p("heartbeat");
    assert_eq!(
        listed(&list, &format!("file_exists{{path=\"{beat}\"}}")),
        1.0
    );
    assert_eq!(
        listed(&list, &format!("file_age_seconds{{path=\"{beat}\"}}")),
        600.0
    );
    assert_eq!(
        listed(
            &list,
            &format!("file_exists{{path=\"{}\"}}", p("no-such-heartbeat"))
        ),
        0.0
    );
}

/// The scripts defend themselves too, for any caller that skips the gate: run directly
/// with hostile arguments they refuse, and sqlite3 runs in safe mode.
#[test]
fn the_scripts_themselves_refuse_hostile_arguments() {
    let t = Test::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let sysctl_log = t.path("systemctl.log");
    t.write(
        "bin/systemctl",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n",
            sysctl_log.display()
        ),
    );
    chmod_x(&t.path("bin/systemctl"));
    let db = t.path("jobs.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE jobs(state TEXT);")
        .unwrap();
    let m = |n: &str| t.path(n).display().to_string();
    let db = db.display().to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "systemd-failed.sh",
            vec!["-H".into(), "root@evil.example".into()],
        ),
        (
            "systemd-failed.sh",
            vec!["--user".into(), "--host=evil.example".into()],
        ),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                db.clone(),
                format!(".shell touch {}", m("pwned-shell")),
            ],
        ),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                db.clone(),
                format!("SELECT writefile('{}', 'x')", m("pwned-write")),
            ],
        ),
        (
            "queue.sh",
            vec![
                "sqlite".into(),
                db.clone(),
                format!("ATTACH '{}' AS a", m("pwned-attach")),
            ],
        ),
        (
            "queue.sh",
            vec!["redis".into(), "k".into(), "--host".into(), "-h".into()],
        ),
        (
            "queue.sh",
            vec!["redis".into(), "k".into(), "--port".into(), "1;id".into()],
        ),
        ("cpu.sh", vec![format!("$(touch {})", m("pwned-cpu"))]),
        ("cpu.sh", vec!["1".into(), "2".into()]),
        ("memory.sh", vec!["--help".into()]),
        ("cert-expiry.sh", vec!["-connect".into()]),
        ("cert-expiry.sh", vec!["-proxy=evil:1".into()]),
        ("http-probe.sh", vec!["-K".into(), "/etc/passwd".into()]),
        ("http-probe.sh", vec!["file:///etc/passwd".into()]),
        (
            "unit-restarts.sh",
            vec!["-H".into(), "root@evil.example".into()],
        ),
        (
            "unit-restarts.sh",
            vec!["crashy".into(), "--host=evil.example".into()],
        ),
        ("unit-restarts.sh", vec!["crashy;id".into()]),
        ("unit-restarts.sh", vec!["crashy\n-H".into()]),
        ("unit-restarts.sh", vec!["".into()]),
        ("unit-restarts.sh", vec![]),
        ("oom-kills.sh", vec!["../etc".into()]),
        ("oom-kills.sh", vec!["system.slice/../../etc".into()]),
        ("oom-kills.sh", vec!["/etc/passwd".into()]),
        ("oom-kills.sh", vec!["/sys/fs/cgroupx/a".into()]),
        ("oom-kills.sh", vec!["a b".into()]),
        // A link in the tree does not lead the read out of it.
        ("oom-kills.sh", vec!["escape.slice".into()]),
        ("oom-kills.sh", vec!["--journal".into(), "1;id".into()]),
        ("oom-kills.sh", vec!["--journal".into(), "-1".into()]),
        ("oom-kills.sh", vec!["--journal".into()]),
        ("oom-kills.sh", vec![]),
    ];
    t.write("cgroup/escape.slice/.keep", "");
    t.write("secret/memory.events", "oom_kill 7\n");
    std::os::unix::fs::symlink(
        t.path("secret/memory.events"),
        t.path("cgroup/escape.slice/memory.events"),
    )
    .unwrap();
    t.write(
        "bin/journalctl",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n",
            m("journalctl.log")
        ),
    );
    chmod_x(&t.path("bin/journalctl"));
    for (script, args) in &cases {
        let out = std::process::Command::new(dir.join(script))
            .args(args)
            .env("SYSTEMCTL", t.path("bin/systemctl"))
            .env("JOURNALCTL", t.path("bin/journalctl"))
            .env("LOGWARDEN_CGROUP_ROOT", t.path("cgroup"))
            .current_dir(t.path(""))
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{script} {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(
        !sysctl_log.exists(),
        "systemctl was called: {:?}",
        lines(&sysctl_log)
    );
    assert!(
        !t.path("journalctl.log").exists(),
        "journalctl was called: {:?}",
        lines(&t.path("journalctl.log"))
    );
    for marker in ["pwned-shell", "pwned-write", "pwned-attach", "pwned-cpu"] {
        assert!(!t.path(marker).exists(), "{marker} was created");
    }
}

/// A fake `systemctl show`: each unit's properties are the file `units/UNIT` (in
/// systemd's order, not the one asked for); a unit without a file is not found, as
/// systemd answers for a typo. Every call is logged.
const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$FAKE_DIR/systemctl.log"
for u; do :; done
if [ -f "$FAKE_DIR/units/$u" ]; then
    cat "$FAKE_DIR/units/$u"
else
    printf 'Id=%s.service\nNRestarts=0\nResult=success\nActiveState=inactive\nLoadState=not-found\n' "$u"
fi
"#;

/// A fake `journalctl -k -o cat --since @A --until @B`: prints the lines of `kmsg`
/// (each `EPOCH message`) whose time is within [A, B], as journalctl would.
const FAKE_JOURNALCTL: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$FAKE_DIR/journalctl.log"
since=""; until=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --since) since="${2#@}"; shift ;;
        --until) until="${2#@}"; shift ;;
    esac
    shift
done
[ -f "$FAKE_DIR/kmsg" ] || exit 0
awk -v a="$since" -v b="$until" '$1 >= a && $1 <= b { sub(/^[0-9]+ /, ""); print }' "$FAKE_DIR/kmsg"
"#;

fn unit(t: &Test, name: &str, id: &str, restarts: u32, result: &str, active: &str) {
    t.write(
        &format!("fake/units/{name}"),
        &format!(
            "Id={id}\nNRestarts={restarts}\nResult={result}\nActiveState={active}\nLoadState=loaded\n"
        ),
    );
}

fn memory_events(t: &Test, oom_kill: u32, max: u32) {
    t.write(
        "cgroup/system.slice/app.service/memory.events",
        &format!(
            "low 0\nhigh 0\nmax {max}\noom {oom_kill}\noom_kill {oom_kill}\noom_group_kill 0\n"
        ),
    );
}

/// The commented `[[check]]` example named `name` in the shipped etc/logwarden.toml,
/// uncommented, with `args_env` in place of its `args`.
fn shipped_check(name: &str, args_env: &str) -> String {
    let shipped = include_str!("../../etc/logwarden.toml");
    let lines: Vec<&str> = shipped.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == format!("# name = \"{name}\""))
        .unwrap_or_else(|| panic!("no example check {name} in etc/logwarden.toml"));
    assert_eq!(lines[at - 1], "# [[check]]");
    let mut out = format!("[[check]]\n{}\n{args_env}\n", &lines[at][2..]);
    for l in &lines[at + 1..] {
        let Some(l) = l.strip_prefix("# ") else {
            break;
        };
        if !l.starts_with("args = ") {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The open incidents as (title, severity), sorted.
fn open(t: &Test) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = t
        .incidents()
        .iter()
        .filter(|i| i["status"] == "open")
        .map(|i| {
            (
                i["title"].as_str().unwrap().to_string(),
                i["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A unit in a crash loop, one that hits its start limit, a mistyped unit, and an app
/// whose processes the kernel kills for lack of memory: the two probes read them
/// (systemctl and journalctl faked, the cgroup tree a folder) and their rules, as the
/// shipped config suggests them, open exactly these incidents, run by run.
#[test]
fn crash_loop_and_oom_probes_open_their_incidents_run_by_run() {
    const T0: i64 = 1_795_000_000; // 2026-11-18T11:06:40Z
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(T0 + s, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let t = Test::new();
    t.write("fake/bin/systemctl", FAKE_SYSTEMCTL);
    t.write("fake/bin/journalctl", FAKE_JOURNALCTL);
    chmod_x(&t.path("fake/bin/systemctl"));
    chmod_x(&t.path("fake/bin/journalctl"));
    let fake = t.path("fake").display().to_string();
    let cgroup = t.path("cgroup").display().to_string();
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    t.write("app.log", "");
    // The rules are the shipped config's examples, uncommented; the scripts get the
    // fakes through the check's `env` only (they run with a cleared environment).
    t.with_app_source(&format!(
        "[metrics]\nscripts_dir = \"{scripts}\"\n{}{}",
        shipped_check(
            "crash-loops",
            &format!("args = [\"crashy\", \"web.service\", \"typo\"]\nenv = {{ SYSTEMCTL = \"{fake}/bin/systemctl\", FAKE_DIR = \"{fake}\" }}"),
        ),
        shipped_check(
            "oom",
            &format!("args = [\"/sys/fs/cgroup/system.slice/app.service\", \"gone.slice\", \"--journal\", \"900\"]\nenv = {{ JOURNALCTL = \"{fake}/bin/journalctl\", FAKE_DIR = \"{fake}\", LOGWARDEN_CGROUP_ROOT = \"{cgroup}\" }}"),
        ),
    ));

    // Run 1: all calm; an OOM kill two hours ago is outside the 15-minute window.
    unit(&t, "crashy", "crashy.service", 1, "success", "active");
    unit(&t, "web.service", "web.service", 0, "success", "active");
    memory_events(&t, 0, 0);
    t.write(
        "fake/kmsg",
        &format!(
            "{} Out of memory: Killed process 77 (old) total-vm:10kB\n{} audit: something else\n",
            T0 - 7200,
            T0 - 60
        ),
    );
    let out = t.ok(&["run", "--now", &at(0)]).stdout;
    assert!(!out.contains("` failed"), "{out}");
    assert_eq!(
        open(&t),
        vec![(
            "systemd cannot load typo.service (unknown, masked or broken)".to_string(),
            "warning".to_string()
        )],
        "{out}"
    );
    let list = t.ok(&["metrics"]).stdout;
    assert_eq!(
        listed(&list, "systemd_unit_restarts{unit=\"crashy.service\"}"),
        1.0
    );
    assert_eq!(
        listed(&list, "systemd_unit_active{unit=\"web.service\"}"),
        1.0
    );
    assert_eq!(
        listed(&list, "systemd_unit_loaded{unit=\"typo.service\"}"),
        0.0
    );
    assert_eq!(
        listed(
            &list,
            "cgroup_oom_kills{cgroup=\"system.slice/app.service\"}"
        ),
        0.0
    );
    assert_eq!(listed(&list, "cgroup_exists{cgroup=\"gone.slice\"}"), 0.0);
    assert_eq!(
        listed(&list, "kernel_oom_kills{window_seconds=\"900\"}"),
        0.0
    );

    // Run 2: crashy restarts in a loop; the kernel kills a process of the app.
    unit(&t, "crashy", "crashy.service", 6, "exit-code", "activating");
    memory_events(&t, 1, 4);
    t.write(
        "fake/kmsg",
        &format!(
            "{} Out of memory: Killed process 77 (old) total-vm:10kB\n{} Memory cgroup out of memory: Killed process 4242 (python3) total-vm:812345kB\n",
            T0 - 7200,
            T0 + 250
        ),
    );
    let out = t.ok(&["run", "--now", &at(300)]).stdout;
    assert_eq!(
        open(&t),
        vec![
            (
                "crashy.service is in a crash loop (6 restarts)".into(),
                "critical".into()
            ),
            (
                "systemd cannot load typo.service (unknown, masked or broken)".into(),
                "warning".into()
            ),
            (
                "the kernel killed 1 process(es) for lack of memory".into(),
                "warning".into()
            ),
            (
                "the kernel killed processes of system.slice/app.service for lack of memory".into(),
                "critical".into()
            ),
        ],
        "{out}"
    );

    // Run 3: systemd gives up on crashy and web; the kill has left the window (that incident
    // resolves), the cgroup's counter has not (it counts until the unit restarts).
    // crashy as systemd 252 leaves it when a restart hits the start limit (Result stays
    // the crash's); web.service as a refused start leaves it.
    unit(&t, "crashy", "crashy.service", 9, "exit-code", "failed");
    unit(
        &t,
        "web.service",
        "web.service",
        0,
        "start-limit-hit",
        "failed",
    );
    let out = t.ok(&["run", "--now", &at(1500)]).stdout;
    assert_eq!(
        open(&t),
        vec![
            (
                "crashy.service is in a crash loop (9 restarts)".into(),
                "critical".into()
            ),
            (
                "systemd cannot load typo.service (unknown, masked or broken)".into(),
                "warning".into()
            ),
            (
                "systemd gave up restarting crashy.service".into(),
                "critical".into()
            ),
            (
                "systemd gave up restarting web.service".into(),
                "critical".into()
            ),
            (
                "the kernel killed processes of system.slice/app.service for lack of memory".into(),
                "critical".into()
            ),
        ],
        "{out}"
    );

    assert_eq!(
        t.incidents().len(),
        6,
        "the kernel's incident is resolved, not gone"
    );
    // Each unit was asked for by itself, never with an option from its name; the
    // journal window is the 900 s before each run's `now`.
    let calls = lines(&t.path("fake/systemctl.log"));
    let show =
        |u: &str| format!("show --no-pager -p Id,LoadState,ActiveState,Result,NRestarts -- {u}");
    assert_eq!(
        calls,
        [0, 1, 2]
            .iter()
            .flat_map(|_| [show("crashy"), show("web.service"), show("typo")])
            .collect::<Vec<_>>()
    );
    assert_eq!(
        lines(&t.path("fake/journalctl.log")),
        [0, 300, 1500]
            .iter()
            .map(|s| format!(
                "-k --no-pager -q -o cat --since @{} --until @{}",
                T0 + s - 900,
                T0 + s
            ))
            .collect::<Vec<_>>()
    );
}

/// The installed unit gives the watcher a temp folder of its own (`TMPDIR`), the host's
/// /tmp being read-only to it: a check script and a script the investigator runs both
/// get `TMPDIR` through their cleared environment, so `mktemp` writes there.
#[test]
fn check_and_investigator_scripts_make_temp_files_in_the_watchers_tmpdir() {
    let api = FakeAnthropic::start();
    let ntfy = FakeNtfy::start(None);
    let t = Test::new();
    let tmp = t.path("own-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let t = t
        .env("LW_TEST_KEY", KEY)
        .env("TMPDIR", &tmp.display().to_string());
    let made = t.path("made.log");
    // memory.sh as shipped, making a temp file first and saying who made it where.
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/memory.sh"))
            .unwrap();
    let (header, body) = shipped.split_once("set -euo pipefail\n").unwrap();
    t.write(
        "tools/memory.sh",
        &format!(
            "{header}set -euo pipefail\nf=$(mktemp)\nprintf '%s|%s\\n' \"${{LOGWARDEN_CHECK:-investigator}}\" \"$f\" >> '{}'\n{body}",
            made.display()
        ),
    );
    chmod_x(&t.path("tools/memory.sh"));
    let tools = toml::Value::String(t.path("tools").display().to_string()).to_string();
    t.with_app_source(&format!(
        "[investigator]\nkind = \"anthropic-api\"\nbase_url = \"{}\"\napi_key_env = \"LW_TEST_KEY\"\ntimeout = \"60s\"\nmodel = \"claude-test-1\"\nretries = 0\nmax_turns = 10\nallow_scripts = true\nscripts_dir = {tools}\nscript_timeout = \"20s\"\n{}\n\
         [metrics]\nscripts_dir = {tools}\n[[check]]\nname = \"mem\"\nscript = \"memory.sh\"\n",
        api.url,
        ntfy.config("ops")
    ));
    t.write(
        "app.log",
        "2026-11-22 10:00:00.000 | ERROR    | app.jobs:run:10 - Worker ran out of memory\n",
    );
    api.push(Reply::ToolUse {
        name: "run_script".into(),
        input: json!({"name": "memory.sh", "args": []}),
    });
    api.push(Reply::Text(verdict_text("real", "Out of memory")));
    t.ok(&["run", "--now", NOW]);

    let results = tool_results(&api.messages().last().unwrap().body);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        !results[0].0 && results[0].1.contains("mem_total_bytes"),
        "{results:?}"
    );
    let made = lines(&made);
    let mut who: Vec<&str> = made.iter().map(|l| l.split('|').next().unwrap()).collect();
    who.sort();
    assert_eq!(who, ["investigator", "mem"], "{made:?}");
    let elsewhere: Vec<&String> = made
        .iter()
        .filter(|l| {
            let file = Path::new(l.split_once('|').unwrap().1);
            !(file.starts_with(&tmp) && file.exists())
        })
        .collect();
    assert!(
        elsewhere.is_empty(),
        "mktemp wrote outside TMPDIR {}: {elsewhere:?}",
        tmp.display()
    );
}

/// Starts `script` (Python) with `args`, reads the ports it prints on its first line, and
/// returns it (its stdin held open: it serves until that closes or it is killed). The
/// servers run on the real clock: under libfaketime (the clock-ahead run) Python's
/// `time.sleep` returns early, and a server's clock matters to no assertion.
fn loopback_servers(t: &Test, script: &str, args: &[&Path]) -> (std::process::Child, Vec<u16>) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    t.write("servers.py", script);
    let mut child = Command::new(python().expect("python"))
        .arg(t.path("servers.py"))
        .args(args)
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    (child, ports)
}

fn stop(mut child: std::process::Child) {
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}

/// A loopback server whose answers go wrong after a good status line: `/drip` announces
/// 600 bytes and sends one a second, `/short` announces 1000 and closes after 10,
/// `/flood` streams without end and without a length, `/huge` announces a terabyte,
/// `/whole` is a complete 200 and `/moved` a complete 302 (to a port nobody listens on).
const CUT_SHORT_SERVER: &str = r#"
import http.server, sys, threading, time
class Cut(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "600")
            self.end_headers()
            for _ in range(600):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
        elif self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
        elif self.path in ("/flood", "/huge"):
            self.send_response(200)
            if self.path == "/huge":
                self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/whole")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Cut)
s.daemon_threads = True
threading.Thread(target=s.serve_forever, daemon=True).start()
print(s.server_port, flush=True)
sys.stdin.read()
"#;

/// A 200 whose body never completes (it drips past the timeout, or stops short of its
/// Content-Length, or runs past `--max-bytes`) is not a healthy answer: `http_probe_ok` is 0, with the status and
/// latency as far as curl got and curl's exit; a whole answer, and a 3xx asked for
/// (not followed, so complete), stay ok.
#[test]
fn http_probe_is_not_ok_when_the_answer_is_cut_short_or_late() {
    let t = Test::new();
    let (server, ports) = loopback_servers(&t, CUT_SHORT_SERVER, &[]);
    let web = ports[0];
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    t.write("app.log", "");
    let check = |name: &str, extra: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\nscript = \"http-probe.sh\"\n\
             args = [\"http://127.0.0.1:{web}/{name}\", \"--timeout\", \"2\", \"--name\", \"{name}\"{extra}]\n"
        )
    };
    t.with_app_source(&format!(
        "[metrics]\nscripts_dir = \"{scripts}\"\n{}{}{}{}",
        check("drip", ""),
        check("short", ""),
        check("whole", ""),
        check("moved", ", \"--status\", \"302\""),
    ));
    // Bodies past --max-bytes end the probe long before its (generous) timeout.
    let flood = |name: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\nscript = \"http-probe.sh\"\n\
             args = [\"http://127.0.0.1:{web}/{name}\", \"--timeout\", \"60\", \"--max-bytes\", \"100000\", \"--name\", \"{name}\"]\n"
        )
    };
    let cfg = t.read("logwarden.toml");
    t.write(
        "logwarden.toml",
        &format!("{cfg}{}{}", flood("flood"), flood("huge")),
    );
    let out = t.ok(&["metrics", "check", "--now", NOW]).stdout;
    let list = t.ok(&["metrics"]).stdout;
    stop(server);
    assert!(!out.contains("` failed"), "{out}");

    let v = |metric: &str, probe: &str| listed(&list, &format!("{metric}{{probe=\"{probe}\"}}"));
    for (probe, curl_exit) in [
        ("drip", 28.0),
        ("short", 18.0),
        ("flood", 23.0),
        ("huge", 63.0),
    ] {
        assert_eq!(v("http_probe_ok", probe), 0.0, "{probe}\n{list}");
        assert_eq!(v("http_probe_status", probe), 200.0, "{probe}\n{list}");
        assert_eq!(
            v("http_probe_curl_exit", probe),
            curl_exit,
            "{probe}\n{list}"
        );
    }
    // The drip was cut at the timeout: the latency says how long the probe waited.
    let waited = v("http_probe_latency_seconds", "drip");
    assert!(waited >= 1.9, "{waited}");
    for (probe, status) in [("whole", 200.0), ("moved", 302.0)] {
        assert_eq!(v("http_probe_ok", probe), 1.0, "{probe}\n{list}");
        assert_eq!(v("http_probe_status", probe), status, "{probe}\n{list}");
        assert_eq!(v("http_probe_curl_exit", probe), 0.0, "{probe}\n{list}");
    }
}

/// A certificate whose notBefore is still to come (2099) has plenty of days left, yet
/// every client refuses it: `cert_not_yet_valid` says so, from a server and from a
/// file, and the shipped rule for it opens a critical incident.
#[test]
fn cert_expiry_reports_a_certificate_not_valid_yet_and_the_shipped_rule_fires() {
    let t = Test::new();
    self_signed_cert(&t, "2099-01-01 00:00:00", "localhost");
    let (server, ports) = loopback_servers(
        &t,
        PROBE_SERVERS,
        &[
            &t.path("cert.pem"),
            &t.path("key.pem"),
            &t.path("other-hits.log"),
        ],
    );
    let tls = ports[2];
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    let cert = t.path("cert.pem").display().to_string();
    t.write("app.log", "");
    t.with_app_source(&format!(
        "[metrics]\nscripts_dir = \"{scripts}\"\n{}\
         [[check]]\nname = \"pem\"\nscript = \"cert-expiry.sh\"\nargs = [\"--file\", \"{cert}\"]\n",
        shipped_check(
            "cert",
            &format!("args = [\"127.0.0.1:{tls}\", \"--servername\", \"localhost\"]"),
        ),
    ));
    let out = t.ok(&["run", "--now", NOW]).stdout;
    let list = t.ok(&["metrics"]).stdout;
    let json: Value = serde_json::from_str(&t.ok(&["metrics", "--json"]).stdout).unwrap();
    stop(server);
    assert!(!out.contains("` failed"), "{out}");

    for target in [format!("127.0.0.1:{tls}"), cert.clone()] {
        let key = |m: &str| format!("{m}{{target=\"{target}\"}}");
        assert_eq!(listed(&list, &key("cert_not_yet_valid")), 1.0, "{list}");
        assert!(
            listed(&list, &key("cert_expiry_days")) > 14.0,
            "the days left alone look fine\n{list}"
        );
        // 2099-01-01T00:00:00Z and 30 days later, give or take faketime's seconds
        // (`metrics` rounds them; past 2038, so past a 32-bit printf too)
        let value = |m: &str| {
            json["series"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["key"] == key(m))
                .and_then(|s| s["last_value"].as_f64())
                .unwrap_or_else(|| panic!("no {m}: {json}"))
        };
        let not_before = value("cert_not_before_timestamp_seconds");
        assert!((not_before - 4_070_908_800.0).abs() < 120.0, "{not_before}");
        let not_after = value("cert_not_after_timestamp_seconds");
        assert!((not_after - 4_073_500_800.0).abs() < 120.0, "{not_after}");
    }
    assert_eq!(
        open(&t),
        vec![(
            format!("the certificate of 127.0.0.1:{tls} is not valid yet"),
            "critical".to_string()
        )],
        "{out}"
    );
}

/// A certificate file's path is one label value, escaped as the exposition format
/// wants (backslash, double quote, newline), whatever characters it holds: a quote in
/// it never makes a label of its own.
#[test]
fn cert_expiry_labels_any_file_path_as_one_escaped_value() {
    let t = Test::new();
    self_signed_cert(&t, "2026-11-01 00:00:00", "localhost");
    let names = ["p\",x=\"y.pem", "back\\slash\\\".pem", "two\nlines.pem"];
    let mut checks = String::new();
    for (i, n) in names.iter().enumerate() {
        std::fs::copy(t.path("cert.pem"), t.path(n)).unwrap();
        let path = toml::Value::String(t.path(n).display().to_string()).to_string();
        checks.push_str(&format!(
            "[[check]]\nname = \"pem{i}\"\nscript = \"cert-expiry.sh\"\nargs = [\"--file\", {path}]\n"
        ));
    }
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    t.write("app.log", "");
    t.with_app_source(&format!("[metrics]\nscripts_dir = \"{scripts}\"\n{checks}"));
    let out = t.ok(&["metrics", "check", "--now", NOW]).stdout;
    let list = t.ok(&["metrics"]).stdout;
    assert!(!out.contains("` failed"), "{out}");
    for n in names {
        let escaped = t
            .path(n)
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        for m in ["cert_expiry_days", "cert_not_yet_valid"] {
            listed(&list, &format!("{m}{{target=\"{escaped}\"}}"));
        }
    }
    assert!(
        !list.contains(",x=\"y.pem"),
        "a label was injected:\n{list}"
    );
}

/// `--timeout 0` is no limit at all to curl and to coreutils' `timeout`: the probes
/// refuse a timeout that is not positive, before they measure anything.
#[test]
fn probes_refuse_a_timeout_that_is_not_positive() {
    let t = Test::new();
    self_signed_cert(&t, "2026-11-01 00:00:00", "localhost");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let cert = t.path("cert.pem").display().to_string();
    let run = |script: &str, args: &[&str]| {
        std::process::Command::new(dir.join(script))
            .args(args)
            .current_dir(t.path(""))
            .output()
            .unwrap()
    };
    // Port 1 on loopback refuses at once: the probe runs and reports it down.
    let http = |timeout: &str| {
        run(
            "http-probe.sh",
            &["http://127.0.0.1:1/", "--timeout", timeout],
        )
    };
    let pem = |timeout: &str| run("cert-expiry.sh", &["--file", &cert, "--timeout", timeout]);
    for out in [http("5"), http("0.5"), pem("5")] {
        assert!(out.status.success(), "{out:?}");
        assert!(!out.stdout.is_empty(), "{out:?}");
    }
    for (what, out) in [
        ("http 0", http("0")),
        ("http 0.0", http("0.0")),
        ("http 000", http("000")),
        ("http 0.0001", http("0.0001")),
        ("http -1", http("-1")),
        ("cert 0", pem("0")),
        ("cert 00", pem("00")),
        ("cert -1", pem("-1")),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        assert!(out.stdout.is_empty(), "{what}: {out:?}");
        assert!(
            err.contains("--timeout must be a positive"),
            "{what}: {err}"
        );
    }
}

/// Only LoadState=loaded is a loaded unit: a masked unit, one systemd has no file for
/// and one whose file it cannot use can none of them start.
#[test]
fn unit_restarts_reads_only_a_loaded_unit_as_loaded() {
    let t = Test::new();
    t.write("fake/bin/systemctl", FAKE_SYSTEMCTL);
    chmod_x(&t.path("fake/bin/systemctl"));
    let states = ["loaded", "masked", "error", "bad-setting", "not-found"];
    for s in states {
        t.write(
            &format!("fake/units/{s}"),
            &format!(
                "Id={s}.service\nNRestarts=0\nResult=success\nActiveState=inactive\nLoadState={s}\n"
            ),
        );
    }
    let out = std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/unit-restarts.sh"),
    )
    .args(states)
    .arg("typo")
    .env("SYSTEMCTL", t.path("fake/bin/systemctl"))
    .env("FAKE_DIR", t.path("fake"))
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let loaded: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("systemd_unit_loaded{"))
        .collect();
    assert_eq!(
        loaded,
        [
            "systemd_unit_loaded{unit=\"loaded.service\"} 1",
            "systemd_unit_loaded{unit=\"masked.service\"} 0",
            "systemd_unit_loaded{unit=\"error.service\"} 0",
            "systemd_unit_loaded{unit=\"bad-setting.service\"} 0",
            "systemd_unit_loaded{unit=\"not-found.service\"} 0",
            "systemd_unit_loaded{unit=\"typo.service\"} 0",
        ],
        "{stdout}"
    );
}
