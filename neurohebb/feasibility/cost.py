"""Operation counts, energy and latency per inference and per training sample.

Assumptions (each one is repeated in the report):

* Rate coding over ``time_steps`` steps per sample: an input line with spike probability ``r``
  per step causes ``r * time_steps`` spikes, each one a synaptic operation at every synapse it
  feeds. Input lines are the layer's inputs (pixels for the first layer).
* Every neuron is updated every step; a neuron counts as "active" in a step with probability
  equal to its layer's output rate (the chip's active/idle update energies are weighted so).
* The WTA circuit's interneuron fires at its layer's output rate (2 * neurons * rate synaptic
  operations per step), and with the on-chip learning circuit's lateral inhibition each spike also
  drives the K lateral synapses of its group; partial-sum neurons of a split fire at their layer's
  output rate.
* Learning applies one update per stored plastic synapse per learning epoch; an epoch is the
  whole sample (or the chip's longest epoch if shorter). With shared weights, the work is one
  contribution per (position, synapse) instead.
* A core's work in a step is its layer's work divided evenly over the layer's cores; cores run in
  parallel, so a step lasts as long as the busiest core (plus the barrier), or the chip's fixed tick.
* Energies are the chip file's per-event figures times the counts; static power is reported
  separately (power x latency) where the chip gives it. Unknown figures give unknown results,
  never zeros.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .activity import ActivityProfile, LayerActivity
from .chips import Chip
from .mapping import LayerMapping, NetworkMapping
from .netspec import LayerSpec, conv_windows

DEFAULT_TIME_STEPS = 32


def _tap_counts(layer: LayerSpec) -> np.ndarray:
    """How many (output position, kernel tap) pairs read each input pixel, reflect padding included."""
    _, h, w = layer.input_shape
    counts = np.bincount(np.concatenate(conv_windows(layer)), minlength=h * w)
    return counts.reshape(h, w)


def feedforward_synops_per_step(layer: LayerSpec, act: LayerActivity) -> float:
    """Expected synaptic operations per time step of the layer's feed-forward synapses."""
    if layer.kind == "linear" or act.input_rates is None:
        return layer.synapses * act.input_rate
    counts = _tap_counts(layer)
    rates = np.asarray(act.input_rates, dtype=np.float64).reshape(layer.input_shape)
    return float(layer.channels * (rates * counts[None]).sum())


@dataclass
class LayerCost:
    layer: str
    synops_per_step: float
    neurons: int
    output_rate: float
    synaptic_updates: float  # per training sample
    step_time_s: float | None  # busiest core's time for one step
    update_time_s: float | None  # busiest core's learning time per sample

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class NetworkCost:
    chip: str
    time_steps: int
    updates_per_sample: int | None
    layers: list[LayerCost]
    synops_per_inference: float
    neuron_updates_per_inference: float
    synaptic_updates_per_sample: float | None
    energy_per_inference_j: float | None
    energy_per_training_sample_j: float | None
    static_energy_per_inference_j: float | None
    latency_per_inference_s: float | None
    latency_per_training_sample_s: float | None
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "layers"}
        out["layers"] = [c.to_dict() for c in self.layers]
        return out


def _figure(chip: Chip, section: str, name: str, missing: list[str]) -> float | None:
    value = chip.get(section, name)
    if value is None:
        missing.append(f"{section}.{name}")
    return value


def updates_per_sample(chip: Chip, time_steps: int) -> int | None:
    """Learning epochs per sample (None when the chip cannot learn)."""
    engine = chip.get("learning", "engine")
    if engine in (None, "none"):
        return None
    epoch_max = chip.get("learning", "learning_epoch_steps_max")
    if epoch_max is None:
        return 1
    return math.ceil(time_steps / min(time_steps, epoch_max))


