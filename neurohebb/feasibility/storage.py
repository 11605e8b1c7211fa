"""What the precision policy means on a given chip: bits per stored weight, and which roles the
chip will represent more coarsely than the policy asks.

Why here and not in the mapping: the same comparison feeds the mapping (memory per synapse), the
rule analysis (is the learning datapath exact under this policy?) and the report's warnings.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..precision import PrecisionPolicy
from .chips import Chip


@dataclass(frozen=True)
class WeightStorage:
    """Bits a weight occupies on the chip, and why that many."""

    bits: int | None
    requested: str  # the policy's weight format, e.g. "s8.7" or "float32"
    note: str
    exact: bool  # True when the chip stores the weight exactly as the policy asks


def parse_policy(spec: str | PrecisionPolicy | None) -> PrecisionPolicy:
    return PrecisionPolicy.parse(spec)


def weight_storage(chip: Chip, policy: PrecisionPolicy) -> WeightStorage:
    """The weight width used on `chip` under `policy` (float32 weights use the chip's widest)."""
    storage = _weight_storage(chip, policy)
    if chip.get("weights", "format") == "type-table":
        note = (storage.note + "; each synapse only selects one of a few per-neuron weight values (its input line's "
                "type), so a neuron's real-valued weights are not representable")
        return WeightStorage(storage.bits, storage.requested, note, False)
    return storage


def _weight_storage(chip: Chip, policy: PrecisionPolicy) -> WeightStorage:
    spec = policy.weight
    requested = str(spec.fmt)
    lo = chip.get("weights", "min_bits")
    hi = chip.get("weights", "max_bits")
    if spec.is_float:
        if hi is None:
            return WeightStorage(None, requested, "float32 weights; the chip's weight width is unknown", False)
        exact = chip.get("learning", "arithmetic") == "float32" and hi >= 32
        note = "float32 weights stored as float32" if exact else f"float32 weights stored in the chip's widest format, {hi} bits"
        return WeightStorage(hi, requested, note, exact)
    bits = spec.fmt.bits
    if hi is not None and bits > hi:
        return WeightStorage(hi, requested, f"policy asks {bits}-bit weights; the chip stores at most {hi} bits", False)
    if lo is not None and bits < lo:
        return WeightStorage(lo, requested, f"policy asks {bits}-bit weights; the chip's narrowest weight is {lo} bits", True)
    if hi is None:
        return WeightStorage(bits, requested, f"{bits}-bit weights as the policy asks (the chip's limit is unknown)", False)
    return WeightStorage(bits, requested, f"{bits}-bit weights as the policy asks", True)


def role_limits(chip: Chip, policy: PrecisionPolicy) -> list[str]:
    """Sentences for every policy role the chip holds with fewer bits than the policy asks."""
    if chip.get("learning", "arithmetic") == "float32":
        return []
    out: list[str] = []
    trace_bits = chip.get("learning", "trace_bits")
    if trace_bits is not None:
        for role in ("input", "post"):
            spec = policy.spec(role)
            if spec.is_float or spec.fmt.bits > trace_bits:
                out.append(f"{role} activity ({spec.fmt}) is held in {trace_bits}-bit traces on this chip")
    update_bits = chip.get("learning", "update_bits")
    spec = policy.update
    if update_bits is not None and (spec.is_float or spec.fmt.bits > update_bits):
        out.append(f"weight updates ({spec.fmt}) are accumulated in {update_bits} bits on this chip")
    return out
