"""The `Dataset` record every loader returns, and the conversion to the models' input scale.

Why one validated record: the engine, the chip reports and the backends all assume uint8
images [N,C,H,W] and int64 labels [N]; checking that once, where the files are read, turns a
malformed download into a message naming the file instead of a shape error deep in training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test images (uint8 [N,C,H,W], 0..255) with int64 labels in [0, num_classes).

    `source` says where the arrays were read from (a folder, archive or "scikit-learn"), so a
    run's metrics can record it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10
    source: str = ""
    x_unlabeled: np.ndarray | None = None  # extra images without labels (STL-10), possibly memory-mapped

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            check_split(x, y, self.num_classes, f"{self.name} {split} split from {self.source or '<memory>'}")
        u = self.x_unlabeled
        if u is not None and (not isinstance(u, np.ndarray) or u.dtype != np.uint8 or u.shape[1:] != self.x_train.shape[1:]):
            raise DataError(
                f"{self.name} from {self.source}: unlabelled images are {getattr(u, 'dtype', type(u).__name__)} "
                f"{getattr(u, 'shape', '')}, expected uint8 [N,{','.join(map(str, self.x_train.shape[1:]))}]; re-download them"
            )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"{self.name} from {self.source}: train images are {self.x_train.shape[1:]} but test images are "
                f"{self.x_test.shape[1:]}; the files come from different datasets, re-download them"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image: what the network's first layer sees."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def summary(self) -> str:
        c, h, w = self.input_shape
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test images {c}x{h}x{w}, "
            f"{self.num_classes} classes, from {self.source}"
        )


def check_split(x: Any, y: Any, num_classes: int, where: str) -> None:
    """Raise a DataError unless x is uint8 [N,C,H,W] and y int64 [N] with labels in range."""
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
        desc = f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}"
        raise DataError(f"{where}: images must be a uint8 array [N,C,H,W], got {desc}; re-create or re-download the files")
    if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
        desc = f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}"
        raise DataError(f"{where}: labels must be an int64 array [N], got {desc}; re-create or re-download the files")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels; the files are truncated or mismatched, re-download them")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(
            f"{where}: labels span {int(y.min())}..{int(y.max())}, expected 0..{num_classes - 1}; "
            "the label file is corrupt, re-download or re-create it"
        )


def to_float(x: Any):
    """uint8 images (numpy or torch) -> float32 torch tensor in [0, 1], the models' input scale.

    Refuses anything but uint8 so that already-scaled data is never divided by 255 twice.
    """
    import torch

    if isinstance(x, torch.Tensor):
        if x.dtype != torch.uint8:
            raise DataError(f"to_float expects uint8 images, got a {x.dtype} tensor; pass the raw arrays from load_dataset")
        return x.to(torch.float32).div_(255.0)
    arr = np.asarray(x)
    if arr.dtype != np.uint8:
        raise DataError(f"to_float expects uint8 images, got {arr.dtype}; pass the raw arrays from load_dataset")
    return torch.from_numpy(arr.astype(np.float32)).div_(255.0)
