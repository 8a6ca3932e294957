"""A PyTorch training state saved through `engram.torch` beside `torch.save`,
side by side in one run (BENCHMARKS.md, "PyTorch: engram.torch"):

- `engram.torch.save(run, ...)`: the model, Adam's two moments per
  parameter and every generator packed and saved durably through the
  client, each tensor's memory written into the slot Engram lent as it is
  (then fdatasync and the commit, by Engram);
- `run.save(engram.torch.capture(...))`: the same, joined into one bytes
  object first (one copy);
- `torch.save` of the same model and optimizer state dicts to a file, then
  fsync (what a PyTorch user does today; pickle inside);
- also `engram.torch.capture` alone (the packing), and `restore` alone;
- the training step's time while saves run every 20 steps against none
  (p50/p99 of a step of a small model beside the big state's saves).

The two saves take turns, one of each per round, 7 rounds after a
warm-up; medians and the ratio.

    python3 bench/torch_save.py [ENGRAM_BIN]   (default target/release/engram)
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients/python/src"))
import engram  # noqa: E402
from serving import start_serve, stop_serve  # noqa: E402
import engram.torch  # noqa: E402


def main() -> None:
    binary = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/release/engram"
    torch.manual_seed(0)
    # ~33 MB of weights (8.4 M float32); Adam adds two moments: ~100 MB in all.
    model = nn.Sequential(*[nn.Linear(1024, 1024) for _ in range(8)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 1024)).sum().backward()
    opt.step()  # the moments exist
    parts = {"modules": {"model": model}, "optimizers": {"opt": opt}}
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters()) * 3
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server = start_serve(binary, data)
        try:
            run = engram.attach("bench-torch", format=engram.torch.FORMAT, data_dir=data)
            file = Path(tmp) / "ckpt.pt"

            def through_engram() -> float:
                t = time.perf_counter()
                engram.torch.save(run, **parts, extra={"step": 1}, step=1)
                return time.perf_counter() - t

            def joined_first() -> float:
                t = time.perf_counter()
                run.save(engram.torch.capture(**parts, extra={"step": 1}), step=1)
                return time.perf_counter() - t

            def torch_save() -> float:
                t = time.perf_counter()
                with open(file, "wb") as f:
                    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, f)
                    f.flush()
                    os.fsync(f.fileno())
                return time.perf_counter() - t

            through_engram(), torch_save(), joined_first()  # warm-up: the slot and the file exist
            ours, theirs, joined, packing, restoring = [], [], [], [], []
            def changed() -> None:
                # Every save is of new bytes, as in training (outside the timing).
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(1e-3)

            for _ in range(7):
                changed()
                ours.append(through_engram())
                changed()
                theirs.append(torch_save())
                changed()
                joined.append(joined_first())
                t = time.perf_counter()
                state = engram.torch.capture(**parts, extra={"step": 1})
                packing.append(time.perf_counter() - t)
                t = time.perf_counter()
                engram.torch.restore(state, **parts)
                restoring.append(time.perf_counter() - t)
            pickled = io.BytesIO()
            torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, pickled)

            # A small model's training step, with and without the big state
            # saved every 20 steps (the save runs in the training loop, as
            # the example does: the step that saves takes the save's time).
            small = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
            sopt = torch.optim.Adam(small.parameters())

            def steps(save_every: int | None, n: int = 200) -> list[float]:
                out = []
                for i in range(n):
                    t = time.perf_counter()
                    loss = small(torch.randn(32, 64)).pow(2).mean()
                    sopt.zero_grad()
                    loss.backward()
                    sopt.step()
                    if save_every and i % save_every == save_every - 1:
                        changed()
                        engram.torch.save(run, **parts, extra={"step": i}, step=i)
                    out.append(time.perf_counter() - t)
                return out

            quiet, saving = steps(None), steps(20)
        finally:
            stop_serve(server)
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    p99 = lambda xs: sorted(xs)[int(len(xs) * 0.99) - 1] * 1000  # noqa: E731
    print(f"state: {nbytes / 1e6:.0f} MB of tensors (model + Adam moments); torch.save's file {pickled.tell() / 1e6:.0f} MB; engram.torch's buffer {len(state) / 1e6:.0f} MB")
    print("| save (median of 7, in turns) | ms | MB/s |")
    print("|---|---:|---:|")
    print(f"| `engram.torch.save(run, ...)` | {ms(ours):.0f} | {nbytes / 1e6 / (ms(ours) / 1000):.0f} |")
    print(f"| `torch.save` to a file + fsync | {ms(theirs):.0f} | {nbytes / 1e6 / (ms(theirs) / 1000):.0f} |")
    print(f"| ratio | **{ms(ours) / ms(theirs):.2f}×** | |")
    print(f"| `run.save(engram.torch.capture(...))` (joined first) | {ms(joined):.0f} | {nbytes / 1e6 / (ms(joined) / 1000):.0f} |")
    print(f"| `engram.torch.capture` alone (packing) | {ms(packing):.0f} | |")
    print(f"| `engram.torch.restore` alone | {ms(restoring):.0f} | |")
    print(f"training step (small model), p50 / p99: no saves {ms(quiet):.2f} / {p99(quiet):.2f} ms; a ~100 MB save every 20 steps {ms(saving):.2f} / {p99(saving):.2f} ms")


if __name__ == "__main__":
    main()
