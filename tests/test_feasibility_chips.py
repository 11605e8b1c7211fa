"""Chip descriptions: the shipped files are complete and sourced; bad files fail naming the field."""
from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from neurohebb.errors import ConfigError
from neurohebb.feasibility import chips as chips_mod
from neurohebb.feasibility.chips import (
    available_chips,
    blank_chip_dict,
    chip_from_dict,
    load_all_chips,
    load_chip,
    load_chip_file,
    template_path,
)
from neurohebb.feasibility.schema import SCHEMA, SOURCE_PREFIXES

HARDWARE = Path(__file__).resolve().parents[1] / "hardware"
SHIPPED = ("loihi", "loihi2", "spinnaker2", "truenorth")


def fig(value):
    return {"value": value, "source": "mydoc, test figure"}


def test_every_required_chip_is_shipped():
    assert set(SHIPPED) <= set(available_chips())
    for chip in load_all_chips():
        assert Path(chip.path).stem == chip.name, "a chip file's name must match its file name"


def test_shipped_truenorth_cannot_learn_and_loihi_can():
    assert load_chip("truenorth").get("learning", "on_chip") is False
    assert load_chip("truenorth").get("learning", "engine") == "none"
    assert load_chip("loihi").get("learning", "engine") == "sum-of-products"
    assert load_chip("loihi2").get("learning", "lava_rule_strings") is True


@pytest.mark.parametrize("name", SHIPPED)
def test_every_figure_in_shipped_files_is_sourced_or_explicitly_unknown(name):
    """Read the raw TOML (not the loader) so the claim holds for the file itself."""
    data = tomllib.loads((HARDWARE / f"{name}.toml").read_text(encoding="utf-8"))
    refs = set(data["references"])
    numbers = 0
    for section in SCHEMA:
        for field, raw in data[section].items():
            assert isinstance(raw, dict), f"{name}: {section}.{field} is a bare value"
            if "value" not in raw:
                reason = raw.get("unknown") or raw.get("not_applicable")
                assert isinstance(reason, str) and len(reason) > 10, f"{name}: {section}.{field} has no reason"
                continue
            source = raw.get("source", "")
            key = re.match(r"\s*([A-Za-z][\w\-]*)", source).group(1)
            assert key in refs or key in SOURCE_PREFIXES, f"{name}: {section}.{field} source {source!r}"
            if key == "derived":  # a derivation must name the sourced figures it starts from
                assert any(ref in source for ref in refs), f"{name}: {section}.{field} derives from nothing cited"
            if isinstance(raw["value"], (int, float)) and not isinstance(raw["value"], bool):
                numbers += 1
    assert numbers >= 8, f"{name} should carry its numeric figures"


def test_loihi_figures_are_the_published_ones():
    loihi = load_chip("loihi")
    assert loihi.get("architecture", "cores_per_chip") == 128
    assert loihi.get("architecture", "neurons_per_core") == 1024
    assert loihi.get("architecture", "synaptic_memory_bits_per_core") == 128 * 1024 * 8
    assert loihi.get("energy", "synaptic_op_pj") == pytest.approx(23.6)
    assert loihi.get("energy", "synaptic_update_pj") == pytest.approx(120)
    assert "Table 2" in loihi.figure("energy", "synaptic_op_pj").source


def test_template_holds_every_schema_field_and_loads():
    path = template_path()
    assert path is not None and path.name == "_template.toml"
    chip = load_chip_file(path)
    for section, specs in SCHEMA.items():
        assert set(chip.figures[section]) == set(specs)
        assert all(not f.known for f in chip.figures[section].values())
    assert "_template" not in available_chips()


def test_blank_dict_is_a_valid_description_with_nothing_known():
    chip = chip_from_dict(blank_chip_dict("toy"))
    assert chip.name == "toy"
    assert chip.get("architecture", "cores_per_chip") is None


def _broken(mutate) -> dict:
    data = copy.deepcopy(blank_chip_dict("toy"))
    mutate(data)
    return data


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["architecture"].pop("neurons_per_core"), "architecture.neurons_per_core is missing"),
        (lambda d: d.pop("energy"), "section [energy] is missing"),
        (lambda d: d["energy"].update(synaptic_op_pj={"value": 23.6}), "energy.synaptic_op_pj has a value but no source"),
        (lambda d: d["energy"].update(synaptic_op_pj={"value": 23.6, "source": "somewhere, p. 3"}),
         "energy.synaptic_op_pj.source must start with a key of [references]"),
        (lambda d: d["architecture"].update(cores_per_chip=fig(-3)), "architecture.cores_per_chip must be >= 1"),
        (lambda d: d["architecture"].update(cores_per_chip=fig(12.5)), "architecture.cores_per_chip must be an integer"),
        (lambda d: d["energy"].update(synaptic_op_pj=fig("cheap")), "energy.synaptic_op_pj must be a number"),
        (lambda d: d["learning"].update(engine=fig("magic")), "learning.engine = 'magic' is not allowed"),
        (lambda d: d["learning"].update(on_chip=fig("yes")), "learning.on_chip must be true or false"),
        (lambda d: d["timing"].update(time_step_ms=fig(1.0)), "unknown field timing.time_step_ms"),
        (lambda d: d["timing"].update(time_step_us=23), "timing.time_step_us must be a table"),
        (lambda d: d["timing"].update(time_step_us={"unknown": ""}), "timing.time_step_us.unknown must say why"),
        (lambda d: d["timing"].update(time_step_us={"value": 1, "unknown": "x", "source": "mydoc"}), "needs exactly one of"),
        (lambda d: d.update(schema=2), "schema must be 1"),
        (lambda d: d.update(colour="blue"), "unknown key 'colour'"),
        (lambda d: d.update(references={}), "[references] must be a table"),
        (lambda d: (d["weights"].update(min_bits=fig(9), max_bits=fig(4))), "weights.min_bits (9) exceeds weights.max_bits (4)"),
        (lambda d: (d["learning"].update(on_chip=fig(False), engine=fig("sum-of-products"))), "learning.on_chip = false contradicts"),
    ],
)
def test_invalid_chip_descriptions_are_rejected_naming_the_field(mutate, message):
    with pytest.raises(ConfigError) as err:
        chip_from_dict(_broken(mutate), "toy.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("chip file toy.toml:")


def test_a_users_chip_file_loads_by_path_and_by_name_from_the_env_folder(tmp_path, monkeypatch):
    text = (HARDWARE / "loihi.toml").read_text(encoding="utf-8").replace('name = "loihi"', 'name = "myloihi"')
    path = tmp_path / "myloihi.toml"
    path.write_text(text, encoding="utf-8")
    assert load_chip(str(path)).name == "myloihi"
    monkeypatch.setenv(chips_mod.ENV_DIR, str(tmp_path))
    assert "myloihi" in available_chips()
    assert load_chip("myloihi").get("architecture", "neurons_per_core") == 1024


def test_unknown_chip_names_and_unreadable_files_get_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown chip 'loihi3'; known chips: .*loihi2"):
        load_chip("loihi3")
    with pytest.raises(ConfigError, match="cannot read chip file"):
        load_chip_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = 1\nname = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_chip_file(bad)


def test_assumptions_are_listed_separately():
    loihi = load_chip("loihi")
    fields = [f for f, _ in loihi.assumptions()]
    assert "architecture.weight_sharing" in fields
    assert all(s.startswith("assumption") for _, s in loihi.assumptions())
