"""A small PyTorch model keeping its whole training state in Engram.

An MLP with dropout, trained by Adam under a step learning-rate schedule on
batches drawn from its own `torch.Generator`. Every `--save-every` steps
`engram.torch.save` packs the model, the optimizer's moments, the
schedule, the data generator, torch's, numpy's and Python's global
generators and the step, and keeps it in Engram (durable when it returns).
A restart — after a crash, a kill -9, a reboot — resumes from the last save
and ends bit-identical to a run that was never interrupted; a restore from
Engram's timeline rolls it back the same way (`run.restored()`).

    python3 examples/python/torch_mlp.py --name mlp --steps 600

Prints the final state's SHA-256 (weights, optimizer state, step), so two
runs can be compared. One CPU thread, so every sum is taken in the same
order. Needs torch and numpy, and the client (`pip install ./clients/python`).
"""

from __future__ import annotations

import argparse
import hashlib
import random

import numpy as np
import torch
from torch import nn

import engram
import engram.torch


def digest(model: nn.Module, opt: torch.optim.Optimizer, step: int) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode() + v.numpy().tobytes())
    for pid, st in sorted(opt.state_dict()["state"].items()):
        for k, v in sorted(st.items()):
            h.update(f"{pid}/{k}".encode() + (v.numpy().tobytes() if isinstance(v, torch.Tensor) else repr(v).encode()))
    h.update(str(step).encode())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", default="torch-mlp")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args()

    torch.set_num_threads(1)
    # Every generator seeded (torch's draws the initial weights and dropout's
    # masks; numpy's and Python's are kept too, so the state is the same bytes).
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=150, gamma=0.5)
    data = torch.Generator().manual_seed(a.seed + 1)
    parts = {"modules": {"model": model}, "optimizers": {"opt": opt}, "schedulers": {"sched": sched}, "generators": {"data": data}}

    run = engram.attach(
        a.name,
        format=engram.torch.FORMAT,
        metrics={"loss": {"label": "Training loss", "format": "decimal", "higher_is_better": False}},
        data_dir=a.data_dir,
    )
    state = run.resume()
    step = 0 if state is None else int(engram.torch.restore(state, **parts)["step"])

    model.train()
    while step < a.steps:
        r = run.restored()
        if r is not None:
            step = int(engram.torch.restore(r[0], **parts)["step"])
            continue
        x = torch.randn(32, 8, generator=data)
        y = torch.sin(x.sum(dim=1, keepdim=True)) + 0.1 * torch.randn(32, 1, generator=data)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        run.log({"loss": loss.item()}, step=step)
        if step % a.save_every == 0 or step == a.steps:
            try:
                # capture + run.save, the tensors written into Engram's slot as they are.
                engram.torch.save(run, **parts, extra={"step": step}, step=step, metrics={"loss": loss.item()})
            except engram.EngramError as e:
                if e.code != "stale_state":
                    raise
                continue  # restored meanwhile: run.restored() has the state to go on from
            if run.stop_requested:
                break
    run.close()
    print(digest(model, opt, step))


if __name__ == "__main__":
    main()
