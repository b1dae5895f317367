"""Is Workbench (OpenGL/EGL) rendering possible in this Blender? Probed once, in a subprocess.

Headless Blender without a usable EGL aborts the whole process in C when Workbench or EEVEE
renders: not catchable in Python. So the first question is asked of a throwaway child process:
an 8x8 px Workbench render of a plane 5 m from the camera, written as a multilayer EXR; the
probe passes only when its Depth pass reads 5 m at the centre and "nothing hit" in a corner
(a software GL that renders but draws nothing fails too). The answer is kept for the session and
on disk across runs (core/probe_cache.py: keyed by Blender, Python, display environment and EGL
vendor files; a failed verdict for an hour, an inconclusive one never), so only the first export
on a machine pays for the child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import bpy

from ..core import probe_cache

# Overrides the probe: "cycles" forces the slow path, "workbench" skips the probe.
ENGINE_ENV = "LTX_EXPORT_ENGINE"
PROBE_TIMEOUT_S = 120

# {exr_py} and {out} are filled in: this package's EXR reader (loaded by path, as the child has
# no add-on package) and the file to render to.
_PROBE = r"""
import importlib.util, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
s = bpy.context.scene
m = bpy.data.meshes.new("p"); m.from_pydata([(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)], [], [(0, 1, 2, 3)])
s.collection.objects.link(bpy.data.objects.new("p", m))
c = bpy.data.objects.new("c", bpy.data.cameras.new("c")); c.location = (0, 0, 5)
s.collection.objects.link(c); s.camera = c
s.render.engine = "BLENDER_WORKBENCH"; s.render.resolution_x = s.render.resolution_y = 8
s.render.resolution_percentage = 100; s.view_layers[0].use_pass_z = True
f = s.render.image_settings; f.media_type = "MULTI_LAYER_IMAGE"; f.file_format = "OPEN_EXR_MULTILAYER"
f.color_depth = "32"; s.render.filepath = {out!r}
bpy.ops.render.render(write_still=True)
spec = importlib.util.spec_from_file_location("ltx_probe_exr", {exr_py!r})
exr = importlib.util.module_from_spec(spec); spec.loader.exec_module(exr)
z = exr.read_exr({out!r})[s.view_layers[0].name + ".Depth.Z"]
if abs(float(z[4, 4]) - 5.0) < 1e-3 and float(z[0, 0]) > 1e9:
    print("LTX_GL_PROBE_OK")
else:
    print("LTX_GL_PROBE_BAD_DEPTH", z[4, 4], z[0, 0])
"""
_EXR_PY = Path(__file__).resolve().parents[1] / "core" / "exr.py"

_cached: bool | None = None


def _probe_command(out: str) -> list[str] | None:
    script = _PROBE.format(exr_py=str(_EXR_PY), out=out)
    if bpy.app.binary_path and not bpy.app.binary_path.endswith(("python", "python3")):
        return [bpy.app.binary_path, "-b", "--factory-startup", "--python-expr", script]
    if sys.executable:  # bpy as a Python module: the same interpreter can import it
        return [sys.executable, "-c", script]
    return None


def probe_key() -> str:
    """The on-disk cache key of this Blender, Python and display environment."""
    return probe_cache.probe_key(bpy.app.version_string, bpy.app.binary_path or "", sys.executable or "")


def run_probe() -> bool | None:
    """Ask a child process: True (Workbench renders right), False (it crashed or drew the wrong depth),
    None (inconclusive: the child could not start or timed out)."""
    with tempfile.TemporaryDirectory(prefix="ltx_gl_probe_") as tmp:
        cmd = _probe_command(str(Path(tmp) / "probe.exr"))
        if not cmd:
            return None
        try:  # a crash (abort in C) or a wrong depth means "use Cycles"
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return run.returncode == 0 and "LTX_GL_PROBE_OK" in run.stdout


def workbench_available() -> bool:
    """True when Workbench can render here (always in the Blender UI; probed when headless, the
    verdict kept for the session and on disk)."""
    global _cached
    forced = os.environ.get(ENGINE_ENV, "").lower()
    if forced in ("cycles", "workbench"):
        return forced == "workbench"
    if not bpy.app.background:
        return True  # the UI has a GL context
    if _cached is None:
        key = probe_key()
        _cached = probe_cache.read_verdict(key)
        if _cached is None:
            verdict = run_probe()
            if verdict is not None:
                probe_cache.write_verdict(key, verdict)
            _cached = bool(verdict)
    return _cached


def choose_engine(engine: str = "auto") -> str:
    """'auto' -> 'workbench' when available, else 'cycles'; 'cycles'/'workbench' pass through."""
    if engine not in ("auto", "cycles", "workbench"):
        raise ValueError(f"engine must be 'auto', 'cycles' or 'workbench' (got {engine!r})")
    if engine == "auto":
        return "workbench" if workbench_available() else "cycles"
    return engine
