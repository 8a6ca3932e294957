//! Learners' slot files: each learner's live state is written in place
//! into one of a few files of its own (`<data dir>/slots/<learner>/<n>`),
//! overwritten by a later save, so a save of a large state needs only
//! `fdatasync`; a slot can be lent to the learner's own process, which
//! writes it directly (see [`Objects::lease_slot`]). A backup cut turns the
//! live slot's file into an object ([`Objects::adopt_slot`]), so no backup
//! names a file that is overwritten later.

use super::files::{hash_file, hash_reader, make_dirs, remove_traced, sync_dir, sync_dirs_up};
use super::{ObjectWriter, Objects};
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::iotrace::{self, Op};
use crate::limits::MAX_OBJECT_BYTES;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where learners' slots live, beside `objects/` (see [`Objects::slot_writer`]).
pub const SLOTS: &str = "slots";

impl Objects {
    /// Where slot `slot` of learner `learner` lives:
    /// `<data dir>/slots/<learner>/<slot>`.
    pub(crate) fn slot_path(&self, learner: &str, slot: u8) -> PathBuf {
        self.learner_slots(learner).join(slot.to_string())
    }

    /// `<data dir>/slots/<learner>`.
    fn learner_slots(&self, learner: &str) -> PathBuf {
        self.slots_root().join(learner)
    }

    /// `<data dir>/slots`.
    fn slots_root(&self) -> PathBuf {
        self.root.parent().unwrap_or(&self.root).join(SLOTS)
    }

    /// Starts writing a learner's live state into one of its slots, in
    /// place: a file that outlives each save and is overwritten by a later
    /// one. The caller makes sure no row names what the slot holds (it is
    /// neither live nor being written by another save). Overwriting a file
    /// that exists needs only `fdatasync` to be durable — no new directory
    /// entry, no allocation when the size is unchanged: measured here, 1 MB
    /// in 0.3 ms, against 1.1 ms for a new file + fsync and 1.3–1.4 ms for
    /// the temporary file + rename + directory fsync of [`Objects::writer`].
    pub fn slot_writer(&self, learner: &str, slot: u8, limit: u64) -> Result<ObjectWriter> {
        let (file, slot) = self.open_slot(learner, slot)?;
        Ok(ObjectWriter::new(
            self,
            PathBuf::new(),
            file,
            limit,
            Some(slot),
        ))
    }

    /// A slot's file, opened for writing (made, empty, if missing), and
    /// what making it durable will take.
    fn open_slot(&self, learner: &str, slot: u8) -> Result<(File, SlotFile)> {
        let path = self.slot_path(learner, slot);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        make_dirs(&dir)?;
        let created = !path.is_file();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        if created {
            iotrace::record(|| Op::Create(path.clone()));
        }
        Ok((file, SlotFile { path, created }))
    }

    /// Lends a learner's slot to a writer in another process on this
    /// machine (the learner itself: one copy of its bytes, into the page
    /// cache, instead of sending them): a new name, `lease-<id>`, is linked
    /// to the slot's file, and the writer opens that name. The caller has
    /// claimed the slot (neither live nor written by anyone else).
    /// [`Objects::take_leased_slot`] ends the lease and takes what was
    /// written; [`Objects::void_leased_slot`] ends it without. A writer
    /// that holds the file open past either writes into a file no one
    /// reads: ending a lease removes the name, and voiding it removes the
    /// slot's file too, so a slow or stray writer can never reach a state
    /// that a row names.
    pub fn lease_slot(&self, learner: &str, slot: u8, id: &str) -> Result<LeasedSlot> {
        let (file, slot_file) = self.open_slot(learner, slot)?;
        drop(file);
        let link = slot_file.path.with_file_name(format!("{LEASE_PREFIX}{id}"));
        std::fs::hard_link(&slot_file.path, &link).map_err(|e| Error::io("link", &link, e))?;
        iotrace::record(|| Op::Link {
            from: slot_file.path.clone(),
            to: link.clone(),
        });
        // Absolute: the writer runs elsewhere, in a directory of its own.
        let link = std::path::absolute(&link)
            .map_err(|e| Error::io("find the absolute path of", &link, e))?;
        Ok(LeasedSlot {
            learner: learner.to_string(),
            slot,
            link,
            file: slot_file,
        })
    }

