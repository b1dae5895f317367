"""Playblast inputs from the scene: the studio light and world colour Solid mode uses, and, where
OpenGL works (gather.gl_probe), Workbench's own solid render of a frame.

The Workbench render is set up to match core.playblast's numpy shading (the Cycles path): studio
lighting with the scene's studio light, specular highlights, cavity, shadows and outlines off,
grey 0.8 (SINGLE) or object colours (OBJECT), no anti-aliasing, the world colour behind. It is
read back linear from a multilayer EXR; core.playblast encodes sRGB. Settings are swapped on the
user's scene and restored (SettingsSwap).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np

from ..core.exr import read_exr
from ..core.playblast import DEFAULT_LIGHTING, GREY, SolidLight, StudioLighting
from .depth_mask import EXR_CODEC, export_view_layer
from .settings import SettingsSwap

COMBINED = ("Combined.R", "Combined.G", "Combined.B")


def studio_lighting(scene: bpy.types.Scene) -> StudioLighting:
    """The scene's Solid-mode studio light (Render Properties > Lighting > Studio), as numbers.
    Falls back to Blender's "Default" values when the preferences do not have it."""
    name = scene.display.shading.studio_light
    light = bpy.context.preferences.studio_lights.get(name)
    if light is None or light.type != "STUDIO":
        return DEFAULT_LIGHTING
    lights = tuple(SolidLight(tuple(sl.direction), tuple(sl.diffuse_color), float(sl.smooth))
                   for sl in light.solid_lights if sl.use)
    return StudioLighting(tuple(light.light_ambient), lights)


def world_colour(scene: bpy.types.Scene) -> tuple[float, float, float]:
    """Linear RGB behind everything in a Workbench render: the world's viewport colour (black without a world)."""
    return tuple(scene.world.color) if scene.world is not None else (0.0, 0.0, 0.0)


class PlayblastRenderer:
    """Workbench solid renders at (width, height) px; use as a context manager, `render()` per frame.

    colour: "grey" (Workbench's single colour 0.8) or "object" (each object's viewport colour).
    Needs OpenGL/EGL: check gather.gl_probe.workbench_available() first (without it the process aborts).
    """

    exr_codec = EXR_CODEC  # the per-frame EXR is a scratch file: uncompressed (see depth_mask.EXR_CODEC)

    def __init__(self, scene: bpy.types.Scene, width: int, height: int, colour: str = "grey",
                 swap: SettingsSwap | None = None) -> None:
        if colour not in ("grey", "object"):
            raise ValueError(f"colour must be 'grey' or 'object' (got {colour!r})")
        self.scene, self.width, self.height, self.colour = scene, int(width), int(height), colour
        self.view_layer = export_view_layer(scene)
        self._own_swap = swap is None
        self._swap = swap or SettingsSwap()
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> PlayblastRenderer:
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
        for attr, value in (("resolution_x", self.width), ("resolution_y", self.height), ("resolution_percentage", 100),
                            ("use_border", False), ("use_motion_blur", False), ("use_compositing", False),
                            ("use_sequencer", False), ("use_single_layer", True), ("use_multiview", False),
                            ("engine", "BLENDER_WORKBENCH"), ("film_transparent", False)):
            s.set(render, attr, value)
        s.set(scene.display, "render_aa", "OFF")  # one sample at each pixel centre, like the Cycles passes
        shading = scene.display.shading
        for attr, value in (("light", "STUDIO"), ("color_type", "SINGLE" if self.colour == "grey" else "OBJECT"),
                            ("single_color", (GREY, GREY, GREY)), ("show_specular_highlight", False),
                            ("show_cavity", False), ("show_shadows", False), ("show_object_outline", False),
                            ("show_xray", False), ("use_dof", False), ("show_backface_culling", False),
                            ("use_world_space_lighting", False)):
            s.set(shading, attr, value)
        s.set_image_settings(render.image_settings, media_type="MULTI_LAYER_IMAGE",
                             file_format="OPEN_EXR_MULTILAYER", color_depth="32", exr_codec=self.exr_codec)
        s.set(self.view_layer, "use", True)
        self._tmp = tempfile.TemporaryDirectory(prefix="ltx_playblast_")
        s.set(render, "filepath", str(Path(self._tmp.name) / "frame.exr"))

    def render(self) -> np.ndarray:
        """(H, W, 3) float32 linear RGB of the scene's current frame, top row first."""
        if self._tmp is None:
            raise RuntimeError("PlayblastRenderer.render() must be called inside its `with` block")
        if self.scene.camera is None:
            raise ValueError(f"scene {self.scene.name!r} has no active camera; set one in Scene Properties > Camera")
        path = Path(self._tmp.name) / "frame.exr"
        path.unlink(missing_ok=True)
        bpy.ops.render.render(write_still=True, scene=self.scene.name, layer=self.view_layer.name)
        if not path.exists():
            raise RuntimeError(f"Blender did not write the playblast render {path}; check the console for errors")
        channels = read_exr(path)
        prefix = f"{self.view_layer.name}."
        try:
            return np.stack([channels[prefix + name] for name in COMBINED], axis=-1)
        except KeyError as exc:
            raise RuntimeError(f"render lacks pass {exc}; got {sorted(channels)}") from None
