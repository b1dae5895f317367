"""LTX-2, LTX-2.3 and LTX-2.5: the generation is read from the checkpoint's files (never its folder name),
each gets its own parts (Gemma 4, the 48 kHz vocoder, the diffusion VAE decoder), its own dev defaults and
stage-1 sampler, and a LoRA made for another generation is refused, naming both."""

from __future__ import annotations

import json
import shutil
import sys
import types

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from render_backend.engine.loras import inspect_lora
from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.generation import (
    ModelGenerationUnknown,
    generation_from_configs,
    read_generation,
)
from render_backend.engine.ltx2.guidance import default_guidance, default_steps
from render_backend.engine.request import ControlInput, LoraMismatch, RenderRequest

GENERATIONS = {"2.0": "ltx-2", "2.3": "ltx-2.3", "2.5": "ltx-2.5"}


@pytest.fixture(scope="module")
def models(tiny_model, tiny_model_2_3, tiny_model_2_5):
    return {"2.0": tiny_model, "2.3": tiny_model_2_3, "2.5": tiny_model_2_5}


def config(model, part: str) -> dict:
    return json.loads((model / part / "config.json").read_text())


def request(**kw) -> RenderRequest:
    return RenderRequest(**{"prompt": "a robot walks in the city at night", "width": 64, "height": 64,
                            "num_frames": 9, "seed": 5, **kw})


def test_each_tiny_model_has_its_generations_layout(models):
    # (gated attention, video FF bias, text encoder, vocoder, output rate, VAE decoder up blocks, diffusion decoder)
    expected = {"2.0": (False, True, "gemma3", "LTX2Vocoder", 8000, 3, False),
                "2.3": (True, True, "gemma3", "LTX2VocoderWithBWE", 48000, 4, False),
                "2.5": (True, False, "gemma4_unified", "LTX2VocoderWithBWE", 48000, 4, True)}
    for version, model in models.items():
        dit, vocoder = config(model, "transformer"), config(model, "vocoder")
        assert (dit["gated_attn"], dit["cross_attn_mod"], dit["ff_bias"], config(model, "text_encoder")["model_type"],
                vocoder["_class_name"], vocoder["output_sampling_rate"],
                len(config(model, "vae")["decoder_block_out_channels"]),
                (model / "diffusion_decoder" / "config.json").is_file()) == (
            expected[version][0], expected[version][0], *expected[version][1:]), version
    index = json.loads((models["2.5"] / "model_index.json").read_text())
    assert index["text_encoder"] == ["transformers", "Gemma4UnifiedForConditionalGeneration"]
    assert config(models["2.3"], "vocoder")["input_sampling_rate"] == 16000  # BWE: 16 kHz -> 48 kHz, as the real one


def test_the_generation_is_read_from_the_files(models):
    assert {v: read_generation(str(m)).name for v, m in models.items()} == GENERATIONS
    assert read_generation(str(models["2.5"])).source == (
        "transformer/config.json: gated_attn=true, cross_attn_mod=true, ff_bias=false; text_encoder/config.json: "
        "model_type gemma4_unified; vocoder/config.json: LTX2VocoderWithBWE (48000 Hz); vae/config.json: 4 decoder "
        "up blocks; diffusion_decoder/ present (LTX-2.5's diffusion VAE decoder)")


def test_a_hub_id_is_read_through_the_hub_cache(models, monkeypatch):
    # A hub id's configs come through hf_hub_download (the cache, with HF_HUB_OFFLINE=1); a file the repo
    # does not have (no diffusion_decoder/ in a 2.3 repo) counts as absent.
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    asked = []

    def download(repo, name):
        asked.append((repo, name))
        path = models["2.3"] / name
        if not path.is_file():
            raise EntryNotFoundError(f"{name} not in {repo}")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    generation = read_generation("Lightricks/LTX-2.5-Diffusers")  # the repo name says 2.5; its files say 2.3
    assert (generation.name, generation.diffusion_decoder) == ("ltx-2.3", False)
    assert ("Lightricks/LTX-2.5-Diffusers", "diffusion_decoder/config.json") in asked


