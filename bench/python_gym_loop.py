#!/usr/bin/env python3
"""The plain Python + Gymnasium loops the engine benchmark compares against.

Tabular Q-learning (epsilon-greedy, numpy Q-table) on FrozenLake-v1 8x8 and
Taxi-v4 through gym.make (with its default wrappers), and CartPole-v1 steps
with a linear policy. Prints one JSON object: steps per second for each.
"""
import argparse
import json
import random
import time

import gymnasium as gym
import numpy as np


def q_learning(env_id, steps, **kwargs):
    env = gym.make(env_id, **kwargs)
    n_s, n_a = env.observation_space.n, env.action_space.n
    q = np.zeros((n_s, n_a))
    rnd = random.Random(0)
    s, _ = env.reset(seed=0)
    eps, alpha, gamma = 0.2, 0.1, 0.999
    t = time.perf_counter()
    for _ in range(steps):
        a = rnd.randrange(n_a) if rnd.random() < eps else int(np.argmax(q[s]))
        s2, r, term, trunc, _ = env.step(a)
        q[s, a] += alpha * (r + (0.0 if term else gamma * np.max(q[s2])) - q[s, a])
        s = s2
        if term or trunc:
            s, _ = env.reset()
    return steps / (time.perf_counter() - t)


def cartpole(steps):
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    w = np.array([0.1, 0.5, 1.0, 0.5])
    t = time.perf_counter()
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(int(obs @ w > 0))
        if term or trunc:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200_000)
    args = ap.parse_args()
    print(json.dumps({
        "gymnasium": gym.__version__,
        "frozenlake8x8_steps_per_s": q_learning("FrozenLake-v1", args.steps, map_name="8x8"),
        "taxi_steps_per_s": q_learning("Taxi-v4", args.steps),
        "cartpole_steps_per_s": cartpole(args.steps),
    }))


if __name__ == "__main__":
    main()
