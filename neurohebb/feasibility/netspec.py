"""The network as the feasibility report sees it: one entry per layer that needs neurons on chip.

Why a separate, torch-free description: mapping, rule analysis and cost arithmetic are pure
functions of geometry and a few rule settings, so they can be tested on hand-built networks, and
they read the same numbers as every other backend through ``neurohebb.shapes``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import LayerConfig, RunConfig
from ..errors import ConfigError
from ..description import NetworkSpec, describe_config
from ..shapes import conv_output_size

# Rules whose post-synaptic activity comes from a competition across the layer's channels.
COMPETITIVE_RULES = ("softhebb", "softhebb-anti", "hard-wta")
# Forward activations that need a channel-wise normalisation (mean or sum over channels).
COMPETITIVE_ACTIVATIONS = ("triangle", "softmax")


@dataclass(frozen=True)
class LayerSpec:
    """Geometry and learning settings of one layer placed on chip.

    A convolution has ``positions`` output positions with ``channels`` neurons each; a linear layer
    is one position. ``rule`` is a ``LayerConfig.rule`` for Hebbian blocks and ``"supervised"``
    for the readout (trained off chip with labels).
    """

    name: str
    kind: str  # "conv" | "linear"
    input_shape: tuple[int, int, int]
    channels: int
    out_height: int
    out_width: int
    fan_in: int
    rule: str
    kernel_size: int = 1
    stride: int = 1
    padding: int = 0
    cfg: LayerConfig | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "linear"):
            raise ConfigError(f"layer {self.name}: kind must be conv or linear, got {self.kind!r}")
        for field_name in ("channels", "out_height", "out_width", "fan_in", "kernel_size", "stride"):
            if getattr(self, field_name) < 1:
                raise ConfigError(f"layer {self.name}: {field_name} must be >= 1")

    @property
    def positions(self) -> int:
        return self.out_height * self.out_width

    @property
    def neurons(self) -> int:
        return self.channels * self.positions

    @property
    def synapses(self) -> int:
        """Feed-forward synapses with every position's weights stored separately."""
        return self.neurons * self.fan_in

    @property
    def weight_count(self) -> int:
        """Distinct weights (shared across positions for a convolution)."""
        return self.channels * self.fan_in

    @property
    def plastic(self) -> bool:
        return self.rule in COMPETITIVE_RULES

    @property
    def competitive(self) -> bool:
        """Whether the layer's neurons compete across channels (needs a soft-WTA circuit)."""
        if self.plastic:
            return True
        return self.cfg is not None and self.cfg.activation in COMPETITIVE_ACTIVATIONS


def conv_windows(layer: LayerSpec) -> list[np.ndarray]:
    """For each output position (row-major), the flat indices (row * W + col) of the input pixels its
    kernel taps read, one per tap: reflect padding maps padded taps back onto real pixels, so a
    pixel can appear twice in one window."""
    _, h, w = layer.input_shape
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    rows = np.pad(np.arange(h), p, mode="reflect") if p else np.arange(h)
    cols = np.pad(np.arange(w), p, mode="reflect") if p else np.arange(w)
    windows = []
    for oy in range(layer.out_height):
        r = rows[oy * s : oy * s + k]
        for ox in range(layer.out_width):
            c = cols[ox * s : ox * s + k]
            windows.append((r[:, None] * w + c[None, :]).ravel())
    return windows


def linear_layer(name: str, in_features: int, out_features: int, rule: str = "softhebb", cfg: LayerConfig | None = None) -> LayerSpec:
    """A fully connected layer (handy for hand-built test networks)."""
    return LayerSpec(name, "linear", (in_features, 1, 1), out_features, 1, 1, in_features, rule, cfg=cfg)


def conv_layer(
    name: str,
    input_shape: tuple[int, int, int],
    channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    rule: str = "softhebb",
    cfg: LayerConfig | None = None,
) -> LayerSpec:
    c, h, w = input_shape
    oh, ow = conv_output_size(h, w, kernel_size, padding, stride, where=f"layer {name}")
    return LayerSpec(name, "conv", tuple(input_shape), channels, oh, ow, c * kernel_size * kernel_size, rule,
                     kernel_size, stride, padding, cfg)


def network_layers(config: RunConfig, num_classes: int = 10, include_readout: bool = True) -> list[LayerSpec]:
    """The Hebbian blocks of `config` (and its linear readout) as LayerSpecs."""
    return spec_layers(describe_config(config, num_classes), include_readout)


def spec_layers(spec: NetworkSpec, include_readout: bool = True) -> list[LayerSpec]:
    """The LayerSpecs of a network description (`neurohebb.description`), trained or not: the
    report reads the same description the backends deploy."""
    layers: list[LayerSpec] = []
    for block in spec.blocks:
        shape, cfg = block.shape, block.cfg
        k, oh, ow = shape.conv_output_shape
        layers.append(
            LayerSpec(
                name=f"block{shape.index}",
                kind=shape.kind,
                input_shape=tuple(shape.input_shape),
                channels=k,
                out_height=oh,
                out_width=ow,
                fan_in=shape.fan_in,
                rule=cfg.rule,
                kernel_size=cfg.kernel_size if cfg.kind == "conv" else 1,
                stride=cfg.stride if cfg.kind == "conv" else 1,
                padding=cfg.padding if cfg.kind == "conv" else 0,
                cfg=cfg,
            )
        )
    if include_readout:
        layers.append(linear_layer("readout", spec.readout.features, spec.readout.num_classes, rule="supervised"))
    return layers
