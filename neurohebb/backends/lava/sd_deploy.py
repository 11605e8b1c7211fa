"""`neurohebb deploy lava` for networks that deploy as the sigma-delta circuit (`sigma_delta`).

Runs the test samples in Lava (fixed point), checks them against the NumPy twin graded spike for
graded spike, and compares the class decisions with the trained (torch) model and with the folded
float64 network; writes metrics.json and a raster per block.
"""
from __future__ import annotations

import time

import numpy as np

from ...errors import ConfigError

SYNOPS_NOTE = ("graded spikes into each stage x the synapses each spike drives in the stage (its column of a Sparse "
               "stage; the kernel taps covering it x the output channels of a Conv stage), summed over stages "
               "(input spikes included)")


def synaptic_ops(net, run) -> np.ndarray:
    """Synaptic operations per sample (see SYNOPS_NOTE); an input spike per nonzero pixel."""
    fan_out = [st.fan_out() for st in net.stages]
    ops = run.input_spikes * 0
    ops = ops.astype(np.float64)
    # input spikes (nonzero pixels), each with its column of stage 0 (on average)
    ops += run.input_spikes * float(fan_out[0].mean())
    for i in range(1, len(net.stages)):
        ops += run.counts[i - 1] @ fan_out[i]
    return ops


def deploy_sigma_delta(run_dir, config, net, spec, samples: int, tag: str, out_dir, num_weight_bits: int,
                       data_dir, calibration: int, progress: bool, check_emulation: bool, dataset, vth: int = 1) -> dict:
    from .deploy import _run_metric, model_predictions
    from .fold import fold, forward
    from .sd_circuit import run_lava_sd
    from .sigma_delta import SDCircuit, emulate, map_sigma_delta

    if tag != "fixed_pt":
        raise ConfigError("the sigma-delta circuit deploys with Lava's bit-accurate fixed-point models only; use --tag fixed_pt")
    from .deploy import agreement_metrics, deploy_data

    dataset, x_test, y_test = deploy_data(config, dataset, data_dir, calibration, samples)
    sd = map_sigma_delta(spec, np.asarray(dataset.x_train[:calibration]), SDCircuit(vth=vth), num_weight_bits)
    model_pred = model_predictions(net, x_test)
    folded_pred = forward(fold(spec), x_test)[-1].argmax(axis=1)
    run, timing = run_lava_sd(sd, x_test, raster_sample=0, progress=progress)
    pred = run.predictions
    spikes = run.spikes_per_sample()
    metrics = {
        **agreement_metrics(tag, "sigma-delta", run_dir, dataset, pred, model_pred, y_test),
        "circuit": "sigma-delta",
        "folded_float_agreement": round(float((folded_pred == model_pred).mean()), 6),
        "input_spikes_per_sample": round(float(run.input_spikes.mean()), 3),
        "spikes_per_sample_by_stage": {st.name: round(float(spikes[:, i].mean()), 3) for i, st in enumerate(sd.stages)},
        "spikes_per_sample": round(float(spikes.sum(axis=1).mean() + run.input_spikes.mean()), 3),
        "synaptic_ops_per_sample": round(float(synaptic_ops(sd, run).mean()), 1),
        "synaptic_ops_definition": SYNOPS_NOTE,
        "samples_per_second": round(samples / timing.run_seconds, 4),
        "samples_per_second_definition": "samples / wall seconds of the whole Lava run (compilation and process start included)",
        "lava_run_seconds": round(timing.run_seconds, 3),
        "lava_build_seconds": round(timing.build_seconds, 3),
        "lava_read_seconds": round(timing.read_seconds, 3),
        "time_steps": int(timing.steps),
        "mapping": sd.summary(),
        "exact_parts": ("folding of Triangle(power 1), BatchNorm, reflect padding and average pooling into ReLU stages "
                        "(conv blocks after the first as Lava Conv processes after a pooling relay); Lava = NumPy twin"),
        "approximate_parts": ("8-bit weights per stage, integer activations and biases, floor of weight_exp and state_exp "
                              "shifts"),
        "run_test_accuracy": _run_metric(run_dir, "test_accuracy"),
    }
    if check_emulation:
        t0 = time.perf_counter()
        twin = emulate(sd, x_test)
        metrics["emulation_seconds"] = round(time.perf_counter() - t0, 3)
        metrics["emulation_prediction_agreement"] = round(float((twin.predictions == pred).mean()), 6)
        metrics["emulation_readout_identical"] = bool(np.array_equal(twin.readout, run.readout))
        metrics["emulation_counts_identical"] = bool(all(np.array_equal(a, b) for a, b in zip(twin.counts, run.counts)))
    if out_dir is not None:
        from ...rundir import make_output_dir, write_json_atomic
        from .plots import plot_block_rasters

        out = make_output_dir(out_dir)
        plot_block_rasters(sd, run, out / "raster.png", label=int(y_test[0]), model_label=int(model_pred[0]))
        write_json_atomic(out / "metrics.json", metrics)
    return metrics
