//! Offsite replicas: every backup, and the catalog beside them (metric
//! history, branches, learners, settings), in a **restic repository**
//! written in process by `rustic_core`, so that a stock `restic` can
//! list, check and restore it without Engram.
//!
//! Layout of one Engram backup in the repository: one snapshot, hostname =
//! this data directory's host id, tags `engram`, its kind,
//! `engram-backup:<id>` (and `pinned`), path `/engram`, holding
//! `manifest.json` (the export manifest plus pin and origin),
//! `engines/<name>.state` (the encoded bytes, uncompressed, so restic's
//! deduplication and zstd work across backups) and
//! `learners/<name>.state` (the learner's own bytes). The catalog is a
//! snapshot tagged `engram-catalog` holding `catalog/<table>.jsonl`.
//!
//! Rooms: this file (targets, the key, opening a repository, errors),
//! `sftp` (the SFTP backend), `source` (states streamed into `archive`), `upload` (one backup, the
//! catalog), `check` (verify, prune), `recover` (a whole timeline into a
//! new data directory, or one backup back), `worker` (the queue).
//!
//! Traps this module guards against (see `REPLICA_ON_THIS_MACHINE.md`):
//! a repository handle does not see its own earlier writes (opened again
//! for each upload); with a parent snapshot a same-size change is recorded
//! as unchanged (no parent is used: every state is read and its chunks
//! deduplicated by content); read errors are logged, not returned (each
//! snapshot's summary is checked against what was meant).
//!
//! Must not: run on an async thread (every repository call blocks, on a
//! disk or on SFTP through `sftp`); hold the store's lock while it talks to
//! a repository.

mod check;
mod recover;
mod sftp;
mod source;
mod upload;
mod worker;

pub use check::{prune, verify};
pub use recover::{RecoverOptions, fetch, recover, retrieve};
pub use upload::{upload_backup, upload_catalog};
pub use worker::Replicator;

use crate::error::{Error, ErrorCode, Result};
use crate::store::ReplicaTarget;
use crate::wire::ReplicaKind;
use rustic_core::{
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository, RepositoryOptions, RusticError,
};
use std::path::{Path, PathBuf};

/// The file in the data directory that holds the repository key.
pub const KEY_FILE: &str = "replica.key";

/// The tag every Engram snapshot carries.
pub const TAG: &str = "engram";
/// The tag of the catalog snapshots.
pub const CATALOG_TAG: &str = "engram-catalog";
/// The tag naming the backup a snapshot holds: `engram-backup:<id>`.
pub const BACKUP_TAG: &str = "engram-backup:";
/// The one path of every Engram snapshot.
pub const ROOT: &str = "/engram";

/// Where a repository is and how to reach it.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    pub kind: ReplicaKind,
    pub location: String,
    pub port: Option<u16>,
    pub identity: Option<String>,
}

impl Place {
    pub fn of(t: &ReplicaTarget) -> Place {
        Place {
            kind: t.kind,
            location: t.location.clone(),
            port: t.port,
            identity: t.identity.clone(),
        }
    }

    /// Checks a place as a user typed it, and makes a local path absolute.
    pub fn parse(
        kind: ReplicaKind,
        location: &str,
        port: Option<u16>,
        identity: Option<&str>,
    ) -> Result<Place> {
        let location = location.trim();
        if location.is_empty() {
            return Err(Error::InvalidInput(
                "the replica's location is empty".into(),
            ));
        }
        match kind {
            ReplicaKind::Local => {
                if port.is_some() || identity.is_some() {
                    return Err(Error::InvalidInput(
                        "--port and --identity are for sftp replicas".into(),
                    ));
                }
                let path = PathBuf::from(location);
                let path = if path.is_absolute() {
                    path
                } else {
                    std::env::current_dir()
                        .map_err(|e| Error::io("read the working directory", ".", e))?
                        .join(path)
                };
                Ok(Place {
                    kind,
                    location: path.display().to_string(),
                    port: None,
                    identity: None,
                })
            }
            ReplicaKind::Sftp => {
                let ok = location
                    .split_once(':')
                    .is_some_and(|(host, path)| !host.is_empty() && !path.is_empty());
                if !ok {
                    return Err(Error::InvalidInput(format!(
                        "an sftp replica is USER@HOST:PATH, not {location:?}"
                    )));
                }
                Ok(Place {
                    kind,
                    location: location.to_string(),
                    port,
                    identity: identity.map(str::to_string),
                })
            }
        }
    }

