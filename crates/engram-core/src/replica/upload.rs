//! Uploading one backup (manifest and every state) or the catalog as one
//! restic snapshot, and checking that what was written is what was meant.

use super::source::{Bytes, File, Files, Source};
use super::{BACKUP_TAG, CATALOG_TAG, Place, ROOT, TAG};
use crate::codec::Checksum;
use crate::error::{Error, ErrorCode, Result};
use crate::snapshot::{Manifest, manifest_of};
use crate::store::{CATALOG_TABLES, ReplicaCopy, Store};
use rustic_core::jiff;
use rustic_core::repofile::SnapshotFile;
use rustic_core::{BackupOptions, OpenStatus, ParentOptions, Repository, SnapshotOptions};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The manifest of a backup in a replica: the export manifest, plus what
/// a recovery needs to put the backup back as it was.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicaManifest {
    #[serde(flatten)]
    pub manifest: Manifest,
    pub pinned: bool,
    /// An imported backup's origin.
    #[serde(default)]
    pub origin: Option<serde_json::Value>,
    pub host_id: String,
}

/// The file of a backup's manifest, and of each state, in its snapshot.
pub const MANIFEST: &str = "manifest.json";
pub fn engine_file(name: &str) -> String {
    format!("engines/{name}.state")
}
pub fn learner_file(name: &str) -> String {
    format!("learners/{name}.state")
}
pub fn catalog_file(table: &str) -> String {
    format!("catalog/{table}.jsonl")
}

/// Uploads backup `id` (read from `store`, a connection of the caller's
/// own, never the writer's) as one snapshot.
pub fn upload_backup(
    place: &Place,
    key: &str,
    store: &Store,
    host_id: &str,
    id: i64,
) -> Result<ReplicaCopy> {
    // Long by design: the snapshot in the order it is made (read the
    // backup, its manifest, its files; archive; check the summary).
    let info = store.get_backup(id)?;
    let states = store.backup_states(id)?;
    let learners = store.backup_learners(id)?;
    let mut files = Vec::new();
    for s in &states {
        files.push(File {
            name: engine_file(&s.engine),
            size: s.state.len() as u64,
            bytes: Bytes::Memory(s.state.as_bytes().to_vec()),
        });
    }
    for (name, l) in &learners {
        let sum = Checksum::from_hex(&l.checksum)?;
        // A large state is read from its object file as it is archived
        // (and checked against its checksum here first); a small one
        // lives in the database.
        let object = store.objects().path_of(&sum);
        let bytes = if object.is_file() {
            store.objects().verify(&sum)?;
            Bytes::File(object)
        } else {
            Bytes::Memory(store.read_learner_bytes(&sum, crate::limits::MAX_LEARNER_STATE_BYTES)?)
        };
        files.push(File {
            name: learner_file(name),
            size: l.size,
            bytes,
        });
    }
    let manifest = ReplicaManifest {
        manifest: manifest_of(store, &info, &states, &learners)?,
        pinned: info.pinned,
        origin: info
            .origin
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok()),
        host_id: host_id.to_string(),
    };
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Encode(e.to_string()))?;
    files.push(File {
        name: MANIFEST.into(),
        size: manifest_bytes.len() as u64,
        bytes: Bytes::Memory(manifest_bytes),
    });
    let states_bytes: u64 = files
        .iter()
        .filter(|f| f.name != MANIFEST)
        .map(|f| f.size)
        .sum();
    let mut tags = vec![
        TAG.to_string(),
        info.kind.as_str().to_string(),
        format!("{BACKUP_TAG}{id}"),
    ];
    if info.pinned {
        tags.push("pinned".into());
    }
    let snap = archive(
        place,
        key,
        host_id,
        &tags,
        info.created_at_ms,
        Files {
            files,
            time: timestamp(info.created_at_ms)?,
        },
    )?;
    Ok(ReplicaCopy {
        backup_id: id,
        snapshot_id: snap.id.to_hex().to_string(),
        kind: info.kind,
        created_at_ms: info.created_at_ms,
        label: info.label,
        pinned: info.pinned,
        bytes: states_bytes,
        bytes_added: snap.summary.map(|s| s.data_added).unwrap_or(0),
        uploaded_at_ms: crate::now_ms(),
    })
}

/// Uploads the catalog (metric history, branches, learners, settings) as
/// one snapshot. Returns its id.
pub fn upload_catalog(place: &Place, key: &str, store: &Store, host_id: &str) -> Result<String> {
    let now = crate::now_ms();
    let mut files = Vec::new();
    for (table, _, _) in CATALOG_TABLES {
        let bytes = store.dump_catalog_table(table)?;
        files.push(File {
            name: catalog_file(table),
            size: bytes.len() as u64,
            bytes: Bytes::Memory(bytes),
        });
    }
    let tags = vec![TAG.to_string(), CATALOG_TAG.to_string()];
    let snap = archive(
        place,
        key,
        host_id,
        &tags,
        now,
        Files {
            files,
            time: timestamp(now)?,
        },
    )?;
    Ok(snap.id.to_hex().to_string())
}

fn timestamp(ms: i64) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms)
        .map_err(|e| Error::InvalidInput(format!("a time out of range ({ms} ms): {e}")))
}

