"""Presets, overrides and the errors bad configs get."""
from __future__ import annotations

import pytest

from neurohebb.config import preset_names, resolve_config
from neurohebb.errors import ConfigError
from neurohebb.shapes import describe_config


def test_all_presets_load_and_have_the_documented_geometry():
    assert set(preset_names()) >= {"cifar10", "mnist", "mnist-mlp", "digits"}
    cifar = describe_config(resolve_config("cifar10"))
    assert [b.conv_output_shape for b in cifar] == [(96, 32, 32), (384, 16, 16), (1536, 8, 8)]
    assert cifar[-1].output_size == 24576  # the paper's classifier input
    mlp = resolve_config("mnist-mlp")
    assert (mlp.layers[0].out_channels, mlp.layers[0].t_invert, mlp.layers[0].lr, mlp.layers[0].init_radius) == (2000, 12.0, 0.045, 35.0)


def test_overrides_reach_nested_fields_and_layers():
    c = resolve_config("cifar10", overrides=["hebbian.batch_size=32", "layers.2.lr=0.02", "data.dataset=fashion-mnist"], seed=7)
    assert c.hebbian.batch_size == 32 and c.layers[2].lr == 0.02 and c.layers[0].lr == 0.08
    assert c.data.dataset == "fashion_mnist" and c.seed == 7


def test_config_file_overrides_the_preset(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("seed = 3\n[readout]\nepochs = 7\n")
    c = resolve_config("digits", f)
    assert c.seed == 3 and c.readout.epochs == 7


@pytest.mark.parametrize("override,message", [
    ("layers.0.rulez=1", "unknown key layers.0.rulez"),
    ("layers.0.rule=\"oja\"", "layers.0.rule = 'oja' is not allowed"),
    ("hebbian.batch_size=0", "batch_size"),
    ("layers.0.t_invert=-1", "t_invert must be > 0"),
    ("readout.dropout=1.5", "dropout"),
    ("seed=\"x\"", "seed must be an integer"),
    ("nokey", "key=value"),
])
def test_bad_overrides_are_rejected_with_the_field_named(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("digits", overrides=[override])


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available presets: cifar10, cifar10-paper, digits"):
        resolve_config("resnet")


def test_bad_toml_file_is_reported(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("seed = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_config("digits", f)
