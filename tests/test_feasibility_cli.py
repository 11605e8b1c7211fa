"""`neurohebb feasibility`: report, JSON and PNG; measured activity; one-line errors for bad input."""
from __future__ import annotations

import json

import pytest

from neurohebb.cli import main


def run_cli(args, capsys):
    code = main(["feasibility", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_json_and_png_for_every_chip(tmp_path, capsys):
    code, out, err = run_cli(["--preset", "digits", "--activity", "0.1", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "feasibility.json").read_text())
    assert (tmp_path / "feasibility.png").stat().st_size > 10_000
    names = [c["chip"]["name"] for c in report["chips"]]
    assert {"loihi", "loihi2", "spinnaker2", "truenorth"} <= set(names)
    assert "== comparison" in out and "Intel Loihi 2 (loihi2)" in out
    assert report["activity"]["measured"] is False
    for entry in report["chips"]:
        assert entry["mapping"]["fits"] is True
        assert entry["cost"]["synops_per_inference"] > 0
        # every figure used is either sourced or says why it is missing
        assert all(text for text in entry["figures_used"].values())
    truenorth = next(c for c in report["chips"] if c["chip"]["name"] == "truenorth")
    assert truenorth["verdict"]["learning"] == "not expressible"


def test_measured_activity_and_precision_change_the_numbers(tmp_path, capsys):
    args = ["--preset", "digits", "--chip", "loihi", "--samples", "8"]
    code, out, err = run_cli([*args, "--json", str(tmp_path / "a.json"), "--plot", str(tmp_path / "a.png")], capsys)
    assert code == 0, err
    measured = json.loads((tmp_path / "a.json").read_text())
    assert measured["activity"]["measured"] is True
    assert "test images" in measured["activity"]["source"] or "digits" in measured["activity"]["source"]
    code, _, err = run_cli([*args, "--precision", "weight=s4.3", "--json", str(tmp_path / "b.json"),
                            "--plot", str(tmp_path / "b.png")], capsys)
    assert code == 0, err
    narrow = json.loads((tmp_path / "b.json").read_text())
    wide_map, narrow_map = measured["chips"][0]["mapping"], narrow["chips"][0]["mapping"]
    assert (wide_map["weight_bits"], narrow_map["weight_bits"]) == (9, 4)
    assert narrow_map["total_cores"] < wide_map["total_cores"]
    lava_rules = [r for r in measured["chips"][0]["rules"] if r["rule_string"]]
    assert lava_rules, "Loihi layers should get a sum-of-products rule"


def test_loihi2_report_carries_the_lava_rule(tmp_path, capsys):
    code, out, err = run_cli(["--preset", "digits", "--chip", "loihi2", "--samples", "8", "--verbose",
                              "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "Lava rule: dw = " in out and "y1 = round(127" in out
    report = json.loads((tmp_path / "feasibility.json").read_text())
    block = report["chips"][0]["rules"][0]
    assert block["lava"]["learning_rule"] == "Loihi3FLearningRule"


def test_user_chip_file_and_list(tmp_path, capsys):
    from neurohebb.feasibility.chips import template_path

    code, out, _ = run_cli(["--list-chips"], capsys)
    assert code == 0 and "loihi2" in out and "_template.toml" in out
    mine = tmp_path / "mine.toml"
    mine.write_text(template_path().read_text(), encoding="utf-8")
    code, out, err = run_cli(["--preset", "digits", "--chip-file", str(mine), "--activity", "0.1", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "feasibility.json").read_text())
    (entry,) = report["chips"]
    assert entry["verdict"]["fits"] is False and entry["verdict"]["energy_per_inference_j"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "digits", "--chip", "loihi9"], "unknown chip 'loihi9'"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--checkpoint", "/no/such/run"], "run directory /no/such/run not found"),
        (["--preset", "digits", "--precision", "weight=s99.1"], "number format needs 1 to 32 bits"),
        (["--preset", "digits", "--activity", "1.5"], "spike probability in [0, 1]"),
        (["--preset", "digits", "--time-steps", "0"], "--time-steps must be >= 1"),
    ],
)
def test_bad_input_gets_a_one_line_error(args, message, capsys):
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1 and err.startswith("neurohebb: error:")


def test_bad_chip_file_names_the_field(tmp_path, capsys):
    from neurohebb.feasibility.chips import template_path

    text = template_path().read_text().replace('cores_per_chip = { unknown = "not filled in" }', "cores_per_chip = 12")
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    code, _, err = run_cli(["--preset", "digits", "--chip-file", str(bad), "--activity", "0.1"], capsys)
    assert code == 2 and "architecture.cores_per_chip must be a table" in err


def test_checkpoint_activity_comes_from_the_checkpoint_network(tmp_path, capsys):
    """A run directory (config.toml + checkpoint.pt) is measured in eval mode with its own weights."""
    from neurohebb.config import resolve_config
    from neurohebb.network import HebbNetwork, save_checkpoint
    from neurohebb.tomlio import dumps_toml

    config = resolve_config("digits")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(dumps_toml(config.to_dict()), encoding="utf-8")
    save_checkpoint(HebbNetwork(config), run_dir / "checkpoint.pt")
    code, out, err = run_cli(["--checkpoint", str(run_dir), "--chip", "loihi", "--samples", "8", "--out", str(tmp_path / "f")], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "f" / "feasibility.json").read_text())
    assert report["activity"]["source"].startswith("measured with the trained checkpoint")
    assert report["network"]["name"] == "run"
