"""`python -m blender_addon.cli submit BUNDLE --server HOST:PORT --out DIR`: an exported bundle to a
take on disk, without Blender. Blocking; the same client calls as the add-on's worker thread.

The request id is the bundle's content hash (shot.json and every canvas and mask file), so running
the command again on the same bundle finds the same job on the server: a dropped connection or a
killed client costs nothing, the take is fetched when it is done.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..proto import render_pb2 as pb
from . import connection as conn
from .profiles import ServerProfile, profile_problems
from .render_client import ARTIFACT_FILES, RenderClient
from .shot_upload import prepare_upload

_STATE_WORDS = {pb.JOB_STATE_DONE: "done", pb.JOB_STATE_FAILED: "failed", pb.JOB_STATE_CANCELLED: "cancelled"}


@dataclass
class SubmitResult:
    job_id: str
    state: str  # "done", "failed", "cancelled"
    message: str = ""
    files: dict[str, Path] = field(default_factory=dict)  # "video.mp4" -> path


def bundle_request_id(bundle_dir: str | Path) -> str:
    """sha256 over shot.json and every file it names, in order: same bundle, same id."""
    upload = prepare_upload(bundle_dir, request_id="")
    digest = hashlib.sha256((Path(bundle_dir) / "shot.json").read_bytes())
    for canvases, masks in upload.files:
        for path in (*canvases, *masks):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return "bundle-" + digest.hexdigest()[:40]


def submit_bundle(bundle_dir: str | Path, *, server: str, out_dir: str | Path, token_file: str = "",
                  tls: bool = False, ca_cert: str = "", timeout_s: float = 3600.0,
                  say: Callable[[str], None] = lambda line: None, client_info: str = "blender_addon.cli submit"
                  ) -> SubmitResult:
    """Upload (or re-attach), follow, fetch. Raises conn.ConnectionProblem for a server that refuses
    the shot or cannot be reached (the message says what to change)."""
    profile = ServerProfile(name=server, address=server, use_tls=tls, ca_cert_path=ca_cert, token_file=token_file)
    problems = profile_problems(profile)
    if problems:
        raise ValueError("; ".join(problems))
    request_id = bundle_request_id(bundle_dir)
    out_dir = Path(out_dir)
    deadline = time.monotonic() + timeout_s
    with RenderClient(profile) as client:
        _wait_until_serving(client, deadline, say)
        reply = client.submit_bundle(bundle_dir, request_id=request_id, client_info=client_info)
        say(f"job {reply.job_id}" + (" (already on the server: re-attached)" if reply.deduplicated else
                                     f" queued at position {reply.queue_position}"))
        for warning in reply.warnings:
            say(f"warning: {warning}")
        final = _follow(client, reply.job_id, deadline, say)
        state = _STATE_WORDS[final.state]
        if final.state != pb.JOB_STATE_DONE:
            say(f"{state}: {final.message}")
            return SubmitResult(reply.job_id, state, final.message)
        files = {}
        for artifact in final.artifacts:
            name = ARTIFACT_FILES.get(artifact.kind)
            if name:
                files[name] = client.fetch(reply.job_id, artifact.kind, out_dir / name)
                say(f"fetched {files[name]} ({artifact.size} bytes, sha256 verified)")
        return SubmitResult(reply.job_id, state, final.message, files)


def _wait_until_serving(client: RenderClient, deadline: float, say: Callable[[str], None]) -> None:
    """check(), waiting while the server is still loading its weights (a server just started)."""
    waited = False
    while True:
        try:
            client.check()
            return
        except conn.ConnectionProblem as exc:
            if exc.reason != conn.LOADING or time.monotonic() > deadline:
                raise
            if not waited:
                say("the server is loading the model; waiting")
                waited = True
        time.sleep(1.0)


def _follow(client: RenderClient, job_id: str, deadline: float, say: Callable[[str], None]) -> pb.JobEvent:
    """Watch until the job is final; a stream cut by a server restart is re-opened."""
    last = ""
    while True:
        try:
            for event in client.watch(job_id):
                if event.state in _STATE_WORDS:
                    return event
                line = f"  {pb.JobState.Name(event.state).removeprefix('JOB_STATE_').lower()} {event.stage}" + (
                    f" {event.step}/{event.total_steps}" if event.total_steps else "")
                if line != last and not event.heartbeat:
                    say(line)
                    last = line
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} is not done after the timeout; run the same command again "
                                       "to re-attach (the job goes on on the server)")
        except conn.ConnectionProblem as exc:
            if exc.reason not in (conn.UNREACHABLE, conn.LOADING) or time.monotonic() > deadline:
                raise
        time.sleep(1.0)
