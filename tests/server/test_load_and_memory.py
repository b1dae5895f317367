"""One real `render-backend serve` subprocess under hostile uploads and under 24 concurrent clients:
its memory stays bounded (peak RSS from /proc/<pid>/status), health answers fast, and every client gets
its own result, verified by sha256 and by its own sidecar."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading
import time

import grpc
import pytest

from render_backend.client import ServiceClient
from render_backend.demo import synthetic_shot
from render_backend.proto import render_pb2 as pb

from .hostile import assert_deliberate, bomb_png, header_only_png
from .procs import ServeProcess

CLIENTS = 24
PEAK_GROWTH_MIB = 120  # what hostile uploads may add to the server's peak RSS (6 decoded 9000^2 bombs: ~1.4 GiB)


@pytest.fixture(scope="module")
def serve(tiny_model, tmp_path_factory):
    with ServeProcess(tiny_model, tmp_path_factory.mktemp("load") / "data") as p:
        final = p.client.wait(p.client.submit(*synthetic_shot(9, 64, 64, steps=1)).job_id, timeout=60)
        assert final.state == pb.JOB_STATE_DONE  # warm: every import and code path touched once
        yield p


class _HealthWatch:
    """Polls health from its own thread; keeps the slowest answer."""

    def __init__(self, address: str):
        self.client = ServiceClient(address, timeout=10)
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            assert self.client.health() in ("SERVING", "NOT_SERVING")
            self.slowest = max(self.slowest, time.monotonic() - t0)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self.client.close()


def _hostile_upload(address: str, kind: str) -> str:
    m, controls, _ = synthetic_shot(9, 64, 64, steps=1, with_mask=False)
    png = {"bomb": lambda: bomb_png(9000, 9000), "header": lambda: header_only_png(65535, 65535),
           "oversized": lambda: controls[0] + b"\0" * (4 * 2**20)}[kind]()
    with ServiceClient(address, timeout=60) as client:
        with pytest.raises(grpc.RpcError) as err:
            client.submit(m, [png] * 9, [], chunk_bytes=256 * 1024)
    return assert_deliberate(err.value)[0]


def test_hostile_uploads_keep_the_server_memory_bounded_and_health_fast(serve):
    before_peak, before_rss = serve.peak_rss_mib(), serve.rss_mib()
    kinds = ["bomb"] * 6 + ["header"] * 6 + ["oversized"] * 6
    with _HealthWatch(serve.address) as health, concurrent.futures.ThreadPoolExecutor(len(kinds)) as pool:
        codes = list(pool.map(lambda k: _hostile_upload(serve.address, k), kinds))
    growth = serve.peak_rss_mib() - before_peak
    print(f"\nserver RSS {before_rss:.0f} MiB, peak {before_peak:.0f} MiB before; peak +{growth:.0f} MiB after "
          f"{len(kinds)} concurrent hostile uploads; slowest health check {health.slowest * 1000:.0f} ms")
    assert codes == ["INVALID_ARGUMENT"] * len(kinds)
    assert growth < PEAK_GROWTH_MIB, growth
    assert health.slowest < 1.0, health.slowest
    assert serve.client.health() == "SERVING"


def _one_client(address: str, i: int, out) -> dict:
    m, controls, masks = synthetic_shot(9, 64, 64, steps=1, seed=1000 + i, shot_name=f"load_{i:02d}",
                                        prompt=f"shot {i}: a red ball rolls past a grey box")
    with ServiceClient(address, timeout=60) as client:
        t0 = time.monotonic()
        job = client.submit(m, controls, masks)
        final = client.wait(job.job_id, timeout=300)
        assert final.state == pb.JOB_STATE_DONE, final.message
        got = {}
        for a in final.artifacts:
            path = client.fetch(job.job_id, a.kind, out / f"{i:02d}" / a.filename)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == a.sha256
            got[a.kind] = path
        sidecar = json.loads(got[pb.ARTIFACT_KIND_SIDECAR_JSON].read_text())
        return {"job_id": job.job_id, "request_id": m.request_id, "seed": m.seed, "prompt": m.prompt,
                "shot": m.shot_name, "sidecar": sidecar, "seconds": time.monotonic() - t0,
                "mp4": hashlib.sha256(got[pb.ARTIFACT_KIND_VIDEO_MP4].read_bytes()).hexdigest(),
                "wav": hashlib.sha256(got[pb.ARTIFACT_KIND_AUDIO_WAV].read_bytes()).hexdigest()}


def test_concurrent_clients_each_get_their_own_verified_result(serve, tmp_path):
    before_peak = serve.peak_rss_mib()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda i: _one_client(serve.address, i, tmp_path), range(CLIENTS)))
    took = time.monotonic() - t0
    print(f"\n{CLIENTS} concurrent clients: {took:.1f} s, {CLIENTS / took * 60:.0f} jobs/min; server peak RSS "
          f"{serve.peak_rss_mib():.0f} MiB (+{serve.peak_rss_mib() - before_peak:.0f})")
    assert len({r["job_id"] for r in results}) == CLIENTS
    assert len({r["mp4"] for r in results}) == CLIENTS  # distinct seeds: distinct videos
    for r in results:
        side = r["sidecar"]  # each sidecar describes its own client's shot, not a neighbour's
        assert (side["job_id"], side["request_id"], side["shot_name"]) == (r["job_id"], r["request_id"], r["shot"])
        assert (side["engine"]["seed"], side["engine"]["prompt"]) == (r["seed"], r["prompt"])
        files = {f["filename"].rsplit(".", 1)[1]: f["sha256"] for f in side["files"]}
        assert (files["mp4"], files["wav"]) == (r["mp4"], r["wav"])
    assert serve.client.health() == "SERVING"
