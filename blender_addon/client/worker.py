"""The worker owns the network. Blender's UI thread only calls its non-blocking methods
(each starts a daemon thread) and drains `events`, a queue of WorkerEvent, from a timer or
a modal operator. Nothing here touches bpy.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core import jobs
from ..proto import render_pb2 as pb
from .connection import LOADING, NOT_FOUND, UNREACHABLE, ConnectionProblem
from .limits import server_limits
from .profiles import ServerProfile
from .render_client import ARTIFACT_FILES, RenderClient, describe_capabilities

# Event kinds.
SUBMITTED = "submitted"      # job_id known
PROGRESS = "progress"        # state/text/progress changed
FETCHED = "fetched"          # artifacts on disk (files); the UI imports them
FINISHED = "finished"        # failed or cancelled on the server (state says which)
ERROR = "error"              # client-side failure (reason, text); the job may live on
CONNECTION = "connection"    # result of test_connection (ok, text)

_SERVER_STATES = {
    pb.JOB_STATE_QUEUED: jobs.QUEUED,
    pb.JOB_STATE_RUNNING: jobs.RUNNING,
    pb.JOB_STATE_ENCODING: jobs.ENCODING,
    pb.JOB_STATE_DONE: jobs.FETCHING,
    pb.JOB_STATE_FAILED: jobs.FAILED,
    pb.JOB_STATE_CANCELLED: jobs.CANCELLED,
}
# Re-attach delays (s) after a dropped watch stream: covers a server restart.
_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
log = logging.getLogger(__name__)


def connection_key(profile_name: str) -> str:
    """The worker key of a profile's connection test (for busy())."""
    return f"connection:{profile_name}"


@dataclass
class WorkerEvent:
    """What the UI learns. `key` is the job's request_id (or the profile name for CONNECTION)."""

    key: str
    kind: str
    state: str = ""
    job_id: str = ""
    text: str = ""
    progress: float = 0.0
    reason: str = ""
    ok: bool = True
    files: dict[str, str] = field(default_factory=dict)  # "video.mp4" -> absolute path
    limits: dict = field(default_factory=dict)  # CONNECTION: render_client.server_limits(caps)


