//! What the store keeps for the fleet catalog: membership, the queue of
//! what changed since the fleet took it (`fleet_outbox`, filled by
//! triggers in the same transaction as each change, so nothing is missed
//! by a crash or an outage), this host's name, and the rows the sync
//! worker sends — backups with their states' hashes and where the replicas
//! hold them, learners and engines, metric points after a mark.
//!
//! Must not: talk to PostgreSQL (that is `fleet`).

use super::Store;
use crate::error::Result;
use rusqlite::{OptionalExtension, params};

/// This data directory's membership, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetMember {
    pub joined_at_ms: i64,
    pub last_attempt_at_ms: Option<i64>,
    pub last_success_at_ms: Option<i64>,
    /// The last attempt's failure (code, message), if it failed.
    pub last_error: Option<(String, String)>,
    pub pushed_rows: u64,
    /// Rows PostgreSQL would not take (each left out of the catalog), and
    /// why for the newest of them.
    pub refused_rows: u64,
    pub last_refused: Option<String>,
}

/// One entry of the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub entity: String,
    pub local_id: String,
}

/// A backup as the fleet keeps it (`None` from [`Store::fleet_backup`]:
/// deleted here).
#[derive(Clone, Debug, PartialEq)]
pub struct FleetBackupRow {
    pub id: i64,
    pub kind: String,
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub pinned: bool,
    /// JSON: `{engine, rule, metric, value, step}` of a breakthrough.
    pub milestone: Option<String>,
    /// JSON: where an imported backup came from.
    pub origin: Option<String>,
    /// JSON array: `{name, kind: "engine"|"learner", checksum, size, step, metrics}`.
    pub states: String,
    /// The engines and learners whose state it holds.
    pub names: Vec<String>,
    /// The states' size (encoded, uncompressed).
    pub bytes: i64,
    /// JSON array: `{repository, snapshot}` of every replica holding it.
    pub replica: String,
}

/// An engine or learner as the fleet keeps it (`None`: gone here).
#[derive(Clone, Debug, PartialEq)]
pub struct FleetUnitRow {
    pub name: String,
    pub kind: &'static str,
    pub format: Option<String>,
    pub registered_at_ms: Option<i64>,
    pub removed_at_ms: Option<i64>,
}

/// One stored metric point (any tier).
#[derive(Clone, Debug, PartialEq)]
pub struct FleetPoint {
    pub engine: String,
    pub key: String,
    pub tier: i16,
    pub at_ms: i64,
    pub branch: i64,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub n: i64,
}

/// Where a tier's points were sent up to: (at_ms, engine, key, branch).
pub type PointMark = (i64, String, String, i64);

