"""A small, real gRPC RenderService on loopback for the add-on tests.

It stands in for the GPU (the one thing that cannot exist here): instead of running LTX-2 it
encodes a real H.264+AAC mp4 (PyAV) and a real wav of the requested length and fps. Every
byte goes through real gRPC: chunked upload, event stream, resumable chunked download.
Knobs: protocol_version (mismatch test), token (auth test), loading (health NOT_SERVING),
step_s (how long each of the 4 fake denoising steps takes).
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
import wave
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np

from render_backend.proto import render_pb2 as pb
from render_backend.proto import render_pb2_grpc as pb_grpc

SAMPLE_RATE = 24000
STEPS = 4


def encode_mp4(frames: int, width: int, height: int, fps: float) -> bytes:
    """A real H.264 + AAC mp4: a grey ramp over `frames` frames plus a 440 Hz stereo tone."""
    from fractions import Fraction

    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as box:
        rate = Fraction(fps).limit_denominator(1001)
        video = box.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = box.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        for i in range(frames):
            img = np.full((height, width, 3), int(255 * i / max(1, frames - 1)), np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(packet)
        for packet in video.encode():
            box.mux(packet)
        pcm = tone(frames / fps)
        chunk = 1024
        for start in range(0, pcm.shape[1], chunk):
            piece = np.ascontiguousarray(pcm[:, start:start + chunk])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            for packet in audio.encode(frame):
                box.mux(packet)
        for packet in audio.encode():
            box.mux(packet)
    return buf.getvalue()


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    mono = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([mono, mono])  # (2, samples)


def encode_wav(seconds: float) -> bytes:
    pcm = (tone(seconds).T * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm.tobytes())
    return buf.getvalue()


@dataclass
class FakeJob:
    job_id: str
    manifest: pb.ShotManifest
    control: dict = field(default_factory=dict)   # index -> PNG bytes
    masks: dict = field(default_factory=dict)
    state: int = pb.JOB_STATE_QUEUED
    step: int = 0
    message: str = ""
    artifacts: dict = field(default_factory=dict)  # kind -> bytes
    cancel: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)


class FakeRenderService(pb_grpc.RenderServiceServicer):
    def __init__(self, *, protocol_version="1.0", token="", step_s=0.05, loading=False, max_width=1920,
                 max_height=1088, lora_factor=1):
        self.protocol_version, self.token, self.step_s, self.loading = protocol_version, token, step_s, loading
        self.max_width, self.max_height, self.lora_factor = max_width, max_height, lora_factor
        self.jobs: dict[str, FakeJob] = {}
        self.by_request: dict[str, str] = {}
        self.fetch_offsets: list[int] = []
        self.fetch_limit: int | None = None  # stop a download after this many bytes (resume test)

    def _auth(self, context):
        if not self.token:
            return
        md = dict(context.invocation_metadata())
        if md.get("authorization") != f"Bearer {self.token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

    def health_check(self, request: bytes, context) -> bytes:
        return b"\x08\x02" if self.loading else b"\x08\x01"

    def GetCapabilities(self, request, context):
        self._auth(context)
        if self.loading:
            context.abort(grpc.StatusCode.UNAVAILABLE, "model is loading")
        return pb.Capabilities(
            protocol_version=self.protocol_version, server_version="fake 0.0", model_id="fake",
            model_variant="fake (test)", frame_step=8, max_frames=257, size_multiple=32, max_width=self.max_width,
            max_height=self.max_height, device="cpu", default_steps=STEPS, default_fps=24.0,
            audio_sample_rate=SAMPLE_RATE, auth_required=bool(self.token),
            loras=[pb.LoraInfo(name="depth-pose", kind=pb.LORA_KIND_CONTROL,
                               reference_downscale_factor=self.lora_factor),
                   pb.LoraInfo(name="dolly-in", kind=pb.LORA_KIND_CAMERA_PRESET, camera_move="dolly_in")])

    def SubmitShot(self, request_iterator, context):
        self._auth(context)
        first = next(request_iterator)
        manifest = first.manifest
        if manifest.request_id in self.by_request:
            job = self.jobs[self.by_request[manifest.request_id]]
            return pb.SubmitShotResponse(job_id=job.job_id, deduplicated=True)
        job = FakeJob(uuid.uuid4().hex[:12], manifest)
        for req in request_iterator:
            target = job.control if req.frame.kind == pb.FRAME_KIND_CONTROL else job.masks
            target.setdefault(req.frame.index, bytearray())
            if len(target[req.frame.index]) != req.frame.offset:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "chunk offset out of order")
            target[req.frame.index] += req.frame.data
        if manifest.num_control_frames and len(job.control) != manifest.num_control_frames:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"got {len(job.control)} control frames, manifest says {manifest.num_control_frames}")
        self.jobs[job.job_id] = job
        self.by_request[manifest.request_id] = job.job_id
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return pb.SubmitShotResponse(job_id=job.job_id, queue_position=1)

    def _set(self, job, **kw):
        with job.changed:
            for k, v in kw.items():
                setattr(job, k, v)
            job.changed.notify_all()

    def _run(self, job: FakeJob):
        time.sleep(self.step_s)
        for step in range(1, STEPS + 1):
            if job.cancel.is_set():
                self._set(job, state=pb.JOB_STATE_CANCELLED, message="cancelled by client")
                return
            self._set(job, state=pb.JOB_STATE_RUNNING, step=step)
            time.sleep(self.step_s)
        self._set(job, state=pb.JOB_STATE_ENCODING)
        m = job.manifest
        w, h = max(32, m.width // 4 // 2 * 2), max(32, m.height // 4 // 2 * 2)
        arts = {pb.ARTIFACT_KIND_VIDEO_MP4: encode_mp4(m.num_frames, w, h, m.fps),
                pb.ARTIFACT_KIND_SIDECAR_JSON: b'{"model": "fake", "seed": %d}' % m.seed}
        if m.audio:
            arts[pb.ARTIFACT_KIND_AUDIO_WAV] = encode_wav(m.num_frames / m.fps)
        self._set(job, artifacts=arts, state=pb.JOB_STATE_DONE)

    def _event(self, job):
        ev = pb.JobEvent(job_id=job.job_id, state=job.state, step=job.step, total_steps=STEPS,
                         stage="denoising" if job.state == pb.JOB_STATE_RUNNING else "",
                         eta_seconds=(STEPS - job.step) * self.step_s, queue_position=1,
                         progress=job.step / STEPS, message=job.message)
        for kind, data in job.artifacts.items():
            ev.artifacts.add(kind=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        return ev

    def WatchJob(self, request, context):
        self._auth(context)
        job = self.jobs.get(request.job_id)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no job {request.job_id}")
        last = None
        while context.is_active():
            with job.changed:
                snapshot = (job.state, job.step)
                if snapshot == last:
                    job.changed.wait(0.5)
                    continue
            last = snapshot
            yield self._event(job)
            if job.state in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
                return

    def CancelJob(self, request, context):
        self._auth(context)
        job = self.jobs.get(request.job_id)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no job {request.job_id}")
        job.cancel.set()
        return pb.CancelJobResponse(state=job.state)

    def FetchResult(self, request, context):
        self._auth(context)
        job = self.jobs.get(request.job_id)
        if job is None or request.artifact not in job.artifacts:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such artifact")
        data = job.artifacts[request.artifact]
        sha = hashlib.sha256(data).hexdigest()
        self.fetch_offsets.append(request.offset)
        if request.offset > len(data):
            context.abort(grpc.StatusCode.OUT_OF_RANGE, f"offset {request.offset} is past the end ({len(data)})")
        if request.offset == len(data):  # like the real server: one empty last chunk
            yield pb.ResultChunk(offset=request.offset, total_size=len(data), sha256=sha, last=True)
            return
        chunk = 64 * 1024
        for off in range(request.offset, len(data), chunk):
            if self.fetch_limit is not None and off >= self.fetch_limit:
                self.fetch_limit = None
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset by test")
            piece = data[off:off + chunk]
            yield pb.ResultChunk(offset=off, data=piece, total_size=len(data), sha256=sha,
                                 last=off + len(piece) >= len(data))

    def ListJobs(self, request, context):
        self._auth(context)
        return pb.ListJobsResponse(jobs=[pb.JobSummary(job_id=j.job_id, request_id=j.manifest.request_id,
                                                       state=j.state) for j in self.jobs.values()])


class FakeServer:
    """Context manager: a FakeRenderService on 127.0.0.1:<free port> (optionally TLS)."""

    def __init__(self, tls: tuple[bytes, bytes] | None = None, port: int = 0,
                 service: FakeRenderService | None = None, **kw):
        self.service = service or FakeRenderService(**kw)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_RenderServiceServicer_to_server(self.service, self.server)
        health = grpc.unary_unary_rpc_method_handler(
            self.service.health_check, request_deserializer=lambda b: b, response_serializer=lambda b: b)
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": health})])
        if tls:
            creds = grpc.ssl_server_credentials([(tls[0], tls[1])])  # (key, cert)
            self.port = self.server.add_secure_port(f"127.0.0.1:{port}", creds)
        else:
            self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(grace=None)
