"""Durable writes for the spool and lent slots: a file fsynced and renamed,
its directory fsynced, and a head start on writeback for large states."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

__all__ = ["start_writeback", "sync_dir", "write_durably"]

_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback, do not wait


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's `sync_file_range` through ctypes (None elsewhere)."""
    try:
        import ctypes

        f = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, TypeError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    f.restype = ctypes.c_int
    return f


def start_writeback(fd: int, offset: int, size: int) -> None:
    """Starts writing back `size` bytes of `fd` from `offset` without
    waiting (`SYNC_FILE_RANGE_WRITE`; nothing where there is no such call).
    Only a head start: Engram's `fdatasync` makes the bytes durable, and has
    less of them left to wait for."""
    f = _sync_file_range()
    if f is not None:
        f(fd, offset, size, _SYNC_FILE_RANGE_WRITE)


def write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
