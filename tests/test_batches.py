"""Batch sources of the Hebbian phase: the tensor wrapper draws the engine's old random numbers,
and array sources cover every image once per pass (or a fresh fraction of them)."""
from __future__ import annotations

import numpy as np
import torch

from neurohebb.batches import ArrayBatches, TensorBatches


def test_tensor_batches_match_the_engines_former_loop():
    x = torch.arange(23 * 2, dtype=torch.uint8).reshape(23, 1, 1, 2)
    gen_a, gen_b = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    source = TensorBatches(x, 5, gen_a)
    assert len(source) == 5
    for _ in range(2):  # two epochs
        order = torch.randperm(23, generator=gen_b)
        expected = [x[order[s:s + 5]] for s in range(0, 23, 5)]
        got = list(source)
        assert all(torch.equal(a, b) for a, b in zip(got, expected)) and len(got) == len(expected)


def _ids(batches) -> list[int]:
    return [int(v) for b in batches for v in b[:, 0, 0, 0]]


def test_array_batches_cover_both_arrays_once_per_pass():
    a = np.arange(7, dtype=np.uint8).reshape(7, 1, 1, 1)
    b = np.arange(100, 112, dtype=np.uint8).reshape(12, 1, 1, 1)
    source = ArrayBatches([a, b], 4, torch.Generator().manual_seed(0))
    assert len(source) == 5
    first, second = list(source), list(source)
    assert sorted(_ids(first)) == list(range(7)) + list(range(100, 112))
    assert _ids(first) != _ids(second)  # reshuffled
    assert all(bt.dtype == torch.uint8 and bt.is_contiguous() for bt in first)
    for bt in first:  # gathered in ascending file order within a batch
        assert _ids([bt]) == sorted(_ids([bt]))


def test_array_batches_fraction_draws_a_fresh_subset():
    a = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1)
    source = ArrayBatches([a], 3, torch.Generator().manual_seed(1), fraction=0.25)
    assert source.images_per_pass == 10 and len(source) == 4
    one, two = _ids(source), _ids(source)
    assert len(one) == len(set(one)) == 10 and set(one) != set(two)


def test_array_batches_read_a_transposed_memmap(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (6, 3, 4, 4), dtype=np.uint8)
    path = tmp_path / "x.bin"
    data.transpose(0, 1, 3, 2).copy().tofile(path)
    mapped = np.memmap(path, dtype=np.uint8, mode="r").reshape(6, 3, 4, 4).transpose(0, 1, 3, 2)
    got = torch.cat(list(ArrayBatches([mapped], 4, torch.Generator().manual_seed(0))))
    rows = {bytes(r.numpy().tobytes()) for r in got}
    assert rows == {bytes(np.ascontiguousarray(d).tobytes()) for d in data}