    /// Ends a lease and takes what its writer left in the slot: hashed as
    /// it is read (at most `limit` bytes, else `too_large`) and made
    /// durable — `fdatasync` beside the hashing.
    pub fn take_leased_slot(&self, leased: LeasedSlot, limit: u64) -> Result<WrittenSlot> {
        let LeasedSlot { link, file, .. } = leased;
        std::fs::remove_file(&link).map_err(|e| Error::io("remove", &link, e))?;
        iotrace::record(|| Op::Remove(link.clone()));
        let f = File::open(&file.path).map_err(|e| Error::io("open", &file.path, e))?;
        let size = f
            .metadata()
            .map_err(|e| Error::io("read the size of", &file.path, e))?
            .len();
        if size > limit.min(MAX_OBJECT_BYTES) {
            return Err(Error::TooLarge {
                what: "state",
                size,
                limit: limit.min(MAX_OBJECT_BYTES),
            });
        }
        // Written back while it is hashed (the writer is done with it); a
        // new file's directory entries are made durable afterwards.
        let syncing = match f.try_clone() {
            Ok(dup) if !file.created => {
                let path = file.path.clone();
                Some(std::thread::spawn(move || {
                    iotrace::sync_file(&dup, &path, false)
                }))
            }
            _ => None,
        };
        let (checksum, read) =
            hash_reader(&mut (&f).take(size)).map_err(|e| Error::io("read", &file.path, e))?;
        let durable = syncing.is_some_and(|h| matches!(h.join(), Ok(Ok(()))));
        if read != size {
            return Err(Error::InvalidInput(format!(
                "the leased slot changed while it was read ({read} of {size} bytes)"
            )));
        }
        let mut written = WrittenSlot {
            file: Some(f),
            slot: file,
            checksum,
            size,
            durable,
        };
        written.make_durable()?;
        Ok(written)
    }

    /// Ends a lease without taking anything: its name and the slot's file
    /// go (the next use of the slot makes a new file), so a writer that
    /// still holds the file writes into nothing anyone reads.
    pub fn void_leased_slot(&self, leased: &LeasedSlot) {
        remove_traced(&leased.link);
        remove_traced(&leased.file.path);
    }

    /// At start, before anything is lent: removes every lease's name left
    /// from an earlier run and every slot file no row names (`live`: the
    /// slot each learner's live state is held in). Such files hold nothing
    /// anyone needs, and a writer from an earlier run that still holds one
    /// must not reach a slot a later save will use. Returns how many files
    /// went.
    pub fn clear_slots(&self, live: &std::collections::HashMap<String, u8>) -> Result<usize> {
        let mut removed = 0;
        for (learner, slot, path) in self.slot_files()? {
            let keep = slot.is_some_and(|k| live.get(&learner) == Some(&k));
            if !keep && remove_traced(&path) {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes a deleted learner's slot files and lent names (its
    /// directory under `slots/`). A writer that still holds one writes into
    /// a file no one reads; a save of it that opens its slot afterwards
    /// leaves a file the next start's [`Objects::clear_slots`] removes.
    pub fn remove_slots(&self, learner: &str) -> Result<()> {
        let dir = self.learner_slots(learner);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &dir, e)),
        }
    }

