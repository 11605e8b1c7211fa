"""Backend-neutral description of a network's geometry: what each block sees and produces.

Why separate from the torch layers: the feasibility report, the Lava and Brian2 mappings and the
engine all need the same numbers (fan-in, neurons, synapses, output sizes) without building or
running a model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import LayerConfig, RunConfig
from .errors import ConfigError

from .data.registry import SHAPES as DATASET_SHAPES  # (C, H, W) by dataset name, from the one registry


@dataclass(frozen=True)
class BlockShape:
    """Geometry of one plastic block. Shapes are (channels, height, width); linear blocks use
    (features, 1, 1) for their output and flatten their input."""

    index: int
    kind: str  # "conv" | "linear"
    input_shape: tuple[int, int, int]
    conv_output_shape: tuple[int, int, int]  # neurons of the plastic layer (before pooling)
    output_shape: tuple[int, int, int]  # after activation and pooling
    fan_in: int  # synapses per neuron (in_channels * k * k, or flattened inputs)
    weight_count: int  # distinct plastic weights (shared across positions for conv)

    @property
    def neurons(self) -> int:
        c, h, w = self.conv_output_shape
        return c * h * w

    @property
    def synapses(self) -> int:
        """Synapses if every neuron had its own copy of its weights (unrolled convolution)."""
        return self.neurons * self.fan_in

    @property
    def output_size(self) -> int:
        c, h, w = self.output_shape
        return c * h * w

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(neurons=self.neurons, synapses=self.synapses, output_size=self.output_size)
        return out


def conv_output_size(height: int, width: int, kernel: int | tuple[int, int], padding: int, stride: int,
                     where: str) -> tuple[int, int]:
    """Output (height, width) of a reflect-padded convolution (`kernel`: size or (kh, kw)).

    Why a check here: torch's reflect padding fails deep inside a run (or a backend's unrolling
    silently mirrors the wrong pixel) when padding >= size; `where` names the layer for the error.
    """
    if padding >= height or padding >= width:
        raise ConfigError(f"{where}: reflect padding {padding} is too large for a {height}x{width} input (it needs padding < size)")
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    out_h = (height + 2 * padding - kh) // stride + 1
    out_w = (width + 2 * padding - kw) // stride + 1
    if out_h < 1 or out_w < 1:
        raise ConfigError(f"{where}: a {kh}x{kw} kernel does not fit a {height}x{width} input with padding {padding}")
    return out_h, out_w


def _pool_size(size: int, layer: LayerConfig) -> int:
    if layer.pool == "none":
        return size
    return (size + 2 * layer.pool_padding - layer.pool_kernel) // layer.pool_stride + 1


def describe(layers: list[LayerConfig], input_shape: tuple[int, int, int]) -> list[BlockShape]:
    """Shapes of every block for an input of `input_shape` (C, H, W)."""
    blocks: list[BlockShape] = []
    shape = tuple(input_shape)
    for i, layer in enumerate(layers):
        c, h, w = shape
        if layer.kind == "linear":
            fan_in = c * h * w
            conv_out = (layer.out_channels, 1, 1)
            out = conv_out
        else:
            k = layer.kernel_size
            oh, ow = conv_output_size(h, w, k, layer.padding, layer.stride, where=f"layers.{i}")
            fan_in = c * k * k
            conv_out = (layer.out_channels, oh, ow)
            ph, pw = _pool_size(oh, layer), _pool_size(ow, layer)
            if ph < 1 or pw < 1:
                raise ConfigError(f"layers.{i}: pooling leaves no output for a {oh}x{ow} map")
            out = (layer.out_channels, ph, pw)
        blocks.append(BlockShape(i, layer.kind, tuple(shape), conv_out, out, fan_in, layer.out_channels * fan_in))
        shape = out
    return blocks


def describe_config(config: RunConfig) -> list[BlockShape]:
    return describe(config.layers, DATASET_SHAPES[config.data.dataset])
