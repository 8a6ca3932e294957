"""engram.sb3 with real Stable-Baselines3, torch and Gymnasium on the CPU:
examples/python/sb3_callback.py (DQN and PPO on CartPole-v1, SAC on
Pendulum-v1, under VecNormalize) killed with SIGKILL at three random points
after saves, started again, and killed once more under Engram's supervisor
ends with the policy weights, optimizer states and replay buffer of a run
that was never interrupted; a state signed elsewhere is
refused before anything is unpickled (real processes, a real `engram
serve`)."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engram
import engram.sb3
from engram.pack import pack, unpack

from test_client import ENGRAM, ROOT, Server, server  # noqa: F401  (the fixture)
from test_example import learner, wait_for
from test_torch import saved_step

EXAMPLE = ROOT / "examples/python/sb3_callback.py"
# Timesteps, save interval, environment.
STEPS = {"dqn": (8000, 1000, "CartPole-v1"), "ppo": (8192, 1024, "CartPole-v1"), "sac": (1200, 200, "Pendulum-v1")}


def run_example(data_dir: Path, name: str, algo: str) -> subprocess.Popen[str]:
    steps, every, gym_env = STEPS[algo]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients/python/src")}
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--name", name, "--algo", algo, "--env", gym_env, "--steps", str(steps), "--every", str(every), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def final_model(server: Server, name: str) -> Any:
    state = engram.attach(name, data_dir=server.data_dir).resume()
    assert state is not None
    return engram.sb3.load_model(state, key=engram.sb3.state_key(server.data_dir))


@pytest.mark.parametrize("algo", ["dqn", "ppo", "sac"])
def test_killed_three_times_it_ends_bit_identical_to_an_uninterrupted_run(server: Server, algo: str) -> None:  # noqa: F811
    t0 = time.monotonic()
    ref = run_example(server.data_dir, "uninterrupted", algo)
    out, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err
    want = out.strip().splitlines()[-1]
    print(f"{algo} uninterrupted: {time.monotonic() - t0:.1f} s")

    steps = STEPS[algo][0]
    rnd = random.Random(29)
    kills: list[int] = []
    for _ in range(3):
        before = saved_step(server, "killed")
        p = run_example(server.data_dir, "killed", algo)
        wait_for("a save by this process", lambda: saved_step(server, "killed") > before or p.poll() is not None, timeout=300)
        time.sleep(rnd.uniform(0.0, 1.0))
        assert p.poll() is None, f"it finished before it could be killed: {p.communicate()}"
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        kills.append(saved_step(server, "killed"))
    # The last start under Engram's supervision: killed once more there, it
    # is started again by Engram and runs to the end.
    _, every, gym_env = STEPS[algo]
    command = ["env", f"PYTHONPATH={ROOT / 'clients/python/src'}", sys.executable, str(EXAMPLE)]
    command += ["--name", "killed", "--algo", algo, "--env", gym_env, "--steps", str(steps), "--every", str(every)]
    subprocess.run([str(ENGRAM), "--data-dir", str(server.data_dir), "learners", "add", "killed", "--", *command], check=True, capture_output=True)
    before = saved_step(server, "killed")
    wait_for("a save under supervision", lambda: saved_step(server, "killed") > before or learner(server, "killed")["process"]["phase"] == "finished", timeout=300)
    proc = learner(server, "killed")["process"]
    assert proc["phase"] == "running", proc
    os.kill(proc["pid"], signal.SIGKILL)
    kills.append(saved_step(server, "killed"))
    wait_for("finished", lambda: learner(server, "killed")["process"]["phase"] == "finished", timeout=600)
    info = learner(server, "killed")["process"]
    print(f"{algo}: killed after the saves of timesteps {kills} (of {steps}; the last under supervision), resumed each time")
    assert info["restarts"] == 1 and info["last_exit"] == "exit status 0", info
    assert len(set(kills)) == 4 and 0 < min(kills) and max(kills) < steps, kills
    assert info["output"][-1] == want or want in info["output"][-3:], info["output"][-5:]
    a, b = final_model(server, "uninterrupted"), final_model(server, "killed")
    assert a.num_timesteps == b.num_timesteps >= steps
    if algo in ("dqn", "sac"):
        for field in ("observations", "actions", "rewards", "next_observations", "dones"):
            assert np.array_equal(getattr(a.replay_buffer, field), getattr(b.replay_buffer, field)), field
        assert a.replay_buffer.pos == b.replay_buffer.pos
    assert np.array_equal(a.get_vec_normalize_env().obs_rms.mean, b.get_vec_normalize_env().obs_rms.mean)


def engram_cli(server: Server, *args: str) -> Any:  # noqa: F811
    out = subprocess.run([str(ENGRAM), "--data-dir", str(server.data_dir), *args, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_restored_to_an_earlier_backup_it_trains_on_to_the_same_end(server: Server) -> None:  # noqa: F811
    steps = STEPS["dqn"][0]
    # A run never interrupted, with a manual backup taken in the middle.
    p = run_example(server.data_dir, "rewind", "dqn")
    wait_for("a save past a third", lambda: saved_step(server, "rewind") >= steps // 3 or p.poll() is not None, timeout=300)
    mid = engram_cli(server, "backups", "create", "--label", "mid")["id"]
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    want = out.strip().splitlines()[-1]
    at = saved_step(server, "rewind")
    assert at >= steps

    # Restored to that backup while nothing runs: the next start trains on from there.
    engram_cli(server, "backups", "restore", str(mid), "--engine", "rewind")
    back = saved_step(server, "rewind")
    assert steps // 3 <= back < steps, back
    p = run_example(server.data_dir, "rewind", "dqn")
    # And restored to it again while it trains: it takes the restore at its
    # next step and goes on from there.
    wait_for("a save past the restored one", lambda: saved_step(server, "rewind") > back or p.poll() is not None, timeout=300)
    assert p.poll() is None, "it finished before the second restore"
    engram_cli(server, "backups", "restore", str(mid), "--engine", "rewind")
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert out.strip().splitlines()[-1] == want, "from the restored backup on, the same run as the original"
    # It took the second restore while training (a restore after its end
    # would have left the live state at the backup's step).
    assert saved_step(server, "rewind") >= steps


class _Boom:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.write_text, (self.marker, "code ran"))


def test_a_state_signed_elsewhere_is_refused_before_anything_is_unpickled(server: Server, tmp_path: Path) -> None:  # noqa: F811
    p = run_example(server.data_dir, "signed", "ppo")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    state = engram.attach("signed", data_dir=server.data_dir).resume()
    assert state is not None
    here = engram.sb3.state_key(server.data_dir)
    assert (server.data_dir / "keys" / "engram.sb3.key").stat().st_mode & 0o077 == 0, "the key is the owner's alone"
    # This directory's key loads it; another host's does not.
    assert engram.sb3.load_model(state, key=here).num_timesteps >= STEPS["ppo"][0]
    elsewhere = engram.sb3.state_key(tmp_path / "other-host")
    assert elsewhere != here
    with pytest.raises(engram.sb3.Untrusted, match="not signed by this Engram data directory"):
        engram.sb3.load_model(state, key=elsewhere)
    # A hostile state: the signed one with its environments swapped for a
    # pickle that runs code. Refused, and nothing ran.
    marker = tmp_path / "ran"
    items = unpack(state)
    items["sb3/venv"] = np.frombuffer(pickle.dumps(_Boom(marker)), dtype=np.uint8)
    hostile = pack(items)
    with pytest.raises(engram.sb3.Untrusted):
        engram.sb3.load_model(hostile, key=here)
    assert not marker.exists(), "nothing in an untrusted state may run"
    # trust=True is the caller saying they know where it came from: it loads.
    assert engram.sb3.load_model(state, key=elsewhere, trust=True).num_timesteps >= STEPS["ppo"][0]
    with pytest.raises(ValueError, match="not an engram.sb3 state"):
        engram.sb3.load_model(pack({"x": 1}), key=here)
