"""Verdicts of slow environment probes (can Workbench render here?) kept on disk across runs. No bpy.

The GL probe costs a second Python + bpy process (~1 s) on every headless export. Its answer only
changes when Blender, the Python, the display environment or the EGL drivers change, so it is
kept under a key made of exactly those facts, in the user's cache folder:
$LTX_RENDER_CACHE_DIR, else $XDG_CACHE_HOME/ltx-render, else ~/.cache/ltx-render.

How long a verdict holds:
- "ok": OK_TTL_S (a week). Trusting a stale "ok" is the costly mistake (Workbench without EGL
  aborts the process in C), so the key includes the EGL vendor files, and it still expires.
- "failed" (the child ran and crashed or drew the wrong depth): FAILED_TTL_S (an hour). Cycles is
  the safe, slower answer; an hour bounds how long a fixed driver goes unnoticed while sparing
  every export of a GL-less machine (CI, SSH sessions) the child process.
- an inconclusive probe (timeout, could not start the child) is never stored: on a loaded machine
  the next run asks again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

CACHE_ENV = "LTX_RENDER_CACHE_DIR"
FILE_NAME = "gl-probe.json"
OK_TTL_S = 7 * 24 * 3600.0
FAILED_TTL_S = 3600.0
DISPLAY_ENV = ("DISPLAY", "WAYLAND_DISPLAY", "EGL_PLATFORM", "LTX_EXPORT_ENGINE", "LIBGL_ALWAYS_SOFTWARE",
               "__EGL_VENDOR_LIBRARY_FILENAMES", "__EGL_VENDOR_LIBRARY_DIRS", "LD_LIBRARY_PATH",
               "CUDA_VISIBLE_DEVICES", "MESA_LOADER_DRIVER_OVERRIDE")
EGL_VENDOR_DIRS = ("/usr/share/glvnd/egl_vendor.d", "/etc/glvnd/egl_vendor.d")


def cache_dir(environ: dict | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV])
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ltx-render"


def egl_vendor_files(dirs: tuple[str, ...] = EGL_VENDOR_DIRS) -> list[str]:
    """Names, sizes and mtimes of the installed EGL vendor files: a driver (un)installed changes the key."""
    out = []
    for folder in dirs:
        try:
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                st = entry.stat()
                out.append(f"{entry.path}:{st.st_size}:{int(st.st_mtime)}")
        except OSError:
            continue
    return out


def probe_key(blender_version: str, blender_binary: str, python: str, environ: dict | None = None,
              vendor_files: list[str] | None = None) -> str:
    """One string per environment the probe could answer differently in."""
    env = os.environ if environ is None else environ
    facts = {"blender": blender_version, "binary": blender_binary, "python": python,
             "env": {name: env.get(name, "") for name in DISPLAY_ENV},
             "egl": egl_vendor_files() if vendor_files is None else vendor_files}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]


def _read_all(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def read_verdict(key: str, folder: Path | None = None, now: float | None = None) -> bool | None:
    """True / False when a verdict for `key` is stored and still holds; None when the probe must run."""
    entry = _read_all((folder or cache_dir()) / FILE_NAME).get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("ok"), bool):
        return None
    try:
        age = (time.time() if now is None else now) - float(entry.get("time", 0))
    except (TypeError, ValueError):
        return None  # a damaged entry: probe again
    ttl = OK_TTL_S if entry["ok"] else FAILED_TTL_S
    return entry["ok"] if 0 <= age < ttl else None


def write_verdict(key: str, ok: bool, folder: Path | None = None, now: float | None = None) -> None:
    """Store a verdict (temp file + rename; a cache that cannot be written is only slower, never an error)."""
    folder = folder or cache_dir()
    path = folder / FILE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        data = _read_all(path)
        data[key] = {"ok": ok, "time": time.time() if now is None else now}
        tmp = folder / f".{FILE_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass
