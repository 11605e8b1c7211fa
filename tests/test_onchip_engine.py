"""The fast on-chip engine against a step-by-step reference of Lava's process order (no Lava
needed) and against its own arithmetic's pieces."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurohebb.backends.lava.encoding import encode
from neurohebb.backends.lava.sop import TraceConfig
from neurohebb.errors import ConfigError
from neurohebb.onchip.engine import ChipLearningLoop, Circuit, rate_code
from neurohebb.onchip.model import load_engine_model

sys.path.insert(0, str(Path(__file__).parent))
from onchip_reference import reference_loop  # noqa: E402

TRACES = TraceConfig(x1_impulse=16.0, x1_tau=8.0, y1_impulse=20.5, y1_tau=12)


def _images(n: int, seed: int = 0) -> np.ndarray:
    """Blobs on a 12x12 grid: structured enough that neurons fire and weights move."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, size=(n, 12, 12))
    for im, (r, c) in zip(img, rng.integers(0, 9, size=(n, 2))):
        im[r:r + 4, c:c + 4] = 255
    return img.astype(np.uint8).reshape(n, -1)


def _circuit(inh_weight: int, inh_exp: int, lateral: bool = False, **kw) -> Circuit:
    """A circuit with one inhibition path: the interneuron, or (``lateral``) K x K WTA synapses of
    the same weight."""
    if lateral:
        return Circuit(inh_weight=0, inh_exp=0, lat_weight=inh_weight, lat_exp=inh_exp, **kw)
    return Circuit(inh_weight=inh_weight, inh_exp=inh_exp, **kw)


def test_rate_code_matches_the_lava_encoder():
    imgs = _images(5)
    ours = rate_code(torch.from_numpy(imgs), 9).numpy()
    np.testing.assert_array_equal(ours, encode(imgs, 9, "rate"))


@pytest.mark.parametrize("rule, t_epoch, steps, lateral", [
    ("2^-2 * x1 * y0 - 2^-5 * w * y0", None, 8, False),  # one epoch per sample window
    ("2^-2 * x1 * y0 - 2^-5 * w * y0", 1, 8, False),  # learning every step: weights change mid-sample
    ("2^-3 * x1 * y0 - 2^-5 * w * y0 + 3*2^-4 * y1 * x0 - 2^-6 * x1 * y1 * x0", 3, 7, False),  # x0 products, odd epochs
    ("2^-3 * u0 * x1 * y1 - 2^-6 * u0 * y1 * w", None, 8, False),  # end-of-epoch rule on spike-count traces
    ("2^-3 * u1 * x1 * y1 - 2^-6 * u1 * y1 * w + 2^-4 * x1 * y0", 5, 8, False),  # u1: every second epoch
    ("2^-2 * x1 * y0 - 2^-5 * w * y0", None, 8, True),  # lateral inhibition (the NumPy WTA loop)
    ("2^-2 * x1 * y0 - 2^-5 * w * y0", 1, 8, True),  # lateral inhibition (the torch loop)
    ("2^-2 * x1 * y0 - 2^-5 * w * y0", None, 8, "both"),  # interneuron + weak lateral (the presets' circuit)
    ("2^-2 * x1 * y0 - 2^-5 * w * y0", 1, 8, "both"),
])
def test_engine_matches_the_step_by_step_reference(rule, t_epoch, steps, lateral):
    rng = np.random.default_rng(1)
    imgs = _images(12)
    w0 = rng.integers(-60, 120, size=(16, imgs.shape[1])) * 2
    # lateral: a weaker inhibition per spike, so that several spikes in a step inhibit more than one
    if lateral == "both":  # interneuron 200 << 4, lateral 100 << 2 per spike
        c = Circuit(steps=steps, gap=2, vth=3000, inh_weight=200, inh_exp=4, weight_exp=0, lat_weight=100, lat_exp=2)
        ref_w, ref_counts = reference_loop(imgs, w0, rule, TRACES, t_epoch or c.window, 3, steps, 2, c.vth, c.inh_weight,
                                           c.inh_exp, c.weight_exp, lat_weight=100, lat_exp=2)
    else:
        c = _circuit(steps=steps, gap=2, vth=3000, inh_weight=200 if not lateral else 60, inh_exp=4, weight_exp=0, lateral=lateral)
        ref_w, ref_counts = reference_loop(imgs, w0, rule, TRACES, t_epoch or c.window, 3, steps, 2, c.vth,
                                           200 if not lateral else 60, 4, c.weight_exp, lateral=lateral)
    te = t_epoch or c.window
    if lateral:  # the paths differ here: the interneuron alone (200 << 4) spikes otherwise
        other, _ = reference_loop(imgs, w0, rule, TRACES, te, 3, steps, 2, c.vth, 200, 4, c.weight_exp)
        assert not np.array_equal(other, ref_w)
    loop = ChipLearningLoop(load_engine_model("loihi2"), rule, TRACES, torch.from_numpy(w0), c, t_epoch, rng_seed=3)
    out = loop.run(torch.from_numpy(imgs), record=True)
    assert ref_counts.sum() > 20 and np.abs(ref_w[-1] - w0).sum() > 100  # the loop did spike and learn
    np.testing.assert_array_equal(out["counts"].numpy(), ref_counts)
    np.testing.assert_array_equal(out["weights"].numpy(), ref_w)


