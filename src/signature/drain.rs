//! Online template miner of the Drain family (He et al., "Drain: An Online Log Parsing
//! Approach with Fixed Depth Tree", ICWS 2017), with stricter merging rules.
//!
//! Every message is masked ([`crate::signature::mask`]), then routed through a fixed-depth
//! tree keyed on the first [`PATH_TOKENS`] tokens that are plain words (tokens that are or
//! contain a wildcard or a digit, dotted names and words in a value slot are skipped when
//! choosing the path). The leaf holds the groups whose template has that path; the message
//! joins the most similar one of its token count (Drain's similarity: share of positions
//! holding the same constant, at least [`SIMILARITY`]; ties go to the more general template)
//! and the template is generalised (differing tokens become `<*>`). Failing that, it may
//! join a group of another token count when the two differ in one span of values only
//! (`Copied a.B to x` and `Copied a.B c.D to x`): the span becomes one `<*>` in the
//! template, which then stands for one or more tokens. Otherwise the message starts a new
//! group.
//!
//! Differences from plain Drain:
//! * **Wording is not a value.** Two different tokens that both carry letters, where neither
//!   is a dotted name or path and they are not `key=value` with the same key, are different
//!   wording (`VM Started` / `VM Stopped`, `get next element` / `open package`): they do not
//!   merge. Exceptions: a word right after a value introducer (`user bob`, `for root`), and a
//!   position at which [`MAX_WORDING_VARIANTS`] groups of the leaf already differ only by
//!   their words (a name that keeps changing is a value; this also bounds memory). The same
//!   holds for a span of words between the same wording on both sides (an unquoted name
//!   of any number of words), and the value of a `key: value` pair in a message of several
//!   pairs merges at once, as a `key=value` value does.
//! * **Keys are structure.** `key=value` tokens and JSON pairs (`"code":`) keep their key
//!   when their values differ (`code=<*>`), a key on one side only is different wording,
//!   and a merge across token counts takes a key's value into its span, never the key.
//! * Values that masking leaves alone still merge: identifiers with digits, dotted names
//!   (classes, hosts, process names), `key=value` values, words in value slots.
//! * A group's template never generalises one of its own path tokens, so the leaf of a group
//!   is always a function of its current template. Merge decisions depend only on the
//!   templates of the leaf and the message, so [`Miner::import`] rebuilds exactly the same
//!   state from the stored templates alone.
//!
//! Memory is bounded by the templates (their tokens and counters), never by the number of
//! lines seen.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, Xxh3};

use crate::signature::mask::{self, mask_into, WILDCARD};

/// Number of leading plain-word tokens that key the tree below the token count. A path
/// word never becomes a value, so a value there (`Tenant acme exceeded quota`) makes a
/// group per value; one path word was tried, and made leaves of many groups that every
/// message is compared with (a third of the reading speed on a log of many error kinds),
/// and let a second word that names the event (`Timeout session` / `Timeout invoice`)
/// become a value after 8 of them.
pub const PATH_TOKENS: usize = 2;

/// Minimum similarity for a message to join a group.
pub const SIMILARITY: f64 = 0.5;

/// Number of groups of a leaf that differ only in the words at one position after which that
/// position is taken as a variable. Plain words are wording by default (`VM Started` and
/// `VM Stopped` are different events), but a position that keeps taking new words is a value
/// (a user or process name) and must not make one group per value forever.
pub const MAX_WORDING_VARIANTS: usize = 8;

/// Identity of a group of messages.
///
/// **Stable:** it is the xxh3_64 of the group's template at the group's *birth* (the first
/// message's masked tokens joined by single spaces) and never changes afterwards, even when
/// the template is generalised later. Ignore rules and open incidents keyed on it therefore
/// keep matching. It survives [`Miner::export`] / [`Miner::import`]. In the very unlikely case
/// that a birth template's hash is already taken by another group, the hash is re-seeded
/// until it is unique within the miner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Result of [`Miner::add`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mined {
    /// The group the message joined (stable, see [`GroupId`]).
    pub group: GroupId,
    /// The group's current template: tokens joined by single spaces, wildcards as `<*>`.
    pub template: String,
    /// True when the group was created or its template generalised by this message.
    pub changed: bool,
}

/// A group as stored between runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub group: GroupId,
    pub template: String,
    /// Number of messages the group has seen (over all runs).
    pub count: u64,
}

#[derive(Debug)]
struct Cluster {
    id: GroupId,
    tokens: Vec<Box<str>>,
    template: String,
    count: u64,
    dirty: bool,
    wildcards: usize,
}

impl Cluster {
    fn record(&self) -> TemplateRecord {
        TemplateRecord {
            group: self.id,
            template: self.template.clone(),
            count: self.count,
        }
    }
}

/// The online template miner. One configuration for every log.
#[derive(Debug)]
pub struct Miner {
    clusters: Vec<Cluster>,
    leaves: HashMap<u64, Leaf>,
    ids: HashSet<u64>,
    dirty: Vec<u32>,
    /// Set for a miner whose groups stay in a [`Templates`] store until a message needs
    /// their leaf: the leaves fetched so far.
    fetched: Option<HashSet<u64>>,
    /// Minimum similarity to join a group: [`SIMILARITY`] except in the benchmark, which
    /// tries others to choose one on some datasets and score it on another.
    similarity: f64,
}

impl Default for Miner {
    fn default() -> Miner {
        Miner {
            clusters: Vec::new(),
            leaves: HashMap::new(),
            ids: HashSet::new(),
            dirty: Vec::new(),
            fetched: None,
            similarity: SIMILARITY,
        }
    }
}

/// The groups of a leaf: all of them, and by token count (the groups a message meets
/// first), each list in creation order.
#[derive(Debug, Default)]
struct Leaf {
    all: Vec<u32>,
    by_len: Vec<(usize, Vec<u32>)>,
}

