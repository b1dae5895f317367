"""Shot bundle I/O, schema "ltx-shot/1" (docs/shot-bundle.md).

A bundle is a folder: control/NNNNNN.png, mask/NNNNNN.png, pose/NNNNNN.json (Blender frame
numbers, 6 digits), transforms.json (nerfstudio) and shot.json, written LAST: a folder without
shot.json is an unfinished export. Every file goes to a temporary name first, then is renamed.

Pose keypoints and the nerfstudio intrinsics are in pixels of the control PNGs
(control_width x control_height); shot.json intrinsics are in pixels of width x height.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .depth import BACKGROUND_DEPTH
from .openpose import openpose_json, people_from_openpose_json
from .png import png_size, read_png, write_bytes_atomic, write_png

SCHEMA = "ltx-shot/1"
SCHEMA_MAJOR = 1
REQUIRED_KEYS = ("name", "width", "height", "fps", "frame_start", "frame_end")
FRAME_KEYS = ("frame", "intrinsics", "world_to_camera")
# OpenCV camera axes (y down, z forward) -> OpenGL/nerfstudio axes (y up, z backward).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


class BundleError(ValueError):
    """A shot bundle that cannot be read or written; the message says what to fix."""


def frame_file(frame: int, ext: str) -> str:
    """File name of one frame: Blender frame number zero-padded to 6 digits ("000001.png")."""
    return f"{frame:06d}.{ext}"


def new_manifest(
    name: str, width: int, height: int, fps: float, frame_start: int, frame_end: int, **fields
) -> dict:
    """A shot.json manifest with every key of the schema, defaults for those not given."""
    manifest = {
        "schema": SCHEMA, "name": name, "scene": "", "prompt": "", "negative_prompt": "", "seed": 0,
        "width": width, "height": height, "control_width": width, "control_height": height,
        "fps": float(fps), "frame_start": frame_start, "frame_end": frame_end,
        "depth_range": {"near": 0.0, "far": 0.0},
        "strength": {"global": 1.0, "per_frame": None, "background": None},
        "control_lora": "",
        "camera": {"mode": "auto", "preset_lora": "", "trajectory_lora": "", "weight": 1.0},
        "targets": [], "armatures": [],
    }  # fmt: skip
    unknown = set(fields) - set(manifest) - {"frames"}
    if unknown:
        raise BundleError(f"unknown shot.json keys {sorted(unknown)}; see docs/shot-bundle.md")
    manifest.update(fields)
    return manifest


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


def _to_json(value):
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dump(path: Path, doc: dict) -> None:
    write_bytes_atomic(path, (json.dumps(doc, indent=1, default=_to_json) + "\n").encode("utf-8"))


def _check_manifest(manifest: dict, where: str) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"{where}: shot.json lacks {missing}; see docs/shot-bundle.md")
    for key in ("width", "height", "control_width", "control_height"):
        value = manifest.get(key, 1)
        if not isinstance(value, int) or value < 1:
            raise BundleError(f"{where}: {key} must be a positive whole number of pixels (got {value!r})")


class BundleWriter:
    """Writes one shot bundle. Call write_frame for every frame, then finish(frames).

    Starting a writer on an existing bundle removes its shot.json first, so an interrupted
    re-export is never mistaken for a finished one.
    """

    def __init__(self, out_dir: str | os.PathLike, manifest: dict):
        self.root = Path(out_dir)
        self.manifest = copy.deepcopy(dict(manifest))
        self.manifest.setdefault("schema", SCHEMA)
        self.manifest.setdefault("control_width", self.manifest.get("width"))
        self.manifest.setdefault("control_height", self.manifest.get("height"))
        _check_manifest(self.manifest, str(self.root))
        if self.manifest["schema"] != SCHEMA:
            raise BundleError(f"this writer writes {SCHEMA!r} (manifest says {self.manifest['schema']!r})")
        for sub in ("control", "mask", "pose"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "shot.json").unlink(missing_ok=True)
        self.written: set[int] = set()

    @property
    def control_size(self) -> tuple[int, int]:
        """(width, height) of the control PNGs."""
        return self.manifest["control_width"], self.manifest["control_height"]

    def write_frame(self, frame: int, control: np.ndarray, mask: np.ndarray, people=()) -> None:
        """control: (H, W, 3) uint8 canvas; mask: (H, W) bool; people: (18, 3) keypoints each,
        in pixels of the control canvas. H, W = control_height, control_width."""
        w, h = self.control_size
        control, mask = np.asarray(control), np.asarray(mask)
        if control.shape != (h, w, 3) or control.dtype != np.uint8:
            raise BundleError(
                f"frame {frame}: control canvas must be ({h}, {w}, 3) uint8 to match control size {w}x{h} "
                f"(got {control.shape} {control.dtype})"
            )
        if mask.shape != (h, w):
            raise BundleError(f"frame {frame}: mask must be ({h}, {w}) (got {mask.shape})")
        write_png(self.root / "control" / frame_file(frame, "png"), control)
        write_png(self.root / "mask" / frame_file(frame, "png"), mask.astype(bool))
        _dump(self.root / "pose" / frame_file(frame, "json"), openpose_json(list(people), w, h))
        self.written.add(int(frame))

    def _transforms(self, frames: list[dict]) -> dict:
        """nerfstudio transforms.json: camera-to-world in OpenGL axes, intrinsics of the control PNGs."""
        w, h = self.control_size
        sx, sy = w / self.manifest["width"], h / self.manifest["height"]
        out_frames = []
        for entry in frames:
            k = entry["intrinsics"]
            world_to_camera = np.asarray(entry["world_to_camera"], dtype=np.float64)
            camera_to_world = np.linalg.inv(world_to_camera) @ _CV_TO_GL
            out_frames.append({
                "file_path": f"control/{frame_file(entry['frame'], 'png')}",
                "mask_path": f"mask/{frame_file(entry['frame'], 'png')}",
                "transform_matrix": camera_to_world.tolist(),
                "fl_x": k["fx"] * sx, "fl_y": k["fy"] * sy, "cx": k["cx"] * sx, "cy": k["cy"] * sy,
            })  # fmt: skip
        first = out_frames[0]
        return {
            "camera_model": "OPENCV", "w": w, "h": h,
            "fl_x": first["fl_x"], "fl_y": first["fl_y"], "cx": first["cx"], "cy": first["cy"],
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": out_frames,
        }  # fmt: skip

    def finish(self, frames: list[dict]) -> Path:
        """Write transforms.json, then shot.json (last). frames: one dict per frame, in order,
        with at least "frame", "intrinsics" {fx, fy, cx, cy} and "world_to_camera" (4x4)."""
        if not frames:
            raise BundleError("finish() needs the per-frame camera list (got none)")
        for entry in frames:
            lacking = [k for k in FRAME_KEYS if k not in entry]
            if lacking:
                raise BundleError(f"frame entry {entry.get('frame', '?')} lacks {lacking}")
            if np.asarray(entry["world_to_camera"]).shape != (4, 4):
                raise BundleError(f"frame {entry['frame']}: world_to_camera must be 4x4")
        numbers = [int(e["frame"]) for e in frames]
        expected = list(range(self.manifest["frame_start"], self.manifest["frame_end"] + 1))
        if numbers != expected:
            raise BundleError(
                f"frames must be {expected[0]}..{expected[-1]} in order (got {numbers[0]}..{numbers[-1]}, "
                f"{len(numbers)} entries)"
            )
        unwritten = [f for f in numbers if f not in self.written
                     and not (self.root / "control" / frame_file(f, "png")).exists()]  # fmt: skip
        if unwritten:
            raise BundleError(f"frames {unwritten[:5]} were never written; call write_frame for each")
        manifest = json.loads(json.dumps(self.manifest, default=_to_json))
        manifest["frames"] = json.loads(json.dumps(frames, default=_to_json))
        _dump(self.root / "transforms.json", self._transforms(manifest["frames"]))
        _dump(self.root / "shot.json", manifest)
        self.manifest = manifest
        return self.root / "shot.json"


@dataclass
class ShotBundle:
    """A finished shot bundle read from disk. Frame index i is 0-based (frames[i]["frame"] is
    the Blender frame number)."""

    root: Path
    manifest: dict
    frames: list[dict]
    control_paths: list[Path] = field(default_factory=list)
    mask_paths: list[Path] = field(default_factory=list)
    pose_paths: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def control(self, i: int) -> np.ndarray:
        """(control_height, control_width, 3) uint8 canvas of frame index i."""
        return read_png(self.control_paths[i])

    def mask(self, i: int) -> np.ndarray:
        """(control_height, control_width) bool, True on the targets."""
        return read_png(self.mask_paths[i]) > 127

    def pose(self, i: int) -> list[np.ndarray]:
        """One (18, 3) [x, y, confidence] array per person, pixels of the control canvas."""
        with open(self.pose_paths[i], encoding="utf-8") as f:
            return people_from_openpose_json(json.load(f))


def _check_schema(schema, where: str) -> None:
    if not isinstance(schema, str) or not schema.startswith("ltx-shot/"):
        raise BundleError(f"{where}: not a shot bundle (schema {schema!r}, expected {SCHEMA!r})")
    major = schema.split("/", 1)[1].split(".")[0]
    if major != str(SCHEMA_MAJOR):
        raise BundleError(
            f"{where}: bundle schema {schema!r} is not supported (this version reads {SCHEMA!r}); "
            "update the add-on/backend or re-export the shot"
        )


def _list_missing(paths: list[Path]) -> str:
    missing = [p for p in paths if not p.is_file()]
    if not missing:
        return ""
    names = ", ".join(f"{p.parent.name}/{p.name}" for p in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return f"{names}{more}"


def read_bundle(path: str | os.PathLike) -> ShotBundle:
    """Read and validate a shot bundle folder (see module docstring). Raises BundleError."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: no such folder; pass the shot bundle folder (the one with shot.json)")
    shot_json = root / "shot.json"
    if not shot_json.is_file():
        if (root / "control").is_dir():
            raise BundleError(f"{root}: unfinished export (no shot.json); export the shot again")
        raise BundleError(f"{root}: not a shot bundle (no shot.json)")
    try:
        manifest = json.loads(shot_json.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{shot_json}: not valid JSON ({exc}); export the shot again") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{shot_json}: must hold a JSON object")
    _check_schema(manifest.get("schema"), str(root))
    manifest.setdefault("control_width", manifest.get("width"))
    manifest.setdefault("control_height", manifest.get("height"))
    _check_manifest(manifest, str(root))
    frames = manifest.get("frames")
    if not isinstance(frames, list) or not frames:
        raise BundleError(f"{root}: shot.json has no frames list")
    start, end = manifest["frame_start"], manifest["frame_end"]
    numbers = [f.get("frame") if isinstance(f, dict) else None for f in frames]
    if numbers != list(range(start, end + 1)):
        raise BundleError(f"{root}: frames must list {start}..{end} in order ({len(numbers)} entries found)")
    if (len(frames) - 1) % 8:
        raise BundleError(f"{root}: frame count must be 8k+1 (got {len(frames)}); re-export with a snapped range")
    bundle = ShotBundle(
        root=root,
        manifest=manifest,
        frames=frames,
        control_paths=[root / "control" / frame_file(n, "png") for n in numbers],
        mask_paths=[root / "mask" / frame_file(n, "png") for n in numbers],
        pose_paths=[root / "pose" / frame_file(n, "json") for n in numbers],
    )
    missing = _list_missing(bundle.control_paths + bundle.mask_paths + bundle.pose_paths)
    if missing:
        raise BundleError(f"{root}: missing files: {missing}; export the shot again")
    w, h = manifest["control_width"], manifest["control_height"]
    for paths, channels in ((bundle.control_paths, 3), (bundle.mask_paths, 1)):
        for p in paths:
            size = png_size(p)
            if size != (w, h, channels):
                raise BundleError(
                    f"{p}: is {size[0]}x{size[1]} with {size[2]} channel(s), expected {w}x{h} with {channels} "
                    "(control_width x control_height in shot.json)"
                )
    return bundle
