"""Multilayer conv networks deployed as the sigma-delta circuit: exact folding, quantisation,
Lava = NumPy twin graded spike for graded spike, and `deploy lava` end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurohebb.config import config_from_dict
from neurohebb.description import describe
from neurohebb.engine import write_run
from neurohebb.network import HebbNetwork

pytest.importorskip("scipy")


def conv_net(pool: str = "avg", power: float = 1.0, seed: int = 0, batchnorm: bool = True) -> HebbNetwork:
    """Two conv blocks on 8x8 images with random weights and non-trivial BatchNorm statistics."""
    block = {"kind": "conv", "kernel_size": 3, "padding": 1, "activation": "triangle", "activation_param": power,
             "pool": pool, "pool_kernel": 2, "pool_stride": 2, "batchnorm": batchnorm}
    config = config_from_dict({"data": {"dataset": "digits"},
                               "layers": [dict(block, out_channels=4), dict(block, out_channels=6)]})
    return random_network(config, num_classes=4, seed=seed)


def random_network(config, num_classes: int, seed: int) -> HebbNetwork:
    """`config`'s network with random weights, readout and non-trivial BatchNorm statistics."""
    gen = torch.Generator().manual_seed(seed)
    net = HebbNetwork(config, num_classes=num_classes, generator=gen)
    with torch.no_grad():
        for b in net.blocks:
            if b.norm is not None:
                b.norm.running_mean.uniform_(-0.5, 0.5, generator=gen)
                b.norm.running_var.uniform_(0.2, 2.0, generator=gen)
        net.readout.weight.normal_(generator=gen)
        net.readout.bias.normal_(generator=gen)
    return net.eval()


def images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 8, 8)).astype(np.uint8)


def test_folded_stages_compute_the_network_exactly():
    from neurohebb.backends.lava.fold import fold, forward

    net = conv_net()
    x = images(16)
    logits = forward(fold(describe(net)), x)[-1]
    expected = net.double()(torch.from_numpy(x).double() / 255.0).detach().numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"pool": "max"}, 'pool = "max": max pooling has no linear'),
    ({"power": 0.7}, "only Triangle power 1"),
])
def test_what_does_not_fold_is_named(kwargs, fragment):
    from neurohebb.backends.lava.fold import fold
    from neurohebb.backends.lava.mapping import UnsupportedNetwork

    with pytest.raises(UnsupportedNetwork, match=fragment):
        fold(describe(conv_net(**kwargs)))


def test_quantised_circuit_tracks_the_float_logits():
    """The integer readout times its unit is the float logit up to the 8-bit weights (a few %)."""
    from neurohebb.backends.lava.fold import fold, forward
    from neurohebb.backends.lava.sigma_delta import emulate, map_sigma_delta

    net = conv_net()
    spec = describe(net)
    sd = map_sigma_delta(spec, images(64, seed=2))
    x = images(32)
    twin = emulate(sd, x)
    logits = forward(fold(spec), x)[-1]
    err = np.abs(twin.readout * sd.stages[-1].unit - logits).max() / np.abs(logits).max()
    assert err < 0.05
    peaks = sd.calibration["peak_units"]
    assert [s.kind for s in sd.stages] == ["sparse", "sparse", "conv", "sparse"]  # block0, pool0, block1, readout
    assert all(s.weight_exp >= -8 for s in sd.stages) and peaks[-1] <= 2**14 + 1
    # a Sparse stage's activations use about 13 bits; a Conv's unit is its input's, its sums stay under the 24-bit wrap
    assert all(p <= 2**13 + 1 for p, s in zip(peaks[:-1], sd.stages) if s.kind == "sparse")
    assert all(2**13 < p < 2**23 and s.weight_exp == 0 for p, s in zip(peaks, sd.stages) if s.kind == "conv")
    # emulating in chunks or at once gives the same graded spikes (samples are independent)
    again = emulate(sd, x, chunk=5)
    np.testing.assert_array_equal(again.readout, twin.readout)
    for a, b in zip(again.counts, twin.counts):
        np.testing.assert_array_equal(a, b)


