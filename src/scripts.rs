//! The curated scripts an investigator may run, and the one gate every such call goes
//! through, whichever backend asked.
//!
//! A script is offered to the model only when it declares its arguments in its own
//! header comment, one declaration per line:
//!
//! ```text
//! # logwarden-args: none                  takes no arguments
//! # logwarden-args: flag --user           a flag without a value
//! # logwarden-args: option --db N [0-9]+  a flag followed by one value matching the regex
//! # logwarden-args: arg MOUNT /[a-z/]*    a required positional argument
//! # logwarden-args: arg? SECONDS [1-5]    an optional one (after the required ones)
//! # logwarden-args: arg* NAME [a-z]+      any number of them (last)
//! # logwarden-args: check                 the only argument names a configured [[check]]
//!                                         of this script: it runs with that check's own
//!                                         arguments and env, never the model's
//! ```
//!
//! Patterns are regexes matched against the whole argument. No argument may start with
//! `-` unless it is a declared flag or option (values of options included), so nothing
//! the model writes can become an option of the script or of a program it calls.
//! Queries, paths and hosts the model must not choose are reached through `check`.
//! The header is the block of `#` lines at the top of the file; a script without a
//! declaration, or with one that does not parse, is never run for the model.
//!
//! [`prepare`] validates a call and [`run`] runs it; both are the same for the
//! `anthropic-api` tool loop and any other front end, so a refusal is decided once.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use regex::Regex;

use crate::config::Config;

/// The marker of a declaration line in a script's header.
pub const MARKER: &str = "logwarden-args:";

/// Most arguments in one call, and most bytes of one argument.
pub const MAX_ARGS: usize = 10;
pub const MAX_ARG_LEN: usize = 256;

/// How much of a script's beginning is read for its header.
const HEADER_BYTES: u64 = 16 * 1024;

/// A positional argument's arity.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arity {
    One,
    Optional,
    Many,
}

#[derive(Debug, Clone)]
struct Positional {
    metavar: String,
    arity: Arity,
    pattern: Regex,
    source: String,
}

#[derive(Debug, Clone)]
struct Flag {
    name: String,
    /// `Some((metavar, pattern, source))` for an option that takes a value.
    value: Option<(String, Regex, String)>,
}

/// What a script accepts from the model.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    flags: Vec<Flag>,
    positionals: Vec<Positional>,
    /// The model may name a configured check of this script.
    check: bool,
}

/// A curated script with its schema.
#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub path: PathBuf,
    pub schema: Schema,
}

/// A validated call, ready to run.
#[derive(Debug, Clone)]
pub struct Call {
    pub script: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The configured check this call runs as, if any (its env is added).
    pub check: Option<String>,
    pub env: BTreeMap<String, String>,
}

fn anchored(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!(r"\A(?:{pattern})\z")).map_err(|e| format!("bad pattern `{pattern}`: {e}"))
}

