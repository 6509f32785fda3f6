//! ntfy over HTTP: the publish request (title, priority, tags, markdown,
//! click URL, actions), authentication by token or by user and password, and retries
//! with backoff on 429 and 5xx within a run.

use std::time::Duration;

use base64::Engine;
use reqwest::blocking::{Client, RequestBuilder};

use crate::config::NtfyConfig;

/// One notification as ntfy receives it.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub title: String,
    pub body: String,
    pub priority: u8,
    pub tags: String,
    /// The `Click` header: opened when the notification is tapped.
    pub click: Option<String>,
    /// The `Actions` header, in ntfy's simple format.
    pub actions: Option<String>,
}

/// Why a publish failed. `server_trouble`: the next notifications would fail the
/// same way (429, 5xx, no connection, a timeout, credentials or topic refused), so the
/// rest of the outbox waits for the next run. Otherwise the failure is about this
/// message (400, 413, a request that could not be built from it): the others go on.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    pub server_trouble: bool,
    /// The request may have reached ntfy but no answer came (a timeout, a connection
    /// lost after the request was written): it may have been delivered.
    pub in_doubt: bool,
}

/// Whether an HTTP status from ntfy means trouble for every message, not this one:
/// 429 and 5xx, and the 4xx about credentials, the topic or the connection (401,
/// 403, 404, 407, 408). Other 4xx (400 bad request, 413 too large, 431 headers too
/// large, …) are about the message.
pub fn status_is_server_trouble(status: u16) -> bool {
    matches!(status, 401 | 403 | 404 | 407 | 408 | 429) || !(400..500).contains(&status)
}

pub fn client(cfg: &NtfyConfig) -> Result<Client, String> {
    Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("logwarden/", env!("CARGO_PKG_VERSION")))
        // A redirect turns a POST into a GET without its body, which a server answers
        // 200: a page that reads as sent and never was. A redirect is an error instead.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// Adds the configured credentials: a Bearer token, or Basic auth with a user and
/// password (read when needed, never printed).
pub fn authorize(cfg: &NtfyConfig, req: RequestBuilder) -> Result<RequestBuilder, String> {
    if let Some(secret) = &cfg.token {
        return Ok(req.bearer_auth(secret.read()?));
    }
    if let Some((user, secret)) = &cfg.more.basic {
        let password = secret.read()?;
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        return Ok(req.header("Authorization", format!("Basic {pair}")));
    }
    Ok(req)
}

/// A header value ntfy will decode: one line with no control character (an HTTP
/// server refuses those, see [`crate::sanitize::line`]), ASCII as is, anything else
/// as an RFC 2047 word. ntfy decodes every encoded word in a header, so ASCII text that
/// holds one (`=?UTF-8?B?…?=` in a log line: any character, a control or a bidi
/// override, past the sanitiser) is wrapped in a word of its own too, and arrives as
/// written.
pub fn header_value(text: &str) -> String {
    let one_line = crate::sanitize::line(text);
    if one_line.is_ascii() && !one_line.contains("=?") {
        one_line
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(one_line.as_bytes())
        )
    }
}

/// Publishes a message, trying up to `attempts` times when ntfy answers 429 or 5xx
/// or cannot be reached (waiting `retry_delay`, then twice that, …). ntfy sends no
/// Retry-After, so the backoff is ours.
pub fn send(cfg: &NtfyConfig, client: &Client, m: &Message) -> Result<(), Failure> {
    let url = format!("{}/{}", cfg.server, cfg.topic);
    let attempts = cfg.more.attempts.max(1);
    let mut delay = cfg.more.retry_delay;
    let mut last = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            std::thread::sleep(delay);
            delay *= 2;
        }
        let mut req = client
            .post(&url)
            .header("Title", header_value(&m.title))
            .header("Priority", m.priority.to_string())
            .header("Tags", header_value(&m.tags))
            .header("Markdown", "yes")
            .body(super::cap(&crate::sanitize::text(&m.body), super::MAX_BODY));
        if let Some(c) = &m.click {
            req = req.header("Click", header_value(c));
        }
        if let Some(a) = &m.actions {
            req = req.header("Actions", header_value(a));
        }
        let req = authorize(cfg, req).map_err(|message| Failure {
            message,
            server_trouble: false,
            in_doubt: false,
        })?;
        match req.send() {
            Ok(resp) if resp.status().is_success() => {
                // ntfy answers a publish with the message it stored, as JSON. Anything
                // else (a proxy's page, a captive portal) is no proof of delivery: the
                // next attempt asks ntfy for the delivery id before it posts again.
                let text = resp.text().unwrap_or_default();
                let stored = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .is_some_and(|v| v.get("event").and_then(|e| e.as_str()) == Some("message"));
                if stored {
                    return Ok(());
                }
                return Err(Failure {
                    message: format!(
                        "POST {url}: HTTP 200 but not ntfy's answer to a publish: {}",
                        answer(&text)
                    ),
                    server_trouble: true,
                    in_doubt: true,
                });
            }
            Ok(resp) => {
                let status = resp.status();
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(|l| {
                        format!(
                            " (a redirect to {}: set `[ntfy] server` to where it points)",
                            crate::sanitize::line(&crate::redact::url_userinfo(l))
                        )
                    })
                    .unwrap_or_default();
                let text = resp.text().unwrap_or_default();
                // A gateway's 502 or 504 (a proxy in front of ntfy) may come after
                // ntfy took the message; ntfy's own 500 and 503 say it did not.
                let in_doubt = matches!(status.as_u16(), 502 | 504);
                let failure = Failure {
                    message: format!("POST {url}: HTTP {status}{location}: {}", answer(&text)),
                    server_trouble: status_is_server_trouble(status.as_u16()),
                    in_doubt,
                };
                // Only 429, 500 and 503 may pass with a wait; a refused token will not, and
                // a message that may have gone out is looked for before it is sent again.
                if in_doubt || !(status.as_u16() == 429 || status.is_server_error()) {
                    return Err(failure);
                }
                last = Some(failure);
            }
            Err(e) => {
                let failure = Failure {
                    message: format!("POST {url}: {}", error_chain(&e)),
                    // A request that cannot be built is about this message; any other
                    // error (connect, timeout, TLS, reset) about the server.
                    server_trouble: !(e.is_builder() || e.is_body()),
                    // Without a connection nothing was sent; any other failure (a
                    // timeout, a reset) may come after ntfy took the message.
                    in_doubt: !(e.is_connect() || e.is_builder()),
                };
                // A timeout already cost `timeout`; only quick failures are retried.
                if !e.is_connect() {
                    return Err(failure);
                }
                last = Some(failure);
            }
        }
    }
    let mut f = last.expect("at least one attempt");
    if attempts > 1 {
        f.message = format!("{} (after {attempts} attempts)", f.message);
    }
    Err(f)
}

