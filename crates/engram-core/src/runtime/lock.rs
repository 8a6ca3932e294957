//! One writer per data directory: exclusive locks (`flock`) on the data
//! directory itself and on `engram.lock`, held for the runtime's life and
//! released by the OS if the process dies. The directory lock is the one
//! that counts: deleting `engram.lock` cannot let a second writer in (the
//! lock file is only where the holder's pid is written for the message a
//! second process prints, and is written again if it disappears). The
//! database file itself is not used as a lock: closing any descriptor of it
//! would drop SQLite's own POSIX locks in this process.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a data directory.
pub const LOCK_FILE: &str = "engram.lock";

/// Holds the data directory's writer lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    file: std::sync::Mutex<File>,
    _dir: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock at once, or fails with `locked` naming the holder's pid.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock> {
        let dir = File::open(data_dir).map_err(|e| Error::io("open", data_dir, e))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        // A few quick retries: a read-only command may hold the lock for a
        // moment while it checks whether the engines run.
        let mut attempt = 0;
        let locked = loop {
            match dir.try_lock().and_then(|()| file.try_lock()) {
                Err(TryLockError::WouldBlock) if attempt < 5 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(Error::Locked {
                    path: data_dir.to_path_buf(),
                    pid: pid.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        write_pid(&mut file);
        Ok(DataDirLock {
            file: std::sync::Mutex::new(file),
            _dir: dir,
            path,
        })
    }

    /// Checks that `engram.lock` is still the file this lock holds; if it
    /// was deleted or replaced, writes it again (the directory lock still
    /// keeps any other writer out). Returns true when it had to.
    pub fn check(&self) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let mut held = self
            .file
            .lock()
            .map_err(|_| Error::Internal("lock file mutex poisoned".into()))?;
        let ours = held
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?;
        match std::fs::metadata(&self.path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => return Ok(false),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| Error::io("open", &self.path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(_) => {
                return Err(Error::StorageChanged {
                    what: "the writer lock",
                    path: self.path.clone(),
                });
            }
        }
        write_pid(&mut file);
        *held = file;
        tracing::warn!(path = %self.path.display(), "the lock file was removed or replaced; written again");
        Ok(true)
    }

    /// Whether another process holds the lock (without taking it).
    pub fn is_held(data_dir: &Path) -> Option<String> {
        match DataDirLock::acquire(data_dir) {
            Err(Error::Locked { pid, .. }) => Some(pid),
            _ => None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Best effort: the pid is only for the message a second process prints.
fn write_pid(file: &mut File) {
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
}
