"""The readout's training step in two compiled passes over the batch (optional: needs numba).

Why: the cifar10 readout is 39,100 steps on a 64 x 24,576 batch of cached features. Its two
products (64 x 24,576 by 24,576 x 10 and back) are too skinny for MKL, which reaches ~40 GFLOP/s
on them here: at that rate the products alone take two minutes of the 50 epochs. Around them a
torch step spends as long again on element-wise passes (the gather of the rows, the dropout mask
expanded and multiplied in, Adam's eight `_foreach` operators). These kernels walk the feature
axis in fixed chunks of :data:`CHUNK` features, with a chunk's weights and rows in cache:

1. forward: each row's chunk gathered from the cache with its dropout bit applied (the torch
   path's ``mask * x``: times 2 or 0) into the batch buffer, then its share of every logit, in
   register blocks of 2 rows x 5 classes;
2. the head (serial, tiny): the chunks' shares summed in chunk order, the softmax
   cross-entropy gradient, the bias's Adam step;
3. backward: per chunk, the weight gradient summed over the rows in row order (blocks of 4 rows
   x 5 classes), then Adam's element-wise update of that chunk of the weight and its moments.

A chunk belongs to one thread and the shares are added in chunk order, so the numbers do not
depend on the thread count. The dropout bits are the ones :func:`neurohebb.readout.half_dropout`
draws from torch's generator (the same masks, every later draw unchanged). The sums run in
another order than MKL's, so this step agrees with the torch path to float32 rounding, not bit
for bit; `tests/test_readout.py` holds both to `torch.optim.Adam`.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

try:  # numba is optional: without it the readout keeps its torch path
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None
else:
    from .blocked_products import axpy as _axpy, axpy_4x5 as _axpy_4x5, dot as _dot, dots_2x5 as _dots_2x5

#: features per chunk: a chunk of the batch (64 x 1,024 float32, 256 KB) stays in the L2 cache
CHUNK = 1024


if njit is not None:

    @njit(cache=True, inline="always")
    def _drop_into(src, bits, first, dst):
        """dst = src times 2 or 0: the dropout bit of batch element ``first + j`` is bit
        ``(first + j) % 8`` of byte ``(first + j) // 8``; no bits: a copy. (Slices indexed from
        0: an offset index would make numba check for negative indices and block vectorising.)"""
        n = src.size
        if bits.size == 0:
            for j in range(n):
                dst[j] = src[j]
        elif first % 8 == 0:  # whole bytes: eight elements a byte
            byte_bits = bits[first // 8:]
            for i in range(n // 8):
                byte = np.int32(byte_bits[i])
                for t in range(8):
                    dst[8 * i + t] = np.float32(((byte >> t) & 1) * 2) * src[8 * i + t]
            for j in range(n // 8 * 8, n):
                dst[j] = np.float32(((np.int32(byte_bits[j // 8]) >> (j % 8)) & 1) * 2) * src[j]
        else:
            for j in range(n):
                e = first + j
                dst[j] = np.float32(((np.int32(bits[e // 8]) >> (e % 8)) & 1) * 2) * src[j]

    @njit(cache=True, parallel=True)
    def _forward(features, rows, bits, weight, batch, partial):
        """partial[k, b, c]: chunk k's share of row b's logit c; batch[b] = the dropped-out row."""
        width = features.shape[1]
        count, classes = rows.size, weight.shape[0]
        for k in prange(partial.shape[0]):
            lo = k * CHUNK
            hi = min(width, lo + CHUNK)
            share = partial[k]
            for b in range(count):
                _drop_into(features[rows[b], lo:hi], bits, b * width + lo, batch[b, lo:hi])
            b = 0
            while b < count:
                if b + 1 < count:
                    x0, x1 = batch[b, lo:hi], batch[b + 1, lo:hi]
                    c = 0
                    while c + 5 <= classes:
                        _dots_2x5(x0, x1, weight[c, lo:hi], weight[c + 1, lo:hi], weight[c + 2, lo:hi],
                                  weight[c + 3, lo:hi], weight[c + 4, lo:hi], share, b, c)
                        c += 5
                    for r in range(c, classes):
                        share[b, r] = _dot(x0, weight[r, lo:hi])
                        share[b + 1, r] = _dot(x1, weight[r, lo:hi])
                    b += 2
                else:
                    for r in range(classes):
                        share[b, r] = _dot(batch[b, lo:hi], weight[r, lo:hi])
                    b += 1

    @njit(cache=True, inline="always")
    def _adam(p, m, v, g, fresh1, keep2, fresh2, bc2_sqrt, eps, step_size):
        """torch.optim.Adam's element-wise update: returns (p, m, v) after the step."""
        m = m + fresh1 * (g - m)
        v = v * keep2 + fresh2 * g * g
        return p + step_size * m / (np.sqrt(v) / bc2_sqrt + eps), m, v

    @njit(cache=True)
    def _head(partial, bias, bias_m, bias_v, labels, logits, grad, fresh1, keep2, fresh2, bc2_sqrt, eps, step_size):
        """Logits (shares summed in chunk order, plus the bias), grad = (softmax - one_hot) / batch,
        and the bias's gradient (grad summed over the rows in order) and Adam step."""
        chunks, count, classes = partial.shape[0], labels.size, bias.size
        for b in range(count):
            for c in range(classes):
                s = np.float32(0.0)
                for k in range(chunks):
                    s += partial[k, b, c]
                logits[b, c] = s + bias[c]
            top = logits[b, 0]
            for c in range(1, classes):
                top = max(top, logits[b, c])
            total = np.float32(0.0)
            for c in range(classes):
                grad[b, c] = np.exp(logits[b, c] - top)
                total += grad[b, c]
            for c in range(classes):
                grad[b, c] = grad[b, c] / total
            grad[b, labels[b]] -= np.float32(1.0)
            for c in range(classes):
                grad[b, c] = grad[b, c] / np.float32(count)
        for c in range(classes):
            g = np.float32(0.0)
            for b in range(count):
                g += grad[b, c]
            bias[c], bias_m[c], bias_v[c] = _adam(bias[c], bias_m[c], bias_v[c], g, fresh1, keep2, fresh2,
                                                  bc2_sqrt, eps, step_size)

    @njit(cache=True, parallel=True)
    def _backward_adam(batch, grad, weight, m, v, gsum, fresh1, keep2, fresh2, bc2_sqrt, eps, step_size):
        """Per chunk: the weight gradient grad^T batch (rows in order), then Adam on the chunk."""
        width = weight.shape[1]
        count, classes = grad.shape
        for k in prange(gsum.shape[0]):
            lo = k * CHUNK
            hi = min(width, lo + CHUNK)
            n = hi - lo
            acc = gsum[k]  # row c's first n entries: chunk k's gradient of class c
            for c in range(classes):
                acc[c, :n] = 0.0
            b = 0
            while b + 4 <= count:
                x0, x1, x2, x3 = batch[b, lo:hi], batch[b + 1, lo:hi], batch[b + 2, lo:hi], batch[b + 3, lo:hi]
                c = 0
                while c + 5 <= classes:
                    _axpy_4x5(grad, b, c, x0, x1, x2, x3, acc[c, :n], acc[c + 1, :n], acc[c + 2, :n], acc[c + 3, :n],
                              acc[c + 4, :n])
                    c += 5
                for r in range(c, classes):
                    for i in range(4):
                        _axpy(grad[b + i, r], batch[b + i, lo:hi], acc[r, :n])
                b += 4
            while b < count:
                for r in range(classes):
                    _axpy(grad[b, r], batch[b, lo:hi], acc[r, :n])
                b += 1
            for c in range(classes):
                pw, mw, vw, gw = weight[c, lo:hi], m[c, lo:hi], v[c, lo:hi], acc[c, :n]
                for j in range(n):
                    pw[j], mw[j], vw[j] = _adam(pw[j], mw[j], vw[j], gw[j], fresh1, keep2, fresh2,
                                                bc2_sqrt, eps, step_size)


