"""What the engine accepts (frames, sizes, numbers) and its schedules; no model needed.

The server's validation can call `check_request` before any GPU work.
"""

from __future__ import annotations

import numpy as np
import torch

from .request import InvalidRequest, RenderRequest

FRAME_STEP = 8  # frames are 8k+1 (LTX-2 VAE: 8 frames per latent frame, the first alone)
SIZE_MULTIPLE = 32  # pixels per latent cell
TWO_STAGE_SIZE_MULTIPLE = 64  # stage 1 runs at half size, which must still be /32
MAX_FRAMES = 257
MAX_SIDE = 1920

# LTX-2 distilled schedule (8 steps; the scheduler appends the terminal 0) and its stage-2 tail.
DISTILLED_SIGMAS = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875]
STAGE_2_SIGMAS = [0.909375, 0.725, 0.421875]


def check_request(req: RenderRequest, two_stage: bool = False) -> None:
    """Frame/size/number checks; raises InvalidRequest saying what to change."""
    f = req.num_frames
    if isinstance(f, bool) or not isinstance(f, int) or f < 1 or (f - 1) % FRAME_STEP:
        k = max(0, (int(f) - 1) // FRAME_STEP) if isinstance(f, int) else 0
        raise InvalidRequest(f"frames must be 8k+1 (got {f}); try {k * FRAME_STEP + 1} or {(k + 1) * FRAME_STEP + 1}")
    if f > MAX_FRAMES:
        raise InvalidRequest(f"at most {MAX_FRAMES} frames per shot (got {f}); split the shot")
    multiple = TWO_STAGE_SIZE_MULTIPLE if two_stage else SIZE_MULTIPLE
    for name, v in (("width", req.width), ("height", req.height)):
        if isinstance(v, bool) or not isinstance(v, int) or v < multiple or v % multiple:
            near = max(multiple, round(v / multiple) * multiple) if isinstance(v, (int, float)) else 512
            why = " (two-stage mode renders stage 1 at half size)" if two_stage else ""
            raise InvalidRequest(f"{name} must be a positive multiple of {multiple}{why} (got {v}); try {near}")
        if v > MAX_SIDE:
            raise InvalidRequest(f"{name} must be at most {MAX_SIDE} pixels (got {v})")
    if not (isinstance(req.fps, (int, float)) and np.isfinite(req.fps) and req.fps > 0):
        raise InvalidRequest(f"fps must be a positive number (got {req.fps})")
    if req.num_inference_steps is not None and not (1 <= req.num_inference_steps <= 200):
        raise InvalidRequest(f"num_inference_steps must be 1..200 (got {req.num_inference_steps})")
    if req.guidance_scale is not None and not (np.isfinite(req.guidance_scale) and req.guidance_scale >= 1.0):
        raise InvalidRequest(f"guidance_scale must be >= 1 (got {req.guidance_scale}); 1 = no guidance")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """"auto" = bf16 on CUDA, fp32 on CPU (CPU bf16 matmuls are slow and imprecise)."""
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32}
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in table:
        raise ValueError(f"dtype must be auto, bf16, fp16 or fp32 (got {dtype!r})")
    return table[dtype]


def sigma_schedule(steps: int, variant: str) -> list[float]:
    """The distilled schedule for 8 steps on a distilled model, else diffusers' linear 1 -> 1/steps."""
    if variant in ("distilled", "tiny-test") and steps == len(DISTILLED_SIGMAS):
        return list(DISTILLED_SIGMAS)
    return [float(s) for s in np.linspace(1.0, 1.0 / steps, steps)]


def shift_mu(num_tokens: int, config) -> float:
    """diffusers' resolution-dependent shift, from the TARGET token count (references excluded,
    so adding a reference never changes the schedule)."""
    base_len, max_len = config.get("base_image_seq_len", 1024), config.get("max_image_seq_len", 4096)
    base_shift, max_shift = config.get("base_shift", 0.95), config.get("max_shift", 2.05)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return num_tokens * slope + base_shift - slope * base_len


def set_schedule(scheduler, sigmas: list[float], num_tokens: int, device) -> None:
    kwargs = {"mu": shift_mu(num_tokens, scheduler.config)} if scheduler.config.get("use_dynamic_shifting") else {}
    scheduler.set_timesteps(sigmas=sigmas, device=device, **kwargs)
