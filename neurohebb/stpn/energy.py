"""The energy proxy of the STPN paper, in one place for every recurrent unit.

Garcia Rodriguez, Guo & Moraitis (ICML 2022) estimate the energy a synapse dissipates per time
step as proportional to its conductance times the square of its presynaptic activity, so a layer
costs sum over synapses of z_j^2 * |G_kj| per step (algorithms.md section 3). Units are
arbitrary: the number is for comparing models on the same task, not joules.

Which G: the weight that actually transmits z. For the STPN that is the normalised effective
weight (W + F) / ||W + F||_row, which changes every step and per sequence; for an RNN it is
[W_ih | W_hh]; for an LSTM the four gates' [W_ih | W_hh] stacked (4H rows). Only the recurrent
layer is counted; the readout is the same kind of layer in every model.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def synaptic_energy(z: Tensor, weight: Tensor) -> Tensor:
    """Energy of one step: sum_k sum_j z_j^2 |G_kj|.

    z: [B, J] presynaptic activity. weight: [K, J] (shared by the batch) or [B, K, J] (one
    effective weight per sequence, as the STPN has). Returns [B].
    """
    z2 = z * z
    if weight.dim() == 2:
        return z2 @ weight.abs().sum(dim=0)
    return torch.einsum("bj,bkj->b", z2, weight.abs())


def static_sequence_energy(x: Tensor, h_prev: Tensor, weight: Tensor) -> Tensor:
    """Per-step energy [B, T] of a unit with fixed weights whose synapses see z_t = [x_t, h_{t-1}].

    x: [B, T, I] inputs; h_prev: [B, T, H] the hidden state *entering* each step; weight:
    [K, I + H]. Computed after the fact from the unit's outputs, so cuDNN kernels stay usable.
    """
    z = torch.cat((x, h_prev), dim=2)
    return (z * z) @ weight.abs().sum(dim=0)
