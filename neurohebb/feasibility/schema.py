"""The fields a chip description must hold, their types and what each one means.

Why a table and not dataclass fields: the loader validates a user's TOML against it (naming the
offending field), the template in ``hardware/_template.toml`` documents the same fields, and a test
checks the two agree -- one list, three uses.

Every field is a *figure*: an inline table that either carries a value and the source it comes
from, or says explicitly that the figure is unknown or does not apply::

    cores_per_chip = { value = 128, source = "davies2018, p. 86: '128 neuromorphic cores'" }
    synaptic_op_pj = { unknown = "no per-operation energy has been published for this chip" }
    time_step_us   = { not_applicable = "asynchronous: a step lasts as long as its work" }

A ``source`` starts with a key of the file's ``[references]`` table, or with ``derived:`` (arithmetic
on sourced figures, shown in the text) or ``assumption:`` (a modelling choice, stated); nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

# Allowed string values of the enumerated fields.
WEIGHT_SHARING = ("replicate", "shared")
WEIGHT_FORMATS = ("fixed", "type-table", "programmable")
ENGINES = ("none", "sum-of-products", "programmable")
POST_TRACE_SOURCES = ("spikes", "neuron-program", "software")
ARITHMETIC = ("fixed", "float32")

SOURCE_PREFIXES = ("derived", "assumption")


@dataclass(frozen=True)
class FieldSpec:
    """One figure of a chip description: its type, bounds and meaning."""

    kind: str  # "int" | "number" | "bool" | "str" | "choice"
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # inclusive lower bound for int/number


def _int(help_: str, minimum: float = 0) -> FieldSpec:
    return FieldSpec("int", help_, minimum=minimum)


def _signed(help_: str) -> FieldSpec:
    """An integer that may be negative (exponents)."""
    return FieldSpec("int", help_, minimum=None)


def _num(help_: str, minimum: float = 0) -> FieldSpec:
    return FieldSpec("number", help_, minimum=minimum)


def _choice(help_: str, choices: tuple[str, ...]) -> FieldSpec:
    return FieldSpec("choice", help_, choices=choices)


SCHEMA: dict[str, dict[str, FieldSpec]] = {
    "architecture": {
        "cores_per_chip": _int("neuromorphic cores (processing elements) per chip", 1),
        "neurons_per_core": _int("neurons (compartments) one core can hold", 1),
        "synaptic_memory_bits_per_core": _int("bits of synaptic memory per core", 1),
        "max_synapses_per_core": _int("synapse count one core can hold, where that (not bits) is the published limit", 1),
        "max_input_axons_per_core": _int("distinct input lines (axons) one core can receive", 1),
        "max_output_axons_per_core": _int("distinct core-to-core output routes one core can send", 1),
        "max_fan_in_per_neuron": _int("synapses one neuron can receive", 1),
        "max_fan_out_per_neuron": _int("destinations (axons) one neuron's spike can be sent to", 1),
        "weight_sharing": _choice(
            "whether plastic convolution weights can be stored once and shared by all positions "
            "('shared') or must be stored once per output position ('replicate')",
            WEIGHT_SHARING,
        ),
    },
    "weights": {
        "min_bits": _int("fewest bits a stored weight can use", 1),
        "max_bits": _int("most bits a stored weight can use (sign included)", 1),
        "signed": FieldSpec("bool", "whether one synapse population can hold both signs"),
        "format": _choice(
            "how a weight is stored: 'fixed' point, 'type-table' (a synapse selects one of a few "
            "per-neuron values) or 'programmable' (software-defined)",
            WEIGHT_FORMATS,
        ),
        "learning_state_bits_per_synapse": _int("extra bits stored per plastic synapse for the learning rule"),
        "exponent_min": _signed("smallest shared weight exponent a synapse population can use (w_real = w * 2^e)"),
        "exponent_max": _signed("largest shared weight exponent a synapse population can use"),
    },
    "learning": {
        "on_chip": FieldSpec("bool", "whether weights can change on the chip while it runs"),
        "engine": _choice("the kind of learning engine", ENGINES),
        "pre_traces": _int("pre-synaptic traces a rule may read"),
        "post_traces": _int("post-synaptic traces a rule may read"),
        "trace_bits": _int("precision of a trace", 1),
        "post_trace_source": _choice(
            "what drives a post-synaptic trace: filtered 'spikes' only, a 'neuron-program' that may "
            "write any value it computes (e.g. the input current u), or 'software'",
            POST_TRACE_SOURCES,
        ),
        "third_factor": FieldSpec("str", "what a third factor (neuromodulator, reward) can be"),
        "weight_readable": FieldSpec("bool", "whether a rule may read the synapse's own weight"),
        "per_neuron_reductions": FieldSpec(
            "bool", "whether a rule may use a reduction over one neuron's synapses (e.g. ||W_k||)"
        ),
        "layer_reductions": FieldSpec(
            "bool", "whether a rule may use a reduction over a whole layer (e.g. max |dW|)"
        ),
        "update_bits": _int("precision of the weight-update accumulator", 1),
        "rounding": FieldSpec("str", "how updates and traces are rounded"),
        "learning_epoch_steps_max": _int("longest learning epoch in time steps", 1),
        "scaling_mantissa_bits": _int("bits of a rule coefficient's mantissa (coefficient = m * 2^e)", 1),
        "scaling_exponent_min": _signed("smallest exponent e of a rule coefficient m * 2^e"),
        "scaling_exponent_max": _signed("largest exponent e of a rule coefficient m * 2^e"),
        "trace_impulse_fraction_bits": _int("fractional bits of a trace impulse (rounded stochastically into the trace)"),
        "dependencies": FieldSpec("str", "dependencies a product may start with, space-separated (e.g. 'x0 y0 u')"),
        "arithmetic": _choice("number system of the learning engine", ARITHMETIC),
        "lava_rule_strings": FieldSpec("bool", "whether Lava's sum-of-products rule strings program this chip"),
    },
    "energy": {
        "synaptic_op_pj": _num("energy of one synaptic operation (a spike arriving at one synapse), pJ"),
        "synaptic_op_is_all_in": FieldSpec(
            "bool", "whether synaptic_op_pj is a whole-chip average that already includes neuron updates and static power"
        ),
        "synaptic_update_pj": _num("energy of one synaptic weight update by the learning engine, pJ"),
        "neuron_update_pj": _num("energy of one neuron update in a step where the neuron is active, pJ"),
        "neuron_update_idle_pj": _num("energy of one neuron update in a step where it is idle, pJ"),
        "static_power_mw": _num("static (leakage/baseline) power of one chip, mW"),
    },
    "timing": {
        "time_step_us": _num("duration of one time step for chips with a fixed tick, microseconds"),
        "synaptic_op_ns": _num("time of one synaptic operation on a core, ns"),
        "synaptic_update_ns": _num("time of one synaptic update on a core, ns"),
        "neuron_update_ns": _num("time of one active neuron update on a core, ns"),
        "neuron_update_idle_ns": _num("time of one idle neuron update on a core, ns"),
        "barrier_sync_ns": _num("time of the end-of-step synchronisation across the chip, ns"),
        "synaptic_ops_per_second_per_core": _num("sustained synaptic operations per second one core can process"),
    },
}

TOP_LEVEL_STRINGS = ("name", "display_name", "vendor", "summary")
