"""Number formats a chip stores tensors in: fixed point, Loihi-style mantissa + shared exponent, float32.

Why one small value type: every other piece (rounding, the policy, the integer engine, the sweep
tables) needs the same three facts about a format -- its integer range, its step and its name --
and a format written as a short string (``s8.6``) must round-trip through TOML, CSV and the CLI.

String forms (case-insensitive):

``sB.F`` / ``uB.F``
    Signed (two's complement) or unsigned fixed point with ``B`` total bits (sign included) of
    which ``F`` are fractional: the value is ``q * 2**-F`` with ``q`` an integer in
    ``[-2**(B-1), 2**(B-1) - 1]`` (signed) or ``[0, 2**B - 1]`` (unsigned).
    ``s8.7`` covers ``[-1, 1 - 2**-7]`` in steps of ``2**-7``; ``u8.8`` covers ``[0, 255/256]``.
``mB`` / ``mBe`` / ``umB``
    Block floating point, as Loihi stores a layer's weights: a ``B``-bit mantissa (signed,
    sign included; ``umB`` unsigned) times ``2**e`` with ONE exponent per tensor. The exponent is
    chosen per call as the smallest integer ``e`` with ``max|x| <= mmax * 2**e`` (``mmax`` the
    largest mantissa), so the largest magnitude never saturates and uses the full mantissa.
    Lava's ``num_weight_bits=B`` in mixed sign mode counts the sign among its ``B`` bits, so it is
    ``mB`` here (``m8``: 256 levels, stored as even integers in [-256, 254] times ``2**weight_exp``);
    see :mod:`neurohebb.backends.lava.weights`.
``float32``
    No quantisation (the default for every role).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError

MAX_BITS = 32
KINDS = ("fixed", "shared_exp", "float32")

_FIXED_RE = re.compile(r"^([su])(\d+)\.(\d+)$")
_SHARED_RE = re.compile(r"^(u?)m(\d+)e?$")


@dataclass(frozen=True)
class NumberFormat:
    """A number format: ``NumberFormat(signed, bits, frac_bits)`` is fixed point.

    ``kind="shared_exp"`` makes it a mantissa with a per-tensor exponent (``frac_bits`` must be 0);
    ``kind="float32"`` means no quantisation (use :meth:`float32`).
    """

    signed: bool = True
    bits: int = 32
    frac_bits: int = 0
    kind: str = "fixed"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"number format kind {self.kind!r} is unknown; choose one of: {', '.join(KINDS)}")
        if self.kind == "float32":
            return
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_BITS:
            raise ConfigError(f"number format needs 1 to {MAX_BITS} bits, got {self.bits!r}; e.g. s8.7 or u8.8")
        if self.signed and self.bits < 2:
            raise ConfigError("a signed number format needs at least 2 bits (one is the sign); use u1.0 for a single bit")
        if isinstance(self.frac_bits, bool) or not isinstance(self.frac_bits, int):
            raise ConfigError(f"frac_bits must be an integer, got {self.frac_bits!r}")
        if self.kind == "shared_exp" and self.frac_bits != 0:
            raise ConfigError("a shared-exponent format has no fixed fractional bits; write it as m8 (or um8)")
        if not 0 <= self.frac_bits <= self.bits:
            raise ConfigError(
                f"{self.frac_bits} fractional bits do not fit in {self.bits} total bits; "
                f"use 0 to {self.bits} fractional bits, e.g. {'s' if self.signed else 'u'}{self.bits}.{self.bits - 1}"
            )

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def float32(cls) -> "NumberFormat":
        return cls(True, 32, 0, "float32")

    @classmethod
    def fixed(cls, bits: int, frac_bits: int, signed: bool = True) -> "NumberFormat":
        return cls(signed, bits, frac_bits, "fixed")

    @classmethod
    def shared_exp(cls, bits: int, signed: bool = True) -> "NumberFormat":
        return cls(signed, bits, 0, "shared_exp")

    @classmethod
    def parse(cls, text: "str | NumberFormat") -> "NumberFormat":
        """Read ``s8.7``, ``u8.8``, ``m8`` / ``m8e`` / ``um8`` or ``float32``."""
        if isinstance(text, NumberFormat):
            return text
        if not isinstance(text, str):
            raise ConfigError(f"a number format must be a string such as s8.7, got {text!r}")
        t = text.strip().lower()
        if t in ("float32", "fp32", "float", "f32"):
            return cls.float32()
        m = _FIXED_RE.match(t)
        if m:
            return cls(m.group(1) == "s", int(m.group(2)), int(m.group(3)), "fixed")
        m = _SHARED_RE.match(t)
        if m:
            return cls(m.group(1) != "u", int(m.group(2)), 0, "shared_exp")
        raise ConfigError(
            f"cannot read number format {text!r}; write sB.F or uB.F (fixed point, B total bits, "
            "F fractional), mB (B-bit mantissa with a shared exponent) or float32"
        )

    # -- properties -----------------------------------------------------------------------------
    @property
    def is_float(self) -> bool:
        return self.kind == "float32"

    @property
    def qmin(self) -> int:
        """Smallest integer code."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        """Largest integer code."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def step(self) -> float:
        """Value of one least significant bit (fixed point only)."""
        self._require_fixed("step")
        return 2.0 ** -self.frac_bits

    @property
    def min_value(self) -> float:
        self._require_fixed("min_value")
        return self.qmin * self.step

    @property
    def max_value(self) -> float:
        self._require_fixed("max_value")
        return self.qmax * self.step

    def _require_fixed(self, what: str) -> None:
        if self.kind != "fixed":
            raise ConfigError(f"{what} is only defined for fixed-point formats, not {self}")

    def __str__(self) -> str:
        if self.kind == "float32":
            return "float32"
        if self.kind == "shared_exp":
            return f"{'' if self.signed else 'u'}m{self.bits}"
        return f"{'s' if self.signed else 'u'}{self.bits}.{self.frac_bits}"
