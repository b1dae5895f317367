"""Receiving one shot's frames: PNG chunks in order, checked and written to an incoming folder.

Rules (ltxrender.v1 FrameChunk): for each control of the manifest and each kind (canvas, mask)
frames arrive with index 0, 1, 2, ... ; a frame may span chunks whose `offset` is the byte
position in its PNG; `end_of_frame` closes it. Streams may interleave. Each finished frame must
decode as a PNG of exactly the control's width x height. Errors are `ShotError`s naming what to fix.

Nothing is decoded before it is bounded: a frame may not grow past what a PNG of its size can need,
and its IHDR header (bytes 16..24) must announce the control's size as soon as those bytes arrive,
so a decompression bomb costs 24 bytes of attention. `add()` is cheap bookkeeping for the event
loop; `store()` (parse the header, `verify()` every chunk's CRC and structure, write) is the blocking
part, run in a worker thread. No pixel is decoded at upload: the job decodes each frame once, when it
starts (`load_controls`), and a frame that verified but does not decode (say, valid CRCs over broken
zlib data) fails the job with a message naming the frame. Decoding cost ~4 ms a 768x512 frame, and the
job decoded every frame again anyway.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..proto import render_pb2 as pb
from .convert import ShotError

KIND_NAMES = {pb.FRAME_KIND_CONTROL: "canvas", pb.FRAME_KIND_MASK: "mask", pb.FRAME_KIND_CONDITION: "condition"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def max_png_bytes(width: int, height: int) -> int:
    """The most a PNG of width x height can need: 16-bit RGBA (8 bytes a pixel) + a filter byte a row
    stored uncompressed, plus 1 MiB for zlib framing and ancillary chunks (ICC profile, text)."""
    return 8 * width * height + height + 2**20


def png_declared_size(head: bytes) -> Optional[tuple[int, int]]:
    """(width, height) from a PNG's IHDR once 24 bytes are there; None before. ValueError: not a PNG."""
    if len(head) < 24:
        if not PNG_SIGNATURE.startswith(bytes(head[:8])):
            raise ValueError("not a PNG")
        return None
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", head[16:24])


