//! `logwarden signatures`: the signature and template of each record read on stdin.

use std::process::ExitCode;

use super::{load, ConfigArg};

pub(super) fn print(config: &ConfigArg) -> anyhow::Result<ExitCode> {
    let (miner, levels) = signatures_state(config)?;
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    crate::signature::print_signatures(
        stdin,
        crate::sanitize::Terminal::new(std::io::BufWriter::new(stdout)),
        miner,
        &levels,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The templates `signatures` starts from: the watcher's (read-only; nothing is saved)
/// when a config is named, so the ids printed are the ones its incidents and rules
/// carry; else none (a fresh state).
fn signatures_state(
    arg: &ConfigArg,
) -> anyhow::Result<(
    crate::signature::Miner,
    std::collections::BTreeMap<String, u32>,
)> {
    let named = arg.config.is_some() || std::env::var_os("LOGWARDEN_CONFIG").is_some();
    if !named {
        return Ok((crate::signature::Miner::new(), Default::default()));
    }
    let config = load(arg)?;
    let levels = config
        .sources
        .first()
        .map(|s| s.levels.clone())
        .unwrap_or_default();
    let db = config.database_path();
    if !db.exists() {
        return Ok((crate::signature::Miner::new(), levels));
    }
    let store = crate::store::Store::open_read_only(&db)?;
    Ok((crate::signature::Miner::import(store.templates()?), levels))
}
