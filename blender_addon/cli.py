"""Headless command line, bpy as a module: `python -m blender_addon.cli export SCENE.blend --out DIR`.

One function per subcommand: `add_<name>_parser(subparsers)` declares it, `run_<name>(args)` runs
it and returns the exit code. bpy is imported only inside the commands that need Blender.
Exit codes: 0 done, 2 bad input (the message says what to change), 1 anything else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from .core.planning import snap_frames, snap_size
from .shot_bundle import CANVAS_KINDS

CANVAS_KIND_CHOICES = list(CANVAS_KINDS)


class UsageError(ValueError):
    """Bad command-line input; printed as `error: ...` with exit code 2."""


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def parse_frames(text: str) -> tuple[int, int]:
    """'1-121' -> (1, 121) inclusive Blender frames; '5' -> (5, 5)."""
    try:
        if "-" in text.lstrip("-"):
            head = "-" if text.startswith("-") else ""
            a, b = text.lstrip("-").split("-", 1)
            start, end = int(head + a), int(b)
        else:
            start = end = int(text)
    except ValueError:
        raise UsageError(f"--frames must look like START-END, e.g. 1-121 (got {text!r})") from None
    if end < start:
        raise UsageError(f"--frames end ({end}) is before start ({start}); e.g. 1-121")
    return start, end


def add_export_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a shot bundle from a .blend (depth, mask, pose, camera)",
                              description="Export frames of a .blend as a shot bundle (docs/shot-bundle.md).")
    p.add_argument("blend", type=Path, help="the .blend file")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--scene", default="", help="scene name (default: the file's active scene)")
    p.add_argument("--frames", default="", help="inclusive range START-END (default: the scene's range); "
                   "snapped to 8k+1 frames")
    p.add_argument("--targets", default="", help="comma-separated collections/objects the model must follow")
    p.add_argument("--armatures", default="", help="comma-separated armatures drawn as OpenPose skeletons")
    p.add_argument("--width", type=int, default=0, help="output width in px (default: scene resolution), /32")
    p.add_argument("--height", type=int, default=0, help="output height in px (default: scene resolution), /32")
    p.add_argument("--reference-downscale-factor", type=int, default=None, metavar="N",
                   help="the control LoRA's reference_downscale_factor: the canvas is exported at 1/N of the "
                   "output size and N is sent with the shot (default: full size, and the server uses the "
                   "LoRA's own factor)")
    p.add_argument("--prompt", default="")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strength", type=float, default=1.0, help="control strength m in [0, 1]")
    p.add_argument("--background-strength", type=float, default=None, help="strength outside the mask")
    p.add_argument("--camera-mode", default="auto", choices=["auto", "preset", "trajectory", "off"],
                   help="auto: the server picks a camera preset LoRA from the camera move; preset: apply "
                   "--camera-lora; trajectory: send the camera track to the trajectory LoRA --camera-lora")
    p.add_argument("--camera-lora", default="", metavar="NAME",
                   help="camera LoRA name on the server, required with --camera-mode preset (a camera preset "
                   "LoRA, e.g. camera_dolly_in) or trajectory (a trajectory LoRA)")
    p.add_argument("--control-lora", default="", help="control LoRA name on the server")
    p.add_argument("--kind", default="depth+pose", choices=CANVAS_KIND_CHOICES,
                   help="the canvas the control LoRA reads (docs/canvas-kinds.md; default depth+pose)")
    p.add_argument("--depth-scope", default="everything", choices=["everything", "targets"],
                   help="depth kind: all the camera sees, or the targets only")
    p.add_argument("--no-hands", dest="hands", action="store_false", help="pose kind: no finger joints")
    p.add_argument("--no-face", dest="face", action="store_false", help="pose kind: no face points")
    p.add_argument("--playblast-colour", default="grey", choices=["grey", "object"],
                   help="playblast kind: grey solid shading or object viewport colours")
    p.add_argument("--no-audio", dest="audio", action="store_false", help="render without the soundtrack")
    p.add_argument("--engine", default="auto", choices=["auto", "cycles", "workbench"],
                   help="depth/mask renderer: auto = Workbench when OpenGL works here (probed once), else Cycles")
    p.add_argument("--bone-map", type=Path, default=None, metavar="FILE.json",
                   help='bones of custom rigs: {"armature name or *": {"coco joint": "bone name", ...}}; '
                   'joints are the COCO-18 names (nose, neck, r_shoulder, ... l_ear)')
    p.add_argument("--no-occlusion", dest="occlusion", action="store_false",
                   help="keep joints hidden behind other surfaces (default: they are left out of the pose)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run_export)


def camera_loras(mode: str, name: str) -> tuple[str, str]:
    """(preset_lora, trajectory_lora) for the manifest from --camera-mode and --camera-lora."""
    name = name.strip()
    if mode in ("preset", "trajectory") and not name:
        kind = "camera preset LoRA, e.g. camera_dolly_in" if mode == "preset" else "trajectory LoRA"
        raise UsageError(f"--camera-mode {mode} needs --camera-lora NAME (the {kind}; the add-on's Test "
                         f"connection lists the server's LoRAs), or use --camera-mode auto")
    if mode not in ("preset", "trajectory") and name:
        raise UsageError(f"--camera-lora is used only with --camera-mode preset or trajectory (got {mode}); "
                         "drop it or change the mode")
    return (name, "") if mode == "preset" else ("", name) if mode == "trajectory" else ("", "")


def _open_blend(path: Path, scene_name: str):
    import bpy

    if not path.is_file():
        raise UsageError(f"{path}: no such .blend file")
    bpy.ops.wm.open_mainfile(filepath=str(path.resolve()), load_ui=False)
    if not scene_name:
        return bpy.context.scene
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        raise UsageError(f"no scene {scene_name!r} in {path.name}; scenes: {', '.join(s.name for s in bpy.data.scenes)}")
    return scene


def load_bone_maps(path: Path | None) -> dict[str, dict[str, str]]:
    """--bone-map FILE.json, validated (core.openpose.parse_bone_maps); {} without a file."""
    from .core.openpose import parse_bone_maps

    if path is None:
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--bone-map {path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--bone-map {path}: not valid JSON ({exc})") from None
    return parse_bone_maps(doc, source=f"--bone-map {path.name}")


def run_export(args: argparse.Namespace) -> int:
    from .core.camera_projection import render_size
    from .gather.export import iter_export_shot
    from .gather.targets import resolve_armatures, resolve_targets
    from .shot_bundle import reference_canvas_size

    bone_maps = load_bone_maps(args.bone_map)  # bad files fail before Blender loads the scene
    preset_lora, trajectory_lora = camera_loras(args.camera_mode, args.camera_lora)
    scene = _open_blend(args.blend, args.scene)
    targets, armatures = _names(args.targets), _names(args.armatures)
    needs = {"depth+pose": "--targets and/or --armatures", "pose": "--armatures"}.get(args.kind)
    if args.kind == "depth" and args.depth_scope == "targets":
        needs = "--targets"
    have = {"--targets and/or --armatures": targets or armatures, "--armatures": armatures, "--targets": targets}
    if needs and not have[needs]:
        collections = ", ".join(c.name for c in scene.collection.children_recursive) or "(none)"
        raise UsageError(f"nothing to export for a {args.kind} canvas: give {needs} (this scene has "
                         f"collections {collections})")
    resolve_targets(scene, targets)  # unknown names fail here, before any rendering
    resolve_armatures(scene, armatures)
    start, end = parse_frames(args.frames) if args.frames else (scene.frame_start, scene.frame_end)
    n, why = snap_frames(end - start + 1)
    if why:
        print(f"frames {start}-{end}: {why} -> exporting {start}-{start + n - 1}")
    end = start + n - 1
    if bool(args.width) != bool(args.height):
        raise UsageError("give both --width and --height, or neither (then the scene's resolution is used)")
    w, h = (args.width, args.height) if args.width else render_size(
        scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage)
    w2, h2, why = snap_size(w, h, 32)
    if why:
        print(f"size: {why}")
    factor = args.reference_downscale_factor
    if factor is not None and (factor < 1 or w2 % factor or h2 % factor):
        raise UsageError(f"--reference-downscale-factor must divide {w2}x{h2} (got {factor}); try 1, 2 or 4")
    cw, ch = reference_canvas_size(w2, h2, factor or 1)
    print(f"exporting scene {scene.name!r} frames {start}-{end} ({n}) at {w2}x{h2}, "
          f"control {cw}x{ch} -> {args.out}")
    t0 = time.perf_counter()
    steps = iter_export_shot(
        scene, args.out, frame_start=start, frame_end=end, targets=targets, armatures=armatures,
        width=w2, height=h2, canvas_size=(cw, ch), reference_downscale_factor=factor, audio=args.audio,
        kind=args.kind, canvas_options={"depth_scope": args.depth_scope, "hands": args.hands, "face": args.face,
                                        "playblast_colour": args.playblast_colour},
        prompt=args.prompt, negative_prompt=args.negative_prompt,
        seed=args.seed, strength=args.strength, background_strength=args.background_strength,
        camera_mode=args.camera_mode, preset_lora=preset_lora, trajectory_lora=trajectory_lora,
        control_lora=args.control_lora, engine=args.engine,
        bone_maps=bone_maps, occlusion=args.occlusion,
        warn=lambda message: print(f"warning: {message}", file=sys.stderr, flush=True))
    last_stage = ""
    for done, total, stage in steps:
        if not args.quiet and (stage != last_stage or done == total or done % 10 == 0):
            print(f"  [{done}/{total}] {stage}", flush=True)
        last_stage = stage
    print(f"wrote {args.out / 'shot.json'} in {time.perf_counter() - t0:.1f} s")
    return 0


def add_render_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="export, render on a server, fetch, and save a .blend with the strips",
                              description="Render a .blend's shot (or --animation) on a render server; writes "
                              "OUT/<file>.blend with the movie+sound strips and OUT/renders/<scene>/<shot>/take_NNN/.")
    p.add_argument("blend", type=Path, help="the .blend file (its LTX Render panel settings are used)")
    p.add_argument("--server", required=True, help="render server host:port")
    p.add_argument("--out", type=Path, required=True, help="folder for the .blend copy and renders/")
    p.add_argument("--token-file", default="", help="file with the bearer token (or set LTX_RENDER_TOKEN)")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca", default="", help="CA certificate (PEM) for a self-signed TLS server")
    p.add_argument("--scene", default="", help="scene name (default: the file's active scene)")
    p.add_argument("--animation", action="store_true", help="the whole range, cut into model-sized shots")
    p.add_argument("--prompt", default="", help="override the prompt stored in the .blend")
    p.add_argument("--control-lora", default="", help="control LoRA on the server (default: the .blend's, else the "
                   "server's one that reads the canvas)")
    p.add_argument("--kind", default="", choices=["", "auto", *CANVAS_KIND_CHOICES],
                   help="canvas kind to export (default: the .blend's, auto = what the control LoRA reads)")
    p.add_argument("--targets", default=None, help="comma-separated collections/objects the model must follow "
                   "(default: the .blend's; a file without any follows its mesh collections)")
    p.add_argument("--armatures", default=None, help="comma-separated armatures drawn as pose (default: the .blend's)")
    p.add_argument("--camera-mode", default="", choices=["", "auto", "preset", "trajectory", "off"])
    p.add_argument("--camera-lora", default="", metavar="NAME", help="with --camera-mode preset or trajectory")
    p.add_argument("--timeout", type=float, default=3600.0, help="give up (and cancel) after N seconds")
    p.add_argument("--preview", dest="quality", action="store_const", const="preview", default="",
                   help="fast preview: half size, one stage, fewer steps where the model allows, every frame "
                   "(the panel's Quality: Preview; with --animation too)")
    p.add_argument("--final", dest="quality", action="store_const", const="final",
                   help="the full settings, whatever the .blend's Quality says")
    p.set_defaults(run=run_render)


def run_render(args: argparse.Namespace) -> int:
    from .headless import render_blend

    if args.ca and not args.tls:
        raise UsageError("--ca needs --tls (the certificate is only used for TLS connections)")
    t0 = time.perf_counter()
    try:
        result = render_blend(args.blend, out_dir=args.out, server=args.server, token_file=args.token_file,
                              tls=args.tls, ca_cert=args.ca, scene_name=args.scene, animation=args.animation,
                              prompt=args.prompt, timeout_s=args.timeout, control_lora=args.control_lora,
                              kind=args.kind, camera_mode=args.camera_mode, camera_lora=args.camera_lora,
                              targets=None if args.targets is None else _names(args.targets),
                              armatures=None if args.armatures is None else _names(args.armatures),
                              quality=args.quality, say=lambda line: print(line, flush=True))
    except RuntimeError as exc:
        print(f"render failed: {exc}", file=sys.stderr)
        return 1
    for take, state, message in zip(result.takes, result.states, result.messages, strict=True):
        print(f"  {state:9s} {take}  {message}")
    print(f"saved {result.blend} in {time.perf_counter() - t0:.1f} s")
    return 0 if result.states and all(s == "done" for s in result.states) else 1


def add_submit_parser(subparsers) -> None:
    p = subparsers.add_parser("submit", help="upload an exported shot bundle as it is, follow it, fetch the take",
                              description="Upload a shot bundle (no Blender needed), watch the job and download "
                              "video.mp4, audio.wav and sidecar.json into OUT. Rerunning it on the same bundle "
                              "re-attaches to the same job: the request id is the bundle's content hash.")
    p.add_argument("bundle", type=Path, help="the bundle folder (the one with shot.json)")
    p.add_argument("--server", required=True, help="render server host:port")
    p.add_argument("--out", type=Path, required=True, help="folder for video.mp4, audio.wav, sidecar.json")
    p.add_argument("--token-file", default="", help="file with the bearer token (or set LTX_RENDER_TOKEN)")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca", default="", help="CA certificate (PEM) for a self-signed TLS server")
    p.add_argument("--timeout", type=float, default=3600.0, help="give up after N seconds (the job goes on)")
    p.set_defaults(run=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    from .client.connection import ConnectionProblem
    from .client.submit import submit_bundle

    if args.ca and not args.tls:
        raise UsageError("--ca needs --tls (the certificate is only used for TLS connections)")
    try:
        result = submit_bundle(args.bundle, server=args.server, out_dir=args.out, token_file=args.token_file,
                               tls=args.tls, ca_cert=args.ca, timeout_s=args.timeout,
                               say=lambda line: print(line, flush=True))
    except (ConnectionProblem, TimeoutError) as exc:
        print(f"submit failed: {exc}", file=sys.stderr)
        return 1
    return 0 if result.state == "done" else 1


def add_render_animation_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render-animation", help="render a frame range as continuous takes (resumable, farm-ready)",
        description="Render a range of a .blend on render server(s) as continuous takes: each shot is cut into "
        "model-sized windows that continue from one another and are assembled into one video + soundtrack of "
        "exactly the requested frames. Rerun the same command to resume. Exit code 0 only when every shot is "
        "assembled. See docs/render-farm.md.")
    p.add_argument("blend", type=Path, help="the .blend file (its LTX Render panel settings are used)")
    p.add_argument("--frames", default="", help="ranges as render farms write them: 1-240 or '1-30, 47-327' "
                   "(default: the scene's range)")
    p.add_argument("--server", action="append", required=True, metavar="HOST:PORT",
                   help="render server; repeat it to spread shots over several servers (windows of one shot "
                   "stay on one)")
    p.add_argument("--out", type=Path, required=True, help="output folder: animation.json, one folder per shot, "
                   "the .blend copy with the takes in its sequencer")
    p.add_argument("--token-file", default="", help="file with the bearer token (or set LTX_RENDER_TOKEN)")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca", default="", help="CA certificate (PEM) for a self-signed TLS server")
    p.add_argument("--scene", default="", help="scene name (default: the file's active scene)")
    p.add_argument("--prompt", default="", help="override the prompt stored in the .blend")
    p.add_argument("--control-lora", default="", help="control LoRA (default: the .blend's, else the server's)")
    p.add_argument("--kind", default="", choices=["", "auto", *CANVAS_KIND_CHOICES], help="canvas kind to export")
    p.add_argument("--max-frames", type=int, default=121, help="frames per window, 8k+1 (default 121)")
    p.add_argument("--overlap", type=int, default=17, help="frames a window re-renders from the previous one, "
                   "8m+1 (default 17)")
    p.add_argument("--strength", type=float, default=0.5, help="continuity strength in [0, 1] (default 0.5)")
    p.add_argument("--markers", action="store_true", help="start a new shot at every timeline marker")
    p.add_argument("--image-sequence", action="store_true", help="also write each take as NNNNNN.png frames")
    p.add_argument("--preview", dest="quality", action="store_const", const="preview", default="",
                   help="fast preview: every window at half size, one stage, fewer steps where the model allows "
                   "(default: the .blend's Quality); the takes' strips cover the Final size")
    p.add_argument("--final", dest="quality", action="store_const", const="final",
                   help="the full settings, whatever the .blend's Quality says")
    p.add_argument("--progress", choices=["text", "json"], default="text",
                   help="json: one JSON object per event on stdout, for farm managers")
    p.add_argument("--timeout", type=float, default=24 * 3600.0, help="stop following after N seconds (the "
                   "servers go on; rerun to resume)")
    p.set_defaults(run=run_render_animation)


def run_render_animation(args: argparse.Namespace) -> int:
    from .headless import render_animation_blend

    if args.ca and not args.tls:
        raise UsageError("--ca needs --tls (the certificate is only used for TLS connections)")
    from .core.animation import check_overlap, parse_frame_ranges

    if args.frames:
        parse_frame_ranges(args.frames)  # bad ranges fail before Blender loads the file
    check_overlap(args.overlap, args.max_frames)
    as_json = args.progress == "json"

    def progress(event: dict) -> None:
        if as_json:
            print(json.dumps(event), flush=True)
        elif event["event"] != "progress":
            where = f"shot {event['shot_index']}/{event['shots']}" + (
                f" window {event['window']}/{event['windows']}" if event["window"] else "")
            eta = f", ETA {event['eta_s']:.0f} s" if event["eta_s"] is not None else ""
            print(f"  {where}: {event['event']} ({event['frames_done']}/{event['frames_total']} frames{eta})",
                  flush=True)

    say = (lambda line: print(json.dumps({"event": "message", "message": line}), flush=True)) if as_json else \
        (lambda line: print(line, flush=True))
    t0 = time.perf_counter()
    try:
        result = render_animation_blend(
            args.blend, out_dir=args.out, servers=args.server, frames=args.frames, token_file=args.token_file,
            tls=args.tls, ca_cert=args.ca, scene_name=args.scene, prompt=args.prompt, control_lora=args.control_lora,
            kind=args.kind, max_frames=args.max_frames, overlap=args.overlap, strength=args.strength,
            markers=args.markers, image_sequence=args.image_sequence, timeout_s=args.timeout, progress=progress,
            say=say, quality=args.quality)
    except RuntimeError as exc:
        print(f"render-animation failed: {exc}", file=sys.stderr)
        return 1
    summary = {"event": "finished", "state": result.state, "message": result.message,
               "takes": [str(t) for t in result.takes], "job_file": str(result.job_file), "blend": str(result.blend),
               "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary) if as_json else f"{result.state}: {result.message} ({summary['seconds']} s); "
          f"job file {result.job_file}", flush=True)
    return 0 if result.state == "done" else 1
def add_make_dataset_parser(subparsers) -> None:
    from .core.camera_paths import PATH_KINDS
    from .core.dataset import DATASET_KINDS

    p = subparsers.add_parser("make-dataset", help="a LoRA training dataset (canvas + finished render per clip)",
                              description="Render paired clips from .blend files: the reference canvas the add-on "
                              "exports and the finished frame, from the scene camera and randomised camera paths. "
                              "Writes shot bundles, dataset.json and ltx-trainer's metadata.jsonl/.csv "
                              "(docs/training.md).")
    p.add_argument("blends", type=Path, nargs="+", metavar="SCENE.blend", help="one or more .blend files")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--kind", required=True, choices=list(DATASET_KINDS), help="the reference the LoRA will read")
    p.add_argument("--clips", type=int, default=8, help="clips per .blend (default 8)")
    p.add_argument("--frames", type=int, default=49, help="frames per clip, 8k+1 (default 49)")
    p.add_argument("--size", type=int, nargs=2, default=(768, 512), metavar=("W", "H"),
                   help="output size in px, multiples of 32 (default 768 512)")
    p.add_argument("--paths", default=",".join(PATH_KINDS),
                   help=f"camera paths to draw from, comma-separated (default all: {','.join(PATH_KINDS)})")
    p.add_argument("--seed", type=int, default=0, help="random seed of paths and frame ranges")
    p.add_argument("--reference-downscale-factor", type=int, default=1, metavar="F",
                   help="export the canvas at 1/F of --size, as the add-on does for a LoRA of factor F (default 1)")
    p.add_argument("--caption", default="", help="caption of every clip (default: the scene's LTX Render prompt)")
    p.add_argument("--captions", type=Path, default=None, metavar="FILE",
                   help="one caption per line, used per clip in turn")
    p.add_argument("--scene", default="", help="scene name (default: each file's active scene)")
    p.add_argument("--targets", default="", help="comma-separated collections/objects: the mask and the subject "
                   "the camera paths aim at (default: the view's centre)")
    p.add_argument("--armatures", default="", help="comma-separated armatures drawn as pose")
    p.add_argument("--samples", type=int, default=16, help="render samples of the target (default 16)")
    p.add_argument("--render-engine", default="cycles", choices=["cycles", "eevee"],
                   help="renderer of the target: cycles (CPU, works everywhere) or eevee (needs OpenGL)")
    p.add_argument("--canvas-engine", default="auto", choices=["auto", "cycles", "workbench"],
                   help="depth/mask renderer of the canvas, as in export")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run_make_dataset)


def run_make_dataset(args: argparse.Namespace) -> int:
    from .core.camera_paths import parse_path_kinds
    from .make_dataset import DatasetOptions, make_dataset

    captions = []
    if args.captions is not None:
        try:
            captions = [line.strip() for line in args.captions.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise UsageError(f"--captions {args.captions}: cannot read it ({exc.strerror or exc})") from None
        if not captions:
            raise UsageError(f"--captions {args.captions} has no caption lines")
    elif args.caption.strip():
        captions = [args.caption.strip()]
    options = DatasetOptions(kind=args.kind, clips=args.clips, num_frames=args.frames, width=args.size[0],
                             height=args.size[1], paths=parse_path_kinds(args.paths), seed=args.seed,
                             reference_downscale_factor=args.reference_downscale_factor, captions=captions,
                             targets=_names(args.targets), armatures=_names(args.armatures), samples=args.samples,
                             render_engine=args.render_engine, canvas_engine=args.canvas_engine)
    t0 = time.perf_counter()
    for line in make_dataset(args.blends, args.out, options, scene_name=args.scene, overwrite=args.overwrite,
                             warn=lambda message: print(f"warning: {message}", file=sys.stderr, flush=True)):
        if not args.quiet:
            print(line, flush=True)
    print(f"wrote {args.out / 'dataset.json'} in {time.perf_counter() - t0:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blender_addon.cli",
                                     description="LTX-2 neural rendering for Blender, headless.")
    parser.add_argument("--blender-log", action="store_true",
                        help="show Blender's own per-frame render output (hidden by default)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_export_parser(subparsers)
    add_render_parser(subparsers)
    add_submit_parser(subparsers)
    add_render_animation_parser(subparsers)
    add_make_dataset_parser(subparsers)
    return parser


@contextlib.contextmanager
def blender_output_silenced():
    """Blender's C code prints a line per rendered frame ("Saved: ...", EGL notes) to the process's
    stdout/stderr. Point those file descriptors at /dev/null and keep Python's own prints (progress,
    errors) on the original terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    old_streams = sys.stdout, sys.stderr
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stdout = os.fdopen(os.dup(saved_out), "w", buffering=1)
    sys.stderr = os.fdopen(os.dup(saved_err), "w", buffering=1)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout.close()
        sys.stderr.close()
        sys.stdout, sys.stderr = old_streams
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (saved_out, saved_err, devnull):
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = contextlib.nullcontext() if args.blender_log else blender_output_silenced()
    with quiet:
        try:
            return args.run(args)
        except ValueError as exc:  # UsageError, TargetError, bad frames/size: the user can fix these
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
