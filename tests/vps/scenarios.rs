//! The scenarios, in the order they run. Each starts from a clean state (`reset`),
//! writes its config as a user would, makes the app (python3 + loguru inside, as the
//! user `app`) or journald write errors, and checks what the user sees: files, the
//! journal, `logwarden` CLI output, and the requests the fake ntfy got.
//!
//! The service uses the real clock (it is started by systemd), so the logs the app
//! writes carry the container's current time; nothing depends on today's date.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_anthropic::{verdict_text, FakeAnthropic};
use crate::util::{FakeNtfy, Received};
use crate::vm::Vm;

/// Where the package under test is copied inside before boot.
pub const DEB_INSIDE: &str = "/root/logwarden.deb";

pub struct Ctx<'a> {
    pub vm: &'a Vm,
    pub ntfy: &'a FakeNtfy,
    pub api: &'a FakeAnthropic,
    /// The Claude Code executable inside (bind-mounted from the host), if there is one.
    pub claude: Option<String>,
}

pub struct Scenario {
    pub name: &'static str,
    pub run: fn(&Ctx),
}

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "install_then_the_timer_fires_the_service",
        run: install_then_the_timer_fires_the_service,
    },
    Scenario {
        name: "real_claude_cli_investigates_inside_the_sandbox",
        run: real_claude_cli_investigates_inside_the_sandbox,
    },
    Scenario {
        name: "journald_source_reads_the_real_journal",
        run: journald_source_reads_the_real_journal,
    },
    Scenario {
        name: "root_edits_rules_and_incidents_then_the_service_still_runs",
        run: root_edits_rules_and_incidents_then_the_service_still_runs,
    },
    Scenario {
        name: "phone_ack_and_mute_applied_by_the_sandboxed_service",
        run: phone_ack_and_mute_applied_by_the_sandboxed_service,
    },
    Scenario {
        name: "unreadable_source_and_broken_ignore_file_are_notified_once",
        run: unreadable_source_and_broken_ignore_file_are_notified_once,
    },
    Scenario {
        name: "doctor_as_root_checks_access_as_the_service_user",
        run: doctor_as_root_checks_access_as_the_service_user,
    },
    Scenario {
        name: "local_time_zone_and_per_source_timezone",
        run: local_time_zone_and_per_source_timezone,
    },
    Scenario {
        name: "crash_loop_of_a_transient_unit_opens_an_incident",
        run: crash_loop_of_a_transient_unit_opens_an_incident,
    },
    Scenario {
        name: "a_queued_action_runs_in_the_action_unit_as_its_run_as_user",
        run: a_queued_action_runs_in_the_action_unit_as_its_run_as_user,
    },
    Scenario {
        name: "vanished_health_check_file_real_claude_phone_approve_action_unit_resolves",
        run: vanished_health_check_file_real_claude_phone_approve_action_unit_resolves,
    },
    Scenario {
        name: "the_action_units_sandbox_lets_the_documented_actions_work",
        run: the_action_units_sandbox_lets_the_documented_actions_work,
    },
    Scenario {
        name: "file_exists_check_sees_the_hosts_tmp_read_only_and_opens_the_incident_when_it_goes",
        run: file_exists_check_sees_the_hosts_tmp_read_only_and_opens_the_incident_when_it_goes,
    },
    Scenario {
        name: "upgrade_keeps_everything_remove_keeps_config_purge_removes_all",
        run: upgrade_keeps_everything_remove_keeps_config_purge_removes_all,
    },
];

const CONFIG: &str = "/etc/logwarden/logwarden.toml";
const IGNORE: &str = "/etc/logwarden/ignore.toml";
const STATE: &str = "/var/lib/logwarden";
const INCIDENTS: &str = "/var/lib/logwarden/incidents";
const APP_LOG: &str = "/var/log/app/app.log";

