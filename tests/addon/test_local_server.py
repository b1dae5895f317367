"""The warm local server (blender_addon/client/local_server.py) with real `render-backend serve`
processes: reused while it fits, replaced when it does not, gone by itself when idle, and never
holding its starter's pipes open."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from blender_addon.client import local_server
from blender_addon.client.local_server import LocalServer

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def started():
    """pids of every server a test started; all stopped (and waited for) afterwards."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        local_server.stop(LocalServer(address="", pid=pid, model=""), wait_s=15)


def options(tmp_path: Path, idle_exit: float = 120) -> list[str]:
    return ["--data-dir", str(tmp_path / "data"), "--upsampler", "none", "--idle-exit", f"{idle_exit:g}"]


def wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while local_server.pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_second_caller_reuses_the_warm_server_and_another_model_gets_a_new_one(tiny_model, tmp_path, started):
    state, log = tmp_path / "state.json", tmp_path / "server.log"
    opts = options(tmp_path)
    # The first caller is a separate process whose output is captured through pipes, as CI does: it must
    # return while its detached server keeps running (a server holding the pipe would hang this run).
    first = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from pathlib import Path
        from blender_addon.client import local_server
        server, reused = local_server.ensure(Path({str(state)!r}), {str(tiny_model)!r}, {opts!r},
                                             Path({str(log)!r}), cwd=Path({str(ROOT)!r}))
        print("PID", server.pid, reused)
    """)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    pid = int(first.stdout.split("PID")[1].split()[0])
    started.append(pid)
    assert "False" in first.stdout and local_server.pid_alive(pid)
    assert os.getsid(pid) == pid  # its own session: a Ctrl-C in the starter's terminal does not reach it

    server, reused = local_server.ensure(state, str(tiny_model), opts, log, cwd=ROOT)
    assert (server.pid, reused) == (pid, True)
    assert local_server.health(server.address) == "SERVING"  # ensure waited for the load it found under way
    assert local_server.read_state(state).pid == pid

    other_name = tmp_path / "same-weights-other-name"  # another --model: a new server, the old one stopped
    other_name.symlink_to(tiny_model, target_is_directory=True)
    said = []
    newer, reused = local_server.ensure(state, str(other_name), opts, log, cwd=ROOT, say=said.append)
    started.append(newer.pid)
    assert not reused and newer.pid != pid
    assert said and "another model" in said[0]
    assert wait_gone(pid, 30)  # SIGTERM'd (ensure itself did not wait for it)
    assert local_server.read_state(state).pid == newer.pid

    local_server.wait_serving(newer)
    stopped = local_server.stop_recorded(state)
    assert stopped.pid == newer.pid and not local_server.pid_alive(newer.pid)
    assert local_server.read_state(state) is None


def test_an_idle_server_stops_by_itself_and_a_busy_one_does_not(tiny_model, tmp_path, started):
    server = local_server.start(str(tiny_model), options(tmp_path, idle_exit=2), tmp_path / "server.log", cwd=ROOT)
    started.append(server.pid)
    local_server.wait_serving(server)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 4:  # a client polling every second keeps it up past its idle time
        assert local_server.health(server.address) == "SERVING"
        time.sleep(0.5)
    assert wait_gone(server.pid, 30)
    assert "no jobs and no clients for 2 s (--idle-exit)" in (tmp_path / "server.log").read_text()


def test_a_state_file_of_a_dead_server_is_replaced(tiny_model, tmp_path, started):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    opts = options(tmp_path)
    state = tmp_path / "state.json"
    local_server.write_state(state, LocalServer(address="127.0.0.1:9", pid=gone.pid, model=str(tiny_model),
                                                options=opts))
    server, reused = local_server.ensure(state, str(tiny_model), opts, tmp_path / "server.log", cwd=ROOT)
    started.append(server.pid)
    assert not reused and server.pid != gone.pid and local_server.pid_alive(server.pid)
    assert local_server.read_state(state).address == server.address

    (tmp_path / "broken.json").write_text("{half a fi")
    assert local_server.read_state(tmp_path / "broken.json") is None  # unreadable: as if there were none
    version = local_server.STATE_VERSION
    for damaged in ("[]", f'{{"version": {version}, "pid": "x1", "address": "a", "model": "m"}}'):
        (tmp_path / "damaged.json").write_text(damaged)
        assert local_server.read_state(tmp_path / "damaged.json") is None


def test_a_pid_that_is_not_a_render_server_is_never_signalled(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert local_server.pid_alive(stranger.pid) and not local_server.looks_like_ours(stranger.pid)
        assert local_server.stop(LocalServer(address="", pid=stranger.pid, model="")) is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_local_server_in_blender_starts_one_and_the_second_press_reuses_it(tiny_model, tmp_path, monkeypatch,
                                                                                 started):
    bpy = pytest.importorskip("bpy")
    from blender_addon.core.probe_cache import CACHE_ENV
    from blender_addon.ui.preferences import addon_preferences

    from .blender_helpers import fresh_shot

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))  # the add-on's state file and server log go here
    address = f"localhost:{free_port()}"
    fresh_shot(tmp_path, server_address=address)
    prefs = addon_preferences()
    prefs.local_model = str(tiny_model)
    prefs.local_command = f"{shlex.quote(sys.executable)} -m render_backend.cli"
    prefs.local_idle_minutes = 5

    assert bpy.ops.ltx_render.start_local_server(profile="test") == {"FINISHED"}
    server = local_server.read_state(tmp_path / "cache" / "local-server.json")
    started.append(server.pid)
    assert prefs.connection_text.startswith(f"started a render server on 127.0.0.1:{address.split(':')[1]}")
    assert "--idle-exit" in Path(f"/proc/{server.pid}/cmdline").read_bytes().decode().split("\0")
    local_server.wait_serving(server)
    assert bpy.ops.ltx_render.test_connection(profile="test") == {"FINISHED"} and prefs.connection_ok

    assert bpy.ops.ltx_render.start_local_server(profile="test") == {"FINISHED"}  # pressed again: reused
    assert prefs.connection_text == f"a render server already runs on {address}: the one started here (pid {server.pid})"
    assert local_server.read_state(tmp_path / "cache" / "local-server.json").pid == server.pid

    prefs.profiles[0].address = "gpu-box:50051"
    with pytest.raises(RuntimeError, match="started for a localhost address"):  # not this machine
        bpy.ops.ltx_render.start_local_server(profile="test")
    prefs.profiles[0].address = address
    prefs.local_command = "no-such-render-backend"
    stopped = local_server.stop_recorded(tmp_path / "cache" / "local-server.json")  # port free again
    assert stopped.pid == server.pid
    with pytest.raises(RuntimeError, match="'no-such-render-backend' not found"):
        bpy.ops.ltx_render.start_local_server(profile="test")


def test_start_for_address_says_what_to_set(tmp_path):
    kw = {"command": ["render-backend"], "state_path": tmp_path / "s.json", "log_path": tmp_path / "l.log"}
    with pytest.raises(ValueError, match="localhost address"):
        local_server.start_for_address("gpu-box:50051", "/models/ltx2", **kw)
    with pytest.raises(ValueError, match="set the model folder"):
        local_server.start_for_address("localhost:50051", "", **kw)
    with pytest.raises(ValueError, match="not found: install the backend"):
        local_server.start_for_address(f"127.0.0.1:{free_port()}", "/models/ltx2",
                                       **{**kw, "command": ["no-such-render-backend"]})


def test_a_loaded_server_that_is_no_longer_serving_is_replaced_without_a_long_wait(tiny_model, tmp_path, started):
    """The user deleted the demo's out/ folder (its data dir) under a warm server: it turns NOT_SERVING for
    good. The next caller must not wait minutes for it (as for a server still loading) but replace it."""
    import shutil

    opts = options(tmp_path)
    state, log = tmp_path / "state.json", tmp_path / "server.log"
    first, _ = local_server.ensure(state, str(tiny_model), opts, log, cwd=ROOT)
    started.append(first.pid)
    local_server.wait_serving(first)
    shutil.rmtree(tmp_path / "data")
    deadline = time.monotonic() + 30
    while local_server.health(first.address) == "SERVING" and time.monotonic() < deadline:
        time.sleep(0.2)
    t0 = time.monotonic()
    second, reused = local_server.ensure(state, str(tiny_model), opts, log, cwd=ROOT)
    started.append(second.pid)
    assert not reused and second.pid != first.pid
    assert time.monotonic() - t0 < 30  # ~3 s of grace + a new server's port, not the 180 s a loading one gets
    assert wait_gone(first.pid, 30)


def test_the_code_fingerprint_changes_with_a_source_file_or_a_pinned_requirement(tmp_path):
    src, req = tmp_path / "src", tmp_path / "requirements.txt"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("x = 1\n")
    req.write_text("torch==2.13.0\n")
    before = local_server.code_fingerprint(src, req, tmp_path / "missing")
    assert before == local_server.code_fingerprint(src, req, tmp_path / "missing")
    (src / "pkg" / "a.py").write_text("x = 22\n")
    after_code = local_server.code_fingerprint(src, req, tmp_path / "missing")
    req.write_text("torch==2.14.0\n")
    assert len({before, after_code, local_server.code_fingerprint(src, req, tmp_path / "missing")}) == 3
