"""Reading a training dataset made by `python -m blender_addon.cli make-dataset` (layout: the add-on's
core/dataset.py): shot bundles + target renders, all of one kind, size, frame count and rate.

Each clip becomes the RenderRequest the engine would get for its bundle (offline.bundle_request: the
same doors as an upload or `render BUNDLE`), with the LoRA being trained as its control (or trajectory)
LoRA at full strength; the engine's own planning (conditioning.plan_conditioning) then turns it into
reference canvases. So a control canvas is read at the trained factor exactly as at render time, and a
camera-trajectory clip's canvas is drawn by the engine's camera_canvas from the bundle's camera track.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..engine.request import CameraRequest, RenderRequest
from ..shot_bundle import BundleError, frame_file, read_shot

DATASET_FORMAT = "ltx-blender-dataset/1"
DATASET_FILE = "dataset.json"
TRAJECTORY_KIND = "camera-trajectory"
MAKE_DATASET = "python -m blender_addon.cli make-dataset SCENE.blend --kind KIND --clips 8 --out DATASET"


class DatasetError(ValueError):
    """A dataset the trainer cannot use; the message says what to change."""


@dataclass(frozen=True)
class TrainingClip:
    name: str
    bundle: Path  # the shot bundle folder
    target: Path  # folder of the finished frames, one PNG per Blender frame
    caption: str
    frame_start: int
    num_frames: int
    width: int
    height: int
    fps: float
    canvas_size: tuple[int, int]  # the bundle's control canvas (w, h)

    def target_paths(self) -> list[Path]:
        return [self.target / frame_file(self.frame_start + i) for i in range(self.num_frames)]

    def target_frames(self) -> np.ndarray:
        """(F, H, W, 3) uint8, the finished render."""
        from ..server.upload import decode_png

        return np.stack([decode_png(p, "RGB") for p in self.target_paths()])


@dataclass(frozen=True)
class TrainingDataset:
    root: Path
    kind: str  # a canvas kind or "camera-trajectory"
    clips: tuple[TrainingClip, ...]
    reference_downscale_factor: int  # the factor the canvases were exported for

    @property
    def trajectory(self) -> bool:
        return self.kind == TRAJECTORY_KIND

    @property
    def lora_kind(self) -> str:
        """What the server calls a LoRA trained on this dataset (engine/loras.py KINDS)."""
        return "camera_trajectory" if self.trajectory else "control"

    @property
    def width(self) -> int:
        return self.clips[0].width

    @property
    def height(self) -> int:
        return self.clips[0].height

    @property
    def num_frames(self) -> int:
        return self.clips[0].num_frames

    @property
    def fps(self) -> float:
        return self.clips[0].fps


def read_dataset(root: str | Path) -> TrainingDataset:
    """dataset.json and every clip it lists, checked: one kind, size, frame count, rate and canvas size."""
    root = Path(root)
    index_path = root / DATASET_FILE
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; make a dataset first: {MAKE_DATASET}")
    if not index_path.is_file():
        if (root / "metadata.jsonl").is_file() or (root / "metadata.csv").is_file():
            raise DatasetError(f"{root} has an ltx-trainer index but no {DATASET_FILE}: this trainer needs the shot "
                               "bundles of make-dataset (it draws each reference exactly as the engine does); "
                               f"make the dataset with: {MAKE_DATASET}")
        raise DatasetError(f"{root}: no {DATASET_FILE}, so not a finished dataset; make one with: {MAKE_DATASET}")
    try:
        doc = json.loads(index_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{index_path}: not valid JSON ({e}); make the dataset again") from None
    if not isinstance(doc, dict) or doc.get("format") != DATASET_FORMAT:
        raise DatasetError(f"{index_path}: format {doc.get('format') if isinstance(doc, dict) else None!r} is not "
                           f"{DATASET_FORMAT!r}; make the dataset again with this version")
    entries = doc.get("clips") or []
    if not entries:
        raise DatasetError(f"{root} has no finished clips (dataset.json lists none); make some: {MAKE_DATASET}")
    kind = str(doc.get("kind", ""))
    clips = tuple(_read_clip(root, entry) for entry in entries)
    _check_uniform(root, clips)
    return TrainingDataset(root, kind, clips, int(doc.get("reference_downscale_factor") or 1))


def _read_clip(root: Path, entry: dict) -> TrainingClip:
    name = str(entry.get("name", "?"))
    bundle, target = root / str(entry.get("bundle", "")), root / str(entry.get("target", ""))
    try:
        shot = read_shot(bundle)
    except BundleError as e:
        raise DatasetError(f"clip {name}: {e}") from None
    if not shot.controls:
        raise DatasetError(f"clip {name}: the bundle has no control canvas; make the dataset again")
    control = shot.controls[0]
    clip = TrainingClip(name, bundle, target, str(entry.get("caption") or shot.prompt), shot.frame_start,
                        shot.num_frames, shot.width, shot.height, float(shot.fps), (control.width, control.height))
    if not clip.caption.strip():
        raise DatasetError(f"clip {name} has no caption; give make-dataset --caption or --captions")
    missing = [p.name for p in clip.target_paths() if not p.is_file()]
    if missing:
        raise DatasetError(f"clip {name}: {len(missing)} target frame(s) missing in {target} ({', '.join(missing[:3])}"
                           "); make the dataset again")
    from PIL import Image

    with Image.open(clip.target_paths()[0]) as img:
        if img.size != (clip.width, clip.height):
            raise DatasetError(f"clip {name}: the target frames are {img.size[0]}x{img.size[1]} but its shot is "
                               f"{clip.width}x{clip.height}; make the dataset again")
    return clip


def _check_uniform(root: Path, clips: tuple[TrainingClip, ...]) -> None:
    """One size, frame count, rate and canvas size for every clip (ltx-trainer's one bucket; the latent
    grid and the positions of the references must not change between steps)."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for c in clips:
        groups[(c.width, c.height, c.num_frames, c.fps, c.canvas_size)].append(c.name)
    if len(groups) > 1:
        lines = "; ".join(f"{w}x{h}, {n} frames, {fps:g} fps, canvas {cw}x{ch}: {len(names)} clip(s) "
                          f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                          for (w, h, n, fps, (cw, ch)), names in groups.items())
        raise DatasetError(f"{root} mixes clip sizes ({lines}); a dataset is one size and frame count: make it "
                           "again with one --size and --frames, or split it into one dataset per size")


