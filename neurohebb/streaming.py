"""The pipeline for data that cannot be cached as features: STL-10 and ImageNet recipes.

Why a second pipeline: the engine's default caches the frozen features once (exact when the
readout sees the same images every epoch). The authors' STL-10 readout sees a new random crop and
flip of each image every epoch, and ImageNet's 1.28 M images x 307,200 features cannot be cached
at all, so here features are recomputed for every readout batch on the device, the Hebbian phase
reads a `BatchSource` (memory-mapped unlabelled images, or JPEGs decoded by worker processes) and
the test accuracy is accumulated batch by batch. Presets that need none of this never enter this
module, so their runs stay bit-identical.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .batches import ArrayBatches, BatchSource
from .config import RunConfig
from .errors import ConfigError

EVAL_BATCH = 250


def needs_streaming(config: RunConfig, dataset) -> bool:
    dc = config.data
    return bool(getattr(dataset, "streaming", False)) or config.readout.augment != "none" \
        or dc.hebbian_data != "train" or dc.hebbian_fraction < 1.0


# ---------------------------------------------------------------------------------------------
# Hebbian data


class FolderBatches:
    """A random `fraction` of a disk-backed split per pass, decoded with training augmentation."""

    def __init__(self, dataset, batch_size: int, generator: torch.Generator, fraction: float, workers: int):
        self.dataset, self.batch_size, self.generator, self.workers = dataset, batch_size, generator, workers
        self.count = max(1, round(len(dataset.train) * fraction))

    def __len__(self) -> int:
        return math.ceil(self.count / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.dataset.train), generator=self.generator)[: self.count].numpy()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        for x, _ in self.dataset.batches("train", self.batch_size, augment=True, seed=seed, order=order, workers=self.workers):
            yield x


def hebbian_source(config: RunConfig, dataset, generator: torch.Generator) -> BatchSource:
    """What the Hebbian phase reads, from `data.hebbian_data` and `data.hebbian_fraction`."""
    dc, batch = config.data, config.hebbian.batch_size
    if getattr(dataset, "streaming", False):
        if dc.hebbian_data != "train":
            raise ConfigError(f"data.hebbian_data = {dc.hebbian_data!r}: {dataset.name} has no unlabelled split; use \"train\"")
        return FolderBatches(dataset, batch, generator, dc.hebbian_fraction, dc.workers)
    arrays = []
    if dc.hebbian_data in ("train", "train+unlabeled"):
        arrays.append(dataset.x_train)
    if dc.hebbian_data in ("unlabeled", "train+unlabeled"):
        if getattr(dataset, "x_unlabeled", None) is None:
            raise ConfigError(
                f"data.hebbian_data = {dc.hebbian_data!r} but {dataset.name} from {dataset.source} has no unlabelled "
                "images (STL-10's unlabeled_X.bin); add the file or use hebbian_data = \"train\""
            )
        arrays.append(dataset.x_unlabeled)
    return ArrayBatches(arrays, batch, generator, dc.hebbian_fraction)


# ---------------------------------------------------------------------------------------------
# Readout on features recomputed per batch


def crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image: a random HxW window of its `pad`-reflect-padded copy, mirrored with p = 1/2.

    The offsets and flips come from `generator` on the CPU, so a seed gives the same crops on
    any device; the gather itself runs where `x` lives.
    """
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    if pad:
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    dev = x.device
    rows = (offsets[0][:, None] + torch.arange(h)).to(dev)  # [n, h]
    cols = (offsets[1][:, None] + torch.arange(w)).to(dev)  # [n, w]
    cols = torch.where(flips.to(dev)[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=dev)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    return x[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]


def _memory_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device,
                    generator: torch.Generator, pad: int | None) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """One shuffled pass per call over in-memory images, cropped and flipped when `pad` is set."""
    from .engine import to_device_float

    def one_epoch():
        order = torch.randperm(x.shape[0], generator=generator)
        for s in range(0, x.shape[0], batch_size):
            idx = order[s:s + batch_size]
            xb = to_device_float(x[idx], device)
            yield (crop_flip(xb, pad, generator) if pad is not None else xb), y[idx].to(device)

    return one_epoch


def _folder_batches(dataset, batch_size: int, device: torch.device, generator: torch.Generator,
                    augment: bool, workers: int) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    from .engine import to_device_float

    def one_epoch():
        order = torch.randperm(len(dataset.train), generator=generator).numpy()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        for xb, yb in dataset.batches("train", batch_size, augment=augment, seed=seed, order=order, workers=workers):
            yield to_device_float(xb, device), yb.to(device)

    return one_epoch


