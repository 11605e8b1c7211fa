"""The STPN dynamics as one pure step function on tensors.

Why a pure function: the update is the whole model, so it lives in one place that the layer, the
tests' hand-computed examples and any other backend read the same way. The equations are those
of Garcia Rodriguez, Guo & Moraitis (ICML 2022), as summarised in
`../shared/references/algorithms.md` section 3. With z_t = [x_t, h_t] (input first, then the
recurrent hidden state):

    G_t     = W + F_t                                   effective weight, per sequence
    n_t     = ||G_t||_row                               L2 norm of each postsynaptic row
    h_{t+1} = tanh(G_t z_t / n_t + b)
    F_{t+1} = lambda * (F_t / n_t) + gamma * (h_{t+1} outer z_t)    then optional clamp to +-c

lambda (decay) and gamma (plasticity gain) are per-synapse parameters trained by BPTT. How W and
F are *represented* (float or a chip's fixed-point format) is applied around this function by the
caller through `quantize_state`, never inside the arithmetic.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from .energy import synaptic_energy

Tensor = torch.Tensor

# Guards the row norm against an all-zero row; the authors add a similar tiny constant.
NORM_EPS = 1e-12


class STPNState(NamedTuple):
    """Recurrent state of an STPN layer for a batch of sequences.

    h: [B, H] neuron activations; F: [B, H, I + H] short-term synaptic state (one fast weight per
    synapse and per sequence: plasticity is driven by that sequence's own activity).
    """

    h: Tensor
    F: Tensor


class STPNParams(NamedTuple):
    """The trained (long-term) parameters: weight and lam/gamma are [H, I + H], bias is [H] or None."""

    weight: Tensor
    bias: Tensor | None
    lam: Tensor
    gamma: Tensor


def initial_state(batch: int, input_size: int, hidden_size: int, *, device=None, dtype=None) -> STPNState:
    """All-zero activations and short-term state: a sequence starts with only long-term memory."""
    h = torch.zeros(batch, hidden_size, device=device, dtype=dtype)
    F = torch.zeros(batch, hidden_size, input_size + hidden_size, device=device, dtype=dtype)
    return STPNState(h, F)


def stpn_step(
    x: Tensor,
    state: STPNState,
    params: STPNParams,
    *,
    clamp: float | None = None,
    quantize_state: Callable[[Tensor], Tensor] | None = None,
    with_energy: bool = False,
) -> tuple[STPNState, Tensor | None]:
    """Advance one time step; returns (new state, energy [B] or None).

    `x` is [B, I]. `quantize_state` maps the freshly updated F onto its storage format (it must
    let gradients through if the caller trains through it). The energy is the authors' proxy for
    this step: sum over synapses of presynaptic activity squared times |effective weight|, using
    the normalised weight G / ||G||_row that actually transmits z (see `energy.py`).
    """
    z = torch.cat((x, state.h), dim=1)  # [B, I+H]
    G = params.weight + state.F  # [B, H, I+H]
    # 1 / ||G||_row; elementwise products + sums are faster than batched tiny matmuls here.
    inv_norm = torch.rsqrt((G * G).sum(dim=2) + NORM_EPS**2)  # [B, H]
    pre = (G * z.unsqueeze(1)).sum(dim=2) * inv_norm
    if params.bias is not None:
        pre = pre + params.bias
    h = torch.tanh(pre)
    inv_norm3 = inv_norm.unsqueeze(2)
    F = params.lam * (state.F * inv_norm3) + params.gamma * (h.unsqueeze(2) * z.unsqueeze(1))
    if clamp is not None:
        F = torch.clamp(F, -clamp, clamp)
    if quantize_state is not None:
        F = quantize_state(F)
    energy = None
    if with_energy:
        energy = synaptic_energy(z, G * inv_norm3)
    return STPNState(h, F), energy
