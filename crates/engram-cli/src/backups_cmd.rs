//! `engram status` and `engram backups …`: the store, read while the engines
//! run, changed only when no other process holds the data directory.

use crate::{open_read, open_write};
use clap::Subcommand;
use engram_core::snapshot::{self, SnapshotFormat};
use engram_core::{BackupInfo, BackupKind, BackupQuery, Error, Result, rfc3339};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum BackupsCommand {
    /// List backups, newest first.
    List {
        #[arg(long)]
        json: bool,
        /// Only this kind (initial, periodic, breakthrough, manual, pre-restore, imported).
        #[arg(long)]
        kind: Option<String>,
        /// Only backups holding this engine.
        #[arg(long)]
        engine: Option<String>,
        /// At most this many (default: all).
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Take a manual backup of the saved live state.
    Create {
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup (or one engine from it); a pre-restore backup is taken first.
    Restore {
        id: i64,
        #[arg(long)]
        engine: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export a backup to a portable file.
    Export {
        id: i64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Import a snapshot file as an `imported` backup.
    Import {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Verify the database and every stored state.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Pin a backup: retention never deletes it.
    Pin { id: i64 },
    /// Unpin a backup.
    Unpin { id: i64 },
    /// Delete a backup (initial, breakthrough and pinned ones are refused).
    Delete { id: i64 },
}

fn out(text: impl std::fmt::Display) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{text}").map_err(|e| Error::Io {
        action: "write to",
        path: "stdout".into(),
        source: e,
    })
}

/// The JSON shape of a backup (shared with the API and the desktop app).
pub fn backup_json(b: &BackupInfo) -> serde_json::Value {
    engram_core::view::backup(b)
}

pub fn status(data_dir: &Path, json: bool) -> Result<()> {
    let store = open_read(data_dir)?;
    let live = store.live_metrics()?;
    let saved_at = live.values().map(|(_, at)| *at).max();
    let running = engram_core::runtime::DataDirLock::is_held(data_dir);
    if json {
        let engines: serde_json::Map<String, serde_json::Value> = live
            .iter()
            .map(|(name, (m, at))| {
                (
                    name.clone(),
                    json!({"metrics": m, "saved_at": rfc3339(*at)}),
                )
            })
            .collect();
        out(json!({
            "engines": engines,
            "saved_at": saved_at.map(rfc3339),
            "running": running.is_some(),
            "pid": running,
            "backups": store.count_backups()?,
            "data_dir": data_dir.display().to_string(),
        }))
    } else {
        out(format!(
            "Engram data in {} — {}; last saved {}; {} backups",
            data_dir.display(),
            match &running {
                Some(pid) => format!("running (pid {pid})"),
                None => "not running".into(),
            },
            saved_at.map(rfc3339).unwrap_or_else(|| "never".into()),
            store.count_backups()?
        ))?;
        for (name, (m, _)) in &live {
            out(format!("\n{name}"))?;
            for (k, v) in m {
                out(format!("  {k:<24} {v}"))?;
            }
        }
        Ok(())
    }
}

pub fn run(data_dir: &Path, cmd: BackupsCommand) -> Result<()> {
    match cmd {
        BackupsCommand::List {
            json,
            kind,
            engine,
            limit,
        } => {
            let store = open_read(data_dir)?;
            let kinds = match kind {
                Some(k) => vec![k.parse::<BackupKind>()?],
                None => Vec::new(),
            };
            let mut q = BackupQuery {
                kinds,
                engine,
                limit: 1000,
                ..Default::default()
            };
            let mut items = Vec::new();
            let max = limit.unwrap_or(u64::MAX);
            loop {
                let page = store.list_backups(&q)?;
                items.extend(page.items);
                match page.next {
                    Some(c) if (items.len() as u64) < max => q.after = Some(c),
                    _ => break,
                }
            }
            items.truncate(max.min(usize::MAX as u64) as usize);
            if json {
                out(serde_json::Value::Array(
                    items.iter().map(backup_json).collect(),
                ))
            } else {
                out(format!(
                    "{:>6}  {:<12}  {:<24}  {:<6}  label / breakthrough",
                    "id", "kind", "created", "pinned"
                ))?;
                for b in &items {
                    let what = match (&b.breakthrough, &b.label) {
                        (Some(bt), _) => format!(
                            "{} {} = {} at step {}",
                            bt.engine, bt.metric, bt.value, bt.step
                        ),
                        (None, Some(l)) => l.clone(),
                        (None, None) => String::new(),
                    };
                    out(format!(
                        "{:>6}  {:<12}  {:<24}  {:<6}  {what}",
                        b.id,
                        b.kind.as_str(),
                        rfc3339(b.created_at_ms),
                        if b.pinned { "yes" } else { "" }
                    ))?;
                }
                Ok(())
            }
        }
        BackupsCommand::Create { label, json } => {
            let (mut store, _lock) = open_write(data_dir)?;
            let id = store.backup_live(BackupKind::Manual, engram_core::now_ms(), label, None)?;
            let b = store.get_backup(id)?;
            if json {
                out(backup_json(&b))
            } else {
                out(format!("created manual backup {id}"))
            }
        }
        BackupsCommand::Restore { id, engine, json } => {
            let (mut store, _lock) = open_write(data_dir)?;
            let (pre, engines) =
                store.restore_to_live(id, engine.as_deref(), engram_core::now_ms())?;
            if json {
                out(json!({"from_backup": id, "engines": engines, "pre_restore_backup": pre}))
            } else {
                out(format!(
                    "restored {} from backup {id}{}",
                    engines.join(", "),
                    pre.map(|p| format!(
                        "; undo with `engram backups restore {p}` (pre-restore backup)"
                    ))
                    .unwrap_or_default()
                ))
            }
        }
        BackupsCommand::Export {
            id,
            out: path,
            format,
        } => {
            let format: SnapshotFormat = format.parse()?;
            let store = open_read(data_dir)?;
            let n = snapshot::export_to_file(&store, id, format, &path)?;
            out(format!(
                "exported backup {id} to {} ({n} bytes)",
                path.display()
            ))
        }
        BackupsCommand::Import { file, json } => {
            // Check the file completely before taking the lock or touching the store.
            let snap = snapshot::read_file(&file)?;
            let (mut store, _lock) = open_write(data_dir)?;
            let id = store.import_snapshot(&snap, engram_core::now_ms())?;
            let b = store.get_backup(id)?;
            if json {
                out(backup_json(&b))
            } else {
                out(format!("imported {} as backup {id}", file.display()))
            }
        }
        BackupsCommand::Verify { json } => {
            let store = open_read(data_dir)?;
            let report = store.verify_all(true)?;
            if json {
                out(serde_json::to_value(&report).map_err(|e| Error::Encode(e.to_string()))?)?;
            } else {
                out(format!(
                    "database {}; {} backups, {} states checked; {} problems",
                    if report.database_ok { "ok" } else { "DAMAGED" },
                    report.backups_checked,
                    report.states_checked,
                    report.problems.len()
                ))?;
                for p in &report.problems {
                    out(format!(
                        "  backup {:?} engine {:?}: [{}] {}",
                        p.backup_id, p.engine, p.code, p.detail
                    ))?;
                }
            }
            if report.is_ok() {
                Ok(())
            } else {
                Err(Error::CorruptState {
                    what: "data".into(),
                    detail: format!("verification found {} problems", report.problems.len()),
                })
            }
        }
        BackupsCommand::Pin { id } | BackupsCommand::Unpin { id } if id < 0 => {
            Err(Error::NotFound {
                what: "backup",
                id: id.to_string(),
            })
        }
        BackupsCommand::Pin { id } => {
            let (mut store, _lock) = open_write(data_dir)?;
            store.set_pinned(id, true)?;
            out(format!("pinned backup {id}"))
        }
        BackupsCommand::Unpin { id } => {
            let (mut store, _lock) = open_write(data_dir)?;
            store.set_pinned(id, false)?;
            out(format!("unpinned backup {id}"))
        }
        BackupsCommand::Delete { id } => {
            let (mut store, _lock) = open_write(data_dir)?;
            store.delete_backup(id)?;
            out(format!("deleted backup {id}"))
        }
    }
}
