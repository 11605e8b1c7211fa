"""Figures of the Brian2 comparison: a spike raster and accuracy against presentation time.

matplotlib is optional (as in `neurohebb.plots`): without it the figures are skipped and the
numbers are still written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...plots import _pyplot, savefig_atomic
from .circuit import SpikeRecord


def plot_raster(record: SpikeRecord, path: str | Path, labels: Sequence[int] | None = None,
                predictions: Sequence[int] | None = None, max_samples: int = 5) -> bool:
    """Input and WTA spikes of the first samples, one panel each, onsets marked."""
    plt = _pyplot()
    if plt is None:
        return False
    n = min(max_samples, record.raster_samples or max_samples, record.n_samples)
    dt_ms = record.params.dt * 1e3
    span = n * record.params.steps_per_sample
    fig, (ax_in, ax_out) = plt.subplots(2, 1, figsize=(max(6.0, 2.2 * n), 6.0), sharex=True,
                                        gridspec_kw={"height_ratios": [1, 1.3]})
    keep_in = record.raster_input_step < span
    ax_in.scatter(record.raster_input_step[keep_in] * dt_ms, record.raster_input_neuron[keep_in], s=0.6, c="0.3", lw=0, rasterized=True)
    ax_in.set_ylabel("input neuron")
    ax_in.set_ylim(-0.5, record.n_inputs - 0.5)
    keep_out = record.out_step < span
    ax_out.scatter(record.out_step[keep_out] * dt_ms, record.out_neuron[keep_out], s=3, c="tab:red", lw=0, rasterized=True)
    ax_out.set_ylabel("soft-WTA neuron")
    ax_out.set_ylim(-0.5, record.n_neurons - 0.5)
    ax_out.set_xlabel("time (ms)")
    T = record.params.duration * 1e3
    for k in range(n + 1):
        for ax in (ax_in, ax_out):
            ax.axvline(k * T, color="tab:blue", lw=0.6, alpha=0.6)
        if k < n and labels is not None:
            text = f"label {labels[k]}" + (f", spiking {predictions[k]}" if predictions is not None else "")
            ax_in.text((k + 0.5) * T, record.n_inputs * 1.02, text, ha="center", va="bottom", fontsize=8)
    ax_in.set_title(f"Spiking soft-WTA ({record.n_inputs} Poisson inputs -> {record.n_neurons} neurons, "
                    f"{T:g} ms per sample, {record.target} target)", fontsize=9, pad=16)
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=120)
    plt.close(fig)
    return True


def plot_presentation_sweep(sweep: list[dict], path: str | Path, reference_accuracy: float) -> bool:
    """Accuracy and agreement with the rate model against presentation time."""
    plt = _pyplot()
    if plt is None:
        return False
    w = np.array([r["window_ms"] for r in sweep])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(w, [r["accuracy"] for r in sweep], "o-", label="spiking accuracy")
    ax.plot(w, [r["agreement"] for r in sweep], "s--", label="agreement with rate model")
    ax.axhline(reference_accuracy, color="k", lw=0.8, ls=":", label=f"rate model accuracy ({reference_accuracy:.1f} %)")
    ax.set_xscale("log")
    ax.set_xlabel("presentation time (ms)")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax2 = ax.twiny()  # spikes per sample on top, same positions
    ax2.set_xscale("log")
    ax2.set_xlim(ax.get_xlim())
    ticks = w[:: max(1, len(w) // 5)]
    ax2.set_xticks(ticks)
    spikes = {r["window_ms"]: r["output_spikes_per_sample"] for r in sweep}
    ax2.set_xticklabels([f"{spikes[t]:.0f}" for t in ticks], fontsize=7)
    ax2.minorticks_off()
    ax2.set_xlabel("output spikes per sample", fontsize=8)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=120)
    plt.close(fig)
    return True
