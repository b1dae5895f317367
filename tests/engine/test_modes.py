"""Memory options, two-stage mode, request limits and conditioning errors on the tiny LTX-2."""

from __future__ import annotations

import numpy as np
import pytest

from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.test_model import COMPLETE_MARKER, UPSAMPLER_DIR, is_complete, make_test_model
from render_backend.engine.request import (
    CameraRequest,
    ControlInput,
    EngineError,
    InvalidRequest,
    RenderRequest,
)


def request(**kw) -> RenderRequest:
    base = dict(prompt="a dog runs in the city", width=128, height=128, num_frames=9, seed=5,
                num_inference_steps=2)
    base.update(kw)
    return RenderRequest(**base)


@pytest.fixture(scope="module")
def two_stage(tiny_model):
    e = LTX2Engine(str(tiny_model), upsampler=str(tiny_model / UPSAMPLER_DIR))
    e.load()
    return e


def test_two_stage_renders_full_size_from_a_half_size_stage(two_stage, canvas):
    calls = []
    result = two_stage.render(request(controls=[ControlInput(frames=canvas(height=128, width=128), lora="control")]),
                              progress=lambda *a: calls.append(a))
    assert result.video.shape == (9, 128, 128, 3)
    info = result.info
    assert info["two_stage"]["stage1_size"] == [64, 64] and info["two_stage"]["stage2_loras"] == []
    # The control canvas rides along in stage 1 only, at half size: 2 x 2 x 2 tokens.
    assert info["references"][0]["tokens"] == 8 and info["two_stage"]["stage1_target_tokens"] == 2 * 2 * 2
    assert info["target_tokens"] == 2 * 4 * 4
    assert [c[1:] for c in calls if c[0] == "denoising"] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert two_stage.last_latents.shape[1] == 2 * 4 * 4  # final latents are full size
    assert two_stage.capabilities().two_stage and two_stage.capabilities().size_multiple == 64
    again = two_stage.render(request(controls=[ControlInput(frames=canvas(height=128, width=128), lora="control")]))
    assert np.array_equal(again.video, result.video)


def test_two_stage_needs_sizes_that_halve_to_the_grid(two_stage):
    with pytest.raises(InvalidRequest, match=r"multiple of 64 \(two-stage mode renders stage 1 at half size; "
                                             r"stages 1 renders one stage at full size\) \(got 96\); try 64 or 128"):
        two_stage.render(request(width=96))


def test_cpu_offload_and_vae_tiling_flags_render_the_same_shapes(tiny_model):
    # No GPU here: offload is a no-op on CPU (documented), tiling runs the VAE's tiled decoder.
    e = LTX2Engine(str(tiny_model), cpu_offload=True, vae_tiling=True)
    e.load()
    assert e.pipe.vae.use_tiling
    # Tiles of 4x4 latent cells every 2 cells: a 6x6-cell frame decodes in 3 x 3 overlapping tiles.
    e.pipe.vae.enable_tiling(tile_sample_min_height=128, tile_sample_min_width=128,
                             tile_sample_stride_height=64, tile_sample_stride_width=64)
    result = e.render(request(width=192, height=192))
    assert result.video.shape == (9, 192, 192, 3) and result.video.std() > 1.0
    assert result.info["cpu_offload"] and result.info["vae_tiling"]


def test_limits_say_what_to_change(engine):
    with pytest.raises(InvalidRequest, match=r"at most 257 per shot on this server \(got 265\)"):
        engine.check_request(request(num_frames=265))
    with pytest.raises(InvalidRequest, match=r"height must be at most 1920 on this server \(got 1952\)"):
        engine.check_request(request(height=1952))
    with pytest.raises(InvalidRequest, match=r"guidance_scale must be between 1 \(no guidance\) and 30 \(got 0.5\)"):
        engine.check_request(request(guidance_scale=0.5))
    assert engine.check_request(request()) == ["no camera track sent: camera LoRAs are off for this shot"]


@pytest.mark.parametrize("camera, message", [
    (CameraRequest(mode="preset", preset_lora="control"), r"camera preset LoRA 'control' is not installed on this "
                                                          r"server \('control' is a control LoRA\)"),
    (CameraRequest(mode="preset"), "camera mode 'preset' needs preset_lora"),
    (CameraRequest(mode="trajectory", trajectory_lora="camera_trajectory", reference_downscale_factor=2),
     "needs the camera track"),
])
def test_camera_requests_that_cannot_work_are_refused(engine, camera, message):
    with pytest.raises(EngineError, match=message):
        engine.render(request(width=64, height=64, camera=camera))


def test_reference_factor_that_misses_the_grid_is_refused(engine, canvas):
    with pytest.raises(InvalidRequest, match=r"at 1/4 of 64x64 \(controls\[0\].reference_downscale_factor 4\) = 16x16 pixels.*multiples of 128"):
        engine.render(request(width=64, height=64, controls=[ControlInput(frames=canvas(), lora="control",
                                                                          reference_downscale_factor=4)]))


def test_an_older_test_model_is_rebuilt(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / COMPLETE_MARKER).write_text("tiny-ltx2/0\n")
    (old / "stale.txt").write_text("from an older version")
    assert make_test_model(old) == old.resolve()
    assert is_complete(old) and not (old / "stale.txt").exists() and (old / UPSAMPLER_DIR).is_dir()


