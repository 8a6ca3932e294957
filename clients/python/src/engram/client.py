"""The learner client: attach to the Engram that serves a data directory,
resume from the newest durable state, save states (durable when `save`
returns), and log metrics without ever blocking or raising into training.

Standard library only. Finds Engram without configuration: the data
directory (`$ENGRAM_DATA_DIR`, else `$XDG_DATA_HOME/engram`, else
`~/.local/share/engram`) holds the port `engram serve` last used
(`serve.port`) and the owner-only access token (`access.token`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["EngramError", "Run", "SavedState", "attach", "default_data_dir"]


class EngramError(Exception):
    """An error from Engram: `code` is the API's stable error code
    (`not_found`, `invalid_input`, `unauthorized`, `unreachable`, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SavedState:
    """What Engram says of a stored state."""

    checksum: str
    size: int
    step: int | None
    metrics: dict[str, float]
    saved_at_ms: int


def default_data_dir() -> Path:
    """The data directory Engram uses when none is given (as the core does)."""
    d = os.environ.get("ENGRAM_DATA_DIR")
    if d:
        return Path(d)
    x = os.environ.get("XDG_DATA_HOME")
    if x:
        return Path(x) / "engram"
    return Path.home() / ".local/share/engram"


def _discover(data_dir: Path) -> tuple[str, str]:
    try:
        port = int((data_dir / "serve.port").read_text().strip())
        token = (data_dir / "access.token").read_text().strip()
    except (OSError, ValueError) as e:
        raise EngramError(
            "unreachable",
            f"no running Engram found for {data_dir} (start `engram serve`): {e}",
        ) from e
    return f"http://127.0.0.1:{port}", token


def _state(j: Mapping[str, Any]) -> SavedState:
    return SavedState(
        checksum=str(j["checksum"]),
        size=int(j["size"]),
        step=None if j.get("step") is None else int(j["step"]),
        metrics={str(k): float(v) for k, v in dict(j.get("metrics") or {}).items()},
        saved_at_ms=int(j["saved_at_ms"]),
    )


@dataclass
class Run:
    """One attached learner. Create it with :func:`attach`."""

    name: str
    base: str
    token: str
    format: str = "raw"
    timeout: float = 600.0
    _points: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _dropped: int = field(default=0, repr=False)
    _listener: threading.Thread | None = field(default=None, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    # -- HTTP ----------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[bytes, Mapping[str, str]]:
        req = urllib.request.Request(self.base + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                return res.read(), dict(res.headers.items())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                j = json.loads(raw)
                raise EngramError(str(j["code"]), str(j["message"])) from None
            except (ValueError, KeyError, TypeError):
                raise EngramError(f"http_{e.code}", raw.decode("utf-8", "replace")) from None
        except (urllib.error.URLError, OSError) as e:
            raise EngramError("unreachable", f"Engram at {self.base} is not reachable: {e}") from e

    def _json(self, method: str, path: str, payload: Any | None = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        raw, _ = self._request(method, path, body)
        return json.loads(raw)

    def _path(self, suffix: str = "") -> str:
        return f"/api/learners/{urllib.parse.quote(self.name, safe='')}{suffix}"

    # -- the learner's calls ---------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The learner as Engram knows it (name, format, live state)."""
        result: dict[str, Any] = self._json("GET", self._path())
        return result

    def resume(self, backup: int | None = None) -> bytes | None:
        """The newest durable state's bytes (or a backup's), or None before
        the first save. The bytes are checked against their checksum by
        Engram before they are sent."""
        q = "" if backup is None else f"?backup={backup}"
        try:
            raw, _ = self._request("GET", self._path("/state") + q)
        except EngramError as e:
            if e.code == "not_found" and backup is None:
                return None
            raise
        return raw

    def save(
        self,
        state: bytes,
        step: int | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> SavedState:
        """Saves `state`; it is durable (on disk, in the timeline's next cut)
        when this returns. Raises :class:`EngramError` when it is not."""
        self.flush()  # best effort: logged points first, in order
        q: dict[str, str] = {}
        if step is not None:
            q["step"] = str(int(step))
        if metrics:
            q["metrics"] = json.dumps({k: float(v) for k, v in metrics.items()})
        suffix = "/state" + ("?" + urllib.parse.urlencode(q) if q else "")
        raw, _ = self._request("PUT", self._path(suffix), bytes(state), "application/octet-stream")
        return _state(json.loads(raw))

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffers metrics at this instant; :meth:`flush` (or the next save)
        sends them. Never blocks on the network and never raises."""
        try:
            point = {
                "step": None if step is None else int(step),
                "at_ms": int(time.time() * 1000),
                "metrics": {str(k): float(v) for k, v in metrics.items()},
            }
        except (TypeError, ValueError):
            self._dropped += 1
            return
        with self._lock:
            if len(self._points) >= 100_000:
                # Bounded: the oldest go first when Engram is away for long.
                del self._points[:10_000]
                self._dropped += 10_000
            self._points.append(point)

    def flush(self) -> int:
        """Sends the buffered metrics; returns how many were stored. A failure
        keeps them buffered for the next call and is not raised."""
        with self._lock:
            points, self._points = self._points, []
        sent = 0
        while points:
            batch = points[:10_000]
            try:
                self._json("POST", self._path("/metrics"), {"points": batch})
            except EngramError:
                with self._lock:
                    self._points = points + self._points
                return sent
            points = points[10_000:]
            sent += len(batch)
        return sent

    def on_restore(self, callback: Callable[[bytes | None, int | None], None]) -> None:
        """Calls `callback(state, step)` — in a background thread — whenever
        this learner is restored from the timeline (in the UI, the CLI or the
        API), with the restored state's bytes and step. Continue training from
        them. The listener reconnects with backoff if Engram restarts."""
        if self._listener is not None:
            raise EngramError("invalid_input", "on_restore is already set for this run")

        def listen() -> None:
            delay = 0.5
            while not self._closed.is_set():
                try:
                    url = f"{self.base}/api/events?token={urllib.parse.quote(self.token)}"
                    with urllib.request.urlopen(url, timeout=60) as stream:
                        delay = 0.5
                        for line in stream:
                            if self._closed.is_set():
                                return
                            if not line.startswith(b"data:"):
                                continue
                            event = json.loads(line[5:])
                            if event.get("type") == "restored" and self.name in event.get("engines", []):
                                state = self.resume()
                                info = self.info().get("live") or {}
                                step = info.get("step")
                                callback(state, None if step is None else int(step))
                except Exception:  # noqa: BLE001 — the listener must never die
                    self._closed.wait(delay)
                    delay = min(delay * 2, 30.0)

        self._listener = threading.Thread(target=listen, name=f"engram-restore-{self.name}", daemon=True)
        self._listener.start()

    def close(self) -> None:
        """Sends buffered metrics and stops listening for restores."""
        self._closed.set()
        self.flush()

    @property
    def dropped(self) -> int:
        """Points dropped: not numbers, or the buffer overflowed."""
        return self._dropped


def attach(
    name: str,
    *,
    format: str = "raw",
    data_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    token: str | None = None,
    timeout: float = 600.0,
) -> Run:
    """Attaches learner `name` to the Engram serving `data_dir` (found
    through its files), or at `url` with `token`. Attaching again is safe:
    it finds the same learner and what it resumes from. `format` names how
    your state bytes are laid out (kept with them; a different format for an
    existing name is refused)."""
    if url is None or token is None:
        found_url, found_token = _discover(Path(data_dir) if data_dir else default_data_dir())
        url = url or found_url
        token = token or found_token
    run = Run(name=name, base=url.rstrip("/"), token=token, format=format, timeout=timeout)
    run._json("POST", "/api/learners", {"name": name, "format": format})
    return run
