"""The `pose` canvas: a DWPose drawing of people on black (body, hands, face), pure numpy.

Rules, as DWPose's drawing code draws them (comfyui_controlnet_aux, the node Lightricks' IC-LoRA
workflows use: `DWPreprocessor` in ComfyUI-LTXVideo example_workflows/2.0/LTX-2_ICLoRA_All_Distilled.json
and 2.3/LTX-2.3_ICLoRA_Union_Control_Distilled.json; drawing in
src/custom_controlnet_aux/dwpose/util.py and dwpose/__init__.py `draw_poses`), sizes at 512 px:
- body (util.py:82-149): 17 limbs as filled ellipses of half-width 4 in the OpenPose colour x 0.6
  (truncated), then the 18 joints as discs of radius 4 in the full colour (core.openpose);
- hands (util.py:152-200): the 20 hand edges as lines of OpenCV thickness 2 (3 px across), edge i in the HSV colour
  (i / 20, 1, 1) x 255 (matplotlib's hsv_to_rgb, rounded as OpenCV rounds a colour), then the 21
  points as discs of radius 4 in blue (0, 0, 255);
- face (util.py:203-235): 68 white discs of radius 3;
- order per person: body, left hand, right hand, face (`draw_poses`).
Sizes scale with the smaller image side / 512 (DWPose draws at its 512 px detect resolution and the
canvas is resized afterwards). A point is drawn when its confidence is > 0; a line or limb when
both its ends are. Coordinates are continuous pixels (centres at +0.5), not truncated to integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .hand_face import HAND_EDGES
from .openpose import _fill_disc, draw_skeleton
from .openpose_json import Person, as_person

REFERENCE_SIDE = 512  # px: the sizes below are DWPose's at this smaller image side
HAND_LINE_WIDTH, HAND_DOT_RADIUS, FACE_DOT_RADIUS = 2, 4, 3
HAND_DOT_COLOR = np.array([0, 0, 255], dtype=np.uint8)
FACE_DOT_COLOR = np.array([255, 255, 255], dtype=np.uint8)


def _hsv_rainbow(n: int) -> np.ndarray:
    """(n, 3) uint8: HSV (i / n, 1, 1) to RGB x 255, in the arithmetic order of matplotlib's
    hsv_to_rgb (so values like 76.5 round the same way), rounded half to even like OpenCV."""
    h = np.arange(n, dtype=np.float64) / float(n)
    i = (h * 6.0).astype(int)
    f = h * 6.0 - i
    p, q, t, v = np.zeros(n), 1.0 - 1.0 * f, 1.0 - 1.0 * (1.0 - f), np.ones(n)
    sector = i % 6
    rgb = np.select([sector[:, None] == k for k in range(6)],
                    [np.stack(c, axis=1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return np.rint(rgb * 255).astype(np.uint8)


HAND_EDGE_COLORS = _hsv_rainbow(len(HAND_EDGES))  # (20, 3) RGB


def hand_face_sizes(width: int, height: int) -> tuple[float, int, int]:
    """(hand line half-width, hand dot radius, face dot radius) in pixels for a width x height
    canvas: 1.5, 4 and 3 at a smaller side of 512 px, scaled.

    The line is OpenCV's `thickness` 2 scaled (at least 1); OpenCV paints a thickness-t line
    (t >= 2) t + 1 px wide across (3 px for t = 2, checked with opencv 4.11) and a thickness-1 line
    1 px wide, so the half-width is (t + 1) / 2, or 0.5 for t = 1.
    """
    scale = min(width, height) / REFERENCE_SIDE
    thickness = max(1, int(round(HAND_LINE_WIDTH * scale)))
    half = 0.5 if thickness == 1 else (thickness + 1) / 2.0
    return half, max(1, int(round(HAND_DOT_RADIUS * scale))), max(1, int(round(FACE_DOT_RADIUS * scale)))


def _fill_capsule(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, radius: float, color) -> None:
    """Pixels whose centre is within `radius` of the segment p0-p1 (a line with round caps)."""
    h, w = canvas.shape[:2]
    x0, x1 = max(int(np.floor(min(p0[0], p1[0]) - radius)), 0), min(int(np.ceil(max(p0[0], p1[0]) + radius)), w)
    y0, y1 = max(int(np.floor(min(p0[1], p1[1]) - radius)), 0), min(int(np.ceil(max(p0[1], p1[1]) + radius)), h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    px, py = xs + 0.5 - p0[0], ys + 0.5 - p0[1]
    d = p1 - p0
    length2 = float(d @ d)
    t = np.clip((px * d[0] + py * d[1]) / length2, 0.0, 1.0) if length2 > 1e-12 else np.zeros_like(px)
    dist2 = (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2
    canvas[y0:y1, x0:x1][dist2 <= radius * radius] = color


def _seen(points: np.ndarray) -> np.ndarray:
    return np.isfinite(points).all(axis=1) & (points[:, 2] > 0)


def draw_hand(canvas: np.ndarray, hand: np.ndarray) -> None:
    """Draw one hand, (21, 3) [x, y, confidence] in OpenPose hand order, on an (H, W, 3) uint8 canvas."""
    half, dot, _ = hand_face_sizes(canvas.shape[1], canvas.shape[0])
    seen = _seen(hand)
    for (i, j), color in zip(HAND_EDGES, HAND_EDGE_COLORS, strict=True):
        if seen[i] and seen[j]:
            _fill_capsule(canvas, hand[i, :2], hand[j, :2], half, color)
    for i in np.flatnonzero(seen):
        _fill_disc(canvas, hand[i, :2], dot, HAND_DOT_COLOR)


def draw_face(canvas: np.ndarray, face: np.ndarray) -> None:
    """Draw the 68 face landmarks, (68, 3) [x, y, confidence], as white dots."""
    _, _, dot = hand_face_sizes(canvas.shape[1], canvas.shape[0])
    for i in np.flatnonzero(_seen(face)):
        _fill_disc(canvas, face[i, :2], dot, FACE_DOT_COLOR)


def draw_person(canvas: np.ndarray, person: Person | np.ndarray, hands: bool = True, face: bool = True) -> None:
    """Body, then left and right hand, then face (each when present and switched on), in place."""
    person = as_person(person)
    draw_skeleton(canvas, person.body)
    if hands and person.hands is not None:
        draw_hand(canvas, person.hands[0])
        draw_hand(canvas, person.hands[1])
    if face and person.face is not None:
        draw_face(canvas, person.face)


def pose_canvas(people: Sequence[Person | np.ndarray], width: int, height: int, hands: bool = True,
                face: bool = True) -> np.ndarray:
    """(height, width, 3) uint8: the DWPose drawing of every person on black."""
    canvas = np.zeros((int(height), int(width), 3), dtype=np.uint8)
    for person in people:
        draw_person(canvas, person, hands=hands, face=face)
    return canvas
