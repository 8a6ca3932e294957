"""engram.lightning with real Lightning and torch on the CPU:
examples/python/lightning_fit.py (dropout, Adam, a step schedule, data
shuffled by the global generator) killed with SIGKILL at three random
points after checkpoints and resumed with `ckpt_path="last"` from Engram
ends with the weights of a fit that was never interrupted; checkpoint files
are pointers, and removing one never touches Engram's states (real
processes, a real `engram serve`)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engram
import engram.lightning

from test_client import ROOT, Server, server  # noqa: F401  (the fixture)
from test_example import wait_for
from test_torch import saved_step

EXAMPLE = ROOT / "examples/python/lightning_fit.py"
EPOCHS = 8


def run_example(server: Server, name: str, ckpt: Path) -> subprocess.Popen[str]:  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients/python/src")}
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--name", name, "--epochs", str(EPOCHS), "--ckpt-dir", str(ckpt), "--data-dir", str(server.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def test_a_fit_killed_three_times_resumes_from_engram_and_ends_with_the_same_weights(server: Server, tmp_path: Path) -> None:  # noqa: F811
    t0 = time.monotonic()
    ref = run_example(server, "uninterrupted", tmp_path / "ref")
    out, _ = ref.communicate(timeout=600)
    assert ref.returncode == 0, out[-3000:]
    want = out.strip().splitlines()[-1]
    print(f"uninterrupted: {time.monotonic() - t0:.1f} s")
    # The files Lightning names are pointers; the states are in Engram.
    last = json.loads((tmp_path / "ref" / "last.ckpt").read_text())
    assert last["learner"] == "uninterrupted" and last["step"] == saved_step(server, "uninterrupted") > 0

    rnd = random.Random(31)
    kills: list[int] = []
    ckpt = tmp_path / "killed"
    for _ in range(3):
        before = saved_step(server, "killed")
        p = run_example(server, "killed", ckpt)
        wait_for("a checkpoint by this process", lambda: saved_step(server, "killed") > before or p.poll() is not None, timeout=300)
        time.sleep(rnd.uniform(0.0, 0.4))
        assert p.poll() is None, f"it finished before it could be killed: {p.communicate()[0][-2000:]}"
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        kills.append(saved_step(server, "killed"))
    p = run_example(server, "killed", ckpt)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out[-3000:]
    print(f"killed after the checkpoints of global steps {kills}, resumed with ckpt_path='last' each time")
    assert len(set(kills)) == 3 and min(kills) > 0, kills
    assert "Restored all states from the checkpoint" in out, "the last start resumed, it did not fit from scratch"
    assert out.strip().splitlines()[-1] == want, "the same weights as the fit never interrupted"


def test_pointers_name_their_state_and_removing_one_keeps_engram_s(server: Server, tmp_path: Path) -> None:  # noqa: F811
    import torch

    run = engram.attach("lit", format=engram.lightning.FORMAT, data_dir=server.data_dir)
    io = engram.lightning.EngramCheckpointIO(run)
    first = {"state_dict": {"w": torch.arange(4.0)}, "global_step": 10, "epoch": 0, "loops": {"x": [1, (2, 3)]}}
    io.save_checkpoint(first, tmp_path / "epoch=0.ckpt")
    second = {**first, "global_step": 20, "state_dict": {"w": torch.arange(4.0) * 2}}
    io.save_checkpoint(second, tmp_path / "last.ckpt")
    got = io.load_checkpoint(tmp_path / "last.ckpt")
    assert got["global_step"] == 20 and torch.equal(got["state_dict"]["w"], torch.arange(4.0) * 2) and got["loops"] == {"x": [1, (2, 3)]}
    # A pointer to an earlier checkpoint: its state is in the timeline, not live.
    with pytest.raises(ValueError, match="step 10 is not learner 'lit''s live state any more"):
        io.load_checkpoint(tmp_path / "epoch=0.ckpt")
    # Removing a checkpoint removes its pointer only.
    io.remove_checkpoint(tmp_path / "last.ckpt")
    assert not (tmp_path / "last.ckpt").exists()
    assert run.resume() is not None and saved_step(server, "lit") == 20
    # Not a pointer (a real Lightning file, say): refused, nothing unpickled.
    (tmp_path / "other.ckpt").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(ValueError, match="not a checkpoint pointer"):
        io.load_checkpoint(tmp_path / "other.ckpt")
    other = engram.lightning.EngramCheckpointIO(engram.attach("someone-else", data_dir=server.data_dir))
    io.save_checkpoint(second, tmp_path / "mine.ckpt")
    with pytest.raises(ValueError, match="a checkpoint of learner 'lit', not of 'someone-else'"):
        other.load_checkpoint(tmp_path / "mine.ckpt")


def test_a_kill_between_the_epoch_checkpoint_and_last_resumes_from_the_newer_one(server: Server, tmp_path: Path) -> None:  # noqa: F811
    import torch

    # Lightning saves an epoch's checkpoint twice: `epoch=…-step=….ckpt`,
    # then `last.ckpt`. Killed between the two, `last.ckpt` still names
    # the previous epoch while Engram's live state is the newer one (seen
    # in CI: "the checkpoint of step 64 is not learner 'killed''s live state").
    run = engram.attach("between", format=engram.lightning.FORMAT, data_dir=server.data_dir)
    io = engram.lightning.EngramCheckpointIO(run)
    first = {"state_dict": {"w": torch.arange(4.0)}, "global_step": 32, "epoch": 0}
    io.save_checkpoint(first, tmp_path / "epoch=0-step=32.ckpt")
    io.save_checkpoint(first, tmp_path / "last.ckpt")
    second = {**first, "global_step": 64, "epoch": 1, "state_dict": {"w": torch.arange(4.0) * 3}}
    io.save_checkpoint(second, tmp_path / "epoch=1-step=64.ckpt")
    (tmp_path / "epoch=0-step=32.ckpt").unlink()  # save_top_k=1 removes the older one
    # -- killed here --
    got = io.load_checkpoint(tmp_path / "last.ckpt")
    assert got["global_step"] == 64 and torch.equal(got["state_dict"]["w"], torch.arange(4.0) * 3)
    assert json.loads((tmp_path / "last.ckpt").read_text())["step"] == 64, "last.ckpt names the newer checkpoint now"
    assert not list(tmp_path.glob(".*.tmp")), "nothing left aside"

    # The live state older than what `last` names (a backup restored from the
    # timeline): never swapped for a sibling, refused as before.
    older = tmp_path / "older"
    io.save_checkpoint(first, older / "epoch=0-step=32.ckpt")
    io.save_checkpoint(second, older / "last.ckpt")
    io.save_checkpoint(first, older / "epoch=0-step=32.ckpt")
    with pytest.raises(ValueError, match="step 64 is not learner 'between''s live state any more"):
        io.load_checkpoint(older / "last.ckpt")
    # Named by its own name, a checkpoint is never swapped for a newer one.
    io.save_checkpoint(second, older / "epoch=1-step=64.ckpt")
    with pytest.raises(ValueError, match="step 32 is not learner 'between''s live state any more"):
        io.load_checkpoint(older / "epoch=0-step=32.ckpt")


def test_a_dangling_last_link_resumes_from_the_checkpoint_that_is_live(server: Server, tmp_path: Path) -> None:  # noqa: F811
    import torch

    # `save_last="link"`: `last.ckpt` links to the epoch's checkpoint; killed
    # after the next epoch's checkpoint replaced that file and before the
    # link was made anew, `last.ckpt` is a dangling link.
    run = engram.attach("linked", format=engram.lightning.FORMAT, data_dir=server.data_dir)
    io = engram.lightning.EngramCheckpointIO(run)
    first = {"state_dict": {"w": torch.arange(4.0)}, "global_step": 32, "epoch": 0}
    io.save_checkpoint(first, tmp_path / "epoch=0-step=32.ckpt")
    (tmp_path / "last.ckpt").symlink_to("epoch=0-step=32.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["global_step"] == 32, "a live link is followed"
    second = {**first, "global_step": 64, "epoch": 1, "state_dict": {"w": torch.arange(4.0) * 5}}
    io.save_checkpoint(second, tmp_path / "epoch=1-step=64.ckpt")
    (tmp_path / "epoch=0-step=32.ckpt").unlink()
    # -- killed here --
    got = io.load_checkpoint(tmp_path / "last.ckpt")
    assert got["global_step"] == 64 and torch.equal(got["state_dict"]["w"], torch.arange(4.0) * 5)
    assert json.loads((tmp_path / "last.ckpt").read_text())["step"] == 64

    # A dangling link with no pointer to the live state: refused, clearly.
    (tmp_path / "epoch=1-step=64.ckpt").unlink()
    (tmp_path / "last.ckpt").unlink()
    (tmp_path / "last.ckpt").symlink_to("gone.ckpt")
    with pytest.raises(ValueError, match="not a checkpoint pointer"):
        io.load_checkpoint(tmp_path / "last.ckpt")
    # Any other dangling name is not guessed at.
    io.save_checkpoint(second, tmp_path / "epoch=1-step=64.ckpt")
    (tmp_path / "other.ckpt").symlink_to("gone.ckpt")
    with pytest.raises(ValueError, match="not a checkpoint pointer"):
        io.load_checkpoint(tmp_path / "other.ckpt")
