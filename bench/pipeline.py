"""Waste between the button and the strips (issue 14 "Fast previews"): each change, before vs after,
side by side in one run.

1. exr: the per-frame scratch EXR the depth/mask and playblast renders write and read back (example shot,
   Workbench when OpenGL/EGL works, else Cycles): ZIP (before) vs NONE (after), ms per frame for
   render + write and for reading it (core.exr), and the file size.
2. upload: the server's check of each uploaded PNG (realistic depth + pose canvases, encoded as the
   add-on encodes them): verify + full decode (before) vs header + verify() (after,
   server/upload.verify_png); the job decodes each frame once either way.
3. vae: the reference encode through the tiny test model's VAE (fp32 on CPU, as the tests run), one
   subprocess per run so peak RSS (resource.getrusage maxrss) is the encode's own: the whole clip
   converted to fp32 pixels at once (before) vs a few frames at a time straight into the VAE dtype
   (after, references.frames_to_pixels), and diffusers' spatial tiling (--vae-tiling) for comparison,
   with the latent's difference to the untiled one.
4. mp4: libx264 crf 18 at preset medium (before) vs the results' preset (after, media.RESULT_PRESET) and
   the faster ones, on a panning textured clip with grain: seconds, bytes, PSNR against the source.

Run: .venv/bin/python bench/pipeline.py [--frames 25 --width 384 --height 256] [--full] [--repeats 3]
     [--parts exr,upload,vae,mp4] [--exr-engine auto|cycles|workbench] [--quick]
--full: 121 frames at 768x512 (the issue's numbers; several minutes on 2 cores). --quick: a smoke run.
Timings are medians of interleaved repeats; the machine is shared, so read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

UPLOAD_TARGET = 5.0  # the issue's target: upload checks at least 5x faster


# ---------------------------------------------------------------------------------------------- 1. EXR
def bench_exr(args) -> None:
    import bpy

    from blender_addon.cli import blender_output_silenced
    from blender_addon.core.exr import read_exr
    from blender_addon.example_scene import build_example_scene
    from blender_addon.gather.depth_mask import DepthMaskRenderer
    from blender_addon.gather.gl_probe import workbench_available

    engine = args.exr_engine
    if engine == "auto":
        engine = "workbench" if workbench_available() else "cycles"
    frames = min(args.frames, 9 if engine == "cycles" else args.frames)  # Cycles is slow: a few frames tell
    scene = build_example_scene(frames=frames, width=args.width, height=args.height)
    targets = set(bpy.data.collections["Actors"].all_objects)
    codecs = ("ZIP", "NONE")
    times: dict[str, tuple[list, list, list]] = {c: ([], [], []) for c in codecs}
    with blender_output_silenced(), DepthMaskRenderer(scene, targets, args.width, args.height, engine=engine) as r:
        path = Path(scene.render.filepath)
        scene.frame_set(1)
        bpy.ops.render.render(write_still=True, scene=scene.name, layer=r.view_layer.name)  # warm-up
        for rep in range(args.repeats):
            for f in range(1, frames + 1):
                scene.frame_set(f)
                for codec in codecs if (f + rep) % 2 else codecs[::-1]:  # alternate who goes first
                    scene.render.image_settings.exr_codec = codec
                    path.unlink(missing_ok=True)
                    t0 = time.perf_counter()
                    bpy.ops.render.render(write_still=True, scene=scene.name, layer=r.view_layer.name)
                    t1 = time.perf_counter()
                    read_exr(path)
                    t2 = time.perf_counter()
                    times[codec][0].append(t1 - t0)
                    times[codec][1].append(t2 - t1)
                    times[codec][2].append(path.stat().st_size)
    print(f"\n1. EXR scratch file ({engine} depth + mask, {frames} frames at {args.width}x{args.height}, "
          f"{args.repeats} repeats), ms per frame, medians:")
    print(f"{'codec':>8} {'render+write':>13} {'read':>8} {'KiB':>8}")
    med = {c: (statistics.median(w) * 1e3, statistics.median(rd) * 1e3, statistics.median(s) / 1024)
           for c, (w, rd, s) in times.items()}
    for codec in codecs:
        w, rd, kib = med[codec]
        print(f"{codec:>8} {w:>13.1f} {rd:>8.1f} {kib:>8.0f}" + ("   <- before" if codec == "ZIP" else "   <- after"))
    print(f"EXR NONE vs ZIP: render+write {med['ZIP'][0] / med['NONE'][0]:.2f}x, read "
          f"{med['ZIP'][1] / med['NONE'][1]:.2f}x, both {sum(med['ZIP'][:2]) / sum(med['NONE'][:2]):.2f}x")


# ------------------------------------------------------------------------------------------- 2. upload
def realistic_canvas(i: int, frames: int, width: int, height: int):
    """A depth + pose canvas like the exporter's: inverse-depth floor and walls (smooth gradients), a box
    and a walker silhouette with their own depth, pose limbs in OpenPose colours; uint8 (H, W, 3)."""
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = i / max(frames - 1, 1)
    horizon = 0.42 * height
    floor = np.clip((yy - horizon) / (height - horizon), 0, 1) * 0.8 + 0.1  # near = bright
    wall = 0.1 + 0.05 * np.sin(xx / width * 3.0 + t)  # far wall, gently curved
    depth = np.where(yy > horizon, floor, wall)
    box = (np.abs(xx - 0.72 * width) < 0.1 * width) & (np.abs(yy - 0.62 * height) < 0.12 * height)
    depth = np.where(box, 0.45 + 0.1 * (yy / height), depth)
    cx, cy = (0.2 + 0.5 * t) * width, 0.58 * height
    body = ((xx - cx) / (0.05 * width)) ** 2 + ((yy - cy) / (0.22 * height)) ** 2 < 1
    depth = np.where(body, 0.7 - 0.05 * (yy - cy) / height, depth)
    canvas = np.repeat((depth * 255)[..., None], 3, axis=2)
    for k, colour in enumerate([(255, 0, 0), (255, 170, 0), (0, 255, 0), (0, 170, 255), (170, 0, 255)]):
        a = 2 * math.pi * (k / 5 + t)
        for s in np.linspace(0, 1, 2 * max(width, height) // 10):  # a thick limb from the body centre
            px, py = int(cx + s * 0.08 * width * math.cos(a)), int(cy + s * 0.15 * height * math.sin(a))
            canvas[max(py - 2, 0):py + 2, max(px - 2, 0):px + 2] = colour
    return canvas.astype(np.uint8)


def bench_upload(args) -> None:
    from PIL import Image

    from blender_addon.core.png import encode_png
    from render_backend.server.upload import decode_png, verify_png

    # Two kinds of canvas: depth + pose (smooth, small PNGs) and a textured playblast-like frame with grain
    # (large PNGs: the most bytes a CRC pass and a decode can meet).
    clips = {"depth+pose": [realistic_canvas(i, args.frames, args.width, args.height) for i in range(args.frames)],
             "textured": list(textured_clip(args.frames, args.width, args.height))}
    pngs = {kind: [encode_png(frame) for frame in frames] for kind, frames in clips.items()}

    def before(png: bytes) -> None:  # the check as it was: verify, then decode every pixel
        with Image.open(io.BytesIO(png)) as img:
            img.verify()
        with Image.open(io.BytesIO(png)) as img:
            img.load()

    def after(png: bytes) -> None:
        verify_png(png)

    def job_decode(png: bytes) -> None:  # the job's one decode (load_controls), the same before and after
        decode_png(io.BytesIO(png), "RGB")

    fns = {"before": before, "after": after, "job": job_decode}
    labels = {"before": "verify + full decode", "after": "header + verify()   ", "job": "one decode (both)   "}
    n = args.frames
    repeats = max(args.repeats, 3)
    print(f"\n2. upload check of {n} PNG frames at {args.width}x{args.height}, medians of {repeats} interleaved "
          "passes (job = the job's one decode, the same before and after):")
    ratios = {}
    for kind, frames in pngs.items():
        runs: dict[str, list[float]] = {name: [] for name in fns}
        for name in fns:  # warm-up: imports, allocator
            fns[name](frames[0])
        for rep in range(repeats):
            for name in (("before", "after", "job") if rep % 2 else ("after", "before", "job")):
                t0 = time.perf_counter()
                for png in frames:
                    fns[name](png)
                runs[name].append(time.perf_counter() - t0)
        kib = statistics.median(len(p) for p in frames) / 1024
        for name in fns:
            med = statistics.median(runs[name])
            print(f"{kind:>10} {kib:6.0f} KiB  {name:<6} {labels[name]} {med / n * 1e3:8.2f} ms/frame "
                  f"{med * 1e3:9.1f} ms for {n} frames")
        ratios[kind] = statistics.median(runs["before"]) / statistics.median(runs["after"])
    job_decode_memory(args, pngs["textured"])
    worst = min(ratios.values())
    print("upload check speed-up: " + ", ".join(f"{kind} {r:.2f}x" for kind, r in ratios.items())
          + f" (target >= {UPLOAD_TARGET:g}x: {'met' if worst >= UPLOAD_TARGET else 'NOT met'})")


def job_decode_memory(args, pngs: list[bytes]) -> None:
    """Peak memory (tracemalloc sees numpy) of the job's decode of one canvas stream: a list of frames then
    np.stack (before) vs frames decoded into one preallocated array (after, upload.load_controls)."""
    import tracemalloc

    import numpy as np

    from render_backend.server import upload

    with tempfile.TemporaryDirectory(prefix="bench_job_") as tmp:
        for k, png in enumerate(pngs):
            path = upload.frame_path(Path(tmp), 0, "canvas", k)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        peaks = {}
        for name in ("before", "after"):
            tracemalloc.start()
            if name == "before":
                frames = np.stack([upload.decode_png(upload.frame_path(Path(tmp), 0, "canvas", k), "RGB")
                                   for k in range(len(pngs))])
            else:
                frames = upload._decode_stream(Path(tmp), 0, "canvas", len(pngs), args.width, args.height)
            peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            del frames
    print(f"job decode of {len(pngs)} frames, peak MiB: before (list + np.stack) {peaks['before']:.0f}, "
          f"after (one array) {peaks['after']:.0f}")


# ---------------------------------------------------------------------------------------------- 3. VAE
def current_rss_kib() -> float:
    """Resident set size now, KiB (Linux /proc; elsewhere the peak so far, an over-estimate of the base)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def vae_child(mode: str, frames: int, width: int, height: int, out: str) -> None:
    """One encode in this (fresh) process; prints a JSON line with seconds and peak RSS."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    from render_backend.engine.ltx2.references import frames_to_pixels
    from render_backend.engine.ltx2.tiny_components import video_vae

    vae = video_vae("2.0").eval()
    clip = np.stack([realistic_canvas(i, frames, width, height) for i in range(frames)])
    if mode == "tiled":
        tile = max(64, int(width * 2 / 3) // 32 * 32)  # diffusers' 512 / 448 at 768 px, scaled below it
        vae.enable_tiling(tile_sample_min_height=tile, tile_sample_min_width=tile,
                          tile_sample_stride_height=max(32, tile * 7 // 8 // 32 * 32),
                          tile_sample_stride_width=max(32, tile * 7 // 8 // 32 * 32))
    base = current_rss_kib()  # not ru_maxrss: making the clip may have peaked above what is held now
    t0 = time.perf_counter()
    with torch.no_grad():
        if mode == "before":  # the conversion as it was: the whole clip in fp32 at once, then cast
            video = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float()
            video = F.interpolate(video, size=(height, width), mode="bilinear", align_corners=False) \
                if video.shape[-2:] != (height, width) else video
            pixels = (video / 127.5 - 1.0).permute(1, 0, 2, 3).unsqueeze(0).to(dtype=vae.dtype)
            del video
        else:
            pixels = frames_to_pixels(clip, width, height, "cpu", vae.dtype)
        pixels_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        latent = vae.encode(pixels).latent_dist.mode()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.save(latent, out)
    print(json.dumps({"mode": mode, "seconds": seconds, "peak_mib": (peak - base) / 1024,
                      "pixels_mib": (pixels_peak - base) / 1024}))


def bench_vae(args) -> None:
    import torch

    modes = ("before", "after", "tiled")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench_vae_") as tmp:
        for rep in range(args.vae_repeats):
            for mode in modes if rep % 2 == 0 else modes[::-1]:
                proc = subprocess.run([sys.executable, __file__, "--vae-child", mode, str(args.frames),
                                       str(args.width), str(args.height), f"{tmp}/{mode}.pt"],
                                      capture_output=True, text=True, env=env, timeout=1800)
                if proc.returncode:
                    raise SystemExit(f"VAE child {mode} failed:\n{proc.stderr[-3000:]}")
                runs[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        latents = {m: torch.load(f"{tmp}/{m}.pt") for m in modes}
    ref = latents["before"]
    print(f"\n3. VAE reference encode (tiny test model's VAE, fp32 on CPU, 1 thread, {args.frames} frames at "
          f"{args.width}x{args.height}), medians of {args.vae_repeats} runs, one process each:")
    print("(pixels = peak RSS while the canvas becomes VAE input; encode = peak RSS of the whole encode, the\n"
          " encoder's own full-size intermediates included)")
    print(f"{'variant':>8} {'seconds':>8} {'pixels MiB':>11} {'encode MiB':>11} {'max|diff|':>10} {'rel diff':>9}")
    notes = {"before": "<- one-shot fp32 pixels", "after": "<- chunked pixels (default)",
             "tiled": "<- diffusers' spatial tiling (--vae-tiling, opt-in)"}
    for mode in modes:
        diff = (latents[mode] - ref).abs().max().item()
        rel = ((latents[mode] - ref).norm() / ref.norm()).item()
        sec = statistics.median(r["seconds"] for r in runs[mode])
        peak = statistics.median(r["peak_mib"] for r in runs[mode])
        pixels = statistics.median(r.get("pixels_mib", float("nan")) for r in runs[mode])
        print(f"{mode:>8} {sec:>8.2f} {pixels:>11.0f} {peak:>11.0f} {diff:>10.2e} {rel:>9.2e}   {notes[mode]}")


# ---------------------------------------------------------------------------------------------- 4. mp4
def textured_clip(frames: int, width: int, height: int):
    """A panning smooth texture with a moving disc and mild grain: uint8 (F, H, W, 3)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    cells = rng.integers(0, 256, (height // 16 + 8, width // 16 + 16, 3), dtype=np.uint8)
    tex = np.asarray(Image.fromarray(cells).resize((cells.shape[1] * 16, cells.shape[0] * 16), Image.BICUBIC),
                     dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        dx = int(i * 1.3 * width / 768) % (tex.shape[1] - width)
        frame = tex[:height, dx:dx + width].copy()
        cx, cy = width * (0.2 + 0.6 * i / max(frames, 1)), height * (0.5 + 0.08 * math.sin(i / 10))
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (height / 6) ** 2
        frame[disc] = frame[disc] * 0.3 + np.array([200.0, 80.0, 60.0]) * 0.7
        frame += rng.normal(0, 2.0, frame.shape)
        out[i] = np.clip(frame, 0, 255)
    return out


def bench_mp4(args) -> None:
    import av
    import numpy as np

    from render_backend import media

    video = textured_clip(args.frames, args.width, args.height)
    settings = [("medium", 18), (media.RESULT_PRESET, media.RESULT_CRF)]
    settings += [(p, 18) for p in ("superfast", "ultrafast") if (p, 18) not in settings]
    seconds: dict[tuple, list[float]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory(prefix="bench_mp4_") as tmp:
        for rep in range(args.repeats):
            for s in settings if rep % 2 == 0 else settings[::-1]:
                t0 = time.perf_counter()
                media.write_mp4(f"{tmp}/{s[0]}.mp4", video, 24.0, crf=s[1], preset=s[0])
                seconds[s].append(time.perf_counter() - t0)
        rows = []
        for s in settings:
            path = f"{tmp}/{s[0]}.mp4"
            with av.open(path) as c:
                decoded = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
            mse = float(np.mean((decoded.astype(np.float32) - video) ** 2))
            rows.append((s, statistics.median(seconds[s]), os.path.getsize(path), 10 * math.log10(255 ** 2 / mse)))
    print(f"\n4. mp4 encode (libx264 yuv420p, {args.frames} frames at {args.width}x{args.height}, no audio), "
          f"medians of {args.repeats}:")
    print(f"{'preset':>10} {'crf':>4} {'seconds':>8} {'bytes':>10} {'PSNR dB':>8}")
    for (preset, crf), sec, size, psnr in rows:
        mark = "   <- before" if preset == "medium" else "   <- after (results)" if preset == media.RESULT_PRESET else ""
        print(f"{preset:>10} {crf:>4} {sec:>8.3f} {size:>10} {psnr:>8.2f}{mark}")
    old, new = rows[0], rows[1]
    print(f"mp4 {new[0][0]} vs medium: {old[1] / new[1]:.2f}x faster, {new[2] / old[2]:.2f}x the bytes, "
          f"PSNR {new[3] - old[3]:+.2f} dB")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--vae-child":
        mode, frames, width, height, out = sys.argv[2:7]
        vae_child(mode, int(frames), int(width), int(height), out)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--full", action="store_true", help="121 frames at 768x512 (the issue's size)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (medians)")
    parser.add_argument("--vae-repeats", type=int, default=3, help="runs per VAE variant (a process each)")
    parser.add_argument("--parts", default="exr,upload,vae,mp4")
    parser.add_argument("--exr-engine", default="auto", choices=("auto", "cycles", "workbench"))
    parser.add_argument("--quick", action="store_true", help="smoke run: 9 frames at 128x96, Cycles, 1 repeat")
    args = parser.parse_args()
    if args.full:
        args.frames, args.width, args.height = 121, 768, 512
    if args.quick:
        args.frames, args.width, args.height, args.repeats, args.vae_repeats = 9, 128, 96, 1, 1
        args.exr_engine = "cycles" if args.exr_engine == "auto" else args.exr_engine
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - {"exr", "upload", "vae", "mp4"}
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; use exr, upload, vae, mp4")
    started = time.perf_counter()
    for part in ("upload", "mp4", "vae", "exr"):  # bpy last: it replaces the open file
        if part in parts:
            t0 = time.perf_counter()
            {"exr": bench_exr, "upload": bench_upload, "vae": bench_vae, "mp4": bench_mp4}[part](args)
            print(f"({part}: {time.perf_counter() - t0:.1f} s)")
    print(f"\nwall time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
