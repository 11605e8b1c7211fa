"""`neurohebb stpn` end to end on tiny data: run directories, reloading, the quantised state,
the parameter-matched comparison, and the errors bad arguments get."""
from __future__ import annotations

import json

import pytest
import torch

from neurohebb.cli import main
from neurohebb.stpn.compare import comparison_configs
from neurohebb.stpn.layer import STPN
from neurohebb.stpn.precision import STPNPrecision
from neurohebb.stpn.tasks import make_splits
from neurohebb.stpn.training import STPNTrainConfig, evaluate, load_run



@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny; several threads only contend on a shared CPU. Restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = ["--train-size", "300", "--val-size", "100", "--test-size", "200", "--batch-size", "64", "--no-progress", "--device", "cpu"]


def test_train_writes_a_complete_run_that_reloads(tmp_path):
    out = tmp_path / "run"
    assert main(["stpn", "train", "--model", "stpn", "--epochs", "2", "--out", str(out), *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "parameter_count", "energy_per_sequence", "seconds", "config", "history"):
        assert key in metrics
    assert metrics["parameter_count"] == 2039 and metrics["hidden"] == 11
    assert len(metrics["history"]) == 2 and metrics["energy_per_sequence"] > 0
    assert (out / "learning_curve.png").stat().st_size > 0
    cfg, model = load_run(out)
    assert cfg == STPNTrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    data = make_splits(cfg.data_seed, train_size=1, val_size=cfg.val_size, test_size=cfg.test_size)
    acc, energy = evaluate(model, data.x_test, data.y_test)
    assert acc == metrics["test_accuracy"] and energy == pytest.approx(metrics["energy_per_sequence"], rel=1e-6)


def test_8bit_state_run_reports_float_ptq_and_final_accuracy(tmp_path, capsys):
    out = tmp_path / "q8"
    args = ["stpn", "train", "--epochs", "1", "--state-bits", "8", "--qat-epochs", "1", "--out", str(out), *TINY]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["state_format"].startswith("s8.")
    for key in ("float_test_accuracy", "ptq_test_accuracy", "state_max_abs"):
        assert key in metrics
    assert [h["phase"] for h in metrics["history"]] == ["float", "qat"]
    _, model = load_run(out)
    unit = model.recurrent
    assert isinstance(unit, STPN) and isinstance(unit.quantizer, STPNPrecision)
    assert str(unit.quantizer.state) == metrics["state_format"]
    data = make_splits(0, train_size=1, val_size=100, test_size=200)
    assert evaluate(model, data.x_test, data.y_test)[0] == metrics["test_accuracy"]
    # `stpn eval` re-applies a format to a trained run (post-training quantisation).
    capsys.readouterr()
    assert main(["stpn", "eval", str(out), "--state-format", "s8.2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["state_format"] == "s8.2:nearest" and 0 <= result["test_accuracy"] <= 100


def test_clamped_8bit_state_trains_through_the_rounded_state_from_the_start(tmp_path):
    out = tmp_path / "c8"
    assert main(["stpn", "train", "--epochs", "2", "--clamp", "2", "--state-bits", "8", "--out", str(out), *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["state_format"] == "s8.6:nearest" and "float_test_accuracy" not in metrics
    assert [h["phase"] for h in metrics["history"]] == ["quantised", "quantised"]


def test_compare_with_clamp_trains_a_float_and_a_quantised_stpn():
    base = STPNTrainConfig(clamp=2.0, state_bits=8)
    runs = comparison_configs(base, ["stpn", "lstm"], stpn_hidden=11)
    assert [name for name, _ in runs] == ["stpn", "stpn-8bit", "lstm"]
    float_cfg, quant_cfg, lstm_cfg = (cfg for _, cfg in runs)
    assert float_cfg.state_bits is None and float_cfg.clamp == 2.0 and quant_cfg.state_bits == 8
    assert lstm_cfg.clamp is None and lstm_cfg.hidden == 9


def test_compare_matches_parameter_counts_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["stpn", "compare", "--epochs", "1", "--stpn-hidden", "4", "--state-bits", "8", "--qat-epochs", "1", "--out", str(out)]
    assert main([*args, *TINY]) == 0
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    assert [r["model"] for r in rows[:1] + rows[2:]] == ["stpn", "lstm", "rnn"]
    assert rows[1]["model"].startswith("stpn (s8.") and rows[1]["state_format"].startswith("s8.")
    assert rows[0]["state_format"] == "float32"
    lstm = json.loads((out / "lstm" / "metrics.json").read_text())
    assert lstm["state_format"] == "float32" and lstm["config"]["state_bits"] is None  # precision is the STPN's only
    counts = [r["parameter_count"] for r in rows]
    assert max(counts) - min(counts) <= 0.1 * counts[0]
    for name in ("comparison.csv", "comparison.md", "comparison.png", "stpn/metrics.json", "rnn/model.pt"):
        assert (out / name).is_file()
    assert "| lstm |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "lstm", "--state-bits", "8"], "apply to --model stpn only"),
        (["--state-format", "s8.9"], "fractional bits do not fit"),
        (["--state-format", "s8.6", "--state-bits", "4"], "does not have --state-bits 4"),
        (["--state-bits", "1"], "--state-bits must be >= 2"),
        (["--lr", "-1"], "--lr must be a positive number"),
        (["--clamp", "0"], "--clamp must be > 0"),
        (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "tpu"], "device"),
    ],
)
def test_bad_arguments_get_one_line_errors(tmp_path, capsys, args, message):
    assert main(["stpn", "train", "--epochs", "1", "--out", str(tmp_path / "x"), *TINY, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurohebb: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_existing_output_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["stpn", "train", "--epochs", "1", "--out", str(out), *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"


def test_eval_rejects_quantising_a_baseline(tmp_path, capsys):
    out = tmp_path / "rnn"
    assert main(["stpn", "train", "--model", "rnn", "--hidden", "3", "--epochs", "1", "--out", str(out), *TINY]) == 0
    assert main(["stpn", "eval", str(out), "--state-bits", "8"]) == 2
    assert "no short-term state" in capsys.readouterr().err
    assert main(["stpn", "eval", str(tmp_path / "missing")]) == 2
