"""Parity with Lightricks' reference implementation: one denoising step of the engine equals one step of
ltx-core 1.0.0 / ltx-pipelines 1.0.0 (PyPI) on the same tiny weights, inputs and noise, within 1e-5
(relative L2, fp32), for video AND audio velocities.

The engine runs a real render (1 step, 1 stage) and its velocity is read back from the noise and the
final latents. The reference builds the same step from its own parts (tests/engine/ltx_oracle.py):
LTXModel with the weights loaded strictly, LoRAs fused into its weights, reference tokens appended by
`VideoConditionByReferenceLatent` (+ `ConditioningItemAttentionStrengthWrapper`), canvases resized by
`resize_and_center_crop`, masks and curves downsampled by the IC-LoRA pipeline's rule, guidance by
`multi_modal_guider_denoising_func`. Shared components are the text encoder/connectors and the VAE
encoder (not under test). `reference_temporal_scale_factor` is newer than 1.0.0 (ltx-core 1.1.6+):
that case follows what GitHub HEAD defines (positions and frame subsampling, ltx_oracle.py).

Generations: LTX-2.0 (the tiny model) throughout, LTX-2.3 (gated attention, cross-attention
modulation and prompt AdaLN, per-modality connectors) for the core cases, since ltx-core 1.0.0 has
it. LTX-2.5 it has not (bias-free feed-forward, Gemma 4, diffusion decoder: ltx-core 1.2+ only, which
is not on PyPI and pins transformers < 5.15): no parity for 2.5, and the last test says so.

Run alone: ./dev test tests/engine/test_parity_ltx_core.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.references import frames_to_pixels
from render_backend.engine.request import ControlInput, RenderRequest

from .ltx_oracle import (
    Reference,
    fuse_lora,
    ltx_guided_velocity,
    ltx_model,
    ltx_velocity,
    mask_to_latent,
    reference_pixels,
)

TOLERANCE = 1e-5  # relative L2, fp32
SEED = 21


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def lora_tensors(path) -> dict[str, torch.Tensor]:
    """A LoRA file's tensors in Lightricks' key format (`diffusion_model.` prefix)."""
    with safe_open(str(path), framework="pt") as f:
        return {"diffusion_model." + k.split(".", 1)[1]: f.get_tensor(k) for k in f.keys()}


def engine_step(engine: LTX2Engine, req: RenderRequest):
    """(video velocity (1, N, C), audio velocity (1, L, C*M), sigma, text, negative text) of the engine's one step."""
    assert req.num_inference_steps == 1 and req.stages == 1
    result = engine.render(req)
    sigma = result.info["sigmas"][0]
    final, audio_final = engine.last_latents, engine.last_audio_latents
    generator = torch.Generator().manual_seed(req.seed)
    noise = torch.randn(final.shape, generator=generator)  # the engine's own noise: target, then audio
    audio_noise = torch.randn(audio_final.shape, generator=generator)
    text, negative = engine._encode_text(req, engine.guidance.uncond, torch.device("cpu"))
    # Euler from sigma to 0: final = noise - sigma * v.
    return (noise - final) / sigma, (audio_noise - audio_final) / sigma, sigma, noise, audio_noise, text, negative


def vae_latent(engine: LTX2Engine, pixels: torch.Tensor) -> torch.Tensor:
    """(1, 3, F, h, w) in [-1, 1] -> the normalised latent (1, C, F', h/32, w/32) both sides read."""
    pipe = engine.pipe
    with torch.no_grad():
        latent = pipe.vae.encode(pixels).latent_dist.mode()
    return pipe._normalize_latents(latent, pipe.vae.latents_mean, pipe.vae.latents_std)


