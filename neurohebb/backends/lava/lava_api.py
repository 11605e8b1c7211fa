"""The one place neurohebb imports Lava: the compatibility fix first, then the classes we use.

Why a single gateway: a missing or broken Lava must surface as one clear `BackendUnavailable`
naming the install command, never as an ImportError deep in a traceback, and the Python 3.11 fix
(`compat`) must be in place before *any* Lava module is imported.
"""
from __future__ import annotations

import functools
from types import SimpleNamespace

from ...errors import BackendUnavailable
from . import compat

INSTALL_HINT = "run ./setup.sh (or: pip install --no-deps --ignore-requires-python lava-nc==0.10.0)"


@functools.lru_cache(maxsize=1)
def require_lava() -> SimpleNamespace:
    """Import the Lava classes the backend needs; raise `BackendUnavailable` if Lava is unusable."""
    compat.install()
    try:
        import importlib.util

        if importlib.util.find_spec("lava") is None or importlib.util.find_spec("lava.magma") is None:
            raise BackendUnavailable(f"Lava (lava-nc) is not installed; {INSTALL_HINT}")
        imp = compat.import_lava_module
        ns = SimpleNamespace(
            Dense=imp("lava.proc.dense.process").Dense,
            LearningDense=imp("lava.proc.dense.process").LearningDense,
            LIF=imp("lava.proc.lif.process").LIF,
            LIFReset=imp("lava.proc.lif.process").LIFReset,
            LearningLIF=imp("lava.proc.lif.process").LearningLIF,
            Read=imp("lava.proc.io.sink").Read,
            SourceRingBuffer=imp("lava.proc.io.source").RingBuffer,
            SinkRingBuffer=imp("lava.proc.io.sink").RingBuffer,
            Loihi2SimCfg=imp("lava.magma.core.run_configs").Loihi2SimCfg,
            RunSteps=imp("lava.magma.core.run_conditions").RunSteps,
            SignMode=imp("lava.utils.weightutils").SignMode,
            Loihi2FLearningRule=imp("lava.magma.core.learning.learning_rule").Loihi2FLearningRule,
            Loihi3FLearningRule=imp("lava.magma.core.learning.learning_rule").Loihi3FLearningRule,
            version=_lava_version(),
        )
    except BackendUnavailable:
        raise
    except Exception as exc:  # ImportError, or Lava failing at import on this Python/numpy
        raise BackendUnavailable(
            f"Lava (lava-nc) cannot be imported ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); {INSTALL_HINT}"
        ) from None
    return ns


def _lava_version() -> str:
    try:
        from importlib.metadata import version

        return version("lava-nc")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"


def sign_mode(name: str):
    """Lava's `SignMode` member for 'mixed' / 'excitatory' / 'inhibitory'."""
    return getattr(require_lava().SignMode, name.upper())
