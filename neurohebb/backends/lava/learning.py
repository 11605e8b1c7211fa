"""On-chip learning: the soft-WTA layer's plasticity as a Loihi learning rule inside Lava.

The chip cannot compute SoftHebb's ``dW_ik = eta * y_k * (x_i - u_k W_ik)`` as written: the
softmax y is replaced by the WTA circuit's spikes (see `mapping`), and ``u_k`` is not available
to a rule driven by spike traces. What a Loihi 2 learning engine can run is a sum of products of
traces and the weight; the default here is the instar form of competitive learning,

    dw = 2^-2 * x1 * y0 - 2^-5 * w * y0

applied when the post-synaptic neuron fires (y0): the winner's weights move towards the recent
input (x1, a trace of the pre-synaptic spikes) and decay in proportion to themselves, which keeps
them bounded like SoftHebb's ``-u_k W_ik`` term (it drives ``w -> 8 * E[x1 | winner]`` instead of
SoftHebb's unit norm). Any rule string the feasibility report emits for Loihi2FLearningRule
(including ``u<k>`` end-of-sample rules) can be passed instead.

What is compared: Lava's `LearningDense` (bit-approximate fixed-point model) learning in closed
loop with the WTA circuit, against `sop.SopEngine` -- neurohebb's own integer implementation of the
same rule -- fed the pre- and post-synaptic spikes Lava recorded and the same seeds. The weight
trajectories agree bit for bit (tests/test_lava_learning.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...errors import ConfigError
from ...onchip.model import LearningEngineModel, load_engine_model
from . import circuit
from .lava_api import require_lava
from .mapping import LavaNetwork
from .sop import SopEngine, TraceConfig, parse_rule

DEFAULT_RULE = "2^-2 * x1 * y0 - 2^-5 * w * y0"
DEFAULT_TRACES = TraceConfig(x1_impulse=16.0, x1_tau=8.0)


@dataclass(frozen=True)
class OnChipRule:
    """A Loihi2F learning rule: the ``dw`` string, trace settings, epoch length and seed."""

    dw: str = DEFAULT_RULE
    traces: TraceConfig = field(default_factory=lambda: DEFAULT_TRACES)
    t_epoch: int = 1
    rng_seed: int = 0
    chip: str = "loihi2"  # chip name or chip file whose learning engine limits apply
    # the WTA neuron writes y1..y3 (Lava's Loihi3FLearningRule; the y trace settings must stay off)
    neuron_traces: bool = False

    def __post_init__(self) -> None:
        model = self.model
        parse_rule(self.dw, model)  # one-line error for a rule the engine cannot run
        model.check_t_epoch(self.t_epoch)  # e.g. t_epoch 64 on Loihi 2 (at most 63)
        for name in ("x1", "x2", "y1", "y2", "y3"):
            model.check_trace(name, getattr(self.traces, f"{name}_impulse"), getattr(self.traces, f"{name}_tau"))
        if self.neuron_traces and any(getattr(self.traces, f"y{i}_impulse") for i in (1, 2, 3)):
            raise ConfigError("with neuron-written post traces the neuron sets y1..y3; leave their impulses at 0")

    @property
    def model(self) -> LearningEngineModel:
        return load_engine_model(self.chip)

    def lava_rule(self):
        L = require_lava()
        t = self.traces
        if self.neuron_traces:
            return L.Loihi3FLearningRule(dw=self.dw, x1_impulse=t.x1_impulse, x1_tau=t.x1_tau, x2_impulse=t.x2_impulse,
                                         x2_tau=t.x2_tau, t_epoch=self.t_epoch, rng_seed=self.rng_seed)
        return L.Loihi2FLearningRule(
            dw=self.dw, x1_impulse=t.x1_impulse, x1_tau=t.x1_tau, x2_impulse=t.x2_impulse, x2_tau=t.x2_tau,
            y1_impulse=t.y1_impulse, y1_tau=t.y1_tau, y2_impulse=t.y2_impulse, y2_tau=t.y2_tau,
            y3_impulse=t.y3_impulse, y3_tau=t.y3_tau, t_epoch=self.t_epoch, rng_seed=self.rng_seed,
        )

    def engine(self, weights: np.ndarray) -> SopEngine:
        if self.neuron_traces:
            raise ConfigError("the spike replay has no neuron program; compare neuron-written traces with "
                              "neurohebb.onchip.engine.ChipLearningLoop")
        return SopEngine(self.dw, weights, self.traces, self.t_epoch, self.rng_seed, self.model)


@dataclass
class LearningRun:
    """What one on-chip learning run produced: spikes, and the weights after every sample."""

    initial: np.ndarray  # [K, I] integers Lava started from (on the num_weight_bits grid)
    pre: np.ndarray  # [T, I] bool: spikes the LearningDense received
    post: np.ndarray  # [T, K] bool: WTA spikes (back-propagated to the synapses)
    weights: np.ndarray  # [samples, K, I] Lava's weights at the end of every sample window
    window: int
    lead_in: int  # extra steps before the first window ends (the pipeline's delay)
    seconds: float
    wta_state: dict[str, np.ndarray] = field(default_factory=dict)  # WTA Vars read after the run


def run_lava_learning(net: LavaNetwork, images: np.ndarray, rule: OnChipRule = OnChipRule(),
                      sample_offset: int = 0, wta_neuron=None, wta_vars: tuple[str, ...] = ()) -> LearningRun:
    """Present ``images`` one window each to the WTA circuit with plastic synapses (a
    `LearningDense`); record the synapses' pre and post spikes and the weights after every window.

    ``wta_neuron`` replaces the WTA's `LIFReset` (see `circuit.build`), e.g. the neuron program of
    `procs.harmonic_lif`; ``wta_vars`` names its Vars to read once the run ends."""
    images = np.asarray(images)
    if len(images) < 1:
        raise ConfigError("on-chip learning needs at least one image")
    L = require_lava()
    c = net.circuit
    steps_total = circuit.total_steps(len(images), net)
    initial = net.ff.weights.copy()
    t0 = time.perf_counter()
    procs = circuit.build(net, images, "fixed_pt", sample_offset, learning_rule=rule.lava_rule(),
                          record_steps=steps_total, wta_neuron=wta_neuron)
    cfg = L.Loihi2SimCfg(select_tag="fixed_pt")
    trajectory = []
    try:
        # the first window also covers the pipeline's lead-in steps; each later one is one window
        for i in range(len(images)):
            todo = c.window + (c.lead + 1 if i == 0 else 0)
            procs.generator.run(condition=L.RunSteps(num_steps=todo), run_cfg=cfg)
            trajectory.append(np.asarray(procs.synapses.weights.get()).astype(np.int64))
        pre = np.asarray(procs.pre_sink.data.get()).T != 0
        post = np.asarray(procs.post_sink.data.get()).T != 0
        state = {name: np.asarray(getattr(procs.wta, name).get()).astype(np.int64) for name in wta_vars}
    finally:
        procs.generator.stop()
    return LearningRun(initial, pre, post, np.stack(trajectory), c.window, c.lead + 1, time.perf_counter() - t0, state)


def replay(run: LearningRun, rule: OnChipRule) -> np.ndarray:
    """neurohebb's integer engine on the spikes Lava recorded: weights where Lava's were read."""
    engine = rule.engine(run.initial)
    out = []
    marks = {run.lead_in + run.window * (i + 1) for i in range(len(run.weights))}
    for t in range(len(run.pre)):
        engine.step(run.pre[t], run.post[t])
        if t + 1 in marks:
            out.append(engine.weights)
    return np.stack(out)


def compare(run: LearningRun, rule: OnChipRule) -> dict:
    """Agreement of Lava's weight trajectory with the integer engine's (both [samples, K, I])."""
    ours = replay(run, rule)
    diff = np.abs(ours.astype(np.int64) - run.weights.astype(np.int64))
    changed = np.abs(run.weights[-1].astype(np.int64) - run.initial.astype(np.int64))
    return {
        "identical": bool(diff.max(initial=0) == 0),
        "max_abs_difference": int(diff.max(initial=0)),
        "samples": int(len(run.weights)),
        "steps": int(len(run.pre)),
        "post_spikes": int(run.post.sum()),
        "synapses_changed": int((changed > 0).sum()),
        "mean_abs_weight_change": float(changed.mean()),
        "lava_seconds": round(run.seconds, 3),
        "rule": rule.dw,
    }


def parse_traces(spec: str | TraceConfig | None) -> TraceConfig:
    """``"x1=16:8,y1=20:65536"`` (name=impulse:tau) -> TraceConfig; unnamed traces stay off."""
    if spec is None:
        return DEFAULT_TRACES
    if isinstance(spec, TraceConfig):
        return spec
    values: dict[str, float] = {}
    for item in (t.strip() for t in spec.split(",") if t.strip()):
        name, _, rest = item.partition("=")
        impulse, _, tau = rest.partition(":")
        if name.strip() not in ("x1", "x2", "y1", "y2", "y3") or not impulse or not tau:
            raise ConfigError(f"trace {item!r} must look like NAME=IMPULSE:TAU with NAME one of x1 x2 y1 y2 y3, e.g. x1=16:8")
        try:
            values[f"{name.strip()}_impulse"], values[f"{name.strip()}_tau"] = float(impulse), float(tau)
        except ValueError:
            raise ConfigError(f"trace {item!r}: impulse and tau must be numbers, e.g. x1=16:8") from None
        if not 0 <= values[f"{name.strip()}_impulse"] <= 127 or values[f"{name.strip()}_tau"] < 0:
            raise ConfigError(f"trace {item!r}: the impulse must be in 0..127 (7-bit traces) and tau >= 0")
    return TraceConfig(**values)


def learn_run(run_dir, samples: int = 20, steps: int = 32, coding: str = "rate", rule: str | None = None,
              traces: str | TraceConfig | None = None, t_epoch: int = 1, num_weight_bits: int = 8,
              data_dir: str | None = None, seed: int = 0, calibration: int = 1000, out_dir=None, dataset=None) -> dict:
    """On-chip learning from a run directory's layer on its first ``samples`` training images."""
    from ...engine import load_run
    from .mapping import WTACircuit, check_supported, map_arrays

    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    traces = parse_traces(traces)
    on_chip = OnChipRule(rule or DEFAULT_RULE, traces, t_epoch, seed)
    require_lava()
    config, net = load_run(run_dir)
    # learning is driven by the WTA circuit's spikes, not by the layer's activation (which only
    # feeds the readout), so a Triangle layer learns on chip too: only the structure is checked
    check_supported(net, wta="currents")
    if dataset is None:
        from ...data import load_dataset

        dataset = load_dataset(config.data.dataset, data_dir or config.data.data_dir,
                               train_subset=max(samples, calibration), test_subset=1)
    images = np.asarray(dataset.x_train)
    if len(images) < samples:
        raise ConfigError(f"--samples {samples} exceeds the {len(images)} training images of {dataset.name}")
    weights = net.blocks[0].layer.weight.detach().cpu().double().numpy()
    lnet = map_arrays(weights, images[:calibration], WTACircuit(steps=steps, coding=coding, seed=seed), num_weight_bits)
    run = run_lava_learning(lnet, images[:samples], on_chip)
    result = compare(run, on_chip)
    result.update(run_dir=str(run_dir), dataset=dataset.name, traces=traces.__dict__, t_epoch=t_epoch,
                  rng_seed=seed, lava_version=require_lava().version, mapping=lnet.summary())
    if out_dir is not None:
        from ...rundir import make_output_dir, write_json_atomic

        out = make_output_dir(out_dir)
        write_json_atomic(out / "learning.json", result)
    return result