impl Leaf {
    fn of_len(&self, len: usize) -> &[u32] {
        self.by_len
            .iter()
            .find(|(l, _)| *l == len)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    fn add(&mut self, ci: u32, len: usize) {
        match self.by_len.iter_mut().find(|(l, _)| *l == len) {
            // Kept in creation order (cluster indices grow with it), so that ties go to
            // the same group as in a miner rebuilt by import.
            Some((_, v)) => {
                let at = v.partition_point(|&x| x < ci);
                v.insert(at, ci);
            }
            None => self.by_len.push((len, vec![ci])),
        }
    }

    fn relen(&mut self, ci: u32, from: usize, to: usize) {
        if let Some((_, v)) = self.by_len.iter_mut().find(|(l, _)| *l == from) {
            v.retain(|&x| x != ci);
        }
        self.add(ci, to);
    }
}

/// Where a lazily loaded miner finds the groups it has not fetched yet: a run that
/// mines a few messages then touches a few leaves, however long the history.
pub trait Templates {
    /// The groups of a leaf (see [`leaf_of`]), in creation order.
    fn leaf(&mut self, key: u64) -> Result<Vec<TemplateRecord>, String>;
    /// Whether a group id is taken by a group not fetched.
    fn id_taken(&mut self, id: GroupId) -> Result<bool, String>;
}

/// No store: every group lives in the miner.
struct InMemory;

impl Templates for InMemory {
    fn leaf(&mut self, _key: u64) -> Result<Vec<TemplateRecord>, String> {
        Ok(Vec::new())
    }
    fn id_taken(&mut self, _id: GroupId) -> Result<bool, String> {
        Ok(false)
    }
}

/// The leaf a stored template belongs to. A group's leaf never changes (its path tokens
/// are never generalised), so it is stored with the template once.
pub fn leaf_of(template: &str) -> u64 {
    let tokens: Vec<&str> = template.split_whitespace().collect();
    leaf_key(&tokens)
}

/// Words that introduce a value in running text (`user bob`, `for root`): a plain word right
/// after one of them may be a variable.
const VALUE_INTRODUCERS: &[&str] = &[
    "user", "users", "username", "for", "account", "login", "host", "hostname", "domain",
];

/// The letters of a plain word: the token without surrounding punctuation, if what remains is
/// made of ASCII letters (and inner `-`, `_`, `'`) only.
fn word_core(t: &str) -> Option<&str> {
    let core = t
        .trim_start_matches(|c: char| "([{\"'`".contains(c))
        .trim_end_matches(|c: char| ")]}\"'`,;.!?:".contains(c));
    if crate::signature::mask::is_short_name(core) {
        return Some(core);
    }
    let b = core.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphabetic() || !b[b.len() - 1].is_ascii_alphabetic() {
        return None;
    }
    if b.iter()
        .all(|&c| c.is_ascii_alphabetic() || c == b'-' || c == b'_' || c == b'\'')
    {
        Some(core)
    } else {
        None
    }
}

fn is_word(t: &str) -> bool {
    word_core(t).is_some()
}

fn introduces_value(t: &str) -> bool {
    word_core(t).is_some_and(|w| VALUE_INTRODUCERS.iter().any(|v| v.eq_ignore_ascii_case(w)))
}

/// Is position `i` a value slot (a word right after a value introducer)?
fn value_slot<S: AsRef<str>>(tokens: &[S], i: usize) -> bool {
    i > 0 && introduces_value(tokens[i - 1].as_ref())
}

/// Is position `i` the value of a `key: value` pair, in a message of several pairs
/// (`user: bob, order: ab12cd`)? A lower-case name and a colon, then one token that ends
/// the message or a clause (`,`, `;`) or comes before the next key. Like `key=value`, it is
/// the value that varies there, not the wording. One label alone is not taken for a pair:
/// `failed: OutOfMemory` and `failed: Timeout` are two errors.
fn key_colon_slot<S: AsRef<str>>(tokens: &[S], i: usize) -> bool {
    fn is_key(t: &str) -> bool {
        t.strip_suffix(':').is_some_and(|name| {
            name.as_bytes()
                .first()
                .is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.".contains(&c))
        })
    }
    if i == 0 || !is_key(tokens[i - 1].as_ref()) {
        return false;
    }
    let t = tokens[i].as_ref();
    let one_token = match tokens.get(i + 1) {
        None => true,
        Some(next) => t.ends_with([',', ';']) || is_key(next.as_ref()),
    };
    one_token
        && tokens
            .iter()
            .enumerate()
            .any(|(j, k)| j + 1 != i && j + 1 < tokens.len() && is_key(k.as_ref()))
}

/// Can position `i` be used to route a message through the tree? Plain words only, and not
/// in a value slot.
fn is_path_token<S: AsRef<str>>(tokens: &[S], i: usize) -> bool {
    is_word(tokens[i].as_ref()) && !value_slot(tokens, i)
}

/// Indices of the path tokens of a token sequence.
fn path_positions<S: AsRef<str>>(tokens: &[S]) -> impl Iterator<Item = usize> + '_ {
    (0..tokens.len())
        .filter(|&i| is_path_token(tokens, i))
        .take(PATH_TOKENS)
}

/// Key of the leaf for a token sequence: its path tokens. Not the token count: a group
/// may take messages of another length (see [`span_merge`]).
fn leaf_key<S: AsRef<str>>(tokens: &[S]) -> u64 {
    let mut h = Xxh3::new();
    h.update(b"paths");
    for i in path_positions(tokens) {
        h.update(tokens[i].as_ref().as_bytes());
        h.update(&[0]);
    }
    h.digest()
}

fn join<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut s = String::with_capacity(tokens.iter().map(|t| t.as_ref().len() + 1).sum());
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(t.as_ref());
    }
    s
}

impl Miner {
    pub fn new() -> Self {
        Self::default()
    }

