"""Fake-quant engine: the quantised SoftHebb step on float64 tensors that hold exact values.

Why float64: products and sums of fixed-point values are exact in float64 while they need at
most 53 significant bits, so ordinary (GPU-friendly) matmuls and convolutions give the same
numbers an integer datapath would; the integer engine reports the widest intermediate it needed
(``datapath_bits``) so that condition can be checked. The sequence of operations is
documented in :mod:`.datapath`.

Speed without changing a bit: the weight-sized tensors (dW, the next weights, the stochastic
draws, |dW| for the statistics) live in per-layer buffers; stochastic rounding takes the
short form of :func:`~neurohebb.precision.rounding.stochastic_codes`; the normalised update's
proven bound ``|dW| <= 1`` replaces its overflow scan; the update's exponent is folded into
the [K] learning rates. Why the products stay float64: a float32 GEMM is exact only while
every partial sum is an integer number of ``2**(e_x + e_w)`` below ``2**24``, i.e. when
``max_b sum_i |x_code[b,i]| * max|w_code| < 2**24``. With a float input (the sweep's default
point: 24-bit inputs times 8-bit weights) no product fits; with ``input=u8.8`` and
``weight=s12.11`` on MNIST the bound is above 2**25; and the correlation ``sum_b y x`` with 16-bit
post codes exceeds it for any batch. Only a few narrow policies would qualify, for one of the
two products, so the engine keeps one exact float64 path.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..precision.rounding import quantize_codes, round_scaled
from .datapath import DatapathStep, LayerState, learning_rate, post_activity, pow2_shift

F64 = torch.float64


class FakeQuantEngine(DatapathStep):
    """Runs the datapath with float64 tensors; float32 roles stay unrounded."""

    mode = "fake-quant"

    def _round(self, state: LayerState, role: str, t: torch.Tensor, inplace: bool = False,
               max_abs_bound: float | None = None, scale: bool = True) -> tuple[torch.Tensor, int | None]:
        """Q_role: exact values (float64) and their exponent (None for a float role).

        ``inplace=True`` hands a float64 ``t`` over to be overwritten (hot path: no allocation);
        weight-shaped roles draw their stochastic-rounding noise into the layer's scratch buffer.
        ``scale=False`` returns the integer codes instead of the values (``codes * 2**exponent``).
        """
        spec = self.policy.spec(role)
        if spec.is_float:
            return t.to(F64), None
        weight_shaped = t.shape == state.layer.weight.shape
        draws = self._buffer(state, "draws") if spec.rounding == "stochastic" and weight_shaped else None
        q = quantize_codes(t, spec.fmt, spec.rounding, spec.overflow, self.generator, inplace=inplace, draws=draws,
                           max_abs_bound=max_abs_bound)
        state.stats.record_overflow(role, t.numel(), q.n_below, q.n_above)
        if not scale:
            return q.codes, q.exponent
        return q.codes.mul_(2.0**q.exponent), q.exponent  # codes -> values in place (exact)

    @staticmethod
    def _weight_step(w: torch.Tensor, dw: torch.Tensor, e_update: int | None, lr: torch.Tensor,
                     out: torch.Tensor) -> torch.Tensor:
        """``W + lr * dW`` into ``out``, with ``dW = codes * 2**e_update`` (``dw`` holds the codes;
        values when ``e_update`` is None).

        The exponent goes into the [K] learning rates instead of a weight-sized pass over the
        codes: ``codes * (lr 2**e)`` and ``(codes 2**e) * lr`` are the same real number, so they
        round to the same product, provided ``lr 2**e`` is exact (checked: no subnormal rates).
        """
        if e_update is not None:
            lr_scaled = lr * 2.0**e_update
            if e_update >= -1000 and torch.equal(lr_scaled * 2.0**-e_update, lr):
                lr = lr_scaled
            else:
                dw = dw.mul_(2.0**e_update)
        return torch.addcmul(w, dw, lr, out=out)

    def _buffer(self, state: LayerState, name: str) -> torch.Tensor:
        """A weight-shaped float64 buffer of the layer, allocated once (fresh weight-sized
        tensors every step cost page faults and allocator time comparable to the arithmetic)."""
        buf = state.buffers.get(name)
        if buf is None:
            buf = state.buffers[name] = torch.empty(state.layer.weight.shape, dtype=F64, device=self.device)
        return buf

    def _initial_weight(self, state: LayerState, w: torch.Tensor) -> torch.Tensor:
        return self._round(state, "weight", w.to(self.device, F64, copy=True))[0]

    def _values(self, state: LayerState) -> torch.Tensor:
        return state.weight

    def _step(self, state: LayerState, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        cfg, w = layer.cfg, state.weight
        xq, ex = self._round(state, "input", layer.pre(x.to(self.device, F64)))
        u = layer.weighted_input(xq, w)
        yq, ey = self._round(state, "post", post_activity(u, cfg))
        hebb = layer.correlation(xq, yq, out=self._buffer(state, "hebb"))  # sum_b,p y x: exact
        c = (yq * u).sum(dim=layer.sample_dims)
        if ex is not None and ey is not None:  # step 5: the decay register, on the grid of H
            c = round_scaled(c * 2.0 ** -(ex + ey), "nearest") * 2.0 ** (ex + ey)
        shape = (-1,) + (1,) * (w.dim() - 1)
        # dW = H - c W in place (hebb is ours); exact, so the evaluation order does not matter
        dw = hebb.addcmul_(c.reshape(shape), w, value=-1.0)
        bound = None  # a proven bound on max|dW| after normalisation
        if cfg.normalize_update:
            lo, hi = torch.aminmax(dw)
            max_abs = max(-float(lo), float(hi))
            if max_abs > 0:
                dw = dw.div_(max_abs) if self.policy.norm == "max" else dw.mul_(2.0 ** -pow2_shift(max_abs))
                # |dW| / max|dW| rounds to at most 1; the pow2 shift leaves |dW| <= 1 as well
                bound = 1.0 if math.isfinite(max_abs) else None
        sample = self.sampling(state)
        # |dW| before the rounding overwrites dw
        dw_abs = torch.abs(dw, out=self._buffer(state, "abs")) if sample else None
        dwq, e_update = self._round(state, "update", dw, inplace=True, max_abs_bound=bound, scale=False)
        lrq, _ = self._round(state, "lr", learning_rate(w, cfg))
        # W + lr dW: written into the spare weight buffer, which then swaps with the current weights
        spare = self._buffer(state, "spare")
        w_new, _ = self._round(state, "weight", self._weight_step(w, dwq, e_update, lrq.reshape(shape), spare),
                               inplace=True)
        if sample:
            intended = dw_abs.mul_(lrq.abs().reshape(shape))
            # dwq is spent: its buffer takes |W_new - W| (the same subtraction, no allocation)
            state.stats.record_step(intended, torch.eq(w_new, w), torch.sub(w_new, w, out=dwq).abs_().sum())
        if w_new.data_ptr() == spare.data_ptr():
            state.buffers["spare"] = w
        state.weight = w_new
        return u
