//! Acknowledging and muting from the phone.
//!
//! Incident notifications carry ntfy `http` actions (Ack, Mute 24h) that publish a
//! signed line to a private control topic; each run polls that topic and applies
//! what it finds. A control message is `lw1.<action>.<incident>.<expiry>.<nonce>.<mac>`,
//! the MAC an HMAC-SHA256 of `<action>.<incident>.<expiry>.<nonce>` under a key only
//! logwarden knows (`control.key` in the state dir, mode 0600, made on first use). A
//! stranger who can post to the topic cannot make a valid MAC; a message seen before
//! (same nonce) is a replay; one past its expiry is late. Whoever can read the alerts
//! topic holds the buttons of every notification, so the expiry bounds what an unused
//! one can do later, and a mute of a resolved incident is refused: an old button never
//! silences a regression. All are refused and reported; polling failures are reported
//! and never fail the run.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Config, NtfyConfig};
use crate::ignore::{self, NewRule};
use crate::store::{self, Store};

use super::ntfy;

/// Who an ack from the phone is recorded as.
pub const PHONE: &str = "phone (ntfy)";
/// The kv key of the last control message id read.
const LAST_ID: &str = "ntfy.control.last_id";
const PREFIX: &str = "lw1";
/// How long the Ack and Mute buttons of a notification can be used.
pub const BUTTON_LIFETIME_DAYS: i64 = 7;

/// What polling the control topic did this run.
#[derive(Debug, Default)]
pub struct ControlReport {
    pub acked: Vec<i64>,
    /// (incident, ignore rule id)
    pub muted: Vec<(i64, String)>,
    /// Messages refused (forged, replayed, unknown incident) and why.
    pub refused: Vec<String>,
    /// Valid messages that changed nothing (already acked, …).
    pub noops: Vec<String>,
    /// Incidents whose proposed action was approved or rejected from the phone.
    pub decided: Vec<i64>,
    /// What those decisions were.
    pub decisions: Vec<String>,
    /// Polling or applying failed; the run went on.
    pub errors: Vec<String>,
    /// A valid message that could not be applied (kept for the next run): a watcher
    /// problem. Also listed in the summary.
    pub problems: Vec<String>,
}

impl ControlReport {
    pub fn summary_lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        for id in &self.acked {
            v.push(format!("incident #{id} acknowledged from the phone"));
        }
        for (id, rule) in &self.muted {
            v.push(format!(
                "incident #{id} muted for 24h from the phone (ignore rule {rule})"
            ));
        }
        for d in &self.decisions {
            v.push(format!("{d} (from the phone)"));
        }
        for r in &self.refused {
            v.push(format!("control message refused: {r}"));
        }
        for n in &self.noops {
            v.push(format!("control message: {n}"));
        }
        for e in &self.errors {
            v.push(format!("warning: control topic: {e}"));
        }
        v
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The control key: read from `path`, or made (32 random bytes, hex, mode 0600).
pub fn key(path: &Path) -> Result<Vec<u8>, String> {
    // Never through a symlink: a key planted elsewhere would let its owner sign acks
    // and mutes, and a chmod through it would change someone else's file.
    match crate::fsio::open_no_follow(path) {
        Ok(mut f) => {
            let mut text = String::new();
            f.read_to_string(&mut text)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            // Someone loosened it (a copy, a restore): only logwarden may read it.
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = f.metadata() {
                if m.permissions().mode() & 0o077 != 0 {
                    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
                }
            }
            return decode_hex(text.trim())
                .filter(|k| k.len() >= 16)
                .ok_or_else(|| format!("{} is not a logwarden control key", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!(
            "{} is a symlink; refusing to use it as the control key (remove it: a new key is made)",
            path.display()
        ))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let text = encode_hex(&bytes);
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let written = f
        .write_all(format!("{text}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
        // Two runs cannot race (the run lock), but never replace a key made meanwhile.
        .and_then(|()| {
            std::fs::hard_link(&tmp, path).or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(format!("cannot create {}: {e}", path.display()))
                }
            })
        });
    // Also when writing failed (a full disk): no empty key file is left behind.
    let _ = std::fs::remove_file(&tmp);
    written?;
    let _ = crate::fsio::adopt(path);
    key(path)
}

fn mac(key: &[u8], action: &str, id: i64, expires: i64, nonce: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(format!("{action}.{id}.{expires}.{nonce}").as_bytes());
    m
}

/// A signed control message for an action on an incident, usable until `expires`
/// (unix seconds), with a fresh nonce.
pub fn sign(key: &[u8], action: &str, id: i64, expires: i64) -> Result<String, String> {
    let mut nonce = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut nonce))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let nonce = encode_hex(&nonce);
    let tag = encode_hex(
        &mac(key, action, id, expires, &nonce)
            .finalize()
            .into_bytes(),
    );
    Ok(format!("{PREFIX}.{action}.{id}.{expires}.{nonce}.{tag}"))
}

/// What an Approve or Reject is bound to: the request, its action and parameters, and
/// until when it may be given. A changed parameter or action, another request or a
/// later expiry gives another MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub request: i64,
    pub action_id: String,
    pub params_digest: String,
    /// Unix seconds.
    pub expires: i64,
}

