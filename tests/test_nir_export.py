"""`neurohebb export nir`: the graph reads back with nir (shapes, weights) and runs in snnTorch."""
from __future__ import annotations

import numpy as np
import pytest

from neurohebb.description import describe
from neurohebb.engine import write_run

nir = pytest.importorskip("nir")

from test_lava_sigma_delta import conv_net, images  # noqa: E402


def test_export_reads_back_with_the_folded_weights(tmp_path, capsys, monkeypatch):
    from neurohebb.backends.nir import export as export_module
    from neurohebb.backends.lava.fold import conv_form
    from neurohebb.cli import main
    from test_lava_deploy import bars_dataset

    net = conv_net()
    (tmp_path / "run").mkdir()
    write_run(tmp_path / "run", net.config, net, {})
    real = export_module.export_run
    monkeypatch.setattr(export_module, "export_run", lambda *a, **k: real(*a, **dict(k, dataset=bars_dataset())))
    assert main(["export", "nir", str(tmp_path / "run"), "-o", str(tmp_path / "net.nir"), "--calibration", "50"]) == 0
    assert '"block0.neurons": "IF"' in capsys.readouterr().out
    graph = nir.read(tmp_path / "net.nir")
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert kinds["block0.synapses"] == "Conv2d" and kinds["block0.neurons"] == "IF" and kinds["block1.pool"] == "AvgPool2d"
    assert kinds["readout"] == "Affine" and ("block1.pool", "flatten") in graph.edges
    spec = describe(net)
    scales = np.asarray(graph.metadata["activation_scales"])
    w0, b0 = conv_form(spec.blocks[0])
    np.testing.assert_allclose(graph.nodes["block0.synapses"].weight, w0 / scales[0], rtol=1e-12)
    np.testing.assert_allclose(graph.nodes["block0.synapses"].bias, b0 / scales[0], rtol=1e-12)
    w1, _ = conv_form(spec.blocks[1])
    np.testing.assert_allclose(graph.nodes["block1.synapses"].weight, w1 * scales[0] / scales[1], rtol=1e-12)
    assert graph.nodes["block1.neurons"].v_threshold.shape == (6, 4, 4)
    np.testing.assert_allclose(graph.nodes["readout"].weight, spec.readout.weight * scales[1], rtol=1e-12)
    assert "reflect padding" in graph.metadata["no_nir_primitive"]


def test_export_errors_are_one_line(tmp_path, capsys):
    from neurohebb.cli import main

    net = conv_net(pool="max")
    (tmp_path / "run").mkdir()
    write_run(tmp_path / "run", net.config, net, {})
    assert main(["export", "nir", str(tmp_path / "run"), "-o", str(tmp_path / "x.nir"), "--calibration", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--calibration must be >= 1" in err


def test_max_pooling_is_refused_with_the_reason():
    from neurohebb.backends.nir.export import to_nir
    from neurohebb.errors import ConfigError

    with pytest.raises(ConfigError, match="max pooling"):
        to_nir(describe(conv_net(pool="max")), images(8))


def test_snntorch_runs_the_graph_and_agrees_with_the_folded_network():
    pytest.importorskip("snntorch")
    from neurohebb.backends.lava.fold import fold, forward
    from neurohebb.backends.nir.consumer import snntorch_logits
    from neurohebb.backends.nir.export import to_nir

    net = conv_net()
    spec = describe(net)
    x = images(40)
    logits = snntorch_logits(to_nir(spec, images(64, seed=2)), x, steps=32)
    reference = forward(fold(spec), x)[-1]
    assert (logits.argmax(axis=1) == reference.argmax(axis=1)).mean() >= 0.85
