//! Integration tests: the real `logwarden` binary on real inputs (logs written by the
//! real loguru, real SQLite files), with a fake ntfy server and fake `claude`
//! executables, each test in its own temporary directory.

mod fake_anthropic;
mod util;

mod actions;
mod anthropic;
mod chaos;
mod claude;
mod claude_real;
mod cli;
mod clock;
mod config;
// Ack and Mute from the phone
mod control;
mod crash;
// pages sent once: publishes in doubt are checked on the topic
mod delivery;
// a replay over several runs: which incidents open, at which priority
mod detection;
// noise stays quiet; escalation rules
mod escalate;
mod evidence;
mod hostile;
mod ignore;
mod mcp;
mod memory;
mod metrics;
mod ntfy;
// log rates as metric series
mod rates;
mod readme;
mod redaction;
mod reset;
mod rotation;
mod sanitize;
mod scripts;
// values of several words are one value; stored groups survive a change of masking
mod signatures;
mod sources;
// incidents that say the truth: severities, titles, front matter, metric pages
mod truth;
mod watch;
// Install, doctor, status, self-monitoring
mod doctor;
mod install;
mod installed;
mod selfmon;
