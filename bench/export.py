"""Export speed: seconds per frame at 768x512 for the default path (control canvas at full size)
vs. rendering the control at the reference resolution the control LoRA consumes (its
`reference_downscale_factor`, read from the LoRA file's safetensors metadata), for Cycles (CPU,
everywhere) and Workbench (when OpenGL/EGL works here).

A second table times every canvas kind (core.canvas_kinds) at the full size and at the LoRA's
reference size, side by side: gather (gather.canvas_samples: the renders, passes and keypoints
that kind needs) and canvas (the numpy drawing), per frame.

Run: .venv/bin/python bench/export.py [--frames 9] [--width 768 --height 512] [--engines cycles,workbench]
     [--lora FILE.safetensors | --reference-factor 2] [--factors 2,4] [--kinds depth,pose,...] [--quick]
Without --lora the tiny test model's control LoRA is used (built into .cache/test-model if missing).
Uses the example shot (walker + dolly zoom). A 9-frame warm-up export at the largest factor runs
first so the first measured row does not pay for kernel/shader compilation. --quick: a smoke run
(9 frames at 256x160, Cycles, reference factor 2 unless given).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def lora_reference_factor(path: Path) -> int:
    """`reference_downscale_factor` from an IC-LoRA's safetensors metadata (1 when absent)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        raw = (f.metadata() or {}).get("reference_downscale_factor", "1")
    factor = int(raw)
    if factor < 1:
        raise ValueError(f"{path.name}: reference_downscale_factor must be >= 1 (got {raw})")
    return factor


