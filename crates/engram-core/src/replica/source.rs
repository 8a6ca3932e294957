//! Files streamed into `Repository::archive` without a temporary copy: each
//! entry is a name, its true size, a time, and where its bytes come from
//! (memory, or a learner's object file read as it is archived).

use rustic_core::jiff;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{ReadSource, ReadSourceEntry, RusticResult};
use std::io::Read;
use std::path::PathBuf;

/// Where a file's bytes come from.
pub(super) enum Bytes {
    Memory(Vec<u8>),
    File(PathBuf),
}

/// One file of a snapshot.
pub(super) struct File {
    /// Its path under the snapshot's root, e.g. `engines/planner.state`.
    pub name: String,
    pub size: u64,
    pub bytes: Bytes,
}

/// The files of one snapshot, all stamped with one time.
pub(super) struct Files {
    pub files: Vec<File>,
    pub time: jiff::Timestamp,
}

/// Opens one file when the archiver reads it.
pub(super) struct Opener(Option<Bytes>);

impl rustic_core::ReadSourceOpen for Opener {
    type Reader = Box<dyn Read + Send + 'static>;
    fn open(self) -> RusticResult<Self::Reader> {
        match self.0 {
            Some(Bytes::Memory(v)) => Ok(Box::new(std::io::Cursor::new(v))),
            Some(Bytes::File(p)) => match std::fs::File::open(&p) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) => Err(rustic_core::RusticError::with_source(
                    rustic_core::ErrorKind::InputOutput,
                    "cannot open `{path}`",
                    e,
                )
                .attach_context("path", p.display().to_string())),
            },
            None => Ok(Box::new(std::io::empty())),
        }
    }
}

impl Files {
    pub fn total(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Sorted by path, as the archiver needs them.
    pub fn sorted(mut self) -> Self {
        self.files.sort_by(|a, b| a.name.cmp(&b.name));
        self
    }
}

/// The source `archive` reads: the files, taken once.
pub(super) struct Source(std::sync::Mutex<Vec<File>>, jiff::Timestamp, u64);

impl Source {
    pub fn new(files: Files) -> Source {
        let total = files.total();
        let files = files.sorted();
        Source(std::sync::Mutex::new(files.files), files.time, total)
    }
}

impl ReadSource for Source {
    type Open = Opener;
    type Iter = std::vec::IntoIter<RusticResult<ReadSourceEntry<Opener>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(Some(self.2))
    }

    fn entries(&self) -> Self::Iter {
        let files = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        files
            .into_iter()
            .map(|f| {
                let path = PathBuf::from(super::ROOT).join(&f.name);
                let file_name = path
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_default();
                let meta = Metadata {
                    mode: Some(0o600),
                    mtime: Some(self.1),
                    ctime: Some(self.1),
                    size: f.size,
                    ..Default::default()
                };
                Ok(ReadSourceEntry {
                    path,
                    node: Node::new_node(&file_name, NodeType::File, meta),
                    open: Some(Opener(Some(f.bytes))),
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
    }
}
