"""The precision policy: how every tensor role of the learning datapath is represented.

Why one object: a chip is described by a handful of formats (synapse memory, spike/trace
registers, the learning engine's update word, the learning-rate register); passing one policy
through training -- rather than loose bit widths -- keeps runs reproducible and every result
row self-describing (``str(policy)`` is a complete, parseable description).

Roles
    ``weight``  stored synaptic weights (after every update);
    ``input``   pre-synaptic activity a layer sees (its input x);
    ``post``    post-synaptic activity y the soft-WTA emits;
    ``update``  the weight update dW after normalisation (the learning engine's word);
    ``lr``      the per-neuron learning rate register.
Plus ``norm``: how the update is normalised -- ``max`` divides by ``max|dW|`` as the algorithm
specifies (a divider), ``pow2`` shifts by the power of two at or above ``max|dW|`` (a barrel
shifter; the step is 0.5-1x the ``max`` step).

Compact string (the CLI's ``--policy`` form): comma-separated ``role=FORMAT[:ROUNDING][:OVERFLOW]``
items, roles left out stay float32, e.g. ``weight=s8.7:stochastic,update=s16.15:stochastic,norm=pow2``.
``float32`` (or an empty string) is the all-float policy. Defaults: rounding ``nearest``,
overflow ``saturate``. TOML form: a table whose keys are roles, each value either the same
``FORMAT:ROUNDING:OVERFLOW`` string or a table ``{format=..., rounding=..., overflow=...}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from .formats import NumberFormat
from .rounding import check_overflow, check_rounding

ROLES = ("weight", "input", "post", "update", "lr")
NORMS = ("max", "pow2")


@dataclass(frozen=True)
class RoleSpec:
    """Format, rounding and overflow of one tensor role."""

    fmt: NumberFormat = field(default_factory=NumberFormat.float32)
    rounding: str = "nearest"
    overflow: str = "saturate"

    def __post_init__(self) -> None:
        check_rounding(self.rounding)
        check_overflow(self.overflow)

    @property
    def is_float(self) -> bool:
        return self.fmt.is_float

    @classmethod
    def parse(cls, text: str, role: str = "") -> "RoleSpec":
        """``s8.7``, ``s8.7:stochastic`` or ``s8.7:stochastic:wrap`` (rounding and overflow in any order)."""
        where = f"{role}=" if role else ""
        parts = [p.strip() for p in str(text).split(":")]
        if not parts[0]:
            raise ConfigError(f"precision {where}{text!r} has no format; write e.g. {role or 'weight'}=s8.7:nearest")
        fmt = NumberFormat.parse(parts[0])
        rounding, overflow = "nearest", "saturate"
        from .rounding import OVERFLOWS, ROUNDINGS

        for extra in parts[1:]:
            if extra in ROUNDINGS:
                rounding = extra
            elif extra in OVERFLOWS:
                overflow = extra
            else:
                raise ConfigError(
                    f"precision {where}{text!r}: {extra!r} is neither a rounding mode "
                    f"({', '.join(ROUNDINGS)}) nor an overflow mode ({', '.join(OVERFLOWS)})"
                )
        return cls(fmt, rounding, overflow)

    @classmethod
    def from_value(cls, value: Any, role: str = "") -> "RoleSpec":
        if isinstance(value, RoleSpec):
            return value
        if isinstance(value, str):
            return cls.parse(value, role)
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"format", "rounding", "overflow"})
            if unknown:
                raise ConfigError(f"precision.{role}: unknown key {unknown[0]!r}; use format, rounding, overflow")
            if "format" not in value:
                raise ConfigError(f"precision.{role} needs a format, e.g. {{format = \"s8.7\"}}")
            return cls(NumberFormat.parse(value["format"]), value.get("rounding", "nearest"), value.get("overflow", "saturate"))
        raise ConfigError(f"precision.{role} must be a string like 's8.7:stochastic' or a table, got {value!r}")

    def __str__(self) -> str:
        if self.is_float:
            return "float32"
        text = f"{self.fmt}:{self.rounding}"
        return text if self.overflow == "saturate" else f"{text}:{self.overflow}"

    def to_dict(self) -> dict[str, str]:
        return {"format": str(self.fmt), "rounding": self.rounding, "overflow": self.overflow}


@dataclass(frozen=True)
class PrecisionPolicy:
    """Per-role number formats of the learning datapath; all float32 by default."""

    weight: RoleSpec = field(default_factory=RoleSpec)
    input: RoleSpec = field(default_factory=RoleSpec)
    post: RoleSpec = field(default_factory=RoleSpec)
    update: RoleSpec = field(default_factory=RoleSpec)
    lr: RoleSpec = field(default_factory=RoleSpec)
    norm: str = "max"

    def __post_init__(self) -> None:
        for role in ROLES:
            if not isinstance(getattr(self, role), RoleSpec):
                raise ConfigError(f"precision role {role} must be a RoleSpec, got {getattr(self, role)!r}")
        if self.norm not in NORMS:
            raise ConfigError(f"precision norm {self.norm!r} is unknown; choose one of: {', '.join(NORMS)}")

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def float32(cls) -> "PrecisionPolicy":
        return cls()

    @classmethod
    def parse(cls, text: "str | PrecisionPolicy | None") -> "PrecisionPolicy":
        """Read the compact string form (see the module docstring)."""
        if isinstance(text, PrecisionPolicy):
            return text
        if text is None:
            return cls()
        if not isinstance(text, str):
            raise ConfigError(f"a precision policy must be a string such as 'weight=s8.7', got {text!r}")
        items = [t.strip() for t in text.split(",") if t.strip()]
        if items in ([], ["float32"]):
            return cls()
        data: dict[str, str] = {}
        for item in items:
            if "=" not in item:
                raise ConfigError(
                    f"precision item {item!r} must look like role=FORMAT[:ROUNDING], "
                    f"e.g. weight=s8.7:stochastic (roles: {', '.join(ROLES)}, norm)"
                )
            key, value = (s.strip() for s in item.split("=", 1))
            if key in data:
                raise ConfigError(f"precision role {key!r} is given twice in {text!r}")
            data[key] = value
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PrecisionPolicy":
        """Build from a TOML table (``[precision]``) or the output of :meth:`to_dict`."""
        if not isinstance(data, dict):
            raise ConfigError(f"precision must be a table, got {data!r}")
        unknown = sorted(set(data) - set(ROLES) - {"norm"})
        if unknown:
            raise ConfigError(f"unknown precision role {unknown[0]!r}; choose from: {', '.join(ROLES)}, norm")
        kwargs: dict[str, Any] = {r: RoleSpec.from_value(data[r], r) for r in ROLES if r in data}
        if "norm" in data:
            kwargs["norm"] = data["norm"]
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str) -> "PrecisionPolicy":
        """Read a TOML file holding a ``[precision]`` table (or the roles at top level)."""
        from ..config import load_toml_dict

        data = load_toml_dict(path)
        return cls.from_dict(data.get("precision", data))

    # -- queries --------------------------------------------------------------------------------
    def spec(self, role: str) -> RoleSpec:
        if role not in ROLES:
            raise ConfigError(f"unknown precision role {role!r}; choose from: {', '.join(ROLES)}")
        return getattr(self, role)

    @property
    def is_float(self) -> bool:
        """True when nothing is quantised (the float32 reference algorithm)."""
        return all(self.spec(r).is_float for r in ROLES) and self.norm == "max"

    def with_role(self, role: str, spec: "RoleSpec | str") -> "PrecisionPolicy":
        self.spec(role)
        return replace(self, **{role: RoleSpec.from_value(spec, role)})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {r: self.spec(r).to_dict() for r in ROLES}
        out["norm"] = self.norm
        return out

    def __str__(self) -> str:
        items = [f"{r}={self.spec(r)}" for r in ROLES if not self.spec(r).is_float]
        if self.norm != "max":
            items.append(f"norm={self.norm}")
        return ",".join(items) if items else "float32"
