"""Sum-of-products learning rules as chips read them: the rule string, its products, trace settings.

Why here and not in a backend: the rule a chip's learning engine runs is a chip concept. The
feasibility report emits these strings, the on-chip trainer (`neurohebb.onchip.engine`) runs them,
Lava's backend (`backends.lava.sop`, `backends.lava.learning`) hands them to Lava; all parse them
here, against the chip's own limits (`model.LearningEngineModel`, read from its chip file).

Rule strings: a sum of products such as ``"2^-4 * x1 * y0 - 2^-6 * w * y0"``. Each product holds
one optional scale literal (``3``, ``2^-4``, ``3*2^-4``; all literals of a product multiply into
its scale), a dependency (``x0`` pre spike, ``y0`` post spike, or ``u<k>``: every ``2**k`` epochs,
traces read at the epoch's end; the first dependency written) and factors among the chip's spikes,
traces and ``w``. Lava also accepts ``(w + C)`` and ``sgn(...)`` factors and delay/tag targets;
these are rejected with a clear error rather than guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .model import LearningEngineModel, load_engine_model

DEPENDENCIES = ("x0", "y0")
TRACES = ("x1", "x2", "y1", "y2", "y3")
COUNTING_TAU = 2**16  # decay exp(-1/65536) per step: a spike counter over any practical epoch
_LITERAL = r"[+-]?(?:\d+\*2\^[+-]?\d+|2\^[+-]?\d+|\d+)"


def default_model() -> LearningEngineModel:
    """Loihi 2's learning engine, read from its chip file."""
    return load_engine_model("loihi2")


@dataclass(frozen=True)
class Product:
    """One term: ``sign * mantissa * 2**exponent * dependency * prod(factors)``."""

    dependency: str
    mantissa: int
    exponent: int  # as written (Lava stores exponent + 7)
    factors: tuple[str, ...]
    decimate: int | None = None  # k of a u<k> dependency (applied every 2**k epochs)


@dataclass(frozen=True)
class SumOfProducts:
    """A parsed ``dw`` rule."""

    text: str
    products: tuple[Product, ...]

    model: LearningEngineModel | None = None

    @property
    def traces(self) -> set[str]:
        return {f for p in self.products for f in p.factors if f not in ("x0", "y0", "w")}


def parse_rule(text: str, model: LearningEngineModel | None = None) -> SumOfProducts:
    """Parse a ``dw`` rule string into products, with Lava's scale normalisation and the chip's
    limits (``model``; Loihi 2's by default)."""
    model = model or default_model()
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a learning rule must be a non-empty string such as '2^-4 * x1 * y0 - 2^-6 * w * y0'")
    compact = re.sub(r"\s+", "", text)
    if re.search(r"[()]|sgn", compact) or re.search(r"(?<![a-z])[dt](?![a-z0-9])", compact):
        raise ConfigError(f"rule {text!r} uses brackets, sgn() or d/t variables; neurohebb's engine supports "
                          "sums of products of x0 y0 u<k> x1 x2 y1 y2 y3 w and constants")
    terms = re.findall(r"[+-]?[^+-]+", _protect_exponents(compact))
    if not terms or "".join(terms) != _protect_exponents(compact):
        raise ConfigError(f"cannot read rule {text!r}; write e.g. '2^-4 * x1 * y0 - 2^-6 * w * y0'")
    products = tuple(_parse_product(_restore_exponents(t), text, model) for t in terms)
    decimations = {p.decimate for p in products if p.dependency == "u"}
    if len(decimations) > 1:
        raise ConfigError(f"rule {text!r} mixes u<k> dependencies with different k; Lava allows one k per rule")
    return SumOfProducts(text, products, model)


def _protect_exponents(s: str) -> str:
    """Hide the signs inside ``2^-4`` so splitting on +/- only cuts between products."""
    return re.sub(r"\^([+-])", lambda m: "^" + ("P" if m.group(1) == "+" else "M"), s)


def _restore_exponents(s: str) -> str:
    return s.replace("^P", "^+").replace("^M", "^-")


