"""Run a mapped network in Lava's Loihi 2 simulator and compare it with the neurohebb model.

Why one long run: starting a Lava network costs seconds, so N samples are played back to back
in one run (`circuit.total_steps`). Every sample gets ``window = steps + gap`` steps; the neurons
are `LIFReset` neurons whose state is cleared at the start of each window (offset by the one-step
delay of each Dense layer in front of them), spike counters bin spikes per window, and a `Read`
process samples the readout potentials at the end of each sample's input. What runs on the host: spike generation (the generator process), the
argmax over ten readout potentials, and the comparison with the float model.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from . import circuit
from .emulate import CircuitRun, wta_input
from .encoding import encode
from .lava_api import require_lava
from .mapping import LavaNetwork

SYNOPS_NOTE = ("spikes into the synapses x neurons + WTA spikes x (1 to the interneuron + classes) + interneuron "
               "spikes x neurons (+ TTFS: input spikes x 1 relay synapse)")


@dataclass
class LavaTiming:
    """Wall-clock seconds: building the processes, the whole run (compilation and start of the
    worker processes included), and the part after the first chunk (steady state)."""

    build_seconds: float
    run_seconds: float
    steps: int
    steady_seconds: float = 0.0
    steady_samples: int = 0

    @property
    def steady_samples_per_second(self) -> float | None:
        return self.steady_samples / self.steady_seconds if self.steady_samples and self.steady_seconds > 0 else None


def run_lava(net: LavaNetwork, images: np.ndarray, tag: str = "fixed_pt", sample_offset: int = 0,
             raster_sample: int = 0, progress: bool = False, chunk_samples: int = 25) -> tuple[CircuitRun, LavaTiming]:
    """Play ``images`` (uint8 [N, ...]) through the circuit in Lava; per-sample counts and readout."""
    images = np.asarray(images)
    n = len(images)
    if n < 1:
        raise ConfigError("no samples to deploy; pass --samples N with N >= 1")
    if net.readout is None and net.host_readout is None:
        raise ConfigError("this circuit has no readout to deploy; map it with readout weights")
    L = require_lava()
    c = net.circuit
    t0 = time.perf_counter()
    procs = circuit.build(net, images, tag, sample_offset, raster_sample if 0 <= raster_sample < n else -1)
    steps_total = circuit.total_steps(n, net)
    cfg = L.Loihi2SimCfg(select_tag=tag)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    done, t_first, first_steps = 0, None, 0
    bar = None
    if progress:
        from ...progress import tqdm

        bar = tqdm(total=n, desc=f"lava {tag}", unit="sample")
    try:
        while done < steps_total:
            todo = min(chunk_samples * c.window, steps_total - done)
            procs.generator.run(condition=L.RunSteps(num_steps=todo), run_cfg=cfg)
            if t_first is None:
                t_first, first_steps = time.perf_counter(), todo
            done += todo
            if bar is not None:
                bar.n = min(n, done // c.window)
                bar.refresh()
        t_end = time.perf_counter()
        counts = np.asarray(procs.counter.counts.get()).astype(np.int64)
        inter = (np.asarray(procs.inter_counter.counts.get()).astype(np.int64)[:, 0]
                 if procs.inter_counter is not None else np.zeros(n, dtype=np.int64))
        readout_v = np.asarray(procs.reader.data.get())[:, procs.junk_reads:procs.junk_reads + n].T.copy()
        if tag == "fixed_pt":  # Lava hands Var values back as floats; fixed-point ones are integers
            readout_v = np.rint(readout_v).astype(np.int64)
        raster = np.asarray(procs.counter.raster.get()).astype(np.int32)
    finally:
        if bar is not None:
            bar.close()
        procs.generator.stop()
    steady_samples = (steps_total - first_steps) // c.window
    spikes = encode(images, c.steps, c.coding, c.seed, sample_offset)  # what the generator sent
    relay = wta_input(spikes, c.coding).reshape(n, -1).sum(axis=1) if c.coding == "ttfs" else np.zeros(n, dtype=np.int64)
    fixed = tag == "fixed_pt"
    if c.wta == "currents":
        result = CircuitRun(counts, readout_v, spikes.reshape(n, -1).sum(axis=1), inter, relay, None, "currents",
                            net.host_predictions(readout_v, fixed), fixed)
    else:
        result = CircuitRun(counts, readout_v, spikes.reshape(n, -1).sum(axis=1), inter, relay,
                            raster if 0 <= raster_sample < n else None, fixed=fixed)
    return result, LavaTiming(build, t_end - t1, steps_total, t_end - t_first, steady_samples)


def synaptic_ops(run: CircuitRun, net: LavaNetwork) -> np.ndarray:
    """Synaptic operations per sample (see SYNOPS_NOTE)."""
    ttfs = net.circuit.coding == "ttfs"
    into_synapses = run.relay_spikes if ttfs else run.input_spikes
    ops = into_synapses * net.num_neurons + run.counts.sum(axis=1) * (1 + net.num_classes)
    ops = ops + run.interneuron_spikes * net.num_neurons
    return ops + (run.input_spikes if ttfs else 0)


def total_spikes(run: CircuitRun) -> np.ndarray:
    """All spikes per sample: input, TTFS relay, WTA and interneuron."""
    return run.input_spikes + run.relay_spikes + run.counts.sum(axis=1) + run.interneuron_spikes


DEFAULT_CALIBRATION = 1000


def model_predictions(net, images: np.ndarray) -> np.ndarray:
    """neurohebb's own predictions (float32 torch model) for uint8 images."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    with torch.no_grad():
        return np.concatenate([net.predict(x[i:i + 500]).cpu().numpy() for i in range(0, len(x), 500)])


