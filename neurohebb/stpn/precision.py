"""Chip precision for the STPN: the short-term state F and the weight W held in number formats.

Why a separate small policy: the core `PrecisionPolicy` describes the Hebbian learning datapath
(weight, input, post, update, lr); the STPN's plastic synapse has its own stored quantity, the
short-term state, which is rounded after *every* time step as a chip with plastic synapses would
store it. The formats, rounding and overflow come from `neurohebb.precision` (one implementation
of rounding in the project); this module only says which STPN tensor gets which `RoleSpec`, and
how to pick the fractional bits of a B-bit format: from the state's clamp, or from the range a
trained model's state actually reaches.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..precision import NumberFormat, RoleSpec, quantize

Tensor = torch.Tensor
STPN_ROLES = ("state", "weight")


class STPNPrecision:
    """`quantizer(role, t)` for an `STPN` layer: role "state" (F) and "weight" (W).

    Each role is a `RoleSpec` (format, rounding, overflow) or float32 when not given. `seed`
    seeds the generator stochastic rounding draws from, so quantised runs repeat exactly.
    """

    def __init__(self, state: RoleSpec | str | None = None, weight: RoleSpec | str | None = None, *, seed: int | None = 0):
        self.state = RoleSpec() if state is None else RoleSpec.from_value(state, "state")
        self.weight = RoleSpec() if weight is None else RoleSpec.from_value(weight, "weight")
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def spec(self, role: str) -> RoleSpec:
        if role not in STPN_ROLES:
            raise ConfigError(f"unknown STPN precision role {role!r}; choose from: {', '.join(STPN_ROLES)}")
        return getattr(self, role)

    @property
    def is_float(self) -> bool:
        return self.state.is_float and self.weight.is_float

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            self._generators[key] = gen
        return self._generators[key]

    def __call__(self, role: str, t: Tensor) -> Tensor:
        spec = self.spec(role)
        if spec.is_float:
            return t
        gen = self._generator(t.device) if spec.rounding == "stochastic" else None
        return quantize(t, spec.fmt, spec.rounding, spec.overflow, gen)

    def to_dict(self) -> dict[str, str]:
        return {"state": str(self.state), "weight": str(self.weight)}

    def __repr__(self) -> str:
        return f"STPNPrecision(state={self.state}, weight={self.weight})"


class RangeObserver:
    """A pass-through `quantizer(role, t)` that records max |t| per role.

    Run a float model with it to see which range the state actually uses before choosing a
    format (as `torch.ao.quantization` observers do).
    """

    def __init__(self) -> None:
        self.max_abs: dict[str, float] = {}

    def __call__(self, role: str, t: Tensor) -> Tensor:
        m = float(t.detach().abs().max()) if t.numel() else 0.0
        self.max_abs[role] = max(self.max_abs.get(role, 0.0), m)
        return t


def format_for_range(max_abs: float, bits: int, signed: bool = True) -> NumberFormat:
    """The fixed-point format of `bits` bits with the most fractional bits whose range still
    holds `max_abs` (values beyond saturate). Fractional bits are capped at `bits` (the format's
    limit), i.e. ranges below 2**-1 do not gain further resolution."""
    if bits < (2 if signed else 1):
        raise ConfigError(f"a {'signed ' if signed else ''}state format needs at least {2 if signed else 1} bits, got {bits}")
    if not math.isfinite(max_abs) or max_abs < 0:
        raise ConfigError(f"cannot choose a format for the range {max_abs}; the float model's state is not finite")
    frac = bits
    while frac > 0 and NumberFormat.fixed(bits, frac, signed).max_value < max_abs:
        frac -= 1
    return NumberFormat.fixed(bits, frac, signed)


def format_for_clamp(clamp: float, bits: int, signed: bool = True) -> NumberFormat:
    """The `bits`-bit fixed-point format whose nominal range [-2**k, 2**k) is the smallest that
    covers a state clamped to +-clamp: clamp 1 -> s8.7, clamp 2 -> s8.6 (8 bits). The clamp
    value itself then saturates to the format's largest value, one step below 2**k."""
    if not clamp > 0 or not math.isfinite(clamp):
        raise ConfigError(f"--clamp must be a positive number, got {clamp}")
    frac = bits - (1 if signed else 0) - math.ceil(math.log2(clamp))
    return NumberFormat.fixed(bits, max(0, min(bits, frac)), signed)
