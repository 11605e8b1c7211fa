"""Figures the CLI writes. matplotlib is imported lazily and is optional for the core.

Why optional: on a torch-only GPU box a run should still finish and write its metrics; the PNG
is skipped with a warning instead.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from .atomic import replace_atomically


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed; skipping figures (./setup.sh installs it)")
        return None
    return plt


def savefig_atomic(fig, path: str | Path, **kwargs) -> None:
    """Write a figure so that an interrupted save never leaves a truncated PNG behind."""
    path = Path(path)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, **kwargs), suffix=path.suffix or ".png")


def receptive_field_images(weight: torch.Tensor, input_shape: tuple[int, int, int], max_fields: int = 100) -> np.ndarray:
    """First-layer weights as images [N, H, W, C] scaled to [0, 1] per neuron."""
    w = weight.detach().cpu().float()[:max_fields]
    c, h, wd = input_shape
    if w.dim() == 2:  # linear: a full input image per neuron
        imgs = w.reshape(-1, c, h, wd)
    else:
        imgs = w
    imgs = imgs.permute(0, 2, 3, 1).numpy()
    lo = imgs.min(axis=(1, 2, 3), keepdims=True)
    hi = imgs.max(axis=(1, 2, 3), keepdims=True)
    return (imgs - lo) / np.maximum(hi - lo, 1e-12)


def receptive_fields_png(weight: torch.Tensor | np.ndarray, input_shape: tuple[int, int, int], path: str | Path,
                         title: str = "receptive fields", max_fields: int = 100) -> bool:
    """A grid of the first ``max_fields`` neurons' weights [K, ...] as images (each scaled to its
    own range); False (with a warning) when matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return False
    imgs = receptive_field_images(torch.as_tensor(weight), input_shape, max_fields)
    n = imgs.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    title_lines = title.count("\n") + 1
    fig, axes = plt.subplots(rows, cols, figsize=(max(cols * 0.8, 4.5), rows * 0.8 + 0.25 * title_lines), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = imgs[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, interpolation="nearest")
    fig.suptitle(f"{title} (first {n} neurons)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 * title_lines / (rows * 0.8 + 0.25 * title_lines)))
    savefig_atomic(fig, path, dpi=100)
    plt.close(fig)
    return True


def plot_receptive_fields(net, path: str | Path, max_fields: int = 100) -> bool:
    """Layer 0 of a network (what `train` writes as receptive_fields.png)."""
    return receptive_fields_png(net.blocks[0].layer.weight, net.shapes[0].input_shape, path,
                                f"Layer 0 receptive fields ({net.config.preset})", max_fields)
