"""Download the canonical dataset files, verified against their published MD5 checksums.

Sources and checksums live in the dataset registry (`neurohebb.data.registry`, which cites
where they come from). Each file is streamed to a temporary file in the destination folder,
hashed while it arrives, and renamed into place only when the checksum matches, so an
interrupted or corrupted download never leaves a file that looks complete. Mirrors are tried
in order; NEUROHEBB_DOWNLOAD_BASE_URL (or `base_url`) replaces them, e.g. for a local copy.
Archives too large to read in place every run (STL-10's 2.6 GB) have their listed members
unpacked beside them, each checked against its own MD5; nothing else in the archive is written.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from ..atomic import replace_atomically
from ..errors import DataError
from .registry import SPECS, Resource, Source, get_spec

ENV_BASE_URL = "NEUROHEBB_DOWNLOAD_BASE_URL"
CHUNK = 1 << 16

# By name, for the datasets that have a public download (kept as a module table so tests can
# point one at a local server).
SOURCES: dict[str, Source] = {name: spec.source for name, spec in SPECS.items() if spec.source is not None}
__all__ = ["ENV_BASE_URL", "SOURCES", "Resource", "Source", "download_dataset", "fetch", "md5_file"]


class _Failed(Exception):
    """One mirror failed for one file; the next mirror is tried."""


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fetch_once(url: str, dest: Path, md5: str, progress: bool, timeout: float) -> None:
    """Stream `url` into a temp file beside `dest`; rename it into place only if the MD5 matches."""
    from tqdm.auto import tqdm

    from .. import __version__

    def stream_and_check(tmp: Path) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with open(tmp, "wb") as out:
            request = Request(url, headers={"User-Agent": f"neurohebb/{__version__}"})
            with urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) mirrors or a user-given base URL
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=not progress, leave=False) as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise _Failed(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")

    try:
        replace_atomically(dest, stream_and_check, suffix=".part")
    except BaseException as exc:
        if isinstance(exc, _Failed):
            raise
        if isinstance(exc, HTTPError):
            raise _Failed(f"HTTP {exc.code} {exc.reason}") from exc
        if isinstance(exc, (OSError, ValueError, HTTPException)):
            # URLError and timeouts are OSErrors; ValueError: a malformed URL.
            raise _Failed(str(getattr(exc, "reason", None) or exc or type(exc).__name__)) from exc
        raise


def fetch(urls: list[str], dest: Path, md5: str, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download `dest` from the first of `urls` that works and matches `md5`; skip it if already valid."""
    if dest.is_file() and md5_file(dest) == md5:
        return dest
    reasons = []
    for url in urls:
        try:
            _fetch_once(url, dest, md5, progress, timeout)
            return dest
        except _Failed as exc:
            reasons.append(f"{url}: {exc}")
    raise DataError(
        f"could not download {dest.name}: {'; '.join(reasons)}; copy the files into {dest.parent} by hand or pass --data-dir"
    )


def download_dataset(name: str, folder: str | Path, *, base_url: str | None = None, progress: bool = True, timeout: float = 60.0) -> list[Path]:
    """Fetch the canonical files of `name` into `folder` (created if needed); returns their paths.

    'digits' is bundled with scikit-learn and downloads nothing. `base_url` (or
    $NEUROHEBB_DOWNLOAD_BASE_URL) replaces the mirrors: files are fetched from base_url + filename.
    """
    spec = get_spec(name)
    if spec.name not in SOURCES:
        if spec.name == "digits":
            return []
        raise DataError(f"{spec.name} has no public download; get it from its publisher (image-net.org for ImageNet), "
                        f"arrange it as {spec.expected}, and pass --data-dir DIR")
    source = SOURCES[spec.name]
    base_url = base_url or os.environ.get(ENV_BASE_URL) or None
    mirrors = [base_url if base_url.endswith("/") else base_url + "/"] if base_url else list(source.mirrors)
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} ({exc.strerror or exc}); pass --dir with a writable folder") from exc
    if source.extract and all(_valid(folder / m.filename, m.md5) for m in source.extract):
        return [folder / m.filename for m in source.extract]  # already unpacked and checked
    fetched = [
        fetch([m + res.filename for m in mirrors], folder / res.filename, res.md5, progress=progress, timeout=timeout)
        for res in source.files
    ]
    if not source.extract:
        return fetched
    return [extract_member(fetched[0], member, folder) for member in source.extract]


def _valid(path: Path, md5: str) -> bool:
    return path.is_file() and md5_file(path) == md5


def extract_member(archive: Path, member: Resource, folder: Path) -> Path:
    """Unpack one listed regular-file member of a tar archive to folder/member, checked by MD5.

    Only the listed name is read, and the destination is built from the registry's name, not
    from the archive, so a crafted archive cannot write anywhere else.
    """
    dest = folder / member.filename
    if _valid(dest, member.md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with tarfile.open(archive, "r:*") as tar:
                info = tar.getmember(member.filename)
                if not info.isfile():
                    raise DataError(f"{archive}: {member.filename} is not a regular file; download the archive again")
                src = tar.extractfile(info)
                with src, open(tmp, "wb") as out:
                    while block := src.read(1 << 20):
                        out.write(block)
                        digest.update(block)
        except KeyError:
            raise DataError(f"{archive} has no member {member.filename}; it is not the canonical archive, delete it and download again") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"cannot read {archive} ({exc}); delete it and download again") from None
        if digest.hexdigest() != member.md5:
            raise DataError(f"{member.filename} from {archive} has md5 {digest.hexdigest()}, expected {member.md5}; delete the archive and download again")

    return replace_atomically(dest, write, suffix=".part")
