"""The learner client: attach to the Engram that serves a data directory,
resume from the newest durable state, save states (durable when `save`
returns), and log metrics without ever blocking or raising into training.

When Engram is not running, training goes on: a save is spooled durably in
the data directory (see :mod:`engram.spool`) and taken in, in order, when
Engram starts — or sent by this client, oldest first, before its next save
that reaches Engram. A run resumes, meanwhile, from its newest spooled save,
else from the live state the `engram` command reads from the data directory
(checked against its checksum; Engram's tables are Engram's to read).

Standard library only. Finds Engram without configuration: the data
directory (`$ENGRAM_DATA_DIR`, else `$XDG_DATA_HOME/engram`, else
`~/.local/share/engram`) holds the port `engram serve` last used
(`serve.port`) and the owner-only access token (`access.token`).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import EngramError
from .files import start_writeback
from .listener import Listener
from .saved import SavedState, saved_state
from .spool import Spool
from .transport import Transport, default_data_dir, discover

__all__ = ["EngramError", "Run", "SavedState", "attach", "default_data_dir"]


# States up to this size are kept inside Engram's database (one commit, as
# the core's `INLINE_STATE_BYTES`); larger ones are written into a slot
# Engram lends when this process shares its data directory.
INLINE_STATE_BYTES = 128 * 1024
# Up to this size (the core's `MAX_LEARNER_STATE_BYTES`: Engram keeps
# nothing larger) a state is written into a slot Engram lends, instead of
# sent: one copy, into the page cache, and Engram only hashes it and makes
# it durable. Measured side by side (bench/learner_save.py, BENCHMARKS.md):
# the floor (file + fsync) times 1.11-1.20 at 1 MB, 0.50-0.56 at 64 MB and
# 0.47-0.53 at 256 MB lent, against 1.41-1.60, 0.74-0.91 and 0.66-0.75 sent.
LEND_MAX_BYTES = 1 << 30
# A lent state's writeback is started every this many bytes as it is
# written (as Engram's own writer does for a state it is sent).
WRITEBACK_EVERY = 16 << 20

#: What Engram accepts as a metric's name (as for a learner's: 1-64 of
#: a-z, 0-9, ``_`` and ``-``) and how many metrics one point may hold (the
#: core's ``MAX_METRICS``).
_METRIC_NAME = re.compile(r"[a-z0-9_-]{1,64}")
MAX_METRICS_PER_POINT = 1024

#: Refusals a retry cannot turn into a success: the batch is dropped.
_PERMANENT_REFUSALS = frozenset({"not_found", "invalid_input", "too_large"})


@dataclass
class Run(Transport, Spool, Listener):
    """One attached learner. Create it with :func:`attach`."""

    name: str
    base: str
    token: str
    format: str | None = None
    metrics: dict[str, dict[str, Any]] | None = None
    milestones: list[dict[str, Any]] | None = None
    #: The learner's generation this run continues: one more after each
    #: restore of it. Saves name it, so a save from before a restore this run
    #: has not taken is refused (``stale_state``) instead of undoing it.
    generation: int | None = None
    timeout: float = 600.0
    data_dir: Path | None = None
    #: Logged metrics are sent in the background this often (seconds), so
    #: curves move while training runs and a crash loses at most this much;
    #: 0: only by :meth:`flush` and each save.
    flush_every: float = 1.0
    _attached: bool = field(default=False, repr=False)
    _points: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _dropped: int = field(default=0, repr=False)
    _warned: set[str] = field(default_factory=set, repr=False)
    _good_names: set[str] = field(default_factory=set, repr=False)
    _listener: threading.Thread | None = field(default=None, repr=False)
    _on_restore: Callable[[bytes | None, int | None], None] | None = field(default=None, repr=False)
    _pending_restore: tuple[bytes, int | None, int] | None = field(default=None, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _flusher: threading.Thread | None = field(default=None, repr=False)
    _flush_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    # The slot Engram lent for the next large save, and whether lending
    # works here (Engram's data directory is this machine's).
    _lease: dict[str, str] | None = field(default=None, repr=False)
    _lend: bool = field(default=True, repr=False)
    # Whether the spool may hold saves for this learner: at first (an
    # earlier run may have spooled some), and after this run spooled one.
    # Looking costs a directory listing, a tenth of a 1 MB save.
    _spool_maybe: bool = field(default=True, repr=False)

    # -- the learner's calls ---------------------------------------------------

    def _attach(self) -> None:
        if not self._attached:
            body: dict[str, Any] = {"name": self.name}
            if self.format is not None:
                body["format"] = self.format
            if self.metrics:
                body["metrics"] = self.metrics
            if self.milestones:
                body["milestones"] = self.milestones
            info = self._call("attach_learner", body)
            if self.generation is None:
                self.generation = int(info.get("generation", 0))
            self._attached = True

    def info(self) -> dict[str, Any]:
        """The learner as Engram knows it (name, format, live state)."""
        result: dict[str, Any] = self._call("learner")
        return result

    def set_drill(self, target: str | None, timeout: float = 60.0, cwd: str | None = None) -> dict[str, Any]:
        """Has Engram drill this learner's backed-up states with `target`
        (``module:function``, a callback taking the state's bytes and
        returning metrics by name; see :mod:`engram.drill`), in a child
        process killed after `timeout` seconds, in `cwd` (default: the data
        directory). ``None`` removes it. Returns the command as kept."""
        self._attach()
        argv = [] if target is None else [sys.executable, "-m", "engram.drill", target]
        body: dict[str, Any] = {"argv": argv, "timeout_ms": max(1, int(timeout * 1000))}
        if cwd is not None:
            body["cwd"] = os.path.abspath(cwd)
        result: dict[str, Any] = self._call("set_learner_drill", body)
        return result

    def resume(self, backup: int | None = None) -> bytes | None:
        """The newest durable state's bytes (or a backup's), or None before
        the first save. Engram checks the bytes against their checksum
        before it sends them. When Engram cannot be reached, the newest
        spooled save, else the live state read from the data directory
        (unchecked: the client has no blake3)."""
        q = "" if backup is None else f"?backup={backup}"
        try:
            self._attach()
            self._replay_spool()
            method, path = self._route("read_learner_state")
            raw, headers = self._request(method, path + q)
        except EngramError as e:
            if e.code == "not_found" and backup is None:
                # Nothing saved yet: whatever comes next continues from here.
                self.generation = int(self._call("learner").get("generation", 0))
                return None
            if e.code == "unreachable" and backup is None and self.data_dir is not None:
                return self._resume_offline()
            raise
        if backup is None:
            # Continuing from the live state: from its generation (a restore
            # not taken yet is taken with it).
            g = {k.lower(): v for k, v in headers.items()}.get("x-engram-generation")
            if g is not None:
                self.generation = int(g)
            with self._lock:
                self._pending_restore = None
        return raw

    def _resume_offline(self) -> bytes | None:
        """Engram is not running: the newest spooled save, else the live
        state as ``engram learners export NAME --out -`` reads it from the
        data directory (checked against its checksum by Engram; its
        database is Engram's to read). The command is ``$ENGRAM_BIN``, else
        ``engram`` on the PATH."""
        spooled = self._spooled()
        if spooled:
            return spooled[-1].with_suffix(".state").read_bytes()
        assert self.data_dir is not None
        engram = os.environ.get("ENGRAM_BIN") or shutil.which("engram")
        if engram is None:
            # Not "nothing saved": starting over would spool saves that
            # overwrite what the learner learned.
            raise EngramError(
                "unreachable",
                "Engram is not running and the `engram` command that reads its data directory was not found "
                "(put it on the PATH or set ENGRAM_BIN)",
            )
        argv = [engram, "--data-dir", str(self.data_dir), "learners", "export", self.name, "--out", "-"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EngramError("unreachable", f"Engram is not running and `{engram}` could not read {self.data_dir}: {e}") from e
        if done.returncode == 0:
            return done.stdout
        said = done.stderr.decode("utf-8", "replace").strip()
        m = re.search(r"error \[(\w+)\]: (.*)", said)
        code, message = (m.group(1), m.group(2)) if m else ("unreachable", said)
        if code == "not_found":
            return None  # nothing saved yet (or no Engram data here yet)
        raise EngramError(code, f"Engram is not running and its data directory could not be read: {message}")

    def save(
        self,
        state: bytes | Sequence[bytes | memoryview],
        step: int | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> SavedState:
        """Saves `state`; it is durable when this returns — in Engram (and in
        the timeline's next cut), or, when Engram cannot be reached, in the
        data directory's spool (`spooled=True`). Raises :class:`EngramError`
        when neither is possible or Engram refuses the save — with code
        ``stale_state`` when this learner was restored since this run
        resumed and the run has not taken the restored state yet (the save
        is not stored: the restore stands; :meth:`resume`, or the
        :meth:`on_restore` callback, gives the restored state to continue
        from).

        `state` may also be a sequence of buffers, saved as their
        concatenation: a large state written into a lent slot piece by
        piece, never joined in memory (`engram.torch.save` passes its
        tensors' own memory this way)."""
        m = {str(k): float(v) for k, v in (metrics or {}).items()}
        if isinstance(state, (bytes, bytearray, memoryview)):
            parts = [memoryview(state).cast("B")]
        else:
            parts = [memoryview(p).cast("B") for p in state]
        size = sum(len(p) for p in parts)
        joined: bytes | None = None

        def data() -> bytes:
            nonlocal joined
            if joined is None:
                joined = parts[0].obj if len(parts) == 1 and isinstance(parts[0].obj, bytes) else b"".join(parts)
            return joined

        try:
            self._attach()
            self._replay_spool()
            self.flush()  # best effort: logged points first, in order
            if INLINE_STATE_BYTES < size <= LEND_MAX_BYTES and self._lend and self.data_dir is not None:
                saved = self._save_leased(parts, size, step, m)
                if saved is not None:
                    return saved
            return self._upload(data(), step, m)
        except EngramError as e:
            if e.code != "unreachable" or self.data_dir is None:
                raise
            return self._spool(data(), step, m)

    def _save_query(self, step: int | None, metrics: dict[str, float], generation: int | None = None) -> dict[str, str]:
        """What a save says of its state, as query parameters."""
        q: dict[str, str] = {}
        g = self.generation if generation is None else generation
        if g is not None:
            q["generation"] = str(int(g))
        if step is not None:
            q["step"] = str(int(step))
        if metrics:
            q["metrics"] = json.dumps(metrics)
        return q

    def _upload(self, state: bytes, step: int | None, metrics: dict[str, float], generation: int | None = None) -> SavedState:
        q = self._save_query(step, metrics, generation)
        query = "?" + urllib.parse.urlencode(q) if q else ""
        method, path = self._route("save_learner_state")
        raw, _ = self._request(method, path + query, state, "application/octet-stream")
        return saved_state(json.loads(raw))

    def _save_leased(self, parts: list[memoryview], size: int, step: int | None, metrics: dict[str, float]) -> SavedState | None:
        """Writes a large state into a slot of this learner's that Engram
        lent (a file in its data directory) and saves it there: the bytes
        are copied once, into the page cache, instead of sent to Engram and
        written by it. Engram hashes the slot, makes it durable and commits
        it before it answers, with the slot lent for the next save. None
        when no slot could be used (none free, the lease voided by a
        restart of Engram or another run of this learner): the caller sends
        the bytes instead."""
        with self._lock:
            lease, self._lease = self._lease, None
        fresh = lease is None
        if lease is None:
            try:
                lease = self._call("lease_learner_slot")
            except EngramError as e:
                if e.code == "unreachable":
                    raise
                # Refused (an Engram that does not lend, a file system
                # without links): send the bytes from now on.
                self._lend = False
                return None
            if lease is None:
                return None
        try:
            fd = os.open(lease["path"], os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            # A lease carried from the last save may have been voided
            # since (Engram restarted, another run attached): ask again next
            # time. One lent just now that is not there: this is not
            # Engram's machine (or not its data directory).
            if fresh:
                self._lend = False
            return None
        except OSError:
            self._lend = False  # not this process's to write: send the bytes from now on
            return None
        try:
            try:
                done = 0  # bytes of the state written
                flushed = 0  # bytes handed to writeback
                try:
                    # Each 16 MiB goes to the disk while the next is
                    # written: Engram's fdatasync then waits for the tail.
                    for view in parts:
                        at = 0
                        while at < len(view):
                            end = min(len(view), at + WRITEBACK_EVERY - (done - flushed))
                            n = os.pwrite(fd, view[at:end], done)
                            at += n
                            done += n
                            if done - flushed >= WRITEBACK_EVERY:
                                start_writeback(fd, flushed, done - flushed)
                                flushed = done
                    if done > flushed:
                        start_writeback(fd, flushed, done - flushed)
                    if os.fstat(fd).st_size != size:
                        os.ftruncate(fd, size)
                except OSError:
                    # What was written would only hold the space a full
                    # disk lacks (up to a whole state): let it go first.
                    try:
                        os.ftruncate(fd, 0)
                    except OSError:
                        pass
                    raise
            finally:
                os.close(fd)
        except OSError:
            # Writing failed (a full disk, say): this state is sent instead
            # (Engram answers for its disk); the slot stays lent for the next.
            with self._lock:
                self._lease = lease
            return None
        q = {"lease": lease["lease"], "next": "true", **self._save_query(step, metrics)}
        try:
            got = self._call("save_leased_learner_state", query="?" + urllib.parse.urlencode(q))
        except EngramError as e:
            if e.code == "not_found":
                return None  # the lease was voided: the bytes go the other way
            raise
        with self._lock:
            self._lease = got.get("next")
        return saved_state(got["saved"])

    def milestone(self, rule: str, *, metric: str, value: float, step: int) -> int | None:
        """Records that the state saved last (at `step`) reached a milestone
        — `rule` in your words, e.g. ``"success >= 0.9"`` — as a protected
        `breakthrough` backup holding that state; returns its id. Save the
        state first: Engram refuses a milestone whose step is not the saved
        state's. The same rule counts once per line of history: reporting it
        again (say, after a restart) returns the first one's id. When
        Engram cannot be reached, returns None (training goes on; the saved
        state is kept, the milestone is not)."""
        try:
            self._attach()
            self._replay_spool()
            b = self._call(
                "report_learner_milestone",
                {"rule": str(rule), "metric": str(metric), "value": float(value), "step": int(step)},
            )
            return int(b["id"])
        except EngramError as e:
            if e.code == "unreachable":
                return None
            raise

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffers metrics at this instant; a background thread sends them
        every :attr:`flush_every` seconds (as do :meth:`flush` and each
        save). Never blocks on the network and never raises."""
        try:
            point = {
                "step": None if step is None else int(step),
                "at_ms": int(time.time() * 1000),
                "metrics": {str(k): float(v) for k, v in metrics.items()},
            }
        except (TypeError, ValueError):
            self._dropped += 1
            return
        # What Engram would refuse is dropped here: a refused batch would
        # take the good points with it.
        values: dict[str, float] = point["metrics"]  # type: ignore[assignment]
        bad: list[str] = []
        if not self._good_names.issuperset(values):
            bad = [k for k in values if not _METRIC_NAME.fullmatch(k)]
            if not bad and len(self._good_names) < 10_000:
                self._good_names.update(values)
        if bad or len(values) > MAX_METRICS_PER_POINT or not all(map(math.isfinite, values.values())):
            for k in bad:
                if k not in self._warned:
                    self._warned.add(k)
                    warnings.warn(
                        f"engram: metric name {k!r} is not accepted (1-64 characters of a-z, 0-9, _ and -); its points are dropped",
                        stacklevel=2,
                    )
            self._dropped += 1
            return
        with self._lock:
            if len(self._points) >= 100_000:
                # Bounded: the oldest go first when Engram is away for long.
                del self._points[:10_000]
                self._dropped += 10_000
            self._points.append(point)
            if self._flusher is None and self.flush_every > 0 and not self._closed.is_set():
                self._flusher = threading.Thread(target=self._flush_in_background, name=f"engram-flush-{self.name}", daemon=True)
                self._flusher.start()

    def _flush_in_background(self) -> None:
        while not self._closed.wait(self.flush_every):
            if self._points:
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 — the flusher must never die
                    pass

    def flush(self) -> int:
        """Sends the buffered metrics; returns how many were stored. A failure
        keeps them buffered for the next call and is not raised. One flush at
        a time (the background one or a caller's), so points arrive in order."""
        with self._flush_lock:
            with self._lock:
                points, self._points = self._points, []
            sent = 0
            while points:
                batch = points[:10_000]
                try:
                    self._call("log_learner_metrics", {"points": batch})
                except EngramError as e:
                    if e.code in _PERMANENT_REFUSALS:
                        # Refused as it is (the learner was deleted, say):
                        # counted, not retried ahead of later points.
                        with self._lock:
                            self._dropped += len(batch)
                        points = points[10_000:]
                        continue
                    with self._lock:
                        self._points = points + self._points
                    return sent
                points = points[10_000:]
                sent += len(batch)
            return sent

    def close(self) -> None:
        """Sends buffered metrics and stops the background threads (the
        metrics flusher; listening for restores and stop requests)."""
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join(timeout=self.timeout)
        self.flush()
        self._drop_connection()

    @property
    def dropped(self) -> int:
        """Points dropped: not finite numbers, a metric name Engram does not
        accept (warned about once per name), refused by Engram (its learner
        was deleted, say), or the buffer overflowed."""
        return self._dropped


def attach(
    name: str,
    *,
    format: str | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    milestones: Sequence[Mapping[str, Any]] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    token: str | None = None,
    timeout: float = 600.0,
    flush_every: float = 1.0,
) -> Run:
    """Attaches learner `name` to the Engram serving `data_dir` (found
    through its files), or at `url` with `token`. Attaching again is safe:
    it finds the same learner and what it resumes from. `format` names how
    your state bytes are laid out (kept with them; a different format for an
    existing name is refused once it has saved; none: the one registered,
    `raw` for a new learner). `metrics` says what your metrics mean, for
    their curves in the UI: ``{"success": {"label": "Success rate",
    "format": "percent", "higher_is_better": True, "unit": ""}}`` (formats:
    integer, percent, decimal, milliseconds, time — unix ms). `milestones` are rules Engram
    checks every save's metrics against — ``[{"metric": "success",
    "at_least": 0.9}]`` (or ``at_most``): the first saved state of a line of
    history that meets one is kept in a protected backup. Logged metrics are
    sent every `flush_every` seconds in the background (0: only at
    :meth:`Run.flush` and each save). When Engram is not running, the run
    works from the data directory: saves are spooled (see :meth:`Run.save`)."""
    directory = Path(data_dir) if data_dir else (default_data_dir() if url is None else None)
    if url is None or token is None:
        assert directory is not None
        try:
            found_url, found_token = discover(directory)
        except EngramError:
            found_url, found_token = "http://127.0.0.1:9", ""  # nothing serves it (yet)
        url = url or found_url
        token = token or found_token
    described = {str(k): dict(v) for k, v in (metrics or {}).items()} or None
    rules = [dict(m) for m in milestones] if milestones else None
    run = Run(
        name=name,
        base=url.rstrip("/"),
        token=token,
        format=format,
        metrics=described,
        milestones=rules,
        timeout=timeout,
        data_dir=directory,
        flush_every=flush_every,
    )
    try:
        run._attach()
    except EngramError as e:
        if e.code != "unreachable" or directory is None:
            raise
        # Not running: the spool keeps saves until it is. The name is checked
        # when they are taken in.
    return run
