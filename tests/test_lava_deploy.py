"""`neurohebb deploy lava`: a run directory deployed end to end, its metrics, files and errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurohebb.config import config_from_dict
from neurohebb.data import Dataset
from neurohebb.engine import write_run
from neurohebb.network import HebbNetwork

NUM_CLASSES = 4


def bars_dataset(n_train: int = 200, n_test: int = 40, seed: int = 0) -> Dataset:
    """8x8 images of one bright bar; class = orientation x half (4 classes), dim noise elsewhere."""
    rng = np.random.default_rng(seed)

    def make(n):
        x = rng.integers(0, 30, size=(n, 8, 8)).astype(np.uint8)
        pos = rng.integers(0, 8, size=n)
        vertical = rng.random(n) < 0.5
        for img, p, v in zip(x, pos, vertical):
            if v:
                img[:, p] = 255
            else:
                img[p, :] = 255
        y = (2 * vertical + (pos >= 4)).astype(np.int64)
        return x.reshape(n, 1, 8, 8), y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return Dataset("digits", x_train, y_train, x_test, y_test, NUM_CLASSES, "synthetic bars")


def bars_network() -> HebbNetwork:
    """16 WTA neurons tuned to the 16 bars (unit-norm templates) and a readout that pools them by class."""
    config = config_from_dict({
        "data": {"dataset": "digits"},
        "layers": [{"kind": "linear", "out_channels": 16, "rule": "softhebb", "batchnorm": False,
                    "activation": "softmax", "activation_param": 5.0}],
    })
    net = HebbNetwork(config, num_classes=NUM_CLASSES)
    w = torch.zeros(16, 8, 8)
    classes = torch.zeros(16, dtype=torch.long)
    for k in range(16):
        vertical, p = k >= 8, k % 8
        if vertical:
            w[k, :, p] = 1.0
        else:
            w[k, p, :] = 1.0
        classes[k] = 2 * int(vertical) + int(p >= 4)
    with torch.no_grad():
        net.blocks[0].layer.weight.copy_(w.reshape(16, 64) / np.sqrt(8))
        net.readout.weight.copy_(torch.nn.functional.one_hot(classes, NUM_CLASSES).t().float() * 4 - 1)
        net.readout.bias.zero_()
    return net


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bars-run")
    net = bars_network()
    write_run(path, net.config, net, {"test_accuracy": None})
    return path


@pytest.mark.parametrize("wta", ["spiking", "currents"])
def test_deploy_writes_metrics_and_raster_and_agrees_with_the_model(run_dir, tmp_path, wta):
    from neurohebb.backends.lava.deploy import deploy_run

    out = tmp_path / "deploy"
    metrics = deploy_run(run_dir, samples=12, steps=12, out_dir=out, dataset=bars_dataset(), calibration=100,
                         progress=False, wta=wta)
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert (out / "raster.png").stat().st_size > 10_000
    for key in ("test_accuracy", "agreement", "spikes_per_sample", "synaptic_ops_per_sample", "samples_per_second"):
        assert key in metrics
    # the templates make the task easy: the model and the chip both solve it
    assert metrics["model_accuracy"] == 100.0
    assert metrics["test_accuracy"] == 100.0 and metrics["agreement"] == 1.0
    assert metrics["silent_samples"] == 0
    assert metrics["emulation_counts_identical"] is True and metrics["emulation_potentials_identical"] is True
    assert metrics["wta"] == wta
    if wta == "currents":  # integrators never fire: only input spikes reach synapses
        assert metrics["wta_spikes_per_sample"] == 0
    # synaptic ops: input spike -> 16 neurons; WTA spike -> interneuron + 4 readout; interneuron -> 16
    expected_ops = (metrics["input_spikes_per_sample"] * 16 + metrics["wta_spikes_per_sample"] * (1 + NUM_CLASSES)
                    + metrics["interneuron_spikes_per_sample"] * 16)
    assert metrics["synaptic_ops_per_sample"] == pytest.approx(expected_ops, abs=0.1)
    assert metrics["mapping"]["num_weight_bits"] == 8 and metrics["tag"] == "fixed_pt"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--samples", "0"], "--samples must be >= 1"),
        (["--steps", "0"], "steps per sample must be in 1..4096"),
        (["--coding", "rate", "--spikes-target", "100"], "spikes_target must be in"),
        (["--samples", "5", "--weight-bits", "12"], "at most 8 weight bits"),
        (["--samples", "500"], "exceeds the 40 test images"),
    ],
)
def test_cli_errors_are_one_line(run_dir, tmp_path, capsys, argv, fragment, monkeypatch):
    from neurohebb.backends.lava import deploy as deploy_module
    from neurohebb.cli import main

    real = deploy_module.deploy_run
    monkeypatch.setattr(deploy_module, "deploy_run", lambda *a, **k: real(*a, **dict(k, dataset=bars_dataset())))
    assert main(["deploy", "lava", str(run_dir), "--out", str(tmp_path / "o"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and fragment in err


def test_cli_rejects_a_convolutional_run(tmp_path, capsys):
    """A conv run that neither circuit expresses (max pooling: not the sigma-delta circuit's)."""
    from neurohebb.cli import main

    config = config_from_dict({"data": {"dataset": "digits"},
                               "layers": [{"kind": "conv", "out_channels": 4, "kernel_size": 3, "pool": "max"}]})
    net = HebbNetwork(config)
    (tmp_path / "conv").mkdir()
    write_run(tmp_path / "conv", config, net, {})
    assert main(["deploy", "lava", str(tmp_path / "conv"), "--no-progress"]) == 2
    assert "layers.0 is convolutional" in capsys.readouterr().err


def test_cli_on_chip_learning_writes_an_identical_trajectory(run_dir, tmp_path, capsys, monkeypatch):
    from neurohebb.backends.lava import learning
    from neurohebb.cli import main

    real = learning.learn_run
    monkeypatch.setattr(learning, "learn_run", lambda *a, **k: real(*a, **dict(k, dataset=bars_dataset(), calibration=100)))
    out = tmp_path / "learn"
    assert main(["deploy", "lava-learn", str(run_dir), "--samples", "4", "--steps", "10", "--out", str(out)]) == 0
    result = json.loads((out / "learning.json").read_text())
    assert result["identical"] is True and result["samples"] == 4 and result["post_spikes"] > 0
    assert result["rule"] == "2^-2 * x1 * y0 - 2^-5 * w * y0"
    assert '"identical": true' in capsys.readouterr().out
