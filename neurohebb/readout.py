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

Why a compiled step beside it: on a CPU with numba, :mod:`.readout_kernels` runs the same step
(the same dropout bits, Adam's same terms) in two passes over the batch, reading the cached rows
where they lie; its float32 sums run in another order than MKL's, so the two paths agree to
float32 rounding, not bit for bit. `LinearReadoutAdam(..., compiled=False)` keeps torch's.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError


_BYTE_MASKS: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _byte_masks(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[256, 8]: row b holds 2 * (bit j of b) for j = 0..7 (the kept inputs scaled by 1/(1 - 1/2))."""
    key = (dtype, device)
    table = _BYTE_MASKS.get(key)
    if table is None:
        bits = (torch.arange(256).unsqueeze(1) >> torch.arange(8)) & 1
        table = _BYTE_MASKS[key] = bits.to(dtype=dtype, device=device).mul_(2.0)
    return table


def _dropout_words(numel: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    """The random words the half dropout draws for `numel` elements (bit j of byte k: element 8k + j)."""
    words = torch.empty(((numel + 63) // 64,), dtype=torch.int64, device=device)
    # the full 64-bit range: every bit of the generator's output is used (~7x cheaper than
    # randint(0, 256) per byte, which spends one 32-bit draw on each)
    return words.random_(-(2**63), None, generator=generator)


def half_dropout(x: torch.Tensor, generator: torch.Generator | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Dropout with p = 1/2: each element kept, times 2, with probability exactly 1/2. Written into
    `out` (a flat buffer of at least ``ceil(numel / 8) * 8`` elements of x's dtype) when given.

    The bits are those of uniform random 64-bit words (``random_`` over the full int64 range takes
    all 64 bits of the generator's output), independent across elements; the global generator is
    used unless one is given, as `F.dropout` does, so a run's seed fixes the masks.
    """
    n = x.numel()
    draws = _dropout_words(n, x.device, generator).view(torch.uint8)[: (n + 7) // 8].long()
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


def compiled_unavailable_reason(linear: nn.Linear) -> str | None:
    """Why the compiled step cannot train `linear` (None: it can)."""
    if linear.weight.device.type != "cpu" or linear.weight.dtype != torch.float32 or linear.bias is None:
        return "the compiled readout runs float32 weights with a bias on the CPU"
    from . import readout_kernels

    return readout_kernels.unavailable_reason()


class LinearReadoutAdam:
    """Adam on an `nn.Linear`'s weight and bias with the cross-entropy gradient in closed form.

    `compiled`: None takes the compiled step where it can run (CPU, float32, numba), True insists
    on it (a ConfigError where it cannot), False keeps the torch path."""

    def __init__(self, linear: nn.Linear, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 compiled: bool | None = None):
        reason = compiled_unavailable_reason(linear) if compiled is not False else "not requested"
        if compiled and reason is not None:
            raise ConfigError(f"the compiled readout cannot run here: {reason}; pass compiled=False for torch's")
        self.compiled = reason is None
        self.params = [linear.weight, linear.bias]
        self.lr = float(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self._mask = torch.empty(0, dtype=linear.weight.dtype, device=linear.weight.device)
        self._batch = torch.empty(0, dtype=linear.weight.dtype, device=linear.weight.device)
        self._kernel = None  # readout_kernels.CompiledReadoutStep, made at the first compiled step
        self._words = np.empty(0, np.uint64)

    @torch.no_grad()
    def step(self, features: torch.Tensor, labels: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """One step on a batch; returns the logits (computed before the update)."""
        if self._takes_compiled(features, dropout):
            return self._compiled_step(features, torch.arange(features.shape[0]), labels, dropout)
        if dropout == 0.5 and self._mask.numel() < features.numel() + 8:
            self._mask = torch.empty(features.numel() + 8, dtype=features.dtype, device=features.device)
        return self._descend(apply_dropout(features, dropout, out=self._mask), labels)

    @torch.no_grad()
    def step_rows(self, source: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor,
                  dropout: float = 0.0) -> torch.Tensor:
        """`step(source[rows], labels, dropout)` with the rows gathered into a reused buffer (a
        fresh batch-sized tensor every step costs page faults); the compiled step reads the rows
        where they lie."""
        if self._takes_compiled(source, dropout):
            return self._compiled_step(source, rows, labels, dropout)
        batch = torch.index_select(source, 0, rows, out=self._batch_buffer(rows.numel(), source))
        return self.step(batch, labels, dropout)

    def _batch_buffer(self, n: int, like: torch.Tensor) -> torch.Tensor:
        shape = (n,) + tuple(like.shape[1:])
        need = math.prod(shape)
        if self._batch.numel() < need or self._batch.dtype != like.dtype or self._batch.device != like.device:
            self._batch = torch.empty(need, dtype=like.dtype, device=like.device)
        return self._batch[:need].view(shape)

    def _takes_compiled(self, features: torch.Tensor, dropout: float) -> bool:
        return (self.compiled and dropout in (0.0, 0.5) and features.dim() == 2 and features.dtype == torch.float32
                and features.device.type == "cpu" and features.is_contiguous())

    def _compiled_step(self, source: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor,
                       dropout: float) -> torch.Tensor:
        """The step of :mod:`.readout_kernels` on source[rows]: the torch path's dropout draws, from
        the same generator, so the same masks and every later draw unchanged."""
        from .readout_kernels import CompiledReadoutStep
        from .steps.fused_tail import match_threads

        match_threads()
        width = source.shape[1]
        if self._kernel is None or self._kernel.width != width:
            self._kernel = CompiledReadoutStep(width, self.params[0].shape[0])
        bits = self._dropout_bits(rows.numel() * width) if dropout == 0.5 else None
        bias_correction2_sqrt, step_size = self._next_step()
        logits = self._kernel(source.numpy(), rows.numpy().astype(np.int64, copy=False), bits,
                              labels.numpy().astype(np.int64, copy=False), [p.detach().numpy() for p in self.params],
                              [t.numpy() for t in self.exp_avg], [t.numpy() for t in self.exp_avg_sq],
                              self.beta1, self.beta2, bias_correction2_sqrt, self.eps, step_size)
        return torch.from_numpy(logits.copy())

    def _next_step(self) -> tuple[float, float]:
        """Count the step; Adam's sqrt(1 - beta2^t) and its signed step -lr / (1 - beta1^t)."""
        self.step_count += 1
        bias_correction1 = 1.0 - self.beta1**self.step_count
        return math.sqrt(1.0 - self.beta2**self.step_count), -self.lr / bias_correction1

    def _dropout_bits(self, numel: int) -> np.ndarray:
        """The half dropout's random words for `numel` elements, as bytes. Drawn by the kernels'
        MT19937 on the global generator's state (3x faster than ``random_`` here, the same words,
        the generator left where ``random_`` leaves it) where that reproduces torch, else by torch."""
        from .steps.fused_tail import TwisterState, twister_ok

        count = (numel + 63) // 64
        if not twister_ok():
            return _dropout_words(numel, torch.device("cpu")).numpy().view(np.uint8)
        if self._words.size < count:
            self._words = np.empty(count, np.uint64)
        twister = TwisterState(torch.default_generator)
        words = twister.words64(self._words[:count])
        twister.put_back()
        return words.view(np.uint8)

    def _descend(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits, the closed-form gradient and Adam's update on a (dropped-out) batch."""
        weight, bias = self.params
        # W x^T then transposed: the skinny product reads x row-major (~2x faster than x W^T here)
        logits = torch.mm(weight, x.t()).t().add_(bias)
        # d(mean cross-entropy)/d(logits) = (softmax - one_hot) / batch
        grad_logits = torch.softmax(logits, dim=1)
        grad_logits[torch.arange(labels.shape[0], device=labels.device), labels] -= 1.0
        grad_logits.div_(labels.shape[0])
        grads = [grad_logits.t() @ x, grad_logits.sum(dim=0)]
        bias_correction2_sqrt, step_size = self._next_step()
        torch._foreach_lerp_(self.exp_avg, grads, 1.0 - self.beta1)
        torch._foreach_mul_(self.exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1.0 - self.beta2)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom, step_size)
        return logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> float:
        return float(F.cross_entropy(logits, labels))
