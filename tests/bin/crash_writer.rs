//! Child process of the crash test: saves live states and backups in a loop
//! and reports each commit on stdout *after* it returns, until it is killed.
//!
//! Lines: `L <counter>` live save committed; `B <id> <kind> <counter>` backup
//! committed; `R` retention about to run.

#[path = "../common.rs"]
mod common;

use common::{ENGINES, KEEP_LAST_PERIODIC, WriterState};
use engram_core::{BackupKind, EngineState, Metrics, NewBackup, RetentionPolicy, Store, codec};
use std::io::Write;

fn main() {
    if let Err(e) = run() {
        eprintln!("crash-writer: {e}");
        std::process::exit(1);
    }
}

fn run() -> engram_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let db = args
        .next()
        .ok_or_else(|| engram_core::Error::InvalidInput("usage: crash-writer DB START".into()))?;
    let start: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut store = Store::open(&db)?;
    let out = std::io::stdout();
    let policy = RetentionPolicy::last_periodic(KEEP_LAST_PERIODIC);
    for counter in start.. {
        let states: Vec<EngineState> = ENGINES
            .iter()
            .map(|e| {
                Ok(EngineState {
                    engine: e.to_string(),
                    state: codec::encode(1, &WriterState::new(e, counter))?,
                    metrics: Metrics::from([("counter".to_string(), counter as f64)]),
                })
            })
            .collect::<engram_core::Result<_>>()?;
        store.save_live(&states, counter as i64)?;
        writeln!(out.lock(), "L {counter}").ok();
        if counter % 3 == 0 {
            let kind = if counter % 2 == 0 {
                BackupKind::Periodic
            } else {
                BackupKind::Manual
            };
            let id = if counter % 4 == 0 {
                store.backup_live(kind, counter as i64, None, None)?
            } else {
                store.create_backup(&NewBackup {
                    kind,
                    created_at_ms: counter as i64,
                    label: Some(format!("counter {counter}")),
                    breakthrough: None,
                    states: &states,
                })?
            };
            writeln!(out.lock(), "B {id} {kind} {counter}").ok();
        }
        if counter % 10 == 0 {
            writeln!(out.lock(), "R").ok();
            store.apply_retention(&policy)?;
        }
    }
    Ok(())
}
