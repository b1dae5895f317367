"""Camera math without Blender: intrinsics from Blender settings, extrinsics, projection.

(tests/blender/test_camera_track.py checks the same functions against Blender itself.)
"""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.camera_projection import (
    intrinsics_from_blender,
    project_points,
    resolve_sensor_fit,
    world_to_camera_opencv,
)


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def test_horizontal_fit_gives_lens_over_sensor_times_width():
    k = intrinsics_from_blender(50, 36, 24, "AUTO", 0, 0, 1920, 1080, 100, 1, 1)
    assert k.fx == pytest.approx(50 / 36 * 1920)
    assert k.fy == pytest.approx(k.fx)
    assert (k.cx, k.cy, k.width, k.height) == (960.0, 540.0, 1920, 1080)


def test_auto_fit_on_a_portrait_image_uses_sensor_width_along_the_height():
    # Blender's AUTO fit maps the sensor *width* to the longer side.
    k = intrinsics_from_blender(50, 36, 24, "AUTO", 0, 0, 1080, 1920, 100, 1, 1)
    assert k.fy == pytest.approx(50 / 36 * 1920)
    k_vert = intrinsics_from_blender(50, 36, 24, "VERTICAL", 0, 0, 1080, 1920, 100, 1, 1)
    assert k_vert.fy == pytest.approx(50 / 24 * 1920)


def test_resolution_percentage_scales_everything():
    full = intrinsics_from_blender(35, 36, 24, "HORIZONTAL", 0.1, -0.2, 1000, 600, 100, 1, 1)
    half = intrinsics_from_blender(35, 36, 24, "HORIZONTAL", 0.1, -0.2, 1000, 600, 50, 1, 1)
    assert (half.width, half.height) == (500, 300)
    assert np.allclose([half.fx, half.fy, half.cx, half.cy], np.array([full.fx, full.fy, full.cx, full.cy]) / 2)
    assert half == full.scaled(500, 300)


def test_shift_moves_principal_point_by_fraction_of_the_fitted_side():
    k = intrinsics_from_blender(50, 36, 24, "HORIZONTAL", 0.25, 0.1, 800, 400, 100, 1, 1)
    assert k.cx == pytest.approx(400 - 0.25 * 800)
    assert k.cy == pytest.approx(200 + 0.1 * 800)  # y shift up = principal point lower in the image


def test_non_square_pixels_make_fy_differ_from_fx():
    # Pixels twice as tall as wide: one pixel covers twice the angle vertically.
    k = intrinsics_from_blender(50, 36, 24, "HORIZONTAL", 0, 0, 800, 400, 100, 1, 2)
    assert k.fy == pytest.approx(k.fx / 2)
    # AUTO compares display sizes: 800x400 with 1:2 pixels is square on screen -> HORIZONTAL.
    assert resolve_sensor_fit("AUTO", 800, 400, 1, 2) == "HORIZONTAL"
    assert resolve_sensor_fit("AUTO", 800, 401, 1, 2) == "VERTICAL"


def test_world_to_camera_ignores_object_scale_and_flips_to_opencv_axes():
    c2w = np.eye(4)
    c2w[:3, :3] = _rot_x(np.pi / 2) @ np.diag([2.0, 3.0, 0.5])  # camera looks along +Y, scaled
    c2w[:3, 3] = (1.0, -4.0, 1.5)
    w2c = world_to_camera_opencv(c2w)
    assert np.allclose(w2c[:3, :3] @ w2c[:3, :3].T, np.eye(3))
    # A point 4 m in front of the camera (+Y) and 1 m up lands at z=4, y=-1 (OpenCV y down).
    p = w2c @ np.array([1.0, 0.0, 2.5, 1.0])
    assert np.allclose(p[:3], [0.0, -1.0, 4.0])


def test_projection_of_the_optical_axis_is_the_principal_point_and_behind_is_negative():
    k = intrinsics_from_blender(50, 36, 24, "AUTO", 0.1, 0.05, 640, 480, 100, 1, 1)
    w2c = world_to_camera_opencv(np.eye(4))  # Blender camera at origin looking down -Z
    xy, z = project_points(np.array([[0, 0, -3.0], [1.0, 0.5, -2.0], [0, 0, 3.0]]), k, w2c)
    assert np.allclose(xy[0], [k.cx, k.cy]) and z[0] == pytest.approx(3.0)
    assert np.allclose(xy[1], [k.cx + k.fx * 0.5, k.cy - k.fy * 0.25])
    assert z[2] < 0


@pytest.mark.parametrize(
    "kwargs, match",
    [({"lens_mm": 0}, "lens"), ({"sensor_fit": "FIT"}, "sensor_fit"), ({"resolution_x": 0}, "size"),
     ({"pixel_aspect_y": 0}, "pixel aspect")],
)
def test_bad_camera_settings_say_what_to_change(kwargs, match):
    args = dict(lens_mm=50, sensor_width_mm=36, sensor_height_mm=24, sensor_fit="AUTO", shift_x=0, shift_y=0,
                resolution_x=640, resolution_y=480, resolution_percentage=100, pixel_aspect_x=1, pixel_aspect_y=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        intrinsics_from_blender(**args)


def test_zero_scale_camera_is_rejected():
    with pytest.raises(ValueError, match="scale"):
        world_to_camera_opencv(np.diag([1.0, 0.0, 1.0, 1.0]))
