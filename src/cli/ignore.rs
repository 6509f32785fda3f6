//! `logwarden ignore …` and `logwarden replay`: the ignore rules from the shell.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;

use super::{load, print_json, usage, ConfigArg, EXIT_PROBLEM};
use crate::config::Config;
use crate::ignore::{IgnoreRules, NewRule};
use crate::source::loguru::RecordAssembler;
use crate::source::{Event, RecordParser};
use crate::store::{self, Store};

#[derive(Subcommand, Debug)]
pub enum IgnoreCommand {
    /// Add a rule: PATTERN is a regex searched in the message
    #[command(
        after_help = "Examples:\n  logwarden ignore add 'Connection reset by peer' --source app --level WARNING --expires 7d --comment 'flaky upstream, ticket #12'\n  logwarden ignore add --from-incident 12 --expires 30d --comment 'the nightly export, harmless'"
    )]
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// A regex searched in the message (refused when it matches every message)
        #[arg(required_unless_present = "from_incident")]
        pattern: Option<String>,
        /// Build the rule from this incident: its template as an escaped pattern (redacted
        /// parts as wildcards), its source and its signature
        #[arg(long, value_name = "ID", conflicts_with_all = ["pattern", "signature"])]
        from_incident: Option<i64>,
        /// Only events of this source
        #[arg(long)]
        source: Option<String>,
        /// Only events at this level or below
        #[arg(long)]
        level: Option<String>,
        /// Only events with this signature
        #[arg(long)]
        signature: Option<String>,
        /// When the rule stops matching: a duration (7d, 12h), a date (2026-12-01) or an
        /// RFC 3339 time; the file gets the absolute time
        #[arg(long)]
        expires: Option<String>,
        /// Accept a pattern that matches every message; needs --level below CRITICAL
        #[arg(long)]
        force: bool,
        /// Why this is noise (required: the next person will want to know)
        #[arg(long)]
        comment: String,
    },
    /// List rules with their hit counts
    #[command(after_help = "Examples:\n  logwarden ignore list\n  logwarden ignore list --json")]
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON (schema in the README)
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule by id
    #[command(after_help = "Example:\n  logwarden ignore rm 3")]
    Rm {
        #[command(flatten)]
        config: ConfigArg,
        id: String,
    },
    /// Which rule matches a log line; or, with --file, a dry run of logs against the rules
    #[command(
        after_help = "Examples:\n  logwarden ignore test '2026-11-22 10:00:00.000 | WARNING | app:f:1 - Connection reset by peer'\n  logwarden ignore test --file /var/log/app/app.log --json"
    )]
    Test {
        #[command(flatten)]
        config: ConfigArg,
        /// A log line or message
        line: Option<String>,
        /// Replay the records of this file instead (repeatable): hits per rule, and the
        /// groups that would page
        #[arg(long, conflicts_with = "line")]
        file: Vec<PathBuf>,
        /// Read as this source (its levels and min_level; default: the first source)
        #[arg(long)]
        source: Option<String>,
        /// Print JSON (schema in the README)
        #[arg(long)]
        json: bool,
    },
}

/// Who is at the keyboard, for authorship of rules.
fn who() -> String {
    super::who()
}

