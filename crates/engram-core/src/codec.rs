//! The encoding of engine states: bit-exact, self-describing, versioned.
//!
//! An encoded state is a 10-byte header — magic `EGST`, the codec format
//! version (u16 LE) and the engine's own schema version (u32 LE) — followed by
//! a MessagePack body with structs written as maps (field names included).
//! MessagePack stores `f32`/`f64` as their raw IEEE-754 bits, so every float,
//! including `-0.0`, subnormals and NaN payloads, round-trips exactly, and any
//! MessagePack tool can read the body without our types.
//!
//! This module does no IO. Everything read from disk passes [`validate`]
//! before it is trusted; it never panics and never allocates more than the
//! input's own size.

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt;

/// Magic bytes at the start of every encoded state.
pub const STATE_MAGIC: [u8; 4] = *b"EGST";
/// The codec format version this build writes (and the newest it reads).
pub const STATE_FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 10;
/// Nesting deeper than this is refused (protects the readers' stacks).
const MAX_DEPTH: usize = 256;

/// A blake3 digest of an encoded state: its checksum and its content address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Checksum(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        blake3::Hash::from_hex(s)
            .map(|h| Checksum(*h.as_bytes()))
            .map_err(|_| Error::InvalidInput(format!("not a blake3 checksum: {s:?}")))
    }

    /// From a stored 32-byte column.
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        <[u8; 32]>::try_from(b).map(Checksum).map_err(|_| {
            Error::corrupt("checksum", format!("expected 32 bytes, found {}", b.len()))
        })
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An encoded engine state: header plus MessagePack body. Cheap to clone
/// only by choice; treat it as the unit the store writes and reads.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedState(Vec<u8>);

impl fmt::Debug for EncodedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncodedState({} bytes, {:?})",
            self.0.len(),
            self.checksum()
        )
    }
}

/// What the header of an encoded state says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateHeader {
    /// Codec format version.
    pub format: u16,
    /// The engine's own schema version of the encoded value.
    pub schema: u32,
}

impl EncodedState {
    /// Wraps bytes after checking that they are a well-formed state.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        validate(&bytes)?;
        Ok(EncodedState(bytes))
    }

    /// The encoded bytes (header included).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Consumes the state, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a valid state (the header alone is 10 bytes).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The blake3 checksum of the bytes.
    pub fn checksum(&self) -> Checksum {
        Checksum::of(&self.0)
    }

    /// The header (always valid: checked on construction).
    pub fn header(&self) -> StateHeader {
        StateHeader {
            format: u16::from_le_bytes([self.0[4], self.0[5]]),
            schema: u32::from_le_bytes([self.0[6], self.0[7], self.0[8], self.0[9]]),
        }
    }

    /// Decodes into a typed value.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        rmp_serde::from_slice(&self.0[HEADER_LEN..]).map_err(|e| Error::corrupt("state body", e))
    }

    /// A JSON rendering for people and generic tools. Informational only:
    /// floats that JSON cannot hold (NaN, ±inf) become strings, binary
    /// becomes base64; the exact value is the encoded bytes.
    pub fn to_readable_json(&self) -> Result<serde_json::Value> {
        let mut body = &self.0[HEADER_LEN..];
        let v = rmpv::decode::read_value_with_max_depth(&mut body, MAX_DEPTH)
            .map_err(|e| Error::corrupt("state body", e))?;
        Ok(msgpack_to_json(v))
    }
}

/// Encodes `value` with the engine's schema version.
///
/// ```
/// let state = engram_core::codec::encode(1, &vec![-0.0f64, f64::NAN])?;
/// let back: Vec<f64> = state.decode()?;
/// assert_eq!(back[0].to_bits(), (-0.0f64).to_bits());
/// assert!(back[1].is_nan());
/// # Ok::<(), engram_core::Error>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(schema: u32, value: &T) -> Result<EncodedState> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&STATE_MAGIC);
    out.extend_from_slice(&STATE_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&schema.to_le_bytes());
    let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
    value
        .serialize(&mut ser)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(EncodedState(out))
}

/// Checks the header and that the body is exactly one well-formed MessagePack
/// value with sane nesting. Never panics, allocates nothing.
pub fn validate(bytes: &[u8]) -> Result<StateHeader> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::corrupt(
            "state",
            format!("{} bytes is shorter than the header", bytes.len()),
        ));
    }
    if bytes[..4] != STATE_MAGIC {
        return Err(Error::corrupt("state", "bad magic (not an Engram state)"));
    }
    let format = u16::from_le_bytes([bytes[4], bytes[5]]);
    if format == 0 || format > STATE_FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            what: "state",
            found: format.into(),
            supported: STATE_FORMAT_VERSION.into(),
        });
    }
    let schema = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[HEADER_LEN..];
    let end = skip_msgpack_value(body).map_err(|d| Error::corrupt("state body", d))?;
    if end != body.len() {
        return Err(Error::corrupt(
            "state body",
            format!("{} trailing bytes after the value", body.len() - end),
        ));
    }
    Ok(StateHeader { format, schema })
}