fn decision_mac(key: &[u8], verb: &str, id: i64, b: &Binding, nonce: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(
        format!(
            "{verb}.{id}.{}.{}.{}.{}.{nonce}",
            b.request, b.expires, b.action_id, b.params_digest
        )
        .as_bytes(),
    );
    m
}

fn nonce() -> Result<String, String> {
    let mut nonce = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut nonce))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(encode_hex(&nonce))
}

/// A signed Approve or Reject of a request:
/// `lw1.<approve|reject>.<incident>.<request>-<expiry>.<nonce>.<mac>`.
pub fn sign_decision(key: &[u8], approve: bool, id: i64, b: &Binding) -> Result<String, String> {
    let verb = if approve { "approve" } else { "reject" };
    let nonce = nonce()?;
    let tag = encode_hex(
        &decision_mac(key, verb, id, b, &nonce)
            .finalize()
            .into_bytes(),
    );
    Ok(format!(
        "{PREFIX}.{verb}.{id}.{}-{}.{nonce}.{tag}",
        b.request, b.expires
    ))
}

/// An Approve or Reject as read, before its MAC is checked against its request.
#[derive(Debug, PartialEq, Eq)]
pub struct Decision {
    pub approve: bool,
    pub incident: i64,
    pub request: i64,
    pub expires: i64,
    pub nonce: String,
    tag: Vec<u8>,
}

impl Decision {
    fn verb(&self) -> &'static str {
        if self.approve {
            "approve"
        } else {
            "reject"
        }
    }
}

/// Reads an Approve or Reject message (six parts); None when it is not one.
pub fn parse_decision(text: &str) -> Option<Result<Decision, String>> {
    let shown: String = text.trim().chars().take(60).collect();
    let parts: Vec<&str> = text.trim().split('.').collect();
    let [prefix, verb, id, bound, nonce, tag] = parts[..] else {
        return None;
    };
    if prefix != PREFIX || !matches!(verb, "approve" | "reject") {
        return None;
    }
    let bad = || format!("`{shown}` is not a logwarden control message");
    let num = |s: &str| {
        s.parse::<i64>()
            .ok()
            .filter(|n| n.to_string() == s)
            .ok_or_else(bad)
    };
    let parsed = (|| {
        let incident = num(id)?;
        let (req, exp) = bound.split_once('-').ok_or_else(bad)?;
        let tag = decode_hex(tag)
            .ok_or_else(|| format!("{verb} for incident #{incident}: bad signature (forged)"))?;
        Ok(Decision {
            approve: verb == "approve",
            incident,
            request: num(req)?,
            expires: num(exp)?,
            nonce: nonce.to_string(),
            tag,
        })
    })();
    Some(parsed)
}

/// Checks a decision's MAC against what its request is bound to.
pub fn verify_decision(key: &[u8], d: &Decision, b: &Binding) -> Result<(), String> {
    decision_mac(key, d.verb(), d.incident, b, &d.nonce)
        .verify_slice(&d.tag)
        .map_err(|_| {
            format!(
                "{} for incident #{}: bad signature (forged, or the request changed)",
                d.verb(),
                d.incident
            )
        })
}

/// A control message whose MAC is right.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub action: String,
    pub incident: i64,
    /// Unix seconds after which the message is refused as late.
    pub expires: i64,
    pub nonce: String,
}