impl Store {
    /// The membership, if this data directory belongs to a fleet.
    pub fn fleet_member(&self) -> Result<Option<FleetMember>> {
        Ok(self
            .conn
            .query_row(
                "SELECT joined_at, last_attempt_at, last_success_at, last_error_code, last_error,
                        pushed_rows, refused_rows, last_refused
                 FROM fleet_member WHERE id = 1",
                [],
                |r| {
                    let code: Option<String> = r.get(3)?;
                    let msg: Option<String> = r.get(4)?;
                    Ok(FleetMember {
                        joined_at_ms: r.get(0)?,
                        last_attempt_at_ms: r.get(1)?,
                        last_success_at_ms: r.get(2)?,
                        last_error: code.map(|c| (c, msg.unwrap_or_default())),
                        pushed_rows: r.get::<_, i64>(5)?.max(0) as u64,
                        refused_rows: r.get::<_, i64>(6)?.max(0) as u64,
                        last_refused: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// Becomes a member: from now on every change is queued, and
    /// everything there is already is queued once. Joining again keeps
    /// the queue as it is.
    pub fn join_fleet(&mut self, now_ms: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        let added = tx.execute(
            "INSERT INTO fleet_member (id, joined_at) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
            [now_ms],
        )?;
        if added == 1 {
            queue_everything(&tx, now_ms)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Queues every backup and learner again (the catalog lost rows: it
    /// was restored from an older copy, or rows were removed there).
    pub fn fleet_requeue_all(&mut self, now_ms: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        queue_everything(&tx, now_ms)?;
        tx.commit()?;
        Ok(())
    }

    /// Leaves the fleet: the membership and the queue go (nothing else).
    pub fn leave_fleet(&mut self) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let was = tx.execute("DELETE FROM fleet_member", [])? > 0;
        tx.execute("DELETE FROM fleet_outbox", [])?;
        tx.commit()?;
        Ok(was)
    }

    /// The oldest `limit` entries of the queue.
    pub fn fleet_outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, entity, local_id FROM fleet_outbox ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(OutboxEntry {
                seq: r.get(0)?,
                entity: r.get(1)?,
                local_id: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// How many entries wait, and since when the oldest.
    pub fn fleet_queue(&self) -> Result<(u64, Option<i64>)> {
        Ok(self.conn.query_row(
            "SELECT count(*), min(queued_at) FROM fleet_outbox",
            [],
            |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?)),
        )?)
    }

    /// PostgreSQL committed these entries (and `rows` rows in all): they
    /// leave the queue, and the attempt is recorded as a success.
    pub fn fleet_pushed(&mut self, seqs: &[i64], rows: u64, now_ms: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut del = tx.prepare_cached("DELETE FROM fleet_outbox WHERE seq = ?1")?;
            for s in seqs {
                del.execute([s])?;
            }
        }
        tx.execute(
            "UPDATE fleet_member SET last_attempt_at = ?1, last_success_at = ?1,
                    last_error_code = NULL, last_error = NULL, pushed_rows = pushed_rows + ?2
             WHERE id = 1",
            params![now_ms, rows as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A round that sent nothing succeeded: an earlier failure is over.
    pub fn fleet_ok(&mut self, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE fleet_member SET last_attempt_at = ?1, last_success_at = ?1,
                    last_error_code = NULL, last_error = NULL
             WHERE id = 1",
            [now_ms],
        )?;
        Ok(())
    }

    /// An entry PostgreSQL refused (a constraint): it leaves the queue,
    /// and the refusal is counted and said in the status.
    pub fn fleet_refused(&mut self, seq: i64, why: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM fleet_outbox WHERE seq = ?1", [seq])?;
        tx.execute(
            "UPDATE fleet_member SET refused_rows = refused_rows + 1, last_refused = ?1 WHERE id = 1",
            [why],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// An attempt that failed (code, message).
    pub fn fleet_failed(&mut self, now_ms: i64, code: &str, message: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE fleet_member SET last_attempt_at = ?1, last_error_code = ?2, last_error = ?3
             WHERE id = 1",
            params![now_ms, code, message],
        )?;
        Ok(())
    }

    /// Gives this data directory a new host id (a copy of another
    /// member's joins as a host of its own).
    pub fn new_host_id(&mut self) -> Result<String> {
        let name = self.host_name()?;
        self.conn.execute("DELETE FROM host", [])?;
        let id = self.host_id()?;
        if let Some(n) = name {
            self.set_host_name(&n)?;
        }
        Ok(id)
    }

    /// This host's name in the fleet, if one was set.
    pub fn host_name(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT name FROM host WHERE id = 1", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Sets this host's name (the host id is made first if there is none).
    pub fn set_host_name(&mut self, name: &str) -> Result<()> {
        self.host_id()?;
        self.conn
            .execute("UPDATE host SET name = ?1 WHERE id = 1", [name])?;
        Ok(())
    }

    /// A backup as the fleet keeps it, or `None` when it is gone here.
    pub fn fleet_backup(&self, id: i64) -> Result<Option<FleetBackupRow>> {
        let head = self
            .conn
            .prepare_cached(
                "SELECT kind, created_at, label, pinned, bt_engine, bt_rule, bt_metric, bt_value,
                        bt_step, origin
                 FROM backups WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let milestone = match r.get::<_, Option<String>>(5)? {
                    Some(rule) => Some(
                        serde_json::json!({
                            "engine": r.get::<_, Option<String>>(4)?,
                            "rule": rule,
                            "metric": r.get::<_, Option<String>>(6)?,
                            "value": r.get::<_, Option<f64>>(7)?,
                            "step": r.get::<_, Option<i64>>(8)?,
                        })
                        .to_string(),
                    ),
                    None => None,
                };
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)? != 0,
                    milestone,
                    r.get::<_, Option<String>>(9)?,
                ))
            })
            .optional()?;
        let Some((kind, created_at_ms, label, pinned, milestone, origin)) = head else {
            return Ok(None);
        };
        // The catalog keeps it as JSON: anything else goes as a JSON string.
        let origin = origin.map(|o| match serde_json::from_str::<serde_json::Value>(&o) {
            Ok(_) => o,
            Err(_) => serde_json::Value::String(o).to_string(),
        });
        let mut states = Vec::new();
        let mut names = Vec::new();
        let mut bytes = 0i64;
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.engine, b.checksum, b.raw_len, s.metrics
                 FROM backup_states s JOIN blobs b ON b.id = s.blob_id
                 WHERE s.backup_id = ?1 ORDER BY s.engine",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                let name: String = r.get(0)?;
                let sum: Vec<u8> = r.get(1)?;
                let size: i64 = r.get(2)?;
                let metrics: String = r.get(3)?;
                bytes += size;
                states.push(serde_json::json!({
                    "name": name, "kind": "engine", "checksum": hex(&sum), "size": size,
                    "metrics": json_or_empty(&metrics),
                }));
                names.push(name);
            }
        }
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT learner, object, size, step, metrics FROM backup_learner_states
                 WHERE backup_id = ?1 ORDER BY learner",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                let name: String = r.get(0)?;
                let sum: Vec<u8> = r.get(1)?;
                let size: i64 = r.get(2)?;
                let step: Option<i64> = r.get(3)?;
                let metrics: String = r.get(4)?;
                bytes += size;
                states.push(serde_json::json!({
                    "name": name, "kind": "learner", "checksum": hex(&sum), "size": size,
                    "step": step, "metrics": json_or_empty(&metrics),
                }));
                names.push(name);
            }
        }
        let mut replica = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT t.repository_id, c.snapshot_id
                 FROM replica_copies c JOIN replica_targets t ON t.id = c.target_id
                 WHERE c.backup_id = ?1 AND t.repository_id IS NOT NULL ORDER BY t.id",
            )?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                replica.push(serde_json::json!({
                    "repository": r.get::<_, String>(0)?,
                    "snapshot": r.get::<_, String>(1)?,
                }));
            }
        }
        Ok(Some(FleetBackupRow {
            id,
            kind,
            created_at_ms,
            label,
            pinned,
            milestone,
            origin,
            states: serde_json::Value::Array(states).to_string(),
            names,
            bytes,
            replica: serde_json::Value::Array(replica).to_string(),
        }))
    }

