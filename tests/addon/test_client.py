"""The add-on's gRPC client and worker against the REAL render server on loopback (real engine
on the tiny model, see conftest.live_server): capabilities, connection problems, chunked upload,
resumable sha256-checked download, the worker thread, cancel, and a server restart mid-job."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import time

import pytest

from blender_addon.client import connection as conn
from blender_addon.client import worker as wk
from blender_addon.client.limits import server_limits
from blender_addon.client.profiles import ServerProfile
from blender_addon.client.render_client import RenderClient
from blender_addon.core import jobs
from blender_addon.proto import render_pb2 as pb
from blender_addon.shot_bundle import BundleError

from .bundles import write_bundle
from .conftest import CONTROL_X2, start_server, wait_serving


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _profile(server, **kw) -> ServerProfile:
    return ServerProfile("p", server.address, **{"token": server.token, **kw})


def _events_until(worker, key, kinds, timeout=60.0):
    """Drain worker events for `key` until one of `kinds` arrives; returns all of them."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in worker.poll():
            seen.append(ev)
            if ev.key == key and ev.kind in kinds:
                return seen
        time.sleep(0.02)
    raise AssertionError(f"no {kinds} event within {timeout} s; got {[(e.kind, e.state, e.text) for e in seen]}")


def _until_running(worker, key) -> list:
    """Events until the job is denoising on the server (SUBMITTED included)."""
    seen = _events_until(worker, key, {wk.SUBMITTED})
    while not any(e.state == jobs.RUNNING and e.text.startswith("Denoising") for e in seen):
        seen += _events_until(worker, key, {wk.PROGRESS, wk.FETCHED, wk.FINISHED, wk.ERROR})
        assert seen[-1].kind == wk.PROGRESS, seen[-1].text
    return seen


def _wait_final(client: RenderClient, job_id: str) -> pb.JobEvent:
    events = list(client.watch(job_id))
    final = events[-1] if events else None
    assert final is not None and final.state in (pb.JOB_STATE_DONE, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)
    return final


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return key, cert


@pytest.fixture(scope="module")
def done_job(live_server, tmp_path_factory):
    """One finished 9-frame 256x160 job: (job_id, final event with the artifacts' sizes and sha256)."""
    bundle = write_bundle(tmp_path_factory.mktemp("done") / "b", frames=9, width=256, height=160)
    with RenderClient(_profile(live_server)) as client:
        job_id = client.submit_bundle(bundle, request_id="client-done-job").job_id
        final = _wait_final(client, job_id)
    assert final.state == pb.JOB_STATE_DONE, final.message
    return job_id, final


def test_check_reports_health_model_loras_and_limits(live_server):
    with RenderClient(_profile(live_server)) as client:
        caps = client.check()
        assert client.last_health == "SERVING"
    assert caps.protocol_version == "2.1" and caps.max_frames == live_server.engine.capabilities().max_frames
    limits = server_limits(caps)
    # The reference_downscale_factor of every LoRA that reads a canvas; a single-stage server. The tiny
    # LTX-2 also carries stand-ins for Lightricks' published LTX-2 LoRAs.
    published = {"ltx-2-19b-ic-lora-canny-control": 1, "ltx-2-19b-ic-lora-depth-control": 1,
                 "ltx-2-19b-ic-lora-pose-control": 1, "ltx-2-19b-ic-lora-union-ref0.5": 2}
    assert limits["reference_factors"] == {"control": 1, "control_peft": 1, CONTROL_X2: 2, "camera_trajectory": 4,
                                           **published}
    assert not limits["two_stage"] and limits["controls"] == sorted(["control", "control_peft", CONTROL_X2,
                                                                      *published])
    moves = ("dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static")
    assert limits["camera_presets"] == sorted([f"camera_{m}" for m in moves] + [
        f"ltx-2-19b-lora-camera-control-{m.replace('_', '-')}" for m in moves])
    assert limits["camera_trajectories"] == ["camera_trajectory"]
    assert limits["model_generation"] == "ltx-2" and limits["bases"]["ltx-2-19b-ic-lora-union-ref0.5"] == "ltx-2"


@pytest.mark.parametrize("case, reason, words", [
    ("protocol", conn.PROTOCOL, "protocol version mismatch: server speaks 3.0, this add-on 2.1"),
    ("wrong token", conn.BAD_TOKEN, "refused the token"),
    ("no token", conn.BAD_TOKEN, "refused the token"),
    ("loading", conn.LOADING, "still loading the model"),
])
def test_connection_problems_are_explained(case, reason, words, live_server, loading_address, monkeypatch):
    import render_backend.server.convert as convert

    profile = _profile(live_server)
    if case == "protocol":  # a real server of a future protocol major version
        monkeypatch.setattr(convert, "PROTOCOL_VERSION", "3.0")
    elif case == "wrong token":
        profile = _profile(live_server, token="wrong")
    elif case == "no token":
        profile = _profile(live_server, token="")
    else:
        profile = ServerProfile("p", loading_address)
    with RenderClient(profile) as c, pytest.raises(conn.ConnectionProblem) as info:
        c.check()
    assert info.value.reason == reason and words in str(info.value)


