"""Learner saves through the Python client beside plain files, side by side
in one run (BENCHMARKS.md, "Learner saves"):

- `run.save(state)` — durable when it returns (up to 128 KiB: one SQLite
  commit that holds the bytes; larger: written by the client into a slot
  Engram lent, its writeback started every 16 MiB, hashed and fdatasynced
  by Engram, then the commit), on one kept-alive connection;
- the same saves sent instead (the client's private switch: streamed to
  Engram, which writes them into a slot, fdatasync, commit);
- the same bytes written to a file with fsync (the floor);
- `pickle.dump` of the same bytes + fsync, and `numpy.savez` + fsync —
  the five taking turns, one of each per round;
- 1 MB saves lent against sent, in blocks (the client's private switch);
- the cost of one `run.log(...)` call in a loop.

    python3 bench/learner_save.py [ENGRAM_BIN]   (default target/release/engram)

Medians (and the 90th percentile of `run.save`) of 41 runs at 64 KiB and
1 MB, 8 at 64 MB, 6 at 256 MB; and the median of the saves after the first
three of each size (no slot file grows any more).
"""

from __future__ import annotations

import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients/python/src"))
import engram  # noqa: E402
from serving import start_serve, stop_serve  # noqa: E402


def fsynced(path: Path, write: object) -> None:
    with open(path, "wb") as f:
        write(f)  # type: ignore[operator]
        f.flush()
        os.fsync(f.fileno())


def main() -> None:
    binary = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/release/engram"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server = start_serve(binary, data)
        try:
            run = engram.attach("bench", data_dir=data)
            rows = []
            for label, size, n in (("64 KiB", 64 << 10, 41), ("1 MB", 1 << 20, 41), ("64 MB", 64 << 20, 8), ("256 MB", 256 << 20, 6)):
                state = os.urandom(size)
                out = Path(tmp) / "out.bin"
                # A new state each time (an unchanged one costs only its
                # hash), made before the clock starts: building a 256 MB
                # bytes object is not the save's cost.
                states = [state[:-8] + i.to_bytes(8, "little") for i in range(2 * n)]
                # The four ways take turns, one of each per round, so that
                # whatever the disk does over the run falls on all of them
                # alike (side by side, not one after another); the order
                # turns each round, so none always follows the same one.
                ways: dict[str, list[float]] = {"engram": [], "sent": [], "file": [], "pickle": [], "savez": []}

                def sent(b: bytes, step: int) -> None:
                    run._lend = False
                    try:
                        run.save(b, step=step)
                    finally:
                        run._lend = True

                for i in range(n):
                    b, other = states[2 * i], states[2 * i + 1]
                    order: list[tuple[str, Callable[[], object]]] = [
                        ("engram", lambda: run.save(b, step=2 * i)),
                        ("sent", lambda: sent(other, 2 * i + 1)),
                        ("file", lambda: fsynced(out, lambda f: f.write(b))),
                        ("pickle", lambda: fsynced(out, lambda f: pickle.dump(b, f, protocol=5))),
                        ("savez", lambda: fsynced(out, lambda f: np.savez(f, state=np.frombuffer(b, dtype=np.uint8)))),
                    ]
                    for way, save in order[i % 5 :] + order[: i % 5]:
                        t = time.perf_counter()
                        save()
                        ways[way].append(time.perf_counter() - t)
                in_order = ways["engram"]
                engram_samples = sorted(in_order)
                t_engram = statistics.median(engram_samples)
                p90 = engram_samples[min(n - 1, (9 * n) // 10)]
                # After the first three saves of a size, each slot the saves
                # rotate through holds a state that large: no file grows
                # (growing one is slow on a machine whose memory is new to
                # it, see BENCHMARKS.md).
                t_steady = statistics.median(in_order[3:])
                t_sent, t_file, t_pickle, t_savez = (statistics.median(ways[w]) for w in ("sent", "file", "pickle", "savez"))
                rows.append((label, t_engram, p90, t_steady, t_sent, t_file, t_pickle, t_savez))
                print(f"{label}: engram {t_engram * 1000:.1f} ms, file+fsync {t_file * 1000:.1f} ms", file=sys.stderr)
            # 1 MB saves written into a lent slot against the same saves
            # sent (the client's private switch), and the floor: in blocks
            # of 51, four rounds, as a training loop saves.
            ab: dict[str, list[float]] = {"lent": [], "sent": [], "file": []}
            base = os.urandom(1 << 20)
            n_ab = 0
            for _ in range(4):
                for way in ab:
                    for _ in range(51):
                        n_ab += 1
                        st = base[:-8] + n_ab.to_bytes(8, "little")
                        t = time.perf_counter()
                        if way == "file":
                            fsynced(out, lambda f: f.write(st))
                        else:
                            run._lend = way == "lent"
                            run.save(st, step=1_000_000 + n_ab)
                        ab[way].append(time.perf_counter() - t)
            run._lend = True
            calls = 200_000
            t = time.perf_counter()
            for i in range(calls):
                run.log({"loss": 1.0 / (i + 1), "reward": float(i)}, step=i)
            per_log = (time.perf_counter() - t) / calls
            run.flush()
        finally:
            stop_serve(server)
    print("| state | `run.save` (durable) | its p90 | file + fsync | ratio | after the first 3 saves | its ratio | sent instead | its ratio | `pickle.dump` + fsync | `numpy.savez` + fsync |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, e, e90, steady, sn, f, p, z in rows:
        print(f"| {label} | {e * 1000:.1f} ms | {e90 * 1000:.1f} ms | {f * 1000:.1f} ms | {e / f:.2f}× | {steady * 1000:.1f} ms | {steady / f:.2f}× | {sn * 1000:.1f} ms | {sn / f:.2f}× | {p * 1000:.1f} ms | {z * 1000:.1f} ms |")
    floor = statistics.median(ab["file"])
    print("\n1 MB in blocks: " + ", ".join(f"{way} {statistics.median(v) * 1000:.2f} ms ({statistics.median(v) / floor:.2f}×)" for way, v in ab.items()))
    print(f"\n`run.log` with two metrics: {per_log * 1e6:.2f} µs per call (median of one loop of {calls:,} calls)")


if __name__ == "__main__":
    main()