    /// A learner as the fleet keeps it, or `None` when it is gone here.
    pub fn fleet_learner(&self, name: &str) -> Result<Option<FleetUnitRow>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT name, format, registered_at, removed_at FROM learners WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok(FleetUnitRow {
                    name: r.get(0)?,
                    kind: "learner",
                    format: r.get(1)?,
                    registered_at_ms: r.get(2)?,
                    removed_at_ms: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// The built-in engines this data directory has a live state of.
    pub fn fleet_engines(&self) -> Result<Vec<FleetUnitRow>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT engine FROM live_states ORDER BY engine")?;
        let rows = stmt.query_map([], |r| {
            Ok(FleetUnitRow {
                name: r.get(0)?,
                kind: "engine",
                format: None,
                registered_at_ms: None,
                removed_at_ms: None,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Up to `limit` points of `tier` after `after` (at_ms, engine, key,
    /// branch), in that order; from the tier's start when `after` is `None`.
    pub fn fleet_points(
        &self,
        tier: i16,
        after: Option<&PointMark>,
        limit: usize,
    ) -> Result<Vec<FleetPoint>> {
        let (at, engine, key, branch) = match after {
            Some((a, e, k, b)) => (*a, e.as_str(), k.as_str(), *b),
            None => (i64::MIN, "", "", i64::MIN),
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT engine, key, at_ms, branch, value, min, max, n FROM metric_points
             WHERE tier = ?1 AND (at_ms, engine, key, branch) > (?2, ?3, ?4, ?5)
             ORDER BY at_ms, engine, key, branch LIMIT ?6",
        )?;
        let rows = stmt.query_map(params![tier, at, engine, key, branch, limit as i64], |r| {
            Ok(FleetPoint {
                engine: r.get(0)?,
                key: r.get(1)?,
                tier,
                at_ms: r.get(2)?,
                branch: r.get(3)?,
                value: r.get(4)?,
                min: r.get(5)?,
                max: r.get(6)?,
                n: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The oldest point kept in each tier (the fleet drops what is older).
    pub fn fleet_oldest_points(&self) -> Result<[Option<i64>; 4]> {
        let mut out = [None; 4];
        let mut stmt = self
            .conn
            .prepare_cached("SELECT min(at_ms) FROM metric_points WHERE tier = ?1")?;
        for (tier, slot) in out.iter_mut().enumerate() {
            *slot = stmt.query_row([tier as i64], |r| r.get(0))?;
        }
        Ok(out)
    }
}

/// Queues every learner and backup (a join, or a catalog that lost rows).
fn queue_everything(tx: &rusqlite::Transaction<'_>, now_ms: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO fleet_outbox (entity, local_id, queued_at)
         SELECT 'learner', name, ?1 FROM learners",
        [now_ms],
    )?;
    tx.execute(
        "INSERT INTO fleet_outbox (entity, local_id, queued_at)
         SELECT 'backup', id, ?1 FROM backups ORDER BY id",
        [now_ms],
    )?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_or_empty(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}
