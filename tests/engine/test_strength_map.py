"""Per-token strength map: hand-computed values for temporal, regional and combined strength."""

from __future__ import annotations

import numpy as np
import pytest

from render_backend.engine.strength import (
    area_average,
    latent_frame_count,
    needs_strength_map,
    pixel_frames_of,
    reference_token_strength,
    validate_strength,
)


def test_latent_frames_group_first_frame_alone_then_eights():
    assert latent_frame_count(121) == 16
    assert list(pixel_frames_of(0)) == [0]
    assert list(pixel_frames_of(1)) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert list(pixel_frames_of(2)) == list(range(9, 17))


def test_global_strength_fills_every_token_in_order():
    tokens = reference_token_strength(17, 3, 2, 3, strength=0.6)
    assert tokens.shape == (3 * 2 * 3,)
    assert tokens.dtype == np.float32
    np.testing.assert_allclose(tokens, 0.6, rtol=0, atol=1e-7)


def test_temporal_zeros_switch_off_their_latent_frame_and_others_average():
    curve = [0.5] + [0.0] * 8 + [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]  # 17 frames
    tokens = reference_token_strength(17, 3, 2, 2, strength=0.8, frame_strength=curve).reshape(3, 2, 2)
    np.testing.assert_allclose(tokens[0], 0.8 * 0.5, atol=1e-7)  # frame 0 alone
    np.testing.assert_allclose(tokens[1], 0.0, atol=0)  # frames 1..8 all zero
    np.testing.assert_allclose(tokens[2], 0.8 * 0.5, atol=1e-7)  # mean of four 0s and four 1s


def test_one_zero_frame_weakens_a_latent_frame_by_an_eighth():
    curve = [1.0] * 17
    curve[3] = 0.0
    tokens = reference_token_strength(17, 3, 1, 1, frame_strength=curve)
    np.testing.assert_allclose(tokens, [1.0, 7 / 8, 1.0], atol=1e-7)


def test_half_covered_token_mixes_strength_and_background():
    mask = np.zeros((64, 64), bool)
    mask[:32, :16] = True  # left half of token (0, 0); tokens are 32x32 pixels
    mask[32:, 32:] = True  # all of token (1, 1)
    tokens = reference_token_strength(9, 2, 2, 2, strength=0.8, masks=[mask] * 9,
                                      background_strength=0.2).reshape(2, 2, 2)
    expected = np.array([[0.5 * 0.8 + 0.5 * 0.2, 0.2], [0.2, 0.8]])
    np.testing.assert_allclose(tokens[0], expected, atol=1e-6)
    np.testing.assert_allclose(tokens[1], expected, atol=1e-6)


def test_masks_without_background_leave_nothing_outside():
    # Lightricks' IC-LoRA mask: strength x coverage, 0 outside the mask (the old default was "strength").
    mask = np.zeros((64, 64), bool)
    mask[:10, :10] = True
    tokens = reference_token_strength(9, 2, 2, 2, strength=0.7, masks=[mask] * 9).reshape(2, 2, 2)
    np.testing.assert_allclose(tokens[:, 0, 0], 0.7 * 100 / 1024, atol=1e-7)
    assert (tokens[:, 0, 1] == 0).all() and (tokens[:, 1] == 0).all()


def test_masks_average_over_a_latent_frames_pixel_frames():
    # ltx-pipelines averages the 8 frames' masks (it used to be their union: 1, 1 here).
    masks = [np.zeros((32, 64), bool) for _ in range(17)]
    masks[1][:, :32] = True  # target in the left token during frame 1 only
    masks[8][:, 32:] = True  # and in the right token during frame 8
    tokens = reference_token_strength(17, 3, 1, 2, strength=1.0, masks=masks).reshape(3, 2)
    np.testing.assert_allclose(tokens, [[0, 0], [1 / 8, 1 / 8], [0, 0]], atol=1e-7)


def test_curve_weights_each_frames_mask_before_averaging():
    masks = [np.ones((32, 32), bool)] + [np.zeros((32, 32), bool)] * 4 + [np.ones((32, 32), bool)] * 4
    curve = [1.0] + [1.0] * 4 + [0.5] * 4
    tokens = reference_token_strength(9, 2, 1, 1, strength=0.8, frame_strength=curve, masks=masks)
    np.testing.assert_allclose(tokens, [0.8, 0.8 * (4 * 0.5) / 8], atol=1e-7)


