"""The service end to end over real gRPC on loopback with the real engine on the tiny model."""

from __future__ import annotations

import hashlib
import json
import re
import time
from fractions import Fraction

import grpc
import pytest

from render_backend import media
from render_backend.client import ServiceClient
from render_backend.demo import synthetic_shot
from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.request import OutOfMemory
from render_backend.proto import render_pb2 as pb

from .conftest import SLOW, running_server, wait_state

MP4, WAV, SIDECAR = pb.ARTIFACT_KIND_VIDEO_MP4, pb.ARTIFACT_KIND_AUDIO_WAV, pb.ARTIFACT_KIND_SIDECAR_JSON


def _slow_shot(**kw):
    return synthetic_shot(SLOW["num_frames"], SLOW["width"], SLOW["height"], steps=SLOW["steps"], **kw)


def test_shot_renders_to_mp4_wav_and_sidecar_that_decode(served, tmp_path):
    server, client = served
    m, controls, masks = synthetic_shot(25, 64, 64, steps=2, fps=25.0, frame_start=1001)
    job = client.submit(m, controls, masks)
    events = []
    final = client.wait(job.job_id, on_event=events.append, timeout=120)
    assert final.state == pb.JOB_STATE_DONE, final.message
    assert final.camera_move == "dolly_in"  # the synthetic track moves 1 m forward
    steps = [e.step for e in events if e.stage == "denoising"]
    assert steps and max(steps) <= 2 and all(0 <= e.progress <= 1 for e in events)
    assert [e.progress for e in events] == sorted(e.progress for e in events)

    paths = {a.kind: client.fetch(job.job_id, a.kind, tmp_path / a.filename) for a in final.artifacts}
    for a in final.artifacts:
        assert hashlib.sha256(paths[a.kind].read_bytes()).hexdigest() == a.sha256
    info = media.probe_mp4(paths[MP4])
    assert (info.frames, info.width, info.height, info.fps) == (25, 64, 64, Fraction(25))
    assert info.audio_codec == "aac" and info.audio_seconds == pytest.approx(1.0, abs=1e-3)
    rate, channels, width, seconds = media.probe_wav(paths[WAV])
    caps = client.capabilities()
    assert (rate, width) == (caps.audio_sample_rate, 2) and seconds == pytest.approx(1.0, abs=1e-3)

    sidecar = json.loads(paths[SIDECAR].read_text())
    assert sidecar["manifest"]["seed"] == "7" and sidecar["engine"]["seed"] == 7
    assert sidecar["frame_start"] == 1001 and sidecar["server_version"] == caps.server_version
    assert sidecar["model"]["model_id"] == caps.model_id
    lora_hashes = {lo.name: lo.sha256 for lo in caps.loras}
    used = sidecar["engine"]["loras"]
    assert "control" in [u["name"] for u in used]
    assert all(u["sha256"] == lora_hashes[u["name"]] for u in used)
    assert sidecar["timings"]["render_s"] > 0 and sidecar["timings"]["encode_s"] > 0


def _sidecar(client, job_id, tmp_path) -> dict:
    return json.loads(client.fetch(job_id, SIDECAR, tmp_path / f"{job_id}.json").read_text())


def test_running_events_carry_the_camera_move_before_encoding(served):
    _, client = served
    job = client.submit(*synthetic_shot(9, 64, 64, steps=6))
    events = []
    final = client.wait(job.job_id, on_event=events.append, timeout=60)
    assert final.state == pb.JOB_STATE_DONE
    denoising = [e for e in events if e.state == pb.JOB_STATE_RUNNING and e.stage == "denoising"]
    assert len(denoising) >= 2 and {e.camera_move for e in denoising} == {"dolly_in"}
    assert denoising[0].step < 6  # known from the first steps on, not only once the job is encoding


