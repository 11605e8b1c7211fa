"""`deploy lava-learn`: weights compared with the engine as Lava runs (no trajectory kept), the
learned layer evaluated beside its starting weights, receptive fields written, a Triangle preset."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurohebb.config import resolve_config
from neurohebb.data import load_dataset
from neurohebb.engine import load_run, train
from neurohebb.errors import ConfigError

TRIANGLE = ["data.dataset=\"digits\"", "layers.0.out_channels=12", "hebbian.epochs=0", "readout.epochs=20"]


@pytest.fixture(scope="module")
def lava():
    from neurohebb.backends.lava import require_lava

    return require_lava()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_subset=300, test_subset=150)


@pytest.fixture(scope="module")
def random_run(tmp_path_factory, digits):
    """mnist-wta100's layer (Triangle activation) on digits, left at its random initial weights."""
    config = resolve_config("mnist-wta100", overrides=TRIANGLE)
    assert config.layers[0].activation == "triangle"
    out = tmp_path_factory.mktemp("lavalearn") / "run"
    train(config, out, progress=False, dataset=digits)
    return out


def _net(lava, images, neurons=10, steps=8):
    from neurohebb.backends.lava.mapping import WTACircuit, map_arrays

    w = np.abs(np.random.default_rng(1).normal(size=(neurons, images.shape[1])))
    return map_arrays(w, images, WTACircuit(steps=steps, spikes_target=3))


def test_streamed_comparison_equals_a_replay_of_the_recorded_spikes(lava, digits):
    from neurohebb.backends.lava.learning import OnChipRule, compare, run_lava_learning

    images = np.asarray(digits.x_train[:60]).reshape(60, -1)
    net = _net(lava, images)
    rule = OnChipRule()
    streamed = run_lava_learning(net, images[:8], rule)
    assert streamed.weights is None and streamed.pre is None  # nothing per sample kept
    recorded = run_lava_learning(net, images[:8], rule, record=True)
    np.testing.assert_array_equal(streamed.final, recorded.weights[-1])
    # replay the recorded spikes step by step: the engine lands where Lava was after every sample
    engine = rule.engine(recorded.initial)
    marks = [recorded.lead_in + recorded.window * (i + 1) for i in range(8)]
    for t in range(len(recorded.pre)):
        engine.step(recorded.pre[t], recorded.post[t])
        if t + 1 in marks:
            np.testing.assert_array_equal(engine.weights, recorded.weights[marks.index(t + 1)])
    result = compare(streamed, rule)
    assert result["identical"] and result["samples_identical"] == 8 and result["synapses_changed"] > 10
    assert result["post_spikes"] == int(recorded.post.sum()) > 0


def test_the_streamed_comparison_sees_a_different_rule(lava, digits, monkeypatch):
    """The comparison can fail: an engine running another rule disagrees with Lava."""
    from neurohebb.backends.lava import learning
    from neurohebb.backends.lava.sop import SopEngine

    images = np.asarray(digits.x_train[:60]).reshape(60, -1)
    rule = learning.OnChipRule()
    monkeypatch.setattr(learning.OnChipRule, "engine", lambda self, w: SopEngine(
        "2^-3 * x1 * y0 - 2^-5 * w * y0", w, self.traces, self.t_epoch, self.rng_seed, self.model))
    result = learning.compare(learning.run_lava_learning(_net(lava, images), images[:6], rule), rule)
    assert not result["identical"] and result["max_abs_difference"] > 0 and result["samples_identical"] < 6


@pytest.mark.slow
def test_learn_run_evaluates_the_learned_layer_beside_its_start(lava, random_run, digits, tmp_path):
    from neurohebb.backends.lava.learning import learn_run
    from neurohebb.probe import readout_accuracy

    out = tmp_path / "learn"
    result = learn_run(random_run, samples=12, steps=8, calibration=200, out_dir=out, dataset=digits)
    saved = json.loads((out / "learning.json").read_text())
    assert saved["identical"] and saved["samples"] == 12
    assert saved["initial_weights"].startswith("random")
    assert saved["test_images"] == 150 and saved["readout_train_images"] == 300
    assert saved["learning_gain"] == pytest.approx(saved["learned_test_accuracy"] - saved["initial_test_accuracy"], abs=1e-3)
    assert (out / "receptive_fields.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the reported accuracies are the probe's on the saved weights (learned) and the mapped start
    weights = np.load(out / "learned_weights.npz", allow_pickle=False)
    assert (weights["learned"] != weights["initial"]).sum() == saved["synapses_changed"] > 0
    config, net = load_run(random_run)
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in (digits.x_train, digits.y_train, digits.x_test, digits.y_test)]
    for key, name in (("learned", "learned_test_accuracy"), ("initial", "initial_test_accuracy")):
        with torch.no_grad():
            net.blocks[0].layer.weight.copy_(torch.from_numpy(weights[key] * float(weights["unit"])).float())
        assert readout_accuracy(net, config, *tensors, seed=0)["test_accuracy"] == result[name]


@pytest.mark.slow
def test_lava_learn_cli_prints_accuracies_and_rejects_bad_subsets(lava, random_run, tmp_path, capsys, monkeypatch):
    from neurohebb.backends.lava import learning
    from neurohebb.cli import main

    real = learning.learn_run
    small = load_dataset("digits", train_subset=200, test_subset=60)
    monkeypatch.setattr(learning, "learn_run", lambda *a, **k: real(*a, **dict(k, dataset=small, calibration=100)))
    out = tmp_path / "o"
    assert main(["deploy", "lava-learn", str(random_run), "--samples", "3", "--steps", "8", "--no-progress",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert '"learned_test_accuracy"' in text and '"initial_test_accuracy"' in text
    assert main(["deploy", "lava-learn", str(random_run), "--samples", "3", "--no-eval", "--out", str(out)]) == 0
    assert "learned_test_accuracy" not in json.loads((out / "learning.json").read_text())
    capsys.readouterr()
    assert main(["deploy", "lava-learn", str(random_run), "--readout-subset", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--readout-subset must be >= 1" in err


def test_lava_learn_inhibition_path_is_the_interneuron_unless_asked():
    """lava-learn builds its own circuit (`WTACircuit`): the interneuron `deploy lava` maps, or
    K x K lateral synapses when asked; anything else is a one-line error."""
    from neurohebb.backends.lava.learning import resolve_inhibition_path

    assert resolve_inhibition_path(None) == "interneuron"
    assert resolve_inhibition_path("lateral") == "lateral"
    with pytest.raises(ConfigError, match="choose one of: interneuron, lateral"):
        resolve_inhibition_path("sideways")


def test_rule_validation_is_one_line():
    from neurohebb.backends.lava.learning import OnChipRule

    with pytest.raises(ConfigError, match="t_epoch"):
        OnChipRule(t_epoch=64)
