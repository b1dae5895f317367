"""Where rendered takes live on disk and what a take remembers. Pure Python, no bpy.

Layout (relative to the .blend, `//` in Blender paths)::

    renders/<scene>/<shot>/take_001/
        video.mp4      H.264 + AAC from the server
        audio.wav      the same audio, uncompressed
        sidecar.json   the server's record (model, LoRA hashes, settings actually used)
        take.json      the add-on's record: every setting needed to redo the take
        bundle/        the exported shot bundle (control canvas, masks, camera)

Every JSON file is written to a temporary name and renamed, so a crash never leaves a
half-written record that a later run would trust.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

TAKE_PREFIX = "take_"
TAKE_RECORD = "take.json"
VIDEO_FILE = "video.mp4"
AUDIO_FILE = "audio.wav"
SIDECAR_FILE = "sidecar.json"
BUNDLE_DIR = "bundle"

# The take settings "Redo take" restores (keys of take.json["settings"]). Takes written by
# older versions may lack some (reference_downscale_factor, camera_trajectory, targets, armatures): those
# settings are then left as they are. targets: [{"collection": name} | {"object": name}];
# armatures: [object name].
REDO_KEYS = (
    "prompt", "negative_prompt", "seed", "control_strength", "background_strength",
    "use_background_strength", "camera_mode", "camera_preset", "camera_trajectory", "control_lora",
    "reference_downscale_factor", "canvas_kind", "depth_scope", "pose_hands", "pose_face", "playblast_colour",
    "audio", "quality", "width", "height", "frame_start", "frame_end", "targets", "armatures",
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TAKE_RE = re.compile(r"^take_(\d{3,})$")


def safe_name(name: str) -> str:
    """A file-system-safe version of a scene or shot name ("Walk / Dolly" -> "Walk_Dolly")."""
    cleaned = _UNSAFE.sub("_", name.strip()).strip("._")
    return cleaned or "untitled"


def shot_name(frame_start: int, frame_end: int) -> str:
    """Default shot name from its inclusive Blender frame range: 1..121 -> "shot_0001-0121"."""
    if frame_end < frame_start:
        raise ValueError(f"shot frame range is empty ({frame_start}..{frame_end}); frame_end must be >= frame_start")
    return f"shot_{frame_start:04d}-{frame_end:04d}"


def take_name(number: int) -> str:
    """take_001, take_002, ... (numbers start at 1)."""
    if number < 1:
        raise ValueError(f"take numbers start at 1 (got {number})")
    return f"{TAKE_PREFIX}{number:03d}"


def take_number(name: str) -> int | None:
    """The number of a take folder name, or None if it is not one ("take_007" -> 7)."""
    match = _TAKE_RE.match(name)
    return int(match.group(1)) if match else None


def shot_dir(renders_root: str | os.PathLike, scene: str, shot: str) -> Path:
    """renders_root/<scene>/<shot>/ with both names made file-system safe."""
    return Path(renders_root) / safe_name(scene) / safe_name(shot)


def existing_takes(shot_folder: str | os.PathLike) -> list[Path]:
    """Take folders of a shot, sorted by take number (missing folder -> [])."""
    folder = Path(shot_folder)
    if not folder.is_dir():
        return []
    takes = [(take_number(p.name), p) for p in folder.iterdir() if p.is_dir()]
    return [p for n, p in sorted((t for t in takes if t[0] is not None), key=lambda t: t[0])]


def next_take_dir(renders_root: str | os.PathLike, scene: str, shot: str) -> Path:
    """Create and return the next free take folder: one past the highest existing number.

    Gaps are not refilled (take_001, take_003 -> take_004) so a take number is never reused
    for different content. mkdir without exist_ok makes the claim atomic between processes.
    """
    folder = shot_dir(renders_root, scene, shot)
    folder.mkdir(parents=True, exist_ok=True)
    takes = existing_takes(folder)
    number = (take_number(takes[-1].name) if takes else 0) + 1
    while True:
        candidate = folder / take_name(number)
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1


def write_json_atomic(path: str | os.PathLike, data: dict) -> Path:
    """Write JSON to a temp file in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_take_record(take_folder: str | os.PathLike, *, settings: dict, job_id: str, server: str,
                      shot: str, fps: float, frames: int) -> Path:
    """Write take.json: the settings (REDO_KEYS) plus where and how the take was made."""
    missing = [k for k in ("prompt", "seed", "frame_start", "frame_end") if k not in settings]
    if missing:
        raise ValueError(f"take settings lack {', '.join(missing)}")
    record = {
        "schema": "ltx-take/1",
        "shot": shot,
        "job_id": job_id,
        "server": server,
        "fps": float(fps),
        "frames": int(frames),
        "settings": {k: settings[k] for k in REDO_KEYS if k in settings},
    }
    return write_json_atomic(Path(take_folder) / TAKE_RECORD, record)


def read_take_record(take_folder: str | os.PathLike) -> dict:
    """Read take.json; a clear error when the folder is not a finished take."""
    path = Path(take_folder) / TAKE_RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pick a take folder (renders/<scene>/<shot>/take_NNN)")
    data = json.loads(path.read_text(encoding="utf-8"))
    schema = str(data.get("schema", ""))
    if not schema.startswith("ltx-take/1"):
        raise ValueError(f"{path} has schema {schema!r}; this add-on reads ltx-take/1")
    return data


def redo_settings(record: dict) -> dict:
    """The settings of a take record that "Redo take" copies back into the scene."""
    settings = record.get("settings", {})
    return {k: settings[k] for k in REDO_KEYS if k in settings}