/// Installs the package (once), then clears what earlier scenarios left: state,
/// rules, drop-ins, the app's logs; the timer is stopped so only the scenario starts
/// the service.
fn reset(c: &Ctx) {
    let vm = c.vm;
    if vm.sh("dpkg-query -W -f '${Status}' logwarden").stdout != "install ok installed" {
        let o = vm.sh(&format!("dpkg -i {DEB_INSIDE} </dev/null"));
        assert!(o.ok(), "dpkg -i of the package under test\n{}", o.all());
        assert!(
            !o.all().to_lowercase().contains("warning"),
            "the install warns:\n{}",
            o.all()
        );
        // The app whose logs are watched: its own user, its log readable by group adm
        // (as the README asks).
        vm.ok("id app >/dev/null 2>&1 || adduser --system --group --no-create-home app >/dev/null");
    }
    vm.ok(&format!(
        "systemctl stop logwarden.timer logwarden.service
         rm -rf /etc/systemd/system/logwarden.service.d /etc/systemd/system/logwarden.timer.d
         rm -rf /etc/systemd/system/logwarden-act.service.d
         systemctl daemon-reload
         rm -rf {STATE}/* {STATE}/.[!.]* {IGNORE} /var/log/app /var/log/private /var/lib/logwarden-act/*
         install -d -m 0750 -o logwarden -g logwarden {INCIDENTS}
         install -d -m 0750 -o app -g adm /var/log/app
         ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime"
    ));
}

/// Writes the config as a user would (`editor` / `cat >`: the file keeps the owner
/// and mode the package gave it) and checks that it does.
fn write_config(c: &Ctx, text: &str) {
    c.vm.write(CONFIG, text);
    assert_eq!(
        stat(c.vm, CONFIG),
        "640 root logwarden",
        "the .deb's config owner/mode"
    );
    let o = c.vm.sh("logwarden check");
    assert!(o.ok(), "logwarden check\n{}\n{text}", o.all());
}

/// `mode owner group` of a path inside.
fn stat(vm: &Vm, path: &str) -> String {
    vm.ok(&format!("stat -c '%a %U %G' {path}"))
        .trim()
        .to_string()
}

/// Python run as the app's user with loguru logging to `log` in its default format
/// (local time, no offset), as an app does. `env` goes before `python3` (e.g. `TZ=…`).
fn app(vm: &Vm, log: &str, env: &str, body: &str) {
    let script = format!(
        "import sys\nfrom loguru import logger\nlogger.remove()\nlogger.add({log:?})\n{body}\n"
    );
    let o = vm.sh_input(
        &format!("cd / && runuser -u app -- env {env} python3 -"),
        script.as_bytes(),
    );
    assert!(o.ok(), "the app's python\n{}\n{script}", o.all());
}

/// The app hits an error with a traceback.
fn app_error(vm: &Vm, message: &str) {
    app(
        vm,
        APP_LOG,
        "",
        &format!(
            "def work():\n    raise ConnectionError({message:?})\ntry:\n    work()\nexcept Exception:\n    logger.exception({message:?})"
        ),
    );
}

/// One service run, as the timer would start it: `systemctl start` (waits for the
/// oneshot to finish). Whether it succeeded, and what it printed to the journal.
fn service_run(vm: &Vm) -> (bool, String) {
    // The run's lines are found by identifier after a cursor, not by unit or invocation
    // id: journald looks those up from the sender's cgroup, which a process that has
    // already exited (a quick run on a loaded machine) no longer has.
    let cursor = vm.ok("journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p'");
    let o = vm.sh("systemctl start logwarden.service");
    // journald may still be reading the last lines of the stream (seconds on a loaded
    // machine): wait for the summary.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = vm.ok(&format!(
            "journalctl --no-pager -o cat -t logwarden --after-cursor='{}'",
            cursor.trim()
        ));
        if log.contains("done in") || (!o.ok() && log.contains("logwarden: ")) {
            return (o.ok(), format!("{log}{}", o.stderr));
        }
        if Instant::now() > deadline {
            let status = vm.sh("systemctl status --no-pager logwarden.service; journalctl --no-pager -n 15 -o short-precise");
            return (
                o.ok(),
                format!(
                    "{log}\n(no summary in the journal after 30 s)\nsystemctl start: {}\n{}",
                    o.all(),
                    status.stdout
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A service run that must succeed; its journal.
fn service_ok(vm: &Vm) -> String {
    let (ok, log) = service_run(vm);
    assert!(ok, "logwarden.service failed:\n{log}");
    log
}

/// `logwarden incidents --json` as root.
fn incidents(vm: &Vm) -> Vec<Value> {
    let out = vm.ok("logwarden incidents --json");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn page(vm: &Vm, incident: &Value) -> String {
    let path = incident["file_path"]
        .as_str()
        .expect("the incident has a page");
    vm.ok(&format!("cat '{path}'"))
}

/// Whether an incident is the one whose message starts with `text` (by its template:
/// a page also shows other lines of the log around its samples).
fn about(incident: &Value, text: &str) -> bool {
    incident["template"]
        .as_str()
        .is_some_and(|t| t.starts_with(text))
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn bodies(m: &[Received]) -> String {
    m.iter()
        .map(|r| r.body.as_str())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn base_config(c: &Ctx, topic: &str, rest: &str) -> String {
    format!(
        "hostname = \"vps-test\"\n\n[[source]]\nname = \"app\"\npath = \"{APP_LOG}\"\nfrom = \"start\"\n{rest}\n{}",
        c.ntfy.config(topic)
    )
}

/// 1. The package as installed: the timer (made fast with a drop-in, as `systemctl
///    edit logwarden.timer` would) fires the service; it writes the incident page and
///    the notification reaches ntfy.
fn install_then_the_timer_fires_the_service(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    assert_eq!(stat(vm, "/etc/logwarden"), "750 root logwarden");
    assert_eq!(stat(vm, STATE), "750 logwarden logwarden");
    let groups = vm.ok("id -nG logwarden");
    assert!(
        groups.contains("adm") && groups.contains("systemd-journal"),
        "{groups}"
    );
    assert_eq!(
        vm.ok("systemctl is-enabled logwarden.timer").trim(),
        "enabled"
    );
    write_config(c, &base_config(c, "s1-timer", ""));
    app_error(vm, "Payment provider timed out for order 1234");
    // Only group adm (which the package puts the service user in) may enter the app's
    // log folder.
    assert_eq!(stat(vm, "/var/log/app"), "750 app adm");

    vm.ok("mkdir -p /etc/systemd/system/logwarden.timer.d");
    vm.write(
        "/etc/systemd/system/logwarden.timer.d/fast.conf",
        "[Timer]\nOnCalendar=\nOnCalendar=*:*:0/10\nRandomizedDelaySec=0\nAccuracySec=1s\n",
    );
    vm.ok("systemctl daemon-reload && systemctl restart logwarden.timer");
    let started = Instant::now();
    let pages = wait_for("an incident page", Duration::from_secs(90), || {
        let ls = vm.sh(&format!("ls {INCIDENTS} | grep -v INDEX.md"));
        (ls.ok() && !ls.stdout.trim().is_empty()).then(|| ls.stdout)
    });
    println!(
        "the timer's run wrote {} after {:.0} s",
        pages.trim(),
        started.elapsed().as_secs_f64()
    );
    let messages = wait_for("the ntfy notification", Duration::from_secs(30), || {
        let m = c.ntfy.messages_to("s1-timer");
        (!m.is_empty()).then_some(m)
    });
    assert_eq!(messages.len(), 1, "{}", bodies(&messages));
    assert!(
        messages[0].body.contains("Payment provider timed out"),
        "{}",
        messages[0].body
    );
    let trigger = vm.ok("systemctl show -p LastTriggerUSec --value logwarden.timer");
    assert!(
        !trigger.trim().is_empty() && trigger.trim() != "n/a",
        "the timer fired: {trigger}"
    );
    let journal = vm.ok("journalctl -u logwarden.service --no-pager -o cat");
    assert!(journal.contains("new incident #1"), "{journal}");
    let i = &incidents(vm)[0];
    let p = i["file_path"].as_str().unwrap();
    assert!(p.starts_with(INCIDENTS), "{p}");
    let mode = stat(vm, p);
    assert!(
        mode.ends_with("0 logwarden logwarden"),
        "the service's, not for everyone: {mode}"
    );
    assert!(page(vm, i).contains("ConnectionError"));
    // The service user reads its own state with the CLI too.
    let own = vm.ok("cd / && runuser -u logwarden -- logwarden incidents --json");
    let own: Vec<Value> = serde_json::from_str(&own).unwrap();
    assert_eq!(own.len(), 1);
    vm.ok("systemctl stop logwarden.timer");
}

/// 4. The real Claude Code CLI (its native executable) investigating from inside the
///    unit's sandbox (SystemCallFilter, ProtectSystem=strict, no capabilities) against
///    the fake Messages API on loopback; its key and URL come from a drop-in, as a user
///    would set them.
fn real_claude_cli_investigates_inside_the_sandbox(c: &Ctx) {
    let Some(claude) = &c.claude else {
        println!("SKIPPED: no Claude Code CLI (set LOGWARDEN_TEST_CLAUDE or run .ci/run)");
        return;
    };
    let vm = c.vm;
    reset(c);
    c.api
        .set_default(&verdict_text("real", "Payments worker cannot reach Redis"));
    let before = c.api.messages().len();
    vm.ok("mkdir -p /etc/systemd/system/logwarden.service.d");
    vm.write(
        "/etc/systemd/system/logwarden.service.d/claude.conf",
        &format!(
            "[Service]\nEnvironment=ANTHROPIC_BASE_URL={}\nEnvironment=ANTHROPIC_API_KEY=sk-ant-api03-fake-key-for-vps-tests-0000\nEnvironment=DISABLE_AUTOUPDATER=1\nEnvironment=CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n",
            c.api.url
        ),
    );
    vm.ok("systemctl daemon-reload");
    write_config(
        c,
        &base_config(
            c,
            "s4-claude",
            &format!(
                "\n[investigator]\nkind = \"claude-cli\"\ncommand = \"{claude}\"\ntimeout = \"150s\"\nmodel = \"sonnet\"\nmax_turns = 4\n"
            ),
        ),
    );
    app_error(
        vm,
        "Redis unreachable: Error 111 connecting to localhost:6379",
    );
    let log = service_ok(vm);
    assert!(
        log.contains("Payments worker cannot reach Redis"),
        "{log}\nrequests: {:?}",
        c.api
            .requests()
            .iter()
            .map(|q| format!("{} {}", q.method, q.url))
            .collect::<Vec<_>>()
    );
    assert!(!log.contains("Bad system call"), "{log}");
    // It ran in a scratch HOME under the state dir (the service user's), removed after.
    let left = vm.ok(&format!("ls -A {STATE}"));
    assert!(!left.contains("claude-"), "scratch dirs left: {left}");
    let i = &incidents(vm)[0];
    assert_eq!(i["verdict"], "real", "{i}");
    assert_eq!(i["diagnosis"]["backend"], "claude-cli", "{i}");
    let msgs = c.api.messages();
    let req = msgs[before..]
        .iter()
        .find(|r| r.text().contains("LOG DATA"))
        .expect("a request carried logwarden's prompt");
    // Only logwarden's own read-only tools, served over MCP: no Bash, Read or Write.
    let tools = req.tools();
    assert!(
        !tools.is_empty() && tools.iter().all(|t| t.starts_with("mcp__logwarden__")),
        "{tools:?}"
    );
    assert!(
        tools.iter().any(|t| t == "mcp__logwarden__read_evidence"),
        "{tools:?}"
    );
    assert!(req.text().contains("Redis unreachable"));
    let m = c.ntfy.messages_to("s4-claude");
    assert_eq!(m.len(), 1, "{}", bodies(&m));
    assert!(
        m[0].body.contains("Payments worker cannot reach Redis")
            || m[0]
                .header("Title")
                .is_some_and(|t| t.contains("Payments worker cannot reach Redis")),
        "{:?}",
        m[0]
    );
}

/// 5. A journald source on the container's own journal, written with `logger` and
///    `systemd-cat`; the service user reads it through the `systemd-journal` group.
fn journald_source_reads_the_real_journal(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    write_config(
        c,
        &format!(
            "hostname = \"vps-test\"\n\n[[source]]\nname = \"journal\"\nkind = \"journald\"\nidentifiers = [\"shop-worker\"]\nmin_level = \"ERROR\"\n\n{}",
            c.ntfy.config("s5-journal")
        ),
    );
    // The first run starts at the journal's end.
    service_ok(vm);
    vm.ok("logger -t shop-worker -p user.err 'Order 991 failed: stock service returned 503'");
    vm.ok("echo 'this warning is below min_level' | systemd-cat -t shop-worker -p warning");
    vm.ok("echo 'Refund 17 failed: ledger locked' | systemd-cat -t shop-worker -p err");
    wait_for("the lines in the journal", Duration::from_secs(10), || {
        let j = vm.ok("journalctl -t shop-worker --no-pager -o cat");
        j.contains("ledger locked").then_some(())
    });
    let log = service_ok(vm);
    assert!(!log.contains("Permission denied"), "{log}");
    let list = incidents(vm);
    assert_eq!(list.len(), 2, "{list:?}\n{log}");
    let m = c.ntfy.messages_to("s5-journal");
    let all = bodies(&m);
    assert!(all.contains("stock service returned 503"), "{all}");
    assert!(all.contains("ledger locked"), "{all}");
    assert!(!all.contains("below min_level"), "{all}");
}

/// 2. Root edits rules (`ignore add/rm`) and incidents (`note/ack/resolve`) from a shell;
///    the service keeps running as its own user and keeps the notes on the pages it
///    rewrites.
fn root_edits_rules_and_incidents_then_the_service_still_runs(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    write_config(c, &base_config(c, "s2-root", ""));
    vm.ok("logwarden ignore add 'healthcheck failed' --comment 'load balancer probes'");
    assert_eq!(
        stat(vm, IGNORE),
        "640 root logwarden",
        "a new ignore file takes the config's owner and mode"
    );
    app_error(vm, "healthcheck failed from 10.0.0.7");
    app_error(vm, "Database connection lost");
    let log = service_ok(vm);
    assert!(log.contains("1 ignored"), "{log}");
    assert_eq!(incidents(vm).len(), 1);

    vm.ok("logwarden ignore rm 1");
    assert_eq!(stat(vm, IGNORE), "640 root logwarden", "kept on rewrite");
    app_error(vm, "healthcheck failed from 10.0.0.8");
    service_ok(vm);
    let list = incidents(vm);
    assert_eq!(list.len(), 2, "the rule is gone: {list:?}");

    let db = list
        .iter()
        .find(|i| about(i, "Database connection lost"))
        .expect("the database incident")
        .clone();
    let id = db["id"].as_i64().unwrap();
    let path = db["file_path"].as_str().unwrap().to_string();
    let page_mode = stat(vm, &path);
    let index_mode = stat(vm, &format!("{INCIDENTS}/INDEX.md"));
    vm.ok(&format!(
        "logwarden incidents note {id} 'Restarted pgbouncer, watching it'"
    ));
    vm.ok(&format!("logwarden incidents ack {id}"));
    assert_eq!(
        stat(vm, &path),
        page_mode,
        "root's rewrite keeps the page the service's"
    );
    let before = vm.ok(&format!("cat {path}"));
    app_error(vm, "Database connection lost");
    app_error(vm, "Database connection lost");
    service_ok(vm);
    let after = vm.ok(&format!("cat {path}"));
    assert_ne!(before, after, "the service rewrote the page");
    assert!(after.contains("occurrences: 3"), "{after}");
    assert!(
        after.contains("Restarted pgbouncer, watching it"),
        "{after}"
    );
    assert!(after.contains("status: acked"), "{after}");

    vm.ok(&format!("logwarden incidents resolve {id}"));
    service_ok(vm);
    let page = vm.ok(&format!("cat {path}"));
    assert!(page.contains("status: resolved"), "{page}");
    assert!(page.contains("Restarted pgbouncer, watching it"), "{page}");
    assert_eq!(stat(vm, &path), page_mode);
    assert_eq!(stat(vm, &format!("{INCIDENTS}/INDEX.md")), index_mode);
}

/// 3. The phone's Ack and Mute buttons (signed messages on the control topic), applied
///    by the sandboxed service: the mute must land where the unit lets it write.
fn phone_ack_and_mute_applied_by_the_sandboxed_service(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    c.ntfy.allow_anonymous_write("s3-control");
    write_config(
        c,
        &(base_config(c, "s3-phone", "") + "control_topic = \"s3-control\"\n"),
    );
    app_error(vm, "Payment provider timeout for order 77");
    app_error(vm, "Cache stampede on key user:42");
    service_ok(vm);
    let m = c.ntfy.messages_to("s3-phone");
    assert_eq!(m.len(), 2, "{}", bodies(&m));
    let pay = m
        .iter()
        .find(|r| r.body.contains("Payment provider"))
        .unwrap();
    let cache = m
        .iter()
        .find(|r| r.body.contains("Cache stampede"))
        .unwrap();
    assert_eq!(c.ntfy.tap(pay, "Ack"), 200);
    assert_eq!(c.ntfy.tap(cache, "Mute 24h"), 200);

    let log = service_ok(vm);
    assert!(log.contains("acknowledged from the phone"), "{log}");
    assert!(log.contains("muted for 24h from the phone"), "{log}");
    assert!(!log.contains("Read-only file system"), "{log}");
    let list = incidents(vm);
    let acked = list.iter().find(|i| about(i, "Payment provider")).unwrap();
    assert_eq!(acked["status"], "acked", "{acked}");
    assert_eq!(acked["acked_by"], "phone (ntfy)");
    let mutes = vm.ok(&format!("cat {STATE}/mutes.toml"));
    let sig = list.iter().find(|i| about(i, "Cache stampede")).unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(mutes.contains(&sig), "{mutes}");
    let rules = vm.ok("logwarden ignore list");
    assert!(
        rules.contains(&sig),
        "`ignore list` shows the mute: {rules}"
    );

    for _ in 0..3 {
        app_error(vm, "Cache stampede on key user:42");
    }
    let log = service_ok(vm);
    assert!(log.contains("3 ignored"), "{log}");
    assert_eq!(
        c.ntfy.messages_to("s3-phone").len(),
        2,
        "nothing new was sent"
    );
}

/// The action unit: the sandboxed watcher only queues an approved action (here a safe
/// `auto` one attached by rule); `logwarden-act.path` starts the root
/// `logwarden-act.service`, which runs it as its `run_as` user (the app's, whose folder
/// the watcher cannot write); the next watch runs record it and verify it.
fn a_queued_action_runs_in_the_action_unit_as_its_run_as_user(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    vm.ok("rm -rf /var/lib/app-health && install -d -m 0755 -o app -g app /var/lib/app-health");
    // The action unit's system is read-only but for /run, /tmp and /var/tmp: a data
    // dir is granted as the README says, with a drop-in (`systemctl edit`).
    grant_to_action_unit(vm, "/var/lib/app-health");
    write_config(
        c,
        &base_config(
            c,
            "s-act",
            "[actions]\nrunner = \"queue\"\n\
             [[action]]\nid = \"recreate-healthcheck\"\nargv = [\"touch\", \"/var/lib/app-health/healthy\"]\n\
             when = { sources = [\"app\"] }\nmode = \"approve\"\ndry_run = false\nrun_as = \"app\"\n\
             verify = { quiet_runs = 1 }\n",
        ),
    );
    assert!(
        vm.ok("systemctl is-enabled logwarden-act.path").trim() == "enabled",
        "the package enables the path unit"
    );
    app_error(vm, "Health check file missing");
    // The run proposes; nothing runs before a person approves (here from the shell).
    service_ok(vm);
    let pending = vm.ok("logwarden actions list --json");
    assert!(pending.contains("recreate-healthcheck"), "{pending}");
    assert!(!vm.sh("test -e /var/lib/app-health/healthy").ok());
    let approved = vm.ok("logwarden actions approve 1 --json");
    assert!(approved.contains("\"ok\": true"), "{approved}");
    let log = service_ok(vm);
    assert!(log.contains("queued for the action unit"), "{log}");
    // The watcher could not have done it: the folder is the app's.
    wait_for("the action unit to run it", Duration::from_secs(60), || {
        vm.sh("test -e /var/lib/app-health/healthy")
            .ok()
            .then_some(())
    });
    let made = stat(vm, "/var/lib/app-health/healthy");
    assert!(
        made.ends_with(" app app"),
        "made as its run_as user: {made}"
    );
    let act = vm.ok("journalctl --no-pager -o cat -u logwarden-act.service");
    assert!(act.contains("request 1: ran"), "{act}");
    assert_eq!(
        stat(vm, "/var/lib/logwarden-act/ledger.json"),
        "600 root root"
    );
    let log = service_ok(vm);
    assert!(
        log.contains("ran action `recreate-healthcheck`: exit code 0"),
        "{log}"
    );
    let log = service_ok(vm);
    assert!(log.contains("incident #1 resolved"), "{log}");
    let history = vm.ok("logwarden actions history --json");
    assert!(history.contains("\"status\": \"verified\""), "{history}");
    assert!(
        history.contains("(CLI)"),
        "who approved is recorded: {history}"
    );
}

/// 6. A source the service user cannot read and a broken ignore file: the run goes on
///    with the rest, each problem is notified once (not on every run), and `status`
///    and `doctor` show them.
fn unreadable_source_and_broken_ignore_file_are_notified_once(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    vm.ok("install -d -m 0700 /var/log/private && echo '2026-01-01 00:00:00.000 | ERROR    | x:y:1 - secret' > /var/log/private/vault.log && chmod 600 /var/log/private/vault.log");
    write_config(
        c,
        &base_config(
            c,
            "s6-problems",
            "\n[[source]]\nname = \"vault\"\npath = \"/var/log/private/vault.log\"\nfrom = \"start\"\n",
        ),
    );
    vm.write(IGNORE, "[[rule]]\nid = 1\npattern = \"unclosed\n");
    vm.ok(&format!("chgrp logwarden {IGNORE} && chmod 640 {IGNORE}"));
    app_error(vm, "Invoice rendering failed for invoice 5");
    let (_, first) = service_run(vm);
    assert!(
        first.contains("new incident #"),
        "the readable source is still watched:\n{first}"
    );
    let after_first = c.ntfy.messages_to("s6-problems");
    let problems = |m: &[Received]| {
        m.iter()
            .filter(|r| r.body.contains("/var/log/private/vault.log") || r.body.contains(IGNORE))
            .count()
    };
    let all = bodies(&after_first);
    assert!(all.contains("/var/log/private/vault.log"), "{all}");
    assert!(all.contains(IGNORE), "{all}");
    service_run(vm);
    service_run(vm);
    let later = c.ntfy.messages_to("s6-problems");
    assert_eq!(
        problems(&later),
        problems(&after_first),
        "notified once, not on every run:\n{}",
        bodies(&later)
    );
    for cmd in ["logwarden status", "logwarden doctor"] {
        let o = vm.sh(cmd);
        let text = format!("{}{}", o.stdout, o.stderr);
        assert!(
            text.contains("/var/log/private/vault.log"),
            "{cmd}:\n{text}"
        );
        assert!(text.contains(IGNORE), "{cmd}:\n{text}");
    }
}

/// 10. A crash loop: a transient unit that fails and is restarted by systemd until it
///     hits its start limit (5 starts in 10 s by default) is seen by `unit-restarts.sh`
///     as the sandboxed service runs it (systemctl over D-Bus, as the `logwarden` user),
///     and the rules of the shipped config's example open the incidents that reach ntfy.
fn crash_loop_of_a_transient_unit_opens_an_incident(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    vm.sh("systemctl stop crashy.service; systemctl reset-failed crashy.service");
    write_config(
        c,
        &base_config(
            c,
            "s10-crashy",
            "\n[[check]]\nname = \"crash-loops\"\nscript = \"unit-restarts.sh\"\nargs = [\"crashy.service\", \"no-such-unit\"]\n\
             [[check.rule]]\nmetric = \"systemd_unit_restarts\"\nabove = 3\nseverity = \"critical\"\ntitle = \"{unit} is in a crash loop ({value} restarts)\"\n\
             [[check.rule]]\nmetric = \"systemd_unit_start_limit_hit\"\nabove = 0\nseverity = \"critical\"\ntitle = \"systemd gave up restarting {unit}\"\n",
        ),
    );
    // Nothing wrong yet: the run stores the calm values and opens nothing.
    let log = service_ok(vm);
    assert!(!log.contains("` failed"), "{log}");
    assert!(incidents(vm).is_empty(), "{log}");
    vm.ok("systemd-run --unit=crashy -p Restart=always -p RestartSec=100ms /bin/false");
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let o = vm.ok("systemctl show -p Result,NRestarts,ActiveState crashy.service");
        // Failed for good: systemd 252 keeps Result=exit-code when a restart hits
        // the start limit ("Start request repeated too quickly").
        if o.contains("ActiveState=failed") {
            break o;
        }
        if Instant::now() > deadline {
            let j = vm.sh("systemctl status --no-pager crashy.service; journalctl -u crashy.service --no-pager -n 20");
            panic!(
                "crashy did not hit its start limit in 60 s: {o}\n{}",
                j.stdout
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let restarts: u32 = settled
        .lines()
        .find_map(|l| l.strip_prefix("NRestarts="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{settled}"));
    assert!(restarts > 3, "{settled}");
    let log = service_ok(vm);
    assert!(
        !log.contains("` failed"),
        "the probe ran in the sandbox:\n{log}"
    );
    let metrics = vm.ok("logwarden metrics");
    for (series, value) in [
        (
            "systemd_unit_restarts{unit=\"crashy.service\"}".to_string(),
            restarts.to_string(),
        ),
        (
            "systemd_unit_start_limit_hit{unit=\"crashy.service\"}".into(),
            "1".into(),
        ),
        (
            "systemd_unit_active{unit=\"crashy.service\"}".into(),
            "0".into(),
        ),
        (
            "systemd_unit_loaded{unit=\"no-such-unit.service\"}".into(),
            "0".into(),
        ),
    ] {
        assert!(
            metrics.lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(series.as_str()) && w.next() == Some(value.as_str())
            }),
            "{series} {value}:\n{metrics}"
        );
    }
    let mut titles: Vec<(String, String)> = incidents(vm)
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap_or("").to_string(),
                i["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        vec![
            (
                format!("crashy.service is in a crash loop ({restarts} restarts)"),
                "critical".to_string()
            ),
            (
                "systemd gave up restarting crashy.service".to_string(),
                "critical".to_string()
            ),
        ],
        "{log}"
    );
    let m = wait_for("the two notifications", Duration::from_secs(30), || {
        let m = c.ntfy.messages_to("s10-crashy");
        (m.len() >= 2).then_some(m)
    });
    assert_eq!(m.len(), 2, "{}", bodies(&m));
    for (title, _) in &titles {
        assert!(
            m.iter().any(|r| r.body.contains(title.as_str())
                || r.header("Title")
                    .is_some_and(|t| t.contains(title.as_str()))),
            "{title}: {}",
            bodies(&m)
        );
    }
    vm.sh("systemctl stop crashy.service; systemctl reset-failed crashy.service");
}

/// 7. `doctor` as root says what the service user can and cannot read and write.
fn doctor_as_root_checks_access_as_the_service_user(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    app_error(vm, "Something broke");
    vm.ok("install -d -m 0750 /var/log/private && touch /var/log/private/vault.log");
    write_config(
        c,
        &base_config(
            c,
            "s7-doctor",
            "\n[[source]]\nname = \"vault\"\npath = \"/var/log/private/vault.log\"\n",
        ),
    );
    // What the old `ignore add` left: a file only root can read; and an incidents
    // folder root made for itself.
    vm.write(IGNORE, "");
    vm.ok(&format!(
        "chmod 600 {IGNORE} && chown root:root {INCIDENTS} && chmod 755 {INCIDENTS}"
    ));
    let o = vm.sh("logwarden doctor");
    let text = format!("{}{}", o.stdout, o.stderr);
    assert!(text.contains("logwarden"), "{text}");
    let line_of = |needle: &str| -> String {
        text.lines()
            .filter(|l| l.contains(needle))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let vault = line_of("/var/log/private/vault.log");
    assert!(
        vault.contains('✗'),
        "the service user cannot read it:\n{text}"
    );
    let ignore = line_of(IGNORE);
    assert!(
        ignore.contains('✗'),
        "the service user cannot read it:\n{text}"
    );
    let incidents = line_of(INCIDENTS);
    assert!(
        incidents.contains('✗'),
        "the service user cannot write there:\n{text}"
    );
    let app = line_of(APP_LOG);
    assert!(
        app.contains('✓') && !app.contains('✗'),
        "readable through the adm group:\n{text}"
    );
    let state = line_of(&format!("{STATE} "));
    assert!(
        state.contains('✓') && !state.contains('✗'),
        "the state dir is the service's:\n{text}"
    );
}

/// 9. A host in Europe/Berlin: loguru's offset-less times are its local time; a
///    source's `timezone` says otherwise for a log written elsewhere.
fn local_time_zone_and_per_source_timezone(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    vm.ok("ln -sf /usr/share/zoneinfo/Europe/Berlin /etc/localtime && date +%Z");
    write_config(
        c,
        &base_config(
            c,
            "s9-tz",
            "\n[[source]]\nname = \"tokyo\"\npath = \"/var/log/app/tokyo.log\"\nfrom = \"start\"\ntimezone = \"Asia/Tokyo\"\n",
        ),
    );
    // The app runs in the host's zone; the other log comes from a process in Tokyo.
    app_error(vm, "Berlin worker failed");
    app(
        vm,
        "/var/log/app/tokyo.log",
        "TZ=Asia/Tokyo",
        "logger.error('Tokyo worker failed')",
    );
    let written = chrono::Utc::now();
    service_ok(vm);
    let list = incidents(vm);
    assert_eq!(list.len(), 2, "{list:?}");
    for i in &list {
        let first: chrono::DateTime<chrono::Utc> = i["first_seen"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {i}"));
        let off = (first - written).num_minutes().abs();
        // Read in the wrong zone it would be an hour (Berlin) or nine (Tokyo) off.
        assert!(off < 10, "first_seen {first} vs written at {written}: {i}");
    }
    vm.ok("ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime");
}

/// 8. What Debian users expect of a package: an upgrade keeps config, state and
///    rules (no conffile question); `dpkg -r` keeps config and state; `dpkg --purge`
///    removes them and the user.
fn upgrade_keeps_everything_remove_keeps_config_purge_removes_all(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    write_config(
        c,
        &format!("# our VPS\n{}", base_config(c, "s8-upgrade", "")),
    );
    // Rules written with an editor, readable by the service as the README says.
    vm.write(
        IGNORE,
        "# reviewed on Mondays\n[[rule]]\nid = 1\npattern = \"healthcheck\"\ncomment = \"load balancer probes\"\ncreated = \"2026-11-01T00:00:00Z\"\nauthor = \"ops\"\n",
    );
    vm.ok(&format!("chgrp logwarden {IGNORE} && chmod 640 {IGNORE}"));
    app_error(vm, "Queue consumer crashed");
    service_ok(vm);
    let fingerprint = || {
        vm.ok(&format!(
            "sha256sum {CONFIG} {IGNORE}; stat -c '%a %U %G %n' /etc/logwarden {CONFIG} {IGNORE} {STATE}"
        ))
    };
    let before = fingerprint();
    let incidents_before = incidents(vm);
    assert_eq!(incidents_before.len(), 1);

    // The same package with a higher version, as the next release would be.
    let version = vm.ok(&format!(
        "set -e; v=$(dpkg-deb -f {DEB_INSIDE} Version); d=$(mktemp -d /root/repack.XXXXXX)
         dpkg-deb -R {DEB_INSIDE} $d/pkg
         sed -i \"s/^Version: .*/Version: $v+vps1/\" $d/pkg/DEBIAN/control
         dpkg-deb -Zgzip -b $d/pkg /root/logwarden-next.deb >/dev/null
         echo $v+vps1"
    ));
    let o = vm.sh("dpkg -i /root/logwarden-next.deb </dev/null");
    assert!(o.ok(), "upgrade\n{}", o.all());
    assert_eq!(
        vm.ok("dpkg-query -W -f '${Version}' logwarden"),
        version.trim()
    );
    assert_eq!(fingerprint(), before, "config, rules and modes kept");
    assert_eq!(
        vm.ok("systemctl is-enabled logwarden.timer").trim(),
        "enabled"
    );
    assert_eq!(
        vm.ok("systemctl is-active logwarden.timer").trim(),
        "active"
    );
    app_error(vm, "Queue consumer crashed");
    service_ok(vm);
    let after = incidents(vm);
    assert_eq!(after.len(), 1, "the same incident, remembered: {after:?}");
    assert_eq!(after[0]["occurrences"], 2, "{after:?}");
    assert!(vm.ok("logwarden ignore list").contains("healthcheck"));

    let o = vm.sh("dpkg -r logwarden </dev/null");
    assert!(o.ok(), "dpkg -r\n{}", o.all());
    assert!(!vm.sh("test -e /usr/bin/logwarden").ok(), "binary removed");
    assert!(
        !vm.sh("test -e /lib/systemd/system/logwarden.timer").ok(),
        "units removed"
    );
    assert_ne!(
        vm.sh("systemctl is-active logwarden.timer").stdout.trim(),
        "active",
        "the timer stopped"
    );
    let kept = vm.ok(&format!(
        "sha256sum {CONFIG} {IGNORE}; ls {STATE} {INCIDENTS}"
    ));
    assert!(kept.contains("logwarden.db"), "state kept: {kept}");
    assert!(
        before.lines().take(2).all(|l| kept.contains(l)),
        "config kept: {kept}"
    );
    assert!(vm.sh("getent passwd logwarden").ok(), "user kept on remove");

    let o = vm.sh("dpkg --purge logwarden </dev/null");
    assert!(o.ok(), "dpkg --purge\n{}", o.all());
    for gone in ["/etc/logwarden", STATE] {
        assert!(!vm.sh(&format!("test -e {gone}")).ok(), "{gone} purged");
    }
    assert!(!vm.sh("getent passwd logwarden").ok(), "user purged");
    assert!(!vm.sh("getent group logwarden").ok(), "group purged");
    assert!(
        vm.ok("dpkg-query -W -f '${Status}' logwarden 2>&1 || true")
            .contains("not-installed")
            || !vm.sh("dpkg-query -W logwarden").ok()
    );
}

/// Grants the action unit write access to `path`, as `systemctl edit logwarden-act`
/// would (a drop-in with `ReadWritePaths=`).
fn grant_to_action_unit(vm: &Vm, path: &str) {
    vm.ok("mkdir -p /etc/systemd/system/logwarden-act.service.d");
    vm.write(
        "/etc/systemd/system/logwarden-act.service.d/paths.conf",
        &format!("[Service]\nReadWritePaths={path}\n"),
    );
    vm.ok("systemctl daemon-reload");
}

/// The Claude Code CLI's key and URL for the service, from a drop-in as a user would
/// set them: the fake Messages API on the host's loopback.
fn claude_drop_in(c: &Ctx) {
    c.vm.ok("mkdir -p /etc/systemd/system/logwarden.service.d");
    c.vm.write(
        "/etc/systemd/system/logwarden.service.d/claude.conf",
        &format!(
            "[Service]\nEnvironment=ANTHROPIC_BASE_URL={}\nEnvironment=ANTHROPIC_API_KEY=sk-ant-api03-fake-key-for-vps-tests-0000\nEnvironment=DISABLE_AUTOUPDATER=1\nEnvironment=CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n",
            c.api.url
        ),
    );
    c.vm.ok("systemctl daemon-reload");
}

/// The app's health probe, as the app's user: the file there, nothing said; gone, an
/// error in its log.
fn health_probe(vm: &Vm) {
    app(
        vm,
        APP_LOG,
        "",
        "import os\npath = '/tmp/healthy'\nif not os.path.exists(path):\n    logger.error('Health check file {} missing, the load balancer takes the node out', path)",
    );
}

