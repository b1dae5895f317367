"""Frame conditions: a shot's first frames held to known frames (a previous window's last frames),
so a long animation rendered in windows continues instead of starting afresh (issue: batch).

In place, as ltx-core's `VideoConditionByLatentIndex` at index 0 and diffusers' LTX-2 condition
pipeline at index 0 do: the condition clip (8m + 1 frames) is VAE-encoded into m + 1 latent frames,
which ARE the shot's first m + 1 latent frames (the first n tokens, frame-major). At strength 1 they
are clean, timestep 0, every step; at strength s < 1 they sit at noise level (1 - s) * sigma (fixed
noise, timestep scaled the same), so early steps see them blurred and the rest of the shot is held
less tightly; they reach the clean frames at the end either way. The model's own prediction for
those tokens is never used, and nothing changes for a shot without conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PinnedFrames:
    clean: torch.Tensor  # (1, n, C): the condition's normalised, packed latents
    strength: float
    noise: torch.Tensor  # (1, n, C): fixed for the whole generation (seeded)

    @property
    def tokens(self) -> int:
        return int(self.clean.shape[1])

    def level(self, sigma: float) -> float:
        """The noise level the pinned tokens sit at while the shot is at `sigma`."""
        return (1.0 - self.strength) * float(sigma)

    def apply(self, latents: torch.Tensor, sigma: float) -> torch.Tensor:
        """latents with its first `tokens` tokens set to the condition at this noise level."""
        level = self.level(sigma)
        out = latents.clone()
        out[:, :self.tokens] = (1.0 - level) * self.clean + level * self.noise
        return out

    def timesteps(self, t: torch.Tensor, num_target: int) -> torch.Tensor:
        """(1, num_target) per-token timesteps: the pinned tokens' scaled by (1 - strength)."""
        per_token = t.to(torch.float32).expand(1, num_target).clone()
        per_token[:, :self.tokens] *= 1.0 - self.strength
        return per_token
