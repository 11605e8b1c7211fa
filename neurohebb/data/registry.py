"""The one table of supported datasets: name, spellings, folders, image shape, classes, files.

Why one table: the loader, the downloader, the config validation, the CLI and the geometry code
(`neurohebb.shapes`) all need the same names and shapes; each of them reads this module instead
of keeping its own list, so adding a dataset is one entry here (plus its reader).

Sources and checksums are the ones torchvision publishes (pytorch/vision,
torchvision/datasets/mnist.py `MNIST.mirrors/resources`, `FashionMNIST.mirrors/resources`;
torchvision/datasets/cifar.py `CIFAR10.url/tgz_md5`; torchvision/datasets/stl10.py
`STL10.url/tgz_md5/train_list/test_list`). ImageNet has no public download (it needs an
image-net.org account), so it has no source: its files are named for the error messages only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import DataError


@dataclass(frozen=True)
class Resource:
    filename: str
    md5: str


@dataclass(frozen=True)
class Source:
    """Where a dataset's canonical files come from and how to check them.

    `files` are downloaded from each mirror (base URL + filename) and checked by MD5; `extract`
    lists archive members (path inside `files[0]`, checksum) that are unpacked next to it, each
    checked too, for datasets too large to read from a compressed archive every run.
    """

    mirrors: tuple[str, ...]  # base URLs ending in '/'
    files: tuple[Resource, ...]
    extract: tuple[Resource, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    image_shape: tuple[int, int, int]  # (C, H, W) the network sees
    folders: tuple[str, ...]  # folder names accepted under a data directory, first = where downloads go
    num_classes: int = 10
    source: Source | None = None  # None: bundled (digits) or no public download (imagenet)
    expected: str = ""  # what a folder must hold, for "not found" messages
    unlabeled: bool = False  # has a separate unlabelled split (for the Hebbian phase)
    streaming: bool = False  # too large for memory: read batch by batch from disk


_STL10_FILES = (
    Resource("stl10_binary/train_X.bin", "918c2871b30a85fa023e0c44e0bee87f"),
    Resource("stl10_binary/train_y.bin", "5a34089d4802c674881badbb80307741"),
    Resource("stl10_binary/test_X.bin", "7f263ba9f9e0b06b93213547f721ac82"),
    Resource("stl10_binary/test_y.bin", "36f9794fa4beb8a2c72628de14fa638e"),
    Resource("stl10_binary/unlabeled_X.bin", "5242ba1fed5e4be9e1e742405eb56ca4"),
)

SPECS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("digits", (1, 8, 8), ("digits",), expected="nothing (bundled with scikit-learn)"),
    "mnist": DatasetSpec(
        "mnist", (1, 28, 28), ("mnist", "MNIST"),
        # The S3 mirror first: yann.lecun.com often refuses automated downloads.
        source=Source(
            ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
            (
                Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                Resource("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                Resource("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                Resource("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
            ),
        ),
        expected="MANIFEST.json + shards, or IDX files train-images-idx3-ubyte[.gz] etc.",
    ),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", (1, 28, 28), ("fashion_mnist", "fashion-mnist", "FashionMNIST"),
        source=Source(
            ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            (
                Resource("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                Resource("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                Resource("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                Resource("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
            ),
        ),
        expected="MANIFEST.json + shards, or IDX files train-images-idx3-ubyte[.gz] etc.",
    ),
    "cifar10": DatasetSpec(
        "cifar10", (3, 32, 32), ("cifar10", "cifar-10", "CIFAR10"),
        source=Source(("https://www.cs.toronto.edu/~kriz/",), (Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),)),
        expected="MANIFEST.json + shards, cifar-10-python.tar.gz, cifar-10-batches-py/ or cifar-10-batches-bin/",
    ),
    "stl10": DatasetSpec(
        "stl10", (3, 96, 96), ("stl10", "stl-10", "STL10"),
        source=Source(
            ("http://ai.stanford.edu/~acoates/stl10/",),
            (Resource("stl10_binary.tar.gz", "91f7769df0f17e558f3565bffb0c7dfb"),),
            extract=_STL10_FILES,
        ),
        expected="stl10_binary/ with train_X.bin, train_y.bin, test_X.bin, test_y.bin (and unlabeled_X.bin)",
        unlabeled=True,
    ),
    "imagenet": DatasetSpec(
        "imagenet", (3, 160, 160), ("imagenet", "ImageNet", "ILSVRC2012"), num_classes=1000,
        expected="train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, or a flat val/ with the devkit's "
                 "ILSVRC2012_validation_ground_truth.txt and meta.mat",
        streaming=True,
    ),
}
NAMES = tuple(SPECS)
SHAPES: dict[str, tuple[int, int, int]] = {name: spec.image_shape for name, spec in SPECS.items()}


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


def cli_names() -> tuple[str, ...]:
    """Names the CLI accepts: the canonical ones plus their hyphenated spellings."""
    return NAMES + tuple(n.replace("_", "-") for n in NAMES if "_" in n)
