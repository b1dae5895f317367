"""Reference-strength attention: the dense bias + SDPA against FlexAttention (score_mod), time and peak memory.

One LTX-2 video self-attention call (32 heads x 128) over [target | one factor-1 canvas] with a per-token
strength map (0.8, every 10th reference token at 0), the two kernels of render_backend/engine/ltx2/attention.py.
Full size (the default on CUDA): 121 frames at 768x512 -> N = 6144 target + R = 6144 reference tokens, bf16,
flex compiled. --quick (or no CUDA): 256 + 256 tokens, 4 heads x 64, fp32, flex uncompiled (on the CPU it
materialises the scores, so the CPU ratio says nothing about the GPU).

Run: .venv/bin/python bench/attention.py          (CUDA: full size)
     .venv/bin/python bench/attention.py --quick  (small, on any device)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, repeats: int, sync) -> tuple[float, object]:
    """(median seconds of `repeats` calls, the last result)."""
    times, out = [], None
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (any device)")
    parser.add_argument("--target-tokens", type=int, default=6144, help="N (121 frames at 768x512: 6144)")
    parser.add_argument("--reference-tokens", type=int, default=6144, help="R (a factor-1 canvas: = N)")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from render_backend.engine.ltx2.attention import (
        build_video_self_bias,
        build_video_self_tokens,
        flex_reference_attention,
    )

    cuda = torch.cuda.is_available()
    if args.quick or not cuda:
        if not args.quick:
            print("no CUDA device: running at --quick size (full size needs a GPU)")
        args.target_tokens, args.reference_tokens, args.heads, args.head_dim = 256, 256, 4, 64
        torch.set_num_threads(1)
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    n, r, total = args.target_tokens, args.reference_tokens, args.target_tokens + args.reference_tokens
    strength = torch.full((r,), 0.8)
    strength[::10] = 0.0
    gen = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn(1, args.heads, total, args.head_dim, generator=gen, device=device, dtype=dtype)
               for _ in range(3))  # (B, H, T, D)
    print(f"{'cuda ' + torch.cuda.get_device_name(device) if cuda else 'cpu'}: {n} target + {r} reference tokens, "
          f"{args.heads} heads x {args.head_dim}, {str(dtype).replace('torch.', '')}, strength map 0.8 with zeros")

    def peak_start():
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            return torch.cuda.memory_allocated(device)
        return 0

    def peak_mib(base) -> float:
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20 if cuda else 0.0

    rows = {}
    # Dense: the (T, T) bias, then SDPA with it (what diffusers' native backend calls).
    base = peak_start()
    setup, bias = timed(lambda: build_video_self_bias(n, [strength], [True], dtype, device), 1, sync)
    F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # warm-up
    call, dense_out = timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias), args.repeats, sync)
    rows["dense"] = (bias.numel() * bias.element_size() / 2**20, setup, call, peak_mib(base), 0.0)
    bias = None  # freed before the flex run
    # Flex: O(T) per-token tensors, the bias computed per score in score_mod.
    base = peak_start()
    setup, tokens = timed(lambda: build_video_self_tokens(n, [strength], [True], dtype, device), 1, sync)
    first, _ = timed(lambda: flex_reference_attention(q, k, v, tokens, compiled=cuda), 1, sync)  # compiles on CUDA
    call, flex_out = timed(lambda: flex_reference_attention(q, k, v, tokens, compiled=cuda), args.repeats, sync)
    token_mib = (tokens.log_m.numel() * 4 + tokens.block.numel() * 4) / 2**20
    rows["flex"] = (token_mib, setup, call, peak_mib(base), first)

    print(f"{'kernel':<8}{'bias MiB':>10}{'setup ms':>10}{'call ms':>10}{'peak MiB':>10}{'first call s':>14}")
    for name, (mib, setup, call, peak, first) in rows.items():
        peak_text = f"{peak:.1f}" if cuda else "n/a"
        print(f"{name:<8}{mib:>10.3f}{1e3 * setup:>10.2f}{1e3 * call:>10.2f}{peak_text:>10}{first:>14.2f}")
    diff = float((flex_out.float() - dense_out.float()).abs().max() / dense_out.float().abs().max())
    print(f"max relative difference flex vs dense: {diff:.2e}")
    ratio_t = rows["flex"][2] / rows["dense"][2]
    ratio_m = f"{rows['flex'][3] / rows['dense'][3]:.2f}x" if cuda else "n/a on CPU"
    print(f"flex / dense call time: {ratio_t:.2f}x, peak memory: {ratio_m}"
          + ("" if cuda else " (uncompiled flex on CPU: not a GPU prediction)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
