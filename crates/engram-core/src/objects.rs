//! Content-addressed files for states too large to pass through SQLite
//! comfortably: the states of learners that run in other processes (up to
//! [`MAX_OBJECT_BYTES`]). An object lives at `<data dir>/objects/<first two
//! hex digits>/<the other 62>` of its blake3 checksum; the database refers
//! to it by checksum.
//!
//! Durability: an object is written to `objects/tmp/`, hashed as it is
//! written, fsynced, renamed into place and its directory fsynced — all
//! before [`ObjectWriter::finish`] (or [`PendingObject::place`]) returns.
//! Only then may a database row refer to it, so a committed row never names
//! a missing file. The same content written again costs a hash and no
//! second copy (and no fsync).
//!
//! Placing and removing happen under the store lock: a save puts its
//! object in place right before the commit that refers to it
//! ([`ObjectWriter::finish_pending`], then [`PendingObject::place`] in the
//! commit's closure), and an object is removed only when no row refers to
//! it ([`Objects::remove`] after the commit that let go of it,
//! [`Objects::collect`]) — so a removal never takes the file a save is
//! about to name. Only temporary files (writes in progress) wait
//! [`GC_GRACE`] before they are collected.
//!
//! Reading checks the checksum ([`Objects::read`]), so a damaged file is a
//! typed `corrupt` error, never wrong bytes.
//!
//! Must not: know SQL or learners; hold state of its own beyond the root.

use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::iotrace::{self, Op};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest object accepted.
pub const MAX_OBJECT_BYTES: u64 = 4 << 30;
/// Temporary files (writes in progress) younger than this are never
/// collected.
pub const GC_GRACE: Duration = Duration::from_secs(3600);

/// The object directory of a data directory.
#[derive(Clone, Debug)]
pub struct Objects {
    root: PathBuf,
}

/// A stored object: its address and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub checksum: Checksum,
    pub size: u64,
    /// False when the same content was already stored (nothing was added).
    pub new: bool,
}

impl Objects {
    /// The objects of `data_dir` (the directories are made when needed).
    pub fn new(data_dir: &Path) -> Objects {
        Objects {
            root: data_dir.join("objects"),
        }
    }

    pub(crate) fn path_of(&self, c: &Checksum) -> PathBuf {
        let hex = c.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Starts a new object of at most `limit` bytes.
    pub fn writer(&self, limit: u64) -> Result<ObjectWriter> {
        let tmp_dir = self.root.join("tmp");
        make_dirs(&tmp_dir)?;
        let tmp = tmp_dir.join(random_name()?);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        iotrace::record(|| Op::Create(tmp.clone()));
        Ok(ObjectWriter::new(self, tmp, file, limit, None))
    }

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

    /// Stores `bytes` (a convenience over [`Objects::writer`]).
    pub fn put(&self, bytes: &[u8]) -> Result<ObjectInfo> {
        self.put_from(bytes, bytes.len() as u64, Path::new("(memory)"))
    }

    /// Stores what `source` (read from `from`, for errors) yields, at most
    /// `limit` bytes, a megabyte at a time.
    pub fn put_from(&self, mut source: impl Read, limit: u64, from: &Path) -> Result<ObjectInfo> {
        let mut w = self.writer(limit)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = source
                .read(&mut buf)
                .map_err(|e| Error::io("read", from, e))?;
            if n == 0 {
                return w.finish();
            }
            w.write(&buf[..n])?;
        }
    }

    /// Whether the object is stored (its content is not checked).
    pub fn contains(&self, c: &Checksum) -> bool {
        self.path_of(c).is_file()
    }

    /// The object's bytes, checked against its checksum; at most `limit`.
    pub fn read(&self, c: &Checksum, limit: u64) -> Result<Vec<u8>> {
        let path = self.path_of(c);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corrupt(
                    "state object",
                    format!("{} is missing", path.display()),
                ));
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let len = f.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
        if len > limit {
            return Err(Error::TooLarge {
                what: "state object",
                size: len,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &path, e))?;
        if Checksum::of(&bytes) != *c {
            return Err(Error::corrupt(
                "state object",
                format!("{} does not match its checksum", path.display()),
            ));
        }
        Ok(bytes)
    }

