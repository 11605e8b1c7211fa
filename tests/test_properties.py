"""Property-based tests (Hypothesis) of the parsers and the number formats.

Why properties: the parsers take anything a user types and the arithmetic takes any tensor;
hand-picked cases miss the odd input. Each parser must return a value or raise `ConfigError`
(never another exception), written forms must read back to the same value, and rounding must be
monotonic, saturate inside the format's range and (stochastic) be unbiased within a statistical
bound. Example counts are modest so the file runs in seconds.
"""
from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from neurohebb.config import config_from_dict, load_toml_dict, parse_override, resolve_config  # noqa: E402
from neurohebb.errors import ConfigError  # noqa: E402
from neurohebb.precision.formats import NumberFormat  # noqa: E402
from neurohebb.precision.policy import NORMS, ROLES, PrecisionPolicy, RoleSpec  # noqa: E402
from neurohebb.precision.rounding import OVERFLOWS, quantize, quantize_codes  # noqa: E402
from neurohebb.tomlio import dumps_toml  # noqa: E402

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------------------------
# Strategies


@st.composite
def fixed_formats(draw, max_bits: int = 16) -> NumberFormat:
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, max_bits))
    return NumberFormat.fixed(bits, draw(st.integers(0, bits)), signed)


@st.composite
def formats(draw) -> NumberFormat:
    kind = draw(st.sampled_from(["fixed", "shared", "float"]))
    if kind == "float":
        return NumberFormat.float32()
    if kind == "shared":
        signed = draw(st.booleans())
        return NumberFormat.shared_exp(draw(st.integers(2 if signed else 1, 24)), signed)
    return draw(fixed_formats(max_bits=32))


def _role_spec(fmt: NumberFormat, rounding: str, overflow: str) -> RoleSpec:
    # a float32 role rounds nothing: its rounding and overflow are the defaults by definition
    return RoleSpec(fmt) if fmt.is_float else RoleSpec(fmt, rounding, overflow)


role_specs = st.builds(_role_spec, formats(), st.sampled_from(["nearest", "stochastic", "truncate", "floor"]), st.sampled_from(OVERFLOWS))
policies = st.builds(lambda specs, norm: PrecisionPolicy(**dict(zip(ROLES, specs)), norm=norm),
                     st.lists(role_specs, min_size=len(ROLES), max_size=len(ROLES)), st.sampled_from(NORMS))


def only_config_errors(call, *args):
    """Run `call`; a ConfigError is an accepted answer, any other exception fails the test."""
    try:
        return call(*args)
    except ConfigError:
        return None


# ---------------------------------------------------------------------------------------------
# Precision strings and TOML


@FAST
@given(formats())
def test_number_format_strings_round_trip(fmt):
    assert NumberFormat.parse(str(fmt)) == fmt
    assert NumberFormat.parse(f"  {str(fmt).upper()} ") == fmt


@FAST
@given(st.text(max_size=12))
def test_any_format_text_parses_or_is_a_config_error(text):
    fmt = only_config_errors(NumberFormat.parse, text)
    if fmt is not None:
        assert NumberFormat.parse(str(fmt)) == fmt


@FAST
@given(policies)
def test_policy_strings_round_trip(policy):
    assert PrecisionPolicy.parse(str(policy)) == policy


@FAST
@given(st.text(alphabet=st.sampled_from(list("weightupdatnormlrs0123456789.=:,m xp")), max_size=40))
def test_any_policy_text_parses_or_is_a_config_error(text):
    policy = only_config_errors(PrecisionPolicy.parse, text)
    if policy is not None:
        assert PrecisionPolicy.parse(str(policy)) == policy


@FAST
@given(policies)
def test_policy_toml_tables_read_back(tmp_path_factory, policy):
    path = tmp_path_factory.mktemp("policy") / "p.toml"
    items = {role: str(policy.spec(role)) for role in ROLES if not policy.spec(role).is_float}
    table = "\n".join(f'{k} = "{v}"' for k, v in items.items()) + f'\nnorm = "{policy.norm}"\n'
    path.write_text("[precision]\n" + table)
    assert PrecisionPolicy.from_toml(str(path)) == policy


