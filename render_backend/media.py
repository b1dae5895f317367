"""Writing a generation to disk: mp4 (H.264 yuv420p + AAC), wav (16-bit PCM), sidecar JSON.

Every file is written to a temporary name next to its destination and renamed, so a reader
never sees a half-written file. Also small probes (`probe_mp4`, `probe_wav`) used by tests
and the demo to check what was written.

Results (`write_result`: server jobs, `render BUNDLE`, assembled takes) are H.264 crf 18 at preset
RESULT_PRESET "veryfast": for 121 frames at 768x512 it encoded ~3x faster than "medium" at about the
same quality (PSNR within ~0.4 dB of medium's at the same crf) and no larger (bench/pipeline.py prints
seconds, bytes and PSNR per preset). "superfast"/"ultrafast" were no faster here but 2-7x larger.
The lossless path (crf 0, yuv444p: canvases) keeps write_mp4's default preset.

Conventions: video is uint8 (F, H, W, 3) RGB; audio is float32 (channels, samples) in
[-1, 1]; fps is frames per second (23.976 and 29.97 are stored as the exact NTSC rationals).
"""

from __future__ import annotations

import json
import os
import tempfile
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

# NTSC rates are written as 24000/1001 etc.: a float 23.976 would drift by a frame every ~7 min.
_NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 59.94: Fraction(60000, 1001),
         47.952: Fraction(48000, 1001), 119.88: Fraction(120000, 1001)}


RESULT_CRF = 18
RESULT_PRESET = "veryfast"  # see the module docstring: measured against "medium" by bench/pipeline.py


def fps_fraction(fps: float) -> Fraction:
    """The exact frame rate for `fps` (frames per second): 23.976 -> 24000/1001, 25 -> 25/1."""
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"fps must be a positive number (got {fps})")
    for approx, exact in _NTSC.items():
        if abs(fps - approx) < 0.002:
            return exact
    return Fraction(fps).limit_denominator(1001)


@contextmanager
def atomic_path(dest: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in dest's folder; rename it onto dest only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix, dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(dest: str | Path, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_json_atomic(dest: str | Path, obj: dict) -> Path:
    """Write `obj` as indented UTF-8 strict JSON: numpy scalars/arrays converted, NaN and +-Infinity
    (which strict parsers refuse) written as null."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=True, allow_nan=False)
    return write_bytes_atomic(dest, (text + "\n").encode())


def strict_json(o):
    """`o` with only what strict JSON holds: dict, list, str, int, finite float, bool, None."""
    if isinstance(o, dict):
        return {str(k): strict_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [strict_json(v) for v in o]
    if isinstance(o, np.ndarray):
        return strict_json(o.tolist())
    if isinstance(o, np.generic):
        return strict_json(o.item())
    if isinstance(o, float):
        return o if np.isfinite(o) else None
    if o is None or isinstance(o, (str, int)):
        return o
    return str(o) if isinstance(o, Path) else repr(o)


def fit_audio(audio: np.ndarray, sample_rate: int, num_frames: int, fps: float) -> np.ndarray:
    """Pad with silence or trim `audio` (channels, samples) to exactly the video's duration."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    want = int(round(num_frames / float(fps_fraction(fps)) * sample_rate))
    have = audio.shape[1]
    if have >= want:
        return np.ascontiguousarray(audio[:, :want])
    return np.concatenate([audio, np.zeros((audio.shape[0], want - have), np.float32)], axis=1)


def write_wav(dest: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM wav; `audio` is float32 (channels, samples) in [-1, 1] (clipped)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(dest) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(audio.shape[0])
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(np.ascontiguousarray(pcm.T).tobytes())  # interleaved (samples, channels)
    return Path(dest)


def write_mp4(dest: str | Path, video: np.ndarray, fps: float, audio: Optional[np.ndarray] = None,
              sample_rate: int = 0, crf: int = 18, pix_fmt: str = "yuv420p", preset: str = "medium") -> Path:
    """H.264 (yuv420p) mp4 with optional AAC audio (trimmed/padded to the video's duration).

    `video` is uint8 (F, H, W, 3); H and W must be even (yuv420p halves chroma). pix_fmt "yuv444p" with
    crf 0 is lossless (canvases whose neighbouring columns carry different numbers). preset: libx264's
    speed/size trade-off ("medium" default; results use RESULT_PRESET).
    """
    import av  # heavy import, only where needed

    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"video must be uint8 (frames, height, width, 3) (got {video.dtype} {video.shape})")
    frames, height, width, _ = video.shape
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs an even width and height (got {width}x{height})")
    rate = fps_fraction(fps)
    with atomic_path(dest) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            vstream = container.add_stream("libx264", rate=rate)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
            vstream.codec_context.time_base = 1 / rate
            vstream.options = {"crf": str(crf), "preset": preset}
            astream = None
            if audio is not None and sample_rate > 0:
                audio = fit_audio(audio, sample_rate, frames, fps)
                layout = "stereo" if audio.shape[0] == 2 else "mono"
                audio = audio[:2] if audio.shape[0] > 2 else audio
                astream = container.add_stream("aac", rate=int(sample_rate), layout=layout)
                astream.bit_rate = 192_000
            for i in range(frames):
                frame = av.VideoFrame.from_ndarray(video[i], format="rgb24")
                frame.pts = i
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
            if astream is not None:
                aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio), format="fltp",
                                                    layout=astream.layout.name)
                aframe.sample_rate = int(sample_rate)
                aframe.pts = 0
                for packet in astream.encode(aframe):
                    container.mux(packet)
                for packet in astream.encode():
                    container.mux(packet)
    return Path(dest)


