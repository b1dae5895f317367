"""Add-on test fixtures.

`live_server`: a REAL render server on loopback (render_backend.server.app.BackgroundServer)
around the REAL engine on the tiny random LTX-2 (one per test session, with a bearer token).
Every byte goes through real gRPC, validation, the job store, the queue and the engine; the
only thing missing is a GPU. Tests that need a job slow enough to watch or cancel raise the
engine's step count (`slow_engine`).

Also: leave no add-on behind. The Blender tests of other packages run in the same process,
and a registered `scene.ltx_render` would change what their exports record.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

TOKEN = "addon-tests-token"
from tests.conftest import CONTROL_X2  # noqa: E402, F401  (the shared tiny model has it)


@dataclass
class LiveServer:
    background: object  # BackgroundServer
    engine: object      # render_backend.engine.ltx2.engine.LTX2Engine
    token: str

    @property
    def address(self) -> str:
        return self.background.address

    @property
    def store(self):
        return self.background.server.store

    def job(self, job_id: str):
        """The server's record of a job (manifest, state, artifacts)."""
        return self.store.get(job_id)

    def jobs_of(self, request_ids) -> list:
        """Server jobs submitted with these request ids, in submission order."""
        found = [self.store.get_by_request(r) for r in request_ids]
        return sorted((j for j in found if j is not None), key=lambda j: j.created_ms)


def wait_serving(address: str, token: str = "", timeout: float = 60.0) -> None:
    from blender_addon.client.profiles import ServerProfile
    from blender_addon.client.render_client import RenderClient

    deadline = time.monotonic() + timeout
    with RenderClient(ServerProfile("wait", address, token=token)) as client:
        while client.health() != "SERVING":
            assert time.monotonic() < deadline, f"server at {address} never reported SERVING"
            time.sleep(0.05)


def start_server(engine, data_dir: Path, *, token: str | None = TOKEN, port: int = 0, **config):
    """A started BackgroundServer on 127.0.0.1 (SERVING once the engine is loaded)."""
    from render_backend.server.app import BackgroundServer
    from render_backend.server.config import ServerConfig

    cfg = ServerConfig(host="127.0.0.1", port=port, data_dir=data_dir, token=token,
                       **{"heartbeat_s": 0.5, "chunk_bytes": 64 * 1024, **config})
    return BackgroundServer(engine, cfg).start()


@pytest.fixture(scope="session")
def live_server(engine, tmp_path_factory):
    server = start_server(engine, tmp_path_factory.mktemp("addon-server"))
    try:
        wait_serving(server.address, TOKEN)
        yield LiveServer(server, engine, TOKEN)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def loading_address(tiny_model, tmp_path_factory):
    """A real server whose engine is still loading its weights (health NOT_SERVING)."""
    from render_backend.engine.ltx2.engine import LTX2Engine

    gate = threading.Event()

    class StillLoading(LTX2Engine):  # the real engine; its load() waits until the test is over
        def load(self):
            gate.wait()
            raise RuntimeError("test over: never loaded")

    server = start_server(StillLoading(str(tiny_model), device="cpu"), tmp_path_factory.mktemp("loading"),
                          token=None)
    try:
        yield server.address
    finally:
        gate.set()
        server.stop()


@pytest.fixture
def silent_address():
    """host:port of a socket that accepts connections but never answers (a hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def slow_engine(engine, monkeypatch):
    """slow_engine(steps): the engine denoises with `steps` steps (default 8) until the test ends,
    so a job runs long enough to be watched and cancelled mid-denoising."""
    def set_steps(steps: int) -> None:
        monkeypatch.setattr(engine, "default_steps", lambda: steps)
    return set_steps


@pytest.fixture(scope="module", autouse=True)
def _disable_addon_after_module():
    yield
    if "bpy" not in sys.modules:
        return
    import addon_utils
    import bpy

    if "blender_addon" in bpy.context.preferences.addons:
        addon_utils.disable("blender_addon", default_set=True)
    from blender_addon.operators import records as session

    session.shutdown_worker()
    session.LIVE.clear()
