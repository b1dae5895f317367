"""Reference canvases (parallel canvas): pixels -> clean latent tokens + RoPE positions + strengths.

Each reference carries its own downscale factor f (small-to-large grid): the canvas is encoded
at (H/f, W/f), so it costs f^2 fewer tokens, and its spatial RoPE positions are multiplied by f
so that every reference token sits where its pixels lie in the full-size target frame (as in
Lightricks ltx-core / LTX-2 `reference_downscale_factor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..request import InvalidRequest


@dataclass
class ReferenceCanvas:
    """One reference condition to append to the token sequence.

    name: what it is ("control", "camera_trajectory"). frames: (F, h, w, 3) uint8, any size
    (resized to output/factor). factor: reference downscale factor. strength: (F_lat*h_lat*w_lat,)
    float32 per-token strength in token order, or a float for all tokens.
    """

    name: str
    frames: np.ndarray
    factor: int
    strength: np.ndarray | float = 1.0


@dataclass
class EncodedReference:
    name: str
    factor: int
    tokens: torch.Tensor  # (1, n, C) normalised, packed latents
    coords: torch.Tensor  # (1, 3, n, 2) RoPE [start, end) positions in target pixel space
    strength: torch.Tensor  # (n,) float32
    latent_shape: tuple[int, int, int]  # (frames, height, width) of the reference latent grid


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


def frames_to_pixels(frames: np.ndarray, width: int, height: int) -> torch.Tensor:
    """(F, h, w, 3) uint8 -> (1, 3, F, height, width) float in [-1, 1] (area resize when needed)."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if video.shape[-2:] != (height, width):
        mode = "area" if video.shape[-2] >= height and video.shape[-1] >= width else "bilinear"
        video = F.interpolate(video, size=(height, width), mode=mode)
    return video.permute(1, 0, 2, 3).unsqueeze(0)  # (1, 3, F, H, W)


@torch.no_grad()
def encode_reference(pipe, ref: ReferenceCanvas, width: int, height: int, fps: float,
                     device: torch.device, dtype: torch.dtype) -> EncodedReference:
    """VAE-encode one canvas into clean tokens with positions scaled by its factor."""
    ref_w, ref_h = reference_size(width, height, ref.factor, pipe.vae_spatial_compression_ratio)
    pixels = frames_to_pixels(ref.frames, ref_w, ref_h).to(device=device, dtype=pipe.vae.dtype)
    latent = pipe.vae.encode(pixels).latent_dist.mode()  # (1, C, F_lat, h_lat, w_lat)
    latent = pipe._normalize_latents(latent, pipe.vae.latents_mean, pipe.vae.latents_std)
    _, _, lf, lh, lw = latent.shape
    tokens = pipe._pack_latents(latent, pipe.transformer_spatial_patch_size,
                                pipe.transformer_temporal_patch_size).to(dtype)  # (1, n, C)
    coords = pipe.transformer.rope.prepare_video_coords(1, lf, lh, lw, device, fps=fps)  # (1, 3, n, 2)
    coords[:, 1:] = coords[:, 1:] * ref.factor  # rows and columns into target pixel space
    n = tokens.shape[1]
    if isinstance(ref.strength, np.ndarray):
        strength = torch.from_numpy(np.asarray(ref.strength, dtype=np.float32)).flatten()
        if strength.numel() != n:
            raise InvalidRequest(f"{ref.name}: {strength.numel()} strength values for {n} reference tokens "
                                 f"({lf} latent frames x {lh} x {lw})")
    else:
        strength = torch.full((n,), float(ref.strength), dtype=torch.float32)
    return EncodedReference(ref.name, ref.factor, tokens, coords, strength, (lf, lh, lw))


def latent_grid(num_frames: int, width: int, height: int, factor: int = 1,
                spatial: int = 32, temporal: int = 8) -> tuple[int, int, int]:
    """(latent frames, latent rows, latent cols) of a canvas of this size at `factor`."""
    return (num_frames - 1) // temporal + 1, height // factor // spatial, width // factor // spatial
