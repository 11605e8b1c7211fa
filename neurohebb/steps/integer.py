"""Integer engine: the quantised SoftHebb step with int64 codes, shifts and saturations.

Why a second engine: it is the bit-accurate model of a chip's learning engine -- weights, traces
and updates are integers with a binary exponent; products and accumulations are integer
multiply-adds; every change of precision is a rounding right shift (:func:`shift_round`) and a
saturation. The fake-quant engine must agree with it exactly (see tests), which is what makes
the fast engine's sweep results trustworthy. The sequence is documented in :mod:`.datapath`.

Float enters only where the datapath says it does: the input arrives as float and the soft-WTA
is evaluated in float64 (a neuron's non-linearity), both then rounded to their formats; the
per-neuron learning rate is computed from the exact weights in float64 and rounded; and the
``norm=max`` division is one float64 IEEE division of exact operands.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, NeurohebbError
from .datapath import DatapathStep, LayerState, learning_rate, post_activity
from ..precision.policy import ROLES
from ..precision.rounding import apply_overflow, quantize_codes, shift_round

I64 = torch.int64
F64 = torch.float64
MAX_BITS = 62  # magnitude bits an int64 intermediate may use


@dataclass
class Fx:
    """A fixed-point tensor: value = codes * 2**exp (codes int64)."""

    codes: torch.Tensor
    exp: int

    def values(self) -> torch.Tensor:
        return self.codes.to(F64) * 2.0**self.exp

    def max_abs_code(self) -> int:
        return int(self.codes.abs().max()) if self.codes.numel() else 0


def _bits(n: int) -> int:
    return int(n).bit_length()


def _shared_exponent(max_code: int, exp: int, qmax: int) -> int:
    """Smallest e with max_code * 2**exp <= qmax * 2**e, in exact integer arithmetic."""
    if max_code == 0:
        return 0
    e = exp + _bits(max_code) - _bits(qmax)  # within one of the answer
    while not _fits(max_code, exp, qmax, e):
        e += 1
    while _fits(max_code, exp, qmax, e - 1):
        e -= 1
    return e


def _fits(max_code: int, exp: int, qmax: int, e: int) -> bool:
    d = exp - e
    return (max_code << d) <= qmax if d >= 0 else max_code <= (qmax << -d)


class IntegerEngine(DatapathStep):
    """Runs the datapath in int64 arithmetic; every role must be a fixed or shared-exponent format."""

    mode = "integer"

    def __init__(self, policy=None, seed: int = 0, device="cpu", stats_every: int = 1):
        super().__init__(policy, seed, device, stats_every)
        floats = [r for r in ROLES if self.policy.spec(r).is_float]
        if floats:
            raise ConfigError(
                f"the integer engine needs every role quantised; {', '.join(floats)} "
                f"{'is' if len(floats) == 1 else 'are'} float32 (give e.g. input=s12.8, post=s16.15, lr=u16.16)"
            )

    # -- rounding points --------------------------------------------------------------------------
    def _from_float(self, state: LayerState, role: str, t: torch.Tensor) -> Fx:
        """Q_role of a float-computed tensor (input, post, lr, max-normalised update)."""
        spec = self.policy.spec(role)
        q = quantize_codes(t, spec.fmt, spec.rounding, spec.overflow, self.generator)
        state.stats.record_overflow(role, t.numel(), q.n_below, q.n_above)
        return Fx(q.codes.to(I64), q.exponent)

    def _requantize(self, state: LayerState, role: str, v: Fx) -> Fx:
        """Q_role of an integer intermediate: a rounding right shift, then saturate or wrap."""
        spec = self.policy.spec(role)
        fmt = spec.fmt
        target = _shared_exponent(v.max_abs_code(), v.exp, fmt.qmax) if fmt.kind == "shared_exp" else -fmt.frac_bits
        codes = shift_round(v.codes, target - v.exp, spec.rounding, self.generator)
        codes, below, above = apply_overflow(codes, fmt, spec.overflow)
        state.stats.record_overflow(role, v.codes.numel(), below, above)
        return Fx(codes, target)

    def _guard(self, state: LayerState, bits: int, what: str) -> None:
        state.stats.datapath_bits = max(state.stats.datapath_bits, bits)
        if bits > MAX_BITS:
            raise NeurohebbError(
                f"integer datapath overflow in {what}: needs {bits} bits, int64 holds {MAX_BITS}; "
                "use fewer weight/input/post bits"
            )

    def _align(self, state: LayerState, a: Fx, b: Fx, what: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Codes of a and b on their common (finer) grid: exact left shifts, checked for room."""
        e = min(a.exp, b.exp)
        bits = max(_bits(a.max_abs_code()) + a.exp - e, _bits(b.max_abs_code()) + b.exp - e) + 1
        self._guard(state, bits, what)
        return a.codes << (a.exp - e), b.codes << (b.exp - e), e

    # -- engine hooks ---------------------------------------------------------------------------
    def _initial_weight(self, state: LayerState, w: torch.Tensor) -> Fx:
        return self._from_float(state, "weight", w.to(self.device, F64))

    def _values(self, state: LayerState) -> torch.Tensor:
        return state.weight.values()

    def _step(self, state: LayerState, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        cfg, w = layer.cfg, state.weight
        conv = layer.is_conv
        xq = self._from_float(state, "input", layer.pre(x.to(self.device, F64)))
        k = w.codes.shape[0]
        w_flat = w.codes.reshape(k, -1)
        if conv:
            kh, kwid = w.codes.shape[-2:]
            # im2col of integer codes: a pure data movement (exact in float64 below 2**53)
            patches = F.unfold(xq.codes.to(F64), (kh, kwid), stride=cfg.stride).to(I64)  # [B, I, P]
            oh = (xq.codes.shape[2] - kh) // cfg.stride + 1
            ow = (xq.codes.shape[3] - kwid) // cfg.stride + 1
        else:
            patches = xq.codes.unsqueeze(2)  # [B, I, 1]
        fan_in, positions = patches.shape[1], patches.shape[0] * patches.shape[2]
        self._guard(state, _bits(w.max_abs_code()) + _bits(xq.max_abs_code()) + _bits(fan_in), "u = W x")
        u_codes = torch.einsum("ki,bip->bkp", w_flat, patches)  # [B, K, P]
        u = Fx(u_codes, w.exp + xq.exp)
        u_float = u.values().reshape(-1, k, oh, ow) if conv else u.values().reshape(-1, k)
        yq = self._from_float(state, "post", post_activity(u_float, cfg))
        y_codes = yq.codes.reshape(yq.codes.shape[0], k, -1)  # [B, K, P]

        self._guard(state, _bits(yq.max_abs_code()) + _bits(xq.max_abs_code()) + _bits(positions), "sum y x")
        hebb = Fx(torch.einsum("bkp,bip->ki", y_codes, patches), yq.exp + xq.exp)
        self._guard(state, _bits(yq.max_abs_code()) + _bits(u.max_abs_code()) + _bits(positions), "sum y u")
        c = Fx((y_codes * u_codes).sum(dim=(0, 2)), yq.exp + u.exp)
        c = Fx(shift_round(c.codes, hebb.exp - c.exp, "nearest"), hebb.exp)  # decay register
        self._guard(state, _bits(c.max_abs_code()) + _bits(w.max_abs_code()), "c * W")
        decay = Fx(c.codes[:, None] * w_flat, c.exp + w.exp)
        h_codes, d_codes, e = self._align(state, hebb, decay, "H - c W")
        dw = Fx(h_codes - d_codes, e)

        if cfg.normalize_update and dw.max_abs_code() > 0:
            if self.policy.norm == "max":
                # one IEEE division of exact operands (the 53-bit divider of the datapath)
                dw_norm = dw.values() / float(dw.max_abs_code() * 2.0**dw.exp)
                dwq = self._from_float(state, "update", dw_norm)
            else:
                s = dw.exp + (dw.max_abs_code() - 1).bit_length()  # 2**s >= max|dW|, smallest
                dw_norm = Fx(dw.codes, dw.exp - s).values()
                dwq = self._requantize(state, "update", Fx(dw.codes, dw.exp - s))
        else:  # no normalisation, or an all-zero update
            dw_norm = dw.values()
            dwq = self._requantize(state, "update", dw)
        lrq = self._from_float(state, "lr", learning_rate(w.values(), cfg))
        self._guard(state, _bits(lrq.max_abs_code()) + _bits(dwq.max_abs_code()), "lr * dW")
        step = Fx(lrq.codes[:, None] * dwq.codes, lrq.exp + dwq.exp)
        w_codes, s_codes, e = self._align(state, Fx(w_flat, w.exp), step, "W + lr dW")
        w_new = self._requantize(state, "weight", Fx(w_codes + s_codes, e))
        if self.sampling(state):
            old_aligned, new_aligned, e_cmp = self._align(state, Fx(w_flat, w.exp), w_new, "the stall check")
            intended = dw_norm.abs().mul_(lrq.values().abs()[:, None])  # diagnostics only (float)
            applied = (new_aligned - old_aligned).abs().sum().to(F64) * 2.0**e_cmp
            state.stats.record_step(intended, old_aligned == new_aligned, applied)
        state.weight = Fx(w_new.codes.reshape(w.codes.shape), w_new.exp)
        return u_float
