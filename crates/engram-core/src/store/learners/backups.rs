//! Learners in backups: every cut holds each learner's newest durable
//! state; an import adds a snapshot's learner states; a restore makes a
//! backup's state live again (the learner's next generation).

use super::live::{live_slots_in, set_live_row, trace_commit};
use super::{NewLearnerState, state_from_row};
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::blob::metrics_json;
use crate::wire::LearnerState;
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeSet;

impl Store {
    /// A learner's state in a backup (`not_found` if the backup did not
    /// hold it).
    pub fn backup_learner_state(&self, backup_id: i64, name: &str) -> Result<LearnerState> {
        backup_learner_state_in(&self.conn, backup_id, name)
    }

    /// `corrupt_state` unless the state of each of `names` in backup
    /// `backup_id` is there to be made live (checked before a restore
    /// changes anything).
    pub fn check_learner_objects(&self, backup_id: i64, names: &[String]) -> Result<()> {
        for name in names {
            let state = self.backup_learner_state(backup_id, name)?;
            if !self.has_learner_bytes(&Checksum::from_hex(&state.checksum)?)? {
                return Err(Error::corrupt(
                    "learner state",
                    format!("the state of {name} in backup {backup_id} is missing"),
                ));
            }
        }
        Ok(())
    }

    /// Makes a backup's state of a learner its live state again (a restore
    /// from the timeline), in its next generation. `not_found` if the backup
    /// does not hold the learner, `corrupt_state` if its file is gone.
    pub fn restore_learner(
        &mut self,
        backup_id: i64,
        name: &str,
        now_ms: i64,
    ) -> Result<LearnerState> {
        self.check_learner_objects(backup_id, &[name.to_string()])?;
        let tx = self.conn.transaction()?;
        let (state, freed) = restore_learner_row(&tx, backup_id, name, now_ms)?;
        tx.commit()?;
        self.remove_freed(freed);
        Ok(state)
    }

    /// A restore, made live in one transaction: the engines' `states` (from
    /// backup `backup_id`) and the backup's state of each of `learners`
    /// (each in its next generation) become the live state, and a new line
    /// of metric history starts — all of it or, on any error, none. Returns
    /// the new line's id. The learners' files are checked first.
    pub fn make_restored_live(
        &mut self,
        backup_id: i64,
        states: &[crate::store::types::EngineState],
        learners: &[String],
        now_ms: i64,
    ) -> Result<i64> {
        self.check_learner_objects(backup_id, learners)?;
        let tx = self.conn.transaction()?;
        if !states.is_empty() {
            crate::store::live::upsert_live(&tx, states, now_ms, false)?;
        }
        let mut freed = Vec::new();
        for name in learners {
            freed.push(restore_learner_row(&tx, backup_id, name, now_ms)?.1);
        }
        let branch = crate::store::history::insert_branch(&tx, now_ms, Some(backup_id), "restore")?;
        tx.commit()?;
        for f in freed {
            self.remove_freed(f);
        }
        Ok(branch)
    }

