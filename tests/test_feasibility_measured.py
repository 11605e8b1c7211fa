"""`feasibility --checkpoint RUN_DIR`: the measured on-chip accuracy and its random-weights control."""
from __future__ import annotations

import json

import pytest

from neurohebb.cli import main
from neurohebb.config import OnChipConfig

RULE = OnChipConfig().rule  # the default variant (names may change)

SMALL = ["--preset", "mnist-wta100", "--set", "data.dataset=\"digits\"", "--set", "layers.0.out_channels=12",
         "--set", "readout.epochs=3", "--set", "onchip.calibration=100", "--set", "onchip.steps=8",
         "--set", "data.train_subset=200", "--set", "data.test_subset=100", "--no-progress"]
FAST = ["--chip", "loihi2", "--activity", "0.1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("measured")
    paths = {name: root / name for name in ("chip", "random", "float")}
    assert main(["train", *SMALL, "--on-chip", "loihi2", "--rule", RULE, "--out", str(paths["chip"])]) == 0
    assert main(["train", *SMALL, "--set", "layers.0.rule=\"random\"", "--out", str(paths["random"])]) == 0
    assert main(["train", *SMALL, "--out", str(paths["float"])]) == 0
    return paths


def _acc(run) -> float:
    return json.loads((run / "metrics.json").read_text())["test_accuracy"]


def test_on_chip_run_reports_its_accuracy_and_the_control(runs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["feasibility", "--checkpoint", str(runs["chip"]), *FAST, "--control", str(runs["random"]),
                 "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    chip, control = _acc(runs["chip"]), _acc(runs["random"])
    assert f"Measured on-chip learning (loihi2, rule {RULE}:" in out and f"test accuracy {chip:.2f} % on 100 test images" in out
    assert f"random-weights control: {control:.2f} %" in out and f"learning gain {chip - control:+.2f} points" in out
    measured = json.loads((tmp_path / "f" / "feasibility.json").read_text())["measured"]
    assert measured["on_chip"] and measured["test_accuracy"] == chip and measured["random_weights_test_accuracy"] == control


def test_without_a_control_it_says_not_measured(runs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["feasibility", "--checkpoint", str(runs["chip"]), *FAST, "--out", str(tmp_path / "f")]) == 0
    assert "random-weights control: not measured" in capsys.readouterr().out


def test_a_control_recorded_in_metrics_is_used(runs, tmp_path, capsys):
    import shutil

    run = tmp_path / "chip"
    shutil.copytree(runs["chip"], run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["random_weights_test_accuracy"] = 12.5
    (run / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert main(["feasibility", "--checkpoint", str(run), *FAST, "--out", str(tmp_path / "f")]) == 0
    assert "random-weights control: 12.50 % (from metrics.json)" in capsys.readouterr().out


def test_a_float_run_has_no_on_chip_accuracy(runs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["feasibility", "--checkpoint", str(runs["float"]), *FAST, "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "Measured on-chip accuracy: not measured" in out and "mode 'float32'" in out
    assert "Measured on-chip learning" not in out


@pytest.mark.parametrize("which, control, fragment", [
    ("chip", "float", "trained its layers"),
    (None, "random", "give --checkpoint RUN_DIR as well"),
    ("chip", "missing", "has no config.toml"),
])
def test_bad_controls_are_one_line(runs, tmp_path, capsys, which, control, fragment):
    capsys.readouterr()
    args = ["feasibility", *FAST, "--control", str(runs.get(control, tmp_path / "nothing")), "--out", str(tmp_path / "f")]
    args += ["--checkpoint", str(runs[which])] if which else ["--preset", "mnist-wta100"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and fragment in err, err
    assert not (tmp_path / "f").exists()
