"""Assembly jobs: the windows of one long shot, rendered on this server, become one take.

A manifest with `assembly` set is not a render: it names DONE jobs of this server (the windows,
in order) and how they join (render_backend/takes.py: cross-fade of the overlapping frames and
audio, trim past the range). It queues like any job, so its state, re-attach, fetch and restart
recovery are the same; it needs no GPU. Its artifacts: <shot>.mp4, .wav, .json (and frames.zip
with image_sequence).
"""

from __future__ import annotations

import wave
import zipfile
from pathlib import Path

import numpy as np

from .. import media
from ..proto import render_pb2 as pb
from ..takes import WindowTake, assemble
from .convert import ShotError
from .errors import echo
from .store import DONE, JobStore

MAX_WINDOWS = 256


def check_assembly(m: pb.ShotManifest, store: JobStore) -> None:
    """Refuse an assembly that cannot work, before it queues: every window a DONE job here with its
    video, the overlaps and keeps in range. FAILED_PRECONDITION names the window to render again."""
    windows = m.assembly.windows
    if not windows:
        raise ShotError("INVALID_ARGUMENT", "assembly.windows is empty; name the jobs of the shot's windows, in order")
    if len(windows) > MAX_WINDOWS:
        raise ShotError("INVALID_ARGUMENT", f"assembly has {len(windows)} windows; at most {MAX_WINDOWS} per take "
                        "(split the range into several shots)")
    if m.controls or m.conditions:
        raise ShotError("INVALID_ARGUMENT", "an assembly carries no canvases or conditions; send them with the windows")
    for i, w in enumerate(windows):
        job = store.get(w.job_id) if w.job_id else None
        if job is None or job.state != DONE:
            state = "not on this server (removed after its retention time?)" if job is None else \
                f"{pb.JobState.Name(job.state)}, not DONE"
            raise ShotError("FAILED_PRECONDITION", f"assembly window {i} (job {echo(w.job_id)}) is {state}; render "
                            "that window again, then assemble")
        if not any(a["kind"] == pb.ARTIFACT_KIND_VIDEO_MP4 for a in job.artifacts):
            raise ShotError("FAILED_PRECONDITION", f"assembly window {i} (job {job.job_id}) has no video")
        frames = job.manifest.num_frames
        if (i == 0) != (w.overlap_frames == 0) or not w.overlap_frames < w.keep_frames <= frames:
            raise ShotError("INVALID_ARGUMENT", f"assembly window {i}: overlap_frames {w.overlap_frames} and "
                            f"keep_frames {w.keep_frames} must satisfy overlap < keep <= its {frames} frames (overlap 0 "
                            "for the first window only)")


def _read_video(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, channels)
    return (pcm.T.astype(np.float32) / 32767.0), rate


def run_assembly(job, store: JobStore, sidecar: dict) -> list[dict]:
    """Decode the windows, assemble, write the take; returns the artifact list for the store."""
    windows, fps, rate = [], None, 0
    for w in job.manifest.assembly.windows:
        source = store.get(w.job_id)
        files = {a["kind"]: store.outputs_dir(w.job_id) / a["filename"] for a in source.artifacts}
        video = _read_video(files[pb.ARTIFACT_KIND_VIDEO_MP4])
        audio = None
        if pb.ARTIFACT_KIND_AUDIO_WAV in files:
            audio, rate = _read_wav(files[pb.ARTIFACT_KIND_AUDIO_WAV])
        fps = fps or source.manifest.fps
        windows.append(WindowTake(video, audio, w.overlap_frames, w.keep_frames))
    try:
        video, audio = assemble(windows, fps, rate)
    except ValueError as e:
        raise ShotError("FAILED_PRECONDITION", f"the windows do not assemble: {e}") from None
    out = store.outputs_dir(job.job_id)
    stem = media.file_stem(job.manifest.shot_name or "take")
    sidecar = {**sidecar, "assembly": {"windows": [{"job_id": w.job_id, "overlap_frames": w.overlap_frames,
                                                    "keep_frames": w.keep_frames} for w in job.manifest.assembly.windows],
                                       "frames": int(len(video)), "crossfade": "linear, (j + 1) / (overlap + 1)"}}
    files = media.write_result(out, stem, video, fps, audio, rate, sidecar)
    kinds = {"mp4": pb.ARTIFACT_KIND_VIDEO_MP4, "wav": pb.ARTIFACT_KIND_AUDIO_WAV, "json": pb.ARTIFACT_KIND_SIDECAR_JSON}
    artifacts = [{"kind": kinds[f["kind"]], "filename": f["filename"], "size": f["size"], "sha256": f["sha256"]}
                 for f in files]
    if job.manifest.assembly.image_sequence:
        path = _frames_zip(out / "frames.zip", video, job.manifest.frame_start)
        artifacts.append({"kind": pb.ARTIFACT_KIND_FRAMES_ZIP, "filename": path.name, "size": path.stat().st_size,
                          "sha256": media.sha256_of(path)})
    return artifacts


def _frames_zip(dest: Path, video: np.ndarray, frame_start: int) -> Path:
    """NNNNNN.png per frame, numbered by Blender frame from frame_start (compositing picks them up)."""
    from ..takes import png_bytes

    with media.atomic_path(dest, ".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            for i, image in enumerate(video):
                z.writestr(f"{frame_start + i:06d}.png", png_bytes(image))
    return dest
