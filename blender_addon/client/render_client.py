"""Thin, blocking gRPC client for the render server: capabilities, submit, watch, cancel,
fetch (resumable, sha256-checked) and list. Every failure is raised as ConnectionProblem.

Blocking on purpose: only the worker thread (client/worker.py) and headless runs call it,
never Blender's UI thread.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc

from ..core.jobs import CLIENT_PROTOCOL_VERSION, protocol_problem
from ..proto import render_pb2 as pb
from ..proto import render_pb2_grpc as pb_grpc
from . import connection as conn
from .profiles import ServerProfile
from .shot_upload import prepare_upload, submit_requests

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# grpc.health.v1.HealthCheckResponse.ServingStatus, decoded by hand: the add-on does not
# bundle grpcio-health-checking for one enum.
_HEALTH_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

ARTIFACT_FILES = {
    pb.ARTIFACT_KIND_VIDEO_MP4: "video.mp4",
    pb.ARTIFACT_KIND_AUDIO_WAV: "audio.wav",
    pb.ARTIFACT_KIND_SIDECAR_JSON: "sidecar.json",
}

LORA_KIND_WORDS = {
    pb.LORA_KIND_CONTROL: "control",
    pb.LORA_KIND_CAMERA_PRESET: "camera preset",
    pb.LORA_KIND_CAMERA_TRAJECTORY: "camera trajectory",
    pb.LORA_KIND_STYLE: "style",
}


class RenderClient:
    """One channel to one server profile. Use as a context manager or call close()."""

    def __init__(self, profile: ServerProfile, *, timeout_s: float = 10.0):
        self.profile = profile
        self.timeout_s = timeout_s
        self.last_health = ""  # set by check()
        self._channel = conn.open_channel(profile)
        self._stub = pb_grpc.RenderServiceStub(self._channel)
        try:
            self._metadata = conn.call_metadata(profile)
        except (OSError, ValueError) as exc:
            self._channel.close()
            raise conn.ConnectionProblem(conn.BAD_TOKEN, str(exc)) from exc
        self._health = self._channel.unary_unary(
            _HEALTH_CHECK, request_serializer=lambda b: b, response_deserializer=lambda b: b)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RenderClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _problem(self, err: grpc.RpcError) -> conn.ConnectionProblem:
        return conn.explain(err, self.profile)

    # ------------------------------------------------------------------ status

    def health(self) -> str:
        """"SERVING", "NOT_SERVING" (weights still loading), "UNKNOWN" or "UNIMPLEMENTED"."""
        try:
            raw = self._health(b"", timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                return "UNIMPLEMENTED"
            raise self._problem(err) from None
        status = raw[1] if len(raw) >= 2 and raw[0] == 0x08 else 0
        return _HEALTH_NAMES.get(status, "UNKNOWN")

    def capabilities(self) -> pb.Capabilities:
        try:
            return self._stub.GetCapabilities(
                pb.GetCapabilitiesRequest(client_protocol_version=CLIENT_PROTOCOL_VERSION),
                timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as err:
            raise self._problem(err) from None

    def check(self) -> pb.Capabilities:
        """Health, then capabilities, then the protocol major version: the "Test connection".
        The health answer stays in `last_health` ("SERVING", or "UNIMPLEMENTED" without a health service)."""
        self.last_health = self.health()
        if self.last_health == "NOT_SERVING":
            raise conn.ConnectionProblem(conn.LOADING, f"the server at {self.profile.address} is still loading "
                                         f"the model; try again in a minute")
        caps = self.capabilities()
        problem = protocol_problem(caps.protocol_version)
        if problem:
            raise conn.ConnectionProblem(conn.PROTOCOL, problem)
        return caps

    # ------------------------------------------------------------------ jobs

    def submit_bundle(self, bundle_dir: str | Path, *, request_id: str, client_info: str = "",
                      on_bytes: Callable[[int, int], None] | None = None) -> pb.SubmitShotResponse:
        """Stream a shot bundle to the server as it is on disk; returns its job (the same one for a
        repeated request_id). on_bytes(sent, total) follows the upload."""
        upload = prepare_upload(bundle_dir, request_id=request_id, client_info=client_info)
        try:
            return self._stub.SubmitShot(submit_requests(upload, on_bytes=on_bytes),
                                         timeout=max(60.0, self.timeout_s), metadata=self._metadata)
        except grpc.RpcError as err:
            raise self._problem(err) from None

    def submit_manifest(self, manifest: pb.ShotManifest) -> pb.SubmitShotResponse:
        """A shot that carries no frames (an assembly of windows already on the server)."""
        try:
            return self._stub.SubmitShot(iter([pb.SubmitShotRequest(manifest=manifest)]),
                                         timeout=max(60.0, self.timeout_s), metadata=self._metadata)
        except grpc.RpcError as err:
            raise self._problem(err) from None

    def watch(self, job_id: str) -> Iterator[pb.JobEvent]:
        """Job events until the stream ends (the job is final) or the caller stops iterating."""
        call = self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=self._metadata)
        try:
            yield from call
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED:
                return
            raise self._problem(err) from None
        finally:
            call.cancel()

    def cancel(self, job_id: str) -> int:
        """Ask the server to stop the job; returns its JobState after the request."""
        try:
            return self._stub.CancelJob(pb.CancelJobRequest(job_id=job_id), timeout=self.timeout_s,
                                        metadata=self._metadata).state
        except grpc.RpcError as err:
            raise self._problem(err) from None

    def list_jobs(self, limit: int = 50, states: Sequence[int] = ()) -> list[pb.JobSummary]:
        try:
            return list(self._stub.ListJobs(pb.ListJobsRequest(limit=limit, states=list(states)),
                                            timeout=self.timeout_s, metadata=self._metadata).jobs)
        except grpc.RpcError as err:
            raise self._problem(err) from None

    def fetch(self, job_id: str, artifact: int, dest: str | Path,
              progress: Callable[[int, int], None] | None = None) -> Path:
        """Download one artifact to `dest`, resuming a previous `dest.part`.

        The part file only becomes `dest` (by rename) once its size and sha256 match what the
        server announced, so `dest` existing always means "complete and verified".
        progress(bytes_done, bytes_total) is called after each chunk.
        """
        part = Path(dest).with_name(Path(dest).name + ".part")
        try:
            return self._fetch(job_id, artifact, Path(dest), progress)
        except conn.ConnectionProblem as exc:
            # A part file the server cannot continue (longer than the artifact): start over once.
            if exc.code in ("OUT_OF_RANGE", "INVALID_ARGUMENT") and part.exists():
                part.unlink()
                return self._fetch(job_id, artifact, Path(dest), progress)
            raise

    def _fetch(self, job_id: str, artifact: int, dest: Path, progress) -> Path:
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        offset = part.stat().st_size if part.exists() else 0
        if offset:
            with open(part, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        total, expected_sha = None, ""
        request = pb.FetchResultRequest(job_id=job_id, artifact=artifact, offset=offset)
        try:
            with open(part, "ab") as fh:
                for chunk in self._stub.FetchResult(request, metadata=self._metadata):
                    if chunk.offset != offset:
                        raise conn.ConnectionProblem(conn.OTHER, f"server sent bytes from {chunk.offset}, "
                                                     f"expected {offset}; fetch again")
                    fh.write(chunk.data)
                    digest.update(chunk.data)
                    offset += len(chunk.data)
                    total, expected_sha = chunk.total_size, chunk.sha256 or expected_sha
                    if progress:
                        progress(offset, total)
                    if chunk.last:
                        break
                fh.flush()
                os.fsync(fh.fileno())
        except grpc.RpcError as err:
            raise self._problem(err) from None
        if total is None:  # not even the empty last chunk: the part cannot be verified
            raise conn.ConnectionProblem(conn.OTHER, f"{dest.name}: the server sent no data from byte {offset}",
                                         "OUT_OF_RANGE" if offset else "")
        if offset != total:
            raise conn.ConnectionProblem(conn.OTHER, f"{dest.name}: got {offset} of {total} bytes; fetch again "
                                         f"to resume")
        if expected_sha and digest.hexdigest() != expected_sha:
            part.unlink(missing_ok=True)
            raise conn.ConnectionProblem(conn.OTHER, f"{dest.name}: checksum mismatch (sha256 {digest.hexdigest()[:12]}"
                                         f" != {expected_sha[:12]}); the partial file was deleted, fetch again")
        os.replace(part, dest)
        return dest


def describe_capabilities(caps: pb.Capabilities) -> str:
    """One paragraph for the preferences: protocol, model, device, LoRAs and limits."""
    loras = ", ".join(f"{lo.name} ({LORA_KIND_WORDS.get(lo.kind, 'lora')}"
                      + (f" {lo.camera_move}" if lo.camera_move else "") + ")" for lo in caps.loras) or "none"
    return (f"protocol {caps.protocol_version}, server {caps.server_version or '?'}; model "
            f"{caps.model_variant or caps.model_id} on {caps.device or '?'}; LoRAs: {loras}; frames "
            f"{caps.frame_step}k+1 up to {caps.max_frames}; size multiple of {caps.size_multiple} up to "
            f"{caps.max_width}x{caps.max_height}" + ("; token required" if caps.auth_required else ""))
