"""Export one shot of a Blender scene as a shot bundle (docs/shot-bundle.md).

Two passes: (1) per frame, sample what the canvas kind needs (gather.canvas_samples: depth + mask,
passes, poses) plus the camera and the strength curve; (2) the clip-wide numbers (depth range),
then one canvas per frame (core.canvas_kinds). The user's settings are swapped only during pass 1
and restored before pass 2 (and on any error).

`iter_export_shot` yields (done, total, stage) after each small step so the add-on's modal
operator can run it a frame at a time on Blender's main thread; `export_shot` exhausts it.
`render_frame_canvas` renders one frame's canvas only (the panel's canvas preview).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import bpy
import numpy as np

from ..core.bundle import BundleWriter, frame_entry_in_metres
from ..core.canvas_kinds import ClipStats, clip_stats, frame_canvas
from ..core.planning import fps_from_scene, frames_error, size_error, snap_frames
from ..shot_bundle import CANVAS_KINDS, Camera, Control, Shot, Strength
from .camera_track import sample_camera
from .canvas_samples import WarnFn, default_warn, iter_clip_samples, scene_canvas_options
from .depth_mask import export_view_layer

CAMERA_MODES = ("auto", "preset", "trajectory", "off")
STAGE_RENDER = "rendering depth and mask"
STAGE_RANGE = "depth range"
STAGE_CANVAS = "writing canvases"
STAGE_DONE = "done"
# Custom scene property read per frame when the add-on's `scene.ltx_render` is not registered.
STRENGTH_PROPERTY = "ltx_control_strength"
# What the bundle records of CanvasOptions (the lighting and world colour come from the scene).
RECORDED_OPTIONS = ("depth_scope", "hands", "face", "crease_angle", "playblast_colour")

ProgressFn = Callable[[int, int, str], None]


def _check_args(frame_start: int, frame_end: int, width: int, height: int, canvas_size: tuple[int, int],
                kind: str, strength: float, background_strength: float | None, camera_mode: str) -> None:
    n = frame_end - frame_start + 1
    if n < 1:
        raise ValueError(f"frame_end ({frame_end}) is before frame_start ({frame_start}); fix the frame range")
    problem = frames_error(n)
    if problem:
        raise ValueError(f"{problem} (frame_end={frame_start + snap_frames(n)[0] - 1})")
    _check_size(width, height, canvas_size)
    for name, value in (("strength", strength), ("background_strength", background_strength)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1] (got {value})")
    if kind not in CANVAS_KINDS:
        raise ValueError(f"canvas kind must be one of {', '.join(CANVAS_KINDS)} (got {kind!r})")
    if camera_mode not in CAMERA_MODES:
        raise ValueError(f"camera_mode must be one of {', '.join(CAMERA_MODES)} (got {camera_mode!r})")


def _check_size(width: int, height: int, canvas_size: tuple[int, int]) -> None:
    problem = size_error(width, height, 32)
    if problem:
        raise ValueError(problem)
    cw, ch = canvas_size
    if not (0 < cw <= width and 0 < ch <= height) or width * ch != height * cw:
        raise ValueError(f"the canvas size {cw}x{ch} must have the output's aspect and be at most {width}x{height}; "
                         "it is the output size divided by the LoRA's reference_downscale_factor")


def frame_strength(scene: bpy.types.Scene) -> float | None:
    """The scene's (keyframable) control strength at the current frame, or None when it has none."""
    props = getattr(scene, "ltx_render", None)
    if props is not None and hasattr(props, "control_strength"):
        return float(props.control_strength)
    if STRENGTH_PROPERTY in scene.keys():
        return float(scene[STRENGTH_PROPERTY])
    return None


