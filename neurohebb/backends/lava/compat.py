"""Make lava-nc 0.10 importable on Python 3.11 without touching its installed files.

Why: `lava/magma/compiler/var_model.py` declares dataclass fields whose default is an instance of
another (unhashable) dataclass, e.g. ``x: ByteEncoder = ByteEncoder()``. Python 3.11 rejects such
mutable defaults when the class is created, so every ``import lava.magma...`` fails. Instead of
patching site-packages in place, a `sys.meta_path` finder serves that one module from a copy of
its source in which each such default is rewritten to ``field(default_factory=ByteEncoder)``.

A second, smaller rewrite: Lava's message infrastructure calls ``mp.set_start_method('fork')`` at
import, which raises "context has already been set" in any process where the start method was
already fixed (a Jupyter kernel, a program that used multiprocessing first). The call is made
conditional: nothing happens where the method already is 'fork'; otherwise it is forced to
'fork', which Lava's runtime needs.

The fixes are idempotent (installing twice adds one finder), harmless where Lava is already fixed
or on Python 3.10 (the patterns then match nothing and the module compiles unchanged), and the
rewritten bytecode is never cached. Lava forks its worker processes, which inherit the finder.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from types import ModuleType

PATCHED_MODULE = "lava.magma.compiler.var_model"
START_METHOD_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"

# `    name: Type = Type()` -> `    name: Type = __import__("dataclasses").field(default_factory=Type)`
_INSTANCE_DEFAULT = re.compile(r"^(?P<head>[ \t]+\w+[ \t]*:[ \t]*(?P<cls>\w+)[ \t]*=[ \t]*)(?P=cls)\(\)[ \t]*$", re.M)


def patch_source(source: str) -> tuple[str, int]:
    """Rewrite `field: T = T()` dataclass defaults into default factories; return (text, count)."""
    return _INSTANCE_DEFAULT.subn(
        lambda m: f'{m.group("head")}__import__("dataclasses").field(default_factory={m.group("cls")})', source
    )


_START_METHOD = re.compile(r"^(?P<indent>[ \t]*)mp\.set_start_method\((?P<q>['\"])fork(?P=q)\)[ \t]*$", re.M)


def patch_start_method(source: str) -> tuple[str, int]:
    """Make Lava's unconditional ``mp.set_start_method('fork')`` tolerate an already-set method."""
    return _START_METHOD.subn(
        lambda m: (f"{m.group('indent')}if mp.get_start_method(allow_none=True) != 'fork':\n"
                   f"{m.group('indent')}    mp.set_start_method('fork', force=True)"), source
    )


PATCHES = {PATCHED_MODULE: patch_source, START_METHOD_MODULE: patch_start_method}


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Compile the module from patched source; never read or write its .pyc cache."""

    patched_count = 0

    def get_code(self, fullname: str):
        source = self.get_data(self.get_filename(fullname)).decode("utf-8")
        patched, count = PATCHES[fullname](source)
        if fullname == PATCHED_MODULE:
            type(self).patched_count = count
        return compile(patched, self.get_filename(fullname), "exec", dont_inherit=True)


class _LavaVarModelFinder(importlib.abc.MetaPathFinder):
    """Finds only the patched Lava modules and hands them to the patching loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        loader = _PatchedSourceLoader(fullname, spec.origin)
        patched = importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)
        patched.cached = None
        return patched


def install() -> None:
    """Put the finder first on `sys.meta_path` (once). Must run before the first Lava import."""
    if not any(isinstance(f, _LavaVarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LavaVarModelFinder())


def import_lava_module(name: str) -> ModuleType:
    """Import a Lava module with the fix installed; every Lava import in neurohebb goes here."""
    install()
    return importlib.import_module(name)
