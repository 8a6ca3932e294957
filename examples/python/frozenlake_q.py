"""Tabular Q-learning on Gymnasium's FrozenLake, keeping its state in Engram.

The Q-table, the numpy Generator that drives exploration and the episode
counter are saved every `--save-every` episodes (durable when `save`
returns); a restart — after a crash, a kill -9, a reboot — resumes from the
last save and, because every random draw comes from the saved generator,
ends bit-identical to a run that was never interrupted. A restore from
Engram's timeline rolls it back the same way (`run.restored()`). Asked to
stop from Engram (`run.stop_requested`), it stops after its next save.

    python3 examples/python/frozenlake_q.py --name frozenlake-q --episodes 3000

Prints the final state's SHA-256 (Q-table + generator + episode), so two
runs can be compared. Needs numpy and gymnasium (`pip install numpy
gymnasium`) and the client (`pip install ./clients/python`).
"""

from __future__ import annotations

import argparse
import hashlib

import gymnasium as gym
import numpy as np

import engram
from engram.pack import numpy_rng_state, pack, set_numpy_rng_state, unpack


def digest(q: np.ndarray, rng: np.random.Generator, episode: int) -> str:
    h = hashlib.sha256(q.tobytes())
    h.update(repr(numpy_rng_state(rng)).encode())
    h.update(str(episode).encode())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", default="frozenlake-q")
    p.add_argument("--episodes", type=int, default=3000)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args()

    env = gym.make("FrozenLake-v1")
    n_s, n_a = env.observation_space.n, env.action_space.n  # type: ignore[attr-defined]
    run = engram.attach(
        a.name,
        format="engram.pack/1",
        # How the UI draws its curve.
        metrics={"success_last_100": {"label": "Success, last 100 episodes", "format": "percent", "higher_is_better": True}},
        data_dir=a.data_dir,
    )

    def load(state: bytes | None) -> tuple[np.ndarray, np.random.Generator, int]:
        rng = np.random.default_rng(a.seed)
        if state is None:
            return np.zeros((n_s, n_a)), rng, 0
        s = unpack(state)
        set_numpy_rng_state(rng, s["rng"])
        return s["q"], rng, int(s["episode"])

    q, rng, episode = load(run.resume())

    alpha, gamma = 0.1, 0.99
    successes: list[float] = []
    goal = 0.6  # a milestone: the last 100 episodes succeed this often
    while episode < a.episodes:
        # Restored from the timeline? Continue from there.
        r = run.restored()
        if r is not None:
            q, rng, episode = load(r[0])
            continue
        eps = max(0.05, 1.0 - episode / (0.6 * a.episodes))
        s, _ = env.reset(seed=int(rng.integers(2**31)))
        done = False
        reward = 0.0
        while not done:
            act = int(rng.integers(n_a)) if rng.random() < eps else int(np.argmax(q[s]))
            s2, r, term, trunc, _ = env.step(act)
            q[s, act] += alpha * (r + gamma * (0.0 if term else np.max(q[s2])) - q[s, act])
            s, done, reward = s2, term or trunc, float(r)
        episode += 1
        successes.append(reward)
        run.log({"success_last_100": float(np.mean(successes[-100:]))}, step=episode)
        if episode % a.save_every == 0 or episode == a.episodes:
            rate = float(np.mean(successes[-100:]))
            state = pack({"q": q, "rng": numpy_rng_state(rng), "episode": episode})
            try:
                run.save(state, step=episode, metrics={"success_last_100": rate})
            except engram.EngramError as e:
                if e.code != "stale_state":
                    raise
                continue  # restored meanwhile: run.restored() has the state to go on from
            if rate >= goal and len(successes) >= 100:
                # Kept as a protected backup holding the state just saved;
                # once per line of history (a restarted run gets the same one).
                run.milestone(f"success_last_100 >= {goal}", metric="success_last_100", value=rate, step=episode)
            if run.stop_requested:
                # "Ask to stop" in Engram's UI (or `engram learners stop`):
                # just saved, so nothing is lost; the next run resumes here.
                break
    run.close()
    print(digest(q, rng, episode))


if __name__ == "__main__":
    main()
