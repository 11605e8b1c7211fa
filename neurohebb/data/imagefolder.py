"""ImageNet (ILSVRC2012) as a folder of JPEGs, read batch by batch: it never fits in memory.

Layout: `train/<wnid>/*.JPEG`; validation either `val/<wnid>/*.JPEG` or flat
`val/ILSVRC2012_val_XXXXXXXX.JPEG` with the devkit's `ILSVRC2012_validation_ground_truth.txt`
(one ILSVRC2012_ID per image, in file-number order) and `meta.mat` (which maps those IDs to
wnids), searched in the root, in `ILSVRC2012_devkit_t12/data/` and in `val/`. Classes are the
sorted wnids of `train/`, so both validation layouts give the same label numbers.

Transforms follow the authors' ImageNet preset (`6SoftHebbCnnImNet`: 160 px, random-sized crop and
horizontal flip for training). For evaluation we use the usual resize-to-182 (160 / 0.875) then
centre-crop; the authors' validation transform is not in our references, so that part is the
common convention, not a checked copy. Mean/std normalisation is omitted: every block starts
with a BatchNorm, which removes a per-channel affine map of its input.

Memory stays bounded: a torch DataLoader decodes in `workers` processes, each holding at most
`prefetch` batches, so the pipeline holds about workers x prefetch x batch images at a time.
Each image's augmentation draws from its own generator seeded by (epoch seed, index), so a run is
repeatable whatever the number of workers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError

EXTENSIONS = {".jpeg", ".jpg", ".png"}
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META = "meta.mat"
DEVKIT_DATA = Path("ILSVRC2012_devkit_t12") / "data"
EVAL_RESIZE_RATIO = 0.875


@dataclass(frozen=True)
class Split:
    paths: tuple[Path, ...]
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.paths)

    def spread(self, n: int | None) -> "Split":
        """`n` images spread evenly over the (class-sorted) list, so every class keeps some."""
        if n is None or n >= len(self.paths):
            return self
        idx = np.linspace(0, len(self.paths) - 1, n).round().astype(np.int64)
        return Split(tuple(self.paths[i] for i in idx), self.labels[idx])


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def find_root(folder: Path) -> Path | None:
    """`folder` if it holds `train/<class>/` subfolders with images."""
    dirs = _class_dirs(folder / "train")
    return folder if dirs and any(_images(d) for d in dirs[:5]) else None


def _scan_classes(folder: Path, classes: list[str]) -> Split:
    index = {c: i for i, c in enumerate(classes)}
    paths, labels = [], []
    for d in _class_dirs(folder):
        if d.name not in index:
            raise DataError(f"{d} is not one of the {len(classes)} classes of train/; remove it or fix the folder name")
        files = _images(d)
        paths += files
        labels += [index[d.name]] * len(files)
    return Split(tuple(paths), np.asarray(labels, dtype=np.int64))


def _find_devkit_file(root: Path, name: str) -> Path | None:
    for folder in (root, root / DEVKIT_DATA, root / "val"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_meta_wnids(path: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid for the leaf synsets in the devkit's meta.mat (a MATLAB file, no pickle)."""
    from scipy.io import loadmat

    try:
        synsets = loadmat(str(path), squeeze_me=True)["synsets"]
        return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in np.atleast_1d(synsets) if int(s["num_children"]) == 0}
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise DataError(f"{path} is not the ILSVRC2012 devkit's meta.mat ({exc}); extract it again from ILSVRC2012_devkit_t12.tar.gz") from None


def _scan_flat_val(root: Path, val: Path, classes: list[str]) -> Split:
    truth, meta = _find_devkit_file(root, GROUND_TRUTH), _find_devkit_file(root, META)
    if truth is None or meta is None:
        raise DataError(
            f"{val} holds images without class folders; put the devkit's {GROUND_TRUTH} and {META} in {root} "
            f"or {root / DEVKIT_DATA} (from ILSVRC2012_devkit_t12.tar.gz), or sort val/ into class folders"
        )
    ids = [int(line) for line in truth.read_text(encoding="ascii").split()]
    wnids = read_meta_wnids(meta)
    index = {c: i for i, c in enumerate(classes)}
    files = _images(val)
    if len(files) != len(ids):
        raise DataError(f"{val} has {len(files)} images but {truth} has {len(ids)} labels; the folder is incomplete, extract the validation archive again")
    try:
        labels = [index[wnids[i]] for i in ids]
    except KeyError as exc:
        raise DataError(f"{truth}: label {exc} has no class folder in train/ (via {meta}); use the devkit that matches this ImageNet copy") from None
    return Split(tuple(files), np.asarray(labels, dtype=np.int64))


