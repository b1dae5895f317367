"""Writing and reading the FILES of a shot bundle; shot.json itself is the shared schema module
(blender_addon/shot_bundle.py, copied from protos/shot_bundle.py; docs/shot-bundle.md).

A bundle is a folder: one folder of canvas PNGs per control (and its mask folder), pose/NNNNNN.json
(OpenPose, pixels of the first control's canvas), transforms.json (nerfstudio) and shot.json,
written LAST: a folder without shot.json is an unfinished export. Every file goes to a temporary
name first, then is renamed. File numbers are Blender frame numbers, 6 digits.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..shot_bundle import (
    BundleError,
    Control,
    Shot,
    canvas_paths,
    frame_file,
    mask_paths,
    read_shot,
    write_shot,
)
from .depth import BACKGROUND_DEPTH
from .openpose import openpose_json, people_from_openpose_json
from .png import png_size, read_png, write_bytes_atomic, write_png

# OpenCV camera axes (y down, z forward) -> OpenGL/nerfstudio axes (y up, z backward).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
POSE_FOLDER = "pose"


def frame_entry_in_metres(entry: dict, unit_scale: float) -> dict:
    """A frames[i] entry measured in Blender units, converted to metres (1 unit = unit_scale m,
    Blender's scene.unit_settings.scale_length): the world_to_camera translation and the clip
    range scale; rotation, lens and intrinsics do not."""
    if not unit_scale > 0:
        raise ValueError(f"unit scale must be > 0 (got {unit_scale}); fix Scene Properties > Units > Unit Scale")
    out = copy.deepcopy(entry)
    w2c = np.array(entry["world_to_camera"], dtype=np.float64)
    w2c[:3, 3] *= unit_scale
    out["world_to_camera"] = w2c.tolist()
    for key in ("clip_start", "clip_end"):
        if key in out:
            out[key] = float(out[key]) * unit_scale
    return out


def depth_in_metres(depth: np.ndarray, unit_scale: float, background: float = BACKGROUND_DEPTH) -> np.ndarray:
    """Planar depth in Blender units -> metres; the renderer's "no hit" value (>= background) stays."""
    depth = np.asarray(depth)
    return np.where(depth >= background, depth, depth * np.float32(unit_scale)).astype(depth.dtype)


def _plain(value):
    """JSON-ready copy: numpy arrays and scalars become lists and numbers."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


class BundleWriter:
    """Writes one shot bundle: write_frame for every frame, then finish(shot).

    Starting a writer on an existing bundle removes its shot.json first, so an interrupted
    re-export is never mistaken for a finished one.
    """

    def __init__(self, out_dir: str | os.PathLike, controls: list[Control]):
        self.root = Path(out_dir)
        if not controls:
            raise BundleError("a bundle needs at least one control canvas to write frames for")
        self.controls = list(controls)
        for c in self.controls:
            if c.width < 1 or c.height < 1:
                raise BundleError(f"control {c.kind!r}: width and height must be positive (got {c.width}x{c.height})")
            for folder in (c.folder, c.mask_folder):
                if folder:
                    (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / POSE_FOLDER).mkdir(parents=True, exist_ok=True)
        (self.root / "shot.json").unlink(missing_ok=True)
        self.written: set[int] = set()

    def write_frame(self, frame: int, canvases: list[np.ndarray], masks: list[np.ndarray | None],
                    people=()) -> None:
        """canvases[i]: (H, W, 3) uint8 of controls[i]; masks[i]: (H, W) bool or None (no mask folder);
        people: (18, 3) keypoints each, in pixels of the FIRST control's canvas."""
        if len(canvases) != len(self.controls) or len(masks) != len(self.controls):
            raise BundleError(f"frame {frame}: need one canvas and one mask (or None) per control "
                              f"({len(self.controls)})")
        for c, canvas, mask in zip(self.controls, canvases, masks, strict=True):
            canvas = np.asarray(canvas)
            if canvas.shape != (c.height, c.width, 3) or canvas.dtype != np.uint8:
                raise BundleError(f"frame {frame}: the {c.kind} canvas must be ({c.height}, {c.width}, 3) uint8 "
                                  f"(got {canvas.shape} {canvas.dtype})")
            write_png(self.root / c.folder / frame_file(frame), canvas)
            if c.mask_folder:
                mask = np.asarray(mask) if mask is not None else None
                if mask is None or mask.shape != (c.height, c.width):
                    raise BundleError(f"frame {frame}: the {c.kind} mask must be ({c.height}, {c.width}) "
                                      f"(got {None if mask is None else mask.shape})")
                write_png(self.root / c.mask_folder / frame_file(frame), mask.astype(bool))
        first = self.controls[0]
        write_bytes_atomic(self.root / POSE_FOLDER / frame_file(frame, "json"),
                           (json.dumps(openpose_json(list(people), first.width, first.height)) + "\n").encode())
        self.written.add(int(frame))

    def _transforms(self, shot: Shot) -> dict:
        """nerfstudio transforms.json: camera-to-world in OpenGL axes, intrinsics of the first canvas."""
        c = self.controls[0]
        sx, sy = c.width / shot.width, c.height / shot.height
        out_frames = []
        for entry in shot.frames:
            k = entry["intrinsics"]
            camera_to_world = np.linalg.inv(np.asarray(entry["world_to_camera"], dtype=np.float64)) @ _CV_TO_GL
            out_frames.append({
                "file_path": f"{c.folder}/{frame_file(entry['frame'])}",
                **({"mask_path": f"{c.mask_folder}/{frame_file(entry['frame'])}"} if c.mask_folder else {}),
                "transform_matrix": camera_to_world.tolist(),
                "fl_x": k["fx"] * sx, "fl_y": k["fy"] * sy, "cx": k["cx"] * sx, "cy": k["cy"] * sy,
            })  # fmt: skip
        first = out_frames[0]
        return {
            "camera_model": "OPENCV", "w": c.width, "h": c.height,
            "fl_x": first["fl_x"], "fl_y": first["fl_y"], "cx": first["cx"], "cy": first["cy"],
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": out_frames,
        }  # fmt: skip

    def finish(self, shot: Shot) -> Path:
        """Write transforms.json, then shot.json (last). shot.controls must be this writer's controls."""
        shot.frames = _plain(shot.frames)
        if [c.folder for c in shot.controls] != [c.folder for c in self.controls]:
            raise BundleError("finish(): the shot's controls are not the ones this writer wrote")
        if not shot.frames:
            raise BundleError("finish() needs the per-frame camera list (got none)")
        shot.check(str(self.root / "shot.json"))
        unwritten = [f for f in shot.frame_numbers if f not in self.written
                     and not (self.root / self.controls[0].folder / frame_file(f)).exists()]  # fmt: skip
        if unwritten:
            raise BundleError(f"frames {unwritten[:5]} were never written; call write_frame for each")
        write_bytes_atomic(self.root / "transforms.json",
                           (json.dumps(self._transforms(shot), indent=1) + "\n").encode())
        return write_shot(self.root, shot)


@dataclass
class ShotBundle:
    """A finished shot bundle read from disk, its canvases checked against shot.json. Frame index i
    is 0-based (shot.frames[i]["frame"] is the Blender frame number)."""

    root: Path
    shot: Shot

    def __len__(self) -> int:
        return self.shot.num_frames

    def canvas(self, control: int, i: int) -> np.ndarray:
        """(height, width, 3) uint8 canvas of controls[control] at frame index i."""
        return read_png(canvas_paths(self.root, self.shot, self.shot.controls[control])[i])

    def mask(self, control: int, i: int) -> np.ndarray:
        """(height, width) bool, True on the targets."""
        return read_png(mask_paths(self.root, self.shot, self.shot.controls[control])[i]) > 127

    def pose(self, i: int) -> list[np.ndarray]:
        """One (18, 3) [x, y, confidence] array per person, pixels of the first control's canvas."""
        path = self.root / POSE_FOLDER / frame_file(self.shot.frame_start + i, "json")
        with open(path, encoding="utf-8") as f:
            return people_from_openpose_json(json.load(f))


def read_bundle(path: str | os.PathLike) -> ShotBundle:
    """Read and check a finished bundle: shot.json, every canvas and mask present at its size."""
    root = Path(path)
    if root.is_dir() and not (root / "shot.json").is_file() and any(root.iterdir()):
        raise BundleError(f"{root}: unfinished export (no shot.json); export the shot again")
    shot = read_shot(root)
    for i, c in enumerate(shot.controls):
        for paths, channels in ((canvas_paths(root, shot, c), 3), (mask_paths(root, shot, c), 1)):
            missing = [p for p in paths if not p.is_file()]
            if missing:
                names = ", ".join(f"{p.parent.name}/{p.name}" for p in missing[:5])
                raise BundleError(f"{root}: missing files: {names}; export the shot again")
            for p in paths:
                size = png_size(p)
                if size != (c.width, c.height, channels):
                    raise BundleError(f"{p}: is {size[0]}x{size[1]} with {size[2]} channel(s), expected "
                                      f"{c.width}x{c.height} with {channels} (controls[{i}] in shot.json)")
    return ShotBundle(root, shot)
