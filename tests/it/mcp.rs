//! `logwarden mcp`, the tool layer served over MCP (JSON-RPC 2.0 on stdio), driven as a
//! child process: the protocol (initialize, list, call, errors) and what the tools may
//! read (named sources, the store, the deploy repo, curated scripts), always redacted,
//! framed with the nonce and capped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use serde_json::{json, Value};

use crate::util::*;

const NONCE: &str = "0123456789abcdef0123456789abcdef";

/// Secrets planted in the log, the `.env` next to it, the deploy repo and a script.
const PLANTED: &[&str] = &[
    "Hunter2PLANTEDpw",
    "AKIAZZPLANTED0000000",
    "unshaped-PLANTED-env-value",
    "sk_live_PLANTEDenv0123456789abcdef",
    "ghp_PLANTEDgit0123456789abcdefghijklmnopqr",
    "PLANTEDscriptpw",
];

struct Mcp {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Mcp {
    fn start(t: &Test, incident: Option<&str>) -> Mcp {
        let mut args = vec!["mcp", "--nonce", NONCE];
        if let Some(id) = incident {
            args.extend(["--incident", id]);
        }
        let mut child = t
            .command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Mcp {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        assert!(
            self.stdout.read_line(&mut line).unwrap() > 0,
            "server ended"
        );
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&msg.to_string());
        let r = self.read();
        assert_eq!(r["jsonrpc"], "2.0");
        assert_eq!(r["id"], id, "{r}");
        r
    }

    /// A tools/call: the result's text and isError.
    fn call(&mut self, name: &str, args: Value) -> (String, bool) {
        let r = self.request(
            json!(7),
            "tools/call",
            json!({"name": name, "arguments": args}),
        );
        let res = &r["result"];
        assert_eq!(res["content"][0]["type"], "text", "{r}");
        (
            res["content"][0]["text"].as_str().unwrap().to_string(),
            res["isError"] == json!(true),
        )
    }

    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().unwrap()
    }
}

/// A store with incident #1 (investigator none), a deploy repo, a curated script, and
/// secrets planted everywhere.
fn setup() -> Test {
    let t = Test::new();
    let repo = t.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| git(&repo, args);
    git(&["init", "-q"]);
    std::fs::write(
        repo.join("settings.py"),
        "GITHUB_TOKEN = \"ghp_PLANTEDgit0123456789abcdefghijklmnopqr\"\n",
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "Switch payments to the new gateway"]);
    let scripts = t.path("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("disk-usage"),
        "#!/bin/sh\n# logwarden-args: arg* PATH /[a-z/]*\necho \"usage of $1: 97% password=PLANTEDscriptpw\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        scripts.join("disk-usage"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    t.with_app_source(&format!(
        "[investigator]\nkind = \"none\"\ndeploy_repo = \"repo\"\nscripts_dir = \"{}\"\nallow_scripts = true\n",
        scripts.display()
    ));
    t.write(
        ".env",
        "STRIPE_SECRET_KEY=sk_live_PLANTEDenv0123456789abcdef\nDB_PLAIN=unshaped-PLANTED-env-value\n",
    );
    t.write("app.log", "");
    t.append(
        "app.log",
        b"2026-11-22 09:59:00.000 | INFO     | app.api:handle:4 - request from 10.0.0.7 answered\n\
          2026-11-22 10:00:00.000 | ERROR    | app.pay:charge:9 - Charge failed \0 password=Hunter2PLANTEDpw key AKIAZZPLANTED0000000\n\
          2026-11-22 11:30:00.000 | INFO     | app.api:handle:4 - much later\n",
    );
    t.ok(&["run", "--now", "2026-11-22T11:31:00Z"]);
    t
}

fn assert_no_secret(what: &str, text: &str) {
    for s in PLANTED {
        assert!(!text.contains(s), "{what} leaks {s}: {text}");
    }
}

fn assert_framed(text: &str) {
    assert!(
        text.contains(&format!("<<<LOG DATA {NONCE}\n"))
            && text.trim_end().ends_with(&format!("{NONCE} LOG DATA>>>")),
        "{text}"
    );
}

