//! Two arrays compared element by element, by their numpy element type:
//! how many elements' bits differ, and the largest and mean absolute
//! difference. Streams: two buffers of [`CHUNK`] bytes whatever the arrays'
//! size.

use crate::error::Result;
use crate::store::StateBytes;
use crate::wire::ArrayChange;

/// Bytes read from each side at a time (a multiple of every element size).
pub const CHUNK: usize = 1 << 20;

/// How to read one element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Num {
    Float,
    Signed,
    Unsigned,
    /// Compared by bits only (bools, half floats, complex, strings…).
    Bits,
}

/// A numpy element type (`<f8`, `>i4`, `|u1`, `=f4`): what it is, its size
/// and whether it is little-endian. `None` for types with no fixed size.
pub fn parse_dtype(dtype: &str) -> Option<(Num, usize, bool)> {
    let mut chars = dtype.chars();
    let order = chars.next()?;
    let little = match order {
        '<' | '|' | '=' => true,
        '>' => false,
        _ => return None,
    };
    let kind = chars.next()?;
    let size: usize = chars
        .as_str()
        .parse()
        .ok()
        .filter(|s| (1..=64).contains(s))?;
    let num = match (kind, size) {
        ('f', 4 | 8) => Num::Float,
        ('i', 1 | 2 | 4 | 8) => Num::Signed,
        ('u', 1 | 2 | 4 | 8) => Num::Unsigned,
        _ => Num::Bits,
    };
    Some((num, size, little))
}

/// Differences counted so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub elements: u64,
    pub changed: u64,
    pub max_abs: f64,
    pub sum_abs: f64,
    /// The elements are numbers (differences measured), not bits only.
    pub numeric: bool,
}

impl Tally {
    fn add(&mut self, d: f64) {
        if d.is_finite() {
            self.max_abs = self.max_abs.max(d.abs());
            self.sum_abs += d.abs();
        }
    }

    /// The mean absolute difference over every element (0 for none).
    pub fn mean_abs(&self) -> f64 {
        if self.elements == 0 {
            0.0
        } else {
            self.sum_abs / self.elements as f64
        }
    }

    /// Two same-typed runs of elements (whole elements, same length).
    fn feed(&mut self, num: Num, size: usize, little: bool, a: &[u8], b: &[u8]) {
        debug_assert_eq!(a.len(), b.len());
        if a == b {
            // Most of two states' bytes are the same: one comparison.
            self.elements += (a.len() / size) as u64;
            return;
        }
        for (x, y) in a.chunks_exact(size).zip(b.chunks_exact(size)) {
            self.elements += 1;
            if x == y {
                continue;
            }
            self.changed += 1;
            if num != Num::Bits {
                self.add(value(num, little, y) - value(num, little, x));
            }
        }
    }

    /// Two slices of numbers of the same length.
    pub fn of_f64(a: &[f64], b: &[f64]) -> Tally {
        let mut t = Tally {
            numeric: true,
            ..Tally::default()
        };
        for (x, y) in a.iter().zip(b) {
            t.elements += 1;
            if x.to_bits() != y.to_bits() {
                t.changed += 1;
                t.add(y - x);
            }
        }
        t
    }
}

/// One element's value as a float.
fn value(num: Num, little: bool, b: &[u8]) -> f64 {
    let mut w = [0u8; 8];
    let n = b.len();
    if little {
        w[..n].copy_from_slice(b);
    } else {
        for (i, v) in b.iter().rev().enumerate() {
            w[i] = *v;
        }
    }
    let bits = u64::from_le_bytes(w);
    match (num, n) {
        (Num::Float, 4) => f64::from(f32::from_bits(bits as u32)),
        (Num::Float, _) => f64::from_bits(bits),
        (Num::Signed, _) => {
            let shift = 64 - 8 * n as u32;
            ((bits << shift) as i64 >> shift) as f64
        }
        _ => bits as f64,
    }
}

