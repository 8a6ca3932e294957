"""A PyTorch training state in one `engram.pack` buffer, never unpickled.

`capture` takes what an exact resume needs — modules, optimizers, learning
rate schedulers, an AMP `GradScaler`, torch's, numpy's and Python's global
generators (CUDA's when present), your own `torch.Generator`s (a
`DataLoader`'s), and your own counters — and returns bytes to give
`Run.save`. `restore` puts all of it back into the objects you built the
same way, and returns your counters::

    import engram, engram.torch

    run = engram.attach("mlp", format=engram.torch.FORMAT)
    model, opt, sched = build()                      # built the same way each start
    state = run.resume()
    step = 0 if state is None else engram.torch.restore(
        state, modules={"model": model}, optimizers={"opt": opt}, schedulers={"sched": sched})["step"]
    ...
    run.save(engram.torch.capture(modules={"model": model}, optimizers={"opt": opt},
                                  schedulers={"sched": sched}, extra={"step": step}), step=step)

Tensors are stored as arrays (their exact bytes; bfloat16 and other dtypes
numpy lacks as raw integers of their width), everything else as plain data
(numbers, strings, lists, dicts with string or integer keys). Nothing in a
state is code: `restore` never unpickles, so a state from a replica or
another host cannot run anything when it is loaded. Something that is not
plain data (a lambda in a scheduler's state) is refused at `capture`, named
by its path.

`restore` checks the whole state against the objects before it changes any
of them: a missing or extra entry, a shape that differs, an optimizer with
other parameter groups is a `StateMismatch` naming them, and nothing was
loaded. Generators are put back last, so the streams continue where the
captured run was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .pack import pack_parts, python_random_state, set_python_random_state, unpack

__all__ = ["FORMAT", "StateMismatch", "capture", "restore", "save"]

#: The state format to declare at `engram.attach(..., format=FORMAT)`.
FORMAT = "engram.torch/1"

_VERSION = 1
_TREE = "engram.torch"

# torch dtypes numpy has no type for: stored as integers of their width.
_RAW = {"bfloat16": "int16", "float8_e4m3fn": "uint8", "float8_e5m2": "uint8"}


class StateMismatch(ValueError):
    """The state does not fit the objects given to `restore` (names what
    differs); nothing was loaded."""


def save(
    run: Any,
    *,
    step: int | None = None,
    metrics: Mapping[str, float] | None = None,
    modules: Mapping[str, Any] | None = None,
    optimizers: Mapping[str, Any] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    scaler: Any | None = None,
    generators: Mapping[str, Any] | None = None,
    global_generators: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """`run.save(capture(...), step=step, metrics=metrics)`, without the
    copy: the tensors' own memory is written into Engram's slot piece by
    piece. Returns what `Run.save` returns. Do not change the tensors until
    it returns (it is synchronous)."""
    parts = _capture(modules, optimizers, schedulers, scaler, generators, global_generators, extra)
    return run.save(parts, step=step, metrics=metrics)


def capture(
    *,
    modules: Mapping[str, Any] | None = None,
    optimizers: Mapping[str, Any] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    scaler: Any | None = None,
    generators: Mapping[str, Any] | None = None,
    global_generators: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Packs a training state (see the module's documentation). `generators`:
    your own `torch.Generator`s by name; `global_generators`: torch's (and
    CUDA's), numpy's and Python's global ones; `extra`: your counters and
    anything else that is plain data or tensors."""
    return b"".join(_capture(modules, optimizers, schedulers, scaler, generators, global_generators, extra))


def _capture(
    modules: Mapping[str, Any] | None,
    optimizers: Mapping[str, Any] | None,
    schedulers: Mapping[str, Any] | None,
    scaler: Any | None,
    generators: Mapping[str, Any] | None,
    global_generators: bool,
    extra: Mapping[str, Any] | None,
) -> list[memoryview]:
    import torch

    arrays: dict[str, Any] = {}
    tree: dict[str, Any] = {"version": _VERSION}
    for part, objs in (("modules", modules), ("optimizers", optimizers), ("schedulers", schedulers)):
        tree[part] = {name: _encode(obj.state_dict(), f"{part}/{name}", arrays) for name, obj in (objs or {}).items()}
    tree["scaler"] = None if scaler is None else _encode(scaler.state_dict(), "scaler", arrays)
    tree["generators"] = {name: _encode(g.get_state(), f"generators/{name}", arrays) for name, g in (generators or {}).items()}
    tree["global"] = _capture_global(arrays) if global_generators else None
    tree["extra"] = _encode(dict(extra or {}), "extra", arrays)
    return pack_parts({_TREE: tree, **arrays})


