"""Chip facts come from the chip file: the learning-engine model, and what reads it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from neurohebb.backends.lava.sop import SopEngine, parse_rule
from neurohebb.errors import ConfigError
from neurohebb.feasibility.chips import load_chip, load_chip_file
from neurohebb.feasibility.expressibility import analyse_layer
from neurohebb.onchip.model import engine_model, load_engine_model

from test_feasibility_rules import measured, softhebb_layer
from neurohebb.precision import PrecisionPolicy

HARDWARE = Path(__file__).resolve().parents[1] / "hardware"


def test_loihi2_model_holds_lavas_learning_engine_widths():
    m = load_engine_model("loihi2")
    assert (m.trace_bits, m.impulse_fraction_bits, m.mantissa_bits) == (7, 8, 4)
    assert m.scaling_exponent_range == (-7, 8) and m.weight_exponent_range == (-8, 7)
    assert (m.accumulator_range, m.weight_range, m.weight_shift, m.round_shift) == ((-(2**15) - 1, 2**15 - 1), (-256, 255), 7, 7)
    assert m.t_epoch_max == 63 and m.dependencies == ("x0", "y0", "u") and m.neuron_written_traces
    assert m.product_shift(("x1", "y1")) == 3 and m.product_shift(("y2", "w")) == 5  # 7+7+4-15, 7+9+4-15
    loihi = load_engine_model("loihi")
    assert not loihi.neuron_written_traces  # Loihi 1: post traces are filtered spikes


def test_a_chip_without_an_engine_has_no_model():
    with pytest.raises(ConfigError, match="no sum-of-products learning engine"):
        engine_model(load_chip("truenorth"))


def _edited_chip(tmp_path, **replacements) -> Path:
    text = (HARDWARE / "loihi2.toml").read_text()
    for field_name, value in replacements.items():
        text, n = re.subn(rf"^{field_name} = \{{ value = [^,]+,", f"{field_name} = {{ value = {value},", text, flags=re.M)
        assert n == 1, field_name
    path = tmp_path / "mychip.toml"
    path.write_text(text)
    return path


def _rule(chip) -> str:
    layer = softhebb_layer(lr=0.5)
    return analyse_layer(layer, chip, PrecisionPolicy.parse("weight=s8.7"), measured(), time_steps=32).rule_string


def test_editing_trace_width_or_exponent_range_changes_the_emitted_rule(tmp_path):
    base = _rule(load_chip("loihi2"))
    narrow_traces = _rule(load_chip_file(_edited_chip(tmp_path, trace_bits=5)))
    assert narrow_traces != base
    # a scaling-exponent range that cannot reach the Hebbian coefficient clips it to the range's end
    clipped = _rule(load_chip_file(_edited_chip(tmp_path, scaling_exponent_min=-3)))
    assert clipped != base and "2^-3" in clipped and all(int(e) >= -3 for e in re.findall(r"2\^(-?\d+)", clipped))


def test_engine_and_parser_follow_an_edited_chip_file(tmp_path):
    m = engine_model(load_chip_file(_edited_chip(tmp_path, scaling_exponent_min=-3, trace_bits=5)))
    with pytest.raises(ConfigError, match=r"outside -3..8"):
        parse_rule("2^-5 * x1 * y0", m)
    parse_rule("2^-5 * x1 * y0")  # fine on Loihi 2
    from neurohebb.backends.lava.sop import TraceConfig

    eng = SopEngine("2^0 * x1 * y0", [[0, 0]], TraceConfig(x1_impulse=100), model=m)
    eng.step([1, 0], [1])
    assert eng.weights[0, 0] == 31  # the 5-bit trace saturates at 31; on Loihi 2 it would hold 100
    eng2 = SopEngine("2^0 * x1 * y0", [[0, 0]], TraceConfig(x1_impulse=100))
    eng2.step([1, 0], [1])
    assert eng2.weights[0, 0] == 100


def test_t_epoch_beyond_the_chip_is_a_one_line_error():
    from neurohebb.backends.lava.learning import OnChipRule

    with pytest.raises(ConfigError, match=r"t_epoch = 64 is outside loihi2's learning epoch range 1..63") as exc:
        OnChipRule(t_epoch=64)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="1..63"):
        SopEngine("2^-2 * x1 * y0", [[0]], t_epoch=0)
    OnChipRule(t_epoch=63)
