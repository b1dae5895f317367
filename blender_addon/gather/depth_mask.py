"""Render planar depth and the target mask of one frame, cheaply, with Cycles or Workbench.

Cycles (works everywhere, ~0.2 s/frame at 512x288): 1 sample, no denoising, no bounces and a
0.01 px box filter sample each pixel at its centre, so the Object Index pass is exactly an
object's pass_index and mask edges are exact. Each object gets its core.mask_plan id as
pass_index (targets 1, objects shared by target and non-target instances 2, the rest 0).
Workbench (needs OpenGL/EGL, see gl_probe; several times faster): no Object Index pass, so the
ids are drawn as flat object colours (mask_plan.ID_COLOURS), anti-aliasing off.
Frames showing a shared object are rendered a second time without its non-target places.
Linked (library) objects are set like local ones: Blender allows it in memory and the values
are restored; an object that refuses is named in a warning. Blender writes a multilayer EXR
that core.exr reads back, uncompressed (EXR_CODEC): the file is a scratch copy overwritten every frame
and deleted on exit, and ZIP cost ~60 ms more per 768x512 frame to write and read than it saved. All settings are swapped on the user's scene and restored (SettingsSwap).

Optional passes (Cycles only, nothing extra is rendered or read unless asked for): "normal" turns
on the Normal pass (world-space unit normals, facing the camera); "object" numbers every object
(1, 2, ... by name, 0 = nothing) and writes pass_index = mask id + OBJECT_STRIDE * number, so the
one Object Index pass carries both; `object_colours[number]` is that object's viewport colour.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..core.exr import read_exr
from ..core.mask_plan import ID_COLOURS, SHARED_ID, TARGET_ID, MaskPlan, ids_from_colour, resolve_shared
from .settings import SettingsSwap

DEPTH_PASS = "Depth.Z"
INDEX_PASS = "Object Index.X"
NORMAL_PASSES = ("Normal.X", "Normal.Y", "Normal.Z")
RED_PASS, BLUE_PASS, ALPHA_PASS = "Combined.R", "Combined.B", "Combined.A"
ENGINES = ("cycles", "workbench")
EXTRA_PASSES = ("normal", "object")
# The per-frame EXR is an intermediate in a temporary folder: uncompressed is faster to write and read
# (bench/pipeline.py measures ZIP against NONE); an instance may set `exr_codec` to compare.
EXR_CODEC = "NONE"
OBJECT_STRIDE = 4  # > every mask id (core.mask_plan: 0, 1, 2)
_MAX_PASS_INDEX = 32767  # Object.pass_index's hard maximum


@dataclass(frozen=True, eq=False)
class RenderedFrame:
    """One frame's passes, top image row first: depth (H, W) float32 planar camera Z in Blender
    units (1e10 where nothing was hit), mask (H, W) bool; with passes: normals (H, W, 3) float32
    world-space unit normals (0 where nothing was hit), object_ids (H, W) int32 (0 = nothing)."""

    depth: np.ndarray
    mask: np.ndarray
    normals: np.ndarray | None = None
    object_ids: np.ndarray | None = None


def export_view_layer(scene: bpy.types.Scene) -> bpy.types.ViewLayer:
    """The view layer the export renders: the active one when `scene` is the context scene."""
    ctx = bpy.context
    if getattr(ctx, "scene", None) == scene and getattr(ctx, "view_layer", None) is not None:
        return ctx.view_layer
    return scene.view_layers[0]


class DepthMaskRenderer:
    """Set the scene up for depth + mask renders at (width, height) px; `render()` one frame.

    Use as a context manager: settings and pass indices are restored on exit. `targets` (a
    gather.targets.TargetSet, or a plain set of objects masked wherever they render) says whose
    pixels form the mask (core of the "parallel canvas"). `warnings` lists what could not be done.
    passes: any of EXTRA_PASSES ("normal", "object"), Cycles only; `render_frame()` returns them.
    """

    exr_codec = EXR_CODEC

    def __init__(self, scene: bpy.types.Scene, targets, width: int, height: int,
                 swap: SettingsSwap | None = None, engine: str = "cycles", passes: Iterable[str] = ()) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r})")
        self.passes = frozenset(passes)
        unknown = sorted(self.passes - set(EXTRA_PASSES))
        if unknown:
            raise ValueError(f"unknown pass(es) {', '.join(map(repr, unknown))}; use any of {', '.join(EXTRA_PASSES)}")
        if self.passes and engine != "cycles":
            raise ValueError(f"the {', '.join(sorted(self.passes))} pass(es) come from Cycles (Workbench renders "
                             "no Normal or Object Index pass); use engine='cycles'")
        self.engine = engine
        # object number -> linear RGB viewport colour (row 0: nothing was hit); filled with "object"
        self.object_colours = np.zeros((1, 3), dtype=np.float32)
        self.scene = scene
        self.view_layer = export_view_layer(scene)
        self.width, self.height = int(width), int(height)
        if isinstance(targets, set | frozenset):
            self._plan = MaskPlan(frozenset(targets), frozenset(), frozenset(), frozenset())
            self._exclude: frozenset = frozenset()
            self.warnings: list[str] = []
        else:
            self._plan, self._exclude = targets.plan, targets.exclude_collections
            self.warnings = list(targets.warnings)
        # (owner, attr, value during the export) toggled to True for the second render
        self._second: list[tuple[object, str, bool]] = []
        self._own_swap = swap is None
        self._swap = swap or SettingsSwap()
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> DepthMaskRenderer:
        try:
            self._configure()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close(exc_type is None)

    def _close(self, raise_errors: bool = False) -> None:
        try:
            if self._own_swap:
                self._swap.__exit__(None if raise_errors else RuntimeError, None, None)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def _configure(self) -> None:
        s, scene = self._swap, self.scene
        s.keep_frame(scene)
        render = scene.render
        s.set(render, "resolution_x", self.width)
        s.set(render, "resolution_y", self.height)
        s.set(render, "resolution_percentage", 100)
        for attr, value in (("use_border", False), ("use_motion_blur", False), ("use_compositing", False),
                            ("use_sequencer", False), ("use_single_layer", True), ("use_multiview", False)):
            s.set(render, attr, value)
        if self.engine == "cycles":
            self._configure_cycles()
        else:
            self._configure_workbench()
        s.set_image_settings(render.image_settings, media_type="MULTI_LAYER_IMAGE",
                             file_format="OPEN_EXR_MULTILAYER", color_depth="32", exr_codec=self.exr_codec)
        vl = self.view_layer
        s.set(vl, "use", True)
        s.set(vl, "use_pass_z", True)
        self._tmp = tempfile.TemporaryDirectory(prefix="ltx_depth_")
        s.set(render, "filepath", str(Path(self._tmp.name) / "frame.exr"))
        self._prepare_second_render()

    def _set_ids(self, attr: str, value_of) -> None:
        """Give every object its mask id (pass_index or colour, value_of(object)); name the ones that refuse."""
        refused = []
        for ob in bpy.data.objects:
            want = value_of(ob)
            current = getattr(ob, attr)
            if (tuple(current) if attr == "color" else current) == want:
                continue
            try:
                self._swap.set(ob, attr, want)
            except (AttributeError, TypeError, RuntimeError):  # linked data in some Blender versions
                refused.append(ob)
        if refused:
            names = ", ".join(f"{o.name!r}" + (f" (linked from {o.library.filepath})" if o.library else "")
                              for o in refused[:8])
            self.warnings.append(
                f"could not set the mask {attr} of {len(refused)} object(s): {names}; their own value decides "
                f"whether they are masked. Make them local (Object > Relations > Make Local) or add a "
                f"library override, then export again")

    def _prepare_second_render(self) -> None:
        """Record what the second render (shared objects) switches off; the swap restores it on error."""
        if not self._plan.needs_second_render:
            return
        for ob in sorted(self._plan.hide_instancers, key=lambda o: o.name):
            self._swap.remember(ob, "hide_render")
            self._second.append((ob, "hide_render", ob.hide_render))
        todo = [self.view_layer.layer_collection]
        while todo:
            lc = todo.pop()
            todo.extend(lc.children)
            if lc.collection in self._exclude and not lc.exclude:
                self._swap.remember(lc, "exclude")
                self._second.append((lc, "exclude", False))

    def _configure_cycles(self) -> None:
        s, scene = self._swap, self.scene
        s.set(scene.render, "engine", "CYCLES")
        s.set(scene.render, "film_transparent", False)
        s.set(scene.render, "use_persistent_data", True)  # keep the BVH between frames
        for attr, value in (("device", "CPU"), ("samples", 1), ("use_denoising", False),
                            ("use_adaptive_sampling", False), ("max_bounces", 0), ("pixel_filter_type", "BOX"),
                            ("filter_width", 0.01), ("use_animated_seed", False), ("time_limit", 0.0)):
            s.set(scene.cycles, attr, value)
        s.set(self.view_layer, "use_pass_object_index", True)
        s.set(self.view_layer, "samples", 0)  # 0 = the scene's sample count
        if "normal" in self.passes:
            s.set(self.view_layer, "use_pass_normal", True)
        plan = self._plan
        if "object" not in self.passes:
            self._set_ids("pass_index", plan.id_of)  # the user's own indices come back on restore
            return
        objects = sorted(bpy.data.objects, key=lambda o: o.name_full)
        if OBJECT_STRIDE * len(objects) + OBJECT_STRIDE - 1 > _MAX_PASS_INDEX:
            raise ValueError(f"the scene has {len(objects)} objects; per-object ids (edges, object colours) work "
                             f"up to {_MAX_PASS_INDEX // OBJECT_STRIDE - 1}; hide or delete unused objects")
        number = {ob: k for k, ob in enumerate(objects, start=1)}
        self.object_colours = np.zeros((len(objects) + 1, 3), dtype=np.float32)
        for ob, k in number.items():
            self.object_colours[k] = tuple(ob.color)[:3]
        self._set_ids("pass_index", lambda ob: plan.id_of(ob) + OBJECT_STRIDE * number[ob])

    def _configure_workbench(self) -> None:
        s, scene = self._swap, self.scene
        s.set(scene.render, "engine", "BLENDER_WORKBENCH")
        s.set(scene.render, "film_transparent", True)  # background: alpha 0, colour 0
        s.set(scene.display, "render_aa", "OFF")  # one sample per pixel: exact mask edges
        shading = scene.display.shading
        for attr, value in (("light", "FLAT"), ("color_type", "OBJECT"), ("show_cavity", False),
                            ("show_shadows", False), ("show_object_outline", False), ("show_xray", False),
                            ("show_specular_highlight", False), ("use_dof", False),
                            ("show_backface_culling", False)):
            s.set(shading, attr, value)
        for attr, value in (("view_transform", "Standard"), ("look", "None"), ("exposure", 0.0), ("gamma", 1.0)):
            s.set(scene.view_settings, attr, value)
        self._set_ids("color", lambda ob: ID_COLOURS[self._plan.id_of(ob)])

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Render the scene's current frame: depth (H, W) float32 in Blender units (planar camera Z,
        1e10 where nothing was hit) and mask (H, W) bool (True on target pixels). Top row first."""
        frame = self.render_frame()
        return frame.depth, frame.mask

    def render_frame(self) -> RenderedFrame:
        """Render the scene's current frame with the passes asked for (see RenderedFrame)."""
        if self._tmp is None:
            raise RuntimeError("DepthMaskRenderer.render() must be called inside its `with` block")
        if self.scene.camera is None:
            raise ValueError(f"scene {self.scene.name!r} has no active camera; set one in Scene Properties > Camera")
        depth, ids, normals, objects = self._render_ids()
        shared = ids == SHARED_ID
        if not shared.any():
            return RenderedFrame(depth, ids == TARGET_ID, normals, objects)
        if not self._second:  # no non-target copy can be removed (TargetSet.warnings says so): all count
            return RenderedFrame(depth, (ids == TARGET_ID) | shared, normals, objects)
        for owner, attr, _ in self._second:
            setattr(owner, attr, True)
        try:
            depth_without, ids_without, _, _ = self._render_ids()
        finally:
            for owner, attr, value in self._second:
                setattr(owner, attr, value)
            if any(attr == "exclude" for _, attr, _ in self._second):
                self.view_layer.update()  # re-included collections: rebuild the view layer's depsgraph
        return RenderedFrame(depth, resolve_shared(ids, depth, ids_without, depth_without), normals, objects)

    def _render_ids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(depth, mask ids, world normals or None, object numbers or None) of one render."""
        path = Path(self._tmp.name) / "frame.exr"
        path.unlink(missing_ok=True)
        # scene= renders this scene without making it the active one.
        bpy.ops.render.render(write_still=True, scene=self.scene.name, layer=self.view_layer.name)
        if not path.exists():
            raise RuntimeError(f"Blender did not write the depth render {path}; check the console for errors")
        channels = read_exr(path)
        prefix = f"{self.view_layer.name}."
        normals = objects = None
        try:
            depth = channels[prefix + DEPTH_PASS]
            if self.engine == "cycles":
                raw = np.rint(channels[prefix + INDEX_PASS]).astype(np.int32)
                if "object" in self.passes:
                    ids, objects = (raw % OBJECT_STRIDE).astype(np.int8), raw // OBJECT_STRIDE
                else:
                    ids = raw.astype(np.int8)
                if "normal" in self.passes:
                    normals = np.stack([channels[prefix + name] for name in NORMAL_PASSES], axis=-1)
            else:
                ids = ids_from_colour(channels[prefix + RED_PASS], channels[prefix + BLUE_PASS],
                                      channels[prefix + ALPHA_PASS])
        except KeyError as exc:
            raise RuntimeError(f"render lacks pass {exc}; got {sorted(channels)}") from None
        return depth, ids, normals, objects
