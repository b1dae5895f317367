"""A small PNG encoder/decoder in numpy + zlib (Pillow is not available inside Blender).

Scope: 8-bit grey (H, W) and RGB (H, W, 3) images, which is all a shot bundle holds.
The decoder also reads 8-bit grey+alpha and RGBA (returned with their alpha channel) and
every PNG row filter, so PNGs written by other tools (Pillow, Blender) load too.
Not supported (clear error): palette images, 16-bit or sub-byte depths, interlacing.

The encoder picks per row between the None, Sub and Up filters (the usual "smallest sum of
absolute values" heuristic); those three decode with vectorised numpy, so our own files
read back fast.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> channels, for bit depth 8
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_COLOR_TYPE = {1: 0, 3: 2, 2: 4, 4: 6}


class PngError(ValueError):
    """A PNG file that this reader cannot decode; the message says why and what to do."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _filter_rows(pixels: np.ndarray, bpp: int) -> bytes:
    """Filtered scanlines (filter byte + row) choosing None/Sub/Up per row. pixels: (H, W*bpp) uint8."""
    raw = pixels.astype(np.int16)
    sub = raw.copy()
    sub[:, bpp:] -= raw[:, :-bpp]
    up = raw.copy()
    up[1:] -= raw[:-1]
    candidates = np.stack([raw, sub, up]).astype(np.uint8)  # (3, H, row) wraps mod 256
    signed = candidates.astype(np.int8).astype(np.int16)
    cost = np.abs(signed).sum(axis=2)  # (3, H)
    choice = np.argmin(cost, axis=0)  # (H,)
    rows = candidates[choice, np.arange(pixels.shape[0])]  # (H, row)
    out = np.empty((pixels.shape[0], pixels.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = choice.astype(np.uint8)  # filter types 0, 1, 2 match the candidate order
    out[:, 1:] = rows
    return out.tobytes()


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes for an 8-bit image: (H, W) grey, (H, W, 1|2|3|4) grey/grey+alpha/RGB/RGBA.

    bool images are written as grey 0/255 (masks).
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        raise PngError(f"PNG images must be uint8 (got {image.dtype}); convert with np.clip(x, 0, 255).astype(np.uint8)")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in _COLOR_TYPE:
        raise PngError(f"PNG images must be (H, W) or (H, W, 1|2|3|4) (got shape {image.shape})")
    height, width, channels = image.shape
    if height == 0 or width == 0:
        raise PngError(f"PNG images must not be empty (got {width}x{height})")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    scanlines = _filter_rows(np.ascontiguousarray(image).reshape(height, width * channels), channels)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(scanlines, compress_level))
        + _chunk(b"IEND", b"")
    )


def _read_chunks(data: bytes):
    if data[:8] != PNG_SIGNATURE:
        raise PngError("not a PNG file (bad signature)")
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise PngError(f"PNG is truncated in chunk {kind!r}; the file was not written completely")
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise PngError(f"PNG chunk {kind!r} has a bad checksum; the file is corrupt")
        yield kind, body
        pos += 12 + length
        if kind == b"IEND":
            return
    raise PngError("PNG has no IEND chunk; the file was not written completely")


def _parse_ihdr(body: bytes) -> tuple[int, int, int]:
    width, height, depth, color, _comp, _filt, interlace = struct.unpack(">IIBBBBB", body)
    if color == 3:
        raise PngError("palette PNGs are not supported; save as 8-bit RGB or grey")
    if depth != 8 or color not in _CHANNELS:
        raise PngError(f"only 8-bit grey/RGB(A) PNGs are supported (got bit depth {depth}, colour type {color})")
    if interlace:
        raise PngError("interlaced PNGs are not supported; save without interlacing")
    return width, height, _CHANNELS[color]


def png_size(path: str | os.PathLike) -> tuple[int, int, int]:
    """(width, height, channels) from a PNG file's header, without decoding the pixels."""
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise PngError(f"{path}: not a PNG file")
    return _parse_ihdr(head[16:29])


def _unfilter_sequential(kind: int, line: list[int], prev: list[int], bpp: int) -> list[int]:
    """Undo one Average (3) or Paeth (4) row; plain Python ints (faster than numpy scalars here)."""
    cur = line
    for x in range(len(cur)):
        a = cur[x - bpp] if x >= bpp else 0
        b = prev[x]
        if kind == 3:
            pred = (a + b) >> 1
        else:
            c = prev[x - bpp] if x >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[x] = (cur[x] + pred) & 0xFF
    return cur


def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo PNG row filters. raw: (H, 1 + stride) uint8 -> (H, stride) uint8."""
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind = raw[y, 0]
        line = raw[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum per channel, mod 256
            cur = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) & 0xFF
        elif kind == 2:  # Up
            cur = (line + prev) & 0xFF
        elif kind in (3, 4):  # Average / Paeth depend on the pixel just decoded: sequential
            cur = np.asarray(_unfilter_sequential(kind, line.tolist(), prev.tolist(), bpp), dtype=np.int32)
        else:
            raise PngError(f"PNG row {y} has unknown filter type {kind}; the file is corrupt")
        out[y] = cur
        prev = cur
    return out


def decode_png(data: bytes) -> np.ndarray:
    """Pixels of an 8-bit PNG: (H, W) uint8 for grey, (H, W, C) uint8 otherwise."""
    header = None
    idat = []
    for kind, body in _read_chunks(data):
        if kind == b"IHDR":
            header = _parse_ihdr(body)
        elif kind == b"IDAT":
            idat.append(body)
    if header is None or not idat:
        raise PngError("PNG has no IHDR or IDAT chunk; the file is corrupt")
    width, height, channels = header
    stride = width * channels
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise PngError(f"PNG pixel data does not decompress ({exc}); the file is corrupt") from exc
    if len(raw) != height * (stride + 1):
        raise PngError(f"PNG pixel data has {len(raw)} bytes, expected {height * (stride + 1)}; the file is corrupt")
    pixels = _unfilter(np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1), height, stride, channels)
    if channels == 1:
        return pixels.reshape(height, width)
    return pixels.reshape(height, width, channels)


def write_png(path: str | os.PathLike, image: np.ndarray, compress_level: int = 6) -> Path:
    """Write a PNG atomically: to a temporary name in the same folder, then rename."""
    path = Path(path)
    data = encode_png(image, compress_level)
    write_bytes_atomic(path, data)
    return path


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Decode a PNG file (see decode_png); errors name the file."""
    data = Path(path).read_bytes()
    try:
        return decode_png(data)
    except PngError as exc:
        raise PngError(f"{path}: {exc}") from exc


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
