"""examples/python/frozenlake_q.py under SIGKILL: killed at 10 random
moments and started again each time, it ends with a Q-table and generator
bit-identical to a run that was never interrupted (real processes, a real
`engram serve`)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import engram
from engram.pack import unpack

from test_client import ROOT, Server, server  # noqa: F401  (the fixture)

EXAMPLE = ROOT / "examples/python/frozenlake_q.py"


def run_example(data_dir: Path, name: str, episodes: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients/python/src")}
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--name", name, "--episodes", str(episodes), "--save-every", "50", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_killed_ten_times_the_example_ends_bit_identical_to_an_uninterrupted_run(server: Server) -> None:  # noqa: F811
    episodes = 20_000
    ref = run_example(server.data_dir, "uninterrupted", episodes)
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    want = out.strip()
    rnd = random.Random(2026)
    kills = 0
    for _ in range(10):
        p = run_example(server.data_dir, "killed", episodes)
        time.sleep(rnd.uniform(0.7, 3.0))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(timeout=60)
    last = run_example(server.data_dir, "killed", episodes)
    out, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    assert kills >= 5, f"only {kills} kills landed mid-run"
    assert out.strip() == want, "the final Q-table, generator and episode differ"
    # And Engram holds the same final state for both.
    a = unpack(engram.attach("uninterrupted", data_dir=server.data_dir).resume() or b"")
    b = unpack(engram.attach("killed", data_dir=server.data_dir).resume() or b"")
    assert a["q"].tobytes() == b["q"].tobytes() and a["rng"] == b["rng"] and a["episode"] == b["episode"] == episodes
