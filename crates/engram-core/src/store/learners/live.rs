//! Learners' live states: a save makes a durable object (or a slot's file,
//! or bytes inside the database) the learner's newest state, in one
//! transaction with its metrics; reads check the bytes against their
//! checksum.

use super::NewLearnerState;
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::blob::metrics_json;
use crate::wire::LearnerState;
use rusqlite::{OptionalExtension, params};

impl Store {
    /// Makes a stored object the learner's live state (the object must be
    /// durable already) and, with a history branch, records its metrics in
    /// the metric history — one transaction.
    pub fn save_learner_live(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        self.save_learner_live_with(name, s, None, None, at_ms, branch)
    }

    /// The same for a state held in one of the learner's slots (durable
    /// already: see [`crate::objects::Objects::slot_writer`]).
    pub fn save_learner_live_in_slot(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        slot: u8,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        self.save_learner_live_with(name, s, None, Some(slot), at_ms, branch)
    }

    /// The live states held in slots: learner, slot and checksum (what a
    /// backup cut will adopt; see [`crate::objects::Objects::prove_slot`]).
    pub fn live_slots(&self) -> Result<Vec<(String, u8, Checksum)>> {
        live_slots_in(&self.conn)
    }

    /// At start, before saves or leases: removes the slot files no live
    /// state is held in and the names of leases an earlier run lent (see
    /// [`crate::objects::Objects::clear_slots`]). Returns how many went.
    pub fn clear_unused_slots(&self) -> Result<usize> {
        let live = self
            .live_slots()?
            .into_iter()
            .map(|(learner, slot, _)| (learner, slot))
            .collect();
        self.objects().clear_slots(&live)
    }

    /// The slot a learner's live state is held in, and its checksum (none:
    /// no live state, or it is found by checksum).
    pub fn learner_live_slot(&self, name: &str) -> Result<(Option<u8>, Option<Checksum>)> {
        let row: Option<(Option<i64>, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT slot, object FROM learner_live WHERE learner = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match row {
            Some((slot, object)) => (
                slot.and_then(|s| u8::try_from(s).ok()),
                Checksum::from_slice(&object).ok(),
            ),
            None => (None, None),
        })
    }

    /// A learner's live state's bytes, checked: from its slot if it is held
    /// in one, else (or if the slot no longer holds it) by checksum.
    pub fn read_live_learner_bytes(&self, name: &str, c: &Checksum, limit: u64) -> Result<Vec<u8>> {
        if let Some(slot) = self.live_slot_of(name, c)?
            && let Some(bytes) = self.objects().read_slot(name, slot, c, limit)?
        {
            return Ok(bytes);
        }
        self.read_learner_bytes(c, limit)
    }

    /// A learner's live state's bytes to read piece by piece. Held in a
    /// slot, they are read whole first (checked): the learner may write
    /// that slot again once it is no longer live, so a later read could see
    /// other bytes. Else (an object or inline) they are read where they are.
    pub fn live_learner_bytes_at(
        &self,
        name: &str,
        c: &Checksum,
    ) -> Result<crate::store::StateBytes> {
        if self.live_slot_of(name, c)?.is_some() {
            let bytes = self.read_live_learner_bytes(name, c, crate::limits::MAX_OBJECT_BYTES)?;
            return Ok(crate::store::StateBytes::Memory(bytes));
        }
        self.learner_bytes_at(c)
    }

    /// Checks a learner's live state's bytes: in its slot if it is held in
    /// one (and the slot still holds it), else by checksum.
    pub fn verify_live_learner_bytes(&self, name: &str, c: &Checksum) -> Result<()> {
        if let Some(slot) = self.live_slot_of(name, c)?
            && self.objects().slot_holds(name, slot, c)?
        {
            return Ok(());
        }
        self.verify_learner_bytes(c)
    }

    /// The slot the learner's live state is held in, if that state is `c`.
    fn live_slot_of(&self, name: &str, c: &Checksum) -> Result<Option<u8>> {
        Ok(match self.learner_live_slot(name)? {
            (Some(slot), Some(live)) if live == *c => Some(slot),
            _ => None,
        })
    }

    /// The same, with a small state's bytes kept inside the database in
    /// the same transaction: one fsync for the whole save. `s.object` and
    /// `s.size` must be theirs.
    pub fn save_learner_live_inline(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        bytes: &crate::store::InlineState,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        self.save_learner_live_with(name, s, Some(bytes), None, at_ms, branch)
    }

