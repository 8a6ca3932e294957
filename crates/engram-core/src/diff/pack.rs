//! Two states written by the Python client's `engram.pack` (layout in
//! `clients/python/src/engram/pack.py`): which arrays and values changed,
//! and by how much. Only the headers are held in memory; the arrays are
//! streamed from where they are stored.

use super::arrays::{Tally, array_change, compare_ranges, parse_dtype};
use crate::error::{Error, Result};
use crate::store::StateBytes;
use crate::wire::{Counted, Inside};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

const MAGIC: &[u8; 8] = b"ENGRAMPK";
const HEAD: u64 = 14;
/// A header larger than this is not believed.
const MAX_HEADER: u64 = 64 << 20;

/// The names `engram.pack` gives its format.
pub fn is_pack(format: &str) -> bool {
    format == "engram.pack" || format.starts_with("engram.pack/")
}

/// Whether `s` starts as an `engram.pack` buffer does (its magic bytes):
/// `engram.torch`, `engram.lightning` and `engram.sb3` states are packs
/// under format names of their own.
pub fn starts_as_pack(s: &StateBytes) -> bool {
    let mut magic = [0u8; 8];
    s.len() >= HEAD && s.read_at(0, &mut magic).is_ok() && &magic == MAGIC
}

#[derive(Debug, Deserialize)]
struct Header {
    #[serde(default)]
    values: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    arrays: BTreeMap<String, PackArray>,
}

#[derive(Debug, Deserialize)]
struct PackArray {
    dtype: String,
    shape: Vec<u64>,
    offset: u64,
    nbytes: u64,
}

/// A pack's header, checked against the bytes it describes; with where
/// the arrays start.
fn read_header(s: &StateBytes) -> Result<(Header, u64)> {
    let bad = |why: String| Error::corrupt("engram.pack state", why);
    if s.len() < HEAD {
        return Err(bad("shorter than its header".into()));
    }
    let mut head = [0u8; HEAD as usize];
    s.read_at(0, &mut head)?;
    if &head[..8] != MAGIC {
        return Err(bad("does not start with ENGRAMPK".into()));
    }
    let version = u16::from_le_bytes([head[8], head[9]]);
    if version != 1 {
        return Err(bad(format!(
            "version {version} is not one this build reads"
        )));
    }
    let hlen = u64::from(u32::from_le_bytes([head[10], head[11], head[12], head[13]]));
    if hlen > MAX_HEADER || HEAD + hlen > s.len() {
        return Err(bad(format!("a header of {hlen} bytes runs past the end")));
    }
    let mut json = vec![0u8; hlen as usize];
    s.read_at(HEAD, &mut json)?;
    let header: Header =
        serde_json::from_slice(&json).map_err(|e| bad(format!("its header: {e}")))?;
    let start = HEAD + hlen;
    let data = s.len() - start;
    for (name, a) in &header.arrays {
        let end = a.offset.checked_add(a.nbytes);
        if end.is_none_or(|e| e > data) {
            return Err(bad(format!("array {name:?} runs past the end")));
        }
        if let Some((_, size, _)) = parse_dtype(&a.dtype) {
            let expected = a
                .shape
                .iter()
                .try_fold(size as u64, |n, d| n.checked_mul(*d));
            if expected != Some(a.nbytes) {
                return Err(bad(format!(
                    "array {name:?}: {} bytes do not hold shape {:?} of {}",
                    a.nbytes, a.shape, a.dtype
                )));
            }
        }
    }
    Ok((header, start))
}

