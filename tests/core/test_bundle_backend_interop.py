"""A bundle written by the add-on's core is read by the backend through the shared schema module."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon import shot_bundle as addon_schema
from blender_addon.core.bundle import BundleWriter
from render_backend import offline as backend_bundle
from render_backend import shot_bundle as backend_schema


def test_both_packages_ship_the_same_schema_module():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    canonical = (root / "protos" / "shot_bundle.py").read_text()
    for copy in (root / "render_backend" / "shot_bundle.py", root / "blender_addon" / "shot_bundle.py"):
        assert copy.read_text().split("\n", 1)[1] == canonical, f"{copy} differs: run ./dev protos"
    assert addon_schema.SCHEMA == backend_schema.SCHEMA == "ltx-shot/2"


def test_backend_reads_what_core_writes(tmp_path):
    control = addon_schema.Control(kind="depth+pose", lora="control", folder="control", mask_folder="mask",
                                   width=64, height=32, strength=addon_schema.Strength(0.7, None, 0.1))
    writer = BundleWriter(tmp_path, [control])
    canvases = []
    for f in range(11, 20):
        canvas = np.full((32, 64, 3), f * 10, dtype=np.uint8)
        mask = np.zeros((32, 64), bool)
        mask[:, : f - 5] = True
        writer.write_frame(f, [canvas], [mask], [])
        canvases.append((canvas, mask))
    cam = {"fx": 100.0, "fy": 100.0, "cx": 64.0, "cy": 32.0}
    writer.finish(addon_schema.Shot(
        name="shot_020", width=128, height=64, fps=24.0, frame_start=11, frame_end=19, prompt="a robot walks", seed=3,
        controls=[control], frames=[{"frame": f, "intrinsics": cam, "world_to_camera": np.eye(4), "lens_mm": 50.0}
                                    for f in range(11, 20)]))

    bundle = backend_bundle.read_bundle(tmp_path)
    m = bundle.manifest
    assert (m.width, m.height, m.num_frames, m.frame_start) == (128, 64, 9, 11)
    c = m.controls[0]
    assert (c.width, c.height, c.num_frames, c.has_mask, c.kind) == (64, 32, 9, True, "depth+pose")
    assert c.strength == pytest.approx(0.7) and c.background_strength == pytest.approx(0.1)
    assert len(m.camera.frames) == 9 and list(m.camera.frames[0].world_to_camera) == np.eye(4).ravel().tolist()
    req = backend_bundle.bundle_request(bundle)
    (control_in,) = req.controls
    assert control_in.frames.shape == (9, 32, 64, 3) and len(control_in.masks) == 9
    for i, (canvas, mask) in enumerate(canvases):
        assert np.array_equal(control_in.frames[i], canvas) and np.array_equal(control_in.masks[i], mask)
