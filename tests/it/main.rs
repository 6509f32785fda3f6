//! Integration tests: the real `logwarden` binary on real inputs (logs written by the
//! real loguru, real SQLite files), with a fake ntfy server and fake `claude`
//! executables, each test in its own temporary directory.

mod util;

mod claude;
mod config;
mod crash;
mod ignore;
mod ntfy;
mod watch;
// issue 8: install, doctor, status, self-monitoring
mod doctor;
mod install;
mod selfmon;
