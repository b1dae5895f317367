"""Bad shots are refused over real gRPC with one status code per cause and a message saying what to change."""

from __future__ import annotations

import grpc
import pytest

from render_backend.demo import png_bytes, synthetic_shot
from render_backend.proto import render_pb2 as pb

from .conftest import running_server


def _shot(**kw):
    return synthetic_shot(9, 64, 64, steps=1, **kw)


def _refusal(client, manifest, controls, masks, messages=None):
    with pytest.raises(grpc.RpcError) as err:
        if messages is not None:
            client.stub.SubmitShot(iter(messages), timeout=30)
        else:
            client.submit(manifest, controls, masks)
    return err.value.code().name, err.value.details()


def _set(path, value):
    def apply(m):
        *parents, leaf = path.split(".")
        target = m
        for p in parents:
            target = getattr(target, p)
        if isinstance(value, list):
            del getattr(target, leaf)[:]
            getattr(target, leaf).extend(value)
        else:
            setattr(target, leaf, value)
    return apply


def _c0(field, value):
    """Change a field of the shot's first control."""
    def apply(m):
        target = m.controls[0]
        if isinstance(value, list):
            del getattr(target, field)[:]
            getattr(target, field).extend(value)
        else:
            setattr(target, field, value)
    return apply


def _bad_w2c(values):
    def apply(m):
        del m.camera.frames[3].world_to_camera[:]
        m.camera.frames[3].world_to_camera.extend(values)
    return apply


def _trajectory(factor=0, width=None):
    def apply(m):
        m.camera.mode, m.camera.trajectory_lora = pb.CAMERA_MODE_TRAJECTORY, "camera_trajectory"
        m.camera.reference_downscale_factor = factor
        if width:
            m.width = m.controls[0].width = width
    return apply


