//! The detector's state as stored between runs, so that a run feeds it only the
//! samples it has not seen (see `metrics::detectors`).
//!
//! Most of the state is long windows of floats (values, residuals, calibration
//! surprisals, seasonal buckets). As JSON numbers they would take ~20 bytes each and a
//! costly parse. A stored state is therefore JSON for its shape and scalars, followed
//! by the windows' little-endian bytes, which the JSON points into (offset and length):
//! `[JSON length: u64 LE][JSON][bytes]`. Windows are stored in arrival and in sorted
//! order, so loading is a copy and never a sort (positions into the sorted order
//! instead of the arrival order's values made the state smaller but slower to load);
//! a seasonal bucket's periods are stored as runs.

use std::cell::RefCell;
use std::collections::VecDeque;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use statrs::distribution::Normal;

use super::{RollingWindow, SeasonBucket};

/// Changes whenever the detector's code (or this encoding) changes: a stored state
/// from another build is rebuilt from the samples, never trusted.
pub const CODE_HASH: u64 = fnv(
    fnv(FNV_OFFSET, include_str!("../anomaly.rs").as_bytes()),
    include_str!("state.rs").as_bytes(),
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

#[derive(Serialize, Deserialize)]
struct Window {
    cap: usize,
    ring: Span,
    sorted: Span,
}

impl Serialize for RollingWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Window {
            cap: self.cap,
            ring: put(self.ring.iter().map(|v| v.to_le_bytes())),
            sorted: put(self.sorted.iter().map(|v| v.to_le_bytes())),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RollingWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Window::deserialize(d)?;
        let ring: VecDeque<f64> = take::<D::Error, _, 8>(w.ring, f64::from_le_bytes)?.into();
        let sorted: Vec<f64> = take::<D::Error, _, 8>(w.sorted, f64::from_le_bytes)?;
        if w.cap == 0
            || ring.len() != sorted.len()
            || ring.len() > w.cap
            || sorted.windows(2).any(|p| p[0].total_cmp(&p[1]).is_gt())
        {
            return Err(D::Error::custom("a stored window is inconsistent"));
        }
        let mut out = RollingWindow::new(w.cap);
        out.ring = ring;
        out.sorted = sorted;
        Ok(out)
    }
}

/// A seasonal bucket: its values, and their periods as runs (a period's samples are
/// consecutive), each run a period and its length.
#[derive(Serialize, Deserialize)]
struct Bucket {
    runs: Span,
    values: Span,
}

impl Serialize for SeasonBucket {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for &(p, _) in &self.items {
            match runs.last_mut() {
                Some((q, n)) if *q == p => *n += 1,
                _ => runs.push((p, 1)),
            }
        }
        Bucket {
            runs: put(runs
                .iter()
                .flat_map(|&(p, n)| [p.to_le_bytes(), n.to_le_bytes()])),
            values: put(self.items.iter().map(|p| p.1.to_le_bytes())),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeasonBucket {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = Bucket::deserialize(d)?;
        let runs = take::<D::Error, _, 8>(b.runs, i64::from_le_bytes)?;
        let values = take::<D::Error, _, 8>(b.values, f64::from_le_bytes)?;
        let mut periods = Vec::with_capacity(values.len());
        for r in runs.chunks(2) {
            match *r {
                [p, n] if n > 0 && (n as usize) <= values.len() - periods.len() => {
                    periods.extend(std::iter::repeat_n(p, n as usize))
                }
                _ => return Err(D::Error::custom("a stored seasonal bucket is inconsistent")),
            }
        }
        if periods.len() != values.len() {
            return Err(D::Error::custom("a stored seasonal bucket is inconsistent"));
        }
        Ok(SeasonBucket {
            items: periods.into_iter().zip(values).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AnomalyConfig, AnomalyDetector};

    #[test]
    fn a_stored_detector_goes_on_exactly_like_the_original() {
        let mut a = AnomalyDetector::new(AnomalyConfig::default());
        let mut x = 0x9e37_79b9_u64;
        let mut next = |i: i64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (1_700_000_000 + 300 * i, 50.0 + (x % 1000) as f64 / 100.0)
        };
        for i in 0..3000 {
            let (t, v) = next(i);
            a.observe(t, v);
        }
        let blob = super::encode(&a);
        let mut b: AnomalyDetector = super::decode(&blob).unwrap();
        for i in 3000..3500 {
            let (t, v) = next(i);
            let v = if i == 3400 { 95.0 } else { v };
            assert_eq!(a.observe(t, v), b.observe(t, v), "sample {i}");
        }
        assert!(super::decode::<AnomalyDetector>(b"{}").is_none());
        // A window pointing past the bytes is refused, not read.
        let mut cut = blob.clone();
        cut.truncate(cut.len() - 8);
        assert!(super::decode::<AnomalyDetector>(&cut).is_none());
    }
}
