"""Canvas kinds from a clip of samples: depth min-max over the clip, the depth+pose composite kept
bit-identical, options and what a sample must carry."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.canvas import compose_control
from blender_addon.core.canvas_kinds import (
    CANVAS_KINDS,
    CanvasOptions,
    FrameSample,
    clip_canvases,
    clip_stats,
    frame_canvas,
    frame_needs,
)
from blender_addon.core.depth import shot_depth_range
from blender_addon.core.openpose import LIMB_COLORS
from blender_addon.core.openpose_json import Person

BG = 1e10
H, W = 24, 32


def _room_clip() -> list[FrameSample]:
    """Three frames of a closed room (no background): a wall at 8 m, a box walking from 4 m to 2 m;
    the box is the target."""
    frames = []
    for z_box in (4.0, 3.0, 2.0):
        depth = np.full((H, W), 8.0)
        mask = np.zeros((H, W), dtype=bool)
        depth[8:16, 10:20] = z_box
        mask[8:16, 10:20] = True
        frames.append(FrameSample(depth, mask))
    return frames


def test_depth_is_min_max_inverse_depth_over_the_whole_clip():
    clip = _room_clip()
    canvases = clip_canvases(clip, "depth")
    assert len(canvases) == 3 and all(c.shape == (H, W, 3) and c.dtype == np.uint8 for c in canvases)
    assert all((c[..., 0] == c[..., 1]).all() and (c[..., 1] == c[..., 2]).all() for c in canvases)  # grey
    # nearest pixel of the clip (box at 2 m, last frame) is white, farthest (the wall at 8 m) black
    assert canvases[2][10, 12, 0] == 255
    assert all(c[0, 0, 0] == 0 for c in canvases)
    # one range for the clip: the box at 4 m in frame 0 is (1/4 - 1/8) / (1/2 - 1/8) = 1/3, not white
    assert canvases[0][10, 12, 0] == round(255 / 3)
    assert canvases[1][10, 12, 0] == round(255 * (1 / 3 - 1 / 8) / (1 / 2 - 1 / 8))
    stats = clip_stats(clip, "depth")
    assert (stats.inverse_lo, stats.inverse_hi) == (1 / 8, 1 / 2)


def test_depth_background_is_infinitely_far_and_black():
    depth = np.full((H, W), BG)
    depth[:, :16] = 5.0
    depth[4:8, 4:8] = 2.0
    canvas = clip_canvases([FrameSample(depth, np.zeros((H, W), bool))], "depth")[0][..., 0]
    assert canvas[5, 5] == 255 and canvas[0, 30] == 0
    assert canvas[0, 0] == round(255 * 2.0 / 5.0)  # 1/z over 1/z_near, the far wall stays above black


def test_depth_of_targets_only_masks_the_rest_to_black():
    clip = _room_clip()
    canvases = clip_canvases(clip, "depth", CanvasOptions(depth_scope="targets"))
    for c, sample in zip(canvases, clip, strict=True):
        assert not c[~sample.mask].any()
    # the target's nearest pixel is white; the rest is "infinitely far", so a far target keeps z_near / z
    assert canvases[2][10, 12, 0] == 255
    assert canvases[0][10, 12, 0] == round(255 * 2.0 / 4.0)


def test_depth_of_targets_that_never_show_says_what_to_change():
    sample = FrameSample(np.full((H, W), 3.0), np.zeros((H, W), bool))
    with pytest.raises(ValueError, match="no target pixel is visible in any of the 1 frames.*depth_scope='everything'"):
        clip_canvases([sample], "depth", CanvasOptions(depth_scope="targets"))


def _walker(x: float) -> np.ndarray:
    body = np.zeros((18, 3))
    body[1] = (x, 6.0, 1.0)  # neck
    body[2] = (x - 4, 6.0, 1.0)  # r_shoulder
    body[8] = (x - 2, 16.0, 1.0)  # r_hip
    return body


def test_depth_plus_pose_is_the_existing_composite_bit_for_bit():
    clip = [FrameSample(s.depth, s.mask, [_walker(12.0 + i)]) for i, s in enumerate(_room_clip())]
    near, far = shot_depth_range([s.depth for s in clip], [s.mask for s in clip], far_level=0.1)
    expected = [compose_control(s.depth, s.mask, near, far, [p.body for p in s.people]) for s in clip]
    got = clip_canvases(clip, "depth+pose")
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert (got[0] == LIMB_COLORS[0]).all(axis=2).any()  # the skeleton is on it


def test_depth_plus_pose_without_targets_is_pose_on_black():
    sample = FrameSample(np.full((H, W), 3.0), np.zeros((H, W), bool), [_walker(12.0)])
    canvas = clip_canvases([sample], "depth+pose")[0]
    assert clip_stats([sample], "depth+pose").near is None
    assert canvas[20, 28].tolist() == [0, 0, 0] and (canvas == LIMB_COLORS[0]).all(axis=2).any()


def test_pose_kind_ignores_depth_and_mask():
    clip = [FrameSample(s.depth, s.mask, [Person(_walker(12.0))]) for s in _room_clip()]
    canvas = clip_canvases(clip, "pose")[0]
    assert canvas[0, 0].tolist() == [0, 0, 0]  # black, not the wall's grey
    assert (canvas == LIMB_COLORS[0]).all(axis=2).any()


def test_options_and_samples_are_checked_with_what_to_change():
    with pytest.raises(ValueError, match="depth_scope must be one of everything, targets"):
        CanvasOptions(depth_scope="all")
    with pytest.raises(ValueError, match="playblast_colour must be one of grey, object"):
        CanvasOptions(playblast_colour="red")
    with pytest.raises(ValueError, match="canvas kind must be one of depth\\+pose, depth, pose, edges, playblast"):
        clip_canvases(_room_clip(), "canny")
    with pytest.raises(ValueError, match="normals must be \\(H, W, 3\\)"):
        FrameSample(np.ones((H, W)), np.ones((H, W), bool), normals=np.zeros((H, W)))
    with pytest.raises(ValueError, match="the 'edges' canvas needs normals, intrinsics"):
        frame_canvas(_room_clip()[0], "edges")
    assert frame_needs("edges") == {"normals", "object_ids", "intrinsics"}
    assert frame_needs("playblast", CanvasOptions(playblast_colour="object")) == {"normals", "object_colours"}
    assert frame_needs("playblast", workbench=True) == {"solid"}
    assert set(CANVAS_KINDS) == {"depth", "pose", "edges", "playblast", "depth+pose"}
