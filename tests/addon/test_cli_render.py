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
