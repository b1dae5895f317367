"""Camera track reading and move classification on synthetic, noisy trajectories.

The synthetic tracks below are shared with test_camera_canvas.py. The first camera looks
along world +y with world +z up (a Blender-like world), so camera axes and world axes differ
and a mix-up of the two shows in the results.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from render_backend.engine.camera_moves import camera_track_from_json, classify_camera_move, relative_poses
from render_backend.engine.request import CameraFrame

# Rows: camera x (right), y (down), z (forward) in world coordinates.
BASE_ROTATION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
BASE_CENTRE = np.array([2.0, -5.0, 1.6])
WIDTH, HEIGHT, FOCAL = 768, 512, 800.0


def rotation_about(axis: str, degrees: float) -> np.ndarray:
    """Rotation about a camera axis ('x' tilt, 'y' pan, 'z' roll), camera-to-camera."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def frame(offset_cam=(0.0, 0.0, 0.0), rotation_cam=None, focal=FOCAL, base_rotation=BASE_ROTATION,
          base_centre=BASE_CENTRE) -> CameraFrame:
    """A camera moved by offset_cam (metres, first-camera axes) and turned by rotation_cam
    (maps this camera's axes into the first camera's)."""
    rotation_cam = np.eye(3) if rotation_cam is None else rotation_cam
    centre = base_centre + base_rotation.T @ np.asarray(offset_cam, dtype=np.float64)
    # world_to_camera rotation: world -> first camera -> this camera.
    rotation = rotation_cam.T @ base_rotation
    w2c = np.eye(4)
    w2c[:3, :3] = rotation
    w2c[:3, 3] = -rotation @ centre
    return CameraFrame(fx=focal, fy=focal, cx=WIDTH / 2, cy=HEIGHT / 2, world_to_camera=w2c, lens_mm=focal / 20)


def track(count=49, move=(0.0, 0.0, 0.0), focal_end=FOCAL, rotate=None, noise_m=0.0, noise_deg=0.0,
          seed=0, **kwargs) -> list[CameraFrame]:
    """A linear move of `move` metres (first-camera axes) over `count` frames, the focal length
    going linearly from FOCAL to focal_end, an optional (axis, degrees) rotation, plus jitter."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        s = i / (count - 1) if count > 1 else 0.0
        offset = s * np.asarray(move) + rng.normal(0.0, noise_m, 3) * (i > 0)
        rot = rotation_about(rotate[0], s * rotate[1]) if rotate else np.eye(3)
        if noise_deg and i > 0:
            for axis in "xyz":
                rot = rot @ rotation_about(axis, rng.normal(0.0, noise_deg))
        frames.append(frame(offset, rot, FOCAL + s * (focal_end - FOCAL), **kwargs))
    return frames


def dolly_zoom(count=49, distance_start=5.0, distance_end=3.0, noise_m=0.0, seed=0) -> list[CameraFrame]:
    """Camera moves along its view axis toward (or away from) a subject while fx follows
    the distance, so the subject keeps its size: fx_i = FOCAL * D_i / D_0."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        d = distance_start + (distance_end - distance_start) * i / (count - 1)
        offset = np.array([0.0, 0.0, distance_start - d]) + rng.normal(0.0, noise_m, 3) * (i > 0)
        frames.append(frame(offset, None, FOCAL * d / distance_start))
    return frames


NOISE = {"noise_m": 0.003, "noise_deg": 0.1}  # hand-held-ish jitter: 3 mm, 0.1 degree


@pytest.mark.parametrize(
    ("move", "expected"),
    [
        ((0.0, 0.0, 1.0), "dolly_in"),
        ((0.0, 0.0, -1.0), "dolly_out"),
        ((-0.8, 0.0, 0.0), "dolly_left"),
        ((0.8, 0.0, 0.0), "dolly_right"),
        ((0.0, -0.5, 0.0), "jib_up"),  # -y is up in OpenCV
        ((0.0, 0.5, 0.0), "jib_down"),
    ],
)
def test_single_axis_moves_map_to_their_preset(move, expected):
    result = classify_camera_move(track(move=move, **NOISE))
    assert result.move == expected
    assert result.preset == expected
    assert result.confidence > 0.8
    np.testing.assert_allclose(result.details["translation_m"], move, atol=0.01)


