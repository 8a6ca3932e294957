//! Which slot each save and lease of a learner holds: a save claims a slot
//! no other save writes and that is not the live one; a lease lends a
//! claimed slot to the learner's own process under a name it can write.

use crate::Checksum;
use crate::error::Error;
use crate::objects::{LeasedSlot, Objects};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The slots lent to learners (see [`SlotLease`]), by lease id. Each holds
/// its slot's claim, so no save of Engram's writes a lent slot; a lease
/// ends with its save, or is voided when its learner attaches again (a new
/// run: the run it was lent to is gone) or Engram restarts.
pub(crate) type Leases = Arc<Mutex<HashMap<String, Lease>>>;

/// A lent slot: its claim and its file's lent name.
pub(crate) struct Lease {
    pub(super) claim: SlotClaim,
    pub(super) slot: LeasedSlot,
}

impl Lease {
    /// Ends the lease without a save: its name and its slot's file go
    /// before its claim is let go (the slot's next user makes a new file),
    /// so a writer that still holds the file writes into nothing anyone
    /// reads.
    pub(super) fn void(self, objects: &Objects) {
        objects.void_leased_slot(&self.slot);
        drop(self.claim);
    }
}

/// The leases, locked.
pub(super) fn lock_leases(
    leases: &Leases,
) -> Result<std::sync::MutexGuard<'_, HashMap<String, Lease>>, Error> {
    leases
        .lock()
        .map_err(|_| Error::Internal("the leases are poisoned".into()))
}

/// Voids the leases of a learner (it attached again: the run they were
/// lent to is gone), under the store lock like every claim. A writer that
/// still holds a voided slot's file writes into nothing anyone reads.
pub(super) fn void_leases(leases: &Leases, objects: &Objects, name: &str) -> Result<(), Error> {
    let voided: Vec<Lease> = lock_leases(leases)?
        .extract_if(|_, l| l.slot.learner == name)
        .map(|(_, l)| l)
        .collect();
    for lease in voided {
        lease.void(objects);
    }
    Ok(())
}

/// How many slots a learner has: one holds its live state, the others are
/// written by saves in progress (a save that finds none free writes a new
/// object file instead).
pub(super) const SLOTS_PER_LEARNER: u8 = 4;

/// Per learner, the slots saves in progress are writing.
pub(crate) type SlotClaims = Arc<Mutex<HashMap<String, BTreeSet<u8>>>>;

/// A slot a save in progress writes: neither the live one nor another
/// save's. Claimed under the store lock (so the live slot it avoids is
/// current), let go when the save is over — committed or not.
pub(super) struct SlotClaim {
    pub(super) claims: SlotClaims,
    pub(super) learner: String,
    pub(super) slot: u8,
    /// The live state's checksum when claimed: the same bytes again need
    /// no new durable copy.
    pub(super) live: Option<Checksum>,
}

impl SlotClaim {
    /// Claims a free slot of `learner` (`None`: all in use), with the store
    /// locked by the caller.
    pub(super) fn take(
        claims: &SlotClaims,
        store: &crate::Store,
        learner: &str,
    ) -> Result<Option<SlotClaim>, Error> {
        let (live_slot, live) = store.learner_live_slot(learner)?;
        let mut all = claims
            .lock()
            .map_err(|_| Error::Internal("the slot claims are poisoned".into()))?;
        let taken = all.entry(learner.to_string()).or_default();
        let Some(slot) =
            (0..SLOTS_PER_LEARNER).find(|k| Some(*k) != live_slot && !taken.contains(k))
        else {
            return Ok(None);
        };
        taken.insert(slot);
        Ok(Some(SlotClaim {
            claims: claims.clone(),
            learner: learner.to_string(),
            slot,
            live,
        }))
    }
}

impl Drop for SlotClaim {
    fn drop(&mut self) {
        if let Ok(mut all) = self.claims.lock()
            && let Some(taken) = all.get_mut(&self.learner)
        {
            taken.remove(&self.slot);
            if taken.is_empty() {
                all.remove(&self.learner);
            }
        }
    }
}
