"""Reference canvases (parallel canvas): pixels -> clean latent tokens + RoPE positions + strengths,
as Lightricks' ltx-core / ltx-pipelines prepare an IC-LoRA reference video.

Each reference carries its own downscale factor f (small-to-large grid): the canvas is resized to
(H/f, W/f) (bilinear, aspect fill, centre crop: ltx-pipelines' `resize_and_center_crop`), so it
costs f^2 fewer tokens, and its spatial RoPE positions are multiplied by f so that every reference
token sits where its pixels lie in the full-size target frame (ltx-core's
`VideoConditionByReferenceLatent`). A temporal scale S (LoRA metadata
`reference_temporal_scale_factor`, ltx-core 1.2+) keeps frame 0 and every S-th frame after it and
spaces the reference's time positions S frames apart, ending with the target's last frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..request import InvalidRequest


@dataclass
class ReferenceCanvas:
    """One reference condition to append to the token sequence.

    name: what it is ("control:depth", "camera_trajectory"). frames: (F, h, w, 3) uint8, one per
    output frame, any size (resized to output/factor). factor: reference downscale factor.
    strength: (F_lat*h_lat*w_lat,) float32 per-token strength in token order, or a float for all
    tokens. has_map: whether the strength is an attention map at all (see attention.py); a
    reference without one is read at full strength. temporal_scale: every S-th frame is read.
    """

    name: str
    frames: np.ndarray
    factor: int
    strength: np.ndarray | float = 1.0
    has_map: bool = False
    temporal_scale: int = 1


@dataclass
class EncodedReference:
    name: str
    factor: int
    tokens: torch.Tensor  # (1, n, C) normalised, packed latents
    coords: torch.Tensor  # (1, 3, n, 2) RoPE [start, end) positions in target pixel space, time in seconds
    strength: torch.Tensor  # (n,) float32
    has_map: bool
    latent_shape: tuple[int, int, int]  # (frames, height, width) of the reference latent grid
    temporal_scale: int = 1


def reference_size(width: int, height: int, factor: int, multiple: int = 32) -> tuple[int, int]:
    """(w, h) of a reference canvas at `factor`; raises when it is not a multiple of the VAE cell."""
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise InvalidRequest(f"reference_downscale_factor must be a positive integer (got {factor!r})")
    if width % factor or height % factor or (width // factor) % multiple or (height // factor) % multiple:
        raise InvalidRequest(
            f"a reference at factor {factor} of {width}x{height} would be {width / factor:g}x{height / factor:g} "
            f"pixels; width/factor and height/factor must be multiples of {multiple}: choose a size that is a "
            f"multiple of {multiple * factor}, or a smaller factor"
        )
    return width // factor, height // factor


def frames_read(num_frames: int, temporal_scale: int = 1) -> list[int]:
    """Indices of the canvas frames a reference reads: 0, then every S-th frame from 1 (VAE-aligned)."""
    return [0, *range(1, num_frames, temporal_scale)]


PIXEL_CHUNK_FRAMES = 8  # frames converted at a time: one fp32 chunk (~38 MB at 768x512) beside the result


def frames_to_pixels(frames: np.ndarray, width: int, height: int, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(F, h, w, 3) uint8 -> (1, 3, F, height, width) `dtype` on `device`, in [-1, 1].

    Resized as ltx-pipelines does: scale to cover width x height keeping the aspect (bilinear,
    no antialias), centre crop, then map 0..255 to -1..1. The math is fp32, a few frames at a time,
    written straight into the one result tensor: a 121-frame 768x512 canvas no longer passes through
    three full-size fp32 copies (~1.7 GB) before the VAE sees it. Same numbers as converting at once.
    """
    count, src_h, src_w = len(frames), frames.shape[1], frames.shape[2]
    out = torch.empty((count, 3, height, width), dtype=dtype, device=device)  # (F, 3, H, W): chunks write rows
    for start in range(0, count, PIXEL_CHUNK_FRAMES):
        chunk = np.ascontiguousarray(frames[start:start + PIXEL_CHUNK_FRAMES])
        video = torch.from_numpy(chunk).permute(0, 3, 1, 2).to(torch.float32, copy=True)  # (f, 3, h, w), own memory
        if (src_h, src_w) != (height, width):
            scale = max(height / src_h, width / src_w)
            cover_h, cover_w = math.ceil(src_h * scale), math.ceil(src_w * scale)
            video = F.interpolate(video, size=(cover_h, cover_w), mode="bilinear", align_corners=False)
            top, left = (cover_h - height) // 2, (cover_w - width) // 2
            video = video[:, :, top:top + height, left:left + width]
        out[start:start + len(chunk)] = video.div_(127.5).sub_(1.0)  # same fp32 ops in place; cast on copy
    return out.permute(1, 0, 2, 3).unsqueeze(0)  # (1, 3, F, H, W), a view