def test_small_dolly_still_counts_with_little_noise():
    result = classify_camera_move(track(move=(0.0, 0.0, 0.05), noise_m=0.0005))
    assert result.move == "dolly_in"


def test_static_camera_with_jitter_is_static():
    result = classify_camera_move(track(**NOISE))
    assert (result.move, result.preset) == ("static", "static")
    assert result.confidence > 0.5
    assert result.details["translation_norm_m"] < 0.01


def test_jitter_alone_never_reads_as_a_move():
    # 2 cm jitter would exceed the 1 cm floor frame to frame; the noise term must absorb it.
    for seed in range(5):
        assert classify_camera_move(track(noise_m=0.02, seed=seed)).move == "static"


def test_single_frame_is_static():
    result = classify_camera_move([frame()])
    assert (result.move, result.preset, result.confidence) == ("static", "static", 1.0)


def test_synthetic_dolly_zoom_keeps_subject_width():
    # A 1 m wide subject 5 m in front of the first camera: its projected width must not change.
    base_c2w = BASE_ROTATION.T
    left = BASE_CENTRE + base_c2w @ np.array([-0.5, 0.0, 5.0])
    right = BASE_CENTRE + base_c2w @ np.array([0.5, 0.0, 5.0])
    widths = []
    for cam in dolly_zoom(count=9, distance_start=5.0, distance_end=2.0):
        u = [cam.fx * p[0] / p[2] + cam.cx for p in (cam.world_to_camera @ np.append(q, 1.0) for q in (left, right))]
        widths.append(u[1] - u[0])
    np.testing.assert_allclose(widths, FOCAL * 1.0 / 5.0, rtol=1e-9)


def test_dolly_zoom_in_uses_dolly_in_and_implies_the_subject_distance():
    result = classify_camera_move(dolly_zoom(distance_start=5.0, distance_end=3.0, noise_m=0.003))
    assert (result.move, result.preset) == ("dolly_zoom", "dolly_in")
    assert result.details["focal_ratio"] == pytest.approx(0.6, abs=0.005)
    assert result.details["implied_subject_distance_m"] == pytest.approx(5.0, rel=0.02)


def test_dolly_zoom_out_uses_dolly_out():
    result = classify_camera_move(dolly_zoom(distance_start=3.0, distance_end=6.0, noise_m=0.003))
    assert (result.move, result.preset) == ("dolly_zoom", "dolly_out")
    assert result.details["focal_ratio"] == pytest.approx(2.0, abs=0.01)
    assert result.details["implied_subject_distance_m"] == pytest.approx(3.0, rel=0.02)


def test_dolly_with_zoom_in_the_same_sense_is_a_dolly_not_a_dolly_zoom():
    result = classify_camera_move(track(move=(0.0, 0.0, 1.0), focal_end=FOCAL * 1.5))
    assert (result.move, result.preset) == ("dolly_in", "dolly_in")
    assert "zoom" in result.details["reason"]


def test_zoom_inconsistent_with_known_subject_distance_is_not_a_dolly_zoom():
    frames = dolly_zoom(distance_start=5.0, distance_end=3.0)
    assert classify_camera_move(frames, subject_distance_m=5.0).move == "dolly_zoom"
    result = classify_camera_move(frames, subject_distance_m=20.0)  # would need ratio 0.9, not 0.6
    assert (result.move, result.preset) == ("dolly_in", "dolly_in")


def test_pan_only_is_other():
    result = classify_camera_move(track(rotate=("y", 30.0), **NOISE))
    assert (result.move, result.preset) == ("other", None)
    assert result.details["rotation_max_deg"] == pytest.approx(30.0, abs=0.5)
    assert result.details["rotation_final_deg"]["pan_y"] == pytest.approx(30.0, abs=0.5)


def test_pan_and_back_is_other_even_if_it_ends_where_it_started():
    frames = track(count=25, rotate=("x", 20.0)) + track(count=25, rotate=("x", 20.0))[::-1]
    assert classify_camera_move(frames).move == "other"


