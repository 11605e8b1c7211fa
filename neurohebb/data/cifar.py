"""Readers for the two canonical CIFAR-10 distributions (python pickles and binary records).

Why a restricted unpickler: `pickle.load` on a downloaded file executes whatever the file
asks for. The CIFAR-10 python batches only need numpy's array reconstruction (`_reconstruct`,
`ndarray`, `dtype`); every other global is refused with a DataError before it is imported,
so a tampered archive cannot run code. The archive is read in place with `tarfile`, never
extracted, so member paths cannot escape the folder.
"""
from __future__ import annotations

import importlib
import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

PY_FOLDER = "cifar-10-batches-py"
PY_ARCHIVE = "cifar-10-python.tar.gz"
BIN_FOLDER = "cifar-10-batches-bin"
BIN_ARCHIVE = "cifar-10-binary.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
IMAGE_BYTES = 3 * 32 * 32
RECORD_BYTES = 1 + IMAGE_BYTES


def _numpy_global(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def _reconstruct():
    # numpy 2 moved numpy.core to numpy._core; numpy 1.26 has both.
    try:
        return _numpy_global("numpy._core.multiarray", "_reconstruct")
    except (ImportError, AttributeError):  # pragma: no cover - numpy < 1.26
        return _numpy_global("numpy.core.multiarray", "_reconstruct")


# The only globals the CIFAR-10 batches (pickled by Python 2 cPickle, protocol 2) reference.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    # Python 3 writes bytes at protocol 2 as _codecs.encode(str, "latin1"): a batch re-saved that
    # way is still a valid batch. Only that pure str -> bytes conversion is admitted.
    ("_codecs", "encode"): lambda: _latin1_encode,
    # protocol 5 writes arrays as numpy's _frombuffer(bytes, dtype, shape, order): a plain copy
    ("numpy.core.numeric", "_frombuffer"): lambda: _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): lambda: _frombuffer,
}


def _frombuffer(buf: object, dtype: object, shape: object, order: str) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.hasobject or not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise DataError("a pickled array holds Python objects; a CIFAR-10 batch only holds numbers")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


def _latin1_encode(text: object, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise DataError(f"a pickled bytes object uses encoding {encoding!r}; a CIFAR-10 batch only needs latin1")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    def __init__(self, file, where: str):
        super().__init__(file, encoding="bytes")
        self._where = where

    def find_class(self, module: str, name: str):
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise DataError(
                f"{self._where} asks to load {module}.{name}, which a CIFAR-10 batch never needs; refusing to unpickle it "
                "(nothing in it ran). It is not a batch as distributed: delete it and download cifar-10-python.tar.gz again"
            )
        return factory()

    def persistent_load(self, pid):
        raise DataError(f"{self._where} uses pickle persistent ids, which CIFAR-10 batches never do; refusing it")


def restricted_unpickle(data: bytes, where: str) -> object:
    """Unpickle `data` admitting only numpy array reconstruction; anything else is a DataError."""
    try:
        return _CifarUnpickler(io.BytesIO(data), where).load()
    except DataError:
        raise
    except Exception as exc:  # any malformed pickle: UnpicklingError, EOFError, ValueError, ...
        raise DataError(f"{where} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}); download it again") from exc


def parse_python_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (uint8 [n,3,32,32], int64 [n])."""
    obj = restricted_unpickle(data, where)
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict with 'data' and 'labels', found {type(obj).__name__}; download it again")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" not in entry or "labels" not in entry:
        raise DataError(f"{where}: batch has keys {sorted(map(str, entry))}, expected 'data' and 'labels'; download it again")
    x, labels = entry["data"], entry["labels"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != IMAGE_BYTES:
        desc = f"{getattr(x, 'dtype', type(x).__name__)} {list(getattr(x, 'shape', []))}"
        raise DataError(f"{where}: 'data' must be uint8 [n,{IMAGE_BYTES}], found {desc}; download it again")
    if not isinstance(labels, (list, tuple)) or not all(type(v) is int for v in labels):
        raise DataError(f"{where}: 'labels' must be a list of ints; download it again")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) != len(x):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels; download it again")
    return x.reshape(-1, 3, 32, 32), y


def parse_binary_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch (records of 1 label byte + 3072 pixel bytes) -> (uint8 [n,3,32,32], int64 [n])."""
    if len(data) == 0 or len(data) % RECORD_BYTES:
        raise DataError(
            f"{where} has {len(data)} bytes, not a whole number of {RECORD_BYTES}-byte CIFAR-10 records; "
            "it is truncated or not a CIFAR-10 binary batch, download it again"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].astype(np.int64)


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _read_archive(archive: Path, folder: str, file_names: dict[str, tuple[str, ...]], parse) -> dict:
    # One sequential pass: seeking backwards in a .tar.gz would decompress it again per member.
    wanted = {f"{folder}/{n}" for files in file_names.values() for n in files}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                if info.name in wanted and info.isfile():
                    handle = tar.extractfile(info)
                    assert handle is not None  # isfile() guarantees a file object
                    found[info.name] = handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{archive} is not a readable tar archive ({exc}); delete it and download it again") from exc
    missing = sorted(wanted - found.keys())
    if missing:
        raise DataError(f"{archive} lacks {', '.join(missing)}; the archive is incomplete, delete it and download it again")
    return {
        split: _concat([parse(found[f"{folder}/{n}"], f"{archive}:{folder}/{n}") for n in files])
        for split, files in file_names.items()
    }


def _read_folder(folder: Path, file_names: dict[str, tuple[str, ...]], parse) -> dict:
    out = {}
    for split, files in file_names.items():
        parts = []
        for n in files:
            path = folder / n
            if not path.is_file():
                raise DataError(f"{path} is missing; the CIFAR-10 folder is incomplete, download cifar-10-python.tar.gz again")
            parts.append(parse(path.read_bytes(), str(path)))
        out[split] = _concat(parts)
    return out


_PY_FILES = {"train": TRAIN_BATCHES, "test": TEST_BATCHES}
_BIN_FILES = {"train": tuple(f"{n}.bin" for n in TRAIN_BATCHES), "test": tuple(f"{n}.bin" for n in TEST_BATCHES)}


def read_python_folder(folder: Path) -> dict:
    """{'train': (x, y), 'test': (x, y)} from an extracted `cifar-10-batches-py` folder."""
    return _read_folder(folder, _PY_FILES, parse_python_batch)


def read_python_archive(archive: Path) -> dict:
    """The same, read straight from `cifar-10-python.tar.gz` without extracting it."""
    return _read_archive(archive, PY_FOLDER, _PY_FILES, parse_python_batch)


def read_binary_folder(folder: Path) -> dict:
    """{'train': (x, y), 'test': (x, y)} from an extracted `cifar-10-batches-bin` folder."""
    return _read_folder(folder, _BIN_FILES, parse_binary_batch)


def read_binary_archive(archive: Path) -> dict:
    """The same, read straight from `cifar-10-binary.tar.gz`."""
    return _read_archive(archive, BIN_FOLDER, _BIN_FILES, parse_binary_batch)
