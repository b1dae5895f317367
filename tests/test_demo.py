"""`./dev demo`, the README's main job, run as a user runs it: a real server process, a real bpy
scene, and results decoded from disk (not trusted from the demo's own printout)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

av = pytest.importorskip("av")
pytest.importorskip("bpy", reason="the demo builds a Blender scene (pip install bpy==5.0.1)")

ROOT = Path(__file__).resolve().parents[1]

STRIPS = """
import bpy, json, sys
bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
s = bpy.context.scene
print(json.dumps({"fps": s.render.fps / s.render.fps_base, "strips": [
    {"type": x.type, "start": x.frame_final_start, "length": x.frame_final_duration}
    for x in sorted(s.sequence_editor.strips_all, key=lambda x: x.channel)]}))
"""


@pytest.mark.slow
@pytest.mark.blender
def test_demo_leaves_a_playable_take_and_a_blend_with_synced_strips(tmp_path):
    out = tmp_path / "out"
    # Its own state file (not the developer's warm server) and a short idle exit, stopped at the end.
    demo = [sys.executable, "scripts/demo.py", "--out", str(out), "--server-state", str(tmp_path / "server.json"),
            "--idle-exit", "120", "--frames", "17", "--size", "128", "96"]
    try:
        # capture_output: the detached server must not hold these pipes open (the run would hang)
        run = subprocess.run(demo, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        again = subprocess.run(demo, cwd=ROOT, capture_output=True, text=True, timeout=600)  # the take checked below
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    finally:
        stop = subprocess.run(demo + ["--stop-server"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    pid = re.search(r"render server on [\d.:]+, pid (\d+) \(new", run.stdout).group(1)
    assert re.search(rf"render server on [\d.:]+, pid {pid} \(warm, reused", again.stdout), again.stdout
    assert "==> time: server reused" in again.stdout and "render preview" in again.stdout
    assert "stopped the render server on 127.0.0.1:" in stop.stdout and f"(pid {pid})" in stop.stdout
    assert "NOISE" in run.stdout and "--model" in run.stdout  # says the output is noise and how to fix that

    takes = sorted((out / "renders").glob("*/*/take_*"))
    assert len(takes) == 1, takes
    take = takes[0]
    with av.open(str(take / "video.mp4")) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert (frames, video.codec_context.width, video.codec_context.height) == (17, 128, 96)
        assert float(video.average_rate) == 24.0
        assert container.streams.audio[0].codec_context.name == "aac"
    with wave.open(str(take / "audio.wav")) as w:
        assert abs(w.getnframes() / w.getframerate() - 17 / 24) < 1 / 24
    assert len(list((take / "bundle" / "control").glob("*.png"))) == 17
    sidecar = json.loads((take / "sidecar.json").read_text())
    assert sidecar["camera"]["move"] == "dolly_zoom"  # the example camera pulls back while zooming in

    probe = subprocess.run([sys.executable, "-c", STRIPS, str(out / "walk_dolly_zoom.blend")],
                           capture_output=True, text=True, timeout=120)
    facts = json.loads(probe.stdout.strip().splitlines()[-1])
    assert facts["fps"] == 24.0
    assert [(s["type"], s["start"], s["length"]) for s in facts["strips"]] == [("MOVIE", 1, 17), ("SOUND", 1, 17)]
