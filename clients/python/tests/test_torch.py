"""engram.torch with real torch: a training state captured and restored
bit-exactly (weights, Adam's moments, the schedule, every generator), a
state that does not fit refused before anything is loaded, nothing ever
unpickled, and examples/python/torch_mlp.py killed with SIGKILL at random
points after saves, started again, ending bit-identical to a run that was
never interrupted (real processes, a real `engram serve`)."""

from __future__ import annotations

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
import torch
from torch import nn

import engram
import engram.torch
from engram.pack import pack

from test_client import ROOT, Server, server  # noqa: F401  (the fixture)
from test_example import learners, wait_for

EXAMPLE = ROOT / "examples/python/torch_mlp.py"


def build(hidden: int = 16) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    return model, opt, sched


def train(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, data: torch.Generator, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        x = torch.randn(8, 4, generator=data)
        # Every global generator is drawn from, so each must come back.
        noise = float(np.random.rand()) + random.random()
        loss = ((model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean() * (1 + 1e-6 * noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_captured_state_restores_bit_exactly_and_every_stream_continues() -> None:
    torch.manual_seed(1)
    model, opt, sched = build()
    data = torch.Generator().manual_seed(2)
    train(model, opt, sched, data, 7)
    state = engram.torch.capture(modules={"model": model}, optimizers={"opt": opt}, schedulers={"sched": sched}, generators={"data": data}, extra={"step": 7, "note": "after seven"})
    want = train(model, opt, sched, data, 9)

    torch.manual_seed(99)  # other weights, another stream: all of it is put back
    other, other_opt, other_sched = build()
    other_data = torch.Generator().manual_seed(3)
    extra = engram.torch.restore(state, modules={"model": other}, optimizers={"opt": other_opt}, schedulers={"sched": other_sched}, generators={"data": other_data})
    assert extra == {"step": 7, "note": "after seven"}
    assert other_sched.get_last_lr() == pytest.approx([1e-2 * 0.5])
    got = train(other, other_opt, other_sched, other_data, 9)
    assert got == want, "the losses after the restore are those of the run that went on"
    assert same_weights(model, other)
    for (pa, sa), (pb, sb) in zip(opt.state_dict()["state"].items(), other_opt.state_dict()["state"].items()):
        assert pa == pb and torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"]) and torch.equal(sa["step"], sb["step"])


def test_an_amp_grad_scaler_comes_back_with_its_scale_and_tracker() -> None:
    def scaled(steps: int) -> tuple[nn.Module, torch.optim.Optimizer, torch.amp.GradScaler]:
        torch.manual_seed(8)
        m = nn.Linear(2, 1)
        o = torch.optim.SGD(m.parameters(), lr=0.1)
        sc = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
        for _ in range(steps):
            loss = m(torch.randn(4, 2)).sum()
            o.zero_grad()
            sc.scale(loss).backward()
            sc.step(o)
            sc.update()
        return m, o, sc

    m, o, sc = scaled(3)
    state = engram.torch.capture(modules={"m": m}, optimizers={"o": o}, scaler=sc)
    m2, o2, sc2 = scaled(0)
    engram.torch.restore(state, modules={"m": m2}, optimizers={"o": o2}, scaler=sc2)
    assert sc2.state_dict() == sc.state_dict() and sc.get_scale() != 1024.0
    with pytest.raises(engram.torch.StateMismatch, match="scaler: in the state but not given"):
        engram.torch.restore(state, modules={"m": m2}, optimizers={"o": o2})


def test_dtypes_numpy_lacks_and_plain_values_round_trip() -> None:
    m = nn.Linear(3, 2).to(torch.bfloat16)
    m2 = nn.Linear(3, 2).to(torch.bfloat16)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.5, -2.25, 3.0e-3], [float("inf"), -0.0, 7.0]], dtype=torch.bfloat16))
    extra = {"epoch": 3, "pos": (1, 2), "lr": [0.1, 1e-300], "name": "x", "flag": True, "none": None, "arr": np.arange(5, dtype=np.uint16), "t": torch.tensor([1, 2], dtype=torch.int64)}
    out = engram.torch.restore(engram.torch.capture(modules={"m": m}, extra=extra, global_generators=False), modules={"m": m2}, global_generators=False)
    assert m2.weight.dtype == torch.bfloat16 and torch.equal(m.weight.view(torch.int16), m2.weight.view(torch.int16))
    assert out["pos"] == (1, 2) and out["lr"] == [0.1, 1e-300] and out["flag"] is True and out["none"] is None
    assert out["arr"].dtype == np.uint16 and out["arr"].tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(out["t"], torch.tensor([1, 2]))


