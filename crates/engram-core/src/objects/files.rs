//! The file-system steps objects and slots are made of: fsync of files and
//! directories, hashing a file, removing one with a trace, and threads at
//! the lowest priority for work beside the engines.

use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::iotrace::{self, Op};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

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

/// The checksum of a file's content, hashed as it is read (`None`: there
/// is no such file).
pub(super) fn hash_file(path: &Path) -> Result<Option<Checksum>> {
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
pub(super) fn hash_reader(r: &mut impl Read) -> std::io::Result<(Checksum, u64)> {
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
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
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
pub(super) fn sync_dirs_up(dir: &Path, above: usize) -> Result<()> {
    for d in dir.ancestors().take(above + 1) {
        sync_dir(d)?;
    }
    Ok(())
}

/// `create_dir_all`, with each directory it made in the trace.
pub(super) fn make_dirs(dir: &Path) -> Result<()> {
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
pub(super) fn remove_traced(path: &Path) -> bool {
    let gone = std::fs::remove_file(path).is_ok();
    if gone {
        iotrace::record(|| Op::Remove(path.to_path_buf()));
    }
    gone
}
