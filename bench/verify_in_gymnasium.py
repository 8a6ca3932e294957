"""Runs what an exported Engram snapshot claims the MDP/ES engine learned in
Gymnasium itself, independently of Engram's own evaluation.

    python3 bench/verify_in_gymnasium.py SNAPSHOT.json [--episodes 5000]

- Q-learning: the greedy policy of the exported Q-table (argmax, first of
  ties) played in the snapshot's FrozenLake/Taxi/CliffWalking, seeded
  episodes; compared with the snapshot's exact `greedy_success`/`greedy_return`.
- ES: the exported best individual (a linear CartPole policy) over 100
  episodes with seeds Engram never used; compared with the validated
  `best_fitness` (mean return / 500).

Also the reference of the drill test (`engram backups drill` against
Gymnasium: crates/engram-cli/tests/cli/backups.rs), which reads the
"Gymnasium MEAN ± SE" line below.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import gymnasium as gym
import numpy as np


def make_tabular(env: dict[str, Any]) -> gym.Env:
    if env["id"] == "FrozenLake-v1":
        return gym.make("FrozenLake-v1", desc=env["map"], is_slippery=env["slippery"])
    return gym.make(env["id"])


def greedy_return(q: np.ndarray, env: gym.Env, episodes: int) -> tuple[float, float]:
    policy = q.argmax(axis=1)
    returns = []
    for seed in range(episodes):
        s, _ = env.reset(seed=10_000 + seed)
        total, done = 0.0, False
        while not done:
            s, r, terminated, truncated, _ = env.step(int(policy[s]))
            total += float(r)
            done = terminated or truncated
        returns.append(total)
    mean = float(np.mean(returns))
    return mean, float(np.std(returns) / math.sqrt(len(returns)))


def cartpole_fitness(params: list[float], episodes: int) -> float:
    env = gym.make("CartPole-v1")
    w = np.array(params[:4])
    total = 0.0
    for seed in range(episodes):
        obs, _ = env.reset(seed=90_000 + seed)
        done = False
        while not done:
            action = int(float(np.dot(w, obs)) + params[4] > 0.0)
            obs, r, terminated, truncated, _ = env.step(action)
            total += float(r)
            done = terminated or truncated
    return total / episodes / 500.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("snapshot")
    ap.add_argument("--episodes", type=int, default=5000)
    args = ap.parse_args()
    with open(args.snapshot, encoding="utf-8") as f:
        snap = json.load(f)
    state = snap["states"]["mdp_es"]["readable"]
    metrics = next(e["metrics"] for e in snap["engines"] if e["name"] == "mdp_es")
    env_spec = state["config"]["q"]["env"]
    q = np.array(state["q"]).reshape(state["n_states"], state["n_actions"])
    mean, se = greedy_return(q, make_tabular(env_spec), args.episodes)
    claimed = metrics.get("greedy_success", metrics.get("greedy_return"))
    print(
        f"Q greedy policy on {env_spec['id']}: Gymnasium {mean:.4f} ± {se:.4f} "
        f"over {args.episodes} episodes; Engram's exact figure {claimed:.4f} "
        f"(policy_quality {metrics['policy_quality']:.3f})"
    )
    es = state["es"]
    for name, params in [("best individual", es["best_individual"]), ("search mean", es["theta"])]:
        fit = cartpole_fitness(params, 100)
        print(f"ES {name} on CartPole-v1, 100 new seeds: fitness {fit:.3f}")
    print(f"Engram's validated best_fitness: {es['best_fitness']:.3f}")


if __name__ == "__main__":
    main()
