"""Constrained precision: number formats, rounding, the precision policy, the fake-quant and
integer learning engines, and their diagnostics.

``from neurohebb.precision import NumberFormat, quantize, PrecisionPolicy`` is the stable API the
rest of the project (STPN, Lava mapping, sweeps) uses. Modules:

- ``formats``, ``rounding``, ``policy``: what a chip's numbers are and how values become them;
- the quantised SoftHebb step itself (written down once, run by the fake-quant and integer
  engines) lives with the other plasticity steps in :mod:`neurohebb.steps`;
- ``diagnostics``: saturation, stalled updates, weight histograms;
- ``training``: train / post-training-quantise a network under a policy;
- ``sweep`` and ``plots``: ``neurohebb sweep``.
"""
from __future__ import annotations

from .formats import NumberFormat
from .policy import NORMS, ROLES, PrecisionPolicy, RoleSpec
from .rounding import OVERFLOWS, ROUNDINGS, Quantized, quantize, quantize_codes, shift_round

__all__ = [
    "NumberFormat", "PrecisionPolicy", "RoleSpec", "ROLES", "NORMS", "ROUNDINGS", "OVERFLOWS",
    "Quantized", "quantize", "quantize_codes", "shift_round",
]