def test_temporal_scale_groups_every_sth_frame():
    # A LoRA reading every 2nd frame: 17 frames -> latent frames {0}, {1..16}.
    assert latent_frame_count(17, 2) == 2 and list(pixel_frames_of(1, 2)) == list(range(1, 17))
    curve = [1.0] + [0.0] * 8 + [1.0] * 8
    np.testing.assert_allclose(reference_token_strength(17, 2, 1, 1, frame_strength=curve, temporal_scale=2),
                               [1.0, 0.5], atol=1e-7)


def test_a_strength_map_exists_exactly_when_ltx_pipelines_would_build_one():
    assert not needs_strength_map(1.0)
    assert needs_strength_map(0.99) and needs_strength_map(1.0, frame_strength=[1.0] * 9)
    assert needs_strength_map(1.0, masks=[np.ones((2, 2), bool)] * 9)


def test_temporal_and_regional_multiply():
    mask = np.zeros((32, 96), bool)
    mask[:, 64:] = True  # right token of a 1x3 grid: tests column order too
    curve = [1.0] + [0.5] * 8
    tokens = reference_token_strength(9, 2, 1, 3, strength=0.9, frame_strength=curve, masks=[mask] * 9,
                                      background_strength=0.3)
    np.testing.assert_allclose(tokens, [0.3, 0.3, 0.9, 0.15, 0.15, 0.45], atol=1e-6)


def test_row_major_token_order():
    mask = np.zeros((64, 96), bool)
    mask[:32, 64:] = True  # top-right token of 2x3
    tokens = reference_token_strength(1, 1, 2, 3, masks=[mask], background_strength=0.0)
    np.testing.assert_array_equal(tokens, [0, 0, 1, 0, 0, 0])


def test_area_average_handles_sizes_that_do_not_divide():
    # As torch's interpolate(mode="area") (adaptive pooling), which ltx-pipelines uses: 3 pixels into 2
    # cells gives the overlapping windows [0, 2) and [1, 3) (exact box integration gave 1 / 2.25).
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = True
    cover = area_average(mask, 2, 2)
    np.testing.assert_allclose(cover, [[1 / 4, 0], [0, 0]], atol=1e-12)
    rng = np.random.default_rng(0)
    odd = rng.random((37, 23)) > 0.5
    import torch

    pooled = torch.nn.functional.interpolate(torch.from_numpy(odd).double()[None, None], size=(5, 4), mode="area")
    np.testing.assert_allclose(area_average(odd, 5, 4), pooled[0, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(area_average(np.ones((5, 7), bool), 2, 3), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_frames": 120}, r"frames must be 8k\+1 \(got 120\); try 113 or 121"),
        ({"num_frames": 9, "strength": 1.5}, r"strength must be in \[0, 1\] \(got 1.5\)"),
        ({"num_frames": 9, "background_strength": -0.1}, r"background_strength must be in \[0, 1\]"),
        ({"num_frames": 9, "frame_strength": [1.0] * 8}, r"got 8 values for 9 frames"),
        ({"num_frames": 9, "frame_strength": [1.0] * 8 + [float("nan")]}, r"frame_strength\[8\]"),
        ({"num_frames": 9, "masks": [np.zeros((4, 4), bool)] * 8}, r"got 8 masks for 9 frames"),
        ({"num_frames": 9, "masks": [np.zeros((4, 4), np.uint8)] * 9}, r"mask > 127"),
        ({"num_frames": 9, "masks": [np.zeros((4, 4), bool)] * 8 + [np.zeros((4, 5), bool)]},
         r"masks\[0\] is 4x4 but masks\[8\] is 5x4"),
    ],
)
def test_bad_settings_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        validate_strength(**kwargs)


def test_latent_frames_must_match_frame_count():
    with pytest.raises(ValueError, match=r"latent_frames must be .* = 3 for 17 frames \(got 2\)"):
        reference_token_strength(17, 2, 1, 1)
    with pytest.raises(ValueError, match="latent_w must be a positive integer"):
        reference_token_strength(9, 2, 1, 0)
