"""A warm local render server: started once, found again, reused while it serves the same thing. No bpy.

Starting `render-backend serve` costs seconds (Python, torch, diffusers, the weights); a second
render should not pay them again. Whoever starts a local server records it in a small JSON state
file (address, pid, model, the flags it was started with, its log); the next caller reuses it when
that process is alive, answers health, serves the same model (GetCapabilities) and was started
with the same options; otherwise it stops the stale one (it owns it: the state file says so) and
starts a new one. The server runs detached (its own session on POSIX, its own process group on
Windows: client/processes.py) with stdin, stdout and stderr detached (its
output goes to its log file), so the caller never waits on it and no pipe of the caller's is held
open by it; `--idle-exit` makes it stop by itself when nobody uses it.

Used by `./dev demo` (scripts/demo.py) and by the add-on's "Start local server" button
(`start_for_address`: the port of the connection profile, a server already answering there is
reused, whoever started it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from . import processes
from .connection import ConnectionProblem
from .profiles import ServerProfile

STATE_VERSION = 1
LISTENING = re.compile(r"listening on ([\d.]+:\d+)")


@dataclass
class LocalServer:
    """One started server as the state file records it."""

    address: str  # "127.0.0.1:PORT"
    pid: int
    model: str  # as passed to --model
    options: list[str] = field(default_factory=list)  # the other serve flags, in order
    log: str = ""  # the server's stdout + stderr
    started: float = 0.0  # time.time() at start
    code: str = ""  # code_fingerprint of the sources it was started from ("" = not checked)
    version: int = STATE_VERSION


def read_state(path: Path) -> Optional[LocalServer]:
    """The recorded server, or None when there is no state file or it is unreadable (treated as none)."""
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        server = LocalServer(**data)
        server.pid = int(server.pid)
        return server
    except (OSError, ValueError, TypeError):
        return None


def write_state(path: Path, server: LocalServer) -> None:
    """Atomically (temp file + rename): a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(server), indent=1))
    os.replace(tmp, path)


def clear_state(path: Path) -> None:
    Path(path).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """The process exists and has not exited (POSIX and Windows: client/processes.py)."""
    return processes.alive(pid)


def looks_like_ours(pid: int) -> bool:
    """The pid runs `render_backend ... serve` (pids are reused; never signal a stranger). When its
    command line cannot be read, the answer is no."""
    cmdline = processes.command_line(pid) or []
    return any("render_backend" in part or "render-backend" in part for part in cmdline) and "serve" in cmdline


def code_fingerprint(*paths: Path) -> str:
    """Short hash of names, sizes and mtimes of the given files and of the .py files under the given
    folders: a server started from older code (or older pinned packages) is not reused."""
    h = hashlib.sha256()
    for given in map(Path, paths):
        for path in sorted(given.rglob("*.py")) if given.is_dir() else [given] if given.is_file() else []:
            st = path.stat()
            h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def serve_command(model: str, options: list[str], python: str = sys.executable, command: list[str] | None = None,
                  port: int = 0) -> list[str]:
    """`python -m render_backend.cli serve ...`, or `command serve ...` (e.g. ["render-backend"] or a venv's
    path to it, which is what the add-on has: Blender's own Python has no torch)."""
    prefix = list(command) if command else [python, "-m", "render_backend.cli"]
    return [*prefix, "serve", "--model", str(model), "--port", str(port), *options]


