"""scikit-learn's bundled 8x8 handwritten digits: a dataset that needs no download.

Pixel values 0..16 are scaled to uint8 0..255 as floor(v*255/16 + 0.5) (round half up), so
`to_float` gives the same [0,1] scale as the other datasets. The train/test split uses no
random generator, so it is identical on every machine and library version: within each
class, in the bundled order, every 4th sample (positions 3, 7, 11, ...) is a test sample.
That is a stratified 25 % test split (445 test / 1352 train of 1797).
"""
from __future__ import annotations

import numpy as np

TEST_EVERY = 4  # 1 in 4 samples of each class goes to the test split


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Digits pixel values 0..16 -> uint8 0..255 (round half up)."""
    return np.floor(np.asarray(values, dtype=np.float64) * 255.0 / 16.0 + 0.5).astype(np.uint8)


def stratified_test_mask(labels: np.ndarray, every: int = TEST_EVERY) -> np.ndarray:
    """Boolean mask: True for the every-th sample (positions every-1, 2*every-1, ...) of each class."""
    mask = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        mask[members[every - 1 :: every]] = True
    return mask


def load_digits_arrays() -> dict:
    """{'train': (x, y), 'test': (x, y)} with x uint8 [N,1,8,8], y int64 [N], in bundled order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = scale_to_uint8(bunch.data).reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    test = stratified_test_mask(y)
    return {"train": (x[~test], y[~test]), "test": (x[test], y[test])}
