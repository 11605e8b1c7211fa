"""The deployment's figure: one sample's spikes through the circuit (input, WTA, readout)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

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
    v = run.readout_v[0].astype(float) / (2**ACT_SHIFT if run.readout_v.dtype.kind == "i" else 1)
    colors = ["tab:blue"] * len(v)
    if len(v):
        colors[int(np.argmax(v))] = "tab:green"
    axes[2].bar(np.arange(len(v)), v, color=colors)
    pred = int(run.predictions[0])
    text = f"prediction {pred}" + (f", label {label}" if label is not None else "") + (
        f", model {model_label}" if model_label is not None else "")
    axes[2].set(xlabel="class", ylabel="readout potential", title=text, xticks=np.arange(len(v)))
    fig.suptitle(f"Lava deployment: {net.num_inputs} inputs -> {net.num_neurons} WTA LIF -> {net.num_classes} readout, "
                 f"{c.steps} steps")
    fig.tight_layout()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
