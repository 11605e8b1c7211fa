"""The named on-chip rule variants (`rules.toml`): a variant is data, never a code branch."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from ..errors import ConfigError
from .model import LearningEngineModel
from .rulestr import TraceConfig, parse_rule

TRACE_NAMES = ("x1", "x2", "y1", "y2", "y3")


@dataclass(frozen=True)
class RuleVariant:
    """A rule string, its traces, the learning epoch (0: one per sample window) and what the WTA
    neuron program does besides the LIF: an adaptive threshold (``theta_plus`` as a fraction of the
    calibrated threshold per spike, decaying by ``theta >> theta_decay_shift`` per sample)."""

    name: str
    rule: str
    traces: TraceConfig
    t_epoch: int = 0
    theta_plus: float = 0.0
    theta_decay_shift: int = 10
    note: str = ""
    chips: tuple[str, ...] = ()
    # neuron-written traces: (name, drive scale as a multiple of the calibrated drive) or
    # (name, ("harmonic", floor)); see `engine`'s module docstring
    writes: tuple[tuple[str, float | tuple[str, int]], ...] = ()

    def check(self, model: LearningEngineModel) -> None:
        """One-line errors for anything the chip's engine cannot run."""
        parse_rule(self.rule, model)
        if self.t_epoch:
            model.check_t_epoch(self.t_epoch)
        for n in TRACE_NAMES:
            model.check_trace(n, getattr(self.traces, f"{n}_impulse"), getattr(self.traces, f"{n}_tau"))
        if self.writes and not model.neuron_written_traces:
            raise ConfigError(f"rule {self.name!r}: its neuron program writes {', '.join(n for n, _ in self.writes)}; "
                              f"{model.chip}'s post traces are spike traces only")
        if self.writes and self.t_epoch:
            raise ConfigError(f"rule {self.name!r}: neuron-written traces need t_epoch = 0 (one epoch per sample)")
        if self.theta_plus and not model.neuron_written_traces:
            raise ConfigError(f"rule {self.name!r}: an adaptive threshold needs a programmable neuron; "
                              f"{model.chip}'s file says its neurons are fixed (post_trace_source != neuron-program)")


def parse_trace_spec(spec: str | dict) -> TraceConfig:
    """``"x1=16:8,y1=20:12"`` or ``{x1 = "16:8"}`` (impulse:tau) -> TraceConfig."""
    items = spec.items() if isinstance(spec, dict) else (i.split("=", 1) for i in spec.split(",") if i.strip())
    values: dict[str, float] = {}
    for item in items:
        if len(item) != 2:
            raise ConfigError(f"trace spec {spec!r}: write NAME=IMPULSE:TAU, e.g. x1=16:8")
        name, text = item[0].strip(), str(item[1]).strip()
        impulse, _, tau = text.partition(":")
        if name not in TRACE_NAMES or not tau:
            raise ConfigError(f"trace {name}={text}: write NAME=IMPULSE:TAU with NAME one of {' '.join(TRACE_NAMES)}")
        try:
            values[f"{name}_impulse"], values[f"{name}_tau"] = float(impulse), float(tau)
        except ValueError:
            raise ConfigError(f"trace {name}={text}: impulse and tau must be numbers") from None
    return TraceConfig(**values)


def parse_write(value: float | str) -> float | tuple[str, int]:
    """A neuron-written trace: a number (drive scale) or ``"harmonic:FLOOR"``."""
    if isinstance(value, str):
        kind, _, floor = value.partition(":")
        if kind != "harmonic" or not floor.strip().isdigit():
            raise ConfigError(f"neuron-written trace {value!r}: write a drive scale (a number) or 'harmonic:FLOOR'")
        return ("harmonic", int(floor))
    return float(value)


def load_variants() -> dict[str, RuleVariant]:
    data = tomllib.loads(resources.files("neurohebb.onchip").joinpath("rules.toml").read_text(encoding="utf-8"))
    out = {}
    for name, entry in data.items():
        out[name] = RuleVariant(name=name, rule=entry["rule"], traces=parse_trace_spec(entry.get("traces", {})),
                                t_epoch=int(entry.get("t_epoch", 0)), theta_plus=float(entry.get("theta_plus", 0.0)),
                                theta_decay_shift=int(entry.get("theta_decay_shift", 10)), note=entry.get("note", ""),
                                chips=tuple(entry.get("chips", ())),
                                writes=tuple((k, parse_write(v)) for k, v in entry.get("writes", {}).items()))
    return out


def resolve_variant(rule: str, traces: str = "") -> RuleVariant:
    """A variant by name, or a rule string with its traces (default: x1 = 16:8, y1 = 16:4)."""
    variants = load_variants()
    if rule in variants:
        return variants[rule]
    if not any(c in rule for c in "*^") and " " not in rule.strip():
        raise ConfigError(f"unknown on-chip rule {rule!r}; known: {', '.join(variants)}, or give a rule string "
                          "such as '2^-2 * x1 * y0 - 2^-5 * w * y0'")
    return RuleVariant(name="custom", rule=rule, traces=parse_trace_spec(traces or "x1=16:8,y1=16:4"))
