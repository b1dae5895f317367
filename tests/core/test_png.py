"""PNG encoder/decoder: round trips, Pillow cross-checks (both directions), clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from blender_addon.core.png import PngError, decode_png, encode_png, png_size, read_png, write_png


@pytest.fixture
def rgb():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (41, 67, 3), dtype=np.uint8)
    img[:10] = 7  # flat rows and a gradient exercise the None/Sub/Up filter choice
    img[10:20] = np.arange(67, dtype=np.uint8)[None, :, None] * 3
    return img


def test_rgb_round_trip_is_byte_equal(rgb):
    assert np.array_equal(decode_png(encode_png(rgb)), rgb)


def test_grey_and_bool_mask_round_trip():
    grey = np.arange(30 * 20, dtype=np.uint32).reshape(30, 20).astype(np.uint8)
    assert np.array_equal(decode_png(encode_png(grey)), grey)
    mask = np.zeros((9, 13), dtype=bool)
    mask[2:5, 3:11] = True
    decoded = decode_png(encode_png(mask))
    assert decoded.dtype == np.uint8 and decoded.shape == (9, 13)
    assert set(np.unique(decoded)) == {0, 255}
    assert np.array_equal(decoded == 255, mask)


def test_pillow_decodes_our_png(rgb):
    with Image.open(io.BytesIO(encode_png(rgb))) as im:
        assert im.mode == "RGB" and im.size == (67, 41)
        assert np.array_equal(np.asarray(im), rgb)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_we_decode_pillow_png_with_all_filters(rgb, mode):
    # Pillow's adaptive filtering uses Average and Paeth rows too, which our encoder never writes.
    source = Image.fromarray(rgb).convert(mode)
    buf = io.BytesIO()
    source.save(buf, format="PNG", optimize=True)
    assert np.array_equal(decode_png(buf.getvalue()), np.asarray(source))


def test_write_png_is_atomic_and_header_size(tmp_path, rgb):
    path = write_png(tmp_path / "sub" / "000001.png", rgb)
    assert [p.name for p in path.parent.iterdir()] == ["000001.png"]  # no temp file left behind
    assert png_size(path) == (67, 41, 3)
    assert np.array_equal(read_png(path), rgb)


def test_compression_of_a_flat_canvas_is_small():
    canvas = np.zeros((512, 768, 3), dtype=np.uint8)
    canvas[100:400, 200:300] = 128
    assert len(encode_png(canvas)) < 3000


def test_errors_say_what_is_wrong(tmp_path, rgb):
    with pytest.raises(PngError, match="uint8"):
        encode_png(rgb.astype(np.float32))
    with pytest.raises(PngError, match="signature"):
        decode_png(b"GIF89a" + bytes(20))
    data = encode_png(rgb)
    with pytest.raises(PngError, match="truncated|not written completely"):
        decode_png(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[40] ^= 0xFF
    with pytest.raises(PngError, match="checksum"):
        decode_png(bytes(corrupt))
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("P").save(buf, format="PNG")
    with pytest.raises(PngError, match="palette"):
        decode_png(buf.getvalue())
    bad = tmp_path / "bad.png"
    bad.write_bytes(data[:60])
    with pytest.raises(PngError, match="bad.png"):
        read_png(bad)


def test_sixteen_bit_png_is_refused_with_advice():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint16) + 1000).save(buf, format="PNG")
    with pytest.raises(PngError, match="8-bit"):
        decode_png(buf.getvalue())
