//! Configuration, in two stages: [`raw`] is a serde mirror of the TOML file, and
//! [`Config`] is the validated, compiled form the rest of the program uses. Every
//! problem is reported with its key, all of them at once.

pub mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration;
use crate::source::Level;

/// Where the config is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/logwarden/logwarden.toml";
/// The environment variable naming the config file.
pub const ENV_VAR: &str = "LOGWARDEN_CONFIG";

/// Resolves which config file to use: the flag, then the environment, then the default.
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(ENV_VAR) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// One problem in a config file, with the key it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// All the problems found in a config file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} has {} problem{}:",
            self.path.display(),
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            if e.key.is_empty() {
                writeln!(f, "  - {}", e.message)?;
            } else {
                writeln!(f, "  - `{}`: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub incidents_dir: PathBuf,
    pub ignore_file: PathBuf,
    pub prompts_dir: PathBuf,
    pub hostname: String,
    pub renotify_after: Duration,
    pub sources: Vec<SourceConfig>,
    pub investigator: InvestigatorConfig,
    pub ntfy: Option<NtfyConfig>,
    /// issue 8: a node_exporter textfile written after each run, when set.
    pub metrics_textfile: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub path: PathBuf,
    pub from: StartFrom,
    pub min_level: Level,
    /// Extra level names (custom loguru levels) and their numbers.
    pub levels: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A loguru text log in the default format.
    Loguru,
}

/// Where reading starts on the first run over an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Start,
    End,
}

#[derive(Debug, Clone)]
pub enum InvestigatorConfig {
    None,
    ClaudeCli(ClaudeCliConfig),
}

#[derive(Debug, Clone)]
pub struct ClaudeCliConfig {
    pub command: String,
    pub model: String,
    pub timeout: Duration,
    pub max_turns: u32,
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NtfyConfig {
    pub server: String,
    pub topic: String,
    pub token: Option<Secret>,
    pub timeout: Duration,
}

/// Where a secret comes from. The value itself is read only when needed and never printed.
#[derive(Debug, Clone)]
pub enum Secret {
    File(PathBuf),
    Env(String),
}

impl Secret {
    pub fn read(&self) -> Result<String, String> {
        match self {
            Secret::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("cannot read token file {}: {e}", p.display())),
            Secret::Env(name) => std::env::var(name)
                .map(|s| s.trim().to_string())
                .map_err(|_| format!("environment variable {name} is not set")),
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![ConfigError {
                key: String::new(),
                message: format!("cannot read the config file: {e}"),
            }],
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; relative paths are relative to the file's folder.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            path: path.to_path_buf(),
            errors,
        };
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| format!("line {}", line_of(text, s.start)))
                .unwrap_or_default();
            fail(vec![ConfigError {
                key,
                message: e.message().to_string(),
            }])
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let mut v = Validator {
            errors: Vec::new(),
            base,
        };
        let config = v.compile(raw, path);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            Err(fail(v.errors))
        }
    }

    /// The path of the state database.
    pub fn database_path(&self) -> PathBuf {
        self.state_dir.join("logwarden.db")
    }
}

/// Removes `.` and `name/..` from a path without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// The 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Validator {
    errors: Vec<ConfigError>,
    base: PathBuf,
}

impl Validator {
    fn err(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    fn unknown(&mut self, prefix: &str, extra: &BTreeMap<String, toml::Value>, known: &[&str]) {
        for k in extra.keys() {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            self.err(
                key,
                format!("unknown key (expected one of: {})", known.join(", ")),
            );
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            normalize(p)
        } else {
            normalize(&self.base.join(p))
        }
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(s) => match duration::parse(s) {
                Ok(d) => d,
                Err(e) => {
                    self.err(
                        key,
                        format!("{e}; expected a duration like \"90s\", \"15m\", \"7d\""),
                    );
                    default
                }
            },
        }
    }

