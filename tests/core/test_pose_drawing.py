"""The DWPose `pose` canvas: limb and joint sizes, palette x 0.6, hand rainbow lines and blue dots,
white face dots, sizes scaling with the image, options; OpenPose JSON with hands and face."""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest

from blender_addon.core.openpose import (
    COCO18_NAMES,
    COLORS,
    LIMB_COLORS,
    openpose_json,
    people_from_openpose_json,
)
from blender_addon.core.openpose_json import Person, persons_from_openpose_json
from blender_addon.core.pose_drawing import (
    FACE_DOT_COLOR,
    HAND_DOT_COLOR,
    HAND_EDGE_COLORS,
    draw_hand,
    hand_face_sizes,
    pose_canvas,
)

J = {n: i for i, n in enumerate(COCO18_NAMES)}


def _colour_mask(canvas: np.ndarray, colour) -> np.ndarray:
    return (canvas == np.asarray(colour, dtype=np.uint8)).all(axis=2)


def _one_limb(size: int) -> np.ndarray:
    """Only neck -> r_shoulder (limb 0), horizontal, 200 px long at 512."""
    s = size // 256  # at pixel centres: the limb's centre is one too
    body = np.zeros((18, 3))
    body[J["neck"]] = (178 * s + 0.5, 128 * s + 0.5, 1.0)
    body[J["r_shoulder"]] = (78 * s + 0.5, 128 * s + 0.5, 1.0)
    return body


