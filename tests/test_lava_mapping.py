"""Mapping to Lava: a tiny circuit whose spikes are worked out by hand, the NumPy twin against
Lava, conv unrolling against torch, and the errors for what cannot be mapped."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurohebb.backends.lava.emulate import emulate
from neurohebb.backends.lava.mapping import UnsupportedNetwork, WTACircuit, check_supported, map_arrays, unroll_conv
from neurohebb.config import config_from_dict
from neurohebb.errors import ConfigError
from neurohebb.network import HebbNetwork

# Two pixels, two WTA neurons, two classes. Image 0 lights pixel 0, image 1 pixel 1.
W = np.array([[1.0, 0.0], [0.5, 1.0]])
READOUT = np.array([[1.0, -1.0], [-1.0, 1.0]])
IMAGES = np.array([[255, 0], [0, 255]], dtype=np.uint8)
CIRCUIT = WTACircuit(steps=4, spikes_target=2)


def tiny():
    return map_arrays(W, IMAGES, CIRCUIT, readout_w=READOUT, readout_b=np.zeros(2))


def test_tiny_mapping_parameters_by_hand():
    net = tiny()
    # max|w| = 1 -> exponent -6: mantissas 64 and 32, stored shifted by one bit (mixed sign, 8 bits)
    assert net.ff.exponent == -6 and net.ff.weights.tolist() == [[128, 0], [64, 128]]
    # winner drive: 4 spikes x 128 per sample = 128 per step; spikes_target 2 -> threshold after 2 steps = 256
    # weight_exp = floor(log2(255 * 2^7 / 256)) = 6 -> vth = 256 * 2^6; inhibition = vth = 128 << 7
    assert (net.ff.weight_exp, net.vth, net.inh_weight, net.inh_exp) == (6, 16384, 128, 7)
    assert net.readout.weights.tolist() == [[128, -128], [-128, 128]]


RASTER_0 = [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0], [0, 0]]  # 4 input steps + a 2-step gap


def test_tiny_network_spikes_worked_out_by_hand():
    """On image 0 neuron 0 integrates 128 << 6 = 8192 per step, neuron 1 4096 (potentials in
    Dense units below). Threshold 16384, strict: neuron 0 reaches 8192, 16384 (no spike), 24576 ->
    spike at step 2, reset to 0. Step 3: neuron 0 at 8192, neuron 1 at exactly 16384 (no spike).
    The interneuron fires at step 3; at step 4 both lose 16384: -8192 and 0. Nothing fires again."""
    run = emulate(tiny(), IMAGES, "fixed_pt", raster_sample=0)
    assert run.raster.tolist() == RASTER_0
    assert run.counts.tolist() == [[1, 0], [0, 1]]
    assert run.interneuron_spikes.tolist() == [1, 1]
    # readout: one spike through weight +-128, aligned by 6 bits: +-8192
    assert run.readout_v.tolist() == [[8192, -8192], [-8192, 8192]]
    assert run.predictions.tolist() == [0, 1]
    assert run.input_spikes.tolist() == [4, 4]


def test_lava_runs_the_tiny_network_exactly_as_worked_out():
    from neurohebb.backends.lava.deploy import run_lava

    net = tiny()
    images = np.concatenate([IMAGES, IMAGES[::-1]])  # four samples back to back: state resets between them
    fixed, timing = run_lava(net, images, "fixed_pt", raster_sample=0)
    assert timing.steps == len(images) * CIRCUIT.window + 2  # + the generator -> WTA delay + 1
    assert fixed.raster.tolist() == RASTER_0
    assert fixed.counts.tolist() == [[1, 0], [0, 1], [0, 1], [1, 0]]
    assert fixed.interneuron_spikes.tolist() == [1, 1, 1, 1]
    assert fixed.readout_v.tolist() == [[8192, -8192], [-8192, 8192], [-8192, 8192], [8192, -8192]]
    floating, _ = run_lava(net, images, "floating_pt", raster_sample=0)
    assert floating.counts.tolist() == fixed.counts.tolist()
    # float readout potentials are in Dense units (no 6-bit alignment): +-128
    assert floating.readout_v.tolist() == [[128, -128], [-128, 128], [-128, 128], [128, -128]]


@pytest.mark.parametrize("coding, tag", [("rate", "fixed_pt"), ("ttfs", "fixed_pt"), ("poisson", "floating_pt")])
def test_emulation_matches_lava_on_a_random_layer(coding, tag):
    """The NumPy twin (used to tune the circuit) reproduces Lava's spikes exactly, with competition."""
    from neurohebb.backends.lava.deploy import run_lava

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 20), dtype=np.uint8)
    w = rng.normal(size=(12, 20))
    net = map_arrays(w, images, WTACircuit(steps=10, spikes_target=3, inhibition=0.6, gap=3, coding=coding, seed=3),
                     readout_w=rng.normal(size=(3, 12)), readout_b=rng.normal(size=3))
    lava_run, _ = run_lava(net, images, tag, raster_sample=4, sample_offset=7)
    twin = emulate(net, images, tag, raster_sample=4, sample_offset=7)
    assert lava_run.counts.sum() > 6 and (lava_run.counts > 0).sum(axis=1).max() > 1  # several neurons compete
    np.testing.assert_array_equal(lava_run.counts, twin.counts)
    np.testing.assert_array_equal(lava_run.interneuron_spikes, twin.interneuron_spikes)
    np.testing.assert_array_equal(lava_run.raster, twin.raster)
    if tag == "fixed_pt":
        np.testing.assert_array_equal(lava_run.readout_v, twin.readout_v)
    else:  # float sums in another order: equal up to rounding
        np.testing.assert_allclose(lava_run.readout_v, twin.readout_v, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape, cout, k, padding, stride", [((2, 6, 5), 4, 3, 1, 1), ((1, 7, 7), 3, 3, 1, 2),
                                                              ((3, 5, 5), 2, 2, 0, 1)])
