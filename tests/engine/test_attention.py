"""The log(m) attention bias: exact math, ltx-core's block structure, and no change without references."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers.models.transformers.transformer_ltx2 import LTX2AudioVideoAttnProcessor

from render_backend.engine.ltx2.attention import (
    ReferenceBiasAttnProcessor,
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
        bias = build_video_self_bias(2, [torch.tensor([m])], [True], torch.float32, torch.device("cpu"))
        if bias is None:
            bias = torch.zeros(1, 1, 3, 3)
        weights = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)[0, 0, :2]
        raw = logits[0, 0, :2].exp()
        raw[:, 2] *= m
        expected = raw / raw.sum(-1, keepdim=True)
        assert torch.allclose(weights, expected, atol=1e-6), m


def test_block_structure_of_two_reference_groups():
    # As ltx-core's build_attention_mask: a group keeps full attention inside itself (its strength-0
    # tokens included), groups are blocked from each other once a strength map exists.
    blocked = torch.finfo(torch.float32).min
    bias = build_video_self_bias(2, [torch.tensor([0.5, 0.0]), torch.tensor([1.0])], [True, True], torch.float32,
                                 torch.device("cpu"))[0, 0]
    assert bias.shape == (5, 5)
    assert (bias[:2, :2] == 0).all()  # target <-> target
    assert torch.allclose(bias[:2, 2], torch.full((2,), math.log(0.5)))  # target -> ref (m = 0.5)
    assert (bias[:2, 3] == blocked).all() and (bias[3, :2] == blocked).all()  # m = 0 both ways
    assert (bias[:2, 4] == 0).all()  # m = 1
    assert bias[2, 4] == blocked and bias[4, 2] == blocked  # groups never see each other
    assert (bias[2:4, 2:4] == 0).all()  # a strength-0 token stays readable inside its own group


def test_references_without_a_strength_map_need_no_bias_and_see_each_other():
    # Two references at strength 1: ltx-core builds no mask, so plain attention (None) everywhere.
    assert build_video_self_bias(4, [torch.ones(3), torch.ones(2)], [False, False], torch.float32,
                                 torch.device("cpu")) is None
    # Maps on the 3rd group only: the first two were in ltx-core's first all-ones block, so they
    # still see each other; the 3rd is blocked from both.
    blocked = torch.finfo(torch.float32).min
    bias = build_video_self_bias(1, [torch.ones(1), torch.ones(1), torch.tensor([0.25])], [False, False, True],
                                 torch.float32, torch.device("cpu"))[0, 0]
    assert (bias[1:3, 1:3] == 0).all()
    assert (bias[3, 1:3] == blocked).all() and (bias[1:3, 3] == blocked).all()
    assert bias[0, 3] == pytest.approx(math.log(0.25)) and bias[0, 1] == 0


def test_processor_matches_diffusers_without_bias(engine):
    from render_backend.engine.ltx2.attention import ReferenceBias

    attn = engine.pipe.transformer.transformer_blocks[0].attn1
    torch.manual_seed(1)
    x = torch.randn(1, 6, attn.to_q.in_features)
    ours = ReferenceBiasAttnProcessor(ReferenceBias())(attn, x)
    theirs = LTX2AudioVideoAttnProcessor()(attn, x)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_perturbed_batch_element_passes_the_values_through(engine):
    # STG: a batch element with perturbation mask 0 skips the attention: out = to_out(to_v(x)).
    from render_backend.engine.ltx2.attention import ReferenceBias

    attn = engine.pipe.transformer.transformer_blocks[0].attn1
    torch.manual_seed(2)
    x = torch.randn(2, 6, attn.to_q.in_features)
    processor = ReferenceBiasAttnProcessor(ReferenceBias())
    out = processor(attn, x, perturbation_mask=torch.tensor([1.0, 0.0])[:, None, None])
    values = attn.to_out[0](attn.to_v(x))
    assert torch.allclose(out[1], values[1], atol=1e-6)
    assert torch.allclose(out[0], processor(attn, x[:1])[0], atol=1e-6)
    assert not torch.allclose(out[0], values[0], atol=1e-3)