def test_homeostasis_raises_the_threshold_of_frequent_winners():
    imgs = _images(30)
    w0 = np.random.default_rng(2).integers(0, 100, size=(8, imgs.shape[1])) * 2
    c = Circuit(steps=8, gap=2, vth=3000, inh_weight=200, inh_exp=4, weight_exp=0, theta_plus=400, theta_decay_shift=6)
    loop = ChipLearningLoop(load_engine_model("loihi2"), "2^-2 * x1 * y0 - 2^-5 * w * y0", TRACES, torch.from_numpy(w0), c)
    counts = loop.run(torch.from_numpy(imgs), record=True)["counts"].numpy()
    wins = counts.sum(0)
    assert int(loop.theta.max()) > 0 and int(loop.theta[wins.argmax()]) == int(loop.theta.max())


def test_bad_settings_are_one_line_errors():
    m = load_engine_model("loihi2")
    w = torch.zeros(2, 4, dtype=torch.int64)
    c = Circuit(steps=4, gap=2, vth=100, inh_weight=1, inh_exp=0, weight_exp=0)
    with pytest.raises(ConfigError, match="t_epoch = 64 is outside"):
        ChipLearningLoop(m, "2^-2 * x1 * y0", TRACES, w, c, t_epoch=64)
    with pytest.raises(ConfigError, match="weight_exp=9 is outside"):
        ChipLearningLoop(m, "2^-2 * x1 * y0", TRACES, w, Circuit(steps=4, gap=2, vth=100, inh_weight=1, inh_exp=0, weight_exp=9))
    with pytest.raises(ConfigError, match="impulse 200 is outside 0..127"):
        ChipLearningLoop(m, "2^-2 * x1 * y0", TraceConfig(x1_impulse=200), w, c)
    with pytest.raises(ConfigError, match="gap >= 2"):
        Circuit(steps=4, gap=1, vth=100, inh_weight=1, inh_exp=0, weight_exp=0)


