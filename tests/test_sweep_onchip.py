"""The sweep's on-chip learning series: separate points, labels, control, and never mixed with
"SoftHebb in chip formats" (the --weight-bits series)."""
from __future__ import annotations

import csv
import json

import pytest

from neurohebb.cli import main
from neurohebb.config import OnChipConfig, resolve_config
from neurohebb.errors import ConfigError
from neurohebb.onchip.rules import load_variants
from neurohebb.precision.sweep import SweepPlan

# mnist-wta100's single linear layer on the bundled digits (the digits preset is convolutional,
# which the chip's learning engine does not train)
TINY = ["data.dataset=\"digits\"", "layers.0.out_channels=12", "readout.epochs=3", "data.train_subset=200",
        "data.test_subset=100", "onchip.calibration=100", "onchip.steps=8", "device=\"cpu\""]
RULE = OnChipConfig().rule  # the default variant (names may change; no accuracy is assumed)
LOIHI2_ONLY = next(n for n, v in load_variants().items() if "loihi2" in v.chips and "loihi" not in v.chips)


def _plan(**kw) -> SweepPlan:
    kw.setdefault("weight_bits", [6])
    kw.setdefault("roundings", ["stochastic"])
    return SweepPlan(config=resolve_config("mnist-wta100", overrides=TINY), **kw)


def test_on_chip_points_are_their_own_series_with_a_control():
    rule = "2^-2 * x1 * y0 - 2^-5 * w * y0"
    plan = _plan(onchip_chip="loihi2", onchip_rules=[RULE, rule], seeds=[0, 1], ptq=False)
    keys = [p.key for p in plan.points()]
    assert keys[:4] == ["float-s0", "random-s0", f"chip-loihi2-{RULE}-s0", keys[3]]
    assert keys[3].startswith("chip-loihi2-rule-") and " " not in keys[3]
    series = {p.key: p.series for p in plan.points()}
    assert series[f"chip-loihi2-{RULE}-s1"] == f"on-chip learning (loihi2, rule {RULE})"
    assert series[keys[3]] == f"on-chip learning (loihi2, rule {rule})"
    assert series["q-w6-u16-stochastic-s0"] == "SoftHebb in chip formats" and series["random-s1"] == "random weights (control)"
    assert len(keys) == 2 * (1 + 1 + 2 + 1)
    assert _plan(onchip_chip="loihi2", onchip_rules=[RULE], weight_bits=[]).points()[-1].kind == "onchip"


@pytest.mark.parametrize("kw, fragment", [
    ({"onchip_rules": [RULE]}, "give --on-chip CHIP as well"),
    ({"onchip_chip": "loihi2", "onchip_rules": [RULE, RULE]}, "lists a value twice"),
    ({"onchip_chip": "loihi2", "onchip_rules": ["instr"]}, "unknown on-chip rule 'instr'"),
    ({"onchip_chip": "loihi", "onchip_rules": [LOIHI2_ONLY]}, f"rule {LOIHI2_ONLY!r}: "),
    ({"weight_bits": []}, "at least one value for weight-bits"),
])
def test_bad_on_chip_series_are_one_line_errors(kw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _plan(**kw)


def test_conv_preset_and_onchip_config_are_refused(capsys, tmp_path):
    code = main(["sweep", "--preset", "digits", "--on-chip", "loihi2", "--rule", RULE, "--out", str(tmp_path / "s")])
    assert code == 2 and "exactly one plastic linear layer" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="give the on-chip series with --on-chip"):
        SweepPlan(config=resolve_config("mnist-wta100", overrides=[*TINY, "onchip.chip=\"loihi2\""]), weight_bits=[6])
    code = main(["sweep", "--preset", "mnist-wta100", "--weight-bits", "none", "--out", str(tmp_path / "s2")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--weight-bits none leaves nothing to sweep" in err and "\n" not in err
    assert not (tmp_path / "s2").exists()


@pytest.mark.slow
def test_cli_sweep_with_an_on_chip_series(capsys, tmp_path, monkeypatch):
    from neurohebb.engine import train
    from neurohebb.precision import plots

    legends: list[list[str]] = []
    real_save = plots.savefig_atomic

    def capture(fig, path, **kw):
        for ax in fig.axes:
            if ax.get_legend() is not None:
                legends.append([t.get_text() for t in ax.get_legend().get_texts()])
        real_save(fig, path, **kw)

    monkeypatch.setattr(plots, "savefig_atomic", capture)
    out = tmp_path / "s"
    args = ["sweep", "--preset", "mnist-wta100", "--weight-bits", "6", "--rounding", "stochastic", "--no-ptq",
            "--on-chip", "loihi2", "--rule", RULE, "--no-progress", "--out", str(out)]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.split()[:1] in (["onchip"], ["quantized"], ["random"], ["float"])]
    assert len(table) == 4
    for line in table:  # only on-chip rows are called on-chip
        assert ("on-chip" in line) == line.startswith("onchip"), line
    rows = {r["kind"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["onchip"]["series"] == f"on-chip learning (loihi2, rule {RULE})" and rows["onchip"]["mode"] == "chip:loihi2"
    assert rows["quantized"]["series"] == "SoftHebb in chip formats" and rows["quantized"]["mode"] == "fake-quant"
    assert rows["onchip"]["learning_gain"] == pytest.approx(rows["onchip"]["test_accuracy"] - rows["random"]["test_accuracy"], abs=1e-3)
    # the point is `train --on-chip loihi2 --rule RULE` with the same settings, to the digit
    config = resolve_config("mnist-wta100", overrides=[*TINY, "onchip.chip=\"loihi2\"", f"onchip.rule=\"{RULE}\""])
    assert rows["onchip"]["test_accuracy"] == train(config, progress=False)[1]["test_accuracy"]
    control = resolve_config("mnist-wta100", overrides=[*TINY, "layers.0.rule=\"random\""])
    assert rows["random"]["test_accuracy"] == train(control, progress=False)[1]["test_accuracy"]
    with open(out / "results.csv", newline="") as f:
        series = {r["kind"]: r["series"] for r in csv.DictReader(f)}
    assert series["onchip"].startswith("on-chip learning") and not any("on-chip" in series[k] for k in ("float", "quantized", "random"))
    labels = legends[0]  # accuracy_vs_bits.png
    chip_labels = [t for t in labels if "on-chip" in t]
    assert len(chip_labels) == 1 and chip_labels[0].startswith(f"on-chip learning (loihi2, rule {RULE})")
    assert any(t.startswith("SoftHebb in chip formats") for t in labels) and any(t.startswith("random weights") for t in labels)
    for figure_labels in legends[1:]:  # diagnostics_vs_bits.png: chip-formats points only
        assert not any("on-chip" in t for t in figure_labels)
    # resuming finds every point done (the on-chip points' records match their plan)
    assert main(args) == 0
    assert "4 of 4 points already done" in capsys.readouterr().out
