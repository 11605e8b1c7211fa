"""Reader for the canonical STL-10 binary files (`stl10_binary/*.bin`).

Format (Coates, Lee, Ng, AISTATS 2011; the dataset's README): `*_X.bin` is raw uint8, 3x96x96 per
image, each channel stored column-major, so after reshaping to [N,3,96,96] the last two axes are
(width, height) and must be swapped; `*_y.bin` is one uint8 label per image, 1..10.
`unlabeled_X.bin` (100,000 images, 2.7 GB) is memory-mapped rather than read, so loading STL-10
costs only the labelled 13,000 images in memory; batches are gathered from the map on demand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

FOLDER = "stl10_binary"
SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE
SPLITS = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin")}
UNLABELED = "unlabeled_X.bin"


def find_folder(folder: Path) -> Path | None:
    """`folder/stl10_binary` or `folder` itself, whichever holds train_X.bin."""
    for candidate in (folder / FOLDER, folder):
        if (candidate / SPLITS["train"][0]).is_file():
            return candidate
    return None


def _count(path: Path) -> int:
    size = path.stat().st_size
    if size % IMAGE_BYTES:
        raise DataError(f"{path} is {size} bytes, not a whole number of 3x96x96 images; it is truncated, download STL-10 again")
    return size // IMAGE_BYTES


def column_major_to_chw(flat: np.ndarray) -> np.ndarray:
    """[N * 3*96*96] bytes as stored -> [N,3,H,W] view (no copy): swap the stored (W, H) axes."""
    return flat.reshape(-1, 3, SIDE, SIDE).transpose(0, 1, 3, 2)


def read_images(path: Path, limit: int | None = None, mmap: bool = False) -> np.ndarray:
    """uint8 [N,3,96,96]; `mmap=True` maps the file read-only (a strided view, not a copy)."""
    n = _count(path)
    n = n if limit is None else min(n, limit)
    if mmap and n:
        flat = np.memmap(path, dtype=np.uint8, mode="r", shape=(n * IMAGE_BYTES,))
        return column_major_to_chw(flat)
    flat = np.fromfile(path, dtype=np.uint8, count=n * IMAGE_BYTES)
    return np.ascontiguousarray(column_major_to_chw(flat))


def read_labels(path: Path, limit: int | None = None) -> np.ndarray:
    """int64 labels 0..9 from the stored 1..10."""
    raw = np.fromfile(path, dtype=np.uint8, count=-1 if limit is None else limit)
    if raw.size and (int(raw.min()) < 1 or int(raw.max()) > 10):
        raise DataError(f"{path}: labels span {int(raw.min())}..{int(raw.max())}, expected 1..10; the file is corrupt, download STL-10 again")
    return raw.astype(np.int64) - 1


def read_folder(folder: Path, limits: dict[str, int | None] | None = None) -> dict:
    """{"train": (x, y), "test": (x, y), "unlabeled": x or None} from an stl10_binary folder."""
    limits = limits or {}
    out: dict = {}
    for split, (xname, yname) in SPLITS.items():
        xp, yp = folder / xname, folder / yname
        missing = [p.name for p in (xp, yp) if not p.is_file()]
        if missing:
            raise DataError(f"{folder} lacks {', '.join(missing)}; run `neurohebb download stl10 --dir {folder.parent}` to complete it")
        x, y = read_images(xp, limits.get(split)), read_labels(yp, limits.get(split))
        if len(x) != len(y):
            raise DataError(f"{xp} has {len(x)} images but {yp} has {len(y)} labels; download STL-10 again")
        out[split] = (x, y)
    unlabeled = folder / UNLABELED
    out["unlabeled"] = read_images(unlabeled, mmap=True) if unlabeled.is_file() else None
    return out