    /// A default name: the last part of the path (or `host-path`).
    pub fn default_name(&self) -> String {
        let raw = match self.kind {
            ReplicaKind::Local => Path::new(&self.location)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "replica".into()),
            ReplicaKind::Sftp => self.location.replace(['@', ':', '/'], "-"),
        };
        let name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let name = name.trim_matches('-').chars().take(48).collect::<String>();
        if name.is_empty() {
            "replica".into()
        } else {
            name
        }
    }

    /// How a person knows it: a path, or `sftp:user@host:path`.
    pub fn describe(&self) -> String {
        match self.kind {
            ReplicaKind::Local => self.location.clone(),
            ReplicaKind::Sftp => format!("sftp:{}", self.location),
        }
    }

    fn backends(&self) -> Result<rustic_core::RepositoryBackends> {
        match self.kind {
            ReplicaKind::Local => rustic_backend::BackendOptions::default()
                .repository(format!("local:{}", self.location))
                .to_backends()
                .map_err(|e| self.unavailable(&e)),
            ReplicaKind::Sftp => Ok(rustic_core::RepositoryBackends::new(
                std::sync::Arc::new(sftp::SftpBackend::connect(self)?),
                None,
            )),
        }
    }

    /// A repository error as a person can act on it.
    pub(crate) fn unavailable(&self, e: &RusticError) -> Error {
        let message = rustic_message(e);
        if e.is_incorrect_password() {
            return Error::Replica {
                code: ErrorCode::WrongKey,
                message: format!(
                    "the key does not open the replica at {}: give the key this repository was made with",
                    self.describe()
                ),
            };
        }
        if disk_full(e, &message) {
            return Error::Replica {
                code: ErrorCode::ReplicaUnavailable,
                message: format!(
                    "replica at {}: its disk is full (no space left): free space there or add another replica; uploads resume by themselves",
                    self.describe()
                ),
            };
        }
        Error::Replica {
            code: ErrorCode::ReplicaUnavailable,
            message: format!("replica at {}: {message}", self.describe()),
        }
    }
}

/// Whether a repository write failed for want of space (ENOSPC, EDQUOT),
/// by the error's chain or, where rustic kept only text, its message.
fn disk_full(e: &RusticError, message: &str) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || matches!(io.raw_os_error(), Some(28 | 122)))
        {
            return true;
        }
        cause = c.source();
    }
    message.contains("No space left on device") || message.contains("Disk quota exceeded")
}

/// A rustic error's message without the backtrace its `Display` carries
/// when `RUST_BACKTRACE` is set.
pub(crate) fn rustic_message(e: &RusticError) -> String {
    let m = e.display_log();
    m.strip_prefix("Error: ").unwrap_or(&m).to_string()
}

/// Opens the repository at `place` with `key`. A place that holds no
/// repository is `not_found`; a wrong key `wrong_key`.
pub fn open(place: &Place, key: &str) -> Result<Repository<OpenStatus>> {
    check_reachable(place)?;
    let repo = Repository::new(&RepositoryOptions::default(), &place.backends()?)
        .map_err(|e| place.unavailable(&e))?;
    match repo.config_id() {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(Error::NotFound {
                what: "restic repository",
                id: place.describe(),
            });
        }
        Err(e) => return Err(place.unavailable(&e)),
    }
    // A key file is opened by scrypt, which costs about a second by
    // design; the master key it unlocks is kept for this process, so that
    // the upload of every backup does not pay it again.
    let cache_key = (
        place.describe(),
        blake3::hash(key.as_bytes()).to_hex().to_string(),
    );
    let cached = master_keys()
        .lock()
        .ok()
        .and_then(|m| m.get(&cache_key).cloned());
    if let Some(mk) = cached {
        let again = Repository::new(&RepositoryOptions::default(), &place.backends()?)
            .map_err(|e| place.unavailable(&e))?;
        if let Ok(open) = again.open(&Credentials::Masterkey(mk)) {
            return Ok(open);
        }
    }
    let open = repo
        .open(&Credentials::password(key))
        .map_err(|e| place.unavailable(&e))?;
    if let Ok(mut m) = master_keys().lock() {
        m.insert(cache_key, open.key());
    }
    Ok(open)
}

type KeyCache = std::collections::HashMap<(String, String), rustic_core::repofile::MasterKey>;

fn master_keys() -> &'static std::sync::Mutex<KeyCache> {
    static KEYS: std::sync::OnceLock<std::sync::Mutex<KeyCache>> = std::sync::OnceLock::new();
    KEYS.get_or_init(Default::default)
}

