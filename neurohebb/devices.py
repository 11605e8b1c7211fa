"""Where tensors live: the one device resolver every command uses (train, eval, sweep, STPN).

Why one: 'auto' must mean the same everywhere, and a CUDA request on a machine without a GPU
(or a misspelt device) must be the same one-line user error in every command.
"""
from __future__ import annotations

import torch

from .errors import NeurohebbError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; an explicit CUDA request without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise NeurohebbError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise NeurohebbError(f"device {name!r} requested but no CUDA GPU is available to torch; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise NeurohebbError(f"device {name!r} does not exist ({torch.cuda.device_count()} GPU(s) visible); use cuda:0")
    return device