@dataclass
class Mp4Info:
    frames: int
    width: int
    height: int
    fps: Fraction
    video_codec: str
    audio_codec: str  # "" when there is no audio stream
    audio_sample_rate: int
    audio_channels: int
    audio_seconds: float  # audio stream duration from the container (edit list applied)
    audio_decoded_seconds: float  # decoded samples / rate: rounded up to whole AAC frames (1024)


def probe_mp4(path: str | Path) -> Mp4Info:
    """Decode an mp4 fully and count what is really in it (frames, size, fps, audio seconds)."""
    import av

    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        frames, width, height = 0, vs.codec_context.width, vs.codec_context.height
        for _ in container.decode(video=0):
            frames += 1
        fps = Fraction(vs.average_rate) if vs.average_rate else Fraction(0)
        info = Mp4Info(frames, width, height, fps, vs.codec_context.name, "", 0, 0, 0.0, 0.0)
    with av.open(str(path)) as container:
        if container.streams.audio:
            ast = container.streams.audio[0]
            samples = sum(f.samples for f in container.decode(audio=0))
            info.audio_codec = ast.codec_context.name
            info.audio_sample_rate = ast.codec_context.sample_rate
            info.audio_channels = ast.codec_context.channels
            info.audio_decoded_seconds = samples / info.audio_sample_rate
            info.audio_seconds = (float(ast.duration * ast.time_base) if ast.duration
                                  else info.audio_decoded_seconds)
    return info


def probe_wav(path: str | Path) -> tuple[int, int, int, float]:
    """(sample_rate, channels, sample_width_bytes, seconds) of a wav file."""
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


def sha256_of(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_stem(shot_name: str, max_chars: int = 120) -> str:
    """A safe file name stem for a shot ("Shot 010/a" -> "Shot_010_a"), ASCII, at most max_chars (file
    names stay far below the 255-byte limit with a suffix and a temp name); "shot" when empty."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", shot_name)[:max_chars].strip("._") or "shot"


def write_result(out_dir: str | Path, stem: str, video: np.ndarray, fps: float, audio: Optional[np.ndarray],
                 sample_rate: int, sidecar: dict) -> list[dict]:
    """Write <stem>.mp4 (+ .wav when audio is given) and <stem>.json into out_dir.

    The sidecar gets `files` (name, size, sha256 of mp4/wav) and `timings.encode_s` added.
    Returns [{"kind": "mp4"|"wav"|"json", "filename", "size", "sha256", "path"}], json last.
    """
    import time

    out_dir = Path(out_dir)
    t = time.monotonic()
    paths = [("mp4", write_mp4(out_dir / f"{stem}.mp4", video, fps, audio, sample_rate, crf=RESULT_CRF,
                               preset=RESULT_PRESET))]
    if audio is not None:
        paths.append(("wav", write_wav(out_dir / f"{stem}.wav",
                                       fit_audio(audio, sample_rate, len(video), fps), sample_rate)))
    files = [{"kind": kind, "filename": p.name, "size": p.stat().st_size, "sha256": sha256_of(p), "path": str(p)}
             for kind, p in paths]
    sidecar = {**sidecar, "files": [{k: f[k] for k in ("filename", "size", "sha256")} for f in files]}
    sidecar["timings"] = {**sidecar.get("timings", {}), "encode_s": round(time.monotonic() - t, 4)}
    p = write_json_atomic(out_dir / f"{stem}.json", sidecar)
    files.append({"kind": "json", "filename": p.name, "size": p.stat().st_size, "sha256": sha256_of(p),
                  "path": str(p)})
    return files