    /// A miner with another similarity threshold than [`SIMILARITY`] (for the benchmark's
    /// leave-one-out choice of the setting; logwarden itself always uses the default).
    pub fn with_similarity(similarity: f64) -> Self {
        Miner {
            similarity,
            ..Self::default()
        }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// Mine one message (one log line's message part, without timestamp/level prefix).
    pub fn add(&mut self, message: &str) -> Mined {
        match self.add_from(message, &mut InMemory) {
            Ok(m) => m,
            Err(e) => unreachable!("no store to fail: {e}"),
        }
    }

    /// A miner whose groups are fetched from `store` by leaf when a message needs them
    /// (pass the store to [`Miner::add_from`]): the same groups, templates and ids as
    /// [`Miner::import`] of everything.
    pub fn lazy() -> Miner {
        Miner {
            fetched: Some(HashSet::new()),
            ..Miner::default()
        }
    }

    /// [`Miner::add`], fetching the message's leaf from `store` first if needed. An
    /// error of the store leaves the miner as it was.
    pub fn add_from(&mut self, message: &str, store: &mut dyn Templates) -> Result<Mined, String> {
        let message = crate::redact::private_keys(message);
        let mut tokens: Vec<Cow<'_, str>> = Vec::with_capacity(16);
        mask_into(&message, &mut tokens);
        let key = leaf_key(&tokens);
        if self.fetched.as_ref().is_some_and(|f| !f.contains(&key)) {
            let records = store.leaf(key)?;
            if let Some(f) = &mut self.fetched {
                f.insert(key);
            }
            {
                for r in records {
                    if !self.ids.contains(&r.group.0) {
                        let tokens: Vec<Box<str>> =
                            r.template.split_whitespace().map(Box::from).collect();
                        self.push_cluster(r.group, tokens, r.count, key);
                    }
                }
            }
        }
        let best = self
            .leaves
            .get(&key)
            .and_then(|leaf| self.best_match(leaf, &tokens));
        match best {
            Some((ci, span)) => {
                let c = &mut self.clusters[ci as usize];
                let mut changed = false;
                let n = c.tokens.len();
                if let Some(Span {
                    prefix,
                    suffix,
                    key,
                }) = span
                {
                    // The differing middle becomes one wildcard (after its key, if any).
                    let mut merged: Vec<Box<str>> = Vec::with_capacity(prefix + 1 + suffix);
                    merged.extend(c.tokens[..prefix].iter().cloned());
                    let m = tokens.len();
                    merged.push(
                        span_wildcard(
                            &c.tokens[prefix..n - suffix],
                            &tokens[prefix..m - suffix],
                            key,
                        )
                        .into(),
                    );
                    merged.extend(c.tokens[n - suffix..].iter().cloned());
                    if merged != c.tokens {
                        c.wildcards = merged.iter().filter(|t| &***t == WILDCARD).count();
                        c.tokens = merged;
                        changed = true;
                    }
                } else {
                    for (t, m) in c.tokens.iter_mut().zip(tokens.iter()) {
                        if &**t != m.as_ref() && &**t != WILDCARD {
                            let g = generalise(t, m);
                            if *g != **t {
                                c.wildcards += usize::from(g == WILDCARD);
                                *t = g.into();
                                changed = true;
                            }
                        }
                    }
                }
                if changed {
                    c.template = join(&c.tokens);
                }
                if c.tokens.len() != n {
                    let len = c.tokens.len();
                    if let Some(leaf) = self.leaves.get_mut(&key) {
                        leaf.relen(ci, n, len);
                    }
                }
                let c = &mut self.clusters[ci as usize];
                c.count += 1;
                if !c.dirty {
                    c.dirty = true;
                    self.dirty.push(ci);
                }
                Ok(Mined {
                    group: c.id,
                    template: c.template.clone(),
                    changed,
                })
            }
            None => {
                let tokens: Vec<Box<str>> = tokens.iter().map(|t| Box::from(t.as_ref())).collect();
                let template = join(&tokens);
                let id = self.fresh_id(&template, store)?;
                let ci = self.push_cluster(id, tokens, 1, key);
                self.clusters[ci as usize].dirty = true;
                self.dirty.push(ci);
                Ok(Mined {
                    group: id,
                    template,
                    changed: true,
                })
            }
        }
    }

    fn fresh_id(&mut self, template: &str, store: &mut dyn Templates) -> Result<GroupId, String> {
        let mut h = xxh3_64(template.as_bytes());
        let mut seed = 1;
        while self.ids.contains(&h) || (self.fetched.is_some() && store.id_taken(GroupId(h))?) {
            h = xxh3_64_with_seed(template.as_bytes(), seed);
            seed += 1;
        }
        Ok(GroupId(h))
    }

    fn push_cluster(&mut self, id: GroupId, tokens: Vec<Box<str>>, count: u64, key: u64) -> u32 {
        let ci = self.clusters.len() as u32;
        self.ids.insert(id.0);
        let wildcards = tokens.iter().filter(|t| &***t == WILDCARD).count();
        let template = join(&tokens);
        self.clusters.push(Cluster {
            id,
            tokens,
            template,
            count,
            dirty: false,
            wildcards,
        });
        let len = self.clusters[ci as usize].tokens.len();
        let leaf = self.leaves.entry(key).or_default();
        leaf.all.push(ci);
        leaf.add(ci, len);
        ci
    }

    /// The most similar group of the leaf, if similar enough and compatible: first among
    /// the groups of the message's token count, else among the others, that the message
    /// joins through a [`Span`].
    fn best_match(&self, leaf: &Leaf, msg: &[Cow<'_, str>]) -> Option<(u32, Option<Span>)> {
        if let Some(ci) = self.best_same_length(leaf.of_len(msg.len()), msg) {
            return Some((ci, None));
        }
        let mut best: Option<(f64, usize, u32, Span)> = None;
        let mut msg_path: Option<Vec<&str>> = None;
        for &ci in &leaf.all {
            let c = &self.clusters[ci as usize];
            if c.tokens.len() == msg.len() {
                continue;
            }
            let Some((sim, span)) = span_merge(&c.tokens, msg, self.similarity) else {
                continue;
            };
            if best
                .as_ref()
                .is_some_and(|&(bs, bw, _, _)| !(sim > bs || (sim == bs && c.wildcards > bw)))
            {
                continue;
            }
            // Same routing words (not merely the same hash of them).
            let mp = msg_path
                .get_or_insert_with(|| path_positions(msg).map(|i| msg[i].as_ref()).collect());
            if !path_positions(&c.tokens)
                .map(|i| &*c.tokens[i])
                .eq(mp.iter().copied())
            {
                continue;
            }
            best = Some((sim, c.wildcards, ci, span));
        }
        if let Some((_, _, ci, span)) = best {
            return Some((ci, Some(span)));
        }
        self.word_span_variant(leaf, msg)
            .map(|(ci, span)| (ci, Some(span)))
    }

    /// The group a message joins when many groups of its leaf differ from it in the words of
    /// one span only, the same span of the message each time (a stranger's name or text
    /// between constant words: `Payout to Ada Lovelace stuck`, `Payout to Ken stuck`): as
    /// for one position (see [`MAX_WORDING_VARIANTS`]), a span that keeps taking new words
    /// is a value, and after that many groups it becomes one wildcard. Before that, wording
    /// is wording, so two messages that differ in a few words stay apart. The span never
    /// holds the template's routing words nor a key, and has constants on both sides.
    fn word_span_variant(&self, leaf: &Leaf, msg: &[Cow<'_, str>]) -> Option<(u32, Span)> {
        let msg_path: Vec<&str> = path_positions(msg).map(|i| msg[i].as_ref()).collect();
        // By the message's span: (start, end, number of groups, best of them).
        let mut variants: Vec<(usize, usize, usize, Candidate)> = Vec::new();
        for &ci in &leaf.all {
            let c = &self.clusters[ci as usize];
            let Some((sim, span)) = word_span(&c.tokens, msg, self.similarity) else {
                continue;
            };
            let n = c.tokens.len();
            let path: Vec<&str> = path_positions(&c.tokens).map(|i| &*c.tokens[i]).collect();
            if path != msg_path {
                continue;
            }
            let wild = span_wildcard(
                &c.tokens[span.prefix..n - span.suffix],
                &msg[span.prefix..msg.len() - span.suffix],
                span.key,
            );
            let merged: Vec<&str> = c.tokens[..span.prefix]
                .iter()
                .map(|t| &**t)
                .chain([wild.as_str()])
                .chain(c.tokens[n - span.suffix..].iter().map(|t| &**t))
                .collect();
            if !path_positions(&merged)
                .map(|i| merged[i])
                .eq(path.iter().copied())
            {
                continue;
            }
            let this = (sim, c.wildcards, ci, span);
            let at = (span.prefix, msg.len() - span.suffix);
            match variants.iter_mut().find(|v| (v.0, v.1) == at) {
                Some(v) => {
                    v.2 += 1;
                    if sim > v.3 .0 || (sim == v.3 .0 && c.wildcards > v.3 .1) {
                        v.3 = this;
                    }
                }
                None => variants.push((at.0, at.1, 1, this)),
            }
        }
        variants
            .into_iter()
            .filter(|v| v.2 >= MAX_WORDING_VARIANTS)
            .map(|v| v.3)
            .fold(None, |b: Option<Candidate>, v| match b {
                Some(b) if !(v.0 > b.0 || (v.0 == b.0 && v.1 > b.1)) => Some(b),
                _ => Some(v),
            })
            .map(|(_, _, ci, span)| (ci, span))
    }

    /// The most similar group of the message's token count.
    fn best_same_length(&self, leaf: &[u32], msg: &[Cow<'_, str>]) -> Option<u32> {
        let mut best: Option<(f64, usize, u32)> = None;
        // Groups that differ from the message in the wording of one position only, by
        // position: (number of such groups, best of them).
        let mut variants: Vec<(usize, usize, (f64, usize, u32))> = Vec::new();
        let better = |best: Option<(f64, usize, u32)>, sim: f64, w: usize| match best {
            None => true,
            Some((bs, bw, _)) => sim > bs || (sim == bs && w > bw),
        };
        for &ci in leaf {
            let c = &self.clusters[ci as usize];
            if c.tokens.len() != msg.len() {
                continue;
            }
            let sim = similarity(&c.tokens, msg);
            if sim < self.similarity {
                continue;
            }
            match mergeable(&c.tokens, msg) {
                Merge::Yes => {
                    if better(best, sim, c.wildcards) {
                        best = Some((sim, c.wildcards, ci));
                    }
                }
                Merge::Wording(p) => match variants.iter_mut().find(|v| v.0 == p) {
                    Some(v) => {
                        v.1 += 1;
                        if better(Some(v.2), sim, c.wildcards) {
                            v.2 = (sim, c.wildcards, ci);
                        }
                    }
                    None => variants.push((p, 1, (sim, c.wildcards, ci))),
                },
                Merge::No => {}
            }
        }
        if best.is_none() {
            // Many groups that differ only in the words at one position: that position is
            // a variable after all (bounds the number of groups a plain-word value can make).
            best = variants
                .into_iter()
                .filter(|v| v.1 >= MAX_WORDING_VARIANTS)
                .map(|v| v.2)
                .fold(None, |b, (sim, w, ci)| {
                    if better(b, sim, w) {
                        Some((sim, w, ci))
                    } else {
                        b
                    }
                });
        }
        best.map(|(_, _, ci)| ci)
    }

    /// All groups, in creation order.
    pub fn export(&self) -> Vec<TemplateRecord> {
        self.clusters.iter().map(Cluster::record).collect()
    }

    /// Rebuild a miner from [`Miner::export`] output (in the same order). Adding messages
    /// afterwards gives the same templates and group ids as if the miner had kept running.
    pub fn import(records: Vec<TemplateRecord>) -> Miner {
        let mut m = Miner::new();
        for r in records {
            let tokens: Vec<Box<str>> = r.template.split_whitespace().map(Box::from).collect();
            let key = leaf_key(&tokens);
            m.push_cluster(r.group, tokens, r.count, key);
        }
        m
    }

    /// Groups created, generalised or counted since the last call (each once).
    pub fn take_dirty(&mut self) -> Vec<TemplateRecord> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|ci| {
                let c = &mut self.clusters[ci as usize];
                c.dirty = false;
                c.record()
            })
            .collect()
    }
}

/// The token a template keeps where it and a message differ: `key=<*>` when both are
/// `key=value` with the same key, else `<*>`. The key is wording: a template that lost it
/// would take any token there, and one routine value (`code=expired_card` beside
/// `code=card_declined`) would let an unrelated error (`AuthenticationFailed`) join the
/// group, and its incident, silenced or not.
fn generalise<'a>(t: &'a str, m: &str) -> Cow<'a, str> {
    // Compact JSON with the same keys: each differing value becomes a wildcard and every
    // key stays (a lone leading key takes the `key<*>` form below).
    if let Some(pairs) = same_json_keys(t, m).filter(|p| p.len() > 3 || key_of(t).is_none()) {
        let mut out = String::with_capacity(t.len());
        for (a, b) in pairs {
            if a == b {
                out.push_str(a);
            } else {
                out.push_str(&punctuated_wildcard(a, b, a, b));
            }
        }
        return Cow::Owned(out);
    }
    match (key_of(t), key_of(m)) {
        (Some(k), Some(l)) if k == l => {
            if t[k.len()..] == *WILDCARD {
                Cow::Borrowed(t)
            } else {
                Cow::Owned(format!("{k}{WILDCARD}"))
            }
        }
        _ => match punctuated_wildcard(t, m, t, m) {
            w if w == WILDCARD => Cow::Borrowed(WILDCARD),
            w => Cow::Owned(w),
        },
    }
}

