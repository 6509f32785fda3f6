//! The README's command table against `logwarden --help`: the same commands, and no flag
//! in the README that the command does not take.

use std::collections::BTreeSet;

use crate::util::*;

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--help")
        .env("COLUMNS", "200")
        .output()
        .expect("logwarden runs");
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names listed under `Commands:` in a help text (without `help`).
fn commands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Whether a help text offers a flag.
fn has_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let next = help[i + flag.len()..].chars().next();
        let before = help[..i].chars().next_back();
        !matches!(next, Some(c) if c.is_alphanumeric() || c == '-')
            && !matches!(before, Some(c) if c.is_alphanumeric() || c == '-')
    })
}

/// Each row of the README's command table: the command line in its first column.
fn readme_rows() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## The command line")
        .nth(1)
        .expect("a command-line section")
        .split("\n\n")
        .nth(1)
        .expect("the table")
        .to_string();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `logwarden "))
        .map(|l| l.split('`').next().unwrap().replace("\\|", "|"))
        .collect()
}

#[test]
fn the_readme_command_table_matches_help() {
    let rows = readme_rows();
    assert!(rows.len() > 10, "{rows:?}");
    let mut tops_in_readme = BTreeSet::new();
    let mut subs_in_readme: std::collections::BTreeMap<String, BTreeSet<String>> =
        Default::default();
    for row in &rows {
        let tokens: Vec<&str> = row.split_whitespace().collect();
        let tops: Vec<&str> = tokens[0].split('|').collect();
        let subs: Vec<Option<&str>> = match tokens.get(1) {
            Some(t) => {
                let bare = t.trim_start_matches('[').trim_end_matches(']');
                if bare.chars().all(|c| c.is_ascii_lowercase() || c == '|') {
                    bare.split('|').map(Some).collect()
                } else {
                    vec![None]
                }
            }
            None => vec![None],
        };
        let flags: Vec<String> = tokens
            .iter()
            .map(|t| t.trim_start_matches('[').trim_end_matches(']'))
            .filter(|t| t.starts_with("--"))
            .map(|t| t.split('=').next().unwrap().to_string())
            .collect();
        for top in &tops {
            tops_in_readme.insert(top.to_string());
            for sub in &subs {
                let mut args = vec![*top];
                if let Some(s) = sub {
                    args.push(s);
                    subs_in_readme
                        .entry(top.to_string())
                        .or_default()
                        .insert(s.to_string());
                }
                let h = help(&args);
                for f in &flags {
                    assert!(
                        has_flag(&h, f),
                        "README row `logwarden {row}` names {f}, which `logwarden {}` does not take:\n{h}",
                        args.join(" ")
                    );
                }
            }
        }
    }
    let tops_in_help = commands(&help(&[]));
    assert_eq!(
        tops_in_readme, tops_in_help,
        "commands of the README vs --help"
    );
    for top in &tops_in_help {
        let subs = commands(&help(&[top]));
        if subs.is_empty() {
            continue;
        }
        assert_eq!(
            subs_in_readme.get(top).cloned().unwrap_or_default(),
            subs,
            "subcommands of `{top}` in the README vs its --help"
        );
    }
}