def compare(engine, req, references, model_dir, loras=(), grid=None):
    """Run both; return (video rel. error, audio rel. error, the engine's video velocity)."""
    v, a, sigma, noise, audio_noise, text, _ = engine_step(engine, req)
    model = ltx_model(model_dir)
    for tensors, weight in loras:
        fuse_lora(model, tensors, weight)
    lf = (req.num_frames - 1) // 8 + 1
    grid = grid or (lf, req.height // 32, req.width // 32)
    lv, la = ltx_velocity(model, noise=noise, audio_noise=audio_noise, grid=grid, fps=req.fps, sigma=sigma,
                          video_context=text[0], audio_context=text[1], references=references)
    print(f"  parity: video {rel(v, lv):.2e}, audio {rel(a, la):.2e} (relative L2)")  # shown with -s
    return rel(v, lv), rel(a, la), v


def request(**kw) -> RenderRequest:
    base = dict(prompt="a man walks on the street at night", width=128, height=128, num_frames=9, seed=SEED,
                num_inference_steps=1, stages=1)
    base.update(kw)
    return RenderRequest(**base)


def canvas(frames=9, size=128, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def control_lora(tiny_model):
    return lora_tensors(tiny_model / "loras" / "control.safetensors")


@pytest.fixture(scope="module")
def no_reference(engine):
    v, *_ = engine_step(engine, request())
    return v


def test_canvas_resize_is_ltx_pipelines_resize_and_center_crop():
    # Bilinear to cover the size read, keeping the aspect, then a centre crop (here 131x97 -> 64x32).
    frames = np.random.default_rng(7).integers(0, 256, (3, 97, 131, 3), dtype=np.uint8)
    ours, theirs = frames_to_pixels(frames, 64, 32), reference_pixels(frames, 64, 32)
    assert ours.shape == theirs.shape == (1, 3, 3, 32, 64)
    assert float((ours - theirs).abs().max()) < 1e-6


def test_no_reference(engine, tiny_model):
    video, audio, _ = compare(engine, request(), [], tiny_model)
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_one_reference_at_factor(engine, tiny_model, control_lora, no_reference, factor):
    # A full-size canvas for every factor: both sides resize it (bilinear, aspect fill, centre crop).
    frames = canvas()
    size = 128 // factor
    ref = Reference(vae_latent(engine, reference_pixels(frames, size, size)), factor)
    req = request(controls=[ControlInput(frames=frames, lora="control", reference_downscale_factor=factor)])
    video, audio, v = compare(engine, req, [ref], tiny_model, [(control_lora, 1.0)])
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)
    assert rel(v, no_reference) > 1e-2  # not vacuous: the reference and its LoRA change the step


@pytest.mark.parametrize("strength", [0.5, 0.0])
def test_global_strength(engine, tiny_model, control_lora, strength):
    frames = canvas()
    ref = Reference(vae_latent(engine, reference_pixels(frames, 128, 128)), 1, attention_mask=strength)
    req = request(controls=[ControlInput(frames=frames, lora="control", strength=strength)])
    video, audio, _ = compare(engine, req, [ref], tiny_model, [(control_lora, 1.0)])
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)


def test_per_frame_curve_with_zeros(engine, tiny_model, control_lora):
    # 17 frames = latent frames {0}, {1..8}, {9..16}: on, off, and half on (a curve is a mask video).
    curve = [1.0] + [0.0] * 8 + [0.0, 1.0] * 4
    frames = canvas(frames=17)
    latent = vae_latent(engine, reference_pixels(frames, 128, 128))
    mask_video = torch.tensor(curve, dtype=torch.float32).view(1, 1, 17, 1, 1).expand(1, 1, 17, 128, 128)
    ref = Reference(latent, 1, attention_mask=mask_to_latent(mask_video, latent) * 0.8)
    req = request(num_frames=17, controls=[ControlInput(frames=frames, lora="control", strength=0.8,
                                                        frame_strength=curve)])
    video, audio, _ = compare(engine, req, [ref], tiny_model, [(control_lora, 1.0)])
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)


def test_regional_mask(engine, tiny_model, control_lora):
    # A target moving right across 17 frames; its masks average per latent frame; nothing outside.
    masks = []
    for i in range(17):
        m = np.zeros((128, 128), bool)
        m[20:90, 4 * i:4 * i + 50] = True
        masks.append(m)
    frames = canvas(frames=17, seed=1)
    latent = vae_latent(engine, reference_pixels(frames, 128, 128))
    mask_video = torch.from_numpy(np.stack(masks)).float()[None, None]  # (1, 1, F, H, W)
    ref = Reference(latent, 1, attention_mask=mask_to_latent(mask_video, latent) * 0.9)
    req = request(num_frames=17, controls=[ControlInput(frames=frames, lora="control", strength=0.9, masks=masks)])
    video, audio, _ = compare(engine, req, [ref], tiny_model, [(control_lora, 1.0)])
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)


@pytest.mark.parametrize("second_strength", [1.0, 0.5], ids=["both-full", "second-half"])
def test_two_references(engine, tiny_model, control_lora, second_strength):
    # At strength 1 ltx-core builds no mask: the two canvases attend to each other. With a map on the
    # second, each reference group is blocked from the other.
    first, second = canvas(seed=2), canvas(seed=3)
    refs = [Reference(vae_latent(engine, reference_pixels(first, 128, 128)), 1),
            Reference(vae_latent(engine, reference_pixels(second, 64, 64)), 2,
                      attention_mask=None if second_strength == 1.0 else second_strength)]
    req = request(controls=[ControlInput(kind="depth", frames=first, lora="control"),
                            ControlInput(kind="pose", frames=second, lora="control_peft", strength=second_strength,
                                         reference_downscale_factor=2)])
    peft = lora_tensors(tiny_model / "loras" / "control_peft.safetensors")
    video, audio, _ = compare(engine, req, refs, tiny_model, [(control_lora, 1.0), (peft, 1.0)])
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)