def _run_metric(run_dir, key: str):
    """A value from the run's own metrics.json (e.g. its accuracy on the whole test set), if any."""
    try:
        return json.loads((Path(run_dir) / "metrics.json").read_text()).get(key)
    except (OSError, ValueError):
        return None


SIGMA_DELTA = "sigma-delta"


def deploy_data(config, dataset, data_dir, calibration: int, samples: int):
    """(dataset, x_test, y_test) for a deployment: the first `calibration` training images set
    thresholds, the first `samples` test images are played; too few test images is a user error."""
    if dataset is None:
        from ...data import load_dataset

        dataset = load_dataset(config.data.dataset, data_dir or config.data.data_dir,
                               train_subset=calibration, test_subset=samples)
    if len(dataset.x_test) < samples:
        raise ConfigError(f"--samples {samples} exceeds the {len(dataset.x_test)} test images of {dataset.name}")
    return dataset, np.asarray(dataset.x_test[:samples]), np.asarray(dataset.y_test[:samples])


def agreement_metrics(tag: str, wta: str, run_dir, dataset, pred: np.ndarray, model_pred: np.ndarray,
                      y_test: np.ndarray) -> dict:
    """The keys every deployment's metrics.json starts with: what ran, accuracy and agreement."""
    return {
        "backend": "lava",
        "lava_version": require_lava().version,
        "tag": tag,
        "wta": wta,
        "run_dir": str(run_dir),
        "dataset": dataset.name,
        "samples": int(len(y_test)),
        "test_accuracy": round(100.0 * float((pred == y_test).mean()), 4),
        "model_accuracy": round(100.0 * float((model_pred == y_test).mean()), 4),
        "agreement": round(float((pred == model_pred).mean()), 6),
    }


def choose_circuit(spec, wta: str | None) -> str:
    """The circuit a network deploys as: ``wta`` when given, else the spiking WTA if the network is
    one softmax layer, else the sigma-delta network if it folds, else host-side currents for a single
    layer; otherwise a one-line refusal
    naming what each circuit lacks."""
    from .fold import unsupported as sd_unsupported
    from .mapping import UnsupportedNetwork, unsupported

    if wta is not None:
        if wta == SIGMA_DELTA and sd_unsupported(spec):
            raise UnsupportedNetwork(f"the sigma-delta circuit cannot deploy this network: {sd_unsupported(spec)[0]}")
        return wta
    wta_problems = unsupported(spec, "spiking")
    if not wta_problems:
        return "spiking"
    sd_problems = sd_unsupported(spec)
    if not sd_problems:
        return SIGMA_DELTA
    current_problems = unsupported(spec, "currents")
    if not current_problems:  # the activation runs on the host: the last resort, said in metrics["wta"]
        return "currents"
    raise UnsupportedNetwork(f"no Lava circuit deploys this network -- WTA circuit: {wta_problems[0]}; "
                             f"sigma-delta circuit: {sd_problems[0]}; currents: {current_problems[0]}")


