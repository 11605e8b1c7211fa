"""Trained weights as spikes: the spiking network agrees with the rate model, and the CLI writes
its results (numpy target, a small single-layer network trained on the bundled digits)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

pytest.importorskip("brian2")
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")  # Brian2's pyparsing calls

from neurohebb.backends.brian2 import CircuitParams, compare_inference, normalised_counts, select_target, spiking_layer  # noqa: E402
from neurohebb.cli import main  # noqa: E402
from neurohebb.config import resolve_config  # noqa: E402
from neurohebb.errors import ConfigError, DataError  # noqa: E402
from neurohebb.network import HebbNetwork  # noqa: E402


ACTIVATIONS = {"softmax": ['layers.0.activation="softmax"', "layers.0.activation_param=5.0"],
               "triangle": ['layers.0.activation="triangle"', "layers.0.activation_param=1.0"]}


def _digits_mlp_config(activation: str):
    overrides = ["data.dataset=digits", "layers.0.out_channels=40", "hebbian.epochs=5", "readout.epochs=15", *ACTIVATIONS[activation]]
    return resolve_config("mnist-mlp", None, overrides, device="cpu")


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """mnist-mlp-style layers (40 neurons) trained on 8x8 digits, one per readout activation,
    written as run directories."""
    from neurohebb.data import load_dataset
    from neurohebb.engine import train

    torch.set_num_threads(1)
    select_target("numpy")
    runs = {}
    for activation in ACTIVATIONS:
        run_dir = tmp_path_factory.mktemp("brian2") / f"digits-{activation}"
        net, _ = train(_digits_mlp_config(activation), run_dir, progress=False)
        runs[activation] = (run_dir, net)
    return runs, load_dataset("digits")


@pytest.fixture(scope="module")
def digits_run(digits_runs):
    runs, ds = digits_runs
    return runs["triangle"][0], runs["triangle"][1], ds


@pytest.mark.parametrize("activation", ["softmax", "triangle"])
def test_spiking_network_agrees_with_the_rate_model(digits_runs, activation):
    runs, ds = digits_runs
    _, net = runs[activation]
    # a Triangle code is spread over many neurons: it needs ~40x the spikes of the soft WTA
    params = CircuitParams(duration=0.1, neuron_rate=1000.0)
    metrics, record, arrays = compare_inference(net, ds.x_test[:80], ds.y_test[:80], params, seed=1,
                                                calibration_images=ds.x_train[:500])
    assert metrics["activation"] == activation
    if activation == "softmax":  # the population fires R*T spikes per presentation whatever the image
        assert metrics["output_spikes_per_sample"] == pytest.approx(params.output_rate * params.duration, rel=0.05)
    else:  # the gain was calibrated to 1000 Hz per neuron on training images; the rise costs ~tau/T
        expected = 1000.0 * 40 * params.effective_time()
        assert metrics["output_spikes_per_sample"] == pytest.approx(expected, rel=0.25)
        assert metrics["saturated_fraction"] < 0.02
    assert metrics["silent_samples"] == 0
    # the counts estimate the activation the readout reads, and the trained readout fed that
    # estimate mostly reproduces the rate model's decisions. (This small digits network has small
    # decision margins; the MNIST figures are in benchmarks/brian2_inference_sweep.py.)
    assert metrics["feature_relative_l1_error"] < (0.5 if activation == "softmax" else 0.15), metrics
    assert metrics["agreement"] >= (85.0 if activation == "softmax" else 70.0), metrics
    assert abs(metrics["test_accuracy"] - metrics["reference_accuracy"]) <= 10.0
    # the reference is really the network's own prediction
    x = torch.from_numpy(ds.x_test[:80]).float() / 255
    assert np.array_equal(arrays["reference"], net.predict(x).numpy())
    # longer presentations help: the first 5 ms (membranes still rising) agree much less
    sweep = {r["window_ms"]: r for r in metrics["presentation_sweep"]}
    assert sweep[100.0]["agreement"] == metrics["agreement"]
    assert sweep[5.0]["agreement"] < metrics["agreement"] - 15


def test_normalised_counts_estimate_a_distribution():
    counts = np.array([[3, 1, 0, 0], [0, 0, 0, 0]])
    f = normalised_counts(counts)
    np.testing.assert_allclose(f, [[0.75, 0.25, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize("override, problem", [
    ("layers.0.batchnorm=true", "batchnorm"),
    ('layers.0.activation="relu"', "activation"),
    ("layers.0.bias=true", "bias with the triangle activation"),
])
def test_layers_the_circuit_cannot_map_are_rejected(override, problem):
    config = resolve_config("mnist-mlp", None, ["data.dataset=digits", "layers.0.out_channels=8", override], device="cpu")
    with pytest.raises(ConfigError, match=problem):
        spiking_layer(HebbNetwork(config))


def test_conv_networks_are_rejected():
    with pytest.raises(ConfigError, match="one linear soft-WTA layer"):
        spiking_layer(HebbNetwork(resolve_config("digits", device="cpu")))


def test_images_of_the_wrong_shape_are_rejected(digits_run):
    _, net, _ = digits_run
    with pytest.raises(DataError, match="uint8"):
        compare_inference(net, np.zeros((2, 1, 28, 28), dtype=np.uint8), np.zeros(2))


def test_cli_writes_metrics_predictions_and_figures(digits_run, tmp_path, capsys):
    run_dir, _, _ = digits_run
    out = tmp_path / "cmp"
    code = main(["compare", "brian2", str(run_dir), "--samples", "30", "--duration", "40", "--target", "numpy",
                 "--raster-samples", "3", "--out", str(out), "--no-progress"])
    assert code == 0
    for name in ("metrics.json", "presentation_sweep.csv", "predictions.csv", "raster.png", "accuracy_vs_time.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == 30 and metrics["target"] == "numpy" and metrics["duration_ms"] == 40.0
    assert metrics["activation"] == "triangle" and metrics["circuit"]["gain"] > 0
    with open(out / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    agree = np.mean([r["rate_prediction"] == r["spiking_prediction"] for r in rows]) * 100
    assert metrics["agreement"] == pytest.approx(agree, abs=1e-3)
    assert json.loads(capsys.readouterr().out.split("results written")[0])["agreement"] == metrics["agreement"]


@pytest.mark.parametrize("argv, message", [
    (["--samples", "0"], "--samples must be >= 1"),
    (["--duration", "0.3"], "multiple of dt"),
    (["--input-rate", "5000"], "rate\\*dt must be <= 1"),
])
def test_cli_bad_arguments_give_one_line_errors(digits_run, capsys, argv, message):
    run_dir, _, _ = digits_run
    code = main(["compare", "brian2", str(run_dir), "--target", "numpy", "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("neurohebb: error:")
    import re

    assert re.search(message, err)


def test_cli_rejects_a_missing_run_directory(tmp_path, capsys):
    code = main(["compare", "brian2", str(tmp_path / "nope"), "--target", "numpy", "--no-progress"])
    assert code == 2 and "run directory" in capsys.readouterr().err