@pytest.mark.parametrize("size, half_width, radius", [(512, 4, 4), (256, 2, 2), (1024, 8, 8)])
def test_limb_half_width_and_joint_radius_scale_with_the_image(size, half_width, radius):
    canvas = pose_canvas([_one_limb(size)], size, size)
    limb = _colour_mask(canvas, LIMB_COLORS[0])
    mid_x = 128 * (size // 256)
    # a column through the middle of the horizontal limb: 2 * half_width + 1 pixel centres inside
    assert limb[:, mid_x].sum() == 2 * half_width + 1
    neck_disc = _colour_mask(canvas, COLORS[J["neck"]])
    assert neck_disc.sum() == np.sum(np.add.outer(np.arange(-radius, radius + 1) ** 2,
                                                  np.arange(-radius, radius + 1) ** 2) <= radius ** 2)
    assert abs(neck_disc.sum() - np.pi * radius ** 2) < 0.15 * np.pi * radius ** 2


def test_limbs_are_the_palette_times_0_6_and_joints_the_full_colour():
    np.testing.assert_array_equal(LIMB_COLORS[:3], [[153, 0, 0], [153, 51, 0], [153, 102, 0]])
    canvas = pose_canvas([_one_limb(512)], 512, 512)
    assert canvas[256, 256].tolist() == [153, 0, 0]  # limb 0 = neck -> r_shoulder
    assert canvas[256, 356].tolist() == COLORS[J["neck"]].tolist()  # the neck joint on top
    assert canvas[256, 156].tolist() == COLORS[J["r_shoulder"]].tolist()
    assert canvas[256, 356 + 5].tolist() == [0, 0, 0]  # beyond the joint's radius and the limb's end


def test_hand_edge_colours_are_the_hsv_rainbow_of_dwpose():
    for i, colour in enumerate(HAND_EDGE_COLORS):
        exact = np.array(colorsys.hsv_to_rgb(i / 20, 1.0, 1.0)) * 255
        assert np.abs(colour - exact).max() <= 0.5 + 1e-9, i  # rounded, never further
    # values pinned against matplotlib's hsv_to_rgb + OpenCV's rounding (76.5 -> 77 in float64)
    assert HAND_EDGE_COLORS[:4].tolist() == [[255, 0, 0], [255, 77, 0], [255, 153, 0], [255, 229, 0]]
    assert HAND_EDGE_COLORS[10].tolist() == [0, 255, 255] and HAND_EDGE_COLORS[19].tolist() == [255, 0, 77]


def _straight_hand(x: float, y0: float, step: float) -> np.ndarray:
    """Wrist at (x, y0), each finger's 4 points straight down from it, fingers 40 px apart."""
    hand = np.zeros((21, 3))
    hand[0] = (x, y0, 1)
    for f in range(5):
        for k in range(4):
            hand[1 + 4 * f + k] = (x + 40 * (f - 2), y0 + step * (k + 1), 1)
    return hand


def test_hand_lines_are_3_px_opencv_thickness_2_with_blue_dots_at_512():
    canvas = np.zeros((512, 512, 3), dtype=np.uint8)
    hand = _straight_hand(256.5, 50.5, 60.0)
    draw_hand(canvas, hand)
    # the middle finger is vertical: edge 9 (point 9 -> 10) between its dots
    row = int(hand[9, 1] + 30)
    line = _colour_mask(canvas[row:row + 1], HAND_EDGE_COLORS[9])[0]
    assert line.sum() == 3 and line[256]
    dots = _colour_mask(canvas, HAND_DOT_COLOR)
    assert np.all(dots[hand[1:, 1].astype(int), hand[1:, 0].astype(int)])
    tip_x, tip_y = int(hand[20, 0]), int(hand[20, 1])
    assert _colour_mask(canvas[tip_y - 6:tip_y + 7, tip_x - 6:tip_x + 7], HAND_DOT_COLOR).sum() == 49  # r = 4
    assert hand_face_sizes(512, 768) == (1.5, 4, 3)
    assert hand_face_sizes(384, 256) == (0.5, 2, 2)


def test_face_is_68_white_dots_of_radius_3():
    face = np.zeros((68, 3))
    face[:, 0] = 20.5 + 12 * (np.arange(68) % 17)
    face[:, 1] = 20.5 + 12 * (np.arange(68) // 17)
    body = np.zeros((18, 3))
    canvas = pose_canvas([Person(body, face=np.column_stack([face[:, :2], np.ones(68)]))], 512, 512)
    white = _colour_mask(canvas, FACE_DOT_COLOR)
    assert white.sum() == 68 * 29  # an r = 3 disc covers 29 pixel centres
    off = pose_canvas([Person(body, face=np.column_stack([face[:, :2], np.ones(68)]))], 512, 512, face=False)
    assert not off.any()


def test_hands_and_face_options_and_invisible_points():
    hands = np.stack([_straight_hand(150.5, 40.5, 40.0), _straight_hand(350.5, 40.5, 40.0)])
    hands[1, 5:9, 2] = 0  # right index finger not visible: its dots and lines are not drawn
    person = Person(np.zeros((18, 3)), hands=hands)
    on = pose_canvas([person], 512, 512)
    off = pose_canvas([person], 512, 512, hands=False)
    assert not off.any()
    assert _colour_mask(on, HAND_DOT_COLOR).sum() == 49 * (21 + 17)
    left_index_edge, right_index_edge = _colour_mask(on[:, :256], HAND_EDGE_COLORS[5]), \
        _colour_mask(on[:, 256:], HAND_EDGE_COLORS[5])
    assert left_index_edge.sum() > 50 and right_index_edge.sum() == 0


def test_openpose_json_carries_hands_and_face_and_stays_body_only_without_them():
    rng = np.random.default_rng(0)
    full = Person(rng.uniform(0, 500, (18, 3)), rng.uniform(0, 500, (2, 21, 3)), rng.uniform(0, 500, (68, 3)))
    body_only = rng.uniform(0, 500, (18, 3))
    doc = json.loads(json.dumps(openpose_json([full, body_only], 768, 512)))
    first, second = doc["people"]
    assert len(first["hand_left_keypoints_2d"]) == 63 and len(first["face_keypoints_2d"]) == 204
    assert list(second) == ["pose_keypoints_2d"]
    back = persons_from_openpose_json(doc)
    np.testing.assert_array_equal(back[0].hands, full.hands)
    np.testing.assert_array_equal(back[0].face, full.face)
    assert back[1].hands is None and back[1].face is None
    assert np.array_equal(people_from_openpose_json(doc)[1], body_only)
    with pytest.raises(ValueError, match="hand_left_keypoints_2d must hold 63 numbers"):
        persons_from_openpose_json({"people": [{"pose_keypoints_2d": [0] * 54, "hand_left_keypoints_2d": [1]}]})
    with pytest.raises(ValueError, match=r"hand keypoints must be \(2, 21, 3\)"):
        Person(np.zeros((18, 3)), hands=np.zeros((21, 3)))