    fn compile(&mut self, raw: raw::RawConfig, path: &Path) -> Config {
        self.unknown("", &raw.extra, raw::RawConfig::KEYS);
        let state_dir = self.path(raw.state_dir.as_deref().unwrap_or("/var/lib/logwarden"));
        let incidents_dir = match raw.incidents_dir.as_deref() {
            Some(p) => self.path(p),
            None => state_dir.join("incidents"),
        };
        let ignore_file = self.path(
            raw.ignore_file
                .as_deref()
                .unwrap_or("/etc/logwarden/ignore.toml"),
        );
        let prompts_dir = match raw.prompts_dir.as_deref() {
            Some(p) => self.path(p),
            None => default_prompts_dir(),
        };
        let hostname = match raw.hostname {
            Some(h) if h.trim().is_empty() => {
                self.err(
                    "hostname",
                    "must not be empty (leave it out to use the system's)",
                );
                String::new()
            }
            Some(h) => h,
            None => system_hostname(),
        };
        let renotify_after = self.duration(
            "renotify_after",
            raw.renotify_after.as_deref(),
            Duration::from_secs(7 * 86_400),
        );

        let mut sources = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        if raw.source.is_empty() {
            self.err(
                "source",
                "no [[source]] is configured: add at least one log to watch",
            );
        }
        for (i, s) in raw.source.into_iter().enumerate() {
            let prefix = format!("source[{i}]");
            if let Some(src) = self.source(&prefix, s) {
                if !names.insert(src.name.clone()) {
                    self.err(
                        format!("{prefix}.name"),
                        format!(
                            "`{}` is used by two sources; names must be unique",
                            src.name
                        ),
                    );
                }
                sources.push(src);
            }
        }

        let investigator = self.investigator(raw.investigator.unwrap_or_default());
        let ntfy = raw.ntfy.and_then(|n| self.ntfy(n));
        // issue 8: self-monitoring
        let metrics_textfile = match raw.metrics_textfile.as_deref() {
            None => None,
            Some(p) if p.ends_with(".prom") => Some(self.path(p)),
            Some(p) => {
                self.err(
                    "metrics_textfile",
                    format!("`{p}` must end in .prom (node_exporter's textfile collector reads only those)"),
                );
                None
            }
        };
        Config {
            path: path.to_path_buf(),
            state_dir,
            incidents_dir,
            ignore_file,
            prompts_dir,
            hostname,
            renotify_after,
            sources,
            investigator,
            ntfy,
            metrics_textfile,
        }
    }

