//! `engram fleet …`: the fleet catalog on PostgreSQL. Each subcommand is
//! one declared operation through the [`Door`] and a printout.

use crate::backups_cmd::{out, out_json};
use crate::door::Door;
use clap::Subcommand;
use engram_core::api::{NoKey, op};
use engram_core::wire::{
    BackupKind, FleetBackupsQuery, FleetJoin, FleetName, FleetRestore, FleetStatus,
};
use engram_core::{Result, rfc3339};

#[derive(Subcommand)]
pub enum FleetCommand {
    /// Join a fleet: postgresql://USER:PASSWORD@HOST:PORT/DATABASE (?sslmode=require for TLS).
    Join {
        url: String,
        /// This host's name in the fleet (default: the system's host name).
        #[arg(long)]
        name: Option<String>,
        /// This data directory moved to another machine: take its host id over.
        #[arg(long, conflicts_with = "new_id")]
        take_over: bool,
        /// This data directory is a copy of another member's: give it an id of its own.
        #[arg(long)]
        new_id: bool,
        #[arg(long)]
        json: bool,
    },
    /// How this host's membership and sync stand.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Leave the fleet (this host's rows leave the catalog when it can be reached).
    Leave {
        #[arg(long)]
        json: bool,
    },
    /// Rename this host in the fleet.
    Rename { name: String },
    /// Every host of the fleet: last sync, lag, health (read from PostgreSQL).
    Hosts {
        #[arg(long)]
        json: bool,
    },
    /// Every host's backups, newest first (read from PostgreSQL).
    Backups {
        /// Only this host (its name or id).
        #[arg(long)]
        host: Option<String>,
        /// Only backups holding this learner's or engine's state.
        #[arg(long)]
        learner: Option<String>,
        #[arg(long, value_enum)]
        kind: Option<BackupKind>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Restore here backup ID of host HOST (states from a shared replica, checked by hash).
    Restore {
        host: String,
        backup: i64,
        /// Only this engine or learner.
        #[arg(long)]
        only: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn status_line(s: &FleetStatus) -> String {
    if !s.joined {
        return format!(
            "not in a fleet (host {} \"{}\"; join one: engram fleet join postgresql://…)",
            s.host_id, s.name
        );
    }
    format!(
        "{}: {} — host {} \"{}\"; {} rows sent, {} refused; last success {}",
        s.url.as_deref().unwrap_or("?"),
        s.summary,
        s.host_id,
        s.name,
        s.pushed_rows,
        s.refused_rows,
        s.last_success_at_ms
            .map(rfc3339)
            .unwrap_or_else(|| "never".into())
    )
}

pub fn run(api: &Door, cmd: FleetCommand) -> Result<()> {
    use FleetCommand as C;
    match cmd {
        C::Join {
            url,
            name,
            take_over,
            new_id,
            json,
        } => {
            let s = api.call::<op::fleet_join>(
                NoKey,
                FleetJoin {
                    url,
                    name,
                    take_over,
                    new_id,
                },
            )?;
            if json {
                return out_json(&s);
            }
            out(format!("joined: {}", status_line(&s)))
        }
        C::Status { json } => {
            let s = api.call::<op::fleet_status>(NoKey, ())?;
            if json {
                return out_json(&s);
            }
            out(status_line(&s))?;
            if let Some(r) = &s.last_refused {
                out(format!("  the newest refused row: {r}"))?;
            }
            Ok(())
        }
        C::Leave { json } => {
            let left = api.call::<op::fleet_leave>(NoKey, ())?;
            if json {
                return out_json(&left);
            }
            out(left.message)
        }
        C::Rename { name } => {
            let s = api.call::<op::fleet_rename>(NoKey, FleetName { name })?;
            out(format!("this host is now \"{}\" ({})", s.name, s.host_id))
        }
        C::Hosts { json } => {
            let hosts = api.call::<op::fleet_hosts>(NoKey, ())?;
            if json {
                return out_json(&hosts);
            }
            for h in &hosts {
                out(format!(
                    "{}{} \"{}\" — {} backups, newest {}; last sync {}{}; engram {}; {}",
                    if h.this_host { "* " } else { "  " },
                    h.host_id,
                    h.name,
                    h.backups,
                    h.newest_backup_ms
                        .map(rfc3339)
                        .unwrap_or_else(|| "none".into()),
                    h.last_sync_at_ms
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".into()),
                    if h.stale { " (STALE)" } else { "" },
                    h.engram_version,
                    h.units.join(", ")
                ))?;
            }
            Ok(())
        }
        C::Backups {
            host,
            learner,
            kind,
            limit,
            json,
        } => {
            let page = api.call::<op::fleet_backups>(
                NoKey,
                FleetBackupsQuery {
                    host,
                    learner,
                    kind,
                    limit: Some(limit),
                    ..Default::default()
                },
            )?;
            if json {
                return out_json(&page);
            }
            for b in &page.backups {
                out(format!(
                    "{:<12} {:>6}  {:<12} {}{}  {}  [{}]{}",
                    b.host_name,
                    b.id,
                    b.kind.as_str(),
                    rfc3339(b.created_at_ms),
                    if b.pinned { " pinned" } else { "" },
                    b.label.as_deref().unwrap_or(""),
                    b.states
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if b.replicas.is_empty() {
                        ""
                    } else {
                        " offsite"
                    }
                ))?;
            }
            if page.next.is_some() {
                out("… more (raise --limit, at most 1000)")?;
            }
            Ok(())
        }
        C::Restore {
            host,
            backup,
            only,
            json,
        } => {
            let r = api.call::<op::fleet_restore>(NoKey, FleetRestore { host, backup, only })?;
            if json {
                return out_json(&r);
            }
            out(format!(
                "restored backup {backup} of that host here as backup {} ({} states checked by hash: {}); engines {}{}; undo with backup {}",
                r.imported_as,
                r.verified.len(),
                r.verified.join(", "),
                r.restore.engines.join(", "),
                if r.learners.is_empty() {
                    String::new()
                } else {
                    format!("; learners {}", r.learners.join(", "))
                },
                r.restore
                    .pre_restore_backup
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "none".into())
            ))
        }
    }
}
