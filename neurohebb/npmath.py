"""The block activations in NumPy float64, written once for every backend.

Why a NumPy copy of `activations`: the backends read a `NetworkSpec` (NumPy arrays) and must
not import torch to finish a computation on the host or to check a circuit against the model;
`tests/test_description.py` holds these equal to the torch versions.
"""
from __future__ import annotations

import numpy as np


def softmax(u: np.ndarray, beta: float = 1.0, axis: int = -1) -> np.ndarray:
    """softmax(beta * u) along `axis` (max-subtracted, so large beta does not overflow)."""
    z = beta * np.asarray(u, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def triangle(u: np.ndarray, power: float = 1.0, axis: int = -1) -> np.ndarray:
    """relu(u - mean over neurons) ** power (the paper's Triangle)."""
    u = np.asarray(u, dtype=np.float64)
    return np.maximum(u - u.mean(axis=axis, keepdims=True), 0.0) ** power


def block_activation(u: np.ndarray, name: str, param: float, axis: int = -1) -> np.ndarray:
    """NumPy twin of `activations.block_activation` (same names, same parameters)."""
    if name == "triangle":
        return triangle(u, param, axis)
    if name == "softmax":
        return softmax(u, param, axis)
    if name == "relu":
        return np.maximum(np.asarray(u, dtype=np.float64), 0.0)
    if name == "identity":
        return np.asarray(u, dtype=np.float64)
    raise ValueError(f"unknown activation {name!r}")