/// `boot`: where this command stands on the boot clock, when `now` was read rather
/// than given (see `clock.rs`).
pub fn run(
    cmd: IgnoreCommand,
    now: DateTime<Utc>,
    boot: Option<crate::clock::Boot>,
) -> anyhow::Result<ExitCode> {
    match cmd {
        IgnoreCommand::Add {
            config,
            pattern,
            from_incident,
            source,
            level,
            signature,
            expires,
            force,
            comment,
        } => {
            let config = load(&config)?;
            if comment.trim().is_empty() {
                return Err(usage("--comment must say why this is noise"));
            }
            let (pattern, source, level, signature) = match from_incident {
                Some(id) => {
                    let (p, src, lvl, sig) = from_incident_rule(&config, id)?;
                    (p, source.or(Some(src)), level.or(Some(lvl)), Some(sig))
                }
                None => (pattern.unwrap_or_default(), source, level, signature),
            };
            if let Some(s) = &source {
                if !config.sources.iter().any(|c| &c.name == s) {
                    return Err(usage(format!(
                        "no source named `{s}` in {}",
                        config.path.display()
                    )));
                }
            }
            let expires = expires
                .map(|e| crate::ignore::parse_expiry(&e, now))
                .transpose()
                .map_err(usage)?;
            let rule = NewRule {
                pattern,
                source,
                level,
                signature,
                expires,
                comment,
                author: who(),
                incident: None,
                force,
            };
            let mutes = config.mutes_file();
            let others = [mutes.as_path()];
            let id = crate::ignore::add_rule(config.ignore_target(&others), &rule, now)
                .map_err(usage)?;
            crate::outln!(
                "added rule {id} to {}: /{}/{}",
                config.ignore_file.display(),
                rule.pattern,
                rule.signature
                    .as_deref()
                    .map(|s| format!(" signature={s}"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        IgnoreCommand::List { config, json } => list(&load(&config)?, json, now, boot),
        IgnoreCommand::Rm { config, id } => {
            let config = load(&config)?;
            let mut holders = Vec::new();
            for f in config.rule_files() {
                if crate::ignore::has_rule(&f, &id).map_err(anyhow::Error::msg)? {
                    holders.push(f);
                }
            }
            let file = match holders.as_slice() {
                [] => {
                    return Err(usage(format!(
                        "no rule with id {id} in {} or {}",
                        config.ignore_file.display(),
                        config.mutes_file().display()
                    )))
                }
                [one] => one,
                [a, b, ..] => {
                    return Err(usage(format!(
                        "rule id {id} is in both {} and {}; remove it from one by hand",
                        a.display(),
                        b.display()
                    )))
                }
            };
            let prefix = if *file == config.ignore_file {
                ""
            } else {
                crate::ignore::MUTE_ID_PREFIX
            };
            crate::ignore::remove_rule(file, &id, prefix).map_err(anyhow::Error::msg)?;
            crate::outln!("removed rule {id} from {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        IgnoreCommand::Test {
            config,
            line,
            file,
            source,
            json,
        } => {
            let config = load(&config)?;
            match (line, file.is_empty()) {
                (Some(l), _) => test_line(&config, &l, source.as_deref(), json, now),
                (None, false) => replay(&config, &file, source.as_deref(), json, now),
                (None, true) => Err(usage("give a LINE or --file F")),
            }
        }
    }
}

/// The rules of both files, or every problem of both (printed) and None.
fn rules_or_report(config: &Config, now: DateTime<Utc>) -> Option<IgnoreRules> {
    let files = config.rule_files();
    match IgnoreRules::load_all(&[&files[0], &files[1]], now) {
        Ok(r) => Some(r),
        Err(e) => {
            crate::errln!("{e}");
            None
        }
    }
}

/// One rule as `ignore list --json` prints it.
#[derive(Serialize)]
struct ListedRule {
    id: String,
    pattern: String,
    source: Option<String>,
    /// The level cap: the rule matches records at this level or below.
    level: Option<String>,
    signature: Option<String>,
    expires: Option<String>,
    expired: bool,
    comment: String,
    created: Option<String>,
    author: Option<String>,
    file: String,
    /// "ignore file" or "phone mute".
    origin: &'static str,
    hits: u64,
    last_hit: Option<String>,
}

fn list(
    config: &Config,
    json: bool,
    now: DateTime<Utc>,
    boot: Option<crate::clock::Boot>,
) -> anyhow::Result<ExitCode> {
    // Each file on its own: a broken or unreadable one is reported, the other listed.
    let mut parts = Vec::new();
    let mut broken = false;
    for f in config.rule_files() {
        match IgnoreRules::load(&f, now) {
            Ok(r) => parts.push(r),
            Err(e) => {
                crate::errln!("{e}");
                broken = true;
            }
        }
    }
    let rules = IgnoreRules::merge(parts, now);
    let store = match config
        .database_path()
        .exists()
        .then(|| Store::open(&config.database_path()))
    {
        Some(Ok(s)) => Some(s),
        _ => None,
    };
    let hits = match &store {
        Some(s) => s.ignore_hits()?,
        None => Default::default(),
    };
    // "Expired" as the next run will see it: a rule that expired stays expired when the
    // clock is set back (the runs' expiry floor).
    let prev = match &store {
        Some(s) => s.previous_run_clock()?,
        None => None,
    };
    let expiry_now = crate::clock::RunClock::next(prev.as_ref(), now, boot.as_ref()).floor;
    let listed: Vec<ListedRule> = rules
        .rules
        .iter()
        .map(|r| {
            let (n, last) = r
                .hits_in(&hits)
                .map(|(n, t)| (n, Some(store::ts(t))))
                .unwrap_or((0, None));
            ListedRule {
                id: r.id.clone(),
                pattern: r.pattern.clone(),
                source: r.source.clone(),
                level: r.level.as_ref().map(|l| l.name.clone()),
                signature: r.signature.map(|s| s.to_string()),
                expires: r.expires.map(store::ts),
                expired: r.expired(expiry_now),
                comment: r.comment.clone(),
                created: r.created.clone(),
                author: r.author.clone(),
                file: r.file.display().to_string(),
                origin: if r.file == config.ignore_file {
                    "ignore file"
                } else {
                    "phone mute"
                },
                hits: n,
                last_hit: last,
            }
        })
        .collect();
    if json {
        print_json(&listed)?;
    } else {
        if listed.is_empty() {
            crate::outln!(
                "no ignore rules in {} or {}",
                config.ignore_file.display(),
                config.mutes_file().display()
            );
        }
        for r in &listed {
            let mut scope = Vec::new();
            if let Some(s) = &r.source {
                scope.push(format!("source={s}"));
            }
            if let Some(l) = &r.level {
                scope.push(format!("level<={l}"));
            }
            if let Some(s) = &r.signature {
                scope.push(format!("signature={s}"));
            }
            let state = match &r.expires {
                Some(e) if r.expired => format!("EXPIRED {e}"),
                Some(e) => format!("expires {e}"),
                None => "no expiry".into(),
            };
            crate::outln!(
                "{:>3}  /{}/  {}  {} hits, last {}  {}  [{}: {}]  # {}",
                r.id,
                crate::sanitize::line(&r.pattern),
                if scope.is_empty() {
                    "any".into()
                } else {
                    scope.join(" ")
                },
                r.hits,
                r.last_hit.as_deref().unwrap_or("never"),
                state,
                r.origin,
                r.file,
                // One rule, one line: a comment written over several lines is joined.
                crate::sanitize::line(&r.comment)
            );
        }
    }
    Ok(if broken {
        ExitCode::from(EXIT_PROBLEM)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `ignore test` and `replay` read records with.
struct Reading<'a> {
    rules: IgnoreRules,
    src: Option<&'a crate::config::SourceConfig>,
    /// The source's name, else `fallback`.
    name: &'a str,
    levels: BTreeMap<String, u32>,
}

/// The rules (None when a rule file is broken: its problems are printed) and the
/// source records are read as.
fn reading<'a>(
    config: &'a Config,
    source: Option<&str>,
    fallback: &'a str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Reading<'a>>> {
    let Some(rules) = rules_or_report(config, now) else {
        return Ok(None);
    };
    let src = reading_source(config, source)?;
    Ok(Some(Reading {
        rules,
        src,
        name: src.map(|s| s.name.as_str()).unwrap_or(fallback),
        levels: src.map(|s| s.levels.clone()).unwrap_or_default(),
    }))
}

/// The source records are read as: the named one, else the first.
fn reading_source<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> anyhow::Result<Option<&'a crate::config::SourceConfig>> {
    match name {
        Some(n) => match config.sources.iter().find(|s| s.name == n) {
            Some(s) => Ok(Some(s)),
            None => Err(usage(format!(
                "no source named `{n}` in {}",
                config.path.display()
            ))),
        },
        None => Ok(config.sources.first()),
    }
}

fn signature_of(miner: &mut crate::signature::Miner, e: &Event) -> crate::signature::Signature {
    let mined = miner.add(&e.message);
    crate::signature::signature(
        mined.group,
        e.exception_type.as_deref(),
        e.logger.as_deref(),
    )
}

fn test_line(
    config: &Config,
    text: &str,
    source: Option<&str>,
    json: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let Some(rd) = reading(config, source, "test", now)? else {
        return Ok(ExitCode::from(EXIT_PROBLEM));
    };
    let mut a = dry_parser(&rd, "line");
    let mut events: Vec<_> = text
        .lines()
        .enumerate()
        .filter_map(|(i, x)| a.push(i as u64 + 1, x))
        .collect();
    events.extend(a.finish());
    let mut miner = crate::signature::Miner::new();
    let mut out = Vec::new();
    for mut e in events {
        if e.level.name == "UNKNOWN" {
            e.message = e.raw.clone(); // not a loguru line: test the text as the message
        }
        let sig = signature_of(&mut miner, &e);
        let rule = rd.rules.matching(&e, sig);
        out.push(serde_json::json!({
            "message": e.message.lines().next().unwrap_or(""),
            "level": e.level.name,
            "signature": sig.to_string(),
            "rule": rule.map(|r| r.id.clone()),
            "comment": rule.map(|r| r.comment.clone()),
        }));
        if !json {
            let first = e.message.lines().next().unwrap_or("");
            match rule {
                Some(r) => crate::outln!(
                    "rule {} ({})\t{}",
                    r.id,
                    crate::sanitize::line(&r.comment),
                    first
                ),
                None => crate::outln!("none\t{first}"),
            }
        }
    }
    if json {
        print_json(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a replay of logs against the rules found (`ignore test --file`, `replay`).
#[derive(Serialize, Default)]
struct Replay {
    /// Records read, at every level.
    records: u64,
    /// Records below their source's `min_level`: a run never looks at them.
    below_min_level: u64,
    /// Records an active rule silenced.
    ignored: u64,
    /// Every rule (expired ones too), in file order, with its hits in these logs.
    rules: Vec<ReplayRule>,
    /// The groups left over, by signature, most frequent first: what a run would page.
    would_page: Vec<PageGroup>,
}

#[derive(Serialize)]
struct ReplayRule {
    id: String,
    pattern: String,
    comment: String,
    file: String,
    expired: bool,
    hits: u64,
}

#[derive(Serialize, Clone)]
struct PageGroup {
    signature: String,
    source: String,
    /// The highest level seen in the group.
    level: String,
    count: u64,
    /// The first line of the group's first message.
    message: String,
    /// Where its first record is (file:line).
    first: String,
}

fn replay(
    config: &Config,
    files: &[PathBuf],
    source: Option<&str>,
    json: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let Some(reading) = reading(config, source, "replay", now)? else {
        return Ok(ExitCode::from(EXIT_PROBLEM));
    };
    let min_level = reading.src.map(|s| s.min_level.no).unwrap_or(30);
    let mut r = Replay::default();
    let mut hits: BTreeMap<String, u64> = BTreeMap::new();
    let mut groups: Vec<PageGroup> = Vec::new();
    let mut levels_no: Vec<u32> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut miner = crate::signature::Miner::new();
    for path in files {
        read_records(path, &reading, &mut |e: Event| {
            r.records += 1;
            if e.level.no < min_level {
                r.below_min_level += 1;
                return;
            }
            // As a run does: what a rule ignores is grouped only if the rule asks.
            let mut sig = None;
            let rule = reading.rules.matching_lazy(&e, || {
                Ok::<_, std::convert::Infallible>(*sig.insert(signature_of(&mut miner, &e)))
            });
            if let Ok(Some(rule)) = rule {
                r.ignored += 1;
                *hits.entry(rule.id.clone()).or_default() += 1;
                return;
            }
            let sig = sig.unwrap_or_else(|| signature_of(&mut miner, &e));
            let key = sig.to_string();
            match index.get(&key) {
                Some(&i) => {
                    groups[i].count += 1;
                    if e.level.no > levels_no[i] {
                        levels_no[i] = e.level.no;
                        groups[i].level = e.level.name.clone();
                    }
                }
                None => {
                    index.insert(key.clone(), groups.len());
                    levels_no.push(e.level.no);
                    groups.push(PageGroup {
                        signature: key,
                        source: e.source.clone(),
                        level: e.level.name.clone(),
                        count: 1,
                        message: e.message.lines().next().unwrap_or("").to_string(),
                        first: e.origin.clone(),
                    });
                }
            }
        })?;
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    r.would_page = groups;
    r.rules = reading
        .rules
        .rules
        .iter()
        .map(|x| ReplayRule {
            id: x.id.clone(),
            pattern: x.pattern.clone(),
            comment: x.comment.clone(),
            file: x.file.display().to_string(),
            expired: x.expired(now),
            hits: hits.get(&x.id).copied().unwrap_or(0),
        })
        .collect();
    if json {
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "{} records: {} below min_level, {} ignored, {} left in {} group(s)",
        r.records,
        r.below_min_level,
        r.ignored,
        r.would_page.iter().map(|g| g.count).sum::<u64>(),
        r.would_page.len()
    );
    print_section(
        "rules:",
        "no ignore rules",
        r.rules.iter().map(|x| {
            format!(
                "  rule {:>3}  {:>6} hits  /{}/{}  # {}",
                x.id,
                x.hits,
                crate::sanitize::line(&x.pattern),
                if x.expired { "  EXPIRED" } else { "" },
                crate::sanitize::line(&x.comment)
            )
        }),
    );
    print_section(
        "would page:",
        "would page: nothing",
        r.would_page.iter().map(|g| {
            format!(
                "  {:>6}×  {:<8}  {}  {}  (first at {})",
                g.count, g.level, g.signature, g.message, g.first
            )
        }),
    );
    Ok(ExitCode::SUCCESS)
}

/// A heading and its lines, or the line saying there are none.
fn print_section(heading: &str, none: &str, lines: impl Iterator<Item = String>) {
    let mut lines = lines.peekable();
    if lines.peek().is_none() {
        crate::outln!("{none}");
        return;
    }
    crate::outln!("{heading}");
    for l in lines {
        crate::outln!("{l}");
    }
}

/// The parser a dry run reads records with: the source's own (its format, its zone) for a
/// file source, loguru's default format otherwise. Every level is kept.
fn dry_parser(rd: &Reading<'_>, origin: &str) -> Box<dyn RecordParser> {
    match rd.src.map(|src| (src, &src.kind)) {
        Some((src, crate::config::SourceKind::File(fs))) => {
            crate::source::file::parser_for(src, &fs.parser, origin, 0)
        }
        _ => Box::new(
            RecordAssembler::new(rd.name, origin, &rd.levels, 0).with_cut_floor(rd.src.map_or(
                crate::source::Level::number_of("WARNING", &rd.levels),
                |s| s.min_level.no,
            )),
        ),
    }
}

/// Reads the records of a file (a record's continuation lines and traceback joined to
/// it); a line the parser does not recognise is a record of its own, its text the message.
fn read_records(path: &Path, rd: &Reading<'_>, each: &mut dyn FnMut(Event)) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let origin = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut a = dry_parser(rd, &origin);
    let mut fix = |mut e: Event| {
        if e.level.name == "UNKNOWN" {
            e.message = e.raw.clone();
        }
        each(e)
    };
    for (i, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let line = line?;
        let mut l: &[u8] = &line;
        while let [rest @ .., b'\r'] = l {
            l = rest;
        }
        // A record appended to a torn line is cut off it as a run cuts it (without the
        // torn points a run keeps: a file read once has none).
        let mut embedded = false;
        loop {
            let cut = a.embedded_record(l).filter(|&k| k > 0 && k < l.len());
            let part = &l[..cut.unwrap_or(l.len())];
            let done = if embedded {
                a.push_embedded(i as u64 + 1, part)
            } else {
                a.push_bytes(i as u64 + 1, part)
            };
            done.into_iter()
                .chain(std::iter::from_fn(|| a.take_ready()))
                .for_each(&mut fix);
            match cut {
                Some(k) => (l, embedded) = (&l[k..], true),
                None => break,
            }
        }
    }
    a.finish()
        .into_iter()
        .chain(std::iter::from_fn(|| a.take_ready()))
        .for_each(&mut fix);
    Ok(())
}

/// `logwarden replay FILE…`: the same dry run as `ignore test --file`.
pub fn replay_command(
    config: &Config,
    files: &[PathBuf],
    source: Option<&str>,
    json: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    replay(config, files, source, json, now)
}

/// The pattern, source, level cap and signature of a rule silencing one incident's
/// group.
fn from_incident_rule(
    config: &Config,
    id: i64,
) -> anyhow::Result<(String, String, String, String)> {
    let store = Store::open(&config.database_path())?;
    let Some(i) = store.incident(id)? else {
        return Err(usage(format!("no incident #{id}")));
    };
    if i.signature.parse::<crate::signature::Signature>().is_err() {
        return Err(usage(format!(
            "incident #{id} is a {} incident with no log signature: there is nothing to silence",
            i.kind
        )));
    }
    // The group's template as it is now: it may have widened since the incident opened
    // (`code=<*>` from `code=card_declined`), and a rule on the first one would let
    // the group's later messages through.
    let level = crate::ignore::level_cap_for(config, &i);
    let current = store.signature(&i.signature)?.map(|s| s.template);
    let template = current.unwrap_or(i.template);
    // Redacted first: the rules file is shown and shared, a secret must not land in it.
    let template = config.redact.redactor.clean(&template);
    Ok((
        crate::ignore::pattern_for_redacted_template(&template),
        i.source,
        level,
        i.signature,
    ))
}
