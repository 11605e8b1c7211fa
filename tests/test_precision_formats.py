"""Number formats and rounding: hand-computed codes, edge cases, and unbiased stochastic rounding."""
from __future__ import annotations

import math

import pytest
import torch

from neurohebb.errors import ConfigError
from neurohebb.precision import NumberFormat, quantize, quantize_codes, shift_round


@pytest.mark.parametrize("text", ["s8.7", "u8.8", "s16.15", "u1.0", "s32.31", "m8", "um6", "float32", "s2.0"])
def test_format_string_round_trips(text):
    assert str(NumberFormat.parse(text)) == text
    assert NumberFormat.parse(str(NumberFormat.parse(text))) == NumberFormat.parse(text)


def test_aliases_and_case():
    assert NumberFormat.parse("M8E") == NumberFormat.shared_exp(8)
    assert NumberFormat.parse("FP32").is_float
    assert NumberFormat.parse(" S8.6 ") == NumberFormat(True, 8, 6)


def test_ranges_of_fixed_formats():
    s86 = NumberFormat.parse("s8.6")
    assert (s86.qmin, s86.qmax, s86.min_value, s86.max_value, s86.step) == (-128, 127, -2.0, 127 / 64, 1 / 64)
    u88 = NumberFormat.parse("u8.8")
    assert (u88.qmin, u88.qmax, u88.max_value) == (0, 255, 255 / 256)


@pytest.mark.parametrize(
    "bad, fragment",
    [("s0.0", "1 to 32 bits"), ("u33.0", "1 to 32 bits"), ("s8.9", "fractional bits do not fit"),
     ("s1.0", "at least 2 bits"), ("q8", "cannot read"), ("s8", "cannot read"), ("m8.3", "cannot read")],
)
def test_invalid_formats_are_rejected_with_a_fix(bad, fragment):
    with pytest.raises(ConfigError, match=fragment):
        NumberFormat.parse(bad)


def test_saturation_at_both_ends_and_negative_values():
    x = torch.tensor([-5.0, -2.0, -2.01, -0.75, 0.0, 1.984375, 1.99, 7.0, float("inf"), float("-inf")])
    q = quantize(x, "s8.6")
    expected = [-2.0, -2.0, -2.0, -0.75, 0.0, 1.984375, 1.984375, 1.984375, 1.984375, -2.0]
    assert q.tolist() == expected
    # unsigned: negatives saturate at zero
    assert quantize(torch.tensor([-0.3, 0.5, 1.0]), "u8.8").tolist() == [0.0, 0.5, 255 / 256]


def test_overflow_counts():
    res = quantize_codes(torch.tensor([-3.0, -2.0, 0.5, 2.0, 9.0]), NumberFormat.parse("s8.6"))
    assert (int(res.n_below), int(res.n_above)) == (1, 2)


def test_wrap_is_twos_complement():
    x = torch.tensor([8.0, 9.0, -9.0, 15.0, -16.0, 7.0])
    assert quantize(x, "s4.0", overflow="wrap").tolist() == [-8.0, -7.0, 7.0, -1.0, 0.0, 7.0]
    assert quantize(torch.tensor([16.0, -1.0, 17.0]), "u4.0", overflow="wrap").tolist() == [0.0, 15.0, 1.0]


def test_ties_round_half_to_even():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
    assert quantize(x, "s8.0").tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, -2.0]
    # ties at a fractional step: 0.375 in s8.2 is 1.5 steps of 0.25 -> 2 steps = 0.5
    assert quantize(torch.tensor([0.375, 0.125, -0.375]), "s8.2").tolist() == [0.5, 0.0, -0.5]


def test_truncate_and_floor_differ_only_for_negatives():
    x = torch.tensor([1.7, -1.7, -1.2, 2.0, -2.0])
    assert quantize(x, "s8.0", "truncate").tolist() == [1.0, -1.0, -1.0, 2.0, -2.0]
    assert quantize(x, "s8.0", "floor").tolist() == [1.0, -2.0, -2.0, 2.0, -2.0]


