"""Place a network's layers onto a chip's cores under the chip's per-core limits.

The model (every step is stated in the report):

* A core holds neurons of one layer only (as the Loihi compilers place populations). Neurons are
  placed in order position by position, all channels of a position together, so neighbouring
  neurons share inputs.
* Per-core limits: neurons, synaptic memory (stored synapses x bits per synapse), synapse count,
  and distinct input lines (axons). The largest number of neurons per core meeting all known limits
  is used for every core of the layer; the limit that binds is reported.
* Without weight sharing a convolution is unrolled: every output position stores its own copy of
  the kernel. With sharing, a core stores each of its channels' kernels once.
* A soft-WTA layer needs its competition built from neurons: one inhibitory interneuron per
  competition group (output position) receives the group's K neurons and feeds back to each of
  them -- K + K synapses and one neuron per position (a global-inhibition WTA circuit). The
  on-chip learning circuit (``onchip.lateral_inhibition`` > 0) adds K x K lateral inhibitory
  synapses per position: every neuron receives one from each neuron of its group.
* A neuron whose fan-in cannot fit a core is split into ``s`` partial-sum neurons (each on a slice
  of the inputs) and one combining neuron: the smallest ``s`` that fits is used. On a spiking chip
  the combination of partial sums is an approximation, which the report says.
* Input pixels arrive from off chip and pooling is not given neurons (see the rule analysis).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chips import Chip
from .netspec import LayerSpec, conv_windows



@dataclass(frozen=True)
class _ConvGeometry:
    """Which input lines each output position of a convolution reads (reflect padding folded back)."""

    windows: tuple[np.ndarray, ...]  # per output position: flat indices of input pixels (H*W)
    channels: int  # input channels per slice


@dataclass(frozen=True)
class Population:
    """Neurons of one role in a layer with identical fan-in.

    ``group`` neurons share their inputs (the channels at one position; a whole linear layer).
    ``lines`` is the number of input lines one group reads (None for a convolution: ``conv`` says).
    ``feedback`` adds one inhibitory input line per position (the WTA interneuron's axon);
    ``lateral`` synapses per neuron (and input lines per group) come from the group's own neurons.
    """

    role: str  # excitatory | partial | combine | inhibitory
    neurons: int
    group: int
    fan_in: int
    plastic: bool
    shareable: bool  # same weights at every position (a convolution kernel)
    lines: int | None = None
    conv: _ConvGeometry | None = None
    feedback: bool = False
    copies: int = 1  # identical populations (one per input slice of a split)
    lateral: int = 0

    @property
    def fixed_fan_in(self) -> int:
        """Synapses per neuron that never learn (the WTA interneuron's feedback, lateral inhibition)."""
        return (1 if self.feedback else 0) + self.lateral

    def inputs(self, first: int, n: int) -> int:
        """Distinct input lines of the neurons first .. first+n-1."""
        g0, g1 = first // self.group, (first + n - 1) // self.group
        groups = g1 - g0 + 1
        extra = groups * ((1 if self.feedback else 0) + self.lateral)
        if self.conv is None:
            assert self.lines is not None
            shared_lines = self.lines if self.group == self.neurons else self.lines * groups
            return shared_lines + extra
        union = np.unique(np.concatenate(self.conv.windows[g0 : g1 + 1]))
        return int(union.size) * self.conv.channels + extra


@dataclass
class Placement:
    """Where one population went."""

    role: str
    neurons: int
    fan_in: int
    copies: int
    cores: int
    neurons_per_core: int
    synapses_per_core: int
    memory_bits_per_core: int
    memory_utilisation: float | None
    inputs_per_core: int | None
    limited_by: str
    stored_synapses: int
    plastic_synapses: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LayerMapping:
    layer: str
    kind: str
    fits: bool
    split: int
    populations: list[Placement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def cores(self) -> int:
        return sum(p.cores for p in self.populations)

    @property
    def neurons(self) -> int:
        return sum(p.neurons * p.copies for p in self.populations)

    @property
    def stored_synapses(self) -> int:
        return sum(p.stored_synapses for p in self.populations)

    @property
    def plastic_synapses(self) -> int:
        return sum(p.plastic_synapses for p in self.populations)

    @property
    def memory_utilisation(self) -> float | None:
        values = [p.memory_utilisation for p in self.populations if p.memory_utilisation is not None]
        return max(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "fits": self.fits,
            "split": self.split,
            "cores": self.cores,
            "neurons": self.neurons,
            "stored_synapses": self.stored_synapses,
            "plastic_synapses": self.plastic_synapses,
            "memory_utilisation": self.memory_utilisation,
            "populations": [p.to_dict() for p in self.populations],
            "notes": list(self.notes),
        }


@dataclass
class NetworkMapping:
    chip: str
    weight_bits: int | None
    bits_per_synapse: int | None
    wta_circuit: bool
    layers: list[LayerMapping]
    cores_per_chip: int | None
    notes: list[str] = field(default_factory=list)
    lateral_inhibition: bool = False

    @property
    def fits(self) -> bool:
        return all(layer.fits for layer in self.layers)

    @property
    def total_cores(self) -> int:
        return sum(layer.cores for layer in self.layers)

    @property
    def chips(self) -> int | None:
        if not self.fits or not self.cores_per_chip:
            return None
        return math.ceil(self.total_cores / self.cores_per_chip)

    def layer(self, name: str) -> LayerMapping:
        return next(m for m in self.layers if m.layer == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chip": self.chip,
            "fits": self.fits,
            "weight_bits": self.weight_bits,
            "bits_per_synapse": self.bits_per_synapse,
            "wta_circuit": self.wta_circuit,
            "lateral_inhibition": self.lateral_inhibition,
            "total_cores": self.total_cores,
            "cores_per_chip": self.cores_per_chip,
            "chips": self.chips,
            "layers": [m.to_dict() for m in self.layers],
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------------------------
# Populations of a layer


def _base_populations(layer: LayerSpec, wta: bool, lateral: bool = False) -> list[Population]:
    feedback = wta and layer.competitive
    k_lateral = layer.channels if feedback and lateral else 0
    fan_in = layer.fan_in + (1 if feedback else 0) + k_lateral
    if layer.kind == "conv":
        geometry = _ConvGeometry(tuple(np.unique(w) for w in conv_windows(layer)), layer.input_shape[0])
        main = Population("excitatory", layer.neurons, layer.channels, fan_in, layer.plastic, True,
                          conv=geometry, feedback=feedback, lateral=k_lateral)
    else:
        main = Population("excitatory", layer.neurons, layer.neurons, fan_in, layer.plastic, False,
                          lines=layer.fan_in, feedback=feedback, lateral=k_lateral)
    pops = [main]
    if feedback:
        pops.append(Population("inhibitory", layer.positions, 1, layer.channels, False, False, lines=layer.channels))
    return pops


def _split(pop: Population, layer: LayerSpec, s: int) -> list[Population] | None:
    """Partial-sum neurons over `s` input slices plus combining neurons; None if `s` is pointless."""
    base_fan_in = pop.fan_in - pop.fixed_fan_in
    if s > base_fan_in:
        return None
    if pop.conv is not None:
        c = pop.conv.channels
        if s > c:
            return None
        c_slice = math.ceil(c / s)
        k2 = layer.kernel_size * layer.kernel_size
        partial = Population("partial", pop.neurons, pop.group, c_slice * k2, pop.plastic, pop.shareable,
                             conv=_ConvGeometry(pop.conv.windows, c_slice), copies=s)
    else:
        part_lines = math.ceil(pop.lines / s) if pop.lines else math.ceil(base_fan_in / s)
        partial = Population("partial", pop.neurons, pop.group, math.ceil(base_fan_in / s), pop.plastic,
                             pop.shareable, lines=part_lines, copies=s)
    extra = pop.fixed_fan_in  # the combining neurons spike, so they receive the WTA's inhibition
    combine = Population("combine", pop.neurons, 1, s + extra, False, False, lines=s + extra)
    return [partial, combine]


# ----------------------------------------------------------------------------------------------
# Placing one population


def _per_unit_limit(capacity: int | None, per_unit: int, name: str) -> tuple[float, str]:
    if capacity is None or per_unit <= 0:
        return math.inf, name
    return capacity // per_unit, name


class _NoCapacity(Exception):
    """The chip publishes no per-core capacity at all."""


def _place(pop: Population, chip: Chip, bits: int | None) -> Placement | None:
    """Place `pop`, or None when a single neuron does not fit a core (a split is needed).

    Cores are filled group-aligned: a core holds either part of one group (when a group is larger
    than a core) or a run of whole groups, never a group's tail plus the next group's head.
    """
    arch = "architecture"
    max_neurons = chip.get(arch, "neurons_per_core")
    memory = chip.get(arch, "synaptic_memory_bits_per_core")
    max_syn = chip.get(arch, "max_synapses_per_core")
    max_axons = chip.get(arch, "max_input_axons_per_core")
    max_fan_in = chip.get(arch, "max_fan_in_per_neuron")
    shared = pop.shareable and chip.get(arch, "weight_sharing") == "shared"

    if max_fan_in is not None and pop.fan_in > max_fan_in:
        return None

    def stored(n: int) -> int:
        return (min(n, pop.group) if shared else n) * pop.fan_in

    limits: list[tuple[float, str]] = [(max_neurons if max_neurons is not None else math.inf, "neurons per core")]
    for capacity, unit, name in ((memory if bits is not None else None, pop.fan_in * (bits or 0), "synaptic memory"),
                                 (max_syn, pop.fan_in, "synapses per core")):
        if capacity is None:
            continue
        whole_kernel = pop.group * unit  # a shared core stores each channel's kernel once
        limits.append((math.inf, name) if shared and whole_kernel <= capacity else _per_unit_limit(capacity, unit, name))
    cap, limited_by = min(limits, key=lambda t: t[0])
    if cap == math.inf and all(v is None for v in (max_neurons, memory, max_syn)):
        raise _NoCapacity()
    if cap < 1:
        return None
    if max_axons is not None and pop.inputs(0, 1) > max_axons:
        return None
    groups = math.ceil(pop.neurons / pop.group)
    if cap < pop.group:
        n = int(cap)
        if max_axons is not None and pop.inputs(0, n) > max_axons:
            n = _largest_within_group(pop, n, max_axons)
            limited_by = "input axons per core"
        cores_one = groups * math.ceil(pop.group / n)
    else:
        per_core_groups = min(groups, int(cap // pop.group))
        if per_core_groups == groups:
            limited_by = "population size"
        if max_axons is not None:
            fitting = _largest_group_run(pop, per_core_groups, max_axons)
            if fitting < per_core_groups:
                per_core_groups, limited_by = fitting, "input axons per core"
        n = per_core_groups * pop.group
        cores_one = math.ceil(groups / per_core_groups)
    n = min(n, pop.neurons)
    per_core_syn = stored(n)
    stored_total = (per_core_syn * cores_one if shared else pop.neurons * pop.fan_in) * pop.copies
    mem_bits = per_core_syn * bits if bits is not None else 0
    if memory and bits is not None:
        util: float | None = mem_bits / memory
    else:
        util = per_core_syn / max_syn if max_syn else None
    return Placement(
        role=pop.role,
        neurons=pop.neurons,
        fan_in=pop.fan_in,
        copies=pop.copies,
        cores=cores_one * pop.copies,
        neurons_per_core=n,
        synapses_per_core=per_core_syn,
        memory_bits_per_core=mem_bits,
        memory_utilisation=util,
        inputs_per_core=_worst_inputs(pop, n) if max_axons is not None else None,
        limited_by=limited_by,
        stored_synapses=stored_total,
        plastic_synapses=stored_total * (pop.fan_in - pop.fixed_fan_in) // pop.fan_in if pop.plastic else 0,
    )


def _largest_within_group(pop: Population, n: int, max_axons: int) -> int:
    while n > 1 and pop.inputs(0, n) > max_axons:
        n -= 1
    return n


def _worst_inputs(pop: Population, n: int) -> int:
    """Most input lines any core reads when cores hold `n` neurons, group-aligned."""
    if n <= pop.group:
        return pop.inputs(0, n)
    run = n // pop.group
    groups = math.ceil(pop.neurons / pop.group)
    return max(pop.inputs(g * pop.group, min(run, groups - g) * pop.group) for g in range(0, groups, run))


def _largest_group_run(pop: Population, run: int, max_axons: int) -> int:
    """Most consecutive whole groups per core (<= run) such that every core reads <= max_axons lines."""
    lo, hi = 1, run
    if _worst_inputs(pop, hi * pop.group) <= max_axons:
        return hi
    while hi - lo > 1:  # lo fits (one group was checked by the caller), hi does not
        mid = (lo + hi) // 2
        if _worst_inputs(pop, mid * pop.group) <= max_axons:
            lo = mid
        else:
            hi = mid
    while lo > 1 and _worst_inputs(pop, lo * pop.group) > max_axons:  # guard against non-monotone borders
        lo -= 1
    return lo


# ----------------------------------------------------------------------------------------------
# Layers and networks


def map_layer(layer: LayerSpec, chip: Chip, bits_per_synapse: int | None, wta: bool = True,
              lateral: bool = False) -> LayerMapping:
    """Place one layer (its neurons, any partial-sum split, its WTA interneurons and lateral
    inhibitory synapses) on `chip`."""
    result = LayerMapping(layer.name, layer.kind, fits=True, split=1)
    try:
        for pop in _base_populations(layer, wta, lateral):
            placed = _place(pop, chip, bits_per_synapse)
            if placed is not None:
                result.populations.append(placed)
                continue
            for s in range(2, pop.fan_in + 1):
                parts = _split(pop, layer, s)
                if parts is None:
                    break
                placements = [_place(p, chip, bits_per_synapse) for p in parts]
                if all(pl is not None for pl in placements):
                    result.populations.extend(placements)  # type: ignore[arg-type]
                    result.split = max(result.split, s)
                    result.notes.append(
                        f"{pop.role} neurons (fan-in {pop.fan_in}) exceed a core; each is split into {s} "
                        f"partial-sum neurons plus a combining neuron"
                    )
                    break
            else:
                parts = None
            if parts is None:
                result.fits = False
                result.notes.append(f"a single {pop.role} neuron (fan-in {pop.fan_in}) cannot be placed on one core, even split")
    except _NoCapacity:
        result.fits = False
        result.notes.append("the chip file gives no per-core capacity (neurons, memory or synapse count); cannot place")
    if layer.kind == "conv" and layer.plastic and chip.get("architecture", "weight_sharing") == "replicate":
        result.notes.append(
            f"no weight sharing: the {layer.channels}x{layer.fan_in} kernel is stored at each of "
            f"{layer.positions} positions ({layer.synapses:,} synapses instead of {layer.weight_count:,})"
        )
    return result


def bits_per_synapse(chip: Chip, weight_bits: int | None, plastic: bool = True) -> int | None:
    """Stored bits per synapse: the weight plus any per-synapse learning state."""
    if weight_bits is None:
        return None
    extra = chip.get("weights", "learning_state_bits_per_synapse", 0) if plastic else 0
    return weight_bits + (extra or 0)


def map_network(layers: list[LayerSpec], chip: Chip, weight_bits: int | None, wta: bool = True,
                lateral: bool = False) -> NetworkMapping:
    """Map every layer; `weight_bits` comes from the precision policy (see ``storage.weight_bits``);
    `lateral`: the WTA also has K x K lateral inhibitory synapses (the on-chip learning circuit)."""
    bits = bits_per_synapse(chip, weight_bits)
    mapped = [map_layer(layer, chip, bits, wta, lateral) for layer in layers]
    notes = []
    fan_out = chip.get("architecture", "max_fan_out_per_neuron")
    if fan_out is not None:
        spread = [m.layer for m in mapped[1:] if m.cores > fan_out]
        if spread:
            notes.append(
                f"a neuron reaches {fan_out} axon(s), so an input line read by more cores needs splitter neurons "
                f"(not counted); layers spread over more than {fan_out} core(s): {', '.join(spread)}"
            )
    return NetworkMapping(chip.name, weight_bits, bits, wta, mapped, chip.get("architecture", "cores_per_chip"), notes,
                          lateral_inhibition=bool(wta and lateral))
