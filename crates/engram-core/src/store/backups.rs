//! The backup timeline's writes and single reads: creating backups (from
//! states, or from the live rows in one transaction), restoring into the live
//! state, pinning, labelling and deleting, with blobs shared by checksum.

use super::Store;
use super::blob::{blob_col, metrics_json, open_blob, open_live, pack, parse_metrics};
use super::types::{BackupInfo, EngineState, NewBackup, check_new_backup, validate_label};
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::wire::{BackupKind, Breakthrough, Metrics};
use rusqlite::{Connection, OptionalExtension, params};

/// engine, checksum, raw_len, data, metrics of a `live_states` row.
type LiveRow = (String, Vec<u8>, i64, Vec<u8>, String);

impl Store {
    /// Writes one backup — all of its engine states — in one transaction.
    /// States already stored (same checksum) are not stored again.
    pub fn create_backup(&mut self, b: &NewBackup<'_>) -> Result<i64> {
        self.write_backup(b, None, &[])
    }

    /// Writes a backup of a cut captured at `captured_at_ms` and, in the same
    /// transaction, makes the cut the live state wherever the live state is
    /// not newer. A crash after this returns never resumes from a state older
    /// than the backup (and never records its milestone a second time).
    /// `proofs`: the learners' live slots hashed off the lock a moment ago
    /// ([`crate::objects::Objects::prove_slot`]), not hashed again here if
    /// unchanged.
    pub fn create_backup_as_live(
        &mut self,
        b: &NewBackup<'_>,
        captured_at_ms: i64,
        proofs: &[crate::objects::SlotProof],
    ) -> Result<i64> {
        self.write_backup(b, Some(captured_at_ms), proofs)
    }

    fn write_backup(
        &mut self,
        b: &NewBackup<'_>,
        live_at: Option<i64>,
        proofs: &[crate::objects::SlotProof],
    ) -> Result<i64> {
        check_new_backup(b)?;
        // Compress outside the transaction, only what is not stored yet.
        let mut compressed: Vec<Option<(i64, Vec<u8>)>> = Vec::with_capacity(b.states.len());
        for s in b.states {
            let known = self.blob_id(&s.state.checksum())?.is_some();
            compressed.push(if known {
                None
            } else {
                Some(pack(s.state.as_bytes())?)
            });
        }
        let objects = self.objects();
        let tx = self.conn.transaction()?;
        let id = insert_backup_row(&tx, b, None)?;
        for (s, data) in b.states.iter().zip(compressed) {
            let sum = s.state.checksum();
            let blob_id = match data {
                Some(data) => upsert_blob(&tx, &sum, s.state.len() as u64, &data)?,
                None => match blob_id_in(&tx, &sum)? {
                    Some(id) => id,
                    // Removed between the check and the transaction: store it now.
                    None => {
                        upsert_blob(&tx, &sum, s.state.len() as u64, &pack(s.state.as_bytes())?)?
                    }
                },
            };
            insert_backup_state(&tx, id, &s.engine, blob_id, &s.metrics)?;
        }
        if let Some(at) = live_at {
            super::live::upsert_live(&tx, b.states, at, true)?;
        }
        super::learners::include_learners(&tx, &objects, id, proofs)?;
        tx.commit()?;
        Ok(id)
    }

