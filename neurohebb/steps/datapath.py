"""The quantised SoftHebb learning step, defined once and run by two engines.

Why a written-down datapath: "SoftHebb at 8 bits" means nothing until every rounding point is
fixed. The fake-quant step (:mod:`.fakequant`, float64 tensors holding exact values, fast,
GPU-friendly) and the integer engine (:mod:`.integer`, int64 codes, shifts and saturations, the
way a chip's learning engine works) both execute exactly this sequence, round at exactly these
points and draw stochastic-rounding noise in exactly this order, so they end bit-identical.

One plastic layer, one batch (``Q_role`` = round to the policy's format of that role):

1. ``x = Q_input(layer.pre(x))``                        pre-synaptic activity (padded / flattened)
2. ``u = W x``                                          exact integer accumulation
3. ``y = Q_post(post_synaptic(u))``                     the soft-WTA, computed in float64 from the
                                                        exact ``u`` (what a neuron would emit)
4. ``H = sum_b y x``;  ``c_k = sum_b y_k u_k``          exact accumulations (over positions too)
5. ``c`` is rounded to nearest on the grid of ``H`` (``2**(e_x + e_y)``), a register of the
   learning engine (skipped when the input or post role is float)
6. ``dW = H - c W``                                     exact
7. normalisation: ``norm=max`` divides by ``max|dW|`` (one float64 IEEE division per element of
   exact operands: a divider with a 53-bit quotient); ``norm=pow2`` multiplies by ``2**-s`` with
   ``2**s`` the smallest power of two >= ``max|dW|`` (a shift)
8. ``dW = Q_update(dW)``
9. ``lr = Q_lr(eta * (| ||W_k|| - 1 | + 1e-10) ** power)`` from the exact weights in float64
   (or ``Q_lr(eta)`` for a constant rate)
10. ``W = Q_weight(W + lr * dW)``                       exact product and sum, one rounding

Initial weights are rounded once with ``Q_weight`` when a network is attached. Roles left at
float32 are not rounded (the fake-quant engine keeps them in float64); the integer engine needs
every role quantised. Stochastic draws: one per element at each rounding point, in the order
weight-init (per layer), then per step input, post, update, lr, weight.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import activations, rules
from ..config import LayerConfig
from ..errors import ConfigError
from ..precision.diagnostics import LayerStats, weight_histogram
from ..precision.policy import PrecisionPolicy


def post_activity(u: torch.Tensor, cfg: LayerConfig) -> torch.Tensor:
    """The rule's post-synaptic factor, computed in float64 (both engines call this)."""
    # contiguous: identical layouts take identical vectorised code paths in both engines
    return activations.post_synaptic(u.to(torch.float64).contiguous(), cfg.rule, cfg.t_invert, dim=1)


def learning_rate(w: torch.Tensor, cfg: LayerConfig) -> torch.Tensor:
    """Per-neuron learning rate [K] in float64 from the exact current weights."""
    return rules.layer_learning_rate(w.to(torch.float64).contiguous(), cfg)


def pow2_shift(max_abs: float) -> int:
    """Smallest ``s`` with ``max_abs <= 2**s`` (exact: frexp is exact)."""
    mantissa, exponent = math.frexp(max_abs)  # max_abs = mantissa * 2**exponent, mantissa in [0.5, 1)
    return exponent - 1 if mantissa == 0.5 else exponent


@dataclass
class LayerState:
    """An engine's view of one plastic layer: its exact weights and its diagnostics."""

    index: int
    layer: nn.Module
    weight: Any  # engine-specific exact representation
    stats: LayerStats
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)  # an engine's per-layer scratch


class DatapathStep:
    """Common machinery of the two quantised `PlasticityStep`s: attaching to layers, write-back
    of the exact weights into the layer, diagnostics. Subclasses implement `_initial_weight`,
    `_step` and `_values`."""

    mode = "abstract"

    def __init__(self, policy: PrecisionPolicy | str | None = None, seed: int = 0, device: str | torch.device = "cpu",
                 stats_every: int = 1):
        if int(stats_every) < 1:
            raise ConfigError(f"stats_every must be >= 1, got {stats_every}")
        self.policy = PrecisionPolicy.parse(policy)
        # stalled-synapse statistics cost several weight-sized passes: a long run can sample them
        # on every n-th step (saturation counts are always complete)
        self.stats_every = int(stats_every)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self._states: dict[int, LayerState] = {}

    # -- the protocol ---------------------------------------------------------------------------
    def attach(self, layer: nn.Module, index: int = 0) -> None:
        """Take charge of a layer's plasticity; rounds its initial weights with Q_weight."""
        self._state(layer, index)

    @torch.no_grad()
    def step(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One plasticity step of `layer` on batch `x`; returns u computed before the update."""
        if not layer.plastic:
            return layer(x)
        state = self._state(layer)
        u = self._step(state, layer, x)
        state.stats.steps += 1
        self._write_back(state)
        return u.to(x.dtype)

    def diagnostics(self) -> list[dict[str, Any]]:
        """Per plastic layer: saturation per role, stalled fraction, weight histogram."""
        out = []
        for state in sorted(self._states.values(), key=lambda s: s.index):
            d = state.stats.to_dict()
            fmt = self.policy.weight.fmt
            d["weight_histogram"] = weight_histogram(self._values(state), None if fmt.is_float else fmt)
            d["weight_norm_gap"] = float((rules.neuron_norms(self._values(state)) - 1).abs().mean())
            out.append(d)
        return out

    # -- helpers --------------------------------------------------------------------------------
    def _state(self, layer: nn.Module, index: int = 0) -> LayerState:
        state = self._states.get(id(layer))
        if state is not None:
            return state
        if getattr(layer, "bias", None) is not None:
            raise ConfigError(
                f"layers.{index}.bias: the learned prior is not modelled under a precision policy; set bias = false"
            )
        state = LayerState(index, layer, None, LayerStats(index))
        state.weight = self._initial_weight(state, layer.weight.detach())
        self._write_back(state)
        self._states[id(layer)] = state
        return state

    def sampling(self, state: LayerState) -> bool:
        """Whether this step's stalled-synapse statistics are recorded (every `stats_every`-th)."""
        return state.stats.steps % self.stats_every == 0

    def weight_values(self, layer: nn.Module) -> torch.Tensor:
        """A snapshot of the layer's exact current weights as float64 (a copy: the engines
        reuse their weight buffers from step to step)."""
        return self._values(self._states[id(layer)]).clone()

    def _write_back(self, state: LayerState) -> None:
        # copy_ rounds float64 -> float32 exactly as .to() does, without the intermediate tensor
        state.layer.weight.copy_(self._values(state))

    # -- engine specifics -----------------------------------------------------------------------
    def _initial_weight(self, state: LayerState, w: torch.Tensor) -> Any:
        raise NotImplementedError

    def _step(self, state: LayerState, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _values(self, state: LayerState) -> torch.Tensor:
        raise NotImplementedError
