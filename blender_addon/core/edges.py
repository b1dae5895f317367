"""The `edges` canvas: white lines on black where the scene has edges, computed from render passes.

Lightricks' workflows feed the Canny IC-LoRA a Canny edge map of the video (ComfyUI's `Canny` node,
thresholds 0.4/0.8, in example_workflows/2.0/LTX-2_ICLoRA_All_Distilled.json; comfyui_controlnet_aux
`CannyEdgePreprocessor` 92/200 at 512 px in 2.3/LTX-2.3_ICLoRA_Union_Control_Distilled.json): thin
(1 px) white lines on black at a 512 px smaller side. In a blockout the edges worth following are
the geometric ones, and Blender knows them exactly, so instead of estimating them from pixels:

- silhouettes: between two neighbouring pixels that show different objects (object index, or
  surface vs. nothing) or a depth discontinuity on one object. A discontinuity is a depth that
  neither pixel's tangent plane predicts: the plane through pixel p (its camera-space point and
  normal) meets q's view ray at z_pred; |z_q - z_pred| / z_q > DEPTH_TOLERANCE from both sides.
  Tilted planes and creases are continuous under this test, an arm in front of a torso is not.
  The line goes on the nearer pixel (the outline of the object in front, like Canny's on a photo).
- creases: between two pixels of a surface whose normals differ by more than `crease_angle`
  (default 30 degrees, Blender's own "smooth by angle" default); the line goes on the top/left pixel.

Only right and down neighbours are compared, so every edge gives a 1 px line. Width follows
Canny at 512 px: at a smaller side s, a line covers s / 512 px: below 512 px it stays 1 px at
intensity round(255 * s / 512) (the area a 1 px line at 512 px keeps after downscaling), above it
is widened to round(s / 512) px at 255.
"""

from __future__ import annotations

import numpy as np

from .camera_projection import Intrinsics
from .depth import BACKGROUND_DEPTH

REFERENCE_SIDE = 512  # px: Canny draws 1 px lines at this smaller image side
CREASE_ANGLE = 30.0  # degrees
DEPTH_TOLERANCE = 0.02  # relative depth error of the tangent-plane prediction that counts as a jump


def _rays(intrinsics: Intrinsics, height: int, width: int) -> np.ndarray:
    """(H, W, 3) view rays with z = 1 through pixel centres, OpenCV camera axes."""
    u = (np.arange(width) + 0.5 - intrinsics.cx) / intrinsics.fx
    v = (np.arange(height) + 0.5 - intrinsics.cy) / intrinsics.fy
    rays = np.ones((height, width, 3))
    rays[:, :, 0] = u[None, :]
    rays[:, :, 1] = v[:, None]
    return rays


def _plane_miss(z_p, n_p, r_p, z_q, r_q) -> np.ndarray:
    """Relative error of predicting z_q from p's tangent plane (inf where the plane is edge-on to q's ray)."""
    denom = np.einsum("...k,...k->...", n_p, r_q)
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.einsum("...k,...k->...", n_p, r_p) * z_p  # n . P_p
        z_pred = offset / denom
        miss = np.abs(z_q - z_pred) / z_q
    return np.where(np.abs(denom) > 1e-9, miss, np.inf)


def edge_lines(depth: np.ndarray, normals: np.ndarray, intrinsics: Intrinsics,
               object_ids: np.ndarray | None = None, crease_angle: float = CREASE_ANGLE) -> np.ndarray:
    """(H, W) bool: True on the pixels that carry a silhouette or crease line (see module doc).

    depth: (H, W) planar camera Z in metres (>= 1e9 where nothing was hit); normals: (H, W, 3) unit
    camera-space normals (any handedness, used for angles and tangent planes); intrinsics: of this
    H x W image; object_ids: (H, W) ints, one per object (None: every surface is one object).
    """
    depth = np.asarray(depth, dtype=np.float64)
    normals = np.asarray(normals, dtype=np.float64)
    h, w = depth.shape
    if normals.shape != (h, w, 3):
        raise ValueError(f"normals must be (H, W, 3) = {(h, w, 3)} to match depth (got {normals.shape})")
    if (intrinsics.width, intrinsics.height) != (w, h):
        raise ValueError(f"intrinsics are for {intrinsics.width}x{intrinsics.height}, depth is {w}x{h}; "
                         "scale them with Intrinsics.scaled(width, height)")
    with np.errstate(invalid="ignore"):
        surface = np.isfinite(depth) & (depth > 0) & (depth < BACKGROUND_DEPTH)
    ids = surface.astype(np.int64) if object_ids is None else np.where(surface, np.asarray(object_ids), -1)
    if ids.shape != (h, w):
        raise ValueError(f"object_ids must be (H, W) = {(h, w)} (got {ids.shape})")
    rays = _rays(intrinsics, h, w)
    cos_crease = np.cos(np.radians(crease_angle))
    lines = np.zeros((h, w), dtype=bool)
    # (p, q) = (this pixel, its right neighbour), then (this pixel, the one below)
    for p, q in (((slice(None), slice(0, -1)), (slice(None), slice(1, None))),
                 ((slice(0, -1), slice(None)), (slice(1, None), slice(None)))):
        both = surface[p] & surface[q]
        z_p, z_q = np.where(surface[p], depth[p], np.inf), np.where(surface[q], depth[q], np.inf)
        jump = both & (np.minimum(_plane_miss(z_p, normals[p], rays[p], z_q, rays[q]),
                                  _plane_miss(z_q, normals[q], rays[q], z_p, rays[p])) > DEPTH_TOLERANCE)
        silhouette = (ids[p] != ids[q]) | jump
        crease = both & ~silhouette & (np.einsum("...k,...k->...", normals[p], normals[q]) < cos_crease)
        near_p = z_p <= z_q
        lines[p] |= (silhouette & near_p) | crease
        lines[q] |= silhouette & ~near_p
    return lines


def line_canvas(lines: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 white-on-black canvas of a line mask, width matched to Canny at 512 px."""
    lines = np.asarray(lines, dtype=bool)
    h, w = lines.shape
    scale = min(h, w) / REFERENCE_SIDE
    if scale < 1.0:
        grey = np.where(lines, np.uint8(round(255 * scale)), np.uint8(0))
    else:
        k = int(round(scale))
        wide = np.zeros_like(lines)
        for dy in range(-(k // 2), k - k // 2):  # a k x k box around each line pixel
            for dx in range(-(k // 2), k - k // 2):
                wide[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
                    lines[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        grey = np.where(wide, np.uint8(255), np.uint8(0))
    return np.repeat(grey[:, :, None], 3, axis=2)


def edges_canvas(depth: np.ndarray, normals: np.ndarray, intrinsics: Intrinsics,
                 object_ids: np.ndarray | None = None, crease_angle: float = CREASE_ANGLE) -> np.ndarray:
    """(H, W, 3) uint8: silhouettes and creases as white lines on black (arguments: edge_lines)."""
    return line_canvas(edge_lines(depth, normals, intrinsics, object_ids, crease_angle))
