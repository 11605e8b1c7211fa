"""Lava backend: deploy trained soft-WTA networks as Lava processes (Loihi 2 simulation).

Modules: `compat` (the Python 3.11 import fixes), `lava_api` (the one place Lava is imported),
`weights` (float -> Loihi weight format), `encoding` (pixels -> spikes), `mapping` (network ->
circuit description), `emulate` (NumPy twin of the circuit, bit-exact with Lava's fixed point),
`circuit` (the description as connected Lava processes), `procs` (spike generators, per-sample
counters, the per-window sigma-delta neuron), `deploy` (run test samples, metrics, raster), `plots`,
`fold` / `sigma_delta` / `sd_circuit` / `sd_deploy` (multilayer conv networks as exact ReLU stages,
their sigma-delta circuit in Loihi units, its NumPy twin and its Lava run), and `sop` / `learning`
(Loihi sum-of-products plasticity in neurohebb's integer engine and as a Lava `LearningDense`).

Importing this package is cheap and never imports Lava; `require_lava()` does, after applying the
compatibility fixes, and turns a missing or broken install into a one-line `BackendUnavailable`.
"""
from __future__ import annotations

from .lava_api import INSTALL_HINT, require_lava

__all__ = ["INSTALL_HINT", "require_lava"]
