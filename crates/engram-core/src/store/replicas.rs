//! What the store keeps of offsite replicas: this data directory's host id,
//! the targets, which backups each holds or skipped (the upload queue is
//! the backups no row names yet), and the catalog tables a replica carries
//! beside the backups (metric history, branches, learners, settings).
//!
//! Must not: talk to a repository (that is `replica`).

use super::Store;
use crate::error::{Error, Result};
use crate::wire::{BackupKind, OffsiteMark, ReplicaBackup, ReplicaKind};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

/// One replica target as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaTarget {
    pub id: i64,
    pub name: String,
    pub kind: ReplicaKind,
    pub location: String,
    pub port: Option<u16>,
    pub identity: Option<String>,
    pub append_only: bool,
    pub added_at_ms: i64,
    pub repository_id: Option<String>,
    pub last_attempt_at_ms: Option<i64>,
    pub last_success_at_ms: Option<i64>,
    /// The last attempt's failure (code, message), if it failed.
    pub last_error: Option<(String, String)>,
    pub history_at_ms: Option<i64>,
    pub history_mark: Option<String>,
    /// The last verify's report (JSON).
    pub last_verify: Option<String>,
}

/// A new target.
#[derive(Clone, Debug)]
pub struct NewReplicaTarget<'a> {
    pub name: &'a str,
    pub kind: ReplicaKind,
    pub location: &'a str,
    pub port: Option<u16>,
    pub identity: Option<&'a str>,
    pub append_only: bool,
    pub repository_id: Option<&'a str>,
    pub added_at_ms: i64,
}

/// A backup a replica now holds.
#[derive(Clone, Debug)]
pub struct ReplicaCopy {
    pub backup_id: i64,
    pub snapshot_id: String,
    pub kind: BackupKind,
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub pinned: bool,
    pub bytes: u64,
    pub bytes_added: u64,
    pub uploaded_at_ms: i64,
}

/// How far a replica is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    pub replicated: u64,
    pub behind: u64,
    pub skipped: u64,
    /// The creation time of the oldest backup still to go.
    pub oldest_behind_ms: Option<i64>,
    pub bytes: u64,
    pub bytes_added: u64,
}

/// The catalog tables a replica carries, each with the columns it keeps and
/// the order that makes the dump grow at its end (deduplicates well).
pub const CATALOG_TABLES: &[(&str, &[&str], &str)] = &[
    (
        "history_branches",
        &["id", "started_at", "parent", "from_backup", "reason"],
        "id",
    ),
    (
        "history_runs",
        &["engine", "started_at"],
        "started_at, engine",
    ),
    (
        "metric_points",
        &[
            "engine", "key", "tier", "at_ms", "branch", "value", "min", "max", "n",
        ],
        "at_ms, engine, key, tier, branch",
    ),
    (
        "learners",
        &[
            "name",
            "format",
            "registered_at",
            "metric_info",
            "generation",
            "milestone_rules",
            "user_milestone_rules",
            "user_metric_info",
        ],
        "name",
    ),
    ("settings", &["id", "value", "updated_at"], "id"),
];

const TARGET_COLUMNS: &str = "id, name, kind, location, port, identity, append_only, added_at,
    repository_id, last_attempt_at, last_success_at, last_error_code, last_error, history_at,
    history_mark, last_verify";

fn target_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReplicaTarget> {
    let kind: String = r.get(2)?;
    let code: Option<String> = r.get(11)?;
    let message: Option<String> = r.get(12)?;
    Ok(ReplicaTarget {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: if kind == "sftp" {
            ReplicaKind::Sftp
        } else {
            ReplicaKind::Local
        },
        location: r.get(3)?,
        port: r.get::<_, Option<i64>>(4)?.map(|p| p as u16),
        identity: r.get(5)?,
        append_only: r.get(6)?,
        added_at_ms: r.get(7)?,
        repository_id: r.get(8)?,
        last_attempt_at_ms: r.get(9)?,
        last_success_at_ms: r.get(10)?,
        last_error: code.map(|c| (c, message.unwrap_or_default())),
        history_at_ms: r.get(13)?,
        history_mark: r.get(14)?,
        last_verify: r.get(15)?,
    })
}

/// The backups a target has neither copied nor skipped (`?1`: the target).
const BEHIND: &str = "FROM backups b WHERE NOT EXISTS
      (SELECT 1 FROM replica_copies c WHERE c.target_id = ?1 AND c.backup_id = b.id)
    AND NOT EXISTS
      (SELECT 1 FROM replica_skips s WHERE s.target_id = ?1 AND s.backup_id = b.id)";

