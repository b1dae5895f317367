"""Engine on the tiny LTX-2: loading, determinism, LoRAs, progress, cancel, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from render_backend.engine.loras import check_lora_shapes, inspect_lora
from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.request import (
    Cancelled,
    ControlInput,
    InvalidRequest,
    LoraMismatch,
    NotLoaded,
    OutOfMemory,
    RenderRequest,
    UnknownLora,
)


def request(**kw) -> RenderRequest:
    base = dict(prompt="a robot walks in the forest", width=64, height=64, num_frames=9, seed=7,
                num_inference_steps=2)
    base.update(kw)
    return RenderRequest(**base)


def latent_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def test_render_shapes_audio_and_info(engine):
    result = engine.render(request(num_frames=17, width=96, height=64, fps=24.0))
    assert result.video.shape == (17, 64, 96, 3) and result.video.dtype == np.uint8
    assert result.video.std() > 1.0  # noise from a random model, but real decoded pixels
    assert result.audio.shape[0] == 2 and result.audio.dtype == np.float32
    # LTX-2 audio covers the clip: 17 frames at 24 fps = 0.708 s at the vocoder's rate.
    assert result.audio_sample_rate == 8000
    assert abs(result.audio.shape[1] / 8000 - 17 / 24) < 0.06
    info = result.info
    assert info["seed"] == 7 and info["num_inference_steps"] == 2 and info["guidance_scale"] == 1.0
    assert info["model_id"] == str(engine.model) and info["loras"] == [] and info["references"] == []
    assert set(info["timings"]) >= {"text_s", "denoise_s", "decode_s", "total_s"}


def test_same_seed_same_output_other_seed_differs(engine, canvas):
    req = request(controls=[ControlInput(frames=canvas(), lora="control", strength=0.6)])
    a, b = engine.render(req), engine.render(req)
    assert np.array_equal(a.video, b.video) and np.array_equal(a.audio, b.audio)
    req.seed = 8
    c = engine.render(req)
    assert np.abs(c.video.astype(int) - a.video.astype(int)).mean() > 1.0


def test_capabilities_list_loras_by_kind(engine):
    caps = engine.capabilities()
    assert (caps.engine, caps.model_variant, caps.device) == ("ltx2", "tiny-test", "cpu")
    assert (caps.frame_step, caps.min_frames, caps.size_multiple, caps.default_steps) == (8, 9, 32, 8)
    kinds = {lo.name: (lo.kind, lo.reference_downscale_factor, lo.camera_move) for lo in caps.loras}
    assert kinds["control"] == ("control", 1, None)
    assert kinds["camera_trajectory"] == ("camera_trajectory", 4, None)
    assert kinds["camera_jib_up"] == ("camera_preset", None, "jib_up")
    assert all(len(lo.sha256) == 64 and lo.rank == 4 for lo in caps.loras)
    # Reference canvas = output / factor in one stage; W and H must be multiples of 32 x factor.
    assert caps.reference_size(256, 128, 4) == (64, 32) and caps.reference_divisor(4) == 4


@pytest.mark.parametrize("name", ["control", "control_peft"])
def test_both_lora_key_formats_load_and_change_the_output(engine, name):
    engine.render(request())
    plain = engine.last_latents
    result = engine.render(request(extra_loras=[(name, 1.0)]))
    assert latent_gap(engine.last_latents, plain) > 1e-2
    assert result.info["loras"][0]["name"] == name and len(result.info["loras"][0]["sha256"]) == 64
    engine.render(request())  # adapters are per request: off again
    assert latent_gap(engine.last_latents, plain) == 0.0


def test_lora_for_another_base_is_refused_naming_both_shapes(engine, tmp_path):
    bad = tmp_path / "other_base.safetensors"
    save_file({"diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.ones(4, 48),
               "diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.ones(32, 4)}, str(bad))
    with pytest.raises(LoraMismatch) as err:
        check_lora_shapes(inspect_lora("other_base", bad), engine.pipe.transformer, "tiny")
    msg = str(err.value)
    assert "(4, 48)" in msg and "(32, 32)" in msg and "other_base" in msg and "tiny" in msg


def test_load_refuses_a_mismatched_lora(tiny_model, tmp_path):
    bad = tmp_path / "wide.safetensors"
    save_file({"transformer.transformer_blocks.1.ff.net.2.lora_A.weight": torch.ones(2, 7),
               "transformer.transformer_blocks.1.ff.net.2.lora_B.weight": torch.ones(32, 2)}, str(bad))
    e = LTX2Engine(str(tiny_model), loras={"wide": str(bad)})
    with pytest.raises(LoraMismatch, match=r"\(2, 7\).*transformer_blocks.1.ff.net.2"):
        e.load()
    assert not e.loaded
    with pytest.raises(NotLoaded):
        e.render(request())


def test_unknown_lora_lists_installed(engine):
    with pytest.raises(UnknownLora, match="'nope' is not installed.*camera_dolly_in.*control_peft"):
        engine.render(request(extra_loras=[("nope", 1.0)]))


def test_progress_per_step_and_stages(engine):
    calls = []
    engine.render(request(num_inference_steps=3), progress=lambda *a: calls.append(a))
    assert [c for c in calls if c[0] == "denoising"] == [("denoising", 1, 3), ("denoising", 2, 3),
                                                         ("denoising", 3, 3)]
    assert calls[0][0] == "text encoding" and calls[-1] == ("decoding", 1, 1)


def test_cancel_stops_between_steps_and_engine_stays_usable(engine):
    done = []

    def progress(stage, step, total):
        if stage == "denoising":
            done.append(step)

    with pytest.raises(Cancelled, match="step 3/4"):
        engine.render(request(num_inference_steps=4), progress=progress, should_cancel=lambda: len(done) >= 2)
    assert done == [1, 2]  # step 3 never ran
    assert engine.render(request()).video.shape == (9, 64, 64, 3)


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
], ids=["torch-oom", "cuda-runtime-error"])
def test_cuda_oom_becomes_out_of_memory_with_a_suggestion(engine, canvas, monkeypatch, error):
    def boom(*a, **k):  # no GPU here: the VAE decode "runs out of memory" as CUDA would
        raise error

    monkeypatch.setattr(engine.pipe.vae, "decode", boom)
    with pytest.raises(OutOfMemory) as err:
        engine.render(request(controls=[ControlInput(frames=canvas(), lora="control", strength=0.5)]))
    # Raised after the handler: no chained traceback keeps the generation's tensors alive.
    assert err.value.code == "RESOURCE_EXHAUSTED" and err.value.__context__ is None
    assert "fewer frames" in str(err.value) and "--cpu-offload" in str(err.value)
    assert str(error).splitlines()[0] in str(err.value)
    # Nothing of the failed generation is kept: no attention bias, no latents.
    assert (engine._bias.video_self, engine._bias.audio_over_video, engine.last_latents) == (None, None, None)
    monkeypatch.undo()
    assert engine.render(request()).video.shape == (9, 64, 64, 3)


def test_other_runtime_errors_are_not_called_out_of_memory(engine, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(engine.pipe.vae, "decode", boom)
    with pytest.raises(RuntimeError, match="same device"):
        engine.render(request())


@pytest.mark.parametrize("change, message", [
    (dict(num_frames=120), r"8k\+1 and at least 9 \(got 120\); try 121 or 113"),
    (dict(width=100), r"width must be a multiple of 32 \(got 100\); try 96 or 128"),
    (dict(strength=1.5), r"controls\[0\].strength must be between 0 and 1 \(got 1.5\)"),
    (dict(camera="sideways"), "camera mode 'sideways' is unknown; use one of auto, preset, trajectory, off"),
])
def test_bad_requests_say_what_to_change(engine, canvas, change, message):
    from render_backend.engine.request import CameraRequest

    control = ControlInput(frames=canvas(), lora="control", strength=change.pop("strength", 1.0))
    if "camera" in change:
        change["camera"] = CameraRequest(mode=change["camera"])
    with pytest.raises(InvalidRequest, match=message):
        engine.render(request(controls=[control], **change))


def test_control_canvas_with_wrong_frame_count_is_refused(engine, canvas):
    with pytest.raises(InvalidRequest, match=r"controls\[0\] has 5 canvas frames but the shot has 9"):
        engine.render(request(controls=[ControlInput(frames=canvas(frames=5), lora="control")]))