@FAST
@given(st.binary(max_size=60))
def test_any_bytes_as_a_toml_file_give_a_table_or_a_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("toml") / "c.toml"
    path.write_bytes(data)
    result = only_config_errors(load_toml_dict, path)
    assert result is None or isinstance(result, dict)


# ---------------------------------------------------------------------------------------------
# Number formats: saturation, monotonic rounding, idempotence, unbiased stochastic rounding


values = st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=64), min_size=1, max_size=40)


@FAST
@given(fixed_formats(), values, st.sampled_from(["nearest", "truncate", "floor", "stochastic"]))
def test_fixed_point_results_are_representable_and_saturate_in_range(fmt, xs, rounding):
    q = quantize(torch.tensor(xs, dtype=torch.float64), fmt, rounding, generator=torch.Generator().manual_seed(0))
    assert float(q.min()) >= fmt.min_value and float(q.max()) <= fmt.max_value
    codes = q / fmt.step
    assert torch.equal(codes, codes.round())


@FAST
@given(fixed_formats(), values, st.sampled_from(["nearest", "truncate", "floor"]))
def test_deterministic_rounding_is_monotonic_and_idempotent(fmt, xs, rounding):
    x = torch.tensor(sorted(xs), dtype=torch.float64)
    q = quantize(x, fmt, rounding)
    assert bool((q[1:] >= q[:-1]).all())
    assert torch.equal(quantize(q, fmt, rounding), q)


@FAST
@given(fixed_formats(), values)
def test_nearest_is_within_half_a_step_inside_the_range(fmt, xs):
    x = torch.tensor(xs, dtype=torch.float64).clamp(fmt.min_value, fmt.max_value)
    assert float((quantize(x, fmt) - x).abs().max()) <= fmt.step / 2


@settings(max_examples=25, deadline=None)
@given(fixed_formats(max_bits=12), st.floats(0, 1, allow_nan=False), st.integers(0, 2**31 - 1))
def test_stochastic_rounding_is_unbiased(fmt, fraction, seed):
    x0 = fmt.min_value + fraction * (fmt.max_value - fmt.min_value)  # inside the range: no saturation
    n = 4000
    q = quantize(torch.full((n,), x0, dtype=torch.float64), fmt, "stochastic", generator=torch.Generator().manual_seed(seed))
    # each draw is floor or ceil of x0: the mean's standard error is at most step / (2 sqrt(n));
    # 6 standard errors fail by chance with probability ~2e-9
    assert abs(float(q.mean()) - x0) <= 6 * fmt.step / (2 * math.sqrt(n)) + 1e-12
    assert set(torch.unique(q).tolist()) <= {math.floor(x0 / fmt.step) * fmt.step, math.ceil(x0 / fmt.step) * fmt.step}


@FAST
@given(st.integers(1, 12), st.booleans(), values)
@example(12, True, [1.4663761104242232e-306])  # found by hypothesis: its scale 2**1026 is no float
def test_shared_exponent_codes_stay_in_the_format(bits, signed, xs):
    if signed and bits < 2:
        bits = 2
    fmt = NumberFormat.shared_exp(bits, signed)
    q = quantize_codes(torch.tensor(xs, dtype=torch.float64), fmt)
    assert int(q.codes.min()) >= fmt.qmin and int(q.codes.max()) <= fmt.qmax  # unsigned: negatives saturate to 0
    if signed:  # the largest magnitude uses the mantissa without saturating
        biggest = max(abs(v) for v in xs)
        assert abs(float(q.codes.abs().max()) * 2.0**q.exponent - biggest) <= 2.0**q.exponent / 2 + 1e-9 * biggest


# ---------------------------------------------------------------------------------------------
# --set values and configs