def verify_png(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG whose structure and every chunk's CRC check out, up to IEND; no pixel is
    decoded (~0.1 ms + a CRC pass, against ~4 ms to decode a 768x512 frame). Raises PIL's errors."""
    with Image.open(io.BytesIO(png)) as img:  # parses IHDR; refuses a bomb by its announced size
        size = img.size
        img.verify()
    return size


def frame_path(inputs_dir: Path, control: int, kind: str, index: int) -> Path:
    """inputs/<control index>/<canvas|mask>/NNNNNN.png, or inputs/conditions/<index>/NNNNNN.png for a
    frame condition (0-based frame index)."""
    if kind == "condition":
        return inputs_dir / "conditions" / str(control) / f"{index:06d}.png"
    return inputs_dir / str(control) / kind / f"{index:06d}.png"


def _stream(kind: str, index: int) -> str:
    """How a message names a stream of frames: "controls[0] canvas", "conditions[0]"."""
    return f"conditions[{index}]" if kind == "condition" else f"controls[{index}] {kind}"


class ShotUpload:
    """Collects the frames that follow a checked manifest into `incoming/inputs/`."""

    def __init__(self, manifest: pb.ShotManifest, incoming: Path, max_bytes: int):
        self.m = manifest
        self.inputs = incoming / "inputs"
        self.max_bytes = max_bytes
        self.received_bytes = 0
        self.size = {(i, kind): (c.width, c.height) for i, c in enumerate(manifest.controls)
                     for kind in ("canvas", "mask")}
        self.expected = {(i, kind): c.num_frames if kind == "canvas" or c.has_mask else 0
                         for i, c in enumerate(manifest.controls) for kind in ("canvas", "mask")}
        for i, c in enumerate(manifest.conditions):  # a previous window's frames, at the shot's size
            self.size[i, "condition"] = (manifest.width, manifest.height)
            self.expected[i, "condition"] = c.num_frames
        self.done = dict.fromkeys(self.expected, 0)  # finished frames per (control, kind)
        self.partial: dict[tuple[int, str], Optional[bytearray]] = dict.fromkeys(self.expected)

    def add(self, chunk: pb.FrameChunk) -> Optional[tuple[int, str, int, bytes]]:
        """Take one chunk; returns (control, kind, index, png) when it finished a frame (pass it to store())."""
        kind = KIND_NAMES.get(chunk.kind)
        if kind is None:
            raise ShotError("INVALID_ARGUMENT", f"frame chunk kind {chunk.kind} is unknown; use CONTROL, MASK or "
                            "CONDITION")
        if kind == "condition" and chunk.control >= len(self.m.conditions):
            raise ShotError("INVALID_ARGUMENT", f"a condition frame names condition {chunk.control} but the manifest "
                            f"has {len(self.m.conditions)} condition(s); number them from 0")
        if kind != "condition" and chunk.control >= len(self.m.controls):
            raise ShotError("INVALID_ARGUMENT", f"a frame names control {chunk.control} but the manifest has "
                            f"{len(self.m.controls)} control(s); number them from 0")
        key = (chunk.control, kind)
        what = _stream(kind, chunk.control)
        if kind == "mask" and not self.m.controls[chunk.control].has_mask:
            raise ShotError("INVALID_ARGUMENT", f"mask frames were sent for controls[{chunk.control}] but its "
                            "has_mask is false; set has_mask or stop sending masks")
        self.received_bytes += len(chunk.data)
        if self.received_bytes > self.max_bytes:
            raise ShotError("RESOURCE_EXHAUSTED",
                            f"upload is larger than this server's limit of {self.max_bytes / 2**20:.0f} MiB; "
                            "send fewer or smaller frames, or raise --max-upload-mib on the server")
        index = self.done[key]
        if index >= self.expected[key]:
            raise ShotError("INVALID_ARGUMENT", f"too many {what} frames: the manifest announces "
                            f"{self.expected[key]} (num_frames)")
        if chunk.index != index:
            raise ShotError("INVALID_ARGUMENT", f"{what} frame {chunk.index} arrived out of order; "
                            f"expected frame {index} (send frames in order 0, 1, 2, ...)")
        buf = self.partial[key] if self.partial[key] is not None else bytearray()
        if chunk.offset != len(buf):
            raise ShotError("INVALID_ARGUMENT", f"{what} frame {index}: chunk offset {chunk.offset} but "
                            f"{len(buf)} bytes were received; send a frame's chunks in order")
        checked = len(buf) >= 24  # the header was checked when it arrived
        buf += chunk.data
        self.partial[key] = buf
        w, h = self.size[key]
        if len(buf) > max_png_bytes(w, h):
            raise ShotError("INVALID_ARGUMENT", f"{what} frame {index} is over {max_png_bytes(w, h)} bytes, more "
                            f"than a {w}x{h} PNG can need; re-export it as a plain PNG")
        if not checked:
            self._check_header(key, what, index, buf, final=chunk.end_of_frame)
        if not chunk.end_of_frame:
            return None
        self.partial[key] = None
        self.done[key] += 1
        return chunk.control, kind, index, bytes(buf)

    def _check_header(self, key: tuple[int, str], what: str, index: int, head: bytearray, final: bool) -> None:
        try:
            declared = png_declared_size(head)
        except ValueError:
            raise ShotError("INVALID_ARGUMENT", f"{what} frame {index} is not a PNG; send PNG bytes") from None
        if declared is None:
            if final:
                raise ShotError("INVALID_ARGUMENT", f"{what} frame {index} does not decode as a PNG (only "
                                f"{len(head)} bytes); re-export the frame")
            return
        want = self.size[key]
        if declared != want:
            raise ShotError("INVALID_ARGUMENT", f"{what} frame {index} declares {declared[0]}x{declared[1]} pixels "
                            f"in its PNG header but {_stream(key[1], key[0]).split(' ')[0]} is {want[0]}x{want[1]}; export "
                            "the frames at the size the manifest announces")

    def store(self, frame: tuple[int, str, int, bytes]) -> None:
        """Verify one finished frame (header, chunk CRCs and structure; no pixels), then write it. Blocking."""
        control, kind, index, png = frame
        what = _stream(kind, control)
        try:
            size = verify_png(png)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise ShotError("INVALID_ARGUMENT", f"{what} frame {index} does not decode as a PNG (corrupt or "
                            "truncated data); re-export the frame") from None
        want = self.size[control, kind]
        if size != want:
            raise ShotError("INVALID_ARGUMENT", f"{what} frame {index} is {size[0]}x{size[1]} but the "
                            f"manifest says {_stream(kind, control).split(' ')[0]} is {want[0]}x{want[1]}")
        # A plain write: the whole incoming folder becomes the job's in one atomic rename
        # (JobStore.create), so a half-written frame is never part of a job.
        path = frame_path(self.inputs, control, kind, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)

    def finish(self) -> None:
        """Called at the end of the stream: every announced frame must be complete."""
        for (control, kind), buf in self.partial.items():
            if buf is not None:
                raise ShotError("INVALID_ARGUMENT", f"{_stream(kind, control)} frame {self.done[control, kind]} "
                                "was not finished (no chunk with end_of_frame); the upload was cut short, resend "
                                "the shot")
        for (control, kind), want in self.expected.items():
            if self.done[control, kind] != want:
                raise ShotError("INVALID_ARGUMENT", f"got {self.done[control, kind]} {_stream(kind, control)} "
                                f"frames but the manifest announces {want}; send them all")


def load_controls(inputs_dir: Path, manifest: pb.ShotManifest) -> tuple[list[np.ndarray], list[Optional[list]],
                                                                        list[np.ndarray]]:
    """Decoded frames per control: canvases (F, H, W, 3) uint8 RGB, masks bool (H, W) >= 128 inside;
    and per frame condition its frames (F, H, W, 3) uint8 RGB. The one decode of an uploaded frame:
    ShotError (INVALID_ARGUMENT) naming the frame when one does not decode."""
    frames, masks = [], []
    for i, c in enumerate(manifest.controls):
        frames.append(_decode_stream(inputs_dir, i, "canvas", c.num_frames, c.width, c.height))
        masks.append([_decode_frame(inputs_dir, i, "mask", k, "L") >= 128 for k in range(c.num_frames)]
                     if c.has_mask else None)
    conditions = [_decode_stream(inputs_dir, i, "condition", c.num_frames, manifest.width, manifest.height)
                  for i, c in enumerate(manifest.conditions)]
    return frames, masks, conditions


def _decode_stream(inputs_dir: Path, control: int, kind: str, count: int, width: int, height: int) -> np.ndarray:
    """(F, H, W, 3) uint8, filled frame by frame: no list of frames beside the stacked copy."""
    out = np.empty((count, height, width, 3), dtype=np.uint8)
    for k in range(count):
        frame = _decode_frame(inputs_dir, control, kind, k, "RGB")
        if frame.shape != out.shape[1:]:
            raise ShotError("INVALID_ARGUMENT", f"{_stream(kind, control)} frame {k} is {frame.shape[1]}x"
                            f"{frame.shape[0]} pixels, not {width}x{height}; re-export the frame and resubmit")
        out[k] = frame
    return out


def _decode_frame(inputs_dir: Path, control: int, kind: str, index: int, mode: str) -> np.ndarray:
    data = frame_path(inputs_dir, control, kind, index).read_bytes()  # a disk error stays an OSError
    try:
        return decode_png(io.BytesIO(data), mode)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
            zlib.error):
        raise ShotError("INVALID_ARGUMENT", f"{_stream(kind, control)} frame {index} passed the upload check "
                        "but its pixels do not decode as a PNG (corrupt compressed data); re-export the frame "
                        "and resubmit the shot") from None


def decode_png(path: Path | io.BytesIO, mode: str) -> np.ndarray:
    """A PNG as uint8: mode "RGB" (H, W, 3) or "L" (H, W). The server and `render BUNDLE` decode alike."""
    with Image.open(path) as img:
        return np.asarray(img if img.mode == mode else img.convert(mode))  # convert() to its own mode = a copy
