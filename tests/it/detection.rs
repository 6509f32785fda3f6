//! Detection, end to end: a replay over several runs two hours apart, the logs written by
//! the real loguru at fixed times, the probes run for real against fixtures (a fake
//! `systemctl`, a certificate made 5 days before its end), a fake Messages API judging
//! and the fake ntfy listening. Each run asserts exactly which incidents open, at which
//! priority, and what reached the phone: baseline INFO traffic and ignored known noise
//! never do; a creeping error rate pages once and then once as a spike; a crash loop and
//! a certificate near its end page from their checks; noise judged twice stops costing
//! calls and comes back only at the lowest priority.

use std::os::unix::fs::PermissionsExt;

use crate::fake_anthropic::FakeAnthropic;
use crate::util::*;

const KEY: &str = "sk-ant-api03-testkey-0123456789abcdef";
/// 2026-11-18T10:00:00Z, a Wednesday.
const T0: i64 = 1_794_996_000;
const HOUR: i64 = 3600;

/// The investigator's answer: a verdict, its severity and title.
fn verdict(verdict: &str, severity: &str, title: &str) -> String {
    format!(
        "```json\n{}\n```",
        serde_json::json!({"verdict": verdict, "severity": severity, "title": title,
            "summary": "s", "root_cause": "r", "suggested_fix": "f", "confidence": 0.8})
    )
}

fn rfc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Appends records to app.log with loguru, each stamped `at` plus its index in
/// milliseconds: `(level, message, count)`; ERRORs carry a traceback.
fn log(t: &Test, at: i64, records: &[(&str, &str, u32)]) {
    let mut body = format!(
        "from datetime import datetime, timezone, timedelta\n\
         logger.add(\"app.log\")\n\
         base = datetime.fromtimestamp({at}, timezone.utc)\n\
         k = 0\n\
         def stamp(r):\n    global k\n    r.update(time=r[\"time\"] + (base + timedelta(milliseconds=k) - r[\"time\"]))\n    k += 1\n\
         log = logger.patch(stamp)\n\
         def fail(msg):\n    raise TimeoutError(msg)\n"
    );
    for (level, msg, n) in records {
        body.push_str(&format!("for i in range({n}):\n"));
        if *level == "ERROR" {
            body.push_str(&format!(
                "    try:\n        fail({msg:?})\n    except Exception:\n        log.exception({msg:?}, i)\n"
            ));
        } else {
            body.push_str(&format!("    log.log({level:?}, {msg:?}, i)\n"));
        }
    }
    t.loguru(&body);
}

