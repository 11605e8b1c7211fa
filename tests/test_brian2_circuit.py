"""The spiking soft-WTA circuit against closed forms: membrane response, soft-WTA firing, winner.

All simulations use Brian2's numpy target (no compilation) and a constant, deterministic drive:
an input with rate*dt = 1 spikes on every step, so the membrane follows an exact geometric
series and the expected spike counts are sums of the softmax over that series.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

pytest.importorskip("brian2")
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")  # Brian2's pyparsing calls

from neurohebb.backends.brian2 import CircuitParams, SpikingSoftWTA, select_target, softmax_np  # noqa: E402
from neurohebb.backends.brian2 import runtime  # noqa: E402
from neurohebb.errors import BackendUnavailable, ConfigError, DataError  # noqa: E402

DT = 0.0005
TAU = 0.01


@pytest.fixture(autouse=True, scope="module")
def _numpy_target():
    select_target("numpy")


def _constant_drive_params(**kw) -> CircuitParams:
    # input_rate*dt = 1: every input with x = 1 fires on every step (a constant current)
    base = dict(beta=2.0, tau_m=TAU, input_rate=1.0 / DT, output_rate=400.0, duration=0.04, dt=DT)
    base.update(kw)
    return CircuitParams(**base)


def _membrane_closed_form(w_dot_x: np.ndarray, steps: int) -> np.ndarray:
    """u after step n (n = 0..steps-1) from rest for a spike on every step: each spike adds
    w*dt/tau and the membrane decays by q = exp(-dt/tau) per step, so
    u_n = w*(dt/tau)*(1 - q^(n+1))/(1 - q) -> w*(dt/tau)/(1 - q) ~ w (the rate model's u)."""
    q = math.exp(-DT / TAU)
    n = np.arange(steps)[:, None]
    return w_dot_x[None, :] * (DT / TAU) * (1 - q ** (n + 1)) / (1 - q)


def test_membrane_matches_closed_form_response_to_constant_input():
    w = np.array([[0.5, 0.25], [-0.3, 0.1], [0.0, 0.0]])
    params = _constant_drive_params()
    rec = SpikingSoftWTA(w, None, params).present(np.ones((2, 2)), seed=3, record_membrane=True)
    steps = params.steps_per_sample
    expected = _membrane_closed_form(w.sum(axis=1), steps)
    assert rec.membrane.shape == (2 * steps, 3)
    for s in range(2):  # every presentation restarts from rest
        np.testing.assert_allclose(rec.membrane[s * steps:(s + 1) * steps], expected, rtol=1e-9, atol=1e-12)
    # the stationary membrane is the rate model's u = w.x, up to the discretisation (dt/tau)/(1-q) - 1
    q = math.exp(-DT / TAU)
    assert (DT / TAU) / (1 - q) == pytest.approx(1.0, abs=DT / TAU)


def test_bias_sets_the_resting_potential():
    w = np.zeros((2, 3))
    bias = np.array([0.7, -0.2])
    rec = SpikingSoftWTA(w, bias, _constant_drive_params()).present(np.zeros((1, 3)), record_membrane=True)
    np.testing.assert_allclose(rec.membrane, np.broadcast_to(bias, rec.membrane.shape), atol=1e-12)


@pytest.mark.parametrize("scale, beta", [(1.0, 2.0), (100.0, 12.0)])
def test_spike_counts_follow_the_softmax_of_the_membrane(scale, beta):
    """Expected count of neuron k = sum over steps of R*dt*softmax(beta*u')_k, where u' is the
    membrane the threshold sees (decayed, before that step's input): the global inhibition
    normalises the rates exactly -- also when beta*u reaches ~1200, far beyond exp's float64 range."""
    w = scale * np.array([[0.6, 0.4], [0.5, 0.1], [0.0, 0.2], [-0.4, 0.0]])
    params = _constant_drive_params(beta=beta)
    n = 150
    rec = SpikingSoftWTA(w, None, params).present(np.ones((n, 2)), seed=11)
    steps = params.steps_per_sample
    u_end = _membrane_closed_form(w.sum(axis=1), steps)
    u_seen = np.vstack([np.zeros((1, 4)), u_end[:-1]]) * math.exp(-DT / TAU)
    p = params.output_rate * DT * softmax_np(u_seen, params.beta)  # spike probability per step
    expected = n * p.sum(axis=0)
    sd = np.sqrt(n * (p * (1 - p)).sum(axis=0))
    counts = rec.counts().sum(axis=0)
    assert np.all(np.abs(counts - expected) < 5 * sd), (counts, expected, sd)
    # the population's total rate is R whatever the drive: R*T spikes per presentation on average
    assert counts.sum() / n == pytest.approx(params.output_rate * params.duration, rel=0.05)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_triangle_circuit_counts_estimate_the_triangle_activation(power):
    """Subtractive inhibition by the mean membrane: neuron k fires with probability
    gain*dt*relu(u'_k - mean u')**p per step. Dividing counts by gain * effective_time must give
    the rate model's Triangle(W x) (neurohebb.activations.triangle), in expectation."""
    import torch

    from neurohebb.activations import triangle
    from neurohebb.backends.brian2 import count_features

    w = np.array([[0.6, 0.4], [0.5, 0.1], [0.0, 0.2], [-0.4, 0.0], [0.3, 0.3]])
    x = np.ones((1, 2))
    params = _constant_drive_params(activation="triangle", power=power, gain=300.0)
    n = 150
    rec = SpikingSoftWTA(w, None, params).present(np.repeat(x, n, axis=0), seed=7)
    steps = params.steps_per_sample
    # closed form of the expected count from the membrane's geometric series
    u_end = _membrane_closed_form(w.sum(axis=1), steps)
    u_seen = np.vstack([np.zeros((1, 5)), u_end[:-1]]) * math.exp(-DT / TAU)
    p = params.gain * DT * np.maximum(u_seen - u_seen.mean(axis=1, keepdims=True), 0) ** power
    expected = n * p.sum(axis=0)
    sd = np.sqrt(n * (p * (1 - p)).sum(axis=0))
    counts = rec.counts().sum(axis=0)
    assert np.all(np.abs(counts - expected) <= 5 * sd + 1e-9), (counts, expected, sd)
    assert counts[3] == 0 and counts[2] == 0  # below-average neurons never fire
    # and the scaled counts estimate the rate model's activation
    rate = triangle(torch.tensor(x @ w.T), power, dim=1).numpy()[0]
    estimate = count_features(rec.counts(), params).mean(axis=0)
    assert np.all(np.abs(estimate - rate) <= 5 * sd / (n * params.gain * params.effective_time()) + 1e-12), (estimate, rate)


def test_effective_time_integrates_the_membrane_rise():
    params = _constant_drive_params(activation="triangle", power=1.0, gain=1.0)
    q = math.exp(-DT / TAU)
    n = params.steps_per_sample
    by_hand = sum(DT * q * (DT / TAU) / (1 - q) * (1 - q ** k) for k in range(n))
    assert params.effective_time() == pytest.approx(by_hand, rel=1e-12)
    # continuous limit: T - tau * (1 - exp(-T/tau)), within the discretisation error O(dt/tau) = 5 %
    # (the threshold sees the membrane one step late and decayed by exp(-dt/tau) ~ 1 - dt/tau)
    T = params.duration
    assert params.effective_time() == pytest.approx(T - TAU * (1 - math.exp(-T / TAU)), rel=DT / TAU)
    assert params.effective_time(0.01) < params.effective_time()


def test_total_rate_is_independent_of_input_strength():
    w = np.eye(4) * 2.0
    params = _constant_drive_params(input_rate=400.0)
    weak, strong = np.full((60, 4), 0.05), np.full((60, 4), 1.0)
    circuit = SpikingSoftWTA(w, None, params)
    totals = [circuit.present(x, seed=5).counts().sum() / 60 for x in (weak, strong)]
    # 60 presentations of mean R*T = 16 spikes: sd of the mean ~0.5 spike (~3 %)
    assert totals == pytest.approx([params.output_rate * params.duration] * 2, rel=0.12)


def test_inhibition_picks_the_tuned_neuron_on_a_hand_built_case():
    """Neuron k is tuned to input k; a one-hot image makes k the winner and, with beta*w = 8,
    it should take ~softmax(8 * [1, 0, 0, 0...])_k = e^8/(e^8 + K - 1) of the spikes."""
    K = 5
    w = np.eye(K)
    params = CircuitParams(beta=8.0, tau_m=TAU, input_rate=1.0 / DT, output_rate=500.0, duration=0.1, dt=DT)
    x = np.eye(K)[[0, 3, 1, 4, 2, 2, 0]]
    counts = SpikingSoftWTA(w, None, params).present(x, seed=2).counts()
    assert np.array_equal(counts.argmax(axis=1), x.argmax(axis=1))
    share = counts.max(axis=1) / counts.sum(axis=1)
    assert share.mean() > 0.9  # e^8/(e^8+4) = 0.9987 once the membrane is up; the rise costs a bit
    # a soft, not hard, WTA: with two equally driven neurons the spikes split about evenly
    w2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    split = SpikingSoftWTA(w2, None, params).present(np.tile([1.0, 0.0], (20, 1)), seed=4).counts().sum(axis=0)
    assert split[2] < 0.02 * split.sum()
    assert abs(split[0] - split[1]) < 4 * math.sqrt(split[0] + split[1])


def test_numpy_and_chunked_presentations_are_reproducible():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 10)) / math.sqrt(10)
    x = rng.uniform(size=(140, 10))  # more than one TimedArray chunk (128)
    params = CircuitParams(beta=3.0, duration=0.005, dt=DT, input_rate=200.0, output_rate=1000.0)
    a = SpikingSoftWTA(w, None, params).present(x, seed=9)
    b = SpikingSoftWTA(w, None, params).present(x, seed=9)
    assert np.array_equal(a.counts(), b.counts())
    # every chunk sees its own images: the last samples are not silent or stuck on chunk 1
    assert a.counts()[128:].sum(axis=1).min() >= 0 and a.counts()[128:].sum() > 0


