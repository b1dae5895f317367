# Copied by scripts/gen_protos.py from protos/shot_bundle.py. Do not edit this copy.
"""The shot bundle, schema `ltx-shot/2`: the one seam between export and render (docs/shot-bundle.md).

One exported shot is a folder; `shot.json` (written last) says everything a render needs: size,
frames, fps, prompt, seed, audio, the strength curve as sampled at export, the camera track and
mode, and a LIST OF CONTROLS, each a canvas kind in its own folder, read by its own LoRA at its
reference_downscale_factor. The exporter writes it, the add-on's uploader streams it (a pure
function of the folder: `to_manifest`), `render-backend render` renders it offline through the
same manifest, and a training dataset is made of bundles.

This file is the single source: scripts/gen_protos.py copies it into render_backend/ and
blender_addon/ (the add-on ships without the backend), next to each copy's generated proto
code, and `./dev test` fails when a copy differs. Pure Python: no numpy, no bpy, no torch.

Readers take major 2, upgrade major 1 in memory (one depth+pose control in control/ + mask/),
and refuse any other major with a message naming it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

SCHEMA = "ltx-shot/2"
SCHEMA_MAJOR = 2
READS = (1, 2)  # majors this reader understands
CANVAS_KINDS = ("depth+pose", "depth", "pose", "edges", "playblast")
CAMERA_MODES = ("auto", "preset", "trajectory", "off")


class BundleError(ValueError):
    """A bundle that cannot be read or written; the message names the file and what to fix."""


def frame_file(frame: int, ext: str = "png") -> str:
    """File name of one frame: Blender frame number zero-padded to 6 digits ("000001.png")."""
    return f"{int(frame):06d}.{ext}"


@dataclass
class Strength:
    """Control strength m in [0, 1]: global, times the per-frame curve (sampled ONCE, at export),
    and `background` outside the target mask (None = same as inside)."""

    value: float = 1.0
    per_frame: Optional[list[float]] = None
    background: Optional[float] = None

    def to_json(self) -> dict:
        return {"global": self.value, "per_frame": self.per_frame, "background": self.background}

    @classmethod
    def from_json(cls, d: dict, where: str) -> Strength:
        d = _obj(d or {}, where)
        per_frame = d.get("per_frame")
        return cls(value=_number(d.get("global", 1.0), f"{where}.global"),
                   per_frame=None if per_frame is None else [_number(v, f"{where}.per_frame") for v in
                                                             _list(per_frame, f"{where}.per_frame")],
                   background=None if d.get("background") is None else _number(d["background"],
                                                                               f"{where}.background"))


@dataclass
class Control:
    """One control canvas of the shot. `folder` holds one PNG per frame (file number = Blender
    frame), `mask_folder` (or None) the target masks for regional strength. width x height is the
    canvas size as exported; reference_downscale_factor is the factor it was exported for (None =
    whatever the LoRA file says). `options` records how the canvas was drawn (kind-specific)."""

    kind: str
    lora: str = ""
    lora_weight: float = 1.0
    folder: str = "control"
    mask_folder: Optional[str] = None
    width: int = 0
    height: int = 0
    reference_downscale_factor: Optional[int] = None
    strength: Strength = field(default_factory=Strength)
    depth_range: Optional[dict] = None  # {"near": m, "far": m} for depth kinds: one range per shot
    options: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"kind": self.kind, "lora": self.lora, "lora_weight": self.lora_weight, "folder": self.folder,
                "mask_folder": self.mask_folder, "width": self.width, "height": self.height,
                "reference_downscale_factor": self.reference_downscale_factor,
                "strength": self.strength.to_json(), "depth_range": self.depth_range, "options": self.options}

    @classmethod
    def from_json(cls, d: dict, where: str) -> Control:
        d = _obj(d, where)
        kind = _str(d.get("kind"), f"{where}.kind")
        if kind not in CANVAS_KINDS:
            raise BundleError(f"{where}.kind {kind!r} is not a canvas kind; use one of {', '.join(CANVAS_KINDS)}")
        factor = d.get("reference_downscale_factor")
        return cls(kind=kind, lora=_str(d.get("lora", ""), f"{where}.lora"),
                   lora_weight=_number(d.get("lora_weight", 1.0), f"{where}.lora_weight"),
                   folder=_folder(d.get("folder", "control"), f"{where}.folder"),
                   mask_folder=None if d.get("mask_folder") is None else _folder(d["mask_folder"],
                                                                                 f"{where}.mask_folder"),
                   width=_int(d.get("width"), f"{where}.width", 1), height=_int(d.get("height"), f"{where}.height", 1),
                   reference_downscale_factor=None if factor is None else _int(
                       factor, f"{where}.reference_downscale_factor", 1),
                   strength=Strength.from_json(d.get("strength"), f"{where}.strength"),
                   depth_range=d.get("depth_range"), options=_obj(d.get("options") or {}, f"{where}.options"))


@dataclass
class Condition:
    """Frames this shot continues from (a previous window's last frames, as its tail artifact gave
    them): `num_frames` (8m + 1) PNGs in `folder`, numbered by the Blender frames they stand for (the
    shot's first frames); the shot's first frames are held to them, with `strength`."""

    folder: str = "continue"
    num_frames: int = 0
    strength: float = 1.0

    def to_json(self) -> dict:
        return {"folder": self.folder, "num_frames": self.num_frames, "strength": self.strength}

    @classmethod
    def from_json(cls, d: dict, where: str) -> Condition:
        d = _obj(d, where)
        return cls(folder=_folder(d.get("folder", "continue"), f"{where}.folder"),
                   num_frames=_int(d.get("num_frames"), f"{where}.num_frames", 1),
                   strength=_number(d.get("strength", 1.0), f"{where}.strength"))


@dataclass
class Camera:
    """How the camera track conditions the render: "auto" (the server picks the preset LoRA of the
    classified move), "preset" (preset_lora), "trajectory" (a trajectory canvas for
    trajectory_lora, drawn by the server from `frames`), "off"."""

    mode: str = "auto"
    preset_lora: str = ""
    trajectory_lora: str = ""
    weight: float = 1.0
    reference_downscale_factor: Optional[int] = None  # trajectory canvas; None = the LoRA's

    def to_json(self) -> dict:
        return {"mode": self.mode, "preset_lora": self.preset_lora, "trajectory_lora": self.trajectory_lora,
                "weight": self.weight, "reference_downscale_factor": self.reference_downscale_factor}

    @classmethod
    def from_json(cls, d: dict, where: str) -> Camera:
        d = _obj(d or {}, where)
        mode = _str(d.get("mode", "auto"), f"{where}.mode")
        if mode not in CAMERA_MODES:
            raise BundleError(f"{where}.mode {mode!r} is unknown; use one of {', '.join(CAMERA_MODES)}")
        factor = d.get("reference_downscale_factor")
        return cls(mode=mode, preset_lora=_str(d.get("preset_lora", ""), f"{where}.preset_lora"),
                   trajectory_lora=_str(d.get("trajectory_lora", ""), f"{where}.trajectory_lora"),
                   weight=_number(d.get("weight", 1.0) or 1.0, f"{where}.weight"),
                   reference_downscale_factor=None if factor is None else _int(
                       factor, f"{where}.reference_downscale_factor", 1))


@dataclass
class Shot:
    """shot.json of one bundle. Distances in metres, intrinsics in pixels of width x height,
    OpenCV camera axes; `frames` holds one camera entry per Blender frame (see docs)."""

    name: str
    width: int
    height: int
    fps: float
    frame_start: int
    frame_end: int
    frames: list[dict]
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    audio: bool = True
    steps: Optional[int] = None  # None = the model's default
    stages: Optional[int] = None  # 1 = one stage (previews), 2 = two-stage; None = the server's default
    guidance_scale: Optional[float] = None
    scene: str = ""
    controls: list[Control] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)  # continuity: at most one, at the start
    tail_frames: int = 0  # ask the server for this shot's last frames (what the next window continues from)
    camera: Camera = field(default_factory=Camera)
    extra_loras: list[tuple[str, float]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    armatures: list[str] = field(default_factory=list)
    schema: str = SCHEMA

    @property
    def num_frames(self) -> int:
        return self.frame_end - self.frame_start + 1

    @property
    def frame_numbers(self) -> range:
        return range(self.frame_start, self.frame_end + 1)

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "name": self.name, "scene": self.scene, "prompt": self.prompt,
                "negative_prompt": self.negative_prompt, "seed": self.seed, "width": self.width,
                "height": self.height, "fps": self.fps, "frame_start": self.frame_start,
                "frame_end": self.frame_end, "audio": self.audio, "steps": self.steps,
                "stages": self.stages,
                "guidance_scale": self.guidance_scale, "controls": [c.to_json() for c in self.controls],
                "conditions": [c.to_json() for c in self.conditions], "tail_frames": self.tail_frames,
                "camera": self.camera.to_json(),
                "extra_loras": [{"name": n, "weight": w} for n, w in self.extra_loras],
                "targets": list(self.targets), "armatures": list(self.armatures), "frames": self.frames}

    def check(self, where: str = "shot.json") -> Shot:
        """The bundle's own consistency (frame list, control sizes); the render rules are the engine's."""
        if self.frame_end < self.frame_start:
            raise BundleError(f"{where}: frame_end {self.frame_end} is before frame_start {self.frame_start}")
        numbers = [f.get("frame") if isinstance(f, dict) else None for f in self.frames]
        if numbers != list(self.frame_numbers):
            raise BundleError(f"{where}: frames must list {self.frame_start}..{self.frame_end} in order "
                              f"({len(numbers)} entries found); export the shot again")
        for i, f in enumerate(self.frames):
            lacking = [k for k in ("intrinsics", "world_to_camera") if k not in f]
            if lacking:
                raise BundleError(f"{where}: frames[{i}] lacks {lacking}")
            w2c = f["world_to_camera"]
            if not (isinstance(w2c, list) and len(w2c) == 4 and all(isinstance(r, list) and len(r) == 4 for r in w2c)):
                raise BundleError(f"{where}: frames[{i}].world_to_camera must be 4x4 nested lists")
        folders = [c.folder for c in self.controls] + [c.mask_folder for c in self.controls if c.mask_folder]
        folders += [c.folder for c in self.conditions]
        for i, c in enumerate(self.conditions):
            if c.num_frames >= self.num_frames:
                raise BundleError(f"{where}: conditions[{i}] has {c.num_frames} frames but the shot only "
                                  f"{self.num_frames}")
        if len(set(folders)) != len(folders):
            raise BundleError(f"{where}: two controls share a folder ({', '.join(folders)}); give each its own")
        for i, c in enumerate(self.controls):
            per_frame = c.strength.per_frame
            if per_frame is not None and len(per_frame) != self.num_frames:
                raise BundleError(f"{where}: controls[{i}].strength.per_frame has {len(per_frame)} values for "
                                  f"{self.num_frames} frames")
        return self


# ---------------------------------------------------------------- reading and writing
def read_shot(folder: str | os.PathLike) -> Shot:
    """shot.json of a finished bundle, checked and upgraded to the current major. Raises BundleError."""
    root = Path(folder)
    path = root / "shot.json"
    if not root.is_dir():
        raise BundleError(f"{root}: no such folder; pass the shot bundle folder (the one with shot.json)")
    if not path.is_file():
        raise BundleError(f"{root}: no shot.json: not a shot bundle, or its export did not finish "
                          "(shot.json is written last); export the shot again")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e}); export the shot again") from None
    return shot_from_json(doc, str(path))


def shot_from_json(doc: Any, where: str = "shot.json") -> Shot:
    doc = _obj(doc, where)
    major = schema_major(doc.get("schema"), where)
    if major == 1:
        doc = _upgrade_v1(doc)
    try:
        shot = Shot(
            name=_str(doc.get("name", ""), f"{where}: name"), scene=_str(doc.get("scene", ""), f"{where}: scene"),
            prompt=_str(doc.get("prompt", ""), f"{where}: prompt"),
            negative_prompt=_str(doc.get("negative_prompt", ""), f"{where}: negative_prompt"),
            seed=_int(doc.get("seed", 0), f"{where}: seed", 0), width=_int(doc["width"], f"{where}: width", 1),
            height=_int(doc["height"], f"{where}: height", 1), fps=_number(doc["fps"], f"{where}: fps"),
            frame_start=_int(doc["frame_start"], f"{where}: frame_start"),
            frame_end=_int(doc["frame_end"], f"{where}: frame_end"),
            audio=bool(doc.get("audio", True)),
            steps=None if doc.get("steps") is None else _int(doc["steps"], f"{where}: steps", 1),
            stages=None if doc.get("stages") is None else _int(doc["stages"], f"{where}: stages", 1),
            guidance_scale=None if doc.get("guidance_scale") is None else _number(doc["guidance_scale"],
                                                                                  f"{where}: guidance_scale"),
            controls=[Control.from_json(c, f"{where}: controls[{i}]")
                      for i, c in enumerate(_list(doc.get("controls", []), f"{where}: controls"))],
            conditions=[Condition.from_json(c, f"{where}: conditions[{i}]")
                        for i, c in enumerate(_list(doc.get("conditions", []), f"{where}: conditions"))],
            tail_frames=_int(doc.get("tail_frames", 0), f"{where}: tail_frames", 0),
            camera=Camera.from_json(doc.get("camera"), f"{where}: camera"),
            extra_loras=[(_str(e.get("name"), f"{where}: extra_loras"), _number(e.get("weight", 1.0),
                                                                                f"{where}: extra_loras"))
                         for e in _list(doc.get("extra_loras", []), f"{where}: extra_loras")],
            targets=[str(t) for t in _list(doc.get("targets", []), f"{where}: targets")],
            armatures=[str(a) for a in _list(doc.get("armatures", []), f"{where}: armatures")],
            frames=_list(doc.get("frames", []), f"{where}: frames"))
    except KeyError as e:
        raise BundleError(f"{where}: missing field {e}; see docs/shot-bundle.md") from None
    return shot.check(where)


def write_shot(folder: str | os.PathLike, shot: Shot) -> Path:
    """Write shot.json atomically (temp name + rename): call it LAST, after every canvas file."""
    shot.check(str(Path(folder) / "shot.json"))
    text = json.dumps(shot.to_json(), indent=1, allow_nan=False) + "\n"
    path = Path(folder) / "shot.json"
    tmp = path.with_name(".shot.json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def schema_major(schema: Any, where: str) -> int:
    if not isinstance(schema, str) or not schema.startswith("ltx-shot/"):
        raise BundleError(f"{where}: not a shot bundle (schema {schema!r}, expected {SCHEMA!r})")
    head = schema.split("/", 1)[1].split(".")[0]
    if not head.isdigit() or int(head) not in READS:
        raise BundleError(f"{where}: bundle schema {schema!r} is not supported (this version reads "
                          f"{', '.join(f'ltx-shot/{m}' for m in READS)}); update the add-on and the backend, "
                          "or export the shot again")
    return int(head)


def _upgrade_v1(doc: dict) -> dict:
    """ltx-shot/1 (one depth+pose canvas in control/, masks in mask/) as a major-2 document."""
    strength = dict(doc.get("strength") or {})
    frames = doc.get("frames") or []
    if strength.get("per_frame") is None and frames and all(isinstance(f, dict) and "strength" in f
                                                            for f in frames):
        strength["per_frame"] = [f["strength"] for f in frames]
    control = {"kind": "depth+pose", "lora": doc.get("control_lora", ""), "folder": "control",
               "mask_folder": "mask", "width": doc.get("control_width", doc.get("width")),
               "height": doc.get("control_height", doc.get("height")), "strength": strength,
               "depth_range": doc.get("depth_range")}
    new = {k: v for k, v in doc.items() if k not in ("control_lora", "control_width", "control_height",
                                                     "strength", "depth_range")}
    new.update(schema=SCHEMA, audio=True, controls=[control])
    return new


def canvas_paths(root: str | os.PathLike, shot: Shot, control: Control) -> list[Path]:
    """One canvas PNG per frame of the shot, in frame order."""
    return [Path(root) / control.folder / frame_file(n) for n in shot.frame_numbers]


def mask_paths(root: str | os.PathLike, shot: Shot, control: Control) -> list[Path]:
    """One mask PNG per frame ([] when the control has no masks)."""
    if not control.mask_folder:
        return []
    return [Path(root) / control.mask_folder / frame_file(n) for n in shot.frame_numbers]


def condition_paths(root: str | os.PathLike, shot: Shot, condition: Condition) -> list[Path]:
    """The condition's PNGs: the shot's first num_frames frames, in order."""
    return [Path(root) / condition.folder / frame_file(n)
            for n in range(shot.frame_start, shot.frame_start + condition.num_frames)]


def missing_files(root: str | os.PathLike, shot: Shot) -> str:
    """'' when every canvas, mask and condition file exists, else the first few that do not."""
    missing = [p for c in shot.controls for p in canvas_paths(root, shot, c) + mask_paths(root, shot, c)
               if not p.is_file()]
    missing += [p for c in shot.conditions for p in condition_paths(root, shot, c) if not p.is_file()]
    if not missing:
        return ""
    names = ", ".join(f"{p.parent.name}/{p.name}" for p in missing[:5])
    return names + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")


# ---------------------------------------------------------------- the manifest
def to_manifest(shot: Shot, *, request_id: str = "", client_info: str = ""):
    """The SubmitShot manifest of a bundle: a pure function of shot.json, so a resubmit after a
    crash (same request_id) carries the same manifest and the server deduplicates it."""
    from .proto import render_pb2 as pb  # the generated code beside this copy

    modes = {"auto": pb.CAMERA_MODE_AUTO, "preset": pb.CAMERA_MODE_PRESET,
             "trajectory": pb.CAMERA_MODE_TRAJECTORY, "off": pb.CAMERA_MODE_OFF}
    cam = shot.camera
    m = pb.ShotManifest(
        request_id=request_id, prompt=shot.prompt, negative_prompt=shot.negative_prompt, width=shot.width,
        height=shot.height, num_frames=shot.num_frames, fps=shot.fps, seed=shot.seed,
        num_inference_steps=shot.steps or 0, guidance_scale=shot.guidance_scale or 0.0, audio=shot.audio,
        stages=shot.stages or 0,
        shot_name=shot.name, client_info=client_info, frame_start=shot.frame_start,
        camera=pb.CameraSettings(mode=modes[cam.mode], preset_lora=cam.preset_lora,
                                 trajectory_lora=cam.trajectory_lora, weight=cam.weight,
                                 reference_downscale_factor=cam.reference_downscale_factor or 0))
    if cam.mode != "off":
        for f in shot.frames:
            k = f["intrinsics"]
            m.camera.frames.add(fx=float(k["fx"]), fy=float(k["fy"]), cx=float(k["cx"]), cy=float(k["cy"]),
                                world_to_camera=[float(v) for row in f["world_to_camera"] for v in row],
                                lens_mm=float(f.get("lens_mm", 0.0)))
    for c in shot.controls:
        ci = m.controls.add(kind=c.kind, lora=c.lora, lora_weight=c.lora_weight, strength=c.strength.value,
                            reference_downscale_factor=c.reference_downscale_factor or 0, width=c.width,
                            height=c.height, num_frames=shot.num_frames, has_mask=bool(c.mask_folder))
        if c.strength.per_frame is not None:
            ci.frame_strength.extend(c.strength.per_frame)
        if c.strength.background is not None and c.mask_folder:
            ci.background_strength = c.strength.background
    for c in shot.conditions:
        m.conditions.add(num_frames=c.num_frames, width=shot.width, height=shot.height, strength=c.strength)
    m.tail_frames = shot.tail_frames
    for name, weight in shot.extra_loras:
        m.extra_loras.add(name=name, weight=weight)
    return m


# ---------------------------------------------------------------- size rule
def reference_canvas_size(width: int, height: int, factor: int, two_stage: bool = False) -> tuple[int, int]:
    """(w, h) of the canvas a LoRA of `factor` reads for an output of width x height: 1/factor,
    halved again when the server renders two stages (references ride in the half-size stage 1)."""
    divisor = int(factor) * (2 if two_stage else 1)
    return width // divisor, height // divisor


# ---------------------------------------------------------------- JSON field helpers
def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise BundleError(f"{where} must be a JSON object (got {type(v).__name__})")
    return v


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        raise BundleError(f"{where} must be a JSON list (got {type(v).__name__})")
    return v


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise BundleError(f"{where} must be text (got {v!r})")
    return v


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BundleError(f"{where} must be a finite number (got {v!r})")
    return float(v)


def _int(v: Any, where: str, least: Optional[int] = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) and not (isinstance(v, float) and v.is_integer()):
        raise BundleError(f"{where} must be a whole number (got {v!r})")
    v = int(v)
    if least is not None and v < least:
        raise BundleError(f"{where} must be at least {least} (got {v})")
    return v


def _folder(v: Any, where: str) -> str:
    """A plain sub-folder name of the bundle: no separators, no '..' (a bundle never points outside itself)."""
    v = _str(v, where)
    if not v or v in (".", "..") or "/" in v or "\\" in v or "\0" in v:
        raise BundleError(f"{where} must be a plain folder name inside the bundle (got {v!r})")
    return v
