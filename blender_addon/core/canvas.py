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
