"""The whole on-chip loop in Lava -- image spike generator, LearningDense, LIF WTA, interneuron,
inhibition, learning from the WTA's own spikes -- against neurohebb's engine: identical weights
after every sample and identical WTA spikes in every step. Not a replay: both run the loop.
The interneuron circuit here; the lateral one in `test_onchip_lava_neuron.py`, and below where
its summed inhibition overflows."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohebb.backends.lava.sop import TraceConfig
from neurohebb.onchip.engine import ChipLearningLoop, Circuit
from neurohebb.onchip.model import load_engine_model

RULE = "2^-2 * x1 * y0 - 2^-5 * w * y0 + 2^-6 * u0 * x1 * y1 - 2^-7 * u0 * y1 * w"
TRACES = TraceConfig(x1_impulse=16.0, x1_tau=8.0, y1_impulse=20.5, y1_tau=12)
SAMPLES, NEURONS, STEPS = 50, 100, 6


@pytest.mark.slow
def test_closed_loop_in_lava_equals_the_engine(shared_data_dir):
    from neurohebb.backends.lava import require_lava
    from neurohebb.backends.lava.learning import OnChipRule, run_lava_learning
    from neurohebb.backends.lava.mapping import WTACircuit, map_arrays
    from neurohebb.data import load_dataset

    require_lava()
    ds = load_dataset("mnist", shared_data_dir, train_subset=500, test_subset=1)
    images = np.asarray(ds.x_train).reshape(500, -1)
    w = np.random.default_rng(0).normal(size=(NEURONS, images.shape[1])) * 1.25
    net = map_arrays(w, images, WTACircuit(steps=STEPS, spikes_target=3))
    window = net.circuit.window
    rule = OnChipRule(RULE, TRACES, t_epoch=window, rng_seed=4)
    run = run_lava_learning(net, images[:SAMPLES], rule, record=True)

    circuit = Circuit(steps=STEPS, gap=net.circuit.gap, vth=int(net.vth), inh_weight=int(net.inh_weight),
                      inh_exp=int(net.inh_exp), weight_exp=int(net.ff.weight_exp))
    loop = ChipLearningLoop(load_engine_model("loihi2"), RULE, TRACES, torch.from_numpy(run.initial), circuit,
                            t_epoch=window, rng_seed=4)
    ours = loop.run(torch.from_numpy(images[:SAMPLES]), record=True)

    assert run.post.sum() > 3 * SAMPLES and np.abs(run.weights[-1] - run.initial).sum() > 1000  # it spiked and learned
    # Lava's weights are read at the end of every window + the pipeline's 2 lead steps (no learning there)
    np.testing.assert_array_equal(ours["weights"].numpy(), run.weights)
    # WTA spikes of window n, step j happen at global step n*window + 1 + j (Lava's step t is row t - 1)
    lava_raster = run.post[: SAMPLES * window].reshape(SAMPLES, window, NEURONS)
    np.testing.assert_array_equal(ours["raster"].numpy(), lava_raster)


@pytest.mark.slow
def test_lateral_inhibition_wrapping_past_int32_in_lava_equals_the_engine():
    """The lateral circuit in Lava where it overflows: 2000 identical WTA neurons fire together, and
    2000 x 145 * 2**7 = 37.1M of inhibition, shifted 6 bits up in Lava's int32 LIF arithmetic, wraps
    to excitation; the layer then fires in every step, through the gap and across windows (the WTA
    window's last step is the next sample's step 0). The engine follows spike for spike."""
    from neurohebb.backends.lava import require_lava
    from neurohebb.backends.lava.learning import OnChipRule, run_lava_learning
    from neurohebb.backends.lava.mapping import WTACircuit, map_arrays

    require_lava()
    k, steps = 2000, 4
    images = np.full((3, 16), 200, dtype=np.uint8)
    images[1, :8] = 0
    w = np.tile(np.random.default_rng(0).uniform(0.5, 1.0, size=(1, 16)), (k, 1))
    net = map_arrays(w, images, WTACircuit(steps=steps, spikes_target=2, inhibition=4.0))
    assert k * net.inhibition_value >= 2**25  # past what an int32 holds once shifted 6 bits up
    rule = OnChipRule("2^-2 * x1 * y0 - 2^-5 * w * y0", TraceConfig(x1_impulse=16.0, x1_tau=8.0), t_epoch=net.circuit.window)
    run = run_lava_learning(net, images, rule, record=True, lateral=True)
    circuit = Circuit(steps=steps, gap=net.circuit.gap, vth=int(net.vth), inh_weight=0, inh_exp=0,  # no interneuron
                      weight_exp=int(net.ff.weight_exp), lat_weight=int(net.inh_weight), lat_exp=int(net.inh_exp))
    loop = ChipLearningLoop(load_engine_model("loihi2"), rule.dw, rule.traces, torch.from_numpy(run.initial), circuit,
                            t_epoch=circuit.window, rng_seed=0)
    ours = loop.run(torch.from_numpy(images), record=True)
    lava_raster = run.post[: 3 * circuit.window].reshape(3, circuit.window, k)
    assert (lava_raster.sum(2) == k).sum() >= 2 * circuit.window  # all fire, in gap and carried-over steps too
    np.testing.assert_array_equal(ours["raster"].numpy(), lava_raster)
    np.testing.assert_array_equal(ours["weights"].numpy(), run.weights)