/// The whole story, as on a real server: the app's health-check file in /tmp vanishes
/// and its probe logs it (real loguru); the installed watcher (user `logwarden`, its
/// sandbox) opens an incident and the real Claude Code CLI (against the fake Messages
/// API) proposes `recreate-healthcheck`; the notification carries a signed Approve,
/// which the test posts to the control topic as the ntfy app does; the next run queues
/// the request; `logwarden-act.path` starts the root action unit, which runs it as the
/// app's user, into the real /tmp (not a private one: the app must see it); the probe
/// is quiet again, the verify passes, the incident resolves, its page's Log tells each
/// step, and the phone was paged once.
fn vanished_health_check_file_real_claude_phone_approve_action_unit_resolves(c: &Ctx) {
    let Some(claude) = &c.claude else {
        println!("SKIPPED: no Claude Code CLI (set LOGWARDEN_TEST_CLAUDE or run .ci/run)");
        return;
    };
    let vm = c.vm;
    reset(c);
    vm.ok("rm -f /tmp/healthy");
    claude_drop_in(c);
    c.api.set_default(&format!(
        "The health-check file is gone; the load balancer will take the node out.\n```json\n{}\n```",
        serde_json::json!({"verdict": "real", "severity": "critical", "title": "Health-check file missing",
            "summary": "The app's health-check file /tmp/healthy was deleted.", "root_cause": "a tmp cleaner removed it",
            "suggested_fix": "recreate it and exclude it from the cleaner", "confidence": 0.9,
            "actions": [{"id": "recreate-healthcheck", "params": {"name": "healthy"},
                         "reason": "the load balancer probes this file"}]})
    ));
    let before = c.api.messages().len();
    c.ntfy.allow_anonymous_write("s-chain-control");
    write_config(
        c,
        &(base_config(
            c,
            "s-chain",
            &format!(
                "\n[investigator]\nkind = \"claude-cli\"\ncommand = \"{claude}\"\ntimeout = \"150s\"\nmodel = \"sonnet\"\nmax_turns = 4\n\
                 [actions]\nrunner = \"queue\"\n\
                 [[action]]\nid = \"recreate-healthcheck\"\ndescription = \"Recreate the app's health-check file\"\n\
                 argv = [\"touch\", \"/tmp/{{name}}\"]\nparams = {{ name = \"healthy|ready\" }}\nwhen = {{ sources = [\"app\"] }}\n\
                 mode = \"approve\"\ndry_run = false\nrun_as = \"app\"\nverify = {{ quiet_runs = 1 }}\n"
            ),
        ) + "control_topic = \"s-chain-control\"\n"),
    );
    // The file was there (the app's), a cleaner removed it, the probe logs it.
    vm.ok("runuser -u app -- touch /tmp/healthy && rm /tmp/healthy");
    health_probe(vm);

    let log = service_ok(vm);
    assert!(log.contains("new incident #1"), "{log}");
    assert!(!log.contains("Bad system call"), "{log}");
    let msgs = c.api.messages();
    let req = msgs[before..]
        .iter()
        .find(|r| r.text().contains("LOG DATA"))
        .expect("the real claude CLI asked the fake Messages API");
    let system = req.body["system"].to_string();
    assert!(
        system.contains("## Allowed actions") && system.contains("recreate-healthcheck"),
        "the model was told which action it may propose: {system}"
    );
    let i = &incidents(vm)[0];
    assert_eq!(i["diagnosis"]["backend"], "claude-cli", "{i}");
    let m = c.ntfy.messages_to("s-chain");
    assert_eq!(m.len(), 1, "{}", bodies(&m));
    assert!(
        m[0].body
            .contains("Proposed action: `recreate-healthcheck` (name=healthy)"),
        "{}",
        m[0].body
    );
    assert!(!vm.sh("test -e /tmp/healthy").ok(), "nothing ran yet");

    // Approve tapped: the ntfy app posts the signed line to the control topic.
    assert_eq!(c.ntfy.tap(&m[0], "Approve: recreate-healthcheck"), 200);
    let log = service_ok(vm);
    assert!(log.contains("approved by phone (ntfy)"), "{log}");
    assert!(log.contains("queued for the action unit"), "{log}");
    wait_for("the action unit to run it", Duration::from_secs(60), || {
        vm.sh("test -e /tmp/healthy").ok().then_some(())
    });
    // In the real /tmp, where the app looks, made by the app's user.
    assert_eq!(
        stat(vm, "/tmp/healthy").split_once(' ').unwrap().1,
        "app app"
    );
    let act = vm.ok("journalctl --no-pager -o cat -u logwarden-act.service");
    assert!(act.contains("request 1: ran"), "{act}");
    // The probe finds it: quiet.
    health_probe(vm);
    let log = service_ok(vm);
    assert!(
        log.contains("ran action `recreate-healthcheck` (name=healthy): exit code 0"),
        "{log}"
    );
    let log = service_ok(vm);
    assert!(log.contains("incident #1 resolved"), "{log}");

    let i = &incidents(vm)[0];
    assert_eq!(i["status"], "resolved", "{i}");
    let page = page(vm, i).replace('\\', "");
    for step in [
        "proposed by the investigator (request 1): the load balancer probes this file",
        "Waiting for approval until",
        "approved by phone (ntfy)",
        "queued for the action unit",
        "Ran action `recreate-healthcheck` (name=healthy) (request 1, approved by phone (ntfy)): `touch /tmp/healthy` as app → exit code 0",
        "passed: the signature stayed quiet for 1 run(s). The incident is resolved.",
        "status: resolved",
    ] {
        assert!(page.contains(step), "{step} missing from:\n{page}");
    }
    let history = vm.ok("logwarden actions history --json");
    let h: Vec<Value> = serde_json::from_str(&history).unwrap();
    assert_eq!(h.len(), 1, "{history}");
    assert_eq!(h[0]["status"], "verified", "{history}");
    assert_eq!(h[0]["decided_by"], "phone (ntfy)", "{history}");
    assert_eq!(h[0]["argv"][1], "/tmp/healthy", "{history}");
    let ledger = vm.ok("cat /var/lib/logwarden-act/ledger.json");
    let ledger: Value = serde_json::from_str(&ledger).unwrap();
    assert_eq!(
        ledger["recreate-healthcheck"].as_array().map(Vec::len),
        Some(1),
        "{ledger}"
    );
    // Paged once: the proposal; nothing else went to the phone about it.
    let m = c.ntfy.messages_to("s-chain");
    assert_eq!(m.len(), 1, "{}", bodies(&m));
}