fn valid_flag(f: &str) -> bool {
    let body = f.strip_prefix("--").or_else(|| f.strip_prefix('-'));
    matches!(body, Some(b) if b.starts_with(|c: char| c.is_ascii_alphabetic())
        && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn valid_metavar(m: &str) -> bool {
    m.starts_with(|c: char| c.is_ascii_uppercase())
        && m.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl Schema {
    /// Parses the declarations of a script's header. `Ok(None)`: the script declares
    /// nothing (it is not for the model).
    pub fn parse(text: &str) -> Result<Option<Schema>, String> {
        let mut s = Schema::default();
        let mut declared = false;
        let mut none = false;
        for (i, line) in text.lines().enumerate() {
            let Some(comment) = line.strip_prefix('#') else {
                break;
            };
            let Some(decl) = comment.trim_start().strip_prefix(MARKER) else {
                continue;
            };
            let at = |e: String| format!("line {}: {e}", i + 1);
            declared = true;
            let decl = decl.trim();
            let (kind, rest) = decl.split_once(char::is_whitespace).unwrap_or((decl, ""));
            let rest = rest.trim();
            match kind {
                "none" if rest.is_empty() => none = true,
                "check" if rest.is_empty() => s.check = true,
                "flag" => {
                    if !valid_flag(rest) {
                        return Err(at(format!("`{rest}` is not a flag name (--word)")));
                    }
                    s.add_flag(rest, None).map_err(at)?;
                }
                "option" => {
                    let mut p = rest.splitn(3, char::is_whitespace);
                    let (name, metavar, pattern) = (
                        p.next().unwrap_or(""),
                        p.next().unwrap_or(""),
                        p.next().unwrap_or("").trim(),
                    );
                    if !valid_flag(name) || !valid_metavar(metavar) || pattern.is_empty() {
                        return Err(at("expected `option --name METAVAR PATTERN`".into()));
                    }
                    let re = anchored(pattern).map_err(at)?;
                    s.add_flag(name, Some((metavar.into(), re, pattern.into())))
                        .map_err(at)?;
                }
                "arg" | "arg?" | "arg*" => {
                    let arity = match kind {
                        "arg" => Arity::One,
                        "arg?" => Arity::Optional,
                        _ => Arity::Many,
                    };
                    let (metavar, pattern) = rest
                        .split_once(char::is_whitespace)
                        .map(|(m, p)| (m, p.trim()))
                        .unwrap_or((rest, ""));
                    if !valid_metavar(metavar) || pattern.is_empty() {
                        return Err(at(format!("expected `{kind} METAVAR PATTERN`")));
                    }
                    match s.positionals.last().map(|p| p.arity) {
                        Some(Arity::Many) => {
                            return Err(at("nothing may follow an `arg*`".into()));
                        }
                        Some(Arity::Optional) if arity == Arity::One => {
                            return Err(at(
                                "a required `arg` may not follow an optional one".into()
                            ));
                        }
                        _ => {}
                    }
                    s.positionals.push(Positional {
                        metavar: metavar.into(),
                        arity,
                        pattern: anchored(pattern).map_err(at)?,
                        source: pattern.into(),
                    });
                }
                other => {
                    return Err(at(format!(
                        "`{other}` is not a declaration (none, check, flag, option, arg, arg?, arg*)"
                    )));
                }
            }
        }
        if !declared {
            return Ok(None);
        }
        if none && (s.check || !s.flags.is_empty() || !s.positionals.is_empty()) {
            return Err("`none` cannot be combined with other declarations".into());
        }
        Ok(Some(s))
    }

    fn add_flag(
        &mut self,
        name: &str,
        value: Option<(String, Regex, String)>,
    ) -> Result<(), String> {
        if self.flags.iter().any(|f| f.name == name) {
            return Err(format!("`{name}` is declared twice"));
        }
        self.flags.push(Flag {
            name: name.into(),
            value,
        });
        Ok(())
    }

    /// The arguments the model may give, for the tool's description (`[--user] | CHECK`).
    pub fn usage(&self) -> String {
        let mut forms = Vec::new();
        let mut direct: Vec<String> = self
            .flags
            .iter()
            .map(|f| match &f.value {
                None => format!("[{}]", f.name),
                Some((m, _, _)) => format!("[{} {m}]", f.name),
            })
            .collect();
        direct.extend(self.positionals.iter().map(|p| match p.arity {
            Arity::One => p.metavar.clone(),
            Arity::Optional => format!("[{}]", p.metavar),
            Arity::Many => format!("[{}...]", p.metavar),
        }));
        if !direct.is_empty() || !self.check {
            forms.push(if direct.is_empty() {
                "(no arguments)".to_string()
            } else {
                direct.join(" ")
            });
        }
        if self.check {
            forms.push("CHECK".into());
        }
        let mut s = forms.join(" | ");
        let patterns: Vec<String> = self
            .flags
            .iter()
            .filter_map(|f| f.value.as_ref().map(|(m, _, p)| format!("{m} = /{p}/")))
            .chain(
                self.positionals
                    .iter()
                    .map(|p| format!("{} = /{}/", p.metavar, p.source)),
            )
            .collect();
        if !patterns.is_empty() {
            s.push_str(&format!(" where {}", patterns.join(", ")));
        }
        s
    }

    /// Checks arguments given directly (not a check name); the error says which one and why.
    fn check_direct(&self, script: &str, args: &[String]) -> Result<(), String> {
        let mut slot = 0;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let n = i + 1;
            if a.starts_with('-') {
                let Some(f) = self.flags.iter().find(|f| f.name == *a) else {
                    return Err(format!(
                        "argument {n} `{a}` is not a flag {script} declares"
                    ));
                };
                if let Some((m, re, _)) = &f.value {
                    let Some(v) = args.get(i + 1) else {
                        return Err(format!("{a} needs a value ({m})"));
                    };
                    if v.starts_with('-') || !re.is_match(v) {
                        return Err(format!(
                            "argument {} `{v}` is not a valid {m} for {a}",
                            n + 1
                        ));
                    }
                    i += 1;
                }
            } else {
                let Some(p) = self.positionals.get(slot) else {
                    return Err(format!(
                        "argument {n} `{a}`: {script} takes no more arguments"
                    ));
                };
                if !p.pattern.is_match(a) {
                    return Err(format!("argument {n} `{a}` is not a valid {}", p.metavar));
                }
                if p.arity != Arity::Many {
                    slot += 1;
                }
            }
            i += 1;
        }
        if let Some(p) = self.positionals[slot.min(self.positionals.len())..]
            .iter()
            .find(|p| p.arity == Arity::One)
        {
            return Err(format!("{} is missing", p.metavar));
        }
        Ok(())
    }
}

/// Reads a script's schema from its header.
pub fn schema_of(path: &Path) -> Result<Option<Schema>, String> {
    let mut head = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(HEADER_BYTES).read_to_end(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Schema::parse(&String::from_utf8_lossy(&head))
}

fn executable_names(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.metadata()
                        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                        .unwrap_or(false)
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    !n.starts_with('.')
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The scripts of `dir` the model may run: executable, with a valid schema; sorted.
pub fn curated(dir: &Path) -> Vec<Script> {
    executable_names(dir)
        .into_iter()
        .filter_map(|name| {
            let path = dir.join(&name);
            match schema_of(&path) {
                Ok(Some(schema)) => Some(Script { name, path, schema }),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!("{}: not offered to the investigator: {e}", path.display());
                    None
                }
            }
        })
        .collect()
}

/// The curated scripts of the investigator, when it may run any.
pub fn offered(config: &Config) -> Vec<Script> {
    match (&config.llm.scripts_dir, config.llm.allow_scripts) {
        (Some(dir), true) => curated(dir),
        _ => Vec::new(),
    }
}

/// The configured checks that run the script named `script`.
fn checks_of<'a>(config: &'a Config, script: &str) -> Vec<&'a crate::config::CheckConfig> {
    config
        .metrics
        .checks
        .iter()
        .filter(|c| c.script.file_name().is_some_and(|n| n == script))
        .collect()
}

/// A line per offered script: its name, what it accepts, and the checks it can name.
pub fn describe(config: &Config, scripts: &[Script]) -> String {
    let mut s = String::new();
    for sc in scripts {
        s.push_str(&format!("- {} {}", sc.name, sc.schema.usage()));
        if sc.schema.check {
            let names: Vec<&str> = checks_of(config, &sc.name)
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            if names.is_empty() {
                s.push_str(" (no check of it is configured)");
            } else {
                s.push_str(&format!(" (CHECK: {})", names.join(", ")));
            }
        }
        s.push('\n');
    }
    s
}

/// Validates a call of `name` with `args` from the model. Nothing runs here; the error
/// is the message the model gets back.
pub fn prepare(config: &Config, name: &str, args: &[String]) -> Result<Call, String> {
    if !config.llm.allow_scripts || config.llm.scripts_dir.is_none() {
        return Err("scripts are not allowed on this host".into());
    }
    let scripts = offered(config);
    let Some(script) = scripts.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "no script named {name:?}; available: {}",
            names.join(", ")
        ));
    };
    let refuse = |why: String| {
        Err(format!(
            "refused, nothing was run: {why}; {name} accepts {}",
            script.schema.usage()
        ))
    };
    if args.len() > MAX_ARGS {
        return refuse(format!("at most {MAX_ARGS} arguments"));
    }
    if let Some(a) = args
        .iter()
        .find(|a| a.len() > MAX_ARG_LEN || a.chars().any(char::is_control))
    {
        let shown: String = a.chars().take(40).collect();
        return refuse(format!(
            "argument {shown:?} is longer than {MAX_ARG_LEN} bytes or holds control characters"
        ));
    }
    if script.schema.check {
        let checks = checks_of(config, name);
        if let [one] = args {
            if let Some(c) = checks.iter().find(|c| c.name == *one) {
                return Ok(Call {
                    script: name.into(),
                    program: script.path.clone(),
                    args: c.args.clone(),
                    check: Some(c.name.clone()),
                    env: c.env.clone(),
                });
            }
        }
        if script.schema.flags.is_empty() && script.schema.positionals.is_empty() {
            let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
            return refuse(if names.is_empty() {
                "it runs only as a configured [[check]], and none is configured".into()
            } else {
                format!(
                    "give only the name of a configured check ({})",
                    names.join(", ")
                )
            });
        }
    }
    if let Err(e) = script.schema.check_direct(name, args) {
        return refuse(e);
    }
    Ok(Call {
        script: name.into(),
        program: script.path.clone(),
        args: args.to_vec(),
        check: None,
        env: BTreeMap::new(),
    })
}

