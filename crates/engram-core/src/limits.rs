//! Every limit on what Engram accepts or keeps, in one place: what a file,
//! a request or a learner may hold. Each is checked where the data enters
//! (an import, a save, a request) before anything is stored, so a hostile
//! or mistaken input is refused whole. The engines' own bounds on a state's
//! contents (buffer lengths, counters) are `engines::bounds`.
//!
//! Must not: import anything (it is the bottom of the core).

/// The largest learner state accepted.
pub const MAX_LEARNER_STATE_BYTES: u64 = 1 << 30;
/// The most points one `log` call may carry.
pub const MAX_LOG_POINTS: usize = 10_000;
/// The largest state kept inside the database; larger ones are files.
pub const INLINE_STATE_BYTES: usize = 128 << 10;
/// No single encoded engine state may exceed this (checked before
/// decompressing).
pub const MAX_STATE_BYTES: u64 = 512 * 1024 * 1024;
/// The largest object (a learner state's file) accepted.
pub const MAX_OBJECT_BYTES: u64 = 4 << 30;
/// Largest snapshot file accepted for import.
pub const MAX_SNAPSHOT_BYTES: u64 = 1024 * 1024 * 1024;
/// The decoded states of one snapshot together: the most memory one
/// import may ask for, whatever the file's size.
pub const MAX_SNAPSHOT_STATE_BYTES: u64 = 1024 * 1024 * 1024;
/// Metrics per engine in a manifest, or in one save of a learner.
pub const MAX_METRICS: usize = 1024;
/// Most points one series query returns.
pub const MAX_SERIES_POINTS: usize = 10_000;
