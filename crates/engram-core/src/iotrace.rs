//! A trace of what the learner state files go through — writes, syncs,
//! new names, renames, removals — and of every commit that names one, for
//! the power-loss check of learner states (`tests/learner_power_loss.rs`).
//! SQLite's own files are checked by the lazy VFS (`tests/powerloss`); a
//! learner's state lives in files Engram writes itself, so what a power
//! cut could take from them is worked out from this trace instead: at each
//! commit, the file the row names must hold its bytes after a sync that
//! began after the last write, and its name — and its directories' names,
//! up to the data directory — must have been made durable by a sync of the
//! directory that holds it, begun after the name appeared.
//!
//! Off unless a test arms it for one data directory (one at a time); then
//! each call records what concerns a path under that directory. Disarmed,
//! each call is one atomic load.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One step a state file took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new file (a new inode) under this name.
    Create(PathBuf),
    /// A new directory.
    MkDir(PathBuf),
    /// Bytes written into (or cut from) the file under this name.
    Write(PathBuf),
    /// `fsync`/`fdatasync` of the file under this name, begun at step
    /// `started` (what was written before then is durable).
    Sync { path: PathBuf, started: u64 },
    /// `fsync` of a directory, begun at step `started` (the names in it
    /// that were there before then are durable).
    SyncDir { path: PathBuf, started: u64 },
    /// A file renamed (a new name for the same inode; the old one goes).
    Rename { from: PathBuf, to: PathBuf },
    /// A second name for the same inode.
    Link { from: PathBuf, to: PathBuf },
    /// A name removed.
    Remove(PathBuf),
    /// A transaction naming this file is about to commit.
    Commit(PathBuf),
}

static ARMED: AtomicBool = AtomicBool::new(false);
static STEP: AtomicU64 = AtomicU64::new(0);
/// The armed directory and the steps recorded under it.
struct Trace {
    root: PathBuf,
    steps: Vec<(u64, Op)>,
}

static TRACE: Mutex<Option<Trace>> = Mutex::new(None);

/// Starts recording what happens under `data_dir` (replacing any trace).
pub fn arm(data_dir: &Path) {
    let root = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    *TRACE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Trace {
        root,
        steps: Vec::new(),
    });
    ARMED.store(true, Ordering::SeqCst);
}

/// Stops recording; the steps recorded, in order, each with its number.
pub fn disarm() -> Vec<(u64, Op)> {
    ARMED.store(false, Ordering::SeqCst);
    TRACE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .map(|t| t.steps)
        .unwrap_or_default()
}

/// Whether anything is recorded (a caller may skip work for the trace).
pub fn armed() -> bool {
    ARMED.load(Ordering::Relaxed)
}

/// The number of the next step: a sync takes it before it starts (0 when
/// nothing is recorded).
pub fn begin() -> u64 {
    if !armed() {
        return 0;
    }
    STEP.fetch_add(1, Ordering::SeqCst)
}

/// A file's `fdatasync` (`all`: `fsync`), recorded.
pub(crate) fn sync_file(file: &std::fs::File, path: &Path, all: bool) -> std::io::Result<()> {
    let started = begin();
    if all {
        file.sync_all()?;
    } else {
        file.sync_data()?;
    }
    record(|| Op::Sync {
        path: path.to_path_buf(),
        started,
    });
    Ok(())
}

