"""Frame/size snapping and cutting long ranges into model-sized shots."""

from __future__ import annotations

import pytest

from blender_addon.core.planning import ShotPlan, fps_from_scene, plan_shots, snap_frames, snap_size


def test_snap_frames_down_to_8k_plus_1_with_reason():
    n, msg = snap_frames(120)
    assert n == 113
    assert "8k+1" in msg and "120" in msg and "113" in msg and "121" in msg


@pytest.mark.parametrize("n", [9, 17, 121, 257])
def test_valid_frame_counts_are_unchanged(n):
    assert snap_frames(n) == (n, "")


def test_short_ranges_grow_to_nine_frames():
    n, msg = snap_frames(5)
    assert n == 9 and "at least 9" in msg and "got 5" in msg
    assert snap_frames(1)[0] == 9
    with pytest.raises(ValueError, match="at least 1 frame"):
        snap_frames(0)


def test_snap_size_rounds_each_side_to_32():
    assert snap_size(1000, 500)[:2] == (992, 512)
    w, h, msg = snap_size(1000, 500)
    assert "multiples of 32" in msg and "1000x500" in msg and "992x512" in msg
    assert snap_size(768, 512) == (768, 512, "")
    assert snap_size(10, 10)[:2] == (32, 32)


def test_snap_size_fits_max_keeping_aspect():
    w, h, msg = snap_size(1920, 1080, max_width=1280, max_height=1280)
    assert (w, h) == (1280, 736)  # 1280 x 720 scaled, 720 -> 736
    assert abs(w / h - 1920 / 1080) < 0.05
    assert "maximum" in msg
    w, h, _ = snap_size(1920, 1080, max_width=1000)
    assert w <= 1000 and w % 32 == 0 and h % 32 == 0
    assert snap_size(1000, 500, multiple=64)[:2] == (1024, 512)


def test_plan_250_frames_covers_every_frame_once():
    shots = plan_shots(1, 250)
    kept = [f for s in shots for f in s.kept_frames]
    assert kept == list(range(1, 251))
    for s in shots:
        assert (s.num_frames - 1) % 8 == 0 and s.num_frames <= 121
        assert s.frame_end - s.frame_start + 1 == s.num_frames
    assert shots[0] == ShotPlan(1, 121, 121, 0, 0)
    assert shots[1].trim_start == 8  # the overlap
    assert shots[-1].frame_end == 250 and shots[-1].trim_start >= 8


@pytest.mark.parametrize("start,end,max_frames,overlap", [(1, 121, 121, 8), (0, 1000, 121, 8),
                                                          (10, 130, 25, 0), (-5, 400, 97, 16)])
def test_plans_cover_ranges_without_gaps(start, end, max_frames, overlap):
    shots = plan_shots(start, end, max_frames, overlap)
    kept = [f for s in shots for f in s.kept_frames]
    assert kept == list(range(start, end + 1))
    assert all(s.trim_start >= overlap for s in shots[1:])
    assert all(s.frame_start >= start and s.frame_end <= end for s in shots[1:])


def test_short_range_renders_past_its_end():
    (shot,) = plan_shots(1, 100)
    assert (shot.num_frames, shot.frame_end, shot.trim_end) == (105, 105, 5)
    assert list(shot.kept_frames) == list(range(1, 101))


def test_plan_rejects_bad_settings():
    with pytest.raises(ValueError, match="8k\\+1"):
        plan_shots(1, 300, max_frames=120)
    with pytest.raises(ValueError, match="overlap"):
        plan_shots(1, 300, overlap=200)
    with pytest.raises(ValueError, match="before frame_start"):
        plan_shots(10, 5)


def test_fps_from_scene():
    assert fps_from_scene(24, 1.0) == 24.0
    assert abs(fps_from_scene(24, 1.001) - 23.976) < 1e-3
    with pytest.raises(ValueError, match="positive"):
        fps_from_scene(0, 1.0)


def test_frame_and_size_errors_name_the_nearest_valid_value():
    from blender_addon.core.planning import frames_error, size_error

    assert frames_error(9) == "" and frames_error(121) == ""
    assert frames_error(10) == "frames must be 8k+1 and at least 9 (got 10); try 9"
    assert frames_error(120).endswith("(got 120); try 113")
    assert frames_error(1).endswith("(got 1); try 9")  # the model's shortest video is 9 frames
    assert size_error(768, 512) == ""
    assert size_error(150, 96) == "width and height must be multiples of 32 (got 150x96); try 160x96"