def default_control_lora() -> Path:
    from render_backend.engine.ltx2.test_model import make_test_model

    return make_test_model(REPO / ".cache" / "test-model") / "loras" / "control.safetensors"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9, help="8k+1 frames per export (default 9)")
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--lora", type=Path, default=None, help="control LoRA (default: the test model's)")
    parser.add_argument("--factors", default="2,4", help="extra factors to compare (besides 1 and the LoRA's)")
    parser.add_argument("--engines", default="cycles,workbench")
    parser.add_argument("--reference-factor", type=int, default=None,
                        help="use this reference_downscale_factor instead of reading a LoRA file")
    parser.add_argument("--kinds", default="depth,pose,edges,playblast,depth+pose", help="canvas kinds to time")
    parser.add_argument("--quick", action="store_true", help="smoke run: 9 frames at 256x160, Cycles only")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.width, args.height, args.engines, args.factors = 9, 256, 160, "cycles", ""
        args.reference_factor = args.reference_factor or 2

    if args.reference_factor is not None:
        lora, lora_factor = None, args.reference_factor
    else:
        lora = args.lora or default_control_lora()
        lora_factor = lora_reference_factor(lora)
    factors = sorted({1, lora_factor, *(int(f) for f in args.factors.split(",") if f.strip())})

    from blender_addon.cli import blender_output_silenced
    from blender_addon.example_scene import build_example_scene
    from blender_addon.gather.export import STAGE_RENDER, iter_export_shot
    from blender_addon.gather.gl_probe import workbench_available

    scene = build_example_scene(frames=args.frames, width=args.width, height=args.height)
    engines = [e for e in args.engines.split(",") if e != "workbench" or workbench_available()]
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp, blender_output_silenced():

        def export(engine: str, factor: int) -> tuple[float, float]:
            t0 = time.perf_counter()
            render_done = t0
            for _done, _total, stage in iter_export_shot(
                    scene, Path(tmp) / f"{engine}{factor}", frame_start=1, frame_end=args.frames,
                    targets=["Actors"], armatures=["Walker"], width=args.width, height=args.height,
                    canvas_size=(args.width // factor, args.height // factor), engine=engine):
                if stage == STAGE_RENDER:
                    render_done = time.perf_counter()
            return (render_done - t0) / args.frames, (time.perf_counter() - t0) / args.frames

        for engine in engines:
            export(engine, max(factors))  # warm-up
            for factor in factors:
                rows.append((engine, factor, args.width // factor, args.height // factor, *export(engine, factor)))
        kind_rows = time_kinds(scene, args, engines, factors)
    wall = time.perf_counter() - started

    source = f"control LoRA {lora.name}" if lora else "--reference-factor"
    print(f"\n{source}: reference_downscale_factor {lora_factor}" + (" (from its safetensors metadata)" if lora else ""))
    if not rows:
        print(f"no export ran: none of the engines {args.engines!r} is usable here; try --engines cycles")
        return 1
    base = {engine: spf for engine, factor, _, _, _, spf in rows if factor == 1}
    print(f"export of {args.frames} frames at {args.width}x{args.height}, seconds per frame "
          f"(render = depth+mask+camera+pose pass; total adds canvases and PNGs; speed-up vs factor 1):")
    print(f"{'engine':>9} {'factor':>6} {'control':>9} {'render s/f':>11} {'total s/f':>10} {'speed-up':>9}")
    for engine, factor, cw, ch, render_spf, total_spf in rows:
        mark = "  <- control LoRA" if factor == lora_factor else ""
        print(f"{engine:>9} {factor:>6} {f'{cw}x{ch}':>9} {render_spf:>11.3f} {total_spf:>10.3f} "
              f"{base[engine] / total_spf:>8.2f}x{mark}")
    if "workbench" in args.engines and "workbench" not in engines:
        print("(workbench skipped: no OpenGL/EGL context here)")
    print_kinds(kind_rows, args, lora_factor)
    print(f"wall time {wall:.1f} s for both tables")
    return 0


def time_kinds(scene, args, engines: list[str], factors: list[int]) -> list[tuple]:
    """(kind, engine used, [(factor, gather s/frame, canvas s/frame) per factor]) rows."""
    from blender_addon.core.canvas_kinds import CanvasOptions, clip_canvases
    from blender_addon.gather.canvas_samples import iter_clip_samples, scene_canvas_options

    frames = range(1, args.frames + 1)
    rows = []
    for engine in engines:
        for kind in args.kinds.split(","):
            # What actually renders (gather.canvas_samples): edges always on Cycles, playblast on either.
            used = "cycles" if kind == "edges" else engine
            if (kind, used) in [(k, u) for k, u, _ in rows]:
                continue
            options: CanvasOptions = scene_canvas_options(scene)
            cells = []
            for f in factors:
                t0 = time.perf_counter()
                samples = list(iter_clip_samples(scene, frames, kind=kind, width=args.width // f,
                                                 height=args.height // f, targets=["Actors"], armatures=["Walker"],
                                                 options=options, engine=engine, warn=lambda message: None))
                t1 = time.perf_counter()
                clip_canvases(samples, kind, options)
                t2 = time.perf_counter()
                cells.append((f, (t1 - t0) / args.frames, (t2 - t1) / args.frames))
            rows.append((kind, used, cells))
    return rows


def print_kinds(rows: list[tuple], args, lora_factor: int) -> None:
    print(f"\ncanvas kinds, {args.frames} frames, seconds per frame (gather = renders + passes + keypoints, "
          f"canvas = numpy drawing; speed-up of the total vs {args.width}x{args.height}; * = the control LoRA's size):")
    head = ""
    for f, _, _ in rows[0][2] if rows else []:
        size = f"{args.width // f}x{args.height // f}{'*' if f == lora_factor else ''}"
        head += f" | {size + ' gather':>16} {'canvas':>7} {'total':>7} {'speed-up':>8}"
    print(f"{'kind':>10} {'engine':>9}{head}")
    for kind, used, cells in rows:
        base = cells[0][1] + cells[0][2]
        line = "".join(f" | {g:>16.3f} {c:>7.3f} {g + c:>7.3f} {base / (g + c):>7.2f}x" for _, g, c in cells)
        print(f"{kind:>10} {used:>9}{line}")


if __name__ == "__main__":
    sys.exit(main())
