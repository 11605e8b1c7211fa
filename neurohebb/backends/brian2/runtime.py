"""Importing Brian2 and choosing its code-generation target.

Why a module of its own: Brian2 is optional, so the import must fail with one line that says how
to install it; and the fast "cython" target compiles C code on first use, which must land in a
user cache folder (never in the repository) and fall back to the pure "numpy" target when no
compiler works. Every result records which target actually ran.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import BackendUnavailable, ConfigError

INSTALL_HINT = "pip install 'brian2>=2.9'"
TARGETS = ("auto", "cython", "numpy")

_cython_ok: bool | None = None  # memoised result of Brian2's test compilation


def require_brian2() -> Any:
    """Return the imported `brian2` module, or raise a one-line BackendUnavailable."""
    try:
        import brian2
    except ImportError as exc:
        raise BackendUnavailable(f"the Brian2 backend needs the brian2 package ({exc}); install it with: {INSTALL_HINT}") from None
    return brian2


def cache_dir() -> Path:
    """Where compiled Cython extensions go: $NEUROHEBB_CACHE_DIR or ~/.cache (XDG) /neurohebb/brian2."""
    root = os.environ.get("NEUROHEBB_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "brian2"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "neurohebb" / "brian2"


def cython_available() -> bool:
    """True when Cython imports and Brian2's test compilation succeeds (checked once)."""
    global _cython_ok
    if _cython_ok is None:
        brian2 = require_brian2()
        try:
            import Cython  # noqa: F401
        except ImportError:
            _cython_ok = False
            return False
        _point_cache()
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        level = brian2.BrianLogger.console_handler.level if brian2.BrianLogger.console_handler else None
        try:
            brian2.BrianLogger.log_level_error()  # a failed test compile is an expected outcome here
            _cython_ok = bool(CythonCodeObject.is_available())
        finally:
            if level is not None:
                brian2.BrianLogger.console_handler.setLevel(level)
    return _cython_ok


def _point_cache() -> None:
    from brian2 import prefs

    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendUnavailable(f"cannot create the Brian2 cache folder {directory}: {exc.strerror}; set NEUROHEBB_CACHE_DIR to a writable folder") from None
    prefs.codegen.runtime.cython.cache_dir = str(directory)


def select_target(preference: str = "auto") -> str:
    """Configure Brian2 for `preference` and return the target that will run.

    "auto" takes cython when a compiler works, else numpy; an explicit "cython" without a
    working compiler is an error (the user asked for it), with the fallback named.
    """
    if preference not in TARGETS:
        raise ConfigError(f"Brian2 target {preference!r} is not known; choose one of: {', '.join(TARGETS)}")
    brian2 = require_brian2()
    target = preference
    if preference in ("auto", "cython"):
        ok = cython_available()
        if not ok and preference == "cython":
            raise BackendUnavailable("Brian2's cython target needs Cython and a working C compiler (e.g. apt-get install build-essential; pip install cython); or pass --target numpy")
        target = "cython" if ok else "numpy"
    brian2.prefs.codegen.target = target
    brian2.prefs.logging.file_log = False  # no brian_debug_*.log files in /tmp for every run
    brian2.prefs.logging.save_script = False
    return target
