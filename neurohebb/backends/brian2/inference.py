"""Inference with trained weights: run a neurohebb soft-WTA layer as the spiking circuit and
compare its predictions with the rate model's.

The readout was trained on the layer's activation -- softmax(beta*u) or Triangle(u). The
circuit's spike counts, scaled appropriately, estimate exactly that vector (see `circuit.py`):
for softmax the counts divided by their total; for Triangle the counts divided by the gain and
the effective window. The *same* readout weights applied to the estimate give the spiking
network's prediction -- no retraining.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...description import NetworkSpec, as_spec, linear_block_features, readout_logits
from ...errors import ConfigError, DataError, NeurohebbError
from ...rundir import write_json_atomic, write_text_atomic
from .circuit import CircuitParams, SpikeRecord, SpikingSoftWTA

DEFAULT_WINDOWS_MS = (5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500)


@dataclass(frozen=True)
class SpikingLayer:
    """The part of a trained network the spiking circuit runs."""

    weight: np.ndarray  # [K, I]
    bias: np.ndarray | None  # [K] learned log-prior, or None
    activation: str  # "softmax" or "triangle": what the readout reads
    activation_param: float  # softmax inverse temperature, or Triangle power
    input_shape: tuple[int, int, int]


def unsupported(spec) -> list[str]:
    """What the Brian2 circuit cannot map faithfully in this network (empty: it maps)."""
    spec = as_spec(spec)
    if len(spec.blocks) != 1:
        return [f"the Brian2 comparison maps one linear soft-WTA layer (e.g. preset mnist-mlp); this network has {len(spec.blocks)} blocks"]
    block = spec.blocks[0]
    problems = []
    if block.kind != "linear":
        problems.append(f"kind={block.kind!r} (needs 'linear')")
    if block.batchnorm:
        problems.append("batchnorm=true (needs false: spikes carry raw intensities)")
    if block.activation not in ("softmax", "triangle"):
        problems.append(f"activation={block.activation!r} (needs 'softmax' or 'triangle')")
    if block.activation == "triangle" and block.cfg.bias:
        problems.append("a bias with the triangle activation (the count scaling assumes membranes rest at 0)")
    return problems


def spiking_layer(net) -> SpikingLayer:
    """Extract the single linear layer of a network (or its `NetworkSpec`); anything else cannot
    be mapped faithfully."""
    spec = as_spec(net)
    problems = unsupported(spec)
    if problems and len(spec.blocks) != 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError("the Brian2 comparison cannot map this layer: " + "; ".join(problems) + "; train with --preset mnist-mlp")
    block = spec.blocks[0]
    return SpikingLayer(block.weight, block.bias, block.activation, block.activation_param, tuple(spec.input_shape))


def rate_features(spec: NetworkSpec, images: np.ndarray) -> np.ndarray:
    """The rate model's features (the single block's activation) for uint8 images, in float64."""
    x = np.asarray(images).reshape(len(images), -1).astype(np.float64) / 255.0
    return linear_block_features(spec.blocks[0], x)


def normalised_counts(counts: np.ndarray) -> np.ndarray:
    """Counts / total per sample (all zeros stay zeros): the estimate of softmax(beta*u)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def count_features(counts: np.ndarray, params: CircuitParams, window: float | None = None) -> np.ndarray:
    """The activation estimate the readout reads, from the counts of the first `window` seconds."""
    if params.activation == "softmax":
        return normalised_counts(counts)
    return np.asarray(counts, dtype=np.float64) / (params.gain * params.effective_time(window))


def calibrate_gain(net, images: np.ndarray, params: CircuitParams) -> float:
    """Triangle mode: Hz per unit of activation so that a neuron fires `neuron_rate` on average
    over `images` (a label-free calibration, like setting a chip's gain)."""
    mean = float(rate_features(as_spec(net), images).mean())
    if not mean > 0:
        raise DataError("the calibration images give no Triangle activity at all; check the network and images")
    return params.neuron_rate / mean


def readout_predictions(net, features: np.ndarray) -> np.ndarray:
    """The trained readout applied to (spike-estimated) features (a network or its `NetworkSpec`)."""
    return readout_logits(as_spec(net), features).argmax(axis=1)


def presentation_sweep(record: SpikeRecord, net, labels: np.ndarray, reference: np.ndarray,
                       windows_ms: tuple[float, ...] = DEFAULT_WINDOWS_MS) -> list[dict[str, float]]:
    """Accuracy and agreement when only the first w ms of every presentation are counted.

    The membranes restart from rest at every onset, so the first w ms of a T-ms presentation are
    exactly a w-ms presentation (same random stream): one simulation gives the whole curve.
    """
    rows = []
    total_ms = record.params.duration * 1e3
    for w in sorted({float(w) for w in windows_ms if w <= total_ms + 1e-9} | {total_ms}):
        counts = record.counts(w / 1e3)
        pred = readout_predictions(net, count_features(counts, record.params, w / 1e3))
        rows.append({
            "window_ms": round(w, 6),
            "accuracy": round(100.0 * float((pred == labels).mean()), 4),
            "agreement": round(100.0 * float((pred == reference).mean()), 4),
            "output_spikes_per_sample": round(float(counts.sum(1).mean()), 3),
        })
    return rows


def _check_images(images: np.ndarray, layer: SpikingLayer) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != layer.input_shape:
        raise DataError(f"images must be uint8 [N, {', '.join(map(str, layer.input_shape))}], got {x.dtype} {x.shape}")
    return x


