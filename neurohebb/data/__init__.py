"""Datasets: loading (NumPy shards, IDX, CIFAR-10 pickles/binary, bundled digits) and download.

Everything returns a validated `Dataset` of uint8 images [N,C,H,W] and int64 labels;
`to_float` converts images to the models' float32 [0,1] input scale.
"""
from __future__ import annotations

from .dataset import Dataset, to_float
from .download import download_dataset
from .loader import load_dataset
from .paths import default_data_dir, download_root
from .registry import NAMES as DATASETS

__all__ = ["DATASETS", "Dataset", "default_data_dir", "download_dataset", "download_root", "load_dataset", "to_float"]