def iter_export_shot(scene: bpy.types.Scene, out_dir: str | Path, *, frame_start: int, frame_end: int,
                     targets: Sequence[str], armatures: Sequence[str], width: int, height: int,
                     kind: str = "depth+pose", canvas_options: Mapping | None = None,
                     canvas_size: tuple[int, int] | None = None, reference_downscale_factor: int | None = None,
                     prompt: str = "", seed: int = 0, strength: float = 1.0,
                     background_strength: float | None = None, camera_mode: str = "auto",
                     control_lora: str = "", preset_lora: str = "", trajectory_lora: str = "",
                     bone_maps: Mapping[str, Mapping[str, str]] | None = None, audio: bool = True,
                     progress: ProgressFn | None = None, name: str = "", negative_prompt: str = "",
                     occlusion: bool = True, engine: str = "auto", warn: WarnFn | None = None,
                     steps: int | None = None, stages: int | None = None,
                     ) -> Iterator[tuple[int, int, str]]:
    """Write the shot bundle for frames [frame_start, frame_end] into out_dir, step by step.

    width/height: output video size (multiples of 32). kind: the canvas the control LoRA reads
    (depth+pose, depth, pose, edges, playblast; docs/canvas-kinds.md); canvas_options: its
    choices (depth_scope, hands, face, crease_angle, playblast_colour). canvas_size: (w, h) of the
    canvas, the size the control LoRA reads (shot_bundle.reference_canvas_size of its factor;
    default the output size). reference_downscale_factor: sent to the server as an explicit
    override (None = the LoRA file's). targets: collection/object names the model must follow;
    armatures: armature names drawn as OpenPose skeletons; bone_maps: {armature name or "*":
    {COCO joint: "bone" or "bone:tail"}} for custom rigs. engine: "auto" (Workbench when an
    OpenGL context works, see gl_probe, else Cycles), "cycles" or "workbench". occlusion: hide
    joints behind a nearer rendered surface. warn: called with each warning (what will be
    missing from the bundle and what to change); default warnings.warn. steps, stages: recorded in
    shot.json (None = the server's defaults; a Preview sends stages 1, core/preview.py).
    The control strength is sampled here, once per frame (the keyframed panel property, else
    `strength`), and travels in shot.json: a later upload or resume sends exactly that.
    Camera translation, depth and clip range are written in metres (scene Unit Scale applied).
    Yields (done, total, stage); the bundle's shot.json is written by the last step.
    """
    canvas_size = tuple(canvas_size or (width, height))
    _check_args(frame_start, frame_end, width, height, canvas_size, kind, strength, background_strength,
                camera_mode)
    warn = warn or default_warn
    options = scene_canvas_options(scene, **dict(canvas_options or {}))
    unit_scale = float(scene.unit_settings.scale_length)
    frames = list(range(frame_start, frame_end + 1))
    cw, ch = canvas_size
    total = 2 * len(frames) + 2
    done = 0

    def step(stage: str) -> tuple[int, int, str]:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, stage)
        return done, total, stage

    view_layer = export_view_layer(scene)
    samples, entries, strengths = [], [], []
    # Each sample arrives with the scene at its frame: the camera and the strength are read then.
    for sample in iter_clip_samples(scene, frames, kind=kind, width=cw, height=ch, targets=targets,
                                    armatures=armatures, options=options, bone_maps=bone_maps,
                                    occlusion=occlusion, engine=engine, warn=warn):
        f = frames[len(samples)]
        cam = sample_camera(scene, width, height, view_layer.depsgraph)
        entries.append(frame_entry_in_metres(cam.frame_entry(f), unit_scale))
        value = frame_strength(scene)
        if value is not None:
            strengths.append(value)
        samples.append(sample)
        yield step(STAGE_RENDER)

    # Pass 2 works on numbers only; the user's settings are already back.
    stats = clip_stats(samples, kind, options)
    yield step(STAGE_RANGE)

    has_mask = bool(targets) and any(s.mask.any() for s in samples)
    control = Control(
        kind=kind, lora=control_lora, folder="control", mask_folder="mask" if has_mask else None, width=cw,
        height=ch, reference_downscale_factor=reference_downscale_factor,
        strength=Strength(value=float(strength), per_frame=strengths if len(strengths) == len(frames) else None,
                          background=None if background_strength is None else float(background_strength)),
        depth_range=_depth_range(stats),
        options={k: v for k, v in asdict(options).items() if k in RECORDED_OPTIONS})
    writer = BundleWriter(out_dir, [control])
    for f, sample in zip(frames, samples, strict=True):
        writer.write_frame(f, [frame_canvas(sample, kind, options, stats)], [sample.mask if has_mask else None],
                           sample.people)
        yield step(STAGE_CANVAS)
    shot = Shot(
        name=name or f"{scene.name}_{frame_start:04d}-{frame_end:04d}", width=width, height=height,
        fps=fps_from_scene(scene.render.fps, scene.render.fps_base), frame_start=frame_start, frame_end=frame_end,
        frames=entries, scene=scene.name, prompt=prompt, negative_prompt=negative_prompt, seed=int(seed),
        audio=bool(audio), controls=[control], steps=steps, stages=stages,
        camera=Camera(mode=camera_mode, preset_lora=preset_lora, trajectory_lora=trajectory_lora),
        targets=list(targets), armatures=list(armatures))
    writer.finish(shot)
    yield step(STAGE_DONE)


def _depth_range(stats: ClipStats) -> dict | None:
    """What the bundle records of the clip's depth normalisation (metres; None = infinitely far)."""
    if stats.near is not None:
        return {"near": float(stats.near), "far": float(stats.far)}
    if stats.inverse_hi is not None:
        return {"near": 1.0 / stats.inverse_hi, "far": 1.0 / stats.inverse_lo if stats.inverse_lo > 0 else None}
    return None


def render_frame_canvas(scene: bpy.types.Scene, frame: int, *, targets: Sequence[str], armatures: Sequence[str],
                        width: int, height: int, kind: str = "depth+pose", canvas_options: Mapping | None = None,
                        canvas_size: tuple[int, int] | None = None,
                        bone_maps: Mapping[str, Mapping[str, str]] | None = None, occlusion: bool = True,
                        engine: str = "auto", warn: WarnFn | None = None) -> np.ndarray:
    """The canvas of one frame, (canvas height, canvas width, 3) uint8, for a preview: ONE render of
    `frame`, nothing written to disk. The frame rules (8k+1) are for shots sent to the server, so
    any single frame will do.

    Normalisation (depth range): this frame's own. A render's canvas uses the range over every
    frame of its shot, which needs a render of each of them, the cost this preview exists to
    avoid; so the brightness here can differ a little from the rendered shot's canvas of the same
    frame. The user's settings and current frame are restored afterwards. Arguments as
    iter_export_shot.
    """
    canvas_size = tuple(canvas_size or (width, height))
    _check_size(width, height, canvas_size)
    options = scene_canvas_options(scene, **dict(canvas_options or {}))
    (sample,) = list(iter_clip_samples(scene, [frame], kind=kind, width=canvas_size[0], height=canvas_size[1],
                                       targets=targets, armatures=armatures, options=options, bone_maps=bone_maps,
                                       occlusion=occlusion, engine=engine, warn=warn))
    return frame_canvas(sample, kind, options, clip_stats([sample], kind, options))


def export_shot(scene: bpy.types.Scene, out_dir: str | Path, **kwargs) -> Path:
    """Export a shot bundle (same arguments as iter_export_shot) and return its folder."""
    for _ in iter_export_shot(scene, out_dir, **kwargs):
        pass
    return Path(out_dir)
