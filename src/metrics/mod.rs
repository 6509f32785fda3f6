//! Metrics: curated scripts print samples, logwarden stores them and checks them.
pub mod anomaly;
