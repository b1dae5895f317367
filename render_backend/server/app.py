"""Building and running the gRPC server: RenderService, health, reflection, auth, TLS.

The port opens first (health NOT_SERVING), the weights load in a background thread, then
health turns SERVING and the queue starts. Health is SERVING only while the model is loaded AND
the data folder takes writes (StorageGuard); it flips back and forth by itself with the disk. `RenderServer` runs in the caller's asyncio loop
(`render-backend serve`); `BackgroundServer` runs one in its own thread (tests, demo, bench).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import traceback
from pathlib import Path
from typing import Optional

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from ..engine.contract import RenderEngine
from ..proto import render_pb2 as pb
from ..proto import render_pb2_grpc as pb_grpc
from .auth import BearerAuth
from .config import ServerConfig
from .errors import ErrorStatus
from .idle import Activity
from .queue import JobBoard, JobRunner, model_info
from .service import RenderService
from .storage import StorageError, StorageGuard
from .store import JobStore

log = logging.getLogger("render_backend.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RenderService"].full_name


def security_warnings(config: ServerConfig) -> list[str]:
    """Loud warnings for a server reachable from other machines without TLS or a token."""
    if config.loopback:
        return []
    out = []
    if not config.tls:
        out.append(f"WARNING: listening on {config.host} WITHOUT TLS: prompts, frames and results travel "
                   "in clear text; pass --tls-cert/--tls-key or bind 127.0.0.1 and use an SSH tunnel")
    if not config.token:
        out.append(f"WARNING: listening on {config.host} WITHOUT A TOKEN: anyone who can reach this port "
                   "can use the GPU; pass --token-file or set LTX_RENDER_TOKEN")
    return out


class RenderServer:
    def __init__(self, engine: RenderEngine, config: ServerConfig):
        self.engine = engine
        self.config = config
        self.port: Optional[int] = None
        self.load_error: Optional[str] = None
        self._server: Optional[grpc.aio.Server] = None
        self._recovered = False  # jobs interrupted by the last stop re-queued (needs a writable store)
        self._model_loaded = False
        self.activity = Activity()  # when the last RPC started: `serve --idle-exit`

    def busy(self) -> bool:
        """A job is running or queued (an idle server may stop only when this is False)."""
        if not self._model_loaded and self.load_error is None:
            return True  # still loading: the idle clock starts when the server can be used
        try:
            return self.runner.running_job is not None or bool(self.store.queued())
        except StorageError:
            return True  # cannot tell: a disk hiccup must not stop a server with queued work

    async def start(self) -> int:
        """Open the port, start loading the model; returns the bound port."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        self.store = JobStore(cfg.data_dir, on_failure=lambda err: self.guard.failed(err))
        self.guard = StorageGuard(self.store.data_dir, self.store.probe_write, cfg.min_free_bytes,
                                  cfg.storage_probe_s, loop, self._on_storage)
        self._recover()
        problem = self.guard.check()
        if problem is not None:
            self.guard.failed(problem)
        self.board = JobBoard(loop)
        self.runner = JobRunner(self.store, self.engine, self.board, model_info=self._model_info,
                                guard=self.guard, on_finished=self._after_job, job_timeout_s=cfg.job_timeout_s,
                                max_attempts=cfg.max_attempts)
        interceptors = [self.activity, ErrorStatus()] + ([BearerAuth(cfg.token)] if cfg.token else [])
        opts = [("grpc.max_receive_message_length", cfg.max_message_bytes),
                ("grpc.so_reuseport", 0)]
        self._server = grpc.aio.server(interceptors=interceptors, options=opts)
        self.service = RenderService(cfg, self.engine, self.store, self.runner, self.board,
                                     lambda: self.load_error, self.guard)
        pb_grpc.add_RenderServiceServicer_to_server(self.service, self._server)
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection([SERVICE_NAME, "grpc.health.v1.Health", reflection.SERVICE_NAME],
                                            self._server)
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{cfg.host}:{cfg.port}"
        if cfg.tls:
            creds = grpc.ssl_server_credentials([(Path(cfg.tls_key).read_bytes(), Path(cfg.tls_cert).read_bytes())])
            self.port = self._server.add_secure_port(address, creds)
        else:
            self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise SystemExit(f"could not listen on {address} (port in use?); pick another --port")
        for w in security_warnings(cfg):
            log.warning(w)
        await self._server.start()
        self.runner.start()
        self._guard_task = loop.create_task(self.guard.run())
        threading.Thread(target=self._load, args=(loop,), name="model-load", daemon=True).start()
        return self.port

    async def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def _update_health(self) -> None:
        serving = self._model_loaded and self.guard.healthy
        await self._set_health(health_pb2.HealthCheckResponse.SERVING if serving
                               else health_pb2.HealthCheckResponse.NOT_SERVING)

    def _recover(self) -> None:
        """Re-queue or fail the jobs a stop interrupted, and apply retention; retried once the disk is back."""
        try:
            for job_id, state in self.store.recover(self.config.max_attempts):
                log.warning("job %s was interrupted by a restart -> %s", job_id, pb.JobState.Name(state))
            self._recovered = True
            self.store.enforce_retention(self.config.retention_days, self.config.retention_bytes)
        except StorageError as e:
            log.error("could not recover interrupted jobs yet: %s", e)

    def _on_storage(self, healthy: bool) -> None:
        """The guard's verdict changed (runs on the event loop)."""
        if healthy and not self._recovered:
            self._recover()  # before any job starts: a re-queued job must not race a new one
        asyncio.get_running_loop().create_task(self._update_health())
        if healthy and hasattr(self, "runner"):
            self.runner.wake()
            self.board.changed()

    def _load(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            if not getattr(self.engine, "loaded", False):
                self.engine.load()
        except Exception as e:  # noqa: BLE001 - reported through GetCapabilities, server stays up
            log.error("model failed to load:\n%s", traceback.format_exc())
            self.load_error = f"{type(e).__name__}: {e}"
            return
        # torch, diffusers and the model are ~500k long-lived Python objects: every automatic full
        # collection walked them all (0.3 s on the 2-core machine, landing at random inside jobs).
        # Collected once, then frozen: later collections see only what jobs allocate.
        gc.collect()
        gc.freeze()
        asyncio.run_coroutine_threadsafe(self._on_loaded(), loop)

    async def _on_loaded(self) -> None:
        self._model_loaded = True
        self.activity.touch()
        await self._update_health()
        self.runner.engine_ready.set()
        self.board.changed()
        log.info("model loaded; serving")

    def _model_info(self) -> dict:
        return model_info(self.engine.capabilities())

    def _after_job(self) -> None:
        self.store.enforce_retention(self.config.retention_days, self.config.retention_bytes)  # StorageError: the queue copes

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting RPCs; a running job stops at its next step and is re-queued."""
        if self._server is None:
            return
        await self.health.enter_graceful_shutdown()
        self._guard_task.cancel()
        await self.runner.stop()
        await self._server.stop(grace)
        self.store.close()
        self._server = None

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()


class BackgroundServer:
    """A RenderServer in its own thread + event loop: `with BackgroundServer(engine, cfg) as s: s.port`."""

    def __init__(self, engine, config: ServerConfig):
        self.server = RenderServer(engine, config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grpc-server", daemon=True)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def address(self) -> str:
        return f"{self.server.config.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        return self

    def stop(self, grace: float = 1.0) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop).result(60)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
