"""Per-token control strength for reference (parallel canvas) tokens, pure numpy.

Strength m in [0, 1] becomes an additive attention bias log(m) on target <-> reference
attention (AVControl / ltx-core), so m multiplies how much the target attends to that token.
The user's controls combine into one number per reference token, as Lightricks' ltx-pipelines
(IC-LoRA `conditioning_attention_mask` x `conditioning_attention_strength`) computes it:

- global `strength` (one number),
- temporal `frame_strength` (one value per output frame, the keyframed curve),
- regional `masks` (bool (H, W) per output frame, True = artist's chosen targets).

Each output frame p is a weight image w_p = frame_strength[p] * mask_p (1 everywhere without
masks); a token's strength is `strength` x the mean over its latent frame's pixel frames of w_p
area-averaged onto the token's cell. Outside the masks there is nothing (0), as in ltx-pipelines.
Beyond the reference, `background_strength` b (unset = the reference's 0) gives the outside its
own strength: w_p = frame_strength[p] * (mask_p * strength + (1 - mask_p) * b), token = mean of w_p.

Time: LTX-2's VAE compresses 8 frames into one latent frame, the first frame alone: latent frame
0 <- pixel frame 0, latent frame k >= 1 <- pixel frames 8k-7 .. 8k. A reference read at a
`temporal_scale` S (LoRA metadata `reference_temporal_scale_factor`, ltx-core 1.2+) keeps every
S-th frame, so its latent frame k >= 1 covers pixel frames 8S(k-1)+1 .. 8Sk. A curve that is 0 on
one frame of 8 weakens its latent frame by 1/8; a latent frame is 0 only when all its frames are.

Space: "area" averaging as torch's `interpolate(mode="area")` (adaptive average pooling): cell i
of n over L pixels averages pixels floor(i L / n) .. ceil((i + 1) L / n) - 1.

Token order: frame-major, then row, then column (LTX-2's patchified sequence order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TEMPORAL_COMPRESSION = 8


def latent_frame_count(num_frames: int, temporal_scale: int = 1) -> int:
    """Latent frames for num_frames pixel frames (8k+1 -> k+1; read every S-th frame: 8Sk+1 -> k+1)."""
    return (num_frames - 1) // (TEMPORAL_COMPRESSION * temporal_scale) + 1


def pixel_frames_of(latent_frame: int, temporal_scale: int = 1) -> range:
    """The output frames a latent frame stands for: 0 -> [0], k -> [8S(k-1)+1 .. 8Sk]."""
    if latent_frame == 0:
        return range(0, 1)
    span = TEMPORAL_COMPRESSION * temporal_scale
    return range(span * (latent_frame - 1) + 1, span * latent_frame + 1)


def needs_strength_map(strength: float = 1.0, frame_strength: Sequence[float] | None = None,
                       masks: Sequence[np.ndarray] | None = None) -> bool:
    """Whether a control gets an attention strength map at all. ltx-pipelines wraps a reference in
    ConditioningItemAttentionStrengthWrapper when it has a mask or a strength below 1 (a per-frame
    curve is a mask video); without one, every token, other references included, reads it fully."""
    return masks is not None or frame_strength is not None or float(strength) < 1.0


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
                             background_strength: float | None = None, temporal_scale: int = 1) -> np.ndarray:
    """Strength m per reference token, shape (latent_frames * latent_h * latent_w,) float32.

    num_frames: output frames (8k+1); latent_frames must be latent_frame_count(num_frames, temporal_scale).
    latent_h, latent_w: the reference's latent grid (reference pixels / 32).
    strength, frame_strength, masks, background_strength, temporal_scale: see the module docstring;
    values in [0, 1]; masks are bool (H, W), any size (area-averaged onto the latent grid).
    Token order: frame-major, then row, then column.
    """
    validate_strength(num_frames, strength, frame_strength, masks, background_strength)
    expected = latent_frame_count(num_frames, temporal_scale)
    if latent_frames != expected:
        raise ValueError(f"latent_frames must be (num_frames - 1) // {TEMPORAL_COMPRESSION * temporal_scale} + 1 = "
                         f"{expected} for {num_frames} frames (got {latent_frames})")
    for name, value in (("latent_h", latent_h), ("latent_w", latent_w)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer (got {value!r})")

    curve = np.ones(num_frames) if frame_strength is None else np.asarray(frame_strength, dtype=np.float64)
    tokens = np.zeros((latent_frames, latent_h, latent_w))
    for k in range(latent_frames):
        frames = list(pixel_frames_of(k, temporal_scale))
        if masks is None:
            tokens[k] = float(strength) * curve[frames].mean()
            continue
        # Coverage of each cell, one latent frame's pixel frames weighted by the curve, then averaged.
        covered = np.mean([curve[p] * area_average(np.asarray(masks[p]), latent_h, latent_w) for p in frames], axis=0)
        if background_strength is None:
            tokens[k] = float(strength) * covered
        else:
            weight = np.mean([curve[p] for p in frames])
            tokens[k] = float(strength) * covered + float(background_strength) * (weight - covered)
    return tokens.reshape(-1).astype(np.float32)


def area_average(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean of a (H, W) mask over each cell of a rows x cols grid, as torch's interpolate(mode="area").

    Cell i spans pixels floor(i H / rows) .. ceil((i + 1) H / rows) - 1 (adaptive average pooling):
    when the sizes divide evenly that is the exact box average.
    """
    height, width = mask.shape
    return _pooling(rows, height) @ mask.astype(np.float64) @ _pooling(cols, width).T


def _pooling(cells: int, pixels: int) -> np.ndarray:
    """(cells, pixels) averaging weights of adaptive average pooling."""
    weights = np.zeros((cells, pixels))
    for i in range(cells):
        lo, hi = (i * pixels) // cells, -(-((i + 1) * pixels) // cells)
        weights[i, lo:hi] = 1.0 / (hi - lo)
    return weights
