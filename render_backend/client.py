"""A small synchronous Python client for the render service (tests, demo, scripts).

    client = ServiceClient("127.0.0.1:50051", token=None, root_cert=None)
    job = client.submit(manifest, control_pngs, mask_pngs)
    final = client.wait(job.job_id, on_event=print)
    client.fetch(job.job_id, pb.ARTIFACT_KIND_VIDEO_MP4, "out/shot.mp4")

The Blender add-on has its own client (blender_addon.client.render_client.RenderClient, which
reads connection profiles and turns gRPC errors into messages for artists); this one is for Python
users of the backend: scripts, benchmarks and the server tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Optional

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .media import sha256_of
from .proto import render_pb2 as pb
from .proto import render_pb2_grpc as pb_grpc
from .server.convert import PROTOCOL_VERSION

TERMINAL = (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)
ARTIFACT_SUFFIX = {pb.ARTIFACT_KIND_VIDEO_MP4: ".mp4", pb.ARTIFACT_KIND_AUDIO_WAV: ".wav",
                   pb.ARTIFACT_KIND_SIDECAR_JSON: ".json"}


class IntegrityError(Exception):
    """A downloaded artifact's sha256 does not match the server's."""


class ServiceClient:
    def __init__(self, address: str, token: Optional[str] = None, root_cert: Optional[bytes | str | Path] = None,
                 timeout: float = 60.0, server_name: Optional[str] = None):
        """`root_cert`: PEM bytes or a path, enables TLS. `server_name` overrides the TLS host name check."""
        opts = [("grpc.max_receive_message_length", 16 * 2**20)]
        if root_cert is not None:
            pem = root_cert if isinstance(root_cert, bytes) else Path(root_cert).read_bytes()
            if server_name:
                opts.append(("grpc.ssl_target_name_override", server_name))
            self.channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(pem), options=opts)
        else:
            self.channel = grpc.insecure_channel(address, options=opts)
        self.stub = pb_grpc.RenderServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ calls
    def health(self, service: str = "") -> str:
        """'SERVING' / 'NOT_SERVING' (no token needed)."""
        r = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

    def capabilities(self) -> pb.Capabilities:
        return self.stub.GetCapabilities(pb.GetCapabilitiesRequest(client_protocol_version=PROTOCOL_VERSION),
                                         metadata=self.metadata, timeout=self.timeout)

    def submit(self, manifest: pb.ShotManifest, control_pngs: Sequence[bytes] = (),
               mask_pngs: Sequence[bytes] = (), chunk_bytes: int = 1 << 20) -> pb.SubmitShotResponse:
        """A shot with at most one control: the manifest, then that control's canvas and mask PNGs."""
        return self.submit_controls(manifest, [(control_pngs, mask_pngs)] if manifest.controls else [],
                                    chunk_bytes)

    def submit_controls(self, manifest: pb.ShotManifest, frames: Sequence[tuple[Sequence[bytes], Sequence[bytes]]],
                        chunk_bytes: int = 1 << 20, conditions: Sequence[Sequence[bytes]] = ()) -> pb.SubmitShotResponse:
        """The manifest, then for each control i (canvas PNGs, mask PNGs), then each frame condition's
        PNGs, chunked."""
        return self.stub.SubmitShot(submit_messages(manifest, frames, chunk_bytes, conditions),
                                    metadata=self.metadata, timeout=self.timeout)

    def watch(self, job_id: str, timeout: Optional[float] = None) -> Iterator[pb.JobEvent]:
        """Events until the job ends (the stream closes after a terminal state)."""
        return self.stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=self.metadata, timeout=timeout)

    def wait(self, job_id: str, on_event: Optional[Callable[[pb.JobEvent], None]] = None,
             timeout: Optional[float] = None) -> pb.JobEvent:
        """Follow a job to its end; returns the final event."""
        last = None
        for ev in self.watch(job_id, timeout=timeout):
            if on_event:
                on_event(ev)
            last = ev
        return last

    def cancel(self, job_id: str) -> int:
        return self.stub.CancelJob(pb.CancelJobRequest(job_id=job_id), metadata=self.metadata,
                                   timeout=self.timeout).state

    def list_jobs(self, limit: int = 0, states: Iterable[int] = ()) -> list[pb.JobSummary]:
        return list(self.stub.ListJobs(pb.ListJobsRequest(limit=limit, states=list(states)),
                                       metadata=self.metadata, timeout=self.timeout).jobs)

    def fetch_chunks(self, job_id: str, artifact: int, offset: int = 0) -> Iterator[pb.ResultChunk]:
        return self.stub.FetchResult(pb.FetchResultRequest(job_id=job_id, artifact=artifact, offset=offset),
                                     metadata=self.metadata, timeout=self.timeout)

    def fetch(self, job_id: str, artifact: int, dest: str | Path) -> Path:
        """Download an artifact to `dest`, resuming a previous `dest.part`; sha256 checked before the
        rename, so `dest` only ever holds a complete, verified file."""
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        offset = part.stat().st_size if part.exists() else 0
        expected = None
        with open(part, "ab") as f:
            for chunk in self.fetch_chunks(job_id, artifact, offset):
                f.write(chunk.data)
                expected = chunk.sha256
        digest = sha256_of(part)
        if digest != expected:
            part.unlink()
            raise IntegrityError(f"{dest.name}: sha256 {digest} != server's {expected}; the partial file was "
                                 "removed, fetch again")
        os.replace(part, dest)
        return dest


def submit_messages(manifest: pb.ShotManifest, frames: Sequence[tuple[Sequence[bytes], Sequence[bytes]]],
                    chunk_bytes: int, conditions: Sequence[Sequence[bytes]] = ()) -> Iterator[pb.SubmitShotRequest]:
    yield pb.SubmitShotRequest(manifest=manifest)
    streams = [(i, kind, pngs) for i, (canvases, masks) in enumerate(frames)
               for kind, pngs in ((pb.FRAME_KIND_CONTROL, canvases), (pb.FRAME_KIND_MASK, masks))]
    streams += [(i, pb.FRAME_KIND_CONDITION, pngs) for i, pngs in enumerate(conditions)]
    for control, kind, pngs in streams:  # one stream: a control's canvases or masks, or a frame condition
        for index, png in enumerate(pngs):
            for offset in range(0, max(len(png), 1), chunk_bytes):
                data = png[offset:offset + chunk_bytes]
                yield pb.SubmitShotRequest(frame=pb.FrameChunk(
                    kind=kind, index=index, offset=offset, data=data, control=control,
                    end_of_frame=offset + chunk_bytes >= len(png)))