class CompiledReadoutStep:
    """One readout's buffers for the kernels (per batch size), and the step itself."""

    def __init__(self, width: int, classes: int):
        self.width, self.classes = width, classes
        self.chunks = (width + CHUNK - 1) // CHUNK
        self.gsum = np.empty((self.chunks, classes, CHUNK), np.float32)
        self.batch = np.empty((0, width), np.float32)
        self._per_count: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _buffers(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.batch.shape[0] < count:
            self.batch = np.empty((count, self.width), np.float32)
        if count not in self._per_count:
            self._per_count[count] = (np.empty((self.chunks, count, self.classes), np.float32),
                                      np.empty((count, self.classes), np.float32),
                                      np.empty((count, self.classes), np.float32))
        return self._per_count[count]

    def __call__(self, features: np.ndarray, rows: np.ndarray, bits: np.ndarray | None, labels: np.ndarray,
                 params: list[np.ndarray], exp_avg: list[np.ndarray], exp_avg_sq: list[np.ndarray],
                 beta1: float, beta2: float, bc2_sqrt: float, eps: float, step_size: float) -> np.ndarray:
        """One step on ``features[rows]``; updates the parameters and moments in place and returns
        the logits (computed before the update; a buffer reused by the next step)."""
        partial, logits, grad = self._buffers(rows.size)
        f32 = np.float32
        constants = (f32(1.0 - beta1), f32(beta2), f32(1.0 - beta2), f32(bc2_sqrt), f32(eps), f32(step_size))
        weight, bias = params
        _forward(features, rows, np.zeros(0, np.uint8) if bits is None else bits, weight, self.batch, partial)
        _head(partial, bias, exp_avg[1], exp_avg_sq[1], labels, logits, grad, *constants)
        _backward_adam(self.batch[: rows.size], grad, weight, exp_avg[0], exp_avg_sq[0], self.gsum, *constants)
        return logits


def _closed_form_ok() -> bool:
    """Zero weights, inputs of one, two classes, labels (0, 1, 0): zero logits, a gradient of
    (1/2 - one_hot) / 3, so Adam's first step moves class 0's weights by +lr and class 1's by -lr."""
    width = CHUNK + 13  # two chunks, the second partial (the dropout's bit paths: tests/test_readout.py)
    step = CompiledReadoutStep(width, 2)
    params, m, v = ([np.zeros((2, width), np.float32), np.zeros(2, np.float32)] for _ in range(3))
    lr = 1e-3
    logits = step(np.ones((4, width), np.float32), np.array([3, 0, 1], np.int64), None, np.array([0, 1, 0], np.int64),
                  params, m, v, 0.9, 0.999, 0.001**0.5, 1e-8, -lr / 0.1)
    return bool(np.all(logits == 0) and np.allclose(params[0][0], lr, rtol=1e-4) and np.allclose(params[0][1], -lr, rtol=1e-4))


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why the compiled readout cannot run here (None: it can)."""
    from .compiled_check import unavailable_reason as reason

    return reason("the compiled readout", _closed_form_ok)
