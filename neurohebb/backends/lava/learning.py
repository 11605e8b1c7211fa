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
same rule -- fed the pre- and post-synaptic spikes Lava produced and the same seeds, window by
window as the run goes (only the current window's spikes and weights are held). The weights agree
bit for bit after every sample (tests/test_lava_learning.py). `learn_run` then measures what was
learned: the learned layer's test accuracy beside that of the weights it started from.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

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
    """What one on-chip learning run produced, compared with the integer engine as it ran.

    Why streamed: keeping Lava's weights after every sample costs K*I*8 bytes a sample (12.5 MB
    at 2000 neurons); the comparison needs only the current sample's, so each window's spikes and
    weights are read, replayed through the engine, compared and dropped. ``record=True`` keeps
    the whole trajectory and the spikes as well (tests of the closed loop, short runs only)."""

    initial: np.ndarray  # [K, I] integers Lava started from (on the num_weight_bits grid)
    final: np.ndarray  # [K, I] Lava's weights after the last sample
    engine_final: np.ndarray  # [K, I] the integer engine's weights after the last sample
    max_abs_difference: int  # over every sample's weights
    samples_identical: int  # samples after which Lava's and the engine's weights were identical
    samples: int
    steps: int
    post_spikes: int
    window: int
    lead_in: int  # extra steps before the first window ends (the pipeline's delay)
    seconds: float  # in Lava (running and reading state), without the engine's comparison
    weights: np.ndarray | None = None  # record=True: [samples, K, I] Lava's weights after every sample
    pre: np.ndarray | None = None  # record=True: [T, I] bool spikes the LearningDense received
    post: np.ndarray | None = None  # record=True: [T, K] bool WTA spikes (back-propagated)
    wta_state: dict[str, np.ndarray] = field(default_factory=dict)  # WTA Vars read after the run


def run_lava_learning(net: LavaNetwork, images: np.ndarray, rule: OnChipRule = OnChipRule(),
                      sample_offset: int = 0, record: bool = False,
                      on_sample: Callable[[int, int], None] | None = None, wta_neuron=None,
                      wta_vars: tuple[str, ...] = (), lateral: bool = False,
                      lateral_weight: tuple[int, int] | None = None) -> LearningRun:
    """Present ``images`` one window each to the WTA circuit with plastic synapses (a
    `LearningDense`) and replay every window's pre and post spikes through the integer engine
    as it goes, comparing the weights after each sample. ``on_sample(i, n)`` reports progress.

    ``wta_neuron`` replaces the WTA's `LIFReset` (see `circuit.build`), e.g. the neuron program of
    `procs.harmonic_lif`; ``wta_vars`` names its Vars to read once the run ends. ``lateral``
    inhibits through K x K WTA-to-WTA synapses instead of the interneuron, ``lateral_weight``
    adds such synapses of that weight beside it (`circuit.build`; the engine's ``Circuit``
    ``lat_weight``); the replay needs only the spikes, so it is path-blind. A spike replay
    cannot run a neuron program, so rules with neuron-written traces are not replayed (compare
    them with `neurohebb.onchip.engine`, which runs the whole loop, from ``record=True``)."""
    images = np.asarray(images)
    if len(images) < 1:
        raise ConfigError("on-chip learning needs at least one image")
    L = require_lava()
    c = net.circuit
    steps_total = circuit.total_steps(len(images), net)
    ring = c.window + c.lead + 1  # the longest run between two reads (the first window)
    initial = net.ff.weights.copy()
    engine = None if rule.neuron_traces else rule.engine(initial)
    lava_seconds = 0.0
    procs = circuit.build(net, images, "fixed_pt", sample_offset, learning_rule=rule.lava_rule(), record_steps=ring,
                          wta_neuron=wta_neuron, lateral=lateral, lateral_weight=lateral_weight)
    cfg = L.Loihi2SimCfg(select_tag="fixed_pt")
    trajectory, pres, posts = [], [], []
    worst, same, spikes, done = 0, 0, 0, 0
    lava_w = initial
    try:
        # the first window also covers the pipeline's lead-in steps; each later one is one window
        for i in range(len(images)):
            todo = c.window + (c.lead + 1 if i == 0 else 0)
            t1 = time.perf_counter()
            procs.generator.run(condition=L.RunSteps(num_steps=todo), run_cfg=cfg)
            window_steps = np.arange(done + 1, done + todo + 1)  # global steps, 1-based
            pre = procs.pre_sink.read(window_steps)
            post = procs.post_sink.read(window_steps)
            lava_w = procs.synapses.read_weights()  # packed: Lava sends Vars one element at a time
            lava_seconds += time.perf_counter() - t1
            done += todo
            if engine is not None:
                for t in range(todo):
                    engine.step(pre[t], post[t])
            diff = int(np.abs(engine.weights.astype(np.int64) - lava_w).max(initial=0)) if engine is not None else -1
            worst, same, spikes = max(worst, diff), same + (diff == 0), spikes + int(post.sum())
            if record:
                trajectory.append(lava_w)
                pres.append(pre)
                posts.append(post)
            if on_sample is not None:
                on_sample(i + 1, len(images))
        state = {name: np.asarray(getattr(procs.wta, name).get()).astype(np.int64) for name in wta_vars}
    finally:
        procs.generator.stop()
    if done != steps_total:  # the windows must tile the run exactly, or the comparison is misaligned
        raise RuntimeError(f"on-chip learning ran {done} steps, expected {steps_total}")
    engine_final = engine.weights.astype(np.int64) if engine is not None else lava_w
    return LearningRun(initial, lava_w, engine_final, worst, same, len(images), done, spikes,
                       c.window, c.lead + 1, lava_seconds,
                       np.stack(trajectory) if record else None,
                       np.concatenate(pres) if record else None, np.concatenate(posts) if record else None, state)


def compare(run: LearningRun, rule: OnChipRule) -> dict:
    """Agreement of Lava's weights with the integer engine's, sample by sample (streamed)."""
    changed = np.abs(run.final.astype(np.int64) - run.initial.astype(np.int64))
    return {
        "identical": bool(run.max_abs_difference == 0),
        "max_abs_difference": int(run.max_abs_difference),
        "samples": int(run.samples),
        "samples_identical": int(run.samples_identical),
        "steps": int(run.steps),
        "post_spikes": int(run.post_spikes),
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
              data_dir: str | None = None, seed: int = 0, calibration: int = 1000, out_dir=None, dataset=None,
              evaluate: bool = True, readout_subset: int | None = None, test_subset: int | None = None,
              progress: bool = False, inhibition_path: str | None = None) -> dict:
    """On-chip learning from a run directory's layer on its first ``samples`` training images,
    then (``evaluate``) the learned layer's accuracy beside the weights it started from.

    Accuracy is measured as `train` measures it (`neurohebb.probe`): features of the run's network
    with the layer's weights replaced, a fresh readout with the run's `[readout]` settings on the
    first ``readout_subset`` training images (default: the run's data.train_subset, else all),
    tested on the first ``test_subset`` test images (default: the run's, else all).

    ``inhibition_path`` ("lateral" or "interneuron", the default): the WTA circuit's inhibition,
    through K x K WTA-to-WTA synapses or one interneuron (`resolve_inhibition_path`)."""
    import torch

    from ...engine import load_run
    from ...probe import readout_accuracy
    from .mapping import WTACircuit, check_supported, map_arrays

    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    for name, value in (("--readout-subset", readout_subset), ("--test-subset", test_subset)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    traces = parse_traces(traces)
    on_chip = OnChipRule(rule or DEFAULT_RULE, traces, t_epoch, seed)
    require_lava()
    config, net = load_run(run_dir)
    path = resolve_inhibition_path(inhibition_path)
    # learning is driven by the WTA circuit's spikes, not by the layer's activation (which only
    # feeds the readout), so a Triangle layer learns on chip too: only the structure is checked
    check_supported(net, wta="currents")
    readout_n = readout_subset or config.data.train_subset
    test_n = test_subset or config.data.test_subset
    if dataset is None:
        from ...data import load_dataset

        need = None if evaluate and readout_n is None else max(samples, calibration, readout_n or 0)
        dataset = load_dataset(config.data.dataset, data_dir or config.data.data_dir, train_subset=need,
                               test_subset=test_n if evaluate else 1)
    images = np.asarray(dataset.x_train)
    if len(images) < samples:
        raise ConfigError(f"--samples {samples} exceeds the {len(images)} training images of {dataset.name}")
    layer = net.blocks[0].layer
    weights = layer.weight.detach().cpu().double().numpy()
    lnet = map_arrays(weights, images[:calibration], WTACircuit(steps=steps, coding=coding, seed=seed), num_weight_bits)
    bar = None
    if progress:
        from ...progress import tqdm

        bar = tqdm(total=samples, desc="lava-learn", unit="sample", mininterval=1.0)
    run = run_lava_learning(lnet, images[:samples], on_chip, on_sample=(lambda i, n: bar.update(1)) if bar else None,
                            lateral=path == "lateral")
    if bar is not None:
        bar.close()
    result = compare(run, on_chip)
    result.update(run_dir=str(run_dir), dataset=dataset.name, inhibition_path=path, traces=traces.__dict__, t_epoch=t_epoch,
                  rng_seed=seed, lava_version=require_lava().version, mapping=lnet.summary())
    # Lava stores mantissa << grid_shift; the float weight is mantissa * 2**exponent
    unit = 2.0 ** (lnet.ff.exponent - lnet.ff.grid_shift)
    learned_w = torch.from_numpy(run.final * unit).to(layer.weight.dtype).reshape(layer.weight.shape)
    initial_w = torch.from_numpy(run.initial.astype(np.int64) * unit).to(layer.weight.dtype).reshape(layer.weight.shape)
    result["initial_weights"] = _describe_start(config)
    if evaluate:
        x_train, y_train = (torch.from_numpy(np.ascontiguousarray(a)) for a in (dataset.x_train, dataset.y_train))
        x_test, y_test = (torch.from_numpy(np.ascontiguousarray(a)) for a in (dataset.x_test, dataset.y_test))
        if readout_n is not None:
            x_train, y_train = x_train[:readout_n], y_train[:readout_n]
        accuracy = {}
        for name, w in (("initial", initial_w), ("learned", learned_w)):
            with torch.no_grad():
                layer.weight.copy_(w)
            accuracy[name] = readout_accuracy(net, config, x_train, y_train, x_test, y_test, seed=seed)["test_accuracy"]
        result.update(initial_test_accuracy=accuracy["initial"], learned_test_accuracy=accuracy["learned"],
                      learning_gain=round(accuracy["learned"] - accuracy["initial"], 4),
                      readout_train_images=int(len(x_train)), test_images=int(len(x_test)))
    if out_dir is not None:
        from ...plots import receptive_fields_png
        from ...rundir import make_output_dir, write_json_atomic

        out = make_output_dir(out_dir)
        shape = net.shapes[0].input_shape
        if receptive_fields_png(learned_w, shape, out / "receptive_fields.png",
                                f"learned in Lava, {samples} samples\nrule {on_chip.dw}"):
            result["receptive_fields_png"] = str(out / "receptive_fields.png")
        np.savez_compressed(out / "learned_weights.npz", learned=run.final.astype(np.int16),
                            initial=run.initial.astype(np.int16), unit=np.float64(unit))
        write_json_atomic(out / "learning.json", result)
    return result


INHIBITION_PATHS = ("interneuron", "lateral")


def resolve_inhibition_path(requested: str | None) -> str:
    """The lava-learn WTA's inhibition path: ``requested`` if given (checked), else the
    interneuron (`deploy lava`'s circuit; lava-learn's circuit is its own, `WTACircuit`'s, not
    the on-chip presets' interneuron + weak lateral one, which `train --on-chip` runs)."""
    if requested is None:
        return "interneuron"
    if requested not in INHIBITION_PATHS:
        raise ConfigError(f"--inhibition-path {requested!r} is unknown; choose one of: {', '.join(INHIBITION_PATHS)}")
    return requested


def _describe_start(config) -> str:
    """What the weights learning started from were: random (an untrained control) or trained."""
    layer = config.layers[0]
    if layer.rule == "random" or config.hebbian.epochs == 0:
        return "random (the run's untrained initial weights)"
    mode = f"on-chip {config.onchip.chip}" if config.onchip.enabled else "float"
    return f"trained by the run ({mode}, rule {config.onchip.rule if config.onchip.enabled else layer.rule})"
