//! Error signatures: turning free-text log messages into stable group identities.
//!
//! This module owns:
//! * [`mask`]: masking of the variable parts of a message (numbers, ids, addresses, paths,
//!   quoted strings, times...) with the wildcard `<*>`;
//! * [`drain`]: the online template miner ([`Miner`]) that groups masked messages into
//!   templates with a stable [`GroupId`], and its persistence ([`TemplateRecord`]);
//! * [`Signature`]: the final identity of a kind of problem, a hash of the group and,
//!   when known, the exception type and the logger name;
//! * [`eval`]: the accuracy metrics used by the Loghub benchmark (`benches/loghub.rs`);
//! * [`print_signatures`]: a streaming `message -> signature, template` helper.
//!
//! All hashes are xxh3_64, which is specified and stable across versions and platforms (unlike
//! std's `DefaultHasher`), so signatures stored in the database keep matching after upgrades.

pub mod drain;
pub mod eval;
pub mod mask;

pub use drain::{leaf_of, GroupId, Mined, Miner, TemplateRecord, Templates};
pub use mask::{mask_tokens, WILDCARD};

use std::fmt;
use std::io::{BufRead, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::xxh3_64;

/// Identity of a kind of problem. Displayed and serialised as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signature(pub u64);

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Error of parsing a [`Signature`] from text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSignatureError(String);

impl fmt::Display for ParseSignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid signature {:?}: expected 16 hex digits", self.0)
    }
}

impl std::error::Error for ParseSignatureError {}

impl FromStr for Signature {
    type Err = ParseSignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseSignatureError(s.to_string()));
        }
        u64::from_str_radix(s, 16)
            .map(Signature)
            .map_err(|_| ParseSignatureError(s.to_string()))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A stored template as the current masking makes it: the text masked again (its
/// wildcards stay wildcards). For templates stored by an older masking; a template of the
/// current one may change too (a word after a wildcard that is now a unit), so this is
/// applied once, when the store is upgraded.
pub fn remask_template(template: &str) -> String {
    mask_tokens(template).join(" ")
}

/// The signature of a group, optionally refined by the exception type and the logger name.
///
/// The hashed bytes are a fixed, versioned encoding (tag, group id little-endian, then each
/// optional field as a presence byte, its length and its bytes), so `Some("")` and `None`
/// differ and fields cannot run into each other.
pub fn signature(group: GroupId, exception_type: Option<&str>, logger: Option<&str>) -> Signature {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(b"lwsig1");
    buf.extend_from_slice(&group.0.to_le_bytes());
    for field in [exception_type, logger] {
        match field {
            None => buf.push(0),
            Some(f) => {
                buf.push(1);
                buf.extend_from_slice(&(f.len() as u64).to_le_bytes());
                buf.extend_from_slice(f.as_bytes());
            }
        }
    }
    Signature(xxh3_64(&buf))
}

/// Reads stdin-like input and writes `<signature>\t<template>\n` per record, in input
/// order, with the watcher's signature: when the first non-empty line is a loguru record
/// (`2026-11-22 10:00:00.000 | ERROR    | app.jobs:run:42 - …`), the input is a loguru
/// log and each record counts with its logger and final exception type, as the watcher
/// counts it; otherwise each line (LF or CRLF; bad UTF-8 replaced lossily) is a message.
/// `miner` holds the templates to start from: the watcher's (its state database) gives
/// its very ids; a fresh one gives the ids a new state would. Only one record is held
/// in memory at a time (plus the miner's templates).
pub fn print_signatures(
    mut input: impl BufRead,
    mut out: impl Write,
    mut miner: Miner,
    levels: &std::collections::BTreeMap<String, u32>,
) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut records: Option<crate::source::loguru::RecordAssembler> = None;
    let mut decided = false;
    let mut n = 0u64;
    // as the watcher signs a record (src/pipeline.rs)
    fn emit(
        out: &mut impl Write,
        miner: &mut Miner,
        e: crate::source::Event,
    ) -> std::io::Result<()> {
        let mined = miner.add(&e.message);
        let sig = signature(
            mined.group,
            e.exception_type.as_deref(),
            e.logger.as_deref(),
        );
        writeln!(out, "{sig}\t{}", mined.template)
    }
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let text = String::from_utf8_lossy(&line);
        if !decided && !text.trim().is_empty() {
            decided = true;
            if crate::source::loguru::is_record_start(&text) {
                records = Some(crate::source::loguru::RecordAssembler::new(
                    "stdin", "stdin", levels, 0,
                ));
            }
        }
        match &mut records {
            Some(a) => {
                if let Some(e) = a.push(n, &text) {
                    emit(&mut out, &mut miner, e)?;
                }
            }
            None => {
                let mined = miner.add(&text);
                writeln!(
                    out,
                    "{}\t{}",
                    signature(mined.group, None, None),
                    mined.template
                )?;
            }
        }
    }
    if let Some(e) = records.as_mut().and_then(|a| a.finish()) {
        emit(&mut out, &mut miner, e)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_display_parse_serde() {
        let s = Signature(0x00ab_cdef_0123_4567);
        assert_eq!(s.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<Signature>(), Ok(s));
        assert!("xyz".parse::<Signature>().is_err());
        assert!("+0abcdef01234567".parse::<Signature>().is_err());
        let v =
            serde::de::value::StrDeserializer::<serde::de::value::Error>::new("00abcdef01234567");
        assert_eq!(Signature::deserialize(v).unwrap(), s);
    }

    #[test]
    fn signature_is_stable_and_distinguishes_fields() {
        let g = GroupId(42);
        // Pinned values: must never change across versions (stored in databases).
        assert_eq!(signature(g, None, None).to_string(), "8984385aa779c834");
        assert_ne!(signature(g, None, None), signature(g, Some(""), None));
        assert_ne!(signature(g, Some("a"), None), signature(g, None, Some("a")));
        assert_ne!(
            signature(g, Some("ab"), None),
            signature(g, Some("a"), Some("b"))
        );
        let pinned = signature(g, Some("IOError"), Some("app.db"));
        assert_eq!(pinned.to_string(), "a3cf6d10bddaa83e");
    }

    #[test]
    fn print_signatures_streams() {
        let input = b"open file 12 failed\r\nopen file 13 failed\nbad \xff byte\n" as &[u8];
        let mut out = Vec::new();
        print_signatures(input, &mut out, Miner::new(), &Default::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let (s1, t1) = lines[0].split_once('\t').unwrap();
        let (s2, t2) = lines[1].split_once('\t').unwrap();
        assert_eq!(s1, s2);
        assert_eq!(t1, "open file <*> failed");
        assert_eq!(t2, t1);
        assert!(lines[2].ends_with("\tbad \u{fffd} byte"));
        assert_eq!(s1.len(), 16);
    }
}