#[test]
fn the_server_answers_initialize_list_call_and_errors() {
    let t = setup();
    let mut m = Mcp::start(&t, Some("1"));
    let init = m.request(
        json!(1),
        "initialize",
        json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}),
    );
    let r = &init["result"];
    assert_eq!(r["protocolVersion"], "2024-11-05", "{init}");
    assert_eq!(r["serverInfo"]["name"], "logwarden");
    assert!(r["capabilities"]["tools"].is_object(), "{init}");
    // A notification gets no answer: the next line answers the ping.
    m.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let pong = m.request(json!("p-1"), "ping", json!({}));
    assert_eq!(pong["result"], json!({}));

    let list = m.request(json!(2), "tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "search_events",
            "read_evidence",
            "read_source",
            "git_log",
            "git_show",
            "run_script"
        ]
    );
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(!tool["description"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        tools[2]["inputSchema"]["properties"]["source"]["enum"],
        json!(["app"])
    );

    let unknown = m.request(json!(3), "resources/list", json!({}));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let no_tool = m.request(
        json!(4),
        "tools/call",
        json!({"name": "Bash", "arguments": {"command": "cat .env"}}),
    );
    assert_eq!(no_tool["error"]["code"], -32602, "{no_tool}");
    let bad_args = m.request(
        json!(5),
        "tools/call",
        json!({"name": "git_log", "arguments": ["x"]}),
    );
    assert_eq!(bad_args["error"]["code"], -32602, "{bad_args}");
    m.send_line("{not json");
    let parse = m.read();
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert_eq!(parse["id"], Value::Null);
    m.send_line(r#"{"jsonrpc":"2.0","id":6}"#);
    assert_eq!(m.read()["error"]["code"], -32600);
    // Still serving after the errors.
    let (text, is_error) = m.call("git_log", json!({}));
    assert!(!is_error && text.contains("Switch payments"), "{text}");
    assert!(m.finish().success(), "ends cleanly when stdin closes");
}

#[test]
fn tools_read_only_what_logwarden_names_and_every_result_is_redacted() {
    let t = setup();
    let mut m = Mcp::start(&t, Some("1"));
    let mut seen = String::new();
    let mut call = |m: &mut Mcp, name: &str, args: Value| {
        let (text, is_error) = m.call(name, args);
        seen.push_str(&text);
        (text, is_error)
    };

    // A source by name, around the incident by default: all levels, not the later line.
    let (text, err) = call(&mut m, "read_source", json!({"source": "app"}));
    assert!(!err, "{text}");
    assert_framed(&text);
    assert!(text.contains("request from 10.0.0.7 answered"), "{text}");
    assert!(
        text.contains("Charge failed \u{FFFD} password=[REDACTED:password]"),
        "{text}"
    );
    assert!(text.contains("[REDACTED:aws-key]"), "{text}");
    assert!(!text.contains("much later"), "{text}");
    let (text, _) = call(
        &mut m,
        "read_source",
        json!({"source": "app", "around": "2026-11-22T11:30:00Z", "minutes": 1}),
    );
    assert!(
        text.contains("much later") && !text.contains("Charge failed"),
        "{text}"
    );
    // Nothing but a configured source name is accepted.
    for bad in [".env", "../.env", "app.log", "/etc/passwd"] {
        let (text, err) = call(&mut m, "read_source", json!({"source": bad}));
        assert!(err && text.contains("no source named"), "{bad}: {text}");
    }

    let (text, err) = call(&mut m, "search_events", json!({"query": "charge failed"}));
    assert!(!err && text.contains("incident #1"), "{text}");
    assert_framed(&text);
    let (text, err) = call(&mut m, "read_evidence", json!({}));
    assert!(!err && text.contains("## Triggering records"), "{text}");
    assert_framed(&text);

    let (text, err) = call(&mut m, "git_show", json!({"commit": "HEAD"}));
    assert!(!err && text.contains("settings.py"), "{text}");
    assert!(text.contains("[REDACTED:github-token]"), "{text}");
    for bad in [
        "--output=/tmp/x",
        "HEAD:.env",
        "main; cat .env",
        "../../.env",
    ] {
        let (text, err) = call(&mut m, "git_show", json!({"commit": bad}));
        assert!(err && text.contains("not a commit"), "{bad}: {text}");
    }

    let (text, err) = call(
        &mut m,
        "run_script",
        json!({"name": "disk-usage", "args": ["/var"]}),
    );
    assert!(!err && text.contains("usage of /var: 97%"), "{text}");
    assert_framed(&text);
    for bad in ["../../bin/sh", "sh", ".env"] {
        let (text, err) = call(
            &mut m,
            "run_script",
            json!({"name": bad, "args": ["-c", "cat .env"]}),
        );
        assert!(err && text.contains("no script named"), "{bad}: {text}");
    }
    assert!(m.finish().success());
    assert_no_secret("a tool result", &seen);
}

#[test]
fn results_are_capped() {
    let t = setup();
    let mut big = String::new();
    for i in 0..12 {
        big.push_str(&format!(
            "2026-11-22 10:00:{i:02}.000 | ERROR    | app.bulk:run:1 - Bulk failure {}\n",
            "word ".repeat(4_000)
        ));
    }
    t.append("app.log", big.as_bytes());
    let mut m = Mcp::start(&t, None);
    let (text, err) = m.call(
        "read_source",
        json!({"source": "app", "around": "2026-11-22T10:00:00Z", "contains": "bulk failure"}),
    );
    assert!(!err, "{text}");
    assert!(text.contains("Bulk failure"), "{text}");
    assert!(text.len() <= 17 * 1024, "{} bytes", text.len());
    assert!(text.contains("output cut"), "says it was cut");
    assert_framed(&text);
    // Without an incident, read_source needs a time.
    let (text, err) = m.call("read_source", json!({"source": "app"}));
    assert!(err && text.contains("around"), "{text}");
    assert!(m.finish().success());
}

#[test]
fn tool_and_folder_settings_are_refused_with_a_reason() {
    let t = Test::new();
    t.with_app_source(
        "[investigator]\nkind = \"claude-cli\"\nallowed_tools = [\"Bash\"]\nadd_dirs = [\"/srv/app\"]\nextra_args = [\"--plugin-dir\", \"/tmp/p\", \"--input-format=stream-json\", \"--verbose\"]\n",
    );
    let r = t.run(&["check"]);
    assert_eq!(r.code, Some(2), "{}", r.all());
    for key in ["`investigator.allowed_tools`", "`investigator.add_dirs`"] {
        let line = r.stderr.lines().find(|l| l.contains(key));
        assert!(
            line.is_some_and(|l| l.contains("logwarden's own read-only tools")),
            "{key}: {}",
            r.stderr
        );
    }
    for arg in ["--plugin-dir", "--input-format=stream-json"] {
        assert!(
            r.stderr.contains(&format!(
                "`{arg}` is not an option logwarden passes to claude"
            )),
            "{arg}: {}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("`--verbose`"), "{}", r.stderr);
}

/// A record longer than a tool shows is redacted before it is cut: a token cut at the
/// limit no longer looks like one, and its first half would go out.
#[test]
fn a_long_record_is_redacted_before_it_is_cut() {
    let t = setup();
    let token = "ghp_R7xK2mQ9vL4nT8wZ3bC6dF1gH5jK0pS2uY4a";
    for pad in [1990, 1995, 1999] {
        let line = format!(
            "2026-11-22 09:59:30.000 | INFO     | app.api:handle:4 - {} {token} done\n",
            "x".repeat(pad - 60)
        );
        t.append("app.log", line.as_bytes());
    }
    let mut m = Mcp::start(&t, Some("1"));
    let (text, err) = m.call("read_source", json!({"source": "app"}));
    assert!(!err, "{text}");
    assert!(text.contains("xxxxxxxx"), "{text}");
    for half in [&token[..12], &token[token.len() - 12..]] {
        assert!(!text.contains(half), "leaks {half}: {text}");
    }
}