@pytest.mark.parametrize("version", ["2.0", "2.9"])
def test_check_accepts_any_2x_server(version, live_server, monkeypatch):
    """A 2.0 server and a newer 2.x one: same major, both accepted."""
    import render_backend.server.convert as convert

    monkeypatch.setattr(convert, "PROTOCOL_VERSION", version)
    with RenderClient(_profile(live_server)) as client:
        assert client.check().protocol_version == version


def test_unreachable_server_is_explained():
    profile = ServerProfile("p", f"127.0.0.1:{_free_port()}")
    with RenderClient(profile, timeout_s=3) as client, pytest.raises(conn.ConnectionProblem) as info:
        client.check()
    assert info.value.reason == conn.UNREACHABLE
    assert "cannot reach the render server" in str(info.value)


def test_token_from_file_and_tls_with_ca(tls_cert, tmp_path, engine, live_server):
    key, cert = tls_cert
    token = tmp_path / "token"
    token.write_text("right\n")
    server = start_server(engine, tmp_path / "data", token="right", tls_cert=cert, tls_key=key)
    try:
        good = ServerProfile("cloud", f"localhost:{server.port}", use_tls=True, ca_cert_path=str(cert),
                             token_file=str(token))
        with RenderClient(good) as client:
            deadline = time.monotonic() + 30
            while client.health() != "SERVING":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert client.check().auth_required
        with RenderClient(ServerProfile("cloud", f"localhost:{server.port}", token_file=str(token)),
                          timeout_s=3) as plain, pytest.raises(conn.ConnectionProblem) as info:
            plain.check()
        assert info.value.reason == conn.TLS_MISMATCH and "turn TLS on" in str(info.value)
    finally:
        server.stop()
    port = live_server.address.rsplit(":", 1)[1]  # a plaintext server, a TLS profile
    profile = ServerProfile("p", f"localhost:{port}", use_tls=True, ca_cert_path=str(cert))
    with RenderClient(profile, timeout_s=3) as client, pytest.raises(conn.ConnectionProblem) as info:
        client.check()
    assert info.value.reason == conn.TLS_MISMATCH and "turn TLS off" in str(info.value)


def test_submit_streams_manifest_and_every_png_byte_in_1mib_chunks(tmp_path, live_server):
    per_frame = [i / 8 for i in range(9)]
    bundle = write_bundle(tmp_path / "b", frames=9, width=704, height=512, png_noise=True, per_frame=per_frame)
    args = dict(request_id="client-req-1", client_info="test")
    with RenderClient(_profile(live_server)) as client:
        sent = []
        reply = client.submit_bundle(bundle, on_bytes=lambda done, total: sent.append((done, total)), **args)
        again = client.submit_bundle(bundle, **args)
        client.cancel(reply.job_id)  # the upload is what this test is about; free the engine
        _wait_final(client, reply.job_id)
    assert again.job_id == reply.job_id and again.deduplicated and not reply.deduplicated
    m = live_server.job(reply.job_id).manifest
    assert (m.width, m.height, m.num_frames, m.fps, m.seed, m.frame_start) == (704, 512, 9, 24.0, 7, 1)
    (c,) = m.controls
    assert list(c.frame_strength) == per_frame and c.strength == pytest.approx(0.8)
    assert c.HasField("background_strength") and c.background_strength == pytest.approx(0.2)
    assert m.camera.mode == pb.CAMERA_MODE_AUTO and len(m.camera.frames) == 9
    assert m.camera.frames[3].world_to_camera[11] == pytest.approx(5.3) and m.camera.frames[3].lens_mm == 53.0
    assert (c.num_frames, c.has_mask, c.lora, c.kind) == (9, True, "control", "depth+pose")
    inputs = live_server.store.inputs_dir(reply.job_id)
    for i in range(9):  # what the server stored is byte for byte what was exported
        assert (inputs / "0" / "canvas" / f"{i:06d}.png").read_bytes() == \
            (bundle / "control" / f"{i + 1:06d}.png").read_bytes()
        assert (inputs / "0" / "mask" / f"{i:06d}.png").read_bytes() == (bundle / "mask" / f"{i + 1:06d}.png").read_bytes()
    assert (bundle / "control" / "000001.png").stat().st_size > 1024 * 1024  # so it really took 2 chunks
    png_bytes = sum(p.stat().st_size for p in bundle.glob("*/*.png"))
    assert sent[-1] == (png_bytes, png_bytes) and len(sent) == 9 * 2 + 9  # 2 chunks per control, 1 per mask


