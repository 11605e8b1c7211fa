"""The one network description: it holds the network's own numbers, the NumPy activations equal
the torch ones, the feasibility layers come from it, and the report says what deploys."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurohebb import activations, npmath
from neurohebb.config import resolve_config
from neurohebb.description import describe, describe_config, readout_logits, linear_block_features
from neurohebb.feasibility.netspec import network_layers, spec_layers
from neurohebb.network import HebbNetwork


def test_description_holds_the_networks_tensors_as_float64():
    config = resolve_config("digits", device="cpu")
    net = HebbNetwork(config, generator=torch.Generator().manual_seed(0))
    spec = describe(net)
    assert len(spec.blocks) == len(net.blocks) and spec.input_shape == (1, 8, 8) and spec.precision == "float32"
    for block, module in zip(spec.blocks, net.blocks):
        assert block.weight.dtype == np.float64
        np.testing.assert_array_equal(block.weight, module.layer.weight.double().numpy())
        np.testing.assert_array_equal(block.norm.var, module.norm.running_var.double().numpy())
        assert block.shape == net.shapes[block.index] and block.pool == module.cfg.pool
    np.testing.assert_array_equal(spec.readout.weight, net.readout.weight.detach().double().numpy())
    assert spec.readout.features == net.feature_size and spec.readout.num_classes == 10


def test_description_of_a_config_has_geometry_but_no_weights():
    spec = describe_config(resolve_config("mnist"))
    assert not spec.has_weights and [b.shape.conv_output_shape[0] for b in spec.blocks] == [96, 384, 1536]
    assert spec.readout.features == 1536 * 3 * 3


@pytest.mark.parametrize("preset", ["mnist", "mnist-mlp", "mnist-conv", "cifar10"])
def test_feasibility_layers_come_from_the_description(preset):
    config = resolve_config(preset)
    assert spec_layers(describe_config(config)) == network_layers(config)


@pytest.mark.parametrize("name, param", [("triangle", 1.0), ("triangle", 0.7), ("softmax", 5.0), ("relu", 0.0), ("identity", 0.0)])
def test_numpy_activations_equal_the_torch_ones(name, param):
    u = torch.randn(7, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    np.testing.assert_allclose(npmath.block_activation(u.numpy(), name, param, axis=1),
                               activations.block_activation(u, name, param, dim=1).numpy(), rtol=1e-12, atol=1e-15)


def test_numpy_forward_of_a_linear_network_matches_the_model():
    config = resolve_config("mnist-mlp", None, ["data.dataset=digits", "layers.0.out_channels=8", "layers.0.batchnorm=true"])
    gen = torch.Generator().manual_seed(2)
    net = HebbNetwork(config, generator=gen)
    with torch.no_grad():
        net.blocks[0].norm.running_mean.uniform_(0, 1, generator=gen)
        net.readout.weight.normal_(generator=gen)
    x = torch.rand(9, 1, 8, 8, generator=gen, dtype=torch.float64)
    spec = describe(net)
    logits = readout_logits(spec, linear_block_features(spec.blocks[0], x.numpy()))
    np.testing.assert_allclose(logits, net.double().eval()(x).detach().numpy(), rtol=1e-10, atol=1e-10)


def test_backends_read_the_description_not_torch_modules():
    """No backend reaches into a network's modules (`net.blocks`, `.layer.`) for inference."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "neurohebb" / "backends"
    files = [root / "lava" / n for n in ("mapping.py", "deploy.py", "fold.py", "sigma_delta.py", "sd_deploy.py")]
    files += [root / "brian2" / n for n in ("circuit.py", "inference.py")] + sorted((root / "nir").glob("*.py"))
    for f in files:
        text = f.read_text()
        assert "net.blocks" not in text and ".layer." not in text and ".detach()" not in text, f.name


def test_feasibility_report_says_which_blocks_deploy(tmp_path, capsys):
    from neurohebb.cli import main
    from neurohebb.engine import write_run
    from test_lava_sigma_delta import conv_net

    net = conv_net()
    (tmp_path / "run").mkdir()
    write_run(tmp_path / "run", net.config, net, {})
    assert main(["feasibility", "--checkpoint", str(tmp_path / "run"), "--chip", "loihi", "--samples", "8",
                 "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "deployment to Lava: sigma-delta" in out and "block1: deploys" in out
    report = json.loads((tmp_path / "f" / "feasibility.json").read_text())
    assert [b["deploys"] for b in report["deployment"]["blocks"]] == [True, True]
