"""One take from the windows of a long shot, and what a window hands to the next one.

- `tail_zip`: a window's last frames as lossless PNGs plus the audio of those frames (audio.wav):
  what the next window continues from (its frame condition). Written atomically.
- `assemble`: windows -> one video + soundtrack covering exactly the shot's frames. Each window
  after the first re-renders the previous window's last `overlap` frames (held to them, so they
  match); those frames are cross-faded linearly, the new window's weight (j + 1) / (overlap + 1)
  on shared frame j, so both windows contribute to every shared frame and neither seam is a cut.
  The audio is cross-faded the same way over the same span, sample by sample.

Video is uint8 (F, H, W, 3); audio float32 (channels, samples) in [-1, 1].
"""

from __future__ import annotations

import io
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .media import atomic_path


def crossfade_weights(frames: int) -> np.ndarray:
    """Weight of the NEW window on each of `frames` shared frames: (j + 1) / (frames + 1)."""
    return (np.arange(frames, dtype=np.float64) + 1.0) / (frames + 1.0)


@dataclass
class WindowTake:
    video: np.ndarray  # (F, H, W, 3) uint8
    audio: Optional[np.ndarray]  # (channels, samples) float32, or None
    overlap_frames: int  # with the previous window (0 for the first)
    keep_frames: int  # frames of this window in the take, from its first frame


def assemble(windows: list[WindowTake], fps: float, sample_rate: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(video, audio) of the whole take. Raises ValueError naming the window that does not fit."""
    if not windows:
        raise ValueError("nothing to assemble: no windows")
    if windows[0].overlap_frames:
        raise ValueError("the first window cannot overlap a previous one (overlap_frames must be 0)")
    shape = windows[0].video.shape[1:]
    parts: list[np.ndarray] = []  # uint8 pieces of the take, in order (cheap: no float copy of it all)
    sounds: list[np.ndarray] = []
    with_audio = all(w.audio is not None for w in windows)
    for i, w in enumerate(windows):
        if w.video.shape[1:] != shape:
            raise ValueError(f"window {i} is {w.video.shape[2]}x{w.video.shape[1]}, the first {shape[1]}x{shape[0]}; "
                             "all windows of a take need one size")
        if not w.overlap_frames < w.keep_frames <= len(w.video):
            raise ValueError(f"window {i}: keep_frames {w.keep_frames} must be more than its overlap "
                             f"{w.overlap_frames} and at most its {len(w.video)} frames")
        video = w.video[:w.keep_frames]
        n = w.overlap_frames
        if n:
            done = sum(len(p) for p in parts)
            if n > done:
                raise ValueError(f"window {i} overlaps {n} frames but the take so far has {done}")
            alpha = crossfade_weights(n)[:, None, None, None]
            shared = (1.0 - alpha) * _take_last(parts, n) + alpha * video[:n].astype(np.float64)
            parts.append(np.clip(np.round(shared), 0, 255).astype(np.uint8))
            video = video[n:]
        parts.append(video)
        if with_audio:
            sounds.append(_audio_part(w, i, sounds, fps, sample_rate))
    video = np.concatenate(parts)
    audio = np.concatenate(sounds, axis=1).astype(np.float32) if with_audio else None
    if audio is not None:
        audio = _fit(audio, round(len(video) / fps * sample_rate))
    return video, audio


def _take_last(parts: list[np.ndarray], n: int) -> np.ndarray:
    """Remove the take's last n frames from `parts` (they may span pieces); return them as float."""
    taken = []
    while n:
        last = parts.pop()
        k = min(n, len(last))
        taken.insert(0, last[len(last) - k:])
        if len(last) > k:
            parts.append(last[:len(last) - k])
        n -= k
    return np.concatenate(taken).astype(np.float64)


def _audio_part(w: WindowTake, i: int, sounds: list[np.ndarray], fps: float, rate: int) -> np.ndarray:
    """This window's audio, its first overlap span cross-faded into the take's last samples (which
    are removed from `sounds` and come back blended at the start of the returned part)."""
    audio = _fit(w.audio.astype(np.float64), round(w.keep_frames / fps * rate))
    n = round(w.overlap_frames / fps * rate)
    if not n:
        return audio
    if sum(s.shape[1] for s in sounds) < n or sounds[-1].shape[0] != audio.shape[0]:
        raise ValueError(f"window {i}: its audio does not continue the previous window's")
    taken = []
    left = n
    while left:
        last = sounds.pop()
        k = min(left, last.shape[1])
        taken.insert(0, last[:, last.shape[1] - k:])
        if last.shape[1] > k:
            sounds.append(last[:, :last.shape[1] - k])
        left -= k
    alpha = (np.arange(n, dtype=np.float64) + 1.0) / (n + 1.0)
    shared = (1.0 - alpha) * np.concatenate(taken, axis=1) + alpha * audio[:, :n]
    return np.concatenate([shared, audio[:, n:]], axis=1)


def _fit(audio: np.ndarray, samples: int) -> np.ndarray:
    """Trim or zero-pad (channels, samples) audio to `samples`."""
    if audio.shape[1] >= samples:
        return audio[:, :samples]
    return np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))


# ---------------------------------------------------------------- the tail a window hands on
def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)  # the next upload is the only reader
    return buf.getvalue()


def _wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").T  # (samples, channels)
    with wave.open(buf, "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(pcm).tobytes())
    return buf.getvalue()


def write_tail_zip(dest: str | Path, video: np.ndarray, audio: Optional[np.ndarray], rate: int, fps: float,
                   frames: int) -> Path:
    """dest: a zip (stored, not compressed: PNGs are) with 000000.png.. of the last `frames` frames
    and, when there is audio, audio.wav of the same span."""
    frames = min(int(frames), len(video))
    with atomic_path(dest, ".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            for i, image in enumerate(video[-frames:]):
                z.writestr(f"{i:06d}.png", png_bytes(image))
            if audio is not None:
                span = round(frames / fps * rate)
                total = round(len(video) / fps * rate)
                z.writestr("audio.wav", _wav_bytes(_fit(audio, total)[:, total - span:], rate))
    return Path(dest)


def read_tail_zip(path: str | Path) -> tuple[list[bytes], Optional[bytes]]:
    """(PNG bytes of each frame in order, wav bytes or None) of a tail zip."""
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        return [z.read(n) for n in names], (z.read("audio.wav") if "audio.wav" in z.namelist() else None)
