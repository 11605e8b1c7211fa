"""The float32 SoftHebb step of a linear layer as one compiled call (optional: needs numba).

Why: at mnist-mlp's batch of 10 every weight-sized pass is a trip through the cache for 6.3 MB,
and torch's step makes six of them (x W^T, the correlation, the decay, the norms, the max, the
update), one parallel region each, with W and dW leaving the cache between them. Here the step
is four parallel loops over blocks of rows of W, on numba's threads alone:

1. u = x W^T and the row norms ||W_k|| (one read of W: a block of rows stays in L1/L2 for
   both; the register-blocked products of `blocked_products`, shared with the compiled readout)
2. the soft WTA y = softmax(t u) per sample, tiny values flushed (`rules.flush_tiny_`), and
   c_k = sum_b y_bk u_bk (small: B x K)
3. dW = y^T x - c W into a per-layer buffer, with each row's max |dW| taken from the float bit
   patterns while the row is in L1 (an integer max vectorises where a float max does not)
4. W += lr_k dW / max|dW| (the division only with `normalize_update`), the rate lr_k computed
   per row from the norms of step 1, the max from step 3

It computes the same rule as :class:`~neurohebb.steps.float32.Float32Step`, in float32, with
sums in another order (vectorised dot products): one step agrees with torch's to float32
rounding (`tests/test_linear_kernels.py`), not bit for bit. A row's arithmetic does not depend
on which thread runs it, so results do not change with the thread count.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

try:  # numba is optional: without it the float32 step keeps its torch path
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None
else:
    from ..blocked_products import FAST as _FAST, axpy as _axpy, axpy_4x5 as _axpy_4x5, dot as _dot, dots_2x5 as _dots_2x5

#: rows of W per parallel task: 20 x 784 float32 (63 KB) stays in L1/L2 while a loop body reads it
ROWS = 20
#: post-synaptic values below this count as zero (as `rules.flush_tiny_`)
TINY = 2.0 ** -100


if njit is not None:

    @njit(cache=True, fastmath=_FAST)
    def _sum_squares(w):
        s = np.float32(0.0)
        for j in range(w.size):
            s += w[j] * w[j]
        return s

    @njit(cache=True, fastmath=_FAST)
    def _scaled(a, src, dst):
        for j in range(src.size):
            dst[j] = a * src[j]

    @njit(cache=True)
    def _abs_max_bits(bits):
        """max |v| of a float32 row, as the int32 bit pattern (order-preserving for |v|; a NaN
        compares above infinity, so it reaches the rate and `_check_weights` sees it)."""
        m = np.int32(0)
        for j in range(bits.size):
            v = bits[j] & np.int32(0x7FFFFFFF)
            m = v if v > m else m
        return m

    @njit(cache=True, fastmath=_FAST)
    def _forward_block(x, w, u, norms, lo, hi):
        batch = x.shape[0]
        for k in range(lo, hi):
            norms[k] = math.sqrt(_sum_squares(w[k]))
        k = lo
        while k + 5 <= hi:
            b = 0
            while b + 2 <= batch:
                _dots_2x5(x[b], x[b + 1], w[k], w[k + 1], w[k + 2], w[k + 3], w[k + 4], u, b, k)
                b += 2
            if b < batch:
                for r in range(k, k + 5):
                    u[b, r] = _dot(x[b], w[r])
            k += 5
        for r in range(k, hi):
            for b in range(batch):
                u[b, r] = _dot(x[b], w[r])

    @njit(cache=True, fastmath=_FAST)
    def _soft_wta_row(u, t_invert, tiny, y):
        """y = softmax(t_invert u) of one sample, values below `tiny` set to zero."""
        top = np.float32(-np.inf)
        for k in range(u.size):
            v = np.float32(t_invert * u[k])
            top = v if v > top else top
        total = np.float32(0.0)
        for k in range(u.size):
            e = np.exp(np.float32(t_invert * u[k]) - top)
            y[k] = e
            total += e
        for k in range(u.size):
            v = y[k] / total
            y[k] = v if v >= tiny else np.float32(0.0)

    @njit(cache=True, fastmath=_FAST)
    def _hebbian_block(x, y, c, w, dw, row_max, lo, hi):
        batch = x.shape[0]
        for k in range(lo, hi):
            _scaled(-c[k], w[k], dw[k])
        b = 0
        while b + 4 <= batch:
            k = lo
            while k + 5 <= hi:
                _axpy_4x5(y, b, k, x[b], x[b + 1], x[b + 2], x[b + 3], dw[k], dw[k + 1], dw[k + 2], dw[k + 3], dw[k + 4])
                k += 5
            for r in range(k, hi):
                for i in range(4):
                    _axpy(y[b + i, r], x[b + i], dw[r])
            b += 4
        for s in range(b, batch):
            for r in range(lo, hi):
                _axpy(y[s, r], x[s], dw[r])
        for k in range(lo, hi):
            row_max[k] = _abs_max_bits(dw[k].view(np.int32))

    @njit(cache=True, fastmath={"contract"})
    def _update_block(w, dw, norms, lr, power, adaptive, scale, lo, hi):
        for k in range(lo, hi):
            rate = np.float32(lr)
            if adaptive:
                rate = np.float32(lr) * (np.abs(norms[k] - np.float32(1.0)) + np.float32(1e-10)) ** np.float32(power)
            _axpy(rate / scale, dw[k], w[k])

    @njit(cache=True, parallel=True)
    def _step(x, w, u, y, c, dw, norms, row_max, t_invert, tiny, lr, power, adaptive, normalize):
        """The whole step in place on `w`; u, y [B, K], c, norms, row_max [K] and dw [K, I] are
        outputs and scratch."""
        batch, rows = x.shape[0], w.shape[0]
        blocks = (rows + ROWS - 1) // ROWS
        for blk in prange(blocks):
            _forward_block(x, w, u, norms, blk * ROWS, min(rows, blk * ROWS + ROWS))
        for b in prange(batch):
            _soft_wta_row(u[b], t_invert, tiny, y[b])
        for k in range(rows):
            c[k] = np.float32(0.0)
        for b in range(batch):  # samples summed in order, as torch's sum over dim 0
            for k in range(rows):
                c[k] += y[b, k] * u[b, k]
        for blk in prange(blocks):
            _hebbian_block(x, y, c, w, dw, row_max, blk * ROWS, min(rows, blk * ROWS + ROWS))
        scale = np.float32(1.0)
        if normalize:
            top = np.int32(0)
            for k in range(rows):
                top = row_max[k] if row_max[k] > top else top
            bits = np.empty(1, np.int32)
            bits[0] = top
            scale = bits.view(np.float32)[0] + np.float32(1e-30)  # max |dW| + 1e-30, as the torch step
        for blk in prange(blocks):
            _update_block(w, dw, norms, lr, power, adaptive, scale, blk * ROWS, min(rows, blk * ROWS + ROWS))


class CompiledLinearStep:
    """One linear layer's compiled step and the buffers it reuses (dW, norms, row maxima)."""

    def __init__(self) -> None:
        self._dw: np.ndarray | None = None
        self._rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(self, x: torch.Tensor, w: torch.Tensor, cfg, flush_tiny: bool = True) -> torch.Tensor:
        """Apply one SoftHebb step to `w` (float32, contiguous, on the CPU) for inputs `x` [B, I];
        returns u = x W^T [B, K] of the weights before the step. `cfg`: the layer's config."""
        from .fused_tail import match_threads

        match_threads()  # torch's thread count, as it is now (a sweep point may pin it to one)
        wn = w.numpy()
        xn = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        rows, width = wn.shape
        if self._dw is None or self._dw.shape != wn.shape:
            self._dw = np.empty_like(wn)
            self._rows = (np.empty(rows, np.float32), np.empty(rows, np.float32), np.empty(rows, np.int32))
        c, norms, row_max = self._rows
        u = np.empty((xn.shape[0], rows), np.float32)
        y = np.empty_like(u)
        _step(xn, wn, u, y, c, self._dw, norms, row_max, np.float32(cfg.t_invert),
              np.float32(TINY if flush_tiny else 0.0), float(cfg.lr), float(cfg.lr_power),
              cfg.lr_schedule == "norm-adaptive", bool(cfg.normalize_update))
        return torch.from_numpy(u)


