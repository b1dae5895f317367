"""A bundle written by the add-on's core is read by the backend's own reader (render_backend.bundle)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from blender_addon.core.bundle import BundleWriter, new_manifest
from render_backend import bundle as backend_bundle


def test_backend_reads_what_core_writes(tmp_path):
    manifest = new_manifest("shot_020", 128, 64, 24.0, 11, 19, prompt="a robot walks", seed=3,
                            control_width=64, control_height=32,
                            strength={"global": 0.7, "per_frame": None, "background": 0.1})  # fmt: skip
    writer = BundleWriter(tmp_path, manifest)
    controls = []
    for f in range(11, 20):
        control = np.full((32, 64, 3), f * 10, dtype=np.uint8)
        mask = np.zeros((32, 64), bool)
        mask[:, : f - 5] = True
        writer.write_frame(f, control, mask, [])
        controls.append((control, mask))
    cam = {"fx": 100.0, "fy": 100.0, "cx": 64.0, "cy": 32.0}
    writer.finish([{"frame": f, "intrinsics": cam, "world_to_camera": np.eye(4), "lens_mm": 50.0} for f in range(11, 20)])

    bundle = backend_bundle.read_bundle(tmp_path)
    m = bundle.manifest
    assert (m.width, m.height, m.num_frames, m.frame_start) == (128, 64, 9, 11)
    assert (m.control_width, m.control_height, m.num_control_frames, m.has_mask) == (64, 32, 9, True)
    assert m.control.strength == pytest.approx(0.7) and m.control.background_strength == pytest.approx(0.1)
    assert len(m.camera.frames) == 9 and list(m.camera.frames[0].world_to_camera) == np.eye(4).ravel().tolist()
    for i, (control, mask) in enumerate(controls):
        with Image.open(bundle.control_pngs[i]) as im:  # the backend decodes with Pillow
            assert im.mode == "RGB" and np.array_equal(np.asarray(im), control)
        with Image.open(bundle.mask_pngs[i]) as im:
            assert im.mode == "L" and np.array_equal(np.asarray(im) >= 128, mask)