def test_neuron_written_trace_carries_the_summed_input():
    """y2 written by the neuron = floor(127 * D_k / scale), D_k the sample's summed synaptic input;
    the u0 product y2 * x0 then adds exactly y2_k to every synapse whose input spiked."""
    imgs = _images(1)
    rng = np.random.default_rng(3)
    w0 = rng.integers(-10, 30, size=(4, imgs.shape[1])) * 2
    c = Circuit(steps=8, gap=2, vth=10**5, inh_weight=1, inh_exp=0, weight_exp=0)  # no spikes needed
    scale = 5000.0
    loop = ChipLearningLoop(load_engine_model("loihi2"), "2^0 * u0 * y2 * x0", TRACES, torch.from_numpy(w0), c,
                            written={"y2": scale})
    w1 = loop.run(torch.from_numpy(imgs), record=True)["weights"][0].numpy()
    counts = encode(imgs, 8, "rate")[0].sum(0)
    d = w0 @ counts
    y2 = np.minimum(np.floor(127 * np.maximum(d, 0) / scale), 127).astype(int)
    assert y2.max() > 0 and y2.min() < y2.max()
    np.testing.assert_array_equal(w1 - w0, y2[:, None] * (counts > 0)[None, :])
    with pytest.raises(ConfigError, match="cannot write post traces"):
        ChipLearningLoop(load_engine_model("loihi"), "2^0 * u0 * y2 * x0", TRACES, torch.from_numpy(w0), c, written={"y2": 1.0})


def test_harmonic_write_is_a_running_mean_rate_of_the_neurons_that_fired():
    """y3 written by the neuron = round(127 / (n + 1)) (n: samples it fired in before), at least the
    floor, 0 where it did not fire; with dw = y3/128 * (x1/4 - w) the first win imprints x1/4 and a
    neuron that never fires keeps its weights."""
    img = np.zeros((1, 16), dtype=np.uint8)
    img[0, :8] = 255
    imgs = np.repeat(img, 4, axis=0)
    w0 = np.zeros((2, 16), dtype=np.int64)
    w0[0, :8] = 40  # fires on every sample
    w0[1] = -20  # never fires
    c = Circuit(steps=8, gap=2, vth=100, inh_weight=1, inh_exp=0, weight_exp=0)
    loop = ChipLearningLoop(load_engine_model("loihi2"), "2^-6 * u0 * y3 * x1 - 2^-2 * u0 * y3 * w",
                            TraceConfig(x1_impulse=60, x1_tau=16), torch.from_numpy(w0), c, written={"y3": ("harmonic", 40)})
    written = []
    for im in imgs:
        out = loop.run(torch.from_numpy(im[None]), record=True)
        written.append(loop._written_now[2].tolist())
        if len(written) == 1:
            x1 = loop.x[0].numpy()
            w1 = out["weights"][0].numpy()
            assert out["counts"][0, 0] > 0 and out["counts"][0, 1] == 0
            assert np.abs(w1[0] - x1 / 4).max() <= 1 and (x1[:8] > 40).all() and (x1[8:] == 0).all()
            np.testing.assert_array_equal(w1[1], w0[1])
    assert [row[0] for row in written] == [127, 64, 42, 40]  # 127, 128//2, 128//3, then the floor
    assert all(row[1] == 0 for row in written)
    with pytest.raises(ConfigError, match="neither a drive scale"):
        ChipLearningLoop(load_engine_model("loihi2"), "2^-6 * u0 * y3 * x1", TRACES, torch.from_numpy(w0), c,
                         written={"y3": ("harmonic", 500)})


def test_lateral_inhibition_lands_a_step_earlier_and_counts_every_spike():
    """Closed form on the WTA loop alone (threshold 100, drive per step 30/30/22, inhibition 5 per
    spike): neurons 0 and 1 cross at step 3. Through the interneuron the inhibition lands at step 5,
    so neuron 2 (v = 110 at step 4) fires at step 4 too; laterally the two spikes subtract 10 at
    step 4 (v = 100, not above threshold) and it fires only at step 5 -- one spike's worth (5)
    would have left v = 105 and let it fire at step 4."""
    from neurohebb.onchip.engine import _wta_numpy

    drive = np.tile(np.array([30, 30, 22], dtype=np.int64), (6, 1))
    vth = np.full(3, 100, dtype=np.int64)
    inter = _wta_numpy(drive, 6, 6, -5, vth, False)
    lateral = _wta_numpy(drive, 6, 6, 0, vth, False, -5, peak=30)
    assert inter[3].tolist() == [True, True, False] and inter[4].tolist() == [False, False, True]
    assert lateral[3].tolist() == [True, True, False] and not lateral[4].any() and lateral[5].tolist() == [False, False, True]