impl Store {
    /// This data directory's id (made on first use): the hostname of its
    /// snapshots in every replica.
    pub fn host_id(&mut self) -> Result<String> {
        if let Some(id) = self
            .conn
            .query_row("SELECT host_id FROM host WHERE id = 1", [], |r| r.get(0))
            .optional()?
        {
            return Ok(id);
        }
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        let id = format!(
            "engram-{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        self.set_host_id(&id)?;
        Ok(id)
    }

    /// This data directory's id, if it has one yet (read-only).
    pub fn host_id_if_any(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT host_id FROM host WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    /// Adopts a host id (a recovery continues the recovered timeline's).
    pub fn set_host_id(&mut self, id: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO host (id, host_id, created_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET host_id = excluded.host_id",
            params![id, crate::now_ms()],
        )?;
        Ok(())
    }

    /// Every target, in the order they were added.
    pub fn replica_targets(&self) -> Result<Vec<ReplicaTarget>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {TARGET_COLUMNS} FROM replica_targets ORDER BY id"
        ))?;
        let rows = stmt.query_map([], target_from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// One target by name.
    pub fn replica_target(&self, name: &str) -> Result<ReplicaTarget> {
        self.conn
            .query_row(
                &format!("SELECT {TARGET_COLUMNS} FROM replica_targets WHERE name = ?1"),
                [name],
                target_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "replica",
                id: name.to_string(),
            })
    }

