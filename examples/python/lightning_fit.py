"""A Lightning fit keeping its checkpoints in Engram (`engram.lightning`).

A small LightningModule (dropout, Adam, a step schedule) fitted on
shuffled synthetic data; `ModelCheckpoint(save_last=True)` checkpoints at
every epoch's end through `EngramCheckpointIO`, so each checkpoint is the
learner's state in Engram and the files in `--ckpt-dir` are pointers.
Killed and started again, `trainer.fit(..., ckpt_path="last")` resumes
from Engram and ends with the weights of a fit that was never interrupted.

    python3 examples/python/lightning_fit.py --name lit --epochs 8 --ckpt-dir ckpt

Prints the final weights' SHA-256. Needs lightning and torch, and the
client (`pip install lightning ./clients/python`).
"""

from __future__ import annotations

import argparse
import hashlib
import warnings

import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import engram
import engram.lightning


class Regressor(LightningModule):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _i: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> object:
        opt = torch.optim.Adam(self.parameters(), lr=1e-2)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", default="lightning-fit")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--ckpt-dir", default="ckpt")
    p.add_argument("--data-dir", default=None)
    a = p.parse_args()
    warnings.filterwarnings("ignore")  # Lightning's advice on workers and logging

    torch.set_num_threads(1)
    seed_everything(0, verbose=False)
    data = torch.Generator().manual_seed(1)
    x = torch.randn(2048, 8, generator=data)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    # Shuffled by the global generator: a resume is exact only if it is kept.
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    run = engram.attach(a.name, format=engram.lightning.FORMAT, data_dir=a.data_dir)
    trainer = Trainer(
        max_epochs=a.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=a.ckpt_dir,
        plugins=[engram.lightning.EngramCheckpointIO(run)],
        callbacks=[ModelCheckpoint(dirpath=a.ckpt_dir, save_last=True, every_n_epochs=1)],
    )
    model = Regressor()
    trainer.fit(model, loader, ckpt_path="last")
    run.close()
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode() + v.numpy().tobytes())
    print(h.hexdigest())


if __name__ == "__main__":
    main()