/// What changed between two packed states.
pub fn compare_pack(a: &StateBytes, b: &StateBytes) -> Result<Inside> {
    let ((ha, sa), (hb, sb)) = (read_header(a)?, read_header(b)?);
    let mut inside = Inside {
        kind: "engram.pack".into(),
        ..Inside::default()
    };
    let names: BTreeSet<&String> = ha.arrays.keys().chain(hb.arrays.keys()).collect();
    let mut arrays_changed = 0;
    for name in &names {
        let (x, y) = (ha.arrays.get(*name), hb.arrays.get(*name));
        let tally = match (x, y) {
            (Some(x), Some(y)) if x.dtype == y.dtype && x.shape == y.shape => {
                match parse_dtype(&x.dtype) {
                    Some(elem) => Some(compare_ranges(
                        (a, sa + x.offset),
                        (b, sb + y.offset),
                        x.nbytes,
                        elem,
                    )?),
                    None => None,
                }
            }
            _ => None,
        };
        if tally.as_ref().is_none_or(|t: &Tally| t.changed > 0) {
            arrays_changed += 1;
        }
        let side = |p: Option<&PackArray>| p.map(|p| (p.dtype.clone(), p.shape.clone()));
        let (fx, fy) = (side(x), side(y));
        inside.arrays.push(array_change(
            name,
            fx.as_ref().map(|(d, s)| (d.as_str(), s.as_slice())),
            fy.as_ref().map(|(d, s)| (d.as_str(), s.as_slice())),
            tally.as_ref(),
        ));
    }
    inside.counted.push(Counted {
        what: "arrays changed".into(),
        n: arrays_changed,
        of: Some(names.len() as u64),
    });
    let keys: BTreeSet<&String> = ha.values.keys().chain(hb.values.keys()).collect();
    inside.values_changed = keys
        .iter()
        .filter(|k| ha.values.get(**k) != hb.values.get(**k))
        .map(|k| (*k).clone())
        .collect();
    inside.counted.push(Counted {
        what: "values changed".into(),
        n: inside.values_changed.len() as u64,
        of: Some(keys.len() as u64),
    });
    Ok(inside)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Packs like `engram.pack` does (for tests): f64 arrays and values.
    pub(crate) fn pack(values: serde_json::Value, arrays: &[(&str, &[u64], &[f64])]) -> Vec<u8> {
        let mut meta = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape, v) in arrays {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            meta.insert(
                name.to_string(),
                serde_json::json!({"dtype": "<f8", "shape": shape, "offset": data.len(), "nbytes": bytes.len()}),
            );
            data.extend(bytes);
        }
        let header = serde_json::to_vec(&serde_json::json!({"values": values, "arrays": meta}))
            .expect("json");
        let mut out = b"ENGRAMPK".to_vec();
        out.extend(1u16.to_le_bytes());
        out.extend((header.len() as u32).to_le_bytes());
        out.extend(header);
        out.extend(data);
        out
    }

    #[test]
    fn one_changed_array_is_named_with_its_largest_difference() {
        let w: Vec<f64> = (0..1000).map(f64::from).collect();
        let mut w2 = w.clone();
        w2[10] += 0.5;
        w2[900] -= 2.0;
        let b = [0.1, 0.2];
        let a = pack(
            serde_json::json!({"step": 5, "lr": 0.1}),
            &[("w", &[10, 100], &w), ("b", &[2], &b)],
        );
        // Another order of arrays in the file: compared by name.
        let c = pack(
            serde_json::json!({"step": 6, "lr": 0.1}),
            &[("b", &[2], &b), ("w", &[10, 100], &w2)],
        );
        let d = compare_pack(&StateBytes::Memory(a), &StateBytes::Memory(c)).expect("compare");
        assert_eq!(d.kind, "engram.pack");
        let w = d.arrays.iter().find(|x| x.name == "w").expect("w");
        assert_eq!((w.changed, w.max_abs), (Some(2), Some(2.0)));
        assert_eq!(w.mean_abs, Some(2.5 / 1000.0));
        assert_eq!(w.shape_to.as_deref(), Some(&[10u64, 100][..]));
        let b = d.arrays.iter().find(|x| x.name == "b").expect("b");
        assert_eq!(b.changed, Some(0));
        assert_eq!(d.values_changed, ["step"]);
        assert_eq!(d.counted[0].n, 1);
    }

    #[test]
    fn another_shape_or_a_missing_array_is_said_and_damage_is_refused() {
        let a = pack(serde_json::json!({}), &[("w", &[2], &[1.0, 2.0])]);
        let b = pack(
            serde_json::json!({}),
            &[("w", &[3], &[1.0, 2.0, 3.0]), ("new", &[1], &[0.0])],
        );
        let d =
            compare_pack(&StateBytes::Memory(a.clone()), &StateBytes::Memory(b)).expect("compare");
        let w = &d.arrays[1];
        assert_eq!((w.name.as_str(), w.changed), ("w", None));
        assert_eq!(w.shape_from.as_deref(), Some(&[2u64][..]));
        assert_eq!(d.arrays[0].dtype_from, None);
        assert_eq!(d.counted[0].n, 2);
        // A header that claims more than there is, a foreign file, a cut file.
        let mut lying = a.clone();
        let at = lying.len() - 16;
        lying.truncate(at);
        for bad in [lying, b"PK\x03\x04 not a pack".to_vec(), a[..10].to_vec()] {
            let e = compare_pack(&StateBytes::Memory(a.clone()), &StateBytes::Memory(bad))
                .expect_err("damaged");
            assert_eq!(e.code(), crate::error::ErrorCode::CorruptState, "{e}");
        }
    }
}
