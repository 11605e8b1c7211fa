"""Process memory tuning: let the C heap keep and reuse freed large blocks (glibc only).

Why: glibc's malloc serves each block above its mmap threshold with a fresh `mmap` and unmaps it
on `free`. The conv networks allocate and free activation tensors of 100-200 MB for every batch
of 500 feature images, so every batch page-faults its whole working set in again: the cifar10
control run took 103 million minor page faults and 462 s of system time. With the thresholds
raised, the heap reuses those blocks (the same numbers bit for bit). Blocks above
`threshold_bytes` (e.g. a cached feature matrix) still go straight back to the system when freed, and :func:`release_free_memory` hands the
retained blocks back once a phase is over. Full cifar10 control run (features of 60k images, peak
RSS): system allocator 973 s, 6.64 GiB; 1 GiB thresholds 612 s, 7.54 GiB; 256 MiB thresholds and
a release after each pass (these defaults) 711 s, 7.29 GiB (one run each, on a drifting host).

The CLI calls :func:`retain_freed_memory` once at start; ``NEUROHEBB_SYSTEM_MALLOC=1`` leaves the
allocator as it is. Elsewhere (macOS, musl) it does nothing.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD = 256 << 20  # 256 MiB: the conv blocks' 500-image activations (<= 200 MB) are below it

_libc: ctypes.CDLL | None = None  # set once the thresholds are raised


def retain_freed_memory(threshold_bytes: int = DEFAULT_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to `threshold_bytes`; returns whether it applied.

    Idempotent. Skipped (False) when ``NEUROHEBB_SYSTEM_MALLOC`` is set to a non-empty value other
    than ``0``, or when the C library is not glibc.
    """
    global _libc
    if _libc is not None:
        return True
    if os.environ.get("NEUROHEBB_SYSTEM_MALLOC", "0") not in ("", "0"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes))) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, int(threshold_bytes)))
    except (OSError, AttributeError):
        return False
    if ok:
        _libc = libc
    return ok


def release_free_memory() -> None:
    """Return the heap's free blocks to the system (`malloc_trim`), when the thresholds were raised:
    called at the end of a phase, so the blocks its batches reused do not stay resident."""
    if _libc is not None:
        try:
            _libc.malloc_trim(0)
        except AttributeError:  # a glibc without malloc_trim: nothing to release
            pass


def add_allocator_flag(parser: argparse.ArgumentParser) -> None:
    """`--system-malloc` for the speed benchmarks, which time what the CLI runs by default."""
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's allocator thresholds as they are (the CLI raises them: neurohebb.memory)")


def apply_allocator_flag(args: argparse.Namespace) -> None:
    """Tune the allocator as the CLI does, unless the benchmark was given `--system-malloc`."""
    if not args.system_malloc:
        retain_freed_memory()
