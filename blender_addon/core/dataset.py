"""A LoRA training dataset made from Blender scenes: its folder layout, clip plan and index files.
No bpy; gather/dataset.py renders the clips.

    DATASET/
      dataset.json          this format (DATASET_FORMAT), the clips finished so far; rewritten
                            (temp + rename) after each clip, so an interrupted run leaves a usable set
      metadata.jsonl, .csv  Lightricks' ltx-trainer index: video, reference_video, caption (paths
                            relative to DATASET); for camera-trajectory the backend writes them once it
                            has drawn the canvases (render-backend train DATASET --prepare-only)
      clips/clip_0000/      a shot bundle (docs/shot-bundle.md: shot.json, control/, transforms.json...)
        target/000001.png   the finished render of each frame (scene materials and lights)
        video.mp4           the target as H.264 for ltx-trainer
        reference.mp4       the control canvas (lossless H.264 4:4:4) for ltx-trainer

A clip's reference is the canvas of the SAME camera path that rendered its target: the bundle's
control canvas, or for camera-trajectory the trajectory canvas the backend draws from the bundle's
camera track (the one implementation of docs/camera-canvas-v1.md lives in the backend).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..shot_bundle import CANVAS_KINDS
from .camera_paths import CameraPath, random_path
from .png import write_bytes_atomic

DATASET_FORMAT = "ltx-blender-dataset/1"
DATASET_FILE = "dataset.json"
TRAINER_JSONL, TRAINER_CSV = "metadata.jsonl", "metadata.csv"
CLIPS_FOLDER, TARGET_FOLDER = "clips", "target"
VIDEO_FILE, REFERENCE_FILE = "video.mp4", "reference.mp4"
TRAJECTORY_KIND = "camera-trajectory"
DATASET_KINDS = (*CANVAS_KINDS, TRAJECTORY_KIND)
# The bundle format needs one control canvas per clip; a trajectory clip carries this one (cheap: one
# depth render per frame) beside its camera track.
TRAJECTORY_BUNDLE_CANVAS = "depth"


def clip_name(index: int) -> str:
    return f"clip_{index:04d}"


@dataclass
class ClipPlan:
    """One clip to make: which .blend (index into the command's list), frames, camera path."""

    index: int
    blend: int
    frame_start: int
    num_frames: int
    path: CameraPath

    @property
    def name(self) -> str:
        return clip_name(self.index)

    @property
    def frame_end(self) -> int:
        return self.frame_start + self.num_frames - 1


def plan_clips(ranges: list[tuple[int, int]], clips_per_scene: int, num_frames: int, kinds: list[str],
               seed: int = 0) -> list[ClipPlan]:
    """clips_per_scene clips for each scene's (frame_start, frame_end): random start frames inside the
    range (the first frame when the range is shorter than a clip); the first clip of a scene keeps the
    scene's own camera (when "scene" is in `kinds`), the others cycle through the moving kinds in a
    shuffled order, so each appears once before any repeats."""
    if clips_per_scene < 1:
        raise ValueError(f"--clips must be at least 1 (got {clips_per_scene})")
    rng = np.random.default_rng(seed)
    plans = []
    moving = [k for k in kinds if k != "scene"] or list(kinds)
    for blend, (first, last) in enumerate(ranges):
        order: list[str] = []
        for k in range(clips_per_scene):
            if k == 0 and "scene" in kinds:
                kind = "scene"  # the scene's own camera first: the shot as the artist made it
            else:
                order = order or [moving[i] for i in rng.permutation(len(moving))]
                kind = order.pop(0)
            latest = max(first, last - num_frames + 1)
            start = int(rng.integers(first, latest + 1))
            plans.append(ClipPlan(len(plans), blend, start, num_frames, random_path(rng, kind)))
    return plans


@dataclass
class DatasetIndex:
    """dataset.json: what the dataset is (one kind, one size, one frame count) and its finished clips."""

    kind: str
    width: int
    height: int
    num_frames: int
    fps: float
    reference_downscale_factor: int
    canvas_width: int
    canvas_height: int
    clips: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"format": DATASET_FORMAT, "kind": self.kind, "width": self.width, "height": self.height,
                "num_frames": self.num_frames, "fps": self.fps,
                "reference_downscale_factor": self.reference_downscale_factor,
                "canvas_width": self.canvas_width, "canvas_height": self.canvas_height,
                "ltx_trainer_metadata": None if self.kind == TRAJECTORY_KIND else TRAINER_JSONL,
                "clips": self.clips}


def clip_entry(plan: ClipPlan, blend: str, scene: str, caption: str, kind: str) -> dict:
    """dataset.json's record of one finished clip (paths relative to the dataset folder)."""
    folder = f"{CLIPS_FOLDER}/{plan.name}"
    return {"name": plan.name, "bundle": folder, "target": f"{folder}/{TARGET_FOLDER}",
            "video": f"{folder}/{VIDEO_FILE}",
            "reference_video": None if kind == TRAJECTORY_KIND else f"{folder}/{REFERENCE_FILE}",
            "caption": caption, "blend": blend, "scene": scene, "frame_start": plan.frame_start,
            "frame_end": plan.frame_end, "camera_path": plan.path.to_json()}


def write_index(root: str | os.PathLike, index: DatasetIndex) -> Path:
    """dataset.json and, for canvas kinds, Lightricks' metadata.jsonl + .csv, all temp + rename."""
    root = Path(root)
    if index.kind != TRAJECTORY_KIND:
        write_trainer_metadata(root, [{"video": c["video"], "reference_video": c["reference_video"],
                                       "caption": c["caption"]} for c in index.clips])
    path = root / DATASET_FILE
    write_bytes_atomic(path, (json.dumps(index.to_json(), indent=1) + "\n").encode())
    return path


def write_trainer_metadata(root: str | os.PathLike, rows: list[dict]) -> None:
    """ltx-trainer's index (docs/dataset-preparation.md): one JSON object per line, and the same as CSV."""
    root = Path(root)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    write_bytes_atomic(root / TRAINER_JSONL, lines.encode())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["video", "reference_video", "caption"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(root / TRAINER_CSV, out.getvalue().encode())


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float, lossless: bool = False) -> Path:
    """(F, H, W, 3) uint8 -> H.264 mp4 (temp + rename). lossless: CRF 0 at 4:4:4, so thin lines and
    per-column codes of a canvas survive; else 4:2:0 at CRF 12 (a natural-looking render)."""
    try:
        import av
    except ImportError:
        raise ValueError("writing the ltx-trainer videos needs PyAV: pip install av (it is in requirements.txt)") \
            from None
    from fractions import Fraction

    frames = np.asarray(frames)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv444p" if lossless else "yuv420p"
            stream.options = {"crf": "0" if lossless else "12", "preset": "medium"}
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