def deploy_run(run_dir: str | Path, samples: int = 500, steps: int = 32, tag: str = "fixed_pt", out_dir: str | Path | None = None,
               coding: str = "rate", spikes_target: float = 4.0, inhibition: float = 1.0, num_weight_bits: int = 8,
               data_dir: str | None = None, seed: int = 0, calibration: int = DEFAULT_CALIBRATION,
               progress: bool = True, check_emulation: bool = True, dataset=None, wta: str | None = None,
               vth: int = 1) -> dict:
    """Deploy a run directory's network to Lava, run ``samples`` test images, write metrics + raster.

    ``wta`` None picks the circuit the network needs (`choose_circuit`): the spiking WTA for a
    single softmax layer, the sigma-delta network for multilayer / conv Triangle networks.
    Returns the metrics dict (also written to ``out_dir/metrics.json`` when ``out_dir`` is given).
    """
    from ...description import describe
    from ...engine import load_run
    from .mapping import WTACircuit, check_supported, map_network

    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    if calibration < 1:
        raise ConfigError(f"calibration images must be >= 1, got {calibration}")
    require_lava()  # fail fast, before loading data
    config, net = load_run(run_dir)
    spec = describe(net)
    wta = choose_circuit(spec, wta)
    if wta == SIGMA_DELTA:
        from .sd_deploy import deploy_sigma_delta

        return deploy_sigma_delta(run_dir, config, net, spec, samples=samples, tag=tag, out_dir=out_dir,
                                  num_weight_bits=num_weight_bits, data_dir=data_dir, calibration=calibration,
                                  progress=progress, check_emulation=check_emulation, dataset=dataset, vth=vth)
    check_supported(spec, wta)
    wta_circuit = WTACircuit(steps=steps, coding=coding, spikes_target=spikes_target, inhibition=inhibition, seed=seed,
                             wta=wta)
    dataset, x_test, y_test = deploy_data(config, dataset, data_dir, calibration, samples)
    lnet = map_network(net, np.asarray(dataset.x_train[:calibration]), wta_circuit, num_weight_bits)

    model_pred = model_predictions(net, x_test)
    run, timing = run_lava(lnet, x_test, tag, raster_sample=0, progress=progress)
    pred = run.predictions
    metrics = {
        **agreement_metrics(tag, wta, run_dir, dataset, pred, model_pred, y_test),
        "silent_samples": int(run.silent.sum()),
        "input_spikes_per_sample": round(float(run.input_spikes.mean()), 3),
        "wta_spikes_per_sample": round(float(run.counts.sum(axis=1).mean()), 3),
        "interneuron_spikes_per_sample": round(float(run.interneuron_spikes.mean()), 3),
        "relay_spikes_per_sample": round(float(run.relay_spikes.mean()), 3),
        "spikes_per_sample": round(float(total_spikes(run).mean()), 3),
        "synaptic_ops_per_sample": round(float(synaptic_ops(run, lnet).mean()), 1),
        "synaptic_ops_definition": SYNOPS_NOTE,
        "samples_per_second": round(samples / timing.run_seconds, 4),
        "samples_per_second_steady": (round(timing.steady_samples_per_second, 4)
                                      if timing.steady_samples_per_second else None),
        "samples_per_second_definition": "samples / wall seconds of the whole Lava run (compilation and "
                                         "process start included); steady: after the first 25 samples",
        "lava_run_seconds": round(timing.run_seconds, 3),
        "lava_build_seconds": round(timing.build_seconds, 3),
        "time_steps": int(timing.steps),
        "mapping": lnet.summary(),
        "run_test_accuracy": _run_metric(run_dir, "test_accuracy"),
    }
    if check_emulation:
        from .emulate import emulate

        twin = emulate(lnet, x_test, tag)
        metrics["emulation_prediction_agreement"] = round(float((twin.predictions == pred).mean()), 6)
        metrics["emulation_counts_identical"] = bool(np.array_equal(twin.counts, run.counts))
        metrics["emulation_potentials_identical"] = bool(np.array_equal(twin.readout_v, run.readout_v))
    if out_dir is not None:
        from ...rundir import make_output_dir, write_json_atomic
        from .plots import plot_raster

        out = make_output_dir(out_dir)
        plot_raster(x_test[0], lnet, run, out / "raster.png", label=int(y_test[0]), model_label=int(model_pred[0]))
        write_json_atomic(out / "metrics.json", metrics)
    return metrics


def deployment_status(spec) -> dict:
    """Which Lava circuit deploys the network and, block by block, how (or why not), for the
    feasibility report: it reads the same description `deploy lava` maps."""
    from .fold import unsupported as sd_unsupported
    from .mapping import unsupported

    wta = unsupported(spec, "spiking")
    sd = sd_unsupported(spec)
    if not wta:
        circuit, how = "spiking", ("spiking WTA circuit: Dense 8-bit synapses, LIF neurons, one inhibitory interneuron "
                                   "(tested: Lava = NumPy twin, tests/test_lava_deploy.py)")
    elif not sd:
        circuit, how = SIGMA_DELTA, None
    else:
        circuit, how = None, None
    blocks = []
    for i, b in enumerate(spec.blocks):
        mine = [p for p in sd if p.startswith(f"layers.{b.index}.")]
        if circuit == SIGMA_DELTA:
            synapses = ("a pooling/reflect-padding relay (Sparse + SigmaDelta) then a Lava Conv process (kernel stored "
                        "once, tests/test_lava_conv.py)" if b.kind == "conv" and i > 0 else
                        "Sparse 8-bit synapses (the convolution unrolled, reflect padding folded in)" if b.kind == "conv"
                        else "Sparse 8-bit synapses (the block's matrix, the previous pooling folded in)")
            blocks.append({"block": f"block{b.index}", "deploys": True,
                           "how": f"{synapses} + SigmaDelta ReLU neurons; Triangle centring, BatchNorm and average "
                                  "pooling folded in (tested: Lava = NumPy twin spike for spike, "
                                  "tests/test_lava_sigma_delta.py)"})
        elif circuit is not None:
            blocks.append({"block": f"block{b.index}", "deploys": True, "how": how})
        else:
            blocks.append({"block": f"block{b.index}", "deploys": not mine,
                           "how": mine[0] if mine else "foldable, but another block keeps the network from deploying"})
    return {"circuit": circuit, "blocks": blocks,
            "readout": "Sparse/Dense synapses into integrating neurons; the host takes the argmax" if circuit else None}
