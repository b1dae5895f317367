"""The cost of continuity: N windows chained (each held to the previous one's last frames, its tail
handed on as PNGs, the take assembled with cross-fades) vs the same N windows rendered independently
(fresh noise each, no tail, no assembly), side by side in one run, interleaved.

What continuity adds: a VAE encode of the condition frames per window, the held tokens' bookkeeping
each step, the tail zip (lossless PNGs of the overlap) and the assembly (decode nothing here: the
arrays are in memory; the server also decodes the windows' mp4s). The denoising itself is the same.

Run: .venv/bin/python bench/continuity.py [--windows 3] [--frames 25] [--overlap 9] [--width 256 --height 160]
     [--steps 4] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--overlap", type=int, default=9)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=160)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="model folder (default: the tiny test model in ./.cache/test-model)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 windows of 17 frames at 64x64, 1 step")
    args = parser.parse_args()
    if args.quick:
        args.windows, args.frames, args.width, args.height, args.steps, args.repeats = 2, 17, 64, 64, 1, 1

    import torch

    from render_backend.engine.ltx2.engine import LTX2Engine
    from render_backend.engine.ltx2.test_model import make_test_model
    from render_backend.engine.request import FrameCondition, RenderRequest
    from render_backend.takes import WindowTake, assemble, write_tail_zip

    torch.set_num_threads(1)
    model = Path(args.model) if args.model else make_test_model(Path(".cache/test-model"))
    engine = LTX2Engine(str(model), upsampler="none")
    engine.load()

    def request(seed: int, condition=None) -> RenderRequest:
        return RenderRequest(prompt="a man walks on the street", width=args.width, height=args.height,
                             num_frames=args.frames, seed=seed, num_inference_steps=args.steps,
                             conditions=[FrameCondition(frames=condition)] if condition is not None else [])

    def independent() -> float:
        t0 = time.perf_counter()
        for k in range(args.windows):
            engine.render(request(k))
        return time.perf_counter() - t0

    def chained(scratch: Path) -> float:
        t0 = time.perf_counter()
        takes, tail = [], None
        for k in range(args.windows):
            result = engine.render(request(k, tail))
            if k + 1 < args.windows:  # what the server hands on: the overlap as lossless PNGs + audio
                write_tail_zip(scratch / f"tail{k}.zip", result.video, result.audio, result.audio_sample_rate,
                               result.fps, args.overlap)
                tail = result.video[-args.overlap:]
            takes.append(WindowTake(result.video, result.audio, args.overlap if k else 0, args.frames))
        video, _ = assemble(takes, result.fps, result.audio_sample_rate)
        assert len(video) == args.windows * args.frames - (args.windows - 1) * args.overlap
        return time.perf_counter() - t0

    times = {"independent": [], "chained": []}
    with tempfile.TemporaryDirectory() as tmp:
        chained(Path(tmp))  # warm-up (first calls allocate)
        for _ in range(args.repeats):  # interleaved: the noisy machine hits both alike
            times["independent"].append(independent())
            times["chained"].append(chained(Path(tmp)))
    med = {k: statistics.median(v) for k, v in times.items()}
    frames = args.windows * args.frames - (args.windows - 1) * args.overlap
    print(f"{args.windows} windows of {args.frames} frames at {args.width}x{args.height}, {args.steps} steps, "
          f"overlap {args.overlap} ({frames} frames of take); median of {args.repeats}")
    print(f"median independent windows:            {med['independent']:8.3f} s")
    print(f"median chained (held, tail, assembly): {med['chained']:8.3f} s")
    print(f"ratio chained / independent: {med['chained'] / med['independent']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
