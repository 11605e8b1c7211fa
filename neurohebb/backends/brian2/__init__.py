"""Brian2 backend: the trained soft-WTA layer as spiking neurons, for inference and for online
spiking plasticity.

Importing this package does not import Brian2; every entry point calls `require_brian2()`,
which raises a one-line `BackendUnavailable` with the install command when it is missing.
Modules: `runtime` (import, code-generation target, compiled cache), `circuit` (the stochastic
WTA circuit and why its spike counts estimate the softmax), `inference` (trained weights ->
spikes -> the trained readout), `learning` (spike-triggered SoftHebb vs the rate rule), `plots`.
"""
from __future__ import annotations

from .circuit import CircuitParams, SpikeRecord, SpikeRule, SpikingSoftWTA, softmax_np
from .inference import (circuit_for, compare_inference, count_features, normalised_counts, spiking_layer, unsupported,
                        write_inference_results)
from .learning import compare_learning, learning_config
from .runtime import INSTALL_HINT, cache_dir, require_brian2, select_target

__all__ = [
    "INSTALL_HINT", "CircuitParams", "SpikeRecord", "SpikeRule", "SpikingSoftWTA", "cache_dir", "compare_inference",
    "compare_learning", "learning_config", "circuit_for", "count_features", "normalised_counts", "require_brian2", "select_target",
    "softmax_np", "spiking_layer", "unsupported", "write_inference_results",
]
