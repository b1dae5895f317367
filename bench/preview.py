"""Button to strips: where a Render Preview's seconds and memory go, stage by stage, before and after.

One Render Preview of the example shot (the demo's walker + dolly zoom), through the real add-on
path: the Render Preview operator exports the canvas, the worker uploads it to a real
`render-backend serve` on loopback, the server queues, encodes the prompt and the reference,
denoises, decodes, muxes; the worker fetches; the strips land in the sequencer. The bench wraps
(never replaces) the functions at the seams to time each stage; the server's own stage timings
come from the take's sidecar.

    export          the canvas: Workbench depth + mask, pose, PNGs (the modal operator's ticks)
    upload          SubmitShot: the bundle streamed, checked, stored
    queue           submitted -> the job's first RUNNING event
    load inputs     the job reading its uploaded PNGs (sidecar render_s minus the engine's total)
    text encode     prompt -> embeddings            (sidecar engine timings)
    reference enc.  canvas -> clean tokens (VAE)    (sidecar engine timings)
    denoise         all steps, both stages          (sidecar engine timings)
    decode          latents -> frames + waveform    (sidecar engine timings)
    mux + write     mp4 + wav + sidecar written, DONE event received
    fetch           FetchResult of every artifact
    sequencer       movie + sound strips imported
    other           the rest: the modal operator's ticks between stages, event latency
Peak memory: the server process's and the exporting Blender process's high-water RSS (VmHWM).

Before/after in one run: `--before REV` renders the same shot with the code of git revision REV
(extracted into a temp folder, same .venv, same model), interleaved with this checkout's code
(before, after, after, before, ...), and prints both columns and their ratio. Each side gets one
unmeasured warm-up render on its server first (the artist's second press); `--cold` adds a
column for the server's start itself. `--demo` also times `scripts/demo.py` of each side.

Run: .venv/bin/python bench/preview.py [--before REV] [--frames 25] [--size 256 160] [--repeats 3]
     [--model DIR] [--demo] [--quick]
On a GPU box (one prepared command, real or full-size weights):
     .venv/bin/python bench/preview.py --model /models/LTX-2 --frames 121 --size 768 512 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tree this copy of the script lives in (a --before tree too)

STAGES = ("export", "upload", "queue", "load inputs", "text encode", "reference enc.", "denoise", "decode",
          "mux + write", "fetch", "sequencer", "other")
MEMORY = ("server peak MiB", "exporter peak MiB")


# --------------------------------------------------------------------------- child: one tree, one server
def vm_hwm_mib(pid: int | str = "self") -> float:
    """High-water resident set of a process, MiB (Linux)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", text, flags=re.M).group(1)) / 1024


