"""bench/attention.py still runs (--quick, on the CPU) and prints what it promises."""

from __future__ import annotations

import re

from .test_bench_smoke import run_bench


def test_attention_bench_prints_flex_against_dense():
    """Quick run: 256 + 256 tokens on the CPU; both kernels give the same numbers, the ratio is printed."""
    out = run_bench("attention.py")
    rows = re.findall(r"^(dense|flex)\s+(\d+\.\d{3})\s+\d+\.\d\d\s+(\d+\.\d\d)\s+", out, flags=re.M)
    assert [name for name, _, _ in rows] == ["dense", "flex"], out
    assert float(rows[0][1]) == 1.0  # the (512, 512) fp32 bias: 1 MiB; flex keeps 8 bytes per token
    assert float(rows[1][1]) < 0.01, out
    assert float(re.search(r"^max relative difference flex vs dense: (\S+)$", out, flags=re.M).group(1)) < 1e-5
    ratio = float(re.search(r"^flex / dense call time: (\d+\.\d\d)x", out, flags=re.M).group(1))
    # The ratio of the printed call times (rounded to 0.01 ms).
    dense_ms, flex_ms = float(rows[0][2]), float(rows[1][2])
    assert ratio > 0 and abs(flex_ms / dense_ms / ratio - 1) < 0.05, out
