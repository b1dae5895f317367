"""Small datasets on disk in make-dataset's layout without Blender (real bundles and PNGs from the
add-on's own writers), for the trainer's error, resume and disk tests. The Blender-made dataset is in
test_train_from_blender.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from blender_addon.core.bundle import BundleWriter
from blender_addon.core.camera_paths import CameraPath
from blender_addon.core.dataset import ClipPlan, DatasetIndex, clip_entry, write_index
from blender_addon.core.png import write_png
from blender_addon.shot_bundle import Control, Shot, frame_file


def write_clip(root: Path, index: int, width: int = 64, height: int = 64, frames: int = 9, seed: int = 0) -> dict:
    """One clip: a random blocky canvas and a target that is its colourised negative (learnable)."""
    rng = np.random.default_rng(seed + index)
    plan = ClipPlan(index, 0, 1, frames, CameraPath("scene"))
    folder = root / "clips" / plan.name
    control = Control(kind="depth", folder="control", width=width, height=height)
    writer = BundleWriter(folder, [control])
    blocks = rng.integers(0, 256, (frames, height // 16, width // 16), dtype=np.uint8)
    entries = []
    for i in range(frames):
        grey = np.kron(blocks[i], np.ones((16, 16), dtype=np.uint8))
        canvas = np.repeat(grey[:, :, None], 3, axis=2)
        writer.write_frame(1 + i, [canvas], [None])
        target = np.stack([255 - grey, grey // 2, np.full_like(grey, 200)], axis=2)
        write_png(folder / "target" / frame_file(1 + i), target)
        w2c = np.eye(4)
        w2c[2, 3] = 3.0 + 0.1 * i
        entries.append({"frame": 1 + i, "intrinsics": {"fx": width, "fy": width, "cx": width / 2, "cy": height / 2},
                        "world_to_camera": w2c.tolist(), "lens_mm": 36.0})
    writer.finish(Shot(plan.name, width, height, 24.0, 1, frames, entries, prompt="red blue boxes", controls=[control]))
    return clip_entry(plan, "synthetic.blend", "Scene", "red blue boxes", "depth")


def write_dataset(root: Path, clips: int = 3, sizes: list[tuple[int, int]] | None = None, frames: int = 9) -> Path:
    sizes = sizes or [(64, 64)] * clips
    index = DatasetIndex("depth", sizes[0][0], sizes[0][1], frames, 24.0, 1, sizes[0][0], sizes[0][1])
    index.clips = [write_clip(root, i, w, h, frames) for i, (w, h) in enumerate(sizes)]
    write_index(root, index)
    return root


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
