"""Register-blocked dot products and multiply-adds shared by the compiled steps (needs numba).

Why: a skinny product (a batch of 10-64 rows against thousands of weights) is too thin for
MKL's blocking, but each input row read once for five weight rows (or four input rows added
into five outputs) keeps ten accumulators in registers and vectorises over the long axis.
The readout (`readout_kernels`) and the linear SoftHebb step (`steps.linear_kernels`) call
these; both are held to torch to float32 rounding by their own tests.
"""
from __future__ import annotations

import numpy as np

try:  # numba is optional: the modules that call these check for it
    from numba import njit
except ImportError:  # pragma: no cover - exercised where numba is absent
    njit = None

#: reassociation lets LLVM vectorise the dot products (fixed for a given build)
FAST = {"reassoc", "nsz", "arcp", "contract"}


if njit is not None:

    @njit(cache=True, fastmath=FAST)
    def dot(x, w):
        s = np.float32(0.0)
        for j in range(x.size):
            s += x[j] * w[j]
        return s

    @njit(cache=True, fastmath=FAST)
    def dots_2x5(x0, x1, w0, w1, w2, w3, w4, out, b, c):
        """out[b:b+2, c:c+5] = the ten dot products (x0 and x1 each read once for five weights)."""
        a00 = a01 = a02 = a03 = a04 = a10 = a11 = a12 = a13 = a14 = np.float32(0.0)
        for j in range(x0.size):
            u = x0[j]
            t = x1[j]
            a00 += u * w0[j]
            a01 += u * w1[j]
            a02 += u * w2[j]
            a03 += u * w3[j]
            a04 += u * w4[j]
            a10 += t * w0[j]
            a11 += t * w1[j]
            a12 += t * w2[j]
            a13 += t * w3[j]
            a14 += t * w4[j]
        out[b, c], out[b, c + 1], out[b, c + 2], out[b, c + 3], out[b, c + 4] = a00, a01, a02, a03, a04
        out[b + 1, c], out[b + 1, c + 1], out[b + 1, c + 2], out[b + 1, c + 3], out[b + 1, c + 4] = a10, a11, a12, a13, a14

    @njit(cache=True, fastmath={"contract"})
    def axpy_4x5(g, b, c, x0, x1, x2, x3, o0, o1, o2, o3, o4):
        """o_i += sum over the four rows of g[row, c + i] x_row (rows added in order)."""
        g00, g01, g02, g03, g04 = g[b, c], g[b, c + 1], g[b, c + 2], g[b, c + 3], g[b, c + 4]
        g10, g11, g12, g13, g14 = g[b + 1, c], g[b + 1, c + 1], g[b + 1, c + 2], g[b + 1, c + 3], g[b + 1, c + 4]
        g20, g21, g22, g23, g24 = g[b + 2, c], g[b + 2, c + 1], g[b + 2, c + 2], g[b + 2, c + 3], g[b + 2, c + 4]
        g30, g31, g32, g33, g34 = g[b + 3, c], g[b + 3, c + 1], g[b + 3, c + 2], g[b + 3, c + 3], g[b + 3, c + 4]
        for j in range(x0.size):
            u, t, s, r = x0[j], x1[j], x2[j], x3[j]
            o0[j] = (((o0[j] + g00 * u) + g10 * t) + g20 * s) + g30 * r
            o1[j] = (((o1[j] + g01 * u) + g11 * t) + g21 * s) + g31 * r
            o2[j] = (((o2[j] + g02 * u) + g12 * t) + g22 * s) + g32 * r
            o3[j] = (((o3[j] + g03 * u) + g13 * t) + g23 * s) + g33 * r
            o4[j] = (((o4[j] + g04 * u) + g14 * t) + g24 * s) + g34 * r

    @njit(cache=True, fastmath={"contract"})
    def axpy(a, x, o):
        for j in range(x.size):
            o[j] = o[j] + a * x[j]