SCALED = [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]
# (case id, manifest change, expected code, words the message must contain)
MANIFEST_CASES = [
    ("frames_not_8k1", _set("num_frames", 120), "INVALID_ARGUMENT",
     "frames must be 8k+1 and at least 9 (got 120); try 121 or 113"),
    ("frames_too_many", _set("num_frames", 265), "INVALID_ARGUMENT", "at most 257"),
    ("width_not_32", _set("width", 100), "INVALID_ARGUMENT", "width must be a multiple of 32 (got 100); try 96 or 128"),
    ("height_too_big", _set("height", 4096), "INVALID_ARGUMENT", "height must be at most"),
    ("fps_zero", _set("fps", 0.0), "INVALID_ARGUMENT", "fps must be between 1 and 240"),
    ("fps_absurd", _set("fps", 10000.0), "INVALID_ARGUMENT", "(got 10000.0)"),
    ("prompt_empty", _set("prompt", "   "), "INVALID_ARGUMENT", "prompt is empty; describe the shot"),
    ("prompt_too_long", _set("prompt", "x" * 5000), "INVALID_ARGUMENT", "shorten it to at most 4000"),
    ("steps_too_many", _set("num_inference_steps", 500), "INVALID_ARGUMENT", "num_inference_steps must be 1..200"),
    ("guidance_below_one", _set("guidance_scale", 0.5), "INVALID_ARGUMENT", "guidance_scale must be between 1"),
    ("strength_above_one", _c0("strength", 1.5), "INVALID_ARGUMENT", "controls[0].strength must be between 0 and 1"),
    ("frame_strength_length", _c0("frame_strength", [1.0] * 5), "INVALID_ARGUMENT",
     "frame_strength has 5 values; it needs one per frame (9)"),
    ("frame_strength_value", _c0("frame_strength", [1.0] * 8 + [-0.2]), "INVALID_ARGUMENT",
     "controls[0].frame_strength[8] must be between 0 and 1"),
    ("background_strength", _c0("background_strength", 2.0), "INVALID_ARGUMENT",
     "controls[0].background_strength must be between 0 and 1"),
    ("unknown_control_lora", _c0("lora", "depth_v9"), "FAILED_PRECONDITION",
     "control LoRA 'depth_v9' is not installed on this server; installed: control, control_peft"),
    ("camera_preset_as_control", _c0("lora", "camera_static"), "FAILED_PRECONDITION",
     "is a camera_preset LoRA"),
    ("control_without_lora", _c0("lora", ""), "INVALID_ARGUMENT",
     "controls[0] (depth+pose) has no LoRA: the base model was not trained to follow a canvas; pick one of: "
     "control, control_peft"),
    ("unknown_canvas_kind", _c0("kind", "normals"), "INVALID_ARGUMENT",
     "controls[0].kind 'normals' is not a canvas kind"),
    ("unknown_camera_preset", lambda m: (_set("camera.mode", pb.CAMERA_MODE_PRESET)(m),
                                         _set("camera.preset_lora", "crane_spin")(m)),
     "FAILED_PRECONDITION", "camera preset LoRA 'crane_spin' is not installed"),
    ("camera_mode_unknown", _set("camera.mode", 42), "INVALID_ARGUMENT", "camera.mode 42 is unknown"),
    ("camera_frames_count", lambda m: m.camera.frames.pop(), "INVALID_ARGUMENT",
     "camera track has 8 frames; it needs one per output frame (9)"),
    ("w2c_not_16", _bad_w2c([1.0] * 12), "INVALID_ARGUMENT", "camera frame 3: world_to_camera needs 16 numbers"),
    ("w2c_not_rigid", _bad_w2c(SCALED), "INVALID_ARGUMENT", "camera frame 3: world_to_camera is not a rigid"),
    ("intrinsics_negative", lambda m: setattr(m.camera.frames[2], "fx", -5.0), "INVALID_ARGUMENT",
     "camera frame 2: intrinsics must be positive"),
    ("control_count", _c0("num_frames", 5), "INVALID_ARGUMENT",
     "controls[0] has 5 canvas frames but the shot has 9; send one canvas image per output frame"),
    ("reference_factor", _c0("reference_downscale_factor", 3), "INVALID_ARGUMENT",
     "control LoRA 'control' reads its canvas at 1/3 of 64x64 (controls[0].reference_downscale_factor 3) = "
     "21.3333x21.3333 pixels, but both sides must be multiples of 32; make width and height multiples of 96 "
     "(try width 96; height 96) or set controls[0].reference_downscale_factor to 1 or 2"),
    ("reference_factor_off_grid", _c0("reference_downscale_factor", 4), "INVALID_ARGUMENT",
     "at 1/4 of 64x64 (controls[0].reference_downscale_factor 4) = 16x16 pixels, but both sides must be multiples "
     "of 32; make width and height multiples of 128 (try width 128; height 128)"),
    ("trajectory_lora_factor_off_grid", _trajectory(), "INVALID_ARGUMENT",
     "camera trajectory LoRA 'camera_trajectory' reads its canvas at 1/4 of 64x64 (the LoRA's "
     "reference_downscale_factor 4) = 16x16 pixels, but both sides must be multiples of 32; make width and "
     "height multiples of 128 (try width 128; height 128)"),
    ("trajectory_request_factor_off_grid", _trajectory(factor=2, width=96), "INVALID_ARGUMENT",
     "at 1/2 of 96x64 (camera.reference_downscale_factor 2) = 48x32 pixels, but both sides must be multiples of "
     "32; make width and height multiples of 64 (try width 64 or 128) or set camera.reference_downscale_factor "
     "to 1"),
    ("trajectory_request_factor_off_grid_wide", _trajectory(factor=3, width=160), "INVALID_ARGUMENT",
     "at 1/3 of 160x64 (camera.reference_downscale_factor 3) = 53.3333x21.3333 pixels, but both sides must be "
     "multiples of 32; make width and height multiples of 96 (try width 96 or 192; height 96) or set "
     "camera.reference_downscale_factor to 1"),
    ("control_aspect", lambda m: (_c0("width", 64)(m), _c0("height", 32)(m)), "INVALID_ARGUMENT",
     "must have the shot's aspect ratio"),
    ("too_many_controls", lambda m: [m.controls.add().CopyFrom(m.controls[0]) for _ in range(4)], "INVALID_ARGUMENT",
     "5 controls in one shot; send at most 4"),
    ("same_lora_twice", lambda m: m.controls.add().CopyFrom(m.controls[0]), "INVALID_ARGUMENT",
     "LoRA 'control' is requested twice"),
    ("unknown_extra_lora", lambda m: m.extra_loras.add(name="film_grain", weight=0.5), "FAILED_PRECONDITION",
     "extra LoRA 'film_grain' is not installed"),
    ("lora_weight_negative", _c0("lora_weight", -1.0), "INVALID_ARGUMENT", "controls[0].lora_weight must be"),
]


