"""`load_dataset`: find a dataset on disk in any supported format and return a checked `Dataset`.

Formats, tried in this order in the dataset's folder: NumPy shards with MANIFEST.json (the
layout of ../shared/data), canonical IDX files (MNIST, Fashion-MNIST; gzip or raw), and the
CIFAR-10 python or binary distributions (extracted folder or the .tar.gz read in place).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from . import cifar, imagefolder, stl10
from .dataset import Dataset
from .idx import read_idx_images, read_idx_labels
from .paths import download_root, search_roots
from .registry import DatasetSpec, canonical_key, get_spec
from .shards import MANIFEST, read_shard_folder

IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_file(folder: Path, stem: str) -> Path | None:
    # Canonical names, with or without .gz; some copies use '.' before "idx".
    for name in (stem, f"{stem}.gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_folder(folder: Path) -> Path | None:
    """The folder holding the IDX files: `folder` itself or torchvision's `raw/` beneath it."""
    for candidate in (folder, folder / "raw"):
        if _idx_file(candidate, IDX_STEMS["train"][0]) is not None:
            return candidate
    return None


def _read_idx_folder(folder: Path, spec: DatasetSpec) -> dict:
    _, h, w = spec.image_shape
    out = {}
    for split, (images, labels) in IDX_STEMS.items():
        paths = [_idx_file(folder, images), _idx_file(folder, labels)]
        missing = [s for s, p in zip((images, labels), paths) if p is None]
        if missing:
            raise DataError(
                f"{folder} has some {spec.name} IDX files but not {', '.join(missing)}[.gz]; "
                f"run `neurohebb download {spec.name} --dir {folder}` to complete it"
            )
        x, y = read_idx_images(paths[0], h, w), read_idx_labels(paths[1])
        if len(x) != len(y):
            raise DataError(f"{paths[0]} has {len(x)} images but {paths[1]} has {len(y)} labels; download both again")
        out[split] = (x, y)
    return out


def _detect(folder: Path, spec: DatasetSpec):
    """(reader, source) for the first format found in `folder`, or None."""
    if (folder / MANIFEST).is_file():
        return (lambda limits: read_shard_folder(folder, spec, limits)), folder
    if spec.name in ("mnist", "fashion_mnist"):
        idx = _idx_folder(folder)
        if idx is not None:
            return (lambda limits: _read_idx_folder(idx, spec)), idx
    if spec.name == "stl10":
        found = stl10.find_folder(folder)
        if found is not None:
            return (lambda limits: stl10.read_folder(found, limits)), found
    if spec.name == "imagenet":
        found = imagefolder.find_root(folder)
        if found is not None:
            return (lambda limits: imagefolder.open_imagenet(found, spec)), found
    if spec.name == "cifar10":
        options = (
            (folder / cifar.PY_FOLDER, cifar.read_python_folder, Path.is_dir),
            (folder, cifar.read_python_folder, lambda p: (p / "data_batch_1").is_file()),
            (folder / cifar.PY_ARCHIVE, cifar.read_python_archive, Path.is_file),
            (folder / cifar.BIN_FOLDER, cifar.read_binary_folder, Path.is_dir),
            (folder, cifar.read_binary_folder, lambda p: (p / "data_batch_1.bin").is_file()),
            (folder / cifar.BIN_ARCHIVE, cifar.read_binary_archive, Path.is_file),
        )
        for path, reader, present in options:
            if present(path):
                return (lambda limits, path=path, reader=reader: reader(path)), path
    return None


def _candidates(root: Path, spec: DatasetSpec) -> list[Path]:
    """`root` may be the dataset's own folder or a parent holding `<name>/`."""
    return [root / f for f in spec.folders] + [root]


def download_folder(root: Path, spec: DatasetSpec) -> Path:
    """Where a download of `spec` into `root` goes: `root` itself if it is named like the dataset."""
    root = Path(root).expanduser()
    if canonical_key(root.name) in {canonical_key(f) for f in spec.folders}:
        return root
    return root / spec.folders[0]


def _expected_files(spec: DatasetSpec) -> str:
    return spec.expected


def _check_subset(value, split: str, available: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{split}_subset must be a positive integer (first N samples) or None, got {value!r}")
    if value > available:
        raise DataError(f"{split}_subset={value} exceeds the {available} {split} samples available; use at most {available}")
    return int(value)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    train_subset: int | None = None,
    test_subset: int | None = None,
    progress: bool = True,
) -> Dataset:
    """Load `name` ('digits', 'mnist', 'fashion_mnist' / 'fashion-mnist', 'cifar10').

    `data_dir` is the dataset's folder or a parent holding `<name>/`; None searches
    $NEUROHEBB_DATA_DIR, else ../shared/data and ~/.cache/neurohebb ('digits' needs no files).
    With `download=True` missing files are fetched into that folder (or the cache).
    `train_subset` / `test_subset` keep the first N samples.
    """
    spec = get_spec(name)
    for value, split in ((train_subset, "train"), (test_subset, "test")):
        _check_subset(value, split, np.iinfo(np.int64).max)
    if spec.name == "digits":
        from .digits import load_digits_arrays

        arrays, source = load_digits_arrays(), "scikit-learn load_digits (bundled)"
    else:
        roots = [Path(data_dir).expanduser()] if data_dir is not None else search_roots()
        found = None
        searched: list[Path] = []
        for root in roots:
            for folder in _candidates(root, spec):
                searched.append(folder)
                if folder.is_dir() and (found := _detect(folder, spec)) is not None:
                    break
            if found is not None:
                break
        if found is None and download:
            from .download import download_dataset

            target = download_folder(roots[0] if data_dir is not None else download_root(), spec)
            download_dataset(spec.name, target, progress=progress)
            found = _detect(target, spec)
        if found is None and spec.source is None:
            raise DataError(f"{spec.name} not found (searched {', '.join(map(str, searched))} for {spec.expected}); pass --data-dir DIR")
        if found is None:
            fix = f"neurohebb download {spec.name}" + (f" --dir {roots[0]}" if data_dir is not None else "")
            raise DataError(
                f"{spec.name} not found (searched {', '.join(map(str, searched))} for {_expected_files(spec)}); "
                f"run `{fix}` or pass --data-dir DIR"
            )
        reader, source = found
        arrays = reader({"train": train_subset, "test": test_subset})
        if spec.streaming:  # read batch by batch later; subsets apply to its file lists
            return arrays.subset(train_subset, test_subset)
    picked = {}
    for split, limit in (("train", train_subset), ("test", test_subset)):
        x, y = arrays[split]
        n = _check_subset(limit, split, len(y))
        picked[split] = (x, y) if n is None or n == len(y) else (x[:n].copy(), y[:n].copy())
    return Dataset(
        name=spec.name,
        x_train=picked["train"][0],
        y_train=picked["train"][1],
        x_test=picked["test"][0],
        y_test=picked["test"][1],
        num_classes=spec.num_classes,
        source=str(source),
        x_unlabeled=arrays.get("unlabeled"),
    )