/// The action unit's sandbox (ProtectSystem=strict, no network, a narrow capability
/// set): measured with `systemd-analyze security` as installed, and the documented
/// actions still work in it, each `auto` (safe) and attached by rule: restart a unit
/// through systemctl as root, touch a file under /run as the app's user, touch one in
/// a data dir granted with a drop-in; a data dir not granted stays read-only to it.
fn the_action_units_sandbox_lets_the_documented_actions_work(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    let sec = vm.ok("systemd-analyze security --no-pager logwarden-act.service 2>&1");
    let exposure: f64 = sec
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for logwarden-act.service: ")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{sec}"));
    println!("systemd-analyze security logwarden-act.service (booted): exposure {exposure:.1}");
    assert!(exposure <= 2.0, "{sec}");
    vm.sh("systemctl stop lw-worker.service; systemctl reset-failed lw-worker.service");
    vm.ok("systemd-run --unit=lw-worker sleep infinity");
    let pid_before = vm.ok("systemctl show -p MainPID --value lw-worker.service");
    vm.ok("rm -rf /run/app /var/lib/app-data /var/lib/app-other && install -d -m 0755 -o app -g app /run/app /var/lib/app-data /var/lib/app-other");
    grant_to_action_unit(vm, "/var/lib/app-data");
    // (action id, argv, run_as): one source each, so each gets its own incident.
    let actions = [
        (
            "restart-worker",
            "[\"systemctl\", \"restart\", \"lw-worker.service\"]",
            "root",
        ),
        ("mark-ready", "[\"touch\", \"/run/app/ready\"]", "app"),
        (
            "mark-data",
            "[\"touch\", \"/var/lib/app-data/flag\"]",
            "app",
        ),
        (
            "mark-other",
            "[\"touch\", \"/var/lib/app-other/flag\"]",
            "app",
        ),
    ];
    let mut rest = String::new();
    for (id, _, _) in &actions {
        rest.push_str(&format!(
            "[[source]]\nname = \"{id}\"\npath = \"/var/log/app/{id}.log\"\nfrom = \"start\"\n"
        ));
    }
    rest.push_str("[actions]\nrunner = \"queue\"\n");
    for (id, argv, user) in &actions {
        rest.push_str(&format!(
            "[[action]]\nid = \"{id}\"\nargv = {argv}\nwhen = {{ sources = [\"{id}\"] }}\nmode = \"auto\"\nsafe = true\ndry_run = false\nrun_as = \"{user}\"\n"
        ));
    }
    write_config(c, &base_config(c, "s-sandbox", &rest));
    for (id, _, _) in &actions {
        app(
            vm,
            &format!("/var/log/app/{id}.log"),
            "",
            &format!("logger.error('{id} is needed')"),
        );
    }
    let log = service_ok(vm);
    assert_eq!(
        log.matches("queued for the action unit").count(),
        4,
        "{log}"
    );
    wait_for(
        "the action unit's four results",
        Duration::from_secs(60),
        || {
            let n = vm.ok("ls /var/lib/logwarden/actions/results | grep -c json || true");
            (n.trim() == "4").then_some(())
        },
    );
    let log = service_ok(vm);
    let act = vm.ok("journalctl --no-pager -o cat -u logwarden-act.service");
    for id in ["restart-worker", "mark-ready", "mark-data"] {
        assert!(
            log.contains(&format!("ran action `{id}`: exit code 0")),
            "{id}:\n{log}\n{act}"
        );
    }
    for f in ["/run/app/ready", "/var/lib/app-data/flag"] {
        assert!(stat(vm, f).ends_with(" app app"), "{f}");
    }
    let pid_after = vm.ok("systemctl show -p MainPID,ActiveState lw-worker.service");
    assert!(pid_after.contains("ActiveState=active"), "{pid_after}");
    assert!(
        !pid_after.contains(&format!("MainPID={}", pid_before.trim())),
        "restarted: {pid_before} then {pid_after}"
    );
    // Not granted: read-only to the action unit, though the app's user owns it.
    assert!(
        log.contains("ran action `mark-other`: exit code 1"),
        "{log}\n{act}"
    );
    assert!(!vm.sh("test -e /var/lib/app-other/flag").ok());
    let h = vm.ok("logwarden actions history --json");
    assert!(h.contains("Read-only file system"), "{h}");
    vm.sh("systemctl stop lw-worker.service");
}

