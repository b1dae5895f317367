"""The render queue: one job at a time on the engine, in a worker thread; live progress; cancel.

The asyncio side (service, watchers) and the worker thread meet in `JobBoard`: the worker
writes progress and calls `changed()` (thread-safe); watchers `await board.wait_change()`.
The SQLite store stays the source of truth for states; the board holds only what changes
every step (stage, step, timings for the ETA).

The queue outlives any one failure: a job that hits a storage failure ends FAILED with the reason
(its last word kept in memory when even that cannot be written, see JobStore.remember), no job
starts while the data folder cannot be written, and an unexpected error fails its job with an
incident id, never the dispatcher. A job stops inside a long step too (the engine checks between
transformer blocks): on CancelJob, at --job-timeout, or when the server stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

from google.protobuf.json_format import MessageToDict

from .. import __version__, media
from ..engine.request import Cancelled, EngineError, RenderResult
from ..proto import render_pb2 as pb
from ..takes import write_tail_zip
from .assembly import run_assembly
from .convert import ShotError, manifest_to_request
from .cost import CostMeter
from .errors import incident
from .storage import StorageError, StorageGuard, is_storage_failure, storage_error
from .store import CANCELLED, DONE, ENCODING, FAILED, QUEUED, RUNNING, JobStore, StoredJob
from .upload import load_controls

log = logging.getLogger("render_backend.server")

# Share of the whole job (0..1) reached when a stage starts; denoising fills the gap linearly.
_STAGE_PROGRESS = {"text encoding": 0.02, "denoising": 0.05, "decoding": 0.90, "encoding": 0.95}


@dataclass
class LiveProgress:
    stage: str = "starting"
    step: int = 0
    total: int = 0
    step_started: float = 0.0
    step_seconds: list[float] = field(default_factory=list)  # duration of each finished step
    started: float = field(default_factory=time.monotonic)
    camera_move: str = ""  # set as soon as the engine has planned the conditioning

    def fraction(self) -> float:
        base = _STAGE_PROGRESS.get(self.stage, 0.0)
        if self.stage == "denoising" and self.total:
            return base + (_STAGE_PROGRESS["decoding"] - base) * self.step / self.total
        return base


class JobBoard:
    """Live progress per running job + a change signal for watchers (asyncio side)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.live: dict[str, LiveProgress] = {}
        self._event = asyncio.Event()
        # Rolling estimates (seconds) for ETAs: the last job's post-denoise time and whole-job time.
        self.after_denoise_s: Optional[float] = None
        self.job_seconds: Optional[float] = None
        self.cost = CostMeter()  # what a shot costs here, measured on finished jobs (Capabilities.cost_model)

    def changed(self) -> None:
        """Thread-safe: wake every watcher."""
        self.loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def mark(self) -> asyncio.Event:
        """Take this before reading state, then `wait_change(..., mark)`: no change is missed."""
        return self._event

    async def wait_change(self, timeout: float, mark: Optional[asyncio.Event] = None) -> bool:
        """Wait until something changes (True) or `timeout` seconds pass (False)."""
        try:
            await asyncio.wait_for((mark or self._event).wait(), max(0.0, timeout))
            return True
        except TimeoutError:
            return False

    def eta(self, job_id: str) -> float:
        """Seconds until the running job is done (mean step time x steps left + decode estimate); -1 unknown."""
        p = self.live.get(job_id)
        if p is None:
            return -1.0
        after = self.after_denoise_s or 0.0
        if p.stage == "denoising" and p.step_seconds and p.total:
            mean = sum(p.step_seconds) / len(p.step_seconds)
            return mean * (p.total - p.step) + after
        if p.stage in ("decoding", "encoding") and self.after_denoise_s is not None:
            return max(0.0, after - (time.monotonic() - p.step_started))
        return -1.0


