"""Weight matrices in the format Lava's Loihi models store them: integers, `num_weight_bits`, `weight_exp`.

Why a separate module: the conversion is where precision is lost or kept, so it is pure NumPy,
goes through `neurohebb.precision` (the same shared-exponent format the trainer quantises with),
and is tested on its own -- saturation, exponent choice, signs -- without starting Lava.

How Lava's fixed-point `Dense` reads a matrix (lava/proc/dense/models.py, lava/utils/weightutils.py):
the stored integers are clipped to the sign mode's 8-bit range (mixed: [-256, 255]), their low
``8 - num_weight_bits + mixed`` bits are dropped by an arithmetic shift, and the sum of the weights
of the spiking inputs is shifted by ``weight_exp`` (right shifts floor). With mixed signs the sign
is one of the ``num_weight_bits``: ``num_weight_bits = 8`` keeps 256 levels, i.e. the ``m8``
shared-exponent format of `neurohebb.precision`, whose B-bit mantissa ``m`` is stored as
``m << (9 - B)``. A network trained with ``weight=m8`` therefore deploys without any loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError

SIGN_MODES = ("mixed", "excitatory", "inhibitory")
LAVA_SIGN_MODE = {"mixed": 1, "excitatory": 2, "inhibitory": 3}  # lava.utils.weightutils.SignMode values
from ...onchip.model import load_engine_model

# Loihi 2's weight exponent range, from its chip file (hardware/loihi2.toml, weights.exponent_min/max)
MIN_WEIGHT_EXP, MAX_WEIGHT_EXP = load_engine_model("loihi2").weight_exponent_range


@dataclass(frozen=True)
class LoihiWeights:
    """A weight matrix ready for Lava's `Dense(weights=..., num_weight_bits=..., weight_exp=...)`.

    ``mantissa`` are the integers of the shared-exponent format (w ~ mantissa * 2**exponent);
    ``weights`` what Lava stores (mantissa shifted onto its 8-bit grid); ``weight_exp`` the shift
    Lava applies to the accumulated input; ``unit`` the float value of one unit of Dense output.
    """

    mantissa: np.ndarray
    exponent: int
    num_weight_bits: int
    sign_mode: str
    weight_exp: int
    saturated: int  # weights clipped to the format's range (0 when the exponent was automatic)
    max_abs_error: float  # max |w - mantissa * 2**exponent| over the matrix

    @property
    def grid_shift(self) -> int:
        """Low bits Lava truncates: the mantissa is stored as ``mantissa << grid_shift``."""
        return 8 - self.num_weight_bits + (self.sign_mode == "mixed")

    @property
    def weights(self) -> np.ndarray:
        return (self.mantissa.astype(np.int64) << self.grid_shift).astype(np.int32)

    @property
    def unit(self) -> float:
        """Float value of one unit of the Dense output (after the ``weight_exp`` shift)."""
        return math.ldexp(1.0, self.exponent - self.grid_shift - self.weight_exp)

    def values(self) -> np.ndarray:
        """The float weights this matrix represents (mantissa * 2**exponent)."""
        return np.ldexp(self.mantissa.astype(np.float64), self.exponent)

    def with_weight_exp(self, weight_exp: int) -> "LoihiWeights":
        check_weight_exp(weight_exp)
        return LoihiWeights(self.mantissa, self.exponent, self.num_weight_bits, self.sign_mode, weight_exp,
                            self.saturated, self.max_abs_error)

    def dense_kwargs(self) -> dict:
        """Keyword arguments for Lava's `Dense` / `LearningDense` (sign mode passed explicitly:
        left to Lava, an all-positive matrix would be read as excitatory with another grid)."""
        from . import lava_api

        return {
            "weights": self.weights,
            "num_weight_bits": self.num_weight_bits,
            "weight_exp": self.weight_exp,
            "sign_mode": lava_api.sign_mode(self.sign_mode),
        }


def check_weight_exp(weight_exp: int) -> int:
    if not MIN_WEIGHT_EXP <= int(weight_exp) <= MAX_WEIGHT_EXP:
        raise ConfigError(f"weight_exp={weight_exp} is outside Loihi's range {MIN_WEIGHT_EXP}..{MAX_WEIGHT_EXP}; "
                          "rescale the layer (lower the threshold or use fewer steps)")
    return int(weight_exp)


def mantissa_range(num_weight_bits: int, sign_mode: str) -> tuple[int, int]:
    """Integer range of the mantissa: signed B-bit for mixed, B-bit magnitude otherwise."""
    if sign_mode == "mixed":
        return -(1 << (num_weight_bits - 1)), (1 << (num_weight_bits - 1)) - 1
    if sign_mode == "excitatory":
        return 0, (1 << num_weight_bits) - 1
    return -((1 << num_weight_bits) - 1), 0


def to_loihi(
    w,
    num_weight_bits: int = 8,
    sign_mode: str = "mixed",
    exponent: int | None = None,
    weight_exp: int = 0,
    rounding: str = "nearest",
) -> LoihiWeights:
    """Convert a float matrix [out, in] to Loihi's weight format through `neurohebb.precision`.

    ``exponent`` None picks the shared exponent of the precision package (the smallest that keeps
    the largest magnitude unsaturated); an explicit exponent may saturate, and the number of
    clipped weights is recorded. ``rounding`` is any `neurohebb.precision` rounding mode except
    stochastic (a deployed matrix must be reproducible).
    """
    import torch

    from ...precision import NumberFormat, quantize_codes

    arr = np.asarray(w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else w, dtype=np.float64)
    if arr.ndim != 2:
        raise ConfigError(f"a Dense weight matrix must be 2-D [out, in], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ConfigError("the weight matrix contains NaN or Inf; retrain the network with a lower learning rate")
    if sign_mode not in SIGN_MODES:
        raise ConfigError(f"sign mode {sign_mode!r} is unknown; choose one of: {', '.join(SIGN_MODES)}")
    if not 1 <= int(num_weight_bits) <= 8 or (sign_mode == "mixed" and num_weight_bits < 2):
        raise ConfigError(f"num_weight_bits must be 1..8 (2..8 with mixed signs), got {num_weight_bits}; Loihi stores at most 8 weight bits")
    if rounding == "stochastic":
        raise ConfigError("deployed weights must be reproducible: use rounding nearest, floor or truncate")
    if sign_mode == "excitatory" and arr.size and arr.min() < 0:
        raise ConfigError("excitatory sign mode needs non-negative weights; use sign_mode='mixed'")
    if sign_mode == "inhibitory" and arr.size and arr.max() > 0:
        raise ConfigError("inhibitory sign mode needs non-positive weights; use sign_mode='mixed'")
    check_weight_exp(weight_exp)

    lo, hi = mantissa_range(num_weight_bits, sign_mode)
    # An unsigned B-bit magnitude is the (B+1)-bit signed format's positive half.
    fmt = NumberFormat.shared_exp(num_weight_bits if sign_mode == "mixed" else num_weight_bits + 1)
    if exponent is None:
        # The trainer's own quantiser: same exponent, same codes as a `weight=mB` policy.
        quantized = quantize_codes(torch.from_numpy(arr), fmt, rounding)
        q, exponent = quantized.codes.numpy(), quantized.exponent
    else:
        scaled = np.ldexp(arr, -int(exponent))
        if rounding == "nearest":
            q = np.round(scaled)  # half to even, as neurohebb.precision
        elif rounding == "floor":
            q = np.floor(scaled)
        elif rounding == "truncate":
            q = np.trunc(scaled)
        else:
            raise ConfigError(f"rounding {rounding!r} is unknown; choose nearest, floor or truncate")
    saturated = int(((q < lo) | (q > hi)).sum())
    q = np.clip(q, lo, hi).astype(np.int32)
    err = float(np.abs(arr - np.ldexp(q.astype(np.float64), int(exponent))).max()) if arr.size else 0.0
    return LoihiWeights(q, int(exponent), int(num_weight_bits), sign_mode, int(weight_exp), saturated, err)


def from_lava(weights: np.ndarray, num_weight_bits: int, sign_mode: str, exponent: int, weight_exp: int = 0) -> LoihiWeights:
    """Read back what a Lava process stores (e.g. after on-chip learning) as a `LoihiWeights`."""
    grid = 8 - num_weight_bits + (sign_mode == "mixed")
    arr = np.asarray(weights).astype(np.int64)
    mantissa = (arr >> grid).astype(np.int32)  # Lava's own truncation: an arithmetic shift
    return LoihiWeights(mantissa, exponent, num_weight_bits, sign_mode, weight_exp, 0, 0.0)
