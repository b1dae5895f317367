"""ltx-trainer files for a camera-trajectory dataset: the add-on cannot draw the trajectory canvas
(its one implementation, engine/camera_canvas.py, is the backend's), so the backend draws it here from
each bundle's camera track, through the engine's own planning, at the factor the LoRA is trained at,
and writes reference.mp4 plus ltx-trainer's metadata.jsonl / .csv.

The videos are H.264 4:4:4 at CRF 0: no chroma subsampling, so the alternating direction / moment
columns of docs/camera-canvas-v1.md stay apart (4:2:0 would average neighbouring columns' colours);
the RGB <-> YUV conversion still rounds by about one code. Give ltx-trainer the same factor
(--reference-downscale-factor F): the reference is already drawn at 1/F of the target.
"""

from __future__ import annotations

import csv
import io
import json

from ..engine.ltx2.conditioning import plan_conditioning
from ..media import write_bytes_atomic, write_mp4
from .cache import training_lora_info
from .dataset import TrainingDataset, clip_request

REFERENCE_FILE = "reference.mp4"
VIDEO_FILE = "video.mp4"


def write_trajectory_references(dataset: TrainingDataset, factor: int) -> list[dict]:
    """Draw every clip's trajectory canvas at 1/factor and write the ltx-trainer index; returns its rows."""
    info = training_lora_info("camera_trajectory", dataset, factor, rank=1)
    rows = []
    for clip in dataset.clips:
        req = clip_request(dataset, clip, info.name)
        (reference,) = plan_conditioning(req, {info.name: info}, req.width, req.height).references
        write_mp4(clip.bundle / REFERENCE_FILE, reference.frames, req.fps, crf=0, pix_fmt="yuv444p")
        folder = clip.bundle.relative_to(dataset.root).as_posix()
        rows.append({"video": f"{folder}/{VIDEO_FILE}", "reference_video": f"{folder}/{REFERENCE_FILE}",
                     "caption": clip.caption})
    write_bytes_atomic(dataset.root / "metadata.jsonl",
                       "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["video", "reference_video", "caption"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(dataset.root / "metadata.csv", out.getvalue().encode())
    return rows
