"""Atomic file replacement, the one primitive every writer in the package uses.

Why: a run killed mid-write (Ctrl-C, SIGTERM, a full disk) must leave the previous file, or no
file, never half of one. The content goes to a temporary file in the same folder (same file
system, so `os.replace` is atomic) and is renamed over the target only once it is complete.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def replace_atomically(path: str | Path, write: Callable[[Path], None], suffix: str = ".tmp") -> Path:
    """Call `write(tmp)` on a fresh temporary path beside `path`, then rename it to `path`.

    `suffix` keeps the extension tools look at (matplotlib picks the format from it).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
