"""The add-on's gRPC client and worker against a real gRPC server on loopback (fake GPU)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time

import pytest
from PIL import Image

from blender_addon.client import connection as conn
from blender_addon.client import worker as wk
from blender_addon.client.profiles import ServerProfile
from blender_addon.client.render_client import RenderClient
from blender_addon.core import jobs
from blender_addon.proto import render_pb2 as pb

from .bundles import write_bundle
from .fake_server import FakeServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events_until(worker, key, kinds, timeout=30.0):
    """Drain worker events for `key` until one of `kinds` arrives; returns all of them."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in worker.poll():
            seen.append(ev)
            if ev.key == key and ev.kind in kinds:
                return seen
        time.sleep(0.02)
    raise AssertionError(f"no {kinds} event within {timeout} s; got {[(e.kind, e.state, e.text) for e in seen]}")


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return key, cert


def test_check_reports_model_loras_and_limits():
    with FakeServer() as server, RenderClient(ServerProfile("local", server.address)) as client:
        caps = client.check()
    assert caps.protocol_version == "1.0" and caps.max_frames == 257
    assert [lo.name for lo in caps.loras] == ["depth-pose", "dolly-in"]


@pytest.mark.parametrize("server_kw, profile_kw, reason, words", [
    ({"protocol_version": "2.0"}, {}, conn.PROTOCOL, "server speaks 2.0, this add-on 1.0"),
    ({"token": "right"}, {"token": "wrong"}, conn.BAD_TOKEN, "refused the token"),
    ({"token": "right"}, {}, conn.BAD_TOKEN, "refused the token"),
    ({"loading": True}, {}, conn.LOADING, "still loading the model"),
])
def test_connection_problems_are_explained(server_kw, profile_kw, reason, words):
    with FakeServer(**server_kw) as server, RenderClient(ServerProfile("p", server.address, **profile_kw)) as c:
        with pytest.raises(conn.ConnectionProblem) as info:
            c.check()
    assert info.value.reason == reason and words in str(info.value)


def test_unreachable_server_is_explained():
    profile = ServerProfile("p", f"127.0.0.1:{_free_port()}")
    with RenderClient(profile, timeout_s=3) as client, pytest.raises(conn.ConnectionProblem) as info:
        client.check()
    assert info.value.reason == conn.UNREACHABLE
    assert "cannot reach the render server" in str(info.value)


def test_token_from_file_and_tls_with_ca(tls_cert, tmp_path):
    key, cert = tls_cert
    token = tmp_path / "token"
    token.write_text("right\n")
    with FakeServer(tls=(key.read_bytes(), cert.read_bytes()), token="right") as server:
        good = ServerProfile("cloud", f"localhost:{server.port}", use_tls=True, ca_cert_path=str(cert),
                             token_file=str(token))
        with RenderClient(good) as client:
            assert client.check().auth_required
        with RenderClient(ServerProfile("cloud", f"localhost:{server.port}", token_file=str(token)),
                          timeout_s=3) as plain, pytest.raises(conn.ConnectionProblem) as info:
            plain.check()
        assert info.value.reason == conn.TLS_MISMATCH and "turn TLS on" in str(info.value)
    with FakeServer() as server:
        profile = ServerProfile("p", f"localhost:{server.port}", use_tls=True, ca_cert_path=str(cert))
        with RenderClient(profile, timeout_s=3) as client, pytest.raises(conn.ConnectionProblem) as info:
            client.check()
        assert info.value.reason == conn.TLS_MISMATCH and "turn TLS off" in str(info.value)


