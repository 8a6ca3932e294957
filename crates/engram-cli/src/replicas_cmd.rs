//! `engram replicas …`: offsite replicas. Each subcommand is one declared
//! operation through the [`Door`], except `recover`, which builds a new
//! data directory and so has no Engram to go through.

use crate::backups_cmd::{out, out_json};
use crate::door::Door;
use clap::Subcommand;
use engram_core::api::{self, NoKey, op};
use engram_core::replica::Place;
use engram_core::wire::{AddReplica, ReplicaKind, ReplicaStatus, RetrieveBackup, VerifyReplica};
use engram_core::{Error, Result, rfc3339};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ReplicasCommand {
    /// Add a replica: `local PATH` (another disk, a mounted share) or `sftp USER@HOST:PATH`.
    Add {
        #[arg(value_enum)]
        kind: Kind,
        location: String,
        /// What to call it (default: from the location).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        /// sftp: the private key file.
        #[arg(long)]
        identity: Option<String>,
        /// Engram never deletes anything there (prune is refused).
        #[arg(long)]
        append_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Every replica and how far it is.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One replica (or all): how far behind, and why.
    Status {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a replica: its structure; with --read-data every pack (or a subset: n/m, 10%, 1G).
    Verify {
        name: String,
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        read_data: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Forget on a replica what retention deleted here (never pinned, breakthrough or initial backups), then prune.
    Prune {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The backups a replica holds.
    Backups {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Bring a backup deleted here back from a replica, as it was.
    Retrieve { name: String, backup: i64 },
    /// Forget a replica (nothing there is deleted).
    Remove { name: String },
    /// Print the replicas' key (keep it to recover on another machine): the key alone on the last line.
    Key,
    /// Rebuild a whole timeline from a replica into a new data directory (--data-dir).
    Recover {
        /// The replica: a path (or sftp:USER@HOST:PATH).
        #[arg(long)]
        from: String,
        /// sftp: the server's SSH port (default 22).
        #[arg(long)]
        port: Option<u16>,
        /// sftp: the private key file.
        #[arg(long)]
        identity: Option<String>,
        /// The file holding the key (else it is asked for).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The host whose timeline to take, when the replica holds several.
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Local,
    Sftp,
}

pub fn run(api: &Door, data_dir: &std::path::Path, cmd: ReplicasCommand) -> Result<()> {
    use ReplicasCommand as C;
    match cmd {
        C::Add {
            kind,
            location,
            name,
            port,
            identity,
            append_only,
            json,
        } => {
            let added = api.call::<op::add_replica>(
                NoKey,
                AddReplica {
                    kind: kind_of(kind),
                    location,
                    name,
                    port,
                    identity,
                    append_only,
                },
            )?;
            if json {
                return out_json(&added);
            }
            out(format!(
                "replica {} added at {} ({})",
                added.replica.name,
                added.replica.location,
                if added.created {
                    "a new repository"
                } else {
                    "an existing repository, same key"
                }
            ))?;
            if let Some(key) = &added.new_key {
                out(format!(
                    "\nKeep this key to recover on another machine (it is also in {}):\n{key}",
                    added.key_file
                ))?;
            }
            Ok(())
        }
        C::List { json } => {
            let all = api.call::<op::replicas>(NoKey, ())?;
            if json {
                return out_json(&all);
            }
            if all.is_empty() {
                return out("no replicas (add one: engram replicas add local PATH)");
            }
            for r in &all {
                out(line(r))?;
            }
            Ok(())
        }
        C::Status { name, json } => {
            let all = match name {
                Some(n) => vec![api.call::<op::replica>(n, ())?],
                None => api.call::<op::replicas>(NoKey, ())?,
            };
            if json {
                return out_json(&all);
            }
            for r in &all {
                out(line(r))?;
                out(format!(
                    "  host id {}; {} backups replicated ({} bytes of states, {} added after deduplication); {} skipped; last success {}; history {}",
                    r.host_id,
                    r.replicated,
                    r.bytes_replicated,
                    r.bytes_added,
                    r.skipped,
                    r.last_success_at_ms
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".into()),
                    r.history_at_ms
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".into()),
                ))?;
                if let Some(v) = &r.last_verify {
                    out(format!(
                        "  last verify {}: {}",
                        rfc3339(v.checked_at_ms),
                        if v.ok { "ok" } else { "FAILED" }
                    ))?;
                }
            }
            Ok(())
        }
        C::Verify {
            name,
            read_data,
            json,
        } => {
            let report = api.call::<op::verify_replica>(
                name,
                VerifyReplica {
                    read_data: read_data.is_some(),
                    subset: read_data.filter(|s| !s.is_empty()),
                },
            )?;
            if json {
                out_json(&report)?;
            } else {
                out(format!(
                    "{}: {} snapshots checked{} in {:.1} s",
                    if report.ok { "ok" } else { "DAMAGED" },
                    report.snapshots,
                    if report.read_data {
                        ", every pack read"
                    } else {
                        ""
                    },
                    report.seconds
                ))?;
                for p in &report.problems {
                    out(format!("  {p}"))?;
                }
                if !report.affected_backups.is_empty() {
                    out(format!("  backups affected: {:?}", report.affected_backups))?;
                }
            }
            if report.ok {
                Ok(())
            } else {
                Err(Error::Replica {
                    code: engram_core::ErrorCode::CorruptState,
                    message: format!(
                        "the replica is damaged; backups affected: {:?}",
                        report.affected_backups
                    ),
                })
            }
        }
        C::Prune { name, json } => {
            let r = api.call::<op::prune_replica>(name, ())?;
            if json {
                return out_json(&r);
            }
            out(format!(
                "forgot {} backups ({:?}), kept {}; removed {} packs, {} bytes",
                r.forgotten.len(),
                r.forgotten,
                r.kept,
                r.packs_removed,
                r.bytes_freed
            ))
        }
        C::Backups { name, json } => {
            let all = api.call::<op::replica_backups>(name, ())?;
            if json {
                return out_json(&all);
            }
            for b in &all {
                out(format!(
                    "{:>6}  {:<12}  {:<24}  {:<6}  {:<10}  {}",
                    b.backup_id,
                    b.kind.as_str(),
                    rfc3339(b.created_at_ms),
                    if b.pinned { "pinned" } else { "" },
                    if b.here { "here too" } else { "only there" },
                    b.label.as_deref().unwrap_or("")
                ))?;
            }
            Ok(())
        }
        C::Retrieve { name, backup } => {
            let b = api.call::<op::retrieve_backup>(name, RetrieveBackup { backup_id: backup })?;
            out(format!(
                "backup {} ({}) is back in the timeline; restore it from there",
                b.id, b.kind
            ))
        }
        C::Remove { name } => {
            let r = api.call::<op::remove_replica>(name, ())?;
            out(format!(
                "replica {} forgotten; nothing at {} was deleted",
                r.name, r.location
            ))
        }
        C::Key => {
            let k = api.call::<op::replica_key>(NoKey, ())?;
            out(format!(
                "The replicas' key (kept in {}); keep a copy away from this machine:\n{}",
                k.key_file, k.key
            ))
        }
        C::Recover {
            from,
            port,
            identity,
            key_file,
            host,
            json,
        } => recover(
            data_dir,
            &from,
            port,
            identity.as_deref(),
            key_file,
            host,
            json,
        ),
    }
}

fn recover(
    data_dir: &std::path::Path,
    from: &str,
    port: Option<u16>,
    identity: Option<&str>,
    key_file: Option<PathBuf>,
    host: Option<String>,
    json: bool,
) -> Result<()> {
    let place = match from.strip_prefix("sftp:") {
        Some(rest) => Place::parse(ReplicaKind::Sftp, rest, port, identity)?,
        None => Place::parse(ReplicaKind::Local, from, port, identity)?,
    };
    let key = match &key_file {
        Some(_) => None,
        None => Some(ask_key()?),
    };
    let quiet = json || !std::io::stderr().is_terminal();
    let report = api::recover(
        api::Recover {
            place,
            key_file,
            key,
            data_dir: data_dir.to_path_buf(),
            host,
            name: None,
        },
        &|done, total| {
            if !quiet {
                eprint!("\rrecovering backups: {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }
        },
    )?;
    if json {
        return out_json(&report);
    }
    out(format!(
        "recovered {} backups ({} bytes of states) and {} history points into {} in {:.1} s; host id {}",
        report.recovered.len(),
        report.bytes,
        report.history_points,
        report.data_dir,
        report.seconds,
        report.host_id
    ))?;
    for s in &report.skipped {
        out(format!("  left out: {s}"))?;
    }
    match report.resumed_from {
        Some(id) => out(format!(
            "Engram resumes from backup {id} at its next start (engram run --data-dir {})",
            report.data_dir
        )),
        None => out("no backup could be recovered"),
    }
}

fn ask_key() -> Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("replica key: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("read the key from", "stdin", e))?;
    let key = line.trim().to_string();
    if key.is_empty() {
        return Err(Error::InvalidInput(
            "no key given (--key-file FILE, or type it)".into(),
        ));
    }
    Ok(key)
}

fn kind_of(k: Kind) -> ReplicaKind {
    match k {
        Kind::Local => ReplicaKind::Local,
        Kind::Sftp => ReplicaKind::Sftp,
    }
}

fn line(r: &ReplicaStatus) -> String {
    format!(
        "{:<16} {:<5} {:<40} {}",
        r.name,
        r.kind.as_str(),
        r.location,
        r.summary
    )
}
