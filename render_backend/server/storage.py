"""The data folder's health: free space, writability, and what a storage failure tells a client.

Every write of the server's own state (SQLite rows, uploaded frames, results) can fail: the disk fills up,
the folder turns read-only or disappears. Such a failure becomes a `StorageError`, one status per cause:
RESOURCE_EXHAUSTED for a full disk, UNAVAILABLE for a folder the server cannot write. Client messages
never carry server paths or OS error text; the log line does.

`StorageGuard` is the server's view of its folder. Any failure, or free space under the reserve, makes it
unhealthy: health says NOT_SERVING, submits are refused and no job starts. A probe loop turns it healthy
again by itself once a real write succeeds and the space is back.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from ..proto import render_pb2 as pb

log = logging.getLogger("render_backend.server")
MIB = 2**20

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
_GONE = {errno.ENOENT, errno.ENOTDIR, errno.ESTALE}
STORAGE_ERRNOS = _FULL | _UNWRITABLE | _GONE | {errno.EIO}


class StorageError(Exception):
    """The server could not write (or find) its own data. `code` is a grpc status name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def disk_full(doing: str) -> StorageError:
    return StorageError("RESOURCE_EXHAUSTED", f"the server's disk is full ({doing}); ask its admin to free space "
                        "on the server's data disk (the server resumes by itself), then submit again")


def unwritable(doing: str, why: str = "read-only or not permitted") -> StorageError:
    return StorageError("UNAVAILABLE", f"the server cannot write its data folder ({why}) while {doing}; ask its "
                        "admin to fix the folder (the server resumes by itself), then try again")


def storage_error(exc: BaseException, doing: str) -> StorageError:
    """The StorageError for an OSError or sqlite3 error raised while `doing` something."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if "full" in text:
            return disk_full(doing)
        if "readonly" in text or "read-only" in text:
            return unwritable(doing)
        return unwritable(doing, "its job database cannot be written")
    number = getattr(exc, "errno", None)
    if number in _FULL:
        return disk_full(doing)
    if number in _GONE:
        return unwritable(doing, "the folder is missing")
    if number in _UNWRITABLE:
        return unwritable(doing)
    return unwritable(doing, "input/output error")


def is_storage_failure(exc: BaseException) -> bool:
    """OSErrors that say the data folder itself is failing (not e.g. a bad file name)."""
    return isinstance(exc, (StorageError, sqlite3.OperationalError)) or \
        (isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS)


def shot_bytes(m: pb.ShotManifest, max_upload_bytes: int) -> int:
    """What a shot may need on disk, in bytes: its frames as raw pixels (PNG rarely beats that by less than
    nothing), capped by the upload limit, plus results: video at a quarter of raw, 48 kHz stereo 16-bit wav."""
    upload = sum(c.num_frames * c.width * c.height * (4 if c.has_mask else 3) for c in m.controls)
    seconds = m.num_frames / m.fps if m.fps > 0 else 0.0
    results = m.num_frames * m.width * m.height * 3 // 4 + int(seconds * 48000 * 4)
    return min(upload, max_upload_bytes) + results + MIB  # + sidecar, SQLite rows, file system slack


class StorageGuard:
    """Healthy while the data folder takes writes and has more than `min_free_bytes` free.

    failed() may be called from any thread; on_change(healthy) runs on the asyncio loop.
    """

    def __init__(self, data_dir: Path, probe_write: Callable[[], None], min_free_bytes: int, probe_s: float,
                 loop: asyncio.AbstractEventLoop, on_change: Callable[[bool], None]):
        self.data_dir = data_dir
        self.probe_write = probe_write  # a real write of a file and a database row; raises on failure
        self.min_free_bytes = min_free_bytes
        self.probe_s = probe_s
        self.loop = loop
        self.on_change = on_change
        self.error: Optional[StorageError] = None  # None = healthy
        self._lock = threading.Lock()
        self._reserved = 0  # bytes promised to uploads in progress
        self._db_inode = self._inode()

    @property
    def healthy(self) -> bool:
        return self.error is None

    def _inode(self) -> Optional[int]:
        try:
            return (self.data_dir / "jobs.sqlite3").stat().st_ino
        except OSError:
            return None

    def free_bytes(self) -> int:
        st = os.statvfs(self.data_dir)
        return st.f_bavail * st.f_frsize

    def failed(self, err: StorageError) -> None:
        """A write failed: unhealthy until the probe says otherwise (thread-safe)."""
        with self._lock:
            was = self.error is None
            self.error = err
        if was:
            log.error("storage: %s; NOT_SERVING until the data folder %s takes writes again", err, self.data_dir)
            self.loop.call_soon_threadsafe(self.on_change, False)

    def require(self, need_bytes: int) -> None:
        """Raise the StorageError a submit should answer when `need_bytes` more would not fit."""
        if self.error is not None:
            raise self.error
        try:
            free = self.free_bytes()
        except OSError as e:
            raise unwritable("checking free space", "the folder is missing") from e
        with self._lock:
            left = free - self._reserved - self.min_free_bytes
        if need_bytes > left:
            raise StorageError(
                "RESOURCE_EXHAUSTED",
                f"the server's disk has {free / MIB:.0f} MiB free; this shot needs about {need_bytes / MIB:.0f} MiB "
                f"(frames and results) on top of the {self.min_free_bytes / MIB:.0f} MiB reserve and "
                f"{self._reserved / MIB:.0f} MiB promised to uploads in progress; send fewer or smaller frames, "
                "or ask the server's admin to free space")

    @contextmanager
    def reserve(self, need_bytes: int) -> Iterator[None]:
        """Hold `need_bytes` for one upload, so that concurrent uploads cannot overcommit the disk together."""
        self.require(need_bytes)
        with self._lock:
            self._reserved += need_bytes
        try:
            yield
        finally:
            with self._lock:
                self._reserved -= need_bytes

    # ------------------------------------------------------------ the probe
    def check(self) -> Optional[StorageError]:
        """What is wrong with the data folder now (None: nothing). Blocking: run it off the event loop."""
        if self._inode() != self._db_inode:
            return unwritable("checking the data folder", "the folder or its job database was removed or replaced")
        try:  # the folders uploads and results go to may be mounted apart from the database's
            stats = [os.statvfs(self.data_dir / sub) for sub in ("", "incoming", "jobs")]
        except OSError:
            return unwritable("checking the data folder", "the folder is missing")
        if any(s.f_flag & os.ST_RDONLY for s in stats):
            return unwritable("checking the data folder")
        st = stats[0]
        if st.f_bavail * st.f_frsize < self.min_free_bytes:
            return disk_full(f"{st.f_bavail * st.f_frsize / MIB:.0f} MiB free, under the server's "
                             f"{self.min_free_bytes / MIB:.0f} MiB reserve")
        if self.error is not None:  # only a real write proves a failed folder works again
            try:
                self.probe_write()
            except (OSError, sqlite3.Error, StorageError) as e:
                return storage_error(e, "testing the data folder")
        return None

    async def run(self) -> None:
        """Probe every probe_s seconds; report each change between healthy and unhealthy."""
        while True:
            await asyncio.sleep(self.probe_s)
            try:
                err = await asyncio.to_thread(self.check)
            except Exception as e:  # noqa: BLE001 - the probe must outlive anything odd
                err = storage_error(e, "testing the data folder")
            if err is not None:
                self.failed(err)
            elif self.error is not None:
                with self._lock:
                    self.error = None
                log.warning("storage: the data folder %s takes writes again; serving", self.data_dir)
                self.on_change(True)
