"""The ltxrender.v1.RenderService servicer: maps RPCs onto the store, the queue and the engine.

Status codes, one per cause: INVALID_ARGUMENT (bad values), FAILED_PRECONDITION (LoRA not
installed; result fetched before the job is done), ALREADY_EXISTS (request_id reused with a
different manifest), NOT_FOUND (unknown job or artifact), OUT_OF_RANGE (fetch offset past the
end), RESOURCE_EXHAUSTED (upload too large, server disk full), UNAVAILABLE (model loading, data
folder not writable). Handlers raise ShotError / EngineError / StorageError; errors.ErrorStatus
turns them into their status (and anything unexpected into INTERNAL with an incident id).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import shutil
import time
from collections.abc import Callable
from typing import Optional

import grpc

from ..engine.contract import RenderEngine
from ..proto import render_pb2 as pb
from ..proto import render_pb2_grpc as pb_grpc
from .assembly import check_assembly
from .config import ServerConfig
from .convert import (
    ShotError,
    capabilities_to_proto,
    check_artifact_kind,
    check_transport,
    manifest_to_request,
)
from .errors import echo
from .queue import JobBoard, JobRunner
from .storage import StorageGuard, is_storage_failure, shot_bytes, storage_error
from .store import DONE, ENCODING, QUEUED, RUNNING, TERMINAL, JobStore, now_ms
from .upload import ShotUpload

MAX_LIST = 500  # ListJobs answers at most this many jobs
LISTED_PROMPT_CHARS = 200  # prompts in ListJobs are shortened to this (WatchJob/FetchResult carry the rest)


async def _abort(context, code: str, message: str):
    await context.abort(getattr(grpc.StatusCode, code), message)


def manifest_sha256(m: pb.ShotManifest) -> str:
    return hashlib.sha256(m.SerializeToString(deterministic=True)).hexdigest()


class RenderService(pb_grpc.RenderServiceServicer):
    def __init__(self, config: ServerConfig, engine: RenderEngine, store: JobStore, runner: JobRunner, board: JobBoard,
                 load_error: Callable[[], Optional[str]], guard: StorageGuard):
        self.config = config
        self.engine = engine
        self.store = store
        self.runner = runner
        self.board = board
        self.load_error = load_error
        self.guard = guard
        # Frames are verified (no pixels decoded: the job decodes them once) and written here, off the
        # event loop; two at a time bounds the work across all uploads together.
        self._frames = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="frames")

    # ------------------------------------------------------------ helpers
    async def _require_model(self, context) -> None:
        if not self.runner.engine_ready.is_set():
            err = self.load_error()
            if err:
                await _abort(context, "UNAVAILABLE", f"the model failed to load: {err}; fix the server's "
                             "--model/--lora flags and restart it")
            await _abort(context, "UNAVAILABLE", "model is loading, retry in a few seconds")

    async def _job(self, job_id: str, context):
        job = self.store.get(job_id) if job_id else None
        if job is None:
            await _abort(context, "NOT_FOUND", f"no job {echo(job_id)} on this server (finished jobs are removed "
                         f"after {self.config.retention_days:g} days); list jobs with ListJobs")
        return job

    async def _store_frame(self, upload: ShotUpload, frame) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._frames, upload.store, frame)
        except OSError as e:
            if not is_storage_failure(e):
                raise
            err = storage_error(e, "storing an uploaded frame")
            self.guard.failed(err)
            raise err from None

    # ------------------------------------------------------------ capabilities
    async def GetCapabilities(self, request, context):
        await self._require_model(context)
        caps = self.engine.capabilities()
        return capabilities_to_proto(caps, auth_required=bool(self.config.token),
                                     cost=self.board.cost.current(caps.cost_model))

    # ------------------------------------------------------------ submit
    async def SubmitShot(self, request_iterator, context):
        await self._require_model(context)
        manifest, upload, incoming, warnings = None, None, None, []
        try:
            with contextlib.ExitStack() as reserved:
                async for msg in request_iterator:
                    which = msg.WhichOneof("payload")
                    if which == "manifest":
                        if manifest is not None:
                            raise ShotError("INVALID_ARGUMENT", "the manifest was sent twice; send it once, as "
                                            "the first message")
                        manifest = msg.manifest
                        check_transport(manifest)  # bounded ids and lists before anything looks at them
                        digest = manifest_sha256(manifest)
                        if manifest.request_id:
                            existing = self.store.get_by_request(manifest.request_id)
                            if existing is not None:
                                # Idempotent resubmit: answer now, the frames are already stored.
                                return self._deduplicated(existing, digest)
                        if manifest.HasField("assembly"):  # not a render: windows of this server joined
                            check_assembly(manifest, self.store)
                        else:  # the engine's one check, before a byte of the upload is stored
                            warnings = self.engine.check_request(manifest_to_request(manifest))
                        reserved.enter_context(self.guard.reserve(shot_bytes(manifest, self.config.max_upload_bytes)))
                        incoming = self.store.new_incoming_dir()
                        upload = ShotUpload(manifest, incoming, self.config.max_upload_bytes)
                    elif which == "frame":
                        if upload is None:
                            raise ShotError("INVALID_ARGUMENT", "a frame arrived before the manifest; the first "
                                            "message must be the manifest")
                        finished = upload.add(msg.frame)
                        if finished is not None:
                            await self._store_frame(upload, finished)
                    else:
                        raise ShotError("INVALID_ARGUMENT", "empty SubmitShotRequest; set manifest or frame")
                if upload is None:
                    raise ShotError("INVALID_ARGUMENT", "no manifest was sent; the first message must be the manifest")
                upload.finish()
                job, created = self.store.create(manifest, digest, incoming)
                incoming = None
                if not created:  # a concurrent submit with the same request_id won
                    return self._deduplicated(job, digest)
        finally:
            if incoming is not None:  # refused, failed or cut off: nothing of it stays
                shutil.rmtree(incoming, ignore_errors=True)
        self.runner.wake()
        self.board.changed()
        return pb.SubmitShotResponse(job_id=job.job_id, queue_position=self.runner.queue_position(job.job_id),
                                     warnings=warnings)

    def _deduplicated(self, job, digest: str) -> pb.SubmitShotResponse:
        if job.manifest_sha256 != digest:
            # ALREADY_EXISTS (not FAILED_PRECONDITION): the id names an existing, different shot.
            raise ShotError("ALREADY_EXISTS", f"request_id {echo(job.request_id)} was already used for a different "
                            f"shot (job {job.job_id}); use a new request_id for a changed shot")
        return pb.SubmitShotResponse(job_id=job.job_id, deduplicated=True,
                                     queue_position=self.runner.queue_position(job.job_id))

    # ------------------------------------------------------------ watch
    def event(self, job_id: str) -> Optional[pb.JobEvent]:
        job = self.store.get(job_id)
        if job is None:
            return None
        ev = pb.JobEvent(job_id=job_id, state=job.state, message=job.message, error_code=job.error_code,
                         camera_move=job.camera_move, eta_seconds=-1.0, timestamp_ms=now_ms())
        if job.state == QUEUED:
            pos = self.runner.queue_position(job_id)
            ev.queue_position = pos
            ev.stage = "queued" if self.runner.engine_ready.is_set() else "waiting for the model to load"
            if not self.guard.healthy:
                ev.stage = "waiting until the server can write its data folder again"
            running = self.runner.running_job
            ahead = self.board.eta(running) if running else 0.0
            if ahead >= 0 and self.board.job_seconds is not None:
                ev.eta_seconds = ahead + pos * self.board.job_seconds
        elif job.state in (RUNNING, ENCODING):
            live = self.board.live.get(job_id)
            if live is not None:
                ev.stage, ev.step, ev.total_steps = live.stage, live.step, live.total
                ev.camera_move = ev.camera_move or live.camera_move  # known before the store has it
                ev.progress = live.fraction()
                ev.eta_seconds = self.board.eta(job_id)
        elif job.state == DONE:
            ev.progress = 1.0
            ev.stage = "done"
            for a in job.artifacts:
                ev.artifacts.add(kind=a["kind"], filename=a["filename"], size=a["size"], sha256=a["sha256"])
        return ev

    async def WatchJob(self, request, context):
        await self._job(request.job_id, context)
        heartbeat = self.config.heartbeat_s
        last_key, last_sent = None, 0.0
        while True:
            mark = self.board.mark()
            ev = self.event(request.job_id)
            if ev is None:  # deleted by retention while watched
                await _abort(context, "NOT_FOUND", f"job {echo(request.job_id)} was removed")
            key = (ev.state, ev.stage, ev.step, ev.total_steps, ev.queue_position, ev.message, ev.camera_move)
            if key != last_key:
                yield ev
                last_key, last_sent = key, time.monotonic()
            if ev.state in TERMINAL:
                return
            if not await self.board.wait_change(heartbeat - (time.monotonic() - last_sent), mark):
                if time.monotonic() - last_sent >= heartbeat * 0.999:
                    hb = self.event(request.job_id)
                    if hb is not None and hb.state == ev.state:
                        hb.heartbeat = True
                        yield hb
                        last_sent = time.monotonic()

    # ------------------------------------------------------------ cancel / list
    async def CancelJob(self, request, context):
        job = await self._job(request.job_id, context)
        if job.state in TERMINAL:
            return pb.CancelJobResponse(state=job.state)
        state = await self.runner.cancel(job.job_id, self.config.cancel_wait_s)
        return pb.CancelJobResponse(state=state)

    async def ListJobs(self, request, context):
        jobs = self.store.list(limit=min(request.limit or 50, MAX_LIST), states=tuple(request.states))
        return pb.ListJobsResponse(jobs=[
            pb.JobSummary(job_id=j.job_id, request_id=j.request_id, state=j.state, shot_name=j.manifest.shot_name,
                          prompt=j.manifest.prompt[:LISTED_PROMPT_CHARS], created_ms=j.created_ms,
                          finished_ms=j.finished_ms, message=j.message) for j in jobs])

    # ------------------------------------------------------------ fetch
    async def FetchResult(self, request, context):
        check_artifact_kind(request.artifact)
        job = await self._job(request.job_id, context)
        if job.state != DONE:
            await _abort(context, "FAILED_PRECONDITION", f"job {job.job_id} is {pb.JobState.Name(job.state)}; "
                         "results can be fetched once it is DONE (follow it with WatchJob)")
        art = next((a for a in job.artifacts if a["kind"] == request.artifact), None)
        path = self.store.outputs_dir(job.job_id) / art["filename"] if art else None
        if art is None or not path.is_file():
            have = ", ".join(pb.ArtifactKind.Name(a["kind"]) for a in job.artifacts)
            await _abort(context, "NOT_FOUND", f"job {job.job_id} has no {pb.ArtifactKind.Name(request.artifact)} "
                         f"artifact; it has: {have or 'none'}")
        size = art["size"]
        if request.offset > size:
            await _abort(context, "OUT_OF_RANGE", f"offset {request.offset} is past the end of "
                         f"{art['filename']} ({size} bytes); resume from at most {size}")
        offset = request.offset
        with open(path, "rb") as f:
            f.seek(offset)
            while True:
                data = f.read(self.config.chunk_bytes)
                last = offset + len(data) >= size
                yield pb.ResultChunk(offset=offset, data=data, total_size=size, sha256=art["sha256"],
                                     last=last, filename=art["filename"])
                offset += len(data)
                if last:
                    return
