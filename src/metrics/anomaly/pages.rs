//! The parts of a detector's state that a sample seldom touches, kept as small pages
//! apart from the rest, so that a run loads and rewrites only the pages its samples
//! touch: a calibrator's sorted chunks and arrival-order pages, a seasonal slot's
//! values. A detector that never left memory holds all its pages; one decoded from the
//! store loads each page from a [`PageSource`] the first time it is touched.
//!
//! A page the state says exists but the source cannot give marks the state broken
//! (`Pages::broken`): its owner then rebuilds it from the stored samples.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// Where a decoded state's pages come from.
pub trait PageSource {
    /// The stored bytes of page `id`; `None` when it is missing or unreadable.
    fn load(&mut self, id: u64) -> Option<Vec<u8>>;
}

/// The source of a state that never left memory: it has no stored pages.
pub struct NoPages;

impl PageSource for NoPages {
    fn load(&mut self, _: u64) -> Option<Vec<u8>> {
        None
    }
}

/// A page's content and its stored form (little-endian numbers).
pub trait PageData: Default + Clone {
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Option<Self>;
}

impl PageData for Vec<f64> {
    fn encode(&self) -> Vec<u8> {
        self.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        bytes.len().is_multiple_of(8).then(|| {
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        })
    }
}

impl PageData for VecDeque<(i64, f64)> {
    fn encode(&self) -> Vec<u8> {
        self.iter()
            .flat_map(|(p, v)| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&p.to_le_bytes());
                b[8..].copy_from_slice(&v.to_le_bytes());
                b
            })
            .collect()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        bytes.len().is_multiple_of(16).then(|| {
            bytes
                .chunks_exact(16)
                .map(|c| {
                    (
                        i64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                        f64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
                    )
                })
                .collect()
        })
    }
}

/// What a run changed in a state's pages: pages to write, pages to delete.
#[derive(Debug, Default)]
pub struct PageChanges {
    pub put: Vec<(u64, Vec<u8>)>,
    pub remove: Vec<u64>,
}

/// The pages of one owner (a calibrator, a seasonal profile), by id.
#[derive(Debug, Clone, Default)]
pub struct Pages<T> {
    /// Whether pages missing from `cache` are in a store (a decoded state) rather
    /// than nowhere (a state that never left memory).
    stored: bool,
    cache: HashMap<u64, T>,
    dirty: BTreeSet<u64>,
    removed: BTreeSet<u64>,
    broken: bool,
}

impl<T: PageData> Pages<T> {
    /// The pages of a decoded state: all of them in the store.
    pub fn stored() -> Self {
        Pages {
            stored: true,
            cache: HashMap::new(),
            dirty: BTreeSet::new(),
            removed: BTreeSet::new(),
            broken: false,
        }
    }

    fn load(&mut self, id: u64, src: &mut dyn PageSource) -> &mut T {
        if !self.cache.contains_key(&id) {
            let page = if self.stored {
                match src.load(id).as_deref().map(T::decode) {
                    Some(Some(p)) => p,
                    _ => {
                        self.broken = true;
                        T::default()
                    }
                }
            } else {
                T::default()
            };
            self.cache.insert(id, page);
        }
        self.cache.get_mut(&id).expect("just loaded")
    }

    /// Page `id` to read.
    pub fn get(&mut self, id: u64, src: &mut dyn PageSource) -> &T {
        self.load(id, src)
    }

    /// Page `id` to change: it is written back with the state.
    pub fn get_mut(&mut self, id: u64, src: &mut dyn PageSource) -> &mut T {
        if self.stored {
            self.dirty.insert(id);
        }
        self.load(id, src)
    }

    /// A page that did not exist before.
    pub fn create(&mut self, id: u64, page: T) {
        if self.stored {
            self.removed.remove(&id);
            self.dirty.insert(id);
        }
        self.cache.insert(id, page);
    }

    /// Page `id`, deleted from the state.
    pub fn take(&mut self, id: u64, src: &mut dyn PageSource) -> T {
        self.load(id, src);
        if self.stored {
            self.dirty.remove(&id);
            self.removed.insert(id);
        }
        self.cache.remove(&id).expect("just loaded")
    }

    /// The state's own bookkeeping disagrees with its pages.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// A page the state said it had could not be loaded, or disagreed with it.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Moves what changed since the state was decoded into `out`; for a state that
    /// never left memory (whose changes are not tracked), every page it has: it is
    /// stored whole, in place of any it replaces.
    pub fn drain_changes(&mut self, out: &mut PageChanges) {
        if !self.stored {
            out.put
                .extend(self.cache.iter().map(|(id, p)| (*id, p.encode())));
            return;
        }
        for id in std::mem::take(&mut self.dirty) {
            if let Some(p) = self.cache.get(&id) {
                out.put.push((id, p.encode()));
            }
        }
        out.remove.extend(std::mem::take(&mut self.removed));
    }
}

/// Pages kept in memory as the state database keeps them, for tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryPages(pub HashMap<u64, Vec<u8>>);

#[cfg(test)]
impl PageSource for MemoryPages {
    fn load(&mut self, id: u64) -> Option<Vec<u8>> {
        self.0.get(&id).cloned()
    }
}

#[cfg(test)]
impl MemoryPages {
    /// Stores what a run changed; `whole`: in place of every page (a state made anew).
    pub fn apply(&mut self, c: PageChanges, whole: bool) {
        if whole {
            self.0.clear();
        }
        for id in c.remove {
            self.0.remove(&id);
        }
        self.0.extend(c.put);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use MemoryPages as Map;

    #[test]
    fn pages_load_once_write_back_what_changed_and_report_a_missing_one() {
        let mut src = Map(HashMap::from([
            (1, vec![1.5f64, 2.5].encode()),
            (2, vec![7.0f64].encode()),
            (3, vec![1u8, 2, 3]),
        ]));
        let mut p: Pages<Vec<f64>> = Pages::stored();
        assert_eq!(p.get(1, &mut src), &vec![1.5, 2.5]);
        src.0.clear();
        // Loaded once: the source is not asked again.
        p.get_mut(1, &mut src).push(3.5);
        p.create(9, vec![0.0]);
        assert!(!p.broken());
        let mut out = PageChanges::default();
        p.drain_changes(&mut out);
        let put: HashMap<_, _> = out.put.into_iter().collect();
        assert_eq!(Vec::<f64>::decode(&put[&1]).unwrap(), vec![1.5, 2.5, 3.5]);
        assert_eq!(Vec::<f64>::decode(&put[&9]).unwrap(), vec![0.0]);
        assert_eq!(put.len(), 2);
        // A page the source lacks (or holds torn) breaks the state.
        let mut src = Map(HashMap::from([(3, vec![1u8, 2, 3])]));
        let mut p: Pages<Vec<f64>> = Pages::stored();
        assert!(p.get(3, &mut src).is_empty());
        assert!(p.broken());
        let mut p: Pages<VecDeque<(i64, f64)>> = Pages::stored();
        let _ = p.take(4, &mut src);
        assert!(p.broken());
        let mut out = PageChanges::default();
        p.drain_changes(&mut out);
        assert_eq!(out.remove, vec![4]);
    }
}