    fn save_learner_live_with(
        &mut self,
        name: &str,
        s: &NewLearnerState,
        inline: Option<&crate::store::InlineState>,
        slot: Option<u8>,
        at_ms: i64,
        branch: Option<i64>,
    ) -> Result<LearnerState> {
        let NewLearnerState {
            generation,
            object,
            size,
            step,
            metrics,
        } = s;
        let (size, step) = (*size, *step);
        let json = metrics_json(metrics)?;
        // For the power-loss check only (see crate::iotrace).
        let traced = crate::iotrace::armed().then(|| self.objects());
        let tx = self.conn.transaction()?;
        let current: Option<i64> = tx
            .prepare_cached(
                "SELECT generation FROM learners WHERE name = ?1 AND removed_at IS NULL",
            )?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let Some(current) = current else {
            return Err(Error::NotFound {
                what: "learner",
                id: name.to_string(),
            });
        };
        // Checked in the save's own transaction: a restore cannot slip in
        // between the check and the write.
        if let Some(sent) = *generation
            && sent != current
        {
            return Err(Error::StaleState {
                learner: name.to_string(),
                sent,
                current,
            });
        }
        if let Some(state) = inline {
            if state.checksum() != *object || state.len() != size {
                return Err(Error::Internal(
                    "a state's bytes do not match the checksum and size given".into(),
                ));
            }
            crate::store::learner_bytes::put_inline(&tx, state)?;
        }
        let freed = set_live_row(&tx, name, object, size, step, &json, at_ms, slot)?;
        if let Some(objects) = &traced
            && inline.is_none()
        {
            trace_commit(&tx, objects, name, object, slot)?;
        }
        if let Some(branch) = branch
            && !metrics.is_empty()
        {
            let m = std::collections::BTreeMap::from([(name.to_string(), metrics.clone())]);
            crate::store::history::record_points(&tx, at_ms, branch, m.iter())?;
        }
        tx.commit()?;
        self.remove_freed(freed);
        Ok(LearnerState {
            checksum: object.to_hex(),
            size,
            step,
            metrics: metrics.clone(),
            saved_at_ms: at_ms,
        })
    }
}

/// The live states held in slots (see [`Store::live_slots`]), read
/// through `conn` (a transaction too).
pub(super) fn live_slots_in(conn: &rusqlite::Connection) -> Result<Vec<(String, u8, Checksum)>> {
    let mut stmt = conn
        .prepare_cached("SELECT learner, slot, object FROM learner_live WHERE slot IS NOT NULL")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (learner, slot, object) = row?;
        if let (Ok(slot), Ok(c)) = (u8::try_from(slot), Checksum::from_slice(&object)) {
            out.push((learner, slot, c));
        }
    }
    Ok(out)
}

/// For the power-loss check ([`crate::iotrace`]): the file a row about to
/// be committed names (its slot's, or its object's — none for a state
/// kept inside the database).
pub(in crate::store) fn trace_commit(
    tx: &rusqlite::Transaction<'_>,
    objects: &crate::objects::Objects,
    learner: &str,
    object: &Checksum,
    slot: Option<u8>,
) -> Result<()> {
    let named = match slot {
        Some(k) => objects.slot_path(learner, k),
        None if crate::store::learner_bytes::is_inline(tx, object)? => return Ok(()),
        None => objects.path_of(object),
    };
    crate::iotrace::record(|| crate::iotrace::Op::Commit(named));
    Ok(())
}

/// Makes `object` a learner's live state inside the caller's transaction
/// (an upsert: a learner known only from an imported backup has no live row
/// yet); returns the state it let go of if no row refers to that any more
/// (its inline copy is gone; its file goes after the commit).
#[allow(clippy::too_many_arguments)]
pub(super) fn set_live_row(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    object: &Checksum,
    size: u64,
    step: Option<u64>,
    metrics_json: &str,
    at_ms: i64,
    slot: Option<u8>,
) -> Result<Option<Checksum>> {
    // Prepared once per connection: a save runs these every time.
    let replaced: Option<Vec<u8>> = tx
        .prepare_cached("SELECT object FROM learner_live WHERE learner = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    tx.prepare_cached(
        "INSERT INTO learner_live (learner, object, size, step, metrics, saved_at, slot)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (learner) DO UPDATE SET object = excluded.object, size = excluded.size,
           step = excluded.step, metrics = excluded.metrics, saved_at = excluded.saved_at,
           slot = excluded.slot",
    )?
    .execute(params![
        name,
        &object.0[..],
        size.min(i64::MAX as u64) as i64,
        step.map(|s| s.min(i64::MAX as u64) as i64),
        metrics_json,
        at_ms,
        slot.map(i64::from)
    ])?;
    match replaced {
        Some(old) if old[..] != object.0[..] => crate::store::learner_bytes::release(tx, &old),
        _ => Ok(None),
    }
}
