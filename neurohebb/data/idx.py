"""Reader for the IDX format of the original MNIST / Fashion-MNIST distributions.

The header is parsed here rather than trusted: magic bytes 0,0, a dtype code, the number of
dimensions, then one big-endian uint32 per dimension; the payload must hold exactly
prod(dims) items. A truncated download or a file of the wrong kind is a DataError naming it.
Files may be gzip-compressed (detected by content, not by name).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# IDX dtype codes (LeCun's format description); multi-byte types are big-endian.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions") from exc
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is a damaged gzip file ({exc}); delete it and download it again") from exc


def parse_idx(data: bytes, where: str) -> np.ndarray:
    """Decode one IDX payload; `where` names the file in error messages."""
    if len(data) < 4:
        raise DataError(f"{where} is too short to be an IDX file ({len(data)} bytes); delete it and download it again")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(
            f"{where} is not an IDX file (magic bytes {data[:4].hex()}, expected 0000 + dtype code + ndim); "
            "it may be an HTML error page or another format: delete it and download it again"
        )
    dtype = IDX_DTYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{where}: IDX header declares {ndim} dimensions but the file ends after {len(data)} bytes; download it again")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{where} is {state}: header {dims} needs {expected} data bytes, found {actual}; delete it and download it again"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a numpy array in native byte order."""
    arr = parse_idx(read_bytes(path), str(path))
    return arr.astype(arr.dtype.newbyteorder("="), copy=True)


def read_idx_images(path: Path, height: int, width: int) -> np.ndarray:
    """uint8 images [N,1,H,W] from an idx3-ubyte file, checking the image size."""
    arr = read_idx(path)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != (height, width):
        raise DataError(
            f"{path}: expected uint8 images [N,{height},{width}], found {arr.dtype} {list(arr.shape)}; "
            "this is not the right image file, download it again"
        )
    return arr[:, None, :, :]


def read_idx_labels(path: Path) -> np.ndarray:
    """int64 labels [N] from an idx1-ubyte file."""
    arr = read_idx(path)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise DataError(
            f"{path}: expected uint8 labels [N], found {arr.dtype} {list(arr.shape)}; this is not a label file, download it again"
        )
    return arr.astype(np.int64)
