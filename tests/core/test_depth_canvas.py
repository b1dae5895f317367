"""Inverse depth, the shot's depth range, and composing/downscaling control canvases."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.canvas import compose_control, depth_canvas
from blender_addon.core.depth import inverse_depth, shot_depth_range
from blender_addon.core.openpose import COLORS, LIMB_COLORS, LIMBS
from blender_addon.core.png import read_png, write_png

BG = 1e10  # Blender's "nothing hit" depth


def test_inverse_depth_is_one_at_near_zero_at_far():
    depth = np.array([[1.0, 2.0, 4.0, 8.0, BG]])
    mask = np.array([[True, True, True, True, True]])
    v = inverse_depth(depth, mask, near=1.0, far=4.0)
    assert v.dtype == np.float32
    # (1/z - 1/4) / (1 - 1/4): 1 at z=1, (0.5-0.25)/0.75 at z=2, 0 at far, clipped beyond, 0 on background
    np.testing.assert_allclose(v[0], [1.0, 1 / 3, 0.0, 0.0, 0.0], atol=1e-6)


def test_inverse_depth_is_zero_outside_mask_and_on_bad_depth():
    depth = np.array([[0.5, 2.0, np.nan, -1.0, 0.0]])
    v = inverse_depth(depth, np.array([[True, False, True, True, True]]), 1.0, 4.0)
    np.testing.assert_array_equal(v[0], [1.0, 0, 0, 0, 0])  # z < near clips to 1
    with pytest.raises(ValueError, match="near < far"):
        inverse_depth(depth, depth > 0, 4.0, 1.0)
    with pytest.raises(ValueError, match="must match"):
        inverse_depth(depth, np.ones((2, 5), bool), 1.0, 4.0)


def test_range_spans_two_frames_and_ignores_background_and_unmasked():
    a = np.full((4, 4), BG)
    a[1, 1], a[2, 2] = 2.0, 3.0
    b = np.full((4, 4), BG)
    b[0, 0], b[3, 3] = 5.0, 0.5  # 0.5 m is outside the mask: ignored
    mask_b = np.zeros((4, 4), bool)
    mask_b[0, 0] = True
    near, far = shot_depth_range([a, b], [a < 1e9, mask_b], pad=0.0, far_level=0.0)
    assert (near, far) == (2.0, 5.0)
    near, far = shot_depth_range([a, b], [a < 1e9, mask_b])  # defaults: pad 2% each side, far_level 0
    assert near == pytest.approx(1.96) and far == pytest.approx(5.1)


def test_farthest_target_encodes_to_far_level_not_black():
    depth = np.array([[2.0, 5.0, BG]])
    mask = np.array([[True, True, True]])
    near, far = shot_depth_range([depth], [mask], pad=0.02, far_level=0.1)
    v = inverse_depth(depth, mask, near, far)
    assert v[0, 1] == pytest.approx(0.1, abs=1e-5)
    assert 0.95 < v[0, 0] < 1.0 and v[0, 2] == 0.0  # pad keeps the nearest just below white


def test_very_deep_range_caps_far():
    depth = np.array([[0.1, 50.0]])
    near, far = shot_depth_range([depth], [np.ones((1, 2), bool)], far_level=0.1)
    assert far == pytest.approx(5000.0)  # 100x the farthest target
    assert 0 < inverse_depth(depth, np.ones((1, 2), bool), near, far)[0, 1] < 0.1


def test_empty_frames_are_fine_but_empty_shot_is_an_error():
    a = np.full((3, 3), BG)
    b = np.full((3, 3), 2.0)
    assert shot_depth_range([a, b], [np.zeros((3, 3), bool), np.ones((3, 3), bool)], pad=0, far_level=0)[0] == 2.0
    with pytest.raises(ValueError, match="no target pixel is visible in any of the 2 frames"):
        shot_depth_range([a, a], [np.ones((3, 3), bool)] * 2)
    with pytest.raises(ValueError, match="one mask per depth"):
        shot_depth_range([a], [])


def _sample_frame(h=96, w=128):
    depth = np.full((h, w), BG)
    ys, xs = np.mgrid[0:h, 0:w]
    disc = (xs - 64) ** 2 + (ys - 48) ** 2 < 30**2
    depth[disc] = 2.0 + (xs[disc] - 34) / 60.0  # 2 m on the left, 3 m on the right
    kp = np.zeros((18, 3))
    kp[1] = [64.5, 30.5, 1]  # neck
    kp[2] = [44.5, 30.5, 1]  # r_shoulder
    kp[3] = [44.5, 70.5, 1]  # r_elbow
    return depth, disc, kp


def test_compose_control_grey_depth_with_skeleton_on_top(tmp_path):
    depth, mask, kp = _sample_frame()
    near, far = shot_depth_range([depth], [mask], far_level=0.0)
    canvas = compose_control(depth, mask, near, far, [kp])
    assert canvas.shape == (96, 128, 3) and canvas.dtype == np.uint8
    # background black, depth grey (R == G == B) and brighter on the nearer left side
    assert canvas[2, 2].tolist() == [0, 0, 0]
    left, right = canvas[48, 38], canvas[48, 92]
    assert left[0] == left[1] == left[2] and right[0] == right[1] == right[2]
    assert left[0] > right[0] + 50
    # limb r_shoulder -> r_elbow is limb 2; its midpoint carries the limb colour, joint the joint colour
    limb = LIMBS.index((2, 3))
    assert canvas[50, 44].tolist() == LIMB_COLORS[limb].tolist()
    assert canvas[70, 44].tolist() == COLORS[3].tolist()
    write_png(tmp_path / "canvas.png", canvas)
    assert np.array_equal(read_png(tmp_path / "canvas.png"), canvas)


def test_depth_canvas_matches_inverse_depth_rounding():
    depth, mask, _ = _sample_frame()
    grey = depth_canvas(depth, mask, 1.5, 4.0)
    expected = np.round(inverse_depth(depth, mask, 1.5, 4.0) * 255).astype(np.uint8)
    assert np.array_equal(grey[..., 0], expected) and np.array_equal(grey[..., 2], expected)
