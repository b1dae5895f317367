"""Guidance as Lightricks' ltx-pipelines applies it (ltx-core's MultiModalGuider), per model variant.

One denoising step runs the transformer once per pass the guidance needs:
    cond       the prompt                                                    always
    uncond     the negative prompt                                           cfg != 1
    perturbed  the prompt; self-attention of the STG blocks skipped (values pass through)   stg != 0
    isolated   the prompt; the audio <-> video cross-attention switched off                 modality != 1
and combines the denoised (x0) predictions per modality (video and audio have their own scales):
    x0 = cond + (cfg - 1)(cond - uncond) + stg (cond - perturbed) + (modality - 1)(cond - isolated)
    x0 = x0 * (rescale * std(cond) / std(x0) + 1 - rescale)                  rescale != 0
A distilled model runs the cond pass only: Lightricks' distilled and IC-LoRA pipelines use no guidance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

# Lightricks' dev defaults per generation (ltx-pipelines utils/constants.py: LTX_2_PARAMS, LTX_2_3_PARAMS,
# and LTX_2_4_PARAMS for LTX-2.5, whose steps and guidance are 2.3's).
DEV_STEPS = {"ltx-2": 40, "ltx-2.3": 30, "ltx-2.5": 30}
DEV_STG_BLOCK = {"ltx-2": 29, "ltx-2.3": 28, "ltx-2.5": 28}


@dataclass(frozen=True)
class Guidance:
    """One modality's guidance scales (ltx-core MultiModalGuiderParams): 1 / 0 = off."""

    cfg: float = 1.0
    stg: float = 0.0
    modality: float = 1.0
    rescale: float = 0.0

    def combine(self, cond: torch.Tensor, uncond: torch.Tensor | None, perturbed: torch.Tensor | None,
                isolated: torch.Tensor | None) -> torch.Tensor:
        """Guided x0 from the passes' x0 predictions (a pass this guidance does not use may be None)."""
        x0 = cond
        if self.cfg != 1.0:
            x0 = x0 + (self.cfg - 1.0) * (cond - uncond)
        if self.stg != 0.0:
            x0 = x0 + self.stg * (cond - perturbed)
        if self.modality != 1.0:
            x0 = x0 + (self.modality - 1.0) * (cond - isolated)
        if self.rescale != 0.0:
            x0 = x0 * (self.rescale * cond.std() / x0.std() + (1.0 - self.rescale))
        return x0


@dataclass(frozen=True)
class GuidancePlan:
    """Video and audio guidance of one generation and the blocks STG perturbs."""

    video: Guidance = Guidance()
    audio: Guidance = Guidance()
    stg_blocks: tuple[int, ...] = ()

    @property
    def uncond(self) -> bool:
        return self.video.cfg != 1.0 or self.audio.cfg != 1.0

    @property
    def perturbed(self) -> bool:
        return self.video.stg != 0.0 or self.audio.stg != 0.0

    @property
    def isolated(self) -> bool:
        return self.video.modality != 1.0 or self.audio.modality != 1.0

    @property
    def passes(self) -> int:
        return 1 + self.uncond + self.perturbed + self.isolated

    def velocities(self, passes: list[tuple], latents: torch.Tensor, audio_latents: torch.Tensor,
                   sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Guided (video, audio) velocities from the passes' velocities [(video, audio) of cond, uncond,
        perturbed, isolated; (None, None) for a pass not run]: combined as x0 = x - sigma v, as ltx-core
        guides denoised predictions, then back to velocities (x - x0) / sigma for the Euler step."""
        def x0(x, v):
            return None if v is None else x.float() - sigma * v

        video_x0 = self.video.combine(*[x0(latents, v) for v, _ in passes])
        audio_x0 = self.audio.combine(*[x0(audio_latents, a) for _, a in passes])
        return (latents.float() - video_x0) / sigma, (audio_latents.float() - audio_x0) / sigma

    def with_cfg(self, scale: float) -> GuidancePlan:
        """The request's guidance_scale: the CFG scale of both video and audio; the rest unchanged."""
        return replace(self, video=replace(self.video, cfg=scale), audio=replace(self.audio, cfg=scale))

    def describe(self, variant: str) -> str:
        """In words, for Capabilities."""
        if self.passes == 1 and self.video.cfg == 1.0:
            return f"{variant}: no guidance (one transformer pass per step), as Lightricks' distilled pipelines"
        v, a = self.video, self.audio
        return (f"{variant}: Lightricks' multimodal guidance on x0: video CFG {v.cfg:g}, audio CFG {a.cfg:g}, STG "
                f"{v.stg:g} on block(s) {', '.join(map(str, self.stg_blocks))}, modality {v.modality:g}, rescale "
                f"{v.rescale:g} ({self.passes} transformer passes per step); rescale's std is taken over the "
                "generated tokens; guidance_scale sets both CFG scales")

    def report(self) -> dict:
        return {"video": vars(self.video), "audio": vars(self.audio), "stg_blocks": list(self.stg_blocks),
                "transformer_passes_per_step": self.passes}


def default_guidance(variant: str, generation: str, num_layers: int) -> GuidancePlan:
    """Lightricks' guidance for this model: none for distilled; for dev, video CFG 3 and audio CFG 7,
    STG 1 on one block, modality guidance 3, rescale 0.7 (ltx-pipelines' dev pipelines).

    The STG block is Lightricks' for the generation (29 for LTX-2, 28 for LTX-2.3 and 2.5, of 48); a
    smaller model (the tiny test model) perturbs its last block instead, so that the pass still does something.
    """
    if variant != "dev":
        return GuidancePlan()
    block = min(DEV_STG_BLOCK[generation], int(num_layers) - 1)
    video = Guidance(cfg=3.0, stg=1.0, modality=3.0, rescale=0.7)
    return GuidancePlan(video=video, audio=replace(video, cfg=7.0), stg_blocks=(block,))


def default_steps(variant: str, generation: str) -> int:
    """8 for distilled (the published schedule); Lightricks' dev default for the generation."""
    return DEV_STEPS[generation] if variant == "dev" else 8
