"""Per-layer diagnostics of learning under a precision policy.

Why these: low-bit Hebbian learning fails in recognisable ways -- updates too small to move a
weight by one step ("stalled" synapses; `update_transfer`, the stored over the intended weight
change, falls towards 0 and learning freezes), weights or updates
clipped at the range ends (saturation, the weights stop normalising), or all weights collapsing
onto a few codes (the histogram). A sweep row carries them so a user can see *why* a point lost
accuracy, not just that it did.

Counts are accumulated as 0-dim tensors (no device synchronisation per step) and read once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .formats import NumberFormat
from .policy import ROLES


@dataclass
class LayerStats:
    """Counters of one plastic layer over a training run."""

    index: int
    steps: int = 0
    sampled_steps: int = 0  # steps whose stalled/intended/applied figures were recorded
    elements: dict[str, int] = field(default_factory=lambda: {r: 0 for r in ROLES})
    below: dict[str, Any] = field(default_factory=lambda: {r: 0 for r in ROLES})
    above: dict[str, Any] = field(default_factory=lambda: {r: 0 for r in ROLES})
    proposed: Any = 0  # synapses with a non-zero proposed update (lr * normalised dW)
    stalled: Any = 0  # ... whose stored weight nevertheless did not change
    intended: Any = 0.0  # sum of |lr * dW| proposed (before rounding)
    stalled_mass: Any = 0.0  # ... of it on stalled synapses
    applied: Any = 0.0  # sum of |W_new - W_old| actually stored
    datapath_bits: int = 0  # widest integer intermediate seen (integer engine only)

    def record_overflow(self, role: str, numel: int, below: torch.Tensor, above: torch.Tensor) -> None:
        self.elements[role] += int(numel)
        self.below[role] = self.below[role] + below
        self.above[role] = self.above[role] + above

    def record_step(self, intended: torch.Tensor, unchanged: torch.Tensor, applied: torch.Tensor) -> None:
        """One update of the layer.

        `intended`: |lr * dW| per synapse before rounding; `unchanged`: bool mask of weights that
        kept their value (overwritten); `applied`: sum of |W_new - W_old| (0-dim).
        """
        proposed = intended != 0
        stalled = unchanged.logical_and_(proposed)
        self.record_step_sums(proposed.sum(), stalled.sum(), intended.sum(), (intended * stalled).sum(), applied)

    def record_step_sums(self, proposed: Any, stalled: Any, intended: torch.Tensor, stalled_mass: torch.Tensor,
                         applied: torch.Tensor) -> None:
        """The same update from its five sums, for an engine that forms the per-synapse terms itself:
        the counts of proposed and of stalled synapses, and the sums of |lr dW|, of |lr dW| on the
        stalled ones, and of |W_new - W_old|."""
        self.sampled_steps += 1
        self.proposed = self.proposed + proposed
        self.stalled = self.stalled + stalled
        self.intended = self.intended + intended
        self.stalled_mass = self.stalled_mass + stalled_mass
        self.applied = self.applied + applied

    def to_dict(self) -> dict[str, Any]:
        saturation = {}
        for role in ROLES:
            n = self.elements[role]
            if n == 0:
                continue
            lo, hi = int(self.below[role]), int(self.above[role])
            saturation[role] = {"below": lo, "above": hi, "elements": n, "fraction": (lo + hi) / n}
        proposed, stalled = int(self.proposed), int(self.stalled)
        intended = float(self.intended)
        out: dict[str, Any] = {
            "layer": self.index,
            "steps": self.steps,
            "sampled_steps": self.sampled_steps,
            "saturation": saturation,
            "proposed_updates": proposed,
            "stalled_updates": stalled,
            "stalled_fraction": stalled / proposed if proposed else 0.0,
            # the share of the intended |change| that fell on stalled synapses, and the ratio of the
            # stored |change| to the intended one (about 1 when rounding is unbiased, 0 when frozen)
            "stalled_mass_fraction": float(self.stalled_mass) / intended if intended else 0.0,
            "update_transfer": float(self.applied) / intended if intended else 0.0,
        }
        if self.datapath_bits:
            out["datapath_bits"] = self.datapath_bits
        return out


def weight_histogram(w: torch.Tensor, fmt: NumberFormat | None = None, bins: int = 64) -> dict[str, Any]:
    """Histogram of a layer's weights.

    For formats of at most 8 bits, one bin per representable code (so "all weights sit on three
    codes" is visible); otherwise `bins` equal bins between the smallest and largest weight.
    """
    w = w.detach().double().flatten().cpu()
    out: dict[str, Any] = {"min": float(w.min()), "max": float(w.max()), "mean_abs": float(w.abs().mean())}
    if fmt is not None and not fmt.is_float and fmt.bits <= 8:
        from .rounding import quantize_codes

        quantized = quantize_codes(w, fmt)  # the values are representable: this recovers their codes
        codes, exponent = quantized.codes, quantized.exponent
        # clamp: a code outside the format (a bug upstream) must not end a finished run in bincount
        counts = torch.bincount((codes.clamp(fmt.qmin, fmt.qmax) - fmt.qmin).long(), minlength=fmt.qmax - fmt.qmin + 1)
        out.update(kind="codes", first_code=fmt.qmin, step=2.0**exponent, counts=counts.tolist(),
                   distinct_codes=int((counts > 0).sum()))
    else:
        lo, hi = out["min"], out["max"]
        if hi <= lo:
            hi = lo + 1e-12
        counts = torch.histc(w, bins=bins, min=lo, max=hi)
        out.update(kind="bins", edges=torch.linspace(lo, hi, bins + 1).tolist(), counts=[int(c) for c in counts.tolist()],
                   distinct_values=int(torch.unique(w).numel()))
    return out
