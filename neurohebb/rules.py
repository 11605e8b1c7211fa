"""Plasticity rules as pure functions: (x, u, y, w) -> dW.

All rules share the SoftHebb form dW_k = sum over samples (and positions) of y_k * (x - u_k W_k),
i.e. dW = y^T x - (sum y*u)[:, None] * W (Moraitis et al. 2022, eq. for the soft-WTA layer). What
differs between rules is y (see `activations.post_synaptic`). Sums run over the batch, as in the
authors' implementation; `normalize_update` and `adaptive_lr` are the multilayer recipe's
step-size control (Journe et al. 2023).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from . import config


def linear_update(x: torch.Tensor, u: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """dW [K, I] for a linear layer: x [B, I], u and y [B, K], w [K, I]."""
    yx = y.t() @ x
    yu = (y * u).sum(dim=0)
    return yx - yu[:, None] * w


def conv_update(
    x_padded: torch.Tensor, u: torch.Tensor, y: torch.Tensor, w: torch.Tensor, stride: int = 1
) -> torch.Tensor:
    """dW [K, C, kh, kw] for a convolution, summing y*(x_patch - u*W) over batch and positions.

    x_padded [B, C, H, W] is the input as the forward convolution saw it (after padding); u and
    y are [B, K, OH, OW]. The correlation sum_b,p y[b,k,p] * x[b,c,p+offset] is itself a
    convolution of the input with y as the kernel (batch as the channel axis), which is far
    cheaper than unfolding patches.
    """
    yx = conv_correlation(x_padded, y, w.shape[-2:], stride)
    yu = (y * u).sum(dim=(0, 2, 3))
    return yx - yu[:, None, None, None] * w


def conv_correlation(x_padded: torch.Tensor, y: torch.Tensor, kernel: tuple[int, int], stride: int = 1,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """sum over batch and positions of y[b,k,p] * patch[b,:,p] as a [K, C, kh, kw] tensor
    (copied into `out`, a contiguous buffer of that shape, when given)."""
    kh, kw = kernel
    yx = F.conv2d(x_padded.transpose(0, 1), y.transpose(0, 1), dilation=stride)  # [C, K, h', w']
    yx = yx[:, :, :kh, :kw].transpose(0, 1)
    return yx.contiguous() if out is None else out.copy_(yx)


def conv_correlation_wgrad(x_padded: torch.Tensor, y: torch.Tensor, kernel: tuple[int, int], stride: int = 1) -> torch.Tensor:
    """The same sum as :func:`conv_correlation` through the library's weight-gradient kernel
    (oneDNN's backward-weights convolution on the CPU): ~1.2-2x faster on the cifar10 blocks
    here (benchmarks/hebbian_kernels.py), but summed in another order, so equal only to float32
    rounding (~1e-6 relative), not bit for bit."""
    k, c = y.shape[1], x_padded.shape[1]
    return torch.nn.grad.conv2d_weight(x_padded, (k, c) + tuple(kernel), y, stride=stride)


def conv_correlation_gemm(x_padded: torch.Tensor, y: torch.Tensor, kernel: tuple[int, int], stride: int = 1,
                          out: torch.Tensor | None = None) -> torch.Tensor:
    """The same sum as :func:`conv_correlation` as one matrix product on unfolded patches,
    [K, B*P] x [B*P, C*kh*kw], written straight into W's layout (``out`` when given). Faster
    where C*kh*kw is large (cifar10's third block: 80 vs 100 ms here); equal to float32 rounding."""
    k, c = y.shape[1], x_padded.shape[1]
    kh, kw = kernel
    patches = F.unfold(x_padded, (kh, kw), stride=stride).transpose(1, 2).reshape(-1, c * kh * kw)
    ys = y.transpose(0, 1).reshape(k, -1)
    if out is None:
        return (ys @ patches).view(k, c, kh, kw)
    torch.mm(ys, patches, out=out.view(k, c * kh * kw))
    return out


CORRELATIONS = config.CORRELATIONS  # the choices are defined once, with the config field


def correlation_kernel(choice: str, in_channels: int, kernel: tuple[int, int], device: str = "cpu",
                       capability: str | None = None) -> str:
    """Which kernel sums a conv layer's Hebbian term: ``choice`` itself, or for "auto" the one
    that was fastest for that shape on this project's 2-core CPUs (`benchmarks/cpu_cifar10_epoch.py`
    prints all three per block). With AVX-512 (an Intel Xeon here) one GEMM won every cifar10
    block by 1.3-5x; with AVX2 (an AMD EPYC) the weight-gradient kernel won for few input
    channels, the GEMM for long patches and the convolution between. A fixed rule on the shape
    and the CPU's vector unit (``capability``: torch's, read once), not a timing, so a run on a
    machine is reproducible. Off the CPU "auto" keeps the convolution (not measured there)."""
    if choice != "auto":
        return choice
    if device != "cpu":
        return "conv"
    if (capability or cpu_capability()).startswith("AVX512"):
        return "gemm"
    patch = in_channels * kernel[0] * kernel[1]
    if in_channels <= 16:
        return "wgrad"
    return "gemm" if patch >= 3000 else "conv"


@functools.lru_cache(maxsize=1)
def cpu_capability() -> str:
    """torch's CPU vector level ("AVX512", "AVX2", "DEFAULT", ...): what its kernels dispatch on."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # older torch builds
        return "DEFAULT"


TINY_Y = 2.0 ** -100  # post-synaptic values below this count as zero in the float32 Hebbian sum


def flush_tiny_(y: torch.Tensor) -> torch.Tensor:
    """Set |y| < 2^-100 to zero, in place. Why: the softmax of a sharp WTA leaves many y in or
    near float32's subnormal range, and on Intel CPUs every subnormal operand or product costs a
    microcode assist (mnist-mlp's epoch 19.4 -> 10.9 s; cifar10's first 100 steps 28.4 -> 12.5 s
    with the conv correlation). Such a y moves no weight: its share of any sum is below half an
    ulp of the other terms, and a whole row of such terms changes W_k by ~1e-30, below half an
    ulp of any weight larger than ~1e-23.
    It can change a result only where it breaks an exact rounding tie: on mnist-mlp's full epoch
    142 of 1.57 M weights ended 1 ulp apart; on cifar10 none of 100 steps' weights differed."""
    return y.masked_fill_(y.abs() < TINY_Y, 0.0)


def conv_update_per_patch(
    x_padded: torch.Tensor, u: torch.Tensor, y: torch.Tensor, w: torch.Tensor, stride: int = 1
) -> torch.Tensor:
    """The same update computed explicitly patch by patch (slow; the reference for tests)."""
    kh, kw = w.shape[-2:]
    patches = F.unfold(x_padded, (kh, kw), stride=stride)  # [B, C*kh*kw, P]
    yf = y.flatten(2)  # [B, K, P]
    uf = u.flatten(2)
    dw = torch.zeros(w.shape[0], patches.shape[1], dtype=w.dtype)
    wf = w.reshape(w.shape[0], -1)
    for b in range(patches.shape[0]):
        for p in range(patches.shape[2]):
            for k in range(w.shape[0]):
                dw[k] += yf[b, k, p] * (patches[b, :, p] - uf[b, k, p] * wf[k])
    return dw.reshape(w.shape)


def normalize_update(dw: torch.Tensor) -> torch.Tensor:
    """Scale the layer's update so its largest entry is 1 (multilayer SoftHebb)."""
    return dw / (dw.abs().amax() + 1e-30)


def neuron_norms(w: torch.Tensor) -> torch.Tensor:
    """L2 norm of each neuron's weight vector (its "radius")."""
    return torch.linalg.vector_norm(w.reshape(w.shape[0], -1), dim=1)


def adaptive_lr(w: torch.Tensor, eta: float, power: float = 0.5) -> torch.Tensor:
    """Per-neuron rate eta * (| ||W_k|| - 1 | + 1e-10) ** power: large while a neuron's norm is
    far from its fixed point 1, vanishing as it converges (Journe et al. 2023)."""
    return eta * ((neuron_norms(w) - 1.0).abs() + 1e-10) ** power


def layer_learning_rate(w: torch.Tensor, cfg) -> torch.Tensor:
    """Per-neuron rate [K] of a layer under its configured schedule (`cfg`: a `LayerConfig`),
    in the dtype and on the device of `w`: the one place the schedule is written."""
    if cfg.lr_schedule == "norm-adaptive":
        return adaptive_lr(w, cfg.lr, cfg.lr_power)
    return torch.full((w.shape[0],), float(cfg.lr), dtype=w.dtype, device=w.device)


def bias_update(y: torch.Tensor, bias: torch.Tensor, t_invert: float) -> torch.Tensor:
    """Update of the learned log-prior b_k of a soft-WTA linear layer.

    With b_k = log(prior_k) / t_invert entering the softmax, moving exp(t_invert*b_k) towards the
    mean activation of neuron k is the EM-style prior update of the single-layer SoftHebb paper
    (Moraitis et al. 2022): db_k = mean_b(y_k) * exp(-t_invert*b_k) - 1, which is zero when the
    prior equals the neuron's average responsibility.
    """
    return y.mean(dim=0) * torch.exp(-t_invert * bias) - 1.0