    /// A learner's live state and its bytes — or, when the live state's file
    /// is damaged or missing, the newest backup's state of it that reads
    /// back intact, made live (a restore: the learner's next generation).
    /// Returns the backup fallen back to, if any. With none intact, the
    /// damage is the error.
    pub fn learner_live_or_fallback(
        &mut self,
        name: &str,
        now_ms: i64,
    ) -> Result<(LearnerState, Vec<u8>, Option<i64>)> {
        let live = self.learner(name)?.live.ok_or_else(|| Error::NotFound {
            what: "saved state of learner",
            id: name.to_string(),
        })?;
        let limit = crate::limits::MAX_LEARNER_STATE_BYTES;
        let damage =
            match self.read_live_learner_bytes(name, &Checksum::from_hex(&live.checksum)?, limit) {
                Ok(bytes) => return Ok((live, bytes, None)),
                Err(e @ Error::CorruptState { .. }) => e,
                Err(e) => return Err(e),
            };
        let held: Vec<(i64, Vec<u8>)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.backup_id, s.object FROM backup_learner_states s
                 JOIN backups b ON b.id = s.backup_id
                 WHERE s.learner = ?1 ORDER BY b.created_at DESC, b.id DESC",
            )?;
            stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<std::result::Result<_, _>>()?
        };
        let damaged = Checksum::from_hex(&live.checksum)?;
        for (id, object) in held {
            let object = Checksum::from_slice(&object)?;
            if object == damaged {
                continue; // the same damaged state
            }
            if let Ok(bytes) = self.read_learner_bytes(&object, limit) {
                let state = self.restore_learner(id, name, now_ms)?;
                return Ok((state, bytes, Some(id)));
            }
        }
        Err(damage)
    }

    /// The learners a backup holds, by name.
    pub fn backup_learners(&self, backup_id: i64) -> Result<Vec<(String, LearnerState)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.learner, s.object, s.size, s.step, s.metrics, b.created_at
             FROM backup_learner_states s JOIN backups b ON b.id = s.backup_id
             WHERE s.backup_id = ?1 ORDER BY s.learner",
        )?;
        let rows = stmt.query_map([backup_id], |r| Ok((r.get(0)?, state_from_row(r, 1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Every object a row refers to (live or in a backup): what object
    /// collection must keep.
    pub fn learner_objects(&self) -> Result<BTreeSet<Checksum>> {
        let mut stmt = self.conn.prepare(
            "SELECT object FROM learner_live UNION SELECT object FROM backup_learner_states",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = BTreeSet::new();
        for row in rows {
            if let Ok(c) = Checksum::from_slice(&row?) {
                out.insert(c);
            }
        }
        Ok(out)
    }
}

/// A learner's state from an imported snapshot: its object is durable.
#[derive(Clone, Debug)]
pub struct ImportedLearner {
    pub name: String,
    pub format: String,
    pub state: NewLearnerState,
    /// Its bytes, when small enough to keep inside the database (else the
    /// state is an object file already).
    pub inline: Option<crate::store::InlineState>,
}

/// Adds imported learner states to backup `backup_id` (in the import's
/// transaction), registering learners this database did not know.
pub(in crate::store) fn insert_imported_learners(
    tx: &rusqlite::Transaction<'_>,
    backup_id: i64,
    learners: &[ImportedLearner],
    now_ms: i64,
) -> Result<()> {
    for l in learners {
        tx.prepare_cached(
            "INSERT INTO learners (name, format, registered_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![l.name, l.format, now_ms])?;
        if let Some(inline) = &l.inline {
            crate::store::learner_bytes::put_inline(tx, inline)?;
        }
        tx.prepare_cached(
            "INSERT INTO backup_learner_states (backup_id, learner, object, size, step, metrics)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            backup_id,
            l.name,
            l.state.object.0.to_vec(),
            l.state.size as i64,
            l.state.step.map(|s| s as i64),
            metrics_json(&l.state.metrics)?,
        ])?;
    }
    Ok(())
}

/// Copies every learner's live state into a backup being written (same
/// transaction as the backup row: the cut holds each learner's newest
/// durable state at that instant).
pub(in crate::store) fn include_learners(
    tx: &rusqlite::Transaction<'_>,
    objects: &crate::objects::Objects,
    backup_id: i64,
    proofs: &[crate::objects::SlotProof],
) -> Result<()> {
    // A backup names states by checksum, and a slot is overwritten later:
    // a live state held in a slot becomes the object it is first (a
    // rename), and is found by checksum from now on.
    for (learner, slot, c) in live_slots_in(tx)? {
        objects.adopt_slot(&learner, slot, &c, proofs)?;
        if objects.contains(&c) || crate::store::learner_bytes::is_inline(tx, &c)? {
            tx.execute(
                "UPDATE learner_live SET slot = NULL WHERE learner = ?1",
                [&learner],
            )?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO backup_learner_states (backup_id, learner, object, size, step, metrics)
         SELECT ?1, learner, object, size, step, metrics FROM learner_live",
    )?
    .execute([backup_id])?;
    if crate::iotrace::armed() {
        let named: Vec<(String, Vec<u8>)> = tx
            .prepare("SELECT learner, object FROM learner_live")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        for (learner, object) in named {
            trace_commit(tx, objects, &learner, &Checksum::from_slice(&object)?, None)?;
        }
    }
    Ok(())
}

/// Makes a backup's state of a learner live (next generation), inside the
/// caller's transaction; also returns the state it let go of, if no row
/// refers to that any more (its file goes after the commit).
pub(super) fn restore_learner_row(
    tx: &rusqlite::Transaction<'_>,
    backup_id: i64,
    name: &str,
    now_ms: i64,
) -> Result<(LearnerState, Option<Checksum>)> {
    let mut state = backup_learner_state_in(tx, backup_id, name)?;
    let object = Checksum::from_hex(&state.checksum)?;
    // A new generation: saves of the line restored away from are refused.
    // A deleted learner is back.
    tx.execute(
        "UPDATE learners SET generation = generation + 1, removed_at = NULL WHERE name = ?1",
        [name],
    )?;
    let freed = set_live_row(
        tx,
        name,
        &object,
        state.size,
        state.step,
        &metrics_json(&state.metrics)?,
        now_ms,
        None,
    )?;
    state.saved_at_ms = now_ms;
    Ok((state, freed))
}

/// A backup's state of a learner (`not_found` if it holds none).
pub(super) fn backup_learner_state_in(
    conn: &rusqlite::Connection,
    backup_id: i64,
    name: &str,
) -> Result<LearnerState> {
    conn.prepare_cached(
        "SELECT s.object, s.size, s.step, s.metrics, b.created_at
         FROM backup_learner_states s JOIN backups b ON b.id = s.backup_id
         WHERE s.backup_id = ?1 AND s.learner = ?2",
    )?
    .query_row(params![backup_id, name], |r| state_from_row(r, 0))
    .optional()?
    .ok_or_else(|| Error::NotFound {
        what: "learner state in backup",
        id: format!("{backup_id}/{name}"),
    })
}