/// Runs a validated call with a minimal environment (as metric checks get), stdin
/// from /dev/null, its process group killed after `timeout`, each stream capped at
/// `max` bytes. The text is the script's own: the caller redacts and frames it.
pub fn run(call: &Call, now: i64, timeout: Duration, max: u64) -> Result<String, String> {
    let dir = call.program.parent().unwrap_or(Path::new("/"));
    let mut cmd = Command::new(&call.program);
    cmd.args(&call.args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", crate::metrics::script::PATH)
        .env("LC_ALL", "C")
        .env("LOGWARDEN_NOW", now.to_string());
    if let Ok(tz) = std::env::var("TZ") {
        cmd.env("TZ", tz);
    }
    // Where mktemp (and sort, python's tempfile) write: the installed unit points it at a
    // folder of the run's own, the host's /tmp being read-only to the watcher.
    if let Some(tmp) = std::env::var_os("TMPDIR") {
        cmd.env("TMPDIR", tmp);
    }
    if let Some(c) = &call.check {
        cmd.env("LOGWARDEN_CHECK", c);
    }
    cmd.envs(&call.env);
    let o = crate::investigate::exec::run(cmd, timeout, max)
        .map_err(|e| format!("{}: {e}", call.script))?;
    Ok(format!(
        "{} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
        call.script,
        o.status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "a signal".into()),
        o.stdout.trim_end(),
        o.stderr.trim_end()
    ))
}

