"""Server settings (what `render-backend serve` flags set)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


def default_data_dir() -> Path:
    """$LTX_RENDER_DATA, else $XDG_DATA_HOME/ltx-render, else ~/.local/share/ltx-render."""
    if os.environ.get("LTX_RENDER_DATA"):
        return Path(os.environ["LTX_RENDER_DATA"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ltx-render"


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051  # 0 = pick a free port (tests, demo)
    data_dir: Path = None  # type: ignore[assignment]  # None -> default_data_dir()
    token: Optional[str] = None  # bearer token; None = no auth
    tls_cert: Optional[Path] = None  # PEM files; both or neither
    tls_key: Optional[Path] = None
    max_upload_bytes: int = 1024 * 2**20  # one shot's frames, all together
    heartbeat_s: float = 10.0  # WatchJob sends an event at least this often (protocol: <= 15 s)
    chunk_bytes: int = 256 * 1024  # FetchResult chunk size
    retention_days: float = 14.0  # finished jobs older than this are deleted
    retention_bytes: int = 50 * 2**30  # and the oldest beyond this total size
    max_attempts: int = 2  # a job that was running during this many crashes is failed, not re-queued
    cancel_wait_s: float = 5.0  # CancelJob waits this long for a running job to stop
    max_message_bytes: int = 8 * 2**20  # gRPC receive limit (frames are sent in smaller chunks)
    job_timeout_s: float = 0.0  # a job still rendering after this long fails with DEADLINE_EXCEEDED; 0 = none
    min_free_bytes: int = 256 * 2**20  # below this free space on the data disk the server takes no new work
    storage_probe_s: float = 2.0  # how often the data folder's health is checked

    def __post_init__(self):
        self.data_dir = Path(self.data_dir) if self.data_dir else default_data_dir()
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key (PEM files)")

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1", "[::1]")