def test_lora_on_every_linear_layer(tiny_model, tmp_path, no_reference):
    # Lightricks key format (diffusion_model.<ltx-core module>.lora_A/B) on every nn.Linear of LTXModel.
    model = ltx_model(tiny_model)
    gen = torch.Generator().manual_seed(5)
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            tensors[f"diffusion_model.{name}.lora_A.weight"] = torch.randn(4, module.in_features, generator=gen) * 0.1
            tensors[f"diffusion_model.{name}.lora_B.weight"] = torch.randn(module.out_features, 4, generator=gen) * 0.1
    path = tmp_path / "everywhere.safetensors"
    save_file(tensors, str(path))
    engine = LTX2Engine(str(tiny_model), loras={"everywhere": str(path)})
    engine.load()
    req = request(extra_loras=[("everywhere", 0.7)])
    video, audio, v = compare(engine, req, [], tiny_model, [(tensors, 0.7)])
    assert len(tensors) // 2 == 82  # every linear layer: blocks, AdaLN, projections, audio, cross-modal
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)
    assert rel(v, no_reference) > 1e-2


def test_reference_temporal_scale_factor_as_ltx_core_head(tiny_model, tmp_path):
    # ltx-core 1.1.6+ only: the LoRA reads every 2nd canvas frame; 17 frames -> frames 0, 1, 3, ..., 15.
    with safe_open(str(tiny_model / "loras" / "control.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = {**f.metadata(), "reference_temporal_scale_factor": "2"}
    path = tmp_path / "control_t2.safetensors"
    save_file(tensors, str(path), metadata=meta)
    engine = LTX2Engine(str(tiny_model), loras={"control_t2": str(path)})
    engine.load()
    frames = canvas(frames=17, seed=4)
    latent = vae_latent(engine, reference_pixels(frames, 128, 128, temporal_scale=2))
    assert latent.shape[2] == 2  # 9 frames read -> 2 latent frames
    req = request(num_frames=17, controls=[ControlInput(frames=frames, lora="control_t2")])
    video, audio, _ = compare(engine, req, [Reference(latent, 1, temporal_scale=2)], tiny_model, [(tensors, 1.0)])
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)


def test_dev_guidance_step(tiny_dev_model):
    # A dev checkpoint: CFG (video 3, audio 7) + STG 1 + modality 3 + rescale 0.7, as ltx-pipelines'
    # dev pipelines (LTX_2_PARAMS); STG on the tiny model's last block (Lightricks': 29 of 48).
    engine = LTX2Engine(str(tiny_dev_model))
    engine.load()
    req = request(negative_prompt="dark blue", num_inference_steps=1)
    v, a, sigma, noise, audio_noise, text, negative = engine_step(engine, req)
    assert sigma == pytest.approx(0.1) and engine.guidance.passes == 4
    common = dict(stg_scale=1.0, stg_blocks=[1], rescale_scale=0.7, modality_scale=3.0)
    lv, la = ltx_guided_velocity(ltx_model(tiny_dev_model), noise=noise, audio_noise=audio_noise, grid=(2, 4, 4),
                                 fps=req.fps, sigma=sigma, text=text, negative=negative,
                                 video=dict(cfg_scale=3.0, **common), audio=dict(cfg_scale=7.0, **common))
    print(f"  parity: video {rel(v, lv):.2e}, audio {rel(a, la):.2e} (relative L2)")  # shown with -s
    assert rel(v, lv) < TOLERANCE and rel(a, la) < TOLERANCE, (rel(v, lv), rel(a, la))
    plain, *_ = engine_step(engine, request(num_inference_steps=1, guidance_scale=1.0, negative_prompt="dark blue"))
    assert rel(plain, v) > 1e-3  # not vacuous: without CFG the step differs (0.7 % on the tiny model)


@pytest.mark.parametrize("case", ["no-reference", "factor-2", "strength-0.5"])
def test_ltx_2_3_step(engine_2_3, tiny_model_2_3, case):
    # Same inputs as the LTX-2.0 cases above; the oracle builds ltx-core's gated, modulated LTXModel.
    frames, loras = canvas(), [(lora_tensors(tiny_model_2_3 / "loras" / "control.safetensors"), 1.0)]
    refs, controls = {
        "no-reference": ([], []),
        "factor-2": ([Reference(vae_latent(engine_2_3, reference_pixels(frames, 64, 64)), 2)],
                     [ControlInput(frames=frames, lora="control", reference_downscale_factor=2)]),
        "strength-0.5": ([Reference(vae_latent(engine_2_3, reference_pixels(frames, 128, 128)), 1, attention_mask=0.5)],
                         [ControlInput(frames=frames, lora="control", strength=0.5)]),
    }[case]
    video, audio, v = compare(engine_2_3, request(controls=controls), refs, tiny_model_2_3, loras if refs else ())
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)
    if refs:  # not vacuous: the reference and its LoRA change the step
        plain, *_ = engine_step(engine_2_3, request())
        assert rel(v, plain) > 1e-2


