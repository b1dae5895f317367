"""Solid-mode playblast shading in numpy: Lambert with Workbench's wrap and reciprocal, sRGB out,
grey or object colours, the world colour behind."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.canvas_kinds import CanvasOptions, FrameSample, clip_canvases
from blender_addon.core.playblast import (
    DEFAULT_LIGHTING,
    GREY,
    SolidLight,
    StudioLighting,
    fast_rcp,
    playblast_canvas,
    solid_shading,
    srgb_encode,
)

# One light from the camera's upper left (view space: x right, y up, z towards the viewer), no wrap.
KEY = StudioLighting(ambient=(0.0, 0.0, 0.0), lights=(SolidLight((-0.6, 0.0, 0.8), (1.0, 1.0, 1.0), 0.0),))


def _normals_towards(angles_deg: np.ndarray) -> np.ndarray:
    """(1, N, 3) OpenCV camera-space normals turned by each angle from facing the camera toward -x."""
    a = np.radians(angles_deg)
    return np.stack([-np.sin(a), np.zeros_like(a), -np.cos(a)], axis=-1)[None]


def test_grey_levels_follow_lambert_of_known_normals():
    angles = np.array([0.0, 20.0, 36.87, 60.0, 100.0, 150.0])
    n = _normals_towards(angles)
    linear = solid_shading(n, GREY, KEY)[0, :, 0]
    light = np.radians(36.87)  # the light's angle from the view axis: (-0.6, 0, 0.8)
    cos = np.clip(np.cos(np.radians(angles) - light), 0, None)
    np.testing.assert_allclose(linear, GREY * fast_rcp(np.float32(1.0)) * cos, rtol=1e-5, atol=1e-7)
    assert linear[2] == pytest.approx(GREY * 0.93443364, rel=1e-6)  # facing the light: Workbench's 1/1
    assert linear[-1] == 0.0  # facing away: black (no ambient here)
    grey = playblast_canvas(np.ones((1, 6), bool), n, lighting=KEY)[0, :, 0].astype(int)
    brighter = cos[:, None] > cos[None, :]
    assert np.all((grey[:, None] >= grey[None, :])[brighter])  # more light, never darker
    assert grey[2] == round(255 * (1.055 * (GREY * 0.93443364) ** (1 / 2.4) - 0.055))


def test_wrap_lights_the_terminator_softly_and_ambient_adds():
    soft = StudioLighting((0.1, 0.1, 0.1), (SolidLight((0.0, 0.0, 1.0), (1.0, 1.0, 1.0), 0.5),))
    side = _normals_towards(np.array([90.0]))  # 90 deg from the light
    value = solid_shading(side, 1.0, soft)[0, 0, 0]
    assert value == pytest.approx(0.1 + 0.5 * float(fast_rcp(np.float32(2.25))), rel=1e-6)  # (nl + w) / (1 + w)^2
    assert float(fast_rcp(np.float32(2.25))) == pytest.approx(1 / 2.25, rel=0.03)


def test_srgb_encoding_and_the_world_colour_behind():
    assert srgb_encode(np.array([0.0, 0.0031308, 0.22, 0.5, 1.0, 2.0])).tolist() == [0, 10, 129, 188, 255, 255]
    surface = np.zeros((2, 2), bool)
    surface[0, 0] = True
    canvas = playblast_canvas(surface, np.tile([0.0, 0.0, -1.0], (2, 2, 1)), background=(0.05, 0.05, 0.05))
    assert canvas[1, 1].tolist() == [63, 63, 63]
    assert canvas[0, 0, 0] > canvas[1, 1, 0]


def test_object_colours_tint_the_same_shading():
    n = np.tile([0.0, 0.0, -1.0], (1, 2, 1))
    colours = np.array([[[0.8, 0.8, 0.8], [0.8, 0.0, 0.0]]])
    depth = np.full((1, 2), 3.0)
    sample = FrameSample(depth, np.zeros((1, 2), bool), normals=n, object_colours=colours)
    grey = clip_canvases([sample], "playblast")[0]
    tinted = clip_canvases([sample], "playblast", CanvasOptions(playblast_colour="object"))[0]
    assert grey[0, 0].tolist() == grey[0, 1].tolist() == tinted[0, 0].tolist()
    assert tinted[0, 1, 0] == tinted[0, 0, 0] and tinted[0, 1, 1] == tinted[0, 1, 2] == 0


def test_default_studio_light_lights_a_face_on_surface_like_blenders_solid_mode():
    # A surface facing the camera under Blender's "Default" studio light, grey 0.8 (value checked
    # against a Workbench render in tests/blender/test_canvas_kinds.py).
    linear = solid_shading(np.array([[[0.0, 0.0, -1.0]]]), GREY, DEFAULT_LIGHTING)[0, 0]
    assert linear[0] == pytest.approx(0.8 * (0.521083 * 0.844415 * 0.93443364
                                             + 0.038403 * (0.212999 + 0.478261) * float(fast_rcp(np.float32(1.478261 ** 2)))),
                                      rel=1e-4)


def test_workbench_render_is_used_as_is_when_given():
    solid = np.full((2, 3, 3), 0.22, dtype=np.float32)
    sample = FrameSample(np.full((2, 3), 1e10), np.zeros((2, 3), bool), solid=solid)
    assert (clip_canvases([sample], "playblast")[0] == 129).all()
