"""Preview vs Final (core/preview.py) and the estimate line, without bpy: the rules a render follows at
each Quality, from the server limits a Test connection stored (client.limits.server_limits)."""

from __future__ import annotations

import pytest

from blender_addon.client.limits import server_limits, snap_size_for
from blender_addon.core.preview import estimate_line, one_stage_limits, render_settings
from blender_addon.proto import render_pb2 as pb
from blender_addon.shot_cost import CostModel, cost_to_proto

COST = CostModel(transformer_parameters=19_000_000_000, attention_tokens=35_000, seconds_per_token_step=7e-5,
                 reference_tokens=6144, passes_per_step=1, fixed_seconds=2.0, seconds_per_pixel_frame=5e-8,
                 weights_bytes=40 * 1024 ** 3, bytes_per_token=131_072, bytes_per_pixel_frame=768, measured=True,
                 jobs=3, source="measured over 3 jobs on this server")


def _limits(variant="distilled", steps=8, stages=2, cost=COST, factor=0):
    caps = pb.Capabilities(protocol_version="2.1", size_multiple=64 if stages == 2 else 32, latent_cell=32,
                           max_width=1920, max_height=1920, max_frames=257, two_stage=stages == 2,
                           default_stages=stages, model_variant=variant, default_steps=steps, min_width=64,
                           min_height=64)
    if factor:
        caps.loras.add(name="depth", kind=pb.LORA_KIND_CONTROL, reference_downscale_factor=factor)
    if cost is not None:
        cost_to_proto(cost, caps.cost_model)
    return server_limits(caps)


def test_final_is_the_panels_size_with_the_servers_steps_and_stages():
    final = render_settings("final", 768, 512, 121, _limits())
    assert (final.width, final.height, final.num_frames, final.steps, final.stages) == (768, 512, 121, None, None)
    assert (final.estimate_steps, final.estimate_stages) == (8, 2)
    assert final.summary() == "Final: 768 x 512, 121 frames, 2 stages, 8 steps"


def test_distilled_preview_is_half_size_one_stage_and_keeps_its_eight_steps():
    p = render_settings("preview", 768, 512, 121, _limits())
    assert (p.width, p.height, p.num_frames, p.steps, p.stages) == (384, 256, 121, None, 1)
    assert p.final_size == (768, 512) and p.limits["two_stage"] is False and p.limits["size_multiple"] == 32
    assert "distilled model's 8 steps" in p.reason and "every frame" in p.reason
    assert p.summary() == "Preview: 384 x 256, 121 frames, 1 stage, 8 steps"


@pytest.mark.parametrize("default, preview", [(40, 20), (30, 15), (16, 12), (10, 10)])
def test_dev_preview_halves_the_steps_but_not_below_twelve(default, preview):
    p = render_settings("preview", 768, 512, 121, _limits("dev", default))
    assert p.steps == preview and f"{preview} of the dev model's {default} steps" in p.reason


def test_preview_size_follows_the_one_stage_rule_and_the_models_smallest_side():
    # 1280 x 704 (two-stage: /64) -> 640 x 352, a /32 size one stage renders.
    p = render_settings("preview", 1280, 704, 121, _limits())
    assert (p.width, p.height) == (640, 352)
    # Never below 64 a side (LTX-2's decoder pads by reflection).
    small = render_settings("preview", 128, 96, 9, _limits())
    assert (small.width, small.height) == (64, 64)
    # A control LoRA of factor 2 reads a 1/2 canvas: one stage needs multiples of 64 (not 128).
    limits = _limits(factor=2)

    def snap(w, h, lim):
        return snap_size_for(w, h, lim, "depth")

    final = render_settings("final", 768, 512, 121, limits, snap)
    assert (final.width, final.height) == (768, 512)
    p = render_settings("preview", 768, 512, 121, limits, snap)
    assert (p.width, p.height) == (384, 256)
    assert snap_size_for(384, 256, one_stage_limits(limits), "depth")[:2] == (384, 256)


def test_unknown_server_previews_at_half_size_in_one_stage_with_its_default_steps():
    p = render_settings("preview", 768, 512, 121, {})
    assert (p.width, p.height, p.steps, p.stages) == (384, 256, None, 1)
    assert estimate_line(p, {}) == ""  # no cost model known: no estimate, no guess


def test_estimate_line_is_faster_for_a_preview_and_says_measured_or_a_priori():
    limits = _limits()
    final = render_settings("final", 768, 512, 121, limits)
    preview = render_settings("preview", 768, 512, 121, limits)
    line = estimate_line(final, limits, "gpu-box", (1,))
    assert line.startswith("≈ ") and line.endswith(" GiB on gpu-box (measured)")
    seconds = [CostModel.from_dict(limits["cost_model"]) and float(s.split()[1])
               for s in (line, estimate_line(preview, limits, "gpu-box", (1,)))]
    assert seconds[1] < seconds[0]
    a_priori = _limits(cost=CostModel(**{**COST.to_dict(), "measured": False}))
    assert estimate_line(final, a_priori, "gpu-box").endswith("(a priori)")
    assert _limits(cost=None)["cost_model"] == {}  # a 2.0 server: none
