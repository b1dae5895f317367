"""Render the finished frame (the scene's materials, lights, world and colour management) for a
training target, with Cycles on the CPU (few samples: a target only has to show what the scene
looks like) or EEVEE where OpenGL works. The user's settings are swapped and restored (SettingsSwap).

Left as the user has them: materials, lights, world, view transform and look. Switched off because
they are not the scene's picture: the sequencer (it would render strips instead of the scene), the
compositor, motion blur, border and multiview.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np

from ..core.png import read_png
from .depth_mask import export_view_layer
from .settings import SettingsSwap

RENDER_ENGINES = {"cycles": "CYCLES", "eevee": "BLENDER_EEVEE"}


class BeautyRenderer:
    """`with BeautyRenderer(scene, width, height) as r: image = r.render()` for the current frame."""

    def __init__(self, scene: bpy.types.Scene, width: int, height: int, samples: int = 16,
                 engine: str = "cycles", swap: SettingsSwap | None = None) -> None:
        if engine not in RENDER_ENGINES:
            raise ValueError(f"render engine must be one of {', '.join(RENDER_ENGINES)} (got {engine!r})")
        if samples < 1:
            raise ValueError(f"samples must be at least 1 (got {samples})")
        self.scene, self.width, self.height = scene, int(width), int(height)
        self.samples, self.engine = int(samples), engine
        self.view_layer = export_view_layer(scene)
        self._own_swap = swap is None
        self._swap = swap or SettingsSwap()
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> BeautyRenderer:
        try:
            self._configure()
        except BaseException:
            self._close(False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close(exc_type is None)

    def _close(self, raise_errors: bool) -> None:
        try:
            if self._own_swap:
                self._swap.__exit__(None if raise_errors else RuntimeError, None, None)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def _configure(self) -> None:
        s, scene, render = self._swap, self.scene, self.scene.render
        s.keep_frame(scene)
        for attr, value in (("resolution_x", self.width), ("resolution_y", self.height),
                            ("resolution_percentage", 100), ("use_border", False), ("use_motion_blur", False),
                            ("use_compositing", False), ("use_sequencer", False), ("use_single_layer", True),
                            ("use_multiview", False), ("film_transparent", False),
                            ("engine", RENDER_ENGINES[self.engine])):
            s.set(render, attr, value)
        if self.engine == "cycles":
            for attr, value in (("device", "CPU"), ("samples", self.samples), ("use_denoising", False),
                                ("use_adaptive_sampling", False), ("use_animated_seed", True), ("time_limit", 0.0)):
                s.set(scene.cycles, attr, value)
            s.set(self.view_layer, "samples", 0)  # 0 = the scene's sample count
        else:
            s.set(scene.eevee, "taa_render_samples", self.samples)
        s.set(self.view_layer, "use", True)
        s.set_image_settings(render.image_settings, media_type="IMAGE", file_format="PNG", color_mode="RGB",
                             color_depth="8")
        self._tmp = tempfile.TemporaryDirectory(prefix="ltx_beauty_")
        s.set(render, "filepath", str(Path(self._tmp.name) / "frame.png"))

    def render(self) -> np.ndarray:
        """The scene's current frame as (height, width, 3) uint8 sRGB (the scene's view transform)."""
        if self._tmp is None:
            raise RuntimeError("BeautyRenderer.render() must be called inside its `with` block")
        if self.scene.camera is None:
            raise ValueError(f"scene {self.scene.name!r} has no active camera; set one in Scene Properties > Camera")
        path = Path(self._tmp.name) / "frame.png"
        path.unlink(missing_ok=True)
        bpy.ops.render.render(write_still=True, scene=self.scene.name, layer=self.view_layer.name)
        if not path.exists():
            raise RuntimeError(f"Blender did not write the render {path}; check the console for errors")
        image = read_png(path)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        return np.ascontiguousarray(image[:, :, :3])
