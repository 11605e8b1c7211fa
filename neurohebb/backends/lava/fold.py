"""A multilayer SoftHebb network as a chain of ReLU stages: ``z <- relu(A z + c)``, exactly.

Why this is exact, not an approximation (for the blocks `unsupported` accepts):
- Triangle with power 1 is ``relu(u - mean_k u)`` over the K channels at each position, and the
  channel mean of a convolution is the convolution with the mean kernel: the block computes
  ``relu(conv(x; W_k - mean_j W_j))``. The centring folds into the kernels (and the bias).
- BatchNorm without affine, in eval mode, is a per-channel (per-feature) affine map; reflect
  padding commutes with it, so it folds into the next convolution's weights and a bias.
- Average pooling (zero padding counted, as torch's default) and reflect padding are fixed
  linear maps (each output a fixed combination of inputs).

The stages, for conv networks:
- the first block reads the pixels in [0, 1]: its convolution is unrolled into a sparse matrix
  with the reflect padding folded in (``block0``);
- every later conv block is two stages: a relay (``pool{i-1}``, or ``pad{i}`` without pooling),
  whose sparse matrix applies the previous block's average pooling and this block's reflect
  padding, then the convolution itself as a ``kernel`` applied without padding (``block{i}``), so
  its weights are stored once -- unrolled, the paper's mnist architecture would need 2.3e9 synapses;
- linear blocks and the readout are sparse matrices with the previous pooling folded in.
The readout is the last stage, without ReLU.

Not foldable (named by `unsupported`): max pooling, Triangle with power != 1, softmax between
blocks -- none of them is linear or a ReLU of something linear.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...description import BlockSpec, as_spec
from .mapping import unroll_conv

ACTIVATIONS = ("triangle", "relu")
MAX_SYNAPSES = 30_000_000  # folded synapses Lava's CPU simulator (and this machine's memory) can hold


@dataclass(frozen=True)
class Stage:
    """One layer of neurons: ``out = act(A z + bias)``; ``relu`` False for the readout.

    ``A`` is a sparse ``matrix`` [out, in], or for a convolution stage a ``kernel`` [K, C, kh, kw]
    applied without padding (valid correlation, ``stride``) to the input read as ``in_shape``
    (C, H, W): the relay stage before it has already padded it."""

    name: str
    matrix: "object | None"  # scipy.sparse.csr_matrix [out, in], float64; None for a convolution
    bias: np.ndarray  # [out]
    relu: bool
    out_shape: tuple[int, ...]  # (C, H, W) of the neurons, or (classes,)
    kernel: np.ndarray | None = None
    in_shape: tuple[int, int, int] | None = None
    stride: int = 1

    @property
    def kind(self) -> str:
        return "sparse" if self.kernel is None else "conv"

    @property
    def size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def inputs(self) -> int:
        return int(np.prod(self.in_shape)) if self.kernel is not None else int(self.matrix.shape[1])

    def apply(self, z: np.ndarray) -> np.ndarray:
        """``A z`` for a batch [B, in] in float64."""
        if self.kernel is None:
            return (self.matrix @ z.T).T
        return conv_apply(z, self.kernel, self.in_shape, self.stride)


def unsupported(spec) -> list[str]:
    """What keeps the network from folding into ReLU stages (empty: it folds exactly)."""
    spec = as_spec(spec)
    problems = []
    for b in spec.blocks:
        where = f"layers.{b.index}"
        if b.activation not in ACTIVATIONS:
            problems.append(f"{where}.activation = {b.activation!r}: the sigma-delta circuit deploys Triangle (power 1) "
                            "or ReLU blocks; train with --set {where}.activation=\"triangle\"".replace("{where}", where))
        elif b.activation == "triangle" and b.activation_param != 1.0:
            problems.append(f"{where}.activation_param = {b.activation_param:g}: only Triangle power 1 is relu(u - mean u), "
                            f"which folds into ReLU neurons; train with --set {where}.activation_param=1.0 (e.g. preset mnist-conv)")
        if b.pool == "max":
            problems.append(f"{where}.pool = \"max\": max pooling has no linear (synaptic) form; train with "
                            f"--set {where}.pool=\"avg\" (e.g. preset mnist-conv)")
    return problems


def pool_matrix(shape: tuple[int, int, int], kernel: int, stride: int, padding: int):
    """Average pooling (zero padding counted, like torch's AvgPool2d default) as a sparse matrix."""
    from scipy import sparse

    c, h, w = shape
    ph, pw = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    rows, cols = [], []
    for oy in range(ph):
        for ox in range(pw):
            ys = [y for y in range(oy * stride - padding, oy * stride - padding + kernel) if 0 <= y < h]
            xs = [x for x in range(ox * stride - padding, ox * stride - padding + kernel) if 0 <= x < w]
            for y in ys:
                for x in xs:
                    rows.append(oy * pw + ox)
                    cols.append(y * w + x)
    rows, cols = np.array(rows), np.array(cols)
    ch = np.arange(c)[:, None]
    r = (ch * ph * pw + rows[None]).ravel()
    q = (ch * h * w + cols[None]).ravel()
    vals = np.full(r.shape, 1.0 / (kernel * kernel))
    return sparse.csr_matrix((vals, (r, q)), shape=(c * ph * pw, c * h * w)), (c, ph, pw)


def _block_operator(block: BlockSpec):
    """The block's pre-activation as ``M x + c`` on its (unnormalised) input: `conv_form`'s
    weights and bias, a conv block's unrolled into a sparse matrix (its bias repeated per position)."""
    from scipy import sparse

    w, bias = conv_form(block)
    if block.kind != "conv":
        return sparse.csr_matrix(w), bias
    shape = block.shape
    a = unroll_conv(w, shape.input_shape, block.cfg.padding, block.cfg.stride)
    return a, np.repeat(bias, shape.conv_output_shape[1] * shape.conv_output_shape[2])


def conv_form(block: BlockSpec) -> tuple[np.ndarray, np.ndarray]:
    """A block's weights and per-channel bias with Triangle centring and BatchNorm folded in.

    Exact under reflect padding: every kernel tap reads a real (mirrored) value of each input
    channel, so the BatchNorm shift adds the same constant at every position."""
    w = np.asarray(block.weight, dtype=np.float64)
    bias = np.zeros(w.shape[0]) if block.bias is None else np.asarray(block.bias, dtype=np.float64)
    if block.activation == "triangle":
        w = w - w.mean(axis=0, keepdims=True)
        bias = bias - bias.mean()
    if block.norm is not None:
        scale, mean = block.norm.scale, block.norm.mean
        if block.kind == "conv":
            w = w * scale[None, :, None, None]
            bias = bias - (w * mean[None, :, None, None]).reshape(w.shape[0], -1).sum(axis=1)
        else:
            if block.norm.per == "channel":  # a linear block's [C, H, W] input normalised per channel
                scale, mean = (np.repeat(v, w.shape[1] // v.size) for v in (scale, mean))
            w = w * scale[None, :]
            bias = bias - w @ mean
    return w, bias


def reflect_pad_matrix(shape: tuple[int, int, int], padding: int):
    """Reflect padding as a 0/1 sparse matrix [C*(H+2p)*(W+2p), C*H*W]: each padded position
    copies the pixel it mirrors (what `torch.nn.functional.pad(mode="reflect")` does)."""
    from scipy import sparse

    c, h, w = shape
    ys = np.pad(np.arange(h), padding, mode="reflect") if padding else np.arange(h)
    xs = np.pad(np.arange(w), padding, mode="reflect") if padding else np.arange(w)
    src = (np.arange(c)[:, None, None] * h + ys[None, :, None]) * w + xs[None, None, :]
    n = src.size
    return sparse.csr_matrix((np.ones(n), (np.arange(n), src.ravel())), shape=(n, c * h * w)), (c, len(ys), len(xs))


def _conv_circuit(block: BlockSpec, first: bool) -> bool:
    """Whether a block deploys as a convolution process (its kernel stored once) rather than
    unrolled into sparse synapses: every conv block but the first, whose input is the pixels."""
    return block.kind == "conv" and not first


def folded_synapses(spec) -> list[int]:
    """Per stage, an upper bound on the synapses stored as sparse matrices (without building
    them), and 0 for a convolution stage (its kernel is stored once; see `fold`)."""
    spec = as_spec(spec)
    out, prev = [], None
    for b in spec.blocks:
        if _conv_circuit(b, prev is None):
            c, h, w = b.shape.input_shape
            p = b.cfg.padding
            taps = prev.cfg.pool_kernel ** 2 if prev.pool == "avg" else 1
            out += [c * (h + 2 * p) * (w + 2 * p) * taps, 0]
        elif prev is not None and prev.pool == "avg":
            c, h, w = prev.shape.conv_output_shape
            s, pk = prev.cfg.pool_stride, prev.cfg.pool_kernel
            k = b.cfg.kernel_size if b.kind == "conv" else None
            fan_in = c * min((k - 1) * s + pk, h) * min((k - 1) * s + pk, w) if k else c * h * w
            out.append(b.shape.neurons * fan_in)
        else:
            out.append(b.shape.neurons * b.shape.fan_in)
        prev = b
    last = spec.blocks[-1]
    out.append(spec.readout.num_classes * (int(np.prod(last.shape.conv_output_shape)) if last.pool == "avg"
                                           else spec.readout.features))
    return out


def fold(spec) -> list[Stage]:
    """The network as ReLU stages (see the module docstring); raises on what does not fold."""
    from scipy import sparse

    from .mapping import UnsupportedNetwork

    spec = as_spec(spec)
    problems = unsupported(spec)
    if problems:
        raise UnsupportedNetwork(problems[0])
    total = sum(folded_synapses(spec))
    if total > MAX_SYNAPSES:
        raise UnsupportedNetwork(f"the folded network would have about {total:,} sparse synapses (more than "
                                 f"{MAX_SYNAPSES:,}); Lava's CPU simulator cannot hold it -- deploy a smaller network "
                                 "such as mnist-conv")
    stages: list[Stage] = []
    pool = None  # the previous block's pooling, to fold into this stage
    prev = None
    for block in spec.blocks:
        out_shape = tuple(block.shape.conv_output_shape)
        if _conv_circuit(block, prev is None):
            # a relay layer: the previous block's pooling (or nothing) and this block's reflect padding
            pooled = tuple(block.shape.input_shape)
            pad, padded = reflect_pad_matrix(pooled, block.cfg.padding)
            relay = (pad @ pool).tocsr() if pool is not None else pad
            name = f"pool{prev.index}" if pool is not None else f"pad{block.index}"
            stages.append(Stage(name, relay, np.zeros(relay.shape[0]), True, padded))
            kernel, bias = conv_form(block)
            positions = out_shape[1] * out_shape[2]
            stages.append(Stage(f"block{block.index}", None, np.repeat(bias, positions), True, out_shape,
                                kernel=kernel, in_shape=padded, stride=int(block.cfg.stride)))
        else:
            a, c = _block_operator(block)
            if pool is not None:
                a = (a @ pool).tocsr()
            stages.append(Stage(f"block{block.index}", a, c, True, out_shape))
        pool = None
        if block.pool == "avg":
            pool, _ = pool_matrix(out_shape, block.cfg.pool_kernel, block.cfg.pool_stride, block.cfg.pool_padding)
        prev = block
    r = sparse.csr_matrix(spec.readout.weight)
    if pool is not None:
        r = (r @ pool).tocsr()
    bias = np.zeros(r.shape[0]) if spec.readout.bias is None else spec.readout.bias
    stages.append(Stage("readout", r, np.asarray(bias, dtype=np.float64), False, (r.shape[0],)))
    for s in stages:
        if s.matrix is not None:
            s.matrix.eliminate_zeros()
    return stages


def conv_apply(z: np.ndarray, kernel: np.ndarray, in_shape: tuple[int, int, int], stride: int = 1) -> np.ndarray:
    """A valid (unpadded) correlation of flat inputs [B, C*H*W] with ``kernel`` [K, C, kh, kw],
    in float64: exact for integer operands while every sum stays below 2**53."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float64)).reshape(len(z), *in_shape)
    k = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float64))
    with torch.no_grad():
        out = torch.nn.functional.conv2d(x, k, stride=stride)
    return out.reshape(len(z), -1).numpy()


def forward(stages: list[Stage], images: np.ndarray) -> list[np.ndarray]:
    """Float64 outputs of every stage for uint8 images (the last one: the logits)."""
    z = np.asarray(images).reshape(len(images), -1).astype(np.float64) / 255.0
    outs = []
    for s in stages:
        z = s.apply(z) + s.bias
        if s.relu:
            z = np.maximum(z, 0.0)
        outs.append(z)
    return outs
