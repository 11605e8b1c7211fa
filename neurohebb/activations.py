"""Soft winner-take-all and the activations blocks pass on, as pure functions on tensors.

Why pure functions: the same math is reused by the layers, the precision engine and the
backends' reference checks, and each can be tested against closed-form cases on its own.
"""
from __future__ import annotations

import torch


def soft_wta(u: torch.Tensor, t_invert: float, dim: int = 1) -> torch.Tensor:
    """y = softmax(t_invert * u) over the competing neurons (the soft WTA of SoftHebb)."""
    return torch.softmax(t_invert * u, dim=dim)


def winner_mask(u: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Boolean mask of the argmax neuron along `dim` (first index on ties, like torch.argmax)."""
    idx = torch.argmax(u, dim=dim, keepdim=True)
    return torch.zeros_like(u, dtype=torch.bool).scatter_(dim, idx, True)


def anti_hebbian_post(u: torch.Tensor, t_invert: float, dim: int = 1) -> torch.Tensor:
    """Multilayer SoftHebb post-synaptic term: +softmax for the winner, -softmax for every other
    neuron, so losers move away from inputs they respond to (Journe et al. 2023)."""
    y = soft_wta(u, t_invert, dim)
    return torch.where(winner_mask(u, dim), y, -y)


def hard_wta(u: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """One-hot winner: the hard-WTA baseline's post-synaptic term."""
    return winner_mask(u, dim).to(u.dtype)


def triangle(u: torch.Tensor, power: float = 1.0, dim: int = 1) -> torch.Tensor:
    """relu(u - mean over neurons) ** power: the paper's activation between blocks. The power
    runs in place on the fresh relu, and not at all for power 1 (torch's ``** 1.0`` is a copy:
    290 ms of each 500-image feature batch in cifar10's third block)."""
    return power_(torch.relu(u - u.mean(dim=dim, keepdim=True)), power)


def triangle_(u: torch.Tensor, power: float = 1.0, dim: int = 1) -> torch.Tensor:
    """:func:`triangle` in u's own memory (the same values): for a caller whose u is a fresh
    temporary. Why: a fresh 200 MB output per elementwise op is page-faulted in every feature
    batch (cifar10's third block: 75-85 ms for each of the subtraction and the relu)."""
    return power_(u.sub_(u.mean(dim=dim, keepdim=True)).relu_(), power)


def power_(v: torch.Tensor, power: float) -> torch.Tensor:
    """``v ** power`` in place on a temporary; nothing at all for power 1."""
    return v if power == 1.0 else v.pow_(power)


def block_activation(u: torch.Tensor, name: str, param: float, dim: int = 1, inplace: bool = False) -> torch.Tensor:
    """The activation a block passes on to the next block / the readout (`inplace`: the
    elementwise ones may overwrite u, a temporary of the caller's)."""
    if name == "triangle":
        return triangle_(u, param, dim) if inplace else triangle(u, param, dim)
    if name == "relu" and inplace:
        return u.relu_()
    if name == "softmax":
        return soft_wta(u, param, dim)
    if name == "relu":
        return torch.relu(u)
    if name == "identity":
        return u
    raise ValueError(f"unknown activation {name!r}")


def post_synaptic(u: torch.Tensor, rule: str, t_invert: float, dim: int = 1) -> torch.Tensor:
    """The post-synaptic factor y of each rule (what multiplies the input in the update)."""
    if rule == "softhebb":
        return soft_wta(u, t_invert, dim)
    if rule == "softhebb-anti":
        return anti_hebbian_post(u, t_invert, dim)
    if rule == "hard-wta":
        return hard_wta(u, dim)
    raise ValueError(f"rule {rule!r} has no post-synaptic term")