def test_submit_refuses_an_unfinished_export(tmp_path, live_server):
    bundle = write_bundle(tmp_path / "b")
    (bundle / "shot.json").unlink()
    with RenderClient(_profile(live_server)) as client:
        with pytest.raises(BundleError, match="its export did not finish"):
            client.submit_bundle(bundle, request_id="r")


def test_fetch_resumes_after_a_dropped_download_and_checks_sha256(tmp_path, live_server, done_job):
    job_id, final = done_job
    video = next(a for a in final.artifacts if a.kind == pb.ARTIFACT_KIND_VIDEO_MP4)
    chunk = 64 * 1024  # the server's chunk size (conftest.start_server)
    assert video.size > 2 * chunk

    def drop_after_two_chunks(done, total):
        if done >= 2 * chunk:
            raise ConnectionResetError("connection dropped by the test")

    dest = tmp_path / "take" / "video.mp4"
    with RenderClient(_profile(live_server)) as client:
        with pytest.raises(ConnectionResetError):
            client.fetch(job_id, pb.ARTIFACT_KIND_VIDEO_MP4, dest, progress=drop_after_two_chunks)
        assert not dest.exists() and (tmp_path / "take" / "video.mp4.part").stat().st_size == 2 * chunk
        resumed = []
        client.fetch(job_id, pb.ARTIFACT_KIND_VIDEO_MP4, dest, progress=lambda done, total: resumed.append(done))
    assert resumed[0] == min(3 * chunk, video.size) and resumed[-1] == video.size  # went on from byte 128 Ki
    assert dest.stat().st_size == video.size
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == video.sha256
    assert not (tmp_path / "take" / "video.mp4.part").exists()


def test_fetch_starts_over_when_the_part_file_cannot_be_resumed(tmp_path, live_server, done_job):
    job_id, final = done_job
    sidecar = next(a for a in final.artifacts if a.kind == pb.ARTIFACT_KIND_SIDECAR_JSON)
    dest, part = tmp_path / "sidecar.json", tmp_path / "sidecar.json.part"
    with RenderClient(_profile(live_server)) as client:
        part.write_bytes(b"x" * (sidecar.size + 10))  # longer than the artifact: OUT_OF_RANGE, start over
        client.fetch(job_id, pb.ARTIFACT_KIND_SIDECAR_JSON, dest)
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == sidecar.sha256
        dest.unlink()
        part.write_bytes(b"y" * sidecar.size)  # complete size, wrong bytes
        with pytest.raises(conn.ConnectionProblem, match="checksum mismatch"):
            client.fetch(job_id, pb.ARTIFACT_KIND_SIDECAR_JSON, dest)
        assert not part.exists() and not dest.exists()  # never kept, so the next fetch starts clean
        listed = [j for j in client.list_jobs() if j.job_id == job_id]
    assert [(j.request_id, j.state) for j in listed] == [("client-done-job", pb.JOB_STATE_DONE)]


def test_worker_runs_a_shot_to_files_without_blocking_the_caller(tmp_path, live_server):
    import av

    bundle = write_bundle(tmp_path / "b", frames=17)
    worker = wk.RenderWorker()
    t0 = time.monotonic()
    assert worker.run_shot("req-a", _profile(live_server), bundle, tmp_path / "take")
    assert time.monotonic() - t0 < 0.2  # returns at once; the network is in the worker thread
    assert not worker.run_shot("req-a", _profile(live_server), bundle, tmp_path / "take")  # already followed
    seen = _events_until(worker, "req-a", {wk.FETCHED, wk.ERROR, wk.FINISHED})
    kinds = [e.kind for e in seen]
    assert kinds[-1] == wk.FETCHED, seen[-1].text
    assert wk.SUBMITTED in kinds
    denoising = [e.text for e in seen if e.state == jobs.RUNNING and e.text.startswith("Denoising")]
    assert denoising and all(re.match(r"Denoising [1-8]/8", t) for t in denoising), denoising
    files = seen[-1].files
    assert sorted(files) == ["audio.wav", "sidecar.json", "video.mp4"]
    with av.open(files["video.mp4"]) as box:
        assert box.streams.video[0].frames == 17 and box.streams.audio
        assert (box.streams.video[0].width, box.streams.video[0].height) == (64, 64)


def test_worker_cancel_stops_the_job_on_the_server(tmp_path, live_server, slow_engine):
    slow_engine(400)
    bundle = write_bundle(tmp_path / "b", width=256, height=160)
    worker = wk.RenderWorker()
    profile = _profile(live_server)
    worker.run_shot("req-c", profile, bundle, tmp_path / "take")
    seen = _until_running(worker, "req-c")
    job_id = next(e.job_id for e in seen if e.kind == wk.SUBMITTED)
    worker.cancel("req-c", profile, job_id)
    seen = _events_until(worker, "req-c", {wk.FETCHED, wk.FINISHED, wk.ERROR})
    assert seen[-1].kind == wk.FINISHED and seen[-1].state == jobs.CANCELLED
    assert live_server.job(job_id).state == pb.JOB_STATE_CANCELLED
    assert not (tmp_path / "take" / "video.mp4").exists()