def test_a_state_that_does_not_fit_is_refused_by_name_and_nothing_is_loaded() -> None:
    torch.manual_seed(4)
    model, opt, sched = build(hidden=16)
    train(model, opt, sched, torch.Generator().manual_seed(5), 3)
    state = engram.torch.capture(modules={"model": model}, optimizers={"opt": opt})

    torch.manual_seed(6)
    wider, wider_opt, _ = build(hidden=32)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(engram.torch.StateMismatch) as e:
        engram.torch.restore(state, modules={"model": wider}, optimizers={"opt": wider_opt})
    assert "'0.weight' has shape (16, 4) in the state, (32, 4) in the module" in str(e.value)
    assert "nothing was loaded" in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items()), "the module is unchanged"
    assert wider_opt.state_dict()["state"] == {}, "the optimizer is unchanged"

    model_again = build()[0]
    assert isinstance(model_again, nn.Sequential)
    extra_layer = nn.Sequential(*model_again, nn.Linear(1, 1))
    with pytest.raises(engram.torch.StateMismatch, match=r"'4.weight' is missing from the state"):
        engram.torch.restore(state, modules={"model": extra_layer}, global_generators=False)
    with pytest.raises(engram.torch.StateMismatch, match=r"optimizers: 'opt' is in the state but was not given"):
        engram.torch.restore(state, modules={"model": build()[0]})
    with pytest.raises(engram.torch.StateMismatch, match=r"modules: 'actor' was given but is not in the state"):
        engram.torch.restore(state, modules={"model": build()[0], "actor": build()[0]}, optimizers={"opt": build()[1]})


def test_what_is_not_plain_data_is_refused_at_capture_by_its_path() -> None:
    with pytest.raises(TypeError, match=r"extra/schedule: a builtins.function is not plain data"):
        engram.torch.capture(extra={"schedule": lambda step: 0.1}, global_generators=False)
    with pytest.raises(TypeError, match=r"extra/keys: a key of type tuple"):
        engram.torch.capture(extra={"keys": {(1, 2): 3}}, global_generators=False)


class _Boom:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.write_text, (self.marker, "code ran"))


def test_a_state_is_never_unpickled_and_a_crafted_one_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    model = build()[0]
    for hostile in (pickle.dumps(_Boom(marker)), _torch_save_bytes({"w": _Boom(marker)})):
        with pytest.raises(ValueError, match="not an engram.pack buffer"):
            engram.torch.restore(hostile, modules={"model": model}, global_generators=False)
    # An engram.pack buffer that is not a training state, and one whose
    # reference points nowhere.
    with pytest.raises(ValueError, match="not an engram.torch state"):
        engram.torch.restore(pack({"q": np.zeros(3)}), global_generators=False)
    broken = pack({"engram.torch": {"version": 1, "modules": {}, "extra": {"$d": [["w", {"$t": "nowhere", "dtype": "float32"}]]}}})
    with pytest.raises(ValueError, match="array 'nowhere' is missing"):
        engram.torch.restore(broken, global_generators=False)
    assert not marker.exists(), "nothing in a state may run code"


def _torch_save_bytes(obj: object) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def saved_step(server: Server, name: str) -> int:  # noqa: F811
    """The step of the learner's last save (0: none, or not attached yet)."""
    for entry in learners(server):
        if entry["name"] == name:
            return int((entry.get("live") or {}).get("step") or 0)
    return 0


def run_example(data_dir: Path, name: str, steps: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "clients/python/src")}
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--name", name, "--steps", str(steps), "--save-every", "25", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_the_example_killed_three_times_ends_bit_identical_to_an_uninterrupted_run(server: Server) -> None:  # noqa: F811
    steps = 1500
    t0 = time.monotonic()
    ref = run_example(server.data_dir, "uninterrupted", steps)
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    want = out.strip()
    print(f"uninterrupted: {time.monotonic() - t0:.1f} s")

    rnd = random.Random(2026)
    kills: list[int] = []
    for _ in range(3):
        saved_before = saved_step(server, "killed")
        p = run_example(server.data_dir, "killed", steps)
        # Once this process has saved anew (it is training), at a random moment.
        wait_for("a save by this process", lambda: saved_step(server, "killed") > saved_before or p.poll() is not None)
        time.sleep(rnd.uniform(0.0, 0.5))
        assert p.poll() is None, f"it finished before it could be killed: {p.communicate()}"
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        kills.append(saved_step(server, "killed"))
    last = run_example(server.data_dir, "killed", steps)
    out, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    print(f"killed after the saves of steps {kills} (of {steps}), resumed each time")
    assert len(set(kills)) == 3 and 0 < min(kills) and max(kills) < steps, kills
    assert out.strip() == want, "the resumed run ends where the uninterrupted one did"
    a = engram.attach("uninterrupted", data_dir=server.data_dir).resume()
    b = engram.attach("killed", data_dir=server.data_dir).resume()
    assert a is not None and a == b, "Engram holds the same final state, byte for byte"
