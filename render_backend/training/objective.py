"""The training objective of Lightricks' ltx-trainer for LTX-2 (rectified flow), as its code does it.

Sources: Lightricks/LTX-2 `packages/ltx-trainer/src/ltx_trainer/timestep_samplers.py` (@32ac2e1,
ShiftedLogitNormalTimestepSampler) and `training_strategies/flexible.py` (`_initialize_noisy_target`,
the masked loss); /work/notes/training.md sections 2-3.

- sigma ~ stretched, shifted logit-normal: n ~ N(mu, 1), s = sigmoid(n), stretched so the 0.5th and
  99.9th percentiles land on 0 and 1, values below eps reflected (2 eps - x), clamped to [0, 1]; with
  probability 0.1 a uniform draw in [eps, 1] instead. mu is linear in the TARGET token count
  (references excluded): 0.95 at 1024 tokens, 2.05 at 4096, held at 2.05 above (the cap of that
  commit; without it the stretch divides by ~0).
- x_sigma = (1 - sigma) x0 + sigma noise; the model predicts the velocity v = noise - x0.
- loss = mean squared error over the target tokens only (the reference tokens' outputs are never
  part of it), no sigma weighting; gradients clipped to norm 1.
"""

from __future__ import annotations

import math

import torch

MIN_TOKENS, MAX_TOKENS = 1024, 4096
MIN_SHIFT, MAX_SHIFT = 0.95, 2.05
EPS = 1e-3
UNIFORM_PROB = 0.1
LOW_PERCENTILE, HIGH_PERCENTILE = -2.5758, 3.0902  # 0.5th and 99.9th of N(0, 1)
# The held-out loss: the same sigmas and noise at every evaluation, so its curve shows learning only.
EVAL_SIGMAS = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95)


def shift_for_tokens(num_tokens: int) -> float:
    """mu of the logit-normal for a target of `num_tokens` latent tokens."""
    n = min(int(num_tokens), MAX_TOKENS)
    slope = (MAX_SHIFT - MIN_SHIFT) / (MAX_TOKENS - MIN_TOKENS)
    return MIN_SHIFT + slope * (n - MIN_TOKENS)


def sample_sigmas(batch: int, num_tokens: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch,) float32 sigmas in [0, 1], drawn as ltx-trainer's shifted_logit_normal sampler does."""
    mu = shift_for_tokens(num_tokens)
    s = torch.sigmoid(torch.randn(batch, generator=generator) + mu)
    lo, hi = _sigmoid(mu + LOW_PERCENTILE), _sigmoid(mu + HIGH_PERCENTILE)
    stretched = (s - lo) / (hi - lo)
    stretched = torch.where(stretched >= EPS, stretched, 2 * EPS - stretched).clamp(0.0, 1.0)
    uniform = (1 - EPS) * torch.rand(batch, generator=generator) + EPS
    pick = torch.rand(batch, generator=generator)
    return torch.where(pick > UNIFORM_PROB, stretched, uniform).float()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def noisy_latents(clean: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_sigma = (1 - sigma) x0 + sigma noise; sigma (B,) broadcast over (B, N, C)."""
    s = sigma.reshape(-1, *([1] * (clean.ndim - 1))).to(clean)
    return (1 - s) * clean + s * noise


def velocity_target(clean: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What the model is trained to predict: v = noise - x0 (ltx-core: x0 = x_sigma - sigma v)."""
    return noise - clean


def velocity_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the target tokens (predicted holds no reference tokens)."""
    if predicted.shape != target.shape:
        raise ValueError(f"prediction {tuple(predicted.shape)} and target {tuple(target.shape)} differ: the "
                         "reference tokens must be dropped before the loss")
    return torch.mean((predicted.float() - target.float()) ** 2)
