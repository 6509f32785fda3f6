//! The `anthropic-api` backend: the Messages API (`POST {base_url}/v1/messages`) over
//! blocking HTTPS, with a tool loop over logwarden's own read-only tool layer
//! ([`super::tools`]: the store, the evidence, the sources, the deploy repo, the curated
//! scripts when allowed), every result redacted and capped. Retries 429, 5xx and 529 with exponential backoff and jitter; counts
//! the cost from `usage` times the configured prices per million tokens.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::prompt::Prompt;
use super::tools::{ToolOutput, Tools};
use super::{verdict, Diagnosis};
use crate::config::{AnthropicApiConfig, Config};
use crate::store::{IncidentRow, Store};

/// The API version header logwarden speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Token counts of a conversation.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    input: u64,
    output: u64,
}

impl Usage {
    /// Adds one answer's usage. An answer without its token counts (a proxy that drops
    /// them) is charged as its request and the most it may answer: an unknown cost must
    /// not be free, or a forced investigation would have no ceiling at all.
    fn add(&mut self, usage: Option<&Value>, request: &Value, max_tokens: u32) {
        let n = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64);
        let (input, output) = (n("input_tokens"), n("output_tokens"));
        if input.unwrap_or(0) + output.unwrap_or(0) == 0 {
            self.input += super::evidence::tokens(&request.to_string()) as u64;
            self.output += u64::from(max_tokens);
            return;
        }
        self.input += input.unwrap_or(0)
            + n("cache_creation_input_tokens").unwrap_or(0)
            + n("cache_read_input_tokens").unwrap_or(0);
        self.output += output.unwrap_or(0);
    }

    fn cost(&self, cfg: &AnthropicApiConfig) -> f64 {
        (self.input as f64 * cfg.usd_per_mtok_input + self.output as f64 * cfg.usd_per_mtok_output)
            / 1_000_000.0
    }
}

/// Runs one investigation through the Messages API.
/// The most one request may cost: its input (estimated, or counted by the caller) and
/// the most the model may answer.
fn worst_turn(cfg: &AnthropicApiConfig, input_tokens: u64) -> f64 {
    Usage {
        input: input_tokens,
        output: u64::from(cfg.max_tokens),
    }
    .cost(cfg)
}

/// What one investigation may spend when `left` dollars remain of the day's limit, or
/// why it does not start: its first request alone could cost more than is left.
pub fn allowance(cfg: &AnthropicApiConfig, prompt_tokens: u64, left: f64) -> Result<f64, String> {
    let first = worst_turn(cfg, prompt_tokens);
    if first > left {
        return Err(format!(
            "${:.4} left of the day's limit, and one request may cost ${first:.4}",
            left.max(0.0)
        ));
    }
    Ok(left)
}

/// Runs one investigation. It stops before any request whose worst case would take
/// the conversation past `allowance` dollars.
#[allow(clippy::too_many_arguments)]
pub fn run(
    cfg: &AnthropicApiConfig,
    config: &Config,
    store: &Store,
    prompt: &Prompt,
    incident: &IncidentRow,
    evidence: &str,
    now: i64,
    allowance: f64,
) -> Diagnosis {
    let mut d = Diagnosis {
        llm_called: true,
        ..Diagnosis::default()
    };
    let key = match cfg.api_key.read() {
        Ok(k) if !k.is_empty() => k,
        Ok(_) => {
            d.error = Some("the API key is empty".into());
            d.llm_called = false;
            return d;
        }
        Err(e) => {
            d.error = Some(format!("no API key: {e}"));
            d.llm_called = false;
            return d;
        }
    };
    let client = match reqwest::blocking::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("logwarden/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            d.error = Some(format!("cannot build HTTP client: {e}"));
            return d;
        }
    };
    let deadline = Instant::now() + cfg.timeout;
    let layer = Tools {
        config,
        store,
        incident: Some(incident.clone()),
        evidence: evidence.to_string(),
        nonce: prompt.nonce.clone(),
        now,
    };
    let tools = layer.api_definitions();
    let mut messages = vec![json!({"role": "user", "content": prompt.user})];
    let mut usage = Usage::default();
    let mut turns = 0;
    let answer = loop {
        turns += 1;
        let mut body = json!({
            "model": cfg.model,
            "max_tokens": cfg.max_tokens,
            "system": prompt.system,
            "messages": messages,
            "tools": tools,
        });
        if turns >= cfg.max_turns {
            // The last turn: no more tools, the verdict now.
            body["tool_choice"] = json!({"type": "none"});
        }
        // The first request was weighed by `allowance`; the later ones carry the tool
        // results too, so each is weighed again before it goes.
        let spent = usage.cost(cfg);
        let worst = worst_turn(cfg, super::evidence::tokens(&body.to_string()) as u64);
        if turns > 1 && spent + worst > allowance {
            d.error = Some(format!(
                "stopped before request {turns}: it may cost ${worst:.4}, and ${:.4} of the day's limit is left",
                (allowance - spent).max(0.0)
            ));
            break None;
        }
        let resp = match post(&client, cfg, &key, &body, deadline) {
            Ok(r) => r,
            Err(e) => {
                d.error = Some(e);
                break None;
            }
        };
        usage.add(resp.get("usage"), &body, cfg.max_tokens);
        let content = resp
            .get("content")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let text: String = content
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let uses: Vec<&Value> = content.iter().filter(|b| b["type"] == "tool_use").collect();
        let stop = resp
            .get("stop_reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        if stop != "tool_use" || uses.is_empty() {
            break Some(text);
        }
        if turns >= cfg.max_turns {
            d.error = Some(format!(
                "stopped at the turn cap ({}) without a verdict",
                cfg.max_turns
            ));
            break None;
        }
        let mut results = Vec::new();
        for u in uses {
            let id = u["id"].as_str().unwrap_or("");
            let name = u["name"].as_str().unwrap_or("");
            let ToolOutput { text, is_error } = layer.call(name, &u["input"]);
            if is_error {
                d.permission_denials
                    .push(json!({"tool_name": name, "tool_input": u["input"], "reason": text}));
            }
            results.push(json!({
                "type": "tool_result",
                "tool_use_id": id,
                "content": text,
                "is_error": is_error,
            }));
        }
        messages.push(json!({"role": "assistant", "content": content}));
        messages.push(json!({"role": "user", "content": results}));
    };
    d.num_turns = Some(turns);
    d.cost_usd = Some(usage.cost(cfg));
    let Some(answer) = answer else {
        return d;
    };
    match verdict::parse(&answer) {
        Some(v) => Diagnosis {
            cost_usd: d.cost_usd,
            num_turns: d.num_turns,
            permission_denials: d.permission_denials,
            llm_called: true,
            ..v
        },
        None => {
            let tail: String = answer
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            d.error = Some(format!(
                "Claude answered without the JSON verdict: {}",
                tail.replace('\n', " ")
            ));
            d
        }
    }
}

