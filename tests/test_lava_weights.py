"""Float -> Loihi weight format: exponent choice, saturation, sign modes, Lava's own truncation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohebb.backends.lava.weights import from_lava, mantissa_range, to_loihi
from neurohebb.errors import ConfigError
from neurohebb.precision import NumberFormat, quantize


def test_exponent_is_the_smallest_that_keeps_the_largest_weight():
    # max |w| = 1.0 with an 8-bit signed mantissa (qmax 127): 127 * 2^-7 < 1 <= 127 * 2^-6
    lw = to_loihi(np.array([[0.5, -1.0], [0.25, 0.1]]))
    assert lw.exponent == -6
    assert lw.mantissa.tolist() == [[32, -64], [16, 6]]  # 0.1 * 64 = 6.4 -> 6
    assert lw.saturated == 0
    assert lw.max_abs_error == pytest.approx(0.4 / 64)


def test_exact_power_of_two_boundary():
    # 127 * 2^-7 is representable exactly at exponent -7 (not -6)
    lw = to_loihi(np.array([[127 / 128, -0.5]]))
    assert lw.exponent == -7
    assert lw.mantissa.tolist() == [[127, -64]]
    assert lw.max_abs_error == 0.0


def test_all_zero_matrix():
    lw = to_loihi(np.zeros((3, 4)))
    assert lw.exponent == 0 and not lw.mantissa.any() and not lw.weights.any()


def test_weights_trained_with_the_m8_policy_deploy_losslessly():
    w = torch.randn(20, 30, generator=torch.Generator().manual_seed(0)) * 0.3
    trained = quantize(w, NumberFormat.shared_exp(8)).double().numpy()  # what `weight=m8` leaves in the model
    lw = to_loihi(trained, num_weight_bits=8)
    assert lw.max_abs_error == 0.0
    np.testing.assert_array_equal(lw.values(), trained)


def test_forced_exponent_saturates_and_counts():
    lw = to_loihi(np.array([[3.0, -3.0, 0.5]]), exponent=-6)  # range [-2, 127/64]
    assert lw.mantissa.tolist() == [[127, -128, 32]]
    assert lw.saturated == 2
    assert lw.max_abs_error == pytest.approx(3.0 - 127 / 64)


@pytest.mark.parametrize("bits, grid", [(8, 1), (7, 2), (4, 5), (2, 7)])
def test_lava_grid_matches_lava_truncation(bits, grid):
    """The integers we store survive Lava's own clip + truncation (weightutils) unchanged."""
    from neurohebb.backends.lava import require_lava

    require_lava()
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    rng = np.random.default_rng(bits)
    lw = to_loihi(rng.normal(size=(6, 9)), num_weight_bits=bits)
    assert lw.grid_shift == grid
    stored = lw.weights
    lo, hi = mantissa_range(bits, "mixed")
    assert stored.min() >= lo << grid and stored.max() <= hi << grid
    lava = truncate_weights(clip_weights(stored, SignMode.MIXED, num_bits=8), SignMode.MIXED, bits)
    np.testing.assert_array_equal(lava, stored)
    back = from_lava(lava, bits, "mixed", lw.exponent)
    np.testing.assert_array_equal(back.mantissa, lw.mantissa)


def test_excitatory_and_inhibitory_modes_use_the_sign_bit_for_magnitude():
    # 8 magnitude bits (0..255): 255 * 2^-8 < 1 <= 255 * 2^-7
    pos = to_loihi(np.array([[1.0, 0.5]]), num_weight_bits=8, sign_mode="excitatory")
    assert (pos.exponent, pos.grid_shift, pos.weights.tolist()) == (-7, 0, [[128, 64]])
    neg = to_loihi(np.array([[-1.0, -0.25]]), num_weight_bits=8, sign_mode="inhibitory")
    assert (neg.exponent, neg.weights.tolist()) == (-7, [[-128, -32]])
    assert mantissa_range(8, "excitatory") == (0, 255) and mantissa_range(8, "inhibitory") == (-255, 0)


def test_dense_output_unit_reproduces_the_float_product():
    """sum(stored weights of spiking inputs) * 2^weight_exp, times `unit`, is W x for binary x."""
    rng = np.random.default_rng(3)
    w = quantize(torch.from_numpy(rng.normal(size=(5, 12))), NumberFormat.shared_exp(8)).numpy()
    for weight_exp in (-3, 0, 2):
        lw = to_loihi(w, weight_exp=weight_exp)
        x = rng.random(12) < 0.5
        acc = lw.weights.astype(np.int64) @ x
        a = acc << weight_exp if weight_exp >= 0 else acc >> -weight_exp
        exact = weight_exp >= 0 or not (acc % (1 << -weight_exp)).any()
        if exact:
            np.testing.assert_allclose(a * lw.unit, w @ x)
        else:  # right shifts floor: within one unit below
            assert np.all(w @ x - a * lw.unit >= -1e-12) and np.all(w @ x - a * lw.unit < lw.unit + 1e-12)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"w": np.ones((2, 2, 2))}, "2-D"),
        ({"w": np.array([[np.nan, 1.0]])}, "NaN"),
        ({"w": np.ones((2, 2)), "num_weight_bits": 9}, "at most 8 weight bits"),
        ({"w": np.ones((2, 2)), "num_weight_bits": 1}, "2..8 with mixed"),
        ({"w": np.ones((2, 2)), "rounding": "stochastic"}, "reproducible"),
        ({"w": -np.ones((2, 2)), "sign_mode": "excitatory"}, "non-negative"),
        ({"w": np.ones((2, 2)), "sign_mode": "bipolar"}, "sign mode"),
        ({"w": np.ones((2, 2)), "weight_exp": 9}, "outside Loihi's range"),
    ],
)
def test_bad_input_gets_a_one_line_error(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        to_loihi(**kwargs)
