"""Receiving one shot's frames: PNG chunks in order, checked and written to an incoming folder.

Rules (ltxrender.v1 FrameChunk): for each kind (control, mask) frames arrive with index
0, 1, 2, ... ; a frame may span chunks whose `offset` is the byte position in its PNG;
`end_of_frame` closes it. Kinds may interleave. Each finished frame must decode as a PNG
of exactly control_width x control_height. Errors are `ShotError`s naming what to fix.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..proto import render_pb2 as pb
from .validation import ShotError

KIND_NAMES = {pb.FRAME_KIND_CONTROL: "control", pb.FRAME_KIND_MASK: "mask"}


def frame_path(inputs_dir: Path, kind: str, index: int) -> Path:
    return inputs_dir / kind / f"{index:06d}.png"


class ShotUpload:
    """Collects the frames that follow a checked manifest into `incoming/inputs/`."""

    def __init__(self, manifest: pb.ShotManifest, incoming: Path, max_bytes: int):
        self.m = manifest
        self.inputs = incoming / "inputs"
        self.max_bytes = max_bytes
        self.received_bytes = 0
        self.size = (manifest.control_width or manifest.width, manifest.control_height or manifest.height)
        self.expected = {"control": manifest.num_control_frames,
                         "mask": manifest.num_control_frames if manifest.has_mask else 0}
        self.done = {"control": 0, "mask": 0}  # finished frames per kind
        self.partial: dict[str, Optional[bytearray]] = {"control": None, "mask": None}

    def add(self, chunk: pb.FrameChunk) -> None:
        kind = KIND_NAMES.get(chunk.kind)
        if kind is None:
            raise ShotError("INVALID_ARGUMENT", f"frame chunk kind {chunk.kind} is unknown; use CONTROL or MASK")
        if kind == "mask" and not self.m.has_mask:
            raise ShotError("INVALID_ARGUMENT", "mask frames were sent but manifest.has_mask is false; "
                            "set has_mask or stop sending masks")
        self.received_bytes += len(chunk.data)
        if self.received_bytes > self.max_bytes:
            raise ShotError("RESOURCE_EXHAUSTED",
                            f"upload is larger than this server's limit of {self.max_bytes / 2**20:.0f} MiB; "
                            "send fewer or smaller frames, or raise --max-upload-mib on the server")
        index = self.done[kind]
        if index >= self.expected[kind]:
            raise ShotError("INVALID_ARGUMENT", f"too many {kind} frames: the manifest announces "
                            f"{self.expected[kind]} (num_control_frames)")
        if chunk.index != index:
            raise ShotError("INVALID_ARGUMENT", f"{kind} frame {chunk.index} arrived out of order; "
                            f"expected frame {index} (send frames in order 0, 1, 2, ...)")
        buf = self.partial[kind] if self.partial[kind] is not None else bytearray()
        if chunk.offset != len(buf):
            raise ShotError("INVALID_ARGUMENT", f"{kind} frame {index}: chunk offset {chunk.offset} but "
                            f"{len(buf)} bytes were received; send a frame's chunks in order")
        buf += chunk.data
        self.partial[kind] = buf
        if chunk.end_of_frame:
            self._finish(kind, index, bytes(buf))
            self.partial[kind] = None
            self.done[kind] += 1

    def _finish(self, kind: str, index: int, png: bytes) -> None:
        if png[:8] != b"\x89PNG\r\n\x1a\n":
            raise ShotError("INVALID_ARGUMENT", f"{kind} frame {index} is not a PNG; send PNG bytes")
        try:
            with Image.open(io.BytesIO(png)) as img:
                img.load()
                size = img.size
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise ShotError("INVALID_ARGUMENT", f"{kind} frame {index} does not decode as a PNG ({e}); "
                            "re-export the frame") from None
        if size != self.size:
            raise ShotError("INVALID_ARGUMENT", f"{kind} frame {index} is {size[0]}x{size[1]} but the "
                            f"manifest says control_width x control_height = {self.size[0]}x{self.size[1]}")
        # A plain write: the whole incoming folder becomes the job's in one atomic rename
        # (JobStore.create), so a half-written frame is never part of a job.
        path = frame_path(self.inputs, kind, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)

    def finish(self) -> None:
        """Called at the end of the stream: every announced frame must be complete."""
        for kind, buf in self.partial.items():
            if buf is not None:
                raise ShotError("INVALID_ARGUMENT", f"{kind} frame {self.done[kind]} was not finished "
                                "(no chunk with end_of_frame); the upload was cut short, resend the shot")
        for kind, want in self.expected.items():
            if self.done[kind] != want:
                raise ShotError("INVALID_ARGUMENT", f"got {self.done[kind]} {kind} frames but the manifest "
                                f"announces {want}; send one per output frame")


def load_frames(inputs_dir: Path, kind: str, count: int) -> Optional[list[np.ndarray]]:
    """Decoded frames of one kind: control -> uint8 (H, W, 3) RGB; mask -> bool (H, W), >= 128 inside."""
    if count == 0:
        return None
    frames = []
    for i in range(count):
        with Image.open(frame_path(inputs_dir, kind, i)) as img:
            if kind == "mask":
                frames.append(np.asarray(img.convert("L")) >= 128)
            else:
                frames.append(np.asarray(img.convert("RGB")))
    return frames