/// Validates and runs one call: `Err` is a refusal or a failure to run, told to the model.
pub fn call(
    config: &Config,
    name: &str,
    args: &[String],
    now: i64,
    max: u64,
) -> Result<String, String> {
    let call = prepare(config, name, args).inspect_err(|e| {
        tracing::warn!("investigator's call of script {name:?} with {args:?}: {e}");
    })?;
    run(&call, now, config.llm.script_timeout, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(decls: &[&str]) -> Schema {
        let text: String = std::iter::once("#!/bin/sh".to_string())
            .chain(decls.iter().map(|d| format!("# {MARKER} {d}")))
            .chain(std::iter::once("echo hi".to_string()))
            .collect::<Vec<_>>()
            .join("\n");
        Schema::parse(&text).unwrap().unwrap()
    }

    fn ok(s: &Schema, args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        s.check_direct("x.sh", &args)
    }

    #[test]
    fn declarations_after_the_header_are_not_read() {
        let text = "#!/bin/sh\n# about\necho hi\n# logwarden-args: none\n";
        assert!(Schema::parse(text).unwrap().is_none());
        assert!(Schema::parse("#!/bin/sh\n# logwarden-args: none\n")
            .unwrap()
            .is_some());
    }

    #[test]
    fn bad_declarations_are_errors_with_their_line() {
        for (decl, want) in [
            ("bogus", "not a declaration"),
            ("flag user", "not a flag name"),
            ("arg mount /x", "expected `arg METAVAR PATTERN`"),
            ("arg X (", "bad pattern"),
            ("option --db [0-9]+", "expected `option"),
        ] {
            let e = Schema::parse(&format!("#!/bin/sh\n# {MARKER} {decl}\n")).unwrap_err();
            assert!(e.contains("line 2") && e.contains(want), "{decl}: {e}");
        }
        let e = Schema::parse(&format!("# {MARKER} arg* A a\n# {MARKER} arg B b\n")).unwrap_err();
        assert!(e.contains("follow"), "{e}");
        let e = Schema::parse(&format!("# {MARKER} none\n# {MARKER} flag --x\n")).unwrap_err();
        assert!(e.contains("none"), "{e}");
    }

    #[test]
    fn flags_and_options_must_be_declared_and_values_match_in_full() {
        let s = schema(&["flag --user", "option --db N [0-9]{1,2}"]);
        assert!(ok(&s, &[]).is_ok());
        assert!(ok(&s, &["--user", "--db", "3"]).is_ok());
        assert!(ok(&s, &["-H"]).unwrap_err().contains("`-H` is not a flag"));
        assert!(ok(&s, &["--user=1"]).is_err());
        assert!(ok(&s, &["--db", "3; rm"])
            .unwrap_err()
            .contains("not a valid N"));
        assert!(ok(&s, &["--db", "123"]).is_err(), "anchored at the end");
        assert!(
            ok(&s, &["--db", "-1"]).is_err(),
            "a value never starts with -"
        );
        assert!(ok(&s, &["--db"]).unwrap_err().contains("needs a value"));
        assert!(ok(&s, &["user"]).unwrap_err().contains("no more arguments"));
    }

    #[test]
    fn positionals_keep_their_arity() {
        let s = schema(&["arg A [a-z]+", "arg? B [0-9]"]);
        assert!(ok(&s, &["x"]).is_ok());
        assert!(ok(&s, &["x", "1"]).is_ok());
        assert!(ok(&s, &[]).unwrap_err().contains("A is missing"));
        assert!(ok(&s, &["x", "1", "2"]).is_err());
        assert!(ok(&s, &["x", "12"]).is_err());
        assert!(ok(&s, &["xa\n"]).is_err(), "no newline at the end");
        let many = schema(&["arg* NAME [a-z]+"]);
        assert!(ok(&many, &[]).is_ok());
        assert!(ok(&many, &["a", "b", "c"]).is_ok());
        assert!(ok(&many, &["a", "-b"]).is_err());
        assert!(ok(&many, &["a", "$(id)"]).is_err());
    }

    #[test]
    fn none_takes_nothing_and_usage_is_readable() {
        let s = schema(&["none"]);
        assert!(ok(&s, &[]).is_ok());
        assert!(ok(&s, &["x"]).is_err());
        assert_eq!(s.usage(), "(no arguments)");
        assert_eq!(schema(&["check"]).usage(), "CHECK");
        assert_eq!(
            schema(&["flag --user", "check"]).usage(),
            "[--user] | CHECK"
        );
        assert_eq!(schema(&["arg? S [1-5]"]).usage(), "[S] where S = /[1-5]/");
    }

    #[test]
    fn every_shipped_script_declares_a_valid_schema() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        let all = executable_names(&dir);
        assert!(!all.is_empty());
        for name in all {
            let s = schema_of(&dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(s.is_some(), "{name} has no `# {MARKER}` declaration");
        }
    }
}
