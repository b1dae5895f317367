"""Armature pose at the current frame -> OpenPose keypoints in canvas pixels: COCO-18 body, and
for the pose canvas the 21-point hands and (only from landmark bones) the 68-point face."""

from __future__ import annotations

from collections.abc import Mapping

import bpy
import numpy as np

from ..core.camera_projection import Intrinsics, project_points
from ..core.hand_face import face_world_points, hand_world_points
from ..core.openpose import COCO18_NAMES, coco18_world_joints, keypoints_from_projection
from ..core.openpose_json import Person

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


def _project(points: np.ndarray, intrinsics: Intrinsics, world_to_camera: np.ndarray,
             depth: np.ndarray | None) -> np.ndarray:
    xy, z = project_points(points, intrinsics, world_to_camera)
    keypoints = keypoints_from_projection(xy, z, intrinsics.width, intrinsics.height)
    if depth is not None:
        hide_occluded(keypoints, z, depth)
    return keypoints


def armature_person(armature: bpy.types.Object, depsgraph: bpy.types.Depsgraph, intrinsics: Intrinsics,
                    world_to_camera: np.ndarray, bone_map: Mapping[str, str] | None = None,
                    depth: np.ndarray | None = None, hands: bool = True, face: bool = True) -> Person:
    """Body (as armature_keypoints), plus hands from finger bones and a face from landmark bones
    when asked for and the rig has them (else None; core.hand_face.hand_face_warnings says why).
    Every point gets the same visibility rules (in front, inside the frame, not occluded)."""
    heads, tails = bone_world_points(armature, depsgraph)
    joints = coco18_world_joints(heads, tails, manual_map=bone_map or None)
    body = _project(joints, intrinsics, world_to_camera, depth)
    hand_points = face_points = None
    if hands:
        wrists = joints[[COCO18_NAMES.index("l_wrist"), COCO18_NAMES.index("r_wrist")]]
        world = hand_world_points(heads, tails, wrists, manual_map=bone_map or None)
        if world is not None:
            hand_points = _project(world.reshape(-1, 3), intrinsics, world_to_camera, depth).reshape(2, 21, 3)
    if face:
        world = face_world_points(heads, tails, manual_map=bone_map or None)
        if world is not None:
            face_points = _project(world, intrinsics, world_to_camera, depth)
    return Person(body, hand_points, face_points)


def hide_occluded(keypoints: np.ndarray, joint_z: np.ndarray, depth: np.ndarray,
                  tolerance: float = OCCLUSION_TOLERANCE) -> None:
    """Zero (in place) visible keypoints whose pixel in `depth` shows a surface clearly in front."""
    h, w = depth.shape
    for i in np.flatnonzero(keypoints[:, 2] > 0):
        col = min(int(keypoints[i, 0]), w - 1)
        row = min(int(keypoints[i, 1]), h - 1)
        if depth[row, col] < joint_z[i] * (1.0 - tolerance):
            keypoints[i] = 0.0
