"""The fake-quant step's weight-sized tail in four compiled passes (optional: needs numba).

Why: after its two products, the fake-quant step of a linear layer walks its weight-sized float64
tensors about twenty times (the decay, the max, the normalisation, two stochastic roundings of
six passes each, the weight step, the write-back) and draws two numbers per synapse from torch's
Mersenne twister, at 4-10 ns each through ``random_``. These kernels do the same arithmetic,
element for element and operation for operation, in four passes split over torch's threads:

1. the min and max of ``dW = fma(-c_k, W, H)`` (torch's ``addcmul_`` is one fused multiply-add);
   dW is not stored: reading H and W again costs less than writing it
2. dW again, normalised, rounded to the update's codes (overflow counted, ``|dW|`` kept on
   sampled steps), then ``W' = fma(codes, lr_k 2**e, W)`` and its min/max (torch's ``addcmul``)
3. ``W'`` rounded to the weight's format, overflow counted, the layer's float32 copy written
4. on sampled steps, the statistics' per-synapse terms (torch sums them, as before)

The stochastic draws are the generator's own: the kernels run MT19937 on a copy of the CPU
generator's state and hand the state back, so every later draw is unchanged too. Nothing here
decides a number differently from :mod:`.fakequant`'s torch path: :func:`available` verifies, on
this machine and this torch, that the generator's state layout, ``addcmul``'s rounding and the
division by a scalar are the ones the kernels reproduce, and the engine falls back to torch where
they are not (or where numba is missing, the device is not the CPU, or a policy is not covered).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

try:  # numba is optional: without it the engine keeps its torch path
    import numba
    from llvmlite import ir
    from numba import njit
    from numba.core import types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

#: rounding modes the kernels implement (codes as in :func:`~neurohebb.precision.rounding.round_scaled`)
MODES = {"none": 0, "nearest": 1, "stochastic": 2, "floor": 3, "truncate": 4}
NORM_NONE, NORM_DIVIDE, NORM_SHIFT = 0, 1, 2
_N, _M = 624, 397  # MT19937's state words and its middle word offset
_STATE_WORDS = slice(24, 24 + 8 * _N)  # CPUGeneratorImplState: seed u64, left i32, seeded i32, next u64, state u64[624]


if numba is not None:

    @intrinsic
    def _fma(typingctx, a, b, c):
        """``a * b + c`` with one rounding (LLVM's fma intrinsic: a hardware FMA on x86-64 with FMA3)."""
        sig = types.float64(types.float64, types.float64, types.float64)

        def codegen(context, builder, signature, args):
            double = ir.DoubleType()
            fn = builder.module.declare_intrinsic("llvm.fma", [double], ir.FunctionType(double, [double] * 3))
            return builder.call(fn, args)

        return sig, codegen

    @njit(cache=True)
    def _twist(st):
        """MT19937's state transition, in place (as ATen's ``mt19937::next_state``)."""
        upper, lower, matrix = np.uint32(0x80000000), np.uint32(0x7FFFFFFF), np.uint32(0x9908B0DF)
        one = np.uint32(1)
        for i in range(_N - _M):
            y = (st[i] & upper) | (st[i + 1] & lower)
            st[i] = st[i + _M] ^ (y >> one) ^ (matrix * (st[i + 1] & one))
        for i in range(_N - _M, _N - 1):
            y = (st[i] & upper) | (st[i + 1] & lower)
            st[i] = st[i + _M - _N] ^ (y >> one) ^ (matrix * (st[i + 1] & one))
        y = (st[_N - 1] & upper) | (st[0] & lower)
        st[_N - 1] = st[_M - 1] ^ (y >> one) ^ (matrix * (st[0] & one))

    @njit(cache=True)
    def _temper(words, out, keep):
        """MT19937's output function, keeping the bits of ``keep`` (separate arrays: it vectorises)."""
        for j in range(words.size):
            y = words[j]
            y ^= y >> np.uint32(11)
            y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
            y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
            y ^= y >> np.uint32(18)
            out[j] = y & keep

    @njit(cache=True)
    def _draws(st, pos, out, keep=np.uint32(0xFFFFFF)):
        """The next ``out.size`` draws ``m``, the bits of ``keep`` (24: what ``uniform`` and
        ``random_`` keep; all 32: the generator's raw outputs); returns the new position.
        ``pos`` is the index of the next state word, ``_N`` when a twist is due."""
        n, i = out.size, 0
        while i < n:
            if pos == _N:
                _twist(st)
                pos = 0
            k = min(_N - pos, n - i)
            _temper(st[pos:pos + k], out[i:i + k], keep)
            pos += k
            i += k
        return pos

    @njit(cache=True, error_model="numpy")
    def _round_row(src, scale, mode, m, dst):
        """``dst = round(src * scale)`` by ``mode``, as ``round_scaled`` gives it. One loop per mode
        (no branch inside the loops): half to even; ``floor(y) + [U < frac]`` with ``U = m 2**-24``
        exactly; floor; trunc; 0 scales only."""
        n = src.size
        if mode == 1:
            for j in range(n):
                dst[j] = np.rint(src[j] * scale)
        elif mode == 2:
            for j in range(n):
                y = src[j] * scale
                low = np.floor(y)
                dst[j] = low + np.float64((y - low) > m[j] * 5.9604644775390625e-08)
        elif mode == 3:
            for j in range(n):
                dst[j] = np.floor(src[j] * scale)
        elif mode == 4:
            for j in range(n):
                dst[j] = np.trunc(src[j] * scale)
        else:
            for j in range(n):
                dst[j] = src[j] * scale

    @njit(cache=True, error_model="numpy")
    def _clamp_row(codes, qmin, qmax):
        """Saturate codes in place; (below, above). A select on strict comparisons: a value inside
        the range (-0.0 too) is left as it is."""
        below, above = 0, 0
        for j in range(codes.size):
            v = codes[j]
            below += v < qmin
            above += v > qmax
            codes[j] = qmin if v < qmin else (qmax if v > qmax else v)
        return below, above

    @njit(cache=True, error_model="numpy")
    def _row_extent(row):
        """(min, max, all finite) of a row."""
        lo, hi, finite = np.inf, -np.inf, True
        for v in row:
            lo = min(lo, v)
            hi = max(hi, v)
            finite &= v - v == 0.0  # NaN and +-inf give NaN
        return lo, hi, finite

    @njit(cache=True, parallel=True, error_model="numpy")
    def _decay_extent(h, c, w, extent):
        """Each row's (min, max, finite) of ``dW = fma(-c_k, w, h)`` (torch's
        ``h.addcmul_(c, w, value=-1)``) into ``extent`` [K, 3], without storing dW: the next
        pass forms it again from h and w (reading them costs less than writing dW out)."""
        for k in numba.prange(h.shape[0]):
            ck = -c[k]
            row, wk = h[k], w[k]
            lo, hi, bad = np.inf, -np.inf, 0.0
            for j in range(row.size):
                v = _fma(ck, wk[j], row[j])
                lo = v if v < lo else lo
                hi = v if v > hi else hi
                bad += v - v  # 0 for every finite v; NaN once an inf or NaN appears
            extent[k, 0], extent[k, 1], extent[k, 2] = lo, hi, bad == 0.0

    @njit(cache=True, parallel=True, error_model="numpy")
    def _update(h, c, norm, norm_value, scale, mode, qmin, qmax, draws, abs_out, sample, counts,
                w, code_scale, lr, out, extent, step):
        """Step 6 again (``dW = fma(-c_k, w, h)``, as :func:`_decay_extent` formed it), then steps
        7-8 per row: normalise (``/ max|dW|`` or ``* 2**-s``), ``|dW|`` when sampling,
        round to codes (``* 2**-e``) and saturate, counts into ``counts`` [K, 2]. With ``step``
        also step 10's sum, ``out = fma(codes * code_scale, lr_k, w)`` (torch's ``addcmul``),
        its extent into ``extent``, leaving ``h`` as it was; without, the codes go into ``h``."""
        k_rows, n = h.shape
        for k in numba.prange(k_rows):
            row = h[k]
            # the row's scratch: the output row when stepping (free until the sum), else h's own row
            t = out[k] if step else row
            ck, wk = -c[k], w[k]
            for j in range(n):
                t[j] = _fma(ck, wk[j], row[j])
            if norm == 1:
                for j in range(n):
                    t[j] = t[j] / norm_value
            elif norm == 2:
                for j in range(n):
                    t[j] = t[j] * norm_value
            if sample:
                a = abs_out[k]
                for j in range(n):
                    a[j] = abs(t[j])
            if mode != 0:
                _round_row(t, scale, mode, draws[k], t)
                below, above = _clamp_row(t, qmin, qmax)
                counts[k, 0], counts[k, 1] = below, above
            if step:
                rate = lr[k]
                for j in range(n):
                    t[j] = _fma(t[j] * code_scale, rate, wk[j])
                lo, hi, finite = _row_extent(t)
                extent[k, 0], extent[k, 1], extent[k, 2] = lo, hi, finite

    @njit(cache=True, parallel=True, error_model="numpy")
    def _weight_step(w, codes, code_scale, lr, out, extent):
        """Step 10's sum alone (when the rate's own draws sit between the update's and the
        weights'): ``out = fma(codes * code_scale, lr_k, w)``; each row's extent."""
        for k in numba.prange(w.shape[0]):
            rate = lr[k]
            wk, ck, ok = w[k], codes[k], out[k]
            for j in range(wk.size):
                ok[j] = _fma(ck[j] * code_scale, rate, wk[j])
            lo, hi, finite = _row_extent(ok)
            extent[k, 0], extent[k, 1], extent[k, 2] = lo, hi, finite

    @njit(cache=True, parallel=True, error_model="numpy")
    def _round_weights(w, scale, unscale, mode, qmin, qmax, draws, counts, out32):
        """Step 10's rounding: ``w <- Q(w)`` as values (codes ``* 2**e``), saturating, and the
        layer's float32 copy into ``out32``; counts into ``counts`` [K, 2]."""
        for k in numba.prange(w.shape[0]):
            row = w[k]
            _round_row(row, scale, mode, draws[k], row)
            below, above = _clamp_row(row, qmin, qmax)
            counts[k, 0], counts[k, 1] = below, above
            r32 = out32[k]
            for j in range(row.size):
                row[j] = row[j] * unscale
                r32[j] = np.float32(row[j])

    @njit(cache=True, parallel=True, error_model="numpy")
    def _step_stats(intended, lr_abs, w_new, w_old, masked, diff, counts):
        """A sampled step's per-synapse terms, as :meth:`LayerStats.record_step` forms them:
        ``intended <- |dW| * |lr_k|`` in place, ``masked`` = intended where the synapse stalled
        (proposed, yet unchanged) else 0, ``diff = |W_new - W_old|``; the counts of proposed and
        stalled synapses per row into ``counts``. Torch then sums the three arrays."""
        for k in numba.prange(w_new.shape[0]):
            rate = lr_abs[k]
            a, m, d, new, old = intended[k], masked[k], diff[k], w_new[k], w_old[k]
            proposed, stalled = 0, 0
            for j in range(a.size):
                v = a[j] * rate
                a[j] = v
                p = v != 0.0
                s = p and new[j] == old[j]
                proposed += p
                stalled += s
                m[j] = v * (1.0 if s else 0.0)  # the product torch's intended * stalled takes
                d[j] = abs(new[j] - old[j])
            counts[k, 0], counts[k, 1] = proposed, stalled


class TwisterState:
    """A CPU ``torch.Generator``'s MT19937 state, taken out for the kernels and put back after."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator
        self.raw = generator.get_state().numpy().copy()
        left = int(self.raw[8:12].view(np.int32)[0])
        self.words = self.raw[_STATE_WORDS].view(np.uint64).astype(np.uint32)
        # torch's engine returns word `next` after decrementing `left`, twisting when it hits 0:
        # left - 1 words remain, so the next one is 624 - (left - 1) (624: twist first)
        self.pos = _N - (left - 1)

    def draws(self, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (uint32, C order) with the generator's next 24-bit draws, row-major."""
        self.pos = _draws(self.words, self.pos, out.reshape(-1))
        return out

    def words64(self, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (uint64, C order) with what ``random_(-2**63, None)`` on an int64 tensor
        draws: torch's ``random64``, two 32-bit outputs, the first high."""
        halves = out.reshape(-1).view(np.uint32).reshape(-1, 2)  # little-endian: [low, high]
        raw = np.empty_like(halves)
        self.pos = _draws(self.words, self.pos, raw.reshape(-1), np.uint32(0xFFFFFFFF))
        halves[:, 0], halves[:, 1] = raw[:, 1], raw[:, 0]
        return out

    def put_back(self) -> None:
        raw = self.raw
        raw[_STATE_WORDS].view(np.uint64)[:] = self.words
        raw[8:12].view(np.int32)[0] = _N + 1 - self.pos if self.pos < _N else 1
        raw[16:24].view(np.uint64)[0] = self.pos if self.pos < _N else 0
        self.generator.set_state(torch.from_numpy(raw))


def _layout_ok() -> bool:
    """The generator's state bytes hold what :class:`TwisterState` assumes (checked by drawing)."""
    g = torch.Generator().manual_seed(20261202)
    torch.rand(1000, generator=g)  # a position inside the state, not at a twist
    ref = torch.Generator()
    ref.set_state(g.get_state())
    t = TwisterState(g)
    mine = t.draws(np.empty((2, 1000), np.uint32))
    t.put_back()
    theirs = torch.empty(2000, dtype=torch.float64).random_(0, 1 << 24, generator=ref)
    after_mine, after_theirs = torch.rand(700, generator=g), torch.rand(700, generator=ref)
    same_draws = np.array_equal(mine.reshape(-1).astype(np.float64), theirs.numpy())
    return bool(same_draws and torch.equal(after_mine, after_theirs))


def _arithmetic_ok() -> bool:
    """addcmul (both forms the step uses) and division by a scalar round as the kernels do."""
    g = torch.Generator().manual_seed(7)
    k, n = 37, 203  # odd sizes: vector bodies and scalar tails both checked
    h, w = (torch.randn(k, n, generator=g, dtype=torch.float64) for _ in range(2))
    c, lr = (torch.randn(k, generator=g, dtype=torch.float64) for _ in range(2))
    extent, counts, out = np.empty((k, 3)), np.empty((k, 2), np.int64), np.empty((k, n))
    decayed = h.clone().addcmul_(c.reshape(-1, 1), w, value=-1.0)
    _decay_extent(h.numpy(), c.numpy(), w.numpy(), extent)
    ok = extent[:, 0].min() == decayed.min() and extent[:, 1].max() == decayed.max()
    mine = h.numpy().copy()  # the update's own decay, normalisation and nothing else
    unused = (empty_rows(k, np.uint32), empty_rows(k), False, counts, w.numpy(), 1.0, lr.numpy(), out, extent, False)
    _update(mine, c.numpy(), NORM_NONE, 0.0, 1.0, 0, -np.inf, np.inf, *unused)
    ok &= np.array_equal(mine, decayed.numpy())
    _weight_step(w.numpy(), h.numpy(), 1.0, lr.numpy(), out, extent)
    ok &= np.array_equal(out, torch.addcmul(w, h, lr.reshape(-1, 1)).numpy())
    d = 0.7310585786300049
    mine = h.numpy().copy()
    _update(mine, np.zeros(k), NORM_DIVIDE, d, 1.0, 0, -np.inf, np.inf, *unused)
    ok &= np.array_equal(mine, h.clone().div_(d).numpy())
    return bool(ok)


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why the kernels cannot stand in for the torch path here (None: they can)."""
    if numba is None:
        return "numba is not installed"
    try:
        match_threads()
        if not _layout_ok():
            return "this torch's CPU generator state is not laid out as expected"
        if not _arithmetic_ok():
            return "this torch's addcmul or division rounds differently from the kernels"
    except Exception as exc:  # a numba or llvm that cannot compile the kernels
        return f"the kernels did not compile ({type(exc).__name__}: {exc})"
    return None


def available() -> bool:
    return unavailable_reason() is None


@lru_cache(maxsize=1)
def twister_ok() -> bool:
    """:class:`TwisterState` reproduces this torch's CPU generator (numba present, layout checked)."""
    return numba is not None and _layout_ok()


def match_threads() -> None:
    """Run the kernels on as many threads as torch's own operators use: one thread budget for
    the whole step (a sweep point pinned to one thread stays on one), and numba's OpenMP layer,
    which shares the runtime with torch's, never changes torch's count."""
    want = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)


def empty_rows(rows: int, dtype=np.float64) -> np.ndarray:
    """A [rows, 0] array: what a kernel gets for an argument this step does not use."""
    return np.empty((rows, 0), dtype)


class Scratch:
    """One layer's small arrays for the kernels (per-row extents and counts, the draws)."""

    def __init__(self, rows: int, cols: int, stochastic: bool):
        self.extent = np.empty((rows, 3))
        self.counts = np.zeros((rows, 2), np.int64)
        self.draws = np.empty((rows, cols), np.uint32) if stochastic else empty_rows(rows, np.uint32)
        self.no_values = empty_rows(rows)

    def span(self) -> tuple[float, float, bool]:
        """(min, max, all finite) over the rows the last kernel measured."""
        e = self.extent
        return float(e[:, 0].min()), float(e[:, 1].max()), bool(e[:, 2].all())

    def take_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The last kernel's two per-row counts summed (below/above, or proposed/stalled), as the
        0-dim int64 tensors the diagnostics add up; the counts are reset."""
        below, above = self.counts.sum(axis=0)
        self.counts[:] = 0
        return torch.tensor(int(below)), torch.tensor(int(above))
