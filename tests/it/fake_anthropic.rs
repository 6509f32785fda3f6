//! A fake Anthropic Messages API on loopback: `POST /v1/messages` (also `?beta=true`)
//! answered as plain JSON or, when the request asks `"stream": true`, as server-sent
//! events; `POST /v1/messages/count_tokens`; `HEAD /` and any other GET with 200. The
//! replies come from a queue (text, a `tool_use` round, an error status), then a
//! default text. Every request is recorded.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// One scripted answer to a messages request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A final answer.
    Text(String),
    /// Ask for one tool use.
    ToolUse { name: String, input: Value },
    /// An error status with Anthropic's error body.
    Status(u16),
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::util::header_of(&self.headers, name)
    }

    /// A messages request (not token counting).
    pub fn is_messages(&self) -> bool {
        self.method == "POST"
            && self.url.starts_with("/v1/messages")
            && !self.url.contains("count_tokens")
    }

    /// The names of the tools offered.
    pub fn tools(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// All the text of the request's body, for searching.
    pub fn text(&self) -> String {
        self.body.to_string()
    }
}

pub struct FakeAnthropic {
    pub url: String,
    pub replies: Arc<Mutex<Vec<Reply>>>,
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub default_text: Arc<Mutex<String>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A verdict answer as the model would write it.
pub fn verdict_text(verdict: &str, title: &str) -> String {
    format!(
        "I read the traceback.\n```json\n{}\n```",
        json!({"verdict": verdict, "severity": "warning", "title": title,
               "summary": format!("{title}: summary."), "root_cause": "the cause",
               "suggested_fix": "the fix", "confidence": 0.8})
    )
}

impl FakeAnthropic {
    pub fn start() -> FakeAnthropic {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().unwrap().port();
        let replies: Arc<Mutex<Vec<Reply>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let default_text = Arc::new(Mutex::new(verdict_text("real", "Fake verdict")));
        let (s, q, r, d) = (
            server.clone(),
            replies.clone(),
            requests.clone(),
            default_text.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            for mut req in s.incoming_requests() {
                n += 1;
                let raw = crate::util::Received::read(&mut req);
                let rec = Request {
                    body: serde_json::from_str(&raw.body).unwrap_or(Value::Null),
                    method: raw.method,
                    url: raw.url,
                    headers: raw.headers,
                };
                r.lock().unwrap().push(rec.clone());
                let (status, ctype, text) = answer(&rec, &q, &d, n);
                let resp = tiny_http::Response::from_string(text)
                    .with_status_code(status)
                    .with_header(
                        tiny_http::Header::from_bytes(&b"content-type"[..], ctype.as_bytes())
                            .unwrap(),
                    );
                let _ = req.respond(resp);
            }
        });
        FakeAnthropic {
            url: format!("http://127.0.0.1:{port}"),
            replies,
            requests,
            default_text,
            server,
            thread: Some(thread),
        }
    }

    pub fn push(&self, r: Reply) {
        self.replies.lock().unwrap().push(r);
    }

    pub fn set_default(&self, text: &str) {
        *self.default_text.lock().unwrap() = text.to_string();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn messages(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::is_messages)
            .collect()
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(
    rec: &Request,
    queue: &Mutex<Vec<Reply>>,
    default: &Mutex<String>,
    n: u64,
) -> (u16, String, String) {
    let json_type = "application/json".to_string();
    if rec.method == "HEAD" || rec.method == "GET" {
        return (200, json_type, "{}".into());
    }
    if rec.url.contains("count_tokens") {
        let approx = rec.text().len() / 4;
        return (200, json_type, json!({"input_tokens": approx}).to_string());
    }
    if !rec.is_messages() {
        return (404, json_type, error_body(404, "not_found_error"));
    }
    if rec.body["model"].as_str().is_none() || rec.body["messages"].as_array().is_none() {
        return (400, json_type, error_body(400, "invalid_request_error"));
    }
    let reply = {
        let mut q = queue.lock().unwrap();
        if q.is_empty() {
            Reply::Text(default.lock().unwrap().clone())
        } else {
            q.remove(0)
        }
    };
    let model = rec.body["model"].as_str().unwrap_or("claude").to_string();
    let (content, stop) = match reply {
        Reply::Status(code) => {
            let kind = match code {
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400 => "invalid_request_error",
                401 => "authentication_error",
                _ => "api_error",
            };
            return (code, json_type, error_body(code, kind));
        }
        Reply::Text(t) => (json!([{"type": "text", "text": t}]), "end_turn"),
        Reply::ToolUse { name, input } => (
            json!([
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": format!("toolu_{n:04}"), "name": name, "input": input}
            ]),
            "tool_use",
        ),
    };
    let usage = json!({"input_tokens": 1000, "output_tokens": 200});
    if rec.body["stream"] == json!(true) {
        return (
            200,
            "text/event-stream".into(),
            sse(&model, &content, stop, n),
        );
    }
    let msg = json!({
        "id": format!("msg_{n:04}"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage,
    });
    (200, json_type, msg.to_string())
}

fn error_body(code: u16, kind: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": format!("fake {kind} ({code})")}})
        .to_string()
}

/// The streaming form of a message, as the Messages API sends it.
fn sse(model: &str, content: &Value, stop: &str, n: u64) -> String {
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": {"id": format!("msg_{n:04}"), "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 1000, "output_tokens": 1}}}),
    )];
    for (i, block) in content.as_array().unwrap().iter().enumerate() {
        match block["type"].as_str() {
            Some("text") => {
                events.push((
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}),
                ));
                events.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": block["text"]}}),
                ));
            }
            _ => {
                events.push((
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}),
                ));
                events.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": block["input"].to_string()}}),
                ));
            }
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 200}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    events
        .into_iter()
        .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
        .collect()
}