/// Compares `nbytes` of `a` from `a_at` with as many of `b` from `b_at`,
/// a chunk at a time.
pub fn compare_ranges(
    (a, a_at): (&StateBytes, u64),
    (b, b_at): (&StateBytes, u64),
    nbytes: u64,
    elem: (Num, usize, bool),
) -> Result<Tally> {
    compare_in_chunks((a, a_at), (b, b_at), nbytes, elem, CHUNK)
}

fn compare_in_chunks(
    (a, a_at): (&StateBytes, u64),
    (b, b_at): (&StateBytes, u64),
    nbytes: u64,
    (num, size, little): (Num, usize, bool),
    chunk: usize,
) -> Result<Tally> {
    let step = (chunk / size).max(1) * size;
    let (mut x, mut y) = (vec![0u8; step], vec![0u8; step]);
    let mut t = Tally {
        numeric: num != Num::Bits,
        ..Tally::default()
    };
    let mut done = 0u64;
    while done < nbytes {
        let n = (nbytes - done).min(step as u64) as usize;
        a.read_at(a_at + done, &mut x[..n])?;
        b.read_at(b_at + done, &mut y[..n])?;
        t.feed(num, size, little, &x[..n], &y[..n]);
        done += n as u64;
    }
    Ok(t)
}

/// An array present in one or both states, with its tally when the two
/// could be compared element by element.
pub fn array_change(
    name: &str,
    from: Option<(&str, &[u64])>,
    to: Option<(&str, &[u64])>,
    tally: Option<&Tally>,
) -> ArrayChange {
    let numbers = |t: &&Tally| t.numeric;
    ArrayChange {
        name: name.to_string(),
        dtype_from: from.map(|f| f.0.to_string()),
        dtype_to: to.map(|t| t.0.to_string()),
        shape_from: from.map(|f| f.1.to_vec()),
        shape_to: to.map(|t| t.1.to_vec()),
        changed: tally.map(|t| t.changed),
        max_abs: tally.filter(numbers).map(|t| t.max_abs),
        mean_abs: tally.filter(numbers).map(Tally::mean_abs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_types_are_read_as_numpy_writes_them() {
        assert_eq!(parse_dtype("<f8"), Some((Num::Float, 8, true)));
        assert_eq!(parse_dtype(">i2"), Some((Num::Signed, 2, false)));
        assert_eq!(parse_dtype("|b1"), Some((Num::Bits, 1, true)));
        assert_eq!(parse_dtype("<U7"), Some((Num::Bits, 7, true)));
        assert_eq!(parse_dtype("O"), None);
        assert_eq!(parse_dtype("<f0"), None);
        assert_eq!(value(Num::Signed, true, &(-5i16).to_le_bytes()), -5.0);
        assert_eq!(value(Num::Signed, false, &(-5i32).to_be_bytes()), -5.0);
        assert_eq!(value(Num::Float, true, &1.5f32.to_le_bytes()), 1.5);
        assert_eq!(value(Num::Unsigned, true, &[255]), 255.0);
    }

    #[test]
    fn a_tally_counts_changed_bits_and_measures_finite_differences() {
        let a = [1.0, 2.0, f64::NAN, 0.0, 5.0];
        let b = [1.0, 2.5, f64::NAN, -0.0, 2.0];
        let t = Tally::of_f64(&a, &b);
        // -0.0 differs from 0.0 by its bits: changed, by 0.
        assert_eq!((t.elements, t.changed), (5, 3));
        assert_eq!(t.max_abs, 3.0);
        assert!((t.mean_abs() - 3.5 / 5.0).abs() < 1e-12);
        // Streamed in pieces smaller than the arrays, the same answer.
        let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (x, y) = (StateBytes::Memory(bytes(&a)), StateBytes::Memory(bytes(&b)));
        let s =
            compare_in_chunks((&x, 0), (&y, 0), 40, (Num::Float, 8, true), 16).expect("compare");
        assert_eq!(s, t);
        let whole = compare_ranges((&x, 0), (&y, 0), 40, (Num::Float, 8, true)).expect("compare");
        assert_eq!(whole, t);
    }
}
