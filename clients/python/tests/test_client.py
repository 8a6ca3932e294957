"""The client against a real `engram serve` (target/debug/engram) on a
temporary data directory: discovery, save/resume, backups, metrics, errors,
and a SIGKILL of the server right after a save."""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engram

ROOT = Path(__file__).resolve().parents[3]
ENGRAM = Path(os.environ.get("ENGRAM_BIN", ROOT / "target/debug/engram"))
# With Engram stopped, a run resumes through the `engram` command (it reads the
# data directory): this one.
os.environ.setdefault("ENGRAM_BIN", str(ENGRAM))
# Processes Engram starts (learners, drill commands) import this client as
# an installed one would be.
_SRC = str(Path(__file__).resolve().parents[1] / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(ENGRAM), "serve", "--data-dir", str(self.data_dir), "--pace", "1ms"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "engram serve printed no URL"
        self.url = line.split()[-1]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def api(self, method: str, path: str, body: object | None = None) -> object:
        base, _, query = self.url.partition("/?")
        token = query.split("token=")[-1]
        req = urllib.request.Request(
            base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    assert ENGRAM.exists(), f"{ENGRAM} is missing: cargo build -p engram-cli"
    s = Server(tmp_path / "data")
    s.start()
    yield s
    s.stop()


def test_attach_finds_engram_through_the_data_directory_and_resumes_what_was_saved(server: Server) -> None:
    run = engram.attach("frozenlake-q", format="engram.pack/1", data_dir=server.data_dir)
    assert run.resume() is None, "nothing saved yet"
    state = bytes(range(256)) * 1000
    saved = run.save(state, step=42, metrics={"success": 0.5})
    assert (saved.size, saved.step, saved.metrics) == (len(state), 42, {"success": 0.5})
    assert run.resume() == state
    # Attaching again is the same learner, and it resumes the same state.
    again = engram.attach("frozenlake-q", format="engram.pack/1", data_dir=server.data_dir)
    assert again.resume() == state
    assert again.info()["live"]["step"] == 42
    # The same bytes have the same address.
    assert run.save(state, step=43).checksum == saved.checksum


def test_a_backup_holds_the_state_of_its_instant(server: Server) -> None:
    run = engram.attach("learner", data_dir=server.data_dir)
    run.save(b"before", step=1)
    backup = server.api("POST", "/api/backups", {"label": "cut"})
    assert isinstance(backup, dict)
    run.save(b"after", step=2)
    assert run.resume() == b"after"
    assert run.resume(backup=int(backup["id"])) == b"before"


def test_log_never_raises_and_flush_stores_the_points(server: Server) -> None:
    run = engram.attach("logger", data_dir=server.data_dir, flush_every=0)  # only flush() sends
    for t in range(5):
        run.log({"reward": t / 4}, step=t)
    run.log({"reward": "not a number"})  # type: ignore[dict-item]
    assert run.dropped == 1
    assert run.flush() == 5
    series = server.api("GET", "/api/metrics/series?engine=logger&key=reward")
    assert isinstance(series, dict)
    assert len(series["points"]) >= 1
    # With Engram gone, log still returns at once and flush keeps the points.
    server.stop()
    run.timeout = 2
    run.log({"reward": 1.0})
    assert run.flush() == 0


def test_a_point_engram_would_refuse_is_dropped_and_never_holds_back_the_others(server: Server) -> None:
    run = engram.attach("picky", data_dir=server.data_dir, flush_every=0)
    run.log({"loss": 0.5}, step=1)
    time.sleep(0.002)  # one point per metric and millisecond
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        run.log({"train/loss": 0.4}, step=2)  # names Engram refuses
        run.log({"train/loss": 0.4}, step=3)
        run.log({"Loss": 0.3}, step=4)
    assert [str(w.message).split("'")[1] for w in said] == ["train/loss", "Loss"], "once per name"
    run.log({"loss": float("nan")}, step=5)  # not JSON
    run.log({"loss": float("inf")}, step=6)
    run.log({"loss": 0.2}, step=7)
    assert run.dropped == 5
    assert run.flush() == 2
    series = server.api("GET", "/api/metrics/series?engine=picky&key=loss")
    assert isinstance(series, dict)
    assert [p["value"] for p in series["points"]] == [0.5, 0.2]
    # A batch Engram refuses anyway (here: its learner was deleted) is
    # dropped and counted, not retried forever ahead of later points.
    server.api("DELETE", "/api/learners/picky")
    run.log({"loss": 0.1}, step=8)
    assert run.flush() == 0
    assert run.dropped == 6
    assert run.flush() == 0 and run.dropped == 6, "nothing is left to send"
    run.close()


def test_logged_metrics_arrive_in_the_background_and_close_stops_the_flusher(server: Server) -> None:
    run = engram.attach("flushed", data_dir=server.data_dir, flush_every=0.2)

    def stored() -> int:
        series = server.api("GET", "/api/metrics/series?engine=flushed&key=loss")
        assert isinstance(series, dict)
        return int(series["stored"])

    # One point per millisecond at most (the history keeps one per instant).
    for t in range(50):
        run.log({"loss": 1.0 / (t + 1)}, step=t)
        time.sleep(0.002)
    # Neither flush() nor a save: the background flusher sends them.
    deadline = time.monotonic() + 15
    while stored() < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored() == 50
    # flush() beside the flusher: nothing is lost.
    for t in range(50, 250):
        run.log({"loss": 1.0 / (t + 1)}, step=t)
        time.sleep(0.002)
        if t % 20 == 0:
            run.flush()
    run.close()
    assert run._flusher is not None and not run._flusher.is_alive()
    assert stored() == 250


def test_refusals_are_typed_errors(server: Server, tmp_path: Path) -> None:
    with pytest.raises(engram.EngramError) as e:
        engram.attach("Bad Name!", data_dir=server.data_dir)
    assert e.value.code == "invalid_input"
    with pytest.raises(engram.EngramError) as e:
        engram.attach("zap", data_dir=server.data_dir)
    assert e.value.code == "invalid_input"
    run = engram.attach("ok", data_dir=server.data_dir)
    # The format is fixed by the first save (until then, attach may set it).
    assert engram.attach("ok", format="engram.pack/1", data_dir=server.data_dir).info()["format"] == "engram.pack/1"
    run.save(b"first state")
    with pytest.raises(engram.EngramError) as e:
        engram.attach("ok", format="pickle", data_dir=server.data_dir)
    assert e.value.code == "invalid_input"
    with pytest.raises(engram.EngramError) as e:
        engram.Run(name="ok", base=run.base, token="wrong").save(b"x")
    assert e.value.code == "unauthorized"
    with pytest.raises(engram.EngramError) as e:
        run.resume(backup=999_999)
    assert e.value.code == "not_found"


def test_a_save_that_returned_survives_a_sigkill_of_engram(server: Server) -> None:
    run = engram.attach("durable", data_dir=server.data_dir)
    state = os.urandom(3 << 20)
    run.save(state, step=7)
    server.stop(signal.SIGKILL)
    server.start()
    resumed = engram.attach("durable", data_dir=server.data_dir)
    assert resumed.resume() == state
    assert resumed.info()["live"]["step"] == 7


def test_a_run_keeps_its_connection_and_replaces_it_when_engram_restarts(server: Server) -> None:
    run = engram.attach("kept", data_dir=server.data_dir)
    run.save(b"one", step=1)
    first = run._connection()[0].sock.getsockname()
    run.save(b"two", step=2)
    assert run._connection()[0].sock.getsockname() == first, "one connection for successive calls"
    # Engram dies and starts again on the same port: the kept connection is
    # dead; the next save goes through a new one (not to the spool).
    port = urllib.parse.urlsplit(server.url).port
    server.stop(signal.SIGKILL)
    server.start()
    assert urllib.parse.urlsplit(server.url).port == port, "restarted on its last port"
    again = run.save(b"three", step=3)
    assert not again.spooled
    assert engram.attach("kept", data_dir=server.data_dir).resume() == b"three"


def test_a_learner_outside_engram_sees_a_stop_request_and_its_next_run_does_not(server: Server) -> None:
    # Asked before the run first looks: its first check asks Engram.
    early = engram.attach("asked-early", data_dir=server.data_dir)
    early.save(b"s", step=1)
    server.api("POST", "/api/learners/asked-early/stop")
    assert early.stop_requested
    # Asked while the run listens: the event stream brings it.
    run = engram.attach("asked", data_dir=server.data_dir)
    run.save(b"s", step=1)
    assert not run.stop_requested
    info = server.api("POST", "/api/learners/asked/stop")
    assert isinstance(info, dict) and info["stop_requested_at_ms"] is not None
    deadline = time.monotonic() + 10
    while not run.stop_requested and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.stop_requested
    # The learner's next run is not asked to stop.
    run.close()
    again = engram.attach("asked", data_dir=server.data_dir)
    assert not again.stop_requested
    again.close()
    early.close()


def test_a_deleted_learner_is_told_to_stop_and_its_saves_are_refused(server: Server) -> None:
    listening = engram.attach("deleted-live", data_dir=server.data_dir)
    listening.save(b"s", step=1)
    assert not listening.stop_requested  # listens from here on
    later = engram.attach("deleted-later", data_dir=server.data_dir)
    later.save(b"s", step=1)
    for name in ("deleted-live", "deleted-later"):
        removed = server.api("DELETE", f"/api/learners/{name}")
        assert removed == {"name": name, "backups": 0, "newest_backup_id": None}
    # The run that listens hears it on the event stream ...
    deadline = time.monotonic() + 10
    while not listening.stop_requested and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listening.stop_requested
    # ... one that looks afterwards asks Engram: its learner is gone.
    assert later.stop_requested
    # Its saves are refused (not spooled: Engram answered), nothing is stored.
    with pytest.raises(engram.EngramError) as refused:
        later.save(b"after", step=2)
    assert refused.value.code == "not_found"
    learners = server.api("GET", "/api/learners")
    assert isinstance(learners, list) and learners == []
    assert not (server.data_dir / "spool" / "deleted-later").exists()
    # A new run under the name starts afresh.
    later.close()
    fresh = engram.attach("deleted-later", data_dir=server.data_dir)
    assert fresh.resume() is None and not fresh.stop_requested
    fresh.close()
    listening.close()


def test_a_sigkill_in_the_middle_of_a_large_save_leaves_the_live_state_intact(server: Server) -> None:
    run = engram.attach("torn", data_dir=server.data_dir)
    live = os.urandom(3 << 20)
    run.save(live, step=1)  # held in a slot of the learner's
    # Another save streams into another slot; Engram dies in the middle of it.
    base, _, query = server.url.partition("/?")
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(base).hostname or "", urllib.parse.urlsplit(base).port)
    conn.putrequest("PUT", "/api/learners/torn/state?step=2")
    conn.putheader("Authorization", f"Bearer {query.split('token=')[-1]}")
    conn.putheader("Content-Length", str(64 << 20))
    conn.endheaders()
    for _ in range(16):
        conn.send(b"\x5a" * (512 << 10))
    slots = server.data_dir / "slots" / "torn"
    deadline = time.monotonic() + 10
    def slot_bytes() -> int:
        # A slot may be renamed or removed between listing and stat.
        total = 0
        for p in slots.iterdir():
            try:
                total += p.stat().st_size
            except FileNotFoundError:
                pass
        return total

    while slot_bytes() < len(live) + (4 << 20) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slot_bytes() >= len(live) + (4 << 20), "the second slot is being written"
    server.stop(signal.SIGKILL)
    conn.close()
    server.start()
    resumed = engram.attach("torn", data_dir=server.data_dir)
    assert resumed.resume() == live
    assert resumed.info()["live"]["step"] == 1


def test_a_large_state_is_written_into_a_lent_slot_and_a_torn_or_voided_one_changes_nothing(server: Server) -> None:
    run = engram.attach("lent", data_dir=server.data_dir)
    first = os.urandom(1 << 20)
    assert run.save(first, step=1).step == 1
    # Written into a slot Engram lent; the answer lent the next one.
    slots = server.data_dir / "slots" / "lent"
    lent = [p for p in slots.iterdir() if p.name.startswith("lease-")]
    assert len(lent) == 1, list(slots.iterdir())
    assert run.resume() == first
    # The learner dies halfway through writing its next state: the live
    # state is untouched, and its next run voids what the dead one was lent.
    with open(lent[0], "r+b") as f:
        f.write(b"\x00" * (300 << 10))
    again = engram.attach("lent", data_dir=server.data_dir)
    assert again.resume() == first
    assert not lent[0].exists()
    # The old run's lease is void: its next save goes the other way, whole.
    second = os.urandom(2 << 20)
    assert run.save(second, step=2).step == 2
    assert again.resume() == second
    # And the save after that is lent a slot again.
    third = os.urandom(1 << 20)
    run.save(third, step=3)
    assert again.resume() == third and again.info()["live"]["step"] == 3
    assert any(p.name.startswith("lease-") for p in slots.iterdir())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_writeback_head_start_calls_linux_correctly(tmp_path: Path) -> None:
    # The head start a lent save gives Engram's fdatasync is only a hint,
    # so a broken binding would fail silently: it must be found on Linux,
    # and accept a real file's range (wrong argument types make EINVAL).
    from engram.files import _SYNC_FILE_RANGE_WRITE, _sync_file_range

    f = _sync_file_range()
    assert f is not None
    with open(tmp_path / "slot", "wb") as out:
        out.write(os.urandom(1 << 20))
        out.flush()
        assert f(out.fileno(), 0, 1 << 20, _SYNC_FILE_RANGE_WRITE) == 0
        assert f(out.fileno(), 0, 1 << 20, 0xFF) == -1  # flags it does not know: refused


def test_a_lent_slot_this_process_cannot_write_sends_the_state_instead(server: Server) -> None:
    run = engram.attach("cramped", data_dir=server.data_dir)
    run.save(os.urandom(1 << 20), step=1)  # lent; the next slot comes with the answer
    # This process may write at most 256 KiB per file (Python ignores
    # SIGXFSZ: the write fails with EFBIG, as on a full disk).
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, hard))
    state = os.urandom(1 << 20)
    try:
        saved = run.save(state, step=2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert not saved.spooled and saved.step == 2
    assert run.resume() == state
    # What the failed write left in the lent slot was let go (on a full
    # disk it would hold the space the sent state needs).
    lent = [p for p in (server.data_dir / "slots" / "cramped").iterdir() if p.name.startswith("lease-")]
    assert [p.stat().st_size for p in lent] == [0]
    # The slot stayed lent: the next save writes into it.
    third = os.urandom(1 << 20)
    run.save(third, step=3)
    assert run.resume() == third
    lent = [p for p in (server.data_dir / "slots" / "cramped").iterdir() if p.name.startswith("lease-")]
    assert len(lent) == 1


def test_a_restore_from_the_timeline_reaches_the_learner_and_its_step_continues_from_there(server: Server) -> None:
    run = engram.attach("restorable", data_dir=server.data_dir)
    run.save(b"step 10 state", step=10)
    backup = server.api("POST", "/api/backups", {"label": "at step 10"})
    assert isinstance(backup, dict)
    run.save(b"step 20 state", step=20)
    heard: list[tuple[bytes | None, int | None]] = []
    done = threading.Event()

    def restored(state: bytes | None, step: int | None) -> None:
        heard.append((state, step))
        done.set()

    run.on_restore(restored)
    # The listener connects in the background; restore until it hears.
    for _ in range(50):
        server.api("POST", f"/api/backups/{backup['id']}/restore", {"engine": "restorable"})
        if done.wait(0.2):
            break
    assert heard and heard[0] == (b"step 10 state", 10)
    # A save of the line restored away from (the loop has not taken the
    # restored state yet) is refused, and the restore stands.
    with pytest.raises(engram.EngramError) as e:
        run.save(b"step 21 state", step=21)
    assert e.value.code == "stale_state"
    assert engram.attach("restorable", data_dir=server.data_dir).resume() == b"step 10 state"
    # The loop takes it; training continues from the restored step.
    assert run.restored() == (b"step 10 state", 10)
    assert run.restored() is None, "taken once"
    assert run.save(b"step 11 state", step=11).step == 11
    run.close()


def test_a_learner_that_never_takes_a_restore_is_refused_and_nothing_stored_changes(server: Server) -> None:
    run = engram.attach("deaf", data_dir=server.data_dir)
    run.save(b"a", step=1)
    backup: Any = server.api("POST", "/api/backups", {})
    run.save(b"b", step=2)
    server.api("POST", f"/api/backups/{backup['id']}/restore", {"engine": "deaf"})
    # It never listens, never resumes: every save is refused, the restored
    # state stays, and Engram goes on answering.
    for step in (3, 4, 5):
        with pytest.raises(engram.EngramError) as e:
            run.save(b"old line", step=step)
        assert e.value.code == "stale_state" and "restored" in e.value.message
    info = engram.attach("deaf", data_dir=server.data_dir).info()
    assert info["live"]["step"] == 1 and info["generation"] == 1
    status: Any = server.api("GET", "/api/status")
    assert status["running"] is True
    # Resuming takes the restored state; saves go through again.
    assert run.resume() == b"a"
    assert run.save(b"c", step=2).step == 2


def test_a_state_given_in_pieces_is_saved_as_their_concatenation_every_way(server: Server) -> None:
    run = engram.attach("pieces", data_dir=server.data_dir)
    # Lent: pieces of odd sizes across the 16 MiB writeback strides, one empty.
    big: list[bytes | bytearray] = [os.urandom(7 << 20), b"", os.urandom(13 << 20), os.urandom(3), bytearray(os.urandom(17 << 20))]
    assert run.save([memoryview(p) for p in big], step=1).size == sum(len(p) for p in big)
    assert run.resume() == b"".join(big)
    assert any(p.name.startswith("lease-") for p in (server.data_dir / "slots" / "pieces").iterdir()), "written into a lent slot"
    # Inline (small), and spooled while Engram is away.
    assert run.save([b"ab", memoryview(b"cd")], step=2).size == 4 and run.resume() == b"abcd"
    server.stop()
    run.timeout = 5
    assert run.save([b"spool", b"ed"], step=3).spooled
    server.start()
    assert engram.attach("pieces", data_dir=server.data_dir).resume() == b"spooled"


def test_with_engram_stopped_training_goes_on_and_every_save_arrives_in_order(server: Server) -> None:
    run = engram.attach("spooler", data_dir=server.data_dir)
    run.save(b"state 1", step=1)
    server.stop()
    run.timeout = 5
    second = run.save(b"state 2", step=2, metrics={"loss": 0.5})
    third = run.save(b"state 3", step=3)
    assert (second.spooled, third.spooled) == (True, True)
    assert run.resume() == b"state 3", "offline, the newest spooled save"
    spool = server.data_dir / "spool" / "spooler"
    assert len(list(spool.glob("*.json"))) == 2
    # Engram starts: it takes the spool in, in order; nothing is left.
    server.start()
    fresh = engram.attach("spooler", data_dir=server.data_dir)
    assert fresh.resume() == b"state 3"
    assert fresh.info()["live"]["step"] == 3
    assert list(spool.glob("*")) == []
    series = server.api("GET", "/api/metrics/series?engine=spooler&key=loss")
    assert isinstance(series, dict) and len(series["points"]) == 1


def test_with_engram_stopped_a_large_state_resumes_from_its_slot_or_its_object(server: Server) -> None:
    run = engram.attach("offline-large", data_dir=server.data_dir)
    first = os.urandom(1 << 20)
    run.save(first, step=1)
    server.api("POST", "/api/backups", {"label": "names the first state"})
    second = os.urandom(1 << 20)
    run.save(second, step=2)
    server.stop()
    run.timeout = 5
    # The live state is held in a slot file; read from the data directory.
    assert run.resume() == second
    # Started and stopped again with a backup in between: the slot's state
    # became an object; read from there.
    server.start()
    server.api("POST", "/api/backups", {"label": "names the second state"})
    server.stop()
    con = sqlite3.connect(server.data_dir / "engram.db")
    (slot, object_hex) = con.execute(
        "SELECT slot, lower(hex(object)) FROM learner_live WHERE learner = 'offline-large'"
    ).fetchone()
    con.close()
    assert slot is None, "a backup made the slot's state an object"
    assert (server.data_dir / "objects" / object_hex[:2] / object_hex[2:]).is_file()
    assert engram.attach("offline-large", data_dir=server.data_dir).resume() == second


def test_a_client_that_reconnects_sends_its_spool_before_its_next_save(server: Server) -> None:
    run = engram.attach("reconnect", data_dir=server.data_dir)
    server.stop()
    run.timeout = 5
    assert run.save(b"while away", step=1).spooled
    server.start()  # on a new port: the client finds it through the data directory
    live = run.save(b"back again", step=2)
    assert not live.spooled
    assert run.resume() == b"back again"
    # A restart does not roll the learner back to the spooled save.
    server.stop()
    server.start()
    assert engram.attach("reconnect", data_dir=server.data_dir).resume() == b"back again"


def test_a_learner_that_starts_before_engram_ever_ran_is_taken_in_at_its_first_start(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    run = engram.attach("early", data_dir=data, timeout=2)
    assert run.resume() is None
    assert run.save(b"first state", step=5).spooled
    s = Server(data)
    s.start()
    try:
        assert engram.attach("early", data_dir=data).resume() == b"first state"
    finally:
        s.stop()


def test_a_milestone_keeps_the_state_that_reached_it_once_per_line_of_history(server: Server) -> None:
    run = engram.attach("milestoner", data_dir=server.data_dir)
    run.save(b"state at 100", step=100, metrics={"success": 0.91})
    bid = run.milestone("success >= 0.9", metric="success", value=0.91, step=100)
    assert bid is not None
    b: Any = server.api("GET", f"/api/backups/{bid}")
    assert b["kind"] == "breakthrough" and b["learners"] == ["milestoner"]
    assert b["breakthrough"] == {"engine": "milestoner", "rule": "success >= 0.9", "metric": "success", "value": 0.91, "step": 100}
    # The backup holds exactly the state that reached it.
    assert run.resume(backup=bid) == b"state at 100"
    run.save(b"state at 150", step=150)
    assert run.resume(backup=bid) == b"state at 100"
    def backups() -> int:
        page: Any = server.api("GET", "/api/backups?kind=breakthrough&limit=1000")
        return sum(1 for x in page["items"] if (x["breakthrough"] or {}).get("engine") == "milestoner")

    before = backups()
    assert before == 1
    # The same rule again on this line of history (a restarted learner
    # reporting what it reached): the first one's backup, no new one.
    assert run.milestone("success >= 0.9", metric="success", value=0.93, step=150) == bid
    # Refused, changing nothing: a step that is not the saved state's, a
    # blank rule, a bad metric name or value.
    for kwargs in (
        {"rule": "success >= 0.95", "metric": "success", "value": 0.96, "step": 149},
        {"rule": "  ", "metric": "success", "value": 0.93, "step": 150},
        {"rule": "ok", "metric": "Bad Metric", "value": 0.93, "step": 150},
        {"rule": "ok", "metric": "success", "value": float("nan"), "step": 150},
    ):
        with pytest.raises(engram.EngramError) as e:
            run.milestone(**kwargs)  # type: ignore[arg-type]
        assert e.value.code == "invalid_input", kwargs
    assert backups() == before
    # Another rule at the saved step is a new milestone.
    assert run.milestone("success >= 0.95", metric="success", value=0.96, step=150) is not None
    assert backups() == before + 1


def test_a_backup_exported_with_its_learner_imports_and_restores_elsewhere(server: Server, tmp_path: Path) -> None:
    run = engram.attach("travel", format="engram.pack/1", data_dir=server.data_dir)
    state = bytes(range(256)) * 4000
    run.save(state, step=77, metrics={"loss": 0.25})
    backup: Any = server.api("POST", "/api/backups", {"label": "to take along"})
    out = tmp_path / "snap.engram"
    for fmt in ("binary", "json"):
        target = tmp_path / f"elsewhere-{fmt}"
        subprocess.run([str(ENGRAM), "backups", "export", str(backup["id"]), "--out", str(out), "--format", fmt, "--data-dir", str(server.data_dir)], check=True, capture_output=True)
        subprocess.run([str(ENGRAM), "run", "--for", "300ms", "--data-dir", str(target)], check=True, capture_output=True)
        imported = json.loads(subprocess.run([str(ENGRAM), "backups", "import", str(out), "--json", "--data-dir", str(target)], check=True, capture_output=True, text=True).stdout)
        assert imported["learners"] == ["travel"], imported
        # Restored offline (nothing runs there), then read as a learner would.
        subprocess.run([str(ENGRAM), "backups", "restore", str(imported["id"]), "--engine", "travel", "--data-dir", str(target)], check=True, capture_output=True)
        there = engram.attach("travel", data_dir=target)
        assert there.resume() == state, fmt
        listed = json.loads(subprocess.run([str(ENGRAM), "learners", "list", "--json", "--data-dir", str(target)], check=True, capture_output=True, text=True).stdout)
        assert [(x["name"], x["format"], x["live"]["step"]) for x in listed] == [("travel", "engram.pack/1", 77)]



def test_a_declared_milestone_keeps_the_first_saved_state_that_meets_it(server: Server) -> None:
    run = engram.attach("ruled", milestones=[{"metric": "loss", "at_most": 0.1}], data_dir=server.data_dir)
    assert run.info()["milestone_rules"] == [{"metric": "loss", "at_least": None, "at_most": 0.1}]

    def mine() -> list[Any]:
        page: Any = server.api("GET", "/api/backups?kind=breakthrough&limit=1000")
        return [x for x in page["items"] if (x["breakthrough"] or {}).get("engine") == "ruled"]

    run.save(b"not yet", step=1, metrics={"loss": 0.5})
    run.save(b"no loss metric", step=2)
    assert mine() == []
    run.save(b"there", step=3, metrics={"loss": 0.08})
    run.save(b"still there", step=4, metrics={"loss": 0.05})
    got = mine()
    assert len(got) == 1, got
    assert got[0]["breakthrough"] == {"engine": "ruled", "rule": "loss <= 0.1", "metric": "loss", "value": 0.08, "step": 3}
    assert run.resume(backup=got[0]["id"]) == b"there"
    # Rules are checked: one bound, finite, a valid metric name.
    for bad in ([{"metric": "loss"}], [{"metric": "loss", "at_least": 1, "at_most": 2}], [{"metric": "Bad", "at_least": 1}]):
        with pytest.raises(engram.EngramError) as e:
            engram.attach("ruled", milestones=bad, data_dir=server.data_dir)
        assert e.value.code == "invalid_input", bad


def test_a_damaged_live_state_falls_back_to_the_newest_intact_backup(server: Server) -> None:
    run = engram.attach("fragile", data_dir=server.data_dir)
    run.save(b"good state at 5" * 100, step=5)
    server.api("POST", "/api/backups", {"label": "holds step 5"})
    saved = run.save(b"state at 9 that will rot" * 100, step=9)
    # A small state is kept inside the database: one byte of it rots there.
    con = sqlite3.connect(server.data_dir / "engram.db", timeout=10)
    with con:
        (raw,) = con.execute(
            "SELECT bytes FROM learner_inline_states WHERE hex(checksum) = upper(?)", (saved.checksum,)
        ).fetchone()
        rotten = bytearray(raw)
        rotten[10] ^= 0xFF
        con.execute(
            "UPDATE learner_inline_states SET bytes = ? WHERE hex(checksum) = upper(?)",
            (bytes(rotten), saved.checksum),
        )
    con.close()
    # Resuming gets the newest state that reads back intact, and it is live now.
    fresh = engram.attach("fragile", data_dir=server.data_dir)
    assert fresh.resume() == b"good state at 5" * 100
    info = fresh.info()
    assert info["live"]["step"] == 5 and info["generation"] == 1
    # The run that saved the rotten state is one generation behind: refused.
    with pytest.raises(engram.EngramError) as e:
        run.save(b"x", step=10)
    assert e.value.code == "stale_state"
    assert fresh.save(b"onwards", step=6).step == 6
    # With no intact state anywhere, the damage is the answer.
    # A large state is a file (held in one of the learner's slots until a
    # backup names it); here it goes missing.
    lone = engram.attach("lone", data_dir=server.data_dir)
    lone.save(b"only copy" * 500_000, step=1)
    # Beside it: the slot lent for the next save (empty) and its lent name.
    files = sorted((server.data_dir / "slots" / "lone").iterdir())
    held = [p for p in files if p.name.isdigit() and p.stat().st_size > 0]
    assert len(held) == 1 and len(files) == 3, files
    held[0].unlink()
    with pytest.raises(engram.EngramError) as e:
        engram.attach("lone", data_dir=server.data_dir).resume()
    assert e.value.code == "corrupt_state"


def test_the_client_reads_no_table_of_engram_s_database() -> None:
    """Engram's schema is read only by Engram (its `store` module): the
    client resumes offline through `engram learners export`, so a change
    of the schema cannot silently break it."""
    src = Path(engram.__file__).parent
    for f in src.glob("*.py"):
        text = f.read_text()
        assert "sqlite3" not in text and "learner_live" not in text, f"{f.name} reads Engram's database"
        if f.name != "routes.py":
            # Routes come from the generated table (engram/routes.py).
            assert "/api/" not in text and '"/learners' not in text, f"{f.name} types a route"


def test_two_backups_of_a_packed_learner_compare_array_by_array(server: Server) -> None:
    import numpy as np

    from engram.pack import pack

    run = engram.attach("packed", format="engram.pack/1", data_dir=server.data_dir)
    # Large enough to be kept as a file (and streamed by the comparison).
    weights = np.arange(2_000_000, dtype=np.float64) / 7.0
    bias = np.ones((3, 4), dtype=np.float32)
    run.save(pack({"weights": weights, "bias": bias, "epoch": 1, "lr": 0.01}), step=1)
    first = server.api("POST", "/api/backups", {"label": "before"})
    changed = weights.copy()
    changed[123] += 0.5
    changed[1_999_999] -= 3.25
    run.save(pack({"weights": changed, "bias": bias, "epoch": 2, "lr": 0.01, "note": "x"}), step=2)
    second = server.api("POST", "/api/backups", {"label": "after"})
    assert isinstance(first, dict) and isinstance(second, dict)
    c = server.api("GET", f"/api/backups/{first['id']}/compare?with={second['id']}")
    assert isinstance(c, dict)
    (learner,) = [x for x in c["learners"] if x["name"] == "packed"]
    inside = learner["inside"]
    assert inside["kind"] == "engram.pack", inside
    arrays = {a["name"]: a for a in inside["arrays"]}
    w = arrays["weights"]
    assert (w["changed"], w["max_abs"], w["shape_to"], w["dtype_to"]) == (2, 3.25, [2_000_000], "<f8")
    assert w["mean_abs"] == pytest.approx(3.75 / 2_000_000)
    assert arrays["bias"]["changed"] == 0 and arrays["bias"]["shape_from"] == [3, 4]
    assert inside["values_changed"] == ["epoch", "note"]


def test_a_learner_drill_runs_its_callback_in_a_child_process_and_is_stopped_at_its_limit(
    server: Server, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "drillme.py").write_text(
        "import engram, time\n"
        "def evaluate(state):\n"
        "    items = engram.unpack(state)\n"
        "    return {'success': float(items['w'].sum()), 'size': len(state)}\n"
        "def slow(state):\n"
        "    time.sleep(60)\n"
        "def wrong(state):\n"
        "    return {'success': 'high'}\n"
    )
    import numpy as np

    run = engram.attach("drilled", format="engram.pack/1", data_dir=server.data_dir)
    state = engram.pack({"w": np.array([0.25, 0.5])})
    run.save(state, step=1, metrics={"success": 0.7})
    kept = run.set_drill("drillme:evaluate", timeout=30, cwd=str(work))
    assert kept["argv"][-1] == "drillme:evaluate" and kept["timeout_ms"] == 30_000
    backup = server.api("POST", "/api/backups", {"label": "drill"})
    assert isinstance(backup, dict)
    bid = backup["id"]
    d = server.api("POST", f"/api/backups/{bid}/drill", {"units": ["drilled"]})
    assert isinstance(d, dict)
    (r,) = d["results"]
    assert r["error"] is None, r
    assert r["metrics"] == {"success": 0.75, "size": float(len(state))}
    assert r["reported"] == {"success": 0.7}
    # Killed at its limit, said so; a wrong answer is said too.
    run.set_drill("drillme:slow", timeout=1.0, cwd=str(work))
    t0 = time.monotonic()
    d = server.api("POST", f"/api/backups/{bid}/drill", {"units": ["drilled"]})
    assert time.monotonic() - t0 < 20
    assert isinstance(d, dict)
    assert "time limit of 1.0 s" in d["results"][0]["error"]
    run.set_drill("drillme:wrong", timeout=30, cwd=str(work))
    d = server.api("POST", f"/api/backups/{bid}/drill", {"units": ["drilled"]})
    assert isinstance(d, dict)
    assert "not a number" in d["results"][0]["error"]
    # Every drill is kept with the backup, newest first; the state is as it was.
    kept_all = server.api("GET", f"/api/backups/{bid}/drills")
    assert isinstance(kept_all, dict)
    assert [x["error"] is None for x in kept_all["results"]] == [False, False, True]
    assert run.resume(backup=int(bid)) == state
    run.set_drill(None)
    assert run._call("learner_drill")["argv"] is None