def test_submit_streams_manifest_and_every_png_byte_in_1mib_chunks(tmp_path):
    bundle = write_bundle(tmp_path / "b", frames=9, width=704, height=512, png_noise=True)
    per_frame = [i / 8 for i in range(9)]
    with FakeServer() as server, RenderClient(ServerProfile("p", server.address)) as client:
        sent = []
        reply = client.submit_bundle(bundle, request_id="req-1", strength=1.0, frame_strength=per_frame,
                                     client_info="test", on_bytes=lambda done, total: sent.append((done, total)))
        again = client.submit_bundle(bundle, request_id="req-1")
        job = server.service.jobs[reply.job_id]
    assert again.job_id == reply.job_id and again.deduplicated
    m = job.manifest
    assert (m.width, m.height, m.num_frames, m.fps, m.seed, m.frame_start) == (704, 512, 9, 24.0, 7, 1)
    assert list(m.control.frame_strength) == per_frame and m.control.strength == 1.0
    assert m.control.has_background_strength and m.control.background_strength == pytest.approx(0.2)
    assert m.camera.mode == pb.CAMERA_MODE_AUTO and len(m.camera.frames) == 9
    assert m.camera.frames[3].world_to_camera[11] == pytest.approx(5.3) and m.camera.frames[3].lens_mm == 53.0
    assert m.num_control_frames == 9 and m.has_mask and m.control.lora == "depth-pose"
    for i in range(9):
        assert bytes(job.control[i]) == (bundle / "control" / f"{i + 1:06d}.png").read_bytes()
        assert bytes(job.masks[i]) == (bundle / "mask" / f"{i + 1:06d}.png").read_bytes()
    assert (bundle / "control" / "000001.png").stat().st_size > 1024 * 1024  # so it really took 2 chunks
    png_bytes = sum(p.stat().st_size for p in bundle.glob("*/*.png"))
    assert sent[-1] == (png_bytes, png_bytes) and len(sent) == 9 * 2 + 9  # 2 chunks per control, 1 per mask


def test_submit_refuses_an_unfinished_export(tmp_path):
    bundle = write_bundle(tmp_path / "b")
    (bundle / "shot.json").unlink()
    with FakeServer() as server, RenderClient(ServerProfile("p", server.address)) as client:
        with pytest.raises(FileNotFoundError, match="did not finish; export it again"):
            client.submit_bundle(bundle, request_id="r")


def test_fetch_resumes_after_a_dropped_download_and_checks_sha256(tmp_path):
    bundle = write_bundle(tmp_path / "b", frames=33, width=256, height=256)
    with FakeServer(step_s=0.01) as server, RenderClient(ServerProfile("p", server.address)) as client:
        job_id = client.submit_bundle(bundle, request_id="r").job_id
        final = [e for e in client.watch(job_id)][-1]
        assert final.state == pb.JOB_STATE_DONE
        data = server.service.jobs[job_id].artifacts[pb.ARTIFACT_KIND_AUDIO_WAV]
        assert len(data) > 128 * 1024
        server.service.fetch_limit = 128 * 1024
        dest = tmp_path / "take" / "audio.wav"
        with pytest.raises(conn.ConnectionProblem):
            client.fetch(job_id, pb.ARTIFACT_KIND_AUDIO_WAV, dest)
        assert not dest.exists() and (tmp_path / "take" / "audio.wav.part").stat().st_size == 128 * 1024
        client.fetch(job_id, pb.ARTIFACT_KIND_AUDIO_WAV, dest)
    assert server.service.fetch_offsets == [0, 128 * 1024]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "take" / "audio.wav.part").exists()


def test_fetch_starts_over_when_the_part_file_cannot_be_resumed(tmp_path):
    bundle = write_bundle(tmp_path / "b")
    with FakeServer(step_s=0.01) as server, RenderClient(ServerProfile("p", server.address)) as client:
        job_id = client.submit_bundle(bundle, request_id="r").job_id
        assert [e for e in client.watch(job_id)][-1].state == pb.JOB_STATE_DONE
        sidecar = server.service.jobs[job_id].artifacts[pb.ARTIFACT_KIND_SIDECAR_JSON]
        dest = tmp_path / "sidecar.json"
        (tmp_path / "sidecar.json.part").write_bytes(b"x" * (len(sidecar) + 10))  # longer than the artifact
        client.fetch(job_id, pb.ARTIFACT_KIND_SIDECAR_JSON, dest)
        assert dest.read_bytes() == sidecar
        (tmp_path / "sidecar.json.part").write_bytes(b"y" * len(sidecar))  # complete size, wrong bytes
        with pytest.raises(conn.ConnectionProblem, match="checksum mismatch"):
            client.fetch(job_id, pb.ARTIFACT_KIND_SIDECAR_JSON, tmp_path / "sidecar.json")
        assert not (tmp_path / "sidecar.json.part").exists()  # never kept, so the next fetch starts clean
        listed = client.list_jobs()
    assert server.service.fetch_offsets == [len(sidecar) + 10, 0, len(sidecar)]
    assert [(j.job_id, j.request_id, j.state) for j in listed] == [(job_id, "r", pb.JOB_STATE_DONE)]