/// The wildcard for a span where a template and a message differ (see [`Span`]): after
/// the key the span starts with, if any (`code=<*>`), else with the punctuation both
/// sides keep around their values (see [`punctuated_wildcard`]).
fn span_wildcard<S: AsRef<str>>(gap_t: &[Box<str>], gap_m: &[S], key: usize) -> String {
    if key > 0 {
        return format!("{}{WILDCARD}", &gap_t[0][..key]);
    }
    let (t0, m0) = (&*gap_t[0], gap_m[0].as_ref());
    let (tn, mn) = (&*gap_t[gap_t.len() - 1], gap_m[gap_m.len() - 1].as_ref());
    punctuated_wildcard(t0, m0, tn, mn)
}

/// `<*>` with the punctuation that both sides have around their differing values: the
/// opening punctuation both first tokens start with, the closing punctuation both last
/// tokens end with. `alice,` and `bob,` give `<*>,` and `(a.b)` and `(c.d)` give `(<*>)`,
/// so the template reads as the messages do (`user <*>, retrying`); punctuation on one
/// side only is dropped (`bob,` and `bob` give `<*>`). A single token keeps at least one
/// byte of value between the two.
fn punctuated_wildcard(t0: &str, m0: &str, tn: &str, mn: &str) -> String {
    const OPENING: &[u8] = b"([{\"'`";
    const CLOSING: &[u8] = b")]}\"'`,;.!?:";
    let lead = t0
        .bytes()
        .zip(m0.bytes())
        .take_while(|(a, b)| a == b && OPENING.contains(a))
        .count();
    let mut trail = tn
        .bytes()
        .rev()
        .zip(mn.bytes().rev())
        .take_while(|(a, b)| a == b && CLOSING.contains(a))
        .count();
    for (first, last) in [(t0, tn), (m0, mn)] {
        if std::ptr::eq(first, last) {
            trail = trail.min(last.len().saturating_sub(lead + 1));
        }
    }
    format!("{}{WILDCARD}{}", &t0[..lead], &tn[tn.len() - trail..])
}

/// The key of a `key=value` token or of a JSON (or Python dict) pair, with the punctuation
/// before it: `code=`, `(id=`, `{"code":`, `'code':`. The key is structure, only what
/// follows it is the value. A key is a name (letters, digits, `_`, `-`, `.`, with a
/// letter); the first `=` ends it, so base64 padding (`sid=YWJjZA==`) is in the value.
fn key_of(t: &str) -> Option<&str> {
    let b = t.as_bytes();
    let lead = b.iter().take_while(|c| b"([{,".contains(c)).count();
    let rest = &b[lead..];
    let is_name = |c: &u8| c.is_ascii_alphanumeric() || b"_-.".contains(c);
    if let Some(&q) = rest.first().filter(|&&q| q == b'"' || q == b'\'') {
        let n = rest[1..].iter().take_while(|c| is_name(c)).count();
        return (n > 0 && rest.get(1 + n) == Some(&q) && rest.get(2 + n) == Some(&b':'))
            .then(|| &t[..lead + n + 3]);
    }
    let i = rest.iter().position(|&c| c == b'=')?;
    let name = &rest[..i];
    (name.iter().any(|c| c.is_ascii_alphabetic()) && name.iter().all(is_name))
        .then(|| &t[..lead + i + 1])
}

/// Does a template's key wildcard (`code=<*>`, `{"code":<*>`) take the message token `m`:
/// any value of the same key? One definition for same-length and span matching, so the
/// two can never disagree on what a key slot accepts.
fn key_wildcard_takes(t: &str, m: &str) -> bool {
    key_of(t).is_some_and(|k| t[k.len()..] == *WILDCARD && key_of(m) == Some(k))
}

/// The byte ranges of the JSON (or Python dict) keys in a token, `"name":` or `'name':`
/// each at the start of the token or after `{`, `[`, `(` or `,`: a token of compact JSON
/// holds several (`{"user":"<*>","action":"<*>"}`).
fn json_keys(t: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let b = t.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            let at = i;
            i += 1;
            let q = b[at];
            if !matches!(q, b'"' | b'\'') || (at > 0 && !b"{[(,".contains(&b[at - 1])) {
                continue;
            }
            let n = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || b"_-.".contains(c))
                .count();
            if n > 0 && b.get(at + 1 + n) == Some(&q) && b.get(at + 2 + n) == Some(&b':') {
                i = at + 3 + n;
                return Some((at, i));
            }
        }
        None
    })
}

/// When two tokens hold the same JSON keys, in the same order (at least one), their
/// pieces side by side: what precedes each key, the key (the same on both sides), and so
/// on, then what follows the last key.
fn same_json_keys<'a, 'b>(t: &'a str, m: &'b str) -> Option<Vec<(&'a str, &'b str)>> {
    let mut pieces = Vec::new();
    let (mut pt, mut pm) = (0, 0);
    let mut kt = json_keys(t);
    let mut km = json_keys(m);
    loop {
        match (kt.next(), km.next()) {
            (Some((a, b)), Some((c, d))) if t[a..b] == m[c..d] => {
                pieces.push((&t[pt..a], &m[pm..c]));
                pieces.push((&t[a..b], &m[c..d]));
                (pt, pm) = (b, d);
            }
            (None, None) if !pieces.is_empty() => {
                pieces.push((&t[pt..], &m[pm..]));
                return Some(pieces);
            }
            _ => return None,
        }
    }
}

/// Does either token hold a key (`key=`, a JSON key anywhere in it)?
fn has_key(t: &str) -> bool {
    key_of(t).is_some() || json_keys(t).next().is_some()
}

/// Do two different tokens differ in wording (rather than in a value)? `key=value` tokens
/// (and JSON pairs) differ in wording when their keys differ, or when only one of them has
/// a key: `code=<*>` and `<*>` (or `'<*>'`) are not one slot, and a template that dropped
/// the key would take any token there. Other tokens: both must have letters outside
/// wildcards, and neither may be a dotted name or path (package, class, host or file names
/// are values).
fn differ_in_wording(t: &str, m: &str) -> bool {
    if t == WILDCARD {
        return false;
    }
    // Compact JSON: the same keys, and no wording between them.
    if let Some(pairs) = same_json_keys(t, m) {
        return pairs
            .iter()
            .any(|(a, b)| a != b && wordy(a) && wordy(b) && *b != WILDCARD);
    }
    if json_keys(t).next().is_some() || json_keys(m).next().is_some() {
        return true;
    }
    match (key_of(t), key_of(m)) {
        (Some(k), Some(l)) => k != l,
        (Some(_), None) | (None, Some(_)) => true,
        (None, None) => m != WILDCARD && wordy(t) && wordy(m),
    }
}

