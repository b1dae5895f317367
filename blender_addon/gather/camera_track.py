"""The scene camera at the current frame -> intrinsics, world-to-camera and the bundle's frame entry."""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from ..core.camera_projection import Intrinsics, intrinsics_from_blender, world_to_camera_opencv


@dataclass
class CameraSample:
    """One frame of the camera track, intrinsics in pixels of the output (width, height)."""

    intrinsics: Intrinsics
    world_to_camera: np.ndarray  # (4, 4) OpenCV axes, metres, no scale
    camera_to_world: np.ndarray  # (4, 4) Blender matrix_world (may carry scale)
    lens_mm: float
    sensor_width_mm: float
    sensor_height_mm: float
    sensor_fit: str
    clip_start: float
    clip_end: float

    def frame_entry(self, frame: int) -> dict:
        """docs/shot-bundle.md frames[i] (without the optional strength)."""
        return {
            "frame": int(frame),
            "intrinsics": self.intrinsics.as_dict(),
            "world_to_camera": [[float(v) for v in row] for row in self.world_to_camera],
            "lens_mm": float(self.lens_mm),
            "sensor_width_mm": float(self.sensor_width_mm),
            "sensor_height_mm": float(self.sensor_height_mm),
            "sensor_fit": self.sensor_fit,
            "clip_start": float(self.clip_start),
            "clip_end": float(self.clip_end),
        }


def sample_camera(scene: bpy.types.Scene, width: int, height: int,
                  depsgraph: bpy.types.Depsgraph | None = None) -> CameraSample:
    """Read the active camera at the scene's current frame for an image of width x height px.

    Uses the evaluated camera (constraints, parents, drivers, animated lens) and the scene's
    pixel aspect; resolution percentage is taken as 100 % of the given size.
    """
    cam = scene.camera
    if cam is None:
        raise ValueError(f"scene {scene.name!r} has no active camera; set one in Scene Properties > Camera")
    if cam.type != "CAMERA":
        raise ValueError(f"the scene camera {cam.name!r} is a {cam.type.lower()}, not a camera object")
    if depsgraph is not None:
        cam = cam.evaluated_get(depsgraph)
    data = cam.data
    if data.type != "PERSP":
        raise ValueError(f"camera {cam.name!r} is {data.type.lower()}; only perspective cameras are supported "
                         "(Camera Properties > Lens > Type: Perspective)")
    render = scene.render
    intrinsics = intrinsics_from_blender(
        data.lens, data.sensor_width, data.sensor_height, data.sensor_fit, data.shift_x, data.shift_y,
        width, height, 100, render.pixel_aspect_x, render.pixel_aspect_y)
    c2w = np.array(cam.matrix_world, dtype=np.float64)
    return CameraSample(intrinsics, world_to_camera_opencv(c2w), c2w, data.lens, data.sensor_width,
                        data.sensor_height, data.sensor_fit, data.clip_start, data.clip_end)