    /// Checks an object against its checksum without keeping its bytes.
    pub fn verify(&self, c: &Checksum) -> Result<()> {
        let path = self.path_of(c);
        let Some(found) = hash_file(&path)? else {
            return Err(Error::corrupt(
                "state object",
                format!("{} is missing", path.display()),
            ));
        };
        if found != *c {
            return Err(Error::corrupt(
                "state object",
                format!("{} does not match its checksum", path.display()),
            ));
        }
        Ok(())
    }

    /// Removes an object (nothing if it is not there). The caller knows no
    /// row refers to it, under the store lock. The file is renamed into
    /// `objects/trash/` at once and unlinked on a thread of its own: freeing
    /// a large file takes tens of milliseconds (256 MB: 50–70 ms here), which
    /// a save that let go of it should not wait for.
    pub fn remove(&self, c: &Checksum) -> Result<bool> {
        let path = self.path_of(c);
        let trash = self.root.join(TRASH);
        std::fs::create_dir_all(&trash).map_err(|e| Error::io("create", &trash, e))?;
        let dest = trash.join(format!("{}-{}", c.to_hex(), random_name()?));
        match std::fs::rename(&path, &dest) {
            Ok(()) => {
                iotrace::record(|| Op::Remove(path.clone()));
                let _ = std::thread::Builder::new()
                    .name("engram-unlink".into())
                    .spawn(move || {
                        lower_this_threads_priority();
                        let _ = std::fs::remove_file(&dest);
                    });
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }

    /// Removes every object not in `keep` (called under the store lock, so
    /// no save can be placing one: see [`PendingObject::place`]), whatever
    /// is left in the trash, and every leftover temporary file older than
    /// [`GC_GRACE`] (a save may still be writing a younger one). Returns how
    /// many went.
    pub fn collect(&self, keep: &BTreeSet<Checksum>) -> Result<u64> {
        let Ok(shards) = std::fs::read_dir(&self.root) else {
            return Ok(0);
        };
        let old = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= GC_GRACE)
        };
        let mut removed = 0;
        for shard in shards.flatten() {
            let shard_path = shard.path();
            let Some(prefix) = shard.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(&shard_path) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let object = (prefix != "tmp" && prefix != TRASH)
                    .then(|| {
                        entry
                            .file_name()
                            .to_str()
                            .map(|rest| format!("{prefix}{rest}"))
                    })
                    .flatten()
                    .and_then(|hex| Checksum::from_hex(&hex).ok());
                let gone = match object {
                    Some(c) if keep.contains(&c) => false,
                    // An object no row names: the same way as any removal.
                    Some(c) => self.remove(&c).unwrap_or(false),
                    None if prefix == "tmp" && !old(&path) => false,
                    None => std::fs::remove_file(&path).is_ok(),
                };
                if gone {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// An object being written: bytes go to a temporary file and are hashed as
/// they arrive. Dropped without [`ObjectWriter::finish`], it leaves nothing.
pub struct ObjectWriter {
    objects: Objects,
    tmp: PathBuf,
    file: Option<File>,
    hasher: blake3::Hasher,
    size: u64,
    limit: u64,
    /// Bytes written since writeback was last started.
    since_sync: u64,
    /// The helper thread writing back what is written so far.
    early_sync: Option<std::thread::JoinHandle<()>>,
    /// Writing a learner's slot in place (see [`Objects::slot_writer`]),
    /// not a temporary file.
    slot: Option<SlotFile>,
}

/// Every this many bytes, writeback of what is written starts beside the
/// writing (an `fdatasync` on a duplicate handle in a helper thread).
const EARLY_SYNC_BYTES: u64 = 16 << 20;

impl ObjectWriter {
    /// A writer of `file` (a temporary file at `tmp`, or a slot), at most
    /// `limit` bytes.
    fn new(
        objects: &Objects,
        tmp: PathBuf,
        file: File,
        limit: u64,
        slot: Option<SlotFile>,
    ) -> ObjectWriter {
        ObjectWriter {
            objects: objects.clone(),
            tmp,
            file: Some(file),
            hasher: blake3::Hasher::new(),
            size: 0,
            limit: limit.min(MAX_OBJECT_BYTES),
            since_sync: 0,
            early_sync: None,
            slot,
        }
    }

    /// Appends bytes; past the limit the object is refused (`too_large`).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.size += bytes.len() as u64;
        self.since_sync += bytes.len() as u64;
        if self.size > self.limit {
            return Err(Error::TooLarge {
                what: "state",
                size: self.size,
                limit: self.limit,
            });
        }
        self.hasher.update(bytes);
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Internal("object written after it failed".into()))?;
        let path = self.slot.as_ref().map_or(&self.tmp, |s| &s.path);
        file.write_all(bytes).map_err(|e| {
            let e = Error::io("write", path, e);
            self.file = None;
            e
        })?;
        iotrace::record(|| Op::Write(path.clone()));
        // Writeback starts early, beside the writing: the final fsync then
        // waits for the tail only, not for the whole state.
        if self.since_sync >= EARLY_SYNC_BYTES
            && self.early_sync.as_ref().is_none_or(|h| h.is_finished())
            && let Some(f) = self.file.as_ref()
            && let Ok(dup) = f.try_clone()
        {
            if let Some(h) = self.early_sync.take() {
                let _ = h.join(); // its outcome does not matter: finish syncs all
            }
            let path = path.clone();
            self.early_sync = Some(std::thread::spawn(move || {
                let _ = iotrace::sync_file(&dup, &path, false);
            }));
            self.since_sync = 0;
        }
        Ok(())
    }

    /// Makes the object durable and returns its address: fsync, rename into
    /// place (unless the content is already stored), fsync the directory.
    pub fn finish(self) -> Result<ObjectInfo> {
        self.finish_pending()?.place()
    }

    /// The file written and the checksum of what was written, once the
    /// early writeback (if any) is done.
    fn end_writing(&mut self) -> Result<(File, Checksum)> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::Internal("finished after a failed write".into()))?;
        let checksum = Checksum(*self.hasher.finalize().as_bytes());
        if let Some(h) = self.early_sync.take() {
            let _ = h.join();
        }
        Ok((file, checksum))
    }

