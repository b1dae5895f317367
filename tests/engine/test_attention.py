"""The log(m) attention bias: exact math, block structure, and no change without references."""

from __future__ import annotations

import math

import torch
from diffusers.models.transformers.transformer_ltx2 import LTX2AudioVideoAttnProcessor

from render_backend.engine.ltx2.attention import (
    ReferenceBiasAttnProcessor,
    build_audio_over_video_bias,
    build_video_self_bias,
    log_strength,
)


def test_log_strength_is_log_m_and_finite_at_zero():
    out = log_strength(torch.tensor([1.0, 0.5, 0.0]), torch.float32)
    assert out[0] == 0.0 and math.isclose(float(out[1]), math.log(0.5), rel_tol=1e-6)
    assert float(out[2]) == torch.finfo(torch.float32).min and torch.isfinite(out).all()


def test_bias_multiplies_the_attention_weight_of_a_reference_key():
    # 2 target tokens + 1 reference token; the reference key's weight scales by exactly m.
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 1, 3, 4), torch.randn(1, 1, 3, 4), torch.eye(3)[None, None, :, :]
    logits = (q @ k.transpose(-1, -2)) / 2.0  # scale 1/sqrt(4)
    for m in (1.0, 0.5, 0.1, 0.0):
        bias = build_video_self_bias(2, [torch.tensor([m])], torch.float32, torch.device("cpu"))
        if bias is None:
            bias = torch.zeros(1, 1, 3, 3)
        weights = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)[0, 0, :2]
        raw = logits[0, 0, :2].exp()
        raw[:, 2] *= m
        expected = raw / raw.sum(-1, keepdim=True)
        assert torch.allclose(weights, expected, atol=1e-6), m


def test_block_structure_of_two_reference_groups():
    blocked = torch.finfo(torch.float32).min
    bias = build_video_self_bias(2, [torch.tensor([0.5, 0.0]), torch.tensor([1.0])], torch.float32,
                                 torch.device("cpu"))[0, 0]
    assert bias.shape == (5, 5)
    assert (bias[:2, :2] == 0).all()  # target <-> target
    assert torch.allclose(bias[:2, 2], torch.full((2,), math.log(0.5)))  # target -> ref (m = 0.5)
    assert (bias[:2, 3] == blocked).all() and (bias[3, :2] == blocked).all()  # m = 0 both ways
    assert (bias[:2, 4] == 0).all()  # m = 1
    assert bias[2, 4] == blocked and bias[4, 2] == blocked  # groups never see each other
    assert bias[2, 3] == blocked and bias[3, 3] == 0 and bias[2, 2] == 0  # zeroed key inert, self kept
    assert build_video_self_bias(4, [torch.ones(3)], torch.float32, torch.device("cpu")) is None
    audio = build_audio_over_video_bias(2, [torch.tensor([0.5, 0.0])], torch.float32, torch.device("cpu"))
    assert audio.shape == (1, 1, 1, 4) and audio[0, 0, 0, 0] == 0 and audio[0, 0, 0, 3] == blocked


def test_processor_matches_diffusers_without_bias(engine):
    from render_backend.engine.ltx2.attention import ReferenceBias

    attn = engine.pipe.transformer.transformer_blocks[0].attn1
    torch.manual_seed(1)
    x = torch.randn(1, 6, attn.to_q.in_features)
    ours = ReferenceBiasAttnProcessor(ReferenceBias(), "video_self")(attn, x)
    theirs = LTX2AudioVideoAttnProcessor()(attn, x)
    assert torch.allclose(ours, theirs, atol=1e-6)
