"""Training and evaluating a network under a precision policy.

Why here and not in `neurohebb.engine`: the engine's Hebbian phase is reused unchanged -- the
precision engine is *installed* on the network for its duration (each plastic layer's `learn`
is routed through the fake-quant or integer datapath) -- so the float engine stays free of any
precision logic, and the float baseline of a sweep is exactly `neurohebb train`'s algorithm.

The readout is trained in float on the features of the quantised network in every run: the
question asked is what the plastic synapses' precision costs, not the classifier's.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..errors import ConfigError
from ..network import HebbNetwork
from .datapath import PrecisionEngine
from .diagnostics import weight_histogram
from .fakequant import FakeQuantEngine
from .integer import IntegerEngine
from .policy import PrecisionPolicy, RoleSpec
from .rounding import quantize_codes

MODES = {"fake-quant": FakeQuantEngine, "integer": IntegerEngine}


def make_engine(policy: PrecisionPolicy | str, mode: str = "fake-quant", seed: int = 0, device: str | torch.device = "cpu",
                stats_every: int = 1) -> PrecisionEngine:
    if mode not in MODES:
        raise ConfigError(f"precision mode {mode!r} is unknown; choose one of: {', '.join(MODES)}")
    return MODES[mode](policy, seed=seed, device=device, stats_every=stats_every)


def dataset_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    arrays = (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)  # type: ignore[return-value]


def float_diagnostics(net: HebbNetwork) -> list[dict[str, Any]]:
    """Weight histograms of a float network (the reference the quantised ones are read against)."""
    from ..rules import neuron_norms

    return [
        {"layer": i, "weight_histogram": weight_histogram(b.layer.weight),
         "weight_norm_gap": float((neuron_norms(b.layer.weight.double()) - 1).abs().mean())}
        for i, b in enumerate(net.blocks) if b.layer.plastic
    ]


def train_with_policy(
    config: RunConfig,
    policy: PrecisionPolicy | str | None,
    *,
    mode: str = "fake-quant",
    dataset=None,
    progress: bool = True,
    stats_every: int = 1,
) -> tuple[HebbNetwork, dict[str, Any]]:
    """Train `config` with its Hebbian phase under `policy`; returns (net, metrics).

    `stats_every`: record the stalled-synapse statistics on every n-th step only (they cost
    several weight-sized passes per step).

    The all-float policy runs the engine's float32 algorithm untouched. Stochastic rounding is
    seeded with `config.seed` (its own stream: weight init and data order are unchanged by the
    policy, so runs of one seed differ only by precision). `metrics["diagnostics"]` holds the
    per-layer saturation, stalled fraction and weight histogram.
    """
    from ..engine import resolve_device, train_pipeline

    policy = PrecisionPolicy.parse(policy)
    if policy.is_float:
        net, metrics = train_pipeline(config, progress, None, dataset)
        diagnostics = float_diagnostics(net)
    else:
        engine = make_engine(policy, mode, seed=config.seed, device=resolve_device(config.device), stats_every=stats_every)
        net, metrics = train_pipeline(config, progress, None, dataset, hebbian_context=engine.installed)
        diagnostics = engine.diagnostics()
    metrics.update({"policy": str(policy), "mode": "float32" if policy.is_float else mode, "diagnostics": diagnostics})
    return net, metrics


def post_training_quantize(net: HebbNetwork, spec: RoleSpec | str) -> tuple[HebbNetwork, list[dict[str, Any]]]:
    """A copy of `net` whose plastic weights are rounded to `spec` (train in float, deploy
    quantised: the baseline on-chip learning is compared with). Returns (net, diagnostics)."""
    spec = RoleSpec.from_value(spec, "weight")
    qnet = copy.deepcopy(net)
    diagnostics = []
    for i, block in enumerate(qnet.blocks):
        if not block.layer.plastic:
            continue
        w = block.layer.weight
        if spec.is_float:
            diagnostics.append({"layer": i, "weight_histogram": weight_histogram(w)})
            continue
        q = quantize_codes(w, spec.fmt, spec.rounding, spec.overflow)
        w.copy_(q.values(w.dtype))
        n = w.numel()
        diagnostics.append({
            "layer": i,
            "saturation": {"weight": {"below": int(q.n_below), "above": int(q.n_above), "elements": n,
                                      "fraction": (int(q.n_below) + int(q.n_above)) / n}},
            "weight_histogram": weight_histogram(w, spec.fmt),
        })
    return qnet, diagnostics
