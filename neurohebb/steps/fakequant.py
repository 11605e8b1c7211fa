"""Fake-quant engine: the quantised SoftHebb step on float64 tensors that hold exact values.

Why float64: products and sums of fixed-point values are exact in float64 while they need at
most 53 significant bits, so ordinary (GPU-friendly) matmuls and convolutions give the same
numbers an integer datapath would; the integer engine reports the widest intermediate it needed
(``datapath_bits``) so that condition can be checked. The sequence of operations is
documented in :mod:`.datapath`.

Speed without changing a bit: where numba is installed, steps 6-10 and a sampled step's
statistics terms run in :mod:`.fused_tail`'s compiled passes (they halve a fake-quant epoch of
mnist-mlp), with the torch path below as the fallback and the reference they are tested against.
On that torch path, the weight-sized tensors (dW, the next weights, the stochastic
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

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..precision.rounding import quantize_codes, round_scaled, shared_exponent
from . import fused_tail
from .datapath import DatapathStep, LayerState, learning_rate, post_activity, pow2_shift

F64 = torch.float64


class FakeQuantEngine(DatapathStep):
    """Runs the datapath with float64 tensors; float32 roles stay unrounded."""

    mode = "fake-quant"

    def __init__(self, policy=None, seed: int = 0, device: str | torch.device = "cpu", stats_every: int = 1,
                 fused: bool | None = None):
        """``fused``: run the weight-sized tail in :mod:`.fused_tail`'s kernels (None: wherever they
        are available; False: the torch path throughout, e.g. to compare the two)."""
        super().__init__(policy, seed, device, stats_every)
        if fused and not fused_tail.available():
            raise ConfigError(f"the fused fake-quant kernels are not available here: {fused_tail.unavailable_reason()}")
        self.fused = fused_tail.available() if fused is None else bool(fused)
        self._covered: dict[int, bool] = {}  # per layer: does the policy fall in the kernels' cases
        self._copied: set[int] = set()  # layers whose float32 weights a kernel already wrote
        self._scratch: dict[int, fused_tail.Scratch] = {}

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
        lr, code_scale = _folded_rate(lr, e_update)
        if code_scale != 1.0:
            dw = dw.mul_(code_scale)
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
        if self._fused_covers(state):
            scratch = self._scratch[id(layer)]
            c = c.contiguous()
            fused_tail.match_threads()
            fused_tail._decay_extent(_rows(hebb), c.numpy(), _rows(w), scratch.extent)
            lo, hi, finite = scratch.span()
            if finite:
                self._fused_rest(state, cfg, w, hebb, c, lo, hi, scratch)
                return u
            # NaN or inf in dW: the torch path owns those cases
        # dW = H - c W in place (hebb is ours); exact, so the evaluation order does not matter
        self._rest(state, cfg, w, hebb.addcmul_(c.reshape(_per_row(w)), w, value=-1.0))
        return u

    def _rest(self, state: LayerState, cfg, w: torch.Tensor, dw: torch.Tensor) -> None:
        """Steps 7-10 on torch tensors."""
        shape = _per_row(w)
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
        self._finish(state, w, w_new, dwq, dw_abs, lrq, spare)

    def _finish(self, state: LayerState, w: torch.Tensor, w_new: torch.Tensor, dwq: torch.Tensor,
                dw_abs: torch.Tensor | None, lrq: torch.Tensor, spare: torch.Tensor) -> None:
        """Diagnostics of a sampled step, then the new weights take the place of the old."""
        if dw_abs is not None:
            intended = dw_abs.mul_(lrq.abs().reshape(_per_row(w)))
            # dwq is spent: its buffer takes |W_new - W| (the same subtraction, no allocation)
            state.stats.record_step(intended, torch.eq(w_new, w), torch.sub(w_new, w, out=dwq).abs_().sum())
        if w_new.data_ptr() == spare.data_ptr():
            state.buffers["spare"] = w
        state.weight = w_new

    # -- the compiled tail (:mod:`.fused_tail`) -------------------------------------------------
    def _fused_covers(self, state: LayerState) -> bool:
        """Whether this step's tail can run in the compiled kernels (same numbers, fewer passes)."""
        if not self.fused or self.device.type != "cpu" or self.generator.device.type != "cpu":
            return False
        key = id(state.layer)
        covered = self._covered.get(key)
        if covered is None:
            upd, wgt = self.policy.spec("update"), self.policy.spec("weight")
            weight = state.layer.weight
            covered = (not wgt.is_float and wgt.overflow == "saturate" and wgt.rounding in fused_tail.MODES
                       and (upd.is_float or (upd.overflow == "saturate" and upd.rounding in fused_tail.MODES))
                       and weight.dtype == torch.float32 and weight.is_contiguous())
            self._covered[key] = covered  # the policy and the layer do not change during a run
            if covered:
                stochastic = "stochastic" in (wgt.rounding, None if upd.is_float else upd.rounding)
                self._scratch[key] = fused_tail.Scratch(weight.shape[0], weight[0].numel(), stochastic)
        return bool(covered)

    def _fused_rest(self, state: LayerState, cfg, w: torch.Tensor, dw: torch.Tensor, c: torch.Tensor, lo: float,
                    hi: float, scratch: "fused_tail.Scratch") -> None:
        """Steps 6-10 in the kernels, given H in ``dw`` (overwritten) and dW's min and max."""
        norm, norm_value = fused_tail.NORM_NONE, 0.0
        max_abs = max(-lo, hi)
        if cfg.normalize_update and max_abs > 0:
            if self.policy.norm == "max":
                norm, norm_value = fused_tail.NORM_DIVIDE, max_abs
                lo, hi = lo / max_abs, hi / max_abs  # division by m > 0 is monotonic: dW/m's min and max
            else:
                norm, norm_value = fused_tail.NORM_SHIFT, 2.0 ** -pow2_shift(max_abs)
                lo, hi = lo * norm_value, hi * norm_value
        sample = self.sampling(state)
        upd, wgt, lr_spec = (self.policy.spec(r) for r in ("update", "weight", "lr"))
        twister = fused_tail.TwisterState(self.generator) if scratch.draws.size else None
        if upd.is_float:
            e_update, scale, mode, qmin, qmax = None, 1.0, 0, -math.inf, math.inf
        else:
            e_update = (shared_exponent(max(-lo, hi), upd.fmt) if upd.fmt.kind == "shared_exp"
                        else -upd.fmt.frac_bits)
            scale, mode = 2.0 ** -e_update, fused_tail.MODES[upd.rounding]
            qmin, qmax = float(upd.fmt.qmin), float(upd.fmt.qmax)
            if mode == fused_tail.MODES["stochastic"]:
                twister.draws(scratch.draws)
        # the rate's draws come between the update's and the weights': with them, two kernels
        rate_draws = not lr_spec.is_float and lr_spec.rounding == "stochastic"
        if rate_draws and twister is not None:
            twister.put_back()
        dw_abs = self._buffer(state, "abs") if sample else None
        spare = self._buffer(state, "spare")
        update = (_rows(dw), c.numpy(), norm, norm_value, scale, mode, qmin, qmax, scratch.draws,
                  _rows(dw_abs) if sample else scratch.no_values, sample, scratch.counts, _rows(w))
        if not rate_draws:  # one pass: codes, then W + lr dW
            lrq, _ = self._round(state, "lr", learning_rate(w, cfg))
            lr, code_scale = _folded_rate(lrq, e_update)
            fused_tail._update(*update, code_scale, lr.contiguous().numpy(), _rows(spare), scratch.extent, True)
        else:  # the codes into dw; the sum after the rate's rounding
            fused_tail._update(*update, 1.0, _NO_RATES, scratch.no_values, scratch.extent, False)
        if not upd.is_float:
            state.stats.record_overflow("update", dw.numel(), *scratch.take_counts())
        if rate_draws:
            lrq, _ = self._round(state, "lr", learning_rate(w, cfg))
            if twister is not None:
                twister = fused_tail.TwisterState(self.generator)
            lr, code_scale = _folded_rate(lrq, e_update)
            fused_tail._weight_step(_rows(w), _rows(dw), code_scale, lr.contiguous().numpy(), _rows(spare),
                                    scratch.extent)
        lo, hi, finite = scratch.span()
        if not finite:  # the torch path rounds non-finite weights (its own edge cases)
            if twister is not None:
                twister.put_back()
            w_new, _ = self._round(state, "weight", spare, inplace=True)
            self._finish(state, w, w_new, dw, dw_abs, lrq, spare)
            return
        e_weight = shared_exponent(max(-lo, hi), wgt.fmt) if wgt.fmt.kind == "shared_exp" else -wgt.fmt.frac_bits
        mode = fused_tail.MODES[wgt.rounding]
        if mode == fused_tail.MODES["stochastic"]:
            twister.draws(scratch.draws)
        fused_tail._round_weights(_rows(spare), 2.0 ** -e_weight, 2.0**e_weight, mode, float(wgt.fmt.qmin),
                                  float(wgt.fmt.qmax), scratch.draws, scratch.counts,
                                  state.layer.weight.detach().view(w.shape[0], -1).numpy())
        state.stats.record_overflow("weight", spare.numel(), *scratch.take_counts())
        if twister is not None:
            twister.put_back()
        if sample:  # the statistics' per-synapse terms in one pass; dw (spent) takes |W_new - W|
            masked = self._buffer(state, "masked")
            fused_tail._step_stats(_rows(dw_abs), lrq.abs().contiguous().numpy(), _rows(spare), _rows(w),
                                   _rows(masked), _rows(dw), scratch.counts)
            proposed, stalled = scratch.take_counts()
            state.stats.record_step_sums(proposed, stalled, dw_abs.sum(), masked.sum(), dw.sum())
        self._finish(state, w, spare, dw, None, lrq, spare)
        self._copied.add(id(state.layer))  # the kernel wrote the layer's float32 weights

    def _write_back(self, state: LayerState) -> None:
        if id(state.layer) in self._copied:
            self._copied.discard(id(state.layer))
            return
        super()._write_back(state)


def _folded_rate(lrq: torch.Tensor, e_update: int | None) -> tuple[torch.Tensor, float]:
    """As :meth:`FakeQuantEngine._weight_step`: the update's exponent goes into the [K] rates
    when that is exact (the rates, and 1.0 for the codes), else it scales the codes."""
    if e_update is None:
        return lrq, 1.0
    lr_scaled = lrq * 2.0**e_update
    if e_update >= -1000 and torch.equal(lr_scaled * 2.0**-e_update, lrq):
        return lr_scaled, 1.0
    return lrq, 2.0**e_update


def _per_row(w: torch.Tensor) -> tuple[int, ...]:
    """The shape that broadcasts a [K] vector over W's rows (its neurons)."""
    return (-1,) + (1,) * (w.dim() - 1)


def _rows(t: torch.Tensor) -> np.ndarray:
    """A contiguous float64 tensor as a [rows, rest] NumPy view (no copy) for the kernels."""
    return t.view(t.shape[0], -1).numpy()


_NO_RATES = np.empty(0, np.float64)