@pytest.mark.parametrize("kw, message", [
    (dict(input_rate=3000.0), "rate\\*dt must be <= 1"),
    (dict(output_rate=5000.0), "rate\\*dt must be <= 1"),
    (dict(duration=0.0102), "multiple of dt"),
    (dict(tau_m=-1.0), "tau_m must be a positive number"),
    (dict(beta=float("nan")), "beta must be a positive number"),
    (dict(activation="relu"), "implements the activations"),
    (dict(activation="triangle"), "needs a positive gain"),
])
def test_bad_circuit_parameters_are_rejected(kw, message):
    with pytest.raises(ConfigError, match=message):
        CircuitParams(**kw).validate()


def test_bad_inputs_and_weights_are_rejected():
    circuit = SpikingSoftWTA(np.zeros((2, 3)))
    with pytest.raises(DataError, match="in \\[0, 1\\]"):
        circuit.present(np.full((1, 3), 2.0))
    with pytest.raises(DataError, match="\\[samples, 3\\]"):
        circuit.present(np.zeros((1, 4)))
    with pytest.raises(DataError, match="finite"):
        SpikingSoftWTA(np.array([[np.nan, 0.0]]))


def test_missing_brian2_gives_one_line_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "brian2", None)  # makes `import brian2` raise ImportError
    with pytest.raises(BackendUnavailable) as info:
        runtime.require_brian2()
    message = str(info.value)
    assert "pip install" in message and "brian2" in message and "\n" not in message


