"""The job store: one SQLite file for jobs and their state transitions, files under data_dir/jobs/.

Layout under `data_dir`:

    jobs.sqlite3
    jobs/<job_id>/inputs/control/000000.png   control canvas frames as uploaded (0-based index)
    jobs/<job_id>/inputs/mask/000000.png      mask frames (optional)
    jobs/<job_id>/outputs/<shot>.mp4|.wav|.json
    incoming/<uuid>/...                       uploads in progress; renamed to jobs/<job_id> when complete

States follow `ltxrender.v1.JobState` numbers. Every change is a row in `transitions`
with a millisecond timestamp, so a job's history survives restarts. All methods are
thread-safe (one connection, one lock): the asyncio service and the engine worker thread
both call them.

A write that fails (full disk, read-only or vanished folder) raises `StorageError` and is reported
to `on_failure`. The runner's last word on a job (FAILED, DONE...) is never lost to such a failure:
`remember()` keeps it in memory, readers see it at once, and `flush_pending()` writes it once the
disk takes writes again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..proto import render_pb2 as pb
from .storage import StorageError, storage_error

QUEUED, RUNNING, ENCODING = pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING, pb.JOB_STATE_ENCODING
DONE, FAILED, CANCELLED = pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED
TERMINAL = (DONE, FAILED, CANCELLED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  request_id TEXT UNIQUE,
  manifest BLOB NOT NULL,          -- serialized ltxrender.v1.ShotManifest
  manifest_sha256 TEXT NOT NULL,   -- for idempotency: same request_id must carry the same manifest
  state INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  error_code TEXT NOT NULL DEFAULT '',
  camera_move TEXT NOT NULL DEFAULT '',
  artifacts TEXT NOT NULL DEFAULT '[]',  -- JSON list of {kind, filename, size, sha256}
  attempts INTEGER NOT NULL DEFAULT 0,   -- times the job started running
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL             -- queue order (monotonic)
);
CREATE TABLE IF NOT EXISTS transitions (
  job_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE TABLE IF NOT EXISTS probe (at_ms INTEGER NOT NULL);  -- one row, rewritten to test that writes work
"""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class StoredJob:
    """One job as the server's SQLite store holds it (the add-on's own record of a job it sent is
    blender_addon.core.jobs.JobRecord)."""

    job_id: str
    request_id: str
    manifest: pb.ShotManifest
    manifest_sha256: str
    state: int
    message: str = ""
    error_code: str = ""
    camera_move: str = ""
    artifacts: list[dict] = field(default_factory=list)
    attempts: int = 0
    created_ms: int = 0
    started_ms: int = 0
    finished_ms: int = 0

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


