"""One dataset registry: config validation, geometry, downloads and the CLI all read it."""
from __future__ import annotations

import pytest

from neurohebb import config, shapes
from neurohebb.commands import download as download_cmd
from neurohebb.data import download as dl
from neurohebb.data import registry
from neurohebb.errors import ConfigError, DataError


def test_every_consumer_derives_from_the_registry():
    assert config.DATASETS == registry.NAMES
    assert shapes.DATASET_SHAPES == {n: s.image_shape for n, s in registry.SPECS.items()}
    assert set(dl.SOURCES) == {n for n, s in registry.SPECS.items() if s.source is not None}
    assert set(download_cmd.NAMES) >= set(registry.NAMES) and "fashion-mnist" in download_cmd.NAMES
    assert registry.SHAPES["stl10"] == (3, 96, 96) and registry.SPECS["imagenet"].num_classes == 1000


@pytest.mark.parametrize("spelling, name", [("STL-10", "stl10"), ("ImageNet", "imagenet"), ("Fashion-MNIST", "fashion_mnist")])
def test_spellings(spelling, name):
    assert registry.get_spec(spelling).name == name


def test_unknown_dataset_lists_the_registry():
    with pytest.raises(DataError, match="choose one of digits, mnist, fashion_mnist, cifar10, stl10, imagenet"):
        registry.get_spec("svhn")
    with pytest.raises(ConfigError, match="data.dataset = 'svhn' is not allowed"):
        config.resolve_config("digits", overrides=["data.dataset=svhn"])


@pytest.mark.parametrize("override, message", [
    ("data.hebbian_data=labels", "data.hebbian_data = 'labels' is not allowed"),
    ("data.hebbian_fraction=0", "data.hebbian_fraction must be in"),
    ("readout.augment=rotate", "readout.augment = 'rotate' is not allowed"),
    ("readout.augment_pad=-1", "readout.augment_pad must be >= 0"),
])
def test_new_fields_are_validated(override, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve_config("stl10", overrides=[override])
