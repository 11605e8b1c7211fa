"""Rounding and overflow: turning real values into a format's integer codes.

Why both a float and an integer path here: the fake-quant mode rounds float64 tensors that hold
exact values (``x * 2**F``), the integer engine rounds int64 accumulators by shifting right; the
two must give the same codes, so both live side by side and draw their stochastic-rounding
random numbers through one function, :func:`uniform`, in the same (row-major) order.

Rounding modes
    ``nearest``    round half to even (IEEE default; unbiased on ties);
    ``stochastic`` round up with probability equal to the discarded fraction: up iff ``U < frac``
                   with ``U ~ Uniform[0, 1)`` (24 random bits) drawn from a seeded
                   ``torch.Generator`` (unbiased up to 2**-24 of a step);
    ``truncate``   toward zero (sign-magnitude hardware);
    ``floor``      toward minus infinity (an arithmetic right shift in two's complement).
Overflow modes
    ``saturate``   clamp to the format's range; ``wrap`` keep the low bits (two's complement).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..errors import ConfigError
from .formats import NumberFormat

ROUNDINGS = ("nearest", "stochastic", "truncate", "floor")
OVERFLOWS = ("saturate", "wrap")


def check_rounding(mode: str) -> str:
    if mode not in ROUNDINGS:
        raise ConfigError(f"rounding mode {mode!r} is unknown; choose one of: {', '.join(ROUNDINGS)}")
    return mode


def check_overflow(mode: str) -> str:
    if mode not in OVERFLOWS:
        raise ConfigError(f"overflow mode {mode!r} is unknown; choose one of: {', '.join(OVERFLOWS)}")
    return mode


def uniform(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """The one source of stochastic-rounding noise: multiples of 2**-24 in [0, 1), as float64.

    24 random bits per draw (float32 uniforms, 2.3x cheaper to generate on CPU than float64):
    rounding up happens with probability ``ceil(frac * 2**24) / 2**24``, a bias below 2**-24 of
    one step. Exact in float64, so the float and integer comparisons see the same number.
    """
    where = generator.device if generator is not None else torch.device(device)
    u = torch.rand(shape, generator=generator, dtype=torch.float32, device=where)
    # float32 -> float64 is exact, and comparisons with float64 operands promote exactly, so the
    # draws are returned as float32 (half the memory traffic of converting up front)
    return u.to(device) if u.device != torch.device(device) else u


def round_scaled(y: torch.Tensor, mode: str, generator: torch.Generator | None = None, inplace: bool = False) -> torch.Tensor:
    """Round float64 values (already multiplied by ``2**F``) to integers, kept as float64.

    ``inplace=True`` overwrites ``y`` (saves allocating weight-sized temporaries in the engines).
    """
    if mode == "nearest":
        return y.round_() if inplace else torch.round(y)  # half to even
    if mode == "floor":
        return y.floor_() if inplace else torch.floor(y)
    if mode == "truncate":
        return y.trunc_() if inplace else torch.trunc(y)
    if mode == "stochastic":
        low = torch.floor(y)
        frac = y.sub_(low) if inplace else y - low  # exact for float64 values of <= 53 bits
        # up iff U < frac (comparing float32 U with float64 frac promotes U exactly); gt_ writes
        # the 0/1 outcome into frac's own float64 storage, so the add needs no conversion
        return low.add_(frac.gt_(uniform(y.shape, generator, y.device)))
    raise ConfigError(f"rounding mode {mode!r} is unknown; choose one of: {', '.join(ROUNDINGS)}")


#: stochastic rounding in units of 2**-24 (see :func:`stochastic_codes`) is exact below this |y|
STOCHASTIC_FAST_LIMIT = 2.0**28
_DRAW_SPAN = 1 << 24


def fast_stochastic_ok(y_device: torch.device, generator: torch.Generator | None) -> bool:
    """Whether :func:`stochastic_codes` draws the same numbers as :func:`uniform` here.

    On the CPU generator, ``uniform`` and ``random_(from, from + 2**24)`` both consume one 32-bit
    output of the Mersenne twister per element and keep its low 24 bits (ATen's
    ``uniform_real`` masks them, ``uniform_int_from_to`` takes them modulo ``2**24``); CUDA's
    Philox generator fills the two differently, so only the CPU takes the fast path.
    """
    where = generator.device if generator is not None else torch.device(y_device)
    return where.type == "cpu" and torch.device(y_device).type == "cpu"


def mul_pow2_(y: torch.Tensor, k: int) -> torch.Tensor:
    """``y *= 2**k`` in place, exact wherever the result is representable. Why not one factor:
    a shared exponent for values near float64's subnormals (|x| ~ 1e-306) asks for 2**k with
    k > 1023, which is no float; scaling up in steps of 2**1023 is exact at every step."""
    while k > 1023:
        y.mul_(math.ldexp(1.0, 1023))
        k -= 1023
    return y.mul_(math.ldexp(1.0, k))


def stochastic_codes(y: torch.Tensor, generator: torch.Generator | None, draws: torch.Tensor,
                     scale_exp: int = 0) -> torch.Tensor:
    """Stochastic codes of ``y = x * 2**scale_exp`` in place on float64 ``x``: the same codes as
    ``round_scaled(y, "stochastic")``, i.e. ``floor(y) + [U < y - floor(y)]``, in five passes.

    Why it equals :func:`round_scaled`'s stochastic mode bit for bit: with ``U = m * 2**-24``
    (``m`` the 24 drawn bits), ``Y = y * 2**24``, ``Z = ceil(Y) = n 2**24 + R`` (``n = floor(y)``,
    ``R = ceil(frac * 2**24)`` in ``[0, 2**24]``): ``U < frac`` iff ``m < frac 2**24`` iff
    ``R > m`` (``m`` an integer), so the code ``floor((Z - m + 2**24 - 1) * 2**-24)`` is ``n``
    plus one exactly when ``R - m >= 1``. Every operation is exact while ``|y| < 2**28`` (``Z``
    and ``Z - m + 2**24 - 1`` stay below ``2**53``): callers check that bound
    (:data:`STOCHASTIC_FAST_LIMIT`). ``draws`` (float64, y's shape) receives ``m - 2**24 + 1``
    straight from the generator, so no float32 draw is converted; the ``0 + 2**-24 * D`` form of
    the last scaling turns an exact ``-0.0`` into ``+0.0``, as ``floor(y) + 0`` does. The scaling
    to ``y`` and by ``2**24`` is one multiplication when it only scales up (nothing underflows).
    """
    if scale_exp >= 0:
        mul_pow2_(y, scale_exp + 24)
    else:  # y itself may round to a subnormal: form it exactly as round_scaled's caller does
        y.mul_(math.ldexp(1.0, scale_exp)).mul_(float(_DRAW_SPAN))
    y.ceil_()
    draws.random_(1 - _DRAW_SPAN, 1, generator=generator)  # m - (2**24 - 1), m the 24 low bits
    y.sub_(draws)
    torch.add(_zero(y), y, alpha=1.0 / _DRAW_SPAN, out=y)
    return y.floor_()


_ZEROS: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _zero(t: torch.Tensor) -> torch.Tensor:
    key = (t.dtype, t.device)
    z = _ZEROS.get(key)
    if z is None:
        z = _ZEROS[key] = torch.zeros((), dtype=t.dtype, device=t.device)
    return z


def shift_round(v: torch.Tensor, shift: int, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Integer ``v / 2**shift`` rounded by ``mode``, in int64 arithmetic (a hardware right shift).

    ``shift <= 0`` is an exact left shift (stochastic mode still consumes one draw per element,
    as :func:`round_scaled` does). For ``stochastic`` the discarded low bits ``r`` are
    compared with ``U * 2**shift`` -- the same event as ``U < frac`` in :func:`round_scaled`, drawn
    from the same stream, so both paths agree bit for bit.
    """
    if v.dtype != torch.int64:
        raise TypeError("shift_round works on int64 tensors")
    if shift <= 0:
        if mode == "stochastic":  # one draw per element, always: keeps the stream aligned
            uniform(v.shape, generator, v.device)
        return v << (-shift)
    if shift > 62:
        raise ValueError(f"shift of {shift} bits exceeds the int64 datapath")
    q = v >> shift  # floor
    rem = v - (q << shift)  # in [0, 2**shift)
    if mode == "floor":
        return q
    if mode == "truncate":
        return q + ((v < 0) & (rem != 0)).to(torch.int64)
    if mode == "nearest":
        half = 1 << (shift - 1)
        up = (rem > half) | ((rem == half) & ((q & 1) == 1))
        return q + up.to(torch.int64)
    if mode == "stochastic":
        if shift > 53:  # rem must convert to float64 exactly
            raise ValueError("stochastic rounding of more than 53 discarded bits is not supported")
        u = uniform(v.shape, generator, v.device).to(torch.float64) * float(2**shift)  # exact
        return q + (u < rem.to(torch.float64)).to(torch.int64)
    raise ConfigError(f"rounding mode {mode!r} is unknown; choose one of: {', '.join(ROUNDINGS)}")


def apply_overflow(q: torch.Tensor, fmt: NumberFormat, mode: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bring integer codes (int64 or integer-valued float64) into range; also count overflows.

    Returns ``(codes, n_below, n_above)``; the counts are 0-dim int64 tensors (no device sync).
    """
    if q.numel() == 0:
        zero = torch.zeros((), dtype=torch.int64, device=q.device)
        return q, zero, zero
    lo, hi = torch.aminmax(q)
    if lo >= fmt.qmin and hi <= fmt.qmax:  # the common case: one pass, nothing to clip
        zero = torch.zeros((), dtype=torch.int64, device=q.device)
        return q, zero, zero
    below = (q < fmt.qmin).sum()
    above = (q > fmt.qmax).sum()
    if mode == "saturate":
        q = q.clamp_(fmt.qmin, fmt.qmax)
    elif mode == "wrap":
        q = torch.remainder(q - fmt.qmin, 1 << fmt.bits) + fmt.qmin
    else:
        check_overflow(mode)
    return q, below, above


def shared_exponent(max_abs: float, fmt: NumberFormat) -> int:
    """Smallest ``e`` with ``max_abs <= qmax * 2**e`` (0 for an all-zero tensor).

    Picking the smallest such exponent gives the finest step that still represents the largest
    magnitude, i.e. what Lava's weight optimisation does per process.
    """
    import math

    if not max_abs > 0 or not math.isfinite(max_abs):
        return 0
    e = math.ceil(math.log2(max_abs / fmt.qmax))
    while max_abs > math.ldexp(fmt.qmax, e):  # guard against log2 rounding
        e += 1
    while max_abs <= math.ldexp(fmt.qmax, e - 1):
        e -= 1
    return e


class Quantized(NamedTuple):
    """Integer codes (float64 or int64), their scale ``2**exponent``, and overflow counts."""

    codes: torch.Tensor
    exponent: int
    n_below: torch.Tensor
    n_above: torch.Tensor

    def values(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        out = self.codes.to(torch.float64) * 2.0**self.exponent  # exact power-of-two scaling
        return out if dtype == torch.float64 else out.to(dtype)


def quantize_codes(
    x: torch.Tensor,
    fmt: NumberFormat,
    rounding: str = "nearest",
    overflow: str = "saturate",
    generator: torch.Generator | None = None,
    inplace: bool = False,
    draws: torch.Tensor | None = None,
    max_abs_bound: float | None = None,
) -> Quantized:
    """Codes of ``x`` in ``fmt`` (float64, integer valued) with their exponent and overflow counts.

    ``inplace=True`` lets a float64 ``x`` be overwritten (the engines' hot path saves a
    weight-sized allocation and pass per rounding point). ``draws``: a float64 scratch tensor of
    ``x``'s shape for stochastic rounding on the CPU (:func:`stochastic_codes`: fewer passes, no
    fresh draw tensor); the codes are the same with or without it. ``max_abs_bound``: a proven
    ``max|x| <= bound`` for a fixed-point format (the engines' normalised update is at most 1):
    when the codes it allows all fit, the min/max pass that looks for overflow is skipped.
    """
    check_rounding(rounding)
    check_overflow(overflow)
    if fmt.is_float:
        raise ValueError("float32 has no integer codes")
    xd = x.detach().to(torch.float64)
    bounded = False
    fast = (draws is not None and rounding == "stochastic" and xd.numel() > 0
            and draws.shape == xd.shape and fast_stochastic_ok(xd.device, generator))
    if fmt.kind == "shared_exp":
        lo, hi = torch.aminmax(xd) if xd.numel() else (torch.zeros(()), torch.zeros(()))
        max_abs = max(-float(lo), float(hi))
        exponent = shared_exponent(max_abs, fmt)
        # an unsigned mantissa cannot hold negative values: those still need saturating to 0
        bounded = math.isfinite(max_abs) and (fmt.signed or float(lo) >= 0)
    else:
        exponent = -fmt.frac_bits
        if max_abs_bound is not None and math.isfinite(max_abs_bound):
            lo, hi, max_abs = -max_abs_bound, max_abs_bound, max_abs_bound
            bounded = (math.floor(math.ldexp(lo, -exponent)) >= fmt.qmin
                       and math.ceil(math.ldexp(hi, -exponent)) <= fmt.qmax)
        elif fast:  # the range before rounding: the fast path's bound and the overflow check
            lo, hi = torch.aminmax(xd)
            max_abs = max(-float(lo), float(hi))
    # exact: a power-of-two scaling, in place when xd is ours to overwrite: a converted copy of a
    # non-float64 x, or the caller's own float64 tensor given away with inplace=True
    owned = inplace or x.dtype != torch.float64
    if fast and math.isfinite(max_abs) and math.ldexp(max_abs, -exponent) < STOCHASTIC_FAST_LIMIT:
        q = stochastic_codes(xd if owned else xd.clone(), generator, draws, -exponent)
        # codes lie in [floor(min y), ceil(max y)]: when that is inside the range nothing overflows
        if bounded or (math.floor(math.ldexp(float(lo), -exponent)) >= fmt.qmin
                       and math.ceil(math.ldexp(float(hi), -exponent)) <= fmt.qmax):
            zero = torch.zeros((), dtype=torch.int64, device=q.device)
            return Quantized(q, exponent, zero, zero)
        q, below, above = apply_overflow(q, fmt, overflow)
        return Quantized(q, exponent, below, above)
    y = mul_pow2_(xd if owned else xd.clone(), -exponent)
    q = round_scaled(y, rounding, generator, inplace=True)
    if bounded:
        # shared exponent: it was chosen so that max|x| <= qmax * 2**e, and rounding to an integer
        # never passes the integer qmax; fixed point: the caller's bound keeps every code inside
        # the range. Either way no code can overflow (saves a pass over the tensor)
        zero = torch.zeros((), dtype=torch.int64, device=q.device)
        return Quantized(q, exponent, zero, zero)
    q, below, above = apply_overflow(q, fmt, overflow)
    return Quantized(q, exponent, below, above)


def quantize(
    x: torch.Tensor,
    fmt: NumberFormat | str,
    rounding: str = "nearest",
    overflow: str = "saturate",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Round ``x`` to the nearest values (by ``rounding``) that ``fmt`` can represent.

    Returns a tensor of ``x``'s floating dtype holding exactly representable values (exact in
    float32 for formats of up to 24 bits; use float64 tensors for wider ones). ``float32`` returns
    ``x`` cast to float32 precision. Stochastic rounding draws one uniform number per element from
    ``generator`` (seed it for reproducible runs). NaN propagates; +-inf saturates (wrap gives NaN).
    """
    fmt = NumberFormat.parse(fmt)
    check_rounding(rounding)
    check_overflow(overflow)
    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    if fmt.is_float:
        return x.to(torch.float32).to(out_dtype)
    return quantize_codes(x, fmt, rounding, overflow, generator).values(out_dtype)
