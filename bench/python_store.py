#!/usr/bin/env python3
"""The Python equivalent of Engram's durable save, for the store benchmark.

Same reference state as crates/engram-core/benches/store.rs: a dict Q-table of
50,000 entries, an ES population of 200 x 256 float32 (numpy), 1,000 replay
transitions (numpy arrays) and metrics; pickled and written to SQLite (WAL,
synchronous=FULL, one commit per save), then read back and unpickled.
Prints one JSON object with medians in milliseconds.
"""
import argparse
import json
import os
import pickle
import sqlite3
import statistics
import time

import numpy as np


def reference_state(rng, generation):
    q = {(s, a): float(v) for (s, a), v in zip(((s, a) for s in range(12_500) for a in range(4)), rng.uniform(-1, 1, 50_000))}
    return {
        "q_table": q,
        "population": rng.uniform(-1, 1, (200, 256)).astype(np.float32),
        "replay": {
            "state": rng.uniform(-1, 1, (1000, 8)).astype(np.float32),
            "action": (np.arange(1000) % 4).astype(np.uint32),
            "reward": rng.uniform(-1, 1, 1000),
            "next_state": rng.uniform(-1, 1, (1000, 8)).astype(np.float32),
            "done": (np.arange(1000) % 50 == 0),
        },
        "metrics": {f"metric_{i}": float(x) for i, x in enumerate(rng.uniform(-1, 1, 20))},
        "generation": generation,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--dir", default=".")
    args = ap.parse_args()
    path = os.path.join(args.dir, "python.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS live (engine TEXT PRIMARY KEY, data BLOB)")
    rng = np.random.default_rng(1)
    base = reference_state(rng, 0)
    save, restore, size = [], [], 0
    for i in range(args.iters):
        base["generation"] = i
        t = time.perf_counter()
        blob = pickle.dumps(base, protocol=pickle.HIGHEST_PROTOCOL)
        db.execute("BEGIN")
        db.execute("INSERT OR REPLACE INTO live VALUES (?, ?)", ("mdp_es", blob))
        db.execute("COMMIT")
        save.append(time.perf_counter() - t)
        size = len(blob)
        t = time.perf_counter()
        (data,) = db.execute("SELECT data FROM live WHERE engine = ?", ("mdp_es",)).fetchone()
        back = pickle.loads(data)
        restore.append(time.perf_counter() - t)
        assert back["generation"] == i
    print(json.dumps({
        "save_median_ms": statistics.median(save) * 1e3,
        "restore_median_ms": statistics.median(restore) * 1e3,
        "bytes": size,
    }))


if __name__ == "__main__":
    main()
