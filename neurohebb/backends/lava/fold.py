"""A multilayer SoftHebb network as a chain of ReLU stages: ``z <- relu(M z + c)``, exactly.

Why this is exact, not an approximation (for the blocks `unsupported` accepts):
- Triangle with power 1 is ``relu(u - mean_k u)`` over the K channels at each position, and the
  channel mean of a convolution is the convolution with the mean kernel: the block computes
  ``relu(conv(x; W_k - mean_j W_j))``. The centring folds into the kernels (and the bias).
- BatchNorm without affine, in eval mode, is a per-channel (per-feature) affine map; reflect
  padding commutes with it, so it folds into the next convolution's columns and a bias.
- Average pooling (zero padding counted, as torch's default) is a fixed linear map; it folds
  into the next stage's matrix (or the readout's).
The readout is the last stage, without ReLU. Stage l reads the *unpooled* ReLU outputs of block
l-1; stage 0 reads the pixels in [0, 1].

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
    """One layer of neurons: ``out = act(matrix @ z + bias)``; ``relu`` False for the readout."""

    name: str
    matrix: "object"  # scipy.sparse.csr_matrix [out, in], float64
    bias: np.ndarray  # [out]
    relu: bool
    out_shape: tuple[int, ...]  # (C, H, W) of the neurons, or (classes,)

    @property
    def size(self) -> int:
        return int(self.matrix.shape[0])


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
    """The block's pre-activation as ``M x + c`` on its (unnormalised) input, centred for Triangle."""
    from scipy import sparse

    w = block.weight
    centre = block.activation == "triangle"
    if centre:
        w = w - w.mean(axis=0, keepdims=True)
    bias = np.zeros(w.shape[0]) if block.bias is None else np.asarray(block.bias, dtype=np.float64)
    if centre:
        bias = bias - bias.mean()
    shape = block.shape
    if block.kind == "conv":
        a = unroll_conv(w, shape.input_shape, block.cfg.padding, block.cfg.stride)
        positions = shape.conv_output_shape[1] * shape.conv_output_shape[2]
        bias = np.repeat(bias, positions)
    else:
        a = sparse.csr_matrix(w)
    c = np.zeros(a.shape[0])
    if block.norm is not None:
        ch, h, wd = shape.input_shape
        scale, mean = block.norm.scale, block.norm.mean
        if block.norm.per == "channel":
            scale, mean = np.repeat(scale, h * wd), np.repeat(mean, h * wd)
        a = (a @ sparse.diags(scale)).tocsr()
        c = -(a @ mean)
    return a, c + bias


def folded_synapses(spec) -> list[int]:
    """Upper bound on each stage's synapses once pooling is folded in (without building them):
    a conv neuron after a pooled block reads every pre-pool pixel its kernel's pooled taps cover."""
    spec = as_spec(spec)
    out, prev = [], None
    for b in spec.blocks:
        c, h, w = b.shape.input_shape
        k = b.cfg.kernel_size if b.kind == "conv" else None
        if prev is not None and prev.pool == "avg":
            c, h, w = prev.shape.conv_output_shape
            s, pk = prev.cfg.pool_stride, prev.cfg.pool_kernel
            span = (k - 1) * s + pk if k else None
            fan_in = c * min(span, h) * min(span, w) if k else c * h * w
        else:
            fan_in = b.shape.fan_in
        out.append(b.shape.neurons * fan_in)
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
        raise UnsupportedNetwork(f"the folded network would have about {total:,} synapses (more than {MAX_SYNAPSES:,}); "
                                 "Lava's CPU simulator cannot hold it -- deploy a smaller network such as mnist-conv")
    stages: list[Stage] = []
    pool = None  # the previous block's pooling, to fold into this stage
    for block in spec.blocks:
        a, c = _block_operator(block)
        if pool is not None:
            a = (a @ pool).tocsr()
        out_shape = tuple(block.shape.conv_output_shape)
        stages.append(Stage(f"block{block.index}", a, c, True, out_shape))
        pool = None
        if block.pool == "avg":
            pool, _ = pool_matrix(out_shape, block.cfg.pool_kernel, block.cfg.pool_stride, block.cfg.pool_padding)
    r = sparse.csr_matrix(spec.readout.weight)
    if pool is not None:
        r = (r @ pool).tocsr()
    bias = np.zeros(r.shape[0]) if spec.readout.bias is None else spec.readout.bias
    stages.append(Stage("readout", r, np.asarray(bias, dtype=np.float64), False, (r.shape[0],)))
    for s in stages:
        s.matrix.eliminate_zeros()
    return stages


def forward(stages: list[Stage], images: np.ndarray) -> list[np.ndarray]:
    """Float64 outputs of every stage for uint8 images (the last one: the logits)."""
    z = np.asarray(images).reshape(len(images), -1).astype(np.float64) / 255.0
    outs = []
    for s in stages:
        z = (s.matrix @ z.T).T + s.bias
        if s.relu:
            z = np.maximum(z, 0.0)
        outs.append(z)
    return outs
