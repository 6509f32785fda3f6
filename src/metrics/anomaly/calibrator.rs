//! Conformal calibration of one sub-detector: the p-value of a raw surprisal is its
//! rank among the raw surprisals of the trailing window.
//!
//! The window (thousands of values) is kept in pages (see [`super::pages`]) so that
//! a stored detector loads only what a sample touches:
//! - **arrival order**: the oldest values (`head`), full pages of [`RING_PAGE`]
//!   values, the newest values (`tail`). A page is written once when the tail fills
//!   and read once when it becomes the head.
//! - **sorted order**: chunks of consecutive sorted values, each a page, with a
//!   directory (count, smallest, largest) in the state. Values pushed and evicted
//!   since the last flush wait in `added` and `removed`, so that a sample rewrites
//!   no chunk; every [`PENDING`] changes they are applied at once.
//!
//! A rank needs the directory and at most one chunk. Every answer is exact: the
//! same as a sorted array of the window's values would give.

use std::collections::VecDeque;

use super::pages::{PageChanges, PageSource, Pages};

/// Values per arrival-order page.
pub(super) const RING_PAGE: usize = 64;
/// A chunk larger than this is split in two.
pub(super) const CHUNK_MAX: usize = 448;
/// Pushes and evictions waiting before the chunks are updated.
pub(super) const PENDING: usize = 64;

/// Bit marking an arrival-order page id (a chunk's id does not have it).
const RING_BIT: u64 = 1 << 39;

/// One chunk of the sorted order: its page, its count and its smallest and largest
/// values (total order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Chunk {
    pub id: u64,
    pub len: usize,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone)]
pub(super) struct Calibrator {
    pub cap: usize,
    pub len: usize,
    /// Page ids of this calibrator start here (its place in the detector).
    pub base: u64,
    pub head: VecDeque<f64>,
    /// Arrival-order pages `[ring.0, ring.1)`, between `head` and `tail`.
    pub ring: (u64, u64),
    pub tail: Vec<f64>,
    pub chunks: Vec<Chunk>,
    pub next_chunk: u64,
    pub added: Vec<f64>,
    pub removed: Vec<f64>,
    pub pages: Pages<Vec<f64>>,
}

fn ge(a: f64, b: f64) -> bool {
    a.total_cmp(&b).is_ge()
}

fn lt(a: f64, b: f64) -> bool {
    a.total_cmp(&b).is_lt()
}

impl Calibrator {
    pub fn new(cap: usize, base: u64) -> Self {
        Calibrator {
            cap: cap.max(1),
            len: 0,
            base,
            head: VecDeque::new(),
            ring: (0, 0),
            tail: Vec::new(),
            chunks: Vec::new(),
            next_chunk: 0,
            added: Vec::new(),
            removed: Vec::new(),
            pages: Pages::default(),
        }
    }

