"""Reader for NumPy-shard folders (the layout of ../shared/data): MANIFEST.json + *.npz shards.

Every shard's sha256 and the shapes/dtypes the manifest declares are checked before use, and
`np.load(allow_pickle=False)` keeps a shard from executing code. Shards are concatenated in
index order; when only the first N samples are wanted, later shards are not read at all.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .registry import DatasetSpec, canonical_key

MANIFEST = "MANIFEST.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc}); restore the shard folder from its source") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise DataError(f"{path} has no 'files' list; it is not a neurohebb shard manifest, restore the folder from its source")
    return manifest


def _entries(manifest: dict, split: str, path: Path) -> list[dict]:
    """The manifest's shards for `split`, sorted and checked to tile 0..N without gaps."""
    entries = []
    for entry in manifest["files"]:
        try:
            if entry["split"] != split:
                continue
            start, stop = (int(v) for v in entry["index_range"])
            entry["file"], entry["sha256"], entry["arrays"]["x"], entry["arrays"]["y"]  # noqa: B018 - presence check
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: malformed shard entry {entry!r} ({exc}); restore the manifest from its source") from exc
        entries.append((start, stop, entry))
    entries.sort(key=lambda e: e[0])
    expected = 0
    for start, stop, entry in entries:
        if start != expected or stop <= start:
            raise DataError(
                f"{path}: {split} shards do not tile the index range (at {entry['file']}: {start}..{stop}, expected start {expected}); "
                "restore the manifest from its source"
            )
        expected = stop
    if not entries:
        raise DataError(f"{path} lists no {split} shards; restore the shard folder from its source")
    return [e[2] for e in entries]


def _load_shard(folder: Path, entry: dict, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    path = folder / entry["file"]
    if not path.is_file():
        raise DataError(f"shard {path} listed in {folder / MANIFEST} is missing; copy the complete folder again")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise DataError(
            f"shard {path} fails its checksum (sha256 {digest[:16]}..., manifest says {str(entry['sha256'])[:16]}...); "
            "it is corrupt: copy it again from the source"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read arrays x and y from shard {path} ({exc}); copy it again from the source") from exc
    n = int(entry["index_range"][1]) - int(entry["index_range"][0])
    for key, arr in (("x", x), ("y", y)):
        declared = entry["arrays"][key]
        if list(arr.shape) != list(declared.get("shape", [])) or str(arr.dtype) != declared.get("dtype"):
            raise DataError(
                f"shard {path}: array {key} is {arr.dtype} {list(arr.shape)} but the manifest declares "
                f"{declared.get('dtype')} {declared.get('shape')}; copy the folder again from the source"
            )
    if x.ndim == 3:  # MNIST-like shards are [N,H,W]
        x = x[:, None, :, :]
    if len(x) != n or len(y) != n:
        start, stop = entry["index_range"][0], entry["index_range"][1]
        raise DataError(
            f"shard {path} holds {len(x)} images and {len(y)} labels but the manifest's index_range [{start}, {stop}) "
            f"says {n}; the shard and {MANIFEST} disagree, copy the folder again from the source"
        )
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != spec.image_shape:
        raise DataError(
            f"shard {path}: images are {x.dtype} {list(x.shape)}, expected uint8 [{n},{','.join(map(str, spec.image_shape))}] "
            f"for {spec.name}; these are not {spec.name} images, point --data-dir at the {spec.name} folder"
        )
    if y.ndim != 1 or len(y) != n or y.dtype.kind not in "ui":
        raise DataError(f"shard {path}: labels are {y.dtype} {list(y.shape)}, expected {n} integers; copy it again from the source")
    return x, y.astype(np.int64)


def read_shard_folder(folder: Path, spec: DatasetSpec, limits: dict[str, int | None]) -> dict:
    """{'train': (x, y), 'test': (x, y)}; `limits[split]` = first N samples (None = all)."""
    manifest = read_manifest(folder)
    declared = manifest.get("dataset")
    if isinstance(declared, str) and canonical_key(declared) != canonical_key(spec.name):
        raise DataError(
            f"{folder / MANIFEST} describes {declared}, not {spec.name}; point --data-dir at the {spec.name} folder or its parent"
        )
    out = {}
    for split in ("train", "test"):
        limit = limits.get(split)
        xs, ys, have = [], [], 0
        for entry in _entries(manifest, split, folder / MANIFEST):
            if limit is not None and have >= limit:
                break
            x, y = _load_shard(folder, entry, spec)
            xs.append(x)
            ys.append(y)
            have += len(y)
        x, y = (xs[0], ys[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(ys))
        out[split] = (x, y)
    return out
