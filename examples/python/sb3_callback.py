"""Stable-Baselines3 keeping its whole training state in Engram.

A callback saves, every `every` steps, everything an exact resume needs —
the model (weights, optimizer, step counters), the replay buffer of an
off-policy algorithm, VecNormalize statistics, and the torch, numpy and
Python random generators — as one durable Engram state. A restart resumes
from it and continues counting where it stopped; a restore from Engram's
timeline reaches the callback, which asks the training loop to reload.

Not run in CI (PyTorch is too large for the test machines); the FrozenLake
example (`frozenlake_q.py`) is the tested one. Needs `pip install
stable-baselines3 ./clients/python`.

    python3 examples/python/sb3_callback.py --name sb3-cartpole --steps 200000

Or let Engram run (and restart) it:

    engram learners add sb3-cartpole -- python3 examples/python/sb3_callback.py

A caution: SB3's own save format pickles some objects (via torch.save and
cloudpickle), so loading a state runs code from it — Engram stores the bytes
as they are (format ``sb3.zip/1``). Only resume states you made yourself.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import threading
from typing import Any

import numpy as np
import torch  # type: ignore[import-not-found]
from stable_baselines3 import DQN  # type: ignore[import-not-found]
from stable_baselines3.common.callbacks import BaseCallback  # type: ignore[import-not-found]
from stable_baselines3.common.env_util import make_vec_env  # type: ignore[import-not-found]
from stable_baselines3.common.vec_env import VecNormalize  # type: ignore[import-not-found]

import engram
from engram.pack import pack, python_random_state, set_python_random_state, unpack


def capture(model: Any, venv: VecNormalize) -> bytes:
    """Everything an exact resume needs, as one engram.pack buffer (the
    SB3 parts as the bytes SB3 writes)."""
    model_zip = io.BytesIO()
    model.save(model_zip)
    replay = io.BytesIO()
    model.save_replay_buffer(replay)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "vecnormalize.pkl")
        venv.save(path)
        with open(path, "rb") as f:
            norm = f.read()
    return pack(
        {
            "model": np.frombuffer(model_zip.getvalue(), dtype=np.uint8),
            "replay": np.frombuffer(replay.getvalue(), dtype=np.uint8),
            "vecnormalize": np.frombuffer(norm, dtype=np.uint8),
            "torch_rng": torch.get_rng_state().numpy(),
            "numpy_rng": [list(x) if isinstance(x, np.ndarray) else x for x in _np_global_state()],
            "python_rng": python_random_state(),
            "timesteps": int(model.num_timesteps),
        }
    )


def _np_global_state() -> list[Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def restore(state: bytes, env_id: str) -> tuple[Any, VecNormalize]:
    """The model and normalised env a state holds, with every generator set."""
    s = unpack(state)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "vecnormalize.pkl")
        with open(path, "wb") as f:
            f.write(s["vecnormalize"].tobytes())
        venv = VecNormalize.load(path, make_vec_env(env_id, n_envs=1))
    model = DQN.load(io.BytesIO(s["model"].tobytes()), env=venv)
    model.load_replay_buffer(io.BytesIO(s["replay"].tobytes()))
    torch.set_rng_state(torch.from_numpy(s["torch_rng"]))
    name, keys, pos, has_gauss, gauss = s["numpy_rng"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    set_python_random_state(s["python_rng"])
    return model, venv


class EngramCheckpoint(BaseCallback):  # type: ignore[misc]
    """Saves the training state to Engram every `every` steps (durable when
    the save returns), logs SB3's scalars, and stops training when the
    learner is restored from the timeline (the loop below reloads)."""

    def __init__(self, run: engram.Run, venv: VecNormalize, restored: threading.Event, every: int = 10_000) -> None:
        super().__init__()
        self.run, self.venv, self.restored, self.every = run, venv, restored, every

    def _on_step(self) -> bool:
        t = int(self.num_timesteps)
        if t % 100 == 0:
            scalars = {k.replace("/", "_"): float(v) for k, v in self.logger.name_to_value.items()}
            if scalars:
                self.run.log(scalars, step=t)
        if t % self.every == 0:
            try:
                self.run.save(capture(self.model, self.venv), step=t)
            except engram.EngramError as e:
                if e.code != "stale_state":
                    raise
                return False  # restored meanwhile: reload from the restored state
        # False stops model.learn(); the loop resumes from the restored state.
        return not self.restored.is_set()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", default=os.environ.get("ENGRAM_LEARNER", "sb3-cartpole"))
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--every", type=int, default=10_000)
    a = p.parse_args()

    run = engram.attach(a.name, format="sb3.zip/1")
    restored = threading.Event()
    run.on_restore(lambda _state, _step: restored.set())
    while True:
        restored.clear()
        # The newest state (after a restore: the restored one, taken here).
        state = run.resume()
        if state is None:
            torch.manual_seed(0)
            np.random.seed(0)
            random.seed(0)
            venv = VecNormalize(make_vec_env(a.env, n_envs=1, seed=0))
            model = DQN("MlpPolicy", venv, seed=0, verbose=0)
        else:
            model, venv = restore(state, a.env)
        if model.num_timesteps >= a.steps:
            break
        cb = EngramCheckpoint(run, venv, restored, a.every)
        # reset_num_timesteps=False: the step counter continues from the state.
        model.learn(total_timesteps=a.steps - model.num_timesteps, callback=cb, reset_num_timesteps=False)
        if not restored.is_set():
            run.save(capture(model, venv), step=int(model.num_timesteps))
            break
    run.close()


if __name__ == "__main__":
    main()