    /// The bytes the learners' slot files hold (a lent name is the same
    /// file again, not counted; what is unreadable counts as nothing: this
    /// is for a report, not a check).
    pub fn slot_bytes(&self) -> u64 {
        self.slot_files()
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, slot, _)| slot.is_some())
            .filter_map(|(_, _, path)| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Every file in the slot directories: its learner, its slot (`None`:
    /// a lent name or something else) and its path.
    fn slot_files(&self) -> Result<Vec<(String, Option<u8>, PathBuf)>> {
        let slots = self.slots_root();
        let learners = match std::fs::read_dir(&slots) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &slots, e)),
        };
        let mut all = Vec::new();
        for learner in learners.flatten() {
            let name = learner.file_name().to_string_lossy().into_owned();
            let Ok(files) = std::fs::read_dir(learner.path()) else {
                continue;
            };
            for f in files.flatten() {
                let slot = f.file_name().to_string_lossy().parse::<u8>().ok();
                all.push((name.clone(), slot, f.path()));
            }
        }
        Ok(all)
    }

    /// A slot's bytes if it holds `c` (checked); `None` if the file is
    /// missing or holds something else (it was made an object, or
    /// overwritten): the caller then looks for `c` by checksum.
    pub fn read_slot(
        &self,
        learner: &str,
        slot: u8,
        c: &Checksum,
        limit: u64,
    ) -> Result<Option<Vec<u8>>> {
        let path = self.slot_path(learner, slot);
        let bytes = match std::fs::metadata(&path) {
            Ok(m) if m.len() > limit => return Ok(None),
            Ok(_) => std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        Ok((Checksum::of(&bytes) == *c).then_some(bytes))
    }

    /// Whether a slot holds `c` (hashed as it is read, not kept).
    pub fn slot_holds(&self, learner: &str, slot: u8, c: &Checksum) -> Result<bool> {
        Ok(hash_file(&self.slot_path(learner, slot))? == Some(*c))
    }

    /// Hashes a slot off the store lock, for a backup cut about to adopt it
    /// ([`Objects::adopt_slot`]): `Some` when it holds `c`, with the file's
    /// identity then (device, inode, size, change times) — unchanged at the
    /// cut, the cut need not hash it again under the lock. What makes this
    /// safe is that a live slot is never written (no save claims it); the
    /// cut only adopts a proof for the same learner, slot and checksum its
    /// row names then, and the stamp catches a file replaced or resized
    /// since (the times tick coarsely, every few ms, so it is no proof
    /// against a same-size rewrite within a tick — which no save makes).
    pub fn prove_slot(&self, learner: &str, slot: u8, c: &Checksum) -> Result<Option<SlotProof>> {
        let path = self.slot_path(learner, slot);
        let Some(before) = FileStamp::of(&path) else {
            return Ok(None);
        };
        let held = hash_file(&path)? == Some(*c);
        Ok(
            (held && FileStamp::of(&path) == Some(before)).then(|| SlotProof {
                learner: learner.to_string(),
                slot,
                checksum: *c,
                stamp: before,
            }),
        )
    }

    /// Makes what a slot holds an object (a backup is about to name it by
    /// checksum, and the slot will be overwritten): the file is renamed into
    /// place and both directories fsynced — no copy. Nothing if the object
    /// is stored already or the slot does not hold `c`: checked by hashing
    /// it, unless `proofs` has it, hashed a moment ago off the lock, and the
    /// file is still the file then. Under the store lock, like every
    /// placing.
    pub fn adopt_slot(
        &self,
        learner: &str,
        slot: u8,
        c: &Checksum,
        proofs: &[SlotProof],
    ) -> Result<bool> {
        let path = self.path_of(c);
        if path.is_file() {
            return Ok(false);
        }
        let from = self.slot_path(learner, slot);
        let proven = proofs.iter().any(|p| {
            p.learner == learner
                && p.slot == slot
                && p.checksum == *c
                && FileStamp::of(&from) == Some(p.stamp)
        });
        if !proven && !self.slot_holds(learner, slot, c)? {
            return Ok(false);
        }
        let shard = path.parent().unwrap_or(&self.root).to_path_buf();
        let made_shard = !shard.is_dir();
        make_dirs(&shard)?;
        std::fs::rename(&from, &path).map_err(|e| Error::io("rename into", &path, e))?;
        iotrace::record(|| Op::Rename {
            from: from.clone(),
            to: path.clone(),
        });
        // A new shard's name too, and `objects/`'s own (it may be as new:
        // the data directory's first object).
        sync_dirs_up(&shard, if made_shard { 2 } else { 0 })?;
        if let Some(dir) = from.parent() {
            sync_dir(dir)?;
        }
        Ok(true)
    }
}

