"""Drilling a learner's backed-up states: Engram runs a command with one
state's bytes on its standard input and takes the JSON object of metrics it
prints (``engram backups drill ID``, "Check this backup" in the app).

This module is that command for a Python callback::

    # train.py
    def evaluate(state: bytes) -> dict[str, float]:
        model = load(engram.unpack(state))
        return {"success": run_episodes(model)}

    run = engram.attach("frozenlake-q")
    run.set_drill("train:evaluate", timeout=120)   # once

Engram then runs ``python -m engram.drill train:evaluate`` (in the data
directory, or `cwd`) — a child process, killed at its time limit, never the
training process. The callback gets the bytes and returns numbers by name.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from typing import Any, Callable


def load(target: str) -> Callable[[bytes], Any]:
    """The callable named ``module:function`` (``module:obj.attr`` too)."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"name the callback as module:function, not {target!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj  # type: ignore[no-any-return]


def metrics_of(result: Any) -> dict[str, float]:
    """A callback's result as metrics: a mapping of names to finite numbers."""
    if not isinstance(result, dict):
        raise TypeError(f"the drill callback returned {type(result).__name__}, not a dict of metrics")
    out: dict[str, float] = {}
    for k, v in result.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"metric {k!r}: {v!r} is not a number")
        if not math.isfinite(float(v)):
            raise ValueError(f"metric {k!r} is {v}, not a finite number")
        out[k] = float(v)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m engram.drill module:function  (the state comes on standard input)", file=sys.stderr)
        return 2
    # The caller's own modules (the data directory or `cwd` is the working directory).
    sys.path.insert(0, "")
    callback = load(args[0])
    metrics = metrics_of(callback(sys.stdin.buffer.read()))
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