def test_capabilities_give_the_reference_size_the_engine_reads(served, tmp_path):
    _, client = served
    caps = client.capabilities()
    rule = {lo.name: lo.reference_downscale_factor for lo in caps.loras}
    assert (rule["control"], rule["camera_trajectory"], rule["camera_static"]) == (1, 4, 0)
    assert (caps.two_stage, caps.latent_cell, caps.min_frames, caps.engine) == (False, 32, 9, "ltx2")
    width, height = 256, 128  # multiples of 128: the trajectory canvas is 256/4 x 128/4
    m, controls, masks = synthetic_shot(9, width, height, steps=1)
    m.camera.mode, m.camera.trajectory_lora = pb.CAMERA_MODE_TRAJECTORY, "camera_trajectory"
    job = client.submit(m, controls, masks)
    assert client.wait(job.job_id, timeout=60).state == pb.JOB_STATE_DONE
    engine = _sidecar(client, job.job_id, tmp_path)["engine"]
    divisor = rule["camera_trajectory"]
    assert engine["camera"]["canvas_size"] == [width // divisor, height // divisor] == [64, 32]
    refs = {r["name"]: r["latent_grid"] for r in engine["references"]}
    assert refs == {"control:depth+pose": [2, 4, 8], "camera_trajectory": [2, 1, 2]}


def test_unset_control_strength_means_full_strength_and_explicit_zero_is_kept(served, tmp_path):
    _, client = served
    unset, controls, _ = synthetic_shot(9, 64, 64, steps=1, with_mask=False)
    unset.controls[0].ClearField("strength")
    zero, _, _ = synthetic_shot(9, 64, 64, steps=1, with_mask=False)
    zero.controls[0].strength = 0.0
    jobs = {name: client.submit(m, controls, []) for name, m in (("unset", unset), ("zero", zero))}
    assert jobs["unset"].warnings == [] and "controls[0].strength is 0" in jobs["zero"].warnings[0]
    got = {}
    for name, job in jobs.items():
        assert client.wait(job.job_id, timeout=60).state == pb.JOB_STATE_DONE
        control = _sidecar(client, job.job_id, tmp_path)["engine"]["controls"][0]
        got[name] = (control["strength"], control["token_strength_max"])
    assert got == {"unset": (1.0, 1.0), "zero": (0.0, 0.0)}


def test_capabilities_say_the_variant_how_it_was_decided_and_the_default_stages(served):
    caps = served[1].capabilities()
    assert (caps.model_variant, caps.default_stages, caps.two_stage) == ("distilled", 1, False)
    assert caps.variant_source == "scheduler/scheduler_config.json: use_dynamic_shifting=false, shift_terminal=null"
    assert caps.guidance.startswith("distilled: no guidance")
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1)
    m.stages = 2
    with pytest.raises(grpc.RpcError) as err:
        served[1].submit(m, controls, masks)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stages 2 is not available on this server: no latent upsampler" in err.value.details()


def test_stages_on_the_wire_default_to_two_with_an_upsampler_and_one_is_a_fast_preview(tiny_model, tmp_path):
    two_stage = LTX2Engine(str(tiny_model))  # finds <model>/latent_upsampler
    two_stage.load()
    with running_server(two_stage, tmp_path / "data") as (_, client):
        caps = client.capabilities()
        assert (caps.default_stages, caps.two_stage, caps.size_multiple) == (2, True, 64)
        done = {}
        for stages in (0, 1):  # 0 = the server's default
            m, controls, masks = synthetic_shot(9, 128, 128, steps=1)
            m.stages = stages
            job = client.submit(m, controls, masks)
            assert client.wait(job.job_id, timeout=60).state == pb.JOB_STATE_DONE
            sidecar = _sidecar(client, job.job_id, tmp_path)
            assert (sidecar["model"]["model_variant"], sidecar["model"]["default_stages"]) == ("distilled", 2)
            assert sidecar["model"]["variant_source"] == caps.variant_source == sidecar["engine"]["variant_source"]
            done[stages] = sidecar["engine"]
        assert (done[0]["stages"], done[0]["two_stage"]["stage1_size"]) == (2, [64, 64])
        assert (done[1]["stages"], "two_stage" in done[1], done[1]["target_tokens"]) == (1, False, 2 * 4 * 4)
        m, controls, masks = synthetic_shot(9, 96, 64, steps=1)  # a one-stage size
        m.stages = 1
        assert client.wait(client.submit(m, controls, masks).job_id, timeout=60).state == pb.JOB_STATE_DONE


