"""A tiny, randomly initialised LTX-2 written to disk in diffusers layout, plus tiny LoRAs.

Every stage of the real engine runs on it (text encoder, connectors, transformer, video VAE with
the real 32x spatial / 8x temporal compression, audio VAE, vocoder); the output is noise. Used by
the tests, `render-backend make-test-model DIR` and `./dev demo`, because real weights cannot be
downloaded on CI machines.

It comes in both variants (`variant="distilled"` or `"dev"`): the same random weights; the
variant is marked as diffusers' LTX-2 conversion marks a real checkpoint, in the scheduler config
(ltx2/variant.py), so the engine tells them apart as it tells real ones, whatever the folder name.

Layout written under `out_dir`:
    model_index.json, transformer/, vae/, audio_vae/, vocoder/, connectors/, text_encoder/,
    tokenizer/, scheduler/       (LTX2InContextPipeline.save_pretrained; scheduler = the variant marker)
    loras/control.safetensors             IC-LoRA, Lightricks/ComfyUI keys, reference factor 1
    loras/control_peft.safetensors        same kind, diffusers/peft keys
    loras/camera_<move>.safetensors       plain camera preset LoRAs (no reference)
    loras/camera_trajectory.safetensors   IC-LoRA for the trajectory canvas, reference factor 4
    latent_upsampler/                     2x spatial latent upsampler (two-stage mode)
    tiny-distilled-lora.safetensors       dev only: the stage-2 distilled LoRA (as Lightricks ships one)
    COMPLETE                              written last ("tiny-ltx2/3 <variant>"): without it, unfinished
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..camera import PRESETS

TEST_MODEL_VERSION = "tiny-ltx2/3"  # 3: both variants, connector registers
COMPLETE_MARKER = "COMPLETE"
CAMERA_PRESET_MOVES = PRESETS  # one LoRA per published camera move
# Modules of each transformer block the test LoRAs adapt (the same set Lightricks' LoRAs touch).
LORA_TARGET_MODULES = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "ff.net.2")
LORA_RANK = 4
SEED = 1234
UPSAMPLER_DIR = "latent_upsampler"
DISTILLED_LORA_FILE = "tiny-distilled-lora.safetensors"
# Learnable registers replace the prompt's padding, as in the real connectors (128 there); the
# token count (the tokenizer's 64) must be a multiple of it.
CONNECTOR_REGISTERS = 16


def is_complete(model_dir: str | Path, variant: str | None = None) -> bool:
    """True when `model_dir` holds a fully written test model of this version (and of `variant`, if given)."""
    marker = Path(model_dir) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    version, _, written = marker.read_text().strip().partition(" ")
    return version == TEST_MODEL_VERSION and variant in (None, written)


def make_test_model(out_dir: str | Path, variant: str = "distilled") -> Path:
    """Write the tiny model of `variant` ("distilled" or "dev") and its LoRAs to `out_dir` (skips if
    already complete); returns the path.

    Written into a temp folder beside `out_dir` and renamed, so a crash never leaves a folder
    that looks complete. Same seed every time: two calls produce identical weights.
    """
    from .variant import VARIANTS

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})")
    out_dir = Path(out_dir).resolve()
    if is_complete(out_dir, variant):
        return out_dir
    if (out_dir / COMPLETE_MARKER).is_file():
        shutil.rmtree(out_dir)  # our own test model of an older version: rebuild it
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir} exists and is not a complete test model; remove it or choose another folder"
        )
    return save_model(build_tiny_pipeline(variant=variant), out_dir, variant)


def save_model(pipe, out_dir: str | Path, variant: str = "distilled") -> Path:
    """Write `pipe` + test LoRAs fitted to its transformer to `out_dir` atomically (temp folder + rename)."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        write_test_loras(tmp / "loras", pipe.transformer)
        tiny_upsampler(pipe.transformer.config.in_channels).save_pretrained(tmp / UPSAMPLER_DIR)
        if variant == "dev":
            write_distilled_lora(tmp / DISTILLED_LORA_FILE, pipe.transformer)
        (tmp / COMPLETE_MARKER).write_text(f"{TEST_MODEL_VERSION} {variant}\n")
        if out_dir.exists():
            out_dir.rmdir()  # must be empty: never overwrite a folder with content
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def tiny_upsampler(latent_channels: int):
    """A random 2x spatial latent upsampler for two-stage mode (`--upsampler <model>/latent_upsampler`)."""
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    torch.manual_seed(SEED + 6)
    return LTX2LatentUpsamplerModel(in_channels=latent_channels, mid_channels=32, num_blocks_per_stage=1)


# The tiny transformer; benchmarks pass bigger values (width = heads * head_dim, layers).
TINY_TRANSFORMER = {"num_attention_heads": 2, "attention_head_dim": 16, "num_layers": 2}


