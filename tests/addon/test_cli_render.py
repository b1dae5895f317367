"""`python -m blender_addon.cli render SCENE.blend --server H:P --out DIR` in a subprocess, against
the REAL render server on loopback (conftest.live_server: real engine, tiny model) with a token file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from .blender_helpers import fresh_shot, strips  # noqa: E402

pytestmark = pytest.mark.blender
ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LTX_RENDER_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "blender_addon.cli", "render", *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_cli_render_saves_a_copy_with_strips_and_takes(tmp_path, live_server):
    fresh_shot(tmp_path / "src")  # no profile: the CLI passes the server itself
    token = tmp_path / "token"
    token.write_text(f"{live_server.token}\n")
    out = tmp_path / "out"
    proc = _cli(tmp_path / "src" / "shot.blend", "--server", live_server.address, "--token-file", token,
                "--out", out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    take = out / "renders" / "WalkDollyZoom" / "shot_0001-0009" / "take_001"
    assert f"done      {take}" in proc.stdout
    assert (take / "video.mp4").stat().st_size > 0 and (take / "take.json").is_file()
    assert not (tmp_path / "src" / "renders").exists()  # the original's folder is untouched
    bpy.ops.wm.open_mainfile(filepath=str(out / "shot.blend"))
    scene = bpy.context.scene
    assert [(s.type, s.frame_final_start, s.frame_final_duration) for s in strips(scene)] == [
        ("MOVIE", 1, 9), ("SOUND", 1, 9)]
    assert Path(strips(scene)[0].filepath).name == "video.mp4"
    from blender_addon.proto import render_pb2 as pb
    assert live_server.job(scene.ltx_render.jobs[-1].job_id).state == pb.JOB_STATE_DONE


def test_cli_render_reports_a_bad_token_and_a_missing_file(tmp_path, live_server):
    fresh_shot(tmp_path / "src")
    token = tmp_path / "token"
    token.write_text("wrong\n")
    proc = _cli(tmp_path / "src" / "shot.blend", "--server", live_server.address, "--token-file", token,
                "--out", tmp_path / "out")
    assert proc.returncode == 1 and "refused the token" in proc.stderr
    proc = _cli(tmp_path / "nope.blend", "--server", "localhost:1", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "no such .blend file" in proc.stderr
    proc = _cli(tmp_path / "src" / "shot.blend", "--server", "localhost:1", "--ca", "x.pem", "--out", tmp_path)
    assert proc.returncode == 2 and "--ca needs --tls" in proc.stderr


BUILD_UNTOUCHED = """
import sys, bpy
from blender_addon.example_scene import build_example_scene
build_example_scene(frames=9, width=128, height=96)  # a plain scene: no LTX panel settings at all
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
"""


def test_cli_render_works_on_a_file_the_panel_never_touched(tmp_path, live_server):
    """No control LoRA, no targets in the .blend: the CLI asks the server what it has, takes its
    control LoRA, follows the mesh collections and the armatures, and says so."""
    blend = tmp_path / "untouched.blend"
    build = subprocess.run([sys.executable, "-c", BUILD_UNTOUCHED, str(blend)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert build.returncode == 0, build.stderr[-2000:]
    token = tmp_path / "token"
    token.write_text(f"{live_server.token}\n")
    proc = _cli(blend, "--server", live_server.address, "--token-file", token, "--out", tmp_path / "out",
                "--prompt", "a man walks", "--camera-mode", "off")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "the scene names no control LoRA: using the server's control LoRA 'control'" in proc.stdout
    assert "the scene names no targets: following collections" in proc.stdout and "armatures Walker" in proc.stdout
    from blender_addon.headless import enable_addon

    enable_addon()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "out" / "untouched.blend"))
    job = live_server.job(bpy.context.scene.ltx_render.jobs[-1].job_id)
    assert [(c.kind, c.lora) for c in job.manifest.controls] == [("depth+pose", "control")]
    proc = _cli(blend, "--server", live_server.address, "--token-file", token, "--out", tmp_path / "out2",
                "--prompt", "a man walks", "--control-lora", "control_peft", "--kind", "pose",
                "--armatures", "Walker", "--targets", "")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "out2" / "untouched.blend"))
    job = live_server.job(bpy.context.scene.ltx_render.jobs[-1].job_id)
    assert [(c.kind, c.lora, c.has_mask) for c in job.manifest.controls] == [("pose", "control_peft", False)]
