"""Stable-Baselines3 training kept in Engram, resumed exactly.

`learn` trains a model toward `total_timesteps`, saving everything an
exact resume needs every `every` timesteps, and after a restart (a crash,
a kill -9, a reboot) or a restore from Engram's timeline goes on from the
newest state as if it had never stopped::

    import engram, engram.sb3
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    run = engram.attach("dqn-cartpole", format=engram.sb3.FORMAT)
    model = engram.sb3.learn(run, lambda: DQN("MlpPolicy", VecNormalize(make_vec_env("CartPole-v1", seed=0)), seed=0),
                             total_timesteps=20_000, every=2_000)

What a state holds: the model as SB3 saves it (weights, optimizer,
counters), the replay buffer (off-policy algorithms), the vectorised
environments themselves (each environment with its state and generators,
the TimeLimit counters) and VecNormalize's statistics and running returns,
`_last_obs` and the episode buffers (a resume does not reset the
environments), the action space's generator (ε-greedy draws from it) and
torch's, numpy's and Python's global generators. Each is cut at the start
of a rollout, after the previous rollout's gradient steps: a consistent
point to go on from.

**Trust.** SB3's own format and environments are pickled, and unpickling
runs code. So a state is signed (HMAC-SHA256) with a key kept in Engram's
data directory (`keys/engram.sb3.key`, owner-only), and `load_model`
unpickles only states signed with this data directory's key; anything
else — an imported file, a state from another host — is refused unless
the caller passes `trust=True`, which says they know where it came from.

Exact: on the CPU, with the same SB3/torch/Gymnasium versions. An
environment that cannot be pickled cannot be kept: `capture` says which.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .pack import pack, unpack
from .torch import _capture_global, _restore_global

__all__ = ["FORMAT", "Untrusted", "capture", "learn", "load_model", "state_key"]

#: The state format to declare at `engram.attach(..., format=FORMAT)`.
FORMAT = "engram.sb3/1"

# The algorithms a state may name (nothing else is looked up by name).
_ALGORITHMS = ("A2C", "DDPG", "DQN", "PPO", "SAC", "TD3")
# What SB3's own save leaves out and a resume needs.
_LOOP = ("_last_obs", "_last_original_obs", "_last_episode_starts", "ep_info_buffer", "ep_success_buffer", "_episode_num", "_n_calls", "_n_updates")
# A plain ReplayBuffer's arrays, kept as arrays.
_REPLAY = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
_PICKLED = ("sb3/model", "sb3/replay", "sb3/venv", "sb3/normalize", "sb3/loop")


class Untrusted(ValueError):
    """A state not signed with this data directory's key (see the module's
    documentation); nothing was unpickled."""


def state_key(data_dir: str | os.PathLike[str]) -> bytes:
    """This data directory's signing key, made (owner-only) the first time."""
    path = Path(data_dir) / "keys" / "engram.sb3.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # the first one made wins; never replaced
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_bytes()


def _plain_replay(rb: Any) -> bool:
    """SB3's own ReplayBuffer (not a subclass: dict observations, HER)."""
    from stable_baselines3.common.buffers import ReplayBuffer

    return type(rb) is ReplayBuffer


def _signature(key: bytes, blobs: dict[str, bytes]) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for name in _PICKLED:
        b = blobs.get(name, b"")
        mac.update(f"{name}:{len(b)}:".encode())
        mac.update(b)
    return mac.hexdigest()


