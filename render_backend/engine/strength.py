"""Per-token control strength for reference (parallel canvas) tokens, pure numpy.

Strength m in [0, 1] becomes an additive attention bias log(m) on target -> reference
attention (AVControl / ltx-core), so m multiplies how much the target attends to that token.
Three user controls combine into one number per reference token:

- global `strength` (one number),
- temporal `frame_strength` (one value per output frame, the keyframed curve),
- regional: `masks` (bool (H, W) per output frame, True = artist's chosen targets) with
  `background_strength` outside them.

Per token:  m = temporal * (coverage * strength + (1 - coverage) * background)
where coverage is the fraction of the token's pixel patch inside the mask, and background
defaults to `strength` (masks then change nothing).

Time: LTX-2's VAE compresses 8 frames into one latent frame, with the first frame alone:
latent frame 0 <- pixel frame 0, latent frame k >= 1 <- pixel frames 8k-7 .. 8k.
- temporal = MEAN of frame_strength over the latent frame's pixel frames: a latent token
  carries all 8 frames, so a curve that is 0 on one frame of 8 weakens it by 1/8 rather than
  switching it off; a latent frame is 0 only when all of its frames are 0.
- coverage uses the UNION (pixel-wise OR) of the latent frame's masks, then the area average
  onto the latent grid: a target that moves through a token during those frames keeps control.

Token order: frame-major, then row, then column (LTX-2's patchified sequence order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TEMPORAL_COMPRESSION = 8


def latent_frame_count(num_frames: int) -> int:
    """Latent frames for num_frames pixel frames (8k+1 -> k+1)."""
    return (num_frames - 1) // TEMPORAL_COMPRESSION + 1


def pixel_frames_of(latent_frame: int) -> range:
    """The pixel frames a latent frame encodes: 0 -> [0], k -> [8k-7 .. 8k]."""
    if latent_frame == 0:
        return range(0, 1)
    return range(TEMPORAL_COMPRESSION * latent_frame - (TEMPORAL_COMPRESSION - 1),
                  TEMPORAL_COMPRESSION * latent_frame + 1)


def validate_strength(num_frames: int, strength: float = 1.0, frame_strength: Sequence[float] | None = None,
                      masks: Sequence[np.ndarray] | None = None,
                      background_strength: float | None = None) -> None:
    """Check the user's strength settings; raise ValueError saying what to change.

    Usable by the server's request validation before any GPU work.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer (got {num_frames!r})")
    if (num_frames - 1) % TEMPORAL_COMPRESSION:
        suggestion = (num_frames - 1) // TEMPORAL_COMPRESSION * TEMPORAL_COMPRESSION + 1
        raise ValueError(f"frames must be 8k+1 (got {num_frames}); try {suggestion} or {suggestion + 8}")
    _check_unit("strength", strength)
    if background_strength is not None:
        _check_unit("background_strength", background_strength)
    if frame_strength is not None:
        values = list(frame_strength)
        if len(values) != num_frames:
            raise ValueError(f"frame_strength needs one value per frame: got {len(values)} values for "
                             f"{num_frames} frames")
        for i, value in enumerate(values):
            _check_unit(f"frame_strength[{i}]", value)
    if masks is not None:
        _check_masks(masks, num_frames)


def _check_unit(name: str, value) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1] (got {value!r})") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (got {value!r}); 1 = follow the control fully, "
                         "0 = ignore it")


def _check_masks(masks: Sequence[np.ndarray], num_frames: int) -> None:
    if len(masks) != num_frames:
        raise ValueError(f"masks needs one mask per frame: got {len(masks)} masks for {num_frames} frames")
    first_shape = None
    for i, mask in enumerate(masks):
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"masks[{i}] must be a bool (H, W) array (got dtype {mask.dtype}); "
                             "convert an 8-bit mask with `mask > 127`")
        if mask.ndim != 2 or 0 in mask.shape:
            raise ValueError(f"masks[{i}] must be 2-D (H, W) (got shape {mask.shape})")
        if first_shape is None:
            first_shape = mask.shape
        elif mask.shape != first_shape:
            raise ValueError(f"all masks must have one size: masks[0] is {first_shape[1]}x{first_shape[0]} "
                             f"but masks[{i}] is {mask.shape[1]}x{mask.shape[0]} (width x height)")


def reference_token_strength(num_frames: int, latent_frames: int, latent_h: int, latent_w: int,
                             strength: float = 1.0, frame_strength: Sequence[float] | None = None,
                             masks: Sequence[np.ndarray] | None = None,
                             background_strength: float | None = None) -> np.ndarray:
    """Strength m per reference token, shape (latent_frames * latent_h * latent_w,) float32.

    num_frames: pixel frames of the reference (8k+1); latent_frames must be (num_frames-1)//8+1.
    latent_h, latent_w: the reference's latent grid (reference pixels / 32).
    strength, frame_strength, masks, background_strength: see the module docstring; values in
    [0, 1]; masks are bool (H, W), any size (area-averaged onto the latent grid).
    Token order: frame-major, then row, then column.
    """
    validate_strength(num_frames, strength, frame_strength, masks, background_strength)
    expected = latent_frame_count(num_frames)
    if latent_frames != expected:
        raise ValueError(f"latent_frames must be (num_frames - 1) // 8 + 1 = {expected} for {num_frames} "
                         f"frames (got {latent_frames})")
    for name, value in (("latent_h", latent_h), ("latent_w", latent_w)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer (got {value!r})")

    temporal = np.ones(latent_frames, dtype=np.float64)
    if frame_strength is not None:
        curve = np.asarray(frame_strength, dtype=np.float64)
        temporal = np.array([curve[list(pixel_frames_of(k))].mean() for k in range(latent_frames)])

    background = float(strength) if background_strength is None else float(background_strength)
    if masks is None:
        regional = np.full((latent_frames, latent_h, latent_w), float(strength))
    else:
        coverage = np.stack([
            area_average(np.logical_or.reduce([np.asarray(masks[p]) for p in pixel_frames_of(k)]),
                         latent_h, latent_w)
            for k in range(latent_frames)
        ])  # (latent_frames, latent_h, latent_w) in [0, 1]
        regional = coverage * float(strength) + (1.0 - coverage) * background

    tokens = temporal[:, None, None] * regional
    return tokens.reshape(-1).astype(np.float32)


def area_average(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Fraction of each cell of a rows x cols grid covered by a bool (H, W) mask.

    Exact box integration: cell i spans mask rows [i*H/rows, (i+1)*H/rows), pixels count by
    their overlap, so sizes need not divide evenly.
    """
    height, width = mask.shape
    return _overlap(rows, height) @ mask.astype(np.float64) @ _overlap(cols, width).T


def _overlap(cells: int, pixels: int) -> np.ndarray:
    """(cells, pixels) weights: overlap of pixel p with cell c, divided by the cell's length."""
    cell = pixels / cells
    starts = np.arange(cells)[:, None] * cell
    lo = np.maximum(starts, np.arange(pixels)[None, :])
    hi = np.minimum(starts + cell, np.arange(pixels)[None, :] + 1.0)
    return np.clip(hi - lo, 0.0, None) / cell
