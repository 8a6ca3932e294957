"""examples/python/frozenlake_q.py supervised by Engram and SIGKILLed: killed
at random moments (and Engram itself once), started again by Engram's
supervisor each time, it ends with a Q-table and generator bit-identical to
a run that was never interrupted (real processes, a real `engram serve`)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import engram
from engram.pack import unpack

from test_client import ENGRAM, ROOT, Server, server  # noqa: F401  (the fixture)

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


def learners(server: Server) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(ENGRAM), "--data-dir", str(server.data_dir), "learners", "list", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: list[dict[str, Any]] = json.loads(out)
    return found


def learner(server: Server, name: str) -> dict[str, Any]:
    return next(entry for entry in learners(server) if entry["name"] == name)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for: {what}"
        time.sleep(0.05)


def test_supervised_and_killed_ten_times_the_example_ends_bit_identical_to_an_uninterrupted_run(server: Server) -> None:  # noqa: F811
    episodes = 30_000
    t0 = time.monotonic()
    ref = run_example(server.data_dir, "uninterrupted", episodes)
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    want = out.strip()
    print(f"uninterrupted run: {time.monotonic() - t0:.1f} s")

    # Engram runs the learner: `engram learners add` goes to the running serve.
    command = ["env", f"PYTHONPATH={ROOT / 'clients/python/src'}", sys.executable, str(EXAMPLE)]
    command += ["--name", "killed", "--episodes", str(episodes), "--save-every", "50"]
    subprocess.run(
        [str(ENGRAM), "--data-dir", str(server.data_dir), "learners", "add", "killed", "--", *command],
        check=True,
        capture_output=True,
    )
    rnd = random.Random(2026)
    kills = 0
    kills_since_restart = 0  # a new Engram counts restarts afresh
    for i in range(11):
        wait_for("running", lambda: learner(server, "killed")["process"]["phase"] in ("running", "finished"))
        p = learner(server, "killed")["process"]
        if p["phase"] == "finished":
            break
        # Mid-run: once this process has saved (it is training), at a random moment.
        wait_for(
            "a save by this process",
            lambda: (learner(server, "killed")["live"] or {}).get("saved_at_ms", 0) > p["started_at_ms"]
            or learner(server, "killed")["process"]["phase"] == "finished",
        )
        time.sleep(rnd.uniform(0.0, 0.8))
        if i == 5:
            # Engram itself is killed too: the learner trains on (spooling);
            # the next Engram stops it, takes its spool in and starts it again.
            server.stop(signal.SIGKILL)
            time.sleep(rnd.uniform(0.5, 1.5))
            server.start()
            kills_since_restart = 0
            continue
        try:
            os.kill(p["pid"], signal.SIGKILL)
            kills += 1
            kills_since_restart += 1
        except ProcessLookupError:
            pass
        # Supervision brings it back with another pid (or it had finished).
        wait_for(
            "restarted",
            lambda: learner(server, "killed")["process"]["pid"] not in (None, p["pid"])
            or learner(server, "killed")["process"]["phase"] == "finished",
        )
    wait_for("finished", lambda: learner(server, "killed")["process"]["phase"] == "finished", timeout=300)
    info = learner(server, "killed")
    print(f"kills: {kills}, since the Engram restart: {kills_since_restart}")
    log = (server.data_dir / "learners" / "killed.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert kills == 10, f"only {kills} of 10 kills landed mid-run"
    assert info["process"]["restarts"] == kills_since_restart, info["process"]
    assert info["process"]["last_exit"] == "exit status 0"
    # Its own digest (the last line it printed) and the state Engram holds
    # are those of the run that was never interrupted.
    assert info["process"]["output"][-2] == want, info["process"]["output"][-5:]
    # Each reached its milestone once, however often it was restarted.
    page: Any = server.api("GET", "/api/backups?kind=breakthrough&limit=1000")
    milestones = [x["breakthrough"] for x in page["items"] if x["breakthrough"]["engine"] in ("killed", "uninterrupted")]
    assert sorted(m["engine"] for m in milestones) == ["killed", "uninterrupted"], milestones
    assert all(m["rule"] == "success_last_100 >= 0.6" and m["value"] >= 0.6 for m in milestones), milestones
    a = unpack(engram.attach("uninterrupted", data_dir=server.data_dir).resume() or b"")
    b = unpack(engram.attach("killed", data_dir=server.data_dir).resume() or b"")
    assert a["q"].tobytes() == b["q"].tobytes() and a["rng"] == b["rng"] and a["episode"] == b["episode"] == episodes


GRACEFUL = """
import sys, time
import engram
run = engram.attach("graceful")
state = run.resume()
step = 0 if state is None else int(state)
while not run.stop_requested:
    step += 1
    if step % 50 == 0:
        run.save(str(step).encode(), step=step)
    time.sleep(0.002)
run.save(str(step).encode(), step=step)
print("left at", step, flush=True)
"""


def test_a_supervised_learner_that_checks_stop_requested_saves_and_leaves_when_engram_stops_it(server: Server, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "graceful.py"
    script.write_text(GRACEFUL)
    command = ["env", f"PYTHONPATH={ROOT / 'clients/python/src'}", sys.executable, str(script)]
    subprocess.run(
        [str(ENGRAM), "--data-dir", str(server.data_dir), "learners", "add", "graceful", "--workdir", str(tmp_path), "--", *command],
        check=True,
        capture_output=True,
    )
    wait_for("a save", lambda: (learner(server, "graceful")["live"] or {}).get("step", 0) >= 100, timeout=60)
    # Engram stops it (SIGTERM): the loop sees stop_requested, saves its
    # last step and exits 0 — before the SIGKILL 5 s later.
    t = time.monotonic()
    stopped = server.api("POST", "/api/learners/graceful/stop")
    assert isinstance(stopped, dict) and stopped["process"]["phase"] == "stopped", stopped
    assert time.monotonic() - t < 4, "it left on its own, not at the SIGKILL"
    output = stopped["process"]["output"]
    left = [line for line in output if line.startswith("left at ")]
    assert left, output[-5:]
    step = int(left[-1].split()[-1])
    assert stopped["live"]["step"] == step, "its last step is saved, not only the last multiple of 50"
    assert stopped["process"]["last_exit"] == "stopped by Engram", stopped["process"]

