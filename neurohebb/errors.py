"""User-facing errors.

Why a dedicated type: the CLI turns exactly these into a one-line message and exit code 2, while
any other exception is a bug and keeps its traceback. Messages name the problem *and* the fix.
"""
from __future__ import annotations


class NeurohebbError(Exception):
    """A problem with the user's input or environment that they can fix (exit code 2)."""


class ConfigError(NeurohebbError):
    """Invalid preset, config file or override."""


class DataError(NeurohebbError):
    """Missing, corrupt or malformed dataset files."""


class BackendUnavailable(NeurohebbError):
    """An optional backend (Lava, Brian2) is missing or broken."""


def require_finite(name: str, array) -> None:
    """Raise a NeurohebbError if `array` (numpy or torch) holds NaN or Inf."""
    import numpy as np

    try:
        import torch

        if isinstance(array, torch.Tensor):
            if not bool(torch.isfinite(array).all()):
                raise NeurohebbError(f"{name} contains NaN or Inf values; check the input data or lower the learning rate")
            return
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    arr = np.asarray(array)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise NeurohebbError(f"{name} contains NaN or Inf values; check the input data or lower the learning rate")
