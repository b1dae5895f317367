"""The add-on's operators in real bpy against the REAL render server on loopback (real engine on
the tiny model, conftest.live_server): Render Preview headless and modal (fake timer / Esc
events: the one thing that cannot exist headless), sequencer strips, re-attach after reloading
the .blend, connection messages, camera LoRA names, Redo take, canvas preview, Render Animation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from blender_addon import sequencer as vse  # noqa: E402
from blender_addon.core import jobs  # noqa: E402
from blender_addon.operators import records as ss  # noqa: E402
from blender_addon.operators.modal import modal_step  # noqa: E402
from blender_addon.operators.shot import (  # noqa: E402
    LTX_OT_render_preview,
    ShotRender,  # noqa: E402
    export_arguments,
)
from blender_addon.proto import render_pb2 as pb  # noqa: E402
from blender_addon.ui.preferences import find_profile  # noqa: E402

from .blender_helpers import fresh_shot, strips, tick_until  # noqa: E402
from .conftest import CONTROL_X2  # noqa: E402

pytestmark = pytest.mark.blender
PREFS = "blender_addon"


def _job(scene):
    return scene.ltx_render.jobs[-1]


def _prefs():
    return bpy.context.preferences.addons[PREFS].preferences


def test_take_lands_at_the_shot_start_in_sync_after_the_scene_fps_changed(tmp_path, live_server):
    """Shot 5..13 exported at 24 fps with a keyframed strength ramp; while the server renders, the
    user switches the scene to 30 fps. The import must set the scene back to the movie's 24 fps
    BEFORE adding the sound (at 30 fps the 9-frame sound strip would be 11 frames long)."""
    scene = fresh_shot(tmp_path, frames=9, server=live_server, fps=24)
    scene.frame_start, scene.frame_end = 5, 16  # 12 frames: Render Preview snaps to 9 (5..13)
    settings = scene.ltx_render
    settings.control_strength = 0.0
    settings.keyframe_insert("control_strength", frame=5)
    settings.control_strength = 1.0
    settings.keyframe_insert("control_strength", frame=13)
    runner = ShotRender(scene, find_profile("test"), 5, 13)
    tick_until(runner, lambda r: not runner.exporting)
    assert _job(scene).state == jobs.SUBMITTING
    scene.render.fps = 30  # changed while the server renders
    later = scene.sequence_editor_create().strips.new_effect("later", "COLOR", channel=1, frame_start=500,
                                                             length=10)
    assert tick_until(runner, lambda r: r != {"RUNNING_MODAL"}) == {"FINISHED"}
    item = _job(scene)
    assert item.state == jobs.DONE and (item.frame_start, item.frame_end) == (5, 13)
    assert item.take_dir == "//renders/WalkDollyZoom/shot_0005-0013/take_001"
    manifest = live_server.job(item.job_id).manifest
    assert (manifest.num_frames, manifest.frame_start, manifest.fps) == (9, 5, 24.0)
    assert manifest.prompt == "a man walks across a plaza" and manifest.controls[0].lora == "control"
    ramp = list(manifest.controls[0].frame_strength)
    assert len(ramp) == 9 and ramp[0] == pytest.approx(0.0) and ramp[-1] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(ramp, ramp[1:], strict=False)) and manifest.controls[0].strength == 1.0
    movie, sound = (s for s in strips(scene) if s.type in ("MOVIE", "SOUND"))
    assert (movie.type, sound.type) == ("MOVIE", "SOUND")
    assert movie.fps == pytest.approx(24.0)
    assert (scene.render.fps, scene.render.fps_base) == (24, 1.0)  # was 30: changed to the movie's
    assert movie.frame_final_start == sound.frame_final_start == 5
    assert movie.frame_final_duration == sound.frame_final_duration == 9
    assert (movie.channel, sound.channel, later.channel) == (1, 2, 1)  # a strip far later does not block
    take = tmp_path / "renders" / "WalkDollyZoom" / "shot_0005-0013" / "take_001"
    assert sorted(p.name for p in take.iterdir()) == ["audio.wav", "bundle", "sidecar.json", "take.json",
                                                      "video.mp4"]
    record = json.loads((take / "take.json").read_text())
    assert record["frames"] == 9 and record["fps"] == 24.0 and record["job_id"] == item.job_id
    assert record["settings"]["seed"] == 3 and record["settings"]["targets"] == [{"collection": "Actors"}]
    assert (take / "bundle" / "control" / "000005.png").is_file()
    assert vse.fps_settings(24000 / 1001) == (24, 1.001) and vse.fps_settings(25.0) == (25, 1.0)


def test_second_take_is_numbered_and_reimport_does_not_duplicate(tmp_path, live_server):
    scene = fresh_shot(tmp_path, server=live_server)
    assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    first, second = (Path(bpy.path.abspath(j.take_dir)) for j in scene.ltx_render.jobs)
    assert (first.name, second.name) == ("take_001", "take_002")
    assert [s.channel for s in strips(scene)] == [1, 2, 3, 4]  # take 2 stacks above take 1
    again = vse.import_take(scene, first, 1, name="again")
    assert len(strips(scene)) == 4 and again[0].channel == 1
    ids = [j.job_id for j in scene.ltx_render.jobs]
    assert len(set(ids)) == 2 and all(live_server.job(i).state == pb.JOB_STATE_DONE for i in ids)


def test_modal_render_esc_cancels_on_the_server(tmp_path, live_server, slow_engine):
    slow_engine(400)
    scene = fresh_shot(tmp_path, server=live_server)
    runner = ShotRender(scene, find_profile("test"), 1, 9)
    assert tick_until(runner, lambda r: True, event="MOUSEMOVE") == {"PASS_THROUGH"}
    tick_until(runner, lambda r: _job(scene).progress_text.startswith("Denoising"))
    assert _job(scene).state == jobs.RUNNING
    assert scene.ltx_render.status_text.startswith("shot_0001-0009: Denoising")
    assert modal_step(runner, "ESC") == {"RUNNING_MODAL"}
    assert tick_until(runner, lambda r: r != {"RUNNING_MODAL"}) == {"CANCELLED"}
    assert live_server.job(_job(scene).job_id).state == pb.JOB_STATE_CANCELLED
    assert _job(scene).state == jobs.CANCELLED and strips(scene) == []


def test_esc_during_export_stops_it_and_restores_render_settings(tmp_path, live_server):
    scene = fresh_shot(tmp_path, frames=17, server=live_server)
    engine, frame = scene.render.engine, scene.frame_current
    runner = ShotRender(scene, find_profile("test"), 1, 17)
    assert modal_step(runner, "TIMER", budget_s=0.0) == {"RUNNING_MODAL"}  # one frame exported
    assert _job(scene).progress_text.startswith("Exporting 1/")
    modal_step(runner, "ESC")
    assert modal_step(runner, "TIMER") == {"CANCELLED"}
    assert live_server.store.get_by_request(runner.request_id) is None  # nothing was sent
    assert _job(scene).state == jobs.CANCELLED
    assert (scene.render.engine, scene.frame_current) == (engine, frame)


def test_reattach_after_saving_and_reloading_the_blend(tmp_path, live_server):
    scene = fresh_shot(tmp_path, server=live_server)
    runner = ShotRender(scene, find_profile("test"), 1, 9)
    tick_until(runner, lambda r: bool(_job(scene).job_id))
    job_id = _job(scene).job_id
    ss.shutdown_worker()  # Blender quits mid-render: the watch stops, the job goes on on the server
    scene.ltx_render.busy = True  # as a modal render leaves it in the saved file
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "shot.blend"))  # the load handler drops old sessions
    scene = bpy.context.scene
    item = _job(scene)
    assert item.job_id == job_id and item.to_record().unfinished
    assert not scene.ltx_render.busy  # reset by the load handler: no operator survives a load
    assert "still on the server" in scene.ltx_render.status_text
    assert bpy.ops.ltx_render.resume_jobs() == {"FINISHED"}
    assert _job(scene).state == jobs.DONE and _job(scene).job_id == job_id  # re-attached, not re-submitted
    assert live_server.store.get_by_request(item.request_id).job_id == job_id
    assert [s.type for s in strips(scene)] == ["MOVIE", "SOUND"]
    assert bpy.ops.ltx_render.resume_jobs() == {"CANCELLED"}  # nothing left to do


def test_resume_after_a_strength_keyframe_changed_since_the_export_completes_the_job(tmp_path, live_server):
    """Blender died after the upload reached the server but before the job id came back. The user
    then edits the strength curve and presses Resume: the same request_id must carry the SAME
    manifest (the curve as exported, from the bundle), so the server finds the job instead of
    answering ALREADY_EXISTS and losing it."""
    scene = fresh_shot(tmp_path, server=live_server)
    settings = scene.ltx_render
    settings.control_strength = 0.2
    settings.keyframe_insert("control_strength", frame=1)
    settings.control_strength = 1.0
    settings.keyframe_insert("control_strength", frame=9)
    runner = ShotRender(scene, find_profile("test"), 1, 9)
    tick_until(runner, lambda r: bool(_job(scene).job_id))
    request_id, job_id = _job(scene).request_id, _job(scene).job_id
    ss.shutdown_worker()
    item = _job(scene)
    item.state, item.job_id = jobs.SUBMITTING, ""  # the SUBMITTED event never reached the .blend
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "shot.blend"))  # Blender restarts
    scene = bpy.context.scene
    settings = scene.ltx_render
    settings.control_strength = 0.5  # a keyframe changed between export and Resume
    settings.keyframe_insert("control_strength", frame=9)
    assert bpy.ops.ltx_render.resume_jobs() == {"FINISHED"}
    assert _job(scene).state == jobs.DONE, _job(scene).message
    assert _job(scene).job_id == job_id  # the server deduplicated: the same job, not a second one
    assert len(live_server.jobs_of([request_id])) == 1
    ramp = list(live_server.job(job_id).manifest.controls[0].frame_strength)
    assert ramp[0] == pytest.approx(0.2) and ramp[-1] == pytest.approx(1.0)  # the curve as exported


def test_busy_saved_without_unfinished_jobs_is_cleared_on_load(tmp_path):
    scene = fresh_shot(tmp_path)
    scene.ltx_render.busy, scene.ltx_render.status_text = True, "shot_0001-0009: Denoising 3/8"
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "shot.blend"))
    settings = bpy.context.scene.ltx_render
    assert not settings.busy and settings.status_text == ""


@pytest.mark.parametrize("case, words", [
    ("protocol", "protocol version mismatch: server speaks 3.0, this add-on 2.1; update the add-on"),
    ("token", "refused the token"),
    ("loading", "still loading the model"),
    ("silent", "no answer from"),
])
def test_test_connection_explains_problems(tmp_path, case, words, live_server, loading_address, silent_address,
                                           monkeypatch):
    import render_backend.server.convert as convert
    from blender_addon.operators import setup

    if case == "protocol":  # the real server, announcing a future protocol major version
        monkeypatch.setattr(convert, "PROTOCOL_VERSION", "3.0")
        fresh_shot(tmp_path, server=live_server)
    elif case == "token":
        fresh_shot(tmp_path, server=live_server, profile_kw={"token": "wrong"})
    elif case == "loading":
        fresh_shot(tmp_path, server_address=loading_address)
    else:  # accepts the connection, never answers
        monkeypatch.setattr(setup, "CONNECTION_TIMEOUT_S", 1.0)
        fresh_shot(tmp_path, server_address=silent_address)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=words):  # bpy raises an operator's ERROR report
        bpy.ops.ltx_render.test_connection()
    assert time.monotonic() - t0 < 8
    assert words in _prefs().connection_text and not _prefs().connection_ok
    ss.shutdown_worker()  # the silent server's test thread answers later: not into the next test


def test_test_connection_timer_with_a_window_reports_a_timeout(tmp_path, silent_address):
    """The GUI path (an app timer polls the test; timers never fire headless, so call it here)."""
    from blender_addon.operators import setup

    fresh_shot(tmp_path, server_address=silent_address)
    worker = ss.get_worker()
    _prefs().connection_text, _prefs().connection_ok = setup._testing_text(silent_address), False
    key = worker.test_connection(find_profile("test"))
    assert setup._poll_connection(key, time.monotonic() + 5, silent_address) == 0.2  # still waiting
    assert _prefs().connection_text.startswith("Testing") and not _prefs().connection_ok
    assert setup._poll_connection(key, time.monotonic() - 1, silent_address) is None  # deadline passed
    assert _prefs().connection_text.startswith(f"no answer from {silent_address} within 30 s")
    assert not _prefs().connection_ok
    ss.shutdown_worker()


def test_test_connection_reports_health_and_the_servers_loras(tmp_path, live_server):
    fresh_shot(tmp_path, server=live_server)
    assert bpy.ops.ltx_render.test_connection() == {"FINISHED"}
    text = _prefs().connection_text
    assert _prefs().connection_ok and text.startswith("Connected (health SERVING): protocol 2.1")
    assert "camera_dolly_in (camera preset dolly_in)" in text and "camera_trajectory (camera trajectory)" in text


def test_render_with_a_server_of_another_protocol_major_fails_with_the_same_message(tmp_path, live_server,
                                                                                      monkeypatch):
    import render_backend.server.convert as convert

    scene = fresh_shot(tmp_path, server=live_server)
    monkeypatch.setattr(convert, "PROTOCOL_VERSION", "3.0")
    with pytest.raises(RuntimeError, match="protocol version mismatch: server speaks 3.0"):
        bpy.ops.ltx_render.render_preview()
    assert _job(scene).state == jobs.FAILED and "update the add-on" in _job(scene).message
    assert live_server.store.get_by_request(_job(scene).request_id) is None


def test_camera_modes_need_a_lora_the_server_has(tmp_path, live_server):
    """Named preset / Trajectory without a usable LoRA name fail before the export, saying what to pick."""
    scene = fresh_shot(tmp_path, server=live_server)
    settings = scene.ltx_render
    settings.camera_mode = "preset"
    with pytest.raises(RuntimeError, match="needs a camera LoRA name; pick one of: the server's camera presets"):
        bpy.ops.ltx_render.render_preview()
    assert bpy.ops.ltx_render.test_connection() == {"FINISHED"}  # now the add-on knows the names
    with pytest.raises(RuntimeError, match="needs a camera LoRA name; pick one of: camera_dolly_in, "):
        bpy.ops.ltx_render.render_preview()
    settings.camera_preset = "camera_zoom"
    with pytest.raises(RuntimeError, match="'camera_zoom' is not installed on the server; pick one of: "):
        bpy.ops.ltx_render.render_preview()
    settings.camera_mode = "trajectory"
    args = export_arguments(scene, 1, 9, "shot")  # the server's only trajectory LoRA is taken
    assert (args["camera_mode"], args["preset_lora"], args["trajectory_lora"]) == ("trajectory", "",
                                                                                  "camera_trajectory")
    assert len(scene.ltx_render.jobs) == 0  # nothing was recorded or exported


def test_unreachable_server_fails_the_render_with_the_reason(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scene = fresh_shot(tmp_path, server_address=f"127.0.0.1:{port}")
    with pytest.raises(RuntimeError, match="cannot reach the render server"):
        bpy.ops.ltx_render.render_preview()
    assert _job(scene).state == jobs.FAILED and "cannot reach the render server" in _job(scene).message


def test_redo_take_restores_the_takes_settings_targets_and_armatures(tmp_path, live_server):
    scene = fresh_shot(tmp_path, server=live_server)
    settings = scene.ltx_render
    settings.camera_mode = "off"
    assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    take_dir = _job(scene).take_dir
    walker = settings.armatures[0].object.name
    settings.prompt, settings.seed, settings.camera_mode = "something else", 99, "auto"
    settings.reference_downscale_factor = 2
    settings.targets.clear()
    settings.targets.add().object = scene.camera
    settings.armatures.clear()
    assert bpy.ops.ltx_render.redo_take(take_dir=take_dir) == {"FINISHED"}
    assert (settings.prompt, settings.seed, settings.camera_mode, settings.reference_downscale_factor) == (
        "a man walks across a plaza", 3, "off", 1)
    assert [(t.collection.name if t.collection else None, t.object) for t in settings.targets] == [("Actors", None)]
    assert [t.object.name for t in settings.armatures] == [walker]
    assert (scene.frame_preview_start, scene.frame_preview_end) == (1, 9)
    bpy.data.collections["Actors"].name = "Cast"  # what the take followed is gone from the file
    settings.targets.clear()
    assert bpy.ops.ltx_render.redo_take(take_dir=take_dir) == {"FINISHED"}  # a WARNING report, still done
    assert len(settings.targets) == 0 and [t.object.name for t in settings.armatures] == [walker]
    with pytest.raises(RuntimeError, match="pick a take folder"):
        bpy.ops.ltx_render.redo_take(take_dir=str(tmp_path))


def test_preview_canvas_renders_only_the_current_frame(tmp_path):
    """One depth/mask render (not the 9 of a minimum shot), at the render's size, in the frame's
    own depth range: its targets span the grey scale (with the shot's range, frame 4 of this
    walk spans only ~0.67..0.95), the masked-out background stays black."""
    scene = fresh_shot(tmp_path)  # 9 frames, 256x160
    scene.ltx_render.camera_mode = "preset"  # no camera LoRA named: the canvas preview does not need one
    scene.frame_set(4)
    renders = []

    def count(_scene, *_):
        renders.append(_scene.name)

    bpy.app.handlers.render_post.append(count)
    try:
        assert bpy.ops.ltx_render.preview_canvas() == {"FINISHED"}
        assert renders == [scene.name]
        image = scene.ltx_render.canvas_image
        assert tuple(image.size) == (256, 160) and image.packed_file is not None
        rgb = np.array(image.pixels[:]).reshape(160, 256, 4)[..., :3]
        grey = rgb[(rgb[..., 0] > 0) & (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2]), 0]
        assert grey.size > 500 and grey.min() < 0.3 and grey.max() > 0.8  # depth, not the pose's colours
        assert rgb[0, 0].tolist() == [0.0, 0.0, 0.0]  # a corner: background
        assert scene.frame_current == 4  # the user's frame is back
        scene.ltx_render.reference_downscale_factor = 2  # no server limits: the panel's Reference downscale
        assert bpy.ops.ltx_render.preview_canvas() == {"FINISHED"}
        assert len(renders) == 2 and tuple(scene.ltx_render.canvas_image.size) == (128, 80)
    finally:
        bpy.app.handlers.render_post.remove(count)
    assert len([i for i in bpy.data.images if i.name.startswith("LTX control canvas")]) == 1


def test_render_animation_renders_one_continuous_take_and_resumes(tmp_path, live_server):
    """33 frames in windows of 17 sharing 9: three windows (1-17, 9-25, 17-33) continuing from one
    another, assembled by the server into ONE take of exactly 33 frames, in the sequencer at frame 1."""
    from blender_addon.core import animation as an

    scene = fresh_shot(tmp_path, frames=33, server=live_server)
    assert bpy.ops.ltx_render.render_animation(max_frames=17, overlap=9) == {"FINISHED"}
    job = an.load_job(tmp_path / "renders" / "WalkDollyZoom" / "animation_0001-0033")
    (shot,) = job.shots
    assert [(w.frame_start, w.frame_end, w.condition_frames, w.state) for w in shot.windows] == [
        (1, 17, 0, "done"), (9, 25, 9, "done"), (17, 33, 9, "done")]
    assert shot.done and job.frames_done == 33
    movies = [s for s in strips(scene) if s.type == "MOVIE"]
    sounds = [s for s in strips(scene) if s.type == "SOUND"]
    assert [(m.frame_final_start, m.frame_final_duration) for m in movies] == [(1, 33)]
    assert [(s.frame_final_start, s.frame_final_duration) for s in sounds] == [(1, 33)]
    ids = [w.request_id for w in shot.windows] + [shot.assembly_request_id]
    assert len(live_server.jobs_of(ids)) == 4  # three windows and their assembly
    conditions = [len(live_server.job(w.job_id).manifest.conditions) for w in shot.windows]
    assert conditions == [0, 1, 1] and live_server.job(shot.windows[0].job_id).manifest.tail_frames == 9
    assert bpy.ops.ltx_render.render_animation(max_frames=17, overlap=9) == {"CANCELLED"}  # all assembled
    assert len(live_server.jobs_of(ids)) == 4  # nothing rendered again


class _FakeOperator:
    """Blender builds operator instances itself; modal() / cancel() / finish() only need these."""

    finish = LTX_OT_render_preview.finish
    cancel = LTX_OT_render_preview.cancel
    _remove_timer = LTX_OT_render_preview._remove_timer

    def __init__(self):
        self.reports = []

    def report(self, level, text):
        self.reports.append((level, text))


def test_modal_operator_runs_to_finished_for_its_own_scene(tmp_path, live_server):
    """The operator's own modal() (not just modal_step): real timer, fake events, report at the
    end. The user switches to another scene meanwhile: busy and the report follow the render's scene."""
    from types import SimpleNamespace

    scene = fresh_shot(tmp_path, server=live_server)
    op = _FakeOperator()
    op._runner = ShotRender(scene, find_profile("test"), 1, 9)
    op._timer = bpy.context.window_manager.event_timer_add(0.1, window=bpy.context.window)
    scene.ltx_render.busy = True
    other = bpy.data.scenes.new("Other")
    bpy.context.window.scene = other
    result, deadline = {"RUNNING_MODAL"}, time.monotonic() + 60
    while result == {"RUNNING_MODAL"} and time.monotonic() < deadline:
        result = LTX_OT_render_preview.modal(op, bpy.context, SimpleNamespace(type="TIMER"))
        time.sleep(0.01)
    assert result == {"FINISHED"} and not scene.ltx_render.busy and op._timer is None
    assert op.reports == [({"INFO"}, "shot_0001-0009: take_001 in the sequencer at frame 1")]
    assert bpy.context.scene == other and other.ltx_render.status_text == ""


