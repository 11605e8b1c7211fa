"""One backend-neutral description of a network: geometry, rule, activation, weights, readout.

Why: the Lava mapping, the Brian2 circuit, the NIR export and the feasibility report all need the
same facts about a trained network, and each used to dig them out of the torch modules in its own
way. `describe(net)` is the one place a network's tensors become NumPy (float64), so no backend
touches a torch module; `describe_config(config)` gives the same description without weights
(geometry and settings only), which is all the feasibility report needs before training.
Each backend checks the description with its own `unsupported(spec) -> list[str]`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import LayerConfig, RunConfig
from .shapes import DATASET_SHAPES, BlockShape, describe as describe_shapes


@dataclass(frozen=True)
class NormSpec:
    """BatchNorm without affine on a block's input, in eval mode: (x - mean) / sqrt(var + eps).

    ``per`` says what the statistics index: "channel" (conv input [C]) or "feature" (a linear
    block's flattened input [C*H*W])."""

    mean: np.ndarray
    var: np.ndarray
    eps: float
    per: str  # "channel" | "feature"

    @property
    def scale(self) -> np.ndarray:
        return 1.0 / np.sqrt(self.var + self.eps)


@dataclass(frozen=True)
class BlockSpec:
    """One Hebbian block: [norm] -> conv/linear (weight, bias) -> activation -> [pool]."""

    shape: BlockShape
    cfg: LayerConfig
    weight: np.ndarray | None  # [K, I] (linear) or [K, C, k, k] (conv); None when described from a config
    bias: np.ndarray | None  # [K] learned prior, or None
    norm: NormSpec | None  # None without batchnorm (or, from a config, the flag alone is in cfg)

    @property
    def index(self) -> int:
        return self.shape.index

    @property
    def kind(self) -> str:
        return self.cfg.kind

    @property
    def rule(self) -> str:
        return self.cfg.rule

    @property
    def activation(self) -> str:
        return self.cfg.activation

    @property
    def activation_param(self) -> float:
        return float(self.cfg.activation_param)

    @property
    def pool(self) -> str:
        """"none" for linear blocks (pooling does not apply to a flat layer)."""
        return "none" if self.cfg.kind == "linear" else self.cfg.pool

    @property
    def batchnorm(self) -> bool:
        return bool(self.cfg.batchnorm)

    @property
    def has_weights(self) -> bool:
        return self.weight is not None


@dataclass(frozen=True)
class ReadoutSpec:
    weight: np.ndarray | None  # [C, F]
    bias: np.ndarray | None  # [C]
    num_classes: int
    features: int


@dataclass(frozen=True)
class NetworkSpec:
    """The whole network as every backend reads it."""

    dataset: str
    input_shape: tuple[int, int, int]
    blocks: tuple[BlockSpec, ...]
    readout: ReadoutSpec
    precision: str  # the run's precision policy string ("float32" for a float-trained run)
    preset: str = "custom"

    @property
    def has_weights(self) -> bool:
        return all(b.has_weights for b in self.blocks) and self.readout.weight is not None

    def summary(self) -> list[dict]:
        """Geometry and settings of each block (JSON-ready)."""
        return [{**b.shape.to_dict(), "rule": b.rule, "activation": b.activation,
                 "activation_param": b.activation_param, "pool": b.pool, "batchnorm": b.batchnorm,
                 "bias": b.cfg.bias} for b in self.blocks]


def to_numpy(t) -> np.ndarray:
    """A tensor (or array) as a float64 NumPy array: the one conversion of the code base."""
    if hasattr(t, "detach"):
        return t.detach().cpu().double().numpy()
    return np.asarray(t, dtype=np.float64)


def _norm_spec(module) -> NormSpec | None:
    if module is None:
        return None
    per = "feature" if type(module).__name__ == "BatchNorm1d" else "channel"
    return NormSpec(to_numpy(module.running_mean), to_numpy(module.running_var), float(module.eps), per)


def describe(net) -> NetworkSpec:
    """The description of a `HebbNetwork` (eval-mode semantics: BatchNorm running statistics)."""
    config: RunConfig = net.config
    blocks = []
    for block, shape in zip(net.blocks, net.shapes):
        bias = getattr(block.layer, "bias", None)
        blocks.append(BlockSpec(shape, block.cfg, to_numpy(block.layer.weight), None if bias is None else to_numpy(bias),
                                _norm_spec(block.norm)))
    ro = net.readout
    readout = ReadoutSpec(to_numpy(ro.weight), None if ro.bias is None else to_numpy(ro.bias), int(ro.out_features),
                          int(ro.in_features))
    return NetworkSpec(config.data.dataset, tuple(DATASET_SHAPES[config.data.dataset]), tuple(blocks), readout,
                       str(config.precision.policy), config.preset)


def describe_config(config: RunConfig, num_classes: int = 10) -> NetworkSpec:
    """The description of a configuration, without weights (geometry and settings only)."""
    input_shape = tuple(DATASET_SHAPES[config.data.dataset])
    shapes = describe_shapes(config.layers, input_shape)
    blocks = tuple(BlockSpec(s, cfg, None, None, None) for s, cfg in zip(shapes, config.layers))
    readout = ReadoutSpec(None, None, num_classes, shapes[-1].output_size)
    return NetworkSpec(config.data.dataset, input_shape, blocks, readout, str(config.precision.policy), config.preset)


def as_spec(net_or_spec) -> NetworkSpec:
    """Backends accept a `NetworkSpec` or a network (described here, so they never read its modules)."""
    return net_or_spec if isinstance(net_or_spec, NetworkSpec) else describe(net_or_spec)


def linear_block_features(block: BlockSpec, x: np.ndarray) -> np.ndarray:
    """A linear block's activation for flattened inputs x [N, I] in float64 (norm included)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if block.norm is not None:
        x = (x - block.norm.mean) * block.norm.scale
    u = x @ block.weight.T
    if block.bias is not None:
        u = u + block.bias
    from .npmath import block_activation

    return block_activation(u, block.activation, block.activation_param, axis=1)


def readout_logits(spec: NetworkSpec, features: np.ndarray) -> np.ndarray:
    """The trained readout on features [N, F] (dropout is the identity at inference)."""
    ro = spec.readout
    logits = np.asarray(features, dtype=np.float64) @ ro.weight.T
    return logits if ro.bias is None else logits + ro.bias
