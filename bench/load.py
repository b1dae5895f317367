"""Load: N concurrent clients against one real `render-backend serve` process on loopback.

Each client submits its own shots (distinct seed, prompt and shot name), follows each with WatchJob,
fetches mp4 + wav + sidecar and verifies them: sha256 of every file, and that the sidecar names this
client's job, request, seed and prompt. Printed: jobs per minute over the whole run, time to first
event (from the start of SubmitShot to the first WatchJob event) and time to result, p50/p95, and the
server's peak memory (VmHWM from /proc/<pid>/status: the whole process, model included).

Run: .venv/bin/python bench/load.py [--clients 20] [--shots 2] [--frames 17 --width 64 --height 64
     --steps 2] [--model DIR] [--quick]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_client(address: str, index: int, args, out: Path) -> list[dict]:
    from render_backend.client import ServiceClient
    from render_backend.demo import synthetic_shot
    from render_backend.proto import render_pb2 as pb

    rows = []
    with ServiceClient(address, timeout=120) as client:
        for k in range(args.shots):
            n = index * args.shots + k
            m, controls, masks = synthetic_shot(args.frames, args.width, args.height, steps=args.steps, seed=n,
                                                shot_name=f"load_{n:03d}", prompt=f"shot {n}: a ball rolls by")
            t0 = time.monotonic()
            job = client.submit(m, controls, masks)
            first, final = None, None
            for ev in client.watch(job.job_id, timeout=600):
                first = first or time.monotonic()
                final = ev
            done = time.monotonic()
            ok = final.state == pb.JOB_STATE_DONE
            hashes = {}
            for a in final.artifacts if ok else []:
                path = client.fetch(job.job_id, a.kind, out / f"{n:03d}" / a.filename)
                hashes[a.kind] = hashlib.sha256(path.read_bytes()).hexdigest()
                ok = ok and hashes[a.kind] == a.sha256
            if ok:
                side = json.loads((out / f"{n:03d}" / next(a.filename for a in final.artifacts
                                                          if a.kind == pb.ARTIFACT_KIND_SIDECAR_JSON)).read_text())
                ok = (side["job_id"], side["request_id"], side["engine"]["seed"], side["engine"]["prompt"]) == \
                    (job.job_id, m.request_id, n, m.prompt)
                ok = ok and {f["sha256"] for f in side["files"]} == \
                    {hashes[pb.ARTIFACT_KIND_VIDEO_MP4], hashes[pb.ARTIFACT_KIND_AUDIO_WAV]}
            rows.append({"ok": ok, "first_event_s": first - t0, "result_s": done - t0})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--shots", type=int, default=2, help="shots per client, one after the other")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--model", default=None, help="model folder (default: the tiny test model)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 clients x 1 shot, 9 frames, 1 step")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.shots, args.frames, args.steps = 20, 1, 9, 1

    from render_backend.client import ServiceClient
    from render_backend.engine.ltx2.test_model import make_test_model

    model = Path(args.model) if args.model else make_test_model(ROOT / ".cache" / "test-model")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        log = open(Path(tmp) / "serve.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "render_backend.cli", "serve", "--model", str(model),
                                   "--data-dir", str(Path(tmp) / "data"), "--port", str(port)],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        address = f"127.0.0.1:{port}"
        try:
            with ServiceClient(address, timeout=5) as probe:
                deadline = time.monotonic() + 180
                while True:
                    try:
                        if probe.health() == "SERVING":
                            break
                    except Exception:  # noqa: BLE001 - not listening yet
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.close()
                        print((Path(tmp) / "serve.log").read_text()[-3000:], file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            warm = run_client(address, 10_000, argparse.Namespace(**{**vars(args), "shots": 1}), Path(tmp) / "warm")
            assert warm[0]["ok"], "the warm-up shot failed"
            idle_peak = peak_rss_mib(server.pid)
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                rows = [r for rs in pool.map(lambda i: run_client(address, i, args, Path(tmp) / "out"),
                                             range(args.clients)) for r in rs]
            took = time.monotonic() - t0
            peak = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(30)
            log.close()

    first = [r["first_event_s"] for r in rows]
    result = [r["result_s"] for r in rows]
    verified = sum(r["ok"] for r in rows)
    print(f"load: {args.clients} clients x {args.shots} shot(s) ({args.frames} frames {args.width}x{args.height}, "
          f"{args.steps} steps), model {model.name}")
    print(f"jobs finished: {verified}/{len(rows)} verified (sha256 + own sidecar)")
    print(f"throughput: {len(rows) / took * 60:.1f} jobs/min ({len(rows)} jobs in {took:.1f} s)")
    print(f"time to first event: p50 {percentile(first, 50):.3f} s, p95 {percentile(first, 95):.3f} s")
    print(f"time to result: p50 {percentile(result, 50):.3f} s, p95 {percentile(result, 95):.3f} s "
          f"(mean {statistics.mean(result):.3f} s)")
    print(f"server peak RSS: {peak:.0f} MiB (after one warm-up job: {idle_peak:.0f} MiB)")
    return 0 if verified == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
