"""Hostile inputs shared by the robustness tests: PNG bombs, and what a deliberate refusal looks like."""

from __future__ import annotations

import re
import struct
import zlib
from functools import lru_cache

import grpc

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every status the server answers on purpose; UNKNOWN (an escaped exception) and INTERNAL are never expected.
DELIBERATE = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "ALREADY_EXISTS", "NOT_FOUND",
              "OUT_OF_RANGE", "UNAVAILABLE", "UNAUTHENTICATED"}
# What Python exception text looks like (grpc's "Unexpected <class ...>", tracebacks, errno reprs).
PYTHON_TEXT = re.compile(r"Traceback|<class |Errno \d+|Error: |Exception|File \"")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_ihdr(width: int, height: int) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))  # 8-bit RGB


def header_only_png(width: int, height: int) -> bytes:
    """57 bytes: signature, IHDR declaring width x height, an empty IDAT, IEND."""
    return PNG_SIGNATURE + png_ihdr(width, height) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")


@lru_cache(maxsize=4)
def bomb_png(width: int, height: int) -> bytes:
    """A real, complete PNG of width x height black pixels: tiny on the wire (zeros compress ~1000:1),
    width * height * 3 bytes once decoded. Built row by row so the test never holds the pixels."""
    z = zlib.compressobj(9)
    row = b"\0" * (width * 3 + 1)  # filter byte + RGB
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return PNG_SIGNATURE + png_ihdr(width, height) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def garbage_idat_png(width: int, height: int) -> bytes:
    """A PNG whose every chunk has a valid CRC but whose IDAT is not zlib data: passes `verify()`,
    fails only when its pixels are decoded."""
    return (PNG_SIGNATURE + png_ihdr(width, height) + png_chunk(b"IDAT", b"\x13\x37 not zlib " * 40)
            + png_chunk(b"IEND", b""))


def assert_deliberate(err: grpc.RpcError) -> tuple[str, str]:
    """A refusal must carry one of the deliberate codes and a short message free of Python internals."""
    code, details = err.code().name, err.details() or ""
    assert code in DELIBERATE, (code, details[:500])
    assert not PYTHON_TEXT.search(details), details[:500]
    assert len(details) < 2000, len(details)
    return code, details
