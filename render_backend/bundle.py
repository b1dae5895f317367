"""Reading a shot bundle folder (schema `ltx-shot/1`, docs/shot-bundle.md) for the backend.

The bundle becomes the same `ShotManifest` the add-on streams, so an offline render
(`render-backend render BUNDLE`) passes exactly the checks a submitted shot passes, then
the same RenderRequest. The backend never imports the add-on: this is its own reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .engine.request import RenderRequest
from .proto import render_pb2 as pb
from .server.validation import Limits, ShotError, build_request, check_manifest

SCHEMA_MAJOR = "ltx-shot/1"
_MODES = {"auto": pb.CAMERA_MODE_AUTO, "preset": pb.CAMERA_MODE_PRESET, "trajectory": pb.CAMERA_MODE_TRAJECTORY,
          "off": pb.CAMERA_MODE_OFF}


class BundleError(ValueError):
    """A bundle that cannot be read; the message names the file and what to fix."""


@dataclass
class ShotBundle:
    path: Path
    manifest: pb.ShotManifest
    control_pngs: list[Path]  # in output-frame order
    mask_pngs: list[Path]
    shot: dict  # shot.json as read

    def read_pngs(self, kind: str) -> list[bytes]:
        return [p.read_bytes() for p in (self.control_pngs if kind == "control" else self.mask_pngs)]


def read_bundle(path: str | Path) -> ShotBundle:
    """Read shot.json and locate control/mask PNGs (file numbers = Blender frame numbers)."""
    path = Path(path)
    shot_json = path / "shot.json"
    if not shot_json.is_file():
        raise BundleError(f"{path} has no shot.json: not a shot bundle, or the export did not finish "
                          "(shot.json is written last)")
    try:
        shot = json.loads(shot_json.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{shot_json} is not valid JSON ({e})") from None
    schema = str(shot.get("schema", ""))
    if schema.split(".")[0] != SCHEMA_MAJOR:
        raise BundleError(f"{shot_json}: schema '{schema}' is not supported; this backend reads {SCHEMA_MAJOR}")
    try:
        first, last = int(shot["frame_start"]), int(shot["frame_end"])
        numbers = range(first, last + 1)
        m = _manifest(shot, len(numbers))
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{shot_json}: missing or bad field {e}; see docs/shot-bundle.md") from None
    controls = [path / "control" / f"{n:06d}.png" for n in numbers]
    have_controls = [p for p in controls if p.is_file()]
    if have_controls and len(have_controls) != len(controls):
        missing = next(p for p in controls if not p.is_file())
        raise BundleError(f"{missing} is missing: the bundle needs one control PNG per frame {first}..{last}")
    masks = [path / "mask" / f"{n:06d}.png" for n in numbers]
    has_mask = bool(have_controls) and all(p.is_file() for p in masks)
    if have_controls:
        m.num_control_frames = len(controls)
        m.has_mask = has_mask
        from PIL import Image

        with Image.open(controls[0]) as img:
            m.control_width, m.control_height = img.size
    else:
        m.control.lora = ""  # no canvas exported: render from prompt + camera only
    return ShotBundle(path, m, controls if have_controls else [], masks if has_mask else [], shot)


def _manifest(shot: dict, num_frames: int) -> pb.ShotManifest:
    strength = shot.get("strength") or {}
    cam = shot.get("camera") or {}
    frames = shot.get("frames") or []
    m = pb.ShotManifest(
        request_id="", prompt=str(shot.get("prompt", "")), negative_prompt=str(shot.get("negative_prompt", "")),
        width=int(shot["width"]), height=int(shot["height"]), num_frames=num_frames, fps=float(shot["fps"]),
        seed=int(shot.get("seed", 0)), shot_name=str(shot.get("name", "")), audio=True,
        frame_start=int(shot["frame_start"]),
        control=pb.ControlSettings(lora=str(shot.get("control_lora", "")),
                                   strength=float(strength.get("global", 1.0))),
        camera=pb.CameraSettings(mode=_MODES.get(str(cam.get("mode", "auto")), -1),
                                 preset_lora=str(cam.get("preset_lora", "")),
                                 trajectory_lora=str(cam.get("trajectory_lora", "")),
                                 weight=float(cam.get("weight", 0.0))))
    per_frame = strength.get("per_frame")
    if per_frame is None and frames and all("strength" in f for f in frames):
        per_frame = [f["strength"] for f in frames]
    if per_frame:
        m.control.frame_strength.extend(float(v) for v in per_frame)
    if strength.get("background") is not None:
        m.control.background_strength = float(strength["background"])
        m.control.has_background_strength = True
    for f in frames:
        k = f["intrinsics"]
        w2c = np.asarray(f["world_to_camera"], dtype=np.float64).ravel()
        m.camera.frames.add(fx=float(k["fx"]), fy=float(k["fy"]), cx=float(k["cx"]), cy=float(k["cy"]),
                            world_to_camera=w2c.tolist(), lens_mm=float(f.get("lens_mm", 0.0)))
    return m


def bundle_request(bundle: ShotBundle, limits: Optional[Limits] = None) -> tuple[RenderRequest, list[str]]:
    """Check the bundle's manifest like the server would and build the engine request.

    Returns (request, warnings). Raises ShotError (same messages as the server).
    """
    if limits is not None:
        warnings = check_manifest(bundle.manifest, limits)
    else:
        warnings = []
    controls = [_decode(p, "RGB") for p in bundle.control_pngs] or None
    masks = [_decode(p, "L") >= 128 for p in bundle.mask_pngs] or None
    if controls is not None:
        size = (bundle.manifest.control_width, bundle.manifest.control_height)
        for p, c in zip(bundle.control_pngs, controls, strict=True):
            if (c.shape[1], c.shape[0]) != size:
                raise ShotError("INVALID_ARGUMENT", f"{p} is {c.shape[1]}x{c.shape[0]}; every control PNG must "
                                f"be {size[0]}x{size[1]} like the first")
    return build_request(bundle.manifest, controls, masks), warnings


def _decode(path: Path, mode: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode))
    except (UnidentifiedImageError, OSError) as e:
        raise BundleError(f"{path} does not decode as a PNG ({e}); re-export the shot") from None
