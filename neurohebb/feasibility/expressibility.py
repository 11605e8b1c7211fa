"""Can a chip's learning engine express a layer's plasticity -- exactly, approximately, or not at all?

The SoftHebb update of neuron k and input i is ``dW_ik = eta * y_k * (x_i - u_k * W_ik)`` with
``y = softmax(t_invert * u)`` over the layer's channels (multilayer SoftHebb flips the sign of y for
every non-winner), optionally divided by ``max |dW|`` over the layer and scaled by a per-neuron rate
``eta * (| ||W_k|| - 1 |) ** p``. Each of these terms is judged against the capabilities the chip
file declares (which variables a rule may read, what drives its traces, which reductions exist),
not against chip names, so a user's own chip file gets the same analysis.

Where the chip is programmed by Lava rule strings (Loihi 2), the rule is also emitted in Lava's
sum-of-products form with fixed-point coefficients chosen from the layer's measured magnitudes,
together with what the post-synaptic neuron must write into its traces. This module only builds
strings; it never imports Lava.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..precision import PrecisionPolicy
from .activity import ActivityProfile, LayerActivity
from .chips import Chip
from .netspec import LayerSpec
from .storage import role_limits, weight_storage

STATUSES = ("exact", "approximate", "dropped", "not expressible")

# A sum-of-products engine's arithmetic comes from the chip file, through one model
# (`neurohebb.onchip.model.LearningEngineModel`): a product's scaling is m * 2^e (signed
# `mantissa_bits` m, e in the chip's scaling-exponent range); the product is right-shifted to fit
# the accumulator (`model.product_shift`) and added to the weight on the accumulator's top bits,
# so one unit of a product's result changes the weight by 2^(e - shift) weight steps.
LAVA_TAU_MAX = 255  # trace time constants Lava's rule strings are written with (8-bit in Lava's examples)


def _model(chip: Chip | None):
    from ..onchip.model import engine_model, load_engine_model

    return engine_model(chip) if chip is not None else load_engine_model("loihi2")


@dataclass(frozen=True)
class Term:
    """One part of a rule and how the chip handles it."""

    name: str
    status: str
    detail: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def overall(terms: list[Term]) -> str:
    """exact if every term is exact; not expressible if any term is; approximate otherwise."""
    statuses = {t.status for t in terms}
    if "not expressible" in statuses:
        return "not expressible"
    if statuses - {"exact"}:
        return "approximate"
    return "exact"


@dataclass
class LayerRules:
    layer: str
    rule: str
    status: str
    learning: list[Term]
    forward: list[Term]
    rule_string: str | None = None
    lava: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "rule": self.rule,
            "status": self.status,
            "forward_status": overall(self.forward) if self.forward else "exact",
            "learning": [t.to_dict() for t in self.learning],
            "forward": [t.to_dict() for t in self.forward],
            "rule_string": self.rule_string,
            "lava": self.lava,
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------------------------
# Fixed-point coefficients


def product_shift(factors: tuple[str, ...], model=None) -> int:
    """Right shift the engine (``model``; Loihi 2's by default) applies to a product of these factors."""
    return (model or _model(None)).product_shift(factors)


@dataclass(frozen=True)
class Coefficient:
    """A wanted coefficient (weight steps per unit of a product) and its nearest m * 2^e."""

    wanted: float
    mantissa: int
    exponent: int
    shift: int

    @property
    def represented(self) -> float:
        return self.mantissa * 2.0 ** (self.exponent - self.shift)

    @property
    def relative_error(self) -> float:
        return self.represented / self.wanted - 1.0

    @property
    def literal(self) -> str:
        """As Lava reads it: ``3*2^-4`` (or ``2^-4`` when the mantissa is 1)."""
        return f"2^{self.exponent}" if self.mantissa == 1 else f"{self.mantissa}*2^{self.exponent}"

    def to_dict(self) -> dict[str, Any]:
        return {"wanted": self.wanted, "literal": self.literal, "represented": self.represented,
                "relative_error": self.relative_error}


def nearest_coefficient(wanted: float, shift: int, mantissa_bits: int = 4,
                        exp_range: tuple[int, int] = (-7, 8)) -> Coefficient:
    """The representable m * 2^(e - shift) closest to `wanted` in ratio (m > 0, signed `mantissa_bits`)."""
    if not wanted > 0:
        raise ValueError(f"a rule coefficient must be positive, got {wanted}")
    best: Coefficient | None = None
    for m in range(1, 2 ** (mantissa_bits - 1)):
        for e in range(exp_range[0], exp_range[1] + 1):
            c = Coefficient(wanted, m, e, shift)
            if best is None or abs(math.log(c.represented / wanted)) < abs(math.log(best.represented / wanted)):
                best = c
    assert best is not None
    return best


def coefficient_note(name: str, c: Coefficient, mantissa_bits: int = 4,
                     exp_range: tuple[int, int] = (-7, 8)) -> str | None:
    """A sentence when `c` is far from what it should be (None when within 25 %)."""
    lowest = 2.0 ** (exp_range[0] - c.shift)
    highest = (2 ** (mantissa_bits - 1) - 1) * 2.0 ** (exp_range[1] - c.shift)
    if c.wanted < lowest:
        return (f"{name} coefficient {c.wanted:.3g} is below the smallest the engine can scale a product by "
                f"(2^{exp_range[0]} with the product's {c.shift}-bit shift = {lowest:.3g}): this term would act "
                f"{c.represented / c.wanted:.3g}x stronger than the algorithm's; use a finer weight step or a larger rate")
    if c.wanted > highest:
        return (f"{name} coefficient {c.wanted:.3g} is above the largest the engine can scale a product by "
                f"({highest:.3g}): this term would act {c.wanted / c.represented:.3g}x weaker than the algorithm's")
    if abs(c.relative_error) > 0.25:
        return f"{name} coefficient {c.wanted:.3g} is represented as {c.literal} = {c.represented:.3g} ({c.relative_error:+.0%})"
    return None


def weight_step(policy: PrecisionPolicy, chip: Chip, weight_absmax: float | None) -> float | None:
    """Real value of one weight step on the chip: the policy's fixed-point step, else a power of two
    (Lava's shared ``weight_exp``) that fits the largest weight in the chip's signed width."""
    fmt = policy.weight.fmt
    if fmt.kind == "fixed":
        return fmt.step
    bits = weight_storage(chip, policy).bits
    if bits is None or not weight_absmax:
        return None
    qmax = 2 ** (bits - 1) - 1
    return 2.0 ** math.ceil(math.log2(weight_absmax / qmax))


# ----------------------------------------------------------------------------------------------
# Rule emission for sum-of-products engines


def _effective_eta(layer: LayerSpec, act: LayerActivity | None) -> tuple[float, str]:
    cfg = layer.cfg
    eta = cfg.lr if cfg is not None else 0.0
    if cfg is not None and cfg.normalize_update and act is not None and act.update_scale:
        return eta / act.update_scale, (
            f"eta {eta:g} divided by the measured median max|dW| of one sample ({act.update_scale:.4g}), "
            "standing in for the per-update normalisation"
        )
    return eta, f"eta {eta:g}"


def emit_rule(layer: LayerSpec, chip: Chip, policy: PrecisionPolicy, act: LayerActivity | None,
              time_steps: int) -> tuple[str | None, dict[str, Any] | None, list[str]]:
    """The dw string for a sum-of-products engine, and (for neuron-program traces) its Lava recipe."""
    notes: list[str] = []
    try:
        model = _model(chip)
    except ConfigError as exc:
        return None, None, [f"no rule emitted: {exc}"]
    neuron_traces = model.neuron_written_traces
    trace_max = model.trace_max
    coefficient = lambda wanted, factors: nearest_coefficient(  # noqa: E731
        wanted, model.product_shift(factors), model.mantissa_bits, model.scaling_exponent_range)
    eta, eta_note = _effective_eta(layer, act)
    step = weight_step(policy, chip, act.weight_absmax if act else None)
    u_scale = act.u_scale if act else None
    if not eta > 0 or step is None or not u_scale:
        notes.append("coefficients need the layer's measured weights and currents; run with a preset or checkpoint")
        return None, None, notes
    t = float(trace_max)
    hebb = coefficient(eta / (step * t * t), ("x1", "y1"))
    anti = layer.rule == "softhebb-anti"
    if neuron_traces:
        decay = coefficient(eta * u_scale / t, ("y2", "w"))
        if anti:
            dw = f"{hebb.literal} * u0 * x1 * y1 - {hebb.literal} * u0 * x1 * y2 - {decay.literal} * u0 * y3 * w"
            traces = {
                "y1": f"round({trace_max} * y_k) if k is its position's winner, else 0",
                "y2": f"round({trace_max} * y_k) if k is not the winner, else 0",
                "y3": f"round({trace_max} * max(s_k * y_k * u_k, 0) / {u_scale:.6g}) with s_k = +1 for the winner, -1 otherwise",
            }
        else:
            dw = f"{hebb.literal} * u0 * x1 * y1 - {decay.literal} * u0 * y2 * w + {decay.literal} * u0 * y3 * w"
            post = "y_k" if layer.rule == "softhebb" else "[k is the winner]"
            traces = {
                "y1": f"round({trace_max} * {post})",
                "y2": f"round({trace_max} * {post} * max(u_k, 0) / {u_scale:.6g})",
                "y3": f"round({trace_max} * {post} * max(-u_k, 0) / {u_scale:.6g})",
            }
        coeffs = {"hebbian": hebb, "decay": decay}
    else:
        # Spike-driven traces cannot carry u_k: use a second trace of the same spikes (y2 ~ y_k),
        # giving the Oja-like decay y_k^2 W.
        decay = coefficient(eta / (t * t), ("y1", "y2", "w"))
        dw = f"{hebb.literal} * u0 * x1 * y1 - {decay.literal} * u0 * y1 * y2 * w"
        traces = {"y1": "post-synaptic spike trace (rate of neuron k)", "y2": "second trace of the same spikes"}
        coeffs = {"hebbian": hebb, "decay": decay}
    for name, c in coeffs.items():
        note = coefficient_note(name, c, model.mantissa_bits, model.scaling_exponent_range)
        if note:
            notes.append(note)
    if any(c.represented > 1.25 * c.wanted for c in coeffs.values()):
        notes.append(f"coefficients follow from the measured weight scale (one weight step = {step:.3g}); larger weights, "
                     "as in an untrained network, coarsen the step and shrink the coefficients")
    epoch_max = model.t_epoch_max
    t_epoch = min(time_steps, epoch_max)
    if t_epoch < time_steps:
        notes.append(f"{time_steps} steps per sample exceed the longest learning epoch ({epoch_max}); "
                     f"the rule is applied every {t_epoch} steps")
    recipe = None
    if chip.get("learning", "lava_rule_strings"):
        recipe = {
            "learning_rule": "Loihi3FLearningRule" if neuron_traces else "Loihi2FLearningRule",
            "dw": dw,
            "x1_impulse": t / time_steps,
            "x1_tau": min(time_steps, LAVA_TAU_MAX),
            "t_epoch": t_epoch,
            "post_traces": traces,
            "weight_step": step,
            "u_scale": u_scale,
            "eta": eta,
            "eta_note": eta_note,
            "coefficients": {k: v.to_dict() for k, v in coeffs.items()},
            "meaning": (
                f"x1 is a leaky count of pre-synaptic spikes ({trace_max}/{time_steps} per spike, time constant "
                f"{min(time_steps, LAVA_TAU_MAX)} steps), so x1 ~ {trace_max} * the recent input rate; the "
                "post-synaptic neuron writes y1-y3 as listed at the end of each sample; one weight step is "
                "weight_step in real units"
            ),
        }
    return dw, recipe, notes


# ----------------------------------------------------------------------------------------------
# Term-by-term analysis


def _learning_terms(layer: LayerSpec, chip: Chip, policy: PrecisionPolicy, batch_size: int) -> list[Term]:
    learn = lambda name, default=None: chip.get("learning", name, default)  # noqa: E731
    engine = learn("engine")
    cfg = layer.cfg
    if layer.rule == "supervised":
        return [_readout_training(chip)]
    if layer.rule == "random":
        return [Term("plasticity", "exact", "the weights stay at their random initial values: nothing to learn on chip")]
    if engine is None:
        return [Term("learning engine", "not expressible", "the chip file does not say what its learning engine can do")]
    if engine == "none":
        return [Term("on-chip learning", "not expressible", "the chip has no learning engine; weights must be trained off chip and loaded")]
    software = engine == "programmable"
    neuron_traces = learn("post_trace_source") == "neuron-program"
    terms: list[Term] = []
    if software:
        terms.append(Term("Hebbian term y_k x_i", "exact", "computed in software"))
        terms.append(Term("decay term y_k u_k W_ik", "exact", "computed in software"))
    else:
        tb = learn("trace_bits")
        terms.append(Term(
            "Hebbian term y_k x_i", "approximate",
            f"product of a pre-synaptic trace x1 (~ input rate) and a post-synaptic trace y1 (~ y_k), "
            f"{tb}-bit traces, {learn('rounding', 'unknown')} rounding, coefficient m*2^e "
            f"({learn('scaling_mantissa_bits')}-bit mantissa)",
        ))
        if not learn("weight_readable", False):
            terms.append(Term("decay term y_k u_k W_ik", "not expressible", "the rule cannot read the weight"))
        elif neuron_traces:
            terms.append(Term(
                "decay term y_k u_k W_ik", "approximate",
                "the post-synaptic neuron writes y_k*max(u_k,0) and y_k*max(-u_k,0) into traces y2, y3 "
                f"({tb}-bit, scaled by the measured |u| range); products y2*w and y3*w",
            ))
        else:
            terms.append(Term(
                "decay term y_k u_k W_ik", "approximate",
                "u_k (the neuron's input current) is invisible to spike-driven traces; it is replaced by the "
                "post rate y_k (decay y_k^2 W, Oja-like), so weight norms settle where y_k balances, not at 1",
            ))
    # the competition that produces y
    if layer.rule == "hard-wta":
        comp = "a hard winner-take-all (one-hot y)"
    else:
        comp = f"softmax over the {layer.channels} channels of each position (t_invert {cfg.t_invert:g})" if cfg else "softmax"
    if software:
        terms.append(Term("competition", "exact",
                          f"{comp} computed in software; a group spread over several cores exchanges partial sums every step"))
    else:
        terms.append(Term("competition", "approximate",
                          f"{comp} realised by lateral inhibition through a global inhibitory interneuron per position "
                          "(counted in the mapping); spike rates follow a softmax only with stochastic firing and "
                          "tuned inhibition (Nessler et al. 2013)"))
    if layer.rule == "softhebb-anti":
        if software:
            terms.append(Term("anti-Hebbian sign for non-winners", "exact", "the winner is known in software"))
        elif neuron_traces:
            terms.append(Term(
                "anti-Hebbian sign for non-winners", "approximate",
                "needs a winner flag per position (a hard-WTA signal, not counted); with three post traces for four "
                "signed terms, the weight-growth part of the non-winners' decay (+|y_k u_k| W where u_k > 0) is dropped",
            ))
        else:
            terms.append(Term(
                "anti-Hebbian sign for non-winners", "dropped",
                "spike-driven traces are unsigned and carry no winner flag; non-winners learn Hebbian instead "
                "(the rule falls back to single-layer SoftHebb)",
            ))
    if cfg is not None and cfg.normalize_update:
        if learn("layer_reductions", False):
            terms.append(Term("update normalisation dW / max|dW|", "exact", "a layer-wide maximum computed in software"))
        else:
            terms.append(Term(
                "update normalisation dW / max|dW|", "dropped",
                "max|dW| over the layer is not available to a synapse; replaced by a constant coefficient "
                "calibrated on the measured median update size, so update sizes vary with activity",
            ))
    if cfg is not None and cfg.lr_schedule == "norm-adaptive":
        if learn("per_neuron_reductions", False):
            terms.append(Term("adaptive rate eta (| ||W_k|| - 1 |)^p", "exact", "||W_k|| is a local loop over the neuron's synapses"))
        else:
            terms.append(Term(
                "adaptive rate eta (| ||W_k|| - 1 |)^p", "dropped",
                "||W_k|| needs all of a neuron's synapses; a constant rate eta is used instead",
            ))
    if layer.kind == "conv":
        if chip.get("architecture", "weight_sharing") == "shared":
            terms.append(Term("shared convolution weights", "exact", "one kernel per core accumulates the updates of all its positions"))
        else:
            terms.append(Term(
                "shared convolution weights", "approximate",
                "weights are replicated per position and each copy sees only its own position's update: the copies "
                "drift apart and the layer becomes locally connected (the algorithm sums updates over positions)",
            ))
    if cfg is not None and cfg.bias:
        if software:
            terms.append(Term("learned prior (bias)", "exact", "updated in software"))
        elif neuron_traces:
            terms.append(Term("learned prior (bias)", "approximate", "the neuron's program updates its own bias in fixed point"))
        else:
            terms.append(Term("learned prior (bias)", "dropped", "a neuron's bias is not a learning-engine variable"))
    if batch_size > 1:
        status = "exact" if software else "approximate"
        detail = ("updates of a batch are accumulated in software before they are applied" if software else
                  f"the algorithm averages {batch_size} samples per update; the chip applies one sample's update per learning epoch")
        terms.append(Term(f"batch of {batch_size} samples per update", status, detail))
    storage = weight_storage(chip, policy)
    if storage.exact:
        terms.append(Term("weight precision", "exact", storage.note))
    else:
        terms.append(Term("weight precision", "approximate", storage.note))
    limits = role_limits(chip, policy)
    if limits:
        terms.append(Term("learning datapath precision", "approximate", "; ".join(limits)))
    return terms


def _readout_training(chip: Chip) -> Term:
    engine = chip.get("learning", "engine")
    name = "supervised readout training"
    if engine == "programmable":
        return Term(name, "approximate", "a delta rule or SGD on the readout can run in software with the label sent to the core; "
                    "Adam's two moment words per weight and dropout are not modelled")
    if chip.get("learning", "post_trace_source") == "neuron-program":
        return Term(name, "approximate", "as a delta rule: the output neuron writes the error (label - output) into a post "
                    "trace (three-factor rule); Adam, dropout and the cross-entropy softmax are dropped")
    return Term(name, "not expressible", "the readout is trained with labels and Adam off chip, then loaded")


def _forward_terms(layer: LayerSpec, chip: Chip) -> list[Term]:
    software = chip.get("learning", "arithmetic") == "float32" and chip.get("learning", "engine") == "programmable"
    cfg = layer.cfg
    if layer.rule == "supervised":
        return [Term("linear readout", "exact" if software else "approximate",
                     "a weighted sum read from membrane potentials" + ("" if software else ", at the chip's weight precision"))]
    terms: list[Term] = []
    if cfg is None:
        return terms
    if cfg.batchnorm:
        terms.append(Term("BatchNorm (no affine)", "exact" if software else "approximate",
                          "computed in software" if software else
                          "folded into the weights and a bias current with running statistics; the batch statistics "
                          "used while learning are not available on chip"))
    act, p = cfg.activation, cfg.activation_param
    if software:
        terms.append(Term(f"activation {act}", "exact", "computed in software and sent as a graded value"))
    elif act == "triangle":
        detail = "the channel mean is subtracted by the global inhibitory interneuron; rates rectify"
        if p != 1.0:
            detail += f"; the power {p:g} has no rate-neuron equivalent"
        terms.append(Term("activation triangle", "approximate", detail))
    elif act == "softmax":
        terms.append(Term("activation softmax", "approximate", f"the WTA circuit's rates stand in for softmax({p:g} u)"))
    elif act == "relu":
        terms.append(Term("activation relu", "exact", "a rate neuron rectifies"))
    else:
        terms.append(Term(f"activation {act}", "approximate", "negative outputs cannot be spike rates; needs +/- neuron pairs"))
    if cfg.pool == "max":
        terms.append(Term("max pooling", "exact" if software else "approximate",
                          "computed in software" if software else
                          "rate neurons cannot take a maximum; a local WTA or average pooling stands in (pooling is not mapped)"))
    elif cfg.pool == "avg":
        terms.append(Term("average pooling", "exact", "fixed equal weights over the window (pooling neurons are not mapped)"))
    return terms


def analyse_layer(layer: LayerSpec, chip: Chip, policy: PrecisionPolicy, activity: ActivityProfile | None = None,
                  time_steps: int = 32, batch_size: int = 1) -> LayerRules:
    """Judge every term of `layer`'s plasticity and forward path on `chip`."""
    learning = _learning_terms(layer, chip, policy, batch_size)
    result = LayerRules(layer.name, layer.rule, overall(learning), learning, _forward_terms(layer, chip))
    if layer.plastic and chip.get("learning", "engine") == "sum-of-products":
        act = activity.layers.get(layer.name) if activity else None
        dw, recipe, notes = emit_rule(layer, chip, policy, act, time_steps)
        result.rule_string, result.lava = dw, recipe
        result.notes.extend(notes)
    return result


def analyse_network(layers: list[LayerSpec], chip: Chip, policy: PrecisionPolicy, activity: ActivityProfile | None = None,
                    time_steps: int = 32, batch_size: int = 1) -> list[LayerRules]:
    return [analyse_layer(layer, chip, policy, activity, time_steps, batch_size) for layer in layers]