def test_second_client_reattaches_to_a_running_job_and_after_it_ends(served):
    server, submitter = served
    m, controls, masks = synthetic_shot(33, 64, 64, steps=120)
    job = submitter.submit(m, controls, masks)
    first = wait_state(submitter, job.job_id, (pb.JOB_STATE_RUNNING,))
    submitter_events_stopped_at = first.step
    with ServiceClient(server.address) as other:
        events = list(other.watch(job.job_id, timeout=120))
        assert events[0].state == pb.JOB_STATE_RUNNING and events[0].step >= submitter_events_stopped_at
        assert events[-1].state == pb.JOB_STATE_DONE and len(events[-1].artifacts) == 3
        running = [e for e in events if e.stage == "denoising"]
        assert running[-1].step > running[0].step
        assert any(e.eta_seconds > 0 for e in running[1:])
        # Re-attach after the end: exactly the final state, then the stream closes.
        again = list(other.watch(job.job_id, timeout=10))
        assert [(e.state, e.progress) for e in again] == [(pb.JOB_STATE_DONE, 1.0)]


def test_cancel_from_another_client_after_the_submitter_disconnected(served):
    server, _ = served
    m, controls, masks = _slow_shot()
    submitter = ServiceClient(server.address)
    job = submitter.submit(m, controls, masks)
    submitter.close()
    with ServiceClient(server.address) as other:
        ev = wait_state(other, job.job_id, (pb.JOB_STATE_RUNNING,), min_step=3)
        assert other.cancel(job.job_id) == pb.JOB_STATE_CANCELLED
        final = list(other.watch(job.job_id, timeout=10))[-1]
        assert final.state == pb.JOB_STATE_CANCELLED and "cancelled" in final.message
        # Stopped inside the step it was running, long before the end (counted in steps, not seconds:
        # the CPU is shared and the tiny model's steps take milliseconds).
        where = re.search(r"(?:inside|before) denoising step (\d+)/", final.message)
        assert where, final.message  # not "after denoising step 150/150": it did not run to the end
        stopped_at = int(where.group(1))
        assert ev.step <= stopped_at < ev.step + (SLOW["steps"] - ev.step) // 2, final.message
        assert ev.total_steps == SLOW["steps"]
        # Nothing to fetch from a cancelled job.
        with pytest.raises(grpc.RpcError) as err:
            list(other.fetch_chunks(job.job_id, MP4))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "JOB_STATE_CANCELLED" in err.value.details()


def test_queued_job_cancels_at_once_and_watchers_get_position_and_heartbeats(served):
    server, client = served
    running = client.submit(*_slow_shot())
    queued = client.submit(*synthetic_shot(9, 64, 64, steps=1))
    wait_state(client, running.job_id, (pb.JOB_STATE_RUNNING,))
    call = client.watch(queued.job_id, timeout=30)
    first = next(call)
    assert (first.state, first.queue_position, first.stage) == (pb.JOB_STATE_QUEUED, 1, "queued")
    t0 = time.monotonic()
    beats = []
    for ev in call:  # nothing changes for a queued job: only heartbeats (0.5 s in tests)
        beats.append((time.monotonic() - t0, ev.heartbeat))
        if len(beats) == 2:
            break
    call.cancel()
    assert [b for _, b in beats] == [True, True] and beats[-1][0] < 1.6
    assert client.cancel(queued.job_id) == pb.JOB_STATE_CANCELLED
    assert client.cancel(running.job_id) == pb.JOB_STATE_CANCELLED
    states = {j.job_id: j.state for j in client.list_jobs(states=[pb.JOB_STATE_CANCELLED])}
    assert states[queued.job_id] == states[running.job_id] == pb.JOB_STATE_CANCELLED