/// Records the step `op` makes (nothing unless armed and the step concerns
/// a path under the armed directory; disarmed, `op` is not even called —
/// a save's every write passes here).
pub fn record(op: impl FnOnce() -> Op) {
    if !armed() {
        return;
    }
    let op = op();
    let path = match &op {
        Op::Create(p) | Op::MkDir(p) | Op::Write(p) | Op::Remove(p) | Op::Commit(p) => p,
        Op::Sync { path, .. } | Op::SyncDir { path, .. } => path,
        Op::Rename { to, .. } | Op::Link { to, .. } => to,
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let mut trace = TRACE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = trace.as_mut()
        && absolute.starts_with(&t.root)
    {
        let step = STEP.fetch_add(1, Ordering::SeqCst);
        t.steps.push((step, absolute_op(op)));
    }
}

/// The step with its paths made absolute (names compare as the kernel
/// sees them).
fn absolute_op(op: Op) -> Op {
    let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    match op {
        Op::Create(p) => Op::Create(abs(p)),
        Op::MkDir(p) => Op::MkDir(abs(p)),
        Op::Write(p) => Op::Write(abs(p)),
        Op::Remove(p) => Op::Remove(abs(p)),
        Op::Commit(p) => Op::Commit(abs(p)),
        Op::Sync { path, started } => Op::Sync {
            path: abs(path),
            started,
        },
        Op::SyncDir { path, started } => Op::SyncDir {
            path: abs(path),
            started,
        },
        Op::Rename { from, to } => Op::Rename {
            from: abs(from),
            to: abs(to),
        },
        Op::Link { from, to } => Op::Link {
            from: abs(from),
            to: abs(to),
        },
    }
}

/// What a power cut right after a commit could take from the file it
/// names, found by replaying a trace: one line per commit whose file's
/// bytes or name (or a directory's name above it, up to `data_dir`) were
/// not durable yet. Files and directories the trace never saw made are
/// taken as durable (they were there before it was armed).
pub fn check(data_dir: &Path, ops: &[(u64, Op)]) -> Vec<String> {
    // Long by design: one replay over the trace, an arm per kind of recorded
    // step.
    use std::collections::HashMap;
    let root = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    /// An inode: the step of its last write, and the latest start of a
    /// finished sync of it.
    #[derive(Default)]
    struct Inode {
        last_write: Option<u64>,
        synced_from: Option<u64>,
    }
    // name -> (inode, step its name appeared: None = before the trace)
    let mut names: HashMap<PathBuf, (usize, Option<u64>)> = HashMap::new();
    let mut inodes: Vec<Inode> = Vec::new();
    // directory -> latest start of a finished sync of it
    let mut dir_synced: HashMap<PathBuf, u64> = HashMap::new();
    let mut problems = Vec::new();
    let inode_of =
        |names: &mut HashMap<PathBuf, (usize, Option<u64>)>, inodes: &mut Vec<Inode>, p: &Path| {
            if let Some((i, _)) = names.get(p) {
                return *i;
            }
            inodes.push(Inode::default());
            names.insert(p.to_path_buf(), (inodes.len() - 1, None));
            inodes.len() - 1
        };
    for (step, op) in ops {
        match op {
            Op::Create(p) | Op::MkDir(p) => {
                inodes.push(Inode::default());
                names.insert(p.clone(), (inodes.len() - 1, Some(*step)));
            }
            Op::Write(p) => {
                let i = inode_of(&mut names, &mut inodes, p);
                inodes[i].last_write = Some(*step);
            }
            Op::Sync { path, started } => {
                let i = inode_of(&mut names, &mut inodes, path);
                let s = &mut inodes[i].synced_from;
                *s = Some(s.map_or(*started, |x| x.max(*started)));
            }
            Op::SyncDir { path, started } => {
                let s = dir_synced.entry(path.clone()).or_insert(*started);
                *s = (*s).max(*started);
            }
            Op::Rename { from, to } => {
                let i = inode_of(&mut names, &mut inodes, from);
                names.remove(from);
                names.insert(to.clone(), (i, Some(*step)));
            }
            Op::Link { from, to } => {
                let i = inode_of(&mut names, &mut inodes, from);
                names.insert(to.clone(), (i, Some(*step)));
            }
            Op::Remove(p) => {
                names.remove(p);
            }
            Op::Commit(p) => {
                let Some((i, _)) = names.get(p) else {
                    if p.exists() {
                        continue; // made before the trace began
                    }
                    problems.push(format!(
                        "step {step}: a commit names {}, which is gone",
                        p.display()
                    ));
                    continue;
                };
                let inode = &inodes[*i];
                if let Some(w) = inode.last_write
                    && inode.synced_from.is_none_or(|s| s <= w)
                {
                    problems.push(format!(
                        "step {step}: a commit names {}, whose last write (step {w}) no sync has covered",
                        p.display()
                    ));
                }
                // Its name, and every directory's name above it.
                let mut name = p.as_path();
                while name != root {
                    let Some(parent) = name.parent() else { break };
                    if let Some((_, Some(appeared))) = names.get(name)
                        && dir_synced.get(parent).is_none_or(|s| s <= appeared)
                    {
                        problems.push(format!(
                            "step {step}: a commit names {}, but the name {} (step {appeared}) is not durable: no sync of {} began after it",
                            p.display(),
                            name.display(),
                            parent.display()
                        ));
                    }
                    name = parent;
                }
            }
        }
    }
    problems
}