def capture(model: Any, *, key: bytes) -> bytes:
    """Everything an exact resume of `model` needs, signed with `key`."""
    import numpy as np
    from stable_baselines3.common.vec_env import VecNormalize

    name = type(model).__name__
    if name not in _ALGORITHMS or not type(model).__module__.startswith("stable_baselines3."):
        raise TypeError(f"{type(model).__module__}.{name}: engram.sb3 keeps {', '.join(_ALGORITHMS)} from stable_baselines3")
    env = model.get_env()
    normalize = model.get_vec_normalize_env()
    inner = normalize.venv if normalize is not None else env
    blobs: dict[str, bytes] = {}
    buf = io.BytesIO()
    model.save(buf)
    blobs["sb3/model"] = buf.getvalue()
    rb = getattr(model, "replay_buffer", None)
    replay: dict[str, Any] | None = None
    if rb is not None and _plain_replay(rb):
        # Its filled rows as arrays (no pickle, and not the whole capacity:
        # a fresh buffer is zeros beyond them, as a loaded model's is).
        n = rb.buffer_size if rb.full else rb.pos
        if rb.optimize_memory_usage and not rb.full:
            n = min(n + 1, rb.buffer_size)  # the last transition's next observation is the row after it
        replay = {"pos": int(rb.pos), "full": bool(rb.full), "rows": int(n), "fields": [f for f in _REPLAY if getattr(rb, f, None) is not None]}
    elif rb is not None:
        buf = io.BytesIO()
        model.save_replay_buffer(buf)
        blobs["sb3/replay"] = buf.getvalue()
    import cloudpickle  # type: ignore[import-untyped]

    try:
        blobs["sb3/venv"] = cloudpickle.dumps(inner)
    except Exception as e:  # noqa: BLE001 - any failure to pickle is the environment's
        raise TypeError(f"the environments ({type(inner).__name__}) cannot be kept: {e}; a resume would reset them") from e
    if isinstance(normalize, VecNormalize):
        blobs["sb3/normalize"] = pickle.dumps({"normalize": normalize, "returns": normalize.returns})
    blobs["sb3/loop"] = pickle.dumps({k: getattr(model, k) for k in _LOOP if hasattr(model, k)})
    space_rng = getattr(model.action_space, "_np_random", None)
    items: dict[str, Any] = {k: np.frombuffer(v, dtype=np.uint8) for k, v in blobs.items()}
    if replay is not None:
        for f in replay["fields"]:
            items[f"sb3/replay/{f}"] = getattr(rb, f)[: replay["rows"]]
    generators: dict[str, Any] = {}
    items["sb3"] = {
        "replay": replay,
        "version": 1,
        "algorithm": name,
        "num_timesteps": int(model.num_timesteps),
        "signature": _signature(key, blobs),
        "action_space_rng": None if space_rng is None else space_rng.bit_generator.state,
        "global": _capture_global(generators),
    }
    items.update(generators)
    return pack(items)


