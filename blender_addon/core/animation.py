"""Whole animations as continuous takes, pure Python: frame ranges as render farms write them, each
shot cut into model-sized windows that overlap, and the job file that makes a batch resumable.

A shot is one contiguous range ("1-240"; "1-30, 47-327" is two shots; scene markers can cut the
range too). It is rendered as windows of at most `max_frames` (8k+1) frames. Each window after the
first starts `overlap` frames before the previous one ends: those frames are rendered by both, the
new window conditioned on the previous one's last `overlap` frames (continuity), and the assembled
take cross-fades them. `overlap` is 8m+1 (the VAE encodes a clip as 1 + 8m frames), so the
conditioning frames are exactly the new window's first m+1 latent frames.

The job file (`animation.json`, beside the output) records each window's request id, job id,
state, attempts and last reason, so a rerun skips finished windows, re-attaches to running ones and
retries failed ones (at most MAX_ATTEMPTS times).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .preview import FINAL, QUALITIES

FRAME_STEP = 8
MIN_FRAMES = FRAME_STEP + 1
DEFAULT_OVERLAP = 17  # 3 latent frames, ~0.7 s at 24 fps (ComfyUI's looping sampler uses 3 latents too)
DEFAULT_CONTINUITY_STRENGTH = 0.5  # ComfyUI-LTXVideo's temporal_overlap_cond_strength
MAX_ATTEMPTS = 3
JOB_FILE = "animation.json"
JOB_SCHEMA = "ltx-animation/2"  # 2: quality, size and display_size recorded
READABLE_SCHEMAS = ("ltx-animation/1", JOB_SCHEMA)  # 1 reads as Final, size not recorded
# Window and shot states in the job file (the client's view; the server has its own).
PENDING, SUBMITTED, DONE, FAILED = "pending", "submitted", "done", "failed"


def parse_frame_ranges(text: str) -> list[tuple[int, int]]:
    """'1-240' -> [(1, 240)]; '1-30, 47-327' -> [(1, 30), (47, 327)]; '5' -> [(5, 5)].
    Inclusive Blender frames, as Flamenco, OpenCue and Deadline write them. ValueError saying what to fix."""
    ranges = []
    for part in [p.strip() for p in str(text).split(",")]:
        if not part:
            continue
        m = re.fullmatch(r"(-?\d+)\s*(?:-\s*(-?\d+))?", part)
        if m is None:
            raise ValueError(f"frame range {part!r} is not START-END or FRAME; write e.g. '1-240' or '1-30, 47-327'")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) is not None else start
        if end < start:
            raise ValueError(f"frame range {part!r} ends before it starts; write it as {end}-{start}")
        ranges.append((start, end))
    if not ranges:
        raise ValueError("no frame range given; write e.g. '1-240' or '1-30, 47-327'")
    ordered = sorted(ranges)
    for (a0, a1), (b0, b1) in zip(ordered, ordered[1:], strict=False):
        if b0 <= a1:
            raise ValueError(f"frame ranges {a0}-{a1} and {b0}-{b1} overlap; each frame may be rendered once")
    return ordered


def split_at_markers(start: int, end: int, markers: list[int]) -> list[tuple[int, int]]:
    """Cut [start, end] into shots at the scene's markers: a marker at frame f starts a new shot at f."""
    cuts = sorted({m for m in markers if start < m <= end})
    bounds = [start, *cuts, end + 1]
    return [(a, b - 1) for a, b in zip(bounds, bounds[1:], strict=False)]


def _frames_at_least(n: int) -> int:
    """Smallest 8k+1 >= max(n, 9)."""
    n = max(n, MIN_FRAMES)
    return n + (-(n - 1)) % FRAME_STEP


