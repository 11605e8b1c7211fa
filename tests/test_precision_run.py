"""The precision policy is part of a run: one `[precision]` table in config, TOML, CLI and
checkpoint, which reproduces a quantised run and tells deploy/feasibility the weight format."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neurohebb.config import config_from_dict, load_toml_dict, resolve_config
from neurohebb.engine import load_run, train
from neurohebb.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FAST = ["layers.0.out_channels=8", "layers.1.out_channels=12", "readout.epochs=3", "data.train_subset=300", "data.test_subset=200"]
POLICY = "weight=m8:stochastic,update=s16.14:stochastic"
FULL = "weight=m8:nearest,input=u9.8:nearest,post=u16.16:nearest,update=s16.14:nearest,lr=u16.16:nearest"


def _config(overrides=(), **fields):
    return resolve_config("digits", overrides=[*FAST, *overrides], device="cpu", **fields)


def test_precision_string_and_role_table_are_the_same_run(tmp_path):
    by_string = _config(precision={"policy": POLICY})
    f = tmp_path / "p.toml"
    f.write_text('[precision]\nweight = "m8:stochastic"\nupdate = "s16.14:stochastic"\nmode = "integer"\n')
    by_table = resolve_config("digits", f, FAST, device="cpu")
    assert by_string.precision.policy == by_table.precision.policy == POLICY
    assert by_table.precision.mode == "integer"
    assert _config().precision.policy == "float32" and _config().precision.is_float


@pytest.mark.parametrize("table, fragment", [
    ({"policy": "weight=q8"}, "precision.policy"),
    ({"policy": "weight=s8.7", "weight": "s8.7"}, "either policy"),
    ({"policy": "  "}, "precision.policy is empty"),
    ({"mode": "chip"}, "precision.mode"),
    ({"stats_every": 0}, "precision.stats_every"),
])
def test_bad_precision_tables_are_config_errors(table, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_from_dict({**_config().to_dict(), "precision": table})


def test_a_quantised_run_is_reproduced_from_its_own_config_toml(tmp_path):
    net_a, metrics_a = train(_config(precision={"policy": POLICY}), tmp_path / "a", progress=False)
    saved = load_toml_dict(tmp_path / "a" / "config.toml")
    assert saved["precision"]["policy"] == POLICY
    assert metrics_a["policy"] == POLICY and metrics_a["mode"] == "fake-quant"
    assert metrics_a["diagnostics"][0]["saturation"]  # the quantised engine's diagnostics
    net_b, metrics_b = train(resolve_config(config_file=tmp_path / "a" / "config.toml"), tmp_path / "b", progress=False)
    assert metrics_b["test_accuracy"] == metrics_a["test_accuracy"]
    for block_a, block_b in zip(net_a.blocks, net_b.blocks):
        assert torch.equal(block_a.layer.weight, block_b.layer.weight)
    config, net = load_run(tmp_path / "a")  # the checkpoint carries the policy too
    assert config.precision.policy == net.config.precision.policy == POLICY
    # the float run of the same seed differs only by the arithmetic of the Hebbian phase
    net_f, _ = train(_config(), progress=False)
    assert not torch.equal(net_f.blocks[0].layer.weight, net_a.blocks[0].layer.weight)


def test_deploy_takes_the_weight_format_from_the_run(tmp_path, capsys):
    from neurohebb.commands.deploy import weight_bits_for

    train(_config(precision={"policy": "weight=m6:stochastic"}, overrides=["readout.epochs=1"]),
          tmp_path / "m6", progress=False)
    train(_config(overrides=["readout.epochs=1"]), tmp_path / "float", progress=False)
    assert weight_bits_for(str(tmp_path / "m6"), None) == 6
    assert weight_bits_for(str(tmp_path / "float"), None) == 8
    assert capsys.readouterr().err == ""
    assert weight_bits_for(str(tmp_path / "m6"), 8) == 8  # an explicit override wins, with a warning
    assert "differs from the run's trained weight format m6" in capsys.readouterr().err


def test_cli_precision_flag_writes_the_table_and_rejects_an_empty_policy(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "neurohebb", "train", "--preset", "digits", *sum((["--set", o] for o in FAST), []),
                           "--set", "readout.epochs=1", "--set", 'precision.policy="weight=s8.7"', "--precision", FULL, "--precision-mode", "integer",
                           "--no-progress", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = load_toml_dict(out / "config.toml")["precision"]
    # --precision (a CLI field) comes after --set, as every explicit flag does
    assert saved == {"policy": FULL, "mode": "integer", "stats_every": 10}
    bad = subprocess.run([sys.executable, "-m", "neurohebb", "train", "--preset", "digits", "--precision", ""],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "--precision '' is empty" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
