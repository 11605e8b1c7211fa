"""Whether a compiled (numba) step can stand in for its torch path on this machine.

Why one place: the compiled readout and the compiled linear SoftHebb step decide the same way.
numba must be importable, their kernels must compile here, and they must give the right numbers
on a closed-form case. Each module caches its own answer and falls back to torch when there is a
reason.
"""
from __future__ import annotations

from typing import Callable


def unavailable_reason(what: str, closed_form_ok: Callable[[], bool]) -> str | None:
    """Why `what` (e.g. "the compiled readout") cannot run here, or None when it can.

    numba's threads are first set to torch's count (`fused_tail.match_threads`)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numba is not installed"
    try:
        from .steps.fused_tail import match_threads

        match_threads()
        if not closed_form_ok():
            return f"{what} gave wrong numbers on a closed-form case"
    except Exception as exc:  # a numba or llvm that cannot compile the kernels
        return f"the kernels of {what} did not compile ({type(exc).__name__}: {exc})"
    return None
