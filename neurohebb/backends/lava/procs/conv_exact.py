"""Lava's fixed-point `Conv` model with its convolution computed as one matrix product.

Why: `PyConvModelFixed` convolves with one `scipy.signal.convolve2d` call per pair of output and
input channels (`lava.proc.conv.utils.conv_scipy`): 590k calls per time step for the paper's
third block (1536 x 384 channels), minutes per test image. This model keeps every other line of
Lava's (the one-step delay of `a_buf`, graded or binary input, the int32 cast and the 24-bit
wrap of `clamp_precision`) and computes the same sums as one float64 matrix product over
sliding windows. Both accumulate integer products in float64, so the two agree exactly while
every partial sum stays under 2**53 (the sigma-delta mapping keeps them under 2**22);
`tests/test_lava_conv.py` runs both models in Lava and compares every output.
Dilation and groups other than 1 fall back to Lava's own kernel.

Imports are absolute because Lava's compiler also executes this file outside its package.
"""
from __future__ import annotations

import numpy as np

from neurohebb.backends.lava import compat

compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.conv import utils  # noqa: E402
from lava.proc.conv.models import PyConvModelFixed  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402


def conv_windows(input_: np.ndarray, weight: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    """What `utils.conv_scipy` returns (float64 sums of a true convolution over X, Y), for
    dilation 1 and one group: ``out[x, y, k] = sum_{a, b, c} in[x+a, y+b, c] w[k, kx-1-a, ky-1-b, c]``."""
    kx, ky = (int(v) for v in kernel_size)
    sx, sy = (int(v) for v in stride)
    px, py = (int(v) for v in padding)
    x = np.pad(np.asarray(input_, dtype=np.float64), ((px, px), (py, py), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kx, ky), axis=(0, 1))[::sx, ::sy]  # [X', Y', C, kx, ky]
    flipped = np.asarray(weight, dtype=np.float64)[:, ::-1, ::-1, :]  # [K, kx, ky, C]
    return np.tensordot(windows, flipped, axes=([2, 3, 4], [3, 1, 2]))  # [X', Y', K]


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyConvModelFixedGemm(PyConvModelFixed):
    """`PyConvModelFixed` with `conv_windows` in place of the per-channel scipy loop."""

    def run_spk(self) -> None:
        if self.a_buf is None:  # as Lava's model
            self.a_buf = np.zeros_like(self.a_out.shape)
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv() if self.num_message_bits.item() > 0 else self.s_in.recv().astype(bool)
        if np.any(np.asarray(self.dilation) != 1) or int(self.groups[0]) != 1:
            a_out = utils.conv(s_in, self.weight, self.kernel_size, self.stride, self.padding, self.dilation,
                               self.groups[0])
        else:
            a_out = conv_windows(s_in, self.weight, self.kernel_size, self.stride, self.padding).astype(self.weight.dtype)
        self.a_buf = self.clamp_precision(a_out)
