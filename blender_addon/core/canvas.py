"""The control canvas: masked inverse depth in grey with OpenPose skeletons drawn on top.

Encoding (docs/shot-bundle.md): v = (1/z - 1/far) / (1/near - 1/far) in [0, 1], written to all
three channels as round(255 * v); black outside the target mask; COCO-18 skeletons over it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .depth import inverse_depth
from .openpose import draw_skeleton


def depth_canvas(depth: np.ndarray, mask: np.ndarray, near: float, far: float) -> np.ndarray:
    """(H, W, 3) uint8 grey canvas of the masked inverse depth (no pose)."""
    grey = np.round(inverse_depth(depth, mask, near, far) * 255.0).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def compose_control(
    depth: np.ndarray,
    mask: np.ndarray,
    near: float,
    far: float,
    people: Sequence[np.ndarray] = (),
    limb_width: int | None = None,
) -> np.ndarray:
    """Control canvas (H, W, 3) uint8 for one frame.

    depth: (H, W) planar Z in metres; mask: (H, W) bool, True on the chosen targets; near/far:
    the shot's one depth range; people: (18, 3) OpenPose keypoints [x, y, confidence] in pixels
    of this canvas. limb_width: see openpose.draw_skeleton (None = scaled with the image).
    """
    canvas = depth_canvas(depth, mask, near, far)
    for person in people:
        draw_skeleton(canvas, person, limb_width=limb_width)
    return canvas


def _check_factor(shape: tuple[int, ...], factor: int) -> None:
    if int(factor) != factor or factor < 1:
        raise ValueError(f"downscale factor must be a whole number >= 1 (got {factor})")
    h, w = shape[:2]
    if h % factor or w % factor:
        raise ValueError(
            f"canvas {w}x{h} is not divisible by the reference downscale factor {factor}; "
            f"use a width and height that are multiples of {factor} (the server wants multiples of 32)"
        )


def downscale_canvas(canvas: np.ndarray, factor: int) -> np.ndarray:
    """Area-average a (H, W) or (H, W, C) uint8 canvas by an integer factor (small-to-large grid).

    Each output pixel is the rounded mean of a factor x factor block; H and W must divide.
    """
    canvas = np.asarray(canvas)
    _check_factor(canvas.shape, factor)
    factor = int(factor)
    if factor == 1:
        return canvas.copy()
    h, w = canvas.shape[:2]
    blocks = canvas.reshape(h // factor, factor, w // factor, factor, *canvas.shape[2:])
    mean = blocks.astype(np.float64).mean(axis=(1, 3))
    return np.round(mean).astype(canvas.dtype)


def downscale_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """Downscale a (H, W) bool mask: a block is inside when at least half its pixels are."""
    mask = np.asarray(mask, dtype=bool)
    _check_factor(mask.shape, factor)
    factor = int(factor)
    h, w = mask.shape
    return mask.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3)) >= 0.5
