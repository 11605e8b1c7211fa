"""Figures of a precision sweep (matplotlib, Agg backend, written atomically)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plots import savefig_atomic


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_vs_bits(summary: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Accuracy against weight bits: one line per (rounding, update bits) of SoftHebb trained in the chip's number formats,
    post-training quantisation dashed, float32 as a band; error bars are the std over seeds.

    The on-chip learning series (the chip's own learning engine, at the chip's weight width: not
    a function of the swept bits) and the random-weights control are horizontal lines with their
    own labels, so neither is ever read as a point of the chip-formats curves."""
    plt = _figure()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    floats = [s for s in summary if s["kind"] == "float"]
    if floats:
        f = floats[0]
        ax.axhline(f["accuracy_mean"], color="black", lw=1.2, label=f"float SoftHebb, float32 ({f['accuracy_mean']:.2f} %)")
        if f["accuracy_std"] > 0:
            ax.axhspan(f["accuracy_mean"] - f["accuracy_std"], f["accuracy_mean"] + f["accuracy_std"], color="black", alpha=0.08)
    styles = iter([dict(color=c, ls="-.", lw=1.6) for c in ("tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")])
    for s in summary:
        if s["kind"] == "random":
            ax.axhline(s["accuracy_mean"], color="gray", ls=":", lw=1.4, label=f"{s['series']} ({s['accuracy_mean']:.2f} %)")
        elif s["kind"] == "onchip":
            style = next(styles, dict(ls="-.", lw=1.6))
            ax.axhline(s["accuracy_mean"], label=f"{s['series']} ({s['accuracy_mean']:.2f} +- {s['accuracy_std']:.2f} %)", **style)
    lines: dict[tuple, list[dict[str, Any]]] = {}
    for s in summary:
        if s["kind"] == "quantized":
            lines.setdefault(("quantized", s["rounding"], s["update_bits"]), []).append(s)
        elif s["kind"] == "ptq":
            lines.setdefault(("ptq", None, None), []).append(s)
    n_updates = len({key[2] for key in lines if key[0] == "quantized"})
    for (kind, rounding, update_bits), ss in sorted(lines.items(), key=lambda kv: str(kv[0])):
        ss = sorted(ss, key=lambda s: s["weight_bits"])
        x = [s["weight_bits"] for s in ss]
        y = [s["accuracy_mean"] for s in ss]
        e = [s["accuracy_std"] for s in ss]
        if kind == "ptq":
            label, style = "post-training quantisation (nearest)", dict(ls="--", marker="s", color="gray")
        else:
            ub = "float update" if update_bits is None else f"{update_bits}-bit update"
            label = f"SoftHebb in chip formats, {rounding}" + (f", {ub}" if n_updates > 1 or update_bits is None else f" ({ub})")
            style = dict(marker="o")
        ax.errorbar(x, y, yerr=e, capsize=3, label=label, **style)
    ax.set_xlabel("weight bits")
    ax.set_ylabel("test accuracy (%)")
    ticks = sorted({s["weight_bits"] for s in summary if s["weight_bits"] is not None})
    if ticks:
        ax.set_xticks(ticks)
    else:
        ax.set_xticks([])
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    savefig_atomic(fig, path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def plot_diagnostics_vs_bits(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Why low bits fail (first layer): the stored over the intended weight change, the share of
    proposed updates that rounded away, and weight saturation; means over seeds."""
    plt = _figure()
    path = Path(path)
    panels = [("update_transfer", "stored / intended |weight change|"),
              ("stalled_fraction", "stalled fraction of proposed updates"),
              ("weight_saturation", "weight saturation events / weights written")]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.6))
    series: dict[tuple, dict[int, list[dict[str, float]]]] = {}
    for r in rows:
        if r["kind"] != "quantized" or not r["diagnostics"]:
            continue
        d = r["diagnostics"][0]
        values = {"update_transfer": d.get("update_transfer", 0.0), "stalled_fraction": d.get("stalled_fraction", 0.0),
                  "weight_saturation": d.get("saturation", {}).get("weight", {}).get("fraction", 0.0)}
        series.setdefault((r["rounding"], r["update_bits"]), {}).setdefault(r["weight_bits"], []).append(values)
    for (rounding, ub), by_bits in sorted(series.items(), key=lambda kv: str(kv[0])):
        bits = sorted(by_bits)
        label = f"{rounding}, {'float' if ub is None else ub}-bit update"
        for ax, (key, _) in zip(axes, panels):
            ax.plot(bits, [sum(v[key] for v in by_bits[b]) / len(by_bits[b]) for b in bits], marker="o", label=label)
    ticks = sorted({r["weight_bits"] for r in rows if r["weight_bits"] is not None})
    for ax, (_, ylabel) in zip(axes, panels):
        if ticks:
            ax.set_xticks(ticks)
        ax.set_xlabel("weight bits")
        ax.set_ylabel(ylabel)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].axhline(1.0, color="black", lw=0.8, ls=":")
    axes[0].set_ylim(bottom=0.0)  # 0 = learning frozen, 1 = every intended change stored
    axes[0].legend(fontsize=8)
    fig.suptitle(f"layer 0 diagnostics. {title}", fontsize=9)
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=130, bbox_inches="tight")
    plt.close(fig)
