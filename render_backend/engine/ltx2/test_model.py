"""A tiny, randomly initialised LTX-2 written to disk in diffusers layout, plus tiny LoRAs.

Every stage of the real engine runs on it (text encoder, connectors, transformer, video VAE with
the real 32x spatial / 8x temporal compression, audio VAE, vocoder, and for LTX-2.5 the diffusion
VAE decoder); the output is noise. Used by the tests, `render-backend make-test-model DIR` and
`./dev demo`, because real weights cannot be downloaded on CI machines.

It comes in each model generation (`version` "2.0", "2.3" or "2.5", in that generation's layout:
tiny_components.py) and both variants (`variant="distilled"` or `"dev"`: the same random weights;
the variant is marked as diffusers' LTX-2 conversion marks a real checkpoint, in the scheduler
config, ltx2/variant.py). The engine tells them apart as it tells real ones, from the files,
whatever the folder is called.

Layout written under `out_dir`:
    model_index.json, transformer/, vae/, audio_vae/, vocoder/, connectors/, text_encoder/,
    tokenizer/, scheduler/       (LTX2InContextPipeline.save_pretrained; scheduler = the variant marker)
    diffusion_decoder/           LTX-2.5 only: the diffusion VAE decoder (Lightricks' default for 2.5)
    loras/                       test LoRAs and stand-ins for the generation's published LoRAs (tiny_loras.py)
    latent_upsampler/            2x spatial latent upsampler (two-stage mode)
    tiny-distilled-lora.safetensors   dev only: the stage-2 distilled LoRA (as Lightricks ships one)
    COMPLETE                     written last ("tiny-ltx2/4 <variant> <version>"): without it, unfinished
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from . import tiny_components as parts
from .test_model_marker import COMPLETE_MARKER, TEST_MODEL_VERSION, is_complete  # noqa: F401  (re-exported; torch-free)
from .tiny_components import CONNECTOR_REGISTERS, SEED, TINY_TRANSFORMER, VERSIONS  # noqa: F401  (re-exported)
from .tiny_loras import (  # noqa: F401  (re-exported: tests and benchmarks import them from here)
    LORA_RANK,
    LORA_TARGET_MODULES,
    write_distilled_lora,
    write_published_loras,
    write_test_loras,
)

UPSAMPLER_DIR = "latent_upsampler"
DIFFUSION_DECODER_DIR = "diffusion_decoder"
DISTILLED_LORA_FILE = "tiny-distilled-lora.safetensors"


def make_test_model(out_dir: str | Path, variant: str = "distilled", version: str = "2.0") -> Path:
    """Write the tiny model of `version` ("2.0", "2.3", "2.5") and `variant` ("distilled" or "dev") with
    its LoRAs to `out_dir` (skips if already complete); returns the path.

    Written into a temp folder beside `out_dir` and renamed, so a crash never leaves a folder
    that looks complete. Same seed every time: two calls produce identical weights.
    """
    from .variant import VARIANTS

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})")
    parts.check_version(version)
    out_dir = Path(out_dir).resolve()
    if is_complete(out_dir, variant, version):
        return out_dir
    if (out_dir / COMPLETE_MARKER).is_file():
        shutil.rmtree(out_dir)  # our own test model of another format, variant or version: rebuild it
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir} exists and is not a complete test model; remove it or choose another folder"
        )
    return save_model(build_tiny_pipeline(variant=variant, version=version), out_dir, variant, version)


def save_model(pipe, out_dir: str | Path, variant: str = "distilled", version: str = "2.0") -> Path:
    """Write `pipe` + LoRAs fitted to its transformer to `out_dir` atomically (temp folder + rename)."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if version == "2.5":
            parts.diffusion_decoder().save_pretrained(tmp / DIFFUSION_DECODER_DIR, safe_serialization=True)
        write_test_loras(tmp / "loras", pipe.transformer)
        write_published_loras(tmp / "loras", pipe.transformer, version)
        tiny_upsampler(pipe.transformer.config.in_channels).save_pretrained(tmp / UPSAMPLER_DIR)
        if variant == "dev":
            write_distilled_lora(tmp / DISTILLED_LORA_FILE, pipe.transformer)
        (tmp / COMPLETE_MARKER).write_text(f"{TEST_MODEL_VERSION} {variant} {version}\n")
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


def build_tiny_pipeline(transformer: dict | None = None, variant: str = "distilled", version: str = "2.0"):
    """The tiny LTX2InContextPipeline of `version` in memory (fixed seed). `transformer` overrides
    TINY_TRANSFORMER; `variant` sets the scheduler config that marks a checkpoint distilled or dev."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2InContextPipeline

    from .variant import scheduler_config

    parts.check_version(version)
    tokenizer = parts.tokenizer()
    # Built in this order (each part seeds itself): the LTX-2.0 weights are the ones they always were.
    text_encoder = parts.text_encoder(version, tokenizer)
    dit = parts.transformer(version, transformer)
    connectors = parts.connectors(version, transformer)
    vae = parts.video_vae(version)
    audio_vae = parts.audio_vae()
    vocoder = parts.vocoder(version)
    return LTX2InContextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**scheduler_config(variant)), vae=vae, audio_vae=audio_vae,
        text_encoder=text_encoder, tokenizer=tokenizer, connectors=connectors, transformer=dit, vocoder=vocoder)
