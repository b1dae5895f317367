"""Sigma schedules as the transformer actually sees them: the published distilled and stage-2
schedules unshifted (as Lightricks' pipelines and diffusers' LTX-2 docs use them), the linear
schedule with diffusers' resolution shift; the sidecar reports exactly those values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from diffusers import FlowMatchEulerDiscreteScheduler

from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.engine.ltx2.schedules import DISTILLED_SIGMAS, STAGE_2_SIGMAS, make_scheduler, shift_mu
from render_backend.engine.ltx2.test_model import UPSAMPLER_DIR
from render_backend.engine.request import CameraRequest, RenderRequest

from .test_fidelity import dolly_track


def request(**kw) -> RenderRequest:
    base = dict(prompt="a cat on a roof at dusk", width=64, height=64, num_frames=9, seed=3)
    base.update(kw)
    return RenderRequest(**base)


def seen_sigmas(engine: LTX2Engine, req: RenderRequest) -> tuple[list[float], dict]:
    """(target-token sigma of every transformer call, result info): read from the transformer's inputs."""
    seen = []

    def record(module, args, kwargs):
        seen.append(round(float(kwargs["timestep"][0, 0]) / 1000.0, 6))  # timestep = 1000 x sigma

    hook = engine.pipe.transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        info = engine.render(req).info
    finally:
        hook.remove()
    return seen, info


def test_distilled_schedule_reaches_the_transformer_unshifted(engine):
    seen, info = seen_sigmas(engine, request(num_inference_steps=8))
    assert seen == DISTILLED_SIGMAS
    assert info["sigmas"] == DISTILLED_SIGMAS + [0.0] and info["sigma_shift"].startswith("none")
    # Not vacuous: the model's own (dynamic-shifting) scheduler would have moved 0.725 to ~0.807.
    shifted = FlowMatchEulerDiscreteScheduler.from_config(engine.pipe.scheduler.config)
    shifted.set_timesteps(sigmas=DISTILLED_SIGMAS, mu=shift_mu(info["target_tokens"], shifted.config))
    assert float(shifted.sigmas[6]) == pytest.approx(0.807, abs=2e-3)


def test_linear_schedule_keeps_diffusers_resolution_shift(engine):
    seen, info = seen_sigmas(engine, request(num_inference_steps=3))
    mu = shift_mu(info["target_tokens"], engine.pipe.scheduler.config)  # 8 target tokens
    expected = [math.exp(mu) / (math.exp(mu) + (1 / s - 1)) for s in np.linspace(1.0, 1 / 3, 3)]
    assert seen == pytest.approx(expected, abs=1e-6)
    assert seen == pytest.approx([1.0, 0.759724, 0.441488], abs=1e-6)
    assert info["sigmas"] == pytest.approx(expected + [0.0], abs=1e-6)
    assert info["sigma_shift"].startswith("resolution-dependent")


@pytest.mark.parametrize("terminal, shifted_last", [(None, 0.9219), (0.1, 0.1)])
def test_fixed_schedule_ignores_an_ltx2_scheduler_config_at_full_size(terminal, shifted_last):
    # LTX-2's shift settings (with and without a terminal stretch) at 768x512, 121 frames.
    base = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                           base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=terminal)
    tokens = 16 * 16 * 24
    fixed = make_scheduler(base, DISTILLED_SIGMAS, False, tokens, "cpu")
    assert fixed.sigmas.tolist() == pytest.approx(DISTILLED_SIGMAS + [0.0], abs=1e-7)
    assert fixed.timesteps.tolist() == pytest.approx([1000 * s for s in DISTILLED_SIGMAS], abs=1e-4)
    # What passing them through the shifting scheduler (the old code) ran instead of 0.421875:
    shifted = make_scheduler(base, DISTILLED_SIGMAS, True, tokens, "cpu")
    assert float(shifted.sigmas[7]) == pytest.approx(shifted_last, abs=1e-4)
    assert base.config.use_dynamic_shifting  # the pipeline's scheduler is left as it was


def test_two_stage_runs_the_stage_2_tail_unshifted_and_reports_it(tiny_model, canvas):
    two_stage = LTX2Engine(str(tiny_model), upsampler=str(tiny_model / UPSAMPLER_DIR))
    two_stage.load()
    seen, info = seen_sigmas(two_stage, request(width=128, height=128, num_inference_steps=8))
    assert seen == DISTILLED_SIGMAS + STAGE_2_SIGMAS
    assert info["two_stage"]["stage2_sigmas"] == STAGE_2_SIGMAS + [0.0]
    # Capabilities: references ride in the half-size stage 1, so every divisor doubles.
    caps = two_stage.capabilities()
    assert caps.two_stage and (caps.reference_divisor(1), caps.reference_divisor(4)) == (2, 8)
    assert caps.reference_size(256, 256, caps.lora("camera_trajectory").reference_downscale_factor) == (32, 32)
    # ... and that is the canvas the engine reads: 256 / 8 = 32 pixels.
    result = two_stage.render(request(width=256, height=256, num_inference_steps=1, camera=CameraRequest(
        mode="trajectory", trajectory_lora="camera_trajectory", frames=dolly_track(9, 256, 256))))
    assert result.info["camera"]["canvas_size"] == [32, 32]
