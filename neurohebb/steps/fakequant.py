"""Fake-quant engine: the quantised SoftHebb step on float64 tensors that hold exact values.

Why float64: products and sums of fixed-point values are exact in float64 while they need at
most 53 significant bits, so ordinary (GPU-friendly) matmuls and convolutions give the same
numbers an integer datapath would; the integer engine reports the widest intermediate it needed
(``datapath_bits``) so that condition can be checked. The sequence of operations is
documented in :mod:`.datapath`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..precision.rounding import quantize_codes, round_scaled
from .datapath import DatapathStep, LayerState, learning_rate, post_activity, pow2_shift

F64 = torch.float64


class FakeQuantEngine(DatapathStep):
    """Runs the datapath with float64 tensors; float32 roles stay unrounded."""

    mode = "fake-quant"

    def _round(self, state: LayerState, role: str, t: torch.Tensor, inplace: bool = False) -> tuple[torch.Tensor, int | None]:
        """Q_role: exact values (float64) and their exponent (None for a float role).

        ``inplace=True`` hands a float64 ``t`` over to be overwritten (hot path: no allocation).
        """
        spec = self.policy.spec(role)
        if spec.is_float:
            return t.to(F64), None
        q = quantize_codes(t, spec.fmt, spec.rounding, spec.overflow, self.generator, inplace=inplace)
        state.stats.record_overflow(role, t.numel(), q.n_below, q.n_above)
        return q.codes.mul_(2.0**q.exponent), q.exponent  # codes -> values in place (exact)

    def _initial_weight(self, state: LayerState, w: torch.Tensor) -> torch.Tensor:
        return self._round(state, "weight", w.to(self.device, F64, copy=True))[0]

    def _values(self, state: LayerState) -> torch.Tensor:
        return state.weight

    def _step(self, state: LayerState, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        cfg, w = layer.cfg, state.weight
        xq, ex = self._round(state, "input", layer.pre(x.to(self.device, F64)))
        u = layer.weighted_input(xq, w)
        yq, ey = self._round(state, "post", post_activity(u, cfg))
        hebb = layer.correlation(xq, yq)  # sum over batch (and positions) of y x: exact
        c = (yq * u).sum(dim=layer.sample_dims)
        if ex is not None and ey is not None:  # step 5: the decay register, on the grid of H
            c = round_scaled(c * 2.0 ** -(ex + ey), "nearest") * 2.0 ** (ex + ey)
        shape = (-1,) + (1,) * (w.dim() - 1)
        # dW = H - c W in place (hebb is ours); exact, so the evaluation order does not matter
        dw = hebb.addcmul_(c.reshape(shape), w, value=-1.0)
        if cfg.normalize_update:
            lo, hi = torch.aminmax(dw)
            max_abs = max(-float(lo), float(hi))
            if max_abs > 0:
                dw = dw.div_(max_abs) if self.policy.norm == "max" else dw.mul_(2.0 ** -pow2_shift(max_abs))
        sample = self.sampling(state)
        dw_abs = dw.abs() if sample else None  # |dW| before the rounding overwrites dw
        dwq, _ = self._round(state, "update", dw, inplace=True)
        lrq, _ = self._round(state, "lr", learning_rate(w, cfg))
        # W + lr dW: the product is exact, so one fused multiply-add gives the same exact sum
        w_new, _ = self._round(state, "weight", torch.addcmul(w, dwq, lrq.reshape(shape)), inplace=True)
        if sample:
            intended = dw_abs.mul_(lrq.abs().reshape(shape))
            state.stats.record_step(intended, torch.eq(w_new, w), (w_new - w).abs_().sum())
        state.weight = w_new
        return u
