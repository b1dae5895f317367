"""The "one format, many doors" promise: a bundle exported from a .blend by the add-on's CLI
renders offline with `render-backend render`, no server, and the result decodes to the shot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from render_backend.media import probe_mp4, probe_wav  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILD = """
import sys, bpy
from blender_addon.example_scene import build_example_scene
build_example_scene(frames=9, width=128, height=96)
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
"""


def _run(*cmd, timeout=300):
    run = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run.stdout


@pytest.mark.slow
@pytest.mark.blender
def test_exported_bundle_renders_offline_with_overrides(tmp_path):
    from render_backend.engine.ltx2.test_model import make_test_model

    model = make_test_model(tmp_path / "tiny-ltx2")
    blend, bundle, out = tmp_path / "shot.blend", tmp_path / "bundle", tmp_path / "render"
    _run("-c", BUILD, str(blend))
    _run("-m", "blender_addon.cli", "export", str(blend), "--out", str(bundle), "--targets", "Actors",
         "--armatures", "Walker", "--prompt", "a man walks", "--quiet")
    printed = _run("-m", "render_backend.cli", "render", str(bundle), "--out", str(out), "--model", str(model),
                   "--control-lora", "control", "--seed", "11", "--steps", "2", "--stages", "1")
    mp4 = next(out.glob("*.mp4"))
    info = probe_mp4(mp4)
    assert (info.frames, info.width, info.height, float(info.fps)) == (9, 128, 96, 24.0)
    assert info.audio_codec == "aac"
    assert abs(probe_wav(next(out.glob("*.wav")))[3] - 9 / 24) < 1 / 24
    sidecar = json.loads(next(out.glob("*.json")).read_text())
    assert sidecar["engine"]["seed"] == 11 and sidecar["engine"]["num_inference_steps"] == 2
    assert [lo["name"] for lo in sidecar["engine"]["loras"]][:1] == ["control"]
    assert sidecar["camera"]["move"] == "dolly_zoom" and str(mp4) in printed
