//! Where a learner's state bytes live: small ones (up to
//! [`INLINE_STATE_BYTES`]) inside the database, in the same transaction as
//! the row that makes them live — one fsync per save —, larger ones as
//! content-addressed files ([`crate::objects`]). Rows name either by the
//! same blake3 checksum, and every reader goes through here, so nothing
//! else needs to know which.
//!
//! A state no row refers to any more goes with the save or restore that
//! let go of it (inline: in its transaction; a file: right after its
//! commit), or at [`Store::collect_learner_states`] after retention
//! deleted backups.

use super::Store;
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::limits::INLINE_STATE_BYTES;
use rusqlite::{OptionalExtension, Transaction, params};

/// A small state's bytes with their checksum (computed here, so the two
/// always agree).
#[derive(Clone, Debug)]
pub struct InlineState {
    checksum: Checksum,
    bytes: Vec<u8>,
}

impl InlineState {
    /// `None` if the bytes are too many to keep inline.
    pub fn new(bytes: Vec<u8>) -> Option<InlineState> {
        (bytes.len() <= INLINE_STATE_BYTES).then(|| InlineState {
            checksum: Checksum::of(&bytes),
            bytes,
        })
    }

    pub fn checksum(&self) -> Checksum {
        self.checksum
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl Store {
    /// A learner state's bytes (inline or a file), checked against their
    /// checksum; at most `limit` bytes. Missing or damaged: `corrupt_state`.
    pub fn read_learner_bytes(&self, c: &Checksum, limit: u64) -> Result<Vec<u8>> {
        match self.inline_bytes(c)? {
            Some(bytes) => {
                if bytes.len() as u64 > limit {
                    return Err(Error::TooLarge {
                        what: "state object",
                        size: bytes.len() as u64,
                        limit,
                    });
                }
                check_inline(c, &bytes)?;
                Ok(bytes)
            }
            None => self.objects().read(c, limit),
        }
    }

    /// A learner state's bytes to read piece by piece (a large one stays
    /// in its file), checked against their checksum first.
    pub fn learner_bytes_at(&self, c: &Checksum) -> Result<StateBytes> {
        match self.inline_bytes(c)? {
            Some(bytes) => {
                check_inline(c, &bytes)?;
                Ok(StateBytes::Memory(bytes))
            }
            None => {
                let (file, len) = self.objects().open_checked(c)?;
                Ok(StateBytes::File(file, len))
            }
        }
    }

    /// Checks a learner state's bytes against their checksum.
    pub fn verify_learner_bytes(&self, c: &Checksum) -> Result<()> {
        match self.inline_bytes(c)? {
            Some(bytes) => check_inline(c, &bytes),
            None => self.objects().verify(c),
        }
    }

    /// Whether a learner state's bytes are stored (not checked).
    pub fn has_learner_bytes(&self, c: &Checksum) -> Result<bool> {
        let inline: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM learner_inline_states WHERE checksum = ?1)",
            )?
            .query_row([&c.0[..]], |r| r.get(0))?;
        Ok(inline || self.objects().contains(c))
    }

    /// Removes the learner states no row refers to (and temporary files
    /// older than [`crate::objects::GC_GRACE`]). Returns how many went.
    pub fn collect_learner_states(&self) -> Result<u64> {
        let inline = self.conn.execute(
            "DELETE FROM learner_inline_states WHERE checksum NOT IN
               (SELECT object FROM learner_live UNION SELECT object FROM backup_learner_states)",
            [],
        )? as u64;
        let keep = self.learner_objects()?;
        Ok(inline + self.objects().collect(&keep)?)
    }

    fn inline_bytes(&self, c: &Checksum) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT bytes FROM learner_inline_states WHERE checksum = ?1")?
            .query_row([&c.0[..]], |r| r.get(0))
            .optional()?)
    }
}

/// Whether a state is kept inside the database (inside the caller's
/// transaction).
pub(super) fn is_inline(tx: &Transaction<'_>, c: &Checksum) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM learner_inline_states WHERE checksum = ?1)")?
        .query_row([&c.0[..]], |r| r.get(0))?)
}

/// Stores a small state inside the caller's transaction (once per content).
pub(super) fn put_inline(tx: &Transaction<'_>, state: &InlineState) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO learner_inline_states (checksum, bytes) VALUES (?1, ?2)
         ON CONFLICT (checksum) DO NOTHING",
    )?
    .execute(params![&state.checksum.0[..], &state.bytes[..]])?;
    Ok(())
}

/// Lets go of a state a row no longer names (inside the transaction that
/// let go of it): if no row refers to it any more, its inline copy is
/// deleted and its checksum returned, so that the caller removes its file
/// too once the transaction has committed ([`Store::remove_freed`]).
pub(super) fn release(tx: &Transaction<'_>, object: &[u8]) -> Result<Option<Checksum>> {
    let referenced: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM learner_live WHERE object = ?1)
                 OR EXISTS (SELECT 1 FROM backup_learner_states WHERE object = ?1)",
        )?
        .query_row([object], |r| r.get(0))?;
    if referenced {
        return Ok(None);
    }
    tx.prepare_cached("DELETE FROM learner_inline_states WHERE checksum = ?1")?
        .execute([object])?;
    Ok(Checksum::from_slice(object).ok())
}

impl Store {
    /// Lets go of states rows named a moment ago (a deleted backup's): each
    /// one no row refers to any more goes (inline at once, its file after
    /// the commit).
    pub(super) fn release_states(&mut self, objects: &[Vec<u8>]) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut freed = Vec::new();
        for o in objects {
            freed.push(release(&tx, o)?);
        }
        tx.commit()?;
        for f in freed {
            self.remove_freed(f);
        }
        Ok(())
    }

    /// Removes the file of a state no row refers to any more (after the
    /// commit that let go of it; under the store lock, so no save is
    /// placing the same content meanwhile). A failure only leaves garbage
    /// for the next collection.
    pub(super) fn remove_freed(&self, freed: Option<Checksum>) {
        if let Some(c) = freed
            && let Err(e) = self.objects().remove(&c)
        {
            tracing::warn!(error = %e, "removing an unreferenced learner state file failed");
        }
    }
}

fn check_inline(c: &Checksum, bytes: &[u8]) -> Result<()> {
    if Checksum::of(bytes) != *c {
        return Err(Error::corrupt(
            "learner state",
            format!(
                "the state {} kept in the database does not match its checksum",
                c.to_hex()
            ),
        ));
    }
    Ok(())
}

/// A learner state's bytes, read at any offset: in memory (a small state,
/// kept inline) or in its object file.
#[derive(Debug)]
pub enum StateBytes {
    Memory(Vec<u8>),
    File(std::fs::File, u64),
}

impl StateBytes {
    pub fn len(&self) -> u64 {
        match self {
            StateBytes::Memory(b) => b.len() as u64,
            StateBytes::File(_, len) => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`; reading past the end is an error.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len()) {
            return Err(Error::corrupt(
                "state object",
                format!(
                    "a read at {offset} runs past its end ({} bytes)",
                    self.len()
                ),
            ));
        }
        match self {
            StateBytes::Memory(b) => {
                buf.copy_from_slice(&b[offset as usize..offset as usize + buf.len()]);
                Ok(())
            }
            StateBytes::File(f, _) => {
                use std::os::unix::fs::FileExt;
                f.read_exact_at(buf, offset)
                    .map_err(|e| Error::io("read", "a learner state object", e))
            }
        }
    }
}
