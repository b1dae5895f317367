"""Make one training clip from an open scene: move a camera along the clip's path, export the shot
bundle with the add-on's own exporter (gather/export.py: the canvas exactly as a render exports it),
render the finished frames as the target, and write ltx-trainer's videos.

The path's camera is a temporary object (a copy of the scene camera's lens, sensor, shift and clip
range, keyed on every frame); the scene camera is put back and the temporary one deleted afterwards,
also on error. Layout and index files: core/dataset.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..core.bundle import read_bundle
from ..core.camera_paths import CameraPath, CameraPose, camera_poses
from ..core.dataset import (
    REFERENCE_FILE,
    TARGET_FOLDER,
    TRAJECTORY_BUNDLE_CANVAS,
    TRAJECTORY_KIND,
    VIDEO_FILE,
    ClipPlan,
    write_mp4,
)
from ..core.planning import fps_from_scene
from ..core.png import write_png
from ..shot_bundle import frame_file
from .beauty import BeautyRenderer
from .depth_mask import export_view_layer
from .export import iter_export_shot
from .targets import resolve_targets

PATH_CAMERA = "LTX_DatasetCamera"


def scene_caption(scene: bpy.types.Scene) -> str:
    """The prompt typed in the LTX Render panel (registered or only stored in the file), else ''."""
    props = getattr(scene, "ltx_render", None)
    if props is not None and hasattr(props, "prompt"):
        return str(props.prompt)
    stored = scene.get("ltx_render")
    return str(stored.get("prompt", "")) if hasattr(stored, "get") else ""


def start_pose(scene: bpy.types.Scene, frame: int) -> CameraPose:
    """The scene camera's pose (without scale) and lens at `frame`, evaluated (constraints, parents)."""
    if scene.camera is None or scene.camera.type != "CAMERA":
        raise ValueError(f"scene {scene.name!r} has no active camera; set one in Scene Properties > Camera")
    scene.frame_set(frame)
    cam = scene.camera.evaluated_get(export_view_layer(scene).depsgraph)
    m = np.array(cam.matrix_world, dtype=np.float64)
    m[:3, :3] /= np.linalg.norm(m[:3, :3], axis=0)
    return CameraPose(m, float(cam.data.lens))


def subject_point(scene: bpy.types.Scene, targets: Sequence[str], pose: CameraPose) -> np.ndarray:
    """What the moves circle and measure to (world, scene units): the targets' bounding-box centre;
    without targets, the point on the view axis as deep as the centre of the scene's meshes."""
    view_layer = export_view_layer(scene)
    objects = resolve_targets(scene, targets).objects if targets else [
        ob for ob in view_layer.objects if ob.type == "MESH" and ob.visible_get(view_layer=view_layer)]
    corners = [np.array(ob.matrix_world @ Vector(corner)) for ob in objects if ob.type == "MESH"
               for corner in ob.bound_box]
    if not corners:
        raise ValueError(f"scene {scene.name!r} has no visible mesh to aim the camera paths at; add one or "
                         "pass --targets")
    pts = np.array(corners)
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    if targets:
        return centre
    position, forward = pose.camera_to_world[:3, 3], -pose.camera_to_world[:3, 2]
    depth = max(float(np.dot(centre - position, forward)), 1.0)
    return position + forward * depth


@contextmanager
def path_camera(scene: bpy.types.Scene, path: CameraPath, frames: Sequence[int], subject: np.ndarray,
                start: CameraPose):
    """The scene camera replaced by one flying `path` over `frames` (the scene's own for "scene")."""
    if path.kind == "scene":
        yield scene.camera
        return
    source = scene.camera
    data = source.data.copy()
    data.animation_data_clear()
    ob = bpy.data.objects.new(PATH_CAMERA, data)
    scene.collection.objects.link(ob)
    ob.rotation_mode = "QUATERNION"  # no Euler wrap-around between keys
    try:
        for f, pose in zip(frames, camera_poses(path, start, subject, len(frames)), strict=True):
            ob.matrix_world = Matrix(pose.camera_to_world.tolist())
            ob.keyframe_insert("location", frame=f)
            ob.keyframe_insert("rotation_quaternion", frame=f)
            data.lens = pose.lens_mm
            data.keyframe_insert("lens", frame=f)
        scene.camera = ob
        yield ob
    finally:
        scene.camera = source
        # Names, not the actions: object and camera may share one (slotted) action, freed with its last user.
        actions = {a.animation_data.action.name for a in (ob, data) if a.animation_data and a.animation_data.action}
        bpy.data.objects.remove(ob)
        bpy.data.cameras.remove(data)
        for name in actions:
            action = bpy.data.actions.get(name)
            if action is not None and action.users == 0:
                bpy.data.actions.remove(action)


def iter_make_clip(scene: bpy.types.Scene, clip_dir: str | Path, plan: ClipPlan, *, kind: str, width: int,
                   height: int, canvas_size: tuple[int, int], caption: str, targets: Sequence[str] = (),
                   armatures: Sequence[str] = (), samples: int = 16, render_engine: str = "cycles",
                   canvas_engine: str = "auto", warn=None) -> Iterator[str]:
    """Write one clip (a shot bundle + target frames + videos) into clip_dir; yields progress lines.

    kind: a canvas kind, or "camera-trajectory" (the bundle then carries a depth canvas and the camera
    track; the backend draws the trajectory canvas from the track)."""
    clip_dir = Path(clip_dir)
    frames = list(range(plan.frame_start, plan.frame_end + 1))
    start = start_pose(scene, plan.frame_start)
    subject = subject_point(scene, targets, start) if plan.path.kind != "scene" else None
    trajectory = kind == TRAJECTORY_KIND
    with path_camera(scene, plan.path, frames, subject, start):
        target_dir = clip_dir / TARGET_FOLDER
        target_dir.mkdir(parents=True, exist_ok=True)
        targets_rgb = []
        with BeautyRenderer(scene, width, height, samples, render_engine) as renderer:
            for f in frames:
                scene.frame_set(f)
                image = renderer.render()
                write_png(target_dir / frame_file(f), image)
                targets_rgb.append(image)
        yield f"rendered {len(frames)} target frames"
        for _done, _total, _stage in iter_export_shot(
                scene, clip_dir, frame_start=plan.frame_start, frame_end=plan.frame_end, targets=targets,
                armatures=armatures, width=width, height=height, canvas_size=canvas_size,
                kind=TRAJECTORY_BUNDLE_CANVAS if trajectory else kind, prompt=caption,
                camera_mode="trajectory" if trajectory else "auto", name=plan.name, engine=canvas_engine,
                warn=warn):
            pass
        yield "exported the shot bundle"
    fps = fps_from_scene(scene.render.fps, scene.render.fps_base)
    write_mp4(clip_dir / VIDEO_FILE, np.stack(targets_rgb), fps)
    if not trajectory:
        bundle = read_bundle(clip_dir)
        write_mp4(clip_dir / REFERENCE_FILE, np.stack([bundle.canvas(0, i) for i in range(len(bundle))]), fps,
                  lossless=True)
    yield "wrote the videos"
