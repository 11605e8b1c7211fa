"""`STPN`: a recurrent layer of short-term plasticity neurons for the user's own PyTorch models.

Why a thin module over `functional.stpn_step`: the module only owns the trained parameters
(W, b, lambda, gamma), the optional precision policy and, if asked, the state carried between
calls; the dynamics stay in one pure function. Sequences are batch-first ([B, T, I]) and every
tensor lives on the parameters' device, so the layer runs on GPU like any other module.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..errors import NeurohebbError
from .functional import STPNParams, STPNState, initial_state, stpn_step

Tensor = torch.Tensor
# A role-based quantiser, as in the core layers: quantizer(role, tensor) -> tensor of
# representable values. The STPN uses the roles "weight" (W, once per call) and "state" (F,
# after every update). Gradients are passed straight through around it (see `_straight_through`).
Quantizer = Callable[[str, Tensor], Tensor]


def _straight_through(quantizer: Quantizer, role: str) -> Callable[[Tensor], Tensor]:
    """Forward value quantizer(role, t); backward gradient of the identity (straight-through
    estimator), so BPTT can train lambda, gamma and W through a rounded state."""

    def apply(t: Tensor) -> Tensor:
        detached = t.detach()
        return t + (quantizer(role, detached) - detached)

    return apply


class STPN(nn.Module):
    """Short-term plasticity neurons (Garcia Rodriguez, Guo & Moraitis, ICML 2022).

    Args:
        input_size: features per time step (I).
        hidden_size: neurons (H). Every neuron has I + H plastic synapses: inputs, then the
            recurrent connections from all neurons.
        bias: learn a bias per neuron.
        clamp: if set, the short-term state F is clamped to [-clamp, clamp] after each update (a
            bounded synapse, as a chip's storage is).
        quantizer: optional precision policy, `quantizer(role, t)`; W is held at role "weight",
            F at role "state" (e.g. `STPNPrecision(state="s8.6")`).
        stateful: keep the final state of each call (detached from the graph, i.e. truncated
            BPTT at call boundaries) and start the next call from it when no state is given;
            `reset_state()` forgets it.

    `forward(x, state=None)` takes x [B, T, I] and returns (outputs [B, T, H], final state);
    `forward_with_energy` also returns the energy proxy per step, [B, T].
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        clamp: float | None = None,
        quantizer: Quantizer | None = None,
        stateful: bool = False,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise NeurohebbError(f"STPN needs input_size >= 1 and hidden_size >= 1, got {input_size} and {hidden_size}")
        if clamp is not None and not clamp > 0:
            raise NeurohebbError(f"STPN clamp must be > 0 (or None for no clamping), got {clamp}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.clamp = clamp
        self.quantizer = quantizer
        self.stateful = stateful
        self.state: STPNState | None = None
        shape = (hidden_size, input_size + hidden_size)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.lam = nn.Parameter(torch.empty(shape))
        self.gamma = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' initialisation: W, b ~ U(+-1/sqrt(H)); lambda ~ U(0, 1);
        gamma ~ U(+-0.001/sqrt(H)), so plasticity starts weak and training decides its sign."""
        k = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            self.weight.uniform_(-k, k)
            if self.bias is not None:
                self.bias.uniform_(-k, k)
            self.lam.uniform_(0.0, 1.0)
            self.gamma.uniform_(-0.001 * k, 0.001 * k)

    def initial_state(self, batch: int) -> STPNState:
        return initial_state(batch, self.input_size, self.hidden_size, device=self.weight.device, dtype=self.weight.dtype)

    def reset_state(self) -> None:
        """Forget the state carried between calls (stateful mode)."""
        self.state = None

    def params(self) -> STPNParams:
        """The long-term parameters as the step function sees them (W at its storage format)."""
        weight = self.weight
        if self.quantizer is not None:
            weight = _straight_through(self.quantizer, "weight")(weight)
        return STPNParams(weight, self.bias, self.lam, self.gamma)

    def forward(self, x: Tensor, state: STPNState | None = None) -> tuple[Tensor, STPNState]:
        outputs, state, _ = self._run(x, state, with_energy=False)
        return outputs, state

    def forward_with_energy(self, x: Tensor, state: STPNState | None = None) -> tuple[Tensor, STPNState, Tensor]:
        """As `forward`, plus the energy proxy of every step, [B, T] (see `energy.py`)."""
        return self._run(x, state, with_energy=True)

    def _run(self, x: Tensor, state: STPNState | None, *, with_energy: bool):
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise NeurohebbError(
                f"STPN expects batch-first sequences of shape [batch, time, {self.input_size}], got {tuple(x.shape)}; "
                "add a batch dimension with x.unsqueeze(0) or check input_size"
            )
        batch = x.shape[0]
        if state is None and self.stateful and self.state is not None:
            state = self.state
        if state is None:
            state = self.initial_state(batch)
        elif state.h.shape[0] != batch or state.F.shape[0] != batch:
            raise NeurohebbError(
                f"STPN state is for a batch of {state.h.shape[0]} but the input has {batch} sequences; "
                "pass state=None (or call reset_state()) to start fresh"
            )
        params = self.params()
        quantize_state = _straight_through(self.quantizer, "state") if self.quantizer is not None else None
        outputs, energies = [], []
        for t in range(x.shape[1]):
            state, energy = stpn_step(
                x[:, t], state, params, clamp=self.clamp, quantize_state=quantize_state, with_energy=with_energy
            )
            outputs.append(state.h)
            if with_energy:
                energies.append(energy)
        if not outputs:
            raise NeurohebbError("STPN got a sequence of length 0; pass at least one time step")
        if self.stateful:
            self.state = STPNState(state.h.detach(), state.F.detach())
        out = torch.stack(outputs, dim=1)
        energy_t = torch.stack(energies, dim=1) if with_energy else None
        return out, state, energy_t

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, bias={self.bias is not None}, "
            f"clamp={self.clamp}, quantizer={self.quantizer}, stateful={self.stateful}"
        )
