"""The reference / frame-condition encode: pixels built a few frames at a time straight into the VAE's dtype
give the same numbers as the one-shot fp32 conversion, and the engine's encode stays untiled (exact) below
diffusers' tiling threshold even when --vae-tiling is on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from render_backend.engine.ltx2.references import (
    PIXEL_CHUNK_FRAMES,
    ReferenceCanvas,
    encode_reference,
    frames_to_pixels,
)


def one_shot_pixels(frames: np.ndarray, width: int, height: int) -> torch.Tensor:
    """The conversion as it was: the whole clip in fp32 at once, (1, 3, F, H, W)."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    src_h, src_w = video.shape[-2:]
    if (src_h, src_w) != (height, width):
        scale = max(height / src_h, width / src_w)
        cover_h, cover_w = math.ceil(src_h * scale), math.ceil(src_w * scale)
        video = F.interpolate(video, size=(cover_h, cover_w), mode="bilinear", align_corners=False)
        top, left = (cover_h - height) // 2, (cover_w - width) // 2
        video = video[:, :, top:top + height, left:left + width]
    return (video / 127.5 - 1.0).permute(1, 0, 2, 3).unsqueeze(0)


@pytest.fixture
def clip() -> np.ndarray:
    frames = 2 * PIXEL_CHUNK_FRAMES + 3  # a last chunk shorter than the others
    return np.random.default_rng(3).integers(0, 256, (frames, 40, 72, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(72, 40), (64, 32), (96, 96)], ids=["same", "crop", "cover"])
def test_pixels_built_in_chunks_equal_the_one_shot_conversion_bit_for_bit(clip, size):
    got = frames_to_pixels(clip, *size)
    want = one_shot_pixels(clip, *size)
    assert got.shape == want.shape == (1, 3, len(clip), size[1], size[0])
    assert got.dtype == torch.float32
    assert torch.equal(got, want)


def test_pixels_are_made_in_the_vae_dtype_as_one_cast_of_the_fp32_values(clip):
    got = frames_to_pixels(clip, 64, 32, dtype=torch.bfloat16)
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, one_shot_pixels(clip, 64, 32).to(torch.bfloat16))


def test_engine_reference_latent_equals_the_one_shot_encode(engine):
    """fp32 on CPU: the tokens are exactly those of encoding the one-shot pixels."""
    pipe = engine.pipe
    assert pipe.vae.dtype == engine.dtype  # the VAE runs in the engine's compute dtype (fp32 here, bf16 on CUDA)
    frames = np.random.default_rng(5).integers(0, 256, (17, 64, 96, 3), dtype=np.uint8)
    enc = encode_reference(pipe, ReferenceCanvas("control:depth", frames, 1), 96, 64, 24.0, torch.device("cpu"),
                           torch.float32)
    with torch.no_grad():
        latent = pipe.vae.encode(one_shot_pixels(frames, 96, 64)).latent_dist.mode()
        latent = pipe._normalize_latents(latent, pipe.vae.latents_mean, pipe.vae.latents_std)
        want = pipe._pack_latents(latent, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)
    assert torch.equal(enc.tokens, want)


def test_vae_tiling_leaves_references_up_to_512_px_untiled_and_exact(engine):
    """--vae-tiling tiles only above diffusers' threshold (512 px a side); below it the latent is unchanged."""
    pipe = engine.pipe
    frames = np.random.default_rng(7).integers(0, 256, (9, 128, 128, 3), dtype=np.uint8)
    ref = ReferenceCanvas("control:depth", frames, 1)
    plain = encode_reference(pipe, ref, 128, 128, 24.0, torch.device("cpu"), torch.float32)
    pipe.vae.enable_tiling()
    try:
        tiled = encode_reference(pipe, ref, 128, 128, 24.0, torch.device("cpu"), torch.float32)
    finally:
        pipe.vae.use_tiling = False  # the session's engine is shared
    assert torch.equal(plain.tokens, tiled.tokens)
