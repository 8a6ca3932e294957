"""A real `engram serve` for the Python benchmarks: started on a data
directory (returns once it printed its URL), stopped with its final save."""

from __future__ import annotations

import subprocess
from pathlib import Path


def start_serve(binary: Path, data: Path) -> subprocess.Popen[str]:
    server = subprocess.Popen([str(binary), "serve", "--data-dir", str(data)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None
    server.stdout.readline()
    return server


def stop_serve(server: subprocess.Popen[str]) -> None:
    server.terminate()
    server.wait(timeout=60)