@FAST
@given(st.integers(1, 10**6))
def test_integer_overrides_read_back(n):
    assert parse_override(f"hebbian.batch_size={n}") == {"hebbian": {"batch_size": n}}
    assert resolve_config("digits", overrides=[f"hebbian.batch_size={n}"]).hebbian.batch_size == n


@FAST
@given(st.floats(1e-6, 1.0, allow_nan=False))
def test_float_overrides_read_back(x):
    assert resolve_config("digits", overrides=[f"layers.1.lr={x!r}"]).layers[1].lr == x


KEYS = ["seed", "layers.0.lr", "layers.1.out_channels", "layers.9.kind", "readout.lr_gamma", "readout.lr_milestones",
        "hebbian.mode", "data.dataset", "layers", "readout", "nope.x", "layers.0", "layers.00.lr", ""]
RAW_VALUES = st.one_of(st.integers(-10**25, 10**25).map(str), st.floats(allow_nan=True).map(repr),
                       st.sampled_from(["true", "[]", "[1, -1]", "{}", '"x"', "inf", "-0.0", "[0.5, 1.0]", "'a", "1e400"]),
                       st.text(max_size=10))


@FAST
@given(st.sampled_from(KEYS), RAW_VALUES)
def test_any_override_gives_a_valid_config_or_a_config_error(key, raw):
    config = only_config_errors(resolve_config, "digits", None, [f"{key}={raw}"])
    if config is not None:  # what was accepted is valid and survives the run's config.toml
        assert config_from_dict(tomllib.loads(dumps_toml(config.to_dict()))) == config


@FAST
@given(st.integers(1, 64), st.integers(1, 50), st.floats(0.01, 50, allow_nan=False), st.booleans(),
       st.lists(st.floats(0.01, 1.0), max_size=4), st.floats(0.01, 1.0))
def test_configs_round_trip_through_toml(channels, epochs, t_invert, batchnorm, milestones, gamma):
    config = resolve_config("digits", overrides=[f"layers.0.out_channels={channels}", f"readout.epochs={epochs}",
                                                 f"layers.0.t_invert={t_invert!r}", f"layers.1.batchnorm={str(batchnorm).lower()}",
                                                 f"readout.lr_milestones=[{', '.join(map(repr, milestones))}]",
                                                 f"readout.lr_gamma={gamma!r}"])
    assert config_from_dict(tomllib.loads(dumps_toml(config.to_dict()))) == config


# ---------------------------------------------------------------------------------------------
# Chip files


LOIHI2 = Path(__file__).resolve().parents[1] / "neurohebb" / "hardware" / "loihi2.toml"


@pytest.fixture(scope="module")
def loihi2_dict() -> dict:
    return tomllib.loads(LOIHI2.read_text(encoding="utf-8"))


ODD_VALUES = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True), st.text(max_size=8), st.booleans(),
                       st.lists(st.integers(), max_size=3), st.just({}), st.just({"value": -1, "source": "x"}),
                       st.just({"value": "unknown"}), st.just({"source": "x"}))


@FAST
@given(st.data(), ODD_VALUES)
def test_a_damaged_chip_file_is_a_chip_or_a_config_error(loihi2_dict, data, value):
    from neurohebb.feasibility.chips import Chip, chip_from_dict

    chip = copy.deepcopy(loihi2_dict)
    section = data.draw(st.sampled_from(sorted(chip)))
    if isinstance(chip[section], dict) and chip[section]:
        chip[section][data.draw(st.sampled_from(sorted(chip[section])))] = value
    else:
        chip[section] = value
    result = only_config_errors(chip_from_dict, chip, "fuzzed.toml")
    assert result is None or isinstance(result, Chip)


@FAST
@given(st.binary(max_size=80))
def test_any_bytes_as_a_chip_file_give_a_config_error(tmp_path_factory, data):
    from neurohebb.feasibility.chips import load_chip_file

    path = tmp_path_factory.mktemp("chip") / "c.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError):
        load_chip_file(path)
