"""Hostile and absurd input over real gRPC: every refusal is a deliberate status with a short message that
says what to change, nothing is decoded or stored before it is bounded, and the server keeps serving."""

from __future__ import annotations

import json
import math
import time

import grpc
import pytest

from render_backend import media
from render_backend.demo import synthetic_shot
from render_backend.proto import render_pb2 as pb

from .hostile import assert_deliberate, bomb_png, garbage_idat_png, header_only_png

SIDECAR = pb.ARTIFACT_KIND_SIDECAR_JSON


def _refused(fn) -> tuple[str, str]:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return assert_deliberate(err.value)


def _incoming(server) -> list:
    return list((server.server.config.data_dir / "incoming").iterdir())


def _done(client, m, controls=(), masks=()):
    final = client.wait(client.submit(m, list(controls), list(masks)).job_id, timeout=60)
    assert final.state == pb.JOB_STATE_DONE, (final.error_code, final.message)
    return final


@pytest.mark.parametrize("declared, png", [
    ((65535, 65535), lambda: header_only_png(65535, 65535)),   # 57 bytes
    ((20000, 20000), lambda: header_only_png(20000, 20000)),
    ((9000, 9000), lambda: bomb_png(9000, 9000)),              # ~230 KiB, 243 MB once decoded
], ids=["header_only_65535", "header_20000", "bomb_9000"])
def test_png_whose_header_declares_a_huge_image_is_refused_before_decoding(served, declared, png):
    server, client = served
    data = png()
    m, _, _ = synthetic_shot(9, 64, 64, steps=1, with_mask=False)
    code, details = _refused(lambda: client.submit(m, [data] * 9, []))
    w, h = declared
    assert code == "INVALID_ARGUMENT", details
    assert f"controls[0] canvas frame 0 declares {w}x{h} pixels in its PNG header but controls[0] is 64x64" \
        in details, details
    assert _incoming(server) == []
    assert client.health() == "SERVING"


def test_png_with_a_corrupt_chunk_is_refused_as_not_decodable(served):
    server, client = served
    m, controls, _ = synthetic_shot(9, 64, 64, steps=1, with_mask=False)
    broken = bytearray(controls[0])
    broken[40] ^= 0xFF  # inside the first chunk after IHDR: its CRC no longer matches
    code, details = _refused(lambda: client.submit(m, [bytes(broken)] + controls[1:], []))
    assert code == "INVALID_ARGUMENT" and "controls[0] canvas frame 0 does not decode as a PNG" in details, details
    assert _incoming(server) == []


def test_png_that_verifies_but_does_not_decode_fails_its_job_naming_the_frame(served):
    """The upload checks header + CRCs only (no pixels); the job's one decode catches broken zlib data."""
    from io import BytesIO

    from PIL import Image

    _, client = served
    m, controls, _ = synthetic_shot(9, 64, 64, steps=1, with_mask=False)
    broken = garbage_idat_png(64, 64)
    with Image.open(BytesIO(broken)) as img:
        img.verify()  # what the upload checks: this frame passes it
    job = client.submit(m, controls[:3] + [broken] + controls[4:], [])
    final = client.wait(job.job_id, timeout=60)
    assert final.state == pb.JOB_STATE_FAILED, (final.state, final.message)
    assert final.error_code == "INVALID_ARGUMENT", final.error_code
    assert "controls[0] canvas frame 3 passed the upload check but its pixels do not decode" in final.message, \
        final.message
    assert "re-export the frame" in final.message
    assert client.health() == "SERVING"


def test_a_frame_larger_than_its_size_can_need_is_refused_while_it_streams(served):
    server, client = served
    m, controls, _ = synthetic_shot(9, 64, 64, steps=1, with_mask=False)
    huge = controls[0] + b"\0" * (2 * 2**20)  # a 64x64 PNG never needs 2 MiB
    code, details = _refused(lambda: client.submit(m, [huge] + controls[1:], [], chunk_bytes=64 * 1024))
    assert code == "INVALID_ARGUMENT" and "controls[0] canvas frame 0 is over" in details, details
    assert "more than a 64x64 PNG can need" in details
    assert _incoming(server) == []


