"""One feasibility analysis: a network, its activity, a precision policy and a list of chips in;
a plain-data report (JSON-ready) out.

Why plain data: the CLI prints it, writes it as JSON, plots it, and the notebook reads the same
structure; and `analyse` itself is pure (no torch), so tests can feed hand-built networks.
"""
from __future__ import annotations

from typing import Any

from .. import __version__
from ..description import describe
from ..precision import PrecisionPolicy
from .activity import DEFAULT_SAMPLES, ActivityProfile, measure_activity, sample_inputs, uniform_activity
from .chips import Chip
from .cost import DEFAULT_TIME_STEPS, estimate_costs
from .expressibility import analyse_network
from .mapping import map_network
from .netspec import LayerSpec, network_layers, spec_layers
from .storage import role_limits, weight_storage

MODEL_ASSUMPTIONS = (
    "rate coding: an activation is a spike train whose per-step spike probability is the activation over its "
    "layer's 99.9th percentile (pixels as they are); a sample lasts time_steps steps",
    "a core holds neurons of one layer; neurons are placed position by position with all channels of a position together",
    "a soft-WTA layer's competition uses one inhibitory interneuron per position (K + K synapses), counted in the mapping; "
    "an on-chip learning run with lateral inhibition (onchip.lateral_inhibition > 0) adds K x K lateral synapses per position",
    "a neuron too large for a core is split into partial-sum neurons plus a combining neuron (approximate on spiking chips)",
    "input pixels arrive from off chip; pooling and the readout's label path are not given neurons",
    "learning is online: one update per stored plastic synapse per learning epoch (the sample, or the chip's longest epoch)",
    "energy = per-event figures x counts; static power only where the chip gives it, reported separately",
    "latency = time_steps x (busiest core's step time + barrier), or x the chip's fixed tick when that is longer",
)


def _layer_summary(layer: LayerSpec) -> dict[str, Any]:
    return {
        "name": layer.name,
        "kind": layer.kind,
        "rule": layer.rule,
        "input_shape": list(layer.input_shape),
        "output_shape": [layer.channels, layer.out_height, layer.out_width],
        "neurons": layer.neurons,
        "fan_in": layer.fan_in,
        "synapses_unrolled": layer.synapses,
        "distinct_weights": layer.weight_count,
        "competitive": layer.competitive,
    }


def _verdict(mapping, rules, cost) -> dict[str, Any]:
    plastic = [r for r in rules if r.rule not in ("supervised", "random")]
    statuses = {r.status for r in plastic}
    if not plastic:
        learning = "no plastic layers"
    elif "not expressible" in statuses:
        learning = "not expressible"
    elif statuses == {"exact"}:
        learning = "exact"
    else:
        learning = "approximate"
    return {
        "fits": mapping.fits,
        "cores": mapping.total_cores,
        "chips": mapping.chips,
        "learning": learning,
        "energy_per_inference_j": cost.energy_per_inference_j,
        "energy_per_training_sample_j": cost.energy_per_training_sample_j,
        "latency_per_inference_s": cost.latency_per_inference_s,
        "latency_per_training_sample_s": cost.latency_per_training_sample_s,
    }


def analyse_chip(layers: list[LayerSpec], chip: Chip, policy: PrecisionPolicy, activity: ActivityProfile, *,
                 time_steps: int = DEFAULT_TIME_STEPS, batch_size: int = 1, wta: bool = True,
                 lateral: bool = False) -> dict[str, Any]:
    storage = weight_storage(chip, policy)
    mapping = map_network(layers, chip, storage.bits, wta, lateral)
    rules = analyse_network(layers, chip, policy, activity, time_steps, batch_size)
    cost = estimate_costs(layers, mapping, activity, chip, time_steps)
    return {
        "chip": {"name": chip.name, "display_name": chip.display_name, "vendor": chip.vendor,
                 "summary": chip.summary, "path": chip.path, "references": dict(chip.references),
                 "neurons_per_core": chip.get("architecture", "neurons_per_core"),
                 "cores_per_chip": chip.get("architecture", "cores_per_chip")},
        "verdict": _verdict(mapping, rules, cost),
        "weights": {"bits": storage.bits, "policy": storage.requested, "note": storage.note, "exact": storage.exact},
        "precision_limits": role_limits(chip, policy),
        "mapping": mapping.to_dict(),
        "rules": [r.to_dict() for r in rules],
        "cost": cost.to_dict(),
        "chip_assumptions": [{"field": f, "statement": s} for f, s in chip.assumptions()],
        "figures_used": _figures_used(chip),
    }