def start(model: str, options: list[str], log_path: Path, *, cwd: Path | None = None, python: str = sys.executable,
          code: str = "", command: list[str] | None = None, port: int = 0, timeout_s: float = 120.0) -> LocalServer:
    """Start a detached server and return once its port is open (the model may still be loading).

    Detached (processes.detached: its own session or process group), stdin from the null device,
    stdout and stderr into `log_path`, no other inherited descriptors."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():  # a previous server may still be writing its last lines: keep them in their own file
        try:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
        except PermissionError:  # Windows: that server still holds it open
            log_path = log_path.with_name(f"{log_path.stem}-{os.getpid()}-{int(time.time())}{log_path.suffix}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:  # the child keeps its own handle
        proc = subprocess.Popen(serve_command(model, options, python, command, port), cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True,
                                **processes.detached())
    deadline = time.monotonic() + timeout_s
    while True:
        match = LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return LocalServer(address=match.group(1), pid=proc.pid, model=str(model), options=list(options),
                               log=str(log_path), started=time.time(), code=code)
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            raise RuntimeError(f"the render server did not start; its log ({log_path}):\n"
                               f"{log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def health(address: str, timeout_s: float = 2.0) -> str:
    """"SERVING", "NOT_SERVING" (loading) or "DOWN" (no answer)."""
    from .render_client import RenderClient

    try:
        with RenderClient(ServerProfile("local", address), timeout_s=timeout_s) as client:
            return client.health()
    except ConnectionProblem:
        return "DOWN"


def wait_serving(server: LocalServer, timeout_s: float = 180.0, poll_s: float = 0.2) -> None:
    """Block until the server says SERVING; RuntimeError (with its log's tail) if it dies or times out.
    One channel for the whole wait, polled gently: a new connection 20 times a second costs a loading
    server (its event loop shares the GIL with the import thread) over a second of its start."""
    from .render_client import RenderClient

    deadline = time.monotonic() + timeout_s
    with RenderClient(ServerProfile("local", server.address), timeout_s=2.0) as client:
        while True:
            try:
                if client.health() == "SERVING":
                    return
            except ConnectionProblem:
                pass
            if not pid_alive(server.pid) or time.monotonic() > deadline:
                log = Path(server.log).read_text(errors="replace")[-2000:] if server.log and Path(server.log).is_file() else ""
                raise RuntimeError(f"the render server at {server.address} never became SERVING "
                                   f"({'it exited' if not pid_alive(server.pid) else 'timed out'}); its log:\n{log}")
            time.sleep(poll_s)


def still_loading(server: LocalServer) -> bool:
    """Its log says the port is open and the model is not loaded yet (nor failed to load)."""
    try:
        log = Path(server.log).read_text(errors="replace") if server.log else ""
    except OSError:
        return False
    return "listening on" in log and "model loaded" not in log and "failed to load" not in log


def serves(server: LocalServer, model: str, options: list[str], *, code: str = "", wait_s: float = 180.0) -> str:
    """Why `server` cannot be reused for (model, options); "" when it can. Waits for a server that is
    still loading (it is ours and alive) rather than starting a second one beside it."""
    if server.model != str(model) or list(server.options) != list(options):
        return "it was started for another model or with other options"
    if server.code != code:
        return "the code changed since it started"
    if not pid_alive(server.pid) or not looks_like_ours(server.pid):
        return "it is no longer running"
    try:  # a long wait only for a server still loading its model; a loaded one that is not SERVING is unwell
        wait_serving(server, timeout_s=wait_s if still_loading(server) else 3.0)
    except RuntimeError:
        return "it does not answer SERVING"
    from .render_client import RenderClient

    try:
        with RenderClient(ServerProfile("local", server.address), timeout_s=5.0) as client:
            caps = client.capabilities()
    except ConnectionProblem as exc:
        return f"it does not answer GetCapabilities ({exc})"
    if caps.model_id != str(model):
        return f"it serves {caps.model_id!r}"  # another server took the port after ours died
    return ""


def stop(server: LocalServer, wait_s: float = 0.0) -> bool:
    """Stop the recorded server if it is still ours (SIGTERM; TerminateProcess on Windows); wait up to wait_s for it to exit (0: don't wait).
    True when a signal was sent."""
    if not pid_alive(server.pid) or not looks_like_ours(server.pid):
        return False
    if not processes.terminate(server.pid):
        return False
    deadline = time.monotonic() + wait_s
    while wait_s > 0 and pid_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def ensure(state_path: Path, model: str, options: list[str], log_path: Path, *, cwd: Path, fresh: bool = False,
           python: str = sys.executable, code: str = "",
           say: Callable[[str], None] = lambda line: None) -> tuple[LocalServer, bool]:
    """The recorded server when it can be reused, else a new one (the stale one is stopped first and
    waited for: both would use the same data folder, whose job store has no lock). Returns (server,
    reused). A new server may still be loading: call wait_serving before work."""
    old = read_state(state_path)
    if old is not None:
        why = "a fresh one was asked for" if fresh else serves(old, model, options, code=code)
        if not why:
            return old, True
        if stop(old, wait_s=15.0):
            say(f"stopping the previous server (pid {old.pid}): {why}")
        clear_state(state_path)
    new = start(model, options, log_path, cwd=cwd, python=python, code=code)
    write_state(state_path, new)
    return new, False


def stop_recorded(state_path: Path, wait_s: float = 10.0) -> Optional[LocalServer]:
    """Stop the server the state file records (if it still runs) and forget it; returns what was recorded."""
    old = read_state(state_path)
    if old is not None:
        stop(old, wait_s=wait_s)
        clear_state(state_path)
    return old


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def start_for_address(address: str, model: str, *, command: list[str], state_path: Path, log_path: Path,
                      idle_exit_s: float = 0.0) -> tuple[LocalServer | None, str]:
    """The add-on's "Start local server": a server for a connection profile's loopback address.

    Reuses whatever answers on that address (this function's own server or one started by hand); else
    starts `command serve --model MODEL --host 127.0.0.1 --port PORT` detached and returns once the
    port is open (the model loads after that: Test connection says when it is ready). Returns (the
    server when this call or an earlier one started it, a line for the user). ValueError for settings
    the user must change; RuntimeError when the server did not start (with its log's tail)."""
    from .profiles import parse_address

    host, port = parse_address(address)
    if host.strip("[]") not in LOOPBACK_HOSTS:
        raise ValueError(f"a local server is started for a localhost address (the profile says {address!r}); "
                         f"on another machine run `render-backend serve --host 0.0.0.0 ...` there")
    if not model:
        raise ValueError("set the model folder (Preferences > Add-ons > LTX Render > Local server) first")
    if not command:
        raise ValueError("set the server command (e.g. render-backend, or /path/to/venv/bin/render-backend)")
    old = read_state(state_path)
    ours = old is not None and old.address.rpartition(":")[2] == str(port) and pid_alive(old.pid) \
        and looks_like_ours(old.pid)
    state = health(f"127.0.0.1:{port}")
    if state != "DOWN":
        if ours and old.model != str(model):
            stop(old, wait_s=15)  # ours, for another model: replace it (the port must be free first)
        else:
            who = f"the one started here (pid {old.pid})" if ours else "started elsewhere"
            loading = "; it is still loading the model" if state == "NOT_SERVING" else ""
            return (old if ours else None), f"a render server already runs on {address}: {who}{loading}"
    options = ["--host", "127.0.0.1"] + (["--idle-exit", f"{idle_exit_s:g}"] if idle_exit_s > 0 else [])
    try:
        server = start(str(model), options, log_path, command=list(command), port=port)
    except FileNotFoundError:
        raise ValueError(f"{command[0]!r} not found: install the backend (pip install -e . in the project) "
                         f"and set the server command to its render-backend") from None
    write_state(state_path, server)
    return server, (f"started a render server on {server.address} (pid {server.pid}, log {server.log}); "
                    f"it is loading the model: Test connection says when it is ready")
