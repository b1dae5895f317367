"""Lightricks' rectified-flow objective: the sigma sampler's distribution, noising and the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from render_backend.training import objective


def _analytic_cdf(x: float, num_tokens: int) -> float:
    """P(sigma <= x) of ltx-trainer's sampler, written from its formula (x well above eps): 90% the
    stretched logit-normal, 10% uniform on [eps, 1]."""
    mu = objective.shift_for_tokens(num_tokens)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    lo, hi = sig(mu - 2.5758), sig(mu + 3.0902)
    s = lo + x * (hi - lo)
    stretched = 0.5 * (1 + math.erf((math.log(s / (1 - s)) - mu) / math.sqrt(2)))
    return 0.9 * stretched + 0.1 * (x - 1e-3) / (1 - 1e-3)


def test_shift_is_linear_in_target_tokens_and_capped():
    assert objective.shift_for_tokens(1024) == pytest.approx(0.95)
    assert objective.shift_for_tokens(4096) == pytest.approx(2.05)
    assert objective.shift_for_tokens(2560) == pytest.approx(1.5)
    assert objective.shift_for_tokens(24 * 16 * 16) == pytest.approx(2.05)  # 768x512x185: held at the cap
    assert objective.shift_for_tokens(256) == pytest.approx(0.95 - 768 * 1.1 / 3072)  # below: extrapolated


@pytest.mark.parametrize("tokens", [1024, 4096, 48])
def test_sigma_samples_follow_lightricks_distribution(tokens):
    g = torch.Generator().manual_seed(0)
    s = objective.sample_sigmas(200_000, tokens, g).numpy()
    assert s.min() >= 0.0 and s.max() <= 1.0
    for x in (0.1, 0.3, 0.5, 0.7, 0.9):
        assert np.mean(s <= x) == pytest.approx(_analytic_cdf(x, tokens), abs=0.004), x


def test_median_sigma_grows_with_resolution():
    g = torch.Generator().manual_seed(1)
    small, big = (float(objective.sample_sigmas(100_000, n, g).median()) for n in (1024, 4096))
    assert small == pytest.approx(0.668, abs=0.01) and big == pytest.approx(0.811, abs=0.01)


def test_noise_and_velocity_recover_the_clean_latents():
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(1, 12, 8, generator=g), torch.randn(1, 12, 8, generator=g)
    sigma = torch.tensor([0.3])
    xt = objective.noisy_latents(x0, noise, sigma)
    v = objective.velocity_target(x0, noise)
    torch.testing.assert_close(xt - sigma * v, x0)  # ltx-core's to_denoised
    torch.testing.assert_close(xt, 0.7 * x0 + 0.3 * noise)


def test_loss_refuses_a_prediction_that_still_holds_reference_tokens():
    target = torch.zeros(1, 12, 8)
    assert float(objective.velocity_loss(torch.ones(1, 12, 8), target)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="reference tokens"):
        objective.velocity_loss(torch.ones(1, 20, 8), target)