def supports(layer) -> bool:
    """Whether the compiled step computes what the torch step would for this layer: a linear
    SoftHebb layer without a bias, its float32 weights contiguous on the CPU."""
    w = layer.weight
    return (not layer.is_conv and layer.cfg.rule == "softhebb" and layer.bias is None
            and w.dtype == torch.float32 and w.device.type == "cpu" and w.is_contiguous())


def _closed_form_ok() -> bool:
    """Two neurons, one sample x = (1, 0, 0), W = [[2, 0, 0], [0, 0, 1]], t = 1, constant rate 1,
    no normalisation: u = (2, 0), y = softmax(u), c = (2 y0, 0), so
    W0 += y0 (x - 2 W0) = (2 - 3 y0, 0, 0) and W1 += y1 x = (y1, 0, 1)."""
    from types import SimpleNamespace

    cfg = SimpleNamespace(t_invert=1.0, lr=1.0, lr_power=1.0, lr_schedule="constant", normalize_update=False)
    w = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    u = CompiledLinearStep()(torch.tensor([[1.0, 0.0, 0.0]]), w, cfg)
    y0 = 1.0 / (1.0 + math.exp(-2.0))
    want = torch.tensor([[2.0 - 3.0 * y0, 0.0, 0.0], [1.0 - y0, 0.0, 1.0]])
    return bool(torch.equal(u, torch.tensor([[2.0, 0.0]])) and torch.allclose(w, want, rtol=1e-6, atol=1e-6))


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why the compiled step cannot run here (None: it can)."""
    from ..compiled_check import unavailable_reason as reason

    return reason("the compiled linear step", _closed_form_ok)


def available() -> bool:
    return unavailable_reason() is None
