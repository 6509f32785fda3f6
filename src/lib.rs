//! logwarden: the first five minutes of every incident, for a small team's VPS.
//!
//! One `logwarden run` reads what is new in the logs, groups warnings and errors by
//! signature, drops what the ignore rules match, and for what is new asks an
//! investigator, writes an incident file and pushes an ntfy notification. The
//! stages live in one module each; [`pipeline`] strings them together.

pub mod actions;
pub mod cli;
pub mod clock;
pub mod config;
pub mod duration;
pub mod fsio;
pub mod ignore;
pub mod incident;
pub mod investigate;
pub mod lock;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod process;
pub mod redact;
pub mod sanitize;
pub mod scripts;
pub mod signature;
pub mod source;
pub mod store;
pub mod timespec;
pub mod trigger;
// Operations: install, doctor, status, self-monitoring.
pub mod doctor;
pub mod install;
pub mod selfmon;
pub mod status;