def temporal_positions(coords: torch.Tensor, fps: float, temporal_scale: int) -> torch.Tensor:
    """Time bounds (seconds) of a reference read every S-th frame, as ltx-core 1.2+ places them.

    `coords` were made at fps / S (so consecutive reference latent frames are S times further apart);
    shifting by (S - 1) target frames makes the reference's last patch end with the target's last
    patch; the causal first patch's negative start is clamped to 0.
    """
    if temporal_scale == 1:
        return coords
    coords = coords.clone()
    frame = torch.tensor(1.0, dtype=torch.float32) / fps  # the target's first patch ends at 1 / fps
    coords[:, 0] = torch.clamp(coords[:, 0] - (temporal_scale - 1) * frame.to(coords.device), min=0)
    return coords


@torch.no_grad()
def encode_reference(pipe, ref: ReferenceCanvas, width: int, height: int, fps: float,
                     device: torch.device, dtype: torch.dtype) -> EncodedReference:
    """VAE-encode one canvas into clean tokens with positions scaled by its factors."""
    ref_w, ref_h = reference_size(width, height, ref.factor, pipe.vae_spatial_compression_ratio)
    read = frames_read(len(ref.frames), ref.temporal_scale)
    frames = ref.frames if len(read) == len(ref.frames) else ref.frames[read]  # every frame: no copy
    # The VAE's own dtype: the engine loads every component in its compute dtype (bf16 on CUDA, fp32 on CPU).
    pixels = frames_to_pixels(frames, ref_w, ref_h, device, pipe.vae.dtype)  # (1, 3, F, H, W)
    latent = pipe.vae.encode(pixels).latent_dist.mode()  # (1, C, F_lat, h_lat, w_lat)
    del pixels, frames  # the largest tensors of the encode: gone before packing
    latent = pipe._normalize_latents(latent, pipe.vae.latents_mean, pipe.vae.latents_std)
    _, _, lf, lh, lw = latent.shape
    tokens = pipe._pack_latents(latent, pipe.transformer_spatial_patch_size,
                                pipe.transformer_temporal_patch_size).to(dtype)  # (1, n, C)
    coords = pipe.transformer.rope.prepare_video_coords(1, lf, lh, lw, device,
                                                        fps=fps / ref.temporal_scale)  # (1, 3, n, 2)
    coords = temporal_positions(coords, fps, ref.temporal_scale)
    coords[:, 1:] = coords[:, 1:] * ref.factor  # rows and columns into target pixel space
    n = tokens.shape[1]
    if isinstance(ref.strength, np.ndarray):
        strength = torch.from_numpy(np.asarray(ref.strength, dtype=np.float32)).flatten()
        if strength.numel() != n:
            raise InvalidRequest(f"{ref.name}: {strength.numel()} strength values for {n} reference tokens "
                                 f"({lf} latent frames x {lh} x {lw})")
    else:
        strength = torch.full((n,), float(ref.strength), dtype=torch.float32)
    return EncodedReference(ref.name, ref.factor, tokens, coords, strength, ref.has_map, (lf, lh, lw),
                            ref.temporal_scale)


def latent_grid(num_frames: int, width: int, height: int, factor: int = 1, temporal_scale: int = 1,
                spatial: int = 32, temporal: int = 8) -> tuple[int, int, int]:
    """(latent frames, latent rows, latent cols) of a canvas of this size at `factor` (and temporal scale)."""
    return (num_frames - 1) // (temporal * temporal_scale) + 1, height // factor // spatial, width // factor // spatial
