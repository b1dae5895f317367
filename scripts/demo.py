"""`./dev demo`: the main job, end to end, on this machine.

1. makes the tiny random LTX-2 (./.cache/test-model; --model-version 2.3 or 2.5: that generation's,
   in ./.cache/test-model-2.3 or -2.5) unless --model is given,
2. starts `render-backend serve` on a free loopback port (a real server process) and leaves it
   running: the next `./dev demo` reuses it while it serves the same model, options and code
   (.cache/demo-server.json records it; --fresh starts a new one, --stop-server stops it, and it
   stops by itself after --idle-exit seconds without work, 15 minutes by default),
3. builds the example Blender scene (a rigged character walking on a set while the camera does a
   dolly zoom) and saves it as out/source/walk_dolly_zoom.blend,
4. renders it exactly as the add-on's Render Preview does (export masked depth + pose + camera,
   stream over gRPC, follow progress, fetch), headless,
5. leaves out/walk_dolly_zoom.blend (movie + sound strips in the sequencer), the take folder with
   video.mp4, audio.wav, sidecar.json and the control canvas, and decodes the mp4 and wav to show
   that frame count, fps and audio length match the shot.

The tiny model's weights are random: its video and audio are noise, by design. Every stage is
the real code that runs with real weights; the closing lines say how to point at them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: import the project's packages

from blender_addon.client import local_server  # noqa: E402 - after the sys.path line above

SHOT_BLEND = "walk_dolly_zoom.blend"
DEFAULT_STATE = ROOT / ".cache" / "demo-server.json"


def demo_server(model: Path, out: Path, args) -> tuple[local_server.LocalServer, bool]:
    """The warm demo server for (model, options, code): the recorded one when it still fits, else a new
    one, detached (returns as soon as its port is open; it may still be loading the model)."""
    # One stage: the demo's sizes are multiples of 32 (256x160); two stages need multiples of 64.
    options = ["--data-dir", str(out / "server-data"), "--heartbeat", "2", "--upsampler", "none",
               "--idle-exit", f"{args.idle_exit:g}"]
    code = local_server.code_fingerprint(ROOT / "render_backend", ROOT / "protos", ROOT / "requirements.txt",
                                         ROOT / ".venv" / ".requirements.sha256")
    return local_server.ensure(args.server_state, str(model), options, out / "server.log", cwd=ROOT,
                               fresh=args.fresh, code=code, say=lambda line: print(f"==> {line}"))


@contextlib.contextmanager
def output_to(log_path: Path):
    """Send this process's stdout/stderr (Blender's C-level render chatter included) to a log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def build_shot(source: Path, frames: int, width: int, height: int) -> None:
    """The example scene with the panel settings an artist would pick, saved to `source`."""
    import bpy

    from blender_addon.example_scene import build_example_scene
    from blender_addon.headless import enable_addon

    build_example_scene(frames=frames, width=width, height=height)
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups in out/
    enable_addon()
    scene = bpy.context.scene
    settings = scene.ltx_render
    settings.prompt = ("a man in a grey coat walks past stone pillars in an empty hall, the hall stretches "
                       "behind him, footsteps echo")
    settings.width, settings.height, settings.seed = width, height, 7
    settings.targets.add().collection = bpy.data.collections["Actors"]
    settings.armatures.add().object = bpy.data.objects["Walker"]
    settings.control_lora = "control"
    settings.camera_mode = "auto"
    source.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(source))


