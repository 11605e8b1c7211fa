"""Operation counts, energy and latency against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from neurohebb.feasibility.activity import ActivityProfile, LayerActivity, uniform_activity
from neurohebb.feasibility.chips import blank_chip_dict, chip_from_dict, load_chip
from neurohebb.feasibility.cost import _tap_counts, estimate_costs, feedforward_synops_per_step
from neurohebb.feasibility.mapping import map_network
from neurohebb.feasibility.netspec import conv_layer, linear_layer


def fig(value):
    return {"value": value, "source": "mydoc, test figure"}


def costed_chip(**overrides):
    """One core holds everything; every energy and time is a round number."""
    data = blank_chip_dict("toy")
    data["architecture"].update(cores_per_chip=fig(8), neurons_per_core=fig(1000),
                                synaptic_memory_bits_per_core=fig(10**6), weight_sharing=fig("replicate"))
    data["weights"].update(min_bits=fig(1), max_bits=fig(8), learning_state_bits_per_synapse=fig(0))
    data["learning"].update(on_chip=fig(True), engine=fig("sum-of-products"), learning_epoch_steps_max=fig(63))
    data["energy"].update(synaptic_op_pj=fig(2.0), synaptic_op_is_all_in=fig(False), synaptic_update_pj=fig(10.0),
                          neuron_update_pj=fig(1.0), neuron_update_idle_pj=fig(0.5))
    data["timing"].update(synaptic_op_ns=fig(1.0), neuron_update_ns=fig(2.0), neuron_update_idle_ns=fig(1.0),
                          synaptic_update_ns=fig(3.0), barrier_sync_ns=fig(100.0))
    for dotted, value in overrides.items():
        section, name = dotted.split("__")
        data[section][name] = value
    return chip_from_dict(data)


def one_layer_costs(chip, time_steps=10):
    layer = linear_layer("l", 20, 30, rule="softhebb")
    activity = ActivityProfile({"l": LayerActivity(input_rate=0.5, output_rate=0.1)}, "test", measured=False)
    mapping = map_network([layer], chip, weight_bits=8, wta=False)
    return estimate_costs([layer], mapping, activity, chip, time_steps)


def test_energy_and_latency_of_a_linear_layer_by_hand():
    c = one_layer_costs(costed_chip())
    # 600 synapses x rate 0.5 = 300 synaptic ops per step, 10 steps
    assert c.synops_per_inference == pytest.approx(3000)
    assert c.neuron_updates_per_inference == pytest.approx(300)
    # 3000 x 2 pJ + 10 steps x 30 neurons x (0.1 x 1 + 0.9 x 0.5) pJ = 6000 + 165 pJ
    assert c.energy_per_inference_j == pytest.approx(6165e-12)
    # one learning epoch covers the 10 steps: 600 updates x 10 pJ more
    assert c.updates_per_sample == 1 and c.synaptic_updates_per_sample == 600
    assert c.energy_per_training_sample_j == pytest.approx(12165e-12)
    # step: 300 ops x 1 ns + 30 neurons x (0.1 x 2 + 0.9 x 1) ns + 100 ns barrier = 433 ns
    assert c.latency_per_inference_s == pytest.approx(10 * 433e-9)
    # learning: 600 updates x 3 ns on the one core
    assert c.latency_per_training_sample_s == pytest.approx(10 * 433e-9 + 1800e-9)
    assert c.missing == []


def test_more_time_steps_than_an_epoch_mean_several_learning_epochs():
    c = one_layer_costs(costed_chip(learning__learning_epoch_steps_max=fig(4)), time_steps=10)
    assert c.updates_per_sample == 3 and c.synaptic_updates_per_sample == 1800


def test_unknown_figures_give_unknown_results_and_are_named():
    c = one_layer_costs(costed_chip(energy__synaptic_update_pj={"unknown": "not published"},
                                    timing__synaptic_op_ns={"unknown": "not published"}))
    assert c.energy_per_inference_j == pytest.approx(6165e-12)
    assert c.energy_per_training_sample_j is None
    assert c.latency_per_inference_s is None
    assert "energy.synaptic_update_pj" in c.missing


def test_all_in_energy_is_not_added_to_neuron_energy():
    chip = costed_chip(energy__synaptic_op_is_all_in=fig(True), energy__neuron_update_pj={"unknown": "inside the average"},
                       learning__on_chip=fig(False), learning__engine=fig("none"))
    c = one_layer_costs(chip)
    assert c.energy_per_inference_j == pytest.approx(3000 * 2e-12)
    assert c.energy_per_training_sample_j is None and c.synaptic_updates_per_sample is None


def test_a_fixed_tick_sets_latency_unless_the_busiest_core_overruns_it():
    tick = {"timing__time_step_us": fig(1000.0), "timing__synaptic_op_ns": {"unknown": "x"},
            "timing__synaptic_ops_per_second_per_core": fig(1e6)}
    c = one_layer_costs(costed_chip(**tick))
    assert c.latency_per_inference_s == pytest.approx(10 * 1e-3)  # 300 ops at 1e6/s = 0.3 ms < 1 ms
    slow = dict(tick, timing__synaptic_ops_per_second_per_core=fig(1e5))
    c = one_layer_costs(costed_chip(**slow))
    assert c.latency_per_inference_s == pytest.approx(10 * 3e-3 + 10 * 100e-9)
    assert any("real-time operation is not possible" in n for n in c.notes)


def test_reflect_padding_tap_counts_by_hand():
    # a 3x3 input padded by 1 (reflect) is read by 3x3 windows: rows are read [2, 5, 2] times
    layer = conv_layer("c", (1, 3, 3), 1, 3, padding=1)
    expected = np.outer([2, 5, 2], [2, 5, 2])
    assert np.array_equal(_tap_counts(layer), expected)
    assert expected.sum() == layer.positions * 9


def test_convolution_synops_use_the_rate_of_each_input_pixel():
    layer = conv_layer("c", (1, 3, 3), 4, 3, padding=1)
    rates = np.arange(9, dtype=float).reshape(1, 3, 3) / 10
    act = LayerActivity(float(rates.mean()), 0.1, input_rates=rates)
    expected = 4 * float((rates[0] * np.outer([2, 5, 2], [2, 5, 2])).sum())
    assert feedforward_synops_per_step(layer, act) == pytest.approx(expected)
    uniform = LayerActivity(0.3, 0.1, input_rates=np.full((1, 3, 3), 0.3))
    assert feedforward_synops_per_step(layer, uniform) == pytest.approx(layer.synapses * 0.3)


def test_wta_circuit_and_splits_add_their_spikes():
    chip = costed_chip()
    layer = linear_layer("l", 20, 30, rule="softhebb")
    act = uniform_activity([layer], 0.1)
    with_wta = estimate_costs([layer], map_network([layer], chip, 8, wta=True), act, chip, 10)
    without = estimate_costs([layer], map_network([layer], chip, 8, wta=False), act, chip, 10)
    # interneuron in and out: 2 x 30 neurons x 0.1 per step, 10 steps
    assert with_wta.synops_per_inference - without.synops_per_inference == pytest.approx(60)


def test_loihi_mnist_mlp_inference_energy_by_hand():
    """784 -> 2000 at input rate 0.1, 32 steps: 785x2000 x 0.1 x 32 synaptic ops at 23.6 pJ dominate."""
    from neurohebb.config import resolve_config
    from neurohebb.feasibility.netspec import network_layers

    loihi = load_chip("loihi")
    layers = network_layers(resolve_config("mnist-mlp"))
    activity = ActivityProfile({"block0": LayerActivity(0.1, 0.0), "readout": LayerActivity(0.0, 0.0)}, "t", False)
    mapping = map_network(layers, loihi, 9)
    c = estimate_costs(layers, mapping, activity, loihi, 32)
    synops = 784 * 2000 * 0.1 * 32
    neurons = 32 * (2000 + 1 + 10) * 52e-12  # all idle (rate 0)
    assert c.synops_per_inference == pytest.approx(synops)
    assert c.energy_per_inference_j == pytest.approx(synops * 23.6e-12 + neurons)
    assert c.synaptic_updates_per_sample == 2000 * 784  # the WTA feedback synapse does not learn
