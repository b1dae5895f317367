"""`render-backend serve` answers before it pays for torch and diffusers, and stops by itself when idle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .procs import ServeProcess

ROOT = Path(__file__).resolve().parents[2]

# Runs `serve` with DeferredEngine.load wrapped: it notes whether torch was already imported when the
# engine started to be built (it must not be: the port opens first, the imports happen on the load thread).
PROBE = textwrap.dedent("""
    import sys
    from render_backend.engine import deferred
    load = deferred.DeferredEngine.load
    def noted(self):
        # one write: the main thread prints "listening on ..." at the same time
        sys.stdout.write(f"TORCH_BEFORE_ENGINE {'torch' in sys.modules} {'diffusers' in sys.modules}" + chr(10))
        sys.stdout.flush()
        return load(self)
    deferred.DeferredEngine.load = noted
    from render_backend.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_serve_listens_before_importing_torch_and_still_serves(tiny_model, tmp_path):
    serve = ServeProcess(tiny_model, tmp_path / "data", "--upsampler", "none")
    serve.args[1:3] = ["-c", PROBE]  # python -c PROBE serve ... instead of python -m render_backend.cli serve ...
    with serve.start(until=("SERVING",)):
        log = serve.log()
        assert "TORCH_BEFORE_ENGINE False False" in log, log[-2000:]
        assert log.index("listening on") < log.index("model loaded; serving")
        assert serve.client.capabilities().model_id == str(tiny_model)


def test_a_bad_flag_found_by_the_engine_still_ends_serve_with_the_fix(tiny_model, tmp_path):
    """An engine constructor that rejects its flags on the load thread: serve exits non-zero with the message."""
    script = PROBE.replace("from render_backend.cli import main", textwrap.dedent("""
        from render_backend import cli
        def bad_engine(args):
            raise SystemExit("error: --frobnicate 3: not a frobnication; try 2")
        cli._engine = bad_engine
        main = cli.main"""))
    run = subprocess.run([sys.executable, "-c", script, "serve", "--model", str(tiny_model), "--port", "0",
                          "--data-dir", str(tmp_path / "data")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "error: --frobnicate 3: not a frobnication; try 2" in run.stderr
    assert "listening on" in run.stdout


@pytest.mark.slow
def test_idle_exit_waits_for_the_job_then_for_the_idle_time(tiny_model, tmp_path):
    from render_backend.demo import synthetic_shot
    from render_backend.proto import render_pb2 as pb

    serve = ServeProcess(tiny_model, tmp_path / "data", "--upsampler", "none", "--idle-exit", "1.5")
    with serve.start(until=("SERVING",)):
        job = serve.client.submit(*synthetic_shot(num_frames=9, width=64, height=64, steps=2))
        final = serve.client.wait(job.job_id, timeout=120)
        done_at = time.monotonic()
        assert final.state == pb.JOB_STATE_DONE, final
        serve.proc.wait(60)
        assert time.monotonic() - done_at >= 1.0  # not before the idle time after the job
        assert serve.proc.returncode == 0
        assert "stopping: no jobs and no clients for 1.5 s (--idle-exit)" in serve.log()


def test_a_loaded_server_freezes_its_long_lived_objects_out_of_the_garbage_collector(engine, tmp_path):
    import gc

    from .conftest import running_server

    gc.unfreeze()
    with running_server(engine, tmp_path / "data"):
        # torch, diffusers and the model: walked by every full collection unless frozen after the load.
        frozen, live = gc.get_freeze_count(), len(gc.get_objects())
        assert frozen > 100_000 and live < frozen, (frozen, live)


def test_idle_exit_does_not_count_the_model_load_as_idle(tmp_path):
    import asyncio
    import threading

    from render_backend.server.app import RenderServer
    from render_backend.server.config import ServerConfig
    from render_backend.server.idle import wait_until_idle

    release = threading.Event()

    class SlowEngine:  # loads until released: a big model on a slow disk
        loaded = False

        def load(self):
            release.wait(30)
            raise RuntimeError("test over")

    async def run():
        server = RenderServer(SlowEngine(), ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "data"))
        await server.start()
        try:
            idle = asyncio.ensure_future(wait_until_idle(server.activity, server.busy, 0.3, poll_s=0.05))
            await asyncio.sleep(1.0)
            assert not idle.done()  # 1 s of loading, no RPC: still not idle
            release.set()  # the load ends (failed): from now on an idle server may stop
            await asyncio.wait_for(idle, 5)
        finally:
            release.set()
            await server.stop()

    asyncio.run(run())