    /// Finishes a slot written in place ([`Objects::slot_writer`]): cuts the
    /// file to the state's size and makes it durable (`fdatasync`; a new
    /// file: fsync and its directory too) — unless `unchanged_from` is the
    /// state's own checksum (the same bytes are durable elsewhere already):
    /// then [`WrittenSlot::make_durable`] does it if they turn out not to be.
    pub fn finish_slot(mut self, unchanged_from: Option<Checksum>) -> Result<WrittenSlot> {
        let slot = self
            .slot
            .take()
            .ok_or_else(|| Error::Internal("finish_slot on an object writer".into()))?;
        let (file, checksum) = self.end_writing()?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("read the size of", &slot.path, e))?
            .len();
        if len != self.size {
            file.set_len(self.size)
                .map_err(|e| Error::io("resize", &slot.path, e))?;
            iotrace::record(|| Op::Write(slot.path.clone()));
        }
        let written = WrittenSlot {
            file: Some(file),
            slot,
            checksum,
            size: self.size,
            durable: false,
        };
        if unchanged_from == Some(checksum) {
            return Ok(written);
        }
        let mut written = written;
        written.make_durable()?;
        Ok(written)
    }

    /// Hashes and (unless the same content is stored already) fsyncs the
    /// object, without putting it in place yet: [`PendingObject::place`]
    /// does that — under the store lock, with the commit that refers to it,
    /// so that a removal of an unreferenced object (also under the lock)
    /// cannot come between the two.
    pub fn finish_pending(mut self) -> Result<PendingObject> {
        if self.slot.is_some() {
            return Err(Error::Internal("finish_pending on a slot writer".into()));
        }
        let (file, checksum) = self.end_writing()?;
        // Stored already: no fsync unless it is gone by the time of `place`.
        let synced = !self.objects.path_of(&checksum).is_file();
        if synced {
            iotrace::sync_file(&file, &self.tmp, true)
                .map_err(|e| Error::io("sync", &self.tmp, e))?;
        }
        drop(file);
        Ok(PendingObject {
            objects: self.objects.clone(),
            tmp: std::mem::take(&mut self.tmp),
            checksum,
            size: self.size,
            synced,
        })
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
struct FileStamp {
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
struct SlotFile {
    path: PathBuf,
    /// The file is new: its directory entry must be made durable too (and
    /// those of the directories above it, which may be new as well).
    created: bool,
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
    file: Option<File>,
    slot: SlotFile,
    checksum: Checksum,
    size: u64,
    durable: bool,
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

/// An object written (and fsynced, unless its content was stored already)
/// but not in place yet. Dropped without [`PendingObject::place`], it
/// leaves nothing.
pub struct PendingObject {
    objects: Objects,
    tmp: PathBuf,
    checksum: Checksum,
    size: u64,
    synced: bool,
}

impl PendingObject {
    /// The object's checksum.
    pub fn checksum(&self) -> Checksum {
        self.checksum
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Puts the object in place, durably: renamed to its address and the
    /// directory fsynced — or, when the same content is there, nothing
    /// added.
    pub fn place(mut self) -> Result<ObjectInfo> {
        let path = self.objects.path_of(&self.checksum);
        let tmp = std::mem::take(&mut self.tmp);
        if path.is_file() {
            remove_traced(&tmp);
            return Ok(ObjectInfo {
                checksum: self.checksum,
                size: self.size,
                new: false,
            });
        }
        if !self.synced {
            // It was stored when written, and has been removed since.
            File::open(&tmp)
                .and_then(|f| iotrace::sync_file(&f, &tmp, true))
                .map_err(|e| Error::io("sync", &tmp, e))?;
        }
        let shard = path.parent().unwrap_or(&self.objects.root).to_path_buf();
        let made_shard = !shard.is_dir();
        let placed = make_dirs(&shard).and_then(|()| {
            std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename into", &path, e))
        });
        if let Err(e) = placed {
            remove_traced(&tmp);
            return Err(e);
        }
        iotrace::record(|| Op::Rename {
            from: tmp.clone(),
            to: path.clone(),
        });
        // A new shard: see adopt_slot.
        sync_dirs_up(&shard, if made_shard { 2 } else { 0 })?;
        Ok(ObjectInfo {
            checksum: self.checksum,
            size: self.size,
            new: true,
        })
    }
}

impl Drop for PendingObject {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            remove_traced(&self.tmp);
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Unfinished or failed: the temporary file goes. Finished: a
        // PendingObject owns it now (the path here is empty).
        if !self.tmp.as_os_str().is_empty() {
            remove_traced(&self.tmp);
        }
    }
}

/// Lowers the calling thread's scheduling priority (nice 19, the lowest),
/// on Linux: for work beside the engines that must not take the CPU from
/// their ticks and captures (writing and hashing a large state, freeing
/// one). Best effort: on failure it runs at the normal priority.
pub(crate) fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
    }
}

/// Runs `f` on a thread of its own at the lowest priority (see
/// [`lower_this_threads_priority`]); its result comes through the receiver.
pub(crate) fn on_low_priority_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<T>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_this_threads_priority();
            let _ = tx.send(f());
        })?;
    Ok(rx)
}

