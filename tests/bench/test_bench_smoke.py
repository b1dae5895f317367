"""The benchmarks still run: each in a subprocess with --quick, printing its ratio line (~10 s each)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_grid_bench_prints_the_factor_ratio():
    out = run_bench("grid.py")
    ratio = re.search(r"denoising time factor 1 / factor 4: (\d+\.\d+)x", out)
    assert ratio and float(ratio.group(1)) > 0, out
    tokens = re.findall(r"^factor (\d)\s+(\d+)\s+(\d+)", out, flags=re.M)
    # 9 frames at 128x128: 2 latent frames; the camera canvas at factor 1 is 4x4 cells, at factor 4 1x1.
    assert tokens == [("1", "32", "96"), ("4", "2", "66")], out


def test_server_overhead_bench_prints_the_ratio_against_its_target(tmp_path):
    from render_backend.engine.ltx2.test_model import make_test_model

    model = make_test_model(tmp_path / "tiny")  # not ./.cache: tests leave the checkout alone
    out = run_bench("server_overhead.py", "--model", str(model))
    ratio = re.search(r"ratio end to end / direct render: (\d+\.\d+) \(target <= 1.05: (met|NOT met)\)", out)
    assert ratio and float(ratio.group(1)) > 0, out
    medians = [float(x) for x in re.findall(r"^median .*?(\d+\.\d+) s", out, flags=re.M)]
    assert len(medians) == 3 and all(m > 0 for m in medians), out
    # The ratio is of the printed medians (rounded to 1 ms).
    assert abs(medians[2] / medians[0] / float(ratio.group(1)) - 1) < 0.02, out


def test_gpu_full_size_bench_runs_its_code_path_on_cpu():
    """The full-size GPU benchmark can only be timed on a GPU; its code path (full LTX-2 block
    config, one layer, our biased attention, both sequences) must still run here."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_full_size.py"), "--allow-cpu", "--layers", "1",
                           "--frames", "9", "--width", "128", "--height", "128", "--steps", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = re.findall(r"^(control only|control \+ camera f4)\s+(\d+)\s+(\d+\.\d+)", proc.stdout, flags=re.M)
    # 9 frames at 128x128: 32 target + 32 control tokens; the factor-4 camera canvas adds 2.
    assert [(name, int(tokens)) for name, tokens, _ in rows] == [("control only", 64), ("control + camera f4", 66)]
    assert all(float(seconds) > 0 for _, _, seconds in rows)
    assert re.search(r"camera canvas at factor 4 costs [+-]?\d+\.\d+ % time", proc.stdout), proc.stdout


def test_export_bench_times_every_canvas_kind_at_both_sizes():
    """Quick run: 9 frames of the example shot at 256x160 and its factor-2 reference size 128x80."""
    out = run_bench("export.py")
    assert re.search(r"^\s+cycles\s+1\s+256x160\s+\d+\.\d{3}\s+\d+\.\d{3}\s+1\.00x$", out, flags=re.M), out
    assert re.search(r"^\s+cycles\s+2\s+128x80\s+\d+\.\d{3}\s+\d+\.\d{3}\s+\d+\.\d\dx\s+<- control LoRA$", out,
                     flags=re.M), out
    assert re.search(r"\|\s+256x160 gather\s+canvas\s+total\s+speed-up \|\s+128x80\* gather", out), out
    cell = r"\s+\|\s+(\d+\.\d{3})\s+(\d+\.\d{3})\s+(\d+\.\d{3})\s+(\d+\.\d\d)x"
    rows = re.findall(rf"^\s*(\S+)\s+cycles{cell}{cell}$", out, flags=re.M)
    assert [row[0] for row in rows] == ["depth", "pose", "edges", "playblast", "depth+pose"], out
    wall = float(re.search(r"^wall time (\d+\.\d) s for both tables$", out, flags=re.M).group(1))
    export_rows = [float(x) for x in re.findall(r"^\s+cycles\s+\d\s+\d+x\d+\s+[\d.]+\s+([\d.]+)", out, flags=re.M)]
    spent = 0.0
    for kind, *numbers in rows:
        g1, c1, t1, s1, g2, c2, t2, s2 = (float(v) for v in numbers)
        assert 0.0 < g1 < 5.0 and 0.0 < g2 < 5.0, kind  # seconds per frame
        assert t1 == pytest.approx(g1 + c1, abs=0.0015) and t2 == pytest.approx(g2 + c2, abs=0.0015), kind
        assert s1 == 1.0 and s2 == pytest.approx(t1 / t2, rel=0.1, abs=0.02), kind
        spent += 9 * (t1 + t2)
    # per-frame numbers times 9 frames (plus the export table, warm-ups excluded) fit in the wall time
    assert spent + 9 * sum(export_rows) <= wall + 0.1, out