/// Opens the repository at `place`, or makes one there if the place is
/// empty, calling `before_init` first (where a new key is written down:
/// nothing is written anywhere until the place is known to take it).
/// Returns whether it was made now.
pub fn open_or_init(
    place: &Place,
    key: &str,
    before_init: impl FnOnce() -> Result<()>,
) -> Result<(Repository<OpenStatus>, bool)> {
    match open(place, key) {
        Ok(repo) => Ok((repo, false)),
        Err(Error::NotFound { .. }) => {
            if place.kind == ReplicaKind::Local {
                let dir = Path::new(&place.location);
                if let Ok(mut entries) = std::fs::read_dir(dir)
                    && entries.next().is_some()
                {
                    return Err(not_empty(place));
                }
            } else if sftp::SftpBackend::connect(place)?.holds_anything()? {
                return Err(not_empty(place));
            }
            let repo = Repository::new(&RepositoryOptions::default(), &place.backends()?)
                .map_err(|e| place.unavailable(&e))?;
            before_init()?;
            let key_opts = KeyOptions::default()
                .hostname(Some("engram".to_string()))
                .with_created(true);
            let repo = repo
                .init(
                    &Credentials::password(key),
                    &key_opts,
                    &ConfigOptions::default(),
                )
                .map_err(|e| place.unavailable(&e))?;
            Ok((repo, true))
        }
        Err(e) => Err(e),
    }
}

fn not_empty(place: &Place) -> Error {
    Error::InvalidInput(format!(
        "{} is not empty and holds no restic repository: choose an empty or new directory",
        place.describe()
    ))
}

/// A local target whose directory is gone (an unplugged disk, an unmounted
/// share) is said as such, not as a missing repository.
fn check_reachable(place: &Place) -> Result<()> {
    if place.kind != ReplicaKind::Local {
        return Ok(());
    }
    let dir = Path::new(&place.location);
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.is_dir() => Err(Error::Replica {
            code: ErrorCode::ReplicaUnavailable,
            message: format!(
                "{} cannot be reached: its parent directory {} is missing (is the disk mounted?)",
                place.describe(),
                parent.display()
            ),
        }),
        _ => Ok(()),
    }
}

/// The key file of a data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Reads a key file: the key alone on its first line.
pub fn read_key(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            what: "replica key file",
            id: path.display().to_string(),
        },
        _ => Error::io("read the replica key file", path, e),
    })?;
    let key = text.lines().next().unwrap_or("").trim().to_string();
    if key.is_empty() || key.len() > 1024 {
        return Err(Error::InvalidInput(format!(
            "{} holds no key (the key alone on its first line)",
            path.display()
        )));
    }
    Ok(key)
}

/// The data directory's key, or a new one if it has none (not written
/// yet: see [`open_or_init`]). Returns the key and whether it is new.
pub fn key_or_new(data_dir: &Path) -> Result<(String, bool)> {
    match read_key(&key_path(data_dir)) {
        Ok(k) => return Ok((k, false)),
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok((raw.iter().map(|b| format!("{b:02x}")).collect(), true))
}

/// Writes a key file: owner-only, synced, never over an existing one.
pub fn write_key(path: &Path, key: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .map_err(|e| Error::io("create the replica key file", path, e))?;
    f.write_all(format!("{key}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write the replica key file", path, e))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Routes `rustic_core`'s `log` records into Engram's logs (`tracing`),
/// once: its warnings are where it reports what it skipped.
pub fn route_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        struct ToTracing;
        impl log::Log for ToTracing {
            fn enabled(&self, m: &log::Metadata<'_>) -> bool {
                m.level() <= log::Level::Warn
            }
            fn log(&self, r: &log::Record<'_>) {
                thread_local! {
                    static INSIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
                }
                // Without a tracing subscriber, `tracing` hands its events
                // back to `log`: once round is enough.
                if !self.enabled(r.metadata()) || INSIDE.with(|i| i.replace(true)) {
                    return;
                }
                let _reset = Reset;
                struct Reset;
                impl Drop for Reset {
                    fn drop(&mut self) {
                        INSIDE.with(|i| i.set(false));
                    }
                }
                match r.level() {
                    log::Level::Error => {
                        tracing::error!(target: "replica", "{}", r.args())
                    }
                    _ => tracing::warn!(target: "replica", "{}", r.args()),
                }
            }
            fn flush(&self) {}
        }
        if log::set_boxed_logger(Box::new(ToTracing)).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
    });
}

/// The backup a snapshot holds, from its tags.
pub fn backup_of(snap: &rustic_core::repofile::SnapshotFile) -> Option<i64> {
    snap.tags
        .iter()
        .find_map(|t| t.strip_prefix(BACKUP_TAG))
        .and_then(|n| n.parse().ok())
}