    fn source(&mut self, prefix: &str, s: raw::RawSource) -> Option<SourceConfig> {
        self.unknown(prefix, &s.extra, raw::RawSource::KEYS);
        let name = match s.name {
            Some(n)
                if !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                n
            }
            Some(n) => {
                self.err(
                    format!("{prefix}.name"),
                    format!("`{n}` is not a valid name (letters, digits, `-`, `_`, `.`)"),
                );
                n
            }
            None => {
                self.err(
                    format!("{prefix}.name"),
                    "missing: every source needs a name",
                );
                String::new()
            }
        };
        let kind = match s.kind.as_deref() {
            Some("loguru") | None => SourceKind::Loguru,
            Some(other) => {
                self.err(
                    format!("{prefix}.kind"),
                    format!("unknown kind `{other}` (expected: loguru)"),
                );
                SourceKind::Loguru
            }
        };
        let path = match s.path {
            Some(p) if !p.is_empty() => self.path(&p),
            _ => {
                self.err(format!("{prefix}.path"), "missing: the log file to watch");
                PathBuf::new()
            }
        };
        let from = match s.from.as_deref() {
            None | Some("end") => StartFrom::End,
            Some("start") => StartFrom::Start,
            Some(other) => {
                self.err(
                    format!("{prefix}.from"),
                    format!("`{other}` is not valid (expected \"start\" or \"end\")"),
                );
                StartFrom::End
            }
        };
        let mut levels = BTreeMap::new();
        for (k, v) in s.levels {
            if !(0..=1000).contains(&v) {
                self.err(
                    format!("{prefix}.levels.{k}"),
                    format!("{v} is out of range (expected a level number from 0 to 1000)"),
                );
            } else {
                levels.insert(k.to_ascii_uppercase(), v as u32);
            }
        }
        let min_level = match s.min_level.as_deref() {
            None => Level::named("WARNING", &levels),
            Some(l) => match Level::parse_config(l, &levels) {
                Some(level) => level,
                None => {
                    self.err(
                        format!("{prefix}.min_level"),
                        format!("unknown level `{l}` (expected a level name such as WARNING or ERROR, a custom level from `levels`, or a number)"),
                    );
                    Level::named("WARNING", &levels)
                }
            },
        };
        Some(SourceConfig {
            name,
            kind,
            path,
            from,
            min_level,
            levels,
        })
    }

    fn investigator(&mut self, i: raw::RawInvestigator) -> InvestigatorConfig {
        self.unknown("investigator", &i.extra, raw::RawInvestigator::KEYS);
        let timeout = self.duration(
            "investigator.timeout",
            i.timeout.as_deref(),
            Duration::from_secs(300),
        );
        let max_turns = match i.max_turns {
            None => 8,
            Some(n) if (1..=100).contains(&n) => n as u32,
            Some(n) => {
                self.err(
                    "investigator.max_turns",
                    format!("{n} is out of range (expected 1 to 100)"),
                );
                8
            }
        };
        match i.kind.as_deref() {
            None | Some("none") => InvestigatorConfig::None,
            Some("claude-cli") => InvestigatorConfig::ClaudeCli(ClaudeCliConfig {
                command: i.command.unwrap_or_else(|| "claude".into()),
                model: i.model.unwrap_or_else(|| "sonnet".into()),
                timeout,
                max_turns,
                extra_args: i.extra_args,
            }),
            Some(other) => {
                self.err(
                    "investigator.kind",
                    format!("unknown investigator `{other}` (expected \"none\" or \"claude-cli\")"),
                );
                InvestigatorConfig::None
            }
        }
    }

    fn ntfy(&mut self, n: raw::RawNtfy) -> Option<NtfyConfig> {
        self.unknown("ntfy", &n.extra, raw::RawNtfy::KEYS);
        let server = match n.server {
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => {
                s.trim_end_matches('/').to_string()
            }
            Some(s) => {
                self.err("ntfy.server", format!("`{s}` is not an http(s) URL"));
                String::new()
            }
            None => "https://ntfy.sh".into(),
        };
        let topic = match n.topic {
            Some(t)
                if !t.is_empty()
                    && t.len() <= 64
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                t
            }
            Some(t) => {
                self.err(
                    "ntfy.topic",
                    format!("`{t}` is not a valid topic (1 to 64 letters, digits, `-` or `_`)"),
                );
                String::new()
            }
            None => {
                self.err("ntfy.topic", "missing: the topic to publish to");
                String::new()
            }
        };
        if n.token.is_some() {
            self.err(
                "ntfy.token",
                "a token must not be written in the config; use token_file or token_env",
            );
        }
        let token = match (n.token_file, n.token_env) {
            (Some(_), Some(_)) => {
                self.err("ntfy.token_file", "give token_file or token_env, not both");
                None
            }
            (Some(f), None) => Some(Secret::File(self.path(&f))),
            (None, Some(e)) => Some(Secret::Env(e)),
            (None, None) => None,
        };
        let timeout = self.duration(
            "ntfy.timeout",
            n.timeout.as_deref(),
            Duration::from_secs(10),
        );
        Some(NtfyConfig {
            server,
            topic,
            token,
            timeout,
        })
    }
}