/// Where removed objects wait for their unlink (see [`Objects::remove`]).
const TRASH: &str = "trash";

/// Where learners' slots live, beside `objects/` (see [`Objects::slot_writer`]).
pub const SLOTS: &str = "slots";

/// The checksum of a file's content, hashed as it is read (`None`: there
/// is no such file).
fn hash_file(path: &Path) -> Result<Option<Checksum>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let (c, _) = hash_reader(&mut f).map_err(|e| Error::io("read", path, e))?;
    Ok(Some(c))
}

/// The checksum of what a reader gives, and how many bytes it gave. Read
/// in pieces of up to 1 MiB, so blake3 hashes many chunks at once (with
/// `io::copy`'s 8 KiB pieces, 1 MB took twice as long here; blake3's own
/// `update_reader` reads 64 KiB at a time: the same at 1 MB, 12 % slower
/// at 64 MB — 15.9 against 14.2 ms, twice, from the page cache).
fn hash_reader(r: &mut impl Read) -> std::io::Result<(Checksum, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((Checksum(*hasher.finalize().as_bytes()), total))
}

/// 24 random hex digits, for a temporary file's name.
pub(crate) fn random_name() -> Result<String> {
    let mut name = [0u8; 12];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut name))
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    Ok(name.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes a directory's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    let started = iotrace::begin();
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, e))?;
    iotrace::record(|| Op::SyncDir {
        path: dir.to_path_buf(),
        started,
    });
    Ok(())
}

/// Makes `dir`'s entries durable, and those of the `above` directories
/// over it (whose entries for the ones below may be as new).
fn sync_dirs_up(dir: &Path, above: usize) -> Result<()> {
    for d in dir.ancestors().take(above + 1) {
        sync_dir(d)?;
    }
    Ok(())
}

