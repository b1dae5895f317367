"""kill -9 of a real `render-backend serve` mid-upload and mid-encode: nothing half-written survives as a
job or a result, resubmissions deduplicate, the interrupted job runs again and its events say so."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from render_backend import media
from render_backend.client import submit_messages
from render_backend.demo import synthetic_shot
from render_backend.proto import render_pb2 as pb
from render_backend.server.store import ENCODING, JobStore

from .procs import ServeProcess


def _until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _stored_state(data, job_id) -> int:
    store = JobStore(data)
    try:
        return store.get(job_id).state
    finally:
        store.close()


def test_kill_during_an_upload_and_during_an_encode_loses_nothing(tiny_model, tmp_path):
    data = tmp_path / "data"
    shot = synthetic_shot(25, 64, 64, steps=1)
    release = threading.Event()

    def half_an_upload():
        for i, message in enumerate(submit_messages(shot[0], [(shot[1], shot[2])], 1 << 20)):
            if i == 13:  # the manifest and 12 frames are in: hold the stream open
                release.wait(30)
                return
            yield message

    with ServeProcess(tiny_model, data) as serve:
        call = serve.client.stub.SubmitShot.future(half_an_upload(), timeout=60)
        incoming = data / "incoming"
        _until(lambda: any(len(list(d.rglob("*.png"))) >= 12 for d in incoming.iterdir()), what="12 frames stored")
        serve.kill()
        release.set()
        with pytest.raises(grpc.RpcError):
            call.result()
    assert len(list(incoming.iterdir())) == 1  # the half upload, as the crash left it

    encode_shot = synthetic_shot(129, 256, 256, steps=1, control_lora="", camera=False)  # ~1 s of mp4 encoding
    with ServeProcess(tiny_model, data) as serve:
        assert list(incoming.iterdir()) == [] and serve.client.list_jobs() == []  # no job from half an upload
        first = serve.client.submit(*shot)
        final = serve.client.wait(first.job_id, timeout=60)
        assert final.state == pb.JOB_STATE_DONE and not first.deduplicated
        encoding = serve.client.submit(*encode_shot)
        for ev in serve.client.watch(encoding.job_id, timeout=60):
            if ev.state == pb.JOB_STATE_ENCODING:
                serve.kill()
                break
    assert _stored_state(data, encoding.job_id) == ENCODING  # the kill landed mid-encode

    serve = ServeProcess(tiny_model, data).start(until=("NOT_SERVING", "SERVING"))  # attach while the model loads
    with serve:
        client = serve.client
        events = list(client.watch(encoding.job_id, timeout=120))
        said = [e.message for e in events if e.state not in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED)]
        assert any("after a server restart (attempt 2 of 2)" in m for m in said), [(e.state, e.message) for e in events]
        done = events[-1]
        assert done.state == pb.JOB_STATE_DONE, done.message
        outputs = data / "jobs" / encoding.job_id / "outputs"
        assert sorted(p.name for p in outputs.iterdir()) == sorted(a.filename for a in done.artifacts)  # no temp files
        mp4 = next(a for a in done.artifacts if a.kind == pb.ARTIFACT_KIND_VIDEO_MP4)
        path = client.fetch(encoding.job_id, mp4.kind, tmp_path / "enc.mp4")
        assert media.sha256_of(path) == mp4.sha256 and media.probe_mp4(path).frames == 129
        again = client.submit(*shot)  # idempotent across both crashes
        assert (again.job_id, again.deduplicated) == (first.job_id, True)
        first_mp4 = next(a for a in final.artifacts if a.kind == pb.ARTIFACT_KIND_VIDEO_MP4)
        assert media.sha256_of(client.fetch(first.job_id, first_mp4.kind, tmp_path / "a.mp4")) == first_mp4.sha256