def test_worker_runs_a_shot_to_files_without_blocking_the_caller(tmp_path):
    bundle = write_bundle(tmp_path / "b", frames=17)
    worker = wk.RenderWorker()
    with FakeServer(step_s=0.05) as server:
        t0 = time.monotonic()
        worker.run_shot("req-a", ServerProfile("p", server.address), bundle, tmp_path / "take")
        assert time.monotonic() - t0 < 0.2  # returns at once; the network is in the worker thread
        seen = _events_until(worker, "req-a", {wk.FETCHED, wk.ERROR, wk.FINISHED})
    kinds = [e.kind for e in seen]
    assert kinds[-1] == wk.FETCHED, seen[-1].text
    assert wk.SUBMITTED in kinds
    running = [e for e in seen if e.state == jobs.RUNNING]
    assert running and running[-1].text.startswith("Denoising 4/4")
    files = seen[-1].files
    assert sorted(files) == ["audio.wav", "sidecar.json", "video.mp4"]
    import av
    with av.open(files["video.mp4"]) as box:
        assert box.streams.video[0].frames == 17 and box.streams.audio
    assert Image.open(bundle / "control" / "000001.png").size == (64, 64)


def test_worker_cancel_stops_the_job_on_the_server(tmp_path):
    bundle = write_bundle(tmp_path / "b")
    worker = wk.RenderWorker()
    with FakeServer(step_s=0.3) as server:
        profile = ServerProfile("p", server.address)
        worker.run_shot("req-c", profile, bundle, tmp_path / "take")
        submitted = [e for e in _events_until(worker, "req-c", {wk.SUBMITTED}) if e.kind == wk.SUBMITTED][0]
        worker.cancel("req-c", profile, submitted.job_id)
        seen = _events_until(worker, "req-c", {wk.FETCHED, wk.FINISHED, wk.ERROR})
        assert server.service.jobs[submitted.job_id].state == pb.JOB_STATE_CANCELLED
    assert seen[-1].kind == wk.FINISHED and seen[-1].state == jobs.CANCELLED
    assert not (tmp_path / "take" / "video.mp4").exists()


def test_worker_test_connection_reports_failure_as_an_event():
    worker = wk.RenderWorker()
    with FakeServer(protocol_version="2.0") as server:
        worker.test_connection(ServerProfile("gpu", server.address))
        ev = _events_until(worker, "gpu", {wk.CONNECTION})[-1]
    assert not ev.ok and ev.reason == conn.PROTOCOL and "mismatch" in ev.text


def test_worker_reattaches_when_the_server_restarts_mid_job(tmp_path):
    bundle = write_bundle(tmp_path / "b")
    worker = wk.RenderWorker()
    first = FakeServer(step_s=0.2)
    with first:
        profile = ServerProfile("p", first.address)
        worker.run_shot("req-r", profile, bundle, tmp_path / "take")
        _events_until(worker, "req-r", {wk.SUBMITTED})
    # the stream broke; the same job store comes back on the same port (a restarted server)
    with FakeServer(port=first.port, service=first.service):
        seen = _events_until(worker, "req-r", {wk.FETCHED, wk.ERROR, wk.FINISHED})
    assert seen[-1].kind == wk.FETCHED, seen[-1].text
    assert (tmp_path / "take" / "video.mp4").is_file()