def test_cli_reports_missing_brian2_as_one_line_error(monkeypatch, capsys, tmp_path):
    from neurohebb.cli import main

    monkeypatch.setitem(sys.modules, "brian2", None)
    code = main(["compare", "brian2", str(tmp_path), "--samples", "5"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("neurohebb: error:") and "pip install" in err and len(err.splitlines()) == 1


def test_target_selection_falls_back_to_numpy_without_a_compiler(monkeypatch):
    monkeypatch.setattr(runtime, "_cython_ok", False)
    assert select_target("auto") == "numpy"
    with pytest.raises(BackendUnavailable, match="--target numpy"):
        select_target("cython")
    with pytest.raises(ConfigError, match="choose one of"):
        select_target("cuda")
    monkeypatch.setattr(runtime, "_cython_ok", True)
    try:
        assert select_target("auto") == "cython"
    finally:
        select_target("numpy")  # the other tests here run on numpy


def test_compiled_cache_goes_to_the_user_cache_not_the_repository(monkeypatch, tmp_path):
    from pathlib import Path

    import brian2

    monkeypatch.delenv("NEUROHEBB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.cache_dir() == tmp_path / "xdg" / "neurohebb" / "brian2"
    monkeypatch.setenv("NEUROHEBB_CACHE_DIR", str(tmp_path / "c"))
    assert runtime.cache_dir() == tmp_path / "c" / "brian2"
    old = brian2.prefs.codegen.runtime.cython.cache_dir
    try:
        runtime._point_cache()
        assert brian2.prefs.codegen.runtime.cython.cache_dir == str(tmp_path / "c" / "brian2")
        assert (tmp_path / "c" / "brian2").is_dir()
    finally:
        brian2.prefs.codegen.runtime.cython.cache_dir = old
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("NEUROHEBB_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert repo not in runtime.cache_dir().parents