/// The delivery ids (`lw-…` tags) of every message ntfy still caches on the topic, by
/// polling it as a subscriber would (`since=all`), with the publishing credentials.
/// Not `since=<time>`: ntfy stamps messages with its own clock, which need not agree
/// with ours (another machine, a clock set wrong, a run given `--now`), and a window
/// taken from our clock could miss the very message it looks for. An error when the
/// poll fails or its answer cannot be read.
pub fn delivered_ids(
    cfg: &NtfyConfig,
    client: &Client,
) -> Result<std::collections::HashSet<String>, String> {
    let url = format!("{}/{}/json?poll=1&since=all", cfg.server, cfg.topic);
    let resp = authorize(cfg, client.get(&url))?
        .send()
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = resp.status();
    let text = resp
        .text()
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}: {}", answer(&text)));
    }
    let mut ids = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("GET {url}: not a JSON message: {e}"))?;
        if v.get("event").and_then(|e| e.as_str()) != Some("message") {
            continue;
        }
        if let Some(tags) = v.get("tags").and_then(|t| t.as_array()) {
            ids.extend(
                tags.iter()
                    .filter_map(|t| t.as_str())
                    .filter(|t| t.starts_with("lw-"))
                    .map(str::to_string),
            );
        }
    }
    Ok(ids)
}

/// A fresh, unguessable delivery id for a publish of outbox row `id`: the topic may
/// be public, and a stranger who could predict it could post a message that makes an
/// unsent page look delivered.
pub fn delivery_id(id: i64) -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        // No /dev/urandom (a very odd sandbox): std's per-process random hash keys.
        use std::hash::{BuildHasher, Hasher};
        for half in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_i64(id);
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("lw-{id}-{hex}")
}

/// The start of what a server answered, for an error message: one line, no control
/// characters (it may come from anything between us and ntfy).
fn answer(text: &str) -> String {
    crate::sanitize::line(&text.chars().take(200).collect::<String>())
}

/// An error and its causes, one after the other. The user name and password of any URL
/// in them are left out: an HTTP client's error names the URL it was asked for.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    crate::redact::url_userinfo(&s).into_owned()
}

/// A value for ntfy's simple `Actions` format, quoted when it holds `,` or `;`.
pub fn action_value(v: &str) -> String {
    if v.contains([',', ';', '=', '"', '\'']) {
        format!("'{}'", v.replace('\'', "%27"))
    } else {
        v.to_string()
    }
}

/// Percent-encodes what is not safe in a URL path segment.
pub fn url_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_non_ascii_headers() {
        assert_eq!(header_value("plain"), "plain");
        assert_eq!(header_value("é"), "=?UTF-8?B?w6k=?=");
        // An encoded word in the text is sent inside one of ours.
        assert_eq!(header_value("a =?x?= b"), "=?UTF-8?B?YSA9P3g/PSBi?=");
    }

    #[test]
    fn header_values_never_hold_controls() {
        for c in (0u8..0x20).chain([0x7f]) {
            let v = header_value(&format!("a{}b", c as char));
            assert!(
                reqwest::header::HeaderValue::from_str(&v).is_ok(),
                "{c:#x}: {v:?}"
            );
            assert!(v.bytes().all(|b| b >= 0x20 && b != 0x7f), "{c:#x}: {v:?}");
        }
    }

    #[test]
    fn only_server_trouble_stops_the_batch() {
        for s in [400, 405, 409, 411, 413, 414, 415, 422, 431] {
            assert!(!status_is_server_trouble(s), "{s} is about the message");
        }
        for s in [401, 403, 404, 407, 408, 429, 500, 502, 503, 507] {
            assert!(status_is_server_trouble(s), "{s} is about the server");
        }
    }

    #[test]
    fn delivery_ids_are_fresh_and_long() {
        let a = delivery_id(12);
        let b = delivery_id(12);
        assert_ne!(a, b);
        let hex = a.strip_prefix("lw-12-").expect("lw-<row>-<hex>");
        assert_eq!(hex.len(), 32, "{a}");
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn quotes_action_values_with_separators() {
        assert_eq!(action_value("lw1.ack.1"), "lw1.ack.1");
        assert_eq!(action_value("a,b"), "'a,b'");
        assert_eq!(
            url_segment("2026-11-22-incident-x é.md"),
            "2026-11-22-incident-x%20%C3%A9.md"
        );
    }
}
