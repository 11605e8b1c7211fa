"""What each supported dataset is: canonical name, accepted spellings, folder names, image shape.

One table so that the loader, the downloader and the CLI agree on names and shapes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    image_shape: tuple[int, int, int]  # (C, H, W)
    folders: tuple[str, ...]  # folder names accepted under a data directory, first = where downloads go
    num_classes: int = 10


SPECS = {
    "digits": DatasetSpec("digits", (1, 8, 8), ("digits",)),
    "mnist": DatasetSpec("mnist", (1, 28, 28), ("mnist", "MNIST")),
    "fashion_mnist": DatasetSpec("fashion_mnist", (1, 28, 28), ("fashion_mnist", "fashion-mnist", "FashionMNIST")),
    "cifar10": DatasetSpec("cifar10", (3, 32, 32), ("cifar10", "cifar-10", "CIFAR10")),
}
NAMES = tuple(SPECS)


def canonical_key(text: str) -> str:
    """'Fashion-MNIST' / 'fashion_mnist' / 'CIFAR-10' -> 'fashionmnist' / 'cifar10': for loose comparisons."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def get_spec(name: str) -> DatasetSpec:
    """The spec for `name`, accepting '-' for '_' and any case; unknown names are a DataError."""
    key = canonical_key(name)
    for spec in SPECS.values():
        if canonical_key(spec.name) == key:
            return spec
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
