"""Spike coding: exact counts of the rate code, one spike per pixel for TTFS, reproducible Poisson."""
from __future__ import annotations

import numpy as np
import pytest

from neurohebb.backends.lava.encoding import encode, encode_step, spike_counts
from neurohebb.errors import ConfigError

PIXELS = np.array([[0, 1, 64, 127, 128, 200, 254, 255]], dtype=np.uint8)


def test_rate_code_fires_round_steps_times_p_over_255():
    steps = 10
    trains = encode(PIXELS, steps, "rate")
    # round(10 * p / 255), halves up: 0, 0 (0.04), 3 (2.51), 5 (4.98), 5 (5.02), 8 (7.84), 10 (9.96), 10
    assert trains.sum(axis=1).tolist() == [[0, 0, 3, 5, 5, 8, 10, 10]]
    np.testing.assert_array_equal(trains.sum(axis=1), spike_counts(PIXELS, steps))


def test_rate_code_is_regular():
    train = encode(np.array([[128]], dtype=np.uint8), 8, "rate")[0, :, 0]
    assert train.astype(int).tolist() == [1, 0, 1, 0, 1, 0, 1, 0]  # p ~ 1/2: every other step


def test_ttfs_sends_one_spike_at_steps_minus_count():
    steps = 10
    trains = encode(PIXELS, steps, "ttfs")[0]  # [T, I]
    counts = spike_counts(PIXELS, steps)[0]
    for i, c in enumerate(counts):
        times = np.nonzero(trains[:, i])[0].tolist()
        assert times == ([] if c == 0 else [steps - c])
    # a neuron whose current persists integrates c_i steps of each weight: same total as the rate code
    remaining = np.where(trains.any(axis=0), steps - trains.argmax(axis=0), 0)
    np.testing.assert_array_equal(remaining, counts)


def test_poisson_is_reproducible_per_sample_and_unbiased():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 30), dtype=np.uint8)
    whole = encode(images, 16, "poisson", seed=3)
    tail = encode(images[2:], 16, "poisson", seed=3, sample_offset=2)
    np.testing.assert_array_equal(whole[2:], tail)  # sample 2 gets the same spikes alone or in a batch
    assert not np.array_equal(encode(images, 16, "poisson", seed=4), whole)
    for step in (0, 7, 15):
        np.testing.assert_array_equal(encode_step(images, step, 16, "poisson", seed=3), whole[:, step])
    assert not encode(np.zeros((1, 4), np.uint8), 50, "poisson").any()
    assert encode(np.full((1, 4), 255, np.uint8), 50, "poisson").all()
    big = encode(np.full((1, 1), 51, np.uint8), 20000, "poisson").mean()  # p = 0.2
    assert abs(big - 0.2) < 0.01


@pytest.mark.parametrize("coding", ["rate", "ttfs"])
def test_encode_step_matches_encode(coding):
    images = np.random.default_rng(1).integers(0, 256, size=(3, 20), dtype=np.uint8)
    whole = encode(images, 12, coding)
    for step in range(12):
        np.testing.assert_array_equal(encode_step(images, step, 12, coding), whole[:, step])
    assert not encode_step(images, 12, 12, coding).any()  # the silent gap after the sample


def test_bad_input():
    with pytest.raises(ConfigError, match="choose one of: rate, poisson, ttfs"):
        encode(PIXELS, 4, "burst")
    with pytest.raises(ConfigError, match="uint8"):
        encode(PIXELS.astype(np.float32) / 255, 4, "rate")
    with pytest.raises(ConfigError, match=">= 1"):
        encode(PIXELS, 0, "rate")
