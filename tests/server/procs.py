"""A real `render-backend serve` subprocess on a loopback port, for tests that kill it or measure its memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from render_backend.client import ServiceClient

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status_kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc/<pid>/status in KiB (VmRSS now, VmHWM = peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class ServeProcess:
    """`python -m render_backend.cli serve` on a free loopback port; `with ServeProcess(...) as p: p.client`."""

    def __init__(self, model: Path, data_dir: Path, *extra: str, log: Path | None = None):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log or Path(data_dir).with_name(Path(data_dir).name + f"-serve-{self.port}.log")
        self.args = [sys.executable, "-m", "render_backend.cli", "serve", "--model", str(model),
                     "--data-dir", str(data_dir), "--port", str(self.port), "--heartbeat", "0.5", *extra]
        self.proc: subprocess.Popen | None = None
        self.client: ServiceClient | None = None

    def start(self, timeout: float = 120, until: tuple[str, ...] = ("SERVING",)) -> ServeProcess:
        """Start and wait until health reports one of `until` (NOT_SERVING: the port is open, the model loads)."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.client = ServiceClient(self.address, timeout=10)
        deadline = time.monotonic() + timeout
        while True:  # the port opens after the imports, SERVING follows once the weights are loaded
            try:
                if self.client.health() in until:
                    return self
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not come up: {self.log()[-3000:]}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mib(self) -> float:
        return proc_status_kib(self.pid, "VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        return proc_status_kib(self.pid, "VmHWM") / 1024

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.client:
            self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> ServeProcess:
        return self if self.proc else self.start()

    def __exit__(self, *exc) -> None:
        self.kill() if exc[0] else self.stop()