class JobStore:
    def __init__(self, data_dir: str | Path, on_failure: Callable[[StorageError], None] = lambda err: None):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.jobs_dir = self.data_dir / "jobs"
        self.incoming_dir = self.data_dir / "incoming"
        self.on_failure = on_failure
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        # Uploads that never completed (client or server died mid-stream) are garbage.
        shutil.rmtree(self.incoming_dir, ignore_errors=True)
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._finished_bytes: dict[str, int] = {}  # job_id -> bytes of its folder, finished jobs only
        self._pending: dict[str, dict] = {}  # job_id -> a final transition not yet written (disk full)
        self._db = sqlite3.connect(self.data_dir / "jobs.sqlite3", check_same_thread=False,
                                   isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _writing(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; a storage failure rolls back and becomes a StorageError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as e:
                self._rollback()
                raise self._failure(e, doing) from None

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # a failed rollback leaves the transaction to SQLite's own recovery

    def _failure(self, exc: BaseException, doing: str) -> StorageError:
        err = storage_error(exc, doing)
        self.on_failure(err)
        return err

    def probe_write(self) -> None:
        """A real write of a file in each data folder and a database row, then the transitions that could not be
        written before. Raises on failure (StorageGuard's recovery test)."""
        for folder in (self.data_dir, self.incoming_dir, self.jobs_dir):
            probe = folder / ".write-probe"
            with open(probe, "wb") as f:
                f.write(b"probe")
                f.flush()
                os.fsync(f.fileno())
            probe.unlink()
        with self._writing("testing the job database") as db:
            db.execute("DELETE FROM probe")
            db.execute("INSERT INTO probe VALUES (?)", (now_ms(),))
        self.flush_pending()

    # ------------------------------------------------------------ files
    def new_incoming_dir(self) -> Path:
        """A fresh upload folder with its `inputs/` (present even for a shot without controls)."""
        d = self.incoming_dir / uuid.uuid4().hex
        try:
            (d / "inputs").mkdir(parents=True)
        except OSError as e:
            shutil.rmtree(d, ignore_errors=True)
            raise self._failure(e, "storing an upload") from None
        return d

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def inputs_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "inputs"

    def outputs_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "outputs"

    # ------------------------------------------------------------ create / read
    def create(self, manifest: pb.ShotManifest, manifest_sha256: str, incoming: Path) -> tuple[StoredJob, bool]:
        """Insert a QUEUED job whose inputs are in `incoming` (moved into jobs/<job_id>).

        Returns (job, created). With a request_id already in the store the existing job is
        returned with created=False and `incoming` is deleted (idempotent resubmit).
        """
        job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
        request_id = manifest.request_id or None
        with self._lock:
            if request_id:
                existing = self._get_by_request(request_id)
                if existing is not None:
                    shutil.rmtree(incoming, ignore_errors=True)
                    return existing, False
            # The directory rename is atomic: a job row never points at half-written inputs.
            try:
                incoming.rename(self.job_dir(job_id))
            except OSError as e:
                raise self._failure(e, "storing the upload") from None
            t = now_ms()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
                self._db.execute(
                    "INSERT INTO jobs (job_id, request_id, manifest, manifest_sha256, state, created_ms, seq)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job_id, request_id, manifest.SerializeToString(deterministic=True), manifest_sha256,
                     QUEUED, t, seq))
                self._db.execute("INSERT INTO transitions VALUES (?, ?, ?, ?)", (job_id, QUEUED, t, "submitted"))
                self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as e:
                self._rollback()
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)  # no row: the files are garbage
                raise self._failure(e, "recording the new job") from None
            return self._get(job_id), True

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as e:
                raise self._failure(e, "reading the job database") from None

    def get(self, job_id: str) -> Optional[StoredJob]:
        with self._reading():
            return self._get(job_id)

    def get_by_request(self, request_id: str) -> Optional[StoredJob]:
        with self._reading():
            return self._get_by_request(request_id)

    def list(self, limit: int = 50, states: tuple[int, ...] = ()) -> list[StoredJob]:
        """Newest first."""
        q, args = "SELECT * FROM jobs", []
        if states:
            q += f" WHERE state IN ({','.join('?' * len(states))})"
            args += list(states)
        q += " ORDER BY seq DESC LIMIT ?"
        with self._reading() as db:
            return [self._row(r) for r in db.execute(q, (*args, limit)).fetchall()]

    def queued(self) -> list[str]:
        """Ids of QUEUED jobs in the order they will run (a job whose end is not written yet is not one)."""
        with self._reading() as db:
            rows = db.execute("SELECT job_id FROM jobs WHERE state = ? ORDER BY seq", (QUEUED,))
            return [r[0] for r in rows.fetchall() if r[0] not in self._pending]

    def transitions(self, job_id: str) -> list[tuple[int, int, str]]:
        """[(state, at_ms, message)] oldest first."""
        with self._reading() as db:
            rows = db.execute("SELECT state, at_ms, message FROM transitions WHERE job_id = ? ORDER BY rowid",
                              (job_id,))
            return [tuple(r) for r in rows.fetchall()]

    # ------------------------------------------------------------ transitions
    def transition(self, job_id: str, state: int, message: str = "", *, only_from: tuple[int, ...] = (),
                   error_code: str = "", artifacts: Optional[list[dict]] = None,
                   camera_move: Optional[str] = None) -> bool:
        """Move a job to `state` (optionally only if it is currently in one of `only_from`).

        Returns False when the guard did not match (e.g. a cancel raced the worker). Raises StorageError.
        """
        t = now_ms()
        sets = ["state = ?", "message = ?", "error_code = ?"]
        args: list = [state, message, error_code]
        if state == RUNNING:
            sets += ["started_ms = ?", "attempts = attempts + 1"]
            args.append(t)
        if state in TERMINAL:
            sets.append("finished_ms = ?")
            args.append(t)
        if artifacts is not None:
            sets.append("artifacts = ?")
            args.append(json.dumps(artifacts))
        if camera_move is not None:
            sets.append("camera_move = ?")
            args.append(camera_move)
        where, wargs = "job_id = ?", [job_id]
        if only_from:
            where += f" AND state IN ({','.join('?' * len(only_from))})"
            wargs += list(only_from)
        with self._writing("recording a job's state") as db:
            cur = db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE {where}", (*args, *wargs))
            if cur.rowcount == 0:
                return False
            db.execute("INSERT INTO transitions VALUES (?, ?, ?, ?)", (job_id, state, t, message))
            return True

    def remember(self, job_id: str, state: int, message: str, *, error_code: str = "",
                 artifacts: Optional[list[dict]] = None) -> None:
        """A job's final transition that the database could not take: readers see it now, flush_pending()
        writes it later. Never raises."""
        with self._lock:
            self._pending[job_id] = {"state": state, "message": message, "error_code": error_code,
                                     "artifacts": artifacts}

    def flush_pending(self) -> None:
        """Write the remembered transitions (raises StorageError while the disk still refuses)."""
        with self._lock:
            pending = list(self._pending.items())
        for job_id, p in pending:
            self.transition(job_id, p["state"], p["message"], error_code=p["error_code"], artifacts=p["artifacts"])
            with self._lock:
                if self._pending.get(job_id) is p:
                    del self._pending[job_id]

    def recover(self, max_attempts: int) -> list[tuple[str, int]]:
        """After a restart: re-queue jobs that were RUNNING/ENCODING, or fail them.

        A job is failed (not re-queued) when its inputs are gone or it already started
        `max_attempts` times (it may be what crashed the server). Returns [(job_id, new_state)].
        """
        changed = []
        with self._reading() as db:
            rows = db.execute("SELECT job_id, attempts, manifest FROM jobs WHERE state IN (?, ?)",
                              (RUNNING, ENCODING)).fetchall()
        for job_id, attempts, manifest in rows:
            needs_inputs = bool(pb.ShotManifest.FromString(manifest).controls)
            if needs_inputs and not self.inputs_dir(job_id).is_dir():
                self.transition(job_id, FAILED, "the server restarted and this job's input files are "
                                "missing; submit the shot again", error_code="ABORTED")
                changed.append((job_id, FAILED))
            elif attempts >= max_attempts:
                self.transition(job_id, FAILED, f"the server stopped during this job {attempts} times; "
                                "not retrying (try fewer frames or a smaller size)", error_code="ABORTED")
                changed.append((job_id, FAILED))
            else:
                self.transition(job_id, QUEUED, f"re-queued after a server restart (attempt {attempts + 1} of "
                                f"{max_attempts})")
                changed.append((job_id, QUEUED))
        return changed

    def enforce_retention(self, max_age_days: float, max_bytes: int) -> list[str]:
        """Delete finished jobs (row + files) older than max_age_days, then oldest first until
        the finished jobs' files total at most max_bytes. Queued/running jobs are never touched."""
        removed = []
        cutoff = now_ms() - int(max_age_days * 86400 * 1000)
        with self._reading() as db:
            rows = db.execute(
                f"SELECT job_id, finished_ms FROM jobs WHERE state IN ({','.join('?' * len(TERMINAL))})"
                " ORDER BY finished_ms, rowid", TERMINAL).fetchall()
        # A finished job's files never change, so each folder is walked once per server run, not
        # after every job (thousands of kept jobs would otherwise cost seconds between jobs).
        sizes = {job_id: self._finished_bytes.get(job_id) for job_id, _ in rows}
        for job_id, size in sizes.items():
            if size is None:
                sizes[job_id] = self._finished_bytes[job_id] = _dir_bytes(self.job_dir(job_id))
        total = sum(sizes.values())
        for job_id, finished in rows:
            if finished < cutoff or total > max_bytes:
                total -= sizes[job_id]
                self._delete(job_id)
                removed.append(job_id)
        return removed

    def _delete(self, job_id: str) -> None:
        self._finished_bytes.pop(job_id, None)
        with self._writing("deleting an old job") as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM transitions WHERE job_id = ?", (job_id,))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # ------------------------------------------------------------ rows
    def _get(self, job_id: str) -> Optional[StoredJob]:
        r = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return self._row(r) if r else None

    def _get_by_request(self, request_id: str) -> Optional[StoredJob]:
        r = self._db.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
        return self._row(r) if r else None

    def _row(self, r) -> StoredJob:
        d = dict(r)  # sqlite3.Row
        pending = self._pending.get(d["job_id"])
        if pending is not None:  # what the database will say once it can be written
            d.update({k: v for k, v in pending.items() if v is not None})
            d["artifacts"] = json.dumps(pending["artifacts"] or [])
        manifest = pb.ShotManifest.FromString(d["manifest"])
        return StoredJob(job_id=d["job_id"], request_id=d["request_id"] or "", manifest=manifest,
                         manifest_sha256=d["manifest_sha256"], state=d["state"], message=d["message"],
                         error_code=d["error_code"], camera_move=d["camera_move"],
                         artifacts=json.loads(d["artifacts"]), attempts=d["attempts"],
                         created_ms=d["created_ms"], started_ms=d["started_ms"],
                         finished_ms=d["finished_ms"])


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
