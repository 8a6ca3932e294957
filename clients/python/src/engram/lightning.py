"""Lightning's checkpoints kept in Engram: a `CheckpointIO` plug-in.

    import engram, engram.lightning
    from lightning.pytorch import Trainer, seed_everything
    from lightning.pytorch.callbacks import ModelCheckpoint

    seed_everything(0)
    run = engram.attach("lit-model", format=engram.lightning.FORMAT)
    trainer = Trainer(max_epochs=20, plugins=[engram.lightning.EngramCheckpointIO(run)],
                      callbacks=[ModelCheckpoint(dirpath="ckpt", save_last=True)])
    trainer.fit(model, data, ckpt_path="last")   # resumes from Engram after a crash

How names map: every checkpoint Lightning saves becomes the learner's
live state in Engram (`Run.save`, durable when it returns; the timeline's
backups keep earlier ones), and the file Lightning names (`ckpt/last.ckpt`,
`ckpt/epoch=3-step=40.ckpt`) holds only a small pointer: the learner, the
global step and the state's SHA-256. Lightning finds `last` by those files,
as always. Loading a pointer reads the learner's live state and checks it
is the one the pointer names (a pointer to an older checkpoint says so:
restore that backup from Engram's timeline first). Removing a checkpoint
(`save_top_k`) removes only its pointer: Engram never deletes a state a
backup holds.

What a state holds: Lightning's whole checkpoint (weights, optimizer and
scheduler states, loop progress, callbacks' states) packed as
`engram.torch` packs a training state — tensors as arrays, the rest plain
data, never unpickled — and torch's, numpy's and Python's global
generators, which Lightning's own checkpoints leave out and which are
put back when it is loaded, so a fit resumed at an epoch boundary goes on
exactly (dropout, shuffling from the global generator). Mid-epoch
checkpoints resume the loop's counters but Lightning restarts the epoch's
data from its start: not exact.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .pack import pack_parts, unpack
from .torch import _capture_global, _decode, _encode, _restore_global

__all__ = ["FORMAT", "EngramCheckpointIO"]

#: The state format to declare at `engram.attach(..., format=FORMAT)`.
FORMAT = "engram.lightning/1"

_POINTER = "engram.lightning pointer"


def _read_pointer(path: Path) -> dict[str, Any] | None:
    try:
        pointer = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return pointer if isinstance(pointer, dict) and pointer.get(_POINTER) == 1 else None


def _pointer_to_live(target: Path, learner: str, live: str, pointer: dict[str, Any]) -> dict[str, Any] | None:
    """The pointer a kill kept from replacing `target`'s, if the live state is
    its state: put in place and returned. None when there is none.

    A kill can fall between a save reaching Engram and its pointer being
    put in place — the new pointer is then aside (`.NAME.PID.tmp`). And
    Lightning saves an epoch's checkpoint twice (`epoch=…-step=….ckpt`, then
    `last.ckpt`): a kill between the two leaves `last.ckpt` naming the
    previous epoch while the live state is the newer checkpoint its sibling
    names (with `save_last="link"`, a dangling `last.ckpt` link). Asked for
    `last`, the newest checkpoint is meant: a sibling pointer of a later
    step (any step, for a dangling link) naming the live state is taken. A
    checkpoint named by its own name is never swapped for another one."""
    candidates = sorted(target.parent.glob(f".{target.name}.*.tmp"))
    is_last = target.name.startswith("last")
    if is_last:
        candidates += sorted(p for p in target.parent.glob("*.ckpt") if p != target)
        candidates += sorted(p for p in target.parent.glob(".*.tmp") if p not in candidates)
    step = pointer.get("step")
    for candidate in candidates:
        newer = _read_pointer(candidate)
        if newer is None or newer.get("learner") != learner or newer.get("sha256") != live:
            continue
        own_aside = candidate.name.startswith(f".{target.name}.")
        # Without a pointer of its own (a dangling link) any sibling naming
        # the live state will do; otherwise only a later one.
        later = step is None or (isinstance(step, int) and isinstance(newer.get("step"), int) and newer["step"] > step)
        if not own_aside and not later:
            continue
        tmp = target.with_name(f".{target.name}.{os.getpid()}.load.tmp")
        tmp.write_text(json.dumps(newer))
        os.replace(tmp, target)
        if own_aside:
            candidate.unlink(missing_ok=True)
        return newer
    return None


def _make_io_base() -> type:
    from lightning.pytorch.plugins.io import CheckpointIO

    return CheckpointIO


class EngramCheckpointIO(_make_io_base()):  # type: ignore[misc]
    """Saves Lightning's checkpoints as the learner's states in Engram;
    the checkpoint files are pointers (see the module's documentation)."""

    def __init__(self, run: Any) -> None:
        super().__init__()
        self.run = run

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        arrays: dict[str, Any] = {}
        tree = {"version": 1, "checkpoint": _encode(checkpoint, "checkpoint", arrays), "global": _capture_global(arrays)}
        parts = pack_parts({"engram.lightning": tree, **arrays})
        digest = hashlib.sha256()
        for p in parts:
            digest.update(p)
        step = int(checkpoint.get("global_step", 0))
        # The new pointer is written aside first and put in place only after
        # the state is durable in Engram: a kill between the two leaves the
        # old pointer in place and this one aside, which a load recognises.
        target = Path(os.fspath(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({_POINTER: 1, "learner": self.run.name, "step": step, "sha256": digest.hexdigest()}))
        self.run.save(parts, step=step)
        os.replace(tmp, target)

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        import torch

        target = Path(os.fspath(path))
        gone: FileNotFoundError | None = None
        try:
            pointer: Any = json.loads(target.read_text())
        except FileNotFoundError as e:
            # `save_last="link"`: killed after the epoch's checkpoint
            # replaced the one `last` links to, before the link was made
            # anew — taken below if a sibling names the live state.
            if not (target.is_symlink() and target.name.startswith("last")):
                raise ValueError(f"{target}: not a checkpoint pointer engram.lightning wrote ({e})") from e
            pointer, gone = {}, e
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"{target}: not a checkpoint pointer engram.lightning wrote ({e})") from e
        if gone is None:
            if not isinstance(pointer, dict) or pointer.get(_POINTER) != 1:
                raise ValueError(f"{target}: not a checkpoint pointer engram.lightning wrote")
            if pointer.get("learner") != self.run.name:
                raise ValueError(f"{target}: a checkpoint of learner {pointer.get('learner')!r}, not of {self.run.name!r}")
        state = self.run.resume()
        live = hashlib.sha256(state).hexdigest() if state is not None else None
        if live is not None and live != pointer.get("sha256"):
            newer = _pointer_to_live(target, self.run.name, live, pointer)
            if newer is not None:
                pointer = newer
        if gone is not None and not pointer:
            raise ValueError(f"{target}: not a checkpoint pointer engram.lightning wrote ({gone})") from gone
        if state is None or live != pointer.get("sha256"):
            raise ValueError(
                f"{target}: the checkpoint of step {pointer.get('step')} is not learner {self.run.name!r}'s live state any more; "
                "restore the backup that holds it from Engram's timeline, then load it"
            )
        items = unpack(state)
        tree = items.get("engram.lightning")
        if not isinstance(tree, dict) or tree.get("version") != 1:
            raise ValueError(f"{target}: learner {self.run.name!r}'s state is not an engram.lightning checkpoint")
        checkpoint: dict[str, Any] = _decode(tree["checkpoint"], items, torch)
        if map_location is not None:
            checkpoint = _to(checkpoint, map_location, torch)
        # Lightning's checkpoint leaves the global generators out: they go
        # back now, before the fit goes on.
        _restore_global(tree["global"], items)
        return checkpoint

    def remove_checkpoint(self, path: Any) -> None:
        # Only the pointer: the states stay in Engram (its backups keep them).
        try:
            Path(os.fspath(path)).unlink()
        except FileNotFoundError:
            pass


def _to(x: Any, where: Any, torch: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(where)
    if isinstance(x, dict):
        return {k: _to(v, where, torch) for k, v in x.items()}
    if isinstance(x, list):
        return [_to(v, where, torch) for v in x]
    if isinstance(x, tuple):
        return tuple(_to(v, where, torch) for v in x)
    return x
