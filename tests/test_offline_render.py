"""The "one format, many doors" promise: a bundle exported from a .blend by the add-on's CLI
renders offline with `render-backend render`, no server, and the result decodes to the shot."""

from __future__ import annotations

import json
import os
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
    # One torch thread everywhere (this process's server too): the same arithmetic, bit for bit.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         env=env)
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


def _frames(mp4: Path):
    import av
    import numpy as np

    with av.open(str(mp4)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.slow
@pytest.mark.blender
def test_one_bundle_renders_the_same_offline_and_through_a_server(tmp_path):
    """The bundle is the one seam: `render-backend render BUNDLE` and `blender_addon.cli submit BUNDLE`
    to a server build the same request, so the same seed gives the same video, frame for frame."""
    import numpy as np
    import torch

    from render_backend.engine.ltx2.engine import LTX2Engine
    from render_backend.engine.ltx2.test_model import make_test_model
    from render_backend.server.app import BackgroundServer
    from render_backend.server.config import ServerConfig

    model = make_test_model(tmp_path / "tiny-ltx2")
    blend, bundle = tmp_path / "shot.blend", tmp_path / "bundle"
    _run("-c", BUILD, str(blend))
    _run("-m", "blender_addon.cli", "export", str(blend), "--out", str(bundle), "--targets", "Actors",
         "--armatures", "Walker", "--prompt", "a man walks", "--control-lora", "control", "--seed", "5", "--quiet")
    _run("-m", "render_backend.cli", "render", str(bundle), "--out", str(tmp_path / "offline"), "--model", str(model),
         "--upsampler", "none")

    torch.set_num_threads(1)
    engine = LTX2Engine(str(model), upsampler="none")
    with BackgroundServer(engine, ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "data")) as server:
        printed = _run("-m", "blender_addon.cli", "submit", str(bundle), "--server", server.address,
                       "--out", str(tmp_path / "served"))
        again = _run("-m", "blender_addon.cli", "submit", str(bundle), "--server", server.address,
                     "--out", str(tmp_path / "served_again"))
    assert "queued at position" in printed and "already on the server: re-attached" in again

    offline = _frames(next((tmp_path / "offline").glob("*.mp4")))
    served = _frames(tmp_path / "served" / "video.mp4")
    assert offline.shape == served.shape == (9, 96, 128, 3)
    assert np.array_equal(offline, served)
    a = json.loads(next((tmp_path / "offline").glob("*.json")).read_text())["engine"]
    b = json.loads((tmp_path / "served" / "sidecar.json").read_text())["engine"]
    settings = lambda e: {k: v for k, v in e.items() if k not in ("timings",)}  # noqa: E731
    assert settings(a) == settings(b) and a["seed"] == 5 and a["loras"][0]["name"] == "control"