/// Writes `files` as one snapshot through a freshly opened and indexed
/// repository (a handle does not see its own earlier blobs), with no
/// parent (every byte is read; unchanged chunks are deduplicated by
/// content), and checks the summary: a file the archiver skipped with a
/// logged warning fails the upload instead of passing as written.
fn archive(
    place: &Place,
    key: &str,
    host_id: &str,
    tags: &[String],
    at_ms: i64,
    files: Files,
) -> Result<SnapshotFile> {
    let count = files.files.len() as u64;
    let total = files.total();
    let repo: Repository<OpenStatus> = super::open(place, key)?;
    let repo = repo.to_indexed_ids().map_err(|e| place.unavailable(&e))?;
    let mut opts = SnapshotOptions::default()
        .host(host_id.to_string())
        .time(timestamp(at_ms)?.to_zoned(jiff::tz::TimeZone::UTC));
    opts = opts
        .add_tags(&tags.join(","))
        .map_err(|e| place.unavailable(&e))?;
    let snap = opts.to_snapshot().map_err(|e| place.unavailable(&e))?;
    let backup_opts = BackupOptions::default()
        .parent_opts(ParentOptions::default().force(true))
        .no_scan(true);
    let source = Source::new(files);
    let snap = repo
        .archive(&backup_opts, &source, snap, &[PathBuf::from(ROOT)])
        .map_err(|e| place.unavailable(&e))?;
    let summary = snap.summary.as_ref().ok_or_else(|| Error::Replica {
        code: ErrorCode::ReplicaUnavailable,
        message: format!("{}: the snapshot has no summary", place.describe()),
    })?;
    if summary.total_files_processed != count || summary.total_bytes_processed != total {
        // The incomplete snapshot goes: left there, it would pass as this
        // backup's copy (a restart finds copies by their tag).
        let removed = match repo.delete_snapshots(&[snap.id]) {
            Ok(()) => "it was removed".to_string(),
            Err(e) => format!(
                "removing it failed too ({}): forget snapshot {} by hand",
                super::rustic_message(&e),
                snap.id.to_hex().as_str()
            ),
        };
        return Err(Error::Replica {
            code: ErrorCode::ReplicaUnavailable,
            message: format!(
                "{}: the upload wrote {} files of {} bytes, not {count} of {total} (see the log); {removed}, and it will be tried again",
                place.describe(),
                summary.total_files_processed,
                summary.total_bytes_processed
            ),
        });
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ReplicaKind;

    fn repo() -> (tempfile::TempDir, Place) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let place = Place::parse(
            ReplicaKind::Local,
            &tmp.path().join("repo").display().to_string(),
            None,
            None,
        )
        .expect("place");
        super::super::open_or_init(&place, "k", || Ok(())).expect("init");
        (tmp, place)
    }

    fn files(list: Vec<(&str, Bytes, u64)>) -> Files {
        Files {
            files: list
                .into_iter()
                .map(|(name, bytes, size)| File {
                    name: name.into(),
                    size,
                    bytes,
                })
                .collect(),
            time: timestamp(1_000).expect("time"),
        }
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// The stale-index trap: a handle does not see its own earlier blobs.
    /// Each upload opens and indexes afresh, so the second of two uploads
    /// in one process sends only the file that changed.
    #[test]
    fn a_second_upload_through_the_same_process_sends_only_what_changed() {
        let (_tmp, place) = repo();
        let big = noise(4 << 20, 7);
        let tags = ["engram".to_string()];
        let first = archive(
            &place,
            "k",
            "host",
            &tags,
            1_000,
            files(vec![
                (
                    "engines/big.state",
                    Bytes::Memory(big.clone()),
                    big.len() as u64,
                ),
                ("engines/small.state", Bytes::Memory(b"one".to_vec()), 3),
            ]),
        )
        .expect("first");
        let second = archive(
            &place,
            "k",
            "host",
            &tags,
            2_000,
            files(vec![
                (
                    "engines/big.state",
                    Bytes::Memory(big.clone()),
                    big.len() as u64,
                ),
                ("engines/small.state", Bytes::Memory(b"two".to_vec()), 3),
            ]),
        )
        .expect("second");
        let added = |s: &SnapshotFile| s.summary.as_ref().map_or(0, |s| s.data_added_files);
        assert!(added(&first) >= big.len() as u64, "{}", added(&first));
        assert!(
            added(&second) < 64 * 1024,
            "the unchanged 4 MiB went up again: {} bytes added",
            added(&second)
        );
    }

    /// The logged-not-returned trap: a file the archiver cannot read is
    /// skipped with a warning by rustic; here it fails the upload, and the
    /// incomplete snapshot does not stay to pass as the backup's copy.
    #[test]
    fn a_file_that_cannot_be_read_fails_the_upload_and_leaves_no_snapshot() {
        let (tmp, place) = repo();
        let e = archive(
            &place,
            "k",
            "host",
            &["engram".to_string()],
            1_000,
            files(vec![
                ("engines/ok.state", Bytes::Memory(b"fine".to_vec()), 4),
                (
                    "learners/gone.state",
                    Bytes::File(tmp.path().join("no-such-object")),
                    10,
                ),
            ]),
        )
        .expect_err("an unreadable file fails the upload");
        assert_eq!(e.code(), "replica_unavailable", "{e}");
        assert!(e.to_string().contains("it was removed"), "{e}");
        let repo = super::super::open(&place, "k").expect("open");
        assert!(
            repo.get_all_snapshots().expect("list").is_empty(),
            "the incomplete snapshot stayed"
        );
    }
}
