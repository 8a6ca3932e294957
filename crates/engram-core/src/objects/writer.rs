//! Writing one object: the bytes go to a temporary file (or a slot) and are
//! hashed as they arrive; [`ObjectWriter::finish`] makes it durable and puts
//! it in place, or [`ObjectWriter::finish_pending`] leaves the placing to
//! the commit that names it ([`PendingObject::place`]).

use super::files::{make_dirs, remove_traced, sync_dirs_up};
use super::slots::{SlotFile, WrittenSlot};
use super::{ObjectInfo, Objects};
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::iotrace::{self, Op};
use crate::limits::MAX_OBJECT_BYTES;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// An object being written: bytes go to a temporary file and are hashed as
/// they arrive. Dropped without [`ObjectWriter::finish`], it leaves nothing.
pub struct ObjectWriter {
    objects: Objects,
    pub(super) tmp: PathBuf,
    file: Option<File>,
    hasher: blake3::Hasher,
    size: u64,
    limit: u64,
    /// Bytes written since writeback was last started.
    since_sync: u64,
    /// The helper thread writing back what is written so far.
    pub(super) early_sync: Option<std::thread::JoinHandle<()>>,
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
    pub(super) fn new(
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

/// An object written (and fsynced, unless its content was stored already)
/// but not in place yet. Dropped without [`PendingObject::place`], it
/// leaves nothing.
pub struct PendingObject {
    objects: Objects,
    pub(super) tmp: PathBuf,
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