def build_tiny_pipeline(transformer: dict | None = None, variant: str = "distilled"):
    """The tiny LTX2InContextPipeline in memory (fixed seed). `transformer` overrides TINY_TRANSFORMER;
    `variant` sets the scheduler config that marks a checkpoint distilled or dev (ltx2/variant.py)."""
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2InContextPipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from .variant import scheduler_config

    tokenizer = _tiny_tokenizer()
    torch.manual_seed(SEED)
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "max_position_embeddings": 256,
        "sliding_window": 64,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision_config = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
    }
    text_encoder = Gemma3ForConditionalGeneration(
        Gemma3Config(text_config=text_config, vision_config=vision_config, mm_tokens_per_image=4)
    ).eval()
    text_hidden = text_config["hidden_size"]

    torch.manual_seed(SEED + 1)
    size = {**TINY_TRANSFORMER, **(transformer or {})}
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=size["num_attention_heads"],
        attention_head_dim=size["attention_head_dim"],
        cross_attention_dim=size["num_attention_heads"] * size["attention_head_dim"],
        audio_in_channels=8,
        audio_out_channels=8,
        audio_num_attention_heads=2,
        audio_attention_head_dim=8,
        audio_cross_attention_dim=16,
        num_layers=size["num_layers"],
        caption_channels=text_hidden,
        rope_double_precision=False,
        rope_type="split",
    )
    torch.manual_seed(SEED + 2)
    connectors = LTX2TextConnectors(
        caption_channels=text_hidden,
        text_proj_in_factor=text_config["num_hidden_layers"] + 1,
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=16,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=CONNECTOR_REGISTERS,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=16,  # LTX-2.0 layout: both connectors run at caption width
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=CONNECTOR_REGISTERS,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
        rope_type="split",
    )
    torch.manual_seed(SEED + 3)
    # Real compression: patch 4 x (2 spatial, 2 temporal, 2x2 spatiotemporal) = 32x spatial, 8x temporal.
    vae = AutoencoderKLLTX2Video(
        latent_channels=8,
        block_out_channels=(8, 16, 32, 64),  # doubling per block, as in the real VAE
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        patch_size=4,
        timestep_conditioning=False,
        # Stated explicitly: the derived ratios are wrong for non-default block counts.
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    torch.manual_seed(SEED + 4)
    mel_bins, audio_latent_channels = 16, 2
    audio_vae = AutoencoderKLLTX2Audio(
        # The audio VAE only builds when base_channels == latent_channels * mel_bins / 4.
        base_channels=audio_latent_channels * mel_bins // 4,
        output_channels=2,
        ch_mult=(1, 2, 4),
        num_res_blocks=1,
        in_channels=2,
        resolution=32,
        latent_channels=audio_latent_channels,
        sample_rate=16000,
        mel_hop_length=160,
        mel_bins=mel_bins,
    )
    torch.manual_seed(SEED + 5)
    vocoder = LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * mel_bins,
        hidden_channels=16,
        out_channels=2,
        # 80x upsampling of 100 mel frames/s (16 kHz, hop 160) = 8 kHz audio of the right length.
        upsample_kernel_sizes=[10, 8, 8],
        upsample_factors=[5, 4, 4],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        output_sampling_rate=8000,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(**scheduler_config(variant))
    return LTX2InContextPipeline(
        scheduler=scheduler,
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )


def _tiny_tokenizer():
    """A Gemma tokenizer over a small in-memory word vocabulary (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GemmaTokenizerFast

    words = (
        "<pad> <eos> <bos> <unk> a an the of and in on with at to man woman dog cat robot car tree "
        "house street forest river city night day light dark walks runs dances camera moves slowly "
        "red blue green shot film cinematic close wide"
    ).split()
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = GemmaTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        padding_side="left",
        model_max_length=64,
    )
    return tok


def write_distilled_lora(path: Path, transformer) -> None:
    """A stand-in for Lightricks' distilled LoRA (stage 2 of a dev model): a plain LoRA, Lightricks keys."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(SEED + 20)
    modules = dict(transformer.named_modules())
    tensors = {}
    for b in range(len(transformer.transformer_blocks)):
        for name in LORA_TARGET_MODULES:
            linear = modules[f"transformer_blocks.{b}.{name}"]
            key = f"diffusion_model.transformer_blocks.{b}.{name}"
            tensors[f"{key}.lora_A.weight"] = (torch.randn(LORA_RANK, linear.in_features, generator=gen) * 0.3)
            tensors[f"{key}.lora_B.weight"] = (torch.randn(linear.out_features, LORA_RANK, generator=gen) * 0.3)
    save_file(tensors, str(path))


def write_test_loras(lora_dir: Path, transformer) -> None:
    """Write the tiny LoRA files for `transformer` (random non-zero A and B: they visibly change output)."""
    from safetensors.torch import save_file

    lora_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED + 10)
    modules = dict(transformer.named_modules())
    num_blocks = len(transformer.transformer_blocks)

    def lora_tensors(prefix: str) -> dict[str, torch.Tensor]:
        out = {}
        for b in range(num_blocks):
            for name in LORA_TARGET_MODULES:
                path = f"transformer_blocks.{b}.{name}"
                linear = modules[path]
                a = torch.randn(LORA_RANK, linear.in_features, generator=gen) * 0.3
                bm = torch.randn(linear.out_features, LORA_RANK, generator=gen) * 0.3
                out[f"{prefix}{path}.lora_A.weight"] = a.contiguous()
                out[f"{prefix}{path}.lora_B.weight"] = bm.contiguous()
        return out

    def write(name: str, tensors: dict, meta: dict) -> None:
        tmp = lora_dir / f".{name}.tmp"
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})
        os.replace(tmp, lora_dir / f"{name}.safetensors")

    write("control", lora_tensors("diffusion_model."),
          {"reference_downscale_factor": 1, "ltx_blender_kind": "control"})
    write("control_peft", lora_tensors("transformer."),
          {"reference_downscale_factor": 1, "ltx_blender_kind": "control"})
    for move in CAMERA_PRESET_MOVES:
        write(f"camera_{move}", lora_tensors("diffusion_model."),
              {"ltx_blender_kind": "camera_preset", "camera_move": move})
    write("camera_trajectory", lora_tensors("diffusion_model."),
          {"reference_downscale_factor": 4, "ltx_blender_kind": "camera_trajectory"})
    (lora_dir / "README.json").write_text(json.dumps({"rank": LORA_RANK, "seed": SEED + 10}) + "\n")
