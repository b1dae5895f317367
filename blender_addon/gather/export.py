"""Export one shot of a Blender scene as a shot bundle (docs/shot-bundle.md).

Two passes: (1) per frame, render depth + mask at the control size, sample the camera and the
armature poses; (2) the shot-wide depth range, then one control canvas per frame. The user's
settings are swapped only during pass 1 and restored before pass 2 (and on any error).

`iter_export_shot` yields (done, total, stage) after each small step so the add-on's modal
operator can run it a frame at a time on Blender's main thread; `export_shot` exhausts it.
`render_frame_canvas` renders one frame's canvas only (the panel's canvas preview).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np

from ..core.bundle import BundleWriter, depth_in_metres, frame_entry_in_metres
from ..core.canvas import compose_control
from ..core.depth import shot_depth_range
from ..core.openpose import BONE_MAP_ANY, bone_map_for, check_bone_map, unmapped_rig_warning
from ..core.planning import fps_from_scene, frames_error, size_error, snap_frames
from ..shot_bundle import Camera, Control, Shot, Strength
from .camera_track import sample_camera
from .depth_mask import DepthMaskRenderer, export_view_layer
from .gl_probe import choose_engine
from .pose import armature_keypoints
from .settings import SettingsSwap
from .targets import resolve_armatures, resolve_targets

# The farthest target pixel of a shot encodes at this grey level (~26/255), never black: black
# means "masked out, the model's to invent", and a target walking away must not vanish into it.
FAR_TARGET_LEVEL = 0.1

CAMERA_MODES = ("auto", "preset", "trajectory", "off")
STAGE_RENDER = "rendering depth and mask"
STAGE_RANGE = "depth range"
STAGE_CANVAS = "writing canvases"
STAGE_DONE = "done"
# Custom scene property read per frame when the add-on's `scene.ltx_render` is not registered.
STRENGTH_PROPERTY = "ltx_control_strength"

ProgressFn = Callable[[int, int, str], None]
WarnFn = Callable[[str], None]


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def _check_args(frame_start: int, frame_end: int, width: int, height: int, canvas_size: tuple[int, int],
                strength: float, background_strength: float | None, camera_mode: str) -> None:
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


def _resolve(scene: bpy.types.Scene, targets: Sequence[str], armatures: Sequence[str],
             bone_maps: Mapping[str, Mapping[str, str]], warn: WarnFn) -> tuple[list, list]:
    """(target objects, armature objects); unknown names and wrong bone names fail here, before
    the first render; rigs the pose cannot fully map are warned about."""
    target_objects = resolve_targets(scene, targets)
    armature_objects = resolve_armatures(scene, armatures)
    for arm in armature_objects:
        bones, bone_map = [b.name for b in arm.data.bones], bone_map_for(bone_maps, arm.name)
        if bone_map:
            check_bone_map(arm.name, bone_map, bones)
        message = unmapped_rig_warning(arm.name, bones, bone_map)
        if message:
            warn(message)
    unused = sorted(set(bone_maps) - {a.name for a in armature_objects} - {BONE_MAP_ANY})
    if unused:
        warn(f"bone map entries {', '.join(map(repr, unused))} match no exported armature "
             f"({', '.join(a.name for a in armature_objects) or 'none'}); fix the names or use \"*\" for all")
    return target_objects, armature_objects


def _sample_frame(scene: bpy.types.Scene, renderer: DepthMaskRenderer, view_layer, armature_objects,
                  bone_maps: Mapping[str, Mapping[str, str]], width: int, height: int, occlusion: bool):
    """Render and sample the scene's current frame: (depth (ch, cw) in Blender units, mask
    (ch, cw) bool, one (18, 3) keypoint array per armature in control pixels, camera sample)."""
    depth, mask = renderer.render()
    depsgraph = view_layer.depsgraph
    cam = sample_camera(scene, width, height, depsgraph)
    k_control = cam.intrinsics.scaled(renderer.width, renderer.height)
    people = [armature_keypoints(arm, depsgraph, k_control, cam.world_to_camera, bone_map_for(bone_maps, arm.name),
                                 depth if occlusion else None)
              for arm in armature_objects]
    return depth, mask, people, cam


@contextmanager
def _scene_context(scene: bpy.types.Scene):
    """Frame changes animate only the context scene; override the context for any other scene.

    Objects shared with the active scene are left animated at the exported scene's frame, so
    afterwards the active scene is re-evaluated at its own frame.
    """
    active = getattr(bpy.context, "scene", None)
    if active is None or active == scene:
        yield
        return
    try:
        with bpy.context.temp_override(scene=scene, view_layer=export_view_layer(scene)):
            yield
    finally:
        active.frame_set(active.frame_current, subframe=active.frame_subframe)


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
                     canvas_size: tuple[int, int] | None = None, reference_downscale_factor: int | None = None,
                     prompt: str = "", seed: int = 0, strength: float = 1.0,
                     background_strength: float | None = None, camera_mode: str = "auto",
                     control_lora: str = "", preset_lora: str = "", trajectory_lora: str = "",
                     bone_maps: Mapping[str, Mapping[str, str]] | None = None, audio: bool = True,
                     progress: ProgressFn | None = None, name: str = "", negative_prompt: str = "",
                     occlusion: bool = True, engine: str = "auto", warn: WarnFn | None = None,
                     ) -> Iterator[tuple[int, int, str]]:
    """Write the shot bundle for frames [frame_start, frame_end] into out_dir, step by step.

    width/height: output video size (multiples of 32). canvas_size: (w, h) of the control canvas,
    the size the control LoRA reads (shot_bundle.reference_canvas_size of its factor; default the
    output size). reference_downscale_factor: sent to the server as an explicit override (None =
    the LoRA file's). targets: collection/object names the model must follow (masked depth);
    armatures: armature names drawn as OpenPose skeletons; bone_maps: {armature name or "*":
    {COCO joint: "bone" or "bone:tail"}} for custom rigs. engine: "auto" (Workbench when an
    OpenGL context works, see gl_probe, else Cycles), "cycles" or "workbench". occlusion: hide
    joints behind a nearer rendered surface. warn: called with each warning (what will be
    missing from the bundle and what to change); default warnings.warn.
    The control strength is sampled here, once per frame (the keyframed panel property, else
    `strength`), and travels in shot.json: a later upload or resume sends exactly that.
    Camera translation, depth and clip range are written in metres (scene Unit Scale applied).
    Yields (done, total, stage); the bundle's shot.json is written by the last step.
    """
    canvas_size = tuple(canvas_size or (width, height))
    _check_args(frame_start, frame_end, width, height, canvas_size, strength, background_strength, camera_mode)
    warn = warn or _warn
    bone_maps = dict(bone_maps or {})
    target_objects, armature_objects = _resolve(scene, targets, armatures, bone_maps, warn)
    engine = choose_engine(engine)
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

    depths, masks, people, entries, strengths = [], [], [], [], []
    view_layer = export_view_layer(scene)
    # The context override encloses the swap so restoring the frame animates this scene too.
    with _scene_context(scene), SettingsSwap() as swap, \
            DepthMaskRenderer(scene, target_objects, cw, ch, swap=swap, engine=engine) as renderer:
        for message in renderer.warnings:
            warn(message)
        for f in frames:
            scene.frame_set(f)
            depth, mask, frame_people, cam = _sample_frame(scene, renderer, view_layer, armature_objects,
                                                           bone_maps, width, height, occlusion)
            # Blender units until here (occlusion compares them); the bundle is in metres.
            entry = frame_entry_in_metres(cam.frame_entry(f), unit_scale)
            value = frame_strength(scene)
            if value is not None:
                strengths.append(value)
            depths.append(depth_in_metres(depth, unit_scale))
            masks.append(mask if target_objects else np.zeros_like(mask))
            people.append(frame_people)
            entries.append(entry)
            yield step(STAGE_RENDER)

    # Pass 2 works on numbers only; the user's settings are already back.
    if target_objects:
        near, far = shot_depth_range(depths, masks, far_level=FAR_TARGET_LEVEL)
    else:  # pose-only shot: nothing masked, keep the camera's clip range for the record
        near, far = float(entries[0]["clip_start"]), float(entries[0]["clip_end"])
    yield step(STAGE_RANGE)

    control = Control(
        kind="depth+pose", lora=control_lora, folder="control", mask_folder="mask", width=cw, height=ch,
        reference_downscale_factor=reference_downscale_factor,
        strength=Strength(value=float(strength), per_frame=strengths if len(strengths) == len(frames) else None,
                          background=None if background_strength is None else float(background_strength)),
        depth_range={"near": float(near), "far": float(far)})
    writer = BundleWriter(out_dir, [control])
    for f, depth, mask, frame_people in zip(frames, depths, masks, people, strict=True):
        canvas = compose_control(depth, mask, near, far, frame_people)
        writer.write_frame(f, [canvas], [mask], frame_people)
        yield step(STAGE_CANVAS)
    shot = Shot(
        name=name or f"{scene.name}_{frame_start:04d}-{frame_end:04d}", width=width, height=height,
        fps=fps_from_scene(scene.render.fps, scene.render.fps_base), frame_start=frame_start, frame_end=frame_end,
        frames=entries, scene=scene.name, prompt=prompt, negative_prompt=negative_prompt, seed=int(seed),
        audio=bool(audio), controls=[control],
        camera=Camera(mode=camera_mode, preset_lora=preset_lora, trajectory_lora=trajectory_lora),
        targets=list(targets), armatures=[a.name for a in armature_objects])
    writer.finish(shot)
    yield step(STAGE_DONE)


def render_frame_canvas(scene: bpy.types.Scene, frame: int, *, targets: Sequence[str], armatures: Sequence[str],
                        width: int, height: int, canvas_size: tuple[int, int] | None = None,
                        bone_maps: Mapping[str, Mapping[str, str]] | None = None, occlusion: bool = True,
                        engine: str = "auto", warn: WarnFn | None = None) -> np.ndarray:
    """The control canvas of one frame, (canvas height, canvas width, 3) uint8, for a preview: ONE
    depth/mask render of `frame`, nothing written to disk. The frame rules (8k+1) are for shots
    sent to the server, so any single frame will do.

    Depth range: this frame's own (shot_depth_range of this frame alone; the camera's clip range
    when there are no targets). A render's canvas uses the range over every frame of its shot,
    which needs a depth render of each of them, the cost this preview exists to avoid; so the
    brightness here can differ a little from the rendered shot's canvas of the same frame. The
    user's settings and current frame are restored afterwards. Arguments as iter_export_shot.
    """
    canvas_size = tuple(canvas_size or (width, height))
    _check_size(width, height, canvas_size)
    warn = warn or _warn
    bone_maps = dict(bone_maps or {})
    target_objects, armature_objects = _resolve(scene, targets, armatures, bone_maps, warn)
    engine = choose_engine(engine)
    unit_scale = float(scene.unit_settings.scale_length)
    cw, ch = canvas_size
    view_layer = export_view_layer(scene)
    with _scene_context(scene), SettingsSwap() as swap, \
            DepthMaskRenderer(scene, target_objects, cw, ch, swap=swap, engine=engine) as renderer:
        for message in renderer.warnings:
            warn(message)
        scene.frame_set(frame)
        depth, mask, people, cam = _sample_frame(scene, renderer, view_layer, armature_objects, bone_maps,
                                                 width, height, occlusion)
    depth = depth_in_metres(depth, unit_scale)
    if target_objects:
        near, far = shot_depth_range([depth], [mask], far_level=FAR_TARGET_LEVEL)
    else:  # pose only: as the export, nothing masked and the camera's clip range
        entry = frame_entry_in_metres(cam.frame_entry(frame), unit_scale)
        mask, near, far = np.zeros_like(mask), float(entry["clip_start"]), float(entry["clip_end"])
    return compose_control(depth, mask, near, far, people)


def export_shot(scene: bpy.types.Scene, out_dir: str | Path, **kwargs) -> Path:
    """Export a shot bundle (same arguments as iter_export_shot) and return its folder."""
    for _ in iter_export_shot(scene, out_dir, **kwargs):
        pass
    return Path(out_dir)