def train_readout_streamed(net, epochs: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
                           config: RunConfig, progress: bool = True):
    """The engine's readout recipe (`engine.fit_readout`) with features computed per batch."""
    from .engine import fit_readout

    return fit_readout(net, epochs, config, progress, features_of=net.features, desc="readout (recomputed features)")


@torch.no_grad()
def evaluate_streamed(net, batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Test accuracy (%) accumulated batch by batch (no feature matrix is ever held)."""
    net.eval()
    correct = total = 0
    for xb, yb in batches:
        correct += int((net.classify(net.features(xb)).argmax(1) == yb).sum())
        total += yb.numel()
    return 100.0 * correct / max(total, 1)


def test_batches(dataset, device: torch.device, workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The test split as float batches on `device`, from memory or decoded from disk."""
    from .engine import to_device_float

    if getattr(dataset, "streaming", False):
        for x, y in dataset.batches("test", EVAL_BATCH, augment=False, seed=0, workers=workers):
            yield to_device_float(x, device), y.to(device)
        return
    x, y = dataset.x_test, dataset.y_test
    for s in range(0, len(y), EVAL_BATCH):
        yield to_device_float(torch.from_numpy(np.ascontiguousarray(x[s:s + EVAL_BATCH])), device), torch.from_numpy(y[s:s + EVAL_BATCH]).to(device)


def evaluate_dataset(net, dataset, device: torch.device, workers: int = 0) -> tuple[float, int]:
    """(test accuracy %, number of test images) without holding the test features."""
    n = len(dataset.test) if getattr(dataset, "streaming", False) else len(dataset.y_test)
    return evaluate_streamed(net, test_batches(dataset, device, workers)), n


# ---------------------------------------------------------------------------------------------
# The whole run


def streaming_pipeline(
    config: RunConfig,
    progress: bool,
    dataset,
    step,
    t0: float,
) -> tuple[Any, dict[str, Any]]:
    """Same phases and metrics as `engine.train_pipeline`, for unlabelled, augmented or on-disk data."""
    from .engine import (extract_features, hebbian_phase, resolve_device, run_metrics, seeded_generators, step_for,
                         train_readout)
    from .network import HebbNetwork

    device = resolve_device(config.device)
    rc, dc = config.readout, config.data
    streamed = bool(getattr(dataset, "streaming", False))
    init_gen, order_gen = seeded_generators(config.seed)
    step = step if step is not None else step_for(config, device)
    net = HebbNetwork(config, num_classes=dataset.num_classes, generator=init_gen, step=step).to(device)
    t_data = time.perf_counter() - t0

    source = hebbian_source(config, dataset, order_gen)
    unsup_seconds = hebbian_phase(net, source, config, device, order_gen, progress)

    features_seconds = 0.0
    if streamed:
        n_train, n_test = len(dataset.train), len(dataset.test)
        epochs = _folder_batches(dataset, rc.batch_size, device, order_gen, rc.augment != "none", dc.workers)
        readout = train_readout_streamed(net, epochs, config, progress)
        t2 = time.perf_counter()
        test_accuracy = evaluate_streamed(net, test_batches(dataset, device, dc.workers))
    else:
        x_train, y_train = (torch.from_numpy(np.ascontiguousarray(a)) for a in (dataset.x_train, dataset.y_train))
        n_train, n_test = int(x_train.shape[0]), len(dataset.y_test)
        if rc.augment == "none":  # only the Hebbian data differs: the cached-features readout is exact
            t1 = time.perf_counter()
            train_features = extract_features(net, x_train, device, progress, "train features")
            features_seconds = time.perf_counter() - t1
            readout = train_readout(net, train_features, y_train, config, order_gen, progress)
            del train_features
        else:
            x_dev = x_train.to(device)  # the labelled images are small; keep them on the device
            epochs = _memory_batches(x_dev, y_train, rc.batch_size, device, order_gen, rc.augment_pad)
            readout = train_readout_streamed(net, epochs, config, progress)
        t2 = time.perf_counter()
        test_accuracy = evaluate_streamed(net, test_batches(dataset, device))
    eval_seconds = time.perf_counter() - t2

    metrics = run_metrics(
        config, net, dataset, device, test_accuracy, readout, t0,
        unsup_seconds=unsup_seconds, features_seconds=features_seconds, eval_seconds=eval_seconds, data_seconds=t_data,
        n_train=n_train, n_test=n_test,
    )
    metrics.update({
        "n_hebbian_per_epoch": getattr(source, "images_per_pass", None) or getattr(source, "count", None),
        "hebbian_data": dc.hebbian_data,
        "readout_augment": rc.augment,
    })
    return net, metrics