@pytest.mark.parametrize("case, change, code, words", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_bad_manifest_is_refused_with_its_code_and_a_fix(served, case, change, code, words):
    _, client = served
    m, controls, masks = _shot()
    change(m)
    got_code, details = _refusal(client, m, controls, masks)
    assert (got_code, words in details) == (code, True), details


def test_frames_for_a_control_the_manifest_does_not_have_are_refused(served):
    _, client = served
    m, _, _ = _shot(control_lora="", with_mask=False)
    stray = pb.SubmitShotRequest(frame=pb.FrameChunk(kind=pb.FRAME_KIND_CONTROL, index=0, data=b"x", end_of_frame=True))
    code, details = _refusal(client, None, None, None, messages=[pb.SubmitShotRequest(manifest=m), stray])
    assert code == "INVALID_ARGUMENT" and "a frame names control 0 but the manifest has 0 control(s)" in details


def _frames(m, controls):
    return [pb.SubmitShotRequest(frame=pb.FrameChunk(kind=pb.FRAME_KIND_CONTROL, index=i, data=png,
                                                     end_of_frame=True)) for i, png in enumerate(controls)]


def test_stream_errors_name_the_frame_and_the_fix(served):
    _, client = served
    m, controls, _ = _shot(with_mask=False)
    head = pb.SubmitShotRequest(manifest=m)
    frames = _frames(m, controls)
    cases = [
        ([], "no manifest was sent"),
        ([frames[0], head], "a frame arrived before the manifest"),
        ([head, head], "the manifest was sent twice"),
        ([head, frames[1]], "controls[0] canvas frame 1 arrived out of order; expected frame 0"),
        ([head, *frames[:4]], "got 4 controls[0] canvas frames but the manifest announces 9"),
        ([head, pb.SubmitShotRequest(frame=pb.FrameChunk(kind=pb.FRAME_KIND_CONTROL, index=0,
                                                          data=b"GIF89a....", end_of_frame=True))],
         "controls[0] canvas frame 0 is not a PNG"),
        ([head, pb.SubmitShotRequest(frame=pb.FrameChunk(kind=pb.FRAME_KIND_CONTROL, index=0,
                                                          data=controls[0][:60], end_of_frame=True))],
         "controls[0] canvas frame 0 does not decode as a PNG"),
        ([head, pb.SubmitShotRequest(frame=pb.FrameChunk(kind=pb.FRAME_KIND_CONTROL, index=0,
                                                          data=png_bytes(__import__("numpy").zeros((32, 32, 3), "uint8")),
                                                          end_of_frame=True))],
         "controls[0] canvas frame 0 declares 32x32 pixels in its PNG header but controls[0] is 64x64"),
        ([head, pb.SubmitShotRequest(frame=pb.FrameChunk(kind=pb.FRAME_KIND_MASK, index=0, data=controls[0],
                                                          end_of_frame=True))],
         "mask frames were sent for controls[0] but its has_mask is false"),
        ([head, pb.SubmitShotRequest(frame=pb.FrameChunk(kind=pb.FRAME_KIND_CONTROL, index=0, offset=10,
                                                          data=controls[0], end_of_frame=True))],
         "chunk offset 10 but 0 bytes were received"),
    ]
    for messages, words in cases:
        code, details = _refusal(client, None, None, None, messages=messages)
        assert code == "INVALID_ARGUMENT" and words in details, (words, details)


def test_reused_request_id_with_a_different_shot_is_already_exists(served):
    _, client = served
    m, controls, masks = _shot()
    m.num_inference_steps = 1
    first = client.submit(m, controls, masks)
    again = client.submit(m, controls, masks)
    assert (again.job_id, again.deduplicated, first.deduplicated) == (first.job_id, True, False)
    m.prompt = "a different shot"
    code, details = _refusal(client, m, controls, masks)
    assert code == "ALREADY_EXISTS" and f"already used for a different shot (job {first.job_id})" in details
    client.wait(first.job_id, timeout=60)


def test_upload_over_the_limit_is_resource_exhausted(engine, tmp_path):
    with running_server(engine, tmp_path, max_upload_bytes=2_000) as (_, client):
        m, controls, masks = synthetic_shot(25, 64, 64, steps=1)
        code, details = _refusal(client, m, controls, masks)
        assert code == "RESOURCE_EXHAUSTED" and "larger than this server's limit" in details
        assert list((tmp_path / "incoming").iterdir()) == []  # the partial upload was removed
        assert client.list_jobs() == []


def _caps(**kw):
    from render_backend.engine.contract import EngineCapabilities, LoraCapability

    base = dict(engine="ltx2", model_id="m", model_variant="distilled", device="cpu", dtype="float32", frame_step=8,
                min_frames=9, max_frames=257, size_multiple=32, max_width=1920, max_height=1920, default_steps=8,
                default_guidance_scale=1.0, default_fps=24.0, audio_sample_rate=24000, two_stage=False,
                loras=(LoraCapability("control", "control", 1, None, "0" * 64, 4),
                       LoraCapability("camera_trajectory", "camera_trajectory", 4, None, "1" * 64, 4)))
    base.update(kw)
    return EngineCapabilities(**base)


def test_two_stage_halves_every_reference_again():
    from render_backend.engine.checks import check_request
    from render_backend.engine.request import InvalidRequest
    from render_backend.server.convert import manifest_to_request

    caps = _caps(size_multiple=64, two_stage=True)
    m, _, _ = synthetic_shot(9, 256, 192, steps=1)
    _trajectory()(m)
    with pytest.raises(InvalidRequest) as err:  # stage 1 is 128x96: the 1/4 canvas would be 32x24
        check_request(manifest_to_request(m), caps)
    assert "reads its canvas at 1/8 of 256x192 (the LoRA's reference_downscale_factor 4, halved again in " \
           "two-stage mode) = 32x24 pixels" in str(err.value) and "multiples of 256" in str(err.value)
    m.height = m.controls[0].height = 256
    warnings = check_request(manifest_to_request(m), caps)  # 256 / 8 = 32: fine; the canvas is read at half size
    assert "controls[0] canvas is 256x256; the engine reads it at 128x128 (export that size to save time)" in warnings


def test_strength_is_optional_and_unset_means_follow_the_control():
    from render_backend.engine.checks import check_request
    from render_backend.server.convert import manifest_to_request

    m, _, _ = _shot(with_mask=False, camera=False)
    m.controls[0].ClearField("strength")
    assert check_request(manifest_to_request(m), _caps()) == []
    assert manifest_to_request(m).controls[0].strength == 1.0
    m.controls[0].strength = 0.0  # explicit 0 has presence in `optional double strength`
    wire = pb.ShotManifest.FromString(m.SerializeToString())
    assert wire.controls[0].HasField("strength") and manifest_to_request(wire).controls[0].strength == 0.0
    assert any("controls[0].strength is 0" in w for w in check_request(manifest_to_request(wire), _caps()))