def start_server(model: str, data_dir: Path, log_path: Path, extra: list[str]):
    """`render-backend serve` of this tree on a free loopback port; (process, address, seconds to SERVING)."""
    from blender_addon.client.profiles import ServerProfile
    from blender_addon.client.render_client import RenderClient

    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "render_backend.cli", "serve", "--model", model, "--port", "0",
                                 "--data-dir", str(data_dir), "--heartbeat", "2", "--upsampler", "none", *extra],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"})
    address = None
    while address is None:
        found = re.search(r"listening on ([\d.]+:\d+)", log_path.read_text())
        address = found.group(1) if found else None
        if address is None and (proc.poll() is not None or time.perf_counter() - t0 > 300):
            proc.kill()
            raise SystemExit(f"the server did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.02)
    with RenderClient(ServerProfile("bench", address)) as client:
        while client.health() != "SERVING":
            if proc.poll() is not None:
                raise SystemExit(f"the server died:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.02)
    return proc, address, time.perf_counter() - t0


class Seams:
    """Wraps the functions between the stages and keeps (name, start, end) spans and job events."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self.events: list[tuple[float, int, str]] = []  # (time, state, stage)

    def install(self) -> None:
        from blender_addon import sequencer
        from blender_addon.client.render_client import RenderClient
        from blender_addon.gather import export

        seams = self

        def timed(name, fn):
            def wrapper(*a, **kw):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    seams.spans.append((name, t0, time.perf_counter()))
            return wrapper

        iter_export = export.iter_export_shot

        def iter_export_shot(*a, **kw):  # a generator the modal operator advances a frame at a time
            t0 = time.perf_counter()
            yield from iter_export(*a, **kw)
            seams.spans.append(("export", t0, time.perf_counter()))

        watch = RenderClient.watch

        def watched(self, *a, **kw):
            for event in watch(self, *a, **kw):
                if not event.heartbeat:
                    seams.events.append((time.perf_counter(), event.state, event.stage))
                yield event

        export.iter_export_shot = iter_export_shot
        RenderClient.submit_bundle = timed("upload", RenderClient.submit_bundle)
        RenderClient.fetch = timed("fetch", RenderClient.fetch)
        RenderClient.watch = watched
        sequencer.import_take = timed("sequencer", sequencer.import_take)

    def reset(self) -> None:
        self.spans.clear()
        self.events.clear()

    def stages(self, sidecar: dict) -> dict[str, float]:
        from blender_addon.client.render_client import pb

        first = {name: start for name, start, _ in reversed(self.spans)}
        last = {name: end for name, _, end in self.spans}
        total = {}
        for name, start, end in self.spans:
            total[name] = total.get(name, 0.0) + end - start
        running = min(t for t, state, _ in self.events if state == pb.JOB_STATE_RUNNING)
        done = max(t for t, state, _ in self.events if state == pb.JOB_STATE_DONE)
        engine = (sidecar.get("engine") or {}).get("timings") or {}
        render_s = float((sidecar.get("timings") or {}).get("render_s", 0.0))
        out = {
            "export": total["export"],
            "upload": total["upload"],
            "queue": running - last["upload"],
            "load inputs": max(0.0, render_s - engine.get("total_s", 0.0)),
            "text encode": engine.get("text_s", 0.0),
            "reference enc.": engine.get("reference_encode_s", 0.0),
            "denoise": engine.get("denoise_s", 0.0) + engine.get("stage2_s", 0.0),
            "decode": engine.get("decode_s", 0.0),
            "mux + write": max(0.0, (done - running) - render_s),
            "fetch": total["fetch"],
            "sequencer": total["sequencer"],
        }
        out["button to strips"] = last["sequencer"] - first["export"]
        # The rest: the modal operator's ticks between stages, event latency, Blender's own work.
        out["other"] = max(0.0, out["button to strips"] - sum(out[s] for s in STAGES if s != "other"))
        return out


def child(args) -> int:
    """Render the example shot (1 warm-up + repeats) with this tree's code; one JSON line per render."""
    import bpy

    from blender_addon.example_scene import build_example_scene
    from blender_addon.headless import enable_addon, render_blend

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    proc, address, start_s = start_server(args.model, work / "server-data", work / "server.log",
                                          args.server_arg or [])
    try:
        build_example_scene(frames=args.frames, width=args.size[0], height=args.size[1])
        enable_addon()
        bpy.context.preferences.filepaths.save_version = 0
        settings = bpy.context.scene.ltx_render
        settings.prompt = "a man in a grey coat walks past stone pillars in an empty hall"
        settings.width, settings.height, settings.seed = args.size[0], args.size[1], 7
        settings.targets.add().collection = bpy.data.collections["Actors"]
        settings.armatures.add().object = bpy.data.objects["Walker"]
        settings.control_lora = "control"
        source = work / "source" / "shot.blend"
        source.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(source))

        seams = Seams()
        seams.install()
        print(json.dumps({"server_start_s": start_s}), flush=True)
        for i in range(args.renders):
            seams.reset()
            out = work / f"render_{i}"
            result = render_blend(source, out_dir=out, server=address, timeout_s=900, say=lambda *_: None)
            if result.states[0] != "done":
                raise SystemExit(f"render {i}: {result.states[0]}: {result.messages[0]}")
            sidecar = json.loads((result.takes[0] / "sidecar.json").read_text())
            row = seams.stages(sidecar)
            if os.environ.get("PREVIEW_BENCH_TRACE"):  # the raw timeline, to find what "other" is
                t0 = min(start for _, start, _ in seams.spans)
                for name, start, end in sorted(seams.spans, key=lambda s: s[1]):
                    print(f"trace {name:<10} {start - t0:8.3f} {end - t0:8.3f}", file=sys.stderr)
                for t, state, stage in seams.events:
                    print(f"trace event {state} {stage!r} {t - t0:8.3f}", file=sys.stderr)
            row["server peak MiB"] = vm_hwm_mib(proc.pid)
            row["exporter peak MiB"] = vm_hwm_mib()
            print(json.dumps({"render": i, "stages": row}), flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        proc.terminate()
        proc.wait(60)
    return 0


# --------------------------------------------------------------------------- parent: both trees, the table
def extract(rev: str, into: Path) -> Path:
    """The files of git revision `rev` in a fresh folder (no worktree registration to clean up)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "bench").mkdir(exist_ok=True)
    shutil.copy2(__file__, into / "bench" / "preview.py")  # this bench, run against that tree's code
    return into


def run_child(tree: Path, args, work: Path, renders: int) -> dict:
    cmd = [sys.executable, str(tree / "bench" / "preview.py"), "--child", "--model", str(args.model),
           "--frames", str(args.frames), "--size", *map(str, args.size), "--work", str(work),
           "--renders", str(renders)]
    for extra in args.server_arg or []:
        cmd.append(f"--server-arg={extra}")
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: the bench child failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    if os.environ.get("PREVIEW_BENCH_TRACE"):
        print(f"== {tree}\n" + "\n".join(x for x in proc.stderr.splitlines() if x.startswith("trace")), file=sys.stderr)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    renders_out = [line["stages"] for line in lines if "stages" in line]
    return {"server_start_s": lines[0]["server_start_s"], "renders": renders_out[1:]}  # [0] is the warm-up


def time_demo(tree: Path, model: Path, out: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(tree / "scripts" / "demo.py"), "--model", str(model), "--out", str(out)],
                          cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: demo failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    return time.perf_counter() - t0


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REV", help="git revision to compare against, side by side")
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--size", type=int, nargs=2, default=(256, 160), metavar=("WIDTH", "HEIGHT"))
    ap.add_argument("--repeats", type=int, default=3, help="measured renders per side (medians)")
    ap.add_argument("--model", type=Path, help="model folder (default: the tiny test model in ./.cache)")
    ap.add_argument("--server-arg", action="append", help="extra `serve` flag for the measured checkout")
    ap.add_argument("--demo", action="store_true", help="also time scripts/demo.py of each side (2 runs each)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 9 frames 128x128, 1 repeat")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--renders", type=int, default=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.quick:
        args.frames, args.size, args.repeats = 9, (128, 128), 1
    if args.model is None:
        from render_backend.engine.ltx2.test_model import make_test_model

        args.model = make_test_model(ROOT / ".cache" / "test-model")
    args.model = args.model.resolve()

    with tempfile.TemporaryDirectory(prefix="preview-bench-") as tmp:
        tmp = Path(tmp)
        sides = {"after": ROOT}
        if args.before:
            sides = {"before": extract(args.before, tmp / "before-tree"), "after": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in sides}
        starts: dict[str, list[float]] = {name: [] for name in sides}
        order = list(sides)
        for i in range(args.repeats):  # interleaved: before, after, after, before, ...
            for name in (order if i % 2 == 0 else order[::-1]):
                got = run_child(sides[name], args, tmp / f"{name}-{i}", renders=2)
                runs[name] += got["renders"]
                starts[name].append(got["server_start_s"])
        demo: dict[str, list[float]] = {}
        if args.demo:
            for name, tree in sides.items():
                demo[name] = [time_demo(tree, args.model, tmp / f"demo-{name}") for _ in range(2)]
                if "--stop-server" in (tree / "scripts" / "demo.py").read_text():  # a warm demo server
                    subprocess.run([sys.executable, str(tree / "scripts" / "demo.py"), "--stop-server"], cwd=tree,
                                   env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, timeout=120)

    print(f"Render Preview of the example shot: {args.frames} frames at {args.size[0]}x{args.size[1]}, "
          f"model {args.model.name}; medians of {args.repeats} renders per side after a warm-up")
    names = list(sides)
    header = f"{'stage':<18}" + "".join(f"{n + ' s':>10}{'share':>7}" for n in names)
    if len(names) == 2:
        header += f"{'after/before':>14}"
    print(header)
    totals = {n: median_of(runs[n], "button to strips") for n in names}
    for stage in (*STAGES, "button to strips"):
        line = f"{stage:<18}"
        for n in names:
            value = median_of(runs[n], stage)
            line += f"{value:10.3f}{100 * value / totals[n]:6.0f}%"
        if len(names) == 2:
            before, after = median_of(runs["before"], stage), median_of(runs["after"], stage)
            line += f"{after / before:14.2f}" if before > 1e-4 else f"{'-':>14}"
        print(line)
    for key in MEMORY:
        line = f"{key:<18}" + "".join(f"{median_of(runs[n], key):10.0f}{'':7}" for n in names)
        if len(names) == 2:
            line += f"{median_of(runs['after'], key) / median_of(runs['before'], key):14.2f}"
        print(line)
    line = f"{'server start s':<18}" + "".join(f"{statistics.median(starts[n]):10.2f}{'':7}" for n in names)
    if len(names) == 2:
        line += f"{statistics.median(starts['after']) / statistics.median(starts['before']):14.2f}"
    print(line)
    for n, times in demo.items():
        print(f"demo ({n}): first run {times[0]:.1f} s, second run {times[1]:.1f} s")
    if len(demo) == 2:
        print(f"demo second run after/before: {demo['after'][1] / demo['before'][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
