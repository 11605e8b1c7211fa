"""The linear readout's training step, written out by hand.

Why not autograd + `torch.optim.Adam`: the readout is one linear map on cached features, and its
steps are tiny (a 64 x F by F x 10 product). With autograd each step pays for ~40 small operator
calls and the graph bookkeeping, which dominates (on a CPU and, as launch overhead, on a GPU). The
gradient of softmax cross-entropy through a linear map has a closed form, and Adam is four
element-wise lines, so one step here is a dozen operator calls. The arithmetic follows
`torch.optim.Adam`'s (default, non-amsgrad) update term by term; a test checks the two agree.

Why a dropout of its own: the paper's readout drops half its inputs, and torch's CPU
`bernoulli_` spent ~23 ns per element drawing that mask (two thirds of a cifar10 readout
epoch). A mask with p = 1/2 needs one random bit per element, so :func:`half_dropout` draws one
random byte for eight elements and expands it through a table.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


_BYTE_MASKS: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _byte_masks(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[256, 8]: row b holds 2 * (bit j of b) for j = 0..7 (the kept inputs scaled by 1/(1 - 1/2))."""
    key = (dtype, device)
    table = _BYTE_MASKS.get(key)
    if table is None:
        bits = (torch.arange(256).unsqueeze(1) >> torch.arange(8)) & 1
        table = _BYTE_MASKS[key] = bits.to(dtype=dtype, device=device).mul_(2.0)
    return table


def half_dropout(x: torch.Tensor, generator: torch.Generator | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Dropout with p = 1/2: each element kept, times 2, with probability exactly 1/2. Written into
    `out` (a flat buffer of at least ``ceil(numel / 8) * 8`` elements of x's dtype) when given.

    The bits are those of uniform random 64-bit words (``random_`` over the full int64 range takes
    all 64 bits of the generator's output), independent across elements; the global generator is
    used unless one is given, as `F.dropout` does, so a run's seed fixes the masks.
    """
    n = x.numel()
    words = torch.empty(((n + 63) // 64,), dtype=torch.int64, device=x.device)
    # the full 64-bit range: every bit of the generator's output is used (~7x cheaper than
    # randint(0, 256) per byte, which spends one 32-bit draw on each)
    words.random_(-(2**63), None, generator=generator)
    draws = words.view(torch.uint8)[: (n + 7) // 8].long()
    table = _byte_masks(x.dtype, x.device)
    if out is None:
        mask = torch.index_select(table, 0, draws)
    else:  # a reused buffer: a fresh batch-sized tensor every step costs page faults
        mask = torch.index_select(table, 0, draws, out=out[: draws.numel() * 8].view(-1, 8))
    return mask.view(-1)[:n].view(x.shape).mul_(x)


def apply_dropout(x: torch.Tensor, p: float, generator: torch.Generator | None = None,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """Inverted dropout with rate `p` (training mode); p = 1/2 takes :func:`half_dropout`."""
    if p <= 0.0:
        return x
    if p == 0.5:
        return half_dropout(x, generator, out)
    return F.dropout(x, p, training=True)


class LinearReadoutAdam:
    """Adam on an `nn.Linear`'s weight and bias with the cross-entropy gradient in closed form."""

    def __init__(self, linear: nn.Linear, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [linear.weight, linear.bias]
        self.lr = float(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self._mask = torch.empty(0, dtype=linear.weight.dtype, device=linear.weight.device)

    @torch.no_grad()
    def step(self, features: torch.Tensor, labels: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """One step on a batch; returns the logits (computed before the update)."""
        weight, bias = self.params
        if dropout == 0.5 and self._mask.numel() < features.numel() + 8:
            self._mask = torch.empty(features.numel() + 8, dtype=features.dtype, device=features.device)
        x = apply_dropout(features, dropout, out=self._mask)
        # W x^T then transposed: the skinny product reads x row-major (~2x faster than x W^T here)
        logits = torch.mm(weight, x.t()).t().add_(bias)
        # d(mean cross-entropy)/d(logits) = (softmax - one_hot) / batch
        grad_logits = torch.softmax(logits, dim=1)
        grad_logits[torch.arange(labels.shape[0], device=labels.device), labels] -= 1.0
        grad_logits.div_(labels.shape[0])
        grads = [grad_logits.t() @ x, grad_logits.sum(dim=0)]
        self.step_count += 1
        bias_correction1 = 1.0 - self.beta1**self.step_count
        bias_correction2_sqrt = math.sqrt(1.0 - self.beta2**self.step_count)
        torch._foreach_lerp_(self.exp_avg, grads, 1.0 - self.beta1)
        torch._foreach_mul_(self.exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1.0 - self.beta2)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom, -self.lr / bias_correction1)
        return logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> float:
        return float(F.cross_entropy(logits, labels))
