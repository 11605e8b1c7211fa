"""Opening `.pt` files without ever running code from them.

Why one function: every checkpoint reader must use `torch.load(weights_only=True)` (a pickle that
asks for anything but tensors and plain data is refused before it runs), and none may pass on
torch's own failure message, which advises retrying with `weights_only=False` -- advice that
would let a malicious file run code, and that a user must never be given.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .errors import NeurohebbError


def load_tensors_file(path: str | Path, fix: str, map_location: Any = "cpu") -> Any:
    """The plain-data payload of `path`, or a one-line error ending in `fix`."""
    import torch

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, foreign pickle, not a torch file, unreadable
        raise NeurohebbError(f"{path} cannot be read safely ({type(exc).__name__}): it is corrupt, was not written by "
                             f"neurohebb, or holds objects other than tensors and plain data; {fix}") from None


def require_tensor_dict(path: Path, name: str, value: Any, fix: str) -> dict:
    """`value` if it maps names to tensors, else a one-line error naming the entry."""
    import torch

    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()):
        raise NeurohebbError(f"{path}: {name} must map names to tensors, got {type(value).__name__}; {fix}")
    return value
