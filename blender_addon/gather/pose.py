"""Armature pose at the current frame -> OpenPose COCO-18 keypoints in canvas pixels."""

from __future__ import annotations

from collections.abc import Mapping

import bpy
import numpy as np

from ..core.camera import Intrinsics, project_points
from ..core.openpose import coco18_world_joints, keypoints_from_projection

# A joint is hidden when the rendered surface at its pixel is nearer than the joint by more than
# this fraction of its depth (joints sit inside the body, so allow the body's own thickness).
OCCLUSION_TOLERANCE = 0.08


def bone_world_points(armature: bpy.types.Object, depsgraph: bpy.types.Depsgraph
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """World-space bone heads and tails (metres) of the evaluated pose: ({bone: (3,)}, {bone: (3,)})."""
    evaluated = armature.evaluated_get(depsgraph)
    m = np.array(evaluated.matrix_world, dtype=np.float64)
    heads, tails = {}, {}
    for pb in evaluated.pose.bones:
        h = m @ np.array([*pb.head, 1.0])
        t = m @ np.array([*pb.tail, 1.0])
        heads[pb.name], tails[pb.name] = h[:3], t[:3]
    return heads, tails


def armature_keypoints(armature: bpy.types.Object, depsgraph: bpy.types.Depsgraph, intrinsics: Intrinsics,
                       world_to_camera: np.ndarray, bone_map: Mapping[str, str] | None = None,
                       depth: np.ndarray | None = None) -> np.ndarray:
    """(18, 3) [x, y, confidence] keypoints in pixels of `intrinsics` (its width x height).

    Confidence 0 for joints missing from the rig, behind the camera, outside the frame, or, when
    `depth` (H, W metres, same size as intrinsics) is given, hidden behind a nearer surface.
    """
    heads, tails = bone_world_points(armature, depsgraph)
    joints = coco18_world_joints(heads, tails, manual_map=bone_map or None)
    xy, z = project_points(joints, intrinsics, world_to_camera)
    keypoints = keypoints_from_projection(xy, z, intrinsics.width, intrinsics.height)
    if depth is not None:
        hide_occluded(keypoints, z, depth)
    return keypoints


def hide_occluded(keypoints: np.ndarray, joint_z: np.ndarray, depth: np.ndarray,
                  tolerance: float = OCCLUSION_TOLERANCE) -> None:
    """Zero (in place) visible keypoints whose pixel in `depth` shows a surface clearly in front."""
    h, w = depth.shape
    for i in np.flatnonzero(keypoints[:, 2] > 0):
        col = min(int(keypoints[i, 0]), w - 1)
        row = min(int(keypoints[i, 1]), h - 1)
        if depth[row, col] < joint_z[i] * (1.0 - tolerance):
            keypoints[i] = 0.0
