//! The detector's state as stored between runs, so that a run feeds it only the
//! samples it has not seen (see `metrics::detectors`).
//!
//! The state is in two parts. What every sample reads (the trailing windows of
//! values, differences and residuals; the calibrators' directories and buffers) is
//! one blob, encoded here. What a sample seldom touches (a calibrator's sorted chunks
//! and arrival-order pages, the seasonal buckets: most of the bytes once the windows
//! fill) is in pages stored apart (see [`super::pages`]), so that the blob, and a
//! run's cost, stop growing with the history.
//!
//! Long runs of floats as JSON numbers would take ~20 bytes each and a costly parse.
//! The blob is therefore JSON for its shape and scalars, followed by the windows'
//! little-endian bytes, which the JSON points into (offset and length):
//! `[JSON length: u64 LE][JSON][bytes]`. A rolling window is stored in arrival order
//! only, and sorted on loading; a calibrator's sorted chunks are stored sorted.

use std::cell::RefCell;
use std::collections::VecDeque;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use statrs::distribution::Normal;

use super::calibrator::{Calibrator, Chunk};
use super::pages::Pages;
use super::RollingWindow;

/// Changes whenever the detector's code (or this encoding) changes: a stored state
/// from another build is rebuilt from the samples, never trusted.
pub const CODE_HASH: u64 = fnv(
    fnv(
        fnv(
            fnv(FNV_OFFSET, include_str!("../anomaly.rs").as_bytes()),
            include_str!("state.rs").as_bytes(),
        ),
        include_str!("calibrator.rs").as_bytes(),
    ),
    include_str!("pages.rs").as_bytes(),
);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, usable in a constant.
pub const fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

pub(super) fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("standard normal")
}

thread_local! {
    /// The bytes section of the state being written or read. Kept between states so
    /// that loading one reuses the memory of the last instead of faulting in fresh
    /// pages for every megabyte.
    static BYTES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Where a window's numbers are in the bytes section: offset and count.
type Span = (usize, usize);

/// The stored form of a state (see the module documentation).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    BYTES.with(|b| b.borrow_mut().clear());
    let json = serde_json::to_vec(value).expect("detector state serialises");
    BYTES.with(|b| {
        let bytes = b.borrow();
        let mut out = Vec::with_capacity(8 + json.len() + bytes.len());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&bytes);
        out
    })
}

/// A state from its stored form; `None` when it is not one.
pub fn decode<T: DeserializeOwned>(blob: &[u8]) -> Option<T> {
    let n = u64::from_le_bytes(blob.get(..8)?.try_into().ok()?) as usize;
    let json = blob.get(8..8usize.checked_add(n)?)?;
    BYTES.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        b.extend_from_slice(&blob[8 + n..]);
    });
    let out = serde_json::from_slice(json).ok();
    BYTES.with(|b| b.borrow_mut().clear());
    out
}

fn put<const N: usize>(v: impl Iterator<Item = [u8; N]>) -> Span {
    BYTES.with(|b| {
        let mut b = b.borrow_mut();
        let at = b.len();
        let mut n = 0;
        for x in v {
            b.extend_from_slice(&x);
            n += 1;
        }
        (at, n)
    })
}

fn take<E: serde::de::Error, T, const N: usize>(
    (at, n): Span,
    f: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, E> {
    BYTES.with(|b| {
        let b = b.borrow();
        let end = n
            .checked_mul(N)
            .and_then(|len| at.checked_add(len))
            .filter(|end| *end <= b.len())
            .ok_or_else(|| E::custom("a window lies outside the stored bytes"))?;
        Ok(b[at..end]
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("N bytes")))
            .collect())
    })
}

/// A window as stored: its values in arrival order only. The sorted order is made
/// again on loading (a sort of at most a window, some microseconds): storing it too
/// doubled the state that every run writes back whole.
#[derive(Serialize, Deserialize)]
struct Window {
    cap: usize,
    ring: Span,
}

impl Serialize for RollingWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Window {
            cap: self.cap,
            ring: put(self.ring.iter().map(|v| v.to_le_bytes())),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RollingWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Window::deserialize(d)?;
        let ring: VecDeque<f64> = take::<D::Error, _, 8>(w.ring, f64::from_le_bytes)?.into();
        if w.cap == 0 || ring.len() > w.cap {
            return Err(D::Error::custom("a stored window is inconsistent"));
        }
        // The order the window keeps as values come and go (`total_cmp`, a total order:
        // values it ranks equal are the same bits), so the same array.
        let mut sorted: Vec<f64> = ring.iter().copied().collect();
        sorted.sort_unstable_by(f64::total_cmp);
        let mut out = RollingWindow::new(w.cap);
        out.ring = ring;
        out.sorted = sorted;
        Ok(out)
    }
}

fn floats(v: impl Iterator<Item = f64>) -> Span {
    put(v.map(f64::to_le_bytes))
}

fn get_floats<E: serde::de::Error>(span: Span) -> Result<Vec<f64>, E> {
    take::<E, _, 8>(span, f64::from_le_bytes)
}

/// A calibrator: its scalars, and its buffers and chunk directory as spans.
#[derive(Serialize, Deserialize)]
struct Calib {
    cap: usize,
    len: usize,
    base: u64,
    head: Span,
    ring: (u64, u64),
    tail: Span,
    chunk_ids: Span,
    chunk_lens: Span,
    chunk_mins: Span,
    chunk_maxs: Span,
    next_chunk: u64,
    added: Span,
    removed: Span,
}

