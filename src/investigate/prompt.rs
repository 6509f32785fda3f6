//! Prompt templates: markdown files in `prompts_dir` with `{{name}}` placeholders; the
//! copies in the repository's `prompts/` are built in as defaults.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;
use crate::store::{ts, IncidentRow};

/// The built-in templates, by file name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("system.md", include_str!("../../prompts/system.md")),
    ("new-error.md", include_str!("../../prompts/new-error.md")),
];

/// The placeholders each template may use.
pub fn allowed(name: &str) -> &'static [&'static str] {
    match name {
        "new-error.md" => &[
            "host",
            "source",
            "signature",
            "level",
            "exception",
            "template",
            "occurrences",
            "first_seen",
            "last_seen",
            "evidence",
        ],
        _ => &[],
    }
}

/// A prompt ready to send.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

/// Reads a template from the prompts folder, else the built-in copy.
pub fn template(dir: &Path, name: &str) -> Result<String, String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| format!("no template {name}")),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces `{{name}}` placeholders; an unknown one is an error.
pub fn render(name: &str, text: &str, values: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{name}: `{{{{` without a closing `}}}}`"))?;
        let key = after[..end].trim();
        match values.get(key) {
            Some(v) => out.push_str(v),
            None => {
                return Err(format!(
                    "{name}: unknown placeholder `{{{{{key}}}}}` (allowed: {})",
                    allowed(name).join(", ")
                ))
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks that every template in the folder (or built in) renders.
pub fn validate(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, _) in BUILTIN {
        match template(dir, name) {
            Ok(t) => {
                let values: BTreeMap<&str, String> =
                    allowed(name).iter().map(|k| (*k, String::new())).collect();
                if let Err(e) = render(name, &t, &values) {
                    problems.push(e);
                }
            }
            Err(e) => problems.push(e),
        }
    }
    problems
}

/// The prompt for a new-error incident.
pub fn for_incident(config: &Config, i: &IncidentRow) -> Result<Prompt, String> {
    let system = template(&config.prompts_dir, "system.md")?;
    let mut evidence = String::new();
    for s in &i.samples {
        if evidence.len() + s.len() > 32 * 1024 {
            evidence.push_str("\n[… more records not shown]");
            break;
        }
        evidence.push_str(s.trim_end());
        evidence.push_str("\n\n");
    }
    let values: BTreeMap<&str, String> = [
        ("host", i.host.clone()),
        ("source", i.source.clone()),
        ("signature", i.signature.clone()),
        ("level", i.level.clone()),
        (
            "exception",
            i.exception_type.clone().unwrap_or_else(|| "none".into()),
        ),
        ("template", i.template.clone()),
        ("occurrences", i.occurrences.to_string()),
        ("first_seen", ts(i.first_seen)),
        ("last_seen", ts(i.last_seen)),
        ("evidence", evidence.trim_end().to_string()),
    ]
    .into_iter()
    .collect();
    let user = render(
        "new-error.md",
        &template(&config.prompts_dir, "new-error.md")?,
        &values,
    )?;
    Ok(Prompt { system, user })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_rejects_unknown_placeholders() {
        let v: BTreeMap<&str, String> = [("host", "web-1".to_string())].into_iter().collect();
        assert_eq!(
            render("new-error.md", "on {{ host }}!", &v).unwrap(),
            "on web-1!"
        );
        assert!(render("new-error.md", "{{nope}}", &v)
            .unwrap_err()
            .contains("nope"));
        assert!(validate(Path::new("/nonexistent")).is_empty());
    }
}