/// Has letters outside wildcards and is not a dotted name or a path.
fn wordy(t: &str) -> bool {
    let b = t.as_bytes();
    let mut letters = false;
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(WILDCARD.as_bytes()) {
            i += WILDCARD.len();
            continue;
        }
        let c = b[i];
        if c.is_ascii_alphabetic() {
            letters = true;
        } else if (c == b'.' || c == b'/' || c == b'\\')
            && i > 0
            && b[i - 1].is_ascii_alphanumeric()
            && b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric())
        {
            return false;
        }
        i += 1;
    }
    letters
}

enum Merge {
    Yes,
    /// Only the wording at this position differs.
    Wording(usize),
    No,
}

/// May the template absorb the message? Two different plain words at the same position are
/// taken as different wording (separate templates), unless the position is a value slot.
/// The merged template must also keep its routing path, so that its leaf stays a function of
/// its text.
fn mergeable(template: &[Box<str>], msg: &[Cow<'_, str>]) -> Merge {
    let mut generalised = false;
    let mut wording = None;
    for (i, (t, m)) in template.iter().zip(msg).enumerate() {
        if &**t == WILDCARD || **t == **m {
            continue;
        }
        generalised = true;
        // (a key on one side only, or two keys, differ wherever they are)
        let slot =
            !has_key(t) && !has_key(m) && (value_slot(template, i) || key_colon_slot(template, i));
        if differ_in_wording(t, m) && !slot {
            if wording.is_some() {
                return Merge::No;
            }
            wording = Some(i);
        }
    }
    if !generalised {
        return Merge::Yes;
    }
    let merged: Vec<Cow<'_, str>> = template
        .iter()
        .zip(msg)
        .map(|(t, m)| {
            if **t == **m {
                Cow::Borrowed(&**t)
            } else {
                generalise(t, m)
            }
        })
        .collect();
    let path_kept = path_positions(&merged).eq(path_positions(template))
        && path_positions(template).all(|i| *template[i] == *msg[i]);
    match (path_kept, wording) {
        (false, _) => Merge::No,
        (true, None) => Merge::Yes,
        (true, Some(p)) => Merge::Wording(p),
    }
}

/// A group a message may join through a span: similarity, wildcards, group, span.
type Candidate = (f64, usize, u32, Span);

/// Where a message of another token count meets a template: the template keeps its first
/// `prefix` and last `suffix` tokens, and what lies between becomes one wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    prefix: usize,
    suffix: usize,
    /// The length of the key that the span's wildcard keeps (`code=` of `code=<*>`), 0
    /// for none.
    key: usize,
}

/// Can a token be part of a variable span? A value: it holds a wildcard, or has letters
/// or digits but is not wording (dotted names, paths). Plain words and lone punctuation
/// are structure: a span never swallows them, so `Failed password for <*>` and `Failed
/// password for invalid user <*>` stay apart.
fn spannable(t: &str) -> bool {
    json_keys(t).next().is_none()
        && (mask::find_wildcard(t).is_some()
            || (t.bytes().any(|c| c.is_ascii_alphanumeric()) && !wordy(t)))
}