@pytest.mark.parametrize("t_epoch", [None, 1])  # the NumPy and the torch WTA loop
def test_lateral_bursts_wrapped_into_excitation_run_past_the_input_and_into_the_next_window(t_epoch):
    """16 spikes of 120 * 2**7 in one step sum to -15.7M after Lava's 6-bit shift: below the 24-bit
    current's -2**23, so Lava adds 2**24 once and the inhibition excites (+1.0M) -- the whole layer
    fires again, in the silent gap steps and at the WTA window's last step (the next sample's step
    0, before the reset), whose spikes inhibit -- and excite -- the next window's first step."""
    rng = np.random.default_rng(1)
    imgs = _images(12)
    w0 = rng.integers(-60, 120, size=(16, imgs.shape[1])) * 2
    c = _circuit(steps=8, gap=3, vth=3000, inh_weight=120, inh_exp=7, weight_exp=0, lateral=True)
    rule = "2^-2 * x1 * y0 - 2^-5 * w * y0"
    ref_w, ref_counts = reference_loop(imgs, w0, rule, TRACES, t_epoch or c.window, 3, 8, 3, c.vth, c.lat_weight,
                                       c.lat_exp, c.weight_exp, lateral=True)
    loop = ChipLearningLoop(load_engine_model("loihi2"), rule, TRACES, torch.from_numpy(w0), c, t_epoch, rng_seed=3)
    out = loop.run(torch.from_numpy(imgs), record=True)
    raster = out["raster"].numpy()
    assert raster[:, c.steps + 2:].sum() > 0 and raster[1:, 0].sum() > 0  # gap steps and carried-over steps spiked
    np.testing.assert_array_equal(out["counts"].numpy(), ref_counts)
    np.testing.assert_array_equal(out["weights"].numpy(), ref_w)


def test_lateral_inhibition_past_the_int32_shift_wraps_as_in_lava():
    """1100 neurons firing together at 255 * 2**7 each: |input| = 35.9M >= 2**25, so Lava's int32
    shift by 6 wraps (to +2.0e9) before the 24-bit wrap, and the layer keeps firing; with only the
    24-bit wrap the current would stay negative and the layer fall silent."""
    imgs = _images(3)
    w0 = np.tile(np.random.default_rng(3).integers(20, 60, size=(1, imgs.shape[1])), (1100, 1))
    c = _circuit(steps=6, gap=2, vth=1500, inh_weight=255, inh_exp=7, weight_exp=0, lateral=True)
    rule = "2^-2 * x1 * y0 - 2^-5 * w * y0"
    ref_w, ref_counts = reference_loop(imgs, w0, rule, TRACES, c.window, 3, 6, 2, c.vth, c.lat_weight, c.lat_exp,
                                       c.weight_exp, lateral=True)
    loop = ChipLearningLoop(load_engine_model("loihi2"), rule, TRACES, torch.from_numpy(w0), c, rng_seed=3)
    out = loop.run(torch.from_numpy(imgs), record=True)
    per_step = out["raster"].numpy().sum(2)
    assert per_step.max() == 1100 and (per_step == 1100).sum() >= 4  # the burst sustained itself
    np.testing.assert_array_equal(out["counts"].numpy(), ref_counts)
    np.testing.assert_array_equal(out["weights"].numpy(), ref_w)


def test_inhibitory_weights_are_an_8_bit_mantissa_and_the_smallest_exponent():
    """circuit.inhibition_weight: the presets' quarter threshold at vth 1491 is 372.75 -> 186 << 1
    (372); what fits 8 bits keeps exponent 0; no inhibition is no synapse."""
    from neurohebb.onchip.circuit import inhibition_weight

    assert inhibition_weight(0.25 * 1491) == (186, 1)
    assert inhibition_weight(200.4) == (200, 0) and inhibition_weight(0.0) == (0, 0)
    assert inhibition_weight(16 * 1491) == (186, 7)  # the interneuron's 16 thresholds