def check_overlap(overlap: int, max_frames: int) -> None:
    if overlap < MIN_FRAMES or (overlap - 1) % FRAME_STEP:
        lower = max(MIN_FRAMES, (overlap - 1) // FRAME_STEP * FRAME_STEP + 1)
        raise ValueError(f"overlap must be 8m+1 frames and at least 9 (got {overlap}); try {lower} or "
                         f"{lower + FRAME_STEP}: the previous window's last frames are encoded as 1 + 8m frames")
    if overlap + FRAME_STEP > max_frames:
        raise ValueError(f"overlap {overlap} leaves no new frames in a {max_frames}-frame window; use at most "
                         f"{max_frames - FRAME_STEP} or longer windows")


@dataclass(frozen=True)
class Window:
    """One model-sized window of a shot: it renders frames [frame_start, frame_end] (8k+1 of them,
    possibly past the shot's end), its first `condition_frames` frames are the previous window's
    last ones, and it contributes [keep_start, keep_end] to the assembled take after the cross-fade
    of its first `condition_frames` frames."""

    index: int
    frame_start: int
    frame_end: int
    condition_frames: int  # 0 for the first window
    keep_end: int  # last frame of the shot this window covers (frames past it are trimmed)

    @property
    def num_frames(self) -> int:
        return self.frame_end - self.frame_start + 1


def plan_windows(start: int, end: int, max_frames: int = 121, overlap: int = DEFAULT_OVERLAP) -> list[Window]:
    """Windows covering [start, end] with `overlap` frames shared by neighbours. Every window is 8k+1
    frames; the last may run past `end` (those frames are rendered, then trimmed)."""
    if end < start:
        raise ValueError(f"frame_end ({end}) is before frame_start ({start}); fix the frame range")
    if max_frames < MIN_FRAMES or (max_frames - 1) % FRAME_STEP:
        raise ValueError(f"frames per window must be 8k+1 and at least {MIN_FRAMES} (got {max_frames}); try 121")
    total = end - start + 1
    if total <= max_frames:
        n = _frames_at_least(total)
        return [Window(0, start, start + n - 1, 0, end)]
    check_overlap(overlap, max_frames)
    windows = [Window(0, start, start + max_frames - 1, 0, start + max_frames - 1)]
    while windows[-1].keep_end < end:
        prev = windows[-1]
        first = prev.frame_end - overlap + 1
        n = min(max_frames, _frames_at_least(end - first + 1))
        last = first + n - 1
        windows.append(Window(len(windows), first, last, overlap, min(last, end)))
    return windows


# ---------------------------------------------------------------- the job file
@dataclass
class WindowJob:
    frame_start: int
    frame_end: int
    condition_frames: int
    keep_end: int
    request_id: str = ""
    job_id: str = ""
    state: str = PENDING
    attempts: int = 0
    reason: str = ""
    take_dir: str = ""


@dataclass
class ShotJob:
    name: str
    frame_start: int
    frame_end: int
    windows: list[WindowJob] = field(default_factory=list)
    assembly_request_id: str = ""
    assembly_job_id: str = ""
    state: str = PENDING
    reason: str = ""
    outputs: dict = field(default_factory=dict)  # "video.mp4" -> path, once assembled and fetched

    @property
    def done(self) -> bool:
        return self.state == DONE


@dataclass
class AnimationJob:
    """Everything a rerun needs to carry on: what was asked and how far each window got."""

    blend: str
    scene: str
    ranges: list[tuple[int, int]]
    max_frames: int
    overlap: int
    strength: float
    shots: list[ShotJob] = field(default_factory=list)
    schema: str = JOB_SCHEMA
    # "final" or "preview" (core/preview.py), and the windows' width x height: every window of a job
    # is rendered at one quality and size, so each continues from a tail of its own size.
    quality: str = FINAL
    size: list[int] = field(default_factory=list)  # [] = not recorded (schema 1)
    display_size: list[int] = field(default_factory=list)  # what a Preview strip covers; [] = its own size

    @property
    def windows_total(self) -> int:
        return sum(len(s.windows) for s in self.shots)

    @property
    def windows_done(self) -> int:
        return sum(w.state == DONE for s in self.shots for w in s.windows)

    @property
    def frames_done(self) -> int:
        """Frames of the requested ranges covered by finished windows."""
        done = 0
        for shot in self.shots:
            covered = shot.frame_start - 1
            for w in shot.windows:
                if w.state != DONE:
                    break
                done += w.keep_end - covered
                covered = w.keep_end
        return done

    @property
    def frames_total(self) -> int:
        return sum(s.frame_end - s.frame_start + 1 for s in self.shots)


def plan_animation(blend: str, scene: str, ranges: list[tuple[int, int]], *, max_frames: int = 121,
                   overlap: int = DEFAULT_OVERLAP, strength: float = DEFAULT_CONTINUITY_STRENGTH,
                   markers: list[int] = (), quality: str = FINAL, size: tuple[int, int] | list[int] = (),
                   display_size: tuple[int, int] | list[int] = ()) -> AnimationJob:
    """A fresh job: the ranges (cut at markers) as shots, each cut into windows with new request ids."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"continuity strength must be in [0, 1] (got {strength}); 0.5 is ComfyUI's default")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)} (got {quality!r})")
    shots = []
    for start, end in ranges:
        for a, b in split_at_markers(start, end, list(markers)):
            shot = ShotJob(name=f"shot_{a:04d}-{b:04d}", frame_start=a, frame_end=b)
            for w in plan_windows(a, b, max_frames, overlap):
                shot.windows.append(WindowJob(w.frame_start, w.frame_end, w.condition_frames, w.keep_end,
                                              request_id=f"win-{uuid.uuid4().hex[:24]}"))
            shot.assembly_request_id = f"asm-{uuid.uuid4().hex[:24]}"
            shots.append(shot)
    return AnimationJob(blend=blend, scene=scene, ranges=list(ranges), max_frames=max_frames, overlap=overlap,
                        strength=strength, shots=shots, quality=quality, size=list(size),
                        display_size=list(display_size))


def save_job(job: AnimationJob, folder: str | os.PathLike) -> Path:
    """Write animation.json atomically (temp + rename): a crash never leaves half a job file."""
    path = Path(folder) / JOB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{JOB_FILE}.tmp")
    tmp.write_text(json.dumps(asdict(job), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_job(folder: str | os.PathLike) -> AnimationJob | None:
    """The job file in `folder`, or None when there is none. ValueError for one this version cannot read."""
    path = Path(folder) / JOB_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it to start the animation afresh") from None
    if doc.get("schema") not in READABLE_SCHEMAS:
        raise ValueError(f"{path}: job file schema {doc.get('schema')!r} is not {JOB_SCHEMA}; delete it to start "
                         "afresh")
    if doc.get("quality", FINAL) not in QUALITIES:
        raise ValueError(f"{path}: quality {doc.get('quality')!r} is not one of {', '.join(QUALITIES)}; delete it to "
                         "start afresh")
    shots = [ShotJob(**{**s, "windows": [WindowJob(**w) for w in s["windows"]]}) for s in doc.pop("shots")]
    doc["ranges"] = [tuple(r) for r in doc["ranges"]]
    return AnimationJob(**{**doc, "shots": shots})


def same_request(job: AnimationJob, ranges: list[tuple[int, int]], max_frames: int, overlap: int,
                 quality: str = FINAL, size: tuple[int, int] | list[int] = ()) -> bool:
    """True when a rerun asks for what the job file holds (then it resumes; else it refuses). The size
    counts when both sides know it: a window must continue from a tail of its own size."""
    same_size = not job.size or not size or list(job.size) == list(size)
    return same_size and (list(map(tuple, job.ranges)), job.max_frames, job.overlap, job.quality) == (
        list(ranges), max_frames, overlap, quality)


def crossfade_weights(frames: int) -> list[float]:
    """Weight of the NEW window on each of the `frames` shared frames: linear, never 0 or 1
    (both windows contribute to every shared frame): (j + 1) / (frames + 1)."""
    return [(j + 1) / (frames + 1) for j in range(frames)]