/// The last value of each series, by its full name (`logwarden metrics --json`).
fn series(vm: &Vm) -> std::collections::BTreeMap<String, f64> {
    let out = vm.ok("logwarden metrics --json");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["series"]
        .as_array()
        .unwrap_or_else(|| panic!("no series in {out}"))
        .iter()
        .filter_map(|s| Some((s["key"].as_str()?.to_string(), s["last_value"].as_f64()?)))
        .collect()
}

/// Waits past the current second: a check's samples are stamped with the run's time in
/// seconds, and a second run within the same second (the service takes the real clock)
/// would find its samples already there and store none.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// A check script that reports what the watcher's sandbox lets a script do with temp
/// files: write the host's /tmp and /var/tmp (it must not), and make one with mktemp
/// (it must, somewhere of its own).
const TMP_ACCESS_SH: &str = r#"#!/bin/sh
for d in /tmp /var/tmp; do
    if touch "$d/logwarden-write-probe" 2>/dev/null; then
        rm -f "$d/logwarden-write-probe"; w=1
    else
        w=0
    fi
    echo "dir_writable{dir=\"$d\"} $w"
done
if f=$(mktemp 2>/dev/null); then
    echo "mktemp_ok 1"
    case "$f" in /tmp/*|/var/tmp/*) echo "mktemp_in_host_tmp 1" ;; *) echo "mktemp_in_host_tmp 0" ;; esac
    rm -f "$f"
else
    echo "mktemp_ok 0"
fi
"#;

/// The installed watcher and the curated `file-exists.sh` probe of the app's
/// health-check files in /tmp and /var/tmp (made by the app's user): the watcher sees
/// the host's /tmp, not a private empty one, so the files there are no incident; one
/// removed opens the incident about it on the next run (and is paged), and it resolves
/// once the file is back. The sandbox keeps both folders read-only to the watcher and
/// its scripts, which make their temp files in a folder of their own (`TMPDIR`).
fn file_exists_check_sees_the_hosts_tmp_read_only_and_opens_the_incident_when_it_goes(c: &Ctx) {
    let vm = c.vm;
    reset(c);
    let sec = vm.ok("systemd-analyze security --no-pager logwarden.service 2>&1");
    let exposure: f64 = sec
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for logwarden.service: ")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{sec}"));
    println!("systemd-analyze security logwarden.service (booted): exposure {exposure:.1}");
    assert!(exposure <= 2.5, "{sec}");
    vm.ok("rm -f /tmp/healthy /var/tmp/app-heartbeat /tmp/logwarden-write-probe /var/tmp/logwarden-write-probe");
    vm.ok("install -d -m 0755 /usr/local/lib/lw-probe");
    vm.write("/usr/local/lib/lw-probe/tmp-access.sh", TMP_ACCESS_SH);
    vm.ok("chmod 0755 /usr/local/lib/lw-probe/tmp-access.sh");
    write_config(
        c,
        &base_config(
            c,
            "s-health",
            "\n[[check]]\nname = \"health\"\nscript = \"file-exists.sh\"\n\
             args = [\"/tmp/healthy\", \"/var/tmp/app-heartbeat\"]\n\
             [[check.rule]]\nmetric = \"file_exists\"\nbelow = 1\nseverity = \"critical\"\n\
             title = \"health-check file {path} missing\"\n\
             [[check]]\nname = \"tmp-access\"\nscript = \"/usr/local/lib/lw-probe/tmp-access.sh\"\n",
        ),
    );
    // The app is up: its log, its health-check files (its own user's, as an app makes them).
    app(vm, APP_LOG, "", "logger.info('started')");
    vm.ok("runuser -u app -- touch /tmp/healthy /var/tmp/app-heartbeat");

    let log = service_ok(vm);
    let s = series(vm);
    let healthy = "file_exists{path=\"/tmp/healthy\"}";
    let heartbeat = "file_exists{path=\"/var/tmp/app-heartbeat\"}";
    assert_eq!(
        s.get(healthy),
        Some(&1.0),
        "the watcher sees /tmp/healthy: {s:?}\n{log}"
    );
    assert_eq!(
        s.get(heartbeat),
        Some(&1.0),
        "the watcher sees /var/tmp/app-heartbeat: {s:?}\n{log}"
    );
    assert!(
        incidents(vm).is_empty(),
        "the files are there: no incident\n{log}"
    );
    // Read-only to the watcher and its scripts; mktemp works, elsewhere.
    assert_eq!(s.get("dir_writable{dir=\"/tmp\"}"), Some(&0.0), "{s:?}");
    assert_eq!(s.get("dir_writable{dir=\"/var/tmp\"}"), Some(&0.0), "{s:?}");
    assert_eq!(s.get("mktemp_ok"), Some(&1.0), "{s:?}");
    assert_eq!(s.get("mktemp_in_host_tmp"), Some(&0.0), "{s:?}");
    assert!(!vm
        .sh("test -e /tmp/logwarden-write-probe || test -e /var/tmp/logwarden-write-probe")
        .ok());
    assert!(c.ntfy.messages_to("s-health").is_empty());

    // A cleaner removes the app's file: the next run opens the incident about it.
    vm.ok("rm /tmp/healthy");
    next_second();
    let log = service_ok(vm);
    assert!(log.contains("opened incident #1"), "{log}");
    let all = incidents(vm);
    assert_eq!(all.len(), 1, "only the file that went: {all:?}");
    let i = &all[0];
    assert_eq!(i["status"], "open", "{i}");
    assert!(
        i["signature"]
            .as_str()
            .is_some_and(|s| s.ends_with(healthy)),
        "{i}"
    );
    assert!(
        page(vm, i).contains("health-check file /tmp/healthy missing"),
        "{}",
        page(vm, i)
    );
    let m = c.ntfy.messages_to("s-health");
    assert_eq!(m.len(), 1, "{}", bodies(&m));
    assert!(
        format!("{:?}", m[0]).contains("/tmp/healthy"),
        "the page names the file: {:?}",
        m[0]
    );
    assert_eq!(series(vm).get(heartbeat), Some(&1.0));

    // The app makes it again: resolved.
    vm.ok("runuser -u app -- touch /tmp/healthy");
    next_second();
    let log = service_ok(vm);
    assert!(log.contains("resolved incident #1"), "{log}");
    assert_eq!(incidents(vm)[0]["status"], "resolved");
    vm.ok("rm -f /tmp/healthy /var/tmp/app-heartbeat");
}
