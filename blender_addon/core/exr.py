"""A small numpy OpenEXR reader for the files Blender's renderer writes.

Supports single- and multi-part scanline files, NONE / ZIPS / ZIP compression, HALF / FLOAT /
UINT channels. That is what we ask Blender for (Output > File Format: OpenEXR MultiLayer,
Codec: None for the gather layer's scratch files, ZIP also read, Color Depth: Float (Full)); anything
else gets an error naming the setting to change.

Layout reference: the OpenEXR file layout document (magic, version flags, attribute headers,
offset tables, chunks). Channel names are Blender's full pass names, e.g. "ViewLayer.Depth.Z".
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_MAGIC = 20000630
_FLAG_TILED = 0x200
_FLAG_DEEP = 0x800
_FLAG_MULTIPART = 0x1000

# compression id -> (name, scanlines per chunk); only the ones we decode have a line count.
_COMPRESSION = {0: ("NONE", 1), 1: ("RLE", 1), 2: ("ZIPS", 1), 3: ("ZIP", 16), 4: ("PIZ", 32),
                5: ("PXR24", 16), 6: ("B44", 32), 7: ("B44A", 32), 8: ("DWAA", 32), 9: ("DWAB", 256)}
_SUPPORTED = {"NONE", "ZIPS", "ZIP"}
# pixel type id -> numpy little-endian dtype
_PIXEL_DTYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}


class ExrError(ValueError):
    """The file is not an EXR we can read; the message says what to change."""


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Read every channel of every part: {channel name: (H, W) float32}, top image row first.

    Raises ExrError for tiled/deep files and for codecs other than NONE, ZIPS and ZIP.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8 or struct.unpack_from("<i", data, 0)[0] != _MAGIC:
        raise ExrError(f"{path} is not an OpenEXR file (bad magic number)")
    flags = struct.unpack_from("<I", data, 4)[0]
    if flags & _FLAG_DEEP:
        raise ExrError(f"{path}: deep EXR files are not supported")
    multipart = bool(flags & _FLAG_MULTIPART)
    if flags & _FLAG_TILED and not multipart:
        raise ExrError(f"{path}: tiled EXR is not supported; write scanline EXR")

    pos = 8
    headers = []
    while True:
        header, pos = _read_header(data, pos)
        headers.append(header)
        if not multipart:
            break
        if data[pos] == 0:  # an empty header ends the list
            pos += 1
            break

    parts = [_describe_part(h, path) for h in headers]
    offsets = []
    for part in parts:
        n = part["chunk_count"]
        offsets.append(np.frombuffer(data, dtype="<u8", count=n, offset=pos))
        pos += 8 * n

    channels: dict[str, np.ndarray] = {}
    for index, (part, table) in enumerate(zip(parts, offsets, strict=True)):
        channels.update(_read_part(data, index, part, table, multipart, path))
    return channels


def _read_header(data: bytes, pos: int) -> tuple[dict, int]:
    attrs = {}
    while data[pos] != 0:
        name, pos = _cstring(data, pos)
        kind, pos = _cstring(data, pos)
        size = struct.unpack_from("<i", data, pos)[0]
        pos += 4
        attrs[name] = (kind, data[pos:pos + size])
        pos += size
    return attrs, pos + 1


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode("utf-8", "replace"), end + 1


def _parse_chlist(raw: bytes) -> list[tuple[str, int, int, int]]:
    out, pos = [], 0
    while raw[pos] != 0:
        name, pos = _cstring(raw, pos)
        ptype, _linear, xs, ys = struct.unpack_from("<iB3xii", raw, pos)
        pos += 16
        out.append((name, ptype, xs, ys))
    return out


def _describe_part(header: dict, path: Path) -> dict:
    for key in ("channels", "compression", "dataWindow"):
        if key not in header:
            raise ExrError(f"{path}: EXR header lacks the required attribute {key!r}")
    part_type = header.get("type", ("string", b"scanlineimage"))[1].decode("ascii", "replace")
    if part_type not in ("scanlineimage", ""):
        raise ExrError(f"{path}: EXR part type {part_type!r} is not supported; write scanline EXR")
    comp_id = header["compression"][1][0]
    comp_name, lines = _COMPRESSION.get(comp_id, (f"#{comp_id}", 0))
    if comp_name not in _SUPPORTED:
        raise ExrError(f"{path}: EXR compression {comp_name} is not supported; in Blender set "
                       "Output Properties > Output > Codec (image_settings.exr_codec) to ZIP or None")
    xmin, ymin, xmax, ymax = struct.unpack("<4i", header["dataWindow"][1])
    width, height = xmax - xmin + 1, ymax - ymin + 1
    channels = _parse_chlist(header["channels"][1])
    for name, ptype, xs, ys in channels:
        if ptype not in _PIXEL_DTYPES:
            raise ExrError(f"{path}: channel {name!r} has unknown pixel type {ptype}")
        if xs != 1 or ys != 1:
            raise ExrError(f"{path}: channel {name!r} is subsampled ({xs}x{ys}); not supported")
    if "chunkCount" in header:
        chunk_count = struct.unpack("<i", header["chunkCount"][1])[0]
    else:
        chunk_count = -(-height // lines)
    return {"compression": comp_name, "lines": lines, "width": width, "height": height, "ymin": ymin,
            "channels": channels, "chunk_count": chunk_count}


def _undo_predictor(t: np.ndarray) -> np.ndarray:
    # out[0] = t[0]; out[i] = out[i-1] + t[i] - 128 (mod 256)
    if t.size == 0:
        return t
    acc = np.cumsum(t.astype(np.int64) - 128)
    acc += 128  # t[0] was not a difference
    return (acc & 0xFF).astype(np.uint8)


def _deinterleave(t: np.ndarray) -> bytes:
    out = np.empty_like(t)
    half = (t.size + 1) // 2
    out[0::2] = t[:half]
    out[1::2] = t[half:]
    return out.tobytes()


def _read_part(data: bytes, index: int, part: dict, table: np.ndarray, multipart: bool,
               path: Path) -> dict[str, np.ndarray]:
    width, height, ymin = part["width"], part["height"], part["ymin"]
    chans = part["channels"]
    row_bytes = [width * _PIXEL_DTYPES[p].itemsize for _, p, _, _ in chans]
    line_bytes = sum(row_bytes)
    out = {name: np.zeros((height, width), dtype=np.float32) for name, *_ in chans}
    if part["compression"] == "NONE" and _read_uncompressed(data, index, part, table, multipart, line_bytes,
                                                           row_bytes, out):
        return out
    for offset in table:
        pos = int(offset)
        if multipart:
            part_no = struct.unpack_from("<i", data, pos)[0]
            if part_no != index:
                raise ExrError(f"{path}: chunk belongs to part {part_no}, expected {index}")
            pos += 4
        y, size = struct.unpack_from("<ii", data, pos)
        pos += 8
        y0 = y - ymin
        n_lines = min(part["lines"], height - y0)
        expected = n_lines * line_bytes
        raw = data[pos:pos + size]
        # A chunk that did not compress is stored as is (same size as the raw pixels).
        block = raw if (part["compression"] == "NONE" or size == expected) else _decode_zip(raw, expected)
        # Layout per scanline: channel after channel, each a full row.
        arr = np.frombuffer(block, dtype=np.uint8).reshape(n_lines, line_bytes)
        col = 0
        for (name, ptype, _, _), nbytes in zip(chans, row_bytes, strict=True):
            values = arr[:, col:col + nbytes].copy().view(_PIXEL_DTYPES[ptype])
            out[name][y0:y0 + n_lines] = values.astype(np.float32)
            col += nbytes
    return out


def _read_uncompressed(data: bytes, index: int, part: dict, table: np.ndarray, multipart: bool, line_bytes: int,
                       row_bytes: list[int], out: dict[str, np.ndarray]) -> bool:
    """All scanlines of an uncompressed part at once, when its chunks lie back to back (as Blender writes
    them): one strided view instead of a Python loop per line (~5x faster at 768x512). False (nothing
    written) for any other layout; the chunk loop then reads it."""
    head = 12 if multipart else 8  # [part number] y, data size
    stride = head + line_bytes
    n = len(table)
    if n != part["height"] or n == 0:
        return False
    start = int(table[0])
    if np.any(np.diff(table.astype(np.int64)) != stride) or start + n * stride > len(data):
        return False
    chunks = np.frombuffer(data, dtype=np.uint8, count=n * stride, offset=start).reshape(n, stride)
    fields = np.ascontiguousarray(chunks[:, :head]).view("<i4")  # (n, 2 or 3)
    rows = fields[:, -2] - part["ymin"]
    if (multipart and np.any(fields[:, 0] != index)) or np.any(fields[:, -1] != line_bytes):
        return False
    if not np.array_equal(np.sort(rows), np.arange(n)):
        return False
    col = head
    for (name, ptype, _, _), nbytes in zip(part["channels"], row_bytes, strict=True):
        values = np.ascontiguousarray(chunks[:, col:col + nbytes]).view(_PIXEL_DTYPES[ptype])  # (n, width)
        out[name][rows] = values
        col += nbytes
    return True


def _decode_zip(raw: bytes, expected: int) -> bytes:
    t = np.frombuffer(zlib.decompress(raw), dtype=np.uint8)
    if t.size != expected:
        raise ExrError(f"corrupt EXR chunk: {t.size} bytes after decompression, expected {expected}")
    return _deinterleave(_undo_predictor(t))