class JobRunner:
    """Runs queued jobs one at a time. `engine` has .render(req, progress, should_cancel, on_plan).

    job_timeout_s: a job still rendering after this many seconds fails with DEADLINE_EXCEEDED (0: no limit).
    """

    def __init__(self, store: JobStore, engine, board: JobBoard, *, model_info: Callable[[], dict],
                 guard: StorageGuard, on_finished: Callable[[], None] = lambda: None, job_timeout_s: float = 0.0,
                 max_attempts: int = 2):
        self.store = store
        self.engine = engine
        self.board = board
        self.model_info = model_info
        self.guard = guard
        self.on_finished = on_finished
        self.job_timeout_s = job_timeout_s
        self.max_attempts = max_attempts
        self.engine_ready = asyncio.Event()
        self.running_job: Optional[str] = None
        self._cancel_flags: dict[str, threading.Event] = {}
        self._wake = asyncio.Event()
        self._stopping = threading.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._task: Optional[asyncio.Task] = None

    # ------------------------------------------------------------ asyncio side
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._dispatch())

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop after the current step; the interrupted job goes back to QUEUED for the next start."""
        self._stopping.set()
        self._wake.set()
        if self._task:
            if not self.engine_ready.is_set():
                self._task.cancel()  # the model never loaded: nothing runs, don't wait for it
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False)

    async def _dispatch(self) -> None:
        await self.engine_ready.wait()
        while not self._stopping.is_set():
            try:
                if not await self._run_next():
                    await self._idle()
            except StorageError:
                await self._idle()  # reported to the guard already; the probe says when to go on
            except Exception:  # noqa: BLE001 - the queue must outlive any one failure
                incident("the job queue")
                await self._idle()

    async def _idle(self) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), 1.0)
        except TimeoutError:
            pass

    async def _run_next(self) -> bool:
        """Run the next queued job; False when there was none to start (or the disk cannot take one)."""
        if not self.guard.healthy:
            return False
        queued = self.store.queued()
        if not queued:
            return False
        job_id = queued[0]
        job = self.store.get(job_id)
        attempt = job.attempts + 1
        again = "" if attempt == 1 else f" again after a server restart (attempt {attempt} of {self.max_attempts})"
        self._cancel_flags[job_id] = threading.Event()
        try:
            if not self.store.transition(job_id, RUNNING, "running" + again, only_from=(QUEUED,)):
                return True  # cancelled between listing and starting
            self.running_job = job_id
            self.board.live[job_id] = LiveProgress(step_started=time.monotonic())
            self.board.changed()
            await asyncio.get_running_loop().run_in_executor(self._executor, self._execute, job_id, again)
        finally:
            self.running_job = None
            self.board.live.pop(job_id, None)
            self._cancel_flags.pop(job_id, None)
            self.board.changed()
        self.on_finished()
        return True

    async def cancel(self, job_id: str, wait_s: float) -> int:
        """Cancel a job: QUEUED -> CANCELLED now; RUNNING -> the engine stops at its next transformer block
        (waits up to wait_s for that). Returns the state afterwards."""
        try:
            cancelled = self.store.transition(job_id, CANCELLED, "cancelled by a client", only_from=(QUEUED,))
        except StorageError:
            job = self.store.get(job_id)
            cancelled = job is not None and job.state == QUEUED
            if cancelled:  # the database cannot take it now: it will, and the queue skips the job meanwhile
                self.store.remember(job_id, CANCELLED, "cancelled by a client")
        if cancelled:
            self.board.changed()
            return CANCELLED
        flag = self._cancel_flags.get(job_id)
        if flag is not None:
            flag.set()
            deadline = time.monotonic() + wait_s
            while self.running_job == job_id and time.monotonic() < deadline:
                await self.board.wait_change(0.05)
        job = self.store.get(job_id)
        return job.state if job else CANCELLED

    def queue_position(self, job_id: str) -> int:
        """1 = next to run; 0 when not queued."""
        queued = self.store.queued()
        return queued.index(job_id) + 1 if job_id in queued else 0

    # ------------------------------------------------------------ worker thread
    def _execute(self, job_id: str, again: str = "") -> None:
        job = self.store.get(job_id)
        live = self.board.live[job_id]
        flag = self._cancel_flags[job_id]
        t0 = time.monotonic()
        deadline = t0 + self.job_timeout_s if self.job_timeout_s > 0 else float("inf")

        def on_plan(plan: dict) -> None:
            live.camera_move = _camera_move(plan)
            self.board.changed()

        def progress(stage: str, step: int, total: int) -> None:
            now = time.monotonic()
            if stage == "denoising" and live.stage == "denoising" and step > live.step:
                live.step_seconds.append((now - live.step_started) / (step - live.step))
            if stage != live.stage or step != live.step:
                live.step_started = now
            live.stage, live.step, live.total = stage, step, total
            self.board.changed()

        def should_cancel() -> bool:  # asked between transformer blocks: cheap
            return flag.is_set() or self._stopping.is_set() or time.monotonic() > deadline

        try:
            shutil.rmtree(self.store.outputs_dir(job_id), ignore_errors=True)  # an earlier attempt's partial files
            m = job.manifest
            if m.HasField("assembly"):  # windows of a long shot joined into one take: no model work
                progress("assembling", 0, 0)
                sidecar = {"schema": "ltx-render-result/1", "server_version": __version__, "job_id": job_id,
                           "request_id": job.request_id, "shot_name": m.shot_name, "frame_start": m.frame_start}
                artifacts = run_assembly(job, self.store, sidecar)
                self._finish(job_id, DONE, "done", artifacts=artifacts, only_from=(RUNNING,))
                self.board.changed()
                return
            req = manifest_to_request(m, *load_controls(self.store.inputs_dir(job_id), m))
            result = self.engine.render(req, progress=progress, on_plan=on_plan, should_cancel=should_cancel)
            denoise_end = time.monotonic()
            camera_move = _camera_move(result.info)
            self.store.transition(job_id, ENCODING, "encoding mp4 + wav" + again, only_from=(RUNNING,),
                                  camera_move=camera_move)
            progress("encoding", 0, 0)
            artifacts = self._write_outputs(job, result, timings={"render_s": denoise_end - t0})
            self._measure(result, time.monotonic() - denoise_end)  # before DONE: a client asking then sees it
            self._finish(job_id, DONE, "done", artifacts=artifacts, only_from=(ENCODING,))
            self.board.after_denoise_s = time.monotonic() - denoise_end
            self.board.job_seconds = time.monotonic() - t0
        except Cancelled as e:
            where = str(e).removeprefix("cancelled ")  # "inside denoising step 3/8", "before ..."
            if flag.is_set():
                self._finish(job_id, CANCELLED, f"cancelled by a client, {where}")
            elif self._stopping.is_set():  # server shutting down: run it again after the restart
                self._finish(job_id, QUEUED, "interrupted by a server shutdown; re-queued")
            else:
                self._finish(job_id, FAILED, f"the job ran longer than this server's limit of "
                             f"{self.job_timeout_s:g} s (--job-timeout) and was stopped {where}; try fewer frames, "
                             "a smaller size or fewer steps", error_code="DEADLINE_EXCEEDED")
        except (EngineError, ShotError) as e:
            log.warning("job %s failed: %s: %s", job_id, e.code, e)
            self._finish(job_id, FAILED, str(e), error_code=e.code)
        except Exception as e:  # noqa: BLE001 - a bug must fail the job, never the server
            if is_storage_failure(e):
                err = storage_error(e, f"writing job {job_id}")
                self.guard.failed(err)
                shutil.rmtree(self.store.outputs_dir(job_id), ignore_errors=True)  # partial results: space back
                self._finish(job_id, FAILED, err.message, error_code=err.code)
            else:
                self._finish(job_id, FAILED, incident(f"job {job_id}"), error_code="INTERNAL")
        self.board.changed()

    def _measure(self, result: RenderResult, encode_s: float) -> None:
        """Fold a finished job's timings into the cost model; never fails the job."""
        try:
            caps = self.engine.capabilities()
            self.board.cost.record(result.info, encode_s, getattr(caps, "cost_model", None))
        except Exception:  # noqa: BLE001 - an estimate is not worth a failed job
            log.warning("could not measure the job's cost", exc_info=True)

    def _finish(self, job_id: str, state: int, message: str, *, error_code: str = "",
                artifacts: Optional[list[dict]] = None, only_from: tuple[int, ...] = ()) -> None:
        """A job's last transition; kept in memory and written later when the disk refuses it now."""
        try:
            self.store.transition(job_id, state, message, error_code=error_code, artifacts=artifacts,
                                  only_from=only_from)
        except StorageError:
            self.store.remember(job_id, state, message, error_code=error_code, artifacts=artifacts)

    def _write_outputs(self, job: StoredJob, result: RenderResult, timings: dict) -> list[dict]:
        m = job.manifest
        sidecar = result_sidecar(m, result, model=self.model_info(), timings=timings,
                                 job_id=job.job_id, request_id=job.request_id)
        files = media.write_result(self.store.outputs_dir(job.job_id), media.file_stem(m.shot_name),
                                   result.video, result.fps, result.audio if m.audio else None,
                                   result.audio_sample_rate, sidecar)
        artifacts = [{"kind": _ARTIFACT_KINDS[f["kind"]], "filename": f["filename"], "size": f["size"],
                      "sha256": f["sha256"]} for f in files]
        if m.tail_frames:  # what the next window of a long shot continues from
            path = write_tail_zip(self.store.outputs_dir(job.job_id) / "tail.zip", result.video,
                                  result.audio if m.audio else None, result.audio_sample_rate, result.fps,
                                  m.tail_frames)
            artifacts.append({"kind": pb.ARTIFACT_KIND_TAIL_ZIP, "filename": path.name, "size": path.stat().st_size,
                              "sha256": media.sha256_of(path)})
        return artifacts