def restore(
    state: bytes,
    *,
    modules: Mapping[str, Any] | None = None,
    optimizers: Mapping[str, Any] | None = None,
    schedulers: Mapping[str, Any] | None = None,
    scaler: Any | None = None,
    generators: Mapping[str, Any] | None = None,
    global_generators: bool = True,
) -> dict[str, Any]:
    """Puts a state `capture` made back into these objects (built as they
    were when it was captured) and returns its `extra`. A state that does
    not fit them is a `StateMismatch` and changes nothing; bytes that are
    not such a state are a `ValueError`."""
    import torch

    items = unpack(state)
    tree = items.get(_TREE)
    if not isinstance(tree, dict) or tree.get("version") != _VERSION:
        raise ValueError("not an engram.torch state (an engram.pack buffer without its training state)")

    def decode(x: Any) -> Any:
        return _decode(x, items, torch)

    wanted = {"modules": modules or {}, "optimizers": optimizers or {}, "schedulers": schedulers or {}}
    decoded: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for part, objs in wanted.items():
        stored = tree.get(part) or {}
        problems += [f"{part}: {n!r} is in the state but was not given" for n in sorted(set(stored) - set(objs))]
        problems += [f"{part}: {n!r} was given but is not in the state" for n in sorted(set(objs) - set(stored))]
        decoded[part] = {n: decode(stored[n]) for n in objs if n in stored}
    for name, model in wanted["modules"].items():
        if name in decoded["modules"]:
            problems += _module_mismatch(name, model.state_dict(), decoded["modules"][name])
    for name, opt in wanted["optimizers"].items():
        if name in decoded["optimizers"]:
            problems += _optimizer_mismatch(name, opt, decoded["optimizers"][name])
    if (scaler is None) != (tree.get("scaler") is None):
        problems.append("scaler: given but not in the state" if scaler is not None else "scaler: in the state but not given")
    stored_gens = tree.get("generators") or {}
    given_gens = generators or {}
    problems += [f"generators: {n!r} is in the state but was not given" for n in sorted(set(stored_gens) - set(given_gens))]
    problems += [f"generators: {n!r} was given but is not in the state" for n in sorted(set(given_gens) - set(stored_gens))]
    if global_generators and tree.get("global") is None:
        problems.append("global generators: not in the state (captured with global_generators=False)")
    if problems:
        shown = problems[:20] + ([f"… and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise StateMismatch("the state does not fit what was given; nothing was loaded:\n  " + "\n  ".join(shown))

    for name, model in wanted["modules"].items():
        model.load_state_dict(decoded["modules"][name], strict=True)
    for name, opt in wanted["optimizers"].items():
        opt.load_state_dict(decoded["optimizers"][name])
    for name, sched in wanted["schedulers"].items():
        sched.load_state_dict(decoded["schedulers"][name])
    if scaler is not None:
        scaler.load_state_dict(decode(tree["scaler"]))
    # Generators last: nothing above may draw from them after this.
    for name, g in given_gens.items():
        g.set_state(decode(stored_gens[name]))
    if global_generators:
        _restore_global(tree["global"], items)
    extra = decode(tree.get("extra") or {"$d": []})
    return dict(extra)


def _capture_global(arrays: dict[str, Any]) -> dict[str, Any]:
    """torch's (and CUDA's), numpy's legacy and Python's global generators,
    their arrays put in `arrays` (also used by `engram.lightning`)."""
    import numpy as np
    import torch

    legacy: Any = np.random.get_state()  # the legacy global generator: a tuple
    return {
        "torch": _encode(torch.get_rng_state(), "global/torch", arrays),
        "cuda": [_encode(s, f"global/cuda/{i}", arrays) for i, s in enumerate(torch.cuda.get_rng_state_all())] if torch.cuda.is_available() else [],
        "numpy": [legacy[0], _encode(legacy[1], "global/numpy", arrays), int(legacy[2]), int(legacy[3]), float(legacy[4])],
        "python": python_random_state(),
    }


def _restore_global(g: Mapping[str, Any], items: Mapping[str, Any]) -> None:
    """Puts back what `_capture_global` took (`items`: the unpacked state)."""
    import numpy as np
    import torch

    torch.set_rng_state(_decode(g["torch"], items, torch))
    if g.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_decode(s, items, torch) for s in g["cuda"]])
    kind, keys, pos, has_gauss, cached = g["numpy"]
    np.random.set_state((kind, _decode(keys, items, torch), pos, has_gauss, cached))
    set_python_random_state(g["python"])