/// Checks a control message; the error says why it is refused.
pub fn verify(key: &[u8], text: &str) -> Result<Verified, String> {
    let shown: String = text.trim().chars().take(60).collect();
    let parts: Vec<&str> = text.trim().split('.').collect();
    let not_ours = || format!("`{shown}` is not a logwarden control message");
    // Only the form `sign` writes: `+12` or `012` would carry a valid MAC for `12`.
    let number = |s: &str| -> Result<i64, String> {
        s.parse()
            .ok()
            .filter(|n: &i64| n.to_string() == s)
            .ok_or_else(not_ours)
    };
    if let [PREFIX, action @ ("ack" | "mute"), id, _, _] = parts[..] {
        return Err(format!(
            "{action} for incident #{}: a button from before buttons expired (refused; use a newer notification's)",
            number(id)?
        ));
    }
    let [prefix, action, id, expires, nonce, tag] = parts[..] else {
        return Err(not_ours());
    };
    let (id, expires) = (number(id)?, number(expires)?);
    if prefix != PREFIX || !matches!(action, "ack" | "mute") {
        return Err(not_ours());
    }
    let Some(tag) = decode_hex(tag) else {
        return Err(format!(
            "{action} for incident #{id}: bad signature (forged)"
        ));
    };
    mac(key, action, id, expires, nonce)
        .verify_slice(&tag)
        .map_err(|_| format!("{action} for incident #{id}: bad signature (forged)"))?;
    Ok(Verified {
        action: action.to_string(),
        incident: id,
        expires,
        nonce: nonce.to_string(),
    })
}

/// The `Actions` header of an incident notification: Ack and Mute 24h (with a
/// control topic) and Open (with a click URL). None when there is neither.
///
/// With a proposed action waiting for approval, the three buttons ntfy allows are
/// Approve, Reject and Ack: deciding on the repair matters most, and the page's link
/// is also in the message.
pub fn actions(
    cfg: &NtfyConfig,
    key: Option<&[u8]>,
    incident: i64,
    click: Option<&str>,
    approval: Option<&Binding>,
    now: DateTime<Utc>,
) -> Result<Option<String>, String> {
    let mut v = Vec::new();
    let expires = (now + chrono::Duration::days(BUTTON_LIFETIME_DAYS)).timestamp();
    if let (Some(topic), Some(key), Some(b)) = (&cfg.more.control_topic, key, approval) {
        let url = format!("{}/{topic}", cfg.server);
        for (label, approve) in [
            (format!("Approve: {}", b.action_id), true),
            ("Reject".into(), false),
        ] {
            v.push(format!(
                "http, {}, {url}, method=POST, body={}, clear=true",
                ntfy::action_value(&label),
                ntfy::action_value(&sign_decision(key, approve, incident, b)?)
            ));
        }
        v.push(format!(
            "http, Ack, {url}, method=POST, body={}, clear=true",
            ntfy::action_value(&sign(key, "ack", incident, expires)?)
        ));
        return Ok(Some(v.join("; ")));
    }
    if let (Some(topic), Some(key)) = (&cfg.more.control_topic, key) {
        let url = format!("{}/{topic}", cfg.server);
        for (label, action) in [("Ack", "ack"), ("Mute 24h", "mute")] {
            v.push(format!(
                "http, {label}, {url}, method=POST, body={}, clear=true",
                ntfy::action_value(&sign(key, action, incident, expires)?)
            ));
        }
    }
    if let Some(c) = click {
        v.push(format!("view, Open, {}", ntfy::action_value(c)));
    }
    Ok((!v.is_empty()).then(|| v.join("; ")))
}

/// The click URL of an incident from the template.
pub fn click_url(template: &str, id: i64, file: &str, host: &str) -> String {
    template
        .replace("{file}", &ntfy::url_segment(file))
        .replace("{id}", &id.to_string())
        .replace("{host}", &ntfy::url_segment(host))
}

#[derive(serde::Deserialize)]
struct PolledMessage {
    id: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    message: String,
}

/// After the state was rebuilt (the database and its record of applied messages were
/// lost), the messages ntfy still caches are passed over, not applied: a mute of
/// yesterday would otherwise silence its incident for another 24 hours. The next poll
/// takes the whole cache and only moves past it (by message id, so that ntfy's clock
/// and ours need not agree). A tap made between the loss and the rebuild is lost with
/// them (the reminders go on; tap again), which errs on the side of hearing too much.
pub fn skip_to(store: &Store, _now: DateTime<Utc>) -> crate::store::Result<()> {
    store.kv_set(LAST_ID, SKIP_CACHED)
}

