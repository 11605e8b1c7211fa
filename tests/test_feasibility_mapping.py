"""Mapping onto cores, checked against hand-computed placements of small networks."""
from __future__ import annotations

import math

import pytest

from neurohebb.config import resolve_config
from neurohebb.feasibility.chips import blank_chip_dict, chip_from_dict, load_chip
from neurohebb.feasibility.mapping import map_layer, map_network
from neurohebb.feasibility.netspec import conv_layer, linear_layer, network_layers
from neurohebb.feasibility.storage import weight_storage
from neurohebb.precision import PrecisionPolicy


def fig(value):
    return {"value": value, "source": "mydoc, test figure"}


def toy_chip(**architecture):
    """A chip with only the given architecture figures known (plus 8-bit fixed weights, no sharing)."""
    data = blank_chip_dict("toy")
    data["architecture"]["weight_sharing"] = fig("replicate")
    for name, value in architecture.items():
        data["architecture"][name] = fig(value)
    data["weights"].update(min_bits=fig(1), max_bits=fig(8), learning_state_bits_per_synapse=fig(0))
    return chip_from_dict(data)


def test_small_linear_layer_fits_one_core_with_the_memory_it_uses():
    chip = toy_chip(neurons_per_core=100, synaptic_memory_bits_per_core=8000)
    m = map_layer(linear_layer("l", 20, 30, rule="supervised"), chip, bits_per_synapse=8, wta=False)
    (pop,) = m.populations
    assert (m.fits, m.cores, pop.neurons_per_core, pop.limited_by) == (True, 1, 30, "population size")
    assert pop.memory_bits_per_core == 30 * 20 * 8
    assert pop.memory_utilisation == pytest.approx(30 * 20 * 8 / 8000)


def test_memory_limits_neurons_per_core():
    chip = toy_chip(neurons_per_core=100, synaptic_memory_bits_per_core=8000)
    m = map_layer(linear_layer("l", 20, 300, rule="supervised"), chip, bits_per_synapse=8, wta=False)
    (pop,) = m.populations
    # 20 synapses x 8 bits = 160 bits per neuron; 8000 // 160 = 50 neurons per core
    assert (pop.neurons_per_core, pop.limited_by, m.cores) == (50, "synaptic memory", 6)
    assert m.stored_synapses == 300 * 20


def test_fewer_weight_bits_fit_more_neurons_per_core():
    chip = toy_chip(neurons_per_core=1000, synaptic_memory_bits_per_core=8000)
    layer = linear_layer("l", 20, 300, rule="supervised")
    assert map_layer(layer, chip, 8, wta=False).populations[0].neurons_per_core == 50
    assert map_layer(layer, chip, 4, wta=False).populations[0].neurons_per_core == 100
    assert map_layer(layer, chip, 4, wta=False).cores == 3


def test_the_wta_circuit_adds_an_interneuron_and_one_feedback_synapse_per_neuron():
    chip = toy_chip(neurons_per_core=1000, synaptic_memory_bits_per_core=8000)
    m = map_layer(linear_layer("l", 20, 30, rule="softhebb"), chip, bits_per_synapse=8, wta=True)
    exc, inh = m.populations
    assert (exc.role, exc.fan_in, exc.neurons) == ("excitatory", 21, 30)
    assert (inh.role, inh.fan_in, inh.neurons) == ("inhibitory", 30, 1)
    assert m.neurons == 31
    assert m.stored_synapses == 30 * 21 + 30
    assert m.plastic_synapses == 30 * 20  # the feedback synapse does not learn


def test_lateral_inhibition_adds_k_by_k_fixed_synapses_and_k_input_lines():
    chip = toy_chip(neurons_per_core=1000, synaptic_memory_bits_per_core=100_000, max_input_axons_per_core=1000)
    m = map_layer(linear_layer("l", 20, 30, rule="softhebb"), chip, bits_per_synapse=8, wta=True, lateral=True)
    exc, inh = m.populations
    assert (exc.fan_in, inh.fan_in) == (20 + 1 + 30, 30)  # pixels, the interneuron, the 30 neurons of the group
    assert m.stored_synapses == 30 * 51 + 30
    assert m.plastic_synapses == 30 * 20
    assert exc.inputs_per_core == 20 + 1 + 30
    # K = 600: 621 synapses x 8 bits a neuron -> 20 neurons per 100 kbit core (30 cores), against 595 without
    wide = linear_layer("l", 20, 600, rule="softhebb")
    with_lateral, without = map_layer(wide, chip, 8, wta=True, lateral=True), map_layer(wide, chip, 8, wta=True)
    assert [p.neurons_per_core for p in with_lateral.populations[:1] + without.populations[:1]] == [20, 595]
    assert (with_lateral.cores, without.cores) == (30 + 1, 2 + 1)  # + the interneuron's core


def test_an_on_chip_run_counts_its_lateral_synapses_in_the_report():
    from neurohebb.feasibility.analysis import analyse_config

    chip = load_chip("loihi2")
    policy = PrecisionPolicy.parse("weight=m8")
    on_chip = resolve_config("mnist-wta100", None, ['onchip.chip="loihi2"'])
    float_run = resolve_config("mnist-wta100", None, [])
    reports = [analyse_config(c, [chip], policy, activity_rate=0.05) for c in (on_chip, float_run)]
    assert [r["lateral_inhibition"] for r in reports] == [True, False]
    stored = [sum(layer["stored_synapses"] for layer in r["chips"][0]["mapping"]["layers"]) for r in reports]
    assert stored[0] - stored[1] == 100 * 100  # one position, K = 100


