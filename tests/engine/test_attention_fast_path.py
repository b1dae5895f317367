"""The FlexAttention path computes the dense log(m) bias's numbers: per layer (random inputs, every block
structure of ltx-core's mask) and for whole renders of the tiny model (attention="flex" vs "dense")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from render_backend.engine.ltx2.attention import (
    ReferenceBias,
    ReferenceBiasAttnProcessor,
    attach_block_mask,
    build_video_self_bias,
    build_video_self_tokens,
    flex_reference_attention,
)
from render_backend.engine.request import ControlInput, RenderRequest

CPU = torch.device("cpu")
NUM_TARGET = 24


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def strength_map(n: int, seed: int, zeros: int = 3) -> torch.Tensor:
    """n strengths in (0, 1] with `zeros` of them exactly 0."""
    m = torch.rand(n, generator=torch.Generator().manual_seed(seed)) * 0.95 + 0.05
    m[torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))[:zeros]] = 0.0
    return m


# (group strengths, has_map) per case: the configurations ltx-core's mask rules tell apart.
CASES = {
    "one-map-with-zeros": ([strength_map(16, 0)], [True]),
    "global-0.8": ([torch.full((16,), 0.8)], [True]),
    "map-then-full": ([strength_map(12, 2), torch.ones(8)], [True, False]),
    "full-then-map": ([torch.ones(8), strength_map(12, 4)], [False, True]),  # the first group is "open"
    "two-full-then-map": ([torch.ones(6), torch.ones(4), strength_map(10, 6)], [False, False, True]),
    "a-whole-group-at-zero": ([torch.zeros(8), strength_map(8, 8, zeros=0)], [True, True]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_token_form_is_the_dense_bias_exactly(case):
    groups, has_map = CASES[case]
    for dtype in (torch.float32, torch.bfloat16):
        dense = build_video_self_bias(NUM_TARGET, groups, has_map, dtype, CPU)
        tokens = build_video_self_tokens(NUM_TARGET, groups, has_map, dtype, CPU)
        assert torch.equal(tokens.dense(), dense.float()), (case, dtype)


@pytest.mark.parametrize("case", list(CASES))
def test_flex_kernel_equals_sdpa_with_the_dense_bias(case):
    groups, has_map = CASES[case]
    dense = build_video_self_bias(NUM_TARGET, groups, has_map, torch.float32, CPU)
    tokens = build_video_self_tokens(NUM_TARGET, groups, has_map, torch.float32, CPU)
    total = dense.shape[-1]
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, total, 32, generator=gen) * 3 for _ in range(3))  # (B, H, T, D), large logits
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    out = flex_reference_attention(q, k, v, tokens, compiled=False)
    assert torch.isfinite(out).all()
    assert rel(out, expected) < 1e-6, case


@pytest.mark.parametrize("case", list(CASES))
def test_only_two_or_more_reference_blocks_have_blocked_pairs(case):
    groups, has_map = CASES[case]
    tokens = build_video_self_tokens(NUM_TARGET, groups, has_map, torch.float32, CPU)
    dense = tokens.dense()[0, 0]
    assert tokens.blocked_pairs == bool((dense == torch.finfo(torch.float32).min)[NUM_TARGET:, NUM_TARGET:].any())


def test_block_mask_skips_blocked_tiles_with_the_same_numbers():
    # 128-token tiles: target 128 | reference A 256 (map) | reference B 128 (map). A<->B tiles are skipped.
    groups, has_map = [strength_map(256, 10), torch.full((128,), 0.5)], [True, True]
    tokens = build_video_self_tokens(128, groups, has_map, torch.float32, CPU)
    attach_block_mask(tokens, compiled=False)
    assert tokens.block_mask.sparsity() == 25.0  # % of tiles skipped: (2x1 + 1x2) of 4x4
    dense = build_video_self_bias(128, groups, has_map, torch.float32, CPU)
    gen = torch.Generator().manual_seed(9)
    q, k, v = (torch.randn(1, 2, 512, 16, generator=gen) * 3 for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    assert rel(flex_reference_attention(q, k, v, tokens, compiled=False), expected) < 1e-6


def processors(groups, has_map, dtype=torch.float32):
    dense, flex = ReferenceBias("dense"), ReferenceBias("flex")
    for shared in (dense, flex):
        shared.set(NUM_TARGET, groups, has_map, dtype, CPU)
    return ReferenceBiasAttnProcessor(dense), ReferenceBiasAttnProcessor(flex)


@pytest.fixture(autouse=True)
def _inference():
    """The engine renders under no_grad; the session engine's LoRA layers require grad (peft's
    default), and FlexAttention has no backward on CPU."""
    with torch.no_grad():
        yield


@pytest.mark.parametrize("case", list(CASES))
def test_processor_flex_equals_dense_on_a_real_layer(engine, case):
    # The tiny model's video self-attention (q/k norms, RoPE, gates), diffusers' (B, N, H*D) layout.
    groups, has_map = CASES[case]
    attn = engine.pipe.transformer.transformer_blocks[0].attn1
    total = NUM_TARGET + sum(g.numel() for g in groups)
    x = torch.randn(1, total, attn.to_q.in_features, generator=torch.Generator().manual_seed(5)) * 4
    dense, flex = processors(groups, has_map)
    expected = dense(attn, x)
    assert rel(flex(attn, x), expected) < 1e-6, case


def test_processor_flex_keeps_stg_perturbation(engine):
    groups, has_map = CASES["map-then-full"]
    attn = engine.pipe.transformer.transformer_blocks[0].attn1
    total = NUM_TARGET + 20
    x = torch.randn(2, total, attn.to_q.in_features, generator=torch.Generator().manual_seed(6))
    dense, flex = processors(groups, has_map)
    mask = torch.tensor([1.0, 0.0])[:, None, None]  # element 1 perturbed: values pass through
    out = flex(attn, x, perturbation_mask=mask)
    assert rel(out, dense(attn, x, perturbation_mask=mask)) < 1e-6
    assert torch.allclose(out[1], attn.to_out[0](attn.to_v(x))[1], atol=1e-6)
    all_out = flex(attn, x, perturbation_mask=torch.zeros(2, 1, 1))
    assert torch.allclose(all_out, attn.to_out[0](attn.to_v(x)), atol=1e-6)


def test_flex_in_bf16_with_zero_strength_stays_finite(engine):
    groups, has_map = CASES["a-whole-group-at-zero"]
    attn = engine.pipe.transformer.transformer_blocks[0].attn1
    q, k, v = (torch.randn(1, 2, NUM_TARGET + 16, 16, dtype=torch.bfloat16) * 8 for _ in range(3))
    tokens = build_video_self_tokens(NUM_TARGET, groups, has_map, torch.bfloat16, CPU)
    out = flex_reference_attention(q, k, v, tokens, compiled=False)
    dense = build_video_self_bias(NUM_TARGET, groups, has_map, torch.bfloat16, CPU)
    expected = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=dense.float())
    assert torch.isfinite(out).all() and rel(out.float(), expected) < 2e-2
    assert attn is not None


def test_no_strength_map_means_plain_attention_in_both_kernels():
    for kernel in ("dense", "flex"):
        shared = ReferenceBias(kernel)
        shared.set(NUM_TARGET, [torch.ones(4)], [False], torch.float32, CPU)
        assert shared.video_self is None and shared.tokens is None


# ------------------------------------------------------------------ whole renders on the tiny model
@pytest.fixture(scope="module")
def flex_engine(tiny_model):
    from render_backend.engine.ltx2.engine import LTX2Engine

    e = LTX2Engine(str(tiny_model), device="cpu", upsampler=None, attention="flex")
    e.load()
    return e


def request(**kw) -> RenderRequest:
    base = dict(prompt="a man walks on the street", width=64, height=64, num_frames=17, seed=7,
                num_inference_steps=2)
    return RenderRequest(**{**base, **kw})


def regional_masks(frames: int) -> list[np.ndarray]:
    masks = []
    for i in range(frames):
        m = np.zeros((64, 64), bool)
        m[: 16 + 2 * i, 8:40] = True  # grows over the shot
        masks.append(m)
    return masks


@pytest.mark.parametrize("controls", [
    lambda c: [ControlInput(frames=c(frames=17), lora="control", strength=0.8)],
    lambda c: [ControlInput(frames=c(frames=17), lora="control", strength=0.9, masks=regional_masks(17),
                            frame_strength=[1.0] * 9 + [0.0] * 4 + [0.5] * 4)],
], ids=["strength-0.8", "spatial-and-temporal-map"])
def test_render_with_flex_equals_render_with_dense(engine, flex_engine, canvas, controls):
    assert engine.performance.kernel == "dense"  # the session engine: auto on CPU
    dense = engine.render(request(controls=controls(canvas)))
    dense_latents, dense_audio = engine.last_latents, engine.last_audio_latents
    flex = flex_engine.render(request(controls=controls(canvas)))
    assert rel(flex_engine.last_latents, dense_latents) < 1e-5
    assert rel(flex_engine.last_audio_latents, dense_audio) < 1e-5
    assert flex.info["performance"]["attention_kernel"] == "FlexAttention, uncompiled (materialises scores)"
    assert dense.info["performance"] == {"attention": "auto", "attention_kernel": "dense bias + SDPA",
                                         "compile": False, "fp8": False}
    assert flex_engine._bias.tokens is None  # cleared after the render
