//! State blobs: how an encoded state is stored (raw, or zstd when that is
//! smaller), and how a stored one is opened — decompressed with its output
//! bounded, checksummed and validated before anything trusts it. Also the
//! metrics JSON kept beside each state. Used by the store and by snapshots.

use crate::codec::{Checksum, EncodedState};
use crate::error::{Error, Result};
use crate::limits::MAX_STATE_BYTES;
use crate::wire::Metrics;
use std::collections::BTreeMap;

/// zstd level for backup blobs. Level 1: engine states are mostly floats,
/// which higher levels barely shrink further. Live states are not compressed
/// at all: saving them is the hot path, and compression was most of its cost.
const ZSTD_LEVEL: i32 = 1;
/// `blobs.codec`: stored as is.
pub(crate) const CODEC_RAW: i64 = 0;
/// `blobs.codec`: zstd.
pub(crate) const CODEC_ZSTD: i64 = 1;

/// Reads a BLOB column; a damaged row holding TEXT there is read as its bytes
/// (its checksum then fails) instead of failing with a type error.
pub(crate) fn blob_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    match r.get_ref(i)? {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Ok(b.to_vec()),
        _ => Ok(Vec::new()),
    }
}

/// Chooses how to store a blob: zstd when it makes it smaller, else as is.
pub(crate) fn pack(bytes: &[u8]) -> Result<(i64, Vec<u8>)> {
    let c = compress(bytes)?;
    Ok(if c.len() < bytes.len() {
        (CODEC_ZSTD, c)
    } else {
        (CODEC_RAW, bytes.to_vec())
    })
}

pub(crate) fn compress(bytes: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(bytes, ZSTD_LEVEL).map_err(|e| Error::Encode(format!("zstd: {e}")))
}

/// Checks and opens a `live_states` row (stored uncompressed).
pub(crate) fn open_live(
    engine: &str,
    sum: &[u8],
    raw_len: i64,
    data: &[u8],
) -> Result<EncodedState> {
    open_blob(
        &format!("live state of {engine}"),
        sum,
        raw_len,
        CODEC_RAW,
        data,
    )
}

/// Decompresses, checks the checksum and validates a stored state.
pub(crate) fn open_blob(
    what: &str,
    sum: &[u8],
    raw_len: i64,
    codec: i64,
    data: &[u8],
) -> Result<EncodedState> {
    let expected = Checksum::from_slice(sum)
        .map_err(|_| Error::corrupt(what, "stored checksum is malformed"))?;
    if raw_len < 0 || raw_len as u64 > MAX_STATE_BYTES {
        return Err(Error::corrupt(
            what,
            format!("implausible length {raw_len}"),
        ));
    }
    let bytes = match codec {
        CODEC_RAW => data.to_vec(),
        CODEC_ZSTD => {
            decompress_exact(data, raw_len as u64).map_err(|e| Error::corrupt(what, e))?
        }
        other => {
            return Err(Error::corrupt(
                what,
                format!("unknown storage codec {other}"),
            ));
        }
    };
    if bytes.len() as i64 != raw_len {
        return Err(Error::corrupt(
            what,
            format!("length {} != recorded {raw_len}", bytes.len()),
        ));
    }
    let actual = Checksum::of(&bytes);
    if actual != expected {
        return Err(Error::corrupt(
            what,
            format!("checksum mismatch: stored {expected}, computed {actual}"),
        ));
    }
    EncodedState::from_bytes(bytes).map_err(|e| Error::corrupt(what, e))
}

/// Decompresses `data`, which must expand to exactly `len` bytes; it never
/// writes more than `len` + 1 bytes, whatever the data holds.
pub(crate) fn decompress_exact(data: &[u8], len: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read as _;
    // `len` is bounded by the caller (the state limit, the snapshot's total
    // and ratio checks): reserving it exactly avoids the doubling of a
    // growing buffer, which would hold up to twice the state.
    let mut out = Vec::with_capacity(len.min(MAX_STATE_BYTES) as usize);
    let decoder =
        zstd::stream::read::Decoder::new(data).map_err(|e| format!("cannot decompress: {e}"))?;
    decoder
        .take(len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if out.len() as u64 != len {
        return Err(format!(
            "decompressed to {} bytes, expected {len}",
            out.len()
        ));
    }
    Ok(out)
}

pub(crate) fn metrics_json(m: &Metrics) -> Result<String> {
    // Non-finite values become null in JSON; they are display data only.
    serde_json::to_string(m).map_err(|e| Error::Encode(e.to_string()))
}

pub(crate) fn parse_metrics(s: &str) -> Metrics {
    let raw: BTreeMap<String, Option<f64>> = serde_json::from_str(s).unwrap_or_default();
    raw.into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect()
}
