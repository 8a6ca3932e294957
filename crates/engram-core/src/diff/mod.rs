//! What changed inside a state between two backups, by what the state is
//! ([`crate::wire::Inside`]): the built-in engines decoded ([`engines`]),
//! a learner packed with `engram.pack` array by array ([`pack`]), any other
//! learner format byte by byte ([`bytes()`]). Arrays are compared element by
//! element as they stream ([`arrays`]): a learner's states are never read
//! whole into memory here.
//!
//! Rooms: `arrays` (element-wise tallies by numpy type), `engines`, `pack`,
//! this file (the byte-level comparison and the choice among them).
//!
//! Must not: know SQL or where states are stored (callers hand in decoded
//! engine states and [`StateBytes`]); change anything.

pub mod arrays;
pub mod engines;
pub mod pack;

pub use engines::compare_engine;

use crate::error::Result;
use crate::store::StateBytes;
use crate::wire::{ComparedMetric, Counted, Inside};

/// What changed between two learner states in `format`.
pub fn compare_learner(format: &str, a: &StateBytes, b: &StateBytes) -> Result<Inside> {
    if pack::is_pack(format) {
        return pack::compare_pack(a, b);
    }
    // A pack under another format's name (engram.torch, engram.lightning,
    // engram.sb3) is compared as one; what does not read as a pack, byte
    // by byte.
    if pack::starts_as_pack(a)
        && pack::starts_as_pack(b)
        && let Ok(inside) = pack::compare_pack(a, b)
    {
        return Ok(inside);
    }
    bytes(a, b)
}

/// Any two byte strings: sizes, and how many bytes differ (over the common
/// length, plus the length difference).
pub fn bytes(a: &StateBytes, b: &StateBytes) -> Result<Inside> {
    let common = a.len().min(b.len());
    let t = arrays::compare_ranges((a, 0), (b, 0), common, (arrays::Num::Bits, 1, true))?;
    let differ = t.changed + a.len().max(b.len()) - common;
    Ok(Inside {
        kind: "bytes".into(),
        figures: vec![ComparedMetric {
            key: "size_bytes".into(),
            from: Some(a.len() as f64),
            to: Some(b.len() as f64),
            change: Some(b.len() as f64 - a.len() as f64),
        }],
        counted: vec![Counted {
            what: "bytes that differ".into(),
            n: differ,
            of: Some(a.len().max(b.len())),
        }],
        ..Inside::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_formats_are_compared_byte_by_byte() {
        let a = StateBytes::Memory(b"hello world".to_vec());
        let b = StateBytes::Memory(b"hallo world!!".to_vec());
        let d = compare_learner("pickle", &a, &b).expect("compare");
        assert_eq!(d.kind, "bytes");
        assert_eq!((d.counted[0].n, d.counted[0].of), (3, Some(13)));
        assert_eq!(d.figures[0].change, Some(2.0));
    }

    #[test]
    fn packs_under_other_format_names_are_compared_array_by_array() {
        let a = pack::tests::pack(serde_json::json!({}), &[("w", &[3], &[1.0, 2.0, 3.0])]);
        let b = pack::tests::pack(serde_json::json!({}), &[("w", &[3], &[1.0, 2.5, 3.0])]);
        let d = compare_learner(
            "engram.torch/1",
            &StateBytes::Memory(a),
            &StateBytes::Memory(b),
        )
        .expect("compare");
        assert_eq!(d.kind, "engram.pack");
        assert_eq!(d.arrays[0].max_abs, Some(0.5));
        // Starts like a pack but is not one: compared byte by byte.
        let fake = |t: &[u8]| StateBytes::Memory([b"ENGRAMPK".as_slice(), t].concat());
        let d = compare_learner(
            "pickle",
            &fake(b"\x01\x00garbage"),
            &fake(b"\x01\x00garbagE"),
        )
        .expect("compare");
        assert_eq!(d.kind, "bytes");
        assert_eq!(d.counted[0].n, 1);
    }
}