    /// Adds a target; a name or location already used is refused.
    pub fn add_replica_target(&mut self, t: &NewReplicaTarget<'_>) -> Result<ReplicaTarget> {
        let taken: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM replica_targets WHERE name = ?1 OR (kind = ?2 AND location = ?3 AND coalesce(port, 0) = ?4)",
                params![t.name, t.kind.as_str(), t.location, t.port.unwrap_or(0)],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(name) = taken {
            return Err(Error::InvalidInput(format!(
                "a replica named {name:?} already has this name or location"
            )));
        }
        self.conn.execute(
            "INSERT INTO replica_targets (name, kind, location, port, identity, append_only, added_at, repository_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                t.name,
                t.kind.as_str(),
                t.location,
                t.port,
                t.identity,
                t.append_only,
                t.added_at_ms,
                t.repository_id
            ],
        )?;
        self.replica_target(t.name)
    }

    /// Forgets a target and what it held (nothing there is touched).
    pub fn remove_replica_target(&mut self, name: &str) -> Result<ReplicaTarget> {
        let t = self.replica_target(name)?;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM replica_copies WHERE target_id = ?1", [t.id])?;
        tx.execute("DELETE FROM replica_skips WHERE target_id = ?1", [t.id])?;
        tx.execute("DELETE FROM replica_targets WHERE id = ?1", [t.id])?;
        tx.commit()?;
        Ok(t)
    }

    /// The next backup to upload: pinned, breakthrough and initial ones
    /// first, then the newest (the freshest recovery point soonest).
    pub fn next_to_replicate(&self, target: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT b.id {BEHIND}
                     ORDER BY (b.pinned = 1 OR b.kind IN ('breakthrough', 'initial')) DESC, b.id DESC
                     LIMIT 1"
                ),
                [target],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Where each backup stands with the replicas (none set up: empty):
    /// failed if a replica skipped it, replicated if every replica holds
    /// it, else queued.
    pub fn offsite_marks(&self, ids: &[i64]) -> Result<BTreeMap<i64, OffsiteMark>> {
        let mut out = BTreeMap::new();
        let targets: i64 =
            self.conn
                .query_row("SELECT count(*) FROM replica_targets", [], |r| r.get(0))?;
        if targets == 0 || ids.is_empty() {
            return Ok(out);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT b.id,
                    (SELECT count(*) FROM replica_targets t WHERE EXISTS
                       (SELECT 1 FROM replica_copies c WHERE c.target_id = t.id AND c.backup_id = b.id)),
                    (SELECT count(*) FROM replica_targets t WHERE EXISTS
                       (SELECT 1 FROM replica_skips s WHERE s.target_id = t.id AND s.backup_id = b.id))
             FROM backups b WHERE b.id IN ({list})"
        ))?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (id, held, skipped) = row?;
            let mark = if skipped > 0 {
                OffsiteMark::Failed
            } else if held >= targets {
                OffsiteMark::Replicated
            } else {
                OffsiteMark::Queued
            };
            out.insert(id, mark);
        }
        Ok(out)
    }

    /// How far a target is.
    pub fn replica_counts(&self, target: i64) -> Result<ReplicaCounts> {
        let (behind, oldest): (i64, Option<i64>) = self.conn.query_row(
            &format!("SELECT count(*), min(b.created_at) {BEHIND}"),
            [target],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (replicated, bytes, added): (i64, i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(bytes), 0), coalesce(sum(bytes_added), 0)
             FROM replica_copies WHERE target_id = ?1",
            [target],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let skipped: i64 = self.conn.query_row(
            "SELECT count(*) FROM replica_skips WHERE target_id = ?1",
            [target],
            |r| r.get(0),
        )?;
        Ok(ReplicaCounts {
            replicated: replicated as u64,
            behind: behind as u64,
            skipped: skipped as u64,
            oldest_behind_ms: oldest,
            bytes: bytes as u64,
            bytes_added: added as u64,
        })
    }

    /// Records that a target holds a backup (idempotent).
    pub fn record_replica_copy(&mut self, target: i64, c: &ReplicaCopy) -> Result<()> {
        self.conn.execute(
            "INSERT INTO replica_copies (target_id, backup_id, snapshot_id, kind, created_at, label, pinned, uploaded_at, bytes, bytes_added)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (target_id, backup_id) DO NOTHING",
            params![
                target,
                c.backup_id,
                c.snapshot_id,
                c.kind.as_str(),
                c.created_at_ms,
                c.label,
                c.pinned,
                c.uploaded_at_ms,
                c.bytes as i64,
                c.bytes_added as i64
            ],
        )?;
        Ok(())
    }

    /// Records that a target will not get a backup, and why.
    pub fn record_replica_skip(&mut self, target: i64, backup: i64, reason: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO replica_skips (target_id, backup_id, reason, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (target_id, backup_id) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            params![target, backup, reason, crate::now_ms()],
        )?;
        Ok(())
    }

    /// Records the outcome of an attempt to reach a target.
    pub fn record_replica_attempt(
        &mut self,
        target: i64,
        at_ms: i64,
        failure: Option<(&str, &str)>,
        repository_id: Option<&str>,
    ) -> Result<()> {
        match failure {
            None => self.conn.execute(
                "UPDATE replica_targets SET last_attempt_at = ?2, last_success_at = ?2,
                   last_error_code = NULL, last_error = NULL,
                   repository_id = coalesce(?3, repository_id) WHERE id = ?1",
                params![target, at_ms, repository_id],
            )?,
            Some((code, message)) => self.conn.execute(
                "UPDATE replica_targets SET last_attempt_at = ?2, last_error_code = ?3, last_error = ?4
                 WHERE id = ?1",
                params![target, at_ms, code, message],
            )?,
        };
        Ok(())
    }

    /// Records that the catalog (history, learners, settings) went up.
    pub fn record_replica_history(&mut self, target: i64, at_ms: i64, mark: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE replica_targets SET history_at = ?2, history_mark = ?3 WHERE id = ?1",
            params![target, at_ms, mark],
        )?;
        Ok(())
    }

    /// Records a verify's report (JSON).
    pub fn record_replica_verify(&mut self, target: i64, report: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE replica_targets SET last_verify = ?2 WHERE id = ?1",
            params![target, report],
        )?;
        Ok(())
    }

    /// Forgets copies (after a prune forgot their snapshots).
    pub fn forget_replica_copies(&mut self, target: i64, backups: &[i64]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for b in backups {
            tx.execute(
                "DELETE FROM replica_copies WHERE target_id = ?1 AND backup_id = ?2",
                params![target, b],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every backup a target holds, newest first, and whether it is still here.
    pub fn replica_copies(&self, target: i64) -> Result<Vec<ReplicaBackup>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.backup_id, c.snapshot_id, c.kind, c.created_at, c.label, c.pinned,
                    EXISTS (SELECT 1 FROM backups b WHERE b.id = c.backup_id), c.bytes
             FROM replica_copies c WHERE c.target_id = ?1 ORDER BY c.backup_id DESC",
        )?;
        let rows = stmt.query_map([target], |r| {
            let kind: String = r.get(2)?;
            Ok(ReplicaBackup {
                backup_id: r.get(0)?,
                snapshot_id: r.get(1)?,
                kind: kind.parse().unwrap_or(BackupKind::Imported),
                created_at_ms: r.get(3)?,
                label: r.get(4)?,
                pinned: r.get(5)?,
                here: r.get(6)?,
                bytes: r.get::<_, i64>(7)? as u64,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// What the catalog holds now, cheaply: changes whenever a point,
    /// branch, learner or setting is added or changed.
    pub fn catalog_mark(&self) -> Result<String> {
        let (points, newest): (i64, Option<i64>) =
            self.conn
                .query_row("SELECT count(*), max(at_ms) FROM metric_points", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        let branches: i64 = self.conn.query_row(
            "SELECT coalesce(max(id), 0) FROM history_branches",
            [],
            |r| r.get(0),
        )?;
        let learners: String = self.conn.query_row(
            "SELECT coalesce(group_concat(name || ':' || generation || ':' || length(metric_info) || ':' || length(coalesce(user_metric_info, '')) || ':' || length(coalesce(user_milestone_rules, '')), ','), '') FROM learners",
            [],
            |r| r.get(0),
        )?;
        let settings: Option<i64> = self
            .conn
            .query_row("SELECT updated_at FROM settings WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(format!(
            "points={points} newest={} branches={branches} settings={} learners={learners}",
            newest.unwrap_or(0),
            settings.unwrap_or(0)
        ))
    }

    /// One catalog table as JSON lines: a header naming the columns, then
    /// one array per row, in the table's growing order.
    pub fn dump_catalog_table(&self, table: &str) -> Result<Vec<u8>> {
        let (name, columns, order) = catalog_table(table)?;
        let mut out = serde_json::to_vec(&serde_json::json!({ "table": name, "columns": columns }))
            .map_err(|e| Error::Encode(e.to_string()))?;
        out.push(b'\n');
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM {name} ORDER BY {order}",
            columns.join(", ")
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                row.push(match r.get::<_, Value>(i)? {
                    Value::Null => serde_json::Value::Null,
                    Value::Integer(n) => serde_json::Value::from(n),
                    Value::Real(f) => serde_json::Value::from(f),
                    Value::Text(t) => serde_json::Value::from(t),
                    Value::Blob(_) => {
                        return Err(Error::Internal(format!("{name} holds a blob")));
                    }
                });
            }
            serde_json::to_writer(&mut out, &row).map_err(|e| Error::Encode(e.to_string()))?;
            out.push(b'\n');
        }
        Ok(out)
    }

    /// Loads a catalog table dumped by [`Store::dump_catalog_table`] into
    /// this (new) data directory, replacing what it has. Checked whole
    /// before anything is written.
    pub fn load_catalog_table(&mut self, table: &str, dump: &[u8]) -> Result<u64> {
        let (name, columns, _) = catalog_table(table)?;
        let bad = |why: String| Error::InvalidSnapshot(format!("the replica's {name}: {why}"));
        let mut lines = dump.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let header: serde_json::Value = serde_json::from_slice(lines.next().unwrap_or_default())
            .map_err(|e| bad(e.to_string()))?;
        let got: Vec<String> = header
            .get("columns")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .ok_or_else(|| bad("no column list".into()))?;
        if got != columns {
            return Err(bad(format!("columns {got:?}, expected {columns:?}")));
        }
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for line in lines {
            let row: Vec<serde_json::Value> =
                serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
            if row.len() != columns.len() {
                return Err(bad(format!("a row of {} values", row.len())));
            }
            rows.push(
                row.into_iter()
                    .map(|v| match v {
                        serde_json::Value::Null => Ok(Value::Null),
                        serde_json::Value::String(s) => Ok(Value::Text(s)),
                        serde_json::Value::Number(n) => Ok(match n.as_i64() {
                            Some(i) => Value::Integer(i),
                            None => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
                        }),
                        other => Err(bad(format!("an unexpected value {other}"))),
                    })
                    .collect::<Result<_>>()?,
            );
        }
        let tx = self.conn.transaction()?;
        tx.execute(&format!("DELETE FROM {name}"), [])?;
        {
            let marks = vec!["?"; columns.len()].join(", ");
            let mut ins = tx.prepare(&format!(
                "INSERT INTO {name} ({}) VALUES ({marks})",
                columns.join(", ")
            ))?;
            for row in &rows {
                ins.execute(rusqlite::params_from_iter(row.iter()))?;
            }
        }
        tx.commit()?;
        Ok(rows.len() as u64)
    }
}

fn catalog_table(table: &str) -> Result<(&'static str, &'static [&'static str], &'static str)> {
    CATALOG_TABLES
        .iter()
        .find(|(n, _, _)| *n == table)
        .copied()
        .ok_or_else(|| Error::Internal(format!("{table} is not a catalog table")))
}
