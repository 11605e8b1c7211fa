"""Plastic soft-WTA layers: the geometry of a plastic layer and the weights it holds.

Why weights are buffers, not Parameters: nothing here is trained by backpropagation; the update
is local and computed explicitly. How a layer *learns* is not written here: the arithmetic of a
step (float32, a chip's number formats, a chip's learning engine) is a `PlasticityStep`
(`neurohebb.steps`) that the network hands each layer. A layer only says what its weights see
(`pre`), what they compute (`weighted_input`) and how the Hebbian term sums (`correlation`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import rules
from .config import LayerConfig


class SoftWTALayer(nn.Module):
    """Shared machinery of the linear and convolutional soft-WTA layers."""

    #: dimensions of u summed over by the rule's decay term (batch, and positions for conv)
    sample_dims: tuple[int, ...] = (0,)

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

    @property
    def is_conv(self) -> bool:
        return False

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        """What the weights see: the flattened input (linear) or the reflect-padded map (conv)."""
        raise NotImplementedError

    def weighted_input(self, x_pre: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """u = W x_pre (+ bias) with weights `w` (an engine may pass its own exact copy)."""
        raise NotImplementedError

    def correlation(self, x_pre: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """sum over samples (and positions) of y x: the Hebbian term alone, shaped like W
        (written into `out`, a contiguous W-shaped buffer, when given: no allocation per step)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation u (the neurons' input current)."""
        return self.weighted_input(self.pre(x), self.weight)


class SoftWTALinear(SoftWTALayer):
    """u = W x (+ b); input [B, ...] is flattened to [B, in_features]."""

    def __init__(self, in_features: int, cfg: LayerConfig, generator: torch.Generator | None = None):
        super().__init__(cfg, (cfg.out_channels, in_features), in_features, generator)
        self.in_features = in_features

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)

    def weighted_input(self, x_pre: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        u = x_pre @ w.t()
        return u if self.bias is None else u + self.bias.to(u.dtype)

    def correlation(self, x_pre: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        return y.t() @ x_pre if out is None else torch.mm(y.t(), x_pre, out=out)


class SoftWTAConv2d(SoftWTALayer):
    """Convolution with reflect padding; the soft WTA competes across channels at each position."""

    sample_dims = (0, 2, 3)

    def __init__(self, in_channels: int, cfg: LayerConfig, generator: torch.Generator | None = None):
        k = cfg.kernel_size
        super().__init__(cfg, (cfg.out_channels, in_channels, k, k), in_channels * k * k, generator)
        self.in_channels = in_channels

    @property
    def is_conv(self) -> bool:
        return True

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        p = self.cfg.padding
        return F.pad(x, (p, p, p, p), mode="reflect") if p else x

    def weighted_input(self, x_pre: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x_pre, w, stride=self.cfg.stride)

    def correlation(self, x_pre: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        return rules.conv_correlation(x_pre, y, tuple(self.weight.shape[-2:]), self.cfg.stride, out=out)