@pytest.mark.parametrize("fmt", ["s8.7", "u8.8", "s4.2", "m6", "s16.15"])
@pytest.mark.parametrize("rounding", ["nearest", "stochastic", "truncate", "floor"])
def test_outputs_are_representable_and_idempotent(fmt, rounding):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, generator=g) * 0.7
    f = NumberFormat.parse(fmt)
    q = quantize(x, f, rounding, generator=g)
    if f.kind == "fixed":
        codes = q.double() * 2**f.frac_bits
        assert torch.equal(codes, codes.round())
        assert codes.min() >= f.qmin and codes.max() <= f.qmax
    # already representable values are left alone by every rounding mode
    assert torch.equal(quantize(q, f, rounding, generator=g), q)


def test_nearest_error_is_at_most_half_a_step():
    x = torch.linspace(-0.99, 0.99, 10001)
    err = (quantize(x, "s8.7") - x).abs().max().item()
    assert err <= 2**-8 + 1e-9


def test_stochastic_rounding_is_unbiased():
    n = 200_000
    g = torch.Generator().manual_seed(1)
    for value in (0.3, -2.7, 0.0625, 5.5):
        q = quantize(torch.full((n,), value, dtype=torch.float64), "s16.0", "stochastic", generator=g)
        frac = value - math.floor(value)
        assert set(q.unique().tolist()) <= {math.floor(value), math.floor(value) + 1}
        sigma = math.sqrt(frac * (1 - frac) / n)
        assert abs(q.mean().item() - value) < 5 * sigma + 1e-12


def test_stochastic_rounding_is_reproducible_per_seed():
    x = torch.rand(1000, dtype=torch.float64)
    a = quantize(x, "s8.4", "stochastic", generator=torch.Generator().manual_seed(7))
    b = quantize(x, "s8.4", "stochastic", generator=torch.Generator().manual_seed(7))
    c = quantize(x, "s8.4", "stochastic", generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_shared_exponent_uses_the_full_mantissa():
    res = quantize_codes(torch.tensor([1.0, -0.25, 0.001]), NumberFormat.parse("m8"))
    # smallest e with 1.0 <= 127 * 2**e is -6 (127/64 >= 1 > 127/128)
    assert res.exponent == -6
    assert res.codes.tolist() == [64.0, -16.0, 0.0]
    big = quantize_codes(torch.tensor([700.0, -3.0]), NumberFormat.parse("m8"))
    assert big.exponent == 3 and big.codes.abs().max() <= 127
    assert quantize(torch.zeros(3), "m8").tolist() == [0.0, 0.0, 0.0]


def test_float32_is_identity_on_float32():
    x = torch.randn(10)
    assert torch.equal(quantize(x, "float32"), x)


def test_unknown_modes_are_rejected():
    with pytest.raises(ConfigError, match="rounding mode"):
        quantize(torch.zeros(2), "s8.7", rounding="up")
    with pytest.raises(ConfigError, match="overflow mode"):
        quantize(torch.zeros(2), "s8.7", overflow="clip")


@pytest.mark.parametrize("rounding", ["nearest", "stochastic", "truncate", "floor"])
def test_integer_shift_matches_float_rounding(rounding):
    """The integer engine's right shift gives the same codes as rounding the exact float value."""
    v = torch.randint(-(2**20), 2**20, (5000,), generator=torch.Generator().manual_seed(3))
    v = torch.cat([v, torch.tensor([8, 24, -8, -24, 40, -40, 0, 7, -7])])  # exact ties at shift 4
    q_int = shift_round(v, 4, rounding, torch.Generator().manual_seed(5))
    q_flt = quantize_codes(v.double() / 16, NumberFormat(True, 32, 0), rounding, generator=torch.Generator().manual_seed(5)).codes
    assert torch.equal(q_int.double(), q_flt)


@pytest.mark.parametrize("fmt", ["s8.5", "m6"])
def test_quantize_codes_leaves_its_input_alone_unless_told(fmt):
    from neurohebb.precision import NumberFormat, quantize_codes

    x = torch.linspace(-1.3, 1.7, 101, dtype=torch.float64)
    before = x.clone()
    kept = quantize_codes(x, NumberFormat.parse(fmt), "stochastic", generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, before)
    given = quantize_codes(x, NumberFormat.parse(fmt), "stochastic", generator=torch.Generator().manual_seed(0), inplace=True)
    assert torch.equal(given.codes, kept.codes) and given.exponent == kept.exponent