/// The name a lease's writer opens: `slots/<learner>/lease-<id>`.
const LEASE_PREFIX: &str = "lease-";

/// A learner's slot lent to a writer in another process (see
/// [`Objects::lease_slot`]).
#[derive(Debug)]
pub struct LeasedSlot {
    pub learner: String,
    pub slot: u8,
    /// The name the writer opens (absolute).
    link: PathBuf,
    file: SlotFile,
}

impl LeasedSlot {
    /// The name the writer opens (absolute).
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// How many bytes the writer has left in it so far (0 if unreadable).
    pub fn written_len(&self) -> u64 {
        std::fs::metadata(&self.link).map_or(0, |m| m.len())
    }
}

/// A slot hashed off the store lock and found to hold `checksum`
/// ([`Objects::prove_slot`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SlotProof {
    learner: String,
    slot: u8,
    checksum: Checksum,
    stamp: FileStamp,
}

/// What identifies a file's content without reading it: a write, a cut, a
/// rename or a new file under the name changes one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Where a slot writer writes, and what making it durable takes.
///
/// A slot file that exists has a durable directory entry: a later save
/// that finds it only `fdatasync`s it. So a file made here whose entry was
/// never made durable (its save failed, was cut off, or kept nothing — the
/// same bytes were live already) goes when this is dropped: otherwise that
/// later save would commit a row naming a file a power cut could unlink.
#[derive(Debug)]
pub(super) struct SlotFile {
    pub(super) path: PathBuf,
    /// The file is new: its directory entry must be made durable too (and
    /// those of the directories above it, which may be new as well).
    pub(super) created: bool,
}

impl Drop for SlotFile {
    fn drop(&mut self) {
        if self.created {
            remove_traced(&self.path);
        }
    }
}

/// A learner's state written into a slot in place; durable once
/// [`WrittenSlot::make_durable`] has run (which `finish_slot` does unless
/// the state was unchanged).
#[derive(Debug)]
pub struct WrittenSlot {
    pub(super) file: Option<File>,
    pub(super) slot: SlotFile,
    pub(super) checksum: Checksum,
    pub(super) size: u64,
    pub(super) durable: bool,
}

impl WrittenSlot {
    pub fn checksum(&self) -> Checksum {
        self.checksum
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether its bytes are durable yet.
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// Makes the slot's bytes durable (once): `fdatasync`, or for a new file
    /// fsync and the entries of it and its directories (`slots/<learner>`,
    /// `slots`).
    pub fn make_durable(&mut self) -> Result<()> {
        if self.durable {
            return Ok(());
        }
        let path = &self.slot.path;
        let file = match self.file.take() {
            Some(f) => f,
            None => File::open(path).map_err(|e| Error::io("open", path, e))?,
        };
        if self.slot.created {
            // A new file: its entry, and those of its directories — always,
            // not only when this save made them: another save of the same
            // learner may have made the learner's directory a moment ago
            // and not made it durable yet. A few new files per learner
            // (its slots; one after each backup cut), so a few fsyncs more.
            iotrace::sync_file(&file, path, true).map_err(|e| Error::io("sync", path, e))?;
            if let Some(dir) = path.parent() {
                sync_dirs_up(dir, 2)?;
            }
            // Its entry is durable: it stays (see SlotFile).
            self.slot.created = false;
        } else {
            iotrace::sync_file(&file, path, false).map_err(|e| Error::io("sync", path, e))?;
        }
        self.durable = true;
        Ok(())
    }
}