def test_load_bench_verifies_every_job_and_prints_its_figures(tmp_path):
    from render_backend.engine.ltx2.test_model import make_test_model

    model = make_test_model(tmp_path / "tiny")
    out = run_bench("load.py", "--model", str(model))
    verified = re.search(r"^jobs finished: (\d+)/(\d+) verified", out, flags=re.M)
    assert verified and verified.groups() == ("20", "20"), out  # --quick: 20 clients x 1 shot
    rate = re.search(r"^throughput: (\d+\.\d) jobs/min \((\d+) jobs in (\d+\.\d) s\)", out, flags=re.M)
    assert rate and int(rate.group(2)) == 20 and float(rate.group(1)) > 0, out
    # Jobs per minute is the count over the printed duration (both rounded).
    assert abs(20 / float(rate.group(3)) * 60 / float(rate.group(1)) - 1) < 0.05, out
    p50, p95 = map(float, re.search(r"^time to first event: p50 (\d+\.\d+) s, p95 (\d+\.\d+) s", out, flags=re.M).groups())
    assert 0 < p50 <= p95 < 60, out
    peak, warm = map(float, re.search(r"^server peak RSS: (\d+) MiB \(after one warm-up job: (\d+) MiB\)", out,
                                      flags=re.M).groups())
    assert 100 < warm <= peak < 4096, out  # the whole server process with torch and the tiny model


def test_continuity_bench_prints_chained_against_independent(tmp_path):
    from render_backend.engine.ltx2.test_model import make_test_model

    model = make_test_model(tmp_path / "tiny")
    out = run_bench("continuity.py", "--model", str(model))
    assert "2 windows of 17 frames at 64x64, 1 steps, overlap 9 (25 frames of take)" in out, out
    independent = float(re.search(r"^median independent windows:\s+(\d+\.\d+) s", out, flags=re.M).group(1))
    chained = float(re.search(r"^median chained \(held, tail, assembly\):\s+(\d+\.\d+) s", out, flags=re.M).group(1))
    ratio = float(re.search(r"^ratio chained / independent: (\d+\.\d+)$", out, flags=re.M).group(1))
    assert 0 < independent < 60 and 0 < chained < 60, out
    # The ratio of the medians, which are printed rounded to 1 ms: allow exactly that rounding.
    assert (chained - 5e-4) / (independent + 5e-4) - 5e-4 <= ratio <= (chained + 5e-4) / (independent - 5e-4) + 5e-4, out


def test_preview_bench_prints_every_stage_of_a_render_preview(tiny_model):
    out = run_bench("preview.py", "--model", str(tiny_model))
    rows = dict(re.findall(r"^(\S[^\d\n]*?) +(\d+\.\d+) +\d+%$", out, flags=re.M))
    stages = ("export", "upload", "queue", "load inputs", "text encode", "reference enc.", "denoise", "decode",
              "mux + write", "fetch", "sequencer", "other")
    assert set(stages) | {"button to strips"} <= set(rows), out
    total = float(rows["button to strips"])
    assert 0 < total < 120 and float(rows["denoise"]) > 0 and float(rows["export"]) > 0, out
    # Each stage is timed on its own: they do not overlap, so together they fit in the total (the
    # "other" row is what is left: the modal operator's ticks).
    measured = sum(float(rows[s]) for s in stages if s != "other")
    assert measured <= total + 0.01 and float(rows["other"]) == pytest.approx(total - measured, abs=0.01), out
    server, exporter = (float(x) for x in re.findall(r"^(?:server|exporter) peak MiB +(\d+)", out, flags=re.M))
    assert 100 < server < 8192 and 100 < exporter < 8192, out