/// The cursor that says: pass over every cached message.
const SKIP_CACHED: &str = "skip-cached";
/// The cursor that says: pass over the cached messages after this id.
const SKIP_CACHED_AFTER: &str = "skip-cached-after:";

/// Polls the control topic and applies what it finds: acks, and mutes as temporary
/// ignore rules. Call before the ignore rules are loaded, so a mute holds this run.
pub fn poll_and_apply(config: &Config, store: &Store, now: DateTime<Utc>) -> ControlReport {
    let mut report = ControlReport::default();
    let Some(cfg) = &config.ntfy else {
        return report;
    };
    let Some(topic) = &cfg.more.control_topic else {
        return report;
    };
    let (since, skip) = match store.kv_get(LAST_ID) {
        Ok(Some(id)) if id == SKIP_CACHED => ("all".to_string(), true),
        // Passing over a cache longer than one poll: on from where the last one ended.
        Ok(Some(id)) if id.starts_with(SKIP_CACHED_AFTER) => {
            (id[SKIP_CACHED_AFTER.len()..].to_string(), true)
        }
        Ok(Some(id)) => (id, false),
        Ok(None) => ("all".to_string(), false),
        Err(e) => {
            report.errors.push(format!("state database: {e}"));
            return report;
        }
    };
    let (messages, cut) = match poll(cfg, topic, &since, &mut report) {
        Ok(m) => m,
        Err(e) => {
            report.errors.push(format!("poll failed: {e}"));
            return report;
        }
    };
    if skip {
        let passed = messages.iter().filter(|m| m.event == "message").count();
        // A poll cut short has not reached the end of the cache: the next run goes on
        // passing over from where it stopped, never applying the rest of the old taps.
        let last = match (messages.last(), cut) {
            (Some(m), true) => format!("{SKIP_CACHED_AFTER}{}", m.id),
            (None, true) => since.clone(),
            (Some(m), false) => m.id.clone(),
            (None, false) if since == "all" => "all".to_string(),
            (None, false) => since.clone(),
        };
        match store.kv_set(LAST_ID, &last) {
            Ok(()) if passed > 0 => report.noops.push(format!(
                "{passed} control message(s) from before the state was rebuilt passed over, not applied"
            )),
            Ok(()) => {}
            Err(e) => report.errors.push(format!("state database: {e}")),
        }
        return report;
    }
    if messages.is_empty() {
        return report;
    }
    let key = match key(&cfg.more.key_file) {
        Ok(k) => k,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    for m in messages {
        if m.event == "message" {
            if let Err(e) = apply(config, store, &key, &m.message, now, &mut report) {
                report.problems.push(e);
                return report; // the last id stays before this message: retried next run
            }
        }
        if let Err(e) = store.kv_set(LAST_ID, &m.id) {
            report.errors.push(format!("state database: {e}"));
            return report;
        }
    }
    report
}

/// At most this much of a poll's answer is read. A control message is one short
/// line (ntfy caps messages at 4 KiB); whoever may write the topic must not be able
/// to make a run read (and hold) hundreds of megabytes.
pub const MAX_POLL_BYTES: u64 = 1024 * 1024;

/// The messages after `since`, and whether the answer was cut at [`MAX_POLL_BYTES`]
/// (more follow them).
fn poll(
    cfg: &NtfyConfig,
    topic: &str,
    since: &str,
    report: &mut ControlReport,
) -> Result<(Vec<PolledMessage>, bool), String> {
    let client = ntfy::client(cfg)?;
    let url = format!("{}/{topic}/json", cfg.server);
    let req = client.get(&url).query(&[("poll", "1"), ("since", since)]);
    let resp = ntfy::authorize(cfg, req)?
        .send()
        .map_err(|e| format!("GET {url}: {}", ntfy::error_chain(&e)))?;
    let status = resp.status();
    let mut body = Vec::new();
    resp.take(MAX_POLL_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!(
            "GET {url}: HTTP {status}: {}",
            crate::sanitize::line(&text)
        ));
    }
    let over = body.len() as u64 > MAX_POLL_BYTES;
    let mut oversized = None;
    if over {
        // Keep the whole lines within the cap; the rest is read by the next run,
        // which asks for what follows the last message applied.
        let end = body[..MAX_POLL_BYTES as usize]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        if end == 0 {
            // One message longer than the cap (no ntfy sends that): skip it by its id,
            // so the topic does not stay stuck on it.
            oversized = oversized_id(&body);
        }
        body.truncate(end);
    }
    let text = String::from_utf8_lossy(&body);
    // A line that is not ntfy's JSON is said and passed over: the messages after it
    // move the cursor past it, so it cannot hold back every tap that follows.
    let mut bad = 0;
    let mut messages: Vec<PolledMessage> = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(l) {
            Ok(m) => messages.push(m),
            Err(e) => {
                bad += 1;
                if bad == 1 {
                    let l: String = l.chars().take(200).collect();
                    report.errors.push(format!(
                        "GET {url}: not ntfy's JSON ({e}), passed over: {}",
                        crate::sanitize::line(&l)
                    ));
                }
            }
        }
    }
    if bad > 1 {
        report.errors.push(format!(
            "GET {url}: {bad} lines in all were not ntfy's JSON"
        ));
    }
    if let Some(id) = oversized {
        report.errors.push(format!(
            "message {id} is longer than {} KiB: skipped",
            MAX_POLL_BYTES / 1024
        ));
        messages.push(PolledMessage {
            id,
            event: "oversized".into(),
            message: String::new(),
        });
    } else if over {
        report.errors.push(format!(
            "the answer was longer than {} KiB: {} message(s) read, the rest left for the next run",
            MAX_POLL_BYTES / 1024,
            messages.len()
        ));
    }
    Ok((messages, over))
}

