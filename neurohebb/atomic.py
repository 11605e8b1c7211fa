"""Atomic file replacement, the one primitive every writer in the package uses.

Why: a run killed mid-write (Ctrl-C, SIGTERM, a full disk) must leave the previous file, or no
file, never half of one. The content goes to a temporary file in the same folder (same file
system, so `os.replace` is atomic) and is renamed over the target only once it is complete.
File-system failures (full disk, read-only mount, no permission, ...) become one-line
`NeurohebbError`s naming the path and the fix, so they never end a long run with a traceback.
"""
from __future__ import annotations

import errno
import os
import secrets
import socket
from pathlib import Path
from typing import Callable

from .errors import NeurohebbError

# What to do about each file-system failure a user can cause or fix.
_FIXES = {
    errno.ENOSPC: "the disk is full; free some space or choose another --out",
    errno.EDQUOT: "the disk quota is exhausted; free some space or choose another --out",
    errno.EROFS: "that file system is read-only; choose a writable --out",
    errno.EACCES: "permission denied; choose a writable --out or fix the folder's permissions",
    errno.EPERM: "operation not permitted; choose a writable --out or fix the folder's permissions",
    errno.EBUSY: "it is busy (a mount point?); choose a folder inside it",
    errno.ENOTDIR: "part of the path is a file, not a folder; choose another --out",
    errno.EISDIR: "it is a folder, not a file; give a file name",
    errno.ENOENT: "its folder does not exist; create it or choose another --out",
    errno.EEXIST: "a file of that name is in the way; choose another --out",
    errno.EXDEV: "it is on another file system than its folder; choose a folder on one disk",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter --out",
    errno.EMLINK: "the folder holds too many entries; choose another --out",
    errno.ENOTEMPTY: "a folder of that name is in the way; choose another --out",
    errno.EIO: "the disk reported an input/output error; check it or choose another --out",
}
FILESYSTEM_ERRNOS = frozenset(_FIXES)


def is_filesystem_error(exc: BaseException) -> bool:
    """True for OSErrors a user fixes on their disk (not network errors, which are OSErrors too)."""
    return isinstance(exc, OSError) and exc.errno in FILESYSTEM_ERRNOS


def filesystem_error(path: str | Path, exc: OSError, doing: str = "write", fix: str | None = None) -> NeurohebbError:
    """The one-line error for `exc` raised while `doing` `path` (`fix` replaces the default advice)."""
    reason = exc.strerror or type(exc).__name__
    return NeurohebbError(f"cannot {doing} {path}: {reason}; {fix or _FIXES.get(exc.errno, 'check the path')}")


def create_temp_file(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty file beside `path`, created with mode 0666 so the user's umask decides who may
    read it (tempfile.mkstemp would force 0600)."""
    owner = f"{os.getpid()}@{socket.gethostname()}"  # lets a later run tell a killed writer's leftovers
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.tmp-{owner}-{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise NeurohebbError(f"cannot create a temporary file beside {path}; remove the stale .{path.name}.* files")  # pragma: no cover


def replace_atomically(path: str | Path, write: Callable[[Path], None], suffix: str = ".tmp") -> Path:
    """Call `write(tmp)` on a fresh temporary path beside `path`, then rename it to `path`.

    `suffix` keeps the extension tools look at (matplotlib picks the format from it). The
    temporary file is removed on every failure; file-system errors become one-line errors.
    """
    path = Path(path)
    if path.is_dir():
        raise NeurohebbError(f"cannot write {path}: it is a folder, not a file; give a file name")
    try:
        tmp = create_temp_file(path, suffix)
    except OSError as exc:
        raise filesystem_error(path, exc) from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if is_filesystem_error(exc):
            raise filesystem_error(path, exc) from None  # type: ignore[arg-type]
        raise
    return path
