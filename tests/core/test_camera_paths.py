"""Randomised dataset camera paths (pure numpy): each move does what its name says, measured by
projecting a subject through the same camera math the exporter uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blender_addon.core.camera_paths import (
    CameraPath,
    CameraPose,
    camera_poses,
    parse_path_kinds,
    random_path,
)
from blender_addon.core.camera_projection import (
    intrinsics_from_blender,
    project_points,
    world_to_camera_opencv,
)
from blender_addon.core.dataset import plan_clips

W, H = 768, 512
SUBJECT = np.array([0.0, 0.0, 1.0])
EDGES = np.array([[-0.5, 0.0, 1.0], [0.5, 0.0, 1.0]])  # a 1 m wide subject, facing the camera


def _start(distance: float = 5.0, lens: float = 35.0) -> CameraPose:
    """A camera at (0, -distance, 1) looking along +Y (Blender: rotated 90 degrees about X)."""
    m = np.eye(4)
    m[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    m[:3, 3] = [0.0, -distance, 1.0]
    return CameraPose(m, lens)


def _project(pose: CameraPose, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = intrinsics_from_blender(pose.lens_mm, 36.0, 24.0, "AUTO", 0.0, 0.0, W, H, 100, 1.0, 1.0)
    return project_points(points, k, world_to_camera_opencv(pose.camera_to_world))


def _width_px(pose: CameraPose) -> float:
    xy, _ = _project(pose, EDGES)
    return float(xy[1, 0] - xy[0, 0])


def test_dolly_zoom_keeps_the_subject_size_while_the_camera_pulls_back():
    poses = camera_poses(CameraPath("dolly_zoom", 1.6), _start(), SUBJECT, 25)
    widths = [_width_px(p) for p in poses]
    assert max(widths) - min(widths) < 1e-6 * widths[0]
    assert poses[-1].lens_mm == pytest.approx(35.0 * 1.6)
    assert poses[-1].camera_to_world[1, 3] == pytest.approx(-5.0 * 1.6)  # 8 m back
    # the background stretches: a wall point 10 m behind the subject moves away from the image centre,
    # because the lens grows faster than the wall's distance
    wall = np.array([[2.0, 10.0, 1.0]])
    x0, x1 = (_project(p, wall)[0][0, 0] - W / 2 for p in (poses[0], poses[-1]))
    assert x1 > 1.3 * x0


def test_dolly_moves_along_the_view_axis_with_a_fixed_lens():
    start = _start()
    poses = camera_poses(CameraPath("dolly", 0.3), start, SUBJECT, 9)
    assert all(p.lens_mm == 35.0 for p in poses)
    assert poses[-1].camera_to_world[:3, 3] == pytest.approx([0.0, -5.0 + 1.5, 1.0])
    assert _width_px(poses[-1]) == pytest.approx(_width_px(poses[0]) * 5.0 / 3.5)
    np.testing.assert_allclose(poses[-1].camera_to_world[:3, :3], start.camera_to_world[:3, :3])


def test_orbit_circles_the_subject_and_keeps_it_in_place_on_screen():
    poses = camera_poses(CameraPath("orbit", 30.0), _start(), SUBJECT, 9)
    dists = [np.linalg.norm(p.camera_to_world[:3, 3] - SUBJECT) for p in poses]
    np.testing.assert_allclose(dists, dists[0])
    xy = np.array([_project(p, SUBJECT[None])[0][0] for p in poses])
    np.testing.assert_allclose(xy, np.tile([W / 2, H / 2], (9, 1)), atol=1e-6)
    forward = -poses[-1].camera_to_world[:3, 2]
    assert math.degrees(math.atan2(-forward[0], forward[1])) == pytest.approx(30.0)


def test_pan_turns_in_place_and_zoom_changes_only_the_lens():
    pan = camera_poses(CameraPath("pan", -12.0), _start(), SUBJECT, 9)
    np.testing.assert_allclose([p.camera_to_world[:3, 3] for p in pan], [[0.0, -5.0, 1.0]] * 9, atol=1e-12)
    fx = 35.0 / 36.0 * W
    # -12 degrees about Z turns the camera to the right, so the subject slides left by fx tan(12)
    assert _project(pan[-1], SUBJECT[None])[0][0, 0] == pytest.approx(W / 2 - fx * math.tan(math.radians(12)))
    zoom = camera_poses(CameraPath("zoom", 0.6), _start(), SUBJECT, 9)
    assert [z.lens_mm for z in zoom][::8] == pytest.approx([35.0, 21.0])
    np.testing.assert_allclose(zoom[-1].camera_to_world, zoom[0].camera_to_world)


def test_moves_ease_in_and_out():
    poses = camera_poses(CameraPath("dolly", 0.4), _start(), SUBJECT, 33)
    y = np.array([p.camera_to_world[1, 3] for p in poses])
    steps = np.diff(y)
    assert steps[0] < 0.1 * steps[16] and steps[-1] < 0.1 * steps[16]


def test_a_dolly_needs_the_subject_in_front():
    with pytest.raises(ValueError, match="in front of the camera"):
        camera_poses(CameraPath("dolly", 0.3), _start(), np.array([0.0, -9.0, 1.0]), 9)


def test_random_paths_stay_in_their_ranges_and_go_both_ways():
    rng = np.random.default_rng(0)
    zooms = [random_path(rng, "dolly_zoom").amount for _ in range(200)]
    assert all(1.3 <= z <= 1.8 or 1 / 1.8 <= z <= 1 / 1.3 for z in zooms)
    assert any(z > 1 for z in zooms) and any(z < 1 for z in zooms)
    orbits = [random_path(rng, "orbit").amount for _ in range(200)]
    assert all(10 <= abs(a) <= 35 for a in orbits) and min(orbits) < 0 < max(orbits)


def test_clip_plan_starts_with_the_scene_camera_and_covers_every_move():
    plans = plan_clips([(1, 100), (10, 20)], 6, 49, parse_path_kinds("scene,dolly,orbit,pan,zoom,dolly_zoom"))
    first = [p for p in plans if p.blend == 0]
    assert first[0].path.kind == "scene"
    assert sorted(p.path.kind for p in first[1:]) == ["dolly", "dolly_zoom", "orbit", "pan", "zoom"]
    assert all(1 <= p.frame_start and p.frame_end <= 100 for p in first)
    assert len({p.frame_start for p in first}) > 1
    assert all(p.frame_start == 10 for p in plans if p.blend == 1)  # range shorter than a clip
    assert [p.name for p in plans] == [f"clip_{i:04d}" for i in range(12)]
    with pytest.raises(ValueError, match="unknown"):
        parse_path_kinds("dolly,crane")
