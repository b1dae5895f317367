"""LoRA training at full size on CUDA: seconds per step and peak GPU memory, against memory.py's estimate.

The full LTX-2 transformer (diffusers' defaults = LTX-2.0 19B, or `--config` a real model's
transformer/config.json, e.g. LTX-2.3 22B) with random bf16 weights (no download), the engine's
attention processors, the trainer's LoRA (rank 32 on the video attention + feed-forward layers),
gradient checkpointing and the trainer's step: ltx-trainer's sigma sampler, the parallel canvas
[target at sigma | reference at timestep 0, positions x factor] through forward.velocities, loss on
the target tokens, AdamW (or 8-bit AdamW). Random prompt embeddings replace Gemma (the trainer caches
them before training; the text encoder is off the GPU while it trains).

Run on the GPU box (one command; ~2-4 minutes for 19B, most of it building the random weights):
    .venv/bin/python bench/train_step.py --frames 49 --width 768 --height 512 --factor 1 --steps 5
Without CUDA it says so and exits 0. `--allow-cpu --layers 1 --frames 9 --width 128 --height 128
--steps 2 --tiny` is a smoke run of the same code on CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY = {"num_attention_heads": 2, "attention_head_dim": 16, "cross_attention_dim": 32, "caption_channels": 32,
        "audio_num_attention_heads": 2, "audio_attention_head_dim": 8, "audio_cross_attention_dim": 16,
        "in_channels": 8, "out_channels": 8, "audio_in_channels": 8, "audio_out_channels": 8}


def build_transformer(config: dict, device, dtype):
    """LTX-2 transformer from `config` with random weights, allocated once on `device` in `dtype`."""
    import torch
    from diffusers import LTX2VideoTransformer3DModel

    with torch.device("meta"):
        model = LTX2VideoTransformer3DModel(**config)
    model = model.to(dtype).to_empty(device=device)  # 19B params in bf16 = 38 GB, never fp32
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and p.ndim == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--factor", type=int, default=1, help="reference_downscale_factor of the canvas")
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--modules", default="attention+ff", choices=["attention+ff", "attention"])
    parser.add_argument("--optimizer", default="adamw", choices=["adamw", "adamw8bit"])
    parser.add_argument("--no-gradient-checkpointing", dest="checkpointing", action="store_false")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    parser.add_argument("--layers", type=int, default=None, help="transformer blocks (default: the config's)")
    parser.add_argument("--config", type=Path, default=None, help="a real model's transformer/config.json")
    parser.add_argument("--tiny", action="store_true", help="the tiny test model's widths (CPU smoke run)")
    parser.add_argument("--allow-cpu", action="store_true", help="smoke-run on CPU (use tiny settings)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("=" * 72)
        print("bench/train_step.py NEEDS A CUDA GPU (about 45-55 GiB free for 19B at 768x512x49).")
        print("No CUDA device here: nothing measured. Run it on the GPU box.")
        print("=" * 72)
        return 0
    from peft import LoraConfig

    from render_backend.engine.ltx2.attention import install_reference_bias
    from render_backend.engine.ltx2.forward import audio_positions, velocities, video_positions
    from render_backend.training import objective
    from render_backend.training.memory import estimate
    from render_backend.training.options import ADAPTER, TARGET_MODULES

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = json.loads(args.config.read_text()) if args.config else {}
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    if args.tiny:
        config.update(TINY)
    if args.layers:
        config["num_layers"] = args.layers
    t0 = time.perf_counter()
    transformer = build_transformer(config, device, dtype)
    install_reference_bias(transformer)
    base_params = sum(p.numel() for p in transformer.parameters())
    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, target_modules=TARGET_MODULES[args.modules]),
                            adapter_name=ADAPTER)
    params = [p for n, p in transformer.named_parameters() if f".{ADAPTER}." in n]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    if args.checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    if args.optimizer == "adamw8bit":
        import bitsandbytes

        optimizer = bitsandbytes.optim.AdamW8bit(params, lr=2e-4)
    else:
        optimizer = torch.optim.AdamW(params, lr=2e-4)
    cfg = transformer.config
    print(f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}: LTX-2 transformer "
          f"{cfg.num_layers} layers, {base_params / 1e9:.2f} B params ({dtype}), LoRA rank {args.rank} on "
          f"{args.modules}: {sum(p.numel() for p in params) / 1e6:.1f} M; built in {time.perf_counter() - t0:.0f} s")

    # The clip: target grid, one reference canvas at the factor (positions scaled as the engine does).
    lf, lh, lw = (args.frames - 1) // 8 + 1, args.height // 32, args.width // 32
    rh, rw = lh // args.factor, lw // args.factor
    ref = SimpleNamespace(coords=transformer.rope.prepare_video_coords(1, lf, rh, rw, device, fps=24.0))
    ref.coords[:, 1:] *= args.factor
    pipe = SimpleNamespace(transformer=transformer)
    video_coords = video_positions(pipe, (lf, lh, lw), [ref], 24.0, device)
    audio_len = round(args.frames / 24.0 * 16000 / 160 / 4)
    audio_coords = audio_positions(pipe, audio_len, device)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, lf * lh * lw, cfg.in_channels, generator=gen).to(device)
    ref_tokens = torch.randn(1, lf * rh * rw, cfg.in_channels, generator=gen).to(device)
    text = (torch.randn(1, 1024, cfg.caption_channels, generator=gen).to(device, dtype),
            torch.randn(1, 1024, cfg.caption_channels, generator=gen).to(device, dtype),
            torch.ones(1, 1024, device=device))

    def step() -> float:
        noise = torch.randn(x0.shape, generator=gen).to(device)
        sigma = objective.sample_sigmas(1, x0.shape[1], gen)
        audio = objective.noisy_latents(torch.zeros(1, audio_len, cfg.audio_in_channels),
                                        torch.randn(1, audio_len, cfg.audio_in_channels, generator=gen), sigma)
        pred, _ = velocities(pipe, dtype, sigma.to(device) * 1000.0, objective.noisy_latents(x0, noise, sigma),
                             ref_tokens, audio.to(device), text, (lf, lh, lw), 24.0, video_coords, audio_coords)
        loss = objective.velocity_loss(pred, objective.velocity_target(x0, noise))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    step()  # warm-up: kernels, optimizer state
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    size = {"params": base_params, "layers": cfg.num_layers, "width": cfg.num_attention_heads * cfg.attention_head_dim,
            "ff_mult": 4, "text_encoder_params": 0}
    e = estimate(size, args.width, args.height, args.frames, args.factor, args.rank, args.modules == "attention+ff",
                 args.optimizer, args.checkpointing)
    tokens = lf * lh * lw + lf * rh * rw
    median = sorted(times)[len(times) // 2]
    print(f"{args.frames} frames {args.width}x{args.height}, reference factor {args.factor}: {tokens} video tokens")
    print(f"step time: median {median:.3f} s over {args.steps} steps (last loss {loss:.4f})")
    print(f"peak GPU memory: {peak:.2f} GiB measured, {e.peak_gib:.2f} GiB estimated (memory.py, no text encoder)")
    if args.json:
        args.json.write_text(json.dumps({"tokens": tokens, "step_seconds": times, "median_s": median,
                                         "peak_gib": peak, "estimate_gib": e.peak_gib, "params": base_params}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
