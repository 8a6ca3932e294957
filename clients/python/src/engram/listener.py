"""What Engram tells a running learner: restores of it from the timeline
and requests to stop (from the event stream, in a background thread that
reconnects with backoff), and SIGTERM when Engram supervises it."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.parse
import urllib.request
from typing import Any, Callable, Mapping

from .errors import EngramError

__all__ = ["Listener"]


class Listener:
    """The listening half of a run (a mixin of :class:`engram.run.Run`)."""

    name: str
    base: str
    token: str
    generation: int | None
    _attached: bool
    _lock: threading.Lock
    _listener: threading.Thread | None
    _on_restore: Callable[[bytes | None, int | None], None] | None
    _pending_restore: tuple[bytes, int | None, int] | None
    _closed: threading.Event
    _stop: threading.Event

    def _json(self, method: str, path: str, payload: Any | None = None) -> Any:
        raise NotImplementedError

    def _request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[bytes, Mapping[str, str]]:
        raise NotImplementedError

    def _route(self, op: str) -> tuple[str, str]:
        raise NotImplementedError

    def _call(self, op: str, payload: Any | None = None, query: str = "") -> Any:
        raise NotImplementedError

    def on_restore(self, callback: Callable[[bytes | None, int | None], None] | None = None) -> None:
        """Listens (in a background thread) for restores of this learner
        from the timeline — in the UI, the CLI or the API. Each one is kept
        for :meth:`restored`, which the training loop calls to take it; if
        given, `callback(state, step)` is also called (in the listener's
        thread) as a notification. The listener reconnects with backoff if
        Engram restarts.

        Until the run takes the restored state (:meth:`restored` or
        :meth:`resume`), its saves are refused with ``stale_state``: a state
        of the line the user restored away from never overwrites the
        restore."""
        if self._on_restore is not None:
            raise EngramError("invalid_input", "on_restore is already set for this run")
        self._on_restore = callback
        self._listen()

    @property
    def stop_requested(self) -> bool:
        """True once the user asked this learner to stop — the UI's "Ask to
        stop", ``engram learners stop NAME`` or the API — when it runs
        outside Engram; and, when Engram runs it, once Engram stops it (its
        SIGTERM; Engram sends SIGKILL 5 s later); and once the user deleted
        the learner (its saves are refused from then on, ``not_found``).
        Check it in the training
        loop; save and return when it turns true. The first
        check asks Engram once and starts listening (see :meth:`on_restore`);
        later ones only read a flag. Engram keeps the request until the
        learner attaches again (its next run)."""
        if self._listener is None:
            self._listen()
            self._check_stop_request()
            self._stop_on_sigterm()
        return self._stop.is_set()

    def _stop_on_sigterm(self) -> None:
        """When Engram runs this learner (its supervisor names it in
        ``ENGRAM_LEARNER``), Engram stops it with SIGTERM — SIGKILL 5 s
        later. A loop that checks :attr:`stop_requested` may then save and
        leave instead of dying mid-step: SIGTERM turns it true. Only from the
        main thread, and only if nothing else handles SIGTERM already."""
        if os.environ.get("ENGRAM_LEARNER") != self.name:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, lambda _signum, _frame: self._stop.set())

    def _check_stop_request(self) -> None:
        """Reads whether a stop is asked, or the learner was deleted since
        this run attached (best effort: unreachable is no)."""
        try:
            if self._call("learner").get("stop_requested_at_ms") is not None:
                self._stop.set()
        except EngramError as e:
            if e.code == "not_found" and self._attached:
                self._stop.set()

    def _listen(self) -> None:
        """Starts the listener thread (once): restores and stop requests of
        this learner, from the event stream; it reconnects with backoff."""
        if self._listener is not None:
            return

        def listen() -> None:
            delay = 0.5
            while not self._closed.is_set():
                try:
                    url = f"{self.base}{self._route('events')[1]}?token={urllib.parse.quote(self.token)}"
                    with urllib.request.urlopen(url, timeout=60) as stream:
                        delay = 0.5
                        # Asked while this run was not listening (before it
                        # started, or while Engram restarted)?
                        self._check_stop_request()
                        for line in stream:
                            if self._closed.is_set():
                                return
                            if not line.startswith(b"data:"):
                                continue
                            event = json.loads(line[5:])
                            kind = event.get("type")
                            if kind == "restored" and self.name in event.get("engines", []):
                                self._take_restore_event()
                            elif (
                                kind in ("learner_stop_requested", "learner_removed")
                                and event.get("learner") == self.name
                            ):
                                self._stop.set()
                except Exception:  # noqa: BLE001 — the listener must never die
                    self._closed.wait(delay)
                    delay = min(delay * 2, 30.0)

        self._listener = threading.Thread(target=listen, name=f"engram-listen-{self.name}", daemon=True)
        self._listener.start()

    def _take_restore_event(self) -> None:
        """Reads the restored state (not yet taken: the generation stays)."""
        raw, headers = self._request(*self._route("read_learner_state"))
        h = {k.lower(): v for k, v in headers.items()}
        step = h.get("x-engram-step")
        pending = (raw, None if step is None else int(step), int(h.get("x-engram-generation", "0")))
        with self._lock:
            self._pending_restore = pending
        if self._on_restore is not None:
            self._on_restore(pending[0], pending[1])

    def restored(self) -> tuple[bytes, int | None] | None:
        """The state (and step) of a restore of this learner from the
        timeline that this run has not taken yet, or None. Call it in the
        training loop (each step or episode) and continue from what it
        returns: from then on, saves continue the restored line. Starts
        listening on the first call (see :meth:`on_restore`)."""
        self._listen()
        with self._lock:
            pending, self._pending_restore = self._pending_restore, None
        if pending is None:
            return None
        state, step, generation = pending
        self.generation = generation
        return state, step

