"""LTX-2's frame and size rules, dtypes, sigma schedules and samplers (Lightricks' ltx-pipelines); no model needed.

Samplers, as Lightricks' pipelines step (ltx-core components/diffusion_steps.py):
- "euler": deterministic Euler on the velocity. Every stage 2, every dev stage 1, every stage 1 that
  carries IC-LoRA reference canvases (ICLoraPipeline steps plain Euler for every generation), and
  distilled stage 1 of LTX-2 and LTX-2.3.
- "euler_ancestral": LTX-2.5 distilled stage 1 without reference canvases (DistilledPipeline, since
  ltx-pipelines 1.2: ancestral from model version 2.5): Euler to sigma_down = sigma_next^2 / sigma,
  then re-noised up to sigma_next (rectified-flow form, eta 1, s_noise 1), fresh noise drawn from
  its own generator seeded seed + 10000, video then audio each step. diffusers'
  LTXEulerAncestralRFScheduler computes the same step.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

FRAME_STEP = 8  # frames are 8k+1 (LTX-2 VAE: 8 frames per latent frame, the first alone)
SIZE_MULTIPLE = 32  # pixels per latent cell
TWO_STAGE_SIZE_MULTIPLE = 64  # stage 1 runs at half size, which must still be /32
MAX_FRAMES = 257
MAX_SIDE = 1920

# LTX-2 distilled schedule (8 steps; the scheduler appends the terminal 0) and its stage-2 tail.
DISTILLED_SIGMAS = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875]
STAGE_2_SIGMAS = [0.909375, 0.725, 0.421875]
# Lightricks' LTX2Scheduler for dev models, as its two-stage pipeline calls it (no latent given):
# the shift of a 4096-token latent at every size, then stretched so the last sigma is 0.1.
DEV_SHIFT = 2.05
DEV_TERMINAL = 0.1
# LTX-2.5 distilled stage 1 (ltx-pipelines distilled.py): fully ancestral, its noise seeded apart from the
# initial noise (the same seed would redraw the initial noise exactly at the first step).
ANCESTRAL_ETA = 1.0
ANCESTRAL_S_NOISE = 1.0
ANCESTRAL_NOISE_SEED_OFFSET = 10000
ANCESTRAL_SINCE = "ltx-2.5"


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """"auto" = bf16 on CUDA, fp32 on CPU (CPU bf16 matmuls are slow and imprecise)."""
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32}
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in table:
        raise ValueError(f"dtype must be auto, bf16, fp16 or fp32 (got {dtype!r})")
    return table[dtype]


def sigma_schedule(steps: int, variant: str) -> tuple[list[float], bool]:
    """(sigmas, shift) of stage 1, without the final 0.

    distilled, 8 steps: the published schedule, as is (shift False). dev: Lightricks' dev schedule
    (dev_sigmas), as is. distilled with another step count (no published schedule): diffusers'
    linear 1 -> 1/steps with its resolution-dependent shift (shift True).
    """
    if variant == "dev":
        return dev_sigmas(steps), False
    if steps == len(DISTILLED_SIGMAS):
        return list(DISTILLED_SIGMAS), False
    return [float(s) for s in np.linspace(1.0, 1.0 / steps, steps)], True


def dev_sigmas(steps: int, shift: float = DEV_SHIFT, terminal: float = DEV_TERMINAL) -> list[float]:
    """Lightricks' dev schedule (ltx-core LTX2Scheduler, 4096 tokens), without the final 0.

    sigma = 1 - k / steps, shifted to e^shift / (e^shift + 1/sigma - 1), then stretched so that
    1 - sigma scales to end at 1 - terminal. Computed in float32, as ltx-core does.
    """
    linear = torch.linspace(1.0, 0.0, steps + 1)[:-1]  # (steps,) float32, 1 .. 1/steps
    shifted = math.exp(shift) / (math.exp(shift) + (1 / linear - 1))
    one_minus = 1.0 - shifted
    stretched = 1.0 - one_minus / (one_minus[-1] / (1.0 - terminal))
    return [float(s) for s in stretched]


def stage_1_sampler(variant: str, generation: str, has_references: bool) -> str:
    """"euler_ancestral" for LTX-2.5 distilled without reference canvases (Lightricks' DistilledPipeline),
    else "euler" (ICLoraPipeline with references, dev pipelines, older generations)."""
    ancestral = variant == "distilled" and generation == ANCESTRAL_SINCE and not has_references
    return "euler_ancestral" if ancestral else "euler"


def shift_mu(num_tokens: int, config) -> float:
    """diffusers' resolution-dependent shift, from the TARGET token count (references excluded,
    so adding a reference never changes the schedule)."""
    base_len, max_len = config.get("base_image_seq_len", 1024), config.get("max_image_seq_len", 4096)
    base_shift, max_shift = config.get("base_shift", 0.95), config.get("max_shift", 2.05)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return num_tokens * slope + base_shift - slope * base_len


def make_scheduler(base, sigmas: list[float], shift: bool, num_tokens: int, device, sampler: str = "euler"):
    """A fresh scheduler (a copy of the pipeline's) set to `sigmas`; its `.sigmas` are the ones used.
    sampler "euler_ancestral": diffusers' LTXEulerAncestralRFScheduler on the same sigmas (its step
    takes the noise generator).

    shift=False: the sigmas are used exactly as given, as Lightricks' pipelines and diffusers' LTX-2
    docs do for the distilled and stage-2 schedules (a scheduler with use_dynamic_shifting shifts
    given sigmas too: with LTX-2's shift settings at 768x512x121 frames, 0.421875 would become 0.92).
    shift=True: what diffusers'
    LTX2 pipelines do with their default linear schedule (mu from the target token count).
    """
    if shift:
        scheduler = copy.deepcopy(base)
        kwargs = {"mu": shift_mu(num_tokens, scheduler.config)} if scheduler.config.get("use_dynamic_shifting") else {}
    else:
        scheduler = type(base).from_config(base.config, use_dynamic_shifting=False, shift=1.0, shift_terminal=None)
        kwargs = {}
    scheduler.set_timesteps(sigmas=sigmas, device=device, **kwargs)
    if not shift and not torch.allclose(scheduler.sigmas[:-1].cpu(), torch.tensor(sigmas, dtype=torch.float32)):
        raise RuntimeError(f"{type(base).__name__} changed the fixed sigmas {sigmas} into "
                           f"{scheduler.sigmas.tolist()}; check the model's scheduler_config.json")
    if sampler == "euler_ancestral":
        from diffusers import LTXEulerAncestralRFScheduler

        ancestral = LTXEulerAncestralRFScheduler(eta=ANCESTRAL_ETA, s_noise=ANCESTRAL_S_NOISE)
        ancestral.set_timesteps(sigmas=scheduler.sigmas.float().cpu(), device=device)  # final 0 included
        # It lists the final 0 as a timestep too; the loop steps through timesteps, and a model call at
        # sigma 0 would change nothing. Drop it, as the Euler scheduler never lists it.
        ancestral.timesteps = ancestral.timesteps[:-1]
        return ancestral
    return scheduler
