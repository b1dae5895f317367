"""The full-size training benchmark can only be timed on a GPU; its code path (random weights, the
trainer's adapter, sampler, parallel canvas and optimizer step) must still run here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_train_step_bench_runs_its_code_path_on_cpu(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "train_step.py"), "--allow-cpu", "--tiny", "--layers",
                           "2", "--frames", "9", "--width", "128", "--height", "64", "--factor", "2", "--steps", "2",
                           "--json", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # 9 frames at 128x64: 2 x 2 x 4 = 16 target tokens, the factor-2 canvas 2 x 1 x 2 = 4
    assert "reference factor 2: 20 video tokens" in proc.stdout, proc.stdout
    assert re.search(r"step time: median \d+\.\d+ s over 2 steps", proc.stdout), proc.stdout
    numbers = json.loads(out.read_text())
    assert len(numbers["step_seconds"]) == 2 and all(s > 0 for s in numbers["step_seconds"])


def test_without_a_gpu_the_bench_says_so_and_measures_nothing():
    import torch

    if torch.cuda.is_available():
        return
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "train_step.py")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "NEEDS A CUDA GPU" in proc.stdout