def test_a_folder_named_after_another_generation_loads_as_what_its_files_say(models, tmp_path):
    for version, name in (("2.3", "LTX-2.5-Diffusers"), ("2.5", "ltx-2-19b-distilled"), ("2.0", "ltx-2.3-22b-dev")):
        copy = tmp_path / name
        shutil.copytree(models[version], copy)
        engine = LTX2Engine(str(copy), upsampler=None, video_decoder="conv")
        engine.load()
        caps = engine.capabilities()
        assert (caps.model_generation, caps.audio_sample_rate) == (GENERATIONS[version],
                                                                   8000 if version == "2.0" else 48000), name
        assert caps.model_generation_source == read_generation(str(models[version])).source


def test_files_of_two_generations_are_refused_naming_what_each_says(models, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(models["2.3"], mixed)
    shutil.rmtree(mixed / "vocoder")
    shutil.copytree(models["2.0"] / "vocoder", mixed / "vocoder")  # LTX-2.0's 8 kHz vocoder in an LTX-2.3 folder
    with pytest.raises(ModelGenerationUnknown, match=(
            r"cannot tell which LTX generation .*mixed is: its files disagree \(transformer/config.json: gated_attn=true, "
            r"cross_attn_mod=true, ff_bias=true -> ltx-2.3; .*vocoder/config.json: LTX2Vocoder \(8000 Hz\) -> ltx-2; .*"
            r"every folder must come from one checkpoint")):
        LTX2Engine(str(mixed), upsampler=None).load()
    gemma4 = {"transformer": config(models["2.3"], "transformer"), "text_encoder": {"model_type": "gemma4_unified"}}
    with pytest.raises(ModelGenerationUnknown, match=r"model_type gemma4_unified -> ltx-2.5"):
        generation_from_configs(gemma4)
    with pytest.raises(ModelGenerationUnknown, match="gated_attn=true, cross_attn_mod=false.*one without the other"):
        generation_from_configs({"transformer": {"gated_attn": True}})
    with pytest.raises(ModelGenerationUnknown, match="has no transformer/config.json"):
        generation_from_configs({"transformer": None})


def test_dev_defaults_follow_the_generation():
    # Lightricks' LTX_2_PARAMS / LTX_2_3_PARAMS / LTX_2_4_PARAMS: steps and the STG block of a 48-block model.
    assert [default_steps("dev", g) for g in GENERATIONS.values()] == [40, 30, 30]
    assert [default_guidance("dev", g, 48).stg_blocks for g in GENERATIONS.values()] == [(29,), (28,), (28,)]
    assert [default_steps("distilled", g) for g in GENERATIONS.values()] == [8, 8, 8]


def test_published_lora_stand_ins_say_their_canvas_factor_and_base(models):
    # name -> (kind, canvas, reference_downscale_factor, base, camera move), as the engine infers it from the file
    expected = {
        "2.0": {"ltx-2-19b-ic-lora-depth-control": ("control", "depth", 1, "ltx-2", None),
                "ltx-2-19b-ic-lora-pose-control": ("control", "pose", 1, "ltx-2", None),
                "ltx-2-19b-ic-lora-canny-control": ("control", "edges", 1, "ltx-2", None),
                "ltx-2-19b-ic-lora-union-ref0.5": ("control", "depth,pose,edges", 2, "ltx-2", None),
                "ltx-2-19b-lora-camera-control-dolly-in": ("camera_preset", None, None, "ltx-2", "dolly_in"),
                "ltx-2-19b-lora-camera-control-static": ("camera_preset", None, None, "ltx-2", "static")},
        "2.3": {"ltx-2.3-22b-ic-lora-union-control-ref0.5": ("control", "depth,pose,edges", 2, "ltx-2.3", None)},
        "2.5": {"ltx-2.5-22b-ic-lora-layout-to-render": ("control", "playblast", 1, "ltx-2.5", None)},
    }
    for version, loras in expected.items():
        for name, want in loras.items():
            path = models[version] / "loras" / f"{name}.safetensors"
            info = inspect_lora(name, path)
            assert (info.kind, info.canvas, info.reference_downscale_factor, info.base, info.camera_move) == want, name
            with safe_open(str(path), framework="pt") as f:
                assert all(k.startswith("diffusion_model.transformer_blocks.") for k in f.keys())  # Lightricks keys
                assert not any(k.endswith(".alpha") for k in f.keys())
    # Only the generation's own published LoRAs: 2.3 and 2.5 have none of LTX-2.0's.
    assert not list((models["2.3"] / "loras").glob("ltx-2-19b-*"))
    assert not list((models["2.5"] / "loras").glob("ltx-2.3-*"))


def test_capabilities_report_the_generation_and_each_loras_base(engine, engine_2_3):
    caps = engine.capabilities()
    bases = {lo.name: lo.base for lo in caps.loras}
    assert caps.model_generation == "ltx-2" and bases["ltx-2-19b-ic-lora-union-ref0.5"] == "ltx-2"
    assert bases["control"] is None  # the test LoRAs declare no base: they fit any generation
    caps = engine_2_3.capabilities()
    union = caps.lora("ltx-2.3-22b-ic-lora-union-control-ref0.5")
    assert caps.model_generation == "ltx-2.3" and (union.base, union.reference_downscale_factor) == ("ltx-2.3", 2)


def test_a_lora_made_for_another_generation_is_refused_naming_both(models, tmp_path):
    # The tiny generations share their widths: only the declared base tells these LoRAs apart.
    depth = models["2.0"] / "loras" / "ltx-2-19b-ic-lora-depth-control.safetensors"
    with pytest.raises(LoraMismatch, match=(
            r"LoRA 'ltx-2-19b-ic-lora-depth-control' was trained for ltx-2 \(its published file name\) but .* is an "
            r"ltx-2.3 checkpoint; install a LoRA made for ltx-2.3, or serve an ltx-2 checkpoint")):
        LTX2Engine(str(models["2.3"]), loras={"ltx-2-19b-ic-lora-depth-control": str(depth)}, upsampler=None).load()
    with safe_open(str(depth), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    mine = tmp_path / "my_depth.safetensors"
    save_file(tensors, str(mine), metadata={"reference_downscale_factor": "1", "model_version": "2.5.0"})
    with pytest.raises(LoraMismatch, match=r"'mine' was trained for ltx-2.5 \(its metadata\) but .* is an ltx-2.3"):
        LTX2Engine(str(models["2.3"]), loras={"mine": str(mine)}, upsampler=None).load()
    ok = LTX2Engine(str(models["2.0"]), loras={"ltx-2-19b-ic-lora-depth-control": str(depth)}, upsampler=None)
    ok.load()  # the same file on its own generation
    assert ok.loras["ltx-2-19b-ic-lora-depth-control"].base == "ltx-2"


def test_a_distilled_lora_of_another_generation_is_refused(tiny_dev_model, tmp_path):
    other = tmp_path / "ltx-2.3-22b-distilled-lora-384-1.1.safetensors"
    shutil.copy(tiny_dev_model / "tiny-distilled-lora.safetensors", other)
    with pytest.raises(LoraMismatch, match=r"--distilled-lora ltx-2.3-22b-distilled-lora-384-1.1.safetensors was made "
                                           r"for ltx-2.3 but .* is an ltx-2 checkpoint"):
        LTX2Engine(str(tiny_dev_model), distilled_lora=str(other)).load()


def test_the_2_3_vocoder_makes_48_khz_audio_of_the_same_length(engine, engine_2_3):
    a = engine.render(request(num_inference_steps=1))
    b = engine_2_3.render(request(num_inference_steps=1))
    assert (a.audio_sample_rate, b.audio_sample_rate) == (8000, 48000)
    assert b.audio.shape[1] == 6 * a.audio.shape[1]  # same seconds: 15936 samples at 48 kHz
    assert b.info["model_generation"] == "ltx-2.3" and float(np.abs(b.audio).max()) > 0


def transformer_calls(engine: LTX2Engine, req: RenderRequest):
    """Run `req`; return [(video in, audio in, video velocity, audio velocity)] of every transformer call, and info."""
    calls = []

    def hook(module, args, kwargs, out):
        calls.append((kwargs["hidden_states"].float().clone(), kwargs["audio_hidden_states"].float().clone(),
                      out[0].float().clone(), out[1].float().clone()))

    handle = engine.pipe.transformer.register_forward_hook(hook, with_kwargs=True)
    try:
        info = engine.render(req).info
    finally:
        handle.remove()
    return calls, info


def ancestral_step(x, v, sigma, sigma_next, noise):
    """Lightricks' EulerAncestralDiffusionStep (ltx-core 1.2, components/diffusion_steps.py), eta 1, s_noise 1,
    written out: Euler to sigma_down = sigma_next^2 / sigma, then re-noised up to sigma_next."""
    x0 = x - sigma * v
    sigma_down = sigma_next * (sigma_next / sigma)
    x_next = (sigma_down / sigma) * x + (1 - sigma_down / sigma) * x0
    alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
    renoise = (sigma_next ** 2 - sigma_down ** 2 * alpha_next ** 2 / alpha_down ** 2) ** 0.5
    return (alpha_next / alpha_down) * x_next + noise * renoise


def test_ltx_2_5_distilled_stage_1_steps_ancestral_euler_as_lightricks(tiny_model_2_5):
    engine = LTX2Engine(str(tiny_model_2_5), upsampler=None, video_decoder="conv")
    engine.load()
    calls, info = transformer_calls(engine, request())
    assert info["sampler"] == {"stage1": "euler_ancestral", "stage2": None} and len(calls) == 8
    sigmas = info["sigmas"]  # the published distilled schedule, 1.0 -> 0.99375 first
    generator = torch.Generator().manual_seed(5 + 10000)  # its own noise: seed + 10000, video then audio
    noise, audio_noise = torch.randn(calls[0][0].shape, generator=generator), torch.randn(calls[0][1].shape,
                                                                                          generator=generator)
    video, audio, v, a = calls[0]
    expected = ancestral_step(video, v, sigmas[0], sigmas[1], noise)
    assert torch.allclose(calls[1][0], expected, atol=1e-5)  # what the second call got is the ancestral step
    assert torch.allclose(calls[1][1], ancestral_step(audio, a, sigmas[0], sigmas[1], audio_noise), atol=1e-5)
    euler = video + (sigmas[1] - sigmas[0]) * v
    assert float((calls[1][0] - euler).norm() / euler.norm()) > 1e-2  # not vacuous: plain Euler lands elsewhere
    video, _, v, _ = calls[-1]  # the last step lands on the prediction
    assert torch.allclose(engine.last_latents, video - sigmas[-2] * v, atol=1e-5)
    again, _ = transformer_calls(engine, request())
    assert torch.equal(again[-1][0], calls[-1][0])  # seeded: the same shot twice is the same shot


def test_reference_canvases_and_older_generations_keep_plain_euler(tiny_model_2_5, engine_2_3):
    # With an IC-LoRA canvas Lightricks runs ICLoraPipeline, which steps plain Euler for every generation.
    engine = LTX2Engine(str(tiny_model_2_5), upsampler=None, video_decoder="conv")
    engine.load()
    canvas = np.random.default_rng(0).integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    calls, info = transformer_calls(engine, request(controls=[ControlInput(frames=canvas, lora="control")]))
    sigmas, n = info["sigmas"], info["target_tokens"]  # the canvas tokens follow the target's n
    video, _, v, _ = calls[0]
    assert info["sampler"]["stage1"] == "euler"
    assert torch.allclose(calls[1][0][:, :n], video[:, :n] + (sigmas[1] - sigmas[0]) * v[:, :n], atol=1e-5)
    assert engine_2_3.render(request(num_inference_steps=1)).info["sampler"]["stage1"] == "euler"


def test_ltx_2_5_decodes_with_its_diffusion_decoder_offline_and_seeded(tiny_model_2_5, monkeypatch):
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoVaeNeighborhoodAttnProcessor

    # NATTEN's processor would fetch its kernel from the Hub through `kernels`: make any such attempt fail loudly.
    fetched = []
    fake = types.ModuleType("kernels")
    fake.get_kernel = lambda *a, **k: fetched.append(a) or pytest.fail("tried to fetch a kernel from the Hub")
    monkeypatch.setitem(sys.modules, "kernels", fake)
    engine = LTX2Engine(str(tiny_model_2_5), upsampler=None)
    engine.load()
    processors = engine.diffusion_decoder.attn_processors.values()
    assert processors and all(type(p) is LTX2VideoVaeNeighborhoodAttnProcessor for p in processors)
    decoder = engine.diffusion_decoder
    assert decoder.use_tiling and (decoder.tile_sample_min_height, decoder.tile_sample_min_num_frames) == (64, 16)
    first, second = engine.render(request(num_inference_steps=1)), engine.render(request(num_inference_steps=1))
    assert first.info["video_decoder"].startswith("diffusion VAE decoder (diffusion_decoder/, FlexAttention, tiled")
    assert np.array_equal(first.video, second.video) and not fetched  # its noise is the request's seed
    conv = LTX2Engine(str(tiny_model_2_5), upsampler=None, video_decoder="conv")
    conv.load()
    third = conv.render(request(num_inference_steps=1))
    assert torch.equal(conv.last_latents, engine.last_latents)  # the same latents, decoded another way
    assert third.video.shape == first.video.shape == (9, 64, 64, 3)
    assert float(np.abs(third.video.astype(float) - first.video.astype(float)).mean()) > 1.0
    assert third.info["video_decoder"] == "convolutional VAE decoder (vae/)"


def test_the_diffusion_decoder_tiles_stay_small_and_hold_its_kernels():
    # Uncompiled FlexAttention is quadratic in a tile's tokens: 64 px x 16 frames at most, unless a kernel needs
    # more; overlap a quarter. Real config (diffusers' defaults): last kernels (3, 5, 5) and (11, 11, 11).
    from types import SimpleNamespace

    from render_backend.engine.ltx2.video_decoders import decoder_tiles

    strides = ((1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 2, 2))
    real = SimpleNamespace(decoder_upsample_strides=strides, patch_size=4, decoder_stage5_kernel=(11, 11, 11),
                           decoder_stage_kernels=((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5)))
    assert decoder_tiles(real) == {"tile_sample_min_num_frames": 16, "tile_sample_min_height": 64,
                                   "tile_sample_min_width": 64, "tile_sample_stride_num_frames": 12,
                                   "tile_sample_stride_height": 48, "tile_sample_stride_width": 48}
    wide = SimpleNamespace(**{**vars(real), "decoder_stage5_kernel": (11, 21, 21)})  # 21 / 2 -> 11 cells of 8 px
    assert (decoder_tiles(wide)["tile_sample_min_height"], decoder_tiles(wide)["tile_sample_stride_height"]) == (88, 64)


def test_asking_for_a_diffusion_decoder_the_checkpoint_lacks_says_so(tiny_model_2_3):
    with pytest.raises(ValueError, match=r"--video-decoder diffusion: .* has no diffusion_decoder/ folder \(only "
                                         r"LTX-2.5 checkpoints ship"):
        LTX2Engine(str(tiny_model_2_3), upsampler=None, video_decoder="diffusion").load()
    with pytest.raises(ValueError, match="--video-decoder must be one of auto, conv, diffusion"):
        LTX2Engine(str(tiny_model_2_3), video_decoder="natten")


def test_a_frame_condition_holds_through_ltx_2_5s_ancestral_noise(tiny_model_2_5):
    # Lightricks' DistilledPipeline re-applies its conditioning mask after each ancestral step's noise; the
    # engine re-pins the held frames after every step the same way, so they end exactly on the condition.
    from render_backend.engine.ltx2.references import ReferenceCanvas, encode_reference
    from render_backend.engine.request import FrameCondition

    engine = LTX2Engine(str(tiny_model_2_5), upsampler=None, video_decoder="conv")
    engine.load()
    condition = np.random.default_rng(3).integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    held = encode_reference(engine.pipe, ReferenceCanvas("c", condition, 1, 1.0), 64, 64, 24.0,
                            torch.device("cpu"), torch.float32).tokens[0]
    result = engine.render(request(num_frames=17, conditions=[FrameCondition(frames=condition)]))
    assert result.info["sampler"]["stage1"] == "euler_ancestral"  # a frame condition is not an IC-LoRA canvas
    assert float((engine.last_latents[0][:held.shape[0]] - held).abs().max()) < 1e-6
