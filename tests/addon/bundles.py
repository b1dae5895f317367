"""Write small but valid shot bundles (docs/shot-bundle.md) without Blender, for client tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_bundle(folder: Path, *, frames: int = 9, width: int = 64, height: int = 64, fps: float = 24.0,
                 frame_start: int = 1, name: str = "shot_0001-0009", masks: bool = True,
                 png_noise: bool = False, control_lora: str = "control", schema: int = 2,
                 per_frame: list[float] | None = None) -> Path:
    """A bundle with real PNGs; png_noise makes each PNG incompressible (multi-chunk uploads).
    control_lora: "control" is the tiny test model's control LoRA. schema=1 writes the old
    `ltx-shot/1` layout (one control canvas, its keys at the top level) that readers still take."""
    folder = Path(folder)
    (folder / "control").mkdir(parents=True, exist_ok=True)
    if masks:
        (folder / "mask").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    cam_frames = []
    for i in range(frames):
        f = frame_start + i
        if png_noise:
            canvas = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            canvas = np.full((height, width, 3), 10 * i % 256, np.uint8)
        Image.fromarray(canvas).save(folder / "control" / f"{f:06d}.png")
        if masks:
            mask = np.zeros((height, width), np.uint8)
            mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 255
            Image.fromarray(mask).save(folder / "mask" / f"{f:06d}.png")
        w2c = np.eye(4)
        w2c[2, 3] = 5.0 + 0.1 * i
        cam_frames.append({"frame": f, "intrinsics": {"fx": 50.0, "fy": 50.0, "cx": width / 2, "cy": height / 2},
                           "world_to_camera": w2c.tolist(), "lens_mm": 50.0 + i, "sensor_width_mm": 36.0,
                           "sensor_height_mm": 24.0, "sensor_fit": "AUTO", "clip_start": 0.1, "clip_end": 100.0})
    if schema == 2:
        from blender_addon.shot_bundle import Control, Shot, Strength, write_shot

        control = Control(kind="depth+pose", lora=control_lora, folder="control", mask_folder="mask" if masks else None,
                          width=width, height=height, strength=Strength(0.8, per_frame, 0.2),
                          depth_range={"near": 1.0, "far": 10.0})
        write_shot(folder, Shot(name=name, width=width, height=height, fps=fps, frame_start=frame_start,
                                frame_end=frame_start + frames - 1, frames=cam_frames, scene="Scene",
                                prompt="a walker", seed=7, controls=[control], targets=["Actors"],
                                armatures=["Walker"]))
        return folder
    shot = {"schema": "ltx-shot/1", "name": name, "scene": "Scene", "prompt": "a walker", "negative_prompt": "",
            "seed": 7, "width": width, "height": height, "control_width": width, "control_height": height,
            "fps": fps, "frame_start": frame_start, "frame_end": frame_start + frames - 1,
            "depth_range": {"near": 1.0, "far": 10.0},
            "strength": {"global": 0.8, "per_frame": None, "background": 0.2}, "control_lora": control_lora,
            "camera": {"mode": "auto", "preset_lora": "", "trajectory_lora": "", "weight": 1.0},
            "targets": ["Actors"], "armatures": ["Walker"], "frames": cam_frames}
    (folder / "shot.json").write_text(json.dumps(shot))
    return folder
