//! Content-addressed files for states too large to pass through SQLite
//! comfortably: the states of learners that run in other processes (up to
//! [`MAX_OBJECT_BYTES`](crate::limits::MAX_OBJECT_BYTES)). An object lives at `<data dir>/objects/<first two
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
//! Rooms: this file (the store of objects), [`writer`] (writing one, hashed
//! as it is written), [`slots`] (learners' slot files, written in place and
//! lent to other processes), `files` (fsync helpers, low-priority threads).
//!
//! Must not: know SQL or learners; hold state of its own beyond the root.

mod files;
pub mod slots;
#[cfg(test)]
mod tests;
pub mod writer;

pub(crate) use files::{lower_this_threads_priority, on_low_priority_thread, random_name};
pub use slots::{LeasedSlot, SLOTS, SlotProof, WrittenSlot};
pub use writer::{ObjectWriter, PendingObject};

use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::iotrace::{self, Op};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use files::{hash_file, make_dirs};

/// Temporary files (writes in progress) younger than this are never
/// collected.
pub const GC_GRACE: Duration = Duration::from_secs(3600);

/// The object directory of a data directory.
#[derive(Clone, Debug)]
pub struct Objects {
    pub(super) root: PathBuf,
}

/// A stored object: its address and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub checksum: Checksum,
    pub size: u64,
    /// False when the same content was already stored (nothing was added).
    pub new: bool,
}

/// Where removed objects wait for their unlink (see [`Objects::remove`]).
const TRASH: &str = "trash";

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
        let (mut f, path) = self.open(c)?;
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
            return Err(mismatch(&path));
        }
        Ok(bytes)
    }

    /// The object opened for reading where one likes, after its whole
    /// content was checked against its checksum through this very handle
    /// (objects never change in place, so what is read later is what was
    /// checked); with its length.
    pub fn open_checked(&self, c: &Checksum) -> Result<(File, u64)> {
        let (mut f, path) = self.open(c)?;
        let (found, len) = files::hash_reader(&mut f).map_err(|e| Error::io("read", &path, e))?;
        if found != *c {
            return Err(mismatch(&path));
        }
        Ok((f, len))
    }

    /// The object's file, opened; a missing one is `corrupt_state`.
    fn open(&self, c: &Checksum) -> Result<(File, PathBuf)> {
        let path = self.path_of(c);
        match File::open(&path) {
            Ok(f) => Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing(&path)),
            Err(e) => Err(Error::io("open", &path, e)),
        }
    }

    /// Checks an object against its checksum without keeping its bytes.
    pub fn verify(&self, c: &Checksum) -> Result<()> {
        let path = self.path_of(c);
        let Some(found) = hash_file(&path)? else {
            return Err(missing(&path));
        };
        if found != *c {
            return Err(mismatch(&path));
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

/// An object a row names that is not there.
fn missing(path: &Path) -> Error {
    Error::corrupt("state object", format!("{} is missing", path.display()))
}

/// An object whose bytes are not the ones its name promises.
fn mismatch(path: &Path) -> Error {
    Error::corrupt(
        "state object",
        format!("{} does not match its checksum", path.display()),
    )
}
