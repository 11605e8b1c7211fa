"""Conv blocks after the first deploy as Lava `Conv` processes: the fast model computes exactly
Lava's own `PyConvModelFixed` sums, and a three-block network runs in Lava spike for spike as
the NumPy twin computes it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohebb.config import config_from_dict
from neurohebb.description import describe
from neurohebb.network import HebbNetwork
from test_lava_sigma_delta import random_network

pytest.importorskip("scipy")


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((9, 7, 5), (3, 3), (1, 1), (0, 0)),
    ((8, 11, 3), (3, 2), (2, 1), (1, 2)),
    ((6, 6, 4), (5, 5), (1, 1), (2, 2)),
])
def test_gemm_convolution_equals_lavas_scipy_convolution(shape, kernel, stride, padding):
    pytest.importorskip("lava")
    from lava.proc.conv import utils

    from neurohebb.backends.lava.procs.conv_exact import conv_windows

    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-2**12, 2**12, size=shape).astype(np.int32)
    w = rng.integers(-128, 128, size=(6,) + kernel + (shape[2],)).astype(np.int32)
    expected = utils.conv_scipy(x, w, kernel, stride, padding, (1, 1), 1)
    np.testing.assert_array_equal(conv_windows(x, w, kernel, stride, padding), expected)


def three_block_net(seed: int = 0) -> HebbNetwork:
    """Three Triangle(1) conv blocks with average pooling and BatchNorm, on 28x28 images."""
    block = {"kind": "conv", "kernel_size": 3, "padding": 1, "activation": "triangle", "activation_param": 1.0,
             "pool": "avg", "pool_kernel": 2, "pool_stride": 2, "batchnorm": True}
    config = config_from_dict({"data": {"dataset": "mnist"},
                               "layers": [dict(block, out_channels=4), dict(block, out_channels=6),
                                          dict(block, out_channels=5, pool_kernel=3, pool_stride=1, pool_padding=1)]})
    return random_network(config, num_classes=3, seed=seed)


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 28, 28)).astype(np.uint8)


def test_three_conv_blocks_fold_exactly_and_the_twin_tracks_them():
    from neurohebb.backends.lava.fold import fold, forward
    from neurohebb.backends.lava.sigma_delta import emulate, map_sigma_delta

    net = three_block_net()
    spec = describe(net)
    stages = fold(spec)
    assert [(s.name, s.kind) for s in stages] == [("block0", "sparse"), ("pool0", "sparse"), ("block1", "conv"),
                                                  ("pool1", "sparse"), ("block2", "conv"), ("readout", "sparse")]
    x = images(16, seed=1)
    expected = net.double()(torch.from_numpy(x).double() / 255.0).detach().numpy()
    np.testing.assert_allclose(forward(stages, x)[-1], expected, rtol=1e-9, atol=1e-9)
    sd = map_sigma_delta(spec, images(64, seed=2))
    twin = emulate(sd, x)
    err = np.abs(twin.readout * sd.stages[-1].unit - expected).max() / np.abs(expected).max()
    assert err < 0.05
    totals = emulate(sd, x, chunk=5, per_neuron=False)  # the compact form for whole test sets
    np.testing.assert_array_equal(totals.readout, twin.readout)
    np.testing.assert_array_equal(totals.spikes_per_sample(), twin.spikes_per_sample())


@pytest.mark.parametrize("conv_model", ["gemm", "lava"])
def test_lava_runs_three_conv_blocks_as_the_twin_does(conv_model):
    pytest.importorskip("lava")
    from neurohebb.backends.lava.sd_circuit import run_lava_sd
    from neurohebb.backends.lava.sigma_delta import emulate, map_sigma_delta

    sd = map_sigma_delta(describe(three_block_net(seed=3)), images(64, seed=4))
    x = images(4, seed=5)
    twin = emulate(sd, x, raster_sample=1)
    run, _ = run_lava_sd(sd, x, raster_sample=1, conv_model=conv_model)
    np.testing.assert_array_equal(run.readout, twin.readout)
    for a, b in zip(run.counts, twin.counts):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(run.rasters, twin.rasters):
        np.testing.assert_array_equal(a, b)
    assert all(c.sum() > 0 for c in run.counts[:-1])  # every hidden stage fired


def test_an_unknown_conv_model_is_refused():
    pytest.importorskip("lava")
    from neurohebb.backends.lava.sd_circuit import run_lava_sd
    from neurohebb.backends.lava.sigma_delta import map_sigma_delta
    from neurohebb.errors import ConfigError

    sd = map_sigma_delta(describe(three_block_net()), images(8, seed=6))
    with pytest.raises(ConfigError, match="conv_model must be 'gemm' or 'lava'"):
        run_lava_sd(sd, images(1, seed=7), conv_model="torch")


def test_firing_flags_pack_48_to_a_word_and_unpack_exactly():
    pytest.importorskip("lava")
    from neurohebb.backends.lava.procs.graded_io import BITS_PER_WORD, pack_bits, unpack_bits

    flags = np.random.default_rng(8).random((5, 3 * BITS_PER_WORD + 7)) < 0.3
    words = pack_bits(flags)
    assert words.shape == (5, 4) and words.max() < 2**BITS_PER_WORD  # exact as float64, which Lava's Var.get sends
    np.testing.assert_array_equal(unpack_bits(words.astype(np.float64).astype(np.int64), flags.shape[1]), flags)


def test_a_linear_block_normalised_per_channel_folds_to_the_same_affine_map():
    """`conv_form` folds a linear block's BatchNorm statistics whether they index its flattened
    input (per feature, as the network's BatchNorm1d) or its channels: W' x + b' equals the
    block's centred weights applied to the normalised input, for channel stats repeated per pixel."""
    import dataclasses

    from neurohebb.backends.lava.fold import _block_operator, conv_form
    from neurohebb.description import NormSpec

    block = {"kind": "linear", "out_channels": 7, "activation": "triangle", "activation_param": 1.0, "batchnorm": True}
    config = config_from_dict({"data": {"dataset": "cifar10"}, "layers": [dict(block)]})
    spec = describe(random_network(config, num_classes=3, seed=2))
    rng = np.random.default_rng(3)
    norm = NormSpec(mean=rng.random(3), var=rng.random(3) + 0.5, eps=1e-5, per="channel")  # RGB: three channels
    linear = dataclasses.replace(spec.blocks[0], norm=norm)
    w, b = conv_form(linear)
    x = rng.random((5, 3 * 32 * 32))
    centred = linear.weight - linear.weight.mean(axis=0, keepdims=True)
    per_pixel = (x.reshape(5, 3, -1) - norm.mean[None, :, None]) * norm.scale[None, :, None]
    want = per_pixel.reshape(5, -1) @ centred.T
    np.testing.assert_allclose(x @ w.T + b, want, rtol=1e-10, atol=1e-10)
    a, c = _block_operator(linear)
    np.testing.assert_allclose(a @ x.T + c[:, None], want.T, rtol=1e-10, atol=1e-10)
