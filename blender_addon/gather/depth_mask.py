"""Render planar depth and the target mask of one frame, cheaply, with Cycles or Workbench.

Cycles (works everywhere, ~0.2 s/frame at 512x288): 1 sample, no denoising, no bounces and a
0.01 px box filter sample each pixel at its centre, so the Object Index pass is exactly 0 or 1
and mask edges are exact. Targets get pass_index 1, every other object 0.
Workbench (needs OpenGL/EGL, see gl_probe; several times faster): no Object Index pass, so the
mask is drawn as flat object colours, targets white and the rest black, anti-aliasing off.
Blender writes a multilayer EXR that core.exr reads back. All settings are swapped on the
user's scene and restored (SettingsSwap).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np

from ..core.exr import read_exr
from .settings import SettingsSwap

DEPTH_PASS = "Depth.Z"
INDEX_PASS = "Object Index.X"
RED_PASS, ALPHA_PASS = "Combined.R", "Combined.A"
ENGINES = ("cycles", "workbench")


def export_view_layer(scene: bpy.types.Scene) -> bpy.types.ViewLayer:
    """The view layer the export renders: the active one when `scene` is the context scene."""
    ctx = bpy.context
    if getattr(ctx, "scene", None) == scene and getattr(ctx, "view_layer", None) is not None:
        return ctx.view_layer
    return scene.view_layers[0]


class DepthMaskRenderer:
    """Set the scene up for depth + mask renders at (width, height) px; `render()` one frame.

    Use as a context manager: settings and pass indices are restored on exit. `targets` are
    the objects whose pixels form the mask (core of the "parallel canvas").
    """

    def __init__(self, scene: bpy.types.Scene, targets: set, width: int, height: int,
                 swap: SettingsSwap | None = None, engine: str = "cycles") -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r})")
        self.engine = engine
        self.scene = scene
        self.view_layer = export_view_layer(scene)
        self.width, self.height = int(width), int(height)
        self._targets = targets
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
                             file_format="OPEN_EXR_MULTILAYER", color_depth="32", exr_codec="ZIP")
        vl = self.view_layer
        s.set(vl, "use", True)
        s.set(vl, "use_pass_z", True)
        self._tmp = tempfile.TemporaryDirectory(prefix="ltx_depth_")
        s.set(render, "filepath", str(Path(self._tmp.name) / "frame.exr"))

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
        # Only the targets carry index 1 (the user's own indices come back on restore).
        for ob in bpy.data.objects:
            want = 1 if ob in self._targets else 0
            if ob.pass_index != want and ob.library is None:
                s.set(ob, "pass_index", want)

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
        white, black = (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 1.0)
        for ob in bpy.data.objects:
            want = white if ob in self._targets else black
            if tuple(ob.color) != want and ob.library is None:
                s.set(ob, "color", want)

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Render the scene's current frame: depth (H, W) float32 metres (planar camera Z,
        1e10 where nothing was hit) and mask (H, W) bool (True on target pixels). Top row first."""
        if self._tmp is None:
            raise RuntimeError("DepthMaskRenderer.render() must be called inside its `with` block")
        if self.scene.camera is None:
            raise ValueError(f"scene {self.scene.name!r} has no active camera; set one in Scene Properties > Camera")
        path = Path(self._tmp.name) / "frame.exr"
        path.unlink(missing_ok=True)
        # scene= renders this scene without making it the active one.
        bpy.ops.render.render(write_still=True, scene=self.scene.name, layer=self.view_layer.name)
        if not path.exists():
            raise RuntimeError(f"Blender did not write the depth render {path}; check the console for errors")
        channels = read_exr(path)
        prefix = f"{self.view_layer.name}."
        try:
            depth = channels[prefix + DEPTH_PASS]
            if self.engine == "cycles":
                mask = np.abs(channels[prefix + INDEX_PASS] - 1.0) < 0.5
            else:
                mask = (channels[prefix + RED_PASS] > 0.5) & (channels[prefix + ALPHA_PASS] > 0.5)
        except KeyError as exc:
            raise RuntimeError(f"render lacks pass {exc}; got {sorted(channels)}") from None
        return depth, mask
