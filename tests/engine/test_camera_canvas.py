"""Camera trajectory canvas `ltx-camera-canvas/1`: layout, ranges, and what changes it."""

from __future__ import annotations

import numpy as np
import pytest

from render_backend.engine.camera_canvas import (
    CANVAS_VERSION,
    canvas_rays,
    decode_moment,
    decode_trajectory_canvas,
    encode_moment,
    quantize,
    trajectory_canvas,
)
from render_backend.engine.camera_moves import relative_poses

from .test_camera_moves import BASE_CENTRE, FOCAL, HEIGHT, WIDTH, dolly_zoom, frame, track

REF_W, REF_H = WIDTH // 4, HEIGHT // 4  # a factor-4 reference canvas: 192 x 128


def test_shape_dtype_and_version():
    canvas = trajectory_canvas(track(count=9, move=(0, 0, 1)), REF_W, REF_H)
    assert canvas.shape == (9, REF_H, REF_W, 3)
    assert canvas.dtype == np.uint8
    assert CANVAS_VERSION == "ltx-camera-canvas/1"


def test_static_camera_canvas_is_identical_across_frames():
    canvas = trajectory_canvas(track(count=9), REF_W, REF_H)
    for i in range(1, 9):
        np.testing.assert_array_equal(canvas[i], canvas[0])
    assert np.all(canvas[:, :, 1::2] == 128)  # zero moment everywhere


def test_first_frame_depends_only_on_intrinsics():
    turned = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
    a = trajectory_canvas(track(count=9, move=(0, 0, 2)), REF_W, REF_H)
    b = trajectory_canvas(track(count=9, move=(1, 0, 0), rotate=("y", 20), base_rotation=turned,
                                base_centre=BASE_CENTRE + 7.0), REF_W, REF_H)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[8], b[8])
    wider = trajectory_canvas([frame(focal=FOCAL * 0.8)], REF_W, REF_H)
    assert not np.array_equal(a[0], wider[0])


def test_direction_columns_decode_to_the_pixel_ray():
    canvas = trajectory_canvas([frame()], REF_W, REF_H)
    directions, moments = decode_trajectory_canvas(canvas)
    # Canvas pixel (x, y) samples output pixel ((x + 0.5) * 4, (y + 0.5) * 4).
    x, y = 10, 100  # even column: a direction
    ray = np.array([((x + 0.5) * 4 - WIDTH / 2) / FOCAL, ((y + 0.5) * 4 - HEIGHT / 2) / FOCAL, 1.0])
    np.testing.assert_allclose(directions[0, y, x // 2], ray / np.linalg.norm(ray), atol=0.5 / 127.5 + 1e-9)
    np.testing.assert_allclose(moments[0], 0.0, atol=0.002)  # code 128 decodes to ~1.4 mm


def test_moment_of_a_trucked_camera_decodes_in_metres():
    frames = track(count=2, move=(1.0, 0.0, 0.0))  # 1 m to the right
    _, moments = decode_trajectory_canvas(trajectory_canvas(frames, REF_W, REF_H))
    # m = o x d with o = (1, 0, 0) and d ~ (0, 0, 1) at the centre: (0, -1, 0).
    centre_moment = moments[1, REF_H // 2, REF_W // 4]  # odd column REF_W // 2 + 1
    np.testing.assert_allclose(centre_moment, [0.0, -1.0, 0.0], atol=0.04)


def test_pure_focal_change_changes_the_canvas():
    canvas = trajectory_canvas(track(count=9, focal_end=FOCAL * 1.2), REF_W, REF_H)
    assert not np.array_equal(canvas[8], canvas[0])
    changed = np.mean(np.any(canvas[8] != canvas[0], axis=-1))
    assert changed > 0.3  # a 20 % zoom moves most direction codes
    assert np.all(canvas[8, :, 1::2] == 128)  # no camera motion: moments stay zero


def test_dolly_zoom_differs_from_a_plain_dolly():
    zoom = trajectory_canvas(dolly_zoom(count=9, distance_start=5.0, distance_end=3.0), REF_W, REF_H)
    plain = trajectory_canvas(track(count=9, move=(0.0, 0.0, 2.0)), REF_W, REF_H)
    np.testing.assert_array_equal(zoom[0], plain[0])
    differs = np.any(zoom[8] != plain[8], axis=-1)
    assert differs[:, 0::2].mean() > 0.3  # directions: the focal length is part of the canvas
    assert differs[:, 1::2].mean() > 0.3  # moments: same centre, different rays


def test_canvas_is_deterministic_and_uses_the_output_size():
    frames = track(count=9, move=(0.3, -0.2, 0.5), rotate=("x", 5), noise_m=0.01, noise_deg=0.2)
    a = trajectory_canvas(frames, REF_W, REF_H)
    np.testing.assert_array_equal(a, trajectory_canvas(frames, REF_W, REF_H))
    np.testing.assert_array_equal(a, trajectory_canvas(frames, REF_W, REF_H, output_width=WIDTH,
                                                       output_height=HEIGHT))
    # Telling it the intrinsics are for a 2x larger output samples a different part of the image.
    other = trajectory_canvas(frames, REF_W, REF_H, output_width=WIDTH * 2, output_height=HEIGHT * 2)
    assert not np.array_equal(a[0], other[0])


def test_canvas_rays_are_unit_and_perpendicular_to_their_moment():
    frames = track(count=3, move=(0.4, 0.1, -0.7), rotate=("y", 12))
    rotations, centres = relative_poses(frames)
    d, m = canvas_rays(frames[2], rotations[2], centres[2], 24, 16, WIDTH, HEIGHT)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(d * m, axis=-1), 0.0, atol=1e-12)


def test_moment_encoding_is_fixed_signed_log():
    assert encode_moment(np.array(0.0)) == 0.0
    values = np.array([-100.0, -50.0, -1.0, -0.05, 0.0, 0.01, 0.05, 1.0, 50.0, 100.0])
    codes = encode_moment(values)
    assert np.all(np.diff(codes) >= 0)
    assert codes[0] == -1.0 and codes[-1] == 1.0  # clipped beyond 50 m
    assert codes[6] == pytest.approx(np.log(2.0) / np.log(1001.0))
    np.testing.assert_allclose(decode_moment(codes[1:-1]), values[1:-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(quantize(np.array([-1.0, 0.0, 1.0])), [0, 128, 255])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 1, "height": 8}, r"canvas width must be an integer >= 2"),
        ({"width": 8, "height": 8.5}, r"canvas height must be an integer >= 2"),
        ({"width": 8, "height": 8, "output_width": 0}, r"output size must be positive"),
    ],
)
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        trajectory_canvas([frame()], **kwargs)
    with pytest.raises(ValueError, match="camera track is empty"):
        trajectory_canvas([], 8, 8)


