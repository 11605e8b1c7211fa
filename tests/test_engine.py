"""End-to-end behaviour of the training engine on the bundled digits: reproducibility,
convergence of the weight norms, checkpoints and run directories."""
from __future__ import annotations

import json

import pytest
import torch

from neurohebb.config import resolve_config
from neurohebb.engine import load_run, train
from neurohebb.errors import NeurohebbError
from neurohebb.network import HebbNetwork, load_checkpoint, save_checkpoint
from neurohebb.rules import neuron_norms

FAST = ["readout.epochs=5"]


def digits_config(*overrides: str, seed: int = 0):
    return resolve_config("digits", overrides=[*FAST, *overrides], seed=seed, device="cpu")


def test_same_seed_gives_identical_weights_and_accuracy():
    net_a, m_a = train(digits_config(), progress=False)
    net_b, m_b = train(digits_config(), progress=False)
    for (name, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert torch.equal(a, b), name
    assert m_a["test_accuracy"] == m_b["test_accuracy"]


def test_different_seeds_give_different_weights():
    net_a, _ = train(digits_config(seed=0), progress=False)
    net_b, _ = train(digits_config(seed=1), progress=False)
    assert not torch.equal(net_a.blocks[0].layer.weight, net_b.blocks[0].layer.weight)


def test_weight_norms_converge_towards_one():
    config = digits_config("hebbian.epochs=4")
    init = HebbNetwork(config, generator=torch.Generator().manual_seed(0))
    net, _ = train(config, progress=False)
    for before, after in zip(init.blocks, net.blocks):
        gap_before = (neuron_norms(before.layer.weight) - 1).abs().mean()
        gap_after = (neuron_norms(after.layer.weight) - 1).abs().mean()
        assert gap_after < 0.5 * gap_before


def test_hebbian_features_beat_random_features_on_digits():
    # the paper's control: same network, weights left at their random init
    _, hebb = train(digits_config("readout.epochs=30"), progress=False)
    _, rand = train(digits_config("readout.epochs=30", 'layers.0.rule="random"', 'layers.1.rule="random"'), progress=False)
    assert hebb["test_accuracy"] > 90.0
    assert hebb["test_accuracy"] > rand["test_accuracy"]


@pytest.mark.parametrize("extra", [[], ['precision.policy="weight=m8:stochastic"']], ids=["float32", "fake-quant"])
def test_the_in_run_control_is_the_untrained_run(extra):
    """train(..., control=True) measures the same network with the Hebbian phase skipped: the same
    accuracy as a separate hebbian.epochs=0 run, and the gain is the difference."""
    _, trained = train(digits_config(*extra), progress=False, control=True)
    _, untrained = train(digits_config(*extra, "hebbian.epochs=0"), progress=False)
    assert trained["random_weights_test_accuracy"] == untrained["test_accuracy"]
    assert trained["learning_gain"] == round(trained["test_accuracy"] - untrained["test_accuracy"], 4)
    assert trained["control"]["seconds"] > 0 and "hebbian.epochs = 0" in trained["control"]["what"]


def test_greedy_mode_trains_every_layer():
    net, metrics = train(digits_config('hebbian.mode="greedy"'), progress=False)
    init = HebbNetwork(net.config, generator=torch.Generator().manual_seed(0))
    for a, b in zip(init.blocks, net.blocks):
        assert not torch.equal(a.layer.weight, b.layer.weight)
    assert metrics["test_accuracy"] > 80.0


def test_hard_wta_rule_trains():
    _, metrics = train(digits_config('layers.0.rule="hard-wta"', 'layers.1.rule="hard-wta"'), progress=False)
    assert metrics["test_accuracy"] > 80.0


def test_run_directory_is_complete_and_reloads(tmp_path):
    out = tmp_path / "run"
    net, metrics = train(digits_config(), out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".neurohebb-run", "checkpoint.pt", "config.toml", "metrics.json", "receptive_fields.png"]
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "unsup_seconds", "readout_seconds", "total_seconds", "preset", "dataset", "device", "seed"):
        assert key in saved
    assert saved["preset"] == "digits" and saved["dataset"] == "digits" and saved["seed"] == 0
    # which readout step ran is recorded: a readout this small keeps torch's (readout.kernel = auto)
    assert saved["readout_kernel"] == "torch"
    config, loaded = load_run(out)
    assert config == net.config
    x = torch.rand(4, 1, 8, 8)
    net.eval()
    assert torch.equal(loaded(x), net(x))
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging leftovers


def test_existing_run_directory_is_not_overwritten_without_flag(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(NeurohebbError, match="already exists"):
        train(digits_config(), out, progress=False)
    assert (out / "keep.txt").read_text() == "precious"


def test_failed_run_leaves_no_directory(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(NeurohebbError, match="NaN/Inf"):
        train(digits_config("layers.0.lr=1e38", 'layers.0.lr_schedule="constant"', "layers.0.normalize_update=false"), out, progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(NeurohebbError, match="corrupt"):
        load_checkpoint(bad)


def test_checkpoint_with_nan_weights_is_rejected(tmp_path):
    net = HebbNetwork(digits_config(), generator=torch.Generator().manual_seed(0))
    net.blocks[0].layer.weight[0, 0, 0, 0] = float("nan")
    save_checkpoint(net, tmp_path / "c.pt")
    with pytest.raises(NeurohebbError, match="NaN"):
        load_checkpoint(tmp_path / "c.pt")


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(NeurohebbError, match="no CUDA GPU"):
        train(resolve_config("digits", device="cuda"), progress=False)


def test_extract_features_equals_the_batches_concatenated():
    """Features are written into one preallocated tensor; they must be each batch's, in order."""
    from neurohebb.engine import FEATURE_BATCH, extract_features

    config = digits_config()
    net = HebbNetwork(config, generator=torch.Generator().manual_seed(0))
    x = torch.randint(0, 256, (FEATURE_BATCH + 37, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    feats = extract_features(net, x, torch.device("cpu"))
    expected = torch.cat([net.features(x[s:s + FEATURE_BATCH].float() / 255) for s in range(0, x.shape[0], FEATURE_BATCH)])
    assert feats.shape == expected.shape
    assert torch.equal(feats, expected)
    empty = extract_features(net, x[:0], torch.device("cpu"))
    assert empty.shape == (0, expected.shape[1])


def test_channels_last_features_agree_with_the_nchw_blocks():
    """`HebbNetwork.features` runs conv blocks channels-last on the CPU: the same features as the
    blocks' NCHW forward to float32 rounding, in the same (C, H, W) order, for max and average
    pooling and Triangle powers other than one; the input is not modified."""
    from neurohebb.config import resolve_config

    config = resolve_config("cifar10", overrides=["layers.0.out_channels=16", "layers.1.out_channels=24",
                                                  "layers.2.out_channels=32"])
    net = HebbNetwork(config, generator=torch.Generator().manual_seed(0)).eval()
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    before = x.clone()
    with torch.no_grad():
        nchw = x
        for block in net.blocks:
            nchw = block(nchw)
        nchw = nchw.reshape(6, -1)
        feats = net.features(x)
    assert torch.equal(x, before)
    assert feats.shape == nchw.shape and feats.is_contiguous()
    torch.testing.assert_close(feats, nchw, rtol=1e-5, atol=1e-5 * float(nchw.abs().max()))
    assert {b.cfg.pool for b in net.blocks} == {"max", "avg"}
