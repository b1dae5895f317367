"""The add-on's operators in real bpy against a real gRPC server on loopback (fake GPU):
Render Preview headless and modal (fake timer / Esc events), sequencer strips, re-attach
after reloading the .blend, connection messages, Redo take, canvas preview, Render Animation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from blender_addon.core import jobs  # noqa: E402
from blender_addon.operators import session as ss  # noqa: E402
from blender_addon.proto import render_pb2 as pb  # noqa: E402
from blender_addon.ui import vse  # noqa: E402
from blender_addon.ui.preferences import find_profile  # noqa: E402

from .blender_helpers import fresh_shot, strips, tick_until  # noqa: E402
from .fake_server import FakeServer  # noqa: E402

pytestmark = pytest.mark.blender


def _job(scene):
    return scene.ltx_render.jobs[-1]


def test_render_preview_headless_puts_synced_strips_at_the_shot_start(tmp_path):
    with FakeServer(step_s=0.01) as server:
        scene = fresh_shot(tmp_path, frames=9, server_address=server.address)
        scene.frame_start, scene.frame_end = 5, 16  # 12 frames: snapped to 9 (5..13)
        settings = scene.ltx_render
        settings.control_strength = 0.0
        settings.keyframe_insert("control_strength", frame=5)
        settings.control_strength = 1.0
        settings.keyframe_insert("control_strength", frame=13)
        assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
        manifest = next(iter(server.service.jobs.values())).manifest
    item = _job(scene)
    assert item.state == jobs.DONE and (item.frame_start, item.frame_end) == (5, 13)
    assert item.take_dir == "//renders/WalkDollyZoom/shot_0005-0013/take_001"
    assert manifest.num_frames == 9 and manifest.frame_start == 5 and manifest.prompt == "a man walks across a plaza"
    ramp = list(manifest.control.frame_strength)
    assert len(ramp) == 9 and ramp[0] == pytest.approx(0.0) and ramp[-1] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(ramp, ramp[1:], strict=False)) and manifest.control.strength == 1.0
    movie, sound = strips(scene)
    assert (movie.type, sound.type) == ("MOVIE", "SOUND")
    assert movie.frame_final_start == sound.frame_final_start == 5
    assert movie.frame_final_duration == sound.frame_final_duration == 9
    assert movie.fps == pytest.approx(24.0) and scene.render.fps == 24
    take = tmp_path / "renders" / "WalkDollyZoom" / "shot_0005-0013" / "take_001"
    assert sorted(p.name for p in take.iterdir()) == ["audio.wav", "bundle", "sidecar.json", "take.json",
                                                      "video.mp4"]
    record = json.loads((take / "take.json").read_text())
    assert record["frames"] == 9 and record["settings"]["seed"] == 3 and record["job_id"] == item.job_id
    assert (take / "bundle" / "control" / "000005.png").is_file()


def test_second_take_is_numbered_and_reimport_does_not_duplicate(tmp_path):
    with FakeServer(step_s=0.01) as server:
        scene = fresh_shot(tmp_path, server_address=server.address)
        assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
        assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    first, second = (Path(bpy.path.abspath(j.take_dir)) for j in scene.ltx_render.jobs)
    assert (first.name, second.name) == ("take_001", "take_002")
    assert [s.channel for s in strips(scene)] == [1, 2, 3, 4]  # take 2 stacks above take 1
    again = vse.import_take(scene, first, 1, name="again")
    assert len(strips(scene)) == 4 and again[0].channel == 1


def test_import_sets_scene_fps_to_the_movies_before_adding_sound(tmp_path):
    with FakeServer(step_s=0.01) as server:
        scene = fresh_shot(tmp_path, server_address=server.address, fps=24)
        assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    take = Path(bpy.path.abspath(_job(scene).take_dir))
    for strip in strips(scene):
        scene.sequence_editor.strips.remove(strip)
    scene.render.fps, scene.render.fps_base = 30, 1.0
    later = scene.sequence_editor.strips.new_effect("later", "COLOR", channel=1, frame_start=500, length=10)
    movie, sound = vse.import_take(scene, take, 1, name="retime")
    assert (movie.channel, sound.channel, later.channel) == (1, 2, 1)  # a strip far later does not block
    assert scene.render.fps == 24 and scene.render.fps_base == 1.0
    assert movie.frame_final_duration == sound.frame_final_duration == 9
    assert vse.fps_settings(24000 / 1001) == (24, 1.001) and vse.fps_settings(25.0) == (25, 1.0)


def test_modal_render_esc_cancels_on_the_server(tmp_path):
    with FakeServer(step_s=0.3) as server:
        scene = fresh_shot(tmp_path, server_address=server.address)
        runner = ss.ShotRender(scene, find_profile("test"), 1, 9)
        assert tick_until(runner, lambda r: True, event="MOUSEMOVE") == {"PASS_THROUGH"}
        tick_until(runner, lambda r: _job(scene).state == jobs.RUNNING)
        assert _job(scene).progress_text.startswith("Denoising")
        assert scene.ltx_render.status_text.startswith("shot_0001-0009: Denoising")
        from blender_addon.operators.render import modal_step
        assert modal_step(runner, "ESC") == {"RUNNING_MODAL"}
        assert tick_until(runner, lambda r: r != {"RUNNING_MODAL"}) == {"CANCELLED"}
        assert server.service.jobs[_job(scene).job_id].state == pb.JOB_STATE_CANCELLED
    assert _job(scene).state == jobs.CANCELLED and strips(scene) == []


def test_esc_during_export_stops_it_and_restores_render_settings(tmp_path):
    with FakeServer() as server:
        scene = fresh_shot(tmp_path, frames=17, server_address=server.address)
        engine, frame = scene.render.engine, scene.frame_current
        runner = ss.ShotRender(scene, find_profile("test"), 1, 17)
        from blender_addon.operators.render import modal_step
        assert modal_step(runner, "TIMER", budget_s=0.0) == {"RUNNING_MODAL"}  # one frame exported
        assert _job(scene).progress_text.startswith("Exporting 1/")
        modal_step(runner, "ESC")
        assert modal_step(runner, "TIMER") == {"CANCELLED"}
        assert server.service.jobs == {}  # nothing was sent
    assert _job(scene).state == jobs.CANCELLED
    assert (scene.render.engine, scene.frame_current) == (engine, frame)


def test_reattach_after_saving_and_reloading_the_blend(tmp_path):
    with FakeServer(step_s=0.15) as server:
        scene = fresh_shot(tmp_path, server_address=server.address)
        runner = ss.ShotRender(scene, find_profile("test"), 1, 9)
        tick_until(runner, lambda r: bool(_job(scene).job_id))
        job_id = _job(scene).job_id
        ss.shutdown_worker()  # Blender quits: the watch stops, the job goes on on the server
        ss.LIVE.clear()
        bpy.ops.wm.save_mainfile()
        bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "shot.blend"))
        scene = bpy.context.scene
        item = _job(scene)
        assert item.job_id == job_id and item.to_record().unfinished
        assert "still on the server" in scene.ltx_render.status_text  # load_post handler
        assert bpy.ops.ltx_render.resume_jobs() == {"FINISHED"}
        assert len(server.service.jobs) == 1  # re-attached, not re-submitted
    assert _job(scene).state == jobs.DONE
    assert [s.type for s in strips(scene)] == ["MOVIE", "SOUND"]
    assert bpy.ops.ltx_render.resume_jobs() == {"CANCELLED"}  # nothing left to do


@pytest.mark.parametrize("server_kw, profile_kw, words", [
    ({"protocol_version": "2.0"}, {}, "protocol version mismatch: server speaks 2.0"),
    ({"token": "right"}, {"token": "wrong"}, "refused the token"),
    ({"loading": True}, {}, "still loading the model"),
])
def test_test_connection_explains_problems(tmp_path, server_kw, profile_kw, words):
    with FakeServer(**server_kw) as server:
        fresh_shot(tmp_path, server_address=server.address, profile_kw=profile_kw)
        with pytest.raises(RuntimeError, match=words):  # bpy raises an operator's ERROR report
            bpy.ops.ltx_render.test_connection()
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    assert words in prefs.connection_text and not prefs.connection_ok


def test_unreachable_server_fails_the_render_with_the_reason(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scene = fresh_shot(tmp_path, server_address=f"127.0.0.1:{port}")
    with pytest.raises(RuntimeError, match="cannot reach the render server"):
        bpy.ops.ltx_render.render_preview()
    assert _job(scene).state == jobs.FAILED and "cannot reach the render server" in _job(scene).message


def test_redo_take_restores_the_takes_settings(tmp_path):
    with FakeServer(step_s=0.01) as server:
        scene = fresh_shot(tmp_path, server_address=server.address)
        scene.ltx_render.camera_mode = "off"
        assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    take_dir = _job(scene).take_dir
    settings = scene.ltx_render
    settings.prompt, settings.seed, settings.camera_mode = "something else", 99, "auto"
    assert bpy.ops.ltx_render.redo_take(take_dir=take_dir) == {"FINISHED"}
    assert (settings.prompt, settings.seed, settings.camera_mode) == ("a man walks across a plaza", 3, "off")
    assert (scene.frame_preview_start, scene.frame_preview_end) == (1, 9)
    with pytest.raises(RuntimeError, match="pick a take folder"):
        bpy.ops.ltx_render.redo_take(take_dir=str(tmp_path))


def test_preview_canvas_loads_the_current_frames_control_image(tmp_path):
    scene = fresh_shot(tmp_path)
    scene.frame_set(4)
    assert bpy.ops.ltx_render.preview_canvas() == {"FINISHED"}
    image = scene.ltx_render.canvas_image
    assert tuple(image.size) == (256, 160) and image.packed_file is not None
    pixels = list(image.pixels)
    assert max(pixels[0::4]) > 0.2  # the walker's inverse depth is bright
    assert bpy.ops.ltx_render.preview_canvas() == {"FINISHED"}
    assert len([i for i in bpy.data.images if i.name.startswith("LTX control canvas")]) == 1


def test_render_animation_queues_model_sized_shots_and_resumes(tmp_path):
    with FakeServer(step_s=0.01) as server:
        scene = fresh_shot(tmp_path, frames=20, server_address=server.address)
        assert bpy.ops.ltx_render.render_animation(max_frames=9, overlap=0) == {"FINISHED"}
        ranges = sorted((j.frame_start, j.frame_end, j.state) for j in scene.ltx_render.jobs)
        assert ranges == [(1, 9, "done"), (10, 18, "done"), (12, 20, "done")]
        movies = sorted((s for s in strips(scene) if s.type == "MOVIE"), key=lambda s: s.frame_start)
        sounds = sorted((s for s in strips(scene) if s.type == "SOUND"), key=lambda s: s.frame_start)
        # seamless on one channel: the last shot (12..20) hides the 7 frames shot 2 already shows
        assert [(m.frame_final_start, m.frame_final_end, m.channel) for m in movies] == [
            (1, 10, 1), (10, 19, 1), (19, 21, 1)]
        assert [(s.frame_start, s.frame_final_start, s.frame_final_end) for s in sounds] == [
            (1, 1, 10), (10, 10, 19), (12, 19, 21)]
        assert bpy.ops.ltx_render.render_animation(max_frames=9, overlap=0) == {"CANCELLED"}  # all done
        assert len(server.service.jobs) == 3


def test_modal_operator_runs_to_finished_with_fake_timer_events(tmp_path):
    """The operator's own modal() (not just modal_step): real timer, fake events, report at the end."""
    from types import SimpleNamespace

    from blender_addon.operators.render import LTX_OT_render_preview

    reports = []

    class FakeOperator:  # Blender builds operator instances itself; modal() only needs these
        finish = LTX_OT_render_preview.finish

        def report(self, level, text):
            reports.append((level, text))

    with FakeServer(step_s=0.01) as server:
        scene = fresh_shot(tmp_path, server_address=server.address)
        op = FakeOperator()
        op._runner = ss.ShotRender(scene, find_profile("test"), 1, 9)
        op._timer = bpy.context.window_manager.event_timer_add(0.1, window=bpy.context.window)
        scene.ltx_render.busy = True
        result, deadline = {"RUNNING_MODAL"}, time.monotonic() + 60
        while result == {"RUNNING_MODAL"} and time.monotonic() < deadline:
            result = LTX_OT_render_preview.modal(op, bpy.context, SimpleNamespace(type="TIMER"))
            time.sleep(0.01)
    assert result == {"FINISHED"} and not scene.ltx_render.busy
    assert reports == [({"INFO"}, "shot_0001-0009: take_001 in the sequencer at frame 1")]


def test_export_follows_the_servers_limits_and_lora_factor(tmp_path):
    """After Test connection the panel snaps to the server's maxima, and the control canvas is
    exported at the control LoRA's reference size (no pixels the engine would throw away)."""
    from PIL import Image

    with FakeServer(step_s=0.01, max_width=192, max_height=1088, lora_factor=2) as server:
        scene = fresh_shot(tmp_path, server_address=server.address)
        settings = scene.ltx_render
        assert settings.size_note == "256 x 160"  # limits unknown yet: only the /32 rule
        assert bpy.ops.ltx_render.test_connection() == {"FINISHED"}
        assert settings.size_note == ("the server's maximum is 192x1088 and width and height must be multiples "
                                      "of 32 (got 256x160); using 192x128")
        settings.control_lora = "depth-pose"
        assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
        job = next(iter(server.service.jobs.values()))
    m = job.manifest
    assert (m.width, m.height, m.control_width, m.control_height) == (192, 128, 96, 64)
    take = Path(bpy.path.abspath(_job(scene).take_dir))
    assert Image.open(take / "bundle" / "control" / "000001.png").size == (96, 64)