/// The prompts shipped with logwarden: next to the binary's install, else the source tree.
fn default_prompts_dir() -> PathBuf {
    let installed = PathBuf::from("/usr/share/logwarden/prompts");
    if installed.is_dir() {
        installed
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts")
    }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl fmt::Display for Config {
    /// The effective config, as TOML-like text (secrets shown by where they come from).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# effective configuration from {}", self.path.display())?;
        writeln!(f, "state_dir = {:?}", self.state_dir.display().to_string())?;
        writeln!(
            f,
            "incidents_dir = {:?}",
            self.incidents_dir.display().to_string()
        )?;
        writeln!(
            f,
            "ignore_file = {:?}",
            self.ignore_file.display().to_string()
        )?;
        writeln!(
            f,
            "prompts_dir = {:?}",
            self.prompts_dir.display().to_string()
        )?;
        writeln!(f, "hostname = {:?}", self.hostname)?;
        writeln!(
            f,
            "renotify_after = {:?}",
            duration::format(self.renotify_after)
        )?;
        if let Some(p) = &self.metrics_textfile {
            writeln!(f, "metrics_textfile = {:?}", p.display().to_string())?;
        }
        for s in &self.sources {
            writeln!(f, "\n[[source]]")?;
            writeln!(f, "name = {:?}", s.name)?;
            writeln!(f, "kind = \"loguru\"")?;
            writeln!(f, "path = {:?}", s.path.display().to_string())?;
            let from = match s.from {
                StartFrom::Start => "start",
                StartFrom::End => "end",
            };
            writeln!(f, "from = {from:?}")?;
            writeln!(f, "min_level = {:?}", s.min_level.name)?;
            if !s.levels.is_empty() {
                let items: Vec<String> =
                    s.levels.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                writeln!(f, "levels = {{ {} }}", items.join(", "))?;
            }
        }
        writeln!(f, "\n[investigator]")?;
        match &self.investigator {
            InvestigatorConfig::None => writeln!(f, "kind = \"none\"")?,
            InvestigatorConfig::ClaudeCli(c) => {
                writeln!(f, "kind = \"claude-cli\"")?;
                writeln!(f, "command = {:?}", c.command)?;
                writeln!(f, "model = {:?}", c.model)?;
                writeln!(f, "timeout = {:?}", duration::format(c.timeout))?;
                writeln!(f, "max_turns = {}", c.max_turns)?;
                if !c.extra_args.is_empty() {
                    writeln!(f, "extra_args = {:?}", c.extra_args)?;
                }
            }
        }
        match &self.ntfy {
            None => writeln!(
                f,
                "\n# [ntfy] not configured: notifications are only recorded"
            )?,
            Some(n) => {
                writeln!(f, "\n[ntfy]")?;
                writeln!(f, "server = {:?}", n.server)?;
                writeln!(f, "topic = {:?}", n.topic)?;
                match &n.token {
                    Some(Secret::File(p)) => {
                        writeln!(f, "token_file = {:?}", p.display().to_string())?
                    }
                    Some(Secret::Env(e)) => writeln!(f, "token_env = {e:?}")?,
                    None => {}
                }
                writeln!(f, "timeout = {:?}", duration::format(n.timeout))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, Path::new("/etc/logwarden/logwarden.toml"))
    }

    #[test]
    fn minimal_config_fills_defaults() {
        let c = parse("[[source]]\nname = \"app\"\npath = \"logs/app.log\"\n").unwrap();
        assert_eq!(
            c.sources[0].path,
            PathBuf::from("/etc/logwarden/logs/app.log")
        );
        assert_eq!(c.sources[0].from, StartFrom::End);
        assert_eq!(c.sources[0].min_level.no, 30);
        assert_eq!(c.renotify_after, Duration::from_secs(7 * 86400));
        assert!(matches!(c.investigator, InvestigatorConfig::None));
    }

    #[test]
    fn reports_every_error_with_its_key() {
        let err = parse(
            r#"
statedir = "x"
renotify_after = "soon"
[[source]]
name = "app"
from = "middle"
min_level = "LOUD"
[investigator]
kind = "gpt"
[ntfy]
topic = "bad topic!"
token = "tk_secret"
"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "statedir",
            "renotify_after",
            "source[0].path",
            "source[0].from",
            "source[0].min_level",
            "investigator.kind",
            "ntfy.topic",
            "ntfy.token",
        ] {
            assert!(keys.contains(&k), "missing {k} in {keys:?}");
        }
        assert!(!err.to_string().contains("tk_secret"));
    }

    #[test]
    fn custom_levels_are_usable_as_min_level() {
        let c = parse("[[source]]\nname = \"a\"\npath = \"/a\"\nlevels = { NOTICE = 35 }\nmin_level = \"NOTICE\"\n").unwrap();
        assert_eq!(c.sources[0].min_level.no, 35);
    }
}
