"""The network: soft-WTA blocks followed by a linear readout, and safe checkpoint I/O.

Checkpoints hold only tensors and plain data (the resolved config as a dict) and are loaded with
`torch.load(weights_only=True)`, so opening a checkpoint can never execute code.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from . import activations
from .atomic import replace_atomically
from .config import LayerConfig, RunConfig, config_from_dict
from .errors import NeurohebbError
from .layers import SoftWTAConv2d, SoftWTALayer, SoftWTALinear
from .steps import Float32Step, PlasticityStep
from .shapes import DATASET_SHAPES, describe
from .sizes import check_fits_in_memory

CHECKPOINT_FORMAT = "neurohebb-checkpoint-v1"


class HebbBlock(nn.Module):
    """[BatchNorm (no affine)] -> plastic layer -> activation -> [pool]."""

    def __init__(self, cfg: LayerConfig, in_shape: tuple[int, int, int], generator: torch.Generator | None):
        super().__init__()
        self.cfg = cfg
        c, h, w = in_shape
        if cfg.kind == "linear":
            self.norm = nn.BatchNorm1d(c * h * w, affine=False) if cfg.batchnorm else None
            self.layer: SoftWTALayer = SoftWTALinear(c * h * w, cfg, generator)
        else:
            self.norm = nn.BatchNorm2d(c, affine=False) if cfg.batchnorm else None
            self.layer = SoftWTAConv2d(c, cfg, generator)
        if cfg.pool == "max":
            self.pool: nn.Module = nn.MaxPool2d(cfg.pool_kernel, cfg.pool_stride, cfg.pool_padding)
        elif cfg.pool == "avg":
            self.pool = nn.AvgPool2d(cfg.pool_kernel, cfg.pool_stride, cfg.pool_padding)
        else:
            self.pool = nn.Identity()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is None:
            return x
        if isinstance(self.norm, nn.BatchNorm1d):
            return self.norm(x.reshape(x.shape[0], -1))
        return self.norm(x)

    def activate(self, u: torch.Tensor, keep_layout: bool = False, inplace: bool = False) -> torch.Tensor:
        """The block's output from u; `keep_layout`: in u's memory layout (else contiguous NCHW);
        `inplace`: u is the caller's temporary, the elementwise steps may overwrite it."""
        cfg = self.cfg
        if cfg.kind == "linear":  # pooling does not apply to a flat layer
            return activations.block_activation(u, cfg.activation, cfg.activation_param, dim=1, inplace=inplace)
        if isinstance(self.pool, nn.MaxPool2d) and cfg.activation in ("triangle", "relu", "identity"):
            return self._max_pool_first(u, keep_layout, inplace)
        return self.pool(activations.block_activation(u, cfg.activation, cfg.activation_param, dim=1, inplace=inplace))

    def _max_pool_first(self, u: torch.Tensor, keep_layout: bool = False, inplace: bool = False) -> torch.Tensor:
        """Max pooling, then the activation's elementwise part: the same values, cheaper.

        relu(v) ** p (v = u - mean over channels for Triangle) never decreases with v, so the
        max of the activated window is the activation of the window's max, and the power runs on
        a quarter of the elements. CPU max pooling is ~10x faster on channels-last tensors
        (benchmarks/hebbian_kernels.py), so it pools in that layout and hands the next block a
        contiguous map, as before.
        """
        cfg = self.cfg
        if cfg.activation == "triangle":
            mean = u.mean(dim=1, keepdim=True)
            v = u.sub_(mean) if inplace else u - mean
        else:
            v = u
        if v.device.type == "cpu":
            pooled = self.pool(v.contiguous(memory_format=torch.channels_last))
            pooled = pooled if keep_layout else pooled.contiguous()
        else:
            pooled = self.pool(v)
        if cfg.activation == "identity":
            return pooled
        out = torch.relu(pooled)
        return out if cfg.activation == "relu" else activations.power_(out, cfg.activation_param)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.layer(self.normalize(x)))

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """The same block on channels-last maps, output channels-last (conv blocks on the CPU).

        Why: oneDNN convolves NHWC maps without reordering them (cifar10's 500-image feature
        batches on an AVX-512 Xeon: first block 119 -> 28 ms, second 365 -> 271 ms), and max
        pooling wants that layout anyway (`_max_pool_first`), so the 200 MB pre-pooling maps are
        never copied into it. The sums run in another order: equal to `forward` to float32
        rounding."""
        if self.cfg.kind != "conv":
            return self(x)
        layer = self.layer
        x_pre = layer.pre(self.normalize(x)).contiguous(memory_format=torch.channels_last)
        u = layer.weighted_input(x_pre, layer.weight.contiguous(memory_format=torch.channels_last))
        return self.activate(u, keep_layout=True, inplace=True)

    def learn(self, x: torch.Tensor, step: PlasticityStep, propagate: bool = True) -> torch.Tensor | None:
        """Plasticity step on this block's input; returns the block's output for the next block
        (skipped with `propagate=False`: the last block's output is not needed while learning)."""
        u = step.step(self.layer, self.normalize(x))
        return self.activate(u) if propagate else None


