"""Atomic, deterministic file writes: write aside, fsync, rename into place.

``mkstemp``/``mkdtemp`` create files 0600 and folders 0700 whatever the umask; published files
must be readable like any other file the user creates, so every write ends with ``readable_mode``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.errors import TerminalError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the kernel tells it (Linux >= 4.7).

    Elsewhere ``os.umask`` must set a value to return the old one; the lock keeps two threads
    of this process from seeing the temporary value.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def readable_mode(path: Path) -> None:
    """Give ``path`` the mode plain ``open``/``mkdir`` would: 0o666 or 0o777 minus the umask."""
    full = 0o777 if path.is_dir() else 0o666
    os.chmod(path, full & ~_umask())


def fsync_path(path: Path | str) -> None:
    """Flush a file's bytes, or a folder's entries, to the disk: a rename is durable only once
    the renamed file's bytes were flushed before it and its folder after it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: Path | str, path: Path) -> None:
    """Rename the flushed ``tmp`` over ``path`` and flush the folder, so that after a power loss
    ``path`` is the old file or the new one, not an empty or missing one."""
    os.replace(tmp, path)
    fsync_path(Path(path).parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of either, even after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        readable_mode(Path(tmp))
        durable_replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(frame: pl.DataFrame | pa.Table, path: Path) -> None:
    """Parquet with fixed settings (zstd level 3, statistics) so equal input gives equal bytes.

    A Polars frame is written by Polars; an Arrow table by pyarrow, which keeps its schema as
    given (plain ``string``, field and schema metadata: the Parquet contract of
    ``warehouse.contract``), in one chunk so that how it was assembled never shows in the bytes.
    Written aside, flushed and renamed into place (``durable_replace``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if hasattr(frame, "write_parquet"):  # a Polars frame
            frame.write_parquet(tmp, compression="zstd", compression_level=3, statistics=True)
        else:
            import pyarrow.parquet as pq

            pq.write_table(frame.combine_chunks(), tmp, compression="zstd", compression_level=3,
                           write_statistics=True)
        fsync_path(tmp)  # neither writer flushes to the disk
        readable_mode(Path(tmp))
        durable_replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def not_replaceable(out: Path, marker: str, what: str) -> str | None:
    """Why ``out`` may not be replaced whole by a new ``what`` (None: it may): it is a file, or
    a folder with files that lacks ``marker``, the file every earlier ``what`` holds."""
    if out.exists() and not out.is_dir():
        return f"{out}: is a file; give a folder for the {what}"
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        return (f"{out}: not empty and not an earlier {what} (no {marker}); the {what} replaces "
                "its folder whole: give a new or empty folder")
    return None


def _aside(out: Path, kind: str) -> str:
    """The name prefix of ``out``'s aside folders: ``.<name>.<kind>-<pid>-`` (kind: ``tmp`` the
    new folder being written, ``old`` the previous one being removed)."""
    return f".{out.name}.{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


def _sweep(out: Path) -> None:
    """Remove the aside folders of writes into ``out`` whose process is gone (killed)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:tmp|old)-(\d+)-[a-z0-9_]+")
    for stale in out.parent.iterdir():
        if (m := pattern.fullmatch(stale.name)) and not _alive(int(m.group(1))):
            shutil.rmtree(stale, ignore_errors=True)


def _swap(tmp: Path, out: Path) -> None:
    """Rename the finished folder ``tmp`` into place; an earlier one at ``out`` is moved aside
    first (and back, should the second rename fail), then removed."""
    if not out.exists():
        os.rename(tmp, out)
        fsync_path(out.parent)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=_aside(out, "old")))
    os.rename(out, old / out.name)
    try:
        os.rename(tmp, out)
        fsync_path(out.parent)
    except BaseException:
        os.rename(old / out.name, out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def replacing_folder(out: Path) -> Iterator[Path]:
    """A new, empty folder beside ``out`` to write a whole folder into (an export, the report);
    renamed into place when the block ends, removed if it fails: ``out`` is the previous folder
    or the new one, never half of either. Leftovers of killed writers are swept first."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _sweep(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=_aside(out, "tmp")))
    try:
        readable_mode(tmp)
        yield tmp
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: Free space a run needs in its data directory: a release is 1-3 MB raw and about as much again
#: published, a rebuilt database about 20 MB per 10 releases; below this, stop before writing.
MIN_FREE_BYTES = 64 * 1024 * 1024


class WriteCheckError(TerminalError, OSError):
    """The data directory cannot be written (read-only, no permission, disk full)."""


def check_writable(folder: Path, min_free: int = MIN_FREE_BYTES) -> None:
    """Create ``folder`` if needed and write a probe file in it, and check the free space, so a
    run that cannot write fails at once with the cause, not half-way with a traceback."""
    probe = Path(folder) / f".write-probe-{os.getpid()}"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as fh:
            try:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                probe.unlink()
    except OSError as exc:
        raise WriteCheckError(f"{folder}: cannot write to the data directory "
                              f"({exc.strerror or exc}); choose another --data-dir or free it "
                              "up") from None
    free = shutil.disk_usage(folder).free
    if free < min_free:
        raise WriteCheckError(f"{folder}: only {free / 2**20:.1f} MiB free on its disk; a run "
                              f"needs {min_free / 2**20:.0f} MiB: free some space first")
