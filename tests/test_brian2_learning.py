"""Spiking plasticity: the spike-triggered rule drifts like SoftHebb in expectation, and a small
online comparison with the rate-based layer (numpy target, bundled digits)."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("brian2")
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")  # Brian2's pyparsing calls

from neurohebb.backends.brian2 import CircuitParams, SpikeRule, SpikingSoftWTA, select_target, softmax_np  # noqa: E402
from neurohebb.errors import ConfigError  # noqa: E402

DT, TAU = 0.0005, 0.01


@pytest.fixture(autouse=True, scope="module")
def _numpy_target():
    select_target("numpy")


@pytest.mark.parametrize("schedule", ["constant", "norm-adaptive"])
def test_spike_rule_drifts_as_softhebb_in_expectation(schedule):
    """With a constant drive (every input spikes every step) trace and membrane are known
    sequences: xhat_n = s (1 - q^(n+1)), u_n = W xhat_n. Each spike of neuron k (probability
    R dt softmax(beta u'_n)_k) adds eta * f_k * (xhat_n - u_kn w_k), so the expected total change
    over many presentations is a closed-form sum. eta is tiny, so the weights barely move."""
    w0 = np.array([[0.6, 0.4], [0.5, 0.1], [0.0, 0.2]])
    params = CircuitParams(beta=2.0, tau_m=TAU, input_rate=1.0 / DT, output_rate=400.0, duration=0.04, dt=DT)
    eta, n = 1e-5, 150
    rule = SpikeRule(eta, schedule, 0.5)
    rec = SpikingSoftWTA(w0, None, params, rule).present(np.ones((n, 2)), seed=21)
    dw = rec.weight - w0

    q = math.exp(-DT / TAU)
    steps = np.arange(params.steps_per_sample)
    xhat = (DT / TAU) * (1 - q ** (steps + 1)) / (1 - q)  # [steps], same for both inputs
    u = w0.sum(axis=1)[None, :] * xhat[:, None]  # [steps, K], after the step's input
    u_seen = np.vstack([np.zeros((1, 3)), u[:-1]]) * q  # what the threshold sees
    p = params.output_rate * DT * softmax_np(u_seen, params.beta)  # [steps, K]
    factor = np.ones(3) if schedule == "constant" else (np.abs(np.linalg.norm(w0, axis=1) - 1) + 1e-10) ** 0.5
    per_spike = xhat[:, None, None] - u[:, :, None] * w0[None, :, :]  # [steps, K, I]
    expected = n * eta * factor[:, None] * (p[:, :, None] * per_spike).sum(axis=0)
    sd = math.sqrt(n) * eta * factor[:, None] * np.sqrt(((p * (1 - p))[:, :, None] * per_spike ** 2).sum(axis=0))
    assert np.all(np.abs(dw - expected) <= 5 * sd + 0.02 * np.abs(expected)), (dw, expected, sd)
    # the rule moves every neuron towards SoftHebb's fixed point: inputs it sees, norm 1
    assert np.all(np.sign(dw[expected != 0]) == np.sign(expected[expected != 0]))


def test_spike_rule_parameters_are_validated():
    with pytest.raises(ConfigError, match="eta must be > 0"):
        SpikeRule(0.0).validate()
    with pytest.raises(ConfigError, match="lr_schedule"):
        SpikeRule(1e-3, "cosine").validate()


def test_online_spiking_plasticity_learns_like_the_rate_rule():
    """A small version of `neurohebb compare brian2-learning`: same initial weights, same 300
    digits in the same order, same readout procedure."""
    import torch

    from neurohebb.backends.brian2 import compare_learning, learning_config
    from neurohebb.data import load_dataset

    torch.set_num_threads(1)
    config = learning_config("digits", neurons=20, train_samples=300, test_samples=150, lr=0.01, readout_epochs=200, seed=0)
    ds = load_dataset("digits", train_subset=300, test_subset=150)
    params = CircuitParams(duration=0.05)
    m = compare_learning(config, ds, params)
    rate, spiking, initial = m["rate"]["test_accuracy"], m["spiking"]["test_accuracy"], m["initial"]["test_accuracy"]
    # both plastic layers learn: well above the untouched random weights (radius 35)
    assert rate > initial + 10 and spiking > initial + 10, m
    # and the spiking one about as well as the rate one
    assert abs(spiking - rate) <= 12, m
    # both pull the weights from radius 35 towards SoftHebb's unit-norm fixed point
    assert m["rate"]["weight_norm_mean"] < 12 and m["spiking"]["weight_norm_mean"] < 12, m
    # the learned layer, run as spikes, still classifies
    assert m["spiking"]["spiking_inference_accuracy"] > initial + 10, m
    assert m["train_samples"] == 300 and m["spiking"]["output_spikes_per_sample"] == pytest.approx(50, rel=0.1)


def test_learning_config_rejects_rules_the_circuit_cannot_run():
    from neurohebb.backends.brian2 import compare_learning, learning_config
    from neurohebb.config import resolve_config

    config = resolve_config("mnist-mlp", None, ["data.dataset=digits", "layers.0.out_channels=4"], device="cpu")
    with pytest.raises(ConfigError, match="normalize_update=false"):
        compare_learning(config, None)
    with pytest.raises(ConfigError, match="softmax or triangle"):
        learning_config(readout_activation="relu")
