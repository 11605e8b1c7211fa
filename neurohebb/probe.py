"""Linear probe: how good are a layer's current weights, measured the way `train` measures them.

Why one function: on-chip learning curves, `deploy lava-learn` and its random-weights control all
ask "what test accuracy do these Hebbian weights give?", and the answer is only comparable when
every caller uses the same recipe -- frozen features of the network, a freshly initialised readout
trained with the run's `[readout]` settings on the training images, accuracy on the test images.
The readout's initialisation and data order come from their own seeded streams, so probing in the
middle of training never shifts the training's random numbers.
"""
from __future__ import annotations

import torch

from .config import RunConfig
from .engine import accuracy_from_features, extract_features, train_readout
from .network import HebbNetwork

PROBE_SEED_OFFSET = 7_919  # the probe's streams differ from the run's init and data-order streams


def readout_accuracy(net: HebbNetwork, config: RunConfig, x_train: torch.Tensor, y_train: torch.Tensor,
                     x_test: torch.Tensor, y_test: torch.Tensor, device: torch.device | str = "cpu",
                     seed: int | None = None) -> dict[str, float]:
    """Train a fresh readout on the frozen features of ``net`` (uint8 images) and test it.

    Returns ``test_accuracy`` and ``train_accuracy`` (readout's last epoch), both in %. The
    network's Hebbian weights are not changed; its readout is replaced by the probe's."""
    device = torch.device(device)
    seed = config.seed if seed is None else seed
    was_training = net.training
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed + PROBE_SEED_OFFSET)
        net.readout.reset_parameters()
        order = torch.Generator().manual_seed(seed + PROBE_SEED_OFFSET + 1)
        train_features = extract_features(net, x_train, device)
        result = train_readout(net, train_features, y_train, config, order, progress=False)
        test_accuracy = accuracy_from_features(net, extract_features(net, x_test, device), y_test)
    net.train(was_training)
    return {"test_accuracy": round(test_accuracy, 4), "train_accuracy": round(result.train_accuracy, 4)}