def _figures_used(chip: Chip) -> dict[str, str]:
    """Every figure the report rests on, with its source or why it is missing."""
    return {f"{sec}.{name}": fig.describe() for sec, figs in chip.figures.items() for name, fig in figs.items()}


def analyse(layers: list[LayerSpec], chips: list[Chip], policy: PrecisionPolicy, activity: ActivityProfile, *,
            network: str = "custom", time_steps: int = DEFAULT_TIME_STEPS, batch_size: int = 1,
            wta: bool = True, lateral: bool = False) -> dict[str, Any]:
    """The whole report for `layers` on every chip in `chips`."""
    if not chips:
        raise ValueError("analyse needs at least one chip")
    return {
        "neurohebb_version": __version__,
        "network": {"name": network, "layers": [_layer_summary(layer) for layer in layers]},
        "precision": str(policy),
        "time_steps": time_steps,
        "hebbian_batch_size": batch_size,
        "wta_circuit": wta,
        "lateral_inhibition": bool(wta and lateral),
        "activity": activity.to_dict(),
        "assumptions": list(MODEL_ASSUMPTIONS),
        "chips": [analyse_chip(layers, chip, policy, activity, time_steps=time_steps, batch_size=batch_size, wta=wta,
                               lateral=lateral)
                  for chip in chips],
    }


def config_activity(config, *, net=None, data_dir: str | None = None, samples: int = DEFAULT_SAMPLES,
                    activity_rate: float | None = None, seed: int = 0) -> ActivityProfile:
    """Activity of `config`'s network: measured on `samples` test images with `net` (a trained
    HebbNetwork) or, without one, with the untrained network at its seeded initialisation; or the
    uniform `activity_rate` when given (then weights and currents are not measured)."""
    layers = network_layers(config)
    if activity_rate is not None:
        return uniform_activity(layers, activity_rate)
    import torch

    from ..network import HebbNetwork

    trained = net is not None
    if net is None:
        net = HebbNetwork(config, generator=torch.Generator().manual_seed(seed))
    x, data_note = sample_inputs(config, data_dir, samples)
    state = "the trained checkpoint" if trained else f"the untrained network (seed {seed}, weights at initialisation)"
    return measure_activity(net.cpu().float(), x, layers, f"measured with {state} on {data_note}", batch_stats=not trained)


def analyse_config(config, chips: list[Chip], policy: PrecisionPolicy, *, net=None, data_dir: str | None = None,
                   samples: int = DEFAULT_SAMPLES, activity_rate: float | None = None, seed: int = 0,
                   time_steps: int = DEFAULT_TIME_STEPS, wta: bool = True, network: str | None = None) -> dict[str, Any]:
    """The report for a RunConfig on `chips` (activity as in `config_activity`)."""
    activity = config_activity(config, net=net, data_dir=data_dir, samples=samples, activity_rate=activity_rate, seed=seed)
    # a trained network: the layers of its own description (the one the backends deploy)
    layers = spec_layers(describe(net)) if net is not None else network_layers(config)
    # the on-chip learning circuit's WTA adds K x K lateral inhibitory synapses (onchip.lateral_inhibition)
    lateral = bool(config.onchip.chip) and config.onchip.lateral_inhibition > 0
    return analyse(layers, chips, policy, activity, network=network or config.preset,
                   time_steps=time_steps, batch_size=config.hebbian.batch_size, wta=wta, lateral=lateral)
