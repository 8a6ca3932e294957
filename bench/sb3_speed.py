"""Stable-Baselines3's training speed with `engram.sb3` against plain
`learn`, side by side in one run (BENCHMARKS.md, "Stable-Baselines3"):
DQN and PPO on CartPole-v1 under VecNormalize, 20,000 timesteps each, the
same settings as examples/python/sb3_callback.py; `engram.sb3.learn`
saves every 2,000 timesteps (the example's default) into a real `engram
serve`. The two take turns, 3 rounds; medians of timesteps per second.

    python3 bench/sb3_speed.py [ENGRAM_BIN]   (default target/release/engram)
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients/python/src"))
import engram  # noqa: E402
from serving import start_serve, stop_serve  # noqa: E402
import engram.sb3  # noqa: E402

STEPS, EVERY = 20_000, 2_000


def make(algo: str) -> Any:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=0))
    if algo == "dqn":
        return DQN("MlpPolicy", venv, seed=0, learning_starts=500, train_freq=4, target_update_interval=250, verbose=0)
    return PPO("MlpPolicy", venv, seed=0, n_steps=512, batch_size=64, n_epochs=4, verbose=0)


def main() -> None:
    binary = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/release/engram"
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server = start_serve(binary, data)
        try:
            print("| algorithm | plain `learn`, timesteps/s | `engram.sb3.learn`, timesteps/s | ratio | saves | state size |")
            print("|---|---:|---:|---:|---:|---:|")
            for algo in ("dqn", "ppo"):
                plain, kept = [], []
                size = 0
                for i in range(3):
                    t = time.perf_counter()
                    make(algo).learn(STEPS)
                    plain.append(STEPS / (time.perf_counter() - t))
                    run = engram.attach(f"{algo}-{i}", format=engram.sb3.FORMAT, data_dir=data)
                    t = time.perf_counter()
                    engram.sb3.learn(run, lambda: make(algo), total_timesteps=STEPS, every=EVERY)
                    kept.append(STEPS / (time.perf_counter() - t))
                    size = len(run.resume() or b"")
                    run.close()
                a, b = statistics.median(plain), statistics.median(kept)
                print(f"| {algo.upper()} | {a:,.0f} | {b:,.0f} | **{b / a:.2f}×** | {STEPS // EVERY} | {size / 1e6:.1f} MB |")
        finally:
            stop_serve(server)


if __name__ == "__main__":
    main()