_ARTIFACT_KINDS = {"mp4": pb.ARTIFACT_KIND_VIDEO_MP4, "wav": pb.ARTIFACT_KIND_AUDIO_WAV,
                   "json": pb.ARTIFACT_KIND_SIDECAR_JSON}


def result_sidecar(m: pb.ShotManifest, result: RenderResult, *, model: dict, timings: dict,
                   job_id: str = "", request_id: str = "") -> dict:
    """Everything needed to reproduce a take: the manifest as sent, the engine's settings
    (seed, steps, LoRAs + sha256, camera classification), model, server version, timings."""
    return {
        "schema": "ltx-render-result/1", "server_version": __version__, "job_id": job_id,
        "request_id": request_id, "shot_name": m.shot_name, "frame_start": m.frame_start,
        "fps": result.fps, "frames": int(len(result.video)), "width": int(result.video.shape[2]),
        "height": int(result.video.shape[1]), "audio_sample_rate": result.audio_sample_rate,
        "model": model, "manifest": MessageToDict(m, preserving_proto_field_name=True),
        "engine": result.info, "camera": result.info.get("camera"),
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def model_info(caps) -> dict:
    """What a sidecar records about the model (EngineCapabilities -> plain dict)."""
    return {"engine": caps.engine, "model_id": caps.model_id, "model_generation": caps.model_generation,
            "generation_source": caps.model_generation_source, "model_variant": caps.model_variant,
            "variant_source": caps.variant_source, "default_stages": caps.stages, "guidance": caps.guidance,
            "device": caps.device, "dtype": caps.dtype}


def _camera_move(info: dict) -> str:
    cam = info.get("camera") if isinstance(info, dict) else None
    if isinstance(cam, dict):
        return str(cam.get("move") or "")
    return str(cam or "")
