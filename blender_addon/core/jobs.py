"""What one render job is on the client side: its record (kept in the .blend), its states,
the progress line the panel shows, and the per-frame strength sent with it. Pure Python.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

CLIENT_PROTOCOL_VERSION = "2.1"

# Client-side states. The server's states (queued..cancelled) plus the add-on's own steps.
EXPORTING = "exporting"
SUBMITTING = "submitting"
QUEUED = "queued"
RUNNING = "running"
ENCODING = "encoding"
FETCHING = "fetching"
DONE = "done"          # fetched and imported into the sequencer
FAILED = "failed"
CANCELLED = "cancelled"

STATES = (EXPORTING, SUBMITTING, QUEUED, RUNNING, ENCODING, FETCHING, DONE, FAILED, CANCELLED)
FINAL_STATES = (DONE, FAILED, CANCELLED)
# States in which the server holds a job that the client must watch (and later fetch).
ON_SERVER_STATES = (QUEUED, RUNNING, ENCODING, FETCHING)


@dataclass
class JobRecord:
    """One submitted shot, as stored in the .blend (scene.ltx_render.jobs).

    frame_start/frame_end are the shot's inclusive Blender frames; take_dir is absolute or
    Blender-relative ("//renders/..."), as the add-on stored it.
    """

    request_id: str
    shot: str
    take_dir: str
    profile: str = ""
    job_id: str = ""
    state: str = EXPORTING
    message: str = ""
    frame_start: int = 1
    frame_end: int = 1
    created_s: float = 0.0
    # Frames of the take hidden in the sequencer (overlap with the previous shot / rendered past
    # the range), as planned by core.planning.plan_shots.
    trim_start: int = 0
    trim_end: int = 0

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"unknown job state {self.state!r}; expected one of {', '.join(STATES)}")

    @property
    def unfinished(self) -> bool:
        """True when the server may still hold work for this record (watch, fetch, import)."""
        return bool(self.job_id) and self.state in ON_SERVER_STATES

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> JobRecord:
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("request_id", "shot", "take_dir") if k not in data]
        if missing:
            raise ValueError(f"job record lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> JobRecord:
        return cls.from_dict(json.loads(text))


def new_request_id() -> str:
    """Client-chosen id that makes a resubmission return the same server job."""
    return uuid.uuid4().hex


def format_eta(seconds: float | None) -> str:
    """"ETA 1 min 05 s" style; "" when unknown (None or negative)."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"ETA {seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"ETA {minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours} h {minutes:02d} min"


def progress_text(state: str, *, stage: str = "", step: int = 0, total_steps: int = 0,
                  eta_seconds: float | None = None, queue_position: int = 0, message: str = "") -> str:
    """The one-line progress shown in the panel and the status bar.

    >>> progress_text("running", stage="denoising", step=3, total_steps=8, eta_seconds=12)
    'Denoising 3/8 · ETA 12 s'
    """
    if state == QUEUED:
        return f"Queued, position {queue_position}" if queue_position > 0 else "Queued"
    if state in (RUNNING, ENCODING):
        label = (stage or state).strip().capitalize()
        parts = [f"{label} {step}/{total_steps}" if total_steps > 0 else label]
        eta = format_eta(eta_seconds)
        if eta:
            parts.append(eta)
        return " · ".join(parts)
    if state == EXPORTING:
        return f"Exporting {step}/{total_steps}" if total_steps > 0 else "Exporting"
    if state == SUBMITTING:
        if total_steps > 0:
            return f"Sending shot to server {100 * step // total_steps}%"
        return "Sending shot to server"
    if state == FETCHING:
        return f"Downloading {stage}".strip()
    if state == DONE:
        return message or "Done"
    if state == FAILED:
        return f"Failed: {message}" if message else "Failed"
    if state == CANCELLED:
        return "Cancelled"
    raise ValueError(f"unknown job state {state!r}")


def protocol_problem(server_version: str, client_version: str = CLIENT_PROTOCOL_VERSION) -> str | None:
    """None when the server speaks our protocol major version, else what the user must do."""
    def major(v: str) -> int | None:
        head = v.strip().split(".")[0]
        return int(head) if head.isdigit() else None

    theirs, ours = major(server_version), major(client_version)
    if theirs is None:
        return f"server reported no valid protocol version ({server_version!r}); is it an LTX render server?"
    if theirs != ours:
        newer = "server" if theirs > ours else "add-on"
        return (f"protocol version mismatch: server speaks {server_version}, this add-on {client_version}; "
                f"update the {'add-on' if newer == 'server' else 'render server'} so both have major version "
                f"{max(theirs, ours)}")
    return None


def unfinished(records: Sequence[JobRecord]) -> list[JobRecord]:
    """Records the panel must re-attach to after a restart, oldest first."""
    return sorted((r for r in records if r.unfinished), key=lambda r: r.created_s)
