"""A safe, documented container for a learner's state: named numpy arrays
and plain values (JSON: None, bools, numbers, strings, lists, dicts) — no
pickle, so unpacking a file never runs code.

Layout (all integers little-endian)::

    b"ENGRAMPK"            8 bytes, magic
    u16 version = 1
    u32 header length H
    H bytes of UTF-8 JSON: {"values": {name: value, ...},
                            "arrays": {name: {"dtype": "<f8", "shape": [..],
                                              "offset": o, "nbytes": n}, ...}}
    the arrays' bytes, C order, each at its offset from the end of the header

Arrays keep their exact bytes (every float bit, NaN payloads included);
object arrays are refused. numpy is imported only when arrays are present.
Also here: capture and restore Python's `random` and a numpy `Generator`
bit-exactly (as plain values, so they pack like any other).
"""

from __future__ import annotations

import json
import random
import struct
from typing import Any, Mapping

__all__ = ["pack", "pack_parts", "unpack", "python_random_state", "set_python_random_state", "numpy_rng_state", "set_numpy_rng_state"]

MAGIC = b"ENGRAMPK"
VERSION = 1
_HEAD = struct.Struct("<8sHI")


def pack(items: Mapping[str, Any]) -> bytes:
    """Packs numpy arrays and plain JSON values by name."""
    return b"".join(pack_parts(items))


def pack_parts(items: Mapping[str, Any]) -> list[memoryview]:
    """What :func:`pack` returns, as pieces to write one after another: the
    header, then each array's own memory (nothing copied; valid while the
    arrays are unchanged). `Run.save` takes such a list as it is."""
    values: dict[str, Any] = {}
    arrays: dict[str, dict[str, Any]] = {}
    chunks: list[memoryview] = []
    offset = 0
    for name, v in items.items():
        if type(v).__module__ == "numpy" and hasattr(v, "dtype") and hasattr(v, "shape"):
            import numpy as np

            # Not ascontiguousarray: it turns a 0-d array into shape (1,).
            a = np.asarray(v, order="C")
            if a.dtype.hasobject:
                raise TypeError(f"{name}: object arrays cannot be packed safely")
            # The array's own memory: `pack` copies it once, into its result.
            data = memoryview(a.data).cast("B") if a.nbytes > 0 else memoryview(b"")
            arrays[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes}
            chunks.append(data)
            offset += a.nbytes
        else:
            json.dumps(v)  # refuses anything that is not plain data
            values[name] = v
    header = json.dumps({"values": values, "arrays": arrays}, separators=(",", ":")).encode()
    return [memoryview(_HEAD.pack(MAGIC, VERSION, len(header))), memoryview(header), *chunks]


def unpack(data: bytes) -> dict[str, Any]:
    """The names and values :func:`pack` stored; a damaged or foreign buffer
    is a ValueError."""
    if len(data) < _HEAD.size:
        raise ValueError("not an engram.pack buffer: too short")
    magic, version, hlen = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not an engram.pack buffer")
    if version != VERSION:
        raise ValueError(f"engram.pack version {version} is newer than this client")
    start = _HEAD.size + hlen
    if start > len(data):
        raise ValueError("engram.pack header runs past the end")
    header = json.loads(data[_HEAD.size : start])
    out: dict[str, Any] = dict(header.get("values", {}))
    arrays = header.get("arrays", {})
    if arrays:
        import numpy as np

        for name, a in arrays.items():
            lo = start + int(a["offset"])
            hi = lo + int(a["nbytes"])
            if hi > len(data):
                raise ValueError(f"{name}: its bytes run past the end")
            dtype = np.dtype(a["dtype"])
            if dtype.hasobject:
                raise ValueError(f"{name}: object arrays are refused")
            # A view of the buffer, then one copy (a writable array of its own).
            out[name] = np.frombuffer(memoryview(data)[lo:hi], dtype=dtype).reshape(a["shape"]).copy()
    return out


def python_random_state(r: random.Random | None = None) -> list[Any]:
    """`random`'s state as plain values (default: the module's generator)."""
    version, internal, gauss = (r or random).getstate()
    return [version, list(internal), gauss]


def set_python_random_state(state: list[Any], r: random.Random | None = None) -> None:
    """Puts back a state from :func:`python_random_state`, bit-exactly."""
    version, internal, gauss = state
    (r or random).setstate((version, tuple(internal), gauss))


def numpy_rng_state(rng: Any) -> dict[str, Any]:
    """A numpy Generator's bit-generator state as plain values."""
    state: dict[str, Any] = json.loads(json.dumps(rng.bit_generator.state))
    return state


def set_numpy_rng_state(rng: Any, state: Mapping[str, Any]) -> None:
    """Puts back a state from :func:`numpy_rng_state`, bit-exactly."""
    rng.bit_generator.state = dict(state)
