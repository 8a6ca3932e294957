//! Reads on connections of their own: a small pool of read-only SQLite
//! connections beside the one writer. In WAL mode a reader sees the newest
//! commit at the moment its read begins and keeps seeing exactly that
//! while the writer goes on, so a long read (every page of 100,000
//! backups, a year of history, a replica's states) neither waits for an
//! autosave or a backup cut nor holds one up.
//!
//! Which commit a read sees: each call of [`Readers::read`] is one read
//! transaction — every query in it sees the same commit, the newest one
//! when its first query ran. A change acknowledged (its call returned)
//! before a read is asked is always visible to it; one committed while a
//! read runs is not, and the next read sees it.
//!
//! Must not: write (the connections are opened read-only; the single
//! writer stays the only one), or hold a connection open after the
//! runtime is gone (the last one to close checkpoints the WAL).

use crate::error::{Error, Result};
use crate::store::Store;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many reads run at once (each on its own connection): the UI asks
/// a handful at a time, and two cores gain nothing from more.
pub const READERS: usize = 4;

pub(crate) struct Readers {
    db: PathBuf,
    idle: Mutex<Vec<Store>>,
    slots: Arc<tokio::sync::Semaphore>,
    closed: AtomicBool,
}

impl Readers {
    pub(crate) fn new(db: PathBuf) -> Arc<Readers> {
        Arc::new(Readers {
            db,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(READERS)),
            closed: AtomicBool::new(false),
        })
    }

    /// Closes every connection (reads in flight close theirs when they
    /// end) and refuses reads from now on: called once the engines have
    /// saved a final time, so the writer is the last to close and
    /// checkpoints the WAL into the database (a read-only connection
    /// closing last would leave the WAL behind).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }

    /// Runs `f` on a read-only connection of its own, on the blocking
    /// pool, inside one read transaction.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::RuntimeStopped("the readers are closed".into()))?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if me.closed.load(Ordering::SeqCst) {
                return Err(Error::RuntimeStopped("Engram has stopped".into()));
            }
            let idle = me.idle.lock().ok().and_then(|mut v| v.pop());
            let mut store = match idle {
                Some(s) => s,
                None => Store::open_read_only(&me.db)?,
            };
            let out = store.in_one_read(f);
            // A connection whose read failed is not trusted again.
            if out.is_ok()
                && !me.closed.load(Ordering::SeqCst)
                && let Ok(mut v) = me.idle.lock()
            {
                v.push(store);
            }
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }
}
