"""Gather one FrameSample per frame for a canvas kind: only the renders and passes that kind needs.

What each kind renders (core.canvas_kinds.frame_needs):
- depth, depth+pose: depth + mask (Cycles, or Workbench where OpenGL works);
- pose: keypoints only; a depth render only to hide occluded joints (occlusion=True);
- edges: Cycles depth + Normal + per-object Object Index (Workbench has neither pass);
- playblast: Workbench's solid render where OpenGL works (engine "workbench"), else Cycles
  Normal (+ object numbers for object colours), shaded in numpy.

Depth comes back in metres (scene Unit Scale applied), normals in camera space (OpenCV axes),
keypoints in canvas pixels. The user's settings and frame are restored when the iterator ends
or is closed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext

import bpy
import numpy as np

from ..core.bundle import depth_in_metres
from ..core.camera_projection import normals_to_camera
from ..core.canvas_kinds import CanvasOptions, FrameSample, frame_needs
from ..core.hand_face import hand_face_warnings
from ..core.openpose import BONE_MAP_ANY, bone_map_for, check_bone_map, unmapped_rig_warning
from .camera_track import sample_camera
from .depth_mask import DepthMaskRenderer, export_view_layer
from .gl_probe import choose_engine
from .playblast import PlayblastRenderer, studio_lighting, world_colour
from .pose import armature_person
from .settings import SettingsSwap
from .targets import resolve_armatures, resolve_targets

WarnFn = Callable[[str], None]


def default_warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def resolve_scene_objects(scene: bpy.types.Scene, targets: Sequence[str], armatures: Sequence[str],
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


@contextmanager
def scene_context(scene: bpy.types.Scene):
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




def scene_canvas_options(scene: bpy.types.Scene, **choices) -> CanvasOptions:
    """CanvasOptions with the scene's own studio light and world colour (playblast), plus `choices`."""
    return CanvasOptions(**{"lighting": studio_lighting(scene), "background": world_colour(scene), **choices})


def _renderer(scene, kind: str, options: CanvasOptions, targets, width: int, height: int, engine: str,
              occlusion: bool, swap: SettingsSwap):
    """The renderer this kind needs (None for pose without occlusion)."""
    if kind == "playblast" and engine == "workbench":
        return PlayblastRenderer(scene, width, height, options.playblast_colour, swap=swap)
    needs = frame_needs(kind, options)
    passes = {"normal"} if "normals" in needs else set()
    if needs & {"object_ids", "object_colours"}:
        passes.add("object")
    if kind == "pose" and not occlusion:
        return None
    return DepthMaskRenderer(scene, targets, width, height, swap=swap,
                             engine="cycles" if passes else engine, passes=passes)


def iter_clip_samples(scene: bpy.types.Scene, frames: Sequence[int], *, kind: str, width: int, height: int,
                      targets: Sequence[str] = (), armatures: Sequence[str] = (),
                      options: CanvasOptions | None = None, bone_maps: Mapping[str, Mapping[str, str]] | None = None,
                      occlusion: bool = True, engine: str = "auto", warn: WarnFn | None = None
                      ) -> Iterator[FrameSample]:
    """One FrameSample per frame of `frames` for canvas `kind` at width x height (the canvas size,
    e.g. the output size divided by the LoRA's reference_downscale_factor).

    targets, armatures, bone_maps, occlusion, engine, warn: as gather.export.iter_export_shot.
    options: core.canvas_kinds.CanvasOptions (default: scene_canvas_options(scene)). Hands and face
    are gathered for the pose kind only; each armature lacking them gets one warning.
    """
    warn = warn or default_warn
    options = options or scene_canvas_options(scene)
    needs = frame_needs(kind, options)
    bone_maps = dict(bone_maps or {})
    target_set, armature_objects = resolve_scene_objects(scene, targets, armatures, bone_maps, warn)
    hands, face = kind == "pose" and options.hands, kind == "pose" and options.face
    for arm in armature_objects:
        for message in hand_face_warnings(arm.name, [b.name for b in arm.data.bones],
                                          bone_map_for(bone_maps, arm.name), hands, face):
            warn(message)
    engine = choose_engine(engine)
    unit_scale = float(scene.unit_settings.scale_length)
    view_layer = export_view_layer(scene)
    with scene_context(scene), SettingsSwap() as swap:
        renderer = _renderer(scene, kind, options, target_set, width, height, engine, occlusion, swap)
        if renderer is None:
            swap.keep_frame(scene)
        with renderer if renderer is not None else nullcontext():
            for message in getattr(renderer, "warnings", ()):
                warn(message)
            for f in frames:
                scene.frame_set(f)
                yield _sample(scene, renderer, view_layer, armature_objects, bone_maps, width, height, occlusion,
                              hands, face, needs, unit_scale)


def _sample(scene, renderer, view_layer, armature_objects, bone_maps, width: int, height: int, occlusion: bool,
            hands: bool, face: bool, needs: frozenset, unit_scale: float) -> FrameSample:
    depsgraph = view_layer.depsgraph
    cam = sample_camera(scene, width, height, depsgraph)
    blank = np.full((height, width), 1e10, dtype=np.float32)
    depth, mask, normals, object_ids, colours, solid = blank, np.zeros((height, width), bool), None, None, None, None
    if isinstance(renderer, PlayblastRenderer):
        solid = renderer.render()
    elif renderer is not None:
        frame = renderer.render_frame()
        depth, mask = frame.depth, frame.mask
        if frame.normals is not None:
            normals = normals_to_camera(frame.normals, cam.world_to_camera)
        if frame.object_ids is not None:
            object_ids = frame.object_ids
            colours = renderer.object_colours[object_ids] if "object_colours" in needs else None
    people = ()
    if "people" in needs:
        occluder = depth if occlusion and renderer is not None else None  # Blender units, as the joints
        people = tuple(armature_person(arm, depsgraph, cam.intrinsics, cam.world_to_camera,
                                       bone_map_for(bone_maps, arm.name), occluder, hands=hands, face=face)
                       for arm in armature_objects)
    return FrameSample(depth_in_metres(depth, unit_scale), mask, people, normals, object_ids, colours, solid,
                       cam.intrinsics)
