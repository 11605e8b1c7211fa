"""Learning curves: probing during training changes nothing the training computes, and each point
is the probe's accuracy for the weights of that moment."""
from __future__ import annotations

import pytest
import torch

from neurohebb.config import OnChipConfig, resolve_config
from neurohebb.data import load_dataset
from neurohebb.engine import dataset_tensors, train
from neurohebb.errors import ConfigError
from neurohebb.onchip.curve import learning_curve
from neurohebb.probe import readout_accuracy

SMALL = ["data.dataset=\"digits\"", "layers.0.out_channels=16", "readout.epochs=5", "onchip.steps=8",
         "onchip.calibration=100"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_subset=240, test_subset=120)


def _config(*extra):
    return resolve_config("mnist-wta100", overrides=[*SMALL, *extra])


def test_chip_curve_ends_on_the_weights_train_ends_on(digits):
    config = _config("onchip.chip=\"loihi2\"", f"onchip.rule=\"{OnChipConfig().rule}\"")
    net, metrics = train(config, progress=False, dataset=digits)
    points = learning_curve(config, [0, 100, 240], dataset=digits)
    assert [p["samples"] for p in points] == [0, 100, 240]
    assert all(p["mode"] == "chip:loihi2" for p in points)
    # the chip holds its 100 calibration images back, then learns from them: nothing before that
    assert points[0]["samples_learned"] == 0 and points[1]["samples_learned"] == 100 and points[2]["samples_learned"] == 240
    assert points[0]["active_neurons"] == 0 < points[1]["active_neurons"] <= points[2]["active_neurons"] <= 16
    assert points[2]["active_neurons"] == metrics["diagnostics"][0]["active_neurons"]
    # the last point is the probe of exactly the weights `train` learned (probing shifted nothing)
    x_train, y_train, x_test, y_test = dataset_tensors(digits)
    assert points[-1]["test_accuracy"] == readout_accuracy(net, config, x_train, y_train, x_test, y_test)["test_accuracy"]


def test_float_curve_counts_winners_and_starts_from_the_initial_weights(digits):
    from neurohebb.engine import seeded_generators
    from neurohebb.network import HebbNetwork

    config = _config()
    points = learning_curve(config, [0, 120, 240], dataset=digits)
    init_gen, _ = seeded_generators(config.seed)
    start = HebbNetwork(config, num_classes=digits.num_classes, generator=init_gen)
    assert points[0]["test_accuracy"] == readout_accuracy(start, config, *dataset_tensors(digits))["test_accuracy"]
    assert points[0]["mode"] == "float32" and points[0]["active_neurons"] == 0
    assert 1 <= points[1]["active_neurons"] <= points[2]["active_neurons"] <= 16


def test_random_control_is_one_probe_for_every_checkpoint(digits):
    points = learning_curve(_config("layers.0.rule=\"random\""), [0, 240], dataset=digits)
    assert [p["mode"] for p in points] == ["random weights"] * 2
    assert points[0]["test_accuracy"] == points[1]["test_accuracy"] and points[1]["samples"] == 240


@pytest.mark.parametrize("checkpoints, fragment", [([], "at least one checkpoint"), ([-1], "0..240"), ([241], "0..240")])
def test_bad_checkpoints_are_one_line(digits, checkpoints, fragment):
    with pytest.raises(ConfigError, match=fragment):
        learning_curve(_config(), checkpoints, dataset=digits)


def test_runs_a_curve_cannot_follow_are_one_line(digits):
    greedy = resolve_config("digits", overrides=["hebbian.mode=\"greedy\"", "layers.0.out_channels=4", "layers.1.out_channels=4"])
    with pytest.raises(ConfigError, match="use hebbian.mode = \"simultaneous\""):
        learning_curve(greedy, [0], dataset=digits)
    with pytest.raises(ConfigError, match="labelled training images in memory"):
        learning_curve(_config("readout.augment=\"crop-flip\""), [0], dataset=digits)


def test_probe_leaves_the_global_random_state_alone(digits):
    config = _config()
    from neurohebb.network import HebbNetwork

    net = HebbNetwork(config, num_classes=digits.num_classes, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    readout_accuracy(net, config, *dataset_tensors(digits))
    assert torch.equal(torch.rand(3), expected)