/// Where a template and a message differ in one span: the numbers of tokens before it
/// (`prefix`) and after it (`suffix`) on which they agree (a template wildcard agrees with
/// any one token, a template `key=<*>` with any token of that key). The shorter side's span
/// holds at least one token.
fn span_bounds(template: &[Box<str>], msg: &[Cow<'_, str>]) -> Option<(usize, usize)> {
    let (n, m) = (template.len(), msg.len());
    let short = n.min(m);
    let agree = |t: &str, w: &str| t == w || t == WILDCARD || key_wildcard_takes(t, w);
    let mut prefix = 0;
    while prefix < short && agree(&template[prefix], &msg[prefix]) {
        prefix += 1;
    }
    let mut suffix = 0;
    while suffix < short - prefix && agree(&template[n - 1 - suffix], &msg[m - 1 - suffix]) {
        suffix += 1;
    }
    // The shorter side's span must hold at least one token: give it back from the
    // prefix, else from the suffix.
    if prefix + suffix == short {
        if prefix > 0 {
            prefix -= 1;
        } else if suffix > 0 {
            suffix -= 1;
        } else {
            return None;
        }
    }
    Some((prefix, suffix))
}

/// The key a span keeps, if the span may be merged at all: keys are structure, so a span
/// never swallows one. It may only start, on both sides, with the same key, whose value
/// the span then is (`code=<*>` and `code='card declined' 'call issuer'` give `code=<*>`);
/// any other key in the span (or a key on one side only) refuses the merge. Gives the
/// key's length (0 for none).
fn span_key(gap_t: &[Box<str>], gap_m: &[Cow<'_, str>]) -> Option<usize> {
    let key = match (key_of(&gap_t[0]), key_of(&gap_m[0])) {
        (Some(k), Some(l)) if k == l => k.len(),
        (None, None) => 0,
        _ => return None,
    };
    let unkeyed = gap_t[1..].iter().all(|t| key_of(t).is_none())
        && gap_m[1..].iter().all(|t| key_of(t).is_none());
    unkeyed.then_some(key)
}

/// The share of the merged template (the span being one token) that the agreeing
/// constants make.
fn span_similarity(template: &[Box<str>], prefix: usize, suffix: usize) -> (usize, f64) {
    let n = template.len();
    let constants = template[..prefix]
        .iter()
        .chain(&template[n - suffix..])
        .filter(|t| &***t != WILDCARD)
        .count();
    (constants, constants as f64 / (prefix + 1 + suffix) as f64)
}

/// May a message of another token count join the template? Both must agree on the
/// tokens before and after one differing span (see [`span_bounds`]), each side of the span
/// must be non-empty and made of values only (after the key it may start with, see
/// [`span_key`]), and the agreeing constants must make at least `min_similarity` of the
/// merged template. Returns that share and the span.
fn span_merge(
    template: &[Box<str>],
    msg: &[Cow<'_, str>],
    min_similarity: f64,
) -> Option<(f64, Span)> {
    let (n, m) = (template.len(), msg.len());
    let (prefix, suffix) = span_bounds(template, msg)?;
    let gap_t = &template[prefix..n - suffix];
    let gap_m = &msg[prefix..m - suffix];
    let key = span_key(gap_t, gap_m)?;
    // After the key, only its value (which may be in the next tokens: `{"code": 42}`).
    let values = |gap: &mut dyn Iterator<Item = &str>| {
        gap.enumerate().all(|(i, t)| {
            let v = if i == 0 { &t[key..] } else { t };
            spannable(v) || (i == 0 && key > 0 && v.is_empty())
        })
    };
    if !values(&mut gap_t.iter().map(|t| &**t)) || !values(&mut gap_m.iter().map(|t| t.as_ref())) {
        return None;
    }
    let (constants, sim) = span_similarity(template, prefix, suffix);
    (constants > 0 && sim >= min_similarity).then_some((
        sim,
        Span {
            prefix,
            suffix,
            key,
        },
    ))
}

/// Does a message differ from the template in one span of words (the template's may be
/// the wildcard they became), between the same wording on both sides, the shared constants
/// making at least `min_similarity` of the merged template? Such a span merges only once it
/// is seen to vary (see [`Miner::word_span_variant`]).
fn word_span(
    template: &[Box<str>],
    msg: &[Cow<'_, str>],
    min_similarity: f64,
) -> Option<(f64, Span)> {
    let (n, m) = (template.len(), msg.len());
    let (prefix, suffix) = span_bounds(template, msg)?;
    // Wording on both sides, the same in both: a wildcard that took the words after a
    // prefix would take anything there.
    if prefix == 0
        || suffix == 0
        || *template[prefix - 1] == *WILDCARD
        || *template[n - suffix] == *WILDCARD
        || *template[prefix - 1] != *msg[prefix - 1]
        || *template[n - suffix] != *msg[m - suffix]
    {
        return None;
    }
    let (gap_t, gap_m) = (&template[prefix..n - suffix], &msg[prefix..m - suffix]);
    // The message's span is words (a value of another shape is masked or merges as one);
    // the template's too, or the wildcard that such words became.
    if !gap_m.iter().all(|t| is_word(t))
        || !(gap_t.iter().all(|t| is_word(t))
            || (gap_t.len() == 1 && mask::is_wildcard_shape(&gap_t[0])))
    {
        return None;
    }
    let key = span_key(gap_t, gap_m)?;
    let (constants, sim) = span_similarity(template, prefix, suffix);
    (constants > 0 && sim >= min_similarity).then_some((
        sim,
        Span {
            prefix,
            suffix,
            key,
        },
    ))
}

/// Fraction of positions where the template has the same constant as the message; 1
/// when the message is the template itself. Without that, a message that is mostly
/// values (`42`, `1 of 2 at 3`) would never join its own group: every line would make
/// a new group (and signature), without bound.
fn similarity(template: &[Box<str>], msg: &[Cow<'_, str>]) -> f64 {
    if template.is_empty() {
        return 1.0;
    }
    let mut same = 0usize;
    let mut identical = true;
    for (t, m) in template.iter().zip(msg) {
        if **t != **m {
            identical = false;
            // A key's wildcard takes any value of its key (as in a span merge): the
            // message that widened a template to `(id=<*>` must find it again.
            if key_wildcard_takes(t, m) {
                same += 1;
            }
        } else if &**t != WILDCARD {
            same += 1;
        }
    }
    if identical {
        return 1.0;
    }
    same as f64 / template.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of exported groups, counting what the lazy miner asks for.
    struct Stored {
        records: Vec<TemplateRecord>,
        leaves_asked: usize,
    }

    impl Templates for Stored {
        fn leaf(&mut self, key: u64) -> Result<Vec<TemplateRecord>, String> {
            self.leaves_asked += 1;
            Ok(self
                .records
                .iter()
                .filter(|r| leaf_of(&r.template) == key)
                .cloned()
                .collect())
        }
        fn id_taken(&mut self, id: GroupId) -> Result<bool, String> {
            Ok(self.records.iter().any(|r| r.group == id))
        }
    }

    #[test]
    fn a_lazy_miner_mines_as_one_that_imported_everything() {
        let history: Vec<String> = (0..400)
            .map(|i| match i % 4 {
                0 => format!("Timeout after {i}ms calling payments for order {}", i * 7),
                1 => format!("User u{i} hit the rate limit on /api/v{}", i % 3),
                2 => format!("Worker {} failed job {i}: {} retries left", i % 9, i % 5),
                _ => format!(
                    "Shard {} of cluster c{} is {}",
                    i % 16,
                    i % 2,
                    ["up", "down", "lagging"][i % 3]
                ),
            })
            .collect();
        let mut first = Miner::new();
        for m in &history {
            first.add(m);
        }
        let records = first.export();
        let mut full = Miner::import(records.clone());
        let mut store = Stored {
            records,
            leaves_asked: 0,
        };
        let mut lazy = Miner::lazy();
        for msg in [
            "Timeout after 5ms calling payments for order 9",
            "Shard 3 of cluster c1 is down",
            "A message never seen before with 12 values",
            "Shard 4 of cluster c0 is down",
            "User u77 hit the rate limit on /api/v2",
        ] {
            assert_eq!(
                lazy.add_from(msg, &mut store).unwrap(),
                full.add(msg),
                "{msg}"
            );
        }
        assert!(
            store.leaves_asked <= 5,
            "{} leaves fetched",
            store.leaves_asked
        );
        assert!(lazy.len() < full.len(), "the lazy miner loaded every group");
        let mut a = lazy.take_dirty();
        let mut b = full.take_dirty();
        a.sort_by_key(|r| r.group);
        b.sort_by_key(|r| r.group);
        assert_eq!(a, b);
    }

    #[test]
    fn messages_that_are_mostly_values_join_their_own_group() {
        let mut m = Miner::new();
        for msg in [
            "0",
            "42",
            "10.0.0.1",
            "1 of 2 at 3",
            "4 of 5 at 6",
            "7 of 8 at 9",
        ] {
            m.add(msg);
        }
        assert_eq!(m.len(), 2, "{:?}", m.export());
        let a = m.add("1234");
        assert_eq!(a.group, m.add("0").group);
        assert_eq!(a.template, "<*>");
        assert_eq!(m.add("9 of 9 at 9").template, "<*> of <*> at <*>");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn merges_and_generalises() {
        let mut m = Miner::new();
        let a = m.add("Invalid user webmaster from 173.234.31.186");
        assert!(a.changed);
        assert_eq!(a.template, "Invalid user webmaster from <*>");
        let b = m.add("Invalid user test9 from 10.0.0.1");
        assert_eq!(b.group, a.group);
        assert_eq!(b.template, "Invalid user <*> from <*>");
        assert!(b.changed);
        let c = m.add("Invalid user admin from 10.0.0.2");
        assert_eq!(c.group, a.group);
        assert!(!c.changed);
        assert_eq!(
            a.group,
            GroupId(xxh3_64(b"Invalid user webmaster from <*>"))
        );
    }

    #[test]
    fn a_key_stays_in_the_template_so_another_word_cannot_join() {
        let mut m = Miner::new();
        let a = m.add("Payment provider error for order 55: code=card_declined");
        let b = m.add("Payment provider error for order 56: code=expired_card");
        assert_eq!(a.group, b.group);
        assert_eq!(b.template, "Payment provider error for order <*>: code=<*>");
        let c = m.add("Payment provider error for order 57: AuthenticationFailed");
        assert_ne!(c.group, a.group);
        assert_eq!(
            m.add("Payment provider error for order 58: code=do_not_honor")
                .group,
            a.group
        );
        let j = m.add("Job failed: reason=timeout");
        assert_eq!(
            m.add("Job failed: reason=other").template,
            "Job failed: reason=<*>"
        );
        assert_ne!(m.add("Job failed: OutOfMemory").group, j.group);
    }

    #[test]
    fn boilerplate_only_does_not_merge() {
        let mut m = Miner::new();
        let a = m.add("Connection closed by peer");
        let b = m.add("Connection refused by server");
        let c = m.add("Disk full on device");
        assert_ne!(a.group, b.group);
        assert_ne!(a.group, c.group);
    }

    #[test]
    fn export_import_round_trip() {
        let lines = [
            "Accepted password for root from 1.2.3.4 port 22 ssh2",
            "Accepted password for bob from 1.2.3.5 port 23 ssh2",
            "session opened for user root by (uid=0)",
            "Received disconnect from 1.2.3.4: 11: Bye Bye",
            "session opened for user bob by (uid=0)",
        ];
        let more = [
            "Accepted password for alice from 9.9.9.9 port 1 ssh2",
            "session opened for user carol by (uid=0)",
            "something new entirely here",
        ];
        let mut full = Miner::new();
        for l in lines {
            full.add(l);
        }
        let mut restored = Miner::import(full.export());
        assert_eq!(restored.export(), full.export());
        for l in more {
            assert_eq!(full.add(l), restored.add(l));
        }
        assert_eq!(restored.export(), full.export());
    }

    #[test]
    fn take_dirty_is_incremental() {
        let mut m = Miner::new();
        m.add("alpha beta gamma");
        m.add("alpha beta gamma");
        let d = m.take_dirty();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].count, 2);
        assert!(m.take_dirty().is_empty());
        m.add("delta epsilon");
        m.add("alpha beta gamma");
        assert_eq!(m.take_dirty().len(), 2);
    }

    #[test]
    fn wording_differences_split_until_many() {
        let mut m = Miner::new();
        let a = m.add("VM Started (Lifecycle Event)");
        let b = m.add("VM Stopped (Lifecycle Event)");
        assert_ne!(a.group, b.group);
        let names = [
            "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibex", "jay",
        ];
        let ids: Vec<GroupId> = names
            .iter()
            .map(|n| {
                m.add(&format!("Connection from {n} was closed by peer"))
                    .group
            })
            .collect();
        // The first MAX_WORDING_VARIANTS names make their own groups, then the name is a value.
        assert_eq!(ids[MAX_WORDING_VARIANTS], ids[0]);
        assert_eq!(ids[MAX_WORDING_VARIANTS + 1], ids[0]);
        let t = m.add("Connection from zebra was closed by peer");
        assert_eq!(t.group, ids[0]);
        assert_eq!(t.template, "Connection from <*> was closed by peer");
    }

    #[test]
    fn import_mid_stream_matches_continuous_run() {
        let names = [
            "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibex", "jay",
        ];
        let mut lines: Vec<String> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            lines.push(format!("Connection from {n} was closed by peer"));
            lines.push(format!("job {i} finished in {}ms on worker-{i}", i * 7));
            lines.push(format!("Task {} moved from QUEUED to RUNNING", i));
            lines.push(format!("load /srv/app/{n}.cfg ok user={n}"));
        }
        for split in [1, 7, 20, 33] {
            let mut full = Miner::new();
            let a: Vec<Mined> = lines.iter().map(|l| full.add(l)).collect();
            let mut first = Miner::new();
            for l in &lines[..split] {
                first.add(l);
            }
            let mut second = Miner::import(first.export());
            let b: Vec<Mined> = lines[split..].iter().map(|l| second.add(l)).collect();
            assert_eq!(&a[split..], &b[..], "split at {split}");
            assert_eq!(full.export(), second.export());
        }
    }

    #[test]
    fn values_of_several_tokens_merge_across_token_counts() {
        // Dotted names are values the masking leaves alone: a list of one or two of them.
        let mut m = Miner::new();
        let a = m.add("Copied org.example.Foo to archive store");
        let b = m.add("Copied org.example.Foo org.example.Bar to archive store");
        assert_eq!(a.group, b.group);
        assert_eq!(b.template, "Copied <*> to archive store");
        assert!(b.changed);
        let c = m.add("Copied org.example.Baz org.example.Qux org.example.Zed to archive store");
        assert_eq!((c.group, c.changed), (a.group, false));
        assert_eq!(c.template, b.template);
        // the longer message first, then the shorter one
        let d = m.add("Moved crate.a1 (crate.b2) into bay 3");
        let e = m.add("Moved crate.a7 into bay 3");
        assert_eq!(d.group, e.group);
        assert_eq!(e.template, "Moved <*> into bay <*>");
        // one leaf for both lengths, so a lazy miner finds the group from either
        assert_eq!(
            leaf_of(&b.template),
            leaf_of("Copied x.y z.w to archive store")
        );
        assert_eq!(m.len(), 2, "{:?}", m.export());
    }

    #[test]
    fn spans_never_swallow_words() {
        let mut m = Miner::new();
        let a = m.add("Failed password for root from 10.0.0.1 port 22 ssh2");
        let b = m.add("Failed password for invalid user root from 10.0.0.1 port 22 ssh2");
        assert_ne!(a.group, b.group);
        let c = m.add("Connection closed by 10.0.0.1");
        let d = m.add("Connection closed by remote peer 10.0.0.1");
        assert_ne!(c.group, d.group);
        // a token inserted among constants is not a span of values
        let e = m.add("Task done after <*> retries");
        let f = m.add("Task done after <*> more retries");
        assert_ne!(e.group, f.group);
        // nor is a message that shares too little with the template
        let g = m.add("x.y done");
        let h = m.add("x.y a.b c.d done");
        assert_eq!(g.group, h.group);
        let i = m.add("job a.b c.d e.f g.h failed");
        let j = m.add("job a.b failed here");
        assert_ne!(i.group, j.group);
    }

    #[test]
    fn a_group_merged_across_token_counts_survives_export_and_import() {
        let lines = [
            "Copied org.example.Foo to archive store",
            "Task 1 moved from QUEUED to RUNNING",
            "Copied org.example.Foo org.example.Bar to archive store",
        ];
        let more = [
            "Copied a.b c.d e.f to archive store",
            "Copied a.b to archive store",
            "Task 2 moved from QUEUED to RUNNING",
        ];
        let mut full = Miner::new();
        for l in lines {
            full.add(l);
        }
        let records = full.export();
        let mut restored = Miner::import(records.clone());
        let mut store = Stored {
            records,
            leaves_asked: 0,
        };
        let mut lazy = Miner::lazy();
        for l in more {
            let want = full.add(l);
            assert_eq!(restored.add(l), want, "{l}");
            assert_eq!(lazy.add_from(l, &mut store).unwrap(), want, "{l}");
        }
        assert_eq!(restored.export(), full.export());
    }

    #[test]
    fn empty_message() {
        let mut m = Miner::new();
        let a = m.add("");
        let b = m.add("   ");
        assert_eq!(a.group, b.group);
        assert_eq!(a.template, "");
    }

    /// Feeds `first` (which make a `key=<*>` template), then `widen` (values in that slot
    /// of another shape), then asserts that `other` (another error in that place) makes a
    /// group of its own.
    fn assert_key_survives(first: &[&str], widen: &[&str], other: &str) {
        let mut m = Miner::new();
        let a = m.add(first[0]);
        for f in &first[1..] {
            assert_eq!(m.add(f).group, a.group, "{f}");
        }
        for w in widen {
            let t = m.add(w);
            if t.group == a.group {
                assert!(
                    t.template.contains("code=") || t.template.contains("\"code\":"),
                    "{w} took the key away: {}",
                    t.template
                );
            }
        }
        let o = m.add(other);
        assert_ne!(o.group, a.group, "{other} joined {:?}", m.export());
    }

    #[test]
    fn a_span_merge_never_swallows_a_key() {
        let first = [
            "Payment provider error for order 55: code=card_declined",
            "Payment provider error for order 56: code=expired_card",
        ];
        let other = "Payment provider error for order 57: AuthenticationFailed";
        // a value of two URLs, of two quoted strings, a value with a URL after it
        assert_key_survives(
            &first,
            &["Payment provider error for order 58: code=https://a.example.com/x https://b.example.com/y"],
            other,
        );
        assert_key_survives(
            &first,
            &["Payment provider error for order 58: code='card declined' 'call issuer'"],
            other,
        );
        assert_key_survives(
            &first,
            &["Payment provider error for order 58: code=3ds_required http://pay.example.com/3ds/9"],
            other,
        );
        // the same in JSON: the key is structure there too
        assert_key_survives(
            &[
                r#"Payment provider error for order 55: {"code":"card_declined"}"#,
                r#"Payment provider error for order 56: {"code":"expired_card"}"#,
            ],
            &[
                r#"Payment provider error for order 58: {"code":"x y", "detail":"a b c"}"#,
                r#"Payment provider error for order 59: {"code": "processing_error"}"#,
                r#"Payment provider error for order 60: {"code": 42}"#,
            ],
            other,
        );
        assert_key_survives(
            &first,
            &[r#"Payment provider error for order 58: {"code":"x"}"#],
            other,
        );
        // a key=value span is still one value after its key
        let mut m = Miner::new();
        let a = m.add("Payment provider error for order 55: code=card_declined");
        m.add("Payment provider error for order 56: code=expired_card");
        let b = m.add("Payment provider error for order 58: code='card declined' 'call issuer'");
        assert_eq!(a.group, b.group);
        assert_eq!(b.template, "Payment provider error for order <*>: code=<*>");
    }

    #[test]
    fn a_value_that_is_a_number_does_not_take_the_key_away() {
        let mut m = Miner::new();
        let a = m.add("Payment provider error for order 55: code=card_declined");
        m.add("Payment provider error for order 56: code=expired_card");
        let b = m.add("Payment provider error for order 57: 4012");
        if b.group == a.group {
            assert!(b.template.contains("code="), "{}", b.template);
        }
        let c = m.add("Payment provider error for order 58: AuthenticationFailed");
        assert_ne!(c.group, a.group, "{:?}", m.export());
    }

    #[test]
    fn padded_base64_values_are_one_group() {
        let mut m = Miner::new();
        let a = m.add("Session rejected sid=YWJjZA== for tenant");
        for msg in [
            "Session rejected sid=dGVzdA= for tenant",
            "Session rejected sid=Zm9vYmFy for tenant",
            "Session rejected sid=c2Vzc2lvbi1rZXk= for tenant",
            "Session rejected sid=QQ== for tenant",
        ] {
            let b = m.add(msg);
            assert_eq!(b.group, a.group, "{msg}: {:?}", m.export());
        }
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.add("Session rejected sid=YQ== for tenant").template,
            "Session rejected sid=<*> for tenant"
        );
    }

    #[test]
    fn a_span_of_strangers_words_is_a_value_once_it_keeps_changing() {
        let names = [
            "Ada Lovelace",
            "Grace Brewster Murray Hopper",
            "Ken",
            "Edsger Dijkstra",
            "John von Neumann",
            "Frances Allen",
            "Barbara Liskov",
            "Dennis MacAlistair Ritchie",
            "Tony Hoare",
            "Alan Turing",
            "Radia Perlman",
            "Leslie Lamport",
        ];
        let mut m = Miner::new();
        let ids: Vec<Mined> = names
            .iter()
            .map(|n| m.add(&format!("Payout to {n} stuck in queue")))
            .collect();
        // Two names are two kinds until the position has shown it takes anything.
        assert_ne!(ids[0].group, ids[1].group);
        let joined: HashSet<GroupId> = ids[MAX_WORDING_VARIANTS..]
            .iter()
            .map(|x| x.group)
            .collect();
        assert_eq!(joined.len(), 1, "{:?}", m.export());
        let last = ids.last().unwrap();
        assert_eq!(last.template, "Payout to <*> stuck in queue");
        assert_eq!(m.len(), MAX_WORDING_VARIANTS, "{:?}", m.export());
        // The rest of the message is still wording.
        assert_ne!(m.add("Payout to Ada Lovelace sent").group, last.group);
        assert_ne!(
            m.add("Payout to Ada Lovelace stuck in review").group,
            last.group
        );
        // and the same after an export and import
        let mut restored = Miner::import(m.export());
        assert_eq!(
            restored
                .add("Payout to Margaret Hamilton stuck in queue")
                .group,
            last.group
        );
    }

    #[test]
    fn a_few_wording_differences_stay_apart() {
        let mut m = Miner::new();
        let a = m.add("Payout to partner account stuck in queue");
        let b = m.add("Payout to merchant wallet stuck in queue");
        let c = m.add("Payout to bank stuck in queue");
        assert_ne!(a.group, b.group);
        assert_ne!(a.group, c.group);
        assert_ne!(b.group, c.group);
        // nor does a span of words after a key merge with a key-less one
        let d = m.add("Job failed: reason=disk full now");
        let e = m.add("Job failed: disk full now");
        assert_ne!(d.group, e.group);
    }

    #[test]
    fn the_value_of_a_key_colon_pair_is_a_value() {
        let mut m = Miner::new();
        let a = m.add("Refund refused for customer: alice, order: abcdef");
        for msg in [
            "Refund refused for customer: bob, order: ghijkl",
            "Refund refused for customer: 1234, order: ab12cd",
            "Refund refused for customer: carol, order: mnopqr",
        ] {
            assert_eq!(m.add(msg).group, a.group, "{msg}: {:?}", m.export());
        }
        assert_eq!(
            m.add("Refund refused for customer: dave, order: stuvwx")
                .template,
            "Refund refused for customer: <*>, order: <*>"
        );
        // the key stays: another message in that place is another kind
        assert_ne!(
            m.add("Refund refused for customer: eve, AuthenticationFailed")
                .group,
            a.group
        );
        // a label before a sentence is wording
        let b = m.add("Refund worker error: connection refused by peer");
        let c = m.add("Refund worker error: certificate expired by peer");
        assert_ne!(b.group, c.group);
    }

    /// A template widened by a span merge to a key's wildcard (`(id=<*>`) is found again
    /// by the very message that widened it, whose token there has more after the value.
    #[test]
    fn the_message_that_widened_a_key_slot_joins_its_group_again() {
        let mut m = Miner::new();
        let a = "10.0.0.1:5432 KB(id=7), (id=7),1532";
        let b = "to(id=7), (id=7),a@b.iofailed||(id=7),";
        let ga = m.add(a);
        let gb = m.add(b);
        assert_eq!(gb.group, ga.group, "{}", gb.template);
        assert_eq!(m.add(b).group, gb.group);
        assert_eq!(m.add(a).group, ga.group);
    }
    #[test]
    fn punctuation_after_a_value_stays_in_the_template() {
        let mut m = Miner::new();
        let a = m.add("Login failed for user alice, retrying");
        let b = m.add("Login failed for user bob, retrying");
        assert_eq!(b.group, a.group);
        assert_eq!(b.template, "Login failed for user <*>, retrying");
        // The ignore rule suggested for the group matches its messages.
        let rule = crate::ignore::pattern_for_template(&b.template);
        assert!(regex::Regex::new(&rule)
            .unwrap()
            .is_match("Login failed for user alice, retrying"));
        assert_eq!(
            m.add("Login failed for user carol, retrying").group,
            a.group
        );
        // punctuation on one side only is not kept
        assert_eq!(
            m.add("Login failed for user erin retrying").template,
            "Login failed for user <*> retrying"
        );
        let mut m = Miner::new();
        m.add("Lookup of user (alice) failed");
        assert_eq!(
            m.add("Lookup of user (bob) failed").template,
            "Lookup of user (<*>) failed"
        );
        // nor across token counts
        let mut m = Miner::new();
        let a = m.add("Copied a.B, to x");
        let b = m.add("Copied a.B c.D, to x");
        assert_eq!(b.group, a.group);
        assert_eq!(b.template, "Copied <*>, to x");
        assert_eq!(m.add("Copied a.B, to x").group, a.group);
        // A template stored before, without the comma, still takes the messages.
        let mut old = Miner::import(vec![TemplateRecord {
            group: GroupId(7),
            template: "Login failed for user <*> retrying".into(),
            count: 2,
        }]);
        let c = old.add("Login failed for user frank, retrying");
        assert_eq!(c.group, GroupId(7));
        assert_eq!(c.template, "Login failed for user <*> retrying");
    }
    #[test]
    fn compact_json_with_other_keys_is_another_group() {
        let mut m = Miner::new();
        let a = m.add(
            r#"Payment failed for order 50: {"user":"Ada Lovelace","action":"refund","code":"E42"}"#,
        );
        let b = m.add(
            r#"Payment failed for order 51: {"user":"Grace Hopper","action":"void it, now","code":"E 43"}"#,
        );
        assert_eq!(a.group, b.group);
        let c = m.add(
            r#"Payment failed for order 52: {"user":"Alan Turing","login":"denied","code":"E44"}"#,
        );
        assert_ne!(c.group, a.group, "{:?}", m.export());
        // A value of another shape is still a value; the keys stay.
        let d = m.add(r#"Payment failed for order 53: {"user":"Ken","action":42,"code":"E45"}"#);
        assert_eq!(d.group, a.group);
        assert_eq!(
            d.template,
            r#"Payment failed for order <*>: {"user":"<*>","action":<*>,"code":"<*>"}"#
        );
        // A key's wildcard does not take JSON with more keys.
        let mut m = Miner::new();
        let e = m.add(r#"Payment failed for order 1: {"code":"x"}"#);
        assert_eq!(
            m.add(r#"Payment failed for order 2: {"code":42}"#).template,
            r#"Payment failed for order <*>: {"code":<*>"#
        );
        let f = m.add(r#"Payment failed for order 3: {"code":"x","detail":"y"}"#);
        assert_ne!(f.group, e.group, "{:?}", m.export());
    }
}