def test_modal_operator_cancel_removes_its_timer_and_clears_busy(tmp_path, live_server):
    """Blender calls cancel() when it ends a modal operator (file load, quit)."""
    scene = fresh_shot(tmp_path, server=live_server)
    op = _FakeOperator()
    op._runner = ShotRender(scene, find_profile("test"), 1, 9)
    op._timer = bpy.context.window_manager.event_timer_add(0.1, window=bpy.context.window)
    scene.ltx_render.busy = True
    assert op._runner.request_id in ss.LIVE
    LTX_OT_render_preview.cancel(op, bpy.context)
    assert op._timer is None and not scene.ltx_render.busy and op._runner.request_id not in ss.LIVE
    LTX_OT_render_preview.cancel(op, bpy.context)  # twice is harmless
    op._runner._steps.close()  # never ticked: nothing was exported


def test_export_follows_the_servers_limits_and_the_loras_reference_sizes(tmp_path, live_server):
    """After Test connection the panel's size note follows the server's maxima and the canvas size
    rule of the control LoRA (and, in Trajectory mode, of the trajectory LoRA), and the control
    canvas is exported at the size the LoRA reads (no pixels the engine would throw away)."""
    from PIL import Image

    scene = fresh_shot(tmp_path, server=live_server)
    settings = scene.ltx_render
    settings.width, settings.height = 1984, 128
    assert settings.size_note == "1984 x 128"  # limits unknown yet: only the /32 rule
    assert bpy.ops.ltx_render.test_connection() == {"FINISHED"}
    # refreshed by Test connection (store_limits), not computed in draw()
    assert settings.size_note == "width 1984 -> 1920: the server's maximum is 1920x1920"
    settings.width = 250
    settings.control_lora = CONTROL_X2  # trained at reference factor 2 (its file says so)
    assert settings.size_note == ("width 250 -> 256: the control LoRA 'control_x2' reads a 1/2-size canvas, "
                                  "so sizes must be multiples of 64")
    settings.height = 160
    settings.camera_mode = "trajectory"  # the server's only trajectory LoRA, factor 4
    assert settings.size_note == ("width 250 -> 256, height 160 -> 128: the trajectory LoRA 'camera_trajectory' "
                                  "reads a 1/4-size canvas, so sizes must be multiples of 128")
    assert bpy.ops.ltx_render.render_preview() == {"FINISHED"}
    assert _job(scene).state == jobs.DONE, _job(scene).message
    m = live_server.job(_job(scene).job_id).manifest
    assert (m.width, m.height, m.controls[0].width, m.controls[0].height) == (256, 128, 128, 64)
    assert (m.camera.mode, m.camera.trajectory_lora) == (pb.CAMERA_MODE_TRAJECTORY, "camera_trajectory")
    take = Path(bpy.path.abspath(_job(scene).take_dir))
    assert Image.open(take / "bundle" / "control" / "000001.png").size == (128, 64)
    used = json.loads((take / "sidecar.json").read_text())["engine"]["loras"]
    assert {CONTROL_X2, "camera_trajectory"} <= {lo["name"] for lo in used}
