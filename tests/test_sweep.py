"""Precision sweeps: the plan, the outputs, resuming, and the CLI's errors."""
from __future__ import annotations

import csv
import json

import pytest

from neurohebb.cli import main
from neurohebb.config import resolve_config
from neurohebb.errors import ConfigError, NeurohebbError
from neurohebb.precision.sweep import SweepPlan, run_sweep

TINY = ["layers.0.out_channels=4", "layers.1.out_channels=8", "readout.epochs=2", "data.train_subset=60",
        "data.test_subset=40", "device=\"cpu\""]


def _plan(**kw) -> SweepPlan:
    config = resolve_config("digits", overrides=TINY)
    kw.setdefault("weight_bits", [4])
    kw.setdefault("roundings", ["nearest"])
    return SweepPlan(config=config, **kw)


def test_plan_lists_points_with_their_policies():
    plan = _plan(weight_bits=[8, 3], update_bits=[16, None], roundings=["stochastic"], seeds=[0, 1])
    keys = [p.key for p in plan.points()]
    assert keys[:3] == ["float-s0", "ptq-w8-s0", "ptq-w3-s0"]
    assert "q-w8-u16-stochastic-s0" in keys and "q-w3-uf-stochastic-s1" in keys
    assert len(keys) == 2 * (1 + 2 + 2 * 2)
    by_key = {p.key: p.policy for p in plan.points()}
    assert by_key["q-w8-u16-stochastic-s0"] == "weight=m8:stochastic,update=s16.14:stochastic"
    assert by_key["q-w3-uf-stochastic-s1"] == "weight=m3:stochastic"
    fixed = _plan(weight_format="fixed", weight_int_bits=2, weight_bits=[8])
    assert fixed.points()[-1].policy == "weight=s8.6:nearest,update=s16.14:nearest"


@pytest.mark.parametrize(
    "kw, fragment",
    [({"weight_bits": [40]}, "1 to 32 bits"), ({"roundings": ["up"]}, "rounding mode 'up'"),
     ({"weight_bits": [8, 8]}, "lists a value twice"), ({"update_bits": [1]}, "update bits must be"),
     ({"weight_format": "fixed", "weight_int_bits": 5, "weight_bits": [4]}, "lower --weight-int-bits"),
     ({"mode": "analog"}, "precision mode 'analog'"), ({"seeds": []}, "at least one value"),
     ({"base_policy": "weight=s8.7"}, "the base policy sets weight"),
     ({"mode": "integer", "base_policy": "input=u9.8"}, "needs every role quantised; post, lr")],
)
def test_invalid_plans_are_rejected(kw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _plan(**kw)


def test_sweep_writes_results_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    plan = _plan()
    results = run_sweep(plan, out, progress=False, log=lambda _: None)
    assert results["points_done"] == 3
    rows = {r["kind"]: r for r in results["rows"]}
    assert rows["float"]["accuracy_drop"] == 0.0
    q = rows["quantized"]
    assert q["accuracy_drop"] == pytest.approx(rows["float"]["test_accuracy"] - q["test_accuracy"], abs=1e-3)
    assert q["policy"] == "weight=m4:nearest,update=s16.14:nearest"
    diag = q["diagnostics"][0]
    assert 0.0 <= diag["stalled_fraction"] <= 1.0 and diag["weight_histogram"]["distinct_codes"] <= 15
    with open(out / "results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["kind"] for r in table] == ["float", "ptq", "quantized"]
    assert "stalled_fraction_l0" in table[0].keys()
    for name in ("results.json", "accuracy_vs_bits.png", "diagnostics_vs_bits.png", "points/float-s0.pt"):
        assert (out / name).is_file()

    # resuming a finished sweep trains nothing
    def refuse(*_a, **_k):
        raise AssertionError("a finished point was retrained")

    monkeypatch.setattr("neurohebb.precision.training.train_with_policy", refuse)
    assert run_sweep(plan, out, progress=False, log=lambda _: None)["points_done"] == 3
    monkeypatch.undo()

    # a grown plan runs only the new points; PTQ reuses the saved float network
    calls = []
    from neurohebb.precision.training import train_with_policy as real

    def counting(config, policy, **kw):
        calls.append(str(policy))
        return real(config, policy, **kw)

    monkeypatch.setattr("neurohebb.precision.training.train_with_policy", counting)
    grown = _plan(weight_bits=[4, 2])
    assert run_sweep(grown, out, progress=False, log=lambda _: None)["points_done"] == 5
    assert calls == ["weight=m2:nearest,update=s16.14:nearest"]


def test_interrupted_sweep_keeps_finished_points_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    plan = _plan(weight_bits=[4, 3])
    from neurohebb.precision import training

    real = training.train_with_policy

    def interrupt_on_quantized(config, policy, **kw):
        if policy is not None and "m3" in str(policy):
            raise KeyboardInterrupt
        return real(config, policy, **kw)

    monkeypatch.setattr(training, "train_with_policy", interrupt_on_quantized)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, out, progress=False, log=lambda _: None)
    partial = json.loads((out / "results.json").read_text())
    assert partial["points_done"] == 4 and partial["points_total"] == 5  # rebuilt on the way out
    monkeypatch.undo()
    assert run_sweep(plan, out, progress=False, log=lambda _: None)["points_done"] == 5


def test_resuming_with_a_different_setup_is_refused(tmp_path):
    out = tmp_path / "sweep"
    (out / "points").mkdir(parents=True)
    (out / "sweep.json").write_text(json.dumps(_plan().manifest()))
    with pytest.raises(NeurohebbError, match="different base_policy"):
        run_sweep(_plan(base_policy="post=u16.16"), out, progress=False, log=lambda _: None)


def test_cli_reports_bad_lists_in_one_line(capsys, tmp_path):
    code = main(["sweep", "--preset", "digits", "--weight-bits", "8,x", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("neurohebb: error: --weight-bits: 'x' is not an integer") and "\n" not in err
    code = main(["sweep", "--preset", "digits", "--rounding", "nearest,ceil", "--out", str(tmp_path / "s")])
    assert code == 2 and "rounding mode 'ceil'" in capsys.readouterr().err


def test_cli_runs_a_sweep(capsys, tmp_path):
    args = ["sweep", "--preset", "digits", "--weight-bits", "6", "--update-bits", "float", "--rounding", "stochastic",
            "--no-ptq", "--no-progress", "--out", str(tmp_path / "s")]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "quantized" in printed and "m6" in printed
    rows = json.loads((tmp_path / "s" / "results.json").read_text())["rows"]
    assert [r["policy"] for r in rows] == ["float32", "weight=m6:stochastic"]


def test_keep_runs_writes_run_directories_that_eval_reads(tmp_path):
    from neurohebb.engine import load_run

    out = tmp_path / "s"
    plan = _plan(keep_runs=True, stats_every=2, ptq=False)
    run_sweep(plan, out, progress=False, log=lambda _: None)
    for key in ("float-s0", "q-w4-u16-nearest-s0"):
        config, net = load_run(out / "runs" / key)
        assert config.seed == 0 and net.feature_size > 0
        assert (out / "runs" / key / "metrics.json").is_file()
    point = json.loads((out / "points" / "q-w4-u16-nearest-s0.json").read_text())
    assert point["stats_every"] == 2
    assert point["diagnostics"][0]["sampled_steps"] < point["diagnostics"][0]["steps"]
    with pytest.raises(ConfigError, match="--stats-every must be >= 1"):
        _plan(stats_every=0)