def test_lava_reproduces_the_twin_spike_for_spike():
    pytest.importorskip("lava")
    from neurohebb.backends.lava.sd_circuit import run_lava_sd
    from neurohebb.backends.lava.sigma_delta import emulate, map_sigma_delta

    net = conv_net(seed=3)
    sd = map_sigma_delta(describe(net), images(64, seed=4))
    x = images(6, seed=5)
    twin = emulate(sd, x, raster_sample=2)
    run, _ = run_lava_sd(sd, x, raster_sample=2)
    np.testing.assert_array_equal(run.readout, twin.readout)
    for a, b in zip(run.counts, twin.counts):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(run.rasters, twin.rasters):
        np.testing.assert_array_equal(a, b)
    assert run.counts[0].sum() > 0  # the hidden neurons did fire


def test_deploy_picks_the_sigma_delta_circuit_for_a_conv_run(tmp_path):
    pytest.importorskip("lava")
    from neurohebb.backends.lava.deploy import deploy_run
    from test_lava_deploy import bars_dataset

    net = conv_net(seed=6)
    (tmp_path / "run").mkdir()
    write_run(tmp_path / "run", net.config, net, {"test_accuracy": None})
    out = tmp_path / "out"
    metrics = deploy_run(tmp_path / "run", samples=8, out_dir=out, dataset=bars_dataset(), calibration=50, progress=False)
    assert metrics["circuit"] == "sigma-delta"
    assert metrics["emulation_readout_identical"] and metrics["emulation_counts_identical"]
    assert metrics["folded_float_agreement"] == 1.0
    assert 0.0 <= metrics["agreement"] <= 1.0 and set(metrics["spikes_per_sample_by_stage"]) == {"block0", "pool0", "block1", "readout"}
    assert [s["kind"] for s in metrics["mapping"]["stages"]] == ["sparse", "sparse", "conv", "sparse"]
    assert json.loads((out / "metrics.json").read_text())["samples"] == 8
    assert (out / "raster.png").stat().st_size > 0


def test_a_network_no_circuit_deploys_gets_both_reasons():
    from neurohebb.backends.lava.deploy import choose_circuit
    from neurohebb.backends.lava.mapping import UnsupportedNetwork

    with pytest.raises(UnsupportedNetwork, match="WTA circuit: .*sigma-delta circuit: .*max pooling"):
        choose_circuit(describe(conv_net(pool="max")), None)
    assert choose_circuit(describe(conv_net()), None) == "sigma-delta"


def test_the_synapse_estimate_bounds_the_real_count_and_the_paper_architecture_folds(monkeypatch):
    from neurohebb.backends.lava import fold as fold_module
    from neurohebb.backends.lava.fold import fold, folded_synapses
    from neurohebb.backends.lava.mapping import UnsupportedNetwork
    from neurohebb.config import resolve_config
    from neurohebb.description import describe_config

    spec = describe(conv_net())
    stages = fold(spec)
    estimates = folded_synapses(spec)
    assert len(estimates) == len(stages)
    for estimate, stage in zip(estimates, stages):
        assert (stage.matrix.nnz <= estimate) if stage.kind == "sparse" else estimate == 0
    # the paper's mnist architecture with the chip changes: its conv blocks after the first are
    # Conv processes, so the sparse synapses are the first block's, the relays' and the readout's
    chip = resolve_config("mnist-deploy", None, [])
    chip_spec = describe_config(chip)
    assert 1_000_000 < sum(folded_synapses(chip_spec)) < fold_module.MAX_SYNAPSES
    kinds = [s.kind for s in fold(describe(HebbNetwork(chip)))]
    assert kinds == ["sparse", "sparse", "conv", "sparse", "conv", "sparse"]
    monkeypatch.setattr(fold_module, "MAX_SYNAPSES", 1000)
    with pytest.raises(UnsupportedNetwork, match="sparse synapses .*cannot hold it"):
        fold(spec)
