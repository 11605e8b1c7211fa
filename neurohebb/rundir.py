"""Atomic run directories and files.

Why: an interrupted or failed run must never leave a half-written run directory that looks
complete, and `--overwrite` must never destroy anything but an earlier neurohebb run.
Everything is written into a hidden sibling staging folder that is renamed into place only when
the run succeeded; each run directory carries a marker file (`.neurohebb-run`) so an existing
folder can be recognised as a run before it is replaced. Every check that can fail does so
before training starts.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from .atomic import filesystem_error, replace_atomically
from .errors import NeurohebbError

MARKER = ".neurohebb-run"
MARKER_FORMAT = "neurohebb-run-v1"
# Files that identify run directories written before the marker existed.
_LEGACY_SIGNATURES = (
    {"config.toml", "checkpoint.pt", "metrics.json"},  # neurohebb train
    {"config.json", "metrics.json", "model.pt"},  # neurohebb stpn train
    {"comparison.json", "comparison.csv", "comparison.md"},  # neurohebb stpn compare
)
# .NAME.staging-PID@HOST-TOKEN / .NAME.old-PID@HOST-TOKEN
_STAGING_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>staging|old)-(?P<pid>\d+)@(?P<host>.+)-[0-9a-f]{8}$")
# .NAME.tmp-PID@HOST-TOKEN[.SUFFIX]: a temporary file of atomic.replace_atomically
_TEMP_RE = re.compile(r"^\..+\.tmp-(?P<pid>\d+)@(?P<host>.+)-[0-9a-f]{8}(\.[^.]+)?$")
_LEGACY_STAGING_RE = re.compile(r"^\..+\.staging-[a-z0-9_]{8}$")  # tempfile.mkdtemp names of older versions


def make_output_dir(path: str | Path) -> Path:
    """Create an output folder (and parents), or fail with one line naming the fix."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise NeurohebbError(f"output directory {out} is a file, not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise filesystem_error(out, exc, "create output directory") from None
    return out


def check_writable_dir(path: str | Path, fix: str | None = None) -> None:
    """Fail now, not after the work, if files cannot be created in `path` (read-only mount,
    permissions; root ignores permission bits, so try it rather than ask `os.access`)."""
    from .atomic import create_temp_file

    path = Path(path)
    try:
        create_temp_file(path / "probe").unlink()
    except OSError as exc:
        raise filesystem_error(path, exc, "write to", fix) from None


def check_can_create_dir(path: str | Path, fix: str | None = None) -> None:
    """Fail now if `path` could not be created and written later, without creating anything:
    its nearest existing ancestor must be a writable folder."""
    path = Path(os.path.abspath(path))
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NeurohebbError(f"cannot create {path}: {ancestor} is a file, not a folder; {fix or 'choose another --out'}")
    check_writable_dir(ancestor, fix)


def write_text_atomic(path: str | Path, text: str) -> None:
    replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def is_run_dir(path: str | Path) -> bool:
    """A folder neurohebb wrote as a run: it has the marker, or the files of an older run."""
    path = Path(path)
    if (path / MARKER).is_file():
        return True
    try:
        names = {p.name for p in path.iterdir()}
    except OSError:
        return False
    return any(signature <= names for signature in _LEGACY_SIGNATURES)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(parent: Path) -> list[Path]:
    """Remove staging folders and temporary files left in `parent` by runs that were killed
    (SIGKILL, power loss), and put back a run a killed `--overwrite` had moved aside. Returns
    what was removed; reports (on stderr) folders of older versions whose owner is unknown."""
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    host = socket.gethostname()
    for entry in entries:
        temp = _TEMP_RE.match(entry.name)
        if temp is not None and temp["host"] == host and not _process_alive(int(temp["pid"])) and entry.is_file():
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                pass
            continue
        match = _STAGING_RE.match(entry.name)
        if match is None:
            if _LEGACY_STAGING_RE.match(entry.name) and entry.is_dir():
                print(f"neurohebb: note: {entry} looks like a staging folder of an interrupted run; remove it if no run is writing there", file=sys.stderr)
            continue
        if match["host"] != host or _process_alive(int(match["pid"])) or not entry.is_dir():
            continue
        final = parent / match["name"]
        try:
            if match["kind"] == "old" and not final.exists():
                os.replace(entry, final)  # killed between the two renames: the old run comes back
                continue
            shutil.rmtree(entry)
            removed.append(entry)
        except OSError:
            continue
    return removed