/// `create_dir_all`, with each directory it made in the trace.
fn make_dirs(dir: &Path) -> Result<()> {
    let new: Vec<PathBuf> = if iotrace::armed() {
        dir.ancestors()
            .take_while(|d| !d.is_dir())
            .map(Path::to_path_buf)
            .collect()
    } else {
        Vec::new()
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    for d in new.into_iter().rev() {
        iotrace::record(|| Op::MkDir(d));
    }
    Ok(())
}

/// Removes a file (true if it went), the name's end in the trace.
fn remove_traced(path: &Path) -> bool {
    let gone = std::fs::remove_file(path).is_ok();
    if gone {
        iotrace::record(|| Op::Remove(path.to_path_buf()));
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_stored_once_by_content_and_read_back_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let a = objects.put(b"the state").expect("put");
        assert!(a.new);
        assert_eq!(a.size, 9);
        assert_eq!(a.checksum, Checksum::of(b"the state"));
        let again = objects.put(b"the state").expect("again");
        assert_eq!((again.checksum, again.new), (a.checksum, false));
        assert_eq!(objects.read(&a.checksum, 100).expect("read"), b"the state");
        // Nothing is left in tmp/.
        let tmp: Vec<_> = std::fs::read_dir(dir.path().join("objects/tmp"))
            .expect("tmp")
            .collect();
        assert!(tmp.is_empty(), "{tmp:?}");
        // A damaged file is a typed error, never wrong bytes.
        let hex = a.checksum.to_hex();
        let path = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
        std::fs::write(&path, b"the stale").expect("damage");
        assert_eq!(
            objects.read(&a.checksum, 100).expect_err("bad").code(),
            "corrupt_state"
        );
        assert_eq!(
            objects.verify(&a.checksum).expect_err("bad").code(),
            "corrupt_state"
        );
        std::fs::remove_file(&path).expect("rm");
        assert_eq!(
            objects.read(&a.checksum, 100).expect_err("gone").code(),
            "corrupt_state"
        );
        assert!(!objects.contains(&a.checksum));
    }

    #[test]
    fn a_state_written_past_several_early_writebacks_reads_back_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let mut w = objects.writer(u64::MAX).expect("writer");
        let mut all = Vec::new();
        // 40 MiB in 1 MiB pieces: two early writebacks start on the way.
        for i in 0..40u32 {
            let piece: Vec<u8> = (0..1u32 << 20).map(|j| (j ^ i) as u8).collect();
            w.write(&piece).expect("write");
            all.extend_from_slice(&piece);
        }
        assert!(
            w.early_sync.is_some(),
            "writeback started beside the writing"
        );
        let info = w.finish().expect("finish");
        assert_eq!(info.size, all.len() as u64);
        assert_eq!(info.checksum, Checksum::of(&all));
        assert_eq!(objects.read(&info.checksum, u64::MAX).expect("read"), all);
        // A writer dropped with writeback under way leaves nothing behind.
        let mut w = objects.writer(u64::MAX).expect("writer");
        w.write(&vec![7u8; 20 << 20]).expect("write");
        drop(w);
        let tmp = std::fs::read_dir(dir.path().join("objects/tmp"))
            .expect("tmp")
            .count();
        assert_eq!(tmp, 0);
    }

    #[test]
    fn a_writer_past_its_limit_or_dropped_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let mut w = objects.writer(10).expect("writer");
        w.write(b"0123456789").expect("within");
        assert_eq!(w.write(b"x").expect_err("over").code(), "too_large");
        drop(w);
        let mut w = objects.writer(10).expect("writer");
        w.write(b"abc").expect("write");
        drop(w); // a client that went away mid-upload
        let left: Vec<_> = std::fs::read_dir(dir.path().join("objects/tmp"))
            .expect("tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn collection_keeps_referenced_objects_and_young_temporary_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let kept = objects.put(b"kept").expect("put");
        let unreferenced = objects.put(b"unreferenced").expect("put");
        // Writes in progress: one just begun, one left long ago.
        let mut young = objects.writer(100).expect("writer");
        young.write(b"in progress").expect("write");
        let mut old = objects.writer(100).expect("writer");
        old.write(b"abandoned").expect("write");
        let old_tmp = old.tmp.clone();
        std::mem::forget(old); // as if its process had died
        let past = std::time::SystemTime::now() - GC_GRACE - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&old_tmp)
            .and_then(|f| f.set_modified(past))
            .expect("age");
        let keep = BTreeSet::from([kept.checksum]);
        assert_eq!(objects.collect(&keep).expect("gc"), 2);
        assert!(objects.contains(&kept.checksum));
        assert!(
            !objects.contains(&unreferenced.checksum),
            "no row names it: it goes at once (placing happens under the same lock)"
        );
        assert!(!old_tmp.exists(), "the abandoned write went");
        assert!(young.tmp.exists(), "the write in progress stays");
        young.write(b" and done").expect("write");
        let done = young.finish().expect("finish");
        assert_eq!(
            objects.read(&done.checksum, 100).expect("read"),
            b"in progress and done"
        );
    }

    #[test]
    fn a_pending_object_is_placed_even_if_its_twin_was_removed_meanwhile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let twin = objects.put(b"same content").expect("put");
        let mut w = objects.writer(100).expect("writer");
        w.write(b"same content").expect("write");
        // Finished while the twin is there: no fsync, not placed yet.
        let pending = w.finish_pending().expect("pending");
        assert_eq!(pending.checksum(), twin.checksum);
        // The twin is removed (no row named it) before this save commits.
        assert!(objects.remove(&twin.checksum).expect("remove"));
        let placed = pending.place().expect("place");
        assert!(placed.new, "its own copy is put in place");
        assert_eq!(
            objects.read(&placed.checksum, 100).expect("read"),
            b"same content"
        );
        // Placed again with the object there: nothing added, no tmp left.
        let mut w = objects.writer(100).expect("writer");
        w.write(b"same content").expect("write");
        assert!(
            !w.finish_pending()
                .expect("pending")
                .place()
                .expect("place")
                .new
        );
        let tmp_left = std::fs::read_dir(dir.path().join("objects/tmp"))
            .expect("tmp")
            .count();
        assert_eq!(tmp_left, 0);
        // A pending object dropped unplaced leaves nothing.
        let mut w = objects.writer(100).expect("writer");
        w.write(b"never committed").expect("write");
        drop(w.finish_pending().expect("pending"));
        let tmp_left = std::fs::read_dir(dir.path().join("objects/tmp"))
            .expect("tmp")
            .count();
        assert_eq!(tmp_left, 0);
        assert!(!objects.contains(&Checksum::of(b"never committed")));
    }

    #[test]
    fn a_new_slot_file_whose_entry_was_not_made_durable_does_not_outlive_its_save() {
        // A slot file that exists is only fdatasynced by the next save into
        // it: one whose directory entry never became durable must not be
        // left for that save to commit.
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let path = |k: u8| dir.path().join(SLOTS).join("q").join(k.to_string());
        // Cut off before its end.
        let mut w = objects.slot_writer("q", 0, 1 << 20).expect("writer");
        w.write(b"half a state").expect("write");
        drop(w);
        assert!(!path(0).exists(), "a cut-off save's new file goes");
        // Finished, but nothing kept (the same bytes are live elsewhere):
        // not made durable, so it goes when dropped.
        let mut w = objects.slot_writer("q", 1, 1 << 20).expect("writer");
        w.write(b"the live bytes").expect("write");
        let same = Checksum::of(b"the live bytes");
        let unchanged = w.finish_slot(Some(same)).expect("finish");
        assert!(!unchanged.is_durable() && path(1).exists());
        drop(unchanged);
        assert!(!path(1).exists(), "an unchanged save's new file goes");
        // A lent slot whose save fails (too large here) leaves no file.
        let lent = objects.lease_slot("q", 2, "abc").expect("lend");
        std::fs::write(lent.path(), vec![7u8; 100]).expect("the learner writes");
        let err = objects.take_leased_slot(lent, 10).expect_err("too large");
        assert_eq!(err.code(), "too_large");
        assert!(!path(2).exists(), "a failed lent save's new file goes");
        // Made durable: it stays, and a later failed save into it (no
        // longer new, its entry durable) leaves it where it is.
        let mut w = objects.slot_writer("q", 3, 1 << 20).expect("writer");
        w.write(b"kept").expect("write");
        let kept = w.finish_slot(None).expect("finish");
        assert!(kept.is_durable());
        drop(kept);
        assert!(path(3).exists());
        let mut w = objects.slot_writer("q", 3, 1 << 20).expect("writer");
        w.write(b"cut").expect("write");
        drop(w);
        assert!(path(3).exists(), "an existing slot file stays");
    }

    #[test]
    fn a_slot_is_overwritten_in_place_and_a_cut_makes_it_the_object_it_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let write = |bytes: &[u8], unchanged_from: Option<Checksum>| {
            let mut w = objects.slot_writer("q", 1, 1 << 20).expect("writer");
            for chunk in bytes.chunks(1000) {
                w.write(chunk).expect("write");
            }
            w.finish_slot(unchanged_from).expect("finish")
        };
        let long: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let first = write(&long, None);
        assert!(first.is_durable());
        let path = dir.path().join(SLOTS).join("q").join("1");
        assert_eq!(std::fs::read(&path).expect("slot"), long);
        let c1 = first.checksum();
        // A shorter state overwrites it and the file is cut to its size.
        let short = b"a shorter state".to_vec();
        let second = write(&short, None);
        assert_eq!(std::fs::read(&path).expect("slot"), short);
        assert_eq!(
            objects.read_slot("q", 1, &c1, u64::MAX).expect("read"),
            None,
            "not what it held"
        );
        let c2 = second.checksum();
        assert_eq!(
            objects.read_slot("q", 1, &c2, u64::MAX).expect("read"),
            Some(short.clone())
        );
        assert_eq!(
            objects.read_slot("q", 1, &c2, 3).expect("read"),
            None,
            "past the limit"
        );
        assert_eq!(
            objects.read_slot("q", 0, &c2, u64::MAX).expect("read"),
            None,
            "no such slot"
        );
        // The same bytes as the live state: not made durable again, unless asked.
        let mut same = write(&short, Some(c2));
        assert!(!same.is_durable());
        same.make_durable().expect("durable");
        assert!(same.is_durable());
        // A cut: the slot's file becomes the object (renamed, not copied).
        assert!(objects.adopt_slot("q", 1, &c2, &[]).expect("adopt"));
        assert!(!path.exists(), "the slot's file moved");
        assert_eq!(objects.read(&c2, u64::MAX).expect("object"), short);
        assert!(
            !objects.adopt_slot("q", 1, &c2, &[]).expect("again"),
            "stored already"
        );
        // A slot that does not hold the state is left alone.
        write(&long, None);
        assert!(
            !objects
                .adopt_slot("q", 1, &Checksum::of(b"other"), &[])
                .expect("adopt")
        );
        assert_eq!(std::fs::read(&path).expect("slot"), long);
    }

    #[test]
    fn a_slot_proven_off_the_lock_is_adopted_unhashed_only_while_it_is_the_same_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::new(dir.path());
        let write = |bytes: &[u8]| {
            let mut w = objects.slot_writer("q", 1, 1 << 20).expect("writer");
            w.write(bytes).expect("write");
            w.finish_slot(None).expect("finish").checksum()
        };
        let a = write(b"state a");
        let proof = objects
            .prove_slot("q", 1, &a)
            .expect("prove")
            .expect("holds a");
        assert_eq!(
            objects
                .prove_slot("q", 1, &Checksum::of(b"x"))
                .expect("prove"),
            None,
            "it does not hold that"
        );
        assert_eq!(
            objects.prove_slot("q", 2, &a).expect("prove"),
            None,
            "no file"
        );
        // Overwritten since: the proof no longer holds, the slot is hashed
        // again and, holding other bytes, left alone. (Another length: the
        // file times tick coarsely — a few ms — so a rewrite of the same
        // length within one tick keeps the stamp; see prove_slot.)
        let b = write(b"state b, longer");
        assert!(
            !objects
                .adopt_slot("q", 1, &a, std::slice::from_ref(&proof))
                .expect("adopt")
        );
        assert!(!objects.contains(&a));
        // A proof of what it holds now: adopted.
        let proof_b = objects
            .prove_slot("q", 1, &b)
            .expect("prove")
            .expect("holds b");
        assert!(
            objects
                .adopt_slot("q", 1, &b, &[proof, proof_b])
                .expect("adopt")
        );
        assert_eq!(
            objects.read(&b, u64::MAX).expect("object"),
            b"state b, longer"
        );
    }
}
