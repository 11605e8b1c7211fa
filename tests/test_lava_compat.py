"""Python 3.11 compatibility of lava-nc 0.10 and the errors for a missing or broken Lava."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from neurohebb.backends.lava import compat, lava_api
from neurohebb.errors import BackendUnavailable

SNIPPET = """\
@dataclass
class CoreEncoder:
    x: ByteEncoder = ByteEncoder()
    y:ByteEncoder=ByteEncoder()
    n: int = 0
    other: Foo = Bar()
"""


def test_patch_rewrites_only_instance_defaults_of_the_same_class():
    patched, count = compat.patch_source(SNIPPET)
    assert count == 2
    assert 'x: ByteEncoder = __import__("dataclasses").field(default_factory=ByteEncoder)' in patched
    assert "n: int = 0" in patched and "other: Foo = Bar()" in patched
    assert compat.patch_source(patched) == (patched, 0)  # idempotent


def test_patched_lava_module_imports_and_gives_fresh_defaults():
    compat.install()
    compat.install()
    assert sum(isinstance(f, compat._LavaVarModelFinder) for f in sys.meta_path) == 1
    var_model = compat.import_lava_module(compat.PATCHED_MODULE)
    a, b = var_model.CoreEncoder(), var_model.CoreEncoder()
    assert a.x == var_model.ByteEncoder() and a.x is not b.x


def test_the_installed_lava_source_is_patched_without_touching_it():
    spec = importlib.util.find_spec("lava")
    if spec is None:
        pytest.skip("lava-nc is not installed")
    path = spec.submodule_search_locations[0] + "/magma/compiler/var_model.py"
    original = open(path, encoding="utf-8").read()
    patched, count = compat.patch_source(original)
    if sys.version_info >= (3, 11):
        assert count == 8 or "ByteEncoder()" not in original  # lava 0.10: 8 offending defaults
    compile(patched, path, "exec")
    assert open(path, encoding="utf-8").read() == original  # nothing written in site-packages


@pytest.fixture
def fresh_gateway():
    lava_api.require_lava.cache_clear()
    yield
    lava_api.require_lava.cache_clear()


def test_missing_lava_names_the_install_command(monkeypatch, fresh_gateway):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("lava") else real(name, *a))
    with pytest.raises(BackendUnavailable, match=r"not installed; run \./setup\.sh .*lava-nc==0\.10\.0"):
        lava_api.require_lava()


def test_broken_lava_names_the_install_command(monkeypatch, fresh_gateway):
    def broken(name):
        raise ImportError("numpy.core.multiarray failed to import")

    monkeypatch.setattr(compat, "import_lava_module", broken)
    with pytest.raises(BackendUnavailable, match="cannot be imported .*numpy.core.multiarray.*lava-nc==0.10.0"):
        lava_api.require_lava()


def test_cli_reports_a_missing_lava_in_one_line(monkeypatch, fresh_gateway, tmp_path, capsys):
    from neurohebb.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("lava") else real(name, *a))
    assert main(["deploy", "lava", str(tmp_path), "--samples", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("neurohebb: error: Lava (lava-nc) is not installed")


def test_start_method_call_tolerates_an_already_set_method():
    source = "import platform\nif platform.system() != 'Windows':\n    mp.set_start_method('fork')\n"
    patched, count = compat.patch_start_method(source)
    assert count == 1
    assert "    if mp.get_start_method(allow_none=True) != 'fork':\n        mp.set_start_method('fork', force=True)" in patched
    assert compat.patch_start_method(patched)[1] == 0
    compile(patched, "<test>", "exec")
    spec = importlib.util.find_spec("lava")
    if spec is not None:
        path = spec.submodule_search_locations[0] + "/magma/runtime/message_infrastructure/multiprocessing.py"
        assert compat.patch_start_method(open(path, encoding="utf-8").read())[1] == 1