def test_fetch_resumes_from_an_offset_after_a_dropped_stream(served, tmp_path):
    server, client = served
    job = client.submit(*synthetic_shot(25, 64, 64, steps=1))
    final = client.wait(job.job_id, timeout=60)
    mp4 = next(a for a in final.artifacts if a.kind == MP4)
    assert mp4.size > 3 * 16 * 1024  # several 16 KiB chunks in the test server
    call = client.fetch_chunks(job.job_id, MP4)
    got = b""
    for chunk in call:
        assert (chunk.total_size, chunk.sha256, chunk.offset) == (mp4.size, mp4.sha256, len(got))
        got += chunk.data
        if len(got) >= 2 * 16 * 1024:
            call.cancel()  # the connection drops mid-download
            break
    assert len(got) < mp4.size
    part = tmp_path / "take.mp4.part"
    part.write_bytes(got)
    path = client.fetch(job.job_id, MP4, tmp_path / "take.mp4")  # resumes at len(got)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == mp4.sha256 and not part.exists()
    # Offset == size: one empty last chunk; past the end: OUT_OF_RANGE.
    tail = list(client.fetch_chunks(job.job_id, MP4, offset=mp4.size))
    assert [(c.data, c.last) for c in tail] == [(b"", True)]
    for artifact, offset, code in [(MP4, mp4.size + 1, "OUT_OF_RANGE"), (pb.ARTIFACT_KIND_UNSPECIFIED, 0, "NOT_FOUND")]:
        with pytest.raises(grpc.RpcError) as err:
            list(client.fetch_chunks(job.job_id, artifact, offset=offset))
        assert err.value.code().name == code
    with pytest.raises(grpc.RpcError) as err:
        list(client.watch("no-such-job"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "ListJobs" in err.value.details()


def test_a_corrupt_partial_download_is_never_kept(served, tmp_path):
    server, client = served
    job = client.submit(*synthetic_shot(9, 64, 64, steps=1))
    final = client.wait(job.job_id, timeout=60)
    (tmp_path / "t.wav.part").write_bytes(b"garbage!")  # wrong prefix from an earlier attempt
    from render_backend.client import IntegrityError

    with pytest.raises(IntegrityError, match="fetch again"):
        client.fetch(job.job_id, WAV, tmp_path / "t.wav")
    assert not (tmp_path / "t.wav").exists() and not (tmp_path / "t.wav.part").exists()
    wav = next(a for a in final.artifacts if a.kind == WAV)
    assert media.sha256_of(client.fetch(job.job_id, WAV, tmp_path / "t.wav")) == wav.sha256


class _OutOfMemoryOnRequest:
    """Wraps the real engine; raises the engine's OutOfMemory for prompts mentioning 'huge' (no GPU here)."""

    def __init__(self, engine):
        self.engine = engine
        self.loaded = True

    def capabilities(self):
        return self.engine.capabilities()

    def check_request(self, req):
        return self.engine.check_request(req)

    def render(self, req, progress=None, should_cancel=None, on_plan=None):
        if "huge" in req.prompt:
            raise OutOfMemory("GPU out of memory for 257 frames at 1920x1088: try fewer frames or a smaller size")
        return self.engine.render(req, progress, should_cancel, on_plan)


def test_engine_out_of_memory_fails_the_job_and_the_server_keeps_serving(engine, tmp_path):
    with running_server(_OutOfMemoryOnRequest(engine), tmp_path) as (_, client):
        m, controls, masks = synthetic_shot(9, 64, 64, steps=1, prompt="a huge crowd scene")
        failed = client.wait(client.submit(m, controls, masks).job_id, timeout=60)
        assert (failed.state, failed.error_code) == (pb.JOB_STATE_FAILED, "RESOURCE_EXHAUSTED")
        assert "try fewer frames or a smaller size" in failed.message
        ok = client.wait(client.submit(*synthetic_shot(9, 64, 64, steps=1)).job_id, timeout=60)
        assert ok.state == pb.JOB_STATE_DONE
