//! The detector's state as stored between runs, so that a run feeds it only the
//! samples it has not seen (see `metrics::detectors`).
//!
//! Most of the state is long windows of floats (values, residuals, calibration
//! surprisals, seasonal buckets). As JSON numbers they would take ~20 bytes each and a
//! costly parse; they are stored as base64 of their little-endian bytes instead, both
//! in arrival and in sorted order, so loading is a copy and never a sort.

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use serde::de::Error as _;
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

fn put_f64(v: impl Iterator<Item = f64>) -> String {
    let bytes: Vec<u8> = v.flat_map(f64::to_le_bytes).collect();
    B64.encode(bytes)
}

fn put_i64(v: impl Iterator<Item = i64>) -> String {
    let bytes: Vec<u8> = v.flat_map(i64::to_le_bytes).collect();
    B64.encode(bytes)
}

fn take<E: serde::de::Error>(s: &str) -> Result<Vec<[u8; 8]>, E> {
    let bytes = B64.decode(s).map_err(E::custom)?;
    if bytes.len() % 8 != 0 {
        return Err(E::custom("a window's bytes are not whole numbers"));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| c.try_into().expect("8 bytes"))
        .collect())
}

#[derive(Serialize, Deserialize)]
struct Window {
    cap: usize,
    ring: String,
    sorted: String,
}

impl Serialize for RollingWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Window {
            cap: self.cap,
            ring: put_f64(self.ring.iter().copied()),
            sorted: put_f64(self.sorted.iter().copied()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RollingWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Window::deserialize(d)?;
        let ring: VecDeque<f64> = take::<D::Error>(&w.ring)?
            .into_iter()
            .map(f64::from_le_bytes)
            .collect();
        let sorted: Vec<f64> = take::<D::Error>(&w.sorted)?
            .into_iter()
            .map(f64::from_le_bytes)
            .collect();
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

#[derive(Serialize, Deserialize)]
struct Bucket {
    periods: String,
    values: String,
}

impl Serialize for SeasonBucket {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Bucket {
            periods: put_i64(self.items.iter().map(|p| p.0)),
            values: put_f64(self.items.iter().map(|p| p.1)),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeasonBucket {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = Bucket::deserialize(d)?;
        let periods = take::<D::Error>(&b.periods)?;
        let values = take::<D::Error>(&b.values)?;
        if periods.len() != values.len() {
            return Err(D::Error::custom("a stored seasonal bucket is inconsistent"));
        }
        Ok(SeasonBucket {
            items: periods
                .into_iter()
                .zip(values)
                .map(|(p, v)| (i64::from_le_bytes(p), f64::from_le_bytes(v)))
                .collect(),
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
        let blob = serde_json::to_vec(&a).unwrap();
        let mut b: AnomalyDetector = serde_json::from_slice(&blob).unwrap();
        for i in 3000..3500 {
            let (t, v) = next(i);
            let v = if i == 3400 { 95.0 } else { v };
            assert_eq!(a.observe(t, v), b.observe(t, v), "sample {i}");
        }
        assert!(serde_json::from_slice::<AnomalyDetector>(b"{}").is_err());
    }
}
