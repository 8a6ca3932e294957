"""What Engram says of a stored state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["SavedState"]


@dataclass(frozen=True)
class SavedState:
    """What Engram says of a stored state. `spooled`: Engram was not
    reachable; the state is durable in the data directory's spool (no
    checksum yet) and reaches Engram later."""

    checksum: str
    size: int
    step: int | None
    metrics: dict[str, float]
    saved_at_ms: int
    spooled: bool = False


def saved_state(j: Mapping[str, Any]) -> SavedState:
    return SavedState(
        checksum=str(j["checksum"]),
        size=int(j["size"]),
        step=None if j.get("step") is None else int(j["step"]),
        metrics={str(k): float(v) for k, v in dict(j.get("metrics") or {}).items()},
        saved_at_ms=int(j["saved_at_ms"]),
    )