@dataclass(frozen=True)
class ImageFolderDataset:
    """A dataset read from disk batch by batch (`streaming`), with the `Dataset` record's names."""

    name: str
    classes: tuple[str, ...]
    train: Split
    test: Split
    image_size: int
    source: str
    streaming = True

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return 3, self.image_size, self.image_size

    def subset(self, train: int | None, test: int | None) -> "ImageFolderDataset":
        return replace(self, train=self.train.spread(train), test=self.test.spread(test))

    def summary(self) -> str:
        return (f"{self.name}: {len(self.train)} train / {len(self.test)} test images (read from disk at "
                f"{self.image_size}x{self.image_size}), {self.num_classes} classes, from {self.source}")

    def batches(self, split: str, batch_size: int, *, augment: bool, seed: int, order: np.ndarray | None = None,
                workers: int = 0, prefetch: int = 2) -> Iterator[tuple["torch.Tensor", "torch.Tensor"]]:  # noqa: F821
        """(uint8 [B,3,S,S], int64 [B]) batches over `order` (indices into the split; default all, in order)."""
        import torch
        from torch.utils.data import DataLoader

        data = _Decoded(getattr(self, split), self.image_size, augment, seed)
        indices = np.arange(len(data)) if order is None else np.asarray(order)
        kwargs = {"num_workers": workers}
        if workers > 0:
            kwargs["prefetch_factor"] = prefetch
        loader = DataLoader(data, batch_size=batch_size, sampler=indices.tolist(), collate_fn=_collate, **kwargs)
        return _one_line_errors(loader) if len(indices) else iter(())


def _one_line_errors(loader) -> Iterator:
    """Re-raise a worker's DataError as its own one-line message (the DataLoader wraps it in the
    worker's traceback)."""
    try:
        yield from loader
    except DataError as exc:
        last = str(exc).strip().splitlines()[-1]
        raise DataError(last.split("DataError: ", 1)[-1]) from None


def open_imagenet(root: Path, spec) -> ImageFolderDataset:
    """Scan `root` (train/ and val/) into an ImageFolderDataset; images are read later."""
    classes = [d.name for d in _class_dirs(root / "train")]
    if len(classes) > spec.num_classes:
        raise DataError(f"{root / 'train'} has {len(classes)} class folders, more than ImageNet's {spec.num_classes}; point --data-dir at the ILSVRC2012 folder")
    train = _scan_classes(root / "train", classes)
    val = root / "val"
    if not val.is_dir():
        raise DataError(f"{root} has train/ but no val/; extract ILSVRC2012_img_val.tar into {val}")
    test = _scan_classes(val, classes) if _class_dirs(val) else _scan_flat_val(root, val, classes)
    if not len(test):
        raise DataError(f"{val} holds no images; extract ILSVRC2012_img_val.tar into it")
    return ImageFolderDataset(spec.name, tuple(classes), train, test, spec.image_shape[1], str(root))


# ----------------------------------------------------------------------------------------------
# Decoding and transforms (run inside the DataLoader's worker processes)


class _Decoded:
    """Map-style dataset: index -> (uint8 [3,S,S] array, label)."""

    def __init__(self, split: Split, size: int, augment: bool, seed: int):
        self.split, self.size, self.augment, self.seed = split, size, augment, int(seed)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        from PIL import Image, UnidentifiedImageError

        path = self.split.paths[i]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot decode {path} ({exc}); delete or replace the file") from None
        if self.augment:
            rng = np.random.default_rng([self.seed, i])
            img = random_resized_crop(img, self.size, rng)
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = resize_center_crop(img, self.size)
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy(), int(self.split.labels[i])


def _collate(items):
    import torch

    x = torch.from_numpy(np.stack([a for a, _ in items]))
    return x, torch.tensor([label for _, label in items], dtype=torch.int64)


def random_resized_crop(img, size: int, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """A random box of `scale` x area and log-uniform aspect `ratio`, resized to size x size.

    The standard Inception-style crop (up to 10 tries, then the largest centred box of an
    allowed aspect), which is what "RandomSizedCrop" names in the authors' preset.
    """
    from PIL import Image

    w, h = img.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
    aspect = w / h
    if aspect < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif aspect > ratio[1]:
        cw, ch = round(h * ratio[1]), h
    else:
        cw, ch = w, h
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))


def resize_center_crop(img, size: int):
    """Shorter side to size / 0.875, then the centred size x size crop."""
    from PIL import Image

    w, h = img.size
    short = round(size / EVAL_RESIZE_RATIO)
    nw, nh = (short, max(short, round(h * short / w))) if w <= h else (max(short, round(w * short / h)), short)
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))
