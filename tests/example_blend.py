"""The example scene saved as a .blend and a tiny model beside it, for tests that run the command
line on a file as a farm would (tests/test_render_animation.py, tests/test_farm_templates.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = """
import sys, bpy
from blender_addon.example_scene import build_example_scene
build_example_scene(frames=int(sys.argv[2]), width=128, height=96)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
"""


def example_blend_and_model(root: Path, frames: int) -> tuple[Path, Path]:
    """(walk.blend with `frames` frames, a tiny LTX-2 folder), both under root. Blender runs in its own
    process: bpy keeps one file open per process."""
    from render_backend.engine.ltx2.test_model import make_test_model

    blend = root / "walk.blend"
    subprocess.run([sys.executable, "-c", BUILD, str(blend), str(frames)], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    return blend, make_test_model(root / "tiny-ltx2")
