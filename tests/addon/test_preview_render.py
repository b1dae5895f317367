"""Quality: Preview in real bpy against the REAL render server on loopback (conftest.live_server: real
engine on the tiny model): the panel's notes and estimate, the manifest a Preview sends, the strip it
lands as (the shot's frames, with sound, scaled to cover the Final's size), the estimate turning
measured after a job, and `cli render --preview`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from blender_addon.proto import render_pb2 as pb  # noqa: E402

from .blender_helpers import fresh_shot, strips  # noqa: E402

pytestmark = pytest.mark.blender
ROOT = Path(__file__).resolve().parents[2]


def test_preview_renders_half_size_in_one_stage_and_lands_on_the_shots_frames(tmp_path, live_server):
    scene = fresh_shot(tmp_path, server=live_server)  # 256 x 160, frames 1..9, control LoRA "control"
    settings = scene.ltx_render
    assert bpy.ops.ltx_render.test_connection() == {"FINISHED"}
    assert settings.render_note == "Final: 256 x 160, 9 frames, 1 stage, 8 steps"
    final_estimate = settings.estimate_note
    # A priori on a server that has run nothing yet; measured when earlier tests used this live server.
    basis = "(a priori)" if final_estimate.endswith(" on test (a priori)") else "(measured)"
    assert final_estimate.startswith("≈ ") and final_estimate.endswith(f" on test {basis}"), final_estimate
    settings.quality = "preview"
    # 160 / 2 = 80 is no multiple of 32: 96 (the nearest); the distilled model keeps its 8 steps.
    assert settings.render_note == "Preview: 128 x 96, 9 frames, 1 stage, 8 steps"
    assert settings.estimate_note != final_estimate and settings.estimate_note.endswith(basis)

    assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    item = settings.jobs[-1]
    assert item.state == "done", item.message
    m = live_server.job(item.job_id).manifest
    assert (m.width, m.height, m.num_frames, m.stages, m.num_inference_steps) == (128, 96, 9, 1, 0)
    assert (m.controls[0].width, m.controls[0].height) == (128, 96)  # factor 1, one stage
    take = Path(bpy.path.abspath(item.take_dir))
    sidecar = json.loads((take / "sidecar.json").read_text())
    assert (sidecar["width"], sidecar["height"], sidecar["frames"], sidecar["engine"]["stages"]) == (128, 96, 9, 1)
    assert json.loads((take / "bundle" / "shot.json").read_text())["stages"] == 1
    movie, sound = (s for s in strips(scene) if s.type in ("MOVIE", "SOUND"))
    assert (movie.frame_final_start, movie.frame_final_duration) == (1, 9)
    assert (sound.frame_final_start, sound.frame_final_duration) == (1, 9)
    assert (movie.transform.scale_x, movie.transform.scale_y) == pytest.approx((256 / 128, 160 / 96))
    assert json.loads((take / "take.json").read_text())["settings"]["quality"] == "preview"

    # The server measured the job; the worker asked it again after the fetch (no Test connection needed).
    assert settings.estimate_note.endswith(" on test (measured)")


def test_cli_render_preview_sends_a_one_stage_half_size_shot(tmp_path, live_server):
    fresh_shot(tmp_path / "src")
    token = tmp_path / "token"
    token.write_text(f"{live_server.token}\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LTX_RENDER_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "blender_addon.cli", "render", str(tmp_path / "src" / "shot.blend"),
                           "--server", live_server.address, "--token-file", str(token), "--out", str(out),
                           "--preview"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Preview: 128 x 96, 9 frames, 1 stage, 8 steps ≈ " in proc.stdout
    bpy.ops.wm.open_mainfile(filepath=str(out / "shot.blend"))
    scene = bpy.context.scene
    job = live_server.job(scene.ltx_render.jobs[-1].job_id)
    assert job.state == pb.JOB_STATE_DONE
    assert (job.manifest.width, job.manifest.height, job.manifest.stages) == (128, 96, 1)
    assert [(s.type, s.frame_final_start, s.frame_final_duration) for s in strips(scene)] == [
        ("MOVIE", 1, 9), ("SOUND", 1, 9)]