def test_ltx_2_3_dev_guidance_step(tmp_path_factory):
    # LTX-2.3 dev: 30 steps (LTX_2_3_PARAMS), CFG 3 / 7, STG on the perturbed-attention processors, modality 3.
    from render_backend.engine.ltx2.test_model import make_test_model

    model = make_test_model(tmp_path_factory.mktemp("dev23") / "m", variant="dev", version="2.3")
    engine = LTX2Engine(str(model), upsampler=None)
    engine.load()
    assert (engine.capabilities().model_generation, engine.default_steps(), engine.guidance.passes) == ("ltx-2.3", 30, 4)
    req = request(negative_prompt="dark blue", num_inference_steps=1)
    v, a, sigma, noise, audio_noise, text, negative = engine_step(engine, req)
    common = dict(stg_scale=1.0, stg_blocks=[1], rescale_scale=0.7, modality_scale=3.0)
    lv, la = ltx_guided_velocity(ltx_model(model), noise=noise, audio_noise=audio_noise, grid=(2, 4, 4),
                                 fps=req.fps, sigma=sigma, text=text, negative=negative,
                                 video=dict(cfg_scale=3.0, **common), audio=dict(cfg_scale=7.0, **common))
    print(f"  parity: video {rel(v, lv):.2e}, audio {rel(a, la):.2e} (relative L2)")  # shown with -s
    assert rel(v, lv) < TOLERANCE and rel(a, la) < TOLERANCE, (rel(v, lv), rel(a, la))


def test_ltx_2_5_is_newer_than_the_oracle(tiny_model_2_5):
    with pytest.raises(NotImplementedError, match="ltx-core 1.0.0 has no LTX-2.5 transformer"):
        ltx_model(tiny_model_2_5)


@pytest.fixture(scope="module")
def flex_engine(tiny_model):
    """The session engine's setup with the FlexAttention kernel for the strength bias (uncompiled on CPU)."""
    e = LTX2Engine(str(tiny_model), device="cpu", upsampler=None, attention="flex")
    e.load()
    return e


@pytest.mark.parametrize("case", ["strength-0.5", "curve-with-zeros", "two-references-second-half"])
def test_strength_maps_with_flex_attention(flex_engine, tiny_model, control_lora, case):
    # The same oracle cases as above through --attention flex (score_mod instead of the dense bias).
    frames = canvas(frames=17)
    latent = vae_latent(flex_engine, reference_pixels(frames, 128, 128))
    loras = [(control_lora, 1.0)]
    if case == "strength-0.5":
        refs = [Reference(latent, 1, attention_mask=0.5)]
        controls = [ControlInput(frames=frames, lora="control", strength=0.5)]
    elif case == "curve-with-zeros":
        curve = [1.0] + [0.0] * 8 + [0.0, 1.0] * 4
        mask_video = torch.tensor(curve, dtype=torch.float32).view(1, 1, 17, 1, 1).expand(1, 1, 17, 128, 128)
        refs = [Reference(latent, 1, attention_mask=mask_to_latent(mask_video, latent) * 0.8)]
        controls = [ControlInput(frames=frames, lora="control", strength=0.8, frame_strength=curve)]
    else:
        second = canvas(frames=17, seed=3)
        refs = [Reference(latent, 1), Reference(vae_latent(flex_engine, reference_pixels(second, 64, 64)), 2,
                                                attention_mask=0.5)]
        controls = [ControlInput(kind="depth", frames=frames, lora="control"),
                    ControlInput(kind="pose", frames=second, lora="control_peft", strength=0.5,
                                 reference_downscale_factor=2)]
        loras.append((lora_tensors(tiny_model / "loras" / "control_peft.safetensors"), 1.0))
    video, audio, _ = compare(flex_engine, request(num_frames=17, controls=controls), refs, tiny_model, loras)
    assert flex_engine.performance.kernel == "flex"
    assert video < TOLERANCE and audio < TOLERANCE, (video, audio)