def test_unrolled_conv_equals_torch_conv_with_reflect_padding(shape, cout, k, padding, stride):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(cout, shape[0], k, k, generator=g, dtype=torch.float64)
    x = torch.rand(3, *shape, generator=g, dtype=torch.float64)
    padded = F.pad(x, (padding,) * 4, mode="reflect") if padding else x
    expected = F.conv2d(padded, w, stride=stride).reshape(3, -1).numpy()
    mat = unroll_conv(w.numpy(), shape, padding, stride)
    np.testing.assert_allclose((mat @ x.reshape(3, -1).numpy().T).T, expected, rtol=1e-12, atol=1e-12)


def test_unrolled_first_layer_of_the_mnist_preset():
    """The mnist preset's first conv layer (1 -> 96, 5x5, reflect pad 2) as one sparse matrix."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(96, 1, 5, 5, generator=g, dtype=torch.float64)
    x = torch.rand(2, 1, 28, 28, generator=g, dtype=torch.float64)
    mat = unroll_conv(w.numpy(), (1, 28, 28), padding=2)
    assert mat.shape == (96 * 28 * 28, 784)
    assert mat.nnz <= 96 * 784 * 25  # at most 25 taps per neuron (fewer where reflections coincide)
    expected = F.conv2d(F.pad(x, (2,) * 4, mode="reflect"), w).reshape(2, -1).numpy()
    np.testing.assert_allclose((mat @ x.reshape(2, -1).numpy().T).T, expected, rtol=1e-12, atol=1e-12)


def test_unroll_conv_errors():
    with pytest.raises(ConfigError, match="input channels"):
        unroll_conv(np.ones((2, 3, 3, 3)), (1, 5, 5))
    with pytest.raises(ConfigError, match="reflect padding"):
        unroll_conv(np.ones((2, 1, 3, 3)), (1, 2, 2), padding=2)


def _net(**layer) -> HebbNetwork:
    base = {"kind": "linear", "out_channels": 8, "rule": "softhebb", "batchnorm": False, "activation": "softmax"}
    layers = layer.pop("layers", None) or [dict(base, **layer)]
    return HebbNetwork(config_from_dict({"data": {"dataset": "digits"}, "layers": layers}))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"layers": [{"kind": "conv", "out_channels": 4, "kernel_size": 3}]}, "convolutional"),
        ({"layers": [{"kind": "linear", "out_channels": 8, "batchnorm": False, "activation": "softmax"}] * 2},
         "exactly one soft-WTA layer"),
        ({"batchnorm": True}, "batchnorm"),
        ({"activation": "triangle"}, "--wta currents"),
        ({"bias": True}, "learned prior"),
    ],
)
def test_unsupported_networks_get_a_clear_error(kwargs, fragment):
    with pytest.raises(UnsupportedNetwork, match=fragment):
        check_supported(_net(**kwargs))


def test_supported_network_passes():
    check_supported(_net())


def test_map_arrays_rejects_bad_calibration_images():
    with pytest.raises(ConfigError, match="uint8"):
        map_arrays(W, IMAGES.astype(float), CIRCUIT)
    with pytest.raises(ConfigError, match="2 pixels"):
        map_arrays(W, np.zeros((1, 3), np.uint8), CIRCUIT)


def test_currents_mode_recovers_u_exactly_and_lava_agrees():
    """Integrators instead of the WTA: the potential after the input is steps * (W x) in Loihi
    units; for the tiny network that is u = W x exactly (pixels 0 or 255, 8-bit weights exact)."""
    from neurohebb.backends.lava.deploy import run_lava

    net = map_arrays(W, IMAGES, WTACircuit(steps=4, wta="currents"), readout_w=READOUT, readout_b=np.array([0.1, 0.0]))
    # peak drive 4 spikes x 128 = 512, doubled for margin: weight_exp = floor(log2(2^17 / 1024)) = 7
    assert net.ff.weight_exp == 7
    twin = emulate(net, IMAGES, "fixed_pt")
    np.testing.assert_array_equal(net.currents_to_u(twin.readout_v, fixed=True), IMAGES / 255 @ W.T)
    assert twin.predictions.tolist() == [0, 1] and twin.counts.sum() == 0
    lava_run, _ = run_lava(net, IMAGES, "fixed_pt")
    np.testing.assert_array_equal(lava_run.readout_v, twin.readout_v)
    assert lava_run.predictions.tolist() == [0, 1]


def test_currents_mode_applies_the_layers_own_activation_on_the_host():
    """A Triangle layer deploys in currents mode: the host turns the integrated currents back into
    u and applies Triangle and the readout exactly as the torch model does."""
    from neurohebb.backends.lava.mapping import map_network

    net = _net(activation="triangle", activation_param=1.0)
    check_supported(net, "currents")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.blocks[0].layer.weight.copy_(torch.randn(net.blocks[0].layer.weight.shape, generator=gen) * 0.1)
        net.readout.weight.normal_(generator=gen)
    images = torch.randint(0, 256, (20, 64), generator=gen, dtype=torch.uint8).numpy()
    lnet = map_network(net, images, WTACircuit(wta="currents", steps=16))
    assert lnet.summary()["activation"] == "triangle"
    x = torch.from_numpy(images).double() / 255.0
    u = x @ net.blocks[0].layer.weight.double().t()
    v = u.numpy() / (lnet.ff.unit / lnet.circuit.steps)  # the potentials a float-point integrator reaches
    expected = net.double().eval().classify(net.blocks[0].activate(u)).detach().numpy()
    np.testing.assert_allclose(lnet.host_logits(v, fixed=False), expected, rtol=1e-9, atol=1e-9)
