"""IDX, the file format of MNIST: a big-endian header, then raw unsigned bytes.

Parsing validates everything a damaged or wrong file could get wrong (magic number,
dimension count, sizes against the byte count) and returns ``uint8`` arrays, so no
later step ever trains on garbage.
"""

from __future__ import annotations

import gzip
import zlib
import struct
from pathlib import Path

import numpy as np

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


class IdxError(ValueError):
    """The bytes are not a valid IDX file of the expected kind."""


def decompress_if_gzipped(data: bytes, name: str = "data") -> bytes:
    """Return the IDX bytes whether ``data`` is gzipped or raw."""
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise IdxError(f"{name}: the gzip stream is truncated or corrupt ({exc}); fetch the file again") from exc


def parse_idx(data: bytes, name: str = "data", expect_ndim: int | None = None) -> np.ndarray:
    """Parse raw IDX bytes into a read-only ``uint8`` array of the declared shape."""
    if len(data) < 4:
        raise IdxError(f"{name}: {len(data)} bytes is too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != UBYTE or ndim == 0:
        raise IdxError(
            f"{name}: wrong magic number 0x{int.from_bytes(data[:4], 'big'):08x} "
            "(expected 0x00000801 for labels or 0x00000803 for images); this is not an MNIST IDX file"
        )
    if expect_ndim is not None and ndim != expect_ndim:
        raise IdxError(f"{name}: {ndim} dimensions where {expect_ndim} were expected")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{name}: the header declares {ndim} dimensions but the file ends at byte {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise IdxError(
            f"{name}: the header declares shape {shape} ({expected} bytes) but the file has {len(data)} bytes"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    return array


def read_idx(path: str | Path, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file from disk, gzipped or raw."""
    path = Path(path)
    data = decompress_if_gzipped(path.read_bytes(), path.name)
    return parse_idx(data, path.name, expect_ndim=expect_ndim)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a ``uint8`` array as IDX bytes (the inverse of :func:`parse_idx`)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()
