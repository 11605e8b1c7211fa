"""The precision policy: compact string and TOML forms, round trips, and rejected policies."""
from __future__ import annotations

import pytest

from neurohebb.errors import ConfigError
from neurohebb.precision import NumberFormat, PrecisionPolicy, RoleSpec


def test_float32_is_the_default():
    p = PrecisionPolicy()
    assert p == PrecisionPolicy.float32() == PrecisionPolicy.parse("float32") == PrecisionPolicy.parse("")
    assert p.is_float and str(p) == "float32"


def test_compact_string_sets_roles_and_defaults():
    p = PrecisionPolicy.parse("weight=s8.7:stochastic, update=s16.15:stochastic:wrap, post=u8.8, norm=pow2")
    assert p.weight == RoleSpec(NumberFormat(True, 8, 7), "stochastic", "saturate")
    assert p.update == RoleSpec(NumberFormat(True, 16, 15), "stochastic", "wrap")
    assert p.post == RoleSpec(NumberFormat(False, 8, 8), "nearest", "saturate")
    assert p.input.is_float and p.lr.is_float and p.norm == "pow2" and not p.is_float
    assert str(p) == "weight=s8.7:stochastic,post=u8.8:nearest,update=s16.15:stochastic:wrap,norm=pow2"


@pytest.mark.parametrize(
    "text",
    ["weight=s8.7", "weight=m9:stochastic,lr=u16.16:floor", "input=u8.8:truncate:wrap,post=s4.3", "float32"],
)
def test_string_and_dict_round_trips(text):
    p = PrecisionPolicy.parse(text)
    assert PrecisionPolicy.parse(str(p)) == p
    assert PrecisionPolicy.from_dict(p.to_dict()) == p


def test_toml_table_accepts_strings_and_tables(tmp_path):
    path = tmp_path / "chip.toml"
    path.write_text('[precision]\nweight = "s6.5:stochastic"\nupdate = {format = "s16.15", rounding = "floor"}\n')
    p = PrecisionPolicy.from_toml(str(path))
    assert str(p) == "weight=s6.5:stochastic,update=s16.15:floor"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("weight=s0.0", "1 to 32 bits"),
        ("weight=s40.3", "1 to 32 bits"),
        ("update=s8.12", "fractional bits do not fit"),
        ("weight=s8.7:ceil", "neither a rounding mode"),
        ("weights=s8.7", "unknown precision role 'weights'"),
        ("weight", "must look like role=FORMAT"),
        ("weight=s8.7,weight=s4.3", "given twice"),
        ("norm=divide", "norm 'divide' is unknown"),
        ("weight=", "has no format"),
    ],
)
def test_invalid_policies_are_rejected(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        PrecisionPolicy.parse(text)


def test_error_messages_are_one_line():
    with pytest.raises(ConfigError) as info:
        PrecisionPolicy.parse("weight=s8.9")
    assert "\n" not in str(info.value)


def test_table_errors_name_the_key():
    with pytest.raises(ConfigError, match="precision.weight: unknown key 'bits'"):
        PrecisionPolicy.from_dict({"weight": {"format": "s8.7", "bits": 8}})
    with pytest.raises(ConfigError, match="needs a format"):
        PrecisionPolicy.from_dict({"weight": {"rounding": "nearest"}})


def test_with_role_replaces_one_role():
    p = PrecisionPolicy().with_role("weight", "s4.3:stochastic")
    assert str(p) == "weight=s4.3:stochastic"
