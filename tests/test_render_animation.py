"""`python -m blender_addon.cli render-animation` as a render farm runs it: a real `render-backend serve`
process, the example scene, three windows of one shot. Killed halfway (the client, then the server),
rerun with the same command, it finishes without rendering a finished window again, and the take is
exactly the requested frames."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from render_backend.media import probe_mp4, probe_wav  # noqa: E402
from render_backend.proto import render_pb2 as pb  # noqa: E402
from tests.example_blend import example_blend_and_model  # noqa: E402
from tests.server.procs import ServeProcess  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scene_and_model(tmp_path_factory):
    return example_blend_and_model(tmp_path_factory.mktemp("animation"), frames=57)


def _command(blend, server, out):
    return [sys.executable, "-m", "blender_addon.cli", "render-animation", str(blend), "--server", server,
            "--out", str(out), "--frames", "1-57", "--max-frames", "25", "--overlap", "9", "--prompt", "a man walks",
            "--progress", "json"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run_until(cmd, event: str, timeout: float = 240) -> list[dict]:
    """Start the command and SIGKILL it right after it printed `event`; returns the events seen."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        if line.startswith("{"):
            events.append(json.loads(line))
            if events[-1].get("event") == event:
                proc.send_signal(signal.SIGKILL)
                break
        assert time.monotonic() < deadline, events
    proc.wait(30)
    return events


def _run(cmd) -> tuple[int, list[dict]]:
    run = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return run.returncode, events


def _windows(out: Path) -> list[dict]:
    return json.loads((out / "animation.json").read_text())["shots"][0]["windows"]


def _check_take(out: Path) -> None:
    take = out / "shot_0001-0057" / "take"
    info = probe_mp4(take / "video.mp4")
    assert (info.frames, info.fps) == (57, 24)  # exactly the range: 25 + 16 + 16 new frames
    assert probe_wav(take / "audio.wav")[3] == pytest.approx(57 / 24, abs=1e-3)


def test_a_killed_client_reruns_without_rendering_a_finished_window_again(scene_and_model, tmp_path):
    blend, model = scene_and_model
    with ServeProcess(model, tmp_path / "data", "--upsampler", "none") as server:
        out = tmp_path / "out"
        seen = _run_until(_command(blend, server.address, out), "window_done")
        done = [w for w in _windows(out) if w["state"] == "done"]
        assert len(done) == 1 and seen[-1]["windows_done"] == 1  # killed after window 1 of 3
        code, events = _run(_command(blend, server.address, out))
        assert code == 0, events[-3:]
        assert events[-1]["event"] == "finished" and events[-1]["state"] == "done"
        assert any("resuming" in e.get("message", "") for e in events)
        windows = _windows(out)
        assert [w["state"] for w in windows] == ["done"] * 3 and windows[0]["job_id"] == done[0]["job_id"]
        # The server rendered each window once (the killed client's window 2 upload, if any, was found again).
        jobs = server.client.list_jobs(limit=100)
        window_jobs = [j for j in jobs if j.request_id.startswith("win-")]
        assert len(window_jobs) == 3 and {j.state for j in window_jobs} == {pb.JOB_STATE_DONE}
        assert [w["request_id"] for w in windows] == [j.request_id for j in reversed(window_jobs)]
        _check_take(out)
        progress = [e for e in events if e["event"] == "window_done"]
        assert [(e["window"], e["windows_done"]) for e in progress] == [(2, 2), (3, 3)]
        assert [e["frames_done"] for e in progress] == [41, 57] and progress[0]["eta_s"] is not None


def test_a_server_killed_halfway_restarts_and_the_rerun_completes(scene_and_model, tmp_path):
    blend, model = scene_and_model
    server = ServeProcess(model, tmp_path / "data", "--upsampler", "none").start()
    try:
        out = tmp_path / "out"
        proc = subprocess.Popen(_command(blend, server.address, out), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if '"window_done"' in line:
                server.kill()  # the GPU box crashes with window 2 about to start
                break
        proc.communicate(timeout=300)
        assert proc.returncode == 1  # not everything assembled: no 0 for a farm to trust
        assert sum(w["state"] == "done" for w in _windows(out)) == 1
        server.start()  # same port, same data dir
        code, events = _run(_command(blend, server.address, out))
        assert code == 0, events[-3:]
        jobs = [j for j in server.client.list_jobs(limit=100) if j.request_id.startswith("win-")]
        done_jobs = [j for j in jobs if j.state == pb.JOB_STATE_DONE]
        assert len(done_jobs) == 3  # window 1 kept from before the crash, windows 2 and 3 after
        _check_take(out)
    finally:
        server.stop()


CHECK_STRIPS = """
import json, sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
seq = bpy.context.scene.sequence_editor
strips = seq.strips_all if hasattr(seq, "strips_all") else seq.sequences_all
print(json.dumps([[s.type, s.frame_final_start, s.frame_final_end, getattr(getattr(s, "transform", None), "scale_x", 0),
                   getattr(getattr(s, "transform", None), "scale_y", 0)] for s in strips]))
"""


def test_render_animation_at_preview_renders_every_window_at_half_size_and_the_strip_covers_the_final(
        scene_and_model, tmp_path):
    """`render-animation --preview`: one quality for the whole job (each window continues from a tail
    of its own size), the take at half size with every frame and its sound, the strip scaled to the
    Final size; the same folder refuses a Final rerun instead of mixing sizes."""
    blend, model = scene_and_model  # the panel's size: 768 x 512
    with ServeProcess(model, tmp_path / "data") as server:  # the upsampler on: Final would be two stages
        out = tmp_path / "out"
        code, events = _run([*_command(blend, server.address, out), "--preview"])
        assert code == 0, events[-3:]
        job = json.loads((out / "animation.json").read_text())
        assert (job["quality"], job["size"], job["display_size"]) == ("preview", [384, 256], [768, 512])
        take = out / "shot_0001-0057" / "take"
        info = probe_mp4(take / "video.mp4")
        assert (info.width, info.height, info.frames, info.fps) == (384, 256, 57, 24)
        assert probe_wav(take / "audio.wav")[3] == pytest.approx(57 / 24, abs=1e-3)
        windows = [j for j in server.client.list_jobs(limit=100) if j.request_id.startswith("win-")]
        assert len(windows) == 3
        for job in windows:  # each window: half size, one stage
            path = server.client.fetch(job.job_id, pb.ARTIFACT_KIND_SIDECAR_JSON, tmp_path / f"{job.job_id}.json")
            engine = json.loads(path.read_text())["engine"]
            assert (engine["width"], engine["height"], engine["stages"]) == (384, 256, 1), engine
        strips = json.loads(subprocess.run([sys.executable, "-c", CHECK_STRIPS, str(out / blend.name)], cwd=ROOT,
                                           check=True, capture_output=True, text=True, timeout=120).stdout
                            .strip().splitlines()[-1])
        movie = [s for s in strips if s[0] == "MOVIE"]
        assert len(movie) == 1 and movie[0][1:3] == [1, 58] and movie[0][3:] == [2.0, 2.0], strips
        assert any(s[0] == "SOUND" and s[1:3] == [1, 58] for s in strips), strips
        again = subprocess.run([*_command(blend, server.address, out), "--final"], cwd=ROOT, env=_env(),
                               capture_output=True, text=True, timeout=300)
        assert again.returncode != 0  # another quality in the same folder: refused, nothing rendered
        assert "holds another animation" in again.stderr and "preview" in again.stderr, again.stderr[-800:]
        assert len([j for j in server.client.list_jobs(limit=100) if j.request_id.startswith("win-")]) == 3
