"""The render-farm templates in farm/ (docs/render-farm.md), run as a farm would run them, against a
real `render-backend serve` process and the example scene:

- the Open Job Description template: parsed by openjd-model and run by openjd-cli (the reference
  OpenJD runtime, what Deadline Cloud workers use), one task = one shot;
- the Flamenco 3 job type: its compileJob run in node with a stand-in for Flamenco's `author` API,
  and the command line the Worker's blender-render command builds from it
  (`{exe} {exeArgs} {argsBefore} {blendfile} {args}`) run as is.

Neither a Flamenco Manager nor Deadline is reachable here; what those add (scheduling, retries) is
theirs. What the templates decide (arguments, one task per shot, where each shot's output goes)
is checked here."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from render_backend.media import probe_mp4, probe_wav  # noqa: E402
from tests.example_blend import example_blend_and_model  # noqa: E402
from tests.server.procs import ServeProcess  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
OPENJD_TEMPLATE = ROOT / "farm" / "openjd" / "ltx-render-animation.yaml"
FLAMENCO_JOB_TYPE = ROOT / "farm" / "flamenco" / "ltx-render-animation.js"


@pytest.fixture(scope="module")
def scene_and_model(tmp_path_factory):
    return example_blend_and_model(tmp_path_factory.mktemp("farm"), frames=41)


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _check_take(shot_dir: Path, frames: int) -> None:
    take = shot_dir / f"shot_0001-{frames:04d}" / "take"
    info = probe_mp4(take / "video.mp4")
    assert (info.frames, info.fps) == (frames, 24)
    assert probe_wav(take / "audio.wav")[3] == pytest.approx(frames / 24, abs=1e-3)
    job = json.loads((shot_dir / "animation.json").read_text())
    assert [w["state"] for w in job["shots"][0]["windows"]] == ["done", "done"]  # 1-25, then 17-41
    assert job["quality"] == "final"  # the templates' default, whatever the .blend's saved switch says


def test_the_openjd_template_is_valid_and_its_task_renders_a_shot(scene_and_model, tmp_path):
    from openjd.model import DocumentType, decode_job_template, document_string_to_object

    template = decode_job_template(template=document_string_to_object(
        document=OPENJD_TEMPLATE.read_text(), document_type=DocumentType.YAML))
    assert [step.name for step in template.steps] == ["RenderShot"]
    openjd = shutil.which("openjd", path=str(Path(sys.executable).parent)) or shutil.which("openjd")
    assert openjd, "openjd-cli is in requirements.txt; run ./dev test to install it"
    # The user lists the shots in the template (one task each), as its comment says.
    shipped = OPENJD_TEMPLATE.read_text()
    assert shipped.count('range: ["1-240", "241-480"]') == 1
    mine = tmp_path / "ltx-render-animation.yaml"
    mine.write_text(shipped.replace('range: ["1-240", "241-480"]', 'range: ["1-41", "42-57"]'))
    blend, model = scene_and_model
    with ServeProcess(model, tmp_path / "data", "--upsampler", "none") as server:
        out = tmp_path / "renders"
        run = subprocess.run(
            [openjd, "run", str(mine), "--step", "RenderShot", "--task-param", "Shot=1-41",
             "-p", f"BlendFile={blend}", "-p", f"Server={server.address}", "-p", f"OutputRoot={out}",
             "-p", f"Python={sys.executable}", "-p", "Prompt=a man walks", "-p", "MaxFrames=25",
             "-p", "Overlap=9"],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        assert '"event": "finished", "state": "done"' in run.stdout
        _check_take(out / "shot_1-41", 41)


def test_the_flamenco_job_type_makes_one_task_per_shot_whose_command_renders_it(scene_and_model, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Flamenco job type (JavaScript) cannot be compiled here")
    blend, model = scene_and_model
    out = tmp_path / "renders"
    with ServeProcess(model, tmp_path / "data", "--upsampler", "none") as server:
        settings = {"blendfile": str(blend), "shots": "1-41, 42-57", "server": server.address,
                    "render_output_root": str(out), "python": sys.executable, "max_frames": 25, "overlap": 9,
                    "prompt": "a man walks"}
        compiled = json.loads(subprocess.run(
            [node, str(ROOT / "tests" / "flamenco_compile.js"), str(FLAMENCO_JOB_TYPE), json.dumps({"settings": settings})],
            check=True, capture_output=True, text=True, timeout=60).stdout)
        assert compiled["label"] == "LTX Render Animation"
        assert [t["name"] for t in compiled["tasks"]] == ["shot 1-41", "shot 42-57"]
        command = compiled["tasks"][0]["commands"][0]
        assert command["type"] == "blender-render"
        p = command["parameters"]
        argv = [p["exe"], *shlex.split(p["exeArgs"]), *p["argsBefore"], p["blendfile"], *p["args"]]
        assert argv[argv.index("--out") + 1] == f"{out}/shot_1-41" and "--final" in argv  # not the .blend's switch
        run = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        _check_take(out / "shot_1-41", 41)
