"""Server tests: a real gRPC server on loopback around the REAL engine on the tiny random model."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from render_backend.client import ServiceClient
from render_backend.proto import render_pb2 as pb
from render_backend.server.app import BackgroundServer
from render_backend.server.config import ServerConfig

torch.set_num_threads(1)

# A shot slow enough (~2-6 s on one CPU thread) to watch, re-attach to and cancel mid-run.
SLOW = {"num_frames": 65, "width": 128, "height": 128, "steps": 150}


def wait_serving(client: ServiceClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.health() != "SERVING":
        assert time.monotonic() < deadline, "server did not report SERVING"
        time.sleep(0.05)


@contextmanager
def running_server(engine, data_dir: Path, **config):
    """A BackgroundServer on a free loopback port + a connected client (waits for SERVING)."""
    cfg = ServerConfig(host="127.0.0.1", port=0, data_dir=data_dir, **{"heartbeat_s": 0.5, **config})
    server = BackgroundServer(engine, cfg).start()
    client = ServiceClient(server.address, token=cfg.token)
    try:
        wait_serving(client)
        yield server, client
    finally:
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def served(engine, tmp_path_factory):
    """One shared server per test module (small fetch chunks so artifacts span several)."""
    with running_server(engine, tmp_path_factory.mktemp("data"), chunk_bytes=16 * 1024) as pair:
        yield pair


def wait_state(client: ServiceClient, job_id: str, states: tuple[int, ...], timeout: float = 60,
               min_step: int = 1) -> pb.JobEvent:
    """Watch until the job reaches one of `states` (RUNNING: with at least `min_step` denoising steps done)."""
    call = client.watch(job_id, timeout=timeout)
    try:
        for ev in call:
            if ev.state in states and (ev.state != pb.JOB_STATE_RUNNING or ev.step >= min_step):
                return ev
    finally:
        call.cancel()
    raise AssertionError(f"job {job_id} ended without reaching {states}")