def estimate_costs(layers: list[LayerSpec], mapping: NetworkMapping, activity: ActivityProfile, chip: Chip,
                   time_steps: int = DEFAULT_TIME_STEPS) -> NetworkCost:
    """Counts, energy and latency for one inference and one training sample on `chip`."""
    if time_steps < 1:
        raise ValueError("time_steps must be >= 1")
    missing: list[str] = []
    notes: list[str] = []
    per_sample = updates_per_sample(chip, time_steps)
    shared = chip.get("architecture", "weight_sharing") == "shared"

    t_syn = chip.get("timing", "synaptic_op_ns")
    t_act = chip.get("timing", "neuron_update_ns")
    t_idle = chip.get("timing", "neuron_update_idle_ns", t_act)
    t_upd = chip.get("timing", "synaptic_update_ns")
    throughput = chip.get("timing", "synaptic_ops_per_second_per_core")

    costs: list[LayerCost] = []
    for spec, lm in zip(layers, mapping.layers):
        act = activity.for_layer(spec.name)
        ff = feedforward_synops_per_step(spec, act)
        extra = 0.0
        if mapping.wta_circuit and spec.competitive:
            extra += 2 * spec.neurons * act.output_rate
            if mapping.lateral_inhibition:  # each spike also drives its group's K lateral synapses
                extra += spec.neurons * act.output_rate * spec.channels
        if lm.split > 1:
            extra += spec.neurons * lm.split * act.output_rate
        synops = ff + extra
        if spec.plastic and per_sample is not None:
            work = spec.synapses if shared and spec.kind == "conv" else lm.plastic_synapses
            updates = float(work * per_sample)
        else:
            updates = 0.0
        step_time = _core_step_time(synops, lm, act.output_rate, t_syn, t_act, t_idle, throughput)
        update_time = None
        if updates and t_upd is not None and lm.cores:
            update_time = updates / lm.cores * t_upd * 1e-9
        costs.append(LayerCost(spec.name, synops, lm.neurons, act.output_rate, updates, step_time, update_time))

    synops_total = time_steps * sum(c.synops_per_step for c in costs)
    neuron_updates = float(time_steps * sum(c.neurons for c in costs))
    learning = per_sample is not None
    updates_total = sum(c.synaptic_updates for c in costs) if learning else None

    # energy
    e_inf = None
    if chip.get("energy", "synaptic_op_is_all_in") is True:
        e_syn = _figure(chip, "energy", "synaptic_op_pj", missing)
        e_inf = synops_total * e_syn * 1e-12 if e_syn is not None else None
        notes.append("the synaptic-operation energy is an all-in chip average; neuron updates and static power are inside it")
    else:
        e_syn = _figure(chip, "energy", "synaptic_op_pj", missing)
        e_act = _figure(chip, "energy", "neuron_update_pj", missing)
        e_idle = chip.get("energy", "neuron_update_idle_pj", e_act)
        if None not in (e_syn, e_act, e_idle):
            neuron_pj = sum(time_steps * c.neurons * (c.output_rate * e_act + (1 - c.output_rate) * e_idle) for c in costs)
            e_inf = (synops_total * e_syn + neuron_pj) * 1e-12
    e_train = None
    if learning and e_inf is not None:
        e_upd = _figure(chip, "energy", "synaptic_update_pj", missing)
        if e_upd is not None:
            e_train = e_inf + updates_total * e_upd * 1e-12
    elif learning:
        _figure(chip, "energy", "synaptic_update_pj", missing)

    # latency
    tick = chip.get("timing", "time_step_us")
    barrier = chip.get("timing", "barrier_sync_ns")
    busiest = [c.step_time_s for c in costs]
    step: float | None
    if None in busiest:
        step = tick * 1e-6 if tick is not None else None
        if tick is not None:
            notes.append("per-core work could not be timed; each step is assumed to fit the chip's fixed tick")
        else:
            missing.append("timing.synaptic_op_ns or timing.synaptic_ops_per_second_per_core")
    else:
        work = max(busiest) + (barrier or 0.0) * 1e-9
        step = max(work, tick * 1e-6) if tick is not None else work
        if tick is not None and work > tick * 1e-6:
            notes.append(f"the busiest core needs {work * 1e6:.1f} us per step, more than the {tick:g} us tick: "
                         "real-time operation is not possible, steps stretch")
    lat_inf = step * time_steps if step is not None else None
    lat_train = None
    if learning and lat_inf is not None:
        upd_times = [c.update_time_s for c, s in zip(costs, layers) if s.plastic]
        if all(u is not None for u in upd_times):
            lat_train = lat_inf + max(upd_times, default=0.0)  # type: ignore[type-var]
        else:
            missing.append("timing.synaptic_update_ns")
    static = chip.get("energy", "static_power_mw")
    e_static = static * 1e-3 * lat_inf if (static is not None and lat_inf is not None) else None

    return NetworkCost(
        chip=chip.name,
        time_steps=time_steps,
        updates_per_sample=per_sample,
        layers=costs,
        synops_per_inference=synops_total,
        neuron_updates_per_inference=neuron_updates,
        synaptic_updates_per_sample=updates_total,
        energy_per_inference_j=e_inf,
        energy_per_training_sample_j=e_train,
        static_energy_per_inference_j=e_static,
        latency_per_inference_s=lat_inf,
        latency_per_training_sample_s=lat_train,
        missing=sorted(set(missing)),
        notes=notes,
    )


def _core_step_time(synops: float, lm: LayerMapping, rate: float, t_syn, t_act, t_idle, throughput) -> float | None:
    """Busiest core's time for one step (s): its share of the layer's synaptic operations and its neurons."""
    if not lm.cores:
        return None
    per_core_synops = synops / lm.cores
    neurons = max((p.neurons_per_core for p in lm.populations), default=0)
    if t_syn is not None and t_act is not None:
        return (per_core_synops * t_syn + neurons * (rate * t_act + (1 - rate) * t_idle)) * 1e-9
    if throughput:
        return per_core_synops / throughput
    return None
