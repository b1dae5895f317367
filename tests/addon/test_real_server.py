"""The add-on against the REAL render server (`render-backend serve`, a separate process) on
the tiny random LTX-2: connection test, Render Preview to sequencer strips, the camera preset
and trajectory modes, re-attach after reloading the .blend, and the real server's answer to a
wrong token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from blender_addon.client.profiles import ServerProfile  # noqa: E402
from blender_addon.client.render_client import RenderClient  # noqa: E402
from blender_addon.core import jobs  # noqa: E402
from blender_addon.operators import records as ss  # noqa: E402
from blender_addon.operators.shot import ShotRender  # noqa: E402
from blender_addon.proto import render_pb2 as pb  # noqa: E402
from blender_addon.ui.preferences import find_profile  # noqa: E402

from .blender_helpers import fresh_shot, strips, tick_until  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    """`python -m render_backend.cli serve` on a free port with a token file; yields (address, token)."""
    from render_backend.engine.ltx2.test_model import make_test_model

    folder = tmp_path_factory.mktemp("real-server")
    model = make_test_model(folder / "tiny-ltx2")
    token_file = folder / "token"
    token_file.write_text("let-me-in\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "render_backend.cli", "serve", "--model", str(model),
                             "--port", "0", "--data-dir", str(folder / "data"), "--token-file", str(token_file),
                             "--heartbeat", "1", "--upsampler", "none"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on ([\d.]+:\d+)", line)
        assert match, f"server did not start: {line}{proc.stdout.read() if proc.poll() is not None else ''}"
        address = match.group(1)
        profile = ServerProfile("real", address, token="let-me-in")
        deadline = time.monotonic() + 120
        with RenderClient(profile) as client:
            while client.health() != "SERVING":
                assert time.monotonic() < deadline and proc.poll() is None, "server never became SERVING"
                time.sleep(0.2)
        yield address, "let-me-in"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _shot(tmp_path, address, token):
    scene = fresh_shot(tmp_path, server_address=address, profile_kw={"token": token})
    scene.ltx_render.width, scene.ltx_render.height = 128, 96  # keeps the CPU generation short
    scene.ltx_render.control_lora = "control"
    return scene


def test_real_server_connection_lists_model_and_loras(tmp_path, real_server):
    _shot(tmp_path, *real_server)
    assert bpy.ops.ltx_render.test_connection() == {"FINISHED"}
    text = bpy.context.preferences.addons["blender_addon"].preferences.connection_text
    assert text.startswith("Connected (health SERVING): protocol 2.")
    assert "control (control)" in text and "camera_dolly_in (camera preset dolly_in)" in text


def test_real_server_wrong_token_is_explained(tmp_path, real_server):
    address, _ = real_server
    _shot(tmp_path, address, "not-the-token")
    with pytest.raises(RuntimeError, match="refused the token"):
        bpy.ops.ltx_render.test_connection()


def test_real_server_render_preview_lands_in_the_sequencer(tmp_path, real_server):
    scene = _shot(tmp_path, *real_server)
    t0 = time.monotonic()
    assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    print(f"render preview, 9 frames 128x96, real tiny server: {time.monotonic() - t0:.1f} s")
    item = scene.ltx_render.jobs[-1]
    assert item.state == jobs.DONE
    movie, sound = strips(scene)
    assert movie.frame_final_duration == 9 and movie.frame_final_start == 1
    assert sound.frame_final_start == 1 and abs(sound.frame_final_duration - 9) <= 1
    assert scene.render.fps == round(movie.fps)
    take = Path(bpy.path.abspath(item.take_dir))
    assert (take / "sidecar.json").stat().st_size > 0 and (take / "audio.wav").stat().st_size > 1000


@pytest.mark.parametrize("mode, preset, lora", [
    ("preset", "camera_dolly_in", "camera_dolly_in"),
    ("trajectory", "", "camera_trajectory"),  # none named: the server's only trajectory LoRA
])
def test_real_server_camera_preset_and_trajectory_modes_render(tmp_path, real_server, mode, preset, lora):
    """The chosen camera LoRA reaches the server (it refuses PRESET/TRAJECTORY without one) and
    the engine applies it: the take's sidecar names it."""
    import json

    scene = _shot(tmp_path, *real_server)
    settings = scene.ltx_render
    settings.width, settings.height = 256, 128  # the trajectory canvas (factor 4) needs multiples of 128
    settings.camera_mode, settings.camera_preset = mode, preset
    assert bpy.ops.ltx_render.test_connection() == {"FINISHED"}  # the add-on learns the LoRA names
    assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    item = scene.ltx_render.jobs[-1]
    assert item.state == jobs.DONE, item.message
    take = Path(bpy.path.abspath(item.take_dir))
    shot = json.loads((take / "bundle" / "shot.json").read_text())
    assert shot["camera"]["mode"] == mode
    assert (shot["camera"]["preset_lora"], shot["camera"]["trajectory_lora"]) == (
        (lora, "") if mode == "preset" else ("", lora))
    camera = json.loads((take / "sidecar.json").read_text())["camera"]
    assert camera["mode"] == mode and camera["lora"] == lora
    if mode == "trajectory":
        assert camera["canvas_size"] == [64, 32]  # 256x128 at the trajectory LoRA's factor 4
    with RenderClient(ServerProfile("real", real_server[0], token=real_server[1])) as client:
        listed = [j for j in client.list_jobs() if j.job_id == item.job_id]
    assert [j.state for j in listed] == [pb.JOB_STATE_DONE]
    assert [s.type for s in strips(scene)] == ["MOVIE", "SOUND"]


def test_real_server_reattach_after_reload(tmp_path, real_server):
    scene = _shot(tmp_path, *real_server)
    runner = ShotRender(scene, find_profile("test"), 1, 9)
    tick_until(runner, lambda r: bool(scene.ltx_render.jobs[-1].job_id))
    ss.shutdown_worker()
    ss.LIVE.clear()
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "shot.blend"))
    assert bpy.ops.ltx_render.resume_jobs() == {"FINISHED"}
    scene = bpy.context.scene
    assert scene.ltx_render.jobs[-1].state == jobs.DONE
    assert [s.type for s in strips(scene)] == ["MOVIE", "SOUND"]
