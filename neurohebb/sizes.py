"""Memory a configured network needs, checked before anything is allocated.

Why: one typo (`--set layers.1.out_channels=100000000`) would otherwise grow the process until
the kernel kills it, minutes later and without a message. The estimate counts the float32
weights (with the update and one temporary of the same size) and the activations of one
feature-extraction batch; it is a lower bound, so refusing only what exceeds the machine's whole
memory never refuses a network that could have run.
"""
from __future__ import annotations

import os

from .config import RunConfig
from .errors import ConfigError
from .shapes import describe_config

FLOAT_BYTES = 4
WEIGHT_COPIES = 3  # weight, its update, one temporary of the same shape
ACTIVATION_BATCH = 500  # engine.FEATURE_BATCH: images whose activations exist at once


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def estimate_bytes(config: RunConfig, num_classes: int = 10) -> tuple[int, int, str]:
    """(total bytes, index of the largest layer, what dominates it) for training `config`."""
    shapes = describe_config(config)
    per_layer = []
    for shape in shapes:
        weights = shape.weight_count * FLOAT_BYTES * WEIGHT_COPIES
        activations = (shape.neurons + shape.output_size) * ACTIVATION_BATCH * FLOAT_BYTES
        per_layer.append((weights, activations))
    readout = shapes[-1].output_size * num_classes * FLOAT_BYTES * WEIGHT_COPIES
    total = sum(w + a for w, a in per_layer) + readout
    biggest = max(range(len(per_layer)), key=lambda i: sum(per_layer[i]))
    w, a = per_layer[biggest]
    what = f"{shapes[biggest].weight_count:,} weights" if w >= a else f"{shapes[biggest].neurons:,} neurons per image"
    return total, biggest, what


def machine_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_fits_in_memory(config: RunConfig, num_classes: int = 10, limit: int | None = None) -> None:
    """Raise a one-line ConfigError with the estimate if `config` cannot fit in `limit` bytes
    (default: this machine's physical memory)."""
    limit = limit if limit is not None else machine_memory_bytes()
    if limit is None:
        return
    total, layer, what = estimate_bytes(config, num_classes)
    if total > limit:
        raise ConfigError(f"the configured network needs at least {format_bytes(total)} (layers.{layer}: {what}), more than "
                          f"this machine's {format_bytes(limit)} of memory; lower layers.{layer}.out_channels or its input size")
