"""A tiny numpy ray caster for boxes, to give the pure canvas tests exact depth/normal/id passes.

Camera at the origin, OpenCV axes (x right, y down, z forward); a pixel's ray goes through its
centre (+0.5). Returns what Cycles' passes hold: planar Z (1e10 where nothing is hit), unit
normals facing the camera (0 on background) and the index of the box hit (1-based, 0 = nothing).
"""

from __future__ import annotations

import numpy as np

from blender_addon.core.camera_projection import Intrinsics


def rotation(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return z @ y @ x


def cast_boxes(k: Intrinsics, boxes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """boxes: [(centre (3,), half sizes (3,), rotation 3x3 box->camera)]. Returns depth (H, W),
    normals (H, W, 3), ids (H, W) int."""
    h, w = k.height, k.width
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u)], axis=-1)  # z = 1
    depth = np.full((h, w), 1e10)
    normals = np.zeros((h, w, 3))
    ids = np.zeros((h, w), dtype=np.int64)
    for index, (centre, half, rot) in enumerate(boxes, start=1):
        o = rot.T @ (-np.asarray(centre, dtype=float))  # camera origin in box space
        d = rays @ rot  # ray directions in box space (row vectors times R == R^T d)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / d
            t2 = (half - o) / d
        t_near = np.minimum(t1, t2)
        t_far = np.maximum(t1, t2)
        t_enter = t_near.max(axis=-1)
        axis = t_near.argmax(axis=-1)
        hit = (t_enter <= t_far.min(axis=-1)) & (t_enter > 0)
        closer = hit & (t_enter < depth)  # t is planar z because the rays have z = 1
        n_box = np.zeros((h, w, 3))
        np.put_along_axis(n_box, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
        depth[closer] = t_enter[closer]
        normals[closer] = (n_box @ rot.T)[closer]
        ids[closer] = index
    return depth, normals, ids
