"""One publisher per data directory: a non-blocking exclusive ``flock`` on ``.publish.lock``.

The lock is held by the open file, so the kernel releases it when the holder exits or is killed:
a crashed publisher never leaves a stale lock behind. The holder writes its pid into the file so
the second publisher's error can say who holds it. Re-entrant inside one process (a flow may hold
it around ``publish_release`` and ``history.rebuild``, which each take it too).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contracts.errors import TransientError
from contracts.paths import DataDir

_held: dict[Path, int] = {}  # lock path -> re-entry depth, for this process
_guard = threading.Lock()


class LockBusyError(TransientError, RuntimeError):
    """Another process is publishing to the same data directory."""


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def publish_lock(data_dir: Path) -> Iterator[Path]:
    """Hold the data directory's publish lock; raise ``LockBusyError`` at once if it is taken."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = DataDir(data_dir).lock.resolve()
    with _guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _guard:
                _held[path] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusyError(
                f"another publisher holds {path} (pid {_holder(path)}); "
                "wait for it to finish, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        with _guard:
            _held[path] = 1
        try:
            yield path
        finally:
            with _guard:
                del _held[path]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