def active_adapters_per_call(engine: LTX2Engine, req: RenderRequest) -> tuple[list[tuple[float, tuple]], dict]:
    """[(target sigma, active adapters)] at every transformer call, and the result info."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    calls = []
    layer = next(m for m in engine.pipe.transformer.modules() if isinstance(m, BaseTunerLayer))

    def record(module, args, kwargs):
        active = () if layer.disable_adapters else tuple(sorted(layer.active_adapters))
        calls.append((round(float(kwargs["timestep"][0, 0]) / 1000.0, 6), active))

    hook = engine.pipe.transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        info = engine.render(req).info
    finally:
        hook.remove()
    return calls, info


def test_two_stages_by_default_with_the_upsampler_beside_the_model_and_one_on_request(tiny_model, canvas):
    engine = LTX2Engine(str(tiny_model))  # upsampler="auto": <model>/latent_upsampler
    engine.load()
    caps = engine.capabilities()
    assert (caps.default_stages, caps.two_stage, caps.size_multiple, caps.single_stage_reason) == (2, True, 64, "")
    assert caps.size_multiple_for(1) == 32 and caps.reference_size(128, 128, 1, stages=1) == (128, 128)
    two = engine.render(request())
    assert (two.info["stages"], two.info["two_stage"]["stage1_size"]) == (2, [64, 64])
    one = engine.render(request(width=96, height=64, stages=1, controls=[ControlInput(
        frames=canvas(height=64, width=96), lora="control")]))  # a one-stage size: fast preview
    assert (one.info["stages"], "two_stage" in one.info, one.video.shape) == (1, False, (9, 64, 96, 3))
    assert one.info["references"][0]["latent_grid"] == [2, 2, 3]  # the canvas at full size: no halving


def test_camera_preset_loras_run_in_both_stages_control_loras_in_stage_1_only(two_stage, canvas):
    from .test_fidelity import dolly_track

    req = request(num_inference_steps=2, controls=[ControlInput(frames=canvas(height=64, width=64), lora="control")],
                  camera=CameraRequest(mode="preset", preset_lora="camera_dolly_in", weight=0.7,
                                       frames=dolly_track(9, 128, 128)))
    calls, info = active_adapters_per_call(two_stage, req)
    stage1, stage2 = calls[:2], calls[2:]
    assert [a for _, a in stage1] == [("camera_dolly_in", "control")] * 2
    assert [s for s, _ in stage2] == [0.909375, 0.725, 0.421875]
    assert [a for _, a in stage2] == [("camera_dolly_in",)] * 3
    assert info["two_stage"]["stage2_loras"] == [{"name": "camera_dolly_in", "weight": 0.7}]


def test_stages_are_checked_against_what_the_server_has(engine, tiny_dev_model):
    with pytest.raises(InvalidRequest, match=r"stages must be 1 \(one stage at full size, fast preview\) or 2"):
        engine.check_request(request(stages=3))
    with pytest.raises(InvalidRequest, match="stages 2 is not available on this server: no latent upsampler"):
        engine.check_request(request(stages=2))
    dev = LTX2Engine(str(tiny_dev_model), distilled_lora=None)  # upsampler beside it, no distilled LoRA
    dev.load()
    caps = dev.capabilities()
    assert caps.default_stages == 1 and "Lightricks' distilled LoRA" in caps.single_stage_reason
    with pytest.raises(InvalidRequest, match="--distilled-lora PATH"):
        dev.check_request(request(stages=2))


def test_a_dev_model_refines_stage_2_with_the_distilled_lora_and_no_guidance(tiny_dev_model):
    dev = LTX2Engine(str(tiny_dev_model))  # finds latent_upsampler/ and tiny-distilled-lora.safetensors
    dev.load()
    assert dev.capabilities().default_stages == 2
    calls, info = active_adapters_per_call(dev, request(num_inference_steps=1))
    assert [a for _, a in calls] == [()] * 4 + [("stage2-distilled-lora",)] * 3  # 4 guided passes, then 3 steps
    assert info["two_stage"]["stage2_loras"] == [{"name": "stage2-distilled-lora", "weight": 1.0}]


def test_a_lora_reading_every_sth_frame_needs_frames_8sk_plus_1(tiny_model, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tiny_model / "loras" / "control.safetensors"), framework="pt") as f:
        save_file({k: f.get_tensor(k) for k in f.keys()}, str(tmp_path / "c4.safetensors"),
                  metadata={**f.metadata(), "reference_temporal_scale_factor": "4"})
    engine = LTX2Engine(str(tiny_model), loras={"c4": str(tmp_path / "c4.safetensors")}, upsampler=None)
    engine.load()
    assert engine.capabilities().lora("c4").reference_temporal_scale_factor == 4
    control = ControlInput(lora="c4", width=64, height=64, num_frames=17)
    with pytest.raises(InvalidRequest, match=r"LoRA 'c4' reads every 4th canvas frame \(reference_temporal_scale_"
                                             r"factor 4\), so frames must be 32k\+1 \(got 17\); try 33"):
        engine.check_request(request(width=64, height=64, num_frames=17, controls=[control]))
    control.num_frames = 33
    engine.check_request(request(width=64, height=64, num_frames=33, controls=[control]))


@pytest.mark.parametrize("condition, message", [
    (dict(num_frames=8, width=64, height=64), r"conditions\[0\] has 8 frames; a frame condition is 8m\+1 frames"),
    (dict(num_frames=9, width=64, height=64, start_frame=9), r"frame conditions continue a shot from its first"),
    (dict(num_frames=17, width=64, height=64), r"has 17 frames but the shot only 17"),
    (dict(num_frames=9, width=32, height=32), r"frames are 32x32; they must be the shot's 64x64"),
    (dict(num_frames=9, width=64, height=64, strength=1.5), r"conditions\[0\].strength must be between 0 and 1"),
])
def test_frame_conditions_that_cannot_work_are_refused(engine, condition, message):
    from render_backend.engine.request import FrameCondition

    with pytest.raises(InvalidRequest, match=message):
        engine.check_request(request(width=64, height=64, num_frames=17, conditions=[FrameCondition(**condition)]))
