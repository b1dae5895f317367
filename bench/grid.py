"""Small-to-large grid: generation time with the camera canvas at factor 1 vs factor 4, side by side.

One run, one model: a random LTX-2 with a moderate transformer (default 4 layers x 256 wide; the
tiny test model is too small for attention to matter), the control canvas at factor 1 in both
rows, the trajectory canvas at factor 1 (a full-size canvas) or 4 (the published setting).
Each row: 1 warm-up render, then the median of --repeats renders; denoising seconds come from
RenderResult.info["timings"].

Run: .venv/bin/python bench/grid.py [--frames 25] [--width 512 --height 384] [--steps 2]
     [--layers 4 --heads 4 --head-dim 64] [--repeats 2] [--device cpu|cuda] [--quick]
Width and height must be multiples of 128 (a factor-4 canvas must be a multiple of 32).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machines: 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 9 frames 128x128, 1 step, 1 small layer")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.width, args.height, args.steps = 9, 128, 128, 1
        args.layers, args.heads, args.head_dim, args.repeats = 1, 2, 32, 1

    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file

    from render_backend.engine.ltx2.engine import LTX2Engine
    from render_backend.engine.ltx2.test_model import build_tiny_pipeline, save_model
    from render_backend.engine.request import CameraFrame, CameraRequest, RenderRequest

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        size = {"num_layers": args.layers, "num_attention_heads": args.heads, "attention_head_dim": args.head_dim}
        model = save_model(build_tiny_pipeline(transformer=size), Path(tmp) / "grid-model")
        # Same trajectory LoRA weights, metadata saying factor 1: only the canvas size differs.
        lora = model / "loras" / "camera_trajectory.safetensors"
        save_file(load_file(str(lora)), str(model / "loras" / "camera_trajectory_full.safetensors"),
                  metadata={"reference_downscale_factor": "1", "ltx_blender_kind": "camera_trajectory"})
        engine = LTX2Engine(str(model), device=args.device)
        engine.load()

        rng = np.random.default_rng(0)
        control = rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8)
        track = []
        for i in range(args.frames):  # a 1 m dolly in
            w2c = np.eye(4)
            w2c[2, 3] = -i / (args.frames - 1)
            track.append(CameraFrame(fx=args.width * 0.8, fy=args.width * 0.8, cx=args.width / 2,
                                     cy=args.height / 2, world_to_camera=w2c))

        rows = {}
        for label, lora_name in (("factor 1", "camera_trajectory_full"), ("factor 4", "camera_trajectory")):
            req = RenderRequest(prompt="a man walks on the street", width=args.width, height=args.height,
                                num_frames=args.frames, num_inference_steps=args.steps, control_frames=control,
                                control_lora="control",
                                camera=CameraRequest(mode="trajectory", trajectory_lora=lora_name, frames=track))
            engine.render(req)  # warm-up
            runs = [engine.render(req) for _ in range(args.repeats)]
            tokens = {r["name"]: r["tokens"] for r in runs[0].info["references"]}
            rows[label] = {
                "denoise_s": statistics.median(r.info["timings"]["denoise_s"] for r in runs),
                "total_s": statistics.median(r.info["timings"]["total_s"] for r in runs),
                "sequence": runs[0].info["target_tokens"] + sum(tokens.values()),
                "camera_tokens": tokens["camera_trajectory"],
            }

    print(f"device {engine.device}, transformer {args.layers} layers x {args.heads * args.head_dim} wide, "
          f"{args.frames} frames {args.width}x{args.height}, {args.steps} steps, control canvas at factor 1")
    print(f"{'camera canvas':<14}{'camera tokens':>14}{'video tokens':>14}{'denoise s':>12}{'total s':>10}")
    for label, row in rows.items():
        print(f"{label:<14}{row['camera_tokens']:>14}{row['sequence']:>14}{row['denoise_s']:>12.3f}"
              f"{row['total_s']:>10.3f}")
    ratio = rows["factor 1"]["denoise_s"] / rows["factor 4"]["denoise_s"]
    print(f"denoising time factor 1 / factor 4: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