class HebbNetwork(nn.Module):
    """Hebbian feature blocks plus a linear readout trained with labels.

    `step` is the arithmetic every plastic layer learns with (float32 when omitted; see
    `neurohebb.steps.make_step` for a run's precision policy). It is attached to each plastic
    layer here, once: a quantised step rounds the initial weights to its format at this point.
    """

    def __init__(self, config: RunConfig, num_classes: int = 10, generator: torch.Generator | None = None,
                 step: PlasticityStep | None = None):
        super().__init__()
        self.config = config
        input_shape = DATASET_SHAPES[config.data.dataset]
        self.shapes = describe(config.layers, input_shape)
        check_fits_in_memory(config, num_classes)  # before any tensor is allocated
        self.blocks = nn.ModuleList(
            HebbBlock(cfg, shape.input_shape, generator) for cfg, shape in zip(config.layers, self.shapes)
        )
        self.feature_size = self.shapes[-1].output_size
        self.dropout = nn.Dropout(config.readout.dropout)
        self.readout = nn.Linear(self.feature_size, num_classes)
        hc = config.hebbian  # without a step: the float32 one with the run's own arithmetic choices
        self.step = step if step is not None else Float32Step(hc.correlation, hc.flush_tiny, hc.linear_kernel)
        for i, block in enumerate(self.blocks):
            if block.layer.plastic:
                self.step.attach(block.layer, i)

    def learn_block(self, index: int, x: torch.Tensor, propagate: bool = True) -> torch.Tensor | None:
        """One plasticity step of block `index` with the network's step (see `HebbBlock.learn`)."""
        return self.blocks[index].learn(x, self.step, propagate)

    @torch.no_grad()
    def features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Flattened output of the Hebbian blocks (the first `upto` of them), in eval mode; conv
        blocks on the CPU run channels-last (`HebbBlock.forward_channels_last`)."""
        was_training = self.training
        self.eval()
        try:
            for block in list(self.blocks)[:upto]:
                x = block.forward_channels_last(x) if x.device.type == "cpu" and x.dim() == 4 else block(x)
        finally:
            self.train(was_training)
        return x.reshape(x.shape[0], -1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.readout(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return self.forward(x).argmax(dim=1)
        finally:
            self.train(was_training)


def save_checkpoint(net: HebbNetwork, path: str | Path) -> None:
    """Write atomically: a crash mid-write leaves any previous checkpoint intact."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": net.config.to_dict(),
        "num_classes": net.readout.out_features,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    buffer = io.BytesIO()  # serialise in memory: torch's own file writer hides a full disk's errno
    torch.save(payload, buffer)
    replace_atomically(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> HebbNetwork:
    path = Path(path)
    if not path.is_file():
        raise NeurohebbError(f"checkpoint {path} not found; pass a run directory written by `neurohebb train`")
    payload = read_checkpoint_payload(path, map_location)
    config, num_classes, state = checkpoint_parts(path, payload)
    net = HebbNetwork(config, num_classes=num_classes)
    check_state_dict(path, net, state)
    net.load_state_dict(state)
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NeurohebbError(f"checkpoint {path}: {name} contains NaN or Inf; retrain with a lower learning rate")
    return net.to(map_location).eval()


def read_checkpoint_payload(path: Path, map_location: str | torch.device = "cpu") -> object:
    """Tensors and plain data only (see `neurohebb.safeload`)."""
    from .safeload import load_tensors_file

    return load_tensors_file(path, "retrain it with `neurohebb train`", map_location)


def checkpoint_parts(path: Path, payload: object) -> tuple[RunConfig, int, dict[str, torch.Tensor]]:
    """The config, class count and tensors of a checkpoint, each checked for its type."""
    from .errors import ConfigError

    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise NeurohebbError(f"{path} is not a {CHECKPOINT_FORMAT} file; retrain with `neurohebb train`")
    missing = [key for key in ("config", "num_classes", "state_dict") if key not in payload]
    if missing:
        raise NeurohebbError(f"checkpoint {path} has no {missing[0]!r} entry; it is damaged, retrain it")
    try:
        config = config_from_dict(payload["config"])
    except ConfigError as exc:
        raise NeurohebbError(f"checkpoint {path} holds an invalid config ({exc}); retrain it") from None
    num_classes = payload["num_classes"]
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= 1_000_000:
        raise NeurohebbError(f"checkpoint {path}: num_classes must be a positive integer, got {num_classes!r}; it is damaged, retrain it")
    from .safeload import require_tensor_dict

    state = require_tensor_dict(path, "state_dict", payload["state_dict"], "it is damaged, retrain it")
    return config, num_classes, state


def check_state_dict(path: Path, net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Name the first tensor that is missing, unexpected, or of the wrong shape."""
    expected = net.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            raise NeurohebbError(f"checkpoint {path} does not match its own config: tensor {name} is missing; retrain it")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise NeurohebbError(f"checkpoint {path} does not match its own config: tensor {name} has shape "
                                 f"{tuple(state[name].shape)}, the config gives {tuple(tensor.shape)}; retrain it")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise NeurohebbError(f"checkpoint {path} does not match its own config: unexpected tensor {extra[0]}; retrain it")
