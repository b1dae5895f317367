"""Server overhead: one shot end to end through gRPC on loopback vs the same request on Engine.render.

One process, one loaded engine (the tiny test model in ./.cache/test-model, made if missing; or,
with --layers, a random LTX-2 with a bigger transformer so that generation takes seconds), shared by a real BackgroundServer and by the direct calls; the same manifest and PNG frames both
ways (the direct request is built from them exactly as the server builds it). Repetitions are
interleaved (direct, server, server, direct, ...) after one warm-up of each, so drifts in machine
load hit both sides alike.

- direct: Engine.render(req) -> arrays in memory.
- end to end: SubmitShot (upload) -> queue -> the same render -> mp4 + wav + sidecar written ->
  WatchJob until DONE -> FetchResult of every artifact (sha256 checked).
The target is end to end / direct <= 1.05, with a shot big enough that generation dominates. The
mp4/wav encoding the server does is part of the overhead; a second line compares against direct +
the same encoding, like for like.

Run: .venv/bin/python bench/server_overhead.py [--frames 25 --width 128 --height 128 --steps 8]
     [--repeats 5] [--threads 1] [--model DIR | --layers 8 --heads 8 --head-dim 64] [--quick]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET = 1.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=11, help="interleaved repeats (medians)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machines: 1)")
    parser.add_argument("--model", default=None, help="model folder (default: the tiny test model)")
    parser.add_argument("--layers", type=int, default=0, help="> 0: a random model with this many layers")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="smoke run: 9 frames 64x64, 2 steps, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.width, args.height, args.steps, args.repeats = 9, 64, 64, 2, 1

    import numpy as np
    import torch
    from PIL import Image

    from render_backend import media
    from render_backend.client import ServiceClient
    from render_backend.demo import synthetic_shot
    from render_backend.engine.ltx2.engine import LTX2Engine
    from render_backend.engine.ltx2.test_model import build_tiny_pipeline, make_test_model, save_model
    from render_backend.proto import render_pb2 as pb
    from render_backend.server.app import BackgroundServer
    from render_backend.server.config import ServerConfig
    from render_backend.server.convert import manifest_to_request

    torch.set_num_threads(args.threads)
    scratch = tempfile.TemporaryDirectory()
    if args.layers:
        size = {"num_layers": args.layers, "num_attention_heads": args.heads, "attention_head_dim": args.head_dim}
        model = save_model(build_tiny_pipeline(transformer=size), Path(scratch.name) / "bench-model")
    else:
        model = Path(args.model) if args.model else make_test_model(Path(".cache/test-model"))
    engine = LTX2Engine(str(model), upsampler="none")  # one stage, as the server under test
    engine.load()
    manifest, controls, masks = synthetic_shot(args.frames, args.width, args.height, steps=args.steps)

    def decode(pngs: list[bytes], mask: bool) -> list[np.ndarray]:
        images = [Image.open(io.BytesIO(b)) for b in pngs]
        return [np.asarray(i.convert("L")) >= 128 if mask else np.asarray(i.convert("RGB")) for i in images]

    # The request exactly as the server builds it from the same manifest and PNGs (one control).
    req = manifest_to_request(manifest, [np.stack(decode(controls, False))], [decode(masks, True) or None])

    with scratch:
        tmp = Path(scratch.name)
        cfg = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp / "data")
        with BackgroundServer(engine, cfg) as server, ServiceClient(server.address) as client:
            while client.health() != "SERVING":
                time.sleep(0.05)

            def direct() -> float:
                t0 = time.perf_counter()
                engine.render(req)
                return time.perf_counter() - t0

            def direct_and_encode() -> float:
                t0 = time.perf_counter()
                result = engine.render(req)
                media.write_result(tmp / "direct", "shot", result.video, result.fps, result.audio,
                                   result.audio_sample_rate, sidecar={"engine": result.info})
                return time.perf_counter() - t0

            def end_to_end() -> float:
                manifest.request_id = uuid.uuid4().hex  # a new job each time, not a deduplicated one
                t0 = time.perf_counter()
                job = client.submit(manifest, controls, masks)
                final = client.wait(job.job_id, timeout=600)
                if final.state != pb.JOB_STATE_DONE:
                    raise SystemExit(f"job {job.job_id} ended in state {final.state}: {final.message}")
                for a in final.artifacts:
                    client.fetch(job.job_id, a.kind, tmp / "fetched" / a.filename)
                return time.perf_counter() - t0

            runs = {"direct": [], "direct+encode": [], "server": []}
            for fn in (direct, end_to_end):  # warm-up: first-call costs out of the medians
                fn()
            for i in range(args.repeats):
                order = [("direct", direct), ("server", end_to_end), ("direct+encode", direct_and_encode)]
                for name, fn in (order if i % 2 == 0 else order[::-1]):
                    runs[name].append(fn())

    med = {name: statistics.median(times) for name, times in runs.items()}
    ratio, like = med["server"] / med["direct"], med["server"] / med["direct+encode"]
    width = engine.pipe.transformer.config.num_attention_heads * engine.pipe.transformer.config.attention_head_dim
    print(f"model {'tiny test model' if not args.layers and not args.model else model.name}: "
          f"{engine.pipe.transformer.config.num_layers} layers x {width} wide; device {engine.device}, "
          f"{args.threads} thread(s), {args.frames} frames {args.width}x{args.height}, "
          f"{args.steps} steps, control canvas + mask + dolly-in camera, {args.repeats} interleaved repeats")
    print(f"median direct Engine.render:           {med['direct']:8.3f} s")
    print(f"median direct render + mp4/wav encode: {med['direct+encode']:8.3f} s")
    print(f"median end to end through gRPC:        {med['server']:8.3f} s  (submit, queue, render, encode, fetch)")
    print(f"ratio end to end / direct render: {ratio:.3f} (target <= {TARGET}: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")
    print(f"ratio end to end / direct render + encode: {like:.3f} (like for like: both write the mp4 + wav)")
    fixed = med["server"] - med["direct+encode"]
    if fixed > 0:
        print(f"fixed server cost per job: {fixed:.3f} s (upload + PNG checks, SQLite, queue, events, fetch); "
              f"the ratio meets the target once a render takes {fixed / (TARGET - 1):.1f} s or more")
    else:
        print(f"fixed server cost per job: none measurable ({fixed:+.3f} s, within this machine's noise)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