def test_cancel_pressed_during_the_upload_reaches_the_server_once(tmp_path, live_server, slow_engine):
    """Cancel before the job id is known is sent right after the submit; a later upload of the same
    key (Resume after a restart) is not cancelled by that old request."""
    slow_engine(400)
    bundle = write_bundle(tmp_path / "b", width=256, height=160)
    worker = wk.RenderWorker()
    profile = _profile(live_server)
    worker.run_shot("req-u", profile, bundle, tmp_path / "take")
    worker.cancel("req-u")  # no job id yet: remembered until the submit returns
    seen = _events_until(worker, "req-u", {wk.FETCHED, wk.FINISHED, wk.ERROR})
    assert seen[-1].kind == wk.FINISHED and seen[-1].state == jobs.CANCELLED, seen[-1].text
    slow_engine(8)
    worker.cancel("req-v")  # a cancel whose upload thread died before it could send it...
    bundle2 = write_bundle(tmp_path / "b2")
    worker.run_shot("req-v", profile, bundle2, tmp_path / "take2")  # ...must not cancel the re-upload
    seen = _events_until(worker, "req-v", {wk.FETCHED, wk.FINISHED, wk.ERROR})
    assert seen[-1].kind == wk.FETCHED, seen[-1].text


def test_worker_test_connection_reports_health_or_the_problem(live_server, monkeypatch):
    import render_backend.server.convert as convert

    worker = wk.RenderWorker()
    key = worker.test_connection(_profile(live_server))
    ev = _events_until(worker, "p", {wk.CONNECTION})[-1]
    assert key == wk.connection_key("p")
    assert ev.ok and ev.text.startswith("Connected (health SERVING): protocol 2.1")
    assert ev.limits["camera_trajectories"] == ["camera_trajectory"]
    monkeypatch.setattr(convert, "PROTOCOL_VERSION", "3.0")
    worker.test_connection(_profile(live_server))
    ev = _events_until(worker, "p", {wk.CONNECTION})[-1]
    assert not ev.ok and ev.reason == conn.PROTOCOL and "mismatch" in ev.text


def test_render_refuses_a_server_of_another_protocol_major_version(tmp_path, live_server, monkeypatch):
    import render_backend.server.convert as convert

    monkeypatch.setattr(convert, "PROTOCOL_VERSION", "3.0")
    worker = wk.RenderWorker()
    worker.run_shot("req-proto", _profile(live_server), write_bundle(tmp_path / "b"), tmp_path / "take")
    ev = _events_until(worker, "req-proto", {wk.ERROR, wk.FETCHED, wk.FINISHED})[-1]
    assert ev.kind == wk.ERROR and ev.reason == conn.PROTOCOL
    assert ev.text.startswith("protocol version mismatch: server speaks 3.0, this add-on 2.1; update the add-on")
    assert live_server.store.get_by_request("req-proto") is None  # nothing was submitted


def test_worker_reattaches_when_the_server_restarts_mid_job(tmp_path, engine, slow_engine):
    """A real restart: the server stops mid-denoising (the job goes back to the queue in its
    store), a new server starts on the same port and data dir, the worker re-attaches and fetches."""
    slow_engine(300)
    bundle = write_bundle(tmp_path / "b", width=256, height=160)
    worker = wk.RenderWorker()
    first = start_server(engine, tmp_path / "data", token=None)
    port = first.port
    try:
        wait_serving(first.address)
        worker.run_shot("req-r", ServerProfile("p", first.address), bundle, tmp_path / "take")
        _until_running(worker, "req-r")
    finally:
        first.stop()  # the job was running: it is re-queued in the store
    slow_engine(8)
    second = start_server(engine, tmp_path / "data", token=None, port=port)
    try:
        seen = _events_until(worker, "req-r", {wk.FETCHED, wk.ERROR, wk.FINISHED})
        job = second.server.store.get_by_request("req-r")
        history = [s for s, _, _ in second.server.store.transitions(job.job_id)]
    finally:
        second.stop()
    assert seen[-1].kind == wk.FETCHED, seen[-1].text
    assert (tmp_path / "take" / "video.mp4").is_file()
    # queued, running, back to queued by the shutdown, running again after the restart, done
    assert history[:3] == [pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING, pb.JOB_STATE_QUEUED]
    assert history[-1] == pb.JOB_STATE_DONE and history.count(pb.JOB_STATE_RUNNING) == 2
