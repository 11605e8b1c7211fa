"""The speed harness runs end to end on a tiny problem (so it cannot rot) and reports coherent phases."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_softhebb_speed_harness_compares_modes(tmp_path):
    out = tmp_path / "speed.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "softhebb_speed.py"), "--preset", "digits", "--device", "cpu",
           "--train-subset", "200", "--test-subset", "100", "--set", "readout.epochs=2",
           "--set", "layers.0.out_channels=8", "--set", "layers.1.out_channels=16",
           "--quant", "weight=m8:stochastic,update=s16.14:stochastic", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "reference / fast, total wall time" in done.stdout
    data = json.loads(out.read_text())
    modes = [r["mode"] for r in data["rows"]]
    assert modes == ["fast", "reference", "fast+weight=m8:stochastic,update=s16.14:stochastic"]
    for row in data["rows"]:
        phases = sum(row[k] for k in ("data_s", "hebbian_s", "features_s", "readout_s", "eval_s"))
        assert 0 < phases <= row["total_s"] * 1.001
        assert 0 <= row["test_accuracy"] <= 100
        assert row["hebbian_tflops"] > 0
    assert data["matmul_tflops"] > 0
    assert data["ratios"]["reference_over_fast_total"] > 0


def test_hebbian_kernels_alternatives_compute_the_same_values():
    """The kernel leads are only leads if they give the engine's numbers: the weight-gradient
    correlation must match `rules.conv_correlation`, and pooling before the Triangle must equal
    pooling after it, for every block of the presets."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "hebbian_kernels.py"), "--batch", "2", "--repeats", "1", "--threads", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if " block " in line]
    assert len(rows) == 6
    for cols in rows:
        rel_diff = float(cols[6])  # name (3 words), corr conv, corr wgrad, ratio, rel diff, ...
        assert rel_diff < 1e-5
        if len(cols) > 7:  # max-pooled blocks: the two orders agree bit for bit
            assert cols[-1] == "True"


def test_onchip_gap_reference_runs_and_its_switches_change_the_result():
    """The float k-means reference of the chip rule (benchmarks/onchip_gap.py) on the bundled
    digits: it learns prototypes the readout can use, and a constraint switch changes the answer."""
    def run(*extra: str) -> dict:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "onchip_gap.py"), "--set", 'data.dataset="digits"',
               "--set", "layers.0.out_channels=20", "--set", "readout.epochs=10", *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": ""})
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    plain, crowded = run(), run("--co-learners", "5", "--weight-levels", "4")
    assert plain["active_neurons"] == 20 and plain["test_accuracy"] > 35  # chance: 10 %
    assert crowded["co_learners"] == 5 and crowded["test_accuracy"] != plain["test_accuracy"]


def test_readout_epoch_harness_reports_floor_both_steps_and_torch_dropout(tmp_path):
    out = tmp_path / "readout.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cpu_readout_epoch.py"), "--rows", "300", "--width", "96",
           "--epochs", "1", "--repeats", "1", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    from torch import nn

    from neurohebb.readout import compiled_unavailable_reason

    if compiled_unavailable_reason(nn.Linear(2, 2)) is None:
        assert list(data["timings"]) == ["floor: gather + 2 products", "readout epoch (engine, compiled step)",
                                         "readout epoch (engine, torch step)", "readout epoch, torch step + dropout mask"]
        # same seeds and masks, 5 steps: the two steps differ by float32 rounding only
        assert 0 <= data["compiled_vs_torch_max_weight_diff"] < 1e-5
    else:
        assert list(data["timings"]) == ["floor: gather + 2 products", "readout epoch (engine, torch step)",
                                         "readout epoch, torch step + dropout mask"]
    assert all(row["median_s"] > 0 for row in data["timings"].values())
    assert data["timings"]["floor: gather + 2 products"]["ratio_to_floor"] == 1.0


def test_hebbian_epoch_harness_times_both_fake_quant_paths_and_compares_them(tmp_path):
    out = tmp_path / "epoch.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cpu_hebbian_epoch.py"), "--train-subset", "100", "--repeats", "1",
           "--quant-repeats", "1", "--quant-torch-path", "--torch-linear", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["rows"]) == {"matmul floor", "floor + one W update pass", "hebbian epoch (float32)",
                                 "hebbian epoch (fake-quant, sweep's m8 policy)", "... the same on the torch path",
                                 "fake-quant floor (f64 products, draws, W)", "... with hebbian.linear_kernel=torch"}
    assert all(r["median_s"] > 0 for r in data["rows"].values())
    floor = data["rows"]["floor + one W update pass"]
    assert data["epoch_median_over_fastest_update_floor"] == pytest.approx(
        data["rows"]["hebbian epoch (float32)"]["median_s"] / floor["min_s"])
    from neurohebb.steps import linear_kernels

    assert data["linear_kernel"] in ("compiled", linear_kernels.unavailable_reason())
    assert len(data["fake_quant_floor_over_float32_per_repeat"]) == 1
    assert data["torch_path_weights_identical"] == [True]
    assert data["fake_quant_stats_every"] == 10


def test_fake_quant_floor_draws_as_many_numbers_as_the_engine_step():
    """The floor row's claim rests on the step drawing two twister numbers per synapse: one
    fake-quant step of the sweep's default point must leave the generator exactly where
    2 * K * I draws from the same state leave it."""
    import numpy as np
    import torch

    from neurohebb.config import resolve_config
    from neurohebb.network import HebbNetwork
    from neurohebb.steps import fused_tail
    from neurohebb.steps.fakequant import FakeQuantEngine

    if not fused_tail.twister_ok():
        pytest.skip(fused_tail.unavailable_reason() or "no twister")
    config = resolve_config("mnist-mlp", device="cpu")
    step = FakeQuantEngine("weight=m8:stochastic,update=s16.14:stochastic", seed=0, stats_every=1000)
    net = HebbNetwork(config, generator=torch.Generator().manual_seed(0), step=step)
    w = net.blocks[0].layer.weight
    x = torch.rand(10, 1, 28, 28)
    net.learn_block(0, x, propagate=False)  # the first step: the weights' initial rounding draws too
    before = step.generator.get_state()
    net.learn_block(0, x, propagate=False)
    reference = torch.Generator()
    reference.set_state(before)
    twister = fused_tail.TwisterState(reference)
    twister.draws(np.empty((2, w.numel()), np.uint32))
    twister.put_back()
    assert torch.equal(step.generator.get_state(), reference.get_state())


def test_linear_kernel_accuracy_refuses_an_unknown_variant_before_loading_data():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "linear_kernel_accuracy.py"), "--variants", "compiled,fast"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown variant 'fast'" in done.stderr and "torch-up" in done.stderr