/// A fraction in [0, 1) from the clock, for jitter.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (xxhash_rust::xxh3::xxh3_64(&nanos.to_le_bytes()) % 10_000) as f64 / 10_000.0
}

/// The wait before retry `attempt` (0-based): 0.5 s doubling, at most 8 s, plus up to
/// half again of jitter; a `retry-after` header wins when it is shorter than 30 s.
pub fn backoff(attempt: u32, retry_after: Option<u64>) -> Duration {
    if let Some(s) = retry_after.filter(|s| *s <= 30) {
        return Duration::from_secs(s);
    }
    let base = (500u64 << attempt.min(4)).min(8_000) as f64;
    Duration::from_millis((base * (1.0 + 0.5 * jitter())) as u64)
}

/// The most of an answer read: a Messages API answer is a few kilobytes (its tokens
/// are capped); a server that sends more is not one.
const MAX_ANSWER_BYTES: u64 = 8 << 20;

/// The body of an answer, at most [`MAX_ANSWER_BYTES`]; an error past that.
fn read_capped(resp: reqwest::blocking::Response) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    resp.take(MAX_ANSWER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the answer: {e}"))?;
    if bytes.len() as u64 > MAX_ANSWER_BYTES {
        return Err(format!(
            "the answer is over {} MiB, which no Messages API answer is",
            MAX_ANSWER_BYTES >> 20
        ));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn post(
    client: &reqwest::blocking::Client,
    cfg: &AnthropicApiConfig,
    key: &str,
    body: &Value,
    deadline: Instant,
) -> Result<Value, String> {
    let url = format!("{}/v1/messages", cfg.base_url);
    let mut attempt = 0;
    loop {
        let sent = client
            .post(&url)
            .header("x-api-key", key)
            .header("anthropic-version", API_VERSION)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send();
        let (retryable, why, retry_after) = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let text = match read_capped(resp) {
                    Ok(t) => t,
                    Err(why) => return Err(format!("POST {url}: {why}")),
                };
                if status == 200 {
                    return serde_json::from_str(&text)
                        .map_err(|e| format!("POST {url}: the answer is not JSON: {e}"));
                }
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| text.trim().chars().take(200).collect());
                let retryable = status == 429 || status >= 500;
                (
                    retryable,
                    format!("POST {url}: HTTP {status}: {message}"),
                    retry_after,
                )
            }
            Err(e) => (
                true,
                format!(
                    "POST {url}: {}",
                    crate::redact::url_userinfo(&e.to_string())
                ),
                None,
            ),
        };
        if !retryable || attempt >= cfg.retries {
            return Err(if attempt > 0 {
                format!("{why} (after {} attempts)", attempt + 1)
            } else {
                why
            });
        }
        let wait = backoff(attempt, retry_after);
        if Instant::now() + wait >= deadline {
            return Err(format!("{why} (no time left to retry)"));
        }
        std::thread::sleep(wait);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_its_usage_is_charged_its_request_and_max_tokens() {
        let request = json!({"messages": [{"role": "user", "content": "x".repeat(400)}]});
        let mut u = Usage::default();
        u.add(
            Some(&json!({"input_tokens": 1000, "output_tokens": 200})),
            &request,
            4096,
        );
        assert_eq!((u.input, u.output), (1000, 200));
        for missing in [None, Some(json!({})), Some(json!({"output_tokens": 0}))] {
            let mut u = Usage::default();
            u.add(missing.as_ref(), &request, 4096);
            assert!(u.input >= 100, "{missing:?}: {u:?}");
            assert_eq!(u.output, 4096, "{missing:?}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let a0 = backoff(0, None);
        assert!(a0 >= Duration::from_millis(500) && a0 <= Duration::from_millis(750));
        let a3 = backoff(3, None);
        assert!(a3 >= Duration::from_millis(4000) && a3 <= Duration::from_millis(6000));
        assert!(backoff(9, None) <= Duration::from_millis(12_000));
        assert_eq!(backoff(2, Some(1)), Duration::from_secs(1));
    }
}
