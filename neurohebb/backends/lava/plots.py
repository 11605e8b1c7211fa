"""The deployment's figure: one sample's spikes through the circuit (input, WTA, readout)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...plots import savefig_atomic
from .emulate import CircuitRun
from .encoding import encode
from .mapping import ACT_SHIFT, LavaNetwork


def plot_raster(image: np.ndarray, net: LavaNetwork, run: CircuitRun, path: str | Path, label: int | None = None,
                model_label: int | None = None) -> None:
    """Input spike raster, WTA spike raster and readout potentials of the run's raster sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = net.circuit
    inp = encode(np.asarray(image)[None], c.steps, c.coding, c.seed)[0]  # [T, I]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1.2, 1.2, 0.8]})
    t, i = np.nonzero(inp)
    axes[0].scatter(t, i, s=1.5, c="k", marker="|")
    axes[0].set(xlabel="time step", ylabel="input pixel", title=f"input spikes ({c.coding}, {len(t)} spikes)",
                xlim=(-0.5, c.steps - 0.5), ylim=(-1, inp.shape[1]))
    if run.mode == "currents":
        u = net.currents_to_u(run.readout_v[:1], run.fixed)[0]
        axes[1].plot(np.arange(len(u)), u, ".", ms=2, c="tab:red")
        axes[1].set(xlabel="neuron", ylabel="integrated u (model units)",
                    title=f"{net.num_neurons} integrators at the end of the input")
        logits = net.host_logits(run.readout_v[:1], run.fixed)[0]
        _bars(axes[2], logits, run, label, model_label, "host readout logit")
        return _finish(fig, net, path)
    if run.raster is not None:
        t, k = np.nonzero(run.raster)
        axes[1].scatter(t, k, s=12, c="tab:red", marker="|")
        active = sorted(set(k.tolist()))
        title = f"WTA spikes ({len(t)} spikes, {len(active)} neurons)"
    else:
        title = "WTA spikes (not recorded)"
    axes[1].set(xlabel="time step (relative to input arrival)", ylabel="soft-WTA neuron", title=title,
                xlim=(-0.5, c.window - 0.5), ylim=(-1, net.num_neurons))
    axes[1].axvline(c.steps - 0.5, color="0.6", lw=0.8, ls="--")  # input ends; the readout is read here
    v = run.readout_v[0].astype(float) / (2**ACT_SHIFT if run.fixed else 1)
    _bars(axes[2], v, run, label, model_label, "readout potential")
    return _finish(fig, net, path)


def _bars(ax, values: np.ndarray, run: CircuitRun, label, model_label, ylabel: str) -> None:
    colors = ["tab:blue"] * len(values)
    if len(values):
        colors[int(np.argmax(values))] = "tab:green"
    ax.bar(np.arange(len(values)), values, color=colors)
    text = f"prediction {int(run.predictions[0])}" + (f", label {label}" if label is not None else "") + (
        f", model {model_label}" if model_label is not None else "")
    ax.set(xlabel="class", ylabel=ylabel, title=text, xticks=np.arange(len(values)))


def _finish(fig, net: LavaNetwork, path) -> None:
    import matplotlib.pyplot as plt

    c = net.circuit
    middle = "WTA LIF" if c.wta == "spiking" else "integrating LIF (softmax on host)"
    fig.suptitle(f"Lava deployment: {net.num_inputs} inputs -> {net.num_neurons} {middle} -> {net.num_classes} classes, "
                 f"{c.steps} steps, {c.coding} code")
    fig.tight_layout()
    try:
        savefig_atomic(fig, path, dpi=110)
    finally:
        plt.close(fig)


def plot_block_rasters(net, run, path: str | Path, label: int | None = None, model_label: int | None = None) -> None:
    """Sigma-delta deployment: the raster sample's graded spikes per stage (neuron vs step within
    its window) and the readout activations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = net.stages
    fig, axes = plt.subplots(1, len(stages) + 1, figsize=(3.4 * (len(stages) + 1), 3.8))
    for ax, st, raster in zip(axes, stages, run.rasters or [None] * len(stages)):
        if raster is None:
            ax.set(title=f"{st.name} (not recorded)")
            continue
        t, k = np.nonzero(raster)
        ax.scatter(t, k, s=2, c="tab:red", marker="|")
        ax.set(xlabel="step in window", ylabel="neuron", title=f"{st.name}: {len(t)} graded spikes",
               xlim=(-0.5, net.window - 0.5), ylim=(-1, st.size))
    v = run.readout[0].astype(float)
    colors = ["tab:blue"] * len(v)
    colors[int(np.argmax(v))] = "tab:green"
    axes[-1].bar(np.arange(len(v)), v, color=colors)
    text = f"prediction {int(run.predictions[0])}" + (f", label {label}" if label is not None else "") + (
        f", model {model_label}" if model_label is not None else "")
    axes[-1].set(xlabel="class", ylabel="readout activation (units)", title=text, xticks=np.arange(len(v)))
    fig.suptitle(f"Lava sigma-delta deployment: {len(stages) - 1} ReLU stages + readout, window {net.window} steps")
    fig.tight_layout()
    try:
        savefig_atomic(fig, path, dpi=110)
    finally:
        plt.close(fig)