impl Serialize for Calibrator {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = &self.chunks;
        Calib {
            cap: self.cap,
            len: self.len,
            base: self.base,
            head: floats(self.head.iter().copied()),
            ring: self.ring,
            tail: floats(self.tail.iter().copied()),
            chunk_ids: put(c.iter().map(|c| c.id.to_le_bytes())),
            chunk_lens: put(c.iter().map(|c| (c.len as u64).to_le_bytes())),
            chunk_mins: floats(c.iter().map(|c| c.min)),
            chunk_maxs: floats(c.iter().map(|c| c.max)),
            next_chunk: self.next_chunk,
            added: floats(self.added.iter().copied()),
            removed: floats(self.removed.iter().copied()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Calibrator {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let c = Calib::deserialize(d)?;
        let ids = take::<D::Error, _, 8>(c.chunk_ids, u64::from_le_bytes)?;
        let lens = take::<D::Error, _, 8>(c.chunk_lens, u64::from_le_bytes)?;
        let mins = get_floats::<D::Error>(c.chunk_mins)?;
        let maxs = get_floats::<D::Error>(c.chunk_maxs)?;
        let head: VecDeque<f64> = get_floats::<D::Error>(c.head)?.into();
        let tail = get_floats::<D::Error>(c.tail)?;
        let added = get_floats::<D::Error>(c.added)?;
        let removed = get_floats::<D::Error>(c.removed)?;
        if ids.len() != lens.len() || ids.len() != mins.len() || ids.len() != maxs.len() {
            return Err(D::Error::custom("a stored chunk directory is inconsistent"));
        }
        let chunks: Vec<Chunk> = (0..ids.len())
            .map(|i| Chunk {
                id: ids[i],
                len: lens[i] as usize,
                min: mins[i],
                max: maxs[i],
            })
            .collect();
        let in_chunks: usize = chunks.iter().map(|c| c.len).sum();
        let ring_len = c.ring.1.checked_sub(c.ring.0).and_then(|n| {
            usize::try_from(n)
                .ok()?
                .checked_mul(super::calibrator::RING_PAGE)
        });
        let arrival = ring_len.map(|r| r + head.len() + tail.len());
        if c.cap == 0
            || c.len > c.cap
            || arrival != Some(c.len)
            || in_chunks + added.len() != c.len + removed.len()
            || chunks
                .windows(2)
                .any(|p| p[0].max.total_cmp(&p[1].min).is_gt())
        {
            return Err(D::Error::custom("a stored calibrator is inconsistent"));
        }
        Ok(Calibrator {
            cap: c.cap,
            len: c.len,
            base: c.base,
            head,
            ring: c.ring,
            tail,
            chunks,
            next_chunk: c.next_chunk,
            added,
            removed,
            pages: Pages::stored(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::pages::MemoryPages as Store;
    use super::super::{AnomalyConfig, AnomalyDetector};

    /// A detector stored (blob and pages) and loaded again every few samples scores
    /// every sample exactly as one that never left memory, through windows, seasonal
    /// buckets and calibrators that fill and evict.
    #[test]
    fn a_stored_detector_goes_on_exactly_like_the_original() {
        let small = AnomalyConfig {
            window: 120,
            calib_window: 300,
            season_days: 3,
            min_season_days: 2,
            season_weeks: 2,
            min_season_weeks: 1,
            ..AnomalyConfig::default()
        };
        for cfg in [AnomalyConfig::default(), small] {
            let mut a = AnomalyDetector::new(cfg.clone());
            let mut x = 0x9e37_79b9_u64;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut store = Store::default();
            let mut b: Option<AnomalyDetector> = None;
            let mut next_save = 1000;
            for i in 0..4000i64 {
                // Every 15 minutes, a day shape, noise, a few spikes and a shift.
                let t = 1_700_000_000 + 900 * i;
                let day = ((t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin();
                let mut v = 50.0 + 10.0 * day + (rnd() % 1000) as f64 / 100.0;
                if rnd() % 97 == 0 {
                    v += 60.0;
                }
                if i > 3000 {
                    v += 15.0;
                }
                let want = a.observe(t, v);
                if let Some(d) = b.as_mut() {
                    assert_eq!(d.observe_with(t, v, &mut store), want, "sample {i}");
                    assert!(!d.broken());
                }
                if i == next_save {
                    // The first save is of a state that never left memory: whole.
                    let whole = b.is_none();
                    let mut d = b.take().unwrap_or_else(|| a.clone());
                    let blob = super::encode(&d);
                    store.apply(d.take_page_changes(), whole);
                    b = Some(super::decode(&blob).unwrap());
                    next_save += 1 + (rnd() % 40) as i64;
                }
            }
            assert!(store.0.len() > 30, "{} pages", store.0.len());
            // What is stored is what the original holds: no page lost, none left over.
            let mut whole = Store::default();
            whole.apply(a.clone().take_page_changes(), true);
            let mut d = b.take().unwrap();
            store.apply(d.take_page_changes(), false);
            assert!(
                store.0 == whole.0,
                "the stored pages differ from the original's"
            );
            let b = Some(d);
            let blob = super::encode(b.as_ref().unwrap());
            // The windows in arrival order only (46 KB here; 78 KB with their sorted
            // copies, which every run wrote back).
            assert!(blob.len() < 50_000, "{} bytes", blob.len());
            // A window pointing past the bytes is refused, not read.
            let mut cut = blob.clone();
            cut.truncate(cut.len() - 8);
            assert!(super::decode::<AnomalyDetector>(&cut).is_none());
        }
        assert!(super::decode::<AnomalyDetector>(b"{}").is_none());
    }
}
