"""Full-size LTX-2 on CUDA: seconds and peak GPU memory, with and without a factor-4 camera canvas.

The full LTX-2 (2.0, 19B) transformer architecture with random bf16 weights (no download), our
attention processors (log(m) reference bias), 121 frames at 768x512, 8 denoising steps:
- "control only":        [target | control canvas at factor 1]
- "control + camera f4": [target | control canvas at factor 1 | camera canvas at factor 4]
Both at strength 0.8 (so the bias path runs). Random prompt embeddings replace Gemma (the text
encoder is not what this measures). The video VAE decode is not included.

Run: .venv/bin/python bench/gpu_full_size.py [--frames 121 --width 768 --height 512 --steps 8]
     [--attention auto|dense|flex] (the engine's kernel for the bias; auto = compiled flex on CUDA)
Without CUDA it prints that it needs a GPU and exits 0. `--allow-cpu --layers 1 --frames 9
--width 256 --height 256 --steps 1` is a smoke run of the same code on CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_transformer(layers: int, device, dtype):
    """LTX-2.0 transformer config (diffusers defaults) with random weights, built directly on `device`."""
    import torch
    from diffusers import LTX2VideoTransformer3DModel

    with torch.device("meta"):
        model = LTX2VideoTransformer3DModel(num_layers=layers)
    # Cast while still on meta (free), then allocate once: 19B params in bf16 = 38 GB, never fp32.
    model = model.to(dtype).to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and p.ndim == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    return model.eval()


def run(transformer, bias_state, args, camera: bool, device, dtype) -> dict:
    import torch

    cfg = transformer.config
    lf, lh, lw = (args.frames - 1) // 8 + 1, args.height // 32, args.width // 32
    n_target = lf * lh * lw
    groups = [(1, lh, lw)] + ([(4, lh // 4, lw // 4)] if camera else [])
    coords = [transformer.rope.prepare_video_coords(1, lf, lh, lw, device, fps=24.0)]
    strengths = []
    for factor, h, w in groups:
        c = transformer.rope.prepare_video_coords(1, lf, h, w, device, fps=24.0)
        c[:, 1:] *= factor
        coords.append(c)
        strengths.append(torch.full((lf * h * w,), 0.8))
    video_coords = torch.cat(coords, dim=2)
    n_total = video_coords.shape[2]
    audio_len = round(args.frames / 24.0 * 16000 / 160 / 4)
    audio_coords = transformer.audio_rope.prepare_audio_coords(1, audio_len, device)
    gen = torch.Generator(device=device).manual_seed(0)
    video = torch.randn(1, n_total, cfg.in_channels, generator=gen, device=device, dtype=dtype)
    audio = torch.randn(1, audio_len, cfg.audio_in_channels, generator=gen, device=device, dtype=dtype)
    text = torch.randn(1, 256, cfg.caption_channels, generator=gen, device=device, dtype=dtype)
    text_mask = torch.ones(1, 256, device=device)

    torch.cuda.empty_cache() if device.type == "cuda" else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bias_state.set(n_target, strengths, [True] * len(strengths), dtype, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        for step in range(args.steps):
            t = torch.full((1,), 1000.0 * (1 - step / args.steps), device=device)
            video_t = torch.cat([t[:, None].expand(1, n_target), torch.zeros(1, n_total - n_target, device=device)], 1)
            out, audio_out = transformer(
                hidden_states=video, audio_hidden_states=audio, encoder_hidden_states=text,
                audio_encoder_hidden_states=text, timestep=video_t, audio_timestep=t, sigma=t, audio_sigma=t,
                encoder_attention_mask=text_mask, audio_encoder_attention_mask=text_mask,
                num_frames=lf, height=lh, width=lw, fps=24.0, audio_num_frames=audio_len,
                video_coords=video_coords, audio_coords=audio_coords, use_cross_timestep=True, return_dict=False)
            video = torch.cat([video[:, :n_target] - 0.1 * out[:, :n_target], video[:, n_target:]], dim=1)
            audio = audio - 0.1 * audio_out
    sync()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    bias_state.clear()
    return {"seconds": seconds, "peak_gib": peak / 2**30, "tokens": n_total, "target_tokens": n_target}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--layers", type=int, default=48, help="transformer blocks (LTX-2: 48)")
    parser.add_argument("--attention", choices=("auto", "dense", "flex"), default="auto",
                        help="kernel of the strength bias (auto: compiled flex on CUDA, dense on CPU)")
    parser.add_argument("--allow-cpu", action="store_true", help="smoke-run on CPU (use tiny settings)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("=" * 72)
        print("bench/gpu_full_size.py NEEDS A CUDA GPU (about 45 GiB free for the full model).")
        print("No CUDA device here: nothing measured. Run it on the GPU box.")
        print("=" * 72)
        return 0
    from render_backend.engine.ltx2.attention import install_reference_bias, resolve_attention

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    t0 = time.perf_counter()
    transformer = build_transformer(args.layers, device, dtype)
    kernel = resolve_attention(args.attention, device)
    bias_state = install_reference_bias(transformer, kernel, compiled=kernel == "flex" and device.type == "cuda")
    params = sum(p.numel() for p in transformer.parameters())
    print(f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}: LTX-2 transformer "
          f"{args.layers} layers, {params / 1e9:.1f} B params ({dtype}), built in {time.perf_counter() - t0:.0f} s")
    print(f"{args.frames} frames {args.width}x{args.height}, {args.steps} steps, control canvas factor 1, strength 0.8, "
          f"attention {kernel}")
    rows = {}
    for label, camera in (("control only", False), ("control + camera f4", True)):
        run(transformer, bias_state, argparse.Namespace(**{**vars(args), "steps": 1}), camera, device, dtype)  # warm-up
        rows[label] = run(transformer, bias_state, args, camera, device, dtype)
    print(f"{'':<22}{'tokens':>8}{'seconds':>10}{'s/step':>9}{'peak GiB':>10}")
    for label, r in rows.items():
        print(f"{label:<22}{r['tokens']:>8}{r['seconds']:>10.2f}{r['seconds'] / args.steps:>9.2f}{r['peak_gib']:>10.2f}")
    extra = rows["control + camera f4"]["seconds"] / rows["control only"]["seconds"] - 1
    print(f"camera canvas at factor 4 costs {100 * extra:+.1f} % time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
