"""Figures of a feasibility report: core utilisation per layer, and a chip comparison.

Why a bare `Figure` (no pyplot): the CLI writes it to a PNG with the Agg canvas and the notebook
displays the same object, and neither changes the caller's matplotlib backend. Files are written
atomically (temp file, then rename).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plots import savefig_atomic


def _utilisation(layer: dict[str, Any], chip_neurons: int | None) -> tuple[float, float]:
    """(memory or synapse-count utilisation, neuron utilisation) of the layer's fullest core."""
    mem = max((p["memory_utilisation"] or 0.0 for p in layer["populations"]), default=0.0)
    if chip_neurons:
        neu = max((p["neurons_per_core"] / chip_neurons for p in layer["populations"]), default=0.0)
    else:
        neu = 0.0
    return mem, neu


def draw(report: dict[str, Any]):
    """A matplotlib Figure: one utilisation panel per chip, plus comparison panels for several chips."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: never touches the caller's backend

    chips = report["chips"]
    n = len(chips)
    rows = 2 if n > 1 else 1
    cols = max(n, 3) if n > 1 else 1  # the comparison row needs 3 columns; one chip fills the figure
    fig = Figure(figsize=(max(6.0, 3.6 * n), 3.4 * rows))
    grid = fig.add_gridspec(rows, cols, left=0.12 if n == 1 else 0.07, right=0.98, bottom=0.16 if n == 1 else 0.1, top=0.86,
                            wspace=0.35, hspace=0.55)
    for i, entry in enumerate(chips):
        ax = fig.add_subplot(grid[0, i])
        layers = entry["mapping"]["layers"]
        names = [l["layer"] for l in layers]
        util = [_utilisation(l, entry["chip"]["neurons_per_core"]) for l in layers]
        x = np.arange(len(names))
        ax.bar(x - 0.2, [100 * u[0] for u in util], 0.4, label="synaptic memory")
        ax.bar(x + 0.2, [100 * u[1] for u in util], 0.4, label="neurons")
        for j, layer in enumerate(layers):
            cores = layer["cores"]
            label = f"{cores:,}\ncore{'s' if cores != 1 else ''}" + ("" if layer["fits"] else "\n(no fit)")
            ax.annotate(label, (j, 103), ha="center", fontsize=6.5)
        ax.set_xticks(x, names, rotation=30, fontsize=8)
        ax.set_ylim(0, 135)
        ax.set_ylabel("fullest core (%)")
        ax.set_title(entry["chip"]["display_name"], fontsize=10)
        if i == 0:
            ax.legend(fontsize=7, loc="upper right", ncols=2, frameon=False)
    if n > 1:
        labels = [e["chip"]["name"] for e in chips]
        panels = (
            ("cores used", [e["verdict"]["cores"] for e in chips], ""),
            ("energy per training sample", [e["verdict"]["energy_per_training_sample_j"] for e in chips], "J"),
            ("latency per inference", [e["verdict"]["latency_per_inference_s"] for e in chips], "s"),
        )
        for k, (title, values, unit) in enumerate(panels):
            ax = fig.add_subplot(grid[1, k])
            known = [v if v is not None else 0.0 for v in values]
            ax.bar(labels, known, color="tab:gray")
            if any(v for v in known):
                ax.set_yscale("log")
            for j, (v, entry) in enumerate(zip(values, chips)):
                if v is None:
                    cannot = unit == "J" and entry["verdict"]["learning"] == "not expressible"
                    ax.text(j, 0.03, "cannot learn" if cannot else "unknown", transform=ax.get_xaxis_transform(),
                            ha="center", va="bottom", fontsize=7, rotation=90, color="tab:red")
            ax.set_title(title + (f" ({unit})" if unit else ""), fontsize=9)
            ax.tick_params(axis="x", labelsize=7, rotation=30)
    fig.suptitle(f"{report['network']['name']}: on-chip feasibility ({report['precision']})", fontsize=11)
    return fig


def save_report_figure(report: dict[str, Any], path: str | Path) -> Path:
    """Draw and write the PNG atomically; returns the path."""
    path = Path(path)
    fig = draw(report)
    savefig_atomic(fig, path, dpi=120)
    return path
