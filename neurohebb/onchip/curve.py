"""Learning curves: test accuracy and active neurons against the number of training samples seen.

Why a curve and not one number: "does the chip learn?" is answered by the accuracy *rising* from
the random start as samples arrive (and by how many neurons take part: a competition that collapses
onto a few winners shows as a flat active-neuron count). The run is the ordinary pipeline's
Hebbian phase (same seeds, same batches, same plasticity step kept across the whole run), probed
at each checkpoint with `neurohebb.probe.readout_accuracy`; probing uses its own random streams,
so the weights after the last checkpoint are exactly those `neurohebb train` ends with.

"Active neurons" means neurons that ever won: for on-chip learning, WTA neurons that fired at least
once while learning (the chip engine's own count); for float SoftHebb, neurons that were the hard
winner (argmax of u) of at least one training sample.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn

from ..config import RunConfig
from ..errors import ConfigError


class _WinnerCount:
    """Wraps a float `PlasticityStep` and counts, per neuron, the samples it was the argmax of u."""

    def __init__(self, inner):
        self.inner = inner
        self.mode = inner.mode
        self.wins: dict[int, torch.Tensor] = {}
        self._index: dict[int, int] = {}

    def attach(self, layer: nn.Module, index: int) -> None:
        self._index[id(layer)] = index
        self.inner.attach(layer, index)

    def step(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        u = self.inner.step(layer, x)
        if getattr(layer, "plastic", False):
            k = u.shape[1]
            winners = u.transpose(0, 1).reshape(k, -1).argmax(0)  # per sample (and position for conv)
            counts = torch.bincount(winners, minlength=k).cpu()
            key = self._index[id(layer)]
            self.wins[key] = self.wins.get(key, torch.zeros(k, dtype=torch.int64)) + counts
        return u

    def diagnostics(self) -> list[dict[str, Any]]:
        return self.inner.diagnostics()

    def active_neurons(self) -> int:
        return int((self.wins[min(self.wins)] > 0).sum()) if self.wins else 0


def _checkpoints(checkpoints: Iterable[int], total: int) -> list[int]:
    points = sorted({int(c) for c in checkpoints})
    if not points:
        raise ConfigError("give at least one checkpoint (number of training samples seen), e.g. [0, 500, 1000]")
    if points[0] < 0 or points[-1] > total:
        raise ConfigError(f"checkpoints must be in 0..{total} (the training samples of the Hebbian phase), got {points[0]}..{points[-1]}")
    return points


def learning_curve(config: RunConfig, checkpoints: Iterable[int], dataset=None,
                   device: str | torch.device | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """`learning_curve_run`'s points only."""
    return learning_curve_run(config, checkpoints, dataset, device, progress)[1]


def learning_curve_run(config: RunConfig, checkpoints: Iterable[int], dataset=None,
                       device: str | torch.device | None = None,
                       progress: bool = False) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Train ``config``'s Hebbian phase once, probing the readout accuracy whenever the samples
    seen reach a checkpoint. Returns one dict per checkpoint: ``samples`` (seen when probed:
    checkpoints fall on batch boundaries), ``samples_learned`` (the chip holds its calibration
    images back before learning from them), ``test_accuracy``, ``active_neurons``, ``mode``;
    and the trained network (its readout is the last probe's)."""
    from ..devices import resolve_device
    from ..engine import dataset_tensors, hebbian_phase, load_data_for, seeded_generators, step_for
    from ..network import HebbNetwork
    from ..probe import readout_accuracy

    device = resolve_device(config.device) if device is None else torch.device(device)
    from ..streaming import needs_streaming

    plastic_layers = sum(1 for layer in config.layers if layer.rule != "random")
    if config.hebbian.mode == "greedy" and plastic_layers > 1:
        raise ConfigError("a learning curve follows one pass over the data; hebbian.mode = \"greedy\" trains the layers "
                          "one after another -- use hebbian.mode = \"simultaneous\"")
    dataset = dataset if dataset is not None else load_data_for(config)
    if needs_streaming(config, dataset):
        raise ConfigError("learning curves need the labelled training images in memory; set data.hebbian_data = \"train\", "
                          "data.hebbian_fraction = 1 and readout.augment = \"none\"")
    x_train, y_train, x_test, y_test = dataset_tensors(dataset)
    n, bs, epochs = int(x_train.shape[0]), config.hebbian.batch_size, config.hebbian.epochs
    points = _checkpoints(checkpoints, n * epochs)
    init_gen, order_gen = seeded_generators(config.seed)
    step = step_for(config, device)
    chip = config.onchip.enabled
    counted = step if chip else _WinnerCount(step)
    net = HebbNetwork(config, num_classes=dataset.num_classes, generator=init_gen, step=counted).to(device)
    plastic = any(b.layer.plastic for b in net.blocks) and epochs > 0
    per_epoch = math.ceil(n / bs)
    out: list[dict[str, Any]] = []

    def probe(seen: int) -> None:
        was_training = net.training
        acc = readout_accuracy(net, config, x_train, y_train, x_test, y_test, device)
        net.train(was_training)
        if chip:
            d = step.diagnostics()[0]
            active, learned = int(d.get("active_neurons", 0)), int(d.get("samples", 0))
        else:
            active, learned = counted.active_neurons(), seen
        out.append({"samples": seen, "samples_learned": learned if plastic else 0, "test_accuracy": acc["test_accuracy"],
                    "active_neurons": active if plastic else 0, "mode": step.mode if plastic else "random weights"})

    pending = list(points)
    if not plastic:  # the weights never change: one probe stands for every checkpoint
        probe(0)
        return net, [dict(out[0], samples=p) for p in pending]
    if pending[0] == 0:
        probe(pending.pop(0))

    batches = [0]

    def on_step(_bar_position: int) -> None:
        # counted here: hebbian_phase passes its progress bar's position, which a disabled tqdm
        # never advances
        epoch, j = divmod(batches[0], per_epoch)
        batches[0] += 1
        seen = epoch * n + min((j + 1) * bs, n)
        if pending and pending[0] <= seen:
            while pending and pending[0] <= seen:
                pending.pop(0)
            probe(seen)

    hebbian_phase(net, x_train, config, device, order_gen, progress, on_step=on_step)
    if pending:  # only when the phase ended early; the checkpoints were validated against its length
        probe(n * epochs)
    return net, out