@pytest.mark.parametrize("kind", [99, 6, -1])
def test_fetch_with_an_artifact_kind_that_does_not_exist_is_invalid_argument(served, kind):
    _, client = served
    job = client.submit(*synthetic_shot(9, 64, 64, steps=1))
    client.wait(job.job_id, timeout=60)
    code, details = _refused(lambda: list(client.fetch_chunks(job.job_id, kind)))
    assert code == "INVALID_ARGUMENT" and f"artifact kind {kind} does not exist" in details, details
    assert "1 (VIDEO_MP4), 2 (AUDIO_WAV), 3 (SIDECAR_JSON), 4 (TAIL_ZIP) or 5 (FRAMES_ZIP)" in details


def test_an_unbounded_job_id_is_not_echoed_back(served):
    _, client = served
    job_id = "x" * 2**20
    calls = [lambda: list(client.watch(job_id, timeout=10)), lambda: client.cancel(job_id),
             lambda: list(client.fetch_chunks(job_id, pb.ARTIFACT_KIND_VIDEO_MP4))]
    for call in calls:
        code, details = _refused(call)
        assert code == "NOT_FOUND" and "(1048576 characters)" in details and len(details) < 300, details[:300]


def test_the_smallest_size_capabilities_advertise_renders_and_smaller_is_refused(served):
    _, client = served
    caps = client.capabilities()
    assert (caps.min_width, caps.min_height) == (64, 64)  # the VAE decoder pads by reflection: 2 latent cells
    for w, h in ((32, 64), (64, 32), (32, 32)):
        m, _, _ = synthetic_shot(9, w, h, steps=1, control_lora="", camera=False)
        code, details = _refused(lambda m=m: client.submit(m, [], []))
        side, got = ("width", w) if w < 64 else ("height", h)
        assert code == "INVALID_ARGUMENT", details
        assert f"{side} must be at least 64 on this model (got {got}); try 64" in details, details
    m, _, _ = synthetic_shot(9, caps.min_width, caps.min_height, steps=1, control_lora="", camera=False)
    _done(client, m)


def test_a_long_shot_name_is_refused_and_the_longest_allowed_renders(served, tmp_path):
    server, client = served
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1, shot_name="s" * 300)
    code, details = _refused(lambda: client.submit(m, controls, masks))
    assert code == "INVALID_ARGUMENT" and "shot_name is 300 characters; use at most 120" in details, details
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1, shot_name="é" * 120)  # 240 bytes in UTF-8
    final = _done(client, m, controls, masks)
    assert all(len(a.filename.encode()) <= 255 for a in final.artifacts)
    assert json.loads(client.fetch(final.job_id, SIDECAR, tmp_path / "s.json").read_text())["shot_name"] == "é" * 120


@pytest.mark.parametrize("fps", [1e-300, 1e-4, 0.5, math.inf, math.nan, 1e300, -24.0])
def test_fps_outside_the_video_range_is_refused(served, fps):
    _, client = served
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1, fps=fps)
    code, details = _refused(lambda: client.submit(m, controls, masks))
    assert code == "INVALID_ARGUMENT" and "fps must be between 1 and 240" in details, details


@pytest.mark.parametrize("where", ["extra_twice", "control_and_extra"])
def test_a_lora_listed_twice_is_refused_before_the_upload(served, where):
    server, client = served
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1)
    if where == "extra_twice":
        m.extra_loras.add(name="camera_static", weight=0.5)
        m.extra_loras.add(name="camera_static", weight=0.7)
        name = "camera_static"
    else:
        m.extra_loras.add(name="control", weight=0.5)
        name = "control"
    code, details = _refused(lambda: client.submit(m, controls, masks))
    assert code == "INVALID_ARGUMENT" and f"LoRA '{name}' is requested twice" in details, details
    assert _incoming(server) == []


TRICKS = ["../../../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "C:\\Windows\\x", "~root/.ssh",
          "shot\x00.mp4", "sh\not", "%2e%2e%2f", " ", "-rf"]