def describe_media(mp4: Path, wav: Path) -> list[str]:
    """Decoded facts, not file names: frames, size, fps of the video; channels, rate, length of the audio."""
    import wave

    import av

    with av.open(str(mp4)) as container:
        vs = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        has_audio = bool(container.streams.audio)
        fps = float(vs.average_rate)
        size = f"{vs.codec_context.width}x{vs.codec_context.height}"
        codecs = f"{vs.codec_context.name}" + (f" + {container.streams.audio[0].codec_context.name}" if has_audio else "")
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
        audio = f"{w.getnchannels()} ch, {w.getframerate()} Hz, {seconds:.3f} s"
    return [f"video: {frames} frames, {size}, {fps:g} fps, {codecs}, {frames / fps:.3f} s",
            f"audio: {audio}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./dev demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a diffusers LTX-2 folder to serve (default: the tiny test model)")
    ap.add_argument("--model-version", choices=("2.0", "2.3", "2.5"), default="2.0",
                    help="the LTX generation of the tiny test model (default 2.0; ignored with --model)")
    ap.add_argument("--out", type=Path, default=ROOT / "out", help="results folder (default ./out)")
    ap.add_argument("--frames", type=int, default=25, help="shot length, 8k+1 (default 25)")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 160), metavar=("WIDTH", "HEIGHT"))
    ap.add_argument("--fresh", "--cold", action="store_true",
                    help="start a new render server even if a warm one from an earlier run fits")
    ap.add_argument("--stop-server", action="store_true", help="stop the warm render server and exit")
    ap.add_argument("--idle-exit", type=float, default=900, metavar="SECONDS",
                    help="the server stops after this long without jobs or clients (default 900; 0 = never)")
    ap.add_argument("--server-state", type=Path, default=DEFAULT_STATE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = args.out.resolve()
    if args.stop_server:
        old = local_server.stop_recorded(args.server_state)
        print(f"==> stopped the render server on {old.address} (pid {old.pid})" if old
              else "==> no warm render server recorded")
        return 0
    t_start = time.perf_counter()
    timings: list[tuple[str, float]] = []

    from render_backend.engine.ltx2.test_model_marker import is_complete

    tiny = args.model is None
    cache = ROOT / ".cache" / ("test-model" if args.model_version == "2.0" else f"test-model-{args.model_version}")
    model = Path(args.model) if args.model else cache.resolve()
    if tiny and not is_complete(cache, "distilled", args.model_version):  # torch is imported only to write it
        from render_backend.engine.ltx2.test_model import make_test_model

        model = make_test_model(cache, version=args.model_version)
    print(f"==> model: {model}{f' (tiny LTX-{args.model_version}, random weights)' if tiny else ''}")
    if (out / "renders").exists():
        shutil.rmtree(out / "renders")  # one demo take, not a growing pile
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    server, reused = demo_server(model, out, args)
    address = server.address
    print(f"==> render server on {address}, pid {server.pid} "
          f"({'warm, reused' if reused else 'new'}; log: {server.log}; ./dev demo --stop-server stops it)")
    timings.append(("server " + ("reused" if reused else "start"), time.perf_counter() - t0))
    # The scene is built while a new server loads the model (it only needs the server for the render).
    source = out / "source" / SHOT_BLEND
    blender_log = out / "blender.log"
    blender_log.write_text("")
    t0 = time.perf_counter()
    with output_to(blender_log):
        build_shot(source, args.frames, *args.size)
    timings.append(("scene", time.perf_counter() - t0))
    print(f"==> example scene: {source} ({args.frames} frames at {args.size[0]}x{args.size[1]}, "
          f"walker + dolly zoom) in {timings[-1][1]:.1f} s")
    t0 = time.perf_counter()
    try:
        local_server.wait_serving(server)
    except RuntimeError as exc:
        local_server.stop(server, wait_s=10)  # never leave an untracked server holding memory
        local_server.clear_state(args.server_state)
        raise SystemExit(str(exc)) from None
    if not reused:
        timings.append(("model load (after the scene)", time.perf_counter() - t0))

    from blender_addon.headless import render_blend

    t0 = time.perf_counter()
    print(f"==> Render Preview (export, upload, denoise, fetch), headless; Blender's log: {blender_log}")
    with output_to(blender_log):
        result = render_blend(source, out_dir=out, server=address, timeout_s=600)
    timings.append(("render preview", time.perf_counter() - t0))
    print(f"    {result.states[0]} in {timings[-1][1]:.1f} s: {result.messages[0]}")

    import json

    import bpy

    scene = bpy.context.scene
    for strip in sorted(scene.sequence_editor.strips_all, key=lambda s: s.channel):
        print(f"    strip {strip.name!r} ({strip.type.lower()}): channel {strip.channel}, frames "
              f"{strip.frame_final_start}-{strip.frame_final_end - 1}; scene at {scene.render.fps} fps")
    take = result.takes[0]
    sidecar = json.loads((take / "sidecar.json").read_text())
    camera, engine = sidecar.get("camera") or {}, sidecar.get("engine") or {}
    print(f"    model: {sidecar.get('model', {}).get('model_generation')} (read from its files); "
          f"{engine.get('video_decoder')}; stage-1 sampler {(engine.get('sampler') or {}).get('stage1')}")
    print(f"    camera: classified as {camera.get('move')!r} -> preset {camera.get('preset')!r} "
          f"(confidence {camera.get('confidence', 0):.2f}); LoRAs: "
          + ", ".join(f"{lo['name']} x{lo['weight']:g}" for lo in engine.get("loras", [])))
    mp4, wav = take / "video.mp4", take / "audio.wav"
    print(f"==> {result.blend}  (sequencer: movie + sound strips at the shot's first frame)")
    for path in sorted(take.iterdir()):
        if path.is_file():
            print(f"==> {path}  ({path.stat().st_size} bytes)")
    canvases = sorted((take / "bundle" / "control").glob("*.png")) if (take / "bundle" / "control").is_dir() else []
    if canvases:
        print(f"==> control canvas: {canvases[0].parent} ({len(canvases)} PNGs)")
    for line in describe_media(mp4, wav):
        print(f"    {line}")
    server_s = sidecar.get("timings") or {}
    if server_s:  # the server's share of the preview; the rest is export, upload, waiting, fetch and import
        timings.append(("of it on the server: denoise + decode", server_s.get("render_s", 0.0)))
        timings.append(("mp4 + wav encode", server_s.get("encode_s", 0.0)))
    print("==> time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings)
          + f"; total {time.perf_counter() - t_start:.1f} s")
    if tiny:
        print("\n" + "!" * 78)
        print("!! The tiny test model has RANDOM weights: the video and audio above are NOISE.")
        print("!! Every stage is real. For real output, on a GPU box with LTX-2 weights:")
        print("!!   render-backend serve --model /models/LTX-2 --lora-dir /models/loras \\")
        print("!!       --host 0.0.0.0 --token-file token.txt --tls-cert cert.pem --tls-key key.pem")
        print("!! then point the add-on's connection profile (or ./dev demo --model DIR) at it:")
        print("!! see the README, 'Real weights on a GPU box'.")
        print("!" * 78)
    return 0


if __name__ == "__main__":
    sys.exit(main())
