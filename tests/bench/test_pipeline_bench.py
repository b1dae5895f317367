"""bench/pipeline.py still runs (--quick) and prints every before/after figure (its own file: no merge
conflict with the other bench smoke tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .test_bench_smoke import ROOT, run_bench


def test_pipeline_bench_prints_exr_upload_and_mp4_before_and_after():
    """Quick run (9 frames at 128x96, Cycles): numbers printed and sane, no speed-up asserted (shared machine)."""
    out = run_bench("pipeline.py", "--parts", "exr,upload,mp4")
    exr = dict((codec, tuple(map(float, rest))) for codec, *rest in
               re.findall(r"^\s+(ZIP|NONE)\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+)\s+<- (?:before|after)$", out, flags=re.M))
    assert set(exr) == {"ZIP", "NONE"}, out
    for write_ms, read_ms, kib in exr.values():
        assert 0 < write_ms < 60_000 and 0 < read_ms < 10_000 and kib > 0, out
    assert exr["NONE"][2] > exr["ZIP"][2], out  # uncompressed really is bigger: the codec was switched
    ratios = re.search(r"^EXR NONE vs ZIP: render\+write (\d+\.\d\d)x, read (\d+\.\d\d)x, both (\d+\.\d\d)x$", out,
                       flags=re.M)
    assert ratios and all(float(r) > 0 for r in ratios.groups()), out

    rows = re.findall(r"^\s*(depth\+pose|textured)\s+(\d+) KiB  (before|after|job)\s+.+?\s+(\d+\.\d\d) ms/frame"
                      r"\s+(\d+\.\d) ms for 9 frames$", out, flags=re.M)
    assert [(kind, name) for kind, _, name, _, _ in rows] == [
        (kind, name) for kind in ("depth+pose", "textured") for name in ("before", "after", "job")], out
    assert all(int(kib) >= 0 and 0 < float(ms) < 1000 for _, kib, _, ms, _ in rows), out
    speedup = re.search(r"^upload check speed-up: depth\+pose (\d+\.\d\d)x, textured (\d+\.\d\d)x "
                        r"\(target >= 5x: (met|NOT met)\)$", out, flags=re.M)
    assert speedup and float(speedup.group(1)) > 0 and float(speedup.group(2)) > 0, out
    peaks = re.search(r"^job decode of 9 frames, peak MiB: before \(list \+ np.stack\) (\d+), after \(one array\) "
                      r"(\d+)$", out, flags=re.M)
    assert peaks, out

    mp4 = re.findall(r"^\s+(\w+)\s+18\s+(\d+\.\d{3})\s+(\d+)\s+(\d+\.\d\d)", out, flags=re.M)
    assert [row[0] for row in mp4] == ["medium", "veryfast", "superfast", "ultrafast"], out
    assert all(float(s) > 0 and int(b) > 0 and 20 < float(p) < 99 for _, s, b, p in mp4), out
    assert re.search(r"^mp4 veryfast vs medium: \d+\.\d\dx faster, \d+\.\d\dx the bytes, PSNR [+-]\d+\.\d\d dB$", out,
                     flags=re.M), out


def test_pipeline_bench_vae_part_prints_peak_rss_and_the_exact_default():
    """The VAE part runs one process per variant; the default (chunked pixels) gives the very same latent."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "pipeline.py"), "--quick", "--parts", "vae"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {name: tuple(map(float, rest)) for name, *rest in re.findall(
        r"^\s+(before|after|tiled)\s+(\d+\.\d\d)\s+(\d+)\s+(\d+)\s+(\d\.\d\de[+-]\d\d)\s+(\d\.\d\de[+-]\d\d)",
        proc.stdout, flags=re.M)}
    assert set(rows) == {"before", "after", "tiled"}, proc.stdout
    assert all(seconds > 0 and 0 <= pixels <= peak < 16_384 for seconds, pixels, peak, _, _ in rows.values()), \
        proc.stdout
    assert rows["before"][3:] == (0.0, 0.0) and rows["after"][3:] == (0.0, 0.0), proc.stdout  # exact
    assert rows["tiled"][3] > 0, proc.stdout  # tiling is an approximation: why it stays opt-in