def _module_mismatch(name: str, have: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    out = [f"modules: {name}: {k!r} is missing from the state" for k in sorted(set(have) - set(stored))]
    out += [f"modules: {name}: {k!r} is in the state but not in the module" for k in sorted(set(stored) - set(have))]
    for k in sorted(set(have) & set(stored)):
        a, b = have[k], stored[k]
        if hasattr(a, "shape") and hasattr(b, "shape") and tuple(a.shape) != tuple(b.shape):
            out.append(f"modules: {name}: {k!r} has shape {tuple(b.shape)} in the state, {tuple(a.shape)} in the module")
    return out


def _optimizer_mismatch(name: str, opt: Any, stored: Mapping[str, Any]) -> list[str]:
    groups = opt.param_groups
    stored_groups = stored.get("param_groups", [])
    if len(groups) != len(stored_groups):
        return [f"optimizers: {name}: {len(stored_groups)} parameter groups in the state, {len(groups)} in the optimizer"]
    out: list[str] = []
    sizes: dict[int, tuple[int, ...]] = {}
    for i, (g, s) in enumerate(zip(groups, stored_groups)):
        if len(g["params"]) != len(s["params"]):
            out.append(f"optimizers: {name}: group {i} has {len(s['params'])} parameters in the state, {len(g['params'])} in the optimizer")
            continue
        for p, pid in zip(g["params"], s["params"]):
            sizes[pid] = tuple(p.shape)
    for pid, st in (stored.get("state") or {}).items():
        for k, v in st.items():
            if pid in sizes and hasattr(v, "shape") and v.dim() > 0 and tuple(v.shape) != sizes[pid]:
                out.append(f"optimizers: {name}: state {k!r} of parameter {pid} has shape {tuple(v.shape)}, the parameter {sizes[pid]}")
    return out


def _encode(x: Any, path: str, arrays: dict[str, Any]) -> Any:
    """Plain JSON with tensors and arrays replaced by references to `arrays`."""
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        raw = _RAW.get(dtype)
        arrays[path] = (t.view(getattr(torch, raw)) if raw else t).numpy()
        return {"$t": path, "dtype": dtype}
    if isinstance(x, np.ndarray):
        if x.dtype.hasobject:
            raise TypeError(f"{path}: object arrays cannot be kept safely")
        arrays[path] = x
        return {"$a": path}
    if isinstance(x, bool) or x is None or isinstance(x, (int, float, str)):
        return x
    if isinstance(x, np.generic):
        return _encode(x.item(), path, arrays)
    if isinstance(x, Mapping):
        items = []
        for k, v in x.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"{path}: a key of type {type(k).__name__} cannot be kept as plain data")
            items.append([k, _encode(v, f"{path}/{k}", arrays)])
        return {"$d": items}
    if isinstance(x, tuple):
        return {"$tuple": [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(x)]}
    if isinstance(x, list):
        return [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(x)]
    raise TypeError(f"{path}: a {type(x).__module__}.{type(x).__qualname__} is not plain data or a tensor; it cannot be kept without pickle")


def _decode(x: Any, items: Mapping[str, Any], torch: Any) -> Any:
    if isinstance(x, list):
        return [_decode(v, items, torch) for v in x]
    if not isinstance(x, dict):
        return x
    if "$t" in x:
        a = items.get(x["$t"])
        if a is None:
            raise ValueError(f"engram.torch state damaged: array {x['$t']!r} is missing")
        dtype = str(x["dtype"])
        if not hasattr(torch, dtype):
            raise ValueError(f"engram.torch state: unknown tensor type {dtype!r}")
        t = torch.from_numpy(a)  # unpack's arrays are fresh copies: no other holder
        return t.view(getattr(torch, dtype)) if dtype in _RAW else t.to(getattr(torch, dtype))
    if "$a" in x:
        a = items.get(x["$a"])
        if a is None:
            raise ValueError(f"engram.torch state damaged: array {x['$a']!r} is missing")
        return a
    if "$tuple" in x:
        return tuple(_decode(v, items, torch) for v in x["$tuple"])
    if "$d" in x:
        return {k: _decode(v, items, torch) for k, v in x["$d"]}
    raise ValueError("engram.torch state damaged: an entry of unknown kind")

