"""Stable-Baselines3 keeping its whole training state in Engram, resumed exactly.

A thin script over `engram.sb3.learn`: DQN, PPO or SAC on a Gymnasium
environment under VecNormalize, saving every `--every` timesteps everything
an exact resume needs (model, optimizer, replay buffer, the environments
with their generators, VecNormalize's statistics and running returns,
`_last_obs`, the action space's and the global generators). Killed and
started again — by hand, or by Engram's supervisor — it ends with the same
weights as a run that was never interrupted (tested: DQN and PPO, SIGKILLed
three times each).

    python3 examples/python/sb3_callback.py --name sb3-cartpole --steps 20000 --every 2000
    engram learners add sb3-cartpole -- python3 examples/python/sb3_callback.py --name sb3-cartpole

States are signed with a key in Engram's data directory: one from elsewhere
is refused (SB3's format unpickles). Prints a SHA-256 of the final policy
weights and optimizer state; `--out PATH` also writes the final model with
SB3's own `save`. Needs `pip install stable-baselines3 ./clients/python`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import engram
import engram.sb3


def digest(model: Any) -> str:
    """SHA-256 of everything SB3 saves as torch state: the policy, every
    optimizer (SAC has three), and variables such as SAC's entropy coefficient."""
    h = hashlib.sha256()

    def feed(prefix: str, x: Any) -> None:
        if isinstance(x, torch.Tensor):
            h.update(prefix.encode() + x.detach().numpy().tobytes())
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                feed(f"{prefix}/{k}", x[k])
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                feed(f"{prefix}/{i}", v)
        else:
            h.update(f"{prefix}={x!r}".encode())

    state_dicts, variables = model._get_torch_save_params()
    for name in state_dicts:
        obj = model
        for part in name.split("."):
            obj = getattr(obj, part)
        feed(name, obj.state_dict())
    for name in variables or []:
        obj = model
        for part in name.split("."):
            obj = getattr(obj, part)
        feed(name, obj)
    h.update(str(model.num_timesteps).encode())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", default=os.environ.get("ENGRAM_LEARNER", "sb3-cartpole"))
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--algo", choices=["dqn", "ppo", "sac"], default="dqn", help="sac needs an environment with continuous actions (--env Pendulum-v1)")
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--every", type=int, default=2_000)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="write the final model here with SB3's own save")
    a = p.parse_args()

    torch.set_num_threads(1)
    run = engram.attach(a.name, format=engram.sb3.FORMAT, data_dir=a.data_dir)

    def fresh() -> Any:
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        venv = VecNormalize(make_vec_env(a.env, n_envs=1, seed=0))
        if a.algo == "dqn":
            return DQN("MlpPolicy", venv, seed=0, learning_starts=500, train_freq=4, target_update_interval=250, verbose=0)
        if a.algo == "sac":
            return SAC("MlpPolicy", venv, seed=0, learning_starts=200, verbose=0)
        return PPO("MlpPolicy", venv, seed=0, n_steps=512, batch_size=64, n_epochs=4, verbose=0)

    model = engram.sb3.learn(run, fresh, total_timesteps=a.steps, every=a.every)
    run.close()
    if a.out:
        model.save(a.out)
    print(digest(model))


if __name__ == "__main__":
    main()