    /// Writes a backup of the current live states (all engines, or the given
    /// ones) without decoding or recompressing them.
    pub fn backup_live(
        &mut self,
        kind: BackupKind,
        created_at_ms: i64,
        label: Option<String>,
        breakthrough: Option<Breakthrough>,
    ) -> Result<i64> {
        let b = NewBackup {
            kind,
            created_at_ms,
            label,
            breakthrough,
            states: &[],
        };
        check_new_backup(&b)?;
        let objects = self.objects();
        // IMMEDIATE: read the live cut and write the backup under one write lock.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<LiveRow> = tx
            .prepare(
                "SELECT engine, checksum, raw_len, data, metrics FROM live_states ORDER BY engine",
            )?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    blob_col(r, 1)?,
                    r.get(2)?,
                    blob_col(r, 3)?,
                    r.get(4)?,
                ))
            })?
            .collect::<std::result::Result<_, _>>()?;
        if rows.is_empty() {
            return Err(Error::NotFound {
                what: "live state",
                id: "(none saved yet)".into(),
            });
        }
        let id = insert_backup_row(&tx, &b, None)?;
        for (engine, sum, raw_len, data, metrics) in rows {
            // Never copy a damaged live state into the timeline.
            let state = open_live(&engine, &sum, raw_len, &data)?;
            let checksum = state.checksum();
            let blob = match blob_id_in(&tx, &checksum)? {
                Some(blob) => blob,
                None => upsert_blob(&tx, &checksum, state.len() as u64, &pack(state.as_bytes())?)?,
            };
            insert_backup_state(&tx, id, &engine, blob, &parse_metrics(&metrics))?;
        }
        super::learners::include_learners(&tx, &objects, id, &[])?;
        tx.commit()?;
        Ok(id)
    }

    /// Restores a backup (all engines, or one) into the live state, offline:
    /// first a `pre-restore` backup of the current live state (so the restore
    /// can be undone), then the backup's checked states become live.
    /// Returns the pre-restore backup's id (None when nothing was live yet).
    pub fn restore_to_live(
        &mut self,
        id: i64,
        engine: Option<&str>,
        now_ms: i64,
    ) -> Result<(Option<i64>, Vec<String>)> {
        let mut states = self.backup_states(id)?; // checked before anything changes
        let mut learners: Vec<String> = self
            .backup_learners(id)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if let Some(e) = engine {
            states.retain(|s| s.engine == e);
            learners.retain(|l| l == e);
            if states.is_empty() && learners.is_empty() {
                return Err(Error::NotFound {
                    what: "engine",
                    id: format!("{e} in backup {id}"),
                });
            }
        }
        // A learner's state file must be there before anything changes.
        self.check_learner_objects(id, &learners)?;
        let has_live =
            !self.live_metrics()?.is_empty() || self.learners()?.iter().any(|l| l.live.is_some());
        let pre = if has_live {
            match self.backup_live(
                BackupKind::PreRestore,
                now_ms,
                Some(format!("before restoring backup {id}")),
                None,
            ) {
                Ok(id) => Some(id),
                // A damaged live state is what one restores away from: it
                // cannot be kept, and must not block the restore.
                Err(Error::CorruptState { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        self.make_restored_live(id, &states, &learners, now_ms)?;
        let mut names: Vec<String> = states.into_iter().map(|s| s.engine).collect();
        names.extend(learners);
        Ok((pre, names))
    }

    /// One backup with its engine summaries.
    pub fn get_backup(&self, id: i64) -> Result<BackupInfo> {
        let mut items = self.backups_where("b.id = ?1", &[&id], 1)?;
        let mut b = items.pop().ok_or_else(|| not_found_backup(id))?;
        b.engines = self
            .engine_summaries(&[id])?
            .remove(&id)
            .unwrap_or_default();
        b.set_learners(self.learner_names(&[id])?.remove(&id).unwrap_or_default());
        b.offsite = self.offsite_marks(&[id])?.remove(&id);
        Ok(b)
    }

    /// The encoded states of a backup (checked: decompressed, checksum
    /// verified, header validated), in engine-name order.
    pub fn backup_states(&self, id: i64) -> Result<Vec<EngineState>> {
        self.get_backup(id)?; // NotFound for an unknown id
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.engine, s.metrics, b.checksum, b.raw_len, b.data, b.codec
             FROM backup_states s JOIN blobs b ON b.id = s.blob_id
             WHERE s.backup_id = ?1 ORDER BY s.engine",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                blob_col(r, 2)?,
                r.get::<_, i64>(3)?,
                blob_col(r, 4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (engine, metrics, sum, raw_len, data, codec) = row?;
            let what = format!("{engine} in backup {id}");
            let state = open_blob(&what, &sum, raw_len, codec, &data)?;
            out.push(EngineState {
                engine,
                state,
                metrics: parse_metrics(&metrics),
            });
        }
        Ok(out)
    }

    /// How many backups there are.
    pub fn count_backups(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM backups", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Deletes a backup the user no longer wants. Initial, breakthrough and
    /// pinned backups are refused with the reason. Unreferenced blobs go
    /// too, and so do the learner states only this backup named.
    pub fn delete_backup(&mut self, id: i64) -> Result<()> {
        let b = self.get_backup(id)?;
        if let Some(reason) = deletion_refusal(&b) {
            return Err(Error::Protected { id, reason });
        }
        let named: Vec<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT object FROM backup_learner_states WHERE backup_id = ?1")?
            .query_map([id], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        self.delete_backups_unchecked(&[id])?;
        self.release_states(&named)
    }

    /// Pins (`true`) or unpins a backup. Pinned backups are never deleted.
    pub fn set_pinned(&mut self, id: i64, pinned: bool) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE backups SET pinned = ?2 WHERE id = ?1",
            params![id, pinned],
        )?;
        if n == 0 {
            return Err(not_found_backup(id));
        }
        Ok(())
    }

    /// Sets or clears a backup's label.
    pub fn set_label(&mut self, id: i64, label: Option<&str>) -> Result<()> {
        if let Some(l) = label {
            validate_label(l)?;
        }
        let n = self.conn.execute(
            "UPDATE backups SET label = ?2 WHERE id = ?1",
            params![id, label],
        )?;
        if n == 0 {
            return Err(not_found_backup(id));
        }
        Ok(())
    }

    /// Inserts an imported backup (states already validated) in one transaction.
    pub(crate) fn insert_imported(
        &mut self,
        b: &NewBackup<'_>,
        origin: &str,
        learners: &[super::ImportedLearner],
    ) -> Result<i64> {
        self.insert_whole(b, Some(origin), learners, None)
    }

    /// Puts back a backup recovered from a replica as it was: its id,
    /// kind, time, label, pin, milestone and origin. An id already taken
    /// here is refused.
    pub fn insert_recovered(
        &mut self,
        b: &NewBackup<'_>,
        id: i64,
        pinned: bool,
        origin: Option<&str>,
        learners: &[super::ImportedLearner],
    ) -> Result<i64> {
        if self.get_backup(id).is_ok() {
            return Err(Error::InvalidInput(format!(
                "backup {id} is already in this data directory"
            )));
        }
        self.insert_whole(b, origin, learners, Some((id, pinned)))
    }

    fn insert_whole(
        &mut self,
        b: &NewBackup<'_>,
        origin: Option<&str>,
        learners: &[super::ImportedLearner],
        as_was: Option<(i64, bool)>,
    ) -> Result<i64> {
        check_new_backup(b)?;
        let compressed = b
            .states
            .iter()
            .map(|s| pack(s.state.as_bytes()))
            .collect::<Result<Vec<_>>>()?;
        let traced = crate::iotrace::armed().then(|| self.objects());
        let tx = self.conn.transaction()?;
        let id = insert_backup_row(&tx, b, origin)?;
        let id = match as_was {
            Some((was, pinned)) => {
                tx.execute(
                    "UPDATE backups SET id = ?2, pinned = ?3 WHERE id = ?1",
                    params![id, was, pinned],
                )?;
                was
            }
            None => id,
        };
        for (s, packed) in b.states.iter().zip(compressed) {
            let blob = upsert_blob(&tx, &s.state.checksum(), s.state.len() as u64, &packed)?;
            insert_backup_state(&tx, id, &s.engine, blob, &s.metrics)?;
        }
        super::learners::insert_imported_learners(&tx, id, learners, b.created_at_ms)?;
        if let Some(objects) = &traced {
            for l in learners.iter().filter(|l| l.inline.is_none()) {
                super::learners::trace_commit(&tx, objects, &l.name, &l.state.object, None)?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    /// Deletes backups and then the blobs only they referenced, in one transaction.
    pub(crate) fn delete_backups_unchecked(&mut self, ids: &[i64]) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let mut blobs: Vec<i64> = Vec::new();
        {
            let mut q =
                tx.prepare_cached("SELECT blob_id FROM backup_states WHERE backup_id = ?1")?;
            let mut del = tx.prepare_cached("DELETE FROM backups WHERE id = ?1")?;
            for id in ids {
                let ids: Vec<i64> = q
                    .query_map([id], |r| r.get(0))?
                    .collect::<std::result::Result<_, _>>()?;
                blobs.extend(ids);
                del.execute([id])?;
            }
        }
        blobs.sort_unstable();
        blobs.dedup();
        let mut removed = 0u64;
        {
            let mut gc = tx.prepare_cached(
                "DELETE FROM blobs WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM backup_states WHERE blob_id = ?1)",
            )?;
            for b in blobs {
                removed += gc.execute([b])? as u64;
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    fn blob_id(&self, sum: &Checksum) -> Result<Option<i64>> {
        blob_id_in(&self.conn, sum)
    }
}

/// Why the user may not delete this backup, if they may not.
pub fn deletion_refusal(b: &BackupInfo) -> Option<String> {
    if b.pinned {
        return Some("it is pinned; unpin it first".into());
    }
    match b.kind {
        BackupKind::Initial => Some("the initial backup is kept forever".into()),
        BackupKind::Breakthrough => Some("breakthrough backups are permanent".into()),
        _ => None,
    }
}

pub(crate) fn not_found_backup(id: i64) -> Error {
    Error::NotFound {
        what: "backup",
        id: id.to_string(),
    }
}

fn insert_backup_row(
    tx: &rusqlite::Transaction<'_>,
    b: &NewBackup<'_>,
    origin: Option<&str>,
) -> Result<i64> {
    let bt = b.breakthrough.as_ref();
    tx.execute(
        "INSERT INTO backups (kind, created_at, label, pinned, bt_engine, bt_rule, bt_metric, bt_value, bt_step, origin)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            b.kind.as_str(),
            b.created_at_ms,
            b.label,
            bt.map(|t| t.engine.as_str()),
            bt.map(|t| t.rule.as_str()),
            bt.map(|t| t.metric.as_str()),
            bt.map(|t| t.value),
            bt.map(|t| t.step.min(i64::MAX as u64) as i64),
            origin
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn insert_backup_state(
    tx: &rusqlite::Transaction<'_>,
    backup: i64,
    engine: &str,
    blob: i64,
    metrics: &Metrics,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO backup_states (backup_id, engine, blob_id, metrics) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![backup, engine, blob, metrics_json(metrics)?])?;
    Ok(())
}

fn blob_id_in(conn: &Connection, sum: &Checksum) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM blobs WHERE checksum = ?1")?
        .query_row([&sum.0[..]], |r| r.get(0))
        .optional()?)
}

fn upsert_blob(
    tx: &rusqlite::Transaction<'_>,
    sum: &Checksum,
    raw_len: u64,
    (codec, data): &(i64, Vec<u8>),
) -> Result<i64> {
    if let Some(id) = blob_id_in(tx, sum)? {
        return Ok(id);
    }
    tx.prepare_cached(
        "INSERT INTO blobs (checksum, raw_len, codec, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&sum.0[..], raw_len as i64, codec, data])?;
    Ok(tx.last_insert_rowid())
}
