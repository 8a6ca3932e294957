"""The spool: a learner's saves made while Engram was not running, kept
durably in the data directory (`spool/<learner>/<seq>.state` + `.json`,
the JSON written last) until Engram takes them in at its start, or this
client sends them, oldest first, before its next save that reaches it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .errors import EngramError
from .files import sync_dir, write_durably
from .saved import SavedState

__all__ = ["Spool"]


class Spool:
    """The spool half of a run (a mixin of :class:`engram.run.Run`)."""

    name: str
    format: str | None
    generation: int | None
    data_dir: Path | None
    _spool_maybe: bool

    def _upload(
        self, state: bytes, step: int | None, metrics: dict[str, float], generation: int | None = None
    ) -> SavedState:
        raise NotImplementedError

    def _spool_dir(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "spool" / self.name

    def _spooled(self) -> list[Path]:
        """This learner's complete spooled saves (JSON present), oldest first."""
        if self.data_dir is None:
            return []
        d = self._spool_dir()
        if not d.is_dir():
            return []
        return sorted(p for p in d.glob("*.json") if len(p.stem) == 20 and p.stem.isdigit())

    def _spool(self, state: bytes, step: int | None, metrics: dict[str, float]) -> SavedState:
        self._spool_maybe = True
        d = self._spool_dir()
        d.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem) for p in d.glob("*.state") if p.stem.isdigit()]
        seq = max([time.time_ns(), *(n + 1 for n in existing)])
        now = int(time.time() * 1000)
        meta: dict[str, Any] = {"format": self.format, "step": step, "metrics": metrics, "at_ms": now}
        if self.format is None:
            del meta["format"]
        if self.generation is not None:
            meta["generation"] = self.generation
        write_durably(d / f"{seq:020d}.state", state)
        write_durably(d / f"{seq:020d}.json", json.dumps(meta).encode())  # the commit marker, last
        sync_dir(d)
        return SavedState("", len(state), step, metrics, now, spooled=True)

    def _replay_spool(self) -> None:
        """Sends spooled saves, oldest first, each removed once Engram has it."""
        if not self._spool_maybe:
            return
        for meta_path in self._spooled():
            state_path = meta_path.with_suffix(".state")
            try:
                meta = json.loads(meta_path.read_bytes())
                state = state_path.read_bytes()
            except FileNotFoundError:
                continue  # Engram took it in at its start meanwhile
            try:
                self._upload(state, meta.get("step"), dict(meta.get("metrics") or {}), meta.get("generation"))
            except EngramError as e:
                if e.code != "stale_state":
                    raise
                # Of a line the learner was restored away from: dropped.
            meta_path.unlink(missing_ok=True)
            state_path.unlink(missing_ok=True)
        self._spool_maybe = False

