"""The linear readout's training step, written out by hand.

Why not autograd + `torch.optim.Adam`: the readout is one linear map on cached features, and its
steps are tiny (a 64 x F by F x 10 product). With autograd each step pays for ~40 small operator
calls and the graph bookkeeping, which dominates (on a CPU and, as launch overhead, on a GPU). The
gradient of softmax cross-entropy through a linear map has a closed form, and Adam is four
element-wise lines, so one step here is a dozen operator calls. The arithmetic follows
`torch.optim.Adam`'s (default, non-amsgrad) update term by term; a test checks the two agree.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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

    @torch.no_grad()
    def step(self, features: torch.Tensor, labels: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """One step on a batch; returns the logits (computed before the update)."""
        weight, bias = self.params
        x = F.dropout(features, dropout, training=True) if dropout > 0 else features
        logits = torch.addmm(bias, x, weight.t())
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
