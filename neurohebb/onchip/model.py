"""A chip's learning engine as one frozen model, built from its chip file (``hardware/*.toml``).

Why: the widths and limits of a sum-of-products learning engine (trace bits, impulse fraction
bits, scaling mantissa/exponent, weight and accumulator widths, weight exponent, epoch length,
which dependencies and traces exist) used to be Python constants in three modules, so a user's
own chip file did not change the rule neurohebb emitted or the arithmetic it ran. Now the
feasibility report (`feasibility.expressibility`), the integer engine (`backends.lava.sop`), the
Lava weight conversion and the on-chip trainer all read this one object, and this object reads
only the chip file.

Loihi and Loihi 2 differ where their files differ: on Loihi 2 the post-synaptic neuron program
may write y1-y3 (``post_trace_source = "neuron-program"``: three-factor rules); on Loihi the
post traces are filtered spikes only.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

FIELDS = {  # model attribute -> (chip section, chip field)
    "trace_bits": ("learning", "trace_bits"),
    "impulse_fraction_bits": ("learning", "trace_impulse_fraction_bits"),
    "mantissa_bits": ("learning", "scaling_mantissa_bits"),
    "scaling_exponent_min": ("learning", "scaling_exponent_min"),
    "scaling_exponent_max": ("learning", "scaling_exponent_max"),
    "accumulator_bits": ("learning", "update_bits"),
    "t_epoch_max": ("learning", "learning_epoch_steps_max"),
    "pre_traces": ("learning", "pre_traces"),
    "post_traces": ("learning", "post_traces"),
    "weight_bits": ("weights", "max_bits"),
    "weight_exponent_min": ("weights", "exponent_min"),
    "weight_exponent_max": ("weights", "exponent_max"),
}


@dataclass(frozen=True)
class LearningEngineModel:
    """The integer arithmetic of one chip's sum-of-products learning engine."""

    chip: str
    trace_bits: int  # a trace register holds 0 .. 2**trace_bits - 1
    impulse_fraction_bits: int  # fractional impulse bits, rounded stochastically
    mantissa_bits: int  # signed mantissa of a product's scale m * 2**e
    scaling_exponent_min: int
    scaling_exponent_max: int
    accumulator_bits: int  # signed synaptic accumulator (magnitude bits = accumulator_bits - 1)
    t_epoch_max: int
    pre_traces: int
    post_traces: int
    weight_bits: int  # signed weight width inside the engine (sign included)
    weight_exponent_min: int
    weight_exponent_max: int
    dependencies: tuple[str, ...]  # e.g. ("x0", "y0", "u")
    neuron_written_traces: bool  # the post-synaptic neuron program writes y1..y<post_traces>

    # -- derived widths -------------------------------------------------------------------------
    @property
    def trace_max(self) -> int:
        return 2**self.trace_bits - 1

    @property
    def trace_names(self) -> tuple[str, ...]:
        return (tuple(f"x{i + 1}" for i in range(self.pre_traces))
                + tuple(f"y{i + 1}" for i in range(self.post_traces)))

    @property
    def factor_widths(self) -> dict[str, int]:
        """Width each factor occupies in a product (spikes 1 bit, traces, the signed weight)."""
        widths = {"x0": 1, "y0": 1}
        widths.update({name: self.trace_bits for name in self.trace_names})
        widths["w"] = self.weight_bits
        return widths

    @property
    def accumulator_magnitude_bits(self) -> int:
        return self.accumulator_bits - 1

    @property
    def accumulator_range(self) -> tuple[int, int]:
        m = self.accumulator_magnitude_bits
        return -(2**m) - 1, 2**m - 1

    @property
    def weight_range(self) -> tuple[int, int]:
        """Mixed-sign weights: magnitudes of weight_bits - 1 bits."""
        m = self.weight_bits - 1
        return -(2**m), 2**m - 1

    @property
    def weight_shift(self) -> int:
        """Weights enter the accumulator left-shifted onto its top bits."""
        return self.accumulator_bits - self.weight_bits

    @property
    def round_shift(self) -> int:
        """Fractional accumulator bits rounded away stochastically when the weight is written."""
        return self.accumulator_magnitude_bits - (self.weight_bits - 1)

    @property
    def exponent_offset(self) -> int:
        """Left shift of a product with scale exponent 0: the weight sits ``weight_shift`` bits up in
        the accumulator, so a product shifted by ``e + weight_shift`` adds ``P * 2**e`` weight units
        (Lava stores e + 7 and shifts by it: the same 7 bits on Loihi 2)."""
        return self.weight_shift

    @property
    def scaling_exponent_range(self) -> tuple[int, int]:
        return self.scaling_exponent_min, self.scaling_exponent_max

    @property
    def weight_exponent_range(self) -> tuple[int, int]:
        return self.weight_exponent_min, self.weight_exponent_max

    def product_shift(self, factors: tuple[str, ...]) -> int:
        """Right shift applied to a product of ``factors`` so it fits the accumulator."""
        widths = self.factor_widths
        width = sum(widths[f] for f in factors) + self.mantissa_bits
        return max(0, width - self.accumulator_magnitude_bits)

    # -- validation of settings ----------------------------------------------------------------
    def check_t_epoch(self, t_epoch: int) -> int:
        if not isinstance(t_epoch, int) or isinstance(t_epoch, bool) or not 1 <= t_epoch <= self.t_epoch_max:
            raise ConfigError(f"t_epoch = {t_epoch!r} is outside {self.chip}'s learning epoch range 1..{self.t_epoch_max} "
                              f"(learning.learning_epoch_steps_max of its chip file); choose a shorter epoch")
        return t_epoch

    def check_weight_exponent(self, weight_exp: int) -> int:
        lo, hi = self.weight_exponent_range
        if not lo <= int(weight_exp) <= hi:
            raise ConfigError(f"weight_exp={weight_exp} is outside {self.chip}'s range {lo}..{hi}; "
                              "use a larger num_weight_bits or rescale the weights")
        return int(weight_exp)

    def check_trace(self, name: str, impulse: float, tau: float) -> None:
        if name not in self.trace_names:
            raise ConfigError(f"trace {name!r} does not exist on {self.chip}; its traces are {' '.join(self.trace_names)}")
        if not 0 <= impulse <= self.trace_max:
            raise ConfigError(f"trace {name}: impulse {impulse:g} is outside 0..{self.trace_max} ({self.trace_bits}-bit traces on {self.chip})")
        if tau < 0:
            raise ConfigError(f"trace {name}: tau must be >= 0, got {tau:g}")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def engine_model(chip) -> LearningEngineModel:
    """The learning-engine model of a loaded chip (`feasibility.chips.Chip`); one-line error when
    the chip has no sum-of-products engine or its file leaves a needed figure unknown."""
    if chip.get("learning", "engine") != "sum-of-products":
        raise ConfigError(f"{chip.name} has no sum-of-products learning engine "
                          f"(learning.engine = {chip.get('learning', 'engine')!r}); on-chip training needs one, e.g. --on-chip loihi2")
    values = {}
    for attr, (section, name) in FIELDS.items():
        value = chip.get(section, name)
        if value is None:
            raise ConfigError(f"chip file {chip.path}: {section}.{name} is not known; the learning engine needs it")
        values[attr] = int(value)
    deps = chip.get("learning", "dependencies")
    if not deps:
        raise ConfigError(f"chip file {chip.path}: learning.dependencies is not known; the learning engine needs it")
    if values["scaling_exponent_min"] > values["scaling_exponent_max"] or values["weight_exponent_min"] > values["weight_exponent_max"]:
        raise ConfigError(f"chip file {chip.path}: an exponent range has min > max")
    return LearningEngineModel(chip=chip.name, dependencies=tuple(str(deps).split()),
                               neuron_written_traces=chip.get("learning", "post_trace_source") == "neuron-program", **values)


@functools.lru_cache(maxsize=16)
def _cached(name_or_path: str, mtime: float) -> LearningEngineModel:
    from ..feasibility.chips import load_chip

    return engine_model(load_chip(name_or_path))


def load_engine_model(name_or_path: str | Path = "loihi2") -> LearningEngineModel:
    """The model for a chip name (``loihi2``, ``loihi``) or a chip file path (re-read when edited)."""
    from ..feasibility.chips import _chip_files

    text = str(name_or_path)
    path = Path(text) if (text.endswith(".toml") or Path(text).is_file()) else _chip_files().get(text)
    mtime = path.stat().st_mtime if path is not None and path.is_file() else 0.0
    return _cached(text, mtime)
