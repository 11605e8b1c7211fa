"""Learning-curve figures of STPN-task runs (matplotlib Agg, written atomically via neurohebb.plots)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..plots import _pyplot, savefig_atomic


def plot_learning_curve(history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> bool:
    """Training loss and validation accuracy per epoch; the epochs fine-tuned through the rounded
    state (quantisation-aware training, "QAT") are shaded."""
    return plot_learning_curves({"": history}, path, title)


def plot_learning_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, title: str = "") -> bool:
    """One line per run (label -> history); returns False when matplotlib is unavailable."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, history in histories.items():
        epochs = list(range(1, len(history) + 1))
        (line,) = ax_loss.plot(epochs, [h["train_loss"] for h in history], label=label or None)
        ax_acc.plot(epochs, [h["val_accuracy"] for h in history], color=line.get_color())
        qat = [i + 1 for i, h in enumerate(history) if h.get("phase") == "qat"]
        if qat:
            ax_acc.axvspan(qat[0] - 0.5, qat[-1] + 0.5, color=line.get_color(), alpha=0.08)
            ax_acc.text(qat[0] - 0.4, 0.03, "QAT", fontsize=8, color=line.get_color(), transform=ax_acc.get_xaxis_transform())
            ax_acc.plot(qat, [history[i - 1]["val_accuracy"] for i in qat], "o", ms=3, color=line.get_color())
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy (%)")
    ax_acc.axhline(10.0, color="grey", lw=0.8, ls=":")
    ax_acc.text(1, 11, "chance (10 digits)", color="grey", fontsize=8)
    if len(histories) > 1:
        ax_loss.legend(fontsize=8)  # one legend: the colours are the same in both panels
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=120)
    plt.close(fig)
    return True