def test_pure_zoom_and_diagonal_moves_are_other():
    assert classify_camera_move(track(focal_end=FOCAL * 2)).preset is None
    diagonal = classify_camera_move(track(move=(0.7, 0.0, 0.7)))
    assert (diagonal.move, diagonal.preset) == ("other", None)
    assert diagonal.details["dominance"] == pytest.approx(np.sqrt(0.5), abs=1e-6)


def test_move_is_read_in_the_first_cameras_axes_not_the_worlds():
    # Base camera turned 90 degrees about world z: its forward is world -x now.
    base = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
    result = classify_camera_move(track(move=(0.0, 0.0, 1.0), base_rotation=base))
    assert result.move == "dolly_in"
    rotations, centres = relative_poses(track(count=3, move=(0.3, 0.0, 0.0), base_rotation=base))
    np.testing.assert_allclose(centres[-1], [0.3, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rotations[0], np.eye(3), atol=1e-12)


def test_details_are_json_ready():
    result = classify_camera_move(dolly_zoom())
    assert json.loads(json.dumps(result.details))["frames"] == 49
    with pytest.raises(AttributeError):
        result.move = "static"  # frozen


def _entry(cam, number):
    return {"frame": number, "intrinsics": {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy},
            "world_to_camera": cam.world_to_camera.tolist(), "lens_mm": cam.lens_mm,
            "sensor_width_mm": 36.0, "sensor_height_mm": 24.0, "sensor_fit": "AUTO"}


def test_camera_track_round_trips_through_shot_json():
    frames = track(count=9, move=(0.0, 0.0, 1.0))
    entries = json.loads(json.dumps([_entry(cam, 1001 + i) for i, cam in enumerate(frames)]))
    read = camera_track_from_json(entries)
    assert len(read) == 9
    np.testing.assert_allclose(read[4].world_to_camera, frames[4].world_to_camera, atol=1e-12)
    assert (read[4].fx, read[4].cx, read[4].lens_mm) == (frames[4].fx, frames[4].cx, frames[4].lens_mm)
    assert classify_camera_move(read).move == "dolly_in"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["intrinsics"].pop("fy"), r"frames\[0\] \(Blender frame 7\): `intrinsics` lacks `fy`"),
        (lambda e: e["intrinsics"].update(fx=-1.0), r"fx and fy must be positive"),
        (lambda e: e.update(world_to_camera=[[1, 0, 0], [0, 1, 0], [0, 0, 1]]), r"must be 4x4 \(got shape \(3, 3\)\)"),
        (lambda e: e.update(world_to_camera=(np.diag([2.0, 2.0, 2.0, 1.0])).tolist()), r"without object scale"),
        (lambda e: e.pop("world_to_camera"), r"missing `world_to_camera`"),
        (lambda e: e["intrinsics"].update(cx="centre"), r"intrinsics.cx must be a number"),
    ],
)
def test_bad_camera_entries_name_the_frame_and_key(mutate, message):
    entry = _entry(frame(), 7)
    mutate(entry)
    with pytest.raises(ValueError, match=message):
        camera_track_from_json([entry])


def test_empty_track_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        camera_track_from_json([])
    with pytest.raises(ValueError, match="camera track is empty"):
        classify_camera_move([])


def test_dolly_in_and_back_out_is_other():
    frames = track(count=25, move=(0.0, 0.0, 1.0)) + track(count=25, move=(0.0, 0.0, 1.0))[::-1]
    result = classify_camera_move(frames, subject_distance_m=4.0)
    assert (result.move, result.preset) == ("other", None)
    assert 0.4 < result.details["excursion_m"] < 0.5  # triangle peak 1 m, fitted line at ~0.5 m


def test_eased_dolly_is_still_a_dolly():
    s = np.linspace(0.0, 1.0, 49)
    eased = 3 * s**2 - 2 * s**3  # smoothstep: slow start and end, as Blender's default Bezier keys
    frames = [frame((0.0, 0.0, 1.2 * e)) for e in eased]
    assert classify_camera_move(frames).move == "dolly_in"