def dataset_hash(dataset: TrainingDataset) -> str:
    """sha256 over every clip's shot.json, canvases, target frames and caption, in clip order."""
    h = hashlib.sha256()
    for clip in dataset.clips:
        h.update(clip.name.encode() + b"\0" + clip.caption.encode() + b"\0")
        files = [clip.bundle / "shot.json", *sorted((clip.bundle / "control").glob("*.png")), *clip.target_paths()]
        for path in files:
            with open(path, "rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def clip_request(dataset: TrainingDataset, clip: TrainingClip, lora: str) -> RenderRequest:
    """The engine request for one clip with `lora` reading its reference at full strength: the control
    canvas (no strength curve, no mask: Lightricks trains with plain attention) or, for
    camera-trajectory, the trajectory canvas of the bundle's camera track. One stage, no other LoRA, no
    frame condition."""
    from ..offline import bundle_request, read_bundle
    from ..server.convert import ShotError

    try:
        req = bundle_request(read_bundle(clip.bundle))
    except (BundleError, ShotError) as e:
        raise DatasetError(f"clip {clip.name}: {getattr(e, 'message', e)}") from None
    req.prompt, req.negative_prompt = clip.caption, ""
    req.extra_loras, req.conditions, req.stages = [], [], 1
    frames = req.camera.frames
    if dataset.trajectory:
        req.controls = []
        req.camera = CameraRequest(mode="trajectory", trajectory_lora=lora, frames=frames)
    else:
        control = req.controls[0]
        req.controls = [replace(control, lora=lora, lora_weight=1.0, strength=1.0, frame_strength=None, masks=None,
                                has_mask=False, background_strength=None, reference_downscale_factor=None)]
        req.camera = CameraRequest(mode="off", frames=frames)
    return req