class RenderWorker:
    """Network jobs in daemon threads, results as events. One worker serves the whole add-on."""

    def __init__(self, client_factory: Callable[[ServerProfile], RenderClient] = RenderClient):
        self.events: queue.Queue[WorkerEvent] = queue.Queue()
        self._client_factory = client_factory
        self._threads: dict[str, threading.Thread] = {}
        self._stop: dict[str, threading.Event] = {}
        self._cancel_requested: set[str] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ UI side (non-blocking)

    def run_shot(self, key: str, profile: ServerProfile, bundle_dir: str | Path, take_dir: str | Path, *,
                 client_info: str = "") -> bool:
        """Check the server (health, protocol major version), submit a bundle, watch the job,
        download its results into take_dir. False when `key` is already being followed."""
        with self._lock:  # a cancel left over from an earlier upload of this key must not hit this one
            self._cancel_requested.discard(key)

        def task(stop: threading.Event):
            with self._client_factory(profile) as client:
                self._emit(key, jobs.SUBMITTING)
                client.check()  # same message as Test connection when the protocol major differs
                reply = client.submit_bundle(bundle_dir, request_id=key, client_info=client_info,
                                             on_bytes=self._upload_progress(key))
                self.events.put(WorkerEvent(key, SUBMITTED, state=jobs.QUEUED, job_id=reply.job_id,
                                            text=jobs.progress_text(jobs.QUEUED, queue_position=reply.queue_position)))
                self._cancel_if_requested(client, key, reply.job_id)  # Cancel pressed during the upload
                self._watch_and_fetch(client, key, reply.job_id, Path(take_dir), stop)
        return self._start(key, task)

    def reattach(self, key: str, profile: ServerProfile, job_id: str, take_dir: str | Path) -> bool:
        """Follow a job submitted earlier (e.g. before Blender restarted) and fetch its results.
        False when `key` is already being followed."""
        def task(stop: threading.Event):
            with self._client_factory(profile) as client:
                self._watch_and_fetch(client, key, job_id, Path(take_dir), stop)
        return self._start(key, task)

    def cancel(self, key: str, profile: ServerProfile | None = None, job_id: str = "") -> None:
        """Cancel a job on the server. Before its id is known (still uploading) the cancel is
        sent as soon as the submit returns. The watch thread then reports CANCELLED."""
        if profile is None or not job_id:
            with self._lock:
                self._cancel_requested.add(key)
            return

        def task(_stop):
            with self._client_factory(profile) as client:
                client.cancel(job_id)
        self._start(f"cancel:{key}", task, error_key=key)

    def test_connection(self, profile: ServerProfile) -> str:
        """Emits one CONNECTION event: ok + health + capability summary, or the reason it failed.
        Returns the worker key of the test (see busy())."""
        def task(_stop):
            with self._client_factory(profile) as client:
                caps = client.check()
                health = client.last_health
            self.events.put(WorkerEvent(profile.name, CONNECTION, ok=True, limits=server_limits(caps),
                                        text=f"Connected (health {health}): " + describe_capabilities(caps)))
        key = connection_key(profile.name)
        self._start(key, task, error_key=profile.name, error_kind=CONNECTION)
        return key

    def poll(self) -> list[WorkerEvent]:
        """Every event so far, without blocking."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def busy(self, key: str | None = None) -> bool:
        with self._lock:
            live = {k: t for k, t in self._threads.items() if t.is_alive()}
            self._threads = live
        return key in live if key else bool(live)

    def join(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Stop watching at the next event (jobs go on on the server; records in the .blend re-attach later)."""
        with self._lock:
            for flag in self._stop.values():
                flag.set()

    # ------------------------------------------------------------------ worker threads

    def _start(self, key: str, task, error_key: str | None = None, error_kind: str = ERROR) -> bool:
        """Run task(stop) in a daemon thread; False (and nothing started) when `key` already runs."""
        stop = threading.Event()

        def run():
            try:
                task(stop)
            except ConnectionProblem as exc:
                self.events.put(WorkerEvent(error_key or key, error_kind, ok=False, reason=exc.reason,
                                            text=str(exc), state=jobs.FAILED))
            except Exception as exc:  # a bug or a disk error: report it, never kill Blender
                self.events.put(WorkerEvent(error_key or key, error_kind, ok=False, reason="other",
                                            text=f"{type(exc).__name__}: {exc}", state=jobs.FAILED))
            finally:
                with self._lock:
                    if self._stop.get(key) is stop:
                        del self._stop[key]

        thread = threading.Thread(target=run, name=f"ltx-render {key}", daemon=True)
        with self._lock:
            running = key in self._threads and self._threads[key].is_alive()
            if not running:
                self._stop[key] = stop
                self._threads[key] = thread
        if running:  # already followed; a second watcher would double-import
            log.info("worker task %s is already running; not starting a second one", key)
            return False
        thread.start()
        return True

    def _cancel_if_requested(self, client: RenderClient, key: str, job_id: str) -> None:
        """Send a cancel that the UI asked for before it knew the job id (once)."""
        with self._lock:
            wanted = key in self._cancel_requested
            self._cancel_requested.discard(key)
        if wanted:
            client.cancel(job_id)

    def _upload_progress(self, key: str, every_s: float = 0.25):
        """on_bytes callback: a SUBMITTING event at most every `every_s` seconds, and at the end."""
        last = [0.0]

        def on_bytes(sent: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= every_s or sent >= total:
                last[0] = now
                self.events.put(WorkerEvent(key, PROGRESS, state=jobs.SUBMITTING, progress=0.1 * sent / max(1, total),
                                            text=jobs.progress_text(jobs.SUBMITTING, step=sent, total_steps=total)))
        return on_bytes

    def _emit(self, key: str, state: str, **kw) -> None:
        self.events.put(WorkerEvent(key, PROGRESS, state=state, text=jobs.progress_text(state), **kw))

    def _watch_and_fetch(self, client: RenderClient, key: str, job_id: str, take_dir: Path,
                         stop: threading.Event) -> None:
        attempts = 0
        while True:
            try:
                final = self._follow(client, key, job_id, stop)
            except ConnectionProblem as exc:
                if exc.reason not in (UNREACHABLE, LOADING) or attempts >= len(_RETRY_DELAYS) or stop.is_set():
                    raise
                time.sleep(_RETRY_DELAYS[attempts])
                attempts += 1
                continue
            if final is None:
                if stop.is_set():
                    return  # detached by the user or shutdown: the record keeps the job
                time.sleep(0.5)  # stream ended early (server restart): re-attach, without spinning
                continue
            break
        if final.state != pb.JOB_STATE_DONE:
            state = _SERVER_STATES.get(final.state, jobs.FAILED)
            self.events.put(WorkerEvent(key, FINISHED, state=state, job_id=job_id, reason=final.error_code,
                                        text=jobs.progress_text(state, message=final.message), ok=False))
            return
        listed = [a.kind for a in final.artifacts]
        files = {}
        for kind in listed or list(ARTIFACT_FILES):
            name = ARTIFACT_FILES.get(kind)
            if not name:
                continue
            self._emit(key, jobs.FETCHING, job_id=job_id)
            try:
                files[name] = str(client.fetch(job_id, kind, take_dir / name))
            except ConnectionProblem as exc:
                # Without a list, wav/sidecar are optional guesses (audio off); the video is not.
                if listed or kind == pb.ARTIFACT_KIND_VIDEO_MP4 or exc.reason != NOT_FOUND:
                    raise
        self.events.put(WorkerEvent(key, FETCHED, state=jobs.FETCHING, job_id=job_id, files=files,
                                    text="Downloaded " + ", ".join(sorted(files)), progress=1.0,
                                    limits=self._limits_after_job(client)))

    @staticmethod
    def _limits_after_job(client: RenderClient) -> dict:
        """The server's limits again, now with the cost it measured on this job (the panel's estimate
        turns "measured" without a Test connection); {} when it cannot say (the take is fetched anyway)."""
        try:
            return server_limits(client.capabilities())
        except ConnectionProblem:
            return {}

    def _follow(self, client: RenderClient, key: str, job_id: str, stop: threading.Event):
        """Relay events until a final one (returned) or the stream ends / stop is set (None)."""
        for event in client.watch(job_id):
            if event.state in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
                return event
            self._cancel_if_requested(client, key, job_id)  # asked after the upload, before the id arrived
            if stop.is_set():
                return None
            if event.heartbeat:
                continue
            state = _SERVER_STATES.get(event.state)
            if state is None:
                continue
            text = jobs.progress_text(state, stage=event.stage, step=event.step, total_steps=event.total_steps,
                                      eta_seconds=event.eta_seconds, queue_position=event.queue_position,
                                      message=event.message)
            self.events.put(WorkerEvent(key, PROGRESS, state=state, job_id=job_id, text=text,
                                        progress=event.progress))
        return None
