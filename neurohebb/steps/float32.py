"""The float32 SoftHebb step: the arithmetic of every float run, written once.

Why fused: dW = H - c W (H = sum y x, c_k = sum y_k u_k) is formed in place in the correlation's
buffer, its max comes from one min/max pass without a temporary, and the weight step is one
in-place multiply-add: the fewest passes over the weight tensor the rule allows. `tests/test_rules`
holds it to the rule written out term by term (`rules.linear_update` / `rules.conv_update`).
On the CPU, linear SoftHebb layers take the same rule as one compiled call instead
(`linear_kernels`, `hebbian.linear_kernel`): torch's operators make six passes over W, which cost
mnist-mlp's epoch ~2.4x the compiled step's time.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .. import activations, rules
from ..config import LINEAR_KERNELS  # the choices are defined once, with the config field
from ..errors import ConfigError


class Float32Step:
    """`PlasticityStep` in the layer's own dtype (float32); keeps only per-layer buffers."""

    mode = "float32"

    def __init__(self, correlation: str = "auto", flush_tiny: bool = True, linear_kernel: str = "auto") -> None:
        """`correlation`: the kernel conv layers sum their Hebbian term with ("conv", "wgrad",
        "gemm" or "auto", the default: `rules.correlation_kernel`). "conv" with
        `flush_tiny=False` is bit-identical to earlier releases; the other kernels compute the
        same sum in another order (equal to float32 rounding) and are faster on some shapes.
        `flush_tiny`: post-synaptic values below 2^-100 count as zero (`rules.flush_tiny_`).
        `linear_kernel`: how linear SoftHebb layers on the CPU step: "compiled" (one numba call,
        `linear_kernels`; an error where it cannot run), "torch", or "auto" (compiled where it runs)."""
        if correlation not in rules.CORRELATIONS:
            raise ConfigError(f"hebbian.correlation must be one of {', '.join(rules.CORRELATIONS)}, got {correlation!r}")
        if linear_kernel not in LINEAR_KERNELS:
            raise ConfigError(f"hebbian.linear_kernel must be one of {', '.join(LINEAR_KERNELS)}, got {linear_kernel!r}")
        if linear_kernel == "compiled":
            from . import linear_kernels

            reason = linear_kernels.unavailable_reason()
            if reason is not None:
                raise ConfigError(f"hebbian.linear_kernel=compiled cannot run here: {reason}; "
                                  "use hebbian.linear_kernel=torch")
        self.linear_kernel = linear_kernel
        self._compiled: dict[int, object] = {}  # per linear layer: its CompiledLinearStep
        self._layers: dict[int, tuple[int, nn.Module]] = {}
        self._hebb: dict[int, torch.Tensor] = {}  # per layer: the W-shaped buffer dW is formed in
        self.correlation = correlation
        self.flush_tiny = bool(flush_tiny)

    def attach(self, layer: nn.Module, index: int) -> None:
        self._layers.setdefault(id(layer), (index, layer))

    @torch.no_grad()
    def step(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        cfg = layer.cfg
        w = layer.weight
        x_pre = layer.pre(x)
        kernel = self._kernel(layer) if layer.plastic else None
        if kernel == "compiled":
            compiled = self._compiled.get(id(layer))
            if compiled is None:
                from .linear_kernels import CompiledLinearStep

                compiled = self._compiled[id(layer)] = CompiledLinearStep()
            return compiled(x_pre, w, cfg, self.flush_tiny)
        u = layer.weighted_input(x_pre, w)
        if not layer.plastic:
            return u
        y = activations.post_synaptic(u, cfg.rule, cfg.t_invert, dim=1)
        if self.flush_tiny and cfg.rule != "hard-wta":  # a one-hot y has no tiny values
            rules.flush_tiny_(y)
        if kernel == "wgrad":
            dw = rules.conv_correlation_wgrad(x_pre, y, tuple(w.shape[-2:]), cfg.stride)
        elif kernel == "gemm":
            dw = rules.conv_correlation_gemm(x_pre, y, tuple(w.shape[-2:]), cfg.stride, out=self._buffer(layer, w))
        else:
            # into the layer's own buffer: a fresh W-sized tensor every step cost mnist-mlp's epoch
            # ~30 % in page faults and allocator time (the product itself is the same kernel)
            dw = layer.correlation(x_pre, y, out=self._buffer(layer, w))
        c = (y * u).sum(dim=layer.sample_dims)
        shape = (-1,) + (1,) * (w.dim() - 1)
        dw.addcmul_(c.reshape(shape), w, value=-1.0)
        lr = rules.layer_learning_rate(w, cfg)
        if cfg.normalize_update:
            # max|dW| from aminmax: one fast pass (torch's inf-norm kernel is ~20x slower on CPU)
            lo, hi = torch.aminmax(dw)
            lr = lr / (torch.maximum(-lo, hi) + 1e-30)
        w.addcmul_(lr.reshape(shape), dw)
        if layer.bias is not None:
            y_flat = y.transpose(0, 1).reshape(y.shape[1], -1).t()
            db = rules.bias_update(y_flat, layer.bias, cfg.t_invert)
            layer.bias.add_((cfg.lr / cfg.t_invert) * rules.normalize_update(db))
        return u

    def _kernel(self, layer: nn.Module) -> str:
        """The correlation kernel of a conv layer (a fixed rule on its shape: cheap to ask per
        step); for a linear layer "compiled" (the whole step in `linear_kernels`) or "linear"."""
        if not layer.is_conv:
            return "compiled" if self._linear_compiled(layer) else "linear"
        w = layer.weight
        return rules.correlation_kernel(self.correlation, w.shape[1], tuple(w.shape[-2:]), w.device.type)

    def _linear_compiled(self, layer: nn.Module) -> bool:
        if self.linear_kernel == "torch":
            return False
        from . import linear_kernels

        if not linear_kernels.supports(layer):
            return False
        return self.linear_kernel == "compiled" or linear_kernels.available()

    @property
    def kernels(self) -> dict[int, str]:
        """Layer index -> the correlation kernel each attached conv layer uses (for metrics.json)."""
        return {index: self._kernel(layer) for index, layer in sorted(self._layers.values(), key=lambda e: e[0])
                if layer.is_conv}

    @property
    def linear_kernels(self) -> dict[int, str]:
        """Layer index -> how each attached plastic linear layer steps: "compiled" or "torch"."""
        return {index: "compiled" if self._kernel(layer) == "compiled" else "torch"
                for index, layer in sorted(self._layers.values(), key=lambda e: e[0])
                if not layer.is_conv and layer.plastic}

    def _buffer(self, layer: nn.Module, w: torch.Tensor) -> torch.Tensor:
        buf = self._hebb.get(id(layer))
        if buf is None or buf.shape != w.shape or buf.dtype != w.dtype or buf.device != w.device:
            buf = self._hebb[id(layer)] = torch.empty_like(w, memory_format=torch.contiguous_format)
        return buf

    def diagnostics(self) -> list[dict[str, Any]]:
        """Weight histograms and norm gaps: the reference quantised runs are read against."""
        from ..precision.diagnostics import weight_histogram

        out = []
        for index, layer in sorted(self._layers.values(), key=lambda item: item[0]):
            if not layer.plastic:
                continue
            w = layer.weight
            out.append({"layer": index, "weight_histogram": weight_histogram(w),
                        "weight_norm_gap": float((rules.neuron_norms(w.double()) - 1).abs().mean())})
        return out