    fn ring_id(&self, n: u64) -> u64 {
        self.base | RING_BIT | n
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Calibrated surprisal `-log10 p`. Beyond the largest raw surprisal seen, the
    /// parametric excess orders the extremes.
    pub fn surprisal(&mut self, raw: f64, src: &mut dyn PageSource) -> f64 {
        let n = self.len() as f64;
        let ge = self.count_at_least(raw, src) as f64;
        let mut s = ((n + 1.0) / (ge + 1.0)).log10();
        if let Some(mx) = self.max(src) {
            if raw > mx {
                s += raw - mx;
            }
        }
        s
    }

    /// Number of values `>= x` (total order).
    pub fn count_at_least(&mut self, x: f64, src: &mut dyn PageSource) -> usize {
        let mut n = 0;
        for c in &self.chunks {
            if ge(c.min, x) {
                n += c.len;
            } else if !lt(c.max, x) {
                let page = self.pages.get(c.id, src);
                n += page.len() - page.partition_point(|v| lt(*v, x));
            }
        }
        n += self.added.iter().filter(|v| ge(**v, x)).count();
        n.saturating_sub(self.removed.iter().filter(|v| ge(**v, x)).count())
    }

    /// The largest value (total order).
    pub fn max(&mut self, src: &mut dyn PageSource) -> Option<f64> {
        if self.len == 0 {
            return None;
        }
        let added = self
            .added
            .iter()
            .copied()
            .reduce(|a, b| if lt(a, b) { b } else { a });
        let top = match self.chunks.last() {
            Some(c) if !self.removed.iter().any(|r| ge(*r, c.max)) => Some(c.max),
            Some(_) => self.max_of_chunks(src),
            None => None,
        };
        match (top, added) {
            (Some(a), Some(b)) => Some(if lt(a, b) { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// The largest value of the chunks once the values waiting in `removed` are
    /// taken out: the chunks from the top, each value matched against those removed.
    fn max_of_chunks(&mut self, src: &mut dyn PageSource) -> Option<f64> {
        let mut removed = self.removed.clone();
        removed.sort_by(|a, b| b.total_cmp(a));
        let mut r = removed.into_iter().peekable();
        for i in (0..self.chunks.len()).rev() {
            let page = self.pages.get(self.chunks[i].id, src);
            for &v in page.iter().rev() {
                while r.peek().is_some_and(|x| lt(v, *x)) {
                    r.next();
                }
                if r.peek().is_some_and(|x| x.total_cmp(&v).is_eq()) {
                    r.next();
                } else {
                    return Some(v);
                }
            }
        }
        None
    }

    pub fn push(&mut self, x: f64, src: &mut dyn PageSource) {
        if self.len == self.cap {
            if let Some(old) = self.pop_oldest(src) {
                match self.added.iter().position(|v| v.total_cmp(&old).is_eq()) {
                    Some(i) => {
                        self.added.swap_remove(i);
                    }
                    None => self.removed.push(old),
                }
                self.len -= 1;
            }
        }
        self.tail.push(x);
        if self.tail.len() == RING_PAGE {
            let id = self.ring_id(self.ring.1);
            self.pages.create(id, std::mem::take(&mut self.tail));
            self.ring.1 += 1;
        }
        self.added.push(x);
        self.len += 1;
        if self.added.len() + self.removed.len() >= PENDING {
            self.flush(src);
        }
    }

    fn pop_oldest(&mut self, src: &mut dyn PageSource) -> Option<f64> {
        if self.head.is_empty() {
            if self.ring.0 < self.ring.1 {
                let id = self.ring_id(self.ring.0);
                self.head = self.pages.take(id, src).into();
                self.ring.0 += 1;
            } else {
                self.head = std::mem::take(&mut self.tail).into();
            }
        }
        self.head.pop_front()
    }

    /// Applies the waiting pushes and evictions to the chunks.
    fn flush(&mut self, src: &mut dyn PageSource) {
        let mut removed = std::mem::take(&mut self.removed);
        removed.sort_by(|a, b| a.total_cmp(b));
        for r in removed {
            // Equal values may span chunks: any chunk holding one will do.
            let found = (0..self.chunks.len()).find_map(|i| {
                let c = self.chunks[i];
                if lt(r, c.min) || lt(c.max, r) || c.len == 0 {
                    return None;
                }
                let page = self.pages.get_mut(c.id, src);
                let at = page.partition_point(|v| lt(*v, r));
                (page.get(at).is_some_and(|v| v.total_cmp(&r).is_eq())).then(|| {
                    page.remove(at);
                    i
                })
            });
            match found {
                Some(i) => self.refresh(i, src),
                // The directory and the chunks disagree: a state not to trust.
                None => self.pages.mark_broken(),
            }
        }
        let mut added = std::mem::take(&mut self.added);
        added.sort_by(|a, b| a.total_cmp(b));
        for a in added {
            if self.chunks.is_empty() {
                let id = self.base | self.next_chunk;
                self.next_chunk += 1;
                self.pages.create(id, Vec::with_capacity(CHUNK_MAX + 1));
                self.chunks.push(Chunk {
                    id,
                    len: 0,
                    min: a,
                    max: a,
                });
            }
            // The last chunk whose smallest value is not above `a` (or the first).
            let i = self
                .chunks
                .partition_point(|c| !lt(a, c.min))
                .saturating_sub(1);
            let page = self.pages.get_mut(self.chunks[i].id, src);
            let at = page.partition_point(|v| lt(*v, a));
            page.insert(at, a);
            self.refresh(i, src);
            if self.chunks[i].len > CHUNK_MAX {
                self.split(i, src);
            }
        }
        self.tidy(src);
    }

    /// Updates chunk `i`'s directory entry from its page. An empty chunk keeps its
    /// old bounds until [`Self::tidy`] drops it: they still order it among the others.
    fn refresh(&mut self, i: usize, src: &mut dyn PageSource) {
        let page = self.pages.get(self.chunks[i].id, src);
        let c = &mut self.chunks[i];
        c.len = page.len();
        if let (Some(&lo), Some(&hi)) = (page.first(), page.last()) {
            c.min = lo;
            c.max = hi;
        }
    }

    fn split(&mut self, i: usize, src: &mut dyn PageSource) {
        let page = self.pages.get_mut(self.chunks[i].id, src);
        let upper = page.split_off(page.len() / 2);
        let id = self.base | self.next_chunk;
        self.next_chunk += 1;
        self.pages.create(id, upper);
        self.chunks.insert(
            i + 1,
            Chunk {
                id,
                len: 0,
                min: 0.0,
                max: 0.0,
            },
        );
        self.refresh(i, src);
        self.refresh(i + 1, src);
    }

    /// Drops empty chunks and merges neighbours that fit in half a chunk together,
    /// so that churn cannot leave many small chunks.
    fn tidy(&mut self, src: &mut dyn PageSource) {
        let mut i = 0;
        while i < self.chunks.len() {
            if self.chunks[i].len == 0 {
                let c = self.chunks.remove(i);
                let _ = self.pages.take(c.id, src);
                continue;
            }
            if i + 1 < self.chunks.len()
                && self.chunks[i].len + self.chunks[i + 1].len <= CHUNK_MAX / 2
            {
                let next = self.chunks.remove(i + 1);
                let upper = self.pages.take(next.id, src);
                self.pages.get_mut(self.chunks[i].id, src).extend(upper);
                self.refresh(i, src);
                continue;
            }
            i += 1;
        }
    }

    pub fn broken(&self) -> bool {
        self.pages.broken()
    }

    pub fn drain_changes(&mut self, out: &mut PageChanges) {
        self.pages.drain_changes(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::pages::{MemoryPages as Store, NoPages, PageData};
    use super::*;

    /// A copy of `c` as a decoded state has it: the directory and buffers, no page.
    fn reloaded(c: &Calibrator) -> Calibrator {
        Calibrator {
            pages: Pages::stored(),
            ..c.clone()
        }
    }

    /// Against a plain sorted window, over random pushes with many ties, through
    /// stores and reloads at random points: the same counts and maxima throughout.
    #[test]
    fn paged_ranks_match_a_sorted_window_through_stores_and_reloads() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for cap in [1usize, 5, 63, 64, 65, 500, 3000] {
            let mut c = Calibrator::new(cap, 3 << 40);
            let mut store = Store::default();
            let mut ring: VecDeque<f64> = VecDeque::new();
            for i in 0..(cap * 4 + 700) {
                let v = match rnd() % 10 {
                    0 => 0.0,
                    1 => (rnd() % 4) as f64,
                    2 => f64::INFINITY,
                    3 => -0.0,
                    _ => (rnd() % 100_000) as f64 / 977.0,
                };
                let q = (rnd() % 120_000) as f64 / 977.0;
                let mut sorted: Vec<f64> = ring.iter().copied().collect();
                sorted.sort_by(|a, b| a.total_cmp(b));
                let want = sorted.len() - sorted.partition_point(|s| lt(*s, q));
                assert_eq!(
                    c.count_at_least(q, &mut store),
                    want,
                    "cap {cap} sample {i}"
                );
                assert_eq!(
                    c.count_at_least(v, &mut store),
                    sorted.len() - sorted.partition_point(|s| lt(*s, v))
                );
                assert_eq!(
                    c.max(&mut store),
                    sorted.last().copied(),
                    "cap {cap} sample {i}"
                );
                c.push(v, &mut store);
                ring.push_back(v);
                if ring.len() > cap {
                    ring.pop_front();
                }
                assert_eq!(c.len(), ring.len());
                if rnd() % 37 == 0 {
                    let mut changes = PageChanges::default();
                    c.drain_changes(&mut changes);
                    store.apply(changes, false);
                    c = reloaded(&c);
                }
                assert!(!c.broken());
            }
            // The directory stays small: no run of tiny chunks.
            let most = 2 * (cap + PENDING).div_ceil(CHUNK_MAX / 2) + 1;
            assert!(c.chunks.len() <= most, "{} chunks", c.chunks.len());
        }
    }

    #[test]
    fn a_missing_page_breaks_the_state_instead_of_answering_wrong() {
        let mut c = Calibrator::new(1000, 0);
        for i in 0..900 {
            c.push(i as f64, &mut NoPages);
        }
        let mut r = reloaded(&c);
        // None of its pages were stored.
        r.count_at_least(500.0, &mut Store::default());
        assert!(r.broken());
        assert_eq!(Vec::<f64>::decode(&[0u8; 8]), Some(vec![0.0]));
    }
}
