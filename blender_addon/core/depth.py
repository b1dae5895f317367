"""Depth range and inverse-depth encoding for the control canvas.

Depth is Blender's planar camera-space Z in metres (not ray distance); background pixels hold
1e10. The whole shot uses ONE near/far range so the canvas does not flicker from frame to frame
(docs/shot-bundle.md: `v = (1/z - 1/far) / (1/near - 1/far)`, near = bright).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Blender writes 1e10 where no surface was hit; anything this far is "nothing there".
BACKGROUND_DEPTH = 1e9


def _visible(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pixels inside the mask that hold a real surface (finite, in front of the camera, not background)."""
    with np.errstate(invalid="ignore"):
        return mask & np.isfinite(depth) & (depth > 0) & (depth < BACKGROUND_DEPTH)


def _check_pair(depth: np.ndarray, mask: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    depth = np.asarray(depth, dtype=np.float64)
    mask = np.asarray(mask)
    if depth.ndim != 2:
        raise ValueError(f"{where}: depth must be a 2-D (H, W) array of metres (got shape {depth.shape})")
    if mask.shape != depth.shape:
        raise ValueError(f"{where}: mask shape {mask.shape} must match depth shape {depth.shape}")
    return depth, mask.astype(bool)


def shot_depth_range(
    depths: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    pad: float = 0.02,
    far_level: float = 0.0,
) -> tuple[float, float]:
    """(near, far) in metres for the masked, visible pixels of every frame of a shot.

    near = nearest target depth * (1 - pad), so the nearest pixel is just below pure white.
    far_level=0 (default): far = farthest depth * (1 + pad), so the farthest target encodes
    near black. far_level > 0 (recommended 0.1 ~ 26/255) chooses far so the farthest target
    encodes to that level instead: a far target then stays distinguishable from the black,
    masked-out background (the model's to invent). far is capped at 100x the farthest depth
    when the range is too deep for the level (the farthest target then encodes lower).
    Frames with an empty mask are fine; a shot where nothing is visible in any frame is an error.
    """
    if len(depths) != len(masks):
        raise ValueError(f"need one mask per depth frame (got {len(depths)} depths, {len(masks)} masks)")
    if not 0 <= pad < 1:
        raise ValueError(f"pad must be in [0, 1) (got {pad}); 0.02 adds 2% on each side")
    if not 0 <= far_level < 1:
        raise ValueError(f"far_level must be in [0, 1) (got {far_level}); 0.1 keeps far targets visible, 0 disables")
    near, far = np.inf, -np.inf
    for i, (depth, mask) in enumerate(zip(depths, masks, strict=True)):
        depth, mask = _check_pair(depth, mask, f"frame {i}")
        values = depth[_visible(depth, mask)]
        if values.size:
            near = min(near, float(values.min()))
            far = max(far, float(values.max()))
    if not np.isfinite(near):
        raise ValueError(
            f"no target pixel is visible in any of the {len(depths)} frames: check that the chosen "
            "collections are in front of the camera and inside its clip range"
        )
    farthest = far
    near = near * (1.0 - pad)
    if far_level > 0:
        # solve v(farthest) = far_level for 1/far in v = (1/z - 1/far) / (1/near - 1/far)
        inv_far = (1.0 / farthest - far_level / near) / (1.0 - far_level)
        far = 1.0 / max(inv_far, 1.0 / (100.0 * farthest))
    else:
        far = farthest * (1.0 + pad)
    if far <= near:  # flat target with pad=0: keep the formula finite
        far = near * (1.0 + 1e-6) + 1e-9
    return near, far


def inverse_depth(depth: np.ndarray, mask: np.ndarray, near: float, far: float) -> np.ndarray:
    """Normalised inverse depth, float32 (H, W) in [0, 1]: 1 at `near`, 0 at `far` and beyond.

    0 outside the mask and where there is no surface (background, NaN, z <= 0).
    """
    if not (np.isfinite(near) and np.isfinite(far) and 0 < near < far):
        raise ValueError(f"depth range must satisfy 0 < near < far (got near={near}, far={far})")
    depth, mask = _check_pair(depth, mask, "inverse_depth")
    visible = _visible(depth, mask)
    out = np.zeros(depth.shape, dtype=np.float32)
    z = depth[visible]
    v = (1.0 / z - 1.0 / far) / (1.0 / near - 1.0 / far)
    out[visible] = np.clip(v, 0.0, 1.0)
    return out
