//! Engram's core library: everything that makes learning-engine state
//! durable. Its modules, bottom to top (a module imports only those above
//! it in this list; `scripts/module-graph` checks there is no circle):
//!
//! - [`error`]: `Error` and the closed set of `ErrorCode`s.
//! - [`limits`]: every limit on what Engram accepts or keeps.
//! - [`wire`]: every type that crosses a door (requests, answers, events,
//!   the rows a door shows), with serde and their TypeScript form.
//! - [`codec`]: the bit-exact, versioned encoding of engine states.
//! - [`iotrace`]: the power-loss trace of learner state files (tests).
//! - [`objects`]: content-addressed files and learners' slot files.
//! - [`store`]: all SQL — live states, backups, history, learners,
//!   retention, integrity.
//! - [`engines`]: the learning engines (pure, deterministic; they name the
//!   store's `EngineState` as what a capture gives, and do no IO).
//! - [`access`]: the data directory's access token.
//! - [`snapshot`]: portable export files (JSON and binary) and their import.
//! - [`spool`]: learner saves made while Engram was not running.
//! - [`replica`]: offsite replicas in restic's repository format (upload
//!   queue, verify, prune, recovery).
//! - [`fleet`]: the fleet catalog on PostgreSQL (push sync from the
//!   store's queue, the all-hosts reads).
//! - [`supervisor`]: learners' processes that Engram runs.
//! - [`runtime`]: runs the engines, saves and backs them up; one writer.
//! - [`api`]: the top — every operation declared once
//!   ([`for_each_operation!`]), over a running runtime or a data directory.
//!
//! The core never depends on Tauri and never talks to a UI; the desktop shell
//! and the CLI are thin layers over it.

pub mod access;
pub mod api;
pub mod codec;
pub mod diff;
pub mod drill;
pub mod engines;
pub mod error;
pub mod fleet;
pub mod iotrace;
pub mod limits;
pub mod objects;
pub mod replica;
pub mod runtime;
pub mod snapshot;
pub mod spool;
pub mod store;
pub mod supervisor;
pub mod wire;

pub use codec::{Checksum, EncodedState};
pub use error::{Error, ErrorCode, Result};
pub use store::{BackupInfo, BackupPage, BackupQuery, EngineState, NewBackup, Store};
pub use wire::{BackupKind, Breakthrough, Metrics, RetentionPolicy};

/// This build's version, written into exports.
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats Unix milliseconds as RFC 3339 in UTC, e.g. `2026-11-25T19:04:34.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// A deterministic generator for tests (the engines' own `Rng`).
#[cfg(test)]
pub(crate) fn test_rng(seed: u64) -> impl FnMut() -> u64 {
    let mut rng = engines::rng::Rng::new(seed);
    move || rng.next_u64()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_795_633_474_123),
            "2026-11-25T19:04:34.123Z"
        );
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