def _all_files(root):
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def test_path_tricks_in_every_name_field_never_leave_the_job_folder(served, tmp_path):
    server, client = served
    data_dir = server.server.config.data_dir
    outside = _all_files(data_dir.parent)
    accepted = []
    for i, trick in enumerate(TRICKS):
        m, controls, masks = synthetic_shot(9, 64, 64, steps=1, shot_name=trick)
        m.request_id = f"{trick}-{i}"
        accepted.append(client.submit(m, controls, masks).job_id)
        for field in ("lora", "kind"):
            bad, controls, masks = synthetic_shot(9, 64, 64, steps=1)
            setattr(bad.controls[0], field, trick)
            code, details = _refused(lambda bad=bad, c=controls, k=masks: client.submit(bad, c, k))
            assert code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"), details
        for setter in (lambda m, t: (setattr(m.camera, "mode", pb.CAMERA_MODE_PRESET),
                                     setattr(m.camera, "preset_lora", t)),
                       lambda m, t: m.extra_loras.add(name=t)):
            bad, controls, masks = synthetic_shot(9, 64, 64, steps=1)
            setter(bad, trick)
            code, _ = _refused(lambda bad=bad, c=controls, k=masks: client.submit(bad, c, k))
            assert code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION")
    for job_id in accepted:
        final = client.wait(job_id, timeout=60)
        assert final.state == pb.JOB_STATE_DONE, final.message
        outputs = data_dir / "jobs" / job_id / "outputs"
        assert sorted(p.name for p in outputs.iterdir()) == sorted(a.filename for a in final.artifacts)
        for a in final.artifacts:
            assert "/" not in a.filename and "\\" not in a.filename and not a.filename.startswith(".")
    # Nothing was written anywhere but inside the data folder (tests share its parent).
    new = {p for p in _all_files(data_dir.parent) - outside if not str(p).startswith(data_dir.name + "/")}
    assert new == set()
    assert _incoming(server) == []


def test_an_absurd_camera_translation_is_refused_and_sidecars_are_strict_json(served, tmp_path):
    _, client = served
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1)
    m.camera.frames[0].world_to_camera[3] = 1e300  # x translation
    code, details = _refused(lambda: client.submit(m, controls, masks))
    assert code == "INVALID_ARGUMENT" and "camera frame 0: world_to_camera translation" in details, details
    final = _done(client, *synthetic_shot(9, 64, 64, steps=1))

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    json.loads(client.fetch(final.job_id, SIDECAR, tmp_path / "s.json").read_text(), parse_constant=refuse)
    path = media.write_json_atomic(tmp_path / "odd.json", {"a": math.inf, "b": [math.nan, -math.inf, 1.5]})
    assert json.loads(path.read_text(), parse_constant=refuse) == {"a": None, "b": [None, None, 1.5]}


@pytest.mark.parametrize("case", ["client_info", "extra_loras", "camera_frames", "frame_strength", "lora_name",
                                  "w2c_values", "negative_prompt"])
def test_oversized_strings_and_arrays_are_refused_fast_with_a_short_message(served, case):
    _, client = served
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1)
    if case == "client_info":
        m.client_info = "b" * 100_000
    elif case == "extra_loras":
        for _ in range(200_000):
            m.extra_loras.add(name="x")
    elif case == "camera_frames":
        frame = m.camera.frames[0]
        m.camera.frames.extend([frame] * 20_000)
    elif case == "frame_strength":
        m.controls[0].frame_strength.extend([0.5] * 500_000)
    elif case == "lora_name":
        m.controls[0].lora = "L" * 1_000_000
    elif case == "w2c_values":
        m.camera.frames[0].world_to_camera.extend([0.0] * 500_000)
    else:
        m.negative_prompt = "n" * 1_000_000
    t0 = time.monotonic()
    code, details = _refused(lambda: client.submit(m, controls, masks))
    assert code == "INVALID_ARGUMENT" and len(details) < 400, details[:400]
    assert time.monotonic() - t0 < 5.0
    assert client.health() == "SERVING"


def test_an_upload_the_client_abandons_leaves_nothing_behind(served):
    import threading

    from render_backend.client import submit_messages

    server, client = served
    m, controls, masks = synthetic_shot(25, 64, 64, steps=1)
    sent, release = threading.Event(), threading.Event()

    def half():
        for i, message in enumerate(submit_messages(m, [(controls, masks)], 1 << 20)):
            if i == 13:
                sent.set()
                release.wait(30)
                return
            yield message

    call = client.stub.SubmitShot.future(half(), timeout=60)
    assert sent.wait(10)
    deadline = time.monotonic() + 10
    while not any(p.suffix == ".png" for p in (server.server.config.data_dir / "incoming").rglob("*")):
        assert time.monotonic() < deadline, "the frames never arrived"
        time.sleep(0.02)
    call.cancel()  # the artist closed Blender mid-upload
    release.set()
    deadline = time.monotonic() + 5
    while _incoming(server):
        assert time.monotonic() < deadline, _incoming(server)
        time.sleep(0.05)
    assert m.request_id not in {j.request_id for j in client.list_jobs()}
