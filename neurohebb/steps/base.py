"""The one protocol every plasticity arithmetic implements.

Why a protocol: the SoftHebb step used to exist as four copies reached two ways (a quantiser
hook threaded through the engine, and a module-tree swap); the copies drifted. Now a network
receives exactly one `PlasticityStep` at construction and every plastic layer learns through it:

    step.attach(layer, index)   take charge of a layer (e.g. round its initial weights)
    step.step(layer, x) -> u    one plasticity step on batch x (the block's normalised input);
                                returns u = W x computed *before* the update, as the paper does
    step.diagnostics()          per-layer JSON-ready dicts for metrics.json

Implementations, one module per arithmetic: `float32` (the fused float path), `fakequant`
(exact values of a chip's number formats in float64), `integer` (codes, shifts, saturations;
bit-identical to fakequant), and a chip's own learning engine (`neurohebb.onchip`).
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class PlasticityStep(Protocol):
    """What a plastic layer's arithmetic must provide."""

    #: short label written to metrics.json ("float32", "fake-quant", "integer", "chip:loihi2", ...)
    mode: str

    def attach(self, layer: nn.Module, index: int) -> None:
        """Take charge of `layer` (block `index`) before its first step; idempotent."""
        ...

    def step(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One plasticity step on batch `x`; returns the pre-activation u computed before the update."""
        ...

    def diagnostics(self) -> list[dict[str, Any]]:
        """Per attached layer, in block order: what metrics.json reports about its learning."""
        ...