/// Walks one MessagePack value iteratively; returns the offset just past it.
fn skip_msgpack_value(b: &[u8]) -> std::result::Result<usize, String> {
    // `pending` counts values still to read at each open container level.
    let mut pending: Vec<u64> = vec![1];
    let mut pos = 0usize;
    let need = |pos: usize, n: u64| -> std::result::Result<usize, String> {
        let end = (pos as u64).checked_add(n).ok_or("length overflow")?;
        if end > b.len() as u64 {
            Err(format!("truncated at byte {pos}: needs {n} more"))
        } else {
            Ok(end as usize)
        }
    };
    let be = |s: &[u8]| s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let m = *b
            .get(pos)
            .ok_or_else(|| format!("truncated at byte {pos}"))?;
        pos += 1;
        // (bytes of length field, payload multiplier, container children per item)
        let mut children: u64 = 0;
        match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {}
            0x80..=0x8f => children = u64::from(m & 0x0f) * 2,
            0x90..=0x9f => children = u64::from(m & 0x0f),
            0xa0..=0xbf => pos = need(pos, u64::from(m & 0x1f))?,
            0xc1 => return Err(format!("reserved marker 0xc1 at byte {}", pos - 1)),
            0xc4..=0xc6 | 0xd9..=0xdb => {
                let w = match m {
                    0xc4 | 0xd9 => 1,
                    0xc5 | 0xda => 2,
                    _ => 4,
                };
                let e = need(pos, w)?;
                let len = be(&b[pos..e]);
                pos = need(e, len)?;
            }
            0xc7..=0xc9 => {
                let w = 1u64 << (m - 0xc7);
                let e = need(pos, w)?;
                let len = be(&b[pos..e]);
                pos = need(e, len + 1)?;
            }
            0xca => pos = need(pos, 4)?,
            0xcb => pos = need(pos, 8)?,
            0xcc..=0xcf => pos = need(pos, 1 << (m - 0xcc))?,
            0xd0..=0xd3 => pos = need(pos, 1 << (m - 0xd0))?,
            0xd4..=0xd8 => pos = need(pos, 1 + (1 << (m - 0xd4)))?,
            0xdc..=0xdf => {
                let w = if m == 0xdc || m == 0xde { 2 } else { 4 };
                let e = need(pos, w)?;
                let n = be(&b[pos..e]);
                pos = e;
                children = if m >= 0xde {
                    n.checked_mul(2).ok_or("length overflow")?
                } else {
                    n
                };
            }
        }
        if children > 0 {
            // Every child takes at least one byte: refuse counts the input cannot hold.
            if children > (b.len() - pos) as u64 {
                return Err(format!(
                    "container at byte {} claims {children} items, input too short",
                    pos
                ));
            }
            if pending.len() >= MAX_DEPTH {
                return Err(format!("nesting deeper than {MAX_DEPTH}"));
            }
            pending.push(children);
        }
    }
    Ok(pos)
}

fn msgpack_to_json(v: rmpv::Value) -> serde_json::Value {
    use base64::Engine as _;
    use rmpv::Value as M;
    use serde_json::Value as J;
    let float = |f: f64| {
        serde_json::Number::from_f64(f)
            .map(J::Number)
            .unwrap_or_else(|| {
                J::String(if f.is_nan() {
                    "NaN".into()
                } else if f > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                })
            })
    };
    match v {
        M::Nil => J::Null,
        M::Boolean(b) => J::Bool(b),
        M::Integer(i) => i
            .as_u64()
            .map(J::from)
            .or_else(|| i.as_i64().map(J::from))
            .unwrap_or(J::Null),
        M::F32(f) => float(f64::from(f)),
        M::F64(f) => float(f),
        M::String(s) => J::String(s.into_str().unwrap_or_default()),
        M::Binary(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        M::Array(a) => J::Array(a.into_iter().map(msgpack_to_json).collect()),
        M::Map(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        M::String(s) => s.into_str().unwrap_or_default(),
                        other => other.to_string(),
                    };
                    (key, msgpack_to_json(v))
                })
                .collect(),
        ),
        M::Ext(t, data) => serde_json::json!({
            "ext_type": t,
            "data": base64::engine::general_purpose::STANDARD.encode(data)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Sample {
        name: String,
        q: Vec<f64>,
        pop: Vec<f32>,
        counter: u64,
        nested: Vec<(u32, Option<f64>)>,
    }

    fn awkward_f64() -> Vec<f64> {
        vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 2.0, // subnormal
            f64::from_bits(1),       // smallest subnormal
            -f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::from_bits(0x7ff8_0000_dead_beef), // NaN with payload
            f64::from_bits(0xfff0_0000_0000_0001), // negative signalling NaN
            0.1 + 0.2,
            1.0 / 3.0,
            std::f64::consts::PI,
        ]
    }

    fn awkward_f32() -> Vec<f32> {
        vec![
            -0.0,
            f32::from_bits(1),
            f32::MAX,
            f32::MIN,
            f32::NAN,
            f32::from_bits(0x7fc0_1234),
            f32::INFINITY,
            0.1,
        ]
    }

    fn bits64(v: &[f64]) -> Vec<u64> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    #[test]
    fn awkward_floats_round_trip_bit_exactly() {
        let s = Sample {
            name: "zap".into(),
            q: awkward_f64(),
            pop: awkward_f32(),
            counter: u64::MAX,
            nested: vec![(0, Some(-0.0)), (u32::MAX, None), (7, Some(f64::NAN))],
        };
        let enc = encode(3, &s).expect("encode");
        assert_eq!(
            enc.header(),
            StateHeader {
                format: 1,
                schema: 3
            }
        );
        let back: Sample = EncodedState::from_bytes(enc.as_bytes().to_vec())
            .expect("valid")
            .decode()
            .expect("decode");
        assert_eq!(bits64(&back.q), bits64(&s.q));
        let b32: Vec<u32> = back.pop.iter().map(|f| f.to_bits()).collect();
        let s32: Vec<u32> = s.pop.iter().map(|f| f.to_bits()).collect();
        assert_eq!(b32, s32);
        assert_eq!(
            back.nested[0].1.map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(back.counter, u64::MAX);
        // Re-encoding gives the same bytes, so checksums are stable.
        assert_eq!(encode(3, &back).expect("encode").as_bytes(), enc.as_bytes());
    }

    #[test]
    fn validate_accepts_what_encode_writes() {
        let enc = encode(1, &vec![vec![1u8; 3]; 70_000]).expect("encode");
        assert!(validate(enc.as_bytes()).is_ok());
    }

    #[test]
    fn validate_rejects_bad_headers_and_bodies() {
        let good = encode(
            1,
            &Sample {
                name: "x".into(),
                q: vec![1.0],
                pop: vec![],
                counter: 1,
                nested: vec![],
            },
        )
        .expect("encode");
        let b = good.as_bytes();
        let check = |bytes: &[u8], code: &str| {
            let err = validate(bytes).expect_err("must be refused");
            assert_eq!(err.code(), code, "{err}");
        };
        check(&b[..5], "corrupt_state");
        check(&b[..b.len() - 1], "corrupt_state");
        let mut bad_magic = b.to_vec();
        bad_magic[0] = b'X';
        check(&bad_magic, "corrupt_state");
        let mut future = b.to_vec();
        future[4] = 9;
        check(&future, "unsupported_format");
        let mut trailing = b.to_vec();
        trailing.push(0);
        check(&trailing, "corrupt_state");
        // An array header claiming 4 billion items in a tiny input.
        let mut huge = b[..HEADER_LEN].to_vec();
        huge.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]);
        check(&huge, "corrupt_state");
        // Deep nesting is refused, not a stack overflow.
        let mut deep = b[..HEADER_LEN].to_vec();
        deep.extend(std::iter::repeat_n(0x91u8, 100_000));
        deep.push(0x01);
        check(&deep, "corrupt_state");
    }

    #[test]
    fn readable_json_names_fields_and_survives_nan() {
        let s = Sample {
            name: "mdp".into(),
            q: vec![f64::NAN, 1.5, -0.0],
            pop: vec![2.0],
            counter: 9,
            nested: vec![],
        };
        let j = encode(1, &s)
            .expect("encode")
            .to_readable_json()
            .expect("json");
        assert_eq!(j["name"], "mdp");
        assert_eq!(j["q"][0], "NaN");
        assert_eq!(j["q"][1], 1.5);
        assert_eq!(j["counter"], 9);
    }

    #[test]
    fn checksum_hex_round_trips() {
        let c = Checksum::of(b"hello");
        assert_eq!(Checksum::from_hex(&c.to_hex()).expect("hex"), c);
        assert!(Checksum::from_hex("zz").is_err());
    }

    proptest::proptest! {
        #[test]
        fn validate_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut v = STATE_MAGIC.to_vec();
            v.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
            v.extend_from_slice(&bytes);
            let _ = validate(&v);
            let _ = validate(&bytes);
        }

        #[test]
        fn any_f64_round_trips(bits in proptest::prelude::any::<u64>()) {
            let v = vec![f64::from_bits(bits)];
            let back: Vec<f64> = encode(1, &v).expect("encode").decode().expect("decode");
            proptest::prop_assert_eq!(back[0].to_bits(), bits);
        }
    }
}