/// (title, priority) of what ntfy got since `from`, in order.
fn buzzed(ntfy: &FakeNtfy, from: usize) -> Vec<(String, String)> {
    ntfy.messages_to("ops")[from..]
        .iter()
        .map(|m| {
            (
                m.header("Title").unwrap_or("").to_string(),
                m.header("Priority").unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// (id, title, severity, status) of every incident.
fn incidents(t: &Test) -> Vec<(i64, String, String, String)> {
    let mut v: Vec<_> = t
        .incidents()
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["title"].as_str().unwrap().to_string(),
                i["severity"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_replay_pages_for_exactly_the_real_problems() {
    if python().is_none() {
        return;
    }
    let api = FakeAnthropic::start();
    let ntfy = FakeNtfy::start(None);
    let t = Test::new().env("LW_TEST_KEY", KEY);
    // A certificate that ends 5 days after the first run.
    self_signed_cert(&t, "2026-10-24 10:00:00", "shop.example");
    // The unit's state, read by a fake systemctl.
    t.write("restarts", "0");
    t.write(
        "bin/systemctl",
        &format!(
            "#!/bin/sh\nprintf 'Id=shop-worker.service\\nNRestarts=%s\\nResult=exit-code\\nActiveState=active\\nLoadState=loaded\\n' \"$(cat '{}')\"\n",
            t.path("restarts").display()
        ),
    );
    std::fs::set_permissions(
        t.path("bin/systemctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    t.write("app.log", "");
    t.with_app_source(&format!(
        "[investigator]\nkind = \"anthropic-api\"\nbase_url = \"{url}\"\napi_key_env = \"LW_TEST_KEY\"\ntimeout = \"30s\"\nmodel = \"claude-test-1\"\nretries = 0\nnoise_after = 2\n\
         [incidents]\nresolve_after = \"1h\"\nspike_factor = 10\nspike_min = 20\n\
         [metrics]\nscripts_dir = \"{scripts}\"\n\
         [[check]]\nname = \"cert\"\nscript = \"cert-expiry.sh\"\nargs = [\"--file\", \"{cert}\"]\n\
         [[check.rule]]\nmetric = \"cert_expiry_days\"\nbelow = 14\ntitle = \"certificate ends in {{value}} days\"\n\
         [[check]]\nname = \"crash-loops\"\nscript = \"unit-restarts.sh\"\nargs = [\"shop-worker.service\"]\nenv = {{ SYSTEMCTL = \"{sysctl}\" }}\n\
         [[check.rule]]\nmetric = \"systemd_unit_restarts\"\nabove = 3\nseverity = \"critical\"\ntitle = \"{{unit}} is in a crash loop\"\n\
         {ntfy}",
        url = api.url,
        cert = t.path("cert.pem").display(),
        sysctl = t.path("bin/systemctl").display(),
        ntfy = ntfy.config("ops"),
    ));
    t.write(
        "ignore.toml",
        "[[rule]]\nid = 1\npattern = \"Health check from load balancer\"\ncomment = \"known noise\"\n",
    );
    let baseline = ("INFO", "Served request {} in 12 ms", 50);
    let known = (
        "WARNING",
        "Health check from load balancer {} answered slowly",
        5,
    );
    let gateway = "Payment gateway timed out for order {}";
    let bot = "Malformed header from bot {}";
    let mut seen = 0;
    let mut run = |at: i64| {
        let out = t.ok(&["run", "--now", &rfc(at)]).stdout;
        let got = buzzed(&ntfy, seen);
        seen += got.len();
        (out, got)
    };

    let gw = |n: u32| ("ERROR", gateway, n);
    // On call acknowledges what paged (the reminders stop).
    let ack = |id: &str, at: i64| {
        t.ok(&["incidents", "ack", id, "--now", &rfc(at)]);
    };
    type Buzz<'a> = &'a [(&'a str, &'a str)];
    type Known<'a> = &'a [(i64, &'a str, &'a str, &'a str)];
    let mut step = |name: &str,
                    at: i64,
                    v: Option<String>,
                    records: Vec<(&str, &str, u32)>,
                    calls: usize,
                    want_buzz: Buzz,
                    want: Known| {
        if let Some(v) = v {
            api.set_default(&v);
        }
        let before = api.messages().len();
        log(&t, at - 600, &records);
        let (out, got) = run(at);
        assert_eq!(
            api.messages().len() - before,
            calls,
            "{name}: LLM calls\n{out}"
        );
        let want_buzz: Vec<(String, String)> = want_buzz
            .iter()
            .map(|(title, p)| (format!("[test-host] {title}"), p.to_string()))
            .collect();
        assert_eq!(got, want_buzz, "{name}: what reached the phone\n{out}");
        let want: Vec<(i64, String, String, String)> = want
            .iter()
            .map(|(i, a, b, c)| (*i, a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(incidents(&t), want, "{name}: the incidents\n{out}");
    };
    let cert = (
        1,
        "TLS certificate of shop.example ends in 5 days",
        "warning",
        "open",
    );
    let slow = "Payment gateway is slow";
    let crash = "shop-worker crashes on start";
    let bots = "Bots send malformed headers";

    // 10:00: normal traffic and the known noise (ignored); the certificate ends in 5
    // days: a warning.
    step(
        "r1",
        T0,
        Some(verdict("real", "warning", cert.1)),
        vec![baseline, known],
        1,
        &[(cert.1, "4")],
        &[cert],
    );
    // 12:00: the first gateway timeout pages; on call acknowledges it.
    step(
        "r2",
        T0 + 2 * HOUR,
        Some(verdict("real", "critical", slow)),
        vec![baseline, known, gw(1)],
        1,
        &[(slow, "5")],
        &[cert, (2, slow, "critical", "open")],
    );
    ack("2", T0 + 2 * HOUR + 300);
    // 14:00: two timeouts add to the acknowledged incident (no page); the worker
    // restarts in a loop: its check pages.
    t.write("restarts", "5");
    step(
        "r3",
        T0 + 4 * HOUR,
        Some(verdict("real", "critical", crash)),
        vec![baseline, known, gw(2)],
        1,
        &[(crash, "5")],
        &[
            cert,
            (2, slow, "critical", "acked"),
            (3, crash, "critical", "open"),
        ],
    );
    ack("3", T0 + 4 * HOUR + 300);
    // 16:00: the timeouts climb to 40 in a run: one spike notice. A bot's malformed
    // header, judged noise: an info notification.
    step(
        "r4",
        T0 + 6 * HOUR,
        Some(verdict("noise", "info", bots)),
        vec![baseline, known, gw(40), ("ERROR", bot, 1)],
        1,
        &[
            (&format!("Spike: {slow}"), "5"),
            (&format!("Likely noise: {bots}"), "2"),
        ],
        &[
            cert,
            (2, slow, "critical", "acked"),
            (3, crash, "critical", "acked"),
            (4, bots, "info", "open"),
        ],
    );
    // 18:00: the bots are quiet: their incident resolves by itself, silently.
    let settled = [
        cert,
        (2, slow, "critical", "acked"),
        (3, crash, "critical", "acked"),
        (4, bots, "info", "resolved"),
    ];
    step(
        "r5",
        T0 + 8 * HOUR,
        None,
        vec![baseline, known, gw(3)],
        0,
        &[],
        &settled,
    );
    // 20:00: the bots are back: judged noise a second time, shown at the lowest
    // priority (it does not buzz).
    let mut with5 = settled.to_vec();
    with5.push((5, bots, "info", "open"));
    step(
        "r6",
        T0 + 10 * HOUR,
        None,
        vec![baseline, known, gw(3), ("ERROR", bot, 1)],
        1,
        &[(&format!("Recurring noise: {bots}"), "1")],
        &with5,
    );
    with5[4].3 = "resolved";
    step(
        "r7",
        T0 + 12 * HOUR,
        None,
        vec![baseline, known, gw(3)],
        0,
        &[],
        &with5,
    );
    // 00:00: judged noise twice: not sent to the investigator again, still recorded,
    // still at the lowest priority.
    let fresh = "Malformed header from bot 0: TimeoutError";
    let mut with6 = with5.clone();
    with6.push((6, fresh, "info", "open"));
    step(
        "r8",
        T0 + 14 * HOUR,
        None,
        vec![baseline, known, gw(3), ("ERROR", bot, 1)],
        0,
        &[(&format!("Recurring noise: {fresh}"), "1")],
        &with6,
    );
    with6[5].3 = "resolved";
    step(
        "r9",
        T0 + 16 * HOUR,
        None,
        vec![baseline, known, gw(3)],
        0,
        &[],
        &with6,
    );
    // 04:00: the bots come back forty-fold, past anything judged noise: asked again, the
    // investigator finds it real and critical, and it pages as such.
    let flood = "Header flood from a botnet";
    let mut with7 = with6.clone();
    with7.push((7, flood, "critical", "open"));
    step(
        "r10",
        T0 + 18 * HOUR,
        Some(verdict("real", "critical", flood)),
        vec![baseline, known, gw(3), ("ERROR", bot, 40)],
        1,
        &[(&format!("Regression of #6: {flood}"), "5")],
        &with7,
    );
}
