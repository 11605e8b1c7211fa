"""Atomic run directories and files.

Why: an interrupted or failed run must never leave a half-written run directory that looks
complete. Everything is written into a hidden sibling staging folder that is renamed into place
only when the run succeeded.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .atomic import replace_atomically
from .errors import NeurohebbError


def make_output_dir(path: str | Path) -> Path:
    """Create an output folder (and parents), or fail with one line naming the fix."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NeurohebbError(f"cannot create output directory {out}: {exc.strerror}; choose a writable --out") from None
    return out


def write_text_atomic(path: str | Path, text: str) -> None:
    replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


class StagedRunDir:
    """Context manager: yields a staging directory, moves it to `final` on success.

    An existing non-empty `final` is refused unless `overwrite`; then it is replaced only after
    the new run completed, so a failure keeps the old results.
    """

    def __init__(self, final: str | Path, overwrite: bool = False):
        self.final = Path(final)
        self.overwrite = overwrite
        self.staging: Path | None = None

    def __enter__(self) -> Path:
        if self.final.exists() and any(self.final.iterdir()) and not self.overwrite:
            raise NeurohebbError(f"output directory {self.final} already exists and is not empty; choose another --out or pass --overwrite")
        parent = self.final.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.final.name}.staging-"))
        except OSError as exc:
            raise NeurohebbError(f"cannot write to output directory {parent}: {exc.strerror}; choose a writable --out") from None
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.staging is not None
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        backup = None
        if self.final.exists():
            backup = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
            os.replace(self.final, backup)
        os.replace(self.staging, self.final)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        return False
