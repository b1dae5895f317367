"""Jobs survive the server: a killed server's finished job stays fetchable, its running job is re-queued."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from render_backend.client import ServiceClient
from render_backend.demo import synthetic_shot
from render_backend.media import sha256_of
from render_backend.proto import render_pb2 as pb
from render_backend.server.store import CANCELLED, DONE, ENCODING, FAILED, QUEUED, RUNNING, JobStore

from .conftest import SLOW, running_server, wait_serving, wait_state

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_killed_server_keeps_done_results_and_requeues_the_running_job(engine, tiny_model, tmp_path):
    data, port = tmp_path / "data", _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "render_backend.cli", "serve", "--model", str(tiny_model),
                             "--data-dir", str(data), "--port", str(port), "--heartbeat", "0.5"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with ServiceClient(f"127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 90
            while True:  # the port opens after imports; then SERVING after the weights load
                try:
                    wait_serving(client, timeout=90)
                    break
                except Exception:
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read().decode()
                    time.sleep(0.3)
            done_shot = synthetic_shot(9, 64, 64, steps=1)
            done = client.submit(*done_shot)
            final = client.wait(done.job_id, timeout=60)
            assert final.state == pb.JOB_STATE_DONE
            mp4 = next(a for a in final.artifacts if a.kind == pb.ARTIFACT_KIND_VIDEO_MP4)
            running = client.submit(*synthetic_shot(SLOW["num_frames"], SLOW["width"], SLOW["height"], steps=60))
            wait_state(client, running.job_id, (pb.JOB_STATE_RUNNING,), min_step=2)
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no chance to clean up
        proc.wait(10)

    with running_server(engine, data) as (server, client):
        store = server.server.store
        assert client.fetch(done.job_id, pb.ARTIFACT_KIND_VIDEO_MP4, tmp_path / "a.mp4") and \
            sha256_of(tmp_path / "a.mp4") == mp4.sha256
        again = client.submit(*done_shot)  # idempotent across the restart
        assert (again.job_id, again.deduplicated) == (done.job_id, True)
        final = client.wait(running.job_id, timeout=120)
        assert final.state == pb.JOB_STATE_DONE, final.message
        history = [(s, msg) for s, _, msg in store.transitions(running.job_id)]
        assert (QUEUED, "re-queued after a server restart (attempt 2 of 2)") in history
        assert (RUNNING, "running again after a server restart (attempt 2 of 2)") in history
        assert (ENCODING, "encoding mp4 + wav again after a server restart (attempt 2 of 2)") in history
        assert [s for s, _ in history].count(RUNNING) == 2 and store.get(running.job_id).attempts == 2


def test_graceful_stop_puts_the_running_job_back_in_the_queue(engine, tmp_path):
    with running_server(engine, tmp_path) as (server, client):
        job = client.submit(*synthetic_shot(SLOW["num_frames"], SLOW["width"], SLOW["height"], steps=SLOW["steps"]))
        wait_state(client, job.job_id, (pb.JOB_STATE_RUNNING,), min_step=1)
    store = JobStore(tmp_path)
    try:
        rec = store.get(job.job_id)
        assert (rec.state, rec.message) == (QUEUED, "interrupted by a server shutdown; re-queued")
    finally:
        store.close()


def _stored_job(store: JobStore, request_id: str) -> str:
    incoming = store.new_incoming_dir()  # with its inputs/ folder
    manifest = pb.ShotManifest(request_id=request_id, prompt="p", controls=[pb.ControlInput(kind="depth")])
    job, created = store.create(manifest, "sha", incoming)
    assert created
    return job.job_id


def test_recovery_fails_jobs_that_lost_inputs_or_crashed_the_server_too_often(tmp_path):
    store = JobStore(tmp_path)
    lost, crashy, fine = (_stored_job(store, r) for r in ("lost", "crashy", "fine"))
    for job_id in (lost, crashy, fine):
        store.transition(job_id, RUNNING)
    store.transition(crashy, QUEUED)
    store.transition(crashy, RUNNING)  # second attempt
    import shutil

    shutil.rmtree(store.inputs_dir(lost))
    assert dict(store.recover(max_attempts=2)) == {lost: FAILED, crashy: FAILED, fine: QUEUED}
    assert "input files are missing" in store.get(lost).message
    assert "stopped during this job 2 times" in store.get(crashy).message
    assert store.queued() == [fine]
    store.close()


def test_retention_removes_old_and_oversized_finished_jobs_only(tmp_path):
    store = JobStore(tmp_path)
    old, big, new, queued = (_stored_job(store, r) for r in ("old", "big", "new", "queued"))
    for job_id in (old, big, new):
        store.transition(job_id, DONE if job_id != big else CANCELLED)
    (store.job_dir(big) / "outputs").mkdir()
    (store.job_dir(big) / "outputs" / "x.mp4").write_bytes(b"\0" * 5000)
    store._db.execute("UPDATE jobs SET finished_ms = finished_ms - 30 * 86400000 WHERE job_id = ?", (old,))
    assert store.enforce_retention(max_age_days=14, max_bytes=10**9) == [old]
    assert store.enforce_retention(max_age_days=14, max_bytes=1000) == [big]
    assert store.get(old) is None and not store.job_dir(old).exists()
    assert {j.job_id for j in store.list()} == {new, queued}
    store.close()


@pytest.mark.parametrize("request_id", ["same-id"])
def test_store_create_is_idempotent_per_request_id(tmp_path, request_id):
    store = JobStore(tmp_path)
    first = _stored_job(store, request_id)
    incoming = store.new_incoming_dir()
    job, created = store.create(pb.ShotManifest(request_id=request_id, prompt="p"), "sha", incoming)
    assert (job.job_id, created, incoming.exists()) == (first, False, False)
    store.close()


def test_retention_walks_each_finished_job_folder_once(tmp_path, monkeypatch):
    from render_backend.server import store as store_module

    store = JobStore(tmp_path)
    jobs = [_stored_job(store, f"r{i}") for i in range(5)]
    for job_id in jobs:
        store.transition(job_id, DONE)
    walked = []
    real = store_module._dir_bytes
    monkeypatch.setattr(store_module, "_dir_bytes", lambda path: walked.append(path.name) or real(path))
    assert store.enforce_retention(max_age_days=14, max_bytes=10**9) == []
    assert sorted(walked) == sorted(jobs)
    walked.clear()
    for _ in range(3):  # after every later job: no folder walked again
        store.enforce_retention(max_age_days=14, max_bytes=10**9)
    assert walked == []
    store.close()
