"""engram.pack: arrays and values round-trip exactly; foreign or damaged
buffers are refused; random generators come back bit-exactly."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from engram.pack import (
    numpy_rng_state,
    pack,
    python_random_state,
    set_numpy_rng_state,
    set_python_random_state,
    unpack,
)


def test_arrays_and_values_round_trip_bit_exactly() -> None:
    weird = np.array([0.0, -0.0, np.nan, np.inf, 5e-324], dtype="<f8")
    weird[2] = np.frombuffer(b"\x01\x00\x00\x00\x00\x00\xf8\x7f", dtype="<f8")[0]  # a NaN payload
    items: dict[str, Any] = {
        "q": np.arange(64, dtype=np.float32).reshape(16, 4),
        "weird": weird,
        "counts": np.array([[1, 2], [3, 4]], dtype=">i8"),
        # 0-d and Fortran-ordered arrays keep their shape.
        "scalar": np.array(2.5, dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        "episode": 1234,
        "config": {"alpha": 0.1, "names": ["a", "b"], "none": None},
    }
    out = unpack(pack(items))
    assert out["episode"] == 1234 and out["config"] == items["config"]
    for k in ("q", "weird", "counts", "scalar", "fortran"):
        assert out[k].dtype == items[k].dtype and out[k].shape == items[k].shape, k
        assert out[k].tobytes() == items[k].tobytes(), k


def test_foreign_damaged_and_unsafe_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        unpack(b"\x80\x04pickle")
    good = pack({"a": np.zeros(10)})
    with pytest.raises(ValueError):
        unpack(good[:-8])  # the array's bytes run past the end
    with pytest.raises(TypeError):
        pack({"o": np.array([object()], dtype=object)})
    with pytest.raises(TypeError):
        pack({"f": object()})


def test_random_generators_come_back_bit_exactly() -> None:
    r = random.Random(3)
    r.random()
    saved = unpack(pack({"py": python_random_state(r)}))["py"]
    want = [r.random() for _ in range(5)]
    r2 = random.Random()
    set_python_random_state(saved, r2)
    assert [r2.random() for _ in range(5)] == want
    g = np.random.default_rng(11)
    g.random(3)
    state = unpack(pack({"g": numpy_rng_state(g)}))["g"]
    want_g = g.random(5)
    g2 = np.random.default_rng(0)
    set_numpy_rng_state(g2, state)
    assert g2.random(5).tobytes() == want_g.tobytes()


def test_the_package_offers_pack_and_unpack_at_its_top_level() -> None:
    import engram

    blob = engram.pack({"episode": 7, "name": "q"})
    assert engram.unpack(blob) == {"episode": 7, "name": "q"}
    r = random.Random(5)
    state = engram.python_random_state(r)
    first = r.random()
    engram.set_python_random_state(state, r)
    assert r.random() == first
