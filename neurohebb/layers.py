"""Plastic soft-WTA layers: they hold weights and apply a rule from `rules.py` to themselves.

Why weights are buffers, not Parameters: nothing here is trained by backpropagation; the update
is local and computed explicitly. A `Quantizer` hook (see `neurohebb.precision`) is applied
around the pure rule functions at fixed roles, so the same layer learns in float32 or under a
chip's number formats without the rule knowing.
"""
from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from . import activations, rules
from .config import LayerConfig

ROLES = ("input", "weight", "post", "update", "lr")


class Quantizer(Protocol):
    """Maps a tensor of a given role to its representable values (identity for float32)."""

    def __call__(self, role: str, t: torch.Tensor) -> torch.Tensor: ...


def _identity(role: str, t: torch.Tensor) -> torch.Tensor:
    return t


class SoftWTALayer(nn.Module):
    """Shared machinery of the linear and convolutional soft-WTA layers."""

    def __init__(self, cfg: LayerConfig, weight_shape: tuple[int, ...], fan_in: int, generator: torch.Generator | None):
        super().__init__()
        self.cfg = cfg
        std = cfg.init_radius / math.sqrt(fan_in)
        self.register_buffer("weight", torch.randn(weight_shape, generator=generator) * std)
        if cfg.bias:
            # uniform prior 1/K, expressed in the units of u (the softmax multiplies by t_invert)
            prior = torch.full((cfg.out_channels,), math.log(1.0 / cfg.out_channels) / cfg.t_invert)
            self.register_buffer("bias", prior)
        else:
            self.bias = None

    @property
    def plastic(self) -> bool:
        return self.cfg.rule != "random"

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        """What the weights see: the input after padding (identity for linear)."""
        return x

    def _weighted_input(self, x_pre: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _update(self, x_pre, u, y, w) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation u (the neurons' input current)."""
        return self._weighted_input(self._pre(x), self.weight)

    @torch.no_grad()
    def learn(self, x: torch.Tensor, quantizer: Quantizer | None = None) -> torch.Tensor:
        """One plasticity step on a batch; returns u computed *before* the update (as the
        paper does: the batch is propagated with the weights it was learned from)."""
        if quantizer is None and self.bias is None and self.plastic:
            return self._learn_fused(x)
        q = quantizer or _identity
        x_pre = q("input", self._pre(x))
        u = self._weighted_input(x_pre, self.weight)
        if not self.plastic:
            return u
        cfg = self.cfg
        y = q("post", activations.post_synaptic(u, cfg.rule, cfg.t_invert, dim=1))
        dw = self._update(x_pre, u, y, self.weight)
        if cfg.normalize_update:
            dw = rules.normalize_update(dw)
        dw = q("update", dw)
        if cfg.lr_schedule == "norm-adaptive":
            lr = rules.adaptive_lr(self.weight, cfg.lr, cfg.lr_power)
        else:
            lr = torch.full((self.weight.shape[0],), cfg.lr, dtype=self.weight.dtype, device=self.weight.device)
        lr = q("lr", lr)
        step = lr.reshape(-1, *([1] * (dw.dim() - 1))) * dw
        self.weight.copy_(q("weight", self.weight + step))
        if self.bias is not None:
            y_flat = y.transpose(0, 1).reshape(y.shape[1], -1).t()
            db = rules.bias_update(y_flat, self.bias, cfg.t_invert)
            self.bias.add_((cfg.lr / cfg.t_invert) * rules.normalize_update(db))
        return u


    @torch.no_grad()
    def _learn_fused(self, x: torch.Tensor) -> torch.Tensor:
        """The float32 step of `learn` with fewer passes over the weight tensor (same math).

        dW = yx - c W (c = sum y*u) is formed in place in the correlation's buffer, its max comes
        from one min/max pass without a temporary, and the step is one fused in-place multiply-add.
        This is the hot loop of every float run; `learn` with a quantiser keeps the explicit
        sequence of roles.
        """
        cfg = self.cfg
        w = self.weight
        x_pre = self._pre(x)
        u = self._weighted_input(x_pre, w)
        y = activations.post_synaptic(u, cfg.rule, cfg.t_invert, dim=1)
        dw = self._correlation(x_pre, y)
        c = (y * u).sum(dim=0) if u.dim() == 2 else (y * u).sum(dim=(0, 2, 3))
        shape = (-1,) + (1,) * (w.dim() - 1)
        dw.addcmul_(c.reshape(shape), w, value=-1.0)
        if cfg.lr_schedule == "norm-adaptive":
            lr = rules.adaptive_lr(w, cfg.lr, cfg.lr_power)
        else:
            lr = torch.full((w.shape[0],), cfg.lr, dtype=w.dtype, device=w.device)
        if cfg.normalize_update:
            # max|dW| from aminmax: one fast pass (torch's inf-norm kernel is ~20x slower on CPU)
            lo, hi = torch.aminmax(dw)
            lr = lr / (torch.maximum(-lo, hi) + 1e-30)
        w.addcmul_(lr.reshape(shape), dw)
        return u

    def _correlation(self, x_pre: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """sum over samples (and positions) of y x: the Hebbian term alone."""
        raise NotImplementedError


class SoftWTALinear(SoftWTALayer):
    """u = W x (+ b); input [B, ...] is flattened to [B, in_features]."""

    def __init__(self, in_features: int, cfg: LayerConfig, generator: torch.Generator | None = None):
        super().__init__(cfg, (cfg.out_channels, in_features), in_features, generator)
        self.in_features = in_features

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)

    def _weighted_input(self, x_pre: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        u = x_pre @ w.t()
        return u if self.bias is None else u + self.bias

    def _update(self, x_pre, u, y, w) -> torch.Tensor:
        return rules.linear_update(x_pre, u, y, w)

    def _correlation(self, x_pre: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y.t() @ x_pre


class SoftWTAConv2d(SoftWTALayer):
    """Convolution with reflect padding; the soft WTA competes across channels at each position."""

    def __init__(self, in_channels: int, cfg: LayerConfig, generator: torch.Generator | None = None):
        k = cfg.kernel_size
        super().__init__(cfg, (cfg.out_channels, in_channels, k, k), in_channels * k * k, generator)
        self.in_channels = in_channels

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        p = self.cfg.padding
        return F.pad(x, (p, p, p, p), mode="reflect") if p else x

    def _weighted_input(self, x_pre: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x_pre, w, stride=self.cfg.stride)

    def _update(self, x_pre, u, y, w) -> torch.Tensor:
        return rules.conv_update(x_pre, u, y, w, self.cfg.stride)

    def _correlation(self, x_pre: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return rules.conv_correlation(x_pre, y, self.weight.shape[-2:], self.cfg.stride)
