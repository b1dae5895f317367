"""The a-priori cost model of a loaded LTX-2 pipeline (shot_cost.CostModel), from its size alone.

Before this server has run a job it can only reason from the model: a transformer pass costs
2 FLOPs per parameter per token in its linear layers, at an effective device throughput
(ASSUMED_FLOPS: about 40 % of an H100's bf16 peak, which puts LTX-2 19B at 768x512x121, 8 steps,
near the public 6 s of denoising; CPU numbers are rough). Memory: the weights as loaded, plus
per-token activations of one transformer block (its width x ACTIVATION_WIDTHS, one block's tensors
live at a time under no_grad) and the VAE decoder's widest full-size feature map. The server
replaces the seconds with measured ones after its first job (server/cost.py).
"""

from __future__ import annotations

import torch

from ...shot_cost import CostModel
from .schedules import STAGE_2_SIGMAS

ASSUMED_FLOPS = {"cuda": 4e14, "cpu": 5e10}  # effective FLOP/s of the linear layers
FIXED_SECONDS = {"cuda": 1.5, "cpu": 0.5}  # text encoding and set-up per job
SECONDS_PER_PIXEL_FRAME = {"cuda": 5e-8, "cpu": 2e-6}  # VAE decode + mp4/wav encode
ACTIVATION_WIDTHS = 16  # hidden, q, k, v, attention out, 4x feed-forward, norms: per token, in model widths
DECODE_BUFFERS = 3  # input, output and one temporary of the decoder's widest full-size block


def _module_bytes(module) -> int:
    if not isinstance(module, torch.nn.Module):
        return 0
    return sum(p.numel() * p.element_size() for p in module.parameters()) + sum(
        b.numel() * b.element_size() for b in module.buffers())


def a_priori_cost(pipe, device: torch.device, dtype: torch.dtype, passes_per_step: int,
                  extra_modules=(), offloaded: bool = False) -> CostModel:
    """CostModel of `pipe` on `device` before any job ran. passes_per_step: the default guidance's
    transformer passes per step. extra_modules: more resident modules (latent upsampler, diffusion
    decoder). offloaded: --cpu-offload (only the largest component is resident at a time)."""
    transformer = pipe.transformer
    params = sum(p.numel() for p in transformer.parameters())
    cfg = transformer.config
    width = int(cfg.get("num_attention_heads", 32)) * int(cfg.get("attention_head_dim", 128))
    layers = int(cfg.get("num_layers", 48))
    kind = "cuda" if device.type == "cuda" else "cpu"
    attention_tokens = params / (2.0 * width * layers)
    # 2 FLOPs per parameter per token is the linear layers alone; the model reads the cost at
    # reference_tokens, where attention adds its share on top.
    per_token = 2.0 * params / ASSUMED_FLOPS[kind] * (1.0 + 4096 / attention_tokens)
    components = [getattr(pipe, name, None) for name in ("transformer", "vae", "audio_vae", "vocoder", "connectors",
                                                         "text_encoder")] + list(extra_modules)
    sizes = [_module_bytes(m) for m in components]
    weights = max(sizes) if offloaded else sum(sizes)
    vae = getattr(pipe, "vae", None)
    vae_cfg = getattr(vae, "config", {}) or {}
    channels = vae_cfg.get("decoder_block_out_channels") or vae_cfg.get("block_out_channels") or (128,)
    elem = torch.tensor([], dtype=dtype).element_size()
    return CostModel(
        transformer_parameters=int(params), dtype=str(dtype).replace("torch.", ""),
        attention_tokens=attention_tokens, seconds_per_token_step=per_token, reference_tokens=4096,
        passes_per_step=int(passes_per_step), refine_steps=len(STAGE_2_SIGMAS), fixed_seconds=FIXED_SECONDS[kind],
        seconds_per_pixel_frame=SECONDS_PER_PIXEL_FRAME[kind], weights_bytes=int(weights),
        bytes_per_token=float(ACTIVATION_WIDTHS * width * elem),
        bytes_per_pixel_frame=float(DECODE_BUFFERS * int(min(channels)) * elem),
        source=f"a priori: {params / 1e9:.3g} B transformer parameters at an assumed "
               f"{ASSUMED_FLOPS[kind] / 1e12:g} TFLOP/s ({kind}); measured after the first job")