def load_model(state: bytes, *, key: bytes, trust: bool = False) -> Any:
    """The model a state holds, with its environments, replay buffer, loop
    state and every generator put back: `learn(..., reset_num_timesteps=False)`
    on it goes on exactly. Refuses (`Untrusted`) a state not signed with
    `key` unless `trust`; nothing is unpickled before that check."""
    s = unpack(state)
    meta = s.get("sb3")
    if not isinstance(meta, dict) or meta.get("version") != 1:
        raise ValueError("not an engram.sb3 state")
    blobs = {k: s[k].tobytes() for k in _PICKLED if k in s}
    if not trust and not hmac.compare_digest(str(meta.get("signature", "")), _signature(key, blobs)):
        raise Untrusted(
            "this SB3 state was not signed by this Engram data directory (imported, from another host, or changed): "
            "loading it would unpickle code from it; pass trust=True only if you know where it came from"
        )
    name = str(meta.get("algorithm"))
    if name not in _ALGORITHMS:
        raise ValueError(f"engram.sb3 state names an unknown algorithm {name!r}")
    import stable_baselines3

    algo = getattr(stable_baselines3, name)
    inner = pickle.loads(blobs["sb3/venv"])  # noqa: S301 - signed (or trusted) above
    env = inner
    if "sb3/normalize" in blobs:
        saved = pickle.loads(blobs["sb3/normalize"])  # noqa: S301 - signed (or trusted) above
        env = saved["normalize"]
        env.set_venv(inner)  # zeroes the running returns: put them back
        env.returns = saved["returns"]
    # Loaded without an environment (with one, SB3 resets and reseeds it),
    # then given the environments as they were.
    model = algo.load(io.BytesIO(blobs["sb3/model"]))
    model.set_env(env, force_reset=False)
    if "sb3/replay" in blobs:
        model.load_replay_buffer(io.BytesIO(blobs["sb3/replay"]))
    replay = meta.get("replay")
    if replay is not None:
        rb = model.replay_buffer
        if rb is None or not _plain_replay(rb):
            raise ValueError("engram.sb3 state holds a replay buffer this model has none of its kind for")
        rows = int(replay["rows"])
        for f in replay["fields"]:
            into, got = getattr(rb, f, None), s.get(f"sb3/replay/{f}")
            if into is None or got is None or got.shape != (rows, *into.shape[1:]) or got.dtype != into.dtype or rows > len(into):
                raise ValueError(f"engram.sb3 state: its replay buffer's {f} does not fit the model's")
            into[:rows] = got
        rb.pos, rb.full = int(replay["pos"]), bool(replay["full"])
    for k, v in pickle.loads(blobs["sb3/loop"]).items():  # noqa: S301 - signed (or trusted) above
        setattr(model, k, v)
    # Generators last: loading reseeded them.
    if meta.get("action_space_rng") is None:
        model.action_space._np_random = None
    else:
        model.action_space.np_random.bit_generator.state = meta["action_space_rng"]
    _restore_global(meta["global"], s)
    return model


def _checkpoint(run: Any, every: int, key: bytes) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    from .errors import EngramError

    class Checkpoint(BaseCallback):
        """Saves at the start of a rollout (after the previous one's
        gradient steps: a consistent cut) once `every` timesteps passed;
        stops training when the learner is restored from the timeline
        (`restored` holds the state to go on from)."""

        def __init__(self) -> None:
            super().__init__()
            self.next_at: int | None = None
            self.restored: tuple[bytes, int | None] | None = None

        def _on_rollout_start(self) -> None:
            t = int(self.model.num_timesteps)
            if self.next_at is None:
                self.next_at = (t // every + 1) * every
            elif t >= self.next_at and self.restored is None:
                try:
                    run.save(capture(self.model, key=key), step=t)
                except EngramError as e:
                    if e.code != "stale_state":
                        raise
                    # Restored meanwhile: the save was not stored; the
                    # next step takes the restored state.
                self.next_at = (t // every + 1) * every

        def _on_step(self) -> bool:
            if self.restored is None:
                self.restored = run.restored()
            return self.restored is None

    return Checkpoint()


def learn(run: Any, make_model: Callable[[], Any], *, total_timesteps: int, every: int, trust: bool = False) -> Any:
    """Trains toward `total_timesteps` (the same horizon across restarts:
    the schedules run over it), from the newest saved state if there is
    one (else `make_model()`), saving every `every` timesteps and at the
    end; a restore of this learner from the timeline while it trains is
    taken at the next step and training goes on from it. Returns the model."""
    from .errors import EngramError

    if run.data_dir is None:
        raise ValueError("engram.sb3 needs the run's data directory (its signing key is kept there): attach with data_dir=")
    key = state_key(run.data_dir)
    state = run.resume()
    while True:
        model = make_model() if state is None else load_model(state, key=key, trust=trust)
        left = total_timesteps - int(model.num_timesteps)
        checkpoint = _checkpoint(run, every, key)
        if left > 0:
            model.learn(left, callback=checkpoint, reset_num_timesteps=state is None)
        if checkpoint.restored is not None:
            state = checkpoint.restored[0]
            continue
        try:
            run.save(capture(model, key=key), step=int(model.num_timesteps))
        except EngramError as e:
            if e.code != "stale_state":
                raise
            taken = run.restored()
            state = taken[0] if taken is not None else run.resume()
            continue
        return model