def test_unrolled_convolution_is_placed_position_by_position_under_the_axon_limit():
    # input 2x6x6, 4 channels, k3 -> 4x4 positions, fan-in 18 per neuron
    layer = conv_layer("c", (2, 6, 6), 4, 3, rule="supervised")
    assert (layer.positions, layer.fan_in, layer.neurons) == (16, 18, 64)
    roomy = toy_chip(neurons_per_core=10, synaptic_memory_bits_per_core=10**6, max_input_axons_per_core=100)
    m = map_layer(layer, roomy, 8, wta=False)
    (pop,) = m.populations
    # 10 neurons per core, group-aligned: 2 whole positions (8 neurons) per core -> 8 cores
    assert (pop.neurons_per_core, m.cores) == (8, 8)
    # two neighbouring positions in a row read a 3x4 patch of both channels
    assert pop.inputs_per_core == 3 * 4 * 2
    tight = toy_chip(neurons_per_core=10, synaptic_memory_bits_per_core=10**6, max_input_axons_per_core=20)
    m = map_layer(layer, tight, 8, wta=False)
    (pop,) = m.populations
    assert (pop.neurons_per_core, m.cores, pop.limited_by, pop.inputs_per_core) == (4, 16, "input axons per core", 18)
    assert m.stored_synapses == 64 * 18  # replicated kernel: every position stores its own copy


def test_shared_weights_store_each_kernel_once_per_core():
    data = blank_chip_dict("toy")
    data["architecture"].update(neurons_per_core=fig(64), synaptic_memory_bits_per_core=fig(10**6), weight_sharing=fig("shared"))
    chip = chip_from_dict(data)
    layer = conv_layer("c", (2, 6, 6), 4, 3, rule="softhebb")
    m = map_layer(layer, chip, 8, wta=False)
    (pop,) = m.populations
    assert (m.cores, pop.neurons_per_core, pop.synapses_per_core) == (1, 64, 4 * 18)
    assert m.stored_synapses == 4 * 18


def test_fan_in_beyond_a_core_is_split_into_partial_sums():
    chip = toy_chip(neurons_per_core=256, synaptic_memory_bits_per_core=65536, max_input_axons_per_core=256, max_fan_in_per_neuron=256)
    m = map_layer(linear_layer("l", 785, 10, rule="supervised"), chip, bits_per_synapse=1, wta=False)
    partial, combine = m.populations
    assert m.split == math.ceil(785 / 256) == 4
    assert (partial.role, partial.fan_in, partial.copies, partial.cores) == ("partial", 197, 4, 4)
    assert (combine.role, combine.fan_in, combine.cores) == ("combine", 4, 1)
    assert m.cores == 5 and m.neurons == 10 * 4 + 10
    assert any("split into 4 partial-sum neurons" in n for n in m.notes)


def test_a_neuron_that_never_fits_is_reported_not_placed():
    chip = toy_chip(neurons_per_core=10, synaptic_memory_bits_per_core=4)
    m = map_layer(linear_layer("l", 3, 2, rule="supervised"), chip, bits_per_synapse=8, wta=False)
    assert not m.fits
    assert any("cannot be placed" in n for n in m.notes)


def test_a_chip_without_any_capacity_figure_cannot_place():
    chip = chip_from_dict(blank_chip_dict("empty"))
    m = map_layer(linear_layer("l", 3, 2, rule="supervised"), chip, bits_per_synapse=8, wta=False)
    assert not m.fits and "no per-core capacity" in m.notes[0]


def test_network_totals_and_chip_count():
    chip = toy_chip(cores_per_chip=4, neurons_per_core=100, synaptic_memory_bits_per_core=8000)
    layers = [linear_layer("a", 20, 300, rule="supervised"), linear_layer("b", 300, 10, rule="supervised")]
    nm = map_network(layers, chip, weight_bits=8, wta=False)
    # a: 6 cores (above); b: 300 x 8 bits = 2400 bits per neuron -> 3 per core -> 4 cores
    assert [m.cores for m in nm.layers] == [6, 4]
    assert (nm.total_cores, nm.chips, nm.fits) == (10, 3, True)


def test_loihi_mnist_mlp_mapping_matches_hand_arithmetic():
    """784 -> 2000 soft-WTA layer on Loihi at 9-bit weights: 785 synapses (with WTA feedback) x 9 bits
    = 7065 bits per neuron; 128 KB = 1,048,576 bits -> 148 neurons per core -> 14 cores, plus one
    core for the interneuron; the readout (2000 -> 10) fits one core."""
    loihi = load_chip("loihi")
    layers = network_layers(resolve_config("mnist-mlp"))
    bits = weight_storage(loihi, PrecisionPolicy.parse(None)).bits
    assert bits == 9
    nm = map_network(layers, loihi, bits)
    block = nm.layer("block0")
    exc = block.populations[0]
    assert exc.neurons_per_core == 1_048_576 // (785 * 9) == 148
    assert exc.cores == math.ceil(2000 / 148) == 14
    assert block.cores == 15 and nm.layer("readout").cores == 1
    assert nm.chips == 1


def test_policy_weight_bits_are_clipped_to_what_the_chip_stores():
    loihi = load_chip("loihi")
    assert weight_storage(loihi, PrecisionPolicy.parse("weight=s4.3")).bits == 4
    wide = weight_storage(loihi, PrecisionPolicy.parse("weight=s16.15"))
    assert wide.bits == 9 and not wide.exact and "at most 9 bits" in wide.note
    assert weight_storage(load_chip("spinnaker2"), PrecisionPolicy.parse(None)).exact