def circuit_for(net, params: CircuitParams | None = None, calibration_images: np.ndarray | None = None) -> tuple[SpikingLayer, CircuitParams]:
    """The layer and circuit parameters matching the network's readout activation.

    softmax: beta = the readout's inverse temperature. triangle: power = the readout's Triangle
    power and, unless `params.gain` is set, a gain calibrated on `calibration_images`.
    """
    spec = as_spec(net)
    layer = spiking_layer(spec)
    params = params or CircuitParams()
    if layer.activation == "softmax":
        return layer, replace(params, activation="softmax", beta=layer.activation_param).validate()
    params = replace(params, activation="triangle", power=layer.activation_param)
    if not params.gain > 0:
        if calibration_images is None:
            raise ConfigError("a Triangle layer needs calibration images (or an explicit gain) to set the circuit's gain")
        params = replace(params, gain=calibrate_gain(spec, _check_images(calibration_images, layer), params))
    return layer, params.validate()


def compare_inference(
    net,
    images: np.ndarray,
    labels: np.ndarray,
    params: CircuitParams | None = None,
    *,
    calibration_images: np.ndarray | None = None,
    seed: int = 0,
    raster_samples: int = 5,
    windows_ms: tuple[float, ...] = DEFAULT_WINDOWS_MS,
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, Any], SpikeRecord, dict[str, np.ndarray]]:
    """Run `images` (uint8 [N, C, H, W]) through the rate model and the spiking circuit.

    Returns (metrics, spike record, per-sample arrays). The activation-specific parameters are
    taken from the network (see `circuit_for`); a Triangle layer's gain is calibrated on
    `calibration_images` (default: `images` themselves; labels are never used).
    """
    spec = as_spec(net)
    layer = spiking_layer(spec)
    x_uint8 = _check_images(images, layer)
    labels = np.asarray(labels).astype(np.int64)
    layer, params = circuit_for(spec, params, x_uint8 if calibration_images is None else calibration_images)
    x = x_uint8.reshape(x_uint8.shape[0], -1).astype(np.float64) / 255.0

    t0 = time.perf_counter()
    rate = rate_features(spec, x_uint8)
    reference = readout_logits(spec, rate).argmax(axis=1)
    rate_seconds = time.perf_counter() - t0

    circuit = SpikingSoftWTA(layer.weight, layer.bias, params)
    record = circuit.present(x, seed=seed, raster_samples=raster_samples, progress=progress)
    counts = record.counts()
    spike_features = count_features(counts, params)
    spiking = readout_predictions(net, spike_features)
    n = x.shape[0]
    l1 = np.abs(spike_features - rate).sum(axis=1) / np.maximum(np.abs(rate).sum(axis=1), 1e-30)
    metrics: dict[str, Any] = {
        "samples": n,
        "test_accuracy": round(100.0 * float((spiking == labels).mean()), 4),
        "agreement": round(100.0 * float((spiking == reference).mean()), 4),
        "reference_accuracy": round(100.0 * float((reference == labels).mean()), 4),
        "activation": params.activation,
        "output_spikes_per_sample": round(float(counts.sum() / n), 3),
        "input_spikes_per_sample": round(record.input_spikes / n, 3),
        "synaptic_events_per_sample": round(record.input_spikes * layer.weight.shape[0] / n, 1),
        "silent_samples": int((counts.sum(1) == 0).sum()),
        "feature_relative_l1_error": round(float(l1.mean()), 5),
        "seconds_per_sample": round(record.wall_seconds / n, 5),
        "simulation_seconds": round(record.wall_seconds, 3),
        "build_seconds": round(record.build_seconds, 3),
        "reference_seconds_per_sample": round(rate_seconds / n, 7),
        "target": record.target,
        "neurons": int(layer.weight.shape[0]),
        "inputs": int(layer.weight.shape[1]),
        "duration_ms": params.duration * 1e3,
        "circuit": params.to_dict(),
        "seed": seed,
        "presentation_sweep": presentation_sweep(record, spec, labels, reference, windows_ms),
    }
    if params.activation == "triangle":
        # per-step spike probability gain*a*dt above 1 saturates (the rate model's a, as a proxy)
        metrics["saturated_fraction"] = float((params.gain * rate * params.dt > 1).mean())
    arrays = {"labels": labels, "reference": reference, "spiking": spiking, "spike_counts": counts.sum(1)}
    return metrics, record, arrays


def write_inference_results(out: str | Path, metrics: dict[str, Any], record: SpikeRecord, arrays: dict[str, np.ndarray]) -> None:
    """metrics.json, presentation_sweep.csv, predictions.csv, raster.png, accuracy_vs_time.png.

    Each file is written atomically; figures are skipped (with a warning) without matplotlib.
    """
    from .plots import plot_presentation_sweep, plot_raster

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NeurohebbError(f"cannot create output folder {out}: {exc.strerror}; choose a writable --out") from None
    write_json_atomic(out / "metrics.json", metrics)
    sweep = metrics["presentation_sweep"]
    header = "window_ms,accuracy,agreement,output_spikes_per_sample"
    rows = [f"{r['window_ms']},{r['accuracy']},{r['agreement']},{r['output_spikes_per_sample']}" for r in sweep]
    write_text_atomic(out / "presentation_sweep.csv", "\n".join([header, *rows]) + "\n")
    lines = ["sample,label,rate_prediction,spiking_prediction,output_spikes"]
    lines += [f"{i},{a},{b},{c},{d}" for i, (a, b, c, d) in enumerate(zip(arrays["labels"], arrays["reference"], arrays["spiking"], arrays["spike_counts"]))]
    write_text_atomic(out / "predictions.csv", "\n".join(lines) + "\n")
    plot_raster(record, out / "raster.png", arrays["labels"], arrays["spiking"], max_samples=max(record.raster_samples, 1))
    plot_presentation_sweep(sweep, out / "accuracy_vs_time.png", metrics["reference_accuracy"])
