"""EXR reader on files written here byte by byte (OpenEXR layout), every supported variant.

(tests/blender/test_depth_mask.py reads EXR files written by Blender itself.)
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from blender_addon.core.exr import ExrError, read_exr

_CODEC_ID = {"NONE": 0, "ZIPS": 2, "ZIP": 3, "PIZ": 4}
_LINES = {"NONE": 1, "ZIPS": 1, "ZIP": 16, "PIZ": 32}
_TYPE = {np.dtype("<f2"): 1, np.dtype("<f4"): 2}


def _attr(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _zip(raw: bytes) -> bytes:
    """The EXR ZIP encoder: split even/odd bytes, delta predictor (+128), zlib."""
    b = np.frombuffer(raw, dtype=np.uint8)
    t = np.concatenate([b[0::2], b[1::2]]).astype(np.int64)
    d = t.copy()
    d[1:] = (t[1:] - t[:-1] + 128) & 0xFF
    return zlib.compress(d.astype(np.uint8).tobytes())


def _header(channels: dict, codec: str, width: int, height: int, y0: int, part_name: str | None) -> bytes:
    chlist = b"".join(n.encode() + b"\0" + struct.pack("<iB3xii", _TYPE[a.dtype], 0, 1, 1)
                      for n, a in sorted(channels.items())) + b"\0"
    window = struct.pack("<4i", 0, y0, width - 1, y0 + height - 1)
    h = _attr("channels", "chlist", chlist) + _attr("compression", "compression", bytes([_CODEC_ID[codec]]))
    h += _attr("dataWindow", "box2i", window) + _attr("displayWindow", "box2i", window)
    h += _attr("lineOrder", "lineOrder", b"\0")
    if part_name is not None:
        n_chunks = -(-height // _LINES[codec])
        h += _attr("name", "string", part_name.encode()) + _attr("type", "string", b"scanlineimage")
        h += _attr("chunkCount", "int", struct.pack("<i", n_chunks))
    return h + b"\0"


def _chunks(channels: dict, codec: str, height: int, y0: int) -> list[tuple[int, bytes]]:
    out = []
    names = sorted(channels)
    for start in range(0, height, _LINES[codec]):
        rows = range(start, min(height, start + _LINES[codec]))
        raw = b"".join(channels[n][r].tobytes() for r in rows for n in names)
        data = raw if codec == "NONE" else _zip(raw)
        out.append((y0 + start, data))
    return out


def write_exr(path, parts: list[dict], codec: str = "ZIP", y0: int = 0) -> None:
    """parts: one {channel: (H, W) array} per part; more than one part -> a multi-part file."""
    multipart = len(parts) > 1
    version = 2 | (0x1000 if multipart else 0)
    head = struct.pack("<iI", 20000630, version)
    shapes = [next(iter(p.values())).shape for p in parts]
    for i, (p, (h, w)) in enumerate(zip(parts, shapes, strict=True)):
        head += _header(p, codec, w, h, y0, f"part{i}" if multipart else None)
    if multipart:
        head += b"\0"
    all_chunks = [_chunks(p, codec, h, y0) for p, (h, _) in zip(parts, shapes, strict=True)]
    pos = len(head) + 8 * sum(len(c) for c in all_chunks)
    table, body = b"", b""
    for index, chunks in enumerate(all_chunks):
        for y, data in chunks:
            block = (struct.pack("<i", index) if multipart else b"") + struct.pack("<ii", y, len(data)) + data
            table += struct.pack("<Q", pos + len(body))
            body += block
    path.write_bytes(head + table + body)


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.1, 50.0, size=(37, 23)).astype("<f4")  # 37 rows: not a multiple of 16
    depth[0, 0] = 1e10
    index = (rng.random((37, 23)) > 0.5).astype("<f2")
    return depth, index


@pytest.mark.parametrize("codec", ["NONE", "ZIPS", "ZIP"])
def test_single_part_round_trip_is_exact(tmp_path, image, codec):
    depth, index = image
    write_exr(tmp_path / "a.exr", [{"ViewLayer.Depth.Z": depth, "ViewLayer.Object Index.X": index}], codec)
    got = read_exr(tmp_path / "a.exr")
    assert sorted(got) == ["ViewLayer.Depth.Z", "ViewLayer.Object Index.X"]
    assert got["ViewLayer.Depth.Z"].dtype == np.float32
    np.testing.assert_array_equal(got["ViewLayer.Depth.Z"], depth)  # top row first, bit exact
    np.testing.assert_array_equal(got["ViewLayer.Object Index.X"], index.astype(np.float32))


@pytest.mark.parametrize("codec", ["ZIP", "NONE"])  # NONE: what gather/ asks Blender for (scratch files)
def test_multi_part_with_offset_data_window(tmp_path, image, codec):
    depth, index = image
    parts = [{"ViewLayer.Combined.R": depth * 2}, {"ViewLayer.Depth.Z": depth},
             {"ViewLayer.Object Index.X": index}]
    write_exr(tmp_path / "m.exr", parts, codec, y0=-5)
    got = read_exr(tmp_path / "m.exr")
    assert len(got) == 3
    np.testing.assert_array_equal(got["ViewLayer.Depth.Z"], depth)
    np.testing.assert_array_equal(got["ViewLayer.Combined.R"], depth * 2)
    np.testing.assert_array_equal(got["ViewLayer.Object Index.X"], index.astype(np.float32))


def test_uncompressible_zip_chunk_stored_raw_is_read(tmp_path):
    # OpenEXR stores a chunk raw when compressing would make it larger; fake that case.
    depth = np.arange(6, dtype="<f4").reshape(2, 3)
    write_exr(tmp_path / "raw.exr", [{"Z": depth}], "NONE")
    data = bytearray((tmp_path / "raw.exr").read_bytes())
    comp = data.index(b"compression\0compression\0") + len("compression\0compression\0") + 4
    data[comp] = _CODEC_ID["ZIPS"]
    (tmp_path / "raw.exr").write_bytes(bytes(data))
    np.testing.assert_array_equal(read_exr(tmp_path / "raw.exr")["Z"], depth)


def test_unsupported_codec_names_it_and_the_blender_setting(tmp_path, image):
    write_exr(tmp_path / "p.exr", [{"Z": image[0]}], "NONE")
    data = bytearray((tmp_path / "p.exr").read_bytes())
    comp = data.index(b"compression\0compression\0") + len("compression\0compression\0") + 4
    data[comp] = _CODEC_ID["PIZ"]
    (tmp_path / "p.exr").write_bytes(bytes(data))
    with pytest.raises(ExrError, match=r"PIZ.*exr_codec.*ZIP"):
        read_exr(tmp_path / "p.exr")


def test_not_an_exr(tmp_path):
    (tmp_path / "x.exr").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ExrError, match="not an OpenEXR"):
        read_exr(tmp_path / "x.exr")


def _table(path, parts: list[dict], codec: str, y0: int) -> tuple[bytearray, int, np.ndarray]:
    """(file bytes, where the offset table starts, the table) of a file written by write_exr."""
    multipart = len(parts) > 1
    head = struct.pack("<iI", 20000630, 2 | (0x1000 if multipart else 0))
    for i, p in enumerate(parts):
        h, w = next(iter(p.values())).shape
        head += _header(p, codec, w, h, y0, f"part{i}" if multipart else None)
    head += b"\0" if multipart else b""
    data = bytearray(path.read_bytes())
    n = sum(-(-next(iter(p.values())).shape[0] // _LINES[codec]) for p in parts)
    return data, len(head), np.frombuffer(bytes(data[len(head):len(head) + 8 * n]), dtype="<u8").copy()


def test_uncompressed_lines_stored_bottom_up_land_in_their_rows(tmp_path, image):
    """The back-to-back fast path places each line by its y, whatever the chunk order (lineOrder)."""
    depth, index = image
    parts = [{"Z": depth}, {"I": index}]
    write_exr(tmp_path / "n.exr", parts, "NONE", y0=3)
    data, _, table = _table(tmp_path / "n.exr", parts, "NONE", 3)
    start, stride = int(table[0]), int(table[1] - table[0])
    lines = [bytes(data[start + i * stride:start + (i + 1) * stride]) for i in range(37)]  # part 0's chunks
    data[start:start + 37 * stride] = b"".join(reversed(lines))  # same sizes: offsets stay back to back
    (tmp_path / "r.exr").write_bytes(bytes(data))
    assert (tmp_path / "r.exr").read_bytes() != (tmp_path / "n.exr").read_bytes()
    got = read_exr(tmp_path / "r.exr")
    np.testing.assert_array_equal(got["Z"], depth)
    np.testing.assert_array_equal(got["I"], index.astype(np.float32))


def test_uncompressed_chunks_with_gaps_between_them_are_read_by_the_chunk_loop(tmp_path, image):
    depth, _ = image
    write_exr(tmp_path / "g.exr", [{"Z": depth}], "NONE")
    data, at, table = _table(tmp_path / "g.exr", [{"Z": depth}], "NONE", 0)
    start, stride = int(table[0]), int(table[1] - table[0])
    chunks = [bytes(data[start + i * stride:start + (i + 1) * stride]) for i in range(37)]
    gapped = b"".join(c + b"\xee" * 5 for c in chunks)  # 5 stray bytes after every chunk
    new_table = np.array([start + i * (stride + 5) for i in range(37)], dtype="<u8").tobytes()
    out = bytes(data[:at]) + new_table + gapped
    (tmp_path / "gap.exr").write_bytes(out)
    np.testing.assert_array_equal(read_exr(tmp_path / "gap.exr")["Z"], depth)
