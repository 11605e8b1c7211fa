"""Sources of uint8 image batches for the Hebbian phase: one shuffled pass per `iter()`.

Why a protocol instead of a tensor: STL-10's 100k unlabelled images are memory-mapped and
ImageNet is decoded from disk, so the Hebbian phase takes anything with `len()` (batches per
pass) that yields uint8 [B,C,H,W] tensors when iterated; each `iter()` is one epoch. An in-memory
tensor is wrapped in `TensorBatches`, which draws exactly the random numbers the engine drew
before this protocol existed, so existing runs are bit-identical.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator, Protocol

import numpy as np
import torch


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[torch.Tensor]: ...


class TensorBatches:
    """A uint8 tensor in `batch_size` batches, reshuffled by `generator` on every pass."""

    def __init__(self, x: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.x, self.batch_size, self.generator = x, batch_size, generator

    def __len__(self) -> int:
        return math.ceil(self.x.shape[0] / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.x.shape[0], generator=self.generator)
        for start in range(0, self.x.shape[0], self.batch_size):
            yield self.x[order[start:start + self.batch_size]]


class ArrayBatches:
    """Numpy arrays (memory-mapped or not, concatenated logically) in shuffled batches.

    `fraction` < 1 takes a fresh random fraction of the images on each pass. Indices within a
    batch are sorted before gathering, so a memory-mapped file is read in ascending order.
    """

    def __init__(self, arrays: Iterable[np.ndarray], batch_size: int, generator: torch.Generator, fraction: float = 1.0):
        self.arrays = [a for a in arrays if len(a)]
        self.offsets = np.cumsum([0] + [len(a) for a in self.arrays])
        self.batch_size, self.generator, self.fraction = batch_size, generator, fraction

    @property
    def images_per_pass(self) -> int:
        return max(1, round(int(self.offsets[-1]) * self.fraction)) if self.offsets[-1] else 0

    def __len__(self) -> int:
        return math.ceil(self.images_per_pass / self.batch_size)

    def gather(self, indices: np.ndarray) -> np.ndarray:
        indices = np.sort(indices)
        parts = []
        for k, a in enumerate(self.arrays):
            lo, hi = self.offsets[k], self.offsets[k + 1]
            sel = indices[(indices >= lo) & (indices < hi)] - lo
            if sel.size:
                parts.append(a[sel])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(int(self.offsets[-1]), generator=self.generator)[: self.images_per_pass].numpy()
        for start in range(0, order.size, self.batch_size):
            yield torch.from_numpy(np.ascontiguousarray(self.gather(order[start:start + self.batch_size])))
