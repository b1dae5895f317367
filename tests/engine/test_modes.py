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
    with pytest.raises(InvalidRequest, match=r"multiple of 64 \(two-stage mode renders stage 1 at half size\) "
                                             r"\(got 96\); try 64 or 128"):
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