/// The `id` at the start of a JSON message object cut short.
fn oversized_id(start: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&start[..start.len().min(256)]);
    let at = head.find("\"id\":\"")? + 6;
    let id: String = head[at..].chars().take_while(|&c| c != '"').collect();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then_some(id)
}

/// Applies one message. Err only when the state cannot be changed (retried next run).
fn apply(
    config: &Config,
    store: &Store,
    key: &[u8],
    text: &str,
    now: DateTime<Utc>,
    report: &mut ControlReport,
) -> Result<(), String> {
    if let Some(parsed) = parse_decision(text) {
        return apply_decision(config, store, key, parsed, now, report);
    }
    let v = match verify(key, text) {
        Ok(v) => v,
        Err(why) => {
            report.refused.push(why);
            return Ok(());
        }
    };
    if now.timestamp() > v.expires {
        report.refused.push(format!(
            "{} for incident #{}: the button expired at {} (late)",
            v.action,
            v.incident,
            DateTime::from_timestamp(v.expires, 0).map_or_else(
                || v.expires.to_string(),
                |t| t.format("%Y-%m-%dT%H:%MZ").to_string()
            )
        ));
        return Ok(());
    }
    let db = |e: store::StoreError| format!("state database: {e}");
    let Some(inc) = store.incident(v.incident).map_err(db)? else {
        report.refused.push(format!(
            "{} for incident #{}: no such incident (forged)",
            v.action, v.incident
        ));
        return Ok(());
    };
    if store.control_seen(&v.nonce).map_err(db)? {
        report.refused.push(format!(
            "{} for incident #{}: seen before (replayed)",
            v.action, v.incident
        ));
        return Ok(());
    }
    // The nonce is spent only once the action is done: a mute that cannot be written
    // leaves the message to be applied again next run.
    let spend = || -> Result<(), String> {
        store
            .first_time_control(&v.nonce, now)
            .map(|_| ())
            .map_err(db)
    };
    // When the tapped notification was sent: the incident may have risen since.
    let sent = DateTime::from_timestamp(v.expires, 0)
        .map(|e| e - chrono::Duration::days(BUTTON_LIFETIME_DAYS));
    match v.action.as_str() {
        "ack" => {
            // An Ack on a notification sent at a lower severity acknowledges what it
            // said, not what the incident became: the higher one nags until someone
            // acknowledges it as such.
            let then = sent
                .map(|t| store.severity_at(inc.id, t))
                .transpose()
                .map_err(db)?
                .flatten();
            if let Some(then) = then.filter(|s| {
                crate::trigger::escalate::rank(s) < crate::trigger::escalate::rank(&inc.severity)
            }) {
                report.noops.push(format!(
                    "ack for incident #{}: that notification was sent when it was {then}; it is {} now, so it stays open (acknowledge the newer notification)",
                    inc.id, inc.severity
                ));
                return spend();
            }
            if store.ack_incident(inc.id, PHONE, now).map_err(db)? {
                report.acked.push(inc.id);
            } else {
                report.noops.push(format!(
                    "ack for incident #{}: it is {}, not open",
                    inc.id, inc.status
                ));
            }
            spend()?;
        }
        _ if inc.status == "resolved" => {
            // A mute is for what is paging now; a resolved incident's group coming back
            // is a regression, which must page.
            report.noops.push(format!(
                "mute for incident #{}: it is resolved, so nothing is muted (a new occurrence pages again)",
                inc.id
            ));
            spend()?;
        }
        _ => {
            if inc
                .signature
                .parse::<crate::signature::Signature>()
                .is_err()
            {
                report.noops.push(format!(
                    "mute for incident #{}: a {} incident has no log signature to mute",
                    inc.id, inc.kind
                ));
                return spend();
            }
            // The level the tapped notification was about: a Mute on a WARNING must
            // not silence the CRITICAL.
            let mut capped = inc.clone();
            if let Some((level, no)) = sent
                .map(|t| store.level_at(inc.id, t))
                .transpose()
                .map_err(db)?
                .flatten()
            {
                capped.level = level;
                capped.level_no = Some(no);
            }
            let rule = NewRule {
                pattern: "^".into(),
                source: None,
                level: Some(crate::ignore::level_cap_for(config, &capped)),
                signature: Some(inc.signature.clone()),
                expires: Some(now + chrono::Duration::hours(24)),
                comment: format!(
                    "muted 24h from the phone (ntfy action) at {} for incident #{}: {}",
                    now.format("%Y-%m-%dT%H:%MZ"),
                    inc.id,
                    inc.title
                ),
                author: PHONE.into(),
                incident: Some(inc.id),
                force: false,
            };
            let mutes = config.mutes_file();
            // Mutes expired a week ago are history: the file stays small.
            if let Err(e) = ignore::prune_expired(
                &mutes,
                ignore::MUTE_ID_PREFIX,
                now - chrono::Duration::days(7),
                now,
            ) {
                tracing::warn!("{e}");
            }
            let others = [config.ignore_file.as_path()];
            let target = ignore::Target {
                path: &mutes,
                others: &others,
                new_file: crate::fsio::NewFile::DirOwner(0o640),
                id_prefix: ignore::MUTE_ID_PREFIX,
            };
            let id = ignore::add_rule(target, &rule, now).map_err(|e| {
                format!(
                    "mute for incident #{}: cannot add the rule to {}: {e} (the message is kept and applied again next run)",
                    inc.id,
                    mutes.display()
                )
            })?;
            report.muted.push((inc.id, id));
            spend()?;
        }
    }
    Ok(())
}

