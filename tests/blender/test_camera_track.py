"""Exported K + world-to-camera reproduce Blender's own projection (world_to_camera_view)."""

from __future__ import annotations

import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Vector  # noqa: E402

from blender_addon.core.camera_projection import project_points, render_size  # noqa: E402
from blender_addon.gather.camera_track import sample_camera  # noqa: E402

from . import scenes  # noqa: E402

pytestmark = pytest.mark.blender

CASES = {
    "auto_landscape": {},
    "auto_portrait": {"res": (120, 200)},
    "horizontal_on_portrait": {"res": (120, 200), "fit": "HORIZONTAL"},
    "vertical_on_landscape": {"fit": "VERTICAL", "sensor": (36, 20)},
    "lens_shift": {"shift": (0.2, -0.15), "lens": 28},
    "tall_pixels": {"aspect": (1, 2)},
    "wide_pixels_portrait": {"res": (120, 200), "aspect": (2, 1)},
    "auto_flips_with_pixel_aspect": {"res": (200, 160), "aspect": (1, 1.5)},
    # 35 % keeps both sides whole (70x42). With a truncated side (37 %: 74x44.4 -> 44) Blender
    # renders the 74x44 frame but world_to_camera_view uses the untruncated aspect, so they differ.
    "resolution_percentage": {"pct": 35, "shift": (-0.1, 0.05)},
    "scaled_camera": {"scale": (2.0, 0.5, 3.0), "fit": "VERTICAL"},
}


@pytest.fixture(scope="module")
def scene():
    sc = scenes.empty_scene()
    cam = scenes.camera(sc, location=(0.7, -6.0, 1.3), rotation=(math.radians(80), math.radians(4),
                                                                 math.radians(-12)))
    cam.data.clip_start, cam.data.clip_end = 0.1, 100
    return sc


@pytest.mark.parametrize("case", sorted(CASES))
def test_projection_matches_blender_within_a_hundredth_of_a_pixel(scene, case):
    cfg = CASES[case]
    cam = scene.camera
    r = scene.render
    r.resolution_x, r.resolution_y = cfg.get("res", (200, 120))
    r.resolution_percentage = cfg.get("pct", 100)
    r.pixel_aspect_x, r.pixel_aspect_y = cfg.get("aspect", (1, 1))
    cam.data.sensor_fit = cfg.get("fit", "AUTO")
    cam.data.sensor_width, cam.data.sensor_height = cfg.get("sensor", (36, 24))
    cam.data.shift_x, cam.data.shift_y = cfg.get("shift", (0, 0))
    cam.data.lens = cfg.get("lens", 50)
    cam.scale = cfg.get("scale", (1, 1, 1))
    bpy.context.view_layer.update()

    width, height = render_size(r.resolution_x, r.resolution_y, r.resolution_percentage)
    sample = sample_camera(scene, width, height)
    rng = np.random.default_rng(len(case))
    # Random points in front of the camera, spread over (and a bit beyond) the frame.
    c2w = np.array(cam.matrix_world.normalized())
    local = np.stack([rng.uniform(-3, 3, 40), rng.uniform(-2, 2, 40), -rng.uniform(1, 20, 40)], axis=1)
    points = local @ c2w[:3, :3].T + c2w[:3, 3]

    xy, z = project_points(points, sample.intrinsics, sample.world_to_camera)
    for p, (u, v), depth in zip(points, xy, z, strict=True):
        ndc = world_to_camera_view(scene, cam, Vector(p))
        assert depth == pytest.approx(ndc.z, rel=1e-6)  # mathutils is float32
        assert u == pytest.approx(ndc.x * width, abs=0.01)
        assert v == pytest.approx((1.0 - ndc.y) * height, abs=0.01)
