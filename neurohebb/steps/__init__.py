"""Plasticity steps: one protocol (`base.PlasticityStep`), one module per arithmetic.

- `float32`: the fused float step every float run uses;
- `datapath`: the quantised step written down once (every rounding point numbered);
  `fakequant` (exact values in float64; its weight-sized tail compiled in `fused_tail` where
  numba is installed) and `integer` (int64 codes) execute it bit-identically;
- a chip's own learning engine lives in `neurohebb.onchip` and implements the same protocol.

`make_step` is the only place a step is chosen: from a run's `[precision]` table.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import PlasticityStep
from .float32 import Float32Step

QUANTISED_MODES = ("fake-quant", "integer")


def make_step(policy=None, mode: str = "fake-quant", seed: int = 0, device: str | torch.device = "cpu",
              stats_every: int = 1, correlation: str = "auto", flush_tiny: bool = True,
              linear_kernel: str = "auto") -> PlasticityStep:
    """The step for a precision policy: float32 for the all-float policy (its conv layers'
    Hebbian sum by `correlation`, tiny post-synaptic values flushed unless `flush_tiny` is
    False, linear layers stepped by `linear_kernel`), else the quantised datapath in `mode` ("fake-quant" or
    "integer"), its stochastic rounding seeded with `seed`."""
    from ..precision.policy import PrecisionPolicy

    policy = PrecisionPolicy.parse(policy)
    if mode not in QUANTISED_MODES:
        raise ConfigError(f"precision mode {mode!r} is unknown; choose one of: {', '.join(QUANTISED_MODES)}")
    if policy.is_float:
        return Float32Step(correlation=correlation, flush_tiny=flush_tiny, linear_kernel=linear_kernel)
    if mode == "integer":
        from .integer import IntegerEngine

        return IntegerEngine(policy, seed=seed, device=device, stats_every=stats_every)
    from .fakequant import FakeQuantEngine

    return FakeQuantEngine(policy, seed=seed, device=device, stats_every=stats_every)


__all__ = ["PlasticityStep", "Float32Step", "make_step", "QUANTISED_MODES"]
