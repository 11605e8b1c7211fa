"""The atomic-write primitive and the conv output-size helper every shape computation shares."""
from __future__ import annotations

import pytest

from neurohebb.atomic import replace_atomically
from neurohebb.errors import ConfigError
from neurohebb.shapes import conv_output_size


def test_replace_atomically_writes_the_file(tmp_path):
    target = tmp_path / "a.json"
    replace_atomically(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")

    def half_write(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(target, half_write)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_temp_file_keeps_the_suffix(tmp_path):
    seen = []
    replace_atomically(tmp_path / "fig.png", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"x")), suffix=".png")
    assert seen == [".png"]


@pytest.mark.parametrize(
    "size, kernel, padding, stride, expected",
    [((32, 32), 5, 2, 1, (32, 32)), ((28, 20), 3, 0, 1, (26, 18)), ((7, 7), 3, 1, 2, (4, 4)), ((5, 5), 5, 0, 1, (1, 1)),
     ((10, 10), (3, 5), 1, 1, (10, 8))],
)
def test_conv_output_size_matches_the_formula(size, kernel, padding, stride, expected):
    assert conv_output_size(*size, kernel, padding, stride, where="t") == expected


def test_conv_output_size_rejects_reflect_padding_too_large_and_kernels_that_do_not_fit():
    with pytest.raises(ConfigError, match="layers.2: reflect padding 4 is too large for a 4x4 input"):
        conv_output_size(4, 4, 3, 4, 1, where="layers.2")
    with pytest.raises(ConfigError, match="does not fit a 3x3 input"):
        conv_output_size(3, 3, 5, 0, 1, where="x")
