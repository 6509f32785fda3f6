//! Signatures: which error group an event belongs to. (Placeholder until the miner lands.)

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub u64);

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRecord {
    pub group: GroupId,
    pub template: String,
    pub count: u64,
}

pub struct Mined {
    pub group: GroupId,
    pub template: String,
    pub changed: bool,
}

#[derive(Default)]
pub struct Miner {
    groups: std::collections::HashMap<String, (GroupId, u64, bool)>,
}

impl Miner {
    pub fn new() -> Self {
        Miner::default()
    }
    pub fn import(records: Vec<TemplateRecord>) -> Miner {
        let mut m = Miner::new();
        for r in records {
            m.groups.insert(r.template, (r.group, r.count, false));
        }
        m
    }
    pub fn add(&mut self, message: &str) -> Mined {
        let template: Vec<String> = message
            .split_whitespace()
            .map(|t| if t.chars().any(|c| c.is_ascii_digit()) { "<*>".to_string() } else { t.to_string() })
            .collect();
        let template = template.join(" ");
        let e = self.groups.entry(template.clone()).or_insert((
            GroupId(xxhash_rust::xxh3::xxh3_64(template.as_bytes())),
            0,
            true,
        ));
        e.1 += 1;
        let changed = e.1 == 1;
        e.2 = true;
        Mined { group: e.0, template, changed }
    }
    pub fn take_dirty(&mut self) -> Vec<TemplateRecord> {
        let mut out = vec![];
        for (t, (g, c, d)) in self.groups.iter_mut() {
            if *d {
                *d = false;
                out.push(TemplateRecord { group: *g, template: t.clone(), count: *c });
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signature(pub u64);

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Signature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            return Err(format!("`{s}` is not a signature (16 hex digits)"));
        }
        u64::from_str_radix(s, 16).map(Signature).map_err(|_| format!("`{s}` is not a signature (16 hex digits)"))
    }
}

pub fn signature(group: GroupId, exception_type: Option<&str>, logger: Option<&str>) -> Signature {
    let mut buf = Vec::new();
    buf.extend_from_slice(&group.0.to_le_bytes());
    buf.extend_from_slice(exception_type.unwrap_or("").as_bytes());
    buf.push(0x1f);
    buf.extend_from_slice(logger.unwrap_or("").as_bytes());
    Signature(xxhash_rust::xxh3::xxh3_64(&buf))
}

pub fn print_signatures(input: impl std::io::BufRead, mut out: impl std::io::Write) -> std::io::Result<()> {
    let mut miner = Miner::new();
    for line in input.split(b'\n') {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        let m = miner.add(text.trim_end_matches('\r'));
        writeln!(out, "{}\t{}", signature(m.group, None, None), m.template)?;
    }
    out.flush()
}
