"""Is Workbench (OpenGL/EGL) rendering possible in this Blender? Probed once, in a subprocess.

Headless Blender without a usable EGL aborts the whole process in C when Workbench or EEVEE
renders: not catchable in Python. So the first question is asked of a throwaway child process
(8x8 px render of one plane, depth checked); the answer is cached for the session.
"""

from __future__ import annotations

import os
import subprocess
import sys

import bpy

# Overrides the probe: "cycles" forces the slow path, "workbench" skips the probe.
ENGINE_ENV = "LTX_EXPORT_ENGINE"
PROBE_TIMEOUT_S = 120

_PROBE = r"""
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
s = bpy.context.scene
m = bpy.data.meshes.new("p"); m.from_pydata([(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)], [], [(0, 1, 2, 3)])
s.collection.objects.link(bpy.data.objects.new("p", m))
c = bpy.data.objects.new("c", bpy.data.cameras.new("c")); c.location = (0, 0, 5)
s.collection.objects.link(c); s.camera = c
s.render.engine = "BLENDER_WORKBENCH"; s.render.resolution_x = s.render.resolution_y = 8
bpy.ops.render.render()
print("LTX_GL_PROBE_OK")
"""

_cached: bool | None = None


def _probe_command() -> list[str] | None:
    if bpy.app.binary_path and not bpy.app.binary_path.endswith(("python", "python3")):
        return [bpy.app.binary_path, "-b", "--factory-startup", "--python-expr", _PROBE]
    if sys.executable:  # bpy as a Python module: the same interpreter can import it
        return [sys.executable, "-c", _PROBE]
    return None


def workbench_available() -> bool:
    """True when Workbench can render here (always in the Blender UI; probed once when headless)."""
    global _cached
    forced = os.environ.get(ENGINE_ENV, "").lower()
    if forced in ("cycles", "workbench"):
        return forced == "workbench"
    if not bpy.app.background:
        return True  # the UI has a GL context
    if _cached is None:
        cmd = _probe_command()
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S) if cmd else None
            _cached = bool(run and run.returncode == 0 and "LTX_GL_PROBE_OK" in run.stdout)
        except (OSError, subprocess.TimeoutExpired):
            _cached = False
    return _cached


def choose_engine(engine: str = "auto") -> str:
    """'auto' -> 'workbench' when available, else 'cycles'; 'cycles'/'workbench' pass through."""
    if engine not in ("auto", "cycles", "workbench"):
        raise ValueError(f"engine must be 'auto', 'cycles' or 'workbench' (got {engine!r})")
    if engine == "auto":
        return "workbench" if workbench_available() else "cycles"
    return engine