def _parse_product(term: str, text: str, model: LearningEngineModel) -> Product:
    sign = -1 if term.startswith("-") else 1
    body = term.lstrip("+-")
    mantissa, exponent = 1, 0
    dependency = None
    decimate = None
    factors: list[str] = []
    for token in _tokens(body):
        if re.fullmatch(_LITERAL, token):
            m, e = _literal(token)
            mantissa, exponent = mantissa * m, exponent + e
        elif re.fullmatch(r"u\d+", token):
            if "u" not in model.dependencies:
                raise ConfigError(f"rule {text!r}: {model.chip} has no u<k> dependency (its dependencies: {' '.join(model.dependencies)})")
            if dependency is not None:
                raise ConfigError(f"rule {text!r}: write the u<k> dependency of {term!r} before any x0/y0 factor")
            dependency, decimate = "u", int(token[1:])
        elif token in DEPENDENCIES and dependency is None:
            dependency = token
        elif token in model.factor_widths:
            factors.append(token)
        else:
            known = " ".join(model.factor_widths)
            raise ConfigError(f"rule {text!r}: {token!r} is not a factor {model.chip}'s engine knows ({known} or a constant)")
    mantissa *= sign
    m_max = 2 ** (model.mantissa_bits - 1) - 1
    e_lo, e_hi = model.scaling_exponent_range
    while abs(mantissa) > m_max and mantissa % 2 == 0 and exponent < e_hi:  # Lava's normalisation
        mantissa //= 2
        exponent += 1
    if dependency is None:
        raise ConfigError(f"rule {text!r}: the product {term!r} has no dependency; multiply it by x0 or y0")
    if not -(m_max + 1) <= mantissa <= m_max:
        raise ConfigError(f"rule {text!r}: scale mantissa {mantissa} of {term!r} does not fit {model.mantissa_bits} bits; "
                          f"write the scale as m*2^e with |m| <= {m_max}")
    if not e_lo <= exponent <= e_hi:
        raise ConfigError(f"rule {text!r}: scale exponent {exponent} of {term!r} is outside {e_lo}..{e_hi} ({model.chip})")
    return Product(dependency, mantissa, exponent, tuple(factors), decimate)


def _tokens(body: str) -> list[str]:
    """Split a product on '*' while keeping literals like ``3*2^-4`` whole."""
    parts = body.split("*")
    out: list[str] = []
    i = 0
    while i < len(parts):
        if i + 1 < len(parts) and re.fullmatch(r"\d+", parts[i]) and re.fullmatch(r"2\^[+-]?\d+", parts[i + 1]):
            out.append(parts[i] + "*" + parts[i + 1])
            i += 2
        else:
            out.append(parts[i])
            i += 1
    if any(not p for p in out):
        raise ConfigError(f"cannot read product {body!r}: empty factor")
    return out


def _literal(token: str) -> tuple[int, int]:
    sign = -1 if token.startswith("-") else 1
    token = token.lstrip("+-")
    if "*2^" in token:
        m, e = token.split("*2^")
        return sign * int(m), int(e)
    if token.startswith("2^"):
        return sign, int(token[2:])
    return sign * int(token), 0


@dataclass(frozen=True)
class TraceConfig:
    """Impulse (may be fractional, 8 fractional bits) and decay time constant of each trace."""

    x1_impulse: float = 0.0
    x1_tau: float = 0.0
    x2_impulse: float = 0.0
    x2_tau: float = 0.0
    y1_impulse: float = 0.0
    y1_tau: float = 0.0
    y2_impulse: float = 0.0
    y2_tau: float = 0.0
    y3_impulse: float = 0.0
    y3_tau: float = 0.0

    def impulses(self, names: tuple[str, ...], fraction_bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
        imp = np.array([getattr(self, f"{n}_impulse") for n in names], dtype=np.float64)
        whole = np.floor(imp)
        frac = np.round((imp - whole) * 2**fraction_bits)
        return whole.astype(np.int64), frac.astype(np.int64)

    def taus(self, names: tuple[str, ...]) -> np.ndarray:
        return np.array([getattr(self, f"{n}_tau") for n in names], dtype=np.float64)
