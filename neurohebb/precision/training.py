"""Training under a precision policy, and post-training quantisation.

Why so little here: a policy is part of a run (`RunConfig.precision`), and the engine builds the
run's plasticity step from it (`neurohebb.engine.step_for`), so training under a policy is an
ordinary run with that field set; the float baseline of a sweep is exactly `neurohebb train`.

The readout is trained in float on the features of the quantised network in every run: the
question asked is what the plastic synapses' precision costs, not the classifier's.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ..config import RunConfig
from ..network import HebbNetwork
from .diagnostics import weight_histogram
from .policy import PrecisionPolicy, RoleSpec
from .rounding import quantize_codes


def with_precision(config: RunConfig, policy: PrecisionPolicy | str | None, mode: str = "fake-quant",
                   stats_every: int | None = None) -> RunConfig:
    """A copy of `config` whose Hebbian phase runs under `policy` (validated like any field)."""
    precision = dataclasses.replace(
        config.precision, policy=str(PrecisionPolicy.parse(policy)), mode=mode,
        stats_every=config.precision.stats_every if stats_every is None else int(stats_every),
    )
    out = dataclasses.replace(config, precision=precision)
    out.precision.validate()
    return out


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

    Shorthand for `train_pipeline(with_precision(config, policy, mode, stats_every))`; the
    returned network's `config` carries the policy. `metrics["diagnostics"]` holds the per-layer
    saturation, stalled fraction and weight histogram.
    """
    from ..engine import train_pipeline

    return train_pipeline(with_precision(config, policy, mode, stats_every), progress, dataset)


def post_training_quantize(net: HebbNetwork, spec: RoleSpec | str) -> tuple[HebbNetwork, list[dict[str, Any]]]:
    """A copy of `net` whose plastic weights are rounded to `spec` (train in float, deploy
    quantised: the baseline that training in the chip's number formats is compared with). Returns (net, diagnostics)."""
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