def _unique_name(final: Path, kind: str) -> Path:
    return final.with_name(f".{final.name}.{kind}-{os.getpid()}@{socket.gethostname()}-{secrets.token_hex(4)}")


class StagedRunDir:
    """Context manager: yields a staging directory, moves it to `final` on success.

    An existing non-empty `final` is refused unless `overwrite`, and even then unless it is a
    neurohebb run; it is replaced only after the new run completed, so a failure keeps the old
    results. `kind` is recorded in the marker (train, stpn, compare, ...).
    """

    def __init__(self, final: str | Path, overwrite: bool = False, kind: str = "run"):
        self.final = Path(os.path.abspath(final))
        self.shown = Path(final)  # the path as the user wrote it, for messages
        self.overwrite = overwrite
        self.kind = kind
        self.staging: Path | None = None

    def check(self) -> None:
        """Every reason the run could not be put at `final`, raised before any work is done."""
        final, shown = self.final, self.shown
        if final.is_symlink():
            raise NeurohebbError(f"output directory {shown} is a symbolic link; give the folder it points to, or another --out")
        if final.exists() and not final.is_dir():
            raise NeurohebbError(f"output directory {shown} is a file, not a folder; choose another --out")
        if not final.exists():
            return
        cwd = Path(os.path.abspath(os.getcwd()))
        if cwd == final or final in cwd.parents:
            raise NeurohebbError(f"output directory {shown} is (or contains) the current directory and cannot be replaced; "
                                 f"run from its parent, e.g. `cd {final.parent}` and --out {final.name}")
        if os.path.ismount(final) or os.stat(final).st_dev != os.stat(final.parent).st_dev:
            raise NeurohebbError(f"output directory {shown} is a mount point and cannot be replaced; choose a folder inside it, e.g. --out {shown / 'run'}")
        try:
            empty = not any(final.iterdir())
        except OSError as exc:
            raise filesystem_error(shown, exc, "read") from None
        if empty:
            return
        if not self.overwrite:
            raise NeurohebbError(f"output directory {shown} already exists and is not empty; choose another --out or pass --overwrite")
        if not is_run_dir(final):
            raise NeurohebbError(f"refusing to overwrite {shown}: it is not a neurohebb run directory (no {MARKER} marker); "
                                 "choose another --out, or remove it yourself if you mean it")

    def __enter__(self) -> Path:
        parent = self.final.parent
        if parent.is_dir():
            clean_stale_staging(parent)  # first: it may put back a run that check() must then see
        self.check()
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NeurohebbError(f"cannot write to output directory {parent}: {exc.strerror}; choose a writable --out") from None
        staging = _unique_name(self.final, "staging")
        try:
            os.mkdir(staging, 0o777)  # the umask decides who may read the results
        except OSError as exc:
            raise NeurohebbError(f"cannot write to output directory {parent}: {exc.strerror}; choose a writable --out") from None
        self.staging = staging
        try:
            write_json_atomic(staging / MARKER, {"format": MARKER_FORMAT, "kind": self.kind})
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self._rename_in_message(exc)
            raise
        return staging

    def _rename_in_message(self, exc: BaseException) -> None:
        """Name the folder the user asked for, not the hidden staging folder."""
        assert self.staging is not None
        if isinstance(exc, NeurohebbError) and str(self.staging) in str(exc):
            raise NeurohebbError(str(exc).replace(str(self.staging), str(self.shown)) + f" ({self.shown} was left as it was)") from None

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.staging is not None
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self._rename_in_message(exc)
            return False
        try:
            self._move_into_place()
        except OSError as exc:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise filesystem_error(self.shown, exc, "move the finished run to") from None
        return False

    def _move_into_place(self) -> None:
        assert self.staging is not None
        backup = None
        if self.final.exists():
            backup = _unique_name(self.final, "old")
            os.replace(self.final, backup)
        try:
            os.replace(self.staging, self.final)
        except OSError:
            if backup is not None:
                os.replace(backup, self.final)  # the old run stays where it was
            raise
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
