"""On-chip training through the ordinary pipeline: rule variants as data, the CLI, the run directory."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neurohebb.config import resolve_config
from neurohebb.errors import ConfigError
from neurohebb.onchip.model import load_engine_model
from neurohebb.onchip.rules import load_variants, resolve_variant

ROOT = Path(__file__).resolve().parents[1]


def test_every_rule_variant_runs_on_the_chips_it_names():
    variants = load_variants()
    assert {"instar", "instar-epoch", "instar-homeostasis"} <= set(variants)
    for v in variants.values():
        assert v.chips, v.name
        for chip in v.chips:
            v.check(load_engine_model(chip))


def test_homeostasis_needs_a_programmable_neuron():
    v = load_variants()["instar-homeostasis"]
    with pytest.raises(ConfigError, match="programmable neuron"):
        v.check(load_engine_model("loihi"))


def test_a_rule_string_is_a_variant_and_a_typo_is_a_one_line_error():
    v = resolve_variant("2^-2 * x1 * y0 - 2^-5 * w * y0", "x1=8:4")
    assert v.traces.x1_impulse == 8 and v.traces.x1_tau == 4
    with pytest.raises(ConfigError, match="unknown on-chip rule 'instr'"):
        resolve_variant("instr")


def test_onchip_config_is_validated():
    cfg = resolve_config("mnist-wta100", overrides=["onchip.chip=loihi2"])
    assert cfg.onchip.enabled and cfg.to_dict()["onchip"]["rule"] == "harmonic-homeostasis"
    with pytest.raises(ConfigError, match="drop --precision"):
        resolve_config("mnist-wta100", overrides=["onchip.chip=loihi2", "precision.policy=weight=m8"])
    with pytest.raises(ConfigError, match="onchip.gap"):
        resolve_config("mnist-wta100", overrides=["onchip.chip=loihi2", "onchip.gap=1"])
    with pytest.raises(ConfigError, match="exactly one plastic linear layer"):
        resolve_config("mnist", overrides=["onchip.chip=loihi2"])
    assert cfg.onchip.lateral_inhibition == 0.25  # the presets' circuit: interneuron + weak lateral
    with pytest.raises(ConfigError, match=r"onchip.lateral_inhibition must be in \[0, 4\]"):
        resolve_config("mnist-wta100", overrides=["onchip.chip=loihi2", "onchip.lateral_inhibition=9"])


def _cli(*args, cwd: Path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "neurohebb", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_train_on_chip_writes_an_ordinary_run_that_eval_reads(tmp_path):
    out = tmp_path / "run"
    common = ["--preset", "mnist-wta100", "--set", "data.dataset=digits", "--set", "layers.0.out_channels=20",
              "--set", "readout.epochs=2", "--set", "onchip.calibration=200", "--set", "onchip.steps=8", "--no-progress"]
    r = _cli("train", *common, "--on-chip", "loihi2", "--rule", "instar-epoch", "--control", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    # --control: the untrained network's accuracy and the gain, in metrics.json and on stdout
    control = metrics["random_weights_test_accuracy"]
    assert metrics["control"]["test_accuracy"] == control and 0 <= control <= 100
    assert metrics["learning_gain"] == round(metrics["test_accuracy"] - control, 4) and '"learning_gain"' in r.stdout
    d = metrics["diagnostics"][0]
    assert metrics["mode"] == "chip:loihi2" and d["rule_name"] == "instar-epoch"
    assert d["samples"] == metrics["n_train"] and d["wta_spikes_per_sample"] > 0 and d["synaptic_updates_per_sample"] > 0
    assert 1 <= d["active_neurons"] <= 20 and sum(d["weight_histogram"]["counts"]) == 20 * 64
    assert "[onchip]" in (out / "config.toml").read_text() and 'chip = "loihi2"' in (out / "config.toml").read_text()
    r = _cli("eval", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["test_accuracy"] == metrics["test_accuracy"]  # eval reads the run back exactly


@pytest.mark.parametrize("args, fragment", [
    (["--rule", "instar"], "give --on-chip CHIP"),
    (["--on-chip", "truenorth"], "no sum-of-products learning engine"),
    (["--on-chip", "loihi2", "--rule", "2^-12 * x1 * y0"], "outside -7..8"),
    (["--on-chip", "loihi", "--rule", "instar-homeostasis"], "programmable neuron"),
])
def test_train_on_chip_bad_input_is_one_line(tmp_path, capsys, args, fragment):
    from neurohebb.cli import main

    code = main(["train", "--preset", "mnist-wta100", "--set", "data.dataset=digits", "--out", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_neuron_written_trace_specs_parse_or_fail_in_one_line():
    from neurohebb.onchip.rules import parse_write

    assert parse_write(4) == 4.0 and parse_write("harmonic:3") == ("harmonic", 3)
    with pytest.raises(ConfigError, match="harmonic:FLOOR"):
        parse_write("harmonic:three")
    assert load_variants()["harmonic-homeostasis"].writes == (("y3", ("harmonic", 3)),)


@pytest.mark.slow
def test_the_default_chip_rule_learns_beyond_its_untrained_control():
    """The measure of learning: the same network and circuit, trained by the chip's engine or left
    at its (chip-quantised) initial weights. On digits with 20 neurons the default rule must gain
    clearly (it gained ~20 points when written; a collapsed competition gains nothing or loses)."""
    from neurohebb import engine

    base = ["onchip.chip=loihi2", "data.dataset=digits", "layers.0.out_channels=20",
            "readout.epochs=20", "onchip.calibration=300"]
    control = engine.train(resolve_config("mnist-wta100", overrides=base + ["hebbian.epochs=0"]), progress=False)[1]
    trained = engine.train(resolve_config("mnist-wta100", overrides=base), progress=False, control=True)[1]
    d = trained["diagnostics"][0]
    assert d["rule_name"] == "harmonic-homeostasis" and d["active_neurons"] >= 15
    assert trained["test_accuracy"] > control["test_accuracy"] + 10, (control["test_accuracy"], trained["test_accuracy"])
    # the in-run control (train(..., control=True)) is that separate untrained run, to the bit
    assert trained["random_weights_test_accuracy"] == control["test_accuracy"]
    assert trained["learning_gain"] == round(trained["test_accuracy"] - control["test_accuracy"], 4)