def _spec_code(frame0_w2c, w2c, fx, fy, cx, cy, x, y, width, height, out_w, out_h):
    """docs/camera-canvas-v1.md, written out with scalars and `math` only."""
    import math

    r0 = [row[:3] for row in frame0_w2c[:3]]
    t0 = [row[3] for row in frame0_w2c[:3]]
    ri = [row[:3] for row in w2c[:3]]
    ti = [row[3] for row in w2c[:3]]
    centre_world = [-sum(ri[k][j] * ti[k] for k in range(3)) for j in range(3)]
    o = [sum(r0[j][k] * centre_world[k] for k in range(3)) + t0[j] for j in range(3)]
    u, v = (x + 0.5) * out_w / width, (y + 0.5) * out_h / height
    ray = [(u - cx) / fx, (v - cy) / fy, 1.0]
    norm = math.sqrt(sum(c * c for c in ray))
    cam = [c / norm for c in ray]
    world = [sum(ri[k][j] * cam[k] for k in range(3)) for j in range(3)]  # R_i^T
    d = [sum(r0[j][k] * world[k] for k in range(3)) for j in range(3)]  # R_0
    if x % 2 == 0:
        values = d
    else:
        m = [o[1] * d[2] - o[2] * d[1], o[2] * d[0] - o[0] * d[2], o[0] * d[1] - o[1] * d[0]]
        scale = math.log(1 + 50 / 0.05)
        values = [max(-1.0, min(1.0, math.copysign(math.log(1 + abs(c) / 0.05) / scale, c))) for c in m]
    return [max(0, min(255, math.floor((e + 1) * 127.5 + 0.5))) for e in values]


def test_spec_test_vectors():
    from render_backend.engine.request import CameraFrame

    a = np.radians(10.0)
    q1 = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    o1 = np.array([0.5, -0.25, 2.0])
    w1 = np.eye(4)
    w1[:3, :3] = q1.T
    w1[:3, 3] = -q1.T @ o1
    frames = [CameraFrame(40, 40, 32, 16, np.eye(4)), CameraFrame(48, 48, 32, 16, w1)]
    canvas = trajectory_canvas(frames, 8, 4, output_width=64, output_height=32)
    documented = {  # docs/camera-canvas-v1.md, "Test vectors"
        (0, 0, 0): [56, 97, 229], (0, 1, 0): [128, 128, 128], (0, 4, 2): [140, 140, 254],
        (1, 0, 0): [84, 101, 244], (1, 1, 0): [158, 73, 101], (1, 4, 2): [160, 138, 250],
        (1, 5, 2): [87, 166, 152], (1, 7, 3): [80, 182, 161],
    }
    for (f, x, y), rgb in documented.items():
        assert canvas[f, y, x].tolist() == rgb, (f, x, y)
    for f, cam in enumerate(frames):
        for y in range(4):
            for x in range(8):
                expected = _spec_code(np.eye(4).tolist(), cam.world_to_camera.tolist(), cam.fx, cam.fy,
                                      cam.cx, cam.cy, x, y, 8, 4, 64, 32)
                assert canvas[f, y, x].tolist() == expected, (f, x, y)


def test_spec_reimplementation_with_a_turned_first_camera():
    frames = track(count=3, move=(0.4, -0.3, 1.5), rotate=("x", 6), focal_end=FOCAL * 0.7)
    canvas = trajectory_canvas(frames, 24, 16)
    first = frames[0].world_to_camera.tolist()
    for f, cam in enumerate(frames):
        for x, y in [(0, 0), (1, 0), (10, 7), (11, 7), (23, 15), (22, 15)]:
            expected = _spec_code(first, cam.world_to_camera.tolist(), cam.fx, cam.fy, cam.cx, cam.cy,
                                  x, y, 24, 16, WIDTH, HEIGHT)
            assert canvas[f, y, x].tolist() == expected, (f, x, y)