/// Applies an Approve or Reject: its MAC must match the request it names (action,
/// parameters, expiry), its nonce must be new, and its expiry not passed.
fn apply_decision(
    config: &Config,
    store: &Store,
    key: &[u8],
    parsed: Result<Decision, String>,
    now: DateTime<Utc>,
    report: &mut ControlReport,
) -> Result<(), String> {
    let d = match parsed {
        Ok(d) => d,
        Err(why) => {
            report.refused.push(why);
            return Ok(());
        }
    };
    let db = |e: store::StoreError| format!("state database: {e}");
    let forged = |report: &mut ControlReport| {
        report.refused.push(format!(
            "{} for incident #{}: no such request for it (forged)",
            d.verb(),
            d.incident
        ));
    };
    let Some(r) = store.request(d.request).map_err(db)? else {
        forged(report);
        return Ok(());
    };
    if r.incident_id != d.incident {
        forged(report);
        return Ok(());
    }
    let binding = Binding {
        request: r.id,
        action_id: r.action_id.clone(),
        params_digest: crate::actions::params_digest(&r.params),
        expires: d.expires,
    };
    if let Err(why) = verify_decision(key, &d, &binding) {
        report.refused.push(why);
        return Ok(());
    }
    if r.expires_at.map(|t| t.timestamp()) != Some(d.expires) {
        report.refused.push(format!(
            "{} for incident #{}: not the request's expiry (forged)",
            d.verb(),
            d.incident
        ));
        return Ok(());
    }
    if store.control_seen(&d.nonce).map_err(db)? {
        report.refused.push(format!(
            "{} for incident #{}: seen before (replayed)",
            d.verb(),
            d.incident
        ));
        return Ok(());
    }
    let outcome =
        crate::actions::decide(config, store, r.id, Some(d.incident), d.approve, PHONE, now)
            .map_err(db)?;
    match outcome {
        crate::actions::Decided::Done(text) => {
            report.decisions.push(text);
            report.decided.push(d.incident);
        }
        crate::actions::Decided::Noop(text) => report.noops.push(text),
        crate::actions::Decided::Refused(text) => {
            report.refused.push(text);
            report.decided.push(d.incident);
        }
    }
    store.first_time_control(&d.nonce, now).map_err(db)?;
    Ok(())
}

fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let key = [7u8; 32];
        let m = sign(&key, "ack", 12, 1_800_000_000).unwrap();
        let v = verify(&key, &m).unwrap();
        assert_eq!(
            (v.action.as_str(), v.incident, v.expires),
            ("ack", 12, 1_800_000_000)
        );
        // another incident, action, expiry or key: refused
        assert!(verify(&key, &m.replace(".12.", ".13.")).is_err());
        assert!(verify(&key, &m.replace(".ack.", ".mute.")).is_err());
        assert!(verify(&key, &m.replace(".1800000000.", ".1900000000.")).is_err());
        // the form without an expiry is refused, saying why
        let old = m.replace(".1800000000.", ".");
        assert!(verify(&key, &old)
            .unwrap_err()
            .contains("before buttons expired"));
        assert!(verify(&[8u8; 32], &m).is_err());
        assert!(verify(&key, "hello").is_err());
    }

    #[test]
    fn a_decision_is_bound_to_its_request_action_params_and_expiry() {
        let key = [7u8; 32];
        let b = Binding {
            request: 3,
            action_id: "restart-app".into(),
            params_digest: "abcd".into(),
            expires: 1_800_000_000,
        };
        let m = sign_decision(&key, true, 12, &b).unwrap();
        let d = parse_decision(&m).unwrap().unwrap();
        assert!(d.approve && d.incident == 12 && d.request == 3);
        assert!(verify_decision(&key, &d, &b).is_ok());
        for other in [
            Binding {
                request: 4,
                ..b.clone()
            },
            Binding {
                action_id: "rm".into(),
                ..b.clone()
            },
            Binding {
                params_digest: "abce".into(),
                ..b.clone()
            },
            Binding {
                expires: 1_900_000_000,
                ..b.clone()
            },
        ] {
            assert!(verify_decision(&key, &d, &other).is_err(), "{other:?}");
        }
        // an Approve turned into a Reject, or moved to another incident: refused
        for forged in [
            m.replace(".approve.", ".reject."),
            m.replace(".12.", ".13."),
        ] {
            let d = parse_decision(&forged).unwrap().unwrap();
            assert!(verify_decision(&key, &d, &b).is_err(), "{forged}");
        }
        // ack and mute messages are not decisions
        assert!(parse_decision(&sign(&key, "ack", 12, 1_800_000_000).unwrap()).is_none());
    }

    #[test]
    fn only_the_signed_spelling_of_the_id_verifies() {
        let key = [7u8; 32];
        let m = sign(&key, "mute", 12, 1_800_000_000).unwrap();
        assert!(verify(&key, &m).is_ok());
        for other in [".+12.", ".012.", ".0012."] {
            let forged = m.replace(".12.", other);
            assert!(verify(&key, &forged).is_err(), "{forged}");
        }
        for other in [".+1800000000.", ".01800000000."] {
            let forged = m.replace(".1800000000.", other);
            assert!(verify(&key, &forged).is_err(), "{forged}");
        }
    }

    #[test]
    fn makes_a_private_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("control.key");
        let k = key(&p).unwrap();
        assert_eq!(k.len(), 32);
        assert_eq!(key(&p).unwrap(), k);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // loosened by hand: tightened again on the next use
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(key(&p).unwrap(), k);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
